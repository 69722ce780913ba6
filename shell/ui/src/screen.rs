//! Which screen the kiosk shows, and what a tap on it means: a pure state machine. Owns the
//! navigation rules (fail closed, the report hold first, the agreement before every session);
//! must not do I/O, talk to slated or touch Slint. The controller feeds it what it observed and
//! what was tapped, and carries out the [`Effect`]s it returns.
//!
//! ```text
//!   priority  condition                                  screen
//!   1         slated says held, PIN pad open             StaffUnlock
//!   2         slated says held                           Reported      (even with no policy)
//!   3         slated's config was refused at first boot  ConfigError   (for IT)
//!   4         slated waits for IT's setup (no number)    ItSetup
//!   5         slated unreachable                         AskTeacher(DeviceUnavailable)
//!   6         the teacher's "eyes on me" is in force     EyesOnTeacher (over home and apps)
//!   7         no valid policy                            AskTeacher(NoPolicy)   fail closed
//!   8         in session, offline, notice not yet seen   Offline
//!   9         in session                                 Home
//!   10        idle, a button test window open            ButtonTest    (the next press is a test)
//!   11        idle, the staff PIN pad open / PIN right   StaffPin / StaffMenu (the button test)
//!   12        idle: no class / class / class + pupil     ChooseClass / ChoosePupil / Agreement
//!             (a pupil with a picture PIN not yet tapped) PicturePin, before the agreement
//! ```
//!
//! The sign-in screen's small "Staff" button, in its bottom corner, opens the staff PIN pad
//! ([`StaffPad`]): a pupil who taps it finds a PIN pad and Cancel, nothing else. slated checks
//! the PIN; a right one offers "Test the report button", which asks slated to open the button
//! test in that staff member's name.
//!
//! Also pure and here: when to tell slated the pupil is still there ([`activity_due`]) and when
//! the on-screen keyboard is wanted ([`keyboard_wanted`]).

use crate::text_focus::TextFocus;
use std::time::{Duration, Instant};

/// The device's state as slated reports it (`status`), or that it could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// slated did not answer: nothing can be started, so nothing is offered.
    Unreachable,
    Idle,
    InSession,
    /// The report button was pressed; only a member of staff can release the device.
    Held,
    /// The device has no number yet and waits for IT's setup (a class set's card image).
    Setup,
}

impl DeviceState {
    /// Maps slated's `state` field. Anything unknown is treated as unreachable (fail closed).
    pub fn from_status(state: Option<&str>) -> Self {
        match state {
            Some("idle") => Self::Idle,
            Some("in_session") => Self::InSession,
            Some("held") => Self::Held,
            Some("setup") => Self::Setup,
            _ => Self::Unreachable,
        }
    }
}

/// What the controller observed from outside the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// A policy (roster and approved apps) that parsed and checked.
    pub policy_valid: bool,
    pub online: bool,
    pub device: DeviceState,
    /// The teacher's "eyes on me" (slated's `screens_locked`).
    pub screens_locked: bool,
    /// slated's configuration was refused at first boot (the provisioning unit says why).
    pub config_error: bool,
    /// A button test window is open on the device: the next press is only a test.
    pub button_test: bool,
}

/// The digits a staff PIN may have: what slated accepts (`slatectl hash-pin`, 4 to 12) and so
/// whatever the school server lets staff set. The pad takes any length in between.
pub const PIN_MIN_LENGTH: usize = 4;
pub const PIN_MAX_LENGTH: usize = 12;

/// What the UI itself remembers between taps. Indexes point into the policy's classes and the
/// chosen class's pupils.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub class: Option<usize>,
    pub pupil: Option<usize>,
    /// "I agree" was tapped and the session is being started.
    pub aup_accepted: bool,
    pub pin_pad: bool,
    /// The sign-in screen's staff PIN pad (the button test), while the device is idle.
    pub staff: StaffPad,
    /// The digits typed so far (never shown, only counted).
    pub pin: String,
    /// The offline notice was dismissed for this spell offline.
    pub offline_seen: bool,
    /// The chosen pupil's picture PIN, as they tap it.
    pub picture_pin: PicturePin,
    /// The app the pupil opened did not start: "ask your teacher" until tapped away.
    pub app_failed: bool,
}

/// The sign-in screen's staff PIN pad, which offers the button test.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StaffPad {
    #[default]
    Closed,
    /// The PIN pad is open.
    Pin,
    /// slated said the PIN was right: "Test the report button" or Cancel. The PIN is kept
    /// (never shown) to start the test with, since slated checks it again then.
    Offer(String),
}

impl std::fmt::Debug for StaffPad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaffPad::Closed => f.write_str("Closed"),
            StaffPad::Pin => f.write_str("Pin"),
            StaffPad::Offer(_) => f.write_str("Offer(<hidden>)"),
        }
    }
}

/// The pictures of a picture PIN, in the order the PIN page shows them (the pupils' tile
/// symbols of `ui/symbols.slint`, and the names the server accepts).
pub const PICTURES: [&str; 8] = ["star", "fish", "heart", "moon", "sun", "flower", "boat", "tree"];

/// Wrong picture PINs in a row before the page asks for a teacher.
pub const PICTURE_PIN_TRIES: u32 = 5;
/// How long the page then asks for a teacher. It only slows a classmate guessing: the picture
/// PIN keeps pupils apart, it does not guard anything from staff.
pub const PICTURE_PIN_PAUSE: Duration = Duration::from_secs(60);

