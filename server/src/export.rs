//! CSV exports: one incident's record with its history, the incident log (seed 002 appendix K),
//! a termly filter check with its built-in check's answers, and the audit log. Pure: records in, bytes out. Cells that a spreadsheet would run as a
//! formula (starting `=`, `+`, `-`, `@`) are prefixed with `'`, since URLs and titles come
//! from devices.

use crate::incident::category_label;
use crate::store::{AuditEntry, IncidentEntry, IncidentRecord};
use chrono::{DateTime, Utc};

/// Defuses spreadsheet formula injection.
pub fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// UK time, zone named, as every time a person reads.
fn time(t: DateTime<Utc>) -> String {
    crate::uk_time::format_uk_sortable(t)
}

fn opt(text: &Option<String>) -> String {
    cell(text.as_deref().unwrap_or(""))
}

/// UTF-8's byte-order mark, first in every export: without it Excel reads the file in the
/// machine's legacy code page and garbles accented names.
const BYTE_ORDER_MARK: &str = "\u{feff}";

/// An empty CSV body that starts with the byte-order mark.
fn marked() -> Vec<u8> {
    BYTE_ORDER_MARK.as_bytes().to_vec()
}

fn finish(writer: csv::Writer<Vec<u8>>) -> Vec<u8> {
    // Writing to a Vec cannot fail.
    writer.into_inner().unwrap_or_default()
}

/// When the button was pressed, with the warning when the device's clock was not synchronised
/// (the record must not pass off a possibly wrong time as certain).
fn pressed_at(r: &crate::store::ReportRecord) -> String {
    match r.clock_warning() {
        Some(warning) => format!("{} ({warning})", time(r.pressed_at)),
        None => time(r.pressed_at),
    }
}

/// Who reported: the pupil (with the button or "tell my teacher"), or the member of staff who
/// recorded it by hand and about whom.
fn reported_by(r: &crate::store::ReportRecord) -> String {
    let pupil = r.pupil_label();
    match &r.recorded_by {
        Some(_) => cell(&format!("{}, about {pupil}", r.how_reported())),
        None => format!("pupil, {} ({pupil})", r.how_reported()),
    }
}

/// One incident: field/value rows (the record, appendix J), then its history.
pub fn incident_csv(incident: &IncidentRecord, entries: &[IncidentEntry]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(marked());
    let r = &incident.report;
    let d = &incident.details;
    let category = d.category.as_deref().and_then(category_label).unwrap_or("").to_owned();
    let rows: Vec<(&str, String)> = vec![
        ("Incident", incident.id.to_string()),
        ("Status", incident.status.label()),
        ("Date and time", pressed_at(r)),
        ("Device", r.device_label()),
        ("Reported by", reported_by(r)),
        ("App", opt(&r.app)),
        ("Address (URL)", opt(&r.url)),
        ("Page title", opt(&r.page_title)),
        ("Names looked up just before", r.recent_names.join(" ")),
        ("Category", category),
        ("Where", opt(&d.location)),
        ("What was seen", opt(&d.description)),
        ("Who was involved", opt(&d.involved)),
        ("Reported to", opt(&d.reported_to)),
        ("Outcome", opt(&d.outcome)),
        ("Received", time(r.received_at)),
    ];
    let _ = w.write_record(["Field", "Value"]);
    for (field, value) in rows {
        let _ = w.write_record([field, &value]);
    }
    let _ = w.write_record([""; 0]);
    let _ = w.write_record(["When", "Who", "What", "Action", "Note"]);
    for e in entries {
        let _ = w.write_record([
            time(e.at),
            cell(&e.staff),
            e.kind.clone(),
            opt(&e.action),
            opt(&e.note),
        ]);
    }
    finish(w)
}

