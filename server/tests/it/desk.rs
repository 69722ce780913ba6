//! The DSL's desk over HTTP: live updates, the incident workflow, exports, "who had device N at
//! T" (page, API, iPad register) and the fleet.

use crate::common::*;
use slate_protocol::SessionId;
use slate_server::auth::Role;
use slate_server::roster::PupilEntry;

/// Reads a server-sent-events response until `needle` appears; returns what was read.
async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(PATIENCE, response.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn a_new_report_reaches_an_open_list_without_a_reload() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page("/reports").await;
    assert!(page.contains(r#"<tbody id="incidents">"#), "{page}");
    let script = dsl.get("/static/live.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("EventSource(\"/reports/live\")"));

    let mut live = dsl.get("/reports/live").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let hello = read_until(&mut live, "\n\n").await;
    assert!(hello.starts_with("event: alive\ndata: "), "the server speaks at once: {hello}");
    assert_eq!(
        server
            .post_events(Some(&credential), batch(vec![report(12, Some("p-1"), "secret title")]))
            .await
            .status(),
        200
    );
    let incident = server.store.incidents(1).unwrap()[0].id;
    let seen = read_until(&mut live, "\n\n").await;
    assert!(seen.starts_with("event: report\ndata: "), "{seen}");
    assert!(
        seen.contains(&format!("\"incident\":{incident}")) && seen.contains("\"device\":12"),
        "{seen}"
    );
    assert!(!seen.contains("secret title") && !seen.contains("p-1"), "ids and time only: {seen}");
    // The row's time is UK time as staff read it, never left to the browser.
    assert!(
        seen.contains("\"pressed\":\"") && (seen.contains(" GMT\"") || seen.contains(" BST\"")),
        "{seen}"
    );

    // What a list that was down missed, from the incident it last showed.
    let missed: serde_json::Value =
        dsl.get(&format!("/reports/since?after={}", incident - 1)).await.json().await.unwrap();
    assert_eq!(missed[0]["incident"], incident, "{missed}");
    assert_eq!(missed[0]["status"], "New", "{missed}");
    let none: serde_json::Value =
        dsl.get(&format!("/reports/since?after={incident}")).await.json().await.unwrap();
    assert_eq!(none, serde_json::json!([]));
    assert_eq!(
        server.client.get(format!("{}/reports/since", server.url)).send().await.unwrap().status(),
        401,
        "signed out: the page says so"
    );

    assert_eq!(
        server.staff_get("/reports/live").await.status(),
        200,
        "the staff key may listen too"
    );
    assert_eq!(
        server.client.get(format!("{}/reports/live", server.url)).send().await.unwrap().status(),
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn an_open_list_keeps_its_session_alive_and_is_told_when_it_ends() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let session = dsl.cookies.iter().find(|(k, _)| k == "slate_session").unwrap().1.clone();
    let session = slate_server::secrets::SecretHash::of(&session);
    let mut live = dsl.get("/reports/live").await;
    assert_eq!(live.status(), 200);
    read_until(&mut live, "event: alive\n").await;
    // 31 minutes without a request: idle for longer than a session may be.
    let idle = chrono::Utc::now() - chrono::Duration::minutes(31);
    server.store.touch_session(&session, idle).unwrap();
    let seen = read_until(&mut live, "event: signed-out\n").await;
    assert!(!seen.contains("event: alive"), "no word of being live once signed out: {seen}");
    assert!(live.chunk().await.unwrap().is_none(), "the stream ends");
    assert_eq!(dsl.get("/reports/since").await.status(), 401);

    // Signed in again, the list's next stream keeps the new session alive while it is open.
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let session = dsl.cookies.iter().find(|(k, _)| k == "slate_session").unwrap().1.clone();
    let session = slate_server::secrets::SecretHash::of(&session);
    let mut live = dsl.get("/reports/live").await;
    read_until(&mut live, "event: alive\n").await;
    let before = chrono::Utc::now() - chrono::Duration::minutes(29);
    server.store.touch_session(&session, before).unwrap();
    read_until(&mut live, "event: alive\n").await;
    let touched = server.store.session(&session).unwrap().expect("still signed in");
    assert!(touched.last_seen_at > before, "the open stream touched the session");
    server.stop().await;
}

#[tokio::test]
async fn an_incident_goes_from_new_to_actioned_with_notes_and_exports() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.store.save_pupil(&PupilEntry::new("p-7f3a9c", "Amira K.", "Year 2").unwrap()).unwrap();
    let events = batch(vec![report(12, Some("p-7f3a9c"), "=cmd|' /C calc'!A0")]);
    assert_eq!(server.post_events(Some(&credential), events).await.status(), 200);
    let id = server.store.incidents(1).unwrap()[0].id;
    let path = format!("/incidents/{id}");

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page(&path).await;
    assert!(page.contains("Amira K.") && page.contains("New"), "{page}");
    let token = csrf_in(&page);
    let early =
        dsl.post(&format!("{path}/action"), &[("csrf", &token), ("action", "escalated")]).await;
    assert_eq!(early.status(), 409);
    assert!(early.text().await.unwrap().contains("Acknowledge the incident before"));

    let steps: [(&str, &[(&str, &str)]); 5] = [
        ("acknowledge", &[("note", "on my way")]),
        ("action", &[("action", "app_closed"), ("note", "closed the browser")]),
        ("action", &[("action", "escalated"), ("note", "told the head")]),
        ("note", &[("note", "parents informed")]),
        (
            "details",
            &[
                ("category", "upsetting_content"),
                ("location", "Class 2, maths"),
                ("description", "A frightening video, as Amira described it"),
                ("involved", "Amira K."),
                ("reported_to", "Headteacher"),
                ("outcome", "Site block requested"),
            ],
        ),
    ];
    for (step, fields) in steps {
        let mut form = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let response = dsl.post(&format!("{path}/{step}"), &form).await;
        assert_eq!(response.status(), 303, "{step}: {}", response.text().await.unwrap());
    }
    let bad =
        dsl.post(&format!("{path}/action"), &[("csrf", &token), ("action", "shrugged")]).await;
    assert_eq!(bad.status(), 400);
    let bad =
        dsl.post(&format!("{path}/details"), &[("csrf", &token), ("category", "nonsense")]).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("category"));
    assert_eq!(
        dsl.post("/incidents/999/note", &[("csrf", &token), ("note", "x")]).await.status(),
        404
    );

    let page = dsl.page(&path).await;
    for expected in [
        "Escalated",
        "App closed",
        "on my way",
        "told the head",
        "parents informed",
        "Class 2, maths",
        "a.dsl",
    ] {
        assert!(page.contains(expected), "{expected}:\n{page}");
    }

    let csv = dsl.get(&format!("{path}/export.csv")).await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("incident-{id}.csv")));
    let csv = csv.text().await.unwrap();
    for expected in [
        "Device,12",
        "Status,Escalated",
        "Amira K. (p-7f3a9c)",
        "Reported to,Headteacher",
        "told the head",
        "'=cmd",
    ] {
        assert!(csv.contains(expected), "{expected}:\n{csv}");
    }
    let pdf = dsl.get(&format!("{path}/export.pdf")).await;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf_text(&pdf.bytes().await.unwrap());
    assert!(
        pdf.contains("Status: Escalated")
            && pdf.contains("Amira K.")
            && pdf.contains("told the head")
            && pdf.contains("Class 2, maths"),
        "{pdf}"
    );
    let log = dsl.page("/reports.csv").await;
    assert!(log.starts_with("\u{feff}Incident,Date and time,Device,"), "{log}");
    assert!(log.contains(&format!("\n{id},")), "{log}");
    assert!(log.contains("Upsetting or frightening content"), "{log}");
    server.stop().await;
}

