//! `slated`: the Slate device daemon. Parses flags, reads the configuration, runs
//! [`slate_shell::daemon::Daemon`] until SIGTERM or SIGINT.
//!
//! Stdout carries exactly one line, `slated ready device=<N>`, once the control socket accepts
//! requests; logs go to stderr (`RUST_LOG` filters them, default `info`).
//!
//! Exit status: 0 after a clean stop; 1 when it cannot start; 2 for a configuration file that
//! cannot be used (the message names the file and the field).

use anyhow::Context;
use clap::Parser;
use slate_shell::config::read_config;
use slate_shell::daemon::Daemon;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "slated", version, about = "The Slate device daemon")]
struct Args {
    /// The configuration file.
    #[arg(long, default_value = "/etc/slate/slate.toml")]
    config: PathBuf,
    /// Print a commented example configuration and exit.
    #[arg(long)]
    example_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.example_config {
        print!("{}", slate_shell::config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let config = match read_config(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("slated: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slated: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slated: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: slate_shell::config::Config) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let daemon = Daemon::start(&config).await.context("starting slated")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "slated ready device={}", daemon.device()).context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    drop(stdout);

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    daemon.shutdown().await;
    Ok(())
}
