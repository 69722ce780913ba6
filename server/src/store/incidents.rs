//! Incidents: one per report, their workflow steps, notes and form fields. The rules of the
//! workflow are `incident`'s; this module only applies them inside transactions.

use super::queries::{report_row_at, reports_from, ReportRecord, REPORT_COLUMNS};
use super::sql::{Conditions, OptionalExtension, ToSql, Value};
use super::{db_time, parse_db_time, Store, StoreError};
use crate::incident::{next_status, Details, Status, Step, WorkflowError};
use chrono::{DateTime, Utc};

/// An incident with its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    pub id: i64,
    pub status: Status,
    pub details: Details,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub report: ReportRecord,
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentEntry {
    pub at: DateTime<Utc>,
    pub staff: String,
    /// `acknowledged`, `action`, `note` or `details`.
    pub kind: String,
    pub action: Option<String>,
    pub note: Option<String>,
}

/// Why a step was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no such incident")]
    NotFound,
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the DSL's incident list is narrowed to; `None` leaves a field open. Times are instants:
/// the page turns UK days into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    pub pressed_from: Option<DateTime<Utc>>,
    pub pressed_before: Option<DateTime<Utc>>,
    pub device: Option<u16>,
    /// A roster class: the pupil signed in was in it.
    pub class: Option<String>,
    pub status: Option<Status>,
    pub category: Option<String>,
    pub pupil: Option<String>,
}

/// The SQL condition for `filter` and its values, numbered from `$3` (`$1` and `$2` are the
/// page's limit and offset). Only the fields set appear, so each search uses its indexes.
fn filter_condition(filter: &IncidentFilter) -> (String, Vec<Value>) {
    let mut c = Conditions::numbered_from(3);
    if let Some(from) = filter.pressed_from {
        c.bind("r.pressed_at >= ?", Value::Text(db_time(from)));
    }
    if let Some(before) = filter.pressed_before {
        c.bind("r.pressed_at < ?", Value::Text(db_time(before)));
    }
    if let Some(device) = filter.device {
        c.bind("r.device = ?", Value::Integer(device.into()));
    }
    if let Some(class) = &filter.class {
        c.bind(
            "r.pupil IN (SELECT p.id FROM pupils p WHERE p.class_name = ?)",
            Value::Text(class.clone()),
        );
    }
    match filter.status {
        None => {}
        Some(Status::New) => c.fixed("i.status = 'new'"),
        Some(Status::Acknowledged) => c.fixed("i.status = 'acknowledged'"),
        Some(Status::Actioned(action)) => {
            c.bind("i.status = 'actioned' AND i.action = ?", Value::Text(action.name().into()))
        }
    }
    if let Some(category) = &filter.category {
        c.bind("i.category = ?", Value::Text(category.clone()));
    }
    if let Some(pupil) = &filter.pupil {
        c.bind("r.pupil = ?", Value::Text(pupil.clone()));
    }
    c.finish()
}

/// New reports from devices, from the pupils of teacher `$2`'s classes or from nobody signed
/// in: a teacher goes to the device. An incident recorded by hand has no device waiting.
const TEACHERS_NEW: &str =
    "i.status = 'new' AND r.origin <> 'recorded' AND (r.pupil IS NULL OR r.pupil IN (
     SELECT p.id FROM pupils p JOIN classes c ON c.name = p.class_name
     JOIN staff_classes sc ON sc.class_id = c.id JOIN staff s ON s.id = sc.staff_id
     WHERE s.username = $2 AND s.disabled_at IS NULL))";

const INCIDENT_COLUMNS: &str =
    "i.id, i.status, i.action, i.category, i.location, i.description, i.involved,
     i.reported_to, i.outcome, i.created_at, i.updated_at";

type RawIncident = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

fn incident_row(r: &super::sql::Row) -> Result<RawIncident, StoreError> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn incident_from(raw: RawIncident, report: ReportRecord) -> Result<IncidentRecord, StoreError> {
    let (
        id,
        status,
        action,
        category,
        location,
        description,
        involved,
        reported_to,
        outcome,
        created,
        updated,
    ) = raw;
    let status = Status::from_columns(&status, action.as_deref())
        .ok_or_else(|| StoreError::Corrupt(format!("incident {id} status {status:?}")))?;
    Ok(IncidentRecord {
        id,
        status,
        details: Details { category, location, description, involved, reported_to, outcome },
        created_at: parse_db_time(&created)?,
        updated_at: parse_db_time(&updated)?,
        report,
    })
}

