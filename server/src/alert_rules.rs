//! Monitoring the filter (issue 17): which alerts to raise from what devices already send, and
//! when an incident nobody acknowledged is escalated. Seed 004: "filtering logs are regularly
//! reviewed and alert the Designated Safeguarding Lead to breaches of the filtering policy";
//! "if a security breach occurs, SLT are alerted with immediate effect"; seed 001: "auto-generated
//! alerts which flag up activity in specific safeguarding categories".
//!
//! Pure: events, times and settings in, decisions out; no database, no clock. The store reads
//! the events and the alerts already raised and queues what [`decide_events`],
//! [`silent_alert_due`] and [`escalations`] say into the same alerts outbox reports use
//! (`store::alert_outbox`), so these alerts reach the DSL the same way, with the same retries.
//!
//! One table of rules ([`RULES`]); each DSL setting ([`RuleSetting`]) turns a rule on or off
//! and sets its threshold and window. De-duplication: a rule raises at most one alert per
//! device per window, however many events the burst has.
//!
//! What devices do not send yet, so no rule can see it: a list file refused or tampered with
//! (slated keeps its last good list and says nothing), staff PIN lockouts (kept on the device
//! only), and lockdown attempts (nftables drops DNS going around the filter without counting).
//! DoH attempts are seen: they are blocks in the `dns-bypass` list.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use slate_protocol::EventBody;
use std::collections::BTreeMap;

/// Illegal content, by its publishers' names (IWF, CTIRU) and by the filter's category names.
pub const ILLEGAL_LISTS: [&str; 4] = ["iwf", "ctiru", "child-abuse", "terrorism"];
/// DNS-over-HTTPS and other resolvers a browser could use to go around the filter.
pub const BYPASS_LISTS: [&str; 1] = ["dns-bypass"];
/// The harmful categories seed 004 asks DSLs to watch (not illegal).
pub const HARMFUL_LISTS: [&str; 4] = ["adult", "violence", "drugs", "gambling"];

/// A rule's stable name: in the settings, the outbox and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    IllegalContent,
    FilterBypass,
    HarmfulBurst,
    HardwareRefused,
    ButtonFault,
    DeviceSilent,
}

/// Why the rule matters: illegal and security rules are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    Illegal,
    Security,
    Harmful,
}

/// What a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// `threshold` matching events from one device within `window_minutes`.
    EventsInWindow,
    /// No contact from a device for `threshold` days (the window is not used).
    DaysSilent,
}

/// A DSL's setting for one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetting {
    pub on: bool,
    /// Events within the window (days, for [`Measure::DaysSilent`]).
    pub threshold: u32,
    pub window_minutes: u32,
}

/// One row of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: RuleId,
    pub name: &'static str,
    pub title: &'static str,
    /// What triggers it, in the DSL's words.
    pub triggers: &'static str,
    pub concern: Concern,
    /// A security breach in seed 004's sense ("SLT are alerted with immediate effect"): its
    /// alert also goes at once to the senior leaders an escalation reaches (deputy DSLs and
    /// the addresses the DSL gave), not only to the DSL. A fault or a silent device is not.
    pub breach: bool,
    pub measure: Measure,
    pub default: RuleSetting,
}

const fn setting(on: bool, threshold: u32, window_minutes: u32) -> RuleSetting {
    RuleSetting { on, threshold, window_minutes }
}

