//! Devices: one device's page (sessions, the iPad register, reports, blocked attempts, apps
//! opened and agreements), "who had device N at T" (page and staff JSON API), the register
//! teachers keep for numbered iPads, and the fleet with its refused hardware. Each route's gate
//! checks the role (`access`); a device page's case file (reports, blocked addresses) is read
//! only for those who may see it; handlers write the audit log; queries are `store`'s.

mod views;

use crate::access::{Gate, Permission};
use crate::http::error::{ApiError, PageError};
use crate::http::forms::{form, parse_device, parse_time};
use crate::http::routes::Routes;
use crate::http::staff::{Staff, StaffApi};
use crate::http::AppState;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
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
        .get("/api/v1/staff/who-had", look_up, who_had_json)
}

/// `GET /devices/{number}`: one device's sessions, register lines and incidents. Numbers with no
/// enrolled device but register lines (iPads) show the register alone.
pub async fn device_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Markup, PageError> {
    let not_found = || PageError::NotFound(format!("There is no device {number}."));
    let device =
        number.parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(not_found)?;
    let case_file = staff.may(Permission::ReadCaseFile);
    let found = state
        .store
        .run(move |store| {
            let record = store.device(device)?;
            let register = store.register_entries(device, DEVICE_PAGE_ROWS)?;
            if record.is_none() && register.is_empty() {
                return Ok(None);
            }
            let sessions = store.device_sessions(device, DEVICE_PAGE_ROWS)?;
            // The case file is read only for those who may see it.
            let case_file = if case_file {
                let incidents = store.device_incidents(device.get(), DEVICE_PAGE_ROWS)?;
                let activity = views::DeviceActivity {
                    blocked: store.device_activity(device, "filter_blocked", DEVICE_PAGE_ROWS)?,
                    apps: store.device_activity(device, "app_opened", DEVICE_PAGE_ROWS)?,
                    agreements: store.device_activity(device, "aup_accepted", DEVICE_PAGE_ROWS)?,
                };
                Some((incidents, activity))
            } else {
                None
            };
            Ok(Some((record, sessions, register, case_file)))
        })
        .await?;
    let (record, sessions, register, case_file) = found.ok_or_else(not_found)?;
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
    let Query(query) = query.map_err(|e| PageError::BadForm(e.body_text()))?;
    let device_text = query.device.unwrap_or_default();
    let at_text = query.at.unwrap_or_default();
    if device_text.trim().is_empty() && at_text.trim().is_empty() {
        return Ok(views::who_had_page(&staff.viewer(), "", "", None));
    }
    let parsed = parse_device(&device_text).and_then(|d| Ok((d, parse_time("Time", &at_text)?)));
    let (device, at) = match parsed {
        Ok(ok) => ok,
        Err(message) => {
            return Ok(views::who_had_page(
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
    Ok(views::who_had_page(
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
    /// Why the session ended (`signed_out`, `device_restarted`, …), once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// The server ended it (the device restarted or went silent): `to` is the last thing heard
    /// from the device, so the pupil had it until at least then.
    #[serde(default)]
    pub end_inferred: bool,
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
    Ok(Json(WhoHadReply {
        device: device.get(),
        at,
        pupil: answer.as_ref().map(|a| a.pupil.clone()),
        source: answer.as_ref().map(|a| a.source.to_owned()),
        session: answer.as_ref().and_then(|a| a.session.clone()),
        from: answer.as_ref().map(|a| a.from),
        to: answer.as_ref().and_then(|a| a.to),
        end_reason: answer.as_ref().and_then(|a| a.end_reason.clone()),
        end_inferred: answer.as_ref().is_some_and(|a| a.end_inferred),
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
    let (fleet, refused) = state
        .store
        .run(|store| Ok((store.fleet()?, store.refused_devices(DEVICE_PAGE_ROWS)?)))
        .await?;
    Ok(views::fleet_page(&staff.viewer(), &fleet, &refused, Utc::now()))
}
