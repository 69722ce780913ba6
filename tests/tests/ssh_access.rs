//! Timed root ssh end to end, with the real binaries on loopback: IT opens ssh on device 12 on
//! the server's page, the real slated receives `ssh_access`, checks it and writes its request;
//! the real root helper from the repo (`images/rootfs/usr/lib/slate/ssh-access`) installs the
//! keys; a real sshd with the device's own sshd settings lets IT's key in, refuses a key whose
//! expiry-time has passed, and after IT closes ssh early refuses IT's key too. The page says
//! "ssh open until … (by e2e.it)", then "ssh closed".
//!
//! The helper runs against a temporary root (`SLATE_SSH_ACCESS_ROOT`) and with a recorder in
//! place of `systemctl` and `systemd-run` (`SLATE_SSH_ACCESS_SYSTEMCTL`, `…_SYSTEMD_RUN`): a
//! test machine's systemd is not ours to start units on (and often not running), and its real
//! /var/lib is not ours to write. The recorder's lines show what systemd would have been asked.

use slate_e2e::{wait_until, Device, Server};
use slate_protocol::ssh_access::authorized_keys_lines;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const DEVICE: u16 = 12;

/// A fresh ed25519 key pair from ssh-keygen: (private key file, `type base64` public key).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "it@laptop", "-f"])
        .arg(&file)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(file.with_extension("pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    (file, public.join(" "))
}

/// Runs the repo's root helper against `root`, systemd replaced by a recorder into `calls`.
fn run_helper(root: &Path, recorder: &Path) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/ssh-access");
    let out = Command::new(&script)
        .env("SLATE_SSH_ACCESS_ROOT", root)
        .env("SLATE_SSH_ACCESS_SYSTEMCTL", format!("{} systemctl", recorder.display()))
        .env("SLATE_SSH_ACCESS_SYSTEMD_RUN", format!("{} systemd-run", recorder.display()))
        .output()
        .expect("the ssh-access helper");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ssh-access: {text}");
    text
}

