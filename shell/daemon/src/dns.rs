//! slated's side of slate-dns's socket ([`slate_ipc::dns`], default `/run/slate/dns.sock`): the
//! names looked up just before a press, the profile of the signed-in pupil, and "re-read the
//! policy". Owns the client and the reply checks; must never make a press wait: every request
//! has a hard timeout, and a slate-dns that is away is an empty answer, not an error that stops
//! anything.

use slate_ipc::dns::{Reply, Request};
use slate_protocol::MAX_RECENT_NAMES;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The most a press waits for slate-dns's recent names.
pub const RECENT_TIMEOUT: Duration = Duration::from_millis(100);
/// The most `profile` and `reload` wait.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest reply line read.
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// Reads a `recent` reply: at most [`MAX_RECENT_NAMES`] well-formed names, in the order given
/// (newest first). Anything else is dropped, so a report never carries what the server would
/// refuse. Pure.
pub fn parse_recent(line: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Reply>(line) {
        Ok(reply) if reply.ok => reply
            .names
            .unwrap_or_default()
            .into_iter()
            .filter(|n| {
                !n.is_empty()
                    && n.len() <= slate_protocol::MAX_NAME_BYTES
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            })
            .take(MAX_RECENT_NAMES)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a `check` reply: the list that blocks the name, or `None` when allowed. A list name is
/// at most 64 printable characters (what the server takes); anything else is an error. Pure.
pub fn parse_check(line: &[u8]) -> Result<Option<String>, String> {
    match serde_json::from_slice::<Reply>(line) {
        Ok(Reply { ok: true, check: Some(answer), .. }) => match answer.blocked_by {
            Some(list)
                if list.is_empty() || list.len() > 64 || list.chars().any(char::is_control) =>
            {
                Err("slate-dns named a list that is not a list name".into())
            }
            blocked_by => Ok(blocked_by),
        },
        Ok(Reply { ok: false, error, .. }) => {
            Err(format!("slate-dns refused: {}", error.unwrap_or_default()))
        }
        Ok(_) => Err("slate-dns sent no check answer".into()),
        Err(e) => Err(format!("slate-dns sent a reply that is not understood: {e}")),
    }
}

/// The client. With no socket configured every request is skipped.
#[derive(Debug, Clone, Default)]
pub struct DnsSocket {
    path: Option<PathBuf>,
}

impl DnsSocket {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self { path }
    }

    /// The names looked up in the last two minutes, newest first; empty when slate-dns is away
    /// or slower than `timeout`.
    pub async fn recent(&self, timeout: Duration) -> Vec<String> {
        match self.ask(&Request::Recent {}, timeout).await {
            Ok(Some(line)) => parse_recent(&line),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::debug!(error = %e, "no recent names from slate-dns");
                Vec::new()
            }
        }
    }

    /// Sets the filter profile in force (`None`: the policy's default).
    pub async fn profile(&self, profile: Option<&str>) -> Result<(), String> {
        self.command(&Request::Profile { profile: profile.map(str::to_owned) }).await
    }

    /// Asks slate-dns to re-read the policy and lists.
    pub async fn reload(&self) -> Result<(), String> {
        self.command(&Request::Reload {}).await
    }

    /// The filter check's question for one name: `Ok(Some(list))` blocked by that list,
    /// `Ok(None)` allowed; `Err` when slate-dns is away, refuses or is not configured.
    pub async fn check(&self, name: &str) -> Result<Option<String>, String> {
        let request = Request::Check { name: name.to_owned() };
        let Some(reply) = self.ask(&request, COMMAND_TIMEOUT).await? else {
            return Err("no slate-dns socket configured".into());
        };
        parse_check(&reply)
    }

    async fn command(&self, request: &Request) -> Result<(), String> {
        let Some(reply) = self.ask(request, COMMAND_TIMEOUT).await? else { return Ok(()) };
        match serde_json::from_slice::<Reply>(&reply) {
            Ok(r) if r.ok => Ok(()),
            Ok(r) => Err(format!("slate-dns refused: {}", r.error.unwrap_or_default())),
            Err(e) => Err(format!("slate-dns sent a reply that is not understood: {e}")),
        }
    }

    /// One request, one reply line; `None` when no socket is configured.
    async fn ask(&self, request: &Request, timeout: Duration) -> Result<Option<Vec<u8>>, String> {
        let Some(path) = &self.path else { return Ok(None) };
        let mut line = serde_json::to_vec(request).expect("a request always serialises");
        line.push(b'\n');
        let exchange = async {
            let mut stream = UnixStream::connect(path).await.map_err(|e| e.to_string())?;
            stream.write_all(&line).await.map_err(|e| e.to_string())?;
            let mut reply = Vec::new();
            let mut reader = BufReader::new(stream).take(MAX_REPLY_BYTES);
            reader.read_until(b'\n', &mut reply).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(reply)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => Ok(Some(reply)),
            Ok(Err(e)) => Err(format!("slate-dns at {}: {e}", path.display())),
            Err(_) => Err(format!(
                "slate-dns at {}: no answer in {} ms",
                path.display(),
                timeout.as_millis()
            )),
        }
    }
}

