//! One connection to the compositor: the globals, one overlay ("shade") per output, and the
//! bookkeeping of what the compositor has confirmed. No threads and no waiting here: the worker
//! polls the socket and calls [`Session::read`] / [`Session::dispatch`].

use crate::Error;
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::SystemTime;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{
    wl_buffer::WlBuffer, wl_callback::WlCallback, wl_compositor::WlCompositor, wl_output::WlOutput,
    wl_registry::WlRegistry, wl_shm, wl_shm::WlShm, wl_shm_pool::WlShmPool, wl_surface::WlSurface,
};
use wayland_client::{delegate_noop, Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
use wayland_protocols::wp::presentation_time::client::{
    wp_presentation::WpPresentation, wp_presentation_feedback,
    wp_presentation_feedback::WpPresentationFeedback,
};
use wayland_protocols_wlr::foreign_toplevel::v1::client::{
    zwlr_foreign_toplevel_handle_v1::{self, ZwlrForeignToplevelHandleV1},
    zwlr_foreign_toplevel_manager_v1::{self, ZwlrForeignToplevelManagerV1},
};
use wayland_protocols_wlr::layer_shell::v1::client::{
    zwlr_layer_shell_v1::{Layer, ZwlrLayerShellV1},
    zwlr_layer_surface_v1::{self, Anchor, KeyboardInteractivity, ZwlrLayerSurfaceV1},
};
use wayland_protocols_wlr::output_power_management::v1::client::{
    zwlr_output_power_manager_v1::ZwlrOutputPowerManagerV1,
    zwlr_output_power_v1::{self, ZwlrOutputPowerV1},
};

/// The layer-shell namespace, for the compositor's logs and rules.
const NAMESPACE: &str = "slate-dark";
/// Larger than any screen; a configure beyond it is refused rather than allocated.
const MAX_SIDE: u32 = 16_384;

/// Which shade an event is about: the output's registry name and the shade's generation (a
/// shade is replaced on restore, and events for the old one must not confirm the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShadeId {
    output: u32,
    generation: u64,
}

/// A `wl_display.sync` whose answer tells that every earlier request was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncToken(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Configured or waiting for its first configure; nothing on screen.
    Hidden,
    /// Black committed; the compositor has not said it drew it.
    Committed,
    /// The compositor drew it.
    Confirmed,
}

struct Shade {
    generation: u64,
    surface: WlSurface,
    layer: ZwlrLayerSurfaceV1,
    /// From the last configure (acknowledged); `None` until the first one.
    size: Option<(u32, u32)>,
    shown: Shown,
}

impl Shade {
    fn destroy(self) {
        self.layer.destroy();
        self.surface.destroy();
    }
}

struct Output {
    /// The `wl_output` global's name in the registry.
    name: u32,
    output: WlOutput,
    shade: Option<Shade>,
    power: Option<ZwlrOutputPowerV1>,
    /// What the compositor last said about this output's power.
    power_mode: Option<Power>,
}

/// An output's power as the compositor reports it (wlr-output-power-management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    /// The compositor cannot switch this output (or it went away).
    Failed,
}

/// A window the compositor lists (wlr-foreign-toplevel-management). wlroots compositors list a
/// window once it is mapped, that is once it has put its first frame on screen.
struct Window {
    handle: ZwlrForeignToplevelHandleV1,
    /// Sent before the `done` that makes it count.
    pending_app_id: Option<String>,
    app_id: Option<String>,
}

