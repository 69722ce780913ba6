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
//! Security breaches devices see and send as `security_breach` events: a signed policy or list
//! file slated refused (a bad signature or digest, an older policy offered again) or slate-dns
//! refused on the card (`filter_refused`), both the "Refused or tampered policy" rule; a lockout
//! after wrong staff PINs; and DNS, DoT or known DoH traffic the device's firewall refused on
//! its way around the filter (`dns_dropped`, counted by the device and sent at most once a
//! window with the count). DoH attempts by name are blocks in the `dns-bypass` list.
//!
//! Escalation counts only minutes within the school day the DSL sets ([`SchoolHours`]), unless
//! the DSL turns that off: see [`escalation_due`] for why.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};
use slate_protocol::{Breach, EventBody};
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
    PolicyRefused,
    PinLockout,
    DnsDropped,
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
pub const RULES: [Rule; 9] = [
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
    Rule {
        id: RuleId::PolicyRefused,
        name: "policy_refused",
        title: "Refused or tampered policy",
        triggers: "a device refused a policy or list from the server, or its filter refused the one on its card: its signature or digest did not verify, or an older one was offered again",
        concern: Concern::Security,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 60),
    },
    Rule {
        id: RuleId::PinLockout,
        name: "pin_lockout",
        title: "Staff PIN lockout",
        triggers: "wrong staff PINs typed on a held device again and again, until unlocking locked",
        concern: Concern::Security,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 60),
    },
    // Its own rule rather than filter_bypass: that one counts blocked names (3 in 10 minutes),
    // while a device sends one dns_dropped event per window however many packets it counted.
    Rule {
        id: RuleId::DnsDropped,
        name: "dns_dropped",
        title: "DNS refused around the filter",
        triggers: "the device's firewall refused DNS, DNS-over-TLS or a known DNS-over-HTTPS resolver that an app or user tried instead of the filter",
        concern: Concern::Security,
        breach: true,
        measure: Measure::EventsInWindow,
        default: setting(true, 1, 60),
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
    /// Count only minutes within [`AlertSettings::school_hours`] towards escalation.
    #[serde(default = "yes")]
    pub escalate_in_school_hours: bool,
    /// The school day (settings stored before it have the default).
    #[serde(default)]
    pub school_hours: SchoolHours,
}

fn yes() -> bool {
    true
}

/// The school day, UK time: the days it is open (Monday first) and from when to when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolHours {
    pub days: [bool; 7],
    /// Minutes after UK midnight.
    pub start_minute: u16,
    /// Minutes after UK midnight, after `start_minute`; at most 1440 (midnight).
    pub end_minute: u16,
}

/// Monday to Friday, 08:00 to 16:30.
impl Default for SchoolHours {
    fn default() -> Self {
        Self {
            days: [true, true, true, true, true, false, false],
            start_minute: 8 * 60,
            end_minute: 16 * 60 + 30,
        }
    }
}

/// The days' short names, Monday first: the form's field names and the audit log's words.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl SchoolHours {
    /// Usable: a day open and a start before the end.
    pub fn is_usable(&self) -> bool {
        self.days.iter().any(|d| *d)
            && self.start_minute < self.end_minute
            && self.end_minute <= 1440
    }

    /// "mon-fri 08:00-16:30" style words, for the audit log and the page.
    pub fn describe(&self) -> String {
        let days: Vec<&str> =
            DAY_NAMES.iter().zip(self.days).filter(|(_, on)| *on).map(|(d, _)| *d).collect();
        format!("{} {}-{}", days.join(","), clock(self.start_minute), clock(self.end_minute))
    }
}

