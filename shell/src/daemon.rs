//! `slated` wired together: the imperative shell around [`crate::core`]. Owns startup, the task
//! that holds the core and carries out its commands, and shutdown; must hold no rule of its own
//! (what a press or a sign-in means is the core's) and no protocol details (those are
//! [`crate::control`]'s and [`crate::upload`]'s).
//!
//! ```text
//!  button task ──Press──▶ ┌────────────┐ ──BlankScreen/Stop/…──▶ display, apps
//!  control socket ──────▶ │ Driver     │ ──Spool(event)────────▶ spool ──wake──▶ uploader ──▶ server
//!        ◀──reply───────  │  (core)    │ ◀─ScreenDark/BlankFailed─ display
//!                         └────────────┘
//! ```
//!
//! The driver is one task, so inputs are applied one at a time, each to completion (a press is
//! blanked, confirmed and fsync'd before the next request is looked at).

use crate::apps::{Apps, LoggingApps};
use crate::button::{self, EvdevButton, Press, StdinButton};
use crate::config::{ButtonConfig, Config};
use crate::control::{self, ControlError, ControlMsg, Reply, Request};
use crate::core::{Command, Core, Foreground, Ids, Input, Refused};
use crate::credential;
use crate::display::{Display, LoggingDisplay};
use crate::spool::{SharedSpool, Spool, SpoolError};
use crate::upload::{HttpTransport, UploadSettings, Uploader};
use chrono::{DateTime, Utc};
use slate_protocol::{DeviceNumber, Event, EventBody, EventId, SessionId};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// How long the display may take to confirm darkness before the report is filed without it.
pub const BLANK_TIMEOUT: Duration = Duration::from_millis(500);
/// How often events that could not be written (a full disk) are tried again.
const UNSPOOLED_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Control(#[from] ControlError),
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
    /// Events that could not be written yet (disk full, I/O error), oldest first. Kept in memory
    /// and retried so that nothing is lost while the daemon runs.
    unspooled: VecDeque<Event>,
    blank_timeout: Duration,
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
            unspooled: VecDeque::new(),
            blank_timeout: BLANK_TIMEOUT,
        }
    }

    pub fn with_blank_timeout(mut self, timeout: Duration) -> Self {
        self.blank_timeout = timeout;
        self
    }

    /// Serves presses and control requests until `shutdown` fires (or its sender is dropped),
    /// then closes what is open so that it is on record.
    pub async fn run(
        mut self,
        mut presses: mpsc::Receiver<Press>,
        mut control: mpsc::Receiver<ControlMsg>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(press) = presses.recv() => {
                    self.press(press.pressed_at).await;
                }
                Some(msg) = control.recv() => {
                    let reply = self.handle(msg.request, msg.received_at).await;
                    let _ = msg.reply.send(reply);
                }
                _ = tokio::time::sleep(UNSPOOLED_RETRY), if !self.unspooled.is_empty() => {
                    self.retry_unspooled().await;
                }
            }
        }
        if let Err(refused) = self.apply(Utc::now(), Input::ShuttingDown).await {
            tracing::warn!(%refused, "shutdown input refused");
        }
        if !self.unspooled.is_empty() {
            tracing::error!(
                events = self.unspooled.len(),
                "stopping with events that could not be written to the spool"
            );
        }
    }

    /// Files `event` before anything else happens (the daemon's `hello`).
    pub async fn spool_now(&mut self, event: Event) -> Result<(), String> {
        self.spool_event(event).await
    }

    async fn press(&mut self, pressed_at: DateTime<Utc>) -> Reply {
        let input = Input::ButtonPressed { pressed_at, foreground: self.foreground.clone() };
        let filings = match self.apply(Utc::now(), input).await {
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

    async fn handle(&mut self, request: Request, received_at: DateTime<Utc>) -> Reply {
        let now = Utc::now();
        match request {
            Request::Press {} => self.press(received_at).await,
            Request::SignIn { pupil } => match self.apply(now, Input::SignIn { pupil }).await {
                Ok(_) => {
                    // A new session starts with nothing of the last one on screen.
                    self.foreground = None;
                    Reply { session: self.core.session().map(|s| s.id), ..Reply::ok() }
                }
                Err(refused) => Reply::error(refused.to_string()),
            },
            Request::SignOut {} => match self.apply(now, Input::SignOut).await {
                Ok(_) => {
                    self.foreground = None;
                    Reply::ok()
                }
                Err(refused) => Reply::error(refused.to_string()),
            },
            Request::Foreground { app, url, title } => {
                tracing::debug!(%app, "foreground changed");
                self.foreground = Some(Foreground { app, url, title });
                Reply::ok()
            }
            Request::Unlock {} => match self.apply(now, Input::StaffUnlocked).await {
                Ok(_) => Reply::ok(),
                Err(refused) => Reply::error(refused.to_string()),
            },
            Request::Status {} => Reply {
                device: Some(self.device()),
                state: Some(self.core.state_kind().as_str().to_owned()),
                spool_pending: Some((self.spool.len() + self.unspooled.len()) as u64),
                enrolled: Some(self.enrolled.load(Ordering::Relaxed)),
                ..Reply::ok()
            },
        }
    }

    fn device(&self) -> DeviceNumber {
        self.core.device()
    }

    /// Applies an input and every input that its commands bring back (darkness confirmed or
    /// not), to completion. Returns the reports filed on the way.
    async fn apply(&mut self, now: DateTime<Utc>, input: Input) -> Result<Vec<Filing>, Refused> {
        let mut queue = VecDeque::new();
        let mut filings = Vec::new();
        let commands = self.core.step(now, input, &mut self.ids)?;
        self.execute_all(commands, &mut queue, &mut filings).await;
        while let Some(follow_up) = queue.pop_front() {
            match self.core.step(Utc::now(), follow_up, &mut self.ids) {
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
                    Ok(Ok(confirmed_at)) => Input::ScreenDark { report, confirmed_at },
                    Ok(Err(e)) => {
                        tracing::error!(%report, error = %e, "darkness not confirmed; filing the report anyway");
                        Input::BlankFailed { report }
                    }
                    Err(_) => {
                        tracing::error!(%report, timeout_ms = self.blank_timeout.as_millis() as u64,
                            "the display did not confirm darkness in time; filing the report anyway");
                        Input::BlankFailed { report }
                    }
                };
                queue.push_back(answer);
            }
            Command::StopForegroundApp => {
                if let Err(e) = self.apps.stop_foreground().await {
                    tracing::error!(error = %e, "foreground app not stopped");
                }
            }
            Command::ShowReassurance => {
                if let Err(e) = self.display.show_reassurance().await {
                    tracing::error!(error = %e, "reassurance not shown");
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
            Command::Spool(event) => {
                let id = event.id;
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

    /// Writes an event to the spool after any still waiting, keeping order. On failure keeps it
    /// in memory.
    async fn spool_event(&mut self, event: Event) -> Result<(), String> {
        self.retry_unspooled().await;
        if !self.unspooled.is_empty() {
            let id = event.id;
            self.unspooled.push_back(event);
            tracing::error!(event = %id, waiting = self.unspooled.len(), "event kept in memory: the spool is not writable");
            return Err("the spool is not writable".into());
        }
        let copy = event.clone();
        match self.spool.with(move |s| s.append(&copy)).await {
            Ok(()) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                tracing::error!(event = %event.id, error = %e, "event kept in memory: spool write failed");
                self.unspooled.push_back(event);
                Err(e.to_string())
            }
        }
    }

    async fn retry_unspooled(&mut self) {
        while let Some(event) = self.unspooled.front().cloned() {
            let id = event.id;
            match self.spool.with(move |s| s.append(&event)).await {
                Ok(()) => {
                    self.unspooled.pop_front();
                    self.wake.notify_one();
                    tracing::info!(event = %id, "event written to the spool after a retry");
                }
                Err(_) => return,
            }
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
}

impl Daemon {
    /// Opens the spool (recovering it), files `hello`, and starts the uploader, the button, the
    /// control socket and the driver. Only a spool that cannot be opened or a control socket
    /// that cannot be bound stop it; a server that cannot be reached never does.
    pub async fn start(config: &Config) -> Result<Daemon, DaemonError> {
        let device = config.device_number;
        let spool_dir = config.state_dir.join("spool");
        let (spool, recovery) = tokio::task::spawn_blocking(move || Spool::open(&spool_dir))
            .await
            .expect("opening the spool does not panic")?;
        if recovery.is_clean() {
            tracing::info!(pending = recovery.kept, "spool opened");
        } else {
            tracing::warn!(
                kept = recovery.kept,
                quarantined = recovery.quarantined,
                torn_bytes = recovery.torn_bytes,
                repaired_tail = recovery.repaired_tail,
                "spool recovered from damage; damaged lines are in spool/corrupt.log"
            );
        }
        let spool = SharedSpool::new(spool);
        let wake = Arc::new(Notify::new());
        let enrolled = Arc::new(AtomicBool::new(false));

        let listener = control::bind(&config.control_socket)?;

        let mut driver = Driver::new(
            Core::new(device),
            ClockIds,
            LoggingDisplay,
            LoggingApps,
            spool.clone(),
            wake.clone(),
            enrolled.clone(),
        );
        let hello = Event::new(
            device,
            Utc::now(),
            EventBody::Hello { software_version: crate::SOFTWARE_VERSION.into() },
        );
        if driver.spool_now(hello).await.is_ok() {
            tracing::info!(%device, version = crate::SOFTWARE_VERSION, "hello filed");
        }

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
        let uploader = match HttpTransport::new(&config.server) {
            Ok(transport) => {
                let settings = UploadSettings {
                    device,
                    state_dir: config.state_dir.clone(),
                    enrollment_token: config.server.enrollment_token.clone(),
                    timing: config.upload,
                };
                let uploader =
                    Uploader::new(transport, spool.clone(), wake, settings, credential, enrolled);
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
        let mut inputs = vec![tokio::spawn(control::serve(listener, control_tx))];
        match &config.button {
            ButtonConfig::Evdev { device, key } => {
                inputs.push(tokio::spawn(button::forward(
                    EvdevButton::new(device.clone(), *key),
                    press_tx,
                )));
            }
            ButtonConfig::Stdin => {
                tracing::info!("press Enter in this window to report");
                inputs.push(tokio::spawn(button::forward(StdinButton::new(), press_tx)));
            }
            ButtonConfig::None => drop(press_tx),
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
        })
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

#[cfg(test)]
mod tests;
