//! The foreground-app adapter: stop the app on a report, then resume or close it on unlock, and
//! turn the audio off and on. Owns only the app's run state and the audio mute; must not decide
//! when or in which order (that is the core's: sound off, app stopped, then sound on again for
//! the kiosk's spoken reassurance), and must never freeze `slated`'s own cgroup.
//!
//! [`CgroupApps`] is the real one: each app runs in its own cgroup (made by the kiosk's launcher,
//! [`slate_ipc::cgroup::AppCgroup`]); a stop writes 1 to its `cgroup.freeze` and waits (bounded) for
//! `frozen 1` in `cgroup.events` (every renderer and helper of a browser, whatever its process
//! group or uid), a false alarm unfreezes it, a close writes 1 to `cgroup.kill` (then unfreezes,
//! so nothing stays stuck); audio is muted through a [`Mute`] command ([`mute_command`] builds
//! it: `wpctl` for PipeWire, `amixer` for ALSA). The foreground app comes from the launcher's
//! `foreground` request, its cgroup checked by the control socket. [`LoggingApps`] stands in
//! where there is no app, and [`FakeApps`] is for tests.

use slate_ipc::cgroup::{self, Hierarchy};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppsError {
    #[error("the foreground app could not be stopped: {0}")]
    Stop(String),
    #[error("the foreground app could not be resumed: {0}")]
    Resume(String),
    #[error("the foreground app could not be closed: {0}")]
    Close(String),
    #[error("audio could not be {}: {reason}", if *muted { "muted" } else { "unmuted" })]
    Mute { muted: bool, reason: String },
}

/// The app on screen.
pub trait Apps: Send + 'static {
    /// Stops (freezes) the foreground app: no sound, no more page loads. `Ok` only when it is
    /// frozen (or there is none).
    fn stop_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Lets it run again (a false alarm).
    fn resume_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Ends it: the page is not shown again.
    fn close_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Turns the device's audio off or on.
    fn set_muted(&mut self, muted: bool) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// The app now in the foreground (`None`: nothing the shell can stop).
    fn set_foreground(&mut self, _app: Option<AppProcess>) {}
}

/// A foreground app's process and its app cgroup (validated by the control socket: an app
/// cgroup under the requester's own, see [`cgroup::app_cgroup_under`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppProcess {
    pub pid: u32,
    /// The cgroup path, as in `/proc/<pid>/cgroup`.
    pub cgroup: String,
}

/// Logs what a real app adapter would do.
#[derive(Debug, Default)]
pub struct LoggingApps;

impl Apps for LoggingApps {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        tracing::info!("foreground app stopped");
        Ok(())
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        tracing::info!("foreground app resumed");
        Ok(())
    }

    async fn close_foreground(&mut self) -> Result<(), AppsError> {
        tracing::info!("foreground app closed");
        Ok(())
    }

    async fn set_muted(&mut self, muted: bool) -> Result<(), AppsError> {
        tracing::info!(muted, "audio");
        Ok(())
    }
}

/// How audio is muted on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuteBackend {
    /// PipeWire: `wpctl set-mute @DEFAULT_AUDIO_SINK@ 1|0`.
    Wpctl,
    /// ALSA: `amixer -q sset <control> mute|unmute`.
    Amixer { control: String },
    /// No audio to mute.
    None,
}

/// The command that mutes (or unmutes) audio: program and arguments. Pure.
pub fn mute_command(backend: &MuteBackend, muted: bool) -> Option<(String, Vec<String>)> {
    match backend {
        MuteBackend::Wpctl => Some((
            "wpctl".into(),
            vec![
                "set-mute".into(),
                "@DEFAULT_AUDIO_SINK@".into(),
                if muted { "1" } else { "0" }.into(),
            ],
        )),
        MuteBackend::Amixer { control } => Some((
            "amixer".into(),
            vec![
                "-q".into(),
                "sset".into(),
                control.clone(),
                if muted { "mute" } else { "unmute" }.into(),
            ],
        )),
        MuteBackend::None => None,
    }
}

/// Turns audio off and on.
pub trait Mute: Send + 'static {
    fn set_muted(&mut self, muted: bool) -> impl Future<Output = Result<(), AppsError>> + Send;
}

/// Runs the [`mute_command`] for a backend, bounded in time (the report is written after the
/// app is stopped, so a hung mixer must not hold it up for long).
#[derive(Debug, Clone)]
pub struct CommandMute {
    pub backend: MuteBackend,
    pub timeout: Duration,
}

impl CommandMute {
    pub fn new(backend: MuteBackend) -> Self {
        Self { backend, timeout: Duration::from_millis(500) }
    }
}

