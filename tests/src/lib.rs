//! Harness for Slate's end-to-end tests: starts the real `slate-server` and `slated` binaries
//! on loopback in temporary directories, and reads what the DSL would see.
//!
//! It owns process start-up, shutdown and waiting; it must not reach any address but 127.0.0.1.
//! The binaries are the ones `cargo build --workspace --bins` put beside the test executable
//! (scripts/test builds them first).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait may take before the test fails: a guard against hangs, not a speed target.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The path of one of the workspace's binaries, built beside this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// Polls `check` until it returns `Some`, or fails the test after [`PATIENCE`] naming `what`.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `command` with stdout piped, stderr to `log`, and returns it with a channel of its
/// stdout lines (read on a thread so the child never blocks on a full pipe).
fn spawn_with_lines(mut command: Command, log: &Path) -> (Child, mpsc::Receiver<String>) {
    let stderr = std::fs::File::create(log).expect("create log");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stdout line starting with `prefix` and returns the rest of it.
fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str, log: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.trim().to_string();
                }
            }
            Err(_) => panic!(
                "no `{prefix}` line on stdout; stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

/// The next line starting with `prefix` within `patience`, if any (for optional lines).
fn try_line(lines: &mpsc::Receiver<String>, prefix: &str, patience: Duration) -> Option<String> {
    let deadline = Instant::now() + patience;
    loop {
        let line = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()?;
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(rest.trim().to_string());
        }
    }
}

/// A real `slate-server` process with its own data directory.
pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    pub staff_key: String,
    /// The self-signed certificate devices must trust, when serving HTTPS.
    pub certificate: Option<PathBuf>,
    /// The key devices verify the signed policy with (`[server] public_key`), when the server
    /// printed one.
    pub policy_key: Option<String>,
    tls: bool,
}

impl Server {
    /// Starts a server on a free loopback port, over HTTPS (self-signed) or plain HTTP.
    pub fn start(data_dir: &Path, tls: bool) -> Server {
        Self::start_on(data_dir, "127.0.0.1:0", tls)
    }

    fn start_on(data_dir: &Path, listen: &str, tls: bool) -> Server {
        let mut command = Command::new(binary("slate-server"));
        command.args(["serve", "--data-dir"]).arg(data_dir).args(["--listen", listen]);
        if !tls {
            command.arg("--plain-http");
        }
        let log = data_dir.with_extension("stderr.log");
        let (child, lines) = spawn_with_lines(command, &log);
        let url = wait_for_line(&lines, "slate-server listening on ", &log);
        let dsl = wait_for_line(&lines, "DSL page: ", &log);
        let staff_key = dsl.split("key=").nth(1).expect("staff key in DSL link").to_string();
        let certificate = tls.then(|| PathBuf::from(wait_for_line(&lines, "certificate: ", &log)));
        let policy_key = try_line(&lines, "policy key: ", Duration::from_secs(2));
        let server = Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            url,
            staff_key,
            certificate,
            policy_key,
            tls,
        };
        wait_until("the server to answer /healthz", || {
            server.client().get(format!("{}/healthz", server.url)).send().ok().filter(|r| r.status().is_success())
        });
        server
    }

    /// Kills the server (as a power cut would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same address, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let listen = self.url.split("://").nth(1).expect("address").to_string();
        *self = Self::start_on(&self.data_dir.clone(), &listen, self.tls);
    }

    /// Runs a `slate-server` subcommand on this server's data and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new(binary("slate-server"));
        command.arg(args[0]).arg("--data-dir").arg(&self.data_dir).args(&args[1..]);
        String::from_utf8(run_ok(command).stdout).expect("utf-8 output")
    }

    pub fn enrollment_token(&self, device: u16) -> String {
        self.cli(&["enrollment-token", "--device", &device.to_string()]).trim().to_string()
    }

    pub fn add_pupil(&self, id: &str, name: &str, class: &str) {
        self.cli(&["pupil", "add", "--id", id, "--name", name, "--class", class]);
    }

    /// An HTTP client that trusts this server's certificate and nothing else is needed.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).no_proxy();
        if let Some(cert) = &self.certificate {
            let pem = std::fs::read(cert).expect("read certificate");
            builder = builder
                .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("certificate")]);
        }
        builder.build().expect("client")
    }

    /// A staff page's HTML, as the DSL's browser gets it.
    pub fn staff_page(&self, path: &str) -> String {
        let response = self
            .client()
            .get(format!("{}{path}", self.url))
            .header("Cookie", format!("slate_staff={}", self.staff_key))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.text().expect("page text")
    }

    /// The reports the server holds, newest first, from the staff JSON API.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.staff_page("/api/v1/staff/reports?limit=1000")).expect("reports JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion and fails the test, showing its output, if it did not succeed.
