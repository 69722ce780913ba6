//! Harness for Slate's end-to-end tests: starts the real `slate-server` and `slated` binaries
//! on loopback in temporary directories, and reads what the DSL would see.
//!
//! It owns process start-up, shutdown and waiting; it must not reach any address but 127.0.0.1.
//! The binaries are the ones `cargo build --workspace --bins` put beside the test executable
//! (scripts/test builds them first), or, for a device of another release, that release's own
//! `slated` and `slatectl` ([`Device::of_release`]).

pub mod chromium;
pub mod proxy;

use std::io::{BufRead, BufReader, Write};
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
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
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
pub fn spawn_with_lines(mut command: Command, log: &Path) -> (Child, mpsc::Receiver<String>) {
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
pub fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str, log: &Path) -> String {
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
    /// The session cookie (`__Host-slate_session=…` over HTTPS): a DSL signed in through a
    /// console recovery link (`e2e.dsl`).
    pub staff_cookie: String,
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

    /// Starts a server over plain HTTP on loopback with `config` (`--config`: alerts, say).
    pub fn start_with_config(data_dir: &Path, config: &Path) -> Server {
        Self::start_with(data_dir, "127.0.0.1:0", false, Some(config))
    }

    fn start_on(data_dir: &Path, listen: &str, tls: bool) -> Server {
        Self::start_with(data_dir, listen, tls, None)
    }

    fn start_with(data_dir: &Path, listen: &str, tls: bool, config: Option<&Path>) -> Server {
        let mut command = Command::new(binary("slate-server"));
        command.args(["serve", "--data-dir"]).arg(data_dir).args(["--listen", listen]);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if !tls {
            command.arg("--plain-http");
        }
        let log = data_dir.with_extension("stderr.log");
        let (child, lines) = spawn_with_lines(command, &log);
        let url = wait_for_line(&lines, "slate-server listening on ", &log);
        wait_for_line(&lines, "DSL page: ", &log);
        let certificate = tls.then(|| PathBuf::from(wait_for_line(&lines, "certificate: ", &log)));
        let policy_key = try_line(&lines, "policy key: ", Duration::from_secs(2));
        let mut server = Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            url,
            staff_cookie: String::new(),
            certificate,
            policy_key,
            tls,
        };
        wait_until("the server to answer /healthz", || {
            server
                .client()
                .get(format!("{}/healthz", server.url))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        });
        server.staff_cookie = server.dsl_session();
        server
    }

    /// Signs a DSL in ([`Server::staff_session`]).
    fn dsl_session(&self) -> String {
        self.staff_session("e2e.dsl", "dsl")
    }

    /// Signs a member of staff with `role` in the only way there is without a password: an
    /// account made (or reset) on the console, a one-time recovery link, TOTP set up with the
    /// key the link's page shows. Returns the session cookie (for [`Server::staff_cookie`]).
    pub fn staff_session(&self, username: &str, role: &str) -> String {
        self.cli(&["staff", "add", "--username", username, "--role", role]);
        let out = self.cli(&["staff", "recover", "--username", username, "--url", &self.url]);
        let link = out.lines().find(|l| l.contains("/staff/recover?token=")).expect("a link");
        let token = link.rsplit('=').next().expect("token");
        let client = self.client_without_redirects();
        let page = client.get(link).send().expect("recovery page");
        assert!(page.status().is_success(), "recovery page: {}", page.status());
        let login_cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next();
        let login_cookie = login_cookie.unwrap().to_string();
        let html = page.text().expect("page text");
        let field = |name: &str| {
            let marker = format!(r#"name="{name}" value=""#);
            let start =
                html.find(&marker).unwrap_or_else(|| panic!("no {name} field")) + marker.len();
            html[start..].split('"').next().unwrap().to_string()
        };
        let (secret, csrf) = (field("secret"), field("csrf"));
        let code = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(totp_rs::Secret::try_from_base32(&secret).expect("base32 TOTP secret"))
            .build()
            .expect("TOTP")
            .generate_current()
            .to_string();
        let password = "an e2e test password";
        let form = [
            ("token", token),
            ("secret", &field("secret")),
            ("code", &code),
            ("new", password),
            ("confirm", password),
            ("csrf", &csrf),
        ];
        let signed_in = client
            .post(format!("{}/staff/recover", self.url))
            .header("Cookie", login_cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
            .expect("recovery form");
        assert_eq!(signed_in.status().as_u16(), 303, "recovery: {:?}", signed_in.text());
        signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok()?.split(';').next())
            // `__Host-slate_session` over HTTPS, `slate_session` over plain HTTP on loopback.
            .find(|c| c.starts_with("__Host-slate_session=") || c.starts_with("slate_session="))
            .expect("a session cookie")
            .to_string()
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

    /// Starts the stopped server again on the same address, on another data directory (one a
    /// backup was restored into, on a "new machine").
    pub fn restart_on(&mut self, data_dir: &Path) {
        self.stop();
        let listen = self.url.split("://").nth(1).expect("address").to_string();
        *self = Self::start_on(data_dir, &listen, self.tls);
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

    /// Imports a roster of one pupil as IT does (`roster import`, a CSV), so that the pupil is
    /// in the kiosk policy devices get (sign-in needs the pupil on it). The id is the server's
    /// own: read it from a device's policy with [`Device::pupil_id`].
    pub fn import_pupil(&self, class: &str, first_name: &str, last_name: &str, key_stage: &str) {
        let csv = self.data_dir.with_extension("roster.csv");
        std::fs::write(
            &csv,
            format!("class,first_name,last_name,key_stage\n{class},{first_name},{last_name},{key_stage}\n"),
        )
        .expect("write roster");
        self.cli(&["roster", "import", csv.to_str().expect("utf-8 path")]);
    }

    pub fn add_pupil(&self, id: &str, name: &str, class: &str) {
        self.cli(&["pupil", "add", "--id", id, "--name", name, "--class", class]);
    }

    /// An HTTP client that trusts this server's certificate and nothing else is needed.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut builder =
            reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).no_proxy();
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
            .header("Cookie", &self.staff_cookie)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.text().expect("page text")
    }

    /// The reports the server holds, newest first, from the staff JSON API.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.staff_page("/api/v1/staff/reports?limit=1000"))
            .expect("reports JSON")
    }

    /// How many of the reports the server holds have event id `id` (exactly once is the
    /// promise).
    pub fn report_count(&self, id: &str) -> usize {
        self.reports().iter().filter(|r| r["id"] == id).count()
    }
}

