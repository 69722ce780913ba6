//! The retention schedule (seed 004: the school holds "the minimum personal data necessary ...
//! not for longer than necessary", and "the school 'retention schedule' supports this"): one
//! row per kind of record the server holds, each with its period and what that period is
//! counted from; the cut-offs and whether to purge at all as pure functions; and the job that
//! purges, once a day, what is past them.
//!
//! Seed 004 names no periods, so the defaults follow what UK schools use, the IRMS Information
//! Management Toolkit for Schools: safeguarding records kept far longer than logs. Each row
//! says why. IT may change any period in the config file (`[retention]`), never below the
//! row's minimum, which says what it protects.
//!
//! A purge cannot be undone, so it refuses when the server's clock looks wrong: later than the
//! newest time a device put on an event by more than [`CLOCK_SLACK`]. Devices keep their own
//! time (NTP, with evidence of it), so a server clock that jumped years ahead is seen at once
//! and stays seen until it is right again. During a long holiday with every device off the
//! purge waits too: that only keeps records a little longer.

use crate::incident::Action;
use crate::store::{Purged, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use std::fmt;

/// The kinds of record the server holds, as the schedule treats them. Everything the store
/// keeps about pupils and staff's actions falls in exactly one (a test keeps the events' kinds
/// and the incidents' classes whole); accounts, devices, classes, apps and lists are the
/// school's setup, kept while in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// Incidents (a press, or one recorded by hand) with their report, the DSL's case notes,
    /// their history and the press's raw event: the school's safeguarding record.
    Incidents,
    /// Incidents closed as a false alarm (a press by mistake; the DSL confirmed and said why).
    FalseAlarms,
    /// "Tell my teacher" messages from a blocked page, closed without being escalated or
    /// referred (one that was is an incident like any other).
    TellMyTeacher,
    /// Who had which device: sessions and their raw events, the apps opened in them, and the
    /// iPad register's lines.
    Sessions,
    /// The filtering log: every blocked look-up and page.
    FilteringLog,
    /// Acceptable use agreements accepted at sign-in.
    AupAcceptances,
    /// What devices say of themselves: starts, heartbeats, refused USB devices, a staff
    /// member's unlock (its note is kept in the incident's history).
    DeviceEvents,
    /// Filter bypass requests and site block requests, and the decisions on them.
    Bypasses,
    /// The termly filter checks recorded, and the built-in checks: their test names and each
    /// device's answer (kept with the check; the `filter_checked` event is a device event).
    FilterChecks,
    /// Alerts sent on every channel (the outbox keeps teachers' addresses); one still waiting
    /// to go is kept whatever its age.
    Alerts,
    /// What stops working at a time: staff sign-ins, recovery links, enrollment tokens and
    /// teacher commands (hashes, who asked; the audit log keeps what happened).
    Expired,
    /// The audit log: who saw which pupil's records and who changed what.
    Audit,
    /// A pupil marked as left: everything above about them except safeguarding incidents (and
    /// open ones), then their roster row once nothing refers to it.
    Leavers,
}

/// What a record's period is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasuredFrom {
    /// The last thing done on it (its closure, or a later note): an incident still open is
    /// never purged, whatever its age.
    LastChange,
    /// Its end (a session's sign-out, a register line's end, a bypass's end, a site block
    /// request's decision).
    End,
    /// When it happened (or was written).
    When,
    /// When the pupil was marked as left.
    Left,
    /// When it stopped working (a sign-in's last use).
    Expiry,
}

impl MeasuredFrom {
    pub fn words(self) -> &'static str {
        match self {
            MeasuredFrom::LastChange => "closure (the last change)",
            MeasuredFrom::End => "its end",
            MeasuredFrom::When => "when it happened",
            MeasuredFrom::Left => "leaving",
            MeasuredFrom::Expiry => "expiry (a sign-in's last use)",
        }
    }
}

/// One row of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub default_days: u32,
    /// The shortest period IT may set, and why (what a shorter one would break).
    pub min_days: u32,
    pub min_why: &'static str,
    pub from: MeasuredFrom,
}

/// The longest period anything may be given: a hundred years.
pub const MAX_DAYS: u32 = 36_525;

