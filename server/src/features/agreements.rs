//! The school's own acceptable use agreements (issue 17): the DSL edits the KS1 and KS2 texts
//! (a title and short promises, as plain text, checked by `slate_protocol::agreement`), sees a
//! preview of what a pupil will see, saves a new version or goes back to the built-in text.
//! Every save is a version kept with its audit entry, and devices get the text in force in the
//! signed kiosk policy. Each version, and the built-in text, has a page of its own, so an
//! acceptance on a device page can be shown with the words accepted. No pupil data here.

use crate::access::{Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::AgreementVersion;
use crate::uk_time::format_uk;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use slate_protocol::agreement::{
    builtin, parse_text, stage_name, MAX_PROMISES, MAX_PROMISE_CHARS, MAX_TITLE_CHARS,
};
use slate_protocol::kiosk::KeyStage;
use std::collections::BTreeMap;

const STAGES: [KeyStage; 2] = [KeyStage::Ks1, KeyStage::Ks2];

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageAgreements);
    Routes::new()
        .get("/agreements", manage, agreements_page)
        .post("/agreements/{name}", manage, save_agreement)
        // Whoever sees acceptances on a device page may read what was accepted.
        .get("/agreements/{name}/{id}", Gate::Needs(Permission::LookUpDevice), version_page)
}

/// `ks1` or `ks2` from a path.
fn parse_stage(name: &str) -> Result<KeyStage, PageError> {
    match name {
        "ks1" => Ok(KeyStage::Ks1),
        "ks2" => Ok(KeyStage::Ks2),
        _ => Err(PageError::NotFound(format!("There is no key stage {name:?}: ks1 or ks2."))),
    }
}

fn stage_title(stage: KeyStage) -> &'static str {
    match stage {
        KeyStage::Ks1 => "EYFS and Key Stage 1",
        KeyStage::Ks2 => "Key Stage 2",
    }
}

/// The plain text a form starts from: the title, then each promise, one a line.
fn as_plain_text(title: &str, promises: &[String]) -> String {
    let mut text = format!("{title}\n");
    for promise in promises {
        text += promise;
        text += "\n";
    }
    text
}

/// A preview asked for, to show on the page in place of the stage's stored text.
struct Preview {
    stage: KeyStage,
    text: String,
    parsed: Result<(String, Vec<String>), String>,
}

/// `GET /agreements`.
pub async fn agreements_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let versions = load(&state).await?;
    Ok(page(&staff.viewer(), &versions, None))
}

async fn load(state: &AppState) -> Result<Vec<Vec<AgreementVersion>>, PageError> {
    Ok(state
        .store
        .run(|store| STAGES.iter().map(|s| store.agreement_versions(*s)).collect())
        .await?)
}

/// `POST /agreements/{ks1|ks2}`: `text`, `action` (`preview`, `save` or `builtin`), `csrf`.
pub async fn save_agreement(
    staff: Staff,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let fields = form(body)?;
    staff.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let stage = parse_stage(&name)?;
    let text = fields.get("text").cloned().unwrap_or_default();
    let actor = staff.actor.clone();
    let saved = match fields.get("action").map(String::as_str) {
        Some("preview") => {
            let parsed = parse_text(&text).map_err(|p| p.to_string());
            let versions = load(&state).await?;
            let preview = Preview { stage, text, parsed };
            return Ok(page(&staff.viewer(), &versions, Some(&preview)).into_response());
        }
        Some("save") => Some(parse_text(&text).map_err(|p| {
            PageError::BadForm(format!("{}: {}.", stage_title(stage), capitalise_problem(&p)))
        })?),
        Some("builtin") => None,
        _ => {
            return Err(PageError::BadForm(
                "Preview, save, or go back to the built-in text.".into(),
            ))
        }
    };
    let version = state
        .store
        .run(move |store| store.save_agreement(stage, saved, &actor, Utc::now()))
        .await?;
    if version.is_some() {
        // The policy change queued a refresh: wake the devices' long polls to fetch it now.
        state.commands_changed();
    }
    Ok(Redirect::to("/agreements").into_response())
}

fn capitalise_problem(problem: &slate_protocol::agreement::TextProblem) -> String {
    crate::http::forms::capitalise(&problem.to_string())
}

