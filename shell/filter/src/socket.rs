//! slate-dns's own socket, for slated: which profile is in force, the names looked up lately (for
//! a report) and "re-read the policy". A Unix stream socket (mode 0660, default
//! `/run/slate/dns.sock`), one JSON request per line, one JSON reply per line. Every request is
//! validated; anything else gets `{"ok":false,"error":"…"}` and the connection stays usable.
//!
//! ```text
//! {"cmd":"recent"}                   -> {"ok":true,"names":["newest.example", …]}
//!                                       up to 20 distinct names from the last 120 s, newest first
//! {"cmd":"profile","profile":"oak"}  -> {"ok":true}   in force at once; a profile the policy
//! {"cmd":"profile","profile":null}   -> {"ok":true}   lacks (or null) means its default
//! {"cmd":"reload"}                   -> {"ok":true} | {"ok":false,"error":"…"}
//! ```
//!
//! A profile switch is a session boundary: recent names are forgotten and queued block events
//! dropped (see [`FilterHandle::set_profile`]). `reload` re-reads the policy bundle and list
//! files; a bad bundle changes nothing, a refused list file fails closed (see [`crate::source`]),
//! and both answer with an error saying so.

use crate::server::FilterHandle;
use crate::source::Files;
use serde::{Deserialize, Deserializer, Serialize};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};

/// Default path of the socket.
pub const DEFAULT_SOCKET: &str = "/run/slate/dns.sock";
/// Longest request line accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("socket {}: cannot {action}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("socket {}: another slate-dns is already listening there", path.display())]
    InUse { path: PathBuf },
    #[error("socket {}: the path exists and is not a socket; not removing it", path.display())]
    NotASocket { path: PathBuf },
}

/// A request, as sent on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Recent {},
    Profile {
        /// Must be present; `null` for the policy's default.
        #[serde(deserialize_with = "present")]
        profile: Option<String>,
    },
    Reload {},
}

/// `Option` without serde's "missing means None": a request that forgets the field is refused.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok() -> Self {
        Self { ok: true, names: None, error: None }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, names: None, error: Some(message.into()) }
    }
    fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        line.push(b'\n');
        line
    }
}

/// Parses and validates one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
    // serde would take `["recent"]` for `{"cmd":"recent"}`: only objects are requests.
    if !value.is_object() {
        return Err("bad request: not a JSON object".into());
    }
    let request: Request =
        serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))?;
    if let Request::Profile { profile: Some(name) } = &request {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err("bad request: `profile` is not 1 to 64 of [A-Za-z0-9_-] or null".into());
        }
    }
    Ok(request)
}

/// How `reload` re-reads the policy: the files on a device; something else in tests.
pub trait Reload: Send + Sync + 'static {
    /// Re-reads and installs; `Err` says what was refused.
    fn reload(&self, handle: &FilterHandle) -> Result<(), String>;
}

impl Reload for Files {
    fn reload(&self, handle: &FilterHandle) -> Result<(), String> {
        match Files::reload(self, handle) {
            Ok(report) if report.refused.is_empty() => {
                tracing::info!(lists = report.loaded.len(), "policy and lists reloaded");
                Ok(())
            }
            Ok(report) => {
                tracing::error!(
                    refused = report.refused.len(),
                    kept = report.kept.len(),
                    "list files refused on reload"
                );
                Err(report.to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the policy in force stays");
                Err(e.to_string())
            }
        }
    }
}

/// Answers one valid request.
pub async fn answer(request: Request, handle: &FilterHandle, reload: &Arc<dyn Reload>) -> Reply {
    match request {
        Request::Recent {} => {
            let names = handle.recent_names().into_iter().map(|(n, _)| n).collect();
            Reply { ok: true, names: Some(names), error: None }
        }
        Request::Profile { profile } => {
            let known = handle.read(|f| match (f.policy(), &profile) {
                (Some(policy), Some(name)) => policy.profiles.contains_key(name),
                _ => true,
            });
            if !known {
                tracing::warn!("profile not in the policy; its default profile is in force");
            }
            handle.set_profile(profile);
            Reply::ok()
        }
        Request::Reload {} => {
            let (reload, handle) = (reload.clone(), handle.clone());
            // Parsing a million-line list takes a while: off the async threads.
            match tokio::task::spawn_blocking(move || reload.reload(&handle)).await {
                Ok(Ok(())) => Reply::ok(),
                Ok(Err(message)) => Reply::error(message),
                Err(_) => Reply::error("reload failed"),
            }
        }
    }
}

/// Binds the socket at `path`: creates the directory, removes a stale socket left by a crash
/// (never a live one, nor anything that is not a socket), mode 0660 so slated's group reaches it.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let err = |action, source| SocketError::Io { action, path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err("create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse { path: path.to_owned() });
            }
            std::fs::remove_file(path).map_err(|e| err("remove the stale socket", e))?;
        }
        Ok(_) => return Err(SocketError::NotASocket { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("inspect", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| err("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| err("set the mode of", e))?;
    Ok(listener)
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: UnixListener, handle: FilterHandle, reload: Arc<dyn Reload>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, handle.clone(), reload.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "dns socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: a reply for each request line, in order.
async fn connection(stream: UnixStream, handle: FilterHandle, reload: Arc<dyn Reload>) {
    let (read, write) = stream.into_split();
    let too_long = Reply::error(format!("bad request: longer than {MAX_REQUEST_BYTES} bytes"));
    slate_protocol::lines::serve(read, write, MAX_REQUEST_BYTES, too_long.to_line(), |line| {
        let (handle, reload) = (&handle, &reload);
        async move {
            let reply = match parse_request(&line) {
                Ok(request) => answer(request, handle, reload).await,
                Err(message) => Reply::error(message),
            };
            reply.to_line()
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_junk_is_refused_with_a_reason() {
        let good = [
            (r#"{"cmd":"recent"}"#, Request::Recent {}),
            (r#"{"cmd":"reload"}"#, Request::Reload {}),
            (
                r#"{"cmd":"profile","profile":"oak"}"#,
                Request::Profile { profile: Some("oak".into()) },
            ),
            (r#"{"cmd":"profile","profile":null}"#, Request::Profile { profile: None }),
        ];
        for (line, expected) in good {
            assert_eq!(parse_request(line.as_bytes()), Ok(expected), "{line}");
        }
        let bad = [
            ("", "bad request"),
            ("not json", "bad request"),
            (r#"{"cmd":"shutdown"}"#, "unknown variant"),
            (r#"{"cmd":"recent","x":1}"#, "unknown field"),
            (r#"{"cmd":"profile"}"#, "missing field `profile`"),
            (r#"{"cmd":"profile","profile":7}"#, "invalid type"),
            (r#"{"cmd":"profile","profile":"a b"}"#, "`profile`"),
            (r#"{"cmd":"profile","profile":""}"#, "`profile`"),
            (r#"{"profile":"oak"}"#, "missing field `cmd`"),
            (r#"["recent"]"#, "bad request"),
        ];
        for (line, expected) in bad {
            let err = parse_request(line.as_bytes()).expect_err(line);
            assert!(err.contains(expected), "{line}: {err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn replies_are_one_json_line() {
        assert_eq!(Reply::ok().to_line(), b"{\"ok\":true}\n");
        let recent = Reply { ok: true, names: Some(vec!["a.test".into()]), error: None };
        assert_eq!(recent.to_line(), b"{\"ok\":true,\"names\":[\"a.test\"]}\n");
        assert_eq!(Reply::error("no").to_line(), b"{\"ok\":false,\"error\":\"no\"}\n");
    }
}
