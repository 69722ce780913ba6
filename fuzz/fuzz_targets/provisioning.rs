//! A card's provisioning file (`protocol/src/provisioning.rs`), as a device opens it from the
//! boot partition: signed or plain, enrolled or not, every line checked.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use slate_protocol::provisioning::{open, parse, AnyInstalled, Source, Trust};

/// The key the seed corpus's bundles are signed with (`fuzz/README.md`).
const SEED_KEY: [u8; 32] = [42; 32];

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&SEED_KEY).verifying_key();
    for enrolled in [false, true] {
        let trust = Trust { school_key: Some(&key), enrolled };
        if let Ok((source, settings)) = open(data, trust, &AnyInstalled) {
            // Plain text only before enrollment; what is printed for the script is one line a
            // setting, whatever the file held.
            assert!(!(enrolled && source == Source::BeforeEnrollment));
            let lines = settings.to_lines();
            assert!(!lines.chars().any(|c| c.is_control() && c != '\n'));
            assert_eq!(
                lines.lines().count(),
                2 + settings.ssh_authorized_keys.len()
                    + [
                        &settings.wifi_ssid,
                        &settings.wifi_psk,
                        &settings.timezone,
                        &settings.keyboard
                    ]
                    .iter()
                    .filter(|v| v.is_some())
                    .count()
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse(text, &AnyInstalled);
    }
});
