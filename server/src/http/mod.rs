//! The HTTP core every feature shares: the state handlers reach ([`AppState`]), the router built
//! from each feature's `routes()`, headers every answer carries, request logging, and running the
//! routes over TLS or plain TCP until shutdown; with [`error`] (how requests fail), [`staff`]
//! (who is asking), [`forms`] (reading forms) and [`layout`] (the page frame). Handlers live in
//! `crate::features`; this module holds no request logic of its own.

pub mod connections;
pub mod error;
pub mod forms;
pub mod layout;
pub mod paged_export;
mod passwords;
pub mod routes;
pub mod staff;

use crate::access::Gate;
use crate::auth::{HashCost, SignInThrottle};
use crate::config::Config;
use crate::features::{
    agreements, alert_settings, audit, block_requests, bypasses, commands, device_api,
    device_numbers, devices, filter_checks, filtering_log, governors, incidents, languages, pupils,
    record_incident, recovery, setup, sign_in, ssh_access, staff_accounts, updates,
};
use crate::notify::Notifier;
use crate::secrets::Secret;
use crate::store::{Store, StoreError};
use crate::tls::TlsConfig;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use connections::ServeLimits;
use routes::Routes;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How long open connections get to finish after shutdown is asked for.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// Browsers may load nothing but the page itself, its inline style and the server's own small
/// script (live updates): the pages show text that devices sent (URLs, titles), so no inline or
/// remote script may ever run, and forms post only back here.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve on the listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A new report, as the live incident list hears of it: ids and time only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveReport {
    pub incident: i64,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
    pub pressed_at: DateTime<Utc>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) staff_key: Secret,
    /// Whether cookies get `Secure`: set by [`serve`] when it serves TLS.
    pub(crate) secure_cookies: bool,
    pub(crate) config: Arc<Config>,
    pub(crate) notifier: Arc<Notifier>,
    /// Wakes the alerts outbox's worker when a report (and its alert) was stored.
    pub(crate) alerts: Arc<tokio::sync::Notify>,
    pub(crate) outbox_timing: crate::alert_outbox::OutboxTiming,
    pub(crate) live: broadcast::Sender<LiveReport>,
    /// Sign-in tries by account and address (`auth::SignInThrottle`).
    pub(crate) throttle: Arc<Mutex<SignInThrottle>>,
    /// Password hashing and checks, on threads of their own ([`passwords`]).
    pub(crate) passwords: passwords::PasswordWorkers,
    pub(crate) hash_cost: HashCost,
    /// Becomes true when shutdown starts, so endless answers (the live list) end and the
    /// server can stop without waiting out its grace period.
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// A password hash that no account has, checked when the username is unknown, so a refusal
    /// takes as long either way and does not tell which usernames exist.
    pub(crate) dummy_phc: Arc<std::sync::OnceLock<String>>,
    /// Signs what devices are told.
    pub(crate) policy_key: Arc<ed25519_dalek::SigningKey>,
    /// Uploaded filter list files (`<sha256>.txt`); `None` serves none.
    pub(crate) lists: Option<crate::list_files::ListFiles>,
    /// Moves on whenever a command is queued, waking the devices' long polls.
    pub(crate) commands: Arc<tokio::sync::watch::Sender<u64>>,
    /// Connections and slow requests ([`connections`]).
    pub(crate) limits: ServeLimits,
    /// IT's update CA and the uploaded update bundles; `None` serves no updates.
    pub(crate) updates: Option<crate::update_bundles::UpdateBundles>,
}

impl AppState {
    /// Default config: no alerts, no staff-key link.
    pub fn new(store: Store, staff_key: Secret) -> Self {
        Self::with_config(store, staff_key, Config::default(), Notifier::default())
    }

