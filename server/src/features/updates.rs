//! Updates (issue 16), IT's page: upload a signed RAUC bundle (streamed to disk, checked by
//! `rauc info` against IT's update CA: `update_bundles`), the bundles, the rollout in force (a
//! few named devices first, then everyone; an optional restart time) and its stop, and each
//! device's version and update state. What a device is offered is `update_rollout`'s; every
//! change is audited by the store in its own transaction.

use crate::access::{Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::{form, unreadable_upload, upload_field};
use crate::http::layout::{count, csrf, layout, when, Viewer};
use crate::http::routes::{Method, Route, Routes};
use crate::http::staff::Staff;
use crate::http::{AppState, BUNDLE_UPLOAD_PATH};
use crate::store::StoreError;
use crate::update_bundles::{Added, UpdateError};
use crate::update_rollout::{self, Audience, BundleRecord, DeviceReport, Failure, Rollout};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::update::MAX_BUNDLE_BYTES;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageUpdates);
    Routes::new()
        .get("/updates", manage, updates_page)
        .add(
            Route { method: Method::Post, path: BUNDLE_UPLOAD_PATH, gate: manage },
            // A bundle is the one body bigger than any other request: this route alone takes it
            // (streamed to disk, never held in memory).
            post(upload_bundle).layer(DefaultBodyLimit::max(MAX_BUNDLE_BYTES as usize + 64 * 1024)),
        )
        .post("/updates/rollout", manage, start_rollout)
        .post("/updates/stop", manage, stop_rollout)
        .post("/updates/remove", manage, remove_bundle)
}

/// What the page shows.
struct UpdatesView {
    has_ca: bool,
    bundles: Vec<BundleRecord>,
    rollout: Option<Rollout>,
    reports: Vec<DeviceReport>,
    failures: Vec<Failure>,
}

/// `GET /updates`.
pub async fn updates_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let has_ca = state.updates.as_ref().is_some_and(|u| u.has_ca());
    let (bundles, rollout, reports, failures) = state
        .store
        .run(|store| {
            Ok((
                store.update_bundles()?,
                store.current_rollout()?,
                store.device_update_reports()?,
                store.update_failures()?,
            ))
        })
        .await?;
    let view = UpdatesView { has_ca, bundles, rollout, reports, failures };
    Ok(updates_view(&staff.viewer(), &view))
}

/// `POST /updates/bundle` (multipart: `csrf` first, then `bundle`): the file is written to
/// the data directory as it arrives, hashed, checked by `rauc info` against IT's update CA,
/// and kept under its SHA-256 only if RAUC accepts its signature.
pub async fn upload_bundle(
    staff: Staff,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let mut multipart = multipart.map_err(|_| {
        PageError::BadForm("Send the bundle with the upload form on the Updates page.".into())
    })?;
    // The token comes before the file, so nothing is written for a forged form.
    let mut field =
        upload_field(&staff, &mut multipart, "bundle", "Bundle: choose a .raucb file to upload.")
            .await?;
    let updates = state.updates.clone().ok_or_else(|| {
        PageError::BadForm("This server keeps no update bundles (no data directory).".into())
    })?;
    let refused = |e: UpdateError| update_error(&e);
    let mut incoming = updates.incoming().await.map_err(refused)?;
    while let Some(chunk) = field.chunk().await.map_err(unreadable_upload)? {
        incoming.write(&chunk).await.map_err(refused)?;
    }
    let received = incoming.finish().await.map_err(refused)?;
    match updates.add(&state.store, received, &staff.actor, Utc::now()).await {
        Ok(Added::New(bundle)) => {
            tracing::info!(version = %bundle.version, bytes = bundle.bytes, "update bundle uploaded");
        }
        Ok(Added::AlreadyUploaded(_)) => {}
        Err(e) => return Err(update_error(&e)),
    }
    Ok(Redirect::to("/updates").into_response())
}

