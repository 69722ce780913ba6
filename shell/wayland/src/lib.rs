//! Darkness through the kiosk compositor (labwc, sway or any wlroots compositor with
//! `zwlr_layer_shell_v1`): `slated` is a Wayland client of its own that keeps one overlay-layer
//! surface per output ready and, on a press, maps it full-screen black above every window
//! (fullscreen Chromium included), with exclusive keyboard interactivity so nothing under it gets
//! keys (and, covering the whole output, no touches either).
//!
//! Darkness is *confirmed*: the black frame counts as shown when the compositor says so for every
//! output, by `wp_presentation_feedback.presented` or the surface's frame callback, whichever
//! comes first (both are sent only after the compositor drew the output with the new content).
//! Then, if configured, each output is powered off through
//! `zwlr_output_power_management_v1` (HDMI screens with no backlight); this is the compositor's
//! DPMS, which keeps the output, its mode and its place in the layout, unlike switching the HDMI
//! port off (`vcgencmd`, `tvservice`), which Chromium on the Pi sees as the screen vanishing.
//!
//! [`Overlay`] runs the connection on a thread of its own and answers through channels, so the
//! caller bounds every wait itself. When the compositor goes away (it restarted, the kiosk
//! session was restarted) the thread reconnects with [`backoff`]; requests made meanwhile fail
//! at once. What was asked last is kept: a device that is dark when the compositor comes back is
//! made dark again straight away (fail dark).
//!
//! No pixel of any other client is read here: the overlay only draws.
//!
//! Also here, as another client of the same compositor: [`input_method`], which tells when a
//! text field of a native app has the focus (for the on-screen keyboard); and
//! [`keyboard_layer`], which puts the on-screen keyboard above the full-screen app.

mod session;
mod worker;

pub mod headless;
pub mod input_method;
pub mod keyboard_layer;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use session::Power;
pub use worker::Overlay;

/// Why the screen could not be darkened or restored through the compositor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the compositor at {socket}: {reason}")]
    Connect { socket: String, reason: String },
    #[error("the compositor has no {0} (is it a wlroots compositor such as labwc or sway?)")]
    Missing(&'static str),
    #[error("not connected to the compositor (reconnecting)")]
    Disconnected,
    #[error("the compositor connection failed: {0}")]
    Lost(String),
    #[error("the compositor has no output to darken")]
    NoOutput,
    #[error("the overlay thread is gone")]
    Gone,
    #[error("{0}")]
    Setup(String),
}

/// What to connect to and what to do beyond the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The compositor's socket, e.g. `/run/slate-kiosk/wayland-0`.
    pub socket: PathBuf,
    /// Power the outputs off once the overlay is confirmed, on again before it is lifted.
    pub output_power: bool,
}

impl Settings {
    /// The socket as Wayland clients find it: `$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY`, or
    /// `WAYLAND_DISPLAY` alone when it is an absolute path. Pure.
    pub fn socket_path(
        runtime_dir: &Path,
        wayland_display: &(impl AsRef<OsStr> + ?Sized),
    ) -> PathBuf {
        let display = Path::new(wayland_display);
        if display.is_absolute() {
            display.to_owned()
        } else {
            runtime_dir.join(display)
        }
    }
}

/// The first reconnection delay and the longest one.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long to wait before connection attempt number `failures + 1`: doubling from
/// [`BACKOFF_MIN`], at most [`BACKOFF_MAX`]. Pure.
pub fn backoff(failures: u32) -> Duration {
    BACKOFF_MIN.saturating_mul(1u32 << failures.min(16)).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let table =
            [(0, 100), (1, 200), (2, 400), (5, 3200), (6, 5000), (40, 5000), (u32::MAX, 5000)];
        for (failures, ms) in table {
            assert_eq!(backoff(failures), Duration::from_millis(ms), "after {failures} failures");
        }
    }

    #[test]
    fn the_socket_is_found_as_clients_find_it() {
        let run = Path::new("/run/slate-kiosk");
        assert_eq!(
            Settings::socket_path(run, "wayland-0"),
            PathBuf::from("/run/slate-kiosk/wayland-0")
        );
        assert_eq!(
            Settings::socket_path(run, "/tmp/w/wayland-1"),
            PathBuf::from("/tmp/w/wayland-1")
        );
    }
}
