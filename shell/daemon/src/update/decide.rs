//! The update's decisions, pure: what the device keeps on disk about an update
//! ([`LocalUpdate`]), what it tells the server ([`report`]), what it does next ([`decide`]),
//! what a start in a new boot means ([`on_start`]) and which files are garbage
//! ([`files_to_remove`]). No I/O, no clock: everything comes in as arguments.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slate_protocol::update::{check_image_version, UpdateCheck, UpdateOffer, UpdateState};
use std::time::Duration;

/// How long nobody must have been signed in before the device reboots into a new slot.
pub const IDLE_BEFORE_REBOOT: Duration = Duration::from_secs(10 * 60);
/// Room kept free on the data partition beyond the bundle: the spool, the policy and the
/// credential live there, and a report must always find room.
pub const KEEP_FREE_BYTES: u64 = 256 * 1024 * 1024;
/// How long after a boot that started an update's new version slated waits before installing
/// another: until then slate-mark-good (300 s) may still be deciding, and RAUC refuses to write
/// the committed slot, the one a trial falls back to.
pub const TRIAL_SETTLES_AFTER: Duration = Duration::from_secs(10 * 60);
/// How many given-up versions and bundles are remembered (the oldest forgotten first).
const MAX_GIVEN_UP: usize = 16;
/// The longest error sent to the server (the protocol's limit is larger).
const MAX_ERROR_CHARS: usize = 300;

/// Where slated keeps the bundle of an offer, and whether two offers are the same bundle. The
/// pending update keeps its offer as the server sent it.
pub trait OfferedBundle {
    /// The same bundle (IT may move `reboot_after` without it being another bundle).
    fn is_same_bundle(&self, offer: &UpdateOffer) -> bool;
    /// The file being downloaded.
    fn part_file(&self) -> String;
    /// The downloaded, checked bundle.
    fn bundle_file(&self) -> String;
}

impl OfferedBundle for UpdateOffer {
    fn is_same_bundle(&self, offer: &UpdateOffer) -> bool {
        self.sha256 == offer.sha256 && self.version == offer.version && self.bytes == offer.bytes
    }

    fn part_file(&self) -> String {
        format!("{}.part", self.sha256)
    }

    fn bundle_file(&self) -> String {
        format!("{}.raucb", self.sha256)
    }
}

/// How far the pending update has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// `<sha256>.part` is being fetched.
    Downloading,
    /// `<sha256>.raucb` is whole and its SHA-256 checked.
    Downloaded,
    /// RAUC wrote the other slot during boot `boot`; the reboot parameter it set (`0 tryboot`)
    /// lives in `/run` and so only in that boot.
    Installed { boot: String },
    /// The reboot into the new slot was asked for during boot `boot`.
    Rebooting { boot: String },
}

impl Phase {
    fn is_installed(&self) -> bool {
        matches!(self, Phase::Installed { .. } | Phase::Rebooting { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub target: UpdateOffer,
    pub phase: Phase,
}

/// A version (every bundle of it: `sha256` is `None`) or one bundle not to be tried again, unless
/// IT offers it again in a later rollout (`update rollout --retry-failed`: the server offers a
/// version that failed here only then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenUp {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The rollout it failed in (0: not said).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollout: u64,
}

impl GivenUp {
    fn covers(&self, offer: &UpdateOffer) -> bool {
        self.version == offer.version
            && self.sha256.as_ref().is_none_or(|s| *s == offer.sha256)
            && offer.rollout <= self.rollout
    }
}

/// The last thing that went wrong, told to the server until something else happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub version: String,
    pub error: String,
}

/// What the device keeps about its update (`<state_dir>/update/state.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUpdate {
    #[serde(default)]
    pub pending: Option<Pending>,
    #[serde(default)]
    pub given_up: Vec<GivenUp>,
    #[serde(default)]
    pub failure: Option<Failure>,
    /// The new version this device started as an update's end, before anything confirmed it:
    /// if a later boot runs something else, the slot went back (even when `slate-mark-good` could
    /// leave no word, or the power was cut during the trial) and the server is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_trial: Option<OnTrial>,
}

/// A version started in boot `boot` after its update, not yet seen in another boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnTrial {
    pub version: String,
    pub boot: String,
    /// The rollout it was offered in (0: not said).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollout: u64,
}

impl LocalUpdate {
    /// Whether `offer` was given up (rolled back, or its bundle refused).
    pub fn has_given_up(&self, offer: &UpdateOffer) -> bool {
        self.given_up.iter().any(|g| g.covers(offer))
    }

