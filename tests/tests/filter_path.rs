//! The filter's path end to end, with the real binaries on loopback: IT uploads a block list
//! and a profile on the server, slated fetches and installs the signed policy, slate-dns filters
//! the signed-in pupil's lookups with it, and what it blocked reaches the DSL's device page.

use slate_e2e::{dns_query, wait_until, Device, Server, SlateDns};
use slate_filter::server::FixedUpstream;
use std::net::Ipv4Addr;
use std::path::Path;

const ROSTER: &str = "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n";
/// What the fake upstream answers for every name (TEST-NET-1: an answer, never contacted).
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// slate-dns's answer to a blocked name.
const NXDOMAIN: u8 = 3;

/// A school with one class (Oak, profile `oak` blocking the `adult` list), device 12 enrolled
/// with the server's policy in force, and slate-dns in front of a fake upstream.
struct School {
    server: Server,
    device: Device,
    dns: SlateDns,
    /// Amira's id, as the server gave it in the kiosk policy.
    pupil: String,
    // Kept alive for the test: the upstream's tasks run on this runtime.
    _upstream: (tokio::runtime::Runtime, FixedUpstream),
}

fn school(dir: &Path) -> School {
    let server = Server::start(&dir.join("server"), false);
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, ROSTER).unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let list = [("name", "adult"), ("contents", "blocked.example\r\n*.worse.example")];
    assert_eq!(server.submit("/setup", "/setup/list", &list), 303, "list uploaded");
    let profile =
        [("name", "oak"), ("block_lists", "adult"), ("allow_only", ""), ("safe_search", "strict")];
    assert_eq!(server.submit("/setup", "/setup/profile", &profile), 303, "profile saved");

    let key = server.policy_key.clone().expect("the server prints its policy key");
    let mut device = Device::following_policy(&dir.join("device"), &server, 12);
    let dns_socket = device.dir.join("dns.sock");
    device.add_setting(None, &format!("dns_socket = {dns_socket:?}"));
    device.start();
    device.wait_for_policy_and_lists();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime
        .block_on(FixedUpstream::start(
            "127.0.0.1:0".parse().unwrap(),
            Vec::new(),
            Some(UPSTREAM_ANSWER),
        ))
        .unwrap();
    let dns = SlateDns::start(&device, &dns_socket, upstream.local_addr(), &key);
    let kiosk = device.policy_payload("kiosk");
    assert_eq!(kiosk["classes"][0]["name"], "Oak");
    let pupil = kiosk["classes"][0]["pupils"][0]["id"].as_str().unwrap().to_owned();
    School { server, device, dns, pupil, _upstream: (runtime, upstream) }
}

impl School {
    /// Signs Amira in and waits until slate-dns filters with her class's profile.
    fn sign_in(&self) {
        self.device.ctl(&["sign-in", &self.pupil]);
        wait_until("slate-dns to use the oak profile", || {
            (dns_query(self.dns.addr, "blocked.example").rcode == NXDOMAIN).then_some(())
        });
    }
}

#[test]
fn a_blocked_name_is_refused_and_the_attempt_reaches_the_device_page() {
    let tmp = tempfile::tempdir().unwrap();
    let school = school(tmp.path());

    // Nobody signed in: the default profile, which blocks nothing in this school.
    let before = dns_query(school.dns.addr, "blocked.example");
    assert_eq!((before.rcode, before.addresses), (0, vec![UPSTREAM_ANSWER]), "default profile");

    school.sign_in();
    let blocked = dns_query(school.dns.addr, "blocked.example");
    assert_eq!((blocked.rcode, blocked.addresses), (NXDOMAIN, vec![]), "on the adult list");
    let wildcard = dns_query(school.dns.addr, "www.worse.example");
    assert_eq!(wildcard.rcode, NXDOMAIN, "a wildcard rule covers subdomains");
    let allowed = dns_query(school.dns.addr, "allowed.example");
    assert_eq!((allowed.rcode, allowed.addresses), (0, vec![UPSTREAM_ANSWER]), "answered upstream");

    let page = wait_until("the blocked attempt on the device page", || {
        let page = school.server.staff_page("/devices/12");
        page.contains("blocked.example").then_some(page)
    });
    let row = page
        .split("<tr>")
        .find(|row| row.contains("exact:blocked.example"))
        .unwrap_or_else(|| panic!("a row with the rule that matched:\n{page}"));
    assert!(row.contains("Amira K."), "the pupil who was signed in: {row}");
    assert!(row.contains(">adult<") && row.contains(">dns<"), "list and layer: {row}");
    wait_until("the wildcard block on the device page", || {
        school.server.staff_page("/devices/12").contains("*.worse.example").then_some(())
    });
    assert!(!page.contains("allowed.example"), "names that were answered are not reported");
}

/// The device's half of "recent names": the report in the spool carries the name slate-dns saw.
#[test]
fn a_press_after_a_lookup_files_the_name_with_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let mut school = school(tmp.path());
    school.sign_in();
    // The server is away so the report stays in the spool, where the test can read it.
    school.server.stop();
    dns_query(school.dns.addr, "allowed.example");
    dns_query(school.dns.addr, "blocked.example");
    let id = school.device.press();

    let spool = school.device.spool_text();
    let report: serde_json::Value = spool
        .lines()
        // `<crc32> <event JSON>`
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line.get(9..)?).ok())
        .find(|event| event.to_string().contains(&id))
        .unwrap_or_else(|| panic!("report {id} in the spool:\n{spool}"));
    let text = report.to_string();
    let names = recent_names(&report).unwrap_or_else(|| panic!("recent_names in {text}"));
    assert_eq!(names[..2], ["blocked.example", "allowed.example"], "newest first: {text}");

    school.server.restart();
    wait_until("the report on the server", || {
        school.server.reports().iter().any(|r| r["id"] == id.as_str()).then_some(())
    });
}

/// The server's half: the DSL sees the names looked up just before the press.
#[test]
fn a_press_after_a_lookup_shows_the_name_to_the_dsl() {
    let tmp = tempfile::tempdir().unwrap();
    let school = school(tmp.path());
    school.sign_in();
    dns_query(school.dns.addr, "blocked.example");
    let id = school.device.press();
    let report = wait_until("the report on the server", || {
        school.server.reports().into_iter().find(|r| r["id"] == id.as_str())
    });
    assert_eq!(recent_names(&report).as_deref(), Some(&["blocked.example".to_owned()][..]));
    let incident = wait_until("the incident page", || {
        let page = school.server.staff_page("/reports");
        // The first link to an incident by number (the navigation links to /incidents/record).
        page.split("/incidents/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .find(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    });
    let page = school.server.staff_page(&format!("/incidents/{incident}"));
    assert!(page.contains("blocked.example"), "{page}");
}

/// `recent_names` wherever the JSON keeps it (at the top or in the event's body).
fn recent_names(value: &serde_json::Value) -> Option<Vec<String>> {
    let names = match value.get("recent_names") {
        Some(names) => names,
        None => value.as_object()?.values().find_map(|v| v.get("recent_names"))?,
    };
    names.as_array()?.iter().map(|n| n.as_str().map(str::to_owned)).collect()
}
