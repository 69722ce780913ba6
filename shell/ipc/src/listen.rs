//! The listening side of Slate's local sockets (slated's control socket, slate-dns's socket):
//! binding with the permission checks both need, and the framing of each connection (one
//! request per line, one reply line for each, in order; a line longer than the limit gets one
//! error reply and the connection is closed; blank lines are skipped). Only with the `listen`
//! feature: clients such as slate-ui need neither tokio nor this.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{owner} socket {}: cannot {action}: {source}", path.display())]
    Io { owner: &'static str, action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{owner} socket {}: another {owner} is already listening there", path.display())]
    InUse { owner: &'static str, path: PathBuf },
    #[error("{owner} socket {}: the path exists and is not a socket; not removing it", path.display())]
    NotASocket { owner: &'static str, path: PathBuf },
}

/// Accepts connections until the task is aborted, handing each to `connection`. An accept that
/// fails (out of file descriptors and the like) is logged as the `name` socket's, and the loop
/// waits a moment rather than spin.
pub async fn accept_each(
    listener: UnixListener,
    name: &'static str,
    mut connection: impl FnMut(UnixStream),
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => connection(stream),
            Err(e) => {
                tracing::warn!(error = %e, "{name} socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds the socket at `path` for `owner` (the program, for messages): creates the directory,
/// removes a stale socket left by a crash (but never a live one, nor anything that is not a
/// socket), and restricts it to the owner and `group` (mode 0660; `None`: the owner's own
/// group).
pub fn bind(
    path: &Path,
    group: Option<u32>,
    owner: &'static str,
) -> Result<UnixListener, BindError> {
    let err = |action, source| BindError::Io { owner, action, path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err("create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse { owner, path: path.to_owned() });
            }
            std::fs::remove_file(path).map_err(|e| err("remove the stale socket", e))?;
            tracing::info!(socket = %path.display(), "removed a stale socket");
        }
        Ok(_) => return Err(BindError::NotASocket { owner, path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("inspect", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| err("bind", e))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| err("give to its group", e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| err("restrict", e))?;
    Ok(listener)
}

/// Serves one connection. `answer` turns a request line (without its newline) into a reply
/// line; `too_long` is the reply line for a request over `max_request_bytes`.
pub async fn serve_lines<R, W, F, Fut>(
    read: R,
    mut write: W,
    max_request_bytes: usize,
    too_long: Vec<u8>,
    mut answer: F,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = Vec<u8>>,
{
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let limit = max_request_bytes as u64 + 1;
        // A peer that goes away mid-line is gone; nothing to answer.
        match tokio::io::AsyncReadExt::take(&mut reader, limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > max_request_bytes {
            let _ = write.write_all(&too_long).await;
            return;
        }
        if complete {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if !complete {
                return;
            }
            continue;
        }
        let reply = answer(line).await;
        // A last line without a newline is answered, then the peer has said all it will.
        if write.write_all(&reply).await.is_err() || !complete {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn exchange(input: &[u8], max: usize) -> Vec<u8> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_read, mut server_write) = tokio::io::split(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(input).await.unwrap();
        // Split halves of an in-memory pipe do not end it when dropped, unlike a socket's.
        client_write.shutdown().await.unwrap();
        let serving = async {
            let too_long = b"too long\n".to_vec();
            serve_lines(server_read, &mut server_write, max, too_long, |line| async move {
                let mut reply = b"got ".to_vec();
                reply.extend(line);
                reply.push(b'\n');
                reply
            })
            .await;
            server_write.shutdown().await.unwrap();
        };
        let mut out = Vec::new();
        let (_, read) = tokio::join!(serving, client_read.read_to_end(&mut out));
        read.unwrap();
        out
    }

    #[tokio::test]
    async fn each_line_gets_its_reply_in_order_and_blank_lines_none() {
        assert_eq!(exchange(b"a\n\n  \nb\nc", 16).await, b"got a\ngot b\ngot c\n");
    }

    #[tokio::test]
    async fn a_line_over_the_limit_gets_one_error_and_the_end() {
        assert_eq!(exchange(b"ok\n0123456789abcdefX\nnever\n", 16).await, b"got ok\ntoo long\n");
        // Exactly at the limit is fine.
        assert_eq!(exchange(b"0123456789abcdef\n", 16).await, b"got 0123456789abcdef\n");
    }
}
