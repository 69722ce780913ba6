//! School setup, for IT and the DSL: what devices are told. Classes, roster import, apps,
//! pupils' picture PINs, who has an unlock PIN, session rules, filter lists and profiles, and the
//! policy key. Each route's gate checks the role (`access`); each handler the CSRF token, writes the audit
//! log, and wakes the devices' long polls after a change. The form checks are pure functions
//! below; queries are `store`'s, the documents devices get are `device_policy`'s.

use crate::access::{Gate, Permission};
use crate::device_policy::ClassRecord;
use crate::device_policy::{default_profile_name, list_line_ok, ProfileRecord, PUPIL_SYMBOLS};
use crate::http::error::PageError;
use crate::http::forms::{capitalise, form};
use crate::http::layout::{csrf, layout};
use crate::http::routes::{Method, Route, Routes};
use crate::http::staff::{policy_change, Staff};
use crate::http::AppState;
use crate::roster;
use crate::store::{ClassInput, ListRecord, StoreError, IDLE_TIMEOUT_MIN, LESSON_ENDS};
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::response::Redirect;
use axum::routing::post;
use chrono::{NaiveTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::device::{check_list_name, ListFile};
use slate_protocol::kiosk::{self, App, AppKind, KeyStage};
use slate_protocol::PupilId;

/// Largest list file a form may upload (a million domains fit).
pub const MAX_LIST_BYTES: usize = 32 * 1024 * 1024;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManagePolicy);
    Routes::new()
        .get("/setup", manage, setup_page)
        .post("/setup/class", manage, save_class)
        .post("/setup/class-apps", manage, save_class_apps)
        .post("/setup/teacher", manage, link_teacher)
        .post("/setup/roster", manage, import_roster)
        .post("/setup/app", manage, save_app)
        .post("/setup/picture-pin", manage, set_picture_pin)
        .post("/setup/sessions", manage, save_sessions)
        .add(
            Route { method: Method::Post, path: "/setup/list", gate: manage },
            // A list file is bigger than any device request: this route alone takes more.
            post(upload_list).layer(DefaultBodyLimit::max(MAX_LIST_BYTES * 2)),
        )
        .post("/setup/profile", manage, save_profile)
}

// ---------------------------------------------------------------------------------------------
// Pure form checks. Each error names the form field.

/// A class from the setup form.
pub fn parse_class(
    name: &str,
    key_stage: &str,
    symbol: &str,
    colour: &str,
    profile: &str,
) -> Result<ClassInput, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 20 || name.chars().any(char::is_control) {
        return Err("Class name: 1 to 20 characters.".into());
    }
    let key_stage = parse_key_stage(key_stage)?;
    let symbol = symbol.trim();
    if symbol.is_empty() || !symbol.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err("Symbol: a picture name such as tree (a-z and -).".into());
    }
    let colour: u8 =
        colour.trim().parse().map_err(|_| "Colour: a number from 0 to 255.".to_string())?;
    let profile = match profile.trim() {
        "" => default_profile_name(name),
        p => p.to_owned(),
    };
    check_list_name(&profile).map_err(|_| "Filter profile: 1 to 64 of a-z, 0-9 and -.")?;
    Ok(ClassInput { name: name.to_owned(), key_stage, symbol: symbol.to_owned(), colour, profile })
}

fn parse_key_stage(text: &str) -> Result<KeyStage, String> {
    match text.trim() {
        "ks1" => Ok(KeyStage::Ks1),
        "ks2" => Ok(KeyStage::Ks2),
        _ => Err("Key stage: ks1 or ks2.".into()),
    }
}

/// An app from the catalogue form, checked with the device's own rules.
#[allow(clippy::too_many_arguments)]
pub fn parse_app(
    id: &str,
    title: &str,
    symbol: &str,
    colour: &str,
    kind: &str,
    start_url: &str,
    sites: &str,
    command: &str,
) -> Result<App, String> {
    let colour: u8 =
        colour.trim().parse().map_err(|_| "Colour: a number from 0 to 255.".to_string())?;
    let kind = match kind.trim() {
        "web" => AppKind::Web {
            start_url: start_url.trim().to_owned(),
            sites: sites.split_whitespace().map(str::to_owned).collect(),
            camera: false,
        },
        "native" => {
            AppKind::Native { command: command.split_whitespace().map(str::to_owned).collect() }
        }
        _ => return Err("Kind: web or native.".into()),
    };
    let app = App {
        id: id.trim().to_owned(),
        title: title.trim().to_owned(),
        symbol: symbol.trim().to_owned(),
        colour,
        kind,
    };
    // A one-class policy holding just this app: the device's checks, unchanged.
    let probe = kiosk::Policy {
        v: 1,
        issued_at: None,
        sessions: Default::default(),
        classes: vec![kiosk::Class {
            name: "probe".into(),
            key_stage: KeyStage::Ks1,
            symbol: "star".into(),
            colour: 0,
            apps: vec![],
            profile: None,
            pupils: vec![],
            language: None,
        }],
        apps: vec![app.clone()],
        agreements: vec![],
        language: None,
    };
    let text = serde_json::to_string(&probe).expect("a policy serialises");
    kiosk::parse_policy(&text).map_err(|e| format!("App: {e}"))?;
    Ok(app)
}