/// 25 years in days (with the six leap days in any 25 years).
const YEARS_25: u32 = 25 * 365 + 6;
/// Six years in days, with two leap days: never shorter than six calendar years.
const YEARS_6: u32 = 6 * 365 + 2;
/// Four years in days, with the leap day in any four years.
const YEARS_4: u32 = 4 * 365 + 1;

impl RecordType {
    pub const ALL: [RecordType; 13] = [
        RecordType::Incidents,
        RecordType::FalseAlarms,
        RecordType::TellMyTeacher,
        RecordType::Sessions,
        RecordType::FilteringLog,
        RecordType::AupAcceptances,
        RecordType::DeviceEvents,
        RecordType::Bypasses,
        RecordType::FilterChecks,
        RecordType::Alerts,
        RecordType::Expired,
        RecordType::Audit,
        RecordType::Leavers,
    ];

    /// Its key in the config file's `[retention]` table, in logs and in the audit log.
    pub fn key(self) -> &'static str {
        match self {
            RecordType::Incidents => "incidents",
            RecordType::FalseAlarms => "false_alarms",
            RecordType::TellMyTeacher => "tell_my_teacher",
            RecordType::Sessions => "sessions",
            RecordType::FilteringLog => "filtering_log",
            RecordType::AupAcceptances => "aup_acceptances",
            RecordType::DeviceEvents => "device_events",
            RecordType::Bypasses => "bypasses",
            RecordType::FilterChecks => "filter_checks",
            RecordType::Alerts => "alerts",
            RecordType::Expired => "expired",
            RecordType::Audit => "audit",
            RecordType::Leavers => "leavers",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).expect("every type is in ALL")
    }

    /// The schedule. README's table is a copy of this one (a test keeps them the same).
    pub fn rule(self) -> Rule {
        let rule =
            |default_days, min_days, min_why, from| Rule { default_days, min_days, min_why, from };
        match self {
            // IRMS: child protection files are kept until the child's date of birth + 25 years.
            // Slate holds no date of birth (data minimisation), so it counts 25 years from
            // closure, which is never shorter than that for any child. IT may lengthen it
            // (an inquiry's request to keep records, say), never shorten it.
            RecordType::Incidents => rule(
                YEARS_25,
                YEARS_25,
                "safeguarding records: IRMS, date of birth + 25 years, and Slate holds no date of birth",
                MeasuredFrom::LastChange,
            ),
            // A press by mistake is not a concern about a child, but the governors' termly
            // report counts it and the DSL's annual review reads the year's incidents.
            RecordType::FalseAlarms => rule(
                365,
                120,
                "the governors' termly report counts them",
                MeasuredFrom::LastChange,
            ),
            RecordType::TellMyTeacher => rule(
                365,
                120,
                "the governors' termly report counts them",
                MeasuredFrom::LastChange,
            ),
            // Seed 004: filtering and monitoring are reviewed at least once every academic
            // year; a concern raised late in the year still finds who had device 12 that day.
            RecordType::Sessions => rule(
                365,
                30,
                "a concern raised after a half-term holiday still finds who had the device",
                MeasuredFrom::End,
            ),
            RecordType::FilteringLog => rule(
                365,
                30,
                "a concern raised after a half-term holiday still finds the blocked look-ups",
                MeasuredFrom::When,
            ),
            RecordType::AupAcceptances => rule(
                365,
                30,
                "shows what a pupil agreed to around an incident",
                MeasuredFrom::When,
            ),
            // Only for IT's fault-finding; nothing in them names a pupil.
            RecordType::DeviceEvents => {
                rule(90, 7, "IT's fault-finding after a holiday week", MeasuredFrom::When)
            }
            // Seed 004: a bypass "should be auditable"; the annual filtering review reads them,
            // and the site block requests ("requests/approvals for filtering changes").
            RecordType::Bypasses => {
                rule(365, 30, "a concern about last month's bypass can still be checked", MeasuredFrom::End)
            }
            // Seed 004 and the DfE filtering and monitoring standards: checks are recorded, and
            // the record is the school's evidence to governors and inspectors that they were
            // done; IRMS keeps such records of the school's management for the current year
            // + 6. An inspection comes about every four years and asks for the checks since.
            RecordType::FilterChecks => rule(
                YEARS_6,
                YEARS_4,
                "an inspection, about every four years, asks for the checks since the last",
                MeasuredFrom::When,
            ),
            // The alert is not the record (the incident is); a month answers "did it go?".
            RecordType::Alerts => {
                rule(30, 7, "answers whether last week's alerts went", MeasuredFrom::When)
            }
            // Nothing to keep them for once they stopped working: the audit log says who signed
            // in, enrolled or sent a command. A teacher's page lists the last commands.
            RecordType::Expired => rule(
                30,
                1,
                "a teacher's page still lists today's commands",
                MeasuredFrom::Expiry,
            ),
            // IRMS keeps most school records for the current year + 6 (the Limitation Act
            // 1980's six years for a claim); the audit log is the evidence of who saw what.
            RecordType::Audit => rule(
                YEARS_6,
                365,
                "must cover at least a year of the records it audits",
                MeasuredFrom::When,
            ),
            // IRMS: a primary school passes a leaver's record to the next school and keeps no
            // copy. Three months cover the summer holiday and the first half term, when the
            // next school's DSL asks about a child, and undo a pupil marked as left by mistake.
            RecordType::Leavers => rule(
                90,
                30,
                "a pupil marked as left by mistake can be brought back",
                MeasuredFrom::Left,
            ),
        }
    }

    /// What it holds, in README's words.
    pub fn what(self) -> &'static str {
        match self {
            RecordType::Incidents => {
                "incidents (a press, or recorded by hand) with the report, the DSL's case notes, the history and the press's event"
            }
            RecordType::FalseAlarms => "incidents closed as a false alarm",
            RecordType::TellMyTeacher => {
                "\"tell my teacher\" messages from a blocked page, closed without being escalated or referred"
            }
            RecordType::Sessions => {
                "sessions (who had which device, the apps opened) and the iPad register's lines"
            }
            RecordType::FilteringLog => "the filtering log: blocked look-ups and pages",
            RecordType::AupAcceptances => "acceptable use agreements accepted at sign-in",
            RecordType::DeviceEvents => {
                "what devices say of themselves: starts, heartbeats, refused USB devices, unlocks"
            }
            RecordType::Bypasses => {
                "filter bypass requests and site block requests (a waiting one is kept), and the decisions on them"
            }
            RecordType::FilterChecks => {
                "the termly filter checks recorded, and the built-in checks' test names and each device's answers"
            }
            RecordType::Alerts => {
                "alerts sent on every channel (they keep teachers' addresses); one still waiting is kept"
            }
            RecordType::Expired => {
                "staff sign-ins, recovery links, enrollment tokens and teacher commands that stopped working"
            }
            RecordType::Audit => "the audit log: who saw and who changed what",
            RecordType::Leavers => {
                "a leaver's records of every type above but safeguarding incidents and open ones, then their roster row once nothing refers to it"
            }
        }
    }

    /// The raw event kinds that are records of this type. `report_filed` is in none: a press's
    /// event goes with its incident.
    pub fn event_kinds(self) -> &'static [&'static str] {
        match self {
            RecordType::Sessions => &["session_started", "session_ended", "app_opened"],
            RecordType::FilteringLog => &["filter_blocked"],
            RecordType::AupAcceptances => &["aup_accepted"],
            RecordType::DeviceEvents => {
                &["hello", "heartbeat", "device_refused", "report_resolved"]
            }
            _ => &[],
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The raw event kinds that name a pupil and are not a press: what a leaver's purge takes.
pub const PUPIL_EVENT_KINDS: [&str; 5] =
    ["session_started", "session_ended", "app_opened", "filter_blocked", "aup_accepted"];

/// The origins a report can have (the `reports.origin` column).
pub const REPORT_ORIGINS: [&str; 3] = ["button", "block_page", "recorded"];

/// Which record type a closed incident is, from its report's origin and its action. Pure.
/// Escalated or referred, it is a safeguarding incident whatever filed it; otherwise a false
/// alarm is a false alarm, a "tell my teacher" message is a message, and any other press or
/// recorded incident is a safeguarding incident.
pub fn incident_record_type(origin: &str, action: Action) -> RecordType {
    match action {
        Action::Escalated | Action::Referred => RecordType::Incidents,
        Action::FalseAlarm => RecordType::FalseAlarms,
        Action::AppClosed | Action::SiteBlockRequested if origin == "block_page" => {
            RecordType::TellMyTeacher
        }
        Action::AppClosed | Action::SiteBlockRequested => RecordType::Incidents,
    }
}

/// The periods in force: the defaults, or what IT set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    days: [u32; RecordType::ALL.len()],
}

impl Default for Schedule {
    fn default() -> Self {
        Self { days: RecordType::ALL.map(|t| t.rule().default_days) }
    }
}

/// The record types the old single `retention_days` covered, before the schedule: everything
/// but safeguarding incidents (which that period could purge years too early), bypasses and
/// expired sign-ins, tokens and commands (never purged then), filter checks and leavers (new).
const SINGLE_PERIOD_COVERS: [RecordType; 8] = [
    RecordType::FalseAlarms,
    RecordType::TellMyTeacher,
    RecordType::Sessions,
    RecordType::FilteringLog,
    RecordType::AupAcceptances,
    RecordType::DeviceEvents,
    RecordType::Alerts,
    RecordType::Audit,
];

impl Schedule {
    pub fn days(&self, record: RecordType) -> u32 {
        self.days[record.index()]
    }

    /// Sets one period, checked: a whole number of days from the type's minimum to
    /// [`MAX_DAYS`]. The error is for IT, without the field's name.
    pub fn set(&mut self, record: RecordType, days: i64) -> Result<(), String> {
        let rule = record.rule();
        match u32::try_from(days) {
            Ok(days) if (rule.min_days..=MAX_DAYS).contains(&days) => {
                self.days[record.index()] = days;
                Ok(())
            }
            Ok(days) if days > MAX_DAYS => {
                Err(format!("{days} days is more than {MAX_DAYS} (a hundred years)"))
            }
            _ => Err(format!(
                "{days} days is shorter than the minimum, {} days ({})",
                rule.min_days, rule.min_why
            )),
        }
    }

    /// The old single `retention_days = N` (from 30 to 3650): N days for every type it covered
    /// then ([`SINGLE_PERIOD_COVERS`]), each raised to its minimum where N is shorter (the
    /// audit log's year, say); the other types keep their defaults.
    pub fn from_single_period(days: u32) -> Self {
        let mut schedule = Self::default();
        for record in SINGLE_PERIOD_COVERS {
            schedule.days[record.index()] = days.clamp(record.rule().min_days, MAX_DAYS);
        }
        schedule
    }

    /// Each type's cut-off at `now`: its records from before it are purged.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        Cutoffs { at: RecordType::ALL.map(|t| cutoff(now, self.days(t))) }
    }
}

