//! The image's first-boot provisioning (`images/rootfs/usr/lib/slate/provision`), run without
//! the image: every path it touches is moved into a temporary directory. Proves that a bad
//! `slate-provision.conf` applies nothing and leaves the message (file, line and field) in
//! `config-error` for slate-ui, and that a good one sets Wi-Fi, timezone, keyboard, ssh keys and
//! the USB storage / camera switches. Once the device has enrolled, only a file signed with the
//! school's key (by the real `slate-server provision sign`) is taken: a plain one, a tampered
//! one or another school's applies nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBseSv9dWqz1f0IbmPlxR8Cz0nTutw3XoB7A2cqbbeB7 it@school";
const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOSDZNjMBx0BYSisoqQBHEbSdnOhmBq5wHmSmcQXLd+64Pn7vWOnbSv7VgAc8kPjynLo/+xpjgFSt8ftgAx1eG4= laptop";

struct Device {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Device {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in ["boot", "etc", "system", "nm", "run", "zoneinfo/Europe", "xkb", "state"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("zoneinfo/Europe/London"), "TZif").unwrap();
        fs::write(root.join("zoneinfo/Europe/Paris"), "TZif").unwrap();
        fs::write(root.join("xkb/gb"), "").unwrap();
        fs::write(root.join("xkb/fr"), "").unwrap();
        Device { _dir: dir, root }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn read(&self, p: &str) -> Option<String> {
        fs::read_to_string(self.path(p)).ok()
    }

    /// Puts `conf` on the "boot partition" (None: no file) and runs provisioning.
    fn provision(&self, conf: Option<&str>) -> (bool, String) {
        let file = self.path("boot/slate-provision.conf");
        match conf {
            Some(text) => fs::write(&file, text).unwrap(),
            None => {
                let _ = fs::remove_file(&file);
            }
        }
        self.run()
    }

