//! The URL layer's lists (`protocol/src/url_lists.rs`) and the policy's salt, as the kiosk
//! browser reads them. The first line is the salt, the rest the list.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_protocol::url_lists::{parse_salt, UrlList};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (salt, list) = text.split_once('\n').unwrap_or((text, ""));
        let _ = parse_salt(salt);
        let _ = UrlList::parse("fuzz", list);
    }
});
