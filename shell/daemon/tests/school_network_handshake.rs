//! A real 802.1X handshake with what `slate-network` writes: the real binary applies a card,
//! the real NetworkManager (with its real wpa_supplicant) loads the keyfile it rendered and
//! authenticates against hostapd's EAP server, then DHCP and a ping run over the link.
//!
//! The test network is two network namespaces the test makes and a veth pair between them:
//! - the authenticator's: `hostapd` (`driver=wired`, its internal EAP server with a server
//!   certificate the test made) and `dnsmasq` as the school's DHCP server;
//! - the device's: in a private mount namespace (its own tmpfs on `/run` and
//!   `/var/lib/NetworkManager`, `/sys` read-only so NetworkManager does not wait for a udev
//!   that is not running here), a private system D-Bus, `wpa_supplicant -u` on it and
//!   `NetworkManager` with its own configuration, keyfile directory and state file.
//!
//! What differs from production, and why: there is no Wi-Fi radio here (`mac80211_hwsim` is
//! not loadable in a container), so the same EAP runs over wired 802.1X. The rendered keyfile
//! is changed only by [`wired_keyfile`]: `type=wifi` becomes `type=ethernet`, the `[wifi]` and
//! `[wifi-security]` sections (SSID, `key-mgmt=wpa-eap`) give way to `[ethernet]`; every
//! other line, the whole `[802-1x]` section with its certificate paths, `[ipv4]` and `[ipv6]`
//! are Slate's as rendered. Also, hostapd's wired driver does not gate the port in the kernel
//! (an Ethernet switch would); what keeps traffic off before authentication here is
//! NetworkManager, which starts DHCP only once wpa_supplicant reports success.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const AUTHENTICATOR_ADDRESS: &str = "10.78.0.1";
const AUTH_IFACE: &str = "eap-auth";
const DEVICE_IFACE: &str = "eap-dev";
const CONNECTION: &str = "slate-wifi-eap";
const IDENTITY: &str = "slate-042@school.example";
const SERVER_NAME: &str = "radius.school.example";
const PASSWORD: &str = "correct horse";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// A certificate authority made for the test (rcgen, as in `tests/school_network.rs`).
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let pem = pem("CERTIFICATE", params.self_signed(&key).unwrap().der());
        Ca { params, key, pem }
    }

    /// A certificate for `name` this CA signed, and its key (PEM).
    fn issue(&self, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert =
            params.signed_by(&key, &rcgen::Issuer::from_params(&self.params, &self.key)).unwrap();
        (pem("CERTIFICATE", cert.der()), pem("PRIVATE KEY", &key.serialize_der()))
    }
}

/// PEM of `der` under `label` (rcgen is built without its PEM feature here).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// How the device authenticates, as the card provisions it.
enum Method<'a> {
    Peap { password: &'a str },
    Tls { cert: &'a str, key: &'a str },
}

/// Runs the real `slate-network --apply` on a card in `dir` and returns the keyfile it wrote
/// (its certificate paths point into `dir/network/certs`, where it put them).
fn apply_card(dir: &Path, school_ca: &str, method: &Method) -> String {
    let boot = dir.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::write(boot.join("radius-ca.pem"), school_ca).unwrap();
    let credentials = match method {
        Method::Peap { password } => {
            format!("wifi_eap = \"peap\"\nwifi_eap_password = \"{password}\"\n")
        }
        Method::Tls { cert, key } => {
            std::fs::write(boot.join("client.pem"), cert).unwrap();
            std::fs::write(boot.join("client.key"), key).unwrap();
            "wifi_eap = \"tls\"\nwifi_eap_client_cert = \"client.pem\"\n\
             wifi_eap_client_key = \"client.key\"\n"
                .into()
        }
    };
    let conf = boot.join("slate-provision.conf");
    std::fs::write(
        &conf,
        format!(
            "wifi_country = \"GB\"\n{credentials}wifi_eap_ssid = \"School Staff\"\n\
             wifi_eap_identity = \"{IDENTITY}\"\n\
             wifi_eap_anonymous_identity = \"anonymous@school.example\"\n\
             wifi_eap_ca = \"radius-ca.pem\"\nwifi_eap_domain = \"{SERVER_NAME}\"\n"
        ),
    )
    .unwrap();
    let nm = dir.join("nm");
    let out = Command::new(env!("CARGO_BIN_EXE_slate-network"))
        .arg("--apply")
        .arg("--nm-dir")
        .arg(&nm)
        .arg("--state-dir")
        .arg(dir.join("network"))
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "slate-network --apply: {}", text(&out.stderr));
    std::fs::read_to_string(nm.join(format!("{CONNECTION}.nmconnection"))).unwrap()
}

