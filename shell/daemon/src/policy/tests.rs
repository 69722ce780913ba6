use super::*;
use ed25519_dalek::SigningKey;
use slate_protocol::device::policy_path;
use slate_protocol::routes;
use std::sync::{Arc, Mutex};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn kiosk_payload(issued_at: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(kiosk::SAMPLE_POLICY).unwrap();
    v["issued_at"] = issued_at.into();
    v["sessions"] = serde_json::json!({"idle_timeout_min": 15, "lesson_ends": ["10:30:00"]});
    v.to_string()
}

fn list_bytes(name: &str) -> Vec<u8> {
    format!("{name}.example\nbad.{name}.example\n").into_bytes()
}

fn filter_payload(issued_at: &str, lists: &[(&str, &[u8])]) -> String {
    let manifest: serde_json::Map<String, serde_json::Value> = lists
        .iter()
        .map(|(name, bytes)| {
            (
                name.to_string(),
                serde_json::json!({"sha256": slate_protocol::device::list_digest(bytes), "bytes": bytes.len()}),
            )
        })
        .collect();
    serde_json::json!({
        "v": 1, "issued_at": issued_at, "default_profile": "oak",
        "profiles": {"oak": {"block_lists": ["adult"]}},
        "lists": manifest,
    })
    .to_string()
}

/// A staff document with one member, Mrs Jones (`s-jones`, PIN 482916).
fn staff_payload(issued_at: &str) -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| crate::staff::StaffPin::hash_cheap("482916").phc().to_owned());
    serde_json::json!({"v": 1, "issued_at": issued_at, "staff": [{"id": "s-jones", "pin_hash": hash}]})
        .to_string()
}

/// A reply whose staff document is issued when the filter policy is.
fn reply(signer: &SigningKey, kiosk: String, filter: String) -> Vec<u8> {
    let at: serde_json::Value = serde_json::from_str(&filter).unwrap();
    let staff = staff_payload(at["issued_at"].as_str().unwrap_or(T1));
    reply_with_staff(signer, kiosk, filter, staff)
}

fn reply_with_staff(signer: &SigningKey, kiosk: String, filter: String, staff: String) -> Vec<u8> {
    serde_json::to_vec(&PolicyReply {
        v: 1,
        kiosk: SignedBundle::sign_as(BundleKind::KioskPolicy, kiosk, "k1", signer),
        filter: SignedBundle::sign_as(BundleKind::FilterPolicy, filter, "k1", signer),
        staff: SignedBundle::sign_as(BundleKind::StaffPins, staff, "k1", signer),
    })
    .unwrap()
}

