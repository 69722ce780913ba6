//! Getting events to the school server: enrollment, the upload loop and heartbeats. Owns the
//! HTTP conversation and the retry policy; must not change an event, and must not let one leave
//! the spool except by the server's 200 or into `rejected.log`.
//!
//! The policy is pure and tested on its own: [`classify_ingest`] and [`classify_enroll`] say what
//! an answer means, [`backoff`] how long to wait, [`plan_batch`] how much to send. The loop
//! ([`Uploader::run`]) talks through the [`Transport`] trait: [`HttpTransport`] (reqwest with
//! rustls) in the daemon, a fake in tests.
//!
//! ```text
//! no credential ──token──▶ POST /api/v1/enroll ──200──▶ credential stored (0600)
//!       │ no token: log once, keep spooling, upload nothing
//! spool has events ──▶ POST /api/v1/events (≤ MAX_EVENTS_PER_BATCH, ≤ MAX_BODY_BYTES)
//!   200 → acknowledge   5xx/network → backoff with jitter   400 → rejected.log
//!   401/403 → re-enroll if a token is configured, else wait long   413 → halve the batch
//! spool empty ──▶ wait for a new event (woken at once) or the heartbeat tick (only when online)
//! ```

use crate::clock::ClockWatch;
use crate::config::{Secret, ServerConfig, UploadConfig};
use crate::credential::{self, Credential};
use crate::spool::SharedSpool;
use chrono::Utc;
use slate_protocol::routes;
use slate_protocol::{
    Batch, ButtonFault, DeviceNumber, DisplayFault, EnrollReply, EnrollRequest, ErrorReply, Event,
    EventBody, EventId, IngestReply, MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH, PROTOCOL_VERSION,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, MissedTickBehavior};

/// The most of a server's answer we read; answers are a few dozen bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read the server CA certificate {}: {source}", path.display())]
    CaRead { path: PathBuf, source: std::io::Error },
    #[error("the server CA certificate {} holds no usable PEM certificate{}", path.display(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    CaParse { path: PathBuf, detail: Option<String> },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("no answer from the server: {0}")]
    Transport(String),
}

/// An HTTP answer: status and (capped) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn json(status: u16, body: &impl serde::Serialize) -> Self {
        Self { status, body: serde_json::to_vec(body).expect("serialisable") }
    }
}

/// The requests the uploader makes.
pub trait Transport: Send + Sync + 'static {
    fn post_events(
        &self,
        credential: &Credential,
        batch: &Batch,
    ) -> impl Future<Output = Result<HttpAnswer, UploadError>> + Send;
    fn enroll(
        &self,
        request: &EnrollRequest,
    ) -> impl Future<Output = Result<HttpAnswer, UploadError>> + Send;
    /// Asks for a replacement credential (`routes::DEVICE_CREDENTIAL`).
    fn replace_credential(
        &self,
        credential: &Credential,
    ) -> impl Future<Output = Result<HttpAnswer, UploadError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Pure policy

/// What an answer to `POST /api/v1/events` means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The server has every event: acknowledge them.
    Stored(IngestReply),
    /// Try the same batch again later (network, 5xx, 429, an answer we cannot read).
    Retry(String),
    /// The credential was refused (401/403).
    Unauthorized(String),
    /// The batch is malformed (400): sending it again cannot help.
    Malformed(String),
    /// Over the server's size limit (413).
    TooLarge,
}

/// Says what an answer to a batch means. Pure.
pub fn classify_ingest(status: u16, body: &[u8]) -> IngestOutcome {
    match status {
        200..=299 => match serde_json::from_slice::<IngestReply>(body) {
            Ok(reply) => IngestOutcome::Stored(reply),
            // Without the server's word that it stored them, the events stay.
            Err(_) => IngestOutcome::Retry(format!("HTTP {status} with an unreadable answer")),
        },
        400 => IngestOutcome::Malformed(reason(status, body)),
        401 | 403 => IngestOutcome::Unauthorized(reason(status, body)),
        413 => IngestOutcome::TooLarge,
        // 404/405 mean a wrong URL or an older server: waiting is all the device can do.
        _ => IngestOutcome::Retry(reason(status, body)),
    }
}

/// What an answer to `POST /api/v1/enroll` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    Enrolled(Credential),
    /// The token was refused (or the answer was for another device): retrying soon cannot help.
    Refused(String),
    Retry(String),
}

