//! The controller: the one place where the pure [`crate::screen`] machine meets the outside. It
//! holds the policy, the last observation and the UI's own state, carries out the machine's
//! effects through a [`DeviceLink`] and a [`Launcher`], and computes the [`View`] the screens
//! draw. It does not touch Slint (that is [`crate::ui`]) and holds no navigation rule of its own.

use crate::agreement::{self, Agreement};
use crate::link::{DeviceLink, LinkError};
use crate::policy::{App, Policy};
use crate::screen::{self, AskReason, DeviceState, Effect, Local, Observed, Screen, UiEvent};

/// Starts an approved app. The real one (Chromium with [`crate::browser`], native apps with a
/// per-session home) is not built yet; tests use a recorder.
pub trait Launcher {
    fn launch(&mut self, app: &App);
}

/// Records what was launched (tests) and logs it (the binary, until real launching lands).
#[derive(Debug, Default)]
pub struct RecordingLauncher {
    pub launched: Vec<String>,
}

impl Launcher for RecordingLauncher {
    fn launch(&mut self, app: &App) {
        tracing::info!(app = %app.id, "open app requested (launching is not built yet)");
        self.launched.push(app.id.clone());
    }
}

/// A picture tile as the screens draw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub caption: String,
    pub label: String,
    pub symbol: String,
    pub colour: u8,
    pub enabled: bool,
}

/// Everything the screens show, computed from the controller's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub screen: Screen,
    pub device_number: String,
    pub online: bool,
    pub classes: Vec<Tile>,
    pub class_name: String,
    pub pupils: Vec<Tile>,
    pub pupil: String,
    pub agreement: Agreement,
    pub waiting: bool,
    pub apps: Vec<Tile>,
    pub pin_entered: usize,
    pub message: String,
    pub ask_reason: String,
}

pub struct Controller<L, A> {
    pub link: L,
    pub launcher: A,
    /// The policy, or why there is none (for the adult reading "Ask your teacher").
    policy: Result<Policy, String>,
    observed: Observed,
    local: Local,
    device: Option<u16>,
    /// A one-line message for the PIN pad (a refused unlock).
    message: String,
}

impl<L: DeviceLink, A: Launcher> Controller<L, A> {
    pub fn new(link: L, launcher: A, policy: Result<Policy, String>) -> Self {
        let observed = Observed {
            policy_valid: policy.is_ok(),
            online: true,
            device: DeviceState::Unreachable,
        };
        Self { link, launcher, policy, observed, local: Local::default(), device: None, message: String::new() }
    }

    /// Asks slated for its state and takes in whether the network is up.
    pub fn refresh(&mut self, online: bool) {
        let status = self.link.status();
        let device = match &status {
            Ok(s) => {
                self.device = s.device.or(self.device);
                s.state
            }
            Err(e) => {
                tracing::warn!(error = %e, "slated status failed");
                DeviceState::Unreachable
            }
        };
        let next = Observed { policy_valid: self.policy.is_ok(), online, device };
        screen::observe(&self.observed, &next, &mut self.local);
        if next.device != DeviceState::Held {
            self.message.clear();
        }
        self.observed = next;
    }

    pub fn screen(&self) -> Screen {
        screen::screen(&self.observed, &self.local)
    }

    /// A tap: runs the machine, carries out its effects, then refreshes what slated says.
    pub fn handle(&mut self, event: UiEvent, online: bool) {
        for effect in screen::update(&self.observed, &mut self.local, event) {
            if let Err(e) = self.run(effect) {
                tracing::warn!(error = %e, "request to slated failed");
            }
        }
        self.refresh(online);
    }

