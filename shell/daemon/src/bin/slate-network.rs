//! `slate-network`: the school-network settings of `slate-provision.conf` (Wi-Fi country,
//! WPA2/WPA3-Enterprise, proxy, time servers, SSL-inspection CA), checked and applied. Run by
//! the provisioning script (`/usr/lib/slate/provision`): `--check` before anything of the file
//! is applied, `--apply` after. See `slate_daemon::school_network`.
//!
//! Exit status: 0 done; 1 refused (the message names the field) or a write failed.

use clap::Parser;
use slate_daemon::school_network::{self, apply, Layout};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "slate-network", version, about = "Check or apply the school-network settings")]
struct Cli {
    /// Check everything (the file and the certificates it names) and write nothing.
    #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
    check: bool,
    /// Check everything, then write it.
    #[arg(long)]
    apply: bool,
    /// NetworkManager's keyfile directory.
    #[arg(long, env = "SLATE_NM_DIR", default_value = "/etc/NetworkManager/system-connections")]
    nm_dir: PathBuf,
    /// This tool's files on the data partition (Wi-Fi country, timesyncd drop-in, Chromium's
    /// proxy/CA policy, slated's environment, the certificates, the trust store).
    #[arg(long, env = "SLATE_NETWORK_DIR", default_value = "/var/lib/slate-system/network")]
    state_dir: PathBuf,
    /// Debian's update-ca-certificates.
    #[arg(
        long,
        env = "SLATE_UPDATE_CA_CERTIFICATES",
        default_value = "/usr/sbin/update-ca-certificates"
    )]
    update_ca_certificates: PathBuf,
    /// Where the certificates the file names are (the boot partition); by default the file's own
    /// directory. The provisioning script gives the text slated checked (a signed file's
    /// payload) from /run, so it names the boot partition here.
    #[arg(long, value_name = "DIR")]
    files_dir: Option<PathBuf>,
    /// The text is a signed file's payload (slated said `source=signed`): every certificate or
    /// key file it names must carry its SHA-256 (`<key>_sha256`, recorded by `slate-server
    /// provision sign`), since the signature covers the text only. A recorded hash is checked
    /// with or without this.
    #[arg(long)]
    signed: bool,
    /// slate-provision.conf, or the text slated checked of it (`slated --payload-out`).
    conf: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match apply::load(&cli.conf, cli.files_dir.as_deref(), cli.signed) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.apply {
        let layout = Layout { nm_dir: cli.nm_dir, state_dir: cli.state_dir };
        let trust = apply::UpdateCaCertificates { program: cli.update_ca_certificates };
        if let Err(e) = apply::apply(&settings, &layout, &trust) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    for line in school_network::summary(&settings) {
        println!("{line}");
    }
    ExitCode::SUCCESS
}
