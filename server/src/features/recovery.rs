//! Getting back into an account with a one-time link from the server's own console
//! (`slate-server staff recover`), the way in when a DSL or IT has lost their password or
//! phone. The link works once, for minutes; whoever opens it sets up TOTP again (the code must
//! check before anything changes) and chooses a new password, and gets a normal expiring
//! session. The audit log names the account; the link itself is never logged (request logs
//! carry the path alone) and only its hash is stored. Rules are `auth`'s, storage `store`'s.

use crate::access::Gate;
use crate::auth;
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::layout;
use crate::http::routes::Routes;
use crate::http::staff::{clear_cookie, cookie, request_cookie, LOGIN_COOKIE, SESSION_COOKIE};
use crate::http::AppState;
use crate::secrets::{Secret, SecretHash};
use crate::store::{Recovery, StaffAccount};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

pub fn routes() -> Routes {
    Routes::new().get("/staff/recover", Gate::Public, recover_page).post(
        "/staff/recover",
        Gate::Public,
        recover,
    )
}

#[derive(Deserialize)]
pub struct RecoverQuery {
    #[serde(default)]
    token: String,
}

/// The account a live link is for, or "link not valid" (used, expired, unknown alike).
async fn live_link(state: &AppState, token: &str) -> Result<StaffAccount, PageError> {
    let hash = SecretHash::of(token);
    let now = Utc::now();
    state
        .store
        .run(move |store| store.recovery_link_account(&hash, now))
        .await?
        .ok_or(PageError::LoginRefused)
}

/// `GET /staff/recover?token=T`: a new TOTP secret to add to an authenticator app, and the form
/// that proves it works and sets a new password.
pub async fn recover_page(
    State(state): State<AppState>,
    query: Result<Query<RecoverQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|_| PageError::LoginRefused)?;
    let account = live_link(&state, &query.token).await?;
    Ok(recover_form(&state, StatusCode::OK, &account, &query.token, &auth::new_totp_secret(), None))
}

fn recover_form(
    state: &AppState,
    status: StatusCode,
    account: &StaffAccount,
    token: &str,
    secret: &str,
    error: Option<&str>,
) -> Response {
    let csrf = Secret::generate();
    let uri = auth::otpauth_uri("Slate", &account.username, secret);
    let page = layout(
        None,
        "Recover your account",
        html! {
            h1 { "Recover " (account.username) }
            p { "This link works once and for a few minutes. Add this key to your authenticator app (or open the link below on your phone), then type the code it shows and choose a new password. Your other sessions end." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            p { "Key: " code { (secret) } }
            p { a href=(uri) { "Add to an authenticator app" } }
            form.stack method="post" action="/staff/recover" {
                input type="hidden" name="csrf" value=(csrf.expose());
                input type="hidden" name="token" value=(token);
                input type="hidden" name="secret" value=(secret);
                label for="code" { "Code from your authenticator app" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code" required;
                label for="new" { "New password (at least " (auth::MIN_PASSWORD_CHARS) " characters)" }
                input #new name="new" type="password" autocomplete="new-password" required;
                label for="confirm" { "New password again" }
                input #confirm name="confirm" type="password" autocomplete="new-password" required;
                button type="submit" { "Set up and sign in" }
            }
        },
    );
    let cookie = cookie(LOGIN_COOKIE, csrf.expose(), state.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /staff/recover`: the code from the new secret, the new password; then the link is
/// spent and the account signed in.
pub async fn recover(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<RecoverForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form(body)?;
    let expected = request_cookie(&headers, LOGIN_COOKIE, state.secure_cookies).unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Err(PageError::Csrf);
    }
    let account = live_link(&state, &form.token).await?;
    let now = Utc::now();
    let again = |message: &str| {
        let status = StatusCode::BAD_REQUEST;
        Ok(recover_form(&state, status, &account, &form.token, &form.secret, Some(message)))
    };
    if let Err(message) = auth::check_new_password(&form.new, &form.confirm, &account.username) {
        return again(&message);
    }
    if !auth::is_totp_secret(&form.secret) {
        return Err(PageError::BadForm(
            "The key is not one this page gave: open the link again.".into(),
        ));
    }
    let Ok(step) = auth::verify_totp(&form.secret, &form.code, now, None) else {
        return again("That code is not right: check the key in your app and try the next code.");
    };
    let (new, cost) = (form.new.clone(), state.hash_cost);
    let password_phc = state.password_work(move || auth::hash_password(&new, cost)).await?;
    let (session, csrf) = (Secret::generate(), Secret::generate());
    let token = SecretHash::of(&form.token);
    let session_hash = session.hash();
    let totp_secret = form.secret.clone();
    let recovered = state
        .store
        .run(move |store| {
            let recovery = Recovery {
                totp_secret: &totp_secret,
                totp_step: step,
                password_phc: &password_phc,
                session: &session_hash,
                csrf_token: csrf.expose(),
            };
            let Some(account) = store.recover_account(&token, &recovery, now)? else {
                return Ok(None);
            };
            store.audit(
                now,
                &account.username,
                "recovered account with a console link (TOTP set up again, new password)",
                None,
                None,
            )?;
            Ok(Some(account))
        })
        .await?
        .ok_or(PageError::LoginRefused)?;
    tracing::info!(role = %recovered.role, "staff account recovered");
    let next = crate::access::landing_page(recovered.role);
    let mut response = Redirect::to(next).into_response();
    for value in [
        cookie(SESSION_COOKIE, session.expose(), state.secure_cookies),
        clear_cookie(LOGIN_COOKIE, state.secure_cookies),
    ] {
        response.headers_mut().append(header::SET_COOKIE, value.parse().expect("valid cookie"));
    }
    Ok(response)
}