impl Mute for CommandMute {
    async fn set_muted(&mut self, muted: bool) -> Result<(), AppsError> {
        let Some((program, args)) = mute_command(&self.backend, muted) else {
            return Ok(());
        };
        let err = |reason: String| AppsError::Mute { muted, reason };
        let run = tokio::process::Command::new(&program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(self.timeout, run).await {
            Err(_) => Err(err(format!("{program} did not finish in time"))),
            Ok(Err(e)) => Err(err(format!("cannot run {program}: {e}"))),
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(err(format!("{program} failed ({status})"))),
        }
    }
}

/// How long a freeze may take to be complete (`frozen 1` in `cgroup.events`).
pub const FREEZE_WITHIN: Duration = Duration::from_secs(1);

/// The real adapter: freezes and kills the foreground app's cgroup (cgroup v2), and a mute.
/// Works across users: slated needs only write access to the app cgroup's `cgroup.freeze` and
/// `cgroup.kill` (the launcher makes them group-writable for its group, which slated is in),
/// no signal to another uid.
pub struct CgroupApps<M: Mute> {
    /// The cgroup2 hierarchy and slated's own cgroup, or why there is none.
    place: Result<(Hierarchy, String), String>,
    /// The foreground app's cgroup, as validated at `foreground`.
    app: Option<String>,
    /// The cgroup frozen by the last `stop_foreground`, until resumed or closed.
    frozen: Option<String>,
    mute: M,
}

impl<M: Mute> CgroupApps<M> {
    /// With this process's cgroup2 hierarchy (an error is kept and given at each stop).
    pub fn new(mute: M) -> Self {
        let place = Hierarchy::discover()
            .and_then(|h| Ok((h, cgroup::cgroup_of("self")?)))
            .map_err(|e| e.to_string());
        if let Err(e) = &place {
            tracing::error!(error = %e, "no cgroup2: a foreground app cannot be stopped");
        }
        Self { place, app: None, frozen: None, mute }
    }

    /// The directory of `app`'s cgroup, refusing anything that is not an app cgroup and
    /// anything that holds slated itself (freezing it would freeze slated).
    fn dir(&self, app: &str) -> Result<PathBuf, String> {
        let (hierarchy, own) = self.place.as_ref().map_err(Clone::clone)?;
        if !app.rsplit('/').next().is_some_and(cgroup::is_app_name) {
            return Err(format!("cgroup {app} is not an app cgroup"));
        }
        if cgroup::contains(app, own) {
            return Err(format!("cgroup {app} holds slated itself; not freezing it"));
        }
        hierarchy
            .dir(app)
            .ok_or_else(|| format!("cgroup {app} is outside {}", hierarchy.mount.display()))
    }

