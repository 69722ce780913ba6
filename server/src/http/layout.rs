//! HTML for staff, rendered with maud (which escapes every value). Pure: records in, markup
//! out; no database, no HTTP. The only script is the server's own `/static/live.js`. URLs that devices reported are shown as text, never as links, so
//! nobody opens harmful content by a stray click (seed 003: "Not view the image").

use crate::auth::{self, Permission, Role};
use crate::incident::{Action, Status, CATEGORIES};
use crate::store::{
    AuditEntry, DeviceRecord, FleetRow, IncidentEntry, IncidentRecord, RegisterEntry,
    SessionRecord, WhoHadAnswer,
};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use slate_protocol::PupilId;

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #d9dee3; --wash: #f5f7f9; --accent: #2f5d8a; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
header { background: var(--wash); border-bottom: 1px solid var(--line); padding: 0.75rem 1.5rem; display: flex; gap: 1.5rem; align-items: baseline; }
header strong { font-size: 1.1rem; }
header a { color: var(--accent); }
main { padding: 1.5rem; max-width: 90rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; font-weight: 600; }
h2 { font-size: 1.15rem; margin: 2rem 0 0.75rem; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.5rem 0.75rem; border-bottom: 1px solid var(--line); }
th { font-size: 0.85rem; color: var(--muted); font-weight: 600; background: var(--wash); }
td.url { font-family: ui-monospace, monospace; font-size: 0.85rem; word-break: break-all; max-width: 28rem; }
.muted, .id { color: var(--muted); }
.id { font-family: ui-monospace, monospace; font-size: 0.85rem; }
.empty { padding: 2rem; background: var(--wash); border-radius: 0.5rem; color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
form.inline { display: inline; }
form.stack { display: grid; gap: 0.5rem; max-width: 36rem; margin: 0.5rem 0 1.5rem; }
label { font-weight: 600; font-size: 0.9rem; }
input, select, textarea, button { font: inherit; padding: 0.35rem 0.5rem; }
button { background: var(--accent); color: #fff; border: 0; border-radius: 0.3rem; cursor: pointer; }
button.link { background: none; color: var(--accent); padding: 0; text-decoration: underline; }
.error { color: #9b1c1c; background: #fde8e8; padding: 0.75rem 1rem; border-radius: 0.4rem; }
.banner { background: #fff4ce; padding: 0.75rem 1rem; border-radius: 0.4rem; font-weight: 600; }
.status-new { color: #9b1c1c; font-weight: 700; }
.online { color: #0b6e4f; font-weight: 600; }
tr.fresh { background: #fff4ce; }
header .who { margin-left: auto; color: var(--muted); }
@media print { header, form, .no-print { display: none; } main { padding: 0; } }
"#;

/// Who is looking: for the navigation and the forms' CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

impl Viewer {
    pub(crate) fn may(&self, permission: Permission) -> bool {
        auth::allowed(self.role, permission)
    }
}

/// The hidden field every POST form carries.
pub(crate) fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// The frame every staff page shares.
pub(crate) fn layout(viewer: Option<&Viewer>, title: &str, content: Markup) -> Markup {
    layout_with_script(viewer, title, content, false)
}

fn layout_with_script(viewer: Option<&Viewer>, title: &str, content: Markup, live: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · Slate" }
                style { (PreEscaped(STYLE)) }
                @if live { script src="/static/live.js" defer {} }
            }
            body {
                header {
                    strong { "Slate" }
                    @if let Some(v) = viewer {
                        nav {
                            @if v.may(Permission::ViewIncidents) { a href="/reports" { "Reports" } " " }
                            @if v.may(Permission::ViewDevice) { a href="/who-had" { "Who had a device" } " " }
                            @if v.may(Permission::ViewFleet) { a href="/fleet" { "Fleet" } " " }
                            @if v.may(Permission::SendCommands) { a href="/commands" { "Eyes on me" } " " }
                            @if v.may(Permission::RequestBypass) || v.may(Permission::ApproveBypass) { a href="/bypasses" { "Filter bypasses" } " " }
                            @if v.may(Permission::ManagePolicy) { a href="/setup" { "School setup" } " " }
                            @if v.may(Permission::ReadAudit) { a href="/audit" { "Audit log" } " " }
                            @if v.may(Permission::GovernorReport) { a href="/governors" { "Governors' report" } }
                        }
                        span.who {
                            (v.name) " (" (v.role) ") "
                            a href="/staff/account" { "My account" } " "
                            form.inline method="post" action="/staff/logout" {
                                (csrf(v)) button.link type="submit" { "Sign out" }
                            }
                        }
                    } @else {
                        nav { a href="/staff/login" { "Sign in" } }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A page that says one thing: errors, refusals.
pub fn message_page(title: &str, message: &str) -> Markup {
    layout(None, title, html! { h1 { (title) } p { (message) } })
}

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

/// Every incident, newest first; new ones arrive live.
pub fn reports_page(viewer: &Viewer, incidents: &[IncidentRecord], shown_limit: u32) -> Markup {
    layout_with_script(
        Some(viewer),
        "Reports",
        html! {
            h1 { "Reports" }
            p.banner #live-banner hidden { }
            @if viewer.may(Permission::Export) {
                p { a href="/reports.csv" { "Download the incident log (CSV)" } }
            }
            @if incidents.is_empty() {
                p.empty #no-incidents { "No reports yet. When a pupil presses the report button, the report appears here." }
            } @else if incidents.len() as u64 >= u64::from(shown_limit) {
                p.muted { "Showing the newest " (shown_limit) " reports." }
            }
            table {
                thead {
                    tr {
                        th { "Incident" } th { "Pressed" } th { "Device" } th { "Status" }
                        th { "Pupil" } th { "App" } th { "Address" } th { "Page title" }
                        th { "Screen dark after" }
                    }
                }
                tbody #incidents {
                    @for i in incidents {
                        @let r = &i.report;
                        tr {
                            td { a href={ "/incidents/" (i.id) } { "Incident " (i.id) } }
                            td { (when(r.pressed_at)) }
                            td { a href={ "/devices/" (r.device) } { "Device " (r.device) } }
                            td {
                                (status(i.status))
                                @if r.from_block_page { br; span.muted.low-priority { "low priority: from a blocked page" } }
                            }
                            td { (pupil(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                            td { (optional(r.app.as_deref())) }
                            td.url { (optional(r.url.as_deref())) }
                            td { (optional(r.page_title.as_deref())) }
                            td {
                                @match r.blank_latency_us {
                                    Some(us) => (millis(us)),
                                    None => span.muted { "not confirmed" },
                                }
                            }
                        }
                    }
                }
            }
        },
        true,
    )
}

fn status(s: Status) -> Markup {
    html! {
        @if s == Status::New { span.status-new { "New" } } @else { (s.label()) }
    }
}

/// One incident: the report, the record's fields, the history and the workflow's forms.
pub fn incident_page(
    viewer: &Viewer,
    incident: &IncidentRecord,
    entries: &[IncidentEntry],
) -> Markup {
    let r = &incident.report;
    let d = &incident.details;
    let title = format!("Incident {}", incident.id);
    let id = incident.id;
    layout(
        Some(viewer),
        &title,
        html! {
            h1 { (title) ": " (status(incident.status)) }
            dl {
                dt { "Pressed" } dd { (when(r.pressed_at)) }
                dt { "Device" } dd { a href={ "/devices/" (r.device) } { "Device " (r.device) } }
                dt { "Reported by" } dd { "Pupil, " (r.how_reported()) ": " (pupil(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                dt { "App" } dd { (optional(r.app.as_deref())) }
                dt { "Address" } dd.url { (optional(r.url.as_deref())) }
                dt { "Page title" } dd { (optional(r.page_title.as_deref())) }
                dt { "Names looked up just before" }
                dd.names {
                    @if r.recent_names.is_empty() { span.muted { "none recorded" } }
                    @else { (r.recent_names.join(", ")) }
                }
                dt { "Received" } dd { (when(r.received_at)) }
            }
            p.muted { "Slate never records pictures of the screen. Do not open the address to look: describe it from what the pupil says." }
            @if viewer.may(Permission::Export) {
                p {
                    a href={ "/incidents/" (id) "/export.pdf" } { "Download this record (PDF)" } " · "
                    a href={ "/incidents/" (id) "/export.csv" } { "(CSV)" }
                }
            }
            h2 { "What happens next" }
            @match incident.status {
                Status::New => {
                    @if viewer.may(Permission::Acknowledge) {
                        form.stack method="post" action={ "/incidents/" (id) "/acknowledge" } {
                            (csrf(viewer))
                            label for="ack-note" { "Note (optional)" }
                            input #ack-note name="note";
                            button type="submit" { "Acknowledge: I am dealing with it" }
                        }
                    }
                }
                Status::Actioned(Action::FalseAlarm) => { p { "Recorded as a false alarm." } }
                _ => {
                    @if viewer.may(Permission::RecordAction) {
                        form.stack method="post" action={ "/incidents/" (id) "/action" } {
                            (csrf(viewer))
                            label for="action" { "Action taken" }
                            select #action name="action" required {
                                @for a in Action::ALL { option value=(a.name()) { (a.label()) } }
                            }
                            label for="action-note" { "Note" }
                            textarea #action-note name="note" rows="3" {}
                            button type="submit" { "Record action" }
                        }
                    } @else {
                        p.muted { "A DSL records the action taken." }
                    }
                }
            }
            @if viewer.may(Permission::RecordAction) {
                h2 { "Incident record" }
                form.stack method="post" action={ "/incidents/" (id) "/details" } {
                    (csrf(viewer))
                    label for="category" { "Kind of concern" }
                    select #category name="category" {
                        option value="" { "(not yet said)" }
                        @for (name, label) in CATEGORIES {
                            option value=(name) selected[d.category.as_deref() == Some(name)] { (label) }
                        }
                    }
                    label for="location" { "Where (room, lesson)" }
                    input #location name="location" value=(d.location.as_deref().unwrap_or(""));
                    label for="description" { "What was seen (in words; never a picture)" }
                    textarea #description name="description" rows="4" { (d.description.as_deref().unwrap_or("")) }
                    label for="involved" { "Who was involved (first name and initial)" }
                    input #involved name="involved" value=(d.involved.as_deref().unwrap_or(""));
                    label for="reported_to" { "Reported to (head, parents, police, CEOP, local authority)" }
                    input #reported_to name="reported_to" value=(d.reported_to.as_deref().unwrap_or(""));
                    label for="outcome" { "Outcome" }
                    textarea #outcome name="outcome" rows="3" { (d.outcome.as_deref().unwrap_or("")) }
                    button type="submit" { "Save the record" }
                }
                form.stack method="post" action={ "/incidents/" (id) "/note" } {
                    (csrf(viewer))
                    label for="note" { "Add a note" }
                    textarea #note name="note" rows="2" required {}
                    button type="submit" { "Add note" }
                }
            }
            h2 { "History" }
            @if entries.is_empty() {
                p.empty { "Nothing recorded yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Note" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (when(e.at)) }
                                td { (e.staff) }
                                td { (entry_label(e)) }
                                td { (optional(e.note.as_deref())) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn entry_label(e: &IncidentEntry) -> String {
    match (e.kind.as_str(), e.action.as_deref().and_then(Action::parse)) {
        ("action", Some(a)) => a.label().into(),
        ("acknowledged", _) => "Acknowledged".into(),
        ("details", _) => "Edited the record".into(),
        ("note", _) => "Note".into(),
        (other, _) => other.into(),
    }
}

/// A device's events besides sessions and reports, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeviceActivity {
    pub blocked: Vec<crate::store::ActivityRecord>,
    pub apps: Vec<crate::store::ActivityRecord>,
    pub agreements: Vec<crate::store::ActivityRecord>,
}

fn activity_pupil(a: &crate::store::ActivityRecord, pupil_id: Option<&PupilId>) -> Markup {
    pupil(pupil_id.map(|p| p.as_str()), a.pupil_name.as_deref())
}

/// Blocked attempts, apps opened (with their session) and agreements accepted.
fn device_activity(activity: &DeviceActivity) -> Markup {
    use slate_protocol::EventBody;
    html! {
        h2 { "Blocked by the filter" }
        @if activity.blocked.is_empty() {
            p.empty { "Nothing blocked on this device." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "What" } th { "Rule" } th { "List" } th { "Layer" } } }
                tbody {
                    @for a in &activity.blocked {
                        @if let EventBody::FilterBlocked { pupil: p, layer, target, rule, list, .. } = &a.body {
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, p.as_ref())) }
                                td.url { (target) } td { (rule) } td { (list) } td { (layer.as_str()) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Apps opened" }
        @if activity.apps.is_empty() {
            p.empty { "No apps opened yet." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "App" } th { "Session" } } }
                tbody {
                    @for a in &activity.apps {
                        @if let EventBody::AppOpened { session, pupil: p, app } = &a.body {
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, Some(p))) } td { (app) }
                                td.muted { (session.to_string().get(..8).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Acceptable use agreements" }
        @if activity.agreements.is_empty() {
            p.empty { "No agreement accepted on this device yet." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "Agreement" } th { "Text version" } } }
                tbody {
                    @for a in &activity.agreements {
                        @if let EventBody::AupAccepted { pupil: p, key_stage, text_version, .. } = &a.body {
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, Some(p))) }
                                td { (key_stage.to_uppercase()) } td { code { (text_version) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One device: who used it, the iPad register, its incidents, and what it blocked.
pub fn device_page(
    viewer: &Viewer,
    number: u16,
    device: Option<&DeviceRecord>,
    sessions: &[SessionRecord],
    incidents: &[IncidentRecord],
    register: &[RegisterEntry],
    activity: &DeviceActivity,
) -> Markup {
    let title = format!("Device {number}");
    layout(
        Some(viewer),
        &title,
        html! {
            h1 { (title) }
            @if let Some(device) = device {
                dl {
                    dt { "Enrolled" } dd { (when(device.enrolled_at)) }
                    dt { "Software" } dd { (device.software_version) }
                    dt { "Last heard from" }
                    dd { @match device.last_seen_at { Some(t) => (when(t)), None => span.muted { "not yet" } } }
                }
            } @else {
                p.muted { "Not a Slate device: the register below is what teachers recorded." }
            }
            h2 { "Sessions" }
            @if sessions.is_empty() {
                p.empty { "Nobody has signed in on this device yet." }
            } @else {
                table {
                    thead { tr { th { "Pupil" } th { "From" } th { "To" } th { "How it ended" } } }
                    tbody {
                        @for s in sessions {
                            tr {
                                td { (pupil(Some(&s.pupil), s.pupil_name.as_deref())) }
                                td { (when(s.started_at)) }
                                td { @match s.ended_at { Some(t) => (when(t)), None => strong { "still signed in" } } }
                                td { @match &s.end_reason { Some(r) => (r.replace('_', " ")), None => "" } }
                            }
                        }
                    }
                }
            }
            @if !register.is_empty() {
                h2 { "Register" }
                table {
                    thead { tr { th { "Pupil" } th { "From" } th { "To" } th { "Recorded by" } } }
                    tbody {
                        @for g in register {
                            tr {
                                td { (pupil(Some(&g.pupil), g.pupil_name.as_deref())) }
                                td { (when(g.from)) } td { (when(g.to)) } td { (g.recorded_by) }
                            }
                        }
                    }
                }
            }
            h2 { "Reports" }
            @if incidents.is_empty() {
                p.empty { "No reports from this device." }
            } @else {
                table {
                    thead { tr { th { "Incident" } th { "Pressed" } th { "Status" } th { "Pupil" } th { "App" } th { "Address" } th { "Page title" } } }
                    tbody {
                        @for i in incidents {
                            @let r = &i.report;
                            tr {
                                td { a href={ "/incidents/" (i.id) } { "Incident " (i.id) } }
                                td { (when(r.pressed_at)) }
                                td { (status(i.status)) }
                                td { (pupil(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                                td { (optional(r.app.as_deref())) }
                                td.url { (optional(r.url.as_deref())) }
                                td { (optional(r.page_title.as_deref())) }
                            }
                        }
                    }
                }
            }
            (device_activity(activity))
        },
    )
}

/// The answer shown under the who-had form: the device, the time asked, and who (if anyone).
pub type WhoHadShown = Result<(u16, DateTime<Utc>, Option<WhoHadAnswer>), String>;

/// "Who had device N at time T", and the iPad register form.
pub fn who_had_page(
    viewer: &Viewer,
    device: &str,
    at: &str,
    answer: Option<WhoHadShown>,
) -> Markup {
    layout(
        Some(viewer),
        "Who had a device",
        html! {
            h1 { "Who had a device?" }
            form.stack method="get" action="/who-had" {
                label for="device" { "Device number" }
                input #device name="device" value=(device) inputmode="numeric" required;
                label for="at" { "Date and time (UK time)" }
                input #at name="at" type="datetime-local" value=(at) required;
                button type="submit" { "Look up" }
            }
            @match answer {
                None => {}
                Some(Err(message)) => { p.error role="alert" { (message) } }
                Some(Ok((n, t, None))) => {
                    p.empty { "Nobody is recorded as having device " (n) " at " (when(t)) "." }
                }
                Some(Ok((n, t, Some(a)))) => {
                    p.banner {
                        "Device " (n) " at " (when(t)) ": " (pupil(Some(&a.pupil), a.pupil_name.as_deref()))
                    }
                    p {
                        @if a.source == "session" {
                            "Signed in on the device from " (when(a.from))
                            @match a.to { Some(to) => { " to " (when(to)) }, None => " (still signed in)" }
                            "."
                        } @else {
                            "From the register: " (when(a.from)) " to "
                            @if let Some(to) = a.to { (when(to)) }
                            ", recorded by " (a.recorded_by.as_deref().unwrap_or("?")) "."
                        }
                        " " a href={ "/devices/" (n) } { "Device " (n) "'s page" }
                    }
                }
            }
            @if viewer.may(Permission::RecordRegister) {
                h2 { "Record a numbered iPad for a lesson" }
                p.muted { "For devices that cannot run Slate. Times in UK time." }
                form.stack method="post" action="/register" {
                    (csrf(viewer))
                    label for="reg-device" { "Device number" }
                    input #reg-device name="device" inputmode="numeric" required;
                    label for="reg-pupil" { "Pupil id (from the roster, e.g. p-7f3a9c)" }
                    input #reg-pupil name="pupil" required;
                    label for="reg-from" { "From" }
                    input #reg-from name="from" type="datetime-local" required;
                    label for="reg-to" { "To" }
                    input #reg-to name="to" type="datetime-local" required;
                    button type="submit" { "Record" }
                }
            }
        },
    )
}

/// A device counts as online when it was heard from within this time (heartbeats are more
/// frequent than this).
pub const ONLINE_WITHIN: Duration = Duration::minutes(5);

pub fn online(last_seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_seen.is_some_and(|t| now - t < ONLINE_WITHIN)
}

/// Every device: online or not, software, last contact.
pub fn fleet_page(
    viewer: &Viewer,
    fleet: &[FleetRow],
    refused: &[crate::store::RefusedRecord],
    now: DateTime<Utc>,
) -> Markup {
    let up = fleet.iter().filter(|d| online(d.last_seen_at, now)).count();
    layout(
        Some(viewer),
        "Fleet",
        html! {
            h1 { "Fleet" }
            p { (fleet.len()) " devices, " (up) " online." }
            @if fleet.is_empty() {
                p.empty { "No device has enrolled yet. Make a token with slate-server enrollment-token --device N." }
            } @else {
                table {
                    thead { tr { th { "Device" } th { "State" } th { "Last heard from" } th { "Last heartbeat" } th { "Report button" } th { "Screen darkens" } th { "Software" } th { "Enrolled" } } }
                    tbody {
                        @for d in fleet {
                            tr {
                                td {
                                    @if viewer.may(Permission::ViewDevice) {
                                        a href={ "/devices/" (d.number) } { "Device " (d.number) }
                                    } @else { "Device " (d.number) }
                                }
                                td { @if online(d.last_seen_at, now) { span.online { "online" } } @else { span.muted { "offline" } } }
                                td { @match d.last_seen_at { Some(t) => (when(t)), None => span.muted { "never" } } }
                                td { @match d.last_heartbeat_at { Some(t) => (when(t)), None => span.muted { "none yet" } } }
                                td {
                                    @match (d.last_heartbeat_at, d.button_fault.as_deref()) {
                                        (None, _) => span.muted { "not known" },
                                        (Some(_), None) => "working",
                                        (Some(_), Some(fault)) => strong.status-new { "fault: " (fault) },
                                    }
                                }
                                td {
                                    @match (d.last_heartbeat_at, d.display_fault.as_deref()) {
                                        (None, _) => span.muted { "not known" },
                                        (Some(_), None) => "yes",
                                        (Some(_), Some("last_press_not_dark")) => strong.status-new { "no: the last press left the screen lit" },
                                        (Some(_), Some(_)) => strong.status-new { "no: nothing on the device can darken the screen" },
                                    }
                                }
                                td { (d.software_version) }
                                td { (when(d.enrolled_at)) }
                            }
                        }
                    }
                }
            }
            h2 { "Hardware refused" }
            @if refused.is_empty() {
                p.empty { "No device has refused anything plugged into it." }
            } @else {
                table {
                    thead { tr { th { "Device" } th { "Time" } th { "Kind" } th { "What" } } }
                    tbody {
                        @for r in refused {
                            tr {
                                td { "Device " (r.device) } td { (when(r.at)) }
                                td { (r.kind.replace('_', " ")) } td { (r.description) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The termly governors' report: counts and charts, printable.
pub fn governors_page(viewer: &Viewer, s: &crate::governors::Summary) -> Markup {
    use crate::governors::{bar_chart, week_bars};
    layout(
        Some(viewer),
        "Governors' report",
        html! {
            h1 { "Online safety incidents, " (s.from.format("%-d %B %Y")) " to " (s.to.format("%-d %B %Y")) }
            form.stack method="get" action="/governors" {
                label for="from" { "From" } input #from name="from" type="date" value=(s.from);
                label for="to" { "To" } input #to name="to" type="date" value=(s.to);
                button type="submit" { "Show" }
            }
            p.no-print.muted { "Anonymised: counts only, no names, devices or addresses. Print this page for the governors." }
            p { strong { (s.total) } " reports in the period." }
            h2 { "By kind of concern" }
            (bar_chart("Reports by kind of concern", &s.by_category))
            h2 { "By year group" }
            (bar_chart("Reports by year group", &s.by_year_group))
            h2 { "By week" }
            (bar_chart("Reports by week", &week_bars(s)))
        },
    )
}

/// The audit log, newest first.
pub fn audit_page(viewer: &Viewer, log: &[AuditEntry], shown_limit: u32) -> Markup {
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

/// The roster's name and the pseudonymous id, or a plain statement that nobody was signed in.
fn pupil(id: Option<&str>, name: Option<&str>) -> Markup {
    html! {
        @match (id, name) {
            (None, _) => span.muted { "nobody signed in" },
            (Some(id), Some(name)) => { (name) " " span.id { "(" (id) ")" } },
            (Some(id), None) => span.id { (id) },
        }
    }
}

fn optional(text: Option<&str>) -> Markup {
    html! {
        @match text {
            Some(t) if !t.is_empty() => (t),
            _ => span.muted { "none" },
        }
    }
}

/// Microseconds as milliseconds to one decimal place, rounding halves up.
fn millis(us: u64) -> String {
    let tenths = us.saturating_add(50) / 100;
    format!("{}.{} ms", tenths / 10, tenths % 10)
}

/// A time as staff read it, with the zone said out loud.
fn when(t: DateTime<Utc>) -> String {
    // Staff read UK time (GMT or BST, named); the database and the wire stay in UTC.
    t.with_timezone(&chrono_tz::Europe::London).format("%a %-d %b %Y, %H:%M:%S %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ReportRecord;

    fn viewer(role: Role) -> Viewer {
        Viewer { name: "j.smith".into(), role, csrf: "tok".into() }
    }

    fn incident(title: &str) -> IncidentRecord {
        IncidentRecord {
            id: 7,
            status: Status::New,
            details: Default::default(),
            created_at: "2026-11-17T10:14:04Z".parse().unwrap(),
            updated_at: "2026-11-17T10:14:04Z".parse().unwrap(),
            report: ReportRecord {
                id: "0192-a".into(),
                device: 12,
                pupil: Some("p-7f3a9c".into()),
                pupil_name: Some("Amira K.".into()),
                session: None,
                pressed_at: "2026-11-17T10:14:03Z".parse().unwrap(),
                received_at: "2026-11-17T10:14:04Z".parse().unwrap(),
                app: Some("browser".into()),
                url: Some("https://example.org/<x>".into()),
                page_title: Some(title.into()),
                blank_latency_us: Some(41_250),
                from_block_page: false,
                recent_names: vec!["example.org".into()],
            },
        }
    }

    #[test]
    fn reports_show_device_pupil_and_escaped_text() {
        let page = reports_page(&viewer(Role::Dsl), &[incident("<script>alert(1)</script>")], 500)
            .into_string();
        assert!(page.contains(r#"href="/devices/12""#), "{page}");
        assert!(page.contains(r#"href="/incidents/7""#), "{page}");
        assert!(page.contains("Amira K.") && page.contains("p-7f3a9c"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(r#"<script src="/static/live.js" defer></script>"#), "{page}");
        assert!(page.contains("https://example.org/&lt;x&gt;"), "{page}");
        assert!(!page.contains("href=\"https://example.org"), "URLs are text, not links: {page}");
        assert!(page.contains("Tue 17 Nov 2026, 10:14:03 GMT"), "{page}");
        assert!(page.contains("41.3 ms"), "{page}");
    }

    #[test]
    fn latency_reads_in_milliseconds() {
        assert_eq!(millis(41_250), "41.3 ms");
        assert_eq!(millis(999), "1.0 ms");
        assert_eq!(millis(0), "0.0 ms");
        assert!(millis(u64::MAX).ends_with(" ms"));
    }

    #[test]
    fn empty_and_anonymous_states_are_said_plainly() {
        assert!(reports_page(&viewer(Role::Dsl), &[], 500)
            .into_string()
            .contains("No reports yet"));
        let mut anonymous = incident("t");
        anonymous.report.pupil = None;
        anonymous.report.pupil_name = None;
        anonymous.report.blank_latency_us = None;
        let page = reports_page(&viewer(Role::Dsl), &[anonymous], 500).into_string();
        assert!(page.contains("nobody signed in") && page.contains("not confirmed"), "{page}");
    }

    #[test]
    fn forms_carry_the_csrf_token_and_follow_the_role() {
        let dsl = incident_page(&viewer(Role::Dsl), &incident("t"), &[]).into_string();
        assert!(dsl.contains(r#"name="csrf" value="tok""#), "{dsl}");
        assert!(
            dsl.contains("/incidents/7/acknowledge") && dsl.contains("/incidents/7/details"),
            "{dsl}"
        );
        assert!(dsl.contains("/incidents/7/export.csv"), "{dsl}");
        let teacher = incident_page(&viewer(Role::Teacher), &incident("t"), &[]).into_string();
        assert!(teacher.contains("/incidents/7/acknowledge"), "{teacher}");
        assert!(
            !teacher.contains("/incidents/7/details") && !teacher.contains("export.csv"),
            "{teacher}"
        );
        assert!(!teacher.contains(r#"href="/audit""#), "no audit link for teachers");
    }

    #[test]
    fn devices_are_online_when_heard_from_lately() {
        let now: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().unwrap();
        let cases = [
            (None, false),
            (Some(now - Duration::minutes(4)), true),
            (Some(now - Duration::minutes(5)), false),
        ];
        for (seen, expected) in cases {
            assert_eq!(online(seen, now), expected, "{seen:?}");
        }
    }
}
