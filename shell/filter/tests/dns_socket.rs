//! slate-dns's socket (profile, recent, reload) and its block events to slated, through real
//! DNS queries over UDP and TCP on loopback, real Unix sockets in a temporary directory, signed
//! policy bundles and list files on disk, and a fake slated (a `UnixListener` in the test).

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use slate_filter::notify::{self, Counts};
use slate_filter::server::{Clock, Config, DnsServer, FilterHandle, FixedUpstream, Queued};
use slate_filter::socket::{self, Reload};
use slate_filter::source::Files;
use slate_filter::Filter;
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::device::list_digest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket, UnixListener, UnixStream};
use tokio::sync::mpsc;

/// A wall clock the test moves by hand.
struct HandClock(Mutex<DateTime<Utc>>);

impl HandClock {
    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += chrono::Duration::seconds(seconds);
    }
}

impl Clock for HandClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn query(qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(qname).unwrap(), qtype));
    m.to_vec().unwrap()
}

/// A safety net so a broken server fails the test instead of hanging it; not an assertion.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("no answer within 10 s")
}

async fn udp(server: SocketAddr, qname: &str) -> ResponseCode {
    within(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&query(qname, RecordType::A), server).await.unwrap();
        let mut buf = vec![0; 4096];
        let n = socket.recv(&mut buf).await.unwrap();
        Message::from_vec(&buf[..n]).unwrap().metadata.response_code
    })
    .await
}

async fn tcp(server: SocketAddr, qname: &str) -> ResponseCode {
    within(async {
        let mut stream = TcpStream::connect(server).await.unwrap();
        let q = query(qname, RecordType::A);
        stream.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
        stream.write_all(&q).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        let mut buf = vec![0; usize::from(len)];
        stream.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap().metadata.response_code
    })
    .await
}

/// Both transports must agree; returns their answer.
async fn ask(server: SocketAddr, qname: &str) -> ResponseCode {
    let by_udp = udp(server, qname).await;
    assert_eq!(by_udp, tcp(server, qname).await, "{qname}: UDP and TCP answer alike");
    by_udp
}

const NX: ResponseCode = ResponseCode::NXDomain;
const OK: ResponseCode = ResponseCode::NoError;

/// The school server's side: signs a policy whose manifest matches the list files it writes.
struct School {
    key: SigningKey,
    dir: PathBuf,
}

impl School {
    fn policy_path(&self) -> PathBuf {
        self.dir.join("filter.json")
    }

    fn lists_dir(&self) -> PathBuf {
        self.dir.join("lists")
    }

    /// Writes `lists` as files and a policy (issued at `issued`) whose manifest matches them,
    /// signed with `signer`; `tamper` lists get a file other than the one signed for.
    fn publish(&self, issued: &str, lists: &[(&str, &str)], tamper: &[&str], signer: &SigningKey) {
        std::fs::create_dir_all(self.lists_dir()).unwrap();
        let mut manifest = serde_json::Map::new();
        for (name, text) in lists {
            manifest.insert(
                name.to_string(),
                serde_json::json!({"sha256": list_digest(text.as_bytes()), "bytes": text.len()}),
            );
            let written =
                if tamper.contains(name) { text.replace("*.", "*.x") } else { text.to_string() };
            // Stored as slated stores it: under the name the signed manifest gives.
            let stored = slate_protocol::device::ListFile::of(text.as_bytes()).file_name();
            std::fs::write(self.lists_dir().join(stored), written).unwrap();
        }
        let policy = serde_json::json!({
            "v": 1, "issued_at": issued, "default_profile": "ks2",
            "profiles": {
                "ks2": {"block_lists": ["adult"]},
                "oak": {"allow_only": ["ks1-sites"]},
            },
            "lists": manifest,
        });
        let bundle =
            SignedBundle::sign_as(BundleKind::FilterPolicy, policy.to_string(), "k1", signer);
        std::fs::write(self.policy_path(), serde_json::to_vec(&bundle).unwrap()).unwrap();
    }

    fn files(&self) -> Files {
        Files { policy: self.policy_path(), lists: self.lists_dir(), key: self.key.verifying_key() }
    }
}

