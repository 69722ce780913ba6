//! Devices update themselves (issue 16, the device's half): slated checks in with the server
//! (`POST /api/v1/device/update`), downloads the offered RAUC bundle in the background and
//! resumably into `<state_dir>/update/`, has RAUC write it into the other root slot only while
//! no pupil is signed in, and reboots into it only when the device has been idle for a while,
//! every event is uploaded and IT's `reboot_after` has passed. `slate-mark-good` confirms the new
//! slot or goes back; when it goes back it leaves `update/trial-failed`, which slated reads at
//! its next start and reports ("rolled back: ...") so that version is never tried again.
//!
//! ```text
//!  check in ──offer──▶ download <sha256>.part (Range from its length) ──sha256 ok──▶ <sha256>.raucb
//!     ▲                          │ cut: resume next time   │ wrong: removed, that bundle given up
//!     │ every 15 min             ▼
//!     └── state ◀── install (RAUC D-Bus, nobody signed in) ──▶ reboot (logind, idle 10 min)
//! ```
//!
//! Every decision is pure and table-tested in [`decide`]; this module is the imperative shell:
//! the check-in through [`UpdateServer`] (the uploader's [`HttpTransport`], a fake in tests),
//! the download ([`download`]), RAUC and the reboot through [`system`]'s small traits. It never
//! touches the report button's path: it is its own task, sees who is signed in only through a
//! [`Presence`] the core task publishes, and any failure is logged, reported and tried again
//! later, never a reason for slated to stop.

pub mod decide;
pub mod download;
pub mod system;

use crate::credential::{self, Credential};
use crate::spool::SharedSpool;
use crate::upload::{HttpAnswer, HttpTransport, UploadError};
use chrono::Utc;
use decide::{
    decide, files_to_remove, on_start, parse_release, parse_trial_failed, report, LocalUpdate,
    Offer, OfferedBundle, Pending, Phase, Situation, Step,
};
use slate_protocol::routes;
use slate_protocol::update::{UpdateCheck, UpdateOffer, UpdateReply};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use system::{InstallError, Installer, Rebooter};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The directory under the state directory (on the data partition, kept across updates).
pub const UPDATE_DIR: &str = "update";
/// What the device keeps about its update, in [`UPDATE_DIR`].
pub const STATE_FILE: &str = "state.json";
/// What `slate-mark-good` writes in [`UPDATE_DIR`] when it gives up on a trial slot.
pub const TRIAL_FAILED_FILE: &str = "trial-failed";
/// The image's version (`SLATE_VERSION=`), written by `images/build`.
pub const RELEASE_FILE: &str = "/etc/slate-release";
/// Read instead of [`RELEASE_FILE`] when set. For tests, as [`crate::clock::BOOT_ID_FILE_ENV`].
pub const RELEASE_FILE_ENV: &str = "SLATE_RELEASE_FILE";
/// The first check's delay in seconds (no jitter) when set. For tests: the real one is minutes.
pub const FIRST_CHECK_ENV: &str = "SLATE_UPDATE_FIRST_CHECK_S";
/// How often the device checks in.
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);
/// The first check after a start comes this long after it, plus up to as much again (jitter: a
/// classroom switched on together does not check in together).
pub const FIRST_CHECK: Duration = Duration::from_secs(60);
/// How often pending work (an install waiting for sign-out, a reboot for idleness) is looked
/// at between checks.
pub const RECHECK: Duration = Duration::from_secs(30);

/// Whether the device is in use, as the core task last said: a pupil signed in or a report
/// holding it, or nobody since a moment on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    InUse,
    IdleSince(Instant),
}

/// The requests the update makes, beside the uploader's.
pub trait UpdateServer: Send + Sync + 'static {
    /// `POST /api/v1/device/update` with `check`.
    fn check(
        &self,
        credential: &Credential,
        check: &UpdateCheck,
    ) -> impl Future<Output = Result<HttpAnswer, UploadError>> + Send;
    /// `GET /api/v1/device/update/bundles/<sha256>`, from byte `from` (`Range`) when not 0.
    fn fetch_bundle(
        &self,
        credential: &Credential,
        sha256: &str,
        from: u64,
    ) -> impl Future<Output = Result<BundleAnswer, UploadError>> + Send;
}

