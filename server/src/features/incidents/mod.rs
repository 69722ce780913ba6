//! The DSL's desk: handlers for the incident list (with live updates), one incident and its
//! workflow, exports, device pages, "who had device N at T", the iPad register, the fleet and
//! the audit log. Each checks the role's permission and writes the audit log; rules live in
//! `auth` and `incident`, queries in `store`, HTML in `pages`, CSV in `export`.

use crate::auth::Permission;
use crate::export;
use crate::features::device_api::ApiError;
use crate::features::sign_in::{PageError, Staff, StaffApi};
use crate::http::layout;
use crate::http::AppState;
use crate::incident::{self, Action, Step};
use crate::store::{IncidentEntry, IncidentRecord, ReportRecord, StepError, Store};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use maud::Markup;
use serde::{Deserialize, Serialize};
use slate_protocol::{DeviceNumber, PupilId};
use std::convert::Infallible;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;

/// Incidents on the list page; older ones are in the CSV log.
const PAGE_REPORTS: u32 = 500;
/// Sessions, reports and register lines on a device page.
const DEVICE_PAGE_ROWS: u32 = 200;
const DEFAULT_API_LIMIT: u32 = 100;
const MAX_API_LIMIT: u32 = 1000;
const AUDIT_PAGE_ROWS: u32 = 500;
const EXPORT_ROWS: u32 = 100_000;

const LIVE_JS: &str = include_str!("live.js");

/// `GET /static/live.js`: adds new reports to the open list without a reload.
pub async fn live_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS).into_response()
}

/// `GET /reports`: every incident, newest first, updating live.
pub async fn reports_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    staff.require(Permission::ViewIncidents)?;
    let incidents = state.store.run(|store| store.incidents(PAGE_REPORTS)).await?;
    staff.audit(&state, "viewed incident list", None).await?;
    Ok(layout::reports_page(&staff.viewer(), &incidents, PAGE_REPORTS))
}

/// `GET /reports/live`: server-sent events, one `report` event per new report (ids and time).
pub async fn live(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, PageError> {
    staff.require(Permission::ViewIncidents)?;
    staff.audit(&state, "opened live incident list", None).await?;
    let reports = BroadcastStream::new(state.live.subscribe()).filter_map(|item| {
        // A lagging listener skips what it missed; a reload catches up.
        let report = item.ok()?;
        Some(SseEvent::default().event("report").json_data(&report).ok())
    });
    // Shutdown ends the stream, so the server need not wait for open lists to close.
    let closing =
        WatchStream::new(state.closing.subscribe()).filter(|closing| *closing).map(|_| None);
    let stream =
        reports.merge(closing).take_while(Option::is_some).filter_map(|event| event.map(Ok));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The incident named in a path, with its history, or a "no such incident" page.
async fn load_incident(
    state: &AppState,
    id: &str,
) -> Result<(i64, IncidentRecord, Vec<IncidentEntry>), PageError> {
    let id = parse_incident(id)?;
    let found = state.store.run(move |store| store.incident(id)).await?;
    let (incident, entries) =
        found.ok_or_else(|| PageError::NotFound(format!("There is no incident {id}.")))?;
    Ok((id, incident, entries))
}

fn parse_incident(id: &str) -> Result<i64, PageError> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| PageError::NotFound(format!("There is no incident {id}.")))
}

/// Loads an incident for a member of staff allowed to `need` it, and audits that they `did`
/// something with it: every view or export of an incident is in the audit log.
async fn open_incident(
    staff: &Staff,
    state: &AppState,
    id: &str,
    need: Permission,
    did: &str,
) -> Result<(i64, IncidentRecord, Vec<IncidentEntry>), PageError> {
    staff.require(need)?;
    let (id, incident, entries) = load_incident(state, id).await?;
    staff.audit(state, did, Some(format!("incident {id}"))).await?;
    Ok((id, incident, entries))
}

/// `GET /incidents/{id}`.
pub async fn incident_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let (_, incident, entries) =
        open_incident(&staff, &state, &id, Permission::ViewIncidents, "viewed incident").await?;
    Ok(layout::incident_page(&staff.viewer(), &incident, &entries))
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

