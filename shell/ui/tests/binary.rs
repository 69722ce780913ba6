//! The real `slate-ui` binary under Xvfb (Debian package `xvfb`), with a stand-in slated on a Unix
//! socket in a temporary directory: proves the wiring of `main.rs` that the controller tests
//! cannot, by the screens it reports in its log (which screen only, never what is on it): the
//! signed policy from `<state_dir>/policy/kiosk.json`, re-read when slated replaces it and
//! refused (fail closed) when it does not verify; the provisioning unit's config-error file.

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use slate_protocol::bundle::{verifying_key_to_base64, BundleKind, SignedBundle};
use slate_protocol::kiosk::SAMPLE_POLICY;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display it picks itself; `None` when Xvfb is not installed.
fn xvfb() -> Option<(Killed, String)> {
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "800x480x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Some((Killed(child), format!(":{}", line.trim())))
}

/// A stand-in slated: answers `status` with `status` and every other request with ok, and keeps
/// every request it was sent.
fn fake_slated(socket: &Path, status: Arc<Mutex<Value>>) -> Arc<Mutex<Vec<Value>>> {
    let listener = UnixListener::bind(socket).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let request: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let reply = if request["cmd"] == "status" {
                    status.lock().unwrap().clone()
                } else {
                    json!({"ok": true})
                };
                log.lock().unwrap().push(request);
                let _ = writeln!(writer, "{reply}");
                line.clear();
            }
        }
    });
    seen
}

/// Collects the child's log lines as they come.
fn collect(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The child's log, read in order.
struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    /// Lines before this one were matched already.
    next: usize,
}

impl Log {
    /// Waits for a line after the last one matched containing every one of `parts`; panics with
    /// the log after 60 s.
    fn wait_for(&mut self, parts: &[&str]) {
        wait_for_log(&self.lines, &mut self.next, parts)
    }
}

fn wait_for_log(lines: &Mutex<Vec<String>>, next: &mut usize, parts: &[&str]) {
    let start = Instant::now();
    loop {
        {
            let lines = lines.lock().unwrap();
            let found = lines[*next..].iter().position(|l| parts.iter().all(|p| l.contains(p)));
            if let Some(i) = found {
                *next += i + 1;
                return;
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("no log line with {parts:?}:\n{}", lines.lock().unwrap().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn put(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn the_binary_reads_the_signed_policy_follows_it_and_fails_closed() {
    let Some((_xvfb, display)) = xvfb() else {
        panic!("Xvfb is not installed (scripts/setup installs the xvfb package)");
    };
    let dir = tempfile::tempdir().unwrap();
    let school = SigningKey::from_bytes(&[7; 32]);
    let stranger = SigningKey::from_bytes(&[8; 32]);
    let kiosk = dir.path().join("state/policy/kiosk.json");
    std::fs::create_dir_all(kiosk.parent().unwrap()).unwrap();
    let signed = |key: &SigningKey| {
        serde_json::to_vec(&SignedBundle::sign_as(
            BundleKind::KioskPolicy,
            SAMPLE_POLICY.into(),
            "k1",
            key,
        ))
        .unwrap()
    };
    put(&kiosk, &signed(&school));

    // Jack (Rowan class) is signed in.
    let status = Arc::new(Mutex::new(
        json!({"ok": true, "device": 12, "state": "in_session", "pupil": "p-e0e0e2"}),
    ));
    let socket = dir.path().join("control.sock");
    let requests = fake_slated(&socket, status.clone());
    let class_net = dir.path().join("net");
    std::fs::create_dir_all(class_net.join("eth0")).unwrap();
    std::fs::write(class_net.join("eth0/operstate"), "up\n").unwrap();
    let config_error = dir.path().join("config-error");

    let mut child = Command::new(env!("CARGO_BIN_EXE_slate-ui"))
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--public-key")
        .arg(verifying_key_to_base64(&school.verifying_key()))
        .arg("--config-error")
        .arg(&config_error)
        .arg("--class-net")
        .arg(&class_net)
        .args(["--poll-ms", "100"])
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "slate_ui=info")
        .env("NO_COLOR", "1")
        // tracing's log goes to stderr, as every Slate binary's does.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = Log { lines: collect(&mut child), next: 0 };
    let _ui = Killed(child);

    log.wait_for(&["kiosk policy read"]);
    // The restarted kiosk found Jack's session: home.
    log.wait_for(&["screen", "Home"]);

    // slated replaces the file with one the school did not sign: fail closed.
    put(&kiosk, &signed(&stranger));
    log.wait_for(&["no valid kiosk policy", "signature"]);
    log.wait_for(&["screen", "AskTeacher(NoPolicy)"]);

    // A good one again, then "eyes on me".
    put(&kiosk, &signed(&school));
    log.wait_for(&["kiosk policy read"]);
    status.lock().unwrap()["screens_locked"] = json!(true);
    log.wait_for(&["screen", "EyesOnTeacher"]);

    // slated goes away and the provisioning unit says why: the page for IT.
    *status.lock().unwrap() = json!({"ok": false, "error": "not running"});
    std::fs::write(&config_error, "slate.toml: field `server.url` is missing\n").unwrap();
    log.wait_for(&["screen", "ConfigError"]);

    assert!(requests.lock().unwrap().iter().any(|r| r["cmd"] == "status"));
}
