//! Where typing goes in a native app, told by the compositor: a Wayland client that registers as
//! the seat's input method (`zwp_input_method_v2`). An app with a text field that speaks
//! text-input-v3 (GTK 4, Qt 6, Slint, ...) enables text input when the field takes the focus and
//! disables it when the focus leaves; the compositor passes that on to the input method as
//! `activate` and `deactivate`, applied on `done`. That is all this watcher listens to: it sends
//! no text, grabs no keyboard and reads nothing of what is typed (the on-screen keyboard types
//! through the virtual keyboard protocol, as any keyboard).
//!
//! Pure: [`InputMethodFocus`] (events in, "a field has the focus" out). [`TextFieldWatch`] runs
//! the connection on a thread of its own and reports each change to a callback. The seat has one
//! input method at most: a second is refused by the compositor (`unavailable`), and then the
//! watch fails to start rather than report nothing.

use crate::Error;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{wl_registry::WlRegistry, wl_seat::WlSeat};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle};
use wayland_protocols_misc::zwp_input_method_v2::client::{
    zwp_input_method_manager_v2::ZwpInputMethodManagerV2,
    zwp_input_method_v2::{self, ZwpInputMethodV2},
};

/// What the compositor says to the input method, as far as the focus goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMethodEvent {
    /// A focused text input asks for the input method (applied on `Done`).
    Activate,
    /// No focused text input needs it (applied on `Done`).
    Deactivate,
    /// Applies what came since the last one.
    Done,
    /// Another input method holds the seat, or the seat is gone: nothing more will come.
    Unavailable,
}

/// Follows the input method's double-buffered state.
#[derive(Debug, Default)]
pub struct InputMethodFocus {
    pending: Option<bool>,
    active: bool,
    unavailable: bool,
}

impl InputMethodFocus {
    /// Whether a text field has the focus now (as last applied).
    pub fn field_focused(&self) -> bool {
        self.active
    }

    /// Whether the compositor refused this input method or withdrew it.
    pub fn unavailable(&self) -> bool {
        self.unavailable
    }

    /// Takes one event; returns the new answer when it changed. An input method withdrawn
    /// counts as no field focused (nothing will say when the focus leaves). Pure.
    pub fn on_event(&mut self, event: InputMethodEvent) -> Option<bool> {
        let before = self.active;
        match event {
            _ if self.unavailable => {}
            InputMethodEvent::Activate => self.pending = Some(true),
            InputMethodEvent::Deactivate => self.pending = Some(false),
            InputMethodEvent::Done => {
                if let Some(active) = self.pending.take() {
                    self.active = active;
                }
            }
            InputMethodEvent::Unavailable => {
                self.unavailable = true;
                self.pending = None;
                self.active = false;
            }
        }
        (self.active != before).then_some(self.active)
    }
}

type OnChange = Box<dyn FnMut(bool) + Send>;

struct State {
    focus: InputMethodFocus,
    on_change: OnChange,
}

/// The input method of one compositor's seat, on a thread of its own that calls `on_change`
/// with each change. Dropping it ends the thread and the registration. When the compositor goes
/// away the thread ends (after reporting no field focused); [`TextFieldWatch::is_running`]
/// says so and the owner starts a new watch.
pub struct TextFieldWatch {
    waker: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TextFieldWatch {
    /// Connects to the compositor at `socket` and registers as its seat's input method. Fails
    /// when the compositor has no input method protocol or no seat, or another input method
    /// holds the seat.
    pub fn start(
        socket: &Path,
        on_change: impl FnMut(bool) + Send + 'static,
    ) -> Result<Self, Error> {
        let connect =
            |reason: String| Error::Connect { socket: socket.display().to_string(), reason };
        let stream = UnixStream::connect(socket).map_err(|e| connect(e.to_string()))?;
        let conn = Connection::from_socket(stream).map_err(|e| connect(e.to_string()))?;
        let (globals, mut queue) =
            registry_queue_init::<State>(&conn).map_err(|e| connect(e.to_string()))?;
        let qh = queue.handle();
        let seat =
            globals.bind::<WlSeat, _, _>(&qh, 1..=1, ()).map_err(|_| Error::Missing("wl_seat"))?;
        let manager = globals
            .bind::<ZwpInputMethodManagerV2, _, _>(&qh, 1..=1, ())
            .map_err(|_| Error::Missing("zwp_input_method_manager_v2"))?;
        let input_method = manager.get_input_method(&seat, &qh, ());
        let mut state =
            State { focus: InputMethodFocus::default(), on_change: Box::new(on_change) };
        // A refusal (`unavailable`) is the only event of a refused input method: it is here
        // after one round trip, or never.
        queue.roundtrip(&mut state).map_err(|e| Error::Lost(e.to_string()))?;
        if state.focus.unavailable() {
            return Err(Error::Setup(
                "another input method holds the compositor's seat (zwp_input_method_v2 unavailable)"
                    .into(),
            ));
        }
        let waker = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::Setup(format!("eventfd: {e}")))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_waker, thread_stop) = (waker.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("text-field-watch".into())
            .spawn(move || {
                if let Err(e) = serve(&conn, &mut queue, &mut state, &thread_waker, &thread_stop) {
                    tracing::warn!(error = %e, "the input method's compositor connection ended");
                }
                if state.focus.field_focused() {
                    (state.on_change)(false);
                }
                input_method.destroy();
                manager.destroy();
                let _ = conn.flush();
            })
            .map_err(|e| Error::Setup(format!("thread: {e}")))?;
        Ok(Self { waker, stop, thread: Some(thread) })
    }