/// The head of a bundle's answer and its body, chunk by chunk (an `Err` when the connection
/// broke; the channel ends when the body does).
#[derive(Debug)]
pub struct BundleAnswer {
    pub status: u16,
    /// Where a 206's `Content-Range` starts.
    pub range_start: Option<u64>,
    pub chunks: mpsc::Receiver<Result<Vec<u8>, String>>,
}

/// What a check's answer means: the offer (`None`: nothing to run, or a server without updates,
/// which answers 404), or why it could not be read. Pure.
pub fn classify_check(status: u16, body: &[u8]) -> Result<Option<UpdateOffer>, String> {
    match status {
        200 => UpdateReply::from_json(body)
            .map(|reply| reply.offer)
            .map_err(|e| format!("update reply refused: {e}")),
        404 => Ok(None),
        other => Err(format!("HTTP {other}")),
    }
}

/// What the update needs to know.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    pub state_dir: PathBuf,
    /// `/etc/slate-release`, elsewhere in tests.
    pub release_file: PathBuf,
    /// This boot's id (a slot written in an earlier boot is no longer set to be tried).
    pub boot_id: String,
    pub check_every: Duration,
    pub first_check: Duration,
    /// Whether up to `first_check` more is added at random.
    pub first_check_jitter: bool,
    pub recheck: Duration,
    pub idle_before_reboot: Duration,
}

impl UpdateSettings {
    pub fn new(state_dir: PathBuf, boot_id: String) -> Self {
        Self {
            state_dir,
            release_file: PathBuf::from(RELEASE_FILE),
            boot_id,
            check_every: CHECK_EVERY,
            first_check: FIRST_CHECK,
            first_check_jitter: true,
            recheck: RECHECK,
            idle_before_reboot: decide::IDLE_BEFORE_REBOOT,
        }
    }

    /// [`UpdateSettings::new`] with the test overrides from the environment
    /// ([`RELEASE_FILE_ENV`], [`FIRST_CHECK_ENV`]).
    pub fn from_env(state_dir: PathBuf, boot_id: String) -> Self {
        let mut settings = Self::new(state_dir, boot_id);
        if let Some(path) = std::env::var_os(RELEASE_FILE_ENV) {
            settings.release_file = PathBuf::from(path);
        }
        if let Some(seconds) = std::env::var(FIRST_CHECK_ENV).ok().and_then(|s| s.parse().ok()) {
            settings.first_check = Duration::from_secs(seconds);
            settings.first_check_jitter = false;
        }
        settings
    }

    pub fn dir(&self) -> PathBuf {
        self.state_dir.join(UPDATE_DIR)
    }
}

/// The image version this device runs: `SLATE_VERSION` from the release file, or (a device not
/// built by `images/build`, a test) slated's own version.
pub fn running_version(release_file: &Path) -> String {
    match std::fs::read_to_string(release_file).ok().as_deref().and_then(parse_release) {
        Some(version) => version,
        None => {
            tracing::info!(release_file = %release_file.display(), version = crate::SOFTWARE_VERSION,
                "update: no image version in the release file; sending slated's own");
            crate::SOFTWARE_VERSION.to_owned()
        }
    }
}

/// Checks in, downloads, installs and reboots. Run it as a task; abort it to stop (every step
/// is safe to cut: the state is written before and after each, and a cut download resumes).
pub struct Updater<S: UpdateServer, I: Installer, R: Rebooter> {
    server: S,
    installer: I,
    rebooter: R,
    spool: SharedSpool,
    presence: watch::Receiver<Presence>,
    settings: UpdateSettings,
    running: String,
    local: LocalUpdate,
    /// What the server said last (`None`: not heard since the start or the last failure).
    offer: Option<Option<UpdateOffer>>,
    /// What the server was told last, so a change is told soon.
    told: Option<UpdateCheck>,
    /// RAUC is writing the other slot (told to the server as `installing`).
    installing: bool,
    /// When RAUC or logind may be asked again after one could not be reached or refused.
    system_not_before: Option<Instant>,
    /// Until when this boot may still be a trial of the version it started (no install before).
    trial_settles_at: Option<Instant>,
    jitter: fastrand::Rng,
}