    /// Never tries `version` again (`sha256: None`) or this one bundle of it; forgets the
    /// pending update if it is the one given up, and reports `error`.
    pub fn give_up(&mut self, version: &str, sha256: Option<&str>, error: &str) {
        // The rollout it was offered in: the pending update's, or the trial's.
        let rollout = match (&self.pending, &self.on_trial) {
            (Some(p), _) if p.target.version == version => p.target.rollout,
            (_, Some(t)) if t.version == version => t.rollout,
            _ => 0,
        };
        self.give_up_in(version, sha256, rollout, error);
    }

    fn give_up_in(&mut self, version: &str, sha256: Option<&str>, rollout: u64, error: &str) {
        let given =
            GivenUp { version: version.to_owned(), sha256: sha256.map(str::to_owned), rollout };
        if !self.given_up.contains(&given) {
            self.given_up.push(given);
        }
        if self.given_up.len() > MAX_GIVEN_UP {
            let extra = self.given_up.len() - MAX_GIVEN_UP;
            self.given_up.drain(..extra);
        }
        if self.pending.as_ref().is_some_and(|p| {
            p.target.version == version && sha256.is_none_or(|s| s == p.target.sha256)
        }) {
            self.pending = None;
        }
        self.fail(version, error);
    }

    /// Reports `error` about `version` without giving it up (a cut download, a full card).
    pub fn fail(&mut self, version: &str, error: &str) {
        self.failure = Some(Failure { version: version.to_owned(), error: clean_error(error) });
    }

    /// Moves the pending update on to `phase` (which clears a failure about it).
    pub fn advance(&mut self, phase: Phase) {
        if let Some(pending) = &mut self.pending {
            pending.phase = phase;
            if self.failure.as_ref().is_some_and(|f| f.version == pending.target.version) {
                self.failure = None;
            }
        }
    }
}

/// An error as the server is told it: one line, no control characters, at most 300 characters.
pub fn clean_error(error: &str) -> String {
    let line: String =
        error.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_ERROR_CHARS).collect();
    line.trim().to_owned()
}

/// What the device tells the server: the update's phase, its target and bytes so far, and the
/// last failure. Pure.
pub fn report(running: &str, local: &LocalUpdate, downloaded: u64) -> UpdateCheck {
    let mut check = UpdateCheck::new(running.to_owned(), UpdateState::Current);
    match &local.pending {
        Some(p) => {
            check.state = match p.phase {
                Phase::Downloading => UpdateState::Downloading,
                Phase::Downloaded => UpdateState::Downloaded,
                Phase::Installed { .. } | Phase::Rebooting { .. } => UpdateState::WaitingToReboot,
            };
            check.downloaded = Some(match p.phase {
                Phase::Downloading => downloaded.min(p.target.bytes),
                _ => p.target.bytes,
            });
            check.error = local
                .failure
                .as_ref()
                .filter(|f| f.version == p.target.version)
                .map(|f| f.error.clone());
            check.target = Some(p.target.version.clone());
        }
        None => {
            if let Some(failure) = &local.failure {
                check.state = UpdateState::Failed;
                check.target = Some(failure.version.clone());
                check.error = Some(failure.error.clone());
            }
        }
    }
    check
}

/// What the server said at the last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer<'a> {
    /// Not heard (unreachable, or no check yet): carry on with what is pending, fetch nothing.
    Unknown,
    /// Nothing to run (or a server without updates: 404).
    Nothing,
    Bundle(&'a UpdateOffer),
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// The version this device runs.
    pub running: &'a str,
    pub offer: Offer<'a>,
    pub local: &'a LocalUpdate,
    /// This boot's id.
    pub boot: &'a str,
    /// Bytes of the pending bundle's `.part` file on disk.
    pub downloaded: u64,
    /// Bytes slated may still write on the data partition.
    pub free_bytes: u64,
    /// How long nobody has been signed in (and the device not held); `None` while a pupil is
    /// signed in or a report holds the device.
    pub idle_for: Option<Duration>,
    pub now: DateTime<Utc>,
    /// Events (a report among them, maybe) not uploaded yet.
    pub events_unsent: bool,
    /// [`IDLE_BEFORE_REBOOT`], shorter in tests.
    pub idle_before_reboot: Duration,
    /// This boot started an update's new version less than [`TRIAL_SETTLES_AFTER`] ago: it may
    /// still be a trial slate-mark-good has not confirmed.
    pub trial_unsettled: bool,
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Forget the pending update and remove its files: withdrawn, replaced by another offer, or
    /// the device already runs what is offered.
    Discard,
    /// Fetch the offered bundle from byte `from` (0: a new one; it becomes the pending update).
    Download {
        from: u64,
    },
    /// Too little room for the rest of the bundle and [`KEEP_FREE_BYTES`]: say so, fetch nothing,
    /// look again at the next check.
    NoRoom {
        needed: u64,
        free: u64,
    },
    /// Have RAUC write the downloaded bundle into the other slot.
    Install,
    /// Reboot into the new slot.
    Reboot,
}

