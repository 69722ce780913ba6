//! The device API: enrollment and event upload, signed policies, list files, the teacher
//! commands' long poll and updates (the check and the offered bundle's resumable download), speaking `slate_protocol`'s types; documented in `server/openapi.json`.
//! It owns device authentication; failures are `http::error::ApiError`s, storage is `store`'s.

use crate::access::Gate;
use crate::http::error::ApiError;
use crate::http::routes::{Method, Route, Routes};
use crate::http::{AppState, LiveReport};
use crate::secrets::{Secret, SecretHash};
use crate::store::{AuthenticatedDevice, EnrollOutcome, SerialLookup, Understands};
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::Request;
use axum::extract::State;
use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use chrono::Utc;
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::class_set::{NumberReply, NumberRequest};
use slate_protocol::device::{
    check_list_name, CommandsReply, PolicyReply, CAN_CHECK_FILTER, CAN_SSH_ACCESS, CAN_TEST_BUTTON,
    MAX_COMMAND_WAIT_S,
};
use slate_protocol::routes;
use slate_protocol::update::{check_sha256, UpdateCheck, UpdateReply};
use slate_protocol::{
    Batch, DeviceNumber, EnrollReply, EnrollRequest, IngestReply, PROTOCOL_VERSION,
};
use std::time::Duration;
use tower_http::services::ServeFile;

/// The device API: path, method, handler. The routes are built from this table, and a test
/// checks that `openapi.json` documents each entry, so the two cannot drift apart.
pub fn device_routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        (routes::ENROLL, "post", post(enroll)),
        (routes::ENROLL_NUMBER, "post", post(enroll_number)),
        (routes::EVENTS, "post", post(ingest_events)),
        (routes::DEVICE_POLICY, "get", get(device_policy)),
        (routes::DEVICE_LIST_ROUTE, "get", get(device_list)),
        (routes::DEVICE_COMMANDS, "get", get(device_commands)),
        (routes::DEVICE_CREDENTIAL, "post", post(replace_credential)),
        (routes::DEVICE_UPDATE, "post", post(update_check)),
        (routes::DEVICE_UPDATE_BUNDLE_ROUTE, "get", get(update_bundle)),
    ]
}

/// The device API's OpenAPI 3.1 document.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The device API's routes, and its OpenAPI document at `/api/v1/openapi.json`.
pub fn routes() -> Routes {
    device_routes()
        .into_iter()
        .fold(Routes::new(), |routes, (path, method, handler)| {
            let method = if method == "get" { Method::Get } else { Method::Post };
            routes.add(Route { method, path, gate: Gate::Device }, handler)
        })
        .get("/api/v1/openapi.json", Gate::Public, || async {
            ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
        })
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
        // Only a valid class-set token reaches this refusal: its holder may know which
        // numbers are taken, and the device's setup screen asks IT for another.
        EnrollOutcome::Refused(crate::store::EnrollRefusal::DeviceEnrolled) => {
            tracing::info!(%device, "enrollment refused: a class-set token for a number already enrolled");
            Err(ApiError::DeviceNumberTaken(device))
        }
        EnrollOutcome::Refused(why) => Err(ApiError::EnrollmentRefused(refusal_name(why))),
    }
}

/// `POST /api/v1/enroll/number`: a device with no number asks, with its class-set token, which
/// number IT's list (`slate-server device numbers`) gives its serial.
pub async fn enroll_number(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NumberReply>, ApiError> {
    let request = NumberRequest::from_json(&body_bytes(body)?).map_err(ApiError::Malformed)?;
    let lookup = state
        .store
        .run(move |store| {
            store.device_for_serial(&SecretHash::of(&request.token), &request.serial, Utc::now())
        })
        .await?;
    match lookup {
        SerialLookup::Listed(device) => {
            tracing::info!(%device, "device number given from IT's list of serials");
            Ok(Json(NumberReply { device }))
        }
        SerialLookup::NotListed => Err(ApiError::SerialNotListed),
        SerialLookup::TokenRefused => Err(ApiError::EnrollmentRefused("not a class-set token")),
    }
}

fn refusal_name(why: crate::store::EnrollRefusal) -> &'static str {
    use crate::store::EnrollRefusal::*;
    match why {
        UnknownToken => "unknown token",
        Expired => "expired",
        AlreadyUsed => "already used",
        ForAnotherDevice => "issued for another device",
        DeviceEnrolled => "a class-set token for a device number already enrolled",
        UsedUp => "a class-set token that has enrolled all its devices",
    }
}

