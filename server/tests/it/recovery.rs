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