    /// Runs provisioning with the boot partition as it is.
    fn run(&self) -> (bool, String) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/provision");
        let out = Command::new("bash")
            .arg(script)
            .env("SLATE_BOOT_DIR", self.path("boot"))
            .env("SLATE_ETC_DIR", self.path("etc"))
            .env("SLATE_SYSTEM_DIR", self.path("system"))
            .env("SLATE_NM_DIR", self.path("nm"))
            .env("SLATE_RUN_DIR", self.path("run"))
            .env("SLATE_ZONEINFO", self.path("zoneinfo"))
            .env("SLATE_XKB_SYMBOLS", self.path("xkb"))
            .env("SLATE_SLATED", slate_e2e::binary("slated"))
            .env("SLATE_NETWORK", slate_e2e::binary("slate-network"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &*String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// What provisioning has applied, as one comparable value.
    fn applied(&self) -> Vec<(String, Option<String>)> {
        [
            "nm/slate-wifi.nmconnection",
            "system/timezone",
            "system/keyboard.env",
            "system/ssh/authorized_keys",
            "system/allow/usb_storage",
            "system/allow/camera",
        ]
        .iter()
        .map(|p| {
            (
                p.to_string(),
                self.read(p).map(|s| {
                    s.lines().filter(|l| !l.starts_with("uuid=")).collect::<Vec<_>>().join("\n")
                }),
            )
        })
        .chain(std::iter::once((
            "localtime".into(),
            fs::read_link(self.path("system/localtime")).ok().map(|l| l.display().to_string()),
        )))
        .collect()
    }
}

/// A well-formed key nobody at the school gave.
const ATTACKER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g attacker@laptop";

fn good() -> String {
    format!(
        "# the school's devices\n\
         wifi_ssid = \"School-Devices\"\n\
         wifi_psk = \"correct horse battery staple\"\n\
         timezone = \"Europe/Paris\"   # on a trip\n\
         keyboard = \"fr\"\n\
         ssh_authorized_keys = [\"{ED25519}\", \"{ECDSA}\"]\n\
         usb_storage = \"allow\"\n\
         camera = \"block\"\n"
    )
}

#[test]
fn a_good_file_sets_everything_and_no_error() {
    let dev = Device::new();
    let (ok, out) = dev.provision(Some(&good()));
    assert!(ok, "{out}");
    let wifi = dev.read("nm/slate-wifi.nmconnection").unwrap();
    assert!(
        wifi.contains("ssid=School-Devices\n")
            && wifi.contains("psk=correct horse battery staple\n"),
        "{wifi}"
    );
    let mode = fs::metadata(dev.path("nm/slate-wifi.nmconnection")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the Wi-Fi password is root's only");
    assert_eq!(
        fs::read_link(dev.path("system/localtime")).unwrap(),
        dev.path("zoneinfo/Europe/Paris")
    );
    assert_eq!(dev.read("system/timezone").unwrap(), "Europe/Paris\n");
    assert_eq!(dev.read("system/keyboard.env").unwrap(), "XKB_DEFAULT_LAYOUT=fr\n");
    assert_eq!(dev.read("system/ssh/authorized_keys").unwrap(), format!("{ED25519}\n{ECDSA}\n"));
    assert!(dev.path("system/allow/usb_storage").exists());
    assert!(!dev.path("system/allow/camera").exists());
    assert!(!dev.path("run/config-error").exists());

    // The same file again changes nothing (a stamp of its content), even what was changed since.
    fs::remove_file(dev.path("system/allow/usb_storage")).unwrap();
    let (ok, _) = dev.provision(Some(&good()));
    assert!(ok);
    assert!(!dev.path("system/allow/usb_storage").exists());
}

#[test]
fn ssh_usb_and_cameras_are_off_unless_the_file_says_so() {
    let dev = Device::new();
    assert!(dev.provision(Some(&good())).0);
    // The ssh and usb lines go: both off. Wi-Fi, timezone and keyboard stay as they were.
    let (ok, out) = dev.provision(Some("wifi_ssid = \"School-Devices\"\n"));
    assert!(ok, "{out}");
    assert!(!dev.path("system/ssh/authorized_keys").exists(), "ssh must go off with its line");
    assert!(!dev.path("system/allow/usb_storage").exists());
    assert_eq!(dev.read("system/timezone").unwrap(), "Europe/Paris\n");
    // With no file at all, everything stays as last set.
    assert!(dev.provision(Some(&good())).0);
    let before = dev.applied();
    assert!(dev.provision(None).0);
    assert_eq!(dev.applied(), before);
}

#[test]
fn a_bad_file_applies_nothing_and_names_the_line_and_field() {
    let key_for = |k: &str| format!("ssh_authorized_keys = [\"{k}\"]\n");
    let cases: Vec<(String, &str)> = vec![
        ("wifi_psk = \"short\"\n".into(), "line 1: field `wifi_psk`"),
        ("wifi_psk = \"long enough password\"\n".into(), "field `wifi_ssid`: is required"),
        ("wifi_ssid = \"\"\n".into(), "line 1: field `wifi_ssid`"),
        ("timezone = \"Mars/Olympus\"\n".into(), "line 1: field `timezone`"),
        ("timezone = \"../../etc/passwd\"\n".into(), "line 1: field `timezone`"),
        ("keyboard = \"klingon\"\n".into(), "line 1: field `keyboard`"),
        ("# ok\n\nusb_storage = \"yes\"\n".into(), "line 3: field `usb_storage`"),
        ("camera = \"on\"\n".into(), "line 1: field `camera`"),
        ("wifi_password = \"x\"\n".into(), "line 1: field `wifi_password`: is not a known setting"),
        ("timezone = Europe/London\n".into(), "line 1: expected key = \"value\""),
        ("keyboard = \"gb\"\nkeyboard = \"fr\"\n".into(), "line 2: field `keyboard`: is set twice"),
        ("timezone = [\"Europe/London\"]\n".into(), "line 1: field `timezone`: takes one"),
        ("ssh_authorized_keys = []\n".into(), "line 1: field `ssh_authorized_keys`: give 1 to 20"),
        (key_for("ssh-ed25519"), "key 1 is not an OpenSSH public key"),
        (key_for("ssh-dss AAAAB3NzaC1kc3MAAACBAP"), "key 1 is not an OpenSSH public key"),
        // An ed25519 key's blob labelled as RSA.
        (key_for(&ED25519.replace("ssh-ed25519", "ssh-rsa")), "key 1 is not an OpenSSH public key"),
        (key_for(&ED25519.replace("ZDI1NTE5", "ZDI1NTE4")), "key 1 is not an OpenSSH public key"),
        (key_for(&format!("from=10.0.0.0/8 {ED25519}")), "key 1 is not an OpenSSH public key"),
        (
            // A blob cut short (its padding lost).
            format!(
                "ssh_authorized_keys = [\"{ED25519}\", \"{}\"]\n",
                ECDSA.replace("eG4= ", "eG4 ")
            ),
            "key 2 is not an OpenSSH public key",
        ),
        (
            format!("ssh_authorized_keys = [\"{ED25519}\" \"{ECDSA}\"]\n"),
            "expected [\"key\", \"key\"]",
        ),
    ];
    for (conf, want) in cases {
        let dev = Device::new();
        // A good file first, so "nothing applied" means the earlier settings stayed.
        assert!(dev.provision(Some(&good())).0);
        let before = dev.applied();
        // Every bad line also spoils an otherwise good line that would change something.
        let prefix = ["keyboard = \"gb\"\n", "camera = \"allow\"\n"]
            .into_iter()
            .find(|p| !conf.contains(p.split(' ').next().unwrap()))
            .unwrap();
        let text = format!("{prefix}{conf}");
        let line_shift = |w: &str| match w.strip_prefix("line ") {
            Some(rest) => {
                let (n, tail) = rest.split_once(':').unwrap();
                format!("line {}:{tail}", n.parse::<u32>().unwrap() + 1)
            }
            None => w.to_string(),
        };
        let want = line_shift(want);
        let (ok, out) = dev.provision(Some(&text));
        assert!(!ok, "{conf:?} was accepted: {out}");
        let error = dev.read("run/config-error").unwrap_or_default();
        assert!(
            error.contains("slate-provision.conf: ") && error.contains(&want),
            "{conf:?}: config-error is {error:?}, wanted {want:?}"
        );
        assert!(out.contains(&want) && out.contains("nothing from it was applied"), "{out}");
        assert_eq!(dev.applied(), before, "{conf:?} changed something");

        // Fixed: applied, and the error is gone.
        assert!(dev.provision(Some("timezone = \"Europe/London\"\n")).0);
        assert!(!dev.path("run/config-error").exists());
    }
}

/// A slate.toml slated accepts (its token line last in `[server]`).
const GOOD_TOML: &str = "device_number = 12

[server]
url = \"https://127.0.0.1:8443\"
enrollment_token = \"tok-123\"

[button]
source = \"evdev\"
device = \"/dev/input/slate-button\"
";

#[test]
fn slate_toml_and_the_certificate_are_installed_when_they_change() {
    let dev = Device::new();
    fs::write(dev.path("boot/slate.toml"), GOOD_TOML).unwrap();
    fs::write(dev.path("boot/server-ca.pem"), "PEM").unwrap();
    let (ok, out) = dev.provision(None);
    assert!(ok, "{out}");
    assert!(out.contains("installed slate.toml"));
    assert_eq!(dev.read("etc/slate.toml").unwrap(), GOOD_TOML);
    assert_eq!(
        fs::metadata(dev.path("etc/slate.toml")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(dev.read("etc/server-ca.pem").unwrap(), "PEM");
    let (_, out) = dev.provision(None);
    assert!(!out.contains("installed"), "unchanged files are left alone: {out}");
    assert!(!dev.path("run/server-key.env").exists(), "no key in slate.toml, none passed on");

    // slated enrolled and took the used token out of its copy: the card's copy, token and all,
    // is the same configuration, not a new one to install over it.
    let spent = GOOD_TOML.replace("enrollment_token = \"tok-123\"\n", "");
    fs::write(dev.path("etc/slate.toml"), &spent).unwrap();
    let (_, out) = dev.provision(None);
    assert!(!out.contains("installed"), "the token is not put back: {out}");
    assert_eq!(dev.read("etc/slate.toml").unwrap(), spent);
}

#[test]
fn a_refused_slate_toml_keeps_the_last_good_one_and_names_the_field() {
    let dev = Device::new();
    fs::write(dev.path("boot/slate.toml"), GOOD_TOML).unwrap();
    assert!(dev.provision(None).0);
    let bad = GOOD_TOML.replace("device_number = 12", "device_number = 0");
    fs::write(dev.path("boot/slate.toml"), &bad).unwrap();
    let (ok, out) = dev.provision(None);
    assert!(ok, "the rest of provisioning still runs: {out}");
    assert_eq!(dev.read("etc/slate.toml").unwrap(), GOOD_TOML, "the last good one is kept");
    let error = dev.read("run/config-error").expect("the message for slate-ui's screen");
    assert!(error.contains("the last good one is kept"), "{error}");
    assert!(error.contains("field `device_number`"), "{error}");

    // A good slate-provision.conf applied on the same boot leaves that message on screen.
    let (ok, out) = dev.provision(Some(&good()));
    assert!(ok, "{out}");
    assert!(dev.read("run/config-error").is_some(), "the slate.toml message stays");

    // Fixed on the card: installed, and the message goes.
    fs::write(dev.path("boot/slate.toml"), GOOD_TOML.replace("12", "13")).unwrap();
    let (ok, out) = dev.provision(Some(&good()));
    assert!(ok && out.contains("installed slate.toml"), "{out}");
    assert!(dev.read("run/config-error").is_none());
}

#[test]
fn the_servers_policy_key_is_passed_on_from_slate_toml() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let plain = format!("SLATE_PUBLIC_KEY={key}\n");
    let cases = [
        (
            format!("device_number = 1\n[server]\nurl = \"https://x\"\npublic_key = \"{key}\"\n"),
            Some(format!("{plain}SLATE_SERVER_HOST=x\n")),
        ),
        // The server's host name goes with the key (slate-dns always resolves it); an address
        // needs no lookup, so none is passed.
        (
            format!("[server]\nurl = \"https://school.example:8443/x\"\npublic_key = \"{key}\"\n"),
            Some(format!("{plain}SLATE_SERVER_HOST=school.example\n")),
        ),
        (
            format!("[server]\nurl = \"https://192.0.2.7:8443\"\npublic_key = \"{key}\"\n"),
            Some(plain.clone()),
        ),
        (format!("[server]\n  public_key=\"{key}\"  # the school's\n"), Some(plain.clone())),
        // Not in [server], or not a key: nothing (slated itself names a bad field).
        (format!("[button]\npublic_key = \"{key}\"\n"), None),
        ("[server]\npublic_key = \"not base64!\"\n".to_string(), None),
    ];
    for (toml, expected) in cases {
        let dev = Device::new();
        // The installed copy is what counts (these pieces alone are not whole configurations).
        fs::write(dev.path("etc/slate.toml"), &toml).unwrap();
        assert!(dev.provision(None).0);
        let env = dev.read("run/server-key.env");
        assert_eq!(env, expected, "{toml}");
        if expected.is_some() {
            let mode = fs::metadata(dev.path("run/server-key.env")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640, "{toml}");
        }
    }
}

/// slated reads slate.toml for provisioning, so any valid TOML spelling counts: dotted keys,
/// single quotes, quoted keys, an inline table (awk and grep read only `key = "value"` lines).
#[test]
fn slate_toml_is_read_however_it_is_spelled() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let want = Some(format!("SLATE_PUBLIC_KEY={key}\nSLATE_SERVER_HOST=school.example\n"));
    for toml in [
        format!("server.url = 'https://school.example:8443'\nserver.public_key = '{key}'\n"),
        format!("[server]\n\"url\" = \"https://school.example\"\n'public_key' = \"{key}\"\n"),
        format!("server = {{ url = \"https://school.example\", public_key = '{key}' }}\n"),
    ] {
        let dev = Device::new();
        fs::write(dev.path("etc/slate.toml"), &toml).unwrap();
        assert!(dev.provision(None).0);
        assert_eq!(dev.read("run/server-key.env"), want, "{toml}");
    }

    // The card's copy, token and all, is the installed one once slated took the token out,
    // however the token's key is spelled.
    let dotted = "device_number = 12\n\
                  server.url = 'https://127.0.0.1:8443'\n\
                  server.enrollment_token = 'tok-123'  # from the server's setup page\n\
                  \n[button]\nsource = \"evdev\"\ndevice = \"/dev/input/slate-button\"\n";
    let quoted = GOOD_TOML.replace("enrollment_token =", "\"enrollment_token\" =");
    for card in [dotted.to_string(), quoted] {
        let dev = Device::new();
        fs::write(dev.path("boot/slate.toml"), &card).unwrap();
        let (ok, out) = dev.provision(None);
        assert!(ok && out.contains("installed slate.toml"), "{out}");
        let spent: String =
            card.lines().filter(|l| !l.contains("tok-123")).map(|l| format!("{l}\n")).collect();
        fs::write(dev.path("etc/slate.toml"), &spent).unwrap();
        let (_, out) = dev.provision(None);
        assert!(!out.contains("installed"), "the token is not put back: {out}");
        assert_eq!(dev.read("etc/slate.toml").unwrap(), spent);
    }
}

#[test]
fn the_school_authority_is_passed_on_to_the_kiosk_browser() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let toml = |ca: &str| {
        format!("[server]\nurl = \"https://10.0.2.100:8443\"\n{ca}public_key = \"{key}\"\n")
    };
    // Relative to /etc/slate, absolute, named but missing, not named.
    let cases = [
        ("ca_certificate = \"server-ca.pem\"\n", Some("etc/server-ca.pem")),
        ("ca_certificate = \"/etc/slate/other-ca.pem\"\n", None),
        ("ca_certificate = \"missing.pem\"\n", None),
        ("", None),
    ];
    for (line, copied_from) in cases {
        let dev = Device::new();
        fs::write(dev.path("etc/slate.toml"), toml(line)).unwrap();
        fs::write(dev.path("etc/server-ca.pem"), "THE SCHOOL CA").unwrap();
        assert!(dev.provision(None).0);
        let env = dev.read("run/server-key.env").unwrap();
        let copy = dev.read("run/school-ca.pem");
        match copied_from {
            Some(from) => {
                assert_eq!(copy, dev.read(from), "{line}");
                let at = dev.path("run/school-ca.pem");
                assert!(
                    env.contains(&format!("SLATE_SCHOOL_CA={}\n", at.display())),
                    "{line}: {env}"
                );
                let mode = fs::metadata(&at).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o640, "{line}");
            }
            None => {
                assert_eq!(copy, None, "{line}");
                assert!(!env.contains("SLATE_SCHOOL_CA"), "{line}: {env}");
            }
        }
    }
}

#[test]
fn the_example_on_the_boot_partition_is_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let example = fs::read_to_string(dir.join("slate-provision.conf.example")).unwrap();
    let dev = Device::new();
    let (ok, out) = dev.provision(Some(&example));
    assert!(ok, "{out}");
    assert!(dev.read("nm/slate-wifi.nmconnection").unwrap().contains("ssid=School-Devices\n"));
    // Its commented-out lines, uncommented, are valid too (with a real key in place).
    let on = example
        .replace("# usb_storage", "usb_storage")
        .replace("# camera", "camera")
        .replace(
            "# ssh_authorized_keys = [\"ssh-ed25519 AAAA... it@school\", \"ssh-ed25519 AAAA... technician\"]",
            &format!("ssh_authorized_keys = [\"{ED25519}\"]"),
        );
    assert_ne!(on, example);
    let (ok, out) = dev.provision(Some(&on));
    assert!(ok, "{out}");
    assert!(
        dev.path("system/allow/usb_storage").exists() && dev.path("system/allow/camera").exists()
    );
    assert!(dev.path("system/ssh/authorized_keys").exists());
}

/// Runs one of the image's helper scripts with `env`, returning (success, stdout + stderr).
fn helper(name: &str, args: &[&str], env: &[(&str, &Path)]) -> (bool, String) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate").join(name);
    let mut cmd = Command::new("sh");
    cmd.arg(script).args(args).env_remove("SLATE_PUBLIC_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &*String::from_utf8_lossy(&out.stderr),
    )
}

