//! The device's state machine: sessions, the report button and the staff hold. Pure: it owns the
//! rules and must not do I/O, read a clock, spawn tasks or make random ids (time and ids come in).
//!
//! ```text
//!            SignIn                         ButtonPressed
//!   Idle ─────────────▶ InSession ───────────────────────▶ Held ──StaffUnlocked──▶ InSession
//!    ▲  ◀─────────────                                      │                     (or Idle if
//!    │      SignOut                                         │                      nobody was
//!    └──────────────────── ButtonPressed (no pupil) ────────┘                      signed in)
//! ```
//!
//! A press is handled darkness first: [`Command::BlankScreen`] is the first command out, before
//! anything is written. When the display adapter confirms darkness ([`Input::ScreenDark`]) or gives
//! up ([`Input::BlankFailed`]) the report is spooled, with the measured blank latency or `None`.
//! Nothing the core is told can lose a report: an unlock or a shutdown before darkness is
//! confirmed files it anyway.

use chrono::{DateTime, Utc};
use slate_protocol::{
    DeviceNumber, Event, EventBody, EventId, PupilId, SessionEndReason, SessionId,
};

/// Where ids come from. The daemon makes UUIDv7s from the clock; tests make predictable ones.
pub trait Ids {
    fn event_id(&mut self) -> EventId;
    fn session_id(&mut self) -> SessionId;
}

/// Predictable ids for tests and replays: UUIDv7s whose timestamp is a counter (1, 2, 3, …).
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: u64,
}

impl SequentialIds {
    fn next_uuid(&mut self) -> uuid::Uuid {
        self.next += 1;
        uuid::Builder::from_unix_timestamp_millis(self.next, &[0; 10]).into_uuid()
    }
}

impl Ids for SequentialIds {
    fn event_id(&mut self) -> EventId {
        EventId::try_from(self.next_uuid()).expect("the builder makes UUIDv7s")
    }

    fn session_id(&mut self) -> SessionId {
        SessionId(self.next_uuid())
    }
}

/// What was on screen when the button was pressed: what a report records (never the picture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreground {
    /// The app's id as named in the policy, e.g. `browser`.
    pub app: String,
    pub url: Option<String>,
    pub title: Option<String>,
}

/// One pupil's open session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub pupil: PupilId,
    pub started_at: DateTime<Utc>,
}

/// A press whose report waits for the display to confirm darkness (or fail to).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReport {
    pub pressed_at: DateTime<Utc>,
    pub foreground: Option<Foreground>,
}

/// The device's state.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Nobody signed in: the sign-in screen.
    Idle,
    InSession(Session),
    /// Reported and held: screen dark, waiting for a member of staff.
    Held {
        report: EventId,
        /// The session that was open at the press; it resumes on unlock.
        session: Option<Session>,
        /// `Some` until the report is spooled.
        pending: Option<PendingReport>,
    },
}

/// The state's name, as `slatectl status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Idle,
    InSession,
    Held,
}

impl StateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Idle => "idle",
            StateKind::InSession => "in_session",
            StateKind::Held => "held",
        }
    }
}

/// Something that happened, told to the core. Times are inside the inputs that carry their own
/// (the kernel's timestamp of a press); every other input happens at the `now` given to
/// [`Core::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    SignIn {
        pupil: PupilId,
    },
    SignOut,
    /// The report button, with the kernel's time of the key-down and what was on screen.
    ButtonPressed {
        pressed_at: DateTime<Utc>,
        foreground: Option<Foreground>,
    },
    /// The display adapter confirmed the screen dark for this report.
    ScreenDark {
        report: EventId,
        confirmed_at: DateTime<Utc>,
    },
    /// The display adapter could not confirm darkness (error or timeout).
    BlankFailed {
        report: EventId,
    },
    /// A member of staff unlocked the held device.
    StaffUnlocked,
    /// The daemon is stopping: close what is open so that it is on record.
    ShuttingDown,
}

/// What the imperative shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Darken the screen now, then answer [`Input::ScreenDark`] or [`Input::BlankFailed`].
    BlankScreen {
        report: EventId,
    },
    /// Stop and mute the foreground app.
    StopForegroundApp,
    /// Show the "you did the right thing, a grown-up is coming" screen.
    ShowReassurance,
    /// Append to the durable spool (and so, in time, to the server).
    Spool(Event),
    RestoreScreen,
    ResumeForegroundApp,
}

