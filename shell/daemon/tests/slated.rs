//! The real `slated` and `slatectl` binaries, run as processes on temp dirs and loopback only.

use slate_daemon::spool;
use slate_protocol::{EventBody, EventId};
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

/// Adds `[staff] pin_hash` for `pin` to `config` (hashed by slatectl, as IT makes it), plus
/// `extra` lines of that table.
fn add_staff_pin(config: &Path, pin: &str, extra: &str) {
    let mut hash = Command::new(SLATECTL)
        .arg("hash-pin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    hash.stdin.take().unwrap().write_all(format!("{pin}\n").as_bytes()).unwrap();
    let out = hash.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("[staff]\npin_hash = \"{phc}\"\n{extra}"));
    std::fs::write(config, text).unwrap();
}

/// Puts a kiosk policy whose roster has these pupils (none with a picture PIN) in the state
/// directory, signed, and its key in the config: sign-in needs the pupil on the roster of the
/// policy in force.
fn with_roster(config: &Path, pupils: &[&str]) {
    use ed25519_dalek::SigningKey;
    use slate_protocol::bundle::{verifying_key_to_base64, BundleKind, SignedBundle};
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut kiosk: serde_json::Value =
        serde_json::from_str(slate_protocol::kiosk::SAMPLE_POLICY).unwrap();
    let template = kiosk["classes"][0]["pupils"][0].clone();
    let present = kiosk.to_string();
    for id in pupils.iter().filter(|id| !present.contains(&format!("\"{id}\""))) {
        let mut pupil = template.clone();
        pupil["id"] = (*id).into();
        pupil.as_object_mut().unwrap().remove("picture_pin");
        kiosk["classes"][0]["pupils"].as_array_mut().unwrap().push(pupil);
    }
    let policy_dir = config.parent().unwrap().join("state").join("policy");
    std::fs::create_dir_all(&policy_dir).unwrap();
    let bundle = SignedBundle::sign_as(BundleKind::KioskPolicy, kiosk.to_string(), "k1", &key);
    std::fs::write(policy_dir.join("kiosk.json"), serde_json::to_vec(&bundle).unwrap()).unwrap();
    let text = std::fs::read_to_string(config).unwrap().replace(
        "[upload]",
        &format!("public_key = \"{}\"\n[upload]", verifying_key_to_base64(&key.verifying_key())),
    );
    std::fs::write(config, text).unwrap();
}

/// A running slated, killed if the test ends early.
struct Slated {
    child: Option<Child>,
}

impl Slated {
    /// Starts slated and waits for its ready line.
    fn start(config: &Path) -> Slated {
        Self::start_with_env(config, &[])
    }

    /// Starts slated with these environment variables too, and waits for its ready line.
    fn start_with_env(config: &Path, env: &[(&str, &Path)]) -> Slated {
        let mut child = Command::new(SLATED)
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
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
    spool::peek(&state_dir.join("spool")).expect("the spool reads")
}

#[test]
fn a_press_on_the_control_socket_is_in_the_spool_when_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 7);
    add_staff_pin(&config, "2468", "");
    with_roster(&config, &["p-7f3a9c", "p-2"]);
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
    // Nothing on this machine can darken a screen (no compositor, no backlight): the report
    // must not say the screen went dark.
    assert_eq!(*blank_latency_us, None, "no darkness is claimed where none happened");
    let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["hello", "session_started", "report_filed"]);

    // slatectl sees the same device; the server port is closed, so everything is still pending.
    let out = slatectl(&socket, &["status"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "device=7 state=held spool_pending=3 enrolled=true display=last_press_not_dark pupil=p-7f3a9c\n"
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
    assert!(slatectl(&socket, &["unlock", "--pin", "2468"]).status.success());

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
        "device=7 state=idle spool_pending=6 enrolled=true display=cannot_darken\n"
    );
    assert!(slated.stop().success());
}