/// A picture PIN being tapped. The wrong-try count and the pause belong to the device, not to
/// the pupil chosen, so going back and choosing again does not reset them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PicturePin {
    /// How many pictures the chosen pupil's PIN has (the dots); 0 when they have none. The
    /// UI never knows the pictures: slated checks them against the PIN's hash.
    pub length: usize,
    /// Indexes into [`PICTURES`] tapped so far (shown only as dots).
    pub entered: Vec<usize>,
    /// The whole sequence was right: on to the agreement.
    pub passed: bool,
    /// The pictures slated said were right (names), sent again with the sign-in.
    pub accepted: Vec<String>,
    /// Wrong sequences in a row.
    pub misses: u32,
    /// Bumped at each wrong sequence, so the page can react (a gentle shake).
    pub wrong: u32,
    /// The last complete sequence was wrong and nothing was tapped since: "try again".
    pub try_again: bool,
    /// While set and in the future, the page says "Ask your teacher" and takes no taps.
    pub paused_until: Option<Instant>,
}

impl PicturePin {
    fn choose(&mut self, length: Option<usize>) {
        self.length = length.unwrap_or_default();
        self.entered.clear();
        self.passed = false;
        self.accepted.clear();
        self.try_again = false;
    }

    /// Whether the page is pausing at `now` after too many wrong tries.
    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| now < until)
    }
}

/// Why the device asks for a teacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskReason {
    NoPolicy,
    DeviceUnavailable,
    /// The app just opened could not start (the kiosk's log says why); a tap goes home.
    AppDidNotOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    ChooseClass,
    ChoosePupil,
    /// The pupil taps their picture PIN.
    PicturePin,
    Agreement,
    Home,
    Reported,
    StaffUnlock,
    AskTeacher(AskReason),
    Offline,
    /// "Eyes on your teacher": a calm page over everything but the report hold.
    EyesOnTeacher,
    /// The device is not set up right; the message is for IT.
    ConfigError,
    /// The device has no number yet: IT's setup page (`crate::setup`).
    ItSetup,
    /// The staff PIN pad opened from the sign-in screen (the page of [`Screen::StaffUnlock`],
    /// for the button test).
    StaffPin,
    /// After a right staff PIN there: "Test the report button" or Cancel.
    StaffMenu,
    /// A button test window is open: "press the report button: it is only a test".
    ButtonTest,
}

impl Screen {
    /// Whether this screen must be in front of a running app (the launcher's window), not just
    /// of the kiosk's own pages.
    pub fn covers_apps(self) -> bool {
        matches!(self, Self::Reported | Self::StaffUnlock | Self::EyesOnTeacher | Self::ConfigError)
    }
}

/// The screen to show. Total: every combination has exactly one answer.
pub fn screen(o: &Observed, l: &Local) -> Screen {
    match o.device {
        DeviceState::Held if l.pin_pad => Screen::StaffUnlock,
        DeviceState::Held => Screen::Reported,
        _ if o.config_error => Screen::ConfigError,
        DeviceState::Setup => Screen::ItSetup,
        DeviceState::Unreachable => Screen::AskTeacher(AskReason::DeviceUnavailable),
        _ if o.screens_locked => Screen::EyesOnTeacher,
        _ if !o.policy_valid => Screen::AskTeacher(AskReason::NoPolicy),
        DeviceState::InSession if l.app_failed => Screen::AskTeacher(AskReason::AppDidNotOpen),
        DeviceState::InSession if !o.online && !l.offline_seen => Screen::Offline,
        DeviceState::InSession => Screen::Home,
        DeviceState::Idle if o.button_test => Screen::ButtonTest,
        DeviceState::Idle if l.staff == StaffPad::Pin => Screen::StaffPin,
        DeviceState::Idle if matches!(l.staff, StaffPad::Offer(_)) => Screen::StaffMenu,
        DeviceState::Idle => match (l.class, l.pupil) {
            (None, _) => Screen::ChooseClass,
            (Some(_), None) => Screen::ChoosePupil,
            (Some(_), Some(_)) if l.picture_pin.length > 0 && !l.picture_pin.passed => {
                Screen::PicturePin
            }
            (Some(_), Some(_)) => Screen::Agreement,
        },
    }
}

/// A tap (or a screen reader's press) on a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiEvent {
    ChooseClass(usize),
    ChoosePupil(usize),
    /// One of the [`PICTURES`] on the picture PIN page, by index.
    PinPicture(usize),
    Back,
    Agree,
    /// "Read it to me" on the agreement.
    ReadAloud,
    OpenApp(usize),
    SignOut,
    Staff,
    PinDigit(u8),
    PinClear,
    PinCancel,
    PinUnlock,
    /// "Test the report button" after a right staff PIN on the sign-in screen's pad.
    TestButton,
    OfflineOk,
    /// A tap on "ask your teacher" after an app did not open.
    AskTeacherOk,
    /// A tap on IT's setup page (the controller runs it through `crate::setup::tap`).
    Setup(crate::setup::Tap),
}

/// What the controller must do for a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start a session for this pupil (the agreement was accepted).
    SignIn {
        class: usize,
        pupil: usize,
    },
    SignOut,
    Unlock {
        pin: String,
    },
    /// Ask slated whether this is a staff PIN (the sign-in screen's pad); if it is,
    /// [`staff_pin_checked`] offers the button test.
    CheckStaffPin {
        pin: String,
    },
    /// Ask slated to open the button test in the name of this PIN's owner.
    StartButtonTest {
        pin: String,
    },
    OpenApp(usize),
    /// Read the agreement of this class's key stage aloud.
    ReadAloud {
        class: usize,
    },
}

/// What a tap needs to know beyond the screens' state: the time (for the picture PIN's pause),
/// each pupil's picture PIN (by class and pupil index; `None`: the pupil has none; only its
/// length is used, for the dots) and slated's verdict on a complete sequence (slated decides;
/// `None`: it could not be asked).
pub struct Tap<'a> {
    pub now: Instant,
    pub picture_pin: &'a dyn Fn(usize, usize) -> Option<usize>,
    pub check_pictures: &'a CheckPictures<'a>,
}

/// slated's verdict on a pupil's (class and pupil index) complete picture sequence.
pub type CheckPictures<'a> = dyn Fn(usize, usize, &[String]) -> Option<bool> + 'a;

