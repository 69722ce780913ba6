//! One pupil's chronology for the DSL: reports, "tell my teacher", blocked attempts in harmful
//! categories, sessions and the history of their incidents, newest first, as a page and a CSV.
//! Case-file reading: DSL and deputy only, audited by pupil id. Lines are `chronology`'s,
//! queries `store`'s.
//!
//! And the roster's pupils for whoever manages school setup (the DSL, deputies and IT, as the
//! roster import): change a pupil's names and class, or mark them as left, which takes them off
//! devices and keeps their records. Each change audited by pupil id and the fields changed,
//! never the names.

mod views;

use crate::access::{Gate, Permission};
use crate::chronology::{self, HARMFUL_LISTS, ROWS_PER_KIND};
use crate::export;
use crate::http::error::PageError;
use crate::http::forms::{capitalise, form};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::{csv_response, AppState};
use crate::roster::{self, NextClass, PupilEdit};
use crate::store::{IncidentFilter, PupilChange, PupilRecord};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{Redirect, Response};
use chrono::Utc;
use maud::Markup;
use serde::Deserialize;
use slate_protocol::PupilId;

pub fn routes() -> Routes {
    let case_file = Gate::Needs(Permission::ReadCaseFile);
    let manage = Gate::Needs(Permission::ManagePolicy);
    Routes::new()
        .get("/pupils", manage, roster_page)
        .post("/pupils/rollover", manage, roll_over)
        .post("/pupils/{id}/edit", manage, edit_pupil)
        .post("/pupils/{id}/leave", manage, mark_left)
        .get("/pupils/{id}", case_file, chronology_page)
        .get("/pupils/{id}/export.csv", case_file, chronology_csv)
}

/// `GET /pupils`: every pupil on the roster, each with their change form.
pub async fn roster_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    let (pupils, classes) =
        state.store.run(|store| Ok((store.roster_pupils()?, store.classes()?))).await?;
    staff.audit(&state, "viewed pupils", None).await?;
    let classes: Vec<String> = classes.into_iter().map(|c| c.name).collect();
    Ok(views::roster_page(&staff.viewer(), &pupils, &classes))
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    class: String,
}

fn pupil_id(id: &str) -> Result<PupilId, PageError> {
    PupilId::new(id.trim()).map_err(|_| PageError::NotFound("no pupil has this id".into()))
}

/// `POST /pupils/{id}/edit`: new names and class, checked as the roster file's rows are.
pub async fn edit_pupil(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<EditForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let pupil = pupil_id(&id)?;
    let edit = PupilEdit::parse(&f.first_name, &f.family_name, &f.class).map_err(|problems| {
        let sentences: Vec<String> = problems
            .iter()
            .map(|(field, problem)| format!("{}: {problem}.", capitalise(field)))
            .collect();
        PageError::BadForm(format!("Nothing was changed. {}", sentences.join(" ")))
    })?;
    let key = pupil.clone();
    let class_to = edit.class.clone();
    let change = state.store.run(move |store| store.edit_pupil(&key, &edit, Utc::now())).await?;
    let detail = match change {
        PupilChange::NoSuchPupil => {
            return Err(PageError::NotFound("no pupil on the roster has this id".into()))
        }
        PupilChange::NoSuchClass => return Err(PageError::BadForm(
            "Nothing was changed. Class: no class has this name; add it under School setup first."
                .into(),
        )),
        PupilChange::Changed { class_from, first_name_changed, family_name_changed } => {
            change_detail(&class_from, &class_to, first_name_changed, family_name_changed)
        }
    };
    staff
        .audit(&state, "changed pupil", Some(format!("pupil {}: {detail}", pupil.as_str())))
        .await?;
    state.commands_changed();
    Ok(Redirect::to("/pupils"))
}

/// What an edit changed, for the audit log: classes by name, names only as "changed".
fn change_detail(class_from: &str, class_to: &str, first: bool, family: bool) -> String {
    let mut parts = Vec::new();
    if class_from != class_to {
        parts.push(format!("class {class_from} to {class_to}"));
    }
    if first {
        parts.push("first name changed".to_owned());
    }
    if family {
        parts.push("family name changed".to_owned());
    }
    if parts.is_empty() {
        "nothing changed".to_owned()
    } else {
        parts.join(", ")
    }
}

