//! Shared by the kiosk browser tests: a small HTTP site on 127.0.0.1, and Chromium started the
//! way `slate_ui::launcher` starts it (its plan, its namespace-mounted managed policy, its
//! control pipe and guard), headless.

#![allow(dead_code)]

use serde_json::{json, Value};
use slate_protocol::kiosk::{App, AppKind};
use slate_ui::launcher::{
    guard_loop_with_focus, load_url_lists, web_plan, Browser, LaunchConfig, Reporter,
};
use slate_ui::text_focus::SharedFocus;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts the test site; returns its port. Paths under `/app/` are the app's own site; anything
/// else is "outside".
pub fn serve() -> u16 {
    serve_logged().0
}

/// Every request line's host and path the test site was asked for (`Host` header + path).
pub type Requests = Arc<Mutex<Vec<String>>>;

/// As [`serve`], also recording each request as `host path`, so a test can show that a
/// request never reached the network.
pub fn serve_logged() -> (u16, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests: Requests = Arc::default();
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let mut cookie = String::new();
                let mut host = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if line.to_ascii_lowercase().starts_with("cookie:") {
                        cookie = line[7..].trim().to_owned();
                    }
                    if line.to_ascii_lowercase().starts_with("host:") {
                        host = line[5..].trim().to_owned();
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(format!("{host} {path}"));
                let path = path.split('?').next().unwrap_or("/");
                if let Some((kind, body)) = binary(path) {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                    return;
                }
                let (headers, body): (&str, String) = match path {
                    "/app/set" => (
                        "Set-Cookie: sid=first-session; Path=/; Max-Age=86400\r\n",
                        page("Set", ""),
                    ),
                    "/app/echo" => {
                        let has = if cookie.contains("sid=") { "cookie:yes" } else { "cookie:no" };
                        ("", page(has, ""))
                    }
                    "/app/download" => (
                        "Content-Disposition: attachment; filename=\"slate-download.bin\"\r\n",
                        "0123456789".repeat(100),
                    ),
                    "/app/input" => ("", page("Input", "<input id=i autofocus>")),
                    // The whole screen in one colour, a text field in another along its bottom
                    // edge (where an on-screen keyboard comes up): see tests/onscreen_keyboard.
                    "/app/type" => (
                        "",
                        page(
                            "Type",
                            "<style>html,body{margin:0;height:100%;background:#ffee00}</style>\
                             <input id=t style='position:fixed;left:0;bottom:10px;width:100%;height:60px;\
                             border:0;background:#0000ff;color:#fff;font-size:30px'>",
                        ),
                    ),
                    // A big button at the top left, where a test clicks (see `Kiosk::click`).
                    "/app/popup" => ("", page("Popup", &button("window.open('/app/page')"))),
                    "/app/dialogs" => (
                        "",
                        page("Dialogs", &button("for (let i = 0; i < 30; i++) alert(i)")),
                    ),
                    "/app/file" => (
                        "",
                        page(
                            "File",
                            "<input type=file id=f style='position:fixed;left:0;top:0;width:300px;height:200px' \
                             oncancel=\"document.title='cancelled'\" onchange=\"document.title='chosen'\">",
                        ),
                    ),
                    "/app/links" => (
                        "",
                        page(
                            "Links",
                            "<a id=l href='/app/listed' style='position:fixed;left:0;top:0;width:300px;height:200px;display:block'>a link</a>",
                        ),
                    ),
                    "/app/install" => ("", install_page()),
                    "/app/pdf" => (
                        "",
                        page(
                            "Worksheet",
                            "<embed src='/app/sheet.pdf' type='application/pdf' style='position:fixed;inset:0;width:100%;height:100%'>",
                        ),
                    ),
                    p if p.starts_with("/app/") => {
                        ("", page(&format!("App {p}"), "<p>app page</p>"))
                    }
                    _ => ("", page("Outside", "<p>outside page</p>")),
                };
                let kind =
                    if path == "/app/download" { "application/octet-stream" } else { "text/html" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (port, requests)
}

/// The test site's files that are not HTML: (content type, body).
fn binary(path: &str) -> Option<(&'static str, Vec<u8>)> {
    Some(match path {
        "/app/manifest.json" => (
            "application/manifest+json",
            json!({
                "name": "Reading app", "short_name": "Reading",
                "start_url": "/app/install", "scope": "/app/", "id": "/app/install",
                "display": "standalone", "background_color": "#2266aa", "theme_color": "#2266aa",
                "icons": [
                    {"src": "/app/icon-192.png", "sizes": "192x192", "type": "image/png"},
                    {"src": "/app/icon-512.png", "sizes": "512x512", "type": "image/png"}
                ]
            })
            .to_string()
            .into_bytes(),
        ),
        "/app/icon-192.png" => ("image/png", png(192)),
        "/app/icon-512.png" => ("image/png", png(512)),
        // A service worker with a fetch handler: what older Chromium asked of an installable
        // app (harmless where it is not needed).
        "/app/sw.js" => (
            "text/javascript",
            b"self.addEventListener('fetch', e => e.respondWith(fetch(e.request)));".to_vec(),
        ),
        "/app/sheet.pdf" => ("application/pdf", pdf()),
        _ => return None,
    })
}

/// An installable web app's page (manifest, icons, service worker) with an "Install our app"
/// button over the top left 300x200 pixels, as an approved site may have one. The title says
/// how far an install got: "Install" (loaded), "ready" (service worker running), "installable"
/// (Chromium offered the install: `beforeinstallprompt`), then after a click "no prompt" (never
/// offered), "choice accepted|dismissed" or "refused <error>", and "installed".
fn install_page() -> String {
    r#"<!doctype html><html><head><title>Install</title>
<link rel="manifest" href="/app/manifest.json"><link rel="icon" href="/app/icon-192.png">
<script>
let offer = null;
addEventListener('beforeinstallprompt', e => { e.preventDefault(); offer = e; document.title = 'installable'; });
addEventListener('appinstalled', () => { document.title = 'installed'; });
navigator.serviceWorker.register('/app/sw.js', {scope: '/app/'});
navigator.serviceWorker.ready.then(() => { if (!offer) document.title = 'ready'; });
async function install() {
  if (!offer) { document.title = 'no prompt'; return; }
  try { document.title = 'prompting'; offer.prompt(); const c = await offer.userChoice; offer = null; document.title = 'choice ' + c.outcome; }
  catch (e) { document.title = 'refused ' + e.name; }
}
</script></head><body>
<button id=b onclick="install()" style='position:fixed;left:0;top:0;width:300px;height:200px'>Install our app</button>
</body></html>"#
        .to_owned()
}

/// A `size`-pixel square PNG of one colour: written out by hand (stored deflate blocks, CRC-32,
/// Adler-32), so the test site needs no image library.
pub fn png(size: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    // Rows of filter byte 0 then RGB.
    let row: Vec<u8> = std::iter::once(0).chain([0x22, 0x66, 0xaa].repeat(size as usize)).collect();
    let raw = row.repeat(size as usize);
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A one-page PDF with a line of text ("Worksheet 1"), written out by hand with a correct
/// cross-reference table, so the test site needs no PDF library.
pub fn pdf() -> Vec<u8> {
    let text = "BT /F1 36 Tf 72 700 Td (Worksheet 1) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        table.push_str(&format!("{offset:010} 00000 n \n"));
    }
    table.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.extend_from_slice(table.as_bytes());
    out
}

/// A button over the top left 300x200 pixels that runs `script` and then counts its clicks in
/// the title ("clicked 1", "clicked 2", ...).
fn button(script: &str) -> String {
    format!(
        "<button id=b style='position:fixed;left:0;top:0;width:300px;height:200px' \
         onclick=\"{script}; this.dataset.n = (+this.dataset.n || 0) + 1; document.title = 'clicked ' + this.dataset.n\">go</button>"
    )
}

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>")
}

/// A web app as the kiosk policy describes it (apps are https only).
pub fn app() -> App {
    App {
        id: "reading".into(),
        title: "Reading".into(),
        symbol: "book".into(),
        colour: 0,
        kind: AppKind::Web {
            start_url: "https://app.example/app/start".into(),
            sites: vec!["https://app.example/app".into()],
            camera: false,
        },
    }
}

pub struct Kiosk {
    pub browser: Browser,
    pub session: String,
    pub start: String,
    pub port: u16,
    /// Every target the browser announced (created or changed), as `targetInfo`s.
    pub targets: Arc<Mutex<Vec<Value>>>,
    /// Where typing goes in the page, as the guard follows it.
    pub focus: SharedFocus,
    _dir: tempfile::TempDir,
}

/// Starts Chromium with the launcher's plan for [`app`], pointed at the test site: the
/// generated policy is used as is, except that the app's https site and start URL are
/// replaced by the same paths on the local http site (tests cannot serve the real site).
pub fn start(port: u16, state_dir: Option<&Path>, reporter: Box<dyn Reporter>) -> Kiosk {
    start_on(port, state_dir, reporter, None)
}

/// An X server of its own (Xvfb) for a test that needs real keyboard events.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        // Xvfb picks a free display itself and writes its number on fd 1 (tests run in
        // parallel, so guessing one would race).
        let mut child = std::process::Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb (apt package xvfb) runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let number: u32 = line.trim().parse().expect("Xvfb says its display number");
        Xvfb { child, display: format!(":{number}") }
    }

    /// Presses keys as a person would (XTEST events through the X server), e.g. `ctrl+t`.
    pub fn key(&self, keys: &str) {
        let status = std::process::Command::new("xdotool")
            .args(["key", keys])
            .env("DISPLAY", &self.display)
            .status()
            .expect("xdotool (apt package xdotool) runs");
        assert!(status.success(), "xdotool key {keys}");
    }

    /// Waits until a Chromium window is mapped and gives it the keyboard focus.
    pub fn focus_browser(&self) {
        let found = std::process::Command::new("timeout")
            .args([
                "20",
                "xdotool",
                "search",
                "--sync",
                "--onlyvisible",
                "--class",
                "chromium",
                "windowfocus",
                "--sync",
            ])
            .env("DISPLAY", &self.display)
            .status()
            .expect("xdotool runs");
        assert!(found.success(), "a browser window appeared");
    }

    /// Focuses a Chromium window if one is mapped (does not wait).
    pub fn focus_browser_if_any(&self) {
        let _ = std::process::Command::new("xdotool")
            .args(["search", "--onlyvisible", "--class", "chromium", "windowfocus"])
            .env("DISPLAY", &self.display)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    pub fn type_text(&self, text: &str) {
        let status = std::process::Command::new("xdotool")
            .args(["type", text])
            .env("DISPLAY", &self.display)
            .status()
            .expect("xdotool runs");
        assert!(status.success());
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// As [`start_at`] (headless), with `proxy` as the managed policy's `ProxySettings`, as
/// slate-ui puts the school's proxy there.
pub fn start_proxied(host: &str, port: u16, proxy: Value) -> Kiosk {
    let edit = move |policy: &mut Value| policy["ProxySettings"] = proxy.clone();
    let reporter = Box::new(slate_ui::launcher::RecordingReporter::default());
    launch_at(host, port, None, Some(reporter), None, Some(&edit))
}

/// As [`start`], with a real window on `display` (X11) instead of headless.
pub fn start_on(
    port: u16,
    state_dir: Option<&Path>,
    reporter: Box<dyn Reporter>,
    display: Option<&str>,
) -> Kiosk {
    launch(port, state_dir, Some(reporter), display)
}

/// The control: the same Chromium with the same flags but an empty policy and no guard, so a
/// test can show that what the launcher refuses would otherwise have worked.
pub fn start_unguarded(port: u16, display: &str) -> Kiosk {
    launch(port, None, None, Some(display))
}

/// As [`start`], with the app's site on `host` (such as `localhost`, whose subdomains Chromium
/// also sends to 127.0.0.1).
pub fn start_at(host: &str, port: u16, reporter: Box<dyn Reporter>) -> Kiosk {
    launch_at(host, port, None, Some(reporter), None, None)
}

/// As [`start_on`], with the launcher's policy changed by `edit` first (a test that shows
/// what the guard does where a policy line does not hold).
pub fn start_edited(
    port: u16,
    reporter: Box<dyn Reporter>,
    display: &str,
    edit: &dyn Fn(&mut Value),
) -> Kiosk {
    launch_at("127.0.0.1", port, None, Some(reporter), Some(display), Some(edit))
}

fn launch(
    port: u16,
    state_dir: Option<&Path>,
    reporter: Option<Box<dyn Reporter>>,
    display: Option<&str>,
) -> Kiosk {
    launch_at("127.0.0.1", port, state_dir, reporter, display, None)
}

fn launch_at(
    host: &str,
    port: u16,
    state_dir: Option<&Path>,
    reporter: Option<Box<dyn Reporter>>,
    display: Option<&str>,
    edit: Option<&dyn Fn(&mut Value)>,
) -> Kiosk {
    launch_full(host, port, state_dir, reporter, display, edit, None, None)
}

#[allow(clippy::too_many_arguments)]
fn launch_full(
    host: &str,
    port: u16,
    state_dir: Option<&Path>,
    reporter: Option<Box<dyn Reporter>>,
    display: Option<&str>,
    edit: Option<&dyn Fn(&mut Value)>,
    wayland: Option<&Wayland>,
    keyboard_height: Option<u32>,
) -> Kiosk {
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = state_dir.map(Path::to_owned).unwrap_or_else(|| dir.path().join("state"));
    let mut config = LaunchConfig::new(dir.path().to_owned(), state.clone());
    config.wayland = wayland.is_some();
    let mut flags = vec!["--no-sandbox"];
    match (display, wayland) {
        (_, Some(w)) => {
            // As on the device: Wayland (`--ozone-platform=wayland` from the launcher's own
            // arguments) and Chromium's sandbox on.
            config.env.push(("XDG_RUNTIME_DIR".into(), w.runtime.clone().into()));
            config.env.push(("WAYLAND_DISPLAY".into(), w.socket.clone().into()));
            flags.clear();
        }
        (Some(d), None) => {
            config.env.push(("DISPLAY".into(), d.into()));
            flags.insert(0, "--ozone-platform=x11");
        }
        (None, None) => flags.insert(0, "--headless=new"),
    }
    config.extra_args = flags
        .into_iter()
        .chain([
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .map(Into::into)
        .collect();
    let session = slate_ui::launcher::token();
    let mut plan = web_plan(&app(), &config, &session).unwrap();
    if let Some(w) = wayland {
        // Chromium as the unprivileged user, as the kiosk runs it: `setpriv` after the
        // launcher's namespace and policy mount (made as root), so the session's profile and
        // home must be that user's.
        config.chromium = PathBuf::from("/usr/bin/setpriv");
        let mut args: Vec<std::ffi::OsString> = vec![
            format!("--reuid={}", w.uid).into(),
            format!("--regid={}", w.gid).into(),
            "--init-groups".into(),
            "/usr/lib/chromium/chromium".into(),
        ];
        args.append(&mut plan.args);
        plan.args = args;
        w.give(dir.path(), &plan.session_dir);
    }
    let site = format!("http://{host}:{port}/app");
    let start = format!("{site}/start");
    // The launcher's own URL filters for the local http site (exactly this host, port and path).
    let (allow, block) = slate_ui::browser::url_lists(&[site]).unwrap();
    plan.policy["URLAllowlist"] = json!(allow);
    plan.policy["URLBlocklist"] = json!(block);
    plan.policy["HomepageLocation"] = json!(start);
    plan.policy["RestoreOnStartupURLs"] = json!([start]);
    *plan.args.last_mut().unwrap() = start.clone().into();
    if reporter.is_none() {
        plan.policy = json!({});
    }
    if let Some(edit) = edit {
        edit(&mut plan.policy);
    }
    let lists = load_url_lists(&state).unwrap();
    let mut browser = Browser::start(plan, &config).unwrap();
    let all = browser.take_events();
    // Every target the browser announces, on its way to the guard: a test can then show that
    // something (a print preview) never appeared, not only that it is gone now.
    let targets: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = targets.clone();
    let (to_guard, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in all {
            if matches!(
                event["method"].as_str(),
                Some("Target.targetCreated" | "Target.targetInfoChanged")
            ) {
                seen.lock().unwrap().push(event["params"]["targetInfo"].clone());
            }
            let _ = to_guard.send(event);
        }
    });
    let pid = browser.child.id();
    let conn = browser.conn.clone();
    let focus = SharedFocus::default();
    let followed = focus.clone();
    match reporter {
        Some(reporter) => {
            std::thread::spawn(move || {
                guard_loop_with_focus(
                    conn,
                    events,
                    lists,
                    "reading".into(),
                    pid,
                    reporter,
                    followed,
                    keyboard_height,
                )
            });
        }
        None => {
            // Drain events so the pipe never fills.
            std::thread::spawn(move || events.into_iter().for_each(drop));
        }
    }
    let session = browser.attach_page().unwrap();
    let kiosk = Kiosk { browser, session, start, port, targets, focus, _dir: dir };
    kiosk.wait_for(|k| k.href() == k.start, "the start page");
    kiosk
}

impl Kiosk {
    pub fn href(&self) -> String {
        self.browser
            .eval(&self.session, "location.href")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn title(&self) -> String {
        self.browser
            .eval(&self.session, "document.title")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// `Page.navigate`: Ok(errorText or "") or Err(the browser's refusal).
    pub fn navigate(&self, url: &str) -> Result<String, String> {
        self.browser
            .conn
            .call(
                "Page.navigate",
                json!({"url": url}),
                Some(&self.session),
                Duration::from_secs(20),
            )
            .map(|r| r["errorText"].as_str().unwrap_or_default().to_owned())
            .map_err(|e| e.to_string())
    }

    /// Does `act` (a key pressed through the X server) until `ok`, up to 30 s: a key sent
    /// before Chromium's window took the focus is lost, so one attempt can prove nothing.
    pub fn retry_until(&self, mut act: impl FnMut(), ok: impl Fn(&Kiosk) -> bool, what: &str) {
        for _ in 0..30 {
            act();
            for _ in 0..10 {
                if ok(self) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("timed out waiting for {what} (at {:?})", self.href());
    }

    pub fn wait_for(&self, mut ok: impl FnMut(&Kiosk) -> bool, what: &str) {
        // Generous: Chromium starts slowly on a loaded two-core CI machine.
        for _ in 0..300 {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what} (at {:?})", self.href());
    }

    /// Presses a key (with `modifiers`: Alt 1, Ctrl 2, Meta 4, Shift 8) through CDP.
    pub fn key(&self, key: &str, code: &str, vk: u32, modifiers: u32, text: Option<&str>) {
        let mut down = json!({"type": if text.is_some() { "keyDown" } else { "rawKeyDown" }, "modifiers": modifiers,
                              "key": key, "code": code, "windowsVirtualKeyCode": vk});
        if let Some(t) = text {
            down["text"] = json!(t);
        }
        let up = json!({"type": "keyUp", "modifiers": modifiers, "key": key, "code": code, "windowsVirtualKeyCode": vk});
        for params in [down, up] {
            self.browser
                .conn
                .call(
                    "Input.dispatchKeyEvent",
                    params,
                    Some(&self.session),
                    Duration::from_secs(20),
                )
                .unwrap();
        }
    }

    /// A real click (left, middle or right button; `modifiers` as for [`Kiosk::key`]) at a point
    /// of the page, as a pointer would make it: press and release through the browser's input
    /// pipeline, so it counts as a user gesture.
    pub fn click(&self, x: f64, y: f64, button: &str, modifiers: u32) {
        // Not before the page has drawn two frames: a click that arrives earlier can be
        // dropped (seen on a loaded machine, and on Wayland). Bounded: a page under a dialog
        // draws nothing and answers no script.
        let _ = self.browser.conn.call(
            "Runtime.evaluate",
            json!({"expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                   "awaitPromise": true}),
            Some(&self.session),
            Duration::from_secs(5),
        );
        let event = |kind: &str| {
            json!({"type": kind, "x": x, "y": y, "button": button, "clickCount": 1,
                   "modifiers": modifiers})
        };
        self.browser
            .conn
            .call(
                "Input.dispatchMouseEvent",
                event("mousePressed"),
                Some(&self.session),
                Duration::from_secs(20),
            )
            .unwrap();
        // Not waited for: the browser answers once the page has handled the click, which a
        // modal dialog opened by it postpones.
        self.browser
            .conn
            .post("Input.dispatchMouseEvent", &event("mouseReleased"), Some(&self.session))
            .unwrap();
    }

    /// Whether a real click still reaches the page, counted by the page itself (a browser
    /// dialog over the page would take it).
    pub fn takes_clicks(&self) -> bool {
        let count = |k: &Kiosk| {
            k.browser.eval(&k.session, "window.slateClicks ?? -1").ok().and_then(|v| v.as_i64())
        };
        let counting = "if (window.slateClicks === undefined) { window.slateClicks = 0; \
                        addEventListener('mousedown', () => slateClicks++, true); } 1";
        if self.browser.eval(&self.session, counting).is_err() {
            return false;
        }
        let before = count(self);
        // Below the test pages' buttons and links (see `button`).
        self.click(20.0, 400.0, "left", 0);
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            count(self) > before
        })
    }

    /// Whether the app's page runs scripts (a paused renderer does not answer in time).
    pub fn responds(&self) -> bool {
        self.browser
            .conn
            .call(
                "Runtime.evaluate",
                json!({"expression": "6 * 7", "returnByValue": true}),
                Some(&self.session),
                Duration::from_secs(10),
            )
            .is_ok_and(|r| r["result"]["value"] == 42)
    }

    /// The browser window the app's page is in now (`Browser.getWindowForTarget`).
    pub fn window(&self) -> Option<i64> {
        self.browser
            .conn
            .call(
                "Browser.getWindowForTarget",
                json!({}),
                Some(&self.session),
                Duration::from_secs(10),
            )
            .ok()
            .and_then(|r| r["windowId"].as_i64())
    }

    /// The browser window of every page target open now.
    pub fn windows(&self) -> Vec<i64> {
        self.pages()
            .iter()
            .filter_map(|p| {
                let reply = self.browser.conn.call(
                    "Browser.getWindowForTarget",
                    json!({"targetId": p["targetId"]}),
                    None,
                    Duration::from_secs(10),
                );
                reply.ok().and_then(|r| r["windowId"].as_i64())
            })
            .collect()
    }

    /// The app page's title as the browser has it (answers while a dialog is up or the
    /// page's scripts are paused, unlike [`Kiosk::title`]).
    pub fn tab_title(&self) -> String {
        let info = self.browser.conn.call(
            "Target.getTargetInfo",
            json!({}),
            Some(&self.session),
            Duration::from_secs(10),
        );
        info.ok()
            .and_then(|i| i["targetInfo"]["title"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn pages(&self) -> Vec<Value> {
        self.browser.pages().unwrap()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.browser.child.try_wait(), Ok(None))
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        self.browser.stop();
    }
}

/// Every file under `dir` named `name`.
pub fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(find_files(&path, name));
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(name)) {
            found.push(path);
        }
    }
    found
}

/// A state dir as slated leaves it, whose `iwf` URL list holds `url` (salted as the school's
/// filter policy says).
pub fn state_listing(dir: &Path, url: &str) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(state.join("policy/lists")).unwrap();
    let entry = slate_protocol::url_lists::salted_hash(
        &[7, 9, 11],
        &slate_protocol::url_lists::normalise(url).unwrap(),
    );
    let iwf = format!("url-sha256:{entry}\n");
    let iwf_file = slate_protocol::device::ListFile::of(iwf.as_bytes());
    let payload = json!({"v": 1, "url_salt": "07090b", "lists": {"iwf": iwf_file}}).to_string();
    std::fs::write(
        state.join("policy/filter.json"),
        json!({"v": 1, "key_id": "k", "payload": payload, "signature": "s"}).to_string(),
    )
    .unwrap();
    std::fs::write(state.join("policy/lists").join(iwf_file.file_name()), iwf).unwrap();
    state
}

/// The unprivileged user the sandboxed runs use (made by `scripts/setup`).
pub const TEST_USER: &str = "slate-test-kiosk";

/// The kiosk's compositor on a headless backend, run as [`TEST_USER`], for Chromium on Wayland
/// with its sandbox on. labwc (the device's compositor, with the image's own rc.xml and
/// menu.xml) when it is installed or `scripts/setup` made [`LABWC_ROOT`]; failing both (Debian
/// bookworm does not package labwc) the stand-in is sway (the same wlroots) configured as the kiosk's labwc is: rc.xml's key bindings only (see
/// [`sway_bindings`]), no title bars or borders, every window full screen, no Xwayland.
pub struct Wayland {
    child: std::process::Child,
    /// A virtual keyboard kept in the seat for the whole test (see `keep_a_keyboard`).
    keyboard: Option<std::process::Child>,
    _dir: tempfile::TempDir,
    pub runtime: PathBuf,
    pub socket: String,
    pub compositor: &'static str,
    pub uid: u32,
    pub gid: u32,
}

/// The image's labwc configuration (rc.xml, menu.xml, autostart).
fn labwc_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/share/slate/labwc")
}

/// rc.xml's key bindings in sway's words: labwc's `<keybind key="C-S-i"><action
/// name="Execute" command="true"/>` (a key that does nothing, so the window never gets it) as
/// `bindsym Ctrl+Shift+i nop`. A binding to None binds nothing: labwc drops it (that is how a
/// default is removed). Panics on any other action (sway could not stand in for it) or a
/// modifier it does not know.
pub fn sway_bindings(rc_xml: &str) -> String {
    let mut out = String::new();
    for binding in rc_xml.split("<keybind ").skip(1) {
        let key = binding.split('"').nth(1).expect("keybind key=\"...\"");
        let body = &binding[..binding.find("</keybind>").expect("</keybind>")];
        let actions = body.matches("<action").count();
        if actions == 1 && body.contains(r#"<action name="None"/>"#) {
            continue;
        }
        assert!(
            actions == 1 && body.contains(r#"<action name="Execute" command="true"/>"#),
            "rc.xml binds {key} to an action the sway stand-in does not know"
        );
        let mut parts: Vec<&str> = key.split('-').collect();
        let keysym = parts.pop().unwrap();
        let mut combo: Vec<&str> = parts
            .iter()
            .map(|m| match *m {
                "C" => "Ctrl",
                "S" => "Shift",
                "A" => "Mod1",
                "W" => "Mod4",
                other => panic!("rc.xml: modifier {other} in {key}"),
            })
            .collect();
        combo.push(keysym);
        out.push_str(&format!("bindsym {} nop\n", combo.join("+")));
    }
    out
}

fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| {
            format!(
                "no user {user} (scripts/setup makes it): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
    };
    Ok((id("-u")?, id("-g")?))
}

/// Where `scripts/setup` puts a Debian trixie root with labwc on a host that does not package
/// it (bookworm).
pub const LABWC_ROOT: &str = "/var/cache/slate-test-labwc";

/// How to start labwc (a name for it, the program, its first arguments): the host's, or the one
/// in [`LABWC_ROOT`] through that root's own loader and libraries (nothing of it installed on
/// the host). None when there is neither.
fn labwc() -> Option<(&'static str, String, Vec<String>)> {
    if installed("labwc") {
        return Some(("labwc", "labwc".into(), Vec::new()));
    }
    let (loader, args) = from_labwc_root("labwc")?;
    Some(("labwc (trixie's, from scripts/setup)", loader.display().to_string(), args))
}

/// `/usr/bin/<program>` of [`LABWC_ROOT`] as the loader to run and its arguments (that root's
/// libraries, then the program), when the root has it.
pub fn from_labwc_root(program: &str) -> Option<(PathBuf, Vec<String>)> {
    let root = Path::new(LABWC_ROOT);
    let libs = std::fs::read_dir(root.join("usr/lib"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-linux-gnu")))?;
    let loader = std::fs::read_dir(&libs)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ld-linux")))?;
    let program = root.join("usr/bin").join(program);
    if !program.exists() {
        return None;
    }
    Some((
        loader,
        vec!["--library-path".into(), libs.display().to_string(), program.display().to_string()],
    ))
}

fn installed(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Wayland {
    /// Starts the compositor, or says why it cannot.
    pub fn start() -> Result<Wayland, String> {
        Self::start_sized("1280x800")
    }

    /// As [`Wayland::start`] with an output of `mode` (`800x480`, the device's screen) where
    /// the compositor can be told (sway here; labwc's headless output keeps its own size).
    pub fn start_sized(mode: &str) -> Result<Wayland, String> {
        use std::os::unix::fs::PermissionsExt;
        if !nix_is_root() {
            return Err("the sandboxed run needs root (to become the test user)".into());
        }
        let (uid, gid) = user_ids(TEST_USER)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(|e| e.to_string())?;
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(&runtime, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        let (compositor, program, args): (&'static str, String, Vec<String>) =
            if let Some((compositor, program, mut args)) = labwc() {
                // The image's rc.xml and menu.xml. Not its autostart: that starts the on-screen
                // keyboard (not installed here; the test keeps a keyboard of its own) in a loop
                // that would outlive the test.
                let config = dir.path().join("labwc");
                std::fs::create_dir(&config).map_err(|e| e.to_string())?;
                for file in ["rc.xml", "menu.xml"] {
                    std::fs::copy(labwc_config().join(file), config.join(file))
                        .map_err(|e| e.to_string())?;
                }
                args.extend(["--config-dir".into(), config.display().to_string()]);
                (compositor, program, args)
            } else if installed("sway") {
                let config = dir.path().join("sway.conf");
                // The kiosk's labwc rc.xml in sway's words: only its key bindings (sway has none
                // unless configured), which swallow their keys, taken from the image's rc.xml
                // itself; no decorations, every window full screen.
                let rc_xml = std::fs::read_to_string(labwc_config().join("rc.xml"))
                    .map_err(|e| e.to_string())?;
                std::fs::write(
                    &config,
                    format!(
                        "output HEADLESS-1 mode {mode}\ndefault_border none\n\
                     default_floating_border none\nxwayland disable\n\
                     focus_on_window_activation focus\nfor_window [all] fullscreen enable\n{}",
                        sway_bindings(&rc_xml)
                    ),
                )
                .map_err(|e| e.to_string())?;
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| e.to_string())?;
                (
                    "sway (labwc is not installed)",
                    "sway".into(),
                    vec!["-c".into(), config.display().to_string()],
                )
            } else {
                return Err("neither labwc nor sway is installed".into());
            };
        let log =
            std::fs::File::create(dir.path().join("compositor.log")).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("setpriv")
            .args([&format!("--reuid={uid}"), &format!("--regid={gid}"), "--init-groups", &program])
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &runtime)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("WLR_BACKENDS", "headless")
            .env("WLR_RENDERER", "pixman")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_HEADLESS_OUTPUTS", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let mut wayland = Wayland {
            child,
            keyboard: None,
            _dir: dir,
            runtime,
            socket: String::new(),
            compositor,
            uid,
            gid,
        };
        for _ in 0..300 {
            if let Ok(Some(status)) = wayland.child.try_wait() {
                let log = std::fs::read_to_string(wayland._dir.path().join("compositor.log"))
                    .unwrap_or_default();
                return Err(format!("{program} exited ({status}): {log}"));
            }
            let found = std::fs::read_dir(&wayland.runtime).ok().and_then(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .find(|n| n.starts_with("wayland-") && !n.ends_with(".lock"))
            });
            if let Some(socket) = found {
                wayland.socket = socket;
                wayland.keep_a_keyboard()?;
                return Ok(wayland);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{program} made no Wayland socket in 15 s"))
    }

    /// Makes the session's directory the test user's (Chromium, as that user, writes its
    /// profile and home there; the policy tree the launcher writes as root stays root's).
    fn give(&self, runtime_dir: &Path, session_dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let browsers = session_dir.parent().unwrap();
        for d in [runtime_dir, browsers] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        for d in [session_dir.to_owned(), session_dir.join("home")] {
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::chown(&d, Some(self.uid), Some(self.gid)).unwrap();
        }
    }

    /// Adds a keyboard to the seat that stays until the compositor stops, as the device always
    /// has one (wvkbd's, started by the kiosk's labwc autostart, and any USB keyboard). Without
    /// it the headless seat has no keyboard between two `wtype`s, so each `wtype` adds one, and
    /// Chromium asks for its `wl_keyboard` only once it sees that: the key is already down by
    /// then and arrives as held in `enter`, so Chromium never sees it pressed (only released).
    /// Keys were lost that way at random, which no pupil's keyboard does.
    fn keep_a_keyboard(&mut self) -> Result<(), String> {
        // `wtype -s` holds its virtual keyboard (with an empty keymap) while it sleeps: an hour,
        // longer than any test; the keyboard goes when the compositor or the process does.
        let keyboard = std::process::Command::new("wtype")
            .args(["-s", "3600000"])
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("WAYLAND_DISPLAY", &self.socket)
            .spawn()
            .map_err(|e| format!("wtype (apt package wtype): {e}"))?;
        self.keyboard = Some(keyboard);
        for _ in 0..300 {
            if seat_has_keyboard(&self.runtime.join(&self.socket))? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the seat had no keyboard 15 s after wtype started".into())
    }

    /// Presses keys as a keyboard would, through the compositor (`wtype`, the virtual keyboard
    /// protocol), e.g. `ctrl+shift+n`, `alt+F4`.
    pub fn key(&self, keys: &str) {
        let mut parts: Vec<&str> = keys.split('+').collect();
        let key = parts.pop().unwrap();
        let mut args = Vec::new();
        for m in &parts {
            args.extend(["-M", m]);
        }
        args.extend(["-k", key]);
        for m in parts.iter().rev() {
            args.extend(["-m", m]);
        }
        let status = std::process::Command::new("wtype")
            .args(&args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("WAYLAND_DISPLAY", &self.socket)
            .status()
            .expect("wtype (apt package wtype) runs");
        assert!(status.success(), "wtype {keys}");
    }

    /// The top-level windows the compositor shows: `app_id`, `name`, `fullscreen` (0 or not) and
    /// `border` (null where the compositor cannot say: labwc, which has no IPC and is asked
    /// through wlr-foreign-toplevel-management). None when it cannot say at all.
    pub fn windows(&self) -> Option<Vec<Value>> {
        if !self.compositor.starts_with("sway") {
            return toplevels(&self.runtime.join(&self.socket)).ok();
        }
        let socket = std::fs::read_dir(&self.runtime)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("sway-ipc.")))?;
        let out = std::process::Command::new("swaymsg")
            .args(["-s", &socket.path().display().to_string(), "-t", "get_tree", "-r"])
            .output()
            .ok()?;
        let tree: Value = serde_json::from_slice(&out.stdout).ok()?;
        let mut windows = Vec::new();
        fn walk(node: &Value, out: &mut Vec<Value>) {
            if node["pid"].is_number() {
                out.push(json!({"app_id": node["app_id"], "name": node["name"],
                                "fullscreen": node["fullscreen_mode"], "border": node["border"]}));
            }
            for key in ["nodes", "floating_nodes"] {
                for child in node[key].as_array().into_iter().flatten() {
                    walk(child, out);
                }
            }
        }
        walk(&tree, &mut windows);
        Some(windows)
    }
}

/// The top-level windows of the compositor at `socket`, as [`Wayland::windows`] gives them, from
/// wlr-foreign-toplevel-management.
fn toplevels(socket: &Path) -> Result<Vec<Value>, String> {
    use wayland_client::backend::ObjectId;
    use wayland_client::protocol::wl_registry;
    use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
    use wayland_protocols_wlr::foreign_toplevel::v1::client::{
        zwlr_foreign_toplevel_handle_v1 as handle, zwlr_foreign_toplevel_manager_v1 as manager,
    };
    #[derive(Default)]
    struct Toplevels {
        windows: Vec<(ObjectId, Value)>,
    }
    impl Dispatch<wl_registry::WlRegistry, ()> for Toplevels {
        fn event(
            _: &mut Self,
            registry: &wl_registry::WlRegistry,
            event: wl_registry::Event,
            _: &(),
            _: &Connection,
            queue: &QueueHandle<Self>,
        ) {
            if let wl_registry::Event::Global { name, interface, .. } = event {
                if interface == "zwlr_foreign_toplevel_manager_v1" {
                    registry.bind::<manager::ZwlrForeignToplevelManagerV1, _, _>(
                        name,
                        1,
                        queue,
                        (),
                    );
                }
            }
        }
    }
    impl Dispatch<manager::ZwlrForeignToplevelManagerV1, ()> for Toplevels {
        fn event(
            toplevels: &mut Self,
            _: &manager::ZwlrForeignToplevelManagerV1,
            event: manager::Event,
            _: &(),
            _: &Connection,
            _: &QueueHandle<Self>,
        ) {
            if let manager::Event::Toplevel { toplevel } = event {
                let window = json!({"app_id": null, "name": null, "fullscreen": 0, "border": null});
                toplevels.windows.push((toplevel.id(), window));
            }
        }
        wayland_client::event_created_child!(Toplevels, manager::ZwlrForeignToplevelManagerV1, [
            manager::EVT_TOPLEVEL_OPCODE => (handle::ZwlrForeignToplevelHandleV1, ()),
        ]);
    }
    impl Dispatch<handle::ZwlrForeignToplevelHandleV1, ()> for Toplevels {
        fn event(
            toplevels: &mut Self,
            toplevel: &handle::ZwlrForeignToplevelHandleV1,
            event: handle::Event,
            _: &(),
            _: &Connection,
            _: &QueueHandle<Self>,
        ) {
            let id = toplevel.id();
            if let handle::Event::Closed = event {
                toplevels.windows.retain(|(w, _)| *w != id);
                return;
            }
            let Some((_, window)) = toplevels.windows.iter_mut().find(|(w, _)| *w == id) else {
                return;
            };
            match event {
                handle::Event::Title { title } => window["name"] = json!(title),
                handle::Event::AppId { app_id } => window["app_id"] = json!(app_id),
                handle::Event::State { state } => {
                    let fullscreen = handle::State::Fullscreen as u32;
                    let states =
                        state.chunks_exact(4).map(|s| u32::from_ne_bytes(s.try_into().unwrap()));
                    window["fullscreen"] =
                        json!(u32::from(states.into_iter().any(|s| s == fullscreen)));
                }
                _ => {}
            }
        }
    }
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let connection = Connection::from_socket(stream).map_err(|e| e.to_string())?;
    let mut queue = connection.new_event_queue();
    connection.display().get_registry(&queue.handle(), ());
    let mut toplevels = Toplevels::default();
    // The globals, then the manager's toplevels, then each one's title, app id and state.
    for _ in 0..3 {
        queue.roundtrip(&mut toplevels).map_err(|e| e.to_string())?;
    }
    Ok(toplevels.windows.into_iter().map(|(_, w)| w).collect())
}

/// Whether the compositor at `socket` says its seat has a keyboard (`wl_seat.capabilities`).
fn seat_has_keyboard(socket: &Path) -> Result<bool, String> {
    use wayland_client::protocol::{wl_registry, wl_seat};
    use wayland_client::{Connection, Dispatch, QueueHandle, WEnum};
    #[derive(Default)]
    struct Seat {
        keyboard: bool,
    }
    impl Dispatch<wl_registry::WlRegistry, ()> for Seat {
        fn event(
            _: &mut Self,
            registry: &wl_registry::WlRegistry,
            event: wl_registry::Event,
            _: &(),
            _: &Connection,
            queue: &QueueHandle<Self>,
        ) {
            if let wl_registry::Event::Global { name, interface, .. } = event {
                if interface == "wl_seat" {
                    registry.bind::<wl_seat::WlSeat, _, _>(name, 1, queue, ());
                }
            }
        }
    }
    impl Dispatch<wl_seat::WlSeat, ()> for Seat {
        fn event(
            seat: &mut Self,
            _: &wl_seat::WlSeat,
            event: wl_seat::Event,
            _: &(),
            _: &Connection,
            _: &QueueHandle<Self>,
        ) {
            if let wl_seat::Event::Capabilities { capabilities: WEnum::Value(c) } = event {
                seat.keyboard = c.contains(wl_seat::Capability::Keyboard);
            }
        }
    }
    let stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let connection = Connection::from_socket(stream).map_err(|e| e.to_string())?;
    let mut queue = connection.new_event_queue();
    connection.display().get_registry(&queue.handle(), ());
    let mut seat = Seat::default();
    // The globals, then the seat's capabilities.
    for _ in 0..2 {
        queue.roundtrip(&mut seat).map_err(|e| e.to_string())?;
    }
    Ok(seat.keyboard)
}

impl Drop for Wayland {
    fn drop(&mut self) {
        if let Some(mut keyboard) = self.keyboard.take() {
            let _ = keyboard.kill();
            let _ = keyboard.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether Chromium's sandbox works here for [`TEST_USER`]: Chromium itself tried (headless, as
/// that user, without `--no-sandbox`). Err says why not, in Chromium's words.
pub fn sandbox_works() -> Result<(), String> {
    let (uid, gid) = user_ids(TEST_USER)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("timeout")
        .args([
            "60",
            "setpriv",
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--init-groups",
        ])
        .args(["/usr/lib/chromium/chromium", "--headless=new", "--disable-gpu"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--no-first-run", &format!("--user-data-dir={}/p", dir.path().display())])
        .args(["--dump-dom", "data:text/html,<title>sandboxed</title>"])
        .env("HOME", dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("sandboxed") {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("sandbox") || l.contains("FATAL") || l.contains("namespace"))
        .take(5)
        .collect();
    Err(format!(
        "Chromium as {TEST_USER} without --no-sandbox exited {}: {}",
        out.status,
        reason.join(" | ")
    ))
}

/// Starts Chromium as [`start`] does, but on `wayland` as [`TEST_USER`] with its sandbox on.
pub fn start_wayland(port: u16, reporter: Box<dyn Reporter>, wayland: &Wayland) -> Kiosk {
    launch_full("127.0.0.1", port, None, Some(reporter), None, None, Some(wayland), None)
}

/// As [`start_wayland`], with an on-screen keyboard of `keyboard_height` pixels that the guard
/// fits the page above while a text field has the focus (`slate-ui --keyboard`).
pub fn start_wayland_with_keyboard(
    port: u16,
    reporter: Box<dyn Reporter>,
    wayland: &Wayland,
    keyboard_height: u32,
) -> Kiosk {
    launch_full(
        "127.0.0.1",
        port,
        None,
        Some(reporter),
        None,
        None,
        Some(wayland),
        Some(keyboard_height),
    )
}

/// Whether every renderer of the browser `pid` runs in Chromium's sandbox: a user namespace of
/// its own (Debian's Chromium has no setuid helper, so the namespace sandbox is the sandbox)
/// and seccomp-bpf. Err names what is not so.
pub fn renderers_sandboxed(pid: u32) -> Result<usize, String> {
    let browser_ns =
        std::fs::read_link(format!("/proc/{pid}/ns/user")).map_err(|e| e.to_string())?;
    let mut renderers = 0;
    for entry in std::fs::read_dir("/proc").map_err(|e| e.to_string())?.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains("--type=renderer") || cmdline.contains("--extension-process") {
            continue;
        }
        // This browser's: a descendant of it (through its zygotes).
        let parent = |p: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
        };
        let mut ancestor = Some(p);
        while let Some(a) = ancestor.filter(|a| *a > 1 && *a != pid) {
            ancestor = parent(a);
        }
        if ancestor != Some(pid) {
            continue;
        }
        let ns = std::fs::read_link(format!("/proc/{p}/ns/user")).map_err(|e| e.to_string())?;
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let seccomp = status.lines().any(|l| l.starts_with("Seccomp:") && l.trim().ends_with('2'));
        if ns == browser_ns || !seccomp {
            return Err(format!(
                "renderer {p}: user namespace {ns:?} (browser {browser_ns:?}), seccomp {seccomp}"
            ));
        }
        renderers += 1;
    }
    if renderers == 0 {
        return Err("no renderer found".into());
    }
    Ok(renderers)
}
