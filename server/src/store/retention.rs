//! Purging records older than the retention cut-off. What the cut-off is, is `retention`'s.

use super::{db_time, Store, StoreError};
use chrono::{DateTime, Utc};

/// How many rows a purge removed, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    pub incidents: usize,
    pub reports: usize,
    pub sessions: usize,
    pub register: usize,
    pub events: usize,
    pub audit: usize,
    /// Alerts sent on every channel (the outbox keeps teachers' addresses).
    pub alerts: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.incidents
            + self.reports
            + self.sessions
            + self.register
            + self.events
            + self.audit
            + self.alerts
    }

    /// The most any one table gave: at the cap, there may be more to purge.
    pub fn largest(&self) -> usize {
        [
            self.incidents,
            self.reports,
            self.sessions,
            self.register,
            self.events,
            self.audit,
            self.alerts,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

impl Store {
    /// The newest time a device put on an event (its own clock, not the server's): what the
    /// purge checks the server's clock against.
    pub fn newest_event_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let newest: Option<String> =
            self.lock().query_row("SELECT MAX(at) FROM events", [], |r| r.get(0))?;
        newest.as_deref().map(super::parse_db_time).transpose()
    }

    /// Deletes, in one transaction, records from before `cutoff`, at most `max_rows` from each
    /// table (oldest first; the job runs again while a table is at its cap): reports pressed,
    /// sessions ended, register lessons ended, raw events and audit entries. An incident still
    /// open (not yet actioned) is kept with its report and event whatever its age: safeguarding
    /// work in progress is never purged.
    pub fn purge_before(&self, cutoff: DateTime<Utc>, max_rows: u32) -> Result<Purged, StoreError> {
        let cutoff = db_time(cutoff);
        let max_rows = i64::from(max_rows);
        let connection = self.lock();
        let tx = connection.transaction()?;
        let old_closed_incidents =
            "SELECT i.id FROM incidents i JOIN reports r ON r.event_id = i.report_id
             WHERE r.pressed_at < $1 AND i.status = 'actioned' ORDER BY r.pressed_at LIMIT $2";
        tx.execute(
            &format!("DELETE FROM incident_entries WHERE incident IN ({old_closed_incidents})"),
            (&cutoff, max_rows),
        )?;
        let incidents = tx.execute(
            &format!("DELETE FROM incidents WHERE id IN ({old_closed_incidents})"),
            (&cutoff, max_rows),
        )?;
        let reports = tx.execute(
            "DELETE FROM reports WHERE event_id IN (
                 SELECT event_id FROM reports WHERE pressed_at < $1
                 AND event_id NOT IN (SELECT report_id FROM incidents)
                 ORDER BY pressed_at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        let sessions = tx.execute(
            "DELETE FROM sessions WHERE session_id IN (
                 SELECT session_id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1
                 ORDER BY ended_at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        let register = tx.execute(
            "DELETE FROM device_register WHERE id IN (
                 SELECT id FROM device_register WHERE to_at < $1 ORDER BY to_at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        let events = tx.execute(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE at < $1
                 AND id NOT IN (SELECT event_id FROM reports)
                 ORDER BY at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        let audit = tx.execute(
            "DELETE FROM audit_log WHERE id IN (
                 SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        // Alerts still waiting to go are kept whatever their age.
        let alerts = tx.execute(
            "DELETE FROM alert_outbox WHERE id IN (
                 SELECT id FROM alert_outbox WHERE created_at < $1
                 AND email_done = 1 AND webhook_done = 1 ORDER BY created_at LIMIT $2)",
            (&cutoff, max_rows),
        )?;
        tx.commit()?;
        Ok(Purged { incidents, reports, sessions, register, events, audit, alerts })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::incident::{Action, Step};
    use slate_protocol::{Event, EventBody, PupilId, SessionEndReason, SessionId};

    fn count(store: &Store, table: &str) -> i64 {
        store.lock().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    fn report(t: &str) -> Event {
        Event::new(
            device(12),
            at(t),
            EventBody::ReportFiled {
                session: None,
                pupil: None,
                app: None,
                url: None,
                page_title: None,
                blank_latency_us: None,
                recent_names: vec![],
                origin: slate_protocol::ReportOrigin::Button,
            },
        )
    }

    #[test]
    fn records_older_than_the_cutoff_go_and_open_incidents_stay() {
        let (_dir, store) = store_with_device(12);
        let pupil = PupilId::new("p-1").unwrap();
        let session = SessionId::new();
        let old_session = Event::new(
            device(12),
            at("2025-01-10T10:00:00Z"),
            EventBody::SessionEnded {
                session,
                pupil: pupil.clone(),
                started_at: at("2025-01-10T09:00:00Z"),
                reason: SessionEndReason::SignedOut,
            },
        );
        let events = vec![
            old_session,
            report("2025-01-10T09:30:00Z"), // old, will be closed: purged
            report("2025-01-11T09:30:00Z"), // old, left open: kept
            report("2026-11-17T09:30:00Z"), // new: kept
        ];
        let ingested =
            store.ingest_reporting(device(12), &events, at("2026-11-17T09:31:00Z")).unwrap();
        let old_closed = ingested.new_reports[0].incident;
        let now = at("2026-11-17T10:00:00Z");
        store.incident_step(old_closed, Step::Acknowledge, "dsl", None, now).unwrap();
        store.incident_step(old_closed, Step::Act(Action::FalseAlarm), "dsl", None, now).unwrap();
        store
            .add_register_entry(
                device(7),
                &pupil,
                at("2025-01-10T09:00:00Z"),
                at("2025-01-10T10:00:00Z"),
                "t",
                now,
            )
            .unwrap();
        store.audit(at("2025-01-10T09:00:00Z"), "dsl", "viewed", None, None).unwrap();
        store.audit(now, "dsl", "viewed", None, None).unwrap();

        let purged = store.purge_before(at("2026-01-01T00:00:00Z"), 1000).unwrap();
        assert_eq!(
            purged,
            Purged {
                incidents: 1,
                reports: 1,
                sessions: 1,
                register: 1,
                events: 2,
                audit: 1,
                alerts: 0
            }
        );
        assert_eq!(count(&store, "incidents"), 2);
        assert_eq!(count(&store, "incident_entries"), 0);
        assert_eq!(count(&store, "reports"), 2);
        assert_eq!(count(&store, "events"), 2, "the kept reports' events stay");
        assert_eq!(count(&store, "sessions"), 0);
        assert_eq!(count(&store, "audit_log"), 2, "this year's view and the device's enrollment");
        assert_eq!(
            store.purge_before(at("2026-01-01T00:00:00Z"), 1000).unwrap().total(),
            0,
            "idempotent"
        );
    }

    #[test]
    fn a_purge_takes_at_most_its_cap_from_each_table_oldest_first() {
        let (_dir, store) = store_with_device(12);
        for day in 10..15 {
            store
                .audit(at(&format!("2025-01-{day}T09:00:00Z")), "dsl", "viewed", None, None)
                .unwrap();
        }
        let cutoff = at("2026-01-01T00:00:00Z");
        let first = store.purge_before(cutoff, 2).unwrap();
        assert_eq!((first.audit, first.largest()), (2, 2));
        let oldest: String =
            store.lock().query_row("SELECT MIN(at) FROM audit_log", [], |r| r.get(0)).unwrap();
        assert!(oldest.starts_with("2025-01-12"), "the oldest went first: {oldest}");
        assert_eq!(store.purge_before(cutoff, 2).unwrap().audit, 2);
        assert_eq!(store.purge_before(cutoff, 2).unwrap().audit, 1);
        assert_eq!(count(&store, "audit_log"), 1, "the device's enrollment, this year, stays");
    }

    #[test]
    fn the_newest_event_time_is_the_devices_own() {
        let (_dir, store) = store_with_device(12);
        assert_eq!(store.newest_event_at().unwrap(), None);
        let events = vec![report("2026-11-17T09:30:00Z"), report("2026-11-16T09:30:00Z")];
        store.ingest_reporting(device(12), &events, at("2031-01-01T00:00:00Z")).unwrap();
        assert_eq!(store.newest_event_at().unwrap(), Some(at("2026-11-17T09:30:00Z")));
    }

    #[test]
    fn sent_alerts_go_with_the_period_and_waiting_ones_stay() {
        let (_dir, store) = store_with_device(12);
        let events = vec![report("2025-01-10T09:30:00Z"), report("2025-01-11T09:30:00Z")];
        store.ingest_reporting(device(12), &events, at("2025-01-11T09:31:00Z")).unwrap();
        let queued = store.due_alerts(at("2025-01-12T00:00:00Z"), 10).unwrap();
        assert_eq!(queued.len(), 2, "queued with their reports");
        let later = at("2025-01-11T09:32:00Z");
        store.alert_tried(queued[0].id, true, true, later, None).unwrap();
        store.alert_tried(queued[1].id, false, true, later, Some("email: down")).unwrap();
        let purged = store.purge_before(at("2026-01-01T00:00:00Z"), 1000).unwrap();
        assert_eq!(purged.alerts, 1);
        let left = store.due_alerts(at("2030-01-01T00:00:00Z"), 10).unwrap();
        assert_eq!(left.iter().map(|a| a.id).collect::<Vec<_>>(), [queued[1].id]);
    }
}
