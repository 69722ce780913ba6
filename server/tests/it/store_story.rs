//! One school term told to the store, run on both databases the server supports: a SQLite file
//! and a private PostgreSQL server. Same calls, same answers.

use crate::common::{at, device, report, session_started, two_classes};
use crate::postgres::TestPostgres;
use chrono::Duration;
use slate_protocol::device::CommandAction;
use slate_protocol::{
    BootId, ClockEvidence, Event, EventBody, PupilId, SessionEndReason, SessionId,
};
use slate_server::auth::Role;
use slate_server::incident::{Action, Details, Status, Step, WorkflowError};
use slate_server::retention::Cutoffs;
use slate_server::retention::RecordType::{self, Incidents, Sessions};
use slate_server::roster::PupilEntry;
use slate_server::secrets::Secret;
use slate_server::store::{
    CredentialState, EnrollOutcome, EnrollRefusal, PostgresOptions, StepError,
};
use slate_server::who_had::{Answer, Source};
use slate_server::Store;
use std::path::Path;

#[test]
fn the_term_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
    assert_eq!(store.backend(), slate_server::store::sql::Backend::Sqlite);
    a_term(&store);
}

#[test]
fn the_term_on_postgres() {
    let postgres = TestPostgres::start();
    let store = postgres.store();
    assert_eq!(store.backend(), slate_server::store::sql::Backend::Postgres);
    a_term(&store);
    drop(store);
    // A second server start finds the schema in place and the records kept.
    let again = postgres.store();
    assert_eq!(again.reports(10).unwrap().len(), 1, "the open incident's report is kept");
}

#[test]
fn a_power_cut_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_power_cut(&Store::open(&dir.path().join("slate.sqlite")).unwrap());
}

#[test]
fn a_power_cut_on_postgres() {
    let postgres = TestPostgres::start();
    a_power_cut(&postgres.store());
}

/// Device 14 loses power with Ben signed in and comes back with a new boot id; later device 14
/// goes silent with Amira signed in. Neither pupil is named after the device's last word.
fn a_power_cut(store: &Store) {
    let tuesday = at("2026-11-17T08:00:00Z");
    let token = store.issue_enrollment_token(device(14), Duration::hours(1), tuesday).unwrap();
    store.enroll(&token.hash(), device(14), &Secret::generate().hash(), "0.3.0", tuesday).unwrap();
    let boot = |n: u8, synchronised| ClockEvidence {
        boot_id: BootId::parse(&format!("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b{n:02x}")).unwrap(),
        boottime_ms: 5_000,
        synchronised,
    };
    let heartbeat = |when: &str, n| {
        Event::new(
            device(14),
            at(when),
            EventBody::Heartbeat {
                uptime_s: 5,
                spool_pending: 0,
                button_fault: None,
                display_fault: None,
                storage_fault: None,
            },
        )
        .with_clock(boot(n, true))
    };
    let ben = SessionId::new();
    let mut unsynced_report = report(14, Some("p-ben"), "t");
    unsynced_report.at = at("2026-11-17T09:30:00Z");
    let morning = vec![
        session_started(14, ben, "p-ben", "2026-11-17T09:00:00Z").with_clock(boot(1, true)),
        unsynced_report.with_clock(boot(1, false)),
        heartbeat("2026-11-17T09:41:00Z", 1),
    ];
    store.ingest(device(14), &morning, at("2026-11-17T09:41:00Z")).unwrap();
    assert_eq!(store.reports(10).unwrap()[0].clock_synchronised, Some(false));
    assert_eq!(store.fleet().unwrap()[0].clock_synchronised, Some(true), "the last word's");
    let hello = Event::new(
        device(14),
        at("2026-11-17T11:00:00Z"),
        EventBody::Hello { software_version: "0.3.1".into() },
    )
    .with_clock(boot(2, false));
    store.ingest(device(14), &[hello], at("2026-11-17T11:00:00Z")).unwrap();
    let who = |when| store.who_had(device(14), at(when)).unwrap().map(|w| w.pupil.to_string());
    assert_eq!(who("2026-11-17T09:40:00Z").as_deref(), Some("p-ben"));
    assert_eq!(who("2026-11-17T10:00:00Z"), None, "not after the last word before the power cut");
    assert_eq!(store.fleet().unwrap()[0].clock_synchronised, Some(false));
    let sessions = store.device_sessions(device(14), 10).unwrap();
    assert_eq!(sessions[0].ended_at, Some(at("2026-11-17T09:41:00Z")));
    assert_eq!(
        (sessions[0].end_reason.as_deref(), sessions[0].end_inferred),
        (Some("device_restarted"), true)
    );

    let amira = SessionId::new();
    let afternoon = vec![
        session_started(14, amira, "p-amira", "2026-11-17T13:00:00Z").with_clock(boot(2, true)),
        heartbeat("2026-11-17T13:05:00Z", 2),
    ];
    store.ingest(device(14), &afternoon, at("2026-11-17T13:05:00Z")).unwrap();
    assert_eq!(store.end_silent_sessions(at("2026-11-17T13:07:00Z")).unwrap(), 0);
    assert_eq!(store.end_silent_sessions(at("2026-11-17T13:09:00Z")).unwrap(), 1);
    assert_eq!(who("2026-11-17T13:04:00Z").as_deref(), Some("p-amira"));
    assert_eq!(who("2026-11-17T13:06:00Z"), None);
    let answer =
        store.who_had_any(device(14), at("2026-11-17T13:04:00Z")).unwrap().into_one().unwrap();
    assert_eq!((answer.end_reason.as_deref(), answer.end_inferred), (Some("device_silent"), true));
    // Same boot again: it was only offline.
    store
        .ingest(device(14), &[heartbeat("2026-11-17T13:30:00Z", 2)], at("2026-11-17T13:30:00Z"))
        .unwrap();
    assert_eq!(who("2026-11-17T13:06:00Z").as_deref(), Some("p-amira"));
}

