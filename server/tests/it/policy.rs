//! What devices are told, through the real router: the setup pages build it, the device API
//! signs and serves it, devices' own decoders open it; teacher commands reach a waiting device;
//! bypasses need a DSL.

use crate::common::*;
use chrono::{Duration, Utc};
use chrono_tz::Europe::London;
use sha2::{Digest, Sha256};
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
use slate_protocol::device::{CommandAction, CommandsReply, ListFile, PolicyReply};
use slate_protocol::staff::{parse_staff_pins, StaffPins};
use slate_protocol::{kiosk, ErrorReply, SessionId};
use slate_server::auth::{self, Role};

const ROSTER: &str = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nOak,Ben,Taylor,ks1\nAsh,Chloe,Wright,ks2\n";

async fn error_of(response: reqwest::Response) -> String {
    response.json::<ErrorReply>().await.expect("an ErrorReply body").error
}

async fn policy(
    server: &TestServer,
    credential: &str,
) -> (kiosk::Policy, slate_filter::policy::Policy) {
    let path = slate_protocol::device::policy_path();
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let kiosk_text = SignedBundle::open_as(
        BundleKind::KioskPolicy,
        &serde_json::to_vec(&reply.kiosk).unwrap(),
        &key,
    )
    .unwrap();
    assert!(!kiosk_text.contains("Khan"), "no family names on devices: {kiosk_text}");
    let kiosk = kiosk::parse_policy(&kiosk_text).unwrap();
    let filter =
        slate_filter::policy::Policy::open(&serde_json::to_vec(&reply.filter).unwrap(), &key)
            .unwrap();
    (kiosk, filter)
}

/// The staff document a device gets, opened and checked as a device would, and the kiosk
/// document's text.
async fn staff_document(server: &TestServer, credential: &str) -> (StaffPins, String) {
    let path = slate_protocol::device::policy_path();
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let open = |kind, bundle: &SignedBundle| {
        SignedBundle::open_as(kind, &serde_json::to_vec(bundle).unwrap(), &key).unwrap()
    };
    let staff = open(BundleKind::StaffPins, &reply.staff);
    let kiosk = open(BundleKind::KioskPolicy, &reply.kiosk);
    (parse_staff_pins(&staff).unwrap(), kiosk)
}

async fn audited(server: &TestServer, actor: &str, action: &str) -> bool {
    let store = server.store.clone();
    let log = store.audit_log(1000).unwrap();
    log.iter().any(|e| e.actor == actor && e.action == action)
}

