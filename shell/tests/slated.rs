//! The real `slated` and `slatectl` binaries, run as processes on temp dirs and loopback only.

use slate_protocol::{EventBody, EventId};
use slate_shell::spool::{decode_record, EVENTS_FILE};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SLATED: &str = env!("CARGO_BIN_EXE_slated");
const SLATECTL: &str = env!("CARGO_BIN_EXE_slatectl");

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, device: u16) -> (PathBuf, PathBuf) {
    let socket = dir.join("run").join("control.sock");
    let config = dir.join("slate.toml");
    std::fs::write(
        &config,
        format!(
            r#"device_number = {device}
state_dir = "state"
control_socket = "run/control.sock"
[server]
url = "http://127.0.0.1:{port}"
[upload]
retry_min_ms = 50
retry_max_ms = 200
[button]
source = "none"
"#,
            port = closed_port()
        ),
    )
    .unwrap();
    (config, socket)
}

/// A running slated, killed if the test ends early.
struct Slated {
    child: Option<Child>,
}

impl Slated {
    /// Starts slated and waits for its ready line.
    fn start(config: &Path) -> Slated {
        let mut child = Command::new(SLATED)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("slated starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut slated = Slated { child: Some(child) };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                assert!(line.starts_with("slated ready device="), "unexpected stdout: {line}")
            }
            Err(e) => {
                let status = slated.child.as_mut().unwrap().try_wait().unwrap();
                panic!("no ready line from slated ({e}); exit status {status:?}");
            }
        }
        slated
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait()).unwrap());
        rx.recv_timeout(Duration::from_secs(30)).expect("slated stops on SIGTERM").unwrap()
    }
}

impl Drop for Slated {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One request line, one reply line.
fn ask(socket: &Path, request: &str) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn slatectl(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(SLATECTL).arg("--socket").arg(socket).args(args).output().unwrap()
}

fn spooled(state_dir: &Path) -> Vec<slate_protocol::Event> {
    let bytes = std::fs::read(state_dir.join("spool").join(EVENTS_FILE)).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| decode_record(l).expect("a valid record"))
        .collect()
}

