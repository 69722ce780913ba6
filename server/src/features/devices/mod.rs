//! Devices: one device's page (sessions, the iPad register, reports, blocked attempts, apps
//! opened and agreements), "who had device N at T" (page and staff JSON API; conflicting records
//! are shown as a conflict, never as one name), the register teachers keep for numbered iPads
//! (a pupil picked by class and name), and the fleet with its refused hardware and each device's
//! credential (revoke a lost or stolen device; have one replace its credential). Each route's gate
//! checks the role (`access`); a device page's case file (reports, blocked addresses) is read
//! only for those who may see it; handlers write the audit log; queries are `store`'s.

mod views;

use crate::access::{Gate, Permission};
use crate::http::error::{ApiError, PageError};
use crate::http::forms::{form, page_query, parse_device, parse_time};
use crate::http::routes::Routes;
use crate::http::staff::{Staff, StaffApi};
use crate::http::AppState;
use crate::store::RosterName;
use crate::who_had::Answer;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use maud::Markup;
use serde::{Deserialize, Serialize};
use slate_protocol::{DeviceNumber, PupilId};

/// Sessions, reports and register lines on a device page; refused hardware on the fleet page.
const DEVICE_PAGE_ROWS: u32 = 200;

pub fn routes() -> Routes {
    let look_up = Gate::Needs(Permission::LookUpDevice);
    Routes::new()
        .get("/devices/{number}", look_up, device_page)
        .get("/who-had", look_up, who_had_page)
        .post("/register", Gate::Needs(Permission::RecordRegister), add_register_entry)
        .get("/fleet", Gate::Needs(Permission::ViewFleet), fleet_page)
        .post("/fleet/revoke", Gate::Needs(Permission::ManageDeviceCredentials), revoke_device)
        .post(
            "/fleet/replace-credential",
            Gate::Needs(Permission::ManageDeviceCredentials),
            replace_credential,
        )
        .get("/api/v1/staff/who-had", look_up, who_had_json)
}

/// `GET /devices/{number}`: one device's sessions, register lines and incidents. Numbers with no
/// enrolled device but register lines (iPads) or incidents recorded by hand show those alone.
pub async fn device_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Markup, PageError> {
    let not_found = || PageError::NotFound(format!("There is no device {number}."));
    let device =
        number.parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(not_found)?;
    let case_file = staff.may(Permission::ReadCaseFile);
    // Whether IT has root on the device: for those who see the fleet (the DSL too), not teachers.
    let sees_ssh = staff.may(Permission::ViewFleet);
    let found = state
        .store
        .run(move |store| {
            let record = store.device(device)?;
            let register = store.register_entries(device, DEVICE_PAGE_ROWS)?;
            // The case file is read only for those who may see it: for them a number named
            // only by an incident recorded by hand has a page too.
            let incidents = match case_file {
                true => store.device_incidents(device.get(), DEVICE_PAGE_ROWS)?,
                false => Vec::new(),
            };
            if record.is_none() && register.is_empty() && incidents.is_empty() {
                return Ok(None);
            }
            let sessions = store.device_sessions(device, DEVICE_PAGE_ROWS)?;
            let case_file = if case_file {
                let activity = views::DeviceActivity {
                    blocked: store.device_activity(device, "filter_blocked", DEVICE_PAGE_ROWS)?,
                    apps: store.device_activity(device, "app_opened", DEVICE_PAGE_ROWS)?,
                    agreements: store.device_activity(device, "aup_accepted", DEVICE_PAGE_ROWS)?,
                };
                Some((incidents, activity))
            } else {
                None
            };
            let test = store.button_tests()?.into_iter().find(|t| t.device == device);
            let ssh = match sees_ssh && record.is_some() {
                true => Some(store.ssh_access_state(device)?),
                false => None,
            };
            Ok(Some((record, sessions, register, case_file, test, ssh)))
        })
        .await?;
    let (record, sessions, register, case_file, test, ssh) = found.ok_or_else(not_found)?;
    let test = test.map(|t| views::button_test_words(&t, Utc::now()));
    let ssh = ssh.map(|s| crate::ssh_access::ssh_words(s.as_ref(), Utc::now()));
    staff.audit(&state, "viewed device", Some(format!("device {device}"))).await?;
    Ok(views::device_page(
        &staff.viewer(),
        device.get(),
        record.as_ref(),
        &sessions,
        &register,
        case_file
            .as_ref()
            .map(|(incidents, activity)| views::DeviceCaseFile { incidents, activity }),
        views::DeviceWords { button_test: test.as_deref(), ssh: ssh.as_deref() },
    ))
}

