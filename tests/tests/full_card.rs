//! A full card: the real `slated` with its state directory on a small tmpfs filled to the last
//! byte, against the real server on loopback. The button and the hold keep working, every
//! report reaches the server, slated starts again on the full card, and the fleet page says
//! "storage full". Needs root for the mount (as CI runs).

use slate_e2e::{wait_until, Device, DeviceSetup, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs of the test's own, unmounted when dropped.
struct SmallCard(PathBuf);

impl SmallCard {
    fn mount(at: &Path, size: &str) -> SmallCard {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a small tmpfs at {} (needs root)", at.display());
        SmallCard(at.to_owned())
    }

    /// Fills the card to the last byte.
    fn fill(&self) {
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![1u8; 4096];
        while filler.write_all(&chunk).is_ok() {}
        while filler.write_all(&[1]).is_ok() {}
    }
}

impl Drop for SmallCard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn report_ids(server: &Server) -> Vec<String> {
    server.reports().iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
}

/// Presses and returns the report's id, whether the press was filed on the card or is kept
/// in memory (slatectl then fails, naming the report).
fn press(device: &Device) -> (String, bool) {
    let out = Command::new(slate_e2e::binary("slatectl"))
        .arg("--socket")
        .arg(&device.socket)
        .arg("press")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let id = text
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|w| w.len() == 36)
        .unwrap_or_else(|| panic!("a report id in {text:?}"))
        .to_owned();
    (id, out.status.success())
}

#[test]
fn on_a_full_card_the_button_works_reports_arrive_and_the_fleet_says_storage_full() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), false);
    let token = server.enrollment_token(12);
    // Declared before the device: unmounted after slated is stopped.
    let card = SmallCard::mount(&dir.path().join("device/state"), "4m");
    let mut device = Device::configure(
        &dir.path().join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: None,
            enrollment_token: Some(&token),
        },
    );
    // Heartbeats often enough for the fleet page to hear of the full card.
    let config = std::fs::read_to_string(&device.config).unwrap();
    std::fs::write(&device.config, config.replace("heartbeat_s = 3600", "heartbeat_s = 5"))
        .unwrap();
    device.start();
    wait_until("the device to enroll", || (device.status()["enrolled"] == true).then_some(()));
    device.wait_until_drained();

    card.fill();
    // The first press on the full card is filed in the space held back for reports.
    let (first, filed) = press(&device);
    assert!(filed, "filed on the card, in the reserve's space");
    assert_eq!(device.status()["state"], "held");
    assert_eq!(device.status()["storage_fault"], "full");
    wait_until("the report on the server", || report_ids(&server).contains(&first).then_some(()));
    device.unlock();
    wait_until("the fleet page to say storage full", || {
        server.staff_page("/fleet").contains("storage full").then_some(())
    });

    // Stopped and started again on the full card (no reserve left to free): slated starts,
    // the button still darkens and holds, and the report goes from memory.
    device.kill();
    device.start();
    card.fill();
    let (second, _) = press(&device);
    assert_eq!(device.status()["state"], "held", "the hold works on a full card");
    wait_until("the second report on the server", || {
        report_ids(&server).contains(&second).then_some(())
    });
    device.wait_until_drained();
    let ids = report_ids(&server);
    assert_eq!(ids.iter().filter(|id| **id == first).count(), 1, "once: {ids:?}");
    assert_eq!(ids.iter().filter(|id| **id == second).count(), 1, "once: {ids:?}");
}

#[test]
fn a_spool_that_cannot_be_opened_does_not_stop_slated_and_reports_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), false);
    let token = server.enrollment_token(12);
    let mut device = Device::configure(
        &dir.path().join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: None,
            enrollment_token: Some(&token),
        },
    );
    // Something where the spool's directory should be: it cannot be opened or made.
    std::fs::create_dir_all(dir.path().join("device/state")).unwrap();
    std::fs::write(dir.path().join("device/state/spool"), b"not a directory").unwrap();
    device.start();
    assert_eq!(device.status()["storage_fault"], "unwritable");
    let (report, filed) = press(&device);
    assert!(!filed, "not filed on the card, and slatectl says so");
    assert_eq!(device.status()["state"], "held", "the button still holds");
    wait_until("the report, uploaded from memory", || {
        report_ids(&server).contains(&report).then_some(())
    });
    // The card is fixed: the spool opens and takes what is still in memory.
    std::fs::remove_file(dir.path().join("device/state/spool")).unwrap();
    wait_until("the spool to open", || {
        device.status().get("storage_fault").is_none().then_some(())
    });
    device.wait_until_drained();
    assert_eq!(report_ids(&server).iter().filter(|id| **id == report).count(), 1);
}
