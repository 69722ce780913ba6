//! Signed bundles: how the school server hands a device anything it must trust (policy, roster,
//! approved apps, filter lists). Pure: signing and checking bytes, no I/O, no randomness.
//!
//! ```json
//! {"v":1,"key_id":"school-2026","kind":"kiosk-policy","payload":"<the JSON document, as a string>","signature":"<base64 Ed25519>"}
//! ```
//!
//! Every bundle names its [`BundleKind`], and the signature covers the kind with the payload
//! (domain-separated: [`signed_message`]), so a kiosk policy signed by the school's key cannot
//! be served where a filter policy or the staff PINs are expected: [`SignedBundle::open_as`]
//! refuses it, naming both kinds. Nothing has to be re-serialised to be checked: the message is
//! the kind's name and the payload's exact UTF-8 bytes.
//!
//! Devices before kinds parse the envelope with unknown fields refused and check the signature
//! over the payload alone: the server sends them that legacy form ([`SignedBundle::sign_legacy`],
//! no `kind`) until they say they understand kinds (`can=bundle_kind` on the policy fetch,
//! [`crate::device::CAN_BUNDLE_KIND`]). A device that understands kinds refuses a legacy bundle
//! from the network; only the files its own previous release cached may be legacy
//! ([`SignedBundle::open_cached_as`]), so an updated device keeps its policy until the first
//! fetch replaces them. A device refuses any bundle that does not verify: it then keeps the last
//! good one, or fails closed.

use crate::{check_version, decode, invalid, ProtocolError, PROTOCOL_VERSION};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What a signed payload is. Each has one place on the device where it is opened, and a payload
/// of one kind is refused in the place of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleKind {
    /// A [`crate::kiosk::Policy`]: roster, apps, session rules.
    KioskPolicy,
    /// The filter policy `slate-filter` reads (profiles, the lists manifest, bypasses).
    FilterPolicy,
    /// A [`crate::staff::StaffPins`]: who may unlock, by PIN hash.
    StaffPins,
    /// A card's provisioning file ([`crate::provisioning`]), signed by IT with `slate-server
    /// provision sign`. Its payload is the file's text, not JSON.
    Provisioning,
}

impl BundleKind {
    pub const ALL: [BundleKind; 4] = [
        BundleKind::KioskPolicy,
        BundleKind::FilterPolicy,
        BundleKind::StaffPins,
        BundleKind::Provisioning,
    ];

    /// The name in the envelope's `kind` and in the signed message.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleKind::KioskPolicy => "kiosk-policy",
            BundleKind::FilterPolicy => "filter-policy",
            BundleKind::StaffPins => "staff-pins",
            BundleKind::Provisioning => "provisioning",
        }
    }
}

impl std::fmt::Display for BundleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the signature of a bundle with a kind covers: a fixed context, the kind's name, a NUL,
/// then the payload's bytes. A kind's name is lowercase letters and `-`, so no two (kind,
/// payload) pairs give the same message, and no legacy signature (over a JSON payload, which
/// starts with `{`) is one over this context.
pub fn signed_message(kind: &str, payload: &str) -> Vec<u8> {
    const CONTEXT: &[u8] = b"slate signed bundle v1\0";
    let mut message = Vec::with_capacity(CONTEXT.len() + kind.len() + 1 + payload.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(kind.as_bytes());
    message.push(0);
    message.extend_from_slice(payload.as_bytes());
    message
}

/// A payload and the server's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBundle {
    pub v: u16,
    /// Which of the server's keys signed it, so keys can be rotated.
    pub key_id: String,
    /// What the payload is ([`BundleKind::as_str`]); the signature covers it. Absent only in
    /// the legacy form sent to devices before kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub payload: String,
    pub signature: String,
}

impl SignedBundle {
    /// Signs `payload` (a JSON document of `kind`) with the server's key, over
    /// [`signed_message`].
    pub fn sign_as(kind: BundleKind, payload: String, key_id: &str, key: &SigningKey) -> Self {
        let message = signed_message(kind.as_str(), &payload);
        let signature = BASE64.encode(key.sign(&message).to_bytes());
        Self {
            v: PROTOCOL_VERSION,
            key_id: key_id.to_string(),
            kind: Some(kind.as_str().to_owned()),
            payload,
            signature,
        }
    }

    /// The legacy form, for devices that did not say they understand kinds: no `kind`, the
    /// signature over the payload alone. Nothing in it says what the payload is.
    pub fn sign_legacy(payload: String, key_id: &str, key: &SigningKey) -> Self {
        let signature = BASE64.encode(key.sign(payload.as_bytes()).to_bytes());
        Self { v: PROTOCOL_VERSION, key_id: key_id.to_string(), kind: None, payload, signature }
    }