/// IT's age key pair for server backups, made as IT makes it (`age-keygen`): the identity file
/// `dir/name` and its public key (`age1…`).
pub fn age_key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = dir.join(name);
    let mut make = Command::new("age-keygen");
    make.arg("-o").arg(&identity);
    run_ok(make);
    let mut public = Command::new("age-keygen");
    public.arg("-y").arg(&identity);
    let public = String::from_utf8(run_ok(public).stdout).expect("utf-8 public key");
    (identity, public.trim().to_owned())
}

/// The file names in a server backup, opened by hand as IT would: `age -d | tar --zstd -t`.
pub fn backup_listing(identity: &Path, backup: &Path) -> String {
    let mut open = Command::new("sh");
    open.arg("-c").arg(format!(
        "age -d -i {} {} | tar --zstd -t",
        identity.display(),
        backup.display()
    ));
    String::from_utf8(run_ok(open).stdout).expect("utf-8 listing")
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
    /// The boot id file slated reads instead of the kernel's, once [`Device::set_boot_id`] was
    /// called.
    boot_id_file: Option<PathBuf>,
    /// Where this device's `slated` and `slatectl` are: another release's
    /// ([`Device::of_release`]), or `None` for this workspace's.
    binaries: Option<PathBuf>,
    /// Extra environment for `slated` ([`Device::set_env`]).
    env: Vec<(String, String)>,
    /// The stderr log of the last `slated` started.
    log: Option<PathBuf>,
    /// The board serial slated reads instead of the board's, once [`Device::set_serial`] was
    /// called.
    serial_file: Option<PathBuf>,
}

