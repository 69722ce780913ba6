//! The screen adapter: darken it at once, show the reassurance, restore it. Owns only the
//! screen; must not decide when (that is the core's) nor write anything but the backlight's own
//! control files.
//!
//! Darkness is *confirmed*, not assumed: each adapter reads the backlight back after switching it
//! off, and `blank` returns the time it saw it dark. With the kernel's timestamp of the key-down
//! this gives the report's `blank_latency_us`.
//!
//! | adapter | how | confirmed by | chosen by `[display] backend` |
//! |---|---|---|---|
//! | [`SysfsBacklight`] | `bl_power = 4` (or `brightness = 0`) in `/sys/class/backlight/<name>/`, the old value kept for restore | reading the file back (and `actual_brightness`) | `"sysfs"` (needs write access: root or a udev rule) |
//! | [`LogindBacklight`] | logind's `org.freedesktop.login1.Session.SetBrightness("backlight", name, 0)` on the system bus, as the kiosk session's user | reading `actual_brightness` in sysfs | `"logind"` |
//! | [`WaylandDisplay`] | a black wlr layer-shell surface on the overlay layer of every output, above every window (fullscreen ones too), with exclusive keyboard interactivity; then, with `output_power`, the outputs powered off (wlr-output-power-management) | the compositor drawing the black frame (presentation feedback or frame callback) | `"wayland"` (labwc, sway: any wlroots compositor) |
//! | overlay + backlight | the `wayland` adapter, then the backlight where there is one (either alone darkens) | as each does | `"auto"`, the default: the compositor when the kiosk session runs, the backlight where there is one |
//! | [`LoggingDisplay`] | nothing: logs, and never claims darkness (the report carries no latency) | nothing | `"none"` (development machines) |
//! | [`FakeDisplay`] | tests | | |
//!
//! Never switch HDMI off by `vcgencmd`/`tvservice`: Chromium on the Pi leaves kiosk mode when the
//! output vanishes. The compositor's output power (the `wayland` adapter's `output_power`) keeps
//! the output and its mode; it is for HDMI screens with no backlight.
//!
//! # The reassurance screen
//!
//! The "you did the right thing" screen is the UI's (`shell/ui/`), an ordinary window. While the
//! device is held the screen stays dark ([`Display::show_reassurance`] changes nothing that could
//! show what was on screen: the stopped app's window is still there under the darkness). Only
//! when the UI says its reassurance screen is in front of every app window does
//! [`Display::reveal_ui`] light the screen for it: the overlay is removed (outputs powered on
//! first) or the backlight lit, and the device stays held. Why not a second overlay above ours:
//! the layer-shell protocol leaves the order of two surfaces on the same layer to each
//! compositor, so "above" could not be promised. A UI that crashes or never says so leaves the
//! screen dark, which is the safe side: with the overlay the UI gets no keys or touches either,
//! so staff then unlock with `slatectl unlock`.

use crate::config::{Backlight, BlankMethod, DisplayConfig};
use chrono::{DateTime, Utc};
use slate_protocol::EventId;
/// The compositor client behind [`WaylandDisplay`], and its headless test harness.
pub use slate_wayland as wayland;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayError {
    #[error("the screen could not be darkened: {0}")]
    Blank(String),
    #[error("the screen could not be restored: {0}")]
    Restore(String),
    #[error("the reassurance could not be shown: {0}")]
    Reassure(String),
    #[error("the display adapter could not be set up: {0}")]
    Setup(String),
}