/// Says what an answer to an enrollment means for `device`. Pure.
pub fn classify_enroll(status: u16, body: &[u8], device: DeviceNumber) -> EnrollOutcome {
    match status {
        200..=299 => match serde_json::from_slice::<EnrollReply>(body) {
            Ok(reply) if reply.device != device => EnrollOutcome::Refused(format!(
                "the server enrolled device {} but this is device {device}",
                reply.device
            )),
            Ok(reply) => match Credential::new(reply.credential) {
                Ok(c) => EnrollOutcome::Enrolled(c),
                Err(e) => {
                    EnrollOutcome::Refused(format!("the server sent an unusable credential: {e}"))
                }
            },
            Err(_) => EnrollOutcome::Retry(format!("HTTP {status} with an unreadable answer")),
        },
        400 | 401 | 403 => EnrollOutcome::Refused(reason(status, body)),
        _ => EnrollOutcome::Retry(reason(status, body)),
    }
}

/// A short, printable reason from an error answer: its `ErrorReply`, else the status.
fn reason(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorReply>(body) {
        Ok(ErrorReply { error }) => {
            let clean: String = error.chars().filter(|c| !c.is_control()).take(200).collect();
            format!("HTTP {status}: {clean}")
        }
        Err(_) => format!("HTTP {status}"),
    }
}

/// The wait before retry number `failures + 1`: a ceiling doubling from `2 × min` up to `max`,
/// and a delay drawn by `jitter` (in [0, 1)) from the upper half of it ("equal jitter"), so that
/// a classroom of devices coming back online does not retry in step. Never below `min` nor above
/// `max`. Pure.
pub fn backoff(failures: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let max = max.max(min);
    let ceiling =
        min.saturating_mul(2u32.saturating_pow(failures.saturating_add(1).min(31))).min(max);
    let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
    let delay = ceiling / 2 + (ceiling / 2).mul_f64(jitter);
    delay.clamp(min, max)
}

/// What to do with the oldest events, given the newer kinds the server said it takes
/// (`None`: it has not said yet). Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The first `n` may go.
    Send(usize),
    /// The oldest is of a newer kind and the server has not said whether it takes it: ask
    /// first (a heartbeat's answer says), never risking the batch.
    Ask,
    /// The server does not take these (an older release, which would refuse the whole batch
    /// for them): set them aside into `rejected.log`, kept on the card, so the rest go.
    SetAside(Vec<EventId>),
}

/// [`Gate`] for the oldest `events`. An older server refuses a whole batch with one event of a
/// kind it does not know, so a newer kind goes only to a server that named it in its answer.
pub fn gate_batch(events: &[Event], accepts: Option<&[String]>) -> Gate {
    let refused: Vec<EventId> = events
        .iter()
        .filter(|e| IngestReply::takes(accepts, e.body.accepts_word()) == Some(false))
        .map(|e| e.id)
        .collect();
    if !refused.is_empty() {
        return Gate::SetAside(refused);
    }
    match events.iter().position(|e| IngestReply::takes(accepts, e.body.accepts_word()).is_none()) {
        Some(0) => Gate::Ask,
        Some(n) => Gate::Send(n),
        None => Gate::Send(events.len()),
    }
}

/// How many of `events`, from the front, to send in one batch: at most `max_events`, and a body
/// of at most `max_bytes`. At least one if there is any (a single event over the limit is the
/// caller's to set aside). Pure.
pub fn plan_batch(events: &[Event], max_events: usize, max_bytes: usize) -> usize {
    // `{"v":1,"events":[` + `]}`
    let mut size = 20;
    let mut n = 0;
    for event in events.iter().take(max_events.max(1)) {
        let len = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(usize::MAX / 2) + 1;
        if n > 0 && size + len > max_bytes {
            break;
        }
        size += len;
        n += 1;
    }
    n
}

/// Backoff jitter, in [0, 1): fastrand's generator, seeded differently on every device and
/// start; not for secrets.
#[derive(Debug)]
struct Jitter(fastrand::Rng);

impl Jitter {
    fn seeded() -> Self {
        Self(fastrand::Rng::new())
    }

    fn next(&mut self) -> f64 {
        self.0.f64()
    }
}

// ---------------------------------------------------------------------------------------------
// The loop