/// Every rule. On by default: the illegal and security ones.
pub const RULES: [Rule; 6] = [
    Rule {
        id: RuleId::IllegalContent,
        name: "illegal_content",
        title: "Illegal content blocked",
        triggers: "a device's filter refused a site in an illegal-content list (IWF, CTIRU: child abuse, terrorism)",
        concern: Concern::Illegal,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 60),
    },
    Rule {
        id: RuleId::FilterBypass,
        name: "filter_bypass",
        title: "Attempts to go around the filter",
        triggers: "blocks in the dns-bypass list: DNS-over-HTTPS and other resolvers that would go around the filter",
        concern: Concern::Security,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 3, 10),
    },
    Rule {
        id: RuleId::HarmfulBurst,
        name: "harmful_burst",
        title: "A burst of harmful blocks",
        triggers: "blocks in the harmful categories (adult, violence, drugs, gambling)",
        concern: Concern::Harmful,
        breach: false,
        measure: Measure::EventsInWindow,
        default: setting(false, 10, 10),
    },
    Rule {
        id: RuleId::HardwareRefused,
        name: "hardware_refused",
        title: "Hardware refused",
        triggers: "a USB stick, camera or other USB device the policy does not allow was plugged in",
        concern: Concern::Security,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 60),
    },
    Rule {
        id: RuleId::ButtonFault,
        name: "button_fault",
        title: "Report button fault",
        triggers: "the report button is missing or stuck, or a press could not darken the screen",
        concern: Concern::Security,
        breach: false,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 24 * 60),
    },
    Rule {
        id: RuleId::DeviceSilent,
        name: "device_silent",
        title: "Device silent",
        triggers: "an enrolled device has not been in touch for days (off, lost, or its reports cannot reach the server)",
        concern: Concern::Security,
        breach: false,
        measure: Measure::DaysSilent,
        default: setting(true, 3, 0),
    },
];

impl RuleId {
    pub fn rule(self) -> &'static Rule {
        RULES.iter().find(|r| r.id == self).expect("every rule is in the table")
    }

    pub fn name(self) -> &'static str {
        self.rule().name
    }

    pub fn parse(name: &str) -> Option<RuleId> {
        RULES.iter().find(|r| r.name == name).map(|r| r.id)
    }
}

/// The limits a DSL may set, per measure: (threshold, window minutes).
pub fn limits(measure: Measure) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u32>) {
    match measure {
        Measure::EventsInWindow => (1..=1000, 1..=7 * 24 * 60),
        Measure::DaysSilent => (1..=60, 0..=0),
    }
}

/// Unacknowledged for this long, an incident is escalated (default).
pub const DEFAULT_ESCALATE_AFTER_MINUTES: u32 = 15;
/// The shortest and longest escalation delay a DSL may set.
pub const ESCALATE_AFTER_LIMITS: std::ops::RangeInclusive<u32> = 5..=24 * 60;
/// An incident older than this when first seen unacknowledged is not escalated: a backlog
/// found at an upgrade would otherwise send one alert per old incident at once.
pub const ESCALATE_NO_OLDER_THAN: Duration = Duration::days(7);
/// Most extra addresses an escalation goes to (the head, say).
pub const MAX_ESCALATE_TO: usize = 5;

/// Every setting on the DSL's page, as stored (JSON in the settings table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// By rule name; a rule missing here has its default.
    pub rules: BTreeMap<String, RuleSetting>,
    pub escalate_after_minutes: u32,
    /// Addresses besides the deputy DSLs' that escalations go to (the head, say).
    pub escalate_to: Vec<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            rules: RULES.iter().map(|r| (r.name.to_owned(), r.default)).collect(),
            escalate_after_minutes: DEFAULT_ESCALATE_AFTER_MINUTES,
            escalate_to: Vec::new(),
        }
    }
}

impl AlertSettings {
    /// The stored JSON, or the defaults where it is missing or unreadable (a rule missing from
    /// it has its default; a name this server does not know is dropped).
    pub fn from_json(text: Option<&str>) -> Self {
        let mut settings =
            text.and_then(|t| serde_json::from_str::<AlertSettings>(t).ok()).unwrap_or_default();
        let defaults = AlertSettings::default();
        settings.rules.retain(|name, _| RuleId::parse(name).is_some());
        for (name, default) in defaults.rules {
            settings.rules.entry(name).or_insert(default);
        }
        if !ESCALATE_AFTER_LIMITS.contains(&settings.escalate_after_minutes) {
            settings.escalate_after_minutes = DEFAULT_ESCALATE_AFTER_MINUTES;
        }
        settings
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }

    pub fn rule(&self, id: RuleId) -> RuleSetting {
        self.rules.get(id.name()).copied().unwrap_or(id.rule().default)
    }
}