/// `GET /agreements/{ks1|ks2}/{version}`: one saved version's words; version 0 is this server's
/// built-in text.
pub async fn version_page(
    staff: Staff,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    let stage = parse_stage(&name)?;
    let not_found = || {
        PageError::NotFound(format!("The {} agreement has no version {id}.", stage_title(stage)))
    };
    let number: u32 = id.parse().map_err(|_| not_found())?;
    let title = format!("{} agreement", stage_title(stage));
    if number == 0 {
        let (heading, promises, text_version) = builtin(stage);
        let content = html! {
            h1 { (title) ": the built-in text" }
            p { "The text Slate devices show when the school has none of its own. Its version name is " code { (text_version) } "." }
            (shown(&heading, &promises))
        };
        return Ok(layout(Some(&staff.viewer()), &title, content));
    }
    let version = state
        .store
        .run(move |store| store.agreement_version(stage, number))
        .await?
        .ok_or_else(not_found)?;
    let content = html! {
        h1 { (title) ", version " (version.version) }
        p { "Saved by " (version.saved_by) " on " (format_uk(version.saved_at)) "." }
        @match &version.text {
            Some(text) => {
                p { "Version name " code { (text.text_version) } ": devices send it with each acceptance of this text." }
                (shown(&text.title, &text.promises))
            }
            None => p { "This version went back to the built-in text: " a href=(format!("/agreements/{}/0", stage_name(stage))) { "the built-in text" } "." },
        }
    };
    Ok(layout(Some(&staff.viewer()), &title, content))
}

/// The words as a pupil sees them: the title, then each promise on its own row.
fn shown(title: &str, promises: &[String]) -> Markup {
    html! {
        div.agreement-preview style="border: 2px solid #888; border-radius: 8px; padding: 0.5em 1em; max-width: 40em" {
            h2 { (title) }
            ul { @for promise in promises { li { (promise) } } }
        }
    }
}

fn page(viewer: &Viewer, versions: &[Vec<AgreementVersion>], preview: Option<&Preview>) -> Markup {
    let content = html! {
        h1 { "Acceptable use agreements" }
        p { "What a pupil sees, and agrees to with \"I agree\", each time they sign in on a Slate device. Each key stage shows the school's own text if it has one, else Slate's built-in text. Write a title on the first line, then one promise a line: at most " (MAX_PROMISES) " promises of " (MAX_PROMISE_CHARS) " characters, and a title of " (MAX_TITLE_CHARS) ", so that all of it fits on the screen and can be read aloud. Each save is a new version; old versions are kept, so the text a pupil accepted can always be shown." }
        p { "Devices whose software is older than this server's do not get the school's own text and keep showing the built-in one (each acceptance says which text it was) until they are updated (Updates)." }
        @for (stage, stage_versions) in STAGES.iter().zip(versions) {
            @let name = stage_name(*stage);
            @let in_force = stage_versions.first().and_then(|v| v.text.as_ref());
            @let (builtin_title, builtin_promises, builtin_version) = builtin(*stage);
            @let previewing = preview.filter(|p| p.stage == *stage);
            section id=(name) {
                h2 { (stage_title(*stage)) }
                @match in_force {
                    Some(text) => p { "Devices show the school's text, version " (text.version) " (" code { (text.text_version) } ")." },
                    None => p { "Devices show the built-in text (" code { (builtin_version) } ")." },
                }
                @if let Some(p) = previewing {
                    h3 { "Preview" }
                    @match &p.parsed {
                        Ok((title, promises)) => (shown(title, promises)),
                        Err(problem) => p.error role="alert" { (crate::http::forms::capitalise(problem)) "." },
                    }
                }
                @let text = match previewing {
                    Some(p) => p.text.clone(),
                    None => match in_force {
                        Some(t) => as_plain_text(&t.title, &t.promises),
                        None => as_plain_text(&builtin_title, &builtin_promises),
                    },
                };
                form.stack method="post" action=(format!("/agreements/{name}")) {
                    (csrf(viewer))
                    label for=(format!("{name}-text")) { "The " (stage_title(*stage)) " agreement: title, then one promise a line" }
                    textarea id=(format!("{name}-text")) name="text" rows="10" cols="80" { (text) }
                    div {
                        button type="submit" name="action" value="preview" { "Preview" } " "
                        button type="submit" name="action" value="save" { "Save as a new version" } " "
                        @if in_force.is_some() {
                            button type="submit" name="action" value="builtin" { "Go back to the built-in text" }
                        }
                    }
                }
                h3 { "Versions" }
                @if stage_versions.is_empty() {
                    p.empty { "None saved: devices show " a href=(format!("/agreements/{name}/0")) { "the built-in text" } "." }
                } @else {
                    table {
                        thead { tr { th { "Version" } th { "Saved" } th { "By" } th { "Text" } } }
                        tbody {
                            @for v in stage_versions {
                                tr {
                                    td { a href=(format!("/agreements/{name}/{}", v.version)) { (v.version) } }
                                    td { (format_uk(v.saved_at)) }
                                    td { (v.saved_by) }
                                    td {
                                        @match &v.text {
                                            Some(t) => { (t.title) " (" (t.promises.len()) " promises, " code { (t.text_version) } ")" }
                                            None => "back to the built-in text",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(Some(viewer), "Acceptable use agreements", content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_text_round_trips_through_the_plain_text() {
        for stage in STAGES {
            let (title, promises, _) = builtin(stage);
            let text = as_plain_text(&title, &promises);
            assert_eq!(parse_text(&text), Ok((title, promises)), "{stage:?}");
        }
        assert!(parse_stage("ks3").is_err());
        assert_eq!(parse_stage("ks2").unwrap(), KeyStage::Ks2);
    }
}