/// The device's screen.
pub trait Display: Send + 'static {
    /// Darkens the screen for `report` and returns when the darkness is confirmed, with the time
    /// it was. The caller bounds how long it waits.
    fn blank(
        &mut self,
        report: EventId,
    ) -> impl Future<Output = Result<DateTime<Utc>, DisplayError>> + Send;
    /// Shows the "you did the right thing, a grown-up is coming" screen (dimly, screen held).
    fn show_reassurance(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;
    /// Lights the screen again after a staff unlock.
    fn restore(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;
    /// The UI says its reassurance screen is in front of every app window: light the screen for
    /// it (the device stays held; [`Display::restore`] still follows the unlock, and a new press
    /// darkens again). Never called on a guess: what was on screen is still under the darkness.
    fn reveal_ui(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;
    /// Whether a press now could darken the screen (for the heartbeat and `status`): a
    /// compositor connected, a backlight found. Never a promise, only "nothing is missing".
    fn can_darken(&self) -> bool {
        true
    }
}

/// Where backlights live.
pub const SYSFS_BACKLIGHT: &str = "/sys/class/backlight";
/// `FB_BLANK_POWERDOWN`, from `linux/fb.h`: what `bl_power` is set to for dark.
const FB_BLANK_POWERDOWN: &str = "4";

/// The backlight to use among those present (`names`, as listed in `/sys/class/backlight`). Pure.
pub fn choose_backlight(names: &[String], choice: &Backlight) -> Result<String, DisplayError> {
    match choice {
        Backlight::Named(name) if names.contains(name) => Ok(name.clone()),
        Backlight::Named(name) => Err(DisplayError::Setup(format!(
            "no backlight {name:?} (present: {})",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        ))),
        Backlight::Auto => {
            let mut sorted = names.to_vec();
            sorted.sort();
            sorted
                .into_iter()
                .next()
                .ok_or_else(|| DisplayError::Setup("no backlight present".into()))
        }
    }
}

/// Lists the backlights under `root` and chooses one; returns its directory.
pub fn find_backlight(root: &Path, choice: &Backlight) -> Result<PathBuf, DisplayError> {
    let names: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| DisplayError::Setup(format!("{}: {e}", root.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    Ok(root.join(choose_backlight(&names, choice)?))
}

fn read_trimmed(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_value(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether the backlight in `dir` reads as dark for `method`: the control file holds the dark
/// value and, where the driver has one, `actual_brightness` is 0 (or `bl_power` is off).
fn reads_dark(dir: &Path, method: BlankMethod) -> Result<bool, String> {
    let dark = match method {
        BlankMethod::BlPower => read_trimmed(&dir.join("bl_power"))? == FB_BLANK_POWERDOWN,
        BlankMethod::Brightness => read_trimmed(&dir.join("brightness"))? == "0",
    };
    let actual = dir.join("actual_brightness");
    if dark && method == BlankMethod::Brightness && actual.exists() {
        return Ok(read_trimmed(&actual)? == "0");
    }
    Ok(dark)
}

/// The backlight through its sysfs files. The file's old value is kept and written back on
/// restore.
#[derive(Debug)]
pub struct SysfsBacklight {
    dir: PathBuf,
    method: BlankMethod,
    /// What the control file held before the first `blank`, until `restore`.
    saved: Option<String>,
}

impl SysfsBacklight {
    /// `dir` is the backlight's directory, e.g. `/sys/class/backlight/10-0045`.
    pub fn new(dir: impl Into<PathBuf>, method: BlankMethod) -> Self {
        Self { dir: dir.into(), method, saved: None }
    }

    fn file(&self) -> PathBuf {
        self.dir.join(match self.method {
            BlankMethod::BlPower => "bl_power",
            BlankMethod::Brightness => "brightness",
        })
    }

    fn blank_now(&mut self) -> Result<DateTime<Utc>, DisplayError> {
        let file = self.file();
        let dark = match self.method {
            BlankMethod::BlPower => FB_BLANK_POWERDOWN,
            BlankMethod::Brightness => "0",
        };
        if self.saved.is_none() {
            // A second blank before a restore must not save "dark" as the value to go back to.
            self.saved = Some(read_trimmed(&file).map_err(DisplayError::Blank)?);
        }
        write_value(&file, dark).map_err(DisplayError::Blank)?;
        match reads_dark(&self.dir, self.method) {
            Ok(true) => Ok(Utc::now()),
            Ok(false) => {
                Err(DisplayError::Blank(format!("{} does not read back as dark", file.display())))
            }
            Err(e) => Err(DisplayError::Blank(e)),
        }
    }
}

// Sysfs writes are a syscall into the backlight driver: done inline, not on a blocking thread,
// because the time to darkness is the figure that matters and the core task waits anyway.
impl Display for SysfsBacklight {
    async fn blank(&mut self, _report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        self.blank_now()
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        tracing::info!(
            "held: the backlight stays off until the UI's reassurance screen is in front"
        );
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        let Some(saved) = self.saved.take() else {
            return Ok(());
        };
        write_value(&self.file(), &saved).map_err(DisplayError::Restore)
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        // Lit with the old value, which stays saved for the restore after the unlock.
        let Some(saved) = self.saved.clone() else {
            return Ok(());
        };
        write_value(&self.file(), &saved).map_err(DisplayError::Reassure)
    }
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait LogindSession {
    /// Sets a backlight's brightness as the session's user (no root, no udev rule).
    fn set_brightness(&self, subsystem: &str, name: &str, brightness: u32) -> zbus::Result<()>;
}

/// The backlight through logind's `SetBrightness`; its current value is read from sysfs (logind
/// has no getter) and darkness confirmed there.
pub struct LogindBacklight {
    session: LogindSessionProxy<'static>,
    /// The backlight's sysfs directory; its name is what logind is told.
    dir: PathBuf,
    name: String,
    saved: Option<u32>,
}

impl LogindBacklight {
    /// `session` is a logind session id, or `auto` for the caller's own session.
    pub async fn connect(
        connection: &zbus::Connection,
        session: &str,
        dir: PathBuf,
    ) -> Result<Self, DisplayError> {
        let setup = |e: zbus::Error| DisplayError::Setup(format!("logind: {e}"));
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DisplayError::Setup(format!("{} has no name", dir.display())))?
            .to_owned();
        let path = format!("/org/freedesktop/login1/session/{session}");
        let session =
            LogindSessionProxy::builder(connection).path(path).build().await.map_err(setup)?;
        Ok(Self { session, dir, name, saved: None })
    }

    fn read(&self, file: &str) -> Result<u32, String> {
        let path = self.dir.join(file);
        read_trimmed(&path)?.parse().map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Display for LogindBacklight {
    async fn blank(&mut self, _report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        if self.saved.is_none() {
            self.saved = Some(self.read("brightness").map_err(DisplayError::Blank)?);
        }
        self.session
            .set_brightness("backlight", &self.name, 0)
            .await
            .map_err(|e| DisplayError::Blank(format!("logind SetBrightness: {e}")))?;
        let actual = if self.dir.join("actual_brightness").exists() {
            self.read("actual_brightness")
        } else {
            self.read("brightness")
        };
        match actual {
            Ok(0) => Ok(Utc::now()),
            Ok(n) => {
                Err(DisplayError::Blank(format!("the backlight reads {n} after SetBrightness 0")))
            }
            Err(e) => Err(DisplayError::Blank(e)),
        }
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        tracing::info!(
            "held: the backlight stays off until the UI's reassurance screen is in front"
        );
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        let Some(saved) = self.saved.take() else {
            return Ok(());
        };
        self.session
            .set_brightness("backlight", &self.name, saved)
            .await
            .map_err(|e| DisplayError::Restore(format!("logind SetBrightness: {e}")))
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        let Some(saved) = self.saved else {
            return Ok(());
        };
        self.session
            .set_brightness("backlight", &self.name, saved)
            .await
            .map_err(|e| DisplayError::Reassure(format!("logind SetBrightness: {e}")))
    }
}

/// The overlay through the kiosk compositor ([`slate_wayland::Overlay`], on a thread of its
/// own that reconnects with backoff). Every call answers as soon as the compositor does, or at
/// once with an error while it is away; the caller's timeout bounds the rest.
pub struct WaylandDisplay {
    overlay: slate_wayland::Overlay,
}

impl WaylandDisplay {
    /// Starts the connection thread; it connects (and reconnects) by itself, so a compositor
    /// that starts after `slated` is picked up when it comes.
    pub fn spawn(socket: PathBuf, output_power: bool) -> Result<Self, DisplayError> {
        let overlay =
            slate_wayland::Overlay::spawn(slate_wayland::Settings { socket, output_power })
                .map_err(|e| DisplayError::Setup(e.to_string()))?;
        Ok(Self { overlay })
    }

    /// Connected, with the overlay configured on every output (ready for a press).
    pub fn is_ready(&self) -> bool {
        self.overlay.is_ready()
    }

    /// Each output's power as the compositor last reported it (with `output_power`).
    pub fn power(&self) -> Vec<Option<slate_wayland::Power>> {
        self.overlay.power()
    }

    /// Waits (blocking, bounded) until [`WaylandDisplay::is_ready`]: for tests and benchmarks.
    pub fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        self.overlay.wait_ready(timeout)
    }

    async fn lift(&mut self, error: fn(String) -> DisplayError) -> Result<(), DisplayError> {
        match self.overlay.lift().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error(e.to_string())),
            Err(_) => Err(error(slate_wayland::Error::Gone.to_string())),
        }
    }
}

impl Display for WaylandDisplay {
    fn can_darken(&self) -> bool {
        self.is_ready()
    }

    async fn blank(&mut self, _report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        match self.overlay.dark().await {
            Ok(Ok(at)) => Ok(DateTime::<Utc>::from(at)),
            Ok(Err(e)) => Err(DisplayError::Blank(e.to_string())),
            Err(_) => Err(DisplayError::Blank(slate_wayland::Error::Gone.to_string())),
        }
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        tracing::info!("held: the overlay stays until the UI's reassurance screen is in front");
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        self.lift(DisplayError::Restore).await
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        // Not before slate-ui's window is on screen: lifted earlier, the reported page under
        // the overlay would show until slate-ui has drawn.
        match self.overlay.lift_over(slate_ipc::KIOSK_APP_ID).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DisplayError::Reassure(e.to_string())),
            Err(_) => Err(DisplayError::Reassure(slate_wayland::Error::Gone.to_string())),
        }
    }
}

/// The display `slated` uses, as configured. (The trait's futures are not object-safe, so this
/// enum stands where a `Box<dyn Display>` would.)
pub enum SystemDisplay {
    Logging(LoggingDisplay),
    Sysfs(SysfsBacklight),
    Logind(LogindBacklight),
    Wayland(Layered<WaylandDisplay, SysfsBacklight>),
}

impl SystemDisplay {
    /// Sets up the configured adapter. One that cannot be set up (no backlight, no logind) is
    /// logged and replaced by [`LoggingDisplay`]: the report button must still file reports, and
    /// the missing darkness shows as `blank_latency_us: null` in each report.
    pub async fn from_config(config: &DisplayConfig) -> Self {
        match Self::try_from_config(config, Path::new(SYSFS_BACKLIGHT)).await {
            Ok(display) => display,
            Err(e) => {
                tracing::error!(error = %e, "the configured display adapter is unavailable; the screen will not be darkened");
                SystemDisplay::Logging(LoggingDisplay)
            }
        }
    }

    pub async fn try_from_config(
        config: &DisplayConfig,
        sysfs: &Path,
    ) -> Result<Self, DisplayError> {
        Ok(match config {
            DisplayConfig::Logging => SystemDisplay::Logging(LoggingDisplay),
            DisplayConfig::Sysfs { backlight, method } => SystemDisplay::Sysfs(
                SysfsBacklight::new(find_backlight(sysfs, backlight)?, *method),
            ),
            DisplayConfig::Logind { backlight, session } => {
                let dir = find_backlight(sysfs, backlight)?;
                let bus = zbus::Connection::system()
                    .await
                    .map_err(|e| DisplayError::Setup(format!("system bus: {e}")))?;
                SystemDisplay::Logind(LogindBacklight::connect(&bus, session, dir).await?)
            }
            DisplayConfig::Auto { socket, backlight, method } => {
                // The compositor's overlay (picked up whenever the kiosk session starts) and the
                // backlight where the board has one; either alone darkens the screen.
                let overlay = WaylandDisplay::spawn(socket.clone(), false)?;
                let backlight = match find_backlight(sysfs, backlight) {
                    Ok(dir) => Some(SysfsBacklight::new(dir, *method)),
                    Err(e) => {
                        tracing::info!(reason = %e, "no backlight: the compositor's overlay alone darkens the screen");
                        None
                    }
                };
                SystemDisplay::Wayland(Layered { first: overlay, then: backlight })
            }
            DisplayConfig::Wayland { socket, output_power, backlight } => {
                let overlay = WaylandDisplay::spawn(socket.clone(), *output_power)?;
                let backlight = match backlight {
                    Some((which, method)) => {
                        Some(SysfsBacklight::new(find_backlight(sysfs, which)?, *method))
                    }
                    None => None,
                };
                SystemDisplay::Wayland(Layered { first: overlay, then: backlight })
            }
        })
    }
}

impl Display for SystemDisplay {
    fn can_darken(&self) -> bool {
        match self {
            SystemDisplay::Logging(d) => d.can_darken(),
            SystemDisplay::Sysfs(d) => d.can_darken(),
            SystemDisplay::Logind(d) => d.can_darken(),
            SystemDisplay::Wayland(d) => d.can_darken(),
        }
    }

    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        match self {
            SystemDisplay::Logging(d) => d.blank(report).await,
            SystemDisplay::Sysfs(d) => d.blank(report).await,
            SystemDisplay::Logind(d) => d.blank(report).await,
            SystemDisplay::Wayland(d) => d.blank(report).await,
        }
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        match self {
            SystemDisplay::Logging(d) => d.show_reassurance().await,
            SystemDisplay::Sysfs(d) => d.show_reassurance().await,
            SystemDisplay::Logind(d) => d.show_reassurance().await,
            SystemDisplay::Wayland(d) => d.show_reassurance().await,
        }
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        match self {
            SystemDisplay::Logging(d) => d.restore().await,
            SystemDisplay::Sysfs(d) => d.restore().await,
            SystemDisplay::Logind(d) => d.restore().await,
            SystemDisplay::Wayland(d) => d.restore().await,
        }
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        match self {
            SystemDisplay::Logging(d) => d.reveal_ui().await,
            SystemDisplay::Sysfs(d) => d.reveal_ui().await,
            SystemDisplay::Logind(d) => d.reveal_ui().await,
            SystemDisplay::Wayland(d) => d.reveal_ui().await,
        }
    }
}

/// Darkness in two layers: `first` (the compositor's overlay) makes the screen dark and
/// confirms it; `then` (the backlight) goes off after it, best effort: a backlight that fails is
/// logged, the screen is already dark. When the overlay fails (no compositor), the backlight
/// alone still darkens the screen and its confirmation counts. Lit again in the reverse order.
pub struct Layered<A, B> {
    pub first: A,
    pub then: Option<B>,
}

impl<A: Display + Send, B: Display + Send> Display for Layered<A, B> {
    fn can_darken(&self) -> bool {
        self.first.can_darken() || self.then.as_ref().is_some_and(|b| b.can_darken())
    }

    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        let dark_at = match (self.first.blank(report).await, &mut self.then) {
            (Ok(at), _) => at,
            (Err(e), Some(then)) => {
                tracing::error!(error = %e, "overlay not shown; darkening with the backlight alone");
                return then.blank(report).await;
            }
            (Err(e), None) => return Err(e),
        };
        if let Some(then) = &mut self.then {
            if let Err(e) = then.blank(report).await {
                tracing::error!(error = %e, "backlight not switched off (the overlay is dark)");
            }
        }
        Ok(dark_at)
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        if let Some(then) = &mut self.then {
            then.show_reassurance().await?;
        }
        self.first.show_reassurance().await
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        let lit = match &mut self.then {
            Some(then) => then.restore().await,
            None => Ok(()),
        };
        self.first.restore().await.and(lit)
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        if let Some(then) = &mut self.then {
            then.reveal_ui().await?;
        }
        self.first.reveal_ui().await
    }
}

/// A device with nothing to darken (`[display] backend = "none"`, a development machine). It
/// never claims darkness: a report from it carries no blank latency, and the heartbeat says the
/// screen cannot be darkened.
#[derive(Debug, Default)]
pub struct LoggingDisplay;

impl Display for LoggingDisplay {
    fn can_darken(&self) -> bool {
        false
    }

    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        tracing::warn!(%report, "nothing can darken the screen here ([display] backend = \"none\")");
        Err(DisplayError::Blank(
            "no screen switch on this device ([display] backend = \"none\")".into(),
        ))
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        tracing::info!("reassurance shown");
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        tracing::info!("screen restored");
        Ok(())
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        tracing::info!("screen lit for the UI's reassurance");
        Ok(())
    }
}

