//! The audit log: every view of pupil data and every staff action, newest first, as a page and
//! as CSV. Reading it is audited too.

use crate::access::{Gate, Permission};
use crate::export;
use crate::http::error::PageError;
use crate::http::layout::{layout, optional, when, Viewer};
use crate::http::paged_export::{csv_pages, page_of, EXPORT_PAGE_ROWS};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::AuditEntry;
use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

const AUDIT_PAGE_ROWS: u32 = 500;

pub fn routes() -> Routes {
    let read = Gate::Needs(Permission::ReadAudit);
    Routes::new().get("/audit", read, audit_page).get("/audit.csv", read, audit_csv)
}

/// `GET /audit`: the newest entries of the audit log.
pub async fn audit_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    staff.audit(&state, "viewed audit log", None).await?;
    let log = state.store.run(|store| store.audit_log(AUDIT_PAGE_ROWS)).await?;
    Ok(log_page(&staff.viewer(), &log, AUDIT_PAGE_ROWS))
}

/// `GET /audit.csv`: the whole audit log, streamed page by page from the store's read-only
/// connection, so a long log neither fills the server's memory nor holds up devices.
pub async fn audit_csv(staff: Staff, State(state): State<AppState>) -> Result<Response, PageError> {
    staff.audit(&state, "exported audit log (CSV)", None).await?;
    let head = export::audit_csv_head();
    Ok(csv_pages(state.store.clone(), "audit-log.csv", "audit log", head, |store, before| {
        Ok(page_of(store.audit_page(before, EXPORT_PAGE_ROWS)?, export::audit_csv_rows))
    }))
}

/// The audit log, newest first.
fn log_page(viewer: &Viewer, log: &[AuditEntry], shown_limit: u32) -> Markup {
    layout(
        Some(viewer),
        "Audit log",
        html! {
            h1 { "Audit log" }
            p { "Every view of pupil data and every action, newest first. " a href="/audit.csv" { "Download all (CSV)" } }
            @if log.len() as u64 >= u64::from(shown_limit) { p.muted { "Showing the newest " (shown_limit) "." } }
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Record" } th { "Detail" } } }
                tbody {
                    @for e in log {
                        tr {
                            td { (when(e.at)) } td { (e.actor) } td { (e.action) }
                            td { (optional(e.record.as_deref())) } td { (optional(e.detail.as_deref())) }
                        }
                    }
                }
            }
        },
    )
}
