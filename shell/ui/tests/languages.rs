//! Languages (issue 17): the screens follow the signed policy's language, the school's and a
//! class's own, switching when a pupil taps a class of another language and back at sign-out;
//! the built-in agreement and "Read it to me" follow; an unknown language shows English.

mod common;

use slate_protocol::kiosk::{parse_policy, KeyStage, SAMPLE_POLICY};
use slate_ui::screen::Screen;

/// An English-medium school with one Welsh-medium class (Rowan).
fn rowan_in_welsh() -> slate_protocol::kiosk::Policy {
    let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
    let rowan = policy.classes.iter_mut().find(|c| c.name == "Rowan").unwrap();
    rowan.language = Some("cy".into());
    parse_policy(&serde_json::to_string(&policy).unwrap()).unwrap()
}

#[test]
fn a_welsh_class_switches_the_screens_to_welsh_and_sign_out_switches_back() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(Some(Ok(rowan_in_welsh())));
    // The class list is in the school's language; each class's label too.
    assert!(k.has("Tap your class") && k.has("Oak class") && k.has("Rowan class"));
    k.press("Rowan class");
    assert_eq!(k.screen(), Screen::ChoosePupil);
    assert!(k.has("Rowan: tapia dy lun"), "Welsh once the Welsh class is tapped");
    k.assert_all_welsh();
    k.press("Yn ôl i'r dosbarthiadau");
    assert!(k.has("Tap your class"), "back in the school's language");
    k.press("Rowan class");
    k.press("Isla R.");
    // The built-in KS2 agreement, in Welsh; its Welsh version is what slated records.
    let welsh_ks2 = slate_ui::agreement::builtin_in(KeyStage::Ks2, "cy");
    assert!(k.has(&welsh_ks2.promises[0]));
    k.press("Rwy'n cytuno");
    assert_eq!(k.screen(), Screen::Home);
    assert!(k.has("Allgofnodi") && k.has("Helo Isla R.!"));
    let log = k.controller.borrow().link.log.clone();
    assert!(log.contains(&format!("aup_accepted ks2 {}", welsh_ks2.version)), "{log:?}");
    k.press("Allgofnodi");
    assert_eq!(k.screen(), Screen::ChooseClass);
    assert!(k.has("Tap your class") && !k.has("Tapia dy ddosbarth"));
    // An English class stays English.
    k.press("Oak class");
    assert!(k.has("Oak: tap your picture"));
}

#[test]
fn read_it_to_me_reads_names_and_the_reassurance_in_the_screens_language() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(Some(Ok(rowan_in_welsh())));
    let speaker = slate_ui::speech::RecordingSpeaker::default();
    k.controller.borrow_mut().set_speaker(Box::new(speaker.clone()));
    k.press("Read it to me");
    k.press("Rowan class");
    k.press("Darllena i mi");
    k.controller.borrow_mut().link.press();
    k.poll();
    assert_eq!(k.screen(), Screen::Reported);
    k.press("Darllena i mi");
    let said = speaker.said.lock().unwrap().clone();
    let languages = speaker.languages.lock().unwrap().clone();
    assert_eq!(said[0], "Tap your class. Oak. Rowan. Willow.");
    assert!(said[1].starts_with("Rowan: tapia dy lun. "), "{}", said[1]);
    assert!(said[1].contains("Isla R.") && said[1].contains("Kiran D."), "{}", said[1]);
    assert_eq!(said[2], "Rwyt ti wedi gwneud y peth iawn. Mae dy athro ar y ffordd.");
    assert_eq!(languages, ["en", "cy", "cy"]);
}

#[test]
fn the_agreement_is_read_in_welsh_with_the_welsh_voice() {
    i_slint_backend_testing::init_no_event_loop();
    let k = common::kiosk(Some(Ok(common::in_welsh(parse_policy(SAMPLE_POLICY).unwrap()))));
    let speaker = slate_ui::speech::RecordingSpeaker::default();
    k.controller.borrow_mut().set_speaker(Box::new(speaker.clone()));
    k.press("Dosbarth Oak");
    k.press("Amira K.");
    k.press("Darllena i mi");
    let said = speaker.said.lock().unwrap().clone();
    assert_eq!(said, [slate_ui::agreement::builtin_in(KeyStage::Ks1, "cy").spoken()]);
    assert_eq!(*speaker.languages.lock().unwrap(), ["cy"]);
}

/// A language this device has no screens in (a newer server's): English, not a blank or a
/// refused policy.
#[test]
fn a_language_without_screens_shows_english() {
    i_slint_backend_testing::init_no_event_loop();
    let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
    policy.language = Some("pl".into());
    let policy = parse_policy(&serde_json::to_string(&policy).unwrap()).unwrap();
    let k = common::kiosk(Some(Ok(policy)));
    assert!(k.has("Tap your class") && k.has("Oak class"));
    k.press("Oak class");
    k.press("Amira K.");
    assert!(k.has("I only use what an adult says I can use."));
}