/// Answers GETs from a table of paths; records what was asked.
#[derive(Clone, Default)]
struct FakeApi {
    answers: Arc<Mutex<BTreeMap<String, HttpAnswer>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    fn set(&self, path: &str, status: u16, body: Vec<u8>) {
        self.answers.lock().unwrap().insert(path.to_owned(), HttpAnswer { status, body });
    }
    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl DeviceApi for FakeApi {
    async fn get(
        &self,
        _credential: &Credential,
        path: &str,
        _timeout: Duration,
        max_bytes: u64,
    ) -> Result<HttpAnswer, UploadError> {
        self.asked.lock().unwrap().push(path.to_owned());
        match self.answers.lock().unwrap().get(path) {
            Some(a) if a.body.len() as u64 > max_bytes => {
                Err(UploadError::Transport("too long".into()))
            }
            Some(a) => Ok(a.clone()),
            None => Err(UploadError::Transport("connection refused".into())),
        }
    }
}

fn credential() -> Credential {
    Credential::new("c-test").unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    files: PolicyFiles,
    api: FakeApi,
    fetcher: PolicyFetcher<FakeApi>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let files = PolicyFiles::new(dir.path());
    let api = FakeApi::default();
    let fetcher =
        PolicyFetcher::new(api.clone(), key(1).verifying_key(), files.clone(), InForce::default());
    Setup { _dir: dir, files, api, fetcher }
}

const T1: &str = "2026-11-17T08:00:00Z";
const T2: &str = "2026-11-18T08:00:00Z";

fn serve_policy(s: &Setup, signer: &SigningKey, at: &str, lists: &[(&str, &[u8])]) -> Vec<u8> {
    let body = reply(signer, kiosk_payload(at), filter_payload(at, lists));
    s.api.set(policy_path().as_str(), 200, body.clone());
    for (name, bytes) in lists {
        s.api.set(&routes::device_list(name), 200, bytes.to_vec());
    }
    body
}

fn bundles(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let reply = PolicyReply::from_json(body).unwrap();
    (serde_json::to_vec(&reply.kiosk).unwrap(), serde_json::to_vec(&reply.filter).unwrap())
}

#[tokio::test]
async fn a_good_policy_is_written_with_its_lists_and_fetched_again_only_when_it_changed() {
    let mut s = setup();
    let adult = list_bytes("adult");
    let iwf = list_bytes("iwf");
    let body = serve_policy(&s, &key(1), T1, &[("adult", &adult), ("iwf", &iwf)]);
    let Fetched::Updated(installed) = s.fetcher.fetch_once(&credential()).await.unwrap() else {
        panic!("not updated")
    };
    let kiosk = &installed.kiosk;
    assert_eq!(kiosk.issued_at, Some(T1.parse().unwrap()));
    assert_eq!(installed.staff.staff[0].id.as_str(), "s-jones");
    assert_eq!(
        s.api.asked(),
        [policy_path().as_str(), "/api/v1/device/lists/adult", "/api/v1/device/lists/iwf"]
    );
    let (kiosk_json, filter_json) = bundles(&body);
    assert_eq!(std::fs::read(s.files.kiosk()).unwrap(), kiosk_json);
    assert_eq!(std::fs::read(s.files.filter()).unwrap(), filter_json);
    assert_eq!(std::fs::read(s.files.list_file(&ListFile::of(&adult))).unwrap(), adult);
    assert_eq!(std::fs::read(s.files.list_file(&ListFile::of(&iwf))).unwrap(), iwf);
    // The staff PINs are apart from the policy the kiosk user reads, for slated alone.
    let reply = PolicyReply::from_json(&body).unwrap();
    assert_eq!(std::fs::read(s.files.staff()).unwrap(), serde_json::to_vec(&reply.staff).unwrap());
    assert!(!s.files.staff().starts_with(&s.files.dir), "not in policy/");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.files.staff()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for readable in [s.files.kiosk(), s.files.filter()] {
        let text = std::fs::read_to_string(&readable).unwrap();
        assert!(!text.contains("argon2") && !text.contains("pin_hash"), "{}", readable.display());
    }
    // The written files are what a restarted slated trusts.
    let loaded = s.files.load(&key(1).verifying_key());
    assert_eq!(&loaded.in_force, s.fetcher.in_force());
    assert_eq!(loaded.kiosk.as_ref(), Some(kiosk));
    assert_eq!(loaded.staff.as_ref(), Some(&installed.staff));

    // The same policy again: nothing fetched beyond the policy, nothing written.
    assert_eq!(s.fetcher.fetch_once(&credential()).await, Ok(Fetched::Unchanged));
    assert_eq!(s.api.asked(), [policy_path().as_str()]);

    // A newer one: only the list that changed is fetched.
    let adult2 = list_bytes("adult2");
    serve_policy(&s, &key(1), T2, &[("adult", &adult2), ("iwf", &iwf)]);
    assert!(matches!(s.fetcher.fetch_once(&credential()).await, Ok(Fetched::Updated(_))));
    assert_eq!(s.api.asked(), [policy_path().as_str(), "/api/v1/device/lists/adult"]);
    assert_eq!(std::fs::read(s.files.list_file(&ListFile::of(&adult2))).unwrap(), adult2);
    // The old adult list went once the new filter.json was in force.
    assert_eq!(list_dir(&s), file_names(&[&adult2, &iwf]));
}

/// The file names in the lists directory, sorted.
fn list_dir(s: &Setup) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(s.files.lists_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn file_names(lists: &[&[u8]]) -> Vec<String> {
    let mut names: Vec<String> = lists.iter().map(|b| ListFile::of(b).file_name()).collect();
    names.sort();
    names
}

/// What slate-dns needs of the files: `filter.json` verifies and every list file it names is
/// there and matches. Returns its `issued_at`.
fn filter_in_force_loads(s: &Setup) -> DateTime<Utc> {
    let bytes = std::fs::read(s.files.filter()).unwrap();
    let head = open_filter(&bytes, &key(1).verifying_key(), Source::Cache).unwrap();
    for (name, file) in &head.lists {
        let mut stored = Vec::new();
        use std::io::Read;
        slate_ipc::state_dir::open_list(&s.files.lists_dir(), name, file)
            .unwrap_or_else(|e| panic!("list {name}: {e}"))
            .read_to_end(&mut stored)
            .unwrap();
        check_list(name, file, &stored).unwrap();
    }
    head.issued_at
}

#[test]
fn lists_to_fetch_are_those_not_stored_by_content() {
    let (a, b, c) = (ListFile::of(b"a\n"), ListFile::of(b"b\n"), ListFile::of(b"c\n"));
    let manifest = |entries: &[(&str, &ListFile)]| -> BTreeMap<String, ListFile> {
        entries.iter().map(|(n, f)| (n.to_string(), (*f).clone())).collect()
    };
    let stored =
        |files: &[&ListFile]| -> BTreeSet<String> { files.iter().map(|f| f.file_name()).collect() };
    let names = |plan: Vec<(String, ListFile)>| -> Vec<String> {
        plan.into_iter().map(|(n, _)| n).collect()
    };
    // (what, the manifest, the files stored, the lists to fetch)
    type Case<'a> = (&'a str, BTreeMap<String, ListFile>, BTreeSet<String>, &'a [&'a str]);
    let cases: [Case; 5] = [
        ("first install", manifest(&[("adult", &a), ("iwf", &b)]), stored(&[]), &["adult", "iwf"]),
        ("nothing new", manifest(&[("adult", &a), ("iwf", &b)]), stored(&[&a, &b]), &[]),
        (
            "one list changed",
            manifest(&[("adult", &c), ("iwf", &b)]),
            stored(&[&a, &b]),
            &["adult"],
        ),
        ("a renamed list is already here", manifest(&[("grown-up", &a)]), stored(&[&a]), &[]),
        (
            "one content for two lists is fetched once",
            manifest(&[("x", &c), ("y", &c)]),
            stored(&[]),
            &["x"],
        ),
    ];
    for (case, manifest, stored, expected) in cases {
        assert_eq!(names(lists_to_fetch(&manifest, &stored)), expected, "{case}");
    }
}