fn a_term(store: &Store) {
    let tuesday = at("2026-11-17T08:00:00Z");

    // IT enrolls device 12; once the device has spoken, its token is spent.
    let token = store.issue_enrollment_token(device(12), Duration::hours(1), tuesday).unwrap();
    let credential = Secret::generate();
    let enrolled =
        store.enroll(&token.hash(), device(12), &credential.hash(), "0.3.0", tuesday).unwrap();
    assert_eq!(enrolled, EnrollOutcome::Enrolled);
    let hello =
        Event::new(device(12), tuesday, EventBody::Hello { software_version: "0.3.0".into() });
    store.ingest(device(12), &[hello], tuesday).unwrap();
    let again =
        store.enroll(&token.hash(), device(12), &Secret::generate().hash(), "0.3.0", tuesday);
    assert!(matches!(again.unwrap(), EnrollOutcome::Refused(_)), "a token is used once");
    let holder = |secret: &Secret| {
        store
            .authenticate(&secret.hash(), tuesday)
            .unwrap()
            .map(|a| (a.device, a.rotation_requested))
    };
    assert_eq!(holder(&credential), Some((device(12), false)));
    assert_eq!(holder(&Secret::generate()), None);
    // IT has the device replace its credential: asked, given, used; the old one then fails.
    assert!(store.request_credential_rotation(device(12), "it.jones", tuesday).unwrap());
    assert_eq!(holder(&credential), Some((device(12), true)));
    let replacement = Secret::generate();
    assert!(store.replace_credential(device(12), &replacement.hash()).unwrap());
    assert_eq!(holder(&credential), Some((device(12), true)), "until the new one is used");
    assert_eq!(holder(&replacement), Some((device(12), false)));
    assert_eq!(holder(&credential), None);
    assert_eq!(store.credential_state(device(12)).unwrap(), Some(CredentialState::InUse));
    // A class set's one token: one new device, then used up; never an enrolled one.
    let class_set = store.issue_class_set_token(1, Duration::days(4), "it.jones", tuesday).unwrap();
    let enroll_with = |n: u16| {
        store.enroll(&class_set.hash(), device(n), &Secret::generate().hash(), "0.3.0", tuesday)
    };
    assert_eq!(enroll_with(12).unwrap(), EnrollOutcome::Refused(EnrollRefusal::DeviceEnrolled));
    assert_eq!(enroll_with(40).unwrap(), EnrollOutcome::Enrolled);
    assert_eq!(enroll_with(41).unwrap(), EnrollOutcome::Refused(EnrollRefusal::UsedUp));

    store.save_pupil(&PupilEntry::new("p-amira", "Amira K.", "Year 2").unwrap()).unwrap();
    store.save_pupil(&PupilEntry::new("p-ben", "Ben T.", "Year 2").unwrap()).unwrap();

    // Tuesday: Amira has device 12 from 09:00 to 10:30 and presses the button at 10:14.
    let session = SessionId::new();
    let amira = PupilId::new("p-amira").unwrap();
    let mut filed = report(12, Some("p-amira"), "A page that upset her");
    if let EventBody::ReportFiled { session: s, .. } = &mut filed.body {
        *s = Some(session);
    }
    let day = vec![
        Event::new(
            device(12),
            at("2026-11-17T08:59:00Z"),
            EventBody::Hello { software_version: "0.3.1".into() },
        ),
        session_started(12, session, "p-amira", "2026-11-17T09:00:00Z"),
        filed,
        Event::new(
            device(12),
            at("2026-11-17T10:30:00Z"),
            EventBody::SessionEnded {
                session,
                pupil: amira.clone(),
                started_at: at("2026-11-17T09:00:00Z"),
                reason: SessionEndReason::EndOfLesson,
            },
        ),
    ];
    let received = at("2026-11-17T10:14:04Z");
    let first = store.ingest_reporting(device(12), &day, received).unwrap();
    assert_eq!((first.reply.stored, first.reply.duplicates), (4, 0));
    assert_eq!(first.new_reports.len(), 1);
    assert_eq!(first.new_reports[0].pupil.as_ref(), Some(&amira));
    // The device did not hear the answer and sends the batch again: nothing twice.
    let resent = store.ingest_reporting(device(12), &day, received).unwrap();
    assert_eq!((resent.reply.stored, resent.reply.duplicates), (0, 4));
    assert!(resent.new_reports.is_empty());
    let record = store.device(device(12)).unwrap().unwrap();
    assert_eq!(record.software_version, "0.3.1");

    // "Who had device 12 at 10:14 last Tuesday?"
    let who = store.who_had(device(12), at("2026-11-17T10:14:00Z")).unwrap().unwrap();
    assert_eq!((who.pupil, who.session), (amira.clone(), session));
    assert_eq!(store.who_had(device(12), at("2026-11-17T10:31:00Z")).unwrap(), None);
    let sessions = store.device_sessions(device(12), 10).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].pupil_name.as_deref(), Some("Amira K."));
    assert_eq!(sessions[0].end_reason.as_deref(), Some("end_of_lesson"));

    // iPad 31 cannot run Slate: its teacher records Ben for the 13:00 lesson.
    let ben = PupilId::new("p-ben").unwrap();
    store
        .add_register_entry(
            device(31),
            &ben,
            at("2026-11-17T13:00:00Z"),
            at("2026-11-17T14:00:00Z"),
            "mrs.jones",
            at("2026-11-17T12:55:00Z"),
        )
        .unwrap();
    let ipad =
        store.who_had_any(device(31), at("2026-11-17T13:30:00Z")).unwrap().into_one().unwrap();
    assert_eq!((ipad.pupil.as_str(), ipad.source), ("p-ben", Source::Register));
    assert_eq!(ipad.pupil_name.as_deref(), Some("Ben T."));
    let pi = store.who_had_any(device(12), at("2026-11-17T10:14:00Z")).unwrap().into_one().unwrap();
    assert_eq!((pi.pupil.as_str(), pi.source), ("p-amira", Source::Session));

    // The DSL works the incident.
    let incidents = store.incidents(10).unwrap();
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(incident.status, Status::New);
    assert_eq!(incident.report.page_title.as_deref(), Some("A page that upset her"));
    let id = incident.id;
    let dsl = "ms.patel";
    let acknowledged_at = at("2026-11-17T10:20:00Z");
    assert_eq!(
        store.incident_step(id, Step::Acknowledge, dsl, None, acknowledged_at).unwrap(),
        Status::Acknowledged
    );
    let twice = store.incident_step(id, Step::Acknowledge, dsl, None, acknowledged_at);
    assert!(matches!(twice, Err(StepError::Workflow(WorkflowError::AlreadyAcknowledged))));
    store
        .incident_details(
            id,
            &Details {
                category: Some("inappropriate content".into()),
                location: Some("Room 4, maths".into()),
                description: Some("A video site's suggestion".into()),
                ..Details::default()
            },
            dsl,
            at("2026-11-17T10:25:00Z"),
        )
        .unwrap();
    store
        .incident_step(
            id,
            Step::Act(Action::SiteBlockRequested),
            dsl,
            Some("Asked IT to block the site"),
            at("2026-11-17T10:40:00Z"),
        )
        .unwrap();
    store.incident_note(id, dsl, "Spoke to Amira's parents", at("2026-11-17T15:30:00Z")).unwrap();
    let (record, history) = store.incident(id).unwrap().unwrap();
    assert_eq!(record.status, Status::Actioned(Action::SiteBlockRequested));
    assert_eq!(record.details.location.as_deref(), Some("Room 4, maths"));
    let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["acknowledged", "details", "action", "note"]);
    assert_eq!(store.device_incidents(12, 10).unwrap().len(), 1);
    assert!(matches!(store.incident_note(id + 1000, dsl, "x", tuesday), Err(StepError::NotFound)));

    // Staff accounts, their sessions and the audit log.
    let staff_id =
        store.save_staff(dsl, Role::Dsl, "$argon2id$test", Some("SECRET"), tuesday).unwrap();
    assert!(store.use_totp_step(staff_id, 100).unwrap());
    assert!(!store.use_totp_step(staff_id, 100).unwrap(), "a code is never accepted twice");
    let cookie = Secret::generate();
    store.create_session(&cookie.hash(), staff_id, "csrf-token", tuesday).unwrap();
    let signed_in = store.session(&cookie.hash()).unwrap().unwrap();
    assert_eq!(signed_in.csrf_token, "csrf-token");
    store.delete_session(&cookie.hash()).unwrap();
    assert!(store.session(&cookie.hash()).unwrap().is_none());
    store.audit(acknowledged_at, dsl, "viewed incident", Some(&id.to_string()), None).unwrap();
    let audit = store.audit_log(10).unwrap();
    assert_eq!(audit[0].action, "viewed incident");

    // A teacher's "eyes on me" reaches every device, once.
    let issued = at("2026-11-17T11:00:00Z");
    let command = store
        .queue_command(
            None,
            CommandAction::LockScreens,
            issued,
            issued + Duration::minutes(5),
            "mr.smith",
        )
        .unwrap();
    let (commands, cursor) =
        store.commands_for(device(12), 0, issued, slate_server::store::Understands::ALL).unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(cursor, command as u64);
    assert!(store
        .commands_for(device(12), cursor, issued, slate_server::store::Understands::ALL)
        .unwrap()
        .0
        .is_empty());

    // Wednesday: a press with nobody signed in; nobody has looked at it yet.
    let mut unsigned = report(12, None, "Left open");
    unsigned.at = at("2026-11-18T09:00:00Z");
    let wednesday = store.ingest_reporting(device(12), &[unsigned], at("2026-11-18T09:00:01Z"));
    assert_eq!(wednesday.unwrap().new_reports.len(), 1);
    assert_eq!(store.reports(10).unwrap().len(), 2);

    // Retention: a year on, everything closed is purged; the DSL's open work never is.
    let purged = store.purge(&Cutoffs::uniform(at("2027-12-01T00:00:00Z")), 10_000).unwrap();
    // Tuesday's incident with its report and event; the session, its start and end and the
    // register line; two hellos; the enrollment and class-set tokens that expired (the "eyes
    // on me" command stays: it is the newest); the audit entries: Tuesday's look-up; the
    // device enrolling, being asked to replace its credential and replacing it; the class-set
    // token made, and device 40 enrolled with it.
    let expected = [
        (Incidents, 1),
        (Sessions, 4),
        (RecordType::DeviceEvents, 2),
        (RecordType::Expired, 2),
        (RecordType::Audit, 6),
    ];
    assert_eq!(purged.nonzero(), expected);
    assert_eq!(store.who_had(device(12), at("2026-11-17T10:14:00Z")).unwrap(), None);
    assert_eq!(store.who_had_any(device(31), at("2026-11-17T13:30:00Z")).unwrap(), Answer::Nobody);
    let kept = store.reports(10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].page_title.as_deref(), Some("Left open"));

    // The device is stolen: revoked, nothing it holds works.
    assert!(store.revoke_device(device(12), "h.patel", at("2027-12-01T09:00:00Z")).unwrap());
    assert_eq!(holder(&replacement), None);
    assert!(matches!(
        store.credential_state(device(12)).unwrap(),
        Some(CredentialState::Revoked { by, .. }) if by == "h.patel"
    ));
}