/// Records from before this instant are purged.
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(retention_days.into())
}

/// Each record type's cut-off for one purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    at: [DateTime<Utc>; RecordType::ALL.len()],
}

impl Cutoffs {
    /// The same cut-off for every type (tests of the store).
    pub fn uniform(at: DateTime<Utc>) -> Self {
        Self { at: [at; RecordType::ALL.len()] }
    }

    pub fn of(&self, record: RecordType) -> DateTime<Utc> {
        self.at[record.index()]
    }
}

/// How far the server's clock may be ahead of the newest event before a purge is refused.
pub const CLOCK_SLACK: Duration = Duration::days(1);

/// How many rows one purge statement takes at most (the job comes back for the rest).
pub const MAX_ROWS_PER_RUN: u32 = 10_000;

/// How often the purge runs.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// How soon it runs again when a statement was at its cap.
pub const PURGE_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether to purge, and up to when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeDecision {
    Purge {
        cutoffs: Cutoffs,
    },
    /// The clock is later than the newest event by more than [`CLOCK_SLACK`].
    ClockLooksWrong {
        now: DateTime<Utc>,
        newest: DateTime<Utc>,
    },
    /// No event at all: nothing to check the clock against, and nothing much to purge.
    NoEvents,
}

/// Decides from the server's clock and the newest event's time. Pure.
pub fn decide(
    now: DateTime<Utc>,
    newest_event: Option<DateTime<Utc>>,
    schedule: &Schedule,
) -> PurgeDecision {
    match newest_event {
        None => PurgeDecision::NoEvents,
        Some(newest) if now - newest > CLOCK_SLACK => {
            PurgeDecision::ClockLooksWrong { now, newest }
        }
        Some(_) => PurgeDecision::Purge { cutoffs: schedule.cutoffs(now) },
    }
}

