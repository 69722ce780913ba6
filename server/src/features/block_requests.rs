//! Site block requests (issue 17), for the DSL and IT: each site staff asked to block when they
//! unlocked a held device, one entry however many asked, with whether a list already blocks it.
//! Accepting puts it in a school block list the way an upload on School setup does (the list's
//! new file beside the old, the row the commit point, devices told to fetch); declining needs
//! a reason. Both audited. Need to know: the incidents, devices and who unlocked are shown to
//! those who may read the case file (the DSL), never to IT, who sees the site and how often it
//! was asked for. The rules are `crate::block_requests`'s.

use crate::access::{Gate, Permission};
use crate::block_requests::{
    asks_label, blocking_line, check_accept_site, list_with_site, lists_to_offer, ListChange,
};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::{BlockDecision, BlockRequestRecord, StoreError};
use crate::uk_time::format_uk;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::Redirect;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::device::ListFile;

/// Decisions shown under the pending requests.
const DECIDED_ROWS: u32 = 50;

pub fn routes() -> Routes {
    let handle = Gate::Needs(Permission::HandleBlockRequests);
    Routes::new()
        .get("/block-requests", handle, block_requests_page)
        .post("/block-requests/{id}/accept", handle, accept)
        .post("/block-requests/{id}/decline", handle, decline)
}

/// A pending site and the lists that already block it (`list: line`).
struct Pending {
    request: BlockRequestRecord,
    blocked_by: Vec<String>,
}

/// `GET /block-requests`.
pub async fn block_requests_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let files = state.lists.clone();
    let (pending, decided, offered) = state
        .store
        .run(move |store| {
            let pending = store.pending_block_requests()?;
            let decided = store.decided_block_requests(DECIDED_ROWS)?;
            let lists = store.lists()?;
            let profiles = store.profiles()?;
            let names: Vec<String> = lists.iter().map(|l| l.name.clone()).collect();
            let offered = lists_to_offer(&names, &profiles);
            // Whether a list devices block with already blocks each site: read from the files
            // in force (only when something waits).
            let in_use: Vec<_> = lists
                .iter()
                .filter(|l| profiles.iter().any(|p| p.block_lists.contains(&l.name)))
                .collect();
            let mut texts = Vec::new();
            if let (Some(files), false) = (&files, pending.is_empty()) {
                for list in in_use {
                    match std::fs::read(files.path(&list.file)) {
                        Ok(bytes) => {
                            texts.push((list.name.clone(), String::from_utf8_lossy(&bytes).into()))
                        }
                        Err(e) => {
                            tracing::warn!(list = %list.name, error = %e, "cannot read a list file")
                        }
                    }
                }
            }
            let pending = pending
                .into_iter()
                .map(|request| {
                    let blocked_by = texts
                        .iter()
                        .filter_map(|(name, text): &(String, String)| {
                            blocking_line(text, &request.site).map(|line| format!("{name}: {line}"))
                        })
                        .collect();
                    Pending { request, blocked_by }
                })
                .collect::<Vec<_>>();
            Ok((pending, decided, offered))
        })
        .await?;
    staff.audit(&state, "viewed site block requests", None).await?;
    let viewer = staff.viewer();
    Ok(layout(
        Some(&viewer),
        "Site block requests",
        html! {
            h1 { "Site block requests" }
            p { "When a member of staff unlocks a held device and chooses \u{201c}block the site\u{201d}, the site of the report waits here. Accept it into one of the school's block lists (devices fetch the list at once, as after an upload on School setup) or decline it with a reason. Asks for the same site are one entry." }
            @if viewer.may(Permission::ReadCaseFile) {
                p { "Who unlocked is what the device says (whose staff PIN was typed on it), not a sign-in." }
            }
            h2 { "Waiting" }
            @if pending.is_empty() {
                p #no-block-requests { "Nothing waiting." }
            } @else {
                @if offered.is_empty() {
                    p.banner { "No school block list to accept into: upload one on School setup and name it in a profile's block lists." }
                }
                table #pending-block-requests {
                    tr {
                        th { "Site" } th { "Asked" } th { "First asked" } th { "Already blocked" }
                        @if viewer.may(Permission::ReadCaseFile) { th { "From" } }
                        th { "Decide" }
                    }
                    @for p in &pending { (pending_row(&viewer, p, &offered)) }
                }
            }
            h2 { "Decided" }
            @if decided.is_empty() {
                p { "Nothing decided yet." }
            } @else {
                table #decided-block-requests {
                    tr { th { "Site" } th { "Asked" } th { "Decision" } th { "By" } th { "When" } }
                    @for r in &decided {
                        tr {
                            td { (r.site) }
                            td { (asks_label(r.asks.len())) }
                            td {
                                @match (r.status.as_str(), &r.list, &r.reason) {
                                    ("accepted", Some(list), _) => { "accepted into " (list) }
                                    (_, _, Some(reason)) => { "declined: " (reason) }
                                    (status, _, _) => { (status) }
                                }
                            }
                            td { (r.decided_by.as_deref().unwrap_or_default()) }
                            td { @if let Some(at) = r.decided_at { (format_uk(at)) } }
                        }
                    }
                }
            }
        },
    ))
}