/// What to do next. Installs only when nobody is signed in and not during a trial; reboots only
/// with every event uploaded and nobody signed in: at or after `reboot_after` when IT set it,
/// otherwise once nobody has been signed in for `idle_before_reboot`. Pure.
pub fn decide(s: &Situation) -> Step {
    let pending = s.local.pending.as_ref();
    let offer = match s.offer {
        Offer::Unknown => {
            return match pending {
                Some(p) => carry_on(s, p, p.target.reboot_after, false),
                None => Step::Nothing,
            }
        }
        // The slot already written keeps its trial: the reboot parameter is set for this boot.
        Offer::Nothing => {
            return match pending {
                Some(p) if p.phase.is_installed() => carry_on(s, p, p.target.reboot_after, false),
                Some(_) => Step::Discard,
                None => Step::Nothing,
            }
        }
        Offer::Bundle(offer) => offer,
    };
    if offer.version == s.running || s.local.has_given_up(offer) {
        return if pending.is_some() { Step::Discard } else { Step::Nothing };
    }
    match pending {
        Some(p) if p.target.is_same_bundle(offer) => carry_on(s, p, offer.reboot_after, true),
        Some(_) => Step::Discard,
        None => fetch(s, offer.bytes, 0),
    }
}

fn carry_on(
    s: &Situation,
    p: &Pending,
    reboot_after: Option<DateTime<Utc>>,
    can_fetch: bool,
) -> Step {
    match &p.phase {
        Phase::Downloading if can_fetch => fetch(s, p.target.bytes, s.downloaded),
        Phase::Downloading => Step::Nothing,
        Phase::Downloaded if s.idle_for.is_some() && !s.trial_unsettled => Step::Install,
        Phase::Downloaded => Step::Nothing,
        Phase::Installed { boot } if boot == s.boot && may_reboot(s, reboot_after) => Step::Reboot,
        Phase::Installed { .. } | Phase::Rebooting { .. } => Step::Nothing,
    }
}

fn fetch(s: &Situation, bytes: u64, downloaded: u64) -> Step {
    // A `.part` longer than the bundle is wrong: start again (the download truncates it).
    let from = if downloaded > bytes { 0 } else { downloaded };
    let needed = bytes - from + KEEP_FREE_BYTES;
    if s.free_bytes < needed {
        Step::NoRoom { needed, free: s.free_bytes }
    } else {
        Step::Download { from }
    }
}

