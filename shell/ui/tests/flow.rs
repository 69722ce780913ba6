//! Taps through the real screens (Slint's testing backend, no window system), finding every
//! control by its accessible label, as a screen reader or a person would.

mod common;

use slate_ui::screen::{AskReason, Screen};

#[test]
fn tap_class_then_picture_then_agree_then_home_then_sign_out() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    assert_eq!(k.screen(), Screen::ChooseClass);
    assert!(k.has("Device 12"), "the device number is on the sign-in screen");
    k.press("Oak class");
    assert_eq!(k.screen(), Screen::ChoosePupil);
    k.press("Back to classes");
    k.press("Oak class");
    k.press("Amira K.");
    assert_eq!(k.screen(), Screen::Agreement);
    assert!(k.has("I only use what an adult says I can use."));
    k.press("I agree");
    assert_eq!(k.screen(), Screen::Home);
    assert_eq!(k.controller.borrow().link.pupil.as_ref().unwrap().as_str(), "p-7f3a9c");
    k.press("Reading");
    assert_eq!(k.controller.borrow().launcher.launched, ["reading"]);
    // Only the class's approved apps are there.
    assert!(k.has("Paint") && k.has("Maths") && !k.has("Scratch") && !k.has("Music"));
    k.press("Sign out");
    assert_eq!(k.screen(), Screen::ChooseClass);
    assert!(!k.has("Amira K."));
}

#[test]
fn key_stage_two_gets_its_own_agreement() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    k.press("Rowan class");
    k.press("Kiran D.");
    assert!(k.has("People online are not always who they say they are."));
    k.press("Back to pictures");
    assert_eq!(k.screen(), Screen::ChoosePupil);
}

#[test]
fn a_picture_pin_by_its_pictures_names() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(Some(Ok(common::with_picture_pin())));
    k.press("Rowan class");
    k.press("Kiran D.");
    assert_eq!(k.screen(), Screen::PicturePin);
    assert!(k.has("Kiran D.: tap your pictures"));
    for name in slate_ui::screen::PICTURES {
        assert!(k.has(name), "the picture {name:?} is a control a screen reader can name");
    }
    assert!(k.has("0 of 3 pictures tapped"));
    k.press("Back to pictures");
    assert_eq!(k.screen(), Screen::ChoosePupil);
    k.press("Kiran D.");
    // A wrong sequence: the dots clear, a kind word, another go.
    for name in ["moon", "star"] {
        k.press(name);
    }
    assert!(k.has("2 of 3 pictures tapped") && !k.has("Not quite. Try again!"));
    k.press("sun");
    assert_eq!(k.screen(), Screen::PicturePin);
    assert!(k.has("0 of 3 pictures tapped") && k.has("Not quite. Try again!"));
    for name in ["moon", "star", "fish"] {
        k.press(name);
    }
    assert_eq!(k.screen(), Screen::Agreement);
    assert!(k.controller.borrow().link.pupil.is_none(), "not signed in before the agreement");
    k.press("I agree");
    assert_eq!(k.screen(), Screen::Home);
    assert_eq!(
        k.controller.borrow().link.log.iter().filter(|l| l.starts_with("sign_in")).count(),
        1
    );

    // Five wrong sequences in a row: "Ask your teacher", and the pictures rest.
    k.press("Sign out");
    k.press("Rowan class");
    k.press("Kiran D.");
    for _ in 0..slate_ui::screen::PICTURE_PIN_TRIES {
        for name in ["sun", "sun", "sun"] {
            k.press(name);
        }
    }
    assert!(k.has("Ask your teacher"));
    k.press("moon");
    let v = k.controller.borrow().view();
    assert_eq!(
        (v.screen, v.picture_pin_entered, v.picture_pin_paused),
        (Screen::PicturePin, 0, true)
    );
    // Going back and choosing again does not lift the pause.
    k.press("Back to pictures");
    k.press("Kiran D.");
    assert!(k.has("Ask your teacher"));
}

#[test]
fn report_then_staff_pin_unlocks() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    k.controller.borrow_mut().link.pin = Some("2580".into());
    k.controller.borrow_mut().link.press();
    k.poll();
    assert_eq!(k.screen(), Screen::Reported);
    assert!(k.has("You did the right thing."));
    assert!(k.has("Your teacher is coming."));
    k.press("Staff unlock");
    for d in ["1", "1", "1", "1"] {
        k.press(&format!("Digit {d}"));
    }
    k.press("Unlock");
    assert_eq!(k.screen(), Screen::StaffUnlock);
    assert!(k.has("Not unlocked: wrong staff PIN"));
    for d in ["2", "5", "8", "0"] {
        k.press(&format!("Digit {d}"));
    }
    assert!(k.has("4 digits entered"));
    k.press("Unlock");
    assert_eq!(k.screen(), Screen::ChooseClass);
}

#[test]
fn no_policy_offers_nothing() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(Some(Err("cannot read /var/lib/slate/policy.json".into())));
    assert_eq!(k.screen(), Screen::AskTeacher(AskReason::NoPolicy));
    assert!(k.has("Please ask your teacher"));
    assert!(!k.has("Oak class"));
}

#[test]
fn offline_notice_then_home_with_web_apps_resting() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    k.press("Oak class");
    k.press("Ben T.");
    k.press("I agree");
    k.online.set(false);
    k.poll();
    assert_eq!(k.screen(), Screen::Offline);
    k.press("OK");
    assert_eq!(k.screen(), Screen::Home);
    k.press("Reading");
    k.press("Paint");
    assert_eq!(k.controller.borrow().launcher.launched, ["paint"]);
}

#[test]
fn eyes_on_me_over_home_until_the_teacher_lets_go() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    k.press("Rowan class");
    k.press("Isla R.");
    k.press("I agree");
    k.controller.borrow_mut().link.screens_locked = true;
    k.poll();
    assert_eq!(k.screen(), Screen::EyesOnTeacher);
    assert!(k.has("Eyes on your teacher") && k.has("Device 12"));
    // Nothing of home is there to press.
    assert!(!k.has("Sign out") && !k.has("Reading"));
    // The report button still works under it.
    k.controller.borrow_mut().link.press();
    k.poll();
    assert_eq!(k.screen(), Screen::Reported);
    k.press("Staff unlock");
    for d in ["1", "2", "3", "4"] {
        k.press(&format!("Digit {d}"));
    }
    k.press("Unlock");
    assert_eq!(k.screen(), Screen::EyesOnTeacher);
    k.controller.borrow_mut().link.screens_locked = false;
    k.poll();
    assert_eq!(k.screen(), Screen::Home);
    k.press("Sign out");
    assert_eq!(k.screen(), Screen::ChooseClass);
}

#[test]
fn a_session_ended_by_slated_is_back_at_the_classes() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    k.press("Oak class");
    k.press("Chloe W.");
    k.press("I agree");
    k.press("Paint");
    k.controller.borrow_mut().link.end_session();
    k.poll();
    assert_eq!(k.screen(), Screen::ChooseClass);
    assert!(k.has("Oak class") && !k.has("Paint"));
}

#[test]
fn the_config_error_names_the_field_for_it() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(None);
    {
        let mut c = k.controller.borrow_mut();
        c.link.reachable = false;
        c.set_config_error(Some("slate.toml: field `server.url` is missing".into()));
    }
    k.poll();
    assert_eq!(k.screen(), Screen::ConfigError);
    assert!(k.has("Please ask your teacher"));
    assert!(k.has("For IT: this device's configuration has a problem:"));
    assert!(k.has("slate.toml: field `server.url` is missing"));
    assert!(!k.has("Oak class"));
}
