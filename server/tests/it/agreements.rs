//! The school's own acceptable use agreement (issue 17), through the real router and on either
//! store (`SLATE_TEST_DATABASE=postgres` for PostgreSQL): the DSL previews and saves a KS1
//! text, devices get it, versioned, in the signed kiosk policy; a pupil's acceptance of that
//! version is recorded and shown with the words accepted; going back to the built-in text is a
//! version too, and the old one stays readable.

use crate::common::*;
use chrono::Utc;
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
use slate_protocol::device::PolicyReply;
use slate_protocol::kiosk::{self, KeyStage};
use slate_protocol::{Event, EventBody, PupilId, SessionId};
use slate_server::auth::Role;

/// The kiosk policy a device of this release gets, opened and checked as the device does.
async fn kiosk_policy(server: &TestServer, credential: &str) -> kiosk::Policy {
    let text = kiosk_text(server, credential, &slate_protocol::device::policy_path()).await;
    kiosk::parse_policy(&text).unwrap()
}

/// The kiosk policy's signed text as a device asking with `path` gets it.
async fn kiosk_text(server: &TestServer, credential: &str, path: &str) -> String {
    let response = server.device_get(Some(credential), path).await;
    assert_eq!(response.status(), 200);
    let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let bundle = serde_json::to_vec(&reply.kiosk).unwrap();
    SignedBundle::open_as(BundleKind::KioskPolicy, &bundle, &key).unwrap()
}

async fn post_agreement(
    dsl: &mut Browser<'_>,
    stage: &str,
    action: &str,
    text: &str,
) -> reqwest::Response {
    let token = csrf_in(&dsl.page("/agreements").await);
    let path = format!("/agreements/{stage}");
    dsl.post(&path, &[("text", text), ("action", action), ("csrf", &token)]).await
}

const OURS: &str =
    "Our Oak class promise\n- We ask before we tap.\n- We tell a grown-up if we feel sad.\n";

