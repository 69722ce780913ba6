//! A server running in-process on 127.0.0.1:0, and helpers to talk to it as a device or staff.

use chrono::{DateTime, Duration, Utc};
use slate_protocol::{Batch, DeviceNumber, EnrollReply, Event, EventBody, PupilId, SessionId};
use slate_server::data_dir::DataDir;
use slate_server::{listen, tls, AppState, Store};
use std::time::Duration as StdDuration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A guard against hangs, never a speed target.
pub const PATIENCE: StdDuration = StdDuration::from_secs(60);

pub struct TestServer {
    pub url: String,
    pub staff_key: String,
    pub store: Store,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), slate_server::ServeError>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Plain HTTP on loopback.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// HTTPS with the data directory's self-signed certificate; the client trusts only it.
    pub async fn start_tls() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(use_tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::open(dir.path().join("data")).unwrap();
        let store = Store::open(&data_dir.database_path()).unwrap();
        let staff_key = data_dir.staff_key().unwrap();
        let listener = listen::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();

        let mut client = reqwest::Client::builder()
            .no_proxy()
            .timeout(PATIENCE)
            .redirect(reqwest::redirect::Policy::none());
        let (scheme, tls_config) = if use_tls {
            let files = tls::self_signed(&data_dir).unwrap();
            let pem = std::fs::read(&files.cert).unwrap();
            client = client.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
            ("https", Some(tls::load(&files).unwrap()))
        } else {
            ("http", None)
        };

        let (tx, rx) = oneshot::channel::<()>();
        let state = AppState::new(store.clone(), staff_key.clone());
        let task = tokio::spawn(slate_server::serve(listener, state, tls_config, async {
            let _ = rx.await;
        }));
        Self {
            url: format!("{scheme}://127.0.0.1:{port}"),
            staff_key: staff_key.expose().to_owned(),
            store,
            client: client.build().unwrap(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Asks for a graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(PATIENCE, task).await.expect("server stops").unwrap().unwrap();
    }

    pub fn token(&self, device: u16, valid_for: Duration, issued: DateTime<Utc>) -> String {
        let device = DeviceNumber::new(device.into()).unwrap();
        self.store.issue_enrollment_token(device, valid_for, issued).unwrap().expose().to_owned()
    }

    pub async fn post_enroll(&self, device: u16, token: &str) -> reqwest::Response {
        let body = serde_json::json!({"v": 1, "device": device, "token": token, "software_version": "0.1.0"});
        self.client.post(format!("{}/api/v1/enroll", self.url)).json(&body).send().await.unwrap()
    }

    /// Enrolls `device` and returns its credential.
    pub async fn enroll(&self, device: u16) -> String {
        let token = self.token(device, Duration::days(7), Utc::now());
        let response = self.post_enroll(device, &token).await;
        assert_eq!(response.status(), 200);
        let reply: EnrollReply = response.json().await.unwrap();
        assert_eq!(reply.device.get(), device);
        reply.credential
    }

    pub async fn post_events(&self, credential: Option<&str>, body: Vec<u8>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/v1/events", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        request.send().await.unwrap()
    }

    /// GET with the staff cookie.
    pub async fn staff_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .header("cookie", format!("slate_staff={}", self.staff_key))
            .send()
            .await
            .unwrap()
    }

    pub async fn staff_page(&self, path: &str) -> String {
        let response = self.staff_get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    pub async fn reports(&self) -> Vec<serde_json::Value> {
        let response = self.staff_get("/api/v1/staff/reports?limit=1000").await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

pub fn device(n: u16) -> DeviceNumber {
    DeviceNumber::new(n.into()).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn report(n: u16, pupil: Option<&str>, title: &str) -> Event {
    Event::new(
        device(n),
        at("2026-11-17T10:14:03.120Z"),
        EventBody::ReportFiled {
            session: None,
            pupil: pupil.map(|p| PupilId::new(p).unwrap()),
            app: Some("browser".into()),
            url: Some("https://example.org/upsetting".into()),
            page_title: Some(title.into()),
            blank_latency_us: Some(41_250),
        },
    )
}

pub fn session_started(n: u16, session: SessionId, pupil: &str, when: &str) -> Event {
    Event::new(
        device(n),
        at(when),
        EventBody::SessionStarted { session, pupil: PupilId::new(pupil).unwrap() },
    )
}

pub fn batch(events: Vec<Event>) -> Vec<u8> {
    Batch::new(events).to_json()
}
