//! Timed root ssh on one device, opened by IT from the server: a page per device (linked from
//! the fleet) shows whether ssh is open ("ssh open until 11:30 (by it.admin)") and offers
//! opening it with IT's own OpenSSH public keys for 15 minutes to 8 hours, or closing it early.
//! Each is an `ssh_access` command to that device alone, queued and audited in one transaction;
//! only a device whose poll says it understands the action is sent it. IT's alone
//! (`Permission::OpenSsh`). The rules are `slate_protocol::ssh_access`'s and `crate::ssh_access`'s.

use crate::access::{Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::{form, parse_device};
use crate::http::layout::{csrf, layout};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::ssh_access::ssh_words;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::Redirect;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::ssh_access::{check_minutes, parse_keys, DEFAULT_OPEN, MAX_OPEN, MIN_OPEN};

pub fn routes() -> Routes {
    let ssh = Gate::Needs(Permission::OpenSsh);
    Routes::new()
        .get("/fleet/devices/{number}/ssh", ssh, ssh_page)
        .post("/fleet/devices/{number}/ssh", ssh, open_ssh)
        .post("/fleet/devices/{number}/ssh/close", ssh, close_ssh)
}

fn device_of(number: &str) -> Result<slate_protocol::DeviceNumber, PageError> {
    parse_device(number).map_err(|_| PageError::NotFound(format!("There is no device {number}.")))
}

/// `GET /fleet/devices/{number}/ssh`.
pub async fn ssh_page(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Markup, PageError> {
    let device = device_of(&number)?;
    let found = state
        .store
        .run(move |store| match store.device(device)? {
            Some(_) => store.ssh_access_state(device).map(Some),
            None => Ok(None),
        })
        .await?;
    let current =
        found.ok_or_else(|| PageError::NotFound(format!("There is no device {number}.")))?;
    let viewer = staff.viewer();
    let title = format!("Root ssh on device {device}");
    Ok(layout(
        Some(&viewer),
        &title,
        html! {
            h1 { (title) }
            p #ssh-state { strong { (ssh_words(current.as_ref(), Utc::now())) } }
            p { "Keys only, for root, for a limited time: each key line carries OpenSSH's expiry-time, so sshd itself refuses it afterwards. Keys from the card's slate-provision.conf keep working." }
            form.stack method="post" action={ "/fleet/devices/" (device) "/ssh" } {
                (csrf(&viewer))
                label { "Your OpenSSH public keys, one a line (ssh-ed25519, ecdsa, or RSA of 3072 bits or more; no options)" }
                textarea name="keys" rows="3" placeholder="ssh-ed25519 AAAA… it@laptop" {}
                label { "Open for (minutes, " (MIN_OPEN.num_minutes()) " to " (MAX_OPEN.num_minutes()) ")" }
                input name="minutes" inputmode="numeric" value=(DEFAULT_OPEN.num_minutes());
                button type="submit" { "Open ssh" }
            }
            form method="post" action={ "/fleet/devices/" (device) "/ssh/close" } {
                (csrf(&viewer))
                button type="submit" { "Close ssh now" }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    keys: String,
    #[serde(default)]
    minutes: String,
}

/// `POST /fleet/devices/{number}/ssh`: opens ssh until now + minutes; deliverable until then.
pub async fn open_ssh(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Result<Form<OpenForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let device = device_of(&number)?;
    let keys = parse_keys(&f.keys).map_err(PageError::BadForm)?;
    let minutes: i64 = f.minutes.trim().parse().map_err(|_| {
        PageError::BadForm(format!(
            "Open for: a number of minutes, {} to {}.",
            MIN_OPEN.num_minutes(),
            MAX_OPEN.num_minutes()
        ))
    })?;
    let open_for = check_minutes(minutes).map_err(PageError::BadForm)?;
    queue(&staff, &state, device, keys, open_for).await
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /fleet/devices/{number}/ssh/close`: a command with no keys.
pub async fn close_ssh(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Result<Form<CloseForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let device = device_of(&number)?;
    queue(&staff, &state, device, Vec::new(), MAX_OPEN).await
}

/// Queues the command for an enrolled device (audited with it), wakes its poll.
async fn queue(
    staff: &Staff,
    state: &AppState,
    device: slate_protocol::DeviceNumber,
    keys: Vec<String>,
    open_for: chrono::Duration,
) -> Result<Redirect, PageError> {
    let by = staff.actor.clone();
    let queued = state
        .store
        .run(move |store| store.queue_ssh_access(device, &keys, open_for, Utc::now(), &by))
        .await?;
    queued.ok_or_else(|| PageError::BadForm(format!("Device {device} is not enrolled.")))?;
    state.commands_changed();
    Ok(Redirect::to(&format!("/fleet/devices/{device}/ssh")))
}
