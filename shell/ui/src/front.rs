//! Which window the pupil sees: the kiosk's own (slate-ui) or the running app's. The kiosk
//! compositor (labwc; cage as the fallback) shows the newest mapped toplevel on top, and the
//! image's labwc rule keeps slate-ui always on top while mapped. So slate-ui unmaps its window
//! while an app is in front and nothing needs covering, and maps it again (a new toplevel, so on
//! top under either compositor) when a screen must cover the app or the app has gone.
//!
//! [`kiosk_mapped`] is the decision (pure); [`Front`] carries it out through a [`KioskWindow`]
//! only when it changes; [`SlintWindow`] is the real window and [`RecordingWindow`] the fake.

use crate::screen::Screen;

/// Whether slate-ui's window must be mapped: always when no app runs (the kiosk's pages are all
/// there is), and over a running app only for the screens that must cover it (the report hold,
/// the staff PIN pad, "eyes on your teacher", the config error).
pub fn kiosk_mapped(screen: Screen, app_running: bool) -> bool {
    !app_running || screen.covers_apps()
}

/// Maps and unmaps slate-ui's window.
pub trait KioskWindow {
    /// `true`: map the window (it becomes the newest toplevel, in front); `false`: unmap it.
    fn set_mapped(&mut self, mapped: bool) -> Result<(), String>;
}

/// Applies [`kiosk_mapped`] to a window, asking it only when the answer changes (a re-map is a
/// new toplevel: doing it every poll would flicker and steal focus from the app).
pub struct Front<W> {
    pub window: W,
    /// What the window was last set to; `None` until the first success.
    mapped: Option<bool>,
    /// Whether the last [`Front::apply`] changed it.
    changed: bool,
}

impl<W: KioskWindow> Front<W> {
    /// `mapped`: the window's state now (`Some(true)` once it has been shown).
    pub fn new(window: W, mapped: Option<bool>) -> Self {
        Self { window, mapped, changed: false }
    }

    pub fn mapped(&self) -> Option<bool> {
        self.mapped
    }

    /// Whether the window is mapped and was already mapped before the last [`Front::apply`]:
    /// then the event loop has drawn it since (a window shown during a poll is drawn only after
    /// the poll returns). slated lifts the darkness on the word that the reassurance screen is
    /// in front; said any earlier, the reported page would be on screen again until it is drawn.
    pub fn drawn(&self) -> bool {
        self.mapped == Some(true) && !self.changed
    }

    /// Maps or unmaps the window for `screen` with or without an app running. A failure is
    /// logged and tried again at the next call.
    pub fn apply(&mut self, screen: Screen, app_running: bool) {
        let want = kiosk_mapped(screen, app_running);
        self.changed = false;
        if self.mapped == Some(want) {
            return;
        }
        match self.window.set_mapped(want) {
            Ok(()) => {
                tracing::info!(mapped = want, screen = ?screen, app_running, "kiosk window");
                self.mapped = Some(want);
                self.changed = true;
            }
            Err(e) => tracing::warn!(mapped = want, error = %e, "kiosk window not changed"),
        }
    }
}

/// The real window: Slint's `show` and `hide`. Under Wayland, Slint's winit backend destroys the
/// surface on `hide` and creates a new one on `show`, which is what puts it back on top. The
/// event loop must be run with `slint::run_event_loop_until_quit` so that hiding the only window
/// does not end it.
pub struct SlintWindow {
    pub window: slint::Weak<crate::AppWindow>,
    /// Full screen is set again on each new surface.
    pub fullscreen: bool,
}

