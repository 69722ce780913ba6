//! The governors' termly report page: anonymised counts and charts for a period, printable.
//! The counting and the charts are `crate::governors`'s (pure); this is its page and route.

use crate::access::{Gate, Permission};
use crate::governors::{bar_chart, week_bars, Summary};
use crate::http::error::PageError;
use crate::http::forms::page_query;
use crate::http::layout::{layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Routes {
    Routes::new().get("/governors", Gate::Needs(Permission::GovernorReport), governors_page)
}

#[derive(Deserialize)]
pub struct TermQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A date from a form, naming the field when it is not one.
fn parse_date(field: &str, text: &str) -> Result<chrono::NaiveDate, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{field}: {:?} is not a date like 2026-09-03.", text.trim()))
}

/// `GET /governors?from=D&to=D`: the anonymised termly report; by default the last 13 weeks.
pub async fn governors_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<TermQuery>, QueryRejection>,
) -> Result<Markup, PageError> {
    let query = page_query(query)?;
    let today = Utc::now().date_naive();
    let from = match query.from.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse_date("From", text).map_err(PageError::BadForm)?,
        None => today - chrono::Duration::weeks(13),
    };
    let to = match query.to.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => parse_date("To", text).map_err(PageError::BadForm)?,
        None => today,
    };
    if to < from || to - from > chrono::Duration::days(400) {
        return Err(PageError::BadForm(
            "To must be after From, and within about a year of it.".into(),
        ));
    }
    let start = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let end =
        (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let facts = state.store.run(move |store| store.incident_facts(start, end)).await?;
    staff.audit(&state, "made governors' report", Some(format!("{from} to {to}"))).await?;
    let summary = crate::governors::summarise(&facts, from, to);
    Ok(report_page(&staff.viewer(), &summary))
}

/// The termly governors' report: counts and charts, printable.
fn report_page(viewer: &Viewer, s: &Summary) -> Markup {
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
            p.no-print.muted { "Anonymised: counts only, no names, devices or addresses; a kind of concern or year group with fewer than 5 reports shows no number. Print this page for the governors." }
            p { strong { (s.total) } @if s.total == 1 { " report" } @else { " reports" } " in the period." }
            h2 { "By kind of concern" }
            (bar_chart("Reports by kind of concern", &s.by_category))
            h2 { "By year group" }
            (bar_chart("Reports by year group", &s.by_year_group))
            h2 { "By week" }
            (bar_chart("Reports by week", &week_bars(s)))
        },
    )
}
