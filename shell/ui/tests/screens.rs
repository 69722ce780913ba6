//! Renders every screen with Slint's software renderer and compares it with the checked-in image
//! in `tests/screens/` (800x480, the official 7" touchscreen). A missing image is written; set
//! `SLATE_UPDATE_SCREENS=1` to rewrite them after a deliberate change, then look at each one.

mod common;

use i_slint_backend_testing::{TestingBackend, TestingBackendOptions};
use slint::ComponentHandle;
use std::path::{Path, PathBuf};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 480;
/// A pixel differs when a channel differs by more than this (antialiasing noise).
const CHANNEL_TOLERANCE: u8 = 24;
/// The test fails when more than this share of the pixels differ.
const MAX_DIFFERING: f64 = 0.002;

fn init() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("platform not yet set");
}

fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(rgba).unwrap();
}

fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", path.display());
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The share of pixels that differ beyond the tolerance.
fn differing(a: &[u8], b: &[u8]) -> f64 {
    let bad = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > CHANNEL_TOLERANCE))
        .count();
    bad as f64 / (a.len() / 4) as f64
}

fn check(name: &str, k: &common::Kiosk) {
    k.window.window().set_size(slint::PhysicalSize::new(WIDTH, HEIGHT));
    k.window.show().unwrap();
    let shot = k.window.window().take_snapshot().unwrap();
    assert_eq!((shot.width(), shot.height()), (WIDTH, HEIGHT));
    let actual = shot.as_bytes();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/screens");
    let expected = dir.join(format!("{name}.png"));
    if !expected.exists() || std::env::var_os("SLATE_UPDATE_SCREENS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
        write_png(&expected, WIDTH, HEIGHT, actual);
        eprintln!("wrote {}: look at it", expected.display());
        return;
    }
    let (w, h, want) = read_png(&expected);
    let share = if (w, h) == (WIDTH, HEIGHT) { differing(actual, &want) } else { 1.0 };
    if share > MAX_DIFFERING {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}.actual.png", name.replace('/', "_")));
        write_png(&out, WIDTH, HEIGHT, actual);
        panic!(
            "{name}: {:.2}% of pixels differ from {} (actual written to {}; \
             SLATE_UPDATE_SCREENS=1 to accept)",
            share * 100.0,
            expected.display(),
            out.display()
        );
    }
}

#[test]
fn the_tolerance_sees_a_real_change_but_not_noise() {
    let a = vec![100u8; 4 * 1000];
    let mut noise = a.clone();
    noise[0] = 120;
    assert_eq!(differing(&a, &noise), 0.0);
    let mut change = a.clone();
    for px in change.chunks_exact_mut(4).take(10) {
        px[1] = 200;
    }
    assert!(differing(&a, &change) > MAX_DIFFERING);
}

#[test]
fn choose_class() {
    init();
    check("choose_class", &common::kiosk(None));
}

#[test]
fn choose_pupil() {
    init();
    let k = common::kiosk(None);
    k.press("Oak class");
    check("choose_pupil", &k);
}

#[test]
fn picture_pin() {
    init();
    let k = common::kiosk(Some(Ok(common::with_picture_pin())));
    k.press("Rowan class");
    k.press("Kiran D.");
    k.press("moon");
    check("picture_pin", &k);
}

#[test]
fn picture_pin_paused() {
    init();
    let k = common::kiosk(Some(Ok(common::with_picture_pin())));
    k.press("Rowan class");
    k.press("Kiran D.");
    for _ in 0..slate_ui::screen::PICTURE_PIN_TRIES * 3 {
        k.press("boat");
    }
    check("picture_pin_paused", &k);
}

#[test]
fn agreement_ks1() {
    init();
    let k = common::kiosk(None);
    k.press("Oak class");
    k.press("Amira K.");
    check("agreement_ks1", &k);
}

#[test]
fn agreement_ks2() {
    init();
    let k = common::kiosk(None);
    k.press("Rowan class");
    k.press("Isla R.");
    check("agreement_ks2", &k);
}

