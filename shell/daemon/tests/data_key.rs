//! `slate-data-key` with real cryptsetup on a 32 MiB LUKS2 file (no device-mapper needed: the
//! header is formatted, its token imported and exported, and the passphrase tested, but nothing
//! is opened as a block device).
//!
//! The format uses PBKDF2 with 1000 iterations to keep the test fast; the image keeps
//! cryptsetup's default (argon2id, benchmarked on the Pi). The key binding is the same either
//! way: the PBKDF only stretches the passphrase, which here is 32 random bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CID: &str = "1b534d454230305110a1b2c3d4013b01\n";
const SERIAL: &str = "10000000abcdef01\0";
const OTHER_CID: &str = "1b534d454230305110a1b2c3d5013b01\n";
const OTHER_SERIAL: &str = "10000000abcdef02\0";

/// A card and a Pi as sysfs and the device tree show them, and a LUKS2 "partition" file.
struct Device {
    tmp: tempfile::TempDir,
}

impl Device {
    fn new() -> Self {
        let device = Device { tmp: tempfile::tempdir().unwrap() };
        device.set_binding(CID, SERIAL);
        device
    }
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    fn set_binding(&self, cid: &str, serial: &str) {
        std::fs::write(self.path("cid"), cid).unwrap();
        std::fs::write(self.path("serial-number"), serial).unwrap();
    }
    fn key(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slate-data-key"));
        command
            .arg("--cid-path")
            .arg(self.path("cid"))
            .arg("--serial-path")
            .arg(self.path("serial-number"))
            .args(args)
            .stdin(Stdio::null());
        command
    }
    fn open(&self, token: &Path) -> Output {
        self.key(&["open", "--token", token.to_str().unwrap()]).output().unwrap()
    }
}

