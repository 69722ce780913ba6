//! Where typing goes in a native app, for the on-screen keyboard: the kiosk's compositor tells
//! slate-wayland's input method ([`TextFieldWatch`]) when a text-input-v3 field of the app takes
//! or loses the focus, as a web page tells through CDP ([`crate::text_focus`]). Each app in
//! front is answered for by its own source: a web app by its page, a native app by the input
//! method ([`app_focus`]). An app whose toolkit does not speak text-input-v3 (Xwayland, Qt 5,
//! Electron without its flag) never says anything: until a field of the app in front has taken
//! the focus once, its focus counts as unknown and the keyboard stays up, as before.
//!
//! The seat has one input method at most. When slate-ui's cannot register (another input method
//! holds the seat, a compositor without `zwp_input_method_manager_v2`, no Wayland compositor at
//! all) or its connection ends, a native app's focus is [`TextFocus::Unknown`] and the keyboard
//! stays up while the app is open, as before this existed; the log says so once.
//!
//! Pure: [`app_focus`] and [`compositor_socket`]. [`NativeFocus`] owns the watch, whose thread
//! hands each answer to the UI's loop through a [`SharedFocus`], as the browser's guard does.

use crate::text_focus::{SharedFocus, TextFocus};
use slate_wayland::input_method::TextFieldWatch;
use std::cell::Cell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What kind of app is in front, as the launcher started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppInFront {
    /// No app running.
    Nothing,
    /// A web app in the kiosk browser.
    Web,
    /// A native app.
    Native,
}

/// What the compositor's input method says about the native app in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputMethodAnswer {
    /// Where typing goes now.
    pub focus: TextFocus,
    /// A text field has taken the focus since the app was opened: the app speaks text-input-v3,
    /// so "no field" from the input method can be believed.
    pub app_spoke: bool,
}

/// Where typing goes in the app in front: a web app's page says (`page`); a native app's
/// compositor says through the input method (`input_method`, `None` when it cannot), once the
/// app has shown it speaks text-input-v3. Otherwise [`TextFocus::Unknown`], and the keyboard
/// stays up over the app. No app: nothing to type in. Pure.
pub fn app_focus(
    app: AppInFront,
    page: TextFocus,
    input_method: Option<InputMethodAnswer>,
) -> TextFocus {
    match (app, input_method) {
        (AppInFront::Nothing, _) => TextFocus::Elsewhere,
        (AppInFront::Web, _) => page,
        (AppInFront::Native, Some(InputMethodAnswer { focus, app_spoke: true })) => focus,
        (AppInFront::Native, _) => TextFocus::Unknown,
    }
}

/// The Wayland socket slate-ui's own window is on, as libwayland finds it: `WAYLAND_DISPLAY`
/// as it is when absolute, else under `XDG_RUNTIME_DIR`. `None` without `WAYLAND_DISPLAY` (winit
/// then draws on X11: there is no compositor to ask). Pure.
pub fn compositor_socket(wayland_display: Option<&OsStr>, runtime_dir: &Path) -> Option<PathBuf> {
    let display = wayland_display.filter(|d| !d.is_empty())?;
    Some(slate_wayland::Settings::socket_path(runtime_dir, display))
}

/// A native app's text focus, as the compositor's input method last told it.
pub struct NativeFocus {
    watch: Option<TextFieldWatch>,
    focus: SharedFocus,
    /// How many times a field took the focus (from any app), counted by the watch's thread.
    fields_focused: Arc<AtomicU64>,
    /// The watch's end was logged (once).
    end_logged: Cell<bool>,
}

impl NativeFocus {
    /// No input method: a native app's focus is unknown (a device without the on-screen
    /// keyboard, or tests that run no compositor).
    pub fn unknown() -> Self {
        Self {
            watch: None,
            focus: SharedFocus::default(),
            fields_focused: Arc::default(),
            end_logged: Cell::new(true),
        }
    }