/// One run of the purge at `now` (the server's clock): at most `max_rows` of each kind of row.
/// A run that purged anything is in the audit log as the `system` actor with its counts per
/// record type (never whose), and so is a refusal. Returns what was purged (`None`: refused).
pub fn purge_once(
    store: &Store,
    now: DateTime<Utc>,
    schedule: &Schedule,
    max_rows: u32,
) -> Result<Option<Purged>, StoreError> {
    match decide(now, store.newest_event_at()?, schedule) {
        PurgeDecision::Purge { cutoffs } => {
            let purged = store.purge(&cutoffs, max_rows)?;
            if purged.total() > 0 {
                let detail = purged.to_string();
                store.audit(now, "system", "purged old records", None, Some(&detail))?;
            }
            Ok(Some(purged))
        }
        PurgeDecision::ClockLooksWrong { now, newest } => {
            let detail = format!(
                "the server's clock ({now}) is more than a day after the newest event ({newest})"
            );
            tracing::error!(%now, %newest, "retention purge refused: the server's clock looks wrong");
            store.audit(now, "system", "refused to purge old records", None, Some(&detail))?;
            Ok(None)
        }
        PurgeDecision::NoEvents => Ok(None),
    }
}

/// Purges once now and then every [`PURGE_EVERY`] (sooner while a kind of row was at its cap),
/// until the task is dropped or aborted. Logs the counts per record type, nothing personal.
pub fn spawn_purge_job(store: Store, schedule: Schedule) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let run = schedule.clone();
            let result =
                store.run(move |store| purge_once(store, Utc::now(), &run, MAX_ROWS_PER_RUN)).await;
            let wait = match result {
                Ok(Some(purged)) => {
                    tracing::info!(rows = purged.total(), per_type = %purged, "retention purge");
                    if purged.at_cap {
                        PURGE_AGAIN
                    } else {
                        PURGE_EVERY
                    }
                }
                Ok(None) => PURGE_EVERY,
                Err(error) => {
                    tracing::error!(%error, "retention purge failed; will try again");
                    PURGE_EVERY
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use slate_protocol::{Event, EventBody, PupilId, SessionEndReason, SessionId};
    use RecordType::*;

    #[test]
    fn the_cutoff_is_the_period_before_now() {
        let now: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().unwrap();
        let cases = [
            (1, "2026-11-16T10:00:00Z"),
            (365, "2025-11-17T10:00:00Z"),
            (0, "2026-11-17T10:00:00Z"),
            (YEARS_25, "2001-11-17T10:00:00Z"),
        ];
        for (days, expected) in cases {
            assert_eq!(cutoff(now, days), expected.parse::<DateTime<Utc>>().unwrap(), "{days}");
        }
    }

    /// The schedule as a table: (type, default days, minimum days, counted from).
    #[test]
    fn the_schedule() {
        use MeasuredFrom::*;
        let expected = [
            (Incidents, 9131, 9131, LastChange),
            (FalseAlarms, 365, 120, LastChange),
            (TellMyTeacher, 365, 120, LastChange),
            (Sessions, 365, 30, End),
            (FilteringLog, 365, 30, When),
            (AupAcceptances, 365, 30, When),
            (DeviceEvents, 90, 7, When),
            (Bypasses, 365, 30, End),
            (FilterChecks, 2192, 1461, When),
            (Alerts, 30, 7, When),
            (Expired, 30, 1, Expiry),
            (Audit, 2192, 365, When),
            (Leavers, 90, 30, Left),
        ];
        let actual: Vec<_> = RecordType::ALL
            .iter()
            .map(|t| (*t, t.rule().default_days, t.rule().min_days, t.rule().from))
            .collect();
        assert_eq!(actual, expected);
        for t in RecordType::ALL {
            assert!(t.rule().min_days <= t.rule().default_days, "{t}");
            assert!(t.rule().min_days > 0, "{t}");
        }
        // Safeguarding records outlast every log, and a leaver's logs go before an on-roll
        // pupil's.
        let schedule = Schedule::default();
        let longest_log = RecordType::ALL.iter().filter(|t| **t != Incidents);
        assert!(longest_log.map(|t| schedule.days(*t)).all(|d| d < schedule.days(Incidents)));
        assert!(schedule.days(Leavers) < schedule.days(Sessions));
        let now = at("2026-11-17T10:00:00Z");
        let cutoffs = schedule.cutoffs(now);
        assert_eq!(cutoffs.of(Incidents), at("2001-11-17T10:00:00Z"));
        // Six years with two leap days: never shorter than six years.
        assert_eq!(cutoffs.of(Audit), at("2020-11-16T10:00:00Z"));
        assert_eq!(cutoffs.of(Leavers), at("2026-08-19T10:00:00Z"));
    }

    /// README's copy of the schedule.
    fn readme_table() -> String {
        let mut table = String::from(
            "| `[retention]` key | what | days kept | counted from | shortest allowed, and why |\n\
             |---|---|---|---|---|\n",
        );
        for t in RecordType::ALL {
            let rule = t.rule();
            table.push_str(&format!(
                "| `{}` | {} | {} | {} | {}: {} |\n",
                t.key(),
                t.what(),
                rule.default_days,
                rule.from.words(),
                rule.min_days,
                rule.min_why
            ));
        }
        table
    }

    #[test]
    fn readme_holds_the_schedule() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let table = readme_table();
        assert!(readme.contains(&table), "README.md should hold this table:\n{table}");
    }

    #[test]
    fn each_closed_incident_has_one_record_type() {
        use Action::*;
        let cases = [
            ("button", AppClosed, Incidents),
            ("button", SiteBlockRequested, Incidents),
            ("button", Escalated, Incidents),
            ("button", Referred, Incidents),
            ("button", FalseAlarm, FalseAlarms),
            ("recorded", AppClosed, Incidents),
            ("recorded", FalseAlarm, FalseAlarms),
            ("recorded", Referred, Incidents),
            ("block_page", AppClosed, TellMyTeacher),
            ("block_page", SiteBlockRequested, TellMyTeacher),
            ("block_page", Escalated, Incidents),
            ("block_page", Referred, Incidents),
            ("block_page", FalseAlarm, FalseAlarms),
        ];
        for (origin, action, expected) in cases {
            assert_eq!(incident_record_type(origin, action), expected, "{origin} {action:?}");
        }
    }

    #[test]
    fn every_event_kind_but_a_press_is_in_exactly_one_type() {
        let kinds = [
            "hello",
            "heartbeat",
            "session_started",
            "session_ended",
            "report_resolved",
            "aup_accepted",
            "app_opened",
            "filter_blocked",
            "device_refused",
        ];
        for kind in kinds {
            let types: Vec<_> =
                RecordType::ALL.into_iter().filter(|t| t.event_kinds().contains(&kind)).collect();
            assert_eq!(types.len(), 1, "{kind}: {types:?}");
        }
        assert!(RecordType::ALL.iter().all(|t| !t.event_kinds().contains(&"report_filed")));
        let listed: usize = RecordType::ALL.iter().map(|t| t.event_kinds().len()).sum();
        assert_eq!(listed, kinds.len());
        for kind in PUPIL_EVENT_KINDS {
            assert!(kinds.contains(&kind), "{kind}");
        }
    }

    #[test]
    fn a_period_is_checked_against_its_minimum() {
        let cases: [(RecordType, i64, Result<u32, &str>); 8] = [
            (Sessions, 30, Ok(30)),
            (Sessions, 29, Err("29 days is shorter than the minimum, 30 days")),
            (Sessions, 0, Err("0 days is shorter than the minimum, 30 days")),
            (Sessions, -1, Err("-1 days is shorter than the minimum")),
            (Incidents, 9130, Err("shorter than the minimum, 9131 days (safeguarding")),
            (Incidents, 12_000, Ok(12_000)),
            (Audit, 36_525, Ok(36_525)),
            (Audit, 36_526, Err("36526 days is more than 36525")),
        ];
        for (record, days, expected) in cases {
            let mut schedule = Schedule::default();
            match (schedule.set(record, days), expected) {
                (Ok(()), Ok(set)) => assert_eq!(schedule.days(record), set),
                (Err(e), Err(text)) => {
                    assert!(e.contains(text), "{record} {days}: {e}");
                    assert_eq!(schedule, Schedule::default(), "unchanged");
                }
                (got, _) => panic!("{record} {days}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_old_single_period_maps_onto_the_logs_never_below_their_minimum() {
        let old = Schedule::from_single_period(30);
        let defaults = Schedule::default();
        let cases = [
            (Incidents, defaults.days(Incidents)),
            (FalseAlarms, 120),
            (TellMyTeacher, 120),
            (Sessions, 30),
            (FilteringLog, 30),
            (AupAcceptances, 30),
            (DeviceEvents, 30),
            (Bypasses, defaults.days(Bypasses)),
            (FilterChecks, defaults.days(FilterChecks)),
            (Alerts, 30),
            (Expired, defaults.days(Expired)),
            (Audit, 365),
            (Leavers, defaults.days(Leavers)),
        ];
        for (record, days) in cases {
            assert_eq!(old.days(record), days, "{record}");
        }
        let long = Schedule::from_single_period(1095);
        assert_eq!((long.days(Sessions), long.days(Audit)), (1095, 1095));
        assert_eq!(long.days(Incidents), YEARS_25, "safeguarding records keep their own");
    }

    #[test]
    fn a_clock_more_than_a_day_past_the_newest_event_refuses() {
        let newest = at("2026-11-17T10:00:00Z");
        let schedule = Schedule::default();
        let cases = [
            ("2026-11-17T12:00:00Z", true),
            ("2026-11-18T10:00:00Z", true),
            ("2026-11-18T10:00:01Z", false),
            ("2031-11-17T10:00:00Z", false),
            // A server behind its devices purges less, never more.
            ("2026-11-10T10:00:00Z", true),
        ];
        for (now, purges) in cases {
            let decision = decide(at(now), Some(newest), &schedule);
            match decision {
                PurgeDecision::Purge { cutoffs } => {
                    assert!(purges, "{now}: {decision:?}");
                    assert_eq!(cutoffs, schedule.cutoffs(at(now)));
                }
                PurgeDecision::ClockLooksWrong { .. } => assert!(!purges, "{now}: {decision:?}"),
                PurgeDecision::NoEvents => panic!("{now}: {decision:?}"),
            }
        }
        assert_eq!(decide(newest, None, &schedule), PurgeDecision::NoEvents);
    }

    fn closed_session(at_: &str) -> Event {
        Event::new(
            device(12),
            at(at_),
            EventBody::SessionEnded {
                session: SessionId::new(),
                pupil: PupilId::new("p-1").unwrap(),
                started_at: at(at_) - Duration::hours(1),
                reason: SessionEndReason::SignedOut,
            },
        )
    }

    fn count(store: &Store, table: &str) -> i64 {
        count_rows(store, &format!("SELECT count(*) FROM {table}"))
    }

    #[test]
    fn a_clock_moved_years_ahead_purges_nothing_and_says_so() {
        let (_dir, store) = store_with_device(12);
        let events =
            [closed_session("2026-01-10T10:00:00Z"), closed_session("2026-11-17T10:00:00Z")];
        store.ingest_reporting(device(12), &events, at("2026-11-17T10:00:01Z")).unwrap();
        let before = (count(&store, "events"), count(&store, "sessions"));

        // The server's clock jumps five years ahead: with a year's retention everything would go.
        let jumped = at("2031-11-17T10:00:00Z");
        let year = Schedule::from_single_period(365);
        assert_eq!(purge_once(&store, jumped, &year, MAX_ROWS_PER_RUN).unwrap(), None);
        assert_eq!((count(&store, "events"), count(&store, "sessions")), before);
        let refusals = count_rows(
            &store,
            "SELECT count(*) FROM audit_log WHERE action = 'refused to purge old records'",
        );
        assert_eq!(refusals, 1);

        // The clock right again: only what is really past the period goes, and the run is
        // audited with its counts per record type.
        let right = at("2026-11-17T12:00:00Z");
        let shorter = Schedule::from_single_period(300);
        let purged = purge_once(&store, right, &shorter, MAX_ROWS_PER_RUN).unwrap().unwrap();
        assert_eq!(purged.nonzero(), [(Sessions, 2)], "the session and its event");
        assert_eq!(count(&store, "sessions"), 1);
        let entries = store.audit_log(10).unwrap();
        let run = entries.iter().find(|e| e.action == "purged old records").unwrap();
        assert_eq!(run.detail.as_deref(), Some("sessions 2"));
    }
}
