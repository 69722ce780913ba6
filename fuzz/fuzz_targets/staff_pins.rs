//! The staff unlock PINs' document (`protocol/src/staff.rs`), a signed bundle's payload.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slate_protocol::staff::parse_staff_pins(text);
    }
});
