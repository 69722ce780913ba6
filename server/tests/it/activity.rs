//! The newer device events on the staff pages: blocked attempts, apps opened and agreements on
//! a device's page, refused hardware on the fleet page, and "tell my teacher" reports as
//! low-priority incidents that the class teacher hears of too.

use crate::common::*;
use chrono::Utc;
use slate_protocol::{
    Event, EventBody, FilterLayer, PupilId, RefusedDevice, ReportOrigin, SessionId,
};
use slate_server::auth::Role;

fn pupil_of(server: &TestServer, class: &str) -> PupilId {
    let records = server.store.policy_records().unwrap();
    records.pupils.iter().find(|p| p.class_name == class).unwrap().id.clone()
}

#[tokio::test]
async fn a_devices_page_shows_what_it_blocked_opened_and_agreed() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    import_roster_csv(
        &server.store,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n",
        Utc::now(),
    );
    let pupil = pupil_of(&server, "Oak");
    let session = SessionId::new();
    let event = |body| Event::new(device(12), at("2026-11-23T10:14:00Z"), body);
    let events = vec![
        event(EventBody::AupAccepted {
            session,
            pupil: pupil.clone(),
            key_stage: "ks1".into(),
            text_version: "ks1-0a1b2c3d".into(),
            school_version: None,
        }),
        event(EventBody::AppOpened { session, pupil: pupil.clone(), app: "maths".into() }),
        event(EventBody::FilterBlocked {
            session: Some(session),
            pupil: Some(pupil.clone()),
            layer: FilterLayer::Dns,
            target: "casino.example".into(),
            rule: "exact:casino.example".into(),
            list: "gambling".into(),
        }),
        event(EventBody::DeviceRefused {
            kind: RefusedDevice::UsbStorage,
            description: "0781:5567 SanDisk Cruzer".into(),
        }),
    ];
    assert_eq!(server.post_events(Some(&credential), batch(events)).await.status(), 200);

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page("/devices/12").await;
    for expected in
        ["casino.example", "exact:casino.example", "gambling", "maths", "ks1-0a1b2c3d", "Amira K."]
    {
        assert!(page.contains(expected), "{expected} on the device page");
    }
    // A teacher gets the sessions, never the blocked addresses (the case file's).
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let page = teacher.page("/devices/12").await;
    assert!(page.contains("Sessions"), "{page}");
    assert!(!page.contains("casino.example") && !page.contains("Blocked by"), "{page}");
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("0781:5567 SanDisk Cruzer") && fleet.contains("usb storage"), "{fleet}");
    assert!(!fleet.contains("Amira"), "no pupil data for IT");
    server.stop().await;
}

#[tokio::test]
async fn a_block_page_report_is_a_low_priority_incident() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut tell = report(12, None, "blocked");
    let mut button = report(12, None, "upsetting");
    if let EventBody::ReportFiled { origin, recent_names, .. } = &mut tell.body {
        *origin = ReportOrigin::BlockPage;
        *recent_names = vec!["casino.example".into()];
    }
    button.at = at("2026-11-17T09:00:00Z");
    assert_eq!(
        server.post_events(Some(&credential), batch(vec![tell, button])).await.status(),
        200
    );
    let incidents = server.store.incidents(10).unwrap();
    let low: Vec<bool> = incidents.iter().map(|i| i.report.from_block_page).collect();
    assert_eq!(low, [true, false], "newest first: the block page report, then the button");
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let list = dsl.page("/reports").await;
    assert_eq!(list.matches("low priority: from a blocked page").count(), 1, "{list}");
    let page = dsl.page(&format!("/incidents/{}", incidents[0].id)).await;
    assert!(page.contains("on a blocked page (low priority"), "{page}");
    assert!(page.contains("casino.example"), "the names looked up just before: {page}");
    // The exported record says how it was reported, the same as the page.
    let csv = dsl.get(&format!("/incidents/{}/export.csv", incidents[0].id)).await;
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("tell my teacher") && csv.contains("casino.example"), "{csv}");
    let csv = dsl.get(&format!("/incidents/{}/export.csv", incidents[1].id)).await;
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("with the report button") && !csv.contains("tell my teacher"), "{csv}");
    server.stop().await;
}

