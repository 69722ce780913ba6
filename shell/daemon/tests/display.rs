//! The display contract, run against every adapter this machine can run: the fake, the sysfs
//! backlight on a fake sysfs tree in a temp dir, logind's `SetBrightness` against a fake
//! logind (`#[zbus::interface]`) on a private `dbus-daemon` started here, and the Wayland overlay
//! on a real headless compositor (sway, private runtime dir) over a bright fullscreen window,
//! seen through wlr-screencopy (`grim`). Temp dirs and Unix sockets only; the fake logind writes
//! the temp sysfs tree the way the kernel would.

use chrono::Utc;
use slate_daemon::config::{Backlight, BlankMethod, DisplayConfig};
use slate_daemon::display::{
    find_backlight, Display, DisplayCall, FakeBlank, FakeDisplay, LogindBacklight, SysfsBacklight,
    SystemDisplay,
};
use slate_protocol::EventId;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What every display must do: confirm darkness only when dark, at a time not before it was
/// asked; stay dark on a second blank and through the reassurance; light up for the UI only when
/// told it is in front, and darken again on a new press; light up with the old setting on
/// restore; restore twice harmlessly.
async fn contract<D: Display>(
    name: &str,
    display: &mut D,
    dark: impl Fn() -> bool,
    lit: impl Fn() -> bool,
) {
    assert!(lit() && !dark(), "{name}: lit before the test");
    let asked = Utc::now();
    let confirmed = display.blank(EventId::new()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(confirmed >= asked, "{name}: confirmed before it was asked");
    assert!(dark(), "{name}: dark once confirmed");
    display.blank(EventId::new()).await.unwrap_or_else(|e| panic!("{name}: second blank: {e}"));
    assert!(dark(), "{name}: still dark");
    display.show_reassurance().await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(dark(), "{name}: still dark while held and reassured");
    display.reveal_ui().await.unwrap_or_else(|e| panic!("{name}: reveal for the UI: {e}"));
    assert!(lit() && !dark(), "{name}: lit for the UI's reassurance");
    display
        .blank(EventId::new())
        .await
        .unwrap_or_else(|e| panic!("{name}: blank after reveal: {e}"));
    assert!(dark(), "{name}: a press after the reveal darkens again");
    display.restore().await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(lit() && !dark(), "{name}: lit as before after restore");
    display.restore().await.unwrap_or_else(|e| panic!("{name}: second restore: {e}"));
    assert!(lit(), "{name}: a second restore changes nothing");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// A fake `/sys/class/backlight` with one backlight, lit.
fn fake_sysfs(with_actual: bool) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("class/backlight/10-0045");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bl_power"), "0\n").unwrap();
    std::fs::write(dir.join("brightness"), "180\n").unwrap();
    std::fs::write(dir.join("max_brightness"), "255\n").unwrap();
    if with_actual {
        std::fs::write(dir.join("actual_brightness"), "180\n").unwrap();
    }
    (root, dir)
}

#[tokio::test]
async fn the_fake_display_keeps_the_contract() {
    let mut fake = FakeDisplay::new(FakeBlank::DarkAt(Utc::now() + chrono::Duration::seconds(1)));
    let calls = fake.clone();
    let dark = || {
        matches!(
            calls.calls().iter().rev().find(|c| **c != DisplayCall::Reassure),
            // RevealUi and Restore both end darkness.
            Some(DisplayCall::Blank(_))
        )
    };
    let lit = || !dark();
    contract("fake", &mut fake, dark, lit).await;
}

#[tokio::test]
async fn sysfs_bl_power_keeps_the_contract() {
    let (_root, dir) = fake_sysfs(true);
    let mut display = SysfsBacklight::new(&dir, BlankMethod::BlPower);
    let bl = dir.join("bl_power");
    contract("sysfs bl_power", &mut display, || read(&bl) == "4", || read(&bl) == "0").await;
    assert_eq!(read(&dir.join("brightness")), "180", "brightness untouched");
}

#[tokio::test]
async fn sysfs_brightness_keeps_the_contract() {
    let (_root, dir) = fake_sysfs(false);
    let mut display = SysfsBacklight::new(&dir, BlankMethod::Brightness);
    let b = dir.join("brightness");
    contract("sysfs brightness", &mut display, || read(&b) == "0", || read(&b) == "180").await;
}

#[tokio::test]
async fn sysfs_refuses_to_confirm_what_it_cannot_see() {
    // A driver that ignores the write: actual_brightness stays up, so darkness is not confirmed.
    let (_root, dir) = fake_sysfs(true);
    let mut display = SysfsBacklight::new(&dir, BlankMethod::Brightness);
    let err = display.blank(EventId::new()).await.unwrap_err();
    assert!(err.to_string().contains("does not read back as dark"), "{err}");
    // No backlight at all.
    let mut gone = SysfsBacklight::new(dir.join("missing"), BlankMethod::BlPower);
    assert!(gone.blank(EventId::new()).await.is_err());
}

#[tokio::test]
async fn the_configured_sysfs_backlight_is_found() {
    let (root, dir) = fake_sysfs(true);
    let sysfs = root.path().join("class/backlight");
    assert_eq!(find_backlight(&sysfs, &Backlight::Auto).unwrap(), dir);
    assert_eq!(find_backlight(&sysfs, &Backlight::Named("10-0045".into())).unwrap(), dir);
    let err = find_backlight(&sysfs, &Backlight::Named("rpi_backlight".into())).unwrap_err();
    assert!(err.to_string().contains("present: 10-0045"), "{err}");
    let config = DisplayConfig::Sysfs { backlight: Backlight::Auto, method: BlankMethod::BlPower };
    let display = SystemDisplay::try_from_config(&config, &sysfs).await.unwrap();
    assert!(matches!(display, SystemDisplay::Sysfs(_)));
    let empty = tempfile::tempdir().unwrap();
    assert!(SystemDisplay::try_from_config(&config, empty.path()).await.is_err());
}

/// A private session bus, stopped when dropped.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dbus-daemon` on a socket in a temp dir, or says why not (then the caller skips).
fn private_bus() -> Option<Bus> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    let child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            println!("SKIPPED: dbus-daemon is not installed ({e}); install the `dbus` package");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
    Some(Bus { child, address: line.trim().to_owned(), _dir: dir })
}

