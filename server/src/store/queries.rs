//! Read-only questions staff ask of the record: reports, a device's sessions, who had a device.

use super::sql::{OptionalExtension, Row};
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::{DeviceNumber, PupilId, SessionId};

/// One report as staff see it, with the roster's name for the pupil when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    pub id: String,
    /// The device pressed on; for an incident recorded by hand, the device it names, if any.
    pub device: Option<u16>,
    pub pupil: Option<String>,
    pub pupil_name: Option<String>,
    pub session: Option<String>,
    pub pressed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub app: Option<String>,
    pub url: Option<String>,
    pub page_title: Option<String>,
    pub blank_latency_us: Option<u64>,
    /// Filed by "tell my teacher" on a blocked page: low priority, the device was not held.
    pub from_block_page: bool,
    /// The names the device looked up just before the press, newest first.
    pub recent_names: Vec<String>,
    /// Whether the device's clock was synchronised at the press: `Some(false)` means the press
    /// time may be wrong; `None`, the device did not say (older software).
    pub clock_synchronised: Option<bool>,
    /// The account that recorded the incident by hand; `None` for a device's report.
    pub recorded_by: Option<String>,
}

/// What staff read beside a time from a device whose clock was not synchronised.
pub const CLOCK_NOT_SYNCHRONISED: &str = "device clock not synchronised: time may be wrong";

impl ReportRecord {
    /// [`CLOCK_NOT_SYNCHRONISED`] when the device said its clock was not synchronised.
    pub fn clock_warning(&self) -> Option<&'static str> {
        (self.clock_synchronised == Some(false)).then_some(CLOCK_NOT_SYNCHRONISED)
    }
}

impl ReportRecord {
    /// How it was reported: the button (the device held), "tell my teacher" on a blocked page
    /// (low priority), or recorded by hand by a member of staff.
    pub fn how_reported(&self) -> String {
        if let Some(account) = &self.recorded_by {
            return format!("recorded by {account}");
        }
        if self.from_block_page {
            "with \"tell my teacher\" on a blocked page (low priority; the device was not held)"
                .into()
        } else {
            "with the report button".into()
        }
    }

    /// The device's number in words, or "none" for an incident recorded without one.
    pub fn device_label(&self) -> String {
        self.device.map(|d| d.to_string()).unwrap_or_else(|| "none".into())
    }

    /// Who reported, for the exports: "Amira K. (p-7f3a9c)", the id alone when the roster has no
    /// name for it, or "nobody signed in".
    pub fn pupil_label(&self) -> String {
        match (&self.pupil_name, &self.pupil) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (None, Some(id)) => id.clone(),
            _ => "nobody signed in".into(),
        }
    }
}

/// One pupil's session on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub pupil: String,
    pub pupil_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    /// The server ended it (the device restarted or went silent): `ended_at` is the last thing
    /// heard from the device, so the pupil had it until at least then.
    pub end_inferred: bool,
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub number: u16,
    pub enrolled_at: DateTime<Utc>,
    pub software_version: String,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The answer to "who had device N at time T?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoHad {
    pub pupil: PupilId,
    pub session: SessionId,
}

pub(super) const REPORT_COLUMNS: &str =
    "r.event_id, r.device, r.pupil, p.display_name, r.session, r.pressed_at,
     r.received_at, r.app, r.url, r.page_title, r.blank_latency_us, r.origin, r.recent_names,
     r.clock_synced, r.recorded_by
     FROM reports r LEFT JOIN pupils p ON p.id = r.pupil";