const ADULT: &str = "*.adult.test\n";
const KS1: &str = "*.bbc.co.uk\n";
const IWF: &str = "*.illegal.test\nbad.bbc.co.uk\nurl-sha256:00ff\n";

/// A running slate-dns: DNS server, its socket, and the upstream answering any name.
struct Running {
    dns: SocketAddr,
    socket: PathBuf,
    handle: FilterHandle,
    events: Option<mpsc::Receiver<Queued>>,
    clock: Arc<HandClock>,
    server: DnsServer,
    upstream: FixedUpstream,
}

async fn start(school: &School, config: impl FnOnce(&mut Config)) -> Running {
    let upstream = FixedUpstream::start(
        "127.0.0.1:0".parse().unwrap(),
        Vec::new(),
        Some([192, 0, 2, 1].into()),
    )
    .await
    .unwrap();
    let files = school.files();
    let mut filter = Filter::new();
    let report = files.load_into(&mut filter).unwrap();
    assert!(report.refused.is_empty(), "{report}");
    let mut cfg = Config::new("127.0.0.1:0".parse().unwrap(), vec![upstream.local_addr()]);
    config(&mut cfg);
    let clock = Arc::new(HandClock(Mutex::new(at("2026-11-17T09:00:00Z"))));
    let (server, events) = DnsServer::start(&cfg, filter, clock.clone()).await.unwrap();
    let socket_path = school.dir.join("run/dns.sock");
    let listener = slate_ipc::listen::bind(&socket_path, None, "slate-dns").unwrap();
    let reload: Arc<dyn Reload> = Arc::new(files);
    tokio::spawn(socket::serve(listener, server.handle(), reload));
    Running {
        dns: server.local_addr(),
        socket: socket_path,
        handle: server.handle(),
        events: Some(events),
        clock,
        server,
        upstream,
    }
}

impl Running {
    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        self.upstream.shutdown().await.unwrap();
    }
}

/// One client connection to slate-dns's socket.
struct Client(BufReader<UnixStream>);

impl Client {
    async fn connect(path: &Path) -> Self {
        Self(BufReader::new(UnixStream::connect(path).await.unwrap()))
    }

    async fn send(&mut self, line: &str) -> serde_json::Value {
        within(async {
            self.0.get_mut().write_all(format!("{line}\n").as_bytes()).await.unwrap();
            let mut reply = String::new();
            self.0.read_line(&mut reply).await.unwrap();
            serde_json::from_str(&reply).unwrap()
        })
        .await
    }
}

fn school() -> (tempfile::TempDir, School) {
    let dir = tempfile::tempdir().unwrap();
    let school = School { key: SigningKey::from_bytes(&[3; 32]), dir: dir.path().to_owned() };
    (dir, school)
}

