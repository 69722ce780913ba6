//! The device API: enrollment, authentication, idempotent ingest and refusals of bad input.

use crate::common::*;
use chrono::{Duration, Utc};
use slate_protocol::{ErrorReply, IngestReply, MAX_BODY_BYTES};
use slate_server::auth::Role;

async fn error_of(response: reqwest::Response) -> String {
    response.json::<ErrorReply>().await.expect("an ErrorReply body").error
}

#[tokio::test]
async fn a_token_enrolls_once_and_the_credential_authorizes_uploads() {
    let server = TestServer::start().await;
    let token = server.token(12, Duration::days(7), Utc::now());

    let first = server.post_enroll(12, &token).await;
    assert_eq!(first.status(), 200);
    let reply: serde_json::Value = first.json().await.unwrap();
    assert_eq!(reply["device"], 12);
    let credential = reply["credential"].as_str().unwrap().to_owned();

    let response = server.post_events(Some(&credential), batch(vec![report(12, None, "t")])).await;
    assert_eq!(response.status(), 200);
    let reply: IngestReply = response.json().await.unwrap();
    assert_eq!(reply, IngestReply::new(1, 0).taking_newer_kinds());

    let second = server.post_enroll(12, &token).await;
    assert_eq!(second.status(), 401, "a token works once the device has used it");
    assert_eq!(error_of(second).await, "enrollment token refused");
    server.stop().await;
}

