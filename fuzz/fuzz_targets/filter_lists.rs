//! The filter's domain lists (`shell/filter/src/lists.rs`), as slate-dns reads a list file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_filter::lists::DomainSet;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = DomainSet::parse(text);
    }
});
