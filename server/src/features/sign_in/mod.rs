//! Staff access: accounts with roles, sign-in (password, then TOTP where the role needs it) with
//! throttling, server-side sessions, CSRF tokens, sign-out, password change and each account's
//! own page, where staff set the PIN they unlock held devices with; the extractors
//! every staff route uses to learn who is asking and what they may do. The staff-key link that
//! `slate-server serve` prints stays as IT's break-glass way in (config `staff_key_login`); it
//! acts as a DSL named `staff-key` in the audit log. The rules are `auth`'s; HTML is `pages`'.

use crate::auth::{self, Permission, Role};
use crate::features::device_api::ApiError;
use crate::http::layout::{self, Viewer};
use crate::http::AppState;
use crate::secrets::{Secret, SecretHash};
use crate::store::StoreError;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::Utc;
use maud::Markup;
use serde::Deserialize;
use slate_protocol::ErrorReply;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// The break-glass cookie: the staff key itself.
pub const COOKIE_NAME: &str = "slate_staff";
/// A signed-in account's session id.
pub const SESSION_COOKIE: &str = "slate_session";
/// The sign-in form's CSRF token, before there is a session.
pub const LOGIN_COOKIE: &str = "slate_login";
/// The audit log's name for whoever used the staff key.
pub const STAFF_KEY_ACTOR: &str = "staff-key";

/// A failed staff page, answered with HTML.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("staff sign-in needed")]
    StaffOnly,
    #[error("staff login link refused")]
    LoginRefused,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("role {0} may not do this")]
    Forbidden(Role),
    #[error("form token missing or wrong")]
    Csrf,
    #[error("bad form: {0}")]
    BadForm(String),
    #[error("refused: {0}")]
    Conflict(String),
    #[error("password change needed first")]
    MustChangePassword,
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            PageError::MustChangePassword => return Redirect::to("/staff/password").into_response(),
            PageError::StaffOnly => (
                StatusCode::UNAUTHORIZED,
                layout::message_page(
                    "Staff only",
                    "This page is for staff. Sign in at /staff/login, or open the DSL link that slate-server printed when it started.",
                ),
            ),
            PageError::LoginRefused => (
                StatusCode::UNAUTHORIZED,
                layout::message_page(
                    "Link not valid",
                    "That sign-in link is not valid. Sign in at /staff/login, or use the DSL link that slate-server printed when it started.",
                ),
            ),
            PageError::NotFound(what) => (StatusCode::NOT_FOUND, layout::message_page("Not found", what)),
            PageError::Forbidden(role) => (
                StatusCode::FORBIDDEN,
                layout::message_page("Not for your role", &format!("Your account's role ({role}) cannot open this. Ask your DSL.")),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                layout::message_page("Form expired", "That form is out of date or came from another site. Go back, reload the page and try again."),
            ),
            PageError::BadForm(message) => (StatusCode::BAD_REQUEST, layout::message_page("Please check the form", message)),
            PageError::Conflict(message) => (StatusCode::CONFLICT, layout::message_page("Not recorded", message)),
            PageError::Storage(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                layout::message_page("Something went wrong", "The page could not be loaded. The server's log has details."),
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

/// Who is asking: a signed-in account or the staff key. Every staff route takes one.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The username, or [`STAFF_KEY_ACTOR`].
    pub actor: String,
    pub role: Role,
    pub csrf: String,
    session: Option<SecretHash>,
}

impl Staff {
    pub fn require(&self, permission: Permission) -> Result<(), PageError> {
        if auth::allowed(self.role, permission) {
            Ok(())
        } else {
            Err(PageError::Forbidden(self.role))
        }
    }

    /// Compares a form's token with this session's, in constant time.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    pub fn viewer(&self) -> Viewer {
        Viewer { name: self.actor.clone(), role: self.role, csrf: self.csrf.clone() }
    }

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        record: Option<String>,
    ) -> Result<(), StoreError> {
        let actor = self.actor.clone();
        let action = action.to_owned();
        state
            .store
            .run(move |store| store.audit(Utc::now(), &actor, &action, record.as_deref(), None))
            .await
    }
}