/// Applies a tap. A tap that does not belong to the screen on show (a stale event, or one
/// crafted through accessibility) changes nothing and does nothing.
pub fn update(o: &Observed, l: &mut Local, event: UiEvent, tap: &Tap) -> Vec<Effect> {
    let shown = screen(o, l);
    match (shown, event) {
        (Screen::ChooseClass, UiEvent::ChooseClass(i)) => {
            l.class = Some(i);
            l.pupil = None;
        }
        (Screen::ChoosePupil, UiEvent::ChoosePupil(i)) => {
            l.pupil = Some(i);
            l.aup_accepted = false;
            let pin = l.class.and_then(|c| (tap.picture_pin)(c, i));
            l.picture_pin.choose(pin);
        }
        (Screen::ChoosePupil, UiEvent::Back) => l.class = None,
        (Screen::PicturePin, UiEvent::Back) => {
            l.pupil = None;
            l.picture_pin.choose(None);
        }
        (Screen::PicturePin, UiEvent::PinPicture(i)) => {
            if let Some(tapped) = picture_tapped(&mut l.picture_pin, i, tap.now) {
                let verdict = match (l.class, l.pupil) {
                    (Some(c), Some(p)) => (tap.check_pictures)(c, p, &tapped),
                    _ => None,
                };
                pictures_checked(&mut l.picture_pin, tapped, verdict, tap.now);
            }
        }
        (Screen::Agreement, UiEvent::Back) if !l.aup_accepted => {
            l.pupil = None;
            l.picture_pin.choose(None);
        }
        (Screen::Agreement, UiEvent::ReadAloud) => {
            if let Some(class) = l.class {
                return vec![Effect::ReadAloud { class }];
            }
        }
        (Screen::Agreement, UiEvent::Agree) if !l.aup_accepted => {
            l.aup_accepted = true;
            if let (Some(class), Some(pupil)) = (l.class, l.pupil) {
                return vec![Effect::SignIn { class, pupil }];
            }
        }
        (Screen::Home, UiEvent::OpenApp(i)) => return vec![Effect::OpenApp(i)],
        (Screen::Home, UiEvent::SignOut) => return vec![Effect::SignOut],
        (Screen::Offline, UiEvent::OfflineOk) => l.offline_seen = true,
        (Screen::AskTeacher(AskReason::AppDidNotOpen), UiEvent::AskTeacherOk) => {
            l.app_failed = false
        }
        (Screen::Reported, UiEvent::Staff) => {
            l.pin_pad = true;
            l.pin.clear();
        }
        (Screen::StaffUnlock, UiEvent::PinDigit(d)) if d <= 9 && l.pin.len() < PIN_MAX_LENGTH => {
            l.pin.push(char::from(b'0' + d));
        }
        (Screen::StaffUnlock, UiEvent::PinClear) => l.pin.clear(),
        (Screen::StaffUnlock, UiEvent::PinCancel) => {
            l.pin_pad = false;
            l.pin.clear();
        }
        (Screen::StaffUnlock, UiEvent::PinUnlock) if l.pin.len() >= PIN_MIN_LENGTH => {
            return vec![Effect::Unlock { pin: std::mem::take(&mut l.pin) }];
        }
        (Screen::ChooseClass, UiEvent::Staff) => {
            l.staff = StaffPad::Pin;
            l.pin.clear();
        }
        (Screen::StaffPin, UiEvent::PinDigit(d)) if d <= 9 && l.pin.len() < PIN_MAX_LENGTH => {
            l.pin.push(char::from(b'0' + d));
        }
        (Screen::StaffPin, UiEvent::PinClear) => l.pin.clear(),
        (Screen::StaffPin | Screen::StaffMenu, UiEvent::PinCancel) => {
            l.staff = StaffPad::Closed;
            l.pin.clear();
        }
        (Screen::StaffPin, UiEvent::PinUnlock) if l.pin.len() >= PIN_MIN_LENGTH => {
            return vec![Effect::CheckStaffPin { pin: std::mem::take(&mut l.pin) }];
        }
        (Screen::StaffMenu, UiEvent::TestButton) => {
            if let StaffPad::Offer(pin) = std::mem::take(&mut l.staff) {
                return vec![Effect::StartButtonTest { pin }];
            }
        }
        _ => {}
    }
    Vec::new()
}

/// One picture tapped at `now`: the complete sequence (picture names) when this was its last
/// picture, for slated to check as a whole (the page never says which picture was wrong).
fn picture_tapped(pin: &mut PicturePin, picture: usize, now: Instant) -> Option<Vec<String>> {
    if picture >= PICTURES.len() || pin.paused(now) || pin.entered.len() >= pin.length {
        return None;
    }
    pin.paused_until = None;
    pin.try_again = false;
    pin.entered.push(picture);
    if pin.entered.len() < pin.length {
        return None;
    }
    let tapped = pin.entered.iter().map(|&i| PICTURES[i].to_owned()).collect();
    pin.entered.clear();
    Some(tapped)
}

/// slated's verdict on a complete sequence: right goes on to the agreement; wrong clears the dots
/// and says "try again", and the fifth wrong in a row pauses the page; no verdict (slated did not
/// answer) says "try again" without counting.
fn pictures_checked(
    pin: &mut PicturePin,
    tapped: Vec<String>,
    verdict: Option<bool>,
    now: Instant,
) {
    if verdict == Some(true) {
        pin.passed = true;
        pin.accepted = tapped;
        pin.misses = 0;
    } else if verdict.is_none() {
        pin.try_again = true;
    } else {
        pin.wrong = pin.wrong.wrapping_add(1);
        pin.try_again = true;
        pin.misses += 1;
        if pin.misses >= PICTURE_PIN_TRIES {
            pin.misses = 0;
            pin.paused_until = Some(now + PICTURE_PIN_PAUSE);
        }
    }
}