    fn run(&mut self, effect: Effect) -> Result<(), LinkError> {
        match effect {
            Effect::SignIn { class, pupil } => {
                let id = self
                    .policy
                    .as_ref()
                    .ok()
                    .and_then(|p| p.classes.get(class))
                    .and_then(|c| c.pupils.get(pupil))
                    .map(|p| p.id.clone());
                let Some(id) = id else {
                    screen::sign_in_failed(&mut self.local);
                    return Ok(());
                };
                let result = self.link.sign_in(&id);
                if result.is_err() {
                    screen::sign_in_failed(&mut self.local);
                }
                result
            }
            Effect::SignOut => self.link.sign_out(),
            Effect::Unlock { pin } => {
                let result = self.link.unlock(&pin);
                // slated's own words are safe to show to the adult at the PIN pad.
                if let Err(e) = &result {
                    self.message = match e {
                        LinkError::Refused(why) => format!("Not unlocked: {why}"),
                        LinkError::Ctl(_) => "Not unlocked: the device service is not answering.".into(),
                    };
                }
                result
            }
            Effect::OpenApp(i) => {
                if let Some(app) = self.session_apps().get(i).copied() {
                    if self.observed.online || !app.needs_internet() {
                        let app = app.clone();
                        self.launcher.launch(&app);
                    }
                }
                Ok(())
            }
        }
    }