    /// Decodes a bundle from the wire, checks that it is of `kind` and signed by `key` over
    /// that kind; returns the trusted payload. A bundle of another kind, or of none (legacy),
    /// is refused with an error naming `kind`.
    pub fn open_as(
        kind: BundleKind,
        bytes: &[u8],
        key: &VerifyingKey,
    ) -> Result<String, ProtocolError> {
        let bundle = Self::decode(bytes)?;
        bundle.check_kind(kind)?;
        bundle.verify(key)?;
        Ok(bundle.payload)
    }

    /// As [`SignedBundle::open_as`], but also takes a legacy bundle (no kind, the signature
    /// over the payload alone): only for a file the device's own previous release wrote after
    /// checking it, never for anything from the network. A bundle that names a kind must name
    /// `kind`.
    pub fn open_cached_as(
        kind: BundleKind,
        bytes: &[u8],
        key: &VerifyingKey,
    ) -> Result<String, ProtocolError> {
        let bundle = Self::decode(bytes)?;
        if bundle.kind.is_some() {
            bundle.check_kind(kind)?;
        }
        bundle.verify(key)?;
        Ok(bundle.payload)
    }

    fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let bundle: SignedBundle = decode(bytes)?;
        check_version(bundle.v)?;
        Ok(bundle)
    }

    /// `Ok` when the bundle names `expected`; else an error naming what it is and what was
    /// expected.
    pub fn check_kind(&self, expected: BundleKind) -> Result<(), ProtocolError> {
        match self.kind.as_deref() {
            Some(kind) if kind == expected.as_str() => Ok(()),
            Some(kind) => Err(invalid(
                "kind",
                format!("the bundle is a {kind:.32}, where a {expected} was expected"),
            )),
            None => Err(invalid(
                "kind",
                format!(
                    "the bundle names no kind (a server before kinds), where a {expected} was expected"
                ),
            )),
        }
    }

    /// Whether this is the legacy form (no kind).
    pub fn is_legacy(&self) -> bool {
        self.kind.is_none()
    }

    /// Checks the signature: over [`signed_message`] when the bundle names a kind, over the
    /// payload alone when it does not (legacy). `Err` names `signature` when it is malformed or
    /// does not match. Does not check which kind: see [`SignedBundle::check_kind`].
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ProtocolError> {
        let raw =
            BASE64.decode(&self.signature).map_err(|_| invalid("signature", "is not base64"))?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| invalid("signature", "is not 64 bytes"))?;
        let message = match &self.kind {
            Some(kind) => signed_message(kind, &self.payload),
            None => self.payload.as_bytes().to_vec(),
        };
        key.verify_strict(&message, &Signature::from_bytes(&raw))
            .map_err(|_| invalid("signature", "does not match the school server's key"))
    }
}

/// Parses a public key written as base64 (as it appears in `slate.toml`).
pub fn verifying_key_from_base64(text: &str) -> Result<VerifyingKey, ProtocolError> {
    let raw = BASE64.decode(text.trim()).map_err(|_| invalid("public_key", "is not base64"))?;
    let raw: [u8; 32] = raw.try_into().map_err(|_| invalid("public_key", "is not 32 bytes"))?;
    VerifyingKey::from_bytes(&raw).map_err(|_| invalid("public_key", "is not an Ed25519 key"))
}

