//! The termly filter check (issue 17; seed 004 and the DfE filtering and monitoring
//! standards), for the DSL, their deputies and IT: record each term's check (date, who — the
//! signed-in account —, what was checked, the outcome, notes, actions taken, when the next is
//! due), see earlier ones newest first and whether the next is overdue; and the built-in check:
//! chosen devices resolve test names from each category of the lists in force (and names of
//! the DSL's own) through their own filter, answering per name, shown as a device × category
//! table. A built-in check can be attached to the recorded check; its answers are kept with it
//! (not only as device events), so the record holds which test names each device blocked and
//! with which list for as long as the retention schedule keeps filter checks. A recorded check
//! exports as CSV with its built-in check's answers, name by name. Starting, recording and
//! exporting are audited. The rules are `crate::filter_checks`'s.

use crate::access::{Gate, Permission};
use crate::filter_checks::{
    check_record, choose_test_names, due_state, judge, next_term_start, own_names, Answer, Cell,
    CheckForm, DueState, OWN_NAMES,
};
use crate::http::error::PageError;
use crate::http::forms::{form, parse_device};
use crate::http::layout::{csrf, layout, online};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::{csv_response, AppState};
use crate::list_files::ListFiles;
use crate::store::{FilterCheckRecord, FilterCheckRun, Store, StoreError};
use crate::uk_time::format_uk;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{Redirect, Response};
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Europe::London;
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::device::CheckName;
use slate_protocol::DeviceNumber;
use std::collections::BTreeSet;

/// How long a device that was off may still take up a started check.
pub const CHECK_FOR: Duration = Duration::minutes(10);
/// Built-in checks shown (and offered to attach).
const RUNS_SHOWN: u32 = 5;
/// Recorded checks shown.
const CHECKS_SHOWN: u32 = 50;

pub fn routes() -> Routes {
    let check = Gate::Needs(Permission::CheckFilter);
    Routes::new()
        .get("/filter-checks", check, filter_checks_page)
        .post("/filter-checks", check, record_check)
        .post("/filter-checks/run", check, start_check)
        .get("/filter-checks/{id}/export.csv", check, check_csv)
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&London).date_naive()
}