#[tokio::test]
async fn who_had_reads_and_shows_uk_time() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let session = SessionId::new();
    let started = session_started(12, session, "p-7f3a9c", "2026-06-17T09:30:00Z");
    assert_eq!(server.post_events(Some(&credential), batch(vec![started])).await.status(), 200);
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    // The session began at 09:30 UTC, 10:30 on a June wall clock (BST).
    let page = teacher.page("/who-had?device=12&at=2026-06-17T11:14").await;
    assert!(page.contains("p-7f3a9c"), "{page}");
    assert!(page.contains("10:30:00 BST") && page.contains("11:14:00 BST"), "{page}");
    let before = teacher.page("/who-had?device=12&at=2026-06-17T10:14").await;
    assert!(before.contains("Nobody is recorded"), "10:14 BST is 09:14 UTC, before the session");
    server.stop().await;
}

/// A DSL asks "has this child reported before?": one page per pupil with their reports, "tell
/// my teacher", blocked attempts in harmful categories (not in others), sessions and what staff
/// wrote, newest first, and the same as a CSV. Nobody else's records; teachers cannot read it.
#[tokio::test]
async fn a_pupils_chronology_gathers_everything_recorded_for_them() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server
        .store
        .save_pupil(&slate_server::roster::PupilEntry::new("p-amira", "Amira K.", "Oak").unwrap())
        .unwrap();
    server
        .store
        .save_pupil(&slate_server::roster::PupilEntry::new("p-ben", "Ben T.", "Oak").unwrap())
        .unwrap();
    let amira = PupilId::new("p-amira").unwrap();
    let session = SessionId::new();
    let blocked = |when: &str, target: &str, list: &str, pupil: &PupilId| {
        Event::new(
            device(12),
            at(when),
            EventBody::FilterBlocked {
                session: Some(session),
                pupil: Some(pupil.clone()),
                layer: FilterLayer::Dns,
                target: target.into(),
                rule: format!("exact:{target}"),
                list: list.into(),
            },
        )
    };
    let mut button = report(12, Some("p-amira"), "t");
    button.at = at("2026-11-17T10:14:00Z");
    let mut told = report(12, Some("p-amira"), "t");
    told.at = at("2026-11-17T10:20:00Z");
    if let EventBody::ReportFiled { origin, .. } = &mut told.body {
        *origin = ReportOrigin::BlockPage;
    }
    let mut bens = report(12, Some("p-ben"), "t");
    bens.at = at("2026-11-17T11:00:00Z");
    let events = vec![
        session_started(12, session, "p-amira", "2026-11-17T10:00:00Z"),
        blocked("2026-11-17T10:13:00Z", "adult.example", "adult", &amira),
        blocked("2026-11-17T10:13:30Z", "games.example", "games", &amira),
        blocked(
            "2026-11-17T10:13:40Z",
            "ben-adult.example",
            "adult",
            &PupilId::new("p-ben").unwrap(),
        ),
        button,
        told,
        bens,
    ];
    assert_eq!(server.post_events(Some(&credential), batch(events)).await.status(), 200);

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let list = dsl.page("/reports").await;
    assert!(list.contains(r#"href="/pupils/p-amira""#), "the list links the pupil: {list}");
    let incidents = server.store.incidents(10).unwrap();
    let first =
        incidents.iter().find(|i| i.report.pressed_at == at("2026-11-17T10:14:00Z")).unwrap();
    let path = format!("/incidents/{}", first.id);
    let token = csrf_in(&dsl.page(&path).await);
    let ack = [("csrf", token.as_str()), ("note", "spoke to Amira at break")];
    assert_eq!(dsl.post(&format!("{path}/acknowledge"), &ack).await.status(), 303);

    let page = dsl.page("/pupils/p-amira").await;
    let order = [
        "spoke to Amira at break",
        "Tell my teacher",
        "Report button",
        "adult.example",
        "Signed in",
    ];
    let places: Vec<usize> = order
        .iter()
        .map(|needle| page.find(needle).unwrap_or_else(|| panic!("{needle} in {page}")))
        .collect();
    assert!(places.windows(2).all(|w| w[0] < w[1]), "newest first: {places:?}\n{page}");
    assert!(
        page.contains("Chronology: Amira K. (p-amira)") && page.contains("Class Oak."),
        "{page}"
    );
    assert!(
        page.contains("1 report with the button, 1 &quot;tell my teacher&quot;, 1 blocked attempt"),
        "{page}"
    );
    assert!(!page.contains("games.example"), "not a harmful category: {page}");
    assert!(
        !page.contains("ben-adult.example") && !page.contains("Ben T."),
        "only Amira's: {page}"
    );

    let csv = dsl.get("/pupils/p-amira/export.csv").await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("\u{feff}Pupil,\"Amira K. (p-amira), Oak\""), "{csv}");
    assert!(
        csv.contains("2026-11-17 10:13:00 GMT,Blocked,12,,adult.example (list adult)"),
        "{csv}"
    );
    assert!(csv.contains("spoke to Amira at break"), "{csv}");

    assert_eq!(dsl.get("/pupils/p-nobody").await.status(), 404);
    assert_eq!(dsl.get("/pupils/not%20an%20id").await.status(), 404);
    let audit = server.store.audit_log(50).unwrap();
    assert!(
        audit.iter().any(|e| e.action == "viewed pupil chronology"
            && e.record.as_deref() == Some("pupil p-amira")),
        "{audit:?}"
    );
    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    assert_eq!(teacher.get("/pupils/p-amira").await.status(), 403);
    server.stop().await;
}