#[tokio::test]
async fn a_crash_after_any_install_step_leaves_the_old_policy_whole_and_the_next_fetch_recovers() {
    let (adult, iwf, adult2) = (list_bytes("adult"), list_bytes("iwf"), list_bytes("adult2"));
    let t1: DateTime<Utc> = T1.parse().unwrap();
    let new_lists = |s: &Setup| {
        serve_policy(s, &key(1), T2, &[("adult", &adult2), ("iwf", &iwf)]);
    };
    // How many steps the install of T2 over T1 has.
    let steps_of = |s: &Setup, body: &[u8]| {
        let verified = verify_reply(body, &key(1).verifying_key(), s.fetcher.in_force()).unwrap();
        install_steps(&s.files, &verified, vec![(ListFile::of(&adult2), adult2.clone())])
    };
    let mut crash_points = None;
    let mut crash_after = 0;
    loop {
        let mut s = setup();
        serve_policy(&s, &key(1), T1, &[("adult", &adult), ("iwf", &iwf)]);
        s.fetcher.fetch_once(&credential()).await.unwrap();
        let body = reply(
            &key(1),
            kiosk_payload(T2),
            filter_payload(T2, &[("adult", &adult2), ("iwf", &iwf)]),
        );
        let steps = steps_of(&s, &body);
        let total = *crash_points.get_or_insert(steps.len());
        assert_eq!(steps.len(), 4, "one new list, filter.json, staff, kiosk");
        // The power goes after `crash_after` steps.
        for step in &steps[..crash_after] {
            step.apply().unwrap();
        }
        let issued_at = filter_in_force_loads(&s);
        // Before the switch the old policy is in force; from it on, the new one; never neither.
        assert_eq!(
            issued_at,
            if crash_after > 1 { T2.parse().unwrap() } else { t1 },
            "after {crash_after}"
        );
        // slated starts again: it reads what is in force and fetches.
        let loaded = s.files.load(&key(1).verifying_key());
        let mut again = PolicyFetcher::new(
            s.api.clone(),
            key(1).verifying_key(),
            s.files.clone(),
            loaded.in_force,
        );
        new_lists(&s);
        again.fetch_once(&credential()).await.unwrap();
        assert_eq!(filter_in_force_loads(&s), T2.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(
            list_dir(&s),
            file_names(&[&adult2, &iwf]),
            "after {crash_after}: garbage collected"
        );
        crash_after += 1;
        if crash_after > total {
            break;
        }
    }
}

#[tokio::test]
async fn a_failed_filter_write_keeps_the_old_lists_and_the_next_fetch_installs() {
    let mut s = setup();
    let (adult, adult2) = (list_bytes("adult"), list_bytes("adult2"));
    serve_policy(&s, &key(1), T1, &[("adult", &adult)]);
    s.fetcher.fetch_once(&credential()).await.unwrap();
    serve_policy(&s, &key(1), T2, &[("adult", &adult2)]);
    // A real failing write: the temporary file filter.json is written through cannot be made.
    let blocker = slate_ipc::atomic::temporary_beside(&s.files.filter());
    std::fs::create_dir(&blocker).unwrap();
    let err = s.fetcher.fetch_once(&credential()).await.unwrap_err();
    assert!(
        matches!(&err, PolicyFetchError::Write { path, .. } if path == &s.files.filter()),
        "{err:?}"
    );
    assert_eq!(
        filter_in_force_loads(&s),
        T1.parse::<DateTime<Utc>>().unwrap(),
        "the old policy loads"
    );
    assert_eq!(list_dir(&s), file_names(&[&adult, &adult2]), "the new file waits beside the old");
    std::fs::remove_dir(&blocker).unwrap();
    s.api.asked();
    assert!(matches!(s.fetcher.fetch_once(&credential()).await, Ok(Fetched::Updated(_))));
    assert_eq!(
        s.api.asked(),
        [policy_path().as_str()],
        "the list written before is not fetched again"
    );
    assert_eq!(filter_in_force_loads(&s), T2.parse::<DateTime<Utc>>().unwrap());
    assert_eq!(list_dir(&s), file_names(&[&adult2]));
}

#[tokio::test]
async fn an_upgraded_device_keeps_its_lists_under_their_old_names_until_it_installs() {
    let mut s = setup();
    let adult = list_bytes("adult");
    let body = serve_policy(&s, &key(1), T1, &[("adult", &adult)]);
    // What software before content addressing left: filter.json and lists/adult.txt.
    let (_, filter_json) = bundles(&body);
    write_atomic(&s.files.filter(), &filter_json).unwrap();
    write_atomic(&s.files.lists_dir().join("adult.txt"), &adult).unwrap();
    assert_eq!(filter_in_force_loads(&s), T1.parse::<DateTime<Utc>>().unwrap());
    // Its first fetch takes the list from the old file, without fetching it, and collects it.
    assert!(matches!(s.fetcher.fetch_once(&credential()).await, Ok(Fetched::Updated(_))));
    assert_eq!(s.api.asked(), [policy_path().as_str()]);
    assert_eq!(list_dir(&s), file_names(&[&adult]));
    assert_eq!(filter_in_force_loads(&s), T1.parse::<DateTime<Utc>>().unwrap());
}

/// Installs T2 then checks that `refusal` is refused and the T2 files stay as they were.
async fn refused_keeps_the_last_good(
    prepare: impl FnOnce(&Setup),
    expect: impl FnOnce(&PolicyFetchError) -> bool,
) {
    let mut s = setup();
    let adult = list_bytes("adult");
    serve_policy(&s, &key(1), T2, &[("adult", &adult)]);
    s.fetcher.fetch_once(&credential()).await.unwrap();
    // Every file the policy in force is made of, as it is on disk.
    let installed = |s: &Setup| -> Vec<Vec<u8>> {
        [
            s.files.kiosk(),
            s.files.filter(),
            s.files.list_file(&ListFile::of(&adult)),
            s.files.staff(),
        ]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
    };
    let before = installed(&s);
    let in_force = s.fetcher.in_force().clone();
    prepare(&s);
    let err = s.fetcher.fetch_once(&credential()).await.unwrap_err();
    assert!(expect(&err), "{err:?}");
    let after = installed(&s);
    assert_eq!(before, after, "the last good policy is kept");
    assert_eq!(s.fetcher.in_force(), &in_force);
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    refused_keeps_the_last_good(
        |s| {
            // Signed by another key.
            let body = reply(&key(2), kiosk_payload("2026-11-19T08:00:00Z"), filter_payload("2026-11-19T08:00:00Z", &[]));
            s.api.set(policy_path().as_str(), 200, body);
        },
        |e| matches!(e, PolicyFetchError::Bundle { which: "kiosk", reason } if reason.contains("signature")),
    )
    .await;
    refused_keeps_the_last_good(
        |s| {
            // A payload changed after signing.
            let mut reply: PolicyReply = serde_json::from_slice(&reply(
                &key(1),
                kiosk_payload(T2),
                filter_payload("2026-11-19T08:00:00Z", &[]),
            ))
            .unwrap();
            reply.filter.payload = reply.filter.payload.replace("adult", "aduls");
            s.api.set(policy_path().as_str(), 200, serde_json::to_vec(&reply).unwrap());
        },
        |e| matches!(e, PolicyFetchError::Bundle { which: "filter", .. }),
    )
    .await;
}

#[tokio::test]
async fn an_older_policy_is_refused() {
    refused_keeps_the_last_good(
        |s| {
            serve_policy(s, &key(1), T1, &[("adult", &list_bytes("old"))]);
        },
        |e| matches!(e, PolicyFetchError::Older { which: "kiosk", .. }),
    )
    .await;
    refused_keeps_the_last_good(
        |s| {
            let body = reply(&key(1), kiosk_payload(T2), filter_payload(T1, &[]));
            s.api.set(policy_path().as_str(), 200, body);
        },
        |e| matches!(e, PolicyFetchError::Older { which: "filter", .. }),
    )
    .await;
    refused_keeps_the_last_good(
        |s| {
            let body = reply_with_staff(
                &key(1),
                kiosk_payload(T2),
                filter_payload(T2, &[]),
                staff_payload(T1),
            );
            s.api.set(policy_path().as_str(), 200, body);
        },
        |e| matches!(e, PolicyFetchError::Older { which: "staff", .. }),
    )
    .await;
}

#[tokio::test]
async fn a_bad_staff_document_is_refused_by_field() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 3] = [
        (|v| v["staff"][0]["pin_hash"] = "482916".into(), "staff[0].pin_hash"),
        (|v| v["staff"][0]["id"] = "it".into(), "staff[0].id"),
        (|v| v["staff"][0]["name"] = "Mrs Jones".into(), "unknown field `name`"),
    ];
    for (edit, expected) in cases {
        refused_keeps_the_last_good(
            |s| {
                let mut staff: serde_json::Value =
                    serde_json::from_str(&staff_payload(T2)).unwrap();
                edit(&mut staff);
                let body = reply_with_staff(
                    &key(1),
                    kiosk_payload(T2),
                    filter_payload(T2, &[]),
                    staff.to_string(),
                );
                s.api.set(policy_path().as_str(), 200, body);
            },
            |e| matches!(e, PolicyFetchError::Bundle { which: "staff", reason } if reason.contains(expected)),
        )
        .await;
    }
}