/// Reads the DSL's form: for each rule `<name>_on` (present when ticked), `<name>_threshold`,
/// `<name>_window` (not for a silent-device rule); `escalate_after`; `escalate_to` (addresses
/// separated by commas or spaces). Every problem is named.
pub fn check_form(fields: &BTreeMap<String, String>) -> Result<AlertSettings, Vec<String>> {
    let mut problems = Vec::new();
    let mut settings = AlertSettings::default();
    let text = |key: &str| fields.get(key).map(|v| v.trim()).unwrap_or("");
    for rule in &RULES {
        let (thresholds, windows) = limits(rule.measure);
        let on = !text(&format!("{}_on", rule.name)).is_empty();
        let number = |key: String, what: &str, range: &std::ops::RangeInclusive<u32>| {
            let value = text(&key);
            match value.parse::<u32>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(format!(
                    "{}: {what} {value:?} is not a number from {} to {}.",
                    rule.title,
                    range.start(),
                    range.end()
                )),
            }
        };
        let what = match rule.measure {
            Measure::EventsInWindow => "the number of events",
            Measure::DaysSilent => "the number of days",
        };
        let threshold = number(format!("{}_threshold", rule.name), what, &thresholds);
        let window = match rule.measure {
            Measure::EventsInWindow => {
                number(format!("{}_window", rule.name), "the minutes", &windows)
            }
            Measure::DaysSilent => Ok(0),
        };
        match (threshold, window) {
            (Ok(threshold), Ok(window_minutes)) => {
                settings
                    .rules
                    .insert(rule.name.into(), RuleSetting { on, threshold, window_minutes });
            }
            (threshold, window) => {
                problems.extend(threshold.err());
                problems.extend(window.err());
            }
        }
    }
    let after = text("escalate_after");
    match after.parse::<u32>() {
        Ok(n) if ESCALATE_AFTER_LIMITS.contains(&n) => settings.escalate_after_minutes = n,
        _ => problems.push(format!(
            "Escalate after: {after:?} is not a number of minutes from {} to {}.",
            ESCALATE_AFTER_LIMITS.start(),
            ESCALATE_AFTER_LIMITS.end()
        )),
    }
    let addresses: Vec<&str> =
        text("escalate_to").split([',', ' ', '\n', '\r', ';']).filter(|a| !a.is_empty()).collect();
    if addresses.len() > MAX_ESCALATE_TO {
        problems.push(format!("Also escalate to: give at most {MAX_ESCALATE_TO} addresses."));
    }
    for address in addresses {
        if address.parse::<lettre::Address>().is_err() {
            problems.push(format!("Also escalate to: {address:?} is not an email address."));
        } else if !settings.escalate_to.iter().any(|a| a == address) {
            settings.escalate_to.push(address.to_owned());
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

/// A rule setting in words: "on, 3 in 10 min".
fn describe(rule: &Rule, setting: &RuleSetting) -> String {
    let on = if setting.on { "on" } else { "off" };
    match rule.measure {
        Measure::EventsInWindow => {
            format!("{on}, {} in {} min", setting.threshold, setting.window_minutes)
        }
        Measure::DaysSilent => format!("{on}, {} days", setting.threshold),
    }
}

/// What changed between two settings, for the audit log: each changed rule and field as
/// `name: before -> after`, joined by `; `. `None` when nothing changed.
pub fn describe_changes(before: &AlertSettings, after: &AlertSettings) -> Option<String> {
    let mut changes = Vec::new();
    for rule in &RULES {
        let (old, new) = (before.rule(rule.id), after.rule(rule.id));
        if old != new {
            changes.push(format!(
                "{}: {} -> {}",
                rule.name,
                describe(rule, &old),
                describe(rule, &new)
            ));
        }
    }
    if before.escalate_after_minutes != after.escalate_after_minutes {
        changes.push(format!(
            "escalate after: {} -> {} min",
            before.escalate_after_minutes, after.escalate_after_minutes
        ));
    }
    if before.escalate_to != after.escalate_to {
        let list = |a: &[String]| if a.is_empty() { "none".to_owned() } else { a.join(", ") };
        changes.push(format!(
            "also escalate to: {} -> {}",
            list(&before.escalate_to),
            list(&after.escalate_to)
        ));
    }
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// Which event rule an event is for, if any. The event's own kind in the events table is
/// [`EventBody::kind`]; a rule reads only events of the kinds in [`event_kinds`].
pub fn rule_for(body: &EventBody) -> Option<RuleId> {
    match body {
        EventBody::FilterBlocked { list, .. } => {
            let list = list.as_str();
            if ILLEGAL_LISTS.contains(&list) {
                Some(RuleId::IllegalContent)
            } else if BYPASS_LISTS.contains(&list) {
                Some(RuleId::FilterBypass)
            } else if HARMFUL_LISTS.contains(&list) {
                Some(RuleId::HarmfulBurst)
            } else {
                None
            }
        }
        EventBody::DeviceRefused { .. } => Some(RuleId::HardwareRefused),
        EventBody::Heartbeat { button_fault, display_fault, .. } => {
            (button_fault.is_some() || display_fault.is_some()).then_some(RuleId::ButtonFault)
        }
        _ => None,
    }
}

/// The events table's kinds a rule counts.
pub fn event_kinds(rule: RuleId) -> &'static [&'static str] {
    match rule {
        RuleId::IllegalContent | RuleId::FilterBypass | RuleId::HarmfulBurst => &["filter_blocked"],
        RuleId::HardwareRefused => &["device_refused"],
        RuleId::ButtonFault => &["heartbeat"],
        RuleId::DeviceSilent => &[],
    }
}

/// An alert a rule raises for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The event that brought the count to the threshold (the alert's time, and its key).
    pub at: DateTime<Utc>,
    /// The first counted event within the window.
    pub first_at: DateTime<Utc>,
    /// Events counted within the window up to `at`.
    pub count: u32,
}

/// What one rule raises for one device: `new` are the times of the events just stored
/// (sorted), `history` every matching event of the device from a window before the first of
/// them to the last (sorted, including `new`), and `last_alert` the time of the newest alert
/// this rule raised for the device. Only a new event can trigger: at its time, counting the
/// matching events in the window that ends there, it reaches the threshold, and no alert of
/// this rule for the device was raised within a window before it. So a burst of hundreds
/// raises one alert per window, and the events an earlier alert covered never raise another.
pub fn decide_events(
    setting: &RuleSetting,
    new: &[DateTime<Utc>],
    history: &[DateTime<Utc>],
    last_alert: Option<DateTime<Utc>>,
) -> Vec<Raised> {
    if !setting.on || setting.threshold == 0 {
        return Vec::new();
    }
    let window = Duration::minutes(i64::from(setting.window_minutes.max(1)));
    let mut last = last_alert;
    let mut raised = Vec::new();
    for &at in new {
        if last.is_some_and(|l| at < l + window) {
            continue;
        }
        let counted: Vec<&DateTime<Utc>> =
            history.iter().filter(|t| **t > at - window && **t <= at).collect();
        let count = u32::try_from(counted.len()).unwrap_or(u32::MAX);
        if count >= setting.threshold {
            let first_at = counted.first().map_or(at, |t| **t);
            raised.push(Raised { at, first_at, count });
            last = Some(at);
        }
    }
    raised
}

/// Whether a silent-device alert is due: on, the device last in touch at `last_seen` (never in
/// touch: no alert; it was never set up), silent for `threshold` days by `now`, and no alert
/// raised for this silence yet (`last_alert_for`: the `last_seen` the newest such alert was
/// about). One alert per silence: a device that comes back and goes silent again alerts again.
pub fn silent_alert_due(
    setting: &RuleSetting,
    last_seen: Option<DateTime<Utc>>,
    last_alert_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let Some(last_seen) = last_seen else { return false };
    setting.on
        && now - last_seen >= Duration::days(i64::from(setting.threshold.max(1)))
        && last_alert_for.is_none_or(|a| a < last_seen)
}

/// An incident as the escalation check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenIncident {
    pub incident: i64,
    /// When the server stored it (the moment it could first have been acknowledged).
    pub created_at: DateTime<Utc>,
    /// Still new: nobody has acknowledged it.
    pub unacknowledged: bool,
    /// A press of the report button (a held device waiting for staff). "Tell my teacher" on a
    /// blocked page is low priority and an incident recorded by hand is already with staff:
    /// neither is escalated.
    pub from_button: bool,
    /// Already escalated once.
    pub escalated: bool,
}