    /// Registers as the input method of the compositor at `socket`. When it cannot, says why in
    /// the log and answers as [`NativeFocus::unknown`].
    pub fn start(socket: Option<&Path>) -> Self {
        const FALLBACK: &str = "the on-screen keyboard stays up while a native app is open";
        let Some(socket) = socket else {
            tracing::warn!("no Wayland compositor (WAYLAND_DISPLAY unset): {FALLBACK}");
            return Self::unknown();
        };
        let focus = SharedFocus::default();
        focus.set(TextFocus::Elsewhere);
        let fields_focused = Arc::new(AtomicU64::new(0));
        let (told, counted) = (focus.clone(), fields_focused.clone());
        let watch = TextFieldWatch::start(socket, move |field| {
            if field {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            told.set(if field { TextFocus::Field } else { TextFocus::Elsewhere });
        });
        match watch {
            Ok(watch) => {
                tracing::info!(
                    "native apps' text fields followed through the compositor's input method"
                );
                Self { watch: Some(watch), focus, fields_focused, end_logged: Cell::new(false) }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot register as the compositor's input method: {FALLBACK}");
                Self::unknown()
            }
        }
    }

    /// A mark to take when an app is opened, for [`NativeFocus::get`].
    pub fn mark(&self) -> u64 {
        self.fields_focused.load(Ordering::SeqCst)
    }

    /// The input method's answer for an app opened at `mark`; `None` when there is none (never
    /// registered, or its connection ended: logged the first time it is seen).
    pub fn get(&self, mark: u64) -> Option<InputMethodAnswer> {
        let watch = self.watch.as_ref()?;
        if watch.is_running() {
            // Read after the focus: a field focused in between is counted, not missed.
            let focus = self.focus.get();
            return Some(InputMethodAnswer { focus, app_spoke: self.mark() > mark });
        }
        if !self.end_logged.replace(true) {
            tracing::warn!("the compositor's input method ended: the on-screen keyboard stays up while a native app is open");
        }
        None
    }
}

impl std::fmt::Debug for NativeFocus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeFocus")
            .field("registered", &self.watch.is_some())
            .field("focus", &self.get(0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::{keyboard_wanted, Screen};
    use AppInFront::*;
    use TextFocus::*;

    #[test]
    fn each_app_is_answered_for_by_its_own_source() {
        let spoke = |focus| Some(InputMethodAnswer { focus, app_spoke: true });
        let silent = |focus| Some(InputMethodAnswer { focus, app_spoke: false });
        // (app in front, the page's focus, the input method's, focus, keyboard up on home)
        #[rustfmt::skip]
        let table = [
            (Web, Field, spoke(Elsewhere), Field, true),      // the page's, not the compositor's
            (Web, Elsewhere, spoke(Field), Elsewhere, false),
            (Web, Elsewhere, None, Elsewhere, false),
            (Native, Elsewhere, spoke(Field), Field, true),   // the compositor's, not a page's
            (Native, Field, spoke(Elsewhere), Elsewhere, false),
            // No field has taken the focus since the app opened: it may not speak
            // text-input-v3 at all, so its silence says nothing.
            (Native, Elsewhere, silent(Elsewhere), Unknown, true),
            // No input method (another holds the seat, an older compositor, it ended): the
            // keyboard stays up while the native app is open, as before.
            (Native, Elsewhere, None, Unknown, true),
            (Native, Field, None, Unknown, true),
            (Nothing, Field, spoke(Field), Elsewhere, false),
            (Nothing, Unknown, None, Elsewhere, false),
        ];
        for (app, page, input_method, focus, up) in table {
            let got = app_focus(app, page, input_method);
            assert_eq!(got, focus, "{app:?} {page:?} {input_method:?}");
            assert_eq!(keyboard_wanted(Screen::Home, true, got), up, "{app:?} {input_method:?}");
        }
    }

    #[test]
    fn the_compositor_socket_is_found_as_libwayland_finds_it() {
        let run = Path::new("/run/user/1000");
        let table: [(Option<&str>, Option<&str>); 4] = [
            (Some("wayland-0"), Some("/run/user/1000/wayland-0")),
            (Some("/tmp/labwc/wayland-1"), Some("/tmp/labwc/wayland-1")),
            (None, None), // X11: no compositor
            (Some(""), None),
        ];
        for (display, socket) in table {
            assert_eq!(
                compositor_socket(display.map(OsStr::new), run),
                socket.map(PathBuf::from),
                "{display:?}"
            );
        }
    }

    #[test]
    fn without_an_input_method_a_native_apps_focus_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        // No compositor behind the socket, and none at all: no answer, no crash.
        for socket in [Some(dir.path().join("wayland-9")), None] {
            let native = NativeFocus::start(socket.as_deref());
            assert_eq!(native.get(native.mark()), None, "{socket:?}");
            assert_eq!(app_focus(Native, Elsewhere, native.get(0)), Unknown);
        }
        assert_eq!(NativeFocus::unknown().get(0), None);
    }
}
