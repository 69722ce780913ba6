//! Recovery links that must not work: expired, unknown, for a disabled account. The whole
//! working path, with the real binary's console command and log, is in `binary.rs`.

use crate::common::*;
use chrono::{Duration, Utc};
use slate_server::auth::Role;
use slate_server::secrets::Secret;

#[tokio::test]
async fn expired_unknown_and_disabled_links_are_refused_alike() {
    let server = TestServer::start().await;
    add_staff(&server.store, "a.dsl", Role::Dsl);
    add_staff(&server.store, "r.left", Role::Dsl);
    let now = Utc::now();
    let link = |username: &str, made: chrono::DateTime<Utc>| {
        let token = Secret::generate();
        let expires = made + slate_server::auth::RECOVERY_LINK_LIFETIME;
        assert!(server.store.save_recovery_link(username, &token.hash(), made, expires).unwrap());
        token.expose().to_owned()
    };
    let live = link("a.dsl", now);
    let expired = link("a.dsl", now - Duration::minutes(11));
    let disabled = link("r.left", now);
    assert!(server.store.disable_staff("r.left", now).unwrap());
    let unknown = Secret::generate().expose().to_owned();

    let open = |token: String| {
        server.client.get(format!("{}/staff/recover?token={token}", server.url)).send()
    };
    assert_eq!(open(live).await.unwrap().status(), 200);
    for token in [expired, disabled, unknown, String::new()] {
        let page = open(token).await.unwrap();
        assert_eq!(page.status(), 401);
        assert!(page.text().await.unwrap().contains("That link is not valid"));
    }
    assert!(
        !server.store.save_recovery_link("r.left", &Secret::generate().hash(), now, now).unwrap(),
        "no link for a disabled account"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_weak_key_sent_back_is_refused_and_the_link_stays_unspent() {
    let server = TestServer::start().await;
    add_staff(&server.store, "a.dsl", Role::Dsl);
    let token = Secret::generate();
    let now = Utc::now();
    let expires = now + slate_server::auth::RECOVERY_LINK_LIFETIME;
    assert!(server.store.save_recovery_link("a.dsl", &token.hash(), now, expires).unwrap());
    let path = format!("/staff/recover?token={}", token.expose());
    let mut browser = Browser::new(&server);
    let page = browser.page(&path).await;
    let weak = "AAAAAAAAAAAAAAAA";
    let code = slate_server::auth::totp_code(weak, slate_server::auth::totp_step(Utc::now()));
    let form = [
        ("token", token.expose()),
        ("secret", weak),
        ("code", &code.unwrap()),
        ("new", "a brand new password"),
        ("confirm", "a brand new password"),
        ("csrf", &csrf_in(&page)),
    ];
    let refused = browser.post("/staff/recover", &form).await;
    assert_eq!(refused.status(), 400);
    assert!(browser.cookies.iter().all(|(name, _)| name != "slate_session"));
    assert_eq!(browser.get(&path).await.status(), 200, "the link is not spent");
    server.stop().await;
}
