//! Monitoring the filter (issue 17): alert rules fired by what devices send, escalation of an
//! incident nobody acknowledged, and the DSL's settings page. The store's story runs on SQLite
//! and PostgreSQL; the whole path (events in, alert in the outbox, email out) runs through the
//! real server and a local SMTP sink, on whichever database the tests were asked for.

use crate::alerts::{smtp_config, smtp_sink};
use crate::common::*;
use crate::postgres::TestPostgres;
use chrono::{DateTime, Duration, Utc};
use slate_protocol::{
    Breach, ButtonFault, Event, EventBody, FilterLayer, PolicyPart, PolicyRefusal, PupilId,
    RefusedDevice,
};
use slate_server::alert_outbox::{deliver_due, monitor_once, AlertChannels, OutboxTiming};
use slate_server::auth::Role;
use slate_server::clock_guard::{ClockReading, FakeClock, ServerClock};
use slate_server::incident::Step;
use slate_server::notify::{Alert, AlertAbout};
use slate_server::Store;
use std::sync::Mutex;

fn blocked(n: u16, when: DateTime<Utc>, list: &str, pupil: Option<&PupilId>) -> Event {
    Event::new(
        device(n),
        when,
        EventBody::FilterBlocked {
            session: None,
            pupil: pupil.cloned(),
            layer: FilterLayer::Dns,
            target: "resolver.doh.example".into(),
            rule: "exact:resolver.doh.example".into(),
            list: list.into(),
        },
    )
}

fn refused(n: u16, when: DateTime<Utc>) -> Event {
    Event::new(
        device(n),
        when,
        EventBody::DeviceRefused {
            kind: RefusedDevice::UsbStorage,
            description: "0781:5567 SanDisk Cruzer".into(),
        },
    )
}

fn stuck_button(n: u16, when: DateTime<Utc>) -> Event {
    Event::new(
        device(n),
        when,
        EventBody::Heartbeat {
            uptime_s: 600,
            spool_pending: 0,
            button_fault: Some(ButtonFault::Stuck),
            display_fault: None,
            storage_fault: None,
        },
    )
}

fn breach(n: u16, when: DateTime<Utc>, breach: Breach) -> Event {
    Event::new(device(n), when, EventBody::SecurityBreach { breach })
}

fn tampered_list(n: u16, when: DateTime<Utc>) -> Event {
    let refused = Breach::PolicyRefused {
        part: PolicyPart::List,
        list: Some("iwf".into()),
        reason: PolicyRefusal::Digest,
    };
    breach(n, when, refused)
}

/// Channels that take every alert and keep it.
#[derive(Default)]
struct Kept(Mutex<Vec<Alert>>);

impl AlertChannels for Kept {
    async fn email(&self, alert: &Alert) -> Option<Result<(), String>> {
        self.0.lock().unwrap().push(alert.clone());
        Some(Ok(()))
    }

    async fn webhook(&self, _: &Alert) -> Option<Result<(), String>> {
        None
    }
}

#[tokio::test]
async fn monitoring_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_monitored_morning(Store::open(&dir.path().join("slate.sqlite")).unwrap()).await;
}

#[tokio::test]
async fn monitoring_on_postgres() {
    let postgres = TestPostgres::start();
    a_monitored_morning(postgres.store()).await;
}

