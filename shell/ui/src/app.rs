//! The controller: the one place where the pure [`crate::screen`] machine meets the outside. It
//! holds the policy, the last observation and the UI's own state, carries out the machine's
//! effects through a [`DeviceLink`] and a [`Launcher`], and computes the [`View`] the screens
//! draw. It does not touch Slint (that is [`crate::ui`]) and holds no navigation rule of its own.

use crate::agreement::{self, Agreement};
use crate::link::{DeviceLink, LinkError};
use crate::policy_file::{self, Loaded};
use crate::screen::{self, AskReason, DeviceState, Effect, Local, Observed, Screen, Tap, UiEvent};
use crate::setup;
use slate_ipc::control::SetupView;
use slate_protocol::kiosk::{App, Policy};
use std::time::Instant;

/// Starts an approved app: the only way anything starts on the kiosk. The real one is
/// [`crate::launcher::ProcessLauncher`] (Chromium with [`crate::browser`]'s policy, native apps
/// with a per-session home); tests use a recorder.
pub trait Launcher {
    fn launch(&mut self, app: &App);
    /// The app that ended since the last call (it exited, crashed or could not start): the
    /// kiosk goes back home.
    fn poll_exit(&mut self) -> Option<AppExit> {
        None
    }
    /// Stops the running app and removes its session directory (sign-out, report).
    fn stop(&mut self) {}
    /// Where typing goes in the running app (for the on-screen keyboard): unknown unless the
    /// app tells (a web page does, a native app through the compositor's input method).
    fn text_focus(&self) -> crate::text_focus::TextFocus {
        crate::text_focus::TextFocus::Unknown
    }
}

/// An app that ended. `pid` 0: it never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppExit {
    pub app: String,
    pub pid: u32,
    /// Its exit code; `None` when killed by a signal or never started.
    pub code: Option<i32>,
}

/// How soon an app that ends with an error counts as one that never opened (Chromium refusing
/// to start without its sandbox ends within a second or two).
pub const OPEN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether an app's end means it never opened: it could not be started at all, or it ended
/// with an error (or a signal) within [`OPEN_GRACE`]. Pure.
pub fn did_not_open(exit: &AppExit, ran_for: Option<std::time::Duration>) -> bool {
    exit.pid == 0 || (exit.code != Some(0) && ran_for.is_some_and(|d| d < OPEN_GRACE))
}

/// The PIN pad's message on a held device that has no staff PIN yet.
pub const NO_STAFF_PIN: &str = "For IT: no staff PIN has reached this device yet. Staff set \
their own on the school server (My account); the device stays held until one arrives.";

/// Records what was launched (tests, and running the UI on a desk without starting apps).
#[derive(Debug, Default)]
pub struct RecordingLauncher {
    pub launched: Vec<String>,
}

impl Launcher for RecordingLauncher {
    fn launch(&mut self, app: &App) {
        tracing::info!(app = %app.id, "open app requested (recording launcher: nothing started)");
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
    /// The language the screens are in: the chosen class's, else the school's, else English
    /// (`Policy::language_of`).
    pub language: String,
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
    /// The picture PIN page: how many pictures the PIN has and how many are tapped (dots).
    pub picture_pin_length: usize,
    pub picture_pin_entered: usize,
    /// Wrong picture PINs so far (the page shakes when it changes).
    pub picture_pin_wrong: u32,
    /// The last sequence was wrong: a kind "try again".
    pub picture_pin_try_again: bool,
    /// Too many wrong tries: "Ask your teacher" for a while.
    pub picture_pin_paused: bool,
    pub message: String,
    pub ask_reason: String,
    /// Why the device is not set up, for IT (the config-error screen).
    pub config_error: String,
    /// Whether the on-screen keyboard should be up.
    pub keyboard: bool,
    /// IT's setup page: the step slated is at (`None`: not in setup).
    pub setup_step: Option<setup::Step>,
    /// The digits on its pad (the code's shown only as dots).
    pub setup_digits: String,
    /// "OK" is offered.
    pub setup_complete: bool,
    /// slated's notice, to be worded in the screens' language.
    pub setup_notice: setup::Notice,
    /// Codes are refused for this many more minutes (0: not paused).
    pub setup_pause_minutes: u64,
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
    /// What the provisioning unit said was wrong with slated's config, if anything.
    config_error: Option<String>,
    /// When `activity` was last sent to slated.
    activity_sent: Option<Instant>,
    /// An app was started in this session and has not been closed by a hold or the session's end.
    app_in_front: bool,
    /// When the app in front was opened (an exit soon after is a failure to start).
    opened_at: Option<Instant>,
    /// slated was told the reassurance screen is in front during this hold.
    reassurance_told: bool,
    /// Reads the agreement aloud ("Read it to me").
    speaker: Box<dyn crate::speech::Speaker>,
    /// slated's last `status` failed (logged once per outage).
    status_failing: bool,
    /// The time of the last tap or poll: what the picture PIN's pause is measured against.
    now: Instant,
    /// The school's language in the last valid policy: "ask your teacher" stays in it when a
    /// policy is refused later (English after a restart without one).
    school_language: String,
    /// IT's setup as slated last showed it, while the device has no number.
    setup: Option<SetupView>,
    /// The digits typed on the setup page's pad.
    setup_pad: setup::Pad,
}

impl<L: DeviceLink, A: Launcher> Controller<L, A> {
    pub fn new(link: L, launcher: A, policy: Result<Policy, String>) -> Self {
        let observed = Observed {
            policy_valid: policy.is_ok(),
            online: true,
            device: DeviceState::Unreachable,
            screens_locked: false,
            config_error: false,
            button_test: false,
        };
        Self {
            link,
            launcher,
            policy,
            observed,
            local: Local::default(),
            device: None,
            message: String::new(),
            config_error: None,
            activity_sent: None,
            app_in_front: false,
            opened_at: None,
            reassurance_told: false,
            speaker: Box::new(crate::speech::Silent),
            status_failing: false,
            now: Instant::now(),
            school_language: slate_protocol::kiosk::DEFAULT_LANGUAGE.into(),
            setup: None,
            setup_pad: setup::Pad::default(),
        }
        .with_school_language()
    }

