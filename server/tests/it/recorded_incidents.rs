//! An incident recorded by hand (issue 17): a teacher records one about their own class's
//! pupil (and is refused for another class's), the DSL is alerted through the outbox, finds it
//! in the list and its search, moves it through the workflow, and finds it on the pupil's
//! chronology and in the exports in UK time.

use crate::alerts::{smtp_config, smtp_sink};
use crate::common::*;
use slate_server::auth::Role;

type Fields = Vec<(&'static str, String)>;

/// A form's fields as `Browser::post` takes them.
fn borrowed(fields: &Fields) -> Vec<(&'static str, &str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The number in "Incident 7 recorded".
fn recorded_number(page: &str) -> i64 {
    let after = page.split("<h1>Incident ").nth(1).expect("an incident number");
    after.split(' ').next().unwrap().parse().expect("a number")
}

#[tokio::test]
async fn a_teacher_records_an_incident_and_the_dsl_takes_it_from_there() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let config = smtp_config(smtp_port);
    let server = TestServer::start_config(config).await;
    let (amira, ben) = two_classes(&server.store, chrono::Utc::now());

    let mut teacher = Browser::signed_in(&server, "t.oak", Role::Teacher).await;
    assert!(server.store.link_teacher("t.oak", "Oak", Some("oak.teacher@school.example")).unwrap());
    let form = teacher.page("/incidents/record").await;
    assert!(form.contains("Amira K.") && !form.contains("Ben T."), "own class only: {form}");
    let csrf = csrf_in(&form);
    let filled = |pupil: &str| -> Fields {
        [
            ("csrf", csrf.as_str()),
            ("happened_at", "2026-11-17T10:14"),
            ("pupil", pupil),
            ("place", "iPad in Year 5"),
            ("category", "upsetting_content"),
            ("description", "A pop-up with a frightening picture"),
            ("action_taken", "Closed the app and reassured the pupil"),
        ]
        .map(|(k, v)| (k, v.to_owned()))
        .into()
    };

    // A form with problems comes back with each beside its field and what was typed kept.
    let mut wrong = filled(amira.as_str());
    wrong.retain(|(field, _)| !matches!(*field, "description" | "happened_at"));
    wrong.push(("happened_at", "2099-01-01T09:00".into()));
    let refused = teacher.post("/incidents/record", &borrowed(&wrong)).await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(page.contains("description-error") && page.contains("say what, in words"), "{page}");
    assert!(page.contains("happened_at-error") && page.contains("in the future"), "{page}");
    assert!(page.contains("iPad in Year 5") && page.contains("Closed the app"), "kept: {page}");

    // Another class's pupil: not theirs to record.
    let other_class = filled(ben.as_str());
    assert_eq!(teacher.post("/incidents/record", &borrowed(&other_class)).await.status(), 403);

    let recorded = teacher.post("/incidents/record", &borrowed(&filled(amira.as_str()))).await;
    assert_eq!(recorded.status(), 200);
    let page = recorded.text().await.unwrap();
    let id = recorded_number(&page);
    assert!(page.contains("The DSL has been alerted"), "{page}");
    // Nobody waits at a device: it is not among the teacher's new reports to go to.
    assert!(!teacher.page("/reports").await.contains(&format!("/incidents/{id}/acknowledge")));

    // The alert went through the outbox to the DSL alone, naming no pupil.
    let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email").unwrap();
    assert!(message.contains("dsl@school.example"), "{message}");
    assert!(!message.contains("oak.teacher"), "to the DSL: {message}");
    assert!(message.contains(&format!("incident {id} recorded by t.oak")), "{message}");
    assert!(!message.contains("Amira"), "{message}");
    let audit = server.store.audit_log(100).unwrap();
    let entry = audit.iter().find(|e| e.action == "recorded incident").expect("audited");
    assert_eq!(
        (entry.actor.as_str(), entry.record.clone()),
        ("t.oak", Some(format!("incident {id}")))
    );

    // The DSL finds it in the list and in a search by its kind.
    let mut dsl = Browser::signed_in(&server, "d.lead", Role::Dsl).await;
    let list = dsl.page("/reports").await;
    assert!(list.contains(&format!("/incidents/{id}\"")) && list.contains("recorded by t.oak"));
    let search = dsl.page("/reports?category=upsetting_content&class=Oak").await;
    assert!(search.contains(&format!("/incidents/{id}\"")), "{search}");
    let elsewhere = dsl.page("/reports?category=bullying").await;
    assert!(!elsewhere.contains(&format!("/incidents/{id}\"")), "{elsewhere}");

    // The same workflow as a device's report.
    let incident = dsl.page(&format!("/incidents/{id}")).await;
    assert!(incident.contains("Recorded by") && incident.contains("iPad in Year 5"), "{incident}");
    assert!(incident.contains("Closed the app and reassured the pupil"), "{incident}");
    let csrf = csrf_in(&incident);
    for (step, form) in [
        ("acknowledge", vec![("csrf", csrf.as_str())]),
        ("action", vec![("csrf", csrf.as_str()), ("action", "escalated"), ("note", "to head")]),
    ] {
        let answer = dsl.post(&format!("/incidents/{id}/{step}"), &form).await;
        assert_eq!(answer.status(), 303, "{step}");
    }
    let incident = dsl.page(&format!("/incidents/{id}")).await;
    assert!(incident.contains("Escalated"), "{incident}");

    // On the pupil's chronology, and in the exports in UK time with the zone named.
    let chronology = dsl.page(&format!("/pupils/{amira}")).await;
    assert!(chronology.contains(&format!("Incident {id} recorded by t.oak")), "{chronology}");
    let csv = dsl.get(&format!("/incidents/{id}/export.csv")).await.text().await.unwrap();
    assert!(csv.contains("2026-11-17 10:14:00 GMT"), "{csv}");
    assert!(csv.contains("recorded by t.oak, about Amira K."), "{csv}");
    assert!(csv.contains("Device,none") && csv.contains("iPad in Year 5"), "{csv}");
    let pdf = dsl.get(&format!("/incidents/{id}/export.pdf")).await.bytes().await.unwrap();
    let pdf = pdf_text(&pdf);
    assert!(pdf.contains("Reported by: recorded by t.oak, about Amira K."), "{pdf}");
    assert!(pdf.contains("Device: none") && pdf.contains("Tue 17 Nov 2026, 10:14:00 GMT"), "{pdf}");
    let log = dsl.get("/reports.csv").await.text().await.unwrap();
    assert!(log.contains("2026-11-17 10:14:00 GMT") && log.contains("recorded by t.oak"), "{log}");

    // One naming a device is on that device's record; no session is made up for it.
    let form = dsl.page("/incidents/record").await;
    assert!(form.contains("Ben T."), "the DSL records about any pupil");
    let dsl_csrf = csrf_in(&form);
    let on_device = [
        ("csrf", dsl_csrf.as_str()),
        ("happened_at", "2026-11-18T09:30"),
        ("pupil", ben.as_str()),
        ("device", "12"),
        ("category", "contact"),
        ("description", "A message from someone unknown"),
    ];
    let answer = dsl.post("/incidents/record", &on_device).await;
    assert_eq!(answer.status(), 200);
    let second = recorded_number(&answer.text().await.unwrap());
    let on_twelve: Vec<i64> =
        server.store.device_incidents(12, 10).unwrap().iter().map(|i| i.id).collect();
    assert_eq!(on_twelve, [second]);
    // Device 12 was never enrolled (an iPad, say): its page shows the DSL the incident, and
    // tells a teacher, who may not read incidents, nothing more than "no such device".
    let device_page = dsl.page("/devices/12").await;
    assert!(device_page.contains(&format!("/incidents/{second}")), "{device_page}");
    assert_eq!(teacher.get("/devices/12").await.status(), 404);
    let who = dsl.page("/who-had?device=12&at=2026-11-18T09:30").await;
    assert!(who.contains("Nobody is recorded as having device 12"), "no session made up: {who}");
    server.stop().await;
}