pub struct State {
    qh: QueueHandle<State>,
    compositor: WlCompositor,
    shm: WlShm,
    layer_shell: ZwlrLayerShellV1,
    presentation: Option<WpPresentation>,
    power_manager: Option<ZwlrOutputPowerManagerV1>,
    outputs: Vec<Output>,
    /// Black buffers by size; never written after creation, so shared between shades.
    buffers: Vec<((u32, u32), WlBuffer)>,
    generation: u64,
    want_dark: bool,
    /// When every output's black frame was confirmed (while `want_dark`).
    confirmed_at: Option<SystemTime>,
    /// Outputs are powered off once dark is confirmed (and on again when lifted).
    want_power: bool,
    power_off_sent: bool,
    done_syncs: Vec<SyncToken>,
    next_sync: u64,
    /// The compositor's window list, when it offers one.
    toplevels: Option<ZwlrForeignToplevelManagerV1>,
    windows: Vec<Window>,
    /// Something went wrong that ends this connection.
    failure: Option<String>,
}

pub struct Session {
    conn: Connection,
    queue: EventQueue<State>,
    state: State,
}

impl Session {
    /// Connects, binds the globals and puts a configured (unmapped) shade on every output.
    pub fn connect(socket: &Path, want_power: bool) -> Result<Self, Error> {
        let connect =
            |reason: String| Error::Connect { socket: socket.display().to_string(), reason };
        let stream = UnixStream::connect(socket).map_err(|e| connect(e.to_string()))?;
        let conn = Connection::from_socket(stream).map_err(|e| connect(e.to_string()))?;
        let (globals, mut queue) =
            registry_queue_init::<State>(&conn).map_err(|e| connect(e.to_string()))?;
        let qh = queue.handle();
        let compositor = globals
            .bind::<WlCompositor, _, _>(&qh, 1..=4, ())
            .map_err(|_| Error::Missing("wl_compositor"))?;
        let shm =
            globals.bind::<WlShm, _, _>(&qh, 1..=1, ()).map_err(|_| Error::Missing("wl_shm"))?;
        let layer_shell = globals
            .bind::<ZwlrLayerShellV1, _, _>(&qh, 1..=4, ())
            .map_err(|_| Error::Missing("zwlr_layer_shell_v1"))?;
        let presentation = globals.bind::<WpPresentation, _, _>(&qh, 1..=1, ()).ok();
        let toplevels = globals.bind::<ZwlrForeignToplevelManagerV1, _, _>(&qh, 1..=3, ()).ok();
        let power_manager = if want_power {
            let manager = globals.bind::<ZwlrOutputPowerManagerV1, _, _>(&qh, 1..=1, ()).ok();
            if manager.is_none() {
                tracing::error!("the compositor has no zwlr_output_power_manager_v1: outputs stay powered (the overlay still darkens them)");
            }
            manager
        } else {
            None
        };
        let mut state = State {
            qh: qh.clone(),
            compositor,
            shm,
            layer_shell,
            presentation,
            power_manager,
            outputs: Vec::new(),
            buffers: Vec::new(),
            generation: 0,
            want_dark: false,
            confirmed_at: None,
            want_power,
            power_off_sent: false,
            done_syncs: Vec::new(),
            next_sync: 0,
            toplevels,
            windows: Vec::new(),
            failure: None,
        };
        let outputs: Vec<(u32, u32)> = globals.contents().with_list(|list| {
            list.iter()
                .filter(|g| g.interface == WlOutput::interface().name)
                .map(|g| (g.name, g.version))
                .collect()
        });
        for (name, version) in outputs {
            let output = globals.registry().bind::<WlOutput, _, _>(name, version.min(4), &qh, name);
            state.add_output(name, output);
        }
        // Wait for the first configures, so the overlay is ready before the first press.
        queue.roundtrip(&mut state).map_err(|e| Error::Lost(e.to_string()))?;
        let mut session = Session { conn, queue, state };
        session.check()?;
        Ok(session)
    }

    /// The socket to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Every output has a configured shade.
    pub fn ready(&self) -> bool {
        !self.state.outputs.is_empty()
            && self.state.outputs.iter().all(|o| o.shade.as_ref().is_some_and(|s| s.size.is_some()))
    }

    /// When the darkness asked for was confirmed on every output (`None`: not dark, or not yet).
    pub fn confirmed_at(&self) -> Option<SystemTime> {
        self.state.confirmed_at
    }

