//! The kiosk policy (`protocol/src/kiosk.rs`): roster, apps and session rules, as slated and
//! slate-ui read the payload of its signed bundle.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slate_protocol::kiosk::parse_policy(text);
    }
});
