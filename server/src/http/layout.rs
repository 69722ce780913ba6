//! The frame every staff page shares, rendered with maud (which escapes every value), and the
//! small pieces of HTML several features show: a pupil, a time, an incident's status, whether a
//! device is online. Pure: records in, markup out; no database, no HTTP. Each feature's own
//! pages are in its module. The only scripts are the server's own: `/static/live.js` (the live
//! list) and `/static/back.js` (an error page's way back to a form). URLs that
//! devices reported are shown as text, never as links, so nobody opens harmful content by a
//! stray click (seed 003: "Not view the image").

use crate::access::{self, Permission};
use crate::auth::Role;
use crate::incident::Status;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

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
form.filters { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: end; margin: 0 0 1rem; }
form.filters div { display: grid; gap: 0.2rem; }
nav.pages { margin: 1rem 0; display: flex; gap: 1rem; }
label { font-weight: 600; font-size: 0.9rem; }
label.check { font-weight: 400; display: flex; gap: 0.5rem; align-items: center; }
input, select, textarea, button { font: inherit; padding: 0.35rem 0.5rem; }
button { background: var(--accent); color: #fff; border: 0; border-radius: 0.3rem; cursor: pointer; }
button.link { background: none; color: var(--accent); padding: 0; text-decoration: underline; }
/* A decision's two answers never look alike: the one that lets something through is filled green, the refusal outlined red. */
button.approve { background: #0b6e4f; }
button.refuse { background: #fff; color: #9b1c1c; border: 2px solid #9b1c1c; }
.error { color: #9b1c1c; background: #fde8e8; padding: 0.75rem 1rem; border-radius: 0.4rem; }
.banner { background: #fff4ce; padding: 0.75rem 1rem; border-radius: 0.4rem; font-weight: 600; }
.status-new { color: #9b1c1c; font-weight: 700; }
.online { color: #0b6e4f; font-weight: 600; }
tr.fresh { background: #fff4ce; }
.live-status { margin: 0 0 1rem; }
.live-ok { color: #0b6e4f; font-size: 0.9rem; }
.live-down { color: #9b1c1c; background: #fde8e8; border: 2px solid #9b1c1c; padding: 0.75rem 1rem; border-radius: 0.4rem; font-weight: 600; }
header .who { margin-left: auto; color: var(--muted); }
@media print { header, form, .no-print { display: none; } main { padding: 0; } }
"#;

/// Who is looking: for the navigation and the forms' CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    /// Site block requests waiting, shown beside the link for those who decide them.
    pub pending_block_requests: Option<u32>,
}

impl Viewer {
    pub(crate) fn may(&self, permission: Permission) -> bool {
        access::may(self.role, permission)
    }
}

/// The hidden field every POST form carries.
pub(crate) fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// The frame every staff page shares.
pub(crate) fn layout(viewer: Option<&Viewer>, title: &str, content: Markup) -> Markup {
    html! { (DOCTYPE) (layout_with_scripts(viewer, title, content, &[])) }
}

/// The live incident list's frame: the page with `/static/live.js`.
pub(crate) fn layout_with_script(
    viewer: Option<&Viewer>,
    title: &str,
    content: Markup,
    live: bool,
) -> Markup {
    let scripts: &[&str] = if live { &["/static/live.js"] } else { &[] };
    html! { (DOCTYPE) (layout_with_scripts(viewer, title, content, scripts)) }
}

/// The frame, with the server's own scripts named in `scripts`.
fn layout_with_scripts(
    viewer: Option<&Viewer>,
    title: &str,
    content: Markup,
    scripts: &[&str],
) -> Markup {
    html! {
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · Slate" }
                style { (PreEscaped(STYLE)) }
                @for script in scripts { script src=(script) defer {} }
            }
            body {
                header {
                    strong { "Slate" }
                    @if let Some(v) = viewer {
                        nav {
                            @if v.may(Permission::SeeNewReports) { a href="/reports" { "Reports" } " " }
                            @if v.may(Permission::RecordIncident) { a href="/incidents/record" { "Record an incident" } " " }
                            @if v.may(Permission::LookUpDevice) { a href="/who-had" { "Who had a device" } " " }
                            @if v.may(Permission::ViewFleet) { a href="/fleet" { "Fleet" } " " }
                            @if v.may(Permission::SendCommands) { a href="/commands" { "Eyes on me" } " " }
                            @if v.may(Permission::SeeBypasses) { a href="/bypasses" { "Filter bypasses" } " " }
                            @if v.may(Permission::HandleBlockRequests) { a href="/block-requests" { "Site block requests" @if let Some(n) = v.pending_block_requests.filter(|n| *n > 0) { " " span.count aria-label=(format!("{n} waiting")) { "(" (n) ")" } } } " " }
                            @if v.may(Permission::ManagePolicy) { a href="/setup" { "School setup" } " " } @if v.may(Permission::ManagePolicy) { a href="/pupils" { "Pupils" } " " }
                            @if v.may(Permission::ManageUpdates) { a href="/updates" { "Updates" } " " }
                            @if v.may(Permission::ManageStaffAccounts) { a href="/staff-accounts" { "Staff accounts" } " " }
                            @if v.may(Permission::ReadAudit) { a href="/audit" { "Audit log" } " " }
                            @if v.may(Permission::ReadCaseFile) { a href="/filtering-log" { "Filtering log" } " " }
                            @if v.may(Permission::ManageAlertRules) { a href="/alert-rules" { "Alert rules" } " " }
                            @if v.may(Permission::CheckFilter) { a href="/filter-checks" { "Filter checks" } " " }
                            @if v.may(Permission::ManageAgreements) { a href="/agreements" { "Agreements" } " " }
                            @if v.may(Permission::ManageLanguages) { a href="/languages" { "Languages" } " " }
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

/// A refused page inside the frame of whoever asked (`None`: nobody signed in). After a form
/// was sent, a link back to it: `/static/back.js` makes it the browser's Back, which keeps what
/// was typed; without the script it goes to the page the role starts on.
pub fn error_page(viewer: Option<&Viewer>, title: &str, message: &str, form_sent: bool) -> Markup {
    let start = viewer.map_or("/staff/login", |v| access::landing_page(v.role));
    html! {
        (DOCTYPE)
        (layout_with_scripts(viewer, title, html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            @if form_sent {
                p { a #go-back href=(start) data-back { "Go back to the form" } " (what you typed is still there)." }
            }
        }, if form_sent { &["/static/back.js"] } else { &[] }))
    }
}

/// An incident's status; a new one stands out.
pub(crate) fn status(s: Status) -> Markup {
    html! {
        @if s == Status::New { span.status-new { "New" } } @else { (s.label()) }
    }
}

/// A device counts as online when it was heard from within this time (heartbeats are more
/// frequent than this).
pub const ONLINE_WITHIN: Duration = Duration::minutes(5);

/// Whether a device last heard from at `last_seen` counts as online (fleet, "eyes on me").
pub fn online(last_seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_seen.is_some_and(|t| now - t < ONLINE_WITHIN)
}

/// The roster's name and the pseudonymous id, or a plain statement that nobody was signed in.
pub(crate) fn pupil(id: Option<&str>, name: Option<&str>) -> Markup {
    html! {
        @match (id, name) {
            (None, _) => span.muted { "nobody signed in" },
            (Some(id), Some(name)) => { (name) " " span.id { "(" (id) ")" } },
            (Some(id), None) => span.id { (id) },
        }
    }
}

pub(crate) fn optional(text: Option<&str>) -> Markup {
    html! {
        @match text {
            Some(t) if !t.is_empty() => (t),
            _ => span.muted { "none" },
        }
    }
}

/// The flag beside a time from a device whose clock was not synchronised (nothing otherwise).
pub(crate) fn clock_warning(warning: Option<&str>) -> Markup {
    html! {
        @if let Some(warning) = warning {
            br; strong.status-new.clock-unsynced { (warning) }
        }
    }
}

/// A number of things in words: "1 device", "2 devices", "0 devices".
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time as staff read it, with the zone said out loud.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    // Staff read UK time (GMT or BST, named); the database and the wire stay in UTC.
    crate::uk_time::format_uk_long(t)
}

/// A search form's UK day range: its From and To date fields, showing what was asked.
pub(crate) fn day_range_inputs(from: &str, to: &str) -> Markup {
    html! {
        div { label for="from" { "From (UK day)" } input #from type="date" name="from" value=(from); }
        div { label for="to" { "To" } input #to type="date" name="to" value=(to); }
    }
}

/// A search form's class field: the roster's classes, `chosen` selected.
pub(crate) fn class_select(classes: &[String], chosen: &str) -> Markup {
    html! {
        div {
            label for="class" { "Class" }
            select #class name="class" {
                option value="" { "Any class" }
                @for class in classes {
                    option value=(class) selected[*class == chosen.trim()] { (class) }
                }
            }
        }
    }
}

/// Links to the newer and older pages of a search (`href` gives a page's address), when there
/// are any.
pub(crate) fn pages_nav(
    label: &str,
    page: u32,
    has_next: bool,
    href: impl Fn(u32) -> String,
) -> Markup {
    html! {
        @if page > 1 || has_next {
            nav.pages aria-label=(label) {
                @if page > 1 {
                    a #previous-page rel="prev" href=(href(page - 1)) { "Newer" }
                }
                span.muted { " Page " (page) " " }
                @if has_next {
                    a #next-page rel="next" href=(href(page + 1)) { "Older" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_in_the_singular_only_for_one() {
        let cases = [(0, "0 devices"), (1, "1 device"), (2, "2 devices"), (21, "21 devices")];
        for (n, words) in cases {
            assert_eq!(count(n, "device", "devices"), words);
        }
        assert_eq!(count(1, "class", "classes"), "1 class");
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
