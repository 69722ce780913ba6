//! The overlay against a real headless compositor (sway, pixman renderer, private runtime dir):
//! a bright fullscreen window, darkened, captured through wlr-screencopy, lifted, captured again.
//! Skips (saying so) where sway, foot or grim are not installed.

use slate_wayland::headless::{Headless, HEIGHT, RED, WIDTH};
use slate_wayland::{Error, Overlay, Settings};
use std::time::{Duration, SystemTime};

const WAIT: Duration = Duration::from_secs(10);

fn start() -> Option<Headless> {
    match Headless::start() {
        Ok(h) => Some(h),
        Err(e) => {
            println!("SKIPPED: {e}");
            None
        }
    }
}

/// The answer, waited for (bounded).
fn block<T>(mut rx: tokio::sync::oneshot::Receiver<T>) -> T {
    let until = std::time::Instant::now() + WAIT;
    loop {
        match rx.try_recv() {
            Ok(answer) => return answer,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                assert!(std::time::Instant::now() < until, "no answer in time");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("the overlay thread dropped the reply: {e}"),
        }
    }
}

#[test]
fn the_overlay_darkens_every_pixel_and_lifts_again() {
    let Some(mut headless) = start() else { return };
    headless.bright_window("sleep 600").unwrap();
    let overlay =
        Overlay::spawn(Settings { socket: headless.socket().to_owned(), output_power: false })
            .unwrap();
    assert!(overlay.wait_ready(WAIT), "overlay not ready: {}", headless.log());
    // Ready but not shown: the window is still all there.
    let frame = headless.capture().unwrap();
    assert!(frame.share(RED) > 0.99, "ready overlay shows nothing: {}", frame.summary());

    for round in 0..2 {
        let asked = SystemTime::now();
        let confirmed = block(overlay.dark()).unwrap();
        assert!(confirmed >= asked, "round {round}: confirmed before asked");
        let frame = headless.capture().unwrap();
        assert!(frame.all_black(), "round {round}: dark once confirmed: {}", frame.summary());
        // A second press while dark answers at once and stays dark.
        block(overlay.dark()).unwrap();
        assert!(headless.capture().unwrap().all_black(), "round {round}: still dark");

        block(overlay.lift()).unwrap();
        headless
            .wait_for(WAIT, |f| f.share(RED) > 0.99)
            .unwrap_or_else(|e| panic!("round {round}: the window is back after lifting: {e}"));
        assert!(overlay.wait_ready(WAIT), "round {round}: ready again after lifting");
    }
}