/// What the uploader needs to know.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub device: DeviceNumber,
    pub state_dir: PathBuf,
    pub enrollment_token: Option<Secret>,
    pub timing: UploadConfig,
    /// The configuration file the token came from: its token line is removed once used.
    pub config_path: Option<PathBuf>,
}

/// Drains the spool to the server. Run it as a task; abort the task to stop it (every step is
/// safe to cut: an event leaves the spool only after the server's 200).
pub struct Uploader<T: Transport> {
    transport: T,
    spool: SharedSpool,
    wake: Arc<Notify>,
    settings: UploadSettings,
    credential: Option<Credential>,
    /// Shared with the daemon for `status`.
    enrolled: Arc<AtomicBool>,
    started: Instant,
    failures: u32,
    /// The newer event kinds the server said it takes in its last answer (`None`: no answer yet
    /// since start).
    accepts: Option<Vec<String>>,
    jitter: Jitter,
    /// The report button's fault, as the daemon's core last said it; sent in each heartbeat.
    button_fault: watch::Receiver<Option<ButtonFault>>,
    /// Whether a press would darken the screen, as the daemon last saw it; in each heartbeat.
    display_fault: watch::Receiver<Option<DisplayFault>>,
    /// Stamps heartbeats with the clock's evidence (the server's "last heard of this boot").
    clock: Option<Arc<ClockWatch>>,
}

impl<T: Transport> Uploader<T> {
    /// `wake` is notified whenever an event is spooled.
    pub fn new(
        transport: T,
        spool: SharedSpool,
        wake: Arc<Notify>,
        settings: UploadSettings,
        credential: Option<Credential>,
        enrolled: Arc<AtomicBool>,
    ) -> Self {
        enrolled.store(credential.is_some(), Ordering::Relaxed);
        Self {
            transport,
            spool,
            wake,
            settings,
            credential,
            enrolled,
            started: Instant::now(),
            failures: 0,
            accepts: None,
            jitter: Jitter::seeded(),
            button_fault: watch::channel(None).1,
            display_fault: watch::channel(None).1,
            clock: None,
        }
    }