    fn with_school_language(mut self) -> Self {
        if let Ok(policy) = &self.policy {
            self.school_language = policy.language_of(None).to_owned();
        }
        self
    }

    /// Takes in a policy just read ([`policy_file::choose`] decides whether it replaces the one
    /// in force); the chosen class and pupil follow their names into it.
    pub fn set_policy(&mut self, read: Loaded) {
        let next = policy_file::choose(&self.policy, read);
        let (class, pupil) = match (&self.policy, &next) {
            (Ok(old), Ok(new)) => policy_file::remap(old, new, self.local.class, self.local.pupil),
            _ => (None, None),
        };
        if pupil.is_none() {
            self.local.aup_accepted = false;
        }
        (self.local.class, self.local.pupil) = (class, pupil);
        // The picture PIN follows the pupil into the new policy; a changed one is asked again.
        let pin = match (&next, class, pupil) {
            (Ok(p), Some(c), Some(i)) => picture_pin(p, c, i).unwrap_or_default(),
            _ => 0,
        };
        if pin != self.local.picture_pin.length {
            self.local.picture_pin.length = pin;
            self.local.picture_pin.entered.clear();
            self.local.picture_pin.passed = false;
        }
        self.policy = next;
        self.observed.policy_valid = self.policy.is_ok();
        if let Ok(policy) = &self.policy {
            self.school_language = policy.language_of(None).to_owned();
        }
    }

    /// What the provisioning unit wrote about slated's refused config (`None`: nothing wrong).
    pub fn set_config_error(&mut self, message: Option<String>) {
        self.observed.config_error = message.is_some();
        self.config_error = message;
    }

    /// A touch at `now`: tells slated the pupil is still there, at most every 30 s.
    pub fn touched(&mut self, now: Instant) {
        if screen::activity_due(self.observed.device, self.activity_sent, now) {
            self.activity_sent = Some(now);
            if let Err(e) = self.link.activity() {
                tracing::warn!(error = %e, "activity not passed on to slated");
            }
        }
    }

    /// Asks slated for its state and takes in whether the network is up.
    pub fn refresh(&mut self, online: bool) {
        self.now = Instant::now();
        // The app ended by itself: home is under it already.
        while let Some(exit) = self.launcher.poll_exit() {
            let ran_for = self.opened_at.take().map(|at| self.now.saturating_duration_since(at));
            if did_not_open(&exit, ran_for) {
                // The launcher logged why (a spawn error, or the app's own stderr in the journal).
                tracing::error!(app = %exit.app, code = ?exit.code, ?ran_for, "app did not open: asking the pupil to fetch a teacher");
                self.local.app_failed = true;
            } else {
                tracing::info!(app = %exit.app, code = ?exit.code, "app ended");
            }
            self.app_in_front = false;
        }
        let status = self.link.status();
        let (device, screens_locked, pupil, staff_pin, button_test) = match status {
            Ok(s) => {
                self.status_failing = false;
                self.device = s.device.or(self.device);
                self.setup = s.setup.filter(|_| s.state == DeviceState::Setup);
                (s.state, s.screens_locked, s.pupil, s.staff_pin, s.button_test)
            }
            Err(e) => {
                // Once per outage, not twice a second.
                if !self.status_failing {
                    tracing::warn!(error = %e, "slated status failed");
                }
                self.status_failing = true;
                self.setup = None;
                (DeviceState::Unreachable, false, None, true, false)
            }
        };
        self.setup_pad.observe(self.setup.as_ref().map(setup::Step::from_view));
        let next = Observed {
            policy_valid: self.policy.is_ok(),
            online,
            device,
            screens_locked,
            config_error: self.config_error.is_some(),
            button_test,
        };
        screen::observe(&self.observed, &next, &mut self.local);
        // A kiosk restarted mid-session finds the pupil's class (and so their apps) again.
        if device == DeviceState::InSession && self.local.pupil.is_none() {
            if let (Ok(policy), Some(id)) = (&self.policy, &pupil) {
                if let Some((class, pupil)) = policy_file::locate(policy, id) {
                    (self.local.class, self.local.pupil) = (Some(class), Some(pupil));
                }
            }
        }
        // The message belongs to a PIN pad: the held device's, or the sign-in screen's.
        if next.device != DeviceState::Held && self.local.staff != screen::StaffPad::Pin {
            self.message.clear();
        } else if next.device == DeviceState::Held && !staff_pin {
            // Held with no PIN to unlock it: the PIN pad tells the adult why and what IT does.
            self.message = NO_STAFF_PIN.into();
        }
        // The session ended (signed out, timed out, ended by staff, or released with nobody
        // signed in): its app goes, with its session directory. A hold leaves the app to slated
        // (it stops it, and closes it or lets it resume at unlock; an exit is seen above).
        if next.device == DeviceState::Idle && self.app_in_front {
            self.launcher.stop();
            self.app_in_front = false;
        }
        self.observed = next;
    }