/// The break-glass principal's CSRF token: derived from the key, so it needs no storage.
fn staff_key_csrf(key: &Secret) -> String {
    let hash = SecretHash::of(&format!("slate-csrf:{}", key.expose()));
    hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

enum Who {
    Nobody,
    MustChangePassword,
    Staff(Staff),
}

async fn who(parts: &Parts, state: &AppState) -> Result<Who, StoreError> {
    if let Some(id) = cookie_value(&parts.headers, SESSION_COOKIE) {
        let id = SecretHash::of(id);
        let now = Utc::now();
        let session = state
            .store
            .run(move |store| {
                let Some(session) = store.session(&id)? else { return Ok(None) };
                if !auth::session_live(session.created_at, session.last_seen_at, now) {
                    store.delete_session(&id)?;
                    return Ok(None);
                }
                store.touch_session(&id, now)?;
                Ok(Some((session, id)))
            })
            .await?;
        if let Some((session, id)) = session {
            let path = parts.uri.path();
            if session.must_change_password && path != "/staff/password" && path != "/staff/logout"
            {
                return Ok(Who::MustChangePassword);
            }
            return Ok(Who::Staff(Staff {
                actor: session.username,
                role: session.role,
                csrf: session.csrf_token,
                session: Some(id),
            }));
        }
    }
    let key_ok = state.config.staff_key_login
        && cookie_value(&parts.headers, COOKIE_NAME)
            .is_some_and(|key| state.staff_key.matches(key));
    if key_ok {
        return Ok(Who::Staff(Staff {
            actor: STAFF_KEY_ACTOR.into(),
            role: Role::Dsl,
            csrf: staff_key_csrf(&state.staff_key),
            session: None,
        }));
    }
    Ok(Who::Nobody)
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match who(parts, state).await? {
            Who::Staff(staff) => Ok(staff),
            Who::MustChangePassword => Err(PageError::MustChangePassword),
            Who::Nobody => Err(PageError::StaffOnly),
        }
    }
}

/// [`Staff`] for the JSON API: refusals are [`ErrorReply`]s.
pub struct StaffApi(pub Staff);

impl StaffApi {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        self.0.require(permission).map_err(|_| ApiError::Forbidden)
    }
}

impl FromRequestParts<AppState> for StaffApi {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match who(parts, state).await? {
            Who::Staff(staff) => Ok(StaffApi(staff)),
            Who::MustChangePassword | Who::Nobody => Err(ApiError::StaffOnly),
        }
    }
}

/// The peer's address, when the server was started with connect info (it always is by `serve`).
pub struct PeerAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
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

/// A `Set-Cookie` value that lives for this browser session, unreadable by script, never sent
/// by another site's request, and only over HTTPS when the server serves HTTPS.
pub fn cookie(name: &str, value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    format!("{}; Max-Age=0", cookie(name, "", secure))
}

/// The `Set-Cookie` value that signs staff in with the staff key.
pub fn staff_cookie(key: &str, secure: bool) -> String {
    cookie(COOKIE_NAME, key, secure)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    key: Option<String>,
}

/// `GET /staff/login`: the sign-in form; `GET /staff/login?key=K`: the staff-key link, which
/// sets the break-glass cookie and goes to reports.
pub async fn login_page(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|_| PageError::LoginRefused)?;
    if let Some(key) = query.key {
        if !state.config.staff_key_login || !state.staff_key.matches(&key) {
            return Err(PageError::LoginRefused);
        }
        tracing::info!("staff signed in with the staff key");
        state
            .store
            .run(|store| store.audit(Utc::now(), STAFF_KEY_ACTOR, "signed in", None, None))
            .await?;
        let cookie = staff_cookie(state.staff_key.expose(), state.secure_cookies);
        // `Redirect::to` is 303 See Other: the browser follows with a GET.
        return Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/reports")).into_response());
    }
    Ok(login_form(&state, StatusCode::OK, None, ""))
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    username: &str,
) -> Response {
    let token = Secret::generate();
    let cookie = cookie(LOGIN_COOKIE, token.expose(), state.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], layout::login_page(token.expose(), error, username))
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

const SIGN_IN_REFUSED: &str = "That username, password or code is not right.";