/// The files in the server's list directory, sorted.
fn stored_lists(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(server.lists_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// What a device checks: the list `adult` it is served matches the signed manifest; its bytes.
async fn served_adult_list(server: &TestServer, credential: &str) -> Vec<u8> {
    let (_, filter) = policy(server, credential).await;
    let list = server.device_get(Some(credential), "/api/v1/device/lists/adult").await;
    assert_eq!(list.status(), 200);
    let bytes = list.bytes().await.unwrap().to_vec();
    assert_eq!(filter.lists["adult"], ListFile::of(&bytes), "the file matches the manifest");
    bytes
}

#[tokio::test]
async fn a_list_upload_cut_off_before_its_row_leaves_the_old_list_in_force_and_is_collected() {
    let mut server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let upload = |contents: &'static str| vec![("name", "adult"), ("contents", contents)];
    let (v1, v2, v3) = ("one.example\n", "two.example\n", "three.example\n");
    {
        let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
        assert_eq!(
            submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await.status(),
            200
        );
        assert_eq!(submit(&mut it, "/setup", "/setup/list", &upload(v1)).await.status(), 303);
        assert_eq!(served_adult_list(&server, &credential).await, v1.as_bytes());
        let v1_file = ListFile::of(v1.as_bytes()).file_name();
        assert_eq!(
            stored_lists(&server),
            std::slice::from_ref(&v1_file),
            "stored under its content's name"
        );

        // An upload cut off after writing its file, before its row (a crash, a full disk for
        // the database): the file is there, named by its content, beside the one in force.
        let v2_file = ListFile::of(v2.as_bytes()).file_name();
        std::fs::write(server.lists_dir().join(&v2_file), v2).unwrap();
        assert_eq!(served_adult_list(&server, &credential).await, v1.as_bytes(), "v1 stays");

        // A write that really fails (its temporary file cannot be made): refused, v1 stays.
        let v3_temporary = format!("{}.partial", ListFile::of(v3.as_bytes()).sha256);
        std::fs::create_dir(server.lists_dir().join(&v3_temporary)).unwrap();
        let refused = submit(&mut it, "/setup", "/setup/list", &upload(v3)).await;
        assert_eq!(refused.status(), 500);
        assert_eq!(served_adult_list(&server, &credential).await, v1.as_bytes(), "v1 stays");
        std::fs::remove_dir(server.lists_dir().join(&v3_temporary)).unwrap();
        assert_eq!(stored_lists(&server), {
            let mut both = vec![v1_file.clone(), v2_file];
            both.sort();
            both
        });
    }

    // The next start collects what no row names, before it answers anyone.
    server.restart(Default::default(), Default::default()).await;
    assert_eq!(served_adult_list(&server, &credential).await, v1.as_bytes());
    assert_eq!(stored_lists(&server), [ListFile::of(v1.as_bytes()).file_name()]);

    // The next upload puts its list in force and removes the old file only after its row.
    let mut it = Browser::signed_in(&server, "it.second", Role::ItAdmin).await;
    assert_eq!(submit(&mut it, "/setup", "/setup/list", &upload(v2)).await.status(), 303);
    assert_eq!(served_adult_list(&server, &credential).await, v2.as_bytes());
    assert_eq!(stored_lists(&server), [ListFile::of(v2.as_bytes()).file_name()]);
    drop(it);
    server.stop().await;
}

#[tokio::test]
async fn a_device_gets_signed_policies_built_from_the_setup_pages() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;

    let early = server.device_get(Some(&credential), "/api/v1/device/policy").await;
    assert_eq!(early.status(), 503, "no classes yet: nothing a device would accept");
    assert!(error_of(early).await.contains("classes"));
    assert_eq!(server.device_get(None, "/api/v1/device/policy").await.status(), 401);

    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let setup = it.page("/setup").await;
    assert!(setup.contains(&server.public_key), "the policy key is on IT's page");
    type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let steps: [Step; 6] = [
        (
            "/setup/app",
            vec![
                ("id", "maths"),
                ("title", "Maths"),
                ("symbol", "numbers"),
                ("colour", "4"),
                ("kind", "web"),
                ("start_url", "https://www.topmarks.co.uk/maths"),
                ("sites", "https://www.topmarks.co.uk"),
                ("command", ""),
            ],
            303,
        ),
        ("/setup/roster", vec![("csv", ROSTER)], 200),
        ("/setup/class-apps", vec![("class", "Oak"), ("apps", "maths")], 303),
        ("/setup/sessions", vec![("idle_minutes", "15"), ("lesson_ends", "12:00, 10:30")], 303),
        ("/setup/list", vec![("name", "adult"), ("contents", "bad.example\r\nworse.example")], 303),
        (
            "/setup/profile",
            vec![
                ("name", "oak"),
                ("block_lists", "adult"),
                ("allow_only", ""),
                ("safe_search", "strict"),
            ],
            303,
        ),
    ];
    for (action, fields, status) in steps {
        let response = submit(&mut it, "/setup", action, &fields).await;
        assert_eq!(response.status(), status, "{action}: {}", response.text().await.unwrap());
    }

    let (kiosk, filter) = policy(&server, &credential).await;
    let oak = kiosk.classes.iter().find(|c| c.name == "Oak").unwrap();
    let names: Vec<String> = oak.pupils.iter().map(|p| p.display_name()).collect();
    assert_eq!(names, ["Amira K.", "Ben T."]);
    assert_eq!(oak.apps, ["maths"]);
    assert_eq!(kiosk.classes.len(), 2);
    assert_eq!(kiosk.sessions.idle_timeout_min, 15);
    assert_eq!(kiosk.sessions.lesson_ends.len(), 2);

    assert_eq!(filter.profile(Some("oak")).block_lists, ["adult"]);
    assert_eq!(filter.default_profile, "default");
    assert!(filter.url_salt.is_some());
    let manifest = &filter.lists["adult"];

    let list = server.device_get(Some(&credential), "/api/v1/device/lists/adult").await;
    assert_eq!(list.status(), 200);
    let bytes = list.bytes().await.unwrap();
    assert_eq!(&bytes[..], b"bad.example\nworse.example\n");
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!((manifest.sha256.as_str(), manifest.bytes), (sha.as_str(), bytes.len() as u64));
    for (credential, path, status) in [
        (Some(credential.as_str()), "/api/v1/device/lists/Adult", 400),
        (Some(credential.as_str()), "/api/v1/device/lists/gambling", 404),
        (None, "/api/v1/device/lists/adult", 401),
    ] {
        let response = server.device_get(credential, path).await;
        assert_eq!(response.status(), status, "{path}");
        error_of(response).await;
    }

    for action in ["imported roster", "uploaded filter list", "viewed school setup"] {
        assert!(audited(&server, "it.admin", action).await, "{action} is audited");
    }
    let forged = it.post("/setup/sessions", &[("idle_minutes", "5"), ("csrf", "x")]).await;
    assert_eq!(forged.status(), 403, "CSRF");
    assert_eq!(it.post("/setup/pin", &[]).await.status(), 404, "no school-wide PIN any more");
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    assert_eq!(teacher.get("/setup").await.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_roster_imports_nothing_and_names_the_line_and_column() {
    let server = TestServer::start().await;
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let csv = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nOak,Ben Jo,Taylor,ks1\n";
    let response = submit(&mut dsl, "/setup", "/setup/roster", &[("csv", csv)]).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("Line 3, column first_name"), "{page}");
    assert!(server.store.classes().unwrap().is_empty(), "not half-imported");

    // Pasted in a browser's text box, the same file arrives with CRLF: the same line is named.
    let pasted = csv.replace('\n', "\r\n");
    let response = submit(&mut dsl, "/setup", "/setup/roster", &[("csv", &pasted)]).await;
    let page = response.text().await.unwrap();
    assert!(page.contains("Line 3, column first_name"), "{page}");
    server.stop().await;
}

async fn poll(server: &TestServer, credential: &str, after: u64, wait_s: u32) -> CommandsReply {
    let path = format!("/api/v1/device/commands?after={after}&wait_s={wait_s}");
    let response = server.device_get(Some(credential), &path).await;
    assert_eq!(response.status(), 200);
    CommandsReply::from_json(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn teacher_commands_reach_a_waiting_device() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let twelve = server.enroll(12).await;
    let thirteen = server.enroll(13).await;
    // Amira (class Oak) is signed in on device 12, Chloe (class Ash) on device 13.
    let rows = import_roster_csv(&server.store, ROSTER, Utc::now());
    let pupil = |name: &str| rows.iter().find(|(_, r)| r.first_name == name).unwrap().0.clone();
    for (n, credential, name) in [(12, &twelve, "Amira"), (13, &thirteen, "Chloe")] {
        let now = Utc::now().to_rfc3339();
        let started = session_started(n, SessionId::new(), pupil(name).as_str(), &now);
        assert_eq!(server.post_events(Some(credential), batch(vec![started])).await.status(), 200);
    }
    // The roster import told devices to fetch the policy; nothing else is queued yet.
    let start = poll(&server, &twelve, 0, 1).await;
    assert!(start.commands.iter().all(|c| c.action == CommandAction::RefreshPolicy));
    let thirteen_start = poll(&server, &thirteen, 0, 1).await.cursor;

    let waiting = {
        let (server, twelve) = (server.clone(), twelve.clone());
        tokio::spawn(async move { poll(&server, &twelve, start.cursor, 55).await })
    };
    // Gives the poll a moment to be waiting; either order must work.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    assert!(server.store.link_teacher("t.smith", "Oak", None).unwrap());
    let sent = submit(
        &mut teacher,
        "/commands",
        "/commands",
        &[("devices", "12"), ("command", "lock_screens")],
    )
    .await;
    assert_eq!(sent.status(), 303);
    let reply = tokio::time::timeout(PATIENCE, waiting).await.unwrap().unwrap();
    assert_eq!(reply.commands.len(), 1);
    let command = &reply.commands[0];
    assert_eq!(command.action, CommandAction::LockScreens);
    assert_eq!(command.expires_at - command.issued_at, Duration::minutes(30));
    assert!(poll(&server, &twelve, reply.cursor, 1).await.commands.is_empty(), "delivered once");
    let other = poll(&server, &thirteen, thirteen_start, 1).await;
    assert!(other.commands.is_empty(), "only device 12 was picked");

    let all = submit(
        &mut teacher,
        "/commands",
        "/commands",
        &[("devices", "all"), ("command", "sign_out_all")],
    )
    .await;
    assert_eq!(all.status(), 303);
    let got = poll(&server, &twelve, reply.cursor, 5).await;
    assert_eq!(
        got.commands.iter().map(|c| c.action).collect::<Vec<_>>(),
        [CommandAction::SignOutAll]
    );
    // A teacher's "all" is their classes' devices: not device 13, where Chloe of Ash is.
    let not_theirs = poll(&server, &thirteen, other.cursor, 1).await;
    assert!(not_theirs.commands.is_empty(), "{:?}", not_theirs.commands);
    let refused = submit(
        &mut teacher,
        "/commands",
        "/commands",
        &[("devices", "13"), ("command", "lock_screens")],
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("device 13"));
    let mut dsl = Browser::signed_in(&server, "a.dsl", Role::Dsl).await;
    let everyone = submit(
        &mut dsl,
        "/commands",
        "/commands",
        &[("devices", "all"), ("command", "sign_out_all")],
    )
    .await;
    assert_eq!(everyone.status(), 303);
    let got = poll(&server, &thirteen, other.cursor, 5).await;
    assert_eq!(
        got.commands.iter().map(|c| c.action).collect::<Vec<_>>(),
        [CommandAction::SignOutAll],
        "a DSL reaches every device"
    );
    assert!(audited(&server, "t.smith", "sent Eyes on me (lock_screens)").await);
    assert!(teacher.page("/commands").await.contains("<td>Eyes on me</td>"), "labelled for people");

    for query in ["wait_s=0", "wait_s=56", "after=x", "now=1"] {
        let response =
            server.device_get(Some(&twelve), &format!("/api/v1/device/commands?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        error_of(response).await;
    }
    assert_eq!(server.device_get(None, "/api/v1/device/commands").await.status(), 401);
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    assert_eq!(it.get("/commands").await.status(), 403);
    std::sync::Arc::into_inner(server).unwrap().stop().await;
}

/// `datetime-local` text for a UTC time, in UK time.
fn uk_local(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&London).format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test]
async fn a_bypass_is_in_the_filter_policy_only_once_a_dsl_approves_it() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    assert_eq!(submit(&mut dsl, "/setup", "/setup/roster", &[("csv", ROSTER)]).await.status(), 200);

    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let now = Utc::now();
    let (from, until) = (uk_local(now - Duration::hours(1)), uk_local(now + Duration::hours(1)));
    let asked = submit(
        &mut teacher,
        "/bypasses",
        "/bypasses",
        &[
            ("class", "Oak"),
            ("domain", "History.Example.ORG"),
            ("from", &from),
            ("until", &until),
            ("reason", "Year 1 castles lesson"),
        ],
    )
    .await;
    assert_eq!(asked.status(), 303, "{}", asked.text().await.unwrap());
    let (_, filter) = policy(&server, &credential).await;
    assert!(filter.profile(Some("oak")).bypasses.is_empty(), "pending is not in force");
    assert!(!teacher.page("/bypasses").await.contains("Approve"), "teachers do not decide");
    let refused =
        submit(&mut teacher, "/bypasses", "/bypasses/1/decide", &[("decision", "approve")]).await;
    assert_eq!(refused.status(), 403);

    // The two answers never look alike (drawn by the page's style: filled green, outlined red).
    let deciding = dsl.page("/bypasses").await;
    assert!(
        deciding
            .contains(r#"<button class="approve" type="submit" name="decision" value="approve">"#)
            && deciding.contains(
                r#"<button class="refuse" type="submit" name="decision" value="refuse">"#
            )
            && deciding.contains("button.refuse { background: #fff;"),
        "{deciding}"
    );
    let cursor = poll(&server, &credential, 0, 1).await.cursor;
    let approved =
        submit(&mut dsl, "/bypasses", "/bypasses/1/decide", &[("decision", "approve")]).await;
    assert_eq!(approved.status(), 303);
    let (_, filter) = policy(&server, &credential).await;
    let bypass = &filter.profile(Some("oak")).bypasses[0];
    assert_eq!(
        (bypass.domain.as_str(), bypass.approved_by.as_str()),
        ("history.example.org", "dsl.jones")
    );
    assert!(bypass.is_active(Utc::now()));
    let told = poll(&server, &credential, cursor, 5).await;
    assert_eq!(told.commands[0].action, CommandAction::RefreshPolicy, "devices are told to fetch");
    assert!(audited(&server, "t.smith", "asked for filter bypass").await);
    assert!(audited(&server, "dsl.jones", "approved filter bypass").await);
    let again =
        submit(&mut dsl, "/bypasses", "/bypasses/1/decide", &[("decision", "refuse")]).await;
    assert_eq!(again.status(), 409, "decided once");

    // A DSL's own request waits for someone else: another DSL or a deputy.
    let own = submit(
        &mut dsl,
        "/bypasses",
        "/bypasses",
        &[
            ("class", "Oak"),
            ("domain", "maps.example.org"),
            ("from", &from),
            ("until", &until),
            ("reason", "Geography"),
        ],
    )
    .await;
    assert_eq!(own.status(), 303);
    let page = dsl.page("/bypasses").await;
    assert!(!page.contains("/bypasses/2/decide"), "no buttons on one's own request: {page}");
    let self_approved =
        submit(&mut dsl, "/bypasses", "/bypasses/2/decide", &[("decision", "approve")]).await;
    assert_eq!(self_approved.status(), 409);
    assert!(self_approved.text().await.unwrap().contains("another DSL or deputy decides it"));
    let (_, filter) = policy(&server, &credential).await;
    assert_eq!(filter.profile(Some("oak")).bypasses.len(), 1, "not in force");
    let mut deputy = Browser::signed_in(&server, "d.patel", Role::DeputyDsl).await;
    let approved =
        submit(&mut deputy, "/bypasses", "/bypasses/2/decide", &[("decision", "approve")]).await;
    assert_eq!(approved.status(), 303);
    let (_, filter) = policy(&server, &credential).await;
    assert_eq!(filter.profile(Some("oak")).bypasses.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_picture_pin_set_on_the_setup_page_reaches_the_signed_kiosk_policy() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let imported = submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await;
    assert_eq!(imported.status(), 200);
    let amira_of = |policy: &kiosk::Policy| {
        policy.classes.iter().flat_map(|c| &c.pupils).find(|p| p.first_name == "Amira").cloned()
    };
    let (before, _) = policy(&server, &credential).await;
    let amira = amira_of(&before).unwrap();
    assert_eq!(amira.picture_pin, None);
    let id = amira.id.as_str().to_owned();
    let cursor = poll(&server, &credential, 0, 1).await.cursor;

    let set = submit(
        &mut it,
        "/setup",
        "/setup/picture-pin",
        &[("pupil", &id), ("pictures", "Moon, star fish")],
    )
    .await;
    assert_eq!(set.status(), 303, "{}", set.text().await.unwrap());
    let (after, _) = policy(&server, &credential).await;
    // This release's device: the length in the kiosk policy, the hash in the staff document.
    let amira_now = amira_of(&after).unwrap();
    assert_eq!((amira_now.picture_pin, amira_now.picture_pin_length), (None, Some(3)));
    assert!(after.issued_at > before.issued_at, "a change moves issued_at");
    let others = after.classes.iter().flat_map(|c| &c.pupils).filter(|p| p.id != amira.id);
    assert!(others.into_iter().all(|p| p.picture_pin_length.is_none()), "only Amira's changed");
    let (staff, _) = staff_document(&server, &credential).await;
    assert_eq!(staff.picture_pins.len(), 1);
    assert_eq!(staff.picture_pins[0].pupil, amira.id);
    // A device of the previous release (no `can`) gets the plain pictures, as before.
    let old = server.device_get(Some(&credential), "/api/v1/device/policy").await;
    let old = PolicyReply::from_json(&old.bytes().await.unwrap()).unwrap();
    assert!(old.kiosk.kind.is_none(), "the legacy envelope, which its parser takes");
    let old_kiosk = kiosk::parse_policy(&old.kiosk.payload).unwrap();
    assert_eq!(amira_of(&old_kiosk).unwrap().picture_pin.unwrap(), ["moon", "star", "fish"]);
    assert!(!old.staff.payload.contains("picture_pins"), "{}", old.staff.payload);
    let woken = poll(&server, &credential, cursor, 5).await;
    let actions: Vec<CommandAction> = woken.commands.iter().map(|c| c.action).collect();
    assert_eq!(actions, [CommandAction::RefreshPolicy], "devices are told to fetch it");
    assert!(audited(&server, "it.admin", "set picture PIN").await);
    assert!(it.page("/setup").await.contains("moon, star, fish"), "IT sees who has one");

    // Refused, naming the field, and nothing changed.
    for (pupil, pictures, field) in [
        (id.as_str(), "moon", "Pictures: 2 to 6"),
        (id.as_str(), "moon dragon", "Pictures: &quot;dragon&quot;"),
        (id.as_str(), "sun sun sun sun sun sun sun", "Pictures: 2 to 6"),
        ("p-nobody", "moon star", "Pupil: no pupil"),
        ("Amira K", "moon star", "Pupil: not a pupil id"),
    ] {
        let response = submit(
            &mut it,
            "/setup",
            "/setup/picture-pin",
            &[("pupil", pupil), ("pictures", pictures)],
        )
        .await;
        assert_eq!(response.status(), 400, "{pupil} {pictures}");
        let page = response.text().await.unwrap();
        assert!(page.contains(field), "{pupil} {pictures}: {page}");
    }
    let forged = it
        .post("/setup/picture-pin", &[("pupil", &id), ("pictures", "sun moon"), ("csrf", "x")])
        .await;
    assert_eq!(forged.status(), 403, "CSRF");
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let html = teacher.page("/commands").await;
    let token = csrf_in(&html);
    let refused = teacher
        .post("/setup/picture-pin", &[("pupil", &id), ("pictures", "sun moon"), ("csrf", &token)])
        .await;
    assert_eq!(refused.status(), 403, "teachers do not set up devices");
    let (unchanged, _) = policy(&server, &credential).await;
    assert_eq!(unchanged, after);

    // Empty pictures clear it.
    let cleared =
        submit(&mut it, "/setup", "/setup/picture-pin", &[("pupil", &id), ("pictures", "")]).await;
    assert_eq!(cleared.status(), 303);
    let (last, _) = policy(&server, &credential).await;
    assert_eq!(amira_of(&last).unwrap().picture_pin_length, None);
    assert!(staff_document(&server, &credential).await.0.picture_pins.is_empty());
    assert!(audited(&server, "it.admin", "cleared picture PIN").await);
    server.stop().await;
}

#[tokio::test]
async fn each_member_of_staff_sets_their_own_unlock_pin_and_devices_get_only_its_hash() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let imported = submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await;
    assert_eq!(imported.status(), 200);
    let (document, _) = staff_document(&server, &credential).await;
    assert!(document.staff.is_empty(), "nobody has a PIN yet");

    let mut jones = Browser::signed_in(&server, "t.jones", Role::Teacher).await;
    let page = jones.page("/staff/account").await;
    assert!(page.contains("You have no unlock PIN yet"), "{page}");
    let refusals = [
        ("4821", "4821", "6 to 12 digits"),
        ("123456", "123456", "run of digits"),
        ("999999", "999999", "same digit"),
        ("121212", "121212", "pattern"),
        ("482916", "482961", "not the same"),
        ("48291x", "48291x", "6 to 12 digits"),
    ];
    for (pin, confirm, says) in refusals {
        let response = submit(
            &mut jones,
            "/staff/account",
            "/staff/account/pin",
            &[("pin", pin), ("confirm", confirm)],
        )
        .await;
        assert_eq!(response.status(), 400, "{pin}");
        let page = response.text().await.unwrap();
        assert!(page.contains(says), "{pin}: {page}");
    }
    let forged = jones
        .post("/staff/account/pin", &[("pin", "482916"), ("confirm", "482916"), ("csrf", "x")])
        .await;
    assert_eq!(forged.status(), 403, "CSRF");
    let (document, _) = staff_document(&server, &credential).await;
    assert!(document.staff.is_empty(), "nothing refused reached devices");

    let before = server.store.policy_records().unwrap().changed_at;
    let set = submit(
        &mut jones,
        "/staff/account",
        "/staff/account/pin",
        &[("pin", "482916"), ("confirm", "482916")],
    )
    .await;
    assert_eq!(set.status(), 303);
    assert_eq!(set.headers()["location"], "/staff/account?saved=1");
    assert!(jones.page("/staff/account?saved=1").await.contains("Your PIN was set"));
    let mut patel = Browser::signed_in(&server, "r.patel", Role::Dsl).await;
    let set = submit(
        &mut patel,
        "/staff/account",
        "/staff/account/pin",
        &[("pin", "730418"), ("confirm", "730418")],
    )
    .await;
    assert_eq!(set.status(), 303);

    // The signed staff document: pseudonymous ids and argon2id hashes of their own PINs.
    let (document, kiosk_text) = staff_document(&server, &credential).await;
    assert!(document.issued_at > before, "devices see a newer document");
    assert_eq!(document.staff.len(), 2);
    let whose = |pin: &str| {
        document
            .staff
            .iter()
            .find(|e| auth::verify_password(pin, &e.pin_hash))
            .map(|e| e.id.clone())
    };
    let (jones_id, patel_id) = (whose("482916").unwrap(), whose("730418").unwrap());
    assert_ne!(jones_id, patel_id);
    assert_eq!(whose("123457"), None);
    for entry in &document.staff {
        assert!(entry.id.as_str().starts_with("s-") && entry.pin_hash.starts_with("$argon2id$"));
        assert!(!entry.id.as_str().contains("jones") && !entry.id.as_str().contains("patel"));
    }
    assert!(
        !kiosk_text.contains("argon2") && !kiosk_text.contains("pin"),
        "no PIN hash in the kiosk document the kiosk user reads: {kiosk_text}"
    );

    // Audited, never with the PIN; IT sees who has one, not the PIN.
    assert!(audited(&server, "t.jones", "set own unlock PIN").await);
    let log = server.store.audit_log(1000).unwrap();
    assert!(log.iter().all(|e| {
        let text = format!("{e:?}");
        !text.contains("482916") && !text.contains("730418") && !text.contains("argon2")
    }));
    let setup = it.page("/setup").await;
    assert!(setup.contains("t.jones") && setup.contains("r.patel"), "{setup}");
    assert!(!setup.contains("argon2"));

    // An unlock with Mr Patel's PIN is a note naming him on the incident, for the DSL.
    let report_event = report(12, None, "a page");
    let report_id = report_event.id;
    let resolved = slate_protocol::Event::new(
        device(12),
        at("2026-11-17T10:16:00Z"),
        slate_protocol::EventBody::ReportResolved {
            report: report_id,
            choice: slate_protocol::ResolutionChoice::CloseApp,
            staff: Some(patel_id.clone()),
        },
    );
    let response = server.post_events(Some(&credential), batch(vec![report_event, resolved])).await;
    assert_eq!(response.status(), 200);
    let incident = server.store.incidents(1).unwrap()[0].id;
    let page = patel.page(&format!("/incidents/{incident}")).await;
    assert!(page.contains("r.patel unlocked device 12: close the app"), "{page}");
    let csv = patel.get(&format!("/incidents/{incident}/export.csv")).await.text().await.unwrap();
    assert!(csv.contains("r.patel unlocked device 12: close the app"), "{csv}");

    // Mr Patel's account is disabled: his PIN leaves the document devices get.
    let disabled_at = server.store.policy_records().unwrap().changed_at + Duration::seconds(1);
    assert!(server.store.disable_staff("r.patel", disabled_at).unwrap());
    let (document, _) = staff_document(&server, &credential).await;
    let ids: Vec<_> = document.staff.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, [jones_id]);
    assert_eq!(document.issued_at, disabled_at);
    server.stop().await;
}

#[tokio::test]
async fn pupils_with_one_first_name_and_initial_stay_two_and_a_reimport_finds_them_again() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    // A SIMS export, more columns than Slate needs: two Amira Khans and an Amira Kerr in Oak.
    let sims = "UPN,Adno,Surname,Forename,Reg,Year,DOB\n\
                A100000000001,1,Khan,Amira,Oak,2,2019-01-01\n\
                A100000000002,2,Kerr,Amira,Oak,2,2019-02-02\n\
                A100000000003,3,Khan,Amira,Oak,2,2019-03-03\n\
                A100000000004,4,Taylor,Ben,Oak,2,2019-04-04\n";
    let response = submit(&mut it, "/setup", "/setup/roster", &[("csv", sims)]).await;
    let page = response.text().await.unwrap();
    assert!(page.contains("4 pupils added, 0 already there, 1 class added"), "{page}");
    let (kiosk, _) = policy(&server, &credential).await;
    let oak = kiosk.classes.iter().find(|c| c.name == "Oak").unwrap();
    let mut labels: Vec<String> = oak.pupils.iter().map(|p| p.display_name()).collect();
    labels.sort();
    assert_eq!(labels, ["Amira K.", "Amira K. (2)", "Amira Ke.", "Ben T."]);
    let ids_before = server.store.roster_names().unwrap();
    let staff_names: Vec<&str> = ids_before.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(staff_names.len(), 4);
    for label in &labels {
        assert!(staff_names.contains(&label.as_str()), "staff pages name {label} as devices do");
    }

    // Next year's export: the same UPNs in Ash. Nobody is new; the history stays theirs.
    let next_year = sims.replace(",Oak,2,", ",Ash,3,");
    let response = submit(&mut it, "/setup", "/setup/roster", &[("csv", &next_year)]).await;
    let page = response.text().await.unwrap();
    assert!(page.contains("0 pupils added, 0 already there, 4 moved to another class"), "{page}");
    let ids_after: Vec<_> =
        server.store.roster_names().unwrap().into_iter().map(|p| p.id).collect();
    let mut ids_before: Vec<_> = ids_before.into_iter().map(|p| p.id).collect();
    ids_before.sort();
    let mut sorted_after = ids_after.clone();
    sorted_after.sort();
    assert_eq!(sorted_after, ids_before);

    // Without an id column the two Amira Khans cannot be told apart: refused, not merged.
    let plain = "class,first_name,last_name,key_stage\nAsh,Ben,Taylor,ks2\nAsh,Amira,Khan,ks2\nAsh,Amira,Khan,ks2\n";
    let response = submit(&mut it, "/setup", "/setup/roster", &[("csv", plain)]).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("Nothing was imported. Line 3, column first_name: could be any of 2 pupils already in Ash"), "{page}");
    assert!(page.contains("add a UPN or Adno column"), "{page}");
    assert_eq!(server.store.roster_names().unwrap().len(), 4, "nothing imported");

    // A file without a column it needs says what it found.
    let response =
        submit(&mut it, "/setup", "/setup/roster", &[("csv", "Forename,Surname\nAmira,Khan\n")])
            .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("no class column"), "{page}");
    assert!(page.contains("found Forename, Surname"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn a_pupil_changed_or_marked_left_on_the_pupils_page_is_audited_and_their_records_stay() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let response = submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await;
    assert_eq!(response.status(), 200);
    let id_of = |name: &str| {
        let roster = server.store.roster_names().unwrap();
        roster.iter().find(|p| p.name.starts_with(name)).map(|p| p.id.as_str().to_owned())
    };
    let (amira, ben) = (id_of("Amira").unwrap(), id_of("Ben").unwrap());
    // Ben has a session on record before he leaves.
    let started = session_started(12, SessionId::new(), &ben, &Utc::now().to_rfc3339());
    assert_eq!(server.post_events(Some(&credential), batch(vec![started])).await.status(), 200);

    let page = it.page("/pupils").await;
    assert!(page.contains("not a deletion"), "the page says what leaving means");
    assert!(!page.contains(&format!("href=\"/pupils/{amira}\"")), "IT gets no chronology link");
    let edit = format!("/pupils/{amira}/edit");
    let fields = [("first_name", "Amira"), ("family_name", "Kerr"), ("class", "Ash")];
    let response = submit(&mut it, "/pupils", &edit, &fields).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let refused = [("first_name", "Amira Jane"), ("family_name", ""), ("class", "Elm")];
    let response = submit(&mut it, "/pupils", &edit, &refused).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("Nothing was changed. First name: must be one first name"), "{page}");
    let no_class = [("first_name", "Amira"), ("family_name", ""), ("class", "Elm")];
    let response = submit(&mut it, "/pupils", &edit, &no_class).await;
    assert_eq!(response.status(), 400);

    let mut dsl = Browser::signed_in(&server, "dsl.jones", Role::Dsl).await;
    let leave = format!("/pupils/{ben}/leave");
    let response = submit(&mut dsl, "/pupils", &leave, &[]).await;
    assert_eq!(response.status(), 303);
    let response = submit(&mut dsl, "/pupils", &leave, &[]).await;
    assert_eq!(response.status(), 404, "once");

    let (kiosk, _) = policy(&server, &credential).await;
    let on_devices: Vec<(String, String)> = kiosk
        .classes
        .iter()
        .flat_map(|c| c.pupils.iter().map(move |p| (c.name.clone(), p.display_name())))
        .collect();
    assert!(on_devices.contains(&("Ash".into(), "Amira K.".into())), "{on_devices:?}");
    assert!(on_devices.iter().all(|(_, name)| !name.starts_with("Ben")), "{on_devices:?}");
    let chronology = dsl.page(&format!("/pupils/{ben}")).await;
    assert!(chronology.contains("This pupil has left"), "{chronology}");
    assert!(chronology.contains("1 session"), "{chronology}");

    let log = server.store.audit_log(1000).unwrap();
    let changed = log.iter().find(|e| e.action == "changed pupil").unwrap();
    assert_eq!(changed.actor, "it.admin");
    assert_eq!(
        changed.record.as_deref(),
        Some(format!("pupil {amira}: class Oak to Ash, family name changed").as_str())
    );
    assert!(audited(&server, "dsl.jones", "marked pupil as left").await);
    assert!(log.iter().all(|e| !format!("{:?}", e.record).contains("Kerr")), "no names");
    assert_eq!(
        log.iter().filter(|e| e.action == "changed pupil").count(),
        1,
        "refusals change nothing"
    );

    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    assert_eq!(teacher.get("/pupils").await.status(), 403);
    assert_eq!(teacher.post(&leave, &[("csrf", "x")]).await.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn the_year_end_rollover_moves_every_class_up_at_once_and_keeps_pupil_ids() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    let csv =
        "class,first_name,last_name,key_stage\nYear 5,Amira,Khan,ks2\nYear 6,Ben,Taylor,ks2\n";
    let response = submit(&mut it, "/setup", "/setup/roster", &[("csv", csv)]).await;
    assert_eq!(response.status(), 200);
    let before = server.store.roster_names().unwrap();
    let amira = before.iter().find(|p| p.name == "Amira K.").unwrap().id.clone();
    let plan = [("next:Year 5", "class:Year 6"), ("next:Year 6", "leaves")];

    let response = submit(&mut it, "/pupils", "/pupils/rollover", &plan).await;
    assert_eq!(response.status(), 400, "not without the box ticked");
    let mut confirmed = plan.to_vec();
    confirmed.push(("confirm", "yes"));
    let response = submit(&mut it, "/pupils", "/pupils/rollover", &confirmed).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());

    let after = server.store.roster_names().unwrap();
    let rows: Vec<_> = after.iter().map(|p| (p.id.clone(), p.class_name.as_str())).collect();
    assert_eq!(rows, [(amira, "Year 6")], "Amira moved once with her id; Ben left");
    let (kiosk, _) = policy(&server, &credential).await;
    let year_six = kiosk.classes.iter().find(|c| c.name == "Year 6").unwrap();
    assert_eq!(year_six.pupils.len(), 1);
    let log = server.store.audit_log(1000).unwrap();
    let rolled = log.iter().find(|e| e.action == "rolled over classes").unwrap();
    assert_eq!(
        rolled.record.as_deref(),
        Some("Year 5 to Year 6, Year 6 to leavers (1 moved, 1 marked as left)")
    );
    server.stop().await;
}

/// The fleet self-test (issue 17): "Test the button" reaches the device as `test_button` (only a
/// device that said it understands it), its press comes back as `button_tested`, the fleet page
/// says the button works, and no incident is opened. Audited.
#[tokio::test]
async fn a_button_test_press_says_the_button_works_and_files_no_incident() {
    let server = TestServer::start().await;
    let twelve = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.anna", Role::ItAdmin).await;
    let sent = submit(&mut it, "/fleet", "/devices/12/test-button", &[]).await;
    assert_eq!(sent.status(), 303);
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("test waiting: press the button"), "{fleet}");

    // A device older than the test is never sent it (it would refuse the whole reply).
    let old = poll(&server, &twelve, 0, 1).await;
    assert!(old.commands.iter().all(|c| c.action != CommandAction::TestButton), "{old:?}");
    let path = "/api/v1/device/commands?after=0&wait_s=1&can=test_button";
    let response = server.device_get(Some(&twelve), path).await;
    assert_eq!(response.status(), 200);
    let reply = CommandsReply::from_json(&response.bytes().await.unwrap()).unwrap();
    let test = reply.commands.iter().find(|c| c.action == CommandAction::TestButton).unwrap();
    assert_eq!(test.expires_at - test.issued_at, Duration::minutes(5));

    let pressed = slate_protocol::Event::new(
        device(12),
        Utc::now(),
        slate_protocol::EventBody::ButtonTested { command: Some(test.id), staff: None },
    );
    assert_eq!(server.post_events(Some(&twelve), batch(vec![pressed])).await.status(), 200);
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("button works (tested "), "{fleet}");
    assert!(fleet.contains(" by it.anna)"), "{fleet}");
    assert!(server.reports().await.is_empty(), "a test press opens no incident");
    let audit = server.store.audit_log(20).unwrap();
    assert!(
        audit.iter().any(|a| a.action == "started a button test (test_button)"
            && a.record.as_deref() == Some("device 12")),
        "{audit:?}"
    );

    // A teacher tests only devices their classes' pupils are signed in on.
    let mut teacher = Browser::signed_in(&server, "t.smith", Role::Teacher).await;
    let page = teacher.page("/devices/12").await;
    assert!(page.contains("Test the button") && page.contains("button works"), "{page}");
    let refused = submit(&mut teacher, "/devices/12", "/devices/12/test-button", &[]).await;
    assert_eq!(refused.status(), 400);
    server.stop().await;
}