/// A recorded termly filter check: field/value rows, then its built-in check's answers, a row
/// per device and test name (blocked, and by which list; not blocked; the filter did not
/// answer; no answer).
pub fn filter_check_csv(
    check: &crate::store::FilterCheckRecord,
    run: Option<&crate::store::FilterCheckRun>,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(marked());
    let outcome = if check.passed { "passed" } else { "problems found" };
    let built_in = match (check.run, run) {
        (Some(_), Some(run)) => {
            format!("check {}, started {} by {}", run.id, time(run.started_at), run.started_by)
        }
        (Some(id), None) => format!("check {id} (no longer kept)"),
        (None, _) => String::new(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("Date of the check", check.checked_on.to_string()),
        ("Checked by", cell(&check.checked_by)),
        ("What was checked", cell(&check.what_checked)),
        ("Outcome", outcome.to_owned()),
        ("Notes", cell(&check.notes)),
        ("Actions taken", cell(&check.actions_taken)),
        ("Next check due", check.next_due.to_string()),
        ("Recorded", time(check.recorded_at)),
        ("Built-in check", cell(&built_in)),
    ];
    let _ = w.write_record(["Field", "Value"]);
    for (field, value) in rows {
        let _ = w.write_record([field, &value]);
    }
    if let Some(run) = run {
        let _ = w.write_record([""; 0]);
        let _ = w.write_record(["Device", "Test name", "Category", "Result", "List", "Answered"]);
        for checked in &run.devices {
            for name in &run.names {
                let category = name.category.as_deref().unwrap_or(crate::filter_checks::OWN_NAMES);
                let (result, list, answered) = match &checked.answer {
                    None => ("no answer".to_owned(), String::new(), String::new()),
                    Some(answer) => {
                        let verdict = answer.results.iter().find(|v| v.name == name.name);
                        let (result, list) = match (&answer.error, verdict) {
                            (Some(error), _) => {
                                (cell(&format!("filter did not answer: {error}")), String::new())
                            }
                            (None, Some(v)) if v.blocked_by.is_some() => {
                                ("blocked".to_owned(), opt(&v.blocked_by))
                            }
                            (None, _) => ("NOT BLOCKED".to_owned(), String::new()),
                        };
                        (result, list, time(answer.answered_at))
                    }
                };
                let _ = w.write_record([
                    checked.device.to_string(),
                    cell(&name.name),
                    cell(category),
                    result,
                    list,
                    answered,
                ]);
            }
        }
    }
    finish(w)
}

/// The incident log: one row per incident.
pub fn log_csv(incidents: &[IncidentRecord]) -> Vec<u8> {
    let mut csv = log_csv_head();
    csv.extend(log_csv_rows(incidents));
    csv
}

/// The incident log's byte-order mark and header line: the first part of a streamed export.
pub fn log_csv_head() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(marked());
    let _ = w.write_record([
        "Incident",
        "Date and time",
        "Device",
        "Pupil",
        "App",
        "Address (URL)",
        "Page title",
        "Status",
        "Category",
        "Outcome",
        "Last updated",
        "Where",
        "Reported by",
    ]);
    finish(w)
}

/// Incident log lines for `incidents`, without the head: one page of a streamed export.
pub fn log_csv_rows(incidents: &[IncidentRecord]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for i in incidents {
        let r = &i.report;
        let _ = w.write_record([
            i.id.to_string(),
            pressed_at(r),
            r.device_label(),
            opt(&r.pupil),
            opt(&r.app),
            opt(&r.url),
            opt(&r.page_title),
            i.status.label(),
            i.details.category.as_deref().and_then(category_label).unwrap_or("").to_owned(),
            opt(&i.details.outcome),
            time(i.updated_at),
            opt(&i.details.location),
            cell(&r.how_reported()),
        ]);
    }
    finish(w)
}

/// A pupil's chronology, newest first: `pupil` names them in the first row.
pub fn chronology_csv(pupil: &str, lines: &[crate::chronology::Line]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(marked());
    let _ = w.write_record(["Pupil", &cell(pupil)]);
    let _ = w.write_record(["Date and time", "What", "Device", "Incident", "Details"]);
    for line in lines {
        let _ = w.write_record([
            time(line.at),
            line.kind.label().to_owned(),
            line.device.map(|d| d.to_string()).unwrap_or_default(),
            line.incident.map(|i| i.to_string()).unwrap_or_default(),
            cell(&line.what),
        ]);
    }
    finish(w)
}

/// The filtering log: one row per refused attempt, newest first.
pub fn filtering_log_csv(blocks: &[crate::store::LoggedBlock]) -> Vec<u8> {
    let mut csv = filtering_log_csv_head();
    csv.extend(filtering_log_csv_rows(blocks));
    csv
}

