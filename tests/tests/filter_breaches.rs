//! The filter's own security breaches end to end, with the real binaries (issue 17, seed 004:
//! "if a security breach occurs, SLT are alerted with immediate effect"):
//!
//! - the real slate-dns refuses a policy or list file changed on the card after slated wrote it
//!   (the device away from school, so slated cannot fetch a good one over it), and each
//!   refusal reaches slated's spool once however often slate-dns reloads, then the school
//!   server (`security_breach`, `filter_refused`);
//! - the real lockdown ruleset, loaded in a network namespace this test makes, refuses a DNS
//!   query to another address and counts it, and the real `slate-dns-drops` files the count
//!   through slated (`dns_dropped`).
//!
//! The server's side is read from its database (SQLite, the harness's store). That the server
//! alerts the DSL and SLT for both is `server/tests/it/monitoring.rs`.

use slate_e2e::{binary, run_ok, wait_until, Device, Server, SlateDns};
use slate_filter::server::FixedUpstream;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

/// The `security_breach` events of `what` the server stored, as their breach JSON.
fn breaches(server: &Server, what: &str) -> Vec<serde_json::Value> {
    let db = rusqlite::Connection::open(server.data_dir.join("slate.sqlite")).expect("database");
    db.busy_timeout(slate_e2e::PATIENCE).unwrap();
    let mut statement =
        db.prepare("SELECT body FROM events WHERE kind = 'security_breach' ORDER BY at").unwrap();
    let bodies: Vec<String> =
        statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    bodies
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["breach"].clone())
        .filter(|b| b["what"] == what)
        .collect()
}

/// Asks slate-dns to reload; true when it answered ok.
fn reload(dns: &SlateDns) -> bool {
    let mut stream = UnixStream::connect(&dns.socket).expect("slate-dns's socket");
    stream.write_all(b"{\"cmd\":\"reload\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).expect("a JSON reply");
    reply["ok"] == true
}

/// A school with one list and profile, device 12 enrolled with its policy installed.
fn school(dir: &Path) -> (Server, Device) {
    let server = Server::start(&dir.join("server"), false);
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n").unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let list = [("name", "adult"), ("contents", "blocked.example\r\n")];
    assert_eq!(server.submit("/setup", "/setup/list", &list), 303, "list uploaded");
    let profile =
        [("name", "oak"), ("block_lists", "adult"), ("allow_only", ""), ("safe_search", "strict")];
    assert_eq!(server.submit("/setup", "/setup/profile", &profile), 303, "profile saved");
    let mut device = Device::following_policy(&dir.join("device"), &server, 12);
    let dns_socket = device.dir.join("dns.sock");
    device.add_setting(None, &format!("dns_socket = {dns_socket:?}"));
    device.start();
    device.wait_for_policy_and_lists();
    (server, device)
}

/// How many spooled records name `needle` (acknowledged ones too: the spool keeps them until
/// a segment is drained, which it cannot be while the server is away).
fn spooled(device: &Device, needle: &str) -> usize {
    device.spool_text().matches(needle).count()
}

#[test]
fn a_policy_changed_on_the_card_is_refused_by_slate_dns_and_filed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, device) = school(tmp.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime
        .block_on(FixedUpstream::start(
            "127.0.0.1:0".parse().unwrap(),
            Vec::new(),
            Some(Ipv4Addr::new(192, 0, 2, 1)),
        ))
        .unwrap();
    let key = server.policy_key.clone().unwrap();
    let dns = SlateDns::start(&device, &device.dir.join("dns.sock"), upstream.local_addr(), &key);
    assert!(reload(&dns), "the policy slated installed loads");

    // The device away from school (the server out of reach): slated cannot fetch a good
    // policy over a changed one, and keeps what it spools.
    server.stop();
    // Someone with the card turns safe search off in the signed policy: the signature no
    // longer verifies. slate-dns refuses it at every reload and keeps the policy in force.
    let policy = device.dir.join("state/policy/filter.json");
    let good = std::fs::read_to_string(&policy).unwrap();
    let tampered = good.replace("strict", "off");
    assert_ne!(tampered, good, "the policy names a safe search mode");
    std::fs::write(&policy, &tampered).unwrap();
    for _ in 0..3 {
        assert!(!reload(&dns), "a tampered policy is refused");
    }
    let signature = r#""what":"filter_refused","part":"filter","reason":"signature""#;
    wait_until("the refusal in slated's spool", || (spooled(&device, signature) > 0).then_some(()));

    // The good policy back: refusals are forgotten. Then a list file changed on the card: its
    // refusal is new. It goes through the same queue and spool after any earlier one, so once
    // it is spooled, a second filing of the first would be there too.
    std::fs::write(&policy, &good).unwrap();
    assert!(reload(&dns), "the good policy loads again");
    let lists = device.dir.join("state/policy/lists");
    let list = std::fs::read_dir(&lists).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&list).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&list, bytes).unwrap();
    assert!(!reload(&dns), "a changed list is refused");
    assert!(!reload(&dns), "and again");
    let digest = r#""what":"filter_refused","part":"list","list":"adult","reason":"digest""#;
    wait_until("the list's refusal in slated's spool", || {
        (spooled(&device, digest) > 0).then_some(())
    });
    assert_eq!(spooled(&device, signature), 1, "the policy's refusal once, after 3 reloads");
    assert_eq!(spooled(&device, digest), 1, "the list's refusal once, after 2 reloads");

    // The server back: both reach it (it names filter_refused among what it accepts).
    server.restart();
    let filed = wait_until("both refusals at the server", || {
        let filed = breaches(&server, "filter_refused");
        (filed.len() >= 2).then_some(filed)
    });
    assert_eq!(
        filed,
        [
            serde_json::json!({"what":"filter_refused","part":"filter","reason":"signature"}),
            serde_json::json!({"what":"filter_refused","part":"list","list":"adult","reason":"digest"}),
        ]
    );
}

