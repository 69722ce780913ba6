//! IT's list of which device number each Raspberry Pi serial or MAC address gets (issue 15, a
//! class set from one card image), on a page: `/fleet/device-numbers` shows the list in force
//! (each number enrolled yet or not) and takes a new one as a CSV upload, the same file and the
//! same checks as `slate-server device numbers --file` (`device_serials::parse_serials_csv`).
//! A refused file changes nothing and the page names its line. The store audits the upload with
//! the count, never the serials.

use crate::access::{Gate, Permission};
use crate::device_serials::parse_serials_csv;
use crate::http::error::PageError;
use crate::http::forms::{unreadable_upload, upload_field};
use crate::http::layout::{count, csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::ListedSerial;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{html, Markup};

/// The page's path.
pub const PATH: &str = "/fleet/device-numbers";

/// The biggest list taken: 9,999 rows of a 17-character MAC or 16-digit serial, a number and
/// spaces fit in well under this.
const MAX_LIST_BYTES: usize = 512 * 1024;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageDeviceCredentials);
    Routes::new().get(PATH, manage, device_numbers_page).post(PATH, manage, upload_device_numbers)
}

/// `GET /fleet/device-numbers`: the list in force and the upload form.
pub async fn device_numbers_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let listed = state.store.run(|store| store.device_serials()).await?;
    Ok(device_numbers_view(&staff.viewer(), &listed))
}

/// `POST /fleet/device-numbers` (multipart: `csrf` first, then `list`): the CSV checked whole,
/// then put in place of the list in force in one transaction.
pub async fn upload_device_numbers(
    staff: Staff,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let mut multipart = multipart.map_err(|_| {
        PageError::BadForm("Send the list with the upload form on the Device numbers page.".into())
    })?;
    let mut field =
        upload_field(&staff, &mut multipart, "list", "List: choose a CSV file to upload.").await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(unreadable_upload)? {
        if bytes.len() + chunk.len() > MAX_LIST_BYTES {
            return Err(PageError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        PageError::BadForm(
            "The list was not changed: the file is not text (save it as CSV, UTF-8).".into(),
        )
    })?;
    let rows = parse_serials_csv(&text)
        .map_err(|e| PageError::BadForm(format!("The list was not changed: {e}.")))?;
    let by = staff.actor.clone();
    let listed = rows.len();
    state.store.run(move |store| store.replace_device_serials(&rows, &by, Utc::now())).await?;
    tracing::info!(devices = listed, "IT's list of device serial numbers replaced from the page");
    Ok(Redirect::to(PATH).into_response())
}

/// The page: what the list is for, the upload form, the list in force.
pub fn device_numbers_view(viewer: &Viewer, listed: &[ListedSerial]) -> Markup {
    let enrolled = listed.iter().filter(|l| l.enrolled).count();
    layout(
        Some(viewer),
        "Device numbers",
        html! {
            h1 { "Device numbers for a class set" }
            p {
                "Cards made from one class-set image have no device number. A new device asks the server for the number listed here for its serial number (or MAC address); a device not listed shows IT's setup screen, and asks again every few minutes until someone starts typing there."
            }
            form.stack method="post" action=(PATH) enctype="multipart/form-data" {
                (csrf(viewer))
                label for="list-file" { "CSV file with the header " code { "serial,device" } ", one device a line (replaces the whole list)" }
                input #list-file type="file" name="list" accept=".csv,text/csv" required;
                button type="submit" { "Upload the list" }
            }
            @if listed.is_empty() {
                p.empty { "No list yet: every new class-set device shows IT's setup screen." }
            } @else {
                p { (count(listed.len(), "device", "devices")) " listed, " (enrolled) " enrolled." }
                table #device-numbers {
                    thead { tr { th { "Device" } th { "Serial number or MAC" } th { "Enrolled" } } }
                    tbody {
                        @for l in listed {
                            tr {
                                td { "Device " (l.device) }
                                td { code { (l.serial) } }
                                td { @if l.enrolled { "yes" } @else { span.muted { "not yet" } } }
                            }
                        }
                    }
                }
            }
        },
    )
}
