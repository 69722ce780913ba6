//! The demo's device: `slated` with the stdin button, in a terminal, stops on Ctrl+C (SIGINT)
//! at once, not after the next Enter; the demo can then start it again on the same state.

use slate_e2e::{binary, wait_until, Server, PATIENCE};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// slated with `[button] source = "stdin"` and its standard input held open, as a terminal's is.
fn start(config: &std::path::Path, log: &std::path::Path) -> Child {
    let mut child = Command::new(binary("slated"))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start slated");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = stdout.lines().map_while(Result::ok).any(|line| line.starts_with("slated ready"));
    assert!(ready, "slated never said ready:\n{}", std::fs::read_to_string(log).unwrap());
    child
}

/// Sends SIGINT, as Ctrl+C in its terminal does, and waits (as a hang guard only) for the exit.
fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "slated did not stop on SIGINT while its stdin was open"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_demo_device_stops_on_ctrl_c_and_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), false);
    let device = slate_e2e::Device::following_policy(&dir.path().join("device"), &server, 12);
    let config = std::fs::read_to_string(&device.config).unwrap();
    let config = config.replace("[button]\nsource = \"none\"", "[button]\nsource = \"stdin\"");
    assert!(config.contains("source = \"stdin\""), "{config}");
    std::fs::write(&device.config, config).unwrap();

    for run in ["first", "second"] {
        let log = dir.path().join(format!("slated-{run}.log"));
        let mut slated = start(&device.config, &log);
        wait_until("the device to enroll", || (device.status()["enrolled"] == true).then_some(()));
        let status = interrupt(&mut slated);
        assert!(
            status.success(),
            "{run} run: {status}\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
    }
}
