use super::decide::{GivenUp, OfferedBundle, Phase};
use super::download::{fetch, sha256_of, DownloadError};
use super::system::{FakeInstaller, FakeRebooter, InstallError, Installer, Logind, Rauc, Rebooter};
use super::*;
use crate::config::ServerConfig;
use crate::spool::Spool;
use crate::test_http::read_request;
use slate_protocol::update::UpdateState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn credential() -> Credential {
    Credential::new("c-update").unwrap()
}

fn bundle_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn offer_for(version: &str, bytes: &[u8]) -> UpdateOffer {
    UpdateOffer {
        version: version.into(),
        sha256: digest(bytes),
        bytes: bytes.len() as u64,
        reboot_after: None,
        rollout: 1,
    }
}

#[test]
fn what_each_check_answer_means() {
    let offer = offer_for("2.0", b"bundle");
    let reply = serde_json::to_vec(&UpdateReply::new(Some(offer.clone()))).unwrap();
    assert_eq!(classify_check(200, &reply), Ok(Some(offer)));
    assert_eq!(classify_check(200, br#"{"v":1}"#), Ok(None));
    assert_eq!(classify_check(404, b"not found"), Ok(None), "a server without updates");
    let bad = br#"{"v":1,"offer":{"version":"2.0","sha256":"../../etc/passwd","bytes":1}}"#;
    assert!(classify_check(200, bad).unwrap_err().contains("sha256"));
    assert!(classify_check(200, b"<html>").is_err());
    assert_eq!(classify_check(500, b""), Err("HTTP 500".into()));
    assert_eq!(classify_check(401, b""), Err("HTTP 401".into()));
}

#[test]
fn the_running_version_comes_from_the_release_file_or_slated() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("slate-release");
    std::fs::write(&release, "SLATE_VERSION=0.1.0+202612070005.bc7c1e2e72\n").unwrap();
    assert_eq!(running_version(&release), "0.1.0+202612070005.bc7c1e2e72");
    std::fs::write(&release, "SLATE_VERSION=not a version\n").unwrap();
    assert_eq!(running_version(&release), crate::SOFTWARE_VERSION);
    assert_eq!(running_version(&dir.path().join("missing")), crate::SOFTWARE_VERSION);
}

// ---- a tiny HTTP server on 127.0.0.1 that serves one bundle, honouring Range ---------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// 206 from the asked byte; 200 without a Range.
    Ranges,
    /// Always 200 with everything (a server or proxy without ranges).
    Whole,
    /// Like `Ranges`, but the first answer stops after this many bytes and the connection closes.
    CutFirstAfter(usize),
}

#[derive(Debug, Clone)]
struct Asked {
    method: String,
    path: String,
    range: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Serves `bundle` at any GET, and `check_reply` (status, body) at POST, one request per
/// connection. Returns the base URL and what was asked.
async fn bundle_server(
    bundle: Vec<u8>,
    serve: Serve,
    check_reply: (u16, Vec<u8>),
) -> (String, Arc<Mutex<Vec<Asked>>>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::<Asked>::new()));
    let log = asked.clone();
    let bundle = Arc::new(bundle);
    let check_reply = Arc::new(check_reply);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (log, bundle, check_reply) = (log.clone(), bundle.clone(), check_reply.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else { return };
                let range = request.header("range").map(str::to_owned);
                let first_get = {
                    let mut log = log.lock().unwrap();
                    let first = !log.iter().any(|a| a.method == "GET");
                    log.push(Asked {
                        method: request.method.clone(),
                        path: request.path.clone(),
                        range: range.clone(),
                        authorization: request.header("authorization").map(str::to_owned),
                        body: request.body.clone(),
                    });
                    first
                };
                if request.method == "POST" {
                    let (status, answer) = &*check_reply;
                    let head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", answer.len());
                    stream.write_all(head.as_bytes()).await.unwrap();
                    stream.write_all(answer).await.unwrap();
                    return;
                }
                let from = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.strip_suffix('-'))
                    .map(|n| n.parse::<usize>().unwrap());
                let total = bundle.len();
                let (status, start) = match (serve, from) {
                    (Serve::Whole, _) | (_, None) => ("200 OK", 0),
                    (_, Some(from)) if from >= total => {
                        let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        stream.write_all(head.as_bytes()).await.unwrap();
                        return;
                    }
                    (_, Some(from)) => ("206 Partial Content", from),
                };
                let range_header = if start > 0 || status.starts_with("206") {
                    format!("Content-Range: bytes {start}-{}/{total}\r\n", total - 1)
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n{range_header}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    total - start
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                let body = &bundle[start..];
                match serve {
                    Serve::CutFirstAfter(n) if first_get => {
                        stream.write_all(&body[..n.min(body.len())]).await.unwrap();
                        stream.flush().await.unwrap();
                        // Closed mid-body: the client sees fewer bytes than Content-Length.
                    }
                    _ => stream.write_all(body).await.unwrap(),
                }
            });
        }
    });
    (url, asked)
}