/// An input the core refuses in its current state. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the device is held until a member of staff unlocks it")]
    Held,
    #[error("nobody is signed in")]
    NotSignedIn,
    #[error("the device is not held")]
    NotHeld,
}

/// The state machine of one device.
#[derive(Debug, Clone)]
pub struct Core {
    device: DeviceNumber,
    state: State,
}

impl Core {
    /// A device that has just started: nobody signed in (a session open before a restart is not
    /// restored).
    pub fn new(device: DeviceNumber) -> Self {
        Self { device, state: State::Idle }
    }

    pub fn device(&self) -> DeviceNumber {
        self.device
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn state_kind(&self) -> StateKind {
        match self.state {
            State::Idle => StateKind::Idle,
            State::InSession(_) => StateKind::InSession,
            State::Held { .. } => StateKind::Held,
        }
    }

    /// The report the device is held for, if it is held.
    pub fn held_report(&self) -> Option<EventId> {
        match self.state {
            State::Held { report, .. } => Some(report),
            _ => None,
        }
    }

    /// The open session, if any (also while held).
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Idle => None,
            State::InSession(s) => Some(s),
            State::Held { session, .. } => session.as_ref(),
        }
    }

    /// Applies one input at time `now`. Returns the commands to carry out in order, or why the
    /// input was refused (then nothing changed).
    pub fn step(
        &mut self,
        now: DateTime<Utc>,
        input: Input,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        match input {
            Input::SignIn { pupil } => self.sign_in(now, pupil, ids),
            Input::SignOut => self.sign_out(now, ids),
            Input::ButtonPressed { pressed_at, foreground } => {
                Ok(self.press(pressed_at, foreground, ids))
            }
            Input::ScreenDark { report, confirmed_at } => {
                let latency = latency_us(self.pending_pressed_at(report), confirmed_at);
                Ok(self.file_pending(report, latency, true))
            }
            Input::BlankFailed { report } => Ok(self.file_pending(report, None, true)),
            Input::StaffUnlocked => self.unlock(),
            Input::ShuttingDown => Ok(self.shut_down(now, ids)),
        }
    }

    fn sign_in(
        &mut self,
        now: DateTime<Utc>,
        pupil: PupilId,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        let mut commands = Vec::new();
        match &self.state {
            State::Held { .. } => return Err(Refused::Held),
            // A new sign-in on a device still signed in ends the old session first.
            State::InSession(old) => {
                commands.push(self.session_ended(now, old, SessionEndReason::SignedOut, ids));
            }
            State::Idle => {}
        }
        let session = Session { id: ids.session_id(), pupil, started_at: now };
        commands.push(Command::Spool(Event {
            id: ids.event_id(),
            device: self.device,
            at: now,
            body: EventBody::SessionStarted { session: session.id, pupil: session.pupil.clone() },
        }));
        self.state = State::InSession(session);
        Ok(commands)
    }

    fn sign_out(
        &mut self,
        now: DateTime<Utc>,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        match &self.state {
            State::Held { .. } => Err(Refused::Held),
            State::Idle => Err(Refused::NotSignedIn),
            State::InSession(session) => {
                let ended = self.session_ended(now, session, SessionEndReason::SignedOut, ids);
                self.state = State::Idle;
                Ok(vec![ended])
            }
        }
    }

    fn press(
        &mut self,
        pressed_at: DateTime<Utc>,
        foreground: Option<Foreground>,
        ids: &mut impl Ids,
    ) -> Vec<Command> {
        let session = match &self.state {
            // Already dark and waiting for staff: a second press adds nothing.
            State::Held { .. } => return Vec::new(),
            State::Idle => None,
            State::InSession(s) => Some(s.clone()),
        };
        let report = ids.event_id();
        self.state = State::Held {
            report,
            session,
            pending: Some(PendingReport { pressed_at, foreground }),
        };
        vec![Command::BlankScreen { report }, Command::StopForegroundApp]
    }

    fn pending_pressed_at(&self, for_report: EventId) -> Option<DateTime<Utc>> {
        match &self.state {
            State::Held { report, pending: Some(p), .. } if *report == for_report => {
                Some(p.pressed_at)
            }
            _ => None,
        }
    }

    /// Spools the held report if it is still pending and is `for_report`. Answers for a report
    /// that is not pending (late, or already filed) are ignored.
    fn file_pending(
        &mut self,
        for_report: EventId,
        blank_latency_us: Option<u64>,
        reassure: bool,
    ) -> Vec<Command> {
        let State::Held { report, session, pending } = &mut self.state else {
            return Vec::new();
        };
        if *report != for_report {
            return Vec::new();
        }
        let Some(p) = pending.take() else {
            return Vec::new();
        };
        let (app, url, page_title) = match p.foreground {
            Some(f) => (Some(f.app), f.url, f.title),
            None => (None, None, None),
        };
        let event = Event {
            id: *report,
            device: self.device,
            at: p.pressed_at,
            body: EventBody::ReportFiled {
                session: session.as_ref().map(|s| s.id),
                pupil: session.as_ref().map(|s| s.pupil.clone()),
                app,
                url,
                page_title,
                blank_latency_us,
            },
        };
        let mut commands = vec![Command::Spool(event)];
        if reassure {
            commands.push(Command::ShowReassurance);
        }
        commands
    }

    fn unlock(&mut self) -> Result<Vec<Command>, Refused> {
        let Some(report) = self.held_report() else {
            return Err(Refused::NotHeld);
        };
        // Unlocked before the display answered: the report still goes, without a latency.
        let mut commands = self.file_pending(report, None, false);
        let State::Held { session, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            unreachable!("held_report() was Some");
        };
        self.state = session.map_or(State::Idle, State::InSession);
        commands.extend([Command::RestoreScreen, Command::ResumeForegroundApp]);
        Ok(commands)
    }

    fn shut_down(&mut self, now: DateTime<Utc>, ids: &mut impl Ids) -> Vec<Command> {
        let mut commands = match self.held_report() {
            Some(report) => self.file_pending(report, None, false),
            None => Vec::new(),
        };
        if let Some(session) = self.session() {
            commands.push(self.session_ended(now, session, SessionEndReason::DeviceRestarted, ids));
        }
        self.state = State::Idle;
        commands
    }

    fn session_ended(
        &self,
        now: DateTime<Utc>,
        session: &Session,
        reason: SessionEndReason,
        ids: &mut impl Ids,
    ) -> Command {
        Command::Spool(Event {
            id: ids.event_id(),
            device: self.device,
            // A clock stepped backwards must not make a session end before it started (the
            // server would refuse the event).
            at: now.max(session.started_at),
            body: EventBody::SessionEnded {
                session: session.id,
                pupil: session.pupil.clone(),
                started_at: session.started_at,
                reason,
            },
        })
    }
}

