//! Storing a device's batch of events, exactly once each, and the rows derived from them.

use super::sql::{OptionalExtension, Transaction};
use super::{db_time, Store, StoreError};
use crate::incident::{next_status, Action, Status, Step};
use chrono::{DateTime, Utc};
use slate_protocol::staff::IT_STAFF_ID;
use slate_protocol::{
    DeviceNumber, Event, EventBody, IngestReply, ResolutionChoice, SessionEndReason,
};

/// A report stored for the first time, and the incident opened for it: what alerts are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub incident: i64,
    pub device: DeviceNumber,
    pub pressed_at: DateTime<Utc>,
    /// Whose report, to find their class teacher; never put in an alert.
    pub pupil: Option<slate_protocol::PupilId>,
    /// Filed by "tell my teacher" on a blocked page: low priority.
    pub from_block_page: bool,
}

/// The outcome of storing a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub reply: IngestReply,
    pub new_reports: Vec<NewReport>,
}

impl Store {
    /// Stores a batch from `device` in one transaction. An event whose id is already stored is
    /// counted as a duplicate and changes nothing, so a device may resend a batch safely.
    ///
    /// The caller has checked that every event belongs to `device`.
    pub fn ingest(
        &self,
        device: DeviceNumber,
        events: &[Event],
        received_at: DateTime<Utc>,
    ) -> Result<IngestReply, StoreError> {
        Ok(self.ingest_reporting(device, events, received_at)?.reply)
    }

    /// [`Store::ingest`], also saying which reports are new (a resent report is not new).
    pub fn ingest_reporting(
        &self,
        device: DeviceNumber,
        events: &[Event],
        received_at: DateTime<Utc>,
    ) -> Result<Ingested, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let received_at = db_time(received_at);
        let mut reply = IngestReply { stored: 0, duplicates: 0 };
        let mut new_reports = Vec::new();
        for event in events {
            // ON CONFLICT (id), not INSERT OR IGNORE: only a repeated id is a duplicate; any
            // other constraint failure is an error that must not pass silently.
            let inserted = tx.execute(
                "INSERT INTO events (id, device, kind, at, received_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO NOTHING",
                (
                    event.id.to_string(),
                    device.get(),
                    event.body.kind(),
                    db_time(event.at),
                    &received_at,
                    serde_json::to_string(&event.body)?,
                ),
            )?;
            if inserted == 0 {
                reply.duplicates += 1;
            } else {
                reply.stored += 1;
                if let Some(incident) = derive_rows(&tx, device, event, &received_at)? {
                    let (pupil, from_block_page) = match &event.body {
                        EventBody::ReportFiled { pupil, origin, .. } => {
                            (pupil.clone(), !origin.is_button())
                        }
                        _ => (None, false),
                    };
                    new_reports.push(NewReport {
                        incident,
                        device,
                        pressed_at: event.at,
                        pupil,
                        from_block_page,
                    });
                }
            }
        }
        tx.execute(
            "UPDATE devices SET last_seen_at = ?2 WHERE number = ?1",
            (device.get(), &received_at),
        )?;
        tx.commit()?;
        Ok(Ingested { reply, new_reports })
    }
}

