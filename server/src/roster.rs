//! The shape of a roster entry (pseudonymous id, display name, class) and its validation, and
//! the school's CSV roster (`class,first_name,last_name,key_stage`, or an MIS export's columns:
//! [`map_header`]). Pure: storing entries is `store`'s job; only a pupil's first name, the
//! family name's first letters and the MIS id are kept from the CSV. Which pupil a re-imported
//! row is ([`match_rows`]) and how classmates with the same first name and initial are told
//! apart on the sign-in screen ([`class_labels`]) are decided here.

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

/// Most letters of a family name kept: enough to tell "Amira Khan" from "Amira Kerr" on the
/// sign-in screen, no more (seed 004: "learners' full names will not be used").
pub const FAMILY_LETTERS: usize = 3;

/// One checked CSV row: what devices show (first name and initial), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// The CSV line it came from (1 is the header).
    pub line: usize,
    pub class: String,
    pub first_name: String,
    /// The family name's first letter, upper case.
    pub initial: String,
    /// The family name's first letters (at most [`FAMILY_LETTERS`]), the initial upper case.
    pub family_start: String,
    pub key_stage: KeyStage,
    /// The MIS's id for the pupil, kind first (`upn:A123…`, `adno:1042`), when the file has one.
    pub mis_id: Option<String>,
}

/// Why a roster file was refused: the line and column, so IT can fix the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {problem}")]
pub struct ImportError {
    pub line: usize,
    pub column: &'static str,
    pub problem: String,
}

/// Header names each column is recognised by, first match wins: Slate's own, then those of
/// the MIS exports schools have (SIMS, Arbor, Bromcom). Compared lower case, `_` as a space.
const CLASS_NAMES: &[&str] = &[
    "class",
    "reg",
    "registration group",
    "reg group",
    "registration form",
    "form",
    "tutor group",
    "form group",
];
const FIRST_NAME_NAMES: &[&str] = &[
    "first name",
    "preferred forename",
    "preferred first name",
    "forename",
    "legal forename",
    "legal first name",
];
const LAST_NAME_NAMES: &[&str] = &[
    "last name",
    "preferred surname",
    "surname",
    "legal surname",
    "legal last name",
    "family name",
];
const KEY_STAGE_NAMES: &[&str] = &["key stage", "keystage"];
const YEAR_NAMES: &[&str] = &["year", "year group", "nc year", "national curriculum year"];
/// The MIS id columns and the kind each is stored as: the UPN first, as it follows a pupil
/// from school to school.
const ID_NAMES: &[(&str, &str)] = &[
    ("upn", "upn"),
    ("unique pupil number", "upn"),
    ("adno", "adno"),
    ("admission number", "adno"),
    ("student id", "student-id"),
    ("mis id", "mis-id"),
];

/// Where the key stage comes from: a `key_stage` column or an MIS's year group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageColumn {
    KeyStage(usize),
    Year(usize),
}

/// Which column of the file holds what (indices from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub class: usize,
    pub first_name: usize,
    pub last_name: usize,
    pub stage: StageColumn,
    /// The MIS id column and the kind it is stored as.
    pub id: Option<(usize, &'static str)>,
}

