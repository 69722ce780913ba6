//! `report-path`: press → darkness → spool (fsync) → upload → stored by the server, timed per
//! press. The server and the daemon are the real library code, run in this process on
//! 127.0.0.1 with a real SQLite file and a real spool in a temporary directory.

use crate::local_server::LocalServer;
use anyhow::{bail, Context};
use chrono::Utc;
use slate_daemon::config::parse_config;
use slate_daemon::daemon::Daemon;
use slate_daemon::staff::StaffPin;
use slate_ipc::control::{Pin, Reply, Request};
use slate_protocol::DeviceNumber;
use slate_server::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn run(presses: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(dir.path(), presses))
}

/// The staff PIN that releases the bench's device after each press (not part of what is timed).
const BENCH_PIN: &str = "2468";

async fn bench(dir: &Path, presses: usize) -> anyhow::Result<()> {
    let store = Store::open(&dir.join("slate.sqlite")).context("open the server's database")?;
    let device = DeviceNumber::new(12)?;
    let token = store.issue_enrollment_token(device, chrono::Duration::hours(1), Utc::now())?;
    let server = LocalServer::start(&store)?;
    let server_url = server.url.clone();

    let socket = dir.join("control.sock");
    let config_path = dir.join("slate.toml");
    let config_text = format!(
        "device_number = 12\nstate_dir = {:?}\ncontrol_socket = {socket:?}\n\n[server]\nurl = {server_url:?}\n\
         enrollment_token = {:?}\n\n[upload]\nretry_min_ms = 20\nretry_max_ms = 200\n\n[button]\nsource = \"none\"\n\n[staff]\npin_hash = {:?}\n",
        dir.join("device"),
        token.expose(),
        StaffPin::hash(BENCH_PIN)?.phc(),
    );
    let config = parse_config(&config_text, &config_path)?;
    let daemon = Daemon::start(&config).await?;

    println!("report-path: {presses} presses, slated -> slate-server over http://127.0.0.1 (in-process, SQLite + spool in {})", dir.display());
    let mut latencies_ms = Vec::with_capacity(presses);
    for _ in 0..presses {
        let reply = control(&socket, Request::Press {}).await?;
        let id = reply.report.context("a press reply names its report")?.to_string();
        let latency = wait_for_report(&store, &id).await?;
        latencies_ms.push(latency.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
        let pin = Some(Pin(BENCH_PIN.into()));
        control(&socket, Request::Unlock { pin, choice: None, staff: None }).await?;
    }

    daemon.shutdown().await;
    server.stop().await?;

    let p50 = crate::quantile(&latencies_ms, 0.50);
    let p99 = crate::quantile(&latencies_ms, 0.99);
    println!(
        "measured from the press (slated's clock) to the server receiving the report (same clock)"
    );
    println!("report_to_server_ms p50={p50:.2} p99={p99:.2} n={}", latencies_ms.len());
    Ok(())
}

async fn control(socket: &Path, request: Request) -> anyhow::Result<Reply> {
    let socket = socket.to_owned();
    let reply =
        tokio::task::spawn_blocking(move || slate_ipc::client::send(&socket, &request)).await??;
    if !reply.ok {
        bail!("slated refused: {}", reply.error.unwrap_or_default());
    }
    Ok(reply)
}

/// Polls the server's database until report `id` is stored; returns how long after the press.
async fn wait_for_report(store: &Store, id: &str) -> anyhow::Result<chrono::Duration> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(report) = store.reports(5)?.into_iter().find(|r| r.id == id) {
            return Ok(report.received_at - report.pressed_at);
        }
        if Instant::now() > deadline {
            bail!("report {id} did not reach the server within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