/// Device 12 on a Tuesday morning: a pupil tries DNS-over-HTTPS again and again and meets an
/// illegal-content block, a USB stick goes in, the button sticks; device 14 has been silent
/// since Friday; a report nobody acknowledges is escalated a quarter of an hour later, once.
/// Every alert goes through the outbox and is delivered once; the settings change is audited.
async fn a_monitored_morning(store: Store) {
    let start = at("2026-11-17T08:00:00Z");
    let (amira, _) = two_classes(&store, start);
    for n in [12, 14] {
        let token = store.issue_enrollment_token(device(n), Duration::hours(1), start).unwrap();
        let credential = slate_server::secrets::Secret::generate().hash();
        store.enroll(&token.hash(), device(n), &credential, "0.3.0", start).unwrap();
    }
    let friday = at("2026-11-13T15:00:00Z");
    let hello = Event::new(device(14), friday, EventBody::Hello { software_version: "1".into() });
    store.ingest_reporting(device(14), &[hello], friday).unwrap();

    // The DSL turns the harmful-burst rule on and sets escalation to reach the head too.
    let mut settings = store.alert_settings().unwrap();
    settings.rules.get_mut("harmful_burst").unwrap().on = true;
    settings.escalate_to = vec!["head@school.example".into()];
    let changed = store.set_alert_settings(&settings, "a.dsl", start).unwrap().unwrap();
    assert!(changed.contains("harmful_burst: off, 10 in 10 min -> on, 10 in 10 min"), "{changed}");
    assert!(changed.contains("also escalate to: none -> head@school.example"), "{changed}");
    let audit = store.audit_log(10).unwrap();
    let entry = audit.iter().find(|e| e.action == "changed alert rules").unwrap();
    assert_eq!(entry.actor, "a.dsl");

    // Forty DoH attempts in two minutes across two batches, then an IWF block, a USB stick and
    // a stuck button: one alert per rule.
    let nine = at("2026-11-17T09:00:00Z");
    let doh: Vec<Event> = (0..40)
        .map(|s| blocked(12, nine + Duration::seconds(s * 3), "dns-bypass", Some(&amira)))
        .collect();
    let first = store.ingest_reporting(device(12), &doh[..2], nine + Duration::minutes(1));
    assert_eq!(first.unwrap().new_alerts, 0, "two attempts: under the threshold");
    let rest = store.ingest_reporting(device(12), &doh[2..], nine + Duration::minutes(2));
    assert_eq!(rest.unwrap().new_alerts, 1);
    let more = [
        blocked(12, nine + Duration::minutes(3), "iwf", Some(&amira)),
        refused(12, nine + Duration::minutes(4)),
        stuck_button(12, nine + Duration::minutes(5)),
        stuck_button(12, nine + Duration::minutes(6)),
        // Five adult blocks: under the burst rule's ten.
        blocked(12, nine + Duration::minutes(7), "adult", Some(&amira)),
        blocked(12, nine + Duration::minutes(7), "adult", Some(&amira)),
        blocked(12, nine + Duration::minutes(7), "social-media", Some(&amira)),
        // A tampered list refused twice (one alert), and a staff PIN lockout.
        tampered_list(12, nine + Duration::minutes(7)),
        tampered_list(12, nine + Duration::minutes(8)),
        breach(
            12,
            nine + Duration::minutes(8),
            Breach::PinLockout { wrong_pins: 5, lockouts: 1, locked_for_s: 60 },
        ),
        // The filter on the card refusing its policy is the same rule: no second alert within
        // its window.
        breach(
            12,
            nine + Duration::minutes(8),
            Breach::FilterRefused {
                part: PolicyPart::Filter,
                list: None,
                reason: PolicyRefusal::Signature,
            },
        ),
        // DNS the firewall refused around the filter, twice a window apart on the device: one
        // alert an hour.
        breach(12, nine + Duration::minutes(8), Breach::DnsDropped { dropped: 12, over_s: 60 }),
        breach(12, nine + Duration::minutes(9), Breach::DnsDropped { dropped: 3, over_s: 60 }),
    ];
    let ingested = store.ingest_reporting(device(12), &more, nine + Duration::minutes(8)).unwrap();
    assert_eq!(ingested.new_alerts, 6);

    // The monitoring check at ten: device 14 silent since Friday.
    assert_eq!(monitor_once(&store, &ClockReading::steady(at("2026-11-17T10:00:00Z"))).unwrap(), 1);
    assert_eq!(
        monitor_once(&store, &ClockReading::steady(at("2026-11-17T10:01:00Z"))).unwrap(),
        0,
        "once per silence"
    );

    // A press at 10:14 nobody acknowledges; a deputy DSL with an address; a teacher's report
    // that is acknowledged in time.
    add_staff(&store, "d.deputy", Role::DeputyDsl);
    assert!(store.link_teacher("d.deputy", "Oak", Some("deputy@school.example")).unwrap());
    let pressed = at("2026-11-17T10:14:03Z");
    let press = |n: u16| {
        Event::new(
            device(n),
            pressed,
            EventBody::ReportFiled {
                session: None,
                pupil: None,
                app: None,
                url: None,
                page_title: None,
                blank_latency_us: Some(40_000),
                recent_names: vec![],
                origin: slate_protocol::ReportOrigin::Button,
            },
        )
    };
    let stored = at("2026-11-17T10:14:05Z");
    let unacknowledged = store.ingest_reporting(device(12), &[press(12)], stored).unwrap();
    let unacknowledged = unacknowledged.new_reports[0].incident;
    let seen = store.ingest_reporting(device(14), &[press(14)], stored).unwrap();
    let seen = seen.new_reports[0].incident;
    store.incident_step(seen, Step::Acknowledge, "t.oak", None, stored).unwrap();

    // The clock moves on: nothing before the quarter hour, one escalation at it, none after.
    for (minutes, expected) in [(5, 0), (14, 0), (15, 1), (16, 0), (60, 0)] {
        let now = stored + Duration::minutes(minutes);
        assert_eq!(
            monitor_once(&store, &ClockReading::steady(now)).unwrap(),
            expected,
            "{minutes} min after"
        );
    }

    // Delivered through the outbox, each once.
    let channels = Kept::default();
    let far = at("2026-11-18T00:00:00Z");
    deliver_due(&store, &channels, &OutboxTiming::default(), far).await.unwrap();
    let sent = std::mem::take(&mut *channels.0.lock().unwrap());
    let mut kinds: Vec<String> = sent
        .iter()
        .map(|a| match &a.about {
            AlertAbout::Report => format!("report {:?}", a.device),
            AlertAbout::Rule { rule, count, .. } => format!("{rule} {:?} {count}", a.device),
            AlertAbout::Escalation => format!("escalation {:?}", a.incident),
            AlertAbout::BlockRequest { site, asks } => format!("block request {site} {asks}"),
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "button_fault Some(12) 1".to_owned(),
            "device_silent Some(14) 3".into(),
            "dns_dropped Some(12) 1".into(),
            format!("escalation {:?}", Some(unacknowledged)),
            "filter_bypass Some(12) 3".into(),
            "hardware_refused Some(12) 1".into(),
            "illegal_content Some(12) 1".into(),
            "pin_lockout Some(12) 1".into(),
            "policy_refused Some(12) 1".into(),
            "report Some(12)".into(),
            "report Some(14)".into(),
        ]
    );
    let escalation = sent.iter().find(|a| a.about == AlertAbout::Escalation).unwrap();
    assert_eq!(escalation.also_to, ["deputy@school.example", "head@school.example"]);
    // Breaches reach the senior leaders at once (the deputy had no address yet); a fault or a
    // silent device only the DSL.
    for alert in &sent {
        if let AlertAbout::Rule { rule, .. } = &alert.about {
            let breach = [
                "filter_bypass",
                "illegal_content",
                "hardware_refused",
                "policy_refused",
                "pin_lockout",
                "dns_dropped",
            ]
            .contains(&&**rule);
            let expected: &[&str] = if breach { &["head@school.example"] } else { &[] };
            assert_eq!(alert.also_to, expected, "{rule}");
        }
    }
    assert_eq!(escalation.pressed_at, pressed);
    assert!(sent.iter().all(|a| !format!("{a:?}").contains(amira.as_str())), "no pupil");
    deliver_due(&store, &channels, &OutboxTiming::default(), far).await.unwrap();
    assert!(channels.0.lock().unwrap().is_empty(), "nothing is sent twice");
    let recent = store.rule_alerts(10).unwrap();
    assert_eq!(recent.len(), 8);
    assert!(recent.iter().all(|r| r.sent));
}

