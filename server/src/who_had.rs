//! "Who had device N at T" (issue 19): the one answer from every record that covers that moment.
//! A device that runs Slate records its own sessions; a numbered iPad has only the register a
//! teacher keeps, and two teachers can record the same iPad for the same lesson. A DSL must never
//! be shown one name when the records disagree, so the decision is: nobody, one pupil (every
//! record agrees), or a conflict listing every record. Pure; `store::register` reads the records.

use chrono::{DateTime, Utc};

/// How a record knows who had the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The device recorded the pupil's sign-in.
    Session,
    /// A teacher recorded the lesson in the register.
    Register,
}

impl Source {
    /// The name the staff API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Session => "session",
            Source::Register => "register",
        }
    }
}

/// One record that a pupil had the device over a span covering the moment asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pupil: String,
    pub pupil_name: Option<String>,
    pub source: Source,
    pub session: Option<String>,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    /// Who wrote a register line (a staff username).
    pub recorded_by: Option<String>,
    /// Why the session ended, and whether the server inferred it (`to` is then "at least").
    pub end_reason: Option<String>,
    pub end_inferred: bool,
}

/// The answer staff are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Nobody,
    /// Every record names this pupil; the record shown is the device's own session if there is
    /// one, else the register line.
    One(Record),
    /// The records name more than one pupil: every record, the device's session first.
    Conflict(Vec<Record>),
}

impl Answer {
    /// The single record, when there is exactly one pupil.
    pub fn into_one(self) -> Option<Record> {
        match self {
            Answer::One(record) => Some(record),
            Answer::Nobody | Answer::Conflict(_) => None,
        }
    }
}

/// Decides from the device's session covering the moment (a device has one at a time) and every
/// register line covering it.
pub fn decide(session: Option<Record>, register: Vec<Record>) -> Answer {
    let records: Vec<Record> = session.into_iter().chain(register).collect();
    let Some(first) = records.first() else {
        return Answer::Nobody;
    };
    if records.iter().all(|r| r.pupil == first.pupil) {
        // Two lines for the same pupil (recorded twice) agree: no conflict.
        Answer::One(records.into_iter().next().expect("not empty"))
    } else {
        Answer::Conflict(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pupil: &str, source: Source, recorded_by: Option<&str>) -> Record {
        Record {
            pupil: pupil.into(),
            pupil_name: None,
            source,
            session: None,
            from: "2026-11-17T10:00:00Z".parse().unwrap(),
            to: Some("2026-11-17T11:00:00Z".parse().unwrap()),
            recorded_by: recorded_by.map(Into::into),
            end_reason: None,
            end_inferred: false,
        }
    }

    #[test]
    fn conflicting_records_are_never_one_answer() {
        let session = |p| Some(record(p, Source::Session, None));
        let line = |p, by| record(p, Source::Register, Some(by));
        let pupils = |answer: &Answer| -> (&'static str, Vec<String>) {
            match answer {
                Answer::Nobody => ("nobody", vec![]),
                Answer::One(r) => ("one", vec![format!("{} {}", r.pupil, r.source.as_str())]),
                Answer::Conflict(rs) => (
                    "conflict",
                    rs.iter().map(|r| format!("{} {}", r.pupil, r.source.as_str())).collect(),
                ),
            }
        };
        // name, the session, the register lines, and the answer as (kind, "pupil source"s).
        type Case = (&'static str, Option<Record>, Vec<Record>, (&'static str, Vec<&'static str>));
        let cases: Vec<Case> = vec![
            ("no record", None, vec![], ("nobody", vec![])),
            ("the device's session", session("p-amira"), vec![], ("one", vec!["p-amira session"])),
            (
                "one register line",
                None,
                vec![line("p-ben", "t.jones")],
                ("one", vec!["p-ben register"]),
            ),
            (
                "the same pupil recorded twice",
                None,
                vec![line("p-ben", "t.jones"), line("p-ben", "t.smith")],
                ("one", vec!["p-ben register"]),
            ),
            (
                "session and register agree: the session is shown",
                session("p-amira"),
                vec![line("p-amira", "t.jones")],
                ("one", vec!["p-amira session"]),
            ),
            (
                "two teachers, two pupils, one iPad",
                None,
                vec![line("p-ben", "t.jones"), line("p-cara", "t.smith")],
                ("conflict", vec!["p-ben register", "p-cara register"]),
            ),
            (
                "the register disagrees with the device",
                session("p-amira"),
                vec![line("p-ben", "t.jones")],
                ("conflict", vec!["p-amira session", "p-ben register"]),
            ),
            (
                "a duplicate does not hide the third name",
                None,
                vec![line("p-ben", "t.jones"), line("p-ben", "t.jones"), line("p-cara", "t.smith")],
                ("conflict", vec!["p-ben register", "p-ben register", "p-cara register"]),
            ),
        ];
        for (name, session, register, (kind, expected)) in cases {
            let answer = decide(session, register);
            assert_eq!(
                pupils(&answer),
                (kind, expected.iter().map(|s| s.to_string()).collect()),
                "{name}"
            );
        }
    }

    #[test]
    fn only_a_single_pupil_is_one_answer() {
        let one = record("p-ben", Source::Register, Some("t.jones"));
        assert_eq!(Answer::One(one.clone()).into_one(), Some(one.clone()));
        assert_eq!(Answer::Conflict(vec![one.clone(), one]).into_one(), None);
        assert_eq!(Answer::Nobody.into_one(), None);
    }
}