/// Writes a public key as base64, for `slate.toml`.
pub fn verifying_key_to_base64(key: &VerifyingKey) -> String {
    BASE64.encode(key.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_bundle_opens_with_the_right_key_only() {
        let payload = r#"{"safe_search":"strict"}"#;
        let bundle = SignedBundle::sign_as(BundleKind::FilterPolicy, payload.into(), "k1", &key(1));
        let wire = serde_json::to_vec(&bundle).unwrap();
        let kind = BundleKind::FilterPolicy;
        assert_eq!(SignedBundle::open_as(kind, &wire, &key(1).verifying_key()).unwrap(), payload);
        let err = SignedBundle::open_as(kind, &wire, &key(2).verifying_key()).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
    }

    /// Every kind opened as every kind: only its own opens, and the refusal names both.
    #[test]
    fn a_bundle_of_one_kind_is_refused_as_every_other() {
        let public = key(1).verifying_key();
        for signed in BundleKind::ALL {
            let bundle = SignedBundle::sign_as(signed, r#"{"v":1}"#.into(), "k1", &key(1));
            let wire = serde_json::to_vec(&bundle).unwrap();
            for expected in BundleKind::ALL {
                let strict = SignedBundle::open_as(expected, &wire, &public);
                let cached = SignedBundle::open_cached_as(expected, &wire, &public);
                if signed == expected {
                    assert_eq!(strict.unwrap(), r#"{"v":1}"#);
                    assert_eq!(cached.unwrap(), r#"{"v":1}"#);
                    continue;
                }
                for err in [strict.unwrap_err(), cached.unwrap_err()] {
                    let text = err.to_string();
                    assert!(
                        text.contains(&format!("is a {signed}, where a {expected} was expected")),
                        "{signed} as {expected}: {text}"
                    );
                }
            }
        }
    }

    /// The kind is signed: renaming it in the envelope breaks the signature, and a bundle
    /// stripped of its kind (to pass as legacy) does not verify either.
    #[test]
    fn the_kind_cannot_be_changed_or_removed() {
        let public = key(1).verifying_key();
        for signed in BundleKind::ALL {
            let bundle = SignedBundle::sign_as(signed, r#"{"v":1}"#.into(), "k1", &key(1));
            for other in BundleKind::ALL.into_iter().filter(|k| *k != signed) {
                let relabelled =
                    SignedBundle { kind: Some(other.as_str().into()), ..bundle.clone() };
                let wire = serde_json::to_vec(&relabelled).unwrap();
                let err = SignedBundle::open_as(other, &wire, &public).unwrap_err();
                assert!(err.to_string().contains("signature"), "{signed} as {other}: {err}");
            }
            let stripped = SignedBundle { kind: None, ..bundle };
            let wire = serde_json::to_vec(&stripped).unwrap();
            let err = SignedBundle::open_cached_as(signed, &wire, &public).unwrap_err();
            assert!(err.to_string().contains("signature"), "{signed} stripped: {err}");
        }
    }

    /// The legacy form: what a device before kinds verifies (the payload alone, no `kind` in
    /// the envelope), refused from the network by a device that knows kinds, taken from its
    /// own cache.
    #[test]
    fn the_legacy_form_is_for_old_devices_and_old_caches_only() {
        let public = key(1).verifying_key();
        let legacy = SignedBundle::sign_legacy(r#"{"v":1}"#.into(), "k1", &key(1));
        let wire = serde_json::to_vec(&legacy).unwrap();
        assert!(!String::from_utf8_lossy(&wire).contains("kind"));
        // The previous release's check: the signature over the payload's bytes.
        let raw: [u8; 64] = BASE64.decode(&legacy.signature).unwrap().try_into().unwrap();
        assert!(public
            .verify_strict(legacy.payload.as_bytes(), &Signature::from_bytes(&raw))
            .is_ok());
        for kind in BundleKind::ALL {
            let err = SignedBundle::open_as(kind, &wire, &public).unwrap_err();
            assert!(err.to_string().contains("names no kind"), "{err}");
            assert_eq!(SignedBundle::open_cached_as(kind, &wire, &public).unwrap(), r#"{"v":1}"#);
        }
        // A bundle with a kind sends a field the previous release's envelope refuses, so the
        // server must not send it to such a device.
        let new = SignedBundle::sign_as(BundleKind::KioskPolicy, "{}".into(), "k1", &key(1));
        assert!(serde_json::to_string(&new).unwrap().contains(r#""kind":"kiosk-policy""#));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let mut bundle = SignedBundle::sign_as(
            BundleKind::FilterPolicy,
            r#"{"bypass":false}"#.into(),
            "k1",
            &key(1),
        );
        bundle.payload = r#"{"bypass":true}"#.into();
        assert!(bundle.verify(&key(1).verifying_key()).is_err());
        let mut legacy = SignedBundle::sign_legacy(r#"{"bypass":false}"#.into(), "k1", &key(1));
        legacy.payload = r#"{"bypass":true}"#.into();
        assert!(legacy.verify(&key(1).verifying_key()).is_err());
    }

    #[test]
    fn malformed_signatures_and_keys_are_named() {
        let mut bundle = SignedBundle::sign_as(BundleKind::StaffPins, "{}".into(), "k1", &key(1));
        bundle.signature = "!!".into();
        assert!(bundle.verify(&key(1).verifying_key()).unwrap_err().to_string().contains("base64"));
        bundle.signature = BASE64.encode([0u8; 10]);
        assert!(bundle
            .verify(&key(1).verifying_key())
            .unwrap_err()
            .to_string()
            .contains("64 bytes"));
        assert!(verifying_key_from_base64("abc").is_err());
        let text = verifying_key_to_base64(&key(3).verifying_key());
        assert_eq!(verifying_key_from_base64(&text).unwrap(), key(3).verifying_key());
    }
}