/// `POST /staff/login`: password, then TOTP where the account has it (DSL, deputy and IT must).
pub async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| PageError::BadForm(e.body_text()))?;
    let expected = cookie_value(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(PageError::Csrf);
    }
    let username = form.username.trim().to_lowercase();
    let now = Utc::now();
    let keys = [
        format!("user:{username}"),
        format!("ip:{}", peer.map(|p| p.to_string()).unwrap_or_default()),
    ];
    if let Some(until) = throttled(&state, &keys, now) {
        let minutes = (until - now).num_minutes() + 1;
        let message = format!("Too many tries. Wait {minutes} minutes and try again, or ask IT.");
        return Ok(login_form(&state, StatusCode::TOO_MANY_REQUESTS, Some(&message), &username));
    }
    let lookup = username.clone();
    let account = state.store.run(move |store| store.staff_by_username(&lookup)).await?;
    let password = form.password;
    let code = form.code;
    let dummy = state.dummy_phc.clone();
    let cost = state.hash_cost;
    // Argon2 is slow on purpose: off the async threads.
    let verdict = tokio::task::spawn_blocking(move || {
        let Some(account) = account.filter(|a| !a.disabled) else {
            auth::verify_password(
                &password,
                dummy.get_or_init(|| auth::hash_password("unused", cost)),
            );
            return Err("unknown account");
        };
        if !auth::verify_password(&password, &account.password_phc) {
            return Err("wrong password");
        }
        match (&account.totp_secret, account.role.requires_totp()) {
            (None, true) => Err("no second factor set up"),
            (None, false) => Ok((account, None)),
            (Some(secret), _) => {
                match auth::verify_totp(secret, &code, now, account.totp_last_step) {
                    Ok(step) => Ok((account, Some(step))),
                    Err(_) => Err("wrong or reused code"),
                }
            }
        }
    })
    .await
    .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
    let (account, step) = match verdict {
        Ok(found) => found,
        Err(why) => {
            record_failure(&state, &keys, now);
            let actor = username.clone();
            state
                .store
                .run(move |store| store.audit(now, &actor, "sign-in refused", None, Some(why)))
                .await?;
            return Ok(login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                Some(SIGN_IN_REFUSED),
                &username,
            ));
        }
    };
    let session = Secret::generate();
    let csrf = Secret::generate();
    let session_hash = session.hash();
    let staff_id = account.id;
    let actor = account.username.clone();
    let fresh = state
        .store
        .run(move |store| {
            if let Some(step) = step {
                if !store.use_totp_step(staff_id, step)? {
                    return Ok(false);
                }
            }
            store.create_session(&session_hash, staff_id, csrf.expose(), now)?;
            store.audit(now, &actor, "signed in", None, None)?;
            Ok(true)
        })
        .await?;
    if !fresh {
        record_failure(&state, &keys, now);
        return Ok(login_form(&state, StatusCode::UNAUTHORIZED, Some(SIGN_IN_REFUSED), &username));
    }
    forget_failures(&state, &keys[0]);
    tracing::info!(role = %account.role, "staff signed in");
    let next = if account.must_change_password {
        "/staff/password"
    } else if account.role == Role::ItAdmin {
        "/fleet"
    } else {
        "/reports"
    };
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    for value in [
        cookie(SESSION_COOKIE, session.expose(), state.secure_cookies),
        clear_cookie(LOGIN_COOKIE, state.secure_cookies),
    ] {
        headers.append(header::SET_COOKIE, value.parse().expect("cookie is a valid header"));
    }
    Ok(response)
}

fn throttled(
    state: &AppState,
    keys: &[String],
    now: chrono::DateTime<Utc>,
) -> Option<chrono::DateTime<Utc>> {
    let failures = state.failures.lock().unwrap_or_else(|p| p.into_inner());
    let policies = [auth::PER_ACCOUNT, auth::PER_ADDRESS];
    keys.iter()
        .zip(policies)
        .filter_map(|(key, policy)| {
            auth::throttled_until(failures.get(key).map_or(&[][..], |v| v), now, policy)
        })
        .max()
}

fn record_failure(state: &AppState, keys: &[String], now: chrono::DateTime<Utc>) {
    let mut failures = state.failures.lock().unwrap_or_else(|p| p.into_inner());
    for key in keys {
        let list = failures.entry(key.clone()).or_default();
        list.retain(|t| *t > now - auth::PER_ADDRESS.window);
        list.push(now);
    }
}