/// Writes what a newly stored event means for the sessions, reports, incidents and devices
/// tables. Returns the incident opened, for a report.
fn derive_rows(
    tx: &Transaction<'_>,
    device: DeviceNumber,
    event: &Event,
    received_at: &str,
) -> Result<Option<i64>, StoreError> {
    match &event.body {
        EventBody::Hello { software_version } => {
            tx.execute(
                "UPDATE devices SET software_version = ?2 WHERE number = ?1",
                (device.get(), software_version),
            )?;
        }
        EventBody::Heartbeat { .. } => {}
        // Kept in the events table only, until their pages exist.
        EventBody::AupAccepted { .. }
        | EventBody::AppOpened { .. }
        | EventBody::FilterBlocked { .. }
        | EventBody::DeviceRefused { .. } => {}
        EventBody::ReportResolved { report, choice, staff } => {
            resolve_on_device(
                tx,
                device,
                &report.to_string(),
                *choice,
                staff.as_ref().map(|s| s.as_str()),
                event.at,
            )?;
        }
        // The events of one session can arrive in either order (different batches, or one
        // batch in any order), and `session_ended` carries the start time, so each of the two
        // writes a whole row if it comes first.
        EventBody::SessionStarted { session, pupil } => {
            tx.execute(
                "INSERT INTO sessions (session_id, device, pupil, started_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id) DO NOTHING",
                (session.to_string(), device.get(), pupil.as_str(), db_time(event.at)),
            )?;
        }
        EventBody::SessionEnded { session, pupil, started_at, reason } => {
            // The device check stops one device from closing another device's session.
            tx.execute(
                "INSERT INTO sessions (session_id, device, pupil, started_at, ended_at, end_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (session_id) DO UPDATE SET ended_at = excluded.ended_at,
                                                        end_reason = excluded.end_reason
                 WHERE sessions.device = excluded.device",
                (
                    session.to_string(),
                    device.get(),
                    pupil.as_str(),
                    db_time(*started_at),
                    db_time(event.at),
                    end_reason_name(*reason),
                ),
            )?;
        }
        EventBody::ReportFiled {
            session,
            pupil,
            app,
            url,
            page_title,
            blank_latency_us,
            recent_names,
            origin,
        } => {
            // SQLite integers are signed; an absurd latency is capped here (the raw event keeps
            // the exact value) rather than refusing the batch and holding the report back.
            let latency = blank_latency_us.map(|us| i64::try_from(us).unwrap_or(i64::MAX));
            tx.execute(
                "INSERT INTO reports (event_id, device, pupil, session, pressed_at, received_at,
                                      app, url, page_title, blank_latency_us, origin, recent_names)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                (
                    event.id.to_string(),
                    device.get(),
                    pupil.as_ref().map(|p| p.as_str()),
                    session.map(|s| s.to_string()),
                    db_time(event.at),
                    received_at,
                    app,
                    url,
                    page_title,
                    latency,
                    origin.as_str(),
                    serde_json::to_string(recent_names)?,
                ),
            )?;
            let incident = tx.query_row(
                "INSERT INTO incidents (report_id, created_at, updated_at) VALUES (?1, ?2, ?2)
                 RETURNING id",
                (event.id.to_string(), received_at),
                |r| r.get(0),
            )?;
            return Ok(Some(incident));
        }
    }
    Ok(None)
}

