//! Backup and restore as IT does them, with the real parts: `age-keygen` makes IT's key pair, the
//! running server is backed up with `slate-server backup`, the data directory is wiped, the backup
//! is restored into a new one with `slate-server restore`, and a real, enrolled slated goes on
//! working against it: same certificate, same credential, same policy key, nothing lost.

use slate_e2e::{age_key_pair, backup_listing, run_ok, wait_until, Device, DeviceSetup, Server};
use std::process::Command;

#[test]
fn a_restored_server_keeps_every_device_working_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let old_dir = dir.path().join("server-old");
    let mut server = Server::start(&old_dir, true);
    server.import_pupil("Year 2", "Amira", "Khan", "ks1");
    // The school's certificate on the card, as IT puts it there.
    let certificate = dir.path().join("server-ca.pem");
    std::fs::copy(server.certificate.as_ref().unwrap(), &certificate).unwrap();
    let token = server.enrollment_token(12);
    let mut device = Device::configure(
        &dir.path().join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: Some(&certificate),
            enrollment_token: Some(&token),
        },
    );
    let policy_key = server.policy_key.clone().expect("the server prints its policy key");
    device.add_setting(
        Some("server"),
        &format!("public_key = {policy_key:?}\npolicy_refresh_s = 10"),
    );
    device.start();
    wait_until("the device to enroll and follow the policy", || {
        let status = device.status();
        (status["enrolled"] == true && status.get("policy_issued_at").is_some()).then_some(())
    });
    let before = device.press();
    device.unlock();
    wait_until("the report", || (server.report_count(&before) == 1).then_some(()));

    // IT's key pair; the server gets only the public half.
    let (identity, recipient) = age_key_pair(dir.path(), "it.key");
    assert!(recipient.starts_with("age1"), "{recipient}");
    let backup = dir.path().join("nightly.age");
    let said =
        server.cli(&["backup", "--recipient", &recipient, "--out", backup.to_str().unwrap()]);
    assert!(said.starts_with("backup written: "), "{said}");
    let sealed = std::fs::read(&backup).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1"), "an age file");
    for secret in ["policy-key", "totp-key"] {
        let key = std::fs::read_to_string(old_dir.join(secret)).unwrap();
        let key = key.trim().as_bytes();
        assert!(!sealed.windows(key.len()).any(|w| w == key), "{secret} is not readable in it");
    }
    // IT can open it by hand with age.
    let listing = backup_listing(&identity, &backup);
    for name in ["slate-backup.txt", "slate.sqlite", "policy-key", "totp-key", "tls/"] {
        assert!(listing.contains(name), "{name} in {listing}");
    }

    // The old machine is gone, a press happens meanwhile (kept on the device).
    server.stop();
    std::fs::remove_dir_all(&old_dir).unwrap();
    let during = device.press();
    device.unlock();

    // The new machine's server, just installed: its service made a database and keys of its own
    // (here by the first admin command), with nothing in them.
    let new_dir = dir.path().join("server-new");
    let mut fresh = Command::new(slate_e2e::binary("slate-server"));
    fresh.args(["enrollment-token", "--device", "1", "--data-dir"]).arg(&new_dir);
    run_ok(fresh);
    let fresh_key = std::fs::read(new_dir.join("totp-key")).unwrap();

    // A wrong key restores nothing, and moves nothing.
    let (wrong, _) = age_key_pair(dir.path(), "wrong.key");
    let refused = Command::new(slate_e2e::binary("slate-server"))
        .args(["restore", "--data-dir"])
        .arg(&new_dir)
        .arg("--identity")
        .arg(&wrong)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("does not open with this key"), "{said}");
    assert_eq!(std::fs::read(new_dir.join("totp-key")).unwrap(), fresh_key, "left as it was");

    let restored = run_ok({
        let mut c = Command::new(slate_e2e::binary("slate-server"));
        c.args(["restore", "--data-dir"])
            .arg(&new_dir)
            .arg("--identity")
            .arg(&identity)
            .arg(&backup);
        c
    });
    let said = String::from_utf8(restored.stdout).unwrap();
    assert!(said.starts_with("restored into "), "{said}");
    let aside: Vec<_> = std::fs::read_dir(&new_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "the fresh server's own files were set aside, not deleted");
    assert_eq!(std::fs::read(new_dir.join(&aside[0]).join("totp-key")).unwrap(), fresh_key);
    assert_ne!(std::fs::read(new_dir.join("totp-key")).unwrap(), fresh_key, "the backup's key");
    // Restoring twice over it is refused: nothing is overwritten.
    let again = Command::new(slate_e2e::binary("slate-server"))
        .args(["restore", "--data-dir"])
        .arg(&new_dir)
        .arg("--identity")
        .arg(&identity)
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("nothing is overwritten")
    );

    server.restart_on(&new_dir);
    assert_eq!(server.policy_key.as_deref(), Some(policy_key.as_str()), "the same policy key");
    wait_until("the press made while the server was away", || {
        (server.report_count(&during) == 1).then_some(())
    });
    let after = device.press();
    device.unlock();
    wait_until("a new press", || (server.report_count(&after) == 1).then_some(()));
    device.wait_until_drained();
    for id in [&before, &during, &after] {
        assert_eq!(server.report_count(id), 1, "report {id} once");
    }
    assert!(device.status().get("policy_issued_at").is_some(), "the policy still verifies");
}
