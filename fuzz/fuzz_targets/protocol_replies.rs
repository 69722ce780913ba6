//! What the device decodes from the school server: the policy reply (three signed bundles),
//! teacher commands, and the kernel's boot id it puts in events.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_protocol::device::{CommandsReply, PolicyReply};
use slate_protocol::BootId;

fuzz_target!(|data: &[u8]| {
    let _ = PolicyReply::from_json(data);
    let _ = CommandsReply::from_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BootId::parse(text);
    }
});
