//! `slated` wired together: the imperative shell around [`crate::core`]. Owns startup, the task
//! that holds the core and carries out its commands, and shutdown; must hold no rule of its own
//! (what a press or a sign-in means is the core's) and no protocol details (those are
//! [`crate::control`]'s and [`crate::upload`]'s).
//!
//! ```text
//!  button task ─edges──▶ ┌────────────┐ ──BlankScreen/Stop/…──▶ display, apps
//!  control socket ──────▶ │ Driver     │ ──Spool(event)────────▶ spool ──wake──▶ uploader ──▶ server
//!        ◀──reply───────  │  (core)    │ ◀─ScreenDark/BlankFailed─ display
//!                         └────────────┘
//! ```
//!
//! The driver is one task, so inputs are applied one at a time, each to completion (a press is
//! blanked, confirmed and fsync'd before the next request is looked at).

use crate::activity::{self, ActivityDevices, EvdevActivity, RateLimit};
use crate::apps::{AppProcess, Apps, CgroupApps, CommandMute};
use crate::button::{self, ButtonEvent, EvdevButton, StdinButton};
use crate::clock::{ClockWatch, SystemClock};
use crate::config::{ButtonConfig, Config};
use crate::control::{self, ControlMsg, PeerUsers, Role};
use crate::core::{
    Command, Core, Foreground, Ids, Input, Now, PinCheck, PinTrack, Refused, StateKind, Unlock,
};
use crate::credential;
use crate::display::{Display, SystemDisplay};
use crate::dns::{DnsSocket, RECENT_TIMEOUT};
use crate::led::{led_pattern, LedInputs, LedPattern};
use crate::policy::{profile_for, HttpDeviceApi, PolicyFetcher, PolicyFiles};
use crate::roster;
use crate::spool::{SharedSpool, Spool, SpoolError};
use crate::staff::{StaffPin, UnlockPins};
use crate::update::Presence;
use crate::upload::{HttpTransport, UploadSettings, Uploader};
use chrono::{DateTime, Utc};
use slate_ipc::control::{Pin, Reply, Request};
use slate_ipc::listen::BindError;
use slate_protocol::device::{CommandAction, DeviceCommand};
use slate_protocol::kiosk::Policy as KioskPolicy;
use slate_protocol::staff::StaffPins;
use slate_protocol::{
    Breach, ButtonFault, DeviceNumber, DisplayFault, Event, EventBody, EventId, ResolutionChoice,
    SessionId,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// How long the display may take to confirm darkness before the report is filed without it.
pub const BLANK_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the LED's pattern is worked out again while the device is held.
const LED_REFRESH: Duration = Duration::from_millis(500);
/// How long the LED answers a press during the button test.
const TESTED_SHOWN: Duration = Duration::from_secs(2);
/// How often a spool that could not take events (a full card) is tried again.
const SPOOL_RETRY: Duration = Duration::from_secs(1);
/// How often the display's fault is looked at again (the compositor comes and goes).
const DISPLAY_REFRESH: Duration = Duration::from_secs(5);

/// What the heartbeat says of the screen. Pure.
pub fn display_fault(last_press_not_dark: bool, can_darken: bool) -> Option<DisplayFault> {
    match (last_press_not_dark, can_darken) {
        (true, _) => Some(DisplayFault::LastPressNotDark),
        (false, false) => Some(DisplayFault::CannotDarken),
        (false, true) => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Control(#[from] BindError),
    #[error("no device number (`slate_daemon::setup` finds it before the daemon starts)")]
    NoNumber,
}

/// Where the held report's id is kept (in the state directory) so that a restart comes up held.
pub const HELD_FILE: &str = "held";

/// Where wrong staff PINs and lockouts are kept (in the state directory) so that killing slated
/// does not reset them.
pub const PINS_FILE: &str = "pin-lockout.json";

/// The wrong PINs and lockouts recorded in `<state_dir>/pin-lockout.json`: `Ok(None)` when there
/// is no file, `Err` naming the problem when it cannot be read or understood.
pub fn load_pins(state_dir: &std::path::Path) -> Result<Option<PinTrack>, String> {
    let path = state_dir.join(PINS_FILE);
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(bytes) if bytes.len() > 4096 => Err(format!("{}: too large", path.display())),
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// Something from outside the device's own inputs that the core task must take in.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A newer kiosk policy was installed (or the cached one, at start).
    Policy(Box<KioskPolicy>),
    /// A newer staff document (who may unlock) was installed.
    StaffPins(Box<StaffPins>),
    /// A teacher's command that is still live.
    Teacher(DeviceCommand),
    /// A security breach seen outside the core (a policy or list refused): filed as an event.
    Breach(Breach),
    /// A filter check's answer ([`crate::filter_check`], always a `filter_checked` body): filed
    /// as an event.
    FilterChecked(EventBody),
    /// What slated did with timed root ssh ([`crate::ssh_access`], always an `ssh_access`
    /// body): filed as an event.
    SshAccess(EventBody),
}

/// The held report a restart must come back to, from `<state_dir>/held`: the report's id (as
/// older versions wrote it, and as a restored hold is written) or the whole report.
pub fn load_held(state_dir: &std::path::Path) -> Option<EventId> {
    let text = std::fs::read_to_string(state_dir.join(HELD_FILE)).ok()?;
    match load_held_report(state_dir) {
        Some(report) => Some(report.id),
        None => serde_json::from_value(serde_json::Value::String(text.trim().to_owned())).ok(),
    }
}

/// The whole held report, when `<state_dir>/held` holds it: it is written there before the
/// report is spooled, so a stop between the two brings back both the hold and the report.
pub fn load_held_report(state_dir: &std::path::Path) -> Option<Event> {
    let bytes = std::fs::read(state_dir.join(HELD_FILE)).ok()?;
    let event: Event = serde_json::from_slice(&bytes).ok()?;
    matches!(event.body, EventBody::ReportFiled { .. }).then_some(event)
}

/// Files the held report again if the spool does not have it: the hold was recorded and the
/// process stopped before the report was spooled. If it was spooled and already uploaded, the
/// server ignores the second copy (it stores each id once).
pub fn refile_held_report(spool: &mut Spool, report: &Event) -> Result<bool, SpoolError> {
    if spool.contains(report.id) {
        return Ok(false);
    }
    spool.append(report)?;
    Ok(true)
}

/// UUIDv7s from the clock: the daemon's ids.
#[derive(Debug, Default)]
pub struct ClockIds;

impl Ids for ClockIds {
    fn event_id(&mut self) -> EventId {
        EventId::new()
    }

    fn session_id(&mut self) -> SessionId {
        SessionId::new()
    }
}

/// The task that owns the core and carries out its commands through the adapters.
pub struct Driver<D: Display, A: Apps, I: Ids + Send + 'static = ClockIds> {
    core: Core,
    ids: I,
    display: D,
    apps: A,
    spool: SharedSpool,
    /// Notified after each event is spooled, to wake the uploader.
    wake: Arc<Notify>,
    enrolled: Arc<AtomicBool>,
    /// What is on screen, as last told; recorded by the next report.
    foreground: Option<Foreground>,
    blank_timeout: Duration,
    /// Every PIN that may unlock now (the staff document's and IT's); empty: nobody can.
    pins: Arc<UnlockPins>,
    /// The staff document in force.
    staff_doc: Option<StaffPins>,
    /// The button's fault as the core last said it, for heartbeats and `status`.
    button_fault: watch::Sender<Option<ButtonFault>>,
    /// Whether a press would darken the screen, for heartbeats and `status`.
    display_fault: watch::Sender<Option<DisplayFault>>,
    /// The last press did not darken the screen (until one does).
    last_blank_failed: bool,
    /// What the status LED shows.
    led: watch::Sender<LedPattern>,
    /// When a press during the button test was seen: the LED answers it for a moment.
    button_tested_at: Option<Instant>,
    /// slate-dns: recent names for reports, the signed-in pupil's profile.
    dns: DnsSocket,
    /// When the kiosk policy in force was issued, for `status`.
    policy_issued_at: Option<DateTime<Utc>>,
    /// The kiosk policy in force (pupil -> class for the filter profile).
    kiosk: Option<KioskPolicy>,
    /// IT's own PIN from slate.toml (recorded as staff `it`), beside the staff document's.
    config_pin: Option<StaffPin>,
    /// Where the held report is recorded; `None`: not recorded (tests).
    held_file: Option<PathBuf>,
    /// What the held file says now.
    recorded_held: Option<EventId>,
    /// Where wrong PINs and lockouts are recorded; `None`: not recorded (tests).
    pins_file: Option<PathBuf>,
    /// What the PIN file says now.
    recorded_pins: PinTrack,
    /// The filter profile of whoever is signed in, for slate-dns (a task sends it on).
    profile: watch::Sender<Option<String>>,
    /// Policy updates and teacher commands.
    notices: Option<mpsc::Receiver<Notice>>,
    /// "There was input" from the input devices (already rate-limited).
    activity: Option<mpsc::Receiver<()>>,
    /// Stamps each event with the clock's evidence as it is filed; `None`: events go without.
    clock: Option<Arc<ClockWatch>>,
    /// Whether a pupil is signed in or a report holds the device, for the update (which
    /// installs and reboots only when nobody is).
    presence: watch::Sender<Presence>,
}

/// The outcome of writing one report.
type Filing = (EventId, Result<(), String>);

impl<D: Display, A: Apps, I: Ids + Send + 'static> Driver<D, A, I> {
    pub fn new(
        core: Core,
        ids: I,
        display: D,
        apps: A,
        spool: SharedSpool,
        wake: Arc<Notify>,
        enrolled: Arc<AtomicBool>,
    ) -> Self {
        Self {
            core,
            ids,
            display,
            apps,
            spool,
            wake,
            enrolled,
            foreground: None,
            blank_timeout: BLANK_TIMEOUT,
            pins: Arc::default(),
            staff_doc: None,
            button_fault: watch::channel(None).0,
            display_fault: watch::channel(None).0,
            last_blank_failed: false,
            led: watch::channel(LedPattern::Steady).0,
            button_tested_at: None,
            dns: DnsSocket::default(),
            policy_issued_at: None,
            kiosk: None,
            config_pin: None,
            held_file: None,
            recorded_held: None,
            pins_file: None,
            recorded_pins: PinTrack::default(),
            profile: watch::channel(None).0,
            notices: None,
            activity: None,
            clock: None,
            presence: watch::channel(Presence::IdleSince(Instant::now())).0,
        }
    }

    /// Stamps each event with this clock's evidence (boot id, time since boot, synchronised)
    /// when it is filed.
    pub fn with_clock(mut self, clock: Arc<ClockWatch>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Records the held report in this file (and knows it says `current`).
    pub fn with_held_file(mut self, path: PathBuf, current: Option<EventId>) -> Self {
        self.held_file = Some(path);
        self.recorded_held = current;
        self
    }

    /// Records wrong PINs and lockouts in this file, carrying on from `recorded` (read from it
    /// at start).
    pub fn with_pins_file(mut self, path: PathBuf, recorded: Option<PinTrack>) -> Self {
        if let Some(track) = recorded {
            let now = self.now();
            self.core.restore_pin_track(now, track.clone());
            self.recorded_pins = track;
        }
        self.pins_file = Some(path);
        self
    }

    /// Takes the input devices' "there was input" from this channel (idle timer).
    pub fn with_activity(mut self, activity: mpsc::Receiver<()>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// Takes policy updates and teacher commands from this channel.
    pub fn with_notices(mut self, notices: mpsc::Receiver<Notice>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// The filter profile slate-dns should have, kept up to date.
    pub fn profile(&self) -> watch::Receiver<Option<String>> {
        self.profile.subscribe()
    }

    /// Comes up held for `report` (held before a restart): dark and reassuring until the PIN.
    pub async fn restore_held(&mut self, report: EventId) {
        tracing::warn!(%report, "held before the restart: held again until a member of staff unlocks");
        if let Err(refused) = self.apply(self.now(), Input::RestoreHeld { report }).await {
            tracing::error!(%refused, "could not restore the hold");
        }
    }

    /// Takes in a kiosk policy: its session rules, and its roster for the filter profile.
    pub fn take_policy(&mut self, policy: KioskPolicy) {
        self.core.set_session_rules(crate::core::SessionRules {
            idle_timeout: Some(Duration::from_secs(
                u64::from(policy.sessions.idle_timeout_min) * 60,
            )),
            lesson_ends: policy.sessions.lesson_ends.clone(),
            utc_offset: Some(local_offset()),
        });
        self.policy_issued_at = policy.issued_at;
        tracing::info!(issued_at = ?policy.issued_at, "kiosk policy in force");
        self.kiosk = Some(policy);
        self.sync_profile();
    }

    /// Takes in the staff document: from now on exactly its members (and IT's own PIN from
    /// slate.toml) can unlock; staff no longer in it cannot.
    pub fn take_staff_pins(&mut self, staff: StaffPins) {
        tracing::info!(issued_at = %staff.issued_at, staff = staff.staff.len(), "staff PINs in force");
        self.staff_doc = Some(staff);
        self.sync_unlock_pins();
    }

    /// `pupil`'s picture PIN as the kiosk policy and staff document in force know it.
    fn expected_pin(
        &self,
        pupil: &slate_protocol::PupilId,
    ) -> Result<Option<roster::ExpectedPin>, roster::SignInRefused> {
        roster::expected_pin(self.kiosk.as_ref(), self.staff_doc.as_ref(), pupil)
    }

    /// Rebuilds the PINs that may unlock from the staff document and IT's PIN.
    fn sync_unlock_pins(&mut self) {
        let pins = match UnlockPins::new(self.staff_doc.as_ref(), self.config_pin.as_ref()) {
            Ok(pins) => pins,
            Err(e) => {
                tracing::error!(error = %e, "the staff PINs are unusable; only slate.toml's PIN unlocks");
                UnlockPins::new(None, self.config_pin.as_ref()).unwrap_or_default()
            }
        };
        self.core.set_pin_in_force(!pins.is_empty());
        self.pins = Arc::new(pins);
    }

    /// Files a security breach seen outside the core as its event (a policy or list refused,
    /// by slated or slate-dns; DNS the firewall refused around the filter).
    async fn file_breach(&mut self, breach: Breach) -> Result<(), String> {
        tracing::warn!(what = breach.what(), "security breach filed for the server");
        let event = Event {
            id: self.ids.event_id(),
            device: self.device(),
            at: self.now().wall,
            body: EventBody::SecurityBreach { breach },
            clock: None,
        };
        self.spool_event(event).await
    }

    async fn notice(&mut self, notice: Notice) {
        let input = match notice {
            Notice::Policy(policy) => return self.take_policy(*policy),
            Notice::StaffPins(staff) => return self.take_staff_pins(*staff),
            Notice::Breach(breach) => {
                // A spool failure keeps it in memory and says so itself.
                let _ = self.file_breach(breach).await;
                return;
            }
            Notice::FilterChecked(body) | Notice::SshAccess(body) => {
                let event = Event {
                    id: self.ids.event_id(),
                    device: self.device(),
                    at: self.now().wall,
                    body,
                    clock: None,
                };
                let _ = self.spool_event(event).await;
                return;
            }
            Notice::Teacher(command) => match command.action {
                CommandAction::LockScreens => Input::LockScreens(true),
                CommandAction::UnlockScreens => Input::LockScreens(false),
                CommandAction::SignOutAll => Input::SignOutAll,
                // The commands poller wakes the policy fetcher itself.
                CommandAction::RefreshPolicy => return,
                CommandAction::TestButton => {
                    Input::TestButton { command: command.id, until: command.expires_at }
                }
                // Carried out beside the core (the commands forwarder); never reaches it.
                CommandAction::CheckFilter | CommandAction::SshAccess => return,
            },
        };
        if let Err(refused) = self.apply(self.now(), input).await {
            tracing::warn!(%refused, "teacher command refused");
        } else {
            self.foreground = self.core.session().and(self.foreground.take());
        }
    }

    fn sync_profile(&self) {
        let profile = match (&self.kiosk, self.core.session()) {
            (Some(policy), Some(session)) => profile_for(policy, &session.pupil),
            _ => None,
        };
        self.profile.send_if_modified(|p| std::mem::replace(p, profile.clone()) != profile);
    }

    /// Keeps what lives outside the core in step with it: the held file, the PIN file and the
    /// profile.
    async fn sync_outputs(&mut self) {
        self.sync_profile();
        self.sync_presence();
        self.sync_pins().await;
        let held = self.core.held_report();
        if held == self.recorded_held {
            return;
        }
        let Some(path) = self.held_file.clone() else { return };
        let result = tokio::task::spawn_blocking(move || match held {
            Some(report) => crate::policy::write_atomic(&path, format!("{report}\n").as_bytes())
                .map_err(|e| e.to_string()),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
        })
        .await;
        match result {
            Ok(Ok(())) => self.recorded_held = held,
            Ok(Err(e)) => tracing::error!(error = %e, "the held state could not be recorded"),
            Err(e) => tracing::error!(error = %e, "the held state could not be recorded"),
        }
    }

    /// Publishes whether the device is in use; idle from the moment the last use ended.
    fn sync_presence(&self) {
        let in_use = self.core.session().is_some() || self.core.held_report().is_some();
        self.presence.send_if_modified(|presence| match (in_use, *presence) {
            (true, Presence::IdleSince(_)) => {
                *presence = Presence::InUse;
                true
            }
            (false, Presence::InUse) => {
                *presence = Presence::IdleSince(Instant::now());
                true
            }
            _ => false,
        });
    }

    /// Whether the device is in use, kept up to date (the update waits for nobody).
    pub fn presence(&self) -> watch::Receiver<Presence> {
        self.presence.subscribe()
    }

    /// Records wrong PINs and lockouts when they changed: written before the unlock is answered,
    /// so a kill straight after a wrong guess still counts it.
    async fn sync_pins(&mut self) {
        let track = self.core.pin_track().clone();
        if track == self.recorded_pins {
            return;
        }
        let Some(path) = self.pins_file.clone() else { return };
        let write = track.clone();
        let result = tokio::task::spawn_blocking(move || {
            if write == PinTrack::default() {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                    _ => Ok(()),
                }
            } else {
                let json = serde_json::to_vec(&write).map_err(|e| e.to_string())?;
                crate::policy::write_atomic(&path, &json).map_err(|e| e.to_string())
            }
        })
        .await;
        match result {
            Ok(Ok(())) => self.recorded_pins = track,
            Ok(Err(e)) => tracing::error!(error = %e, "wrong staff PINs could not be recorded"),
            Err(e) => tracing::error!(error = %e, "wrong staff PINs could not be recorded"),
        }
    }

    /// Talks to slate-dns at this socket.
    pub fn with_dns(mut self, dns: DnsSocket) -> Self {
        self.dns = dns;
        self
    }

    /// IT's own PIN from slate.toml, which unlocks beside the staff document's PINs.
    pub fn with_staff_pin(mut self, pin: Option<StaffPin>) -> Self {
        self.config_pin = pin;
        self.sync_unlock_pins();
        self
    }

    /// Whether a press would darken the screen, kept up to date (heartbeats carry it).
    pub fn display_fault(&self) -> watch::Receiver<Option<DisplayFault>> {
        self.display_fault.subscribe()
    }

    /// Works out the display's fault: a press that did not darken counts until one does; else
    /// whether anything that can darken the screen is there now.
    fn refresh_display_fault(&self) {
        let fault = display_fault(self.last_blank_failed, self.display.can_darken());
        self.display_fault.send_if_modified(|f| std::mem::replace(f, fault) != fault);
    }

    /// What the status LED should show, kept up to date.
    pub fn led(&self) -> watch::Receiver<LedPattern> {
        self.led.subscribe()
    }

    /// Works out the LED's pattern from the core and the spool. A report counts as waiting
    /// while the device is held and the spool is not empty (events upload oldest first).
    fn refresh_led(&self) {
        let held = self.core.held_report().is_some();
        let pattern = led_pattern(LedInputs {
            button_fault: self.core.button_fault().is_some(),
            held,
            report_waiting: held && !self.spool.is_empty(),
            button_tested: self.button_tested_at.is_some_and(|at| at.elapsed() < TESTED_SHOWN),
        });
        self.led.send_if_modified(|p| std::mem::replace(p, pattern) != pattern);
    }

    /// Where the button's fault is published (the uploader's heartbeat reads it).
    pub fn button_fault(&self) -> watch::Receiver<Option<ButtonFault>> {
        self.button_fault.subscribe()
    }

    pub fn with_blank_timeout(mut self, timeout: Duration) -> Self {
        self.blank_timeout = timeout;
        self
    }

    /// Serves presses and control requests until `shutdown` fires (or its sender is dropped),
    /// then closes what is open so that it is on record.
    pub async fn run(
        mut self,
        mut presses: mpsc::Receiver<ButtonEvent>,
        mut control: mpsc::Receiver<ControlMsg>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        // Timers live across iterations: a request must not push a retry or a deadline back.
        let mut retry = tokio::time::interval(SPOOL_RETRY);
        retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut led_tick = tokio::time::interval(LED_REFRESH);
        led_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The core's next deadline: when to wake on the monotonic clock, and its time since boot.
        let mut deadline: Option<(Instant, Duration)> = None;
        let mut notices = self.notices.take();
        let mut activity = self.activity.take();
        // The compositor comes and goes on its own: look again now and then for the heartbeat.
        let mut display_tick = tokio::time::interval(DISPLAY_REFRESH);
        display_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            self.refresh_led();
            self.refresh_display_fault();
            // The core measures its spans since boot, so the wait does not move with the wall
            // clock; a deadline already waited for keeps its wake-up (a request that changes
            // nothing must not push it back).
            let now = self.now();
            deadline =
                match (self.core.next_deadline(now).map(|left| now.since_boot + left), deadline) {
                    (Some(target), Some((at, known))) if known == target => Some((at, target)),
                    (Some(target), _) => Some((Instant::now() + (target - now.since_boot), target)),
                    (None, _) => None,
                };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(event) = presses.recv() => {
                    self.button(event).await;
                }
                _ = sleep_until_opt(deadline.map(|(at, _)| at)) => {
                    let mut rules = self.core.session_rules().clone();
                    if rules.utc_offset.is_some() {
                        rules.utc_offset = Some(local_offset());
                        self.core.set_session_rules(rules);
                    }
                    // The wait was measured on the monotonic clock: that much time has passed.
                    let mut now = self.now();
                    now.since_boot = now.since_boot.max(deadline.map_or(now.since_boot, |(_, b)| b));
                    if let Err(refused) = self.apply(now, Input::Tick).await {
                        tracing::warn!(%refused, "tick refused");
                    }
                }
                // Before control requests: a teacher's command already here is in force for a
                // request that arrives after it.
                Some(notice) = recv_opt(&mut notices) => {
                    self.notice(notice).await;
                }
                Some(msg) = control.recv() => {
                    let reply = self.handle(msg.request, msg.from, msg.app, msg.received_at).await;
                    let _ = msg.reply.send(reply);
                }
                Some(()) = recv_opt(&mut activity) => {
                    // Input with nobody signed in, or under a hold, restarts nothing.
                    if let Err(refused) = self.apply(self.now(), Input::Activity).await {
                        tracing::debug!(%refused, "input device activity not applied");
                    }
                }
                // A full card or a spool that could not be opened: events wait in memory (and
                // upload from there) until the card takes them again.
                _ = retry.tick() => {
                    if self.spool.needs_retry() {
                        self.spool.with(Spool::retry).await;
                        self.wake.notify_one();
                    }
                }
                // While held, the LED turns from "waiting" to "delivered" when the uploader
                // empties the spool.
                _ = led_tick.tick(), if self.core.held_report().is_some() || self.button_tested_at.is_some() => {
                    if self.button_tested_at.is_some_and(|at| at.elapsed() >= TESTED_SHOWN) {
                        self.button_tested_at = None;
                    }
                }
                _ = display_tick.tick() => {}
            }
        }
        if let Err(refused) = self.apply(self.now(), Input::ShuttingDown).await {
            tracing::warn!(%refused, "shutdown input refused");
        }
        let in_memory = self.spool.with(|s| s.in_memory()).await;
        if in_memory > 0 {
            tracing::error!(
                events = in_memory,
                "stopping with events that could not be written to the spool"
            );
        }
    }

    /// Files `event` before anything else happens (the daemon's `hello`).
    pub async fn spool_now(&mut self, event: Event) -> Result<(), String> {
        self.spool_event(event).await
    }

    /// An event from the physical button (or the stdin demo).
    async fn button(&mut self, event: ButtonEvent) {
        let foreground = self.foreground.clone();
        let input = match event {
            ButtonEvent::Pressed { at } => {
                self.press(at).await;
                return;
            }
            ButtonEvent::Down { at } => Input::ButtonDown { at, foreground },
            ButtonEvent::Up { at } => Input::ButtonUp { at },
            ButtonEvent::Present(present) => Input::ButtonPresent(present),
        };
        if let Err(refused) = self.apply(self.now(), input).await {
            tracing::warn!(%refused, "button event refused");
        }
    }

    async fn press(&mut self, pressed_at: DateTime<Utc>) -> Reply {
        let input = Input::ButtonPressed { pressed_at, foreground: self.foreground.clone() };
        let filings = match self.apply(self.now(), input).await {
            Ok(filings) => filings,
            Err(refused) => return Reply::error(refused.to_string()),
        };
        match filings.into_iter().next() {
            Some((report, Ok(()))) => Reply { report: Some(report), ..Reply::ok() },
            Some((report, Err(e))) => Reply::error(format!(
                "report {report} could not be written to the spool ({e}); it is kept in memory and retried"
            )),
            None => match self.core.held_report() {
                Some(report) => {
                    tracing::debug!(%report, "press while held: ignored");
                    Reply { report: Some(report), already_held: Some(true), ..Reply::ok() }
                }
                None => Reply::error("the press was not handled"),
            },
        }
    }

    async fn handle(
        &mut self,
        request: Request,
        from: Role,
        app: Option<AppProcess>,
        received_at: DateTime<Utc>,
    ) -> Reply {
        let now = self.now();
        match request {
            Request::Press {} => self.press(received_at).await,
            Request::CheckPictures { pupil, pictures } => {
                let expected = self.expected_pin(&pupil);
                let check = move || roster::check_pictures(expected, &pictures.0);
                match picture_check(check).await {
                    Ok(()) => Reply::ok(),
                    Err(refused) => Reply::error(refused.to_string()),
                }
            }
            Request::SignIn { pupil, pictures } => {
                let expected = self.expected_pin(&pupil);
                let check = move || {
                    roster::check_sign_in(expected, from, pictures.as_ref().map(|p| p.0.as_slice()))
                };
                if let Err(refused) = picture_check(check).await {
                    tracing::info!(%refused, "sign-in refused");
                    return Reply::error(refused.to_string());
                }
                self.sign_in(now, pupil).await
            }
            Request::SignOut {} => match self.apply(now, Input::SignOut).await {
                Ok(_) => {
                    self.foreground = None;
                    Reply::ok()
                }
                Err(refused) => Reply::error(refused.to_string()),
            },
            Request::Foreground { app: name, url, title, pid } => {
                tracing::debug!(app = %name, ?pid, "foreground changed");
                self.foreground = Some(Foreground { app: name, url, title });
                // The control socket checked the pid's cgroup (`app`); a pid without one is
                // never stopped.
                self.apps.set_foreground(app.filter(|a| Some(a.pid) == pid));
                Reply::ok()
            }
            // Who unlocked is whoever's PIN it is: a `staff` the client names is not trusted.
            Request::Unlock { pin, choice, staff: _ } => self.unlock(now, pin, choice).await,
            Request::StaffButtonTest { pin, start } => {
                self.staff_button_test(now, pin, start).await
            }
            Request::Status {} => Reply {
                device: Some(self.device()),
                state: Some(self.core.state_kind().as_str().to_owned()),
                spool_pending: Some(self.spool.len() as u64),
                storage_fault: self.spool.storage_fault(),
                enrolled: Some(self.enrolled.load(Ordering::Relaxed)),
                button_fault: self.core.button_fault(),
                display_fault: *self.display_fault.borrow(),
                staff_pin: Some(!self.pins.is_empty()),
                locked_until: self.core.locked_until(now),
                screens_locked: Some(self.core.screens_locked()),
                pupil: self.core.session().map(|s| s.pupil.clone()),
                policy_issued_at: self.policy_issued_at,
                button_test: Some(self.core.button_test_open(now)),
                ..Reply::ok()
            },
            Request::AppOpened { app } => self.plain(now, Input::AppOpened { app }).await,
            Request::AupAccepted { key_stage, text_version, school_version } => {
                let input = Input::AupAccepted { key_stage, text_version, school_version };
                self.plain(now, input).await
            }
            Request::Activity {} => self.plain(now, Input::Activity).await,
            Request::ReassuranceShown {} => self.plain(now, Input::ReassuranceShown).await,
            Request::FilterBlocked { layer, target, rule, list } => {
                self.plain(now, Input::FilterBlocked { layer, target, rule, list }).await
            }
            Request::DeviceRefused { kind, description } => {
                self.plain(now, Input::DeviceRefused { kind, description }).await
            }
            // slate-dns's own refusals and its drop counter (the request admits no other).
            Request::SecurityBreach { breach } => match self.file_breach(breach).await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::error(format!(
                    "the breach could not be written to the spool ({e}); it is kept in memory and retried"
                )),
            },
            Request::SetupCode { .. }
            | Request::SetupNumber { .. }
            | Request::SetupConfirm { .. } => {
                Reply::error(format!("device {} is set up already", self.device()))
            }
            Request::TellTeacher { url, app } => {
                let recent_names = self.dns.recent(RECENT_TIMEOUT).await;
                let input = Input::TellTeacher { url: Some(url), app, recent_names };
                match self.apply(self.now(), input).await {
                    Ok(filings) => match filings.into_iter().next() {
                        Some((report, Ok(()))) => Reply { report: Some(report), ..Reply::ok() },
                        Some((report, Err(e))) => Reply::error(format!(
                            "report {report} could not be written to the spool ({e}); it is kept in memory and retried"
                        )),
                        None => Reply::error("the report was not filed"),
                    },
                    Err(refused) => Reply::error(refused.to_string()),
                }
            }
        }
    }

    async fn sign_in(&mut self, now: Now, pupil: slate_protocol::PupilId) -> Reply {
        match self.apply(now, Input::SignIn { pupil }).await {
            Ok(_) => {
                // A new session starts with nothing of the last one on screen.
                self.foreground = None;
                Reply { session: self.core.session().map(|s| s.id), ..Reply::ok() }
            }
            Err(refused) => Reply::error(refused.to_string()),
        }
    }

    /// An input whose answer is only ok or why not.
    async fn plain(&mut self, now: Now, input: Input) -> Reply {
        match self.apply(now, input).await {
            Ok(_) => Reply::ok(),
            Err(refused) => Reply::error(refused.to_string()),
        }
    }

    /// A staff unlock. The PIN is checked (slowly, off the async threads, against each PIN in
    /// force until one matches) only when the device is held and not locked out, so that
    /// nothing else answers whether a guess was right. The unlock records whose PIN it was.
    async fn unlock(
        &mut self,
        now: Now,
        pin: Option<Pin>,
        choice: Option<ResolutionChoice>,
    ) -> Reply {
        if self.core.held_report().is_none() {
            return refused_reply(Refused::NotHeld);
        }
        if let Some(until) = self.core.locked_until(now) {
            return refused_reply(Refused::LockedOut { until });
        }
        let check = check_staff_pin(self.pins.clone(), pin).await;
        let unlock = Unlock { pin: check, choice: choice.unwrap_or(ResolutionChoice::CloseApp) };
        // The PIN check took time: the core judges it at the time it finished (on the wall
        // clock never before it started, for the record's order).
        let finished = self.now();
        let finished = Now { wall: finished.wall.max(now.wall), ..finished };
        match self.apply(finished, Input::Unlock(unlock)).await {
            Ok(_) => Reply::ok(),
            Err(r) => {
                tracing::warn!(refused = %r, "staff unlock refused");
                refused_reply(r)
            }
        }
    }

    /// The staff PIN pad of an idle device's sign-in screen: the PIN is checked (as for an
    /// unlock, only when the device is idle and not locked out, so that nothing else answers
    /// whether a guess was right), then with `start` the core opens the button test in that
    /// staff member's name.
    async fn staff_button_test(&mut self, now: Now, pin: Pin, start: bool) -> Reply {
        match self.core.state_kind() {
            StateKind::Idle => {}
            StateKind::InSession => return refused_reply(Refused::InUse),
            StateKind::Held => return refused_reply(Refused::Held),
        }
        if let Some(until) = self.core.locked_until(now) {
            return refused_reply(Refused::LockedOut { until });
        }
        let check = check_staff_pin(self.pins.clone(), Some(pin)).await;
        let finished = self.now();
        let finished = Now { wall: finished.wall.max(now.wall), ..finished };
        match self.apply(finished, Input::StaffButtonTest { pin: check, start }).await {
            Ok(_) => {
                if start {
                    tracing::info!("a member of staff started a button test with their PIN");
                }
                Reply::ok()
            }
            Err(r) => {
                tracing::warn!(refused = %r, "staff button test refused");
                refused_reply(r)
            }
        }
    }

    fn device(&self) -> DeviceNumber {
        self.core.device()
    }

    /// The time now on both clocks: the [`ClockWatch`]'s, or the machine's without one.
    fn now(&self) -> Now {
        self.clock.as_ref().map_or_else(crate::clock::system_now, |clock| clock.now())
    }

    /// Applies an input and every input that its commands bring back (darkness confirmed or
    /// not), to completion. Returns the reports filed on the way.
    async fn apply(&mut self, now: Now, input: Input) -> Result<Vec<Filing>, Refused> {
        // A stop keeps what is recorded: a device held when it stops is held when it starts.
        let stopping = matches!(input, Input::ShuttingDown);
        let result = self.apply_inner(now, input).await;
        // Also after a refusal: a wrong PIN is refused and still counts.
        if !stopping {
            self.sync_outputs().await;
        }
        result
    }

    async fn apply_inner(&mut self, now: Now, input: Input) -> Result<Vec<Filing>, Refused> {
        let mut queue = VecDeque::new();
        let mut filings = Vec::new();
        let commands = match self.core.step(now, input, &mut self.ids) {
            Ok(commands) => commands,
            Err(refused) => {
                // Refused, yet recorded: a PIN lockout's security_breach event.
                let recorded = self.core.take_refused_commands();
                self.execute_all(recorded, &mut queue, &mut filings).await;
                return Err(refused);
            }
        };
        self.execute_all(commands, &mut queue, &mut filings).await;
        while let Some(follow_up) = queue.pop_front() {
            match self.core.step(self.now(), follow_up, &mut self.ids) {
                Ok(commands) => self.execute_all(commands, &mut queue, &mut filings).await,
                Err(refused) => tracing::warn!(%refused, "a follow-up input was refused"),
            }
        }
        Ok(filings)
    }

    async fn execute_all(
        &mut self,
        commands: Vec<Command>,
        queue: &mut VecDeque<Input>,
        filings: &mut Vec<Filing>,
    ) {
        for command in commands {
            self.execute(command, queue, filings).await;
        }
    }

    async fn execute(
        &mut self,
        command: Command,
        queue: &mut VecDeque<Input>,
        filings: &mut Vec<Filing>,
    ) {
        match command {
            Command::BlankScreen { report } => {
                let answer = match tokio::time::timeout(
                    self.blank_timeout,
                    self.display.blank(report),
                )
                .await
                {
                    Ok(Ok(confirmed_at)) => {
                        self.last_blank_failed = false;
                        Input::ScreenDark { report, confirmed_at }
                    }
                    Ok(Err(e)) => {
                        self.last_blank_failed = true;
                        tracing::error!(%report, error = %e, "darkness not confirmed; filing the report anyway");
                        Input::BlankFailed { report }
                    }
                    Err(_) => {
                        self.last_blank_failed = true;
                        tracing::error!(%report, timeout_ms = self.blank_timeout.as_millis() as u64,
                            "the display did not confirm darkness in time; filing the report anyway");
                        Input::BlankFailed { report }
                    }
                };
                // Dark first; then at most RECENT_TIMEOUT for the names, before the spool write.
                let names = self.dns.recent(RECENT_TIMEOUT).await;
                if !names.is_empty() {
                    queue.push_back(Input::RecentNames { report, names });
                }
                queue.push_back(answer);
            }
            Command::StopForegroundApp => {
                let result = self.apps.stop_foreground().await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "foreground app not stopped; the sound stays off");
                }
                queue.push_back(Input::AppStopped { stopped: result.is_ok() });
            }
            Command::MuteAudio | Command::UnmuteAudio => {
                if let Err(e) = self.apps.set_muted(command == Command::MuteAudio).await {
                    tracing::error!(error = %e, "audio not set");
                }
            }
            Command::ShowReassurance => {
                if let Err(e) = self.display.show_reassurance().await {
                    tracing::error!(error = %e, "reassurance not shown");
                }
            }
            Command::RevealUi => {
                if let Err(e) = self.display.reveal_ui().await {
                    tracing::error!(error = %e, "screen not lit for the reassurance screen");
                }
            }
            Command::RestoreScreen => {
                if let Err(e) = self.display.restore().await {
                    tracing::error!(error = %e, "screen not restored");
                }
            }
            Command::ResumeForegroundApp => {
                if let Err(e) = self.apps.resume_foreground().await {
                    tracing::error!(error = %e, "foreground app not resumed");
                }
            }
            Command::CloseForegroundApp => {
                if let Err(e) = self.apps.close_foreground().await {
                    tracing::error!(error = %e, "foreground app not closed");
                }
            }
            Command::ButtonWorks => {
                tracing::info!("button test: the press was seen; no report");
                self.button_tested_at = Some(Instant::now());
            }
            Command::ButtonHealth(fault) => {
                match fault {
                    Some(fault) => tracing::warn!(?fault, "report button fault"),
                    None => tracing::info!("report button healthy"),
                }
                self.button_fault.send_replace(fault);
            }
            Command::Spool(mut event) => {
                let id = event.id;
                self.stamp(&mut event);
                // The hold is on record before its report: a stop between the two comes back
                // held, and files the report from the record.
                if self.core.held_report() == Some(id) && self.recorded_held != Some(id) {
                    self.record_hold(&event).await;
                }
                let report = match &event.body {
                    EventBody::ReportFiled { blank_latency_us, .. } => Some(*blank_latency_us),
                    _ => None,
                };
                let kind = event.body.kind();
                let result = self.spool_event(event).await;
                match (report, &result) {
                    (Some(latency_us), Ok(())) => {
                        tracing::info!(report = %id, blank_latency_us = ?latency_us, "report filed");
                    }
                    (None, Ok(())) => tracing::info!(event = %id, kind, "event filed"),
                    (_, Err(_)) => {}
                }
                if report.is_some() {
                    filings.push((id, result));
                }
            }
        }
    }

    /// Stamps the clock's evidence, read as the event is filed: at most a moment after `at` (a
    /// report: once the screen is dark).
    fn stamp(&self, event: &mut Event) {
        if let (None, Some(clock)) = (event.clock, &self.clock) {
            event.clock = clock.stamp(clock.now().wall);
        }
    }

    /// Records the hold with its whole report in the held file (atomically, fsynced).
    async fn record_hold(&mut self, report: &Event) {
        let Some(path) = self.held_file.clone() else { return };
        let mut bytes = serde_json::to_vec(report).expect("an event serialises");
        bytes.push(b'\n');
        let result = tokio::task::spawn_blocking(move || {
            crate::policy::write_atomic(&path, &bytes).map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(())) => self.recorded_held = Some(report.id),
            // The report still goes to the spool; the hold is tried again after the input.
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the hold could not be recorded before its report")
            }
            Err(e) => {
                tracing::error!(error = %e, "the hold could not be recorded before its report")
            }
        }
    }

    /// Writes an event to the spool (after any kept in memory, keeping order). On failure the
    /// spool keeps it in memory, uploads it from there and writes it when it can.
    async fn spool_event(&mut self, mut event: Event) -> Result<(), String> {
        self.stamp(&mut event);
        let id = event.id;
        let result = self.spool.with(move |s| s.append(&event)).await;
        // Woken either way: an event kept in memory is uploaded from there.
        self.wake.notify_one();
        result.map_err(|e| {
            tracing::error!(event = %id, error = %e, "event kept in memory: spool write failed");
            e.to_string()
        })
    }
}

