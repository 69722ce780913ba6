//! "Record an incident": a teacher or the DSL records by hand an incident that no report
//! button filed (seed 002: inadvertent access on any school equipment is an online safety
//! incident, and an incident report is completed; appendices I and J give the fields). A
//! teacher records about their own classes' pupils only; the DSL and deputy about any pupil.
//! The incident then follows the same workflow, alerts and exports as a device's report: the
//! form's rules are `incident::check_recorded`, the writing `Store::record_incident`.

use crate::access::{Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::{AppState, LiveReport};
use crate::incident::{check_recorded, FieldProblem, RecordFields, CATEGORIES};
use crate::store::RosterName;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Routes {
    let record = Gate::Needs(Permission::RecordIncident);
    Routes::new().get("/incidents/record", record, record_page).post(
        "/incidents/record",
        record,
        record_incident,
    )
}

/// The pupils this member of staff may record about: their own classes' for a teacher, the
/// whole roster for the DSL and deputy.
async fn pupils_for(staff: &Staff, state: &AppState) -> Result<Vec<RosterName>, PageError> {
    if staff.may(Permission::ReadCaseFile) {
        return Ok(state.store.run(|store| store.roster_names()).await?);
    }
    let teacher = staff.actor.clone();
    Ok(state.store.run(move |store| store.teacher_roster_names(&teacher)).await?)
}

/// `GET /incidents/record`: the form, its time set to now (UK time).
pub async fn record_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    let pupils = pupils_for(&staff, &state).await?;
    let fields =
        RecordFields { happened_at: now_for_the_form(Utc::now()), ..RecordFields::default() };
    Ok(form_page(&staff.viewer(), &pupils, &fields, &[]))
}

/// A `datetime-local` value for `now` in UK time, to the minute.
fn now_for_the_form(now: chrono::DateTime<Utc>) -> String {
    now.with_timezone(&chrono_tz::Europe::London).format("%Y-%m-%dT%H:%M").to_string()
}

#[derive(Deserialize)]
pub struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: RecordFields,
}

/// `POST /incidents/record`: a form that does not check out comes back with what was typed
/// and each problem beside its field (400); a pupil outside a teacher's classes is refused
/// (403); otherwise the incident, its first history line and its alert are stored together.
pub async fn record_incident(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RecordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let pupils = pupils_for(&staff, &state).await?;
    let refused = |problems: &[FieldProblem]| {
        let page = form_page(&staff.viewer(), &pupils, &body.fields, problems);
        Ok((StatusCode::BAD_REQUEST, page).into_response())
    };
    let recorded = match check_recorded(&body.fields, Utc::now()) {
        Ok(recorded) => recorded,
        Err(problems) => return refused(&problems),
    };
    if !pupils.iter().any(|p| p.id == recorded.pupil) {
        if !staff.may(Permission::ReadCaseFile) {
            return Err(PageError::NotAllowed(
                "You can record incidents about the pupils of your own classes. For another pupil, tell the DSL.".into(),
            ));
        }
        return refused(&[FieldProblem {
            field: "pupil",
            message: "Pupil: choose the pupil from the list (they are not on the roster).".into(),
        }]);
    }
    let actor = staff.actor.clone();
    let (device, happened_at) = (recorded.device, recorded.happened_at);
    let incident =
        state.store.run(move |store| store.record_incident(&recorded, &actor, Utc::now())).await?;
    // Ids only in the log and the audit: the pupil is in the record, not here.
    tracing::info!(incident, device, "incident recorded by hand");
    staff.audit(&state, "recorded incident", Some(format!("incident {incident}"))).await?;
    // The open lists show it; the outbox's worker sends the alert it already holds.
    let _ = state.live.send(LiveReport { incident, device, pressed_at: happened_at });
    state.alerts.notify_one();
    Ok(recorded_page(&staff, incident).into_response())
}

