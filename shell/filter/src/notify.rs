//! Blocked attempts and security breaches to slated: each block event the server queued (already coalesced to one per
//! name per minute) becomes a `filter_blocked` request on slated's control socket, which adds
//! session and pupil and spools the event.
//!
//! DNS answers never wait for this: the server only `try_send`s into a bounded queue, and drops
//! (and counts, [`crate::server::FilterHandle::dropped_events`]) when it is full because slated
//! is away. This task drains the queue over one connection, reconnecting with a backoff; an event
//! from before a profile switch (another pupil's session) is dropped rather than attributed to
//! the next pupil.

use crate::events::BlockEvent;
use crate::name;
use crate::server::{FilterHandle, Queued};
use slate_ipc::control::{Reply, Request};
use slate_protocol::{Breach, FilterLayer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Longest wait for slated's reply to one request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait before reconnecting to an absent slated.
pub const RECONNECT_MIN: Duration = Duration::from_millis(200);
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Attempts on a live connection before one event is given up (so one event that breaks the
/// connection cannot stop all the others).
const ATTEMPTS: u32 = 3;

/// The JSON line for `event`, or `None` when its name is not a domain name (a malformed query
/// is refused, but there is nothing to put on a pupil's record).
pub fn request_line(event: &BlockEvent) -> Option<String> {
    let target = name::normalise(&event.name)?;
    let rule = match (event.category, event.rule.strip_prefix("*.")) {
        (None, _) => event.rule.clone(), // the filter's own reason ("no valid policy")
        (Some(_), Some(_)) => format!("wildcard:{}", event.rule),
        (Some(_), None) => format!("exact:{}", event.rule),
    };
    let request =
        Request::FilterBlocked { layer: FilterLayer::Dns, target, rule, list: event.list.clone() };
    let mut line = serde_json::to_string(&request).ok()?;
    line.push('\n');
    Some(line)
}

/// What became of the events taken off the queue.
#[derive(Debug, Default)]
pub struct Counts {
    /// slated answered ok.
    pub sent: AtomicU64,
    /// slated answered with an error, or the connection failed on it every attempt.
    pub refused: AtomicU64,
    /// Queued before a profile switch, so dropped.
    pub stale: AtomicU64,
}

impl Counts {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }
}

/// Drains `queue` to slated's control socket at `socket` until the queue closes.
pub async fn forward(
    mut queue: mpsc::Receiver<Queued>,
    socket: PathBuf,
    handle: FilterHandle,
    counts: Arc<Counts>,
) {
    let mut conn: Option<BufReader<UnixStream>> = None;
    let mut backoff = RECONNECT_MIN;
    let mut away_logged = false;
    while let Some(queued) = queue.recv().await {
        let Some(line) = request_line(&queued.event) else { continue };
        let mut attempts = 0;
        loop {
            if queued.epoch != handle.epoch() {
                counts.stale.fetch_add(1, Ordering::Relaxed);
                break;
            }
            let stream = match &mut conn {
                Some(stream) => stream,
                None => match UnixStream::connect(&socket).await {
                    Ok(stream) => {
                        backoff = RECONNECT_MIN;
                        away_logged = false;
                        conn.insert(BufReader::new(stream))
                    }
                    Err(e) => {
                        if !away_logged {
                            tracing::warn!(socket = %socket.display(), error = %e,
                                "slated is not answering; block events wait (and drop when the queue is full)");
                            away_logged = true;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(RECONNECT_MAX);
                        continue;
                    }
                },
            };
            attempts += 1;
            match tokio::time::timeout(REPLY_TIMEOUT, exchange(stream, &line)).await {
                Ok(Ok(reply)) => {
                    if reply.ok {
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(list = %queued.event.list, "slated refused a filter_blocked request");
                    }
                    break;
                }
                _ => {
                    conn = None;
                    if attempts >= ATTEMPTS {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
    }
}

/// Sends each security breach from `queue` to slated's control socket at `socket` as a
/// `security_breach` request (slate-dns's own refusals, [`crate::refusal`]; the drop counter's,
/// [`crate::drops`]), until the queue closes. Unlike a block event, a breach is never given up
/// while slated is away: it waits, reconnecting with a backoff, and goes when slated is back.
/// One slated refuses (it never should: the request was checked as slated checks it) is logged
/// and dropped.
pub async fn send_breaches(mut queue: mpsc::Receiver<Breach>, socket: PathBuf) {
    while let Some(breach) = queue.recv().await {
        send_breach(&socket, breach).await;
    }
}

/// Sends one breach, waiting for slated as long as it takes. True when slated filed it.
pub async fn send_breach(socket: &Path, breach: Breach) -> bool {
    let what = breach.what();
    let mut line = match serde_json::to_string(&Request::SecurityBreach { breach }) {
        Ok(line) => line,
        Err(_) => return false,
    };
    line.push('\n');
    let mut backoff = RECONNECT_MIN;
    let mut away_logged = false;
    loop {
        let sent = async {
            let mut stream = BufReader::new(UnixStream::connect(socket).await?);
            tokio::time::timeout(REPLY_TIMEOUT, exchange(&mut stream, &line))
                .await
                .map_err(std::io::Error::other)?
        };
        match sent.await {
            Ok(reply) if reply.ok => {
                tracing::info!(what, "security breach filed with slated");
                return true;
            }
            Ok(reply) => {
                tracing::error!(what, error = ?reply.error, "slated refused a security breach");
                return false;
            }
            Err(e) => {
                if !away_logged {
                    tracing::warn!(socket = %socket.display(), error = %e,
                        "slated is not answering; the security breach waits for it");
                    away_logged = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

/// Writes one request line and reads one reply line.
async fn exchange(stream: &mut BufReader<UnixStream>, line: &str) -> std::io::Result<Reply> {
    stream.get_mut().write_all(line.as_bytes()).await?;
    let mut reply = String::new();
    if stream.read_line(&mut reply).await? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "slated closed"));
    }
    serde_json::from_str(&reply).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Block;
    use crate::lists::Category;

    fn event(name: &str, rule: &str, list: &str, category: Option<Category>) -> BlockEvent {
        let block = Block { rule: rule.into(), list: list.into(), category };
        BlockEvent::new(chrono::Utc::now(), name, 1, &block)
    }

    #[test]
    fn request_lines_carry_layer_target_rule_and_list() {
        let cases = [
            (
                event("WWW.Adult.test.", "*.adult.test", "adult", Some(Category::Adult)),
                Some(
                    r#"{"cmd":"filter_blocked","layer":"dns","target":"www.adult.test","rule":"wildcard:*.adult.test","list":"adult"}"#,
                ),
            ),
            (
                event("x.example", "x.example", "iwf", Some(Category::ChildAbuse)),
                Some(
                    r#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"exact:x.example","list":"iwf"}"#,
                ),
            ),
            (
                event("x.example", "no valid policy", "slate:no-policy", None),
                Some(
                    r#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"no valid policy","list":"slate:no-policy"}"#,
                ),
            ),
            (event("bad name!", "malformed name", "slate:malformed-name", None), None),
        ];
        for (event, expected) in cases {
            let expected = expected.map(|e| format!("{e}\n"));
            assert_eq!(request_line(&event), expected, "{event:?}");
        }
    }
}
