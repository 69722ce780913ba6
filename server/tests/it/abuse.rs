//! The server under abuse: a burst of parallel sign-ins, slow clients (slowloris) and too many
//! connections, while a device still gets its batch answered. Nothing here is timed: the
//! server's limits are made short or long enough that only they can decide each outcome, and
//! `PATIENCE` only guards against hangs. Figures are `slate-bench login-storm`'s.

use crate::common::*;
use slate_protocol::IngestReply;
use slate_server::auth::{Role, PER_ACCOUNT_AND_ADDRESS};
use slate_server::ServeLimits;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; true if it did within `PATIENCE`.
async fn closed_by_server(reader: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, drain).await.is_ok()
}

/// Starts a client that sends `head` and then one more byte of `trickle` every 200 ms, for
/// ever; returns the reading half.
async fn slow_client(
    url: &str,
    head: String,
    trickle: &'static [u8],
) -> tokio::net::tcp::OwnedReadHalf {
    let address = url.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for byte in trickle.iter().cycle() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    reader
}

#[tokio::test]
async fn slow_clients_are_closed_and_a_device_batch_is_answered_during_a_sign_in_burst() {
    let limits = ServeLimits {
        header_read: Duration::from_secs(1),
        body: Duration::from_secs(1),
        ..ServeLimits::default()
    };
    let server = TestServer::start_limits(limits).await;
    add_staff(&server.store, "a.dsl", Role::Dsl);
    let credential = server.enroll(12).await;

    // Slowloris: a head that never ends, and a body that never ends.
    let mut endless_head = slow_client(
        &server.url,
        "POST /staff/login HTTP/1.1\r\nHost: slate\r\n".into(),
        b"X-Slow: 1\r\n",
    )
    .await;
    let mut endless_body = slow_client(
        &server.url,
        "POST /api/v1/events HTTP/1.1\r\nHost: slate\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\n\r\n"
            .into(),
        b" ",
    )
    .await;

    // A burst of sign-ins at the DSL's account, all with one sign-in form's token.
    let mut browser = Browser::new(&server);
    let form = browser.page("/staff/login").await;
    let token = csrf_in(&form);
    let cookies: Vec<String> = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = cookies.join("; ");
    let burst: Vec<_> = (0..100)
        .map(|n| {
            let request = server
                .client
                .post(format!("{}/staff/login", server.url))
                .header("cookie", cookie.clone())
                .form(&[
                    ("username", "a.dsl"),
                    ("password", &format!("guess {n}")),
                    ("csrf", &token),
                ]);
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();

    // Meanwhile device 12, from its own address, uploads a batch.
    let device = client_from(2);
    let events: Vec<_> = (0..20).map(|n| report(12, None, &format!("report {n}"))).collect();
    let answer = device
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(&credential)
        .header("content-type", "application/json")
        .body(batch(events))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let reply: IngestReply = answer.json().await.unwrap();
    assert_eq!(reply, IngestReply::new(20, 0).taking_newer_kinds());

    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.unwrap().expect("every sign-in is answered"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let held_back = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + held_back, 100, "{statuses:?}");
    // Counted before checking: only the free tries' passwords were checked, not the burst's.
    // (Another try opens only after 30 s, a margin for a very slow machine.)
    let free = PER_ACCOUNT_AND_ADDRESS.free as usize;
    assert!((free..=free + 1).contains(&checked), "{checked} passwords checked");

    assert!(closed_by_server(&mut endless_head).await, "a head that never ends is closed");
    assert!(closed_by_server(&mut endless_body).await, "a body that never ends is closed");
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_per_address_limit_are_closed_and_others_still_served() {
    // Longer than PATIENCE: only the connection limit can close a connection in this test.
    let limits = ServeLimits {
        connections_per_address: 2,
        header_read: PATIENCE * 2,
        ..ServeLimits::default()
    };
    let server = TestServer::start_limits(limits).await;
    let address = server.url.trim_start_matches("http://").to_owned();
    let first = TcpStream::connect(&address).await.unwrap();
    let second = TcpStream::connect(&address).await.unwrap();
    let mut third = TcpStream::connect(&address).await.unwrap();
    assert!(closed_by_server(&mut third).await, "the third from one address is closed");

    // Another address is not held back, and a closed connection gives its place back.
    let other = client_from(2);
    let answer = other.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    drop(first);
    // The server notices the close a moment later: ask until it answers (or PATIENCE ends).
    let served_again = async {
        loop {
            let mut again = TcpStream::connect(&address).await.unwrap();
            let request = b"GET /healthz HTTP/1.1\r\nHost: slate\r\nConnection: close\r\n\r\n";
            let mut answer = String::new();
            if again.write_all(request).await.is_ok()
                && again.read_to_string(&mut answer).await.is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(tokio::time::timeout(PATIENCE, served_again).await.is_ok(), "its place is given back");
    drop(second);
    server.stop().await;
}
