//! `slate-keyboard-layer`: runs the on-screen keyboard (wvkbd) with its surface on the
//! layer-shell overlay layer, above the kiosk's full-screen app (`slate_wayland::keyboard_layer`
//! says why and how).
//!
//! ```text
//! slate-keyboard-layer wvkbd-mobintl --hidden -H 190 -L 190
//! ```
//!
//! It connects to the compositor as any client does (`WAYLAND_DISPLAY` under `XDG_RUNTIME_DIR`),
//! hands the keyboard the other end of a socket pair as `WAYLAND_SOCKET` (libwayland's way of
//! giving a client a connection ready made), and passes every message between the two, file
//! descriptors included, changing only the layer the keyboard asks for. It ends with the
//! keyboard, with its exit status; signals meant for the keyboard (slate-ui's show and hide) go
//! to the keyboard's own process, found by its own name.
//!
//! Exit status: the keyboard's; 78 when there is no compositor to connect to or the keyboard
//! cannot be started; 2 for a wrong command line.

use clap::Parser;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use slate_wayland::keyboard_layer::{complete_len, messages, Change, Rewriter};
use slate_wayland::Settings;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

/// `EX_CONFIG`: no compositor, or no keyboard program.
const EXIT_CONFIG: u8 = 78;
/// File descriptors taken from one read; libwayland sends at most 28 with one write.
const MAX_FDS: usize = 64;

#[derive(Parser)]
#[command(
    name = "slate-keyboard-layer",
    version,
    about = "Runs the on-screen keyboard above the full-screen app (layer-shell overlay layer)"
)]
struct Args {
    /// The keyboard program, e.g. wvkbd-mobintl.
    program: PathBuf,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    slate_ipc::logging::init("info", &[]);
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let display = std::env::var("WAYLAND_DISPLAY").unwrap_or_else(|_| "wayland-0".into());
    let Some(runtime) = runtime else {
        eprintln!("slate-keyboard-layer: XDG_RUNTIME_DIR is not set");
        return ExitCode::from(EXIT_CONFIG);
    };
    let socket = Settings::socket_path(&runtime, &display);
    let compositor = match UnixStream::connect(&socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "slate-keyboard-layer: cannot connect to the compositor at {}: {e}",
                socket.display()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (ours, keyboards) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("slate-keyboard-layer: no socket pair: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The keyboard's end is inherited across exec; ours and the compositor's are not.
    if let Err(e) = rustix::io::fcntl_setfd(&keyboards, rustix::io::FdFlags::empty()) {
        eprintln!("slate-keyboard-layer: cannot pass the socket on: {e}");
        return ExitCode::FAILURE;
    }
    let mut child = match Command::new(&args.program)
        .args(&args.args)
        .env("WAYLAND_SOCKET", keyboards.as_raw_fd().to_string())
        .env_remove("WAYLAND_DISPLAY")
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("slate-keyboard-layer: cannot start {}: {e}", args.program.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    drop(keyboards);
    let rewriter = Arc::new(Mutex::new(Rewriter::default()));
    let (ours_in, compositor_in) = match (ours.try_clone(), compositor.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            eprintln!("slate-keyboard-layer: cannot share the sockets between threads");
            let _ = child.kill();
            return ExitCode::FAILURE;
        }
    };
    let requests = {
        let rewriter = rewriter.clone();
        std::thread::spawn(move || {
            let end = pass(&ours_in, &compositor, |msg| {
                if rewriter.lock().unwrap().request(msg) == Change::MovedToOverlay {
                    tracing::info!("the keyboard's surface asked for on the overlay layer");
                }
            });
            end_both(&ours_in, &compositor, "keyboard", end);
        })
    };
    let events = std::thread::spawn(move || {
        let end = pass(&compositor_in, &ours, |msg| rewriter.lock().unwrap().event(msg));
        end_both(&compositor_in, &ours, "compositor", end);
    });
    let status = child.wait();
    let _ = requests.join();
    let _ = events.join();
    match status {
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("slate-keyboard-layer: waiting for the keyboard: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Closes both connections once one direction ended, so the other ends too; says why unless
/// it was the peer closing.
fn end_both(from: &UnixStream, to: &UnixStream, name: &str, end: std::io::Result<()>) {
    if let Err(e) = end {
        tracing::warn!(error = %e, "the connection from the {name} ended");
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Passes whole messages from `from` to `to`, each seen (and maybe changed) by `each` first,
/// with the file descriptors that came with them, until `from` closes.
fn pass(
    from: &UnixStream,
    to: &UnixStream,
    mut each: impl FnMut(&mut [u8]),
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let read = recvmsg(
            from,
            &mut [IoSliceMut::new(&mut chunk)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        if read.flags.contains(ReturnFlags::CTRUNC) {
            return Err(std::io::Error::other(
                "more file descriptors in one message than passed on",
            ));
        }
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if read.bytes == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..read.bytes]);
        let whole = complete_len(&buf).map_err(std::io::Error::other)?;
        if whole == 0 {
            continue;
        }
        for range in messages(&buf[..whole]).collect::<Vec<_>>() {
            each(&mut buf[range]);
        }
        send(to, &buf[..whole], &mut fds)?;
        buf.drain(..whole);
    }
}

/// Writes `bytes` to `to`, the descriptors with the first write (they then reach the peer no
/// later than the message that uses them).
fn send(to: &UnixStream, mut bytes: &[u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let mut space =
            vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
            return Err(std::io::Error::other("no room for the file descriptors"));
        }
        let written = sendmsg(to, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)?;
        fds.clear();
        bytes = &bytes[written..];
    }
    Ok(())
}