#[derive(Deserialize)]
pub struct WhoHadQuery {
    device: Option<String>,
    at: Option<String>,
}

/// `GET /who-had?device=N&at=T`: the form, and its answer when both are given.
pub async fn who_had_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<WhoHadQuery>, QueryRejection>,
) -> Result<Markup, PageError> {
    let query = page_query(query)?;
    let device_text = query.device.unwrap_or_default();
    let at_text = query.at.unwrap_or_default();
    let question = views::WhoHadQuestion { device: &device_text, at: &at_text };
    let register = views::RegisterForm::blank(register_pupils(&staff, &state).await?);
    if device_text.trim().is_empty() && at_text.trim().is_empty() {
        return Ok(views::who_had_page(&staff.viewer(), question, None, &register));
    }
    let parsed = parse_device(&device_text).and_then(|d| Ok((d, parse_time("Time", &at_text)?)));
    let (device, at) = match parsed {
        Ok(ok) => ok,
        Err(message) => {
            return Ok(views::who_had_page(
                &staff.viewer(),
                question,
                Some(Err(message)),
                &register,
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
    Ok(views::who_had_page(
        &staff.viewer(),
        question,
        Some(Ok((device.get(), at, answer))),
        &register,
    ))
}

/// The pupils the register form offers, by class; none for a role that cannot write it.
async fn register_pupils(staff: &Staff, state: &AppState) -> Result<Vec<RosterName>, PageError> {
    if !staff.may(Permission::RecordRegister) {
        return Ok(Vec::new());
    }
    Ok(state.store.run(|store| store.roster_names()).await?)
}

/// One record behind a who-had answer, as the staff API gives it: ids only, no roster names.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WhoHadRecordReply {
    pub pupil: String,
    /// `session` or `register`.
    pub source: String,
    pub session: Option<String>,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    /// Who wrote a register line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
}

/// The JSON answer: pseudonymous ids only, no roster names.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WhoHadReply {
    pub device: u16,
    pub at: DateTime<Utc>,
    /// The pupil when every record agrees on one; `None` when nobody is recorded as having it,
    /// and when the records conflict (then `conflict` is true and `conflicting` lists them).
    pub pupil: Option<String>,
    /// `session` or `register`.
    pub source: Option<String>,
    pub session: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Why the session ended (`signed_out`, `device_restarted`, …), once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// The server ended it (the device restarted or went silent): `to` is the last thing heard
    /// from the device, so the pupil had it until at least then.
    #[serde(default)]
    pub end_inferred: bool,
    /// The records name more than one pupil for this moment (e.g. two register lines for one
    /// iPad and lesson): no single answer is given.
    #[serde(default)]
    pub conflict: bool,
    /// Every record of a conflict, the device's own session first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicting: Vec<WhoHadRecordReply>,
}

impl WhoHadReply {
    fn new(device: u16, at: DateTime<Utc>, answer: Answer) -> WhoHadReply {
        let mut reply = WhoHadReply {
            device,
            at,
            pupil: None,
            source: None,
            session: None,
            from: None,
            to: None,
            end_reason: None,
            end_inferred: false,
            conflict: false,
            conflicting: Vec::new(),
        };
        match answer {
            Answer::Nobody => {}
            Answer::One(record) => {
                reply.pupil = Some(record.pupil);
                reply.source = Some(record.source.as_str().to_owned());
                reply.session = record.session;
                reply.from = Some(record.from);
                reply.to = record.to;
                reply.end_reason = record.end_reason;
                reply.end_inferred = record.end_inferred;
            }
            Answer::Conflict(records) => {
                reply.conflict = true;
                reply.conflicting = records
                    .into_iter()
                    .map(|r| WhoHadRecordReply {
                        pupil: r.pupil,
                        source: r.source.as_str().to_owned(),
                        session: r.session,
                        from: r.from,
                        to: r.to,
                        recorded_by: r.recorded_by,
                    })
                    .collect();
            }
        }
        reply
    }
}

/// `GET /api/v1/staff/who-had?device=N&at=T`.
pub async fn who_had_json(
    staff: StaffApi,
    State(state): State<AppState>,
    query: Result<Query<WhoHadQuery>, QueryRejection>,
) -> Result<Json<WhoHadReply>, ApiError> {
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
    Ok(Json(WhoHadReply::new(device.get(), at, answer)))
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(crate) device: String,
    #[serde(default)]
    pub(crate) pupil: String,
    #[serde(default)]
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) to: String,
}

/// A register line's fields, checked; the message names the field that is wrong.
fn check_register_line(
    body: &RegisterForm,
) -> Result<(DeviceNumber, PupilId, DateTime<Utc>, DateTime<Utc>), String> {
    let device = parse_device(&body.device)?;
    let pupil = PupilId::new(body.pupil.trim())
        .map_err(|_| "Pupil: choose a pupil from the list.".to_owned())?;
    let from = parse_time("From", &body.from)?;
    let to = parse_time("To", &body.to)?;
    if to <= from {
        return Err("To must be after From.".into());
    }
    if to - from > chrono::Duration::hours(12) {
        return Err("A lesson cannot be longer than 12 hours.".into());
    }
    Ok((device, pupil, from, to))
}

/// `POST /register`: a teacher records which pupil had a numbered iPad for a lesson. A line that
/// does not check out comes back on the same page with what was typed, and says why.
pub async fn add_register_entry(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RegisterForm>, FormRejection>,
) -> Result<Response, PageError> {
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let refused = |message: String, pupils: Vec<RosterName>| {
        let page = views::who_had_page(
            &staff.viewer(),
            views::WhoHadQuestion { device: "", at: "" },
            None,
            &views::RegisterForm { pupils, values: Some(&body), error: Some(message) },
        );
        (StatusCode::BAD_REQUEST, page).into_response()
    };
    let (device, pupil, from, to) = match check_register_line(&body) {
        Ok(line) => line,
        Err(message) => return Ok(refused(message, register_pupils(&staff, &state).await?)),
    };
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
        let message = format!(
            "Pupil: {pupil} is not on the roster (IT adds pupils with `slate-server pupil add`)."
        );
        return Ok(refused(message, register_pupils(&staff, &state).await?));
    }
    staff.audit(&state, "recorded device register", Some(format!("device {device}"))).await?;
    Ok(Redirect::to(&format!("/devices/{device}")).into_response())
}

