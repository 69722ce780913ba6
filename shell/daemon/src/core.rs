//! The device's state machine: sessions, the report button and the staff hold. Pure: it owns the
//! rules and must not do I/O, read a clock, spawn tasks or make random ids (time and ids come in).
//!
//! ```text
//!            SignIn                     ButtonDown / ButtonPressed
//!   Idle ─────────────▶ InSession ───────────────────────▶ Held ──Unlock (PIN ok)──▶ InSession
//!    ▲  ◀─────────────                                      │                       (or Idle if
//!    │      SignOut                                         │                        nobody was
//!    └──────────────── ButtonDown (no pupil) ───────────────┘                        signed in)
//! ```
//!
//! A press is handled darkness first: [`Command::BlankScreen`] is the first command out, before
//! anything is written. When the display adapter confirms darkness ([`Input::ScreenDark`]) or gives
//! up ([`Input::BlankFailed`]) the report is spooled, with the measured blank latency or `None`.
//! Nothing the core is told can lose a report: an unlock or a shutdown before darkness is
//! confirmed files it anyway.
//!
//! # The physical button
//!
//! Key-down and key-up edges arrive as [`Input::ButtonDown`] / [`Input::ButtonUp`] with the
//! kernel's timestamps. A key-down within [`Rules::debounce`] of the last accepted one is contact
//! bounce and counts for nothing; a key-down while the key is already down is ignored; a key held
//! for [`Rules::stuck_after`] is a [`ButtonFault::Stuck`] (the daemon asks when to look again with
//! [`Core::next_deadline`] and sends [`Input::Tick`]), and a button device that vanished is
//! [`ButtonFault::Missing`]. Faults go out as [`Command::ButtonHealth`] for the heartbeat.
//! Presses from software (`slatectl press`, the stdin demo) are [`Input::ButtonPressed`]: they do
//! not bounce and are not debounced.
//!
//! # The staff unlock
//!
//! [`Input::Unlock`] carries whether the PIN was right and, if so, whose it was (the daemon checks
//! the argon2 hashes; the core never sees a PIN), and the staff's [`ResolutionChoice`]. The
//! `report_resolved` event names that member of staff: who unlocked comes only from the PIN. After
//! [`Lockout::wrong_before_lockout`] wrong PINs in a row, unlocking is refused until a time that
//! doubles with each lockout ([`Lockout::first`] up to [`Lockout::max`]); a right PIN resets both.
//! A successful unlock files a `report_resolved` event naming the report, then restores the
//! screen and resumes (false alarm) or closes (close app, block site) the foreground app.
//!
//! # The button test
//!
//! The fleet page's "Test the button" reaches the core as [`Input::TestButton`]: a window opens
//! until the command's `expires_at` by the wall clock, and never longer than
//! [`MAX_BUTTON_TEST`] measured since boot (a clock far behind, or a command replayed late,
//! cannot stretch it; one already expired, or one reaching a held device, opens nothing). The
//! next accepted key-down of the physical button in the window is the test:
//! [`Command::ButtonWorks`] (the LED answers) and a `button_tested` event; no report, no
//! darkness, no hold. A member of staff at an idle device opens the same window with their PIN
//! ([`Input::StaffButtonTest`]: the sign-in screen's staff PIN pad): [`MAX_BUTTON_TEST`] from
//! then, and the `button_tested` event names them instead of a command. Its wrong PINs count
//! towards the unlock's lockout, and while locked out no PIN is checked. The window closes after that one press, at its end, or at a restart. Any
//! press outside it, and any press from software (`slatectl press`), is what it always was: a
//! report.
//!
//! # Two clocks
//!
//! Each input comes at a [`Now`]: the wall clock, for what is recorded (event times, lesson
//! ends, the time a lockout ends as shown and kept across a restart), and the time since boot
//! (`CLOCK_BOOTTIME`, which never jumps), for every span the core measures: the idle timeout,
//! a PIN lockout, a key held until it is stuck, a blank latency. A device without a real-time
//! clock has its wall clock stepped backwards and forwards by time sources; none of those spans
//! stretches, shrinks or ends early for it.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};
use slate_protocol::{
    Breach, ButtonFault, DeviceNumber, Event, EventBody, EventId, FilterLayer, PupilId,
    RefusedDevice, ReportOrigin, ResolutionChoice, SessionEndReason, SessionId, StaffId,
};
use std::time::Duration;

pub use slate_protocol::device::MAX_BUTTON_TEST;

/// When an input happens, on both clocks (see the module's "Two clocks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// What events record; may jump.
    pub wall: DateTime<Utc>,
    /// Time since boot (`CLOCK_BOOTTIME`): what spans are measured on.
    pub since_boot: Duration,
}

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

/// The configurable rules of the button and the staff unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Key-downs this soon after an accepted one are contact bounce.
    pub debounce: Duration,
    /// Held down this long, the button is stuck (a fault in the heartbeat).
    pub stuck_after: Duration,
    /// Whether a staff PIN has reached this device (slate.toml or the policy). Without one a held
    /// device stays held: the hold never fails open.
    pub pin_in_force: bool,
    pub lockout: Lockout,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(250),
            stuck_after: Duration::from_secs(10),
            pin_in_force: false,
            lockout: Lockout::default(),
        }
    }
}

/// How wrong staff PINs are rate-limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Wrong PINs in a row that start a lockout.
    pub wrong_before_lockout: u32,
    /// The first lockout; each further one (without a right PIN between) is twice as long.
    pub first: Duration,
    /// The longest lockout.
    pub max: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self {
            wrong_before_lockout: 5,
            first: Duration::from_secs(60),
            max: Duration::from_secs(60 * 60),
        }
    }
}

impl Lockout {
    /// How long the `n`th lockout (1-based) lasts: `first`, doubled each time, capped at `max`.
    pub fn duration(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }
}

/// When sessions end by themselves (from the kiosk policy in force).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRules {
    /// No `activity` for this long ends the session (`idle_timeout`); `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Local times at which every open session ends (`end_of_lesson`).
    pub lesson_ends: Vec<NaiveTime>,
    /// The device's offset from UTC, to read `lesson_ends` (the daemon keeps it current).
    pub utc_offset: Option<FixedOffset>,
}

impl SessionRules {
    /// The first lesson end strictly after `after`, looking at that local day and the next.
    pub fn next_lesson_end(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = self.utc_offset.unwrap_or_else(|| FixedOffset::east_opt(0).expect("0"));
        let day = after.with_timezone(&offset).date_naive();
        [day, day.succ_opt()?]
            .into_iter()
            .flat_map(|d| self.lesson_ends.iter().map(move |t| d.and_time(*t)))
            .filter_map(|local| offset.from_local_datetime(&local).single())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > after)
            .min()
    }
}

/// What the daemon found when it checked the PIN typed (the core never sees the PIN itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// No PIN was given.
    Absent,
    /// The PIN of this member of staff (the id of the entry it matched).
    Right(StaffId),
    Wrong,
}

/// A staff unlock request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    pub pin: PinCheck,
    pub choice: ResolutionChoice,
}

impl Unlock {
    /// An unlock with the default choice (close the app).
    pub fn with_pin(pin: PinCheck) -> Self {
        Self { pin, choice: ResolutionChoice::CloseApp }
    }
}

/// The report button's condition, as the core has been told it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ButtonTrack {
    /// When the key went down (time since boot), while it is down.
    down_since: Option<Duration>,
    /// The last key-down that counted (for debouncing).
    last_accepted: Option<DateTime<Utc>>,
    stuck: bool,
    missing: bool,
}

impl ButtonTrack {
    fn fault(&self) -> Option<ButtonFault> {
        if self.missing {
            Some(ButtonFault::Missing)
        } else if self.stuck {
            Some(ButtonFault::Stuck)
        } else {
            None
        }
    }
}

/// Wrong PINs and lockouts so far. The daemon keeps it in `state_dir` so that killing slated
/// does not give a guesser a fresh count.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinTrack {
    /// Wrong PINs since the last lockout or right PIN.
    pub wrong_in_a_row: u32,
    /// Lockouts without a right PIN between (each doubles the next).
    pub lockouts: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl PinTrack {
    /// The track to carry on with when read back at `now` under `lockout`. A lockout ending
    /// later than the longest could from now (the clock was stepped back) ends after `max`;
    /// a count at or over a lowered threshold leaves one more guess before the lockout.
    pub fn restored(mut self, now: DateTime<Utc>, lockout: &Lockout) -> PinTrack {
        let latest = now + to_chrono(lockout.max);
        self.locked_until = self.locked_until.filter(|u| *u > now).map(|u| u.min(latest));
        self.wrong_in_a_row =
            self.wrong_in_a_row.min(lockout.wrong_before_lockout.saturating_sub(1));
        self
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
    /// When the core was told of the press (time since boot), to check a blank latency.
    pub told_since_boot: Duration,
    pub foreground: Option<Foreground>,
    /// The names the device looked up just before (from slate-dns), once the daemon has them.
    pub recent_names: Vec<String>,
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
    /// A press from software (`slatectl press`, the stdin demo): no bounce, no key-up.
    ButtonPressed {
        pressed_at: DateTime<Utc>,
        foreground: Option<Foreground>,
    },
    /// The physical report key went down, at the kernel's time, with what was on screen.
    ButtonDown {
        at: DateTime<Utc>,
        foreground: Option<Foreground>,
    },
    /// The physical report key went up.
    ButtonUp {
        at: DateTime<Utc>,
    },
    /// The button device appeared (`true`) or vanished (`false`).
    ButtonPresent(bool),
    /// Time passed: the moment [`Core::next_deadline`] asked for (or any later one).
    Tick,
    /// The display adapter confirmed the screen dark for this report.
    ScreenDark {
        report: EventId,
        confirmed_at: DateTime<Utc>,
    },
    /// The display adapter could not confirm darkness (error or timeout).
    BlankFailed {
        report: EventId,
    },
    /// The names looked up just before the press, for the held report (sent after darkness and
    /// before the darkness answer, so that the report carries them).
    RecentNames {
        report: EventId,
        names: Vec<String>,
    },
    /// A member of staff asks to unlock the held device.
    Unlock(Unlock),
    /// The pupil opened an approved app.
    AppOpened {
        app: String,
    },
    /// The pupil accepted the acceptable use agreement.
    AupAccepted {
        key_stage: String,
        text_version: String,
        school_version: Option<u32>,
    },
    /// The pupil touched the screen (the kiosk UI) or used an input device anywhere (the
    /// activity watcher): the idle timer starts again.
    Activity,
    /// The kiosk UI's reassurance screen is in front of every app window while held: the screen
    /// may light for it (what was on screen stays covered).
    ReassuranceShown,
    /// The apps adapter answered [`Command::StopForegroundApp`]: `stopped` when the foreground
    /// app is frozen (or there was none), so that it can make no sound.
    AppStopped {
        stopped: bool,
    },
    /// The filter refused a name or a page.
    FilterBlocked {
        layer: FilterLayer,
        target: String,
        rule: String,
        list: String,
    },
    /// "Tell my teacher" on a blocked page: a report without darkness or hold.
    TellTeacher {
        url: Option<String>,
        app: Option<String>,
        recent_names: Vec<String>,
    },
    /// Hardware was plugged in that the policy does not allow.
    DeviceRefused {
        kind: RefusedDevice,
        description: String,
    },
    /// The teacher's "eyes on me" starts (`true`) or ends (`false`).
    LockScreens(bool),
    /// The teacher ends every pupil's session.
    SignOutAll,
    /// The daemon started and found `report` still held from before a restart: held again.
    RestoreHeld {
        report: EventId,
    },
    /// The daemon is stopping: close what is open so that it is on record.
    ShuttingDown,
    /// The fleet's button test (command `command`, live until `until` by the wall clock): the
    /// next press in the window is a test, not a report.
    TestButton {
        command: u64,
        until: DateTime<Utc>,
    },
    /// A member of staff at the idle device's staff PIN pad (the daemon checked the PIN):
    /// `start` opens the button test window in their name; without it the PIN is only checked
    /// (the pad then offers the test).
    StaffButtonTest {
        pin: PinCheck,
        start: bool,
    },
}

/// What the imperative shell must do, in order.
// `Spool` carries a whole event (its clock evidence made it cross clippy's line): commands live
// for one input, a handful at a time, so boxing it would buy nothing but noise at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Darken the screen now, then answer [`Input::ScreenDark`] or [`Input::BlankFailed`].
    BlankScreen {
        report: EventId,
    },
    /// Stop (freeze) the foreground app, then answer [`Input::AppStopped`].
    StopForegroundApp,
    /// Turn the device's audio off: before the app is stopped, so that it is not heard while
    /// it stops.
    MuteAudio,
    /// Turn the device's audio on again: once the app is stopped (the kiosk's own voice reads
    /// the reassurance aloud), or when it runs again or is closed.
    UnmuteAudio,
    /// Show the "you did the right thing, a grown-up is coming" screen.
    ShowReassurance,
    /// Light the screen for the UI's reassurance screen, now in front (still held).
    RevealUi,
    /// Append to the durable spool (and so, in time, to the server).
    Spool(Event),
    RestoreScreen,
    /// Let the stopped foreground app run again: a false alarm.
    ResumeForegroundApp,
    /// End the stopped foreground app: its page is not shown again.
    CloseForegroundApp,
    /// The button's fault changed (`None`: healthy again); the heartbeat says it.
    ButtonHealth(Option<ButtonFault>),
    /// A press during the button test: show that it was seen (the LED answers); nothing else.
    ButtonWorks,
}

