//! The termly filter check's rules (issue 17; seed 004 and the DfE filtering and monitoring
//! standards: the DSL checks each term that the filter blocks what it should). Pure: which test
//! names a built-in check sends ([`choose_test_names`], [`own_names`]), how each device's
//! answer reads per category ([`judge`]), when the next check is due ([`next_term_start`],
//! [`due_state`]) and what a recorded check must hold ([`check_record`]). The page is
//! `features::filter_checks`; the device side is slated's `filter_check`.

use chrono::{Datelike, NaiveDate};
use slate_protocol::device::{CheckName, MAX_CHECK_NAMES};
use slate_protocol::NameVerdict;
use std::collections::BTreeMap;

/// Test names taken from each category's list.
pub const NAMES_PER_CATEGORY: usize = 2;
/// Most names of the DSL's own in one check.
pub const MAX_OWN_NAMES: usize = 10;
/// What the page calls names of the DSL's own (no category).
pub const OWN_NAMES: &str = "your own names";
/// Longest text in a recorded check's fields, in characters.
pub const MAX_FIELD_CHARS: usize = 4000;

/// A domain name as a list line or the DSL may give it: lowercased, without a trailing dot;
/// `None` when it is not one.
fn domain(text: &str) -> Option<String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= slate_protocol::MAX_NAME_BYTES
        && name.contains('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !name.starts_with('.')
        && !name.contains("..");
    ok.then_some(name)
}

/// The test names for a check: from each category (a list devices block with: `(name, text)`),
/// up to [`NAMES_PER_CATEGORY`] of its entries, spread evenly through it so a check does not
/// always ask the first lines; a wildcard line `*.example.org` gives `example.org` (which it
/// blocks). The same lists always give the same names. Comments and lines that are not names
/// are skipped. Pure.
pub fn choose_test_names(categories: &[(String, String)]) -> Vec<CheckName> {
    let mut sorted: Vec<&(String, String)> = categories.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut names: Vec<CheckName> = Vec::new();
    for (category, text) in sorted {
        let mut entries: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| domain(l.strip_prefix("*.").unwrap_or(l)))
            .collect();
        entries.dedup();
        let n = entries.len();
        let take = NAMES_PER_CATEGORY.min(n);
        for i in 0..take {
            let name = entries[i * n / take].clone();
            if !names.iter().any(|c| c.name == name) {
                names.push(CheckName { name, category: Some(category.clone()) });
            }
        }
    }
    names.truncate(MAX_CHECK_NAMES - MAX_OWN_NAMES);
    names
}

/// The DSL's own test names (a test site their filtering provider gives), one per line or
/// separated by commas or spaces; refused with a reason naming the first bad one. Pure.
pub fn own_names(text: &str) -> Result<Vec<CheckName>, String> {
    let mut names: Vec<CheckName> = Vec::new();
    for word in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()) {
        let bare = word
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        let name =
            domain(bare).ok_or_else(|| format!("Your own names: {word:?} is not a site name."))?;
        if !names.iter().any(|n| n.name == name) {
            names.push(CheckName { name, category: None });
        }
    }
    if names.len() > MAX_OWN_NAMES {
        return Err(format!("Your own names: at most {MAX_OWN_NAMES}."));
    }
    Ok(names)
}

/// One device's answer for one category, as the page's table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Every name of the category was blocked (by these lists).
    Blocked(Vec<String>),
    /// At least one name was answered: these were not blocked (red on the page).
    NotBlocked(Vec<String>),
    /// The device's filter could not be asked (slate-dns away): its reason.
    Failed(String),
    /// No answer from the device yet.
    NoAnswer,
}

/// A device's answer (its `filter_checked` results and error), if one came.
pub struct Answer<'a> {
    pub results: &'a [NameVerdict],
    pub error: Option<&'a str>,
}