/// `HH:MM` for minutes after midnight.
pub fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Reads `HH:MM` (24-hour; `24:00` is midnight at the end of the day).
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// When an incident stored at `created_at` is due for escalation after `minutes`: with school
/// hours, only minutes within them count, so a press at 16:25 on a Friday with 15 minutes is
/// due at 08:10 on Monday, not at 16:40 on Friday.
///
/// Why school hours rather than escalating out of hours to someone else: the escalation is for
/// a held classroom device nobody in school has come to. The report's own alert already reached
/// the DSL at once, whatever the hour, and breaches go to the senior leaders at once (seed 004,
/// "with immediate effect"); seeds 000 to 004 name no out-of-hours contact, and send incidents
/// to "the first available member of staff" and the leadership team in school. Paging a deputy
/// at home at 16:40 on a Friday about a device in an empty classroom is what a DSL would turn
/// off; the report waiting at 08:10 on Monday, when the deputy can walk to the classroom, is
/// what they expect. A DSL who wants every hour to count turns school hours off.
///
/// Hours that are not usable ([`SchoolHours::is_usable`]) count every minute. Pure.
pub fn escalation_due(
    created_at: DateTime<Utc>,
    minutes: u32,
    hours: Option<&SchoolHours>,
) -> DateTime<Utc> {
    let mut remaining = Duration::minutes(i64::from(minutes));
    let Some(hours) = hours.filter(|h| h.is_usable()) else {
        return created_at + remaining;
    };
    let mut day = created_at.with_timezone(&chrono_tz::Europe::London).date_naive();
    // At least one school day a week: a year of days always finds the time.
    for _ in 0..=366 {
        if hours.days[day.weekday().num_days_from_monday() as usize] {
            let open = crate::uk_time::at_uk_minute(day, hours.start_minute);
            let close = crate::uk_time::at_uk_minute(day, hours.end_minute);
            let from = open.max(created_at);
            if close > from {
                if close - from >= remaining {
                    return from + remaining;
                }
                remaining -= close - from;
            }
        }
        day = day.succ_opt().expect("a date within chrono's range");
    }
    created_at + Duration::minutes(i64::from(minutes))
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            rules: RULES.iter().map(|r| (r.name.to_owned(), r.default)).collect(),
            escalate_after_minutes: DEFAULT_ESCALATE_AFTER_MINUTES,
            escalate_to: Vec::new(),
            escalate_in_school_hours: true,
            school_hours: SchoolHours::default(),
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
        if !settings.school_hours.is_usable() {
            settings.school_hours = SchoolHours::default();
        }
        settings
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }

    pub fn rule(&self, id: RuleId) -> RuleSetting {
        self.rules.get(id.name()).copied().unwrap_or(id.rule().default)
    }

    /// The hours escalation counts in: `None` when every minute counts.
    pub fn escalation_hours(&self) -> Option<&SchoolHours> {
        self.escalate_in_school_hours.then_some(&self.school_hours)
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
    settings.escalate_in_school_hours = !text("escalate_in_school_hours").is_empty();
    let mut days = [false; 7];
    for (i, day) in DAY_NAMES.iter().enumerate() {
        days[i] = !text(&format!("school_{day}")).is_empty();
    }
    let start = parse_clock(text("school_start"));
    let end = parse_clock(text("school_end"));
    match (start, end) {
        (Some(start_minute), Some(end_minute)) if start_minute < end_minute => {
            settings.school_hours = SchoolHours { days, start_minute, end_minute };
            if !days.iter().any(|d| *d) {
                problems.push("School day: tick at least one day.".into());
            }
        }
        (Some(_), Some(_)) => problems.push("School day: the end must be after the start.".into()),
        (start, end) => {
            if start.is_none() {
                problems.push(format!(
                    "School day starts: {:?} is not a time such as 08:00.",
                    text("school_start")
                ));
            }
            if end.is_none() {
                problems.push(format!(
                    "School day ends: {:?} is not a time such as 16:30.",
                    text("school_end")
                ));
            }
        }
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
    if before.escalate_in_school_hours != after.escalate_in_school_hours {
        let words = |on: bool| if on { "school hours only" } else { "every hour" };
        changes.push(format!(
            "escalation counts: {} -> {}",
            words(before.escalate_in_school_hours),
            words(after.escalate_in_school_hours)
        ));
    }
    if before.school_hours != after.school_hours {
        changes.push(format!(
            "school day: {} -> {}",
            before.school_hours.describe(),
            after.school_hours.describe()
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
        EventBody::SecurityBreach {
            breach: Breach::PolicyRefused { .. } | Breach::FilterRefused { .. },
        } => Some(RuleId::PolicyRefused),
        EventBody::SecurityBreach { breach: Breach::DnsDropped { .. } } => Some(RuleId::DnsDropped),
        EventBody::SecurityBreach { breach: Breach::PinLockout { .. } } => Some(RuleId::PinLockout),
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
        RuleId::PolicyRefused | RuleId::PinLockout | RuleId::DnsDropped => &["security_breach"],
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

/// The incidents to escalate now: unacknowledged button reports whose `minutes` (within
/// `hours`, when given: [`escalation_due`]) have passed by `now`, not escalated yet, and no
/// older than [`ESCALATE_NO_OLDER_THAN`]. Once each.
pub fn escalations(
    incidents: &[OpenIncident],
    minutes: u32,
    hours: Option<&SchoolHours>,
    now: DateTime<Utc>,
) -> Vec<i64> {
    incidents
        .iter()
        .filter(|i| i.unacknowledged && i.from_button && !i.escalated)
        .filter(|i| {
            now >= escalation_due(i.created_at, minutes, hours)
                && now - i.created_at <= ESCALATE_NO_OLDER_THAN
        })
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
        assert_eq!(
            breaches,
            [
                "illegal_content",
                "filter_bypass",
                "hardware_refused",
                "policy_refused",
                "pin_lockout",
                "dns_dropped"
            ]
        );
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
            (
                EventBody::SecurityBreach {
                    breach: Breach::PolicyRefused {
                        part: slate_protocol::PolicyPart::List,
                        list: Some("iwf".into()),
                        reason: slate_protocol::PolicyRefusal::Digest,
                    },
                },
                Some(RuleId::PolicyRefused),
            ),
            (
                EventBody::SecurityBreach {
                    breach: Breach::PinLockout { wrong_pins: 5, lockouts: 1, locked_for_s: 60 },
                },
                Some(RuleId::PinLockout),
            ),
            (
                EventBody::SecurityBreach {
                    breach: Breach::FilterRefused {
                        part: slate_protocol::PolicyPart::Filter,
                        list: None,
                        reason: slate_protocol::PolicyRefusal::Signature,
                    },
                },
                Some(RuleId::PolicyRefused),
            ),
            (
                EventBody::SecurityBreach { breach: Breach::DnsDropped { dropped: 4, over_s: 60 } },
                Some(RuleId::DnsDropped),
            ),
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
            assert_eq!(escalations(&all, 15, None, at(now)), expected, "{now}");
            // 2026-11-17 is a Tuesday: within the default school day the same.
            let hours = SchoolHours::default();
            assert_eq!(escalations(&all, 15, Some(&hours), at(now)), expected, "{now}");
        }
        let week_later: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        assert!(escalations(&all, 15, None, week_later).is_empty(), "a backlog is not escalated");
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
        out.push(("escalate_in_school_hours".into(), "on".into()));
        for day in &DAY_NAMES[..5] {
            out.push((format!("school_{day}"), "on".into()));
        }
        out.push(("school_start".into(), "08:00".into()));
        out.push(("school_end".into(), "16:30".into()));
        out
    }

    /// Minutes within the school day, UK time, across both clock changes (2026: BST from
    /// 29 March, GMT from 25 October) and a weekend.
    #[test]
    fn escalation_counts_only_school_minutes() {
        let t = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
        let hours = SchoolHours::default();
        let late = SchoolHours { days: [true; 7], start_minute: 0, end_minute: 1440 };
        let single_day =
            SchoolHours { days: [false, false, true, false, false, false, false], ..hours };
        // (what, stored at, minutes, hours, due at)
        let cases: [(&str, &str, u32, Option<&SchoolHours>, &str); 11] = [
            ("in hours, winter", "2026-11-17T10:00:00Z", 15, Some(&hours), "2026-11-17T10:15:00Z"),
            // 10:00 BST is 09:00 UTC.
            ("in hours, summer", "2026-06-16T09:00:00Z", 15, Some(&hours), "2026-06-16T09:15:00Z"),
            (
                "16:25 Friday (GMT) to 08:10 Monday",
                "2026-11-20T16:25:00Z",
                15,
                Some(&hours),
                "2026-11-23T08:10:00Z",
            ),
            (
                "16:25 Friday (BST) to 08:10 Monday (BST)",
                "2026-06-19T15:25:00Z",
                15,
                Some(&hours),
                "2026-06-22T07:10:00Z",
            ),
            // Friday 23 October is BST; Monday 26 October is GMT after the change on Sunday.
            (
                "across the autumn change",
                "2026-10-23T15:25:00Z",
                15,
                Some(&hours),
                "2026-10-26T08:10:00Z",
            ),
            // Friday 27 March is GMT; Monday 30 March is BST after the change on Sunday.
            (
                "across the spring change",
                "2026-03-27T16:25:00Z",
                15,
                Some(&hours),
                "2026-03-30T07:10:00Z",
            ),
            (
                "before school starts",
                "2026-11-17T06:30:00Z",
                15,
                Some(&hours),
                "2026-11-17T08:15:00Z",
            ),
            ("on a Saturday", "2026-11-21T11:00:00Z", 15, Some(&hours), "2026-11-23T08:15:00Z"),
            (
                "every hour counts when off",
                "2026-11-20T16:25:00Z",
                15,
                None,
                "2026-11-20T16:40:00Z",
            ),
            (
                "a whole-day school on the spring change day",
                "2026-03-29T00:50:00Z",
                15,
                Some(&late),
                "2026-03-29T01:05:00Z",
            ),
            (
                "one school day a week",
                "2026-11-19T09:00:00Z",
                30,
                Some(&single_day),
                "2026-11-25T08:30:00Z",
            ),
        ];
        for (what, stored, minutes, hours, due) in cases {
            assert_eq!(escalation_due(t(stored), minutes, hours), t(due), "{what}");
        }
        let closed = SchoolHours { days: [false; 7], ..hours };
        assert_eq!(
            escalation_due(t("2026-11-20T16:25:00Z"), 15, Some(&closed)),
            t("2026-11-20T16:40:00Z"),
            "unusable hours count every minute"
        );
    }

    #[test]
    fn clock_times_read_and_write() {
        for (text, minute) in [
            ("08:00", Some(480)),
            ("8:05", Some(485)),
            ("16:30", Some(990)),
            ("24:00", Some(1440)),
            ("24:01", None),
            ("12:60", None),
            ("noon", None),
            ("1230", None),
            ("", None),
        ] {
            assert_eq!(parse_clock(text), minute, "{text}");
        }
        assert_eq!(clock(990), "16:30");
        assert_eq!(SchoolHours::default().describe(), "mon,tue,wed,thu,fri 08:00-16:30");
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
        changed.insert("school_end".into(), "15:15".into());
        changed.remove("escalate_in_school_hours");
        let settings = check_form(&changed).unwrap();
        assert_eq!(settings.school_hours.end_minute, 15 * 60 + 15);
        assert_eq!(settings.escalation_hours(), None);
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
             escalate after: 15 -> 20 min; escalation counts: school hours only -> every hour; \
             school day: mon,tue,wed,thu,fri 08:00-16:30 -> mon,tue,wed,thu,fri 08:00-15:15; \
             also escalate to: none -> head@school.example"
        );
        assert_eq!(describe_changes(&settings, &settings), None);

        let mut bad = form.clone();
        bad.insert("filter_bypass_threshold".into(), "0".into());
        bad.insert("illegal_content_window".into(), "lots".into());
        bad.insert("device_silent_threshold".into(), "90".into());
        bad.insert("escalate_after".into(), "1".into());
        bad.insert("escalate_to".into(), "the head".into());
        bad.insert("school_start".into(), "9am".into());
        let problems = check_form(&bad).unwrap_err();
        assert_eq!(
            problems,
            [
                "Illegal content blocked: the minutes \"lots\" is not a number from 1 to 10080.",
                "Attempts to go around the filter: the number of events \"0\" is not a number from 1 to 1000.",
                "Device silent: the number of days \"90\" is not a number from 1 to 60.",
                "Escalate after: \"1\" is not a number of minutes from 5 to 1440.",
                "School day starts: \"9am\" is not a time such as 08:00.",
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