/// `POST /api/v1/events`: a device's batch, stored exactly once per event id.
pub async fn ingest_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReply>, ApiError> {
    let authenticated = authenticate(&state, &headers).await?;
    let device = authenticated.device;
    let batch = Batch::from_json(&body_bytes(body)?).map_err(ApiError::Malformed)?;
    check_all_from(device, &batch)?;
    let count = batch.events.len();
    let ingested = state
        .store
        .run(move |store| store.ingest_reporting(device, &batch.events, Utc::now()))
        .await?;
    // This server stores and reads every newer kind (`alert_rules` raises breaches' alerts).
    let reply = IngestReply {
        rotate_credential: authenticated.rotation_requested,
        ..ingested.reply.taking_newer_kinds()
    };
    tracing::info!(%device, events = count, stored = reply.stored, duplicates = reply.duplicates, "batch ingested");
    for report in ingested.new_reports {
        announce(&state, &report);
    }
    if ingested.new_alerts > 0 {
        // An alert rule fired: its alert was queued with the events that fired it.
        state.alerts.notify_one();
    }
    Ok(Json(reply))
}

/// Tells the live incident lists, and wakes the alerts outbox's worker: the alert itself was
/// queued with the report, so it goes even if this server stops now.
fn announce(state: &AppState, report: &crate::store::NewReport) {
    let live = LiveReport {
        incident: report.incident,
        device: Some(report.device.get()),
        pressed_at: report.pressed_at,
    };
    // No listener is fine: nobody has the list open.
    let _ = state.live.send(live);
    state.alerts.notify_one();
}

/// A device writes only its own record: one event for another device refuses the batch.
pub fn check_all_from(device: DeviceNumber, batch: &Batch) -> Result<(), ApiError> {
    match batch.events.iter().find(|e| e.device != device) {
        Some(event) => Err(ApiError::OtherDevice { authenticated: device, claimed: event.device }),
        None => Ok(()),
    }
}

/// The signing key's id in bundles.
fn key_id(state: &AppState) -> String {
    crate::provision_sign::policy_key_id(&state.policy_key)
}

/// `GET /api/v1/device/policy?can=…`: the kiosk and filter policies and the staff unlock PINs,
/// built from the records now and signed, in the forms the device said it understands
/// (`device_policy::parse_policy_query`): bundles naming their kind, picture PINs as hashes;
/// the legacy forms to a device that did not say so. A kiosk policy a device would refuse (no
/// classes yet) is not sent: 503.
pub async fn device_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<PolicyReply>, ApiError> {
    use crate::device_policy::{parse_policy_query, unhashed_picture_pins};
    let device = authenticate_device(&state, &headers).await?;
    let form = parse_policy_query(query.as_deref()).map_err(ApiError::BadQuery)?;
    let read = || {
        state.store.run(|store| {
            let mut records = store.policy_records()?;
            if records.url_salt.is_none() {
                records.url_salt = Some(store.url_salt(crate::secrets::random_hex_16)?);
            }
            Ok(records)
        })
    };
    let mut records = read().await?;
    let unhashed = unhashed_picture_pins(&records);
    if form.hashed_picture_pins && !unhashed.is_empty() {
        // PINs set by a server before hashes: hashed once, stored, and read back, so two
        // devices asking at once are sent the same hash.
        let cost = state.hash_cost;
        let hashed = state
            .password_work(move || {
                unhashed
                    .into_iter()
                    .map(|(pupil, pictures)| {
                        let phc = crate::auth::hash_picture_pin(&pictures, cost);
                        (pupil, pictures, phc)
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        state.store.run(move |store| store.store_picture_pin_hashes(&hashed)).await?;
        records = read().await?;
    }
    let languages = records.languages_in_force(&state.config.languages);
    let kiosk = crate::device_policy::kiosk_payload(&records, form, languages)
        .map_err(|e| ApiError::NotReady(e.to_string()))?;
    let filter = crate::device_policy::filter_payload(&records, Utc::now());
    let staff = crate::device_policy::staff_payload(&records, form)
        .map_err(|e| ApiError::NotReady(e.to_string()))?;
    let key_id = key_id(&state);
    tracing::info!(%device, issued_at = %records.changed_at, ?form, "policy sent");
    let key = &state.policy_key;
    let sign = |kind: BundleKind, payload: String| match form.bundle_kinds {
        true => SignedBundle::sign_as(kind, payload, &key_id, key),
        false => SignedBundle::sign_legacy(payload, &key_id, key),
    };
    Ok(Json(PolicyReply {
        v: PROTOCOL_VERSION,
        kiosk: sign(BundleKind::KioskPolicy, kiosk),
        filter: sign(BundleKind::FilterPolicy, filter),
        staff: sign(BundleKind::StaffPins, staff),
    }))
}

/// `GET /api/v1/device/lists/{name}`: the list file its row names, streamed from the data
/// directory.
pub async fn device_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authenticate_device(&state, &headers).await?;
    check_list_name(&name).map_err(|e| ApiError::BadQuery(e.to_string()))?;
    let lists = state.lists.as_ref().ok_or(ApiError::NotFound)?;
    // An upload may not remove the file between the look-up and the open.
    let reading = lists.reading().await;
    let manifest = state.store.run(move |store| store.list_file(&name)).await?;
    let manifest = manifest.ok_or(ApiError::NotFound)?;
    let file = tokio::fs::File::open(lists.path(&manifest)).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::NotFound
        } else {
            ApiError::ListFile(e)
        }
    })?;
    drop(reading);
    let length = file.metadata().await.map_err(ApiError::ListFile)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response())
}