/// IT is told what was wrong with a bundle or the server's setup; a fault of the server's own
/// (disk, database) goes to the log.
fn update_error(error: &UpdateError) -> PageError {
    match error {
        UpdateError::TooLarge => PageError::TooLarge,
        UpdateError::Io { .. } | UpdateError::DataDir(_) | UpdateError::Store(_) => {
            tracing::error!(%error, "cannot keep an update bundle");
            PageError::Storage(StoreError::TaskFailed("update bundle".into()))
        }
        other => PageError::BadForm(format!("The bundle was not added: {other}.")),
    }
}

#[derive(Deserialize)]
pub struct RolloutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    /// `devices` (the pilot) or `everyone`.
    #[serde(default)]
    audience: String,
    #[serde(default)]
    devices: String,
    /// `16:30`, UK time; empty: restart when idle.
    #[serde(default)]
    reboot_at: String,
    /// Ticked: offer it again to devices that reported it as failed.
    #[serde(default)]
    retry_failed: Option<String>,
}

/// `POST /updates/rollout`: the rollout in force from now (the one before stops).
pub async fn start_rollout(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RolloutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let audience = match f.audience.as_str() {
        "everyone" => Audience::Everyone,
        "devices" => Audience::Devices(
            update_rollout::parse_devices(&f.devices).map_err(PageError::BadForm)?,
        ),
        _ => return Err(PageError::BadForm("Who: choose named devices or everyone.".into())),
    };
    let reboot_at = match f.reboot_at.trim() {
        "" => None,
        text => Some(update_rollout::parse_reboot_time(text).map_err(PageError::BadForm)?),
    };
    let version = f.version.trim().to_owned();
    let by = staff.actor.clone();
    let asked = version.clone();
    let retry_failed = f.retry_failed.as_deref() == Some("yes");
    let started = state
        .store
        .run(move |store| {
            let now = Utc::now();
            let started = store.start_rollout(&asked, &audience, reboot_at, &by, now)?;
            if started && retry_failed {
                store.forget_update_failures(&asked, &by, now)?;
            }
            Ok(started)
        })
        .await?;
    if !started {
        return Err(PageError::BadForm(format!(
            "Version: no uploaded bundle has version {version:?}."
        )));
    }
    tracing::info!(%version, "update rollout started");
    Ok(Redirect::to("/updates").into_response())
}

