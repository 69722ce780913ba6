//! The manual register of numbered devices that cannot run Slate (iPads), the records that
//! answer "who had device N at T" (decided by [`crate::who_had`]), and the fleet's rows.

use super::sql::OptionalExtension;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::who_had::{self, Answer, Record, Source};
use chrono::{DateTime, Utc};
use slate_protocol::{DeviceNumber, PupilId};

/// One lesson's allocation, as a teacher recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterEntry {
    pub device: u16,
    pub pupil: String,
    pub pupil_name: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub recorded_by: String,
}

/// One enrolled device on the fleet page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRow {
    pub number: u16,
    pub software_version: String,
    pub enrolled_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// The report button's fault in the last heartbeat (`missing`, `stuck`), `None` if healthy.
    pub button_fault: Option<String>,
    /// Why a press would not darken the screen in the last heartbeat (`cannot_darken`,
    /// `last_press_not_dark`), `None` if it would.
    pub display_fault: Option<String>,
    /// What is wrong with the device's card in the last heartbeat (`full`, `unwritable`),
    /// `None` if nothing.
    pub storage_fault: Option<String>,
    /// Whether the device's clock was synchronised at the last thing it sent (`None`: it did
    /// not say).
    pub clock_synchronised: Option<bool>,
    /// In use, a replacement asked for, or revoked.
    pub credential: super::CredentialState,
}

/// The most register lines read for one moment: more than any real lesson has, enough to show
/// every name in a conflict.
const REGISTER_LINES_AT_ONCE: u32 = 20;

fn time_opt(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.as_deref().map(parse_db_time).transpose()
}

impl Store {
    /// Records that `pupil` had `device` from `from` to `to`.
    pub fn add_register_entry(
        &self,
        device: DeviceNumber,
        pupil: &PupilId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        recorded_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO device_register (device, pupil, from_at, to_at, recorded_by, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            (device.get(), pupil.as_str(), db_time(from), db_time(to), recorded_by, db_time(now)),
        )?;
        Ok(())
    }