    /// Heartbeats carry this clock's evidence.
    pub fn with_clock(mut self, clock: Arc<ClockWatch>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Heartbeats say the report button's fault as this receiver holds it.
    pub fn with_button_fault(mut self, fault: watch::Receiver<Option<ButtonFault>>) -> Self {
        self.button_fault = fault;
        self
    }

    /// Heartbeats say the display's fault as this receiver holds it.
    pub fn with_display_fault(mut self, fault: watch::Receiver<Option<DisplayFault>>) -> Self {
        self.display_fault = fault;
        self
    }

    fn next_backoff(&mut self) -> Duration {
        let t = self.settings.timing;
        let d = backoff(self.failures, t.retry_min, t.retry_max, self.jitter.next());
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// Runs until the task is aborted.
    pub async fn run(mut self) {
        let period = self.settings.timing.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut online = false;
        let mut max_batch = MAX_EVENTS_PER_BATCH;

        loop {
            let Some(credential) = self.credential.clone() else {
                let Some(token) = self.settings.enrollment_token.clone() else {
                    tracing::error!(
                        state_dir = %self.settings.state_dir.display(),
                        "no server credential stored and no `server.enrollment_token` configured: \
                         events are kept in the spool but not uploaded"
                    );
                    std::future::pending::<()>().await;
                    unreachable!("pending() never completes");
                };
                if let Err(wait) = self.enroll(&token).await {
                    tokio::time::sleep(wait).await;
                }
                continue;
            };

            let batch = self.next_batch(max_batch, &credential).await;
            if batch.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = heartbeat.tick() => {
                        if online {
                            online = self.send_heartbeat(&credential).await;
                        }
                    }
                }
                continue;
            }

            let ids: Vec<EventId> = batch.iter().map(|e| e.id).collect();
            let n = ids.len();
            let outcome = match self.transport.post_events(&credential, &Batch::new(batch)).await {
                Ok(answer) => classify_ingest(answer.status, &answer.body),
                Err(e) => IngestOutcome::Retry(e.to_string()),
            };
            match outcome {
                IngestOutcome::Stored(reply) => {
                    online = true;
                    self.accepts = Some(reply.accepts.clone());
                    self.failures = 0;
                    max_batch = MAX_EVENTS_PER_BATCH;
                    tracing::info!(
                        events = n,
                        stored = reply.stored,
                        duplicates = reply.duplicates,
                        "uploaded"
                    );
                    let acked = ids.clone();
                    if let Err(e) = self.spool.with(move |s| s.acknowledge(&acked)).await {
                        // They stay in the spool and go again; the server ignores duplicates.
                        tracing::error!(error = %e, "could not remove uploaded events from the spool");
                        let wait = self.next_backoff();
                        tokio::time::sleep(wait).await;
                    }
                    if reply.rotate_credential {
                        self.replace_credential(&credential).await;
                    }
                }
                IngestOutcome::Retry(reason) => {
                    online = false;
                    let wait = self.next_backoff();
                    tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, pending = self.spool.len(), "upload failed");
                    tokio::time::sleep(wait).await;
                }
                IngestOutcome::Unauthorized(reason) => {
                    online = false;
                    tracing::warn!(%reason, "the server refused this device's credential");
                    if let Some(token) = self.settings.enrollment_token.clone() {
                        if self.enroll(&token).await.is_ok() {
                            continue;
                        }
                    }
                    tokio::time::sleep(self.settings.timing.retry_max).await;
                }
                IngestOutcome::Malformed(reason) => {
                    tracing::error!(events = n, %reason, "the server refused a batch as malformed; moved to rejected.log");
                    self.reject(ids, reason).await;
                }
                IngestOutcome::TooLarge if n == 1 => {
                    tracing::error!(
                        "the server refused one event as too large; moved to rejected.log"
                    );
                    self.reject(ids, "HTTP 413: too large for the server".into()).await;
                }
                IngestOutcome::TooLarge => {
                    max_batch = n / 2;
                    tracing::warn!(
                        events = n,
                        next = max_batch,
                        "batch too large for the server; halving"
                    );
                }
            }
        }
    }

    /// The next batch to send, oldest first. Events that could never be accepted (they fail the
    /// protocol's own checks) are set aside into `rejected.log` first, so that one bad event
    /// cannot hold back or spoil a batch of good ones.
    async fn next_batch(&mut self, max_batch: usize, credential: &Credential) -> Vec<Event> {
        loop {
            // Read on the blocking pool: the records are on the card (or, on a full card,
            // in memory).
            let mut candidates = self.spool.with(move |s| s.oldest(max_batch)).await;
            match gate_batch(&candidates, self.accepts.as_deref()) {
                Gate::Send(n) => candidates.truncate(n),
                Gate::Ask => {
                    if !self.send_heartbeat(credential).await {
                        let wait = self.next_backoff();
                        tokio::time::sleep(wait).await;
                    }
                    continue;
                }
                Gate::SetAside(ids) => {
                    tracing::warn!(
                        events = ids.len(),
                        "the server does not take these newer events (an older release); moved to rejected.log"
                    );
                    self.reject(ids, "the server does not take this kind of event".into()).await;
                    continue;
                }
            }
            let bad: Vec<(EventId, String)> = candidates
                .iter()
                .filter_map(|e| e.validate().err().map(|err| (e.id, err.to_string())))
                .collect();
            if bad.is_empty() {
                let budget = MAX_BODY_BYTES - 1024;
                let n = plan_batch(&candidates, max_batch, budget);
                let too_big =
                    n == 1 && Batch::new(candidates[..1].to_vec()).to_json().len() > budget;
                if !too_big {
                    return candidates.into_iter().take(n).collect();
                }
                let id = candidates[0].id;
                tracing::error!(event = %id, "an event is too large to upload; moved to rejected.log");
                self.reject(vec![id], "too large to upload".into()).await;
                continue;
            }
            for (id, reason) in bad {
                tracing::error!(event = %id, %reason, "an invalid event was set aside into rejected.log");
                self.reject(vec![id], reason).await;
            }
        }
    }

    async fn reject(&mut self, ids: Vec<EventId>, reason: String) {
        let result = self.spool.with(move |s| s.reject(&ids, &reason, Utc::now())).await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not move events to rejected.log; they stay in the spool");
            let wait = self.next_backoff();
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends a heartbeat straight to the server (never spooled: it is liveness only). Returns
    /// whether the server took it.
    async fn send_heartbeat(&mut self, credential: &Credential) -> bool {
        let now = Utc::now();
        let mut event = Event::new(
            self.settings.device,
            now,
            EventBody::Heartbeat {
                uptime_s: self.started.elapsed().as_secs(),
                spool_pending: u32::try_from(self.spool.len()).unwrap_or(u32::MAX),
                button_fault: *self.button_fault.borrow(),
                display_fault: *self.display_fault.borrow(),
                storage_fault: self.spool.storage_fault(),
            },
        );
        event.clock = self.clock.as_ref().and_then(|clock| clock.stamp(now));
        match self.transport.post_events(credential, &Batch::new(vec![event])).await {
            Ok(answer) => match classify_ingest(answer.status, &answer.body) {
                IngestOutcome::Stored(reply) => {
                    tracing::debug!("heartbeat sent");
                    self.accepts = Some(reply.accepts.clone());
                    if reply.rotate_credential {
                        self.replace_credential(credential).await;
                    }
                    true
                }
                other => {
                    tracing::warn!(outcome = ?other, "heartbeat not accepted");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                false
            }
        }
    }

    /// IT asked for this device's credential to be replaced: fetch a replacement, store it,
    /// then use it. The server accepts the old one until the new one is first used, so any
    /// failure here (an answer lost, a write that fails) leaves the device working with the old
    /// one, and the next answer asks again.
    async fn replace_credential(&mut self, current: &Credential) {
        let outcome = match self.transport.replace_credential(current).await {
            Ok(answer) => classify_enroll(answer.status, &answer.body, self.settings.device),
            Err(e) => EnrollOutcome::Retry(e.to_string()),
        };
        let replacement = match outcome {
            EnrollOutcome::Enrolled(replacement) => replacement,
            EnrollOutcome::Refused(reason) | EnrollOutcome::Retry(reason) => {
                tracing::warn!(%reason, "could not get a replacement credential; asking again later");
                return;
            }
        };
        let dir = self.settings.state_dir.clone();
        let stored = replacement.clone();
        match tokio::task::spawn_blocking(move || credential::store(&dir, &stored)).await {
            Ok(Ok(())) => {
                tracing::info!("credential replaced, as the server asked");
                self.credential = Some(replacement);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not save the replacement credential; keeping the old one")
            }
            Err(e) => {
                tracing::error!(error = %e, "saving the replacement credential failed; keeping the old one")
            }
        }
    }

    /// Exchanges the token for a credential and stores it. On failure returns how long to wait.
    async fn enroll(&mut self, token: &Secret) -> Result<(), Duration> {
        let request = EnrollRequest {
            v: PROTOCOL_VERSION,
            device: self.settings.device,
            token: token.expose().to_owned(),
            software_version: crate::SOFTWARE_VERSION.to_owned(),
        };
        let outcome = match self.transport.enroll(&request).await {
            Ok(answer) => classify_enroll(answer.status, &answer.body, self.settings.device),
            Err(e) => EnrollOutcome::Retry(e.to_string()),
        };
        match outcome {
            EnrollOutcome::Enrolled(credential) => {
                let dir = self.settings.state_dir.clone();
                let stored = credential.clone();
                match tokio::task::spawn_blocking(move || credential::store(&dir, &stored)).await {
                    Ok(Ok(())) => {
                        tracing::info!(device = %self.settings.device, "enrolled with the server")
                    }
                    // Used for now; after a restart the device needs a new token.
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "enrolled, but the credential could not be saved")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "enrolled, but saving the credential failed")
                    }
                }
                if let Some(path) = self.settings.config_path.clone() {
                    let shown = path.display().to_string();
                    match tokio::task::spawn_blocking(move || {
                        crate::config::remove_enrollment_token(&path)
                    })
                    .await
                    {
                        Ok(Ok(true)) => {
                            tracing::info!(config = %shown, "used enrollment token removed from the configuration")
                        }
                        Ok(Ok(false)) => {}
                        // A read-only SD card: the token is spent at the server anyway.
                        Ok(Err(e)) => {
                            tracing::warn!(config = %shown, error = %e, "the used enrollment token could not be removed from the configuration")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "removing the used enrollment token failed")
                        }
                    }
                }
                self.credential = Some(credential);
                self.enrolled.store(true, Ordering::Relaxed);
                self.failures = 0;
                Ok(())
            }
            EnrollOutcome::Refused(reason) => {
                tracing::error!(%reason, "enrollment refused; check `server.enrollment_token`");
                Err(self.settings.timing.retry_max)
            }
            EnrollOutcome::Retry(reason) => {
                let wait = self.next_backoff();
                tracing::warn!(%reason, retry_in_ms = wait.as_millis() as u64, "enrollment failed");
                Err(wait)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The real transport: reqwest over rustls, trusting the system roots plus the configured CA.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    events_url: String,
    enroll_url: String,
    credential_url: String,
    /// The server's base URL, for the update's routes.
    base_url: String,
    /// Told the server's time from each answer over TLS (`None`: tests, or plain HTTP).
    clock: Option<Arc<ClockWatch>>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").field("events_url", &self.events_url).finish()
    }
}

