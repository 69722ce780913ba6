//! Site block requests (issue 17), through the real router on either store: a device's unlock
//! with "block the site" becomes one pending entry per site on `/block-requests`; accepting puts
//! the site in the list devices fetch (checked in the signed policy and the served file), both
//! decisions are audited, IT sees no incident, a teacher is refused.

use crate::alerts::{smtp_config, smtp_sink};
use crate::common::*;
use chrono::{Duration, Utc};
use slate_protocol::bundle::verifying_key_from_base64;
use slate_protocol::device::{ListFile, PolicyReply};
use slate_protocol::{Event, EventBody, EventId, ReportOrigin, ResolutionChoice, StaffId};
use slate_server::auth::Role;

const ROSTER: &str = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n";

/// A report from device 12 about `url` and its unlock by `staff` with `choice`, in one batch.
fn report_and_unlock(url: &str, staff: Option<&str>, choice: ResolutionChoice) -> Vec<Event> {
    let now = Utc::now();
    let report = Event::new(
        device(12),
        now - Duration::minutes(2),
        EventBody::ReportFiled {
            session: None,
            pupil: None,
            app: Some("browser".into()),
            url: Some(url.into()),
            page_title: Some("a page".into()),
            blank_latency_us: Some(40_000),
            recent_names: vec![],
            origin: ReportOrigin::Button,
        },
    );
    let report_id: EventId = report.id;
    let unlock = Event::new(
        device(12),
        now - Duration::minutes(1),
        EventBody::ReportResolved {
            report: report_id,
            choice,
            staff: staff.map(|s| StaffId::new(s).unwrap()),
        },
    );
    vec![report, unlock]
}

/// The list `name` a device is told of in its signed filter policy, fetched and checked against
/// that manifest as a device does; its text.
async fn device_list(server: &TestServer, credential: &str, name: &str) -> String {
    let response = server.device_get(Some(credential), "/api/v1/device/policy").await;
    assert_eq!(response.status(), 200);
    let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let filter =
        slate_filter::policy::Policy::open(&serde_json::to_vec(&reply.filter).unwrap(), &key)
            .unwrap();
    assert!(filter.profile(None).block_lists.contains(&name.to_owned()));
    let served = server.device_get(Some(credential), &format!("/api/v1/device/lists/{name}")).await;
    assert_eq!(served.status(), 200);
    let bytes = served.bytes().await.unwrap().to_vec();
    assert_eq!(filter.lists[name], ListFile::of(&bytes), "the file matches the signed manifest");
    String::from_utf8(bytes).unwrap()
}

