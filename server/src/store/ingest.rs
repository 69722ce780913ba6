//! Storing a device's batch of events, exactly once each, and the rows derived from them.

use super::sql::{OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use crate::session_end;
use chrono::{DateTime, Utc};
use slate_protocol::{
    BootId, DeviceNumber, Event, EventBody, IngestReply, ResolutionChoice, SessionEndReason,
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
    /// Alerts the alert rules raised on this batch's new events (queued in the outbox).
    pub new_alerts: usize,
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
        let mut boots = BootTracker::load(&tx, device, received_at)?;
        let received_at = db_time(received_at);
        let mut reply = IngestReply::new(0, 0);
        let mut new_reports = Vec::new();
        let mut stored = Vec::new();
        for event in events {
            // ON CONFLICT (id), not INSERT OR IGNORE: only a repeated id is a duplicate; any
            // other constraint failure is an error that must not pass silently.
            let clock = event.clock;
            let inserted = tx.execute(
                "INSERT INTO events (id, device, kind, at, received_at, body,
                                     boot_id, boottime_ms, clock_synced)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO NOTHING",
                (
                    event.id.to_string(),
                    device.get(),
                    event.body.kind(),
                    db_time(event.at),
                    &received_at,
                    serde_json::to_string(&event.body)?,
                    clock.map(|c| c.boot_id.to_string()),
                    // SQLite integers are signed; 292 million years of uptime is not a concern.
                    clock.map(|c| i64::try_from(c.boottime_ms).unwrap_or(i64::MAX)),
                    clock.map(|c| i64::from(c.synchronised)),
                ),
            )?;
            if inserted == 0 {
                reply.duplicates += 1;
            } else {
                reply.stored += 1;
                stored.push(event);
                // Before the event's own rows: a restart ends the old boot's session before
                // the new boot's sign-in starts one.
                boots.observe(&tx, device, event)?;
                if let Some(incident) = derive_rows(&tx, device, event, &received_at)? {
                    let (pupil, from_block_page) = match &event.body {
                        EventBody::ReportFiled { pupil, origin, .. } => {
                            (pupil.clone(), !origin.is_button())
                        }
                        _ => (None, false),
                    };
                    let report = NewReport {
                        incident,
                        device,
                        pressed_at: event.at,
                        pupil,
                        from_block_page,
                    };
                    // In this transaction: stored with its alert, or not at all.
                    super::alert_outbox::queue_alert(&tx, &report, &received_at)?;
                    new_reports.push(report);
                }
            }
        }
        // In this transaction too: the events are stored with the alerts they raise.
        let new_alerts =
            super::alert_rules::evaluate_on_ingest(&tx, device, &stored, &received_at)?;
        tx.execute(
            "UPDATE devices SET last_seen_at = $2, boot_id = $3, last_event_at = $4,
                                clock_synced = $5
             WHERE number = $1",
            (
                device.get(),
                &received_at,
                boots.boot.map(|b| b.to_string()),
                boots.last_event_at.map(db_time),
                boots.clock_synced.map(i64::from),
            ),
        )?;
        tx.commit()?;
        Ok(Ingested { reply, new_reports, new_alerts })
    }
}

impl Store {
    /// Ends the open sessions of devices silent for longer than [`session_end::SILENT_AFTER`]
    /// by `now` (the server's clock), at the last thing each device said. Returns how many.
    pub fn end_silent_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let open: Vec<(String, String, Option<String>, Option<String>)> = {
            let mut statement = tx.prepare_cached(
                "SELECT s.session_id, s.started_at, d.last_seen_at, d.last_event_at
                 FROM sessions s JOIN devices d ON d.number = s.device
                 WHERE s.ended_at IS NULL",
            )?;
            let rows =
                statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut ended = 0;
        for (session, started_at, last_seen_at, last_event_at) in open {
            let last_seen_at = last_seen_at.as_deref().map(parse_db_time).transpose()?;
            if !session_end::silent(last_seen_at, now) {
                continue;
            }
            let last_heard = last_event_at.as_deref().map(parse_db_time).transpose()?;
            ended +=
                end_inferred(&tx, &session, &started_at, last_heard, session_end::DEVICE_SILENT)?;
        }
        tx.commit()?;
        Ok(ended)
    }
}

