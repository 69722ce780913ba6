//! Real DNS queries over UDP and TCP to the filtering server on loopback, forwarding to a
//! fixed-answer upstream that the test starts on loopback too. Nothing leaves 127.0.0.1.

use chrono::{DateTime, Utc};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use slate_filter::lists::{Category, DomainList};
use slate_filter::policy::Policy;
use slate_filter::server::{Config, DnsServer, FixedUpstream, TokioClock};
use slate_filter::Filter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const POLICY: &str = r#"{"v":1,"issued_at":"2026-11-17T08:00:00Z","default_profile":"ks2",
 "profiles":{"ks2":{"block_lists":["adult"],"safe_search":"strict",
   "bypasses":[{"domain":"lesson.test","from":"2026-11-17T10:00:00Z","until":"2026-11-17T11:00:00Z",
                "reason":"Year 5 history","approved_by":"staff-42"}]}}}"#;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(name(owner), 3600, RData::A(A::from(std::net::Ipv4Addr::from(ip))))
}

async fn upstream() -> FixedUpstream {
    let records = vec![
        a("www.bbc.co.uk.", [192, 0, 2, 1]),
        a("lesson.test.", [192, 0, 2, 2]),
        a("forcesafesearch.google.com.", [192, 0, 2, 3]),
        Record::from_rdata(
            name("forcesafesearch.google.com."),
            300,
            RData::AAAA(AAAA::from("2001:db8::3".parse::<std::net::Ipv6Addr>().unwrap())),
        ),
        a("restrict.youtube.com.", [192, 0, 2, 4]),
        // An upstream CNAME chain must come through whole.
        Record::from_rdata(name("alias.test."), 300, RData::CNAME(CNAME(name("www.bbc.co.uk.")))),
    ];
    FixedUpstream::start("127.0.0.1:0".parse().unwrap(), records, None).await.unwrap()
}

fn filter() -> Filter {
    let mut f = Filter::new();
    f.add_list(DomainList::parse("adult", Category::Adult, "*.adult.test\nlesson.test\n").0);
    f.add_list(DomainList::parse("iwf", Category::ChildAbuse, "*.illegal.test\n").0);
    f.set_policy(Policy::from_json(POLICY).unwrap()).unwrap();
    f
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn query(qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query(qname, qtype), server).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = socket.recv(&mut buf).await.unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let q = query(qname, qtype);
    stream.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    stream.write_all(&q).await.unwrap();
    let len = stream.read_u16().await.unwrap();
    let mut buf = vec![0; usize::from(len)];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

/// A safety net so a broken server fails the test instead of hanging it; not an assertion.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("no answer within 10 s")
}

fn summary(m: &Message) -> (ResponseCode, Vec<String>) {
    let answers =
        m.answers.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
    (m.metadata.response_code, answers)
}