#[tokio::test]
async fn a_schools_own_text_reaches_devices_and_its_acceptance_shows_the_version() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    import_roster_csv(
        &server.store,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n",
        Utc::now(),
    );
    // Before any edit: no agreements in the policy, so devices show their built-in texts.
    let before = kiosk_policy(&server, &credential).await;
    assert!(before.agreements.is_empty());

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let page = dsl.page("/agreements").await;
    assert!(page.contains("Devices show the built-in text"), "{page}");
    // A preview shows the text as a pupil will see it and saves nothing.
    let preview = post_agreement(&mut dsl, "ks1", "preview", OURS).await;
    assert_eq!(preview.status(), 200);
    let preview = preview.text().await.unwrap();
    assert!(preview.contains("<li>We ask before we tap.</li>"), "{preview}");
    assert!(server.store.agreement_versions(KeyStage::Ks1).unwrap().is_empty());
    // A text over the limits is refused with what to fix, and saves nothing.
    let long = format!("Title\n{}\n", "x".repeat(73));
    let refused = post_agreement(&mut dsl, "ks1", "save", &long).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("73 characters"));
    let preview_bad = post_agreement(&mut dsl, "ks1", "preview", "Only a title").await;
    assert!(preview_bad.text().await.unwrap().contains("There are no promises"));
    assert!(server.store.agreement_versions(KeyStage::Ks1).unwrap().is_empty());

    // Saved: version 1, audited, and in the signed policy the device fetches.
    assert_eq!(post_agreement(&mut dsl, "ks1", "save", OURS).await.status(), 303);
    let policy = kiosk_policy(&server, &credential).await;
    assert!(policy.issued_at > before.issued_at, "devices see a new policy");
    let ours = policy.agreement(KeyStage::Ks1).expect("the school's KS1 text").clone();
    assert_eq!(ours.version, 1);
    assert_eq!(ours.title, "Our Oak class promise");
    assert_eq!(ours.promises, ["We ask before we tap.", "We tell a grown-up if we feel sad."]);
    assert!(policy.agreement(KeyStage::Ks2).is_none(), "KS2 keeps the built-in text");
    let audit = server.store.audit_log(100).unwrap();
    let entry = audit.iter().find(|e| e.action == "changed the acceptable use agreement").unwrap();
    assert_eq!(entry.actor, "a.dsl");
    assert!(entry.detail.as_deref().unwrap_or("").contains(&ours.text_version), "{entry:?}");

    // A device that does not say it understands a school's own text (`can=school_agreements`)
    // gets the policy without the field, and shows its built-in text; one that says so gets it.
    let policy = slate_protocol::routes::DEVICE_POLICY;
    let older = format!("{policy}?can=bundle_kind,picture_pin_hash,languages");
    let older = kiosk_text(&server, &credential, &older).await;
    assert!(!older.contains("\"agreements\"") && !older.contains("Oak class promise"), "{older}");
    assert!(kiosk::parse_policy(&older).unwrap().agreement(KeyStage::Ks1).is_none());
    let asking = format!("{policy}?can=bundle_kind,school_agreements");
    let asking = kiosk::parse_policy(&kiosk_text(&server, &credential, &asking).await).unwrap();
    assert_eq!(asking.agreement(KeyStage::Ks1), Some(&ours));

    // The same text again is no new version.
    assert_eq!(post_agreement(&mut dsl, "ks1", "save", OURS).await.status(), 303);
    assert_eq!(server.store.agreement_versions(KeyStage::Ks1).unwrap().len(), 1);

    // The pupil accepts version 1 on device 12; the device page names it and links its words.
    let pupil: PupilId = server.store.policy_records().unwrap().pupils[0].id.clone();
    let session = SessionId::new();
    let accepted = Event::new(
        device(12),
        Utc::now(),
        EventBody::AupAccepted {
            session,
            pupil: pupil.clone(),
            key_stage: "ks1".into(),
            text_version: ours.text_version.clone(),
            school_version: Some(ours.version),
        },
    );
    let started = session_started(12, session, pupil.as_str(), &Utc::now().to_rfc3339());
    let posted = server.post_events(Some(&credential), batch(vec![started, accepted])).await;
    assert_eq!(posted.status(), 200, "{}", posted.text().await.unwrap());
    let device_page = dsl.page("/devices/12").await;
    let named = ["the school&#39;s text, version 1", "the school's text, version 1"];
    assert!(named.iter().any(|n| device_page.contains(n)), "{device_page}");
    assert!(device_page.contains("/agreements/ks1/1"), "{device_page}");
    assert!(device_page.contains(&ours.text_version));
    // And so does the pupil's chronology.
    let chronology = dsl.page(&format!("/pupils/{}", pupil.as_str())).await;
    assert!(chronology.contains("Agreement accepted"), "{chronology}");
    assert!(chronology.contains(&format!("version 1 ({})", ours.text_version)), "{chronology}");

    // Back to the built-in text: version 2, none in the policy, and version 1 still readable.
    assert_eq!(post_agreement(&mut dsl, "ks1", "builtin", "").await.status(), 303);
    let policy = kiosk_policy(&server, &credential).await;
    assert!(policy.agreements.is_empty(), "{:?}", policy.agreements);
    let versions = server.store.agreement_versions(KeyStage::Ks1).unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    let old = dsl.page("/agreements/ks1/1").await;
    assert!(old.contains("We tell a grown-up if we feel sad.") && old.contains(&ours.text_version));
    let builtin = dsl.page("/agreements/ks1/0").await;
    assert!(builtin.contains(&slate_protocol::agreement::builtin(KeyStage::Ks1).0), "{builtin}");
    let missing = dsl.get("/agreements/ks1/9").await;
    assert_eq!(missing.status(), 404);

    // A teacher reads what was accepted, but may not edit.
    let mut teacher = Browser::signed_in(&server, "t.oak", Role::Teacher).await;
    assert_eq!(teacher.get("/agreements/ks1/1").await.status(), 200);
    assert_eq!(teacher.get("/agreements").await.status(), 403);
    server.stop().await;
}