    /// Whether the compositor lists its windows (wlr-foreign-toplevel-management).
    pub fn sees_windows(&self) -> bool {
        self.state.toplevels.is_some()
    }

    /// Whether a window with this app id is on screen (listed: mapped, with a frame drawn). Not
    /// whether it is full screen: labwc does not say so in its list (the kiosk's window is made
    /// full screen before its first frame, see slate-ui's `front.rs`).
    pub fn window_shown(&self, app_id: &str) -> bool {
        self.state.windows.iter().any(|w| w.app_id.as_deref() == Some(app_id))
    }

    pub fn has_outputs(&self) -> bool {
        !self.state.outputs.is_empty()
    }

    /// Maps black on every output, or lifts the overlay (power on first, then unmap). Returns a
    /// token whose answer ([`Session::take_syncs`]) says the compositor handled it.
    pub fn set_dark(&mut self, dark: bool) -> Result<SyncToken, Error> {
        self.state.set_dark(dark);
        let token = self.state.sync(&self.conn);
        self.flush()?;
        Ok(token)
    }

    /// Reads what the socket has (call only when poll said readable) and handles it.
    pub fn read(&mut self) -> Result<(), Error> {
        if let Some(guard) = self.queue.prepare_read() {
            match guard.read() {
                Ok(_) => {}
                // Spurious wake-up: nothing to read after all.
                Err(wayland_client::backend::WaylandError::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::Lost(e.to_string())),
            }
        }
        self.dispatch()
    }

    /// Handles events already read, then sends what that produced.
    pub fn dispatch(&mut self) -> Result<(), Error> {
        self.queue.dispatch_pending(&mut self.state).map_err(|e| Error::Lost(e.to_string()))?;
        self.check()?;
        self.flush()
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        match self.conn.flush() {
            Ok(()) => Ok(()),
            // The socket is full; the rest goes with the next flush.
            Err(wayland_client::backend::WaylandError::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(())
            }
            Err(e) => Err(Error::Lost(e.to_string())),
        }
    }

    /// Each output's power as last reported (`None`: not reported, or not managed).
    pub fn power(&self) -> Vec<Option<Power>> {
        self.state.outputs.iter().map(|o| o.power_mode).collect()
    }

    /// The syncs answered since the last call.
    pub fn take_syncs(&mut self) -> Vec<SyncToken> {
        std::mem::take(&mut self.state.done_syncs)
    }

    fn check(&mut self) -> Result<(), Error> {
        match self.state.failure.take() {
            Some(reason) => Err(Error::Lost(reason)),
            None => Ok(()),
        }
    }
}

impl State {
    fn add_output(&mut self, name: u32, output: WlOutput) {
        let power =
            self.power_manager.as_ref().map(|m| m.get_output_power(&output, &self.qh, name));
        let mut entry = Output { name, output, shade: None, power, power_mode: None };
        entry.shade = Some(self.new_shade(name, &entry.output));
        self.outputs.push(entry);
        // A screen plugged in while dark is dark too; and not confirmed until it is.
        if self.want_dark {
            self.confirmed_at = None;
        }
    }

    fn remove_output(&mut self, name: u32) {
        if let Some(i) = self.outputs.iter().position(|o| o.name == name) {
            let output = self.outputs.remove(i);
            if let Some(shade) = output.shade {
                shade.destroy();
            }
            if let Some(power) = output.power {
                power.destroy();
            }
            if output.output.version() >= 3 {
                output.output.release();
            }
        }
    }