/// A member of staff unlocked the held device and chose what happens: the incident records it
/// as acknowledged and, as far as the workflow allows, as the matching action, under the name of
/// whoever's PIN it was (the device sends the pseudonymous id; the account's username is looked
/// up now, so the record keeps it even after the account goes). A resolution for
/// a report this server has not stored (or another device's) changes nothing but the raw event.
fn resolve_on_device(
    tx: &Transaction<'_>,
    device: DeviceNumber,
    report: &str,
    choice: ResolutionChoice,
    staff: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row: Option<(i64, String, Option<String>)> = tx
        .query_row(
            "SELECT i.id, i.status, i.action FROM incidents i JOIN reports r ON r.event_id = i.report_id
             WHERE i.report_id = ?1 AND r.device = ?2",
            (report, device.get()),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((incident, status, action)) = row else { return Ok(()) };
    let Some(mut current) = Status::from_columns(&status, action.as_deref()) else {
        return Err(StoreError::Corrupt(format!("incident {incident} status {status:?}")));
    };
    let who = match staff {
        None => None,
        Some(IT_STAFF_ID) => Some("IT's own device PIN".to_owned()),
        Some(id) => Some(
            tx.query_row("SELECT username FROM staff WHERE unlock_id = ?1", [id], |r| r.get(0))
                .optional()?
                .unwrap_or_else(|| format!("unknown staff id {id}")),
        ),
    };
    let staff =
        who.map_or_else(|| format!("device {device}"), |w| format!("{w} (on device {device})"));
    let action = match choice {
        ResolutionChoice::CloseApp => Action::AppClosed,
        ResolutionChoice::FalseAlarm => Action::FalseAlarm,
        ResolutionChoice::BlockSite => Action::SiteBlockRequested,
    };
    let at = db_time(at);
    for step in [Step::Acknowledge, Step::Act(action)] {
        let Ok(next) = next_status(current, step) else { continue };
        current = next;
        let (status, action) = next.to_columns();
        tx.execute(
            "UPDATE incidents SET status = ?2, action = ?3, updated_at = ?4 WHERE id = ?1",
            (incident, status, action, &at),
        )?;
        let kind = if step == Step::Acknowledge { "acknowledged" } else { "action" };
        tx.execute(
            "INSERT INTO incident_entries (incident, at, staff, kind, action, note)
             VALUES (?1, ?2, ?3, ?4, ?5, 'unlocked the device')",
            (incident, &at, &staff, kind, action),
        )?;
    }
    Ok(())
}

/// The wire name of an end reason (`signed_out`, …), as stored.
fn end_reason_name(reason: SessionEndReason) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => name,
        // Unit variants always serialise to strings; keep the Debug name rather than fail.
        _ => format!("{reason:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use slate_protocol::{PupilId, SessionId};

    fn report(n: u32, at_time: &str) -> Event {
        Event::new(
            device(n),
            at(at_time),
            EventBody::ReportFiled {
                session: None,
                pupil: Some(PupilId::new("p-1").unwrap()),
                app: Some("browser".into()),
                url: Some("https://example.org/".into()),
                page_title: Some("A page".into()),
                blank_latency_us: Some(u64::MAX),
                recent_names: vec![],
                origin: slate_protocol::ReportOrigin::Button,
            },
        )
    }

    fn count(store: &Store, table: &str) -> i64 {
        store.lock().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn the_same_batch_twice_is_stored_once() {
        let (_dir, store) = store_with_device(12);
        let events = vec![report(12, "2026-11-17T10:00:00Z"), report(12, "2026-11-17T10:01:00Z")];
        let now = at("2026-11-17T10:02:00Z");

        let first = store.ingest(device(12), &events, now).unwrap();
        assert_eq!(first, IngestReply { stored: 2, duplicates: 0 });
        let again = store.ingest(device(12), &events, now).unwrap();
        assert_eq!(again, IngestReply { stored: 0, duplicates: 2 });
        assert_eq!((count(&store, "events"), count(&store, "reports")), (2, 2));

        let one_id_twice = vec![events[0].clone(), events[0].clone()];
        let store2 = store_with_device(3).1;
        let mixed = store2.ingest(device(3), &one_id_twice, now).unwrap();
        assert_eq!(mixed, IngestReply { stored: 1, duplicates: 1 }, "a repeat inside one batch");
    }

    #[test]
    fn a_failing_batch_stores_nothing() {
        let (_dir, store) = store_with_device(12);
        // Device 40 is not enrolled: its events break a foreign key, and the whole batch goes.
        let events = vec![report(12, "2026-11-17T10:00:00Z"), report(40, "2026-11-17T10:01:00Z")];
        let err = store.ingest(device(40), &events, at("2026-11-17T10:02:00Z"));
        assert!(err.is_err());
        assert_eq!(count(&store, "events"), 0);
    }

    #[test]
    fn sessions_are_whole_whichever_event_comes_first() {
        let session = SessionId::new();
        let pupil = PupilId::new("p-7f3a9c").unwrap();
        let started = Event::new(
            device(12),
            at("2026-11-17T09:00:00Z"),
            EventBody::SessionStarted { session, pupil: pupil.clone() },
        );
        let ended = Event::new(
            device(12),
            at("2026-11-17T10:00:00Z"),
            EventBody::SessionEnded {
                session,
                pupil,
                started_at: at("2026-11-17T09:00:00Z"),
                reason: SessionEndReason::IdleTimeout,
            },
        );
        let orders = [vec![started.clone(), ended.clone()], vec![ended, started]];
        for (i, order) in orders.into_iter().enumerate() {
            let (_dir, store) = store_with_device(12);
            store.ingest(device(12), &order, at("2026-11-17T10:00:01Z")).unwrap();
            let sessions = store.device_sessions(device(12), 10).unwrap();
            assert_eq!(sessions.len(), 1, "order {i}");
            let s = &sessions[0];
            assert_eq!(s.started_at, at("2026-11-17T09:00:00Z"), "order {i}");
            assert_eq!(s.ended_at, Some(at("2026-11-17T10:00:00Z")), "order {i}");
            assert_eq!(s.end_reason.as_deref(), Some("idle_timeout"), "order {i}");
        }
    }

    #[test]
    fn hello_records_the_software_version_and_any_batch_the_last_contact() {
        let (_dir, store) = store_with_device(12);
        let hello = Event::new(
            device(12),
            at("2026-11-17T09:00:00Z"),
            EventBody::Hello { software_version: "0.2.0".into() },
        );
        store.ingest(device(12), &[hello], at("2026-11-17T09:00:05Z")).unwrap();
        let record = store.device(device(12)).unwrap().unwrap();
        assert_eq!(record.software_version, "0.2.0");
        assert_eq!(record.last_seen_at, Some(at("2026-11-17T09:00:05Z")));
    }
}