/// A workflow form from someone allowed to send it, its CSRF token checked, with its note
/// (`None` when left empty).
fn step_form(
    staff: &Staff,
    permission: Permission,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<(StepForm, Option<String>), PageError> {
    staff.require(permission)?;
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let note = incident::check_text("Note", &body.note, incident::MAX_FIELD_CHARS)
        .map_err(PageError::BadForm)?;
    Ok((body, note))
}

fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    form.map(|Form(f)| f).map_err(|e| PageError::BadForm(e.body_text()))
}

fn step_error(id: i64, error: StepError) -> PageError {
    match error {
        StepError::NotFound => PageError::NotFound(format!("There is no incident {id}.")),
        StepError::Workflow(e) => PageError::Conflict(format!("{}.", capitalise(&e.to_string()))),
        StepError::Store(e) => PageError::Storage(e),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

async fn take_step(
    staff: Staff,
    state: AppState,
    id: String,
    step: Step,
    note: Option<String>,
) -> Result<Response, PageError> {
    change_incident(
        &staff,
        &state,
        &id,
        move |store, id, actor| store.incident_step(id, step, actor, note.as_deref(), Utc::now()),
        |id, status| {
            tracing::info!(incident = id, status = %status.to_columns().0, "incident step");
            format!("recorded {status}")
        },
    )
    .await
}

/// Changes the incident named in the path as this member of staff, writes what was done
/// (`audit` words it from the outcome) to the audit log, and sends them back to the incident.
async fn change_incident<T: Send + 'static>(
    staff: &Staff,
    state: &AppState,
    id: &str,
    change: impl FnOnce(&Store, i64, &str) -> Result<T, StepError> + Send + 'static,
    audit: impl FnOnce(i64, &T) -> String,
) -> Result<Response, PageError> {
    let id = parse_incident(id)?;
    let actor = staff.actor.clone();
    let outcome = state
        .store
        .run(move |store| Ok(change(store, id, &actor)))
        .await?
        .map_err(|e| step_error(id, e))?;
    staff.audit(state, &audit(id, &outcome), Some(format!("incident {id}"))).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// `POST /incidents/{id}/acknowledge`.
pub async fn acknowledge(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (_, note) = step_form(&staff, Permission::Acknowledge, body)?;
    take_step(staff, state, id, Step::Acknowledge, note).await
}

/// `POST /incidents/{id}/action`: `action` is one of the workflow's actions.
pub async fn record_action(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (body, note) = step_form(&staff, Permission::RecordAction, body)?;
    let action = Action::parse(&body.action)
        .ok_or_else(|| PageError::BadForm("Choose what was done from the list.".into()))?;
    take_step(staff, state, id, Step::Act(action), note).await
}

/// `POST /incidents/{id}/note`.
pub async fn add_note(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (_, note) = step_form(&staff, Permission::RecordAction, body)?;
    let note = note.ok_or_else(|| PageError::BadForm("The note is empty.".into()))?;
    change_incident(
        &staff,
        &state,
        &id,
        move |store, id, actor| store.incident_note(id, actor, &note, Utc::now()),
        |_, _| "added note".into(),
    )
    .await
}

#[derive(Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    involved: String,
    #[serde(default)]
    reported_to: String,
    #[serde(default)]
    outcome: String,
}

/// `POST /incidents/{id}/details`: the incident form's fields.
pub async fn save_details(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<DetailsForm>, FormRejection>,
) -> Result<Response, PageError> {
    staff.require(Permission::RecordAction)?;
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let details = incident::check_details(
        &body.category,
        &body.location,
        &body.description,
        &body.involved,
        &body.reported_to,
        &body.outcome,
    )
    .map_err(PageError::BadForm)?;
    change_incident(
        &staff,
        &state,
        &id,
        move |store, id, actor| store.incident_details(id, &details, actor, Utc::now()),
        |_, _| "edited incident record".into(),
    )
    .await
}

fn csv_response(filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// `GET /incidents/{id}/export.csv`: one incident's record and history.
pub async fn incident_csv(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, incident, entries) =
        open_incident(&staff, &state, &id, Permission::Export, "exported incident (CSV)").await?;
    Ok(csv_response(&format!("incident-{id}.csv"), export::incident_csv(&incident, &entries)))
}

/// `GET /incidents/{id}/export.pdf`: one incident's record, printable.
pub async fn incident_pdf(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, incident, entries) =
        open_incident(&staff, &state, &id, Permission::Export, "exported incident (PDF)").await?;
    let pdf = crate::pdf::document(&crate::pdf::incident_lines(&incident, &entries));
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"incident-{id}.pdf\"")),
        ],
        pdf,
    )
        .into_response())
}

