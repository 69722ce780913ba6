//! Updates (issue 16): real RAUC bundles made with `rauc bundle` (a throwaway CA and signing
//! certificate from openssl, squashfs from squashfs-tools) added through the `slate-server`
//! binary and the Updates page, checked by the real `rauc info`; the device API's check, offer
//! and resumable download on loopback; the fleet page's word for a rolled-back device.

use crate::common::*;
use sha2::{Digest, Sha256};
use slate_protocol::update::{UpdateCheck, UpdateReply, UpdateState};
use slate_server::auth::Role;
use slate_server::update_bundles::UpdateBundles;
use slate_server::update_rollout::{Audience, BundleRecord};
use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_slate-server");

/// Runs a host tool the test needs, failing (never skipping) with what to do when it is missing.
fn tool(program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let output = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("{program} cannot run ({e}): run scripts/setup (it installs rauc, squashfs-tools and openssl)")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A throwaway CA (`<name>-ca.pem`) and a signing certificate and key it issued
/// (`<name>.pem`, `<name>.key`), as IT's update CA and its build machine's key.
fn signer(dir: &Path, name: &str) {
    let ca = format!("{name}-ca");
    tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} update CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
        dir,
    );
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name} signing"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
        dir,
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    );
}

/// A verity bundle of a small stand-in root file system, with the manifest images/bundle writes,
/// signed by `signer`'s key.
fn bundle(dir: &Path, signer: &str, version: &str, compatible: &str) -> PathBuf {
    let content = dir.join(format!("content-{signer}-{version}"));
    std::fs::create_dir_all(&content).unwrap();
    // A megabyte squashfs cannot shrink (xorshift): the bundle is bigger than any other body.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let rootfs: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(content.join("rootfs.ext4"), rootfs).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        format!(
            "[update]\ncompatible={compatible}\nversion={version}\ndescription=Slate root file system\n\n\
             [bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{signer}-{version}.raucb"));
    let (cert, key) = (format!("{signer}.pem"), format!("{signer}.key"));
    tool(
        "rauc",
        &[
            "bundle",
            "--cert",
            &cert,
            "--key",
            &key,
            content.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        dir,
    );
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `.raucb` files and anything else left in a data directory's `updates/`.
fn stored(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("updates"))
        .map(|dir| dir.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn slate_server(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BINARY).arg("--data-dir").arg(data_dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn update_add_keeps_a_bundle_signed_by_its_ca_and_refuses_another() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    signer(work, "school");
    signer(work, "stranger");
    let good = bundle(work, "school", "0.2.0", "slate-test");
    let stranger = bundle(work, "stranger", "0.3.0", "slate-test");
    let data = work.join("data");
    let data = data.as_path();

    let refused = slate_server(data, &["update", "add", good.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("slate-server update ca FILE"),
        "{}",
        text(&refused.stderr)
    );
    assert!(stored(data).is_empty(), "{:?}", stored(data));

    let ca = work.join("school-ca.pem");
    let added = slate_server(
        data,
        &["update", "add", "--ca", ca.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let sha = sha256_hex(&std::fs::read(&good).unwrap());
    assert!(
        text(&added.stdout).contains("added: version 0.2.0 for slate-test"),
        "{}",
        text(&added.stdout)
    );
    assert_eq!(stored(data), [format!("{sha}.raucb")]);
    assert_eq!(
        std::fs::read(data.join("updates").join(format!("{sha}.raucb"))).unwrap(),
        std::fs::read(&good).unwrap()
    );

    let again = slate_server(data, &["update", "add", good.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).starts_with("already uploaded: version 0.2.0"),
        "{}",
        text(&again.stdout)
    );

    let other = slate_server(data, &["update", "add", stranger.to_str().unwrap()]);
    assert!(!other.status.success(), "a bundle signed by another CA is refused");
    let said = text(&other.stderr);
    assert!(said.contains("rauc refused the bundle") && said.contains("signature"), "{said}");
    assert_eq!(stored(data), [format!("{sha}.raucb")], "nothing of it is kept");

    let pilot =
        slate_server(data, &["update", "rollout", "--version", "0.2.0", "--devices", "12,13"]);
    assert!(pilot.status.success(), "{}", text(&pilot.stderr));
    let unknown = slate_server(data, &["update", "rollout", "--version", "9.9", "--everyone"]);
    assert!(text(&unknown.stderr).contains("no uploaded bundle has version \"9.9\""));
    let list = text(&slate_server(data, &["update", "list"]).stdout);
    assert!(
        list.contains(&format!(
            "0.2.0  slate-test  {} bytes  sha256 {sha}",
            std::fs::metadata(&good).unwrap().len()
        )),
        "{list}"
    );
    assert!(list.contains("rollout: version 0.2.0 to devices 12,13, restart when idle"), "{list}");
    let everyone = slate_server(
        data,
        &["update", "rollout", "--version", "0.2.0", "--everyone", "--reboot-at", "16:30"],
    );
    assert!(everyone.status.success());
    let list = text(&slate_server(data, &["update", "list"]).stdout);
    assert!(
        list.contains("rollout: version 0.2.0 to everyone, restart from 16:30 UK time"),
        "{list}"
    );
    assert!(slate_server(data, &["update", "stop"]).status.success());
    let stopped = slate_server(data, &["update", "stop"]);
    assert!(text(&stopped.stderr).contains("no rollout is in force"));
    let again = slate_server(
        data,
        &["update", "rollout", "--version", "0.2.0", "--everyone", "--retry-failed"],
    );
    assert!(text(&again.stdout).contains("offered again to 0 devices"), "{}", text(&again.stdout));
    let bad_time = slate_server(
        data,
        &["update", "rollout", "--version", "0.2.0", "--everyone", "--reboot-at", "4pm"],
    );
    assert_eq!(bad_time.status.code(), Some(2), "{}", text(&bad_time.stderr));

    // IT removes a bundle it no longer needs, but not while the rollout in force offers it.
    let remove = ["update", "remove", "--version", "0.2.0"];
    let in_force = slate_server(data, &remove);
    assert!(!in_force.status.success());
    assert!(text(&in_force.stderr).contains("stop it first"), "{}", text(&in_force.stderr));
    assert_eq!(stored(data), [format!("{sha}.raucb")], "kept while offered");
    assert!(slate_server(data, &["update", "stop"]).status.success());
    let removed = slate_server(data, &remove);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert!(text(&removed.stdout).starts_with("removed: version 0.2.0"));
    assert!(stored(data).is_empty(), "the file is deleted: {:?}", stored(data));
    let list = text(&slate_server(data, &["update", "list"]).stdout);
    assert!(list.contains("bundles: none"), "{list}");
    let gone = slate_server(data, &["update", "rollout", "--version", "0.2.0", "--everyone"]);
    assert!(
        text(&gone.stderr).contains("no uploaded bundle has version"),
        "{}",
        text(&gone.stderr)
    );
    let twice = slate_server(data, &remove);
    assert!(text(&twice.stderr).contains("no bundle has the version \"0.2.0\""));
    let store = slate_server::Store::open(&data.join("slate.sqlite")).unwrap();
    let audit = store.audit_log(20).unwrap();
    let entry = audit.iter().find(|e| e.action == "removed update bundle").expect("audited");
    assert_eq!(entry.actor, "console");
    // The same file uploaded again brings it back, and it can be rolled out again.
    let back = slate_server(data, &["update", "add", good.to_str().unwrap()]);
    assert!(text(&back.stdout).contains("added: version 0.2.0"), "{}", text(&back.stdout));
    assert_eq!(stored(data), [format!("{sha}.raucb")]);
    let again = slate_server(data, &["update", "rollout", "--version", "0.2.0", "--everyone"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// The installed server as IT runs it: the bundle added and rolled out on its console while it
/// serves, a device enrolled with a console token over HTTPS, offered the bundle and fetching it
/// in two parts.
#[tokio::test]
async fn the_running_server_offers_a_bundle_added_on_its_console() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    signer(work, "school");
    let good = bundle(work, "school", "0.2.0", "slate-test");
    let bytes = std::fs::read(&good).unwrap();
    let data = work.join("data");
    let running = crate::binary::start(&data, "127.0.0.1:0").await;
    let ca = work.join("school-ca.pem");
    let added = slate_server(
        &data,
        &["update", "add", "--ca", ca.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let token = slate_server(&data, &["enrollment-token", "--device", "12"]);
    let token = text(&token.stdout).trim().to_owned();
    let rollout =
        slate_server(&data, &["update", "rollout", "--version", "0.2.0", "--devices", "12"]);
    assert!(rollout.status.success(), "{}", text(&rollout.stderr));

    let client = crate::binary::client_trusting(&running.certificate);
    let enroll =
        serde_json::json!({"v": 1, "device": 12, "token": token, "software_version": "0.1.0"});
    let enrolled =
        client.post(format!("{}/api/v1/enroll", running.url)).json(&enroll).send().await.unwrap();
    assert_eq!(enrolled.status(), 200);
    let credential: slate_protocol::EnrollReply = enrolled.json().await.unwrap();
    let credential = credential.credential;
    let check = UpdateCheck::new("0.1.0".into(), UpdateState::Current);
    let reply = client
        .post(format!("{}{}", running.url, slate_protocol::routes::DEVICE_UPDATE))
        .bearer_auth(&credential)
        .json(&check)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let offer =
        UpdateReply::from_json(&reply.bytes().await.unwrap()).unwrap().offer.expect("offered");
    assert_eq!((offer.sha256.clone(), offer.bytes), (sha256_hex(&bytes), bytes.len() as u64));
    let path = slate_protocol::routes::device_update_bundle(&offer.sha256);
    let mut downloaded = Vec::new();
    for range in ["bytes=0-99999", "bytes=100000-"] {
        let part = client
            .get(format!("{}{path}", running.url))
            .bearer_auth(&credential)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206, "{range}");
        downloaded.extend_from_slice(&part.bytes().await.unwrap());
    }
    assert_eq!(sha256_hex(&downloaded), offer.sha256);
    crate::binary::terminate(running).await;
}

async fn upload(browser: &mut Browser<'_>, csrf: &str, file: &[u8]) -> reqwest::Response {
    browser.upload("/updates/bundle", csrf, "bundle", file).await
}

#[tokio::test]
async fn it_uploads_a_bundle_on_the_updates_page() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    signer(work, "school");
    signer(work, "stranger");
    let good = std::fs::read(bundle(work, "school", "0.2.0", "slate-test")).unwrap();
    let stranger = std::fs::read(bundle(work, "stranger", "0.3.0", "slate-test")).unwrap();
    assert!(
        good.len() > 2 * slate_protocol::MAX_BODY_BYTES,
        "the upload route takes more than a form"
    );
    let server = TestServer::start().await;
    let data = server.data_dir();
    let mut it = Browser::signed_in(&server, "it.tech", Role::ItAdmin).await;
    let page = it.page("/updates").await;
    assert!(page.contains("No update CA yet"), "{page}");
    let csrf = csrf_in(&page);

    let no_ca = upload(&mut it, &csrf, &good).await;
    assert_eq!(no_ca.status(), 400);
    assert!(no_ca.text().await.unwrap().contains("slate-server update ca FILE"));
    let forged = upload(&mut it, "not-the-token", &good).await;
    assert_eq!(forged.status(), 403);
    assert!(stored(data.root()).is_empty(), "{:?}", stored(data.root()));

    let pem = std::fs::read(work.join("school-ca.pem")).unwrap();
    UpdateBundles::open(&data).unwrap().set_ca(&pem).unwrap();
    let added = upload(&mut it, &csrf, &good).await;
    assert_eq!(added.status(), 303, "{}", added.text().await.unwrap());
    let sha = sha256_hex(&good);
    assert_eq!(stored(data.root()), [format!("{sha}.raucb")]);
    let refused = upload(&mut it, &csrf, &stranger).await;
    assert_eq!(refused.status(), 400);
    let said = refused.text().await.unwrap();
    assert!(said.contains("rauc refused the bundle") && said.contains("signature"), "{said}");
    assert_eq!(stored(data.root()), [format!("{sha}.raucb")], "the refused file is gone");

    let page = it.page("/updates").await;
    assert!(page.contains("<td>0.2.0</td>") && page.contains(&sha[..12]), "{page}");
    let started = it
        .post(
            "/updates/rollout",
            &[
                ("csrf", &csrf),
                ("version", "0.2.0"),
                ("audience", "devices"),
                ("devices", "12, 13"),
                ("reboot_at", ""),
            ],
        )
        .await;
    assert_eq!(started.status(), 303);
    let page = it.page("/updates").await;
    assert!(page.contains("devices 12, 13 only; they restart into it when idle"), "{page}");
    let bad = it
        .post(
            "/updates/rollout",
            &[("csrf", &csrf), ("version", "0.2.0"), ("audience", "devices"), ("devices", "12, x")],
        )
        .await;
    assert_eq!(bad.status(), 400);
    let everyone = [
        ("csrf", csrf.as_str()),
        ("version", "0.2.0"),
        ("audience", "everyone"),
        ("reboot_at", "16:30"),
        ("retry_failed", "yes"),
    ];
    assert_eq!(it.post("/updates/rollout", &everyone).await.status(), 303);
    let page = it.page("/updates").await;
    assert!(page.contains("every device; they restart into it from 16:30 UK time"), "{page}");
    let remove = [("csrf", csrf.as_str()), ("version", "0.2.0")];
    let offered = it.post("/updates/remove", &remove).await;
    assert_eq!(offered.status(), 409, "not while the rollout in force offers it");
    assert_eq!(it.post("/updates/stop", &[("csrf", &csrf)]).await.status(), 303);
    assert!(it.page("/updates").await.contains("aria-label=\"Remove 0.2.0\""));
    assert_eq!(it.post("/updates/remove", &remove).await.status(), 303);
    let page = it.page("/updates").await;
    assert!(page.contains("No bundle uploaded yet."), "{page}");
    let audit: Vec<String> = server
        .store
        .audit_log(10)
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.actor, e.action))
        .collect();
    assert!(audit.contains(&"it.tech uploaded update bundle".to_owned()), "{audit:?}");
    assert!(audit.contains(&"it.tech started update rollout".to_owned()), "{audit:?}");
    assert!(audit.contains(&"it.tech stopped update rollout".to_owned()), "{audit:?}");
    assert!(audit.contains(&"it.tech removed update bundle".to_owned()), "{audit:?}");
}

/// A bundle put in place as an upload leaves it (the signature check is the tests above'):
/// its bytes in `updates/<sha256>.raucb` and its row.
fn place_bundle(server: &TestServer, version: &str, bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    let updates = UpdateBundles::open(&server.data_dir()).unwrap();
    std::fs::write(updates.path(&sha), bytes).unwrap();
    let record = BundleRecord {
        sha256: sha.clone(),
        version: version.into(),
        compatible: "slate-test".into(),
        bytes: bytes.len() as u64,
        uploaded_at: chrono::Utc::now(),
        uploaded_by: "it".into(),
    };
    assert!(server.store.add_update_bundle(&record).unwrap());
    sha
}

async fn check(server: &TestServer, credential: &str, check: &UpdateCheck) -> UpdateReply {
    let response = server
        .client
        .post(format!("{}{}", server.url, slate_protocol::routes::DEVICE_UPDATE))
        .bearer_auth(credential)
        .json(check)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    UpdateReply::from_json(&response.bytes().await.unwrap()).unwrap()
}

async fn fetch(
    server: &TestServer,
    credential: &str,
    sha: &str,
    range: Option<&str>,
) -> reqwest::Response {
    let mut request = server
        .client
        .get(format!("{}{}", server.url, slate_protocol::routes::device_update_bundle(sha)))
        .bearer_auth(credential);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_pilot_device_is_offered_the_bundle_downloads_it_in_two_parts_and_a_rollback_is_not_offered_again(
) {
    let server = TestServer::start().await;
    let pilot = server.enroll(12).await;
    let other = server.enroll(14).await;
    let running = UpdateCheck::new("0.1.0".into(), UpdateState::Current);

    let nothing = check(&server, &pilot, &running).await;
    assert_eq!(nothing.offer, None, "no rollout: nothing offered");
    let bytes: Vec<u8> = (0..250_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let sha = place_bundle(&server, "0.2.0", &bytes);
    assert_eq!(fetch(&server, &pilot, &sha, None).await.status(), 404, "not offered yet");
    let devices = Audience::Devices(vec![device(12)]);
    assert!(server.store.start_rollout("0.2.0", &devices, None, "it", chrono::Utc::now()).unwrap());

    let offer =
        check(&server, &pilot, &running).await.offer.expect("the pilot device is offered it");
    assert_eq!(
        (offer.version.as_str(), offer.sha256.as_str(), offer.bytes),
        ("0.2.0", sha.as_str(), 250_000)
    );
    assert_eq!(offer.reboot_after, None);
    assert_eq!(check(&server, &other, &running).await.offer, None, "device 14 is not in the pilot");
    assert_eq!(fetch(&server, &other, &sha, None).await.status(), 404);
    assert_eq!(fetch(&server, &pilot, "not-a-digest", None).await.status(), 400);
    assert_eq!(fetch(&server, "wrong", &sha, None).await.status(), 401);

    // The download stops after 100,000 bytes and resumes from there.
    let first = fetch(&server, &pilot, &sha, Some("bytes=0-99999")).await;
    assert_eq!(first.status(), 206);
    assert_eq!(first.headers()["content-type"], "application/octet-stream");
    let mut downloaded = first.bytes().await.unwrap().to_vec();
    assert_eq!(downloaded.len(), 100_000);
    let downloading = UpdateCheck {
        target: Some("0.2.0".into()),
        downloaded: Some(100_000),
        ..UpdateCheck::new("0.1.0".into(), UpdateState::Downloading)
    };
    assert!(check(&server, &pilot, &downloading).await.offer.is_some());
    let fleet = server.staff_page("/fleet").await;
    assert!(fleet.contains("downloading 40%"), "{fleet}");
    assert!(fleet.contains("version <strong>0.2.0</strong> to devices 12."), "{fleet}");
    let rest = fetch(&server, &pilot, &sha, Some("bytes=100000-")).await;
    assert_eq!(rest.status(), 206);
    assert_eq!(rest.headers()["content-range"], "bytes 100000-249999/250000");
    downloaded.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(sha256_hex(&downloaded), sha, "the resumed download is the bundle");
    let whole = fetch(&server, &pilot, &sha, None).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().len(), 250_000);

    // The new slot never became ready: rolled back, not offered again, and the fleet says so.
    let rolled_back = UpdateCheck {
        target: Some("0.2.0".into()),
        error: Some("rolled back: not healthy 304s after boot".into()),
        ..UpdateCheck::new("0.1.0".into(), UpdateState::Failed)
    };
    assert_eq!(check(&server, &pilot, &rolled_back).await.offer, None);
    assert_eq!(fetch(&server, &pilot, &sha, Some("bytes=0-")).await.status(), 404);
    assert_eq!(check(&server, &pilot, &running).await.offer, None, "still not, once current again");
    let fleet = server.staff_page("/fleet").await;
    assert!(fleet.contains("rolled back (0.2.0)"), "{fleet}");
    assert!(fleet.contains("rolled back: not healthy 304s after boot"), "{fleet}");
    // IT fixed the cause and offers it again on purpose (the page's tick box, --retry-failed).
    assert_eq!(server.store.forget_update_failures("0.2.0", "it", chrono::Utc::now()).unwrap(), 1);
    assert!(check(&server, &pilot, &running).await.offer.is_some(), "offered again");
    assert_eq!(check(&server, &pilot, &rolled_back).await.offer, None);

    // A new bundle, to everyone with a restart time: offered to both, the restart time today's.
    let newer: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
    let newer_sha = place_bundle(&server, "0.3.0", &newer);
    let at = chrono::NaiveTime::from_hms_opt(16, 30, 0);
    assert!(server
        .store
        .start_rollout("0.3.0", &Audience::Everyone, at, "it", chrono::Utc::now())
        .unwrap());
    let offer = check(&server, &pilot, &running).await.offer.expect("a new bundle is offered");
    assert_eq!(offer.sha256, newer_sha);
    assert!(offer.reboot_after.is_some());
    assert!(check(&server, &other, &running).await.offer.is_some());
    let current = UpdateCheck::new("0.3.0".into(), UpdateState::Current);
    assert_eq!(check(&server, &other, &current).await.offer, None, "runs it already");
    let fleet = server.staff_page("/fleet").await;
    assert!(fleet.contains("up to date"), "{fleet}");
}

#[tokio::test]
async fn a_malformed_update_check_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let credential = server.enroll(12).await;
    let response = server
        .client
        .post(format!("{}{}", server.url, slate_protocol::routes::DEVICE_UPDATE))
        .bearer_auth(&credential)
        .header("content-type", "application/json")
        .body(r#"{"v":1,"running":"../x","state":"current"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("running"));
    assert!(server.store.device_update_reports().unwrap().is_empty());
}

/// The update records through one story: bundles, a pilot then everyone, reports and a failure
/// remembered by version, the rollout stopped; the same on each engine.
fn update_records(store: &slate_server::Store) {
    let now = chrono::Utc::now();
    let record = |sha: char, version: &str| BundleRecord {
        sha256: sha.to_string().repeat(64),
        version: version.into(),
        compatible: "slate-test".into(),
        bytes: 272_200_000,
        uploaded_at: "2026-12-07T09:00:00Z".parse().unwrap(),
        uploaded_by: "console".into(),
    };
    assert!(store.add_update_bundle(&record('a', "0.2.0")).unwrap());
    assert!(!store.add_update_bundle(&record('a', "0.2.0")).unwrap());
    assert!(store.add_update_bundle(&record('b', "0.3.0")).unwrap());
    assert_eq!(store.update_bundles().unwrap().len(), 2);
    let pilot = Audience::Devices(vec![device(13), device(12)]);
    assert!(store.start_rollout("0.2.0", &pilot, None, "console", now).unwrap());
    let rollout = store.current_rollout().unwrap().unwrap();
    assert_eq!(rollout.audience, Audience::Devices(vec![device(12), device(13)]));
    assert_eq!(rollout.bundle, record('a', "0.2.0"));
    let at = chrono::NaiveTime::from_hms_opt(16, 30, 0);
    assert!(store.start_rollout("0.3.0", &Audience::Everyone, at, "console", now).unwrap());
    let rollout = store.current_rollout().unwrap().unwrap();
    assert_eq!(
        (rollout.bundle.version.as_str(), rollout.audience, rollout.reboot_at),
        ("0.3.0", Audience::Everyone, at)
    );

    let failed = UpdateCheck {
        target: Some("0.3.0".into()),
        error: Some("rolled back: not healthy 304s after boot".into()),
        ..UpdateCheck::new("0.2.0".into(), UpdateState::Failed)
    };
    store.record_update_check(device(12), &failed, now).unwrap();
    let downloading = UpdateCheck {
        target: Some("0.3.0".into()),
        downloaded: Some(2_000_000_000),
        ..UpdateCheck::new("0.2.0".into(), UpdateState::Downloading)
    };
    store.record_update_check(device(13), &downloading, now).unwrap();
    store
        .record_update_check(
            device(12),
            &UpdateCheck::new("0.2.0".into(), UpdateState::Current),
            now,
        )
        .unwrap();
    assert_eq!(store.failed_versions(device(12)).unwrap(), ["0.3.0"]);
    assert_eq!(store.device_running_version(device(13)).unwrap().as_deref(), Some("0.2.0"));
    assert_eq!(store.device_running_version(device(14)).unwrap(), None);
    let reports = store.device_update_reports().unwrap();
    assert_eq!(
        reports.iter().map(|r| (r.device, r.state)).collect::<Vec<_>>(),
        [(12, UpdateState::Current), (13, UpdateState::Downloading)]
    );
    assert_eq!(reports[1].downloaded, Some(2_000_000_000));
    assert_eq!(store.update_failures().unwrap().len(), 1);
    assert!(store.stop_rollout("console", now).unwrap());
    assert_eq!(store.current_rollout().unwrap(), None);
    let actions: Vec<String> = store.audit_log(10).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| a.contains("update")).count(), 5, "{actions:?}");
}

#[test]
fn the_update_records_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    update_records(&slate_server::Store::open(&dir.path().join("slate.sqlite")).unwrap());
}

#[test]
fn the_update_records_on_postgres() {
    let postgres = crate::postgres::TestPostgres::start();
    update_records(&postgres.store());
}
