//! Purging what the retention schedule says is past its period: how each record type's rows
//! are found and removed. What the periods are, and what each is counted from, is
//! `retention`'s.

use super::sql::Transaction;
use super::{db_time, Store, StoreError};
use crate::incident::Action;
use crate::retention::{
    incident_record_type, Cutoffs, RecordType, PUPIL_EVENT_KINDS, REPORT_ORIGINS,
};
use chrono::{DateTime, Utc};
use std::fmt;

/// How many rows a purge removed, per record type (a type's rows in every table: a session
/// and its events, an incident and its report, history and event), and whether any one
/// statement took as many as it was allowed (the job comes back sooner for the rest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    counts: [usize; RecordType::ALL.len()],
    pub at_cap: bool,
}

impl Purged {
    pub fn count(&self, record: RecordType) -> usize {
        self.counts[record.index()]
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The types that lost any rows, with how many, in the schedule's order.
    pub fn nonzero(&self) -> Vec<(RecordType, usize)> {
        RecordType::ALL.into_iter().map(|t| (t, self.count(t))).filter(|(_, n)| *n > 0).collect()
    }

    fn add(&mut self, record: RecordType, rows: usize, max_rows: i64) {
        self.counts[record.index()] += rows;
        if i64::try_from(rows).unwrap_or(i64::MAX) >= max_rows {
            self.at_cap = true;
        }
    }
}

/// `sessions 2, audit 1`: counts only, for logs and the audit log.
impl fmt::Display for Purged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.nonzero().into_iter().map(|(t, n)| format!("{} {n}", t.key())).collect();
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// `'a', 'b'`: constant names for an SQL `IN` list (never input).
fn sql_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

/// The SQL condition on `r` (the report) and `i` (the incident) for a closed incident of this
/// record type, written out from [`incident_record_type`] so the two cannot disagree.
fn incident_class(record: RecordType) -> String {
    let mut parts = Vec::new();
    for origin in REPORT_ORIGINS {
        for action in Action::ALL {
            if incident_record_type(origin, action) == record {
                parts.push(format!("(r.origin = '{origin}' AND i.action = '{}')", action.name()));
            }
        }
    }
    format!("i.status = 'actioned' AND ({})", parts.join(" OR "))
}

/// The ids of pupils marked as left before `$1` whose records have not been purged yet.
const LEAVERS: &str =
    "SELECT id FROM pupils WHERE left_at IS NOT NULL AND left_at < $1 AND leaver_purged = 0";

/// Removes up to `$2` closed incidents of `class` that also meet `and` (with `$1`), oldest
/// change first, each with its history, report and the press's raw event.
fn purge_incidents(
    tx: &Transaction<'_>,
    class: &str,
    and: &str,
    cutoff: &str,
    max_rows: i64,
) -> Result<usize, StoreError> {
    let found: Vec<(i64, String)> = {
        let mut statement = tx.prepare(&format!(
            "SELECT i.id, i.report_id FROM incidents i JOIN reports r ON r.event_id = i.report_id
             WHERE {class} AND {and} ORDER BY i.updated_at, i.id LIMIT $2"
        ))?;
        let rows = statement.query_map((cutoff, max_rows), |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (incident, report) in &found {
        tx.execute("DELETE FROM incident_entries WHERE incident = $1", [*incident])?;
        tx.execute("DELETE FROM incidents WHERE id = $1", [*incident])?;
        tx.execute("DELETE FROM reports WHERE event_id = $1", [report.as_str()])?;
        tx.execute("DELETE FROM events WHERE id = $1", [report.as_str()])?;
    }
    Ok(found.len())
}

/// Removes up to `$2` raw events of these kinds (an SQL condition on `kind`) that also meet
/// `and` (with `$1`), oldest first.
fn purge_events(
    tx: &Transaction<'_>,
    kinds: &str,
    and: &str,
    cutoff: &str,
    max_rows: i64,
) -> Result<usize, StoreError> {
    tx.execute(
        &format!(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE {kinds} AND {and} ORDER BY at LIMIT $2)"
        ),
        (cutoff, max_rows),
    )
}

impl Store {
    /// The newest time a device put on an event (its own clock, not the server's): what the
    /// purge checks the server's clock against.
    pub fn newest_event_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let newest: Option<String> =
            self.lock().query_row("SELECT MAX(at) FROM events", [], |r| r.get(0))?;
        newest.as_deref().map(super::parse_db_time).transpose()
    }

    /// Deletes, in one transaction, each record type's rows from before its cut-off (what a
    /// type's period counts from is `retention`'s [`RecordType::rule`]), at most `max_rows`
    /// per statement, oldest first; then leavers' records ([`RecordType::Leavers`]). An
    /// incident still open (not yet actioned) is kept with its report and event whatever its
    /// age, and so is an alert still waiting to go: work in progress is never purged.
    pub fn purge(&self, cutoffs: &Cutoffs, max_rows: u32) -> Result<Purged, StoreError> {
        use RecordType::*;
        let max = i64::from(max_rows);
        let connection = self.lock();
        let tx = connection.transaction()?;
        let mut purged = Purged::default();
        let cut = |record: RecordType| db_time(cutoffs.of(record));

        for record in [Incidents, FalseAlarms, TellMyTeacher] {
            let class = incident_class(record);
            let rows = purge_incidents(&tx, &class, "i.updated_at < $1", &cut(record), max)?;
            purged.add(record, rows, max);
        }

        let sessions = tx.execute(
            "DELETE FROM sessions WHERE session_id IN (
                 SELECT session_id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1
                 ORDER BY ended_at LIMIT $2)",
            (&cut(Sessions), max),
        )?;
        purged.add(Sessions, sessions, max);
        let register = tx.execute(
            "DELETE FROM device_register WHERE id IN (
                 SELECT id FROM device_register WHERE to_at < $1 ORDER BY to_at LIMIT $2)",
            (&cut(Sessions), max),
        )?;
        purged.add(Sessions, register, max);
        for record in [Sessions, FilteringLog, AupAcceptances] {
            let kinds = format!("kind IN ({})", sql_list(record.event_kinds()));
            let rows = purge_events(&tx, &kinds, "at < $1", &cut(record), max)?;
            purged.add(record, rows, max);
        }
        // Every other kind but a press (whose event goes with its incident) is a device's own,
        // a kind added later too.
        let theirs: Vec<&str> = [Sessions, FilteringLog, AupAcceptances]
            .iter()
            .flat_map(|t| t.event_kinds().iter().copied())
            .chain(["report_filed"])
            .collect();
        let kinds = format!("kind NOT IN ({})", sql_list(&theirs));
        let rows = purge_events(&tx, &kinds, "at < $1", &cut(DeviceEvents), max)?;
        purged.add(DeviceEvents, rows, max);

