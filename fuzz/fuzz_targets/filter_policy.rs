//! The filter policy (`shell/filter/src/policy.rs`): profiles, lists and bypasses, as slate-dns
//! reads the payload of its signed bundle.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_filter::policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::from_json(text);
    }
});