fn pending_row(viewer: &Viewer, p: &Pending, offered: &[(String, Vec<String>)]) -> Markup {
    let r = &p.request;
    html! {
        tr id=(format!("block-request-{}", r.id)) {
            td { (r.site) }
            td { (asks_label(r.asks.len())) }
            td { @if let Some(first) = r.asks.first() { (format_uk(first.at)) } }
            td {
                @if p.blocked_by.is_empty() { "no" } @else { "yes, in " (p.blocked_by.join("; ")) }
            }
            @if viewer.may(Permission::ReadCaseFile) {
                td {
                    ul {
                        @for ask in &r.asks {
                            li {
                                @if let Some(incident) = ask.incident {
                                    a href=(format!("/incidents/{incident}")) { "incident " (incident) } ", "
                                }
                                "from device " (ask.device) "'s unlock"
                                @if let Some(by) = &ask.unlocked_by { " (" (by) ", as the device says)" }
                                ", " (format_uk(ask.at))
                            }
                        }
                    }
                }
            }
            td {
                @if !offered.is_empty() {
                    form.inline method="post" action=(format!("/block-requests/{}/accept", r.id)) {
                        (csrf(viewer))
                        label { "Block " input name="site" value=(r.site) size="24"; } " "
                        label { "and every name under it, in " select name="list" {
                            @for (name, profiles) in offered {
                                option value=(name) { (name) " (profiles " (profiles.join(", ")) ")" }
                            }
                        } } " "
                        button.approve type="submit" { "Accept" }
                    }
                    br;
                }
                form.inline method="post" action=(format!("/block-requests/{}/decline", r.id)) {
                    (csrf(viewer))
                    label { "Reason " input name="reason" size="30" required; } " "
                    button.refuse type="submit" { "Decline" }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    list: String,
}

fn request_id(id: &str) -> Result<i64, PageError> {
    id.parse().map_err(|_| PageError::NotFound(format!("No site block request {id}.")))
}

fn not_pending() -> PageError {
    PageError::Conflict("That request was decided already, or does not exist.".into())
}

/// `POST /block-requests/{id}/accept`: the site goes into the chosen list (unless a line there
/// already blocks it), written as an upload is, and the request is marked accepted in the same
/// transaction as the list's new row.
pub async fn accept(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<AcceptForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let id = request_id(&id)?;
    staff.check_csrf(&f.csrf)?;
    let list = f.list.trim().to_owned();
    if list.is_empty() {
        return Err(PageError::BadForm("List: choose the block list to add the site to.".into()));
    }
    let files = state.lists.clone().ok_or_else(|| {
        PageError::BadForm("This server keeps no list files (no data directory).".into())
    })?;
    // As an upload: one list change at a time and no device opening a file meanwhile (so the
    // list read below is the one in force when this change commits); the new file beside the
    // one in force, the row the switch, the old file collected after.
    let _changing = files.changing().await;
    let (request, offered, current) = {
        let list = list.clone();
        state
            .store
            .run(move |store| {
                let request = store.block_request(id)?;
                let lists = store.lists()?;
                let names: Vec<String> = lists.iter().map(|l| l.name.clone()).collect();
                let offered = lists_to_offer(&names, &store.profiles()?);
                let current = lists.into_iter().find(|l| l.name == list).map(|l| l.file);
                Ok((request, offered, current))
            })
            .await?
    };
    let request = request.filter(|r| r.status == "pending").ok_or_else(not_pending)?;
    let site = check_accept_site(&request.site, &f.site).map_err(PageError::BadForm)?;
    let current = current.filter(|_| offered.iter().any(|(name, _)| *name == list));
    let Some(current) = current else {
        return Err(PageError::BadForm(
            "List: a school block list some profile uses (not an illegal-content or allow list)."
                .into(),
        ));
    };
    let task_failed = |e: String| PageError::Storage(StoreError::TaskFailed(e));
    let (reader, path) = (files.clone(), files.path(&current));
    let (site_for_change, list_for_change) = (site.clone(), list.clone());
    let change = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path)?;
        let change = list_with_site(&String::from_utf8_lossy(&bytes), &site_for_change);
        if let ListChange::Add(bytes) = &change {
            let file = ListFile::of(bytes);
            reader.write(&file, bytes).map_err(std::io::Error::other)?;
            return Ok::<_, std::io::Error>((change, Some(file)));
        }
        Ok((change, None))
    })
    .await
    .map_err(|e| task_failed(e.to_string()))?
    .map_err(|e| {
        tracing::error!(list = %list_for_change, error = %e, "cannot change a list file for a site block request");
        task_failed("list file".into())
    })?;
    let (change, file) = change;
    let by = staff.actor.clone();
    let list_for_store = list.clone();
    let decided = state
        .store
        .run(move |store| {
            store.accept_block_request(id, &list_for_store, file.as_ref(), &by, Utc::now())
        })
        .await?;
    if decided == BlockDecision::NotPending {
        return Err(not_pending());
    }
    let record = match &change {
        ListChange::Add(_) => format!("block request {id}: *.{site} added to list {list}"),
        ListChange::AlreadyBlocked(line) => {
            format!("block request {id}: {site} already blocked by {line} in list {list}")
        }
    };
    staff.audit(&state, "accepted site block request", Some(record)).await?;
    if matches!(change, ListChange::Add(_)) {
        state.commands_changed();
        let collected = state
            .store
            .run(move |store| {
                files.collect(&store.lists()?).map_err(|e| StoreError::TaskFailed(e.to_string()))
            })
            .await;
        if let Err(e) = collected {
            tracing::warn!(error = %e, "old list files not removed; at the next upload or start");
        }
    }
    Ok(Redirect::to("/block-requests"))
}

#[derive(Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /block-requests/{id}/decline`: with a reason, for the record.
pub async fn decline(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<DeclineForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let id = request_id(&id)?;
    staff.check_csrf(&f.csrf)?;
    let reason = f.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 512 || reason.chars().any(char::is_control) {
        return Err(PageError::BadForm("Reason: 1 to 512 characters, on one line.".into()));
    }
    let by = staff.actor.clone();
    let site = state
        .store
        .run(move |store| {
            let site = store.block_request(id)?.map(|r| r.site);
            match store.decline_block_request(id, &reason, &by, Utc::now())? {
                BlockDecision::Decided => Ok(site),
                BlockDecision::NotPending => Ok(None),
            }
        })
        .await?
        .ok_or_else(not_pending)?;
    staff
        .audit(&state, "declined site block request", Some(format!("block request {id}: {site}")))
        .await?;
    Ok(Redirect::to("/block-requests"))
}
