//! HTTP/2 over TLS (ALPN h2, as staff browsers speak it) under abuse: a connection that never
//! sends a request, a request body that never ends, a client that stops reading, while a device
//! still gets its batch answered. A real h2 client (the `h2` crate) over real TLS on loopback.
//! As in `abuse`, nothing is timed: the limits are set so that only they decide each outcome,
//! and `PATIENCE` only guards against hangs.

use crate::common::*;
use axum::http::Request;
use bytes::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use slate_protocol::IngestReply;
use slate_server::ServeLimits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// A TLS connection from 127.0.0.`from` offering only h2; the server must choose it.
async fn connect_h2(server: &TestServer, from: u8) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&server.certificate_pem()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, from], 0)))?;
    let address: SocketAddr = server.url.trim_start_matches("https://").parse().unwrap();
    let tcp = socket.connect(address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server chose HTTP/2");
    Ok(tls)
}

/// Reads until the server closes the connection; true if it did within `PATIENCE`.
async fn closed_by_server(stream: &mut TlsStream<TcpStream>) -> bool {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, drain).await.is_ok()
}

/// A POST of `body` to /api/v1/events as device `credential`, on an h2 connection.
fn events_request(credential: &str, length: usize) -> Request<()> {
    Request::post("https://localhost/api/v1/events")
        .header("authorization", format!("Bearer {credential}"))
        .header("content-type", "application/json")
        .header("content-length", length)
        .body(())
        .unwrap()
}

#[tokio::test]
async fn a_silent_h2_connection_and_an_endless_h2_body_are_closed_while_a_device_batch_is_answered()
{
    // Pings far apart: only the head and body limits can close anything here.
    let limits = ServeLimits {
        header_read: Duration::from_secs(1),
        body: Duration::from_secs(1),
        h2_ping_every: PATIENCE * 2,
        h2_ping_timeout: PATIENCE * 2,
        ..ServeLimits::default()
    };
    let server = TestServer::start_tls_limits(limits).await;
    let credential = server.enroll(12).await;

    // Connects, agrees on h2, then sends nothing at all (not even the connection preface).
    let mut silent = connect_h2(&server, 3).await.unwrap();

    // Device 12 speaks h2 properly, from its own address.
    let tls = connect_h2(&server, 2).await.unwrap();
    let (mut requests, connection) = h2::client::handshake(tls).await.unwrap();
    let connection = tokio::spawn(connection);

    // One stream whose body never ends: a byte, then nothing.
    requests = requests.ready().await.unwrap();
    let (endless, mut endless_body) =
        requests.send_request(events_request(&credential, 100_000), false).unwrap();
    endless_body.send_data(Bytes::from_static(b"{"), false).unwrap();

    // Another stream on the same connection: the batch, whole.
    let events: Vec<_> = (0..20).map(|n| report(12, None, &format!("report {n}"))).collect();
    let body = batch(events);
    requests = requests.ready().await.unwrap();
    let (answer, mut sent) =
        requests.send_request(events_request(&credential, body.len()), false).unwrap();
    sent.send_data(Bytes::from(body), true).unwrap();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200);
    let mut received = answer.into_body();
    let mut reply = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk.unwrap();
        received.flow_control().release_capacity(chunk.len()).unwrap();
        reply.extend_from_slice(&chunk);
    }
    let reply: IngestReply = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply, IngestReply::new(20, 0).taking_newer_kinds());
    // The server's SETTINGS bound what one connection may ask at once.
    assert_eq!(
        requests.current_max_send_streams(),
        slate_server::http::connections::H2_MAX_STREAMS as usize
    );

    // The endless body is cut off at the body limit: an error answer or a reset stream, never
    // a stream left open.
    let ended = tokio::time::timeout(PATIENCE, endless).await.expect("the endless body is ended");
    if let Ok(answer) = ended {
        assert!(answer.status().is_client_error(), "{}", answer.status());
    }
    assert!(closed_by_server(&mut silent).await, "a silent h2 connection is closed");
    drop(requests);
    connection.abort();
    server.stop().await;
}

#[tokio::test]
async fn an_h2_client_that_stops_reading_is_closed_by_the_pings_and_its_place_freed() {
    // One connection from an address, and head and body limits longer than PATIENCE: only an
    // unanswered ping can end the first connection and let a second in.
    let limits = ServeLimits {
        connections_per_address: 1,
        header_read: PATIENCE * 2,
        body: PATIENCE * 2,
        h2_ping_every: Duration::from_millis(100),
        h2_ping_timeout: Duration::from_millis(100),
        ..ServeLimits::default()
    };
    let server = TestServer::start_tls_limits(limits).await;

    let tls = connect_h2(&server, 4).await.unwrap();
    let (mut requests, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::pin!(connection);
    let healthz = Request::get("https://localhost/healthz").body(()).unwrap();
    let (answer, _) = requests.send_request(healthz, true).unwrap();
    // The connection is driven (and so answers pings) only until the answer is in.
    let answer = tokio::select! {
        answer = answer => answer.unwrap(),
        ended = &mut connection => panic!("the connection ended first: {ended:?}"),
    };
    assert_eq!(answer.status(), 200);
    // From here nobody reads the first connection: `connection` is never polled again.

    let waited = std::time::Instant::now();
    let second = loop {
        // Refused at once while the first holds the address's one place.
        if let Ok(tls) = connect_h2(&server, 4).await {
            break tls;
        }
        assert!(waited.elapsed() < PATIENCE, "the silent connection kept its place");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (mut again, second) = h2::client::handshake(second).await.unwrap();
    let second = tokio::spawn(second);
    let healthz = Request::get("https://localhost/healthz").body(()).unwrap();
    let (answer, _) = again.send_request(healthz, true).unwrap();
    assert_eq!(answer.await.unwrap().status(), 200, "the freed place serves");
    drop((requests, again));
    second.abort();
    server.stop().await;
}
