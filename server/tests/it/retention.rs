//! The retention schedule with a moved clock, on both databases: for every record type one
//! record just inside its period and one just outside; a leaver's records going once the
//! leaver period has passed (but their safeguarding incident and the roster row it needs
//! staying) while a pupil still on roll keeps theirs; a clock that looks wrong refused.

use crate::common::{at, device, report, two_classes};
use crate::postgres::TestPostgres;
use chrono::{DateTime, Duration, Utc};
use slate_protocol::device::CheckName;
use slate_protocol::NameVerdict;
use slate_protocol::{
    Event, EventBody, FilterLayer, PupilId, ReportOrigin, SessionEndReason, SessionId,
};
use slate_server::filter_checks::CheckRecord;
use slate_server::incident::{Action, Step};
use slate_server::retention::{purge_once, RecordType, Schedule, MAX_ROWS_PER_RUN};
use slate_server::roster::PupilEntry;
use slate_server::Store;
use RecordType::*;

#[test]
fn the_schedule_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_schedule(&Store::open(&dir.path().join("slate.sqlite")).unwrap());
}

#[test]
fn the_schedule_on_postgres() {
    let postgres = TestPostgres::start();
    a_schedule(&postgres.store());
}

/// The school's records, stamped so that at `now` each type has one record a minute inside
/// its period and one a minute outside.
struct School<'s> {
    store: &'s Store,
    now: DateTime<Utc>,
    schedule: Schedule,
}

impl School<'_> {
    fn inside(&self, record: RecordType) -> DateTime<Utc> {
        self.now - Duration::days(self.schedule.days(record).into()) + Duration::minutes(1)
    }

    fn outside(&self, record: RecordType) -> DateTime<Utc> {
        self.now - Duration::days(self.schedule.days(record).into()) - Duration::minutes(1)
    }

    fn event(&self, body: EventBody, when: DateTime<Utc>) {
        let event = Event::new(device(12), when, body);
        self.store.ingest(device(12), &[event], when).unwrap();
    }

    /// A report pressed (and received) at `when`; its incident.
    fn press(&self, pupil: &str, when: DateTime<Utc>, title: &str, from: ReportOrigin) -> i64 {
        let mut event = report(12, Some(pupil), title);
        event.at = when;
        if let EventBody::ReportFiled { origin, .. } = &mut event.body {
            *origin = from;
        }
        let ingested = self.store.ingest_reporting(device(12), &[event], when).unwrap();
        ingested.new_reports[0].incident
    }

    /// A report pressed a year before `closed`, closed with `action` at `closed`.
    fn closed(
        &self,
        pupil: &str,
        closed: DateTime<Utc>,
        title: &str,
        from: ReportOrigin,
        action: Action,
    ) {
        let incident = self.press(pupil, closed - Duration::days(365), title, from);
        self.store.incident_step(incident, Step::Acknowledge, "d.lead", None, closed).unwrap();
        self.store
            .incident_step(incident, Step::Act(action), "d.lead", Some("why"), closed)
            .unwrap();
    }

    /// A session of `pupil` on device 12 that ended at `end` (one event: the end carries the
    /// start), and an app opened in it.
    fn session(&self, pupil: &PupilId, end: DateTime<Utc>) {
        let session = SessionId::new();
        let started_at = end - Duration::hours(1);
        let body = EventBody::SessionEnded {
            session,
            pupil: pupil.clone(),
            started_at,
            reason: SessionEndReason::SignedOut,
        };
        self.event(body, end);
        let app = EventBody::AppOpened { session, pupil: pupil.clone(), app: "maths".into() };
        self.event(app, end);
    }

    fn blocked(&self, pupil: &PupilId, when: DateTime<Utc>) {
        let body = EventBody::FilterBlocked {
            session: None,
            pupil: Some(pupil.clone()),
            layer: FilterLayer::Dns,
            target: "blocked.example".into(),
            rule: "exact:blocked.example".into(),
            list: "adult".into(),
        };
        self.event(body, when);
    }

    fn agreed(&self, pupil: &PupilId, when: DateTime<Utc>) {
        let body = EventBody::AupAccepted {
            session: SessionId::new(),
            pupil: pupil.clone(),
            key_stage: "ks2".into(),
            text_version: "v1".into(),
            school_version: None,
        };
        self.event(body, when);
    }

    fn register(&self, pupil: &PupilId, to: DateTime<Utc>) {
        let from = to - Duration::hours(1);
        self.store.add_register_entry(device(31), pupil, from, to, "t.oak", to).unwrap();
    }

    /// A termly filter check recorded at `when` with a built-in check device 12 answered then
    /// (its event a device event), and a built-in check never attached, started then and
    /// answered too. Returns the two built-in checks.
    fn filter_checks(&self, when: DateTime<Utc>) -> [i64; 2] {
        let names = [CheckName { name: "bet.example".into(), category: Some("gambling".into()) }];
        let until = when + Duration::minutes(10);
        let runs = [0, 1].map(|_| {
            let run = self
                .store
                .start_filter_check(&[device(12)], &names, "d.lead", when, until)
                .unwrap();
            let command = self.store.filter_check_run(run).unwrap().unwrap().devices[0].command;
            let verdict =
                NameVerdict { name: "bet.example".into(), blocked_by: Some("gambling".into()) };
            let answer = EventBody::FilterChecked {
                command: command as u64,
                results: vec![verdict],
                error: None,
            };
            self.event(answer, when);
            run
        });
        let check = CheckRecord {
            checked_on: when.date_naive(),
            what_checked: "device 12".into(),
            passed: true,
            notes: String::new(),
            actions_taken: String::new(),
            next_due: when.date_naive() + Duration::days(90),
        };
        self.store.record_filter_check(&check, Some(runs[0]), "d.lead", when).unwrap().unwrap();
        runs
    }

    /// Whether a built-in check is kept with device 12's answer.
    fn answer_kept(&self, run: i64) -> bool {
        let run = self.store.filter_check_run(run).unwrap();
        run.is_some_and(|r| r.devices[0].answer.as_ref().is_some_and(|a| a.results.len() == 1))
    }

    fn purge(&self, now: DateTime<Utc>) -> Option<Vec<(RecordType, usize)>> {
        let purged = purge_once(self.store, now, &self.schedule, MAX_ROWS_PER_RUN).unwrap();
        purged.map(|p| p.nonzero())
    }
}