        let bypasses = tx.execute(
            "DELETE FROM bypasses WHERE id IN (
                 SELECT id FROM bypasses WHERE until_at < $1 ORDER BY until_at LIMIT $2)",
            (&cut(Bypasses), max),
        )?;
        purged.add(Bypasses, bypasses, max);
        // Site block requests are the same kind of record (a filtering change asked for and
        // decided), counted from the decision; one still waiting is kept whatever its age. The
        // asks go first (they name the incident, the device and whose PIN), then the requests
        // left without any.
        let decided = "SELECT id FROM block_requests WHERE status <> 'pending' AND decided_at < $1
                       ORDER BY decided_at LIMIT $2";
        let asks = tx.execute(
            &format!("DELETE FROM block_request_asks WHERE request IN ({decided})"),
            (&cut(Bypasses), max),
        )?;
        purged.add(Bypasses, asks, max);
        let block_requests = tx.execute(
            "DELETE FROM block_requests WHERE id IN (
                 SELECT id FROM block_requests WHERE status <> 'pending' AND decided_at < $1
                 AND NOT EXISTS (SELECT 1 FROM block_request_asks a WHERE a.request = block_requests.id)
                 ORDER BY decided_at LIMIT $2)",
            (&cut(Bypasses), max),
        )?;
        purged.add(Bypasses, block_requests, max);
        // A recorded check goes with the built-in check attached to it; a built-in check never
        // attached goes on its own, counted from when it started, its devices' answers first.
        let checks = tx.execute(
            "DELETE FROM filter_checks WHERE id IN (
                 SELECT id FROM filter_checks WHERE recorded_at < $1 ORDER BY recorded_at LIMIT $2)",
            (&cut(FilterChecks), max),
        )?;
        purged.add(FilterChecks, checks, max);
        let unattached = "SELECT id FROM filter_check_runs r WHERE started_at < $1
                          AND NOT EXISTS (SELECT 1 FROM filter_checks c WHERE c.run = r.id)";
        let answers = tx.execute(
            &format!(
                "DELETE FROM filter_check_commands WHERE command IN (
                     SELECT command FROM filter_check_commands WHERE run IN ({unattached})
                     ORDER BY command LIMIT $2)"
            ),
            (&cut(FilterChecks), max),
        )?;
        purged.add(FilterChecks, answers, max);
        let runs = tx.execute(
            &format!(
                "DELETE FROM filter_check_runs WHERE id IN (
                     SELECT id FROM ({unattached}) due
                     WHERE NOT EXISTS (SELECT 1 FROM filter_check_commands d WHERE d.run = due.id)
                     ORDER BY id LIMIT $2)"
            ),
            (&cut(FilterChecks), max),
        )?;
        purged.add(FilterChecks, runs, max);
        let alerts = tx.execute(
            "DELETE FROM alert_outbox WHERE id IN (
                 SELECT id FROM alert_outbox WHERE created_at < $1
                 AND email_done = 1 AND webhook_done = 1 ORDER BY created_at LIMIT $2)",
            (&cut(Alerts), max),
        )?;
        purged.add(Alerts, alerts, max);
        let expired = cut(Expired);
        for sql in [
            // Idle for 30 minutes a sign-in has ended: one last used before the cut-off has.
            "DELETE FROM staff_sessions WHERE id_sha256 IN (
                 SELECT id_sha256 FROM staff_sessions WHERE last_seen_at < $1
                 ORDER BY last_seen_at LIMIT $2)",
            "DELETE FROM recovery_links WHERE token_sha256 IN (
                 SELECT token_sha256 FROM recovery_links WHERE expires_at < $1
                 ORDER BY expires_at LIMIT $2)",
            "DELETE FROM enrollment_tokens WHERE token_sha256 IN (
                 SELECT token_sha256 FROM enrollment_tokens WHERE expires_at < $1
                 ORDER BY expires_at LIMIT $2)",
            // Its uses go with it (ON DELETE CASCADE).
            "DELETE FROM class_set_tokens WHERE token_sha256 IN (
                 SELECT token_sha256 FROM class_set_tokens WHERE expires_at < $1
                 ORDER BY expires_at LIMIT $2)",
            // The newest command stays whatever its age: its id is where devices' cursors are
            // checked against (`commands_for`), so none goes back and gets a command again.
            "DELETE FROM device_commands WHERE id IN (
                 SELECT id FROM device_commands WHERE expires_at < $1
                 AND id < (SELECT max(id) FROM device_commands) ORDER BY expires_at LIMIT $2)",
        ] {
            let rows = tx.execute(sql, (&expired, max))?;
            purged.add(Expired, rows, max);
        }
        let audit = tx.execute(
            "DELETE FROM audit_log WHERE id IN (
                 SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)",
            (&cut(Audit), max),
        )?;
        purged.add(Audit, audit, max);

        purge_leavers(&tx, &cut(Leavers), max, &mut purged)?;
        tx.commit()?;
        Ok(purged)
    }
}

