//! `slated`: the Slate device daemon. Parses flags, reads the configuration, runs
//! [`slate_daemon::daemon::Daemon`] until SIGTERM or SIGINT.
//!
//! Stdout carries exactly one line, `slated ready device=<N>`, once the control socket accepts
//! requests (before it, `slated setup` when a device with no number shows IT's setup screen:
//! `slate_daemon::setup`); logs go to stderr (`RUST_LOG` filters them, default `info`).
//!
//! Exit status: 0 after a clean stop; 1 when it cannot start; 78 (`EX_CONFIG`) for a
//! configuration file that cannot be used (the message names the file, the field and where it
//! is); 2 for a command line it cannot parse. `--check-config PATH`
//! only checks. slated is the only reader of `slate.toml`'s TOML: the provisioning script asks it
//! for one value (`--config-value KEY PATH`) and whether the installed file is the card's but for
//! the used token (`--same-config CARD INSTALLED`). `--check-provision FILE` says whether this
//! device takes a provisioning file from its boot partition (signed with the school's key, or
//! plain before it has enrolled: `slate_protocol::provisioning`) and prints what it sets, as
//! `name=value` lines for the script to apply; 78 and the reason when it refuses it.
//!
//! Under systemd (`Type=notify`) it sends `READY=1` once ready and, with `WatchdogSec=`,
//! `WATCHDOG=1` at half the period while its core task answers.

use anyhow::Context;
use clap::Parser;
use slate_daemon::config::{read_config, read_text};
use slate_daemon::daemon::Daemon;
use slate_ipc::EX_CONFIG;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "slated", version, about = "The Slate device daemon")]
#[command(group = clap::ArgGroup::new("only")
    .args(["example_config", "check_config", "config_value", "same_config", "check_provision"]))]