/// An input the core refuses in its current state. Nothing changed, except that a wrong PIN
/// counts towards a lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the device is held until a member of staff unlocks it")]
    Held,
    #[error("nobody is signed in")]
    NotSignedIn,
    #[error("a pupil is signed in: only a device nobody is using is tested")]
    InUse,
    #[error("the device is not held")]
    NotHeld,
    #[error("the staff PIN is required to unlock")]
    PinRequired,
    #[error("no staff PIN has reached this device yet: IT sets one on the school server; the device stays held until it arrives")]
    NoStaffPin,
    #[error("wrong staff PIN ({left} more before unlocking is locked for a while)")]
    WrongPin { left: u32 },
    #[error("too many wrong staff PINs: unlocking is locked until {} UTC", until.format("%H:%M:%S"))]
    LockedOut { until: DateTime<Utc> },
}

/// The state machine of one device.
#[derive(Debug, Clone)]
pub struct Core {
    device: DeviceNumber,
    rules: Rules,
    state: State,
    button: ButtonTrack,
    pins: PinTrack,
    sessions: SessionRules,
    /// The last sign of the pupil (sign-in, a touch, an app opened), for the idle timeout
    /// (time since boot).
    last_activity: Option<Duration>,
    /// When the PIN lockout in force ends (time since boot); `pins.locked_until` is the same
    /// moment on the wall clock, for the record.
    lock_ends: Option<Duration>,
    /// The teacher's "eyes on me" is in force.
    screens_locked: bool,
    /// The open button test window, if any.
    button_test: Option<ButtonTest>,
    /// Commands an input refused still brings about (a lockout's `security_breach` event): the
    /// daemon takes them with [`Core::take_refused_commands`] after a refusal.
    refused_commands: Vec<Command>,
}

/// An open button test window: the next press in it is a test.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ButtonTest {
    started_by: TestStarter,
    /// When the window closes (time since boot).
    ends: Duration,
}

/// Who opened a button test window: what its `button_tested` event names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TestStarter {
    /// The fleet page, with the `test_button` command of this id.
    Command(u64),
    /// A member of staff at the device, with their PIN.
    Staff(StaffId),
}

impl TestStarter {
    fn event_body(self) -> EventBody {
        match self {
            TestStarter::Command(command) => {
                EventBody::ButtonTested { command: Some(command), staff: None }
            }
            TestStarter::Staff(staff) => {
                EventBody::ButtonTested { command: None, staff: Some(staff) }
            }
        }
    }
}

impl Core {
    /// A device that has just started: nobody signed in (a session open before a restart is not
    /// restored).
    pub fn new(device: DeviceNumber) -> Self {
        Self::with_rules(device, Rules::default())
    }

    pub fn with_rules(device: DeviceNumber, rules: Rules) -> Self {
        Self {
            device,
            rules,
            state: State::Idle,
            button: ButtonTrack::default(),
            pins: PinTrack::default(),
            sessions: SessionRules::default(),
            last_activity: None,
            lock_ends: None,
            screens_locked: false,
            button_test: None,
            refused_commands: Vec::new(),
        }
    }

    /// The session rules in force (from the kiosk policy; none by default).
    pub fn set_session_rules(&mut self, sessions: SessionRules) {
        self.sessions = sessions;
    }

    pub fn session_rules(&self) -> &SessionRules {
        &self.sessions
    }