/// Retries within moments, and the worker looks often: escalations are queued by the test.
fn quick() -> OutboxTiming {
    OutboxTiming {
        poll: std::time::Duration::from_millis(100),
        first_retry: std::time::Duration::from_millis(100),
        max_retry: std::time::Duration::from_millis(300),
    }
}

/// The DSL sets the rules on the page (audited), a device's events fire one, and the DSL's
/// email says which, on which device, with no pupil and no site; a report nobody acknowledges
/// is escalated to the address the DSL gave.
#[tokio::test]
async fn rules_set_on_the_page_alert_the_dsl_by_email_and_escalate() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let mut server = TestServer::start().await;
    server.restart(smtp_config(smtp_port), quick()).await;
    let credential = server.enroll(12).await;
    let (amira, _) = two_classes(&server.store, Utc::now());

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page("/alert-rules").await;
    assert!(page.contains("Illegal content blocked") && page.contains("Not watched yet"));
    let token = csrf_in(&page);
    let mut form: Vec<(String, String)> = vec![("csrf".into(), token.clone())];
    for rule in slate_server::alert_rules::RULES {
        // Every rule on, the bypass rule at two attempts in five minutes.
        form.push((format!("{}_on", rule.name), "on".into()));
        let threshold = if rule.name == "filter_bypass" { 2 } else { rule.default.threshold };
        form.push((format!("{}_threshold", rule.name), threshold.to_string()));
        form.push((format!("{}_window", rule.name), "5".into()));
    }
    form.push(("escalate_after".into(), "20".into()));
    form.push(("escalate_to".into(), "head@school.example".into()));
    // School hours off (every hour counts): this test escalates on the real clock, whatever
    // the hour it runs at. `escalation_counts_only_school_minutes` tests the school day.
    form.push(("school_start".into(), "08:00".into()));
    form.push(("school_end".into(), "16:30".into()));
    form.push(("school_mon".into(), "on".into()));
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(dsl.post("/alert-rules", &fields).await.status(), 303);
    let settings = server.store.alert_settings().unwrap();
    assert_eq!(settings.escalate_after_minutes, 20);
    assert_eq!(settings.rule(slate_server::alert_rules::RuleId::FilterBypass).threshold, 2);
    let audit = server.store.audit_log(20).unwrap();
    let entry = audit.iter().find(|e| e.action == "changed alert rules").unwrap();
    assert_eq!(entry.actor, "a.dsl");
    assert!(entry
        .detail
        .as_deref()
        .unwrap()
        .contains("filter_bypass: on, 3 in 10 min -> on, 2 in 5 min"));

    // A refused form changes nothing and says why.
    let bad: Vec<(&str, &str)> = vec![("csrf", &token), ("escalate_after", "1")];
    let refused = dsl.post("/alert-rules", &bad).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("Escalate after"));
    assert_eq!(server.store.alert_settings().unwrap(), settings);
    // A teacher may not open the page.
    let mut teacher = Browser::signed_in(&server, "t.oak", Role::Teacher).await;
    assert_eq!(teacher.get("/alert-rules").await.status(), 403);

    // Two DoH attempts: the rule fires; the DSL's email names the rule and the device only.
    let now = Utc::now();
    let events = vec![
        blocked(12, now, "dns-bypass", Some(&amira)),
        blocked(12, now + Duration::seconds(1), "dns-bypass", Some(&amira)),
        blocked(12, now + Duration::seconds(2), "dns-bypass", Some(&amira)),
    ];
    assert_eq!(server.post_events(Some(&credential), batch(events)).await.status(), 200);
    let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email").unwrap();
    assert!(
        message.contains("Subject: Slate: Attempts to go around the filter on device 12"),
        "{message}"
    );
    assert!(message.contains("2 events from"), "{message}");
    assert!(message.contains("To: dsl@school.example"), "{message}");
    assert!(!message.contains("doh.example") && !message.contains(amira.as_str()), "{message}");

    // A report nobody acknowledges: escalated once, with the clock moved past 20 minutes.
    assert_eq!(
        server.post_events(Some(&credential), batch(vec![report(12, None, "t")])).await.status(),
        200
    );
    let incident = server.store.incidents(1).unwrap()[0].id;
    let report_mail = tokio::time::timeout(PATIENCE, mail.recv()).await.unwrap().unwrap();
    assert!(report_mail.contains("reported (incident"), "{report_mail}");
    // The worker records the report's alert as sent just after the mail server took it.
    let far = Utc::now() + Duration::days(1);
    tokio::time::timeout(PATIENCE, async {
        while !server.store.due_alerts(far, 10).unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the report's alert recorded as sent");
    assert_eq!(
        monitor_once(&server.store, &ClockReading::steady(Utc::now() + Duration::minutes(19)))
            .unwrap(),
        0
    );
    let moved = Utc::now() + Duration::minutes(21);
    assert_eq!(monitor_once(&server.store, &ClockReading::steady(moved)).unwrap(), 1);
    assert_eq!(
        monitor_once(&server.store, &ClockReading::steady(Utc::now() + Duration::minutes(40)))
            .unwrap(),
        0
    );
    // Queued as due at the moved clock's time, which the server's worker has not reached: sent
    // by the same delivery, at that time, through the real SMTP channel.
    let notifier = slate_server::notify::Notifier::from_config(&smtp_config(smtp_port)).unwrap();
    let tried = deliver_due(&server.store, &notifier, &quick(), moved).await.unwrap();
    assert_eq!(tried, 1);
    let escalated = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("escalated").unwrap();
    assert!(
        escalated.contains(&format!(
            "Subject: Slate: incident {incident} on device 12 not acknowledged (escalated)"
        )),
        "{escalated}"
    );
    assert!(escalated.contains("head@school.example"), "{escalated}");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(mail.try_recv().is_err(), "one email per alert");
    assert!(server.store.due_alerts(far, 10).unwrap().is_empty(), "everything delivered");
    server.stop().await;
}

#[tokio::test]
async fn a_clock_jump_raises_no_silent_alerts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_clock_that_jumps(Store::open(&dir.path().join("slate.sqlite")).unwrap());
}

