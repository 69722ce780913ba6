//! `slate-bench`: Slate's benchmarks. Each subcommand measures one path with the real code, on
//! loopback only, prints what it did, and ends with one machine-readable line of figures.
//!
//! Figures live here, never as timed assertions in tests.

mod report_path;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "slate-bench", about = "Slate's benchmarks; the last line of each is its figures")]
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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.bench {
        Bench::ReportPath { presses } => report_path::run(presses),
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