/// A stand-in program that writes its arguments, one a line, to `<dir>/args`.
fn recorder(dir: &Path) -> PathBuf {
    let bin = dir.join("record");
    fs::write(&bin, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}/args\n", dir.display()))
        .unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_refused_usb_interface_is_filed_with_slated() {
    let cases = [
        ("08", "usb_storage", Some("SanDisk Cruzer\u{7}"), "0781:5567 SanDisk Cruzer"),
        ("0e", "camera", None, "0781:5567"),
        ("03", "other_usb", Some("Keyboard"), "0781:5567 Keyboard"),
    ];
    for (class, kind, product, description) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sys/bus/usb/devices/1-1");
        let iface = dir.path().join("sys/bus/usb/devices/1-1/1-1:1.0");
        fs::create_dir_all(&iface).unwrap();
        fs::write(iface.join("bInterfaceClass"), format!("{class}\n")).unwrap();
        fs::write(dev.join("idVendor"), "0781\n").unwrap();
        fs::write(dev.join("idProduct"), "5567\n").unwrap();
        if let Some(p) = product {
            fs::write(dev.join("product"), format!("{p}\n")).unwrap();
        }
        // The kernel lists interfaces beside their device; the script goes up from the interface.
        std::os::unix::fs::symlink("1-1/1-1:1.0", dir.path().join("sys/bus/usb/devices/1-1:1.0"))
            .unwrap();
        let ctl = recorder(dir.path());
        let (ok, out) = helper(
            "device-refused",
            &["1-1:1.0"],
            &[("SLATE_SYSFS", &dir.path().join("sys")), ("SLATE_CTL", &ctl)],
        );
        assert!(ok, "{out}");
        assert!(out.contains(&format!("slate: refused {kind} {description}")), "{out}");
        let args = fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args, format!("device-refused\n--kind\n{kind}\n--description\n{description}\n"));
    }
    // slated away: it tries, then says so and fails.
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = helper(
        "device-refused",
        &["1-9:1.0"],
        &[
            ("SLATE_SYSFS", dir.path()),
            ("SLATE_CTL", Path::new("/bin/false")),
            ("SLATE_TRIES", Path::new("1")),
        ],
    );
    assert!(!ok && out.contains("could not tell slated"), "{out}");
}

