//! The alerts outbox's rows: queued in the report's own transaction (a rule's alert in the
//! transaction of the events that fired it, an escalation in the check's), read when due,
//! marked per channel. When to try again is `alert_outbox`'s (the worker's) decision.

use super::classes::class_teacher_emails_in;
use super::ingest::NewReport;
use super::sql::{OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use crate::alert_rules::{Raised, RuleId};
use crate::notify::AlertAbout;
use chrono::{DateTime, Utc};

/// An alert waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxAlert {
    pub id: i64,
    pub about: AlertAbout,
    /// `None` only for a rule's alert.
    pub incident: Option<i64>,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
    pub pressed_at: DateTime<Utc>,
    pub from_block_page: bool,
    /// The account that recorded the incident by hand; `None` for a device's report.
    pub recorded_by: Option<String>,
    pub also_to: Vec<String>,
    pub email_done: bool,
    pub webhook_done: bool,
    /// Tries so far.
    pub attempts: u32,
}

/// Queues the alert for a report just stored, in the same transaction: the report is never
/// stored without its alert, nor the alert without its report.
pub(super) fn queue_alert(
    tx: &Transaction<'_>,
    report: &NewReport,
    received_at: &str,
) -> Result<(), StoreError> {
    let also_to: Vec<String> = match &report.pupil {
        None => Vec::new(),
        Some(pupil) => class_teacher_emails_in(&**tx, pupil.as_str())?,
    };
    insert_alert(
        tx,
        report.incident,
        Some(report.device.get()),
        report.pressed_at,
        report.from_block_page,
        None,
        &also_to,
        received_at,
    )
}

/// Queues the alert for an incident a member of staff recorded by hand, in its own
/// transaction, to the DSL's configured addresses only: the class teacher is not sent for, as
/// nobody waits at a held device.
pub(super) fn queue_recorded_alert(
    tx: &Transaction<'_>,
    incident: i64,
    device: Option<u16>,
    happened_at: DateTime<Utc>,
    recorded_by: &str,
    recorded_at: &str,
) -> Result<(), StoreError> {
    insert_alert(tx, incident, device, happened_at, false, Some(recorded_by), &[], recorded_at)
}

/// Queues a rule's alert for `device` to `also_to` besides the configured addresses, in the
/// transaction that stored the events that fired it (or the silent-device check's).
pub(super) fn queue_rule_alert(
    tx: &Transaction<'_>,
    rule: RuleId,
    device: u16,
    raised: &Raised,
    also_to: &[String],
    created_at: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO alert_outbox (kind, rule, rule_count, rule_first_at, device, pressed_at,
                                   from_block_page, also_to, created_at, next_attempt_at)
         VALUES ('rule', $1, $2, $3, $4, $5, 0, $6, $7, $7)",
        (
            rule.name(),
            i64::from(raised.count),
            db_time(raised.first_at),
            device,
            db_time(raised.at),
            serde_json::to_string(also_to)?,
            created_at,
        ),
    )?;
    Ok(())
}

/// An incident's escalation alert, if queued (searched by `alert_outbox_by_incident`).
pub(super) const ALREADY_ESCALATED: &str =
    "SELECT id FROM alert_outbox WHERE kind = 'escalation' AND incident = $1";

/// Queues the escalation of `incident` to `also_to` besides the configured addresses. Once per
/// incident: the outbox's unique index refuses a second, which is skipped.
pub(super) fn queue_escalation(
    tx: &Transaction<'_>,
    incident: i64,
    device: Option<u16>,
    pressed_at: DateTime<Utc>,
    also_to: &[String],
    created_at: &str,
) -> Result<usize, StoreError> {
    let already: Option<i64> =
        tx.query_row(ALREADY_ESCALATED, [incident], |r| r.get(0)).optional()?;
    if already.is_some() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO alert_outbox (kind, incident, device, pressed_at, from_block_page, also_to,
                                   created_at, next_attempt_at)
         VALUES ('escalation', $1, $2, $3, 0, $4, $5, $5)",
        (incident, device, db_time(pressed_at), serde_json::to_string(also_to)?, created_at),
    )
}