/// Opens the spool, saying what was repaired; one that cannot be opened is kept in memory
/// (with the storage fault the heartbeat carries) and tried again every second.
fn open_spool(dir: &std::path::Path) -> Spool {
    let limits = crate::spool::SpoolLimits::default();
    match Spool::open_with(dir, limits) {
        Ok((spool, recovery)) if recovery.is_clean() => {
            tracing::info!(pending = recovery.kept, "spool opened");
            spool
        }
        Ok((spool, recovery)) => {
            tracing::warn!(
                kept = recovery.kept,
                quarantined = recovery.quarantined,
                torn_bytes = recovery.torn_bytes,
                repaired_tail = recovery.repaired_tail,
                "spool recovered from damage; damaged lines are in spool/corrupt.log"
            );
            spool
        }
        Err(e) => {
            tracing::error!(error = %e, "the spool cannot be opened: events are kept in memory and uploaded from there until it can");
            Spool::unopened(dir, limits, &e)
        }
    }
}

/// Starts the update as its own task: nothing it does (a server without updates, RAUC away, a
/// full card) reaches the button or the core task, which it only watches for who is signed in.
fn start_update(
    config: &Config,
    transport: HttpTransport,
    spool: SharedSpool,
    presence: watch::Receiver<Presence>,
) -> JoinHandle<()> {
    use crate::clock::ClockSource;
    use crate::update::system::{Logind, Rauc};
    let boot_id = SystemClock::from_env().boot_id().map_or_else(
        |e| {
            tracing::warn!(error = %e, "update: this boot's id is unknown");
            "unknown".to_owned()
        },
        |id| id.to_string(),
    );
    let settings = crate::update::UpdateSettings::from_env(config.state_dir.clone(), boot_id);
    let updater = crate::update::Updater::new(
        transport,
        Rauc::system(),
        Logind::system(),
        spool,
        presence,
        settings,
    );
    tokio::spawn(updater.run())
}

