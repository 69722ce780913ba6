//! The client side of slated's control socket, for `slatectl`, slate-ui and the benchmarks: one
//! request, one reply, blocking, with a bound on how long a reply may take.

use crate::control::{Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for a reply (a press waits for an fsync; a stuck daemon must not hang us).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach slated at {}: {source} (is slated running?)", socket.display())]
    NotRunning { socket: PathBuf, source: std::io::Error },
    #[error("talking to slated at {}: {source}", socket.display())]
    Io { socket: PathBuf, source: std::io::Error },
    #[error("slated at {} closed the connection without a reply", socket.display())]
    NoReply { socket: PathBuf },
    #[error("slated at {} sent a reply that is not understood: {detail}", socket.display())]
    BadReply { socket: PathBuf, detail: String },
}

/// Sends `request` and waits for the reply (a refusal is a reply with `ok: false`).
pub fn send(socket: &Path, request: &Request) -> Result<Reply, ClientError> {
    let io = |source| ClientError::Io { socket: socket.to_owned(), source };
    let mut stream = UnixStream::connect(socket)
        .map_err(|source| ClientError::NotRunning { socket: socket.to_owned(), source })?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(request).expect("a request always serialises");
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ClientError::NoReply { socket: socket.to_owned() });
    }
    serde_json::from_str(&reply)
        .map_err(|e| ClientError::BadReply { socket: socket.to_owned(), detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_daemon_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let err = send(&socket, &Request::Status {}).unwrap_err().to_string();
        assert!(err.starts_with(&format!("cannot reach slated at {}", socket.display())), "{err}");
        assert!(err.ends_with("(is slated running?)"), "{err}");
    }
}