/// With a time IT set (after school, say), from then on as soon as nobody is signed in; without
/// one, once nobody has been signed in for `idle_before_reboot`. Never with events unsent.
fn may_reboot(s: &Situation, reboot_after: Option<DateTime<Utc>>) -> bool {
    let quiet_long_enough = match reboot_after {
        Some(at) => s.now >= at && s.idle_for.is_some(),
        None => s.idle_for.is_some_and(|idle| idle >= s.idle_before_reboot),
    };
    quiet_long_enough && !s.events_unsent
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What `slate-mark-good` left when it gave up on a trial slot (`update/trial-failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialFailed {
    pub version: String,
    pub reason: String,
}

/// Reads `trial-failed`'s `key=value` lines: `version` (required) and `reason`. Pure.
pub fn parse_trial_failed(text: &str) -> Result<TrialFailed, String> {
    let value = |key: &str| {
        text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('=')).map(str::trim)
    };
    let version = value("version").ok_or("no `version=` line")?;
    check_image_version("version", version).map_err(|e| e.to_string())?;
    let reason = value("reason").map(clean_error).filter(|r| !r.is_empty());
    Ok(TrialFailed {
        version: version.to_owned(),
        reason: reason.unwrap_or_else(|| "the new slot was not healthy".to_owned()),
    })
}

/// The image version in `/etc/slate-release` (`SLATE_VERSION=...`, quotes allowed), if it is a
/// valid one. Pure.
pub fn parse_release(text: &str) -> Option<String> {
    let value = text.lines().find_map(|line| line.trim().strip_prefix("SLATE_VERSION="))?;
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    check_image_version("SLATE_VERSION", value).ok()?;
    Some(value.to_owned())
}

/// What slated's start in boot `boot`, running `running`, makes of the update kept on disk:
/// - `slate-mark-good` gave up on a trial slot: that version is never tried again, and the
///   server is told "rolled back: <reason>";
/// - it runs the pending target: the update is done (on trial until a later boot runs it too);
/// - a later boot runs something other than the version on trial: the slot went back without
///   `slate-mark-good`'s word (its file not written, a power cut during the trial): given up;
/// - it rebooted to try the new slot but runs something else: the slot never started (given up);
/// - the slot was written in an earlier boot without the reboot being asked for (a power cut,
///   someone else's reboot): the reboot parameter went with that boot, so install again.
///
/// Pure.
pub fn on_start(
    mut local: LocalUpdate,
    running: &str,
    boot: &str,
    trial_failed: Option<&TrialFailed>,
) -> LocalUpdate {
    if let Some(trial) = trial_failed {
        local.give_up(&trial.version, None, &format!("rolled back: {}", trial.reason));
        local.on_trial.take_if(|t| t.version == trial.version);
    }
    if let Some(trial) = local.on_trial.take_if(|t| t.boot != boot) {
        if trial.version != running {
            let error = format!(
                "rolled back: the device went back to {running} before {} was confirmed",
                trial.version
            );
            local.give_up_in(&trial.version, None, trial.rollout, &error);
        }
        // Else it runs the new version in a later boot: confirmed.
    }
    let Some(pending) = local.pending.clone() else { return local };
    if pending.target.version == running {
        local.pending = None;
        local.failure = None;
        local.on_trial = Some(OnTrial {
            version: running.to_owned(),
            boot: boot.to_owned(),
            rollout: pending.target.rollout,
        });
        return local;
    }
    match &pending.phase {
        Phase::Rebooting { boot: asked } if asked != boot => {
            let error =
                format!("rolled back: the new slot did not start (still running {running})");
            local.give_up(&pending.target.version, None, &error);
        }
        Phase::Installed { boot: written } if written != boot => local.advance(Phase::Downloaded),
        _ => {}
    }
    local
}

/// The files in the update directory to remove: every bundle and partial download but the
/// pending update's own. Pure.
pub fn files_to_remove(pending: Option<&Pending>, present: &[String]) -> Vec<String> {
    let keep = pending.map(|p| match p.phase {
        Phase::Downloading => p.target.part_file(),
        _ => p.target.bundle_file(),
    });
    present
        .iter()
        .filter(|name| name.ends_with(".part") || name.ends_with(".raucb"))
        .filter(|name| keep.as_deref() != Some(name.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const MB: u64 = 1024 * 1024;
    const MIN: Duration = Duration::from_secs(60);

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-12-07T{s}Z").parse().unwrap()
    }

    fn offer(version: &str, sha: &str) -> UpdateOffer {
        UpdateOffer {
            version: version.into(),
            sha256: sha.into(),
            bytes: 300 * MB,
            reboot_after: None,
            rollout: 1,
        }
    }

    fn pending(version: &str, sha: &str, phase: Phase) -> LocalUpdate {
        LocalUpdate {
            pending: Some(Pending { target: offer(version, sha), phase }),
            ..LocalUpdate::default()
        }
    }

    fn installed(boot: &str) -> Phase {
        Phase::Installed { boot: boot.into() }
    }

    /// A device that may do anything: idle for an hour, everything uploaded, lots of room.
    fn situation<'a>(offer: Offer<'a>, local: &'a LocalUpdate) -> Situation<'a> {
        Situation {
            running: "1.0",
            offer,
            local,
            boot: "boot-1",
            downloaded: 0,
            free_bytes: 4096 * MB,
            idle_for: Some(60 * MIN),
            now: t("12:00:00"),
            events_unsent: false,
            idle_before_reboot: IDLE_BEFORE_REBOOT,
            trial_unsettled: false,
        }
    }

    #[test]
    fn the_next_step_for_each_situation() {
        let v2 = offer("2.0", SHA_A);
        let v2_later = UpdateOffer { reboot_after: Some(t("18:00:00")), ..v2.clone() };
        let v2_first_rollout = UpdateOffer { rollout: 0, ..v2.clone() };
        let v2_offered_again = UpdateOffer { rollout: 2, ..v2.clone() };
        let v3 = offer("3.0", SHA_B);
        let v2_rebuilt = offer("2.0", SHA_B);
        let running = offer("1.0", SHA_B);
        let none = LocalUpdate::default();
        let fetching = pending("2.0", SHA_A, Phase::Downloading);
        let downloaded = pending("2.0", SHA_A, Phase::Downloaded);
        let written = pending("2.0", SHA_A, installed("boot-1"));
        let rebooting = pending("2.0", SHA_A, Phase::Rebooting { boot: "boot-1".into() });
        let rolled_back = LocalUpdate {
            given_up: vec![GivenUp { version: "2.0".into(), sha256: None, rollout: 1 }],
            ..LocalUpdate::default()
        };
        let bad_bundle = LocalUpdate {
            given_up: vec![GivenUp {
                version: "2.0".into(),
                sha256: Some(SHA_A.into()),
                rollout: 1,
            }],
            ..LocalUpdate::default()
        };
        type Change<'a> = &'a dyn Fn(&mut Situation);
        let same: Change = &|_| {};
        let cases: Vec<(&str, Offer, &LocalUpdate, Change, Step)> = vec![
            ("nothing offered, nothing pending", Offer::Nothing, &none, same, Step::Nothing),
            ("server not heard, nothing pending", Offer::Unknown, &none, same, Step::Nothing),
            ("a new offer", Offer::Bundle(&v2), &none, same, Step::Download { from: 0 }),
            (
                "a new offer while a pupil is signed in: download anyway",
                Offer::Bundle(&v2),
                &none,
                &|s| s.idle_for = None,
                Step::Download { from: 0 },
            ),
            (
                "resumed from the .part's length",
                Offer::Bundle(&v2),
                &fetching,
                &|s| s.downloaded = 100 * MB,
                Step::Download { from: 100 * MB },
            ),
            (
                "a .part longer than the bundle starts again",
                Offer::Bundle(&v2),
                &fetching,
                &|s| s.downloaded = 301 * MB,
                Step::Download { from: 0 },
            ),
            ("not heard: no download", Offer::Unknown, &fetching, same, Step::Nothing),
            (
                "the offer withdrawn while downloading",
                Offer::Nothing,
                &fetching,
                same,
                Step::Discard,
            ),
            (
                "the offer withdrawn when downloaded",
                Offer::Nothing,
                &downloaded,
                same,
                Step::Discard,
            ),
            (
                "another offer replaces the pending one",
                Offer::Bundle(&v3),
                &downloaded,
                same,
                Step::Discard,
            ),
            (
                "another bundle of the same version replaces it",
                Offer::Bundle(&v2_rebuilt),
                &fetching,
                same,
                Step::Discard,
            ),
            ("offered what it runs", Offer::Bundle(&running), &none, same, Step::Nothing),
            (
                "offered what it runs, with something pending",
                Offer::Bundle(&running),
                &fetching,
                same,
                Step::Discard,
            ),
            (
                "a version that rolled back is not tried again in its rollout",
                Offer::Bundle(&v2),
                &rolled_back,
                same,
                Step::Nothing,
            ),
            (
                "nor another bundle of it",
                Offer::Bundle(&v2_rebuilt),
                &rolled_back,
                same,
                Step::Nothing,
            ),
            (
                "nor in an earlier rollout's offer",
                Offer::Bundle(&v2_first_rollout),
                &rolled_back,
                same,
                Step::Nothing,
            ),
            (
                "but once more when IT offers it again in a later rollout",
                Offer::Bundle(&v2_offered_again),
                &rolled_back,
                same,
                Step::Download { from: 0 },
            ),
            (
                "a refused bundle offered again in a later rollout",
                Offer::Bundle(&v2_offered_again),
                &bad_bundle,
                same,
                Step::Download { from: 0 },
            ),
            (
                "a refused bundle is not fetched again",
                Offer::Bundle(&v2),
                &bad_bundle,
                same,
                Step::Nothing,
            ),
            (
                "but a new bundle of that version is",
                Offer::Bundle(&v2_rebuilt),
                &bad_bundle,
                same,
                Step::Download { from: 0 },
            ),
            (
                "no room for the bundle and the margin",
                Offer::Bundle(&v2),
                &none,
                &|s| s.free_bytes = 500 * MB,
                Step::NoRoom { needed: 300 * MB + KEEP_FREE_BYTES, free: 500 * MB },
            ),
            (
                "room for the rest of a resumed one",
                Offer::Bundle(&v2),
                &fetching,
                &|s| {
                    s.free_bytes = 500 * MB;
                    s.downloaded = 100 * MB
                },
                Step::Download { from: 100 * MB },
            ),
            (
                "downloaded, nobody signed in: install",
                Offer::Bundle(&v2),
                &downloaded,
                same,
                Step::Install,
            ),
            (
                "downloaded, server not heard: install anyway",
                Offer::Unknown,
                &downloaded,
                same,
                Step::Install,
            ),
            (
                "downloaded, a pupil signed in: wait",
                Offer::Bundle(&v2),
                &downloaded,
                &|s| s.idle_for = None,
                Step::Nothing,
            ),
            (
                "downloaded, this boot's new version maybe still on trial: wait",
                Offer::Bundle(&v2),
                &downloaded,
                &|s| s.trial_unsettled = true,
                Step::Nothing,
            ),
            (
                "a trial does not hold up the download",
                Offer::Bundle(&v2),
                &none,
                &|s| s.trial_unsettled = true,
                Step::Download { from: 0 },
            ),
            (
                "downloaded, signed out a moment ago: install",
                Offer::Bundle(&v2),
                &downloaded,
                &|s| s.idle_for = Some(Duration::ZERO),
                Step::Install,
            ),
            (
                "installed, idle long enough: reboot",
                Offer::Bundle(&v2),
                &written,
                same,
                Step::Reboot,
            ),
            ("installed, server not heard: reboot", Offer::Unknown, &written, same, Step::Reboot),
            (
                "installed, offer withdrawn: the trial still comes",
                Offer::Nothing,
                &written,
                same,
                Step::Reboot,
            ),
            (
                "installed, a pupil signed in",
                Offer::Bundle(&v2),
                &written,
                &|s| s.idle_for = None,
                Step::Nothing,
            ),
            (
                "installed, idle 9 minutes",
                Offer::Bundle(&v2),
                &written,
                &|s| s.idle_for = Some(9 * MIN),
                Step::Nothing,
            ),
            (
                "installed, idle exactly 10 minutes",
                Offer::Bundle(&v2),
                &written,
                &|s| s.idle_for = Some(10 * MIN),
                Step::Reboot,
            ),
            (
                "installed, a report not uploaded yet",
                Offer::Bundle(&v2),
                &written,
                &|s| s.events_unsent = true,
                Step::Nothing,
            ),
            (
                "installed, before the time IT set",
                Offer::Bundle(&v2_later),
                &written,
                same,
                Step::Nothing,
            ),
            (
                "installed, at the time IT set",
                Offer::Bundle(&v2_later),
                &written,
                &|s| s.now = t("18:00:00"),
                Step::Reboot,
            ),
            (
                "installed, at the time IT set, signed out a moment ago: no idle wait",
                Offer::Bundle(&v2_later),
                &written,
                &|s| {
                    s.now = t("18:00:00");
                    s.idle_for = Some(Duration::ZERO)
                },
                Step::Reboot,
            ),
            (
                "installed, past the time IT set, a pupil signed in",
                Offer::Bundle(&v2_later),
                &written,
                &|s| {
                    s.now = t("18:30:00");
                    s.idle_for = None
                },
                Step::Nothing,
            ),
            (
                "installed, past the time IT set, a report not uploaded yet",
                Offer::Bundle(&v2_later),
                &written,
                &|s| {
                    s.now = t("18:30:00");
                    s.events_unsent = true
                },
                Step::Nothing,
            ),
            (
                "installed in an earlier boot: nothing here (on_start reinstalls)",
                Offer::Bundle(&v2),
                &written,
                &|s| s.boot = "boot-2",
                Step::Nothing,
            ),
            ("reboot already asked for", Offer::Bundle(&v2), &rebooting, same, Step::Nothing),
            (
                "installed, another version offered: replaced",
                Offer::Bundle(&v3),
                &written,
                same,
                Step::Discard,
            ),
        ];
        for (name, offer, local, change, want) in cases {
            let mut s = situation(offer, local);
            change(&mut s);
            assert_eq!(decide(&s), want, "{name}");
        }
    }

    #[test]
    fn the_time_it_set_is_kept_when_the_server_is_not_heard() {
        let mut local = pending("2.0", SHA_A, installed("boot-1"));
        local.pending.as_mut().unwrap().target.reboot_after = Some(t("18:00:00"));
        assert_eq!(decide(&situation(Offer::Unknown, &local)), Step::Nothing);
        let mut s = situation(Offer::Unknown, &local);
        s.now = t("18:00:01");
        assert_eq!(decide(&s), Step::Reboot);
    }

    #[test]
    fn what_the_server_is_told() {
        let fetching = pending("2.0", SHA_A, Phase::Downloading);
        let check = report("1.0", &fetching, 5 * MB);
        assert_eq!(
            (check.state, check.target.as_deref(), check.downloaded, check.error),
            (UpdateState::Downloading, Some("2.0"), Some(5 * MB), None)
        );
        let mut stalled = fetching.clone();
        stalled.fail("2.0", "no answer from the server");
        let check = report("1.0", &stalled, 5 * MB);
        assert_eq!(check.error.as_deref(), Some("no answer from the server"));
        assert_eq!(
            report("1.0", &pending("2.0", SHA_A, Phase::Downloaded), 0).state,
            UpdateState::Downloaded
        );
        let waiting = report("1.0", &pending("2.0", SHA_A, installed("b")), 0);
        assert_eq!(
            (waiting.state, waiting.downloaded),
            (UpdateState::WaitingToReboot, Some(300 * MB))
        );
        let mut rolled = LocalUpdate::default();
        rolled.give_up("2.0", None, "rolled back: not healthy\n304s after boot");
        let check = report("1.0", &rolled, 0);
        assert_eq!(
            (check.state, check.target.as_deref(), check.error.as_deref()),
            (UpdateState::Failed, Some("2.0"), Some("rolled back: not healthy 304s after boot"))
        );
        let current = report("1.0", &LocalUpdate::default(), 0);
        assert_eq!(current, UpdateCheck::new("1.0".into(), UpdateState::Current));
        // Every report is one the server's own decoder takes.
        for check in [report("1.0", &rolled, 0), report("1.0", &fetching, 400 * MB)] {
            let json = serde_json::to_vec(&check).unwrap();
            assert_eq!(UpdateCheck::from_json(&json).unwrap(), check);
        }
    }

    #[test]
    fn a_start_settles_what_the_last_boot_left() {
        let rebooting = pending("2.0", SHA_A, Phase::Rebooting { boot: "boot-1".into() });
        let written = pending("2.0", SHA_A, installed("boot-1"));
        let rolled_back =
            TrialFailed { version: "2.0".into(), reason: "not healthy 304s after boot".into() };

        // The new slot runs: done, on trial in this boot.
        let done = on_start(rebooting.clone(), "2.0", "boot-2", None);
        let on_trial = Some(OnTrial { version: "2.0".into(), boot: "boot-2".into(), rollout: 1 });
        assert_eq!(done, LocalUpdate { on_trial: on_trial.clone(), ..LocalUpdate::default() });
        assert_eq!(report("2.0", &done, 0), UpdateCheck::new("2.0".into(), UpdateState::Current));
        // slated restarted in that boot: still on trial.
        assert_eq!(on_start(done.clone(), "2.0", "boot-2", None), done);
        // A later boot runs it too: confirmed.
        assert_eq!(on_start(done.clone(), "2.0", "boot-3", None), LocalUpdate::default());
        // A later boot runs the old version, and mark-good left no word (a power cut in the
        // trial, its file not written): given up, and the server told.
        let back = on_start(done.clone(), "1.0", "boot-3", None);
        assert_eq!(back.on_trial, None);
        assert!(back.has_given_up(&offer("2.0", SHA_B)));
        let check = report("1.0", &back, 0);
        assert_eq!(check.state, UpdateState::Failed);
        assert_eq!(
            check.error.as_deref(),
            Some("rolled back: the device went back to 1.0 before 2.0 was confirmed")
        );
        // With mark-good's word, its reason is the one told.
        let told = on_start(
            done,
            "1.0",
            "boot-3",
            Some(&TrialFailed { version: "2.0".into(), reason: "not healthy".into() }),
        );
        assert_eq!(told.failure.unwrap().error, "rolled back: not healthy");

        // mark-good gave up on it: back on 1.0, told, never again.
        let back = on_start(rebooting.clone(), "1.0", "boot-3", Some(&rolled_back));
        assert_eq!(back.pending, None);
        assert_eq!(
            back.given_up,
            vec![GivenUp { version: "2.0".into(), sha256: None, rollout: 1 }]
        );
        let check = report("1.0", &back, 0);
        assert_eq!(check.state, UpdateState::Failed);
        assert_eq!(check.error.as_deref(), Some("rolled back: not healthy 304s after boot"));
        assert!(back.has_given_up(&offer("2.0", SHA_B)));

        // Rebooted for it and still on the old version, with no word from mark-good.
        let never = on_start(rebooting.clone(), "1.0", "boot-2", None);
        assert_eq!(never.pending, None);
        assert!(never.has_given_up(&offer("2.0", SHA_A)));
        assert!(never.failure.unwrap().error.contains("did not start"));

        // slated restarted in the same boot: nothing changes.
        assert_eq!(on_start(rebooting.clone(), "1.0", "boot-1", None), rebooting);
        assert_eq!(on_start(written.clone(), "1.0", "boot-1", None), written);

        // Written, then a reboot nobody asked for: the tryboot parameter is gone; install again.
        let again = on_start(written, "1.0", "boot-2", None);
        assert_eq!(again, pending("2.0", SHA_A, Phase::Downloaded));

        // Nothing pending, no trial: nothing.
        assert_eq!(on_start(LocalUpdate::default(), "1.0", "b", None), LocalUpdate::default());
    }

    #[test]
    fn given_up_is_kept_short_and_a_failure_clears_as_the_update_moves_on() {
        let mut local = LocalUpdate::default();
        for n in 0..20 {
            local.give_up(&format!("0.{n}"), None, "rolled back");
        }
        assert_eq!(local.given_up.len(), MAX_GIVEN_UP);
        assert_eq!(local.given_up[0].version, "0.4");
        let mut local = pending("2.0", SHA_A, Phase::Downloading);
        local.fail("2.0", "cut");
        local.advance(Phase::Downloaded);
        assert_eq!(local.failure, None);
        local.give_up("2.0", Some(SHA_B), "another bundle");
        assert!(local.pending.is_some(), "giving up another bundle leaves this one");
        local.give_up("2.0", Some(SHA_A), "RAUC refused it");
        assert_eq!(local.pending, None);
    }

    #[test]
    fn the_trial_failed_file_and_the_release_file() {
        let ok = parse_trial_failed(
            "version=2.0\nreason=not healthy 304s after boot (missing: server-reached)\n",
        )
        .unwrap();
        assert_eq!(
            ok,
            TrialFailed {
                version: "2.0".into(),
                reason: "not healthy 304s after boot (missing: server-reached)".into()
            }
        );
        assert_eq!(
            parse_trial_failed("version=2.0\n").unwrap().reason,
            "the new slot was not healthy"
        );
        assert!(parse_trial_failed("reason=x\n").is_err());
        assert!(parse_trial_failed("version=../../x\n").is_err());
        assert_eq!(
            parse_trial_failed(&format!("version=2.0\nreason={}\n", "x".repeat(1000)))
                .unwrap()
                .reason
                .len(),
            MAX_ERROR_CHARS
        );

        assert_eq!(
            parse_release("SLATE_VERSION=0.1.0+202612070005.bc7c1e2e72\n").as_deref(),
            Some("0.1.0+202612070005.bc7c1e2e72")
        );
        assert_eq!(parse_release("# x\nSLATE_VERSION=\"2.0\"\n").as_deref(), Some("2.0"));
        assert_eq!(parse_release("SLATE_VERSION=two words\n"), None);
        assert_eq!(parse_release("VERSION=2.0\n"), None);
    }

    #[test]
    fn only_the_pending_bundle_is_kept_on_the_card() {
        let names: Vec<String> = [
            format!("{SHA_A}.part"),
            format!("{SHA_A}.raucb"),
            format!("{SHA_B}.raucb"),
            "state.json".into(),
            "trial-failed".into(),
        ]
        .into();
        let fetching = pending("2.0", SHA_A, Phase::Downloading);
        assert_eq!(
            files_to_remove(fetching.pending.as_ref(), &names),
            vec![format!("{SHA_A}.raucb"), format!("{SHA_B}.raucb")]
        );
        let written = pending("2.0", SHA_A, installed("b"));
        assert_eq!(
            files_to_remove(written.pending.as_ref(), &names),
            vec![format!("{SHA_A}.part"), format!("{SHA_B}.raucb")]
        );
        assert_eq!(files_to_remove(None, &names).len(), 3);
    }
}