impl KioskWindow for SlintWindow {
    fn set_mapped(&mut self, mapped: bool) -> Result<(), String> {
        use slint::ComponentHandle;
        let window = self.window.upgrade().ok_or("the window is gone")?;
        if mapped {
            // Full screen before a hidden window is made again, so its first frame is: shown
            // first at its own size, the page under slated's overlay would show around it when
            // the overlay is lifted for the reassurance screen. (Slint keeps the last state it
            // applied and skips a repeat, so it is switched off and on, which for a hidden window
            // only sets how the next one is made; done to a shown one, it left it windowed.)
            if self.fullscreen && !window.window().is_visible() {
                window.window().set_fullscreen(false);
                window.window().set_fullscreen(true);
            }
            window.show().map_err(|e| e.to_string())?;
            window.window().set_fullscreen(self.fullscreen);
            Ok(())
        } else {
            window.hide().map_err(|e| e.to_string())
        }
    }
}

/// The fake: records each request, and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingWindow {
    pub calls: Vec<bool>,
    pub fail: bool,
}

impl KioskWindow for RecordingWindow {
    fn set_mapped(&mut self, mapped: bool) -> Result<(), String> {
        self.calls.push(mapped);
        if self.fail {
            Err("compositor said no".into())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::AskReason;

    #[test]
    fn the_kiosk_is_mapped_unless_an_app_is_in_front_of_a_screen_that_need_not_cover_it() {
        use Screen::*;
        // (screen, mapped with no app, mapped with an app running)
        let table = [
            (ChooseClass, true, false),
            (ChoosePupil, true, false),
            (Agreement, true, false),
            (Home, true, false),
            (Reported, true, true),
            (StaffUnlock, true, true),
            (AskTeacher(AskReason::NoPolicy), true, false),
            (AskTeacher(AskReason::DeviceUnavailable), true, false),
            (Offline, true, false),
            (EyesOnTeacher, true, true),
            (ConfigError, true, true),
        ];
        for (screen, idle, running) in table {
            assert_eq!(kiosk_mapped(screen, false), idle, "{screen:?} with no app");
            assert_eq!(kiosk_mapped(screen, true), running, "{screen:?} with an app running");
        }
    }

    #[test]
    fn the_window_is_asked_only_when_the_answer_changes() {
        let mut front = Front::new(RecordingWindow::default(), Some(true));
        front.apply(Screen::Home, false);
        front.apply(Screen::Home, true); // an app opened: out of the way
        front.apply(Screen::Home, true);
        front.apply(Screen::EyesOnTeacher, true); // the teacher's "eyes on me": in front
        front.apply(Screen::EyesOnTeacher, true);
        front.apply(Screen::Home, true); // lifted: the app again
        front.apply(Screen::Reported, true); // the report button
        front.apply(Screen::StaffUnlock, true);
        front.apply(Screen::Home, false); // released, and slated closed the app
        assert_eq!(front.window.calls, [false, true, false, true]);
        assert_eq!(front.mapped(), Some(true));
    }

    #[test]
    fn the_window_counts_as_drawn_from_the_poll_after_it_was_mapped() {
        let mut front = Front::new(RecordingWindow::default(), Some(true));
        // (screen, app running, drawn after this poll)
        let polls = [
            (Screen::Home, false, true),
            (Screen::Home, true, false),     // unmapped for the app
            (Screen::Reported, true, false), // mapped in this poll: not drawn yet
            (Screen::Reported, true, true),
            (Screen::StaffUnlock, true, true),
        ];
        for (i, (screen, running, drawn)) in polls.into_iter().enumerate() {
            front.apply(screen, running);
            assert_eq!(front.drawn(), drawn, "poll {i}: {screen:?}");
        }
        let mut failing = Front::new(RecordingWindow { fail: true, ..Default::default() }, None);
        failing.apply(Screen::Reported, true);
        assert!(!failing.drawn(), "never mapped");
    }

    #[test]
    fn a_failed_change_is_tried_again() {
        let mut front = Front::new(RecordingWindow { fail: true, ..Default::default() }, None);
        front.apply(Screen::Home, false);
        front.apply(Screen::Home, false);
        assert_eq!(front.mapped(), None);
        front.window.fail = false;
        front.apply(Screen::Home, false);
        front.apply(Screen::Home, false);
        assert_eq!(front.window.calls, [true, true, true]);
        assert_eq!(front.mapped(), Some(true));
    }
}