    async fn freeze(dir: &Path, frozen: bool) -> Result<(), String> {
        cgroup::write_file(dir, "cgroup.freeze", if frozen { "1" } else { "0" })
            .map_err(|e| e.to_string())?;
        if !frozen {
            return Ok(());
        }
        let events = dir.join("cgroup.events");
        let deadline = tokio::time::Instant::now() + FREEZE_WITHIN;
        loop {
            let text = tokio::fs::read_to_string(&events)
                .await
                .map_err(|e| format!("{}: {e}", events.display()))?;
            if cgroup::events_say(&text, "frozen") == Some(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("not frozen within {FREEZE_WITHIN:?}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl<M: Mute> Apps for CgroupApps<M> {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        let Some(app) = self.app.clone() else {
            return Ok(());
        };
        let dir = self.dir(&app).map_err(AppsError::Stop)?;
        // Recorded before the wait: a freeze that is slow to complete is still undone later.
        self.frozen = Some(app);
        Self::freeze(&dir, true).await.map_err(AppsError::Stop)?;
        tracing::info!("foreground app frozen");
        Ok(())
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        if let Some(app) = self.frozen.take() {
            let dir = self.dir(&app).map_err(AppsError::Resume)?;
            Self::freeze(&dir, false).await.map_err(AppsError::Resume)?;
            tracing::info!("foreground app resumed");
        }
        Ok(())
    }

    async fn close_foreground(&mut self) -> Result<(), AppsError> {
        if let Some(app) = self.frozen.take().or(self.app.take()) {
            self.app = None;
            let dir = self.dir(&app).map_err(AppsError::Close)?;
            cgroup::write_file(&dir, "cgroup.kill", "1")
                .map_err(|e| AppsError::Close(e.to_string()))?;
            // Killed tasks leave a frozen cgroup anyway; unfreezing makes sure nothing waits.
            let _ = Self::freeze(&dir, false).await;
            tracing::info!("foreground app closed");
        }
        Ok(())
    }

    async fn set_muted(&mut self, muted: bool) -> Result<(), AppsError> {
        self.mute.set_muted(muted).await
    }

    fn set_foreground(&mut self, app: Option<AppProcess>) {
        self.app = app.map(|a| a.cgroup);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppsCall {
    Stop,
    Resume,
    Close,
    Muted(bool),
    Foreground(Option<u32>),
}

/// Records calls, for tests.
#[derive(Debug, Clone, Default)]
pub struct FakeApps {
    pub calls: Arc<Mutex<Vec<AppsCall>>>,
    /// When set, a stop fails (an app that could not be frozen).
    pub stop_fails: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeApps {
    pub fn calls(&self) -> Vec<AppsCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, call: AppsCall) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
}

impl Apps for FakeApps {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        self.record(AppsCall::Stop);
        if self.stop_fails.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AppsError::Stop("not frozen (a test's failure)".into()));
        }
        Ok(())
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        self.record(AppsCall::Resume);
        Ok(())
    }

    async fn close_foreground(&mut self) -> Result<(), AppsError> {
        self.record(AppsCall::Close);
        Ok(())
    }

    async fn set_muted(&mut self, muted: bool) -> Result<(), AppsError> {
        self.record(AppsCall::Muted(muted));
        Ok(())
    }

    fn set_foreground(&mut self, app: Option<AppProcess>) {
        self.record(AppsCall::Foreground(app.map(|a| a.pid)));
    }
}

/// A mute that records what it was told, for tests.
#[derive(Debug, Clone, Default)]
pub struct FakeMute {
    pub calls: Arc<Mutex<Vec<bool>>>,
}

impl Mute for FakeMute {
    async fn set_muted(&mut self, muted: bool) -> Result<(), AppsError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(muted);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mute_commands_are_built_for_each_backend() {
        let words = |c: Option<(String, Vec<String>)>| {
            c.map(|(p, a)| std::iter::once(p).chain(a).collect::<Vec<_>>().join(" "))
        };
        let cases = [
            (MuteBackend::Wpctl, true, Some("wpctl set-mute @DEFAULT_AUDIO_SINK@ 1")),
            (MuteBackend::Wpctl, false, Some("wpctl set-mute @DEFAULT_AUDIO_SINK@ 0")),
            (
                MuteBackend::Amixer { control: "Master".into() },
                true,
                Some("amixer -q sset Master mute"),
            ),
            (
                MuteBackend::Amixer { control: "PCM".into() },
                false,
                Some("amixer -q sset PCM unmute"),
            ),
            (MuteBackend::None, true, None),
        ];
        for (backend, muted, expected) in cases {
            assert_eq!(
                words(mute_command(&backend, muted)).as_deref(),
                expected,
                "{backend:?} {muted}"
            );
        }
    }

    /// A fresh app cgroup made by the launcher's code, or a failure that says why: these tests
    /// need a writable cgroup2 (on this machine /sys/fs/cgroup/unified, as root).
    fn app_cgroup() -> cgroup::AppCgroup {
        cgroup::AppCgroup::create().unwrap_or_else(|e| {
            panic!("cgroup2 is not writable here, so freezing cannot be tested: {e}")
        })
    }

    /// Lines in a file that a counting process appends to.
    fn count(path: &Path) -> usize {
        std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
    }

    /// Waits (bounded, generously) for a condition.
    async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A shell that forks two counting children (each appends a line every 10 ms).
    fn counters(dir: &Path, names: [&str; 2]) -> std::process::Command {
        let line = |n: &str| {
            format!("( while :; do echo x >> {}; sleep 0.01; done ) & ", dir.join(n).display())
        };
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c").arg(format!("{}{}wait", line(names[0]), line(names[1])));
        // Nothing holds the test's output open.
        let null = std::process::Stdio::null;
        cmd.stdin(null()).stdout(null()).stderr(null());
        cmd
    }

