//! DNS the firewall refused around the filter (issue 17, seed 004: a security breach reaches
//! SLT "with immediate effect"). The lockdown ruleset ([`crate::lockdown`]) refuses every DNS,
//! DoT and known DoH packet that is not slate-dns's own, and counts each in the named nftables
//! counter [`COUNTER`]. `slate-dns-drops` reads that counter every few seconds
//! ([`DropCounter`]: `nft -j list counter`, [`NftCounter`]) and files a `security_breach` event
//! of the case [`Breach::DnsDropped`] through slated's control socket: at the first reading
//! that counted any, then at most once per window with the packets counted since the last one.
//! Reading the counter needs CAP_NET_ADMIN, which slate-dns itself does not have: that is why
//! it is its own small process (`systemd/slate-dns-drops.service`).
//!
//! The counter does not say which app or user sent the packets; the event says how many and
//! over how long.
//!
//! Pure: [`DropWatch`] and [`parse_counter`]; [`run`] is the loop around a [`DropCounter`].

use chrono::{DateTime, Duration, Utc};
use slate_protocol::Breach;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// The lockdown table's family and name, and its counter of refused packets.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "slate_dns";
pub const COUNTER: &str = "dns_bypass";

/// Whether to file now, from successive readings of the counter. Pure: readings and times in,
/// breaches out.
#[derive(Debug, Clone)]
pub struct DropWatch {
    window: Duration,
    /// The last total read, if any since start.
    last_total: Option<u64>,
    /// Packets counted and not filed yet.
    pending: u64,
    /// Since when `pending` counts (start, or the last filing).
    since: DateTime<Utc>,
    last_filed: Option<DateTime<Utc>>,
}

impl DropWatch {
    pub fn new(start: DateTime<Utc>, window: Duration) -> Self {
        Self { window, last_total: None, pending: 0, since: start, last_filed: None }
    }

    /// Takes the counter's `total` read at `now`; returns the breach to file, if any. The first
    /// reading counts everything the counter has (refused since the ruleset was loaded, at
    /// boot or when slate-dns started); a total lower than the last means the ruleset was
    /// loaded again and counts from zero. A breach is due when packets are pending and no
    /// breach was filed within the window before `now` (a clock stepped back files again).
    pub fn observe(&mut self, total: u64, now: DateTime<Utc>) -> Option<Breach> {
        let new = match self.last_total {
            Some(last) if total >= last => total - last,
            _ => total,
        };
        self.last_total = Some(total);
        self.pending = self.pending.saturating_add(new);
        if self.pending == 0 {
            return None;
        }
        let due = self.last_filed.is_none_or(|at| now - at >= self.window || now < at);
        if !due {
            return None;
        }
        let over_s = u64::try_from((now - self.since).num_seconds()).unwrap_or(0);
        let breach = Breach::DnsDropped { dropped: self.pending, over_s };
        self.pending = 0;
        self.since = now;
        self.last_filed = Some(now);
        Some(breach)
    }
}

/// The packets of the counter `name` in `nft -j list counter …`'s output. Pure.
pub fn parse_counter(json: &[u8], name: &str) -> Result<u64, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("nft's output is not JSON: {e}"))?;
    let items = value["nftables"].as_array().ok_or("nft's output has no `nftables` array")?;
    items
        .iter()
        .filter_map(|item| item.get("counter"))
        .find(|counter| counter["name"] == name)
        .ok_or_else(|| format!("nft lists no counter {name}"))?["packets"]
        .as_u64()
        .ok_or_else(|| format!("counter {name} has no packet count"))
}

/// Where the refused packets' count comes from: nftables on a device, something else in tests.
pub trait DropCounter {
    /// Packets refused so far.
    fn total(&mut self) -> Result<u64, String>;
}

/// The named counter, read with `nft -j list counter <family> <table> <name>`.
#[derive(Debug, Clone)]
pub struct NftCounter {
    pub nft: PathBuf,
    pub family: String,
    pub table: String,
    pub name: String,
}

impl Default for NftCounter {
    fn default() -> Self {
        Self {
            nft: "/usr/sbin/nft".into(),
            family: FAMILY.into(),
            table: TABLE.into(),
            name: COUNTER.into(),
        }
    }
}

impl DropCounter for NftCounter {
    fn total(&mut self) -> Result<u64, String> {
        let output = std::process::Command::new(&self.nft)
            .args(["-j", "list", "counter", &self.family, &self.table, &self.name])
            .output()
            .map_err(|e| format!("{}: {e}", self.nft.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("nft list counter: {} {}", output.status, stderr.trim()));
        }
        parse_counter(&output.stdout, &self.name)
    }
}

