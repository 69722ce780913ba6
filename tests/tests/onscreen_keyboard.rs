//! The on-screen keyboard as the device shows it: the kiosk's compositor on an 800x480 output,
//! Chromium on Wayland as an unprivileged user with its sandbox on, started and guarded as the
//! launcher does (with the keyboard's height, as `slate-ui --keyboard`), Debian's wvkbd started
//! hidden as the kiosk's autostart starts it, shown and hidden by slate-ui's own `Wvkbd` on the
//! decision `keyboard_wanted` makes from the focus the page reports; and a native GTK 4 app
//! whose focus the compositor tells slate-wayland's input method, on its own and as slate-ui's
//! controller and launcher follow it (`slate_ui::native_focus`). What is on screen is read back
//! from the compositor (grim) and checked from its pixels: wvkbd's key faces and labels.

mod kiosk_browser;

use kiosk_browser::{serve, Wayland, TEST_USER};
use slate_ui::keyboard::{wvkbd_args, Keyboard, Wvkbd, LANDSCAPE_HEIGHT};
use slate_ui::launcher::RecordingReporter;
use slate_ui::screen::{keyboard_wanted, Screen};
use slate_ui::text_focus::TextFocus;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The device's screen.
const WIDTH: usize = 800;
const HEIGHT: usize = 480;

/// A picture of the output: RGB rows, top first.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Shot {
    fn pixel(&self, x: usize, y: usize) -> (u8, u8, u8) {
        let i = (y * self.width + x) * 3;
        (self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }

    /// The share of pixels in rows `rows` that are `colour` (within a small tolerance).
    fn share(&self, rows: std::ops::Range<usize>, colour: (u8, u8, u8)) -> f64 {
        let close = |a: u8, b: u8| a.abs_diff(b) <= 24;
        self.share_where(rows, |p| {
            close(p.0, colour.0) && close(p.1, colour.1) && close(p.2, colour.2)
        })
    }

    /// The share of pixels in rows `rows` for which `which` holds.
    fn share_where(
        &self,
        rows: std::ops::Range<usize>,
        which: impl Fn((u8, u8, u8)) -> bool,
    ) -> f64 {
        let count = rows.len() * self.width;
        let mut hits = 0;
        for y in rows {
            for x in 0..self.width {
                if which(self.pixel(x, y)) {
                    hits += 1;
                }
            }
        }
        hits as f64 / count.max(1) as f64
    }
}

const PAGE: (u8, u8, u8) = (0xff, 0xee, 0x00);
const FIELD: (u8, u8, u8) = (0x00, 0x00, 0xff);

/// Runs `program` as the test user in the compositor's session.
fn as_kiosk_user(w: &Wayland, program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([&format!("--reuid={}", w.uid), &format!("--regid={}", w.gid), "--init-groups"])
        .arg(program)
        .env("XDG_RUNTIME_DIR", &w.runtime)
        .env("WAYLAND_DISPLAY", &w.socket);
    cmd
}

/// What the compositor shows now (grim, PPM), and the same as PNG at `png` when given.
fn screenshot(w: &Wayland, png: Option<&Path>) -> Shot {
    let out = as_kiosk_user(w, Path::new("grim"))
        .args(["-t", "ppm", "-"])
        .stderr(Stdio::inherit())
        .output()
        .expect("grim (apt package grim) runs");
    assert!(out.status.success(), "grim failed");
    if let Some(png) = png {
        let status = as_kiosk_user(w, Path::new("grim")).arg("-").stdout(Stdio::piped()).output();
        std::fs::write(png, status.unwrap().stdout).unwrap();
    }
    // P6\n<w> <h>\n255\n<rgb>
    let data = out.stdout;
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P6");
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    Shot { width, height, rgb: data[at + 1..].to_vec() }
}