/// The DSL narrows the incident list by UK day, class, device, state and kind of concern, pages
/// through it, and is told plainly when a search cannot be read.
#[tokio::test]
async fn the_dsl_searches_the_incident_list_and_pages_through_it() {
    let server = TestServer::start().await;
    let twelve = server.enroll(12).await;
    let thirteen = server.enroll(13).await;
    server.store.save_pupil(&PupilEntry::new("p-oak", "Amira K.", "Oak").unwrap()).unwrap();
    server.store.save_pupil(&PupilEntry::new("p-ash", "Ben T.", "Ash").unwrap()).unwrap();
    // 60 presses on device 12 by Amira, one a day at 10:14 UTC from 1 June (BST), and one on
    // device 13 by Ben on 17 November.
    let mut presses = Vec::new();
    for day in 0..60i64 {
        let mut event = report(12, Some("p-oak"), "t");
        event.at = at("2026-06-01T09:14:00Z") + chrono::Duration::days(day);
        presses.push(event);
    }
    assert_eq!(server.post_events(Some(&twelve), batch(presses)).await.status(), 200);
    let ben = batch(vec![report(13, Some("p-ash"), "t")]);
    assert_eq!(server.post_events(Some(&thirteen), ben).await.status(), 200);
    let rows = |page: &str| page.matches("<tr data-incident=").count();

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let first = dsl.page("/reports").await;
    assert_eq!(rows(&first), 50, "a page of 50");
    assert!(first.contains(r#"id="live-status""#), "the first page is live");
    assert!(first.contains(r#"href="/reports?page=2""#), "{first}");
    let second = dsl.page("/reports?page=2").await;
    assert_eq!(rows(&second), 11);
    assert!(second.contains("new reports are not added") && !second.contains("next-page"));

    let ash = dsl.page("/reports?class=Ash").await;
    assert_eq!(rows(&ash), 1);
    assert!(ash.contains("Ben T.") && !ash.contains("Amira K."), "{ash}");
    let device = dsl.page("/reports?device=13").await;
    assert_eq!(rows(&device), 1);
    // UK days: 1 June 10:14 BST is 09:14 UTC; the week 1 to 7 June holds 7 presses.
    let week = dsl.page("/reports?from=2026-06-01&to=2026-06-07&class=Oak").await;
    assert_eq!(rows(&week), 7, "{week}");
    assert!(week.contains("Mon 1 Jun 2026, 10:14:00 BST"), "{week}");
    assert!(dsl.page("/reports?state=escalated").await.contains("No incidents match this search."));
    assert_eq!(rows(&dsl.page("/reports?state=new&device=12&page=2").await), 10);

    // Each problem named; nothing listed that the search did not ask for.
    let bad = dsl.page("/reports?from=2026-06-08&to=2026-06-01&device=nine").await;
    assert!(bad.contains("From: 2026-06-08 is after To, 2026-06-01."), "{bad}");
    assert!(bad.contains("Device: &quot;nine&quot; is not a device number"), "{bad}");
    assert_eq!(rows(&bad), 0);
    let twice = dsl.page("/reports?device=12&device=13").await;
    assert!(twice.contains("The search in the address could not be read"), "{twice}");

    // A teacher has no search: their page is their classes' new reports.
    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    let theirs = teacher.page("/reports?class=Oak").await;
    assert!(!theirs.contains(r#"id="search""#), "{theirs}");
    server.stop().await;
}

/// A record a DSL files prints names as written: Polish, Romanian, Turkish and Welsh letters,
/// in the pupil's name, the DSL's words and a note, read back from the PDF as a reader gets it.
#[tokio::test]
async fn the_pdf_record_prints_every_letter_of_a_uk_class_list() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let names = ["Łucja W.", "Ștefan P.", "Şükrü Y.", "Llŷr E."];
    for (i, name) in names.iter().enumerate() {
        let pupil = PupilEntry::new(&format!("p-{i}"), name, "Year 5").unwrap();
        server.store.save_pupil(&pupil).unwrap();
        let events = batch(vec![report(12, Some(&format!("p-{i}")), "Przygoda")]);
        assert_eq!(server.post_events(Some(&credential), events).await.status(), 200);
    }
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    for (i, incident) in server.store.incidents(10).unwrap().iter().enumerate() {
        let path = format!("/incidents/{}", incident.id);
        let token = csrf_in(&dsl.page(&path).await);
        let said = "Gwelodd fideo brawychus; żółć, țară, ığdır, dŵr a ŷd";
        let form = [("csrf", token.as_str()), ("note", said)];
        assert_eq!(dsl.post(&format!("{path}/acknowledge"), &form).await.status(), 303);
        let pdf = dsl.get(&format!("{path}/export.pdf")).await;
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        // Words as read, whatever line the wrapping put them on.
        let text = pdf_text(&pdf.bytes().await.unwrap());
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let name = incident.report.pupil_name.clone().unwrap();
        assert!(names.contains(&name.as_str()), "case {i}: {name}");
        let pupil = incident.report.pupil_label();
        for expected in [pupil.as_str(), said, "Przygoda", "GMT"] {
            assert!(text.contains(expected), "case {i}: {expected} in\n{text}");
        }
        assert!(!text.contains('?'), "no letter replaced: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn who_had_a_device_from_sessions_and_the_ipad_register() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.store.save_pupil(&PupilEntry::new("p-amira", "Amira K.", "Year 2").unwrap()).unwrap();
    server.store.save_pupil(&PupilEntry::new("p-ben", "Ben T.", "Year 2").unwrap()).unwrap();
    let session = SessionId::new();
    let started = session_started(12, session, "p-amira", "2026-11-17T09:00:00Z");
    assert_eq!(server.post_events(Some(&credential), batch(vec![started])).await.status(), 200);

    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    let page = teacher.page("/who-had?device=12&at=2026-11-17T10:14").await;
    assert!(page.contains("Amira K.") && page.contains("Signed in on the device"), "{page}");
    let page = teacher.page("/who-had?device=twelve&at=2026-11-17T10:14").await;
    assert!(page.contains("Device: &quot;twelve&quot; is not a device number"), "{page}");

    // iPad 30 cannot run Slate: the teacher records the lesson, picking the pupil by class
    // and name from the roster (never typing an id no page lists).
    let form_page = teacher.page("/who-had").await;
    let token = csrf_in(&form_page);
    assert!(
        form_page.contains(r#"<optgroup label="Year 2"><option value="p-amira">Amira K.</option><option value="p-ben">Ben T.</option></optgroup>"#),
        "{form_page}"
    );
    let lesson = [
        ("csrf", token.as_str()),
        ("device", "30"),
        ("pupil", "p-ben"),
        ("from", "2026-11-17T10:00"),
        ("to", "2026-11-17T11:00"),
    ];
    let saved = teacher.post("/register", &lesson).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], "/devices/30");
    assert!(teacher.page("/devices/30").await.contains("t.jones"));
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("device", "30"),
                ("pupil", "p-nobody"),
                ("from", "2026-11-17T10:00"),
                ("to", "2026-11-17T11:00"),
            ],
            "not on the roster",
        ),
        (
            &[
                ("device", "30"),
                ("pupil", "p-ben"),
                ("from", "2026-11-17T11:00"),
                ("to", "2026-11-17T10:00"),
            ],
            "To must be after From",
        ),
        (
            &[("device", "30"), ("pupil", "p-ben"), ("from", "soon"), ("to", "2026-11-17T10:00")],
            "From:",
        ),
    ];
    for (fields, expected) in cases {
        let mut form = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let refused = teacher.post("/register", &form).await;
        assert_eq!(refused.status(), 400, "{expected}");
        let page = refused.text().await.unwrap();
        assert!(page.contains(expected), "{expected}: {page}");
        // The form comes back with what was typed, under the signed-in navigation.
        let typed_from = format!(r#"value="{}""#, fields[2].1);
        assert!(page.contains(&typed_from) && page.contains("Sign out"), "{expected}: {page}");
    }

    let api = |query: &str| {
        let path = format!("/api/v1/staff/who-had?{query}");
        let server = &server;
        async move { server.staff_get(&path).await }
    };
    let answer: serde_json::Value =
        api("device=30&at=2026-11-17T10:30:00Z").await.json().await.unwrap();
    assert_eq!(answer["pupil"], "p-ben");
    assert_eq!(answer["source"], "register");
    let answer: serde_json::Value =
        api("device=12&at=2026-11-17T10:14:00Z").await.json().await.unwrap();
    assert_eq!(
        (answer["pupil"].as_str(), answer["source"].as_str()),
        (Some("p-amira"), Some("session"))
    );
    assert_eq!(answer["session"], session.to_string());
    assert!(answer.get("pupil_name").is_none(), "the API carries ids only");
    let nobody: serde_json::Value =
        api("device=12&at=2026-11-17T08:00:00Z").await.json().await.unwrap();
    assert_eq!(nobody["pupil"], serde_json::Value::Null);
    assert_eq!(nobody["conflict"], false);

    // A second teacher records Amira on iPad 30 for the same lesson: the answer is a conflict
    // naming both, on the page and in the API, never one of them silently.
    let mut other = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let token = csrf_in(&other.page("/who-had").await);
    let lesson = [
        ("csrf", token.as_str()),
        ("device", "30"),
        ("pupil", "p-amira"),
        ("from", "2026-11-17T10:00"),
        ("to", "2026-11-17T11:00"),
    ];
    assert_eq!(other.post("/register", &lesson).await.status(), 303);
    let page = teacher.page("/who-had?device=30&at=2026-11-17T10:45").await;
    assert!(page.contains("The records disagree"), "{page}");
    assert!(page.contains("Amira K.") && page.contains("Ben T."), "both names: {page}");
    assert!(page.contains("t.smith") && page.contains("t.jones"), "who recorded each: {page}");
    let conflict: serde_json::Value =
        api("device=30&at=2026-11-17T10:45:00Z").await.json().await.unwrap();
    assert_eq!(conflict["conflict"], true, "{conflict}");
    assert_eq!(conflict["pupil"], serde_json::Value::Null, "no single answer: {conflict}");
    let named: Vec<_> = conflict["conflicting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["pupil"].as_str().unwrap(), r["recorded_by"].as_str().unwrap()))
        .collect();
    assert_eq!(named, [("p-amira", "t.smith"), ("p-ben", "t.jones")], "{conflict}");
    let bad = api("device=12&at=later").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("at:"));
    server.stop().await;
}

#[tokio::test]
async fn the_fleet_shows_each_device_online_or_not() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.enroll(13).await;
    let heartbeat = slate_protocol::Event::new(
        device(12),
        chrono::Utc::now(),
        slate_protocol::EventBody::Heartbeat {
            uptime_s: 60,
            spool_pending: 0,
            button_fault: Some(slate_protocol::ButtonFault::Missing),
            display_fault: Some(slate_protocol::DisplayFault::CannotDarken),
            storage_fault: None,
        },
    );
    assert_eq!(server.post_events(Some(&credential), batch(vec![heartbeat])).await.status(), 200);
    let page = server.staff_page("/fleet").await;
    assert!(page.contains("2 devices, 1 online."), "{page}");
    assert!(
        page.contains("Device 12") && page.contains("Device 13") && page.contains("offline"),
        "{page}"
    );
    assert!(page.contains("fault: missing"), "the button's self-test shows:\n{page}");
    assert!(
        page.contains("nothing on the device can darken the screen"),
        "a device that cannot darken says so:\n{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_governors_report_counts_without_naming_anyone() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.store.save_pupil(&PupilEntry::new("p-7f3a9c", "Amira K.", "Year 2").unwrap()).unwrap();
    let events = batch(vec![report(12, Some("p-7f3a9c"), "a title"), report(12, None, "another")]);
    assert_eq!(server.post_events(Some(&credential), events).await.status(), 200);

    let page = server.staff_page("/governors?from=2026-09-03&to=2026-12-18").await;
    assert!(page.contains("<strong>2</strong> reports in the period."), "{page}");
    // Under 5 in a year group or kind of concern: no number that could point at one child.
    assert!(
        page.contains("Year 2: fewer than 5") && page.contains("Not on the roster: fewer than 5"),
        "{page}"
    );
    assert!(!page.contains("Year 2: 1") && !page.contains("Not yet recorded: 2"), "{page}");
    assert!(page.contains("Not yet recorded: fewer than 5"), "{page}");
    assert!(page.contains("w/c 16 Nov: 2"), "weeks show their number:\n{page}");
    assert!(
        page.contains("w/c 31 Aug: 0") && page.contains("w/c 14 Dec: 0"),
        "every week of the term:\n{page}"
    );
    for private in ["Amira", "p-7f3a9c", "a title", "example.org", "Device 12"] {
        assert!(!page.contains(private), "{private} must not appear:\n{page}");
    }
    let bad = server.staff_get("/governors?from=autumn").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("From: &quot;autumn&quot; is not a date"));
    server.stop().await;
}

#[tokio::test]
async fn a_false_alarm_is_reopened_by_the_dsl_and_never_by_a_teacher() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let response = server.post_events(Some(&credential), batch(vec![report(12, None, "t")])).await;
    assert_eq!(response.status(), 200);
    let path = format!("/incidents/{}", server.store.incidents(1).unwrap()[0].id);
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let token = csrf_in(&dsl.page(&path).await);
    let form_for = |step: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", token.clone())];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
        (format!("{path}/{step}"), form)
    };
    for (step, fields, status) in [
        ("acknowledge", vec![], 303),
        // A false alarm closes the incident: only ticked and with a note.
        ("action", vec![("action", "false_alarm")], 400),
        ("action", vec![("action", "false_alarm"), ("note", "the pupil meant another page")], 400),
        ("action", vec![("action", "false_alarm"), ("confirm", "yes")], 400),
        ("action", vec![("action", "false_alarm"), ("confirm", "yes"), ("note", "misread")], 303),
        ("action", vec![("action", "escalated")], 409),
        ("reopen", vec![("note", "the pupil spoke up")], 303),
        ("reopen", vec![], 409),
        ("action", vec![("action", "escalated")], 303),
    ] {
        let (url, form) = form_for(step, fields);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(dsl.post(&url, &form).await.status(), status, "{url} {form:?}");
    }
    let page = dsl.page(&path).await;
    assert!(page.contains("Reopened") && page.contains("the pupil spoke up"), "{page}");

    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    let teacher_token = csrf_in(&teacher.page("/staff/account").await);
    let reopen = teacher.post(&format!("{path}/reopen"), &[("csrf", &teacher_token)]).await;
    assert_eq!(reopen.status(), 403, "only DSL staff move an incident");
    server.stop().await;
}

/// Every time a person reads is UK time with its zone named: a press just before and one just
/// after each clock change, on the list, the incident page, both CSV exports, the PDF and the
/// audit log's page and export.
#[tokio::test]
async fn times_read_in_uk_time_with_the_right_zone_across_both_clock_changes() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    // (pressed, as the list shows it, as the CSVs show it)
    let presses = [
        ("2026-03-29T00:59:59Z", "Sun 29 Mar 2026, 00:59:59 GMT", "2026-03-29 00:59:59 GMT"),
        ("2026-03-29T01:00:00Z", "Sun 29 Mar 2026, 02:00:00 BST", "2026-03-29 02:00:00 BST"),
        ("2026-10-25T00:59:59Z", "Sun 25 Oct 2026, 01:59:59 BST", "2026-10-25 01:59:59 BST"),
        ("2026-10-25T01:00:00Z", "Sun 25 Oct 2026, 01:00:00 GMT", "2026-10-25 01:00:00 GMT"),
    ];
    for (pressed, _, _) in presses {
        let mut event = report(12, None, "t");
        event.at = at(pressed);
        assert_eq!(server.post_events(Some(&credential), batch(vec![event])).await.status(), 200);
    }
    server.store.audit(at("2026-06-23T09:14:03Z"), "a.dsl", "viewed incident", None, None).unwrap();
    server.store.audit(at("2026-11-17T10:14:03Z"), "a.dsl", "viewed incident", None, None).unwrap();

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let list = dsl.page("/reports").await;
    let log = dsl.get("/reports.csv").await.text().await.unwrap();
    for (_, page, csv) in presses {
        assert!(list.contains(page), "list has {page}: {list}");
        assert!(log.contains(csv), "incident log has {csv}: {log}");
    }
    let incidents = server.store.incidents(10).unwrap();
    let summer = incidents.iter().find(|i| i.report.pressed_at == at(presses[1].0)).unwrap();
    let page = dsl.page(&format!("/incidents/{}", summer.id)).await;
    assert!(page.contains(presses[1].1), "{page}");
    let csv = dsl.get(&format!("/incidents/{}/export.csv", summer.id)).await.text().await.unwrap();
    assert!(csv.contains(presses[1].2), "{csv}");
    let pdf = dsl.get(&format!("/incidents/{}/export.pdf", summer.id)).await.bytes().await.unwrap();
    assert!(pdf_text(&pdf).contains(presses[1].1), "the PDF's time");

    let audit = dsl.page("/audit").await;
    assert!(audit.contains("Tue 23 Jun 2026, 10:14:03 BST"), "{audit}");
    assert!(audit.contains("Tue 17 Nov 2026, 10:14:03 GMT"), "{audit}");
    let audit_csv = dsl.get("/audit.csv").await.text().await.unwrap();
    assert!(audit_csv.starts_with('\u{feff}'), "Excel reads it as UTF-8");
    assert!(audit_csv.contains("2026-06-23 10:14:03 BST"), "{audit_csv}");
    assert!(!list.contains(" UTC") && !log.contains(" UTC"), "no UTC for people to convert");
    server.stop().await;
}
