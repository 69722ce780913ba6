//! slated's control socket (`shell/ipc/src/control.rs`): one request line from slatectl,
//! slate-ui, slate-dns or anything else that can reach the socket.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_ipc::control::parse_request;

fuzz_target!(|line: &[u8]| {
    let _ = parse_request(line);
});