/// Issue 17, the teacher's way: a member of staff starts the button test on the device with
/// their staff PIN; its press comes back as `button_tested` naming them (by the pseudonymous id
/// their PIN carries, a shape this server says it accepts), and the fleet page says the button
/// works, tested by them, as for a test started from the page. No incident.
#[tokio::test]
async fn a_pin_started_button_test_names_the_staff_member_on_the_fleet_page() {
    let server = TestServer::start().await;
    let twelve = server.enroll(12).await;
    let thirteen = server.enroll(13).await;
    add_staff(&server.store, "t.jones", Role::Teacher);
    let teacher = server.store.staff_by_username("t.jones").unwrap().unwrap().id;
    let pin = auth::hash_password("482916", auth::HashCost::Cheap);
    let fresh = slate_protocol::StaffId::new("s-9c1e").unwrap();
    let unlock_id =
        server.store.set_unlock_pin(teacher, &pin, &fresh, Utc::now()).unwrap().unwrap();

    let tested = |device_number: u16, staff: &str| {
        slate_protocol::Event::new(
            device(device_number),
            Utc::now(),
            slate_protocol::EventBody::ButtonTested {
                command: None,
                staff: Some(slate_protocol::StaffId::new(staff).unwrap()),
            },
        )
    };
    let response =
        server.post_events(Some(&twelve), batch(vec![tested(12, unlock_id.as_str())])).await;
    assert_eq!(response.status(), 200);
    let reply: slate_protocol::IngestReply = response.json().await.unwrap();
    assert!(reply.accepts.iter().any(|k| k == slate_protocol::BUTTON_TESTED_BY_STAFF), "{reply:?}");
    let response = server.post_events(Some(&thirteen), batch(vec![tested(13, "it")])).await;
    assert_eq!(response.status(), 200);

    let mut it = Browser::signed_in(&server, "it.anna", Role::ItAdmin).await;
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains(" by t.jones)"), "{fleet}");
    assert!(
        fleet.contains(" by IT&#39;s own device PIN)")
            || fleet.contains(" by IT's own device PIN)"),
        "{fleet}"
    );
    assert_eq!(fleet.matches("button works (tested ").count(), 2, "{fleet}");
    assert!(server.reports().await.is_empty(), "a test press opens no incident");

    // A later test from the page is the latest: it waits for its press.
    let sent = submit(&mut it, "/fleet", "/devices/12/test-button", &[]).await;
    assert_eq!(sent.status(), 303);
    let fleet = it.page("/fleet").await;
    assert!(fleet.contains("test waiting: press the button"), "{fleet}");
    assert!(!fleet.contains(" by t.jones)"), "{fleet}");
    server.stop().await;
}

