//! slate-dns's per-packet fast path (`shell/filter/src/wire.rs`): any UDP payload a process on
//! the device sends to it. What the fast path reads must be what the full parser (hickory)
//! reads, and the refusal it writes must be a well-formed answer to that question.
#![no_main]
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::BinDecodable;
use libfuzzer_sys::fuzz_target;
use slate_filter::name::MAX_NAME_LEN;
use slate_filter::wire::{nxdomain, parse_query};

fuzz_target!(|packet: &[u8]| {
    let mut buf = [0u8; MAX_NAME_LEN];
    let Some(question) = parse_query(packet, &mut buf) else { return };
    let full = Message::from_bytes(packet).expect("the fast path read a packet hickory refuses");
    assert_eq!(full.queries.len(), 1);
    let query = &full.queries[0];
    assert_eq!(u16::from(query.query_type()), question.qtype);
    // The labels' bytes, not hickory's presentation form (which escapes a leading `-`).
    let labels: Vec<String> = query
        .name()
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    assert_eq!(labels.join("."), question.name);

    let mut out = Vec::new();
    nxdomain(packet, &question, &mut out);
    let answer = Message::from_bytes(&out).expect("our NXDOMAIN parses");
    assert_eq!(answer.metadata.id, full.metadata.id);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answer.queries, full.queries);
});
