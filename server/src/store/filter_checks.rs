//! The termly filter check's records (issue 17): checks the DSL recorded, and built-in checks
//! started on the page (a run: its names, one `check_filter` command per device, and each
//! device's answer). A device's first `filter_checked` answer is kept with its command when the
//! event is ingested ([`keep_answer`]), so the results are part of the check's record and go
//! with it under the retention schedule's `filter_checks`, not with the device events.

use super::sql::{Database, OptionalExtension, Transaction};
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::filter_checks::CheckRecord;
use chrono::{DateTime, NaiveDate, Utc};
use slate_protocol::device::{CheckName, CommandAction};
use slate_protocol::{DeviceNumber, NameVerdict};

/// A recorded termly check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterCheckRecord {
    pub id: i64,
    pub checked_on: NaiveDate,
    /// The signed-in account that recorded it.
    pub checked_by: String,
    pub what_checked: String,
    pub passed: bool,
    pub notes: String,
    pub actions_taken: String,
    pub next_due: NaiveDate,
    /// The built-in check attached, if any.
    pub run: Option<i64>,
    pub recorded_at: DateTime<Utc>,
}

/// A built-in check: what it asked, of which devices, and what each answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterCheckRun {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub names: Vec<CheckName>,
    /// By device number.
    pub devices: Vec<CheckedDevice>,
}

/// One device of a built-in check: its `check_filter` command and its answer, if one came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDevice {
    pub command: i64,
    pub device: DeviceNumber,
    pub answer: Option<CheckAnswer>,
}

/// A device's answer to its `check_filter` command, as kept with the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub answered_at: DateTime<Utc>,
    /// One per name asked; empty when the filter did not answer.
    pub results: Vec<NameVerdict>,
    /// Why the filter did not answer, if so.
    pub error: Option<String>,
}

fn parse_names(text: &str) -> Result<Vec<CheckName>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("check names {text:?}")))
}

fn parse_day(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("date {text:?}")))
}

fn device_number(n: i64) -> Result<DeviceNumber, StoreError> {
    u32::try_from(n)
        .ok()
        .and_then(|n| DeviceNumber::new(n).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("device {n}")))
}