fn a_schedule(store: &Store) {
    let now = at("2052-06-03T12:00:00Z");
    let school = School { store, now, schedule: Schedule::default() };
    let enrolled = now - Duration::days(2);
    let token = store.issue_enrollment_token(device(12), Duration::hours(1), enrolled).unwrap();
    let credential = slate_server::secrets::Secret::generate().hash();
    store.enroll(&token.hash(), device(12), &credential, "0.3.0", enrolled).unwrap();
    let (amira, ben) = two_classes(store, enrolled);
    let cara = PupilId::new("p-cara").unwrap();
    store.save_pupil(&PupilEntry::new(cara.as_str(), "Cara D.", "Oak").unwrap()).unwrap();

    // Ben is on the roll: one record of each type inside its period and one outside.
    let b = ben.as_str();
    let mut filter_checks = Vec::new();
    for side in ["inside", "outside"] {
        let t = |record| match side {
            "inside" => school.inside(record),
            _ => school.outside(record),
        };
        let title = |what: &str| format!("{what} {side}");
        school.closed(
            b,
            t(Incidents),
            &title("safeguarding"),
            ReportOrigin::Button,
            Action::AppClosed,
        );
        school.closed(
            b,
            t(FalseAlarms),
            &title("false alarm"),
            ReportOrigin::Button,
            Action::FalseAlarm,
        );
        let tell = title("tell my teacher");
        school.closed(
            b,
            t(TellMyTeacher),
            &tell,
            ReportOrigin::BlockPage,
            Action::SiteBlockRequested,
        );
        school.session(&ben, t(Sessions));
        school.register(&ben, t(Sessions));
        school.blocked(&ben, t(FilteringLog));
        school.agreed(&ben, t(AupAcceptances));
        let heartbeat = EventBody::Heartbeat {
            uptime_s: 5,
            spool_pending: 0,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        };
        school.event(heartbeat, t(DeviceEvents));
        let bypass_from = t(Bypasses) - Duration::hours(2);
        store
            .request_bypass(
                "ks2",
                "history.example",
                bypass_from,
                t(Bypasses),
                "WW2",
                "t.oak",
                bypass_from,
            )
            .unwrap();
        // An alert sent on every channel; its incident is still open, so its report stays.
        let open = school.press(b, t(Alerts), &title("alert"), ReportOrigin::Button);
        let alert =
            store.due_alerts(now, 100).unwrap().into_iter().find(|a| a.incident == Some(open));
        store.alert_tried(alert.unwrap().id, true, true, t(Alerts), None).unwrap();
        store.audit(t(Audit), "d.lead", "viewed pupil", Some(b), None).unwrap();
        // An enrollment token nobody used, for a device IT never set up.
        let spare = device(if side == "inside" { 20 } else { 21 });
        let issued = t(Expired) - Duration::hours(1);
        store.issue_enrollment_token(spare, Duration::hours(1), issued).unwrap();
        filter_checks.push(school.filter_checks(t(FilterChecks)));
    }
    let [inside_checks, outside_checks] = [filter_checks[0], filter_checks[1]];
    // Kept whatever their age: an incident still open, and a "tell my teacher" the DSL
    // escalated (a safeguarding incident, not a message).
    school.press(b, now - Duration::days(40 * 365), "open for ever", ReportOrigin::Button);
    let escalated = school.outside(TellMyTeacher);
    school.closed(b, escalated, "tell escalated", ReportOrigin::BlockPage, Action::Escalated);

    // Amira left a minute more than the leaver period ago; everything of hers is recent, and
    // Ben had device 12 the day before her.
    let a = amira.as_str();
    let recent = now - Duration::days(10);
    let bens_lesson = recent - Duration::days(1);
    school.session(&ben, bens_lesson);
    school.closed(a, recent, "amira safeguarding", ReportOrigin::Button, Action::Referred);
    school.closed(a, recent, "amira false alarm", ReportOrigin::Button, Action::FalseAlarm);
    school.session(&amira, recent);
    school.register(&amira, recent);
    school.blocked(&amira, recent);
    school.agreed(&amira, recent);
    assert!(store.mark_pupil_left(&amira, school.outside(Leavers)).unwrap());
    // Cara left a minute less than the leaver period ago.
    school.session(&cara, recent);
    school.blocked(&cara, recent);
    assert!(store.mark_pupil_left(&cara, school.inside(Leavers)).unwrap());
    // Devices still report: the server's clock agrees with theirs.
    let hello = EventBody::Hello { software_version: "0.3.0".into() };
    school.event(hello, now - Duration::hours(1));

    // At `now`: every record a minute outside its period goes, with Amira's records but her
    // safeguarding incident; Ben's and Cara's recent ones stay.
    let first = school.purge(now).expect("the clock is right");
    let expected = [
        (Incidents, 1),
        (FalseAlarms, 1 + 1),
        (TellMyTeacher, 1),
        // Ben's session, its event, his register line and app, and Amira's four.
        (Sessions, 4 + 4),
        (FilteringLog, 1 + 1),
        (AupAcceptances, 1 + 1),
        // The heartbeat, and the four filter check answers' events (all years old): the
        // answers themselves are kept with their checks.
        (DeviceEvents, 1 + 4),
        (Bypasses, 1),
        // The recorded check outside, and its built-in check's answer and run; the unattached
        // one's answer and run.
        (FilterChecks, 1 + 2 + 2),
        (Alerts, 1),
        // The spare token, the policy refresh queued when Amira left (the one queued when
        // Cara left stays: it is the newest command), and the four built-in checks'
        // `check_filter` commands, long expired.
        (Expired, 1 + 1 + 4),
        // The view, and the outside filter checks' three (two started, one recorded): the
        // audit log's period is the filter checks'.
        (Audit, 1 + 3),
    ];
    assert_eq!(first, expected);
    assert!(inside_checks.iter().all(|run| school.answer_kept(*run)), "after the events went");
    assert!(outside_checks.iter().all(|run| store.filter_check_run(*run).unwrap().is_none()));
    assert_eq!(store.filter_checks(10).unwrap().len(), 1, "the inside check");
    let amira_row = store.pupil(a).unwrap().expect("her safeguarding incident needs her name");
    assert!(amira_row.left);
    assert!(store.pupil(cara.as_str()).unwrap().is_some());
    let audited = store.audit_log(5).unwrap();
    let run = audited.iter().find(|e| e.action == "purged old records").unwrap();
    assert_eq!((run.actor.as_str(), run.at), ("system", now));
    let detail = run.detail.as_deref().unwrap();
    assert!(detail.starts_with("incidents 1, false_alarms 2,"), "{detail}");
    assert!(!detail.contains(a) && !detail.contains(b), "counts only: {detail}");

    // The clock moves on two minutes: the records that were a minute inside go too, and so do
    // Cara's, with her roster row, nothing being left that names her.
    let later = now + Duration::minutes(2);
    let second = school.purge(later).expect("the clock is right");
    let expected = [
        (Incidents, 1),
        (FalseAlarms, 1),
        (TellMyTeacher, 1),
        // Ben's four, and Cara's session, its event and app.
        (Sessions, 4 + 3),
        (FilteringLog, 1 + 1),
        (AupAcceptances, 1),
        (DeviceEvents, 1),
        (Bypasses, 1),
        (FilterChecks, 1 + 2 + 2),
        (Alerts, 1),
        (Expired, 1),
        (Audit, 1 + 3),
        (Leavers, 1),
    ];
    assert_eq!(second, expected);
    assert!(inside_checks.iter().all(|run| store.filter_check_run(*run).unwrap().is_none()));
    assert!(store.filter_checks(10).unwrap().is_empty());
    assert!(store.pupil(cara.as_str()).unwrap().is_none(), "nothing names her");
    assert!(store.pupil(a).unwrap().is_some());
    assert!(store.pupil(b).unwrap().is_some(), "on the roll");
    let who = store.who_had(device(12), bens_lesson - Duration::minutes(30)).unwrap();
    assert_eq!(who.map(|w| w.pupil), Some(ben.clone()), "a pupil on the roll keeps theirs");
    assert_eq!(store.who_had(device(12), recent - Duration::minutes(30)).unwrap(), None);
    assert_eq!(school.purge(later), Some(vec![]), "nothing more is due");

    let mut kept: Vec<String> =
        store.reports(100).unwrap().into_iter().filter_map(|r| r.page_title).collect();
    kept.sort();
    let expected =
        ["alert inside", "alert outside", "amira safeguarding", "open for ever", "tell escalated"];
    assert_eq!(kept, expected);

    // The server's clock jumps five years ahead: refused, nothing goes, and it says so.
    let jumped = later + Duration::days(5 * 365);
    assert_eq!(school.purge(jumped), None);
    assert_eq!(store.reports(100).unwrap().len(), expected.len());
    let audited = store.audit_log(1).unwrap();
    assert_eq!(audited[0].action, "refused to purge old records");

    // Devices report 25 years on: Amira's safeguarding incident has had its period, and with it
    // goes her roster row, nothing being left that names her; the open incidents stay.
    let far = later + Duration::days(schedule_days(&school, Incidents));
    school.event(EventBody::Hello { software_version: "9.0.0".into() }, far);
    let purged = school.purge(far).expect("the clock is right");
    assert!(purged.contains(&(Leavers, 1)), "{purged:?}");
    assert!(store.pupil(a).unwrap().is_none());
    assert!(store.pupil(b).unwrap().is_some(), "on the roll");
    let mut kept: Vec<String> =
        store.reports(100).unwrap().into_iter().filter_map(|r| r.page_title).collect();
    kept.sort();
    assert_eq!(kept, ["alert inside", "alert outside", "open for ever"]);
}

fn schedule_days(school: &School<'_>, record: RecordType) -> i64 {
    school.schedule.days(record).into()
}
