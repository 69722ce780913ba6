//! HTTPS in-process: the self-signed certificate serves, and a client trusting only it connects.

use crate::common::*;

#[tokio::test]
async fn a_client_trusting_the_generated_certificate_gets_health_over_https() {
    let server = TestServer::start_tls().await;
    assert!(server.url.starts_with("https://127.0.0.1:"));
    let response = server.client.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");

    let login = server
        .client
        .get(format!("{}/staff/login?key={}", server.url, server.staff_key))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
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
