//! IT's CSV of which device number each board serial or MAC gets (`slate-server device numbers`,
//! `server/src/device_serials.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slate_server::device_serials::parse_serials_csv(text);
    }
});
