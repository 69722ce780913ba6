//! "Staff accounts": every account with its role, TOTP and state, for IT and the DSL, with what
//! each may change (`crate::staff_accounts`): disable a leaver (their sessions end at once and
//! their unlock PIN leaves every device), enable an account again, or reset its sign-in (a
//! one-time link, shown once to whoever asked, that sets up TOTP and a new password; the
//! account's sessions end now). Every change is audited, naming both people.

use crate::access::{Gate, Permission};
use crate::auth::{Role, RECOVERY_LINK_LIFETIME};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, when, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::secrets::Secret;
use crate::staff_accounts::{refusal, Change};
use crate::store::StaffListing;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageStaffAccounts);
    Routes::new()
        .get("/staff-accounts", manage, accounts_page)
        .post("/staff-accounts/disable", manage, disable)
        .post("/staff-accounts/enable", manage, enable)
        .post("/staff-accounts/reset", manage, reset)
}

/// `GET /staff-accounts`.
pub async fn accounts_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let accounts = state.store.run(|store| store.staff_listing()).await?;
    Ok(page(&staff.viewer(), &accounts, None))
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
}

/// The account a form names, after the CSRF check and the rule for this change.
async fn checked(
    staff: &Staff,
    state: &AppState,
    body: Result<Form<AccountForm>, FormRejection>,
    change: Change,
) -> Result<String, PageError> {
    let body = form(body)?;
    staff.check_csrf(&body.csrf)?;
    let username = body.username.trim().to_owned();
    let wanted = username.clone();
    let target = state.store.run(move |store| store.staff_by_username(&wanted)).await?;
    let Some(target) = target else {
        return Err(PageError::NotFound("There is no staff account by that name.".into()));
    };
    if let Some(why) = refusal(staff.role, staff.actor == username, target.role, change) {
        return Err(PageError::NotAllowed(why));
    }
    Ok(username)
}

/// `POST /staff-accounts/disable`.
pub async fn disable(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, PageError> {
    let username = checked(&staff, &state, body, Change::Disable).await?;
    let name = username.clone();
    let done = state.store.run(move |store| store.disable_staff(&name, Utc::now())).await?;
    if !done {
        return Err(PageError::Conflict(format!("{username} is disabled already.")));
    }
    staff.audit(&state, "disabled staff account", Some(username)).await?;
    // Its unlock PIN leaves every device with the next policy.
    state.commands_changed();
    Ok(Redirect::to("/staff-accounts").into_response())
}

/// `POST /staff-accounts/enable`.
pub async fn enable(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<AccountForm>, FormRejection>,
) -> Result<Response, PageError> {
    let username = checked(&staff, &state, body, Change::Enable).await?;
    let name = username.clone();
    let done = state.store.run(move |store| store.enable_staff(&name)).await?;
    if !done {
        return Err(PageError::Conflict(format!("{username} is enabled already.")));
    }
    staff.audit(&state, "enabled staff account", Some(username)).await?;
    Ok(Redirect::to("/staff-accounts").into_response())
}

/// `POST /staff-accounts/reset`: the account's sessions end and a one-time recovery link is
/// shown to whoever asked, once (it is kept only as a hash, and never logged).
pub async fn reset(
    staff: Staff,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<AccountForm>, FormRejection>,
) -> Result<Markup, PageError> {
    let username = checked(&staff, &state, body, Change::ResetSignIn).await?;
    let token = Secret::generate();
    let hash = token.hash();
    let name = username.clone();
    let (saved, accounts) = state
        .store
        .run(move |store| {
            let now = Utc::now();
            let saved =
                store.save_recovery_link(&name, &hash, now, now + RECOVERY_LINK_LIFETIME)?;
            if saved {
                store.end_staff_sessions(&name)?;
            }
            Ok((saved, store.staff_listing()?))
        })
        .await?;
    if !saved {
        return Err(PageError::Conflict(format!(
            "{username} is disabled: enable the account first, then reset its sign-in."
        )));
    }
    staff.audit(&state, "made a recovery link", Some(username.clone())).await?;
    let link = format!("{}/staff/recover?token={}", origin(&state, &headers), token.expose());
    Ok(page(&staff.viewer(), &accounts, Some((&username, &link))))
}

/// Where staff browsers reach this server, for the link: the address this page was asked on.
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.secure_cookies { "https" } else { "http" };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{scheme}://{host}")
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Dsl => "DSL",
        Role::DeputyDsl => "deputy DSL",
        Role::Teacher => "teacher",
        Role::ItAdmin => "IT",
    }
}

fn page(viewer: &Viewer, accounts: &[StaffListing], link: Option<(&str, &str)>) -> Markup {
    let allowed = |account: &StaffListing, change| {
        refusal(viewer.role, viewer.name == account.username, account.role, change).is_none()
    };
    layout(
        Some(viewer),
        "Staff accounts",
        html! {
            h1 { "Staff accounts" }
            @if let Some((username, link)) = link {
                div.notice role="status" {
                    p { "The sign-in of " strong { (username) } " is reset: their sessions have ended. Give them this link in person. It works once, for 10 minutes, and asks them to set up TOTP and choose a new password. It is not shown again." }
                    p { code.link-once { (link) } }
                }
            }
            p.muted { "New accounts are made on the server's console: slate-server staff add. Disabling an account ends its sessions at once and takes its unlock PIN off every device." }
            table {
                thead { tr { th { "Username" } th { "Role" } th { "TOTP" } th { "State" } th { "Change" } } }
                tbody {
                    @for a in accounts {
                        tr id={ "account-" (a.username) } {
                            td { (a.username) }
                            td { (role_label(a.role)) }
                            td { @if a.totp { "yes" } @else { span.muted { "no" } } }
                            td {
                                @match a.disabled_at {
                                    Some(at) => strong.status-new { "disabled " (when(at)) },
                                    None => "enabled",
                                }
                            }
                            td {
                                @if a.username == viewer.name { span.muted { "your account" } }
                                @let changes = if a.disabled_at.is_some() { [Change::Enable, Change::ResetSignIn] } else { [Change::Disable, Change::ResetSignIn] };
                                @for change in changes {
                                    @if allowed(a, change) && !(change == Change::ResetSignIn && a.disabled_at.is_some()) {
                                        form.inline method="post" action={ "/staff-accounts/" (path(change)) } {
                                            (csrf(viewer))
                                            input type="hidden" name="username" value=(a.username);
                                            @if change == Change::Disable {
                                                button.refuse type="submit" { (change.label()) }
                                            } @else {
                                                button type="submit" { (change.label()) }
                                            }
                                        }
                                        " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn path(change: Change) -> &'static str {
    match change {
        Change::Disable => "disable",
        Change::Enable => "enable",
        Change::ResetSignIn => "reset",
    }
}