    /// Whether the thread still follows the compositor.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for TextFieldWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = rustix::io::write(self.waker.as_fd(), &1u64.to_ne_bytes());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads and handles the compositor's events until told to stop or the connection ends.
fn serve(
    conn: &Connection,
    queue: &mut EventQueue<State>,
    state: &mut State,
    waker: &OwnedFd,
    stop: &AtomicBool,
) -> Result<(), Error> {
    loop {
        queue.dispatch_pending(state).map_err(|e| Error::Lost(e.to_string()))?;
        conn.flush().map_err(|e| Error::Lost(e.to_string()))?;
        if stop.load(Ordering::SeqCst) || state.focus.unavailable() {
            return Ok(());
        }
        let Some(guard) = queue.prepare_read() else { continue };
        let socket = {
            let fd = guard.connection_fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN), PollFd::new(waker, PollFlags::IN)];
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::Lost(format!("poll: {e}"))),
            }
            fds[0].revents()
        };
        if socket.intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP) {
            match guard.read() {
                Ok(_) => {}
                Err(wayland_client::backend::WaylandError::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::Lost(e.to_string())),
            }
        } else {
            drop(guard);
        }
    }
}

impl Dispatch<ZwpInputMethodV2, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwpInputMethodV2,
        event: zwp_input_method_v2::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let event = match event {
            zwp_input_method_v2::Event::Activate => InputMethodEvent::Activate,
            zwp_input_method_v2::Event::Deactivate => InputMethodEvent::Deactivate,
            zwp_input_method_v2::Event::Done => InputMethodEvent::Done,
            zwp_input_method_v2::Event::Unavailable => InputMethodEvent::Unavailable,
            // Surrounding text, change cause, content type: what is typed is none of ours.
            _ => return,
        };
        if let Some(focused) = state.focus.on_event(event) {
            (state.on_change)(focused);
        }
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

wayland_client::delegate_noop!(State: ignore WlSeat);
wayland_client::delegate_noop!(State: ZwpInputMethodManagerV2);

#[cfg(test)]
mod tests {
    use super::InputMethodEvent::*;
    use super::*;

    #[test]
    fn the_focus_follows_what_is_applied() {
        #[rustfmt::skip]
        let table: Vec<(Vec<InputMethodEvent>, Vec<Option<bool>>, bool)> = vec![
            (vec![Activate], vec![None], false),                          // not applied yet
            (vec![Activate, Done], vec![None, Some(true)], true),
            (vec![Activate, Done, Done], vec![None, Some(true), None], true),
            (vec![Activate, Done, Deactivate, Done],
             vec![None, Some(true), None, Some(false)], false),
            // Focus moving from a field to another: no change in between.
            (vec![Activate, Done, Deactivate, Activate, Done],
             vec![None, Some(true), None, None, None], true),
            (vec![Deactivate, Done], vec![None, None], false),
            // Refused (another input method) or withdrawn: no field, and nothing after counts.
            (vec![Unavailable, Activate, Done], vec![None, None, None], false),
            (vec![Activate, Done, Unavailable, Activate, Done],
             vec![None, Some(true), Some(false), None, None], false),
        ];
        for (events, expected, focused) in table {
            let mut focus = InputMethodFocus::default();
            let answers: Vec<_> = events.iter().map(|e| focus.on_event(*e)).collect();
            assert_eq!(answers, expected, "{events:?}");
            assert_eq!(focus.field_focused(), focused, "{events:?}");
        }
    }
}