/// Waits (bounded; a hang guard, not a timing claim) until `ok`, else fails saying `what`.
fn wait_until(mut ok: impl FnMut() -> bool, what: &str) {
    for _ in 0..300 {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// wvkbd under a name of this test's own (its `comm` is the name it was started by), so that
/// `Wvkbd` signals this one and no other on the machine: the program to run and its first
/// arguments. The device's (Debian trixie's) wvkbd where there is one: the host's when the host
/// has labwc (trixie on), else the one `scripts/setup` puts in the trixie root the tests run labwc
/// from, run through that root's loader (a link to the loader under the test's name). Bookworm's
/// wvkbd (0.12) draws on the layer-shell *top* layer, which labwc (and sway) hide while a window
/// is full screen, as the kiosk's Chromium is: its keys would never be seen over an app.
fn keyboard_program(dir: &Path) -> (PathBuf, Vec<String>, String) {
    use std::os::unix::fs::PermissionsExt;
    let name = format!("wvkbd-{}", std::process::id() % 100_000_000);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.join(&name);
    let host = Path::new("/usr/bin/wvkbd-mobintl");
    let host_labwc = Command::new("sh").args(["-c", "command -v labwc"]).output();
    let host_is_device_like = host_labwc.is_ok_and(|o| o.status.success());
    match kiosk_browser::from_labwc_root("wvkbd-mobintl") {
        Some((loader, args)) if !host_is_device_like => {
            std::os::unix::fs::symlink(loader, &link).unwrap();
            (link, args, name)
        }
        _ => {
            assert!(host.exists(), "wvkbd is not installed: run scripts/setup");
            std::os::unix::fs::symlink(host, &link).unwrap();
            (link, Vec::new(), name)
        }
    }
}

/// wvkbd's own colours (its defaults, as the kiosk runs it): key faces are dark grey, their
/// labels white. Neither the page's yellow, the field's blue nor black.
fn key_face(p: (u8, u8, u8)) -> bool {
    let grey = p.0.abs_diff(p.1) < 12 && p.1.abs_diff(p.2) < 12;
    grey && (0x18..=0x70).contains(&p.0)
}
fn key_label(p: (u8, u8, u8)) -> bool {
    p.0 >= 0xc0 && p.1 >= 0xc0 && p.2 >= 0xc0
}

/// Starts wvkbd as the kiosk's autostart does (hidden, at the height slate-ui fits pages above,
/// through `slate-keyboard-layer`, which puts its surface on the overlay layer) and the `Wvkbd`
/// that shows and hides it. The killable child is `slate-keyboard-layer`; wvkbd ends with it (its
/// connection closes).
fn start_keyboard(w: &Wayland, dir: &Path) -> (std::process::Child, Wvkbd) {
    let (program, first_args, name) = keyboard_program(dir);
    // A copy the test user can run (the build's target dir may be under root's home).
    let layer = dir.join("slate-keyboard-layer");
    std::fs::copy(slate_e2e::binary("slate-keyboard-layer"), &layer).unwrap();
    let wvkbd = as_kiosk_user(w, &layer)
        .arg(program)
        .args(first_args)
        .args(wvkbd_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slate-keyboard-layer starts");
    let keyboard = Wvkbd::new("/proc".into(), &name);
    wait_until(|| !keyboard.pids().is_empty(), "wvkbd's process");
    (wvkbd, keyboard)
}

/// The output's size: the device's under sway (which is told it); labwc's headless output keeps
/// its own.
fn output_size(w: &Wayland) -> (usize, usize) {
    let screen = screenshot(w, None);
    if w.compositor.starts_with("sway") {
        assert_eq!((screen.width, screen.height), (WIDTH, HEIGHT));
    }
    (screen.width, screen.height)
}

/// What every test here starts from: the kiosk's compositor on the device's screen size and
/// the keyboard started hidden ([`start_keyboard`]), with the rows it takes when up.
struct KeyboardScreen {
    w: Wayland,
    dir: tempfile::TempDir,
    wvkbd: std::process::Child,
    keyboard: Wvkbd,
    width: usize,
    height: usize,
    /// The rows above the keyboard, where pages are fitted.
    free: usize,
    /// The keyboard's rows, a few pixels in from its edges.
    keyboard_rows: std::ops::Range<usize>,
}

fn keyboard_screen() -> KeyboardScreen {
    let w = Wayland::start_sized(&format!("{WIDTH}x{HEIGHT}")).expect("the compositor starts");
    eprintln!("compositor: {}", w.compositor);
    let dir = tempfile::tempdir().unwrap();
    let (wvkbd, keyboard) = start_keyboard(&w, dir.path());
    let (width, height) = output_size(&w);
    let free = height - LANDSCAPE_HEIGHT as usize;
    KeyboardScreen {
        w,
        dir,
        wvkbd,
        keyboard,
        width,
        height,
        free,
        keyboard_rows: free + 5..height - 5,
    }
}

/// Whether wvkbd's keys are on screen in `rows`: key faces over most of them, white labels on
/// those, and nothing of the page.
fn keys_drawn(shot: &Shot, rows: std::ops::Range<usize>) -> bool {
    shot.share_where(rows.clone(), key_face) > 0.5
        && shot.share_where(rows.clone(), key_label) > 0.005
        && shot.share(rows, PAGE) < 0.05
}

/// Waits (bounded) for wvkbd's keys in `rows`, saving what the screen shows at `png`; Err says
/// what was there instead.
fn wait_for_keys(w: &Wayland, rows: std::ops::Range<usize>, png: &Path) -> Result<(), String> {
    let mut shot = screenshot(w, Some(png));
    for _ in 0..100 {
        if keys_drawn(&shot, rows.clone()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
        shot = screenshot(w, Some(png));
    }
    Err(format!(
        "no keyboard drawn in rows {rows:?} (see {}): key faces {:.3}, labels {:.3}, page {:.3}",
        png.display(),
        shot.share_where(rows.clone(), key_face),
        shot.share_where(rows.clone(), key_label),
        shot.share(rows.clone(), PAGE),
    ))
}

#[test]
fn the_keyboard_comes_with_a_focused_text_field_and_goes_with_it() {
    if let Err(why) = kiosk_browser::sandbox_works() {
        panic!("this test needs Chromium's sandbox for {TEST_USER}: {why}");
    }
    let port = serve();
    let KeyboardScreen {
        w,
        dir: _dir,
        mut wvkbd,
        mut keyboard,
        width,
        height,
        free,
        keyboard_rows,
    } = keyboard_screen();
    eprintln!("Chromium as {TEST_USER}");

    // The keyboard itself, shown and hidden by signal, drawn with its keys and labels (fonts,
    // its first frame, grim) where slate-ui expects it: here over the empty desktop, with no
    // app in front.
    keyboard.set_visible(true);
    let png = std::env::temp_dir().join("slate-onscreen-keyboard-desktop.png");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();
    eprintln!("the keyboard over the desktop: {}", png.display());
    assert!(
        screenshot(&w, None).share_where(free - 20..free - 5, key_face) < 0.05,
        "the keyboard is higher than LANDSCAPE_HEIGHT, over what pages are fitted to"
    );
    keyboard.set_visible(false);
    wait_until(
        || screenshot(&w, None).share_where(keyboard_rows.clone(), key_face) < 0.05,
        "the keyboard hidden",
    );

    let k = kiosk_browser::start_wayland_with_keyboard(
        port,
        Box::new(RecordingReporter::default()),
        &w,
        LANDSCAPE_HEIGHT,
    );
    k.navigate(&format!("http://127.0.0.1:{port}/app/type")).unwrap();
    k.wait_for(|k| k.title() == "Type", "the page with a text field");
    // slate-ui's loop, for the page in front on the home screen.
    let follow = |keyboard: &mut Wvkbd| {
        let wanted = keyboard_wanted(Screen::Home, true, k.focus.get());
        keyboard.set_visible(wanted);
        wanted
    };

    // Before any field has the focus: no keyboard, the page is the whole screen.
    assert_eq!(k.focus.get(), TextFocus::Elsewhere);
    assert!(!follow(&mut keyboard));
    wait_until(
        || screenshot(&w, None).share(free..height, PAGE) > 0.5,
        "the page, not a keyboard, at the bottom of the screen",
    );
    let inner = || k.browser.eval(&k.session, "innerHeight").unwrap().as_u64().unwrap() as usize;
    assert_eq!(inner(), height);

    // A tap on the field (a real click through the browser's input pipeline).
    k.click(width as f64 / 2.0, (height - 40) as f64, "left", 0);
    wait_until(|| k.focus.get() == TextFocus::Field, "the page to report the field's focus");
    assert!(follow(&mut keyboard));
    // The page is fitted above the keyboard and the field is in what is left.
    wait_until(|| inner() == free, "the page fitted above the keyboard");
    let field_bottom = k
        .browser
        .eval(&k.session, "document.getElementById('t').getBoundingClientRect().bottom")
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(field_bottom <= free as f64, "the field ends at {field_bottom}, under the keyboard");
    // On screen: wvkbd's keys over the full-screen browser (labwc hides the layer-shell top
    // layer under a full-screen window, as the kiosk's Chromium always is; slate-keyboard-layer
    // puts Debian's wvkbd on the overlay layer), the page and its field above them, nothing of
    // the page under them.
    let png = std::env::temp_dir().join("slate-onscreen-keyboard.png");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();
    wait_until(
        || {
            let shot = screenshot(&w, None);
            shot.share(keyboard_rows.clone(), PAGE) < 0.05
                && shot.share(keyboard_rows.clone(), FIELD) < 0.05
                && shot.share(0..free, FIELD) > 0.05
        },
        "the page and field above the keyboard rows on screen",
    );
    screenshot(&w, Some(&png));
    eprintln!("screenshot with the keyboard up over the full-screen browser: {}", png.display());

    // Keys go to the field, as a keyboard's do (the virtual keyboard protocol, as wvkbd's).
    let status = as_kiosk_user(&w, Path::new("wtype")).arg("hello").status().unwrap();
    assert!(status.success(), "wtype");
    let value = || k.browser.eval(&k.session, "document.getElementById('t').value").unwrap();
    wait_until(|| value() == "hello", "the typed keys in the field");

    // A press of the report button while the keyboard is up: the darkness (slated's overlay)
    // covers the page at once. The keyboard's surface may be above it (both are on the overlay
    // layer, the keyboard's made later), showing keys but nothing of the page, until slate-ui,
    // on the reported screen, hides the keyboard: then every pixel is black.
    let overlay = slate_wayland::Overlay::spawn(slate_wayland::Settings {
        socket: w.runtime.join(&w.socket),
        output_power: false,
    })
    .expect("the darkness connects");
    assert!(overlay.wait_ready(Duration::from_secs(30)), "the darkness ready");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(overlay.dark()).unwrap().expect("the darkness confirmed");
    let shot = screenshot(&w, None);
    assert!(
        shot.share(0..height, PAGE) < 0.001 && shot.share(0..height, FIELD) < 0.001,
        "nothing of the reported page around the keyboard"
    );
    keyboard.set_visible(keyboard_wanted(Screen::Reported, true, k.focus.get()));
    wait_until(
        || screenshot(&w, None).share(0..height, (0, 0, 0)) > 0.999,
        "every pixel black once slate-ui hid the keyboard",
    );
    runtime.block_on(overlay.lift()).unwrap().expect("the darkness lifted");
    drop(overlay);
    // (On a device the reported app is stopped; here the page goes on.) The darkness took the
    // keys, so the field lost the focus: a tap on it again, and the keyboard is back.
    k.click(width as f64 / 2.0, (free - 30) as f64, "left", 0);
    wait_until(|| k.focus.get() == TextFocus::Field, "the field's focus again");
    assert!(follow(&mut keyboard));
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();

    // A tap elsewhere: the focus leaves the field, the keyboard goes, the page has the screen.
    k.click(width as f64 / 2.0, 40.0, "left", 0);
    wait_until(|| k.focus.get() == TextFocus::Elsewhere, "the page to report the focus left");
    assert!(!follow(&mut keyboard));
    wait_until(|| inner() == height, "the page given the whole screen back");
    wait_until(
        || {
            let shot = screenshot(&w, None);
            shot.share(keyboard_rows.clone(), PAGE) > 0.5
        },
        "the keyboard gone from the screen",
    );

    let _ = wvkbd.kill();
    let _ = wvkbd.wait();
}

/// A native app (a GTK 4 dialog with a text field, `zenity --entry`, which speaks text-input-v3)
/// on the kiosk's compositor, its focus told by the compositor to slate-wayland's input method:
/// no keyboard before a field has the focus, the keyboard drawn once the field has it, gone once
/// the focus leaves for a button (Tab).
#[test]
fn a_native_apps_text_field_brings_the_keyboard_through_the_input_method() {
    use slate_wayland::input_method::TextFieldWatch;
    use std::sync::mpsc;
    let KeyboardScreen { w, dir: _dir, mut wvkbd, mut keyboard, free, keyboard_rows, .. } =
        keyboard_screen();

    // The compositor's input method: each change of "a field has the focus".
    let (changes, told) = mpsc::channel();
    let watch = TextFieldWatch::start(&w.runtime.join(&w.socket), move |focused| {
        let _ = changes.send(focused);
    })
    .expect("the input method registers (labwc 0.8: zwp_input_method_manager_v2)");
    // A second input method on the same seat is refused, not left silent.
    assert!(TextFieldWatch::start(&w.runtime.join(&w.socket), |_| {}).is_err());
    // slate-ui's decision, for a native app in front on the home screen.
    keyboard.set_visible(keyboard_wanted(Screen::Home, true, TextFocus::Elsewhere));
    let follow = |keyboard: &mut Wvkbd, what: &str, want: bool| {
        let focused = told.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("the input method said nothing when {what}");
        });
        assert_eq!(focused, want, "{what}");
        let focus = if focused { TextFocus::Field } else { TextFocus::Elsewhere };
        let wanted = keyboard_wanted(Screen::Home, true, focus);
        keyboard.set_visible(wanted);
        wanted
    };
    wait_until(
        || screenshot(&w, None).share_where(keyboard_rows.clone(), key_face) < 0.05,
        "no keyboard before any field has the focus",
    );

    // The app, as the kiosk user, in the compositor's session.
    let (program, first_args) = match kiosk_browser::from_labwc_root("zenity") {
        Some((loader, args)) => (loader, args),
        None => (PathBuf::from("zenity"), Vec::new()),
    };
    let mut app = as_kiosk_user(&w, &program)
        .args(first_args)
        .args(["--entry", "--title=Name", "--text=Your name"])
        .env("HOME", &w.runtime)
        .env("GDK_BACKEND", "wayland")
        // The headless compositor has no GPU: GTK draws with cairo.
        .env("GSK_RENDERER", "cairo")
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("zenity (scripts/setup) starts");

    // The dialog opens with its field focused.
    assert!(follow(&mut keyboard, "the app's field took the focus", true));
    let png = std::env::temp_dir().join("slate-onscreen-keyboard-native.png");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();
    eprintln!("the keyboard over the native app: {}", png.display());
    // Above it, the app (no keys there: the keyboard is no higher than pages are fitted to).
    assert!(screenshot(&w, None).share_where(0..free - 5, key_face) < 0.05);

    // Tab: the focus leaves the field for the dialog's buttons.
    w.key("Tab");
    assert!(!follow(&mut keyboard, "the focus left the field", false));
    wait_until(
        || screenshot(&w, None).share_where(keyboard_rows.clone(), key_face) < 0.05,
        "the keyboard gone once the focus left the field",
    );
    let png = std::env::temp_dir().join("slate-onscreen-keyboard-native-gone.png");
    screenshot(&w, Some(&png));

    let _ = app.kill();
    let _ = app.wait();
    drop(watch);
    let _ = wvkbd.kill();
    let _ = wvkbd.wait();
}

/// slate-ui's own path over a native app: the controller (over a fake slated) opens a GTK 4 app
/// with a text field (`zenity --entry`) through the real `ProcessLauncher`, whose
/// `NativeFocus` is registered as the compositor's input method as `slate-ui --keyboard` does,
/// and the view's `keyboard` shows and hides wvkbd: up while the app's field has the focus,
/// gone while the app stays open with the focus on a button, up again when the field has it
/// back. When the input method cannot register (here: another holds the seat) the keyboard is
/// up while the app is open, as before.
#[test]
fn slate_ui_shows_the_keyboard_only_while_a_native_apps_field_has_the_focus() {
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};
    use slate_ui::app::Controller;
    use slate_ui::launcher::{LaunchConfig, ProcessLauncher, Reporter};
    use slate_ui::link::FakeDevice;
    use slate_ui::native_focus::{compositor_socket, NativeFocus};
    use slate_ui::screen::UiEvent;
    let KeyboardScreen { w, dir, mut wvkbd, mut keyboard, keyboard_rows, .. } = keyboard_screen();
    let no_keys = || screenshot(&w, None).share_where(keyboard_rows.clone(), key_face) < 0.05;

    // This process is slate-ui: on the compositor's socket, as its session starts it (the app
    // it starts inherits that). GTK draws with cairo on the headless output, without AT-SPI.
    std::env::set_var("XDG_RUNTIME_DIR", &w.runtime);
    std::env::set_var("WAYLAND_DISPLAY", &w.socket);
    std::env::set_var("GDK_BACKEND", "wayland");
    std::env::set_var("GSK_RENDERER", "cairo");
    std::env::set_var("NO_AT_BRIDGE", "1");
    let socket = compositor_socket(std::env::var_os("WAYLAND_DISPLAY").as_deref(), &w.runtime);
    let native = NativeFocus::start(socket.as_deref());
    let registered = native.get(native.mark()).map(|answer| answer.focus);
    assert_eq!(registered, Some(TextFocus::Elsewhere), "the input method registers");

    // The first class's first app ("paint") is the GTK dialog.
    let (program, first_args) = kiosk_browser::from_labwc_root("zenity")
        .unwrap_or_else(|| (PathBuf::from("/usr/bin/zenity"), Vec::new()));
    let mut command = vec![program.display().to_string()];
    command.extend(first_args);
    command.extend(["--entry", "--title=Name", "--text=Your name"].map(String::from));
    let mut policy: serde_json::Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    let paint =
        policy["apps"].as_array_mut().unwrap().iter_mut().find(|a| a["id"] == "paint").unwrap();
    paint["kind"] = serde_json::json!({"native": {"command": command}});
    let policy = parse_policy(&policy.to_string()).map_err(|e| e.to_string());
    let reporter = RecordingReporter::default();
    let mut launcher = ProcessLauncher::new(
        LaunchConfig::new(dir.path().join("apps"), dir.path().join("state")),
        Box::new(move || Box::new(reporter.clone()) as Box<dyn Reporter>),
    );
    launcher.follow_native_focus(native);
    let mut c = Controller::new(FakeDevice::new(12), launcher, policy);
    // slate-ui's loop: refresh, then show or hide the keyboard as the view says.
    let mut tick = |c: &mut Controller<FakeDevice, ProcessLauncher>| {
        c.refresh(true);
        let view = c.view();
        keyboard.set_visible(view.keyboard);
        view.keyboard
    };

    c.refresh(true);
    for e in [UiEvent::ChooseClass(0), UiEvent::ChoosePupil(0), UiEvent::Agree] {
        c.handle(e, true);
    }
    assert!(!tick(&mut c), "no keyboard on the home screen");
    assert_eq!(c.screen(), Screen::Home);
    wait_until(no_keys, "no keyboard on the home screen");

    // The app opens with its field focused: the keyboard comes.
    c.handle(UiEvent::OpenApp(0), true);
    assert!(c.app_running(), "the app started");
    wait_until(|| tick(&mut c), "slate-ui to want the keyboard for the app's focused field");
    let png = std::env::temp_dir().join("slate-ui-keyboard-native-field.png");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();
    eprintln!("the keyboard over the native app's field: {}", png.display());

    // Tab: the focus leaves the field for the dialog's buttons; the app stays open, the
    // keyboard goes (before this, it stayed up the whole time a native app was open).
    w.key("Tab");
    wait_until(|| !tick(&mut c), "slate-ui to let the keyboard go when the field lost the focus");
    assert!(c.app_running() && c.screen() == Screen::Home, "the app is still in front");
    wait_until(no_keys, "the keyboard gone from the screen over the open app");
    let png = std::env::temp_dir().join("slate-ui-keyboard-native-button.png");
    screenshot(&w, Some(&png));
    eprintln!("the open app with the focus on a button: {}", png.display());

    // Tab past the other button, round to the field: it has the focus again, the keyboard is
    // back.
    w.key("Tab");
    w.key("Tab");
    wait_until(|| tick(&mut c), "slate-ui to want the keyboard when the field has the focus back");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();

    // Tab away again (to a button), then slate-ui's input method is replaced by one that cannot register (the
    // seat is still held by the first, which then goes): the fallback keeps the keyboard up
    // while the app is open although no field has the focus.
    w.key("Tab");
    wait_until(|| !tick(&mut c), "the keyboard let go again");
    let refused = NativeFocus::start(socket.as_deref());
    assert_eq!(refused.get(0), None, "a second input method on the seat is refused");
    c.launcher.follow_native_focus(refused);
    assert!(tick(&mut c), "without the input method the keyboard is up over the native app");
    let png = std::env::temp_dir().join("slate-ui-keyboard-native-fallback.png");
    wait_for_keys(&w, keyboard_rows.clone(), &png).unwrap();

    // Signed out (the app stopped): no keyboard.
    c.handle(UiEvent::SignOut, true);
    assert!(!c.app_running());
    assert!(!tick(&mut c), "no keyboard once the app is gone");
    let _ = wvkbd.kill();
    let _ = wvkbd.wait();
}