/// The names a `check_filter` command carries (its run's).
pub(super) fn names_of_command(
    database: &(dyn Database + '_),
    command: u64,
) -> Result<Vec<CheckName>, StoreError> {
    let names: Option<String> = database
        .query_row(
            "SELECT r.names FROM filter_check_commands c JOIN filter_check_runs r ON r.id = c.run
             WHERE c.command = $1",
            [command as i64],
            |r| r.get(0),
        )
        .optional()?;
    match names {
        Some(text) => parse_names(&text),
        None => Err(StoreError::Corrupt(format!("check_filter command {command} has no run"))),
    }
}

/// Keeps a device's `filter_checked` answer with the `check_filter` command it answers, when
/// the command went to that device (a device cannot answer another's check) and it has no
/// answer yet (the first one counts). Called as the event is ingested.
pub(super) fn keep_answer(
    tx: &Transaction<'_>,
    device: DeviceNumber,
    command: u64,
    results: &[NameVerdict],
    error: Option<&str>,
    received_at: &str,
) -> Result<(), StoreError> {
    let Ok(command) = i64::try_from(command) else { return Ok(()) };
    let results = serde_json::to_string(results).expect("verdicts always serialise");
    tx.execute(
        "UPDATE filter_check_commands SET answered_at = $3, results = $4, error = $5
         WHERE command = $1 AND device = $2 AND answered_at IS NULL",
        (command, device.get(), received_at, results, error),
    )?;
    Ok(())
}

type RunRow = (i64, String, String, String);

/// The runs of `rows` with their devices and answers.
fn runs_with_devices(
    database: &(dyn Database + '_),
    rows: Vec<RunRow>,
) -> Result<Vec<FilterCheckRun>, StoreError> {
    let mut statement = database.prepare(
        "SELECT command, device, answered_at, results, error FROM filter_check_commands
         WHERE run = $1 ORDER BY device",
    )?;
    let mut runs = Vec::new();
    for (id, started, by, names) in rows {
        let mut devices = Vec::new();
        let rows = statement.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (command, device, answered_at, results, error) = row?;
            let answer = match answered_at {
                None => None,
                Some(at) => Some(CheckAnswer {
                    answered_at: parse_db_time(&at)?,
                    results: serde_json::from_str(results.as_deref().unwrap_or("[]")).map_err(
                        |_| StoreError::Corrupt(format!("check answer of command {command}")),
                    )?,
                    error,
                }),
            };
            devices.push(CheckedDevice { command, device: device_number(device)?, answer });
        }
        runs.push(FilterCheckRun {
            id,
            started_at: parse_db_time(&started)?,
            started_by: by,
            names: parse_names(&names)?,
            devices,
        });
    }
    Ok(runs)
}

impl Store {
    /// Starts a built-in check: the run, and a `check_filter` command for each device that
    /// lives until `expires_at`; audited. Returns the run's id.
    pub fn start_filter_check(
        &self,
        devices: &[DeviceNumber],
        names: &[CheckName],
        by: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let names_json = serde_json::to_string(names).expect("check names always serialise");
        let connection = self.lock();
        let tx = connection.transaction()?;
        let run: i64 = tx.query_row(
            "INSERT INTO filter_check_runs (started_at, started_by, names) VALUES ($1, $2, $3)
             RETURNING id",
            (db_time(now), by, names_json),
            |r| r.get(0),
        )?;
        for device in devices {
            let command: i64 = tx.query_row(
                "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                (
                    device.get(),
                    CommandAction::CheckFilter.as_str(),
                    db_time(now),
                    db_time(expires_at),
                    by,
                ),
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO filter_check_commands (command, run, device) VALUES ($1, $2, $3)",
                (command, run, device.get()),
            )?;
        }
        let list: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
        let detail =
            format!("check {run}: devices {}; {} test names", list.join(", "), names.len());
        append_audit(&*tx, now, by, "started a filter check (check_filter)", Some(&detail), None)?;
        tx.commit()?;
        Ok(run)
    }

    /// The latest built-in checks, newest first, with their answers.
    pub fn filter_check_runs(&self, limit: u32) -> Result<Vec<FilterCheckRun>, StoreError> {
        let connection = self.lock();
        let rows: Vec<RunRow> = {
            let mut statement = connection.prepare(
                "SELECT id, started_at, started_by, names FROM filter_check_runs
                 ORDER BY id DESC LIMIT $1",
            )?;
            let rows = statement
                .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        runs_with_devices(&**connection, rows)
    }

    /// One built-in check with its answers, if it is kept.
    pub fn filter_check_run(&self, id: i64) -> Result<Option<FilterCheckRun>, StoreError> {
        let connection = self.lock();
        let row: Option<RunRow> = connection
            .query_row(
                "SELECT id, started_at, started_by, names FROM filter_check_runs WHERE id = $1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        Ok(runs_with_devices(&**connection, row.into_iter().collect())?.pop())
    }

    /// Records a termly check by `by`, with the built-in check `run` attached if given;
    /// audited. `None` when `run` is not a check that was started.
    pub fn record_filter_check(
        &self,
        check: &CheckRecord,
        run: Option<i64>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        if let Some(run) = run {
            let known: Option<i64> = tx
                .query_row("SELECT id FROM filter_check_runs WHERE id = $1", [run], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Ok(None);
            }
        }
        let outcome = if check.passed { "passed" } else { "problems_found" };
        let (checked_on, next_due, recorded_at) =
            (check.checked_on.to_string(), check.next_due.to_string(), db_time(now));
        let params: &[&dyn super::sql::ToSql] = &[
            &checked_on,
            &by,
            &check.what_checked,
            &outcome,
            &check.notes,
            &check.actions_taken,
            &next_due,
            &run,
            &recorded_at,
        ];
        let id: i64 = tx.query_row(
            "INSERT INTO filter_checks (checked_on, checked_by, what_checked, outcome, notes,
                                        actions_taken, next_due, run, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            params,
            |r| r.get(0),
        )?;
        let detail = format!(
            "check of {}: {}; next due {}",
            check.checked_on,
            outcome.replace('_', " "),
            check.next_due
        );
        append_audit(&*tx, now, by, "recorded a termly filter check", Some(&detail), None)?;
        tx.commit()?;
        Ok(Some(id))
    }

    /// Recorded checks, newest first (by the date of the check).
    pub fn filter_checks(&self, limit: u32) -> Result<Vec<FilterCheckRecord>, StoreError> {
        self.query_filter_checks("ORDER BY checked_on DESC, id DESC LIMIT $1", i64::from(limit))
    }

    /// One recorded check, if it is kept.
    pub fn filter_check(&self, id: i64) -> Result<Option<FilterCheckRecord>, StoreError> {
        Ok(self.query_filter_checks("WHERE id = $1", id)?.pop())
    }

    fn query_filter_checks(
        &self,
        rest: &str,
        param: i64,
    ) -> Result<Vec<FilterCheckRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!(
            "SELECT id, checked_on, checked_by, what_checked, outcome, notes, actions_taken,
                    next_due, run, recorded_at
             FROM filter_checks {rest}"
        ))?;
        let rows = statement.query_map([param], |r| {
            Ok((
                (r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                (r.get::<_, String>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?),
                (r.get::<_, String>(6)?, r.get::<_, String>(7)?, r.get::<_, Option<i64>>(8)?),
                r.get::<_, String>(9)?,
            ))
        })?;
        rows.map(|row| {
            let ((id, on, by), (what, outcome, notes), (actions, next, run), recorded) = row?;
            Ok(FilterCheckRecord {
                id,
                checked_on: parse_day(&on)?,
                checked_by: by,
                what_checked: what,
                passed: outcome == "passed",
                notes,
                actions_taken: actions,
                next_due: parse_day(&next)?,
                run,
                recorded_at: parse_db_time(&recorded)?,
            })
        })
        .collect()
    }
}