/// The commands long poll's query: `after` (default 0), `wait_s` (1 to 55, default 25) and
/// `can` (newer actions the device understands, comma-separated; names this server does not
/// know are ignored). Returns which of the newer actions (`test_button`, `check_filter`) the
/// device understands.
pub fn parse_commands_query(query: Option<&str>) -> Result<(u64, u32, Understands), String> {
    let mut after = 0u64;
    let mut wait_s = 25u32;
    let mut can = Understands::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "after" => {
                after = value.parse().map_err(|_| "after must be a whole number".to_owned())?
            }
            "wait_s" => {
                wait_s = value
                    .parse()
                    .ok()
                    .filter(|w| (1..=MAX_COMMAND_WAIT_S).contains(w))
                    .ok_or_else(|| format!("wait_s must be 1 to {MAX_COMMAND_WAIT_S}"))?
            }
            "can" => {
                can.test_button |= value.split(',').any(|c| c == CAN_TEST_BUTTON);
                can.check_filter |= value.split(',').any(|c| c == CAN_CHECK_FILTER);
                can.ssh_access |= value.split(',').any(|c| c == CAN_SSH_ACCESS);
            }
            _ => return Err("unknown query parameter (after, wait_s and can only)".to_owned()),
        }
    }
    Ok((after, wait_s, can))
}

/// `GET /api/v1/device/commands?after=N&wait_s=S`: answers as soon as there is a live command
/// for this device after cursor N, or with none after S seconds (or at shutdown).
pub async fn device_commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<CommandsReply>, ApiError> {
    let device = authenticate_device(&state, &headers).await?;
    let (after, wait_s, can) =
        parse_commands_query(query.as_deref()).map_err(ApiError::BadQuery)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_s.into());
    // Subscribed before the first look, so a command queued in between still wakes us.
    let mut changed = state.commands.subscribe();
    let mut closing = state.closing.subscribe();
    loop {
        let (commands, cursor) = state
            .store
            .run(move |store| store.commands_for(device, after, Utc::now(), can))
            .await?;
        if !commands.is_empty() {
            tracing::info!(%device, count = commands.len(), "commands sent");
            return Ok(Json(CommandsReply::new(commands, cursor)));
        }
        tokio::select! {
            woke = changed.changed() => {
                if woke.is_err() {
                    return Ok(Json(CommandsReply::new(Vec::new(), cursor)));
                }
            }
            _ = closing.wait_for(|c| *c) => return Ok(Json(CommandsReply::new(Vec::new(), cursor))),
            _ = tokio::time::sleep_until(deadline) => {
                return Ok(Json(CommandsReply::new(Vec::new(), cursor)));
            }
        }
    }
}

