//! The per-packet fast path's wire format: reads the one question of an ordinary UDP query
//! without allocating, and writes a refusal (`NXDOMAIN`) in place. Pure: bytes in, bytes out.
//!
//! Anything out of the ordinary (compressed or odd names, several questions, answers in a query,
//! EDNS other than a plain version-0 OPT record, trailing bytes) is not read here: the caller
//! falls back to the full parser (hickory), which also answers malformed packets properly.

use crate::name::MAX_NAME_LEN;

/// DNS header length.
const HEADER: usize = 12;
/// OPT's record type (EDNS).
const OPT: u16 = 41;
/// EDNS option codes whose data hickory decodes (RFC 5001, RFC 7871).
const NSID: u16 = 3;
const CLIENT_SUBNET: u16 = 8;
/// UDP payload size this server advertises in EDNS answers (the DNS flag day 2020 figure).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The question of an ordinary query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question<'b> {
    /// The name, normalised (lower case, no trailing dot), in the caller's buffer.
    pub name: &'b str,
    pub qtype: u16,
    /// Where the question section ends in the packet.
    question_end: usize,
    /// The query carried EDNS; `Some(do_bit)`.
    edns: Option<bool>,
}

fn u16_at(packet: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]))
}

/// Reads the question of `packet` if it is an ordinary query (see the module doc), writing the
/// normalised name into `buf`.
pub fn parse_query<'b>(packet: &[u8], buf: &'b mut [u8; MAX_NAME_LEN]) -> Option<Question<'b>> {
    let flags = u16_at(packet, 2)?;
    // QR (a response), opcode other than QUERY, TC: not ordinary.
    if flags & 0xfa00 != 0 {
        return None;
    }
    let (qd, an, ns, ar) =
        (u16_at(packet, 4)?, u16_at(packet, 6)?, u16_at(packet, 8)?, u16_at(packet, 10)?);
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    let mut at = HEADER;
    let mut len = 0;
    loop {
        let label = usize::from(*packet.get(at)?);
        at += 1;
        if label == 0 {
            break;
        }
        // A compression pointer (or the reserved kinds) in a question: leave it to hickory.
        if label > 63 {
            return None;
        }
        let bytes = packet.get(at..at + label)?;
        let dot = usize::from(len > 0);
        if len + dot + label > MAX_NAME_LEN {
            return None;
        }
        if dot == 1 {
            buf[len] = b'.';
        }
        for (i, &b) in bytes.iter().enumerate() {
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return None;
            }
            buf[len + dot + i] = b.to_ascii_lowercase();
        }
        len += dot + label;
        at += label;
    }
    if len == 0 {
        return None; // the root
    }
    let qtype = u16_at(packet, at)?;
    let qclass = u16_at(packet, at + 2)?;
    if qclass != 1 {
        return None;
    }
    let question_end = at + 4;
    let edns = if ar == 1 {
        // Exactly one plain OPT record, and nothing after it.
        let rest = packet.get(question_end..)?;
        if rest.len() < 11 || rest[0] != 0 || u16_at(rest, 1)? != OPT {
            return None;
        }
        let (version, do_bit) = (rest[6], rest[7] & 0x80 != 0);
        let rdlen = usize::from(u16_at(rest, 9)?);
        if version != 0 || rest.len() != 11 + rdlen {
            return None;
        }
        // Its options (code, length, data) must fill its data exactly: a malformed one is
        // hickory's to answer (FORMERR), not ours to refuse as if the query were sound.
        // NSID and client subnet are the options hickory reads (and refuses when malformed):
        // a query that carries one is hickory's too.
        let mut options = &rest[11..];
        while !options.is_empty() {
            let (code, len) = (u16_at(options, 0)?, usize::from(u16_at(options, 2)?));
            if code == NSID || code == CLIENT_SUBNET {
                return None;
            }
            options = options.get(4 + len..)?;
        }
        Some(do_bit)
    } else {
        if packet.len() != question_end {
            return None;
        }
        None
    };
    // Only ASCII was written.
    let name = std::str::from_utf8(&buf[..len]).ok()?;
    Some(Question { name, qtype, question_end, edns })
}

