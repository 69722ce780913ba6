//! HTTPS in-process: the self-signed certificate serves, and a client trusting only it connects.

use crate::common::*;

#[tokio::test]
async fn a_client_trusting_the_generated_certificate_gets_health_over_https() {
    let server = TestServer::start_tls().await;
    assert!(server.url.starts_with("https://127.0.0.1:"));
    let response = server.client.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Over HTTPS, browsers are told to keep to HTTPS (HSTS); plain HTTP (loopback only) never
    // says so (see the plain test below).
    assert_eq!(
        response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()),
        Some("max-age=31536000")
    );
    assert_eq!(response.text().await.unwrap(), "ok");

    let secret = add_staff(&server.store, "a.dsl", slate_server::auth::Role::Dsl).unwrap();
    let login = Browser::new(&server).sign_in("a.dsl", PASSWORD, &code(&secret)).await;
    assert_eq!(login.status(), 303);
    let cookies: Vec<_> =
        login.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).collect();
    // Over HTTPS the session cookie is `__Host-`: browsers take it only as Secure, for `/` and
    // this host, so no other host on the school's domain can plant one.
    let session =
        cookies.iter().find(|c| c.starts_with("__Host-slate_session=")).expect("a session");
    assert!(session.ends_with("; Path=/; Secure"), "{session}");
    assert!(!cookies.iter().any(|c| c.starts_with("slate_session=")), "{cookies:?}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_on_loopback_sends_no_hsts() {
    let server = TestServer::start().await;
    assert!(server.url.starts_with("http://127.0.0.1:"));
    let response = server.client.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("strict-transport-security").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let server = TestServer::start_tls().await;
    let stranger = reqwest::Client::builder().no_proxy().timeout(PATIENCE).build().unwrap();
    let result = stranger.get(format!("{}/healthz", server.url)).send().await;
    assert!(result.is_err(), "an untrusted self-signed certificate must not pass");
    server.stop().await;
}