/// Issue 17, languages: the school's language and a class's own, from `[languages]` in the
/// config, reach a device that asks with `can=languages`; a device before languages (which
/// would refuse the whole policy with them) gets the policy without them.
#[tokio::test]
async fn the_language_goes_only_to_devices_that_understand_it() {
    let config = slate_server::config::parse_config(
        "[languages]\nschool = \"cy\"\nclasses = { Ash = \"en\" }\n",
    )
    .unwrap();
    let server = TestServer::start_config(config).await;
    let credential = server.enroll(12).await;
    {
        let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
        assert_eq!(
            submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await.status(),
            200
        );
    }
    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let kiosk_text = |path: String| {
        let server = &server;
        let credential = credential.clone();
        async move {
            let response = server.device_get(Some(&credential), &path).await;
            assert_eq!(response.status(), 200, "{path}");
            let reply = PolicyReply::from_json(&response.bytes().await.unwrap()).unwrap();
            // Both forms: the older path is answered with a legacy bundle (no kind).
            let bytes = serde_json::to_vec(&reply.kiosk).unwrap();
            SignedBundle::open_cached_as(BundleKind::KioskPolicy, &bytes, &key).unwrap()
        }
    };

    let newer =
        kiosk::parse_policy(&kiosk_text(slate_protocol::device::policy_path()).await).unwrap();
    let class = |name: &str| newer.classes.iter().find(|c| c.name == name).unwrap();
    assert_eq!(newer.language.as_deref(), Some("cy"));
    assert_eq!(newer.language_of(Some(class("Oak"))), "cy");
    assert_eq!(newer.language_of(Some(class("Ash"))), "en");

    let older = kiosk_text("/api/v1/device/policy".to_owned()).await;
    assert!(!older.contains("language"), "{older}");
    kiosk::parse_policy(&older).unwrap();

    let refused = server.device_get(Some(&credential), "/api/v1/device/policy?lang=cy").await;
    assert_eq!(refused.status(), 400);
    server.stop().await;
}

