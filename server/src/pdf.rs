//! A printable PDF of one incident record: A4, text only, set in Andika, which krilla embeds
//! (subset to the letters used), so every name a UK class list may hold prints as written
//! (Łucja, Ștefan, Şükrü, Llŷr). No images, ever. Pure: records in, bytes out.

use crate::incident::category_label;
use crate::store::{IncidentEntry, IncidentRecord};
use chrono::{DateTime, Utc};
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use skrifa::instance::{LocationRef, Size};
use skrifa::MetadataProvider;
use std::sync::LazyLock;

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
const TEXT_WIDTH: f32 = PAGE_W - 2.0 * MARGIN;

/// The school's reading font (SIL Open Font License, assets/fonts/OFL.txt), compiled in so the
/// server needs no font files at run time.
static REGULAR: &[u8] = include_bytes!("../../assets/fonts/Andika-Regular.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/Andika-Bold.ttf");

/// A font as krilla embeds it, and its advance widths for wrapping.
struct Face {
    data: &'static [u8],
    font: Font,
}

impl Face {
    fn load(data: &'static [u8]) -> Face {
        let font = Font::new(data.to_vec().into(), 0).expect("the compiled-in font parses");
        Face { data, font }
    }

    /// The width of `text` at `size` points: the sum of its glyphs' advances (no kerning, so
    /// never narrower than drawn by more than a hair; lines keep a margin anyway).
    fn width(&self, text: &str, size: f32) -> f32 {
        let font = skrifa::FontRef::new(self.data).expect("the compiled-in font parses");
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                let glyph = charmap.map(c).unwrap_or_default();
                metrics.advance_width(glyph).unwrap_or(0.0)
            })
            .sum()
    }
}

static FACES: LazyLock<(Face, Face)> = LazyLock::new(|| (Face::load(REGULAR), Face::load(BOLD)));