    fn procs(cg: &cgroup::AppCgroup) -> Vec<u32> {
        std::fs::read_to_string(cg.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    #[tokio::test]
    async fn a_real_process_tree_is_frozen_resumed_and_killed_with_the_audio() {
        let dir = tempfile::tempdir().unwrap();
        let cg = app_cgroup();
        let mut cmd = counters(dir.path(), ["a", "b"]);
        cg.join_before_exec(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        wait_until("both children counting", || count(&a) > 2 && count(&b) > 2).await;
        assert!(procs(&cg).contains(&child.id()), "the shell joined its cgroup before exec");
        assert!(procs(&cg).len() >= 3, "its children are in it too: {:?}", procs(&cg));
        // A reference counter outside, to know time has passed without timing anything.
        let reference_cg = app_cgroup();
        let mut reference = counters(dir.path(), ["r", "r2"]);
        reference_cg.join_before_exec(&mut reference);
        let mut reference = reference.spawn().unwrap();
        let r = dir.path().join("r");

        let mute = FakeMute::default();
        let mut apps = CgroupApps::new(mute.clone());
        apps.set_foreground(Some(AppProcess { pid: child.id(), cgroup: cg.path.clone() }));
        apps.set_muted(true).await.unwrap();
        apps.stop_foreground().await.unwrap();
        let events = std::fs::read_to_string(cg.dir.join("cgroup.events")).unwrap();
        assert_eq!(cgroup::events_say(&events, "frozen"), Some(true), "{events}");
        let (frozen_a, frozen_b, r0) = (count(&a), count(&b), count(&r));
        wait_until("the reference counts on", || count(&r) >= r0 + 20).await;
        assert_eq!((count(&a), count(&b)), (frozen_a, frozen_b), "frozen: no progress");

        apps.resume_foreground().await.unwrap();
        apps.set_muted(false).await.unwrap();
        wait_until("counting again", || count(&a) > frozen_a && count(&b) > frozen_b).await;

        apps.stop_foreground().await.unwrap();
        apps.close_foreground().await.unwrap();
        wait_until("the cgroup is empty", || procs(&cg).is_empty()).await;
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "ended by cgroup.kill: {status:?}");
        let events = std::fs::read_to_string(cg.dir.join("cgroup.events")).unwrap();
        assert_eq!(cgroup::events_say(&events, "frozen"), Some(false), "not left frozen");
        // The audio is the core's to order; stopping and closing leave it alone.
        assert_eq!(*mute.calls.lock().unwrap(), vec![true, false]);
        // Nothing left to stop.
        apps.stop_foreground().await.unwrap();

        cg.kill_and_remove().unwrap();
        assert!(!cg.dir.exists(), "the launcher removes the cgroup");
        reference_cg.kill_and_remove().unwrap();
        reference.wait().unwrap();
    }

    #[tokio::test]
    async fn slated_never_freezes_its_own_cgroup_nor_one_that_is_not_an_app() {
        let own = cgroup::cgroup_of("self").unwrap();
        let mut apps = CgroupApps::new(FakeMute::default());
        apps.set_foreground(Some(AppProcess { pid: std::process::id(), cgroup: own.clone() }));
        let err = apps.stop_foreground().await.unwrap_err();
        assert!(err.to_string().contains("not an app cgroup"), "{err}");

        // An app cgroup that holds slated (as if slated ran inside one).
        let hierarchy = Hierarchy { root: "/".into(), mount: "/nonexistent".into() };
        let apps = CgroupApps {
            place: Ok((hierarchy, "/s/slate-app-1-1/inner".into())),
            app: None,
            frozen: None,
            mute: FakeMute::default(),
        };
        let err = apps.dir("/s/slate-app-1-1").unwrap_err();
        assert!(err.contains("holds slated"), "{err}");
        assert_eq!(apps.dir("/s/slate-app-1-2"), Ok(PathBuf::from("/nonexistent/s/slate-app-1-2")));
    }

    #[tokio::test]
    async fn with_no_foreground_app_stopping_succeeds_and_the_audio_is_left_alone() {
        let mute = FakeMute::default();
        let mut apps = CgroupApps::new(mute.clone());
        apps.stop_foreground().await.unwrap();
        apps.resume_foreground().await.unwrap();
        apps.close_foreground().await.unwrap();
        apps.set_muted(true).await.unwrap();
        assert_eq!(*mute.calls.lock().unwrap(), vec![true]);
    }

    #[tokio::test]
    async fn an_app_that_is_gone_is_an_error_not_a_panic() {
        let cg = app_cgroup();
        let path = cg.path.clone();
        cg.kill_and_remove().unwrap();
        let mut apps = CgroupApps::new(FakeMute::default());
        apps.set_foreground(Some(AppProcess { pid: 1, cgroup: path }));
        assert!(matches!(apps.stop_foreground().await, Err(AppsError::Stop(_))));
    }

    #[tokio::test]
    async fn a_missing_mute_program_is_an_error() {
        let mut mute = CommandMute::new(MuteBackend::Amixer { control: "Master".into() });
        // Whether or not amixer is installed, no machine here has this control or program.
        mute.backend = MuteBackend::Amixer { control: "NoSuchControl-slate-test".into() };
        assert!(mute.set_muted(true).await.is_err());
        assert!(CommandMute::new(MuteBackend::None).set_muted(true).await.is_ok());
    }
}