/// The filtering log's byte-order mark and header line: the first part of a streamed export.
pub fn filtering_log_csv_head() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(marked());
    let _ = w.write_record([
        "Date and time",
        "Device",
        "Pupil",
        "Pupil name",
        "List",
        "Layer",
        "Address",
        "Rule",
    ]);
    finish(w)
}

/// Filtering log lines for `blocks`, without the head: one page of a streamed export.
pub fn filtering_log_csv_rows(blocks: &[crate::store::LoggedBlock]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for b in blocks {
        let _ = w.write_record([
            time(b.at),
            b.device.to_string(),
            opt(&b.pupil),
            opt(&b.pupil_name),
            cell(&b.list),
            b.layer.clone(),
            cell(&b.target),
            cell(&b.rule),
        ]);
    }
    finish(w)
}

/// The audit log, newest first.
pub fn audit_csv(log: &[AuditEntry]) -> Vec<u8> {
    let mut csv = audit_csv_head();
    csv.extend(audit_csv_rows(log));
    csv
}

/// The audit CSV's byte-order mark and header line: the first part of a streamed export.
pub fn audit_csv_head() -> Vec<u8> {
    let mut w = csv::Writer::from_writer(marked());
    let _ = w.write_record(["When", "Who", "What", "Record", "Detail"]);
    finish(w)
}

