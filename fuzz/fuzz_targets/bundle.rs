//! Signed bundles (`protocol/src/bundle.rs`): decoding and checking one against the school
//! server's key, and the key itself as `slate.toml` gives it.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use slate_protocol::bundle::{verifying_key_from_base64, SignedBundle};

/// The key the seed corpus's bundles are signed with (`fuzz/README.md`).
const SEED_KEY: [u8; 32] = [42; 32];

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&SEED_KEY);
    if let Ok(payload) = SignedBundle::open(data, &key.verifying_key()) {
        // Only the key's holder can make a bundle that opens: the payload is what it signed.
        let signed = SignedBundle::sign(payload.clone(), "fuzz", &key);
        assert!(signed.verify(&key.verifying_key()).is_ok());
        let _ = slate_protocol::kiosk::parse_policy(&payload);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verifying_key_from_base64(text);
    }
});