/// The rendered Wi-Fi keyfile made a wired one, and nothing else changed (see the module
/// comment): `type=wifi` becomes `type=ethernet`, `[wifi]` and `[wifi-security]` become
/// `[ethernet]`. Panics if the rendering no longer has what this changes.
fn wired_keyfile(rendered: &str) -> String {
    assert_eq!(rendered.matches("\ntype=wifi\n").count(), 1, "{rendered}");
    let mut out = String::new();
    let mut dropped = Vec::new();
    let mut skipping = false;
    for line in rendered.lines() {
        if line.starts_with('[') {
            skipping = line == "[wifi]" || line == "[wifi-security]";
            if skipping {
                dropped.push(line);
            }
            if line == "[802-1x]" {
                out.push_str("[ethernet]\n\n");
            }
        }
        if skipping {
            continue;
        }
        out.push_str(if line == "type=wifi" { "type=ethernet" } else { line });
        out.push('\n');
    }
    assert_eq!(dropped, ["[wifi]", "[wifi-security]"], "{rendered}");
    assert!(out.contains("\n[ethernet]\n\n[802-1x]\n"), "{rendered}");
    out
}

/// Polls `ready` every 100 ms until it holds; panics with `what` and `log` after `limit` (a
/// bound against hanging, not a measurement).
fn wait_for(
    what: &str,
    limit: Duration,
    log: impl Fn() -> String,
    mut ready: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what} did not happen:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup installs it)"))
}