fn transport(url: &str) -> HttpTransport {
    let server = ServerConfig { url: url.into(), ca_certificate: None, enrollment_token: None };
    HttpTransport::new(&server, None).unwrap()
}

fn gets(asked: &Arc<Mutex<Vec<Asked>>>) -> Vec<Asked> {
    asked.lock().unwrap().iter().filter(|a| a.method == "GET").cloned().collect()
}

#[tokio::test]
async fn a_cut_download_resumes_from_the_part_files_length() {
    let bundle = bundle_bytes(300_000);
    let target = offer_for("2.0", &bundle);
    let (url, asked) =
        bundle_server(bundle.clone(), Serve::CutFirstAfter(100_000), (404, vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let http = transport(&url);

    let err = fetch(&http, &credential(), &target, dir.path()).await.unwrap_err();
    assert!(matches!(err, DownloadError::Cut { .. } | DownloadError::Transport(_)), "{err}");
    assert!(!err.bundle_is_bad());
    let part = dir.path().join(target.part_file());
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept <= 100_000, "what arrived is kept: {kept}");

    let path = fetch(&http, &credential(), &target, dir.path()).await.unwrap();
    assert_eq!(path, dir.path().join(target.bundle_file()));
    assert_eq!(std::fs::read(&path).unwrap(), bundle);
    assert!(!part.exists());
    let gets = gets(&asked);
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range, Some(format!("bytes={kept}-")));
    assert_eq!(gets[1].path, routes::device_update_bundle(&target.sha256));
    assert_eq!(gets[1].authorization.as_deref(), Some("Bearer c-update"));
}