#[derive(Deserialize)]
pub struct LeaveForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /pupils/{id}/leave`: off devices at the next policy; records kept.
pub async fn mark_left(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<LeaveForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let pupil = pupil_id(&id)?;
    let key = pupil.clone();
    let marked = state.store.run(move |store| store.mark_pupil_left(&key, Utc::now())).await?;
    if !marked {
        return Err(PageError::NotFound("no pupil on the roster has this id".into()));
    }
    staff.audit(&state, "marked pupil as left", Some(format!("pupil {}", pupil.as_str()))).await?;
    state.commands_changed();
    Ok(Redirect::to("/pupils"))
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
    let (pupil, incidents, blocked, sessions, history, agreements) = state
        .store
        .run(move |store| {
            let filter = IncidentFilter { pupil: Some(key.clone()), ..IncidentFilter::default() };
            Ok((
                store.pupil(&key)?,
                store.search_incidents(&filter, ROWS_PER_KIND, 0)?,
                store.pupil_blocked(&key, &HARMFUL_LISTS, ROWS_PER_KIND)?,
                store.pupil_sessions(&key, ROWS_PER_KIND)?,
                store.pupil_incident_history(&key, ROWS_PER_KIND)?,
                store.pupil_agreements(&key, ROWS_PER_KIND)?,
            ))
        })
        .await?;
    let lines = chronology::lines(&incidents, &blocked, &sessions, &history, &agreements);
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

/// `POST /pupils/rollover`: the year-end rollover, every class at once; pupils keep their ids.
pub async fn roll_over(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Redirect, PageError> {
    let fields = form(body)?;
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    staff.check_csrf(field("csrf").unwrap_or_default())?;
    if field("confirm") != Some("yes") {
        return Err(PageError::BadForm(
            "Nothing was changed. Tick the box to say every class's next class is checked.".into(),
        ));
    }
    let classes: Vec<String> =
        state.store.run(|store| Ok(store.classes()?.into_iter().map(|c| c.name).collect())).await?;
    let plan = roster::plan_rollover(&classes, &fields).map_err(|problems| {
        PageError::BadForm(format!("Nothing was changed. {}.", problems.join(". ")))
    })?;
    let detail = rollover_detail(&plan);
    let (moved, left) = state.store.run(move |store| store.roll_over(&plan, Utc::now())).await?;
    let record = format!("{detail} ({moved} moved, {left} marked as left)");
    staff.audit(&state, "rolled over classes", Some(record)).await?;
    state.commands_changed();
    Ok(Redirect::to("/pupils"))
}

/// The rollover in words for the audit log: "Year 5 to Year 6, Year 6 to leavers".
fn rollover_detail(plan: &[(String, NextClass)]) -> String {
    let parts: Vec<String> = plan
        .iter()
        .filter_map(|(class, next)| match next {
            NextClass::Stays => None,
            NextClass::MovesTo(next) => Some(format!("{class} to {next}")),
            NextClass::Leaves => Some(format!("{class} to leavers")),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_says_what_changed_never_the_names() {
        let cases = [
            (("Oak", "Ash", false, false), "class Oak to Ash"),
            (("Oak", "Oak", true, false), "first name changed"),
            (
                ("Oak", "Ash", true, true),
                "class Oak to Ash, first name changed, family name changed",
            ),
            (("Oak", "Oak", false, false), "nothing changed"),
        ];
        for ((from, to, first, family), words) in cases {
            assert_eq!(change_detail(from, to, first, family), words);
        }
        let plan = [
            ("Oak".to_owned(), NextClass::Stays),
            ("Year 5".to_owned(), NextClass::MovesTo("Year 6".into())),
            ("Year 6".to_owned(), NextClass::Leaves),
        ];
        assert_eq!(rollover_detail(&plan), "Year 5 to Year 6, Year 6 to leavers");
    }
}
