//! The language of the pupils' screens (issue 17): staff set the school's language and any
//! class that differs, devices get them in the signed kiosk policy (only a device that asks
//! with `can=languages`; others keep English). The server's config `[languages]` seeds the
//! defaults: it is in force until the first save here, and the page's settings win after (the
//! page says so when the config has a `[languages]` it now overrides). Each save is audited and
//! wakes the devices, which fetch the new policy at once. No pupil data here.

use crate::access::{Gate, Permission};
use crate::device_policy::{ClassRecord, Languages};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use slate_protocol::kiosk::LANGUAGES;
use std::collections::BTreeMap;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageLanguages);
    Routes::new().get("/languages", manage, languages_page).post("/languages", manage, save)
}

/// A class's field in the form: by id, so any class name travels safely.
fn class_field(class: &ClassRecord) -> String {
    format!("class-{}", class.id)
}

/// The form's fields as languages: `school` one of [`LANGUAGES`], each `class-<id>` a known
/// class with one of them or empty (the school's), `csrf` (checked by the caller). Anything
/// else is refused by name. Pure.
fn parse_form(
    fields: &BTreeMap<String, String>,
    classes: &[ClassRecord],
) -> Result<Languages, String> {
    let known = |code: &str| LANGUAGES.iter().any(|(c, _)| *c == code);
    let school = fields.get("school").map(String::as_str).unwrap_or("");
    if !known(school) {
        return Err(format!("Choose the school's language: {school:?} is not one Slate has."));
    }
    let mut chosen = BTreeMap::new();
    for (name, value) in fields {
        if name == "school" || name == "csrf" {
            continue;
        }
        let class = classes
            .iter()
            .find(|c| class_field(c) == *name)
            .ok_or_else(|| format!("There is no class {name:?}: reload the page."))?;
        match value.as_str() {
            "" => {}
            code if known(code) => {
                chosen.insert(class.name.clone(), code.to_owned());
            }
            other => return Err(format!("{}: {other:?} is not a language Slate has.", class.name)),
        }
    }
    Ok(Languages::normalised(Some(school.to_owned()), chosen))
}

/// `GET /languages`.
pub async fn languages_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let (classes, saved) =
        state.store.run(|store| Ok((store.classes()?, store.saved_languages()?))).await?;
    Ok(page(&staff.viewer(), &classes, saved.as_ref(), &state.config.languages))
}

/// `POST /languages`: `school`, `class-<id>` per class, `csrf`.
pub async fn save(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let fields = form(body)?;
    staff.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let classes = state.store.run(|store| store.classes()).await?;
    let languages = parse_form(&fields, &classes).map_err(PageError::BadForm)?;
    let actor = staff.actor.clone();
    let changed =
        state.store.run(move |store| store.save_languages(&languages, &actor, Utc::now())).await?;
    if changed {
        // The policy change queued a refresh: wake the devices' long polls to fetch it now.
        state.commands_changed();
    }
    Ok(Redirect::to("/languages").into_response())
}

fn language_name(code: &str) -> &str {
    LANGUAGES.iter().find(|(c, _)| *c == code).map_or(code, |(_, name)| name)
}

fn page(
    viewer: &Viewer,
    classes: &[ClassRecord],
    saved: Option<&Languages>,
    config: &Languages,
) -> Markup {
    let in_force = saved.unwrap_or(config);
    let content = html! {
        h1 { "Language of the pupils' screens" }
        p { "The language of the sign-in screen, the apps' tiles, the agreement and the help on Slate devices: the school's, and any class that differs. Devices fetch the change straight away; a device with older software keeps English." }
        @if saved.is_none() && *config != Languages::default() {
            p { "In force now: the server's config file (" code { "[languages]" } "). Once saved here, this page's settings are used instead." }
        } @else if saved.is_some() && *config != Languages::default() {
            p.banner { "The server's config file also has " code { "[languages]" } ": it is no longer used, as this page's settings were saved." }
        }
        form.stack method="post" action="/languages" {
            (csrf(viewer))
            label for="school" { "The whole school" }
            select id="school" name="school" {
                @for (code, name) in LANGUAGES {
                    option value=(code) selected[in_force.school_code() == *code] { (name) }
                }
            }
            @if classes.is_empty() {
                p.empty { "No classes yet: add them on School setup to set a class's language." }
            } @else {
                table {
                    thead { tr { th { "Class" } th { "Language" } } }
                    tbody {
                        @for class in classes {
                            @let own = in_force.classes.get(&class.name);
                            @let field = class_field(class);
                            tr {
                                td { label for=(field) { (class.name) } }
                                td {
                                    select id=(field) name=(field) {
                                        option value="" selected[own.is_none()] { "The school's (" (language_name(in_force.school_code())) ")" }
                                        @for (code, name) in LANGUAGES {
                                            option value=(code) selected[own.map(String::as_str) == Some(*code)] { (name) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div { button type="submit" { "Save" } }
        }
    };
    layout(Some(viewer), "Language of the pupils' screens", content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::kiosk::KeyStage;

    fn class(id: i64, name: &str) -> ClassRecord {
        ClassRecord {
            id,
            name: name.into(),
            key_stage: KeyStage::Ks1,
            symbol: "tree".into(),
            colour: 0,
            profile: "default".into(),
            apps: vec![],
        }
    }

    #[test]
    fn the_form_becomes_languages_or_a_clear_refusal() {
        let classes = [class(1, "Oak"), class(2, "Ash & Elm")];
        let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let langs = |school: Option<&str>, classes: &[(&str, &str)]| Languages {
            school: school.map(str::to_owned),
            classes: classes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<Languages, &'a str>);
        let cases: [Case; 8] = [
            (&[("school", "en"), ("csrf", "t")], Ok(Languages::default())),
            (
                &[("school", "cy"), ("class-1", ""), ("class-2", "en")],
                Ok(langs(Some("cy"), &[("Ash & Elm", "en")])),
            ),
            // A class choosing what the school has is no override.
            (&[("school", "cy"), ("class-1", "cy")], Ok(langs(Some("cy"), &[]))),
            (&[("school", "en"), ("class-1", "cy")], Ok(langs(None, &[("Oak", "cy")]))),
            (&[("class-1", "cy")], Err("school's language")),
            (&[("school", "fr")], Err("\"fr\" is not one")),
            (&[("school", "en"), ("class-9", "cy")], Err("no class \"class-9\"")),
            (&[("school", "en"), ("class-1", "Welsh")], Err("Oak: \"Welsh\"")),
        ];
        for (pairs, expected) in cases {
            let got = parse_form(&fields(pairs), &classes);
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{pairs:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{got} should say {want}"),
                (got, want) => panic!("{pairs:?}: {got:?}, not {want:?}"),
            }
        }
    }
}
