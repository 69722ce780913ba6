//! The framing of Slate's local sockets (slated's control socket, slate-dns's socket): one
//! request per line, one reply line for each, in order. A line longer than the limit gets one
//! error reply and the connection is closed; blank lines are skipped.

use std::future::Future;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Serves one connection. `answer` turns a request line (without its newline) into a reply
/// line; `too_long` is the reply line for a request over `max_request_bytes`.
pub async fn serve<R, W, F, Fut>(
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
            serve(server_read, &mut server_write, max, too_long, |line| async move {
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