#[tokio::test]
async fn a_clock_jump_raises_no_silent_alerts_on_postgres() {
    let postgres = TestPostgres::start();
    a_clock_that_jumps(postgres.store());
}

/// The server's clock jumps a month ahead (bad NTP) while devices 14 and 15 are fine: without
/// the guard both would look silent for weeks. No alert while the clock is suspect, nor once it
/// is put right; then a real outage (neither device in touch for days, the clock keeping time
/// with the boot clock) alerts for both.
fn a_clock_that_jumps(store: Store) {
    let monday = at("2026-11-16T08:00:00Z");
    for (n, seen) in [(14, "2026-11-16T09:00:00Z"), (15, "2026-11-17T09:00:00Z")] {
        let token = store.issue_enrollment_token(device(n), Duration::hours(1), monday).unwrap();
        let credential = slate_server::secrets::Secret::generate().hash();
        store.enroll(&token.hash(), device(n), &credential, "0.3.0", monday).unwrap();
        let hello =
            Event::new(device(n), at(seen), EventBody::Hello { software_version: "1".into() });
        store.ingest_reporting(device(n), &[hello], at(seen)).unwrap();
    }
    // (wall clock, minutes since boot) of one boot.
    let reading = |wall: &str, boot_min: i64| ClockReading {
        wall: at(wall),
        since_boot_ms: Some(boot_min * 60_000),
        boot_id: Some("3f1c2a64-8d7e-4b6a-9c3e-5f1a2b3c4d5e".into()),
    };
    let clock = FakeClock::new(reading("2026-11-17T10:00:00Z", 600));
    let check = |wall: &str, boot_min: i64| {
        clock.set(reading(wall, boot_min));
        monitor_once(&store, &clock.read()).unwrap()
    };
    let steps = [
        // (wall clock, boot minutes, alerts queued)
        ("2026-11-17T10:00:00Z", 600, 0),
        // A month ahead in a minute of boot time: both devices would look 30 days silent.
        ("2026-12-17T10:01:00Z", 601, 0),
        ("2026-12-17T10:02:00Z", 602, 0),
        // Put right: a jump back, still suspect.
        ("2026-11-17T10:03:00Z", 603, 0),
        // Two hours of keeping time: trusted again, and nobody has been silent for days.
        ("2026-11-17T12:04:00Z", 724, 0),
        // The school network goes down after Tuesday: on Friday both devices are silent.
        ("2026-11-20T09:00:00Z", 724 + 4136, 2),
        ("2026-11-20T09:01:00Z", 724 + 4137, 0),
    ];
    for (wall, boot_min, queued) in steps {
        assert_eq!(check(wall, boot_min), queued, "at {wall}");
    }
    let alerts = store.rule_alerts(10).unwrap();
    let mut silent: Vec<u16> =
        alerts.iter().filter(|a| a.rule == "device_silent").filter_map(|a| a.device).collect();
    silent.sort();
    assert_eq!(silent, [14, 15]);
}

