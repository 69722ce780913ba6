//! The browser control channel: the Chrome DevTools Protocol over `--remote-debugging-pipe`
//! (Chromium reads requests on fd 3 and writes replies and events on fd 4, each a JSON message
//! ended by a NUL byte; there is no listening socket for anything else to reach).
//!
//! Functional core: [`encode`], [`Frames`] and [`Guard`], the state machine that turns CDP
//! events into requests (attach, enable, continue or fulfil a paused navigation) and into
//! [`Report`]s for slated (what is on screen, what was blocked). It reads only URLs and titles:
//! never page content or pictures. Imperative shell: [`Connection`] (a reader thread over the
//! pipe).

use base64::Engine as _;
use serde_json::{json, Value};
use slate_protocol::url_lists::{UrlDecision, UrlLists};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CdpError {
    #[error("browser control pipe: {0}")]
    Io(#[from] std::io::Error),
    #[error("browser closed the control pipe")]
    Closed,
    #[error("no reply from the browser to {0} in time")]
    Timeout(String),
    #[error("browser refused {method}: {error}")]
    Refused { method: String, error: String },
}

/// One request, as framed on the pipe.
pub fn encode(id: u64, method: &str, params: &Value, session: Option<&str>) -> Vec<u8> {
    let mut msg = json!({"id": id, "method": method, "params": params});
    if let Some(s) = session {
        msg["sessionId"] = json!(s);
    }
    let mut bytes = serde_json::to_vec(&msg).expect("a JSON value always serialises");
    bytes.push(0);
    bytes
}

/// Splits the byte stream from fd 4 into messages.
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Takes in bytes; returns the complete messages (unparsable ones are dropped: the browser
    /// is trusted to speak JSON, and one bad message must not stop the channel).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Value> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == 0) {
            let frame: Vec<u8> = self.buf.drain(..=end).collect();
            if let Ok(v) = serde_json::from_slice(&frame[..end]) {
                out.push(v);
            }
        }
        out
    }
}

/// What slated hears about the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The top-level page changed (URL and title only).
    Foreground { url: String, title: String },
    /// A navigation was replaced by the block page.
    Blocked { url: String, list: String, rule: String },
    /// The pupil pressed "tell my teacher" on the block page for `url`.
    TellTeacher { url: String },
}

/// A request the guard wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub params: Value,
    pub session: Option<String>,
}

fn send(method: &str, params: Value, session: Option<&str>) -> Request {
    Request { method: method.into(), params, session: session.map(str::to_owned) }
}

/// The marker the block page's button adds to the blocked URL's query.
pub const TELL_PARAM: &str = "slate-tell-teacher";

