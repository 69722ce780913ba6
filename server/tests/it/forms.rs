//! Staff forms that check what they are given and say plainly what is wrong: a class whose
//! filter profile is not set up, filter-list lines that are not domain names, a filter bypass
//! that would already be over.

use crate::common::*;
use chrono::{Duration, Utc};
use chrono_tz::Europe::London;
use slate_server::auth::Role;

#[tokio::test]
async fn a_class_without_a_filter_profile_and_a_list_line_that_is_no_domain_are_reported() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let profile =
        [("name", "oak"), ("block_lists", ""), ("allow_only", ""), ("safe_search", "strict")];
    assert_eq!(submit(&mut dsl, "/setup", "/setup/profile", &profile).await.status(), 303);
    let csv = "class,first_name,last_name,key_stage\r\nOak,Amira,Khan,ks1\r\n\"Year 5, Kingfishers\",Ben,Taylor,ks2\r\n";
    let response = submit(&mut dsl, "/setup", "/setup/roster", &[("csv", csv)]).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("2 pupils added, 0 already there, 2 classes added."), "{page}");
    assert!(
        page.contains(
            "<strong>Year 5, Kingfishers</strong>: profile <code>year-5,-kingfishers</code>"
        ),
        "{page}"
    );
    assert!(!page.contains("<strong>Oak</strong>"), "Oak's profile is set up: {page}");
    let setup = dsl.page("/setup").await;
    assert!(setup.contains("<code>year-5,-kingfishers</code>"), "still said on the setup page");

    let list = [("name", "adult"), ("contents", "bad.example\r\nhttp://not a domain/\r\n")];
    let response = submit(&mut dsl, "/setup", "/setup/list", &list).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("line 2 (&quot;http://not a domain/&quot;) is not a domain name"),
        "{page}"
    );
    assert!(server.store.lists().unwrap().is_empty(), "nothing saved");
    server.stop().await;
}

#[tokio::test]
async fn a_bypass_that_would_already_be_over_is_refused() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let roster = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n";
    assert_eq!(submit(&mut dsl, "/setup", "/setup/roster", &[("csv", roster)]).await.status(), 200);
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let uk =
        |t: chrono::DateTime<Utc>| t.with_timezone(&London).format("%Y-%m-%dT%H:%M").to_string();
    let now = Utc::now();
    let yesterday = (uk(now - Duration::days(1)), uk(now - Duration::days(1) + Duration::hours(1)));
    let request = |(from, until): &(String, String)| {
        [
            ("class", "Oak".to_string()),
            ("domain", "history.example.org".to_string()),
            ("from", from.clone()),
            ("until", until.clone()),
            ("reason", "Castles lesson".to_string()),
        ]
    };
    let fields = request(&yesterday);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = submit(&mut teacher, "/bypasses", "/bypasses", &fields).await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(page.contains("has already passed"), "{page}");
    assert!(server.store.bypasses(10).unwrap().is_empty(), "nothing recorded");

    let later = (uk(now + Duration::hours(1)), uk(now + Duration::hours(2)));
    let fields = request(&later);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(submit(&mut teacher, "/bypasses", "/bypasses", &fields).await.status(), 303);
    server.stop().await;
}

#[tokio::test]
async fn refused_pages_keep_the_signed_in_frame_and_say_in_plain_words_what_happened() {
    let server = TestServer::start().await;
    let mut it = Browser::signed_in(&server, "it.patel", Role::ItAdmin).await;
    let signed_in_frame = |page: &str| {
        page.contains("it.patel (it_admin)")
            && page.contains("Sign out")
            && page.contains(r#"href="/fleet""#)
            && !page.contains(r#"href="/staff/login""#)
    };

    // The gate's refusal, the handler's and the router's 404, each in IT's own frame.
    let refused = it.get("/reports").await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Not for your role") && signed_in_frame(&page), "{page}");
    let missing = it.get("/no-such-page").await;
    assert_eq!(missing.status(), 404);
    let page = missing.text().await.unwrap();
    assert!(page.contains("There is no page at this address") && signed_in_frame(&page), "{page}");

    // A form body over the limit: a plain sentence, and the way back to what was typed.
    let html = it.page("/setup").await;
    let token = csrf_in(&html);
    let long = "x".repeat(slate_protocol::MAX_BODY_BYTES + 1);
    let response = it.post("/setup/class", &[("csrf", &token), ("name", &long)]).await;
    assert_eq!(response.status(), 413);
    let page = response.text().await.unwrap();
    assert!(!page.contains("Failed to buffer") && !page.contains("length limit"), "{page}");
    assert!(page.contains("more than this form can take"), "{page}");
    assert!(page.contains(r#"id="go-back""#) && page.contains("/static/back.js"), "{page}");
    assert!(signed_in_frame(&page), "{page}");
    let script = it.get("/static/back.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("history.back()"));

    // A GET form's fields that do not check out: the same frame and way back.
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let bad_term = dsl.get("/governors?from=2026-09-01&to=2025-09-01").await;
    assert_eq!(bad_term.status(), 400);
    let page = bad_term.text().await.unwrap();
    assert!(page.contains("To must be after From") && page.contains("Sign out"), "{page}");
    assert!(page.contains(r#"id="go-back""#), "{page}");

    // Nobody signed in: the frame offers "Sign in", not someone else's navigation.
    let nobody = Browser::new(&server).get("/no-such-page").await.text().await.unwrap();
    assert!(nobody.contains(r#"href="/staff/login""#) && !nobody.contains("Sign out"), "{nobody}");
    server.stop().await;
}

#[tokio::test]
async fn it_lands_on_the_fleet_after_choosing_its_first_password() {
    let server = TestServer::start().await;
    let phc =
        slate_server::auth::hash_password("one-time-pass", slate_server::auth::HashCost::Cheap);
    let secret = slate_server::auth::new_totp_secret();
    server.store.save_staff("it.patel", Role::ItAdmin, &phc, Some(&secret), Utc::now()).unwrap();
    let mut it = Browser::new(&server);
    let signed_in = it.sign_in("it.patel", "one-time-pass", &code(&secret)).await;
    assert_eq!(signed_in.headers()["location"], "/staff/password");
    let token = csrf_in(&it.page("/staff/password").await);
    let new = "a much better password";
    let changed = it
        .post(
            "/staff/password",
            &[("current", "one-time-pass"), ("new", new), ("confirm", new), ("csrf", &token)],
        )
        .await;
    assert_eq!(changed.status(), 303);
    assert_eq!(changed.headers()["location"], "/fleet", "a page IT can use");
    assert!(it.page("/fleet").await.contains("Fleet"));
    server.stop().await;
}
