//! The termly filter check (issue 17), through the real router on either store: the DSL records
//! a check (newest first, next check due, audited, CSRF), starts a built-in check whose
//! `check_filter` command reaches only a device that says it understands it, carrying test
//! names from each category of the lists in force and the DSL's own; the device's
//! `filter_checked` answer shows per category; a teacher is refused. With a moved clock: the
//! answers are kept with the check after the device events' purge, on the page and in the
//! check's CSV, and go with the check after the filter checks' own period.

use crate::common::*;
use chrono::{DateTime, Duration, Utc};
use slate_protocol::device::{CheckName, CommandAction, CommandsReply};
use slate_protocol::{Event, EventBody, NameVerdict};
use slate_server::auth::Role;
use slate_server::retention::{purge_once, RecordType, Schedule, MAX_ROWS_PER_RUN};

async fn commands(server: &TestServer, credential: &str, can: &str) -> CommandsReply {
    let path = format!("/api/v1/device/commands?after=0&wait_s=1{can}");
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    CommandsReply::from_json(&response.bytes().await.unwrap()).unwrap()
}

/// The lists devices block with: adult (two entries) and gambling (one).
async fn adult_and_gambling_lists(dsl: &mut Browser<'_>) {
    for (action, fields) in [
        (
            "/setup/list",
            vec![("name", "adult"), ("contents", "# adult\n*.adult.example\nporn.example\n")],
        ),
        ("/setup/list", vec![("name", "gambling"), ("contents", "bet.example\n")]),
        (
            "/setup/profile",
            vec![
                ("name", "default"),
                ("block_lists", "adult, gambling"),
                ("allow_only", ""),
                ("safe_search", "strict"),
            ],
        ),
    ] {
        let response = submit(dsl, "/setup", action, &fields).await;
        assert_eq!(response.status(), 303, "{action}: {}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn the_dsl_records_the_termly_check_and_devices_answer_the_built_in_one() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    adult_and_gambling_lists(&mut dsl).await;

    let page = dsl.page("/filter-checks").await;
    assert!(page.contains("No filter check has been recorded yet."), "{page}");
    assert!(
        page.contains("adult.example (adult)") && page.contains("bet.example (gambling)"),
        "{page}"
    );

    // The built-in check: device 12 and a test site of the DSL's own.
    let started = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks/run",
        &[("devices", "12"), ("own_names", "https://test.provider.example/x")],
    )
    .await;
    assert_eq!(started.status(), 303, "{}", started.text().await.unwrap());
    let page = dsl.page("/filter-checks").await;
    assert!(page.contains("no answer yet"), "{page}");

    // A device that does not say it understands the check is never sent it.
    for can in ["", "&can=test_button"] {
        let old = commands(&server, &credential, can).await;
        assert!(old.commands.iter().all(|c| c.action != CommandAction::CheckFilter), "{can}");
    }
    let reply = commands(&server, &credential, "&can=test_button,check_filter").await;
    let check = reply.commands.iter().find(|c| c.action == CommandAction::CheckFilter).unwrap();
    let asked: Vec<CheckName> = check.check_names.clone();
    let name = |n: &str, c: Option<&str>| CheckName { name: n.into(), category: c.map(Into::into) };
    assert_eq!(
        asked,
        [
            name("adult.example", Some("adult")),
            name("porn.example", Some("adult")),
            name("bet.example", Some("gambling")),
            name("test.provider.example", None),
        ]
    );

    // The device answers: adult blocked, gambling let through, the own name blocked.
    let verdict =
        |n: &str, b: Option<&str>| NameVerdict { name: n.into(), blocked_by: b.map(Into::into) };
    let answer = Event::new(
        device(12),
        Utc::now(),
        EventBody::FilterChecked {
            command: check.id,
            results: vec![
                verdict("adult.example", Some("adult")),
                verdict("porn.example", Some("adult")),
                verdict("bet.example", None),
                verdict("test.provider.example", Some("adult")),
            ],
            error: None,
        },
    );
    let posted = server.post_events(Some(&credential), batch(vec![answer])).await;
    assert_eq!(posted.status(), 200);
    let page = dsl.page("/filter-checks").await;
    assert!(page.contains("NOT BLOCKED</span> bet.example"), "{page}");
    assert!(page.contains("blocked</span> <span class=\"muted\">(adult)"), "{page}");
    assert!(!page.contains("no answer yet"), "{page}");

    // Recording: refused without CSRF, or with a problem and no action; then recorded.
    let today = Utc::now().with_timezone(&chrono_tz::Europe::London).date_naive();
    let day = |days: i64| (today + chrono::Duration::days(days)).to_string();
    let (last_term, overdue_since, yesterday) = (day(-90), day(-1), day(-1));
    let no_csrf = dsl
        .post(
            "/filter-checks",
            &[("checked_on", yesterday.as_str()), ("what_checked", "x"), ("outcome", "passed")],
        )
        .await;
    assert_eq!(no_csrf.status(), 403);
    let no_action = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks",
        &[
            ("checked_on", yesterday.as_str()),
            ("what_checked", "device 12"),
            ("outcome", "problems_found"),
        ],
    )
    .await;
    assert_eq!(no_action.status(), 400);
    let older = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks",
        &[
            ("checked_on", last_term.as_str()),
            ("what_checked", "devices 1-30 by hand"),
            ("outcome", "passed"),
            ("next_due", overdue_since.as_str()),
        ],
    )
    .await;
    assert_eq!(older.status(), 303);
    let page = dsl.page("/filter-checks").await;
    let overdue = format!("The next check is overdue: it was due {overdue_since}.");
    assert!(page.contains(&overdue), "{page}");
    let recorded = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks",
        &[
            ("checked_on", yesterday.as_str()),
            ("what_checked", "device 12, every category"),
            ("outcome", "problems_found"),
            ("notes", "gambling let through"),
            ("actions_taken", "asked the provider"),
            ("next_due", "2099-01-01"),
            ("run", "1"),
        ],
    )
    .await;
    assert_eq!(recorded.status(), 303, "{}", recorded.text().await.unwrap());
    let page = dsl.page("/filter-checks").await;
    assert!(page.contains("Next check due: <strong>2099-01-01"), "{page}");
    let newest = page.find("device 12, every category").unwrap();
    assert!(newest < page.find("devices 1-30 by hand").unwrap(), "newest first");
    assert!(page.contains("<td>a.dsl</td>"), "who: the signed-in account");
    let unknown_run = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks",
        &[
            ("checked_on", yesterday.as_str()),
            ("what_checked", "x"),
            ("outcome", "passed"),
            ("run", "99"),
        ],
    )
    .await;
    assert_eq!(unknown_run.status(), 400);

    let audit = server.store.audit_log(100).unwrap();
    let actions: Vec<(&str, &str, Option<&str>)> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str(), a.record.as_deref()))
        .filter(|(_, action, _)| action.contains("filter check"))
        .collect();
    assert!(
        actions.contains(&(
            "a.dsl",
            "started a filter check (check_filter)",
            Some("check 1: devices 12; 4 test names")
        )),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(
            "a.dsl",
            "recorded a termly filter check",
            Some(format!("check of {yesterday}: problems found; next due 2099-01-01").as_str())
        )),
        "{actions:?}"
    );

    // IT runs it too; a teacher may not see it at all.
    let mut it = Browser::signed_in(&server, "it.anna", Role::ItAdmin).await;
    assert!(it.page("/filter-checks").await.contains("Built-in check"));
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    assert_eq!(teacher.get("/filter-checks").await.status(), 403);
    server.stop().await;
}