#[test]
fn slate_dns_forwards_to_the_resolvers_dhcp_gave() {
    let cases = [
        (
            "nameserver 192.0.2.53\nnameserver 127.0.0.53\nnameserver 2001:db8::1\n",
            vec!["--upstream", "192.0.2.53:53", "--upstream", "[2001:db8::1]:53"],
        ),
        // None yet: it runs, forwarding nowhere, until NetworkManager's dispatcher restarts it.
        ("# nothing\n", vec!["--upstream", "127.0.0.1:9"]),
    ];
    for (resolv, upstreams) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("resolv.conf"), resolv).unwrap();
        let bin = recorder(dir.path());
        let mut cmd = Command::new("sh");
        cmd.arg(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/dns-start"),
        )
        .env("SLATE_NM_RESOLV", dir.path().join("resolv.conf"))
        .env("SLATE_DNS_BIN", &bin)
        .env("SLATE_PUBLIC_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert!(cmd.status().unwrap().success());
        let args = fs::read_to_string(dir.path().join("args")).unwrap();
        let mut want = vec![
            "--listen",
            "127.0.0.1:53",
            "--public-key",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ];
        want.extend(upstreams);
        assert_eq!(args.lines().collect::<Vec<_>>(), want, "{resolv}");
    }
    // The school server's host name always resolves.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    let bin = recorder(dir.path());
    let status = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/dns-start"))
        .env("SLATE_NM_RESOLV", dir.path().join("resolv.conf"))
        .env("SLATE_DNS_BIN", &bin)
        .env("SLATE_PUBLIC_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .env("SLATE_SERVER_HOST", "school.example")
        .status()
        .unwrap();
    assert!(status.success());
    let args = fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(args.ends_with("--always-allow\nschool.example\n"), "{args}");
    // So do the time servers in the image's timesyncd drop-in (names only, not addresses).
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    fs::write(
        dir.path().join("timesyncd.conf"),
        "[Time]\nNTP=ntp.school.example 192.0.2.123 2001:db8::123\nFallbackNTP=0.debian.pool.ntp.org\n",
    )
    .unwrap();
    // And the school's, from slate-provision.conf's ntp_servers (slate-network's drop-in).
    fs::write(dir.path().join("school.conf"), "[Time]\nNTP=ntp2.school.example 10.0.0.1\n")
        .unwrap();
    let bin = recorder(dir.path());
    let status = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/dns-start"))
        .env("SLATE_NM_RESOLV", dir.path().join("resolv.conf"))
        .env("SLATE_TIMESYNCD_CONF", dir.path().join("timesyncd.conf"))
        .env("SLATE_SCHOOL_TIMESYNCD_CONF", dir.path().join("school.conf"))
        .env("SLATE_DNS_BIN", &bin)
        .env("SLATE_PUBLIC_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .status()
        .unwrap();
    assert!(status.success());
    let args = fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(
        args.ends_with(
            "--always-allow\nntp.school.example\n--always-allow\n0.debian.pool.ntp.org\n\
             --always-allow\nntp2.school.example\n"
        ),
        "{args}"
    );
    // The image's own drop-in names resolvable time servers.
    let shipped = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../images/rootfs/etc/systemd/timesyncd.conf.d/slate.conf"),
    )
    .unwrap();
    assert!(shipped.contains("\nFallbackNTP=0.debian.pool.ntp.org"), "{shipped}");
    // No key from slate.toml: not started, exit 78, EX_CONFIG (the unit does not restart it).
    let dir = tempfile::tempdir().unwrap();
    let bin = recorder(dir.path());
    let (ok, out) = helper(
        "dns-start",
        &[],
        &[("SLATE_DNS_BIN", &bin), ("SLATE_NM_RESOLV", &dir.path().join("none"))],
    );
    assert!(!ok && out.contains("no [server] public_key"), "{out}");
    assert!(!dir.path().join("args").exists());
}

