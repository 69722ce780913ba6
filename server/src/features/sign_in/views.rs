//! The sign-in feature's pages.

use crate::auth;
use crate::http::layout::{csrf, layout, Viewer};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// The sign-in form.
pub fn login_page(token: &str, error: Option<&str>, username: &str) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            h1 { "Staff sign-in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.stack method="post" action="/staff/login" {
                input type="hidden" name="csrf" value=(token);
                label for="username" { "Username" }
                input #username name="username" value=(username) autocomplete="username" required;
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                label for="code" { "Code from your authenticator app (DSL, deputy and IT: required)" }
                input #code name="code" inputmode="numeric" autocomplete="one-time-code";
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// Choosing a new password.
pub fn password_page(viewer: &Viewer, error: Option<&str>) -> Markup {
    layout(
        Some(viewer),
        "Choose a password",
        html! {
            h1 { "Choose a new password" }
            p { "At least " (auth::MIN_PASSWORD_CHARS) " characters. The password IT gave you works only until you do this." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.stack method="post" action="/staff/password" {
                (csrf(viewer))
                label for="current" { "Current password" }
                input #current name="current" type="password" autocomplete="current-password" required;
                label for="new" { "New password" }
                input #new name="new" type="password" autocomplete="new-password" required;
                label for="confirm" { "New password again" }
                input #confirm name="confirm" type="password" autocomplete="new-password" required;
                button type="submit" { "Save" }
            }
        },
    )
}

/// A member of staff's own account: their unlock PIN for held devices, and their password.
pub fn account_page(
    viewer: &Viewer,
    pin_set_at: Option<DateTime<Utc>>,
    saved: bool,
    error: Option<&str>,
) -> Markup {
    use slate_protocol::staff::{MAX_STAFF_PIN_DIGITS, MIN_STAFF_PIN_DIGITS};
    layout(
        Some(viewer),
        "My account",
        html! {
            h1 { "My account" }
            section #unlock-pin {
                h2 { "Unlock PIN" }
                p { "Your own PIN for unlocking a device a pupil has reported: type it on the device's PIN pad. The report then records that it was you. "
                    (MIN_STAFF_PIN_DIGITS) " to " (MAX_STAFF_PIN_DIGITS) " digits; not the same digit throughout, a run like 123456 or a repeated pattern like 121212. "
                    "Keep it to yourself: devices get only its hash." }
                @if saved { p.banner role="status" { "Saved. Devices get your new PIN within a minute or so when they are online." } }
                p { @match pin_set_at {
                    Some(at) => { "Your PIN was set " (crate::uk_time::format_uk(at)) "." }
                    None => { "You have no unlock PIN yet." }
                } }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.stack method="post" action="/staff/account/pin" {
                    (csrf(viewer))
                    label for="pin" { "New PIN" }
                    input #pin name="pin" type="password" inputmode="numeric" pattern="[0-9]*" autocomplete="off" required;
                    label for="confirm" { "New PIN again" }
                    input #confirm name="confirm" type="password" inputmode="numeric" pattern="[0-9]*" autocomplete="off" required;
                    button type="submit" { "Set my PIN" }
                }
            }
            section {
                h2 { "Password" }
                p { a href="/staff/password" { "Change your password" } }
            }
        },
    )
}