#[test]
fn the_overlay_is_lifted_for_the_kiosk_only_once_its_window_is_on_screen() {
    const GREEN: [u8; 3] = [0, 0xff, 0];
    let Some(mut headless) = start() else { return };
    // The app the pupil reported, in front.
    headless.bright_window("sleep 600").unwrap();
    let overlay =
        Overlay::spawn(Settings { socket: headless.socket().to_owned(), output_power: false })
            .unwrap();
    assert!(overlay.wait_ready(WAIT), "overlay not ready: {}", headless.log());
    block(overlay.dark()).unwrap();
    // The kiosk says its screen is in front before its window has drawn: still dark, not the
    // reported app again.
    block(overlay.lift_over("slate-ui")).unwrap();
    let frame = headless.capture().unwrap();
    assert!(
        frame.all_black(),
        "lifted before the kiosk's window was on screen: {}",
        frame.summary()
    );
    // Another app's window is not the kiosk's: mapped (sway lists it), and still dark.
    headless.spawn_window("other", RED, "sleep 600").unwrap();
    let until = std::time::Instant::now() + WAIT;
    while !headless
        .swaymsg(&["-t", "get_tree"])
        .unwrap_or_default()
        .contains("\"app_id\": \"other\"")
    {
        assert!(
            std::time::Instant::now() < until,
            "the other window never mapped: {}",
            headless.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let frame = headless.capture().unwrap();
    assert!(frame.all_black(), "lifted for another app's window: {}", frame.summary());
    headless.spawn_window("slate-ui", GREEN, "sleep 600").unwrap();
    headless
        .wait_for(WAIT, |f| f.share(GREEN) > 0.99)
        .unwrap_or_else(|e| panic!("the kiosk's window never showed: {e}"));
    // Darkness again cancels a lift still waiting; with the kiosk on screen it lifts at once.
    block(overlay.dark()).unwrap();
    assert!(headless.capture().unwrap().all_black());
    block(overlay.lift_over("slate-ui")).unwrap();
    headless
        .wait_for(WAIT, |f| f.share(GREEN) > 0.99)
        .unwrap_or_else(|e| panic!("not lifted with the kiosk on screen: {e}"));
}

#[test]
fn without_a_compositor_darkness_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-9");
    let overlay = Overlay::spawn(Settings { socket, output_power: false }).unwrap();
    assert_eq!(block(overlay.dark()), Err(Error::Disconnected));
    assert!(!overlay.is_ready());
    block(overlay.lift()).unwrap();
}

#[test]
fn a_compositor_that_restarts_is_reconnected_and_darkened_again() {
    let Some(mut first) = start() else { return };
    first.bright_window("sleep 600").unwrap();
    let overlay =
        Overlay::spawn(Settings { socket: first.socket().to_owned(), output_power: false })
            .unwrap();
    assert!(overlay.wait_ready(WAIT));
    block(overlay.dark()).unwrap();
    let mut headless = first;
    headless.restart().unwrap();
    // The compositor is back but our connection died with the old one: the next request may
    // fail fast (never wait on it) until the thread has reconnected.
    let answer = block(overlay.dark());
    println!("first request after the restart: {answer:?}");

    // The overlay comes back by itself, dark (it was asked for last).
    headless.spawn_bright_window("sleep 600").unwrap();
    assert!(overlay.wait_ready(Duration::from_secs(15)), "reconnected: {}", headless.log());
    headless
        .wait_for(WAIT, |f| f.all_black())
        .unwrap_or_else(|e| panic!("dark again after the restart: {e}"));
    block(overlay.lift()).unwrap();
    if let Err(e) = headless.wait_for(WAIT, |f| f.share(RED) > 0.99) {
        panic!(
            "the window is back: {e}; exited: {:?}; log: {}",
            headless.exited_clients(),
            headless.log()
        );
    }
}

#[test]
fn a_screen_plugged_in_while_dark_is_darkened_too() {
    let Some(mut headless) = start() else { return };
    headless.bright_window("sleep 600").unwrap();
    let overlay =
        Overlay::spawn(Settings { socket: headless.socket().to_owned(), output_power: false })
            .unwrap();
    assert!(overlay.wait_ready(WAIT));
    block(overlay.dark()).unwrap();
    let one = headless.capture().unwrap();
    assert!(one.all_black(), "{}", one.summary());

    headless.swaymsg(&["create_output"]).unwrap();
    // The new output gets its own overlay, shown without being asked again.
    let both = headless
        .wait_for(WAIT, |f| f.width > one.width && f.all_black())
        .unwrap_or_else(|e| panic!("both screens dark: {e}"));
    // And a press now is confirmed only with both drawn.
    block(overlay.dark()).unwrap();
    assert!(headless.capture().unwrap().all_black(), "{}", both.summary());

    block(overlay.lift()).unwrap();
    // The window is back on its screen; the new screen shows the compositor's background.
    let first_screen = (WIDTH * HEIGHT) as usize;
    headless
        .wait_for(WAIT, |f| {
            f.width == both.width && f.pixels.iter().filter(|p| **p == RED).count() >= first_screen
        })
        .unwrap();
    assert!(overlay.wait_ready(WAIT), "an overlay ready on both screens");
}

#[test]
fn a_compositor_that_never_answers_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-0");
    // Accepts connections (the kernel's backlog) and never says a word.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let overlay = Overlay::spawn(Settings { socket, output_power: false }).unwrap();
    let mut answer = overlay.dark();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(answer.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)),
        "no answer from a silent compositor (the caller's timeout decides)"
    );
    assert!(!overlay.is_ready());
    // Dropping it returns (the stuck thread is left behind) instead of hanging the caller.
    drop(overlay);
}