struct Args {
    /// The configuration file.
    #[arg(long, default_value = "/etc/slate/slate.toml")]
    config: PathBuf,
    /// Print a commented example configuration and exit.
    #[arg(long)]
    example_config: bool,
    /// Check a configuration file and exit: 0 when it can be used, 78 (naming the file and the
    /// field) when not.
    #[arg(long, value_name = "PATH")]
    check_config: Option<PathBuf>,
    /// Print one value of a configuration file as written there and exit: KEY is dotted
    /// (`server.public_key`), a string is printed without quotes. 0 when printed, 1 when it is
    /// not set, 78 when the file cannot be read as TOML. The rest of the file is not checked.
    #[arg(long, num_args = 2, value_names = ["KEY", "PATH"])]
    config_value: Option<Vec<String>>,
    /// Exit 0 when the configuration file INSTALLED is CARD, or CARD with its used enrollment
    /// token taken out as slated takes it out after enrolling; 1 when not; 78 when either cannot
    /// be read.
    #[arg(long, num_args = 2, value_names = ["CARD", "INSTALLED"])]
    same_config: Option<Vec<PathBuf>>,
    /// Check a provisioning file from the boot partition as this device (the school's key and
    /// whether it has enrolled from --config) and exit: 0 printing `source=signed` (or
    /// `source=unsigned-before-enrollment`) and the settings as `name=value` lines, 78 and the
    /// reason (line and field) when it is refused.
    #[arg(long, value_name = "FILE")]
    check_provision: Option<PathBuf>,
    /// With --check-provision: where the installed timezones are.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/zoneinfo",
        requires = "check_provision"
    )]
    zoneinfo: PathBuf,
    /// With --check-provision: where the installed keyboard layouts are.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/X11/xkb/symbols",
        requires = "check_provision"
    )]
    xkb_symbols: PathBuf,
    /// With --check-provision: also write the checked text (a signed file's payload) here, mode
    /// 0600, for `slate-network`, which reads the school network's settings from it.
    #[arg(long, value_name = "FILE", requires = "check_provision")]
    payload_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.example_config {
        print!("{}", slate_daemon::config::EXAMPLE);
        return ExitCode::SUCCESS;
    }
    if let Some(path) = args.check_config {
        return check_config(&path);
    }
    if let Some([key, path]) = args.config_value.as_deref() {
        return config_value(key, path.as_ref());
    }
    if let Some([card, installed]) = args.same_config.as_deref() {
        return same_config(card, installed);
    }
    if let Some(file) = &args.check_provision {
        let names = slate_daemon::provision::InstalledNames {
            zoneinfo: args.zoneinfo.clone(),
            xkb_symbols: args.xkb_symbols.clone(),
        };
        return check_provision(file, &args.config, &names, args.payload_out.as_deref());
    }
    slate_ipc::logging::init("info", &[]);

    let config = match read_config(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("slated: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slated: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(config));
    // `run` has stopped the daemon and everything it writes. What may be left is a blocked read
    // of standard input (the stdin button of the demo), which no runtime can cancel: waiting
    // for it held Ctrl+C until Enter was pressed.
    runtime.shutdown_timeout(STRAGGLERS);
    match outcome {
        Ok(None | Some(Early::Stopped)) => ExitCode::SUCCESS,
        Ok(Some(Early::NoNumber(e))) => {
            eprintln!("slated: {}: {e}", args.config.display());
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            eprintln!("slated: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long a stopped daemon waits for blocking work it did not itself wait for.
const STRAGGLERS: std::time::Duration = std::time::Duration::from_millis(500);

/// `--check-config`: what `slated` would refuse at start, without starting.
fn check_config(path: &std::path::Path) -> ExitCode {
    let config = match read_config(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("slated: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    // The CA file is read only when the client is built: check it here too.
    if let Err(e) = slate_daemon::upload::http_client(&config.server, std::sync::Arc::new(|| true))
    {
        eprintln!("slated: {}: field `server.ca_certificate`: {e}", path.display());
        return ExitCode::from(EX_CONFIG);
    }
    match config.device_number {
        Some(device) => println!("{}: ok (device {device})", path.display()),
        None if config.server.enrollment_token.is_some() => println!(
            "{}: ok (no device number: taken from IT's list of serials or the setup screen)",
            path.display()
        ),
        None => println!(
            "{}: ok (no device number: this device must have one kept from before)",
            path.display()
        ),
    }
    ExitCode::SUCCESS
}

/// `--config-value KEY PATH`.
fn config_value(key: &str, path: &std::path::Path) -> ExitCode {
    match read_text(path).and_then(|text| slate_daemon::config::value_as_written(&text, path, key))
    {
        Ok(Some(value)) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("slated: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// `--same-config CARD INSTALLED`.
fn same_config(card: &std::path::Path, installed: &std::path::Path) -> ExitCode {
    match (read_text(card), read_text(installed)) {
        (Ok(card), Ok(installed)) if slate_daemon::config::same_config(&card, &installed) => {
            ExitCode::SUCCESS
        }
        (Ok(_), Ok(_)) => ExitCode::FAILURE,
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("slated: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// `--check-provision FILE`.
fn check_provision(
    file: &std::path::Path,
    config: &std::path::Path,
    names: &slate_daemon::provision::InstalledNames,
    payload_out: Option<&std::path::Path>,
) -> ExitCode {
    match slate_daemon::provision::check(file, config, names) {
        Ok((source, settings)) => {
            if let Some(out) = payload_out {
                // It may hold a Wi-Fi password: private to root from its first byte.
                let tmp = out.with_extension("tmp");
                if let Err(e) = slate_ipc::atomic::replace_with(out, &tmp, Some(0o600), |f| {
                    std::io::Write::write_all(f, settings.text.as_bytes())
                }) {
                    eprintln!("slated: cannot write {}: {}", e.path.display(), e.source);
                    return ExitCode::FAILURE;
                }
            }
            print!("source={}\n{}", source.as_str(), settings.to_lines());
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("slated: {why}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// How `run` ended before the daemon started.
enum Early {
    Stopped,
    NoNumber(slate_daemon::setup::run::SetupError),
}

async fn run(mut config: slate_daemon::config::Config) -> anyhow::Result<Option<Early>> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // A class set's card has no number: find it (IT's list, or IT on the setup screen) first.
    let mut setup_watchdog = None;
    let on_setup_screen = || {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "slated setup").and_then(|()| stdout.flush());
        // The control socket answers (the setup screen): ready for systemd, waiting for IT.
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("waiting for IT to give this device its number"),
        ]);
        setup_watchdog = sd_notify::watchdog_enabled().map(|period| {
            tokio::spawn(async move {
                loop {
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                    tokio::time::sleep(period / 2).await;
                }
            })
        });
    };
    let found = tokio::select! {
        found = slate_daemon::setup::run::device_number(&config, on_setup_screen) => found,
        _ = term.recv() => return Ok(Some(Early::Stopped)),
        _ = int.recv() => return Ok(Some(Early::Stopped)),
    };
    if let Some(watchdog) = setup_watchdog {
        watchdog.abort();
    }
    match found {
        Ok(device) => config.device_number = Some(device),
        Err(e @ slate_daemon::setup::run::SetupError::NoToken)
        | Err(e @ slate_daemon::setup::run::SetupError::NumberFile { .. }) => {
            return Ok(Some(Early::NoNumber(e)))
        }
        Err(e) => return Err(e).context("finding this device's number"),
    }
    let daemon = Daemon::start(&config).await.context("starting slated")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "slated ready device={}", daemon.device()).context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    drop(stdout);
    // systemd (Type=notify): ready now; with WatchdogSec, ping at half the period while the
    // core task answers, so a wedged daemon is restarted.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd we are ready");
    }
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        tracing::info!(period_ms = period.as_millis() as u64, "systemd watchdog on");
        tokio::spawn(slate_daemon::daemon::watchdog(daemon.control(), period / 2, || {
            if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]) {
                tracing::warn!(error = %e, "watchdog ping failed");
            }
        }))
    });

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    daemon.shutdown().await;
    Ok(None)
}