/// What the real server sends a device of this release, checked by the device's own code: no
/// plain picture PIN anywhere in the reply's bytes, the hash signs Amira in with the right taps
/// and refuses wrong ones, the policy's bytes do not change between fetches (the hash was made
/// once), and a kiosk policy handed to the device in the filter policy's place is refused.
#[tokio::test]
async fn a_device_that_understands_hashes_and_kinds_gets_no_plain_pin_and_no_mix_up() {
    use slate_daemon::control::Role as PeerRole;
    use slate_daemon::policy::{verify_reply, InForce, PolicyFetchError};
    use slate_daemon::roster::{check_sign_in, expected_pin, SignInRefused};
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let mut it = Browser::signed_in(&server, "it.admin", Role::ItAdmin).await;
    assert_eq!(submit(&mut it, "/setup", "/setup/roster", &[("csv", ROSTER)]).await.status(), 200);
    let (before, _) = policy(&server, &credential).await;
    let amira = before.classes.iter().flat_map(|c| &c.pupils).find(|p| p.first_name == "Amira");
    let amira = amira.unwrap().id.clone();
    let set = submit(
        &mut it,
        "/setup",
        "/setup/picture-pin",
        &[("pupil", amira.as_str()), ("pictures", "moon heart boat tree")],
    )
    .await;
    assert_eq!(set.status(), 303);

    let path = slate_protocol::device::policy_path();
    let fetch = || async {
        let response = server.device_get(Some(&credential), &path).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    };
    let body = fetch().await;
    let text = String::from_utf8_lossy(&body);
    // The pictures are also tiles' symbols, so it is the sequence and the field that must be
    // absent, in any spelling: inside a payload (escaped) or not.
    assert!(!text.contains(r#"picture_pin\":"#) && !text.contains(r#""picture_pin":"#), "{text}");
    for separator in [r#"\",\""#, r#"",""#, ", ", " ", ","] {
        let sequence = ["moon", "heart", "boat", "tree"].join(separator);
        assert!(!text.contains(&sequence), "the PIN in the reply: {text}");
    }
    assert!(text.contains(r#"picture_pin_length\":4"#), "the length only: {text}");
    assert_eq!(fetch().await, body, "the same bytes on the next fetch");

    let key = verifying_key_from_base64(&server.public_key).unwrap();
    let verified = verify_reply(&body, &key, &InForce::default()).expect("the device takes it");
    let pin = || expected_pin(Some(&verified.kiosk), Some(&verified.staff), &amira);
    let taps = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let right = taps(&["moon", "heart", "boat", "tree"]);
    assert_eq!(check_sign_in(pin(), PeerRole::Kiosk, Some(&right)), Ok(()));
    for wrong in [
        taps(&["heart", "moon", "boat", "tree"]),
        taps(&["moon", "heart", "boat"]),
        taps(&["moon", "heart", "boat", "tree", "sun"]),
    ] {
        let refused = check_sign_in(pin(), PeerRole::Kiosk, Some(&wrong));
        assert_eq!(refused, Err(SignInRefused::WrongPictures), "{wrong:?}");
    }
    assert_eq!(check_sign_in(pin(), PeerRole::Kiosk, None), Err(SignInRefused::PicturesNeeded));

    // The real server's kiosk policy where the filter policy goes: slated and slate-dns refuse it.
    let mut reply = PolicyReply::from_json(&body).unwrap();
    reply.filter = reply.kiosk.clone();
    let mixed = serde_json::to_vec(&reply).unwrap();
    let err = verify_reply(&mixed, &key, &InForce::default()).unwrap_err();
    assert!(
        matches!(&err, PolicyFetchError::Bundle { which: "filter", reason }
            if reason.contains("is a kiosk-policy, where a filter-policy was expected")),
        "{err}"
    );
    let dns = slate_filter::policy::Policy::open(&serde_json::to_vec(&reply.filter).unwrap(), &key);
    assert!(dns.unwrap_err().to_string().contains("kiosk-policy"));
    server.stop().await;
}
