//! A class set from one card image (issue 15): ONE `slate.toml`, with no device number, on
//! every card. Real slated processes and the real server on loopback: one device takes its
//! number from IT's list of serials, another is given its number by IT on its setup screen
//! (driven through slated's control socket, as the setup screen drives it), where a number
//! already enrolled is refused and asked again, and the number survives a restart. A third
//! device, booted before IT uploaded the list, finds its number when the list comes; and the
//! setup screen is answered while enrolling waits on a server that does not answer.

use slate_e2e::*;
use std::process::Command;

#[test]
fn one_card_image_enrolls_devices_by_serial_list_and_by_the_setup_screen() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), false);

    // IT: one token for the set, its setup code printed beside it.
    let mut command = Command::new(binary("slate-server"));
    command.args(["enrollment-token", "--data-dir"]).arg(&server.data_dir);
    command.args(["--class-set", "3", "--valid-hours", "96"]);
    let out = run_ok(command);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let code = stderr
        .lines()
        .find_map(|l| l.split_once("setup code for devices with no number: "))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no setup code printed: {stderr}"));
    assert_eq!(code, slate_protocol::class_set::setup_code(&token));

    // IT's list: a bad one is refused naming the line, then the right one.
    let csv = dir.path().join("serials.csv");
    std::fs::write(&csv, "serial,device\n10000000aaaa0001,31\n10000000AAAA0001,33\n").unwrap();
    let mut bad = Command::new(binary("slate-server"));
    bad.args(["device", "--data-dir"]).arg(&server.data_dir).args(["numbers", "--file"]).arg(&csv);
    let refused = bad.output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("line 3: serial 10000000aaaa0001 is already on line 2"), "{said}");
    std::fs::write(&csv, "serial,device\n10000000aaaa0001,31\n").unwrap();
    let listed = server.cli(&["device", "numbers", "--file", csv.to_str().unwrap()]);
    assert!(listed.contains("1 devices"), "{listed}");

    // One card image: the same bytes on every card.
    let card = Device::class_set_card(&server.url, &token);
    assert!(!card.contains("device_number"));
    let mut by_list = Device::from_card(&dir.path().join("a"), &card);
    let mut by_screen = Device::from_card(&dir.path().join("b"), &card);
    assert_eq!(std::fs::read(&by_list.config).unwrap(), std::fs::read(&by_screen.config).unwrap());

    // A listed serial: enrolled as 31 without anyone typing.
    by_list.set_serial("10000000aaaa0001\n");
    by_list.start();
    assert_eq!(by_list.status()["device"], 31);
    wait_until("device 31 enrolled", || (by_list.status()["enrolled"] == true).then_some(()));

    // A serial not on the list: IT's setup screen.
    by_screen.set_serial("10000000bbbb0002\n");
    let lines = by_screen.start_until("slated setup");
    let status = by_screen.ctl_json(&["status"], "");
    assert_eq!(status["state"], "setup", "{status}");
    assert_eq!(status["setup"]["step"], "code", "{status}");
    // A pupil's tap on anything else gets nowhere.
    let pressed = by_screen.ctl_json(&["sign-out"], "");
    assert_eq!(pressed["ok"], false, "{pressed}");
    // A number before the code: still asking for the code.
    let early = by_screen.ctl_json(&["setup-number", "32"], "");
    assert_eq!(early["setup"]["step"], "code", "{early}");
    // A wrong code: refused, and counted.
    let wrong = by_screen.ctl_json(&["setup-code"], "00000000\n");
    assert_eq!(wrong["ok"], false, "{wrong}");
    assert_eq!(wrong["setup"]["notice"], "That code is not right", "{wrong}");
    let right = by_screen.ctl_json(&["setup-code"], &format!("{code}\n"));
    assert_eq!(right["setup"]["step"], "number", "{right}");
    // 31 is taken (by the list's device): the server refuses, the screen says so and asks again.
    let typed = by_screen.ctl_json(&["setup-number", "31"], "");
    assert_eq!(typed["setup"]["step"], "confirm", "{typed}");
    assert_eq!(typed["setup"]["device"], 31, "{typed}");
    let enrolling = by_screen.ctl_json(&["setup-confirm", "yes"], "");
    assert_eq!(enrolling["setup"]["step"], "enrolling", "{enrolling}");
    // The server's answer comes beside the screen: it asks for the number again.
    let taken = wait_until("the server's refusal on the screen", || {
        let status = by_screen.ctl_json(&["status"], "");
        (status["setup"]["step"] == "number").then_some(status)
    });
    assert_eq!(
        taken["setup"]["notice"], "Device 31 is already enrolled: choose another number",
        "{taken}"
    );
    // "No" goes back to the number pad; then 32, confirmed.
    by_screen.ctl_json(&["setup-number", "23"], "");
    let no = by_screen.ctl_json(&["setup-confirm", "no"], "");
    assert_eq!(no["setup"]["step"], "number", "{no}");
    by_screen.ctl_json(&["setup-number", "32"], "");
    // The answer comes at once ("Enrolling as device 32…"); enrolling runs beside the screen.
    let enrolling = by_screen.ctl_json(&["setup-confirm", "yes"], "");
    assert_eq!(enrolling["ok"], true, "{enrolling}");
    assert_eq!(enrolling["setup"]["step"], "enrolling", "{enrolling}");
    assert_eq!(enrolling["setup"]["device"], 32, "{enrolling}");
    let log = by_screen.dir.join("after-setup.log");
    let ready = wait_for_line(&lines, "slated ready device=", &log);
    assert_eq!(ready, "32");
    assert_eq!(by_screen.status()["enrolled"], true);

    // Each device files as its own number.
    for (device, number) in [(&by_list, 31), (&by_screen, 32)] {
        let id = device.press();
        device.unlock();
        wait_until("its report", || (server.report_count(&id) == 1).then_some(()));
        assert_eq!(device.status()["device"], number);
    }
    let fleet = server.staff_page("/fleet");
    assert!(fleet.contains("Device 31") && fleet.contains("Device 32"));

    // The number is on the data partition: a restart comes up as 32 with no screen, and the
    // card's slate.toml is the class set's but for the used token.
    by_screen.kill();
    drop(lines);
    by_screen.start();
    assert_eq!(by_screen.status()["device"], 32);
    assert_eq!(
        std::fs::read_to_string(by_screen.state_file("device-number")).unwrap().trim(),
        "32"
    );
    let left = std::fs::read_to_string(&by_screen.config).unwrap();
    assert!(!left.contains("enrollment_token"), "{left}");
    assert!(!left.contains("device_number"), "{left}");

    // A card booted before IT's list had its serial: the setup screen, and the list asked
    // again. The test's first wait is 200 ms instead of production's 30 s (a test cannot wait
    // for minutes of doubling asks); the rule that spaces them is table-tested.
    let mut late = Device::from_card(&dir.path().join("c"), &card);
    late.set_serial("10000000cccc0003\n");
    late.set_env("SLATE_LIST_RETRY_MS", "200");
    let lines = late.start_until("slated setup");
    assert_eq!(late.ctl_json(&["status"], "")["setup"]["step"], "code");
    std::fs::write(&csv, "serial,device\n10000000aaaa0001,31\n10000000cccc0003,33\n").unwrap();
    server.cli(&["device", "numbers", "--file", csv.to_str().unwrap()]);
    let ready = wait_for_line(&lines, "slated ready device=", &late.dir.join("after-list.log"));
    assert_eq!(ready, "33", "{}", late.log_text());
    assert!(late.log_text().contains("asked IT's list again"), "{}", late.log_text());
}

