//! HTML for staff, rendered with maud (which escapes every value). Pure: records in, markup
//! out; no database, no HTTP. URLs that devices reported are shown as text, never as links, so
//! nobody opens harmful content by a stray click (seed 003: "Not view the image").

use crate::store::{DeviceRecord, ReportRecord, SessionRecord};
use chrono::{DateTime, Utc};
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
"#;

/// The frame every staff page shares.
fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · Slate" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "Slate" }
                    nav { a href="/reports" { "Reports" } }
                }
                main { (content) }
            }
        }
    }
}

/// A page that says one thing: errors, refusals.
pub fn message_page(title: &str, message: &str) -> Markup {
    layout(title, html! { h1 { (title) } p { (message) } })
}

/// Every report, newest first.
pub fn reports_page(reports: &[ReportRecord], shown_limit: u32) -> Markup {
    layout(
        "Reports",
        html! {
            h1 { "Reports" }
            @if reports.is_empty() {
                p.empty { "No reports yet. When a pupil presses the report button, the report appears here." }
            } @else {
                @if reports.len() as u64 >= u64::from(shown_limit) {
                    p.muted { "Showing the newest " (shown_limit) " reports." }
                }
                (reports_table(reports, true))
            }
        },
    )
}

/// One device: who used it and what it reported.
pub fn device_page(
    device: &DeviceRecord,
    sessions: &[SessionRecord],
    reports: &[ReportRecord],
) -> Markup {
    let title = format!("Device {}", device.number);
    layout(
        &title,
        html! {
            h1 { (title) }
            dl {
                dt { "Enrolled" } dd { (when(device.enrolled_at)) }
                dt { "Software" } dd { (device.software_version) }
                dt { "Last heard from" }
                dd { @match device.last_seen_at { Some(t) => (when(t)), None => span.muted { "not yet" } } }
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
            h2 { "Reports" }
            @if reports.is_empty() {
                p.empty { "No reports from this device." }
            } @else {
                (reports_table(reports, false))
            }
        },
    )
}

fn reports_table(reports: &[ReportRecord], with_device: bool) -> Markup {
    html! {
        table {
            thead {
                tr {
                    th { "Pressed" }
                    @if with_device { th { "Device" } }
                    th { "Pupil" } th { "App" } th { "Address" } th { "Page title" }
                    th { "Screen dark after" } th { "Received" }
                }
            }
            tbody {
                @for r in reports {
                    tr {
                        td { (when(r.pressed_at)) }
                        @if with_device {
                            td { a href={ "/devices/" (r.device) } { "Device " (r.device) } }
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
                        td { (when(r.received_at)) }
                    }
                }
            }
        }
    }
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
    t.format("%a %-d %b %Y, %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(title: &str) -> ReportRecord {
        ReportRecord {
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
        }
    }

    #[test]
    fn reports_show_device_pupil_and_escaped_text() {
        let page = reports_page(&[report("<script>alert(1)</script>")], 500).into_string();
        assert!(page.contains(r#"href="/devices/12""#), "{page}");
        assert!(page.contains("Amira K.") && page.contains("p-7f3a9c"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("https://example.org/&lt;x&gt;"), "{page}");
        assert!(!page.contains("href=\"https://example.org"), "URLs are text, not links: {page}");
        assert!(page.contains("Tue 17 Nov 2026, 10:14:03 UTC"), "{page}");
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
        assert!(reports_page(&[], 500).into_string().contains("No reports yet"));
        let mut anonymous = report("t");
        anonymous.pupil = None;
        anonymous.pupil_name = None;
        anonymous.blank_latency_us = None;
        let page = reports_page(&[anonymous], 500).into_string();
        assert!(page.contains("nobody signed in") && page.contains("not confirmed"), "{page}");
    }
}