/// Ends an open session as the server does when the device cannot (`session_end`): at the last
/// thing heard from the device (never before the session started), with `reason`, marked
/// inferred. Returns 1, or 0 if it had ended meanwhile.
pub(super) fn end_inferred(
    tx: &Transaction<'_>,
    session: &str,
    started_at: &str,
    last_heard: Option<DateTime<Utc>>,
    reason: &str,
) -> Result<usize, StoreError> {
    let end = session_end::inferred_end(parse_db_time(started_at)?, last_heard);
    tx.execute(
        "UPDATE sessions SET ended_at = $2, end_reason = $3, end_inferred = 1
         WHERE session_id = $1 AND ended_at IS NULL",
        (session, db_time(end), reason),
    )
}

/// A device's boot, last word and clock state through one batch: read once, written once at
/// its end, and the sessions a restart left open ended on the way ([`session_end`]).
struct BootTracker {
    boot: Option<BootId>,
    /// The device's time of the last event stored (where a session a restart left open ends).
    last_event_at: Option<DateTime<Utc>>,
    clock_synced: Option<bool>,
    /// The device was silent before this batch, so sessions of a boot may have been ended for
    /// silence; otherwise there are none to look for (the check would cost a query per event).
    back_from_silence: bool,
    /// Boots whose silent-ended sessions were already opened again in this batch.
    reopened: Vec<BootId>,
}

/// `devices` columns: boot_id, last_event_at, clock_synced, last_seen_at.
type DeviceClockRow = (Option<String>, Option<String>, Option<i64>, Option<String>);