fn must(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed (this test needs network namespaces and veth, and root): {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The test network and every process in it; dropping it (also on a panic) kills the
/// processes and deletes both namespaces, and with them the veth pair.
struct Lab {
    dir: tempfile::TempDir,
    auth_ns: String,
    device_ns: String,
    /// Started processes, killed in reverse order.
    children: Vec<Child>,
    /// The process holding the device's mount namespace (`nsenter --target`).
    holder: u32,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.device_ns, &self.auth_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Lab {
    /// The two namespaces and the veth pair between them, the authenticator's end addressed.
    fn new(case: &str) -> Lab {
        let id = format!("slate-eap-{}-{case}", std::process::id());
        let mut lab = Lab {
            dir: tempfile::tempdir().unwrap(),
            auth_ns: format!("{id}-auth"),
            device_ns: format!("{id}-dev"),
            children: Vec::new(),
            holder: 0,
        };
        must(Command::new("ip").args(["netns", "add", &lab.auth_ns]));
        must(Command::new("ip").args(["netns", "add", &lab.device_ns]));
        must(Command::new("ip").args(["-n", &lab.auth_ns, "link", "add", AUTH_IFACE]).args([
            "type",
            "veth",
            "peer",
            "name",
            DEVICE_IFACE,
            "netns",
            &lab.device_ns,
        ]));
        let addr = format!("{AUTHENTICATOR_ADDRESS}/24");
        must(Command::new("ip").args([
            "-n",
            &lab.auth_ns,
            "addr",
            "add",
            &addr,
            "dev",
            AUTH_IFACE,
        ]));
        for (ns, iface) in
            [(&lab.auth_ns, AUTH_IFACE), (&lab.auth_ns, "lo"), (&lab.device_ns, "lo")]
        {
            must(Command::new("ip").args(["-n", ns, "link", "set", iface, "up"]));
        }
        lab.holder = lab.start_device_namespace();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `cmd` with its stdout and stderr in the file `log`, to be killed on drop.
    fn spawn(&mut self, cmd: &mut Command, log: &str) {
        let file = std::fs::File::create(self.path(log)).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup installs it)"));
        self.children.push(child);
    }

    /// In the device's namespace, a process whose private mount namespace has its own `/run`
    /// and `/var/lib/NetworkManager` (nothing of the host's NetworkManager state is touched)
    /// and `/sys` read-only: NetworkManager then does not wait for udev to announce the veth.
    fn start_device_namespace(&mut self) -> u32 {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.device_ns, "unshare", "--mount", "--propagation"])
            .args(["private", "sh", "-ec"])
            .arg(
                "mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib/NetworkManager; \
                 mount -o remount,bind,ro /sys; echo ready; exec sleep infinity",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let out = child.wait_with_output().unwrap();
            panic!("the device's mount namespace could not be made: {}", text(&out.stderr));
        }
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// A command run in the device's network and mount namespaces.
    fn in_device(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.holder.to_string(), "--mount", "--net", "--", program]);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", self.path("bus").display()));
        cmd
    }

    /// hostapd as a wired authenticator with its internal EAP server, and dnsmasq for DHCP.
    fn start_authenticator(&mut self, school_ca: &str, server: &(String, String)) {
        std::fs::write(self.path("ca.pem"), school_ca).unwrap();
        std::fs::write(self.path("server.pem"), &server.0).unwrap();
        std::fs::write(self.path("server.key"), &server.1).unwrap();
        // Phase 1 takes any identity (the anonymous one), PEAP or TLS; inside PEAP, MSCHAPv2
        // with the school's password for the device's identity.
        std::fs::write(
            self.path("eap-users"),
            format!("* PEAP,TLS\n\"{IDENTITY}\" MSCHAPV2 \"{PASSWORD}\" [2]\n"),
        )
        .unwrap();
        let p = |n: &str| self.path(n).display().to_string();
        std::fs::write(
            self.path("hostapd.conf"),
            format!(
                "interface={AUTH_IFACE}\ndriver=wired\nieee8021x=1\neap_reauth_period=0\n\
                 eap_server=1\neap_user_file={}\nca_cert={}\nserver_cert={}\nprivate_key={}\n\
                 logger_stdout=-1\nlogger_stdout_level=1\n",
                p("eap-users"),
                p("ca.pem"),
                p("server.pem"),
                p("server.key")
            ),
        )
        .unwrap();
        let ns = self.auth_ns.clone();
        let conf = self.path("hostapd.conf");
        self.spawn(
            Command::new("ip").args(["netns", "exec", &ns, "hostapd", "-t"]).arg(conf),
            "hostapd.log",
        );
        let log = self.path("hostapd.log");
        wait_for(
            "hostapd enabling its port",
            Duration::from_secs(20),
            || read(&log),
            || read(&log).contains("AP-ENABLED"),
        );
        self.spawn(
            Command::new("ip").args(["netns", "exec", &ns, "dnsmasq", "--no-daemon"]).args([
                "--conf-file=/dev/null",
                "--port=0",
                "--leasefile-ro",
                "--log-facility=-",
                &format!("--interface={AUTH_IFACE}"),
                "--bind-interfaces",
                "--dhcp-range=10.78.0.10,10.78.0.20,1h",
            ]),
            "dnsmasq.log",
        );
    }

    /// The device: a private system bus, wpa_supplicant on it, NetworkManager with the keyfile.
    fn start_device(&mut self, keyfile: &str) {
        std::fs::write(
            self.path("bus.conf"),
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n\
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\n\
                 <policy context=\"default\"><allow user=\"root\"/><allow own=\"*\"/>\n\
                 <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n",
                self.path("bus").display()
            ),
        )
        .unwrap();
        let connections = self.path("connections");
        std::fs::create_dir(&connections).unwrap();
        let file = connections.join(format!("{CONNECTION}.nmconnection"));
        std::fs::write(&file, keyfile).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        // Nothing of NetworkManager's may reach the host: no DNS, no hostname, no polkit
        // (root only), no connectivity checks; only the veth is managed.
        std::fs::write(
            self.path("nm.conf"),
            format!(
                "[main]\nplugins=keyfile\nno-auto-default=*\nauth-polkit=false\ndhcp=internal\n\
                 dns=none\nrc-manager=unmanaged\nhostname-mode=none\n\n\
                 [keyfile]\npath={}\n\n[connectivity]\nenabled=false\n\n\
                 [logging]\nlevel=INFO\n\n\
                 [device-slate-test]\nmatch-device=interface-name:{DEVICE_IFACE}\nmanaged=1\n",
                connections.display()
            ),
        )
        .unwrap();
        std::fs::create_dir(self.path("nm-conf.d")).unwrap();

        let mut bus = self.in_device("dbus-daemon");
        bus.arg(format!("--config-file={}", self.path("bus.conf").display()))
            .args(["--nofork", "--nopidfile"]);
        self.spawn(&mut bus, "dbus.log");
        let socket = self.path("bus");
        wait_for(
            "the private system bus",
            Duration::from_secs(20),
            || read(&self.path("dbus.log")),
            || socket.exists(),
        );
        let mut supplicant = self.in_device("wpa_supplicant");
        supplicant.arg("-u");
        self.spawn(&mut supplicant, "wpa_supplicant.log");
        let mut nm = self.in_device("NetworkManager");
        nm.args(["--no-daemon", "--debug"])
            .arg(format!("--config={}", self.path("nm.conf").display()))
            .arg(format!("--config-dir={}", self.path("nm-conf.d").display()))
            .arg(format!("--intern-config={}", self.path("nm-intern.conf").display()))
            .arg(format!("--state-file={}", self.path("nm.state").display()));
        self.spawn(&mut nm, "NetworkManager.log");
        // Running, and the veth managed (not `unmanaged`, not yet to be seen).
        wait_for(
            "NetworkManager managing the veth",
            Duration::from_secs(30),
            || self.logs(),
            || {
                let out = self.nmcli(&["-t", "-f", "DEVICE,STATE", "device"]);
                text(&out.stdout).lines().any(|l| {
                    l.strip_prefix(&format!("{DEVICE_IFACE}:"))
                        .is_some_and(|state| state != "unmanaged")
                })
            },
        );
    }

    fn nmcli(&self, args: &[&str]) -> Output {
        run(self.in_device("nmcli").args(args))
    }

    /// Every log, for a failure's message.
    fn logs(&self) -> String {
        ["hostapd.log", "dnsmasq.log", "wpa_supplicant.log", "NetworkManager.log"]
            .iter()
            .map(|n| {
                let log = read(&self.path(n));
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {n} (last 40 lines)\n{}\n", tail.join("\n"))
            })
            .collect()
    }

    /// The device end's MAC address, as hostapd logs it.
    fn device_mac(&self) -> String {
        let out = must(Command::new("ip").args([
            "-n",
            &self.device_ns,
            "-o",
            "link",
            "show",
            DEVICE_IFACE,
        ]));
        let out = text(&out.stdout);
        let mac = out.split_whitespace().skip_while(|w| *w != "link/ether").nth(1);
        mac.unwrap_or_else(|| panic!("no MAC in {out}")).to_lowercase()
    }

    fn ping_authenticator(&self) -> Output {
        run(self.in_device("ping").args(["-c", "1", "-W", "5", AUTHENTICATOR_ADDRESS]))
    }
}