    /// A fresh, unmapped shade for `output`: created and committed without a buffer, so the
    /// compositor answers with a configure (the size to draw).
    fn new_shade(&mut self, name: u32, output: &WlOutput) -> Shade {
        self.generation += 1;
        let id = ShadeId { output: name, generation: self.generation };
        let surface = self.compositor.create_surface(&self.qh, ());
        let layer = self.layer_shell.get_layer_surface(
            &surface,
            Some(output),
            Layer::Overlay,
            NAMESPACE.into(),
            &self.qh,
            id,
        );
        layer.set_anchor(Anchor::Top | Anchor::Bottom | Anchor::Left | Anchor::Right);
        layer.set_size(0, 0);
        // -1: cover panels' exclusive zones too, not just the space they leave.
        layer.set_exclusive_zone(-1);
        // Keys stay with the windows until the overlay is shown; then they come here.
        layer.set_keyboard_interactivity(KeyboardInteractivity::None);
        surface.commit();
        Shade { generation: self.generation, surface, layer, size: None, shown: Shown::Hidden }
    }

    fn sync(&mut self, conn: &Connection) -> SyncToken {
        self.next_sync += 1;
        let token = SyncToken(self.next_sync);
        conn.display().sync(&self.qh, token);
        token
    }

    fn set_dark(&mut self, dark: bool) {
        if dark {
            if !self.want_dark {
                self.want_dark = true;
                self.confirmed_at = None;
                self.power_off_sent = false;
            }
            for i in 0..self.outputs.len() {
                self.show(i);
            }
        } else {
            self.want_dark = false;
            self.confirmed_at = None;
            self.power_off_sent = false;
            // Power first: the output lights up still showing black, then the overlay goes.
            for output in &self.outputs {
                if let Some(power) = &output.power {
                    power.set_mode(zwlr_output_power_v1::Mode::On);
                }
            }
            for i in 0..self.outputs.len() {
                let shown = self.outputs[i].shade.as_ref().map(|s| s.shown);
                if shown.is_some_and(|s| s != Shown::Hidden) {
                    // Unmapping would have to wait for a new configure before the next press;
                    // a new shade is configured at once and is simpler to reason about.
                    let old = self.outputs[i].shade.take().expect("checked above");
                    old.destroy();
                    let (name, output) = (self.outputs[i].name, self.outputs[i].output.clone());
                    let shade = self.new_shade(name, &output);
                    self.outputs[i].shade = Some(shade);
                }
            }
        }
    }

    /// Commits black on output `i` if it is configured and not shown yet.
    fn show(&mut self, i: usize) {
        let Some(shade) = self.outputs[i].shade.as_ref() else { return };
        let (Some(size), Shown::Hidden) = (shade.size, shade.shown) else { return };
        let Some(buffer) = self.buffer(size) else { return };
        let name = self.outputs[i].name;
        let shade = self.outputs[i].shade.as_mut().expect("checked above");
        let id = ShadeId { output: name, generation: shade.generation };
        shade.layer.set_keyboard_interactivity(KeyboardInteractivity::Exclusive);
        shade.surface.attach(Some(&buffer), 0, 0);
        shade.surface.damage(0, 0, i32::MAX, i32::MAX);
        shade.surface.frame(&self.qh, id);
        if let Some(presentation) = &self.presentation {
            presentation.feedback(&shade.surface, &self.qh, id);
        }
        shade.surface.commit();
        shade.shown = Shown::Committed;
    }

    /// A black XRGB buffer of `size`, made once per size (a zero-filled memfd is black).
    fn buffer(&mut self, size: (u32, u32)) -> Option<WlBuffer> {
        if let Some((_, b)) = self.buffers.iter().find(|(s, _)| *s == size) {
            return Some(b.clone());
        }
        let (w, h) = size;
        let stride = w * 4;
        let bytes = stride as u64 * h as u64;
        let made = memfd_create("slate-dark", MemfdFlags::CLOEXEC)
            .and_then(|fd| ftruncate(&fd, bytes).map(|()| fd));
        let fd = match made {
            Ok(fd) => fd,
            Err(e) => {
                self.failure = Some(format!("no memory for a {w}x{h} black buffer: {e}"));
                return None;
            }
        };
        let pool = self.shm.create_pool(fd.as_fd(), bytes as i32, &self.qh, ());
        let buffer = pool.create_buffer(
            0,
            w as i32,
            h as i32,
            stride as i32,
            wl_shm::Format::Xrgb8888,
            &self.qh,
            (),
        );
        pool.destroy();
        self.buffers.push((size, buffer.clone()));
        Some(buffer)
    }