/// A school's own KS2 text (issue 17), from the policy: what the pupil sees instead of the
/// built-in one.
#[test]
fn agreement_school() {
    init();
    let policy = common::with_school_agreement(
        slate_protocol::kiosk::KeyStage::Ks2,
        "Our Rowan class promise",
        &[
            "I use the tablet only for the work my teacher sets.",
            "I never tell anyone my password, even my best friend.",
            "If I see something that worries me, I press the report button.",
            "I ask before I take a photo of anyone.",
            "I treat people online as kindly as I would in class.",
        ],
    );
    let k = common::kiosk(Some(Ok(policy)));
    k.press("Rowan class");
    k.press("Isla R.");
    assert!(k.has("I ask before I take a photo of anyone."), "the school's text is shown");
    check("agreement_school", &k);
}

/// The longest text a school may save: drawn smaller (`Agreement::compact`), every promise is
/// still on the 800x480 screen without scrolling.
#[test]
fn agreement_school_longest() {
    use slate_protocol::agreement::{MAX_PROMISES, MAX_PROMISE_CHARS, MAX_TITLE_CHARS};
    init();
    let cut = |text: &str, n: usize| text.chars().take(n).collect::<String>().trim_end().to_owned();
    let title = cut("We always stay safe on computers", MAX_TITLE_CHARS);
    let promise = |n: usize| {
        let text = format!("{n}. I always tell a trusted adult at once when something online upsets me or feels wrong");
        cut(&text, MAX_PROMISE_CHARS)
    };
    let promises: Vec<String> = (1..=MAX_PROMISES).map(promise).collect();
    let refs: Vec<&str> = promises.iter().map(String::as_str).collect();
    let policy = common::with_school_agreement(slate_protocol::kiosk::KeyStage::Ks1, &title, &refs);
    let k = common::kiosk(Some(Ok(policy)));
    k.press("Oak class");
    k.press("Amira K.");
    assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
    assert!(promises.iter().all(|p| p.chars().count() == MAX_PROMISE_CHARS));
    check("agreement_school_longest", &k);
}

#[test]
fn home() {
    init();
    let k = common::kiosk(None);
    k.press("Rowan class");
    k.press("Jack S.");
    k.press("I agree");
    check("home", &k);
}

#[test]
fn home_offline() {
    init();
    let k = common::kiosk(None);
    k.press("Oak class");
    k.press("Ben T.");
    k.press("I agree");
    k.online.set(false);
    k.poll();
    check("offline", &k);
    k.press("OK");
    check("home_offline", &k);
}

#[test]
fn reported() {
    init();
    let k = common::kiosk(None);
    k.controller.borrow_mut().link.press();
    k.poll();
    check("reported", &k);
}

#[test]
fn staff_unlock() {
    init();
    let k = common::kiosk(None);
    k.controller.borrow_mut().link.press();
    k.poll();
    k.press("Staff unlock");
    k.press("Digit 4");
    k.press("Digit 2");
    check("staff_unlock", &k);
}

/// The sign-in screen's "Staff" button: the staff PIN pad (its button says OK), a right PIN's
/// offer of the button test, and the page while the test window is open.
fn staff_button_test(k: &common::Kiosk, labels: [&str; 4], shots: impl Fn(&str, &common::Kiosk)) {
    let [staff, digit, ok, test] = labels;
    k.press(staff);
    assert_eq!(k.screen(), slate_ui::screen::Screen::StaffPin);
    for d in ["2", "4"] {
        k.press(&format!("{digit} {d}"));
    }
    shots("staff_pin_sign_in", k);
    for d in ["6", "8"] {
        k.press(&format!("{digit} {d}"));
    }
    k.press(ok);
    assert_eq!(k.screen(), slate_ui::screen::Screen::StaffMenu);
    shots("staff_button_test_offer", k);
    k.press(test);
    assert_eq!(k.screen(), slate_ui::screen::Screen::ButtonTest);
    let log = k.controller.borrow().link.log.clone();
    assert!(log.contains(&"staff_button_test start=false".to_owned()), "{log:?}");
    assert!(log.contains(&"staff_button_test start=true".to_owned()), "{log:?}");
    shots("button_test", k);
    // The press is the test: the window closes and the sign-in screen is back.
    k.controller.borrow_mut().link.press();
    k.poll();
    assert_eq!(k.screen(), slate_ui::screen::Screen::ChooseClass);
}