#[tokio::test]
async fn a_list_that_does_not_match_its_hash_or_size_is_refused() {
    let t3 = "2026-11-19T08:00:00Z";
    refused_keeps_the_last_good(
        |s| {
            let good = list_bytes("adult3");
            serve_policy(s, &key(1), t3, &[("adult", &good)]);
            let mut evil = good.clone();
            evil[0] ^= 1;
            s.api.set("/api/v1/device/lists/adult", 200, evil);
        },
        |e| matches!(e, PolicyFetchError::List { name, reason } if name == "adult" && reason.contains("sha256")),
    )
    .await;
    refused_keeps_the_last_good(
        |s| {
            let good = list_bytes("adult3");
            serve_policy(s, &key(1), t3, &[("adult", &good)]);
            s.api.set("/api/v1/device/lists/adult", 200, good[..good.len() - 1].to_vec());
        },
        |e| matches!(e, PolicyFetchError::List { reason, .. } if reason.contains("bytes")),
    )
    .await;
    refused_keeps_the_last_good(
        |s| {
            serve_policy(s, &key(1), t3, &[("adult", &list_bytes("adult3"))]);
            s.api.set("/api/v1/device/lists/adult", 404, vec![]);
        },
        |e| *e == PolicyFetchError::Status(404),
    )
    .await;
    refused_keeps_the_last_good(
        |s| s.api.set(policy_path().as_str(), 503, vec![]),
        |e| *e == PolicyFetchError::Status(503),
    )
    .await;
    refused_keeps_the_last_good(
        |s| s.api.set(policy_path().as_str(), 200, b"{\"v\":1}".to_vec()),
        |e| matches!(e, PolicyFetchError::Reply(_)),
    )
    .await;
}