    fn shade_mut(&mut self, id: ShadeId) -> Option<&mut Shade> {
        self.outputs
            .iter_mut()
            .find(|o| o.name == id.output)?
            .shade
            .as_mut()
            .filter(|s| s.generation == id.generation)
    }

    /// The compositor drew the black frame of `id`.
    fn drawn(&mut self, id: ShadeId) {
        if let Some(shade) = self.shade_mut(id) {
            if shade.shown == Shown::Committed {
                shade.shown = Shown::Confirmed;
            }
        }
        self.check_confirmed();
    }

    fn check_confirmed(&mut self) {
        let all = !self.outputs.is_empty()
            && self
                .outputs
                .iter()
                .all(|o| o.shade.as_ref().is_some_and(|s| s.shown == Shown::Confirmed));
        if self.want_dark && all && self.confirmed_at.is_none() {
            self.confirmed_at = Some(SystemTime::now());
            if self.want_power && !self.power_off_sent {
                self.power_off_sent = true;
                for output in &self.outputs {
                    if let Some(power) = &output.power {
                        power.set_mode(zwlr_output_power_v1::Mode::Off);
                    }
                }
            }
        }
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        state: &mut Self,
        registry: &WlRegistry,
        event: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        use wayland_client::protocol::wl_registry::Event;
        match event {
            Event::Global { name, interface, version }
                if interface == WlOutput::interface().name =>
            {
                let output = registry.bind::<WlOutput, _, _>(name, version.min(4), qh, name);
                state.add_output(name, output);
            }
            Event::GlobalRemove { name } => state.remove_output(name),
            _ => {}
        }
    }
}

