//! `login-storm`: the school server under a sign-in storm. A real `slate-server` in this
//! process on 127.0.0.1 with production argon2 hashes and production limits, a DSL account,
//! and at once: `--parallel` sign-ins at the DSL's account with wrong passwords, each from its
//! own loopback address (127.1.x.y, so the per-address throttle lets every one through and the
//! password checks' semaphore is what bounds them: the worst case for memory), a few slowloris
//! clients trickling a header byte every second (half over HTTP/1.1, half over HTTP/2), and
//! device 12 (from 127.0.0.2) uploading
//! batches of 256 events one after another until the storm is over.
//!
//! Figures: this process's peak resident memory (`VmHWM`: server and clients together), the
//! device's batch latency p99 during the storm, and how long the server took to close the slow
//! clients. Needs about three file descriptors per parallel sign-in (`ulimit -n`).

use crate::local_server::LocalServer;
use anyhow::{bail, Context};
use chrono::{Duration as ChronoDuration, Utc};
use slate_protocol::{Batch, DeviceNumber, Event, EventBody, IngestReply, MAX_EVENTS_PER_BATCH};
use slate_server::auth::{self, HashCost, Role};
use slate_server::secrets::Secret;
use slate_server::store::{EnrollOutcome, Store};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Slowloris clients held open during the storm.
const SLOW_CLIENTS: usize = 20;
/// Batches the device posts before the storm, for comparison.
const QUIET_BATCHES: usize = 20;
/// At least this many batches are timed during the storm.
const STORM_BATCHES: usize = 20;

pub fn run(parallel: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("slate.sqlite")).context("open the database")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(store, parallel))
}

async fn bench(store: Store, parallel: usize) -> anyhow::Result<()> {
    let phc = auth::hash_password("the DSL's real password", HashCost::Production);
    store.save_staff("a.dsl", Role::Dsl, &phc, Some(&auth::new_totp_secret()), Utc::now())?;
    let device = DeviceNumber::new(12)?;
    let token = store.issue_enrollment_token(device, ChronoDuration::hours(1), Utc::now())?;
    let credential = Secret::generate();
    let outcome = store.enroll(&token.hash(), device, &credential.hash(), "bench", Utc::now())?;
    if outcome != EnrollOutcome::Enrolled {
        bail!("enrolling device 12: {outcome:?}");
    }
    let server = LocalServer::start(&store)?;
    let address: SocketAddr = server.url.trim_start_matches("http://").parse()?;
    println!(
        "login-storm: slate-server on {address} (in-process, SQLite, production argon2), \
         {parallel} parallel sign-ins from {parallel} addresses, {SLOW_CLIENTS} slowloris clients, \
         device 12 uploading batches of {MAX_EVENTS_PER_BATCH}"
    );
    let device = Device::new(&server.url, credential.expose())?;
    let mut quiet = Vec::new();
    for _ in 0..QUIET_BATCHES {
        quiet.push(device.upload().await?);
    }
    println!(
        "quiet: device batch p50={:.1} ms p99={:.1} ms, rss={} MB",
        crate::quantile(&quiet, 0.5),
        crate::quantile(&quiet, 0.99),
        peak_rss_mb()?
    );

    let (cookie, csrf) = sign_in_form(&server.url).await?;
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|n| {
            let speaks = if n % 2 == 0 { Slow::Http1 } else { Slow::Http2 };
            (speaks, tokio::spawn(slowloris(address, speaks)))
        })
        .collect();
    let started = Instant::now();
    let storm: Vec<_> = (0..parallel)
        .map(|n| {
            let from = IpAddr::V4(Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8));
            let body = format!("username=a.dsl&password=guess+{n}&csrf={csrf}");
            tokio::spawn(sign_in(address, from, cookie.clone(), body))
        })
        .collect();
    let uploading = tokio::spawn(async move {
        let mut timed = Vec::new();
        loop {
            timed.push(device.upload().await?);
            if timed.len() >= STORM_BATCHES && storm_over() {
                return anyhow::Ok(timed);
            }
        }
    });
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for task in storm {
        let answer = match task.await? {
            Ok(status) => status.to_string(),
            Err(e) => format!("error ({})", e.root_cause()),
        };
        *answers.entry(answer).or_default() += 1;
    }
    let storm_seconds = started.elapsed().as_secs_f64();
    STORM_OVER.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = uploading.await??;
    let mut closed_after = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for (speaks, task) in slow {
        let protocol = if speaks == Slow::Http1 { "HTTP/1.1" } else { "HTTP/2" };
        closed_after.entry(protocol).or_default().push(task.await??);
    }
    let p99 = crate::quantile(&during, 0.99);
    let peak = peak_rss_mb()?;
    println!("storm: {parallel} sign-ins answered in {storm_seconds:.1} s: {answers:?}");
    println!(
        "device during the storm: p50={:.1} ms p99={p99:.1} ms n={}",
        crate::quantile(&during, 0.5),
        during.len()
    );
    for (protocol, after) in &closed_after {
        println!(
            "slowloris ({protocol}): {} closed by the server after {:.1} to {:.1} s",
            after.len(),
            after.iter().copied().fold(f64::INFINITY, f64::min),
            after.iter().copied().fold(0.0, f64::max)
        );
    }
    server.stop().await?;
    println!("login_storm peak_rss_mb={peak} device_batch_p99_ms={p99:.1} parallel={parallel}");
    Ok(())
}