fn header_key(name: &str) -> String {
    name.trim().to_lowercase().replace('_', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Finds the columns a roster needs among a file's headers. Missing one: a sentence naming
/// what it is called and what the file has, so IT can rename a column.
pub fn map_header(headers: &[&str]) -> Result<Columns, String> {
    let keys: Vec<String> = headers.iter().map(|h| header_key(h)).collect();
    let find =
        |names: &[&str]| names.iter().find_map(|name| keys.iter().position(|key| key == name));
    let found = || {
        let shown: Vec<String> = headers
            .iter()
            .filter(|h| !h.trim().is_empty())
            .take(30)
            .map(|h| h.trim().chars().take(30).collect())
            .collect();
        if shown.is_empty() {
            "no column names".to_owned()
        } else {
            format!("found {}", shown.join(", "))
        }
    };
    let needed = |what: &str, names: &[&str]| {
        format!("no {what} column: name it {} ({})", names.join(" or "), found())
    };
    let class = find(CLASS_NAMES).ok_or_else(|| needed("class", CLASS_NAMES))?;
    let first_name =
        find(FIRST_NAME_NAMES).ok_or_else(|| needed("first name", FIRST_NAME_NAMES))?;
    let last_name = find(LAST_NAME_NAMES).ok_or_else(|| needed("last name", LAST_NAME_NAMES))?;
    let stage = match (find(KEY_STAGE_NAMES), find(YEAR_NAMES)) {
        (Some(i), _) => StageColumn::KeyStage(i),
        (None, Some(i)) => StageColumn::Year(i),
        (None, None) => {
            return Err(format!(
                "no key stage column: add key_stage (ks1, eyfs or ks2) or a year group column named year ({})",
                found()
            ))
        }
    };
    let id = ID_NAMES
        .iter()
        .find_map(|(name, kind)| keys.iter().position(|key| key == name).map(|i| (i, *kind)));
    Ok(Columns { class, first_name, last_name, stage, id })
}

/// The key stage of a primary year group as MIS exports write it: "N1", "R", "Reception",
/// "2", "Year 5".
pub fn key_stage_of_year(year: &str) -> Option<KeyStage> {
    let year = year.trim().to_lowercase();
    let year = year.strip_prefix("year").unwrap_or(&year).trim();
    match year {
        "n" | "n1" | "n2" | "nursery" | "r" | "rec" | "reception" | "1" | "2" => {
            Some(KeyStage::Ks1)
        }
        "3" | "4" | "5" | "6" => Some(KeyStage::Ks2),
        _ => None,
    }
}

/// Parses and checks a whole roster CSV. Any bad row refuses the file, so nothing is
/// half-imported. Two rows with the same first name and initial are two pupils.
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
    let header: Vec<&str> = headers.iter().collect();
    let columns = map_header(&header).map_err(|problem| err(1, "header", problem))?;
    let mut rows: Vec<RosterRow> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            err(line_of(e.position(), rows.len() + 2), "row", "is not valid CSV".into())
        })?;
        let line = line_of(record.position(), rows.len() + 2);
        if record.len() != header.len() {
            return Err(err(
                line,
                "row",
                format!("has {} columns, the header {}", record.len(), header.len()),
            ));
        }
        if rows.len() == MAX_IMPORT_ROWS {
            return Err(err(line, "row", format!("over {MAX_IMPORT_ROWS} rows in one file")));
        }
        let class = checked_name("class", &record[columns.class])
            .map_err(|e| err(line, "class", e.to_string()))?;
        if class.chars().count() > 20 {
            return Err(err(line, "class", "is over 20 characters".into()));
        }
        let first_name = record[columns.first_name].to_owned();
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
        let family_start = family_start(&record[columns.last_name]).ok_or_else(|| {
            err(line, "last_name", "has no letter to take the initial from".into())
        })?;
        let initial = family_start.chars().next().map(String::from).unwrap_or_default();
        let key_stage = match columns.stage {
            StageColumn::KeyStage(i) => match record[i].to_ascii_lowercase().as_str() {
                "ks1" | "eyfs" => KeyStage::Ks1,
                "ks2" => KeyStage::Ks2,
                _ => return Err(err(line, "key_stage", "must be ks1, eyfs or ks2".into())),
            },
            StageColumn::Year(i) => key_stage_of_year(&record[i]).ok_or_else(|| {
                err(line, "year", "must be a primary year group: N1, N2, R, or 1 to 6".into())
            })?,
        };
        let mis_id = match columns.id {
            Some((i, kind)) => mis_id(kind, &record[i]).map_err(|e| err(line, "id", e))?,
            None => None,
        };
        if let Some(other) = rows.iter().find(|r| r.class == class && r.key_stage != key_stage) {
            return Err(err(
                line,
                "key_stage",
                format!("differs from line {} for the same class", other.line),
            ));
        }
        if let Some(earlier) = rows.iter().find(|r| mis_id.is_some() && r.mis_id == mis_id) {
            return Err(err(
                line,
                "id",
                format!("is the same as line {}'s: one pupil cannot be two rows", earlier.line),
            ));
        }
        rows.push(RosterRow { line, class, first_name, initial, family_start, key_stage, mis_id });
    }
    Ok(rows)
}

