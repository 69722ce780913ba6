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
}

impl Purged {
    pub fn total(&self) -> usize {
        self.incidents + self.reports + self.sessions + self.register + self.events + self.audit
    }
}

impl Store {
    /// Deletes, in one transaction, every record from before `cutoff`: reports pressed, sessions
    /// ended, register lessons ended, raw events and audit entries. An incident still open (not
    /// yet actioned) is kept with its report and event whatever its age: safeguarding work in
    /// progress is never purged.
    pub fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<Purged, StoreError> {
        let cutoff = db_time(cutoff);
        let connection = self.lock();
        let tx = connection.transaction()?;
        let old_closed_incidents =
            "SELECT i.id FROM incidents i JOIN reports r ON r.event_id = i.report_id
             WHERE r.pressed_at < ?1 AND i.status = 'actioned'";
        tx.execute(
            &format!("DELETE FROM incident_entries WHERE incident IN ({old_closed_incidents})"),
            [&cutoff],
        )?;
        let incidents = tx.execute(
            &format!("DELETE FROM incidents WHERE id IN ({old_closed_incidents})"),
            [&cutoff],
        )?;
        let reports = tx.execute(
            "DELETE FROM reports WHERE pressed_at < ?1
             AND event_id NOT IN (SELECT report_id FROM incidents)",
            [&cutoff],
        )?;
        let sessions = tx.execute(
            "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
            [&cutoff],
        )?;
        let register = tx.execute("DELETE FROM device_register WHERE to_at < ?1", [&cutoff])?;
        let events = tx.execute(
            "DELETE FROM events WHERE at < ?1 AND id NOT IN (SELECT event_id FROM reports)",
            [&cutoff],
        )?;
        let audit = tx.execute("DELETE FROM audit_log WHERE at < ?1", [&cutoff])?;
        tx.commit()?;
        Ok(Purged { incidents, reports, sessions, register, events, audit })
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

        let purged = store.purge_before(at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            purged,
            Purged { incidents: 1, reports: 1, sessions: 1, register: 1, events: 2, audit: 1 }
        );
        assert_eq!(count(&store, "incidents"), 2);
        assert_eq!(count(&store, "incident_entries"), 0);
        assert_eq!(count(&store, "reports"), 2);
        assert_eq!(count(&store, "events"), 2, "the kept reports' events stay");
        assert_eq!(count(&store, "sessions"), 0);
        assert_eq!(count(&store, "audit_log"), 1);
        assert_eq!(
            store.purge_before(at("2026-01-01T00:00:00Z")).unwrap().total(),
            0,
            "idempotent"
        );
    }
}
