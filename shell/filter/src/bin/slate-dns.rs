//! `slate-dns`: the device's filtering resolver on loopback. Reads the server's public key, the
//! last good signed filter policy and the list files its manifest names, then serves until
//! SIGINT/SIGTERM. `{"cmd":"reload"}` on its socket, or SIGHUP, re-reads them (a bad new bundle
//! keeps the policy in force). Blocked attempts go to slated's control socket, and so does a
//! refused policy or list file on the card, as a `security_breach` filed once
//! (`slate_filter::refusal`).
//!
//! ```text
//! slate-dns --listen 127.0.0.1:53 --upstream 192.0.2.53:53 --public-key <base64> \
//!           --policy /var/lib/slate/policy/filter.json --lists /var/lib/slate/policy/lists \
//!           --socket /run/slate/dns.sock --control-socket /run/slate/control.sock
//! ```
//!
//! Logs go to stderr (plain lines unless a terminal). Exit status: 0 after SIGTERM; 78
//! (`EX_CONFIG`) for a flag it refuses (`--public-key`, `--always-allow`), which its unit does
//! not restart; 2 for a command line it cannot parse; 1 when it cannot serve.

use anyhow::{Context, Result};
use clap::Parser;
use slate_filter::notify::{self, Counts};
use slate_filter::refusal::ReportingFiles;
use slate_filter::server::{Config, DnsServer, SystemClock};
use slate_filter::socket::{self, Reload};
use slate_filter::source::Files;
use slate_filter::Filter;
use slate_ipc::EX_CONFIG;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

/// Refusals waiting for slated: more than a handful means something is rewriting the files in
/// a loop, and the first few already say so.
const BREACH_QUEUE: usize = 16;

#[derive(Parser)]
#[command(name = "slate-dns", version, about = "Slate's filtering DNS resolver")]
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
    /// The signed filter policy bundle (JSON). Missing or bad: every name is refused.
    #[arg(long, default_value = "/var/lib/slate/policy/filter.json")]
    policy: PathBuf,
    /// Directory of the list files the policy's manifest names, as `<name>.txt`.
    #[arg(long, default_value = "/var/lib/slate/policy/lists")]
    lists: PathBuf,
    /// slate-dns's own socket (recent, profile, reload), mode 0660.
    #[arg(long, default_value = slate_ipc::dns::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// slated's control socket, where blocked attempts are sent.
    #[arg(long, default_value = "/run/slate/control.sock")]
    control_socket: PathBuf,
    /// A name that always resolves, policy or not: the school server's host (repeatable).
    #[arg(long = "always-allow")]
    always_allow: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // hickory-server logs every queried name at info: that is a pupil's browsing, so its logs
    // are turned down to warn.
    slate_ipc::logging::init("info", &["hickory_server=warn"]);
    let configured = configure(&args);
    let (files, filter) = match configured {
        Ok(configured) => configured,
        Err(e) => {
            eprintln!("slate-dns: {e:#}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    match run(args, files, filter).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slate-dns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the flags configure: the key the policy is checked with and the names always allowed.
fn configure(args: &Args) -> Result<(Arc<Files>, Filter)> {
    let key = slate_protocol::bundle::verifying_key_from_base64(&args.public_key)
        .context("--public-key")?;
    let files = Arc::new(Files { policy: args.policy.clone(), lists: args.lists.clone(), key });
    let mut filter = Filter::new();
    for name in &args.always_allow {
        filter.always_allow(name).map_err(anyhow::Error::msg).context("--always-allow")?;
    }
    Ok((files, filter))
}

async fn run(args: Args, files: Arc<Files>, mut filter: Filter) -> Result<()> {
    let (breach_tx, breach_rx) = tokio::sync::mpsc::channel(BREACH_QUEUE);
    tokio::spawn(notify::send_breaches(breach_rx, args.control_socket.clone()));
    let files = Arc::new(ReportingFiles::new(files, breach_tx));
    let loaded = files.files.load_into(&mut filter);
    match &loaded {
        Ok(report) if report.refused.is_empty() => tracing::info!("policy in force"),
        Ok(report) => tracing::error!(refused = report.refused.len(), "{report}"),
        Err(e) => tracing::error!(error = %e, "no valid policy; refusing every name"),
    }
    files.note(&loaded);

    let config = Config::new(args.listen, args.upstreams.clone());
    let (server, events) = DnsServer::start(&config, filter, Arc::new(SystemClock)).await?;
    let handle = server.handle();
    let listener = slate_ipc::listen::bind(&args.socket, None, "slate-dns")?;
    let reload: Arc<dyn Reload> = files.clone();
    tokio::spawn(socket::serve(listener, handle.clone(), reload.clone()));
    let counts = Arc::new(Counts::default());
    tokio::spawn(notify::forward(events, args.control_socket.clone(), handle.clone(), counts));

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let (reload, handle) = (reload.clone(), handle.clone());
                    let _ = tokio::task::spawn_blocking(move || reload.reload(&handle)).await;
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    };
    server.run_until(shutdown).await?;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
