//! slate-dns's socket (`shell/ipc/src/dns.rs`): one request line, as slate-dns reads it, and
//! one reply line, as slated reads the recent names for a report (`shell/daemon/src/dns.rs`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let _ = slate_ipc::dns::parse_request(line);
    let _ = slate_daemon::dns::parse_recent(line);
});