enum Expect {
    Authorized,
    /// Refused, and the log (`hostapd.log` or `wpa_supplicant.log`) that says why has this.
    Refused {
        log: &'static str,
        says: &'static str,
    },
}

/// One handshake: the card applied by `slate-network`, hostapd with `server` (a certificate
/// for the RADIUS name and its key), NetworkManager bringing the connection up.
fn handshake(case: &str, school_ca: &Ca, method: Method, server: (String, String), expect: Expect) {
    if !is_root() {
        eprintln!("SKIPPED school_network_handshake: needs root for network namespaces");
        return;
    }
    let mut lab = Lab::new(case);
    let rendered = apply_card(&lab.path("card"), &school_ca.pem, &method);
    lab.start_authenticator(&school_ca.pem, &server);
    lab.start_device(&wired_keyfile(&rendered));
    let up = lab.nmcli(&["--wait", "60", "connection", "up", CONNECTION]);
    let hostapd = read(&lab.path("hostapd.log"));
    let authorized = format!("STA {} IEEE 802.1X: authorizing port", lab.device_mac());
    match expect {
        Expect::Authorized => {
            assert!(up.status.success(), "{case}: nmcli: {}\n{}", text(&up.stderr), lab.logs());
            let state = lab.nmcli(&["-g", "GENERAL.STATE", "connection", "show", CONNECTION]);
            assert_eq!(text(&state.stdout).trim(), "activated", "{case}");
            assert!(
                hostapd.contains(&authorized),
                "{case}: hostapd did not authorize:\n{}",
                lab.logs()
            );
            let ping = lab.ping_authenticator();
            assert!(
                ping.status.success(),
                "{case}: ping: {}{}\n{}",
                text(&ping.stdout),
                text(&ping.stderr),
                lab.logs()
            );
        }
        Expect::Refused { log, says } => {
            assert!(!up.status.success(), "{case}: the connection came up:\n{}", lab.logs());
            assert!(!hostapd.contains(&authorized), "{case}: hostapd authorized:\n{}", lab.logs());
            assert!(
                read(&lab.path(log)).contains(says),
                "{case}: {log} lacks {says:?}:\n{}",
                lab.logs()
            );
            // No address came: nothing reaches the authenticator.
            assert!(!lab.ping_authenticator().status.success(), "{case}: ping went through");
        }
    }
}