#[tokio::test]
async fn a_server_without_ranges_sends_it_whole_and_the_part_starts_again() {
    let bundle = bundle_bytes(50_000);
    let target = offer_for("2.0", &bundle);
    let (url, asked) = bundle_server(bundle.clone(), Serve::Whole, (404, vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    // Half of it from an earlier try.
    std::fs::write(dir.path().join(target.part_file()), &bundle[..20_000]).unwrap();
    let path = fetch(&transport(&url), &credential(), &target, dir.path()).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bundle);
    assert_eq!(gets(&asked)[0].range.as_deref(), Some("bytes=20000-"));
}

#[tokio::test]
async fn a_whole_part_is_only_checked_and_a_longer_one_starts_again() {
    let bundle = bundle_bytes(10_000);
    let target = offer_for("2.0", &bundle);
    let (url, asked) = bundle_server(bundle.clone(), Serve::Ranges, (404, vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(target.part_file()), &bundle).unwrap();
    fetch(&transport(&url), &credential(), &target, dir.path()).await.unwrap();
    assert!(gets(&asked).is_empty(), "nothing fetched");

    let mut longer = bundle.clone();
    longer.extend_from_slice(b"junk");
    std::fs::remove_file(dir.path().join(target.bundle_file())).unwrap();
    std::fs::write(dir.path().join(target.part_file()), &longer).unwrap();
    let path = fetch(&transport(&url), &credential(), &target, dir.path()).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bundle);
    assert_eq!(gets(&asked)[0].range, None);
}

#[tokio::test]
async fn a_wrong_digest_removes_the_download_and_gives_that_bundle_up() {
    let bundle = bundle_bytes(20_000);
    let mut target = offer_for("2.0", &bundle);
    target.sha256 = digest(b"something else");
    let (url, _) = bundle_server(bundle, Serve::Ranges, (404, vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&transport(&url), &credential(), &target, dir.path()).await.unwrap_err();
    assert!(matches!(err, DownloadError::WrongDigest { .. }), "{err}");
    assert!(err.bundle_is_bad());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left");
}

#[tokio::test]
async fn more_than_offered_is_refused_and_removed() {
    let bundle = bundle_bytes(20_000);
    let mut target = offer_for("2.0", &bundle);
    target.bytes = 10_000;
    let (url, _) = bundle_server(bundle, Serve::Ranges, (404, vec![])).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&transport(&url), &credential(), &target, dir.path()).await.unwrap_err();
    assert_eq!(err, DownloadError::TooLarge(10_000));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn the_check_is_posted_with_the_credential() {
    let offer = offer_for("2.0", b"bundle");
    let reply = serde_json::to_vec(&UpdateReply::new(Some(offer.clone()))).unwrap();
    let (url, asked) = bundle_server(vec![], Serve::Ranges, (200, reply)).await;
    let check = UpdateCheck::new("1.0".into(), UpdateState::Current);
    let answer = transport(&url).check(&credential(), &check).await.unwrap();
    assert_eq!(classify_check(answer.status, &answer.body), Ok(Some(offer)));
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked[0].path, routes::DEVICE_UPDATE);
    assert_eq!(asked[0].authorization.as_deref(), Some("Bearer c-update"));
    assert_eq!(UpdateCheck::from_json(&asked[0].body).unwrap(), check);
}

// ---- RAUC and logind over a real private dbus-daemon -----------------------------------------

struct Bus {
    child: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `dbus-daemon` on a socket in a temp dir.
fn private_bus() -> Bus {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    let mut child = std::process::Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("dbus-daemon cannot be started ({e}): run scripts/setup (Debian package `dbus`)")
        });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
    Bus { child, address: line.trim().to_owned(), _dir: dir }
}

/// RAUC's installer as far as slated uses it: `InstallBundle` answers at once, and `Completed`
/// comes after, as RAUC's does; a source containing "bad" fails with a `LastError`.
struct FakeRauc {
    sources: Arc<Mutex<Vec<String>>>,
    last_error: Arc<Mutex<String>>,
}

#[zbus::interface(name = "de.pengutronix.rauc.Installer")]
impl FakeRauc {
    async fn install_bundle(
        &self,
        source: &str,
        _args: HashMap<String, zbus::OwnedVariant>,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        self.sources.lock().unwrap().push(source.to_owned());
        let failed = source.contains("bad");
        if failed {
            *self.last_error.lock().unwrap() =
                "signature verification failed: Verify error: unable to get local issuer certificate".into();
        }
        let emitter = emitter.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            FakeRauc::completed(&emitter, if failed { 1 } else { 0 }).await.unwrap();
        });
        Ok(())
    }

    #[zbus(signal)]
    async fn completed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        result: i32,
    ) -> zbus::Result<()>;

    #[zbus(property)]
    fn last_error(&self) -> String {
        self.last_error.lock().unwrap().clone()
    }
}