pub fn run_ok(mut command: Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// How a test device reaches its server.
pub struct DeviceSetup<'a> {
    pub number: u16,
    pub server_url: &'a str,
    pub certificate: Option<&'a Path>,
    pub enrollment_token: Option<&'a str>,
}

/// A real `slated` process with its own state directory, config and control socket.
pub struct Device {
    child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
}

impl Device {
    /// Writes a config for a device whose button is the control socket (the fake button).
    pub fn configure(dir: &Path, setup: &DeviceSetup) -> Device {
        std::fs::create_dir_all(dir).expect("device dir");
        let socket = dir.join("control.sock");
        let mut toml = format!(
            "device_number = {}\nschool = \"Test Primary\"\nstate_dir = {:?}\ncontrol_socket = {:?}\n\n\
             [server]\nurl = {:?}\n",
            setup.number,
            dir.join("state"),
            socket,
            setup.server_url
        );
        if let Some(cert) = setup.certificate {
            toml += &format!("ca_certificate = {cert:?}\n");
        }
        if let Some(token) = setup.enrollment_token {
            toml += &format!("enrollment_token = {token:?}\n");
        }
        // Retry fast so tests of "server back" do not wait out a real backoff.
        toml += "\n[upload]\nretry_min_ms = 50\nretry_max_ms = 200\nheartbeat_s = 3600\n\n[button]\nsource = \"none\"\n";
        let config = dir.join("slate.toml");
        std::fs::write(&config, toml).expect("write config");
        Device { child: None, dir: dir.to_path_buf(), config, socket }
    }

    /// Adds a setting line to the device's config: at the top (`table` None, e.g.
    /// `dns_socket = "…"`) or in a table that `configure` wrote (`Some("server")`, e.g. the
    /// server's `public_key`). Call before `start`.
    pub fn add_setting(&self, table: Option<&str>, line: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = match table {
            None => format!("{line}\n{text}"),
            Some(table) => {
                let header = format!("[{table}]\n");
                let at = text.find(&header).unwrap_or_else(|| panic!("no [{table}] in the config"));
                let at = at + header.len();
                format!("{}{line}\n{}", &text[..at], &text[at..])
            }
        };
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Starts `slated` and waits for it to say it is ready.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "device already running");
        let mut command = Command::new(binary("slated"));
        command.arg("--config").arg(&self.config).env("RUST_LOG", "info");
        let log = self.dir.join(format!("slated-{}.stderr.log", Instant::now().elapsed().as_nanos()));
        let (child, lines) = spawn_with_lines(command, &log);
        wait_for_line(&lines, "slated ready", &log);
        self.child = Some(child);
    }

    /// Kills `slated` with SIGKILL: no chance to flush or tidy anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL slated");
            child.wait().expect("reap slated");
        }
    }

    /// Runs `slatectl` against this device and returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut command = Command::new(binary("slatectl"));
        command.arg("--socket").arg(&self.socket).args(args);
        String::from_utf8(run_ok(command).stdout).expect("utf-8 output")
    }

    /// Presses the report button and returns the id of the report once it is safely spooled.
    pub fn press(&self) -> String {
        let out = self.ctl(&["press"]);
        out.split_whitespace().last().expect("report id").to_string()
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ctl(&["--json", "status"])).expect("status JSON")
    }

    /// Waits until every spooled event has been delivered.
    pub fn wait_until_drained(&self) {
        wait_until("the spool to drain", || (self.status()["spool_pending"] == 0).then_some(()));
    }

    pub fn spool_file(&self) -> PathBuf {
        self.dir.join("state/spool/events.log")
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.kill();
    }
}