/// Off this machine, PostgreSQL is reached over TLS only, and only when its certificate checks
/// out: the test's server takes TLS on 127.0.0.1 and refuses plain TCP.
#[test]
fn a_networked_postgres_is_reached_over_checked_tls() {
    let cluster = TestPostgres::start_tls();
    let (url, ca) = cluster.tls();
    let store = Store::connect_postgres(url, with_ca(ca)).expect("TLS with the trust's CA");
    store.save_pupil(&PupilEntry::new("p-1", "Amira K.", "Year 2").unwrap()).unwrap();
    assert!(store.pupil_known(&PupilId::new("p-1").unwrap()).unwrap());

    let unknown_ca =
        Store::connect_postgres(url, Default::default()).err().expect("an unknown CA is refused");
    assert!(unknown_ca.to_string().contains("certificate"), "{unknown_ca}");

    let plain = url.replace("sslmode=require", "sslmode=disable");
    let refused = Store::connect_postgres(&plain, with_ca(ca)).err().expect("no plain TCP");
    assert!(refused.to_string().contains("no encryption"), "{refused}");

    let missing = Store::connect_postgres(url, with_ca(Path::new("/nonexistent/ca.pem")));
    let missing = missing.err().expect("a missing CA file is named");
    assert!(missing.to_string().contains("/nonexistent/ca.pem"), "{missing}");
}