/// The time of the newest alert `rule` raised for `device`.
pub(super) fn last_rule_alert(
    tx: &Transaction<'_>,
    rule: RuleId,
    device: u16,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let newest: Option<String> = tx.query_row(
        "SELECT max(pressed_at) FROM alert_outbox
         WHERE kind = 'rule' AND rule = $1 AND device = $2",
        (rule.name(), device),
        |r| r.get(0),
    )?;
    newest.as_deref().map(parse_db_time).transpose()
}

#[allow(clippy::too_many_arguments)] // one per column
fn insert_alert(
    tx: &Transaction<'_>,
    incident: i64,
    device: Option<u16>,
    pressed_at: DateTime<Utc>,
    from_block_page: bool,
    recorded_by: Option<&str>,
    also_to: &[String],
    created_at: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO alert_outbox (incident, device, pressed_at, from_block_page, also_to,
                                   created_at, next_attempt_at, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        (
            incident,
            device,
            db_time(pressed_at),
            i64::from(from_block_page),
            serde_json::to_string(also_to)?,
            created_at,
            recorded_by,
        ),
    )?;
    Ok(())
}

impl Store {
    /// Up to `limit` alerts with a channel not yet done whose next try is due by `now`, oldest
    /// first.
    pub fn due_alerts(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxAlert>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT id, incident, device, pressed_at, from_block_page, also_to, email_done,
                    webhook_done, attempts, recorded_by, kind, rule, rule_count, rule_first_at,
                    (SELECT b.site FROM block_requests b WHERE b.id = alert_outbox.block_request),
                    (SELECT count(*) FROM block_request_asks k
                     WHERE k.request = alert_outbox.block_request)
             FROM alert_outbox
             WHERE (email_done = 0 OR webhook_done = 0) AND next_attempt_at <= $1
             ORDER BY next_attempt_at, id LIMIT $2",
        )?;
        let rows = statement.query_map((db_time(now), i64::from(limit)), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<String>>(9)?,
                (
                    r.get::<_, String>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                ),
                (r.get::<_, Option<String>>(14)?, r.get::<_, i64>(15)?),
            ))
        })?;
        rows.map(|row| {
            let (
                id,
                incident,
                device,
                pressed_at,
                block,
                also_to,
                email,
                webhook,
                attempts,
                by,
                (kind, rule, count, first_at),
                (site, asks),
            ) = row?;
            let about = match (kind.as_str(), rule, first_at) {
                ("report", _, _) => AlertAbout::Report,
                ("escalation", _, _) => AlertAbout::Escalation,
                ("rule", Some(rule), Some(first_at)) => AlertAbout::Rule {
                    rule,
                    count: u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX),
                    first_at: parse_db_time(&first_at)?,
                },
                // A request purged before its alert went: nothing left to say.
                ("block_request", _, _) => AlertAbout::BlockRequest {
                    site: site.unwrap_or_else(|| "(a request since removed)".into()),
                    asks: u32::try_from(asks).unwrap_or(u32::MAX),
                },
                (kind, _, _) => return Err(StoreError::Corrupt(format!("alert kind {kind:?}"))),
            };
            Ok(OutboxAlert {
                id,
                about,
                incident,
                device: device
                    .map(u16::try_from)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                pressed_at: parse_db_time(&pressed_at)?,
                from_block_page: block != 0,
                recorded_by: by,
                also_to: serde_json::from_str(&also_to)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                email_done: email != 0,
                webhook_done: webhook != 0,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            })
        })
        .collect()
    }

    /// Records a try at alert `id`: which channels are done now, and when to try the rest
    /// (with why the last try failed).
    pub fn alert_tried(
        &self,
        id: i64,
        email_done: bool,
        webhook_done: bool,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE alert_outbox SET email_done = $2, webhook_done = $3, next_attempt_at = $4,
                                     last_error = $5, attempts = attempts + 1
             WHERE id = $1",
            (id, i64::from(email_done), i64::from(webhook_done), db_time(next_attempt_at), error),
        )?;
        Ok(())
    }
}