/// A picture PIN as IT types it: picture names in order, separated by spaces or commas, like
/// `moon, star, fish`. Empty clears it (`None`).
pub fn parse_picture_pin(text: &str) -> Result<Option<Vec<String>>, String> {
    let pictures: Vec<String> = text
        .split([',', ' ', '\t', '\r', '\n'])
        .filter(|p| !p.is_empty())
        .map(str::to_lowercase)
        .collect();
    if pictures.is_empty() {
        return Ok(None);
    }
    if let Some(unknown) = pictures.iter().find(|p| !PUPIL_SYMBOLS.contains(&p.as_str())) {
        return Err(format!("Pictures: {unknown:?} is not one of {}.", PUPIL_SYMBOLS.join(", ")));
    }
    let (min, max) = (kiosk::MIN_PICTURE_PIN, kiosk::MAX_PICTURE_PIN);
    if !(min..=max).contains(&pictures.len()) {
        return Err(format!("Pictures: {min} to {max} of them, or none to clear the PIN."));
    }
    Ok(Some(pictures))
}

/// Session rules: idle minutes (1 to 240) and lesson end times like `10:30, 12:00` (UK time).
pub fn parse_sessions(idle: &str, lesson_ends: &str) -> Result<(u32, Vec<NaiveTime>), String> {
    let idle: u32 = idle
        .trim()
        .parse()
        .ok()
        .filter(|m| (1..=240).contains(m))
        .ok_or("Idle minutes: a number from 1 to 240.")?;
    let mut ends = lesson_ends
        .split([',', ' ', '\n', '\r'])
        .filter(|t| !t.is_empty())
        .map(|t| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| format!("Lesson end times: {t:?} is not a time like 10:30."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ends.sort();
    ends.dedup();
    Ok((idle, ends))
}

/// List names for a profile, separated by commas or spaces.
fn parse_list_names(field: &str, text: &str) -> Result<Vec<String>, String> {
    text.split([',', ' ', '\n', '\r'])
        .filter(|t| !t.is_empty())
        .map(|t| {
            check_list_name(t).map_err(|_| format!("{field}: {t:?} is not a list name."))?;
            Ok(t.to_owned())
        })
        .collect()
}

/// A filter profile. An empty allow-only field means block lists apply instead.
pub fn parse_profile(
    name: &str,
    block_lists: &str,
    allow_only: &str,
    safe_search: &str,
) -> Result<ProfileRecord, String> {
    let name = name.trim();
    check_list_name(name).map_err(|_| "Profile: 1 to 64 of a-z, 0-9 and -.".to_string())?;
    let block_lists = parse_list_names("Block lists", block_lists)?;
    let allow = parse_list_names("Allow only", allow_only)?;
    let safe_search = match safe_search.trim() {
        s @ ("strict" | "moderate") => s.to_owned(),
        _ => return Err("Safe search: strict or moderate.".into()),
    };
    Ok(ProfileRecord {
        name: name.to_owned(),
        block_lists,
        allow_only: (!allow.is_empty()).then_some(allow),
        safe_search,
    })
}

/// Refuses a list with a line that is not a domain name (nor a comment or a URL-layer rule),
/// naming the first few: devices would skip such a line, so what IT meant to block would not
/// be.
fn check_list_lines(text: &str) -> Result<(), String> {
    let bad: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !list_line_ok(l))
        .map(|(i, l)| (i + 1, l.trim()))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let named: Vec<String> =
        bad.iter().take(3).map(|(n, line)| format!("line {n} ({line:?})")).collect();
    let more = match bad.len() - named.len() {
        0 => String::new(),
        1 => " and 1 more line".to_string(),
        n => format!(" and {n} more lines"),
    };
    Err(format!(
        "List: {}{more} {} not a domain name. Write one domain a line, like example.org or *.example.org; nothing was saved.",
        named.join(", "),
        if bad.len() == 1 { "is" } else { "are" }
    ))
}

/// An uploaded list: its name and bytes (one domain or rule a line, `\n` line ends).
pub fn parse_list(name: &str, contents: &str) -> Result<(String, Vec<u8>, ListFile), String> {
    let name = name.trim();
    check_list_name(name).map_err(|_| "List name: 1 to 64 of a-z, 0-9 and -.".to_string())?;
    // Any line ending a browser or spreadsheet sends becomes `\n`, the list file's own.
    let text = contents.replace("\r\n", "\n").replace('\r', "\n");
    check_list_lines(&text)?;
    let mut bytes = text.into_bytes();
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    if bytes.len() > MAX_LIST_BYTES {
        return Err(format!("List: over {} MiB.", MAX_LIST_BYTES / 1024 / 1024));
    }
    let file = ListFile::of(&bytes);
    Ok((name.to_owned(), bytes, file))
}

// ---------------------------------------------------------------------------------------------
// School setup (IT and DSL).

/// `GET /setup`.
pub async fn setup_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    let (classes, apps, lists, profiles, pin_holders, records) = state
        .store
        .run(|store| {
            Ok((
                store.classes()?,
                store.apps()?,
                store.lists()?,
                store.profiles()?,
                store.unlock_pin_holders()?,
                store.policy_records()?,
            ))
        })
        .await?;
    staff.audit(&state, "viewed school setup", None).await?;
    let languages = records.languages_in_force(&state.config.languages);
    let ready = crate::device_policy::kiosk_payload(&records, Default::default(), languages)
        .err()
        .map(|e| e.to_string());
    let missing = missing_lists(&profiles, &lists);
    let viewer = staff.viewer();
    Ok(layout(
        Some(&viewer),
        "School setup",
        html! {
            h1 { "School setup" }
            section {
                h2 { "Policy key" }
                p { "Put this in every device's " code { "slate.toml" } " as " code { "[server] public_key" } ":" }
                pre { code.policy-key { (state.policy_public_key()) } }
                @if let Some(problem) = ready { p.banner { "Devices get no policy yet: " (problem) } }
                @if !missing.is_empty() {
                    p.banner { "Profiles name lists not uploaded yet (devices refuse every site in those profiles until they are): " (missing.join(", ")) }
                }
                @if let Some(salt) = &records.url_salt { p { "URL list salt: " code { (salt) } } }
            }
            section {
                h2 { "Classes" }
                (profile_warning(&crate::device_policy::classes_without_profile(&classes, &profiles)))
                table {
                    tr { th { "Class" } th { "Key stage" } th { "Symbol" } th { "Colour" } th { "Filter profile" } th { "Apps" } }
                    @for c in &classes {
                        tr { td { (c.name) } td { (format!("{:?}", c.key_stage).to_lowercase()) } td { (c.symbol) } td { (c.colour) } td { (c.profile) } td { (c.apps.join(", ")) } }
                    }
                }
                form method="post" action="/setup/class" {
                    (csrf(&viewer))
                    label { "Class " input name="name" required; } " "
                    label { "Key stage " select name="key_stage" { option value="ks1" { "KS1" } option value="ks2" { "KS2" } } } " "
                    label { "Symbol " input name="symbol" value="tree"; } " "
                    label { "Colour " input name="colour" value="0" size="3"; } " "
                    label { "Filter profile " input name="profile" placeholder="from the name"; } " "
                    button type="submit" { "Save class" }
                }
                form method="post" action="/setup/class-apps" {
                    (csrf(&viewer))
                    label { "Class " input name="class" required; } " "
                    label { "Apps, in tile order " input name="apps" placeholder="reading, maths"; } " "
                    button type="submit" { "Save apps" }
                }
                form method="post" action="/setup/teacher" {
                    (csrf(&viewer))
                    label { "Teacher's username " input name="username" required; } " "
                    label { "Class " input name="class" required; } " "
                    label { "Alert email " input type="email" name="email"; } " "
                    button type="submit" { "Link teacher to class" }
                }
            }
            section {
                h2 { "Roster import" }
                p { "CSV with the columns " code { "class,first_name,last_name,key_stage" } ", or your MIS's export as it comes (SIMS, Arbor, Bromcom: "
                    "Reg, Registration Form or Tutor Group; Forename, First Name or Preferred Forename; Surname, Last Name or Legal Surname; Year; UPN, Adno or Student ID). "
                    "Devices get the first name and the family name's initial, and, only where two classmates share both, as many of its first three letters as tell them apart (\"Amira Kh.\") or a number (\"Amira K. (2)\"). "
                    "Each row is its own pupil. A re-import finds each pupil again by their UPN or Adno if the file has one (so a pupil who moved class keeps their history), otherwise by class, first name and the family name's first letters; a row that could be two pupils, or two rows that would be one, refuse the file. A bad row refuses the whole file." }
                form method="post" action="/setup/roster" {
                    (csrf(&viewer))
                    textarea name="csv" rows="8" cols="60" required {}
                    br; button type="submit" { "Import" }
                }
            }
            section {
                h2 { "Apps" }
                table {
                    tr { th { "Id" } th { "Title" } th { "Symbol" } th { "Colour" } th { "Runs" } }
                    @for a in &apps {
                        tr { td { (a.id) } td { (a.title) } td { (a.symbol) } td { (a.colour) }
                             td { @match &a.kind { AppKind::Web { start_url, .. } => { (start_url) }, AppKind::Native { command } => { (command.join(" ")) } } } }
                    }
                }
                form method="post" action="/setup/app" {
                    (csrf(&viewer))
                    label { "Id " input name="id" required size="10"; } " "
                    label { "Title " input name="title" required size="12"; } " "
                    label { "Symbol " input name="symbol" value="book" size="8"; } " "
                    label { "Colour " input name="colour" value="0" size="3"; } " "
                    label { "Kind " select name="kind" { option value="web" { "web" } option value="native" { "native" } } } br;
                    label { "Start URL " input name="start_url" size="40"; } " "
                    label { "Sites " input name="sites" size="40" placeholder="https://a.example https://b.example"; } br;
                    label { "Command " input name="command" size="40" placeholder="/usr/bin/tuxpaint --fullscreen"; } " "
                    button type="submit" { "Save app" }
                }
            }
            section {
                h2 { "Picture PINs" }
                p { "An older pupil may have a picture PIN: after their tile they tap these pictures in order (2 to 6 of "
                    (PUPIL_SYMBOLS.join(", ")) "). It keeps classmates from signing in as each other. Leave the pictures empty to clear it." }
                table {
                    tr { th { "Pupil" } th { "Class" } th { "Pictures" } }
                    @for p in records.pupils.iter().filter(|p| p.picture_pin.is_some()) {
                        tr { td { (p.shown_name()) } td { (p.class_name) }
                             td { (p.picture_pin.as_deref().unwrap_or_default().join(", ")) } }
                    }
                }
                form method="post" action="/setup/picture-pin" {
                    (csrf(&viewer))
                    label { "Pupil " select name="pupil" required {
                        @for p in &records.pupils {
                            option value=(p.id.as_str()) { (p.shown_name()) " (" (p.class_name) ")" }
                        }
                    } } " "
                    label { "Pictures " input name="pictures" size="30" placeholder="moon, star, fish" autocomplete="off"; } " "
                    button type="submit" { "Save picture PIN" }
                }
            }
            section #unlock-pins {
                h2 { "Unlock PINs" }
                p { "Each member of staff sets their own PIN for unlocking a held device, on "
                    a href="/staff/account" { "My account" } ". Devices get only its hash, under an id that is not their name, and each unlock records who it was. "
                    "A device's own " code { "[staff] pin_hash" } " in " code { "slate.toml" } " stays as IT's PIN (recorded as IT)." }
                @if pin_holders.is_empty() {
                    p.empty { "Nobody has set an unlock PIN yet: a held device stays held unless its slate.toml has IT's PIN." }
                } @else {
                    table { thead { tr { th { "Staff" } th { "PIN set" } } }
                        tbody { @for h in &pin_holders { tr { td { (h.username) } td { (crate::uk_time::format_uk(h.set_at)) } } } } }
                }
            }
            section {
                h2 { "Sessions" }
                form method="post" action="/setup/sessions" {
                    (csrf(&viewer))
                    label { "Sign out after idle minutes " input name="idle_minutes" value=(records.sessions.idle_timeout_min) size="3"; } " "
                    label { "Lesson end times (UK time) " input name="lesson_ends" size="30"
                        value=(records.sessions.lesson_ends.iter().map(|t| t.format("%H:%M").to_string()).collect::<Vec<_>>().join(", ")); } " "
                    button type="submit" { "Save" }
                }
            }
            section {
                h2 { "Filter lists" }
                (lists_table(&lists))
                form method="post" action="/setup/list" {
                    (csrf(&viewer))
                    label { "List name " input name="name" placeholder="adult" required; } br;
                    textarea name="contents" rows="6" cols="60" placeholder="one domain or rule a line" {}
                    br; button type="submit" { "Upload list" }
                }
            }
            section {
                h2 { "Filter profiles" }
                p { "The profile " code { "default" } " applies when nobody is signed in, and to classes whose profile is not listed here." }
                table {
                    tr { th { "Profile" } th { "Block lists" } th { "Allow only" } th { "Safe search" } }
                    @for p in &profiles {
                        tr { td { (p.name) } td { (p.block_lists.join(", ")) } td { (p.allow_only.as_ref().map(|a| a.join(", ")).unwrap_or_default()) } td { (p.safe_search) } }
                    }
                }
                form method="post" action="/setup/profile" {
                    (csrf(&viewer))
                    label { "Profile " input name="name" required size="12"; } " "
                    label { "Block lists " input name="block_lists" placeholder="adult, gambling"; } " "
                    label { "Allow only " input name="allow_only" placeholder="ks1-sites"; } " "
                    label { "Safe search " select name="safe_search" { option value="strict" { "strict" } option value="moderate" { "moderate" } } } " "
                    button type="submit" { "Save profile" }
                }
            }
        },
    ))
}