/// IT confirms the number while the server takes the connection and never answers: the screen
/// is told "enrolling" at once and its status keeps being answered, instead of the setup page
/// freezing until the request times out.
#[test]
fn the_setup_screen_is_answered_while_enrolling_waits_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", silent.local_addr().unwrap());
    // Connections are taken and held, never answered.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in silent.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let token = "slate-class-set-test-token-0000000000000000";
    let card = Device::class_set_card(&url, token);
    let mut device = Device::from_card(&dir.path().join("d"), &card);
    let _lines = device.start_until("slated setup");
    let code = slate_protocol::class_set::setup_code(token);
    assert_eq!(device.ctl_json(&["setup-code"], &format!("{code}\n"))["setup"]["step"], "number");
    device.ctl_json(&["setup-number", "40"], "");
    let enrolling = device.ctl_json(&["setup-confirm", "yes"], "");
    assert_eq!(enrolling["setup"]["step"], "enrolling", "{enrolling}");
    assert_eq!(enrolling["setup"]["device"], 40, "{enrolling}");
    // The server holds the request; the screen's polls are still answered, and say so.
    wait_until("the enrollment request held by the silent server", || {
        (!held.lock().unwrap().is_empty()).then_some(())
    });
    for _ in 0..3 {
        let status = device.ctl_json(&["status"], "");
        assert_eq!(status["state"], "setup", "{status}");
        assert_eq!(status["setup"]["step"], "enrolling", "{status}");
    }
    // Taps out of turn change nothing while it waits.
    let again = device.ctl_json(&["setup-confirm", "yes"], "");
    assert_eq!(again["setup"]["step"], "enrolling", "{again}");
}
