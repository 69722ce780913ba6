//! `slate-dns`: the device's filtering resolver on loopback. Reads the server's public key, the
//! last good signed policy bundle and the list files, then serves until SIGINT/SIGTERM. SIGHUP
//! re-reads the policy bundle and lists (a bad new bundle keeps the policy in force).
//!
//! ```text
//! slate-dns --listen 127.0.0.1:53 --upstream 192.0.2.53:53 \
//!           --public-key <base64> --policy /var/lib/slate/policy.json \
//!           --list adult:adult:/var/lib/slate/lists/adult.txt --list iwf:child-abuse:/var/lib/slate/lists/iwf.txt
//! ```
//!
//! Block events are logged as counts only here; in `slated` they go to the spool.

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use slate_filter::lists::{Category, DomainList};
use slate_filter::server::{Config, DnsServer, FilterHandle, SystemClock};
use slate_filter::Filter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(about = "Slate's filtering DNS resolver")]
struct Args {
    /// Address to listen on, UDP and TCP.
    #[arg(long, default_value = "127.0.0.1:53")]
    listen: SocketAddr,
    /// Upstream resolver (repeatable).
    #[arg(long = "upstream", required = true)]
    upstreams: Vec<SocketAddr>,
    /// The school server's Ed25519 public key, base64.
    #[arg(long)]
    public_key: String,
    /// The signed policy bundle (JSON). Missing or bad: every name is refused.
    #[arg(long)]
    policy: PathBuf,
    /// A list as NAME:CATEGORY:PATH (repeatable).
    #[arg(long = "list")]
    lists: Vec<String>,
}

fn load(args: &Args, key: &ed25519_dalek::VerifyingKey, filter: &mut Filter) -> Result<()> {
    for spec in &args.lists {
        let mut parts = spec.splitn(3, ':');
        let (Some(name), Some(category), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(anyhow!("--list {spec:?} is not NAME:CATEGORY:PATH"));
        };
        let category: Category = serde_json::from_value(category.into())
            .with_context(|| format!("category of list {name}"))?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading list {name}"))?;
        let (list, report) = DomainList::parse(name, category, &text);
        if report.bad_count > 0 {
            tracing::warn!(list = name, bad = report.bad_count, lines = ?report.bad_lines, "skipped malformed lines");
        }
        tracing::info!(list = name, rules = report.rules, "list loaded");
        filter.add_list(list);
    }
    match std::fs::read(&args.policy) {
        Ok(bytes) => match filter.offer_policy(&bytes, key) {
            Ok(()) => tracing::info!("policy in force"),
            Err(e) => {
                tracing::error!(error = %e, "policy refused; keeping the last good policy, if any")
            }
        },
        Err(e) => tracing::error!(error = %e, "no policy bundle; refusing every name"),
    }
    for missing in filter.missing_lists() {
        tracing::error!(list = %missing, "policy names a list that is not loaded; refusing every name");
    }
    Ok(())
}

fn reload(args: &Args, key: &ed25519_dalek::VerifyingKey, handle: &FilterHandle) {
    if let Err(e) = handle.update(|f| load(args, key, f)) {
        tracing::error!(error = %e, "reload failed; the filter in force stays");
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // hickory-server logs every queried name at info: that is a pupil's browsing, so its logs
    // are turned down to warn.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive("hickory_server=warn".parse().expect("a valid directive"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();
    let key = slate_protocol::bundle::verifying_key_from_base64(&args.public_key)
        .context("--public-key")?;
    let mut filter = Filter::new();
    load(&args, &key, &mut filter)?;

    let config = Config::new(args.listen, args.upstreams.clone());
    let (server, mut events) = DnsServer::start(&config, filter, Arc::new(SystemClock)).await?;
    let handle = server.handle();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            tracing::debug!(list = %event.list, "block event (no spool in the standalone resolver)");
        }
    });
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = hup.recv() => reload(&args, &key, &handle),
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    };
    server.run_until(shutdown).await?;
    Ok(())
}