async fn authenticate_device(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<DeviceNumber, ApiError> {
    Ok(authenticate(state, headers).await?.device)
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AuthenticatedDevice, ApiError> {
    let credential = bearer_token(headers).ok_or(ApiError::MissingCredential)?;
    let hash = SecretHash::of(credential);
    state
        .store
        .run(move |store| store.authenticate(&hash, Utc::now()))
        .await?
        .ok_or(ApiError::CredentialRefused)
}

/// `POST /api/v1/device/credential`: a replacement credential for the device asking. Its current
/// one keeps working until the device first uses this one, so a lost answer loses nothing.
pub async fn replace_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<EnrollReply>, ApiError> {
    let device = authenticate_device(&state, &headers).await?;
    let credential = Secret::generate();
    let hash = credential.hash();
    let replaced = state.store.run(move |store| store.replace_credential(device, &hash)).await?;
    if !replaced {
        // Revoked since the check above.
        return Err(ApiError::CredentialRefused);
    }
    tracing::info!(%device, "replacement credential sent");
    Ok(Json(EnrollReply { device, credential: credential.expose().to_owned() }))
}

/// `POST /api/v1/device/update`: the device's image version and update state, kept for the
/// fleet page; the answer offers the rollout's bundle when this device should run it
/// (`update_rollout::offer`). 404 on a server that keeps no bundles.
pub async fn update_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<UpdateReply>, ApiError> {
    let device = authenticate_device(&state, &headers).await?;
    let check = UpdateCheck::from_json(&body_bytes(body)?).map_err(ApiError::Malformed)?;
    if state.updates.is_none() {
        return Err(ApiError::NotFound);
    }
    let now = Utc::now();
    let (running, reported) = (check.running.clone(), check.state);
    let (rollout, failed) = state
        .store
        .run(move |store| {
            store.record_update_check(device, &check, now)?;
            Ok((store.current_rollout()?, store.failed_versions(device)?))
        })
        .await?;
    let offer = crate::update_rollout::offer(rollout.as_ref(), device, &running, &failed, now);
    // Versions and states only: the device's error text is for the fleet page, not the log.
    tracing::info!(
        %device,
        %running,
        state = reported.as_str(),
        offered = offer.as_ref().map_or("nothing", |o| o.version.as_str()),
        "update check"
    );
    Ok(Json(UpdateReply::new(offer)))
}

/// `GET /api/v1/device/update/bundles/{sha256}`: the bundle offered to this device now, and no
/// other (404), with `Range` requests answered (206) so a download resumes where it stopped.
pub async fn update_bundle(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let device = authenticate_device(&state, request.headers()).await?;
    check_sha256("sha256", &sha256).map_err(|e| ApiError::BadQuery(e.to_string()))?;
    let updates = state.updates.clone().ok_or(ApiError::NotFound)?;
    let now = Utc::now();
    let (rollout, failed, running) = state
        .store
        .run(move |store| {
            Ok((
                store.current_rollout()?,
                store.failed_versions(device)?,
                store.device_running_version(device)?,
            ))
        })
        .await?;
    // A device that never said what it runs has not been offered anything.
    let running = running.ok_or(ApiError::NotFound)?;
    let offer = crate::update_rollout::offer(rollout.as_ref(), device, &running, &failed, now);
    if offer.is_none_or(|offer| offer.sha256 != sha256) {
        return Err(ApiError::NotFound);
    }
    let range = request.headers().contains_key(header::RANGE);
    let served = ServeFile::new(updates.path(&sha256))
        .try_call(request)
        .await
        .map_err(ApiError::BundleFile)?;
    let mut response = served.map(Body::new);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    tracing::info!(%device, status = response.status().as_u16(), range, "update bundle sent");
    Ok(response)
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
        let body = || EventBody::Heartbeat {
            uptime_s: 1,
            spool_pending: 0,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        };
        let batch = Batch::new(vec![
            Event::new(d(1), Utc::now(), body()),
            Event::new(d(2), Utc::now(), body()),
        ]);
        assert!(matches!(check_all_from(d(1), &batch), Err(ApiError::OtherDevice { .. })));
        let own = Batch::new(vec![Event::new(d(1), Utc::now(), body())]);
        assert!(check_all_from(d(1), &own).is_ok());
    }

    #[test]
    fn the_commands_query_is_checked_by_name() {
        type Case<'a> = (Option<&'a str>, Result<(u64, u32, Understands), &'a str>);
        let none = Understands::default();
        let test = Understands { test_button: true, ..Understands::default() };
        let cases: [Case; 16] = [
            (None, Ok((0, 25, none))),
            (Some("after=7&wait_s=1"), Ok((7, 1, none))),
            (Some("wait_s=55"), Ok((0, 55, none))),
            (Some("after=7&wait_s=25&can=test_button"), Ok((7, 25, test))),
            (Some("can=from_a_newer_device,test_button"), Ok((0, 25, test))),
            (Some("can=from_a_newer_device"), Ok((0, 25, none))),
            (Some("can=test_button,check_filter,ssh_access"), Ok((0, 25, Understands::ALL))),
            (
                Some("can=test_button,check_filter"),
                Ok((0, 25, Understands { ssh_access: false, ..Understands::ALL })),
            ),
            (
                Some("can=ssh_access"),
                Ok((0, 25, Understands { ssh_access: true, ..Understands::default() })),
            ),
            (
                Some("can=check_filter"),
                Ok((0, 25, Understands { check_filter: true, ..Understands::default() })),
            ),
            (Some("wait_s=0"), Err("wait_s")),
            (Some("wait_s=56"), Err("wait_s")),
            (Some("wait_s=x"), Err("wait_s")),
            (Some("after=-1"), Err("after")),
            (Some("after="), Err("after")),
            (Some("limit=3"), Err("unknown query parameter")),
        ];
        for (query, expected) in cases {
            match (parse_commands_query(query), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{query:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{query:?}: {got}"),
                (got, want) => panic!("{query:?}: {got:?} vs {want:?}"),
            }
        }
    }
}
