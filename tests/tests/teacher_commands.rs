//! A teacher's commands end to end, with the real binaries on loopback: "eyes on me" and
//! "sign everyone out" sent from the server's /commands page reach a running slated through its
//! long poll, and what they did comes back to the DSL's device page.

use slate_e2e::{wait_until, Device, Server};
use std::path::Path;

const ROSTER: &str = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n";

/// A server with a class and a pupil; device 12 enrolled with the server's policy in force and
/// Amira (by the id the server gave her) signed in.
fn classroom(dir: &Path) -> (Server, Device, String) {
    let server = Server::start(&dir.join("server"), false);
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, ROSTER).unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let mut device = Device::following_policy(&dir.join("device"), &server, 12);
    device.start();
    wait_until("the policy in force on the device", || {
        device.status().get("policy_issued_at").is_some().then_some(())
    });
    let kiosk = device.policy_payload("kiosk");
    let pupil = kiosk["classes"][0]["pupils"][0]["id"].as_str().unwrap().to_owned();
    device.ctl(&["sign-in", &pupil]);
    assert_eq!(device.status()["pupil"], pupil.as_str());
    (server, device, pupil)
}

fn send(server: &Server, devices: &str, command: &str) {
    let form = [("devices", devices), ("command", command)];
    assert_eq!(server.submit("/commands", "/commands", &form), 303, "{command} sent");
}

fn screens_locked(device: &Device) -> bool {
    device.status()["screens_locked"].as_bool().expect("status has screens_locked")
}

#[test]
fn eyes_on_me_locks_the_screens_and_ending_it_unlocks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, device, pupil) = classroom(tmp.path());
    assert!(!screens_locked(&device));

    send(&server, "12", "lock_screens");
    wait_until("eyes on me on the device", || screens_locked(&device).then_some(()));
    assert_eq!(device.status()["pupil"], pupil.as_str(), "the pupil stays signed in");

    send(&server, "all", "unlock_screens");
    wait_until("eyes on me ended on the device", || (!screens_locked(&device)).then_some(()));
    assert!(server.staff_page("/commands").contains("lock_screens"), "the command is listed");
}

#[test]
fn a_command_for_another_device_changes_nothing_here() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, device, pupil) = classroom(tmp.path());
    send(&server, "13", "sign_out_all");
    // Then one for this device: once it has arrived, the earlier one had its chance.
    send(&server, "12", "lock_screens");
    wait_until("this device's command", || screens_locked(&device).then_some(()));
    assert_eq!(device.status()["pupil"], pupil.as_str(), "device 13's sign-out is not ours");
}

#[test]
fn sign_everyone_out_ends_the_session_as_signed_out_by_staff() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, device, _pupil) = classroom(tmp.path());
    // The session has started on the server's page before the teacher ends it.
    wait_until("the session on the device page", || {
        server.staff_page("/devices/12").contains("still signed in").then_some(())
    });

    send(&server, "all", "sign_out_all");
    wait_until("the pupil signed out on the device", || {
        device.status().get("pupil").is_none().then_some(())
    });
    let page = wait_until("the session's end on the device page", || {
        let page = server.staff_page("/devices/12");
        page.contains("signed out by staff").then_some(page)
    });
    assert!(page.contains("Amira K."), "whose session it was:\n{page}");
    assert!(!page.contains("still signed in"), "no session left open:\n{page}");
}
