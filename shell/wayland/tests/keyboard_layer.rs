//! `slate-keyboard-layer` between a client and a stand-in compositor (a Unix socket this test
//! listens on): the client's requests arrive in order with the layer moved to overlay, a file
//! descriptor sent with a request arrives with it and is the same file, the compositor's events
//! reach the client, a stream that is not Wayland closes the connection, and a missing compositor
//! or program is a configuration error (78). The client is a few lines of Python writing the wire
//! format by hand (`socket.send_fds`), so nothing of the crate's own framing is trusted twice.
//! The real wvkbd under the real labwc is `tests/tests/onscreen_keyboard.rs`.

use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::io::{IoSliceMut, Read as _, Write as _};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LAYER: &str = env!("CARGO_BIN_EXE_slate-keyboard-layer");

/// The client: wl_display.get_registry(2), wl_registry.bind(7, "zwlr_layer_shell_v1", 4, 3),
/// then get_layer_surface(9, surface 5, no output, top, "wvkbd") with a file descriptor of
/// `fd_file` passed alongside; then it reads the compositor's reply and prints it in hex.
const CLIENT: &str = r#"
import os, socket, struct, sys
s = socket.socket(fileno=int(os.environ["WAYLAND_SOCKET"]))
def msg(obj, op, payload):
    return struct.pack("=II", obj, (8 + len(payload)) << 16 | op) + payload
def string(t):
    b = t.encode() + b"\0"
    return struct.pack("=I", len(b)) + b + b"\0" * (-len(b) % 4)
first = msg(1, 1, struct.pack("=I", 2)) + msg(2, 0, struct.pack("=I", 7) + string("zwlr_layer_shell_v1") + struct.pack("=II", 4, 3))
s.sendall(first)
f = os.open(sys.argv[1], os.O_RDONLY)
socket.send_fds(s, [msg(3, 0, struct.pack("=IIII", 9, 5, 0, 2) + string("wvkbd"))], [f])
print(s.recv(64).hex(), flush=True)
"#;

fn listen(dir: &Path) -> UnixListener {
    UnixListener::bind(dir.join("wayland-test")).unwrap()
}

fn layer(dir: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(LAYER);
    cmd.arg(program)
        .args(args)
        .env("XDG_RUNTIME_DIR", dir)
        .env("WAYLAND_DISPLAY", "wayland-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads from the stand-in compositor's side until `want` bytes, collecting descriptors.
fn receive(conn: &UnixStream, want: usize) -> (Vec<u8>, Vec<OwnedFd>) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (mut bytes, mut fds) = (Vec::new(), Vec::new());
    while bytes.len() < want {
        let mut chunk = [0u8; 512];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(8))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got =
            recvmsg(conn, &mut [IoSliceMut::new(&mut chunk)], &mut control, RecvFlags::empty())
                .expect("the requests arrive");
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        assert!(got.bytes > 0, "the connection closed after {} bytes", bytes.len());
        bytes.extend_from_slice(&chunk[..got.bytes]);
    }
    (bytes, fds)
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn requests_pass_with_the_layer_moved_and_their_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let compositor = listen(dir.path());
    let fd_file = dir.path().join("keymap");
    std::fs::write(&fd_file, "the keymap").unwrap();
    let child = layer(dir.path(), "python3", &["-c", CLIENT, fd_file.to_str().unwrap()])
        .spawn()
        .expect("slate-keyboard-layer starts");
    let (mut conn, _) = compositor.accept().unwrap();
    // get_registry 12 bytes, bind 8 + 4 + 4 + 20 + 8 = 44, get_layer_surface 8 + 16 + 4 + 8 = 36.
    let (bytes, fds) = receive(&conn, 12 + 44 + 36);
    assert_eq!(bytes.len(), 92, "nothing more, nothing less");
    assert_eq!(&bytes[..56], &expected_first(), "registry and bind unchanged");
    let surface = &bytes[56..];
    assert_eq!((word(surface, 0), word(surface, 4) & 0xffff), (3, 0), "get_layer_surface");
    assert_eq!(word(surface, 8), 9, "its new id");
    assert_eq!(word(surface, 20), 3, "asked for on the overlay layer, not the top (2)");
    assert_eq!(&surface[24..], &expected_namespace(), "namespace unchanged");
    assert_eq!(fds.len(), 1, "the descriptor sent with the request");
    let mut passed = std::fs::File::from(fds.into_iter().next().unwrap());
    let mut text = String::new();
    passed.read_to_string(&mut text).unwrap();
    assert_eq!(text, "the keymap");

    // An event back: wl_display.delete_id(9) reaches the client as it was sent.
    let mut event = Vec::new();
    event.extend(1u32.to_ne_bytes());
    event.extend((12u32 << 16 | 1).to_ne_bytes());
    event.extend(9u32.to_ne_bytes());
    conn.write_all(&event).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hex: String = event.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hex);
}

fn expected_first() -> Vec<u8> {
    let mut out = Vec::new();
    for w in [1u32, 12 << 16 | 1, 2, 2, 44 << 16, 7, 20] {
        out.extend(w.to_ne_bytes());
    }
    out.extend(b"zwlr_layer_shell_v1\0");
    for w in [4u32, 3] {
        out.extend(w.to_ne_bytes());
    }
    out
}

fn expected_namespace() -> Vec<u8> {
    let mut out = 6u32.to_ne_bytes().to_vec();
    out.extend(b"wvkbd\0\0\0");
    out
}

#[test]
fn a_stream_that_is_not_wayland_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let compositor = listen(dir.path());
    // A header whose size (4) is shorter than the header itself, then more bytes.
    let garbage = "import os, socket; s = socket.socket(fileno=int(os.environ['WAYLAND_SOCKET'])); \
                   s.sendall(bytes([1,0,0,0, 0,0,4,0]) + b'x' * 64); print(len(s.recv(8)), flush=True)";
    let child = layer(dir.path(), "python3", &["-c", garbage]).spawn().unwrap();
    let (mut conn, _) = compositor.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("closed, not left open");
    assert!(got.is_empty(), "nothing of it reached the compositor: {got:?}");
    let out: Output = child.wait_with_output().unwrap();
    // The client saw its connection closed (recv returned nothing).
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shorter than its own header"),
        "says why: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_compositor_or_no_program_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = layer(dir.path(), "true", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to the compositor"));

    let _compositor = listen(dir.path());
    let out = layer(dir.path(), "/nonexistent/wvkbd", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start /nonexistent/wvkbd"));

    let out = Command::new(LAYER).arg("--version").output().unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).starts_with("slate-keyboard-layer ")
    );
}