/// The family name's first letters, the first upper case: "khan" -> "Kha", "O'Neill" -> "One".
fn family_start(family_name: &str) -> Option<String> {
    let mut letters = family_name.chars().filter(|c| c.is_alphabetic());
    let first: String = letters.next()?.to_uppercase().collect();
    if first.chars().count() != 1 {
        return None;
    }
    let rest: String = letters.take(FAMILY_LETTERS - 1).flat_map(char::to_lowercase).collect();
    Some(first + &rest)
}

/// An MIS id as stored, its kind first; an empty cell is no id (that row is matched by name).
fn mis_id(kind: &str, value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > 20 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("must be the MIS's id: letters, digits or -, at most 20".into());
    }
    Ok(Some(format!("{kind}:{}", value.to_ascii_uppercase())))
}

/// A pupil already on the roster, as a re-import compares rows with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPupil {
    pub id: PupilId,
    pub class: String,
    pub first_name: String,
    pub initial: String,
    /// Unknown for pupils imported before it was kept.
    pub family_start: Option<String>,
    pub mis_id: Option<String>,
    /// Marked as left: found again by their MIS id only (they came back), never by name.
    pub left: bool,
}

/// Which pupil a row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowMatch {
    /// Someone not on the roster yet.
    New,
    /// This pupil, already on the roster: their history stays theirs.
    Existing(PupilId),
}

fn id_kind(id: &str) -> &str {
    id.split_once(':').map_or(id, |(kind, _)| kind)
}

/// Decides which pupil each row is. A row with an MIS id is the pupil with that id, wherever
/// they are (so a pupil moving class keeps their history). Otherwise, or if nobody has that id
/// yet, the pupil in the row's class with the same first name and initial, and the same first
/// letters of the family name where both are known (a pupil with an id of the same kind is
/// someone else). Refused, never merged: a row that could be two pupils, and two rows that
/// would be one.
pub fn match_rows(known: &[KnownPupil], rows: &[RosterRow]) -> Result<Vec<RowMatch>, ImportError> {
    let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    let mut matches = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(pupil) =
            row.mis_id.as_ref().and_then(|m| known.iter().find(|k| k.mis_id.as_ref() == Some(m)))
        {
            matches.push(RowMatch::Existing(pupil.id.clone()));
            continue;
        }
        let candidates: Vec<&KnownPupil> = known
            .iter()
            .filter(|k| {
                !k.left
                    && k.class == row.class
                    && same(&k.first_name, &row.first_name)
                    && same(&k.initial, &row.initial)
                    && k.family_start.as_deref().is_none_or(|f| same(f, &row.family_start))
                    && match (&row.mis_id, &k.mis_id) {
                        (Some(theirs), Some(ours)) => id_kind(theirs) != id_kind(ours),
                        _ => true,
                    }
            })
            .collect();
        match candidates.as_slice() {
            [] => matches.push(RowMatch::New),
            [one] => matches.push(RowMatch::Existing(one.id.clone())),
            many => {
                return Err(ImportError {
                    line: row.line,
                    column: "first_name",
                    problem: format!(
                        "could be any of {} pupils already in {} with that first name and family name's first letters: add a UPN or Adno column so each row names its own pupil",
                        many.len(),
                        row.class
                    ),
                })
            }
        }
    }
    for (i, m) in matches.iter().enumerate() {
        let RowMatch::Existing(id) = m else { continue };
        if let Some(j) = matches[..i].iter().position(|earlier| earlier == m) {
            let class = known.iter().find(|k| &k.id == id).map_or("", |k| k.class.as_str());
            return Err(ImportError {
                line: rows[i].line,
                column: "first_name",
                problem: format!(
                    "lines {} and {} both match one pupil already in {class}: they are not merged; add a UPN or Adno column so each row names its own pupil",
                    rows[j].line, rows[i].line
                ),
            });
        }
    }
    Ok(matches)
}

