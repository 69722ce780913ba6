//! Shared by the kiosk browser tests: a small HTTP site on 127.0.0.1, and Chromium started the
//! way `slate_ui::launcher` starts it (its plan, its namespace-mounted managed policy, its
//! control pipe and guard), headless.

#![allow(dead_code)]

use serde_json::{json, Value};
use slate_ui::launcher::{guard_loop, load_url_lists, web_plan, Browser, LaunchConfig, Reporter};
use slate_ui::policy::{App, AppKind};
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
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = state_dir.map(Path::to_owned).unwrap_or_else(|| dir.path().join("state"));
    let mut config = LaunchConfig::new(dir.path().to_owned(), state.clone());
    config.wayland = false;
    let first = match display {
        Some(d) => {
            config.env.push(("DISPLAY".into(), d.into()));
            "--ozone-platform=x11"
        }
        None => "--headless=new",
    };
    config.extra_args = [
        first,
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let session = slate_ui::launcher::token();
    let mut plan = web_plan(&app(), &config, &session).unwrap();
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
    match reporter {
        Some(reporter) => {
            std::thread::spawn(move || {
                guard_loop(conn, events, lists, "reading".into(), pid, reporter)
            });
        }
        None => {
            // Drain events so the pipe never fills.
            std::thread::spawn(move || events.into_iter().for_each(drop));
        }
    }
    let session = browser.attach_page().unwrap();
    let kiosk = Kiosk { browser, session, start, port, targets, _dir: dir };
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
    let payload = json!({"v": 1, "url_salt": "07090b"}).to_string();
    std::fs::write(
        state.join("policy/filter.json"),
        json!({"v": 1, "key_id": "k", "payload": payload, "signature": "s"}).to_string(),
    )
    .unwrap();
    let entry =
        slate_filter::urls::salted_hash(&[7, 9, 11], &slate_filter::urls::normalise(url).unwrap());
    std::fs::write(state.join("policy/lists/iwf.txt"), format!("url-sha256:{entry}\n")).unwrap();
    state
}