/// The device's ssh host key after a power cut just after it was made: ext4 kept both files at
/// 0 bytes (found by images/powercut; sshd then never started again). ssh.service's own
/// ExecStartPre steps, run as systemd would with the device's paths moved into a temporary
/// directory, must make a key sshd can read, not stop at ssh-keygen's "Overwrite (y/n)?", and
/// must keep a good key as it is.
#[test]
fn an_ssh_host_key_left_empty_by_a_power_cut_is_made_again() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let dropin =
        fs::read_to_string(images.join("rootfs/etc/systemd/system/ssh.service.d/slate.conf"))
            .unwrap();
    let steps: Vec<&str> = dropin
        .lines()
        .filter_map(|line| line.strip_prefix("ExecStartPre="))
        .filter(|command| !command.is_empty() && !command.contains("sshd -t"))
        .collect();
    assert!(!steps.is_empty(), "{dropin}");
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path();
    let helpers = images.join("rootfs/usr/lib/slate");
    let run_steps = || {
        for step in &steps {
            let command = step
                .replace("$$", "$")
                .replace("/var/lib/slate-system/ssh", &ssh.display().to_string())
                .replace("/usr/lib/slate/", &format!("{}/", helpers.display()));
            let out = Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("SLATE_SSH_DIR", ssh)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{command}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let key = ssh.join("ssh_host_ed25519_key");
    fs::write(&key, "").unwrap();
    fs::write(ssh.join("ssh_host_ed25519_key.pub"), "").unwrap();
    run_steps();
    let readable = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(readable.status.success(), "{}", String::from_utf8_lossy(&readable.stderr));
    let made = fs::read(&key).unwrap();
    run_steps();
    assert_eq!(fs::read(&key).unwrap(), made, "a good key is kept");
    assert_eq!(fs::read_dir(ssh).unwrap().count(), 2, "nothing is left beside the key pair");
}

/// A card's boot partition and the target slot's root for `slot-switch` (RAUC's backend) and
/// `mark-good`, all in a temporary directory.
struct Slots {
    dir: tempfile::TempDir,
}

impl Slots {
    /// Slot A committed and booted; slot B written (its root has the boot files images/build puts
    /// in every root file system).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("boot/slot-a")).unwrap();
        // config.txt as images/build leaves it: fixed kernel names, slot.txt included at the end.
        fs::write(
            d.join("boot/config.txt"),
            "arm_64bit=1\nupstream_kernel=1\nkernel=vmlinuz\ninitramfs initrd.img\n[all]\n\
             disable_splash=1\n[pi4]\ndtoverlay=slate\n[pi5]\ndtoverlay=slate-pi5\n[all]\n\
             include slot.txt\n",
        )
        .unwrap();
        fs::write(
            d.join("boot/slot.txt"),
            "[all]\nos_prefix=slot-a/\n[tryboot]\nos_prefix=slot-b/\n[all]\n",
        )
        .unwrap();
        let new_root = d.join("slot-root/usr/lib/slate/slot-boot");
        fs::create_dir_all(new_root.join("overlays")).unwrap();
        for (dir, kernel) in
            [(d.join("boot/slot-a"), "old kernel"), (new_root.clone(), "new kernel")]
        {
            fs::write(dir.join("vmlinuz"), kernel).unwrap();
            fs::write(dir.join("initrd.img"), "initrd").unwrap();
            fs::write(dir.join("bcm2711-rpi-4-b.dtb"), "dtb").unwrap();
        }
        fs::write(new_root.join("overlays/slate.dtbo"), "overlay").unwrap();
        fs::write(
            new_root.join("cmdline.txt"),
            "console=serial0,115200 root=PARTUUID=5a7e0012-0@PART@ rauc.slot=@SLOT@ panic=10 ro\n",
        )
        .unwrap();
        fs::write(
            d.join("boot/slot-a/cmdline.txt"),
            "console=serial0,115200 root=PARTUUID=5a7e0012-02 rauc.slot=A panic=10 ro\n",
        )
        .unwrap();
        let slots = Slots { dir };
        slots.booted("A");
        slots
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn read(&self, p: &str) -> Option<String> {
        fs::read_to_string(self.path(p)).ok()
    }
    /// A new boot of slot `slot`: its command line, and /run empty again.
    fn booted(&self, slot: &str) {
        let part = if slot == "A" { 2 } else { 3 };
        fs::write(
            self.path("cmdline"),
            format!(
                "console=ttyAMA0 root=PARTUUID=5a7e0012-0{part} rauc.slot={slot} panic=10 ro\n"
            ),
        )
        .unwrap();
        let _ = fs::remove_file(self.path("reboot-param"));
    }
    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("SLATE_BOOT_DIR", self.path("boot")),
            ("SLATE_CMDLINE", self.path("cmdline")),
            ("SLATE_REBOOT_PARAM", self.path("reboot-param")),
            ("SLATE_SLOT_ROOT", self.path("slot-root")),
        ]
    }
    fn switch(&self, args: &[&str]) -> (bool, String) {
        let env = self.env();
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        helper("slot-switch", args, &env)
    }
    fn out(&self, args: &[&str]) -> String {
        let (ok, out) = self.switch(args);
        assert!(ok, "slot-switch {args:?}: {out}");
        out.trim().to_string()
    }
    /// What the emulated firmware (images/firmware) boots from this boot partition.
    fn firmware(&self, tryboot: bool) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/firmware");
        let mut cmd = Command::new("bash");
        cmd.arg(script);
        if tryboot {
            cmd.arg("--tryboot");
        }
        let out = cmd.arg(self.path("boot")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn an_updated_slot_is_tried_once_and_committed_only_from_its_own_good_boot() {
    let s = Slots::new();
    let committed_a = s.read("boot/slot.txt").unwrap();
    assert_eq!(s.out(&["get-current"]), "A");
    assert_eq!(s.out(&["get-primary"]), "A");
    assert_eq!(s.out(&["get-state", "A"]), "good");
    assert_eq!(s.out(&["get-state", "B"]), "bad");
    assert!(s.firmware(false).starts_with("os_prefix=slot-a/ kernel=slot-a/vmlinuz "));
    // RAUC marks the slot it is about to write bad: never the committed one.
    let (ok, out) = s.switch(&["set-state", "A", "bad"]);
    assert!(!ok && out.contains("the committed slot"), "{out}");
    s.out(&["set-state", "B", "bad"]);

    // After RAUC wrote slot B: its boot files go to slot-b/, and the next reboot is a trial.
    s.out(&["set-primary", "B"]);
    assert_eq!(s.read("boot/slot-b/vmlinuz").unwrap(), "new kernel");
    assert_eq!(s.read("boot/slot-b/overlays/slate.dtbo").unwrap(), "overlay");
    let cmdline = s.read("boot/slot-b/cmdline.txt").unwrap();
    assert!(cmdline.contains(" root=PARTUUID=5a7e0012-03 rauc.slot=B "), "{cmdline}");
    assert_eq!(s.read("reboot-param").unwrap(), "0 tryboot\n");
    assert_eq!(s.out(&["get-primary"]), "B");
    assert_eq!(s.read("boot/slot.txt").unwrap(), committed_a, "nothing committed before B ran");
    let (ok, out) = s.switch(&["set-state", "B", "good"]);
    assert!(!ok && out.contains("has not been booted"), "{out}");
    // The firmware: slot A on any ordinary boot, slot B only with the one-shot flag.
    assert!(s.firmware(false).starts_with("os_prefix=slot-a/ "));
    assert!(s.firmware(true).starts_with("os_prefix=slot-b/ kernel=slot-b/vmlinuz "));

    // The trial boot of B: A is still what every other boot starts, and may not be written.
    s.booted("B");
    assert_eq!(s.out(&["get-current"]), "B");
    assert_eq!(s.out(&["get-primary"]), "A");
    assert_eq!(s.out(&["get-state", "B"]), "bad");
    let (ok, out) = s.switch(&["set-state", "A", "bad"]);
    assert!(!ok && out.contains("the committed slot"), "{out}");
    // Healthy (slate-mark-good -> rauc status mark-good booted): B is committed.
    s.out(&["set-state", "B", "good"]);
    assert_eq!(s.out(&["committed"]), "B");
    assert_eq!(s.out(&["get-state", "B"]), "good");
    assert_eq!(s.out(&["get-state", "A"]), "bad");
    assert!(s.firmware(false).starts_with("os_prefix=slot-b/ "));
    assert!(s.firmware(true).starts_with("os_prefix=slot-a/ "));
    assert!(!s.path("boot/slot.tmp").exists());
}

#[test]
fn a_slot_without_its_boot_files_is_never_tried() {
    let s = Slots::new();
    fs::remove_dir_all(s.path("slot-root/usr/lib/slate/slot-boot")).unwrap();
    let (ok, out) = s.switch(&["set-primary", "B"]);
    assert!(!ok && out.contains("not bootable"), "{out}");
    assert!(!s.path("reboot-param").exists());
    assert!(!s.path("boot/slot-b").exists());
    assert_eq!(s.out(&["get-primary"]), "A");
    // Asking for the committed slot drops a trial asked for earlier.
    fs::write(s.path("reboot-param"), "0 tryboot\n").unwrap();
    s.out(&["set-primary", "A"]);
    assert!(!s.path("reboot-param").exists());
}

/// Runs `mark-good` on a boot of `slot` with the journal lines given, slated active or not, the
/// kiosk session enabled or not, at `uptime` seconds. Returns (success, output, what systemctl
/// was asked to do). `rauc status mark-good booted` is a stand-in that does what RAUC does:
/// calls the backend's set-state for the booted slot.
fn mark_good(
    s: &Slots,
    slated_journal: &str,
    session_journal: Option<&str>,
    slated_active: bool,
    uptime: &str,
) -> (bool, String, String) {
    let d = s.path("stubs");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("slated.journal"), slated_journal).unwrap();
    let switch =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/rootfs/usr/lib/slate/slot-switch");
    let stubs = [
        (
            "journalctl",
            format!(
                "case \"$*\" in *slated.service*) cat {0}/slated.journal ;; *slate-session.service*) cat {0}/session.journal ;; esac\n",
                d.display()
            ),
        ),
        (
            "systemctl",
            format!(
                "echo \"$*\" >> {0}/systemctl.calls\n\
                 case \"$*\" in *is-active*slated*) {1} ;; *is-enabled*slate-session*) {2} ;; esac\n",
                d.display(),
                if slated_active { "exit 0" } else { "exit 3" },
                if session_journal.is_some() { "exit 0" } else { "exit 1" },
            ),
        ),
        (
            "rauc",
            format!(
                "echo \"$*\" >> {0}/rauc.calls\n\
                 [ \"$*\" = 'status mark-good booted' ] || exit 2\n\
                 exec sh {1} set-state \"$(sh {1} get-current)\" good\n",
                d.display(),
                switch.display()
            ),
        ),
    ];
    for (name, body) in stubs {
        let f = d.join(name);
        fs::write(&f, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
    }
    if let Some(j) = session_journal {
        fs::write(d.join("session.journal"), j).unwrap();
    }
    fs::write(s.path("uptime"), format!("{uptime} 10.00\n")).unwrap();
    let mut env = s.env();
    env.extend([
        ("SLATE_SLOT_SWITCH", switch.clone()),
        ("SLATE_JOURNALCTL", d.join("journalctl")),
        ("SLATE_SYSTEMCTL", d.join("systemctl")),
        ("SLATE_RAUC", d.join("rauc")),
        ("SLATE_UPTIME", s.path("uptime")),
        ("SLATE_TRY_DEADLINE_S", PathBuf::from("300")),
        ("SLATE_TRY_INTERVAL_S", PathBuf::from("0")),
        ("SLATE_RELEASE", s.path("slate-release")),
        ("SLATE_UPDATE_DIR", s.path("data/slate/update")),
    ]);
    fs::write(s.path("slate-release"), "SLATE_VERSION=0.2.0+update2\n").unwrap();
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (ok, out) = helper("mark-good", &[], &env);
    let calls = fs::read_to_string(d.join("systemctl.calls")).unwrap_or_default();
    let _ = fs::remove_file(d.join("systemctl.calls"));
    (ok, out, calls)
}

const READY: &str = "2026-12-06T17:25:25Z  INFO slate_shell::daemon: hello filed device=12\n\
                     slated ready device=12\n";
const UPLOADED: &str =
    "2026-12-06T17:25:31Z  INFO slate_shell::upload: uploaded events=1 stored=1 duplicates=0\n";

#[test]
fn a_tried_slot_is_marked_good_only_when_slated_the_server_and_the_screen_are_there() {
    // The committed slot's boot: nothing to confirm, RAUC not asked.
    let s = Slots::new();
    let (ok, out, calls) = mark_good(&s, READY, None, true, "40.0");
    assert!(ok && out.contains("nothing to confirm"), "{out}");
    assert!(calls.is_empty() && !s.path("stubs/rauc.calls").exists(), "{calls}");

    // The trial boot of B (minimal profile): ready and uploaded -> committed.
    let tried = || {
        let s = Slots::new();
        s.out(&["set-primary", "B"]);
        s.booted("B");
        s
    };
    let s = tried();
    let (ok, out, calls) = mark_good(&s, &format!("{READY}{UPLOADED}"), None, true, "80.5");
    assert!(ok && out.contains("slot B marked good"), "{out}");
    assert!(!calls.contains("reboot"), "{calls}");
    assert_eq!(s.out(&["committed"]), "B");
    assert!(!s.path("data/slate/update/trial-failed").exists(), "nothing to tell slated");

    // Not healthy by the deadline -> a plain reboot (no trial asked), B not committed; what is
    // missing is named.
    let healthy = format!("{READY}{UPLOADED}");
    let cases: [(&str, Option<&str>, bool, &str); 4] = [
        // the server never reached
        (READY, None, true, "server-reached"),
        // a slated that never comes up (the broken bundle)
        ("slated: error: cannot start\n", None, false, "slated-ready"),
        // slated said ready once, then died (not active)
        (&healthy, None, false, "slated-ready"),
        // kiosk: everything but the screen
        (&healthy, Some("INFO slate_ui::front: kiosk window mapped=false\n"), true, "kiosk-screen"),
    ];
    for (journal, session, active, missing) in cases {
        let s = tried();
        let (ok, out, calls) = mark_good(&s, journal, session, active, "300.2");
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!("missing: {missing}")) && out.contains("rebooting to slot A"),
            "{out}"
        );
        assert!(calls.lines().any(|l| l == "reboot"), "{calls}");
        assert!(!s.path("reboot-param").exists(), "the reboot must not be another trial");
        assert_eq!(s.out(&["committed"]), "A");
        assert!(s.firmware(false).starts_with("os_prefix=slot-a/ "));
        // slated on slot A reads why, reports it and never installs this version again.
        let told = fs::read_to_string(s.path("data/slate/update/trial-failed")).unwrap();
        assert!(
            told.starts_with(&format!(
                "version=0.2.0+update2\nreason=not healthy 300s after boot (missing: {missing}"
            )) && told.ends_with(")\n"),
            "{told}"
        );
        assert!(out.contains("roll-back of 0.2.0+update2 recorded for slated"), "{out}");
    }

    // Kiosk with the screen up -> committed.
    let s = tried();
    let session =
        "INFO slate_ui::front: kiosk window mapped=true screen=SignIn app_running=false\n";
    let (ok, out, _) = mark_good(&s, &format!("{READY}{UPLOADED}"), Some(session), true, "90.0");
    assert!(ok && out.contains("slot B marked good"), "{out}");
}