/// What a [`FakeDisplay`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayCall {
    Blank(EventId),
    Reassure,
    Restore,
    RevealUi,
}

/// How a [`FakeDisplay`] answers `blank`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeBlank {
    /// Confirms darkness at this time.
    DarkAt(DateTime<Utc>),
    Fail,
    /// Never answers (to test the caller's timeout).
    Hang,
}

/// A screen for tests: records calls, answers as told.
#[derive(Debug, Clone)]
pub struct FakeDisplay {
    pub calls: Arc<Mutex<Vec<DisplayCall>>>,
    pub blank: FakeBlank,
}

impl FakeDisplay {
    pub fn new(blank: FakeBlank) -> Self {
        Self { calls: Arc::default(), blank }
    }

    pub fn calls(&self) -> Vec<DisplayCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, call: DisplayCall) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
}

impl Display for FakeDisplay {
    fn can_darken(&self) -> bool {
        !matches!(self.blank, FakeBlank::Fail)
    }

    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        self.record(DisplayCall::Blank(report));
        match &self.blank {
            FakeBlank::DarkAt(t) => Ok(*t),
            FakeBlank::Fail => Err(DisplayError::Blank("fake failure".into())),
            FakeBlank::Hang => std::future::pending().await,
        }
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        self.record(DisplayCall::Reassure);
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        self.record(DisplayCall::Restore);
        Ok(())
    }

    async fn reveal_ui(&mut self) -> Result<(), DisplayError> {
        self.record(DisplayCall::RevealUi);
        Ok(())
    }
}

