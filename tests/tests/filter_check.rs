//! The termly filter check end to end (issue 17), with the real binaries on loopback: the DSL
//! starts the built-in check on the server's page, the real slated receives `check_filter`,
//! asks the real slate-dns (with the signed policy and list in force) about each name, and the
//! answer reaches the page: the list's test name blocked by its category, a name of the DSL's
//! own that no list holds NOT BLOCKED.

use slate_e2e::{dns_query, wait_until, Device, Server, SlateDns};
use slate_filter::server::FixedUpstream;
use std::net::Ipv4Addr;

/// What the fake upstream answers for every name (TEST-NET-1: an answer, never contacted).
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const NXDOMAIN: u8 = 3;

#[test]
fn a_check_started_on_the_page_comes_back_from_the_devices_own_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(&dir.join("server"), false);
    // A class: devices get no policy without one.
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n").unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let list = [("name", "adult"), ("contents", "blocked.example\n")];
    assert_eq!(server.submit("/setup", "/setup/list", &list), 303, "list uploaded");
    let profile = [
        ("name", "default"),
        ("block_lists", "adult"),
        ("allow_only", ""),
        ("safe_search", "strict"),
    ];
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
    wait_until("slate-dns filtering with the school's list", || {
        (dns_query(dns.addr, "blocked.example").rcode == NXDOMAIN).then_some(())
    });

    let page = server.staff_page("/filter-checks");
    assert!(page.contains("blocked.example (adult)"), "the list's test name is offered: {page}");
    let (status, body) = server.submit_answer(
        "/filter-checks",
        "/filter-checks/run",
        &[("devices", "12"), ("own_names", "allowed.example")],
    );
    assert_eq!(status, 303, "{body}");

    let row = wait_until("device 12's answer on the page", || {
        let page = server.staff_page("/filter-checks");
        let table =
            page.split("<table class=\"filter-check\">").nth(1)?.split("</table>").next()?;
        let row = table.split("<tr>").find(|r| r.contains("<td>12</td>"))?.to_owned();
        (!row.contains("no answer yet")).then_some(row)
    });
    assert!(
        row.contains(r#"<span class="online">blocked</span> <span class="muted">(adult)</span>"#),
        "the list's name blocked by its category: {row}"
    );
    assert!(
        row.contains(r#"<span class="status-new">NOT BLOCKED</span> allowed.example"#),
        "a name on no list is let through: {row}"
    );
}
