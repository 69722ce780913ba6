use super::*;
use crate::spool::{Spool, REJECTED_FILE};
use crate::test_http::{read_request, Received};
use std::collections::VecDeque;
use std::sync::Mutex;

fn device() -> DeviceNumber {
    DeviceNumber::new(12).unwrap()
}

fn heartbeat_event(n: u64) -> Event {
    Event::new(
        device(),
        Utc::now(),
        EventBody::Heartbeat {
            uptime_s: n,
            spool_pending: 0,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        },
    )
}

fn hello() -> Event {
    Event::new(device(), Utc::now(), EventBody::Hello { software_version: "0.1.0".into() })
}

fn test_boot() -> slate_protocol::BootId {
    slate_protocol::BootId::parse("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f").unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- pure policy -------------------------------------------------------------------------

#[test]
fn what_each_ingest_answer_means() {
    let ok = br#"{"stored":3,"duplicates":1}"#;
    let err = br#"{"error":"invalid field `events[0].url`: is not a URL"}"#;
    let cases: Vec<(u16, &[u8], IngestOutcome)> = vec![
        (200, ok, IngestOutcome::Stored(IngestReply::new(3, 1))),
        (200, b"not json", IngestOutcome::Retry("HTTP 200 with an unreadable answer".into())),
        (
            400,
            err,
            IngestOutcome::Malformed(
                "HTTP 400: invalid field `events[0].url`: is not a URL".into(),
            ),
        ),
        (400, b"", IngestOutcome::Malformed("HTTP 400".into())),
        (
            401,
            br#"{"error":"unknown credential"}"#,
            IngestOutcome::Unauthorized("HTTP 401: unknown credential".into()),
        ),
        (403, b"", IngestOutcome::Unauthorized("HTTP 403".into())),
        (413, b"", IngestOutcome::TooLarge),
        (404, b"", IngestOutcome::Retry("HTTP 404".into())),
        (429, b"", IngestOutcome::Retry("HTTP 429".into())),
        (500, b"oops", IngestOutcome::Retry("HTTP 500".into())),
        (503, br#"{"error":"busy\u0007"}"#, IngestOutcome::Retry("HTTP 503: busy".into())),
    ];
    for (status, body, expected) in cases {
        assert_eq!(classify_ingest(status, body), expected, "{status}");
    }
}

#[test]
fn what_each_enroll_answer_means() {
    let mine = br#"{"device":12,"credential":"c-abc"}"#;
    let other = br#"{"device":13,"credential":"c-abc"}"#;
    let bad_secret = br#"{"device":12,"credential":"has space"}"#;
    assert_eq!(
        classify_enroll(200, mine, device()),
        EnrollOutcome::Enrolled(Credential::new("c-abc").unwrap())
    );
    assert!(
        matches!(classify_enroll(200, other, device()), EnrollOutcome::Refused(r) if r.contains("device 13"))
    );
    assert!(matches!(classify_enroll(200, bad_secret, device()), EnrollOutcome::Refused(_)));
    assert!(matches!(classify_enroll(200, b"{}", device()), EnrollOutcome::Retry(_)));
    assert_eq!(
        classify_enroll(401, br#"{"error":"token unknown or used"}"#, device()),
        EnrollOutcome::Refused("HTTP 401: token unknown or used".into())
    );
    assert!(matches!(classify_enroll(502, b"", device()), EnrollOutcome::Retry(_)));
}

#[test]
fn backoff_doubles_within_its_bounds_and_is_jittered() {
    let (min, max) = (ms(500), ms(30_000));
    for failures in 0..64 {
        for jitter in [0.0, 0.25, 0.5, 0.999, f64::NAN, -1.0, 7.0] {
            let d = backoff(failures, min, max, jitter);
            assert!(d >= min && d <= max, "{failures} {jitter}: {d:?}");
        }
    }
    // The ceiling doubles: 1 s, 2 s, 4 s … 30 s; the delay is in its upper half.
    assert_eq!(backoff(0, min, max, 0.0), ms(500));
    assert_eq!(backoff(0, min, max, 0.5), ms(750));
    assert_eq!(backoff(1, min, max, 0.0), ms(1000));
    assert_eq!(backoff(2, min, max, 0.0), ms(2000));
    assert_eq!(backoff(10, min, max, 0.0), ms(15_000));
    assert_eq!(backoff(10, min, max, 0.5), ms(22_500));
    // Jitter spreads devices that failed together.
    assert_ne!(backoff(3, min, max, 0.1), backoff(3, min, max, 0.9));
    // A floor above the ceiling cannot panic.
    assert_eq!(backoff(3, ms(100), ms(50), 0.5), ms(100));
}

#[test]
fn jitter_stays_in_range() {
    let mut j = Jitter::seeded();
    for _ in 0..1000 {
        let x = j.next();
        assert!((0.0..1.0).contains(&x), "{x}");
    }
}

#[test]
fn batches_respect_the_count_and_the_byte_limit() {
    let events: Vec<Event> = (0..10).map(heartbeat_event).collect();
    assert_eq!(plan_batch(&events, 256, MAX_BODY_BYTES), 10);
    assert_eq!(plan_batch(&events, 4, MAX_BODY_BYTES), 4);
    assert_eq!(plan_batch(&events, 0, MAX_BODY_BYTES), 1);
    assert_eq!(plan_batch(&[], 256, MAX_BODY_BYTES), 0);
    let one = serde_json::to_vec(&events[0]).unwrap().len();
    // Room for exactly three events.
    let n = plan_batch(&events, 256, 20 + 3 * (one + 1));
    assert_eq!(n, 3);
    assert!(Batch::new(events[..3].to_vec()).to_json().len() <= 20 + 3 * (one + 1));
    // Even one event over the limit is planned (and set aside by the caller).
    assert_eq!(plan_batch(&events, 256, 10), 1);
}

// ---- the loop, against a fake transport ----------------------------------------------------

#[derive(Debug, Clone)]
enum Sent {
    Events { credential: String, batch: Batch },
    Enroll(EnrollRequest),
    ReplaceCredential { credential: String },
}

/// A scripted server: answers from the script, then "200, all stored".
#[derive(Clone, Default)]
struct FakeTransport {
    script: Arc<Mutex<VecDeque<Result<HttpAnswer, String>>>>,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl FakeTransport {
    fn then(self, answer: Result<HttpAnswer, String>) -> Self {
        self.script.lock().unwrap().push_back(answer);
        self
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn batches(&self) -> Vec<Batch> {
        self.sent()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Events { batch, .. } => Some(batch),
                Sent::Enroll(_) | Sent::ReplaceCredential { .. } => None,
            })
            .collect()
    }

    fn answer(&self, default: HttpAnswer) -> Result<HttpAnswer, UploadError> {
        match self.script.lock().unwrap().pop_front() {
            Some(Ok(a)) => Ok(a),
            Some(Err(e)) => Err(UploadError::Transport(e)),
            None => Ok(default),
        }
    }
}

impl Transport for FakeTransport {
    async fn post_events(
        &self,
        credential: &Credential,
        batch: &Batch,
    ) -> Result<HttpAnswer, UploadError> {
        // What the server would do first: decode and validate.
        let decoded = Batch::from_json(&batch.to_json()).expect("the device sends valid batches");
        self.sent
            .lock()
            .unwrap()
            .push(Sent::Events { credential: credential.expose().into(), batch: decoded });
        let n = batch.events.len() as u32;
        self.answer(HttpAnswer::json(200, &IngestReply::new(n, 0)))
    }

    async fn enroll(&self, request: &EnrollRequest) -> Result<HttpAnswer, UploadError> {
        self.sent.lock().unwrap().push(Sent::Enroll(request.clone()));
        self.answer(HttpAnswer::json(
            200,
            &EnrollReply { device: request.device, credential: "c-enrolled".into() },
        ))
    }

    async fn replace_credential(&self, credential: &Credential) -> Result<HttpAnswer, UploadError> {
        let asked_with = credential.expose().to_owned();
        self.sent.lock().unwrap().push(Sent::ReplaceCredential { credential: asked_with });
        self.answer(HttpAnswer::json(
            200,
            &EnrollReply { device: device(), credential: "c-replaced".into() },
        ))
    }
}

struct Harness {
    dir: tempfile::TempDir,
    spool: SharedSpool,
    wake: Arc<Notify>,
    enrolled: Arc<AtomicBool>,
    transport: FakeTransport,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(
        transport: FakeTransport,
        events: &[Event],
        credential: Option<&str>,
        token: Option<&str>,
    ) -> Self {
        Self::start_with_fault(transport, events, credential, token, watch::channel(None).1)
    }

    fn start_with_fault(
        transport: FakeTransport,
        events: &[Event],
        credential: Option<&str>,
        token: Option<&str>,
        button_fault: watch::Receiver<Option<slate_protocol::ButtonFault>>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(&dir.path().join("spool")).unwrap();
        for e in events {
            spool.append(e).unwrap();
        }
        let spool = SharedSpool::new(spool);
        let wake = Arc::new(Notify::new());
        let enrolled = Arc::new(AtomicBool::new(false));
        // The configuration file the token came from (enrollment removes the token line).
        let config_path = token.map(|t| {
            let path = dir.path().join("slate.toml");
            let text = format!(
                "device_number = 12\n[server]\nenrollment_token = \"{t}\"\nurl = \"https://s\"\n"
            );
            std::fs::write(&path, text).unwrap();
            path
        });
        let settings = UploadSettings {
            device: device(),
            state_dir: dir.path().to_owned(),
            enrollment_token: token.map(Secret::new),
            config_path,
            timing: UploadConfig {
                retry_min: ms(500),
                retry_max: ms(30_000),
                heartbeat: Duration::from_secs(60),
            },
        };
        let uploader = Uploader::new(
            transport.clone(),
            spool.clone(),
            wake.clone(),
            settings,
            credential.map(|c| Credential::new(c).unwrap()),
            enrolled.clone(),
        )
        .with_button_fault(button_fault)
        .with_clock(Arc::new(crate::clock::ClockWatch::open(
            Box::new(crate::clock::FakeClock::new(test_boot(), true)),
            None,
            Utc::now(),
        )));
        let task = tokio::spawn(uploader.run());
        Harness { dir, spool, wake, enrolled, transport, task }
    }

    /// Waits (in paused, virtual time) until `cond` holds.
    async fn until(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(3600);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(ms(10)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status(code: u16, error: &str) -> Result<HttpAnswer, String> {
    Ok(HttpAnswer::json(code, &ErrorReply { error: error.into() }))
}

#[tokio::test(start_paused = true)]
async fn drains_the_spool_in_batches_and_acknowledges() {
    let events: Vec<Event> = (0..300).map(heartbeat_event).collect();
    let h = Harness::start(FakeTransport::default(), &events, Some("c-1"), None);
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    let batches = h.transport.batches();
    assert_eq!(batches.iter().map(|b| b.events.len()).collect::<Vec<_>>(), vec![256, 44]);
    let sent: Vec<Event> = batches.into_iter().flat_map(|b| b.events).collect();
    assert_eq!(sent, events, "in order, each once");
    assert!(
        matches!(&h.transport.sent()[0], Sent::Events { credential, .. } if credential == "c-1")
    );
    // The file agrees.
    let (reopened, _) = Spool::open(&h.dir.path().join("spool")).unwrap();
    assert!(reopened.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_new_event_wakes_the_uploader_at_once() {
    let h = Harness::start(FakeTransport::default(), &[], Some("c-1"), None);
    tokio::time::sleep(ms(100)).await;
    assert!(h.transport.sent().is_empty());
    let e = heartbeat_event(1);
    let appended = e.clone();
    h.spool.with(move |s| s.append(&appended)).await.unwrap();
    let before = Instant::now();
    h.wake.notify_one();
    h.until("the event is uploaded", |h| h.spool.is_empty()).await;
    assert!(before.elapsed() < Duration::from_secs(1), "not after a poll interval");
    assert_eq!(h.transport.batches()[0].events, vec![e]);
}

#[tokio::test(start_paused = true)]
async fn network_errors_and_5xx_back_off_then_succeed() {
    let transport = FakeTransport::default()
        .then(Err("connection refused".into()))
        .then(status(503, "busy"))
        .then(status(500, "oops"));
    let events = vec![heartbeat_event(1), heartbeat_event(2)];
    let start = Instant::now();
    let h = Harness::start(transport, &events, Some("c-1"), None);
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    let batches = h.transport.batches();
    assert_eq!(batches.len(), 4, "three failures, then success");
    assert!(batches.iter().all(|b| b.events == events), "the same batch each time");
    // At least min + 2·min + 4·min of backoff, at most the ceilings 1 + 2 + 4 s.
    let waited = start.elapsed();
    assert!(
        waited >= ms(500 + 1000 + 2000) && waited <= ms(1000 + 2000 + 4000 + 100),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_malformed_batch_goes_to_rejected_log_and_the_rest_continues() {
    let transport = FakeTransport::default().then(status(400, "invalid field `events[0].at`"));
    let events: Vec<Event> = (0..3).map(heartbeat_event).collect();
    let h = Harness::start(transport, &events[..2], Some("c-1"), None);
    h.until("the first batch is set aside", |h| h.spool.is_empty()).await;
    let later = events[2].clone();
    h.spool.with(move |s| s.append(&later)).await.unwrap();
    h.wake.notify_one();
    h.until("the next event is uploaded", |h| {
        h.transport.batches().len() == 2 && h.spool.is_empty()
    })
    .await;
    let rejected = std::fs::read_to_string(h.dir.path().join("spool").join(REJECTED_FILE)).unwrap();
    assert_eq!(rejected.lines().count(), 2);
    assert!(rejected.contains("invalid field `events[0].at`"));
    assert_eq!(h.transport.batches()[1].events, vec![events[2].clone()]);
}

#[tokio::test(start_paused = true)]
async fn a_locally_invalid_event_is_set_aside_before_sending() {
    let bad = Event::new(
        device(),
        Utc::now(),
        EventBody::ReportFiled {
            session: None,
            pupil: None,
            app: Some("browser".into()),
            url: Some("not a url".into()),
            page_title: None,
            blank_latency_us: None,
            recent_names: vec![],
            origin: slate_protocol::ReportOrigin::Button,
        },
    );
    let good = heartbeat_event(1);
    let h = Harness::start(FakeTransport::default(), &[bad, good.clone()], Some("c-1"), None);
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    assert_eq!(h.transport.batches().len(), 1);
    assert_eq!(h.transport.batches()[0].events, vec![good]);
    let rejected = std::fs::read_to_string(h.dir.path().join("spool").join(REJECTED_FILE)).unwrap();
    assert!(rejected.contains("`url`"), "{rejected}");
}

#[tokio::test(start_paused = true)]
async fn too_large_halves_the_batch() {
    let transport = FakeTransport::default().then(Ok(HttpAnswer { status: 413, body: vec![] }));
    let events: Vec<Event> = (0..10).map(heartbeat_event).collect();
    let h = Harness::start(transport, &events, Some("c-1"), None);
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    let sizes: Vec<usize> = h.transport.batches().iter().map(|b| b.events.len()).collect();
    assert_eq!(sizes, vec![10, 5, 5]);
}

#[tokio::test(start_paused = true)]
async fn enrolls_with_the_token_then_uploads_with_the_credential() {
    let h = Harness::start(FakeTransport::default(), &[heartbeat_event(1)], None, Some("tok-1"));
    assert!(!h.enrolled.load(Ordering::Relaxed));
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    let sent = h.transport.sent();
    let Sent::Enroll(request) = &sent[0] else { panic!("{sent:?}") };
    assert_eq!((request.v, request.device, request.token.as_str()), (1, device(), "tok-1"));
    assert!(matches!(&sent[1], Sent::Events { credential, .. } if credential == "c-enrolled"));
    assert!(h.enrolled.load(Ordering::Relaxed));
    let stored = crate::credential::load(h.dir.path()).unwrap();
    assert_eq!(stored, Some(Credential::new("c-enrolled").unwrap()));
    assert_eq!(
        std::fs::read_to_string(h.dir.path().join("slate.toml")).unwrap(),
        "device_number = 12\n[server]\nurl = \"https://s\"\n",
        "the used token is gone from the configuration"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_retried_slowly_and_nothing_is_lost() {
    let transport = FakeTransport::default().then(status(401, "token unknown or used"));
    let start = Instant::now();
    let h = Harness::start(transport, &[heartbeat_event(1)], None, Some("tok-1"));
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    assert!(start.elapsed() >= ms(30_000), "waited retry_max after a refusal");
    let config = std::fs::read_to_string(h.dir.path().join("slate.toml")).unwrap();
    assert!(!config.contains("tok-1"), "removed once it worked: {config}");
    assert_eq!(h.transport.sent().len(), 3, "enroll refused, enroll, upload");
}

#[tokio::test(start_paused = true)]
async fn without_credential_or_token_events_stay_in_the_spool() {
    let h = Harness::start(FakeTransport::default(), &[heartbeat_event(1)], None, None);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(h.transport.sent().is_empty());
    assert_eq!(h.spool.len(), 1);
    assert!(!h.enrolled.load(Ordering::Relaxed));
}

#[tokio::test(start_paused = true)]
async fn a_refused_credential_triggers_re_enrollment_when_a_token_is_configured() {
    let transport = FakeTransport::default().then(status(401, "unknown credential"));
    let h = Harness::start(transport, &[heartbeat_event(1)], Some("c-old"), Some("tok-1"));
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    let sent = h.transport.sent();
    assert!(matches!(&sent[0], Sent::Events { credential, .. } if credential == "c-old"));
    assert!(matches!(&sent[1], Sent::Enroll(_)));
    assert!(matches!(&sent[2], Sent::Events { credential, .. } if credential == "c-enrolled"));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_go_straight_to_the_server_only_while_online() {
    let transport = FakeTransport::default();
    let h = Harness::start(transport, &[hello()], Some("c-1"), None);
    h.until("online", |h| h.spool.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(125)).await;
    let batches = h.transport.batches();
    assert_eq!(batches.len(), 3, "the spooled event, then two heartbeats");
    assert!(matches!(batches[0].events[0].body, EventBody::Hello { .. }));
    assert_eq!(batches[0].events[0].clock, None, "a spooled event goes as it was filed");
    for (b, uptime) in batches[1..].iter().zip([60, 120]) {
        assert_eq!(b.events.len(), 1);
        let clock = b.events[0].clock.expect("a heartbeat carries the clock evidence");
        assert_eq!((clock.boot_id, clock.synchronised), (test_boot(), true));
        assert_eq!(
            b.events[0].body,
            EventBody::Heartbeat {
                uptime_s: uptime,
                spool_pending: 0,
                button_fault: None,
                display_fault: None,
                storage_fault: None,
            }
        );
    }
    assert!(h.spool.is_empty(), "heartbeats are never spooled");
}

#[tokio::test(start_paused = true)]
async fn no_heartbeats_while_offline() {
    // Every attempt fails: the device never comes online, so it never sends a heartbeat.
    let mut transport = FakeTransport::default();
    for _ in 0..100 {
        transport = transport.then(Err("unreachable".into()));
    }
    let spooled = hello();
    let h = Harness::start(transport, std::slice::from_ref(&spooled), Some("c-1"), None);
    tokio::time::sleep(Duration::from_secs(600)).await;
    let batches = h.transport.batches();
    assert!(batches.len() > 5, "kept retrying");
    assert!(batches.iter().all(|b| b.events == vec![spooled.clone()]), "no heartbeat among them");
    assert_eq!(h.spool.len(), 1);
}

// ---- the real HTTP transport, against a tiny server on 127.0.0.1 ---------------------------

/// Serves HTTP/1.1 on 127.0.0.1:0, one request per connection, answering with `respond`.
async fn tiny_server(
    respond: impl Fn(&Received) -> (u16, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let log = log.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else { return };
                let (status, answer) = respond(&request);
                log.lock().unwrap().push(request);
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                stream.write_all(response.as_bytes()).await.unwrap();
                stream.write_all(&answer).await.unwrap();
                stream.shutdown().await.ok();
            });
        }
    });
    (url, received)
}

fn server_config(url: &str) -> ServerConfig {
    ServerConfig { url: url.into(), ca_certificate: None, enrollment_token: None }
}

#[tokio::test]
async fn http_transport_speaks_the_protocol() {
    let (url, received) = tiny_server(|r| match r.path.as_str() {
        "/api/v1/enroll" => (200, br#"{"device":12,"credential":"c-http"}"#.to_vec()),
        "/api/v1/events" => (200, br#"{"stored":1,"duplicates":0}"#.to_vec()),
        _ => (404, br#"{"error":"no such endpoint"}"#.to_vec()),
    })
    .await;
    let transport = HttpTransport::new(&server_config(&url), None).unwrap();
    let request = EnrollRequest {
        v: 1,
        device: device(),
        token: "tok".into(),
        software_version: "0.1.0".into(),
    };
    let answer = transport.enroll(&request).await.unwrap();
    let EnrollOutcome::Enrolled(credential) =
        classify_enroll(answer.status, &answer.body, device())
    else {
        panic!("{answer:?}")
    };
    let batch = Batch::new(vec![heartbeat_event(1)]);
    let answer = transport.post_events(&credential, &batch).await.unwrap();
    assert_eq!(
        classify_ingest(answer.status, &answer.body),
        IngestOutcome::Stored(IngestReply::new(1, 0))
    );

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(
        (received[0].method.as_str(), received[0].path.as_str()),
        ("POST", "/api/v1/enroll")
    );
    assert_eq!(EnrollRequest::from_json(&received[0].body).unwrap(), request);
    assert_eq!(received[0].header("authorization"), None);
    assert_eq!(
        (received[1].method.as_str(), received[1].path.as_str()),
        ("POST", "/api/v1/events")
    );
    assert_eq!(received[1].header("authorization"), Some("Bearer c-http"));
    assert_eq!(received[1].header("content-type"), Some("application/json"));
    assert_eq!(Batch::from_json(&received[1].body).unwrap(), batch);
}

#[tokio::test]
async fn http_transport_reports_a_closed_port_as_a_transport_error() {
    // Bind and drop to find a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let transport =
        HttpTransport::new(&server_config(&format!("http://127.0.0.1:{port}")), None).unwrap();
    let err = transport
        .post_events(&Credential::new("c").unwrap(), &Batch::new(vec![heartbeat_event(1)]))
        .await;
    assert!(matches!(err, Err(UploadError::Transport(_))), "{err:?}");
}

#[test]
fn a_bad_ca_certificate_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mut config = server_config("https://school.example");
    config.ca_certificate = Some(missing.clone());
    let err = HttpTransport::new(&config, None).unwrap_err().to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    config.ca_certificate = Some(garbage.clone());
    let err = HttpTransport::new(&config, None).unwrap_err().to_string();
    assert!(err.contains("no usable PEM certificate"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_say_what_is_wrong_with_the_button() {
    use slate_protocol::ButtonFault;
    let (fault_tx, fault_rx) = watch::channel(None);
    let h = Harness::start_with_fault(
        FakeTransport::default(),
        &[hello()],
        Some("c-1"),
        None,
        fault_rx,
    );
    h.until("online", |h| h.spool.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    fault_tx.send(Some(ButtonFault::Stuck)).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    fault_tx.send(None).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let faults: Vec<_> = h.transport.batches()[1..]
        .iter()
        .map(|b| match b.events[0].body {
            EventBody::Heartbeat { button_fault, .. } => button_fault,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(faults, [None, Some(ButtonFault::Stuck), None]);
}

#[tokio::test(start_paused = true)]
async fn events_the_card_cannot_take_are_uploaded_from_memory_and_heartbeats_say_so() {
    let transport = FakeTransport::default();
    let h = Harness::start(transport, &[hello()], Some("c-1"), None);
    h.until("online", |h| h.spool.is_empty()).await;
    // The card goes away under the spool (think: remounted read-only).
    std::fs::remove_dir_all(h.dir.path().join("spool")).unwrap();
    let kept = heartbeat_event(7);
    let event = kept.clone();
    assert!(h.spool.with(move |s| s.append(&event)).await.is_err(), "not on the card");
    assert_eq!(h.spool.storage_fault(), Some(slate_protocol::StorageFault::Unwritable));
    h.wake.notify_one();
    h.until("uploaded from memory", |h| h.spool.is_empty()).await;
    assert!(h.transport.batches().iter().any(|b| b.events.contains(&kept)));
    tokio::time::sleep(Duration::from_secs(61)).await;
    let last = h.transport.batches().pop().unwrap();
    let EventBody::Heartbeat { storage_fault, .. } = &last.events[0].body else {
        panic!("{last:?}")
    };
    assert_eq!(*storage_fault, Some(slate_protocol::StorageFault::Unwritable));
}

/// "Stored; and replace your credential": what the server answers once IT asked.
fn stored_and_rotate(n: u32) -> Result<HttpAnswer, String> {
    Ok(HttpAnswer::json(200, &IngestReply { rotate_credential: true, ..IngestReply::new(n, 0) }))
}

fn credentials_used(sent: &[Sent]) -> Vec<String> {
    sent.iter()
        .map(|s| match s {
            Sent::Events { credential, .. } => format!("events with {credential}"),
            Sent::Enroll(_) => "enroll".to_owned(),
            Sent::ReplaceCredential { credential } => format!("replace with {credential}"),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn asked_to_replace_its_credential_the_device_stores_the_new_one_then_uses_it() {
    let transport = FakeTransport::default().then(stored_and_rotate(1));
    let h = Harness::start(transport, &[heartbeat_event(1)], Some("c-old"), None);
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    h.until("the replacement is fetched", |h| h.transport.sent().len() == 2).await;
    let stored = crate::credential::load(h.dir.path()).unwrap();
    assert_eq!(stored, Some(Credential::new("c-replaced").unwrap()), "saved before use");

    let e = heartbeat_event(2);
    h.spool.with(move |s| s.append(&e)).await.unwrap();
    h.wake.notify_one();
    h.until("the next event is uploaded", |h| h.spool.is_empty()).await;
    assert_eq!(
        credentials_used(&h.transport.sent()),
        ["events with c-old", "replace with c-old", "events with c-replaced"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_replacement_leaves_the_old_credential_in_use_until_the_server_asks_again() {
    let transport = FakeTransport::default()
        .then(stored_and_rotate(1))
        .then(Err("connection reset".into()))
        .then(stored_and_rotate(1));
    let h = Harness::start(transport, &[heartbeat_event(1)], Some("c-old"), None);
    for n in 2..=3 {
        h.until("the spool is empty", |h| h.spool.is_empty()).await;
        let e = heartbeat_event(n);
        h.spool.with(move |s| s.append(&e)).await.unwrap();
        h.wake.notify_one();
    }
    h.until("the spool is empty", |h| h.spool.is_empty()).await;
    assert_eq!(
        credentials_used(&h.transport.sent()),
        [
            "events with c-old",
            "replace with c-old",
            "events with c-old",
            "replace with c-old",
            "events with c-replaced",
        ]
    );
    let stored = crate::credential::load(h.dir.path()).unwrap();
    assert_eq!(stored, Some(Credential::new("c-replaced").unwrap()));
}

/// A newer kind goes only to a server that said it takes it: an older one would refuse the
/// whole batch, reports and all.
#[test]
fn newer_kinds_go_only_to_a_server_that_takes_them() {
    let device = DeviceNumber::new(12).unwrap();
    let hello =
        || Event::new(device, Utc::now(), EventBody::Hello { software_version: "1".into() });
    let breach = || {
        Event::new(
            device,
            Utc::now(),
            EventBody::SecurityBreach {
                breach: slate_protocol::Breach::PinLockout {
                    wrong_pins: 5,
                    lockouts: 1,
                    locked_for_s: 60,
                },
            },
        )
    };
    let dropped = || {
        Event::new(
            device,
            Utc::now(),
            EventBody::SecurityBreach {
                breach: slate_protocol::Breach::DnsDropped { dropped: 3, over_s: 60 },
            },
        )
    };
    let (a, b, c, d) = (hello(), breach(), hello(), dropped());
    let events = [a.clone(), b.clone(), c.clone()];
    let with_dropped = [a.clone(), b.clone(), d.clone(), c.clone()];
    let new_server = vec!["security_breach".to_owned()];
    let newest_server =
        slate_protocol::NEWER_KINDS.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
    let old_server: Vec<String> = Vec::new();
    type Accepts<'a> = Option<&'a [String]>;
    let cases: [(&str, &[Event], Accepts, Gate); 9] = [
        ("not said yet: what comes before", &events, None, Gate::Send(1)),
        ("not said yet, a newer kind first: ask", &events[1..], None, Gate::Ask),
        ("a new server takes all", &events, Some(&new_server), Gate::Send(3)),
        ("an old server: set aside", &events, Some(&old_server), Gate::SetAside(vec![b.id])),
        ("only older kinds: all, whoever asks", &[a.clone(), c.clone()], None, Gate::Send(2)),
        ("nothing", &[], None, Gate::Send(0)),
        // A server that reads security_breach but not its newer case would refuse the batch.
        (
            "a newer case to a server without its word: set aside",
            &with_dropped,
            Some(&new_server),
            Gate::SetAside(vec![d.id]),
        ),
        ("a server with every word takes all", &with_dropped, Some(&newest_server), Gate::Send(4)),
        (
            "an old server: both set aside",
            &with_dropped,
            Some(&old_server),
            Gate::SetAside(vec![b.id, d.id]),
        ),
    ];
    for (what, events, accepts, gate) in cases {
        assert_eq!(gate_batch(events, accepts), gate, "{what}");
    }
}

/// A button test started with a staff PIN names the member of staff: a shape the previous
/// release's server refuses, so it goes only to a server that says `button_tested_by_staff`;
/// a test from the fleet page keeps the first release's shape and goes everywhere.
#[test]
fn a_pin_started_button_test_goes_only_to_a_server_that_takes_its_shape() {
    let device = DeviceNumber::new(12).unwrap();
    let tested = |command: Option<u64>, staff: Option<&str>| {
        let staff = staff.map(|s| slate_protocol::StaffId::new(s).unwrap());
        Event::new(device, Utc::now(), EventBody::ButtonTested { command, staff })
    };
    let (by_page, by_pin) = (tested(Some(7), None), tested(None, Some("s-1")));
    let events = [by_page.clone(), by_pin.clone()];
    let new_server: Vec<String> =
        slate_protocol::NEWER_KINDS.iter().map(|k| (*k).to_owned()).collect();
    let breach_only = vec!["security_breach".to_owned()];
    type Accepts<'a> = Option<&'a [String]>;
    let cases: [(&str, Accepts, Gate); 4] = [
        ("not said yet: the page's test goes, then ask", None, Gate::Send(1)),
        ("this release's server takes both", Some(&new_server), Gate::Send(2)),
        ("the previous release's: set aside", Some(&[]), Gate::SetAside(vec![by_pin.id])),
        ("a server with breaches only", Some(&breach_only), Gate::SetAside(vec![by_pin.id])),
    ];
    for (what, accepts, gate) in cases {
        assert_eq!(gate_batch(&events, accepts), gate, "{what}");
    }
}
