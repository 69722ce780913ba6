//! The real [`Launcher`](crate::app::Launcher): the only way anything starts on the kiosk.
//!
//! - Web apps: Debian's Chromium in kiosk mode with [`crate::browser`]'s managed policy and a
//!   fresh profile under the runtime dir (a tmpfs), controlled over `--remote-debugging-pipe`
//!   by [`crate::cdp`]: every document request is checked against the URL lists, and the page's
//!   URL and title go to slated as `foreground`. The policy reaches Chromium without touching
//!   the real `/etc`: the browser starts in its own mount namespace in which the session's
//!   directory is bind-mounted over `/etc/chromium` (a user namespace when not root), so two
//!   browsers never see each other's policy and nothing is left behind.
//! - Native apps: the command with a fresh `HOME` under the runtime dir.
//!
//! Each app gets its own cgroup, `slate-app-<launcher pid>-<seq>` directly under the launcher's
//! ([`slate_ipc::cgroup::AppCgroup`]): made before the spawn, joined by the child before exec,
//! its `cgroup.freeze` and `cgroup.kill` writable by the launcher's group so that slated (in that
//! group) freezes it on a report and kills it at "close app", whatever the app's processes do.
//! No cgroup, no app: the error says why. When the app exits, for whatever reason, everything
//! left in its cgroup is killed, the cgroup and its directory are removed and
//! [`Launcher::poll_exit`] says so, so the kiosk returns home.
//!
//! Pure parts: [`web_plan`], [`load_url_lists`]'s parsing. The rest is the imperative shell.