/// After recording: the DSL goes on to the incident; a teacher, who has no case file, is told
/// it is with the DSL.
fn recorded_page(staff: &Staff, incident: i64) -> Markup {
    let viewer = staff.viewer();
    layout(
        Some(&viewer),
        "Incident recorded",
        html! {
            h1 { "Incident " (incident) " recorded" }
            p.ok role="status" { "The DSL has been alerted and will record what happens next." }
            @if staff.may(Permission::ReadCaseFile) {
                p { a href={ "/incidents/" (incident) } { "Open incident " (incident) } }
            }
            p { a href="/incidents/record" { "Record another incident" } }
        },
    )
}

/// The form, with what was typed and each problem beside its field.
fn form_page(
    viewer: &Viewer,
    pupils: &[RosterName],
    typed: &RecordFields,
    problems: &[FieldProblem],
) -> Markup {
    let problem = |field: &str| -> Markup {
        html! {
            @for p in problems.iter().filter(|p| p.field == field) {
                p.error id={ (field) "-error" } role="alert" { (p.message) }
            }
        }
    };
    let mut classes: Vec<(&str, Vec<&RosterName>)> = Vec::new();
    for p in pupils {
        match classes.last_mut() {
            Some((class, members)) if *class == p.class_name => members.push(p),
            _ => classes.push((&p.class_name, vec![p])),
        }
    }
    layout(
        Some(viewer),
        "Record an incident",
        html! {
            h1 { "Record an online safety incident" }
            p.muted {
                "For something you saw or were told of that no report button filed: inadvertent access on any school equipment, at school or at home. "
                "The DSL is alerted at once. Describe what was seen in words: never copy, print or forward an image."
            }
            @if !problems.is_empty() {
                p.error role="alert" { "Please check the form: " (problems.len()) " field(s) need attention, each marked below." }
            }
            @if pupils.is_empty() {
                p.empty { "There are no pupils in your classes on the roster. Ask IT to link your account to your classes, or tell the DSL." }
            } @else {
                form.stack method="post" action="/incidents/record" {
                    (csrf(viewer))
                    label for="happened_at" { "When it happened (UK time)" }
                    input #happened_at name="happened_at" type="datetime-local" value=(typed.happened_at) required;
                    (problem("happened_at"))
                    label for="pupil" { "The pupil" }
                    select #pupil name="pupil" required {
                        option value="" { "Choose a pupil" }
                        @for (class, members) in &classes {
                            optgroup label=(class) {
                                @for p in members {
                                    option value=(p.id.as_str()) selected[p.id.as_str() == typed.pupil.trim()] { (p.name) }
                                }
                            }
                        }
                    }
                    (problem("pupil"))
                    label for="others" { "Anyone else involved (optional; first name and initial)" }
                    input #others name="others" value=(typed.others);
                    (problem("others"))
                    label for="device" { "Device number (optional)" }
                    input #device name="device" inputmode="numeric" value=(typed.device);
                    (problem("device"))
                    label for="place" { "Where, in words (if no device number: \"iPad in Year 5\", \"home\")" }
                    input #place name="place" value=(typed.place);
                    (problem("place"))
                    label for="category" { "Kind of concern" }
                    select #category name="category" required {
                        option value="" { "Choose a kind" }
                        @for (value, label) in CATEGORIES {
                            option value=(value) selected[value == typed.category.trim()] { (label) }
                        }
                    }
                    (problem("category"))
                    label for="description" { "What was seen or happened" }
                    textarea #description name="description" rows="5" required { (typed.description) }
                    (problem("description"))
                    label for="action_taken" { "Action taken so far (optional)" }
                    textarea #action_taken name="action_taken" rows="3" { (typed.action_taken) }
                    (problem("action_taken"))
                    p.muted { "Recorded by " (viewer.name) "." }
                    button type="submit" { "Record the incident" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_starts_at_now_in_uk_time() {
        let winter = "2026-11-17T10:14:59Z".parse().unwrap();
        assert_eq!(now_for_the_form(winter), "2026-11-17T10:14");
        let summer = "2026-06-17T10:14:00Z".parse().unwrap();
        assert_eq!(now_for_the_form(summer), "2026-06-17T11:14");
    }
}