impl BootTracker {
    fn load(
        tx: &Transaction<'_>,
        device: DeviceNumber,
        received_at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let row: Option<DeviceClockRow> = tx
            .query_row(
                "SELECT boot_id, last_event_at, clock_synced, last_seen_at FROM devices
                 WHERE number = $1",
                [device.get()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (boot, last_event_at, clock_synced, last_seen_at) = row.unwrap_or_default();
        let last_seen_at = last_seen_at.as_deref().map(parse_db_time).transpose()?;
        Ok(Self {
            // A boot id this server stored was checked when it arrived; one it cannot read is
            // treated as unknown rather than refusing the device's batch.
            boot: boot.and_then(|b| BootId::parse(&b).ok()),
            last_event_at: last_event_at.as_deref().map(parse_db_time).transpose()?,
            clock_synced: clock_synced.map(|synced| synced != 0),
            back_from_silence: session_end::silent(last_seen_at, received_at),
            reopened: Vec::new(),
        })
    }

    /// Takes in a newly stored event, before its own rows: a restart ends the old boot's
    /// sessions before the new boot's sign-in starts one. A device back from silence in the
    /// same boot gets its silent-ended sessions back: it never stopped.
    fn observe(
        &mut self,
        tx: &Transaction<'_>,
        device: DeviceNumber,
        event: &Event,
    ) -> Result<(), StoreError> {
        let event_boot = event.clock.map(|c| c.boot_id);
        let is_hello = matches!(event.body, EventBody::Hello { .. });
        if session_end::restarted(self.boot, event_boot, is_hello) {
            let open: Vec<(String, String)> = {
                let mut statement = tx.prepare_cached(
                    "SELECT session_id, started_at FROM sessions
                     WHERE device = $1 AND ended_at IS NULL",
                )?;
                let rows = statement.query_map([device.get()], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (session, started_at) in &open {
                let reason = session_end::DEVICE_RESTARTED;
                end_inferred(tx, session, started_at, self.last_event_at, reason)?;
            }
            if !open.is_empty() {
                tracing::info!(%device, sessions = open.len(), "the device restarted: its open sessions ended at its last word");
            }
        } else if let Some(boot) =
            event_boot.filter(|b| self.back_from_silence && !self.reopened.contains(b))
        {
            tx.execute(
                "UPDATE sessions SET ended_at = NULL, end_reason = NULL, end_inferred = 0
                 WHERE device = $1 AND boot_id = $2 AND end_inferred = 1 AND end_reason = $3",
                (device.get(), boot.to_string(), session_end::DEVICE_SILENT),
            )?;
            self.reopened.push(boot);
        }
        self.boot = event_boot.or(self.boot);
        self.last_event_at = Some(event.at);
        self.clock_synced = event.clock_synchronised().or(self.clock_synced);
        Ok(())
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
                "UPDATE devices SET software_version = $2 WHERE number = $1",
                (device.get(), software_version),
            )?;
        }
        EventBody::Heartbeat { .. } => {}
        // Kept in the events table only, until their pages exist.
        EventBody::AupAccepted { .. }
        | EventBody::AppOpened { .. }
        | EventBody::FilterBlocked { .. }
        | EventBody::DeviceRefused { .. } => {}
        // A press during the button test: the fleet page reads it from the events table. It
        // files no report and opens no incident.
        EventBody::ButtonTested { .. } => {}
        // A refused policy or a PIN lockout: in the events table, for the alert rules and the
        // device's page.
        EventBody::SecurityBreach { .. } => {}
        // Timed ssh's answer: the device's page reads it from the events table.
        EventBody::SshAccess { .. } => {}
        // A filter check's answer: kept with the check (the event itself is a device event,
        // purged long before the check).
        EventBody::FilterChecked { command, results, error } => {
            super::filter_checks::keep_answer(
                tx,
                device,
                *command,
                results,
                error.as_deref(),
                received_at,
            )?;
        }
        EventBody::ReportResolved { report, choice, staff } => {
            resolve_on_device(
                tx,
                device,
                event,
                &report.to_string(),
                *choice,
                staff.as_ref().map(|s| s.as_str()),
                received_at,
            )?;
        }
        // The events of one session can arrive in either order (different batches, or one
        // batch in any order), and `session_ended` carries the start time, so each of the two
        // writes a whole row if it comes first.
        EventBody::SessionStarted { session, pupil } => {
            tx.execute(
                "INSERT INTO sessions (session_id, device, pupil, started_at, boot_id)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (session_id) DO NOTHING",
                (
                    session.to_string(),
                    device.get(),
                    pupil.as_str(),
                    db_time(event.at),
                    event.clock.map(|c| c.boot_id.to_string()),
                ),
            )?;
        }
        EventBody::SessionEnded { session, pupil, started_at, reason } => {
            // The device check stops one device from closing another device's session. The
            // device's own record of the end replaces one the server inferred.
            tx.execute(
                "INSERT INTO sessions (session_id, device, pupil, started_at, ended_at, end_reason,
                                       boot_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (session_id) DO UPDATE SET ended_at = excluded.ended_at,
                                                        end_reason = excluded.end_reason,
                                                        end_inferred = 0
                 WHERE sessions.device = excluded.device",
                (
                    session.to_string(),
                    device.get(),
                    pupil.as_str(),
                    db_time(*started_at),
                    db_time(event.at),
                    end_reason_name(*reason),
                    event.clock.map(|c| c.boot_id.to_string()),
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
                                      app, url, page_title, blank_latency_us, origin, recent_names,
                                      clock_synced)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
                    event.clock_synchronised().map(i64::from),
                ),
            )?;
            let incident = tx.query_row(
                "INSERT INTO incidents (report_id, created_at, updated_at) VALUES ($1, $2, $2)
                 RETURNING id",
                (event.id.to_string(), received_at),
                |r| r.get(0),
            )?;
            return Ok(Some(incident));
        }
    }
    Ok(None)
}

/// A member of staff unlocked the held device and chose what happens: a note on the incident
/// ("t-04 unlocked device 12: false alarm"), never a workflow step (only staff move an
/// incident, on the server). The device names whose PIN it was by the pseudonymous id, which
/// the device, not a signed-in person, vouches for: the entry is the device's, and the
/// account's username is looked up now, so the note keeps it even after the account goes. A
/// resolution for a report this server has not stored (or another device's) changes nothing
/// but the raw event. "Block the site" also asks for the report's site to be blocked: a
/// pending site block request (`block_requests`), or, when the report names no site a list
/// can hold, a log line saying why (never the address).
fn resolve_on_device(
    tx: &Transaction<'_>,
    device: DeviceNumber,
    event: &Event,
    report: &str,
    choice: ResolutionChoice,
    staff: Option<&str>,
    received_at: &str,
) -> Result<(), StoreError> {
    let found: Option<(i64, Option<String>)> = tx
        .query_row(
            "SELECT i.id, r.url FROM incidents i JOIN reports r ON r.event_id = i.report_id
             WHERE i.report_id = $1 AND r.device = $2",
            (report, device.get()),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((incident, url)) = found else { return Ok(()) };
    let username: Option<String> = match staff {
        None => None,
        Some(id) => Some(super::staff::unlock_staff_name(&**tx, id)?),
    };
    let who = username.clone().unwrap_or_else(|| "someone".to_owned());
    let choice_said = match choice {
        ResolutionChoice::CloseApp => "close the app",
        ResolutionChoice::FalseAlarm => "false alarm",
        ResolutionChoice::BlockSite => "block the site",
    };
    let mut note = format!("{who} unlocked device {device}: {choice_said}");
    if choice == ResolutionChoice::BlockSite {
        match crate::block_requests::site_of(url.as_deref()) {
            Ok(site) => {
                let ask = super::block_requests::NewAsk {
                    site: &site,
                    event_id: &event.id.to_string(),
                    incident,
                    device,
                    unlocked_by: username.as_deref(),
                    at: event.at,
                    received_at,
                };
                let request = super::block_requests::record_ask(tx, &ask)?;
                tracing::info!(%device, incident, request, "site block request recorded from an unlock");
                note.push_str(&format!(
                    " (site block request {request}, for the DSL or IT to decide)"
                ));
            }
            Err(refusal) => {
                tracing::warn!(%device, incident, reason = %refusal, "an unlock asked to block the site, but no block request was recorded");
                note.push_str(&format!(" (no block request: {refusal})"));
            }
        }
    }
    let at = db_time(event.at);
    tx.execute("UPDATE incidents SET updated_at = $2 WHERE id = $1", (incident, &at))?;
    tx.execute(
        "INSERT INTO incident_entries (incident, at, staff, kind, note)
         VALUES ($1, $2, $3, 'device', $4)",
        (incident, &at, format!("device {device}"), &note),
    )?;
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
    use slate_protocol::{EventId, PupilId, SessionId};

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

    fn boot(n: u8) -> slate_protocol::ClockEvidence {
        slate_protocol::ClockEvidence {
            boot_id: BootId::parse(&format!("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b{n:02x}")).unwrap(),
            boottime_ms: 1000,
            synchronised: true,
        }
    }

    fn on(n: u8, when: &str, body: EventBody) -> Event {
        Event::new(device(12), at(when), body).with_clock(boot(n))
    }

    fn heartbeat() -> EventBody {
        EventBody::Heartbeat {
            uptime_s: 1,
            spool_pending: 0,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        }
    }

    fn hello() -> EventBody {
        EventBody::Hello { software_version: "0.1.0".into() }
    }

    fn signed_in(session: SessionId) -> EventBody {
        EventBody::SessionStarted { session, pupil: PupilId::new("p-1").unwrap() }
    }

    /// (ended_at, end_reason, end_inferred) of a session.
    fn ending(store: &Store, session: SessionId) -> (Option<String>, Option<String>, i64) {
        store
            .lock()
            .query_row(
                "SELECT ended_at, end_reason, end_inferred FROM sessions WHERE session_id = $1",
                [session.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    fn who(store: &Store, when: &str) -> Option<String> {
        store.who_had(device(12), at(when)).unwrap().map(|w| w.pupil.to_string())
    }

    #[test]
    fn a_new_boot_ends_the_open_session_at_the_last_word_of_the_old_one() {
        let (_dir, store) = store_with_device(12);
        let session = SessionId::new();
        let old_boot = [
            on(1, "2026-11-17T10:00:00Z", hello()),
            on(1, "2026-11-17T10:01:00Z", signed_in(session)),
            on(1, "2026-11-17T10:41:00Z", heartbeat()),
        ];
        store.ingest(device(12), &old_boot, at("2026-11-17T10:41:00Z")).unwrap();
        assert_eq!(ending(&store, session), (None, None, 0));
        assert_eq!(who(&store, "2026-11-17T12:00:00Z").as_deref(), Some("p-1"), "open until told");
        // The power comes back at 13:00 with a new boot.
        store
            .ingest(
                device(12),
                &[on(2, "2026-11-17T13:00:00Z", hello())],
                at("2026-11-17T13:00:01Z"),
            )
            .unwrap();
        assert_eq!(
            ending(&store, session),
            (Some("2026-11-17T10:41:00.000000Z".into()), Some("device_restarted".into()), 1)
        );
        assert_eq!(who(&store, "2026-11-17T10:40:59Z").as_deref(), Some("p-1"));
        assert_eq!(who(&store, "2026-11-17T10:41:00Z"), None, "not after the last word");
        assert_eq!(who(&store, "2026-11-17T12:00:00Z"), None);
        let (boot_id, synced): (String, i64) = store
            .lock()
            .query_row("SELECT boot_id, clock_synced FROM devices WHERE number = 12", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((boot_id, synced), (boot(2).boot_id.to_string(), 1));
    }

    #[test]
    fn what_ends_a_session_and_what_does_not() {
        // (name, the events after a sign-in at 10:01 on boot 1, who has it at 11:00, the ending)
        type Case = (
            &'static str,
            Vec<(u8, &'static str, EventBody)>,
            Option<&'static str>,
            (Option<&'static str>, Option<&'static str>, i64),
        );
        let cases: Vec<Case> = vec![
            (
                "a heartbeat of the same boot",
                vec![(1, "10:30", heartbeat())],
                Some("p-1"),
                (None, None, 0),
            ),
            (
                "slated restarted (hello, same boot)",
                vec![(1, "10:30", heartbeat()), (1, "10:31", hello())],
                None,
                (Some("10:30"), Some("device_restarted"), 1),
            ),
            (
                "a new boot without its hello",
                vec![(1, "10:30", heartbeat()), (2, "10:35", heartbeat())],
                None,
                (Some("10:30"), Some("device_restarted"), 1),
            ),
            (
                "nothing heard after the sign-in",
                vec![(2, "10:35", hello())],
                None,
                (Some("10:01"), Some("device_restarted"), 1),
            ),
        ];
        for (name, after, holder, (end, reason, inferred)) in cases {
            let (_dir, store) = store_with_device(12);
            let session = SessionId::new();
            let mut events = vec![on(1, "2026-11-17T10:01:00Z", signed_in(session))];
            for (b, t, body) in after {
                events.push(on(b, &format!("2026-11-17T{t}:00Z"), body));
            }
            store.ingest(device(12), &events, at("2026-11-17T10:40:00Z")).unwrap();
            assert_eq!(who(&store, "2026-11-17T11:00:00Z").as_deref(), holder, "{name}");
            let expected = (
                end.map(|t| format!("2026-11-17T{t}:00.000000Z")),
                reason.map(String::from),
                inferred,
            );
            assert_eq!(ending(&store, session), expected, "{name}");
        }
    }

    #[test]
    fn a_silent_device_ends_its_session_and_gets_it_back_if_it_was_only_offline() {
        let (_dir, store) = store_with_device(12);
        let session = SessionId::new();
        let events = [
            on(1, "2026-11-17T10:01:00Z", signed_in(session)),
            on(1, "2026-11-17T10:05:00Z", heartbeat()),
        ];
        store.ingest(device(12), &events, at("2026-11-17T10:05:00Z")).unwrap();
        assert_eq!(
            store.end_silent_sessions(at("2026-11-17T10:08:00Z")).unwrap(),
            0,
            "3 minutes is not silence"
        );
        assert_eq!(store.end_silent_sessions(at("2026-11-17T10:08:01Z")).unwrap(), 1);
        assert_eq!(
            ending(&store, session),
            (Some("2026-11-17T10:05:00.000000Z".into()), Some("device_silent".into()), 1)
        );
        assert_eq!(who(&store, "2026-11-17T10:30:00Z"), None);
        // The Wi-Fi comes back: same boot, the pupil was there all along.
        store
            .ingest(
                device(12),
                &[on(1, "2026-11-17T10:30:00Z", heartbeat())],
                at("2026-11-17T10:40:00Z"),
            )
            .unwrap();
        assert_eq!(ending(&store, session), (None, None, 0));
        assert_eq!(who(&store, "2026-11-17T10:30:00Z").as_deref(), Some("p-1"));
        // Its own record of the end replaces anything inferred.
        store.end_silent_sessions(at("2026-11-17T11:00:00Z")).unwrap();
        let ended = on(
            1,
            "2026-11-17T10:50:00Z",
            EventBody::SessionEnded {
                session,
                pupil: PupilId::new("p-1").unwrap(),
                started_at: at("2026-11-17T10:01:00Z"),
                reason: SessionEndReason::SignedOut,
            },
        );
        store.ingest(device(12), &[ended], at("2026-11-17T11:01:00Z")).unwrap();
        assert_eq!(
            ending(&store, session),
            (Some("2026-11-17T10:50:00.000000Z".into()), Some("signed_out".into()), 0)
        );
        // Another boot's silence-ended session is not brought back by this boot.
        let other = SessionId::new();
        store
            .ingest(
                device(12),
                &[on(3, "2026-11-17T11:02:00Z", signed_in(other))],
                at("2026-11-17T11:02:00Z"),
            )
            .unwrap();
        store.end_silent_sessions(at("2026-11-17T12:00:00Z")).unwrap();
        store
            .ingest(
                device(12),
                &[on(3, "2026-11-17T12:01:00Z", heartbeat())],
                at("2026-11-17T12:01:00Z"),
            )
            .unwrap();
        assert_eq!(ending(&store, other), (None, None, 0), "same boot: back");
        store.end_silent_sessions(at("2026-11-17T13:00:00Z")).unwrap();
        store
            .ingest(
                device(12),
                &[on(4, "2026-11-17T13:01:00Z", heartbeat())],
                at("2026-11-17T13:01:00Z"),
            )
            .unwrap();
        assert_eq!(
            ending(&store, other).1.as_deref(),
            Some("device_silent"),
            "another boot: stays ended"
        );
    }

    #[test]
    fn the_clock_evidence_is_stored_and_old_events_store_none() {
        let (_dir, store) = store_with_device(12);
        let mut unsynced = report(12, "2026-11-17T10:00:00Z").with_clock(boot(1));
        unsynced.clock.as_mut().unwrap().synchronised = false;
        let old = report(12, "2026-11-17T10:01:00Z");
        store
            .ingest(device(12), &[unsynced.clone(), old.clone()], at("2026-11-17T10:02:00Z"))
            .unwrap();
        let row = |id: EventId| -> (Option<String>, Option<i64>, Option<i64>, Option<i64>) {
            store
                .lock()
                .query_row(
                    "SELECT e.boot_id, e.boottime_ms, e.clock_synced, r.clock_synced
                     FROM events e JOIN reports r ON r.event_id = e.id WHERE e.id = $1",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap()
        };
        assert_eq!(
            row(unsynced.id),
            (Some(boot(1).boot_id.to_string()), Some(1000), Some(0), Some(0))
        );
        assert_eq!(row(old.id), (None, None, None, None));
        let reports = store.reports(10).unwrap();
        let flag =
            |id: EventId| reports.iter().find(|r| r.id == id.to_string()).unwrap().clock_warning();
        assert_eq!(flag(unsynced.id), Some(super::super::CLOCK_NOT_SYNCHRONISED));
        assert_eq!(flag(old.id), None);
    }

    #[test]
    fn the_same_batch_twice_is_stored_once() {
        let (_dir, store) = store_with_device(12);
        let events = vec![report(12, "2026-11-17T10:00:00Z"), report(12, "2026-11-17T10:01:00Z")];
        let now = at("2026-11-17T10:02:00Z");

        let first = store.ingest(device(12), &events, now).unwrap();
        assert_eq!(first, IngestReply::new(2, 0));
        let again = store.ingest(device(12), &events, now).unwrap();
        assert_eq!(again, IngestReply::new(0, 2));
        assert_eq!((count(&store, "events"), count(&store, "reports")), (2, 2));

        let one_id_twice = vec![events[0].clone(), events[0].clone()];
        let store2 = store_with_device(3).1;
        let mixed = store2.ingest(device(3), &one_id_twice, now).unwrap();
        assert_eq!(mixed, IngestReply::new(1, 1), "a repeat inside one batch");
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
