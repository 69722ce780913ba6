//! One pupil's chronology for the DSL: reports, "tell my teacher", blocked attempts in harmful
//! categories, sessions and the history of their incidents, newest first, as a page and a CSV.
//! Case-file reading: DSL and deputy only, audited by pupil id. Lines are `chronology`'s,
//! queries `store`'s.

mod views;

use crate::access::{Gate, Permission};
use crate::chronology::{self, HARMFUL_LISTS, ROWS_PER_KIND};
use crate::export;
use crate::http::error::PageError;
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::{csv_response, AppState};
use crate::store::{IncidentFilter, PupilRecord};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::Markup;
use slate_protocol::PupilId;

pub fn routes() -> Routes {
    let case_file = Gate::Needs(Permission::ReadCaseFile);
    Routes::new().get("/pupils/{id}", case_file, chronology_page).get(
        "/pupils/{id}/export.csv",
        case_file,
        chronology_csv,
    )
}

/// Everything the chronology shows of one pupil.
struct Chronology {
    /// The roster's entry; `None` for a pupil since removed from the roster.
    pupil: Option<PupilRecord>,
    id: String,
    lines: Vec<chronology::Line>,
}

async fn load(
    staff: &Staff,
    state: &AppState,
    id: &str,
    did: &str,
) -> Result<Chronology, PageError> {
    let id = PupilId::new(id.trim())
        .map_err(|_| PageError::NotFound("no pupil has this id".into()))?
        .as_str()
        .to_owned();
    let key = id.clone();
    let (pupil, incidents, blocked, sessions, history) = state
        .store
        .run(move |store| {
            let filter = IncidentFilter { pupil: Some(key.clone()), ..IncidentFilter::default() };
            Ok((
                store.pupil(&key)?,
                store.search_incidents(&filter, ROWS_PER_KIND, 0)?,
                store.pupil_blocked(&key, &HARMFUL_LISTS, ROWS_PER_KIND)?,
                store.pupil_sessions(&key, ROWS_PER_KIND)?,
                store.pupil_incident_history(&key, ROWS_PER_KIND)?,
            ))
        })
        .await?;
    let lines = chronology::lines(&incidents, &blocked, &sessions, &history);
    if pupil.is_none() && lines.is_empty() {
        return Err(PageError::NotFound("no pupil has this id".into()));
    }
    staff.audit(state, did, Some(format!("pupil {id}"))).await?;
    Ok(Chronology { pupil, id, lines })
}

/// `GET /pupils/{id}`.
pub async fn chronology_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let found = load(&staff, &state, &id, "viewed pupil chronology").await?;
    Ok(views::chronology_page(&staff.viewer(), found.pupil.as_ref(), &found.id, &found.lines))
}

/// `GET /pupils/{id}/export.csv`: the same lines, for the pupil's file.
pub async fn chronology_csv(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let found = load(&staff, &state, &id, "exported pupil chronology (CSV)").await?;
    let label = match &found.pupil {
        Some(p) => format!("{} ({}), {}", p.name, p.id, p.class),
        None => found.id.clone(),
    };
    let body = export::chronology_csv(&label, &found.lines);
    Ok(csv_response(&format!("pupil-{}.csv", found.id), body))
}