/// The school-wide filtering log the DSL reviews: every refused attempt from every device,
/// newest first, searched by list, class and day, exported as CSV; not for teachers.
#[tokio::test]
async fn the_dsl_reviews_the_school_wide_filtering_log() {
    let server = TestServer::start().await;
    let twelve = server.enroll(12).await;
    let thirteen = server.enroll(13).await;
    server
        .store
        .save_pupil(&slate_server::roster::PupilEntry::new("p-amira", "Amira K.", "Oak").unwrap())
        .unwrap();
    let blocked = |n: u16, when: &str, target: &str, list: &str, pupil: Option<&str>| {
        Event::new(
            device(n),
            at(when),
            EventBody::FilterBlocked {
                session: None,
                pupil: pupil.map(|p| PupilId::new(p).unwrap()),
                layer: FilterLayer::Dns,
                target: target.into(),
                rule: format!("exact:{target}"),
                list: list.into(),
            },
        )
    };
    let on_twelve = vec![
        blocked(12, "2026-11-16T09:00:00Z", "adult.example", "adult", Some("p-amira")),
        blocked(12, "2026-11-17T09:00:00Z", "games.example", "games", None),
    ];
    let on_thirteen = vec![blocked(13, "2026-11-17T10:00:00Z", "bad.example", "iwf", None)];
    assert_eq!(server.post_events(Some(&twelve), batch(on_twelve)).await.status(), 200);
    assert_eq!(server.post_events(Some(&thirteen), batch(on_thirteen)).await.status(), 200);

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page("/filtering-log").await;
    let order = ["bad.example", "games.example", "adult.example"];
    let places: Vec<usize> = order.iter().map(|t| page.find(t).expect(t)).collect();
    assert!(places.windows(2).all(|w| w[0] < w[1]), "newest first: {page}");
    assert!(page.contains(r#"href="/pupils/p-amira""#), "{page}");
    assert!(!page.contains(r#"href="https://"#) && !page.contains("href=\"bad.example"), "{page}");
    let oak = dsl.page("/filtering-log?class=Oak").await;
    assert!(oak.contains("adult.example") && !oak.contains("games.example"), "{oak}");
    let iwf = dsl.page("/filtering-log?list=iwf&from=2026-11-17&to=2026-11-17").await;
    assert!(iwf.contains("bad.example") && !iwf.contains("games.example"), "{iwf}");
    let bad = dsl.page("/filtering-log?list=Adult+sites").await;
    assert!(bad.contains("is not a list name"), "{bad}");

    let csv = dsl.get("/filtering-log.csv?device=12").await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("\u{feff}Date and time,Device,Pupil"), "{csv}");
    assert!(
        csv.contains("2026-11-16 09:00:00 GMT,12,p-amira,Amira K.,adult,dns,adult.example"),
        "{csv}"
    );
    assert!(!csv.contains("bad.example"), "device 12's only: {csv}");

    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    assert_eq!(teacher.get("/filtering-log").await.status(), 403);
    server.stop().await;
}
