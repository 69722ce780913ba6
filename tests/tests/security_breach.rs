//! A security breach end to end, with the real binaries on loopback (issue 17): a list file on
//! the school server is tampered with after IT uploaded it, the real slated refuses it (its
//! SHA-256 is not the signed manifest's) and files a `security_breach` event, the server's
//! "Refused or tampered policy" rule fires, and the DSL's email goes out through SMTP to a
//! sink on loopback, to the DSL and at once to the head (a breach: seed 004, "SLT are alerted
//! with immediate effect").
//!
//! SQLite only: this harness runs the server binary on its own data directory. The same rule on
//! PostgreSQL is in `server/tests/it/monitoring.rs`, which runs on both stores.

use slate_e2e::{wait_until, Device, Server};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// A mail server on loopback that takes every message and hands it over whole.
fn smtp_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut write = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n");
                let (mut message, mut in_data) = (String::new(), false);
                while let Some(Ok(line)) = lines.next() {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            let _ = tx.send(std::mem::take(&mut message));
                            let _ = write.write_all(b"250 queued\r\n");
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    if write.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn a_tampered_list_is_refused_by_the_device_and_the_dsl_is_alerted() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, mail) = smtp_sink();
    let config = tmp.path().join("slate-server.toml");
    std::fs::write(
        &config,
        format!(
            "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsecurity = \"none\"\n\
             from = \"slate@school.example\"\nto = [\"dsl@school.example\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start_with_config(&tmp.path().join("server"), &config);

    // The head hears of breaches at once: the DSL's "also escalate to" address.
    let mut rules: Vec<(String, String)> = [
        ("escalate_after", "15"),
        ("escalate_to", "head@school.example"),
        ("escalate_in_school_hours", "on"),
        ("school_start", "08:00"),
        ("school_end", "16:30"),
        ("school_mon", "on"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (name, threshold, window) in DEFAULT_RULES {
        // Only the breach rules on: a device in a test has no report button, and the button
        // fault rule would mail about that too.
        if name == "policy_refused" || name == "pin_lockout" {
            rules.push((format!("{name}_on"), "on".into()));
        }
        rules.push((format!("{name}_threshold"), threshold.to_string()));
        rules.push((format!("{name}_window"), window.to_string()));
    }
    let fields: Vec<(&str, &str)> = rules.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(server.submit("/alert-rules", "/alert-rules", &fields), 303, "rules saved");

    // A class (devices get no policy without one), IT's block list; then someone changes the
    // list's file on the server's disk.
    let roster = tmp.path().join("roster.csv");
    std::fs::write(&roster, "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\n").unwrap();
    server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let list = [("name", "adult"), ("contents", "blocked.example\r\n")];
    assert_eq!(server.submit("/setup", "/setup/list", &list), 303, "list uploaded");
    let profile = [
        ("name", "default"),
        ("block_lists", "adult"),
        ("allow_only", ""),
        ("safe_search", "strict"),
    ];
    assert_eq!(server.submit("/setup", "/setup/profile", &profile), 303, "profile saved");
    let stored = std::fs::read_dir(server.data_dir.join("lists"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "txt"))
        .expect("the uploaded list's file");
    // Same length, one letter changed: only the digest can tell.
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&stored, bytes).unwrap();

    let mut device = Device::following_policy(&tmp.path().join("device"), &server, 12);
    device.start();

    let message = mail.recv_timeout(Duration::from_secs(60)).expect("the DSL's email");
    assert!(
        message.contains("Subject: Slate: Refused or tampered policy on device 12"),
        "{message}"
    );
    assert!(message.contains("dsl@school.example"), "{message}");
    assert!(message.contains("head@school.example"), "a breach reaches the head at once");
    // Nothing of the list in force changed on the device: the tampered file was never written.
    let lists = device.dir.join("state/policy/lists");
    let written =
        std::fs::read_dir(&lists).map(|files| files.filter_map(Result::ok).count()).unwrap_or(0);
    assert_eq!(written, 0, "no list file installed");
    // One alert, however often the device fetches again (every 10 s here): the device files
    // the same refusal once, and the rule raises one alert an hour.
    wait_until("the refusal on the alert rules page", || {
        server.staff_page("/alert-rules").contains("Refused or tampered policy</td>").then_some(())
    });
    assert!(mail.recv_timeout(Duration::from_secs(12)).is_err(), "one email");
    device.kill();
}

/// Every rule's name, threshold and window as the page shows them by default: the form posts
/// them all back (the page refuses a form without every rule).
const DEFAULT_RULES: [(&str, u32, u32); 9] = [
    ("illegal_content", 1, 60),
    ("filter_bypass", 3, 10),
    ("harmful_burst", 10, 10),
    ("hardware_refused", 1, 60),
    ("button_fault", 1, 1440),
    ("device_silent", 3, 1),
    ("policy_refused", 1, 60),
    ("pin_lockout", 1, 60),
    ("dns_dropped", 1, 60),
];
