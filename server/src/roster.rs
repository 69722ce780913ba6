//! The shape of a roster entry (pseudonymous id, display name, class) and its validation, and
//! the school's CSV roster (`class,first_name,last_name,key_stage`). Pure: storing entries is
//! `store`'s job; only a pupil's first name and family initial are kept from the CSV.

use slate_protocol::kiosk::KeyStage;
use slate_protocol::PupilId;

/// Longest display or class name, in characters: room for "Amira K." and "Year 2 Kingfishers",
/// not for a full legal name plus notes.
pub const MAX_NAME_CHARS: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RosterError {
    #[error("invalid pupil id: {0}")]
    Id(#[from] slate_protocol::ProtocolError),
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {chars} characters, over the limit of {MAX_NAME_CHARS}")]
    TooLong { field: &'static str, chars: usize },
    #[error("{field} contains control characters")]
    ControlCharacters { field: &'static str },
}

/// One pupil as the school's IT gives them: the id devices use, and what staff see beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilEntry {
    pub id: PupilId,
    /// What staff see: the school's convention is first name and initial (seed 004).
    pub display_name: String,
    pub class_name: String,
}

impl PupilEntry {
    /// Trims and checks each field. Names are stored as IT gives them: it is their roster.
    pub fn new(id: &str, display_name: &str, class_name: &str) -> Result<Self, RosterError> {
        Ok(Self {
            id: PupilId::new(id)?,
            display_name: checked_name("name", display_name)?,
            class_name: checked_name("class", class_name)?,
        })
    }
}

fn checked_name(field: &'static str, value: &str) -> Result<String, RosterError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars == 0 {
        return Err(RosterError::Empty { field });
    }
    if chars > MAX_NAME_CHARS {
        return Err(RosterError::TooLong { field, chars });
    }
    if value.chars().any(char::is_control) {
        return Err(RosterError::ControlCharacters { field });
    }
    Ok(value.to_owned())
}

/// Most rows one import takes.
pub const MAX_IMPORT_ROWS: usize = 5000;

/// One checked CSV row: what devices show (first name and initial), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// The CSV line it came from (1 is the header).
    pub line: usize,
    pub class: String,
    pub first_name: String,
    /// The family name's first letter, upper case.
    pub initial: String,
    pub key_stage: KeyStage,
}

/// Why a roster file was refused: the line and column, so IT can fix the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {problem}")]
pub struct ImportError {
    pub line: usize,
    pub column: &'static str,
    pub problem: String,
}

const COLUMNS: [&str; 4] = ["class", "first_name", "last_name", "key_stage"];

/// Parses and checks a whole roster CSV. Any bad row refuses the file, so nothing is
/// half-imported.
pub fn parse_roster_csv(text: &str) -> Result<Vec<RosterRow>, ImportError> {
    // A spreadsheet's "CSV UTF-8" starts with a byte-order mark that would spoil the header.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line, column, problem: String| ImportError { line, column, problem };
    // The line is counted from the record's first byte, the same for any line ending: the csv
    // crate's own count is off by one for text pasted in a browser (CRLF).
    let line_of = |position: Option<&csv::Position>, otherwise: usize| {
        position.map_or(otherwise, |p| line_at(text, p.byte() as usize))
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| err(1, "header", format!("cannot read the header: {e}")))?
        .clone();
    let header: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    if header != COLUMNS {
        return Err(err(1, "header", format!("must be exactly {}", COLUMNS.join(","))));
    }
    let mut rows: Vec<RosterRow> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            err(line_of(e.position(), rows.len() + 2), "row", "is not valid CSV".into())
        })?;
        let line = line_of(record.position(), rows.len() + 2);
        if record.len() != COLUMNS.len() {
            return Err(err(line, "row", format!("has {} columns, not 4", record.len())));
        }
        if rows.len() == MAX_IMPORT_ROWS {
            return Err(err(line, "row", format!("over {MAX_IMPORT_ROWS} rows in one file")));
        }
        let class =
            checked_name("class", &record[0]).map_err(|e| err(line, "class", e.to_string()))?;
        if class.chars().count() > 20 {
            return Err(err(line, "class", "is over 20 characters".into()));
        }
        let first_name = record[1].to_owned();
        let first_ok = !first_name.is_empty()
            && first_name.chars().count() <= 16
            && first_name.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'');
        if !first_ok {
            return Err(err(
                line,
                "first_name",
                "must be one first name (letters, - or '), at most 16 characters".into(),
            ));
        }
        let initial = record[2]
            .chars()
            .find(|c| c.is_alphabetic())
            .map(|c| c.to_uppercase().collect::<String>())
            .filter(|i| i.chars().count() == 1)
            .ok_or_else(|| {
                err(line, "last_name", "has no letter to take the initial from".into())
            })?;
        let key_stage = match record[3].to_ascii_lowercase().as_str() {
            "ks1" | "eyfs" => KeyStage::Ks1,
            "ks2" => KeyStage::Ks2,
            _ => return Err(err(line, "key_stage", "must be ks1, eyfs or ks2".into())),
        };
        if let Some(earlier) = rows
            .iter()
            .find(|r| r.class == class && r.first_name == first_name && r.initial == initial)
        {
            return Err(err(
                line,
                "first_name",
                format!(
                    "{first_name} {initial}. is already on line {} in {class}: devices could not tell them apart",
                    earlier.line
                ),
            ));
        }
        if let Some(other) = rows.iter().find(|r| r.class == class && r.key_stage != key_stage) {
            return Err(err(
                line,
                "key_stage",
                format!("differs from line {} for the same class", other.line),
            ));
        }
        rows.push(RosterRow { line, class, first_name, initial, key_stage });
    }
    Ok(rows)
}

