//! Staff access: sign-in with the staff key, the cookie check on every staff route, and the
//! staff handlers (HTML pages and the JSON reports API). Rendering is `pages`'; queries `store`'s.
//!
//! The staff key is temporary access for the walking skeleton: accounts with roles and a second
//! factor replace it later.

use crate::api::ApiError;
use crate::pages;
use crate::server::AppState;
use crate::store::{ReportRecord, StoreError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::Markup;
use serde::{Deserialize, Serialize};
use slate_protocol::{DeviceNumber, ErrorReply};

pub const COOKIE_NAME: &str = "slate_staff";
/// Reports on the reports page; older ones wait for the search a later issue adds.
const PAGE_REPORTS: u32 = 500;
/// Sessions and reports on a device page.
const DEVICE_PAGE_ROWS: u32 = 200;
const DEFAULT_API_LIMIT: u32 = 100;
const MAX_API_LIMIT: u32 = 1000;

/// A failed staff page, answered with HTML.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("staff sign-in needed")]
    StaffOnly,
    #[error("staff login link refused")]
    LoginRefused,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            PageError::StaffOnly => (
                StatusCode::UNAUTHORIZED,
                pages::message_page(
                    "Staff only",
                    "This page is for staff. Open the DSL link that slate-server printed when it started.",
                ),
            ),
            PageError::LoginRefused => (
                StatusCode::UNAUTHORIZED,
                pages::message_page(
                    "Link not valid",
                    "That sign-in link is not valid. Use the DSL link that slate-server printed when it started.",
                ),
            ),
            PageError::NotFound(what) => (StatusCode::NOT_FOUND, pages::message_page("Not found", what)),
            PageError::Storage(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message_page("Something went wrong", "The page could not be loaded. The server's log has details."),
            ),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "staff page failed");
        } else {
            tracing::warn!(error = %self, status = status.as_u16(), "staff page refused");
        }
        (status, page).into_response()
    }
}

/// Proof that the request carries the staff cookie. Refused requests get an HTML page.
pub struct StaffPage;

impl FromRequestParts<AppState> for StaffPage {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        is_staff(&parts.headers, state).then_some(StaffPage).ok_or(PageError::StaffOnly)
    }
}

/// Proof that the request carries the staff cookie. Refused requests get an [`ErrorReply`].
pub struct StaffApi;

impl FromRequestParts<AppState> for StaffApi {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        is_staff(&parts.headers, state).then_some(StaffApi).ok_or(ApiError::StaffOnly)
    }
}

fn is_staff(headers: &HeaderMap, state: &AppState) -> bool {
    cookie_value(headers, COOKIE_NAME).is_some_and(|key| state.staff_key.matches(key))
}

/// The value of cookie `name` from any `Cookie` header.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The `Set-Cookie` value that signs staff in for this browser session.
pub fn staff_cookie(key: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={key}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

#[derive(Deserialize)]
pub struct LoginQuery {
    key: Option<String>,
}

/// `GET /staff/login?key=K`: the link the server prints. Sets the cookie and goes to reports.
pub async fn login(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let key = query.ok().and_then(|Query(q)| q.key).ok_or(PageError::LoginRefused)?;
    if !state.staff_key.matches(&key) {
        return Err(PageError::LoginRefused);
    }
    tracing::info!("staff signed in");
    let cookie = staff_cookie(state.staff_key.expose(), state.secure_cookies);
    // `Redirect::to` is 303 See Other: the browser follows with a GET.
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/reports")).into_response())
}

/// `GET /reports`: every report, newest first.
pub async fn reports_page(
    _: StaffPage,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let reports = state.store.run(|store| store.reports(PAGE_REPORTS)).await?;
    Ok(pages::reports_page(&reports, PAGE_REPORTS))
}

/// `GET /devices/{number}`: one device's sessions and reports.
pub async fn device_page(
    _: StaffPage,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Markup, PageError> {
    let not_found = || PageError::NotFound(format!("There is no device {number}."));
    let device =
        number.parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(not_found)?;
    let found = state
        .store
        .run(move |store| {
            let Some(record) = store.device(device)? else { return Ok(None) };
            let sessions = store.device_sessions(device, DEVICE_PAGE_ROWS)?;
            let reports = store.device_reports(device, DEVICE_PAGE_ROWS)?;
            Ok(Some((record, sessions, reports)))
        })
        .await?;
    let (record, sessions, reports) = found.ok_or_else(not_found)?;
    Ok(pages::device_page(&record, &sessions, &reports))
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
        }
    }
}

/// `GET /api/v1/staff/reports?limit=N`: reports newest first, N from 0 to 1000 (default 100;
/// larger values are capped).
pub async fn reports_json(
    _: StaffApi,
    State(state): State<AppState>,
    query: Result<Query<ReportsQuery>, QueryRejection>,
) -> Result<Json<Vec<StaffReport>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_API_LIMIT).min(MAX_API_LIMIT);
    let reports = state.store.run(move |store| store.reports(limit)).await?;
    Ok(Json(reports.into_iter().map(StaffReport::from).collect()))
}

/// Anything else: 404, as JSON under `/api/`, as a page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        (StatusCode::NOT_FOUND, Json(ErrorReply { error: "no such endpoint".into() }))
            .into_response()
    } else {
        PageError::NotFound("There is no page at this address.".into()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; slate_staff=k3y; b=2"));
        assert_eq!(cookie_value(&headers, "slate_staff"), Some("k3y"));
        assert_eq!(cookie_value(&headers, "slate"), None);
        let mut two = HeaderMap::new();
        two.append(header::COOKIE, HeaderValue::from_static("a=1"));
        two.append(header::COOKIE, HeaderValue::from_static("slate_staff=x"));
        assert_eq!(cookie_value(&two, "slate_staff"), Some("x"));
    }

    #[test]
    fn the_staff_cookie_is_locked_down() {
        assert_eq!(staff_cookie("k", false), "slate_staff=k; HttpOnly; SameSite=Strict; Path=/");
        assert!(staff_cookie("k", true).ends_with("; Secure"));
    }
}