struct FakeLogin {
    reboots: Arc<Mutex<Vec<bool>>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogin {
    fn reboot(&self, interactive: bool) {
        self.reboots.lock().unwrap().push(interactive);
    }
}

#[tokio::test]
async fn rauc_installs_over_d_bus_and_says_why_not() {
    let bus = private_bus();
    let sources = Arc::new(Mutex::new(Vec::new()));
    let _rauc = zbus::connection::Builder::address(bus.address.as_str())
        .name("de.pengutronix.rauc")
        .serve_at("/", FakeRauc { sources: sources.clone(), last_error: Arc::default() })
        .build()
        .await
        .unwrap();
    let rauc = Rauc::at(&bus.address);
    rauc.install(Path::new("/var/lib/slate/update/good.raucb")).await.unwrap();
    let err = rauc.install(Path::new("/var/lib/slate/update/bad.raucb")).await.unwrap_err();
    let InstallError::Refused(err) = err else { panic!("{err:?}") };
    assert!(err.contains("RAUC failed (1): signature verification failed"), "{err}");
    assert_eq!(
        *sources.lock().unwrap(),
        ["/var/lib/slate/update/good.raucb", "/var/lib/slate/update/bad.raucb"]
    );
}

#[tokio::test]
async fn without_rauc_on_the_bus_the_install_fails_with_a_reason() {
    let bus = private_bus();
    let err = Rauc::at(&bus.address).install(Path::new("/x.raucb")).await.unwrap_err();
    let InstallError::Unavailable(err) = err else { panic!("{err:?}") };
    assert!(err.starts_with("RAUC over D-Bus:"), "{err}");
}

#[tokio::test]
async fn the_reboot_is_asked_of_logind() {
    let bus = private_bus();
    let reboots = Arc::new(Mutex::new(Vec::new()));
    let _logind = zbus::connection::Builder::address(bus.address.as_str())
        .name("org.freedesktop.login1")
        .serve_at("/org/freedesktop/login1", FakeLogin { reboots: reboots.clone() })
        .build()
        .await
        .unwrap();
    Logind::at(&bus.address).reboot().await.unwrap();
    assert_eq!(*reboots.lock().unwrap(), [false], "not interactive");
}

// ---- the updater with fakes ------------------------------------------------------------------

/// The offer a fake server makes, with the bundle's bytes.
type Offered = Option<(UpdateOffer, Vec<u8>)>;

/// A server with one bundle to offer (or none), in memory; records every check.
#[derive(Clone, Default)]
pub(crate) struct FakeServer {
    pub offer: Arc<Mutex<Offered>>,
    pub checks: Arc<Mutex<Vec<UpdateCheck>>>,
    /// Answer 404 to checks (a server without updates).
    pub old_server: Arc<Mutex<bool>>,
    pub fetches: Arc<Mutex<Vec<u64>>>,
}

impl UpdateServer for FakeServer {
    async fn check(&self, _: &Credential, check: &UpdateCheck) -> Result<HttpAnswer, UploadError> {
        self.checks.lock().unwrap().push(check.clone());
        if *self.old_server.lock().unwrap() {
            return Ok(HttpAnswer { status: 404, body: b"not found".to_vec() });
        }
        let offer = self.offer.lock().unwrap().as_ref().map(|(o, _)| o.clone());
        Ok(HttpAnswer::json(200, &UpdateReply::new(offer)))
    }

    async fn fetch_bundle(
        &self,
        _: &Credential,
        sha256: &str,
        from: u64,
    ) -> Result<BundleAnswer, UploadError> {
        self.fetches.lock().unwrap().push(from);
        let bytes = match &*self.offer.lock().unwrap() {
            Some((offer, bytes)) if offer.sha256 == sha256 => bytes.clone(),
            _ => return Err(UploadError::Transport("no such bundle".into())),
        };
        let (tx, chunks) = mpsc::channel(bytes.len() / 1000 + 2);
        let from = from as usize;
        for chunk in bytes[from..].chunks(1000) {
            tx.try_send(Ok(chunk.to_vec())).unwrap();
        }
        let (status, range_start) = if from > 0 { (206, Some(from as u64)) } else { (200, None) };
        Ok(BundleAnswer { status, range_start, chunks })
    }
}

pub(crate) struct UpdateRig {
    pub dir: tempfile::TempDir,
    pub server: FakeServer,
    pub installer: FakeInstaller,
    pub rebooter: FakeRebooter,
    pub settings: UpdateSettings,
}

impl UpdateRig {
    /// An enrolled device running 1.0, checking and looking again every few milliseconds, that
    /// reboots after `idle` with nobody signed in.
    pub fn new(idle: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::credential::store(dir.path(), &credential()).unwrap();
        let release = dir.path().join("slate-release");
        std::fs::write(&release, "SLATE_VERSION=1.0\n").unwrap();
        let settings = UpdateSettings {
            release_file: release,
            check_every: Duration::from_millis(20),
            first_check: Duration::ZERO,
            recheck: Duration::from_millis(10),
            idle_before_reboot: idle,
            ..UpdateSettings::new(dir.path().to_owned(), "boot-1".into())
        };
        Self {
            dir,
            server: FakeServer::default(),
            installer: FakeInstaller::default(),
            rebooter: FakeRebooter::default(),
            settings,
        }
    }