/// slated's verdict on the PIN typed on the sign-in screen's pad: right offers the button test;
/// wrong (or no answer) leaves the pad open, empty, for the controller's message.
pub fn staff_pin_checked(l: &mut Local, pin: String, right: bool) {
    if l.staff == StaffPad::Pin {
        l.staff = if right { StaffPad::Offer(pin) } else { StaffPad::Pin };
    }
}

/// slated refused to start the button test (the PIN no longer right, a lockout, a pupil signed
/// in meanwhile): back to the pad, empty, for the controller's message.
pub fn button_test_refused(l: &mut Local) {
    l.staff = StaffPad::Pin;
    l.pin.clear();
}

/// Takes in a new observation: clears what no longer applies. A session that ended (signed out,
/// or released with nobody signed in) leaves nothing of the last pupil's choices behind.
pub fn observe(before: &Observed, after: &Observed, l: &mut Local) {
    let was_busy = matches!(before.device, DeviceState::InSession | DeviceState::Held);
    if after.device == DeviceState::Idle && was_busy {
        // The picture PIN's pause outlives the session, so a report does not lift it.
        let pin = &l.picture_pin;
        let picture_pin = PicturePin {
            misses: pin.misses,
            wrong: pin.wrong,
            paused_until: pin.paused_until,
            ..PicturePin::default()
        };
        *l = Local { picture_pin, ..Local::default() };
    }
    if after.device != DeviceState::Held {
        l.pin_pad = false;
    }
    // The sign-in screen's pad is for an idle device only: a sign-in or a press closes it.
    if after.device != DeviceState::Idle {
        l.staff = StaffPad::Closed;
    }
    if !l.pin_pad && l.staff != StaffPad::Pin {
        l.pin.clear();
    }
    if after.device == DeviceState::InSession {
        l.aup_accepted = false;
    }
    if after.online {
        l.offline_seen = false;
    }
}

/// Starting the session failed: the agreement can be accepted again.
pub fn sign_in_failed(l: &mut Local) {
    l.aup_accepted = false;
}

/// The most often the kiosk tells slated the pupil touched the screen (slated's idle timeout is
/// in minutes; this keeps the control socket quiet).
pub const ACTIVITY_EVERY: Duration = Duration::from_secs(30);

/// Whether a touch at `now` should be passed on to slated as `activity`: only in a session
/// (nothing else has an idle timer) and at most once every [`ACTIVITY_EVERY`].
pub fn activity_due(device: DeviceState, last_sent: Option<Instant>, now: Instant) -> bool {
    device == DeviceState::InSession
        && last_sent.is_none_or(|last| now.saturating_duration_since(last) >= ACTIVITY_EVERY)
}

