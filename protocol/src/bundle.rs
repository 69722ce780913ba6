//! Signed bundles: how the school server hands a device anything it must trust (policy, roster,
//! approved apps, filter lists). Pure: signing and checking bytes, no I/O, no randomness.
//!
//! ```json
//! {"v":1,"key_id":"school-2026","payload":"<the JSON document, as a string>","signature":"<base64 Ed25519>"}
//! ```
//!
//! The signature covers the payload's exact UTF-8 bytes, so nothing has to be re-serialised to
//! be checked. A device knows the server's public key from its SD-card config and refuses any
//! bundle that does not verify: it then keeps the last good one, or fails closed.

use crate::{check_version, decode, invalid, ProtocolError, PROTOCOL_VERSION};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// A payload and the server's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBundle {
    pub v: u16,
    /// Which of the server's keys signed it, so keys can be rotated.
    pub key_id: String,
    pub payload: String,
    pub signature: String,
}

impl SignedBundle {
    /// Signs `payload` (typically a JSON document) with the server's key.
    pub fn sign(payload: String, key_id: &str, key: &SigningKey) -> Self {
        let signature = BASE64.encode(key.sign(payload.as_bytes()).to_bytes());
        Self { v: PROTOCOL_VERSION, key_id: key_id.to_string(), payload, signature }
    }

    /// Decodes a bundle from the wire and checks it against `key`; returns the trusted payload.
    pub fn open(bytes: &[u8], key: &VerifyingKey) -> Result<String, ProtocolError> {
        let bundle: SignedBundle = decode(bytes)?;
        check_version(bundle.v)?;
        bundle.verify(key)?;
        Ok(bundle.payload)
    }

    /// Checks the signature; `Err` names `signature` when it is malformed or does not match.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ProtocolError> {
        let raw =
            BASE64.decode(&self.signature).map_err(|_| invalid("signature", "is not base64"))?;
        let raw: [u8; 64] = raw.try_into().map_err(|_| invalid("signature", "is not 64 bytes"))?;
        key.verify_strict(self.payload.as_bytes(), &Signature::from_bytes(&raw))
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
        let bundle = SignedBundle::sign(r#"{"safe_search":"strict"}"#.into(), "k1", &key(1));
        let wire = serde_json::to_vec(&bundle).unwrap();
        assert_eq!(
            SignedBundle::open(&wire, &key(1).verifying_key()).unwrap(),
            r#"{"safe_search":"strict"}"#
        );
        let err = SignedBundle::open(&wire, &key(2).verifying_key()).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let mut bundle = SignedBundle::sign(r#"{"bypass":false}"#.into(), "k1", &key(1));
        bundle.payload = r#"{"bypass":true}"#.into();
        assert!(bundle.verify(&key(1).verifying_key()).is_err());
    }

    #[test]
    fn malformed_signatures_and_keys_are_named() {
        let mut bundle = SignedBundle::sign("{}".into(), "k1", &key(1));
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