    pub fn with_config(
        store: Store,
        staff_key: Secret,
        config: Config,
        notifier: Notifier,
    ) -> Self {
        let (live, _) = broadcast::channel(64);
        Self {
            store,
            staff_key,
            secure_cookies: false,
            config: Arc::new(config),
            notifier: Arc::new(notifier),
            alerts: Arc::new(tokio::sync::Notify::new()),
            outbox_timing: crate::alert_outbox::OutboxTiming::default(),
            live,
            throttle: Arc::default(),
            passwords: passwords::PasswordWorkers::start(),
            hash_cost: HashCost::Production,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            dummy_phc: Arc::default(),
            // A key for this run only, until `with_policy` gives the data directory's.
            policy_key: Arc::new(ed25519_dalek::SigningKey::from_bytes(&rand::random())),
            lists: None,
            commands: Arc::new(tokio::sync::watch::Sender::new(0)),
            limits: ServeLimits::default(),
            updates: None,
        }
    }

    /// The data directory's update CA and bundles.
    pub fn with_updates(mut self, updates: crate::update_bundles::UpdateBundles) -> Self {
        self.updates = Some(updates);
        self
    }

    /// How the alerts outbox retries (tests retry within moments).
    pub fn with_outbox_timing(mut self, timing: crate::alert_outbox::OutboxTiming) -> Self {
        self.outbox_timing = timing;
        self
    }

    /// The data directory's policy key and list files.
    pub fn with_policy(mut self, key: ed25519_dalek::SigningKey, lists_dir: PathBuf) -> Self {
        self.policy_key = Arc::new(key);
        self.lists = Some(crate::list_files::ListFiles::new(lists_dir));
        self
    }

    /// The policy key's public half, as devices' `slate.toml` holds it.
    pub fn policy_public_key(&self) -> String {
        slate_protocol::bundle::verifying_key_to_base64(&self.policy_key.verifying_key())
    }

    /// Wakes the devices' long polls: a command was queued (a policy change queues one too).
    pub(crate) fn commands_changed(&self) {
        self.commands.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The sign-in throttle, locked (it is pure and quick: never held across an await).
    pub(crate) fn throttle(&self) -> std::sync::MutexGuard<'_, SignInThrottle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs password hashing or checking (slow on purpose) on the password threads.
    pub(crate) async fn password_work<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.passwords.run(work).await
    }

    /// Other limits on connections and slow requests (tests make them short).
    pub fn with_limits(mut self, limits: ServeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Cheap password hashing for tests (hashes verify whatever their cost).
    pub fn with_hash_cost(mut self, cost: HashCost) -> Self {
        self.hash_cost = cost;
        self
    }
}

/// Where the Updates page uploads a bundle: the one request body allowed to be large
/// (`slate_protocol::update::MAX_BUNDLE_BYTES`) and slow.
pub const BUNDLE_UPLOAD_PATH: &str = "/updates/bundle";
/// How long a bundle's upload may take (2 GiB at 10 Mbit/s is about half an hour).
const BUNDLE_UPLOAD_WITHIN: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Every route the server answers, with the gate each needs: each feature's own, and what
/// belongs to none. [`router`] is built from it; the role-matrix test walks it.
pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", Gate::Public, || async { "ok" })
        .get("/", Gate::Public, || async { Redirect::to("/reports") })
        .merge(device_api::routes())
        .merge(sign_in::routes())
        .merge(recovery::routes())
        .merge(incidents::routes())
        .merge(pupils::routes())
        .merge(record_incident::routes())
        .merge(filtering_log::routes())
        .merge(devices::routes())
        .merge(setup::routes())
        .merge(bypasses::routes())
        .merge(block_requests::routes())
        .merge(commands::routes())
        .merge(filter_checks::routes())
        .merge(ssh_access::routes())
        .merge(governors::routes())
        .merge(audit::routes())
        .merge(alert_settings::routes())
        .merge(agreements::routes())
        .merge(languages::routes())
        .merge(staff_accounts::routes())
        .merge(updates::routes())
        .merge(device_numbers::routes())
        .merge(Routes::new().get("/static/back.js", Gate::Public, error::back_js))
}

