//! What one client can hold: how many connections, and for how long a request's head and body
//! may take. A slow client (slowloris: a header byte every few seconds, or a body that never
//! ends) is closed instead of keeping a connection and its task for ever; past the limits a new
//! connection is closed at once, so the file descriptors `LimitNOFILE` allows are never all
//! taken. The decision is [`admits`], pure; [`LimitedAcceptor`] carries it out for `serve`.

use axum::body::{Body, Bytes, HttpBody};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The server's limits on connections and slow requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections in all (keep under `LimitNOFILE` in systemd/slate-server.service).
    pub connections: usize,
    /// Open connections from one address: a staff room behind one address has many browsers,
    /// each device has its own.
    pub connections_per_address: usize,
    /// From the connection (after TLS) or the last answer to a request's whole head.
    pub header_read: Duration,
    /// From a request's head to the end of its body (each HTTP/2 stream's own).
    pub body: Duration,
    /// HTTP/2: how often the server pings a connection, and how long it waits for the answer
    /// before closing it (a client that stopped reading, or went away without a word).
    pub h2_ping_every: Duration,
    pub h2_ping_timeout: Duration,
}

/// HTTP/2 (browsers over HTTPS, by ALPN): requests one connection may have open at once. A
/// page and its few assets need far fewer; each open one may hold up to
/// [`H2_SEND_BUFFER_BYTES`] of answer a client has not read.
pub const H2_MAX_STREAMS: u32 = 32;
/// HTTP/2: bytes of one request's answer buffered for a client that does not read it.
pub const H2_SEND_BUFFER_BYTES: usize = 64 * 1024;
/// HTTP/2: the largest request head (decoded header names and values) a client may send; a
/// browser's with its cookies is a few kilobytes.
pub const H2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            connections: 4000,
            connections_per_address: 256,
            header_read: Duration::from_secs(10),
            body: Duration::from_secs(60),
            h2_ping_every: Duration::from_secs(20),
            h2_ping_timeout: Duration::from_secs(20),
        }
    }
}

/// Whether one more connection may open, given those open in all and from its address.
pub fn admits(open: usize, open_from_address: usize, limits: &ServeLimits) -> bool {
    open < limits.connections && open_from_address < limits.connections_per_address
}

/// Open connections, in all and by address (an address with none is not kept).
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Accepts a TCP connection if [`admits`] says so, and counts it until it closes.
#[derive(Debug, Clone)]
pub struct LimitedAcceptor {
    limits: ServeLimits,
    open: Arc<Mutex<Open>>,
}

impl LimitedAcceptor {
    pub fn new(limits: ServeLimits) -> Self {
        LimitedAcceptor { limits, open: Arc::default() }
    }

    fn take_slot(&self, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if !admits(open.total, from_address, &self.limits) {
            return None;
        }
        open.total += 1;
        *open.by_address.entry(address).or_default() += 1;
        Some(Slot { open: self.open.clone(), address })
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for LimitedAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let slot = stream.peer_addr().ok().and_then(|peer| self.take_slot(peer.ip()));
        std::future::ready(match slot {
            // Dropping the stream closes it.
            None => Err(io::Error::other("connection limit reached")),
            Some(slot) => Ok((Counted { stream, _slot: slot }, service)),
        })
    }
}

/// One counted connection: given back when the connection is dropped.
#[derive(Debug)]
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// A stream that holds its connection's [`Slot`].
#[derive(Debug)]
pub struct Counted<S> {
    stream: S,
    _slot: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that fails once its deadline passes, however slowly it trickles in (a
/// timeout between reads would let one byte every few seconds keep it open).
pub struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    pub fn new(inner: Body, within: Duration) -> Self {
        DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(within)) }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body too slow",
            )))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_admitted_up_to_both_limits() {
        let limits =
            ServeLimits { connections: 10, connections_per_address: 3, ..Default::default() };
        let cases = [(0, 0, true), (9, 2, true), (10, 0, false), (5, 3, false), (11, 4, false)];
        for (open, from_address, expected) in cases {
            assert_eq!(admits(open, from_address, &limits), expected, "{open} {from_address}");
        }
    }

    #[tokio::test]
    async fn slots_are_given_back_and_empty_addresses_forgotten() {
        let limits =
            ServeLimits { connections: 3, connections_per_address: 2, ..Default::default() };
        let acceptor = LimitedAcceptor::new(limits);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = acceptor.take_slot(a).expect("first");
        let second = acceptor.take_slot(a).expect("second from a");
        assert!(acceptor.take_slot(a).is_none(), "a's limit");
        let third = acceptor.take_slot(b).expect("b has its own");
        assert!(acceptor.take_slot(b).is_none(), "the total limit");
        drop((first, second));
        assert_eq!(acceptor.open.lock().unwrap().by_address.len(), 1, "a is forgotten");
        assert!(acceptor.take_slot(b).is_some(), "given back");
        drop(third);
    }
}