#[test]
fn staff_pin_pad_and_button_test() {
    init();
    let k = common::kiosk(None);
    let labels = ["Staff: test the report button", "Digit", "OK", "Test the report button"];
    staff_button_test(&k, labels, check);
}

#[test]
fn ask_teacher() {
    init();
    let k = common::kiosk(Some(Err(
        "cannot read /var/lib/slate/policy.json: No such file or directory".into(),
    )));
    check("ask_teacher", &k);
}

#[test]
fn eyes_on_teacher() {
    init();
    let k = common::kiosk(None);
    k.press("Oak class");
    k.press("Amira K.");
    k.press("I agree");
    k.controller.borrow_mut().link.screens_locked = true;
    k.poll();
    check("eyes_on_teacher", &k);
}

#[test]
fn config_error() {
    init();
    let k = common::kiosk(None);
    {
        let mut c = k.controller.borrow_mut();
        c.link.reachable = false;
        c.set_config_error(Some(
            "/boot/firmware/slate.toml: field `server.url` is not an https:// address".into(),
        ));
    }
    k.poll();
    check("config_error", &k);
}

/// The longest message the screen shows still fits (the rest is cut by `config_error::message`).
#[test]
fn config_error_long() {
    init();
    let k = common::kiosk(None);
    let long =
        "/boot/firmware/slate.toml: field `server.public_key` is not an Ed25519 key. ".repeat(10);
    let shown = slate_ui::config_error::message(long.as_bytes());
    {
        let mut c = k.controller.borrow_mut();
        c.link.reachable = false;
        c.set_config_error(shown);
    }
    k.poll();
    check("config_error_long", &k);
}

// The same screens in Welsh (Cymraeg), `tests/screens/cy/`: a Welsh-medium school's policy
// (`language: "cy"`). Each also checks that no English string the catalogue translates is on
// the screen. Look at the images after a change: longer Welsh words must not be cut off.

fn welsh() -> common::Kiosk {
    let policy = common::in_welsh(
        slate_protocol::kiosk::parse_policy(slate_protocol::kiosk::SAMPLE_POLICY).unwrap(),
    );
    common::kiosk(Some(Ok(policy)))
}

fn check_welsh(name: &str, k: &common::Kiosk) {
    k.assert_all_welsh();
    check(&format!("cy/{name}"), k);
}

#[test]
fn cy_choose_class() {
    init();
    let k = welsh();
    assert!(k.has("Tapia dy ddosbarth"));
    check_welsh("choose_class", &k);
}

#[test]
fn cy_choose_pupil() {
    init();
    let k = welsh();
    k.press("Dosbarth Oak");
    check_welsh("choose_pupil", &k);
}

#[test]
fn cy_picture_pin() {
    init();
    let k = common::kiosk(Some(Ok(common::in_welsh(common::with_picture_pin()))));
    k.press("Dosbarth Rowan");
    k.press("Kiran D.");
    k.press("lleuad");
    check_welsh("picture_pin", &k);
}

#[test]
fn cy_picture_pin_paused() {
    init();
    let k = common::kiosk(Some(Ok(common::in_welsh(common::with_picture_pin()))));
    k.press("Dosbarth Rowan");
    k.press("Kiran D.");
    for _ in 0..slate_ui::screen::PICTURE_PIN_TRIES * 3 {
        k.press("cwch");
    }
    check_welsh("picture_pin_paused", &k);
}

#[test]
fn cy_agreement_ks1() {
    init();
    let k = welsh();
    k.press("Dosbarth Oak");
    k.press("Amira K.");
    assert!(k.has("Rwy'n garedig wrth bawb."), "the built-in KS1 text in Welsh");
    check_welsh("agreement_ks1", &k);
}

#[test]
fn cy_agreement_ks2() {
    init();
    let k = welsh();
    k.press("Dosbarth Rowan");
    k.press("Isla R.");
    assert!(k.has("Rwy'n cadw fy nghyfrinair a'm manylion personol yn breifat."));
    check_welsh("agreement_ks2", &k);
}

#[test]
fn cy_home_and_offline() {
    init();
    let k = welsh();
    k.press("Dosbarth Oak");
    k.press("Ben T.");
    k.press("Rwy'n cytuno");
    check_welsh("home", &k);
    k.online.set(false);
    k.poll();
    check_welsh("offline", &k);
    k.press("Iawn");
    check_welsh("home_offline", &k);
}

