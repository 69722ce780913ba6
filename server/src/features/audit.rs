//! The audit log: every view of pupil data and every staff action, newest first, as a page and
//! as CSV. Reading it is audited too.

use crate::access::{Gate, Permission};
use crate::export;
use crate::http::error::PageError;
use crate::http::layout::{layout, optional, when, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::{csv_stream_response, AppState};
use crate::store::AuditEntry;
use axum::body::{Body, Bytes};
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

/// Audit entries read per page of the export: the memory one export holds, whatever the log's
/// length.
const EXPORT_PAGE_ROWS: u32 = 5_000;

/// `GET /audit.csv`: the whole audit log, streamed page by page from the store's read-only
/// connection, so a long log neither fills the server's memory nor holds up devices.
pub async fn audit_csv(staff: Staff, State(state): State<AppState>) -> Result<Response, PageError> {
    staff.audit(&state, "exported audit log (CSV)", None).await?;
    // Two pages in flight at most: a slow download slows the reading, never piles it up.
    let (pages, body) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let store = state.store.clone();
    tokio::spawn(async move {
        if pages.send(Ok(Bytes::from(export::audit_csv_head()))).await.is_err() {
            return;
        }
        let mut before = None;
        loop {
            let page = store.run(move |store| store.audit_page(before, EXPORT_PAGE_ROWS)).await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "the audit export stopped");
                    let _ = pages.send(Err(std::io::Error::other("the export stopped"))).await;
                    return;
                }
            };
            let Some((last, _)) = page.last() else { return };
            before = Some(*last);
            let entries: Vec<AuditEntry> = page.into_iter().map(|(_, entry)| entry).collect();
            if pages.send(Ok(Bytes::from(export::audit_csv_rows(&entries)))).await.is_err() {
                return; // The browser went away.
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body));
    Ok(csv_stream_response("audit-log.csv", body))
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