#[test]
fn a_bad_manifest_or_kiosk_payload_is_refused_by_field() {
    let k = key(1);
    let in_force = InForce::default();
    let bad_name = serde_json::json!({"v":1,"issued_at":T1,"default_profile":"x","profiles":{},
        "lists":{"../etc":{"sha256":"a".repeat(64),"bytes":1}}})
    .to_string();
    let err = verify_reply(&reply(&k, kiosk_payload(T1), bad_name), &k.verifying_key(), &in_force)
        .unwrap_err();
    assert!(
        matches!(&err, PolicyFetchError::Bundle { which: "filter", reason } if reason.contains("list")),
        "{err}"
    );
    let mut kiosk: serde_json::Value = serde_json::from_str(&kiosk_payload(T1)).unwrap();
    kiosk["sessions"]["idle_timeout_min"] = 0.into();
    let err = verify_reply(
        &reply(&k, kiosk.to_string(), filter_payload(T1, &[])),
        &k.verifying_key(),
        &in_force,
    )
    .unwrap_err();
    assert!(err.to_string().contains("sessions.idle_timeout_min"), "{err}");
    // A kiosk policy without issued_at is older than one with.
    let mut kiosk: serde_json::Value = serde_json::from_str(&kiosk_payload(T1)).unwrap();
    kiosk.as_object_mut().unwrap().remove("issued_at");
    let newer = InForce { kiosk_issued_at: Some(T1.parse().unwrap()), ..InForce::default() };
    let err = verify_reply(
        &reply(&k, kiosk.to_string(), filter_payload(T1, &[])),
        &k.verifying_key(),
        &newer,
    )
    .unwrap_err();
    assert!(matches!(err, PolicyFetchError::Older { which: "kiosk", offered: None, .. }));
}

