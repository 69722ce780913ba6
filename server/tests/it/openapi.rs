//! The device API's OpenAPI document: served, covering every device route the router has (and
//! no other), with examples that the protocol crate's own decoders accept.

use crate::common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
use slate_protocol::device::{CommandsReply, PolicyReply};
use slate_protocol::update::{UpdateCheck, UpdateReply};
use slate_protocol::{kiosk, Batch, EnrollReply, EnrollRequest, ErrorReply, IngestReply};

fn example<'a>(doc: &'a Value, path: &str, method: &str, at: &[&str]) -> &'a Value {
    let mut value = &doc["paths"][path][method];
    for key in at {
        value = &value[*key];
    }
    assert!(!value.is_null(), "{method} {path} documents {at:?}");
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test]
async fn every_device_route_is_documented_with_examples_that_decode() {
    let server = TestServer::start().await;
    let response =
        server.client.get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let routes = slate_server::features::device_api::device_routes();
    for (path, method, _) in &routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for path in documented {
        assert!(routes.iter().any(|(p, _, _)| p == path), "{path} is documented but not routed");
    }

    let json = ["content", "application/json", "example"];
    let request =
        |path, method| example(&doc, path, method, &[&["requestBody"][..], &json].concat()).clone();
    let reply = |path, method, status: &str| {
        example(&doc, path, method, &[&["responses", status][..], &json].concat()).clone()
    };
    EnrollRequest::from_json(&bytes(&request("/api/v1/enroll", "post"))).unwrap();
    serde_json::from_value::<EnrollReply>(reply("/api/v1/enroll", "post", "200")).unwrap();
    Batch::from_json(&bytes(&request("/api/v1/events", "post"))).unwrap();
    serde_json::from_value::<IngestReply>(reply("/api/v1/events", "post", "200")).unwrap();
    CommandsReply::from_json(&bytes(&reply("/api/v1/device/commands", "get", "200"))).unwrap();
    let update = "/api/v1/device/update";
    UpdateCheck::from_json(&bytes(&request(update, "post"))).unwrap();
    let offered = UpdateReply::from_json(&bytes(&reply(update, "post", "200"))).unwrap();
    assert!(offered.offer.is_some(), "the example shows an offer");

    let policy =
        PolicyReply::from_json(&bytes(&reply("/api/v1/device/policy", "get", "200"))).unwrap();
    let key = verifying_key_from_base64(doc["x-example-public-key"].as_str().unwrap()).unwrap();
    // The example is the legacy form (no kind), which a device's cache reading still takes.
    let open = |kind, bundle: &SignedBundle| {
        SignedBundle::open_cached_as(kind, &serde_json::to_vec(bundle).unwrap(), &key).unwrap()
    };
    let kiosk_text = open(BundleKind::KioskPolicy, &policy.kiosk);
    kiosk::parse_policy(&kiosk_text).unwrap();
    let staff_text = open(BundleKind::StaffPins, &policy.staff);
    assert!(!slate_protocol::staff::parse_staff_pins(&staff_text).unwrap().staff.is_empty());
    let filter =
        slate_filter::policy::Policy::open(&serde_json::to_vec(&policy.filter).unwrap(), &key)
            .unwrap();
    let list = example(
        &doc,
        "/api/v1/device/lists/{name}",
        "get",
        &["responses", "200", "content", "text/plain", "example"],
    );
    let list = list.as_str().unwrap().as_bytes();
    let sha = hex::encode(Sha256::digest(list));
    assert_eq!(
        (filter.lists["gambling"].sha256.as_str(), filter.lists["gambling"].bytes),
        (sha.as_str(), list.len() as u64)
    );

    let mut errors = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    let body = &response["content"]["application/json"]["example"];
                    serde_json::from_value::<ErrorReply>(body.clone())
                        .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
                    errors += 1;
                }
            }
        }
    }
    assert!(errors >= 10, "error answers are documented too ({errors})");
    server.stop().await;
}

/// schemathesis (`scripts/api-fuzz`) sends every body the document allows: each event kind it
/// documents must be one the decoder knows, with the fields the decoder requires marked required.
#[test]
fn every_documented_event_body_is_a_kind_the_decoder_knows_with_its_required_fields() {
    let doc: Value = serde_json::from_str(slate_server::features::device_api::OPENAPI).unwrap();
    let bodies = doc["components"]["schemas"]["Event"]["properties"]["body"]["oneOf"]
        .as_array()
        .expect("event bodies are documented one by one");
    assert!(bodies.len() >= 10, "{} bodies", bodies.len());
    let event = |body: &Value| {
        let event = serde_json::json!({"id": "0192f0c4-8e6a-7b3c-9d1e-2f3a4b5c6d7e", "device": 12,
            "at": "2026-11-17T10:14:03Z", "body": body});
        Batch::from_json(&bytes(&serde_json::json!({"v": 1, "events": [event]})))
    };
    for body in bodies {
        let kind = body["properties"]["type"]["const"].as_str().expect("a const type");
        let required: Vec<&str> =
            body["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        let err = event(&serde_json::json!({"type": kind})).err().map(|e| e.to_string());
        if required == ["type"] {
            assert!(
                err.is_none() || !err.as_ref().unwrap().contains("missing field"),
                "{kind}: {err:?}"
            );
        } else {
            let err = err.unwrap_or_else(|| panic!("{kind} without its fields was accepted"));
            assert!(!err.contains("unknown variant"), "{kind} is not a kind: {err}");
            // Refused for what it lacks: a field serde requires, or (button_tested, whose
            // command and staff are each optional) the check that one of them is there.
            assert!(
                err.contains("missing field") || err.contains("invalid field"),
                "{kind}: {err}"
            );
        }
    }
}