/// A change to one pupil, from the pupils page, checked with the roster file's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilEdit {
    pub first_name: String,
    /// The new family name's first letters and initial; `None` keeps the pupil's.
    pub family: Option<(String, String)>,
    pub class: String,
}

impl PupilEdit {
    /// Checks each field; the refusals name the field, and never echo a name (they may be
    /// logged).
    pub fn parse(
        first_name: &str,
        family_name: &str,
        class: &str,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let first_name = first_name.trim();
        let first_ok = !first_name.is_empty()
            && first_name.chars().count() <= 16
            && first_name.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'');
        if !first_ok {
            problems.push((
                "first name",
                "must be one first name (letters, - or '), at most 16 characters".to_owned(),
            ));
        }
        let family = if family_name.trim().is_empty() {
            None
        } else if family_name.chars().count() > MAX_NAME_CHARS {
            problems.push(("family name", format!("is over {MAX_NAME_CHARS} characters")));
            None
        } else {
            match family_start(family_name) {
                Some(start) => {
                    let initial = start.chars().next().map(String::from).unwrap_or_default();
                    Some((start, initial))
                }
                None => {
                    problems.push((
                        "family name",
                        "has no letter to take the initial from (leave it empty to keep it)"
                            .to_owned(),
                    ));
                    None
                }
            }
        };
        let class = match checked_name("class", class) {
            Ok(class) if class.chars().count() <= 20 => Some(class),
            Ok(_) => {
                problems.push(("class", "is over 20 characters".to_owned()));
                None
            }
            Err(e) => {
                problems.push(("class", e.to_string()));
                None
            }
        };
        match class {
            Some(class) if problems.is_empty() => {
                Ok(Self { first_name: first_name.to_owned(), family, class })
            }
            _ => Err(problems),
        }
    }
}

/// Where a class's pupils go at the year-end rollover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextClass {
    Stays,
    MovesTo(String),
    /// Leavers: marked as left, their records kept.
    Leaves,
}

/// A year-end rollover as the form sends it: for each class (`next:<class>`), `stays`,
/// `leaves` or `class:<next class>`. Checked against the classes there are; every class moves
/// at once, so "Year 5 to Year 6" and "Year 6 to leavers" do not chain. A class the form does
/// not name stays. Refusals name the class; nothing to do is refused too.
pub fn plan_rollover(
    classes: &[String],
    fields: &[(String, String)],
) -> Result<Vec<(String, NextClass)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut plan: Vec<(String, NextClass)> =
        classes.iter().map(|c| (c.clone(), NextClass::Stays)).collect();
    for (name, value) in fields {
        let Some(class) = name.strip_prefix("next:") else { continue };
        let Some(slot) = plan.iter_mut().find(|(c, _)| c == class) else {
            problems.push(format!("Class {class}: no class has this name any more"));
            continue;
        };
        slot.1 = match value.as_str() {
            "stays" => NextClass::Stays,
            "leaves" => NextClass::Leaves,
            other => match other.strip_prefix("class:") {
                Some(next) if next == class => NextClass::Stays,
                Some(next) if classes.iter().any(|c| c == next) => {
                    NextClass::MovesTo(next.to_owned())
                }
                Some(_) => {
                    problems.push(format!("Class {class}: its next class does not exist"));
                    continue;
                }
                None => {
                    problems.push(format!("Class {class}: choose a class, stays or leavers"));
                    continue;
                }
            },
        };
    }
    if problems.is_empty() && plan.iter().all(|(_, next)| *next == NextClass::Stays) {
        problems.push("Nothing to roll over: every class stays".to_owned());
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// A pupil's name as their class's labels are decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelName {
    pub first_name: String,
    pub initial: String,
    /// Unknown (the initial alone) for pupils imported before it was kept.
    pub family_start: Option<String>,
}