/// The staff PIN of every test device's `slate.toml`.
pub const STAFF_PIN: &str = "2468";

/// [`STAFF_PIN`]'s argon2id hash, made once by `slatectl hash-pin` as IT makes it.
fn staff_pin_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use std::io::Write;
        let mut child = Command::new(binary("slatectl"))
            .arg("hash-pin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("slatectl hash-pin");
        child.stdin.take().unwrap().write_all(format!("{STAFF_PIN}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().expect("slatectl hash-pin output");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    })
    .clone()
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
        // A staff PIN, as every real device has (without one a held device stays held).
        toml += &format!("\n[staff]\npin_hash = {:?}\n", staff_pin_hash());
        let config = dir.join("slate.toml");
        std::fs::write(&config, toml).expect("write config");
        Device::at(dir, None)
    }

    /// A device in `dir` whose `slate.toml` the caller wrote there (its `control_socket` at
    /// `dir/control.sock`), run with the `slated` and `slatectl` in `binaries`: another
    /// release's programs, with that release's own config format.
    pub fn of_release(dir: &Path, binaries: &Path) -> Device {
        for name in ["slated", "slatectl"] {
            let path = binaries.join(name);
            assert!(
                path.exists(),
                "{} is missing (scripts/previous-release builds it)",
                path.display()
            );
        }
        Device::at(dir, Some(binaries.to_path_buf()))
    }

    fn at(dir: &Path, binaries: Option<PathBuf>) -> Device {
        Device {
            child: None,
            dir: dir.to_path_buf(),
            config: dir.join("slate.toml"),
            socket: dir.join("control.sock"),
            boot_id_file: None,
            binaries,
            env: Vec::new(),
            log: None,
            serial_file: None,
        }
    }

    /// This device's `slated` or `slatectl`.
    fn program(&self, name: &str) -> PathBuf {
        match &self.binaries {
            Some(dir) => dir.join(name),
            None => binary(name),
        }
    }

    /// From the next start, `slated` runs with `key=value` in its environment (a test hook
    /// such as `SLATE_RELEASE_FILE`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// What the last `slated` started wrote to stderr so far (its log), for failure messages.
    pub fn log_text(&self) -> String {
        self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// Whether the `slated` started last is still running (`false`: it exited, or none runs).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Device `number` in `dir`, with a fresh enrollment token from `server` and the server's
    /// policy key, fetching policy every 10 s: a device whose signed policy will be in force.
    /// Not started (add settings first if needed).
    pub fn following_policy(dir: &Path, server: &Server, number: u16) -> Device {
        let key = server.policy_key.clone().expect("the server prints its policy key");
        let token = server.enrollment_token(number);
        let device = Device::configure(
            dir,
            &DeviceSetup {
                number,
                server_url: &server.url,
                certificate: None,
                enrollment_token: Some(&token),
            },
        );
        device.add_setting(Some("server"), &format!("public_key = {key:?}\npolicy_refresh_s = 10"));
        device
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

    /// A device whose card holds `card` as its `slate.toml` (relative paths: `control_socket`
    /// must be `control.sock`), in `dir`: a class set's one card image.
    pub fn from_card(dir: &Path, card: &str) -> Device {
        std::fs::create_dir_all(dir).expect("device dir");
        let config = dir.join("slate.toml");
        std::fs::write(&config, card).expect("write config");
        Device::at(dir, None)
    }

    /// The [`DeviceSetup`]'s `slate.toml` text with relative paths and no device number: the
    /// same for every card of a class set.
    pub fn class_set_card(server_url: &str, token: &str) -> String {
        format!(
            "school = \"Test Primary\"\nstate_dir = \"state\"\ncontrol_socket = \"control.sock\"\n\n\
             [server]\nurl = {server_url:?}\nenrollment_token = {token:?}\n\n\
             [upload]\nretry_min_ms = 50\nretry_max_ms = 200\nheartbeat_s = 3600\n\n\
             [button]\nsource = \"none\"\n\n[staff]\npin_hash = {:?}\n",
            staff_pin_hash()
        )
    }

    /// From the next start, slated reads `serial` as its board's serial number (a test's PC has
    /// none; slate_daemon::setup::run::SERIAL_FILE_ENV is how tests give one).
    pub fn set_serial(&mut self, serial: &str) {
        let file = self.dir.join("serial-number");
        std::fs::write(&file, serial).expect("write the serial file");
        self.serial_file = Some(file);
    }

    /// Starts `slated` and waits for it to say it is ready.
    pub fn start(&mut self) {
        self.start_until("slated ready");
    }

    /// Starts `slated` and waits for the line starting with `line` (`slated setup`: a device
    /// with no number showing IT's setup screen). The rest of its output is read until it ends.
    pub fn start_until(&mut self, line: &str) -> mpsc::Receiver<String> {
        assert!(self.child.is_none(), "device already running");
        let mut command = Command::new(self.program("slated"));
        command.arg("--config").arg(&self.config).env("RUST_LOG", "info");
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(file) = &self.boot_id_file {
            // slate_daemon::clock::BOOT_ID_FILE_ENV: read only in tests.
            command.env("SLATE_BOOT_ID_FILE", file);
        }
        if let Some(file) = &self.serial_file {
            command.env("SLATE_SERIAL_FILE", file);
        }
        let log =
            self.dir.join(format!("slated-{}.stderr.log", Instant::now().elapsed().as_nanos()));
        let (child, lines) = spawn_with_lines(command, &log);
        self.log = Some(log.clone());
        wait_for_line(&lines, line, &log);
        self.child = Some(child);
        lines
    }

    /// Waits until the device holds a signed policy from the server and at least one of its
    /// lists (what slate-dns then filters with).
    pub fn wait_for_policy_and_lists(&self) {
        let lists = self.dir.join("state/policy/lists");
        wait_until("the policy and its list installed on the device", || {
            let stored = std::fs::read_dir(&lists).is_ok_and(|mut files| files.any(|f| f.is_ok()));
            (self.status().get("policy_issued_at").is_some() && stored).then_some(())
        });
    }

    /// Runs `slatectl --json` with `args` (and `stdin`) against this device and returns slated's
    /// reply, whether it said ok or not.
    pub fn ctl_json(&self, args: &[&str], stdin: &str) -> serde_json::Value {
        use std::io::Write;
        let mut child = Command::new(self.program("slatectl"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--json")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("slatectl");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().expect("slatectl output");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("slatectl {args:?}: {e}: {out:?}"))
    }

    /// From the next start, slated is in the boot `id` (a UUID as the kernel writes it): a test
    /// cannot reboot the machine it runs on, so this is how a restarted device gets a new boot.
    pub fn set_boot_id(&mut self, id: &str) {
        let file = self.dir.join("boot_id");
        std::fs::write(&file, format!("{id}\n")).expect("write the boot id file");
        self.boot_id_file = Some(file);
    }

    /// Kills `slated` with SIGKILL: no chance to flush or tidy anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL slated");
            child.wait().expect("reap slated");
        }
    }

    /// Runs `slatectl` against this device: its stdout, or what went wrong (exit status, stdout
    /// and stderr), for a test that names the failing step itself.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(self.program("slatectl"));
        command.arg("--socket").arg(&self.socket).args(args);
        let output = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
        let (stdout, stderr) =
            (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(stdout.into_owned())
        } else {
            Err(format!("slatectl {} failed ({}): {stdout}{stderr}", args.join(" "), output.status))
        }
    }

    /// Runs `slatectl` against this device and returns its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut command = Command::new(self.program("slatectl"));
        command.arg("--socket").arg(&self.socket).args(args);
        String::from_utf8(run_ok(command).stdout).expect("utf-8 output")
    }

    /// A member of staff unlocks the held device with [`STAFF_PIN`], given on standard input
    /// (never on the command line, where other users could read it).
    pub fn unlock(&self) -> String {
        self.try_unlock(STAFF_PIN).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A member of staff unlocks the held device with `pin`, given on standard input: slatectl's
    /// stdout, or what went wrong.
    pub fn try_unlock(&self, pin: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(self.program("slatectl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(["unlock", "--pin-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("slatectl unlock: {e}"))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(format!("{pin}\n").as_bytes()).map_err(|e| format!("PIN not sent: {e}"))?;
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| format!("slatectl unlock: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!("slatectl unlock failed ({}): {stdout}{stderr}", out.status))
        }
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

    /// A file in the device's state directory (its data partition).
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.dir.join("state").join(name)
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join("state/spool")
    }

    /// The spool's segments (`events-<seq>.log`), oldest first.
    pub fn spool_segments(&self) -> Vec<PathBuf> {
        let mut segments: Vec<PathBuf> = std::fs::read_dir(self.spool_dir())
            .expect("the spool directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("events-") && name.ends_with(".log")
            })
            .collect();
        segments.sort();
        segments
    }

    /// Every segment's text, oldest first (acknowledged records included).
    pub fn spool_text(&self) -> String {
        self.spool_segments()
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("a spool segment"))
            .collect()
    }

    /// Every file of the spool as it is now, for [`Device::restore_spool`].
    pub fn snapshot_spool(&self) -> Vec<(PathBuf, Vec<u8>)> {
        std::fs::read_dir(self.spool_dir())
            .expect("the spool directory")
            .map(|e| e.expect("a directory entry").path())
            .map(|p| {
                let bytes = std::fs::read(&p).expect("a spool file");
                (p, bytes)
            })
            .collect()
    }

    /// Puts the spool back exactly as `snapshot` had it (slated stopped).
    pub fn restore_spool(&self, snapshot: &[(PathBuf, Vec<u8>)]) {
        for entry in std::fs::read_dir(self.spool_dir()).expect("the spool directory") {
            std::fs::remove_file(entry.expect("a directory entry").path()).expect("removed");
        }
        for (path, bytes) in snapshot {
            std::fs::write(path, bytes).expect("restored");
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Percent-encodes a form (`application/x-www-form-urlencoded`).
fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

impl Server {
    /// [`Server::client`] that hands back redirects instead of following them.
    fn client_without_redirects(&self) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(cert) = &self.certificate {
            let pem = std::fs::read(cert).expect("read certificate");
            builder = builder
                .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("certificate")]);
        }
        builder.build().expect("client")
    }

    /// Submits a staff form as the DSL's browser would: reads `page` for its
    /// CSRF token, posts `fields` to `action` and returns the status (redirects not followed).
    pub fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> u16 {
        self.submit_answer(page, action, fields).0
    }

    /// [`Server::submit`], with the answer's body (a refused form's page says why).
    pub fn submit_answer(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let html = self.staff_page(page);
        let marker = r#"name="csrf" value=""#;
        let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF field on {page}"));
        let csrf = html[start + marker.len()..].split('"').next().expect("csrf value");
        let mut form = fields.to_vec();
        form.push(("csrf", csrf));
        let response = self
            .client_without_redirects()
            .post(format!("{}{action}", self.url))
            .header("Cookie", &self.staff_cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
            .unwrap_or_else(|e| panic!("POST {action}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().unwrap_or_default())
    }
}

impl Device {
    /// The payload of a signed policy slated installed (`"kiosk"` or `"filter"`), as JSON.
    /// The id of the pupil called `first_name` in the kiosk policy in force.
    pub fn pupil_id(&self, first_name: &str) -> String {
        let kiosk = self.policy_payload("kiosk");
        kiosk["classes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|class| class["pupils"].as_array().into_iter().flatten())
            .find(|pupil| pupil["first_name"] == first_name)
            .and_then(|pupil| pupil["id"].as_str())
            .unwrap_or_else(|| panic!("no pupil {first_name} in the kiosk policy: {kiosk}"))
            .to_owned()
    }

    pub fn policy_payload(&self, which: &str) -> serde_json::Value {
        let path = self.dir.join("state/policy").join(format!("{which}.json"));
        let bundle: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read policy bundle"))
                .expect("bundle JSON");
        serde_json::from_str(bundle["payload"].as_str().expect("payload text"))
            .expect("payload JSON")
    }
}

/// A real `slate-dns` process on a free loopback port, reading slated's policy directory.
pub struct SlateDns {
    child: Option<Child>,
    /// Where it answers DNS, UDP and TCP.
    pub addr: std::net::SocketAddr,
    /// Its own socket (recent, profile, reload).
    pub socket: PathBuf,
}

impl SlateDns {
    /// Starts slate-dns for `device` (its policy files, and its control socket for blocked
    /// attempts), forwarding to `upstream`, with `public_key` to verify the filter policy.
    /// `socket` must be the path the device's `dns_socket` setting names.
    pub fn start(
        device: &Device,
        socket: &Path,
        upstream: std::net::SocketAddr,
        public_key: &str,
    ) -> SlateDns {
        let policy = device.dir.join("state/policy");
        let mut command = Command::new(binary("slate-dns"));
        command
            .args(["--listen", "127.0.0.1:0", "--upstream", &upstream.to_string()])
            .args(["--public-key", public_key])
            .arg("--policy")
            .arg(policy.join("filter.json"))
            .arg("--lists")
            .arg(policy.join("lists"))
            .arg("--socket")
            .arg(socket)
            .arg("--control-socket")
            .arg(&device.socket)
            .env("RUST_LOG", "info");
        // Its log goes to stderr, plain lines (not a terminal): the bound address is in the
        // "listening" line. Every line is also kept in `log`, and read to the end so slate-dns
        // never blocks on a full pipe.
        let log = device.dir.join("slate-dns.stderr.log");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let mut file = std::fs::File::create(&log).expect("create log");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line: String = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "slate-dns did not say where it listens; stderr:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
            assert!(!line.contains('\u{1b}'), "plain lines, no colour codes: {line:?}");
            if line.contains("DNS filter listening") {
                let addr = line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("addr="))
                    .unwrap_or_else(|| panic!("no addr= in {line:?}"));
                break addr.parse().unwrap_or_else(|e| panic!("{addr:?}: {e}"));
            }
        };
        wait_until("slate-dns's socket", || socket.exists().then_some(()));
        SlateDns { child: Some(child), addr, socket: socket.to_path_buf() }
    }
}

impl Drop for SlateDns {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a DNS server answered to one A query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The response code: 0 NOERROR, 3 NXDOMAIN, 5 REFUSED.
    pub rcode: u8,
    /// The A records in the answer section.
    pub addresses: Vec<std::net::Ipv4Addr>,
}

/// Sends one plain UDP query for `name`'s A record to `server` (loopback) and reads the answer
/// (hickory-proto, as slate-dns itself), retrying a lost datagram.
pub fn dns_query(server: std::net::SocketAddr, name: &str) -> DnsAnswer {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    assert!(server.ip().is_loopback(), "tests only talk to loopback");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    socket.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let id: u16 = 0x5a7e;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).expect("a DNS name"), RecordType::A));
    let query = message.to_vec().expect("an encodable query");
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 1500];
    let len = loop {
        socket.send_to(&query, server).expect("send query");
        match socket.recv(&mut buf) {
            Ok(len) if len >= 12 && buf[..2] == id.to_be_bytes() => break len,
            _ => assert!(Instant::now() < deadline, "no DNS answer from {server} for {name}"),
        }
    };
    let answer = Message::from_vec(&buf[..len])
        .unwrap_or_else(|e| panic!("malformed answer ({e}): {:?}", &buf[..len]));
    DnsAnswer {
        rcode: answer.metadata.response_code.low(),
        addresses: answer
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    }
}