impl Dispatch<ZwlrLayerSurfaceV1, ShadeId> for State {
    fn event(
        state: &mut Self,
        layer: &ZwlrLayerSurfaceV1,
        event: zwlr_layer_surface_v1::Event,
        id: &ShadeId,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_layer_surface_v1::Event::Configure { serial, width, height } => {
                layer.ack_configure(serial);
                if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
                    state.failure =
                        Some(format!("the compositor sized the overlay {width}x{height}"));
                    return;
                }
                let Some(i) = state.outputs.iter().position(|o| o.name == id.output) else {
                    return;
                };
                let Some(shade) =
                    state.outputs[i].shade.as_mut().filter(|s| s.generation == id.generation)
                else {
                    return;
                };
                let resized = shade.size.is_some_and(|s| s != (width, height));
                shade.size = Some((width, height));
                if resized && shade.shown != Shown::Hidden {
                    // Still dark at the new size: draw it again at that size.
                    shade.shown = Shown::Hidden;
                }
                if state.want_dark {
                    state.show(i);
                }
                // Not shown: the acknowledgement applies with the commit that maps it.
            }
            zwlr_layer_surface_v1::Event::Closed => {
                // The compositor took the overlay away (its output is going): make a new one.
                let Some(i) = state.outputs.iter().position(|o| o.name == id.output) else {
                    return;
                };
                let current =
                    state.outputs[i].shade.as_ref().is_some_and(|s| s.generation == id.generation);
                if current {
                    if let Some(old) = state.outputs[i].shade.take() {
                        old.destroy();
                    }
                    let (name, output) = (state.outputs[i].name, state.outputs[i].output.clone());
                    let shade = state.new_shade(name, &output);
                    state.outputs[i].shade = Some(shade);
                    if state.want_dark {
                        state.confirmed_at = None;
                    }
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<WlCallback, ShadeId> for State {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        _: wayland_client::protocol::wl_callback::Event,
        id: &ShadeId,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        state.drawn(*id);
    }
}

impl Dispatch<WlCallback, SyncToken> for State {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        _: wayland_client::protocol::wl_callback::Event,
        token: &SyncToken,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        state.done_syncs.push(*token);
    }
}

impl Dispatch<WpPresentationFeedback, ShadeId> for State {
    fn event(
        state: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        id: &ShadeId,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation_feedback::Event::Presented { .. } = event {
            state.drawn(*id);
        }
        // `discarded`: this frame was not shown as such; the frame callback still decides.
    }
}

impl Dispatch<ZwlrOutputPowerV1, u32> for State {
    fn event(
        state: &mut Self,
        power: &ZwlrOutputPowerV1,
        event: zwlr_output_power_v1::Event,
        name: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let mode = match event {
            zwlr_output_power_v1::Event::Mode {
                mode: WEnum::Value(zwlr_output_power_v1::Mode::On),
            } => Power::On,
            zwlr_output_power_v1::Event::Mode {
                mode: WEnum::Value(zwlr_output_power_v1::Mode::Off),
            } => Power::Off,
            zwlr_output_power_v1::Event::Failed => {
                tracing::error!(output = name, "the compositor cannot switch this output's power");
                Power::Failed
            }
            _ => return,
        };
        tracing::info!(output = name, ?mode, "output power");
        if let Some(output) = state.outputs.iter_mut().find(|o| o.name == *name) {
            output.power_mode = Some(mode);
            if mode == Power::Failed {
                // The object is dead after `failed`; the overlay alone keeps the screen dark.
                power.destroy();
                output.power = None;
            }
        }
    }
}

impl Dispatch<WlOutput, u32> for State {
    fn event(
        _: &mut Self,
        _: &WlOutput,
        _: wayland_client::protocol::wl_output::Event,
        _: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

delegate_noop!(State: ignore WlCompositor);
delegate_noop!(State: ignore WlShm);
delegate_noop!(State: ignore WlShmPool);
delegate_noop!(State: ignore WlBuffer);
delegate_noop!(State: ignore WlSurface);
delegate_noop!(State: ignore ZwlrLayerShellV1);
delegate_noop!(State: ignore WpPresentation);
delegate_noop!(State: ignore ZwlrOutputPowerManagerV1);

impl Dispatch<ZwlrForeignToplevelManagerV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwlrForeignToplevelManagerV1,
        event: zwlr_foreign_toplevel_manager_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwlr_foreign_toplevel_manager_v1::Event;
        match event {
            Event::Toplevel { toplevel } => {
                state.windows.push(Window { handle: toplevel, pending_app_id: None, app_id: None })
            }
            Event::Finished => {
                state.toplevels = None;
                state.windows.clear();
            }
            _ => {}
        }
    }

    wayland_client::event_created_child!(State, ZwlrForeignToplevelManagerV1, [
        zwlr_foreign_toplevel_manager_v1::EVT_TOPLEVEL_OPCODE => (ZwlrForeignToplevelHandleV1, ()),
    ]);
}

impl Dispatch<ZwlrForeignToplevelHandleV1, ()> for State {
    fn event(
        state: &mut Self,
        handle: &ZwlrForeignToplevelHandleV1,
        event: zwlr_foreign_toplevel_handle_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwlr_foreign_toplevel_handle_v1::Event;
        let Some(i) = state.windows.iter().position(|w| &w.handle == handle) else { return };
        match event {
            Event::AppId { app_id } => state.windows[i].pending_app_id = Some(app_id),
            Event::Done => {
                let window = &mut state.windows[i];
                if let Some(app_id) = window.pending_app_id.take() {
                    window.app_id = Some(app_id);
                }
            }
            Event::Closed => {
                state.windows.swap_remove(i).handle.destroy();
            }
            _ => {}
        }
    }
}