    pub fn start(
        &self,
        spool: SharedSpool,
        presence: watch::Receiver<Presence>,
    ) -> tokio::task::JoinHandle<()> {
        let updater = Updater::new(
            self.server.clone(),
            self.installer.clone(),
            self.rebooter.clone(),
            spool,
            presence,
            self.settings.clone(),
        );
        tokio::spawn(updater.run())
    }

    pub fn spool(&self) -> SharedSpool {
        SharedSpool::new(Spool::open(&self.dir.path().join("spool")).unwrap().0)
    }

    pub fn offer(&self, version: &str, bytes: Vec<u8>) -> UpdateOffer {
        let offer = offer_for(version, &bytes);
        *self.server.offer.lock().unwrap() = Some((offer.clone(), bytes));
        offer
    }

    pub fn installs(&self) -> usize {
        self.installer.installed.lock().unwrap().len()
    }

    pub fn reboots(&self) -> u32 {
        *self.rebooter.reboots.lock().unwrap()
    }

    pub fn last_check(&self) -> Option<UpdateCheck> {
        self.server.checks.lock().unwrap().last().cloned()
    }

    pub fn state(&self) -> LocalUpdate {
        load_state(&self.settings.dir())
    }

    /// Waits (bounded) until `done` holds, looking every few milliseconds.
    pub async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        for _ in 0..1000 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never happened: {what}; checks: {:?}", self.server.checks.lock().unwrap().last());
    }
}