    /// Whether the teacher's "eyes on me" is in force.
    pub fn screens_locked(&self) -> bool {
        self.screens_locked
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Whether unlocking needs the staff PIN (a policy from the server can bring one).
    pub fn set_pin_in_force(&mut self, in_force: bool) {
        self.rules.pin_in_force = in_force;
    }

    /// What is wrong with the report button, if anything.
    pub fn button_fault(&self) -> Option<ButtonFault> {
        self.button.fault()
    }

    /// Wrong PINs and lockouts so far (the daemon records them).
    pub fn pin_track(&self) -> &PinTrack {
        &self.pins
    }

    /// Carries on with wrong PINs and lockouts recorded before a restart. The lockout's end was
    /// kept on the wall clock (the time since boot starts again at a reboot): what is left of it
    /// is measured from `now` on, and never more than the longest lockout.
    pub fn restore_pin_track(&mut self, now: Now, track: PinTrack) {
        self.pins = track.restored(now.wall, &self.rules.lockout);
        self.lock_ends = self
            .pins
            .locked_until
            .map(|until| now.since_boot + (until - now.wall).to_std().unwrap_or(Duration::ZERO));
    }

    /// Until when unlocking is locked after wrong PINs, if it is at `now`: the lockout's end
    /// measured since boot, on the wall clock as it is now. That is the end recorded at the
    /// lockout unless the wall clock was stepped since (the two clocks are read a moment apart,
    /// so within a second they agree).
    pub fn locked_until(&self, now: Now) -> Option<DateTime<Utc>> {
        let left = self.lock_ends?.checked_sub(now.since_boot).filter(|left| !left.is_zero())?;
        let by_boot = now.wall + to_chrono(left);
        let agrees =
            |recorded: &DateTime<Utc>| (*recorded - by_boot).abs() <= chrono::Duration::seconds(1);
        Some(self.pins.locked_until.filter(agrees).unwrap_or(by_boot))
    }

    /// How long from `now` until the core next needs an [`Input::Tick`]: the moment a key held
    /// down becomes stuck, or the open session's idle timeout or lesson end.
    pub fn next_deadline(&self, now: Now) -> Option<Duration> {
        [self.stuck_in(now), self.session_due(now).map(|(left, _)| left)]
            .into_iter()
            .flatten()
            .min()
    }

    fn stuck_in(&self, now: Now) -> Option<Duration> {
        match self.button.down_since {
            Some(since) if !self.button.stuck => {
                Some((since + self.rules.stuck_after).saturating_sub(now.since_boot))
            }
            _ => None,
        }
    }

    /// How long from `now` until the open session ends by itself, and why. Only a session on
    /// screen ends so: a held device waits for staff, and "eyes on me" pauses the idle timer.
    /// The idle timeout is measured since boot; a lesson ends when the wall clock says.
    fn session_due(&self, now: Now) -> Option<(Duration, SessionEndReason)> {
        let State::InSession(session) = &self.state else { return None };
        let lesson = self.sessions.next_lesson_end(session.started_at).map(|at| {
            ((at - now.wall).to_std().unwrap_or(Duration::ZERO), SessionEndReason::EndOfLesson)
        });
        let idle = match (self.sessions.idle_timeout, self.last_activity, self.screens_locked) {
            (Some(timeout), Some(last), false) => Some((
                (last + timeout).saturating_sub(now.since_boot),
                SessionEndReason::IdleTimeout,
            )),
            _ => None,
        };
        // The lesson end wins a tie: it is the reason a teacher expects.
        [lesson, idle].into_iter().flatten().min_by_key(|(left, _)| *left)
    }

    pub fn device(&self) -> DeviceNumber {
        self.device
    }

    /// Whether a button test window is open at `now` (the LED and `slatectl status` show it).
    pub fn button_test_open(&self, now: Now) -> bool {
        self.button_test.as_ref().is_some_and(|t| now.since_boot < t.ends)
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
        clocks: Now,
        input: Input,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        let now = clocks.wall;
        let since_boot = clocks.since_boot;
        match input {
            Input::SignIn { pupil } => {
                // A pupil's press is never a test: a sign-in closes any test window.
                self.button_test = None;
                self.sign_in(clocks, pupil, ids)
            }
            Input::SignOut => self.sign_out(now, ids),
            Input::ButtonPressed { pressed_at, foreground } => {
                Ok(self.press(pressed_at, since_boot, foreground, ids))
            }
            Input::TestButton { command, until } => {
                // Measured since boot from now on: the wall clock decides only whether the
                // command is still live, and can shorten the window, never stretch it.
                let left = (until - now).to_std().unwrap_or(Duration::ZERO).min(MAX_BUTTON_TEST);
                // Only a device nobody is using is tested: a pupil's press is always a report,
                // and a held device waits for staff.
                let idle = matches!(self.state, State::Idle);
                self.button_test = (!left.is_zero() && idle).then_some(ButtonTest {
                    started_by: TestStarter::Command(command),
                    ends: since_boot + left,
                });
                Ok(Vec::new())
            }
            Input::StaffButtonTest { pin, start } => {
                self.staff_button_test(clocks, pin, start, ids)
            }
            Input::ButtonDown { at, foreground } => {
                Ok(self.button_down(at, since_boot, foreground, ids))
            }
            Input::ButtonUp { .. } => {
                self.button.down_since = None;
                Ok(self.set_button(|b| b.stuck = false))
            }
            Input::ButtonPresent(present) => Ok(self.set_button(|b| {
                b.missing = !present;
                if !present {
                    // A button that is gone is not held down.
                    b.down_since = None;
                    b.stuck = false;
                }
            })),
            Input::Tick => Ok(self.tick(clocks, ids)),
            Input::ScreenDark { report, confirmed_at } => {
                let latency = self
                    .pending_press(report)
                    .and_then(|p| latency_us(p, confirmed_at, since_boot));
                Ok(self.file_pending(report, latency, true))
            }
            Input::BlankFailed { report } => Ok(self.file_pending(report, None, true)),
            Input::RecentNames { report, names } => {
                if let State::Held { report: held, pending: Some(p), .. } = &mut self.state {
                    if *held == report {
                        p.recent_names = names;
                    }
                }
                Ok(Vec::new())
            }
            Input::Unlock(unlock) => self.unlock(clocks, unlock, ids),
            Input::ShuttingDown => Ok(self.shut_down(now, ids)),
            Input::AppOpened { app } => {
                let session = self.on_screen_session()?;
                self.last_activity = Some(since_boot);
                Ok(vec![self.event(
                    ids,
                    now,
                    EventBody::AppOpened { session: session.id, pupil: session.pupil, app },
                )])
            }
            Input::AupAccepted { key_stage, text_version, school_version } => {
                let session = self.on_screen_session()?;
                self.last_activity = Some(since_boot);
                Ok(vec![self.event(
                    ids,
                    now,
                    EventBody::AupAccepted {
                        session: session.id,
                        pupil: session.pupil,
                        key_stage,
                        text_version,
                        school_version,
                    },
                )])
            }
            Input::ReassuranceShown => match self.held_report() {
                Some(_) => Ok(vec![Command::RevealUi]),
                None => Err(Refused::NotHeld),
            },
            Input::AppStopped { stopped } => Ok(audio_after_stop(&self.state, stopped)),
            Input::Activity => {
                self.on_screen_session()?;
                self.last_activity = Some(since_boot);
                Ok(Vec::new())
            }
            Input::FilterBlocked { layer, target, rule, list } => {
                let session = self.session().cloned();
                Ok(vec![self.event(
                    ids,
                    now,
                    EventBody::FilterBlocked {
                        session: session.as_ref().map(|s| s.id),
                        pupil: session.map(|s| s.pupil),
                        layer,
                        target,
                        rule,
                        list,
                    },
                )])
            }
            Input::TellTeacher { url, app, recent_names } => {
                let session = self.session().cloned();
                Ok(vec![self.event(
                    ids,
                    now,
                    EventBody::ReportFiled {
                        session: session.as_ref().map(|s| s.id),
                        pupil: session.map(|s| s.pupil),
                        app,
                        url,
                        page_title: None,
                        blank_latency_us: None,
                        recent_names,
                        origin: ReportOrigin::BlockPage,
                    },
                )])
            }
            Input::DeviceRefused { kind, description } => {
                Ok(vec![self.event(ids, now, EventBody::DeviceRefused { kind, description })])
            }
            Input::LockScreens(locked) => {
                if locked == self.screens_locked {
                    return Ok(Vec::new());
                }
                self.screens_locked = locked;
                if !locked {
                    // The pupil was told to look up, not away: the idle timer starts again.
                    self.last_activity = self.last_activity.map(|_| since_boot);
                }
                // A held device's app is stopped already and waits for the staff unlock.
                if matches!(self.state, State::Held { .. }) {
                    return Ok(Vec::new());
                }
                Ok(if locked {
                    vec![Command::MuteAudio, Command::StopForegroundApp]
                } else {
                    vec![Command::ResumeForegroundApp, Command::UnmuteAudio]
                })
            }
            Input::SignOutAll => match &self.state {
                // The member of staff who comes to a held device unlocks it; nothing ends
                // under a hold.
                State::Held { .. } => Err(Refused::Held),
                State::Idle => Ok(Vec::new()),
                State::InSession(session) => {
                    let ended =
                        self.session_ended(now, session, SessionEndReason::SignedOutByStaff, ids);
                    self.state = State::Idle;
                    self.last_activity = None;
                    Ok(vec![ended])
                }
            },
            Input::RestoreHeld { report } => match self.state {
                State::Idle => {
                    self.state = State::Held { report, session: None, pending: None };
                    Ok(vec![Command::BlankScreen { report }, Command::ShowReassurance])
                }
                _ => Err(Refused::Held),
            },
        }
    }

    /// The session a pupil is using now (not held).
    fn on_screen_session(&self) -> Result<Session, Refused> {
        match &self.state {
            State::InSession(s) => Ok(s.clone()),
            State::Held { .. } => Err(Refused::Held),
            State::Idle => Err(Refused::NotSignedIn),
        }
    }

    fn event(&self, ids: &mut impl Ids, at: DateTime<Utc>, body: EventBody) -> Command {
        Command::Spool(Event { id: ids.event_id(), device: self.device, at, body, clock: None })
    }

    fn sign_in(
        &mut self,
        clocks: Now,
        pupil: PupilId,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        let now = clocks.wall;
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
            clock: None,
        }));
        self.state = State::InSession(session);
        self.last_activity = Some(clocks.since_boot);
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
                self.last_activity = None;
                Ok(vec![ended])
            }
        }
    }

    fn press(
        &mut self,
        pressed_at: DateTime<Utc>,
        told_since_boot: Duration,
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
            pending: Some(PendingReport {
                pressed_at,
                told_since_boot,
                foreground,
                recent_names: Vec::new(),
            }),
        };
        vec![Command::BlankScreen { report }, Command::MuteAudio, Command::StopForegroundApp]
    }

    fn button_down(
        &mut self,
        at: DateTime<Utc>,
        since_boot: Duration,
        foreground: Option<Foreground>,
        ids: &mut impl Ids,
    ) -> Vec<Command> {
        if self.button.down_since.is_some() {
            // Down while down: a lost key-up or a repeat; the press already counted.
            return Vec::new();
        }
        self.button.down_since = Some(since_boot);
        let mut commands = self.set_button(|b| b.missing = false);
        let bounce = self
            .button
            .last_accepted
            .is_some_and(|last| at >= last && (at - last) < to_chrono(self.rules.debounce));
        if !bounce {
            self.button.last_accepted = Some(at);
            // The window closes with this press, test or not; only an idle device is tested.
            let window = self.button_test.take();
            let test = match self.state {
                State::Idle => window.filter(|t| since_boot < t.ends),
                State::InSession(_) | State::Held { .. } => None,
            };
            commands.extend(match test {
                Some(t) => {
                    vec![Command::ButtonWorks, self.event(ids, at, t.started_by.event_body())]
                }
                None => self.press(at, since_boot, foreground, ids),
            });
        }
        commands
    }

    fn tick(&mut self, now: Now, ids: &mut impl Ids) -> Vec<Command> {
        let mut commands = match self.stuck_in(now) {
            Some(left) if left.is_zero() => self.set_button(|b| b.stuck = true),
            _ => Vec::new(),
        };
        if let (Some((left, reason)), State::InSession(session)) =
            (self.session_due(now), &self.state)
        {
            if left.is_zero() {
                commands.push(self.session_ended(now.wall, session, reason, ids));
                self.state = State::Idle;
                self.last_activity = None;
            }
        }
        commands
    }

    /// Changes the button's track; says so if its fault changed.
    fn set_button(&mut self, change: impl FnOnce(&mut ButtonTrack)) -> Vec<Command> {
        let before = self.button.fault();
        change(&mut self.button);
        let after = self.button.fault();
        if before == after {
            Vec::new()
        } else {
            vec![Command::ButtonHealth(after)]
        }
    }

    fn pending_press(&self, for_report: EventId) -> Option<&PendingReport> {
        match &self.state {
            State::Held { report, pending: Some(p), .. } if *report == for_report => Some(p),
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
                recent_names: p.recent_names,
                origin: ReportOrigin::Button,
            },
            clock: None,
        };
        let mut commands = vec![Command::Spool(event)];
        if reassure {
            commands.push(Command::ShowReassurance);
        }
        commands
    }

    fn unlock(
        &mut self,
        clocks: Now,
        unlock: Unlock,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        let now = clocks.wall;
        let Some(report) = self.held_report() else {
            return Err(Refused::NotHeld);
        };
        if let Some(until) = self.locked_until(clocks) {
            return Err(Refused::LockedOut { until });
        }
        if !self.rules.pin_in_force {
            return Err(Refused::NoStaffPin);
        }
        let staff = match unlock.pin {
            PinCheck::Absent => return Err(Refused::PinRequired),
            PinCheck::Wrong => return Err(self.wrong_pin(clocks, ids)),
            PinCheck::Right(staff) => staff,
        };
        self.pins = PinTrack::default();
        self.lock_ends = None;
        // Unlocked before the display answered: the report still goes, without a latency.
        let mut commands = self.file_pending(report, None, false);
        commands.push(Command::Spool(Event {
            id: ids.event_id(),
            device: self.device,
            at: now,
            body: EventBody::ReportResolved { report, choice: unlock.choice, staff: Some(staff) },
            clock: None,
        }));
        let State::Held { session, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            unreachable!("held_report() was Some");
        };
        // Back at the screen: the idle timer starts from the unlock, not from before the press.
        self.last_activity = session.as_ref().map(|_| clocks.since_boot);
        self.state = session.map_or(State::Idle, State::InSession);
        commands.push(Command::RestoreScreen);
        match unlock.choice {
            // Under "eyes on me" the app stays paused, and silent, until the teacher ends it.
            ResolutionChoice::FalseAlarm if self.screens_locked => {
                commands.push(Command::MuteAudio)
            }
            ResolutionChoice::FalseAlarm => {
                commands.extend([Command::ResumeForegroundApp, Command::UnmuteAudio])
            }
            ResolutionChoice::CloseApp | ResolutionChoice::BlockSite => {
                commands.extend([Command::CloseForegroundApp, Command::UnmuteAudio])
            }
        }
        Ok(commands)
    }

    /// A member of staff's PIN at the idle device's pad: checked as for an unlock (the lockout
    /// first, then the PIN; a wrong one counts), then with `start` the button test window opens
    /// in their name, as the fleet page's would. Only a device nobody is using is tested.
    fn staff_button_test(
        &mut self,
        clocks: Now,
        pin: PinCheck,
        start: bool,
        ids: &mut impl Ids,
    ) -> Result<Vec<Command>, Refused> {
        match self.state {
            State::Idle => {}
            State::InSession(_) => return Err(Refused::InUse),
            State::Held { .. } => return Err(Refused::Held),
        }
        if let Some(until) = self.locked_until(clocks) {
            return Err(Refused::LockedOut { until });
        }
        if !self.rules.pin_in_force {
            return Err(Refused::NoStaffPin);
        }
        let staff = match pin {
            PinCheck::Absent => return Err(Refused::PinRequired),
            PinCheck::Wrong => return Err(self.wrong_pin(clocks, ids)),
            PinCheck::Right(staff) => staff,
        };
        self.pins = PinTrack::default();
        self.lock_ends = None;
        if start {
            self.button_test = Some(ButtonTest {
                started_by: TestStarter::Staff(staff),
                ends: clocks.since_boot + MAX_BUTTON_TEST,
            });
        }
        Ok(Vec::new())
    }

    /// Commands a refused input still brings about, once: the daemon carries them out after
    /// the refusal (a PIN lockout is refused, and is a security breach the server hears of).
    pub fn take_refused_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.refused_commands)
    }

    fn wrong_pin(&mut self, now: Now, ids: &mut impl Ids) -> Refused {
        let policy = self.rules.lockout;
        self.pins.wrong_in_a_row += 1;
        if self.pins.wrong_in_a_row < policy.wrong_before_lockout {
            return Refused::WrongPin {
                left: policy.wrong_before_lockout - self.pins.wrong_in_a_row,
            };
        }
        let wrong_pins = self.pins.wrong_in_a_row;
        self.pins.wrong_in_a_row = 0;
        self.pins.lockouts = self.pins.lockouts.saturating_add(1);
        let lasts = policy.duration(self.pins.lockouts);
        let breach = Breach::PinLockout {
            wrong_pins,
            lockouts: self.pins.lockouts,
            locked_for_s: lasts.as_secs(),
        };
        let event = self.event(ids, now.wall, EventBody::SecurityBreach { breach });
        self.refused_commands.push(event);
        self.lock_ends = Some(now.since_boot + lasts);
        let until = now.wall + to_chrono(lasts);
        self.pins.locked_until = Some(until);
        Refused::LockedOut { until }
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
        self.last_activity = None;
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
            clock: None,
        })
    }
}

