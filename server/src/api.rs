//! The device API: enrollment and event upload, speaking `slate_protocol`'s types. It owns
//! device authentication and the mapping of failures to HTTP answers; storage is `store`'s.

use crate::secrets::{Secret, SecretHash};
use crate::server::AppState;
use crate::store::{EnrollOutcome, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use slate_protocol::{
    Batch, DeviceNumber, EnrollReply, EnrollRequest, ErrorReply, IngestReply, ProtocolError,
    MAX_BODY_BYTES,
};

/// Why a request failed. Each variant maps to one status and a short message safe to show;
/// internal causes go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    Malformed(ProtocolError),
    #[error("request body over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    UnreadableBody(String),
    #[error("no `Authorization: Bearer` credential")]
    MissingCredential,
    #[error("credential refused")]
    CredentialRefused,
    #[error("enrollment token refused ({0})")]
    EnrollmentRefused(&'static str),
    #[error("device {authenticated} sent an event for device {claimed}")]
    OtherDevice { authenticated: DeviceNumber, claimed: DeviceNumber },
    #[error("staff sign-in needed")]
    StaffOnly,
    #[error("the staff member's role may not do this")]
    Forbidden,
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(ProtocolError::TooLarge { .. }) | ApiError::TooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Malformed(_) | ApiError::UnreadableBody(_) | ApiError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MissingCredential
            | ApiError::CredentialRefused
            | ApiError::EnrollmentRefused(_)
            | ApiError::StaffOnly => StatusCode::UNAUTHORIZED,
            ApiError::OtherDevice { .. } | ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. The protocol's own messages name the bad field and carry no
    /// internals, so they are passed on; the rest are fixed phrases.
    fn public_message(&self) -> String {
        match self {
            ApiError::Malformed(e) => e.to_string(),
            ApiError::TooLarge => self.to_string(),
            ApiError::UnreadableBody(_) => "cannot read the request body".into(),
            ApiError::MissingCredential => self.to_string(),
            ApiError::CredentialRefused => self.to_string(),
            ApiError::EnrollmentRefused(_) => "enrollment token refused".into(),
            ApiError::OtherDevice { .. } => "a device may only send its own events".into(),
            ApiError::StaffOnly => {
                "staff sign-in needed: use the DSL link printed by slate-server".into()
            }
            ApiError::Forbidden => self.to_string(),
            ApiError::BadQuery(e) => e.clone(),
            ApiError::Storage(_) => "internal error; the server's log has details".into(),
        }
    }
}

impl ApiError {
    /// What the log is told. A JSON parser's message can quote the offending value, which may be
    /// a page title or a name: only the kind of fault is logged for those.
    fn log_message(&self) -> String {
        match self {
            ApiError::Malformed(ProtocolError::Malformed(_)) => {
                "malformed request: malformed JSON (details withheld from the log)".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::warn!(error = %self.log_message(), status = status.as_u16(), "request refused");
        }
        (status, Json(ErrorReply { error: self.public_message() })).into_response()
    }
}

/// The body as bytes, or the right error for one over the limit or cut short.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::UnreadableBody(rejection.body_text())
        }
    })
}

/// `POST /api/v1/enroll`: a one-time token for a credential.
pub async fn enroll(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EnrollReply>, ApiError> {
    let request = EnrollRequest::from_json(&body_bytes(body)?).map_err(ApiError::Malformed)?;
    let device = request.device;
    let credential = Secret::generate();
    let credential_hash = credential.hash();
    let outcome = state
        .store
        .run(move |store| {
            store.enroll(
                &SecretHash::of(&request.token),
                request.device,
                &credential_hash,
                &request.software_version,
                Utc::now(),
            )
        })
        .await?;
    match outcome {
        EnrollOutcome::Enrolled => {
            tracing::info!(%device, "device enrolled");
            Ok(Json(EnrollReply { device, credential: credential.expose().to_owned() }))
        }
        EnrollOutcome::Refused(why) => Err(ApiError::EnrollmentRefused(refusal_name(why))),
    }
}

fn refusal_name(why: crate::store::EnrollRefusal) -> &'static str {
    use crate::store::EnrollRefusal::*;
    match why {
        UnknownToken => "unknown token",
        Expired => "expired",
        AlreadyUsed => "already used",
        ForAnotherDevice => "issued for another device",
    }
}