/// `GET /fleet`: every device, online or not, its software and last contact, the image version
/// it runs and how its update is going.
pub async fn fleet_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    let (fleet, refused, updates, tests) = state
        .store
        .run(|store| {
            let updates = views::FleetUpdates {
                reports: store.device_update_reports()?,
                bundles: store.update_bundles()?,
                rollout: store.current_rollout()?,
                failures: store.update_failures()?,
            };
            let tests = store.button_tests()?;
            Ok((store.fleet()?, store.refused_devices(DEVICE_PAGE_ROWS)?, updates, tests))
        })
        .await?;
    let now = Utc::now();
    Ok(views::fleet_page(&staff.viewer(), &fleet, &refused, &updates, &tests, now))
}

#[derive(Deserialize)]
pub struct CredentialForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device: String,
    /// "I am sure", ticked: revoking cannot be undone from here (the device needs a new token).
    #[serde(default)]
    confirm: Option<String>,
}

/// The device a credential form names, its CSRF token checked.
fn credential_form(
    staff: &Staff,
    body: Result<Form<CredentialForm>, FormRejection>,
) -> Result<(DeviceNumber, bool), PageError> {
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let device = parse_device(&body.device).map_err(PageError::BadForm)?;
    Ok((device, body.confirm.as_deref() == Some("yes")))
}

/// `POST /fleet/revoke`: a lost or stolen device, revoked in one step (`Store::revoke_device`).
pub async fn revoke_device(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<CredentialForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (device, sure) = credential_form(&staff, body)?;
    if !sure {
        return Err(PageError::BadForm(format!(
            "Device {device} was not revoked: tick \"I am sure\" first. It will need a new enrollment token from IT to work again."
        )));
    }
    let by = staff.actor.clone();
    let revoked =
        state.store.run(move |store| store.revoke_device(device, &by, Utc::now())).await?;
    if !revoked {
        return Err(PageError::Conflict(format!(
            "Device {device} is not enrolled, or is revoked already."
        )));
    }
    tracing::info!(%device, "device revoked");
    Ok(Redirect::to(&format!("/fleet#device-{device}")).into_response())
}

/// `POST /fleet/replace-credential`: the device is told at its next upload to fetch a new
/// credential; the old one stops working once the new one is used.
pub async fn replace_credential(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<CredentialForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (device, _) = credential_form(&staff, body)?;
    let by = staff.actor.clone();
    let asked = state
        .store
        .run(move |store| store.request_credential_rotation(device, &by, Utc::now()))
        .await?;
    if !asked {
        return Err(PageError::Conflict(format!(
            "Device {device} is not enrolled, or is revoked."
        )));
    }
    Ok(Redirect::to(&format!("/fleet#device-{device}")).into_response())
}
