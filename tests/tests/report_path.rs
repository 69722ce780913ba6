//! The walking skeleton's promise, end to end: a press on a device reaches the DSL's page, exactly
//! once, whatever happens between (SIGKILL, server down, a damaged spool or config).

use slate_e2e::{wait_until, Device, DeviceSetup, Server};
use std::process::Command;

/// A server with one pupil on the roster and an enrolled, running device number 12.
/// A server with one pupil on its roster (Amira Khan, Year 2) and device 12 enrolled and
/// following its policy; the pupil's id.
fn school(dir: &std::path::Path, tls: bool) -> (Server, Device, String) {
    let server = Server::start(&dir.join("server"), tls);
    server.import_pupil("Year 2", "Amira", "Khan", "ks1");
    let token = server.enrollment_token(12);
    let mut device = Device::configure(
        &dir.join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: server.certificate.as_deref(),
            enrollment_token: Some(&token),
        },
    );
    // Sign-in needs the pupil on the roster of the policy in force: follow the server's.
    let key = server.policy_key.clone().expect("the server prints its policy key");
    device.add_setting(Some("server"), &format!("public_key = {key:?}\npolicy_refresh_s = 10"));
    device.start();
    wait_until("the device to enroll and follow the policy", || {
        let status = device.status();
        (status["enrolled"] == true && status.get("policy_issued_at").is_some()).then_some(())
    });
    let pupil = device.pupil_id("Amira");
    (server, device, pupil)
}

fn report_with_id<'a>(reports: &'a [serde_json::Value], id: &str) -> Vec<&'a serde_json::Value> {
    reports.iter().filter(|r| r["id"] == id).collect()
}

#[test]
fn a_press_appears_on_the_dsl_page_with_device_and_pupil() {
    let dir = tempfile::tempdir().unwrap();
    let (server, device, pupil) = school(dir.path(), true);
    device.ctl(&["sign-in", &pupil]);
    device.ctl(&[
        "foreground",
        "--app",
        "browser",
        "--url",
        "https://example.org/upsetting",
        "--title",
        "Some <b>page</b>",
    ]);

    let id = device.press();
    assert_eq!(device.status()["state"], "held", "the device is held for staff after a press");

    let page = wait_until("the report on the DSL page", || {
        let page = server.staff_page("/reports");
        page.contains(&pupil).then_some(page)
    });
    assert!(page.contains("/devices/12"), "device number links to its page:\n{page}");
    assert!(page.contains("Amira K."), "pupil's roster name is shown:\n{page}");
    assert!(page.contains("https://example.org/upsetting"), "URL recorded:\n{page}");
    assert!(page.contains("Some &lt;b&gt;page&lt;/b&gt;"), "page title shown, escaped:\n{page}");

    let reports = server.reports();
    let report = report_with_id(&reports, &id);
    assert_eq!(report.len(), 1, "{reports:?}");
    assert_eq!(report[0]["device"], 12);
    assert_eq!(report[0]["pupil"], pupil.as_str());
    assert_eq!(report[0]["app"], "browser");
    // This test device has no screen (no compositor, no backlight): the report must not claim
    // a darkness that never happened. Darkness itself is proven with a real compositor in
    // shell/wayland's tests and on the image (images/test).
    assert!(
        report[0]["blank_latency_us"].is_null(),
        "no darkness claimed without a screen: {report:?}"
    );

    // The device page lists the session the report happened in.
    let device_page = server.staff_page("/devices/12");
    assert!(device_page.contains(&pupil) && device_page.contains("Amira K."), "{device_page}");
}

#[test]
fn a_report_survives_sigkill_before_upload_and_arrives_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut device, pupil) = school(dir.path(), false);
    device.ctl(&["sign-in", &pupil]);
    device.wait_until_drained();

    server.stop();
    let id = device.press();
    device.kill();
    assert!(device.spool_text().contains(&id), "the press was on disk before slated was killed");

    server.restart();
    device.start();
    let reports = wait_until("the report after restart", || {
        let reports = server.reports();
        (!report_with_id(&reports, &id).is_empty()).then_some(reports)
    });
    assert_eq!(report_with_id(&reports, &id).len(), 1);
    device.wait_until_drained();
    assert_eq!(
        report_with_id(&server.reports(), &id).len(),
        1,
        "still once after the spool drained"
    );
}

/// The server's answer to "who had device 12 at `at`?" (the staff JSON API).
fn who_had(server: &Server, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let path = format!("/api/v1/staff/who-had?device=12&at={}", at.replace('+', "%2B"));
    serde_json::from_str(&server.staff_page(&path)).expect("who-had JSON")
}

#[test]
fn after_a_crash_and_a_new_boot_who_had_no_longer_names_the_pupil() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut device, pupil) = school(dir.path(), false);
    // The test cannot reboot the machine: slated reads its boot id from a file instead.
    device.kill();
    device.set_boot_id("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b01");
    device.start();
    device.ctl(&["sign-in", &pupil]);
    device.wait_until_drained();
    let signed_in = chrono::Utc::now();
    // The last word the server hears from this boot (a real device also sends heartbeats).
    device.ctl(&["app-opened", "maths"]);
    device.wait_until_drained();
    assert_eq!(who_had(&server, signed_in)["pupil"], pupil.as_str(), "signed in");

    // A crash or power cut: no sign-out, no session_ended. The device comes back in a new boot.
    device.kill();
    device.set_boot_id("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b02");
    device.start();
    device.wait_until_drained();
    let after = who_had(&server, chrono::Utc::now());
    assert!(after["pupil"].is_null(), "the pupil is not named after the restart: {after}");
    let during = who_had(&server, signed_in);
    assert_eq!(during["pupil"], pupil.as_str(), "still named while signed in: {during}");
    assert_eq!(during["end_reason"], "device_restarted", "{during}");
    assert_eq!(during["end_inferred"], true, "{during}");
    let page = server.staff_page("/devices/12");
    assert!(page.contains("then the device restarted"), "{page}");
}