impl<S: UpdateServer, I: Installer, R: Rebooter> Updater<S, I, R> {
    pub fn new(
        server: S,
        installer: I,
        rebooter: R,
        spool: SharedSpool,
        presence: watch::Receiver<Presence>,
        settings: UpdateSettings,
    ) -> Self {
        Self {
            server,
            installer,
            rebooter,
            spool,
            presence,
            settings,
            running: String::new(),
            local: LocalUpdate::default(),
            offer: None,
            told: None,
            installing: false,
            trial_settles_at: None,
            system_not_before: None,
            jitter: fastrand::Rng::new(),
        }
    }

    /// Runs until the task is aborted.
    pub async fn run(mut self) {
        self.start().await;
        let first = self.settings.first_check;
        let jitter = if self.settings.first_check_jitter { self.jitter.f64() } else { 0.0 };
        let mut next_check = Instant::now() + first + first.mul_f64(jitter);
        loop {
            if Instant::now() >= next_check {
                self.check_in().await;
                let every = self.settings.check_every;
                // 0.9 to 1.1 of the period.
                next_check = Instant::now() + every.mul_f64(0.9 + 0.2 * self.jitter.f64());
            }
            self.work().await;
            let recheck = Instant::now() + self.settings.recheck;
            // A change the server has not heard of yet is told at the next recheck.
            if self.told.as_ref() != Some(&self.report_now().await) {
                next_check = next_check.min(recheck);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_check.min(recheck)) => {}
                // Sign-in and sign-out: an install waiting for it goes at once.
                changed = self.presence.changed() => {
                    if changed.is_err() {
                        // The core task is gone: slated is stopping.
                        std::future::pending::<()>().await;
                    }
                    // Seen: the next wait is for the next change.
                    self.presence.mark_unchanged();
                }
            }
        }
    }

    /// Settles what the last boot left: the running version, the state kept on disk, a trial
    /// slot `slate-mark-good` gave up on; then removes files nobody needs.
    async fn start(&mut self) {
        let settings = self.settings.clone();
        let (running, local, trial) = blocking(move || {
            let running = running_version(&settings.release_file);
            let dir = settings.dir();
            let local = load_state(&dir);
            // An unreadable file is logged and removed like a readable one: it cannot say more.
            let trial = std::fs::read_to_string(dir.join(TRIAL_FAILED_FILE))
                .ok()
                .map(|text| parse_trial_failed(&text));
            (running, local, trial)
        })
        .await
        .unwrap_or_else(|| (crate::SOFTWARE_VERSION.to_owned(), LocalUpdate::default(), None));
        self.running = running;
        let found_trial = trial.is_some();
        let trial = match trial {
            Some(Ok(trial)) => Some(trial),
            Some(Err(e)) => {
                tracing::error!(error = %e, "update: trial-failed unreadable; ignored");
                None
            }
            None => None,
        };
        let before = local.clone();
        self.local = on_start(local, &self.running, &self.settings.boot_id, trial.as_ref());
        if let Some(failure) =
            self.local.failure.as_ref().filter(|f| Some(*f) != before.failure.as_ref())
        {
            tracing::warn!(version = %failure.version, error = %failure.error,
                "update: the new slot was not kept; that version is not tried again");
        }
        if before.pending.is_some() && self.local.pending.is_none() && self.local.failure.is_none()
        {
            tracing::info!(version = %self.running, "update: done, running the new version");
        }
        if self.local.on_trial.as_ref().is_some_and(|t| t.boot == self.settings.boot_id) {
            use crate::clock::ClockSource;
            let up = crate::clock::SystemClock::from_env().boottime();
            let left = decide::TRIAL_SETTLES_AFTER.saturating_sub(up);
            self.trial_settles_at = Some(Instant::now() + left);
        }
        let saved = self.local == before || self.save().await;
        if found_trial && saved {
            let path = self.settings.dir().join(TRIAL_FAILED_FILE);
            // Kept until the state that records it is written, so a crash loses nothing.
            blocking(move || remove_file(&path)).await;
        }
        self.collect_files().await;
        let state = self.report_now().await.state;
        tracing::info!(running = %self.running, state = state.as_str(), "update: ready");
    }

    /// Tells the server how the update is going; takes in its offer.
    async fn check_in(&mut self) {
        let dir = self.settings.state_dir.clone();
        let Some(credential) =
            blocking(move || credential::load(&dir).ok().flatten()).await.flatten()
        else {
            // Not enrolled yet: the uploader is on it.
            self.offer = None;
            return;
        };
        let check = self.report_now().await;
        let answer = self.server.check(&credential, &check).await;
        match answer.map_err(|e| e.to_string()).and_then(|a| classify_check(a.status, &a.body)) {
            Ok(offer) => {
                if let Some(o) = &offer {
                    if self.offer.as_ref().and_then(Option::as_ref) != Some(o) {
                        tracing::info!(version = %o.version, bytes = o.bytes, reboot_after = ?o.reboot_after, "update: offered");
                    }
                }
                self.offer = Some(offer);
                self.told = Some(check);
            }
            Err(reason) => {
                tracing::debug!(%reason, "update: check-in failed; trying again later");
                self.offer = None;
            }
        }
    }

    /// Does what [`decide`] says until it says to wait.
    async fn work(&mut self) {
        loop {
            let step = self.next_step().await;
            match step {
                Step::Nothing => return,
                Step::Discard => {
                    if let Some(p) = self.local.pending.take() {
                        tracing::info!(version = %p.target.version, "update: no longer wanted; files removed");
                    }
                    self.save().await;
                    self.collect_files().await;
                }
                Step::NoRoom { needed, free } => {
                    let Some(Some(offer)) = self.offer.clone() else { return };
                    let error = format!(
                        "not enough room on the data partition: the bundle needs {} MB more, {} MB free",
                        needed.div_ceil(1_000_000),
                        free / 1_000_000
                    );
                    if self.local.failure.as_ref().is_none_or(|f| f.error != error) {
                        tracing::error!(version = %offer.version, needed, free, "update: {error}");
                        self.local.fail(&offer.version, &error);
                        self.save().await;
                    }
                    return;
                }
                Step::Download { from } => {
                    if !self.download(from).await {
                        return;
                    }
                }
                // RAUC or logind failed a moment ago: not asked again before the next check.
                Step::Install | Step::Reboot
                    if self.system_not_before.is_some_and(|at| Instant::now() < at) =>
                {
                    return
                }
                Step::Install => self.install().await,
                Step::Reboot => {
                    self.reboot().await;
                    return;
                }
            }
        }
    }

    async fn next_step(&self) -> Step {
        let dir = self.settings.dir();
        let part = self.local.pending.as_ref().map(|p| dir.join(p.target.part_file()));
        let (downloaded, free_bytes) = blocking(move || {
            let downloaded = part.and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
            (downloaded, free_bytes(&dir))
        })
        .await
        .unwrap_or((0, 0));
        let idle_for = match *self.presence.borrow() {
            Presence::InUse => None,
            Presence::IdleSince(since) => Some(since.elapsed()),
        };
        let offer = match &self.offer {
            None => Offer::Unknown,
            Some(None) => Offer::Nothing,
            Some(Some(offer)) => Offer::Bundle(offer),
        };
        decide(&Situation {
            running: &self.running,
            offer,
            local: &self.local,
            boot: &self.settings.boot_id,
            downloaded,
            free_bytes,
            idle_for,
            now: Utc::now(),
            events_unsent: !self.spool.is_empty(),
            idle_before_reboot: self.settings.idle_before_reboot,
            trial_unsettled: self.trial_settles_at.is_some_and(|at| Instant::now() < at),
        })
    }

    /// Fetches the offered bundle from `from`. Returns whether to go on deciding (false: try
    /// again later).
    async fn download(&mut self, from: u64) -> bool {
        let Some(Some(offer)) = self.offer.clone() else { return false };
        let target = match &mut self.local.pending {
            Some(p) if p.target.is_same_bundle(&offer) => {
                p.target.reboot_after = offer.reboot_after;
                p.target.clone()
            }
            _ => {
                let target = offer.clone();
                self.local.pending =
                    Some(Pending { target: target.clone(), phase: Phase::Downloading });
                self.save().await;
                self.collect_files().await;
                target
            }
        };
        let dir = self.settings.state_dir.clone();
        let Some(credential) =
            blocking(move || credential::load(&dir).ok().flatten()).await.flatten()
        else {
            return false;
        };
        if from == 0 {
            tracing::info!(version = %target.version, bytes = target.bytes, "update: downloading");
        } else {
            tracing::info!(version = %target.version, from, bytes = target.bytes, "update: resuming the download");
        }
        match download::fetch(&self.server, &credential, &target, &self.settings.dir()).await {
            Ok(_) => {
                tracing::info!(version = %target.version, "update: downloaded and checked");
                self.local.advance(Phase::Downloaded);
                self.save().await;
                true
            }
            Err(e) if e.bundle_is_bad() => {
                tracing::error!(version = %target.version, error = %e, "update: bundle refused; removed and not fetched again");
                self.local.give_up(&target.version, Some(&target.sha256), &e.to_string());
                self.save().await;
                self.collect_files().await;
                true
            }
            Err(e) => {
                tracing::warn!(version = %target.version, error = %e, "update: download stopped; it resumes later");
                self.local.fail(&target.version, &format!("download: {e}"));
                self.save().await;
                // The server is asked again before the next try.
                self.offer = None;
                false
            }
        }
    }

    async fn install(&mut self) {
        let Some(target) = self.local.pending.as_ref().map(|p| p.target.clone()) else { return };
        let bundle = self.settings.dir().join(target.bundle_file());
        tracing::info!(version = %target.version, "update: installing into the other slot");
        // Best effort: the fleet page shows the install while it takes its minutes.
        self.installing = true;
        self.check_in().await;
        let installed = self.installer.install(&bundle).await;
        self.installing = false;
        match installed {
            Ok(()) => {
                tracing::info!(version = %target.version, "update: installed; rebooting into it when the device is idle");
                self.local.advance(Phase::Installed { boot: self.settings.boot_id.clone() });
            }
            Err(InstallError::Refused(e)) => {
                tracing::error!(version = %target.version, error = %e, "update: RAUC refused the bundle; not tried again");
                self.local.give_up(&target.version, Some(&target.sha256), &format!("install: {e}"));
            }
            Err(InstallError::Unavailable(e)) => {
                tracing::warn!(version = %target.version, error = %e, "update: RAUC could not install now; trying again later");
                self.local.fail(&target.version, &format!("install: {e}"));
                self.system_not_before = Some(Instant::now() + self.settings.check_every);
            }
        }
        self.save().await;
        self.collect_files().await;
    }

    async fn reboot(&mut self) {
        let Some(target) = self.local.pending.as_ref().map(|p| p.target.clone()) else { return };
        let boot = self.settings.boot_id.clone();
        self.local.advance(Phase::Rebooting { boot: boot.clone() });
        self.save().await;
        // Best effort: the server hears "waiting to reboot" before the device goes.
        self.check_in().await;
        tracing::info!("update: rebooting into {}", target.version);
        if let Err(e) = self.rebooter.reboot().await {
            tracing::error!(error = %e, "update: the reboot was refused; asking again later");
            self.system_not_before = Some(Instant::now() + self.settings.check_every);
            self.local.advance(Phase::Installed { boot });
            self.save().await;
        }
    }

    async fn report_now(&self) -> UpdateCheck {
        let part =
            self.local.pending.as_ref().map(|p| self.settings.dir().join(p.target.part_file()));
        let downloaded =
            blocking(move || part.and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len()))
                .await
                .unwrap_or(0);
        let mut check = report(&self.running, &self.local, downloaded);
        if self.installing {
            check.state = slate_protocol::update::UpdateState::Installing;
        }
        check
    }

    /// Writes the state; whether it was written.
    async fn save(&self) -> bool {
        let path = self.settings.dir().join(STATE_FILE);
        let json = serde_json::to_vec_pretty(&self.local).expect("the update state serialises");
        let write = move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            crate::policy::write_private(&path, &json).map_err(|e| e.to_string())
        };
        match blocking(write).await {
            Some(Ok(())) => return true,
            Some(Err(e)) => tracing::error!(error = %e, "update: state not saved"),
            None => tracing::error!("update: state not saved"),
        }
        false
    }

    /// Removes bundles and partial downloads that are not the pending update's.
    async fn collect_files(&self) {
        let dir = self.settings.dir();
        let pending = self.local.pending.clone();
        blocking(move || {
            let present: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => {
                    entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()
                }
                Err(_) => return,
            };
            for name in files_to_remove(pending.as_ref(), &present) {
                remove_file(&dir.join(name));
            }
        })
        .await;
    }
}