/// Forwards the GPIO button's edges; says it is missing if it cannot be opened (or this build
/// has no GPIO support), so that the heartbeat shows it.
async fn gpio_button(pin: u8, active_low: bool, events: mpsc::Sender<ButtonEvent>) {
    #[cfg(feature = "gpio")]
    match crate::gpio::hw::GpioButton::open(pin, active_low) {
        Ok(button) => {
            tracing::info!(pin, "report button ready on GPIO");
            let _ = events.send(ButtonEvent::Present(true)).await;
            return button::forward(button, events).await;
        }
        Err(e) => tracing::error!(error = %e, "the GPIO report button cannot be opened"),
    }
    #[cfg(not(feature = "gpio"))]
    tracing::error!(
        pin,
        active_low,
        "`button.source = \"gpio\"` needs slated built with the `gpio` feature"
    );
    let _ = events.send(ButtonEvent::Present(false)).await;
}

/// Drives the status LED, if one is configured; says why not otherwise.
fn start_led(pin: Option<u8>, pattern: watch::Receiver<LedPattern>) -> Option<JoinHandle<()>> {
    let pin = pin?;
    #[cfg(feature = "gpio")]
    return Some(tokio::spawn(async move {
        if let Err(e) = crate::gpio::hw::run_led(pin, pattern).await {
            tracing::error!(error = %e, "the status LED cannot be driven");
        }
    }));
    #[cfg(not(feature = "gpio"))]
    {
        drop(pattern);
        tracing::error!(pin, "`[led] gpio_pin` needs slated built with the `gpio` feature");
        None
    }
}

