//! Signed bundles (`protocol/src/bundle.rs`): decoding and checking one against the school
//! server's key, and the key itself as `slate.toml` gives it.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};

/// The key the seed corpus's bundles are signed with (`fuzz/README.md`).
const SEED_KEY: [u8; 32] = [42; 32];

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&SEED_KEY);
    for kind in BundleKind::ALL {
        let opened = SignedBundle::open_as(kind, data, &key.verifying_key());
        if let Ok(payload) = &opened {
            // Only the key's holder can make a bundle that opens: the payload is what it
            // signed, as this kind and no other.
            let signed = SignedBundle::sign_as(kind, payload.clone(), "fuzz", &key);
            assert!(signed.verify(&key.verifying_key()).is_ok());
            for other in BundleKind::ALL.into_iter().filter(|k| *k != kind) {
                assert!(signed.check_kind(other).is_err());
            }
            let _ = slate_protocol::kiosk::parse_policy(payload);
        }
        // The cache's reading takes what the strict one does, and legacy bundles besides.
        let cached = SignedBundle::open_cached_as(kind, data, &key.verifying_key());
        assert!(opened.is_err() || cached.is_ok());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verifying_key_from_base64(text);
    }
});