/// The server's router: [`routes()`], each behind its gate, with the headers and log every answer
/// gets.
pub fn router(state: AppState) -> Router {
    let body_within = state.limits.body;
    let https = state.secure_cookies;
    routes()
        .into_router(&state)
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(slate_protocol::MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            security_headers(request, next, https)
        }))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            // A bundle of hundreds of megabytes from IT's browser takes longer than any form.
            let within = if request.uri().path() == BUNDLE_UPLOAD_PATH {
                BUNDLE_UPLOAD_WITHIN.max(body_within)
            } else {
                body_within
            };
            let request = request
                .map(|body| axum::body::Body::new(connections::DeadlineBody::new(body, within)));
            next.run(request)
        }))
        .with_state(state)
}

/// A CSV file to download.
pub fn csv_response(filename: &str, body: Vec<u8>) -> Response {
    csv_stream_response(filename, axum::body::Body::from(body))
}

/// A CSV download whose body is written as it is read (a long export).
pub fn csv_stream_response(filename: &str, body: axum::body::Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// Served over HTTPS, browsers are told to use nothing else for a year (HSTS), so a staff
/// browser never sends its session cookie in the clear to something posing as the server.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

async fn security_headers(request: Request, next: Next, https: bool) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Reports must not linger in a shared staff-room browser's cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Logs method, path, status and time. Only the path: the query string can hold the staff key.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets open requests finish
/// (up to a grace period). With `tls`, every connection is HTTPS; without, plain HTTP (the
/// caller has checked that this is loopback only: see [`crate::listen`]).
pub async fn serve(
    listener: TcpListener,
    mut state: AppState,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    state.secure_cookies = tls.is_some();
    if let Some(lists) = state.lists.clone() {
        // Whatever a crash left between an upload's file and its row, before any device asks.
        let store = state.store.clone();
        let settled = tokio::task::spawn_blocking(move || lists.settle(&store)).await;
        match settled {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "list files not tidied; next upload"),
            Err(e) => tracing::error!(error = %e, "list files not tidied; next upload"),
        }
    }
    let closing = state.closing.clone();
    // Alerts a restart left in the outbox go first, then each new one as it is stored.
    let alerts = crate::alert_outbox::spawn_worker(
        state.store.clone(),
        state.notifier.clone(),
        state.alerts.clone(),
        state.outbox_timing,
    );
    // Silent devices and unacknowledged incidents, into the same outbox.
    let monitor = crate::alert_outbox::spawn_monitor_job(
        state.store.clone(),
        Arc::new(crate::clock_guard::SystemClock),
        state.alerts.clone(),
        crate::alert_outbox::MONITOR_EVERY,
    );
    let state_limits = state.limits;
    // The peer address feeds sign-in throttling per address.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let on_shutdown = {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            closing.send_replace(true);
            handle.graceful_shutdown(Some(GRACE_PERIOD));
        })
    };
    let limits = state_limits;
    let mut server = axum_server::from_tcp(listener)?
        .handle(handle)
        // Covers the un-timed wait while hyper tells HTTP/1 from HTTP/2.
        .first_request_timeout(limits.header_read);
    // axum-server turns hyper's header-read timeout off; it also bounds idle keep-alives.
    server.http_builder().http1().header_read_timeout(limits.header_read);
    // HTTP/2 has no header-read timeout: the first request's timeout above covers a connection
    // that never sends one, the body deadline (`router`) each stream's body, and the pings a
    // client that stops reading or answering. Fewer streams and a smaller send buffer than
    // hyper's defaults bound what one connection holds.
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(connections::H2_MAX_STREAMS)
        .max_send_buf_size(connections::H2_SEND_BUFFER_BYTES)
        .max_header_list_size(connections::H2_MAX_HEADER_LIST_BYTES)
        .keep_alive_interval(limits.h2_ping_every)
        .keep_alive_timeout(limits.h2_ping_timeout);
    let limited = connections::LimitedAcceptor::new(limits);
    let served = match tls {
        Some(TlsConfig(config)) => {
            // The TLS handshake has its own timeout (axum-server's default, 10 s).
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(config),
            )
            .acceptor(limited);
            server.acceptor(acceptor).serve(app).await
        }
        None => server.acceptor(limited).serve(app).await,
    };
    on_shutdown.abort();
    alerts.abort();
    monitor.abort();
    Ok(served?)
}
