//! What a pupil's chronology reads besides their incidents (which are `search_incidents` with the
//! pupil set): the roster's entry, their sessions, their blocked attempts in chosen lists and the
//! history of their incidents, each newest first and capped.

use super::sql::OptionalExtension;
use super::sql::{ToSql, Value};
use super::{parse_db_time, IncidentEntry, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::EventBody;

/// A pupil as the roster has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilRecord {
    pub id: String,
    pub name: String,
    pub class: String,
    /// Marked as left: on no device, records kept.
    pub left: bool,
}

/// One session of the pupil's, on whichever device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilSession {
    pub device: u16,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub end_inferred: bool,
}

/// One attempt the filter refused while the pupil was signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedAttempt {
    pub at: DateTime<Utc>,
    pub device: u16,
    pub target: String,
    pub list: String,
}

/// One acceptable use agreement the pupil accepted at sign-in: which text, which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedAgreement {
    pub at: DateTime<Utc>,
    pub device: u16,
    pub key_stage: String,
    pub text_version: String,
    /// The school's number for its own text; `None` for a built-in text.
    pub school_version: Option<u32>,
}

/// One line of the history of one of the pupil's incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentHistoryLine {
    pub incident: i64,
    pub entry: IncidentEntry,
}

impl Store {
    /// The roster's entry for `id`, if there is one.
    pub fn pupil(&self, id: &str) -> Result<Option<PupilRecord>, StoreError> {
        self.lock()
            .query_row(
                "SELECT id, display_name, class_name, left_at FROM pupils WHERE id = $1",
                [id],
                |r| {
                    Ok(PupilRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        class: r.get(2)?,
                        left: r.get::<_, Option<String>>(3)?.is_some(),
                    })
                },
            )
            .optional()
    }

    /// The pupil's newest `limit` sessions, latest start first.
    pub fn pupil_sessions(&self, pupil: &str, limit: u32) -> Result<Vec<PupilSession>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT device, started_at, ended_at, end_reason, end_inferred FROM sessions
             WHERE pupil = $1 ORDER BY started_at DESC, session_id DESC LIMIT $2",
        )?;
        let rows = statement.query_map((pupil, limit), |r| {
            Ok((
                r.get::<_, u16>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (device, started_at, ended_at, end_reason, inferred) = row?;
            Ok(PupilSession {
                device,
                started_at: parse_db_time(&started_at)?,
                ended_at: ended_at.as_deref().map(parse_db_time).transpose()?,
                end_reason,
                end_inferred: inferred != 0,
            })
        })
        .collect()
    }

    /// The pupil's newest `limit` blocked attempts whose list is one of `lists`.
    pub fn pupil_blocked(
        &self,
        pupil: &str,
        lists: &[&str],
        limit: u32,
    ) -> Result<Vec<BlockedAttempt>, StoreError> {
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        let connection = self.read();
        let backend = connection.backend();
        // The pupil's expression is the one `events_blocked_by_pupil` indexes.
        let by_pupil = backend.json_text("body", "pupil");
        let list = backend.json_text("body", "list");
        let placeholders: Vec<String> = (0..lists.len()).map(|i| format!("${}", i + 3)).collect();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT device, at, body FROM events
             WHERE kind = 'filter_blocked' AND {by_pupil} = $1 AND {list} IN ({})
             ORDER BY at DESC, id DESC LIMIT $2",
            placeholders.join(", ")
        ))?;
        let names: Vec<Value> = lists.iter().map(|l| Value::Text((*l).to_owned())).collect();
        let mut params: Vec<&dyn ToSql> = vec![&pupil, &limit];
        params.extend(names.iter().map(|n| n as &dyn ToSql));
        let rows = statement.query_map(params.as_slice(), |r| {
            Ok((r.get::<_, u16>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (device, at, body) = row?;
            let EventBody::FilterBlocked { target, list, .. } = serde_json::from_str(&body)? else {
                return Err(StoreError::Corrupt(format!(
                    "filter_blocked event body on device {device}"
                )));
            };
            Ok(BlockedAttempt { at: parse_db_time(&at)?, device, target, list })
        })
        .collect()
    }

    /// The pupil's newest `limit` acceptances of an agreement.
    pub fn pupil_agreements(
        &self,
        pupil: &str,
        limit: u32,
    ) -> Result<Vec<AcceptedAgreement>, StoreError> {
        let connection = self.read();
        // The pupil's expression is the one `events_aup_by_pupil` indexes.
        let by_pupil = connection.backend().json_text("body", "pupil");
        let mut statement = connection.prepare_cached(&format!(
            "SELECT device, at, body FROM events
             WHERE kind = 'aup_accepted' AND {by_pupil} = $1
             ORDER BY at DESC, id DESC LIMIT $2"
        ))?;
        let rows = statement.query_map((pupil, limit), |r| {
            Ok((r.get::<_, u16>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (device, at, body) = row?;
            let EventBody::AupAccepted { key_stage, text_version, school_version, .. } =
                serde_json::from_str(&body)?
            else {
                return Err(StoreError::Corrupt(format!(
                    "aup_accepted event body on device {device}"
                )));
            };
            Ok(AcceptedAgreement {
                at: parse_db_time(&at)?,
                device,
                key_stage,
                text_version,
                school_version,
            })
        })
        .collect()
    }

    /// The newest `limit` lines of the histories of the pupil's incidents: who acknowledged,
    /// what was done, the notes.
    pub fn pupil_incident_history(
        &self,
        pupil: &str,
        limit: u32,
    ) -> Result<Vec<IncidentHistoryLine>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT e.incident, e.at, e.staff, e.kind, e.action, e.note FROM incident_entries e
             JOIN incidents i ON i.id = e.incident JOIN reports r ON r.event_id = i.report_id
             WHERE r.pupil = $1 ORDER BY e.at DESC, e.id DESC LIMIT $2",
        )?;
        let rows = statement.query_map((pupil, limit), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.map(|row| {
            let (incident, at, staff, kind, action, note) = row?;
            let entry = IncidentEntry { at: parse_db_time(&at)?, staff, kind, action, note };
            Ok(IncidentHistoryLine { incident, entry })
        })
        .collect()
    }
}
