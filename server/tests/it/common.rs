//! A server running in-process on 127.0.0.1:0, and helpers to talk to it as a device or staff.

use crate::postgres::TestPostgres;
use chrono::{DateTime, Duration, Utc};
use slate_protocol::{Batch, DeviceNumber, EnrollReply, Event, EventBody, PupilId, SessionId};
use slate_server::alert_outbox::OutboxTiming;
use slate_server::auth::{self, HashCost, Role};
use slate_server::config::Config;
use slate_server::data_dir::DataDir;
use slate_server::notify::Notifier;
use slate_server::update_bundles::UpdateBundles;
use slate_server::{listen, tls, AppState, Store};
use std::time::Duration as StdDuration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A guard against hangs, never a speed target.
pub const PATIENCE: StdDuration = StdDuration::from_secs(60);

pub struct TestServer {
    pub url: String,
    /// The data directory's staff key (its link works only where the config turns it on).
    pub staff_key: String,
    /// A session cookie of a DSL account made on first use, for `staff_get`.
    dsl_cookie: std::sync::OnceLock<String>,
    /// The policy key's public half, base64, as devices hold it.
    pub public_key: String,
    pub store: Store,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), slate_server::ServeError>>>,
    _dir: tempfile::TempDir,
    /// Last: dropped after the server has let go of it.
    _postgres: Option<TestPostgres>,
}