#[cfg(test)]
mod layered_tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_overlay_confirms_darkness_and_the_backlight_follows_it() {
        let overlay = FakeDisplay::new(FakeBlank::DarkAt(at("2026-11-23T10:00:00.010Z")));
        let backlight = FakeDisplay::new(FakeBlank::DarkAt(at("2026-11-23T10:00:00.200Z")));
        let mut layered = Layered { first: overlay.clone(), then: Some(backlight.clone()) };
        let report = EventId::new();
        assert_eq!(layered.blank(report).await.unwrap(), at("2026-11-23T10:00:00.010Z"));
        layered.reveal_ui().await.unwrap();
        layered.restore().await.unwrap();
        assert_eq!(
            overlay.calls(),
            [DisplayCall::Blank(report), DisplayCall::RevealUi, DisplayCall::Restore]
        );
        assert_eq!(
            backlight.calls(),
            [DisplayCall::Blank(report), DisplayCall::RevealUi, DisplayCall::Restore]
        );
    }

    #[tokio::test]
    async fn a_failing_backlight_does_not_undo_the_overlays_darkness() {
        let overlay = FakeDisplay::new(FakeBlank::DarkAt(at("2026-11-23T10:00:00.010Z")));
        let mut layered = Layered { first: overlay, then: Some(FakeDisplay::new(FakeBlank::Fail)) };
        assert!(layered.blank(EventId::new()).await.is_ok());
        // No compositor: the backlight alone darkens the screen, and its confirmation counts.
        let backlight = FakeDisplay::new(FakeBlank::DarkAt(at("2026-11-23T10:00:00.030Z")));
        let mut layered =
            Layered { first: FakeDisplay::new(FakeBlank::Fail), then: Some(backlight.clone()) };
        assert_eq!(layered.blank(EventId::new()).await.unwrap(), at("2026-11-23T10:00:00.030Z"));
        assert_eq!(backlight.calls().len(), 1);
        // Neither: no darkness is claimed.
        let mut alone: Layered<FakeDisplay, FakeDisplay> =
            Layered { first: FakeDisplay::new(FakeBlank::Fail), then: None };
        assert!(alone.blank(EventId::new()).await.is_err());
    }
}
