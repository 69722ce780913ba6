//! `slate-data-key`: the data partition's LUKS2 passphrase, bound to this SD card in this Pi.
//! See `slate_daemon::data_key` for the key, the token and what the binding can and cannot do.
//!
//! ```sh
//! set -o pipefail
//! # Once, before the partition is encrypted: a new passphrase, wrapped into the token file.
//! slate-data-key seal --token-out /run/slate-data.token \
//!   | cryptsetup luksFormat --type luks2 --key-file=- /dev/mmcblk0p4
//! cryptsetup token import --token-id 0 --json-file /run/slate-data.token /dev/mmcblk0p4
//! # Every boot: the token from the header, the passphrase into cryptsetup.
//! cryptsetup token export --token-id 0 /dev/mmcblk0p4 > /run/slate-data.token
//! slate-data-key open --token /run/slate-data.token \
//!   | cryptsetup open --key-file=- /dev/mmcblk0p4 slate-data
//! ```
//!
//! The passphrase goes only to stdout, a pipe into cryptsetup: never in argv or the environment
//! (other processes can read those in /proc), never in a file (nothing to wipe after a power
//! cut), and only the two ends of the pipe see it. It is refused when stdout is a terminal. It is
//! written last, after the token file is on disk (fsynced), so a passphrase never exists without
//! its wrapped copy, and a failed run writes nothing to stdout, on which cryptsetup stops
//! ("Nothing to read on input"; `pipefail` makes the pipeline fail too).
//!
//! Exit status: 0 done; 1 refused (the token does not open with this card and Pi, or is not a
//! token) or an I/O error; 2 a usage error (as clap's own; stdout a terminal); 78 (`EX_CONFIG`)
//! the card's CID or the Pi's serial missing or malformed.

use clap::{Parser, Subcommand};
use slate_daemon::data_key::{self, BindingError, BindingPart, DeviceBinding, Passphrase, Token};
use slate_ipc::EX_CONFIG;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EX_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "slate-data-key",
    version,
    about = "The data partition's LUKS2 passphrase, bound to this SD card in this Pi"
)]
struct Cli {
    /// The SD card's CID register (32 hex digits).
    #[arg(long, global = true, default_value = "/sys/block/mmcblk0/device/cid")]
    cid_path: PathBuf,
    /// The Pi's serial number (16 hex digits and a NUL).
    #[arg(long, global = true, default_value = "/proc/device-tree/serial-number")]
    serial_path: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A new random passphrase to stdout (for `cryptsetup luksFormat --key-file=-`), wrapped
    /// for this card and Pi into a LUKS2 token file (for `cryptsetup token import`).
    Seal {
        /// Where the token goes; it must not exist yet (never overwrites a token).
        #[arg(long, value_name = "FILE")]
        token_out: PathBuf,
        /// The LUKS2 keyslot the passphrase will open.
        #[arg(long, default_value_t = data_key::DEFAULT_KEYSLOT,
              value_parser = clap::value_parser!(u8).range(0..=31))]
        keyslot: u8,
    },
    /// The passphrase a token wraps, to stdout (for `cryptsetup open --key-file=-`), if this is
    /// the card and the Pi it was sealed on.
    Open {
        /// The token (`cryptsetup token export`).
        #[arg(long, value_name = "FILE")]
        token: PathBuf,
    },
}

/// Why a run failed, and with which exit status.
enum Failure {
    Config(BindingError),
    Refused(String),
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    slate_ipc::logging::init("info", &[]);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            tracing::error!("{e}");
            ExitCode::from(EX_CONFIG)
        }
        Err(Failure::Refused(e)) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
        Err(Failure::Usage(e)) => {
            tracing::error!("{e}");
            ExitCode::from(EX_USAGE)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    if std::io::stdout().is_terminal() {
        return Err(Failure::Usage(
            "stdout is a terminal: the passphrase goes only into a pipe (to cryptsetup)".into(),
        ));
    }
    let binding = read_binding(&cli.cid_path, &cli.serial_path).map_err(Failure::Config)?;
    match &cli.command {
        Command::Seal { token_out, keyslot } => {
            let passphrase = Passphrase::from_bytes(random());
            let token = data_key::seal(&binding, &passphrase, *keyslot, random(), random());
            write_token(token_out, &token).map_err(|e| {
                Failure::Refused(format!("writing the token {}: {e}", token_out.display()))
            })?;
            write_passphrase(&passphrase)?;
            tracing::info!(keyslot, token = %token_out.display(), "sealed a new data-partition passphrase");
        }
        Command::Open { token } => {
            let text = read_limited(token, data_key::TOKEN_MAX_LEN).map_err(|e| {
                Failure::Refused(format!("reading the token {}: {e}", token.display()))
            })?;
            let token = Token::parse(&text).map_err(|e| Failure::Refused(e.to_string()))?;
            let passphrase =
                data_key::unseal(&binding, &token).map_err(|e| Failure::Refused(e.to_string()))?;
            write_passphrase(&passphrase)?;
            tracing::info!("unwrapped the data-partition passphrase");
        }
    }
    Ok(())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the kernel's random numbers");
    bytes
}

/// The two binding files; a file that is not there is `Missing`, as is one that cannot be read.
fn read_binding(cid_path: &Path, serial_path: &Path) -> Result<DeviceBinding, BindingError> {
    let read = |part: BindingPart, path: &Path| match read_limited(path, 256) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BindingError::Missing {
            part,
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    };
    let cid = read(BindingPart::Cid, cid_path)?;
    let serial = read(BindingPart::Serial, serial_path)?;
    DeviceBinding::parse(
        cid.as_deref(),
        serial.as_deref(),
        &cid_path.display().to_string(),
        &serial_path.display().to_string(),
    )
}

/// A file of at most `limit` bytes (one more is read, so a longer one is refused as such by
/// the parser, not cut short).
fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The token file: new (never over another token), 0600, fsynced before the passphrase is out.
fn write_token(path: &Path, token: &Token) -> std::io::Result<()> {
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(token.to_json().as_bytes())?;
    file.sync_all()
}

fn write_passphrase(passphrase: &Passphrase) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(passphrase.text().as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Refused(format!("writing the passphrase to stdout: {e}")))
}