fn with_ca(ca: &Path) -> PostgresOptions<'_> {
    PostgresOptions { ca_file: Some(ca), ..Default::default() }
}

/// A trust's schools share one PostgreSQL database, each in its own schema: two schools' device
/// 12 and their records stay apart, and each server finds its own again.
#[test]
fn schools_sharing_a_postgres_database_keep_their_own_records() {
    let cluster = TestPostgres::start();
    let school = |schema| {
        let options = PostgresOptions { schema: Some(schema), ..Default::default() };
        Store::connect_postgres(&cluster.url, options).unwrap()
    };
    let (oakfield, riverside) = (school("oakfield"), school("riverside"));
    let now = at("2026-11-17T08:00:00Z");
    for store in [&oakfield, &riverside] {
        let token = store.issue_enrollment_token(device(12), Duration::hours(1), now).unwrap();
        let enrolled =
            store.enroll(&token.hash(), device(12), &Secret::generate().hash(), "0.3.0", now);
        assert_eq!(enrolled.unwrap(), EnrollOutcome::Enrolled, "each school has its own device 12");
    }
    oakfield.save_pupil(&PupilEntry::new("p-1", "Amira K.", "Year 2").unwrap()).unwrap();
    let amira = PupilId::new("p-1").unwrap();
    assert!(!riverside.pupil_known(&amira).unwrap());
    drop(oakfield);
    assert!(school("oakfield").pupil_known(&amira).unwrap(), "found again after a restart");

    let bad = PostgresOptions { schema: Some("oak; DROP TABLE pupils"), ..Default::default() };
    let refused = Store::connect_postgres(&cluster.url, bad).err().expect("a bad schema name");
    assert!(refused.to_string().contains("is not usable"), "{refused}");
}