/// Seed 004: "if a security breach occurs, SLT are alerted with immediate effect". DNS the
/// device's firewall refused around the filter, and the filter refusing the policy on its card,
/// each reach the DSL and the senior leaders by email at once, with the rules' defaults (on).
/// The server names both newer cases in its answer, so a device sends them.
#[tokio::test]
async fn dns_dropped_and_the_filters_refusal_alert_the_dsl_and_senior_leaders_at_once() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let mut server = TestServer::start().await;
    server.restart(smtp_config(smtp_port), quick()).await;
    let credential = server.enroll(12).await;
    let mut settings = server.store.alert_settings().unwrap();
    settings.escalate_to = vec!["head@school.example".into()];
    server.store.set_alert_settings(&settings, "a.dsl", Utc::now()).unwrap();

    let now = Utc::now();
    let events = vec![
        breach(12, now, Breach::DnsDropped { dropped: 9, over_s: 60 }),
        breach(
            12,
            now + Duration::seconds(1),
            Breach::FilterRefused {
                part: PolicyPart::List,
                list: Some("adult".into()),
                reason: PolicyRefusal::Digest,
            },
        ),
    ];
    let response = server.post_events(Some(&credential), batch(events)).await;
    assert_eq!(response.status(), 200);
    let reply: slate_protocol::IngestReply = response.json().await.unwrap();
    for word in [slate_protocol::ACCEPTS_DNS_DROPPED, slate_protocol::ACCEPTS_FILTER_REFUSED] {
        assert!(reply.accepts.iter().any(|a| a == word), "{word} in {:?}", reply.accepts);
    }
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email").unwrap();
        assert!(message.contains("dsl@school.example"), "{message}");
        assert!(message.contains("head@school.example"), "a breach reaches SLT: {message}");
        let subject = message.lines().find(|l| l.starts_with("Subject: ")).unwrap().to_owned();
        subjects.push(subject);
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Subject: Slate: DNS refused around the filter on device 12",
            "Subject: Slate: Refused or tampered policy on device 12",
        ]
    );
    server.stop().await;
}