#[tokio::test]
async fn udp_and_tcp_queries_are_forwarded_rewritten_and_blocked() {
    let up = upstream().await;
    let config = Config::new("127.0.0.1:0".parse().unwrap(), vec![up.local_addr()]);
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-17T09:00:00Z")));
    let (server, mut events) = DnsServer::start(&config, filter(), clock).await.unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    for transport in ["udp", "tcp"] {
        let ask = |qname: &'static str, qtype| async move {
            within(async {
                if transport == "udp" {
                    udp(addr, qname, qtype).await
                } else {
                    tcp(addr, qname, qtype).await
                }
            })
            .await
        };

        // Allowed: the upstream's answer, TTL capped.
        let m = ask("www.bbc.co.uk.", RecordType::A).await;
        assert_eq!(
            summary(&m),
            (ResponseCode::NoError, vec!["www.bbc.co.uk. A 192.0.2.1".into()]),
            "{transport}"
        );
        assert!(m.answers[0].ttl <= slate_filter::server::MAX_ANSWER_TTL);

        let m = ask("alias.test.", RecordType::A).await;
        assert_eq!(
            summary(&m).1,
            ["alias.test. CNAME www.bbc.co.uk.", "www.bbc.co.uk. A 192.0.2.1"],
            "{transport}"
        );

        // Rewritten: CNAME to the safe host, then its addresses.
        let m = ask("www.google.co.uk.", RecordType::A).await;
        assert_eq!(
            summary(&m),
            (
                ResponseCode::NoError,
                vec![
                    "www.google.co.uk. CNAME forcesafesearch.google.com.".into(),
                    "forcesafesearch.google.com. A 192.0.2.3".into()
                ]
            ),
            "{transport}"
        );
        let m = ask("www.google.com.", RecordType::AAAA).await;
        assert_eq!(
            summary(&m).1,
            [
                "www.google.com. CNAME forcesafesearch.google.com.",
                "forcesafesearch.google.com. AAAA 2001:db8::3"
            ],
            "{transport}"
        );
        let m = ask("m.youtube.com.", RecordType::HTTPS).await;
        assert_eq!(summary(&m).1, ["m.youtube.com. CNAME restrict.youtube.com."], "{transport}");
        let m = ask("www.youtube.com.", RecordType::A).await;
        assert_eq!(
            summary(&m).1,
            ["www.youtube.com. CNAME restrict.youtube.com.", "restrict.youtube.com. A 192.0.2.4"],
            "{transport}"
        );

        // Blocked: NXDOMAIN, and an event naming the rule and list.
        for (qname, rule, list) in [
            ("video.adult.test.", "*.adult.test", "adult"),
            ("x.illegal.test.", "*.illegal.test", "iwf"),
            ("dns.google.", "dns.google", "slate-doh"),
        ] {
            let qname: &'static str = qname;
            let m = ask(qname, RecordType::A).await;
            assert_eq!(summary(&m), (ResponseCode::NXDomain, vec![]), "{transport} {qname}");
            if transport == "udp" {
                let event = within(events.recv()).await.unwrap().event;
                assert_eq!(
                    (event.name.as_str(), event.rule.as_str(), event.list.as_str()),
                    (qname.trim_end_matches('.'), rule, list)
                );
                let since_start = event.at - at("2026-11-17T09:00:00Z");
                assert!(
                    since_start >= chrono::Duration::zero()
                        && since_start < chrono::Duration::seconds(10)
                );
            }
        }

        // Unknown upstream names pass the upstream's NXDOMAIN through.
        let m = ask("nowhere.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }

    // The same blocked names asked again over TCP within the window were coalesced.
    assert!(events.try_recv().is_err(), "repeats within the window are one event");

    let recent: Vec<String> = server.handle().recent_names().into_iter().map(|(n, _)| n).collect();
    assert_eq!(recent.first().map(String::as_str), Some("nowhere.test"));
    assert!(recent.contains(&"www.google.co.uk".to_string()));
    server.handle().clear_recent_names();
    assert!(server.handle().recent_names().is_empty());

    server.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_no_valid_policy_every_name_is_refused() {
    let up = upstream().await;
    let config = Config::new("127.0.0.1:0".parse().unwrap(), vec![up.local_addr()]);
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-17T09:00:00Z")));
    let (server, mut events) = DnsServer::start(&config, Filter::new(), clock).await.unwrap();
    let m = within(udp(server.local_addr(), "www.bbc.co.uk.", RecordType::A)).await;
    assert_eq!(summary(&m), (ResponseCode::NXDomain, vec![]));
    assert_eq!(
        within(events.recv()).await.unwrap().event.list,
        slate_filter::filter::LIST_FAIL_CLOSED
    );

    // A policy arriving later opens it.
    server
        .handle()
        .update(|f| {
            f.add_list(DomainList::parse("adult", Category::Adult, "").0);
            f.set_policy(Policy::from_json(POLICY).unwrap())
        })
        .unwrap();
    let m = within(udp(server.local_addr(), "www.bbc.co.uk.", RecordType::A)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    server.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_bypass_stops_on_time_through_the_server() {
    let up = upstream().await;
    let config = Config::new("127.0.0.1:0".parse().unwrap(), vec![up.local_addr()]);
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-17T10:59:00Z")));
    let (server, _events) = DnsServer::start(&config, filter(), clock).await.unwrap();
    let addr = server.local_addr();

    let m = udp(addr, "lesson.test.", RecordType::A).await;
    assert_eq!(summary(&m), (ResponseCode::NoError, vec!["lesson.test. A 192.0.2.2".into()]));

    tokio::time::advance(Duration::from_secs(59)).await;
    let m = udp(addr, "lesson.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "still inside the bypass");

    tokio::time::advance(Duration::from_secs(1)).await; // 11:00:00, the bypass's end
    let m = udp(addr, "lesson.test.", RecordType::A).await;
    assert_eq!(summary(&m), (ResponseCode::NXDomain, vec![]), "the bypass ended on time");

    server.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}

/// Sends raw bytes over UDP; the reply, if one comes within a second.
async fn raw_udp(server: SocketAddr, packet: &[u8]) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(packet, server).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await.ok()?.ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

#[tokio::test]
async fn unusual_udp_packets_are_answered_properly_and_never_stop_the_server() {
    let up = upstream().await;
    let config = Config::new("127.0.0.1:0".parse().unwrap(), vec![up.local_addr()]);
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-17T09:00:00Z")));
    let (server, _events) = DnsServer::start(&config, filter(), clock).await.unwrap();
    let addr = server.local_addr();

    // EDNS on a refused and an allowed name: the OPT record comes back on both paths.
    for (qname, code) in
        [("video.adult.test.", ResponseCode::NXDomain), ("www.bbc.co.uk.", ResponseCode::NoError)]
    {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(qname), RecordType::A));
        m.set_edns(hickory_proto::op::Edns::new());
        let reply = within(raw_udp(addr, &m.to_vec().unwrap())).await.expect(qname);
        assert_eq!((reply.metadata.id, reply.metadata.response_code), (m.metadata.id, code));
        assert!(reply.edns.is_some(), "{qname}");
    }

    // Garbage with a header: FORMERR. A response, or a fragment: no answer at all.
    let mut garbage = query("www.bbc.co.uk.", RecordType::A);
    garbage.truncate(20);
    let reply = within(raw_udp(addr, &garbage)).await.expect("a FORMERR");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    let mut response = query("www.bbc.co.uk.", RecordType::A);
    response[2] |= 0x80;
    assert!(within(raw_udp(addr, &response)).await.is_none(), "an answer is never answered");
    assert!(within(raw_udp(addr, &[1, 2, 3])).await.is_none());

    // Two questions (the fast path leaves them to hickory): FORMERR, not a guess.
    let mut two = Message::query();
    two.add_query(Query::query(name("a.test."), RecordType::A));
    two.add_query(Query::query(name("b.test."), RecordType::A));
    let reply = within(raw_udp(addr, &two.to_vec().unwrap())).await.unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    // Still serving.
    let m = within(udp(addr, "www.bbc.co.uk.", RecordType::A)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    server.shutdown().await.unwrap();
    up.shutdown().await.unwrap();
}