/// logind's session object, as far as `SetBrightness` goes: writes the fake sysfs like the
/// kernel would, and records each call.
struct FakeSession {
    sysfs: PathBuf,
    calls: Arc<Mutex<Vec<(String, String, u32)>>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl FakeSession {
    fn set_brightness(
        &self,
        subsystem: &str,
        name: &str,
        brightness: u32,
    ) -> zbus::fdo::Result<()> {
        self.calls.lock().unwrap().push((subsystem.into(), name.into(), brightness));
        if subsystem != "backlight" || name.contains('/') {
            return Err(zbus::fdo::Error::InvalidArgs("no such device".into()));
        }
        let dir = self.sysfs.join(name);
        for file in ["brightness", "actual_brightness"] {
            std::fs::write(dir.join(file), format!("{brightness}\n"))
                .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn logind_set_brightness_keeps_the_contract_on_a_private_bus() {
    let Some(bus) = private_bus() else { return };
    let (_root, dir) = fake_sysfs(true);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let _logind = zbus::connection::Builder::address(bus.address.as_str())
        .name("org.freedesktop.login1")
        .serve_at(
            "/org/freedesktop/login1/session/auto",
            FakeSession { sysfs: dir.parent().unwrap().to_owned(), calls: calls.clone() },
        )
        .build()
        .await
        .unwrap();
    let client = zbus::connection::Builder::address(bus.address.as_str()).build().await.unwrap();
    let mut display = LogindBacklight::connect(&client, "auto", dir.clone()).await.unwrap();
    let actual = dir.join("actual_brightness");
    contract("logind", &mut display, || read(&actual) == "0", || read(&actual) == "180").await;
    let calls = calls.lock().unwrap().clone();
    let want = |b| ("backlight".to_string(), "10-0045".to_string(), b);
    assert_eq!(calls, vec![want(0), want(0), want(180), want(0), want(180)]);
}

#[tokio::test]
async fn logind_errors_are_blank_failures_not_panics() {
    let Some(bus) = private_bus() else { return };
    let (_root, dir) = fake_sysfs(true);
    let client = zbus::connection::Builder::address(bus.address.as_str()).build().await.unwrap();
    // Nobody serves logind on this bus.
    let mut display = LogindBacklight::connect(&client, "auto", dir).await.unwrap();
    let err = display.blank(EventId::new()).await.unwrap_err();
    assert!(err.to_string().contains("SetBrightness"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wayland_overlay_keeps_the_contract_on_a_real_compositor() {
    use slate_daemon::display::wayland::headless::{Headless, RED};
    use slate_daemon::display::WaylandDisplay;
    let mut headless = match Headless::start() {
        Ok(h) => h,
        Err(e) => {
            println!("SKIPPED: {e}");
            return;
        }
    };
    // The window on screen is the kiosk's own (its app id): the overlay is lifted for the UI only
    // once that window is on screen (shell/wayland's tests show it waiting for it).
    headless.spawn_window(slate_ipc::KIOSK_APP_ID, RED, "sleep 600").unwrap();
    headless
        .wait_for(std::time::Duration::from_secs(15), |f| f.share(RED) > 0.99)
        .unwrap_or_else(|e| panic!("the kiosk's window never showed: {e}"));
    let mut display = WaylandDisplay::spawn(headless.socket().to_owned(), false).unwrap();
    assert!(display.wait_ready(std::time::Duration::from_secs(10)), "{}", headless.log());
    let headless = &headless;
    // Dark is what the compositor shows at once: every pixel black, no waiting.
    let dark = || headless.capture().unwrap().all_black();
    // Lit: the window is back (the compositor redraws after the overlay goes; bounded).
    let lit =
        || headless.wait_for(std::time::Duration::from_secs(5), |f| f.share(RED) > 0.99).is_ok();
    contract("wayland", &mut display, dark, lit).await;
}