    pub fn screen(&self) -> Screen {
        screen::screen(&self.observed, &self.local)
    }

    /// Whether an app started in this session is still running (for [`crate::front`]).
    /// The voice for "Read it to me" (silent until one is given).
    pub fn set_speaker(&mut self, speaker: Box<dyn crate::speech::Speaker>) {
        self.speaker = speaker;
    }

    pub fn app_running(&self) -> bool {
        self.app_in_front
    }

    /// A PIN pad's line for slated's refusal (its own words are safe to show to the adult).
    fn refusal(what: &str, e: &LinkError) -> String {
        match e {
            LinkError::Refused(why) => format!("{what}: {why}"),
            LinkError::Ctl(_) => format!("{what}: the device service is not answering."),
        }
    }

    /// After the window was mapped or unmapped for the current screen: while held, once the
    /// reassurance screen (or the staff PIN pad) is in front of every app, tell slated once, so
    /// it lights the screen for it (until then the darkness stays over whatever was there).
    pub fn note_window(&mut self, kiosk_in_front: bool) {
        let held = matches!(self.screen(), Screen::Reported | Screen::StaffUnlock);
        if !held {
            self.reassurance_told = false;
        } else if kiosk_in_front && !self.reassurance_told {
            match self.link.reassurance_shown() {
                Ok(()) => self.reassurance_told = true,
                Err(e) => {
                    tracing::warn!(error = %e, "slated not told the reassurance screen is up")
                }
            }
        }
    }

    /// A tap: runs the machine, carries out its effects, then refreshes what slated says.
    pub fn handle(&mut self, event: UiEvent, online: bool) {
        if let UiEvent::Setup(tap) = event {
            self.handle_setup(tap);
            self.refresh(online);
            return;
        }
        self.now = Instant::now();
        self.touched(self.now);
        let policy = self.policy.as_ref().ok();
        let pin_of = |c: usize, i: usize| policy.and_then(|p| picture_pin(p, c, i));
        // slated decides whether a picture PIN is right.
        let link = std::cell::RefCell::new(&mut self.link);
        let check = |c: usize, i: usize, tapped: &[String]| {
            let pupil = policy?.classes.get(c)?.pupils.get(i)?;
            match link.borrow_mut().check_pictures(&pupil.id, tapped) {
                Ok(right) => Some(right),
                Err(e) => {
                    tracing::warn!(error = %e, "slated could not check the picture PIN");
                    None
                }
            }
        };
        let tap = Tap { now: self.now, picture_pin: &pin_of, check_pictures: &check };
        let shown = screen::screen(&self.observed, &self.local);
        let effects = screen::update(&self.observed, &mut self.local, event, &tap);
        if effects.is_empty() && matches!(event, UiEvent::OpenApp(_)) {
            tracing::warn!(screen = ?shown, "an app tile was tapped on a screen that opens nothing");
        }
        for effect in effects {
            if let Err(e) = self.run(effect) {
                tracing::warn!(error = %e, "request to slated failed");
            }
        }
        self.refresh(online);
    }

