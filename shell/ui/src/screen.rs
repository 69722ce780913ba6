//! Which screen the kiosk shows, and what a tap on it means: a pure state machine. Owns the
//! navigation rules (fail closed, the report hold first, the agreement before every session);
//! must not do I/O, talk to slated or touch Slint. The controller feeds it what it observed and
//! what was tapped, and carries out the [`Effect`]s it returns.
//!
//! ```text
//!   priority  condition                                  screen
//!   1         slated says held, PIN pad open             StaffUnlock
//!   2         slated says held                           Reported      (even with no policy)
//!   3         slated unreachable                         AskTeacher(DeviceUnavailable)
//!   4         no valid policy                            AskTeacher(NoPolicy)   fail closed
//!   5         in session, offline, notice not yet seen   Offline
//!   6         in session                                 Home
//!   7         idle: no class / class / class + pupil     ChooseClass / ChoosePupil / Agreement
//! ```

/// The device's state as slated reports it (`status`), or that it could not be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// slated did not answer: nothing can be started, so nothing is offered.
    Unreachable,
    Idle,
    InSession,
    /// The report button was pressed; only a member of staff can release the device.
    Held,
}

impl DeviceState {
    /// Maps slated's `state` field. Anything unknown is treated as unreachable (fail closed).
    pub fn from_status(state: Option<&str>) -> Self {
        match state {
            Some("idle") => Self::Idle,
            Some("in_session") => Self::InSession,
            Some("held") => Self::Held,
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
}

/// The number of digits in a staff PIN.
pub const PIN_LENGTH: usize = 4;

/// What the UI itself remembers between taps. Indexes point into the policy's classes and the
/// chosen class's pupils.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub class: Option<usize>,
    pub pupil: Option<usize>,
    /// "I agree" was tapped and the session is being started.
    pub aup_accepted: bool,
    pub pin_pad: bool,
    /// The digits typed so far (never shown, only counted).
    pub pin: String,
    /// The offline notice was dismissed for this spell offline.
    pub offline_seen: bool,
}

/// Why the device asks for a teacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskReason {
    NoPolicy,
    DeviceUnavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    ChooseClass,
    ChoosePupil,
    Agreement,
    Home,
    Reported,
    StaffUnlock,
    AskTeacher(AskReason),
    Offline,
}

/// The screen to show. Total: every combination has exactly one answer.
pub fn screen(o: &Observed, l: &Local) -> Screen {
    match o.device {
        DeviceState::Held if l.pin_pad => Screen::StaffUnlock,
        DeviceState::Held => Screen::Reported,
        DeviceState::Unreachable => Screen::AskTeacher(AskReason::DeviceUnavailable),
        _ if !o.policy_valid => Screen::AskTeacher(AskReason::NoPolicy),
        DeviceState::InSession if !o.online && !l.offline_seen => Screen::Offline,
        DeviceState::InSession => Screen::Home,
        DeviceState::Idle => match (l.class, l.pupil) {
            (None, _) => Screen::ChooseClass,
            (Some(_), None) => Screen::ChoosePupil,
            (Some(_), Some(_)) => Screen::Agreement,
        },
    }
}

/// A tap (or a screen reader's press) on a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiEvent {
    ChooseClass(usize),
    ChoosePupil(usize),
    Back,
    Agree,
    OpenApp(usize),
    SignOut,
    Staff,
    PinDigit(u8),
    PinClear,
    PinCancel,
    PinUnlock,
    OfflineOk,
}

/// What the controller must do for a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start a session for this pupil (the agreement was accepted).
    SignIn { class: usize, pupil: usize },
    SignOut,
    Unlock { pin: String },
    OpenApp(usize),
}

