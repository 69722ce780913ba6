//! Incidents, as the DSL's desk shows them: the list (with live updates), one incident and its
//! workflow (acknowledge, action taken, reopen, notes, the incident record), exports (CSV, PDF,
//! the incident log) and the staff JSON API's reports; for a teacher, their own classes' new
//! reports to acknowledge. Each route's gate checks the role (`access`); handlers narrow a
//! teacher to their classes and write the audit log; rules live in `incident`, queries in
//! `store`, CSV in `export`, the PDF in `pdf`.

mod search;
mod views;

use crate::access::{Gate, Permission};
use crate::export;
use crate::http::error::{ApiError, PageError};
use crate::http::forms::{capitalise, form, page_query};
use crate::http::layout::when;
use crate::http::paged_export::{csv_pages, page_of, EXPORT_PAGE_ROWS};
use crate::http::routes::Routes;
use crate::http::staff::{Staff, StaffApi};
use crate::http::{csv_response, AppState, LiveReport};
use crate::incident::{self, Action, Step};
use crate::store::{IncidentEntry, IncidentRecord, ReportRecord, StepError, Store};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::Utc;
use maud::Markup;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tokio_stream::StreamExt as _;

/// A teacher's new reports on their page.
const PAGE_REPORTS: u32 = 500;
const DEFAULT_API_LIMIT: u32 = 100;
const MAX_API_LIMIT: u32 = 1000;

const LIVE_JS: &str = include_str!("live.js");

pub fn routes() -> Routes {
    let new_reports = Gate::Needs(Permission::SeeNewReports);
    let case_file = Gate::Needs(Permission::ReadCaseFile);
    let move_incident = Gate::Needs(Permission::MoveIncident);
    Routes::new()
        .get("/static/live.js", Gate::Public, live_js)
        .get("/reports", new_reports, reports_page)
        .get("/reports/live", case_file, live)
        .get("/reports/since", case_file, reports_since)
        .get("/reports.csv", case_file, log_csv)
        .get("/incidents/{id}", case_file, incident_page)
        .get("/incidents/{id}/export.csv", case_file, incident_csv)
        .get("/incidents/{id}/export.pdf", case_file, incident_pdf)
        .post("/incidents/{id}/acknowledge", Gate::Needs(Permission::Acknowledge), acknowledge)
        .post("/incidents/{id}/action", move_incident, record_action)
        .post("/incidents/{id}/reopen", move_incident, reopen)
        .post("/incidents/{id}/note", move_incident, add_note)
        .post("/incidents/{id}/details", move_incident, save_details)
        .get("/api/v1/staff/reports", case_file, reports_json)
}

/// `GET /static/live.js`: adds new reports to the open list without a reload.
pub async fn live_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS).into_response()
}

/// `GET /reports`: for the DSL every incident, newest first, a page at a time, updating live,
/// or those a search allows (`?from=&to=&class=&device=&state=&category=&pupil=&page=`); for a
/// teacher the new reports from their own classes, to go to the device and acknowledge.
pub async fn reports_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<search::SearchForm>, QueryRejection>,
) -> Result<Markup, PageError> {
    if !staff.may(Permission::ReadCaseFile) {
        let teacher = staff.actor.clone();
        let reports =
            state.store.run(move |store| store.teacher_new_reports(&teacher, PAGE_REPORTS)).await?;
        staff.audit(&state, "viewed own classes' new reports", None).await?;
        return Ok(views::new_reports_page(&staff.viewer(), &reports));
    }
    // A query string that is not even a form (a field given twice, say) is said, not guessed at.
    let (form, checked) = match query {
        Ok(Query(form)) => {
            let checked = form.check();
            (form, checked)
        }
        Err(_) => (
            search::SearchForm::default(),
            Err(vec!["The search in the address could not be read: search again below.".into()]),
        ),
    };
    let classes = state.store.run(|store| store.classes()).await?;
    let classes: Vec<String> = classes.into_iter().map(|c| c.name).collect();
    let (page, incidents) = match &checked {
        Ok(search) => {
            let filter = search.filter.clone();
            let offset = (search.page - 1) * search::PAGE_SIZE;
            // One more than a page, to know whether a next page exists without counting.
            let found = state
                .store
                .run(move |store| store.search_incidents(&filter, search::PAGE_SIZE + 1, offset))
                .await?;
            (search.page, found)
        }
        Err(_) => (1, Vec::new()),
    };
    let action = if form.narrows() { "searched incident list" } else { "viewed incident list" };
    staff.audit(&state, action, None).await?;
    let list = views::IncidentList {
        form: &form,
        problems: checked.as_ref().err().map(Vec::as_slice).unwrap_or_default(),
        classes: &classes,
        page,
        has_next: incidents.len() > search::PAGE_SIZE as usize,
        incidents: &incidents[..incidents.len().min(search::PAGE_SIZE as usize)],
    };
    Ok(views::reports_page(&staff.viewer(), &list, Utc::now()))
}