    /// Whether the roster knows this pupil id.
    pub fn pupil_known(&self, pupil: &PupilId) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .lock()
            .query_row("SELECT 1 FROM pupils WHERE id = $1", [pupil.as_str()], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// The newest `limit` register entries for a device, latest lesson first.
    pub fn register_entries(
        &self,
        device: DeviceNumber,
        limit: u32,
    ) -> Result<Vec<RegisterEntry>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT g.device, g.pupil, p.display_name, g.from_at, g.to_at, g.recorded_by
             FROM device_register g LEFT JOIN pupils p ON p.id = g.pupil
             WHERE g.device = $1 ORDER BY g.from_at DESC, g.id DESC LIMIT $2",
        )?;
        let rows = statement.query_map((device.get(), limit), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get(5)?,
            ))
        })?;
        rows.map(|row| {
            let (device, pupil, pupil_name, from, to, recorded_by) = row?;
            Ok(RegisterEntry {
                device,
                pupil,
                pupil_name,
                from: parse_db_time(&from)?,
                to: parse_db_time(&to)?,
                recorded_by,
            })
        })
        .collect()
    }

    /// Who had `device` at `at`: the device's own session covering it (the newest, as a device
    /// has one at a time) and every register line covering it (a lesson from `from` up to, not
    /// including, `to`), decided by [`who_had::decide`]: a conflict when they disagree.
    pub fn who_had_any(
        &self,
        device: DeviceNumber,
        at: DateTime<Utc>,
    ) -> Result<Answer, StoreError> {
        let when = db_time(at);
        let connection = self.lock();
        let session = connection
            .query_row(
                "SELECT s.pupil, p.display_name, s.session_id, s.started_at, s.ended_at,
                        s.end_reason, s.end_inferred
                 FROM sessions s LEFT JOIN pupils p ON p.id = s.pupil
                 WHERE s.device = $1 AND s.started_at <= $2 AND (s.ended_at IS NULL OR s.ended_at > $2)
                 ORDER BY s.started_at DESC LIMIT 1",
                (device.get(), &when),
                |r| {
                    Ok((
                        (r.get(0)?, r.get(1)?, r.get::<_, String>(2)?),
                        (r.get::<_, String>(3)?, r.get(4)?),
                        (r.get(5)?, r.get::<_, i64>(6)?),
                    ))
                },
            )
            .optional()?;
        let session = session
            .map(|((pupil, pupil_name, session), (from, to), (end_reason, inferred))| {
                Ok::<_, StoreError>(Record {
                    pupil,
                    pupil_name,
                    source: Source::Session,
                    session: Some(session),
                    from: parse_db_time(&from)?,
                    to: time_opt(to)?,
                    recorded_by: None,
                    end_reason,
                    end_inferred: inferred != 0,
                })
            })
            .transpose()?;
        let mut statement = connection.prepare_cached(
            "SELECT g.pupil, p.display_name, g.from_at, g.to_at, g.recorded_by
             FROM device_register g LEFT JOIN pupils p ON p.id = g.pupil
             WHERE g.device = $1 AND g.from_at <= $2 AND g.to_at > $2
             ORDER BY g.from_at DESC, g.id DESC LIMIT $3",
        )?;
        let rows = statement.query_map((device.get(), &when, REGISTER_LINES_AT_ONCE), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?))
        })?;
        let register = rows
            .map(|row| {
                let (pupil, pupil_name, from, to, recorded_by) = row?;
                Ok(Record {
                    pupil,
                    pupil_name,
                    source: Source::Register,
                    session: None,
                    from: parse_db_time(&from)?,
                    to: Some(parse_db_time(&to)?),
                    recorded_by: Some(recorded_by),
                    end_reason: None,
                    end_inferred: false,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(who_had::decide(session, register))
    }

    /// Every enrolled device, by number.
    pub fn fleet(&self) -> Result<Vec<FleetRow>, StoreError> {
        let connection = self.read();
        let button_fault = connection.backend().json_text("h.body", "button_fault");
        let display_fault = connection.backend().json_text("h.body", "display_fault");
        let storage_fault = connection.backend().json_text("h.body", "storage_fault");
        let mut statement = connection.prepare_cached(&format!(
            "SELECT d.number, d.software_version, d.enrolled_at, d.last_seen_at,
                    h.at, {button_fault}, {display_fault}, d.clock_synced, {storage_fault},
                    d.revoked_at, d.revoked_by, d.rotation_requested_at
             FROM devices d LEFT JOIN events h ON h.id = (
                 SELECT e.id FROM events e WHERE e.device = d.number AND e.kind = 'heartbeat'
                 ORDER BY e.at DESC LIMIT 1)
             ORDER BY d.number"
        ))?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<String>>(8)?,
                (r.get(9)?, r.get(10)?, r.get(11)?),
            ))
        })?;
        rows.map(|row| {
            let (
                number,
                software_version,
                enrolled_at,
                last_seen_at,
                last_heartbeat_at,
                button_fault,
                display_fault,
                clock_synced,
                storage_fault,
                (revoked_at, revoked_by, rotation_requested_at),
            ) = row?;
            Ok(FleetRow {
                number,
                software_version,
                enrolled_at: parse_db_time(&enrolled_at)?,
                last_seen_at: time_opt(last_seen_at)?,
                last_heartbeat_at: time_opt(last_heartbeat_at)?,
                button_fault,
                display_fault,
                storage_fault,
                clock_synchronised: clock_synced.map(|synced| synced != 0),
                credential: super::CredentialState::from_columns(
                    revoked_at,
                    revoked_by,
                    rotation_requested_at,
                )?,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use slate_protocol::{Event, EventBody, SessionId};

    #[test]
    fn who_had_uses_sessions_then_the_register() {
        let (_dir, store) = store_with_device(12);
        let amira = PupilId::new("p-amira").unwrap();
        let ben = PupilId::new("p-ben").unwrap();
        let session = SessionId::new();
        let started = Event::new(
            device(12),
            at("2026-11-17T09:00:00Z"),
            EventBody::SessionStarted { session, pupil: amira.clone() },
        );
        store.ingest(device(12), &[started], at("2026-11-17T09:00:01Z")).unwrap();
        let now = at("2026-11-17T12:00:00Z");
        // iPad 7 cannot run Slate: a teacher records the lesson.
        store
            .add_register_entry(
                device(7),
                &ben,
                at("2026-11-17T10:00:00Z"),
                at("2026-11-17T11:00:00Z"),
                "t.jones",
                now,
            )
            .unwrap();

        let who = |n, t| {
            store.who_had_any(device(n), at(t)).unwrap().into_one().map(|w| (w.pupil, w.source))
        };
        assert_eq!(who(12, "2026-11-17T09:30:00Z"), Some(("p-amira".into(), Source::Session)));
        assert_eq!(who(7, "2026-11-17T10:00:00Z"), Some(("p-ben".into(), Source::Register)));
        assert_eq!(who(7, "2026-11-17T10:59:59Z"), Some(("p-ben".into(), Source::Register)));
        assert_eq!(who(7, "2026-11-17T11:00:00Z"), None, "the lesson's end belongs to the next");
        assert_eq!(who(7, "2026-11-17T09:59:59Z"), None);
        let entries = store.register_entries(device(7), 10).unwrap();
        assert_eq!((entries.len(), entries[0].recorded_by.as_str()), (1, "t.jones"));
        assert!(!store.pupil_known(&ben).unwrap());

        // A second teacher records another pupil on iPad 7 for part of the same lesson.
        let cara = PupilId::new("p-cara").unwrap();
        let (half_past, end) = (at("2026-11-17T10:30:00Z"), at("2026-11-17T11:00:00Z"));
        store.add_register_entry(device(7), &cara, half_past, end, "t.smith", now).unwrap();
        assert_eq!(who(7, "2026-11-17T10:15:00Z"), Some(("p-ben".into(), Source::Register)));
        let Answer::Conflict(records) = store.who_had_any(device(7), half_past).unwrap() else {
            panic!("two pupils on one iPad at once must be a conflict");
        };
        let named: Vec<_> =
            records.iter().map(|r| (r.pupil.as_str(), r.recorded_by.as_deref())).collect();
        assert_eq!(named, [("p-cara", Some("t.smith")), ("p-ben", Some("t.jones"))]);
    }

    #[test]
    fn the_fleet_lists_devices_with_their_last_heartbeat() {
        let (_dir, store) = store_with_device(12);
        let heartbeat = Event::new(
            device(12),
            at("2026-11-17T09:00:00Z"),
            EventBody::Heartbeat {
                uptime_s: 5,
                spool_pending: 0,
                button_fault: None,
                display_fault: Some(slate_protocol::DisplayFault::CannotDarken),
                storage_fault: Some(slate_protocol::StorageFault::Full),
            },
        );
        let older = Event::new(
            device(12),
            at("2026-11-17T08:59:00Z"),
            EventBody::Heartbeat {
                uptime_s: 5,
                spool_pending: 0,
                button_fault: Some(slate_protocol::ButtonFault::Stuck),
                display_fault: None,
                storage_fault: None,
            },
        );
        store.ingest(device(12), &[heartbeat, older], at("2026-11-17T09:00:02Z")).unwrap();
        let fleet = store.fleet().unwrap();
        assert_eq!(fleet.len(), 1);
        assert_eq!(fleet[0].button_fault, None, "the newest heartbeat counts");
        assert_eq!(fleet[0].display_fault.as_deref(), Some("cannot_darken"));
        assert_eq!(fleet[0].storage_fault.as_deref(), Some("full"));
        assert_eq!(fleet[0].last_heartbeat_at, Some(at("2026-11-17T09:00:00Z")));
        assert_eq!(fleet[0].last_seen_at, Some(at("2026-11-17T09:00:02Z")));
    }
}
