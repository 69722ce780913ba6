//! The HTTP seam: shared state, the route table, headers every answer carries, request logging,
//! and running the routes over TLS or plain TCP until shutdown. Handlers live in `api` and
//! `staff`; this module must not hold request logic of its own.

use crate::secrets::Secret;
use crate::store::Store;
use crate::tls::TlsConfig;
use crate::{api, staff};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// How long open connections get to finish after shutdown is asked for.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// Browsers may load nothing but the page itself and its inline style: the pages show text that
/// devices sent (URLs, titles), so no script or remote content may ever run from it.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve on the listener: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) staff_key: Secret,
    /// Whether cookies get `Secure`: set by [`serve`] when it serves TLS.
    pub(crate) secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Store, staff_key: Secret) -> Self {
        Self { store, staff_key, secure_cookies: false }
    }
}

/// Every route the server answers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/enroll", post(api::enroll))
        .route("/api/v1/events", post(api::ingest_events))
        .route("/api/v1/staff/reports", get(staff::reports_json))
        .route("/", get(|| async { Redirect::to("/reports") }))
        .route("/staff/login", get(staff::login))
        .route("/reports", get(staff::reports_page))
        .route("/devices/{number}", get(staff::device_page))
        .fallback(staff::not_found)
        .layer(DefaultBodyLimit::max(slate_protocol::MAX_BODY_BYTES))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
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
    let app = router(state).into_make_service();
    let handle = axum_server::Handle::new();
    let on_shutdown = {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            handle.graceful_shutdown(Some(GRACE_PERIOD));
        })
    };
    let server = axum_server::from_tcp(listener)?.handle(handle);
    let served = match tls {
        Some(TlsConfig(config)) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(config),
            );
            server.acceptor(acceptor).serve(app).await
        }
        None => server.serve(app).await,
    };
    on_shutdown.abort();
    Ok(served?)
}
