//! Staff sign-in: accounts with roles sign in with a password, then TOTP where the role needs
//! it, throttled; sign-out, password change, and each account's own page, where staff set the
//! PIN they unlock held devices with. The staff-key link (`/staff/login?key=` with the data
//! directory's `staff-key` file) works only where the config turns it on (`staff_key_login`,
//! off by default); it acts as a DSL named `staff-key` in the audit log. The way back into a
//! lost account is the `recovery` feature's console link. Who is asking on every other route is `http::staff`'s; the rules are `auth`'s.

mod views;

use crate::access::{self, Gate};
use crate::auth::{self, Role};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::routes::Routes;
use crate::http::staff::{
    clear_cookie, cookie, request_cookie, staff_cookie, Staff, COOKIE_NAME, LOGIN_COOKIE,
    SESSION_COOKIE, STAFF_KEY_ACTOR,
};
use crate::http::AppState;
use crate::secrets::Secret;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::Markup;
use serde::Deserialize;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

pub fn routes() -> Routes {
    Routes::new()
        .get("/staff/login", Gate::Public, login_page)
        .post("/staff/login", Gate::Public, login)
        .post("/staff/logout", Gate::SignedIn, logout)
        .get("/staff/password", Gate::SignedIn, password_page)
        .post("/staff/password", Gate::SignedIn, change_password)
        .get("/staff/account", Gate::SignedIn, account_page)
        .post("/staff/account/pin", Gate::SignedIn, set_unlock_pin)
}

/// The peer's address, when the server was started with connect info (it always is by `serve`).
pub struct PeerAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
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
        return Ok(([(header::SET_COOKIE, cookie)], Redirect::to(access::landing_page(Role::Dsl)))
            .into_response());
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
    (status, [(header::SET_COOKIE, cookie)], views::login_page(token.expose(), error, username))
        .into_response()
}

/// What a refused sign-in is told (`auth::sign_in_refused`): whether this server has any account
/// at all is safe to say.
async fn refused_words(state: &AppState) -> Result<&'static str, PageError> {
    let has_accounts = state.store.run(|store| store.has_staff_accounts()).await?;
    Ok(auth::sign_in_refused(has_accounts))
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

/// `POST /staff/login`: password, then TOTP where the account has it (DSL, deputy and IT must).
pub async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form(body)?;
    let expected = request_cookie(&headers, LOGIN_COOKIE, state.secure_cookies).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(PageError::Csrf);
    }
    let now = Utc::now();
    // Checked before anything else: a malformed name is never looked up, counted or audited.
    let Some(username) = auth::sign_in_username(&form.username) else {
        let refused = refused_words(&state).await?;
        return Ok(login_form(&state, StatusCode::UNAUTHORIZED, Some(refused), ""));
    };
    // Counted before the password is checked, so a parallel burst cannot all get through.
    if let Err(open_at) = state.throttle().admit(&username, peer, now) {
        let message = auth::throttled_message(open_at, now);
        return Ok(login_form(&state, StatusCode::TOO_MANY_REQUESTS, Some(&message), &username));
    }
    let lookup = username.clone();
    let account = state.store.run(move |store| store.staff_by_username(&lookup)).await?;
    let password = form.password;
    let code = form.code;
    let dummy = state.dummy_phc.clone();
    let cost = state.hash_cost;
    let verdict = state
        .password_work(move || {
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
        .await?;
    let (account, step) = match verdict {
        Ok(found) => found,
        Err(why) => {
            // An unknown name may be something else typed in the wrong box: not kept.
            let actor = if why == "unknown account" { "-".to_owned() } else { username.clone() };
            state
                .store
                .run(move |store| store.audit(now, &actor, "sign-in refused", None, Some(why)))
                .await?;
            let refused = refused_words(&state).await?;
            return Ok(login_form(&state, StatusCode::UNAUTHORIZED, Some(refused), &username));
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
        let refused = refused_words(&state).await?;
        return Ok(login_form(&state, StatusCode::UNAUTHORIZED, Some(refused), &username));
    }
    state.throttle().succeeded(&username, peer);
    tracing::info!(role = %account.role, "staff signed in");
    let next = if account.must_change_password {
        "/staff/password"
    } else {
        access::landing_page(account.role)
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

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/logout`: ends the session (or forgets the staff-key cookie).
pub async fn logout(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form(body)?;
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
    Ok(views::password_page(&staff.viewer(), None))
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
    body: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form(body)?;
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
    let checked = state
        .password_work(move || {
            if !auth::verify_password(&form.current, &account.password_phc) {
                return Err("The current password is not right.".to_owned());
            }
            auth::check_new_password(&form.new, &form.confirm, &username)?;
            Ok((account.id, auth::hash_password(&form.new, cost)))
        })
        .await?;
    let (id, phc) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                views::password_page(&staff.viewer(), Some(&message)),
            )
                .into_response())
        }
    };
    let keep = staff.session.ok_or(PageError::StaffOnly)?;
    state.store.run(move |store| store.change_password(id, &phc, &keep)).await?;
    staff.audit(&state, "changed password", None).await?;
    Ok(Redirect::to(access::landing_page(staff.role)).into_response())
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
    Ok(views::account_page(&staff.viewer(), set_at, saved, None))
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
    body: Result<Form<UnlockPinForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form(body)?;
    staff.check_csrf(&form.csrf)?;
    let account = own_account(&staff, &state).await?;
    if let Err(message) = auth::check_unlock_pin(&form.pin, &form.confirm) {
        let set_at = state.store.run(move |store| store.unlock_pin_set_at(account.id)).await?;
        let page = views::account_page(&staff.viewer(), set_at, false, Some(&message));
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let cost = state.hash_cost;
    let pin = form.pin;
    let phc = state.password_work(move || auth::hash_password(&pin, cost)).await?;
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
