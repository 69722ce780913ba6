//! Alerts on a new report: email to a local SMTP sink and a webhook to a local receiver, both on
//! 127.0.0.1, configured as a school would in the config file.

use crate::common::*;
use slate_server::config::parse_config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Just enough SMTP to accept one message per connection; sends each message's text.
pub(crate) async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, smtp_sink_on(listener))
}

/// The SMTP sink on `listener`.
fn smtp_sink_on(listener: TcpListener) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut message = String::new();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            let _ = tx.send(std::mem::take(&mut message));
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    rx
}

/// A webhook receiver: sends each POSTed JSON body.
async fn webhook_sink() -> (u16, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, rx)
}

#[tokio::test]
async fn a_new_report_is_emailed_and_posted_once() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let (hook_port, mut hooks) = webhook_sink().await;
    let config = parse_config(&format!(
        r#"
        public_url = "https://slate.school.example"
        [email]
        smtp_host = "127.0.0.1"
        smtp_port = {smtp_port}
        security = "none"
        from = "Slate <slate@school.example>"
        to = ["dsl@school.example"]
        [webhook]
        url = "http://127.0.0.1:{hook_port}/hook"
        "#
    ))
    .unwrap();
    let server = TestServer::start_config(config).await;
    let credential = server.enroll(12).await;
    let events = batch(vec![report(12, Some("p-7f3a9c"), "a title that must not travel")]);
    assert_eq!(server.post_events(Some(&credential), events.clone()).await.status(), 200);
    let incident = server.store.incidents(1).unwrap()[0].id;

    let message =
        tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email in time").unwrap();
    assert!(
        message.contains(&format!("Subject: Slate: device 12 reported (incident {incident})")),
        "{message}"
    );
    assert!(message.contains("To: dsl@school.example"), "{message}");
    assert!(
        message.contains(&format!("https://slate.school.example/incidents/{incident}")),
        "{message}"
    );
    assert!(
        !message.contains("a title that must not travel") && !message.contains("p-7f3a9c"),
        "{message}"
    );

    let hook =
        tokio::time::timeout(PATIENCE, hooks.recv()).await.expect("a webhook in time").unwrap();
    assert_eq!(hook["incident"], incident);
    assert_eq!(hook["device"], 12);
    assert_eq!(hook["link"], format!("https://slate.school.example/incidents/{incident}"));

    // The same batch again stores nothing new, so it alerts nobody.
    assert_eq!(server.post_events(Some(&credential), events).await.status(), 200);
    let second = batch(vec![report(12, None, "another")]);
    assert_eq!(server.post_events(Some(&credential), second).await.status(), 200);
    let next = tokio::time::timeout(PATIENCE, hooks.recv()).await.unwrap().unwrap();
    assert_eq!(next["incident"], incident + 1, "the resend was not alerted; the next report was");
    server.stop().await;
}

#[tokio::test]
async fn the_pupils_class_teacher_gets_the_alert_too() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let config = smtp_config(smtp_port);
    let server = TestServer::start_config(config).await;
    let credential = server.enroll(12).await;
    let (amira, _) = two_classes(&server.store, chrono::Utc::now());
    add_staff(&server.store, "t.oak", slate_server::auth::Role::Teacher);
    add_staff(&server.store, "t.ash", slate_server::auth::Role::Teacher);
    assert!(server.store.link_teacher("t.oak", "Oak", Some("oak.teacher@school.example")).unwrap());
    assert!(server.store.link_teacher("t.ash", "Ash", Some("ash.teacher@school.example")).unwrap());
    assert!(!server.store.link_teacher("t.oak", "Elm", None).unwrap(), "no such class");

    let mut tell = report(12, Some(amira.as_str()), "blocked");
    if let slate_protocol::EventBody::ReportFiled { origin, .. } = &mut tell.body {
        *origin = slate_protocol::ReportOrigin::BlockPage;
    }
    assert_eq!(server.post_events(Some(&credential), batch(vec![tell])).await.status(), 200);
    let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email").unwrap();
    assert!(message.contains("oak.teacher@school.example"), "{message}");
    assert!(message.contains("dsl@school.example"), "{message}");
    assert!(!message.contains("ash.teacher"), "only the pupil's own class: {message}");
    assert!(message.contains("low priority"), "{message}");
    assert!(!message.contains("Amira"), "{message}");
    server.stop().await;
}

/// Alerts by email to the DSL through the test's SMTP sink on `port`.
pub(crate) fn smtp_config(port: u16) -> slate_server::config::Config {
    parse_config(&format!(
        r#"
        [email]
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        security = "none"
        from = "slate@school.example"
        to = ["dsl@school.example"]
        "#
    ))
    .unwrap()
}

/// Retries within moments, so the test does not wait out a school's backoff.
fn quick() -> slate_server::alert_outbox::OutboxTiming {
    slate_server::alert_outbox::OutboxTiming {
        poll: std::time::Duration::from_millis(100),
        first_retry: std::time::Duration::from_millis(100),
        max_retry: std::time::Duration::from_millis(300),
    }
}

#[tokio::test]
async fn an_alert_waits_while_smtp_is_down_survives_a_restart_and_arrives_once() {
    // A port with nothing listening: the mail server is down.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut server = TestServer::start().await;
    server.restart(smtp_config(port), quick()).await;
    let credential = server.enroll(12).await;
    let events = batch(vec![report(12, None, "title")]);
    assert_eq!(server.post_events(Some(&credential), events).await.status(), 200);
    let incident = server.store.incidents(1).unwrap()[0].id;

    // Tried, failed, kept.
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let failed = tokio::time::timeout(PATIENCE, async {
        loop {
            let queued = server.store.due_alerts(far, 10).unwrap();
            if queued.iter().any(|a| a.incident == Some(incident) && a.attempts >= 2) {
                return queued;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("retried while the mail server is down");
    assert!(!failed[0].email_done);
    assert!(failed[0].webhook_done, "no webhook configured: nothing to send there");

    // The server restarts while the mail server is still down; then the mail server comes up.
    server.restart(smtp_config(port), quick()).await;
    let mut mail = smtp_sink_on(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("the email").unwrap();
    assert!(
        message.contains(&format!("Subject: Slate: device 12 reported (incident {incident})")),
        "{message}"
    );
    // Once: nothing more arrives, however often the worker looks.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(mail.try_recv().is_err(), "a second email");
    assert!(server.store.due_alerts(far, 10).unwrap().is_empty(), "nothing left to send");
    server.stop().await;
}