/// A device's word at `when`, so the purge at `when` finds the server's clock agreeing with the
/// devices'.
fn devices_report_at(server: &TestServer, when: DateTime<Utc>) {
    let hello = Event::new(device(12), when, EventBody::Hello { software_version: "0.3.0".into() });
    server.store.ingest(device(12), &[hello], when).unwrap();
}

fn purge_at(server: &TestServer, when: DateTime<Utc>) -> Vec<(RecordType, usize)> {
    let purged = purge_once(&server.store, when, &Schedule::default(), MAX_ROWS_PER_RUN);
    purged.unwrap().expect("the clock agrees with the devices'").nonzero()
}

#[tokio::test]
async fn a_checks_answers_outlive_the_device_events_and_go_with_the_check() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    adult_and_gambling_lists(&mut dsl).await;
    let started =
        submit(&mut dsl, "/filter-checks", "/filter-checks/run", &[("devices", "12")]).await;
    assert_eq!(started.status(), 303, "{}", started.text().await.unwrap());
    let reply = commands(&server, &credential, "&can=check_filter").await;
    let check = reply.commands.iter().find(|c| c.action == CommandAction::CheckFilter).unwrap();
    let verdict =
        |n: &str, b: Option<&str>| NameVerdict { name: n.into(), blocked_by: b.map(Into::into) };
    let answer = |results: Vec<NameVerdict>| {
        Event::new(
            device(12),
            Utc::now(),
            EventBody::FilterChecked { command: check.id, results, error: None },
        )
    };
    let first = answer(vec![
        verdict("adult.example", Some("adult")),
        verdict("porn.example", Some("adult")),
        verdict("bet.example", None),
    ]);
    // A second answer to the same command does not replace the first.
    let second = answer(vec![verdict("bet.example", Some("gambling"))]);
    for event in [first, second] {
        let posted = server.post_events(Some(&credential), batch(vec![event])).await;
        assert_eq!(posted.status(), 200);
    }
    let today = Utc::now().with_timezone(&chrono_tz::Europe::London).date_naive();
    let recorded = submit(
        &mut dsl,
        "/filter-checks",
        "/filter-checks",
        &[
            ("checked_on", today.to_string().as_str()),
            ("what_checked", "device 12, every category"),
            ("outcome", "problems_found"),
            ("actions_taken", "asked the provider to block gambling"),
            ("run", "1"),
        ],
    )
    .await;
    assert_eq!(recorded.status(), 303, "{}", recorded.text().await.unwrap());
    let id = server.store.filter_checks(1).unwrap()[0].id;
    let export = format!("/filter-checks/{id}/export.csv");

    let results_shown = |page: &str| {
        page.contains("NOT BLOCKED</span> bet.example")
            && page.contains("blocked</span> <span class=\"muted\">(adult)")
    };
    let results_exported = |csv: &str| {
        csv.contains("12,porn.example,adult,blocked,adult,")
            && csv.contains("12,bet.example,gambling,NOT BLOCKED,,")
    };
    let page = dsl.page("/filter-checks").await;
    assert!(results_shown(&page), "{page}");
    assert!(page.contains(&export), "{page}");
    let csv = dsl.page(&export).await;
    assert!(results_exported(&csv), "{csv}");
    assert!(csv.contains("What was checked,\"device 12, every category\""), "{csv}");
    let audit = server.store.audit_log(100).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "a.dsl" && a.action == "exported a termly filter check (CSV)"),
        "exports are audited"
    );

    // The device events' period passes: the answers' events are purged, the answers are not.
    let now = Utc::now();
    let events_gone = now
        + Duration::days(Schedule::default().days(RecordType::DeviceEvents).into())
        + Duration::days(1);
    devices_report_at(&server, events_gone);
    let purged = purge_at(&server, events_gone);
    assert!(purged.contains(&(RecordType::DeviceEvents, 2)), "both answers: {purged:?}");
    assert!(!purged.iter().any(|(t, _)| *t == RecordType::FilterChecks), "{purged:?}");
    // (The sign-in went too, as expired: the DSL signs in again.)
    let mut dsl = Browser::signed_in(&server, "b.dsl", Role::Dsl).await;
    let page = dsl.page("/filter-checks").await;
    assert!(results_shown(&page), "after the device events' purge: {page}");
    let csv = dsl.page(&export).await;
    assert!(results_exported(&csv), "after the device events' purge: {csv}");

    // The filter checks' own period passes: the check goes, with its built-in check and the
    // answers (the check, the device's command and answer, the run).
    let checks_gone = now
        + Duration::days(Schedule::default().days(RecordType::FilterChecks).into())
        + Duration::days(1);
    devices_report_at(&server, checks_gone);
    let purged = purge_at(&server, checks_gone);
    assert!(purged.contains(&(RecordType::FilterChecks, 3)), "{purged:?}");
    let mut dsl = Browser::signed_in(&server, "c.dsl", Role::Dsl).await;
    let page = dsl.page("/filter-checks").await;
    assert!(page.contains("No filter check has been recorded yet."), "{page}");
    assert!(!page.contains("Check 1 ·") && !page.contains("NOT BLOCKED"), "{page}");
    assert_eq!(dsl.get(&export).await.status(), 404);
    server.stop().await;
}