/// A power cut or a lost reply between the server's commit and the device's write leaves the
/// device without the credential the server stored (found by images/powercut --enroll-cut). It
/// asks again with the same token, and gets a new credential instead of waiting for IT; the one
/// it never kept stops working.
#[tokio::test]
async fn a_device_that_lost_its_enrollment_reply_enrolls_again_with_the_same_token() {
    let server = TestServer::start().await;
    let token = server.token(12, Duration::days(7), Utc::now());
    let lost = server.post_enroll(12, &token).await;
    assert_eq!(lost.status(), 200);
    let lost: serde_json::Value = lost.json().await.unwrap();
    let lost = lost["credential"].as_str().unwrap().to_owned();

    let again = server.post_enroll(12, &token).await;
    assert_eq!(again.status(), 200, "nothing was heard from the device yet");
    let again: serde_json::Value = again.json().await.unwrap();
    let kept = again["credential"].as_str().unwrap().to_owned();
    assert_ne!(kept, lost);
    let events = || batch(vec![report(12, None, "t")]);
    assert_eq!(server.post_events(Some(&lost), events()).await.status(), 401);
    assert_eq!(server.post_events(Some(&kept), events()).await.status(), 200);
    assert_eq!(server.post_enroll(12, &token).await.status(), 401, "now it is spent");
    server.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_other_device_tokens_are_refused() {
    let server = TestServer::start().await;
    let expired = server.token(12, Duration::days(7), Utc::now() - Duration::days(8));
    let for_twelve = server.token(12, Duration::days(7), Utc::now());

    for (device, token, case) in [
        (12, expired.as_str(), "expired"),
        (12, "no-such-token", "unknown"),
        (13, for_twelve.as_str(), "other device"),
    ] {
        let response = server.post_enroll(device, token).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(error_of(response).await, "enrollment token refused", "{case}: no hint why");
    }
    assert_eq!(
        server.post_enroll(12, &for_twelve).await.status(),
        200,
        "refusals did not use it up"
    );

    let malformed = server
        .client
        .post(format!("{}/api/v1/enroll", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(error_of(malformed).await.contains("missing field"));
    server.stop().await;
}

#[tokio::test]
async fn uploads_without_a_valid_credential_are_refused() {
    let server = TestServer::start().await;
    server.enroll(12).await;
    let body = || batch(vec![report(12, None, "t")]);

    let none = server.post_events(None, body()).await;
    assert_eq!(none.status(), 401);
    assert!(error_of(none).await.contains("Bearer"));
    let wrong = server.post_events(Some("not-a-credential"), body()).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(error_of(wrong).await, "credential refused");
    assert!(server.reports().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_same_batch_twice_is_stored_once() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let events =
        vec![report(12, Some("p-7f3a9c"), "unique-title-1"), report(12, None, "unique-title-2")];
    let body = batch(events.clone());

    let first: IngestReply =
        server.post_events(Some(&credential), body.clone()).await.json().await.unwrap();
    assert_eq!(first, IngestReply::new(2, 0).taking_newer_kinds());
    let second: IngestReply =
        server.post_events(Some(&credential), body).await.json().await.unwrap();
    assert_eq!(second, IngestReply::new(0, 2).taking_newer_kinds());

    let reports = server.reports().await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    let page = server.staff_page("/reports").await;
    assert_eq!(page.matches("unique-title-1").count(), 1, "listed once:\n{page}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_oversized_and_foreign_batches_are_refused() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.enroll(13).await;

    let mut event = serde_json::to_value(report(12, None, "t")).unwrap();
    event["body"]["page_title"] = "a\u{7}b".into();
    let bad_field = serde_json::to_vec(&serde_json::json!({"v": 1, "events": [event]})).unwrap();
    let response = server.post_events(Some(&credential), bad_field).await;
    assert_eq!(response.status(), 400);
    assert!(error_of(response).await.contains("events[0].page_title"));

    let response = server.post_events(Some(&credential), b"{not json".to_vec()).await;
    assert_eq!(response.status(), 400);
    assert!(error_of(response).await.contains("malformed JSON"));

    let oversized = vec![b' '; MAX_BODY_BYTES + 1];
    let response = server.post_events(Some(&credential), oversized).await;
    assert_eq!(response.status(), 413);

    let foreign = batch(vec![report(12, None, "mine"), report(13, None, "not mine")]);
    let response = server.post_events(Some(&credential), foreign).await;
    assert_eq!(response.status(), 403);
    assert!(error_of(response).await.contains("own events"));

    assert!(server.reports().await.is_empty(), "nothing was half-accepted");
    server.stop().await;
}

#[tokio::test]
async fn health_answers_ok() {
    let server = TestServer::start().await;
    let response = server.client.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    server.stop().await;
}

/// IT asks on the fleet page for device 12's credential to be replaced: the next answer to its
/// events says so, it fetches a replacement (a lost answer changes nothing: the old one still
/// works), and from its first use the old one is refused. Then the device is stolen: IT revokes
/// it on the same page, and nothing it holds works.
#[tokio::test]
async fn it_replaces_a_device_credential_and_revokes_a_stolen_device_on_the_fleet_page() {
    let server = TestServer::start().await;
    let old = server.enroll(12).await;
    let events = || batch(vec![report(12, None, "t")]);
    let reply = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        response.json::<IngestReply>().await.unwrap()
    };
    assert!(!reply(server.post_events(Some(&old), events()).await).await.rotate_credential);

    let mut it = Browser::signed_in(&server, "it.jones", Role::ItAdmin).await;
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("in use"), "{fleet}");
    let csrf = csrf_in(&fleet);
    let asked = it.post("/fleet/replace-credential", &[("csrf", &csrf), ("device", "12")]).await;
    assert_eq!(asked.status(), 303);
    assert!(it.page("/fleet").await.contains("not used yet"));
    assert!(reply(server.post_events(Some(&old), events()).await).await.rotate_credential);

    let replace = || async {
        let response = server
            .client
            .post(format!("{}/api/v1/device/credential", server.url))
            .bearer_auth(&old)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reply: slate_protocol::EnrollReply = response.json().await.unwrap();
        assert_eq!(reply.device.get(), 12);
        reply.credential
    };
    let lost = replace().await;
    let kept = replace().await;
    assert_ne!(lost, kept);
    assert_eq!(server.post_events(Some(&lost), events()).await.status(), 401);
    assert!(!reply(server.post_events(Some(&kept), events()).await).await.rotate_credential);
    assert_eq!(server.post_events(Some(&old), events()).await.status(), 401, "the old one is gone");
    assert!(it.page("/fleet").await.contains("in use"));

    // Stolen. Without "I am sure", nothing happens; with it, the device is revoked.
    let csrf = csrf_in(&it.page("/fleet").await);
    let unsure = it.post("/fleet/revoke", &[("csrf", &csrf), ("device", "12")]).await;
    assert_eq!(unsure.status(), 400);
    assert!(unsure.text().await.unwrap().contains("I am sure"));
    assert_eq!(server.post_events(Some(&kept), events()).await.status(), 200);
    let form = [("csrf", csrf.as_str()), ("device", "12"), ("confirm", "yes")];
    assert_eq!(it.post("/fleet/revoke", &form).await.status(), 303);
    assert_eq!(server.post_events(Some(&kept), events()).await.status(), 401);
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("revoked") && fleet.contains("by it.jones"), "{fleet}");
    let again = it.post("/fleet/revoke", &form).await;
    assert_eq!(again.status(), 409);
    let actions: Vec<String> = server
        .store
        .audit_log(20)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}: {}", e.actor, e.action))
        .collect();
    for expected in [
        "device 12: enrolled",
        "it.jones: asked device to replace its credential",
        "device 12: replaced its credential",
        "it.jones: revoked device",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    server.stop().await;
}

/// A class set from one card image: a device with no number asks with the class-set token and
/// its serial which number IT listed, then enrolls as it; a number already enrolled is told as
/// such (409) to a class-set token's holder, and a serial off the list or a single device's
/// token is refused.
#[tokio::test]
async fn a_device_finds_its_number_on_its_serial_list_and_a_taken_number_is_told() {
    use slate_server::device_serials::parse_serials_csv;
    let server = TestServer::start().await;
    let now = Utc::now();
    let class_set = server.store.issue_class_set_token(3, Duration::days(4), "it", now).unwrap();
    let class_set = class_set.expose().to_owned();
    let list =
        parse_serials_csv("serial,device\n10000000abcdef01,12\ndc:a6:32:01:02:03,13\n").unwrap();
    server.store.replace_device_serials(&list, "it", now).unwrap();
    let ask = |token: String, serial: &str| {
        let body = serde_json::json!({"v": 1, "token": token, "serial": serial});
        let request =
            server.client.post(format!("{}/api/v1/enroll/number", server.url)).json(&body);
        async move { request.send().await.unwrap() }
    };

    let listed = ask(class_set.clone(), "10000000abcdef01").await;
    assert_eq!(listed.status(), 200);
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed, serde_json::json!({"device": 12}));
    let mac = ask(class_set.clone(), "dca632010203").await.json::<serde_json::Value>().await;
    assert_eq!(mac.unwrap()["device"], 13);

    let unlisted = ask(class_set.clone(), "abc").await;
    assert_eq!(unlisted.status(), 404);
    assert_eq!(error_of(unlisted).await, "this serial number is not on IT's list");
    let single = server.token(14, Duration::days(7), now);
    assert_eq!(ask(single, "10000000abcdef01").await.status(), 401, "not a class-set token");
    assert_eq!(ask("nope".into(), "10000000abcdef01").await.status(), 401);
    let unnormalised = ask(class_set.clone(), "DC:A6:32:01:02:03").await;
    assert_eq!(unnormalised.status(), 400);

    assert_eq!(server.post_enroll(12, &class_set).await.status(), 200);
    // Another card of the set typed 12 too: told so, and it may choose another.
    let events = || batch(vec![report(12, None, "t")]);
    let credential = server.post_enroll(12, &class_set).await;
    assert_eq!(credential.status(), 200, "unheard since: its reply may have been lost");
    let credential: serde_json::Value = credential.json().await.unwrap();
    let credential = credential["credential"].as_str().unwrap().to_owned();
    assert_eq!(server.post_events(Some(&credential), events()).await.status(), 200);
    let taken = server.post_enroll(12, &class_set).await;
    assert_eq!(taken.status(), 409, "heard from since: another card of the set chose 12 too");
    let other = server.token(20, Duration::days(7), now);
    assert_eq!(server.post_enroll(20, &other).await.status(), 200);
    let taken = server.post_enroll(20, &class_set).await;
    assert_eq!(taken.status(), 409);
    assert_eq!(error_of(taken).await, "device 20 is already enrolled: choose another number");
    // A token nobody issued learns nothing about which numbers are taken.
    assert_eq!(server.post_enroll(20, "nope").await.status(), 401);
    server.stop().await;
}

/// IT uploads the list of serials on `/fleet/device-numbers`: a bad file is refused naming its
/// line and changes nothing; a good one replaces the list, the devices get their numbers from
/// it, the page shows which are enrolled, and the upload is audited with the count only. A
/// teacher may not see the page.
#[tokio::test]
async fn it_uploads_the_serial_list_on_the_fleet_page() {
    let server = TestServer::start().await;
    let now = Utc::now();
    let class_set = server.store.issue_class_set_token(3, Duration::days(4), "it", now).unwrap();
    let class_set = class_set.expose().to_owned();
    let mut it = Browser::signed_in(&server, "it.tech", Role::ItAdmin).await;
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("href=\"/fleet/device-numbers\""), "{fleet}");
    let page = it.page("/fleet/device-numbers").await;
    assert!(page.contains("No list yet"), "{page}");
    let csrf = csrf_in(&page);

    let forged = it.upload("/fleet/device-numbers", "wrong", "list", b"serial,device\n").await;
    assert_eq!(forged.status(), 403);
    let bad = b"serial,device\n10000000abcdef01,12\n10000000ABCDEF01,13\n";
    let refused = it.upload("/fleet/device-numbers", &csrf, "list", bad).await;
    assert_eq!(refused.status(), 400);
    let said = refused.text().await.unwrap();
    assert!(said.contains("line 3: serial 10000000abcdef01 is already on line 2"), "{said}");
    assert!(server.store.device_serials().unwrap().is_empty(), "nothing changed");
    let not_text = it.upload("/fleet/device-numbers", &csrf, "list", &[0xff, 0xfe, 0x00]).await;
    assert_eq!(not_text.status(), 400);

    let good = b"\xef\xbb\xbfserial,device\r\n10000000abcdef01,12\r\ndc:a6:32:01:02:03,13\r\n";
    let saved = it.upload("/fleet/device-numbers", &csrf, "list", good).await;
    assert_eq!(saved.status(), 303, "{}", saved.text().await.unwrap());
    let ask = serde_json::json!({"v": 1, "token": class_set, "serial": "dca632010203"});
    let answer = server
        .client
        .post(format!("{}/api/v1/enroll/number", server.url))
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.json::<serde_json::Value>().await.unwrap()["device"], 13);
    assert_eq!(server.post_enroll(13, &class_set).await.status(), 200);
    let page = it.page("/fleet/device-numbers").await;
    assert!(page.contains("2 devices listed, 1 enrolled."), "{page}");
    assert!(page.contains("dca632010203"), "{page}");
    let audit = server.store.audit_log(50).unwrap();
    let upload = audit
        .iter()
        .find(|a| a.action == "uploaded the list of device serial numbers")
        .expect("the upload is audited");
    assert_eq!((upload.actor.as_str(), upload.detail.as_deref()), ("it.tech", Some("2 devices")));

    let mut teacher = Browser::signed_in(&server, "t.one", Role::Teacher).await;
    assert_eq!(teacher.get("/fleet/device-numbers").await.status(), 403);
    server.stop().await;
}