/// `POST /api/v1/events`: a device's batch, stored exactly once per event id.
pub async fn ingest_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReply>, ApiError> {
    let device = authenticate_device(&state, &headers).await?;
    let batch = Batch::from_json(&body_bytes(body)?).map_err(ApiError::Malformed)?;
    check_all_from(device, &batch)?;
    let count = batch.events.len();
    let ingested = state
        .store
        .run(move |store| store.ingest_reporting(device, &batch.events, Utc::now()))
        .await?;
    let reply = ingested.reply;
    tracing::info!(%device, events = count, stored = reply.stored, duplicates = reply.duplicates, "batch ingested");
    for report in ingested.new_reports {
        announce(&state, &report);
    }
    Ok(Json(reply))
}

/// Tells the live incident lists and sends alerts, without holding up the device's answer.
fn announce(state: &AppState, report: &crate::store::NewReport) {
    let live = crate::server::LiveReport {
        incident: report.incident,
        device: report.device.get(),
        pressed_at: report.pressed_at,
    };
    // No listener is fine: nobody has the list open.
    let _ = state.live.send(live);
    let alert = crate::notify::Alert {
        incident: report.incident,
        device: report.device.get(),
        pressed_at: report.pressed_at,
    };
    let notifier = state.notifier.clone();
    tokio::spawn(async move { notifier.send(&alert).await });
}

/// A device writes only its own record: one event for another device refuses the batch.
pub fn check_all_from(device: DeviceNumber, batch: &Batch) -> Result<(), ApiError> {
    match batch.events.iter().find(|e| e.device != device) {
        Some(event) => Err(ApiError::OtherDevice { authenticated: device, claimed: event.device }),
        None => Ok(()),
    }
}

async fn authenticate_device(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<DeviceNumber, ApiError> {
    let credential = bearer_token(headers).ok_or(ApiError::MissingCredential)?;
    let hash = SecretHash::of(credential);
    state
        .store
        .run(move |store| store.authenticate(&hash))
        .await?
        .ok_or(ApiError::CredentialRefused)
}

/// The credential in `Authorization: Bearer <credential>`, if well formed.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use slate_protocol::{Event, EventBody};

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let cases = [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("Bearer ", None),
            ("Basic abc", None),
            ("abc", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers), expected, "{value:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_batch_with_another_devices_event_is_refused() {
        let d = |n| DeviceNumber::new(n).unwrap();
        let body = || EventBody::Heartbeat { uptime_s: 1, spool_pending: 0, button_fault: None };
        let batch = Batch::new(vec![
            Event::new(d(1), Utc::now(), body()),
            Event::new(d(2), Utc::now(), body()),
        ]);
        assert!(matches!(check_all_from(d(1), &batch), Err(ApiError::OtherDevice { .. })));
        let own = Batch::new(vec![Event::new(d(1), Utc::now(), body())]);
        assert!(check_all_from(d(1), &own).is_ok());
    }

    #[test]
    fn values_quoted_by_the_json_parser_stay_out_of_the_log() {
        let err =
            ApiError::Malformed(ProtocolError::Malformed("invalid type: \"Amira Khan\"".into()));
        assert!(!err.log_message().contains("Amira"));
        assert!(err.public_message().contains("Amira"), "the device may see its own input");
    }

    #[test]
    fn internal_causes_are_not_sent() {
        let err = ApiError::Storage(StoreError::Corrupt("secret table detail".into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.public_message().contains("secret"));
        let refused = ApiError::EnrollmentRefused("expired");
        assert!(!refused.public_message().contains("expired"), "no hint which tokens exist");
    }
}
