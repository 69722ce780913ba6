//! `slate-bench`: Slate's benchmarks. Each subcommand measures one path with the real code, on
//! loopback only, prints what it did, and ends with one machine-readable line of figures.
//!
//! Figures live here, never as timed assertions in tests.

mod backlog;
mod backup;
mod blank;
mod boot;
mod dns;
mod dsl_pages;
mod idle_memory;
mod local_server;
mod login_storm;
mod report_path;
mod server;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "slate-bench",
    version,
    about = "Slate's benchmarks; the last line of each is its figures"
)]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Presses the report button on a real `slated` against a real `slate-server` on loopback
    /// and times each press until the server has stored its report.
    ReportPath {
        /// How many presses.
        #[arg(long, default_value_t = 200)]
        presses: usize,
    },
    /// A device back online after days offline: `--events` events filed into a real spool,
    /// then drained by the real uploader to a real server on loopback (its own process).
    Backlog {
        /// How many events are filed offline.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
    },
    /// A school server's backup and restore (`slate-server backup` / `restore`'s code) with
    /// `--events` events in its SQLite database.
    Backup {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// The server half of `backlog` (run by it).
    #[command(hide = true)]
    BacklogServer { dir: std::path::PathBuf },
    /// Slate's DNS filter against unbound and dnsmasq with the same million-domain block list,
    /// each driven by dnsperf on loopback.
    Dns {
        /// How many generated block-list domains.
        #[arg(long, default_value_t = 1_000_000)]
        domains: usize,
        /// How long dnsperf drives each resolver.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// A real `slate-server` on loopback: events/s stored from concurrent device uploaders over
    /// HTTP, then the p99 of "who had device N at T" once the database holds `--events` events.
    Server {
        /// How many events the database is filled to before the who-had questions.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// An empty PostgreSQL database (`host=/tmp/pg dbname=bench user=slate`) to measure
        /// instead of a SQLite file; its tables are created and left filled.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// The DSL's pages on a big school's SQLite database (filled once, then cached in
    /// `~/.cache/slate-bench`): the incident list with searches and pupils' chronologies over
    /// HTTP from a real `slate-server` on loopback, the DSL signed in; p99 in ms.
    DslPages {
        /// How many incidents (reports pressed on devices) the year holds.
        #[arg(long, default_value_t = 100_000)]
        incidents: u64,
        /// How many events in all (sessions, agreements, apps, blocks, heartbeats, reports).
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
    },
    /// A sign-in storm against a real `slate-server` on loopback (production argon2 and
    /// limits): parallel wrong sign-ins at the DSL's account, slowloris clients, and a device
    /// uploading batches meanwhile. Peak memory and the device's batch p99.
    LoginStorm {
        /// How many sign-ins at once, each from its own loopback address.
        #[arg(long, default_value_t = 500)]
        parallel: usize,
    },
    /// Times each report-button press until the screen is confirmed dark (the report's
    /// `blank_latency_us`): through evdev where /dev/uinput exists, else injected at the button
    /// adapter's boundary. The last line says which.
    Blank {
        /// How many presses.
        #[arg(long, default_value_t = 200)]
        presses: usize,
    },
    /// Boots the SD-card image under QEMU (images/test) to `slated ready` and a report on the
    /// server, then plain Debian to `login:`; needs the images built (it says how) and root.
    Boot {
        /// How many images/test runs (medians are reported).
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Boot the kiosk image instead of the minimal one.
        #[arg(long)]
        kiosk: bool,
    },
    /// Resident memory at rest: slated + slate-ui at the home screen against Chromium in kiosk
    /// mode showing an HTML page with the same tiles, each process tree summed from /proc.
    IdleMemory {
        /// Seconds to let each settle before sampling.
        #[arg(long, default_value_t = 10)]
        settle: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.bench {
        Bench::ReportPath { presses } => report_path::run(presses),
        Bench::Backlog { events } => backlog::run(events),
        Bench::BacklogServer { dir } => backlog::serve(&dir),
        Bench::Backup { events } => backup::run(events),
        Bench::Blank { presses } => blank::run(presses),
        Bench::Dns { domains, seconds } => dns::run(domains, seconds),
        Bench::Server { events, postgres } => server::run(events, postgres.as_deref()),
        Bench::LoginStorm { parallel } => login_storm::run(parallel),
        Bench::DslPages { incidents, events } => dsl_pages::run(incidents, events),
        Bench::IdleMemory { settle } => idle_memory::run(settle),
        Bench::Boot { runs, kiosk } => boot::run(runs, kiosk),
    }
}

/// The `q`-quantile (0..=1) of `samples`, by the nearest-rank method.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.5), 50.0);
        assert_eq!(quantile(&samples, 0.99), 99.0);
        assert_eq!(quantile(&samples, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
    }
}
