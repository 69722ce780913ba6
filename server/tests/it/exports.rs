//! Exports streamed page by page from the store's read-only connection: longer than a page,
//! each row comes once, in order (on SQLite, and on PostgreSQL with `SLATE_TEST_DATABASE`), and
//! on PostgreSQL a read held up mid-export does not hold up a device's batch.

use crate::common::*;
use slate_protocol::{Event, EventBody, FilterLayer, IngestReply};
use slate_server::http::paged_export::EXPORT_PAGE_ROWS;
use slate_server::store::BlockFilter;
use std::time::Duration;

/// Rows in each export: more than two pages, the last one part-full.
const ROWS: usize = 2 * EXPORT_PAGE_ROWS as usize + 7;

fn blocked(n: usize) -> Event {
    Event::new(
        device(12),
        // Many share a second: the pages' order must break ties the same way as one query.
        at(&format!("2026-11-17T10:{:02}:{:02}Z", (n / 600) % 60, (n / 10) % 60)),
        EventBody::FilterBlocked {
            session: None,
            pupil: None,
            layer: FilterLayer::Dns,
            target: format!("site-{n}.example"),
            rule: format!("exact:site-{n}.example"),
            list: "gambling".into(),
        },
    )
}

#[tokio::test]
async fn exports_longer_than_a_page_give_every_row_once_in_order() {
    let server = TestServer::start().await;
    server.enroll(12).await;
    // All reports pressed at one instant: only the report id orders them.
    let reports: Vec<Event> = (0..ROWS).map(|n| report(12, None, &format!("report {n}"))).collect();
    let blocks: Vec<Event> = (0..ROWS).map(blocked).collect();
    for chunk in reports.chunks(slate_protocol::MAX_EVENTS_PER_BATCH) {
        server.store.ingest(device(12), chunk, at("2026-11-17T11:00:00Z")).unwrap();
    }
    for chunk in blocks.chunks(slate_protocol::MAX_EVENTS_PER_BATCH) {
        server.store.ingest(device(12), chunk, at("2026-11-17T11:00:00Z")).unwrap();
    }

    // The oracle: the same rows read in one query, written as one file.
    let incidents = server.store.incidents(u32::MAX).unwrap();
    assert_eq!(incidents.len(), ROWS);
    let whole_log = slate_server::export::log_csv(&incidents);
    let logged = server.store.filtering_log(&BlockFilter::default(), u32::MAX, 0).unwrap();
    assert_eq!(logged.len(), ROWS);
    let whole_filtering_log = slate_server::export::filtering_log_csv(&logged);

    let streamed = server.staff_get("/reports.csv").await;
    assert_eq!(streamed.status(), 200);
    let streamed = streamed.bytes().await.unwrap();
    assert!(streamed == whole_log, "the incident log's pages are the whole log, in order");
    let ids: std::collections::HashSet<&str> = std::str::from_utf8(&streamed)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), ROWS, "every incident once");

    let streamed = server.staff_get("/filtering-log.csv?list=gambling").await;
    assert_eq!(streamed.status(), 200);
    let streamed = streamed.bytes().await.unwrap();
    assert!(streamed == whole_filtering_log, "the filtering log's pages are the whole log");
    let text = String::from_utf8(streamed.to_vec()).unwrap();
    for n in [0, EXPORT_PAGE_ROWS as usize, ROWS - 1] {
        assert_eq!(text.matches(&format!(",site-{n}.example,")).count(), 1, "site-{n}");
    }
    server.stop().await;
}

#[tokio::test]
async fn on_postgres_a_read_held_up_mid_export_does_not_hold_up_a_device_batch() {
    let server = TestServer::start_postgres().await;
    let credential = server.enroll(12).await;
    server
        .store
        .ingest(device(12), &[report(12, None, "before")], at("2026-11-17T11:00:00Z"))
        .unwrap();
    let incident = server.store.incidents(1).unwrap().remove(0).id;

    // Another session locks the incidents table, so the export's read waits inside PostgreSQL
    // on the server's read connection until this session lets go.
    let url = server.postgres_url().unwrap().to_owned();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        tx.batch_execute("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE").unwrap();
        locked.send(()).unwrap();
        released.recv().unwrap();
        tx.commit().unwrap();
    });
    is_locked.recv_timeout(PATIENCE).unwrap();

    let export = server.staff_get("/reports.csv").await;
    assert_eq!(export.status(), 200);
    let body = tokio::spawn(export.bytes());
    // Until the export's page query is waiting for the lock.
    let url = server.postgres_url().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut watcher = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let waited = std::time::Instant::now();
        loop {
            let waiting: i64 = watcher
                .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
                .unwrap()
                .get(0);
            if waiting > 0 {
                return;
            }
            assert!(waited.elapsed() < PATIENCE, "the export never reached the locked table");
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .await
    .unwrap();

    // Meanwhile device 12's batch is written and answered (on one shared connection it would
    // wait behind the export's read until the lock went).
    let hello = |n: u32| {
        let body = EventBody::Hello { software_version: format!("0.1.{n}") };
        Event::new(device(12), at("2026-11-17T11:01:00Z"), body)
    };
    let events = vec![hello(1), hello(2)];
    let answer = server.post_events(Some(&credential), batch(events)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.json::<IngestReply>().await.unwrap(),
        IngestReply::new(2, 0).taking_newer_kinds()
    );
    assert!(!body.is_finished(), "the export is still waiting for its read");

    release.send(()).unwrap();
    holder.join().unwrap();
    let body = body.await.unwrap().unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with(&format!("{incident},")), "{text}");
    server.stop().await;
}