#[tokio::test]
async fn an_older_server_offers_nothing_and_is_asked_again_quietly() {
    let rig = UpdateRig::new(Duration::ZERO);
    *rig.server.old_server.lock().unwrap() = true;
    let (_presence_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("asked three times", |r| r.server.checks.lock().unwrap().len() >= 3).await;
    task.abort();
    let check = rig.last_check().unwrap();
    assert_eq!((check.running.as_str(), check.state), ("1.0", UpdateState::Current));
    assert_eq!(rig.installs(), 0);
}

#[tokio::test]
async fn a_bundle_that_rauc_refuses_is_reported_and_not_installed_again() {
    let rig = UpdateRig::new(Duration::ZERO);
    rig.offer("2.0", bundle_bytes(5_000));
    *rig.installer.fails.lock().unwrap() =
        Some(InstallError::Refused("signature verification failed".into()));
    let (_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("failure reported", |r| {
        r.last_check().is_some_and(|c| c.state == UpdateState::Failed)
    })
    .await;
    let check = rig.last_check().unwrap();
    assert_eq!(check.target.as_deref(), Some("2.0"));
    assert_eq!(check.error.as_deref(), Some("install: signature verification failed"));
    let checks_then = rig.server.checks.lock().unwrap().len();
    rig.until("checked twice more", |r| r.server.checks.lock().unwrap().len() > checks_then + 2)
        .await;
    task.abort();
    assert_eq!(rig.installs(), 1, "not installed again");
    assert_eq!(rig.server.fetches.lock().unwrap().len(), 1, "not fetched again");
    assert_eq!(std::fs::read_dir(rig.settings.dir()).unwrap().count(), 1, "only state.json left");
}

#[tokio::test]
async fn a_rolled_back_slot_is_reported_once_slated_starts_and_never_tried_again() {
    let rig = UpdateRig::new(Duration::ZERO);
    let offer = rig.offer("2.0", bundle_bytes(5_000));
    // What the last boot left: the reboot asked for 2.0 in boot-0, and mark-good's file.
    let dir = rig.settings.dir();
    std::fs::create_dir_all(&dir).unwrap();
    let state = LocalUpdate {
        pending: Some(decide::Pending {
            target: offer.clone(),
            phase: Phase::Rebooting { boot: "boot-0".into() },
        }),
        ..LocalUpdate::default()
    };
    std::fs::write(dir.join(STATE_FILE), serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::write(dir.join(offer.sha256.clone() + ".raucb"), bundle_bytes(5_000)).unwrap();
    std::fs::write(
        dir.join(TRIAL_FAILED_FILE),
        "version=2.0\nreason=not healthy 304s after boot (missing: slated-ready server-reached)\n",
    )
    .unwrap();
    let (_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("checked three times", |r| r.server.checks.lock().unwrap().len() >= 3).await;
    task.abort();
    let check = rig.last_check().unwrap();
    assert_eq!(check.state, UpdateState::Failed);
    assert_eq!(check.target.as_deref(), Some("2.0"));
    assert_eq!(
        check.error.as_deref(),
        Some("rolled back: not healthy 304s after boot (missing: slated-ready server-reached)")
    );
    assert_eq!(rig.installs(), 0, "never installed again");
    assert!(rig.server.fetches.lock().unwrap().is_empty(), "never fetched again");
    assert_eq!(
        rig.state().given_up,
        vec![GivenUp { version: "2.0".into(), sha256: None, rollout: 1 }]
    );
    assert!(!dir.join(TRIAL_FAILED_FILE).exists(), "taken in");
    assert!(!dir.join(offer.sha256 + ".raucb").exists(), "the bundle is removed");
}

#[tokio::test]
async fn starting_on_the_new_version_finishes_the_update() {
    let rig = UpdateRig::new(Duration::ZERO);
    std::fs::write(&rig.settings.release_file, "SLATE_VERSION=2.0\n").unwrap();
    let offer = rig.offer("2.0", bundle_bytes(5_000));
    let dir = rig.settings.dir();
    std::fs::create_dir_all(&dir).unwrap();
    let state = LocalUpdate {
        pending: Some(decide::Pending {
            target: offer.clone(),
            phase: Phase::Rebooting { boot: "boot-0".into() },
        }),
        ..LocalUpdate::default()
    };
    std::fs::write(dir.join(STATE_FILE), serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::write(dir.join(offer.sha256.clone() + ".raucb"), bundle_bytes(5_000)).unwrap();
    let (_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("checked", |r| r.last_check().is_some()).await;
    task.abort();
    assert_eq!(rig.last_check().unwrap(), UpdateCheck::new("2.0".into(), UpdateState::Current));
    // Done; on trial until a later boot runs it too.
    let on_trial =
        Some(decide::OnTrial { version: "2.0".into(), boot: "boot-1".into(), rollout: 1 });
    assert_eq!(rig.state(), LocalUpdate { on_trial, ..LocalUpdate::default() });
    assert!(!dir.join(offer.sha256 + ".raucb").exists());
    assert_eq!(rig.installs(), 0);
}

#[tokio::test]
async fn a_bundle_is_downloaded_checked_and_reported_through_the_real_transport() {
    let bundle = bundle_bytes(120_000);
    let offer = offer_for("2.0", &bundle);
    let reply = serde_json::to_vec(&UpdateReply::new(Some(offer.clone()))).unwrap();
    let (url, asked) =
        bundle_server(bundle.clone(), Serve::CutFirstAfter(30_000), (200, reply)).await;
    let rig = UpdateRig::new(Duration::ZERO);
    // A pupil is signed in: it downloads, and installs nothing.
    let (_tx, presence) = watch::channel(Presence::InUse);
    let updater = Updater::new(
        transport(&url),
        rig.installer.clone(),
        rig.rebooter.clone(),
        rig.spool(),
        presence,
        rig.settings.clone(),
    );
    let task = tokio::spawn(updater.run());
    let bundle_file = rig.settings.dir().join(offer.bundle_file());
    rig.until("downloaded after the cut", |_| bundle_file.exists()).await;
    let told_downloaded = || {
        asked.lock().unwrap().iter().filter(|a| a.method == "POST").any(|a| {
            UpdateCheck::from_json(&a.body).is_ok_and(|c| c.state == UpdateState::Downloaded)
        })
    };
    rig.until("told the server", |_| told_downloaded()).await;
    task.abort();
    assert_eq!(sha256_of(&bundle_file).unwrap(), offer.sha256);
    assert_eq!(rig.installs(), 0);
    let ranges: Vec<Option<String>> = gets(&asked).into_iter().map(|a| a.range).collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert!(
        ranges[1].as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{ranges:?}"
    );
}

#[tokio::test]
async fn a_bundle_whose_digest_is_wrong_is_removed_reported_and_not_fetched_again() {
    let rig = UpdateRig::new(Duration::ZERO);
    let offer = rig.offer("2.0", bundle_bytes(5_000));
    // The server's bytes are not the ones it offered.
    *rig.server.offer.lock().unwrap() =
        Some((offer, bundle_bytes(4_000).repeat(2)[..5_000].to_vec()));
    let (_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("failure reported", |r| {
        r.last_check().is_some_and(|c| c.state == UpdateState::Failed)
    })
    .await;
    let checks = rig.server.checks.lock().unwrap().len();
    rig.until("checked twice more", |r| r.server.checks.lock().unwrap().len() > checks + 2).await;
    task.abort();
    let check = rig.last_check().unwrap();
    assert_eq!(check.target.as_deref(), Some("2.0"));
    assert!(check.error.as_deref().is_some_and(|e| e.contains("SHA-256")), "{check:?}");
    assert_eq!(rig.server.fetches.lock().unwrap().len(), 1, "not fetched again");
    assert_eq!(rig.installs(), 0);
    let left: Vec<_> = std::fs::read_dir(rig.settings.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["state.json"]);
}

#[tokio::test]
async fn a_new_offer_replaces_the_downloaded_one_and_its_files() {
    let rig = UpdateRig::new(Duration::ZERO);
    let v2 = rig.offer("2.0", bundle_bytes(5_000));
    // A pupil is signed in: v2 waits, downloaded.
    let (_tx, presence) = watch::channel(Presence::InUse);
    let task = rig.start(rig.spool(), presence);
    let dir = rig.settings.dir();
    let v2_file = dir.join(v2.bundle_file());
    rig.until("v2 downloaded", |_| v2_file.exists()).await;
    let v3 = rig.offer("3.0", bundle_bytes(6_000));
    let v3_file = dir.join(v3.bundle_file());
    rig.until("v3 downloaded", |_| v3_file.exists()).await;
    rig.until("told", |r| r.last_check().is_some_and(|c| c.target.as_deref() == Some("3.0"))).await;
    task.abort();
    assert!(!v2_file.exists(), "the old bundle is removed");
    assert_eq!(rig.installs(), 0);
    let check = rig.last_check().unwrap();
    assert_eq!((check.state, check.downloaded), (UpdateState::Downloaded, Some(6_000)));
}

#[tokio::test]
async fn rauc_away_is_tried_again_later_and_the_bundle_kept() {
    let rig = UpdateRig::new(Duration::ZERO);
    let offer = rig.offer("2.0", bundle_bytes(5_000));
    *rig.installer.fails.lock().unwrap() =
        Some(InstallError::Unavailable("RAUC over D-Bus: not running".into()));
    let (_tx, presence) = watch::channel(Presence::IdleSince(Instant::now()));
    let task = rig.start(rig.spool(), presence);
    rig.until("asked twice", |r| r.installs() >= 2).await;
    let check = rig.last_check().unwrap();
    assert_eq!(check.error.as_deref(), Some("install: RAUC over D-Bus: not running"));
    assert!(rig.state().given_up.is_empty(), "not given up");
    // RAUC is back: installed and rebooted.
    *rig.installer.fails.lock().unwrap() = None;
    rig.until("rebooted", |r| r.reboots() == 1).await;
    task.abort();
    assert!(rig.settings.dir().join(offer.bundle_file()).exists());
}