#[test]
fn without_a_staff_pin_a_held_device_stays_held_even_for_root() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 8);
    let slated = Slated::start(&config);
    assert!(slatectl(&socket, &["report"]).status.success());
    for args in
        [&["unlock"][..], &["unlock", "--pin", "1234"], &["unlock", "--choice", "false-alarm"]]
    {
        let out = slatectl(&socket, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no staff PIN has reached this device"),
            "{args:?}: {out:?}"
        );
    }
    let out = slatectl(&socket, &["status"]);
    let status = String::from_utf8(out.stdout).unwrap();
    assert!(status.contains("state=held") && status.contains("staff_pin=none"), "{status}");
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
    assert_eq!(out.status.code(), Some(78), "{out:?}");
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
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&config.display().to_string()));

    let missing = dir.path().join("missing.toml");
    let out =
        Command::new(SLATED).arg("--config").arg(&missing).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
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
    add_staff_pin(&config, "2468", "wrong_pins_before_lockout = 2\n");

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
            // IT's own PIN from slate.toml, whatever `--staff` claimed.
            staff: Some(slate_protocol::StaffId::new(slate_protocol::staff::IT_STAFF_ID).unwrap()),
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

#[test]
fn kiosk_and_udev_requests_through_slatectl_are_spooled() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 9);
    with_roster(&config, &["p-1"]);
    let state_dir = dir.path().join("state");
    let slated = Slated::start(&config);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "the kiosk UI's group may use the socket");

    let out = slatectl(&socket, &["app-opened", "maths"]);
    assert_eq!(out.status.code(), Some(1), "nobody is signed in: {out:?}");
    let out = slatectl(
        &socket,
        &["device-refused", "--kind", "usb_storage", "--description", "0781:5567 SanDisk"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = slatectl(&socket, &["device-refused", "--kind", "usb_storage", "--description", ""]);
    assert_eq!(out.status.code(), Some(2), "checked before sending: {out:?}");
    assert!(slatectl(&socket, &["sign-in", "p-1"]).status.success());
    let out = slatectl(&socket, &["app-opened", "maths"]);
    assert!(out.status.success(), "{out:?}");
    let out = slatectl(
        &socket,
        &["tell-teacher", "--url", "https://blocked.example/x", "--app", "maths"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("teacher told: report "));
    let reply = ask(&socket, r#"{"cmd":"status"}"#);
    assert_eq!(reply["state"], "in_session", "tell_teacher holds nothing: {reply}");
    assert_eq!(reply["pupil"], "p-1");
    assert_eq!(reply["screens_locked"], false);

    assert!(slated.stop().success());
    let kinds: Vec<&str> = spooled(&state_dir).iter().map(|e| e.body.kind()).collect();
    assert_eq!(
        kinds,
        [
            "hello",
            "device_refused",
            "session_started",
            "app_opened",
            "report_filed",
            "session_ended"
        ]
    );
}

#[test]
fn a_device_killed_while_held_comes_back_held_until_the_staff_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 11);
    with_roster(&config, &["p-1"]);
    let phc = slate_daemon::staff::StaffPin::hash("1357").unwrap().phc().to_owned();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("[staff]\npin_hash = \"{phc}\"\n"));
    std::fs::write(&config, text).unwrap();
    let state_dir = dir.path().join("state");

    let slated = Slated::start(&config);
    assert!(slatectl(&socket, &["sign-in", "p-1"]).status.success());
    let reply = ask(&socket, r#"{"cmd":"press"}"#);
    let report = reply["report"].as_str().unwrap().to_owned();
    // SIGKILL: no shutdown code runs.
    drop(slated);

    let slated = Slated::start(&config);
    let status = ask(&socket, r#"{"cmd":"status"}"#);
    assert_eq!(status["state"], "held", "{status}");
    assert!(status.get("pupil").is_none(), "the session before the kill is not resumed: {status}");
    // A press while held again is the same report, not a new one.
    let again = ask(&socket, r#"{"cmd":"press"}"#);
    assert_eq!(again["report"], report.as_str());
    assert_eq!(again["already_held"], true);
    let out = slatectl(&socket, &["unlock"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PIN is required"), "{out:?}");
    // A clean stop while held is still held at the next start.
    assert!(slated.stop().success());
    let slated = Slated::start(&config);
    assert_eq!(ask(&socket, r#"{"cmd":"status"}"#)["state"], "held");
    let out = slatectl(&socket, &["unlock", "--pin", "1357"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ask(&socket, r#"{"cmd":"status"}"#)["state"], "idle");
    drop(slated);

    let slated = Slated::start(&config);
    assert_eq!(ask(&socket, r#"{"cmd":"status"}"#)["state"], "idle", "unlocked stays unlocked");
    assert!(slated.stop().success());
    let events = spooled(&state_dir);
    let resolved: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::ReportResolved { report, .. } => Some(report.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(resolved, [report], "the unlock after the restart resolves the report from before");
    let filed = events.iter().filter(|e| e.body.kind() == "report_filed").count();
    assert_eq!(filed, 1);
}

#[test]
fn wrong_staff_pins_still_count_after_slated_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 13);
    let phc = slate_daemon::staff::StaffPin::hash("1357").unwrap().phc().to_owned();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[staff]\npin_hash = \"{phc}\"\nwrong_pins_before_lockout = 3\nlockout_s = 600\n"
    ));
    std::fs::write(&config, text).unwrap();
    let pins_file = dir.path().join("state").join(slate_daemon::daemon::PINS_FILE);
    let unlock = |pin: &str| ask(&socket, &format!(r#"{{"cmd":"unlock","pin":"{pin}"}}"#));

    let slated = Slated::start(&config);
    assert_eq!(ask(&socket, r#"{"cmd":"press"}"#)["ok"], true);
    let reply = unlock("0000");
    assert!(reply["error"].as_str().unwrap().contains("2 more"), "{reply}");
    // SIGKILL straight after the answer: the guess was recorded before it.
    drop(slated);
    assert!(pins_file.exists());

    let slated = Slated::start(&config);
    let reply = unlock("0001");
    assert!(reply["error"].as_str().unwrap().contains("1 more"), "the count goes on: {reply}");
    drop(slated);
    let slated = Slated::start(&config);
    let reply = unlock("0002");
    let until = reply["locked_until"].as_str().expect("the third wrong PIN locks").to_owned();
    drop(slated);

    // Locked out across the restart: even the right PIN waits, and status says until when.
    let slated = Slated::start(&config);
    let status = ask(&socket, r#"{"cmd":"status"}"#);
    assert_eq!(status["state"], "held", "{status}");
    assert_eq!(status["locked_until"], until.as_str(), "{status}");
    let reply = unlock("1357");
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["locked_until"], until.as_str(), "{reply}");
    assert!(slated.stop().success());
    assert_eq!(
        ask_after_start(&config, &socket, r#"{"cmd":"status"}"#)["locked_until"],
        until.as_str(),
        "a clean stop keeps it too"
    );
}

/// The sign-in screen's staff PIN pad over the real control socket: a right PIN opens the
/// button test window (status says so, for the screen), a sign-in closes it, and wrong PINs at
/// the pad count towards the same lockout as the unlock's. (The test press itself needs the
/// physical button, which no loopback test has: the driver's tests press it.)
#[test]
fn the_staff_pin_pad_opens_the_button_test_and_its_wrong_pins_lock_out() {
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 14);
    with_roster(&config, &["p-1"]);
    add_staff_pin(&config, "2468", "wrong_pins_before_lockout = 3\nlockout_s = 600\n");
    let test = |pin: &str, start: bool| {
        ask(&socket, &format!(r#"{{"cmd":"staff_button_test","pin":"{pin}","start":{start}}}"#))
    };
    let status = || ask(&socket, r#"{"cmd":"status"}"#);

    let _slated = Slated::start(&config);
    assert_eq!(status()["button_test"], false);
    assert_eq!(test("2468", false)["ok"], true, "the PIN is checked");
    assert_eq!(status()["button_test"], false, "only checked: no test yet");
    assert_eq!(test("2468", true)["ok"], true);
    assert_eq!(status()["button_test"], true, "the next press is a test");
    let out = slatectl(&socket, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("button_test=open"), "{out:?}");
    // A pupil signing in closes it: their press is always a report.
    assert_eq!(ask(&socket, r#"{"cmd":"sign_in","pupil":"p-1"}"#)["ok"], true);
    assert_eq!(status()["button_test"], false);
    let reply = test("2468", true);
    assert!(reply["error"].as_str().unwrap().contains("a pupil is signed in"), "{reply}");
    assert_eq!(ask(&socket, r#"{"cmd":"sign_out"}"#)["ok"], true);

    // Wrong PINs at the pad count towards the unlock's lockout.
    assert!(test("0000", false)["error"].as_str().unwrap().contains("2 more"));
    assert!(test("0001", true)["error"].as_str().unwrap().contains("1 more"));
    let until = test("0002", false)["locked_until"].as_str().expect("locked").to_owned();
    let reply = test("2468", true);
    assert_eq!(reply["locked_until"], until.as_str(), "even the right PIN waits: {reply}");
    assert_eq!(status()["button_test"], false);
    assert_eq!(status()["locked_until"], until.as_str());
    let kinds: Vec<_> = spooled(&dir.path().join("state")).iter().map(|e| e.body.kind()).collect();
    assert!(kinds.contains(&"security_breach"), "the lockout is recorded: {kinds:?}");
    assert!(!kinds.contains(&"report_filed"), "{kinds:?}");
}

/// Starts slated, asks one thing, stops it.
fn ask_after_start(config: &Path, socket: &Path, request: &str) -> serde_json::Value {
    let slated = Slated::start(config);
    let reply = ask(socket, request);
    assert!(slated.stop().success());
    reply
}

#[test]
fn check_config_says_ok_or_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(dir.path(), 5);
    let out = Command::new(SLATED).arg("--check-config").arg(&config).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (device 5)"));
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]", "[server]\npolicy_refresh_s = 1");
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(SLATED).arg("--check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("`server.policy_refresh_s`"),
        "{stderr}"
    );
    let missing_ca = dir.path().join("ca.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]", "[server]\nca_certificate = \"nope.pem\"");
    std::fs::write(&missing_ca, text).unwrap();
    let out = Command::new(SLATED).arg("--check-config").arg(&missing_ca).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`server.ca_certificate`"), "{out:?}");
}

/// What the provisioning script asks instead of reading slate.toml itself.
#[test]
fn config_value_and_same_config_answer_the_provisioning_script() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card.toml");
    let installed = dir.path().join("installed.toml");
    std::fs::write(&card, "server.url = 'https://s/'\nserver.enrollment_token = 'tok-1'\n")
        .unwrap();
    std::fs::write(&installed, "server.url = 'https://s/'\n").unwrap();
    let slated = |args: &[&str], paths: &[&Path]| {
        let out = Command::new(SLATED).args(args).args(paths).output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let value = |key, path: &Path| slated(&["--config-value", key], &[path]);
    assert_eq!(value("server.url", &card), (Some(0), "https://s/\n".into()));
    assert_eq!(value("server.public_key", &card), (Some(1), String::new()));
    assert_eq!(value("server.url", &dir.path().join("missing.toml")).0, Some(78));
    assert_eq!(slated(&["--same-config"], &[&card, &installed]).0, Some(0));
    assert_eq!(slated(&["--same-config"], &[&card, &card]).0, Some(0));
    assert_eq!(slated(&["--same-config"], &[&installed, &card]).0, Some(1));
    assert_eq!(slated(&["--same-config"], &[&card, &dir.path().join("missing.toml")]).0, Some(78));
}

#[test]
fn systemd_hears_ready_and_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(dir.path(), 6);
    let notify = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut child = Command::new(SLATED)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "error")
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen.iter().filter(|m: &&String| m.contains("WATCHDOG=1")).count() < 2 {
        let n = match listener.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = child.kill();
                panic!("{e}; heard {seen:?}");
            }
        };
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(seen[0], "READY=1\n", "ready first: {seen:?}");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
}

/// A stand-in school server on 127.0.0.1: each request is answered by `route(method, target)`.
fn fake_server(
    route: impl Fn(&str, &str) -> (u16, Vec<u8>) + Send + Sync + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let route = std::sync::Arc::new(route);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (route, log) = (route.clone(), log.clone());
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = stream.read_exact(&mut body);
                let mut parts = head.split_whitespace();
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                log.lock().unwrap().push(format!("{method} {target}"));
                let (status, body) = route(method, target);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    (port, seen)
}

/// A stand-in slate-dns control socket: answers ok, records each line.
fn fake_dns(path: &Path) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let reply = if line.contains("recent") {
                        "{\"ok\":true,\"names\":[\"seen.example\"]}\n"
                    } else {
                        "{\"ok\":true}\n"
                    };
                    log.lock().unwrap().push(line);
                    let _ = writer.write_all(reply.as_bytes());
                }
            });
        }
    });
    seen
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_signed_policy_and_teacher_commands_reach_the_device() {
    use ed25519_dalek::SigningKey;
    use slate_protocol::bundle::{verifying_key_to_base64, BundleKind, SignedBundle};
    let key = SigningKey::from_bytes(&[9; 32]);
    let jones = slate_daemon::staff::StaffPin::hash_cheap("246813");
    let patel = slate_daemon::staff::StaffPin::hash_cheap("730418");
    let mut kiosk: serde_json::Value =
        serde_json::from_str(slate_protocol::kiosk::SAMPLE_POLICY).unwrap();
    kiosk["issued_at"] = "2026-11-23T08:00:00Z".into();
    let oak_pupil = kiosk["classes"][0]["pupils"][0]["id"].as_str().unwrap().to_owned();
    // A picture PIN as a server of this release sends it: the length in the kiosk policy, an
    // argon2id hash (as the server makes it, at a cheap cost for a debug build) in the staff
    // document.
    let pinned = kiosk["classes"][0]["pupils"][1]["id"].as_str().unwrap().to_owned();
    kiosk["classes"][0]["pupils"][1]["picture_pin_length"] = 2.into();
    let picture_hash = {
        use argon2::password_hash::PasswordHasher;
        let params = argon2::Params::new(256, 1, 1, None).unwrap();
        let hasher =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let secret = slate_protocol::kiosk::picture_pin_secret(&["sun".into(), "boat".into()]);
        hasher.hash_password_with_salt(&secret, &[5u8; 16]).unwrap().to_string()
    };
    let staff = serde_json::json!({"v": 1, "issued_at": "2026-11-23T08:00:00Z", "staff": [
        {"id": "s-jones", "pin_hash": jones.phc()},
        {"id": "s-patel", "pin_hash": patel.phc()},
    ], "picture_pins": [{"pupil": pinned, "phc": picture_hash}]});
    let list = b"adult.example\n".to_vec();
    let filter = serde_json::json!({
        "v": 1, "issued_at": "2026-11-23T08:00:00Z", "default_profile": "oak",
        "profiles": {"oak": {"block_lists": ["adult"]}},
        "lists": {"adult": {"sha256": slate_protocol::device::list_digest(&list), "bytes": list.len()}},
    });
    let reply = serde_json::to_vec(&slate_protocol::device::PolicyReply {
        v: 1,
        kiosk: SignedBundle::sign_as(BundleKind::KioskPolicy, kiosk.to_string(), "k1", &key),
        filter: SignedBundle::sign_as(BundleKind::FilterPolicy, filter.to_string(), "k1", &key),
        staff: SignedBundle::sign_as(BundleKind::StaffPins, staff.to_string(), "k1", &key),
    })
    .unwrap();
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let commands = serde_json::json!({"v": 1, "cursor": 1, "commands": [
        {"id": 1, "issued_at": "2026-11-23T08:00:00Z", "expires_at": expires, "action": "lock_screens"},
        {"id": 0, "issued_at": "2026-11-23T08:00:00Z", "expires_at": "2026-11-23T08:01:00Z", "action": "sign_out_all"},
    ]})
    .to_string();
    let list_body = list.clone();
    let (port, requests) = fake_server(move |method, target| match (method, target) {
        // Only a device that says it understands kinds and hashed PINs gets this form.
        ("GET", t) if t == slate_protocol::device::policy_path() => (200, reply.clone()),
        ("GET", "/api/v1/device/lists/adult") => (200, list_body.clone()),
        ("GET", t) if t.starts_with("/api/v1/device/commands?after=0&") => {
            (200, commands.clone().into_bytes())
        }
        ("GET", t) if t.starts_with("/api/v1/device/commands") => {
            // The long poll: nothing more.
            std::thread::sleep(Duration::from_millis(500));
            (200, br#"{"v":1,"cursor":1,"commands":[]}"#.to_vec())
        }
        _ => (503, b"{\"error\":\"not here\"}".to_vec()),
    });

    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 14);
    let dns_path = dir.path().join("dns.sock");
    let dns = fake_dns(&dns_path);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("state_dir = \"state\"", "state_dir = \"state\"\ndns_socket = \"dns.sock\"");
    let text = with_server_port(&text, port).replace(
        "[upload]",
        &format!("public_key = \"{}\"\n[upload]", verifying_key_to_base64(&key.verifying_key())),
    );
    std::fs::write(&config, text).unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("credential"), "c-test\n").unwrap();

    let slated = Slated::start(&config);
    wait_for("the policy in force", || {
        ask(&socket, r#"{"cmd":"status"}"#).get("policy_issued_at").is_some()
    });
    let policy_dir = state_dir.join("policy");
    let written: slate_protocol::bundle::SignedBundle =
        serde_json::from_slice(&std::fs::read(policy_dir.join("kiosk.json")).unwrap()).unwrap();
    assert_eq!(written.payload, kiosk.to_string(), "kiosk.json is the bundle as received");
    // Stored under its content's name, the one the signed manifest gives.
    let stored = slate_protocol::device::ListFile::of(&list).file_name();
    assert_eq!(std::fs::read(policy_dir.join("lists").join(stored)).unwrap(), list);
    // The staff PINs: for slated alone, beside the policy the kiosk user reads, not in it.
    let cached: slate_protocol::bundle::SignedBundle =
        serde_json::from_slice(&std::fs::read(state_dir.join("staff.json")).unwrap()).unwrap();
    assert_eq!(cached.payload, staff.to_string());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state_dir.join("staff.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for entry in walk(&policy_dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
        assert!(!text.contains("argon2"), "no PIN hash in {}", entry.display());
    }
    // slated judges the pupil's taps against the hash: the right pictures, then wrong ones.
    let check = |pictures: &str| {
        ask(
            &socket,
            &format!(r#"{{"cmd":"check_pictures","pupil":"{pinned}","pictures":{pictures}}}"#),
        )
    };
    assert_eq!(check(r#"["sun","boat"]"#)["ok"], true, "the right taps");
    for wrong in [r#"["boat","sun"]"#, r#"["sun"]"#, r#"["sun","boat","sun"]"#] {
        let reply = check(wrong);
        assert_eq!(reply["ok"], false, "{wrong}");
        assert!(reply["error"].as_str().unwrap().contains("wrong pictures"), "{reply}");
    }
    wait_for("slate-dns told to reload", || {
        dns.lock().unwrap().iter().any(|l| l.contains("reload"))
    });
    wait_for("eyes on me", || ask(&socket, r#"{"cmd":"status"}"#)["screens_locked"] == true);
    wait_for("the cursor saved", || {
        std::fs::read_to_string(state_dir.join("commands.cursor")).is_ok_and(|c| c.trim() == "1")
    });

    let reply = ask(&socket, &format!(r#"{{"cmd":"sign_in","pupil":"{oak_pupil}"}}"#));
    assert_eq!(reply["ok"], true, "the expired sign_out_all did nothing: {reply}");
    wait_for("the pupil's class profile", || {
        dns.lock().unwrap().iter().any(|l| l == r#"{"cmd":"profile","profile":"oak"}"#)
    });
    let press = ask(&socket, r#"{"cmd":"press"}"#);
    assert_eq!(press["ok"], true);
    // Mr Patel's own PIN, though slate.toml has none; the client's `staff` is not believed.
    assert_eq!(ask(&socket, r#"{"cmd":"unlock"}"#)["ok"], false);
    assert_eq!(ask(&socket, r#"{"cmd":"unlock","pin":"7304"}"#)["ok"], false);
    let unlock = ask(&socket, r#"{"cmd":"unlock","pin":"730418","staff":"s-jones"}"#);
    assert_eq!(unlock["ok"], true, "{unlock}");
    assert!(slated.stop().success());
    let resolved =
        spooled(&state_dir).into_iter().find(|e| e.body.kind() == "report_resolved").unwrap();
    let EventBody::ReportResolved { staff, .. } = resolved.body else { panic!() };
    assert_eq!(staff.as_ref().map(|s| s.as_str()), Some("s-patel"), "whose PIN it was");
    let report = spooled(&state_dir).into_iter().find(|e| e.body.kind() == "report_filed").unwrap();
    let EventBody::ReportFiled { recent_names, .. } = report.body else { panic!() };
    assert_eq!(recent_names, ["seen.example"]);
    let asked = requests.lock().unwrap().clone();
    let list_fetches = asked.iter().filter(|r| *r == "GET /api/v1/device/lists/adult").count();
    assert_eq!(list_fetches, 1, "{asked:?}");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The config from `write_config` with its server port replaced by `port`.
fn with_server_port(text: &str, port: u16) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"http://127.0.0.1:{port}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Lines in a file a counting process appends to.
fn count(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn the_socket_checks_each_peer_and_a_launched_app_is_frozen_and_killed_by_its_cgroup() {
    use slate_ipc::cgroup::{events_say, AppCgroup};
    let cgroup = || {
        AppCgroup::create().unwrap_or_else(|e| {
            panic!("cgroup2 is not writable here, so app cgroups cannot be tested: {e}")
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 15);
    add_staff_pin(&config, "2468", "");
    with_roster(&config, &["p-1"]);
    let slated = Slated::start(&config);

    // A process inside an app cgroup is refused everything, even as root.
    let inside = cgroup();
    let mut cmd = Command::new(SLATECTL);
    cmd.arg("--socket").arg(&socket).arg("status");
    inside.join_before_exec(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("`status` is not allowed from this process"), "{stderr}");
    inside.kill_and_remove().unwrap();
    assert!(slatectl(&socket, &["status"]).status.success(), "outside it, root may");

    assert!(slatectl(&socket, &["sign-in", "p-1"]).status.success());
    // A pid that is not in an app cgroup this peer made is refused.
    let mut outside = Command::new("sleep").arg("300").spawn().unwrap();
    let reply =
        ask(&socket, &format!(r#"{{"cmd":"foreground","app":"paint","pid":{}}}"#, outside.id()));
    assert_eq!(reply["ok"], false, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("not in"), "{reply}");
    outside.kill().unwrap();
    outside.wait().unwrap();

    // An app started the launcher's way: slated (root here) freezes it on a press and kills it
    // at "close app", the whole tree.
    let app = cgroup();
    let counter = dir.path().join("counter");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("( while :; do echo x >> {}; sleep 0.01; done ) & wait", counter.display()));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    app.join_before_exec(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    wait_for("the app counting", || count(&counter) > 2);
    let reply =
        ask(&socket, &format!(r#"{{"cmd":"foreground","app":"paint","pid":{}}}"#, child.id()));
    assert_eq!(reply["ok"], true, "{reply}");
    let events = || std::fs::read_to_string(app.dir.join("cgroup.events")).unwrap();
    assert_eq!(ask(&socket, r#"{"cmd":"press"}"#)["ok"], true);
    wait_for("the app frozen", || events_say(&events(), "frozen") == Some(true));
    let frozen_at = count(&counter);
    // Time passes (a reference counter moves on); the frozen app does not.
    let reference = dir.path().join("reference");
    let mut clock = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("while :; do echo x >> {}; sleep 0.01; done", reference.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("time to pass", || count(&reference) > 20);
    assert_eq!(count(&counter), frozen_at, "frozen: no progress");
    clock.kill().unwrap();
    clock.wait().unwrap();

    let out = slatectl(&socket, &["unlock", "--pin", "2468", "--choice", "close"]);
    assert!(out.status.success(), "{out:?}");
    wait_for("the app's cgroup empty", || events_say(&events(), "populated") == Some(false));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(9), "killed by cgroup.kill");
    app.kill_and_remove().unwrap();
    slated.stop();
}

/// The sound on a press, through the real binary and a real frozen app: slated mutes with
/// `wpctl` before the app is frozen and unmutes only once it is frozen (so the kiosk's spoken
/// reassurance is heard and the app is not). `wpctl` here is a script on PATH that notes each
/// call with the app cgroup's `frozen` state at that moment: the test machine has no PipeWire,
/// and what matters is when slated calls it, which the script sees exactly.
#[test]
fn the_sound_goes_off_before_the_app_is_frozen_and_on_again_only_after() {
    use slate_ipc::cgroup::{events_say, AppCgroup};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (config, socket) = write_config(dir.path(), 16);
    add_staff_pin(&config, "2468", "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replacen("[server]", "[audio]\nmute = \"wpctl\"\n[server]", 1);
    std::fs::write(&config, text).unwrap();
    let app = AppCgroup::create().unwrap_or_else(|e| {
        panic!("cgroup2 is not writable here, so app cgroups cannot be tested: {e}")
    });
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.path().join("wpctl-calls");
    let wpctl = bin.join("wpctl");
    std::fs::write(
        &wpctl,
        format!(
            "#!/bin/sh\necho \"$* $(grep '^frozen' {})\" >> {}\n",
            app.dir.join("cgroup.events").display(),
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wpctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let slated = Slated::start_with_env(&config, &[("PATH", Path::new(&path))]);

    let mut cmd = Command::new("sleep");
    cmd.arg("300").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    app.join_before_exec(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let reply =
        ask(&socket, &format!(r#"{{"cmd":"foreground","app":"paint","pid":{}}}"#, child.id()));
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(ask(&socket, r#"{"cmd":"press"}"#)["ok"], true);
    let lines = || std::fs::read_to_string(&calls).unwrap_or_default();
    wait_for("the sound on again", || lines().lines().count() >= 2);
    let events = std::fs::read_to_string(app.dir.join("cgroup.events")).unwrap();
    assert_eq!(events_say(&events, "frozen"), Some(true), "{events}");
    assert_eq!(
        lines(),
        "set-mute @DEFAULT_AUDIO_SINK@ 1 frozen 0\nset-mute @DEFAULT_AUDIO_SINK@ 0 frozen 1\n",
        "off while the app still ran, on once it was frozen"
    );

    let out = slatectl(&socket, &["unlock", "--pin", "2468", "--choice", "close"]);
    assert!(out.status.success(), "{out:?}");
    wait_for("the app's cgroup empty", || {
        events_say(&std::fs::read_to_string(app.dir.join("cgroup.events")).unwrap(), "populated")
            == Some(false)
    });
    child.wait().unwrap();
    wait_for("the sound on after the close", || lines().lines().count() >= 3);
    assert!(
        lines().lines().nth(2).unwrap().starts_with("set-mute @DEFAULT_AUDIO_SINK@ 0"),
        "{}",
        lines()
    );
    app.kill_and_remove().unwrap();
    slated.stop();
}

/// The update through the real binary: slated checks in soon after start (the test's override of
/// the first check's minutes) with its credential and its image version, fetches the offered
/// bundle, and one whose bytes are not the offered SHA-256 is removed, recorded as given up and
/// reported; nothing is installed.
#[test]
fn slated_checks_for_an_update_and_gives_up_a_bundle_that_is_not_the_one_offered() {
    // Not the SHA-256 of the bytes the server sends.
    let sha = "e03a505dfd7171d6580c13b14bac63e789dee283984be36654d9e0a4dd88d724";
    let offer = format!(r#"{{"v":1,"offer":{{"version":"2.0","sha256":"{sha}","bytes":5}}}}"#);
    let bundle_path = format!("/api/v1/device/update/bundles/{sha}");
    let (port, requests) = fake_server(move |method, target| match (method, target) {
        ("POST", "/api/v1/device/update") => (200, offer.clone().into_bytes()),
        ("GET", t) if t == bundle_path => (200, b"hello".to_vec()),
        ("POST", "/api/v1/events") => (200, br#"{"stored":1,"duplicates":0}"#.to_vec()),
        _ => (503, b"{\"error\":\"not here\"}".to_vec()),
    });
    let dir = tempfile::tempdir().unwrap();
    let (config, _socket) = write_config(dir.path(), 15);
    let text = with_server_port(&std::fs::read_to_string(&config).unwrap(), port);
    std::fs::write(&config, text).unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("credential"), "c-test\n").unwrap();
    let release = dir.path().join("slate-release");
    std::fs::write(&release, "SLATE_VERSION=1.0\n").unwrap();

    let slated = Slated::start_with_env(
        &config,
        &[("SLATE_RELEASE_FILE", &release), ("SLATE_UPDATE_FIRST_CHECK_S", Path::new("0"))],
    );
    let state_file = state_dir.join("update").join("state.json");
    let mut state = serde_json::Value::Null;
    for _ in 0..300 {
        if let Ok(bytes) = std::fs::read(&state_file) {
            state = serde_json::from_slice(&bytes).unwrap();
            if state["failure"].is_object() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        state["given_up"],
        serde_json::json!([{"version": "2.0", "sha256": sha}]),
        "{state}"
    );
    assert_eq!(state["failure"]["version"], "2.0", "{state}");
    let error = state["failure"]["error"].as_str().unwrap();
    assert!(error.contains("SHA-256"), "{error}");
    assert!(state["pending"].is_null(), "{state}");
    let left: Vec<String> = std::fs::read_dir(state_dir.join("update"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["state.json"], "the bundle is removed");
    let seen = requests.lock().unwrap().clone();
    assert!(seen.contains(&"POST /api/v1/device/update".to_owned()), "{seen:?}");
    let fetched = seen.iter().filter(|r| r.contains("/update/bundles/")).count();
    assert_eq!(fetched, 1, "{seen:?}");
    assert!(slated.stop().success());
}