    /// A tap on IT's setup page: what it sends is decided by [`setup::tap`], whether it is right
    /// by slated (its notice comes back in the next `status`).
    fn handle_setup(&mut self, tap: setup::Tap) {
        let Some(view) = self.setup.as_ref().filter(|_| self.screen() == Screen::ItSetup) else {
            return;
        };
        let step = setup::Step::from_view(view);
        let paused = view.locked_for_s.is_some_and(|s| s > 0);
        let sent = match setup::tap(step, paused, &mut self.setup_pad, tap) {
            Some(setup::Send::Code(code)) => self.link.setup_code(&code),
            Some(setup::Send::Number(n)) => self.link.setup_number(n),
            Some(setup::Send::Confirm(yes)) => self.link.setup_confirm(yes),
            None => return,
        };
        match sent {
            // slated's refusal is its notice, shown from the status that follows.
            Ok(()) | Err(LinkError::Refused(_)) => {}
            Err(e) => tracing::warn!(error = %e, "setup request to slated failed"),
        }
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
                let accepted = &self.local.picture_pin.accepted;
                let pictures = (!accepted.is_empty()).then_some(accepted.as_slice());
                let result = self.link.sign_in(&id, pictures);
                if result.is_err() {
                    screen::sign_in_failed(&mut self.local);
                    return result;
                }
                // Recorded once the session exists, so slated files it under this pupil.
                let stage = self
                    .policy
                    .as_ref()
                    .ok()
                    .and_then(|p| p.classes.get(class))
                    .map(|c| c.key_stage);
                if let Some(stage) = stage {
                    let policy = self.policy.as_ref().ok();
                    let language = self.language();
                    let shown = agreement::for_policy(stage, policy, &language);
                    self.link.aup_accepted(stage, &shown.version, shown.school_version)?;
                }
                Ok(())
            }
            Effect::SignOut => self.link.sign_out(),
            Effect::Unlock { pin } => {
                let result = self.link.unlock(&pin);
                // slated's own words are safe to show to the adult at the PIN pad.
                if let Err(e) = &result {
                    self.message = match e {
                        LinkError::Refused(why) => format!("Not unlocked: {why}"),
                        LinkError::Ctl(_) => {
                            "Not unlocked: the device service is not answering.".into()
                        }
                    };
                }
                result
            }
            Effect::CheckStaffPin { pin } => {
                let result = self.link.staff_button_test(&pin, false);
                screen::staff_pin_checked(&mut self.local, pin, result.is_ok());
                self.message = match &result {
                    Ok(()) => String::new(),
                    Err(e) => Self::refusal("Not accepted", e),
                };
                result
            }
            Effect::StartButtonTest { pin } => {
                let result = self.link.staff_button_test(&pin, true);
                if let Err(e) = &result {
                    screen::button_test_refused(&mut self.local);
                    self.message = Self::refusal("The test did not start", e);
                }
                result
            }
            Effect::ReadAloud { class } => {
                let stage = self.policy.as_ref().ok().and_then(|p| p.classes.get(class));
                if let Some(class) = stage {
                    let policy = self.policy.as_ref().ok();
                    let language = self.language();
                    let text = agreement::for_policy(class.key_stage, policy, &language).spoken();
                    if let Err(e) = self.speaker.say(&text, &language) {
                        tracing::warn!(error = %e, "the agreement was not read aloud");
                    }
                }
                Ok(())
            }
            Effect::OpenApp(i) => {
                match self.session_apps().get(i).copied() {
                    Some(app) if self.observed.online || !app.needs_internet() => {
                        tracing::info!(app = %app.id, "opening app");
                        let app = app.clone();
                        self.launcher.launch(&app);
                        self.app_in_front = true;
                        self.opened_at = Some(Instant::now());
                    }
                    // The tile is greyed out then; the log says why a tap opened nothing.
                    Some(app) => tracing::info!(app = %app.id, "not opened: it needs the network"),
                    None => tracing::warn!(tile = i, "not opened: no such app in this session"),
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

    /// The language of the screens now: the chosen class's, else the school's (with no policy,
    /// the last one's school language; English if there never was one).
    pub fn language(&self) -> String {
        let policy = self.policy.as_ref().ok();
        let class = policy.zip(self.local.class).and_then(|(p, c)| p.classes.get(c));
        policy.map_or(self.school_language.as_str(), |p| p.language_of(class)).to_owned()
    }

    /// "Read it to me" on a screen other than the agreement: `heading` is the screen's own
    /// words, already in its language (the UI translated them); the names on it follow.
    pub fn read_screen(&mut self, heading: &str) {
        let text = spoken_screen(&self.view(), heading);
        if let Err(e) = self.speaker.say(&text, &self.language()) {
            tracing::warn!(error = %e, "the screen was not read aloud");
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
            language: self.language(),
            device_number: self.device.map_or_else(|| "?".into(), |d| d.to_string()),
            online,
            classes: policy
                .map(|p| {
                    p.classes
                        .iter()
                        .map(|c| Tile {
                            caption: c.name.clone(),
                            // Worded in the screens' language by the UI ("Oak class").
                            label: c.name.clone(),
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
            agreement: class
                .map(|c| agreement::for_policy(c.key_stage, policy, &self.language()))
                .unwrap_or_default(),
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
            picture_pin_length: self.local.picture_pin.length,
            picture_pin_entered: self.local.picture_pin.entered.len(),
            picture_pin_wrong: self.local.picture_pin.wrong,
            picture_pin_try_again: self.local.picture_pin.try_again,
            picture_pin_paused: self.local.picture_pin.paused(self.now),
            message: self.message.clone(),
            ask_reason: match screen {
                Screen::AskTeacher(AskReason::DeviceUnavailable) => {
                    "The device service (slated) is not answering.".into()
                }
                Screen::AskTeacher(AskReason::AppDidNotOpen) => {
                    "The app did not open. The reason is in the device's log (journalctl -u slate-session). Tap to go back.".into()
                }
                Screen::AskTeacher(AskReason::NoPolicy) => match &self.policy {
                    Err(why) => format!("No valid policy: {why}"),
                    Ok(_) => String::new(),
                },
                _ => String::new(),
            },
            config_error: self.config_error.clone().unwrap_or_default(),
            keyboard: screen::keyboard_wanted(screen, self.app_in_front, self.launcher.text_focus()),
            setup_step: self.setup.as_ref().map(setup::Step::from_view),
            setup_digits: self.setup_pad.digits.clone(),
            setup_complete: self
                .setup
                .as_ref()
                .is_some_and(|v| self.setup_pad.complete(setup::Step::from_view(v))),
            setup_notice: setup::Notice::from_slated(
                self.setup.as_ref().and_then(|v| v.notice.as_deref()),
            ),
            setup_pause_minutes: setup::pause_minutes(
                self.setup.as_ref().and_then(|v| v.locked_for_s),
            ),
        }
    }
}

/// The words "Read it to me" says on a screen: its heading, then each class or pupil tile's
/// name on the sign-in screens (so a child who cannot read hears their own). Pure.
pub fn spoken_screen(view: &View, heading: &str) -> String {
    let tiles = match view.screen {
        Screen::ChooseClass => &view.classes,
        Screen::ChoosePupil => &view.pupils,
        _ => return heading.to_owned(),
    };
    let mut text = format!("{}.", heading.trim_end_matches(['.', '!']));
    for tile in tiles {
        text.push(' ');
        text.push_str(tile.caption.trim_end_matches('.'));
        text.push('.');
    }
    text
}

/// The picture PIN of a class's pupil, if they have one.
fn picture_pin(policy: &Policy, class: usize, pupil: usize) -> Option<usize> {
    policy.classes.get(class)?.pupils.get(pupil)?.picture_pin_length()
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
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};

    #[test]
    fn read_it_to_me_speaks_the_classes_agreement() {
        let mut c = controller();
        let speaker = crate::speech::RecordingSpeaker::default();
        c.set_speaker(Box::new(speaker.clone()));
        c.handle(UiEvent::ChooseClass(0), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        assert_eq!(c.screen(), Screen::Agreement);
        c.handle(UiEvent::ReadAloud, true);
        let said = speaker.said.lock().unwrap().clone();
        let ks1 = agreement::for_key_stage(slate_protocol::kiosk::KeyStage::Ks1);
        assert_eq!(said, [ks1.spoken()]);
        assert!(said[0].starts_with(&ks1.title) && said[0].contains(&ks1.promises[0]));
        assert_eq!(c.screen(), Screen::Agreement, "reading aloud signs nobody in");
    }

    /// The sample policy with the school's own KS1 agreement, version 3.
    fn with_school_ks1_text() -> Controller<FakeDevice, RecordingLauncher> {
        use slate_protocol::agreement::SchoolAgreement;
        use slate_protocol::kiosk::KeyStage;
        let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
        let promises = vec!["We ask before we tap.".into(), "We tell a grown-up.".into()];
        policy.agreements =
            vec![SchoolAgreement::new(KeyStage::Ks1, 3, "Oak class promise".into(), promises)];
        let mut c = Controller::new(FakeDevice::new(12), RecordingLauncher::default(), Ok(policy));
        c.refresh(true);
        c
    }

    #[test]
    fn the_schools_own_text_is_shown_read_aloud_and_recorded_with_its_version() {
        let mut c = with_school_ks1_text();
        let speaker = crate::speech::RecordingSpeaker::default();
        c.set_speaker(Box::new(speaker.clone()));
        c.handle(UiEvent::ChooseClass(0), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        let shown = c.view().agreement;
        assert_eq!(shown.title, "Oak class promise");
        assert_eq!(shown.school_version, Some(3));
        c.handle(UiEvent::ReadAloud, true);
        let said = speaker.said.lock().unwrap().clone();
        assert_eq!(said, ["Oak class promise. We ask before we tap. We tell a grown-up."]);
        c.handle(UiEvent::Agree, true);
        assert_eq!(c.screen(), Screen::Home);
        let accepted = format!("aup_accepted ks1 {} school 3", shown.version);
        assert!(c.link.log.contains(&accepted), "{:?}", c.link.log);
    }

    #[test]
    fn slated_is_told_once_per_hold_when_the_reassurance_screen_is_in_front() {
        let mut c = controller();
        let told = |c: &Controller<FakeDevice, RecordingLauncher>| {
            c.link.log.iter().filter(|l| l.as_str() == "reassurance_shown").count()
        };
        c.note_window(true);
        assert_eq!(told(&c), 0, "not held: nothing to light");
        c.link.press();
        c.refresh(true);
        assert_eq!(c.screen(), Screen::Reported);
        c.note_window(false);
        assert_eq!(told(&c), 0, "the window is not in front yet");
        c.note_window(true);
        c.note_window(true);
        assert_eq!(told(&c), 1, "once per hold");
        c.link.state = DeviceState::Idle;
        c.refresh(true);
        c.note_window(true);
        c.link.press();
        c.refresh(true);
        c.note_window(true);
        assert_eq!(told(&c), 2, "a new hold is told again");
    }

    #[test]
    fn it_sets_a_new_device_up_on_the_page_and_a_taken_number_is_asked_again() {
        use setup::Tap::*;
        let mut device = FakeDevice::in_setup();
        device.taken = vec![7];
        let mut c = Controller::new(device, RecordingLauncher::default(), Err("none yet".into()));
        c.refresh(true);
        assert_eq!((c.screen(), c.view().setup_step), (Screen::ItSetup, Some(setup::Step::Code)));
        let taps = |c: &mut Controller<FakeDevice, RecordingLauncher>, taps: &[setup::Tap]| {
            for t in taps {
                c.handle(UiEvent::Setup(*t), true);
            }
        };
        let digits = |s: &str| s.bytes().map(|b| Digit(b - b'0')).collect::<Vec<_>>();
        // Not IT's code: slated's notice comes back.
        taps(&mut c, &digits("11111111"));
        assert!(c.view().setup_complete);
        taps(&mut c, &[Submit]);
        assert_eq!(c.view().setup_notice, setup::Notice::WrongCode);
        assert_eq!(c.view().setup_digits, "");
        taps(&mut c, &digits("12345678"));
        taps(&mut c, &[Submit]);
        assert_eq!(c.view().setup_step, Some(setup::Step::Number));
        taps(&mut c, &digits("7"));
        taps(&mut c, &[Submit, Confirm(true)]);
        let v = c.view();
        assert_eq!(
            (v.setup_step, v.setup_notice),
            (Some(setup::Step::Number), setup::Notice::Taken(7))
        );
        taps(&mut c, &digits("12"));
        taps(&mut c, &[Submit]);
        assert_eq!(c.view().setup_step, Some(setup::Step::Confirm(12)));
        taps(&mut c, &[Confirm(true)]);
        let v = c.view();
        assert_eq!(
            (v.screen, v.device_number.as_str()),
            (Screen::AskTeacher(AskReason::NoPolicy), "12")
        );
        let sent: Vec<_> = c.link.log.iter().filter(|l| l.starts_with("setup")).collect();
        assert_eq!(
            sent,
            [
                "setup_code",
                "setup_code",
                "setup_number 7",
                "setup_confirm yes",
                "setup_number 12",
                "setup_confirm yes"
            ]
        );
        // Taps after setup reach nothing.
        taps(&mut c, &[Confirm(true)]);
        assert_eq!(c.link.log.iter().filter(|l| l.starts_with("setup")).count(), 6);
    }

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
        assert_eq!(v.agreement, agreement::for_key_stage(slate_protocol::kiosk::KeyStage::Ks1));
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

    /// Signs in `pupil` of `class` through the screens.
    fn signed_in(class: usize, pupil: usize) -> Controller<FakeDevice, RecordingLauncher> {
        let mut c = controller();
        c.handle(UiEvent::ChooseClass(class), true);
        c.handle(UiEvent::ChoosePupil(pupil), true);
        c.handle(UiEvent::Agree, true);
        assert_eq!(c.screen(), Screen::Home);
        c
    }

    #[test]
    fn the_agreement_is_recorded_with_its_version_once_signed_in() {
        let c = signed_in(1, 2);
        let ks2 = agreement::for_key_stage(slate_protocol::kiosk::KeyStage::Ks2).version;
        let log: Vec<&str> =
            c.link.log.iter().map(String::as_str).filter(|l| *l != "status").collect();
        assert_eq!(log, ["sign_in p-e0e0e3", &format!("aup_accepted ks2 {ks2}")]);

        // A refused sign-in records no agreement.
        let mut c = controller();
        c.link.press();
        c.refresh(true);
        c.link.state = DeviceState::Idle;
        c.refresh(true);
        c.handle(UiEvent::ChooseClass(0), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        c.link.state = DeviceState::Held; // slated refuses: pressed since the last poll
        c.handle(UiEvent::Agree, true);
        assert!(c.link.log.iter().any(|l| l == "sign_in p-7f3a9c"), "{:?}", c.link.log);
        assert!(!c.link.log.iter().any(|l| l.starts_with("aup_accepted")), "{:?}", c.link.log);
    }

    #[test]
    fn touches_become_activity_at_most_every_thirty_seconds() {
        let mut c = signed_in(0, 1);
        let activity = |c: &Controller<FakeDevice, RecordingLauncher>| {
            c.link.log.iter().filter(|l| *l == "activity").count()
        };
        // The taps that signed in were not in a session yet; the first tap in one is passed on.
        assert_eq!(activity(&c), 0);
        c.handle(UiEvent::OpenApp(0), true);
        c.handle(UiEvent::OpenApp(1), true);
        assert_eq!(activity(&c), 1);
        let now = Instant::now();
        c.touched(now + screen::ACTIVITY_EVERY);
        c.touched(now + screen::ACTIVITY_EVERY);
        assert_eq!(activity(&c), 2);
    }

    #[test]
    fn eyes_on_me_covers_home_and_lets_go() {
        let mut c = signed_in(0, 0);
        c.handle(UiEvent::OpenApp(0), true);
        assert!(c.view().keyboard, "an app is in front: the keyboard is available");
        c.link.screens_locked = true;
        c.refresh(true);
        let v = c.view();
        assert_eq!(v.screen, Screen::EyesOnTeacher);
        assert!(v.screen.covers_apps() && !v.keyboard);
        c.handle(UiEvent::SignOut, true);
        assert_eq!(
            c.link.pupil.as_ref().map(|p| p.as_str()),
            Some("p-7f3a9c"),
            "no tap gets through"
        );
        c.link.screens_locked = false;
        c.refresh(true);
        assert_eq!(c.screen(), Screen::Home);
    }

    #[test]
    fn a_session_ended_by_slated_returns_to_sign_in() {
        let mut c = signed_in(1, 0);
        c.handle(UiEvent::OpenApp(0), true);
        c.link.end_session();
        c.refresh(true);
        let v = c.view();
        assert_eq!(v.screen, Screen::ChooseClass);
        assert!(v.pupil.is_empty() && v.apps.is_empty() && !v.keyboard);
    }

    /// A launcher whose app ends when the test says, counting stops.
    #[derive(Default)]
    struct ScriptedLauncher {
        running: Option<String>,
        exited: Option<AppExit>,
        stops: usize,
        focus: crate::text_focus::TextFocus,
    }

    impl Launcher for ScriptedLauncher {
        fn launch(&mut self, app: &App) {
            self.running = Some(app.id.clone());
        }
        fn poll_exit(&mut self) -> Option<AppExit> {
            self.exited.take()
        }
        fn stop(&mut self) {
            self.stops += 1;
            self.running = None;
        }
        fn text_focus(&self) -> crate::text_focus::TextFocus {
            self.focus
        }
    }

    /// A pupil signed in with the first app ("paint") opened through a scripted launcher.
    fn signed_in_with_paint_open() -> Controller<FakeDevice, ScriptedLauncher> {
        let mut c = Controller::new(
            FakeDevice::new(12),
            ScriptedLauncher::default(),
            parse_policy(SAMPLE_POLICY).map_err(|e| e.to_string()),
        );
        c.refresh(true);
        for event in
            [UiEvent::ChooseClass(0), UiEvent::ChoosePupil(0), UiEvent::Agree, UiEvent::OpenApp(0)]
        {
            c.handle(event, true);
        }
        c
    }

    #[test]
    fn the_app_goes_with_the_session_and_home_is_back_when_it_ends() {
        let mut c = signed_in_with_paint_open();
        assert_eq!(c.launcher.running.as_deref(), Some("paint"));
        assert!(c.view().keyboard, "an app that cannot say where typing goes keeps it up");
        // A web page tells: the keyboard is up only while one of its fields has the focus.
        c.launcher.focus = crate::text_focus::TextFocus::Elsewhere;
        assert!(!c.view().keyboard);
        c.launcher.focus = crate::text_focus::TextFocus::Field;
        assert!(c.view().keyboard);
        // The app exits by itself: the keyboard goes, nothing is stopped.
        c.launcher.exited = Some(AppExit { app: "paint".into(), pid: 7, code: Some(0) });
        c.refresh(true);
        assert!(!c.view().keyboard);
        assert_eq!((c.screen(), c.launcher.stops), (Screen::Home, 0));
        // A hold leaves the app to slated; the session's end stops it.
        c.handle(UiEvent::OpenApp(1), true);
        c.link.press();
        c.refresh(true);
        assert_eq!(c.launcher.stops, 0);
        c.link.state = DeviceState::InSession;
        c.refresh(true);
        c.link.end_session();
        c.refresh(true);
        assert_eq!(c.launcher.stops, 1);
        assert_eq!(c.launcher.running, None);
    }

    #[test]
    fn an_app_that_fails_at_once_tells_the_pupil_and_a_tap_goes_home() {
        let mut c = signed_in_with_paint_open();
        // Chromium without a usable sandbox ends at once with an error.
        c.launcher.exited = Some(AppExit { app: "paint".into(), pid: 7, code: Some(1) });
        c.refresh(true);
        assert_eq!(c.screen(), Screen::AskTeacher(AskReason::AppDidNotOpen));
        assert!(c.view().ask_reason.contains("did not open"), "{}", c.view().ask_reason);
        c.handle(UiEvent::AskTeacherOk, true);
        assert_eq!(c.screen(), Screen::Home);
    }

    #[test]
    fn the_kiosk_window_makes_way_for_the_app_and_covers_it_when_it_must() {
        use crate::front::{Front, RecordingWindow};
        let mut c = Controller::new(
            FakeDevice::new(12),
            ScriptedLauncher::default(),
            parse_policy(SAMPLE_POLICY).map_err(|e| e.to_string()),
        );
        c.refresh(true);
        let mut front = Front::new(RecordingWindow::default(), Some(true));
        let mut step = |c: &mut Controller<FakeDevice, ScriptedLauncher>| {
            c.refresh(true);
            front.apply(c.screen(), c.app_running());
            front.mapped()
        };
        for event in [UiEvent::ChooseClass(0), UiEvent::ChoosePupil(0), UiEvent::Agree] {
            c.handle(event, true);
        }
        assert_eq!(step(&mut c), Some(true), "home, no app");
        c.handle(UiEvent::OpenApp(0), true);
        assert_eq!(step(&mut c), Some(false), "the app is in front");
        c.link.screens_locked = true;
        assert_eq!(step(&mut c), Some(true), "eyes on the teacher, over the app");
        c.link.screens_locked = false;
        assert_eq!(step(&mut c), Some(false), "back to the app");
        c.link.press();
        assert_eq!(step(&mut c), Some(true), "reported, over the app");
        c.link.state = DeviceState::InSession; // released, the app resumed
        assert_eq!(step(&mut c), Some(false));
        c.launcher.exited = Some(AppExit { app: "paint".into(), pid: 7, code: Some(0) });
        assert_eq!(step(&mut c), Some(true), "the app ended: home");
        c.handle(UiEvent::OpenApp(1), true);
        assert_eq!(step(&mut c), Some(false));
        c.link.end_session();
        assert_eq!(step(&mut c), Some(true), "the session ended: sign in");
        assert_eq!(c.screen(), Screen::ChooseClass);
        assert_eq!(front.window.calls, [false, true, false, true, false, true, false, true]);
    }

    #[test]
    fn a_restarted_kiosk_finds_the_session_again() {
        let mut before = signed_in(1, 1);
        let mut c = Controller::new(
            std::mem::replace(&mut before.link, FakeDevice::new(1)),
            RecordingLauncher::default(),
            parse_policy(SAMPLE_POLICY).map_err(|e| e.to_string()),
        );
        c.refresh(true);
        let v = c.view();
        assert_eq!((v.screen, v.pupil.as_str()), (Screen::Home, "Jack S."));
        assert_eq!(v.apps.len(), 5);
    }

    #[test]
    fn a_new_policy_replaces_the_old_and_a_bad_one_fails_closed() {
        let mut c = signed_in(0, 1);
        let mut next = parse_policy(SAMPLE_POLICY).unwrap();
        next.classes.swap(0, 1);
        next.classes[1].apps.retain(|a| a != "paint");
        c.set_policy(Ok(next));
        let v = c.view();
        assert_eq!((v.screen, v.pupil.as_str()), (Screen::Home, "Ben T."));
        let apps: Vec<String> = v.apps.iter().map(|a| a.caption.clone()).collect();
        assert_eq!(apps, ["Reading", "Maths"]);

        c.set_policy(Err("policy/kiosk.json: invalid field `signature`".into()));
        let v = c.view();
        assert_eq!(v.screen, Screen::AskTeacher(AskReason::NoPolicy));
        assert!(v.ask_reason.contains("signature") && v.apps.is_empty());
    }

    #[test]
    fn a_picture_pin_given_in_a_new_policy_is_asked_for() {
        let mut c = controller();
        c.handle(UiEvent::ChooseClass(1), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        assert_eq!(c.screen(), Screen::Agreement);
        let mut next = parse_policy(SAMPLE_POLICY).unwrap();
        // From a server that sends hashes: the UI learns the length only.
        next.classes[1].pupils[0].picture_pin_length = Some(2);
        // slated decides, from the same policy and the hash in the staff document.
        c.link.picture_pins =
            vec![(next.classes[1].pupils[0].id.clone(), vec!["sun".into(), "boat".into()])];
        c.set_policy(Ok(next.clone()));
        let v = c.view();
        assert_eq!(
            (v.screen, v.picture_pin_length, v.picture_pin_entered),
            (Screen::PicturePin, 2, 0)
        );
        // Wrong first: slated says so, and the page says "try again".
        for picture in [6, 4] {
            c.handle(UiEvent::PinPicture(picture), true);
        }
        let v = c.view();
        assert_eq!((v.screen, v.picture_pin_try_again), (Screen::PicturePin, true));
        for picture in [4, 6] {
            c.handle(UiEvent::PinPicture(picture), true);
        }
        assert_eq!(c.screen(), Screen::Agreement);
        let pupil = next.classes[1].pupils[0].id.as_str().to_owned();
        let checks = c.link.log.iter().filter(|l| **l == format!("check_pictures {pupil}")).count();
        assert_eq!(checks, 2, "slated checked each complete sequence: {:?}", c.link.log);
        // The same policy again changes nothing; the agreement then signs in.
        c.set_policy(Ok(next));
        assert_eq!(c.screen(), Screen::Agreement);
        c.handle(UiEvent::Agree, true);
        assert_eq!(c.screen(), Screen::Home, "signed in with the pictures: {:?}", c.link.log);
    }

    #[test]
    fn slated_not_the_ui_decides_a_picture_pin() {
        let mut c = controller();
        let mut next = parse_policy(SAMPLE_POLICY).unwrap();
        next.classes[1].pupils[0].picture_pin = Some(vec!["sun".into(), "boat".into()]);
        c.set_policy(Ok(next.clone()));
        // slated's policy says other pictures: the ones the UI's copy says are refused.
        c.link.picture_pins =
            vec![(next.classes[1].pupils[0].id.clone(), vec!["moon".into(), "star".into()])];
        c.handle(UiEvent::ChooseClass(1), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        for picture in [4, 6] {
            c.handle(UiEvent::PinPicture(picture), true);
        }
        let v = c.view();
        assert_eq!((v.screen, v.picture_pin_try_again), (Screen::PicturePin, true));
        for picture in [3, 0] {
            c.handle(UiEvent::PinPicture(picture), true);
        }
        assert_eq!(c.screen(), Screen::Agreement);
        c.handle(UiEvent::Agree, true);
        assert_eq!(c.screen(), Screen::Home);
        // slated unreachable: no verdict, so no way on.
        let mut c = controller();
        c.set_policy(Ok(next));
        c.handle(UiEvent::ChooseClass(1), true);
        c.handle(UiEvent::ChoosePupil(0), true);
        c.link.reachable = false;
        for picture in [4, 6] {
            c.handle(UiEvent::PinPicture(picture), true);
        }
        assert!(!c.local.picture_pin.passed);
        assert_eq!(c.local.picture_pin.misses, 0, "not counted as wrong");
    }

    #[test]
    fn a_refused_config_is_shown_to_it() {
        let mut c = controller();
        c.link.reachable = false;
        c.set_config_error(Some("slate.toml: field `server.url` is missing".into()));
        c.refresh(true);
        let v = c.view();
        assert_eq!(v.screen, Screen::ConfigError);
        assert_eq!(v.config_error, "slate.toml: field `server.url` is missing");
        c.set_config_error(None);
        c.refresh(true);
        assert_eq!(c.screen(), Screen::AskTeacher(AskReason::DeviceUnavailable));
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
    fn the_pin_pad_takes_longer_pins_and_tells_it_when_there_is_none() {
        let mut c = controller();
        c.link.press();
        c.link.pin = Some("246813".into());
        c.refresh(true);
        c.handle(UiEvent::Staff, true);
        for d in [2, 4, 6] {
            c.handle(UiEvent::PinDigit(d), true);
        }
        c.handle(UiEvent::PinUnlock, true);
        assert_eq!(c.link.log.iter().filter(|l| *l == "unlock").count(), 0, "3 digits: too short");
        for d in [8, 1, 3] {
            c.handle(UiEvent::PinDigit(d), true);
        }
        assert_eq!(c.view().pin_entered, 6);
        c.handle(UiEvent::PinUnlock, true);
        assert_eq!(c.screen(), Screen::ChooseClass, "a six-digit PIN unlocks");

        let mut held = controller();
        held.link.press();
        held.link.staff_pin = false;
        held.refresh(true);
        held.handle(UiEvent::Staff, true);
        assert_eq!(held.screen(), Screen::StaffUnlock);
        assert_eq!(held.view().message, NO_STAFF_PIN);
    }

    #[test]
    fn an_app_that_does_not_open_asks_for_a_teacher() {
        use std::time::Duration;
        let exit = |pid, code| AppExit { app: "paint".into(), pid, code };
        let cases = [
            (exit(0, None), None, true, "never started"),
            (exit(7, Some(1)), Some(Duration::from_secs(1)), true, "failed at once"),
            (exit(7, None), Some(Duration::from_secs(2)), true, "killed at once"),
            (exit(7, Some(0)), Some(Duration::from_secs(1)), false, "closed by itself"),
            (exit(7, Some(1)), Some(Duration::from_secs(60)), false, "ran, then ended"),
            (exit(7, Some(1)), None, false, "not opened by this kiosk"),
        ];
        for (exit, ran_for, want, why) in cases {
            assert_eq!(did_not_open(&exit, ran_for), want, "{why}");
        }
    }

    #[test]
    fn fail_closed() {
        let mut c = Controller::new(
            FakeDevice::new(3),
            RecordingLauncher::default(),
            Err("missing".into()),
        );
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