#[test]
fn a_press_on_the_control_socket_is_in_the_spool_when_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 7);
    let state_dir = dir.path().join("state");
    // A stored credential, so that slated really tries the (closed) server port and fails.
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("credential"), "c-test\n").unwrap();
    let slated = Slated::start(&config);

    let reply = ask(&socket, r#"{"cmd":"sign_in","pupil":"p-7f3a9c"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = ask(
        &socket,
        r#"{"cmd":"foreground","app":"browser","url":"https://example.org/x","title":"A page"}"#,
    );
    assert_eq!(reply["ok"], true, "{reply}");
    let reply = ask(&socket, r#"{"cmd":"press"}"#);
    assert_eq!(reply["ok"], true, "{reply}");
    let report: EventId = serde_json::from_value(reply["report"].clone()).unwrap();

    // Answered means on disk: read the file as it is now.
    let events = spooled(&state_dir);
    let filed = events.iter().find(|e| e.id == report).expect("the report is in the spool file");
    assert_eq!(filed.device.get(), 7);
    let EventBody::ReportFiled { pupil, app, url, page_title, blank_latency_us, .. } = &filed.body
    else {
        panic!("{filed:?}")
    };
    assert_eq!(pupil.as_ref().map(|p| p.as_str()), Some("p-7f3a9c"));
    assert_eq!(app.as_deref(), Some("browser"));
    assert_eq!(url.as_deref(), Some("https://example.org/x"));
    assert_eq!(page_title.as_deref(), Some("A page"));
    assert!(blank_latency_us.is_some());
    let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["hello", "session_started", "report_filed"]);

    // slatectl sees the same device; the server port is closed, so everything is still pending.
    let out = slatectl(&socket, &["status"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "device=7 state=held spool_pending=3 enrolled=true\n"
    );
    let out = slatectl(&socket, &["report"]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with(&format!("already held: report {report}")));
    let out = slatectl(&socket, &["sign-in", "p-2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("held until a member of staff unlocks it"));
    assert!(slatectl(&socket, &["unlock"]).status.success());

    // A bad request is answered, and the daemon carries on.
    let reply = ask(&socket, r#"{"cmd":"explode"}"#);
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].as_str().unwrap().contains("unknown variant"));

    let status = slated.stop();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed on a clean stop");
    // The open session is on record; nothing filed was lost.
    let kinds: Vec<&str> = spooled(&state_dir).iter().map(|e| e.body.kind()).collect();
    assert_eq!(
        kinds,
        ["hello", "session_started", "report_filed", "report_resolved", "session_ended"]
    );

    // A restart keeps the spool and adds its own hello.
    let slated = Slated::start(&config);
    let out = slatectl(&socket, &["status"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "device=7 state=idle spool_pending=6 enrolled=true\n"
    );
    assert!(slated.stop().success());
}

#[test]
fn a_corrupt_config_exits_2_naming_the_field_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slate.toml");
    std::fs::write(
        &config,
        "device_number = 0\n[server]\nurl = \"https://s.example\"\n[button]\nsource = \"none\"\n",
    )
    .unwrap();
    let out =
        Command::new(SLATED).arg("--config").arg(&config).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}: field `device_number`: 0 is not a device number from 1 to 9999",
            config.display()
        )),
        "{stderr}"
    );

    std::fs::write(&config, b"device_number = \x00\xff not toml").unwrap();
    let out =
        Command::new(SLATED).arg("--config").arg(&config).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&config.display().to_string()));

    let missing = dir.path().join("missing.toml");
    let out =
        Command::new(SLATED).arg("--config").arg(&missing).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn slatectl_without_slated_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let out = slatectl(&socket, &["press"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot reach slated") && stderr.contains("is slated running?"),
        "{stderr}"
    );
    // The environment variable names the socket too.
    let out =
        Command::new(SLATECTL).arg("status").env("SLATE_CONTROL_SOCKET", &socket).output().unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains(&socket.display().to_string()));
}

#[test]
fn the_staff_pin_unlocks_through_slatectl_and_the_choice_is_filed() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 9);
    // The hash comes from slatectl itself, as an IT provider would make it.
    let mut hash = Command::new(SLATECTL)
        .arg("hash-pin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    hash.stdin.take().unwrap().write_all(b"2468\n").unwrap();
    let out = hash.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("[staff]\npin_hash = \"{phc}\"\nwrong_pins_before_lockout = 2\n"));
    std::fs::write(&config, text).unwrap();

    let slated = Slated::start(&config);
    let state_dir = dir.path().join("state");
    let out = slatectl(&socket, &["report"]);
    assert!(out.status.success(), "{out:?}");
    let out = slatectl(&socket, &["unlock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("PIN is required"));
    let out = slatectl(&socket, &["unlock", "--pin", "1111"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("wrong staff PIN"), "{stderr}");
    let out = slatectl(
        &socket,
        &["unlock", "--pin", "2468", "--choice", "block-site", "--staff", "t-04"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "unlocked: the app was closed and the site is asked to be blocked\n"
    );
    let events = spooled(&state_dir);
    let report = events.iter().find(|e| e.body.kind() == "report_filed").unwrap().id;
    let resolved = events.iter().find(|e| e.body.kind() == "report_resolved").unwrap();
    assert_eq!(
        resolved.body,
        EventBody::ReportResolved {
            report,
            choice: slate_protocol::ResolutionChoice::BlockSite,
            staff: Some(slate_protocol::StaffId::new("t-04").unwrap()),
        }
    );
    // Two wrong PINs lock unlocking for a minute, and slatectl says until when.
    slatectl(&socket, &["report"]);
    slatectl(&socket, &["unlock", "--pin", "0000"]);
    let out = slatectl(&socket, &["--json", "unlock", "--pin", "0001"]);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["ok"], false);
    assert!(reply["locked_until"].is_string(), "{reply}");
    assert!(slated.stop().success());
}