/// The next message, or never when there is no channel (or it closed).
async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(t) => Some(t),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The device's current offset from UTC (for lesson end times).
fn local_offset() -> chrono::FixedOffset {
    *chrono::Local::now().offset()
}

/// Sleeps until `at`; forever when there is none.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Pings systemd's watchdog (`ping`) every `period`, but only when the core task answers a
/// `status` request through `control` (the same way the control socket asks) within `period`:
/// a wedged core stops the pings and systemd restarts slated. Runs until `control` closes.
pub async fn watchdog(
    control: mpsc::Sender<ControlMsg>,
    period: Duration,
    mut ping: impl FnMut() + Send,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (tx, rx) = oneshot::channel();
        let msg = ControlMsg {
            request: Request::Status {},
            from: Role::Root,
            app: None,
            received_at: Utc::now(),
            reply: tx,
        };
        let answered = tokio::time::timeout(period, async {
            control.send(msg).await.ok()?;
            rx.await.ok()
        })
        .await;
        match answered {
            Ok(Some(reply)) if reply.ok => ping(),
            Ok(None) if control.is_closed() => return,
            _ => tracing::error!("the core task did not answer in time: no watchdog ping"),
        }
    }
}

/// A running `slated`.
pub struct Daemon {
    device: DeviceNumber,
    socket: PathBuf,
    shutdown: oneshot::Sender<()>,
    driver: JoinHandle<()>,
    /// Stopped before the driver finishes: no new inputs.
    inputs: Vec<JoinHandle<()>>,
    uploader: Option<JoinHandle<()>>,
    /// Asks the core task, as the control socket does (for the watchdog).
    control: mpsc::Sender<ControlMsg>,
}