/// What the audio does once the foreground app has been told to stop. During a hold the sound
/// comes back on only when the app is frozen (it cannot be heard again): the kiosk reads the
/// reassurance aloud. If the stop failed the app may still be playing, so the sound stays off
/// and the reassurance is silent. Outside a hold ("eyes on me") it stays off, as it was.
fn audio_after_stop(state: &State, stopped: bool) -> Vec<Command> {
    match state {
        State::Held { .. } if stopped => vec![Command::UnmuteAudio],
        _ => Vec::new(),
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Microseconds from the press (the kernel's time) to confirmed darkness, both on the wall
/// clock, for a darkness that was confirmed (so never `None` for a wall clock stepped in
/// between). Stepped backwards, the latency is 0; stepped forwards (more than a second past
/// the time since boot that passed from the core being told of the press to `since_boot`),
/// it is that time since boot instead, which is not more than the true latency.
fn latency_us(
    press: &PendingReport,
    confirmed_at: DateTime<Utc>,
    since_boot: Duration,
) -> Option<u64> {
    let us = u64::try_from((confirmed_at - press.pressed_at).num_microseconds()?).unwrap_or(0);
    let passed = since_boot.saturating_sub(press.told_since_boot);
    let passed_us = u64::try_from(passed.as_micros()).unwrap_or(u64::MAX);
    Some(if us > passed_us.saturating_add(1_000_000) { passed_us } else { us })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-11-17T{s}Z").parse().unwrap()
    }

    /// `t(s)` on a wall clock that has not jumped since the device booted at midnight.
    fn n(s: &str) -> Now {
        Now { wall: t(s), since_boot: (t(s) - t("00:00:00")).to_std().unwrap() }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
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
            Command::MuteAudio => "mute".into(),
            Command::UnmuteAudio => "unmute".into(),
            Command::ShowReassurance => "reassure".into(),
            Command::RestoreScreen => "restore".into(),
            Command::RevealUi => "reveal_ui".into(),
            Command::ResumeForegroundApp => "resume_app".into(),
            Command::CloseForegroundApp => "close_app".into(),
            Command::ButtonHealth(fault) => format!("button_health {fault:?}"),
            Command::ButtonWorks => "button_works".into(),
            Command::Spool(e) => match &e.body {
                EventBody::ButtonTested { command: Some(command), .. } => {
                    format!("spool button_tested command={command} at {}", e.at.time())
                }
                EventBody::ButtonTested { staff, .. } => format!(
                    "spool button_tested staff={} at {}",
                    staff.as_ref().map_or("-", |s| s.as_str()),
                    e.at.time()
                ),
                EventBody::ReportResolved { choice, staff, .. } => format!(
                    "spool report_resolved {} staff={} at {}",
                    choice.as_str(),
                    staff.as_ref().map_or("-", |s| s.as_str()),
                    e.at.time()
                ),
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
        check_with(Rules { pin_in_force: true, ..Rules::default() }, steps)
    }

    fn check_with(rules: Rules, steps: &[Step]) -> Core {
        let mut core = Core::with_rules(device(), rules);
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
                .step(n(at), input.clone(), &mut ids)
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

    fn stopped(stopped: bool) -> Input {
        Input::AppStopped { stopped }
    }

    fn unlock() -> Input {
        Input::Unlock(Unlock::with_pin(right()))
    }

    /// The PIN of staff member `s-1`.
    fn right() -> PinCheck {
        PinCheck::Right(StaffId::new("s-1").unwrap())
    }

    fn unlock_as(pin: PinCheck, choice: ResolutionChoice) -> Input {
        Input::Unlock(Unlock { pin, choice })
    }

    use StateKind::*;

    #[test]
    fn press_blanks_first_then_spools_the_report_with_its_latency() {
        check(&[
            ("10:00:00", Input::SignIn { pupil: pupil("p-7f3a9c") }, Ok(&["spool session_started p-7f3a9c at 10:00:00"]), InSession),
            ("10:14:03.2", press("10:14:03.120", Some(browser())), Ok(&["blank", "mute", "stop_app"]), Held),
            (
                "10:14:03.3",
                dark("10:14:03.161250"),
                Ok(&["spool report_filed pupil=p-7f3a9c app=browser at 10:14:03.120 latency=Some(41250)", "reassure"]),
                Held,
            ),
        ]);
    }

    /// The sound goes off before the app is stopped, so that the app is not heard while it
    /// stops; it comes back on (for the kiosk's spoken reassurance) only once the app is frozen,
    /// and never if the stop failed, when the app might still play.
    #[test]
    fn the_sound_is_off_before_the_app_stops_and_on_again_only_once_it_is_stopped() {
        let filed = "spool report_filed pupil=- app=- at 10:00:00 latency=Some(10000)";
        let filed: &[&str] = &[filed, "reassure"];
        let cases: [(&str, Vec<Step>); 3] = [
            (
                "stopped",
                vec![
                    ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                    ("10:00:00", dark("10:00:00.010"), Ok(filed), Held),
                    ("10:00:00.02", stopped(true), Ok(&["unmute"]), Held),
                ],
            ),
            (
                "stopped before the darkness answer",
                vec![
                    ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                    ("10:00:00", stopped(true), Ok(&["unmute"]), Held),
                    ("10:00:00", dark("10:00:00.010"), Ok(filed), Held),
                ],
            ),
            (
                "not stopped",
                vec![
                    ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                    ("10:00:00", dark("10:00:00.010"), Ok(filed), Held),
                    ("10:00:00.02", stopped(false), Ok(&[]), Held),
                    // A second press while held changes nothing, the sound included.
                    ("10:00:01", press("10:00:01", None), Ok(&[]), Held),
                ],
            ),
        ];
        for (name, steps) in cases {
            eprintln!("case: {name}");
            check(&steps);
        }
        // A late answer after the unlock, or with no hold at all, leaves the sound alone.
        check(&[("10:00:00", stopped(true), Ok(&[]), Idle)]);
    }

    #[test]
    fn the_report_records_session_pupil_and_foreground() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        core.step(n("10:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        let session = core.session().unwrap().id;
        core.step(n("10:01:00"), press("10:01:00", Some(browser())), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let cs = core
            .step(
                n("10:01:01"),
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
                recent_names: vec![],
                origin: slate_protocol::ReportOrigin::Button,
            }
        );
        event.validate().unwrap();
    }

    #[test]
    fn a_press_while_held_is_ignored() {
        check(&[
            ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
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
        core.step(n("10:00:00"), press("10:00:00", None), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let dark = Input::ScreenDark { report, confirmed_at: t("10:00:00.02") };
        assert_eq!(core.step(n("10:00:01"), dark.clone(), &mut ids).unwrap().len(), 2);
        assert_eq!(core.step(n("10:00:01"), dark, &mut ids), Ok(vec![]));
        let other = Input::ScreenDark { report: ids.event_id(), confirmed_at: t("10:00:00.02") };
        assert_eq!(core.step(n("10:00:01"), other, &mut ids), Ok(vec![]));
        assert_eq!(core.step(n("10:00:01"), Input::BlankFailed { report }, &mut ids), Ok(vec![]));
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
            ("09:30:00", press("09:30:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            (
                "09:30:00",
                dark("09:30:00.03"),
                Ok(&[
                    "spool report_filed pupil=p-1 app=- at 09:30:00 latency=Some(30000)",
                    "reassure",
                ]),
                Held,
            ),
            (
                "09:34:00",
                unlock_as(right(), ResolutionChoice::FalseAlarm),
                Ok(&[
                    "spool report_resolved false_alarm staff=s-1 at 09:34:00",
                    "restore",
                    "resume_app",
                    "unmute",
                ]),
                InSession,
            ),
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
            ("09:30:00", press("09:30:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            (
                "09:30:00",
                dark("09:30:00.001"),
                Ok(&[
                    "spool report_filed pupil=- app=- at 09:30:00 latency=Some(1000)",
                    "reassure",
                ]),
                Held,
            ),
            // The kiosk's reassurance screen is in front: light the screen for it, still held.
            ("09:30:01", Input::ReassuranceShown, Ok(&["reveal_ui"]), Held),
            (
                "09:31:00",
                unlock(),
                Ok(&[
                    "spool report_resolved close_app staff=s-1 at 09:31:00",
                    "restore",
                    "close_app",
                    "unmute",
                ]),
                Idle,
            ),
            ("09:31:01", unlock(), Err(Refused::NotHeld), Idle),
            ("09:31:02", Input::ReassuranceShown, Err(Refused::NotHeld), Idle),
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
            core.step(n("09:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        let ended = core.step(n("09:10:00"), Input::SignOut, &mut ids).unwrap();
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
            ("09:01:00", press("09:01:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("09:01:01", Input::SignIn { pupil: pupil("p-2") }, Err(Refused::Held), Held),
            ("09:01:02", Input::SignOut, Err(Refused::Held), Held),
        ]);
    }

    #[test]
    fn a_press_with_nobody_signed_in_still_files() {
        check(&[
            (
                "07:00:00",
                press("07:00:00", Some(browser())),
                Ok(&["blank", "mute", "stop_app"]),
                Held,
            ),
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
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
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
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            (
                "07:00:01",
                unlock(),
                Ok(&[
                    "spool report_filed pupil=- app=- at 07:00:00 latency=None",
                    "spool report_resolved close_app staff=s-1 at 07:00:01",
                    "restore",
                    "close_app",
                    "unmute",
                ]),
                Idle,
            ),
        ]);
    }

    #[test]
    fn darkness_confirmed_before_the_press_time_counts_as_zero_latency() {
        check(&[
            ("07:00:00", press("07:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
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
            ("09:05:00", press("09:05:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
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
        let mut core = Core::with_rules(device(), Rules { pin_in_force: true, ..Rules::default() });
        let mut ids = SequentialIds::default();
        let mut events = Vec::new();
        let mut run = |core: &mut Core, at: &str, input: Input| {
            for c in core.step(n(at), input, &mut ids).unwrap() {
                if let Command::Spool(e) = c {
                    events.push(e);
                }
            }
        };
        run(&mut core, "09:00:00", Input::SignIn { pupil: pupil("p-1") });
        run(&mut core, "09:01:00", press("09:01:00", Some(browser())));
        let report = core.held_report().unwrap();
        run(&mut core, "09:01:00", Input::ScreenDark { report, confirmed_at: t("09:01:00.01") });
        run(
            &mut core,
            "09:02:00",
            unlock_as(PinCheck::Right(StaffId::new("t-04").unwrap()), ResolutionChoice::BlockSite),
        );
        run(&mut core, "09:03:00", Input::SignIn { pupil: pupil("p-2") });
        run(&mut core, "09:04:00", Input::ShuttingDown);
        assert_eq!(events.len(), 6);
        let batch = slate_protocol::Batch::new(events.clone());
        let decoded = slate_protocol::Batch::from_json(&batch.to_json()).unwrap();
        assert_eq!(decoded.events, events);
        let mut seen = std::collections::HashSet::new();
        assert!(events.iter().all(|e| seen.insert(e.id)), "ids are unique");
    }

    fn down(at: &str) -> Input {
        Input::ButtonDown { at: t(at), foreground: None }
    }

    fn up(at: &str) -> Input {
        Input::ButtonUp { at: t(at) }
    }

    fn rules() -> Rules {
        Rules {
            debounce: Duration::from_millis(200),
            stuck_after: Duration::from_secs(10),
            pin_in_force: true,
            lockout: Lockout {
                wrong_before_lockout: 3,
                first: Duration::from_secs(60),
                max: Duration::from_secs(240),
            },
        }
    }

    fn pin(p: PinCheck) -> Input {
        unlock_as(p, ResolutionChoice::CloseApp)
    }

    const FILED_AT_10: &str = "spool report_filed pupil=- app=- at 10:00:00 latency=Some(10000)";

    #[test]
    fn key_downs_within_the_debounce_window_of_an_accepted_one_count_for_nothing() {
        check_with(
            rules(),
            &[
                ("10:00:00", down("10:00:00"), Ok(&["blank", "mute", "stop_app"]), Held),
                ("10:00:00", up("10:00:00.005"), Ok(&[]), Held),
                ("10:00:00", dark("10:00:00.010"), Ok(&[FILED_AT_10, "reassure"]), Held),
                (
                    "10:00:00.1",
                    pin(right()),
                    Ok(&[
                        "spool report_resolved close_app staff=s-1 at 10:00:00.100",
                        "restore",
                        "close_app",
                        "unmute",
                    ]),
                    Idle,
                ),
                // 150 ms after the accepted press: bounce, though the device is no longer held.
                ("10:00:00.15", down("10:00:00.150"), Ok(&[]), Idle),
                ("10:00:00.16", up("10:00:00.160"), Ok(&[]), Idle),
                // The window runs from the accepted press, not from the bounce.
                ("10:00:00.25", down("10:00:00.250"), Ok(&["blank", "mute", "stop_app"]), Held),
            ],
        );
    }

    fn test_until(command: u64, until: &str) -> Input {
        Input::TestButton { command, until: t(until) }
    }

    const TESTED_AT_10: &str = "spool button_tested command=7 at 10:00:00";

    #[test]
    fn the_next_press_in_a_button_test_window_is_a_test_and_the_one_after_a_report() {
        check_with(
            rules(),
            &[
                ("09:59:00", test_until(7, "10:04:00"), Ok(&[]), Idle),
                // The test: the LED answers, the event says so; no darkness, no report, no hold.
                ("10:00:00", down("10:00:00"), Ok(&["button_works", TESTED_AT_10]), Idle),
                ("10:00:00", up("10:00:00.005"), Ok(&[]), Idle),
                // The window closed with that press: the next one is a real report.
                ("10:00:01", down("10:00:01"), Ok(&["blank", "mute", "stop_app"]), Held),
            ],
        );
    }

    #[test]
    fn a_pupils_press_is_never_a_test() {
        let signed_in = Input::SignIn { pupil: pupil("p-1") };
        // A test asked for while a pupil is signed in opens no window.
        check_with(
            rules(),
            &[
                (
                    "09:58:00",
                    signed_in.clone(),
                    Ok(&["spool session_started p-1 at 09:58:00"]),
                    InSession,
                ),
                ("09:59:00", test_until(7, "10:04:00"), Ok(&[]), InSession),
                ("10:00:00", down("10:00:00"), Ok(&["blank", "mute", "stop_app"]), Held),
            ],
        );
        // A pupil signing in during a window closes it.
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.step(n("09:59:00"), test_until(7, "10:04:00"), &mut ids).unwrap();
        assert!(core.button_test_open(n("09:59:30")));
        core.step(n("09:59:40"), signed_in, &mut ids).unwrap();
        assert!(!core.button_test_open(n("09:59:50")), "closed by the sign-in");
        let got = core.step(n("10:00:00"), down("10:00:00"), &mut ids).unwrap();
        assert_eq!(got.iter().map(show).collect::<Vec<_>>(), ["blank", "mute", "stop_app"]);
    }

    #[test]
    fn a_press_is_a_test_only_inside_a_live_window() {
        type Case<'a> = (&'a str, Input, &'a str, Input, &'a [&'a str]);
        let report: &[&str] = &["blank", "mute", "stop_app"];
        let test: &[&str] = &["button_works", TESTED_AT_10];
        let key = down("10:00:00");
        let cases: [Case; 7] = [
            ("no test asked for", Input::Tick, "10:00:00", key.clone(), report),
            ("open", test_until(7, "10:01:00"), "09:59:00", key.clone(), test),
            (
                "expired before the press",
                test_until(7, "09:59:30"),
                "09:59:00",
                key.clone(),
                report,
            ),
            // A command replayed after it expired opens nothing.
            ("expired on arrival", test_until(7, "09:58:59"), "09:59:00", key.clone(), report),
            // However late it expires, the window lasts MAX_BUTTON_TEST (5 minutes) from arrival.
            ("past the cap", test_until(7, "23:00:00"), "09:54:59", key.clone(), report),
            ("inside the cap", test_until(7, "23:00:00"), "09:55:01", key.clone(), test),
            // Only the physical button is tested: `slatectl press` is a report as always.
            (
                "from software",
                test_until(7, "10:01:00"),
                "09:59:00",
                press("10:00:00", None),
                report,
            ),
        ];
        for (name, open, told_at, pressed, want) in cases {
            let mut core = Core::with_rules(device(), rules());
            let mut ids = SequentialIds::default();
            core.step(n(told_at), open, &mut ids).unwrap();
            let got = core.step(n("10:00:00"), pressed, &mut ids).unwrap();
            assert_eq!(got.iter().map(show).collect::<Vec<_>>(), want, "{name}");
        }
    }

    #[test]
    fn a_held_device_is_not_tested_and_a_stepped_clock_cannot_stretch_a_window() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.step(n("10:00:00"), down("10:00:00"), &mut ids).unwrap();
        core.step(n("10:00:01"), up("10:00:01"), &mut ids).unwrap();
        core.step(n("10:00:02"), test_until(7, "10:05:00"), &mut ids).unwrap();
        assert!(!core.button_test_open(n("10:00:02")), "no window opens under a hold");
        let mut core = Core::with_rules(device(), rules());
        // The wall clock is a day behind (no time server yet): the command looks live for a day.
        let behind = |s: &str| Now { wall: t(s) - chrono::Duration::days(1), ..n(s) };
        core.step(behind("10:00:00"), test_until(7, "10:05:00"), &mut ids).unwrap();
        assert!(core.button_test_open(behind("10:04:59")));
        assert!(!core.button_test_open(behind("10:05:00")), "5 minutes since boot, not a day");
        let got = core.step(behind("10:06:00"), down("10:06:00"), &mut ids).unwrap();
        assert_eq!(got.iter().map(show).collect::<Vec<_>>(), ["blank", "mute", "stop_app"]);
    }

    fn staff_test(pin: PinCheck, start: bool) -> Input {
        Input::StaffButtonTest { pin, start }
    }

    const TESTED_BY_S1_AT_10: &str = "spool button_tested staff=s-1 at 10:00:00";

    /// The staff PIN pad on the sign-in screen: a right PIN only checked (the pad then offers
    /// the test) opens nothing; "Test the report button" opens the same window as the fleet
    /// page's, and the press in it names the member of staff, not a command.
    #[test]
    fn a_staff_pin_opens_the_button_test_in_their_name() {
        check_with(
            rules(),
            &[
                ("09:59:00", staff_test(right(), false), Ok(&[]), Idle),
                ("09:59:10", staff_test(right(), true), Ok(&[]), Idle),
                ("10:00:00", down("10:00:00"), Ok(&["button_works", TESTED_BY_S1_AT_10]), Idle),
                ("10:00:00", up("10:00:00.005"), Ok(&[]), Idle),
                // One press: the next is a report.
                ("10:00:01", down("10:00:01"), Ok(&["blank", "mute", "stop_app"]), Held),
            ],
        );
        // Only checked: no window, a press is a report.
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.step(n("09:59:00"), staff_test(right(), false), &mut ids).unwrap();
        assert!(!core.button_test_open(n("09:59:01")));
        // Started: open for MAX_BUTTON_TEST measured since boot.
        core.step(n("09:59:00"), staff_test(right(), true), &mut ids).unwrap();
        assert!(core.button_test_open(n("10:03:59")));
        assert!(!core.button_test_open(n("10:04:00")), "five minutes");
    }

    #[test]
    fn a_staff_started_test_is_closed_by_a_sign_in_and_its_pins_count_towards_the_lockout() {
        let signed_in = Input::SignIn { pupil: pupil("p-1") };
        type Case<'a> = (&'a str, &'a [Step<'a>]);
        let report: &[&str] = &["blank", "mute", "stop_app"];
        let cases: [Case; 5] = [
            (
                "a sign-in during the window closes it: the pupil's press is a report",
                &[
                    ("09:59:00", staff_test(right(), true), Ok(&[]), Idle),
                    (
                        "09:59:30",
                        signed_in.clone(),
                        Ok(&["spool session_started p-1 at 09:59:30"]),
                        InSession,
                    ),
                    ("10:00:00", down("10:00:00"), Ok(report), Held),
                ],
            ),
            (
                "not while a pupil is signed in",
                &[
                    (
                        "09:58:00",
                        signed_in.clone(),
                        Ok(&["spool session_started p-1 at 09:58:00"]),
                        InSession,
                    ),
                    ("09:59:00", staff_test(right(), true), Err(Refused::InUse), InSession),
                    ("10:00:00", down("10:00:00"), Ok(report), Held),
                ],
            ),
            (
                "not while held",
                &[
                    ("09:58:00", down("09:58:00"), Ok(report), Held),
                    ("09:59:00", staff_test(right(), true), Err(Refused::Held), Held),
                ],
            ),
            (
                "no PIN, no test",
                &[
                    (
                        "09:59:00",
                        staff_test(PinCheck::Absent, true),
                        Err(Refused::PinRequired),
                        Idle,
                    ),
                    ("10:00:00", down("10:00:00"), Ok(report), Held),
                ],
            ),
            (
                "wrong PINs count towards the unlock's lockout, which then refuses the right one",
                &[
                    (
                        "09:59:01",
                        staff_test(PinCheck::Wrong, false),
                        Err(Refused::WrongPin { left: 2 }),
                        Idle,
                    ),
                    (
                        "09:59:02",
                        staff_test(PinCheck::Wrong, true),
                        Err(Refused::WrongPin { left: 1 }),
                        Idle,
                    ),
                    (
                        "09:59:03",
                        staff_test(PinCheck::Wrong, false),
                        Err(Refused::LockedOut { until: t("10:00:03") }),
                        Idle,
                    ),
                    (
                        "09:59:30",
                        staff_test(right(), true),
                        Err(Refused::LockedOut { until: t("10:00:03") }),
                        Idle,
                    ),
                    ("10:00:00", down("10:00:00"), Ok(report), Held),
                ],
            ),
        ];
        for (what, steps) in cases {
            eprintln!("case: {what}");
            check_with(rules(), steps);
        }
        // The lockout is the unlock's: a held device's pad is locked too, and a security
        // breach is recorded.
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        for at in ["09:59:01", "09:59:02", "09:59:03"] {
            let _ = core.step(n(at), staff_test(PinCheck::Wrong, false), &mut ids);
        }
        let breach = core.take_refused_commands();
        assert_eq!(breach.iter().map(show).collect::<Vec<_>>(), ["spool security_breach"]);
        assert_eq!(core.pin_track().lockouts, 1);
        assert_eq!(core.locked_until(n("09:59:30")), Some(t("10:00:03")));
    }

    #[test]
    fn software_presses_are_not_debounced() {
        check(&[
            ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("10:00:00", dark("10:00:00.01"), Ok(&[FILED_AT_10, "reassure"]), Held),
            (
                "10:00:00.02",
                unlock(),
                Ok(&[
                    "spool report_resolved close_app staff=s-1 at 10:00:00.020",
                    "restore",
                    "close_app",
                    "unmute",
                ]),
                Idle,
            ),
            ("10:00:00.03", press("10:00:00.030", None), Ok(&["blank", "mute", "stop_app"]), Held),
        ]);
    }

    #[test]
    fn a_key_down_while_the_key_is_down_is_ignored_and_a_long_hold_is_a_stuck_button() {
        let core = check_with(
            rules(),
            &[
                ("10:00:00", down("10:00:00"), Ok(&["blank", "mute", "stop_app"]), Held),
                ("10:00:00", dark("10:00:00.010"), Ok(&[FILED_AT_10, "reassure"]), Held),
                ("10:00:03", Input::Tick, Ok(&[]), Held),
                // A lost key-up: another key-down without one is not a new press.
                ("10:00:05", down("10:00:05"), Ok(&[]), Held),
                ("10:00:10", Input::Tick, Ok(&["button_health Some(Stuck)"]), Held),
                ("10:00:11", Input::Tick, Ok(&[]), Held),
                ("10:00:40", up("10:00:40"), Ok(&["button_health None"]), Held),
                ("10:00:41", up("10:00:41"), Ok(&[]), Held),
            ],
        );
        assert_eq!(core.button_fault(), None);
        assert_eq!(core.next_deadline(n("10:00:41")), None);
    }

    #[test]
    fn the_stuck_deadline_is_asked_for_and_kept() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        assert_eq!(core.next_deadline(n("10:00:00")), None);
        core.step(n("10:00:00"), down("10:00:00"), &mut ids).unwrap();
        assert_eq!(core.next_deadline(n("10:00:00")), Some(secs(10)));
        assert_eq!(core.next_deadline(n("10:00:04")), Some(secs(6)), "a deadline, not a delay");
        core.step(n("10:00:10"), Input::Tick, &mut ids).unwrap();
        assert_eq!(core.button_fault(), Some(ButtonFault::Stuck));
        assert_eq!(core.next_deadline(n("10:00:10")), None, "stuck is said once, not every tick");
    }

    #[test]
    fn a_missing_button_is_a_fault_until_it_is_back() {
        check_with(
            rules(),
            &[
                ("09:00:00", Input::ButtonPresent(true), Ok(&[]), Idle),
                (
                    "09:00:01",
                    Input::ButtonPresent(false),
                    Ok(&["button_health Some(Missing)"]),
                    Idle,
                ),
                ("09:00:02", Input::ButtonPresent(false), Ok(&[]), Idle),
                ("09:00:03", Input::ButtonPresent(true), Ok(&["button_health None"]), Idle),
                ("09:00:04", down("09:00:04"), Ok(&["blank", "mute", "stop_app"]), Held),
                ("09:00:14", Input::Tick, Ok(&["button_health Some(Stuck)"]), Held),
                // Unplugged while stuck: missing now, and not held down any more.
                (
                    "09:00:15",
                    Input::ButtonPresent(false),
                    Ok(&["button_health Some(Missing)"]),
                    Held,
                ),
                ("09:00:30", Input::Tick, Ok(&[]), Held),
                ("09:00:31", Input::ButtonPresent(true), Ok(&["button_health None"]), Held),
            ],
        );
    }

    #[test]
    fn a_key_down_proves_the_button_is_there() {
        check_with(
            rules(),
            &[
                (
                    "09:00:01",
                    Input::ButtonPresent(false),
                    Ok(&["button_health Some(Missing)"]),
                    Idle,
                ),
                (
                    "09:00:02",
                    down("09:00:02"),
                    Ok(&["button_health None", "blank", "mute", "stop_app"]),
                    Held,
                ),
            ],
        );
    }

    /// Each lockout, and only a lockout, is a `security_breach` event for the server, though
    /// the unlock is refused: a wrong PIN on its own or a try during the lockout is not.
    #[test]
    fn a_pin_lockout_is_a_security_breach_event() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        // (at, input, the lockout event it files: lockouts in a row, seconds locked)
        type Lockout = Option<(u32, u64)>;
        let steps: [(&str, Input, Lockout); 9] = [
            ("10:00:00", press("10:00:00", None), None),
            ("10:01:01", pin(PinCheck::Wrong), None),
            ("10:01:02", pin(PinCheck::Wrong), None),
            ("10:01:03", pin(PinCheck::Wrong), Some((1, 60))),
            ("10:01:30", pin(PinCheck::Wrong), None),
            ("10:02:03", pin(PinCheck::Wrong), None),
            ("10:02:04", pin(PinCheck::Wrong), None),
            ("10:02:05", pin(PinCheck::Wrong), Some((2, 120))),
            ("10:04:05", pin(right()), None),
        ];
        for (at, input, expected) in steps {
            let _ = core.step(n(at), input, &mut ids);
            let events: Vec<(u32, u64, DateTime<Utc>)> = core
                .take_refused_commands()
                .into_iter()
                .map(|c| match c {
                    Command::Spool(Event {
                        at,
                        body:
                            EventBody::SecurityBreach {
                                breach: Breach::PinLockout { wrong_pins: 3, lockouts, locked_for_s },
                            },
                        ..
                    }) => (lockouts, locked_for_s, at),
                    other => panic!("{other:?}"),
                })
                .collect();
            let expected: Vec<_> = expected.map(|(l, s)| (l, s, t(at))).into_iter().collect();
            assert_eq!(events, expected, "{at}");
        }
    }

    #[test]
    fn wrong_pins_lock_unlocking_for_longer_each_time_and_a_right_one_resets() {
        let core = check_with(
            rules(),
            &[
                ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                ("10:00:00", dark("10:00:00.010"), Ok(&[FILED_AT_10, "reassure"]), Held),
                ("10:01:00", pin(PinCheck::Absent), Err(Refused::PinRequired), Held),
                ("10:01:01", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 2 }), Held),
                ("10:01:02", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 1 }), Held),
                (
                    "10:01:03",
                    pin(PinCheck::Wrong),
                    Err(Refused::LockedOut { until: t("10:02:03") }),
                    Held,
                ),
                // Locked: even the right PIN is refused, and wrong ones do not extend it.
                ("10:01:30", pin(right()), Err(Refused::LockedOut { until: t("10:02:03") }), Held),
                (
                    "10:01:31",
                    pin(PinCheck::Wrong),
                    Err(Refused::LockedOut { until: t("10:02:03") }),
                    Held,
                ),
                ("10:02:03", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 2 }), Held),
                ("10:02:04", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 1 }), Held),
                // The second lockout is twice as long.
                (
                    "10:02:05",
                    pin(PinCheck::Wrong),
                    Err(Refused::LockedOut { until: t("10:04:05") }),
                    Held,
                ),
                (
                    "10:04:05",
                    pin(right()),
                    Ok(&[
                        "spool report_resolved close_app staff=s-1 at 10:04:05",
                        "restore",
                        "close_app",
                        "unmute",
                    ]),
                    Idle,
                ),
                // Not held: a PIN is not even looked at, so it cannot be guessed here.
                ("10:05:00", pin(PinCheck::Wrong), Err(Refused::NotHeld), Idle),
                ("10:06:00", press("10:06:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                // The right PIN reset the count and the escalation.
                ("10:06:01", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 2 }), Held),
                ("10:06:02", pin(PinCheck::Wrong), Err(Refused::WrongPin { left: 1 }), Held),
                (
                    "10:06:03",
                    pin(PinCheck::Wrong),
                    Err(Refused::LockedOut { until: t("10:07:03") }),
                    Held,
                ),
            ],
        );
        assert_eq!(core.locked_until(n("10:07:00")), Some(t("10:07:03")));
        assert_eq!(core.locked_until(n("10:07:03")), None);
    }

    #[test]
    fn lockouts_double_up_to_the_longest() {
        let policy = rules().lockout;
        let cases = [(0, 60), (1, 60), (2, 120), (3, 240), (4, 240), (40, 240), (u32::MAX, 240)];
        for (n, secs) in cases {
            assert_eq!(policy.duration(n), Duration::from_secs(secs), "lockout {n}");
        }
    }

    #[test]
    fn without_a_staff_pin_the_device_stays_held() {
        // The hold never fails open: no PIN in force means nobody can unlock, not anybody.
        let mut no_pin = rules();
        no_pin.pin_in_force = false;
        let core = check_with(
            no_pin,
            &[
                ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                ("10:00:01", pin(PinCheck::Absent), Err(Refused::NoStaffPin), Held),
                ("10:00:02", pin(right()), Err(Refused::NoStaffPin), Held),
                ("10:00:03", pin(PinCheck::Wrong), Err(Refused::NoStaffPin), Held),
            ],
        );
        assert_eq!(core.locked_until(n("10:00:04")), None, "no PIN to get wrong: no lockout");
        let mut pin_arrives = core;
        pin_arrives.set_pin_in_force(true);
        let mut ids = SequentialIds::default();
        assert!(pin_arrives.step(n("10:00:05"), pin(right()), &mut ids).is_ok());
        assert_eq!(pin_arrives.state_kind(), Idle);
    }

    #[test]
    fn each_staff_choice_is_recorded_and_carried_out() {
        let cases = [
            (ResolutionChoice::CloseApp, "close_app", "close_app"),
            (ResolutionChoice::FalseAlarm, "false_alarm", "resume_app"),
            (ResolutionChoice::BlockSite, "block_site", "close_app"),
        ];
        for (choice, recorded, app) in cases {
            let resolved = format!("spool report_resolved {recorded} staff=t-04 at 10:05:00");
            check_with(
                rules(),
                &[
                    ("10:00:00", press("10:00:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                    ("10:00:00", dark("10:00:00.010"), Ok(&[FILED_AT_10, "reassure"]), Held),
                    (
                        "10:05:00",
                        unlock_as(PinCheck::Right(StaffId::new("t-04").unwrap()), choice),
                        Ok(&[resolved.as_str(), "restore", app, "unmute"]),
                        Idle,
                    ),
                ],
            );
        }
    }

    #[test]
    fn the_resolution_names_the_report_it_resolves() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.step(n("10:00:00"), press("10:00:00", None), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let cs = core
            .step(
                n("10:03:00"),
                unlock_as(
                    PinCheck::Right(StaffId::new("t-04").unwrap()),
                    ResolutionChoice::BlockSite,
                ),
                &mut ids,
            )
            .unwrap();
        let resolved: Vec<_> = cs
            .iter()
            .filter_map(|c| match c {
                Command::Spool(e) if e.body.kind() == "report_resolved" => Some(e.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            resolved[0].body,
            EventBody::ReportResolved {
                report,
                choice: ResolutionChoice::BlockSite,
                staff: Some(StaffId::new("t-04").unwrap()),
            }
        );
        assert_eq!(resolved[0].at, t("10:03:00"));
        assert_ne!(resolved[0].id, report);
        resolved[0].validate().unwrap();
    }

    /// `p-1` signs in at `at` (test tables only: the expected line is leaked to be `'static`).
    fn signed_in(at: &'static str) -> Step<'static> {
        let line: &'static str =
            Box::leak(format!("spool session_started p-1 at {}", t(at).time()).into_boxed_str());
        let lines: &'static [&'static str] = Box::leak(vec![line].into_boxed_slice());
        (at, Input::SignIn { pupil: pupil("p-1") }, Ok(lines), InSession)
    }

    fn kinds(cs: &[Command]) -> Vec<&'static str> {
        cs.iter()
            .map(|c| match c {
                Command::Spool(e) => e.body.kind(),
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn pupil_events_need_a_pupil_on_screen() {
        let app = || Input::AppOpened { app: "maths".into() };
        let aup = || Input::AupAccepted {
            key_stage: "ks1".into(),
            text_version: "ks1-0123abcd".into(),
            school_version: Some(2),
        };
        check(&[
            ("08:59:00", app(), Err(Refused::NotSignedIn), Idle),
            ("08:59:00", aup(), Err(Refused::NotSignedIn), Idle),
            ("08:59:00", Input::Activity, Err(Refused::NotSignedIn), Idle),
            signed_in("09:00:00"),
            ("09:00:01", aup(), Ok(&["spool aup_accepted"]), InSession),
            ("09:00:02", app(), Ok(&["spool app_opened"]), InSession),
            ("09:00:03", Input::Activity, Ok(&[]), InSession),
            ("09:01:00", press("09:01:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("09:01:01", app(), Err(Refused::Held), Held),
            ("09:01:01", Input::Activity, Err(Refused::Held), Held),
        ]);
    }

    #[test]
    fn pupil_events_name_the_session_and_pupil() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        core.step(n("09:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        let session = core.session().unwrap().id;
        let cs =
            core.step(n("09:00:05"), Input::AppOpened { app: "maths".into() }, &mut ids).unwrap();
        let Command::Spool(e) = &cs[0] else { panic!("{cs:?}") };
        assert_eq!(
            e.body,
            EventBody::AppOpened { session, pupil: pupil("p-1"), app: "maths".into() }
        );
        assert_eq!(e.at, t("09:00:05"));
        e.validate().unwrap();
        let cs = core
            .step(
                n("09:00:06"),
                Input::FilterBlocked {
                    layer: FilterLayer::Dns,
                    target: "x.example".into(),
                    rule: "exact:x.example".into(),
                    list: "adult".into(),
                },
                &mut ids,
            )
            .unwrap();
        let Command::Spool(e) = &cs[0] else { panic!("{cs:?}") };
        let EventBody::FilterBlocked { session: s, pupil: p, .. } = &e.body else { panic!() };
        assert_eq!((s, p), (&Some(session), &Some(pupil("p-1"))));
        e.validate().unwrap();
    }

    #[test]
    fn filter_blocks_and_refused_devices_are_filed_in_any_state() {
        let blocked = || Input::FilterBlocked {
            layer: FilterLayer::Dns,
            target: "x.example".into(),
            rule: "exact:x.example".into(),
            list: "adult".into(),
        };
        let usb = || Input::DeviceRefused {
            kind: RefusedDevice::UsbStorage,
            description: "0781:5567 SanDisk".into(),
        };
        check(&[
            ("08:00:00", blocked(), Ok(&["spool filter_blocked"]), Idle),
            ("08:00:01", usb(), Ok(&["spool device_refused"]), Idle),
            ("08:01:00", press("08:01:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("08:01:01", blocked(), Ok(&["spool filter_blocked"]), Held),
            ("08:01:02", usb(), Ok(&["spool device_refused"]), Held),
        ]);
    }

    #[test]
    fn tell_teacher_files_a_block_page_report_without_darkness_or_hold() {
        let tell = || Input::TellTeacher {
            url: Some("https://blocked.example/page".into()),
            app: Some("browser".into()),
            recent_names: vec!["blocked.example".into()],
        };
        check(&[
            (
                "08:00:00",
                tell(),
                Ok(&["spool report_filed pupil=- app=browser at 08:00:00 latency=None"]),
                Idle,
            ),
            signed_in("09:00:00"),
            (
                "09:00:10",
                tell(),
                Ok(&["spool report_filed pupil=p-1 app=browser at 09:00:10 latency=None"]),
                InSession,
            ),
        ]);
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        let cs = core.step(n("08:00:00"), tell(), &mut ids).unwrap();
        let Command::Spool(e) = &cs[0] else { panic!() };
        let EventBody::ReportFiled { origin, recent_names, .. } = &e.body else { panic!() };
        assert_eq!(*origin, ReportOrigin::BlockPage);
        assert_eq!(recent_names, &vec!["blocked.example".to_string()]);
        e.validate().unwrap();
        assert_eq!(core.held_report(), None);
    }

    #[test]
    fn the_names_looked_up_before_a_press_go_in_its_report() {
        let mut core = Core::new(device());
        let mut ids = SequentialIds::default();
        core.step(n("10:00:00"), press("10:00:00", None), &mut ids).unwrap();
        let report = core.held_report().unwrap();
        let names = vec!["b.example".to_string(), "a.example".to_string()];
        let other = ids.event_id();
        // Names for another report are not this one's.
        core.step(
            n("10:00:00"),
            Input::RecentNames { report: other, names: vec!["z.example".into()] },
            &mut ids,
        )
        .unwrap();
        assert_eq!(
            core.step(n("10:00:00"), Input::RecentNames { report, names: names.clone() }, &mut ids),
            Ok(vec![])
        );
        let cs = core
            .step(
                n("10:00:01"),
                Input::ScreenDark { report, confirmed_at: t("10:00:00.01") },
                &mut ids,
            )
            .unwrap();
        let Command::Spool(e) = &cs[0] else { panic!() };
        let EventBody::ReportFiled { recent_names, origin, .. } = &e.body else { panic!() };
        assert_eq!(recent_names, &names);
        assert_eq!(*origin, ReportOrigin::Button);
    }

    #[test]
    fn sign_out_all_ends_the_session_as_signed_out_by_staff() {
        check(&[
            ("08:00:00", Input::SignOutAll, Ok(&[]), Idle),
            signed_in("09:00:00"),
            (
                "09:10:00",
                Input::SignOutAll,
                Ok(&["spool session_ended p-1 09:00:00..09:10:00 SignedOutByStaff"]),
                Idle,
            ),
            signed_in("09:20:00"),
            ("09:21:00", press("09:21:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("09:22:00", Input::SignOutAll, Err(Refused::Held), Held),
        ]);
    }

    #[test]
    fn eyes_on_me_pauses_the_app_and_a_press_still_works_under_it() {
        let lock = || Input::LockScreens(true);
        let unlock_screens = || Input::LockScreens(false);
        let core = check(&[
            signed_in("09:00:00"),
            ("09:01:00", lock(), Ok(&["mute", "stop_app"]), InSession),
            // Not held: the paused app stays silent and so does the kiosk.
            ("09:01:00.1", stopped(true), Ok(&[]), InSession),
            ("09:01:01", lock(), Ok(&[]), InSession),
            ("09:02:00", unlock_screens(), Ok(&["resume_app", "unmute"]), InSession),
            ("09:02:01", unlock_screens(), Ok(&[]), InSession),
            ("09:03:00", lock(), Ok(&["mute", "stop_app"]), InSession),
            ("09:03:01", press("09:03:01", None), Ok(&["blank", "mute", "stop_app"]), Held),
            ("09:03:01.1", stopped(true), Ok(&["unmute"]), Held),
            // Held: the app waits for staff, whatever the teacher's screen lock does.
            ("09:03:02", unlock_screens(), Ok(&[]), Held),
            ("09:03:03", lock(), Ok(&[]), Held),
            (
                "09:04:00",
                unlock_as(right(), ResolutionChoice::FalseAlarm),
                Ok(&[
                    "spool report_filed pupil=p-1 app=- at 09:03:01 latency=None",
                    "spool report_resolved false_alarm staff=s-1 at 09:04:00",
                    "restore",
                    // Still "eyes on me": silent again, as before the press.
                    "mute",
                ]),
                InSession,
            ),
            ("09:05:00", unlock_screens(), Ok(&["resume_app", "unmute"]), InSession),
        ]);
        assert!(!core.screens_locked());
    }

    fn idle_rules(min: u64) -> SessionRules {
        SessionRules {
            idle_timeout: Some(Duration::from_secs(min * 60)),
            ..SessionRules::default()
        }
    }

    fn check_sessions(sessions: SessionRules, steps: &[Step]) -> Core {
        let mut core = Core::with_rules(device(), Rules { pin_in_force: true, ..Rules::default() });
        core.set_session_rules(sessions);
        let mut ids = SequentialIds::default();
        for (i, (at, input, expected, state)) in steps.iter().enumerate() {
            let got = core
                .step(n(at), input.clone(), &mut ids)
                .map(|cs| cs.iter().map(show).collect::<Vec<_>>());
            let want = expected.map(|cs| cs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "step {i} ({input:?})");
            assert_eq!(core.state_kind(), *state, "state after step {i}");
        }
        core
    }

    #[test]
    fn no_activity_for_the_idle_timeout_ends_the_session() {
        check_sessions(
            idle_rules(10),
            &[
                signed_in("09:00:00"),
                ("09:09:59", Input::Tick, Ok(&[]), InSession),
                ("09:05:00", Input::Activity, Ok(&[]), InSession),
                ("09:10:00", Input::Tick, Ok(&[]), InSession),
                ("09:14:59", Input::Tick, Ok(&[]), InSession),
                (
                    "09:12:00",
                    Input::AppOpened { app: "maths".into() },
                    Ok(&["spool app_opened"]),
                    InSession,
                ),
                ("09:21:59", Input::Tick, Ok(&[]), InSession),
                (
                    "09:22:00",
                    Input::Tick,
                    Ok(&["spool session_ended p-1 09:00:00..09:22:00 IdleTimeout"]),
                    Idle,
                ),
                ("09:40:00", Input::Tick, Ok(&[]), Idle),
            ],
        );
    }

    #[test]
    fn the_idle_deadline_is_asked_for() {
        let mut core = Core::new(device());
        core.set_session_rules(idle_rules(10));
        let mut ids = SequentialIds::default();
        assert_eq!(core.next_deadline(n("09:00:00")), None);
        core.step(n("09:00:00"), Input::SignIn { pupil: pupil("p-1") }, &mut ids).unwrap();
        assert_eq!(core.next_deadline(n("09:00:00")), Some(secs(600)));
        core.step(n("09:03:00"), Input::Activity, &mut ids).unwrap();
        assert_eq!(core.next_deadline(n("09:03:00")), Some(secs(600)));
        core.step(n("09:03:30"), down("09:03:30"), &mut ids).unwrap();
        // Held: only the stuck button is waited for.
        assert_eq!(core.next_deadline(n("09:03:30")), Some(secs(10)));
    }

    #[test]
    fn a_held_device_or_eyes_on_me_never_times_out() {
        check_sessions(
            idle_rules(10),
            &[
                signed_in("09:00:00"),
                ("09:01:00", Input::LockScreens(true), Ok(&["mute", "stop_app"]), InSession),
                ("09:30:00", Input::Tick, Ok(&[]), InSession),
                // The idle timer starts again when eyes on me ends.
                ("09:31:00", Input::LockScreens(false), Ok(&["resume_app", "unmute"]), InSession),
                ("09:40:59", Input::Tick, Ok(&[]), InSession),
                ("09:40:00", press("09:40:00", None), Ok(&["blank", "mute", "stop_app"]), Held),
                ("11:00:00", Input::Tick, Ok(&[]), Held),
                (
                    "11:00:01",
                    pin(right()),
                    Ok(&[
                        "spool report_filed pupil=p-1 app=- at 09:40:00 latency=None",
                        "spool report_resolved close_app staff=s-1 at 11:00:01",
                        "restore",
                        "close_app",
                        "unmute",
                    ]),
                    InSession,
                ),
                ("11:10:00", Input::Tick, Ok(&[]), InSession),
                (
                    "11:10:01",
                    Input::Tick,
                    Ok(&["spool session_ended p-1 09:00:00..11:10:01 IdleTimeout"]),
                    Idle,
                ),
            ],
        );
    }

    fn lessons(ends: &[&str], offset_h: i32) -> SessionRules {
        SessionRules {
            idle_timeout: None,
            lesson_ends: ends.iter().map(|e| e.parse().unwrap()).collect(),
            utc_offset: FixedOffset::east_opt(offset_h * 3600),
        }
    }

    #[test]
    fn a_lesson_end_ends_the_sessions_started_before_it() {
        check_sessions(
            lessons(&["10:30:00", "12:00:00"], 0),
            &[
                signed_in("10:00:00"),
                ("10:29:59", Input::Tick, Ok(&[]), InSession),
                (
                    "10:30:00",
                    Input::Tick,
                    Ok(&["spool session_ended p-1 10:00:00..10:30:00 EndOfLesson"]),
                    Idle,
                ),
                // Signed in exactly at the lesson end: it is the next lesson's session.
                signed_in("10:30:00"),
                ("10:30:01", Input::Tick, Ok(&[]), InSession),
                ("11:59:59", Input::Tick, Ok(&[]), InSession),
                (
                    "12:00:05",
                    Input::Tick,
                    Ok(&["spool session_ended p-1 10:30:00..12:00:05 EndOfLesson"]),
                    Idle,
                ),
            ],
        );
    }

    #[test]
    fn lesson_ends_are_local_times() {
        // UTC+1 (British Summer Time): the 10:30 lesson end is 09:30 UTC.
        let rules = lessons(&["10:30:00"], 1);
        assert_eq!(rules.next_lesson_end(t("09:00:00")), Some(t("09:30:00")));
        assert_eq!(
            rules.next_lesson_end(t("09:30:00")),
            Some("2026-11-18T09:30:00Z".parse().unwrap())
        );
        assert_eq!(lessons(&[], 1).next_lesson_end(t("09:00:00")), None);
        check_sessions(
            rules,
            &[
                signed_in("09:00:00"),
                ("09:29:59", Input::Tick, Ok(&[]), InSession),
                (
                    "09:30:00",
                    Input::Tick,
                    Ok(&["spool session_ended p-1 09:00:00..09:30:00 EndOfLesson"]),
                    Idle,
                ),
            ],
        );
        // An evening session ends at the next morning's lesson end.
        let rules = lessons(&["10:30:00"], 0);
        assert_eq!(
            rules.next_lesson_end(t("18:00:00")),
            Some("2026-11-18T10:30:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_recorded_pin_track_is_kept_within_the_rules() {
        let lockout = Lockout {
            wrong_before_lockout: 3,
            first: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        let track = |wrong, lockouts, until: Option<&str>| PinTrack {
            wrong_in_a_row: wrong,
            lockouts,
            locked_until: until.map(t),
        };
        let cases = [
            ("nothing", track(0, 0, None), track(0, 0, None)),
            ("a count below the threshold", track(2, 1, None), track(2, 1, None)),
            ("a lowered threshold", track(7, 0, None), track(2, 0, None)),
            ("a lockout in force", track(0, 2, Some("10:02:00")), track(0, 2, Some("10:02:00"))),
            ("a lockout that has ended", track(0, 2, Some("09:59:00")), track(0, 2, None)),
            ("a clock stepped back", track(0, 4, Some("23:00:00")), track(0, 4, Some("10:10:00"))),
        ];
        for (what, recorded, want) in cases {
            assert_eq!(recorded.restored(t("10:00:00"), &lockout), want, "{what}");
        }
    }

    #[test]
    fn a_restored_lockout_refuses_even_the_right_pin_and_keeps_doubling() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.restore_pin_track(
            n("10:00:00"),
            PinTrack { wrong_in_a_row: 0, lockouts: 1, locked_until: Some(t("10:01:00")) },
        );
        core.step(n("10:00:05"), press("10:00:05", None), &mut ids).unwrap();
        assert_eq!(
            core.step(n("10:00:10"), pin(right()), &mut ids),
            Err(Refused::LockedOut { until: t("10:01:00") })
        );
        let mut last = Ok(vec![]);
        for _ in 0..core.rules().lockout.wrong_before_lockout {
            last = core.step(n("10:01:00"), pin(PinCheck::Wrong), &mut ids);
        }
        // The second lockout: twice the first.
        assert_eq!(last, Err(Refused::LockedOut { until: t("10:03:00") }));
        assert_eq!(core.pin_track().lockouts, 2);
    }

    #[test]
    fn a_held_report_is_held_again_after_a_restart() {
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        let report = ids.event_id();
        let cs = core.step(n("10:00:00"), Input::RestoreHeld { report }, &mut ids).unwrap();
        assert_eq!(cs.iter().map(show).collect::<Vec<_>>(), ["blank", "reassure"]);
        assert_eq!(core.held_report(), Some(report));
        // The darkness answer files nothing: the report was filed before the restart.
        let cs = core
            .step(
                n("10:00:00"),
                Input::ScreenDark { report, confirmed_at: t("10:00:00") },
                &mut ids,
            )
            .unwrap();
        assert!(cs.is_empty(), "{cs:?}");
        assert_eq!(
            core.step(n("10:00:01"), Input::RestoreHeld { report }, &mut ids),
            Err(Refused::Held)
        );
        assert_eq!(
            core.step(n("10:00:02"), pin(PinCheck::Absent), &mut ids),
            Err(Refused::PinRequired)
        );
        let cs = core.step(n("10:00:03"), pin(right()), &mut ids).unwrap();
        // Restore, close the app, and the sound on again.
        assert_eq!(kinds(&cs), ["report_resolved", "other", "other", "other"]);
        assert_eq!(core.state_kind(), Idle);
    }

    /// The wall clock saying `wall`, `boot` seconds (and `ms` milliseconds) after boot: a wall
    /// clock that jumps is one that does not move as the time since boot does.
    fn jumped(wall: &str, boot: u64, ms: u64) -> Now {
        Now { wall: t(wall), since_boot: secs(boot) + Duration::from_millis(ms) }
    }

    /// The reports among `commands`: their time and blank latency.
    fn reports(commands: &[Command]) -> Vec<(DateTime<Utc>, Option<u64>)> {
        commands
            .iter()
            .filter_map(|c| match c {
                Command::Spool(Event {
                    at,
                    body: EventBody::ReportFiled { blank_latency_us, .. },
                    ..
                }) => Some((*at, *blank_latency_us)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_press_while_the_wall_clock_jumps_files_one_report_at_the_press_time() {
        // Pressed at 10:00:00 by the wall clock; darkness 50 ms later since boot, when the wall
        // clock says `confirmed`.
        let cases = [
            ("steady", "10:00:00.050", 50_000),
            ("stepped back an hour", "09:00:00.050", 0),
            ("stepped forward an hour", "11:00:00.050", 50_000),
        ];
        for (case, confirmed, latency) in cases {
            let mut core = Core::with_rules(device(), rules());
            let mut ids = SequentialIds::default();
            let mut filed =
                core.step(jumped("10:00:00", 1000, 0), press("10:00:00", None), &mut ids).unwrap();
            let report = core.held_report().unwrap();
            // Pressed again on the jumped clock: the same hold, nothing more.
            let again = core.step(jumped(confirmed, 1000, 20), press(confirmed, None), &mut ids);
            assert_eq!(again, Ok(vec![]), "{case}");
            let dark = Input::ScreenDark { report, confirmed_at: t(confirmed) };
            filed.extend(core.step(jumped(confirmed, 1000, 50), dark, &mut ids).unwrap());
            let later = Input::ScreenDark { report, confirmed_at: t(confirmed) };
            filed.extend(core.step(jumped(confirmed, 1001, 0), later, &mut ids).unwrap());
            filed.extend(core.step(jumped(confirmed, 1002, 0), unlock(), &mut ids).unwrap());
            assert_eq!(reports(&filed), [(t("10:00:00"), Some(latency))], "{case}: one report");
        }
    }

    #[test]
    fn a_lockout_lasts_its_time_since_boot_whatever_the_wall_clock_does() {
        // Three wrong PINs lock unlocking out for 60 s (from 1003 s since boot).
        let mut core = Core::with_rules(device(), rules());
        let mut ids = SequentialIds::default();
        core.step(jumped("10:00:00", 1000, 0), press("10:00:00", None), &mut ids).unwrap();
        for boot in 1001..=1003 {
            let _ = core.step(jumped("10:00:00", boot, 0), pin(PinCheck::Wrong), &mut ids);
        }
        assert_eq!(core.locked_until(jumped("10:00:03", 1003, 0)), Some(t("10:01:03")));
        // (wall clock, since boot, what the right PIN gets: `Err(until)` still locked out)
        type Step<'a> = (&'a str, u64, Result<(), DateTime<Utc>>);
        let steps: [Step; 4] = [
            ("12:00:10", 1010, Err(t("12:01:03"))),
            ("08:00:30", 1030, Err(t("08:01:03"))),
            ("10:01:02", 1062, Err(t("10:01:03"))),
            ("08:01:03", 1063, Ok(())),
        ];
        for (wall, boot, expected) in steps {
            let got = core.step(jumped(wall, boot, 0), pin(right()), &mut ids).map(|_| ());
            let expected = expected.map_err(|until| Refused::LockedOut { until });
            assert_eq!(got, expected, "at {wall}, {boot} s since boot");
        }
        assert_eq!(core.state_kind(), Idle);
        assert_eq!(core.locked_until(jumped("08:01:04", 1064, 0)), None);
    }

    #[test]
    fn the_idle_timeout_runs_since_boot_whatever_the_wall_clock_does() {
        let mut core = Core::new(device());
        core.set_session_rules(idle_rules(10));
        let mut ids = SequentialIds::default();
        core.step(jumped("09:00:00", 1000, 0), Input::SignIn { pupil: pupil("p-1") }, &mut ids)
            .unwrap();
        // (wall clock, since boot, the wait left after a tick, whether the session ended)
        let steps = [
            ("12:01:00", 1060, Some(secs(540)), false),
            ("07:05:00", 1300, Some(secs(300)), false),
            ("07:09:59", 1599, Some(secs(1)), false),
            ("07:10:00", 1600, None, true),
        ];
        for (wall, boot, left, ended) in steps {
            let now = jumped(wall, boot, 0);
            let cs = core.step(now, Input::Tick, &mut ids).unwrap();
            let ends: Vec<_> = cs
                .iter()
                .filter_map(|c| match c {
                    Command::Spool(Event {
                        at,
                        body: EventBody::SessionEnded { reason, .. },
                        ..
                    }) => Some((*at, *reason)),
                    _ => None,
                })
                .collect();
            // A wall clock stepped back before the sign-in: the end is not before the start.
            let expected =
                if ended { vec![(t("09:00:00"), SessionEndReason::IdleTimeout)] } else { vec![] };
            assert_eq!(ends, expected, "at {wall}, {boot} s since boot");
            assert_eq!(core.next_deadline(now), left, "at {wall}, {boot} s since boot");
        }
    }

    #[test]
    fn a_lockout_read_back_after_a_restart_lasts_what_is_left_of_it() {
        let mut core = Core::with_rules(device(), rules());
        let track = PinTrack { wrong_in_a_row: 0, lockouts: 1, locked_until: Some(t("10:01:00")) };
        // slated restarted (a new time since boot) 30 s before the lockout's recorded end.
        core.restore_pin_track(jumped("10:00:30", 5, 0), track);
        assert_eq!(core.locked_until(jumped("10:00:30", 5, 0)), Some(t("10:01:00")));
        // The wall clock is then stepped forward an hour: 20 s are left all the same.
        assert_eq!(core.locked_until(jumped("11:00:40", 15, 0)), Some(t("11:01:00")));
        assert_eq!(core.locked_until(jumped("11:00:50", 35, 0)), None);
    }
}