use crate::app::{AppExit, Launcher};
use crate::browser::{kiosk_args, managed_policy, profile_dir, BrowserError, MANAGED_POLICY_FILE};
use crate::cdp::{self, Connection, Report};
use crate::native_focus::{self, AppInFront, NativeFocus};
use crate::text_focus::{self, FocusTracker, SharedFocus, TextFocus};
use serde_json::{json, Value};
use slate_ipc::cgroup::{AppCgroup, CgroupError};
use slate_ipc::control::Request;
use slate_protocol::device::ListFile;
use slate_protocol::kiosk::{App, AppKind};
use slate_protocol::url_lists::{parse_salt, UrlList, UrlLists};
use slate_protocol::FilterLayer;
use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The URL-layer lists applied when present (the contract's illegal-content URL lists).
pub const URL_LISTS: [&str; 2] = ["iwf", "ctiru"];

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error("app {app:?}: {what}")]
    Refused { app: String, what: String },
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("URL lists: {0}")]
    Lists(String),
    #[error(transparent)]
    Cdp(#[from] cdp::CdpError),
    #[error("the app's own cgroup cannot be made, so it does not start: {0}")]
    Cgroup(#[from] CgroupError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Io { what, path: path.to_owned(), source }
}

/// What slated hears from the launcher. The real one talks to the control socket; tests record.
pub trait Reporter: Send {
    fn app_opened(&mut self, app: &str);
    fn foreground(&mut self, app: &str, url: Option<&str>, title: Option<&str>, pid: u32);
    fn filter_blocked(&mut self, target: &str, rule: &str, list: &str);
    fn tell_teacher(&mut self, url: &str, app: &str);
}

/// slated's control socket.
#[derive(Debug, Clone)]
pub struct SocketReporter {
    pub socket: PathBuf,
}

impl SocketReporter {
    fn send(&self, request: Request) {
        if let Err(e) = crate::link::call(&self.socket, &request) {
            // The command only, never the URL or title (logs carry no URLs).
            tracing::warn!(cmd = request.kind(), error = %e, "telling slated failed");
        }
    }
}

impl Reporter for SocketReporter {
    fn app_opened(&mut self, app: &str) {
        self.send(Request::AppOpened { app: app.to_owned() });
    }
    fn foreground(&mut self, app: &str, url: Option<&str>, title: Option<&str>, pid: u32) {
        self.send(Request::Foreground {
            app: app.to_owned(),
            url: url.map(str::to_owned),
            title: title.map(str::to_owned),
            pid: Some(pid),
        });
    }
    fn filter_blocked(&mut self, target: &str, rule: &str, list: &str) {
        self.send(Request::FilterBlocked {
            layer: FilterLayer::Url,
            target: target.to_owned(),
            rule: rule.to_owned(),
            list: list.to_owned(),
        });
    }
    fn tell_teacher(&mut self, url: &str, app: &str) {
        self.send(Request::TellTeacher { url: url.to_owned(), app: Some(app.to_owned()) });
    }
}

/// Records what the launcher told slated, one line each (tests).
#[derive(Debug, Clone, Default)]
pub struct RecordingReporter {
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Reporter for RecordingReporter {
    fn app_opened(&mut self, app: &str) {
        self.log.lock().unwrap().push(format!("app_opened {app}"));
    }
    fn foreground(&mut self, app: &str, url: Option<&str>, title: Option<&str>, _pid: u32) {
        self.log.lock().unwrap().push(format!(
            "foreground {app} {} {}",
            url.unwrap_or("-"),
            title.unwrap_or("-")
        ));
    }
    fn filter_blocked(&mut self, target: &str, rule: &str, list: &str) {
        self.log.lock().unwrap().push(format!("filter_blocked url {target} {rule} {list}"));
    }
    fn tell_teacher(&mut self, url: &str, app: &str) {
        self.log.lock().unwrap().push(format!("tell_teacher {url} {app}"));
    }
}

/// Where things are and how Chromium is started.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Chromium's binary (not Debian's wrapper script, whose default flags we do not want).
    pub chromium: PathBuf,
    /// A tmpfs for per-session directories (`XDG_RUNTIME_DIR`).
    pub runtime_dir: PathBuf,
    /// slated's state dir: URL lists are read from `<state_dir>/policy/`.
    pub state_dir: PathBuf,
    pub wayland: bool,
    /// Where Chromium reads its policy directory tree from (`/etc/chromium`); the session's own
    /// tree is mounted there in the browser's namespace.
    pub policy_mount: PathBuf,
    /// Added before the kiosk arguments (tests: `--headless=new`, `--no-sandbox`, ...).
    pub extra_args: Vec<OsString>,
    /// Extra environment for the browser (tests: the `DISPLAY` of their X server).
    pub env: Vec<(OsString, OsString)>,
    /// Certificates the browser trusts besides the public ones (base64 DER, see
    /// [`crate::browser::trusted_certificates`]).
    pub trusted_certificates: Vec<String>,
    /// The school's proxy as Chromium's `ProxySettings` policy (slate-network's
    /// `chromium-policy.json`, see [`crate::browser::network_policy`]); `None`: direct.
    pub proxy_settings: Option<Value>,
    /// What no app may see: each is covered by an empty read-only tmpfs in the app's own mount
    /// namespace. Apps run as the kiosk user, which needs group `slate` (slated's socket, the
    /// kiosk policy) for slate-ui; hiding Slate's files and sockets and the input devices is
    /// what keeps an app from using them. Paths that do not exist are skipped.
    pub hidden: Vec<PathBuf>,
    /// The on-screen keyboard's height in pixels when there is one (`slate-ui --keyboard`):
    /// while a text field has the focus the page is fitted above it.
    pub keyboard_height: Option<u32>,
}

impl LaunchConfig {
    pub fn new(runtime_dir: PathBuf, state_dir: PathBuf) -> Self {
        let hidden = vec![state_dir.clone(), PathBuf::from("/dev/input")];
        Self {
            chromium: PathBuf::from("/usr/lib/chromium/chromium"),
            runtime_dir,
            state_dir,
            wayland: std::env::var_os("WAYLAND_DISPLAY").is_some(),
            policy_mount: PathBuf::from("/etc/chromium"),
            extra_args: Vec::new(),
            env: Vec::new(),
            trusted_certificates: Vec::new(),
            proxy_settings: None,
            hidden,
            keyboard_height: None,
        }
    }
}

/// The mount namespace an app starts in: the session's Chromium policy tree mounted over
/// Chromium's policy directory (web apps), and the paths it must not see covered.
struct Namespace {
    policy: Option<(CString, CString)>,
    hidden: Vec<CString>,
}

impl Namespace {
    /// For `config`, with the hidden paths that exist now (a mount needs its mount point).
    fn new(config: &LaunchConfig, policy: Option<(&Path, &Path)>) -> Self {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path");
        Self {
            policy: policy.map(|(src, dst)| (c(src), c(dst))),
            hidden: config.hidden.iter().filter(|p| p.exists()).map(|p| c(p)).collect(),
        }
    }
}

/// Everything needed to start one web app. Pure.
#[derive(Debug, Clone, PartialEq)]
pub struct WebPlan {
    /// The session's directory (removed when the app ends).
    pub session_dir: PathBuf,
    /// Mounted over `/etc/chromium`: holds `policies/managed/slate.json`.
    pub policy_root: PathBuf,
    pub policy_file: PathBuf,
    pub policy: Value,
    pub args: Vec<OsString>,
    pub start_url: String,
}

/// Plans a web app's start: the managed policy, the profile under the runtime dir, the
/// arguments with `--remote-debugging-pipe` first. Pure.
pub fn web_plan(app: &App, config: &LaunchConfig, session: &str) -> Result<WebPlan, LaunchError> {
    let AppKind::Web { start_url, .. } = &app.kind else {
        return Err(BrowserError::NotWeb { app: app.id.clone() }.into());
    };
    let mut policy = managed_policy(app)?;
    if !config.trusted_certificates.is_empty() {
        policy["CACertificates"] = json!(config.trusted_certificates);
    }
    if let Some(proxy) = &config.proxy_settings {
        policy["ProxySettings"] = proxy.clone();
    }
    let session_dir = profile_dir(&config.runtime_dir, session)?;
    let policy_root = session_dir.join("etc-chromium");
    let policy_file = policy_root.join("policies/managed").join(MANAGED_POLICY_FILE);
    let mut args: Vec<OsString> = vec!["--remote-debugging-pipe".into()];
    args.extend(config.extra_args.iter().cloned());
    args.extend(kiosk_args(app, &session_dir.join("profile"), config.wayland)?);
    Ok(WebPlan {
        session_dir,
        policy_root,
        policy_file,
        policy,
        args,
        start_url: start_url.clone(),
    })
}

/// Reads the URL salt and the URL lists (`iwf`, `ctiru`) that slated's `filter.json` names, each
/// from the file its manifest entry names (`slate_ipc::state_dir::open_list`). slated removes a
/// list file only after a new `filter.json` is in force: a named file found gone means that
/// happened between the two reads, and a second read sees the new policy whole. A named list
/// that is still missing is an error (and then no web app starts).
pub fn load_url_lists(state_dir: &Path) -> Result<UrlLists, LaunchError> {
    match read_url_lists(state_dir)? {
        Ok(lists) => Ok(lists),
        Err(_replaced) => read_url_lists(state_dir)?.map_err(LaunchError::Lists),
    }
}

/// [`load_url_lists`] once: `Ok(Err(why))` when a list `filter.json` names is not there.
fn read_url_lists(state_dir: &Path) -> Result<Result<UrlLists, String>, LaunchError> {
    let layout = slate_ipc::state_dir::StateDir::new(state_dir);
    let (salt, manifest) = match std::fs::read(layout.filter_policy()) {
        Ok(bytes) => url_layer_of_bundle(&bytes).map_err(LaunchError::Lists)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Default::default()),
        Err(e) => return Err(io("reading", &layout.filter_policy())(e)),
    };
    let mut lists = Vec::new();
    for name in URL_LISTS {
        let Some(file) = manifest.get(name) else { continue };
        let read = slate_ipc::state_dir::open_list(&layout.lists_dir(), name, file)
            .and_then(std::io::read_to_string);
        match read {
            Ok(text) => lists
                .push(UrlList::parse(name, &text).map_err(|e| LaunchError::Lists(e.to_string()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(format!("list {name} that filter.json names is missing")))
            }
            Err(e) => return Err(io("reading", &layout.list_file(file))(e)),
        }
    }
    Ok(Ok(UrlLists { salt, lists }))
}

/// The `url_salt` and the `lists` manifest of a filter policy bundle (slated verified the
/// bundle before writing it; each entry is checked again before its name is used as a path).
fn url_layer_of_bundle(
    bytes: &[u8],
) -> Result<(Vec<u8>, std::collections::BTreeMap<String, ListFile>), String> {
    let bundle: Value = serde_json::from_slice(bytes).map_err(|e| format!("filter.json: {e}"))?;
    let payload = bundle["payload"].as_str().ok_or("filter.json: field `payload` is missing")?;
    let payload: Value =
        serde_json::from_str(payload).map_err(|e| format!("filter.json payload: {e}"))?;
    let salt = match &payload["url_salt"] {
        Value::Null => Vec::new(),
        Value::String(s) => parse_salt(s).map_err(|e| format!("filter.json payload: {e}"))?,
        _ => return Err("filter.json payload: field `url_salt` is not a string".into()),
    };
    let manifest: std::collections::BTreeMap<String, ListFile> = match &payload["lists"] {
        Value::Null => Default::default(),
        lists => serde_json::from_value(lists.clone())
            .map_err(|e| format!("filter.json payload: field `lists`: {e}"))?,
    };
    for (name, file) in &manifest {
        file.validate(name).map_err(|e| format!("filter.json payload: {e}"))?;
    }
    Ok((salt, manifest))
}

/// A fresh unguessable token (session names, block-page nonces).
pub fn token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the kernel's random numbers");
    hex::encode(bytes)
}