#[test]
fn pupils_get_their_class_profile() {
    let policy = kiosk::parse_policy(kiosk::SAMPLE_POLICY).unwrap();
    let mut renamed = policy.clone();
    renamed.classes[0].name = "Oak  Class".into();
    let first = renamed.classes[0].pupils[0].id.clone();
    let second_class_pupil = policy.classes[1].pupils[0].id.clone();
    let cases = [
        (&policy, first.clone(), Some("oak")),
        (&renamed, first, Some("oak-class")),
        (&policy, second_class_pupil, Some("rowan")),
        (&policy, PupilId::new("p-nobody").unwrap(), None),
    ];
    for (policy, pupil, want) in cases {
        assert_eq!(profile_for(policy, &pupil).as_deref(), want, "{pupil}");
    }
}

#[test]
fn atomic_writes_replace_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("f.json");
    write_atomic(&path, b"one").unwrap();
    write_atomic(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f.json"], "no temporary file is left");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640, "the kiosk's group reads the policy, whatever the umask");
    assert_eq!(mode(path.parent().unwrap()), 0o750);

    let private = dir.path().join("staff.json");
    write_private(&private, b"one").unwrap();
    write_private(&private, b"two").unwrap();
    assert_eq!(std::fs::read(&private).unwrap(), b"two");
    assert_eq!(mode(&private), 0o600, "slated's alone, whatever the umask");
    assert!(!dir.path().join(".staff.json.tmp").exists());
}

#[test]
fn a_schools_own_agreement_rides_in_the_signed_kiosk_policy_and_is_optional() {
    use slate_protocol::agreement::SchoolAgreement;
    use slate_protocol::kiosk::KeyStage;
    let k = key(1);
    let open = |payload: String| {
        let bundle = SignedBundle::sign_as(BundleKind::KioskPolicy, payload, "k1", &k);
        open_kiosk(&serde_json::to_vec(&bundle).unwrap(), &k.verifying_key(), Source::Server)
    };
    // What a server older than schools' own texts sends (or one whose school has none).
    let older = open(kiosk_payload(T1)).unwrap();
    assert!(older.agreements.is_empty());
    // The school's KS2 text, version 3.
    let ours = SchoolAgreement::new(
        KeyStage::Ks2,
        3,
        "We stay safe".into(),
        vec!["We ask first.".into(), "We tell an adult.".into()],
    );
    let mut v: serde_json::Value = serde_json::from_str(&kiosk_payload(T1)).unwrap();
    v["agreements"] = serde_json::json!([ours]);
    let policy = open(v.to_string()).unwrap();
    assert_eq!(policy.agreement(KeyStage::Ks2), Some(&ours));
    // Words changed without their version name: refused, naming the field.
    v["agreements"][0]["promises"][1] = "Something else.".into();
    let err = open(v.to_string()).unwrap_err();
    assert!(err.to_string().contains("agreements[0].text_version"), "{err}");
}