/// The table row for one device: a cell per category of `asked` (by category; the DSL's own
/// names under [`OWN_NAMES`]), from its answer. A name the answer leaves out is not blocked
/// as far as the check knows. Pure.
pub fn judge(asked: &[CheckName], answer: Option<Answer<'_>>) -> BTreeMap<String, Cell> {
    let mut row: BTreeMap<String, Cell> = BTreeMap::new();
    for name in asked {
        let category = name.category.clone().unwrap_or_else(|| OWN_NAMES.to_owned());
        let cell = row.entry(category).or_insert(Cell::NoAnswer);
        let Some(answer) = &answer else { continue };
        if let Some(error) = answer.error {
            *cell = Cell::Failed(error.to_owned());
            continue;
        }
        let blocked_by =
            answer.results.iter().find(|r| r.name == name.name).and_then(|r| r.blocked_by.clone());
        *cell = match (std::mem::replace(cell, Cell::NoAnswer), blocked_by) {
            (Cell::NotBlocked(mut missed), None) => {
                missed.push(name.name.clone());
                Cell::NotBlocked(missed)
            }
            (Cell::NotBlocked(missed), Some(_)) => Cell::NotBlocked(missed),
            (Cell::Blocked(mut lists), Some(list)) => {
                if !lists.contains(&list) {
                    lists.push(list);
                }
                Cell::Blocked(lists)
            }
            (_, Some(list)) => Cell::Blocked(vec![list]),
            (_, None) => Cell::NotBlocked(vec![name.name.clone()]),
        };
    }
    row
}

/// The first day of the school term after `day`: terms start on 1 September (autumn),
/// 1 January (spring) and 15 April (summer, after Easter), near enough for a reminder; the DSL
/// changes the date when their calendar differs. Pure.
pub fn next_term_start(day: NaiveDate) -> NaiveDate {
    let year = day.year();
    let starts = [
        NaiveDate::from_ymd_opt(year, 1, 1),
        NaiveDate::from_ymd_opt(year, 4, 15),
        NaiveDate::from_ymd_opt(year, 9, 1),
        NaiveDate::from_ymd_opt(year + 1, 1, 1),
    ];
    starts.into_iter().flatten().find(|s| *s > day).unwrap_or(day)
}

/// Whether the next check is due, from the latest recorded check's `next_due`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueState {
    /// No check recorded yet.
    NeverChecked,
    /// Due on this day, still ahead (or today).
    DueOn(NaiveDate),
    /// Overdue since this day.
    Overdue(NaiveDate),
}

/// The page's "next check due" line for `today`. Pure.
pub fn due_state(latest_next_due: Option<NaiveDate>, today: NaiveDate) -> DueState {
    match latest_next_due {
        None => DueState::NeverChecked,
        Some(due) if due < today => DueState::Overdue(due),
        Some(due) => DueState::DueOn(due),
    }
}

/// What the record form sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckForm {
    pub checked_on: String,
    pub what_checked: String,
    pub outcome: String,
    pub notes: String,
    pub actions_taken: String,
    pub next_due: String,
}

/// A check ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub checked_on: NaiveDate,
    pub what_checked: String,
    pub passed: bool,
    pub notes: String,
    pub actions_taken: String,
    pub next_due: NaiveDate,
}

