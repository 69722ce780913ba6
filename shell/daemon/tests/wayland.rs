//! The Wayland display adapter on a real headless compositor (sway, pixman, private runtime
//! dir), beyond the shared contract in `display.rs`: keys go nowhere under the overlay, outputs
//! are powered off only after darkness is confirmed and on again before the overlay goes, and
//! `[display] backend = "wayland"` builds it. Skips (saying so) where sway, foot, grim or wtype
//! are not installed (`scripts/setup` installs them).

use slate_daemon::config::DisplayConfig;
use slate_daemon::display::wayland::headless::{Headless, RED};
use slate_daemon::display::{Display, SystemDisplay, WaylandDisplay};
use slate_protocol::EventId;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn skip(why: String) {
    println!("SKIPPED: {why}");
}

/// Types `text` and Return into the focused window (virtual keyboard protocol, `wtype`).
fn type_line(headless: &Headless, text: &str) {
    let status = headless
        .client("wtype")
        .args([text, "-k", "Return"])
        .stderr(Stdio::inherit())
        .status()
        .expect("wtype");
    assert!(status.success(), "wtype {text:?}: {status}");
}

/// The file's text once it contains `want` (bounded), or what it held at the end.
fn wait_for_text(path: &Path, want: &str) -> Result<String, String> {
    let until = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(want) {
            return Ok(text);
        }
        if Instant::now() > until {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_under_the_overlay_gets_keys() {
    if Command::new("wtype").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err()
    {
        return skip("wtype is not installed (Debian package wtype)".into());
    }
    let mut headless = match Headless::start() {
        Ok(h) => h,
        Err(e) => return skip(e),
    };
    let dir = tempfile::tempdir().unwrap();
    let typed = dir.path().join("typed");
    // The app under the overlay: a terminal writing every line it is given to a file.
    headless.bright_window(&format!("stty -echo; cat > '{}'", typed.display())).unwrap();
    // The first keys can arrive before the terminal has its keymap and focus: warm up.
    // (Typing the same way while dark then proves nothing gets through, not that typing failed.)
    let mut warm = false;
    for _ in 0..20 {
        type_line(&headless, "warm");
        if std::fs::read_to_string(&typed).unwrap_or_default().contains("arm\n") {
            warm = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(warm, "the window never got keys: {}", headless.log());
    let start = std::fs::read_to_string(&typed).unwrap().len();
    type_line(&headless, "before");
    wait_for_text(&typed, "efore\n").expect("the window gets keys before the press");

    let mut display = WaylandDisplay::spawn(headless.socket().to_owned(), false).unwrap();
    assert!(display.wait_ready(WAIT), "{}", headless.log());
    display.blank(EventId::new()).await.unwrap();
    type_line(&headless, "secret");
    display.show_reassurance().await.unwrap();
    type_line(&headless, "held");

    display.restore().await.unwrap();
    type_line(&headless, "after");
    // A new virtual keyboard (each wtype) or a focus change can cost the first key: match
    // without it.
    let text = wait_for_text(&typed, "fter\n").expect("the window gets keys after the unlock");
    let text = &text[start..];
    assert!(
        !text.contains("ecret") && !text.contains("eld"),
        "keys typed while dark reached the window: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_power_off_after_darkness_and_on_before_the_overlay_goes() {
    let mut headless = match Headless::start_with_protocol_log() {
        Ok(h) => h,
        Err(e) => return skip(e),
    };
    headless.bright_window("sleep 600").unwrap();
    let mut display = WaylandDisplay::spawn(headless.socket().to_owned(), true).unwrap();
    assert!(display.wait_ready(WAIT), "{}", headless.log());
    display.blank(EventId::new()).await.unwrap();
    // Whether or not this output can really switch off (sway's headless outputs cannot; it
    // logs "Failed to commit output"), the overlay keeps it dark.
    let frame = headless.capture().unwrap();
    assert!(frame.all_black(), "{}", frame.summary());
    display.restore().await.unwrap();
    headless.wait_for(WAIT, |f| f.share(RED) > 0.99).expect("the window is back");

    // What the compositor received, in order (only this client uses these two protocols here).
    let log = headless.log();
    let at = |request: &str| {
        log.lines()
            .position(|l| l.contains(request) && !l.contains(" -> "))
            .unwrap_or_else(|| panic!("the compositor never received {request}"))
    };
    let shown = at("zwlr_layer_surface_v1@").max(at(".set_keyboard_interactivity(1)"));
    let off = at("zwlr_output_power_v1@").max(at(".set_mode(0)"));
    let on = at(".set_mode(1)");
    let gone = log
        .lines()
        .position(|l| l.contains("zwlr_layer_surface_v1@") && l.contains(".destroy()"))
        .expect("the overlay was destroyed");
    assert!(shown < off, "powered off before the overlay was shown");
    assert!(off < on && on < gone, "powered on only after the overlay went");
    // The compositor said it drew the overlay before it was told to power off: the frame
    // callback answered (`wl_callback@N.done`) after the overlay's commit and before `set_mode(0)`.
    let done_between = log.lines().enumerate().any(|(i, l)| {
        i > shown && i < off && l.contains(" -> wl_callback@") && l.contains(".done(")
    });
    assert!(done_between, "no frame done between showing the overlay and powering off");
    // Only one compositor power answer would say Off; with it unsupported, it stays On.
    assert!(!display.power().is_empty(), "the compositor reported the output's power");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_wayland_backend_is_built() {
    let mut headless = match Headless::start() {
        Ok(h) => h,
        Err(e) => return skip(e),
    };
    headless.bright_window("sleep 600").unwrap();
    let config = DisplayConfig::Wayland {
        socket: headless.socket().to_owned(),
        output_power: false,
        backlight: None,
    };
    let mut display =
        SystemDisplay::try_from_config(&config, Path::new("/nonexistent")).await.unwrap();
    let SystemDisplay::Wayland(wayland) = &display else { panic!("not the wayland adapter") };
    assert!(wayland.first.wait_ready(WAIT));
    display.blank(EventId::new()).await.unwrap();
    assert!(headless.capture().unwrap().all_black());
    display.restore().await.unwrap();
    headless.wait_for(WAIT, |f| f.share(RED) > 0.99).expect("the window is back");
}

#[tokio::test]
async fn with_no_compositor_a_press_fails_fast_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let mut display = WaylandDisplay::spawn(dir.path().join("wayland-0"), true).unwrap();
    let asked = Instant::now();
    let err = display.blank(EventId::new()).await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
    // Well inside the daemon's BLANK_TIMEOUT: nothing waits on an absent compositor.
    assert!(asked.elapsed() < slate_daemon::daemon::BLANK_TIMEOUT, "{:?}", asked.elapsed());
    display.restore().await.unwrap();
}
