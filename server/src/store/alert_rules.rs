//! The alert rules' records (`crate::alert_rules` decides): the DSL's settings, one JSON value
//! in the settings table, changed with its audit entry in one transaction; the rules run on the
//! events a batch newly stored, in the batch's own transaction (stored with their alerts or not
//! at all); the silent-device check and the escalation of unacknowledged incidents, run by the
//! monitoring job with the time it is given. The silent-device check first asks
//! `crate::clock_guard` whether the server's clock may be believed, keeping each check's clock
//! reading in the settings table (`silence_check_clock`).

use super::alert_outbox::{last_rule_alert, queue_escalation, queue_rule_alert};
use super::settings::set_setting_in;
use super::sql::{Database, OptionalExtension, Transaction};
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::alert_rules::{
    decide_events, escalations, event_kinds, rule_for, silent_alert_due, AlertSettings,
    OpenIncident, Raised, RuleId, ESCALATE_NO_OLDER_THAN,
};
use crate::clock_guard::{self, ClockReading, ClockVerdict, GuardState};
use chrono::{DateTime, Duration, Utc};
use slate_protocol::{DeviceNumber, Event, EventBody};
use std::collections::BTreeMap;

/// The settings key of the DSL's alert settings.
pub const ALERT_SETTINGS: &str = "alert_rules";
/// The settings key of the last silence check's clock reading (`clock_guard::GuardState`).
const SILENCE_CHECK_CLOCK: &str = "silence_check_clock";

/// The open incidents the escalation check weighs, each with its escalation alert if queued.
/// Run every minute while the writing connection is held: the outbox is searched by
/// `alert_outbox_by_incident` (migration 0027), never scanned once per incident.
const OPEN_INCIDENTS: &str = "SELECT i.id, r.device, r.pressed_at, i.created_at, r.origin,
        (SELECT a.id FROM alert_outbox a WHERE a.kind = 'escalation' AND a.incident = i.id)
     FROM incidents i JOIN reports r ON r.event_id = i.report_id
     WHERE i.status = 'new' AND i.created_at >= $1
     ORDER BY i.id";

/// Judges the server's clock for this silence check from the last one's reading, keeps this
/// one's, and logs a jump once (times only: nothing about devices or people).
fn clock_trusted(tx: &Transaction<'_>, clock: &ClockReading) -> Result<bool, StoreError> {
    let stored: Option<String> = tx
        .query_row("SELECT value FROM settings WHERE key = $1", [SILENCE_CHECK_CLOCK], |r| r.get(0))
        .optional()?;
    // A damaged reading is no evidence: the next check compares with this one.
    let previous: Option<GuardState> = stored.and_then(|text| serde_json::from_str(&text).ok());
    let (verdict, kept) = clock_guard::judge(previous.as_ref(), clock);
    set_setting_in(tx, SILENCE_CHECK_CLOCK, &serde_json::to_string(&kept)?)?;
    match verdict {
        ClockVerdict::Jumped { jump, newly_suspect: true } => tracing::warn!(
            jump_s = jump.seconds,
            now = %clock.wall,
            "the server's clock jumped against its boot clock: no silent-device alerts until it \
             has kept time for two hours"
        ),
        ClockVerdict::Settled => {
            tracing::info!(now = %clock.wall, "the server's clock kept time: silent-device alerts resume")
        }
        _ => {}
    }
    Ok(verdict.trusted())
}

fn settings_in(database: &dyn Database) -> Result<AlertSettings, StoreError> {
    let stored: Option<String> = database
        .query_row("SELECT value FROM settings WHERE key = $1", [ALERT_SETTINGS], |r| r.get(0))
        .optional()?;
    Ok(AlertSettings::from_json(stored.as_deref()))
}