/// Each bundle in each other's place: refused, naming the kind it is and the one expected.
#[test]
fn a_bundle_in_the_place_of_another_kind_is_refused() {
    let k = key(1);
    let good: PolicyReply =
        serde_json::from_slice(&reply(&k, kiosk_payload(T1), filter_payload(T1, &[]))).unwrap();
    type Place = fn(&mut PolicyReply) -> &mut SignedBundle;
    let places: [(&str, BundleKind, Place); 3] = [
        ("kiosk", BundleKind::KioskPolicy, |r| &mut r.kiosk),
        ("filter", BundleKind::FilterPolicy, |r| &mut r.filter),
        ("staff", BundleKind::StaffPins, |r| &mut r.staff),
    ];
    for (place, expected, slot) in places {
        for (_, other, from) in places.iter().filter(|(_, kind, _)| *kind != expected) {
            let mut mixed = good.clone();
            *slot(&mut mixed) = from(&mut good.clone()).clone();
            let body = serde_json::to_vec(&mixed).unwrap();
            let err = verify_reply(&body, &k.verifying_key(), &InForce::default()).unwrap_err();
            let PolicyFetchError::Bundle { which, reason } = &err else { panic!("{err}") };
            assert_eq!(*which, place, "{err}");
            assert!(
                reason.contains(&format!("is a {other}, where a {expected} was expected")),
                "{other} as {expected}: {err}"
            );
        }
    }
}

/// A server before kinds signs the payload alone and names no kind: refused from the network
/// (it could be any kind), taken from the device's own cache, which the next fetch in the
/// newer form replaces even with the same `issued_at`.
#[tokio::test]
async fn legacy_bundles_are_refused_from_the_server_and_replaced_in_the_cache() {
    let k = key(1);
    let legacy = |kiosk: String, filter: String, staff: String| PolicyReply {
        v: 1,
        kiosk: SignedBundle::sign_legacy(kiosk, "k1", &k),
        filter: SignedBundle::sign_legacy(filter, "k1", &k),
        staff: SignedBundle::sign_legacy(staff, "k1", &k),
    };
    let old = legacy(kiosk_payload(T1), filter_payload(T1, &[]), staff_payload(T1));
    let body = serde_json::to_vec(&old).unwrap();
    let err = verify_reply(&body, &k.verifying_key(), &InForce::default()).unwrap_err();
    assert!(err.to_string().contains("names no kind"), "{err}");

    // The files the release before wrote: they load, and say they are the legacy form.
    let s = setup();
    for (path, bundle) in [
        (s.files.kiosk(), &old.kiosk),
        (s.files.filter(), &old.filter),
        (s.files.staff(), &old.staff),
    ] {
        write_atomic(&path, &serde_json::to_vec(bundle).unwrap()).unwrap();
    }
    let loaded = s.files.load(&k.verifying_key());
    assert!(loaded.kiosk.is_some() && loaded.staff.is_some());
    assert!(loaded.in_force.legacy_form);
    assert_eq!(loaded.in_force.kiosk_issued_at, Some(T1.parse().unwrap()));
    let mut fetcher = PolicyFetcher::new(
        s.api.clone(),
        k.verifying_key(),
        s.files.clone(),
        loaded.in_force.clone(),
    );
    serve_policy(&s, &k, T1, &[]);
    let fetched = fetcher.fetch_once(&credential()).await.unwrap();
    assert!(matches!(fetched, Fetched::Updated(_)), "same issued_at, newer form: written");
    let cached: SignedBundle =
        serde_json::from_slice(&std::fs::read(s.files.filter()).unwrap()).unwrap();
    assert_eq!(cached.kind.as_deref(), Some("filter-policy"));
    assert!(!s.files.load(&k.verifying_key()).in_force.legacy_form);
    assert_eq!(fetcher.fetch_once(&credential()).await.unwrap(), Fetched::Unchanged);
}