fn cryptsetup(args: &[&str]) -> Command {
    let mut command = Command::new("cryptsetup");
    command.args(args);
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("cryptsetup (cryptsetup-bin, scripts/setup)")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `producer | consumer`, as the image's scripts run them: the passphrase only in the pipe.
fn pipe(mut producer: Command, mut consumer: Command) -> (Output, Output) {
    let mut first = producer.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = first.stdout.take().unwrap();
    let second = consumer.stdin(Stdio::from(stdout)).output().expect("cryptsetup");
    (first.wait_with_output().unwrap(), second)
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Refused with `code`, nothing on stdout (cryptsetup would read it as a passphrase), and a
/// reason on stderr.
fn assert_refused(what: &str, out: &Output, code: i32, reason: &str) {
    assert_eq!(out.status.code(), Some(code), "{what}: {}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{what}: something on stdout");
    assert!(text(&out.stderr).contains(reason), "{what}: {}", text(&out.stderr));
}

#[test]
fn the_sealed_passphrase_opens_the_luks2_header_only_on_its_card_and_pi() {
    let device = Device::new();
    let disk = device.path("slate-data.img");
    std::fs::File::create(&disk).unwrap().set_len(32 << 20).unwrap();
    let disk = disk.to_str().unwrap();
    let sealed = device.path("sealed.token");

    // seal | cryptsetup luksFormat
    let (seal, format) = pipe(
        device.key(&["seal", "--token-out", sealed.to_str().unwrap()]),
        cryptsetup(&[
            "luksFormat",
            "--type",
            "luks2",
            "--batch-mode",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file=-",
            disk,
        ]),
    );
    assert_ok("seal", &seal);
    assert_ok("luksFormat", &format);
    assert!(seal.stdout.is_empty(), "the passphrase went into the pipe");

    // The token into the header, and back out of it: the header's copy is the one used.
    let import = run(cryptsetup(&[
        "token",
        "import",
        "--token-id",
        "0",
        "--json-file",
        sealed.to_str().unwrap(),
        disk,
    ]));
    assert_ok("token import", &import);
    std::fs::remove_file(&sealed).unwrap();
    let dump = run(cryptsetup(&["luksDump", disk]));
    assert_ok("luksDump", &dump);
    assert!(text(&dump.stdout).contains("slate-bound"), "{}", text(&dump.stdout));
    let export = run(cryptsetup(&["token", "export", "--token-id", "0", disk]));
    assert_ok("token export", &export);
    let token = device.path("exported.token");
    std::fs::write(&token, &export.stdout).unwrap();
    let exported: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(exported["type"], "slate-bound");
    assert_eq!(exported["keyslots"], serde_json::json!(["0"]));

    // open | cryptsetup open --test-passphrase
    let test_passphrase =
        || cryptsetup(&["open", "--test-passphrase", "--key-slot", "0", "--key-file=-", disk]);
    let (open, tested) =
        pipe(device.key(&["open", "--token", token.to_str().unwrap()]), test_passphrase());
    assert_ok("open", &open);
    assert_ok("open --test-passphrase with the unwrapped passphrase", &tested);

    // The passphrase: 64 hex digits, stable, and not in the logs with the binding.
    let opened = device.open(&token);
    assert_ok("open", &opened);
    let passphrase = text(&opened.stdout);
    assert!(
        passphrase.len() == 64 && passphrase.bytes().all(|b| b.is_ascii_hexdigit()),
        "{passphrase:?}"
    );
    for log in [&seal.stderr, &open.stderr, &opened.stderr] {
        let log = text(log);
        for secret in [passphrase.as_str(), CID.trim(), SERIAL.trim_end_matches('\0')] {
            assert!(!log.contains(secret), "a secret in the log: {log}");
        }
    }

    // The check itself can fail: another passphrase does not open the header.
    let mut wrong = test_passphrase();
    wrong.stdin(Stdio::piped());
    let mut child = wrong.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), "0".repeat(64).as_bytes()).unwrap();
    assert!(!child.wait().unwrap().success(), "a wrong passphrase opened the header");

    // A second key for IT's recovery: luksAddKey takes the unwrapped passphrase as the old one.
    let recovery = device.path("recovery.key");
    std::fs::write(&recovery, "a recovery passphrase kept by IT").unwrap();
    let old = device.path("old.key");
    std::fs::write(&old, &passphrase).unwrap();
    let add = run(cryptsetup(&[
        "luksAddKey",
        "--batch-mode",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        old.to_str().unwrap(),
        disk,
        recovery.to_str().unwrap(),
    ]));
    assert_ok("luksAddKey", &add);

    // Another card in this Pi, this card in another Pi: refused, nothing on stdout.
    device.set_binding(OTHER_CID, SERIAL);
    assert_refused("another card", &device.open(&token), 1, "GCM authentication failed");
    device.set_binding(CID, OTHER_SERIAL);
    assert_refused("another Pi", &device.open(&token), 1, "GCM authentication failed");
    device.set_binding(CID, SERIAL);
    assert_ok("the same card and Pi again", &device.open(&token));

    // A damaged token: one bit of the wrapped passphrase, or not a token at all.
    let mut damaged = exported.clone();
    let wrapped = exported["wrapped"].as_str().unwrap();
    let first = if wrapped.starts_with('A') { "B" } else { "A" };
    damaged["wrapped"] = format!("{first}{}", &wrapped[1..]).into();
    let damaged_token = device.path("damaged.token");
    std::fs::write(&damaged_token, damaged.to_string()).unwrap();
    assert_refused("a damaged token", &device.open(&damaged_token), 1, "GCM authentication");
    std::fs::write(&damaged_token, &export.stdout[..export.stdout.len() / 2]).unwrap();
    assert_refused("half a token", &device.open(&damaged_token), 1, "not valid JSON");
    assert_refused("no token", &device.open(&device.path("none")), 1, "reading the token");

    // The header itself is unchanged by all of it: its token still opens.
    let export_again = run(cryptsetup(&["token", "export", "--token-id", "0", disk]));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&export_again.stdout).unwrap(),
        exported
    );
}

#[test]
fn a_missing_or_malformed_binding_is_a_configuration_error() {
    let device = Device::new();
    let token = device.path("t.token");
    assert_ok(
        "seal",
        &device.key(&["seal", "--token-out", token.to_str().unwrap()]).output().unwrap(),
    );
    std::fs::remove_file(device.path("serial-number")).unwrap();
    assert_refused("no serial", &device.open(&token), 78, "the Pi's serial number is missing");
    device.set_binding("not hex at all\n", SERIAL);
    assert_refused("a malformed CID", &device.open(&token), 78, "the SD card's CID in");
    let out = device.key(&["seal", "--token-out", device.path("u").to_str().unwrap()]).output();
    assert_refused("seal, a malformed CID", &out.unwrap(), 78, "malformed");
    assert!(!device.path("u").exists(), "no token without a binding");

    // seal never writes over a token, and then gives no passphrase.
    device.set_binding(CID, SERIAL);
    let before = std::fs::read(&token).unwrap();
    let again = device.key(&["seal", "--token-out", token.to_str().unwrap()]).output().unwrap();
    assert_refused("seal over a token", &again, 1, "writing the token");
    assert_eq!(std::fs::read(&token).unwrap(), before);
}