/// Runs the event rules on the events of `device` this batch newly stored; queues each alert
/// they raise. Returns how many.
pub(super) fn evaluate_on_ingest(
    tx: &Transaction<'_>,
    device: DeviceNumber,
    stored: &[&Event],
    received_at: &str,
) -> Result<usize, StoreError> {
    let mut new: BTreeMap<RuleId, Vec<DateTime<Utc>>> = BTreeMap::new();
    for event in stored {
        if let Some(rule) = rule_for(&event.body) {
            new.entry(rule).or_default().push(event.at);
        }
    }
    if new.is_empty() {
        return Ok(0);
    }
    let settings = settings_in(&**tx)?;
    let mut queued = 0;
    let mut leaders: Option<Vec<String>> = None;
    for (rule, mut times) in new {
        let setting = settings.rule(rule);
        if !setting.on {
            continue;
        }
        times.sort();
        let window = Duration::minutes(i64::from(setting.window_minutes.max(1)));
        let last = last_rule_alert(tx, rule, device.get())?;
        // Every new event within a window of the last alert: nothing to count.
        if last.is_some_and(|l| times.iter().all(|t| *t < l + window)) {
            continue;
        }
        let history = if setting.threshold <= 1 {
            times.clone()
        } else {
            let (first, newest) = (times[0], times[times.len() - 1]);
            matching_events(tx, rule, device, first - window, newest)?
        };
        for raised in decide_events(&setting, &times, &history, last) {
            let also_to = match rule.rule().breach {
                true => match &leaders {
                    Some(leaders) => leaders.clone(),
                    None => leaders.insert(senior_leaders(&**tx, &settings)?).clone(),
                },
                false => Vec::new(),
            };
            queue_rule_alert(tx, rule, device.get(), &raised, &also_to, received_at)?;
            tracing::info!(%device, rule = rule.name(), count = raised.count, "alert rule fired");
            queued += 1;
        }
    }
    Ok(queued)
}

/// The times of `device`'s stored events that `rule` counts, after `after` up to `until`,
/// oldest first.
fn matching_events(
    tx: &Transaction<'_>,
    rule: RuleId,
    device: DeviceNumber,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let mut times = Vec::new();
    for kind in event_kinds(rule) {
        let mut statement = tx.prepare_cached(
            "SELECT at, body FROM events
             WHERE device = $1 AND kind = $2 AND at > $3 AND at <= $4",
        )?;
        let rows = statement
            .query_map((device.get(), *kind, db_time(after), db_time(until)), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
        for row in rows {
            let (at, body) = row?;
            // A body this server cannot read is not counted (it was checked on arrival).
            let counts = serde_json::from_str::<EventBody>(&body)
                .is_ok_and(|body| rule_for(&body) == Some(rule));
            if counts {
                times.push(parse_db_time(&at)?);
            }
        }
    }
    times.sort();
    Ok(times)
}

/// A rule's alert, as the DSL's settings page lists the recent ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAlertRecord {
    pub rule: String,
    pub device: Option<u16>,
    pub at: DateTime<Utc>,
    pub count: u32,
    /// Every channel has taken it.
    pub sent: bool,
}

impl Store {
    /// The DSL's alert settings (the defaults until changed).
    pub fn alert_settings(&self) -> Result<AlertSettings, StoreError> {
        settings_in(&**self.lock())
    }

    /// Replaces the alert settings and writes the audit entry naming what changed, in one
    /// transaction. Returns what changed (`None`: nothing, and nothing is written).
    pub fn set_alert_settings(
        &self,
        settings: &AlertSettings,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.immediate(|tx| {
            let before = settings_in(&**tx)?;
            let Some(changes) = crate::alert_rules::describe_changes(&before, settings) else {
                return Ok(None);
            };
            set_setting_in(tx, ALERT_SETTINGS, &settings.to_json())?;
            append_audit(&**tx, now, actor, "changed alert rules", None, Some(&changes))?;
            Ok(Some(changes))
        })
    }