/// Audit CSV lines for `log`, without the head: one page of a streamed export.
pub fn audit_csv_rows(log: &[AuditEntry]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for e in log {
        let _ = w.write_record([
            time(e.at),
            cell(&e.actor),
            cell(&e.action),
            opt(&e.record),
            opt(&e.detail),
        ]);
    }
    finish(w)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Incident 7, pressed on device 12, with the clock as `synchronised` says.
    pub(crate) fn record(synchronised: Option<bool>) -> IncidentRecord {
        IncidentRecord {
            id: 7,
            status: crate::incident::Status::New,
            details: Default::default(),
            created_at: "2026-11-17T10:14:04Z".parse().unwrap(),
            updated_at: "2026-11-17T10:14:04Z".parse().unwrap(),
            report: crate::store::ReportRecord {
                id: "0192-a".into(),
                device: Some(12),
                pupil: None,
                pupil_name: None,
                session: None,
                pressed_at: "2026-11-17T10:14:03Z".parse().unwrap(),
                received_at: "2026-11-17T10:14:04Z".parse().unwrap(),
                app: None,
                url: None,
                page_title: None,
                blank_latency_us: None,
                from_block_page: false,
                recent_names: vec![],
                clock_synchronised: synchronised,
                recorded_by: None,
            },
        }
    }

    #[test]
    fn an_unsynchronised_press_time_says_so_in_every_export() {
        let flag = crate::store::CLOCK_NOT_SYNCHRONISED;
        for (synchronised, flagged) in [(Some(false), true), (Some(true), false), (None, false)] {
            let i = record(synchronised);
            let one = String::from_utf8(incident_csv(&i, &[])).unwrap();
            let log = String::from_utf8(log_csv(std::slice::from_ref(&i))).unwrap();
            let pdf = format!("{:?}", crate::pdf::incident_lines(&i, &[]));
            assert_eq!(one.contains(flag), flagged, "{synchronised:?}: {one}");
            assert_eq!(log.contains(flag), flagged, "{synchronised:?}: {log}");
            assert_eq!(pdf.contains(flag), flagged, "{synchronised:?}: {pdf}");
            assert!(one.contains("2026-11-17 10:14:03 GMT"), "the time itself stays: {one}");
        }
    }

    #[test]
    fn a_filter_check_exports_each_devices_answer_name_by_name() {
        use crate::store::{CheckAnswer, CheckedDevice, FilterCheckRecord, FilterCheckRun};
        use slate_protocol::device::CheckName;
        use slate_protocol::{DeviceNumber, NameVerdict};
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let check = FilterCheckRecord {
            id: 3,
            checked_on: "2026-12-07".parse().unwrap(),
            checked_by: "a.dsl".into(),
            what_checked: "=devices 12-14".into(),
            passed: false,
            notes: "gambling let through".into(),
            actions_taken: "asked the provider".into(),
            next_due: "2027-01-01".parse().unwrap(),
            run: Some(1),
            recorded_at: t("2026-12-07T11:00:00Z"),
        };
        let name =
            |n: &str, c: Option<&str>| CheckName { name: n.into(), category: c.map(Into::into) };
        let answer = |results: Vec<NameVerdict>, error: Option<&str>| CheckAnswer {
            answered_at: t("2026-12-07T10:01:00Z"),
            results,
            error: error.map(Into::into),
        };
        let verdict = |n: &str, b: Option<&str>| NameVerdict {
            name: n.into(),
            blocked_by: b.map(Into::into),
        };
        let device = |n: u16, command: i64, answer: Option<CheckAnswer>| CheckedDevice {
            command,
            device: DeviceNumber::new(n.into()).unwrap(),
            answer,
        };
        let run = FilterCheckRun {
            id: 1,
            started_at: t("2026-12-07T10:00:00Z"),
            started_by: "a.dsl".into(),
            names: vec![
                name("adult.example", Some("adult")),
                name("bet.example", Some("gambling")),
                name("own.test", None),
            ],
            devices: vec![
                device(
                    12,
                    5,
                    Some(answer(
                        vec![verdict("adult.example", Some("adult")), verdict("bet.example", None)],
                        None,
                    )),
                ),
                device(13, 6, Some(answer(vec![], Some("slate-dns away")))),
                device(14, 7, None),
            ],
        };
        let text = String::from_utf8(filter_check_csv(&check, Some(&run))).unwrap();
        let lines: Vec<&str> = text.trim_start_matches(BYTE_ORDER_MARK).lines().collect();
        for want in [
            "What was checked,'=devices 12-14",
            "Outcome,problems found",
            "Built-in check,\"check 1, started 2026-12-07 10:00:00 GMT by a.dsl\"",
            "Device,Test name,Category,Result,List,Answered",
            "12,adult.example,adult,blocked,adult,2026-12-07 10:01:00 GMT",
            "12,bet.example,gambling,NOT BLOCKED,,2026-12-07 10:01:00 GMT",
            "12,own.test,your own names,NOT BLOCKED,,2026-12-07 10:01:00 GMT",
            "13,bet.example,gambling,filter did not answer: slate-dns away,,2026-12-07 10:01:00 GMT",
            "14,adult.example,adult,no answer,,",
        ] {
            assert!(lines.contains(&want), "{want}\n{text}");
        }
        assert_eq!(
            lines.len(),
            10 + 1 + 1 + 9,
            "the record, a blank row, a head, a row per device and name"
        );
        let gone = String::from_utf8(filter_check_csv(&check, None)).unwrap();
        assert!(gone.contains("Built-in check,check 1 (no longer kept)"), "{gone}");
        assert!(!gone.contains("Test name"), "{gone}");
    }

    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("https://example.org"), "https://example.org");
    }

    #[test]
    fn the_audit_csv_quotes_and_orders() {
        let entry = AuditEntry {
            at: "2026-11-17T10:00:00Z".parse().unwrap(),
            actor: "j.smith".into(),
            action: "viewed incident".into(),
            record: Some("incident 1".into()),
            detail: Some("a, b".into()),
        };
        let text = String::from_utf8(audit_csv(&[entry])).unwrap();
        assert_eq!(
            text,
            "\u{feff}When,Who,What,Record,Detail\n2026-11-17 10:00:00 GMT,j.smith,viewed incident,incident 1,\"a, b\"\n"
        );
    }

    #[test]
    fn every_export_starts_with_a_byte_order_mark_once() {
        let entry = AuditEntry {
            at: "2026-06-23T09:14:03Z".parse().unwrap(),
            actor: "zoë.brontë".into(),
            action: "viewed incident".into(),
            record: None,
            detail: None,
        };
        for export in [audit_csv(&[entry]), audit_csv(&[]), log_csv(&[])] {
            let text = String::from_utf8(export).unwrap();
            assert!(text.starts_with('\u{feff}'), "{text:?}");
            assert_eq!(text.matches('\u{feff}').count(), 1, "{text:?}");
        }
        let text = String::from_utf8(audit_csv(&[AuditEntry {
            at: "2026-06-23T09:14:03Z".parse().unwrap(),
            actor: "zoë.brontë".into(),
            action: "viewed incident".into(),
            record: None,
            detail: None,
        }]))
        .unwrap();
        assert!(text.contains("2026-06-23 10:14:03 BST,zoë.brontë"), "{text}");
    }
}