/// `GET /reports.csv`: the incident log (seed 002 appendix K).
pub async fn log_csv(staff: Staff, State(state): State<AppState>) -> Result<Response, PageError> {
    staff.require(Permission::Export)?;
    let incidents = state.store.run(|store| store.incidents(EXPORT_ROWS)).await?;
    staff.audit(&state, "exported incident log (CSV)", None).await?;
    Ok(csv_response("incident-log.csv", export::log_csv(&incidents)))
}

/// `GET /devices/{number}`: one device's sessions, register lines and incidents. Numbers with no
/// enrolled device but register lines (iPads) show the register alone.
pub async fn device_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Markup, PageError> {
    staff.require(Permission::ViewDevice)?;
    let not_found = || PageError::NotFound(format!("There is no device {number}."));
    let device =
        number.parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(not_found)?;
    let found = state
        .store
        .run(move |store| {
            let record = store.device(device)?;
            let register = store.register_entries(device, DEVICE_PAGE_ROWS)?;
            if record.is_none() && register.is_empty() {
                return Ok(None);
            }
            let sessions = store.device_sessions(device, DEVICE_PAGE_ROWS)?;
            let incidents = store.device_incidents(device.get(), DEVICE_PAGE_ROWS)?;
            let activity = layout::DeviceActivity {
                blocked: store.device_activity(device, "filter_blocked", DEVICE_PAGE_ROWS)?,
                apps: store.device_activity(device, "app_opened", DEVICE_PAGE_ROWS)?,
                agreements: store.device_activity(device, "aup_accepted", DEVICE_PAGE_ROWS)?,
            };
            Ok(Some((record, sessions, incidents, register, activity)))
        })
        .await?;
    let (record, sessions, incidents, register, activity) = found.ok_or_else(not_found)?;
    staff.audit(&state, "viewed device", Some(format!("device {device}"))).await?;
    Ok(layout::device_page(
        &staff.viewer(),
        device.get(),
        record.as_ref(),
        &sessions,
        &incidents,
        &register,
        &activity,
    ))
}

#[derive(Deserialize)]
pub struct WhoHadQuery {
    device: Option<String>,
    at: Option<String>,
}

/// A device number from a form, with a message naming the field.
fn parse_device(text: &str) -> Result<DeviceNumber, String> {
    let text = text.trim();
    text.parse::<u32>()
        .ok()
        .and_then(|n| DeviceNumber::new(n).ok())
        .ok_or_else(|| format!("Device: {text:?} is not a device number from 1 to 9999."))
}

/// A time from a form or the API: RFC 3339 (with its offset), or a browser's `datetime-local`
/// value, read as UK time (what staff see on the wall clock).
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    crate::uk_time::parse_uk(field, text)
}

/// `GET /who-had?device=N&at=T`: the form, and its answer when both are given.
pub async fn who_had_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<WhoHadQuery>, QueryRejection>,
) -> Result<Markup, PageError> {
    staff.require(Permission::ViewDevice)?;
    let Query(query) = query.map_err(|e| PageError::BadForm(e.body_text()))?;
    let device_text = query.device.unwrap_or_default();
    let at_text = query.at.unwrap_or_default();
    if device_text.trim().is_empty() && at_text.trim().is_empty() {
        return Ok(layout::who_had_page(&staff.viewer(), "", "", None));
    }
    let parsed = parse_device(&device_text).and_then(|d| Ok((d, parse_time("Time", &at_text)?)));
    let (device, at) = match parsed {
        Ok(ok) => ok,
        Err(message) => {
            return Ok(layout::who_had_page(
                &staff.viewer(),
                &device_text,
                &at_text,
                Some(Err(message)),
            ))
        }
    };
    let answer = state.store.run(move |store| store.who_had_any(device, at)).await?;
    staff
        .audit(
            &state,
            "asked who had device",
            Some(format!("device {device} at {}", at.to_rfc3339())),
        )
        .await?;
    Ok(layout::who_had_page(
        &staff.viewer(),
        &device_text,
        &at_text,
        Some(Ok((device.get(), at, answer))),
    ))
}