impl HttpTransport {
    /// Builds the client. Reads `ca_certificate` if one is configured. With `clock`, the
    /// server's certificate is checked with the allowance of [`crate::server_tls`] while the
    /// clock is not known, and the server's time on answers over TLS may set the clock.
    pub fn new(server: &ServerConfig, clock: Option<Arc<ClockWatch>>) -> Result<Self, UploadError> {
        let clock_known: crate::server_tls::ClockKnown = match &clock {
            Some(clock) => clock.known_now(),
            None => Arc::new(|| true),
        };
        // Only TLS checked against the school's CA vouches for the time; plain HTTP does not.
        let clock = clock.filter(|_| server.url.starts_with("https://"));
        Ok(Self {
            client: http_client(server, clock_known)?,
            events_url: server.endpoint(routes::EVENTS),
            enroll_url: server.endpoint(routes::ENROLL),
            credential_url: server.endpoint(routes::DEVICE_CREDENTIAL),
            base_url: server.url.clone(),
            clock,
        })
    }
}

/// The HTTP client every request to the server uses: rustls, the system roots plus the
/// configured CA ([`crate::server_tls`]), no redirects. Reads `ca_certificate` if one is
/// configured.
pub fn http_client(
    server: &ServerConfig,
    clock_known: crate::server_tls::ClockKnown,
) -> Result<reqwest::Client, UploadError> {
    let mut school_ca = Vec::new();
    if let Some(path) = &server.ca_certificate {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let pem = std::fs::read(path)
            .map_err(|source| UploadError::CaRead { path: path.clone(), source })?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            school_ca.push(cert.map_err(|e| UploadError::CaParse {
                path: path.clone(),
                detail: Some(e.to_string()),
            })?);
        }
        if school_ca.is_empty() {
            return Err(UploadError::CaParse { path: path.clone(), detail: None });
        }
    }
    let tls =
        crate::server_tls::client_config(school_ca, clock_known).map_err(|detail| match &server
            .ca_certificate
        {
            Some(path) => UploadError::CaParse { path: path.clone(), detail: Some(detail) },
            None => UploadError::Client(detail),
        })?;
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("slated/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| UploadError::Client(e.to_string()))
}