/// The pupils of teacher `$1`'s classes (an account that is not disabled).
const TEACHERS_PUPILS: &str = "SELECT p.id FROM pupils p JOIN classes c ON c.name = p.class_name
     JOIN staff_classes sc ON sc.class_id = c.id JOIN staff s ON s.id = sc.staff_id
     WHERE s.username = $1 AND s.disabled_at IS NULL";

impl Store {
    /// The pupils of the classes linked to teacher `teacher`'s account, by class then name:
    /// whom they may record an incident about.
    pub fn teacher_roster_names(
        &self,
        teacher: &str,
    ) -> Result<Vec<super::roster::RosterName>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT id, class_name, display_name FROM pupils WHERE id IN ({TEACHERS_PUPILS})
             ORDER BY class_name, display_name, id"
        ))?;
        let rows = statement.query_map([teacher], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (id, class_name, name) = row?;
            let id =
                slate_protocol::PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(super::roster::RosterName { id, class_name, name })
        })
        .collect()
    }

    /// Stores an incident a member of staff recorded by hand, in one transaction: a report of
    /// origin `recorded` (no device event behind it, so its id is `recorded-<uuid>`, which no
    /// device's event id can be), its incident (new, with the form's fields), the action taken
    /// so far as the first line of its history, and its alert to the DSL in the outbox.
    pub fn record_incident(
        &self,
        recorded: &crate::incident::RecordedIncident,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let report_id = format!("recorded-{}", slate_protocol::EventId::new());
        let now = db_time(now);
        tx.execute(
            "INSERT INTO reports (event_id, device, pupil, pressed_at, received_at, origin,
                                  recorded_by)
             VALUES ($1, $2, $3, $4, $5, 'recorded', $6)",
            (
                &report_id,
                recorded.device,
                recorded.pupil.as_str(),
                db_time(recorded.happened_at),
                &now,
                by,
            ),
        )?;
        let incident: i64 = tx.query_row(
            "INSERT INTO incidents (report_id, category, location, description, involved,
                                    created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            (
                &report_id,
                &recorded.category,
                &recorded.place,
                &recorded.description,
                &recorded.others,
                &now,
            ),
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO incident_entries (incident, at, staff, kind, note)
             VALUES ($1, $2, $3, 'recorded', $4)",
            (incident, &now, by, &recorded.action_taken),
        )?;
        super::alert_outbox::queue_recorded_alert(
            &tx,
            incident,
            recorded.device,
            recorded.happened_at,
            by,
            &now,
        )?;
        tx.commit()?;
        Ok(incident)
    }

    /// The newest `limit` incidents, newest press first.
    pub fn incidents(&self, limit: u32) -> Result<Vec<IncidentRecord>, StoreError> {
        self.incidents_where("1 = 1", super::sql::params![limit])
    }

    /// One page of the incident log's export: the `limit` incidents that come after `after`
    /// (the cursor of the last one already read; `None`: from the newest), newest press first,
    /// each with its cursor.
    pub fn incident_log_after(
        &self,
        after: Option<super::PageCursor>,
        limit: u32,
    ) -> Result<Vec<(super::PageCursor, IncidentRecord)>, StoreError> {
        let found = match after {
            None => self.incidents(limit)?,
            Some(super::PageCursor { at, id }) => self.incidents_where(
                "(r.pressed_at < $2 OR (r.pressed_at = $2 AND r.event_id < $3))",
                super::sql::params![limit, at, id],
            )?,
        };
        Ok(found
            .into_iter()
            .map(|incident| {
                let cursor = super::PageCursor {
                    at: db_time(incident.report.pressed_at),
                    id: incident.report.id.clone(),
                };
                (cursor, incident)
            })
            .collect())
    }

    /// Incidents numbered after `after`, newest press first, at most `limit`: what an open list
    /// missed while its live updates were down.
    pub fn incidents_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.incidents_where("i.id > $2", super::sql::params![limit, after])
    }

    /// The new reports a teacher goes to: from pupils of the classes linked to their account,
    /// and from devices with nobody signed in (someone must still go to a held device).
    pub fn teacher_new_reports(
        &self,
        teacher: &str,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.incidents_where(TEACHERS_NEW, super::sql::params![limit, teacher])
    }

    /// Incident `id`, if it is one of [`Store::teacher_new_reports`].
    pub fn teacher_new_report(
        &self,
        teacher: &str,
        id: i64,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let condition = format!("{TEACHERS_NEW} AND i.id = $3");
        Ok(self.incidents_where(&condition, super::sql::params![1u32, teacher, id])?.pop())
    }

    /// Incidents whose report came from `device`.
    pub fn device_incidents(
        &self,
        device: u16,
        limit: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.incidents_where("r.device = $2", super::sql::params![limit, device])
    }

    /// One page of the incidents `filter` allows, newest press first: `limit` of them after
    /// skipping `offset`.
    pub fn search_incidents(
        &self,
        filter: &IncidentFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let (condition, values) = filter_condition(filter);
        let mut params: Vec<&dyn ToSql> = vec![&limit, &offset];
        params.extend(values.iter().map(|v| v as &dyn ToSql));
        self.incidents_page(&condition, "LIMIT $1 OFFSET $2", &params)
    }

    fn incidents_where(
        &self,
        condition: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.incidents_page(condition, "LIMIT $1", params)
    }

    fn incidents_page(
        &self,
        condition: &str,
        limit: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS}, {REPORT_COLUMNS} JOIN incidents i ON i.report_id = r.event_id
             WHERE {condition} ORDER BY r.pressed_at DESC, r.event_id DESC {limit}"
        ))?;
        let rows = statement.query_map(params, |r| {
            let incident = incident_row(r)?;
            let report = report_row_at(r, 11)?;
            Ok((incident, report))
        })?;
        rows.map(|row| {
            let (incident, report) = row?;
            let report = reports_from(std::iter::once(Ok(report)))?.remove(0);
            incident_from(incident, report)
        })
        .collect()
    }

    /// What the governors' report counts, for incidents pressed from `from` (inclusive) to `to`
    /// (exclusive): time, kind and the pupil's class. Nothing that names anyone.
    pub fn incident_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<crate::governors::IncidentFact>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT r.pressed_at, i.category, p.class_name
             FROM incidents i JOIN reports r ON r.event_id = i.report_id
             LEFT JOIN pupils p ON p.id = r.pupil
             WHERE r.pressed_at >= $1 AND r.pressed_at < $2",
        )?;
        let rows = statement.query_map((db_time(from), db_time(to)), |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.map(|row| {
            let (pressed_at, category, year_group) = row?;
            Ok(crate::governors::IncidentFact {
                pressed_at: parse_db_time(&pressed_at)?,
                category,
                year_group,
            })
        })
        .collect()
    }

    /// One incident and its history, oldest entry first.
    pub fn incident(
        &self,
        id: i64,
    ) -> Result<Option<(IncidentRecord, Vec<IncidentEntry>)>, StoreError> {
        let found = {
            let connection = self.lock();
            connection
                .query_row(
                    &format!(
                        "SELECT {INCIDENT_COLUMNS}, {REPORT_COLUMNS} JOIN incidents i ON i.report_id = r.event_id
                         WHERE i.id = $1"
                    ),
                    [id],
                    |r| Ok((incident_row(r)?, report_row_at(r, 11)?)),
                )
                .optional()?
        };
        let Some((incident, report)) = found else { return Ok(None) };
        let report = reports_from(std::iter::once(Ok(report)))?.remove(0);
        let incident = incident_from(incident, report)?;
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT at, staff, kind, action, note FROM incident_entries WHERE incident = $1 ORDER BY id",
        )?;
        let entries = statement
            .query_map([id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .map(|row| {
                let (at, staff, kind, action, note) = row?;
                Ok(IncidentEntry { at: parse_db_time(&at)?, staff, kind, action, note })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((incident, entries)))
    }

    /// Takes a workflow step with an optional note, in one transaction.
    pub fn incident_step(
        &self,
        id: i64,
        step: Step,
        staff: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Status, StepError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let row: Option<(String, Option<String>)> = tx
            .query_row("SELECT status, action FROM incidents WHERE id = $1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (status, action) = row.ok_or(StepError::NotFound)?;
        let current = Status::from_columns(&status, action.as_deref())
            .ok_or_else(|| StoreError::Corrupt(format!("incident {id} status {status:?}")))?;
        let next = next_status(current, step)?;
        let (status, action) = next.to_columns();
        let now = db_time(now);
        tx.execute(
            "UPDATE incidents SET status = $2, action = $3, updated_at = $4 WHERE id = $1",
            (id, status, action, &now),
        )?;
        let kind = match step {
            Step::Acknowledge => "acknowledged",
            Step::Act(_) => "action",
            Step::Reopen => "reopened",
        };
        tx.execute(
            "INSERT INTO incident_entries (incident, at, staff, kind, action, note) VALUES ($1, $2, $3, $4, $5, $6)",
            (id, &now, staff, kind, action, note),
        )?;
        tx.commit()?;
        Ok(next)
    }

    /// Adds a note to the history.
    pub fn incident_note(
        &self,
        id: i64,
        staff: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let now = db_time(now);
        let changed =
            tx.execute("UPDATE incidents SET updated_at = $2 WHERE id = $1", (id, &now))?;
        if changed == 0 {
            return Err(StepError::NotFound);
        }
        tx.execute(
            "INSERT INTO incident_entries (incident, at, staff, kind, note) VALUES ($1, $2, $3, 'note', $4)",
            (id, &now, staff, note),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Saves the form's fields, recording who changed them.
    pub fn incident_details(
        &self,
        id: i64,
        details: &Details,
        staff: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StepError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let now = db_time(now);
        let changed = tx.execute(
            "UPDATE incidents SET category = $2, location = $3, description = $4, involved = $5,
                    reported_to = $6, outcome = $7, updated_at = $8 WHERE id = $1",
            (
                id,
                &details.category,
                &details.location,
                &details.description,
                &details.involved,
                &details.reported_to,
                &details.outcome,
                &now,
            ),
        )?;
        if changed == 0 {
            return Err(StepError::NotFound);
        }
        tx.execute(
            "INSERT INTO incident_entries (incident, at, staff, kind) VALUES ($1, $2, $3, 'details')",
            (id, &now, staff),
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::incident::Action;
    use slate_protocol::{Event, EventBody};

    fn with_report() -> (tempfile::TempDir, Store, i64) {
        let (dir, store) = store_with_device(12);
        let event = Event::new(
            device(12),
            at("2026-11-17T10:14:00Z"),
            EventBody::ReportFiled {
                session: None,
                pupil: None,
                app: Some("browser".into()),
                url: None,
                page_title: None,
                blank_latency_us: None,
                recent_names: vec![],
                origin: slate_protocol::ReportOrigin::Button,
            },
        );
        let ingested =
            store.ingest_reporting(device(12), &[event], at("2026-11-17T10:14:01Z")).unwrap();
        assert_eq!(ingested.new_reports.len(), 1);
        let id = ingested.new_reports[0].incident;
        (dir, store, id)
    }

    #[test]
    fn a_filter_names_only_the_fields_it_sets_numbered_after_limit_and_offset() {
        let open = IncidentFilter::default();
        assert_eq!(filter_condition(&open), ("1 = 1".into(), vec![]));
        let status_only =
            IncidentFilter { status: Some(Status::Acknowledged), ..IncidentFilter::default() };
        assert_eq!(
            filter_condition(&status_only),
            ("1 = 1 AND i.status = 'acknowledged'".into(), vec![])
        );
        let every = IncidentFilter {
            pressed_from: Some(at("2026-11-17T00:00:00Z")),
            pressed_before: Some(at("2026-11-18T00:00:00Z")),
            device: Some(12),
            class: Some("Year 5, Kingfishers".into()),
            status: Some(Status::Actioned(Action::Escalated)),
            category: Some("bullying".into()),
            pupil: Some("p-1".into()),
        };
        let (condition, values) = filter_condition(&every);
        assert_eq!(
            condition,
            "1 = 1 AND r.pressed_at >= $3 AND r.pressed_at < $4 AND r.device = $5 \
             AND r.pupil IN (SELECT p.id FROM pupils p WHERE p.class_name = $6) \
             AND i.status = 'actioned' AND i.action = $7 AND i.category = $8 AND r.pupil = $9"
        );
        assert_eq!(
            values,
            [
                Value::Text("2026-11-17T00:00:00.000000Z".into()),
                Value::Text("2026-11-18T00:00:00.000000Z".into()),
                Value::Integer(12),
                Value::Text("Year 5, Kingfishers".into()),
                Value::Text("escalated".into()),
                Value::Text("bullying".into()),
                Value::Text("p-1".into()),
            ]
        );
    }

    #[test]
    fn a_search_pages_through_the_incidents_it_allows() {
        let (_dir, store) = store_with_device(12);
        store
            .save_pupil(&crate::roster::PupilEntry::new("p-a", "Amira K.", "Oak").unwrap())
            .unwrap();
        store.save_pupil(&crate::roster::PupilEntry::new("p-b", "Ben T.", "Ash").unwrap()).unwrap();
        let presses: Vec<Event> = (0..7)
            .map(|i| {
                Event::new(
                    device(12),
                    at(&format!("2026-11-1{i}T10:14:00Z")),
                    EventBody::ReportFiled {
                        session: None,
                        pupil: Some(
                            slate_protocol::PupilId::new(if i % 2 == 0 { "p-a" } else { "p-b" })
                                .unwrap(),
                        ),
                        app: None,
                        url: None,
                        page_title: None,
                        blank_latency_us: None,
                        recent_names: vec![],
                        origin: slate_protocol::ReportOrigin::Button,
                    },
                )
            })
            .collect();
        store.ingest_reporting(device(12), &presses, at("2026-11-18T10:00:00Z")).unwrap();
        let days = |found: Vec<IncidentRecord>| -> Vec<u32> {
            use chrono::Datelike;
            found.iter().map(|i| i.report.pressed_at.day()).collect()
        };
        let oak = IncidentFilter { class: Some("Oak".into()), ..IncidentFilter::default() };
        assert_eq!(days(store.search_incidents(&oak, 2, 0).unwrap()), [16, 14]);
        assert_eq!(days(store.search_incidents(&oak, 2, 2).unwrap()), [12, 10]);
        assert_eq!(days(store.search_incidents(&oak, 2, 4).unwrap()), Vec::<u32>::new());
        let week = IncidentFilter {
            pressed_from: Some(at("2026-11-11T00:00:00Z")),
            pressed_before: Some(at("2026-11-14T00:00:00Z")),
            pupil: Some("p-b".into()),
            ..IncidentFilter::default()
        };
        assert_eq!(days(store.search_incidents(&week, 10, 0).unwrap()), [13, 11]);
        let nowhere = IncidentFilter { device: Some(13), ..IncidentFilter::default() };
        assert!(store.search_incidents(&nowhere, 10, 0).unwrap().is_empty());
        let new = IncidentFilter { status: Some(Status::New), ..IncidentFilter::default() };
        assert_eq!(store.search_incidents(&new, 10, 0).unwrap().len(), 7);
        let escalated = IncidentFilter {
            status: Some(Status::Actioned(Action::Escalated)),
            ..IncidentFilter::default()
        };
        assert!(store.search_incidents(&escalated, 10, 0).unwrap().is_empty());
    }

    #[test]
    fn unlocking_the_device_is_a_note_and_never_moves_the_incident() {
        let (_dir, store, id) = with_report();
        // Mrs Jones set her unlock PIN; devices know her as `s-jones1`.
        let now = at("2026-11-17T08:00:00Z");
        let phc = crate::auth::hash_password("482916", crate::auth::HashCost::Cheap);
        let jones =
            store.save_staff("j.jones", crate::auth::Role::Teacher, &phc, None, now).unwrap();
        let fresh = slate_protocol::StaffId::new("s-jones1").unwrap();
        assert_eq!(store.set_unlock_pin(jones, &phc, &fresh, now).unwrap(), Some(fresh.clone()));
        let (incident, _) = store.incident(id).unwrap().unwrap();
        let report: slate_protocol::EventId =
            serde_json::from_value(serde_json::Value::String(incident.report.id.clone())).unwrap();
        let resolved = |choice| {
            Event::new(
                device(12),
                at("2026-11-17T10:16:00Z"),
                EventBody::ReportResolved { report, choice, staff: Some(fresh.clone()) },
            )
        };
        let close = resolved(slate_protocol::ResolutionChoice::CloseApp);
        store.ingest(device(12), &[close], at("2026-11-17T10:16:01Z")).unwrap();
        let (incident, entries) = store.incident(id).unwrap().unwrap();
        assert_eq!(incident.status, Status::New, "only staff move an incident");
        let seen: Vec<_> = entries
            .iter()
            .map(|e| (e.kind.as_str(), e.staff.as_str(), e.note.as_deref(), e.action.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [("device", "device 12", Some("j.jones unlocked device 12: close the app"), None)]
        );
        // A false alarm on the device closes nothing either: the DSL still acts, and may reopen.
        let false_alarm = resolved(slate_protocol::ResolutionChoice::FalseAlarm);
        store.ingest(device(12), &[false_alarm], at("2026-11-17T10:16:30Z")).unwrap();
        assert_eq!(store.incident(id).unwrap().unwrap().0.status, Status::New);
        let now = at("2026-11-17T10:16:40Z");
        store.incident_step(id, Step::Acknowledge, "a.dsl", None, now).unwrap();
        store.incident_step(id, Step::Act(Action::FalseAlarm), "a.dsl", None, now).unwrap();
        let reopened = store.incident_step(id, Step::Reopen, "a.dsl", Some("pupil spoke up"), now);
        assert_eq!(reopened.unwrap(), Status::Acknowledged);
        store.incident_step(id, Step::Act(Action::Escalated), "a.dsl", None, now).unwrap();
        let kinds: Vec<_> =
            store.incident(id).unwrap().unwrap().1.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["device", "device", "acknowledged", "action", "reopened", "action"]);

        // A resolution from another device naming this report changes nothing.
        let now = at("2026-11-17T10:17:00Z");
        let token =
            store.issue_enrollment_token(device(13), chrono::Duration::hours(1), now).unwrap();
        let credential = crate::secrets::Secret::generate();
        store.enroll(&token.hash(), device(13), &credential.hash(), "0.1.0", now).unwrap();
        let mut foreign = resolved(slate_protocol::ResolutionChoice::FalseAlarm);
        foreign.device = device(13);
        store.ingest(device(13), &[foreign], now).unwrap();
        assert_eq!(store.incident(id).unwrap().unwrap().1.len(), 6, "no new entries");
    }

    #[test]
    fn a_report_becomes_a_new_incident_and_steps_are_recorded() {
        let (_dir, store, id) = with_report();
        let list = store.incidents(10).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].id, list[0].status, list[0].report.device),
            (id, Status::New, Some(12))
        );
        assert_eq!(store.device_incidents(12, 10).unwrap().len(), 1);
        assert_eq!(store.device_incidents(13, 10).unwrap().len(), 0);

        let now = at("2026-11-17T10:20:00Z");
        let refused = store.incident_step(id, Step::Act(Action::AppClosed), "j.smith", None, now);
        assert!(matches!(refused, Err(StepError::Workflow(WorkflowError::NotAcknowledged))));
        store.incident_step(id, Step::Acknowledge, "j.smith", None, now).unwrap();
        let status = store
            .incident_step(id, Step::Act(Action::Escalated), "a.dsl", Some("to head"), now)
            .unwrap();
        assert_eq!(status, Status::Actioned(Action::Escalated));
        store.incident_note(id, "a.dsl", "parents called", now).unwrap();
        let details = Details { category: Some("bullying".into()), ..Details::default() };
        store.incident_details(id, &details, "a.dsl", now).unwrap();

        let (incident, entries) = store.incident(id).unwrap().unwrap();
        assert_eq!(incident.status, Status::Actioned(Action::Escalated));
        assert_eq!(incident.details.category.as_deref(), Some("bullying"));
        let kinds: Vec<_> = entries.iter().map(|e| (e.kind.as_str(), e.staff.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("acknowledged", "j.smith"),
                ("action", "a.dsl"),
                ("note", "a.dsl"),
                ("details", "a.dsl")
            ]
        );
        assert_eq!(entries[1].note.as_deref(), Some("to head"));
        assert!(store.incident(id + 1).unwrap().is_none());
        assert!(matches!(store.incident_note(id + 1, "x", "y", now), Err(StepError::NotFound)));
    }

    #[test]
    fn an_unlock_with_it_s_pin_or_an_unknown_id_says_so() {
        for (staff, expected) in [
            (Some("it"), "IT's own device PIN unlocked device 12: false alarm"),
            (Some("s-gone"), "unknown staff id s-gone unlocked device 12: false alarm"),
            (None, "someone unlocked device 12: false alarm"),
        ] {
            let (_dir, store, id) = with_report();
            let (incident, _) = store.incident(id).unwrap().unwrap();
            let report: slate_protocol::EventId =
                serde_json::from_value(serde_json::Value::String(incident.report.id.clone()))
                    .unwrap();
            let resolved = Event::new(
                device(12),
                at("2026-11-17T10:16:00Z"),
                EventBody::ReportResolved {
                    report,
                    choice: slate_protocol::ResolutionChoice::FalseAlarm,
                    staff: staff.map(|s| slate_protocol::StaffId::new(s).unwrap()),
                },
            );
            store.ingest(device(12), &[resolved], at("2026-11-17T10:16:01Z")).unwrap();
            let (_, entries) = store.incident(id).unwrap().unwrap();
            assert_eq!(entries[0].note.as_deref(), Some(expected));
        }
    }
}