/// How often an open list hears from the server when nothing else happens: each time keeps
/// the DSL's session alive and tells the page the stream still works. The page counts the
/// stream as down after missing two ([`views::reports_page`] tells it this period).
pub const LIVE_TICK: std::time::Duration = std::time::Duration::from_secs(15);

/// One incident as a live row of the list: ids and times only, never a pupil's name, with
/// the time as staff read it (UK time, zone named) so the page never formats a time itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRow {
    pub incident: i64,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
    pub pressed: String,
    pub status: String,
}

impl LiveRow {
    fn of_report(report: &LiveReport) -> LiveRow {
        LiveRow {
            incident: report.incident,
            device: report.device,
            pressed: when(report.pressed_at),
            status: incident::Status::New.label(),
        }
    }

    fn of_incident(incident: &IncidentRecord) -> LiveRow {
        LiveRow {
            incident: incident.id,
            device: incident.report.device,
            pressed: when(incident.report.pressed_at),
            status: incident.status.label(),
        }
    }
}

/// `GET /reports/live`: server-sent events: `report` (a [`LiveRow`]) for each new report,
/// `alive` (the server's time, as staff read it) after each and every [`LIVE_TICK`] while the
/// session lasts,
/// `missed` when this stream fell behind (the page fetches `/reports/since`), and
/// `signed-out` when the session has ended, which ends the stream.
pub async fn live(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, PageError> {
    staff.audit(&state, "opened live incident list", None).await?;
    // Subscribed before the answer starts, so a page that catches up once the stream is open
    // misses nothing in between.
    let reports = state.live.subscribe();
    let (events, stream) = tokio::sync::mpsc::channel(16);
    tokio::spawn(feed_live_list(staff, state, reports, events));
    Ok(Sse::new(ReceiverStream::new(stream).map(Ok)).keep_alive(KeepAlive::default()))
}

/// Feeds one open list until its page goes away, its session ends or the server shuts down
/// (ending the stream, so shutdown need not wait for open lists to close).
async fn feed_live_list(
    staff: Staff,
    state: AppState,
    mut reports: tokio::sync::broadcast::Receiver<LiveReport>,
    events: tokio::sync::mpsc::Sender<SseEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut tick = tokio::time::interval(LIVE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = state.closing.subscribe();
    if *closing.borrow_and_update() {
        return;
    }
    loop {
        let event = tokio::select! {
            changed = closing.changed() => match changed {
                Ok(()) if !*closing.borrow_and_update() => continue,
                _ => return,
            },
            () = events.closed() => return,
            report = reports.recv() => match report {
                Ok(report) => {
                    if events.send(json_event("report", &LiveRow::of_report(&report))).await.is_err() {
                        return;
                    }
                    // The page's "last update" is the server's time, not the device's.
                    json_event("alive", &when(Utc::now()))
                }
                Err(RecvError::Lagged(_)) => SseEvent::default().event("missed").data(""),
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => match staff.still_signed_in(&state).await {
                Ok(true) => json_event("alive", &when(Utc::now())),
                Ok(false) => {
                    let _ = events.send(SseEvent::default().event("signed-out").data("")).await;
                    return;
                }
                Err(error) => {
                    // The page sees the stream end and tries again.
                    tracing::warn!(%error, "live incident list: session check failed");
                    return;
                }
            },
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

fn json_event(name: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default().event(name).json_data(data).unwrap_or_else(|_| SseEvent::default())
}

#[derive(Deserialize)]
pub struct SinceQuery {
    #[serde(default)]
    after: i64,
}

/// `GET /reports/since?after=N`: the incidents after incident N, as live rows, newest first,
/// for an open list catching up after its live updates were down. Its status also tells the
/// page whether the DSL is still signed in (its gate answers 401 when not).
pub async fn reports_since(
    State(state): State<AppState>,
    query: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Json<Vec<LiveRow>>, PageError> {
    let query = page_query(query)?;
    let after = query.after;
    let missed = state.store.run(move |store| store.incidents_after(after, PAGE_REPORTS)).await?;
    Ok(Json(missed.iter().map(LiveRow::of_incident).collect()))
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

/// Loads an incident (its route's gate has let a reader of case files through), and audits
/// that they `did` something with it: every view or export of an incident is in the audit log.
async fn open_incident(
    staff: &Staff,
    state: &AppState,
    id: &str,
    did: &str,
) -> Result<(i64, IncidentRecord, Vec<IncidentEntry>), PageError> {
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
    let (_, incident, entries) = open_incident(&staff, &state, &id, "viewed incident").await?;
    Ok(views::incident_page(&staff.viewer(), &incident, &entries))
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
    /// "I am sure", ticked: needed for a step that closes the incident.
    #[serde(default)]
    confirm: Option<String>,
}

/// A workflow form, its CSRF token checked, with its note (`None` when left empty).
fn step_form(
    staff: &Staff,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<(StepForm, Option<String>), PageError> {
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let note = incident::check_text("Note", &body.note, incident::MAX_FIELD_CHARS)
        .map_err(PageError::BadForm)?;
    Ok((body, note))
}

fn step_error(id: i64, error: StepError) -> PageError {
    match error {
        StepError::NotFound => PageError::NotFound(format!("There is no incident {id}.")),
        StepError::Workflow(e) => PageError::Conflict(format!("{}.", capitalise(&e.to_string()))),
        StepError::Store(e) => PageError::Storage(e),
    }
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
    // A teacher has no case file to go back to: back to their list.
    let back = if staff.may(Permission::ReadCaseFile) {
        format!("/incidents/{id}")
    } else {
        "/reports".into()
    };
    Ok(Redirect::to(&back).into_response())
}

/// `POST /incidents/{id}/acknowledge`.
pub async fn acknowledge(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (_, note) = step_form(&staff, body)?;
    if !staff.may(Permission::ReadCaseFile) {
        // A teacher acknowledges their own classes' new reports; any other is not there for them.
        let number = parse_incident(&id)?;
        let teacher = staff.actor.clone();
        let theirs =
            state.store.run(move |store| store.teacher_new_report(&teacher, number)).await?;
        if theirs.is_none() {
            return Err(PageError::NotFound(format!("There is no new report {number} for you.")));
        }
    }
    take_step(staff, state, id, Step::Acknowledge, note).await
}

/// `POST /incidents/{id}/action`: `action` is one of the workflow's actions.
pub async fn record_action(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (body, note) = step_form(&staff, body)?;
    let action = Action::parse(&body.action)
        .ok_or_else(|| PageError::BadForm("Choose what was done from the list.".into()))?;
    incident::check_step_form(action, body.confirm.as_deref() == Some("yes"), note.as_deref())
        .map_err(PageError::BadForm)?;
    take_step(staff, state, id, Step::Act(action), note).await
}

/// `POST /incidents/{id}/reopen`: an incident with an action recorded (a false alarm too) goes
/// back to acknowledged, for the DSL to look again.
pub async fn reopen(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (_, note) = step_form(&staff, body)?;
    take_step(staff, state, id, Step::Reopen, note).await
}

/// `POST /incidents/{id}/note`.
pub async fn add_note(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<StepForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (_, note) = step_form(&staff, body)?;
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

/// `GET /incidents/{id}/export.csv`: one incident's record and history.
pub async fn incident_csv(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, incident, entries) =
        open_incident(&staff, &state, &id, "exported incident (CSV)").await?;
    Ok(csv_response(&format!("incident-{id}.csv"), export::incident_csv(&incident, &entries)))
}

/// `GET /incidents/{id}/export.pdf`: one incident's record, printable.
pub async fn incident_pdf(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, incident, entries) =
        open_incident(&staff, &state, &id, "exported incident (PDF)").await?;
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

/// `GET /reports.csv`: the incident log (seed 002 appendix K), every incident, streamed page by
/// page from the store's read-only connection.
pub async fn log_csv(staff: Staff, State(state): State<AppState>) -> Result<Response, PageError> {
    staff.audit(&state, "exported incident log (CSV)", None).await?;
    let head = export::log_csv_head();
    Ok(csv_pages(state.store.clone(), "incident-log.csv", "incident log", head, |store, after| {
        Ok(page_of(store.incident_log_after(after, EXPORT_PAGE_ROWS)?, export::log_csv_rows))
    }))
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    limit: Option<u32>,
}

/// One report in the staff JSON API.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StaffReport {
    pub id: String,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
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
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_API_LIMIT).min(MAX_API_LIMIT);
    let reports = state.store.run(move |store| store.reports(limit)).await?;
    staff.0.audit(&state, "read reports (API)", None).await?;
    Ok(Json(reports.into_iter().map(StaffReport::from).collect()))
}
