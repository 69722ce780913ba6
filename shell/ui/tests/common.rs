//! Shared by the UI tests: a window driven by the real controller over a fake device.

#![allow(dead_code)]

use i_slint_backend_testing::ElementHandle;
use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};
use slate_ui::app::{Controller, RecordingLauncher};
use slate_ui::link::FakeDevice;
use slate_ui::AppWindow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub type Ctl = Rc<RefCell<Controller<FakeDevice, RecordingLauncher>>>;

pub struct Kiosk {
    pub window: AppWindow,
    pub controller: Ctl,
    pub online: Rc<Cell<bool>>,
}

/// A kiosk for device 12 with the sample policy (or `policy`), connected like the binary does.
pub fn kiosk(policy: Option<Result<slate_protocol::kiosk::Policy, String>>) -> Kiosk {
    let policy = policy.unwrap_or_else(|| parse_policy(SAMPLE_POLICY).map_err(|e| e.to_string()));
    let window = AppWindow::new().unwrap();
    // The fake slated knows the pupils' picture PINs from the same policy (slated decides).
    let mut device = FakeDevice::new(12);
    if let Ok(p) = &policy {
        device.picture_pins = p
            .classes
            .iter()
            .flat_map(|c| &c.pupils)
            .filter_map(|p| Some((p.id.clone(), p.picture_pin.clone()?)))
            .collect();
    }
    let controller =
        Rc::new(RefCell::new(Controller::new(device, RecordingLauncher::default(), policy)));
    let online = Rc::new(Cell::new(true));
    let flag = online.clone();
    slate_ui::ui::connect(&window, controller.clone(), Rc::new(move || flag.get()));
    Kiosk { window, controller, online }
}

impl Kiosk {
    /// Presses the one control with this accessible label, as a screen reader would.
    pub fn press(&self, label: &str) {
        let found: Vec<_> = ElementHandle::find_by_accessible_label(&self.window, label).collect();
        assert_eq!(found.len(), 1, "exactly one control labelled {label:?}");
        found[0].invoke_accessible_default_action();
    }

    pub fn has(&self, label: &str) -> bool {
        ElementHandle::find_by_accessible_label(&self.window, label).next().is_some()
    }

    pub fn poll(&self) {
        slate_ui::ui::poll(&self.window, &self.controller, self.online.get());
    }

    pub fn screen(&self) -> slate_ui::screen::Screen {
        self.controller.borrow().screen()
    }
}

/// The sample policy with a picture PIN (moon, star, fish) for Rowan class's Kiran D.
pub fn with_picture_pin() -> slate_protocol::kiosk::Policy {
    let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
    let kiran = policy
        .classes
        .iter_mut()
        .flat_map(|c| c.pupils.iter_mut())
        .find(|p| p.display_name() == "Kiran D.")
        .expect("Kiran D. in the sample policy");
    kiran.picture_pin = Some(vec!["moon".into(), "star".into(), "fish".into()]);
    policy
}

/// The sample policy with the school's own agreement for a key stage (version 2).
pub fn with_school_agreement(
    stage: slate_protocol::kiosk::KeyStage,
    title: &str,
    promises: &[&str],
) -> slate_protocol::kiosk::Policy {
    let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
    let promises = promises.iter().map(|p| p.to_string()).collect();
    policy.agreements =
        vec![slate_protocol::agreement::SchoolAgreement::new(stage, 2, title.into(), promises)];
    // Checked as a device checks what the server sends.
    parse_policy(&serde_json::to_string(&policy).unwrap()).unwrap()
}

/// The sample policy of a Welsh-medium school (`language: "cy"`), checked as a device checks it.
pub fn in_welsh(mut policy: slate_protocol::kiosk::Policy) -> slate_protocol::kiosk::Policy {
    policy.language = Some("cy".into());
    parse_policy(&serde_json::to_string(&policy).unwrap()).unwrap()
}

/// The Welsh catalogue's English strings that differ in Welsh, with no `{}` (whole labels).
pub fn english_that_welsh_replaces() -> Vec<(String, String)> {
    let po =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lang/cy/LC_MESSAGES/slate-ui.po");
    let po = rspolib::pofile(po.as_path()).unwrap();
    po.entries
        .iter()
        .filter_map(|e| Some((e.msgid.clone(), e.msgstr.clone()?)))
        .filter(|(en, cy)| en != cy && !en.contains("{}"))
        .collect()
}

impl Kiosk {
    /// No control or text on the screen is labelled with an English string the Welsh
    /// catalogue translates, and at least one is in Welsh.
    pub fn assert_all_welsh(&self) {
        let pairs = english_that_welsh_replaces();
        let english: Vec<&str> =
            pairs.iter().map(|(en, _)| en.as_str()).filter(|en| self.has(en)).collect();
        assert!(english.is_empty(), "English on a Welsh screen: {english:?}");
        assert!(pairs.iter().any(|(_, cy)| self.has(cy)), "some Welsh on the screen");
    }
}

/// slated's own control-socket server on `socket` (`slate_daemon::control::serve`, as the
/// daemon runs it), on a thread of its own, each request handed to `answer`, which replies on the
/// message's channel. Returns once the socket listens.
pub fn serve_control_socket(
    socket: &std::path::Path,
    mut answer: impl FnMut(slate_daemon::control::ControlMsg) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    use slate_daemon::control;
    let socket = socket.to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = slate_ipc::listen::bind(&socket, None, "slated").unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<control::ControlMsg>(4);
            // The test runs as root, which may send everything.
            let users = control::PeerUsers { root: 0, kiosk: None, dns: None, refused: None };
            tokio::spawn(control::serve(listener, tx, users));
            ready_tx.send(()).unwrap();
            while let Some(msg) = rx.recv().await {
                answer(msg);
            }
        });
    });
    ready_rx.recv().unwrap();
    handle
}