impl Store {
    /// The newest `limit` reports from every device, newest press first.
    pub fn reports(&self, limit: u32) -> Result<Vec<ReportRecord>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} ORDER BY r.pressed_at DESC, r.event_id DESC LIMIT $1"
        ))?;
        let rows = statement.query_map([limit], report_row)?;
        reports_from(rows)
    }

    /// The newest `limit` reports from one device.
    pub fn device_reports(
        &self,
        device: DeviceNumber,
        limit: u32,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} WHERE r.device = $1
             ORDER BY r.pressed_at DESC, r.event_id DESC LIMIT $2"
        ))?;
        let rows = statement.query_map((device.get(), limit), report_row)?;
        reports_from(rows)
    }

    /// The newest `limit` sessions on one device, latest start first.
    pub fn device_sessions(
        &self,
        device: DeviceNumber,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT s.session_id, s.pupil, p.display_name, s.started_at, s.ended_at, s.end_reason,
                    s.end_inferred
             FROM sessions s LEFT JOIN pupils p ON p.id = s.pupil
             WHERE s.device = $1 ORDER BY s.started_at DESC, s.session_id DESC LIMIT $2",
        )?;
        let rows = statement.query_map((device.get(), limit), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (session_id, pupil, pupil_name, started_at, ended_at, end_reason, inferred) = row?;
            Ok(SessionRecord {
                session_id,
                pupil,
                pupil_name,
                started_at: parse_db_time(&started_at)?,
                ended_at: ended_at.as_deref().map(parse_db_time).transpose()?,
                end_reason,
                end_inferred: inferred != 0,
            })
        })
        .collect()
    }

    /// An enrolled device, or `None` if that number never enrolled.
    pub fn device(&self, device: DeviceNumber) -> Result<Option<DeviceRecord>, StoreError> {
        let row: Option<(u16, String, String, Option<String>)> = self
            .lock()
            .query_row(
                "SELECT number, enrolled_at, software_version, last_seen_at FROM devices WHERE number = $1",
                [device.get()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(number, enrolled_at, software_version, last_seen_at)| {
            Ok(DeviceRecord {
                number,
                enrolled_at: parse_db_time(&enrolled_at)?,
                software_version,
                last_seen_at: last_seen_at.as_deref().map(parse_db_time).transpose()?,
            })
        })
        .transpose()
    }

    /// Who was signed in on `device` at `at`: the session that had started by then and had not
    /// yet ended (a session ending at exactly `at` no longer counts).
    pub fn who_had(
        &self,
        device: DeviceNumber,
        at: DateTime<Utc>,
    ) -> Result<Option<WhoHad>, StoreError> {
        let at = db_time(at);
        let row: Option<(String, String)> = self
            .lock()
            .query_row(
                "SELECT pupil, session_id FROM sessions
                 WHERE device = $1 AND started_at <= $2 AND (ended_at IS NULL OR ended_at > $2)
                 ORDER BY started_at DESC LIMIT 1",
                (device.get(), &at),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(pupil, session)| {
            Ok(WhoHad {
                pupil: PupilId::new(pupil).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                session: SessionId(
                    session.parse().map_err(|e| StoreError::Corrupt(format!("session id: {e}")))?,
                ),
            })
        })
        .transpose()
    }
}

pub(super) type RawReport = (
    String,
    Option<u16>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    String,
    Option<i64>,
    Option<String>,
);

fn report_row(r: &Row) -> Result<RawReport, StoreError> {
    report_row_at(r, 0)
}

/// A report's columns starting at `o` in a (possibly wider, joined) row.
pub(super) fn report_row_at(r: &Row, o: usize) -> Result<RawReport, StoreError> {
    Ok((
        r.get(o)?,
        r.get(o + 1)?,
        r.get(o + 2)?,
        r.get(o + 3)?,
        r.get(o + 4)?,
        r.get(o + 5)?,
        r.get(o + 6)?,
        r.get(o + 7)?,
        r.get(o + 8)?,
        r.get(o + 9)?,
        r.get(o + 10)?,
        r.get(o + 11)?,
        r.get(o + 12)?,
        r.get(o + 13)?,
        r.get(o + 14)?,
    ))
}

