//! The language of the pupils' screens set on the languages page (issue 17), through the real
//! router and on either store (`SLATE_TEST_DATABASE=postgres` for PostgreSQL): the config's
//! `[languages]` is in force until the first save, the page's settings after; each save is
//! audited, wakes a device waiting for commands with "fetch the changed policy", and the
//! device's real policy fetch (`can=languages`) carries the new language.

use crate::common::*;
use chrono::Utc;
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
use slate_protocol::device::{CommandAction, CommandsReply, PolicyReply, CAN_LANGUAGES};
use slate_protocol::kiosk;
use slate_server::auth::Role;
use slate_server::config::{Config, Languages};

/// The kiosk policy a device asking with `query` gets, opened and checked as a device does.
async fn kiosk_policy(server: &TestServer, credential: &str, query: &str) -> kiosk::Policy {
    let path = format!("/api/v1/device/policy?{query}");
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let bundle = serde_json::to_vec(&reply.kiosk).unwrap();
    let text = SignedBundle::open_as(BundleKind::KioskPolicy, &bundle, &key).unwrap();
    kiosk::parse_policy(&text).unwrap()
}

async fn poll(server: &TestServer, credential: &str, after: u64, wait_s: u32) -> CommandsReply {
    let path = format!("/api/v1/device/commands?after={after}&wait_s={wait_s}");
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    CommandsReply::from_json(&response.bytes().await.unwrap()).unwrap()
}

fn class_id(server: &TestServer, name: &str) -> String {
    let classes = server.store.classes().unwrap();
    format!("class-{}", classes.iter().find(|c| c.name == name).unwrap().id)
}

#[tokio::test]
async fn the_page_sets_the_language_and_a_devices_next_fetch_carries_it() {
    // The config seeds a Welsh school with Oak in English.
    let seeded = Languages::normalised(Some("cy".into()), [("Oak".into(), "en".into())].into());
    let config = Config { languages: seeded, ..Config::default() };
    let server = std::sync::Arc::new(TestServer::start_config(config).await);
    let credential = server.enroll(12).await;
    import_roster_csv(
        &server.store,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nRowan,Ben,Jones,ks2\n",
        Utc::now(),
    );
    let can = format!("can=bundle_kind,{CAN_LANGUAGES}");
    let before = kiosk_policy(&server, &credential, &can).await;
    assert_eq!(before.language.as_deref(), Some("cy"), "the config's, until the page is saved");
    let oak = before.classes.iter().find(|c| c.name == "Oak").unwrap();
    assert_eq!(before.language_of(Some(oak)), "en");

    // IT opens the page: the config is in force, and says so.
    let mut it = Browser::signed_in(&server, "i.tech", Role::ItAdmin).await;
    let page = it.page("/languages").await;
    assert!(page.contains("In force now: the server's config file"), "{page}");
    let token = csrf_in(&page);

    // A device waits for commands; IT makes the school English with Rowan in Welsh.
    let cursor = poll(&server, &credential, 0, 1).await.cursor;
    let waiting = {
        let (server, credential) = (server.clone(), credential.clone());
        tokio::spawn(async move { poll(&server, &credential, cursor, 55).await })
    };
    let (oak_field, rowan_field) = (class_id(&server, "Oak"), class_id(&server, "Rowan"));
    let form = [
        ("school", "en"),
        (oak_field.as_str(), ""),
        (rowan_field.as_str(), "cy"),
        ("csrf", token.as_str()),
    ];
    // Without the CSRF token nothing is saved.
    let forged = it.post("/languages", &form[..3]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(server.store.saved_languages().unwrap(), None);
    // A language the screens are not in is refused by name.
    let fr = [("school", "fr"), ("csrf", token.as_str())];
    let refused = it.post("/languages", &fr).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("&quot;fr&quot; is not one"));

    assert_eq!(it.post("/languages", &form).await.status(), 303);
    let woken = tokio::time::timeout(PATIENCE, waiting).await.unwrap().unwrap();
    assert!(
        woken.commands.iter().any(|c| c.action == CommandAction::RefreshPolicy),
        "{:?}",
        woken.commands
    );
    // The device's fetch: English school, Rowan in Welsh, Oak the school's.
    let after = kiosk_policy(&server, &credential, &can).await;
    assert!(after.issued_at > before.issued_at, "devices see a new policy");
    assert_eq!(after.language, None, "English is sent as nothing");
    let class = |name: &str| after.classes.iter().find(|c| c.name == name).unwrap().clone();
    assert_eq!(after.language_of(Some(&class("Rowan"))), "cy");
    assert_eq!(after.language_of(Some(&class("Oak"))), "en");
    // A device that does not ask gets no language at all.
    let older = kiosk_policy(&server, &credential, "can=bundle_kind").await;
    assert!(older.language.is_none() && older.classes.iter().all(|c| c.language.is_none()));

    let audit = server.store.audit_log(20).unwrap();
    let entry = audit.iter().find(|e| e.action == "changed the screens' language").unwrap();
    assert_eq!(entry.actor, "i.tech");
    assert_eq!(entry.detail.as_deref(), Some("school en; Rowan cy"));
    let page = it.page("/languages").await;
    assert!(page.contains("it is no longer used"), "{page}");

    // The DSL may too; a teacher may not.
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    assert_eq!(dsl.get("/languages").await.status(), 200);
    let mut teacher = Browser::signed_in(&server, "t.oak", Role::Teacher).await;
    assert_eq!(teacher.get("/languages").await.status(), 403);
    std::sync::Arc::into_inner(server).unwrap().stop().await;
}