/// The two schemas must not drift: every table and column in one is in the other, with the
/// matching type and the same NOT NULL.
#[test]
fn postgres_and_sqlite_schemas_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slate.sqlite");
    drop(Store::open(&path).unwrap());
    let sqlite = rusqlite::Connection::open(&path).unwrap();
    let mut statement = sqlite
        .prepare(
            "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0
             FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let sqlite_columns: std::collections::BTreeSet<(String, String, String, bool)> = statement
        .query_map([], |r| {
            let kind: String = r.get(2)?;
            let kind = match kind.as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "BLOB" => "bytea",
                other => panic!("a SQLite column of type {other}: map it here"),
            };
            Ok((r.get(0)?, r.get(1)?, kind.to_owned(), r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    let cluster = TestPostgres::start();
    drop(cluster.store());
    let mut postgres = postgres::Client::connect(&cluster.url, postgres::NoTls).unwrap();
    let postgres_columns: std::collections::BTreeSet<(String, String, String, bool)> = postgres
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO'
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'schema_migrations'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert!(sqlite_columns.len() > 100, "read the SQLite schema: {sqlite_columns:?}");
    let only_sqlite: Vec<_> = sqlite_columns.difference(&postgres_columns).collect();
    let only_postgres: Vec<_> = postgres_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_postgres:#?}"
    );
}

/// A SQLite database made before the migrations were files of their own per engine (the
/// fixture is its dump, at schema version 9) opens and migrates: its schema is then exactly a
/// fresh database's, and its records are kept.
#[test]
fn a_sqlite_database_made_by_earlier_code_opens_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.sqlite");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch(include_str!("../fixtures/slate-v9.sqlite.sql"))
        .unwrap();
    let store = Store::open(&old).unwrap();
    assert!(store.pupil_known(&PupilId::new("p-old").unwrap()).unwrap());
    assert_eq!(store.classes().unwrap().len(), 2);
    assert!(store.staff_by_username("t.old").unwrap().is_some());
    drop(store);
    let fresh = dir.path().join("fresh.sqlite");
    drop(Store::open(&fresh).unwrap());

    let schema = |path: &Path| {
        let connection = rusqlite::Connection::open(path).unwrap();
        let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let mut statement = connection
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        let objects: Vec<(String, String, String, Option<String>)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (version, objects)
    };
    let (old_version, old_objects) = schema(&old);
    // The newest version is the fresh database's: compared whole below.
    assert!(old_version > 9, "the fixture, at version 9, migrated forward: {old_version}");
    assert!(old_objects.len() > 30, "read the schema: {old_objects:?}");
    assert_eq!((old_version, old_objects), schema(&fresh));
}

#[test]
fn an_incident_recorded_by_hand_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_recorded_incident(&Store::open(&dir.path().join("slate.sqlite")).unwrap());
}