/// Splits text into lines no wider than `max` as `width` measures them, at spaces where it can
/// and inside a word only when the word alone is too wide.
pub fn wrap(text: &str, max: f32, width: impl Fn(&str) -> f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let joined = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if width(&joined) <= max {
                line = joined;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word starts a line; a word wider than a line is cut where it must be.
            for c in word.chars() {
                line.push(c);
                if width(&line) > max && line.chars().count() > 1 {
                    let last = line.pop().expect("two letters at least");
                    lines.push(std::mem::replace(&mut line, last.to_string()));
                }
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// One wrapped line on a page: its face, size in points, and baseline from the page's top.
struct Placed<'a> {
    face: &'a Face,
    size: f32,
    baseline: f32,
    text: String,
}

/// Wraps `lines` to the text width and puts them on A4 pages, top to bottom.
fn layout(lines: &[Line]) -> Vec<Vec<Placed<'static>>> {
    let (regular, bold) = &*FACES;
    let mut pages = vec![Vec::new()];
    // The top of the next line on the current page.
    let mut y = MARGIN;
    for line in lines {
        let (face, size, step, text) = match line {
            Line::Title(t) => (bold, 16.0, 24.0, t),
            Line::Heading(t) => (bold, 12.0, 20.0, t),
            Line::Text(t) => (regular, 10.0, 14.0, t),
            Line::Gap => {
                y += 8.0;
                continue;
            }
        };
        for text in wrap(text, TEXT_WIDTH, |t| face.width(t, size)) {
            if y + step > PAGE_H - MARGIN {
                pages.push(Vec::new());
                y = MARGIN;
            }
            y += step;
            pages.last_mut().expect("a page").push(Placed { face, size, baseline: y, text });
        }
    }
    pages
}

/// Lays `lines` out on A4 pages and writes the PDF, titled with its first title line.
pub fn document(lines: &[Line]) -> Vec<u8> {
    let mut pdf = Document::new();
    let mut metadata = Metadata::new().language("en-GB".into()).creator("Slate".into());
    if let Some(title) = lines.iter().find_map(|l| match l {
        Line::Title(t) => Some(t.clone()),
        _ => None,
    }) {
        metadata = metadata.title(title);
    }
    pdf.set_metadata(metadata);
    for placed in layout(lines) {
        let mut page =
            pdf.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a size"));
        let mut surface = page.surface();
        for line in placed {
            surface.draw_text(
                Point::from_xy(MARGIN, line.baseline),
                line.face.font.clone(),
                line.size,
                &line.text,
                false,
                TextDirection::Auto,
            );
        }
        surface.finish();
        page.finish();
    }
    pdf.finish().expect("krilla writes a document of text in an embedded font")
}

/// UK time, zone named, as every time a person reads.
fn time(t: DateTime<Utc>) -> String {
    crate::uk_time::format_uk_long(t)
}

/// History entries a PDF shows at most. krilla writes a document whole, in memory, so the
/// history is what could make one large (a device's unlocks add notes); 1,000 entries are some
/// 20 pages. The CSV export has every entry.
pub const PDF_HISTORY_ENTRIES: usize = 1_000;

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
        Line::Text(format!("Device: {}", r.device_label())),
        Line::Text(match &r.recorded_by {
            Some(_) => format!("Reported by: {}, about {pupil}", r.how_reported()),
            None => format!("Reported by: pupil, {}: {pupil}", r.how_reported()),
        }),
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
    for e in entries.iter().take(PDF_HISTORY_ENTRIES) {
        let what = match (e.kind.as_str(), e.action.as_deref()) {
            ("action", Some(a)) => format!("action: {}", a.replace('_', " ")),
            ("recorded", _) => "recorded, action taken so far".to_owned(),
            (kind, _) => kind.to_owned(),
        };
        let note = e.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        lines.push(Line::Text(format!("{} - {} - {what}{note}", time(e.at), e.staff)));
    }
    if let Some(more) = entries.len().checked_sub(PDF_HISTORY_ENTRIES).filter(|n| *n > 0) {
        lines.push(Line::Text(format!(
            "... and {more} later entries, not printed here: the CSV export has the whole history."
        )));
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

    /// One unit per letter: wrapping by count, to read the rule in the table.
    fn letters(t: &str) -> f32 {
        t.chars().count() as f32
    }

    #[test]
    fn text_wraps_at_spaces_and_cuts_only_words_wider_than_a_line() {
        let cases: &[(&str, f32, &[&str])] = &[
            ("aaa bbb ccc", 7.0, &["aaa bbb", "ccc"]),
            ("abcdefghij", 4.0, &["abcd", "efgh", "ij"]),
            ("ab abcdefghij", 4.0, &["ab", "abcd", "efgh", "ij"]),
            ("", 4.0, &[""]),
            ("one\ntwo", 10.0, &["one", "two"]),
            ("Łucja Ștefan", 6.0, &["Łucja", "Ștefan"]),
        ];
        for (text, max, expected) in cases {
            assert_eq!(wrap(text, *max, letters), *expected, "{text:?} at {max}");
        }
    }

    #[test]
    fn lines_are_measured_in_the_embedded_font() {
        let (regular, bold) = &*FACES;
        assert!(regular.width("W", 10.0) > regular.width("i", 10.0), "not a fixed pitch");
        assert!(regular.width("Łucja", 20.0) > 1.9 * regular.width("Łucja", 10.0));
        assert!(bold.width("Ştefan", 10.0) > 0.0);
        // A long line of text fills the width without overrunning it.
        let long = "word ".repeat(60);
        let lines = wrap(&long, TEXT_WIDTH, |t| regular.width(t, 10.0));
        assert!(lines.len() > 2);
        for line in &lines {
            assert!(regular.width(line, 10.0) <= TEXT_WIDTH, "{line}");
        }
        assert!(regular.width(&format!("{} word", lines[0]), 10.0) > TEXT_WIDTH);
    }

    #[test]
    fn every_letter_of_a_uk_class_list_has_a_glyph() {
        let (regular, bold) = &*FACES;
        for face in [regular, bold] {
            let font = skrifa::FontRef::new(face.data).unwrap();
            for c in
                "ŁłŚśŻżĆćŃńĘęĄąȘșȚțŞşĞğİıÇçÖöÜüŴŵŶŷÂâÊêÎîÔôÛûËëÏïÿÁáÉéÍíÓóÚúÀàÈèÒòŒœßÑñ€£".chars()
            {
                assert!(font.charmap().map(c).is_some(), "no glyph for {c}");
            }
        }
    }

    #[test]
    fn a_pdf_prints_at_most_its_share_of_a_long_history_and_says_so() {
        let incident = crate::export::tests::record(Some(true));
        let entry = |n: usize| IncidentEntry {
            at: "2026-11-17T10:20:00Z".parse().unwrap(),
            staff: "device 12".into(),
            kind: "note".into(),
            action: None,
            note: Some(format!("unlocked {n}")),
        };
        for (entries, printed, more) in [
            (0, 0, None),
            (PDF_HISTORY_ENTRIES, PDF_HISTORY_ENTRIES, None),
            (PDF_HISTORY_ENTRIES + 7, PDF_HISTORY_ENTRIES, Some(7)),
        ] {
            let history: Vec<IncidentEntry> = (0..entries).map(entry).collect();
            let lines = incident_lines(&incident, &history);
            let text = |l: &Line| match l {
                Line::Text(t) => t.clone(),
                _ => String::new(),
            };
            let notes = lines.iter().filter(|l| text(l).contains(": unlocked ")).count();
            assert_eq!(notes, printed, "{entries} entries");
            let said = lines.iter().find(|l| text(l).contains("later entries, not printed"));
            match more {
                Some(n) => {
                    assert!(text(said.unwrap()).contains(&format!("and {n} later")), "{entries}")
                }
                None => assert!(said.is_none(), "{entries}"),
            }
        }
    }

    #[test]
    fn long_records_run_onto_more_pages() {
        let many: Vec<Line> = (0..120).map(|i| Line::Text(format!("line {i}"))).collect();
        let pages = layout(&many);
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [52, 52, 16]);
        for page in &pages {
            assert!(page.iter().all(|l| l.baseline > MARGIN && l.baseline <= PAGE_H - MARGIN));
        }
        let pdf = document(&many);
        assert!(pdf.starts_with(b"%PDF-") && pdf.trim_ascii_end().ends_with(b"%%EOF"));
    }
}
