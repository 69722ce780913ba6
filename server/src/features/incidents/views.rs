//! The incidents' pages: the list and one incident with its workflow's forms.

use super::search::{states, SearchForm};
use crate::access::Permission;
use crate::http::layout::{
    class_select, clock_warning, csrf, day_range_inputs, layout, layout_with_script, optional,
    pages_nav, pupil, status, when, Viewer,
};
use crate::incident::{Action, Status, CATEGORIES};
use crate::store::{IncidentEntry, IncidentRecord};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// One page of the DSL's incident list, and the search that chose it.
pub struct IncidentList<'a> {
    pub form: &'a SearchForm,
    /// What was wrong with the search, each naming its field; the list is then empty.
    pub problems: &'a [String],
    /// The roster's classes, for the class field.
    pub classes: &'a [String],
    pub page: u32,
    pub has_next: bool,
    pub incidents: &'a [IncidentRecord],
}

/// The DSL's incident list: the search form, one page of incidents, newest first, and links to
/// the pages either side. The unsearched first page updates live; a search or a later page
/// says it does not.
pub fn reports_page(viewer: &Viewer, list: &IncidentList, now: DateTime<Utc>) -> Markup {
    let live = !list.form.narrows() && list.page == 1 && list.problems.is_empty();
    layout_with_script(
        Some(viewer),
        "Reports",
        html! {
            h1 { "Reports" }
            @if live {
                p.live-status.live-down #live-status role="status" data-as-of=(when(now))
                    data-tick-seconds=(super::LIVE_TICK.as_secs()) {
                    "Live updates need JavaScript: this list is as it was at " (when(now)) ". Reload the page to see new reports."
                }
                p.banner #live-banner hidden { }
            } @else {
                p.banner #search-status role="status" {
                    "This list is as it was at " (when(now)) ": new reports are not added to a search or a later page. "
                    a href="/reports" { "Back to the live list" }
                }
            }
            @if viewer.may(Permission::ReadCaseFile) {
                p { a href="/reports.csv" { "Download the incident log (CSV)" } }
            }
            (search_form(list))
            @if !list.problems.is_empty() {
                div.error #search-problems role="alert" {
                    @for problem in list.problems { p { (problem) } }
                }
            } @else if list.incidents.is_empty() && list.page == 1 {
                @if list.form.narrows() {
                    p.empty #no-incidents { "No incidents match this search." }
                } @else {
                    p.empty #no-incidents { "No reports yet. When a pupil presses the report button, the report appears here." }
                }
            } @else if list.incidents.is_empty() {
                p.empty #no-incidents { "No incidents on this page: the search has fewer pages." }
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
                    @for i in list.incidents {
                        @let r = &i.report;
                        tr data-incident=(i.id) {
                            td { a href={ "/incidents/" (i.id) } { "Incident " (i.id) } }
                            td { (when(r.pressed_at)) (clock_warning(r.clock_warning())) }
                            td { (device_or_place(i)) }
                            td {
                                (status(i.status))
                                @if r.from_block_page { br; span.muted.low-priority { "low priority: from a blocked page" } }
                            }
                            td { (pupil_with_chronology(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                            td { (optional(r.app.as_deref())) }
                            td.url { (optional(r.url.as_deref())) }
                            td { (optional(r.page_title.as_deref())) }
                            td {
                                @match (&r.recorded_by, r.blank_latency_us) {
                                    (Some(by), _) => span.muted { "recorded by " (by) },
                                    (None, Some(us)) => (millis(us)),
                                    (None, None) => span.muted { "not confirmed" },
                                }
                            }
                        }
                    }
                }
            }
            (pages_nav("Pages of the list", list.page, list.has_next, |page| {
                format!("/reports?{}", list.form.at_page(page))
            }))
        },
        live,
    )
}

/// A pupil, linked to their chronology (the case file's readers only see these pages).
fn pupil_with_chronology(id: Option<&str>, name: Option<&str>) -> Markup {
    html! {
        @match id {
            Some(id) => a.pupil href={ "/pupils/" (id) } title="Everything recorded for this pupil" { (pupil(Some(id), name)) },
            None => (pupil(None, name)),
        }
    }
}

