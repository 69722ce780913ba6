//! The retention schedule (seed 004: personal data held "not for longer than necessary"): the
//! cut-off as a pure function, and the job that purges older records once a day.

use crate::store::Store;
use chrono::{DateTime, Duration, Utc};

/// Records from before this instant are purged.
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(retention_days.into())
}

/// How often the purge runs.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Purges once now and then every [`PURGE_EVERY`], until the task is dropped or aborted.
/// Each purge is recorded in the audit log as the `system` actor.
pub fn spawn_purge_job(store: Store, retention_days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PURGE_EVERY);
        loop {
            ticks.tick().await;
            let result = store
                .run(move |store| {
                    let now = Utc::now();
                    let purged = store.purge_before(cutoff(now, retention_days))?;
                    if purged.total() > 0 {
                        let detail = format!("{purged:?}");
                        store.audit(now, "system", "purged old records", None, Some(&detail))?;
                    }
                    Ok(purged)
                })
                .await;
            match result {
                Ok(purged) => {
                    tracing::info!(rows = purged.total(), retention_days, "retention purge")
                }
                Err(error) => tracing::error!(%error, "retention purge failed; will try again"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_period_before_now() {
        let now: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().unwrap();
        let cases = [
            (1, "2026-11-16T10:00:00Z"),
            (365, "2025-11-17T10:00:00Z"),
            (0, "2026-11-17T10:00:00Z"),
        ];
        for (days, expected) in cases {
            assert_eq!(cutoff(now, days), expected.parse::<DateTime<Utc>>().unwrap(), "{days}");
        }
    }
}