/// Microseconds from press to confirmed darkness; a clock that stepped backwards gives 0.
fn latency_us(pressed_at: Option<DateTime<Utc>>, confirmed_at: DateTime<Utc>) -> Option<u64> {
    let us = (confirmed_at - pressed_at?).num_microseconds()?;
    Some(u64::try_from(us).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-11-17T{s}Z").parse().unwrap()
    }

    fn pupil(p: &str) -> PupilId {
        PupilId::new(p).unwrap()
    }

    fn device() -> DeviceNumber {
        DeviceNumber::new(12).unwrap()
    }

    fn browser() -> Foreground {
        Foreground {
            app: "browser".into(),
            url: Some("https://example.org/x".into()),
            title: Some("A page".into()),
        }
    }

    /// A compact picture of a command, so that tables compare what matters.
    fn show(c: &Command) -> String {
        match c {
            Command::BlankScreen { .. } => "blank".into(),
            Command::StopForegroundApp => "stop_app".into(),
            Command::ShowReassurance => "reassure".into(),
            Command::RestoreScreen => "restore".into(),
            Command::ResumeForegroundApp => "resume_app".into(),
            Command::Spool(e) => match &e.body {
                EventBody::SessionStarted { pupil, .. } => {
                    format!("spool session_started {pupil} at {}", e.at.time())
                }
                EventBody::SessionEnded { pupil, started_at, reason, .. } => format!(
                    "spool session_ended {pupil} {}..{} {reason:?}",
                    started_at.time(),
                    e.at.time()
                ),
                EventBody::ReportFiled { pupil, app, blank_latency_us, .. } => format!(
                    "spool report_filed pupil={} app={} at {} latency={blank_latency_us:?}",
                    pupil.as_ref().map_or("-", |p| p.as_str()),
                    app.as_deref().unwrap_or("-"),
                    e.at.time()
                ),
                other => format!("spool {}", other.kind()),
            },
        }
    }

    /// One step of a table: at, input, expected commands (or refusal), state after.
    type Step<'a> = (&'a str, Input, Result<&'a [&'a str], Refused>, StateKind);

    /// Runs inputs at times and checks, step by step, the commands (or refusal) and the state.
    /// `ScreenDark`/`BlankFailed` inputs are written with placeholder report ids; the helper
    /// swaps in the id of the report the device is held for.
    fn check(steps: &[Step]) -> Core {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        for (i, (at, input, expected, state)) in steps.iter().enumerate() {
            let input = match input.clone() {
                Input::ScreenDark { confirmed_at, .. } => Input::ScreenDark {
                    report: core.held_report().unwrap_or_else(|| ids.event_id()),
                    confirmed_at,
                },
                Input::BlankFailed { .. } => Input::BlankFailed {
                    report: core.held_report().unwrap_or_else(|| ids.event_id()),
                },
                other => other,
            };
            let got = core
                .step(t(at), input.clone(), &mut ids)
                .map(|cs| cs.iter().map(show).collect::<Vec<_>>());
            let want = expected.map(|cs| cs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "step {i} ({input:?})");
            assert_eq!(core.state_kind(), *state, "state after step {i}");
        }
        core
    }

    fn placeholder() -> EventId {
        SequentialIds::default().event_id()
    }

    fn press(at: &str, foreground: Option<Foreground>) -> Input {
        Input::ButtonPressed { pressed_at: t(at), foreground }
    }

    fn dark(at: &str) -> Input {
        Input::ScreenDark { report: placeholder(), confirmed_at: t(at) }
    }

    use StateKind::*;

    #[test]
    fn press_blanks_first_then_spools_the_report_with_its_latency() {
        check(&[
            ("10:00:00", Input::SignIn { pupil: pupil("p-7f3a9c") }, Ok(&["spool session_started p-7f3a9c at 10:00:00"]), InSession),
            ("10:14:03.2", press("10:14:03.120", Some(browser())), Ok(&["blank", "stop_app"]), Held),
            (
                "10:14:03.3",
                dark("10:14:03.161250"),
                Ok(&["spool report_filed pupil=p-7f3a9c app=browser at 10:14:03.120 latency=Some(41250)", "reassure"]),
                Held,
            ),
        ]);
    }

    #[test]
    fn the_report_records_session_pupil_and_foreground() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        core.step(t("10:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        let session = core.session().unwrap().id;
        core.step(t("10:01:00"), press("10:01:00", Some(browser())), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let cs = core
            .step(
                t("10:01:01"),
                Input::ScreenDark { report, confirmed_at: t("10:01:00.05") },
                &mut ids,
            )
            .unwrap();
        let Command::Spool(event) = &cs[0] else { panic!("{cs:?}") };
        assert_eq!(event.id, report);
        assert_eq!(event.device, device());
        assert_eq!(event.at, t("10:01:00"));
        assert_eq!(
            event.body,
            EventBody::ReportFiled {
                session: Some(session),
                pupil: Some(pupil("p-1")),
                app: Some("browser".into()),
                url: Some("https://example.org/x".into()),
                page_title: Some("A page".into()),
                blank_latency_us: Some(50_000),
            }
        );
        event.validate().unwrap();
    }

    #[test]
    fn a_press_while_held_is_ignored() {
        check(&[
            ("10:00:00", press("10:00:00", None), Ok(&["blank", "stop_app"]), Held),
            ("10:00:01", press("10:00:01", None), Ok(&[]), Held),
            (
                "10:00:02",
                dark("10:00:00.01"),
                Ok(&[
                    "spool report_filed pupil=- app=- at 10:00:00 latency=Some(10000)",
                    "reassure",
                ]),
                Held,
            ),
            ("10:00:03", press("10:00:03", Some(browser())), Ok(&[]), Held),
        ]);
    }

    #[test]
    fn a_late_or_repeated_darkness_answer_files_nothing_more() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        core.step(t("10:00:00"), press("10:00:00", None), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let dark = Input::ScreenDark { report, confirmed_at: t("10:00:00.02") };
        assert_eq!(core.step(t("10:00:01"), dark.clone(), &mut ids).unwrap().len(), 2);
        assert_eq!(core.step(t("10:00:01"), dark, &mut ids), Ok(vec![]));
        let other = Input::ScreenDark { report: ids.event_id(), confirmed_at: t("10:00:00.02") };
        assert_eq!(core.step(t("10:00:01"), other, &mut ids), Ok(vec![]));
        assert_eq!(core.step(t("10:00:01"), Input::BlankFailed { report }, &mut ids), Ok(vec![]));
    }

    #[test]
    fn unlock_returns_to_the_session_that_was_open() {
        let core = check(&[
            (
                "09:00:00",
                Input::SignIn { pupil: pupil("p-1") },
                Ok(&["spool session_started p-1 at 09:00:00"]),
                InSession,
            ),
            ("09:30:00", press("09:30:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "09:30:00",
                dark("09:30:00.03"),
                Ok(&[
                    "spool report_filed pupil=p-1 app=- at 09:30:00 latency=Some(30000)",
                    "reassure",
                ]),
                Held,
            ),
            ("09:34:00", Input::StaffUnlocked, Ok(&["restore", "resume_app"]), InSession),
            (
                "09:50:00",
                Input::SignOut,
                Ok(&["spool session_ended p-1 09:00:00..09:50:00 SignedOut"]),
                Idle,
            ),
        ]);
        assert_eq!(core.state(), &State::Idle);
    }

    #[test]
    fn unlock_without_a_session_returns_to_idle() {
        check(&[
            ("09:30:00", press("09:30:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "09:30:00",
                dark("09:30:00.001"),
                Ok(&[
                    "spool report_filed pupil=- app=- at 09:30:00 latency=Some(1000)",
                    "reassure",
                ]),
                Held,
            ),
            ("09:31:00", Input::StaffUnlocked, Ok(&["restore", "resume_app"]), Idle),
            ("09:31:01", Input::StaffUnlocked, Err(Refused::NotHeld), Idle),
        ]);
    }

    #[test]
    fn sign_in_and_out_record_the_right_times() {
        check(&[
            ("08:50:00", Input::SignOut, Err(Refused::NotSignedIn), Idle),
            (
                "09:00:00",
                Input::SignIn { pupil: pupil("p-1") },
                Ok(&["spool session_started p-1 at 09:00:00"]),
                InSession,
            ),
            (
                "09:20:00",
                Input::SignIn { pupil: pupil("p-2") },
                Ok(&[
                    "spool session_ended p-1 09:00:00..09:20:00 SignedOut",
                    "spool session_started p-2 at 09:20:00",
                ]),
                InSession,
            ),
            (
                "09:40:00",
                Input::SignOut,
                Ok(&["spool session_ended p-2 09:20:00..09:40:00 SignedOut"]),
                Idle,
            ),
        ]);
    }

    #[test]
    fn session_events_carry_the_same_session_id() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        let started =
            core.step(t("09:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        let ended = core.step(t("09:10:00"), Input::SignOut, &mut ids).unwrap();
        let (Command::Spool(a), Command::Spool(b)) = (&started[0], &ended[0]) else { panic!() };
        let (
            EventBody::SessionStarted { session: s1, .. },
            EventBody::SessionEnded { session: s2, .. },
        ) = (&a.body, &b.body)
        else {
            panic!()
        };
        assert_eq!(s1, s2);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_clock_stepping_backwards_never_ends_a_session_before_it_started() {
        check(&[
            (
                "09:00:00",
                Input::SignIn { pupil: pupil("p-1") },
                Ok(&["spool session_started p-1 at 09:00:00"]),
                InSession,
            ),
            (
                "08:00:00",
                Input::SignOut,
                Ok(&["spool session_ended p-1 09:00:00..09:00:00 SignedOut"]),
                Idle,
            ),
        ]);
    }

    #[test]
    fn sign_in_and_out_are_refused_while_held() {
        check(&[
            (
                "09:00:00",
                Input::SignIn { pupil: pupil("p-1") },
                Ok(&["spool session_started p-1 at 09:00:00"]),
                InSession,
            ),
            ("09:01:00", press("09:01:00", None), Ok(&["blank", "stop_app"]), Held),
            ("09:01:01", Input::SignIn { pupil: pupil("p-2") }, Err(Refused::Held), Held),
            ("09:01:02", Input::SignOut, Err(Refused::Held), Held),
        ]);
    }

    #[test]
    fn a_press_with_nobody_signed_in_still_files() {
        check(&[
            ("07:00:00", press("07:00:00", Some(browser())), Ok(&["blank", "stop_app"]), Held),
            (
                "07:00:00",
                dark("07:00:00.5"),
                Ok(&[
                    "spool report_filed pupil=- app=browser at 07:00:00 latency=Some(500000)",
                    "reassure",
                ]),
                Held,
            ),
        ]);
    }

    #[test]
    fn a_failed_blank_still_files_the_report() {
        check(&[
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "07:00:01",
                Input::BlankFailed { report: placeholder() },
                Ok(&["spool report_filed pupil=- app=- at 07:00:00 latency=None", "reassure"]),
                Held,
            ),
        ]);
    }

    #[test]
    fn an_unlock_before_darkness_is_confirmed_still_files_the_report() {
        check(&[
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "07:00:01",
                Input::StaffUnlocked,
                Ok(&[
                    "spool report_filed pupil=- app=- at 07:00:00 latency=None",
                    "restore",
                    "resume_app",
                ]),
                Idle,
            ),
        ]);
    }

    #[test]
    fn darkness_confirmed_before_the_press_time_counts_as_zero_latency() {
        check(&[
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "07:00:00",
                dark("06:59:59"),
                Ok(&["spool report_filed pupil=- app=- at 07:00:00 latency=Some(0)", "reassure"]),
                Held,
            ),
        ]);
    }

    #[test]
    fn shutting_down_closes_the_session_and_files_a_pending_report() {
        check(&[
            (
                "09:00:00",
                Input::SignIn { pupil: pupil("p-1") },
                Ok(&["spool session_started p-1 at 09:00:00"]),
                InSession,
            ),
            ("09:05:00", press("09:05:00", None), Ok(&["blank", "stop_app"]), Held),
            (
                "09:05:01",
                Input::ShuttingDown,
                Ok(&[
                    "spool report_filed pupil=p-1 app=- at 09:05:00 latency=None",
                    "spool session_ended p-1 09:00:00..09:05:01 DeviceRestarted",
                ]),
                Idle,
            ),
            ("09:05:02", Input::ShuttingDown, Ok(&[]), Idle),
        ]);
    }

    #[test]
    fn every_event_the_core_makes_is_valid_on_the_wire() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        let mut events = Vec::new();
        let mut run = |core: &mut Core, at: &str, input: Input| {
            for c in core.step(t(at), input, &mut ids).unwrap() {
                if let Command::Spool(e) = c {
                    events.push(e);
                }
            }
        };
        run(&mut core, "09:00:00", Input::SignIn { pupil: pupil("p-1") });
        run(&mut core, "09:01:00", press("09:01:00", Some(browser())));
        let report = core.held_report().unwrap();
        run(&mut core, "09:01:00", Input::ScreenDark { report, confirmed_at: t("09:01:00.01") });
        run(&mut core, "09:02:00", Input::StaffUnlocked);
        run(&mut core, "09:03:00", Input::SignIn { pupil: pupil("p-2") });
        run(&mut core, "09:04:00", Input::ShuttingDown);
        assert_eq!(events.len(), 5);
        let batch = slate_protocol::Batch::new(events.clone());
        let decoded = slate_protocol::Batch::from_json(&batch.to_json()).unwrap();
        assert_eq!(decoded.events, events);
        let mut seen = std::collections::HashSet::new();
        assert!(events.iter().all(|e| seen.insert(e.id)), "ids are unique");
    }
}