    /// The newest `limit` alerts the rules raised, newest first.
    pub fn rule_alerts(&self, limit: u32) -> Result<Vec<RuleAlertRecord>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT rule, device, pressed_at, rule_count, email_done = 1 AND webhook_done = 1
             FROM alert_outbox WHERE kind = 'rule'
             ORDER BY pressed_at DESC, id DESC LIMIT $1",
        )?;
        let rows = statement.query_map([limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<u16>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (rule, device, at, count, sent) = row?;
            Ok(RuleAlertRecord {
                rule,
                device,
                at: parse_db_time(&at)?,
                count: u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX),
                sent,
            })
        })
        .collect()
    }

    /// Queues a silent-device alert for each enrolled device (not revoked) silent for the
    /// rule's days by the `clock`'s wall time and not alerted for this silence yet. Returns
    /// how many: none while the clock is suspect (`clock_guard`).
    pub fn check_silent_devices(&self, clock: &ClockReading) -> Result<usize, StoreError> {
        let now = clock.wall;
        self.immediate(|tx| {
            if !clock_trusted(tx, clock)? {
                return Ok(0);
            }
            let settings = settings_in(&**tx)?;
            let setting = settings.rule(RuleId::DeviceSilent);
            if !setting.on {
                return Ok(0);
            }
            let cutoff = now - Duration::days(i64::from(setting.threshold.max(1)));
            let silent: Vec<(u16, String, Option<String>)> = {
                let mut statement = tx.prepare_cached(
                    "SELECT d.number, d.last_seen_at,
                            (SELECT max(a.pressed_at) FROM alert_outbox a
                             WHERE a.kind = 'rule' AND a.rule = $2 AND a.device = d.number)
                     FROM devices d
                     WHERE d.revoked_at IS NULL AND d.last_seen_at IS NOT NULL
                       AND d.last_seen_at <= $1
                     ORDER BY d.number",
                )?;
                let rows = statement
                    .query_map((db_time(cutoff), RuleId::DeviceSilent.name()), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                rows.collect::<Result<_, _>>()?
            };
            let created_at = db_time(now);
            let mut queued = 0;
            for (device, last_seen, alerted) in silent {
                let last_seen = parse_db_time(&last_seen)?;
                let alerted = alerted.as_deref().map(parse_db_time).transpose()?;
                if !silent_alert_due(&setting, Some(last_seen), alerted, now) {
                    continue;
                }
                let days = u32::try_from((now - last_seen).num_days()).unwrap_or(u32::MAX);
                // The alert is keyed by the last contact: one per silence.
                let raised = Raised { at: last_seen, first_at: last_seen, count: days };
                queue_rule_alert(tx, RuleId::DeviceSilent, device, &raised, &[], &created_at)?;
                tracing::info!(device, days, "alert rule fired: device silent");
                queued += 1;
            }
            Ok(queued)
        })
    }

    /// Queues the escalation of each incident [`escalations`] picks by `now`, once each, to the
    /// enabled deputy DSL accounts' addresses and those the DSL gave (besides the configured
    /// ones, which every alert goes to). Returns how many.
    pub fn escalate_unacknowledged(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.immediate(|tx| {
            let settings = settings_in(&**tx)?;
            type Row = (i64, Option<u16>, String, String, String, Option<i64>);
            let open: Vec<Row> = {
                let mut statement = tx.prepare_cached(OPEN_INCIDENTS)?;
                let rows = statement.query_map([db_time(now - ESCALATE_NO_OLDER_THAN)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let mut candidates = Vec::new();
            let mut reports = BTreeMap::new();
            for (incident, device, pressed_at, created_at, origin, escalated) in open {
                candidates.push(OpenIncident {
                    incident,
                    created_at: parse_db_time(&created_at)?,
                    unacknowledged: true,
                    from_button: origin == "button",
                    escalated: escalated.is_some(),
                });
                reports.insert(incident, (device, pressed_at));
            }
            let due = escalations(
                &candidates,
                settings.escalate_after_minutes,
                settings.escalation_hours(),
                now,
            );
            if due.is_empty() {
                return Ok(0);
            }
            let also_to = senior_leaders(&**tx, &settings)?;
            let created_at = db_time(now);
            let mut queued = 0;
            for incident in due {
                let (device, pressed_at) = &reports[&incident];
                let pressed_at = parse_db_time(pressed_at)?;
                queued +=
                    queue_escalation(tx, incident, *device, pressed_at, &also_to, &created_at)?;
                tracing::info!(incident, "unacknowledged incident escalated");
            }
            Ok(queued)
        })
    }
}

/// Whom an escalation, or a breach rule's alert, goes to besides the configured addresses (the
/// DSL's): the enabled deputy DSL accounts' addresses and those the DSL gave (the head, say).
fn senior_leaders(
    database: &dyn Database,
    settings: &AlertSettings,
) -> Result<Vec<String>, StoreError> {
    let mut statement = database.prepare_cached(
        "SELECT DISTINCT email FROM staff
         WHERE role = 'deputy_dsl' AND email IS NOT NULL AND disabled_at IS NULL
         ORDER BY email",
    )?;
    let mut addresses: Vec<String> =
        statement.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for address in &settings.escalate_to {
        if !addresses.contains(address) {
            addresses.push(address.clone());
        }
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::alert_rules::RuleSetting;
    use slate_protocol::{FilterLayer, RefusedDevice};

    fn blocked(at_: &str, list: &str) -> Event {
        Event::new(
            device(12),
            at(at_),
            EventBody::FilterBlocked {
                session: None,
                pupil: None,
                layer: FilterLayer::Dns,
                target: "doh.example".into(),
                rule: "exact:doh.example".into(),
                list: list.into(),
            },
        )
    }

    fn rule_rows(store: &Store) -> Vec<(String, i64, String, i64)> {
        let connection = store.lock();
        let mut statement = connection
            .prepare(
                "SELECT rule, device, pressed_at, rule_count FROM alert_outbox
                 WHERE kind = 'rule' ORDER BY id",
            )
            .unwrap();
        let rows =
            statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// The checks that run every minute on the writing connection find an incident's alerts
    /// by index: scanning the outbox once per open incident held staff pages up for a minute
    /// at a time on a big school's database (slate-bench dsl-pages).
    #[test]
    fn the_escalation_check_searches_the_outbox_by_index() {
        let (_dir, store) = store_with_device(12);
        let connection = store.lock();
        for sql in [OPEN_INCIDENTS, super::super::alert_outbox::ALREADY_ESCALATED] {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let details: Vec<String> = statement
                .query_map([0i64], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = details.join("; ");
            assert!(
                plan.contains("USING INDEX alert_outbox_by_incident")
                    || plan.contains("USING COVERING INDEX alert_outbox_by_incident"),
                "{sql}: {plan}"
            );
            assert!(
                !plan.contains("SCAN a") && !plan.contains("SCAN alert_outbox"),
                "{sql}: {plan}"
            );
        }
    }

    #[test]
    fn a_burst_across_batches_raises_one_alert_per_window() {
        let (_dir, store) = store_with_device(12);
        let received = at("2026-11-17T10:30:00Z");
        // Two DoH attempts: below the threshold of 3 in 10 minutes.
        let first = [
            blocked("2026-11-17T10:00:00Z", "dns-bypass"),
            blocked("2026-11-17T10:01:00Z", "dns-bypass"),
        ];
        store.ingest_reporting(device(12), &first, received).unwrap();
        assert!(rule_rows(&store).is_empty());
        // The third, in the next batch, reaches it; a burst of twenty more raises nothing more.
        let mut second = vec![blocked("2026-11-17T10:02:00Z", "dns-bypass")];
        second.extend((0..20).map(|s| blocked(&format!("2026-11-17T10:03:{s:02}Z"), "dns-bypass")));
        let ingested = store.ingest_reporting(device(12), &second, received).unwrap();
        assert_eq!(ingested.new_alerts, 1);
        // The same batch again stores nothing and raises nothing.
        assert_eq!(store.ingest_reporting(device(12), &second, received).unwrap().new_alerts, 0);
        // One illegal block: its own rule, its own alert.
        store
            .ingest_reporting(device(12), &[blocked("2026-11-17T10:04:00Z", "iwf")], received)
            .unwrap();
        // An hour later, three more: a new window, a new alert.
        let later: Vec<Event> =
            (0..3).map(|m| blocked(&format!("2026-11-17T11:0{m}:00Z"), "dns-bypass")).collect();
        store.ingest_reporting(device(12), &later, received).unwrap();
        assert_eq!(
            rule_rows(&store),
            [
                ("filter_bypass".into(), 12, "2026-11-17T10:02:00.000000Z".into(), 3),
                ("illegal_content".into(), 12, "2026-11-17T10:04:00.000000Z".into(), 1),
                ("filter_bypass".into(), 12, "2026-11-17T11:02:00.000000Z".into(), 3),
            ]
        );
        let due = store.due_alerts(at("2026-11-17T12:00:00Z"), 10).unwrap();
        assert_eq!(due.len(), 3);
        assert!(due.iter().all(|a| a.incident.is_none() && a.also_to.is_empty()));
    }

    #[test]
    fn a_rule_turned_off_raises_nothing_and_the_change_is_audited() {
        let (_dir, store) = store_with_device(12);
        let mut settings = store.alert_settings().unwrap();
        assert_eq!(settings, AlertSettings::default());
        settings.rules.insert(
            "hardware_refused".into(),
            RuleSetting { on: false, threshold: 1, window_minutes: 60 },
        );
        let now = at("2026-11-17T09:00:00Z");
        let changed = store.set_alert_settings(&settings, "a.dsl", now).unwrap();
        assert_eq!(
            changed.as_deref(),
            Some("hardware_refused: on, 1 in 60 min -> off, 1 in 60 min")
        );
        assert_eq!(store.set_alert_settings(&settings, "a.dsl", now).unwrap(), None);
        let audit = store.audit_log(10).unwrap();
        assert_eq!(audit.iter().filter(|e| e.action == "changed alert rules").count(), 1);
        let usb = Event::new(
            device(12),
            at("2026-11-17T10:00:00Z"),
            EventBody::DeviceRefused { kind: RefusedDevice::UsbStorage, description: "x".into() },
        );
        store.ingest_reporting(device(12), &[usb], at("2026-11-17T10:00:01Z")).unwrap();
        assert!(rule_rows(&store).is_empty());
    }

    #[test]
    fn a_silent_device_alerts_once_per_silence() {
        let (_dir, store) = store_with_device(12);
        let hello = |t: &str| {
            Event::new(device(12), at(t), EventBody::Hello { software_version: "1".into() })
        };
        store
            .ingest_reporting(
                device(12),
                &[hello("2026-11-13T15:00:00Z")],
                at("2026-11-13T15:00:00Z"),
            )
            .unwrap();
        assert_eq!(
            store.check_silent_devices(&ClockReading::steady(at("2026-11-16T14:59:00Z"))).unwrap(),
            0
        );
        assert_eq!(
            store.check_silent_devices(&ClockReading::steady(at("2026-11-16T15:00:00Z"))).unwrap(),
            1
        );
        assert_eq!(
            store.check_silent_devices(&ClockReading::steady(at("2026-11-20T15:00:00Z"))).unwrap(),
            0
        );
        // Back, then silent again.
        store
            .ingest_reporting(
                device(12),
                &[hello("2026-11-21T08:00:00Z")],
                at("2026-11-21T08:00:00Z"),
            )
            .unwrap();
        assert_eq!(
            store.check_silent_devices(&ClockReading::steady(at("2026-11-23T08:00:00Z"))).unwrap(),
            0
        );
        assert_eq!(
            store.check_silent_devices(&ClockReading::steady(at("2026-11-24T08:00:00Z"))).unwrap(),
            1
        );
        let rows = rule_rows(&store);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].2, "2026-11-13T15:00:00.000000Z", "keyed by the last contact");
    }
}