/// The incidents to escalate now: unacknowledged button reports stored `minutes` or more
/// before `now`, not escalated yet, and no older than [`ESCALATE_NO_OLDER_THAN`]. Once each.
pub fn escalations(incidents: &[OpenIncident], minutes: u32, now: DateTime<Utc>) -> Vec<i64> {
    let after = Duration::minutes(i64::from(minutes));
    incidents
        .iter()
        .filter(|i| i.unacknowledged && i.from_button && !i.escalated)
        .filter(|i| now - i.created_at >= after && now - i.created_at <= ESCALATE_NO_OLDER_THAN)
        .map(|i| i.incident)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_illegal_and_security_rules_are_breaches_and_every_breach_is_on_by_default() {
        for rule in &RULES {
            if rule.breach {
                assert_ne!(rule.concern, Concern::Harmful, "{}", rule.name);
                assert!(rule.default.on, "{}", rule.name);
            }
        }
        let breaches: Vec<&str> = RULES.iter().filter(|r| r.breach).map(|r| r.name).collect();
        assert_eq!(breaches, ["illegal_content", "filter_bypass", "hardware_refused"]);
    }
    use slate_protocol::{ButtonFault, FilterLayer, RefusedDevice};

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-11-17T{s}Z").parse().unwrap()
    }

    fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
        list.iter().map(|s| at(s)).collect()
    }

    #[test]
    fn the_table_has_one_row_per_rule_and_the_illegal_and_security_ones_are_on() {
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(RULES.iter().filter(|r| r.id == rule.id).count(), 1, "row {i}");
            assert_eq!(RuleId::parse(rule.name), Some(rule.id));
            assert_eq!(rule.default.on, rule.concern != Concern::Harmful, "{}", rule.name);
            let (thresholds, windows) = limits(rule.measure);
            assert!(thresholds.contains(&rule.default.threshold), "{}", rule.name);
            assert!(windows.contains(&rule.default.window_minutes), "{}", rule.name);
        }
    }

    /// The lists are the device filter's own names: illegal ones are the filter's illegal
    /// categories, the bypass list its DNS-bypass category.
    #[test]
    fn the_lists_are_the_filters_categories() {
        use slate_filter::lists::Category;
        for name in ILLEGAL_LISTS {
            assert!(Category::of_list(name).is_illegal(), "{name}");
        }
        assert_eq!(Category::of_list(BYPASS_LISTS[0]), Category::DnsBypass);
        for name in HARMFUL_LISTS {
            let category = Category::of_list(name);
            assert!(!category.is_illegal() && category != Category::Other, "{name}");
        }
    }

    fn blocked(list: &str) -> EventBody {
        EventBody::FilterBlocked {
            session: None,
            pupil: None,
            layer: FilterLayer::Dns,
            target: "example.org".into(),
            rule: "exact:example.org".into(),
            list: list.into(),
        }
    }

    fn heartbeat(button_fault: Option<ButtonFault>) -> EventBody {
        EventBody::Heartbeat {
            uptime_s: 60,
            spool_pending: 0,
            button_fault,
            display_fault: None,
            storage_fault: None,
        }
    }

    #[test]
    fn each_event_is_for_at_most_one_rule() {
        let refused =
            EventBody::DeviceRefused { kind: RefusedDevice::UsbStorage, description: "x".into() };
        let cases = [
            (blocked("iwf"), Some(RuleId::IllegalContent)),
            (blocked("terrorism"), Some(RuleId::IllegalContent)),
            (blocked("dns-bypass"), Some(RuleId::FilterBypass)),
            (blocked("adult"), Some(RuleId::HarmfulBurst)),
            (blocked("social-media"), None),
            (blocked("games"), None),
            (refused, Some(RuleId::HardwareRefused)),
            (heartbeat(Some(ButtonFault::Stuck)), Some(RuleId::ButtonFault)),
            (heartbeat(None), None),
            (EventBody::Hello { software_version: "1".into() }, None),
        ];
        for (body, rule) in cases {
            assert_eq!(rule_for(&body), rule, "{body:?}");
            if let Some(rule) = rule {
                assert!(event_kinds(rule).contains(&body.kind()), "{body:?}");
            }
        }
    }

    #[test]
    fn a_burst_raises_one_alert_per_window() {
        let three_in_ten = RuleSetting { on: true, threshold: 3, window_minutes: 10 };
        let one_an_hour = RuleSetting { on: true, threshold: 1, window_minutes: 60 };
        let off = RuleSetting { on: false, ..one_an_hour };
        // (name, setting, new, history (without new), last alert) -> [(at, first, count)]
        #[allow(clippy::type_complexity)]
        let cases: [(
            &str,
            RuleSetting,
            &[&str],
            &[&str],
            Option<&str>,
            &[(&str, &str, u32)],
        ); 9] = [
            (
                "one illegal block",
                one_an_hour,
                &["10:00:00"],
                &[],
                None,
                &[("10:00:00", "10:00:00", 1)],
            ),
            ("off", off, &["10:00:00"], &[], None, &[]),
            (
                "a burst of five in a batch: one alert",
                one_an_hour,
                &["10:00:00", "10:00:01", "10:00:02", "10:00:03", "10:00:04"],
                &[],
                None,
                &[("10:00:00", "10:00:00", 1)],
            ),
            (
                "again after the window",
                one_an_hour,
                &["10:30:00", "11:00:00"],
                &[],
                Some("10:00:00"),
                // Counted over the window that ends at 11:00, which holds 10:30 too.
                &[("11:00:00", "10:30:00", 2)],
            ),
            ("below the threshold", three_in_ten, &["10:00:00", "10:05:00"], &[], None, &[]),
            (
                "the threshold reached with earlier events",
                three_in_ten,
                &["10:06:00"],
                &["10:00:00", "10:05:00"],
                None,
                &[("10:06:00", "10:00:00", 3)],
            ),
            (
                "earlier events out of the window do not count",
                three_in_ten,
                &["10:16:00"],
                &["10:00:00", "10:05:00", "10:07:00"],
                None,
                &[],
            ),
            (
                "a hundred in a minute: one alert",
                three_in_ten,
                &["10:00:00", "10:00:10", "10:00:20", "10:00:30", "10:00:40", "10:00:50"],
                &[],
                None,
                &[("10:00:20", "10:00:00", 3)],
            ),
            (
                "a resend of an alerted burst raises nothing",
                three_in_ten,
                &["10:00:20"],
                &["10:00:00", "10:00:10"],
                Some("10:00:20"),
                &[],
            ),
        ];
        for (name, setting, new, before, last, expected) in cases {
            let new = times(new);
            let mut history = times(before);
            history.extend(&new);
            history.sort();
            let raised = decide_events(&setting, &new, &history, last.map(at));
            let expected: Vec<Raised> = expected
                .iter()
                .map(|(a, f, count)| Raised { at: at(a), first_at: at(f), count: *count })
                .collect();
            assert_eq!(raised, expected, "{name}");
        }
    }

    #[test]
    fn a_silent_device_alerts_once_per_silence() {
        let three_days = RuleSetting { on: true, threshold: 3, window_minutes: 0 };
        let day =
            |d: u32| -> DateTime<Utc> { format!("2026-11-{d:02}T10:00:00Z").parse().unwrap() };
        let cases = [
            ("never in touch", three_days, None, None, day(20), false),
            ("two days", three_days, Some(day(15)), None, day(17), false),
            ("three days", three_days, Some(day(14)), None, day(17), true),
            ("off", RuleSetting { on: false, ..three_days }, Some(day(1)), None, day(17), false),
            (
                "already alerted for this silence",
                three_days,
                Some(day(14)),
                Some(day(14)),
                day(20),
                false,
            ),
            ("back, then silent again", three_days, Some(day(16)), Some(day(10)), day(19), true),
        ];
        for (name, setting, seen, alerted, now, due) in cases {
            assert_eq!(silent_alert_due(&setting, seen, alerted, now), due, "{name}");
        }
    }

    #[test]
    fn an_unacknowledged_report_is_escalated_once_after_the_minutes() {
        let incident = |id, created: &str| OpenIncident {
            incident: id,
            created_at: at(created),
            unacknowledged: true,
            from_button: true,
            escalated: false,
        };
        let all = [
            incident(1, "10:00:00"),
            OpenIncident { unacknowledged: false, ..incident(2, "10:00:00") },
            OpenIncident { from_button: false, ..incident(3, "10:00:00") },
            OpenIncident { escalated: true, ..incident(4, "10:00:00") },
            incident(5, "10:10:00"),
        ];
        // The clock moves on; each time, what is escalated.
        let cases: [(&str, &[i64]); 5] = [
            ("10:05:00", &[]),
            ("10:14:59", &[]),
            ("10:15:00", &[1]),
            ("10:25:00", &[1, 5]),
            ("23:59:00", &[1, 5]),
        ];
        for (now, expected) in cases {
            assert_eq!(escalations(&all, 15, at(now)), expected, "{now}");
        }
        let week_later: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        assert!(escalations(&all, 15, week_later).is_empty(), "a backlog is not escalated");
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The form as the page draws it with the defaults.
    fn default_form() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for rule in &RULES {
            if rule.default.on {
                out.push((format!("{}_on", rule.name), "on".into()));
            }
            out.push((format!("{}_threshold", rule.name), rule.default.threshold.to_string()));
            if rule.measure == Measure::EventsInWindow {
                out.push((
                    format!("{}_window", rule.name),
                    rule.default.window_minutes.to_string(),
                ));
            }
        }
        out.push(("escalate_after".into(), "15".into()));
        out
    }

    #[test]
    fn the_form_reads_back_the_defaults_and_names_each_problem() {
        let form: BTreeMap<String, String> = default_form().into_iter().collect();
        assert_eq!(check_form(&form), Ok(AlertSettings::default()));

        let mut changed = form.clone();
        changed.insert("harmful_burst_on".into(), "on".into());
        changed.insert("harmful_burst_threshold".into(), "5".into());
        changed.remove("hardware_refused_on");
        changed.insert("escalate_after".into(), "20".into());
        changed.insert("escalate_to".into(), "head@school.example, head@school.example".into());
        let settings = check_form(&changed).unwrap();
        assert_eq!(
            settings.rule(RuleId::HarmfulBurst),
            RuleSetting { on: true, threshold: 5, window_minutes: 10 }
        );
        assert!(!settings.rule(RuleId::HardwareRefused).on);
        assert_eq!(settings.escalate_to, ["head@school.example"]);
        assert_eq!(
            describe_changes(&AlertSettings::default(), &settings).unwrap(),
            "harmful_burst: off, 10 in 10 min -> on, 5 in 10 min; \
             hardware_refused: on, 1 in 60 min -> off, 1 in 60 min; \
             escalate after: 15 -> 20 min; also escalate to: none -> head@school.example"
        );
        assert_eq!(describe_changes(&settings, &settings), None);

        let mut bad = form.clone();
        bad.insert("filter_bypass_threshold".into(), "0".into());
        bad.insert("illegal_content_window".into(), "lots".into());
        bad.insert("device_silent_threshold".into(), "90".into());
        bad.insert("escalate_after".into(), "1".into());
        bad.insert("escalate_to".into(), "the head".into());
        let problems = check_form(&bad).unwrap_err();
        assert_eq!(
            problems,
            [
                "Illegal content blocked: the minutes \"lots\" is not a number from 1 to 10080.",
                "Attempts to go around the filter: the number of events \"0\" is not a number from 1 to 1000.",
                "Device silent: the number of days \"90\" is not a number from 1 to 60.",
                "Escalate after: \"1\" is not a number of minutes from 5 to 1440.",
                "Also escalate to: \"the\" is not an email address.",
                "Also escalate to: \"head\" is not an email address.",
            ]
        );
        assert!(check_form(&fields(&[])).is_err(), "an empty form is refused, not defaulted");
    }

    #[test]
    fn stored_settings_fill_in_defaults_and_drop_unknown_rules() {
        assert_eq!(AlertSettings::from_json(None), AlertSettings::default());
        assert_eq!(AlertSettings::from_json(Some("not json")), AlertSettings::default());
        let stored = r#"{"rules":{"harmful_burst":{"on":true,"threshold":4,"window_minutes":5},
                         "retired_rule":{"on":true,"threshold":1,"window_minutes":1}},
                         "escalate_after_minutes":30,"escalate_to":[]}"#;
        let settings = AlertSettings::from_json(Some(stored));
        assert_eq!(settings.rules.len(), RULES.len());
        assert_eq!(settings.rule(RuleId::HarmfulBurst).threshold, 4);
        assert_eq!(settings.rule(RuleId::IllegalContent), RuleId::IllegalContent.rule().default);
        assert_eq!(settings.escalate_after_minutes, 30);
        assert_eq!(AlertSettings::from_json(Some(&settings.to_json())), settings);
    }
}
