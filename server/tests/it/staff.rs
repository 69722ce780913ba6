//! Staff access and pages: the cookie guard, what the pages show, and escaping.

use crate::common::*;
use slate_protocol::{SessionEndReason, SessionId};
use slate_server::roster::PupilEntry;

#[tokio::test]
async fn staff_routes_need_the_cookie() {
    let server = TestServer::start().await;
    for path in ["/reports", "/devices/12", "/api/v1/staff/reports"] {
        let bare = server.client.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(bare.status(), 401, "{path} without a cookie");
        let wrong = server
            .client
            .get(format!("{}{path}", server.url))
            .header("cookie", "slate_staff=guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong cookie");
    }
    let page = server
        .client
        .get(format!("{}/reports", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/staff/login") && page.contains("slate-server staff recover"),
        "says how to get in:\n{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_staff_key_link_where_turned_on_sets_a_locked_down_cookie() {
    let config = slate_server::config::Config { staff_key_login: true, ..Default::default() };
    let server = TestServer::start_config(config).await;
    let refused =
        server.client.get(format!("{}/staff/login?key=guess", server.url)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    let no_key = server.client.get(format!("{}/staff/login", server.url)).send().await.unwrap();
    assert_eq!(no_key.status(), 200, "no key: the sign-in form");
    assert!(no_key.text().await.unwrap().contains("Staff sign-in"));

    let login = server
        .client
        .get(format!("{}/staff/login?key={}", server.url, server.staff_key))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/reports");
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert_eq!(
        cookie,
        format!("slate_staff={}; HttpOnly; SameSite=Strict; Path=/", server.staff_key)
    );

    let root = server.client.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/reports");
    server.stop().await;
}

#[tokio::test]
async fn pages_show_device_and_pupil_and_escape_what_devices_send() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    server.store.save_pupil(&PupilEntry::new("p-7f3a9c", "Amira K.", "Year 2").unwrap()).unwrap();
    let session = SessionId::new();
    let ended = slate_protocol::Event::new(
        device(12),
        at("2026-11-17T11:00:00Z"),
        slate_protocol::EventBody::SessionEnded {
            session,
            pupil: slate_protocol::PupilId::new("p-7f3a9c").unwrap(),
            started_at: at("2026-11-17T09:00:00Z"),
            reason: SessionEndReason::EndOfLesson,
        },
    );
    let events = vec![
        ended,
        session_started(12, session, "p-7f3a9c", "2026-11-17T09:00:00Z"),
        report(12, Some("p-7f3a9c"), "<script>alert('x')</script>"),
    ];
    assert_eq!(server.post_events(Some(&credential), batch(events)).await.status(), 200);

    let page = server.staff_page("/reports").await;
    assert!(page.contains(r#"href="/devices/12""#), "{page}");
    assert!(page.contains("Amira K.") && page.contains("p-7f3a9c"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("https://example.org/upsetting"), "{page}");
    assert!(!page.contains(r#"href="https://example.org"#), "URLs are not links:\n{page}");

    let device_page = server.staff_page("/devices/12").await;
    assert!(device_page.contains("Device 12"), "{device_page}");
    assert!(device_page.contains("Amira K.") && device_page.contains("p-7f3a9c"), "{device_page}");
    assert!(device_page.contains("end of lesson"), "{device_page}");
    assert!(device_page.contains("&lt;script&gt;"), "the device's reports too:\n{device_page}");

    for path in ["/devices/0", "/devices/abc", "/devices/99999", "/devices/77", "/no-such-page"] {
        assert_eq!(server.staff_get(path).await.status(), 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn html_answers_carry_security_headers() {
    let server = TestServer::start().await;
    let response = server.staff_get("/reports").await;
    let headers = response.headers();
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(response.text().await.unwrap().contains("No reports yet"));
    server.stop().await;
}

#[tokio::test]
async fn the_reports_api_is_newest_first_and_limited() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut older = report(12, Some("p-1"), "older");
    older.at = at("2026-11-17T09:00:00Z");
    let newer = report(12, None, "newer");
    let body = batch(vec![older.clone(), newer.clone()]);
    assert_eq!(server.post_events(Some(&credential), body).await.status(), 200);

    let reports = server.reports().await;
    assert_eq!(reports.len(), 2);
    let first = &reports[0];
    assert_eq!(first["id"], newer.id.to_string());
    assert_eq!(first["device"], 12);
    assert_eq!(first["pupil"], serde_json::Value::Null);
    assert_eq!(first["app"], "browser");
    assert_eq!(first["url"], "https://example.org/upsetting");
    assert_eq!(first["page_title"], "newer");
    assert_eq!(first["blank_latency_us"], 41_250);
    assert_eq!(first["pressed_at"], "2026-11-17T10:14:03.120Z");
    assert!(first["received_at"].is_string() && first.get("session").is_some());
    assert_eq!(reports[1]["pupil"], "p-1");

    let limited: Vec<serde_json::Value> =
        server.staff_get("/api/v1/staff/reports?limit=1").await.json().await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(server.staff_get("/api/v1/staff/reports?limit=lots").await.status(), 400);
    server.stop().await;
}