/// Writes the session's policy tree: `<root>/policies/managed/slate.json`, plus Debian's
/// `master_preferences` when it exists (the mount hides the real directory).
fn write_policy(plan: &WebPlan, config: &LaunchConfig) -> Result<(), LaunchError> {
    let managed = plan.policy_file.parent().expect("policy file has a directory");
    std::fs::create_dir_all(managed).map_err(io("creating", managed))?;
    std::fs::write(&plan.policy_file, serde_json::to_vec_pretty(&plan.policy).expect("serialises"))
        .map_err(io("writing", &plan.policy_file))?;
    let prefs = config.policy_mount.join("master_preferences");
    if prefs.exists() {
        let _ = std::fs::copy(&prefs, plan.policy_root.join("master_preferences"));
    }
    Ok(())
}

/// Arranges, in the child between fork and exec: the control pipe on fds 3 and 4, a new
/// session (its own process group), and its own mount namespace (see [`Namespace`]): a user
/// namespace too unless it runs as root. Only async-signal-safe calls on data prepared before
/// the fork.
fn prepare_child(cmd: &mut Command, pipe_in: i32, pipe_out: i32, namespace: Namespace) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    use nix::sys::stat::Mode;
    use nix::unistd::{dup2, setsid};
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let uid_map = format!("{uid} {uid} 1");
    let gid_map = format!("{gid} {gid} 1");
    let paths: [CString; 3] = [
        CString::new("/proc/self/setgroups").unwrap(),
        CString::new("/proc/self/uid_map").unwrap(),
        CString::new("/proc/self/gid_map").unwrap(),
    ];
    // Paths as `CStr`, so that nix passes them on as they are (no allocation after the fork).
    const NONE: Option<&CStr> = None;
    unsafe {
        cmd.pre_exec(move || {
            if pipe_in >= 0 {
                // Move both ends out of the way first, in case either already sits on 3 or 4.
                let a = fcntl(pipe_in, FcntlArg::F_DUPFD_CLOEXEC(10))?;
                let b = fcntl(pipe_out, FcntlArg::F_DUPFD_CLOEXEC(10))?;
                dup2(a, 3)?;
                dup2(b, 4)?;
            }
            setsid()?;
            if uid.is_root() {
                unshare(CloneFlags::CLONE_NEWNS)?;
            } else {
                unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
                let write = |path: &CString, text: &[u8]| -> std::io::Result<()> {
                    let fd = nix::fcntl::open(path.as_c_str(), OFlag::O_WRONLY, Mode::empty())?;
                    let written = nix::unistd::write(BorrowedFd::borrow_raw(fd), text);
                    let _ = nix::unistd::close(fd);
                    written?;
                    Ok(())
                };
                write(&paths[0], b"deny")?;
                write(&paths[1], uid_map.as_bytes())?;
                write(&paths[2], gid_map.as_bytes())?;
            }
            mount(NONE, c"/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)?;
            if let Some((src, dst)) = &namespace.policy {
                mount(
                    Some(src.as_c_str()),
                    dst.as_c_str(),
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )?;
            }
            for path in &namespace.hidden {
                mount(
                    Some(c"slate-hidden"),
                    path.as_c_str(),
                    Some(c"tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some(c"size=4k,mode=0555"),
                )?;
            }
            Ok(())
        });
    }
}

/// One running Chromium with its control channel (also used directly by tests and the
/// idle-memory benchmark).
pub struct Browser {
    pub child: Child,
    pub conn: Arc<Connection>,
    pub plan: WebPlan,
    events: Option<mpsc::Receiver<Value>>,
    /// Every process of this browser.
    pub cgroup: Arc<AppCgroup>,
}

impl Browser {
    /// Writes the plan's policy and starts Chromium in its namespace with the control pipe.
    pub fn start(plan: WebPlan, config: &LaunchConfig) -> Result<Self, LaunchError> {
        write_policy(&plan, config)?;
        let home = plan.session_dir.join("home");
        std::fs::create_dir_all(&home).map_err(io("creating", &home))?;
        let (browser_reads, to_browser) = std::io::pipe().map_err(io("pipe", &plan.session_dir))?;
        let (from_browser, browser_writes) =
            std::io::pipe().map_err(io("pipe", &plan.session_dir))?;
        let mut cmd = Command::new(&config.chromium);
        cmd.args(&plan.args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let namespace = Namespace::new(
            config,
            Some((plan.policy_root.as_path(), config.policy_mount.as_path())),
        );
        let cgroup = AppCgroup::create()?;
        // First: the child is in its cgroup before it makes namespaces or runs anything.
        cgroup.join_before_exec(&mut cmd);
        prepare_child(&mut cmd, browser_reads.as_raw_fd(), browser_writes.as_raw_fd(), namespace);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                remove_cgroup(&cgroup);
                return Err(io("starting", &config.chromium)(e));
            }
        };
        // The child holds its own copies now.
        drop(browser_reads);
        drop(browser_writes);
        let (conn, events) = Connection::start(to_browser, from_browser);
        Ok(Self { child, conn, plan, events: Some(events), cgroup: Arc::new(cgroup) })
    }

    /// The events not yet taken (for a guard thread, or a test that drives CDP itself).
    pub fn take_events(&mut self) -> mpsc::Receiver<Value> {
        self.events.take().expect("events taken once")
    }

    /// Attaches to the browser's (first) page; returns the CDP session id. For tests and
    /// benchmarks that drive the page themselves.
    pub fn attach_page(&self) -> Result<String, LaunchError> {
        let timeout = Duration::from_secs(20);
        for _ in 0..100 {
            let targets = self.conn.call("Target.getTargets", json!({}), None, timeout)?;
            let page = targets["targetInfos"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["type"] == "page" && !cdp::is_browser_ui(t)))
                .and_then(|t| t["targetId"].as_str().map(str::to_owned));
            if let Some(target) = page {
                let reply = self.conn.call(
                    "Target.attachToTarget",
                    json!({"targetId": target, "flatten": true}),
                    None,
                    timeout,
                )?;
                return Ok(reply["sessionId"].as_str().unwrap_or_default().to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LaunchError::Refused { app: "browser".into(), what: "no page target appeared".into() })
    }

    /// Evaluates `expression` in the page of `session` and returns its value.
    pub fn eval(&self, session: &str, expression: &str) -> Result<Value, LaunchError> {
        let reply = self.conn.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            Some(session),
            Duration::from_secs(20),
        )?;
        Ok(reply["result"]["value"].clone())
    }

    /// The page targets open now.
    pub fn pages(&self) -> Result<Vec<Value>, LaunchError> {
        let targets =
            self.conn.call("Target.getTargets", json!({}), None, Duration::from_secs(20))?;
        Ok(targets["targetInfos"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter(|t| t["type"] == "page" && !cdp::is_browser_ui(t))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Kills every process of the browser (its cgroup), removes the cgroup and the session's
    /// directory.
    pub fn stop(&mut self) {
        kill(&self.cgroup);
        let _ = self.child.wait();
        remove_cgroup(&self.cgroup);
        remove_dir(&self.plan.session_dir);
    }
}

/// Kills every process in an app's cgroup (the waiter then sees the app end).
fn kill(cgroup: &AppCgroup) {
    if let Err(e) = slate_ipc::cgroup::write_file(&cgroup.dir, "cgroup.kill", "1") {
        tracing::warn!(error = %e, "killing an app's cgroup failed");
    }
}

/// Kills what is left in an ended app's cgroup and removes it.
fn remove_cgroup(cgroup: &AppCgroup) {
    if let Err(e) = cgroup.kill_and_remove() {
        tracing::warn!(error = %e, "removing an app's cgroup failed");
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, "removing a session directory failed");
        }
    }
}

/// How often the guard checks that the app's page is still in the kiosk window (Chromium
/// sends no event when a page moves to another window).
const WINDOW_CHECK: Duration = Duration::from_millis(500);

/// Runs the guard over a browser's events until it closes the pipe: requests go back to the
/// browser, reports to slated.
pub fn guard_loop(
    conn: Arc<Connection>,
    events: mpsc::Receiver<Value>,
    lists: UrlLists,
    app: String,
    pid: u32,
    reporter: Box<dyn Reporter>,
) {
    guard_loop_with_focus(conn, events, lists, app, pid, reporter, SharedFocus::default(), None)
}

/// As [`guard_loop`], also following the page's text focus into `focus` (starting with
/// nothing focused) and, with a keyboard of `keyboard_height` pixels, fitting the page above it
/// while a field has the focus.
#[allow(clippy::too_many_arguments)]
pub fn guard_loop_with_focus(
    conn: Arc<Connection>,
    events: mpsc::Receiver<Value>,
    lists: UrlLists,
    app: String,
    pid: u32,
    mut reporter: Box<dyn Reporter>,
    focus: SharedFocus,
    keyboard_height: Option<u32>,
) {
    let mut guard = cdp::Guard::new(lists);
    let mut tracker = FocusTracker::default();
    focus.set(TextFocus::Elsewhere);
    let started = std::time::Instant::now();
    for s in cdp::start_requests() {
        let _ = conn.post(&s.method, &s.params, s.session.as_deref());
    }
    let mut last_window_check = started;
    loop {
        let event = match events.recv_timeout(WINDOW_CHECK) {
            Ok(event) => Some(event),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if last_window_check.elapsed() >= WINDOW_CHECK {
            last_window_check = std::time::Instant::now();
            check_window(&conn, &mut guard);
        }
        let Some(mut event) = event else { continue };
        let main_before = guard.main_target().is_some();
        if guard.is_main_load(&event) {
            // Ask for the page's title now that it has loaded (URL and title only); dropped if
            // the page has moved on meanwhile, so a title is never paired with another URL.
            // With no navigation seen (the first page can commit before the guard's Page.enable
            // reaches it), the target's own URL and title, read together, are the pair.
            let loaded = guard.navigated_url().map(str::to_owned);
            if let Some(info) = main_target_info(&conn, &guard)
                .filter(|i| loaded.is_none() || i["url"].as_str() == loaded.as_deref())
            {
                event = target_info_changed(info);
            }
        }
        let mut reports = feed(&conn, &mut guard, &event, started);
        if let Some(focused) = tracker.on_event(&event, guard.main_session()) {
            focus.set(if focused { TextFocus::Field } else { TextFocus::Elsewhere });
            if let Some(height) = keyboard_height {
                fit_page(&conn, &guard, focused, height);
            }
        }
        if !main_before {
            // The app's page, just attached: it may have loaded (and taken its title) before
            // the guard listened, and then says nothing more. Ask once, for a page that has got
            // somewhere (not the blank page it starts paused on).
            if let Some(info) = main_target_info(&conn, &guard)
                .filter(|i| i["url"].as_str().is_some_and(|u| u.starts_with("http")))
            {
                reports.extend(feed(&conn, &mut guard, &target_info_changed(info), started));
            }
        }
        for report in reports {
            match report {
                Report::Foreground { url, title } => {
                    reporter.foreground(&app, Some(&url), Some(&title), pid)
                }
                Report::Blocked { url, list, rule } => reporter.filter_blocked(&url, &rule, &list),
                Report::TellTeacher { url } => reporter.tell_teacher(&url, &app),
            }
        }
    }
}

/// Gives the guard one event, sends what it asks for, and returns its reports.
fn feed(
    conn: &Connection,
    guard: &mut cdp::Guard,
    event: &Value,
    started: std::time::Instant,
) -> Vec<Report> {
    let (sends, reports) = guard.on_event(event, &token(), started.elapsed());
    for s in sends {
        let _ = conn.post(&s.method, &s.params, s.session.as_deref());
    }
    reports
}

/// Fits the app's page above the on-screen keyboard while a field has the focus, or gives it
/// the whole window back.
fn fit_page(conn: &Connection, guard: &cdp::Guard, focused: bool, keyboard_height: u32) {
    let (Some(target), Some(session)) = (guard.main_target(), guard.main_session()) else {
        return;
    };
    let window = conn
        .call(
            "Browser.getWindowForTarget",
            json!({"targetId": target}),
            None,
            Duration::from_secs(5),
        )
        .ok()
        .and_then(|r| {
            let bounds = &r["bounds"];
            Some((bounds["width"].as_u64()? as u32, bounds["height"].as_u64()? as u32))
        });
    let Some(window) = window else {
        tracing::warn!("the browser did not say its window's size: the page is not fitted");
        return;
    };
    let (method, params) = text_focus::viewport_request(focused, window, keyboard_height);
    let _ = conn.post(&method, &params, Some(session));
}

/// The app's page's target info (its URL and title, read together), if it is attached and
/// the browser answers.
fn main_target_info(conn: &Connection, guard: &cdp::Guard) -> Option<Value> {
    let target = guard.main_target()?;
    conn.call("Target.getTargetInfo", json!({"targetId": target}), None, Duration::from_secs(5))
        .ok()
        .map(|r| r["targetInfo"].clone())
}

/// The event Chromium sends when a target's URL or title changes, made from target info.
fn target_info_changed(info: Value) -> Value {
    json!({"method": "Target.targetInfoChanged", "params": {"targetInfo": info}})
}

/// Asks which window the app's page is in and lets the guard decide (the kiosk window, or end
/// the browser).
fn check_window(conn: &Connection, guard: &mut cdp::Guard) {
    let Some(target) = guard.main_target().map(str::to_owned) else { return };
    let reply = conn.call(
        "Browser.getWindowForTarget",
        json!({"targetId": target}),
        None,
        Duration::from_secs(5),
    );
    if let Some(window) = reply.ok().and_then(|r| r["windowId"].as_i64()) {
        if let Some(s) = guard.on_window(window) {
            tracing::warn!("the app's page left the kiosk window: closing the browser");
            let _ = conn.post(&s.method, &s.params, s.session.as_deref());
        }
    }
}

/// What is running now.
struct Running {
    app: String,
    pid: u32,
    dir: PathBuf,
    cgroup: Arc<AppCgroup>,
    /// Which source says where typing goes in it.
    kind: AppInFront,
    /// [`NativeFocus::mark`] when it was opened.
    native_mark: u64,
}

/// The real launcher.
pub struct ProcessLauncher {
    pub config: LaunchConfig,
    make_reporter: Box<dyn Fn() -> Box<dyn Reporter>>,
    running: Option<Running>,
    exits: (mpsc::Sender<AppExit>, mpsc::Receiver<AppExit>),
    /// Where typing goes in the running web app, as its guard follows it.
    focus: SharedFocus,
    /// Where typing goes in a native app, as the compositor's input method tells.
    native_focus: NativeFocus,
}

impl ProcessLauncher {
    pub fn new(config: LaunchConfig, make_reporter: Box<dyn Fn() -> Box<dyn Reporter>>) -> Self {
        Self {
            config,
            make_reporter,
            running: None,
            exits: mpsc::channel(),
            focus: SharedFocus::default(),
            native_focus: NativeFocus::unknown(),
        }
    }

    /// Follows native apps' text focus through `native` (`slate-ui --keyboard`); without it a
    /// native app's focus is unknown and the keyboard stays up over it.
    pub fn follow_native_focus(&mut self, native: NativeFocus) {
        self.native_focus = native;
    }

    fn start(&mut self, app: &App) -> Result<(), LaunchError> {
        let session = token();
        let mut reporter = (self.make_reporter)();
        // Before the app starts: a field it focuses at once counts as its own.
        let native_mark = self.native_focus.mark();
        let (child, dir, cgroup, kind) = match &app.kind {
            AppKind::Web { start_url, .. } => {
                // Fail closed: without readable URL lists no web app starts.
                let lists = load_url_lists(&self.config.state_dir)?;
                if let slate_protocol::url_lists::UrlDecision::Block(b) = lists.check(start_url) {
                    return Err(LaunchError::Refused {
                        app: app.id.clone(),
                        what: format!("start URL is on list {}", b.list),
                    });
                }
                let plan = web_plan(app, &self.config, &session)?;
                let dir = plan.session_dir.clone();
                let mut browser = match Browser::start(plan, &self.config) {
                    Ok(b) => b,
                    Err(e) => {
                        remove_dir(&dir);
                        return Err(e);
                    }
                };
                let events = browser.take_events();
                let pid = browser.child.id();
                let conn = browser.conn.clone();
                let guard_reporter = (self.make_reporter)();
                let id = app.id.clone();
                // A fresh value: a guard of an earlier browser, still ending, cannot touch it.
                self.focus = SharedFocus::default();
                self.focus.set(TextFocus::Elsewhere);
                let focus = self.focus.clone();
                let keyboard_height = self.config.keyboard_height;
                std::thread::spawn(move || {
                    guard_loop_with_focus(
                        conn,
                        events,
                        lists,
                        id,
                        pid,
                        guard_reporter,
                        focus,
                        keyboard_height,
                    )
                });
                (browser.child, dir, browser.cgroup, AppInFront::Web)
            }
            AppKind::Native { command } => {
                // Its focus comes from the compositor (`native_focus`); a guard of an earlier
                // browser, still ending, keeps to its own value.
                self.focus = SharedFocus::default();
                let (program, args) =
                    command.split_first().ok_or_else(|| LaunchError::Refused {
                        app: app.id.clone(),
                        what: "field `command` is empty".into(),
                    })?;
                let dir = self.config.runtime_dir.join("slate-apps").join(&session);
                let home = dir.join("home");
                std::fs::create_dir_all(&home).map_err(io("creating", &home))?;
                let cgroup = match AppCgroup::create() {
                    Ok(cgroup) => cgroup,
                    Err(e) => {
                        remove_dir(&dir);
                        return Err(e.into());
                    }
                };
                let mut cmd = Command::new(program);
                cmd.args(args).env("HOME", &home).current_dir(&home).stdin(Stdio::null());
                cgroup.join_before_exec(&mut cmd);
                prepare_child(&mut cmd, -1, -1, Namespace::new(&self.config, None));
                match cmd.spawn() {
                    Ok(child) => (child, dir, Arc::new(cgroup), AppInFront::Native),
                    Err(e) => {
                        remove_cgroup(&cgroup);
                        remove_dir(&dir);
                        return Err(io("starting", Path::new(program))(e));
                    }
                }
            }
        };
        let pid = child.id();
        reporter.app_opened(&app.id);
        reporter.foreground(&app.id, None, None, pid);
        self.running = Some(Running {
            app: app.id.clone(),
            pid,
            dir: dir.clone(),
            cgroup: cgroup.clone(),
            kind,
            native_mark,
        });
        let exits = self.exits.0.clone();
        let id = app.id.clone();
        std::thread::spawn(move || {
            let mut child = child;
            let status = child.wait();
            // Whatever the app left running in its cgroup goes too, then the cgroup.
            remove_cgroup(&cgroup);
            remove_dir(&dir);
            let code = status.ok().and_then(|s| s.code());
            let _ = exits.send(AppExit { app: id, pid, code });
        });
        Ok(())
    }
}

impl Launcher for ProcessLauncher {
    fn launch(&mut self, app: &App) {
        if self.running.is_some() {
            // One app at a time: the kiosk shows one thing.
            self.stop();
        }
        if let Err(e) = self.start(app) {
            tracing::warn!(app = %app.id, error = %e, "app did not start");
            let _ = self.exits.0.send(AppExit { app: app.id.clone(), pid: 0, code: None });
        }
    }

    fn text_focus(&self) -> TextFocus {
        let (app, mark) =
            self.running.as_ref().map_or((AppInFront::Nothing, 0), |r| (r.kind, r.native_mark));
        native_focus::app_focus(app, self.focus.get(), self.native_focus.get(mark))
    }

    fn poll_exit(&mut self) -> Option<AppExit> {
        let exit = self.exits.1.try_recv().ok()?;
        if self.running.as_ref().is_some_and(|r| r.pid == exit.pid) {
            self.running = None;
        }
        Some(exit)
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            tracing::info!(app = %running.app, "stopping app");
            kill(&running.cgroup);
            // The waiter thread removes the directory; this covers a waiter that is gone.
            std::thread::sleep(Duration::from_millis(100));
            remove_dir(&running.dir);
        }
    }
}

impl Drop for ProcessLauncher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};

    fn config(dir: &Path) -> LaunchConfig {
        LaunchConfig {
            chromium: "/bin/false".into(),
            runtime_dir: dir.to_owned(),
            state_dir: dir.join("state"),
            wayland: true,
            policy_mount: "/etc/chromium".into(),
            extra_args: vec!["--headless=new".into()],
            env: Vec::new(),
            trusted_certificates: Vec::new(),
            proxy_settings: None,
            hidden: vec![dir.join("state"), "/dev/input".into()],
            keyboard_height: None,
        }
    }

    #[test]
    fn the_school_authority_is_trusted_only_when_there_is_one() {
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        let app = sample.apps.iter().find(|a| a.needs_internet()).unwrap();
        let mut config = config(Path::new("/run/user/9"));
        let plan = web_plan(app, &config, "abc123").unwrap();
        assert!(plan.policy.get("CACertificates").is_none(), "public authorities only");
        config.trusted_certificates = vec!["AQID".into()];
        let plan = web_plan(app, &config, "abc123").unwrap();
        assert_eq!(plan.policy["CACertificates"], json!(["AQID"]));
    }

    #[test]
    fn the_school_proxy_goes_into_the_policy_only_when_there_is_one() {
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        let app = sample.apps.iter().find(|a| a.needs_internet()).unwrap();
        let mut config = config(Path::new("/run/user/9"));
        assert!(web_plan(app, &config, "abc").unwrap().policy.get("ProxySettings").is_none());
        let proxy = json!({"ProxyMode": "fixed_servers", "ProxyServer": "http://p.example:3128"});
        config.proxy_settings = Some(proxy.clone());
        assert_eq!(web_plan(app, &config, "abc").unwrap().policy["ProxySettings"], proxy);
    }

    #[test]
    fn the_web_plan() {
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        let app = sample.apps.iter().find(|a| a.needs_internet()).unwrap();
        let plan = web_plan(app, &config(Path::new("/run/user/9")), "abc123").unwrap();
        assert_eq!(plan.session_dir, Path::new("/run/user/9/slate-browser/abc123"));
        assert_eq!(
            plan.policy_file,
            Path::new("/run/user/9/slate-browser/abc123/etc-chromium/policies/managed/slate.json")
        );
        assert_eq!(plan.args[0], "--remote-debugging-pipe");
        assert_eq!(plan.args[1], "--headless=new");
        assert!(plan
            .args
            .contains(&OsString::from("--user-data-dir=/run/user/9/slate-browser/abc123/profile")));
        assert_eq!(plan.policy["URLBlocklist"][0], "*");
        let native = sample.apps.iter().find(|a| !a.needs_internet()).unwrap();
        assert!(web_plan(native, &config(Path::new("/x")), "abc").is_err());
        assert!(web_plan(app, &config(Path::new("/x")), "../up").is_err());
    }

    #[test]
    fn url_lists_from_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        // Nothing there: no lists, no salt.
        let lists = load_url_lists(state).unwrap();
        assert!(lists.lists.is_empty());
        std::fs::create_dir_all(state.join("policy/lists")).unwrap();
        let entry = slate_protocol::url_lists::salted_hash(&[10, 11], "https://a.example/x");
        let iwf = format!("url-sha256:{entry}\n");
        let (adult, ctiru) = ("not.a.url.list\n", "garbage\n");
        let write_policy = |lists: &[(&str, &str)]| {
            let manifest: serde_json::Map<String, Value> = lists
                .iter()
                .map(|(name, text)| (name.to_string(), json!(ListFile::of(text.as_bytes()))))
                .collect();
            let payload = json!({"v": 1, "url_salt": "0a0b", "lists": manifest}).to_string();
            std::fs::write(
                state.join("policy/filter.json"),
                json!({"v": 1, "key_id": "k", "payload": payload, "signature": "x"}).to_string(),
            )
            .unwrap();
            for (_, text) in lists {
                let stored = ListFile::of(text.as_bytes()).file_name();
                std::fs::write(state.join("policy/lists").join(stored), text).unwrap();
            }
        };
        write_policy(&[("iwf", &iwf), ("adult", adult)]);
        let lists = load_url_lists(state).unwrap();
        assert_eq!(lists.salt, [10, 11]);
        assert_eq!(lists.lists.len(), 1, "only iwf and ctiru are URL lists");
        assert!(matches!(
            lists.check("https://a.example/x"),
            slate_protocol::url_lists::UrlDecision::Block(_)
        ));
        // A broken URL list is refused whole (and then no web app starts).
        write_policy(&[("iwf", &iwf), ("ctiru", ctiru)]);
        assert!(matches!(load_url_lists(state), Err(LaunchError::Lists(m)) if m.contains("ctiru")));
        // A named list that is not there (twice) is refused too: never read as no list.
        std::fs::remove_file(
            state.join("policy/lists").join(ListFile::of(ctiru.as_bytes()).file_name()),
        )
        .unwrap();
        assert!(
            matches!(load_url_lists(state), Err(LaunchError::Lists(m)) if m.contains("ctiru") && m.contains("missing"))
        );
        std::fs::write(state.join("policy/filter.json"), "{}").unwrap();
        assert!(
            matches!(load_url_lists(state), Err(LaunchError::Lists(m)) if m.contains("payload"))
        );
    }

    /// A native app "paint" that runs `script` in /bin/sh.
    fn shell_app(script: String) -> App {
        App {
            id: "paint".into(),
            title: "Paint".into(),
            symbol: "brush".into(),
            colour: 1,
            kind: AppKind::Native { command: vec!["/bin/sh".into(), "-c".into(), script] },
        }
    }

    #[test]
    fn a_native_app_gets_a_fresh_home_that_goes_when_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let app = shell_app(format!(
            "echo \"$HOME\" > {}; pwd >> {}; exit 3",
            out.display(),
            out.display()
        ));
        let reporter = RecordingReporter::default();
        let log = reporter.log.clone();
        let mut launcher =
            ProcessLauncher::new(config(dir.path()), Box::new(move || Box::new(reporter.clone())));
        launcher.launch(&app);
        let exit = (0..100)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(50));
                launcher.poll_exit()
            })
            .expect("the app's exit is reported");
        assert_eq!((exit.app.as_str(), exit.code), ("paint", Some(3)));
        let written = std::fs::read_to_string(&out).unwrap();
        let home = written.lines().next().unwrap();
        assert!(home.starts_with(&format!("{}/slate-apps/", dir.path().display())), "{home}");
        assert_eq!(written.lines().nth(1), Some(home));
        assert!(!Path::new(home).exists(), "the session's home is removed");
        let log = log.lock().unwrap();
        assert_eq!(log[0], "app_opened paint");
        assert_eq!(log[1], "foreground paint - -");
    }

    #[test]
    fn an_app_sees_none_of_slates_files_nor_the_input_devices() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("policy")).unwrap();
        std::fs::write(state.join("policy/kiosk.json"), "{}").unwrap();
        let out = dir.path().join("out");
        let app = shell_app(format!(
            "{{ echo state; ls -A {state}; echo input; ls -A /dev/input; echo write; \
               touch {state}/x 2>&1 && echo written; }} > {out}.tmp; mv {out}.tmp {out}",
            state = state.display(),
            out = out.display()
        ));
        let mut launcher = ProcessLauncher::new(
            config(dir.path()),
            Box::new(|| Box::new(RecordingReporter::default())),
        );
        launcher.launch(&app);
        let exit = (0..100)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(50));
                launcher.poll_exit()
            })
            .expect("the app's exit is reported");
        assert_eq!(exit.code, Some(0), "the app ran in its namespace");
        let seen = std::fs::read_to_string(&out).unwrap();
        let mut sections = seen.split("\n").filter(|l| !l.is_empty());
        assert_eq!(sections.next(), Some("state"));
        assert_eq!(sections.next(), Some("input"), "the state dir looks empty: {seen}");
        assert_eq!(sections.next(), Some("write"), "so does /dev/input: {seen}");
        let refusal = sections.next().unwrap_or_default();
        assert!(refusal.contains("Read-only file system"), "and cannot be written: {seen}");
        assert!(state.join("policy/kiosk.json").exists() && !state.join("x").exists());
    }

    #[test]
    fn a_native_app_runs_in_its_own_cgroup_which_goes_with_all_it_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (cg_file, pid_file) = (dir.path().join("cg"), dir.path().join("pid"));
        let app = shell_app(format!(
            "cat /proc/self/cgroup > {cg}.tmp; mv {cg}.tmp {cg}; sleep 300 & echo $! > {pid}.tmp; mv {pid}.tmp {pid}; sleep 300",
            cg = cg_file.display(),
            pid = pid_file.display()
        ));
        let mut launcher = ProcessLauncher::new(
            config(dir.path()),
            Box::new(|| Box::new(RecordingReporter::default())),
        );
        launcher.launch(&app);
        let wait = |what: &str, ok: &dyn Fn() -> bool| {
            for _ in 0..2000 {
                if ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("timed out waiting: {what}");
        };
        wait("the app started (needs a writable cgroup2)", &|| pid_file.exists());
        assert!(launcher.poll_exit().is_none(), "the app started: its cgroup could be made");
        let own = slate_ipc::cgroup::cgroup_of("self").unwrap();
        let app_cg =
            slate_ipc::cgroup::unified_path(&std::fs::read_to_string(&cg_file).unwrap()).unwrap();
        let expected_parent = format!("{}/", own.trim_end_matches('/'));
        let name = app_cg.strip_prefix(&expected_parent).expect("directly under the launcher's");
        assert!(name.starts_with(&format!("slate-app-{}-", std::process::id())), "{app_cg}");
        let hierarchy = slate_ipc::cgroup::Hierarchy::discover().unwrap();
        let cg_dir = hierarchy.dir(&app_cg).unwrap();
        for file in ["cgroup.freeze", "cgroup.kill"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cg_dir.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o020, 0o020, "{file} is group-writable: {mode:o}");
        }
        let left: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        let procs = std::fs::read_to_string(cg_dir.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == left.to_string()), "its child is in it too");

        launcher.stop();
        wait("the app's cgroup is removed", &|| !cg_dir.exists());
        // Gone, or a zombie waiting for its new parent to reap it: not running.
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rfind(')').and_then(|i| stat[i + 2..].chars().next())
        };
        assert!(
            matches!(state(left), None | Some('Z' | 'X')),
            "what the app left running was killed with it: {:?}",
            state(left)
        );
    }

    #[test]
    fn a_web_app_that_cannot_start_is_reported_as_ended() {
        let dir = tempfile::tempdir().unwrap();
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        let app = sample.apps.iter().find(|a| a.needs_internet()).unwrap();
        let mut cfg = config(dir.path());
        cfg.chromium = dir.path().join("no-such-chromium");
        let mut launcher =
            ProcessLauncher::new(cfg, Box::new(|| Box::new(RecordingReporter::default())));
        launcher.launch(app);
        let exit = launcher.poll_exit().expect("reported at once");
        assert_eq!(exit.app, app.id);
        assert!(!dir
            .path()
            .join("slate-browser")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false));
    }
}
