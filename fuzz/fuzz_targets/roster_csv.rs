//! The roster CSV IT imports on the school server (`server/src/roster.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slate_server::roster::parse_roster_csv(text);
    }
});