/// A leaver's records, once the leaver period has passed since they left, whatever their own
/// periods say: closed false alarms and "tell my teacher" messages, sessions, register lines,
/// and the raw events that name them. Their safeguarding incidents follow their own period and
/// open ones stay (seed 004's "not for longer than necessary" against the child protection
/// record, which outlives the pupil's time at the school). When none of that was at its cap,
/// the leaver is marked as purged (`leaver_purged`; the picture PIN goes: nothing signs in
/// with it again), so the raw events are scanned for them once, not daily. A purged leaver's
/// roster row goes once nothing refers to it (at once, or when their last incident goes); till
/// then it keeps the name their record shows. Counted under each record's own type, the
/// roster rows as leavers.
fn purge_leavers(
    tx: &Transaction<'_>,
    cutoff: &str,
    max: i64,
    purged: &mut Purged,
) -> Result<(), StoreError> {
    use RecordType::*;
    let due: i64 =
        tx.query_row(&format!("SELECT count(*) FROM ({LEAVERS}) due"), [cutoff], |r| r.get(0))?;
    let mut theirs = Purged::default();
    if due > 0 {
        let of_leaver = format!("r.pupil IN ({LEAVERS})");
        for record in [FalseAlarms, TellMyTeacher] {
            let rows = purge_incidents(tx, &incident_class(record), &of_leaver, cutoff, max)?;
            theirs.add(record, rows, max);
        }
        let sessions = tx.execute(
            &format!(
                "DELETE FROM sessions WHERE session_id IN (
                     SELECT session_id FROM sessions WHERE ended_at IS NOT NULL
                     AND pupil IN ({LEAVERS}) LIMIT $2)"
            ),
            (cutoff, max),
        )?;
        theirs.add(Sessions, sessions, max);
        let register = tx.execute(
            &format!(
                "DELETE FROM device_register WHERE id IN (
                     SELECT id FROM device_register WHERE pupil IN ({LEAVERS}) LIMIT $2)"
            ),
            (cutoff, max),
        )?;
        theirs.add(Sessions, register, max);
        let pupil = tx.backend().json_text("body", "pupil");
        for record in [Sessions, FilteringLog, AupAcceptances] {
            let kinds: Vec<&str> = record
                .event_kinds()
                .iter()
                .copied()
                .filter(|kind| PUPIL_EVENT_KINDS.contains(kind))
                .collect();
            let kinds = format!("kind IN ({})", sql_list(&kinds));
            let rows = purge_events(tx, &kinds, &format!("{pupil} IN ({LEAVERS})"), cutoff, max)?;
            theirs.add(record, rows, max);
        }
        if !theirs.at_cap {
            tx.execute(
                &format!(
                    "UPDATE pupils SET leaver_purged = 1, picture_pin = NULL
                     WHERE id IN ({LEAVERS})"
                ),
                [cutoff],
            )?;
        }
    }
    let rows = tx.execute(
        "DELETE FROM pupils WHERE id IN (
             SELECT id FROM pupils WHERE left_at IS NOT NULL AND left_at < $1
             AND leaver_purged = 1
             AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.pupil = pupils.id)
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.pupil = pupils.id)
             AND NOT EXISTS (SELECT 1 FROM device_register d WHERE d.pupil = pupils.id)
             LIMIT $2)",
        (cutoff, max),
    )?;
    theirs.add(Leavers, rows, max);
    for record in RecordType::ALL {
        purged.counts[record.index()] += theirs.count(record);
    }
    purged.at_cap |= theirs.at_cap;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::incident::{Action, Step};
    use crate::retention::RecordType::*;
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
        // Closed long ago: its period counts from its closure.
        let closed = at("2025-01-12T10:00:00Z");
        store.incident_step(old_closed, Step::Acknowledge, "dsl", None, closed).unwrap();
        store
            .incident_step(old_closed, Step::Act(Action::FalseAlarm), "dsl", None, closed)
            .unwrap();
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

        let cutoffs = Cutoffs::uniform(at("2026-01-01T00:00:00Z"));
        let purged = store.purge(&cutoffs, 1000).unwrap();
        // The false alarm with its report and event; the session, its event and the register
        // line; the old view.
        assert_eq!(purged.nonzero(), [(FalseAlarms, 1), (Sessions, 3), (Audit, 1)]);
        assert!(!purged.at_cap);
        assert_eq!(count(&store, "incidents"), 2);
        assert_eq!(count(&store, "incident_entries"), 0);
        assert_eq!(count(&store, "reports"), 2);
        assert_eq!(count(&store, "events"), 2, "the kept reports' events stay");
        assert_eq!(count(&store, "sessions"), 0);
        assert_eq!(count(&store, "audit_log"), 2, "this year's view and the device's enrollment");
        assert_eq!(store.purge(&cutoffs, 1000).unwrap().total(), 0, "idempotent");
    }

    #[test]
    fn a_purge_takes_at_most_its_cap_from_each_table_oldest_first() {
        let (_dir, store) = store_with_device(12);
        for day in 10..15 {
            store
                .audit(at(&format!("2025-01-{day}T09:00:00Z")), "dsl", "viewed", None, None)
                .unwrap();
        }
        let cutoff = Cutoffs::uniform(at("2026-01-01T00:00:00Z"));
        let first = store.purge(&cutoff, 2).unwrap();
        assert_eq!((first.count(Audit), first.at_cap), (2, true));
        let oldest: String =
            store.lock().query_row("SELECT MIN(at) FROM audit_log", [], |r| r.get(0)).unwrap();
        assert!(oldest.starts_with("2025-01-12"), "the oldest went first: {oldest}");
        assert_eq!(store.purge(&cutoff, 2).unwrap().count(Audit), 2);
        let last = store.purge(&cutoff, 2).unwrap();
        assert_eq!((last.count(Audit), last.at_cap), (1, false));
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
        let purged = store.purge(&Cutoffs::uniform(at("2026-01-01T00:00:00Z")), 1000).unwrap();
        assert_eq!(purged.count(Alerts), 1);
        let left = store.due_alerts(at("2030-01-01T00:00:00Z"), 10).unwrap();
        assert_eq!(left.iter().map(|a| a.id).collect::<Vec<_>>(), [queued[1].id]);
    }
}
