//! Chromium started the way the launcher starts it (managed policy mounted over /etc/chromium in
//! its own namespace, fresh profile, control pipe and guard; headless), against a site on
//! 127.0.0.1: the policy is in force, sessions share nothing, and the URL layer replaces a
//! listed page with the block page, tells (a fake) slated, and "tell my teacher" files a report.

mod kiosk_browser;

use kiosk_browser::{serve, start};
use serde_json::{json, Value};
use slate_ui::launcher::{RecordingReporter, SocketReporter};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

#[test]
fn the_policy_is_in_force() {
    let port = serve();
    let k = start(port, None, Box::new(RecordingReporter::default()));
    // The app's own site loads.
    assert_eq!(k.navigate(&format!("http://127.0.0.1:{port}/app/page")).unwrap(), "");
    k.wait_for(|k| k.title() == "App /app/page", "the app's page");
    // The same server outside the app's path is blocked by the managed policy.
    let outside = k.navigate(&format!("http://127.0.0.1:{port}/elsewhere")).unwrap();
    assert_eq!(outside, "net::ERR_BLOCKED_BY_ADMINISTRATOR");
    assert_ne!(k.title(), "Outside");
    // Only the managed policy refuses with ERR_BLOCKED_BY_ADMINISTRATOR: it is in force. The
    // app's own start page stays reachable under it.
    k.navigate(&k.start).unwrap();
    k.wait_for(|k| k.href() == k.start, "the start page");
    // The mounted policy file never touched the real /etc.
    assert!(!std::path::Path::new("/etc/chromium/policies/managed/slate.json").exists());
}

#[test]
fn a_second_session_sees_nothing_of_the_first() {
    let port = serve();
    let echo = format!("http://127.0.0.1:{port}/app/echo");
    let first_dir;
    {
        let k = start(port, None, Box::new(RecordingReporter::default()));
        k.navigate(&format!("http://127.0.0.1:{port}/app/set")).unwrap();
        k.wait_for(|k| k.title() == "Set", "the cookie page");
        k.navigate(&echo).unwrap();
        // The control: within a session the cookie is sent back.
        k.wait_for(|k| k.title() == "cookie:yes", "the cookie within the session");
        first_dir = k.browser.plan.session_dir.clone();
        assert!(first_dir.join("profile").exists());
    }
    assert!(!first_dir.exists(), "the first session's profile is removed when it ends");
    let k = start(port, None, Box::new(RecordingReporter::default()));
    assert_ne!(k.browser.plan.session_dir, first_dir);
    k.navigate(&echo).unwrap();
    k.wait_for(|k| k.title() == "cookie:no", "no cookie in the second session");
    // No history either: the new tab's history holds only this session's pages.
    let length = k.browser.eval(&k.session, "history.length").unwrap();
    assert!(length.as_u64().unwrap() <= 2, "history length {length}");
}

/// A fake slated on a Unix socket: records each request, answers ok.
fn fake_slated(dir: &std::path::Path) -> (std::path::PathBuf, Arc<Mutex<Vec<Value>>>) {
    let path = dir.join("control.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let request: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let reply = if request["cmd"] == "tell_teacher" {
                json!({"ok": true, "report": "r-1"})
            } else {
                json!({"ok": true})
            };
            log.lock().unwrap().push(request);
            let mut stream = stream;
            let _ = writeln!(stream, "{reply}");
        }
    });
    (path, seen)
}