#[derive(Deserialize)]
pub struct StopForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /updates/stop`: devices are offered nothing more; one already installing finishes.
pub async fn stop_rollout(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<StopForm>, FormRejection>,
) -> Result<Response, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let by = staff.actor.clone();
    let stopped = state.store.run(move |store| store.stop_rollout(&by, Utc::now())).await?;
    if !stopped {
        return Err(PageError::Conflict("No rollout is in force.".into()));
    }
    tracing::info!("update rollout stopped");
    Ok(Redirect::to("/updates").into_response())
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
}

/// `POST /updates/remove`: a bundle no rollout in force offers; its file is deleted.
pub async fn remove_bundle(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RemoveForm>, FormRejection>,
) -> Result<Response, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let updates = state.updates.clone().ok_or_else(|| {
        PageError::BadForm("This server keeps no update bundles (no data directory).".into())
    })?;
    let version = f.version.trim();
    match updates.remove(&state.store, version, &staff.actor, Utc::now()).await {
        Ok(_) => tracing::info!(%version, "update bundle removed"),
        Err(UpdateError::NotAccepted(why)) => {
            return Err(PageError::Conflict(format!("The bundle was not removed: {why}.")))
        }
        Err(e) => return Err(update_error(&e)),
    }
    Ok(Redirect::to("/updates").into_response())
}

fn audience_words(rollout: &Rollout) -> String {
    let who = match &rollout.audience {
        Audience::Everyone => "every device".to_owned(),
        Audience::Devices(devices) => {
            let numbers: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
            format!("devices {} only", numbers.join(", "))
        }
    };
    match rollout.reboot_at {
        Some(time) => {
            format!("{who}; they restart into it from {} UK time, when idle", time.format("%H:%M"))
        }
        None => format!("{who}; they restart into it when idle"),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn updates_view(viewer: &Viewer, view: &UpdatesView) -> Markup {
    layout(
        Some(viewer),
        "Updates",
        html! {
            h1 { "Updates" }
            p { "Devices download the bundle in the background, install it only when no pupil is signed in, and restart into it when idle. A new slot that never becomes ready rolls back by itself; the device then says so below and is not offered that version again." }
            h2 { "Rollout" }
            @match &view.rollout {
                None => p.empty { "No rollout is in force: devices are offered nothing." },
                Some(r) => {
                    p #rollout {
                        "Version " strong { (r.bundle.version) } " to " (audience_words(r))
                        ". Started " (when(r.started_at)) " by " (r.started_by) "."
                    }
                    form.stack method="post" action="/updates/stop" {
                        (csrf(viewer))
                        button.refuse type="submit" { "Stop the rollout" }
                    }
                }
            }
            @if !view.bundles.is_empty() {
                form.stack method="post" action="/updates/rollout" {
                    (csrf(viewer))
                    label for="rollout-version" { "Version" }
                    select #rollout-version name="version" {
                        @for b in &view.bundles { option value=(b.version) { (b.version) } }
                    }
                    label.check for="audience-devices" {
                        input #audience-devices type="radio" name="audience" value="devices" checked;
                        " These devices first (the pilot)"
                    }
                    input #rollout-devices name="devices" placeholder="12, 13";
                    label.check for="audience-everyone" {
                        input #audience-everyone type="radio" name="audience" value="everyone";
                        " Every device"
                    }
                    label for="rollout-reboot" { "Restart from (UK time; empty: whenever idle)" }
                    input #rollout-reboot name="reboot_at" type="time";
                    label.check for="rollout-retry" {
                        input #rollout-retry type="checkbox" name="retry_failed" value="yes";
                        " Offer it again to devices where it failed (once the cause is fixed)"
                    }
                    button type="submit" { "Start rollout" }
                }
            }
            h2 { "Bundles" }
            @if !view.has_ca {
                p.banner { "No update CA yet: bundles cannot be checked, so none can be uploaded. On the server: slate-server update ca FILE (the CA certificate devices hold as /etc/rauc/keyring.pem)." }
            }
            form.stack method="post" action=(BUNDLE_UPLOAD_PATH) enctype="multipart/form-data" {
                (csrf(viewer))
                label for="bundle-file" { "Signed RAUC bundle (.raucb, from images/build)" }
                input #bundle-file type="file" name="bundle" accept=".raucb" required;
                button type="submit" { "Upload" }
            }
            @if view.bundles.is_empty() {
                p.empty { "No bundle uploaded yet." }
            } @else {
                table #bundles {
                    thead { tr { th { "Version" } th { "For" } th { "Size" } th { "SHA-256" } th { "Uploaded" } th { "By" } th { "Remove" } } }
                    tbody {
                        @for b in &view.bundles {
                            tr {
                                td { (b.version) } td { code { (b.compatible) } } td { (megabytes(b.bytes)) }
                                td { code title=(b.sha256) { (b.sha256[..12]) "…" } }
                                td { (when(b.uploaded_at)) } td { (b.uploaded_by) }
                                td {
                                    @if view.rollout.as_ref().is_some_and(|r| r.bundle.sha256 == b.sha256) {
                                        span.muted { "offered now" }
                                    } @else {
                                        form method="post" action="/updates/remove" {
                                            (csrf(viewer))
                                            input type="hidden" name="version" value=(b.version);
                                            button.refuse type="submit" aria-label=(format!("Remove {}", b.version)) { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Devices" }
            p { (count(view.reports.len(), "device has", "devices have")) " reported their version." }
            @if !view.reports.is_empty() {
                table #device-updates {
                    thead { tr { th { "Device" } th { "Version running" } th { "Update" } th { "Last error" } th { "Reported" } } }
                    tbody {
                        @for r in &view.reports {
                            @let words = update_rollout::describe(Some(r), &view.bundles, view.rollout.as_ref(), &view.failures);
                            tr id={ "update-" (r.device) } {
                                td { "Device " (r.device) }
                                td { (r.running) }
                                td { @if words.problem { strong.status-new { (words.words) } } @else { (words.words) } }
                                td { (update_rollout::shown_error(r, view.rollout.as_ref(), &view.failures).unwrap_or("")) }
                                td { (when(r.reported_at)) }
                            }
                        }
                    }
                }
            }
        },
    )
}
