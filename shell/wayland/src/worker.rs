//! The thread that owns the compositor connection: it waits on the socket and on a wake-up
//! eventfd at once, so a press is handled the moment it arrives, and reconnects with
//! [`crate::backoff`] when the compositor goes away.

use crate::session::{Power, Session, SyncToken};
use crate::{backoff, Error, Settings};
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

type Reply<T> = oneshot::Sender<Result<T, Error>>;

enum Command {
    Dark(Reply<SystemTime>),
    Lift(Reply<()>),
    /// Lift once the window with this app id is on screen.
    LiftOver(String, Reply<()>),
    Stop,
}

/// The overlay on every output of one compositor, run on its own thread. Dropping it stops
/// the thread (and the compositor removes the overlay with the connection); a thread stuck on
/// a compositor that never answers is left behind after a second rather than waited for.
pub struct Overlay {
    commands: mpsc::Sender<Command>,
    waker: Arc<OwnedFd>,
    ready: Arc<AtomicBool>,
    power: Arc<Mutex<Vec<Option<Power>>>>,
    thread: Option<JoinHandle<()>>,
    /// Closed when the thread ends.
    ended: mpsc::Receiver<()>,
}

impl Overlay {
    /// Starts the thread; it connects (and keeps reconnecting) by itself. Fails only when the
    /// thread or its wake-up descriptor cannot be made.
    pub fn spawn(settings: Settings) -> Result<Self, Error> {
        let waker = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::Setup(format!("eventfd: {e}")))?,
        );
        let ready = Arc::new(AtomicBool::new(false));
        let power = Arc::new(Mutex::new(Vec::new()));
        let (commands, rx) = mpsc::channel();
        let worker = Worker {
            settings,
            rx,
            waker: waker.clone(),
            ready: ready.clone(),
            power: power.clone(),
            want_dark: false,
            dark_waiters: Vec::new(),
            lift_waiters: Vec::new(),
            lift_over: None,
        };
        let (ended_tx, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("slate-wayland".into())
            .spawn(move || {
                worker.run();
                drop(ended_tx);
            })
            .map_err(|e| Error::Setup(format!("thread: {e}")))?;
        Ok(Self { commands, waker, ready, power, thread: Some(thread), ended })
    }

    /// Maps the black overlay on every output; answers with the time the compositor confirmed
    /// it on all of them (at once if it already had). The caller bounds the wait.
    pub fn dark(&self) -> oneshot::Receiver<Result<SystemTime, Error>> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Dark(tx));
        rx
    }

    /// Powers the outputs on (if they were switched off) and removes the overlay; answers once
    /// the compositor has handled both.
    pub fn lift(&self) -> oneshot::Receiver<Result<(), Error>> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Lift(tx));
        rx
    }

    /// Lifts the overlay for the window with `app_id` (the kiosk's reassurance screen), but only
    /// once the compositor lists that window, that is once its frame is on screen: lifted
    /// earlier, whatever was under the overlay (the reported page) shows until that window draws.
    /// Answers at once when the lift must wait (it is done when the window shows, unless
    /// [`Overlay::dark`] or [`Overlay::lift`] come first), else once the compositor handled it.
    /// A compositor without a window list is lifted at once.
    pub fn lift_over(&self, app_id: &str) -> oneshot::Receiver<Result<(), Error>> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::LiftOver(app_id.to_owned(), tx));
        rx
    }

    /// Connected, with an overlay configured on every output.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Each output's power as the compositor last reported it (`None`: not reported yet, or
    /// `output_power` is off or unsupported). Empty while disconnected.
    pub fn power(&self) -> Vec<Option<Power>> {
        self.power.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (blocking, bounded) until [`Overlay::is_ready`]; for tests and benchmarks.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while !self.is_ready() {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn send(&self, command: Command) {
        // A send error means the thread is gone; the dropped reply says so to the caller.
        let _ = self.commands.send(command);
        let _ = rustix::io::write(self.waker.as_fd(), &1u64.to_ne_bytes());
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        self.send(Command::Stop);
        // A compositor that accepted the connection but never answers keeps the thread in its
        // first round trip: then it is left behind rather than hanging the caller.
        let ended = self.ended.recv_timeout(Duration::from_secs(1));
        if let (Err(mpsc::RecvTimeoutError::Disconnected), Some(thread)) =
            (ended, self.thread.take())
        {
            let _ = thread.join();
        }
    }
}

struct Worker {
    settings: Settings,
    rx: mpsc::Receiver<Command>,
    waker: Arc<OwnedFd>,
    ready: Arc<AtomicBool>,
    power: Arc<Mutex<Vec<Option<Power>>>>,
    /// What was asked last; a new connection is put in that state at once.
    want_dark: bool,
    dark_waiters: Vec<Reply<SystemTime>>,
    lift_waiters: Vec<(SyncToken, Reply<()>)>,
    /// A lift waiting for this window to show (see [`Overlay::lift_over`]).
    lift_over: Option<String>,
}

/// What the loop does next.
enum Next {
    Continue,
    Stop,
}

impl Worker {
    fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            let session = match Session::connect(&self.settings.socket, self.settings.output_power)
            {
                Ok(session) => {
                    tracing::info!(socket = %self.settings.socket.display(), "connected to the compositor; overlay ready");
                    failures = 0;
                    Some(session)
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::error!(error = %e, "no compositor connection; retrying");
                    }
                    failures = failures.saturating_add(1);
                    None
                }
            };
            let next = match session {
                Some(session) => self.connected(session),
                None => self.disconnected(backoff(failures.saturating_sub(1))),
            };
            self.ready.store(false, Ordering::SeqCst);
            self.power.lock().unwrap_or_else(|e| e.into_inner()).clear();
            if let Next::Stop = next {
                return;
            }
        }
    }

    /// Without a connection for `delay`: requests fail at once (and are remembered).
    fn disconnected(&mut self, delay: Duration) -> Next {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Continue;
            }
            let mut fds = [PollFd::new(self.waker.as_ref(), PollFlags::IN)];
            let timeout = rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            let _ = poll(&mut fds, Some(&timeout));
            self.drain_waker();
            while let Ok(command) = self.rx.try_recv() {
                match command {
                    Command::Dark(reply) => {
                        self.want_dark = true;
                        let _ = reply.send(Err(Error::Disconnected));
                    }
                    Command::Lift(reply) | Command::LiftOver(_, reply) => {
                        // Nothing of ours is on any screen while disconnected.
                        self.want_dark = false;
                        self.lift_over = None;
                        let _ = reply.send(Ok(()));
                    }
                    Command::Stop => return Next::Stop,
                }
            }
        }
    }

    fn connected(&mut self, mut session: Session) -> Next {
        let result = self.serve(&mut session);
        let error = match result {
            Ok(next) => return next,
            Err(e) => e,
        };
        tracing::error!(error = %error, "lost the compositor connection; reconnecting");
        for reply in self.dark_waiters.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
        for (_, reply) in self.lift_waiters.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
        Next::Continue
    }

    fn serve(&mut self, session: &mut Session) -> Result<Next, Error> {
        if self.want_dark {
            // The compositor came back while dark: dark again before anything else.
            session.set_dark(true)?;
        }
        loop {
            self.ready.store(session.ready(), Ordering::SeqCst);
            *self.power.lock().unwrap_or_else(|e| e.into_inner()) = session.power();
            self.answer(session)?;
            let (socket, wake) = {
                let fd = session.fd();
                let mut fds = [
                    PollFd::new(&fd, PollFlags::IN),
                    PollFd::new(self.waker.as_ref(), PollFlags::IN),
                ];
                match poll(&mut fds, None) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(Error::Lost(format!("poll: {e}"))),
                }
                (fds[0].revents(), fds[1].revents())
            };
            if socket.intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP) {
                session.read()?;
                if socket.intersects(PollFlags::ERR | PollFlags::HUP)
                    && !socket.contains(PollFlags::IN)
                {
                    return Err(Error::Lost("the compositor closed the connection".into()));
                }
            }
            if wake.contains(PollFlags::IN) {
                self.drain_waker();
                while let Ok(command) = self.rx.try_recv() {
                    match command {
                        Command::Dark(reply) => {
                            if !session.has_outputs() {
                                let _ = reply.send(Err(Error::NoOutput));
                                continue;
                            }
                            self.want_dark = true;
                            self.lift_over = None;
                            match session.confirmed_at() {
                                // Already dark: it is confirmed dark now.
                                Some(_) => {
                                    let _ = reply.send(Ok(SystemTime::now()));
                                }
                                None => {
                                    self.dark_waiters.push(reply);
                                    session.set_dark(true)?;
                                }
                            }
                        }
                        Command::Lift(reply) => {
                            let token = self.lift(session)?;
                            self.lift_waiters.push((token, reply));
                        }
                        Command::LiftOver(app_id, reply) => {
                            if !session.sees_windows() || session.window_shown(&app_id) {
                                if !session.sees_windows() {
                                    tracing::warn!("the compositor lists no windows: lifted without knowing whether the kiosk's screen is drawn");
                                }
                                let token = self.lift(session)?;
                                self.lift_waiters.push((token, reply));
                            } else {
                                tracing::info!(
                                    app_id,
                                    "dark until the kiosk's window is on screen"
                                );
                                self.lift_over = Some(app_id);
                                let _ = reply.send(Ok(()));
                            }
                        }
                        Command::Stop => return Ok(Next::Stop),
                    }
                }
                session.dispatch()?;
            }
        }
    }

    /// Lifts the overlay; a pending [`Overlay::lift_over`] is done with.
    fn lift(&mut self, session: &mut Session) -> Result<SyncToken, Error> {
        self.want_dark = false;
        self.lift_over = None;
        // Anyone still waiting for darkness will not get it.
        for waiter in self.dark_waiters.drain(..) {
            let _ = waiter.send(Err(Error::Setup(
                "the overlay was lifted before the compositor drew it".into(),
            )));
        }
        session.set_dark(false)
    }

    /// Answers the waiters whose answer has come.
    fn answer(&mut self, session: &mut Session) -> Result<(), Error> {
        if self.lift_over.as_deref().is_some_and(|app_id| session.window_shown(app_id)) {
            tracing::info!("the kiosk's window is on screen: lifting the overlay");
            self.lift(session)?;
        }
        if let Some(at) = session.confirmed_at() {
            for reply in self.dark_waiters.drain(..) {
                let _ = reply.send(Ok(at));
            }
        }
        let done = session.take_syncs();
        if !done.is_empty() {
            let (answered, waiting): (Vec<_>, Vec<_>) =
                self.lift_waiters.drain(..).partition(|(t, _)| done.contains(t));
            self.lift_waiters = waiting;
            for (_, reply) in answered {
                let _ = reply.send(Ok(()));
            }
        }
        Ok(())
    }

    fn drain_waker(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(self.waker.as_fd(), &mut buf);
    }
}