/// The search form: every field keeps what was asked, so a search is refined, not retyped.
fn search_form(list: &IncidentList) -> Markup {
    let form = list.form;
    html! {
        form.filters #search method="get" action="/reports" {
            (day_range_inputs(&form.from, &form.to))
            (class_select(list.classes, &form.class))
            div { label for="device" { "Device" } input #device type="number" min="1" max="9999" name="device" value=(form.device) size="5"; }
            div {
                label for="state" { "State" }
                select #state name="state" {
                    option value="" { "Any state" }
                    @for (value, label) in states() {
                        option value=(value) selected[value == form.state.trim()] { (label) }
                    }
                }
            }
            div {
                label for="category" { "Kind of concern" }
                select #category name="category" {
                    option value="" { "Any kind" }
                    @for (value, label) in CATEGORIES {
                        option value=(value) selected[value == form.category.trim()] { (label) }
                    }
                }
            }
            @if !form.pupil.trim().is_empty() {
                div {
                    label for="pupil" { "Pupil" }
                    input #pupil type="text" name="pupil" value=(form.pupil) size="12";
                }
            }
            div.actions { button type="submit" { "Search" } " " a href="/reports" { "Clear" } }
        }
    }
}

/// A teacher's list: the new reports from their own classes, enough to go to the device and
/// say so. No address, title or case file: those are the DSL's.
pub fn new_reports_page(viewer: &Viewer, reports: &[IncidentRecord]) -> Markup {
    layout(
        Some(viewer),
        "New reports",
        html! {
            h1 { "New reports from your classes" }
            @if reports.is_empty() {
                p.empty #no-incidents { "No new reports from your classes. Reload to check again." }
            }
            table {
                thead { tr { th { "Pressed" } th { "Device" } th { "Pupil" } th { } } }
                tbody #incidents {
                    @for i in reports {
                        @let r = &i.report;
                        tr {
                            td { (when(r.pressed_at)) }
                            td { "Device " (r.device_label()) }
                            td { (pupil(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                            td {
                                form method="post" action={ "/incidents/" (i.id) "/acknowledge" } {
                                    (csrf(viewer))
                                    button type="submit" { "I am going to device " (r.device_label()) }
                                }
                            }
                        }
                    }
                }
            }
            p.muted { "The DSL sees the report in full and records what happens next." }
        },
    )
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
                @if let Some(by) = &r.recorded_by {
                    dt { "Happened" } dd { (when(r.pressed_at)) }
                    dt { "Device" } dd { (device_or_place(incident)) }
                    dt { "Recorded by" } dd { (by) ", about " (pupil_with_chronology(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                } @else {
                    dt { "Pressed" } dd { (when(r.pressed_at)) (clock_warning(r.clock_warning())) }
                    dt { "Device" } dd { (device_or_place(incident)) }
                    dt { "Reported by" } dd { "Pupil, " (r.how_reported()) ": " (pupil_with_chronology(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                }
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
            @if viewer.may(Permission::ReadCaseFile) {
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
                Status::Actioned(Action::FalseAlarm) => {
                    p { "Recorded as a false alarm." }
                    (reopen_form(viewer, id))
                }
                _ => {
                    @if viewer.may(Permission::MoveIncident) {
                        form.stack method="post" action={ "/incidents/" (id) "/action" } {
                            (csrf(viewer))
                            @let next = crate::incident::natural_next(incident.status);
                            label for="action" { "Action taken" }
                            select #action name="action" required {
                                @if next.is_none() { option value="" selected disabled { "Choose the action" } }
                                @for a in crate::incident::offered_actions(incident.status) {
                                    option value=(a.name()) selected[Some(a) == next] { (a.label()) }
                                }
                            }
                            label for="action-note" { "Note (needed for a false alarm)" }
                            textarea #action-note name="note" rows="3" {}
                            label.check for="confirm-close" {
                                input #confirm-close type="checkbox" name="confirm" value="yes";
                                " I am sure: a false alarm closes the incident"
                            }
                            button type="submit" { "Record action" }
                        }
                    } @else {
                        p.muted { "A DSL records the action taken." }
                    }
                    @if let Status::Actioned(_) = incident.status { (reopen_form(viewer, id)) }
                }
            }
            @if viewer.may(Permission::MoveIncident) {
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

/// Reopening an incident with an action recorded, for those who move incidents.
fn reopen_form(viewer: &Viewer, id: i64) -> Markup {
    html! {
        @if viewer.may(Permission::MoveIncident) {
            form.stack method="post" action={ "/incidents/" (id) "/reopen" } {
                (csrf(viewer))
                label for="reopen-note" { "Why it is reopened" }
                input #reopen-note name="note";
                button type="submit" { "Reopen" }
            }
        }
    }
}

/// The device, linked to its page; for an incident recorded without one, where it happened.
fn device_or_place(incident: &IncidentRecord) -> Markup {
    match incident.report.device {
        Some(device) => html! { a href={ "/devices/" (device) } { "Device " (device) } },
        None => html! {
            span.muted { "no device" }
            @if let Some(place) = &incident.details.location { ": " (place) }
        },
    }
}

fn entry_label(e: &IncidentEntry) -> String {
    match (e.kind.as_str(), e.action.as_deref().and_then(Action::parse)) {
        ("action", Some(a)) => a.label().into(),
        ("acknowledged", _) => "Acknowledged".into(),
        ("details", _) => "Edited the record".into(),
        ("note", _) => "Note".into(),
        ("reopened", _) => "Reopened".into(),
        ("device", _) => "On the device".into(),
        ("recorded", _) => "Recorded; action taken so far".into(),
        (other, _) => other.into(),
    }
}

/// Microseconds as milliseconds to one decimal place, rounding halves up.
fn millis(us: u64) -> String {
    let tenths = us.saturating_add(50) / 100;
    format!("{}.{} ms", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::ReportRecord;

    fn now() -> DateTime<Utc> {
        "2026-11-17T10:20:00Z".parse().unwrap()
    }

    fn viewer(role: Role) -> Viewer {
        Viewer { name: "j.smith".into(), role, csrf: "tok".into(), pending_block_requests: None }
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
                device: Some(12),
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
                clock_synchronised: Some(true),
                recorded_by: None,
            },
        }
    }

    #[test]
    fn reports_show_device_pupil_and_escaped_text() {
        let page = list_page(&[incident("<script>alert(1)</script>")]).into_string();
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
    fn a_press_time_from_an_unsynchronised_clock_is_flagged() {
        let flag = "device clock not synchronised: time may be wrong";
        for (synchronised, flagged) in [(Some(true), false), (None, false), (Some(false), true)] {
            let mut i = incident("t");
            i.report.clock_synchronised = synchronised;
            let list = list_page(&[i.clone()]).into_string();
            let page = incident_page(&viewer(Role::Dsl), &i, &[]).into_string();
            assert_eq!(list.contains(flag), flagged, "list, {synchronised:?}: {list}");
            assert_eq!(page.contains(flag), flagged, "page, {synchronised:?}: {page}");
        }
    }

    /// The unsearched first page of the list, holding `incidents`.
    fn list_page(incidents: &[IncidentRecord]) -> Markup {
        let form = SearchForm::default();
        let list = IncidentList {
            form: &form,
            problems: &[],
            classes: &[],
            page: 1,
            has_next: false,
            incidents,
        };
        reports_page(&viewer(Role::Dsl), &list, now())
    }

    #[test]
    fn a_search_or_a_later_page_says_it_is_not_live_and_links_its_pages() {
        let live = list_page(&[incident("t")]).into_string();
        assert!(live.contains(r#"id="live-status""#) && !live.contains("search-status"), "{live}");
        let form: SearchForm =
            serde_urlencoded::from_str("class=Year+5%2C+Kingfishers&state=escalated").unwrap();
        let classes = ["Oak".to_owned(), "Year 5, Kingfishers".to_owned()];
        let list = IncidentList {
            form: &form,
            problems: &[],
            classes: &classes,
            page: 2,
            has_next: true,
            incidents: &[incident("t")],
        };
        let page = reports_page(&viewer(Role::Dsl), &list, now()).into_string();
        assert!(!page.contains(r#"id="live-status""#) && !page.contains("live.js"), "{page}");
        assert!(page.contains("new reports are not added to a search"), "{page}");
        assert!(
            page.contains(r#"<option value="Year 5, Kingfishers" selected>"#)
                && page.contains(r#"<option value="escalated" selected>"#),
            "the search keeps what was asked: {page}"
        );
        assert!(
            page.contains(
                r#"href="/reports?class=Year+5%2C+Kingfishers&amp;state=escalated&amp;page=1""#
            ) && page.contains(
                r#"href="/reports?class=Year+5%2C+Kingfishers&amp;state=escalated&amp;page=3""#
            ),
            "{page}"
        );
        let problems = ["Device: \"x\" is not a device number from 1 to 9999.".to_owned()];
        let list =
            IncidentList { problems: &problems, page: 1, has_next: false, incidents: &[], ..list };
        let page = reports_page(&viewer(Role::Dsl), &list, now()).into_string();
        assert!(
            page.contains("is not a device number") && !page.contains("No reports yet"),
            "{page}"
        );
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
        assert!(list_page(&[]).into_string().contains("No reports yet"));
        let mut anonymous = incident("t");
        anonymous.report.pupil = None;
        anonymous.report.pupil_name = None;
        anonymous.report.blank_latency_us = None;
        let page = list_page(&[anonymous]).into_string();
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
}
