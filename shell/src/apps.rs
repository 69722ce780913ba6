//! The foreground-app adapter: stop and mute the app on a report, then resume or close it on
//! unlock. Owns only the app's run state and the audio mute; must not decide when (that is the
//! core's), and must never signal `slated`'s own process group.
//!
//! [`SignalApps`] is the real one: `SIGSTOP` to the foreground app's process group (every
//! renderer and helper of a browser stops, not just the one pid), `SIGCONT` on a false alarm,
//! `SIGTERM` (then `SIGCONT`, so that a stopped process can act on it) on close; audio is muted
//! through a [`Mute`] command ([`mute_command`] builds it: `wpctl` for PipeWire, `amixer` for
//! ALSA). The foreground app's pid comes from whoever starts it (today the `foreground` control
//! request; later the kiosk's own launcher). [`LoggingApps`] stands in where there is no app, and
//! [`FakeApps`] is for tests.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgid, getpgrp, Pid};
use std::future::Future;
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
    /// Stops and mutes the foreground app (no sound, no more page loads).
    fn stop_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Lets it run again and unmutes (a false alarm).
    fn resume_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Ends it and unmutes: the page is not shown again.
    fn close_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// The process now in the foreground (`None`: nothing the shell can stop).
    fn set_foreground_pid(&mut self, _pid: Option<u32>) {}
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

/// The real adapter: signals to the foreground app's process group, and a mute.
pub struct SignalApps<M: Mute> {
    /// The foreground app's pid, as last told.
    pid: Option<Pid>,
    /// The process group stopped by the last `stop_foreground`, until resumed or closed.
    stopped: Option<Pid>,
    mute: M,
}

impl<M: Mute> SignalApps<M> {
    pub fn new(mute: M) -> Self {
        Self { pid: None, stopped: None, mute }
    }

    /// The process group to signal for the foreground pid, refusing our own group (stopping it
    /// would stop `slated`) and the kernel's and init's.
    fn target_group(pid: Pid) -> Result<Pid, String> {
        let group = getpgid(Some(pid)).map_err(|e| format!("process {pid}: {e}"))?;
        if group.as_raw() <= 1 {
            return Err(format!("process {pid} is in process group {group}; not signalling it"));
        }
        if group == getpgrp() {
            return Err(format!(
                "process {pid} shares slated's own process group; the app must run in its own"
            ));
        }
        Ok(group)
    }

    async fn unmute(&mut self) -> Result<(), AppsError> {
        self.mute.set_muted(false).await
    }
}

impl<M: Mute> Apps for SignalApps<M> {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        // Sound off first: it is the quickest thing a child notices.
        let muted = self.mute.set_muted(true).await;
        let Some(pid) = self.pid else {
            return muted;
        };
        let group = Self::target_group(pid).map_err(AppsError::Stop)?;
        killpg(group, Signal::SIGSTOP)
            .map_err(|e| AppsError::Stop(format!("group {group}: {e}")))?;
        self.stopped = Some(group);
        tracing::info!(group = group.as_raw(), "foreground app stopped");
        muted
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        if let Some(group) = self.stopped.take() {
            killpg(group, Signal::SIGCONT)
                .map_err(|e| AppsError::Resume(format!("group {group}: {e}")))?;
            tracing::info!(group = group.as_raw(), "foreground app resumed");
        }
        self.unmute().await
    }

    async fn close_foreground(&mut self) -> Result<(), AppsError> {
        let group = self.stopped.take().or(self.pid.and_then(|p| Self::target_group(p).ok()));
        if let Some(group) = group {
            killpg(group, Signal::SIGTERM)
                .map_err(|e| AppsError::Close(format!("group {group}: {e}")))?;
            // A stopped process only acts on SIGTERM once it runs again.
            let _ = killpg(group, Signal::SIGCONT);
            tracing::info!(group = group.as_raw(), "foreground app closed");
            self.pid = None;
        }
        self.unmute().await
    }

    fn set_foreground_pid(&mut self, pid: Option<u32>) {
        self.pid = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppsCall {
    Stop,
    Resume,
    Close,
    Foreground(Option<u32>),
}

/// Records calls, for tests.
#[derive(Debug, Clone, Default)]
pub struct FakeApps {
    pub calls: Arc<Mutex<Vec<AppsCall>>>,
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

    fn set_foreground_pid(&mut self, pid: Option<u32>) {
        self.record(AppsCall::Foreground(pid));
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
    use std::os::unix::process::CommandExt;

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

    /// The state letter of a process from /proc (`T` stopped, `S` sleeping, `Z` zombie…).
    fn state_of(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The state follows the command name, which is in parentheses.
        stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap()
    }

    /// Waits (bounded) for a process to reach a state: signals are delivered asynchronously.
    async fn wait_for_state(pid: u32, wanted: &[char]) -> char {
        for _ in 0..500 {
            let s = state_of(pid);
            if wanted.contains(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        state_of(pid)
    }

    /// A `sleep` in its own process group, as the kiosk starts an app.
    fn app() -> std::process::Child {
        std::process::Command::new("sleep").arg("300").process_group(0).spawn().unwrap()
    }

    #[tokio::test]
    async fn a_real_app_is_stopped_resumed_and_closed_with_the_audio() {
        let mut child = app();
        let pid = child.id();
        let mute = FakeMute::default();
        let mut apps = SignalApps::new(mute.clone());
        apps.set_foreground_pid(Some(pid));

        apps.stop_foreground().await.unwrap();
        assert_eq!(wait_for_state(pid, &['T']).await, 'T', "stopped");
        apps.resume_foreground().await.unwrap();
        let state = wait_for_state(pid, &['S', 'R']).await;
        assert!(matches!(state, 'S' | 'R'), "running again: {state}");
        apps.stop_foreground().await.unwrap();
        assert_eq!(wait_for_state(pid, &['T']).await, 'T', "stopped again");
        apps.close_foreground().await.unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc_sigterm()), "ended by SIGTERM: {status:?}");
        assert_eq!(*mute.calls.lock().unwrap(), vec![true, false, true, false]);
    }

    fn libc_sigterm() -> i32 {
        Signal::SIGTERM as i32
    }

    #[tokio::test]
    async fn our_own_process_group_is_never_signalled() {
        // A child left in the test's own group: stopping it would stop the test runner too.
        let mut child = std::process::Command::new("sleep").arg("300").spawn().unwrap();
        let mut apps = SignalApps::new(FakeMute::default());
        apps.set_foreground_pid(Some(child.id()));
        let err = apps.stop_foreground().await.unwrap_err();
        assert!(err.to_string().contains("own process group"), "{err}");
        assert_ne!(state_of(child.id()), 'T');
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[tokio::test]
    async fn with_no_foreground_app_only_the_audio_is_muted() {
        let mute = FakeMute::default();
        let mut apps = SignalApps::new(mute.clone());
        apps.stop_foreground().await.unwrap();
        apps.resume_foreground().await.unwrap();
        apps.close_foreground().await.unwrap();
        assert_eq!(*mute.calls.lock().unwrap(), vec![true, false, false]);
    }

    #[tokio::test]
    async fn an_app_that_is_gone_is_an_error_not_a_panic() {
        let mut child = app();
        let pid = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut apps = SignalApps::new(FakeMute::default());
        apps.set_foreground_pid(Some(pid));
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