#[test]
fn an_incident_recorded_by_hand_on_postgres() {
    let postgres = TestPostgres::start();
    a_recorded_incident(&postgres.store());
}

/// A teacher records an incident about a pupil of their class with no device; the DSL records
/// one on iPad 7 (in the register, never enrolled). Each is an incident like a device's report:
/// in the searches, the workflow, the governors' facts, with its alert queued for the DSL.
fn a_recorded_incident(store: &Store) {
    use slate_server::incident::{check_recorded, RecordFields};
    use slate_server::store::IncidentFilter;
    let now = at("2026-11-17T12:00:00Z");
    let (amira, ben) = two_classes(store, now);
    let phc = slate_server::auth::hash_password("x", slate_server::auth::HashCost::Cheap);
    store.save_staff("t.oak", Role::Teacher, &phc, None, now).unwrap();
    assert!(store.link_teacher("t.oak", "Oak", None).unwrap());
    let theirs: Vec<_> =
        store.teacher_roster_names("t.oak").unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(theirs, std::slice::from_ref(&amira), "their own class only");

    let fields = RecordFields {
        happened_at: "2026-11-17T10:14".into(),
        pupil: amira.as_str().into(),
        place: "home".into(),
        description: "Saw a frightening video on a tablet".into(),
        category: "upsetting_content".into(),
        action_taken: "Told the parents".into(),
        ..RecordFields::default()
    };
    let recorded = check_recorded(&fields, now).unwrap();
    let first = store.record_incident(&recorded, "t.oak", now).unwrap();
    let on_ipad = RecordFields {
        pupil: ben.as_str().into(),
        device: "7".into(),
        place: "".into(),
        category: "contact".into(),
        ..fields
    };
    let second =
        store.record_incident(&check_recorded(&on_ipad, now).unwrap(), "d.lead", now).unwrap();

    let (incident, entries) = store.incident(first).unwrap().unwrap();
    assert_eq!(incident.status, Status::New);
    assert_eq!(incident.report.recorded_by.as_deref(), Some("t.oak"));
    assert_eq!(
        (incident.report.device, incident.report.pupil_name.as_deref()),
        (None, Some("Amira K."))
    );
    assert_eq!(incident.report.pressed_at, at("2026-11-17T10:14:00Z"));
    assert_eq!(incident.details.location.as_deref(), Some("home"));
    let first_line: Vec<_> =
        entries.iter().map(|e| (e.kind.as_str(), e.staff.as_str(), e.note.as_deref())).collect();
    assert_eq!(first_line, [("recorded", "t.oak", Some("Told the parents"))]);

    // In the searches the list and the chronology make, and on device 7's record only.
    let found = |filter: IncidentFilter| -> Vec<i64> {
        store.search_incidents(&filter, 10, 0).unwrap().iter().map(|i| i.id).collect()
    };
    assert_eq!(found(IncidentFilter { class: Some("Oak".into()), ..Default::default() }), [first]);
    assert_eq!(
        found(IncidentFilter { pupil: Some(ben.as_str().into()), ..Default::default() }),
        [second]
    );
    assert_eq!(
        found(IncidentFilter { category: Some("contact".into()), ..Default::default() }),
        [second]
    );
    assert_eq!(found(IncidentFilter { device: Some(7), ..Default::default() }), [second]);
    let on_seven: Vec<i64> = store.device_incidents(7, 10).unwrap().iter().map(|i| i.id).collect();
    assert_eq!(on_seven, [second]);
    assert!(store.teacher_new_reports("t.oak", 10).unwrap().is_empty(), "no device is waiting");
    let facts =
        store.incident_facts(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z")).unwrap();
    assert_eq!(facts.len(), 2);

    // Alerts for both, to the DSL alone, queued with them.
    let alerts = store.due_alerts(now, 10).unwrap();
    let queued: Vec<_> = alerts
        .iter()
        .map(|a| (a.incident, a.device, a.recorded_by.as_deref(), a.also_to.len()))
        .collect();
    assert_eq!(
        queued,
        [(Some(first), None, Some("t.oak"), 0), (Some(second), Some(7), Some("d.lead"), 0)]
    );

    // The same workflow as any incident.
    store.incident_step(first, Step::Acknowledge, "d.lead", None, now).unwrap();
    let escalated = store.incident_step(first, Step::Act(Action::Escalated), "d.lead", None, now);
    assert_eq!(escalated.unwrap(), Status::Actioned(Action::Escalated));
}
