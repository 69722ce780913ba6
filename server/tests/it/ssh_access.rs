//! Timed root ssh through the real router on either store: an IT admin opens ssh on device 12
//! with a key for an hour; the `ssh_access` command, with its key and until, reaches only a
//! device whose poll says it understands it; the device's answer shows on the page as "ssh open
//! until … (by it.one)"; closing sends no keys; the DSL and a teacher are refused.

use crate::common::*;
use chrono::{Duration, Utc};
use slate_protocol::device::{CommandAction, CommandsReply};
use slate_protocol::ssh_access::SshOutcome;
use slate_protocol::{Event, EventBody};
use slate_server::auth::Role;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICpaPoQoQbDCozzRPfpU9Q2TmwmoLJtm5wgTfNiuXw1I";

async fn commands(server: &TestServer, credential: &str, can: &str) -> CommandsReply {
    let path = format!("/api/v1/device/commands?after=0&wait_s=1{can}");
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    CommandsReply::from_json(&response.bytes().await.unwrap()).unwrap()
}

async fn answer(server: &TestServer, credential: &str, command: u64, outcome: SshOutcome) {
    let event = Event::new(device(12), Utc::now(), EventBody::SshAccess { command, outcome });
    let posted = server.post_events(Some(credential), batch(vec![event])).await;
    assert_eq!(posted.status(), 200);
}

#[tokio::test]
async fn it_opens_ssh_on_one_device_and_closes_it_early() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let page = "/fleet/devices/12/ssh";
    for (name, role) in [("a.dsl", Role::Dsl), ("a.teacher", Role::Teacher)] {
        let mut other = Browser::signed_in(&server, name, role).await;
        assert_eq!(other.get(page).await.status(), 403, "{name}");
    }
    let mut it = Browser::signed_in(&server, "it.one", Role::ItAdmin).await;
    assert!(it.page("/fleet").await.contains(r#"href="/fleet/devices/12/ssh""#));
    let opened =
        submit(&mut it, page, page, &[("keys", &format!("{KEY} it@laptop")), ("minutes", "60")])
            .await;
    assert_eq!(opened.status(), 303, "{}", opened.text().await.unwrap());

    let older = commands(&server, &credential, "&can=test_button,check_filter").await;
    assert!(older.commands.is_empty(), "never to a device that did not say it understands");
    let reply = commands(&server, &credential, "&can=ssh_access").await;
    let command = reply.commands.iter().find(|c| c.action == CommandAction::SshAccess).unwrap();
    let access = command.ssh_access.clone().expect("keys and until");
    assert_eq!(access.keys, [KEY], "the comment is not sent");
    let ahead = access.until - Utc::now();
    assert!(ahead > Duration::minutes(59) && ahead <= Duration::minutes(60), "{ahead}");
    assert!(it.page(page).await.contains("has not answered yet"));

    answer(&server, &credential, command.id, SshOutcome::Opened { until: access.until, keys: 1 })
        .await;
    let shown = it.page(page).await;
    assert!(shown.contains("ssh open until") && shown.contains("(by it.one)"), "{shown}");
    // The DSL sees it on the device's page too; a teacher does not.
    let mut dsl = Browser::signed_in(&server, "b.dsl", Role::Dsl).await;
    let device_page = dsl.page("/devices/12").await;
    assert!(
        device_page.contains("ssh open until") && device_page.contains("(by it.one)"),
        "{device_page}"
    );
    let mut teacher = Browser::signed_in(&server, "b.teacher", Role::Teacher).await;
    assert!(!teacher.page("/devices/12").await.contains("Root ssh"));

    let closed = submit(&mut it, page, &format!("{page}/close"), &[]).await;
    assert_eq!(closed.status(), 303);
    let reply = commands(&server, &credential, "&can=ssh_access").await;
    let close = reply.commands.iter().rfind(|c| c.action == CommandAction::SshAccess).unwrap();
    assert!(close.ssh_access.as_ref().unwrap().keys.is_empty(), "a close carries no keys");
    answer(&server, &credential, close.id, SshOutcome::Closed).await;
    assert!(it.page(page).await.contains("ssh closed (by it.one)"));
}