/// The school's key as `slate-server init` printed it, and a provisioning file signed by the
/// real `slate-server provision sign` in that server's data directory.
struct School {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    key: String,
}

impl School {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("server");
        let out = Command::new(slate_e2e::binary("slate-server"))
            .args(["init", "--school", "Oakfield", "--host", "slate.test", "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let said = String::from_utf8(out.stdout).unwrap();
        let key = said.split("policy key: ").nth(1).unwrap().split(' ').next().unwrap().into();
        School { _dir: dir, data_dir, key }
    }

    /// `text` as IT signs it for the cards.
    fn sign(&self, text: &str) -> Vec<u8> {
        self.sign_with(text, &[])
    }

    /// `text` signed with the certificate files it names beside it, as IT keeps them.
    fn sign_with(&self, text: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
        let conf = self.data_dir.with_file_name("slate-provision.conf");
        let signed = self.data_dir.with_file_name("slate-provision.signed");
        fs::write(&conf, text).unwrap();
        for (name, bytes) in files {
            fs::write(self.data_dir.with_file_name(name), bytes).unwrap();
        }
        let out = Command::new(slate_e2e::binary("slate-server"))
            .args(["provision", "sign", "--data-dir"])
            .arg(&self.data_dir)
            .arg("--file")
            .arg(&conf)
            .arg("--out")
            .arg(&signed)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        fs::read(&signed).unwrap()
    }
}

impl Device {
    /// The installed slate.toml trusts `key`; `enrolled`: slated's credential is there.
    fn trusting(key: &str, enrolled: bool) -> Self {
        let dev = Device::new();
        let toml = GOOD_TOML.replace(
            "[server]\n",
            &format!(
                "state_dir = \"{}\"\n\n[server]\npublic_key = \"{key}\"\n",
                dev.path("state").display()
            ),
        );
        fs::write(dev.path("etc/slate.toml"), toml).unwrap();
        if enrolled {
            fs::write(dev.path("state/credential"), "c-0123456789\n").unwrap();
        }
        dev
    }