/// The categories devices block with and the text of each list (`(name, text)`): the lists a
/// filter profile blocks with, read from the files in force.
fn categories(
    files: Option<&ListFiles>,
    store: &Store,
) -> Result<Vec<(String, String)>, StoreError> {
    let lists = store.lists()?;
    let profiles = store.profiles()?;
    let mut out = Vec::new();
    let Some(files) = files else { return Ok(out) };
    for list in lists.iter().filter(|l| profiles.iter().any(|p| p.block_lists.contains(&l.name))) {
        match std::fs::read(files.path(&list.file)) {
            Ok(bytes) => {
                out.push((list.name.clone(), String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(e) => tracing::warn!(list = %list.name, error = %e, "cannot read a list file"),
        }
    }
    Ok(out)
}

/// `GET /filter-checks`.
pub async fn filter_checks_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let files = state.lists.clone();
    let (checks, runs, fleet, names) = state
        .store
        .run(move |store| {
            let checks = store.filter_checks(CHECKS_SHOWN)?;
            let runs = store.filter_check_runs(RUNS_SHOWN)?;
            let names = choose_test_names(&categories(files.as_ref(), store)?);
            Ok((checks, runs, store.fleet()?, names))
        })
        .await?;
    let now = Utc::now();
    let online_now: Vec<String> = fleet
        .iter()
        .filter(|d| online(d.last_seen_at, now))
        .map(|d| d.number.to_string())
        .collect();
    let viewer = staff.viewer();
    let today = today();
    let due = due_state(checks.first().map(|c| c.next_due), today);
    Ok(layout(
        Some(&viewer),
        "Filter checks",
        html! {
            h1 { "Filter checks" }
            p { "Each term the DSL checks that the filter blocks what it should (DfE filtering and monitoring standards) and records the check here." }
            @match due {
                DueState::NeverChecked => p.banner { "No filter check has been recorded yet." },
                DueState::DueOn(day) => p { "Next check due: " strong { (day) } },
                DueState::Overdue(day) => p.error { "The next check is overdue: it was due " (day) "." },
            }
            h2 { "Built-in check" }
            p { "Chosen devices resolve test names from each category of the lists in force through their own filter, and say which were blocked." }
            @if names.is_empty() {
                p.muted { "No list that devices block with has an entry to test with: add your own names." }
            } @else {
                p.muted { "Test names: " (names.iter().map(|n| format!("{} ({})", n.name, n.category.as_deref().unwrap_or(OWN_NAMES))).collect::<Vec<_>>().join(", ")) }
            }
            form.stack method="post" action="/filter-checks/run" {
                (csrf(&viewer))
                label { "Devices (online now: " @if online_now.is_empty() { "none" } @else { (online_now.join(", ")) } ")" }
                input name="devices" value=(online_now.join(", ")) placeholder="12, 14";
                label { "Your own names (optional): a test site your filtering provider gives, one per line" }
                textarea name="own_names" rows="2" {}
                button type="submit" { "Start the check" }
            }
            @for run in &runs { (run_table(run)) }
            h2 { "Record this term's check" }
            form.stack method="post" action="/filter-checks" {
                (csrf(&viewer))
                label { "Date of the check" } input name="checked_on" type="date" value=(today);
                label { "What was checked" } textarea name="what_checked" rows="2" placeholder="devices, categories, test sites" {}
                label.check { input type="radio" name="outcome" value="passed" checked; "Passed" }
                label.check { input type="radio" name="outcome" value="problems_found"; "Problems found" }
                label { "Notes" } textarea name="notes" rows="2" {}
                label { "Actions taken" } textarea name="actions_taken" rows="2" {}
                label { "Next check due (empty: the next term, " (next_term_start(today)) ")" }
                input name="next_due" type="date";
                label { "Built-in check to attach" }
                select name="run" {
                    option value="" { "none" }
                    @for run in &runs { option value=(run.id) { "check " (run.id) ", " (format_uk(run.started_at)) } }
                }
                button type="submit" { "Record the check" }
            }
            h2 { "Earlier checks" }
            (checks_table(&checks))
        },
    ))
}

/// One built-in check's table: a row per device, a column per category.
fn run_table(run: &FilterCheckRun) -> Markup {
    let columns: BTreeSet<String> = run
        .names
        .iter()
        .map(|n| n.category.clone().unwrap_or_else(|| OWN_NAMES.to_owned()))
        .collect();
    html! {
        h2 { "Check " (run.id) " · " (format_uk(run.started_at)) " · " (run.started_by) }
        table.filter-check {
            tr { th { "Device" } @for c in &columns { th { (c) } } }
            @for checked in &run.devices {
                @let answer = checked.answer.as_ref().map(|a| Answer { results: &a.results, error: a.error.as_deref() });
                @let row = judge(&run.names, answer);
                tr {
                    td { (checked.device) }
                    @for c in &columns {
                        td { @match row.get(c) {
                            Some(Cell::Blocked(lists)) => { span.online { "blocked" } " " span.muted { "(" (lists.join(", ")) ")" } },
                            Some(Cell::NotBlocked(names)) => { span.status-new { "NOT BLOCKED" } " " (names.join(", ")) },
                            Some(Cell::Failed(why)) => { span.status-new { "filter did not answer" } " " span.muted { (why) } },
                            Some(Cell::NoAnswer) | None => span.muted { "no answer yet" },
                        } }
                    }
                }
            }
        }
    }
}

fn checks_table(checks: &[FilterCheckRecord]) -> Markup {
    html! {
        @if checks.is_empty() { p.empty { "No check recorded yet." } } @else {
            table {
                tr { th { "Date" } th { "By" } th { "What was checked" } th { "Outcome" } th { "Notes" } th { "Actions taken" } th { "Next due" } th { "Built-in check" } th { "Record" } }
                @for c in checks {
                    tr {
                        td { (c.checked_on) } td { (c.checked_by) } td { (c.what_checked) }
                        td { @if c.passed { "passed" } @else { span.status-new { "problems found" } } }
                        td { (c.notes) } td { (c.actions_taken) } td { (c.next_due) }
                        td { @match c.run { Some(r) => { "check " (r) }, None => { "" } } }
                        td { a href={ "/filter-checks/" (c.id) "/export.csv" } { "Download (CSV)" } }
                    }
                }
            }
        }
    }
}

/// `GET /filter-checks/{id}/export.csv`: a recorded check with its built-in check's answers,
/// name by name; audited.
pub async fn check_csv(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound("No such filter check.".into());
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let found = state
        .store
        .run(move |store| {
            let Some(check) = store.filter_check(id)? else { return Ok(None) };
            let run = match check.run {
                Some(run) => store.filter_check_run(run)?,
                None => None,
            };
            Ok(Some((check, run)))
        })
        .await?;
    let (check, run) = found.ok_or_else(not_found)?;
    staff
        .audit(
            &state,
            "exported a termly filter check (CSV)",
            Some(format!("check of {}", check.checked_on)),
        )
        .await?;
    Ok(csv_response(
        &format!("filter-check-{}-{id}.csv", check.checked_on),
        crate::export::filter_check_csv(&check, run.as_ref()),
    ))
}

#[derive(Deserialize)]
pub struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    checked_on: String,
    #[serde(default)]
    what_checked: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    actions_taken: String,
    #[serde(default)]
    next_due: String,
    #[serde(default)]
    run: String,
}

/// `POST /filter-checks`: records the check as the signed-in account; audited.
pub async fn record_check(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RecordForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let check = check_record(
        &CheckForm {
            checked_on: f.checked_on,
            what_checked: f.what_checked,
            outcome: f.outcome,
            notes: f.notes,
            actions_taken: f.actions_taken,
            next_due: f.next_due,
        },
        today(),
    )
    .map_err(PageError::BadForm)?;
    let run =
        match f.run.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                PageError::BadForm("Built-in check: choose one from the list.".into())
            })?),
        };
    let by = staff.actor.clone();
    let recorded = state
        .store
        .run(move |store| store.record_filter_check(&check, run, &by, Utc::now()))
        .await?;
    recorded.ok_or_else(|| PageError::BadForm("Built-in check: no such check.".into()))?;
    Ok(Redirect::to("/filter-checks"))
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    devices: String,
    #[serde(default)]
    own_names: String,
}

