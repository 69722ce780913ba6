//! The filtering log's page.

use super::LogForm;
use crate::http::layout::{class_select, day_range_inputs, layout, pages_nav, pupil, when, Viewer};
use crate::store::LoggedBlock;
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// One page of the log and the search that chose it.
pub struct LogView<'a> {
    pub form: &'a LogForm,
    pub problems: &'a [String],
    pub classes: &'a [String],
    pub page: u32,
    pub has_next: bool,
    pub blocks: &'a [LoggedBlock],
}

pub fn log_page(viewer: &Viewer, view: &LogView, now: DateTime<Utc>) -> Markup {
    let form = view.form;
    layout(
        Some(viewer),
        "Filtering log",
        html! {
            h1 { "Filtering log" }
            p.muted {
                "Every address a device's filter refused, newest first, as it was at " (when(now)) ". "
                "Addresses are shown as text, never as links."
            }
            form.filters #search method="get" action="/filtering-log" {
                (day_range_inputs(&form.from, &form.to))
                (class_select(view.classes, &form.class))
                div { label for="device" { "Device" } input #device type="number" min="1" max="9999" name="device" value=(form.device) size="5"; }
                div { label for="list" { "List" } input #list type="text" name="list" value=(form.list) placeholder="e.g. adult, iwf" size="12"; }
                div { label for="pupil" { "Pupil id" } input #pupil type="text" name="pupil" value=(form.pupil) size="12"; }
                div.actions { button type="submit" { "Search" } " " a href="/filtering-log" { "Clear" } }
            }
            @if view.problems.is_empty() {
                p { a #export href={ "/filtering-log.csv?" (form.at_page(None)) } { "Download this search (CSV)" } }
            }
            @if !view.problems.is_empty() {
                div.error #search-problems role="alert" {
                    @for problem in view.problems { p { (problem) } }
                }
            } @else if view.blocks.is_empty() {
                p.empty #no-blocks { "No refused attempts match this search." }
            } @else {
                table #blocks {
                    thead { tr { th { "When" } th { "Device" } th { "Pupil" } th { "List" } th { "Address" } th { "Rule" } } }
                    tbody {
                        @for b in view.blocks {
                            tr {
                                td { (when(b.at)) }
                                td { a href={ "/devices/" (b.device) } { "Device " (b.device) } }
                                td {
                                    @match &b.pupil {
                                        Some(id) => a href={ "/pupils/" (id) } { (pupil(Some(id), b.pupil_name.as_deref())) },
                                        None => (pupil(None, None)),
                                    }
                                }
                                td { (b.list) }
                                td.url { (b.target) " (" (b.layer) ")" }
                                td.url { (b.rule) }
                            }
                        }
                    }
                }
            }
            (pages_nav("Pages of the log", view.page, view.has_next, |page| {
                format!("/filtering-log?{}", form.at_page(Some(page)))
            }))
        },
    )
}