fn audited(server: &TestServer, actor: &str, action: &str) -> Vec<String> {
    let log = server.store.audit_log(1000).unwrap();
    log.iter()
        .filter(|e| e.actor == actor && e.action == action)
        .map(|e| e.record.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_unlock_asking_to_block_a_site_reaches_a_school_list_once_the_dsl_accepts_it() {
    let (smtp_port, mut mail) = smtp_sink().await;
    let mut server = TestServer::start().await;
    server
        .restart(smtp_config(smtp_port), slate_server::alert_outbox::OutboxTiming::default())
        .await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    // IT's address, for the new requests' alerts.
    // (Oak is not imported yet: only the address is set.)
    server.store.link_teacher("it.admin", "Oak", Some("it@school.example")).unwrap();
    for (action, fields, status) in [
        ("/setup/roster", vec![("csv", ROSTER)], 200),
        ("/setup/list", vec![("name", "school-blocks"), ("contents", "already.example\n")], 303),
        ("/setup/list", vec![("name", "iwf"), ("contents", "illegal.example\n")], 303),
        (
            "/setup/profile",
            vec![
                ("name", "default"),
                ("block_lists", "school-blocks, iwf"),
                ("allow_only", ""),
                ("safe_search", "strict"),
            ],
            303,
        ),
    ] {
        let response = submit(&mut it, "/setup", action, &fields).await;
        assert_eq!(response.status(), status, "{action}: {}", response.text().await.unwrap());
    }
    assert_eq!(device_list(&server, &credential, "school-blocks").await, "already.example\n");

    // A teacher with an unlock PIN: the device names them by their pseudonymous id.
    add_staff(&server.store, "t.smith", Role::Teacher);
    let teacher_id = server.store.staff_by_username("t.smith").unwrap().unwrap().id;
    let pin = slate_server::auth::hash_password("482916", slate_server::auth::HashCost::Cheap);
    let unlock_id = server
        .store
        .set_unlock_pin(teacher_id, &pin, &StaffId::new("s-7f3a").unwrap(), Utc::now())
        .unwrap()
        .unwrap();

    // Two unlocks for the same site (incidents 1 and 2), one for a site a list already blocks
    // (3), one for an address no list can hold (4), and one that only closed the app (5).
    let mut events = report_and_unlock(
        "https://Example.ORG/upsetting",
        Some(unlock_id.as_str()),
        ResolutionChoice::BlockSite,
    );
    events.extend(report_and_unlock(
        "https://example.org./another?page=2",
        Some("it"),
        ResolutionChoice::BlockSite,
    ));
    events.extend(report_and_unlock(
        "https://already.example/x",
        None,
        ResolutionChoice::BlockSite,
    ));
    events.extend(report_and_unlock(
        "http://192.168.1.20/admin",
        None,
        ResolutionChoice::BlockSite,
    ));
    events.extend(report_and_unlock("https://fine.example/", None, ResolutionChoice::CloseApp));
    let sent = server.post_events(Some(&credential), batch(events.clone())).await;
    assert_eq!(sent.status(), 200);
    // A device resending the batch asks nothing twice.
    let again = server.post_events(Some(&credential), batch(events)).await;
    assert_eq!(again.status(), 200);

    // Each new request alerted the DSL and IT once: the site and how many asked, nothing of
    // the incident or the device.
    // The five reports' own alerts come too.
    let mut alerts = Vec::new();
    for _ in 0..7 {
        let message = tokio::time::timeout(PATIENCE, mail.recv()).await.expect("an email").unwrap();
        let subject = message.lines().find(|l| l.starts_with("Subject: ")).unwrap().to_owned();
        if !subject.contains("site block requested") {
            continue;
        }
        assert!(message.contains("dsl@school.example") && message.contains("it@school.example"));
        assert!(!message.contains("incidents/") && !message.contains("device 12"), "{message}");
        alerts.push(subject);
    }
    alerts.sort();
    assert_eq!(
        alerts,
        [
            "Subject: Slate: site block requested: already.example",
            "Subject: Slate: site block requested: example.org"
        ]
    );

    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let page = dsl.page("/block-requests").await;
    // The navigation counts the waiting requests for those who decide them.
    assert!(page.contains(r#"aria-label="2 waiting""#), "{page}");
    assert!(it.page("/block-requests").await.contains(r#"aria-label="2 waiting""#));
    let row = |page: &str, id: u32| {
        let start = page.find(&format!("id=\"block-request-{id}\"")).expect("the request's row");
        let end = page[start..].find("</tr>").unwrap() + start;
        page[start..end].to_owned()
    };
    let example = row(&page, 1);
    assert!(example.contains("<td>example.org</td>"), "{example}");
    assert!(example.contains("2 asks"), "duplicates are one entry: {example}");
    assert!(example.contains("<td>no</td>"), "not blocked yet: {example}");
    assert!(
        example.contains(r#"href="/incidents/1""#) && example.contains(r#"href="/incidents/2""#)
    );
    assert!(example.contains("from device 12's unlock (t.smith, as the device says)"), "{example}");
    assert!(example.contains("(IT's own device PIN, as the device says)"), "{example}");
    let already = row(&page, 2);
    assert!(already.contains("<td>already.example</td>") && already.contains("1 ask"));
    assert!(already.contains("yes, in school-blocks: already.example"), "{already}");
    assert!(!page.contains("192.168") && !page.contains("fine.example"), "{page}");
    assert!(!page.contains("block-request-3"), "no entry for an address no list can hold");
    assert!(page.contains(r#"<option value="school-blocks">"#), "{page}");
    assert!(!page.contains(r#"<option value="iwf">"#), "never into an illegal-content list");
    assert!(dsl
        .page("/incidents/4")
        .await
        .contains("no block request: the report's address is an IP address"));

    // IT sees the sites and counts, never the incidents, devices or who unlocked.
    let it_page = it.page("/block-requests").await;
    assert!(it_page.contains("<td>example.org</td>") && it_page.contains("2 asks"));
    for hidden in ["/incidents/", "device 12", "t.smith", "as the device says"] {
        assert!(!it_page.contains(hidden), "IT sees no {hidden:?}: {it_page}");
    }

    // A teacher is refused the page and the decisions.
    let mut teacher = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    assert_eq!(teacher.get("/block-requests").await.status(), 403);
    let token = csrf_in(&teacher.page("/staff/account").await);
    let refused = teacher
        .post(
            "/block-requests/1/accept",
            &[("site", "example.org"), ("list", "school-blocks"), ("csrf", &token)],
        )
        .await;
    assert_eq!(refused.status(), 403);

    // Not into the IWF's list, not another site.
    let page = "/block-requests";
    let into_iwf = submit(
        &mut dsl,
        page,
        "/block-requests/1/accept",
        &[("site", "example.org"), ("list", "iwf")],
    )
    .await;
    assert_eq!(into_iwf.status(), 400);
    let other = submit(
        &mut dsl,
        page,
        "/block-requests/1/accept",
        &[("site", "other.example"), ("list", "school-blocks")],
    )
    .await;
    assert_eq!(other.status(), 400);
    assert!(other.text().await.unwrap().contains("Site: example.org or a domain it is under"));

    // Accepted: in the list devices fetch, signed, and audited.
    let accepted = submit(
        &mut dsl,
        page,
        "/block-requests/1/accept",
        &[("site", "example.org"), ("list", "school-blocks")],
    )
    .await;
    assert_eq!(accepted.status(), 303, "{}", accepted.text().await.unwrap());
    assert_eq!(
        device_list(&server, &credential, "school-blocks").await,
        "already.example\n*.example.org\n"
    );
    assert_eq!(
        audited(&server, "dsl.jones", "accepted site block request"),
        ["block request 1: *.example.org added to list school-blocks"]
    );
    let twice = submit(
        &mut dsl,
        page,
        "/block-requests/1/accept",
        &[("site", "example.org"), ("list", "school-blocks")],
    )
    .await;
    assert_eq!(twice.status(), 409, "decided once");

    // Declined by IT, with a reason (none: refused).
    let no_reason = submit(&mut it, page, "/block-requests/2/decline", &[("reason", " ")]).await;
    assert_eq!(no_reason.status(), 400);
    let declined = submit(
        &mut it,
        page,
        "/block-requests/2/decline",
        &[("reason", "already in the school list")],
    )
    .await;
    assert_eq!(declined.status(), 303);
    assert_eq!(
        audited(&server, "it.admin", "declined site block request"),
        ["block request 2: already.example"]
    );
    assert_eq!(
        device_list(&server, &credential, "school-blocks").await,
        "already.example\n*.example.org\n",
        "a decline changes no list"
    );
    let page_now = dsl.page(page).await;
    assert!(page_now.contains("Nothing waiting."), "{page_now}");
    assert!(page_now.contains("accepted into school-blocks"));
    assert!(page_now.contains("declined: already in the school list"));

    // Asked again after it was blocked: a new entry, which says it is blocked already.
    let again = report_and_unlock("https://www.example.org/", None, ResolutionChoice::BlockSite);
    assert_eq!(server.post_events(Some(&credential), batch(again)).await.status(), 200);
    let page_after = dsl.page(page).await;
    let www = row(&page_after, 3);
    assert!(www.contains("<td>www.example.org</td>"), "{www}");
    assert!(www.contains("yes, in school-blocks: *.example.org"), "{www}");
    assert!(!audited(&server, "dsl.jones", "viewed site block requests").is_empty());

    // Retention: decided requests and their asks go with the bypasses' period, counted from the
    // decision; the one still waiting stays whatever its age.
    let schedule = slate_server::retention::Schedule::default();
    let later = Utc::now() + Duration::days(400);
    let purged = server.store.purge(&schedule.cutoffs(later), 10_000).unwrap();
    assert_eq!(purged.count(slate_server::retention::RecordType::Bypasses), 2 + 3, "{purged}");
    assert!(server.store.block_request(1).unwrap().is_none());
    assert!(server.store.block_request(2).unwrap().is_none());
    let waiting = server.store.pending_block_requests().unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!((waiting[0].site.as_str(), waiting[0].asks.len()), ("www.example.org", 1));
    server.stop().await;
}
