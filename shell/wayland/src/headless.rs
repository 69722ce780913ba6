//! A real compositor with no screen, for tests and benchmarks: sway on wlroots' headless backend
//! with the pixman renderer, in a private `XDG_RUNTIME_DIR`, one 640x480 output; a bright
//! fullscreen client (`foot` with a red background); and captures through wlr-screencopy
//! (`grim`). Debian packages: `sway foot grim` (and `wtype` for typing into the session).
//!
//! Why sway: the kiosk's labwc is not in Debian bookworm, and bookworm's cage has no
//! layer-shell; sway speaks the same wlroots protocols (layer-shell, output power management,
//! screencopy, presentation time). sway refuses to run as root, so as root it is started as
//! `nobody` (`setpriv`); root's clients can still reach its socket.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The output's size in the compositor started here.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;
/// The bright client's background.
pub const RED: [u8; 3] = [0xff, 0, 0];

/// A headless compositor and its clients; all stopped (and the directory removed) on drop.
pub struct Headless {
    compositor: Child,
    clients: Vec<Child>,
    dir: PathBuf,
    runtime: PathBuf,
    socket: PathBuf,
    protocol_log: bool,
}

impl Drop for Headless {
    fn drop(&mut self) {
        for child in self.clients.iter_mut().chain(std::iter::once(&mut self.compositor)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Starts sway on the headless backend with the config in `dir`, as `nobody` when root.
fn spawn_sway(
    dir: &Path,
    runtime: &Path,
    as_root: bool,
    protocol_log: bool,
) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sway.log"))
        .map_err(|e| e.to_string())?;
    let mut command = if as_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "sway"]);
        c
    } else {
        Command::new("sway")
    };
    command
        .arg("-c")
        .arg(dir.join("sway.conf"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XDG_RUNTIME_DIR", runtime)
        .env("WLR_BACKENDS", "headless")
        .env("WLR_RENDERER", "pixman")
        .env("WLR_LIBINPUT_NO_DEVICES", "1");
    if protocol_log {
        // libwayland-server writes every request and event to stderr (the log).
        command.env("WAYLAND_DEBUG", "server");
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start sway: {e}"))
}

impl Headless {
    /// Starts sway, or says why it cannot (then the caller skips: no such packages here).
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Starts sway logging every Wayland request it receives ([`Headless::log`]), to see what
    /// a client asked and in which order.
    pub fn start_with_protocol_log() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(protocol_log: bool) -> Result<Self, String> {
        for program in ["sway", "grim", "foot"] {
            if !installed(program) {
                return Err(format!(
                    "{program} is not installed (Debian packages: sway foot grim)"
                ));
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "slate-headless-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).map_err(|e| format!("{}: {e}", runtime.display()))?;
        let as_root = rustix::process::geteuid().is_root();
        // The compositor's user must reach its runtime directory; nobody else may list it.
        let mode = if as_root { 0o711 } else { 0o700 };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())?;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let config = dir.join("sway.conf");
        std::fs::write(
            &config,
            format!(
                "output HEADLESS-1 mode {WIDTH}x{HEIGHT}\n\
                 default_border none\nxwayland disable\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let as_root_owner = if as_root {
            const NOBODY: u32 = 65534;
            std::os::unix::fs::chown(&runtime, Some(NOBODY), Some(NOBODY))
                .map_err(|e| format!("chown {}: {e}", runtime.display()))?;
            true
        } else {
            false
        };
        let compositor = spawn_sway(&dir, &runtime, as_root_owner, protocol_log)?;
        let mut headless = Headless {
            compositor,
            clients: Vec::new(),
            dir,
            runtime,
            socket: PathBuf::new(),
            protocol_log,
        };
        headless.socket = headless.wait_for_socket()?;
        Ok(headless)
    }

    /// Stops the compositor and its clients (as a crash would) and starts it again in the same
    /// runtime directory: the same socket path, as after a kiosk session restart.
    pub fn restart(&mut self) -> Result<(), String> {
        for child in self.clients.iter_mut().chain(std::iter::once(&mut self.compositor)) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.clients.clear();
        // A killed compositor leaves its socket behind: gone, so nobody connects to it.
        let _ = std::fs::remove_file(&self.socket);
        let as_root = rustix::process::geteuid().is_root();
        self.compositor = spawn_sway(&self.dir, &self.runtime, as_root, self.protocol_log)?;
        let socket = self.wait_for_socket()?;
        if socket != self.socket {
            return Err(format!(
                "sway came back at {} not {}",
                socket.display(),
                self.socket.display()
            ));
        }
        Ok(())
    }

    fn wait_for_socket(&mut self) -> Result<PathBuf, String> {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.compositor.try_wait() {
                return Err(format!("sway exited ({status}): {}", self.log()));
            }
            let found = std::fs::read_dir(&self.runtime).ok().and_then(|entries| {
                entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("wayland-") && !name.ends_with(".lock")
                })
            });
            if let Some(socket) = found {
                return Ok(socket);
            }
            if Instant::now() > until {
                return Err(format!("sway made no socket in 15 s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The compositor's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sway.log")).unwrap_or_default()
    }

    /// The compositor's socket (what `[display] wayland_display` names).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `program` as a client of this compositor.
    pub fn client(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("WAYLAND_DISPLAY", &self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Runs `swaymsg` with `args` against this compositor (e.g. `create_output` to plug in
    /// another screen).
    pub fn swaymsg(&self, args: &[&str]) -> Result<String, String> {
        let ipc = std::fs::read_dir(&self.runtime)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("sway-ipc."))
            })
            .ok_or("sway has no IPC socket")?;
        let out = Command::new("swaymsg")
            .env("SWAYSOCK", ipc)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("swaymsg: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("swaymsg {args:?}: {} {text}", out.status))
        }
    }

    /// Clients that have exited, with their status (for failure messages).
    pub fn exited_clients(&mut self) -> Vec<String> {
        self.clients
            .iter_mut()
            .filter_map(|c| c.try_wait().ok().flatten().map(|s| format!("pid {}: {s}", c.id())))
            .collect()
    }

    /// Runs a client until this is dropped.
    pub fn keep(&mut self, mut command: Command) -> Result<(), String> {
        let child = command.spawn().map_err(|e| format!("cannot start a client: {e}"))?;
        self.clients.push(child);
        Ok(())
    }

    /// A fullscreen red terminal running `sh -c script` (`foot`), once it fills the screen.
    pub fn bright_window(&mut self, script: &str) -> Result<(), String> {
        self.spawn_bright_window(script)?;
        self.wait_for(Duration::from_secs(15), |f| f.share(RED) > 0.99)
            .map(|_| ())
            .map_err(|e| format!("the red window never filled the screen: {e}"))
    }

    /// The same window, without waiting for it to show.
    pub fn spawn_bright_window(&mut self, script: &str) -> Result<(), String> {
        self.spawn_window("foot", RED, script)
    }

    /// A fullscreen terminal of one colour with this app id, running `sh -c script`.
    pub fn spawn_window(
        &mut self,
        app_id: &str,
        colour: [u8; 3],
        script: &str,
    ) -> Result<(), String> {
        let hex = hex::encode(colour);
        let mut foot = self.client("foot");
        foot.args(["--fullscreen", "--app-id", app_id])
            .args(["-o", &format!("colors.background={hex}")])
            .args(["-o", &format!("colors.foreground={hex}")])
            .args(["-o", &format!("cursor.color={hex} {hex}")])
            .args(["sh", "-c", script]);
        self.keep(foot)
    }

    /// Captures what the compositor shows (wlr-screencopy, through `grim`).
    pub fn capture(&self) -> Result<Frame, String> {
        let mut child = self
            .client("grim")
            .args(["-t", "ppm", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("grim: {e}"))?;
        let mut out = Vec::new();
        child.stdout.take().expect("piped").read_to_end(&mut out).map_err(|e| e.to_string())?;
        let mut err = String::new();
        let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("grim failed ({status}): {err}"));
        }
        Frame::from_ppm(&out)
    }

    /// Captures until `ok` holds for a frame (bounded); the last frame's summary if never.
    pub fn wait_for(
        &self,
        timeout: Duration,
        ok: impl Fn(&Frame) -> bool,
    ) -> Result<Frame, String> {
        let until = Instant::now() + timeout;
        loop {
            let frame = self.capture()?;
            if ok(&frame) {
                return Ok(frame);
            }
            if Instant::now() > until {
                return Err(format!("last frame: {}", frame.summary()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A captured frame, RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 3]>,
}

impl Frame {
    /// Parses a binary PPM (`P6`, maxval 255) as grim writes it. Pure.
    pub fn from_ppm(bytes: &[u8]) -> Result<Frame, String> {
        // The header: magic, width, height, maxval, separated by whitespace (no comments from
        // grim), then exactly one whitespace byte before the pixels.
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if start == i {
                return Err("truncated PPM header".into());
            }
            fields.push(std::str::from_utf8(&bytes[start..i]).map_err(|_| "PPM header not text")?);
        }
        i += 1;
        if fields[0] != "P6" || fields[3] != "255" {
            return Err(format!("not an 8-bit P6 PPM: {} … {}", fields[0], fields[3]));
        }
        let number = |s: &str| s.parse::<u32>().map_err(|_| format!("PPM size {s:?}"));
        let (width, height) = (number(fields[1])?, number(fields[2])?);
        let len = width as usize * height as usize * 3;
        let data = bytes.get(i..).filter(|d| d.len() == len).ok_or_else(|| {
            format!("PPM of {width}x{height} has {} bytes of pixels", bytes.len().saturating_sub(i))
        })?;
        let pixels = data.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        Ok(Frame { width, height, pixels })
    }

    /// The share of pixels that are exactly `colour`.
    pub fn share(&self, colour: [u8; 3]) -> f64 {
        if self.pixels.is_empty() {
            return 0.0;
        }
        self.pixels.iter().filter(|p| **p == colour).count() as f64 / self.pixels.len() as f64
    }

    /// Every pixel is black.
    pub fn all_black(&self) -> bool {
        !self.pixels.is_empty() && self.pixels.iter().all(|p| *p == [0, 0, 0])
    }

    /// Size and the most common colours, for failure messages.
    pub fn summary(&self) -> String {
        let mut counts: Vec<([u8; 3], usize)> = Vec::new();
        for p in &self.pixels {
            match counts.iter().position(|(c, _)| c == p) {
                Some(i) => counts[i].1 += 1,
                None if counts.len() < 64 => counts.push((*p, 1)),
                None => {}
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        counts.truncate(3);
        format!("{}x{}, commonest {counts:?}", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_frames_parse_and_bad_ones_are_refused() {
        let mut ok = b"P6\n2 1\n255\n".to_vec();
        ok.extend_from_slice(&[0, 0, 0, 255, 0, 0]);
        let frame = Frame::from_ppm(&ok).unwrap();
        assert_eq!((frame.width, frame.height), (2, 1));
        assert_eq!(frame.pixels, vec![[0, 0, 0], RED]);
        assert_eq!(frame.share(RED), 0.5);
        assert!(!frame.all_black());
        let black = Frame { width: 1, height: 1, pixels: vec![[0, 0, 0]] };
        assert!(black.all_black());
        assert!(!Frame { width: 0, height: 0, pixels: vec![] }.all_black());

        let table: [(&[u8], &str); 4] = [
            (b"P6\n2 1\n255\n\0\0\0", "bytes of pixels"),
            (b"P5\n1 1\n255\n\0", "not an 8-bit P6"),
            (b"P6\n1 1\n65535\n\0\0\0\0\0\0", "not an 8-bit P6"),
            (b"P6\n1", "truncated"),
        ];
        for (bytes, want) in table {
            let err = Frame::from_ppm(bytes).unwrap_err();
            assert!(err.contains(want), "{err} (wanted {want})");
        }
    }
}