#[test]
fn peap_mschapv2_with_the_provisioned_password_is_authorized() {
    let ca = Ca::new("School RADIUS CA");
    let server = ca.issue(SERVER_NAME);
    handshake("peap-ok", &ca, Method::Peap { password: PASSWORD }, server, Expect::Authorized);
}

#[test]
fn peap_mschapv2_with_a_wrong_password_is_refused() {
    let ca = Ca::new("School RADIUS CA");
    let server = ca.issue(SERVER_NAME);
    let expect = Expect::Refused { log: "hostapd.log", says: "CTRL-EVENT-EAP-FAILURE" };
    handshake("peap-bad", &ca, Method::Peap { password: "wrong horse" }, server, expect);
}

#[test]
fn eap_tls_with_the_provisioned_client_certificate_is_authorized() {
    let ca = Ca::new("School RADIUS CA");
    let server = ca.issue(SERVER_NAME);
    let (cert, key) = ca.issue(IDENTITY);
    handshake("tls-ok", &ca, Method::Tls { cert: &cert, key: &key }, server, Expect::Authorized);
}

/// A server with the right name but another CA's certificate (a rogue access point): the
/// device refuses it, because provisioning pinned the school's CA.
#[test]
fn eap_tls_refuses_a_server_certificate_from_another_ca() {
    let ca = Ca::new("School RADIUS CA");
    let rogue = Ca::new("Rogue RADIUS CA");
    let (cert, key) = ca.issue(IDENTITY);
    let expect =
        Expect::Refused { log: "wpa_supplicant.log", says: "CTRL-EVENT-EAP-TLS-CERT-ERROR" };
    handshake(
        "tls-rogue",
        &ca,
        Method::Tls { cert: &cert, key: &key },
        rogue.issue(SERVER_NAME),
        expect,
    );
}
