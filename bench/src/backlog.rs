//! `backlog`: a device that was offline for days. 100,000 events are filed into a real spool
//! (each fsynced, as slated files them), then the real uploader drains them over HTTP to a real
//! `slate-server` on 127.0.0.1 (SQLite), run as a child process so that the figures are the
//! device's alone.
//!
//! Figures: `drain_s` (first upload to an empty spool), `bytes_written` (everything the spool
//! wrote to its directory, filing and draining: append-only segments plus acknowledgements, so
//! it grows with N, not N²), `peak_rss_mb` (this process's high-water mark: the device side).

use crate::local_server::LocalServer;
use anyhow::{bail, Context};
use chrono::Utc;
use slate_daemon::config::{Secret, ServerConfig, UploadConfig};
use slate_daemon::credential::Credential;
use slate_daemon::spool::{SharedSpool, Spool};
use slate_daemon::upload::{
    HttpAnswer, HttpTransport, Transport, UploadError, UploadSettings, Uploader,
};
use slate_protocol::{
    Batch, DeviceNumber, EnrollRequest, Event, EventBody, FilterLayer, IngestReply, PupilId,
    SessionId,
};
use slate_server::store::Store;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(events: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let device = DeviceNumber::new(12)?;

    // The server, in its own process.
    let mut server = Command::new(std::env::current_exe()?)
        .arg("backlog-server")
        .arg(dir.path().join("server"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("start the server process")?;
    let mut lines = std::io::BufReader::new(server.stdout.take().context("server stdout")?).lines();
    let url = lines.next().context("the server's address")??;
    let token = lines.next().context("the enrollment token")??;

    // Offline: every event filed and fsynced, as slated files them.
    let spool_dir = dir.path().join("device/spool");
    let (mut spool, _) = Spool::open(&spool_dir).context("open the spool")?;
    let filing = Instant::now();
    let mut reports = 0;
    for n in 0..events {
        let event = backlog_event(device, n);
        reports += u64::from(matches!(event.body, EventBody::ReportFiled { .. }));
        spool.append(&event).context("file an event")?;
    }
    let filed_bytes = spool.stats().bytes_written;
    println!(
        "backlog: {events} events ({reports} reports) filed offline in {:.1} s, {filed_bytes} bytes, spool in {}",
        filing.elapsed().as_secs_f64(),
        spool_dir.display()
    );

    // Back online: the real uploader against the real server.
    let runtime = tokio::runtime::Runtime::new()?;
    let (drain, stored) = runtime.block_on(async {
        let spool = SharedSpool::new(spool);
        let stored = Arc::new(AtomicU64::new(0));
        let server_config = ServerConfig {
            url: url.clone(),
            ca_certificate: None,
            enrollment_token: Some(Secret::new(token.clone())),
        };
        let transport =
            Counting { inner: HttpTransport::new(&server_config, None)?, stored: stored.clone() };
        let settings = UploadSettings {
            device,
            state_dir: dir.path().join("device"),
            enrollment_token: Some(Secret::new(token)),
            timing: UploadConfig {
                retry_min: Duration::from_millis(20),
                retry_max: Duration::from_millis(200),
                heartbeat: Duration::from_secs(3600),
            },
            config_path: None,
        };
        let uploader = Uploader::new(
            transport,
            spool.clone(),
            Arc::new(tokio::sync::Notify::new()),
            settings,
            None,
            Arc::new(AtomicBool::new(false)),
        );
        let started = Instant::now();
        let task = tokio::spawn(uploader.run());
        let deadline = started + Duration::from_secs(1800);
        while !spool.is_empty() {
            if Instant::now() > deadline {
                bail!("the backlog did not drain in 30 minutes ({} left)", spool.len());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain = started.elapsed();
        task.abort();
        anyhow::Ok((drain, (stored.load(Ordering::Relaxed), spool.stats())))
    })?;
    let (stored, stats) = stored;
    drop(server.stdin.take());
    server.wait()?;
    if stored != events {
        bail!("the server stored {stored} events, not {events}");
    }
    let left: Vec<_> = std::fs::read_dir(&spool_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("events-"))
        .collect();
    println!(
        "drained: the server stored {stored} events; spool wrote {} bytes more draining; segment files left: {}; dropped: {}",
        stats.bytes_written - filed_bytes,
        left.len(),
        stats.dropped
    );
    println!(
        "backlog events={events} drain_s={:.1} bytes_written={} peak_rss_mb={:.1}",
        drain.as_secs_f64(),
        stats.bytes_written,
        peak_rss_mb()?
    );
    Ok(())
}

/// The server's half, in the child process: prints its address and an enrollment token for
/// device 12, serves until its stdin closes.
pub fn serve(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Store::open(&dir.join("slate.sqlite")).context("open the server's database")?;
        let token = store.issue_enrollment_token(
            DeviceNumber::new(12)?,
            chrono::Duration::hours(1),
            Utc::now(),
        )?;
        let server = LocalServer::start(&store)?;
        println!("{}\n{}", server.url, token.expose());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        })
        .await?;
        server.stop().await
    })
}

/// A week of a busy device: sessions, apps opened, filter blocks, and a report in a hundred.
fn backlog_event(device: DeviceNumber, n: u64) -> Event {
    let at = Utc::now() - chrono::Duration::days(7) + chrono::Duration::seconds(n as i64 * 6);
    let pupil = PupilId::new(format!("p-{:04x}", n / 50 % 300)).expect("a pupil id");
    let session = SessionId::new();
    let body = match n % 100 {
        0 => EventBody::ReportFiled {
            session: Some(session),
            pupil: Some(pupil),
            app: Some("browser".into()),
            url: Some(format!("https://example.org/page/{n}")),
            page_title: Some("A page".into()),
            blank_latency_us: Some(41_000),
            recent_names: vec!["example.org".into()],
            origin: Default::default(),
        },
        1..=59 => EventBody::AppOpened { session, pupil, app: "maths".into() },
        _ => EventBody::FilterBlocked {
            session: Some(session),
            pupil: Some(pupil),
            layer: FilterLayer::Dns,
            target: format!("blocked-{}.example", n % 1000),
            rule: "list".into(),
            list: "adult".into(),
        },
    };
    Event::new(device, at, body)
}

/// The HTTP transport, counting what the server says it stored.
struct Counting {
    inner: HttpTransport,
    stored: Arc<AtomicU64>,
}

impl Transport for Counting {
    async fn post_events(
        &self,
        credential: &Credential,
        batch: &Batch,
    ) -> Result<HttpAnswer, UploadError> {
        let answer = self.inner.post_events(credential, batch).await?;
        if answer.status == 200 {
            if let Ok(reply) = serde_json::from_slice::<IngestReply>(&answer.body) {
                self.stored.fetch_add(u64::from(reply.stored), Ordering::Relaxed);
            }
        }
        Ok(answer)
    }

    async fn enroll(&self, request: &EnrollRequest) -> Result<HttpAnswer, UploadError> {
        self.inner.enroll(request).await
    }

    async fn replace_credential(&self, credential: &Credential) -> Result<HttpAnswer, UploadError> {
        self.inner.replace_credential(credential).await
    }
}

/// This process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mb() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}