#[test]
fn a_listed_url_gets_the_block_page_and_tell_my_teacher_reports_it() {
    let port = serve();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("policy/lists")).unwrap();
    let salt = [7u8, 9, 11];
    let bad = format!("http://127.0.0.1:{port}/app/bad?x=1");
    let entry = slate_protocol::url_lists::salted_hash(
        &salt,
        &slate_protocol::url_lists::normalise(&bad).unwrap(),
    );
    let iwf = format!("# test list\nurl-sha256:{entry}\n");
    let iwf_file = slate_protocol::device::ListFile::of(iwf.as_bytes());
    let payload = json!({"v": 1, "url_salt": "07090b", "lists": {"iwf": iwf_file}}).to_string();
    std::fs::write(
        state.join("policy/filter.json"),
        json!({"v": 1, "key_id": "k", "payload": payload, "signature": "s"}).to_string(),
    )
    .unwrap();
    std::fs::write(state.join("policy/lists").join(iwf_file.file_name()), iwf).unwrap();

    let (socket, seen) = fake_slated(dir.path());
    let k = start(port, Some(&state), Box::new(SocketReporter { socket }));
    // An unlisted page on the same site loads normally.
    k.navigate(&format!("http://127.0.0.1:{port}/app/good")).unwrap();
    k.wait_for(|k| k.title() == "App /app/good", "the unlisted page");
    // slated hears where the pupil is: URL and title, together.
    k.wait_for(
        |_| {
            seen.lock().unwrap().iter().any(|r| {
                r["cmd"] == "foreground"
                    && r["url"].as_str().is_some_and(|u| u.ends_with("/app/good"))
                    && r["title"] == "App /app/good"
            })
        },
        "foreground with the unlisted page's URL and title",
    );
    // The listed one (written differently: upper-case host part, a fragment) is replaced.
    k.navigate(&format!("http://127.0.0.1:{port}/app/%62ad?x=1#top")).unwrap();
    k.wait_for(|k| k.title() == "Not this page", "the block page");
    let body = k.browser.eval(&k.session, "document.body.innerText").unwrap();
    assert!(!body.as_str().unwrap().contains("app page"), "the listed page's content never showed");
    // As for "tell my teacher" below: the page is answered first, slated told just after.
    let filed = |_: &_| seen.lock().unwrap().iter().any(|r| r["cmd"] == "filter_blocked");
    k.wait_for(filed, "filter_blocked sent to slated");
    let blocked = seen
        .lock()
        .unwrap()
        .iter()
        .find(|r| r["cmd"] == "filter_blocked")
        .cloned()
        .expect("filter_blocked sent");
    assert_eq!(blocked["layer"], "url");
    assert_eq!(blocked["list"], "iwf");
    assert_eq!(blocked["rule"], format!("url-sha256:{entry}"));
    assert!(blocked["target"].as_str().unwrap().contains("/app/%62ad?x=1"), "{blocked}");
    assert!(!seen.lock().unwrap().iter().any(|r| r["cmd"] == "tell_teacher"));

    // "Tell my teacher".
    k.browser.eval(&k.session, "document.getElementById('tell').click(); 1").unwrap();
    k.wait_for(|k| k.title() == "Your teacher has been told", "the thank-you page");
    // The thank-you page is answered at once; the report goes to slated just after it.
    let told = |_: &_| seen.lock().unwrap().iter().any(|r| r["cmd"] == "tell_teacher");
    k.wait_for(told, "tell_teacher sent to slated");
    let tell = seen
        .lock()
        .unwrap()
        .iter()
        .find(|r| r["cmd"] == "tell_teacher")
        .cloned()
        .expect("tell_teacher sent");
    assert_eq!(tell["app"], "reading");
    assert!(tell["url"].as_str().unwrap().contains("/app/%62ad?x=1"), "{tell}");
    // Foreground reports carry URL and title only.
    let fg: Vec<Value> =
        seen.lock().unwrap().iter().filter(|r| r["cmd"] == "foreground").cloned().collect();
    // Never a title with another page's URL.
    assert!(
        !fg.iter().any(|r| r["title"] == "App /app/good"
            && !r["url"].as_str().is_some_and(|u| u.ends_with("/app/good"))),
        "{fg:?}"
    );
    for r in &fg {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| ["cmd", "app", "url", "title", "pid"].contains(&k.as_str())),
            "{r}"
        );
    }
}

#[test]
fn a_crashed_page_ends_the_browser() {
    // The kiosk goes home when the app crashes: a dead page closes the whole browser (whose exit
    // the launcher reports) instead of leaving a "sad tab" on screen.
    let port = serve();
    let mut k = start(port, None, Box::new(RecordingReporter::default()));
    let _ = k.browser.conn.call(
        "Page.crash",
        json!({}),
        Some(&k.session),
        std::time::Duration::from_secs(5),
    );
    for _ in 0..100 {
        if !k.alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the browser is still running after its page crashed");
}

/// The school's proxy, as slate-network renders it from `slate-provision.conf` and slate-ui
/// reads it (`browser::network_policy`), carries the kiosk browser's requests: a site whose
/// name resolves nowhere loads through a proxy on loopback, and the proxy saw the request.
#[test]
fn the_school_proxy_carries_the_browsers_requests() {
    use std::net::{TcpListener, TcpStream};
    let port = serve();
    // A forwarding proxy: records each request line, passes it on to the test site with the
    // absolute URL made a path, and pipes the answer back.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).unwrap_or(0) == 0 {
                    return;
                }
                log.lock().unwrap().push(first.trim().to_owned());
                let mut parts = first.split_whitespace();
                let (method, url) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
                let mut upstream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                write!(upstream, "{method} {path} HTTP/1.1\r\n").unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    upstream.write_all(line.as_bytes()).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                }
                let mut back = upstream.try_clone().unwrap();
                let mut client = client;
                let _ = std::io::copy(&mut back, &mut client);
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("slate-provision.conf"),
        format!("proxy = \"http://127.0.0.1:{proxy_port}\"\nproxy_bypass = \"*.intranet.test\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(slate_e2e::binary("slate-network"))
        .arg("--apply")
        .arg("--nm-dir")
        .arg(tmp.path().join("nm"))
        .arg("--state-dir")
        .arg(tmp.path().join("network"))
        .arg(tmp.path().join("slate-provision.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = std::fs::read(tmp.path().join("network/chromium-policy.json")).unwrap();
    let (proxy, _) = slate_ui::browser::network_policy(&json).unwrap();

    let k = kiosk_browser::start_proxied("school-app.test", port, proxy.unwrap());
    k.wait_for(
        |k| k.title().starts_with("App /app/start"),
        "the app's start page through the proxy",
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|l| l == &format!("GET http://school-app.test:{port}/app/start HTTP/1.1")),
        "the proxy saw {seen:?}"
    );
}