/// Writes the `NXDOMAIN` answer to `packet` (whose question is `q`) into `out`: the header with
/// QR, RA and the query's RD and CD, the question as asked (its case too), no records, and an
/// OPT record if the query had one.
pub fn nxdomain(packet: &[u8], q: &Question<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&packet[..2]); // id
    out.push(0x80 | (packet[2] & 0x01)); // QR, opcode QUERY, RD as asked
    out.push(0x80 | (packet[3] & 0x10) | 3); // RA, CD as asked, NXDOMAIN
    let ar = u8::from(q.edns.is_some());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, ar]);
    out.extend_from_slice(&packet[HEADER..q.question_end]);
    if let Some(do_bit) = q.edns {
        out.extend_from_slice(&[0, 0, 41]);
        out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        out.extend_from_slice(&[0, 0, if do_bit { 0x80 } else { 0 }, 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0xbeef;
        m.metadata.recursion_desired = true;
        m.metadata.checking_disabled = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(4096);
            e.set_dnssec_ok(true);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn ordinary_queries_are_read() {
        let mut buf = [0; MAX_NAME_LEN];
        for edns in [false, true] {
            let packet = query("WWW.Example.COM.", RecordType::AAAA, edns);
            let q = parse_query(&packet, &mut buf).unwrap();
            assert_eq!((q.name, q.qtype, q.edns.is_some()), ("www.example.com", 28, edns));
        }
        let packet = query("_dmarc.a-b.test.", RecordType::TXT, false);
        assert_eq!(parse_query(&packet, &mut buf).unwrap().name, "_dmarc.a-b.test");
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parser() {
        let mut buf = [0; MAX_NAME_LEN];
        let good = query("a.test.", RecordType::A, false);
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = good.clone();
            f(&mut p);
            p
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short", good[..11].to_vec()),
            ("truncated name", good[..14].to_vec()),
            ("a response", edit(&|p| p[2] |= 0x80)),
            ("opcode", edit(&|p| p[2] |= 0x10)),
            ("truncated flag", edit(&|p| p[2] |= 0x02)),
            ("two questions", edit(&|p| p[5] = 2)),
            ("an answer", edit(&|p| p[7] = 1)),
            ("trailing bytes", edit(&|p| p.push(0))),
            ("class CH", edit(&|p| *p.last_mut().unwrap() = 3)),
            ("a space", edit(&|p| p[13] = b' ')),
            ("a pointer", edit(&|p| p[12] = 0xc0)),
            ("the root", {
                let mut m = Message::query();
                m.add_query(Query::query(Name::root(), RecordType::NS));
                m.to_vec().unwrap()
            }),
        ];
        for (what, packet) in cases {
            assert_eq!(parse_query(&packet, &mut buf), None, "{what}");
        }
        // Written by hand: hickory will not encode a name this long.
        let mut packet = good[..12].to_vec();
        for _ in 0..26 {
            packet.push(9);
            packet.extend_from_slice(b"abcdefghi");
        }
        packet.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_query(&packet, &mut buf), None, "a name over 253 characters");
    }

    #[test]
    fn edns_options_are_read_only_when_they_fill_the_opt_record_exactly() {
        let mut buf = [0; MAX_NAME_LEN];
        // A query with an OPT record whose data is `options` (as `dig` sends a cookie).
        let with_options = |options: &[u8]| {
            let mut p = query("adult.test.", RecordType::A, false);
            p[11] = 1; // one additional record
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
            p.extend_from_slice(&u16::try_from(options.len()).unwrap().to_be_bytes());
            p.extend_from_slice(options);
            p
        };
        let cookie = with_options(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Message::from_vec(&cookie).is_ok());
        assert_eq!(parse_query(&cookie, &mut buf).unwrap().edns, Some(false));
        // Found by fuzz/fuzz_targets/dns_wire.rs: option lengths that overrun the record (or
        // stop short of it) are malformed, and hickory says so.
        let found = [0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 5, b'a', b'd', b'u', b'l', 0, b'-'];
        // Found next: a client subnet option too short to hold its address family.
        let short_subnet = [0x35, 1, 0, 0, 0, 8, 0, 0, 0, 0x80, 0, 6, 0, 0, 0x25, b'-', 0x29, 0];
        for options in [&found[..], &short_subnet, &[0, 10, 0, 9, 1, 2, 3], &[0, 10, 0]] {
            let packet = with_options(options);
            assert!(Message::from_vec(&packet).is_err(), "{options:?}");
            assert_eq!(parse_query(&packet, &mut buf), None, "{options:?}");
        }
    }

    #[test]
    fn the_refusal_is_a_well_formed_nxdomain_for_the_question_asked() {
        let mut buf = [0; MAX_NAME_LEN];
        let mut out = Vec::new();
        for edns in [false, true] {
            let packet = query("Video.Adult.test.", RecordType::HTTPS, edns);
            let q = parse_query(&packet, &mut buf).unwrap();
            nxdomain(&packet, &q, &mut out);
            let m = Message::from_vec(&out).unwrap();
            assert_eq!(m.metadata.id, 0xbeef);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
            assert!(m.metadata.checking_disabled && !m.metadata.authoritative);
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].name().to_ascii(), "Video.Adult.test.", "the asker's case");
            assert_eq!(m.queries[0].query_type(), RecordType::HTTPS);
            assert!(m.answers.is_empty() && m.authorities.is_empty());
            match (edns, &m.edns) {
                (false, None) => {}
                (true, Some(e)) => {
                    assert_eq!(e.max_payload(), EDNS_PAYLOAD);
                    assert!(e.flags().dnssec_ok);
                }
                other => panic!("edns {other:?}"),
            }
        }
    }
}