/// Lists that profiles name but nobody uploaded: a device fails closed for those profiles.
pub fn missing_lists(profiles: &[ProfileRecord], lists: &[ListRecord]) -> Vec<String> {
    let mut missing: Vec<String> = profiles
        .iter()
        .flat_map(|p| p.block_lists.iter().chain(p.allow_only.iter().flatten()))
        .filter(|name| !lists.iter().any(|l| &l.name == *name))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn lists_table(lists: &[ListRecord]) -> Markup {
    html! {
        table {
            tr { th { "List" } th { "Bytes" } th { "SHA-256" } th { "Uploaded" } th { "By" } }
            @for l in lists {
                tr { td { (l.name) } td { (l.file.bytes) } td { code { (&l.file.sha256[..16]) "…" } }
                     td { (crate::uk_time::format_uk(l.uploaded_at)) } td { (l.uploaded_by) } }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ClassForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    key_stage: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    colour: String,
    #[serde(default)]
    profile: String,
}

/// `POST /setup/class`.
pub async fn save_class(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<ClassForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let class = parse_class(&f.name, &f.key_stage, &f.symbol, &f.colour, &f.profile)
        .map_err(PageError::BadForm)?;
    let record = Some(format!("class {}", class.name));
    policy_change(&staff, &state, &f.csrf, ("saved class", record), move |store| {
        store.save_class(&class, Utc::now())
    })
    .await?;
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct ClassAppsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    apps: String,
}

/// `POST /setup/class-apps`.
pub async fn save_class_apps(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<ClassAppsForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let apps: Vec<String> =
        f.apps.split([',', ' ']).filter(|a| !a.is_empty()).map(str::to_owned).collect();
    let known = state.store.run(|store| store.apps()).await?;
    if let Some(unknown) = apps.iter().find(|a| !known.iter().any(|k| &k.id == *a)) {
        return Err(PageError::BadForm(format!("Apps: {unknown:?} is not in the app catalogue.")));
    }
    let class = f.class.trim().to_owned();
    let record = Some(format!("class {class}"));
    let found = policy_change(&staff, &state, &f.csrf, ("set class apps", record), move |store| {
        store.set_class_apps(&class, &apps, Utc::now())
    })
    .await?;
    if !found {
        return Err(PageError::BadForm("Class: no class has that name.".into()));
    }
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct TeacherForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    email: String,
}

/// A teacher's alert address; empty keeps the one they have.
pub fn parse_email(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<lettre::Address>()
        .map(|a| Some(a.to_string()))
        .map_err(|_| format!("Email: {text:?} is not an email address."))
}

/// `POST /setup/teacher`: a teacher gets the alerts of their class's pupils.
pub async fn link_teacher(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<TeacherForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let email = parse_email(&f.email).map_err(PageError::BadForm)?;
    let (username, class) = (f.username.trim().to_owned(), f.class.trim().to_owned());
    let record = Some(format!("{username} -> class {class}"));
    let linked = state
        .store
        .run(move |store| store.link_teacher(&username, &class, email.as_deref()))
        .await?;
    if !linked {
        return Err(PageError::BadForm(
            "Teacher or class: no account or class has that name.".into(),
        ));
    }
    staff.audit(&state, "linked teacher to class", record).await?;
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct RosterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

/// `POST /setup/roster`: all rows or none.
pub async fn import_roster(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RosterForm>, FormRejection>,
) -> Result<Markup, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let rows = roster::parse_roster_csv(&f.csv).map_err(|e| {
        PageError::BadForm(format!("Nothing was imported. {}", capitalise(&e.to_string())))
    })?;
    let rows: Vec<_> = rows.into_iter().map(|row| (roster::new_pupil_id(), row)).collect();
    let classes: Vec<String> = rows.iter().map(|(_, row)| row.class.clone()).collect();
    let (done, without_profile) =
        policy_change(&staff, &state, &f.csrf, ("imported roster", None), move |store| {
            let done = store.import_roster(&rows, Utc::now())?;
            let records = store.classes()?;
            let profiles = store.profiles()?;
            let without_profile: Vec<ClassRecord> =
                crate::device_policy::classes_without_profile(&records, &profiles)
                    .into_iter()
                    .filter(|c| classes.contains(&c.name))
                    .cloned()
                    .collect();
            Ok((done, without_profile))
        })
        .await
        .map_err(|e| match e {
            // Two rows that would be one pupil, or one that could be two: IT's file to fix.
            PageError::Storage(StoreError::RosterRefused(refused)) => PageError::BadForm(format!(
                "Nothing was imported. {}",
                capitalise(&refused.to_string())
            )),
            other => other,
        })?;
    Ok(layout(
        Some(&staff.viewer()),
        "Roster imported",
        html! {
            h1 { "Roster imported" }
            p { (roster::import_summary(&done)) "." }
            (profile_warning(&without_profile.iter().collect::<Vec<_>>()))
            p { a href="/setup" { "Back to school setup" } }
        },
    ))
}

/// Classes whose filter profile is not set up: their pupils get the default profile's rules.
fn profile_warning(classes: &[&ClassRecord]) -> Markup {
    html! {
        @if !classes.is_empty() {
            div.banner.no-profile {
                p { "These classes name a filter profile that is not set up, so their pupils get the "
                    code { "default" } " profile's filtering until you add the profile under Filter profiles or give the class another:" }
                ul {
                    @for c in classes {
                        li { "Class " strong { (c.name) } ": profile " code { (c.profile) } }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    colour: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    start_url: String,
    #[serde(default)]
    sites: String,
    #[serde(default)]
    command: String,
}

/// `POST /setup/app`.
pub async fn save_app(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<AppForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let app = parse_app(
        &f.id,
        &f.title,
        &f.symbol,
        &f.colour,
        &f.kind,
        &f.start_url,
        &f.sites,
        &f.command,
    )
    .map_err(PageError::BadForm)?;
    let record = Some(format!("app {}", app.id));
    policy_change(&staff, &state, &f.csrf, ("saved app", record), move |store| {
        store.save_app(&app, Utc::now())
    })
    .await?;
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct PicturePinForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pupil: String,
    #[serde(default)]
    pictures: String,
}

/// `POST /setup/picture-pin`: sets or (with no pictures) clears a pupil's picture PIN.
pub async fn set_picture_pin(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<PicturePinForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let pupil = PupilId::new(f.pupil.trim())
        .map_err(|_| PageError::BadForm("Pupil: not a pupil id.".into()))?;
    let pictures = parse_picture_pin(&f.pictures).map_err(PageError::BadForm)?;
    // The audit says whose PIN changed, never the pictures.
    let action = if pictures.is_some() { "set picture PIN" } else { "cleared picture PIN" };
    let record = Some(format!("pupil {}", pupil.as_str()));
    // As `policy_change`, but an unknown pupil changes nothing and so is not audited.
    // Hashed once, here, with a fresh salt: the staff document devices get stays the same
    // bytes from one fetch to the next.
    let cost = state.hash_cost;
    let hashed = match pictures {
        Some(pictures) => Some(
            state
                .password_work(move || {
                    let phc = crate::auth::hash_picture_pin(&pictures, cost);
                    (pictures, phc)
                })
                .await?,
        ),
        None => None,
    };
    let changed = state
        .store
        .run(move |store| {
            let pin = hashed.as_ref().map(|(pictures, phc)| (pictures.as_slice(), phc.as_str()));
            store.set_picture_pin(&pupil, pin, Utc::now())
        })
        .await?;
    if !changed {
        return Err(PageError::BadForm("Pupil: no pupil with this id is on devices.".into()));
    }
    staff.audit(&state, action, record).await?;
    state.commands_changed();
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct SessionsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    idle_minutes: String,
    #[serde(default)]
    lesson_ends: String,
}

/// `POST /setup/sessions`.
pub async fn save_sessions(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<SessionsForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let (idle, ends) =
        parse_sessions(&f.idle_minutes, &f.lesson_ends).map_err(PageError::BadForm)?;
    let ends = serde_json::to_string(&ends).expect("times serialise");
    let detail = Some(format!("idle {idle} min, lesson ends {ends}"));
    policy_change(&staff, &state, &f.csrf, ("saved session rules", detail), move |store| {
        let now = Utc::now();
        store.set_policy_setting(IDLE_TIMEOUT_MIN, &idle.to_string(), now)?;
        store.set_policy_setting(LESSON_ENDS, &ends, now)
    })
    .await?;
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct ListForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    contents: String,
}

/// `POST /setup/list`: the file goes to the data directory under its content's name, its hash
/// and size to the manifest (the commit point), then the files no list names any more go.
pub async fn upload_list(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<ListForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let (name, bytes, file) = parse_list(&f.name, &f.contents).map_err(PageError::BadForm)?;
    let lists = state.lists.clone().ok_or_else(|| {
        PageError::BadForm("This server keeps no list files (no data directory).".into())
    })?;
    let task_failed = |e: String| PageError::Storage(crate::store::StoreError::TaskFailed(e));
    // The file goes beside those in force (named by its content); the row is the switch; the
    // files no row names go only after it. One upload at a time, and no device opening a file.
    let _changing = lists.changing().await;
    let (writer, written) = (lists.clone(), file.clone());
    tokio::task::spawn_blocking(move || writer.write(&written, &bytes))
        .await
        .map_err(|e| task_failed(e.to_string()))?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot save a list file");
            task_failed("list file".into())
        })?;
    let by = staff.actor.clone();
    let record = Some(format!("list {name}"));
    policy_change(&staff, &state, &f.csrf, ("uploaded filter list", record), move |store| {
        store.save_list(&name, &file, &by, Utc::now())
    })
    .await?;
    let collected = state
        .store
        .run(move |store| {
            lists
                .collect(&store.lists()?)
                .map_err(|e| crate::store::StoreError::TaskFailed(e.to_string()))
        })
        .await;
    if let Err(e) = collected {
        tracing::warn!(error = %e, "old list files not removed; at the next upload or start");
    }
    Ok(Redirect::to("/setup"))
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    block_lists: String,
    #[serde(default)]
    allow_only: String,
    #[serde(default)]
    safe_search: String,
}

/// `POST /setup/profile`.
pub async fn save_profile(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<ProfileForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let profile = parse_profile(&f.name, &f.block_lists, &f.allow_only, &f.safe_search)
        .map_err(PageError::BadForm)?;
    let record = Some(format!("profile {}", profile.name));
    policy_change(&staff, &state, &f.csrf, ("saved filter profile", record), move |store| {
        store.save_profile(&profile, Utc::now())
    })
    .await?;
    Ok(Redirect::to("/setup"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_apps_are_checked_by_field() {
        let class = parse_class(" Year 2 ", "ks1", "tree", "3", "").unwrap();
        assert_eq!((class.name.as_str(), class.profile.as_str()), ("Year 2", "year-2"));
        for (args, field) in [
            (("", "ks1", "tree", "3", ""), "Class name"),
            (("Oak", "ks3", "tree", "3", ""), "Key stage"),
            (("Oak", "ks1", "Tree!", "3", ""), "Symbol"),
            (("Oak", "ks1", "tree", "300", ""), "Colour"),
            (("Oak", "ks1", "tree", "3", "Oak Trees"), "Filter profile"),
        ] {
            let err = parse_class(args.0, args.1, args.2, args.3, args.4).unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
        let app = parse_app(
            "maths",
            "Maths",
            "numbers",
            "4",
            "web",
            "https://m.example/",
            "https://m.example",
            "",
        )
        .unwrap();
        assert!(app.needs_internet());
        let native = parse_app(
            "paint",
            "Paint",
            "paint",
            "0",
            "native",
            "",
            "",
            "/usr/bin/tuxpaint --fullscreen",
        )
        .unwrap();
        assert!(matches!(native.kind, AppKind::Native { ref command } if command.len() == 2));
        for (args, field) in [
            (("ma ths", "web", "https://m.example", "https://m.example", ""), "apps[0].id"),
            (("maths", "web", "http://m.example", "https://m.example", ""), "apps[0].start_url"),
            (("maths", "web", "https://m.example", "", ""), "apps[0].sites"),
            (("maths", "native", "", "", "tuxpaint"), "apps[0].command"),
            (("maths", "flash", "", "", ""), "Kind"),
        ] {
            let err = parse_app(args.0, "Maths", "numbers", "1", args.1, args.2, args.3, args.4)
                .unwrap_err();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn the_server_reads_list_lines_as_devices_do() {
        let lines = [
            "example.org",
            "*.example.org",
            "EXAMPLE.org.",
            "xn--bcher-kva.example",
            "a_b.example",
            "# comment",
            "",
            "   ",
            "url-sha256:abcd",
            "host-sha256:00",
            "http://not a domain/",
            "not a domain",
            "example..org",
            "*.",
            ".example.org",
            "exa mple.org",
            "example.org/path",
            "ex!ample.org",
            "*.*.example.org",
            "münchen.de",
            &"a".repeat(64),
            &format!("{}.org", "a.".repeat(130)),
        ];
        for line in lines {
            let (_, device) = slate_filter::lists::DomainSet::parse(line);
            assert_eq!(list_line_ok(line), device.bad_count == 0, "{line:?}");
        }
    }

    #[test]
    fn list_lines_are_checked_as_domain_names_naming_the_bad_line() {
        let ok = [
            "bad.example\r\n*.worse.example\r\n# a comment\r\n\r\nurl-sha256:ab12\n",
            "",
            "a.example",
        ];
        for contents in ok {
            assert!(parse_list("adult", contents).is_ok(), "{contents:?}");
        }
        let cases = [
            (
                "bad.example\nhttp://not a domain/\n",
                "line 2 (\"http://not a domain/\") is not a domain name",
            ),
            (
                "bad.example\r\nhttp://not a domain/\r\n",
                "line 2 (\"http://not a domain/\") is not a domain name",
            ),
            ("a.example\rb.example\rnot a domain\r", "line 3 (\"not a domain\") is not"),
            (
                "x y\nok.example\na b\nc d\ne f\n",
                "line 1 (\"x y\"), line 3 (\"a b\"), line 4 (\"c d\") and 1 more line are not",
            ),
        ];
        for (contents, expected) in cases {
            let refused = parse_list("adult", contents).unwrap_err();
            assert!(refused.contains(expected), "{contents:?}: {refused}");
        }
    }

    #[test]
    fn pins_sessions_profiles_and_lists() {
        let pictures = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect());
        type Case<'a> = (&'a str, Result<Option<Vec<String>>, &'a str>);
        #[rustfmt::skip]
        let table: [Case; 8] = [
            ("moon, star, fish", Ok(pictures(&["moon", "star", "fish"]))),
            ("Moon Star", Ok(pictures(&["moon", "star"]))),
            ("sun,sun,sun,sun,sun,sun", Ok(pictures(&["sun"; 6]))),
            ("", Ok(None)),
            ("  , ", Ok(None)),
            ("moon", Err("Pictures: 2 to 6")),
            ("sun sun sun sun sun sun sun", Err("Pictures: 2 to 6")),
            ("moon, dragon", Err("Pictures: \"dragon\" is not one of star, fish")),
        ];
        for (text, expected) in table {
            match (parse_picture_pin(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{text:?}: {got}"),
                (got, want) => panic!("{text:?}: {got:?}, expected {want:?}"),
            }
        }

        let (idle, ends) = parse_sessions("15", "12:00, 10:30 10:30").unwrap();
        assert_eq!(idle, 15);
        assert_eq!(
            ends,
            [
                NaiveTime::from_hms_opt(10, 30, 0).unwrap(),
                NaiveTime::from_hms_opt(12, 0, 0).unwrap()
            ]
        );
        assert!(parse_sessions("0", "").unwrap_err().starts_with("Idle"));
        assert!(parse_sessions("10", "25:00").unwrap_err().starts_with("Lesson"));

        let p = parse_profile("oak", "adult, gambling", "", "strict").unwrap();
        assert_eq!((p.block_lists.len(), p.allow_only), (2, None));
        assert!(parse_profile("oak", "", "ks1-sites", "moderate").unwrap().allow_only.is_some());
        assert!(parse_profile("oak", "Adult", "", "strict").unwrap_err().starts_with("Block"));
        assert!(parse_profile("oak", "", "", "off").unwrap_err().starts_with("Safe search"));

        let (name, bytes, file) = parse_list("adult", "a.example\r\nb.example").unwrap();
        assert_eq!((name.as_str(), bytes.as_slice()), ("adult", &b"a.example\nb.example\n"[..]));
        assert_eq!(file.bytes, 20);
        assert_eq!(file.sha256.len(), 64);
        assert!(parse_list("../x", "a").unwrap_err().starts_with("List name"));
    }

    #[test]
    fn lists_named_but_not_uploaded_are_found() {
        let profile = |name: &str, block: &[&str], allow: Option<&[&str]>| ProfileRecord {
            name: name.into(),
            block_lists: block.iter().map(|s| s.to_string()).collect(),
            allow_only: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
            safe_search: "strict".into(),
        };
        let uploaded = ListRecord {
            name: "adult".into(),
            file: ListFile { sha256: "a".repeat(64), bytes: 1 },
            uploaded_at: Utc::now(),
            uploaded_by: "it".into(),
        };
        let profiles = [
            profile("oak", &["adult", "gambling"], Some(&["ks1-sites"])),
            profile("ash", &["gambling"], None),
        ];
        assert_eq!(missing_lists(&profiles, &[uploaded]), ["gambling", "ks1-sites"]);
    }

    #[test]
    fn teachers_alert_addresses_are_checked() {
        assert_eq!(
            parse_email(" t.smith@school.example ").unwrap().as_deref(),
            Some("t.smith@school.example")
        );
        assert_eq!(parse_email("").unwrap(), None);
        assert!(parse_email("t smith").unwrap_err().starts_with("Email"));
    }
}