/// A client whose connections come from `127.0.0.N` (each device has its own address).
pub fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestServer {
    /// Plain HTTP on loopback.
    pub async fn start() -> Self {
        Self::start_with(false, Config::default()).await
    }

    /// Plain HTTP on loopback with other limits on connections and slow requests.
    pub async fn start_limits(limits: slate_server::ServeLimits) -> Self {
        Self::start_full(false, Config::default(), limits).await
    }

    /// HTTPS with the data directory's self-signed certificate; the client trusts only it.
    pub async fn start_tls() -> Self {
        Self::start_with(true, Config::default()).await
    }

    /// Plain HTTP with a config (alerts, the staff-key switch).
    pub async fn start_config(config: Config) -> Self {
        Self::start_with(false, config).await
    }

    /// Stops the server (gracefully) and starts it again on the same database and data
    /// directory with `config` and the alerts outbox's `timing`, as a restart of the binary
    /// would; the address changes.
    pub async fn restart(&mut self, config: Config, timing: OutboxTiming) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task).await.expect("server stops").unwrap().unwrap();
        }
        let data_dir = DataDir::open(self._dir.path().join("data")).unwrap();
        let listener = listen::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        let notifier = Notifier::from_config(&config).unwrap();
        let state = AppState::with_config(
            self.store.clone(),
            data_dir.staff_key().unwrap(),
            config,
            notifier,
        )
        .with_hash_cost(HashCost::Cheap)
        .with_policy(data_dir.policy_key().unwrap(), data_dir.lists_dir().unwrap())
        .with_updates(UpdateBundles::open(&data_dir).unwrap())
        .with_outbox_timing(timing);
        self.task = Some(tokio::spawn(slate_server::serve(listener, state, None, async {
            let _ = rx.await;
        })));
        self.shutdown = Some(tx);
        self.url = format!("http://127.0.0.1:{port}");
    }

    /// Plain HTTP on loopback, on a private PostgreSQL server whatever `SLATE_TEST_DATABASE`
    /// says (a test of PostgreSQL itself).
    pub async fn start_postgres() -> Self {
        let limits = slate_server::ServeLimits::default();
        Self::start_on(false, Config::default(), limits, Some(TestPostgres::start())).await
    }

    /// HTTPS (as [`TestServer::start_tls`]) with other limits on connections and slow requests.
    pub async fn start_tls_limits(limits: slate_server::ServeLimits) -> Self {
        Self::start_full(true, Config::default(), limits).await
    }

    async fn start_with(use_tls: bool, config: Config) -> Self {
        Self::start_full(use_tls, config, slate_server::ServeLimits::default()).await
    }

    async fn start_full(use_tls: bool, config: Config, limits: slate_server::ServeLimits) -> Self {
        let postgres = crate::postgres::requested().then(TestPostgres::start);
        Self::start_on(use_tls, config, limits, postgres).await
    }

    async fn start_on(
        use_tls: bool,
        config: Config,
        limits: slate_server::ServeLimits,
        postgres: Option<TestPostgres>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::open(dir.path().join("data")).unwrap();
        let store = match &postgres {
            Some(postgres) => postgres.store(),
            None => Store::open(&data_dir.database_path()).unwrap(),
        };
        // As the server opens it: TOTP seeds sealed with the data directory's key.
        let seal = slate_server::totp_seal::TotpSeal::new(data_dir.totp_key().unwrap());
        let store = store.with_totp_seal(seal).unwrap();
        let staff_key = data_dir.staff_key().unwrap();
        let policy_key = data_dir.policy_key().unwrap();
        let public_key =
            slate_protocol::bundle::verifying_key_to_base64(&policy_key.verifying_key());
        let lists_dir = data_dir.lists_dir().unwrap();
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
        let notifier = Notifier::from_config(&config).unwrap();
        let state = AppState::with_config(store.clone(), staff_key.clone(), config, notifier)
            .with_hash_cost(HashCost::Cheap)
            .with_policy(policy_key, lists_dir)
            .with_updates(UpdateBundles::open(&data_dir).unwrap())
            .with_limits(limits);
        let task = tokio::spawn(slate_server::serve(listener, state, tls_config, async {
            let _ = rx.await;
        }));
        Self {
            url: format!("{scheme}://127.0.0.1:{port}"),
            staff_key: staff_key.expose().to_owned(),
            dsl_cookie: std::sync::OnceLock::new(),
            public_key,
            store,
            client: client.build().unwrap(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
            _postgres: postgres,
        }
    }

    /// The PostgreSQL server's address, if the server runs on one.
    pub fn postgres_url(&self) -> Option<&str> {
        self._postgres.as_ref().map(|p| p.url.as_str())
    }

    /// The PEM of the certificate a TLS server ([`TestServer::start_tls`]) presents.
    pub fn certificate_pem(&self) -> Vec<u8> {
        std::fs::read(tls::self_signed(&self.data_dir()).unwrap().cert).unwrap()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> DataDir {
        DataDir::open(self._dir.path().join("data")).unwrap()
    }

    /// The data directory's uploaded list files.
    pub fn lists_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data").join("lists")
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

    /// GET a device endpoint with a credential.
    pub async fn device_get(&self, credential: Option<&str>, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        request.send().await.unwrap()
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

    /// The cookie of a signed-in DSL (`test.dsl`), made in the store the first time.
    pub fn dsl_cookie(&self) -> &str {
        self.dsl_cookie.get_or_init(|| {
            add_staff(&self.store, "test.dsl", Role::Dsl);
            let account = self.store.staff_by_username("test.dsl").unwrap().unwrap();
            let session = slate_server::secrets::Secret::generate();
            let csrf = slate_server::secrets::Secret::generate();
            self.store
                .create_session(&session.hash(), account.id, csrf.expose(), Utc::now())
                .unwrap();
            format!("slate_session={}", session.expose())
        })
    }

    /// GET as a signed-in DSL.
    pub async fn staff_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .header("cookie", self.dsl_cookie())
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

/// Imports a roster CSV at `now`, each pupil with a new id; returns the rows with their ids.
pub fn import_roster_csv(
    store: &Store,
    csv: &str,
    now: DateTime<Utc>,
) -> Vec<(PupilId, slate_server::roster::RosterRow)> {
    let rows = slate_server::roster::parse_roster_csv(csv).unwrap();
    let rows: Vec<_> =
        rows.into_iter().map(|r| (slate_server::roster::new_pupil_id(), r)).collect();
    store.import_roster(&rows, now).unwrap();
    rows
}

/// Two classes of one pupil each, imported at `now`: Amira Khan in Oak (KS1) and Ben Taylor in
/// Ash (KS2). Returns their pupil ids (Amira's, Ben's).
pub fn two_classes(store: &Store, now: DateTime<Utc>) -> (PupilId, PupilId) {
    let rows = import_roster_csv(
        store,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nAsh,Ben,Taylor,ks2\n",
        now,
    );
    let pupil_in = |class: &str| rows.iter().find(|(_, r)| r.class == class).unwrap().0.clone();
    (pupil_in("Oak"), pupil_in("Ash"))
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
            recent_names: vec![],
            origin: slate_protocol::ReportOrigin::Button,
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

/// The password every test account gets.
pub const PASSWORD: &str = "a long test password";

/// Makes an account that has already chosen its password; returns its TOTP secret, if any.
pub fn add_staff(store: &Store, username: &str, role: Role) -> Option<String> {
    let phc = auth::hash_password(PASSWORD, HashCost::Cheap);
    let totp = role.requires_totp().then(auth::new_totp_secret);
    let id = store.save_staff(username, role, &phc, totp.as_deref(), Utc::now()).unwrap();
    store.set_password(id, &phc).unwrap();
    totp
}

/// The current TOTP code for a secret.
pub fn code(secret: &str) -> String {
    auth::totp_code(secret, auth::totp_step(Utc::now())).unwrap()
}

/// Posts a form with the page's CSRF token; returns the answer.
pub async fn submit(
    browser: &mut Browser<'_>,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = browser.page(page).await;
    let token = csrf_in(&html);
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    browser.post(action, &form).await
}

/// The value of the first `name="csrf"` field in a page.
pub fn csrf_in(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a form with a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// A browser: keeps cookies between requests, follows no redirects.
pub struct Browser<'s> {
    pub server: &'s TestServer,
    pub cookies: Vec<(String, String)>,
}

impl<'s> Browser<'s> {
    pub fn new(server: &'s TestServer) -> Self {
        Self { server, cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, content) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), content.to_owned()));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .server
            .client
            .get(format!("{}{path}", self.server.url))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .server
            .client
            .post(format!("{}{path}", self.server.url))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Uploads `file` as a browser sends a page's upload form (multipart: the page's CSRF token
    /// `csrf` first, then the file in the field `field`).
    pub async fn upload(
        &mut self,
        path: &str,
        csrf: &str,
        field: &str,
        file: &[u8],
    ) -> reqwest::Response {
        let boundary = "----slate-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"upload\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .server
            .client
            .post(format!("{}{path}", self.server.url))
            .header("cookie", self.cookie_header())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Signs in through the form; returns the answer to the POST.
    pub async fn sign_in(
        &mut self,
        username: &str,
        password: &str,
        code: &str,
    ) -> reqwest::Response {
        let form = self.page("/staff/login").await;
        let token = csrf_in(&form);
        self.post(
            "/staff/login",
            &[("username", username), ("password", password), ("code", code), ("csrf", &token)],
        )
        .await
    }

    /// A signed-in browser for a new account with this role.
    pub async fn signed_in(server: &'s TestServer, username: &str, role: Role) -> Self {
        let secret = add_staff(&server.store, username, role);
        let mut browser = Self::new(server);
        let code = secret.as_deref().map(code).unwrap_or_default();
        let response = browser.sign_in(username, PASSWORD, &code).await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        browser
    }
}

/// The text of a PDF as a reader gets it (poppler's `pdftotext`, installed by scripts/setup):
/// what the DSL files is what is checked, not the bytes.
pub fn pdf_text(pdf: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils; scripts/setup installs it)");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pdftotext read the PDF");
    String::from_utf8(out.stdout).unwrap()
}