#[test]
fn a_crash_after_upload_but_before_the_spool_forgets_does_not_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut device, _) = school(dir.path(), false);
    server.stop();
    let id = device.press();
    // The spool as it stood before the upload was acknowledged: what a crash at that moment leaves.
    let unacknowledged = device.snapshot_spool();

    server.restart();
    device.wait_until_drained();
    device.kill();
    device.restore_spool(&unacknowledged);
    device.start();
    device.wait_until_drained();

    let reports = server.reports();
    assert_eq!(report_with_id(&reports, &id).len(), 1, "{reports:?}");
    assert_eq!(reports.len(), 1, "no other report appeared");
}

#[test]
fn a_press_while_the_server_is_down_arrives_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, device, pupil) = school(dir.path(), true);
    server.stop();

    device.ctl(&["sign-in", &pupil]);
    let id = device.press();
    assert_ne!(
        device.status()["spool_pending"],
        0,
        "waiting in the spool while the server is down"
    );

    server.restart();
    wait_until("the report once the server is back", || {
        (report_with_id(&server.reports(), &id).len() == 1).then_some(())
    });
}

#[test]
fn a_corrupt_spool_record_is_set_aside_and_the_others_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, mut device, _) = school(dir.path(), false);
    server.stop();
    let first = device.press();
    device.unlock();
    let second = device.press();
    device.kill();

    // Damage the first report's record in the middle of its segment.
    let segment = device
        .spool_segments()
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains(&first))
        .expect("the first report's segment");
    let spool = std::fs::read_to_string(&segment).unwrap();
    assert!(spool.find(&first) < spool.find(&second), "the second report comes after it");
    let damaged = spool.replacen(&first, &first.replace(['0', '1', '2', '3'], "Z"), 1);
    assert_ne!(spool, damaged, "the first report's record was found and damaged");
    std::fs::write(&segment, damaged).unwrap();

    server.restart();
    device.start();
    device.wait_until_drained();
    let reports = server.reports();
    assert_eq!(
        report_with_id(&reports, &second).len(),
        1,
        "the undamaged report arrived: {reports:?}"
    );
    assert!(
        report_with_id(&reports, &first).is_empty(),
        "the damaged record was not sent as it is"
    );
    let quarantine = std::fs::read_to_string(device.dir.join("state/spool/corrupt.log")).unwrap();
    assert!(quarantine.contains("Z"), "the damaged record is kept aside for IT, not thrown away");
}

#[test]
fn a_corrupt_config_gets_a_clear_error_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("device_number = 0\n[server]\nurl = \"http://127.0.0.1:1\"\n", "device_number"),
        ("device_number = 12\n[server]\nurl = \"http://192.0.2.1:80\"\n", "url"),
        ("device_number = 12\n", "server"),
        ("device_number = \"twelve\"\n[server]\nurl = \"http://127.0.0.1:1\"\n", "device_number"),
        ("\u{0}\u{1}garbage[[[", "slate.toml"),
    ];
    for (text, field) in cases {
        let config = dir.path().join("slate.toml");
        std::fs::write(&config, text).unwrap();
        let out = Command::new(slate_e2e::binary("slated"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&config.display().to_string()),
            "{text:?}: names the file: {stderr}"
        );
        assert!(stderr.contains(field), "{text:?}: names `{field}`: {stderr}");
        assert!(!stderr.contains("panicked"), "{text:?}: {stderr}");
    }
}

#[test]
fn the_servers_signed_policy_reaches_the_device() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(&dir.join("server"), false);
    // A class with a pupil: the kiosk policy needs one.
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n").unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let mut device = Device::following_policy(&dir.join("device"), &server, 12);
    let written = std::fs::read_to_string(&device.config).unwrap();
    let token = written.lines().find(|l| l.starts_with("enrollment_token")).unwrap().to_owned();
    device.start();
    let status = wait_until("the policy in force on the device", || {
        let status = device.status();
        status.get("policy_issued_at").is_some().then_some(status)
    });
    assert_eq!(status["enrolled"], true);
    let policy = device.dir.join("state").join("policy");
    assert!(policy.join("kiosk.json").exists() && policy.join("filter.json").exists());
    // The used token is gone from the device's configuration; the rest is as written.
    let config = std::fs::read_to_string(&device.config).unwrap();
    assert!(!config.contains(&token) && config.contains("public_key"), "{config}");
    // The pupil ids are the server's: read them from the policy as received.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(policy.join("kiosk.json")).unwrap()).unwrap();
    let kiosk: serde_json::Value =
        serde_json::from_str(bundle["payload"].as_str().unwrap()).unwrap();
    assert_eq!(kiosk["classes"][0]["name"], "Oak");
    let pupil = kiosk["classes"][0]["pupils"][0]["id"].as_str().unwrap().to_owned();
    device.ctl(&["sign-in", &pupil]);
    assert_eq!(device.status()["pupil"], pupil.as_str());
}