/// The JSON answer: pseudonymous ids only, no roster names.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WhoHadReply {
    pub device: u16,
    pub at: DateTime<Utc>,
    /// `None` when nobody is recorded as having it.
    pub pupil: Option<String>,
    /// `session` or `register`.
    pub source: Option<String>,
    pub session: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// `GET /api/v1/staff/who-had?device=N&at=T`.
pub async fn who_had_json(
    staff: StaffApi,
    State(state): State<AppState>,
    query: Result<Query<WhoHadQuery>, QueryRejection>,
) -> Result<Json<WhoHadReply>, ApiError> {
    staff.require(Permission::ViewDevice)?;
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let device = parse_device(query.device.as_deref().unwrap_or("")).map_err(ApiError::BadQuery)?;
    let at = parse_time("at", query.at.as_deref().unwrap_or("")).map_err(ApiError::BadQuery)?;
    let answer = state.store.run(move |store| store.who_had_any(device, at)).await?;
    staff
        .0
        .audit(
            &state,
            "asked who had device (API)",
            Some(format!("device {device} at {}", at.to_rfc3339())),
        )
        .await?;
    Ok(Json(WhoHadReply {
        device: device.get(),
        at,
        pupil: answer.as_ref().map(|a| a.pupil.clone()),
        source: answer.as_ref().map(|a| a.source.to_owned()),
        session: answer.as_ref().and_then(|a| a.session.clone()),
        from: answer.as_ref().map(|a| a.from),
        to: answer.as_ref().and_then(|a| a.to),
    }))
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    pupil: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `POST /register`: a teacher records which pupil had a numbered iPad for a lesson.
pub async fn add_register_entry(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RegisterForm>, FormRejection>,
) -> Result<Response, PageError> {
    staff.require(Permission::RecordRegister)?;
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let device = parse_device(&body.device).map_err(PageError::BadForm)?;
    let pupil = PupilId::new(body.pupil.trim()).map_err(|_| {
        PageError::BadForm(format!(
            "Pupil: {:?} is not a pupil id like p-7f3a9c.",
            body.pupil.trim()
        ))
    })?;
    let from = parse_time("From", &body.from).map_err(PageError::BadForm)?;
    let to = parse_time("To", &body.to).map_err(PageError::BadForm)?;
    if to <= from {
        return Err(PageError::BadForm("To must be after From.".into()));
    }
    if to - from > chrono::Duration::hours(12) {
        return Err(PageError::BadForm("A lesson cannot be longer than 12 hours.".into()));
    }
    let actor = staff.actor.clone();
    let check_pupil = pupil.clone();
    let saved = state
        .store
        .run(move |store| {
            if !store.pupil_known(&check_pupil)? {
                return Ok(false);
            }
            store.add_register_entry(device, &check_pupil, from, to, &actor, Utc::now())?;
            Ok(true)
        })
        .await?;
    if !saved {
        return Err(PageError::BadForm(format!(
            "Pupil: {pupil} is not on the roster (IT adds pupils with `slate-server pupil add`)."
        )));
    }
    staff.audit(&state, "recorded device register", Some(format!("device {device}"))).await?;
    Ok(Redirect::to(&format!("/devices/{device}")).into_response())
}

/// `GET /fleet`: every device, online or not, its software and last contact.
pub async fn fleet_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    staff.require(Permission::ViewFleet)?;
    let (fleet, refused) = state
        .store
        .run(|store| Ok((store.fleet()?, store.refused_devices(DEVICE_PAGE_ROWS)?)))
        .await?;
    Ok(layout::fleet_page(&staff.viewer(), &fleet, &refused, Utc::now()))
}

/// `GET /audit`: the newest entries of the audit log.
pub async fn audit_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    staff.require(Permission::ReadAudit)?;
    staff.audit(&state, "viewed audit log", None).await?;
    let log = state.store.run(|store| store.audit_log(AUDIT_PAGE_ROWS)).await?;
    Ok(layout::audit_page(&staff.viewer(), &log, AUDIT_PAGE_ROWS))
}

/// `GET /audit.csv`: the whole audit log.
pub async fn audit_csv(staff: Staff, State(state): State<AppState>) -> Result<Response, PageError> {
    staff.require(Permission::ReadAudit)?;
    staff.audit(&state, "exported audit log (CSV)", None).await?;
    let log = state.store.run(|store| store.audit_log(u32::MAX)).await?;
    Ok(csv_response("audit-log.csv", export::audit_csv(&log)))
}

