//! A printable PDF of one incident record, written by hand: PDF 1.4, A4, the standard Helvetica
//! fonts (nothing embedded, so no font files to ship), text only. No images, ever. Pure:
//! records in, bytes out.

use crate::incident::category_label;
use crate::store::{IncidentEntry, IncidentRecord};
use chrono::{DateTime, Utc};

/// One line of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Title(String),
    Heading(String),
    Text(String),
    Gap,
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
/// Characters per wrapped line of 10-point Helvetica across the text width (a safe average).
const WRAP: usize = 92;

/// Text as a PDF string literal in WinAnsi: escapes, and `?` for what the encoding lacks.
fn literal(text: &str) -> String {
    let mut out = String::from("(");
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{ff}' => out.push_str(&format!("\\{:03o}", c as u32)),
            '\u{2018}' | '\u{2019}' => out.push('\''),
            '\u{201c}' | '\u{201d}' => out.push('"'),
            '\u{2013}' | '\u{2014}' => out.push('-'),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// Splits text into lines of at most `width` characters, at spaces where it can.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let mut word = word.to_owned();
            while word.chars().count() > width {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// Lays `lines` out on A4 pages and writes the PDF.
pub fn document(lines: &[Line]) -> Vec<u8> {
    // Each page's content stream.
    let mut pages: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut y = PAGE_H - MARGIN;
    for line in lines {
        let (font, size, step, texts) = match line {
            Line::Title(t) => ("F2", 16.0, 24.0, wrap(t, 60)),
            Line::Heading(t) => ("F2", 12.0, 20.0, wrap(t, 76)),
            Line::Text(t) => ("F1", 10.0, 14.0, wrap(t, WRAP)),
            Line::Gap => ("F1", 10.0, 8.0, vec![]),
        };
        if texts.is_empty() {
            y -= step;
            continue;
        }
        for text in texts {
            if y < MARGIN {
                pages.push(std::mem::take(&mut current));
                y = PAGE_H - MARGIN;
            }
            current.push_str(&format!(
                "BT /{font} {size} Tf {MARGIN} {y:.1} Td {} Tj ET\n",
                literal(&text)
            ));
            y -= step;
        }
    }
    pages.push(current);

    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        String::new(), // the page tree, filled in below
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .into(),
    ];
    let mut kids = Vec::new();
    for content in &pages {
        let content_id = objects.len() + 1;
        objects.push(format!("<< /Length {} >>\nstream\n{content}endstream", content.len()));
        let page_id = objects.len() + 1;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
        ));
        kids.push(format!("{page_id} 0 R"));
    }
    objects[1] = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), kids.len());

    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// UK time, zone named, as every time a person reads.
fn time(t: DateTime<Utc>) -> String {
    crate::uk_time::format_uk_long(t)
}

/// The incident record (seed 002 appendix J) as a document.
pub fn incident_lines(incident: &IncidentRecord, entries: &[IncidentEntry]) -> Vec<Line> {
    let r = &incident.report;
    let d = &incident.details;
    let or_none = |t: &Option<String>| t.clone().unwrap_or_else(|| "(none)".into());
    let pupil = r.pupil_label();
    let mut lines = vec![
        Line::Title(format!("Online safety incident record: incident {}", incident.id)),
        Line::Text(format!("Status: {}", incident.status.label())),
        Line::Gap,
        Line::Heading("The report".into()),
        Line::Text(match r.clock_warning() {
            Some(warning) => format!("Date and time: {} ({warning})", time(r.pressed_at)),
            None => format!("Date and time: {}", time(r.pressed_at)),
        }),
        Line::Text(format!("Device: {}", r.device)),
        Line::Text(format!("Reported by: pupil, {}: {pupil}", r.how_reported())),
        Line::Text(format!("App: {}", or_none(&r.app))),
        Line::Text(format!("Address (URL): {}", or_none(&r.url))),
        Line::Text(format!("Page title: {}", or_none(&r.page_title))),
        Line::Text(format!(
            "Names looked up just before: {}",
            if r.recent_names.is_empty() {
                "(none recorded)".into()
            } else {
                r.recent_names.join(", ")
            }
        )),
        Line::Gap,
        Line::Heading("The record".into()),
        Line::Text(format!(
            "Kind of concern: {}",
            d.category.as_deref().and_then(category_label).unwrap_or("(not yet said)")
        )),
        Line::Text(format!("Where: {}", or_none(&d.location))),
        Line::Text(format!("What was seen: {}", or_none(&d.description))),
        Line::Text(format!("Who was involved: {}", or_none(&d.involved))),
        Line::Text(format!("Reported to: {}", or_none(&d.reported_to))),
        Line::Text(format!("Outcome: {}", or_none(&d.outcome))),
        Line::Gap,
        Line::Heading("History".into()),
    ];
    if entries.is_empty() {
        lines.push(Line::Text("Nothing recorded yet.".into()));
    }
    for e in entries {
        let what = match (e.kind.as_str(), e.action.as_deref()) {
            ("action", Some(a)) => format!("action: {}", a.replace('_', " ")),
            (kind, _) => kind.to_owned(),
        };
        let note = e.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        lines.push(Line::Text(format!("{} - {} - {what}{note}", time(e.at), e.staff)));
    }
    lines.push(Line::Gap);
    lines.push(Line::Text(
        "Slate records no pictures of the screen. Signed: ______________________  Date: __________"
            .into(),
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_pdf() {
        assert_eq!(literal("a(b)c\\d"), "(a\\(b\\)c\\\\d)");
        assert_eq!(literal("café"), "(caf\\351)");
        assert_eq!(literal("😀"), "(?)");
    }

    #[test]
    fn text_wraps_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("one\ntwo", 10), ["one", "two"]);
    }

    #[test]
    fn the_document_is_well_formed_with_a_true_xref() {
        let many: Vec<Line> = (0..120).map(|i| Line::Text(format!("line {i} (x)"))).collect();
        let pdf = document(&many);
        let text = String::from_utf8_lossy(&pdf).into_owned();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        assert!(text.contains("/Count 3"), "120 lines take three pages of 52");
        assert!(text.contains("(line 0 \\(x\\)) Tj"));
        let startxref: usize =
            text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n"));
        // Every object's offset in the table points at that object.
        let table = &text[text.find("xref\n").unwrap()..];
        for (i, row) in table.lines().skip(3).take_while(|l| l.ends_with(" n ")).enumerate() {
            let offset: usize = row[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