/// Whether the on-screen keyboard should be up: only while the pupil's app is in front and a
/// text field of it has the focus (a web page says so, a native app's compositor too; where that
/// is unknown, the keyboard stays up over the app). The kiosk's own screens are all taps, and the staff PIN has its own pad.
pub fn keyboard_wanted(screen: Screen, app_in_front: bool, focus: TextFocus) -> bool {
    app_in_front && matches!(screen, Screen::Home) && focus != TextFocus::Elsewhere
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceState::*;

    fn obs(policy_valid: bool, online: bool, device: DeviceState) -> Observed {
        Observed {
            policy_valid,
            online,
            device,
            screens_locked: false,
            config_error: false,
            button_test: false,
        }
    }

    fn none(_: usize, _: usize) -> Option<usize> {
        None
    }

    fn no_pins() -> Tap<'static> {
        Tap { now: Instant::now(), picture_pin: &none, check_pictures: &slated }
    }

    fn locked(o: Observed) -> Observed {
        Observed { screens_locked: true, ..o }
    }

    fn misconfigured(o: Observed) -> Observed {
        Observed { config_error: true, ..o }
    }

    fn local(
        class: Option<usize>,
        pupil: Option<usize>,
        pin_pad: bool,
        offline_seen: bool,
    ) -> Local {
        Local { class, pupil, pin_pad, offline_seen, ..Local::default() }
    }

    #[test]
    fn the_screen_table() {
        let none = local(None, None, false, false);
        let class = local(Some(1), None, false, false);
        let pupil = local(Some(1), Some(3), false, false);
        let pin = local(None, None, true, false);
        let seen = local(None, None, false, true);
        let failed = Local { app_failed: true, ..local(None, None, false, false) };
        let staff_pad = Local { staff: StaffPad::Pin, ..Local::default() };
        let staff_offer = Local { staff: StaffPad::Offer("2468".into()), ..Local::default() };
        let testing = |o: Observed| Observed { button_test: true, ..o };
        #[rustfmt::skip]
        let table: Vec<(Observed, &Local, Screen)> = vec![
            // The hold comes first, whatever else is true.
            (obs(true,  true,  Held), &none, Screen::Reported),
            (obs(false, false, Held), &none, Screen::Reported),
            (obs(true,  true,  Held), &pupil, Screen::Reported),
            (obs(true,  true,  Held), &pin, Screen::StaffUnlock),
            (obs(false, true,  Held), &pin, Screen::StaffUnlock),
            // Fail closed.
            (obs(true,  true,  Unreachable), &pupil, Screen::AskTeacher(AskReason::DeviceUnavailable)),
            (obs(false, true,  Unreachable), &none, Screen::AskTeacher(AskReason::DeviceUnavailable)),
            (obs(false, true,  Idle), &none, Screen::AskTeacher(AskReason::NoPolicy)),
            (obs(false, true,  Idle), &pupil, Screen::AskTeacher(AskReason::NoPolicy)),
            (obs(false, true,  InSession), &none, Screen::AskTeacher(AskReason::NoPolicy)),
            (obs(false, false, InSession), &seen, Screen::AskTeacher(AskReason::NoPolicy)),
            // A PIN pad left open does not survive the hold.
            (obs(true,  true,  Idle), &pin, Screen::ChooseClass),
            // The sign-in screen's staff pad, and a button test window over sign-in.
            (obs(true,  true,  Idle), &staff_pad, Screen::StaffPin),
            (obs(true,  true,  Idle), &staff_offer, Screen::StaffMenu),
            (testing(obs(true,  true,  Idle)), &none, Screen::ButtonTest),
            (testing(obs(true,  true,  Idle)), &pupil, Screen::ButtonTest),
            (testing(obs(true,  true,  Idle)), &staff_offer, Screen::ButtonTest),
            // Only on an idle device: a session or a hold comes first.
            (testing(obs(true,  true,  InSession)), &none, Screen::Home),
            (testing(obs(true,  true,  Held)), &none, Screen::Reported),
            (obs(true,  true,  Held), &staff_pad, Screen::Reported),
            (obs(true,  true,  InSession), &staff_offer, Screen::Home),
            (locked(obs(true, true, Idle)), &staff_pad, Screen::EyesOnTeacher),
            // Sessions.
            (obs(true,  true,  InSession), &none, Screen::Home),
            (obs(true,  false, InSession), &none, Screen::Offline),
            (obs(true,  false, InSession), &seen, Screen::Home),
            // An app that did not open asks for a teacher, over home and the offline notice,
            // under the hold and "eyes on me".
            (obs(true,  true,  InSession), &failed, Screen::AskTeacher(AskReason::AppDidNotOpen)),
            (obs(true,  false, InSession), &failed, Screen::AskTeacher(AskReason::AppDidNotOpen)),
            (obs(true,  true,  Held), &failed, Screen::Reported),
            (locked(obs(true,  true,  InSession)), &failed, Screen::EyesOnTeacher),
            // Signing in works offline (the roster is cached).
            (obs(true,  true,  Idle), &none, Screen::ChooseClass),
            (obs(true,  false, Idle), &none, Screen::ChooseClass),
            (obs(true,  true,  Idle), &class, Screen::ChoosePupil),
            (obs(true,  true,  Idle), &pupil, Screen::Agreement),
            (obs(true,  false, Idle), &pupil, Screen::Agreement),
            // "Eyes on me": over home, sign-in and a missing policy, never over the hold.
            (locked(obs(true,  true,  InSession)), &none, Screen::EyesOnTeacher),
            (locked(obs(true,  false, InSession)), &none, Screen::EyesOnTeacher),
            (locked(obs(true,  true,  Idle)), &pupil, Screen::EyesOnTeacher),
            (locked(obs(false, true,  Idle)), &none, Screen::EyesOnTeacher),
            (locked(obs(true,  true,  Held)), &none, Screen::Reported),
            (locked(obs(true,  true,  Held)), &pin, Screen::StaffUnlock),
            (locked(obs(true,  true,  Unreachable)), &none, Screen::AskTeacher(AskReason::DeviceUnavailable)),
            // A refused config is for IT: it explains why slated is not answering.
            (misconfigured(obs(true,  true,  Unreachable)), &none, Screen::ConfigError),
            (misconfigured(obs(false, true,  Idle)), &pupil, Screen::ConfigError),
            (misconfigured(locked(obs(true, true, InSession))), &none, Screen::ConfigError),
            (misconfigured(obs(true,  true,  Held)), &none, Screen::Reported),
            // No number yet: IT's setup page, whatever the policy, network or pupil state.
            (obs(false, false, Setup), &none, Screen::ItSetup),
            (obs(true,  true,  Setup), &pupil, Screen::ItSetup),
            (locked(obs(true, true, Setup)), &pin, Screen::ItSetup),
            (misconfigured(obs(true, true, Setup)), &none, Screen::ConfigError),
        ];
        for (o, l, expected) in table {
            assert_eq!(screen(&o, l), expected, "{o:?} {l:?}");
        }
    }

    /// Each step: the event, the effects expected, the screen after.
    fn check(o: Observed, start: Local, steps: &[(UiEvent, Vec<Effect>, Screen)]) -> Local {
        let mut l = start;
        for (event, effects, after) in steps {
            assert_eq!(&update(&o, &mut l, *event, &no_pins()), effects, "{event:?}");
            assert_eq!(screen(&o, &l), *after, "after {event:?}");
        }
        l
    }

    #[test]
    fn class_pupil_agreement_then_sign_in() {
        let idle = obs(true, true, Idle);
        let l = check(
            idle,
            Local::default(),
            &[
                (UiEvent::ChoosePupil(0), vec![], Screen::ChooseClass),
                (UiEvent::ChooseClass(1), vec![], Screen::ChoosePupil),
                (UiEvent::Back, vec![], Screen::ChooseClass),
                (UiEvent::ChooseClass(0), vec![], Screen::ChoosePupil),
                (UiEvent::ChoosePupil(2), vec![], Screen::Agreement),
                (UiEvent::Back, vec![], Screen::ChoosePupil),
                (UiEvent::ChoosePupil(3), vec![], Screen::Agreement),
                (UiEvent::OpenApp(0), vec![], Screen::Agreement),
                (UiEvent::ReadAloud, vec![Effect::ReadAloud { class: 0 }], Screen::Agreement),
                (UiEvent::Agree, vec![Effect::SignIn { class: 0, pupil: 3 }], Screen::Agreement),
                // A second tap while slated starts the session does not start a second one.
                (UiEvent::Agree, vec![], Screen::Agreement),
                (UiEvent::Back, vec![], Screen::Agreement),
            ],
        );
        let mut after = l.clone();
        observe(&idle, &obs(true, true, InSession), &mut after);
        assert_eq!(screen(&obs(true, true, InSession), &after), Screen::Home);

        let mut failed = l;
        sign_in_failed(&mut failed);
        assert_eq!(
            update(&idle, &mut failed, UiEvent::Agree, &no_pins()),
            vec![Effect::SignIn { class: 0, pupil: 3 }]
        );
    }

    #[test]
    fn home_opens_apps_and_signs_out() {
        let s = obs(true, true, InSession);
        check(
            s,
            Local::default(),
            &[
                (UiEvent::OpenApp(2), vec![Effect::OpenApp(2)], Screen::Home),
                (UiEvent::ChooseClass(0), vec![], Screen::Home),
                (UiEvent::Staff, vec![], Screen::Home),
                (UiEvent::SignOut, vec![Effect::SignOut], Screen::Home),
            ],
        );
    }

    /// The sign-in screen's "Staff" button: the PIN pad (slated checks the PIN), then "Test the
    /// report button" or Cancel. A tap that does not belong (a digit on the offer) does nothing.
    #[test]
    fn the_sign_in_screens_staff_pad_offers_the_button_test_after_a_right_pin() {
        let idle = obs(true, true, Idle);
        let mut l = check(
            idle,
            Local::default(),
            &[
                (UiEvent::PinDigit(1), vec![], Screen::ChooseClass),
                (UiEvent::TestButton, vec![], Screen::ChooseClass),
                (UiEvent::Staff, vec![], Screen::StaffPin),
                (UiEvent::PinDigit(2), vec![], Screen::StaffPin),
                (UiEvent::PinDigit(4), vec![], Screen::StaffPin),
                (UiEvent::PinDigit(6), vec![], Screen::StaffPin),
                (UiEvent::PinUnlock, vec![], Screen::StaffPin),
                (UiEvent::TestButton, vec![], Screen::StaffPin),
                (UiEvent::PinDigit(8), vec![], Screen::StaffPin),
                (
                    UiEvent::PinUnlock,
                    vec![Effect::CheckStaffPin { pin: "2468".into() }],
                    Screen::StaffPin,
                ),
            ],
        );
        assert!(l.pin.is_empty(), "the digits are not kept on the pad");
        // Wrong: the pad stays, empty.
        staff_pin_checked(&mut l, "2468".into(), false);
        assert_eq!(screen(&idle, &l), Screen::StaffPin);
        // Right: the offer.
        staff_pin_checked(&mut l, "2468".into(), true);
        assert_eq!(screen(&idle, &l), Screen::StaffMenu);
        assert!(!format!("{l:?}").contains("2468"), "the PIN is never in debug output");
        let mut cancelled = l.clone();
        assert_eq!(update(&idle, &mut cancelled, UiEvent::PinCancel, &no_pins()), vec![]);
        assert_eq!(screen(&idle, &cancelled), Screen::ChooseClass);
        assert_eq!(update(&idle, &mut l, UiEvent::PinDigit(1), &no_pins()), vec![]);
        assert_eq!(
            update(&idle, &mut l, UiEvent::TestButton, &no_pins()),
            vec![Effect::StartButtonTest { pin: "2468".into() }]
        );
        assert_eq!(l.staff, StaffPad::Closed, "the PIN goes with the request");
        let testing = Observed { button_test: true, ..idle };
        assert_eq!(screen(&testing, &l), Screen::ButtonTest);
        assert_eq!(update(&testing, &mut l, UiEvent::Staff, &no_pins()), vec![]);
        assert_eq!(screen(&testing, &l), Screen::ButtonTest, "no pad over the test");
    }

    #[test]
    fn a_sign_in_or_a_press_closes_the_sign_in_screens_staff_pad() {
        let idle = obs(true, true, Idle);
        for after in [obs(true, true, InSession), obs(true, true, Held)] {
            let mut l = Local { staff: StaffPad::Offer("2468".into()), ..Local::default() };
            observe(&idle, &after, &mut l);
            assert_eq!(l.staff, StaffPad::Closed, "{after:?}");
            observe(&after, &idle, &mut l);
            assert_eq!(screen(&idle, &l), Screen::ChooseClass, "{after:?}");
        }
        // An idle refresh keeps the digits typed so far.
        let mut l = Local { staff: StaffPad::Pin, pin: "24".into(), ..Local::default() };
        observe(&idle, &idle, &mut l);
        assert_eq!(l.pin, "24");
    }

    #[test]
    fn the_pin_pad_counts_digits_and_unlocks_only_when_complete() {
        let held = obs(true, true, Held);
        let l = check(
            held,
            Local::default(),
            &[
                (UiEvent::PinDigit(1), vec![], Screen::Reported),
                (UiEvent::SignOut, vec![], Screen::Reported),
                (UiEvent::Staff, vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(1), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(2), vec![], Screen::StaffUnlock),
                (UiEvent::PinUnlock, vec![], Screen::StaffUnlock),
                (UiEvent::PinClear, vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(10), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(4), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(3), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(2), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(1), vec![], Screen::StaffUnlock),
                (UiEvent::PinDigit(0), vec![], Screen::StaffUnlock),
                (
                    UiEvent::PinUnlock,
                    vec![Effect::Unlock { pin: "43210".into() }],
                    Screen::StaffUnlock,
                ),
                (UiEvent::PinCancel, vec![], Screen::Reported),
            ],
        );
        assert!(l.pin.is_empty(), "the PIN is not kept");
        // The pad stops at the longest PIN slated accepts.
        let mut l = Local { pin_pad: true, ..Local::default() };
        for _ in 0..PIN_MAX_LENGTH + 3 {
            update(&held, &mut l, UiEvent::PinDigit(7), &no_pins());
        }
        assert_eq!(l.pin.len(), PIN_MAX_LENGTH);
    }

    #[test]
    fn the_offline_notice_is_shown_once_per_spell_offline() {
        let mut l = Local::default();
        let online = obs(true, true, InSession);
        let offline = obs(true, false, InSession);
        observe(&online, &offline, &mut l);
        assert_eq!(screen(&offline, &l), Screen::Offline);
        update(&offline, &mut l, UiEvent::OfflineOk, &no_pins());
        assert_eq!(screen(&offline, &l), Screen::Home);
        observe(&offline, &offline, &mut l);
        assert_eq!(screen(&offline, &l), Screen::Home);
        observe(&offline, &online, &mut l);
        observe(&online, &offline, &mut l);
        assert_eq!(screen(&offline, &l), Screen::Offline);
    }

    #[test]
    fn nothing_of_a_session_survives_its_end() {
        let busy = Local { class: Some(1), pupil: Some(2), offline_seen: true, ..Local::default() };
        for before in [InSession, Held] {
            let mut l = busy.clone();
            observe(&obs(true, false, before), &obs(true, false, Idle), &mut l);
            assert_eq!(l, Local::default(), "{before:?}");
        }
        // A held device released back into its session keeps it, but not the PIN pad.
        let mut l = Local { pin_pad: true, pin: "12".into(), ..busy.clone() };
        observe(&obs(true, true, Held), &obs(true, true, InSession), &mut l);
        assert!(!l.pin_pad && l.pin.is_empty());
        // Held with the pupil's tiles chosen but no session: back to the start.
        let mut l = busy;
        observe(&obs(true, true, Idle), &obs(true, true, Held), &mut l);
        observe(&obs(true, true, Held), &obs(true, true, Idle), &mut l);
        assert_eq!(screen(&obs(true, true, Idle), &l), Screen::ChooseClass);
    }

    #[test]
    fn taps_do_nothing_under_eyes_on_me_and_the_choices_wait() {
        let l = check(
            locked(obs(true, true, Idle)),
            Local { class: Some(0), ..Local::default() },
            &[
                (UiEvent::ChoosePupil(1), vec![], Screen::EyesOnTeacher),
                (UiEvent::Back, vec![], Screen::EyesOnTeacher),
                (UiEvent::OpenApp(0), vec![], Screen::EyesOnTeacher),
                (UiEvent::SignOut, vec![], Screen::EyesOnTeacher),
            ],
        );
        // Unlocked: the pupil is where they were.
        assert_eq!(screen(&obs(true, true, Idle), &l), Screen::ChoosePupil);
    }

    #[test]
    fn a_session_ended_by_slated_goes_back_to_sign_in() {
        // Idle timeout, end of lesson or signed out by staff: slated's state goes back to idle.
        let mut l = Local { class: Some(1), pupil: Some(0), ..Local::default() };
        observe(&obs(true, true, InSession), &obs(true, true, Idle), &mut l);
        assert_eq!(screen(&obs(true, true, Idle), &l), Screen::ChooseClass);
        // Also when it ended under "eyes on me" (sign out all while the screens are locked).
        let mut l = Local { class: Some(1), pupil: Some(0), ..Local::default() };
        observe(&locked(obs(true, true, InSession)), &locked(obs(true, true, Idle)), &mut l);
        assert_eq!(screen(&obs(true, true, Idle), &l), Screen::ChooseClass);
    }

    #[test]
    fn activity_at_most_every_thirty_seconds_and_only_in_a_session() {
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        #[rustfmt::skip]
        let table = [
            (InSession, None, s(0), true),
            (InSession, Some(s(0)), s(0), false),
            (InSession, Some(s(0)), s(29), false),
            (InSession, Some(s(0)), s(30), true),
            (InSession, Some(s(0)), s(300), true),
            // A clock that went backwards does not send a burst.
            (InSession, Some(s(40)), s(10), false),
            (Idle, None, s(0), false),
            (Held, None, s(0), false),
            (Unreachable, None, s(0), false),
        ];
        for (device, last, now, expected) in table {
            assert_eq!(activity_due(device, last, now), expected, "{device:?} {last:?} {now:?}");
        }
    }

    #[test]
    fn the_keyboard_is_up_only_over_an_app() {
        let all = [
            Screen::ChooseClass,
            Screen::ChoosePupil,
            Screen::PicturePin,
            Screen::Agreement,
            Screen::Home,
            Screen::Reported,
            Screen::StaffUnlock,
            Screen::AskTeacher(AskReason::NoPolicy),
            Screen::Offline,
            Screen::EyesOnTeacher,
            Screen::ConfigError,
            Screen::ItSetup,
        ];
        for screen in all {
            for focus in [TextFocus::Field, TextFocus::Elsewhere, TextFocus::Unknown] {
                assert!(!keyboard_wanted(screen, false, focus), "{screen:?} {focus:?}");
                // Over an app: only while a field has the focus, or where the app cannot say.
                let up = screen == Screen::Home && focus != TextFocus::Elsewhere;
                assert_eq!(keyboard_wanted(screen, true, focus), up, "{screen:?} {focus:?}");
            }
        }
        // What must come in front of an app's window, and what may stay behind it.
        assert!(Screen::EyesOnTeacher.covers_apps() && Screen::Reported.covers_apps());
        assert!(!Screen::Home.covers_apps() && !Screen::Offline.covers_apps());
    }

    const STAR: usize = 0;
    const FISH: usize = 1;
    const MOON: usize = 3;
    const SUN: usize = 4;

    /// Class 1's pupil 0 has the picture PIN moon, star, fish; nobody else has one.
    fn pin_pictures(class: usize, pupil: usize) -> Option<Vec<String>> {
        (class == 1 && pupil == 0).then(|| vec!["moon".into(), "star".into(), "fish".into()])
    }

    /// What the kiosk policy tells the UI: the length only.
    fn pins(class: usize, pupil: usize) -> Option<usize> {
        pin_pictures(class, pupil).map(|p| p.len())
    }

    /// Stands in for slated, which decides whether the pictures are right.
    fn slated(class: usize, pupil: usize, tapped: &[String]) -> Option<bool> {
        Some(pin_pictures(class, pupil).as_deref() == Some(tapped))
    }

    #[test]
    fn the_picture_names_are_the_pupil_symbols() {
        // What the page draws and what the server accepts must be the same eight names.
        assert_eq!(PICTURES.len(), 8);
        let mut sorted = PICTURES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        assert_eq!(
            [PICTURES[STAR], PICTURES[FISH], PICTURES[MOON], PICTURES[SUN]],
            ["star", "fish", "moon", "sun"]
        );
    }

    #[test]
    fn a_picture_pin_comes_before_the_agreement() {
        use UiEvent::*;
        let idle = obs(true, true, Idle);
        let tap = Tap { now: Instant::now(), picture_pin: &pins, check_pictures: &slated };
        let mut l = Local::default();
        // The event, the screen after, the dots after, the wrong sequences so far.
        #[rustfmt::skip]
        let steps = [
            (ChooseClass(1), Screen::ChoosePupil, 0, 0),
            (ChoosePupil(1), Screen::Agreement, 0, 0),   // no picture PIN: as before
            (Back, Screen::ChoosePupil, 0, 0),
            (ChoosePupil(0), Screen::PicturePin, 0, 0),
            (Agree, Screen::PicturePin, 0, 0),           // the agreement cannot be reached around it
            (PinPicture(MOON), Screen::PicturePin, 1, 0),
            (PinPicture(99), Screen::PicturePin, 1, 0),  // no such picture
            (PinPicture(STAR), Screen::PicturePin, 2, 0),
            (PinPicture(SUN), Screen::PicturePin, 0, 1), // wrong: the dots clear, try again
            (PinPicture(MOON), Screen::PicturePin, 1, 1),
            (Back, Screen::ChoosePupil, 0, 1),           // back to the class; nothing kept
            (ChoosePupil(0), Screen::PicturePin, 0, 1),
            (PinPicture(MOON), Screen::PicturePin, 1, 1),
            (PinPicture(STAR), Screen::PicturePin, 2, 1),
            (PinPicture(FISH), Screen::Agreement, 0, 1),
            (PinPicture(FISH), Screen::Agreement, 0, 1),
            (Back, Screen::ChoosePupil, 0, 1),           // and chosen again: the PIN again
            (ChoosePupil(0), Screen::PicturePin, 0, 1),
        ];
        for (event, after, dots, wrong) in steps {
            assert_eq!(update(&idle, &mut l, event, &tap), vec![], "{event:?}");
            assert_eq!(screen(&idle, &l), after, "after {event:?}");
            assert_eq!(
                (l.picture_pin.entered.len(), l.picture_pin.wrong),
                (dots, wrong),
                "after {event:?}"
            );
            assert_eq!(l.picture_pin.try_again, event == PinPicture(SUN), "after {event:?}");
        }
        for picture in [MOON, STAR, FISH] {
            update(&idle, &mut l, PinPicture(picture), &tap);
        }
        assert_eq!(l.picture_pin.misses, 0, "a right PIN ends the run of wrong ones");
        assert_eq!(update(&idle, &mut l, Agree, &tap), vec![Effect::SignIn { class: 1, pupil: 0 }]);
    }

    #[test]
    fn five_wrong_pins_in_a_row_ask_for_a_teacher_for_a_minute() {
        use UiEvent::*;
        let idle = obs(true, true, Idle);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut l = Local::default();
        for event in [ChooseClass(1), ChoosePupil(0)] {
            update(
                &idle,
                &mut l,
                event,
                &Tap { now: t0, picture_pin: &pins, check_pictures: &slated },
            );
        }
        let wrong = [SUN, SUN, SUN];
        // When, what, dots after, paused at that time after the taps.
        #[rustfmt::skip]
        let table: Vec<(u64, &[usize], usize, bool)> = vec![
            (0, &wrong, 0, false),
            (1, &wrong, 0, false),
            (2, &wrong, 0, false),
            (3, &wrong, 0, false),
            (4, &[MOON], 1, false),
            (5, &[STAR, SUN], 0, true),      // the fifth wrong one in a row
            (6, &[MOON], 0, true),           // taps are ignored while paused
            (64, &[MOON], 0, true),
            (65, &[MOON, STAR], 2, false),   // a minute later: five more tries
            (66, &[SUN], 0, false),
        ];
        for (secs, taps, dots, paused) in table {
            let tap = Tap { now: at(secs), picture_pin: &pins, check_pictures: &slated };
            for &picture in taps {
                update(&idle, &mut l, PinPicture(picture), &tap);
            }
            assert_eq!(l.picture_pin.entered.len(), dots, "at {secs}s");
            assert_eq!(l.picture_pin.paused(at(secs)), paused, "at {secs}s");
            assert_eq!(screen(&idle, &l), Screen::PicturePin, "at {secs}s");
        }
        assert_eq!(l.picture_pin.misses, 1, "the run starts again after the pause");

        // Going back, choosing again or a session ending does not lift a pause.
        let mut l = Local::default();
        let tap = Tap { now: t0, picture_pin: &pins, check_pictures: &slated };
        for event in [ChooseClass(1), ChoosePupil(0)] {
            update(&idle, &mut l, event, &tap);
        }
        for _ in 0..PICTURE_PIN_TRIES {
            for picture in wrong {
                update(&idle, &mut l, PinPicture(picture), &tap);
            }
        }
        assert!(l.picture_pin.paused(at(59)));
        update(&idle, &mut l, Back, &tap);
        update(&idle, &mut l, ChoosePupil(0), &tap);
        observe(&obs(true, true, Held), &idle, &mut l);
        assert!(l.picture_pin.paused(at(59)) && !l.picture_pin.paused(at(60)));
        assert_eq!(l.picture_pin.entered, Vec::<usize>::new());
    }

    #[test]
    fn unknown_device_states_fail_closed() {
        assert_eq!(DeviceState::from_status(Some("idle")), Idle);
        assert_eq!(DeviceState::from_status(Some("in_session")), InSession);
        assert_eq!(DeviceState::from_status(Some("held")), Held);
        assert_eq!(DeviceState::from_status(Some("setup")), Setup);
        assert_eq!(DeviceState::from_status(Some("rebooting")), Unreachable);
        assert_eq!(DeviceState::from_status(None), Unreachable);
    }
}