pub(super) fn reports_from(
    rows: impl Iterator<Item = Result<RawReport, StoreError>>,
) -> Result<Vec<ReportRecord>, StoreError> {
    rows.map(|row| {
        let (
            id,
            device,
            pupil,
            pupil_name,
            session,
            pressed_at,
            received_at,
            app,
            url,
            page_title,
            latency,
            origin,
            recent_names,
            clock_synced,
            recorded_by,
        ) = row?;
        let recent_names = serde_json::from_str(&recent_names)
            .map_err(|e| StoreError::Corrupt(format!("report {id}: recent_names: {e}")))?;
        Ok(ReportRecord {
            id,
            device,
            pupil,
            pupil_name,
            session,
            pressed_at: parse_db_time(&pressed_at)?,
            received_at: parse_db_time(&received_at)?,
            app,
            url,
            page_title,
            blank_latency_us: latency.and_then(|us| u64::try_from(us).ok()),
            from_block_page: origin == "block_page",
            recent_names,
            clock_synchronised: clock_synced.map(|synced| synced != 0),
            recorded_by,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::roster::PupilEntry;
    use slate_protocol::{Event, EventBody, SessionEndReason};

    fn session_events(pupil: &str, from: &str, to: Option<&str>) -> (SessionId, Vec<Event>) {
        let session = SessionId::new();
        let pupil = PupilId::new(pupil).unwrap();
        let mut events = vec![Event::new(
            device(12),
            at(from),
            EventBody::SessionStarted { session, pupil: pupil.clone() },
        )];
        if let Some(to) = to {
            events.push(Event::new(
                device(12),
                at(to),
                EventBody::SessionEnded {
                    session,
                    pupil,
                    started_at: at(from),
                    reason: SessionEndReason::SignedOut,
                },
            ));
        }
        (session, events)
    }

    #[test]
    fn who_had_a_device_at_the_boundaries() {
        let (_dir, store) = store_with_device(12);
        let (first, mut events) =
            session_events("p-amira", "2026-11-17T09:00:00Z", Some("2026-11-17T10:00:00Z"));
        let (second, more) = session_events("p-ben", "2026-11-17T10:00:00Z", None);
        events.extend(more);
        store.ingest(device(12), &events, at("2026-11-17T10:30:00Z")).unwrap();

        let who = |t: &str| {
            store.who_had(device(12), at(t)).unwrap().map(|w| (w.pupil.to_string(), w.session))
        };
        assert_eq!(who("2026-11-17T08:59:59.999Z"), None, "before anyone signed in");
        assert_eq!(
            who("2026-11-17T09:00:00Z"),
            Some(("p-amira".into(), first)),
            "from the first instant"
        );
        assert_eq!(who("2026-11-17T09:59:59.999999Z"), Some(("p-amira".into(), first)));
        assert_eq!(
            who("2026-11-17T10:00:00Z"),
            Some(("p-ben".into(), second)),
            "the end belongs to the next"
        );
        assert_eq!(who("2026-11-18T10:00:00Z"), Some(("p-ben".into(), second)), "still signed in");
        assert_eq!(
            store.who_had(device(13), at("2026-11-17T09:30:00Z")).unwrap(),
            None,
            "another device"
        );
    }

    #[test]
    fn reports_are_newest_first_with_roster_names() {
        let (_dir, store) = store_with_device(12);
        store.save_pupil(&PupilEntry::new("p-amira", "Amira K.", "Year 2").unwrap()).unwrap();
        let report = |t: &str, pupil: Option<&str>| {
            Event::new(
                device(12),
                at(t),
                EventBody::ReportFiled {
                    session: None,
                    pupil: pupil.map(|p| PupilId::new(p).unwrap()),
                    app: None,
                    url: None,
                    page_title: None,
                    blank_latency_us: Some(41_250),
                    recent_names: vec![],
                    origin: slate_protocol::ReportOrigin::Button,
                },
            )
        };
        let events = vec![
            report("2026-11-17T09:00:00Z", Some("p-amira")),
            report("2026-11-17T11:00:00Z", None),
            report("2026-11-17T10:00:00Z", Some("p-unknown")),
        ];
        store.ingest(device(12), &events, at("2026-11-17T12:00:00Z")).unwrap();

        let reports = store.reports(10).unwrap();
        let order: Vec<_> = reports.iter().map(|r| r.id.clone()).collect();
        assert_eq!(
            order,
            [events[1].id.to_string(), events[2].id.to_string(), events[0].id.to_string()]
        );
        assert_eq!(reports[2].pupil_name.as_deref(), Some("Amira K."));
        assert_eq!(reports[1].pupil_name, None, "not on the roster");
        assert_eq!(reports[0].pupil, None, "nobody signed in");
        assert_eq!(reports[0].blank_latency_us, Some(41_250));
        assert_eq!(store.reports(1).unwrap().len(), 1, "limit");
        assert_eq!(store.device_reports(device(12), 10).unwrap(), reports);
    }
}