/// A real sshd on 127.0.0.1 with the device's own settings (its sshd_config.d/slate.conf, paths
/// moved into `ssh_dir`), in the foreground, logging to stderr.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, ssh_dir: &Path) -> Sshd {
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
        // The device's host key, made by the device's own helper.
        let out = Command::new(images.join("rootfs/usr/lib/slate/ssh-host-key"))
            .env("SLATE_SSH_DIR", ssh_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let shipped =
            std::fs::read_to_string(images.join("rootfs/etc/ssh/sshd_config.d/slate.conf"))
                .unwrap();
        assert!(
            shipped.contains("AuthorizedKeysFile /var/lib/slate-system/ssh/authorized_keys /var/lib/slate-system/ssh/timed_authorized_keys"),
            "sshd reads both the card's and the timed keys: {shipped}"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // First value wins in sshd_config: the test's own lines go first. StrictModes off: the
        // temporary directory sits under a world-writable /tmp; PAM off: no login session here;
        // DEBUG1: sshd says why it refused a key (an expired entry).
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nPidFile none\nUsePAM no\nStrictModes no\nLogLevel DEBUG1\n{}",
            shipped.replace("/var/lib/slate-system/ssh", &ssh_dir.display().to_string())
        );
        let config_file = dir.join("sshd_config");
        std::fs::write(&config_file, config).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let test =
            Command::new("/usr/sbin/sshd").arg("-t").arg("-f").arg(&config_file).output().unwrap();
        assert!(test.status.success(), "sshd -t: {}", String::from_utf8_lossy(&test.stderr));
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sshd");
        wait_until("sshd listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        Sshd { child, port }
    }

    /// Whether `key` gets root in: runs `true` over real ssh.
    fn lets_in(&self, key: &Path) -> bool {
        Command::new("ssh")
            .args(["-p", &self.port.to_string(), "-i"])
            .arg(key)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-F",
                "/dev/null",
                "root@127.0.0.1",
                "true",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("ssh")
            .status
            .success()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn it_opens_root_ssh_for_a_time_and_closes_it_early() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut server = Server::start(&dir.join("server"), false);
    let mut device = Device::following_policy(&dir.join("device"), &server, DEVICE);
    device.start();
    // The device's root: slated's state directory is its /var/lib/slate.
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink(device.dir.join("state"), root.join("var/lib/slate")).unwrap();
    let ssh_dir = root.join("var/lib/slate-system/ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let recorder = dir.join("recorder");
    let calls = dir.join("calls");
    std::fs::write(&recorder, format!("#!/bin/sh\necho \"$*\" >> {calls:?}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).unwrap();

    let page = format!("/fleet/devices/{DEVICE}/ssh");
    // Need to know: the DSL may not (root on a device is IT's alone).
    let dsl = server
        .client()
        .get(format!("{}{page}", server.url))
        .header("Cookie", &server.staff_cookie)
        .send()
        .unwrap();
    assert_eq!(dsl.status().as_u16(), 403, "the DSL is refused the ssh page");
    let it_cookie = server.staff_session("e2e.it", "it_admin");
    let dsl_cookie = std::mem::replace(&mut server.staff_cookie, it_cookie);
    wait_until("device 12 enrolled", || {
        let answer = server
            .client()
            .get(format!("{}{page}", server.url))
            .header("Cookie", &server.staff_cookie)
            .send()
            .ok()?;
        answer.status().is_success().then_some(())
    });
    assert!(server.staff_page(&page).contains("never opened"));

    let (it_key, it_public) = key_pair(dir, "it_key");
    let (old_key, old_public) = key_pair(dir, "old_key");
    // Refused on the page, with why: options smuggled in, a 10-year window, not a key.
    let hostile = [
        (format!("command=\"/bin/sh\" {it_public}"), "60", "options"),
        (it_public.clone(), "5256000", "15 minutes to 8 hours"),
        ("ssh-ed25519 notbase64!".to_owned(), "60", "not base64"),
    ];
    for (keys, minutes, why) in &hostile {
        let (status, body) =
            server.submit_answer(&page, &page, &[("keys", keys), ("minutes", minutes)]);
        assert_eq!(status, 400, "{keys}: {body}");
        assert!(body.contains(why), "{keys}: {body}");
    }
    assert!(
        !device.state_file("ssh-access.request").exists(),
        "nothing refused reached the device"
    );

    let pasted = format!("{it_public} it@laptop\n");
    let (status, body) =
        server.submit_answer(&page, &page, &[("keys", &pasted), ("minutes", "60")]);
    assert_eq!(status, 303, "{body}");
    let request = wait_until("slated's request", || {
        std::fs::read_to_string(device.state_file("ssh-access.request")).ok()
    });
    let until: i64 =
        request.lines().next().unwrap().strip_prefix("until=").unwrap().parse().unwrap();
    let until = chrono::DateTime::from_timestamp(until, 0).unwrap();
    assert_eq!(
        request,
        format!(
            "until={}\n{}",
            until.timestamp(),
            authorized_keys_lines(std::slice::from_ref(&it_public), until)
        )
    );
    assert!(!request.contains("it@laptop"), "the key's comment is not passed on: {request}");
    let state = wait_until("the device's answer on the page", || {
        let page = server.staff_page(&page);
        page.contains("ssh open until").then_some(page)
    });
    assert!(state.contains("(by e2e.it)"), "{state}");

    let said = run_helper(&root, &recorder);
    assert!(said.contains("ssh open for 1 key(s)"), "{said}");
    assert!(!device.state_file("ssh-access.request").exists(), "the helper took the request");
    let timed = std::fs::read_to_string(ssh_dir.join("timed_authorized_keys")).unwrap();
    assert_eq!(timed, authorized_keys_lines(std::slice::from_ref(&it_public), until));
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert!(asked.contains("systemctl start ssh.service"), "{asked}");
    assert!(
        asked.contains("--on-calendar=") && asked.contains("/usr/lib/slate/ssh-access expire"),
        "{asked}"
    );

    // A key whose expiry-time has passed, beside IT's: sshd itself refuses it.
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    std::fs::write(
        ssh_dir.join("timed_authorized_keys"),
        format!("{timed}{}", authorized_keys_lines(&[old_public], past)),
    )
    .unwrap();
    let sshd = Sshd::start(dir, &ssh_dir);
    assert!(
        sshd.lets_in(&it_key),
        "IT's key before its time: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
    assert!(!sshd.lets_in(&old_key), "a key past its expiry-time");
    let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap();
    assert!(log.contains("entry expired at"), "sshd says why: {log}");

    // Closed early from the page.
    let close = format!("{page}/close");
    assert_eq!(server.submit(&page, &close, &[]), 303);
    wait_until("slated's close request", || {
        (std::fs::read_to_string(device.state_file("ssh-access.request")).ok()? == "close\n")
            .then_some(())
    });
    let said = run_helper(&root, &recorder);
    assert!(said.contains("closed early"), "{said}");
    assert!(!ssh_dir.join("timed_authorized_keys").exists());
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert!(asked.contains("systemctl stop ssh.service"), "no card keys: ssh stops: {asked}");
    assert!(!sshd.lets_in(&it_key), "IT's key after the close");
    wait_until("the close on the page", || {
        server.staff_page(&page).contains("ssh closed (by e2e.it)").then_some(())
    });

    // The same from the server's console: checked, queued, and the device writes its request.
    let keys_file = dir.join("it_key.pub");
    let said = server.cli(&[
        "device",
        "ssh",
        "--device",
        "12",
        "--keys",
        keys_file.to_str().unwrap(),
        "--minutes",
        "30",
    ]);
    assert!(said.contains("root ssh with 1 key(s) until"), "{said}");
    let request = wait_until("slated's request from the console's opening", || {
        std::fs::read_to_string(device.state_file("ssh-access.request"))
            .ok()
            .filter(|r| r.starts_with("until="))
    });
    assert!(request.ends_with(&format!(" {it_public}\n")), "{request}");
    // Both audited, as IT's.
    server.staff_cookie = dsl_cookie;
    let audit = server.staff_page("/audit");
    assert!(
        audit.contains("opened root ssh (ssh_access)")
            && audit.contains("closed root ssh (ssh_access)"),
        "{audit}"
    );
    assert!(audit.contains("e2e.it") && audit.contains("console"), "{audit}");
}