#[derive(Deserialize)]
pub struct TermQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A date from a form, naming the field when it is not one.
fn parse_date(field: &str, text: &str) -> Result<chrono::NaiveDate, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{field}: {:?} is not a date like 2026-09-03.", text.trim()))
}

/// `GET /governors?from=D&to=D`: the anonymised termly report; by default the last 13 weeks.
pub async fn governors_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<TermQuery>, QueryRejection>,
) -> Result<Markup, PageError> {
    staff.require(Permission::GovernorReport)?;
    let Query(query) = query.map_err(|e| PageError::BadForm(e.body_text()))?;
    let today = Utc::now().date_naive();
    let from = match query.from.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse_date("From", text).map_err(PageError::BadForm)?,
        None => today - chrono::Duration::weeks(13),
    };
    let to = match query.to.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse_date("To", text).map_err(PageError::BadForm)?,
        None => today,
    };
    if to < from || to - from > chrono::Duration::days(400) {
        return Err(PageError::BadForm(
            "To must be after From, and within about a year of it.".into(),
        ));
    }
    let start = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let end =
        (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let facts = state.store.run(move |store| store.incident_facts(start, end)).await?;
    staff.audit(&state, "made governors' report", Some(format!("{from} to {to}"))).await?;
    let summary = crate::governors::summarise(&facts, from, to);
    Ok(layout::governors_page(&staff.viewer(), &summary))
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    limit: Option<u32>,
}

/// One report in the staff JSON API.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StaffReport {
    pub id: String,
    pub device: u16,
    pub pupil: Option<String>,
    pub session: Option<String>,
    pub pressed_at: chrono::DateTime<chrono::Utc>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub app: Option<String>,
    pub url: Option<String>,
    pub page_title: Option<String>,
    pub blank_latency_us: Option<u64>,
    /// Names the device looked up just before the press, newest first.
    pub recent_names: Vec<String>,
}

impl From<ReportRecord> for StaffReport {
    fn from(r: ReportRecord) -> Self {
        // No roster name here: the API carries pseudonymous ids only.
        Self {
            id: r.id,
            device: r.device,
            pupil: r.pupil,
            session: r.session,
            pressed_at: r.pressed_at,
            received_at: r.received_at,
            app: r.app,
            url: r.url,
            page_title: r.page_title,
            blank_latency_us: r.blank_latency_us,
            recent_names: r.recent_names,
        }
    }
}

/// `GET /api/v1/staff/reports?limit=N`: reports newest first, N from 0 to 1000 (default 100;
/// larger values are capped).
pub async fn reports_json(
    staff: StaffApi,
    State(state): State<AppState>,
    query: Result<Query<ReportsQuery>, QueryRejection>,
) -> Result<Json<Vec<StaffReport>>, ApiError> {
    staff.require(Permission::ViewIncidents)?;
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_API_LIMIT).min(MAX_API_LIMIT);
    let reports = state.store.run(move |store| store.reports(limit)).await?;
    staff.0.audit(&state, "read reports (API)", None).await?;
    Ok(Json(reports.into_iter().map(StaffReport::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_rfc3339_or_form_values_in_uk_time() {
        let expected: DateTime<Utc> = "2026-11-17T10:14:00Z".parse().unwrap();
        for text in [
            "2026-11-17T10:14",
            "2026-11-17 10:14",
            "2026-11-17T10:14:00Z",
            "2026-11-17T11:14:00+01:00",
        ] {
            assert_eq!(parse_time("Time", text), Ok(expected), "{text}");
        }
        let summer: DateTime<Utc> = "2026-06-17T10:14:00Z".parse().unwrap();
        assert_eq!(parse_time("Time", "2026-06-17T11:14"), Ok(summer), "BST is UTC+1");
        assert_eq!(parse_time("Time", "2026-06-17T10:14:00Z"), Ok(summer));
        assert!(parse_time("Time", "Tuesday").unwrap_err().starts_with("Time:"));
    }

    #[test]
    fn device_numbers_from_forms_are_checked() {
        assert_eq!(parse_device(" 12 ").unwrap().get(), 12);
        for bad in ["0", "10000", "twelve", ""] {
            assert!(parse_device(bad).unwrap_err().starts_with("Device:"), "{bad}");
        }
    }
}