/// The line (from 1) that byte `offset` of `text` is on, whatever ends its lines: `\n`,
/// `\r\n` (what a browser's text box sends) or a lone `\r` (old Mac spreadsheets).
pub fn line_at(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    let mut line = 1;
    let mut bytes = before.iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\n' => line += 1,
            // `\r\n` counts once, at its `\n`.
            b'\r' if bytes.peek() != Some(&&b'\n') => line += 1,
            _ => {}
        }
    }
    line
}

/// What an import did, in words: "2 pupils added, 0 already there, 1 class added".
pub fn import_summary(done: &crate::store::Imported) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} added, {} already there, {} added",
        plural(done.pupils_added, "pupil", "pupils"),
        done.already_there,
        plural(done.classes_added, "class", "classes")
    )
}

/// A fresh pseudonymous id: `p-` and 12 random hex digits.
pub fn new_pupil_id() -> PupilId {
    let bytes: [u8; 6] = rand::random();
    PupilId::new(format!("p-{}", hex::encode(bytes))).expect("a well-formed id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_csv_keeps_first_names_and_initials_only() {
        let rows = parse_roster_csv(
            "class,first_name,last_name,key_stage\nOak, Amira ,khan,KS1\n\"Year 5\",Ben,O'Neill,ks2\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            RosterRow {
                line: 2,
                class: "Oak".into(),
                first_name: "Amira".into(),
                initial: "K".into(),
                key_stage: KeyStage::Ks1,
            }
        );
        assert_eq!((rows[1].class.as_str(), rows[1].initial.as_str()), ("Year 5", "O"));
        assert!(new_pupil_id().as_str().starts_with("p-"));
    }

    #[test]
    fn the_summary_counts_in_words() {
        use crate::store::Imported;
        let cases = [
            ((2, 0, 1), "2 pupils added, 0 already there, 1 class added"),
            ((1, 3, 0), "1 pupil added, 3 already there, 0 classes added"),
            ((0, 0, 2), "0 pupils added, 0 already there, 2 classes added"),
        ];
        for ((pupils_added, already_there, classes_added), words) in cases {
            let done = Imported { pupils_added, already_there, classes_added };
            assert_eq!(import_summary(&done), words);
        }
    }

    #[test]
    fn lines_are_counted_the_same_for_every_line_ending() {
        for ending in ["\n", "\r\n", "\r"] {
            let text = [
                "class,first_name,last_name,key_stage",
                "Oak,Amira,Khan,ks1",
                "Oak,Ben,Kerr,ks1",
                "Oak,Cara,-,ks1",
                "",
            ]
            .join(ending);
            assert_eq!(line_at(&text, 0), 1, "{ending:?}");
            assert_eq!(line_at(&text, text.find("Oak,Amira").unwrap()), 2, "{ending:?}");
            assert_eq!(line_at(&text, text.find("Oak,Cara").unwrap()), 4, "{ending:?}");
            assert_eq!(line_at(&text, text.len() + 10), 5, "past the end: {ending:?}");
            let refused = parse_roster_csv(&text).unwrap_err().to_string();
            assert!(refused.starts_with("line 4, column last_name"), "{ending:?}: {refused}");
            let bad_stage = text.replace("Oak,Ben,Kerr,ks1", "Oak,Ben,Kerr,ks9");
            let refused = parse_roster_csv(&bad_stage).unwrap_err().to_string();
            assert!(refused.starts_with("line 3, column key_stage"), "{ending:?}: {refused}");
        }
        // Mixed endings, a byte-order mark and a quoted field over two lines.
        let text = "\u{feff}class,first_name,last_name,key_stage\r\nOak,Amira,\"Khan\r\nSmith\",ks1\nOak,Ben,Kerr,ks3\r\n";
        let refused = parse_roster_csv(text).unwrap_err().to_string();
        assert!(refused.starts_with("line 4, column key_stage"), "{refused}");
    }

    #[test]
    fn a_bad_row_names_its_line_and_column() {
        let head = "class,first_name,last_name,key_stage\n";
        let cases = [
            ("class,first,last,ks\n", "line 1, column header"),
            (&format!("{head}Oak,Amira Jane,Khan,ks1\n") as &str, "line 2, column first_name"),
            (&format!("{head}Oak,Amira,Khan,ks1\nOak,Ben,-,ks1\n"), "line 3, column last_name"),
            (&format!("{head}Oak,Amira,Khan,ks3\n"), "line 2, column key_stage"),
            (&format!("{head},Amira,Khan,ks1\n"), "line 2, column class"),
            (&format!("{head}Oak,Amira,Khan\n"), "line 2, column row"),
            (
                &format!("{head}Oak,Amira,Khan,ks1\nOak,Amira,Kerr,ks1\n"),
                "line 3, column first_name",
            ),
            (&format!("{head}Oak,Amira,Khan,ks1\nOak,Ben,Kerr,ks2\n"), "line 3, column key_stage"),
        ];
        for (text, expected) in cases {
            let err = parse_roster_csv(text).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn entries_are_trimmed_and_checked() {
        let entry = PupilEntry::new("p-7f3a9c", "  Amira K. ", "Year 2").unwrap();
        assert_eq!(entry.display_name, "Amira K.");

        let cases = [
            (("Amira K", "Amira K.", "Year 2"), "pupil id"),
            (("p-1", "   ", "Year 2"), "name is empty"),
            (("p-1", &"x".repeat(41) as &str, "Year 2"), "name is 41 characters"),
            (("p-1", "Amira", "Year\n2"), "class contains control"),
        ];
        for ((id, name, class), expected) in cases {
            let err = PupilEntry::new(id, name, class).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
        assert!(
            PupilEntry::new("p-1", &"é".repeat(40), "Year 2").is_ok(),
            "counts characters, not bytes"
        );
    }
}