/// The sign-in labels of one class's pupils, in the order given (give a stable order: the
/// second of two identical names is the one marked "(2)"). "Amira K." unless a classmate has
/// the same first name and initial; then as many of the family name's letters as tell them
/// apart ("Amira Kh.", "Amira Ke."); where the letters kept cannot, "Amira K." and
/// "Amira K. (2)". Every label is different from the others in the class.
pub fn class_labels(pupils: &[LabelName]) -> Vec<String> {
    let lower = |s: &str| s.to_lowercase();
    let letters = |p: &LabelName| p.family_start.clone().unwrap_or_else(|| p.initial.clone());
    let mut labels: Vec<String> = pupils
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let plain = format!("{} {}.", p.first_name, p.initial);
            let others: Vec<String> = pupils
                .iter()
                .enumerate()
                .filter(|(j, q)| {
                    *j != i
                        && lower(&q.first_name) == lower(&p.first_name)
                        && lower(&q.initial) == lower(&p.initial)
                })
                .map(|(_, q)| lower(&letters(q)))
                .collect();
            if others.is_empty() {
                return plain;
            }
            let mine: Vec<char> = letters(p).chars().collect();
            // The fewest letters that no classmate's letters start with.
            (1..=mine.len())
                .map(|n| mine[..n].iter().collect::<String>())
                .find(|prefix| others.iter().all(|o| !o.starts_with(&lower(prefix))))
                .map_or(plain, |prefix| format!("{} {prefix}.", p.first_name))
        })
        .collect();
    for i in 0..labels.len() {
        let earlier = labels[..i].iter().filter(|l| lower(l) == lower(&labels[i])).count();
        if earlier > 0 {
            labels[i] = format!("{} ({})", labels[i], earlier + 1);
        }
    }
    labels
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
    let moved = match done.pupils_moved {
        0 => String::new(),
        n => format!(", {n} moved to another class"),
    };
    format!(
        "{} added, {} already there{moved}, {} added",
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
                family_start: "Kha".into(),
                key_stage: KeyStage::Ks1,
                mis_id: None,
            }
        );
        assert_eq!((rows[1].class.as_str(), rows[1].initial.as_str()), ("Year 5", "O"));
        assert!(new_pupil_id().as_str().starts_with("p-"));
    }

    #[test]
    fn the_summary_counts_in_words() {
        use crate::store::Imported;
        let cases = [
            ((2, 0, 0, 1), "2 pupils added, 0 already there, 1 class added"),
            ((1, 3, 0, 0), "1 pupil added, 3 already there, 0 classes added"),
            ((0, 0, 0, 2), "0 pupils added, 0 already there, 2 classes added"),
            (
                (0, 5, 2, 1),
                "0 pupils added, 5 already there, 2 moved to another class, 1 class added",
            ),
        ];
        for ((pupils_added, already_there, pupils_moved, classes_added), words) in cases {
            let done = Imported { pupils_added, already_there, pupils_moved, classes_added };
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
            (&format!("{head}Oak,Amira,Khan,ks1\nOak,Ben,Kerr,ks2\n"), "line 3, column key_stage"),
        ];
        for (text, expected) in cases {
            let err = parse_roster_csv(text).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn mis_exports_headers_are_recognised() {
        use StageColumn::{KeyStage as Ks, Year};
        let cases: [(&[&str], Columns); 5] = [
            (
                &["class", "first_name", "last_name", "key_stage"],
                Columns { class: 0, first_name: 1, last_name: 2, stage: Ks(3), id: None },
            ),
            (
                &["UPN", "Adno", "Surname", "Forename", "Reg", "Year"],
                Columns {
                    class: 4,
                    first_name: 3,
                    last_name: 2,
                    stage: Year(5),
                    id: Some((0, "upn")),
                },
            ),
            (
                &["Adno", "Legal Surname", "Forename", "Registration Group", "Year Group"],
                Columns {
                    class: 3,
                    first_name: 2,
                    last_name: 1,
                    stage: Year(4),
                    id: Some((0, "adno")),
                },
            ),
            (
                &["Student ID", "First Name", "Last Name", "Registration Form", "Key Stage"],
                Columns {
                    class: 3,
                    first_name: 1,
                    last_name: 2,
                    stage: Ks(4),
                    id: Some((0, "student-id")),
                },
            ),
            (
                // Bromcom: the preferred forename is the name a child answers to.
                &[
                    "Legal Forename",
                    "Preferred Forename",
                    "Legal Surname",
                    "Tutor Group",
                    "NC Year",
                    "UPN",
                ],
                Columns {
                    class: 3,
                    first_name: 1,
                    last_name: 2,
                    stage: Year(4),
                    id: Some((5, "upn")),
                },
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(map_header(headers), Ok(expected), "{headers:?}");
        }
        let missing = [
            (&["Forename", "Surname", "Year"] as &[&str], "no class column: name it class or reg"),
            (&["Reg", "Surname", "Year"], "no first name column"),
            (&["Reg", "Forename", "Year"], "no last name column"),
            (&["Reg", "Forename", "Surname", "DOB"], "no key stage column"),
        ];
        for (headers, expected) in missing {
            let problem = map_header(headers).unwrap_err();
            assert!(problem.starts_with(expected), "{problem}");
            assert!(problem.contains(&format!("found {}", headers.join(", "))), "{problem}");
        }
    }

    #[test]
    fn year_groups_give_key_stages() {
        let cases = [
            ("N1", Some(KeyStage::Ks1)),
            ("R", Some(KeyStage::Ks1)),
            ("Reception", Some(KeyStage::Ks1)),
            ("2", Some(KeyStage::Ks1)),
            ("Year 3", Some(KeyStage::Ks2)),
            (" 6 ", Some(KeyStage::Ks2)),
            ("7", None),
            ("", None),
        ];
        for (year, stage) in cases {
            assert_eq!(key_stage_of_year(year), stage, "{year:?}");
        }
    }

    #[test]
    fn an_mis_export_keeps_ids_and_two_pupils_of_one_name() {
        let text = "UPN,Forename,Surname,Reg,Year,DOB\nA123456789012,Amira,Khan,Oak,2,2019-01-01\nb123456789013,Amira,Kerr,Oak,2,2019-02-02\n,Amira,Khan,Oak,2,2019-03-03\n";
        let rows = parse_roster_csv(text).unwrap();
        let seen: Vec<_> =
            rows.iter().map(|r| (r.family_start.as_str(), r.mis_id.as_deref())).collect();
        assert_eq!(
            seen,
            [("Kha", Some("upn:A123456789012")), ("Ker", Some("upn:B123456789013")), ("Kha", None)]
        );
        let repeated = text.replace("b123456789013", "A123456789012");
        let refused = parse_roster_csv(&repeated).unwrap_err().to_string();
        assert_eq!(
            refused,
            "line 3, column id: is the same as line 2's: one pupil cannot be two rows"
        );
        let bad_year = parse_roster_csv(&text.replace("Oak,2,2019-02", "Oak,9,2019-02"));
        assert!(bad_year.unwrap_err().to_string().starts_with("line 3, column year"));
    }

    fn label_name(first: &str, family: Option<&str>) -> LabelName {
        let initial = family.map_or("K", |f| &f[..1]).to_owned();
        LabelName { first_name: first.into(), initial, family_start: family.map(Into::into) }
    }

    #[test]
    fn labels_tell_classmates_apart() {
        type Names<'a> = &'a [(&'a str, Option<&'a str>)];
        let cases: [(Names, &[&str]); 7] = [
            (&[("Amira", Some("Kha")), ("Ben", Some("Tay"))], &["Amira K.", "Ben T."]),
            (&[("Amira", Some("Kha")), ("Amira", Some("Ker"))], &["Amira Kh.", "Amira Ke."]),
            (&[("Amira", Some("Kha")), ("Amira", Some("Kha"))], &["Amira K.", "Amira K. (2)"]),
            // Known before the family name's letters were kept: the initial alone.
            (&[("Amira", None), ("Amira", Some("Kha"))], &["Amira K.", "Amira Kh."]),
            (
                &[("Amira", Some("Kha")), ("Amira", Some("Kha")), ("Amira", Some("Ker"))],
                &["Amira K.", "Amira K. (2)", "Amira Ke."],
            ),
            (&[("Amira", Some("Kha")), ("Amira", Some("Kh"))], &["Amira Kha.", "Amira K."]),
            (&[("amira", Some("Kha")), ("Amira", Some("Kha"))], &["amira K.", "Amira K. (2)"]),
        ];
        for (names, expected) in cases {
            let pupils: Vec<_> = names.iter().map(|(f, l)| label_name(f, *l)).collect();
            let labels = class_labels(&pupils);
            assert_eq!(labels, expected, "{names:?}");
            for (label, pupil) in labels.iter().zip(&pupils) {
                let ok =
                    slate_protocol::kiosk::is_pupil_label(label, &pupil.first_name, &pupil.initial);
                assert!(ok, "{label:?} is a label devices take");
            }
        }
    }

    #[test]
    fn rows_are_matched_by_mis_id_then_by_name_and_never_merged() {
        let known = |id: &str, class: &str, family: Option<&str>, mis: Option<&str>| KnownPupil {
            id: id_of(id),
            class: class.into(),
            first_name: "Amira".into(),
            initial: "K".into(),
            family_start: family.map(Into::into),
            mis_id: mis.map(Into::into),
            left: false,
        };
        let row = |line: usize, class: &str, family: &str, mis: Option<&str>| RosterRow {
            line,
            class: class.into(),
            first_name: "Amira".into(),
            initial: family[..1].into(),
            family_start: family.into(),
            key_stage: KeyStage::Ks1,
            mis_id: mis.map(Into::into),
        };
        use RowMatch::{Existing, New};
        let khan = known("p-1", "Oak", Some("Kha"), None);
        let kerr = known("p-2", "Oak", Some("Ker"), None);
        let legacy = known("p-3", "Oak", None, None);
        let with_upn = known("p-4", "Ash", Some("Kha"), Some("upn:A1"));
        type Case = (Vec<KnownPupil>, Vec<RosterRow>, Result<Vec<RowMatch>, &'static str>);
        let cases: Vec<Case> = vec![
            (
                vec![],
                vec![row(2, "Oak", "Kha", None), row(3, "Oak", "Kha", None)],
                Ok(vec![New, New]),
            ),
            (
                vec![khan.clone(), kerr.clone()],
                vec![
                    row(2, "Oak", "Ker", None),
                    row(3, "Oak", "Kha", None),
                    row(4, "Oak", "Kel", None),
                ],
                Ok(vec![Existing(id_of("p-2")), Existing(id_of("p-1")), New]),
            ),
            // Same name in another class: someone else.
            (vec![khan.clone()], vec![row(2, "Ash", "Kha", None)], Ok(vec![New])),
            // The MIS id wins over the class: a pupil who moved keeps their history.
            (
                vec![khan.clone(), with_upn.clone()],
                vec![row(2, "Oak", "Kha", Some("upn:A1"))],
                Ok(vec![Existing(id_of("p-4"))]),
            ),
            // An id nobody has yet: the name rule, among pupils with no id of that kind.
            (
                vec![khan.clone()],
                vec![row(2, "Oak", "Kha", Some("upn:B2"))],
                Ok(vec![Existing(id_of("p-1"))]),
            ),
            (
                vec![known("p-5", "Oak", Some("Kha"), Some("upn:C3"))],
                vec![row(2, "Oak", "Kha", Some("upn:B2"))],
                Ok(vec![New]),
            ),
            // A pupil marked as left comes back by their MIS id, never by name.
            (
                vec![KnownPupil { left: true, ..khan.clone() }],
                vec![row(2, "Oak", "Kha", None)],
                Ok(vec![New]),
            ),
            (
                vec![KnownPupil { left: true, ..with_upn.clone() }],
                vec![row(2, "Oak", "Kha", Some("upn:A1"))],
                Ok(vec![Existing(id_of("p-4"))]),
            ),
            (
                vec![legacy.clone()],
                vec![row(2, "Oak", "Kha", None), row(5, "Oak", "Ker", None)],
                Err("line 5, column first_name: lines 2 and 5 both match one pupil already in Oak"),
            ),
            (
                vec![khan.clone(), known("p-6", "Oak", Some("Kha"), None)],
                vec![row(7, "Oak", "Kha", None)],
                Err("line 7, column first_name: could be any of 2 pupils already in Oak"),
            ),
        ];
        for (known, rows, expected) in cases {
            let got = match_rows(&known, &rows).map_err(|e| e.to_string());
            match expected {
                Ok(matches) => assert_eq!(got, Ok(matches)),
                Err(start) => {
                    let message = got.unwrap_err();
                    assert!(message.starts_with(start), "{message}");
                    assert!(message.contains("add a UPN or Adno column"), "{message}");
                }
            }
        }
    }

    #[test]
    fn a_pupil_edit_is_checked_field_by_field() {
        let edit = PupilEdit::parse(" Amira ", "khan", "Oak").unwrap();
        assert_eq!(edit.first_name, "Amira");
        assert_eq!(edit.family, Some(("Kha".into(), "K".into())));
        assert_eq!(PupilEdit::parse("Amira", "  ", "Oak").unwrap().family, None, "kept");
        type Fields<'a> = (&'a str, &'a str, &'a str);
        let cases: [(Fields, &[&str]); 5] = [
            (("Amira Jane", "", "Oak"), &["first name"]),
            (("", "-", "Oak"), &["first name", "family name"]),
            (("Amira", "", ""), &["class"]),
            (("Amira", "", "Year 2 Kingfishers and Owls"), &["class"]),
            (("Amira", &"k".repeat(41), "Oak"), &["family name"]),
        ];
        for ((first, family, class), fields) in cases {
            let problems = PupilEdit::parse(first, family, class).unwrap_err();
            let named: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
            assert_eq!(named, fields, "{first:?} {family:?} {class:?}");
            for (_, problem) in &problems {
                assert!(!problem.contains(first) || first.is_empty(), "no name echoed: {problem}");
            }
        }
    }

    #[test]
    fn a_rollover_moves_every_class_at_once_and_names_what_it_refuses() {
        let classes: Vec<String> = ["Year 5", "Year 6", "Oak"].map(String::from).to_vec();
        let field = |class: &str, value: &str| (format!("next:{class}"), value.to_owned());
        let plan = plan_rollover(
            &classes,
            &[
                ("csrf".into(), "x".into()),
                field("Year 5", "class:Year 6"),
                field("Year 6", "leaves"),
            ],
        )
        .unwrap();
        assert_eq!(
            plan,
            [
                ("Year 5".into(), NextClass::MovesTo("Year 6".into())),
                ("Year 6".into(), NextClass::Leaves),
                ("Oak".into(), NextClass::Stays),
            ]
        );
        type Fields = Vec<(String, String)>;
        let cases: [(Fields, &[&str]); 4] = [
            (
                vec![field("Oak", "stays"), field("Year 5", "class:Year 5")],
                &["Nothing to roll over"],
            ),
            (vec![field("Elm", "leaves")], &["Class Elm: no class"]),
            (vec![field("Oak", "class:Ash")], &["Class Oak: its next class does not exist"]),
            (
                vec![field("Oak", "Ash"), field("Year 6", "leaves")],
                &["Class Oak: choose a class, stays or leavers"],
            ),
        ];
        for (fields, expected) in cases {
            let problems = plan_rollover(&classes, &fields).unwrap_err();
            assert_eq!(problems.len(), expected.len(), "{problems:?}");
            for (problem, start) in problems.iter().zip(expected) {
                assert!(problem.starts_with(start), "{problem}");
            }
        }
    }

    fn id_of(s: &str) -> PupilId {
        PupilId::new(s).unwrap()
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