/// Applies a tap. A tap that does not belong to the screen on show (a stale event, or one
/// crafted through accessibility) changes nothing and does nothing.
pub fn update(o: &Observed, l: &mut Local, event: UiEvent) -> Vec<Effect> {
    let now = screen(o, l);
    match (now, event) {
        (Screen::ChooseClass, UiEvent::ChooseClass(i)) => {
            l.class = Some(i);
            l.pupil = None;
        }
        (Screen::ChoosePupil, UiEvent::ChoosePupil(i)) => {
            l.pupil = Some(i);
            l.aup_accepted = false;
        }
        (Screen::ChoosePupil, UiEvent::Back) => l.class = None,
        (Screen::Agreement, UiEvent::Back) if !l.aup_accepted => l.pupil = None,
        (Screen::Agreement, UiEvent::Agree) if !l.aup_accepted => {
            l.aup_accepted = true;
            if let (Some(class), Some(pupil)) = (l.class, l.pupil) {
                return vec![Effect::SignIn { class, pupil }];
            }
        }
        (Screen::Home, UiEvent::OpenApp(i)) => return vec![Effect::OpenApp(i)],
        (Screen::Home, UiEvent::SignOut) => return vec![Effect::SignOut],
        (Screen::Offline, UiEvent::OfflineOk) => l.offline_seen = true,
        (Screen::Reported, UiEvent::Staff) => {
            l.pin_pad = true;
            l.pin.clear();
        }
        (Screen::StaffUnlock, UiEvent::PinDigit(d)) if d <= 9 && l.pin.len() < PIN_LENGTH => {
            l.pin.push(char::from(b'0' + d));
        }
        (Screen::StaffUnlock, UiEvent::PinClear) => l.pin.clear(),
        (Screen::StaffUnlock, UiEvent::PinCancel) => {
            l.pin_pad = false;
            l.pin.clear();
        }
        (Screen::StaffUnlock, UiEvent::PinUnlock) if l.pin.len() == PIN_LENGTH => {
            return vec![Effect::Unlock { pin: std::mem::take(&mut l.pin) }];
        }
        _ => {}
    }
    Vec::new()
}

/// Takes in a new observation: clears what no longer applies. A session that ended (signed out,
/// or released with nobody signed in) leaves nothing of the last pupil's choices behind.
pub fn observe(before: &Observed, after: &Observed, l: &mut Local) {
    let was_busy = matches!(before.device, DeviceState::InSession | DeviceState::Held);
    if after.device == DeviceState::Idle && was_busy {
        *l = Local::default();
    }
    if after.device != DeviceState::Held {
        l.pin_pad = false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceState::*;

    fn obs(policy_valid: bool, online: bool, device: DeviceState) -> Observed {
        Observed { policy_valid, online, device }
    }

    fn local(class: Option<usize>, pupil: Option<usize>, pin_pad: bool, offline_seen: bool) -> Local {
        Local { class, pupil, pin_pad, offline_seen, ..Local::default() }
    }

    #[test]
    fn the_screen_table() {
        let none = local(None, None, false, false);
        let class = local(Some(1), None, false, false);
        let pupil = local(Some(1), Some(3), false, false);
        let pin = local(None, None, true, false);
        let seen = local(None, None, false, true);
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
            // Sessions.
            (obs(true,  true,  InSession), &none, Screen::Home),
            (obs(true,  false, InSession), &none, Screen::Offline),
            (obs(true,  false, InSession), &seen, Screen::Home),
            // Signing in works offline (the roster is cached).
            (obs(true,  true,  Idle), &none, Screen::ChooseClass),
            (obs(true,  false, Idle), &none, Screen::ChooseClass),
            (obs(true,  true,  Idle), &class, Screen::ChoosePupil),
            (obs(true,  true,  Idle), &pupil, Screen::Agreement),
            (obs(true,  false, Idle), &pupil, Screen::Agreement),
        ];
        for (o, l, expected) in table {
            assert_eq!(screen(&o, l), expected, "{o:?} {l:?}");
        }
    }

    /// Each step: the event, the effects expected, the screen after.
    fn check(o: Observed, start: Local, steps: &[(UiEvent, Vec<Effect>, Screen)]) -> Local {
        let mut l = start;
        for (event, effects, after) in steps {
            assert_eq!(&update(&o, &mut l, *event), effects, "{event:?}");
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
        assert_eq!(update(&idle, &mut failed, UiEvent::Agree), vec![Effect::SignIn { class: 0, pupil: 3 }]);
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
                (UiEvent::PinUnlock, vec![Effect::Unlock { pin: "4321".into() }], Screen::StaffUnlock),
                (UiEvent::PinCancel, vec![], Screen::Reported),
            ],
        );
        assert!(l.pin.is_empty(), "the PIN is not kept");
    }

    #[test]
    fn the_offline_notice_is_shown_once_per_spell_offline() {
        let mut l = Local::default();
        let online = obs(true, true, InSession);
        let offline = obs(true, false, InSession);
        observe(&online, &offline, &mut l);
        assert_eq!(screen(&offline, &l), Screen::Offline);
        update(&offline, &mut l, UiEvent::OfflineOk);
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
    fn unknown_device_states_fail_closed() {
        assert_eq!(DeviceState::from_status(Some("idle")), Idle);
        assert_eq!(DeviceState::from_status(Some("in_session")), InSession);
        assert_eq!(DeviceState::from_status(Some("held")), Held);
        assert_eq!(DeviceState::from_status(Some("rebooting")), Unreachable);
        assert_eq!(DeviceState::from_status(None), Unreachable);
    }
}
