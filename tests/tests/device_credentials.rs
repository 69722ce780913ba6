//! A device credential's lifecycle with the real parts: the real server's own commands (as IT runs
//! them on its console), a real slated, real uploads. IT has device 12 replace its credential;
//! then the device is stolen and revoked; then IT brings it back with a new token, and the
//! report pressed while it was revoked arrives, once.

use slate_e2e::{wait_until, Device, DeviceSetup, Server};

/// What the device holds as its credential now.
fn credential_of(device: &Device) -> String {
    std::fs::read_to_string(device.dir.join("state/credential")).expect("a stored credential")
}

/// The server's answer to `credential` (a one-second poll for teacher commands: it writes
/// nothing, so asking does not change what the test checks).
fn status_with(server: &Server, credential: &str) -> u16 {
    server
        .client()
        .get(format!("{}/api/v1/device/commands?after=0&wait_s=1", server.url))
        .bearer_auth(credential.trim())
        .send()
        .expect("the server answers")
        .status()
        .as_u16()
}

#[test]
fn a_device_replaces_its_credential_is_revoked_when_stolen_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), true);
    let token = server.enrollment_token(12);
    let mut device = Device::configure(
        &dir.path().join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: server.certificate.as_deref(),
            enrollment_token: Some(&token),
        },
    );
    device.start();
    wait_until("the device to enroll", || (device.status()["enrolled"] == true).then_some(()));
    let first = device.press();
    device.unlock();
    wait_until("the first report", || (server.report_count(&first) == 1).then_some(()));
    let old = credential_of(&device);
    assert_eq!(status_with(&server, &old), 200);

    // IT: "replace device 12's credential". The device's next upload is told, it fetches and
    // stores a replacement and uses it; the old one is then refused.
    let said = server.cli(&["device", "rotate", "--device", "12"]);
    assert!(said.contains("will replace its credential"), "{said}");
    let second = device.press();
    device.unlock();
    wait_until("the second report", || (server.report_count(&second) == 1).then_some(()));
    let third = device.press();
    device.unlock();
    wait_until("the third report", || (server.report_count(&third) == 1).then_some(()));
    let replaced = credential_of(&device);
    assert_ne!(replaced, old, "the device stored a new credential");
    assert_eq!(status_with(&server, &old), 401, "the old one is refused once the new is used");
    assert_eq!(status_with(&server, &replaced), 200);
    assert!(server.staff_page("/fleet").contains("in use"));

    // Stolen: IT revokes it. Nothing it holds works, and a press stays in its spool.
    let said = server.cli(&["device", "revoke", "--device", "12"]);
    assert!(said.contains("revoked: device 12"), "{said}");
    assert_eq!(status_with(&server, &replaced), 401);
    let while_revoked = device.press();
    device.unlock();
    wait_until("the device to be refused", || {
        let logs = std::fs::read_dir(&device.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("slated-"));
        logs.map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .any(|log| log.contains("the server refused this device's credential"))
            .then_some(())
    });
    assert_eq!(server.report_count(&while_revoked), 0);
    assert_ne!(device.status()["spool_pending"], 0, "kept on the device");
    let fleet = server.staff_page("/fleet");
    assert!(fleet.contains("revoked") && fleet.contains("by console"), "{fleet}");

    // Found again: IT gives it a new token (on its card, so slated reads it at its next start).
    let token = server.enrollment_token(12);
    device.add_setting(Some("server"), &format!("enrollment_token = {token:?}"));
    device.kill();
    device.start();
    wait_until("the report pressed while revoked", || {
        (server.report_count(&while_revoked) == 1).then_some(())
    });
    device.wait_until_drained();
    for id in [&first, &second, &third, &while_revoked] {
        assert_eq!(server.report_count(id), 1, "report {id} once");
    }
    assert_eq!(status_with(&server, &replaced), 401, "the revoked credential stays refused");
    assert_eq!(status_with(&server, &credential_of(&device)), 200);
}

/// A class set from one card image: IT makes one token for "up to 2 devices", and the same
/// `slate.toml` goes on every card with only the device number changed. Two real slated enroll
/// with it; a third card is refused, and so is a card claiming a number already enrolled.
#[test]
fn one_class_set_token_enrolls_each_new_device_of_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), true);
    let token = server.cli(&["enrollment-token", "--class-set", "2", "--valid-hours", "96"]);
    let token = token.trim();
    assert_eq!(token.len(), 43, "{token:?}");
    let card = |number: u16| {
        Device::configure(
            &dir.path().join(format!("device-{number}")),
            &DeviceSetup {
                number,
                server_url: &server.url,
                certificate: server.certificate.as_deref(),
                enrollment_token: Some(token),
            },
        )
    };
    let mut first = card(21);
    let mut second = card(22);
    // The same file on both cards but for the number.
    let text = |d: &Device| std::fs::read_to_string(&d.config).unwrap();
    assert_eq!(
        text(&first)
            .replace("device-21", "device-22")
            .replace("device_number = 21", "device_number = 22"),
        text(&second)
    );
    for device in [&mut first, &mut second] {
        device.start();
        wait_until("the device to enroll", || (device.status()["enrolled"] == true).then_some(()));
    }
    for device in [&first, &second] {
        let id = device.press();
        device.unlock();
        wait_until("its report", || (server.report_count(&id) == 1).then_some(()));
    }
    // A third card, and a card claiming an enrolled number: both refused.
    let status = |number: u16| {
        server
            .client()
            .post(format!("{}/api/v1/enroll", server.url))
            .json(&serde_json::json!({"v": 1, "device": number, "token": token, "software_version": "0.1.0"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status(23), 401, "used up");
    // Refused as enrolled (409: the token's holder may know, so a setup screen can ask again).
    assert_eq!(status(21), 409, "an enrolled device that has been heard from is never taken over");
    assert!(server.staff_page("/fleet").contains("Device 22"));
}