static STORM_OVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn storm_over() -> bool {
    STORM_OVER.load(std::sync::atomic::Ordering::Relaxed)
}

/// Device 12: posts full batches of reports and times each answer.
struct Device {
    client: reqwest::Client,
    url: String,
    credential: String,
    next: std::sync::atomic::AtomicU64,
}

impl Device {
    fn new(url: &str, credential: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
            .build()?;
        Ok(Device {
            client,
            url: format!("{url}/api/v1/events"),
            credential: credential.to_owned(),
            next: Default::default(),
        })
    }

    /// Posts one batch; milliseconds to its answer.
    async fn upload(&self) -> anyhow::Result<f64> {
        let device = DeviceNumber::new(12)?;
        let events: Vec<Event> = (0..MAX_EVENTS_PER_BATCH)
            .map(|_| {
                let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Event::new(
                    device,
                    Utc::now(),
                    EventBody::FilterBlocked {
                        session: None,
                        pupil: None,
                        layer: slate_protocol::FilterLayer::Dns,
                        target: format!("blocked-{n}.example"),
                        rule: format!("exact:blocked-{n}.example"),
                        list: "adult".into(),
                    },
                )
            })
            .collect();
        let body = Batch::new(events).to_json();
        let started = Instant::now();
        let reply = self
            .client
            .post(&self.url)
            .bearer_auth(&self.credential)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        if !reply.status().is_success() {
            bail!("device batch refused: HTTP {}", reply.status());
        }
        let reply: IngestReply = reply.json().await?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if reply.stored as usize != MAX_EVENTS_PER_BATCH {
            bail!("device batch: {reply:?}");
        }
        Ok(elapsed)
    }
}

/// The sign-in form's cookie and token (one form's token serves every try).
async fn sign_in_form(url: &str) -> anyhow::Result<(String, String)> {
    let page = reqwest::Client::builder().no_proxy().build()?.get(format!("{url}/staff/login"));
    let page = page.send().await?;
    let cookie = page
        .headers()
        .get("set-cookie")
        .context("the sign-in form sets a cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let html = page.text().await?;
    let start = html.find(r#"name="csrf" value=""#).context("a csrf field")? + 19;
    let csrf = html[start..].split('"').next().unwrap_or_default().to_owned();
    Ok((cookie, csrf))
}

/// One sign-in over its own connection from `from`; the answer's status.
async fn sign_in(
    server: SocketAddr,
    from: IpAddr,
    cookie: String,
    body: String,
) -> anyhow::Result<u16> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let mut stream = socket.connect(server).await?;
    let request = format!(
        "POST /staff/login HTTP/1.1\r\nHost: slate\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let status = answer.get(9..12).context("an HTTP status line")?;
    Ok(std::str::from_utf8(status)?.parse()?)
}

/// How a slow client speaks: HTTP/1.1, or HTTP/2 with prior knowledge (h2c: the same server
/// code as h2 by ALPN over TLS, without the TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    Http1,
    Http2,
}

/// HTTP/2's connection preface, an empty SETTINGS frame, and the start of a HEADERS frame on
/// stream 1 that announces 16 KiB of header block: what a slow h2 client sends before trickling
/// that block for ever.
const H2_SLOW_START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\
    \x00\x00\x00\x04\x00\x00\x00\x00\x00\
    \x00\x40\x00\x01\x04\x00\x00\x00\x01";

/// A client that sends a request head one byte a second, never finishing it; seconds until
/// the server closes the connection (at most a minute).
async fn slowloris(server: SocketAddr, speaks: Slow) -> anyhow::Result<f64> {
    let stream = tokio::net::TcpStream::connect(server).await?;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let head: &[u8] = match speaks {
            Slow::Http1 => b"POST /staff/login HTTP/1.1\r\nHost: slate\r\nX-Slow: ",
            Slow::Http2 => H2_SLOW_START,
        };
        for byte in head.iter().chain(std::iter::repeat(&b'x')) {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    trickle.abort();
    if closed.is_err() {
        bail!("a slowloris client was still open after 60 s");
    }
    Ok(started.elapsed().as_secs_f64())
}

/// This process's peak resident memory, from `/proc/self/status`.
fn peak_rss_mb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("VmHWM in /proc/self/status")?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()?;
    Ok(kb / 1024)
}