#[test]
fn migration_0026_copies_the_answers_already_in_the_events_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slate.sqlite");
    let store = slate_server::Store::open(&path).unwrap();
    let backfill = |sql: &str| {
        rusqlite::Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    };
    answers_copied_by_migration_0026(
        &store,
        &backfill,
        include_str!("../../migrations/sqlite/0026_filter_check_answers.sql"),
    );
}

#[test]
fn migration_0026_copies_the_answers_already_in_the_events_on_postgres() {
    let postgres = crate::postgres::TestPostgres::start();
    let store = postgres.store();
    let backfill = |sql: &str| {
        let mut client = postgres::Client::connect(&postgres.url, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    };
    answers_copied_by_migration_0026(
        &store,
        &backfill,
        include_str!("../../migrations/postgres/0026_filter_check_answers.sql"),
    );
}

/// A database from before migration 0026 had the answers only as `filter_checked` events: the
/// kept answers are cleared as they were then, and the migration's copy brings back the same
/// ones: each device's first answer to its own command, the filter's error, none for a device
/// that did not answer, and nothing from a device answering another's command.
fn answers_copied_by_migration_0026(
    store: &slate_server::Store,
    backfill: &dyn Fn(&str),
    migration: &str,
) {
    let now = Utc::now();
    for n in [12, 13, 14] {
        let token = store.issue_enrollment_token(device(n), Duration::hours(1), now).unwrap();
        let credential = slate_server::secrets::Secret::generate().hash();
        store.enroll(&token.hash(), device(n), &credential, "0.3.0", now).unwrap();
    }
    let names = [
        CheckName { name: "adult.example".into(), category: Some("adult".into()) },
        CheckName { name: "bet.example".into(), category: Some("gambling".into()) },
    ];
    let devices = [device(12), device(13), device(14)];
    let run = store
        .start_filter_check(&devices, &names, "a.dsl", now, now + Duration::minutes(10))
        .unwrap();
    let commands: Vec<u64> = store
        .filter_check_run(run)
        .unwrap()
        .unwrap()
        .devices
        .iter()
        .map(|d| d.command as u64)
        .collect();
    let verdict =
        |n: &str, b: Option<&str>| NameVerdict { name: n.into(), blocked_by: b.map(Into::into) };
    let answer =
        |n: u16, command: u64, results: Vec<NameVerdict>, error: Option<&str>, after: i64| {
            let when = now + Duration::seconds(after);
            let body = EventBody::FilterChecked { command, results, error: error.map(Into::into) };
            store.ingest(device(n), &[Event::new(device(n), when, body)], when).unwrap();
        };
    // Device 13 answers device 12's command first: not counted.
    answer(13, commands[0], vec![verdict("adult.example", None)], None, 1);
    answer(
        12,
        commands[0],
        vec![verdict("adult.example", Some("adult")), verdict("bet.example", None)],
        None,
        2,
    );
    answer(12, commands[0], vec![verdict("bet.example", Some("gambling"))], None, 3);
    answer(13, commands[1], vec![], Some("slate-dns away"), 4);
    let kept = store.filter_check_run(run).unwrap().unwrap();
    let got = |run: &slate_server::store::FilterCheckRun| {
        run.devices
            .iter()
            .map(|d| {
                (d.device.get(), d.answer.as_ref().map(|a| (a.results.clone(), a.error.clone())))
            })
            .collect::<Vec<_>>()
    };
    let want = vec![
        (
            12,
            Some((
                vec![verdict("adult.example", Some("adult")), verdict("bet.example", None)],
                None,
            )),
        ),
        (13, Some((vec![], Some("slate-dns away".to_owned())))),
        (14, None),
    ];
    assert_eq!(got(&kept), want, "kept as ingested");

    backfill("UPDATE filter_check_commands SET answered_at = NULL, results = NULL, error = NULL");
    let cleared = store.filter_check_run(run).unwrap().unwrap();
    assert!(cleared.devices.iter().all(|d| d.answer.is_none()), "as before the migration");
    let copy = &migration[migration.find("UPDATE filter_check_commands").unwrap()..];
    backfill(copy);
    let copied = store.filter_check_run(run).unwrap().unwrap();
    assert_eq!(copied, kept, "the same answers, with when they came");
}