/// Whether this process may make a network namespace and load nftables rules in it (root, as
/// CI is); a developer's unprivileged run skips with a notice.
fn namespaces_allowed() -> bool {
    Command::new("unshare")
        .args(["--net", "--", "nft", "list", "tables"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dns_to_another_resolver_is_refused_counted_and_filed_by_slate_dns_drops() {
    if !namespaces_allowed() {
        println!("notice: cannot make a network namespace with nftables here (not root); skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (server, device) = school(tmp.path());

    // The real ruleset, with the resolver's exception for a user that is not this test's (so
    // this test's query is what an app's would be: not slate-dns's).
    let params = slate_filter::lockdown::NftParams {
        resolver_user: "65534".into(),
        ..slate_filter::lockdown::NftParams::default()
    };
    let rules =
        slate_filter::lockdown::nftables_rules(&params).replace("skuid \"65534\"", "skuid 65534");
    let rules_path = tmp.path().join("slate-dns.nft");
    std::fs::write(&rules_path, rules).unwrap();

    // In a network namespace of its own: loopback and a veth pair with a TEST-NET-1 address
    // (nothing answers there; nothing leaves the namespace). A DNS query over UDP to another
    // resolver, and a DNS-over-TLS connection, both refused by the firewall; then
    // slate-dns-drops reads the counter once and files it through slated's control socket.
    let script = format!(
        r#"set -e
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 192.0.2.1/24 dev v0
ip link set v0 up
ip link set v1 up
nft -f {rules}
# An A query for example.org, as an app that ignores the system resolver would send it.
printf '\022\064\001\000\000\001\000\000\000\000\000\000\007example\003org\000\000\001\000\001' > /dev/udp/192.0.2.53/53 || true
(exec 3<>/dev/tcp/192.0.2.53/853) 2>/dev/null && exit 3 || true
nft -j list counter inet slate_dns dns_bypass
{drops} --once --control-socket {socket}
"#,
        rules = rules_path.display(),
        drops = binary("slate-dns-drops").display(),
        socket = device.socket.display(),
    );
    let mut command = Command::new("unshare");
    command.args(["--net", "--", "bash", "-c", &script]);
    let output = run_ok(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let counted = stdout.lines().find(|l| l.contains("\"dns_bypass\"")).expect("the counter");
    let packets = slate_filter::drops::parse_counter(counted.as_bytes(), "dns_bypass").unwrap();
    assert!(packets >= 2, "the UDP query and the DoT connection refused and counted: {stdout}");
    assert!(stdout.contains(&format!("filed: {packets} packets refused")), "{stdout}");

    let filed = wait_until("the dropped DNS at the server", || {
        let filed = breaches(&server, "dns_dropped");
        (!filed.is_empty()).then_some(filed)
    });
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0]["dropped"], packets);
}