/// A stand-in slate-dns on a Unix socket, for tests: answers `recent` with `names` after
/// `delay`, and records every request line.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::net::UnixListener;

    pub struct FakeDns {
        pub requests: Arc<Mutex<Vec<String>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for FakeDns {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    pub fn serve(path: &std::path::Path, names: Vec<String>, delay: Duration) -> FakeDns {
        let listener = UnixListener::bind(path).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (names, seen) = (names.clone(), seen.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        seen.lock().unwrap().push(line.clone());
                        let reply = if line.contains("\"recent\"") {
                            tokio::time::sleep(delay).await;
                            serde_json::json!({"ok": true, "names": names})
                        } else {
                            serde_json::json!({"ok": true})
                        };
                        let mut out = serde_json::to_vec(&reply).unwrap();
                        out.push(b'\n');
                        if write.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeDns { requests, task }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_replies_are_checked() {
        type Case<'a> = (&'a [u8], Result<Option<&'a str>, &'a str>);
        let cases: Vec<Case> = vec![
            (br#"{"ok":true,"check":{"blocked_by":"adult"}}"#, Ok(Some("adult"))),
            (br#"{"ok":true,"check":{"blocked_by":null}}"#, Ok(None)),
            (br#"{"ok":false,"error":"bad request: unknown variant"}"#, Err("refused")),
            (br#"{"ok":true}"#, Err("no check answer")),
            (br#"{"ok":true,"check":{"blocked_by":""}}"#, Err("not a list name")),
            (b"garbage", Err("not understood")),
        ];
        for (line, want) in cases {
            let got = parse_check(line);
            match want {
                Ok(list) => assert_eq!(got, Ok(list.map(str::to_owned)), "{line:?}"),
                Err(part) => assert!(got.unwrap_err().contains(part), "{line:?}"),
            }
        }
    }

    #[test]
    fn recent_replies_are_checked() {
        let cases: Vec<(&[u8], Vec<&str>)> = vec![
            (br#"{"ok":true,"names":["b.example","a.example"]}"#, vec!["b.example", "a.example"]),
            (br#"{"ok":true,"names":[]}"#, vec![]),
            (br#"{"ok":false,"error":"x"}"#, vec![]),
            (b"garbage", vec![]),
            (br#"{"ok":true,"names":["ok.example","not a name","","x/y"]}"#, vec!["ok.example"]),
        ];
        for (line, want) in cases {
            assert_eq!(parse_recent(line), want, "{}", String::from_utf8_lossy(line));
        }
        let many: Vec<String> = (0..30).map(|i| format!("n{i}.example")).collect();
        let line = serde_json::to_vec(&serde_json::json!({"ok": true, "names": many})).unwrap();
        assert_eq!(parse_recent(&line), many[..MAX_RECENT_NAMES].to_vec());
    }

    #[tokio::test]
    async fn a_slow_or_absent_slate_dns_is_an_empty_answer_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.sock");
        // Nothing listening.
        assert!(DnsSocket::new(Some(path.clone())).recent(RECENT_TIMEOUT).await.is_empty());
        assert!(DnsSocket::new(None).recent(RECENT_TIMEOUT).await.is_empty());
        assert_eq!(DnsSocket::new(None).reload().await, Ok(()));

        let _fake = fake::serve(&path, vec!["a.example".into()], Duration::from_secs(5));
        let started = std::time::Instant::now();
        assert!(DnsSocket::new(Some(path)).recent(RECENT_TIMEOUT).await.is_empty());
        // Generous bound: the point is that it did not wait the 5 s the fake takes.
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn requests_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.sock");
        let fake = fake::serve(&path, vec!["a.example".into()], Duration::ZERO);
        let dns = DnsSocket::new(Some(path));
        assert_eq!(dns.recent(Duration::from_secs(5)).await, vec!["a.example".to_string()]);
        dns.profile(Some("oak")).await.unwrap();
        dns.profile(None).await.unwrap();
        dns.reload().await.unwrap();
        assert_eq!(
            *fake.requests.lock().unwrap(),
            vec![
                r#"{"cmd":"recent"}"#,
                r#"{"cmd":"profile","profile":"oak"}"#,
                r#"{"cmd":"profile","profile":null}"#,
                r#"{"cmd":"reload"}"#,
            ]
        );
    }
}