#[tokio::test]
async fn the_socket_switches_profiles_and_keeps_recent_names() {
    let (_dir, school) = school();
    school.publish(
        "2026-11-17T08:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1)],
        &[],
        &school.key,
    );
    let dns = start(&school, |_| {}).await;
    let mode = std::fs::metadata(&dns.socket).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o660);
    let mut c = Client::connect(&dns.socket).await;

    // Default profile ks2: adult blocked, anything else resolves.
    assert_eq!(ask(dns.dns, "www.adult.test.").await, NX);
    assert_eq!(ask(dns.dns, "games.test.").await, OK);
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, OK);

    // Recent: distinct names, newest first.
    let recent = c.send(r#"{"cmd":"recent"}"#).await;
    assert_eq!(
        recent,
        serde_json::json!({"ok":true,"names":["www.bbc.co.uk","games.test","www.adult.test"]})
    );

    // The termly filter check: the decision a query gets under the profile in force, with the
    // list that blocks it, and not remembered as a lookup.
    let checks = [
        ("www.adult.test", serde_json::json!("adult")),
        ("WWW.Adult.Test.", serde_json::json!("adult")),
        ("games.test", serde_json::Value::Null),
    ];
    for (name, blocked_by) in checks {
        let line = format!(r#"{{"cmd":"check","name":"{name}"}}"#);
        assert_eq!(
            c.send(&line).await,
            serde_json::json!({"ok":true,"check":{"blocked_by":blocked_by}}),
            "{name}"
        );
    }
    assert_eq!(
        c.send(r#"{"cmd":"recent"}"#).await["names"],
        serde_json::json!(["www.bbc.co.uk", "games.test", "www.adult.test"]),
        "a check is not a lookup"
    );

    // The oak class: allow-only, at once.
    assert_eq!(
        c.send(r#"{"cmd":"profile","profile":"oak"}"#).await,
        serde_json::json!({"ok":true})
    );
    assert_eq!(ask(dns.dns, "games.test.").await, NX);
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, OK);
    // A profile switch is a new session: the last pupil's names are gone.
    assert_eq!(
        c.send(r#"{"cmd":"recent"}"#).await["names"],
        serde_json::json!(["www.bbc.co.uk", "games.test"])
    );

    // Back to the default.
    assert_eq!(c.send(r#"{"cmd":"profile","profile":null}"#).await["ok"], true);
    assert_eq!(ask(dns.dns, "games.test.").await, OK);
    assert_eq!(ask(dns.dns, "www.adult.test.").await, NX);

    // Forgotten after 120 s: names seen at t=0, t=60 and t=100 read at t=121 and later.
    assert_eq!(c.send(r#"{"cmd":"profile","profile":"ks2"}"#).await["ok"], true);
    udp(dns.dns, "first.test.").await;
    dns.clock.advance(60);
    udp(dns.dns, "second.test.").await;
    dns.clock.advance(40);
    udp(dns.dns, "third.test.").await;
    udp(dns.dns, "FIRST.test.").await; // looked up again: fresh and first
    dns.clock.advance(21);
    assert_eq!(
        c.send(r#"{"cmd":"recent"}"#).await["names"],
        serde_json::json!(["first.test", "third.test", "second.test"])
    );
    dns.clock.advance(60);
    assert_eq!(
        c.send(r#"{"cmd":"recent"}"#).await["names"],
        serde_json::json!(["first.test", "third.test"])
    );
    dns.clock.advance(100);
    assert_eq!(c.send(r#"{"cmd":"recent"}"#).await["names"], serde_json::json!([]));

    // At most 20 names.
    for i in 0..25 {
        udp(dns.dns, &format!("n{i}.test.")).await;
    }
    let names = c.send(r#"{"cmd":"recent"}"#).await["names"].as_array().unwrap().clone();
    assert_eq!(names.len(), 20);
    assert_eq!(names[0], "n24.test");
    assert_eq!(names[19], "n5.test");

    // Junk never crashes it, and the connection stays usable.
    for junk in [
        "nonsense",
        r#"{"cmd":"shutdown"}"#,
        r#"{"cmd":"profile"}"#,
        r#"{"cmd":"profile","profile":"../../etc"}"#,
        r#"["recent"]"#,
        "{\"cmd\":\"recent\",\"names\":[]}",
    ] {
        let reply = c.send(junk).await;
        assert_eq!(reply["ok"], false, "{junk}");
        assert!(reply["error"].as_str().unwrap().starts_with("bad request"), "{junk}: {reply}");
    }
    let long = format!(r#"{{"cmd":"profile","profile":"{}"}}"#, "a".repeat(2000));
    let reply = Client::connect(&dns.socket).await.send(&long).await;
    assert!(reply["error"].as_str().unwrap().contains("longer than"), "{reply}");
    assert_eq!(c.send(r#"{"cmd":"recent"}"#).await["ok"], true);

    dns.stop().await;
}

#[tokio::test]
async fn reload_takes_a_new_policy_and_refuses_a_tampered_one() {
    let (_dir, school) = school();
    let lists = [("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)];
    school.publish("2026-11-17T08:00:00Z", &lists, &[], &school.key);
    let dns = start(&school, |_| {}).await;
    let mut c = Client::connect(&dns.socket).await;
    assert_eq!(ask(dns.dns, "games.test.").await, OK);
    assert_eq!(ask(dns.dns, "x.illegal.test.").await, NX);

    // A newer policy whose adult list also has games.test.
    let adult = "*.adult.test\ngames.test\n";
    school.publish(
        "2026-11-17T09:00:00Z",
        &[("adult", adult), ("ks1-sites", KS1), ("iwf", IWF)],
        &[],
        &school.key,
    );
    assert_eq!(c.send(r#"{"cmd":"reload"}"#).await, serde_json::json!({"ok":true}));
    assert_eq!(ask(dns.dns, "games.test.").await, NX);
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, OK);

    // Signed by someone else: refused, and the policy in force stays.
    let forger = SigningKey::from_bytes(&[4; 32]);
    school.publish(
        "2026-11-17T10:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)],
        &[],
        &forger,
    );
    let reply = c.send(r#"{"cmd":"reload"}"#).await;
    assert_eq!(reply["ok"], false);
    assert!(reply["error"].as_str().unwrap().contains("signature"), "{reply}");
    assert_eq!(ask(dns.dns, "games.test.").await, NX);

    // An older policy, properly signed: refused too (no going back).
    school.publish(
        "2026-11-17T07:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)],
        &[],
        &school.key,
    );
    let reply = c.send(r#"{"cmd":"reload"}"#).await;
    assert!(reply["error"].as_str().unwrap().contains("older"), "{reply}");
    assert_eq!(ask(dns.dns, "games.test.").await, NX);

    // A good policy but list files that are not what it signed for: the adult list fails closed
    // for its profile (ks2), the IWF list stays enforced from its last good copy.
    school.publish(
        "2026-11-17T11:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)],
        &["adult", "iwf"],
        &school.key,
    );
    let reply = c.send(r#"{"cmd":"reload"}"#).await;
    assert_eq!(reply["ok"], false);
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("list adult refused") && error.contains("list iwf refused"), "{error}");
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, NX, "ks2 needs adult: fail closed");
    assert_eq!(c.send(r#"{"cmd":"profile","profile":"oak"}"#).await["ok"], true);
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, OK, "oak does not need adult");
    assert_eq!(ask(dns.dns, "bad.bbc.co.uk.").await, NX, "the last good IWF list still applies");

    // The files put right: everything back.
    school.publish(
        "2026-11-17T11:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)],
        &[],
        &school.key,
    );
    assert_eq!(c.send(r#"{"cmd":"reload"}"#).await["ok"], true);
    assert_eq!(c.send(r#"{"cmd":"profile","profile":null}"#).await["ok"], true);
    assert_eq!(ask(dns.dns, "www.bbc.co.uk.").await, OK);
    assert_eq!(ask(dns.dns, "www.adult.test.").await, NX);

    dns.stop().await;
}

/// Reads request lines from a fake slated, answering each `{"ok":true}`.
async fn fake_slated(listener: UnixListener, lines: mpsc::UnboundedSender<serde_json::Value>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let lines = lines.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read).lines();
            while let Ok(Some(line)) = read.next_line().await {
                lines.send(serde_json::from_str(&line).unwrap()).unwrap();
                write.write_all(b"{\"ok\":true}\n").await.unwrap();
            }
        });
    }
}

#[tokio::test]
async fn blocked_attempts_reach_slated_once_a_minute_per_name() {
    let (_dir, school) = school();
    school.publish(
        "2026-11-17T08:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1), ("iwf", IWF)],
        &[],
        &school.key,
    );
    let mut dns = start(&school, |_| {}).await;
    let control = school.dir.join("run/control.sock");
    let (tx, mut received) = mpsc::unbounded_channel();
    tokio::spawn(fake_slated(UnixListener::bind(&control).unwrap(), tx));
    let counts = Arc::new(Counts::default());
    let events = dns.events.take().unwrap();
    tokio::spawn(notify::forward(events, control, dns.handle.clone(), counts.clone()));

    assert_eq!(ask(dns.dns, "Video.Adult.test.").await, NX); // UDP and TCP: one event
    assert_eq!(ask(dns.dns, "x.illegal.test.").await, NX);
    assert_eq!(ask(dns.dns, "bad.bbc.co.uk.").await, NX);
    assert_eq!(
        within(received.recv()).await.unwrap(),
        serde_json::json!({"cmd":"filter_blocked","layer":"dns","target":"video.adult.test",
                           "rule":"wildcard:*.adult.test","list":"adult"})
    );
    assert_eq!(
        within(received.recv()).await.unwrap(),
        serde_json::json!({"cmd":"filter_blocked","layer":"dns","target":"x.illegal.test",
                           "rule":"wildcard:*.illegal.test","list":"iwf"})
    );
    assert_eq!(
        within(received.recv()).await.unwrap(),
        serde_json::json!({"cmd":"filter_blocked","layer":"dns","target":"bad.bbc.co.uk",
                           "rule":"exact:bad.bbc.co.uk","list":"iwf"})
    );

    // Within the minute: nothing new. After it: one more.
    dns.clock.advance(59);
    assert_eq!(udp(dns.dns, "video.adult.test.").await, NX);
    dns.clock.advance(1);
    assert_eq!(udp(dns.dns, "video.adult.test.").await, NX);
    let again = within(received.recv()).await.unwrap();
    assert_eq!(again["target"], "video.adult.test");
    assert!(received.try_recv().is_err(), "the repeat inside the minute was coalesced");
    // The count follows slated's reply, a moment after slated read the line.
    within(async {
        while counts.sent() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!((counts.sent(), counts.refused(), counts.stale()), (4, 0, 0));
    assert_eq!(dns.handle.dropped_events(), 0);
    dns.stop().await;
}

#[tokio::test]
async fn when_slated_is_away_answers_do_not_wait_and_the_queue_drops_and_counts() {
    let (_dir, school) = school();
    school.publish(
        "2026-11-17T08:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1)],
        &[],
        &school.key,
    );
    let mut dns = start(&school, |c| c.event_capacity = 2).await;
    let control = school.dir.join("run/control.sock");
    let counts = Arc::new(Counts::default());
    let events = dns.events.take().unwrap();
    tokio::spawn(notify::forward(events, control.clone(), dns.handle.clone(), counts.clone()));

    // Nobody listens on the control socket: blocked names are still answered at once.
    for i in 0..6 {
        assert_eq!(udp(dns.dns, &format!("n{i}.adult.test.")).await, NX);
    }
    // The forwarder holds at most one, the queue two: the rest were dropped and counted.
    let dropped = dns.handle.dropped_events();
    assert!((3..=4).contains(&dropped), "dropped {dropped}");

    // slated comes back: what was queued is delivered, in order.
    let (tx, mut received) = mpsc::unbounded_channel();
    tokio::spawn(fake_slated(UnixListener::bind(&control).unwrap(), tx));
    let mut targets = Vec::new();
    for _ in 0..(6 - dropped) {
        let line = within(received.recv()).await.unwrap();
        targets.push(line["target"].as_str().unwrap().to_string());
    }
    assert_eq!(targets[0], "n0.adult.test");
    assert_eq!(targets.last().unwrap(), &format!("n{}.adult.test", 5 - dropped));

    dns.stop().await;
}

#[tokio::test]
async fn events_from_before_a_profile_switch_are_not_sent() {
    let (_dir, school) = school();
    school.publish(
        "2026-11-17T08:00:00Z",
        &[("adult", ADULT), ("ks1-sites", KS1)],
        &[],
        &school.key,
    );
    let mut dns = start(&school, |_| {}).await;
    let control = school.dir.join("run/control.sock");
    let counts = Arc::new(Counts::default());
    let events = dns.events.take().unwrap();
    tokio::spawn(notify::forward(events, control.clone(), dns.handle.clone(), counts.clone()));

    // slated away while pupil A browses; then A signs out.
    assert_eq!(udp(dns.dns, "a.adult.test.").await, NX);
    assert_eq!(udp(dns.dns, "b.adult.test.").await, NX);
    let mut c = Client::connect(&dns.socket).await;
    assert_eq!(c.send(r#"{"cmd":"profile","profile":null}"#).await["ok"], true);

    let (tx, mut received) = mpsc::unbounded_channel();
    tokio::spawn(fake_slated(UnixListener::bind(&control).unwrap(), tx));
    // The same name, in the new session, is a new event.
    assert_eq!(udp(dns.dns, "a.adult.test.").await, NX);
    let line = within(received.recv()).await.unwrap();
    assert_eq!(line["target"], "a.adult.test");
    assert_eq!(counts.stale(), 2);
    assert!(received.try_recv().is_err());
    dns.stop().await;
}