fn forget_failures(state: &AppState, key: &str) {
    state.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/logout`: ends the session (or forgets the staff-key cookie).
pub async fn logout(
    staff: Staff,
    State(state): State<AppState>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| PageError::BadForm(e.body_text()))?;
    staff.check_csrf(&form.csrf)?;
    if let Some(id) = staff.session {
        state.store.run(move |store| store.delete_session(&id)).await?;
    }
    staff.audit(&state, "signed out", None).await?;
    let mut response = Redirect::to("/staff/login").into_response();
    for name in [SESSION_COOKIE, COOKIE_NAME] {
        let value = clear_cookie(name, state.secure_cookies);
        response.headers_mut().append(header::SET_COOKIE, value.parse().expect("valid cookie"));
    }
    Ok(response)
}

/// `GET /staff/password`: the form to choose a password (required after IT sets one).
pub async fn password_page(staff: Staff) -> Result<Markup, PageError> {
    if staff.session.is_none() {
        return Err(PageError::Conflict("The staff key has no password to change.".into()));
    }
    Ok(layout::password_page(&staff.viewer(), None))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/password`.
pub async fn change_password(
    staff: Staff,
    State(state): State<AppState>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| PageError::BadForm(e.body_text()))?;
    staff.check_csrf(&form.csrf)?;
    if staff.session.is_none() {
        return Err(PageError::Conflict("The staff key has no password to change.".into()));
    }
    let lookup = staff.actor.clone();
    let account = state
        .store
        .run(move |store| store.staff_by_username(&lookup))
        .await?
        .ok_or(PageError::StaffOnly)?;
    let cost = state.hash_cost;
    let username = staff.actor.clone();
    let checked = tokio::task::spawn_blocking(move || {
        if !auth::verify_password(&form.current, &account.password_phc) {
            return Err("The current password is not right.".to_owned());
        }
        auth::check_new_password(&form.new, &form.confirm, &username)?;
        Ok((account.id, auth::hash_password(&form.new, cost)))
    })
    .await
    .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
    let (id, phc) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                layout::password_page(&staff.viewer(), Some(&message)),
            )
                .into_response())
        }
    };
    state.store.run(move |store| store.set_password(id, &phc)).await?;
    staff.audit(&state, "changed password", None).await?;
    Ok(Redirect::to("/reports").into_response())
}

/// The signed-in account itself (the staff key has none).
async fn own_account(
    staff: &Staff,
    state: &AppState,
) -> Result<crate::store::StaffAccount, PageError> {
    if staff.session.is_none() {
        return Err(PageError::Conflict(
            "The staff key has no account: sign in with your own to set your unlock PIN.".into(),
        ));
    }
    let lookup = staff.actor.clone();
    state
        .store
        .run(move |store| store.staff_by_username(&lookup))
        .await?
        .filter(|a| !a.disabled)
        .ok_or(PageError::StaffOnly)
}

#[derive(Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /staff/account`: the member of staff's own account, with their unlock PIN.
pub async fn account_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Markup, PageError> {
    let account = own_account(&staff, &state).await?;
    let saved = query.is_ok_and(|Query(q)| q.saved.is_some());
    let set_at = state.store.run(move |store| store.unlock_pin_set_at(account.id)).await?;
    Ok(layout::account_page(&staff.viewer(), set_at, saved, None))
}

#[derive(Deserialize)]
pub struct UnlockPinForm {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/account/pin`: sets the account's own unlock PIN. Stored and sent to devices as
/// an argon2id hash only; the audit log says it was set, never what it is.
pub async fn set_unlock_pin(
    staff: Staff,
    State(state): State<AppState>,
    form: Result<Form<UnlockPinForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| PageError::BadForm(e.body_text()))?;
    staff.check_csrf(&form.csrf)?;
    let account = own_account(&staff, &state).await?;
    if let Err(message) = auth::check_unlock_pin(&form.pin, &form.confirm) {
        let set_at = state.store.run(move |store| store.unlock_pin_set_at(account.id)).await?;
        let page = layout::account_page(&staff.viewer(), set_at, false, Some(&message));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let cost = state.hash_cost;
    let pin = form.pin;
    let phc = tokio::task::spawn_blocking(move || auth::hash_password(&pin, cost))
        .await
        .map_err(|e| StoreError::TaskFailed(e.to_string()))?;
    // Random, so the id says nothing about the account (not even when it was made).
    let fresh =
        slate_protocol::StaffId::new(format!("s-{}", &crate::secrets::random_hex_16()[..12]))
            .expect("s- and hex is a staff id");
    let id = state
        .store
        .run(move |store| store.set_unlock_pin(account.id, &phc, &fresh, Utc::now()))
        .await?
        .ok_or(PageError::StaffOnly)?;
    staff.audit(&state, "set own unlock PIN", Some(format!("staff id {id}"))).await?;
    state.commands_changed();
    tracing::info!(staff = %id, "unlock PIN set");
    Ok(Redirect::to("/staff/account?saved=1").into_response())
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
    use crate::secrets::Secret;
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
        assert_eq!(
            clear_cookie("a", true),
            "a=; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0"
        );
    }

    #[test]
    fn the_staff_key_csrf_token_is_derived_and_not_the_key() {
        let key = Secret::from_string("k3y-k3y-k3y".into());
        let token = staff_key_csrf(&key);
        assert_eq!(token.len(), 64);
        assert!(!token.contains("k3y"));
        assert_eq!(token, staff_key_csrf(&key));
    }
}