/// Checks the record form: a date not after `today`, what was checked, an outcome, actions
/// taken when problems were found, and a next check after the check (empty: the next term).
/// Pure.
pub fn check_record(form: &CheckForm, today: NaiveDate) -> Result<CheckRecord, String> {
    let date = |field: &str, text: &str| {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{field}: a date such as 2026-12-07."))
    };
    let checked_on = date("Date of the check", &form.checked_on)?;
    if checked_on > today {
        return Err("Date of the check: not after today.".into());
    }
    let text = |field: &str, value: &str| {
        let value = value.trim().replace("\r\n", "\n");
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(format!("{field}: at most {MAX_FIELD_CHARS} characters."));
        }
        if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(format!("{field}: control characters are not allowed."));
        }
        Ok(value)
    };
    let what_checked = text("What was checked", &form.what_checked)?;
    if what_checked.is_empty() {
        return Err(
            "What was checked: say what you checked (devices, categories, test sites).".into()
        );
    }
    let passed = match form.outcome.as_str() {
        "passed" => true,
        "problems_found" => false,
        _ => return Err("Outcome: passed, or problems found.".into()),
    };
    let notes = text("Notes", &form.notes)?;
    let actions_taken = text("Actions taken", &form.actions_taken)?;
    if !passed && actions_taken.is_empty() {
        return Err("Actions taken: say what was done about the problems found.".into());
    }
    let next_due = if form.next_due.trim().is_empty() {
        next_term_start(checked_on)
    } else {
        date("Next check due", &form.next_due)?
    };
    if next_due <= checked_on {
        return Err("Next check due: after the date of the check.".into());
    }
    Ok(CheckRecord { checked_on, what_checked, passed, notes, actions_taken, next_due })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn names(list: &[CheckName]) -> Vec<(String, Option<String>)> {
        list.iter().map(|n| (n.name.clone(), n.category.clone())).collect()
    }

    #[test]
    fn test_names_come_from_each_category_deterministically() {
        let cat = |name: &str, text: &str| (name.to_owned(), text.to_owned());
        let pairs = |p: &[(&str, &str)]| {
            p.iter().map(|(n, c)| (n.to_string(), Some(c.to_string()))).collect::<Vec<_>>()
        };
        type Case<'a> = (&'a str, Vec<(String, String)>, Vec<(String, Option<String>)>);
        let cases: Vec<Case> = vec![
            ("no lists", vec![], vec![]),
            ("an empty list gives nothing", vec![cat("adult", "# none\n\n")], vec![]),
            (
                "one entry; a wildcard gives the name it covers",
                vec![cat("adult", "*.Adult.Test.\n")],
                pairs(&[("adult.test", "adult")]),
            ),
            (
                "spread through the list, in category order",
                vec![
                    cat("gambling", "a.test\nb.test\nc.test\nd.test\n"),
                    cat("adult", "# comment\nx.test\nnot a name\ny.test\n"),
                ],
                pairs(&[
                    ("x.test", "adult"),
                    ("y.test", "adult"),
                    ("a.test", "gambling"),
                    ("c.test", "gambling"),
                ]),
            ),
            (
                "a name in two lists is asked once",
                vec![cat("a", "same.test\n"), cat("b", "same.test\nother.test\n")],
                pairs(&[("same.test", "a"), ("other.test", "b")]),
            ),
            ("URL lines are not names", vec![cat("iwf", "http://x.test/a\n")], vec![]),
        ];
        for (what, categories, want) in cases {
            assert_eq!(names(&choose_test_names(&categories)), want, "{what}");
            let mut reversed = categories.clone();
            reversed.reverse();
            assert_eq!(names(&choose_test_names(&reversed)), want, "{what}: order of lists");
        }
        let many: Vec<(String, String)> =
            (0..100).map(|i| (format!("l{i:03}"), format!("n{i}.test\nm{i}.test\n"))).collect();
        assert_eq!(choose_test_names(&many).len(), MAX_CHECK_NAMES - MAX_OWN_NAMES);
    }

    #[test]
    fn own_names_are_site_names() {
        let ok = [
            ("", vec![]),
            ("testfiltering.com", vec!["testfiltering.com"]),
            (
                "https://Test.Provider.example/check, b.test\nb.test",
                vec!["test.provider.example", "b.test"],
            ),
        ];
        for (text, want) in ok {
            let got: Vec<String> = own_names(text).unwrap().into_iter().map(|n| n.name).collect();
            assert_eq!(got, want, "{text}");
            assert!(own_names(text).unwrap().iter().all(|n| n.category.is_none()));
        }
        for bad in ["localhost", "a..b", "<script>.test"] {
            let err = own_names(bad).unwrap_err();
            assert!(err.contains("not a site name"), "{bad}: {err}");
        }
        let too_many: String = (0..11).map(|i| format!("n{i}.test ")).collect();
        assert!(own_names(&too_many).unwrap_err().contains("at most"));
    }

    #[test]
    fn answers_read_per_category() {
        let asked = vec![
            CheckName { name: "x.test".into(), category: Some("adult".into()) },
            CheckName { name: "y.test".into(), category: Some("adult".into()) },
            CheckName { name: "g.test".into(), category: Some("gambling".into()) },
            CheckName { name: "own.test".into(), category: None },
        ];
        let v = |n: &str, b: Option<&str>| NameVerdict {
            name: n.into(),
            blocked_by: b.map(str::to_owned),
        };
        let all_blocked = [
            v("x.test", Some("adult")),
            v("y.test", Some("adult")),
            v("g.test", Some("gambling")),
            v("own.test", Some("school-blocks")),
        ];
        let holes = [v("x.test", Some("adult")), v("y.test", None), v("g.test", Some("gambling"))];
        let row = |cells: &[(&str, Cell)]| {
            cells.iter().map(|(c, cell)| (c.to_string(), cell.clone())).collect::<BTreeMap<_, _>>()
        };
        let blocked = |l: &str| Cell::Blocked(vec![l.to_owned()]);
        let cases: Vec<(&str, Option<Answer>, BTreeMap<String, Cell>)> = vec![
            (
                "no answer yet",
                None,
                row(&[
                    ("adult", Cell::NoAnswer),
                    ("gambling", Cell::NoAnswer),
                    (OWN_NAMES, Cell::NoAnswer),
                ]),
            ),
            (
                "all blocked",
                Some(Answer { results: &all_blocked, error: None }),
                row(&[
                    ("adult", blocked("adult")),
                    ("gambling", blocked("gambling")),
                    (OWN_NAMES, blocked("school-blocks")),
                ]),
            ),
            (
                "one name let through, one left out",
                Some(Answer { results: &holes, error: None }),
                row(&[
                    ("adult", Cell::NotBlocked(vec!["y.test".into()])),
                    ("gambling", blocked("gambling")),
                    (OWN_NAMES, Cell::NotBlocked(vec!["own.test".into()])),
                ]),
            ),
            (
                "the filter could not be asked",
                Some(Answer { results: &[], error: Some("slate-dns away") }),
                row(&[
                    ("adult", Cell::Failed("slate-dns away".into())),
                    ("gambling", Cell::Failed("slate-dns away".into())),
                    (OWN_NAMES, Cell::Failed("slate-dns away".into())),
                ]),
            ),
        ];
        for (what, answer, want) in cases {
            assert_eq!(judge(&asked, answer), want, "{what}");
        }
    }

    #[test]
    fn the_next_check_is_due_next_term() {
        let cases = [
            ("2026-12-07", "2027-01-01"),
            ("2027-01-01", "2027-04-15"),
            ("2027-03-31", "2027-04-15"),
            ("2027-04-15", "2027-09-01"),
            ("2027-07-20", "2027-09-01"),
            ("2027-09-01", "2028-01-01"),
        ];
        for (day, next) in cases {
            assert_eq!(next_term_start(d(day)), d(next), "{day}");
        }
        let today = d("2027-01-10");
        assert_eq!(due_state(None, today), DueState::NeverChecked);
        assert_eq!(due_state(Some(d("2027-01-10")), today), DueState::DueOn(d("2027-01-10")));
        assert_eq!(due_state(Some(d("2027-01-09")), today), DueState::Overdue(d("2027-01-09")));
    }

    #[test]
    fn a_recorded_check_is_checked() {
        let today = d("2026-12-07");
        let form = |f: &dyn Fn(&mut CheckForm)| {
            let mut form = CheckForm {
                checked_on: "2026-12-07".into(),
                what_checked: "devices 1-30, every category".into(),
                outcome: "passed".into(),
                notes: String::new(),
                actions_taken: String::new(),
                next_due: String::new(),
            };
            f(&mut form);
            form
        };
        let good = check_record(&form(&|_| {}), today).unwrap();
        assert!(good.passed);
        assert_eq!(good.next_due, d("2027-01-01"), "next term by default");
        let chosen = check_record(&form(&|f| f.next_due = "2027-02-01".into()), today).unwrap();
        assert_eq!(chosen.next_due, d("2027-02-01"));
        let bad: Vec<(&str, CheckForm, &str)> = vec![
            (
                "a date in the future",
                form(&|f| f.checked_on = "2026-12-08".into()),
                "not after today",
            ),
            ("not a date", form(&|f| f.checked_on = "yesterday".into()), "a date such as"),
            ("nothing checked", form(&|f| f.what_checked = "  ".into()), "What was checked"),
            ("no outcome", form(&|f| f.outcome = "fine".into()), "Outcome"),
            (
                "problems without actions",
                form(&|f| f.outcome = "problems_found".into()),
                "Actions taken",
            ),
            (
                "next before the check",
                form(&|f| f.next_due = "2026-12-01".into()),
                "after the date",
            ),
            ("control characters", form(&|f| f.notes = "a\u{7}b".into()), "control characters"),
            ("too long", form(&|f| f.notes = "x".repeat(MAX_FIELD_CHARS + 1)), "at most"),
        ];
        for (what, form, part) in bad {
            let err = check_record(&form, today).unwrap_err();
            assert!(err.contains(part), "{what}: {err}");
        }
        let problems = form(&|f| {
            f.outcome = "problems_found".into();
            f.actions_taken = "asked the provider to add the category".into();
        });
        assert!(!check_record(&problems, today).unwrap().passed);
    }
}
