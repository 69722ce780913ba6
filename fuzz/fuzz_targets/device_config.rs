//! The device's `slate.toml` (`shell/daemon/src/config.rs`), read from an SD card anyone could
//! have edited.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slate_daemon::config::parse_config(text, Path::new("/etc/slate/slate.toml"));
    }
});
