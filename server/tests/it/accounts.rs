//! Staff accounts over HTTP: sign-in with password and TOTP, the first-use password change,
//! throttling, sessions and sign-out, CSRF, roles, and the audit log.

use crate::common::*;
use slate_server::auth::Role;

#[tokio::test]
async fn a_dsl_signs_in_with_password_and_code_then_must_choose_a_password() {
    let server = TestServer::start().await;
    let phc =
        slate_server::auth::hash_password("one-time-pass", slate_server::auth::HashCost::Cheap);
    let secret = slate_server::auth::new_totp_secret();
    server.store.save_staff("a.dsl", Role::Dsl, &phc, Some(&secret), chrono::Utc::now()).unwrap();

    let mut browser = Browser::new(&server);
    let response = browser.sign_in("a.dsl", "one-time-pass", &code(&secret)).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/staff/password");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let session =
        cookie.iter().find(|c| c.starts_with("slate_session=")).expect("a session cookie");
    assert!(session.ends_with("; HttpOnly; SameSite=Strict; Path=/"), "{session}");
    assert_eq!(
        session.len(),
        "slate_session=".len() + 43 + "; HttpOnly; SameSite=Strict; Path=/".len()
    );

    // Until the password is changed, every other page sends the DSL back to the form.
    let reports = browser.get("/reports").await;
    assert_eq!(reports.status(), 303);
    assert_eq!(reports.headers()["location"], "/staff/password");

    let form = browser.page("/staff/password").await;
    let token = csrf_in(&form);
    let short = browser
        .post(
            "/staff/password",
            &[
                ("current", "one-time-pass"),
                ("new", "short"),
                ("confirm", "short"),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(short.status(), 400);
    assert!(short.text().await.unwrap().contains("at least 12"));
    let new = "a much better password";
    let changed = browser
        .post(
            "/staff/password",
            &[("current", "one-time-pass"), ("new", new), ("confirm", new), ("csrf", &token)],
        )
        .await;
    assert_eq!(changed.status(), 303);
    let page = browser.page("/reports").await;
    assert!(page.contains("a.dsl (dsl)"), "{page}");

    // Sign out: the session is gone server-side, so the old cookie no longer works.
    let old_cookies = browser.cookies.clone();
    let out = browser.post("/staff/logout", &[("csrf", &csrf_in(&page))]).await;
    assert_eq!(out.status(), 303);
    assert!(browser.cookies.iter().all(|(k, _)| k != "slate_session"));
    browser.cookies = old_cookies;
    assert_eq!(browser.get("/reports").await.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn wrong_missing_and_reused_codes_are_refused_alike() {
    let server = TestServer::start().await;
    let secret = add_staff(&server.store, "a.dsl", Role::Dsl).unwrap();
    let mut browser = Browser::new(&server);

    for (password, given) in
        [(PASSWORD, ""), (PASSWORD, "000000"), ("wrong password", code(&secret).as_str())]
    {
        let response = browser.sign_in("a.dsl", password, given).await;
        assert_eq!(response.status(), 401, "{password} {given}");
        assert!(response.text().await.unwrap().contains("username, password or code is not right"));
    }
    let used = code(&secret);
    assert_eq!(browser.sign_in("a.dsl", PASSWORD, &used).await.status(), 303);
    let mut other = Browser::new(&server);
    assert_eq!(other.sign_in("a.dsl", PASSWORD, &used).await.status(), 401, "a code works once");

    // A teacher without TOTP needs none; an unknown account is refused like a wrong password.
    add_staff(&server.store, "t.jones", Role::Teacher);
    assert_eq!(Browser::new(&server).sign_in("t.jones", PASSWORD, "").await.status(), 303);
    assert_eq!(Browser::new(&server).sign_in("nobody", PASSWORD, "").await.status(), 401);

    // The sign-in form itself needs its token.
    let forged = server
        .client
        .post(format!("{}/staff/login", server.url))
        .form(&[("username", "t.jones"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn repeated_failures_slow_the_account_down_from_that_address() {
    let server = TestServer::start().await;
    // A server with no account says so, rather than only "not right".
    let empty = Browser::new(&server).sign_in("nobody.yet", PASSWORD, "").await;
    assert!(empty.text().await.unwrap().contains("This server has no staff accounts yet"));
    add_staff(&server.store, "t.jones", Role::Teacher);
    let mut browser = Browser::new(&server);
    for _ in 0..5 {
        assert_eq!(browser.sign_in("t.jones", "guess", "").await.status(), 401);
    }
    let locked = browser.sign_in("t.jones", PASSWORD, "").await;
    assert_eq!(locked.status(), 429, "even the right password waits");
    let told = locked.text().await.unwrap();
    assert!(
        told.contains("Too many wrong tries") && told.contains("You can try again at"),
        "{told}"
    );
    assert!(told.contains("nobody needs to unlock it") && told.contains("staff recover"), "{told}");
    // Another account from the same address is not locked by these five.
    add_staff(&server.store, "t.other", Role::Teacher);
    assert_eq!(browser.sign_in("t.other", PASSWORD, "").await.status(), 303);

    // What cannot be a username, or is nobody's, never reaches the audit log.
    for typed in ["Correct Horse Battery!", "nobody.here"] {
        assert_eq!(Browser::new(&server).sign_in(typed, PASSWORD, "").await.status(), 401);
    }
    let audit = server.store.audit_log(100).unwrap();
    assert!(audit.iter().any(|e| e.actor == "t.jones" && e.action == "sign-in refused"));
    assert!(audit.iter().any(|e| e.actor == "-" && e.action == "sign-in refused"));
    let text = format!("{audit:?}");
    assert!(
        !text.contains("Horse") && !text.contains("horse") && !text.contains("nobody"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn roles_limit_what_staff_see_and_posts_need_the_token() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let (amira, ben) = two_classes(&server.store, chrono::Utc::now());
    let reports =
        vec![report(12, Some(amira.as_str()), "in Oak"), report(12, Some(ben.as_str()), "in Ash")];
    assert_eq!(server.post_events(Some(&credential), batch(reports)).await.status(), 200);
    let incident_of = |pupil: &slate_protocol::PupilId| {
        let all = server.store.incidents(10).unwrap();
        all.iter().find(|i| i.report.pupil.as_deref() == Some(pupil.as_str())).unwrap().id
    };
    let (oak_incident, ash_incident) = (incident_of(&amira), incident_of(&ben));

    let mut it = Browser::signed_in(&server, "i.tech", Role::ItAdmin).await;
    assert_eq!(it.get("/reports").await.status(), 403, "IT sees no pupil data");
    assert_eq!(it.get(&format!("/incidents/{oak_incident}")).await.status(), 403);
    assert_eq!(it.get("/devices/12").await.status(), 403);
    assert!(it.page("/fleet").await.contains("Device 12"));

    // A teacher of Oak sees Oak's new report, enough to go to the device, and nothing else.
    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    assert!(server.store.link_teacher("t.jones", "Oak", None).unwrap());
    let list = teacher.page("/reports").await;
    assert!(list.contains("Amira K.") && list.contains("Device 12"), "{list}");
    assert!(!list.contains("Ben T."), "another class's report: {list}");
    assert!(!list.contains("example.org") && !list.contains("in Oak"), "no address or title");
    for path in [
        format!("/incidents/{oak_incident}"),
        format!("/incidents/{oak_incident}/export.csv"),
        "/reports.csv".into(),
        "/audit".into(),
        "/api/v1/staff/reports".into(),
    ] {
        assert_eq!(teacher.get(&path).await.status(), 403, "{path}: the case file is the DSL's");
    }
    let device = teacher.page("/devices/12").await;
    assert!(!device.contains("example.org"), "no addresses on the device page: {device}");
    let no_token =
        teacher.post(&format!("/incidents/{oak_incident}/acknowledge"), &[("note", "")]).await;
    assert_eq!(no_token.status(), 403, "no CSRF token");
    let token = csrf_in(&list);
    let other_class =
        teacher.post(&format!("/incidents/{ash_incident}/acknowledge"), &[("csrf", &token)]).await;
    assert_eq!(other_class.status(), 404, "not there for a teacher of another class");
    let acknowledged =
        teacher.post(&format!("/incidents/{oak_incident}/acknowledge"), &[("csrf", &token)]).await;
    assert_eq!(acknowledged.status(), 303);
    assert_eq!(acknowledged.headers()["location"], "/reports");
    assert!(!teacher.page("/reports").await.contains("Amira K."), "acknowledged: off the list");
    let action = teacher
        .post(
            &format!("/incidents/{oak_incident}/action"),
            &[("csrf", &token), ("action", "escalated")],
        )
        .await;
    assert_eq!(action.status(), 403, "teachers acknowledge; DSLs move the incident");

    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let all = dsl.page("/reports").await;
    assert!(all.contains("Amira K.") && all.contains("Ben T.") && all.contains("example.org"));
    let log = dsl.page("/audit").await;
    for expected in [
        "t.jones",
        "viewed own classes",
        "recorded Acknowledged",
        "i.tech",
        "signed in",
        &format!("incident {oak_incident}"),
    ] {
        assert!(log.contains(expected), "{expected}:\n{log}");
    }
    let csv = dsl.get("/audit.csv").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.text().await.unwrap().starts_with("\u{feff}When,Who,What,Record,Detail\n"));
    server.stop().await;
}

#[tokio::test]
async fn the_staff_key_is_off_by_default() {
    let server = TestServer::start().await;
    let link = server
        .client
        .get(format!("{}/staff/login?key={}", server.url, server.staff_key))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 401);
    assert!(link.headers().get("set-cookie").is_none());
    let cookie = server
        .client
        .get(format!("{}/reports", server.url))
        .header("cookie", format!("slate_staff={}", server.staff_key))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 401, "the key as a cookie is refused too");
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_the_accounts_other_sessions() {
    let server = TestServer::start().await;
    let mut here = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    let mut elsewhere = Browser::new(&server);
    assert_eq!(elsewhere.sign_in("t.jones", PASSWORD, "").await.status(), 303);
    let mut someone_else = Browser::signed_in(&server, "t.other", Role::Teacher).await;
    assert_eq!(elsewhere.get("/staff/account").await.status(), 200);

    let form = here.page("/staff/password").await;
    let new = "a brand new password";
    let changed = here
        .post(
            "/staff/password",
            &[("current", PASSWORD), ("new", new), ("confirm", new), ("csrf", &csrf_in(&form))],
        )
        .await;
    assert_eq!(changed.status(), 303);
    assert_eq!(here.get("/staff/account").await.status(), 200, "the changing session stays");
    assert_eq!(elsewhere.get("/staff/account").await.status(), 401, "the other one ends");
    assert_eq!(someone_else.get("/staff/account").await.status(), 200, "other accounts' stay");
    server.stop().await;
}

/// The "Staff accounts" page: the DSL disables a leaver (their open session ends at once) and
/// enables them again; IT may disable a teacher but not reset a teacher's sign-in (the link
/// would show IT the class's reports), and resets another IT account's, getting a one-time link
/// that opens the recovery form once; nobody changes their own account here.
#[tokio::test]
async fn staff_accounts_are_disabled_enabled_and_reset_by_whom_the_rule_allows() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "h.patel", Role::Dsl).await;
    let mut teacher = Browser::signed_in(&server, "t.owen", Role::Teacher).await;
    let mut it = Browser::signed_in(&server, "it.jones", Role::ItAdmin).await;
    add_staff(&server.store, "it.spare", Role::ItAdmin);
    assert_eq!(teacher.get("/staff-accounts").await.status(), 403);

    let page = dsl.page("/staff-accounts").await;
    assert!(page.contains(r#"id="account-t.owen""#), "{page}");
    let disable = change(&mut dsl, "disable", "t.owen").await;
    assert_eq!(disable.status(), 303);
    assert_eq!(teacher.get("/reports").await.status(), 401, "their session ended at once");
    assert!(dsl.page("/staff-accounts").await.contains("disabled "));
    let again = change(&mut dsl, "disable", "t.owen").await;
    assert_eq!(again.status(), 409);
    let enable = change(&mut dsl, "enable", "t.owen").await;
    assert_eq!(enable.status(), 303);
    let mut teacher = Browser::new(&server);
    assert_eq!(teacher.sign_in("t.owen", PASSWORD, "").await.status(), 303, "enabled again");

    let own = change(&mut dsl, "disable", "h.patel").await;
    assert_eq!(own.status(), 403);
    assert!(own.text().await.unwrap().contains("your own account"));

    let refused = change(&mut it, "reset", "t.owen").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("ask the DSL"));
    let on_dsl = change(&mut it, "disable", "h.patel").await;
    assert_eq!(on_dsl.status(), 403);
    assert_eq!(dsl.get("/reports").await.status(), 200, "the DSL is still signed in");

    let reset = change(&mut it, "reset", "it.spare").await;
    assert_eq!(reset.status(), 200);
    let shown = reset.text().await.unwrap();
    let start = shown.find("/staff/recover?token=").expect("the link, shown once");
    let path: String =
        shown[start..].chars().take_while(|c| !matches!(c, '<' | '"' | ' ')).collect();
    assert_eq!(Browser::new(&server).get(&path).await.status(), 200, "the link opens the form");
    assert!(!it.page("/staff-accounts").await.contains("/staff/recover?token="), "shown once");

    let actions: Vec<String> = server
        .store
        .audit_log(50)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {}", e.actor, e.action, e.record.unwrap_or_default()))
        .collect();
    for expected in [
        "h.patel disabled staff account t.owen",
        "h.patel enabled staff account t.owen",
        "it.jones made a recovery link it.spare",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
    server.stop().await;
}

/// Asks for `what` (disable, enable, reset) on `username`'s account on the Staff accounts page.
async fn change(browser: &mut Browser<'_>, what: &str, username: &str) -> reqwest::Response {
    let csrf = csrf_in(&browser.page("/staff/account").await);
    browser
        .post(&format!("/staff-accounts/{what}"), &[("csrf", &csrf), ("username", username)])
        .await
}

/// A long audit log comes out whole, newest first, in pages (the export streams it from the
/// store's read-only connection: more lines than one page, each once, one byte-order mark).
#[tokio::test]
async fn a_long_audit_log_exports_whole_in_pages() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "h.patel", Role::Dsl).await;
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    for n in 0..12_345 {
        let at = start + chrono::Duration::seconds(n);
        server
            .store
            .audit(at, "t.owen", "viewed device", Some(&format!("device {n}")), None)
            .unwrap();
    }
    let response = dsl.get("/audit.csv").await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    assert_eq!(csv.matches('\u{feff}').count(), 1, "one byte-order mark, at the start");
    let records: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains("t.owen"))
        .map(|l| l.rsplit(',').nth(1).unwrap())
        .collect();
    assert_eq!(records.len(), 12_345, "every entry once");
    assert_eq!(records[0], "device 12344", "newest first");
    assert_eq!(records[12_344], "device 0");
    let distinct: std::collections::BTreeSet<&str> = records.iter().copied().collect();
    assert_eq!(distinct.len(), 12_345);
    server.stop().await;
}
