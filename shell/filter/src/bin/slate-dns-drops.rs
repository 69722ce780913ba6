//! `slate-dns-drops`: files DNS the firewall refused around the filter as a `security_breach`
//! (`dns_dropped`) through slated's control socket: reads the lockdown's `dns_bypass` counter
//! every `--every` seconds with `nft`, files at once the first time it counted any, then at
//! most once per `--window` with the count since (`slate_filter::drops`). Its own process
//! because reading a counter needs CAP_NET_ADMIN, which slate-dns (the resolver) has not.
//!
//! ```text
//! slate-dns-drops --control-socket /run/slate/control.sock --every 15 --window 300
//! slate-dns-drops --once      # one reading: files what the counter holds, then exits
//! ```
//!
//! Exit status: 0 after SIGTERM (or `--once` done); 1 when `--once` could not read the counter.

use anyhow::{Context, Result};
use clap::Parser;
use slate_filter::drops::{self, DropCounter, DropWatch, NftCounter};
use slate_filter::notify;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(name = "slate-dns-drops", version, about = "Files DNS refused around Slate's filter")]
struct Args {
    /// slated's control socket, where the breach is filed.
    #[arg(long, default_value = "/run/slate/control.sock")]
    control_socket: PathBuf,
    /// Seconds between readings of the counter.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    every: u64,
    /// At most one breach per this many seconds (the first goes at once).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    window: u64,
    /// The nft program.
    #[arg(long, default_value = "/usr/sbin/nft")]
    nft: PathBuf,
    /// Read once, file what was counted, and exit.
    #[arg(long)]
    once: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    slate_ipc::logging::init("info", &[]);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slate-dns-drops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let mut counter = NftCounter { nft: args.nft.clone(), ..NftCounter::default() };
    let window = chrono::Duration::seconds(i64::try_from(args.window).unwrap_or(300));
    let mut watch = DropWatch::new(chrono::Utc::now(), window);
    if args.once {
        let total = counter.total().map_err(anyhow::Error::msg).context("reading the counter")?;
        match watch.observe(total, chrono::Utc::now()) {
            Some(breach) => {
                if !notify::send_breach(&args.control_socket, breach).await {
                    anyhow::bail!("slated refused the breach");
                }
                println!("filed: {total} packets refused");
            }
            None => println!("nothing refused"),
        }
        return Ok(());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(notify::send_breaches(rx, args.control_socket.clone()));
    let every = std::time::Duration::from_secs(args.every);
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = drops::run(counter, watch, every, tx) => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
