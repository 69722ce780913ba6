//! IT's setup page end to end: the real screens (Slint's testing backend), tapped by their
//! accessible labels, through the real `SocketLink`, to slated's own control-socket server
//! answering with slated's own setup core (`slate_daemon::setup::Setup`: the code check, the
//! steps and the words of its notices). Only the school server is played by the test: it says
//! device 7 is enrolled already and enrolls any other number.

mod common;

use slate_daemon::setup::{Effect, Input, Setup, Step};
use slate_ipc::control::{Pin, Reply, Request};
use slate_ui::app::{Controller, RecordingLauncher};
use slate_ui::link::SocketLink;
use slate_ui::screen::Screen;
use slate_ui::AppWindow;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const CODE: &str = "12345678";

/// slated in setup, as `slate_daemon::setup::run` serves it (no clock: the time since boot
/// stands still, as no pause is reached here). Once enrolled it answers `status` as device N.
fn serve_setup(
    socket: &std::path::Path,
    seen: std::sync::mpsc::Sender<Request>,
) -> std::thread::JoinHandle<()> {
    let now = Duration::from_secs(100);
    let mut setup = Setup::new(0, now);
    common::serve_control_socket(socket, move |msg| {
        let _ = seen.send(msg.request.clone());
        if let Step::Done(device) = setup.step {
            let _ = msg.reply.send(Reply {
                device: Some(device),
                state: Some("idle".into()),
                ..Reply::ok()
            });
            return;
        }
        let input = match msg.request {
            Request::SetupCode { code } => Some(Input::Code(code.0)),
            Request::SetupNumber { number } => Some(Input::Number(number)),
            Request::SetupConfirm { yes } => Some(Input::Confirm(yes)),
            _ => None,
        };
        let was = setup.step;
        let asked = input.is_some();
        if let Some(input) = input {
            let mut effects = setup.step(input, now, CODE);
            while let Some(effect) = effects.pop() {
                if let Effect::Enroll(device) = effect {
                    // The school server: 7 is taken.
                    let answer = if device.get() == 7 { Input::Taken } else { Input::Enrolled };
                    effects.extend(setup.step(answer, now, CODE));
                }
            }
        }
        // A request that changed nothing is refused with the notice; `status` never is.
        let mut reply = match (&setup.notice, asked && setup.step == was) {
            (Some(why), true) => Reply::error(why.clone()),
            _ => Reply::ok(),
        };
        reply.state = Some("setup".into());
        reply.setup = Some(setup.view(now));
        let _ = msg.reply.send(reply);
    })
}

fn press(window: &AppWindow, label: &str) {
    let found: Vec<_> =
        i_slint_backend_testing::ElementHandle::find_by_accessible_label(window, label).collect();
    assert_eq!(found.len(), 1, "exactly one control labelled {label:?}");
    found[0].invoke_accessible_default_action();
}

fn has(window: &AppWindow, label: &str) -> bool {
    i_slint_backend_testing::ElementHandle::find_by_accessible_label(window, label).next().is_some()
}

fn type_digits(window: &AppWindow, digits: &str) {
    for d in digits.chars() {
        press(window, &format!("Digit {d}"));
    }
}

#[test]
fn the_page_sends_slated_what_it_taps_and_shows_what_slated_says() {
    i_slint_backend_testing::init_no_event_loop();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let _slated = serve_setup(&socket, seen_tx);

    let window = AppWindow::new().unwrap();
    let link = SocketLink { socket };
    // A class set's new card: no policy yet (it comes with enrollment).
    let controller = Rc::new(RefCell::new(Controller::new(
        link,
        RecordingLauncher::default(),
        Err("no policy yet".into()),
    )));
    slate_ui::ui::connect(&window, controller.clone(), Rc::new(|| true));
    let screen = || controller.borrow().screen();
    assert_eq!(screen(), Screen::ItSetup);
    assert!(has(&window, "IT setup") && has(&window, "Type the 8-digit setup code."));

    // A wrong code: slated refuses it and the page says so.
    type_digits(&window, "87654321");
    assert!(has(&window, "8 digits entered"));
    press(&window, "OK");
    let v = controller.borrow().view();
    assert!(
        has(&window, "That code is not right. Try again."),
        "slated's notice, worded: {:?} {:?}",
        v.setup_step,
        v.setup_notice
    );
    assert!(has(&window, "0 digits entered"), "the pad is empty again");

    type_digits(&window, CODE);
    press(&window, "OK");
    assert!(has(&window, "Type this device's number."));

    // 7 is taken: slated says so and asks again.
    type_digits(&window, "7");
    press(&window, "OK");
    assert!(has(&window, "This is device 7"));
    press(&window, "Yes");
    assert!(has(&window, "Device 7 is already enrolled. Choose another number."));
    assert!(has(&window, "Type this device's number."));

    // 12, "No", then 12 and "Yes".
    type_digits(&window, "12");
    press(&window, "OK");
    press(&window, "No");
    assert!(has(&window, "Type this device's number."));
    type_digits(&window, "12");
    press(&window, "OK");
    assert!(has(&window, "This is device 12"));
    press(&window, "Yes");

    // Enrolled: slated is device 12; the page is gone (no policy yet: "ask your teacher").
    assert_eq!(screen(), Screen::AskTeacher(slate_ui::screen::AskReason::NoPolicy));
    assert_eq!(controller.borrow().view().device_number, "12");

    let sent: Vec<Request> = seen.try_iter().filter(|r| !matches!(r, Request::Status {})).collect();
    let code = |c: &str| Request::SetupCode { code: Pin(c.into()) };
    let number = |n| Request::SetupNumber { number: n };
    let confirm = |yes| Request::SetupConfirm { yes };
    assert_eq!(
        sent,
        vec![
            code("87654321"),
            code(CODE),
            number(7),
            confirm(true),
            number(12),
            confirm(false),
            number(12),
            confirm(true),
        ],
        "what was tapped, as slated's own parser read it"
    );
}
