//! CSV exports streamed page by page: each page read from the store's read-only connection,
//! written as CSV lines and sent before the next is read, so an export of any length holds at
//! most a few pages in memory and the database only for one page's query at a time. A slow
//! download slows the reading, never piles it up; a browser that goes away stops it.

use super::csv_stream_response;
use crate::store::{Store, StoreError};
use axum::body::{Body, Bytes};
use axum::response::Response;
use std::sync::Arc;

/// Rows read per page: the memory one export holds, whatever the table's length.
pub const EXPORT_PAGE_ROWS: u32 = 5_000;

/// One page read by an export: its CSV lines and the cursor of its last row (where the next
/// page starts), or `None` when there are no more rows.
pub type Page<C> = Option<(Vec<u8>, C)>;

/// Answers with `filename`, a CSV file of `head` then each page `read` gives, from the first
/// (`None`) to the one after the last (`Ok(None)`). `what` names the export in the log if the
/// database fails part-way (the download then ends with an error, so the browser shows it
/// incomplete rather than a file silently cut short).
pub fn csv_pages<C, F>(
    store: Store,
    filename: &str,
    what: &'static str,
    head: Vec<u8>,
    read: F,
) -> Response
where
    C: Send + 'static,
    F: Fn(&Store, Option<C>) -> Result<Page<C>, StoreError> + Send + Sync + 'static,
{
    // Two pages in flight at most.
    let (pages, body) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let read = Arc::new(read);
    tokio::spawn(async move {
        if pages.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        let mut after = None;
        loop {
            let read = read.clone();
            let page = match store.run(move |store| read(store, after)).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, export = what, "an export stopped");
                    let _ = pages.send(Err(std::io::Error::other("the export stopped"))).await;
                    return;
                }
            };
            let Some((csv, last)) = page else { return };
            after = Some(last);
            if pages.send(Ok(Bytes::from(csv))).await.is_err() {
                return; // The browser went away.
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body));
    csv_stream_response(filename, body)
}

/// Rows read with their cursors as one [`Page`]: `lines` writes them as CSV.
pub fn page_of<C, T>(rows: Vec<(C, T)>, lines: impl FnOnce(&[T]) -> Vec<u8>) -> Page<C> {
    let mut cursors = Vec::new();
    let rows: Vec<T> = rows
        .into_iter()
        .map(|(cursor, row)| {
            cursors.push(cursor);
            row
        })
        .collect();
    let last = cursors.pop()?;
    Some((lines(&rows), last))
}