    /// Puts a signed file on the boot partition beside (or instead of) the plain one, and runs.
    fn provision_signed(&self, signed: &[u8], conf: Option<&str>) -> (bool, String) {
        fs::write(self.path("boot/slate-provision.signed"), signed).unwrap();
        self.provision(conf)
    }
}

/// Issue 15: the card is no key to the device. Before enrollment a plain file is taken (IT
/// flashing the card); after it, only a file IT signed on the school's server. A plain,
/// tampered or another school's file then applies nothing (ssh keys above all) and says why on
/// the config-error screen; fixing the card (the signed file back) clears it.
#[test]
fn an_enrolled_device_takes_only_a_provisioning_file_signed_by_its_school() {
    let school = School::new();
    let other = School::new();
    let signed = school.sign(&good());
    let theirs = other.sign(&good());
    let tampered = {
        let mut bundle: serde_json::Value = serde_json::from_slice(&signed).unwrap();
        let payload =
            bundle["payload"].as_str().unwrap().replace("camera = \"block\"", "camera = \"allow\"");
        bundle["payload"] = payload.into();
        serde_json::to_vec(&bundle).unwrap()
    };
    // A kiosk-policy's signature by the same key, passed off as a provisioning file.
    let relabelled = {
        let mut bundle: serde_json::Value = serde_json::from_slice(&signed).unwrap();
        bundle["kind"] = "kiosk-policy".into();
        serde_json::to_vec(&bundle).unwrap()
    };

    // Before enrollment: the plain file, or the signed one, is taken.
    let dev = Device::trusting(&school.key, false);
    let (ok, out) = dev.provision(Some(&good()));
    assert!(ok && out.contains("taken because this device has not enrolled yet"), "{out}");
    assert!(dev.read("system/ssh/authorized_keys").unwrap().contains(ED25519));
    let dev = Device::trusting(&school.key, false);
    let (ok, out) = dev.provision_signed(&signed, None);
    assert!(ok && out.contains("signed with the school's key"), "{out}");
    assert!(dev.read("system/ssh/authorized_keys").unwrap().contains(ED25519));

    // After enrollment: signed by the school, taken (a plain file beside it is not read).
    let dev = Device::trusting(&school.key, true);
    let (ok, out) = dev.provision_signed(&signed, Some("camera = \"allow\"\n"));
    assert!(ok, "{out}");
    let applied = dev.applied();
    assert!(dev.read("system/ssh/authorized_keys").unwrap().contains(ED25519));
    assert!(!dev.path("system/allow/camera").exists(), "the signed file's camera = block");

    let refusals: Vec<(&str, Option<&[u8]>, &str)> = vec![
        ("plain", None, "is not signed, and this device has enrolled"),
        ("tampered", Some(tampered.as_slice()), "is not signed with this school's key"),
        ("another school's", Some(theirs.as_slice()), "does not match the school server's key"),
        ("relabelled", Some(relabelled.as_slice()), "where a provisioning was expected"),
    ];
    // Someone with the card adds their own key (the signed file has IT's two).
    let attack = format!("ssh_authorized_keys = [\"{ATTACKER}\"]\ncamera = \"allow\"\n");
    for (name, file, want) in refusals {
        let _ = fs::remove_file(dev.path("boot/slate-provision.signed"));
        let (ok, out) = match file {
            Some(bytes) => dev.provision_signed(bytes, None),
            None => dev.provision(Some(&attack)),
        };
        assert!(!ok, "{name} was taken: {out}");
        assert!(out.contains(want) && out.contains("nothing from it was applied"), "{name}: {out}");
        let error = dev.read("run/config-error").unwrap_or_default();
        assert!(error.contains("slate-provision.") && error.contains(want), "{name}: {error}");
        assert_eq!(dev.applied(), applied, "{name} changed something");
        let keys = dev.read("system/ssh/authorized_keys").unwrap();
        assert!(!keys.contains("attacker@"), "{name}: {keys}");
        // Still refused on the next boot: a refusal leaves no stamp.
        let (again, out) = dev.run();
        assert!(!again, "{name} taken on the next boot: {out}");
    }

    // The school's signed file back on the card: taken, the message gone.
    let (ok, out) = dev.provision_signed(&signed, None);
    assert!(ok, "{out}");
    assert!(!dev.path("run/config-error").exists());

    // Someone with the card puts another school's key in slate.toml and signs their own file
    // with it: the key pinned on the data partition at the first check after enrolling decides.
    assert!(dev.read("state/school-key").unwrap().contains(&school.key));
    let toml = dev.read("etc/slate.toml").unwrap().replace(&school.key, &other.key);
    fs::write(dev.path("etc/slate.toml"), toml).unwrap();
    let (ok, out) = dev.provision_signed(&theirs, None);
    assert!(!ok && out.contains("does not match the school server's key"), "{out}");
    let keys = dev.read("system/ssh/authorized_keys").unwrap();
    assert!(keys.contains(ED25519), "IT's keys stay: {keys}");

    // A device with no key cannot check a signature: refused, nothing applied.
    let dev = Device::new();
    fs::write(dev.path("etc/slate.toml"), GOOD_TOML).unwrap();
    let (ok, out) = dev.provision_signed(&signed, None);
    assert!(!ok && out.contains("no school key to check it with"), "{out}");
    assert!(!dev.path("system/ssh/authorized_keys").exists());
}

/// A plain file taken before enrollment stays applied after it, and is not refused while it is
/// the same file; changed on the card after enrollment, it is refused.
#[test]
fn a_plain_file_from_before_enrollment_is_kept_but_not_changed_after_it() {
    let school = School::new();
    let dev = Device::trusting(&school.key, false);
    assert!(dev.provision(Some(&good())).0);
    let applied = dev.applied();
    fs::write(dev.path("state/credential"), "c-0123456789\n").unwrap();
    let (ok, out) = dev.run();
    assert!(ok, "the same file, already applied: {out}");
    assert!(!dev.path("run/config-error").exists());
    let (ok, out) = dev.provision(Some(&good().replace("ssh_authorized_keys", "# ssh")));
    assert!(!ok && out.contains("is not signed, and this device has enrolled"), "{out}");
    assert_eq!(dev.applied(), applied, "ssh stays as IT left it");
}

/// The school network's keys through the script: slate-network checks them with the rest (one
/// bad network key and the timezone does not change either; the message names the field in
/// `config-error`), and applies them after the rest.
#[test]
fn school_network_keys_are_checked_with_the_rest_and_applied_by_slate_network() {
    let dev = Device::new();
    let provision = |conf: &str| dev.provision(Some(conf));
    let (ok, out) = provision(
        "timezone = \"Europe/Paris\"\nproxy = \"http://proxy.school.example\"\nwifi_country = \"GB\"\n",
    );
    assert!(!ok, "{out}");
    let error = dev.read("run/config-error").unwrap();
    assert!(error.contains("slate-provision.conf: field `proxy`: "), "{error}");
    assert!(dev.read("system/timezone").is_none(), "nothing applied: {out}");
    assert!(!dev.path("system/network").exists(), "nothing applied: {out}");

    let (ok, out) = provision(
        "timezone = \"Europe/Paris\"\nproxy = \"http://proxy.school.example:3128\"\n\
         wifi_country = \"GB\"\nntp_servers = \"ntp.school.example\"\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains("slate-provision: proxy http://proxy.school.example:3128"), "{out}");
    assert!(!dev.path("run/config-error").exists());
    assert_eq!(dev.read("system/timezone").unwrap(), "Europe/Paris\n");
    assert_eq!(dev.read("system/network/wifi-country").unwrap(), "GB\n");
    assert!(dev
        .read("system/network/network.env")
        .unwrap()
        .contains("HTTPS_PROXY=http://proxy.school.example:3128\n"));
    assert!(dev
        .read("system/network/timesyncd.conf")
        .unwrap()
        .contains("NTP=ntp.school.example\n"));
}

/// A self-signed CA certificate (PEM) named `name`, made by openssl.
fn openssl_ca(dir: &Path, name: &str) -> Vec<u8> {
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pem")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-days", "2", "-subj", &format!("/CN={name}"), "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    fs::read(cert).unwrap()
}

/// Issue 15 again: the signature covers the certificate files the signed text names, through
/// the SHA-256 `slate-server provision sign` records. The school's inspection CA swapped on the
/// card for someone else's: refused by name, nothing of the file applied (not the CA, not the
/// timezone); the school's file back: applied.
#[test]
fn a_certificate_swapped_on_the_card_after_signing_is_refused() {
    let school = School::new();
    let dir = tempfile::tempdir().unwrap();
    let ours = openssl_ca(dir.path(), "School Inspection CA");
    let theirs = openssl_ca(dir.path(), "Attacker CA");
    let text = format!("{}ssl_inspection_ca = \"inspection-ca.pem\"\n", good());
    let signed = school.sign_with(&text, &[("inspection-ca.pem", &ours)]);
    let payload: serde_json::Value = serde_json::from_slice(&signed).unwrap();
    let sum = Command::new("sha256sum").arg(dir.path().join("School Inspection CA.pem")).output();
    let sum = String::from_utf8(sum.unwrap().stdout).unwrap();
    let sha = sum.split(' ').next().unwrap();
    assert!(
        payload["payload"]
            .as_str()
            .unwrap()
            .contains(&format!("ssl_inspection_ca_sha256 = \"{sha}\"")),
        "{payload}"
    );

    let dev = Device::trusting(&school.key, true);
    let before = dev.applied();
    fs::write(dev.path("boot/inspection-ca.pem"), &theirs).unwrap();
    let (ok, out) = dev.provision_signed(&signed, None);
    assert!(!ok, "the swapped CA was taken: {out}");
    let want = "field `ssl_inspection_ca`: \"inspection-ca.pem\" on the boot partition is not the \
                file that was signed";
    assert!(out.contains(want) && out.contains("nothing from it was applied"), "{out}");
    assert!(dev.read("run/config-error").unwrap().contains(want));
    assert_eq!(dev.applied(), before, "something of the file was applied");
    assert!(!dev.path("system/network").exists(), "school network applied: {out}");

    // The school's CA back on the card: the same signed file is taken, the CA trusted.
    fs::write(dev.path("boot/inspection-ca.pem"), &ours).unwrap();
    let (ok, out) = dev.run();
    assert!(ok, "{out}");
    assert!(out.contains("SSL-inspection CA \"CN=School Inspection CA\" trusted"), "{out}");
    assert!(!dev.path("run/config-error").exists());
    assert_eq!(
        fs::read(dev.path("system/network/local-ca/slate-ssl-inspection.crt")).unwrap(),
        ours
    );
    assert_eq!(dev.read("system/timezone").unwrap(), "Europe/Paris\n");
}