/// The devices a check goes to: numbers separated by commas or spaces, each an enrolled device.
fn parse_devices(text: &str, enrolled: &[u16]) -> Result<Vec<DeviceNumber>, String> {
    let mut devices: Vec<DeviceNumber> = Vec::new();
    for word in text.split([',', ' ']).filter(|w| !w.trim().is_empty()) {
        let device = parse_device(word)
            .map_err(|_| format!("Devices: {:?} is not a device number.", word.trim()))?;
        if !enrolled.contains(&device.get()) {
            return Err(format!("Devices: device {device} is not enrolled."));
        }
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    if devices.is_empty() {
        return Err("Devices: one or more device numbers, such as 12, 14.".into());
    }
    Ok(devices)
}

/// `POST /filter-checks/run`: a `check_filter` command to each chosen device with the test
/// names from the lists in force and the DSL's own; audited; the devices' polls woken.
pub async fn start_check(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<RunForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let own = own_names(&f.own_names).map_err(PageError::BadForm)?;
    let by = staff.actor.clone();
    let files = state.lists.clone();
    let started = state
        .store
        .run(move |store| {
            let enrolled: Vec<u16> = store.fleet()?.iter().map(|d| d.number).collect();
            let devices = match parse_devices(&f.devices, &enrolled) {
                Ok(devices) => devices,
                Err(e) => return Ok(Err(e)),
            };
            let mut names: Vec<CheckName> = choose_test_names(&categories(files.as_ref(), store)?);
            for name in own {
                if !names.iter().any(|n| n.name == name.name) {
                    names.push(name);
                }
            }
            if names.is_empty() {
                return Ok(Err("Nothing to check: no list devices block with has an entry; add your own names.".into()));
            }
            let now = Utc::now();
            store.start_filter_check(&devices, &names, &by, now, now + CHECK_FOR).map(Ok)
        })
        .await?;
    started.map_err(PageError::BadForm)?;
    state.commands_changed();
    Ok(Redirect::to("/filter-checks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_goes_to_enrolled_devices() {
        let enrolled = [3, 12, 14];
        let ok = [("12", vec![12]), ("12, 14 12", vec![12, 14]), (" 3 ,", vec![3])];
        for (text, want) in ok {
            let got: Vec<u16> =
                parse_devices(text, &enrolled).unwrap().iter().map(|d| d.get()).collect();
            assert_eq!(got, want, "{text}");
        }
        let bad = [("", "one or more"), ("13", "not enrolled"), ("x", "Devices:")];
        for (text, part) in bad {
            let err = parse_devices(text, &enrolled).unwrap_err();
            assert!(err.contains(part), "{text}: {err}");
        }
    }
}