/// The requests that start guarding a freshly started browser: every document request of every
/// page paused until the guard has checked it (on the browser's own session: a page's session
/// comes too late for a tab opened by a middle-click, whose request leaves while it is created),
/// attach to every page (paused until it is guarded), and refuse downloads.
pub fn start_requests() -> Vec<Request> {
    vec![
        send(
            "Fetch.enable",
            json!({"patterns": [{"urlPattern": "*", "resourceType": "Document", "requestStage": "Request"}]}),
            None,
        ),
        send("Browser.setDownloadBehavior", json!({"behavior": "deny"}), None),
        send("Target.setDiscoverTargets", json!({"discover": true}), None),
        send(
            "Target.setAutoAttach",
            json!({"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}),
            None,
        ),
    ]
}

/// Chromium's own UI drawn as web pages (the omnibox popup and the like): not the app's, not
/// reachable by the pupil in kiosk mode, left alone.
pub fn is_browser_ui(info: &Value) -> bool {
    info["type"] == "browser_ui"
        || info["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("chrome://") && u.contains(".top-chrome/"))
}

/// Chromium's print preview (a page of its own, in a dialog over the app).
pub fn is_print_preview(info: &Value) -> bool {
    info["url"].as_str().is_some_and(|u| u.starts_with("chrome://print"))
}

/// Follows pages and checks every document request against the URL lists.
#[derive(Debug)]
pub struct Guard {
    lists: UrlLists,
    /// The page the kiosk shows (the first one); any other page is closed.
    main: Option<String>,
    /// Session id -> target id of attached pages.
    sessions: HashMap<String, String>,
    /// Nonce of the block page on screen -> the URL it replaced.
    blocked: HashMap<String, String>,
    last: Option<(String, String)>,
    /// The main frame's URL as of its last committed navigation.
    navigated: Option<String>,
    /// Pages other than the app's (pop-ups, new tabs), by target id, which is also the id of
    /// their main frame: every document request they make is refused (and a listed one is still
    /// reported) while they are being closed.
    others: std::collections::HashSet<String>,
    /// The browser window the app's page was first seen in (the kiosk window).
    kiosk_window: Option<i64>,
    /// When recent JavaScript dialogs of the app's page opened (for [`DIALOG_LIMIT`]).
    dialogs: Vec<Duration>,
    /// The guard has asked the browser to close (a print preview).
    ending: bool,
}

/// More JavaScript dialogs than this within [`DIALOG_WINDOW`] are dismissed by the guard at
/// once: a page cannot hold the pupil in an `alert()` loop. Fewer are left to the pupil (an
/// app's "Are you sure?" still works).
pub const DIALOG_LIMIT: usize = 3;
pub const DIALOG_WINDOW: Duration = Duration::from_secs(10);

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The gentle block page. Its button asks for the blocked URL with [`TELL_PARAM`] and the
/// nonce, which the guard recognises and never lets reach the network.
pub fn block_page(url: &str, nonce: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    let tell = format!("{base}?{TELL_PARAM}={nonce}");
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not this page</title>
<style>body{{font-family:sans-serif;background:#eef5ff;color:#123;text-align:center;padding:10vh 2em}}
h1{{font-size:2.4em}}p{{font-size:1.4em}}a.b{{display:inline-block;margin-top:1em;padding:.8em 1.6em;
font-size:1.4em;background:#2a6;color:#fff;border-radius:1em;text-decoration:none}}</style></head>
<body><h1>This page is not for school</h1><p>You have done nothing wrong. You can go back, or tell your teacher.</p>
<a class="b" id="tell" href="{}">Tell my teacher</a></body></html>"#,
        html_escape(&tell)
    )
}

const TOLD_PAGE: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Your teacher has been told</title>
<style>body{font-family:sans-serif;background:#eef5ff;color:#123;text-align:center;padding:10vh 2em}h1{font-size:2.4em}</style>
</head><body><h1>Thank you. Your teacher has been told.</h1></body></html>"#;

fn fulfil(request_id: &str, html: &str, session: Option<&str>) -> Request {
    let body = base64::engine::general_purpose::STANDARD.encode(html.as_bytes());
    send(
        "Fetch.fulfillRequest",
        json!({"requestId": request_id, "responseCode": 200,
               "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"},
                                   {"name": "Cache-Control", "value": "no-store"}],
               "body": body}),
        session,
    )
}

impl Guard {
    pub fn new(lists: UrlLists) -> Self {
        Self {
            lists,
            main: None,
            sessions: HashMap::new(),
            blocked: HashMap::new(),
            last: None,
            navigated: None,
            others: Default::default(),
            kiosk_window: None,
            dialogs: Vec::new(),
            ending: false,
        }
    }

    /// Takes one event from the browser; returns requests to send and reports for slated.
    /// `nonce` is a fresh unguessable token, used if this event puts up a block page; `now` is
    /// the time since the guard started.
    pub fn on_event(
        &mut self,
        msg: &Value,
        nonce: &str,
        now: Duration,
    ) -> (Vec<Request>, Vec<Report>) {
        let mut out = Vec::new();
        let mut reports = Vec::new();
        let session = msg["sessionId"].as_str();
        let params = &msg["params"];
        match msg["method"].as_str().unwrap_or("") {
            "Target.attachedToTarget" => {
                let sid = params["sessionId"].as_str().unwrap_or_default();
                let info = &params["targetInfo"];
                let target = info["targetId"].as_str().unwrap_or_default();
                if info["type"] != "page" || is_browser_ui(info) {
                    out.push(send("Runtime.runIfWaitingForDebugger", json!({}), Some(sid)));
                    return (out, reports);
                }
                if self.main.as_deref().is_some_and(|m| m != target) {
                    // A second window or tab (a pop-up, a middle-click): the kiosk shows one
                    // page only. It is paused (waitForDebuggerOnStart), and a pop-up shares the
                    // app page's renderer, which stays paused until the new page is let run: so
                    // let it run (its document requests are refused, see `Fetch.requestPaused`)
                    // and close it.
                    self.others.insert(target.to_owned());
                    out.push(send("Runtime.runIfWaitingForDebugger", json!({}), Some(sid)));
                    out.push(send("Target.closeTarget", json!({"targetId": target}), None));
                    return (out, reports);
                }
                self.main = Some(target.to_owned());
                self.sessions.insert(sid.to_owned(), target.to_owned());
                out.push(send("Page.enable", json!({}), Some(sid)));
                // A file input would otherwise bring up Chromium's "disabled by your
                // administrator" infobar, which pushes the page down under the pupil's finger.
                out.push(send(
                    "Page.setInterceptFileChooserDialog",
                    json!({"enabled": true}),
                    Some(sid),
                ));
                out.push(send("Inspector.enable", json!({}), Some(sid)));
                // The page reports when a text field takes or loses the focus (for the
                // on-screen keyboard); in place before the paused page's first document runs.
                for (method, params) in crate::text_focus::page_requests() {
                    out.push(send(method, params, Some(sid)));
                }
                out.push(send("Runtime.runIfWaitingForDebugger", json!({}), Some(sid)));
            }
            "Target.targetCreated" => {
                let info = &params["targetInfo"];
                let target = info["targetId"].as_str().unwrap_or_default();
                if is_print_preview(info) {
                    out.extend(self.on_print_preview());
                } else if info["type"] == "page"
                    && !is_browser_ui(info)
                    && self.main.as_deref().is_some_and(|m| m != target)
                {
                    // Known before its first request (announced as it is created); closed once
                    // attached (closing it paused would leave a shared renderer paused).
                    self.others.insert(target.to_owned());
                }
            }
            "Target.targetDestroyed" => {
                if let Some(target) = params["targetId"].as_str() {
                    self.others.remove(target);
                }
            }
            "Target.targetInfoChanged" => {
                let info = &params["targetInfo"];
                if is_print_preview(info) {
                    // Announced as an "other" target with no URL; it says what it is only here.
                    out.extend(self.on_print_preview());
                }
                if info["type"] == "page" && self.main.as_deref() == info["targetId"].as_str() {
                    let url = info["url"].as_str().unwrap_or_default().to_owned();
                    let title = info["title"].as_str().unwrap_or_default().to_owned();
                    if !url.is_empty() && self.last.as_ref() != Some(&(url.clone(), title.clone()))
                    {
                        self.last = Some((url.clone(), title.clone()));
                        reports.push(Report::Foreground { url, title });
                    }
                }
            }
            "Page.frameNavigated" => {
                let frame = &params["frame"];
                let main_session = session.and_then(|s| self.sessions.get(s)).map(String::as_str)
                    == self.main.as_deref();
                if main_session && frame["parentId"].is_null() {
                    self.navigated = frame["url"].as_str().map(str::to_owned);
                }
            }
            "Inspector.targetCrashed" if self.is_main_session(session) => {
                // The app's page died: end the browser, so the kiosk goes home rather than
                // leaving a "sad tab" on screen.
                out.push(send("Browser.close", json!({}), None));
            }
            "Fetch.requestPaused"
                if params["frameId"].as_str().is_some_and(|f| self.others.contains(f)) =>
            {
                // A page being closed fetches nothing; a listed URL is still reported, as the
                // pupil asked for it.
                let request_id = params["requestId"].as_str().unwrap_or_default();
                let url = params["request"]["url"].as_str().unwrap_or_default();
                if let UrlDecision::Block(block) = self.lists.check(url) {
                    reports.push(Report::Blocked {
                        url: url.to_owned(),
                        list: block.list,
                        rule: block.rule,
                    });
                }
                out.push(send(
                    "Fetch.failRequest",
                    json!({"requestId": request_id, "errorReason": "BlockedByClient"}),
                    session,
                ));
            }
            "Page.javascriptDialogOpening" if self.is_main_session(session) => {
                out.extend(self.on_dialog(params, now, session));
            }
            "Fetch.requestPaused" => {
                let request_id = params["requestId"].as_str().unwrap_or_default();
                let url = params["request"]["url"].as_str().unwrap_or_default();
                if let Some(original) = self.tell_request(url) {
                    reports.push(Report::TellTeacher { url: original });
                    out.push(fulfil(request_id, TOLD_PAGE, session));
                } else {
                    match self.lists.check(url) {
                        UrlDecision::Allow => out.push(send(
                            "Fetch.continueRequest",
                            json!({"requestId": request_id}),
                            session,
                        )),
                        UrlDecision::Block(block) => {
                            self.blocked.insert(nonce.to_owned(), url.to_owned());
                            reports.push(Report::Blocked {
                                url: url.to_owned(),
                                list: block.list,
                                rule: block.rule,
                            });
                            out.push(fulfil(request_id, &block_page(url, nonce), session));
                        }
                    }
                }
            }
            _ => {}
        }
        (out, reports)
    }

    fn is_main_session(&self, session: Option<&str>) -> bool {
        self.main.is_some()
            && session.and_then(|s| self.sessions.get(s)).map(String::as_str)
                == self.main.as_deref()
    }

    /// A JavaScript dialog of the app's page: "leave this page?" is always answered yes (a
    /// page cannot keep the pupil), and past [`DIALOG_LIMIT`] dialogs in [`DIALOG_WINDOW`] each
    /// is dismissed at once.
    fn on_dialog(&mut self, params: &Value, now: Duration, session: Option<&str>) -> Vec<Request> {
        let answer =
            |accept: bool| send("Page.handleJavaScriptDialog", json!({"accept": accept}), session);
        if params["type"] == "beforeunload" {
            return vec![answer(true)];
        }
        self.dialogs.retain(|at| now.saturating_sub(*at) < DIALOG_WINDOW);
        self.dialogs.push(now);
        if self.dialogs.len() > DIALOG_LIMIT {
            return vec![answer(false)];
        }
        Vec::new()
    }

    /// Chromium's print preview over the app (the policy turns printing and print preview off;
    /// this is the guard's rule should a build ignore that). It cannot be closed from here:
    /// `Target.closeTarget` answers success and leaves it up, navigating the app's page leaves
    /// it up, and its page is blocked (`chrome://*`), so it shows "This page is blocked" with
    /// no Cancel button over the app: the pupil would be stuck. So the browser is ended, once,
    /// and the kiosk goes home.
    fn on_print_preview(&mut self) -> Option<Request> {
        if self.ending {
            return None;
        }
        self.ending = true;
        Some(send("Browser.close", json!({}), None))
    }

    /// The browser window the app's page is in now (`Browser.getWindowForTarget`): the first
    /// one is the kiosk window; if the page ever moves to another (installed as an app, which
    /// gives it a window with menus), the browser is closed and the kiosk goes home.
    pub fn on_window(&mut self, window_id: i64) -> Option<Request> {
        match self.kiosk_window {
            None => {
                self.kiosk_window = Some(window_id);
                None
            }
            Some(kiosk) if kiosk == window_id => None,
            Some(_) => Some(send("Browser.close", json!({}), None)),
        }
    }

    /// The page the kiosk shows, once attached.
    pub fn main_target(&self) -> Option<&str> {
        self.main.as_deref()
    }

    /// The guard's own session with the app's page.
    pub fn main_session(&self) -> Option<&str> {
        let main = self.main.as_deref()?;
        self.sessions.iter().find(|(_, target)| target.as_str() == main).map(|(s, _)| s.as_str())
    }

    /// Whether `msg` says the main page's document was parsed or finished loading (then its
    /// title is there to ask for: Chromium does not always send `targetInfoChanged` for it,
    /// and the load itself can wait long on a picture whose host never answers).
    pub fn is_main_load(&self, msg: &Value) -> bool {
        (msg["method"] == "Page.domContentEventFired" || msg["method"] == "Page.loadEventFired")
            && msg["sessionId"].as_str().and_then(|s| self.sessions.get(s)).map(String::as_str)
                == self.main.as_deref()
    }

    /// The main frame's URL as of its last navigation: a title read after a load belongs to
    /// this URL only (a later navigation may already have begun).
    pub fn navigated_url(&self) -> Option<&str> {
        self.navigated.as_deref()
    }

    /// The blocked URL a "tell my teacher" request stands for, if `url` is one with a nonce
    /// this guard issued (each nonce works once).
    fn tell_request(&mut self, url: &str) -> Option<String> {
        let (_, query) = url.split_once('?')?;
        let nonce =
            query.split('&').find_map(|kv| kv.strip_prefix(TELL_PARAM)?.strip_prefix('='))?;
        self.blocked.remove(nonce)
    }
}

type Pending = Arc<Mutex<HashMap<u64, mpsc::Sender<Value>>>>;

/// The pipe to one Chromium: requests go out on `to_browser`; a thread reads replies (handed to
/// their callers) and events (handed to `events`).
pub struct Connection {
    writer: Mutex<Box<dyn Write + Send>>,
    next: AtomicU64,
    pending: Pending,
}

impl Connection {
    /// Starts the reader thread. Events arrive on the returned receiver, which closes when the
    /// browser closes the pipe (it exited).
    pub fn start(
        to_browser: impl Write + Send + 'static,
        mut from_browser: impl Read + Send + 'static,
    ) -> (Arc<Self>, mpsc::Receiver<Value>) {
        let pending: Pending = Arc::default();
        let (events_tx, events) = mpsc::channel();
        let conn = Arc::new(Self {
            writer: Mutex::new(Box::new(to_browser)),
            next: AtomicU64::new(1),
            pending: pending.clone(),
        });
        std::thread::spawn(move || {
            let mut frames = Frames::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_browser.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                for msg in frames.push(&buf[..n]) {
                    // Methods, ids and errors only: URLs and titles stay out of the journal.
                    tracing::debug!(method = ?msg["method"].as_str(), id = ?msg["id"].as_u64(), session = ?msg["sessionId"].as_str(), "cdp from the browser");
                    if let Some(id) = msg["id"].as_u64() {
                        if let Some(tx) = pending.lock().expect("pending lock").remove(&id) {
                            let _ = tx.send(msg);
                        } else if let Some(error) = msg.get("error") {
                            // A request sent without waiting (let a page run, let a load
                            // through) that the browser refused: a page may be left waiting.
                            tracing::warn!(id, %error, "the browser refused a request");
                        }
                    } else if events_tx.send(msg).is_err() {
                        return;
                    }
                }
            }
            // Closing the waiters' channels wakes them with `Closed`.
            pending.lock().expect("pending lock").clear();
        });
        (conn, events)
    }

    /// Sends a request without waiting for its reply.
    pub fn post(
        &self,
        method: &str,
        params: &Value,
        session: Option<&str>,
    ) -> Result<(), CdpError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, method, ?session, "cdp to the browser");
        self.writer.lock().expect("writer lock").write_all(&encode(id, method, params, session))?;
        Ok(())
    }

    /// Sends a request and waits for its result.
    pub fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, method, ?session, "cdp to the browser, waiting");
        let (tx, rx) = mpsc::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        self.writer
            .lock()
            .expect("writer lock")
            .write_all(&encode(id, method, &params, session))?;
        let reply = rx.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => CdpError::Timeout(method.to_owned()),
            mpsc::RecvTimeoutError::Disconnected => CdpError::Closed,
        })?;
        if let Some(error) = reply.get("error") {
            return Err(CdpError::Refused { method: method.to_owned(), error: error.to_string() });
        }
        Ok(reply["result"].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::url_lists::{salted_hash, UrlList};

    #[test]
    fn framing() {
        let bytes = encode(7, "Page.enable", &json!({}), Some("S1"));
        assert_eq!(*bytes.last().unwrap(), 0);
        let mut frames = Frames::default();
        let (a, b) = bytes.split_at(5);
        assert!(frames.push(a).is_empty());
        let got = frames.push(&[b, b"{\"method\":\"X\"}\0not json\0{\"id\":"].concat());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["sessionId"], "S1");
        assert_eq!(got[0]["id"], 7);
        assert_eq!(got[1]["method"], "X");
        assert_eq!(frames.push(b"1}\0")[0]["id"], 1);
    }

    fn guard() -> Guard {
        let text = format!("url-sha256:{}\n", salted_hash(b"s", "https://site.example/bad"));
        Guard::new(UrlLists {
            salt: b"s".to_vec(),
            lists: vec![UrlList::parse("iwf", &text).unwrap()],
        })
    }

    fn attached(sid: &str, target: &str, kind: &str) -> Value {
        json!({"method": "Target.attachedToTarget",
               "params": {"sessionId": sid, "targetInfo": {"targetId": target, "type": kind}}})
    }

    fn paused(sid: &str, id: &str, url: &str) -> Value {
        json!({"method": "Fetch.requestPaused", "sessionId": sid,
               "params": {"requestId": id, "request": {"url": url}, "resourceType": "Document"}})
    }

    #[test]
    fn the_first_page_is_guarded_and_others_are_closed() {
        let mut g = guard();
        let (out, _) = g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        let methods: Vec<_> = out.iter().map(|s| s.method.as_str()).collect();
        assert_eq!(
            methods,
            [
                "Page.enable",
                "Page.setInterceptFileChooserDialog",
                "Inspector.enable",
                "Runtime.enable",
                "Runtime.addBinding",
                "Page.addScriptToEvaluateOnNewDocument",
                "Runtime.runIfWaitingForDebugger"
            ]
        );
        assert!(out.iter().all(|s| s.session.as_deref() == Some("S1")));
        // A pop-up or new tab: let run (it may share the app page's renderer, which must not
        // stay paused), then closed.
        let (out, _) = g.on_event(&attached("S2", "T2", "page"), "n", Duration::ZERO);
        assert_eq!(
            out,
            [
                send("Runtime.runIfWaitingForDebugger", json!({}), Some("S2")),
                send("Target.closeTarget", json!({"targetId": "T2"}), None)
            ]
        );
        // A worker is let run, not guarded.
        let (out, _) = g.on_event(&attached("S4", "T4", "service_worker"), "n", Duration::ZERO);
        assert_eq!(out[0].method, "Runtime.runIfWaitingForDebugger");
    }

    #[test]
    fn a_print_preview_ends_the_browser() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        // As Chromium announces it: an "other" target with no URL, which becomes the preview.
        let event = |method: &str, kind: &str, url: &str| {
            json!({"method": method,
                   "params": {"targetInfo": {"targetId": "P", "type": kind, "url": url}}})
        };
        assert!(g
            .on_event(&event("Target.targetCreated", "other", ""), "n", Duration::ZERO)
            .0
            .is_empty());
        let (out, _) = g.on_event(
            &event("Target.targetInfoChanged", "page", "chrome://print/"),
            "n",
            Duration::ZERO,
        );
        assert_eq!(out, [send("Browser.close", json!({}), None)]);
        // Once.
        let (out, _) = g.on_event(
            &event("Target.targetInfoChanged", "page", "chrome://print/"),
            "n",
            Duration::ZERO,
        );
        assert!(out.is_empty());
        // Announced with its URL at once (another build): the same.
        let mut g = guard();
        let (out, _) = g.on_event(
            &event("Target.targetCreated", "page", "chrome://print/"),
            "n",
            Duration::ZERO,
        );
        assert_eq!(out, [send("Browser.close", json!({}), None)]);
    }

    #[test]
    fn another_page_fetches_nothing_and_a_listed_url_is_reported() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        // A middle-click's tab: announced as created, its request paused on the browser's
        // session before it is attached.
        let created = json!({"method": "Target.targetCreated",
                             "params": {"targetInfo": {"targetId": "T2", "type": "page", "url": ""}}});
        g.on_event(&created, "n", Duration::ZERO);
        let in_frame = |id: &str, url: &str, frame: &str| {
            json!({"method": "Fetch.requestPaused",
                   "params": {"requestId": id, "request": {"url": url}, "frameId": frame}})
        };
        let (out, reports) =
            g.on_event(&in_frame("R1", "https://site.example/ok", "T2"), "n", Duration::ZERO);
        assert_eq!(
            out,
            [send(
                "Fetch.failRequest",
                json!({"requestId": "R1", "errorReason": "BlockedByClient"}),
                None
            )]
        );
        assert!(reports.is_empty());
        let (out, reports) =
            g.on_event(&in_frame("R2", "https://site.example/bad", "T2"), "n", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.failRequest");
        assert!(matches!(&reports[..], [Report::Blocked { list, .. }] if list == "iwf"));
        // The app's own frames (its page, its iframes) are checked as before.
        let (out, _) =
            g.on_event(&in_frame("R3", "https://site.example/ok", "T1"), "n", Duration::ZERO);
        assert_eq!(out[0], send("Fetch.continueRequest", json!({"requestId": "R3"}), None));
        let (out, _) =
            g.on_event(&in_frame("R4", "https://site.example/ok", "F9"), "n", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.continueRequest");
        // Once it is gone its id means nothing.
        let destroyed = json!({"method": "Target.targetDestroyed", "params": {"targetId": "T2"}});
        g.on_event(&destroyed, "n", Duration::ZERO);
        let (out, _) =
            g.on_event(&in_frame("R5", "https://site.example/ok", "T2"), "n", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.continueRequest");
    }

    #[test]
    fn dialogs_past_the_limit_are_dismissed() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        let dialog = |sid: &str, kind: &str| {
            json!({"method": "Page.javascriptDialogOpening", "sessionId": sid,
                   "params": {"type": kind, "message": "m", "url": "https://site.example/"}})
        };
        let dismiss = [send("Page.handleJavaScriptDialog", json!({"accept": false}), Some("S1"))];
        let at = Duration::from_secs;
        // (seconds, kind, dismissed by the guard)
        let table = [
            (0, "alert", false),
            (1, "confirm", false),
            (2, "prompt", false),
            (3, "alert", true),
            (4, "alert", true),
            (5, "alert", true),
            // Quiet for a while: the pupil answers again.
            (40, "confirm", false),
        ];
        for (secs, kind, dismissed) in table {
            let (out, _) = g.on_event(&dialog("S1", kind), "n", at(secs));
            assert_eq!(out.as_slice() == dismiss, dismissed, "{secs}s {kind}: {out:?}");
            if !dismissed {
                assert!(out.is_empty());
            }
        }
        // Leaving a page is never refused.
        let (out, _) = g.on_event(&dialog("S1", "beforeunload"), "n", at(41));
        assert_eq!(out, [send("Page.handleJavaScriptDialog", json!({"accept": true}), Some("S1"))]);
        // Another session's dialogs are not the guard's business.
        assert!(g.on_event(&dialog("S9", "alert"), "n", at(41)).0.is_empty());
    }

    #[test]
    fn the_app_page_must_stay_in_the_kiosk_window() {
        let mut g = guard();
        assert_eq!(g.on_window(7), None);
        assert_eq!(g.on_window(7), None);
        assert_eq!(g.on_window(8), Some(send("Browser.close", json!({}), None)));
    }

    #[test]
    fn navigation_decisions_and_tell_my_teacher() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n0", Duration::ZERO);
        let (out, reports) =
            g.on_event(&paused("S1", "R1", "https://site.example/ok"), "n1", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.continueRequest");
        assert!(reports.is_empty());

        let (out, reports) =
            g.on_event(&paused("S1", "R2", "https://SITE.example/bad#x"), "nonce2", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.fulfillRequest");
        assert_eq!(out[0].session.as_deref(), Some("S1"));
        let body = out[0].params["body"].as_str().unwrap();
        let html =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).unwrap())
                .unwrap();
        assert!(html.contains("slate-tell-teacher=nonce2"), "{html}");
        assert!(
            matches!(&reports[..], [Report::Blocked { list, rule, .. }] if list == "iwf" && rule.starts_with("url-sha256:"))
        );

        // A guessed nonce is just another request.
        let (out, reports) = g.on_event(
            &paused("S1", "R3", "https://site.example/x?slate-tell-teacher=guess"),
            "n3",
            Duration::ZERO,
        );
        assert_eq!(out[0].method, "Fetch.continueRequest");
        assert!(reports.is_empty());
        // The real one files the report once and never reaches the network.
        let tell = "https://SITE.example/bad?slate-tell-teacher=nonce2";
        let (out, reports) = g.on_event(&paused("S1", "R4", tell), "n4", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.fulfillRequest");
        assert_eq!(reports, [Report::TellTeacher { url: "https://SITE.example/bad#x".into() }]);
        let (out, reports) = g.on_event(&paused("S1", "R5", tell), "n5", Duration::ZERO);
        assert_eq!(out[0].method, "Fetch.continueRequest");
        assert!(reports.is_empty());
    }

    #[test]
    fn foreground_follows_the_main_page_only() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        let changed = |t: &str, url: &str, title: &str| {
            json!({"method": "Target.targetInfoChanged",
                   "params": {"targetInfo": {"targetId": t, "type": "page", "url": url, "title": title}}})
        };
        let (_, r) = g.on_event(&changed("T1", "https://site.example/a", "A"), "n", Duration::ZERO);
        assert_eq!(
            r,
            [Report::Foreground { url: "https://site.example/a".into(), title: "A".into() }]
        );
        assert!(g
            .on_event(&changed("T1", "https://site.example/a", "A"), "n", Duration::ZERO)
            .1
            .is_empty());
        assert!(g
            .on_event(&changed("T9", "https://other.example/", "O"), "n", Duration::ZERO)
            .1
            .is_empty());
        assert_eq!(
            g.on_event(&changed("T1", "https://site.example/a", "A2"), "n", Duration::ZERO).1.len(),
            1
        );
    }

    #[test]
    fn the_main_frame_url_is_tracked_for_titles() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        let nav = |sid: &str, parent: Option<&str>, url: &str| {
            json!({"method": "Page.frameNavigated", "sessionId": sid,
                   "params": {"frame": {"id": "F", "parentId": parent, "url": url}}})
        };
        g.on_event(&nav("S1", None, "https://site.example/a"), "n", Duration::ZERO);
        g.on_event(&nav("S1", Some("T1"), "https://ads.example/frame"), "n", Duration::ZERO);
        g.on_event(&nav("S7", None, "https://other.example/"), "n", Duration::ZERO);
        assert_eq!(g.navigated_url(), Some("https://site.example/a"));
        let load =
            |sid: &str| json!({"method": "Page.loadEventFired", "sessionId": sid, "params": {}});
        assert!(g.is_main_load(&load("S1")));
        assert!(!g.is_main_load(&load("S7")));
        let parsed =
            json!({"method": "Page.domContentEventFired", "sessionId": "S1", "params": {}});
        assert!(g.is_main_load(&parsed), "the title is there once the document is parsed");
    }

    #[test]
    fn a_crash_of_the_main_page_closes_the_browser() {
        let mut g = guard();
        g.on_event(&attached("S1", "T1", "page"), "n", Duration::ZERO);
        let crashed = |sid: &str| json!({"method": "Inspector.targetCrashed", "sessionId": sid, "params": {}});
        assert!(g.on_event(&crashed("S9"), "n", Duration::ZERO).0.is_empty());
        assert_eq!(
            g.on_event(&crashed("S1"), "n", Duration::ZERO).0,
            [send("Browser.close", json!({}), None)]
        );
    }

    #[test]
    fn the_block_page_escapes_the_url() {
        let page = block_page("https://x.example/\"><script>?q=1", "N");
        assert!(!page.contains("\"><script>"));
        assert!(page.contains("https://x.example/&quot;&gt;&lt;script&gt;?slate-tell-teacher=N"));
    }
}