/// The state kept on disk; none (or unreadable: started afresh, logged) is the default.
fn load_state(dir: &Path) -> LocalUpdate {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::error!(path = %path.display(), error = %e, "update: state unreadable; starting afresh");
            LocalUpdate::default()
        }),
        Err(_) => LocalUpdate::default(),
    }
}

fn remove_file(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), error = %e, "update: file not removed")
        }
        _ => {}
    }
}

/// Bytes slated may still write on the file system holding `dir` (its parent when `dir` does
/// not exist yet); 0 when it cannot be told.
// statvfs's field types differ between 32- and 64-bit targets.
#[allow(clippy::useless_conversion)]
fn free_bytes(dir: &Path) -> u64 {
    let at = if dir.exists() { dir } else { dir.parent().unwrap_or(dir) };
    match nix::sys::statvfs::statvfs(at) {
        Ok(s) => u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size())),
        Err(_) => 0,
    }
}

/// Runs `work` on the blocking pool; `None` if it panicked.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// How long a bundle's body may stall before the download is cut (and resumed later).
const STALL: Duration = Duration::from_secs(60);
/// The longest one bundle request may take in all (it resumes after).
const BUNDLE_REQUEST: Duration = Duration::from_secs(3 * 60 * 60);

impl UpdateServer for HttpTransport {
    async fn check(
        &self,
        credential: &Credential,
        check: &UpdateCheck,
    ) -> Result<HttpAnswer, UploadError> {
        let body = serde_json::to_vec(check).expect("a check serialises");
        let request = self
            .client()
            .post(self.endpoint(routes::DEVICE_UPDATE))
            .bearer_auth(credential.expose());
        // The answer is capped as every answer is (`upload`'s limit, 64 KiB).
        self.send(request, body).await
    }

    async fn fetch_bundle(
        &self,
        credential: &Credential,
        sha256: &str,
        from: u64,
    ) -> Result<BundleAnswer, UploadError> {
        let transport = |e: reqwest::Error| UploadError::Transport(crate::upload::error_chain(&e));
        let mut request = self
            .client()
            .get(self.endpoint(&routes::device_update_bundle(sha256)))
            .bearer_auth(credential.expose())
            .timeout(BUNDLE_REQUEST);
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let range_start = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(download::content_range_start);
        let (tx, chunks) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let next = match tokio::time::timeout(STALL, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => Ok(chunk.to_vec()),
                    Ok(Ok(None)) => return,
                    Ok(Err(e)) => Err(crate::upload::error_chain(&e)),
                    Err(_) => Err(format!("no data for {} s", STALL.as_secs())),
                };
                let stop = next.is_err();
                if tx.send(next).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(BundleAnswer { status, range_start, chunks })
    }
}

#[cfg(test)]
pub(crate) mod tests;