impl Daemon {
    /// Opens the spool (recovering it), files `hello`, and starts the uploader, the button, the
    /// control socket and the driver. Only a control socket that cannot be bound stops it; a
    /// spool that cannot be opened (a full or failing card) keeps events in memory and is tried
    /// again, and a server that cannot be reached never stops it: the button and darkness work
    /// through both.
    pub async fn start(config: &Config) -> Result<Daemon, DaemonError> {
        let device = config.device_number.ok_or(DaemonError::NoNumber)?;
        let spool_dir = config.state_dir.join("spool");
        let spool = tokio::task::spawn_blocking(move || open_spool(&spool_dir))
            .await
            .expect("opening the spool does not panic");
        let spool = SharedSpool::new(spool);
        let wake = Arc::new(Notify::new());
        let enrolled = Arc::new(AtomicBool::new(false));

        let group = match &config.control_group {
            None => None,
            Some(name) => match nix::unistd::Group::from_name(name) {
                Ok(Some(group)) => Some(group.gid.as_raw()),
                Ok(None) => {
                    tracing::error!(group = %name, "`control_group` names no group; the control socket keeps slated's own group");
                    None
                }
                Err(e) => {
                    tracing::error!(group = %name, error = %e, "`control_group` cannot be looked up; the control socket keeps slated's own group");
                    None
                }
            },
        };
        let listener = slate_ipc::listen::bind(&config.control_socket, group, "slated")?;

        if config.staff.pin.is_none() && config.policy.public_key.is_none() {
            tracing::warn!("no staff PIN can arrive (no `[staff] pin_hash` and no `[server] public_key` for the staff PINs): a held device stays held");
        }
        let display = SystemDisplay::from_config(&config.display).await;
        let clock = {
            let dir = config.state_dir.clone();
            tokio::task::spawn_blocking(move || {
                Arc::new(ClockWatch::open(
                    Box::new(SystemClock::from_env()),
                    Some(&dir),
                    Utc::now(),
                ))
            })
            .await
            .expect("reading the clock's files does not panic")
        };
        let mut driver = Driver::new(
            Core::with_rules(device, config.rules()),
            ClockIds,
            display,
            CgroupApps::new(CommandMute::new(config.mute.clone())),
            spool.clone(),
            wake.clone(),
            enrolled.clone(),
        )
        .with_staff_pin(config.staff.pin.clone())
        .with_dns(DnsSocket::new(config.dns_socket.clone()))
        .with_clock(clock.clone());
        let held = {
            let dir = config.state_dir.clone();
            tokio::task::spawn_blocking(move || load_held(&dir)).await.unwrap_or(None)
        };
        let (notice_tx, notice_rx) = mpsc::channel(16);
        let pins = {
            let dir = config.state_dir.clone();
            tokio::task::spawn_blocking(move || load_pins(&dir))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
                .unwrap_or_else(|e| {
                    // Unreadable: start counting afresh rather than lock staff out of a held
                    // device.
                    tracing::error!(error = %e, "recorded wrong staff PINs ignored");
                    None
                })
        };
        driver = driver
            .with_held_file(config.state_dir.join(HELD_FILE), held)
            .with_pins_file(config.state_dir.join(PINS_FILE), pins)
            .with_notices(notice_rx);
        let mut background = Vec::new();
        let dns = DnsSocket::new(config.dns_socket.clone());
        let mut profile = driver.profile();
        let profile_dns = dns.clone();
        background.push(tokio::spawn(async move {
            // The latest profile wins; slate-dns being away is logged, never waited on.
            while profile.changed().await.is_ok() {
                let wanted = profile.borrow_and_update().clone();
                if let Err(e) = profile_dns.profile(wanted.as_deref()).await {
                    tracing::warn!(error = %e, "slate-dns did not take the profile");
                }
            }
        }));
        let api = HttpDeviceApi::new(&config.server, clock.known_now());
        let refresh_policy = Arc::new(Notify::new());
        match (&config.policy.public_key, &api) {
            (None, _) => tracing::warn!(
                "no `[server] public_key` configured: no policy is fetched from the server"
            ),
            (Some(key), Ok(api)) => {
                let files = PolicyFiles::new(&config.state_dir);
                let loaded = {
                    let (files, key) = (files.clone(), *key);
                    tokio::task::spawn_blocking(move || files.load(&key)).await.unwrap_or_default()
                };
                if let Some(policy) = loaded.kiosk {
                    driver.take_policy(policy);
                }
                match loaded.staff {
                    Some(staff) => driver.take_staff_pins(staff),
                    None if config.staff.pin.is_none() => tracing::warn!("no staff PIN yet (no `[staff] pin_hash`, no staff PINs from the server): a held device stays held until one arrives"),
                    None => {}
                }
                let fetcher = PolicyFetcher::new(api.clone(), *key, files, loaded.in_force);
                let (tx, mut rx) = mpsc::channel::<Box<crate::policy::Installed>>(4);
                let (breach_tx, mut breach_rx) = mpsc::channel::<Breach>(4);
                background.push(tokio::spawn(crate::policy::run(
                    fetcher,
                    config.state_dir.clone(),
                    config.policy.refresh,
                    refresh_policy.clone(),
                    tx,
                    breach_tx,
                    dns.clone(),
                )));
                let breach_notices = notice_tx.clone();
                background.push(tokio::spawn(async move {
                    while let Some(breach) = breach_rx.recv().await {
                        if breach_notices.send(Notice::Breach(breach)).await.is_err() {
                            return;
                        }
                    }
                }));
                let notices = notice_tx.clone();
                background.push(tokio::spawn(async move {
                    while let Some(installed) = rx.recv().await {
                        let crate::policy::Installed { kiosk, staff } = *installed;
                        if notices.send(Notice::StaffPins(Box::new(staff))).await.is_err()
                            || notices.send(Notice::Policy(Box::new(kiosk))).await.is_err()
                        {
                            return;
                        }
                    }
                }));
            }
            (Some(_), Err(e)) => tracing::error!(error = %e, "policy fetching disabled"),
        }
        if let Ok(api) = &api {
            let (tx, mut rx) = mpsc::channel::<DeviceCommand>(16);
            background.push(tokio::spawn(crate::commands::run(
                api.clone(),
                config.state_dir.clone(),
                tx,
                refresh_policy,
            )));
            let check_dns = dns.clone();
            let ssh_state_dir = config.state_dir.clone();
            background.push(tokio::spawn(async move {
                while let Some(action) = rx.recv().await {
                    if action.action == CommandAction::CheckFilter {
                        // Beside the core: a slow slate-dns never holds up a press.
                        let (dns, notices) = (check_dns.clone(), notice_tx.clone());
                        tokio::spawn(async move {
                            let body = crate::filter_check::run(&dns, &action).await;
                            let _ = notices.send(Notice::FilterChecked(body)).await;
                        });
                        continue;
                    }
                    if action.action == CommandAction::SshAccess {
                        let dir = ssh_state_dir.clone();
                        let body = tokio::task::spawn_blocking(move || {
                            crate::ssh_access::carry_out(&dir, &action, Utc::now())
                        })
                        .await;
                        if let Ok(body) = body {
                            if notice_tx.send(Notice::SshAccess(body)).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    if notice_tx.send(Notice::Teacher(action)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        let button_fault = driver.button_fault();
        let display_fault = driver.display_fault();
        let led = start_led(config.led_pin, driver.led());
        let hello = Event::new(
            device,
            Utc::now(),
            EventBody::Hello { software_version: crate::SOFTWARE_VERSION.into() },
        );
        if driver.spool_now(hello).await.is_ok() {
            tracing::info!(%device, version = crate::SOFTWARE_VERSION, "hello filed");
        }
        let dir = config.state_dir.clone();
        if let Ok(Some(report)) = tokio::task::spawn_blocking(move || load_held_report(&dir)).await
        {
            let id = report.id;
            match spool.with(move |s| refile_held_report(s, &report)).await {
                Ok(true) => {
                    tracing::warn!(report = %id, "the held report was not in the spool: filed again from the hold's record")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(report = %id, error = %e, "the held report is kept in memory")
                }
            }
        }
        if let Some(report) = held {
            driver.restore_held(report).await;
        }

        let mut update = None;
        let state_dir = config.state_dir.clone();
        let credential =
            match tokio::task::spawn_blocking(move || credential::load(&state_dir)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "ignoring the stored credential");
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the credential failed");
                    None
                }
            };
        let uploader = match HttpTransport::new(&config.server, Some(clock.clone())) {
            Ok(transport) => {
                update =
                    Some(start_update(config, transport.clone(), spool.clone(), driver.presence()));
                let settings = UploadSettings {
                    device,
                    state_dir: config.state_dir.clone(),
                    enrollment_token: config.server.enrollment_token.clone(),
                    timing: config.upload,
                    config_path: Some(config.source.clone()),
                };
                let uploader =
                    Uploader::new(transport, spool.clone(), wake, settings, credential, enrolled)
                        .with_button_fault(button_fault)
                        .with_display_fault(display_fault)
                        .with_clock(clock);
                Some(tokio::spawn(uploader.run()))
            }
            Err(e) => {
                // Reports are still filed and kept; they go once the problem is fixed.
                tracing::error!(error = %e, "uploads disabled");
                None
            }
        };

        let (control_tx, control_rx) = mpsc::channel(16);
        let (press_tx, press_rx) = mpsc::channel(16);
        let users = PeerUsers::lookup(
            control::DEFAULT_KIOSK_USER,
            control::DEFAULT_DNS_USER,
            control::DEFAULT_REFUSED_USER,
        );
        let mut inputs = vec![tokio::spawn(control::serve(listener, control_tx.clone(), users))];
        inputs.extend(background);
        inputs.extend(update);
        inputs.extend(led);
        match &config.button {
            ButtonConfig::Evdev { device, key } => {
                inputs.push(tokio::spawn(button::forward(
                    EvdevButton::new(device.clone(), *key),
                    press_tx,
                )));
            }
            ButtonConfig::Gpio { pin, active_low } => {
                inputs.push(tokio::spawn(gpio_button(*pin, *active_low, press_tx)));
            }
            ButtonConfig::Stdin => {
                tracing::info!("press Enter in this window to report");
                inputs.push(tokio::spawn(button::forward(StdinButton::new(), press_tx)));
            }
            ButtonConfig::None => drop(press_tx),
        }

        if config.activity_devices != ActivityDevices::None {
            let button = match &config.button {
                ButtonConfig::Evdev { device, key } => Some((device.clone(), *key)),
                _ => None,
            };
            let (activity_tx, activity_rx) = mpsc::channel(1);
            inputs.push(tokio::spawn(activity::forward(
                EvdevActivity::new(config.activity_devices.clone(), button),
                RateLimit::new(activity::EVERY),
                activity_tx,
            )));
            driver = driver.with_activity(activity_rx);
        }

        let (shutdown, shutdown_rx) = oneshot::channel();
        let driver = tokio::spawn(driver.run(press_rx, control_rx, shutdown_rx));
        Ok(Daemon {
            device,
            socket: config.control_socket.clone(),
            shutdown,
            driver,
            inputs,
            uploader,
            control: control_tx,
        })
    }

    /// A channel to the core task, as the control socket has.
    pub fn control(&self) -> mpsc::Sender<ControlMsg> {
        self.control.clone()
    }

    pub fn device(&self) -> DeviceNumber {
        self.device
    }

    /// Stops taking input, lets the driver close what is open, stops uploading and removes the
    /// socket.
    pub async fn shutdown(self) {
        for task in &self.inputs {
            task.abort();
        }
        let _ = self.shutdown.send(());
        if let Err(e) = self.driver.await {
            tracing::error!(error = %e, "the core task failed");
        }
        if let Some(uploader) = self.uploader {
            uploader.abort();
        }
        if let Err(e) = std::fs::remove_file(&self.socket) {
            tracing::debug!(error = %e, "control socket not removed");
        }
        tracing::info!("stopped");
    }
}

/// Runs a picture PIN check (argon2, slow by design) on a blocking thread, so the async threads
/// are not held up by it.
async fn picture_check(
    check: impl FnOnce() -> Result<(), roster::SignInRefused> + Send + 'static,
) -> Result<(), roster::SignInRefused> {
    tokio::task::spawn_blocking(check).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "checking a picture PIN failed");
        Err(roster::SignInRefused::WrongPictures)
    })
}

/// Whose staff PIN `pin` is (slowly, off the async threads, against each PIN in force until
/// one matches).
async fn check_staff_pin(pins: Arc<UnlockPins>, pin: Option<Pin>) -> PinCheck {
    match pin {
        // With no PIN in force the core refuses whatever was typed.
        Some(_) if pins.is_empty() => PinCheck::Absent,
        None => PinCheck::Absent,
        Some(Pin(pin)) => match tokio::task::spawn_blocking(move || pins.check(&pin)).await {
            Ok(Some(staff)) => PinCheck::Right(staff),
            Ok(None) => PinCheck::Wrong,
            Err(e) => {
                tracing::error!(error = %e, "checking the staff PIN failed");
                PinCheck::Wrong
            }
        },
    }
}

/// The reply to a refused staff PIN: why, and until when unlocking is locked out if it is.
fn refused_reply(refused: Refused) -> Reply {
    let locked_until = match refused {
        Refused::LockedOut { until } => Some(until),
        _ => None,
    };
    Reply { locked_until, ..Reply::error(refused.to_string()) }
}

#[cfg(test)]
mod tests;
