//! CSV exports: one incident's record with its history, the incident log (seed 002 appendix K)
//! and the audit log. Pure: records in, bytes out. Cells that a spreadsheet would run as a
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
