//! The retention schedule (seed 004: personal data held "not for longer than necessary"): the
//! cut-off and whether to purge at all as pure functions, and the job that purges older
//! records once a day.
//!
//! A purge cannot be undone, so it refuses when the server's clock looks wrong: later than the
//! newest time a device put on an event by more than [`CLOCK_SLACK`]. Devices keep their own
//! time (NTP, with evidence of it), so a server clock that jumped years ahead is seen at once
//! and stays seen until it is right again. During a long holiday with every device off the
//! purge waits too: that only keeps records a little longer.

use crate::store::{Purged, Store, StoreError};
use chrono::{DateTime, Duration, Utc};

/// Records from before this instant are purged.
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(retention_days.into())
}

/// How far the server's clock may be ahead of the newest event before a purge is refused.
pub const CLOCK_SLACK: Duration = Duration::days(1);

/// How many rows a purge takes from each table at most (the job comes back for the rest).
pub const MAX_ROWS_PER_RUN: u32 = 10_000;

/// How often the purge runs.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// How soon it runs again when a table was at its cap.
pub const PURGE_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether to purge, and up to when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeDecision {
    Purge {
        cutoff: DateTime<Utc>,
    },
    /// The clock is later than the newest event by more than [`CLOCK_SLACK`].
    ClockLooksWrong {
        now: DateTime<Utc>,
        newest: DateTime<Utc>,
    },
    /// No event at all: nothing to check the clock against, and nothing much to purge.
    NoEvents,
}

/// Decides from the server's clock and the newest event's time. Pure.
pub fn decide(
    now: DateTime<Utc>,
    newest_event: Option<DateTime<Utc>>,
    retention_days: u32,
) -> PurgeDecision {
    match newest_event {
        None => PurgeDecision::NoEvents,
        Some(newest) if now - newest > CLOCK_SLACK => {
            PurgeDecision::ClockLooksWrong { now, newest }
        }
        Some(_) => PurgeDecision::Purge { cutoff: cutoff(now, retention_days) },
    }
}

/// One run of the purge at `now` (the server's clock), recorded in the audit log as the
/// `system` actor, refusals too. Returns what was purged (`None`: refused).
pub fn purge_once(
    store: &Store,
    now: DateTime<Utc>,
    retention_days: u32,
    max_rows: u32,
) -> Result<Option<Purged>, StoreError> {
    match decide(now, store.newest_event_at()?, retention_days) {
        PurgeDecision::Purge { cutoff } => {
            let purged = store.purge_before(cutoff, max_rows)?;
            if purged.total() > 0 {
                let detail = format!("{purged:?}");
                store.audit(now, "system", "purged old records", None, Some(&detail))?;
            }
            Ok(Some(purged))
        }
        PurgeDecision::ClockLooksWrong { now, newest } => {
            let detail = format!(
                "the server's clock ({now}) is more than a day after the newest event ({newest})"
            );
            tracing::error!(%now, %newest, "retention purge refused: the server's clock looks wrong");
            store.audit(now, "system", "refused to purge old records", None, Some(&detail))?;
            Ok(None)
        }
        PurgeDecision::NoEvents => Ok(None),
    }
}

/// Purges once now and then every [`PURGE_EVERY`] (sooner while a table is at its cap), until
/// the task is dropped or aborted.
pub fn spawn_purge_job(store: Store, retention_days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let result = store
                .run(move |store| purge_once(store, Utc::now(), retention_days, MAX_ROWS_PER_RUN))
                .await;
            let wait = match result {
                Ok(Some(purged)) => {
                    tracing::info!(rows = purged.total(), retention_days, "retention purge");
                    if purged.largest() >= MAX_ROWS_PER_RUN as usize {
                        PURGE_AGAIN
                    } else {
                        PURGE_EVERY
                    }
                }
                Ok(None) => PURGE_EVERY,
                Err(error) => {
                    tracing::error!(%error, "retention purge failed; will try again");
                    PURGE_EVERY
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use slate_protocol::{Event, EventBody, PupilId, SessionEndReason, SessionId};

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

    #[test]
    fn a_clock_more_than_a_day_past_the_newest_event_refuses() {
        let newest = at("2026-11-17T10:00:00Z");
        let cases = [
            ("2026-11-17T12:00:00Z", true),
            ("2026-11-18T10:00:00Z", true),
            ("2026-11-18T10:00:01Z", false),
            ("2031-11-17T10:00:00Z", false),
            // A server behind its devices purges less, never more.
            ("2026-11-10T10:00:00Z", true),
        ];
        for (now, purges) in cases {
            let decision = decide(at(now), Some(newest), 30);
            match decision {
                PurgeDecision::Purge { cutoff: c } => {
                    assert!(purges, "{now}: {decision:?}");
                    assert_eq!(c, cutoff(at(now), 30));
                }
                PurgeDecision::ClockLooksWrong { .. } => assert!(!purges, "{now}: {decision:?}"),
                PurgeDecision::NoEvents => panic!("{now}: {decision:?}"),
            }
        }
        assert_eq!(decide(newest, None, 30), PurgeDecision::NoEvents);
    }

    fn closed_session(at_: &str) -> Event {
        Event::new(
            device(12),
            at(at_),
            EventBody::SessionEnded {
                session: SessionId::new(),
                pupil: PupilId::new("p-1").unwrap(),
                started_at: at(at_) - Duration::hours(1),
                reason: SessionEndReason::SignedOut,
            },
        )
    }

    fn count(store: &Store, table: &str) -> i64 {
        count_rows(store, &format!("SELECT count(*) FROM {table}"))
    }

    #[test]
    fn a_clock_moved_years_ahead_purges_nothing_and_says_so() {
        let (_dir, store) = store_with_device(12);
        let events =
            [closed_session("2026-01-10T10:00:00Z"), closed_session("2026-11-17T10:00:00Z")];
        store.ingest_reporting(device(12), &events, at("2026-11-17T10:00:01Z")).unwrap();
        let before = (count(&store, "events"), count(&store, "sessions"));

        // The server's clock jumps five years ahead: with 365 days' retention everything would go.
        let jumped = at("2031-11-17T10:00:00Z");
        assert_eq!(purge_once(&store, jumped, 365, MAX_ROWS_PER_RUN).unwrap(), None);
        assert_eq!((count(&store, "events"), count(&store, "sessions")), before);
        let refusals = count_rows(
            &store,
            "SELECT count(*) FROM audit_log WHERE action = 'refused to purge old records'",
        );
        assert_eq!(refusals, 1);

        // The clock right again: only what is really past the period goes.
        let right = at("2026-11-17T12:00:00Z");
        let purged = purge_once(&store, right, 300, MAX_ROWS_PER_RUN).unwrap().unwrap();
        assert_eq!((purged.events, purged.sessions), (1, 1));
        assert_eq!(count(&store, "sessions"), 1);
    }
}