/// Reads `counter` every `every` and hands each breach [`DropWatch`] decides to `breaches`,
/// until that queue closes. A reading that fails is logged once until one succeeds (the table
/// missing means the lockdown is not loaded: slate-dns's unit loads it).
pub async fn run(
    mut counter: impl DropCounter,
    mut watch: DropWatch,
    every: std::time::Duration,
    breaches: mpsc::Sender<Breach>,
) {
    let mut failing = false;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match counter.total() {
            Ok(total) => {
                failing = false;
                if let Some(breach) = watch.observe(total, Utc::now()) {
                    tracing::warn!(what = breach.what(), "DNS refused around the filter");
                    if breaches.send(breach).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "cannot read the refused-DNS counter");
                    failing = true;
                }
            }
        }
        if breaches.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn dropped(dropped: u64, over_s: u64) -> Option<Breach> {
        Some(Breach::DnsDropped { dropped, over_s })
    }

    #[test]
    fn drops_are_filed_at_once_then_at_most_once_a_window() {
        let mut watch = DropWatch::new(at(0), Duration::seconds(300));
        // (seconds, counter total, filed)
        let steps = [
            (0, 0, None),
            (15, 0, None),
            (30, 4, dropped(4, 30)), // the first attempt: at once
            (45, 9, None),           // within the window: counted, not filed
            (60, 9, None),
            (330, 12, dropped(8, 300)), // the window passed: everything since
            (345, 12, None),
            (700, 12, None), // nothing new: nothing, however long
            (715, 13, dropped(1, 385)),
            (730, 2, None), // the ruleset loaded again: 2 new, within the window
            (1015, 2, dropped(2, 300)),
            (1000, 5, dropped(3, 0)), // the clock stepped back: filed, never hidden
        ];
        for (s, total, expected) in steps {
            assert_eq!(watch.observe(total, at(s)), expected, "at {s}s, total {total}");
        }
    }

    #[test]
    fn a_counter_already_counting_at_start_is_filed() {
        let mut watch = DropWatch::new(at(0), Duration::seconds(300));
        assert_eq!(watch.observe(3, at(0)), dropped(3, 0));
        assert_eq!(watch.observe(3, at(400)), None);
    }

    #[test]
    fn the_counter_is_read_from_nfts_json() {
        let listed = br#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"counter": {"family": "inet", "name": "dns_bypass", "table": "slate_dns", "handle": 3, "packets": 17, "bytes": 1020}}]}"#;
        let other = br#"{"nftables": [{"counter": {"name": "other", "packets": 1}}]}"#;
        let cases: [(&[u8], Result<u64, &str>); 5] = [
            (listed, Ok(17)),
            (other, Err("no counter dns_bypass")),
            (b"{}", Err("no `nftables` array")),
            (b"Error: No such file or directory", Err("not JSON")),
            (br#"{"nftables": [{"counter": {"name": "dns_bypass"}}]}"#, Err("no packet count")),
        ];
        for (json, expected) in cases {
            match (parse_counter(json, COUNTER), expected) {
                (Ok(n), Ok(m)) => assert_eq!(n, m),
                (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
                (got, want) => panic!("{got:?}, expected {want:?}"),
            }
        }
    }

    /// Readings a test gives: a total or an error each time.
    struct Readings(VecDeque<Result<u64, String>>);

    impl DropCounter for Readings {
        fn total(&mut self) -> Result<u64, String> {
            self.0.pop_front().unwrap_or(Err("no more readings".into()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_files_what_the_watch_decides_and_survives_failed_readings() {
        let readings =
            Readings([Ok(0), Err("nft: no such table".into()), Ok(5), Ok(6)].into_iter().collect());
        let (tx, mut rx) = mpsc::channel(4);
        let watch = DropWatch::new(Utc::now(), Duration::hours(1));
        let task = tokio::spawn(run(readings, watch, std::time::Duration::from_secs(15), tx));
        let Some(Breach::DnsDropped { dropped, .. }) = rx.recv().await else {
            panic!("a dns_dropped breach")
        };
        assert_eq!(dropped, 5);
        // The sixth packet is within the hour: not filed.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        assert!(rx.try_recv().is_err());
        drop(rx);
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        assert!(task.is_finished(), "the loop ends when nobody takes its breaches");
    }
}