    /// The apps of the class chosen at sign-in (none if the UI lost track, e.g. after a restart
    /// mid-session: then the pupil signs out and in again).
    fn session_apps(&self) -> Vec<&App> {
        match (&self.policy, self.local.class) {
            (Ok(p), Some(c)) => p.classes.get(c).map(|c| p.apps_of(c)).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// What to draw now. Pure given the controller's state.
    pub fn view(&self) -> View {
        let screen = self.screen();
        let policy = self.policy.as_ref().ok();
        let class = policy.zip(self.local.class).and_then(|(p, c)| p.classes.get(c));
        let pupil = class.zip(self.local.pupil).and_then(|(c, i)| c.pupils.get(i));
        let online = self.observed.online;
        View {
            screen,
            device_number: self.device.map_or_else(|| "?".into(), |d| d.to_string()),
            online,
            classes: policy
                .map(|p| {
                    p.classes
                        .iter()
                        .map(|c| Tile {
                            caption: c.name.clone(),
                            label: format!("{} class", c.name),
                            symbol: c.symbol.clone(),
                            colour: c.colour,
                            enabled: true,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            class_name: class.map(|c| c.name.clone()).unwrap_or_default(),
            pupils: class
                .map(|c| {
                    c.pupils
                        .iter()
                        .map(|p| Tile {
                            caption: p.display_name(),
                            label: p.display_name(),
                            symbol: p.symbol.clone(),
                            colour: p.colour,
                            enabled: true,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            pupil: pupil.map(|p| p.display_name()).unwrap_or_default(),
            agreement: class.map(|c| agreement::for_key_stage(c.key_stage)).unwrap_or_default(),
            waiting: self.local.aup_accepted,
            apps: self
                .session_apps()
                .iter()
                .map(|a| Tile {
                    caption: a.title.clone(),
                    label: a.title.clone(),
                    symbol: a.symbol.clone(),
                    colour: a.colour,
                    enabled: online || !a.needs_internet(),
                })
                .collect(),
            pin_entered: self.local.pin.len(),
            message: self.message.clone(),
            ask_reason: match screen {
                Screen::AskTeacher(AskReason::DeviceUnavailable) => {
                    "The device service (slated) is not answering.".into()
                }
                Screen::AskTeacher(AskReason::NoPolicy) => match &self.policy {
                    Err(why) => format!("No valid policy: {why}"),
                    Ok(_) => String::new(),
                },
                _ => String::new(),
            },
        }
    }
}

/// Whether any network interface other than loopback has its link up, read from a sysfs tree
/// (`/sys/class/net` on a device, a temporary directory in tests). A cheap first answer to
/// "online?"; reaching the school server is the better one and comes with the policy download.
pub fn link_up(class_net: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(class_net) else { return false };
    entries.flatten().any(|e| {
        e.file_name() != "lo"
            && std::fs::read_to_string(e.path().join("operstate")).is_ok_and(|s| s.trim() == "up")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::FakeDevice;
    use crate::policy::{parse_policy, SAMPLE_POLICY};

    fn controller() -> Controller<FakeDevice, RecordingLauncher> {
        let mut c = Controller::new(
            FakeDevice::new(12),
            RecordingLauncher::default(),
            parse_policy(SAMPLE_POLICY).map_err(|e| e.to_string()),
        );
        c.refresh(true);
        c
    }

    #[test]
    fn a_whole_session_through_the_fake_device() {
        let mut c = controller();
        assert_eq!(c.screen(), Screen::ChooseClass);
        assert_eq!(c.view().device_number, "12");
        c.handle(UiEvent::ChooseClass(0), true);
        assert_eq!(c.view().pupils[0].caption, "Amira K.");
        c.handle(UiEvent::ChoosePupil(0), true);
        let v = c.view();
        assert_eq!((v.screen, v.pupil.as_str()), (Screen::Agreement, "Amira K."));
        assert_eq!(v.agreement, agreement::for_key_stage(crate::policy::KeyStage::Ks1));
        c.handle(UiEvent::Agree, true);
        assert_eq!(c.screen(), Screen::Home);
        assert_eq!(c.link.pupil.as_ref().map(|p| p.as_str()), Some("p-7f3a9c"));
        let apps: Vec<String> = c.view().apps.iter().map(|a| a.caption.clone()).collect();
        assert_eq!(apps, ["Paint", "Reading", "Maths"]);
        c.handle(UiEvent::OpenApp(1), true);
        assert_eq!(c.launcher.launched, ["reading"]);

        // Offline: the notice, then web apps are shown but cannot be opened.
        c.refresh(false);
        assert_eq!(c.screen(), Screen::Offline);
        c.handle(UiEvent::OfflineOk, false);
        let enabled: Vec<bool> = c.view().apps.iter().map(|a| a.enabled).collect();
        assert_eq!(enabled, [true, false, false]);
        c.handle(UiEvent::OpenApp(1), false);
        c.handle(UiEvent::OpenApp(0), false);
        assert_eq!(c.launcher.launched, ["reading", "paint"]);

        c.handle(UiEvent::SignOut, true);
        assert_eq!(c.screen(), Screen::ChooseClass);
        assert_eq!(c.link.pupil, None);
        assert_eq!(c.view().pupil, "", "nothing of the last pupil is left");
    }

    #[test]
    fn the_report_hold_and_the_staff_pin() {
        let mut c = controller();
        c.link.press();
        c.link.pin = Some("1234".into());
        c.refresh(true);
        assert_eq!(c.screen(), Screen::Reported);
        c.handle(UiEvent::Staff, true);
        for d in [9, 9, 9, 9] {
            c.handle(UiEvent::PinDigit(d), true);
        }
        c.handle(UiEvent::PinUnlock, true);
        assert_eq!(c.screen(), Screen::StaffUnlock);
        assert_eq!(c.view().message, "Not unlocked: wrong staff PIN");
        assert_eq!(c.view().pin_entered, 0);
        for d in [1, 2, 3, 4] {
            c.handle(UiEvent::PinDigit(d), true);
        }
        assert_eq!(c.view().pin_entered, 4);
        c.handle(UiEvent::PinUnlock, true);
        assert_eq!(c.screen(), Screen::ChooseClass);
        assert_eq!(c.link.log.iter().filter(|l| *l == "unlock").count(), 2);
        assert!(c.view().message.is_empty());
    }

    #[test]
    fn fail_closed() {
        let mut c = Controller::new(FakeDevice::new(3), RecordingLauncher::default(), Err("missing".into()));
        c.refresh(true);
        let v = c.view();
        assert_eq!(v.screen, Screen::AskTeacher(AskReason::NoPolicy));
        assert!(v.ask_reason.contains("missing"));
        assert!(v.classes.is_empty() && v.apps.is_empty());
        c.handle(UiEvent::ChooseClass(0), true);
        assert_eq!(c.screen(), Screen::AskTeacher(AskReason::NoPolicy));

        let mut c = controller();
        c.link.reachable = false;
        c.refresh(true);
        assert_eq!(c.screen(), Screen::AskTeacher(AskReason::DeviceUnavailable));
    }

    #[test]
    fn link_state_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!link_up(&dir.path().join("missing")));
        std::fs::create_dir(dir.path().join("lo")).unwrap();
        std::fs::write(dir.path().join("lo/operstate"), "unknown\n").unwrap();
        assert!(!link_up(dir.path()));
        std::fs::create_dir(dir.path().join("wlan0")).unwrap();
        std::fs::write(dir.path().join("wlan0/operstate"), "down\n").unwrap();
        assert!(!link_up(dir.path()));
        std::fs::write(dir.path().join("wlan0/operstate"), "up\n").unwrap();
        assert!(link_up(dir.path()));
    }
}