impl HttpTransport {
    /// The client, for the update's requests (same TLS, same server).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The URL of `path` on the server.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body: Vec<u8>,
    ) -> Result<HttpAnswer, UploadError> {
        let mut response = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| UploadError::Transport(error_chain(&e)))?;
        if let Some(clock) = &self.clock {
            let date = response.headers().get(reqwest::header::DATE);
            match date.and_then(|d| d.to_str().ok()).map(chrono::DateTime::parse_from_rfc2822) {
                Some(Ok(date)) => clock.server_time(chrono::Utc::now(), date.to_utc()),
                Some(Err(e)) => tracing::debug!(error = %e, "the server's Date is not a date"),
                None => {}
            }
        }
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| UploadError::Transport(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer { status, body })
    }
}

/// An error with its causes, for one log line ("error sending request: … : connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for HttpTransport {
    async fn post_events(
        &self,
        credential: &Credential,
        batch: &Batch,
    ) -> Result<HttpAnswer, UploadError> {
        let request = self.client.post(&self.events_url).bearer_auth(credential.expose());
        self.send(request, batch.to_json()).await
    }

    async fn enroll(&self, request: &EnrollRequest) -> Result<HttpAnswer, UploadError> {
        let body = serde_json::to_vec(request).expect("an enroll request serialises");
        self.send(self.client.post(&self.enroll_url), body).await
    }

    async fn replace_credential(&self, credential: &Credential) -> Result<HttpAnswer, UploadError> {
        let request = self.client.post(&self.credential_url).bearer_auth(credential.expose());
        self.send(request, b"{}".to_vec()).await
    }
}

#[cfg(test)]
mod tests;