#[test]
fn cy_reported() {
    init();
    let k = welsh();
    k.controller.borrow_mut().link.press();
    k.poll();
    assert!(k.has("Rwyt ti wedi gwneud y peth iawn."));
    check_welsh("reported", &k);
}

#[test]
fn cy_staff_unlock() {
    init();
    let k = welsh();
    k.controller.borrow_mut().link.press();
    k.poll();
    k.press("Datgloi gan staff");
    k.press("Digid 4");
    k.press("Digid 2");
    check_welsh("staff_unlock", &k);
}

#[test]
fn cy_staff_pin_pad_and_button_test() {
    init();
    let k = welsh();
    let labels = ["Staff: profi'r botwm adrodd", "Digid", "Iawn", "Profi'r botwm adrodd"];
    staff_button_test(&k, labels, check_welsh);
}

#[test]
fn cy_eyes_on_teacher() {
    init();
    let k = welsh();
    k.press("Dosbarth Oak");
    k.press("Amira K.");
    k.press("Rwy'n cytuno");
    k.controller.borrow_mut().link.screens_locked = true;
    k.poll();
    check_welsh("eyes_on_teacher", &k);
}

#[test]
fn cy_config_error() {
    init();
    let k = welsh();
    {
        let mut c = k.controller.borrow_mut();
        c.link.reachable = false;
        c.set_config_error(Some(
            "/boot/firmware/slate.toml: field `server.url` is not an https:// address".into(),
        ));
    }
    k.poll();
    check_welsh("config_error", &k);
}

// IT's setup page of a device with no number (a class set's card image), each step as slated's
// `status` shows it. A new card has no policy yet, so the page is in English; the Welsh images
// are of a device set up again under a Welsh-medium school's policy.

fn setup_view(
    step: &str,
    device: Option<u32>,
    notice: Option<&str>,
    locked_for_s: Option<u64>,
) -> slate_ipc::control::SetupView {
    slate_ipc::control::SetupView {
        step: step.into(),
        device: device.map(|d| slate_protocol::DeviceNumber::new(d).unwrap()),
        notice: notice.map(str::to_owned),
        locked_for_s,
    }
}

/// The setup steps to look at: name, slated's view, digits tapped.
fn setup_steps() -> Vec<(&'static str, slate_ipc::control::SetupView, &'static str)> {
    vec![
        ("setup_code", setup_view("code", None, None, None), "123"),
        ("setup_code_wrong", setup_view("code", None, Some("That code is not right"), None), ""),
        (
            "setup_code_paused",
            setup_view("code", None, Some("Too many wrong codes: wait, then try again"), Some(170)),
            "",
        ),
        ("setup_number", setup_view("number", None, None, None), "12"),
        (
            "setup_number_taken",
            setup_view(
                "number",
                None,
                Some("Device 12 is already enrolled: choose another number"),
                None,
            ),
            "",
        ),
        (
            "setup_number_failed",
            setup_view(
                "number",
                None,
                Some("Could not enroll: the enrollment token was refused (expired or used up?)"),
                None,
            ),
            "",
        ),
        ("setup_confirm", setup_view("confirm", Some(12), None, None), ""),
        ("setup_enrolling", setup_view("enrolling", Some(12), None, None), ""),
    ]
}

fn in_setup(k: &common::Kiosk, view: slate_ipc::control::SetupView, digits: &str, digit: &str) {
    let mut device = slate_ui::link::FakeDevice::in_setup();
    device.setup = Some(view);
    k.controller.borrow_mut().link = device;
    k.poll();
    for d in digits.chars() {
        k.press(&format!("{digit} {d}"));
    }
    assert_eq!(k.screen(), slate_ui::screen::Screen::ItSetup);
}

#[test]
fn it_setup() {
    init();
    for (name, view, digits) in setup_steps() {
        let k = common::kiosk(Some(Err("no policy yet".into())));
        in_setup(&k, view, digits, "Digit");
        check(name, &k);
    }
}

#[test]
fn cy_it_setup() {
    init();
    for (name, view, digits) in setup_steps() {
        let k = welsh();
        in_setup(&k, view, digits, "Digid");
        assert!(k.has("Gosod gan TG"), "{name}");
        check_welsh(name, &k);
    }
}
