//! `slate-network` as provisioning runs it: a card directory, the real binary, real
//! NetworkManager (`nmcli --offline` reads the rendered keyfiles with libnm's own keyfile
//! parser and verifies them), real `update-ca-certificates` and `openssl verify`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Card {
    _tmp: tempfile::TempDir,
    boot: PathBuf,
    nm: PathBuf,
    state: PathBuf,
}

impl Card {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let card = Card {
            boot: tmp.path().join("boot"),
            nm: tmp.path().join("nm"),
            state: tmp.path().join("network"),
            _tmp: tmp,
        };
        std::fs::create_dir_all(&card.boot).unwrap();
        card
    }
    fn put(&self, name: &str, text: &str) {
        std::fs::write(self.boot.join(name), text).unwrap();
    }
    fn run(&self, mode: &str) -> Output {
        self.run_with(&[mode])
    }
    fn run_with(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slate-network"))
            .args(args)
            .arg("--nm-dir")
            .arg(&self.nm)
            .arg("--state-dir")
            .arg(&self.state)
            .arg(self.boot.join("slate-provision.conf"))
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A CA, a certificate it signed for `name`, and that certificate's key (PEM).
fn ca_and_leaf(name: &str, ca_name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![name.into()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &rcgen::Issuer::from_params(&ca, &ca_key)).unwrap();
    (
        pem("CERTIFICATE", ca_cert.der()),
        pem("CERTIFICATE", leaf_cert.der()),
        pem("PRIVATE KEY", &leaf_key.serialize_der()),
    )
}

/// PEM of `der` under `label` (rcgen is built without its PEM feature here).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// NetworkManager's own reading of a keyfile: `nmcli --offline connection modify` parses it
/// (libnm's keyfile reader), verifies the connection and prints it back.
fn nmcli_reads(keyfile: &Path) -> Result<String, String> {
    let out = Command::new("nmcli")
        .args(["--offline", "connection", "modify", "connection.autoconnect", "yes"])
        .stdin(Stdio::from(std::fs::File::open(keyfile).unwrap()))
        .output()
        .expect("nmcli (network-manager, scripts/setup)");
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn networkmanager_accepts_the_rendered_enterprise_keyfiles() {
    let (radius_ca, client_cert, client_key) = ca_and_leaf("slate-042", "School RADIUS CA");
    for method in ["peap", "tls"] {
        let card = Card::new();
        card.put("radius-ca.pem", &radius_ca);
        card.put("client.pem", &client_cert);
        card.put("client.key", &client_key);
        let credentials = match method {
            "peap" => "wifi_eap_password = \"correct horse\"\n",
            _ => "wifi_eap_client_cert = \"client.pem\"\nwifi_eap_client_key = \"client.key\"\n",
        };
        card.put(
            "slate-provision.conf",
            &format!(
                "wifi_ssid = \"Guests\"\nwifi_country = \"GB\"\nwifi_eap = \"{method}\"\n\
                 wifi_eap_ssid = \"School Staff\"\nwifi_eap_identity = \"slate-042@school.example\"\n\
                 wifi_eap_anonymous_identity = \"anonymous@school.example\"\n{credentials}\
                 wifi_eap_ca = \"radius-ca.pem\"\nwifi_eap_domain = \"radius.school.example\"\n"
            ),
        );
        let out = card.run("--apply");
        assert!(out.status.success(), "{method}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Enterprise Wi-Fi \"School Staff\""),
            "{}",
            text(&out.stdout)
        );
        let keyfile = card.nm.join("slate-wifi-eap.nmconnection");
        assert_eq!(mode(&keyfile), 0o600);
        assert_eq!(mode(&card.state.join("certs")), 0o700);
        assert_eq!(std::fs::read_to_string(card.state.join("wifi-country")).unwrap(), "GB\n");
        let parsed = nmcli_reads(&keyfile)
            .unwrap_or_else(|e| panic!("{method}: NetworkManager refused it: {e}"));
        for line in [
            format!("eap={method};"),
            "domain-suffix-match=radius.school.example".into(),
            format!("ca-cert={}", card.state.join("certs/eap-ca.pem").display()),
            "key-mgmt=wpa-eap".into(),
            "ssid=School Staff".into(),
        ] {
            assert!(
                parsed.lines().any(|l| l == line),
                "{method}: NetworkManager's reading lacks {line:?}:\n{parsed}"
            );
        }
        // Applying again keeps the connection's identity.
        let uuid = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .find(|l| l.starts_with("uuid="))
                .unwrap()
                .to_owned()
        };
        let before = uuid(&keyfile);
        assert!(card.run("--apply").status.success());
        assert_eq!(uuid(&keyfile), before);
    }
    // The check can fail: NetworkManager refuses an EAP-TLS keyfile without its private key.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.nmconnection");
    std::fs::write(
        &broken,
        "[connection]\nid=x\nuuid=0190c9d4-0000-7000-8000-000000000001\ntype=wifi\n\n\
         [wifi]\nssid=School\n\n[wifi-security]\nkey-mgmt=wpa-eap\n\n\
         [802-1x]\neap=tls;\nidentity=x\nca-cert=/nonexistent/ca.pem\n",
    )
    .unwrap();
    assert!(nmcli_reads(&broken).is_err(), "nmcli --offline must refuse EAP-TLS without a key");
}

/// A server certificate the inspection CA signed verifies against the device's trust bundle
/// after `--apply`, and no longer once the line is removed.
#[test]
fn the_inspection_ca_lands_in_a_trust_store_openssl_verifies_against() {
    let (ca, server, _) = ca_and_leaf("www.example.org", "School SSL Inspection CA");
    let card = Card::new();
    card.put("inspection-ca.pem", &ca);
    let server_pem = card.boot.join("server.pem");
    std::fs::write(&server_pem, &server).unwrap();
    let bundle = card.state.join("ssl-certs/ca-certificates.crt");
    let verify = |bundle: &Path| {
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(bundle)
            .arg(&server_pem)
            .output()
            .unwrap()
    };

    card.put("slate-provision.conf", "ssl_inspection_ca = \"inspection-ca.pem\"\n");
    let out = card.run("--apply");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(
            "SSL-inspection CA \"CN=School SSL Inspection CA\" trusted, SHA-256 fingerprint "
        ),
        "{said}"
    );
    let v = verify(&bundle);
    assert!(v.status.success(), "openssl verify: {}{}", text(&v.stdout), text(&v.stderr));
    // The system's own authorities are still in it.
    let count = std::fs::read_to_string(&bundle).unwrap().matches("BEGIN CERTIFICATE").count();
    assert!(count > 50, "only {count} certificates in the bundle");
    let env = std::fs::read_to_string(card.state.join("network.env")).unwrap();
    assert!(env.contains(&format!("SSL_CERT_FILE={}", bundle.display())), "{env}");
    let policy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(card.state.join("chromium-policy.json")).unwrap())
            .unwrap();
    assert_eq!(policy["CACertificates"].as_array().map(Vec::len), Some(1));

    // Against the system's store alone the server is not trusted (the test can fail).
    let v = verify(Path::new("/etc/ssl/certs/ca-certificates.crt"));
    assert!(!v.status.success());

    card.put("slate-provision.conf", "ntp_servers = \"ntp.school.example\"\n");
    assert!(card.run("--apply").status.success());
    assert!(!bundle.exists(), "the trust store goes with the line");
    let env = std::fs::read_to_string(card.state.join("network.env")).unwrap();
    assert!(!env.contains("SSL_CERT_FILE"), "{env}");
}

/// One bad key: nothing is written, and the message names the key.
#[test]
fn one_bad_key_applies_nothing() {
    let (ca, leaf, _) = ca_and_leaf("radius.school.example", "School RADIUS CA");
    let card = Card::new();
    card.put("ca.pem", &ca);
    card.put("leaf.pem", &leaf);
    let cases = [
        ("wifi_country = \"GB\"\nproxy = \"http://proxy.school.example\"\n", "field `proxy`"),
        ("wifi_country = \"GB\"\nssl_inspection_ca = \"leaf.pem\"\n", "field `ssl_inspection_ca`: \"CN="),
        ("wifi_country = \"GB\"\nssl_inspection_ca = \"missing.pem\"\n", "field `ssl_inspection_ca`: \"missing.pem\" cannot be read"),
        (
            "wifi_eap = \"peap\"\nwifi_eap_ssid = \"S\"\nwifi_eap_identity = \"i\"\nwifi_eap_password = \"p\"\nwifi_eap_domain = \"r.example\"\n",
            "field `wifi_eap_ca`: is required",
        ),
        ("ntp_servers = [\"a\"]\n", "field `ntp_servers`: takes one"),
    ];
    for (conf, needle) in cases {
        card.put("slate-provision.conf", conf);
        for mode in ["--check", "--apply"] {
            let out = card.run(mode);
            assert!(!out.status.success(), "{conf}");
            assert!(text(&out.stderr).contains(needle), "{conf}: {}", text(&out.stderr));
            assert!(!card.state.exists() && !card.nm.exists(), "{conf}: something was written");
        }
    }
    // --check writes nothing even when everything is good.
    card.put("slate-provision.conf", "wifi_country = \"GB\"\nssl_inspection_ca = \"ca.pem\"\n");
    let out = card.run("--check");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!card.state.exists());
}

/// `--signed` (the provisioning script's, for a signed file's payload): a certificate is taken
/// only with the SHA-256 the text records, and only if the card's file has it. A swapped file
/// is refused by name and nothing is written.
#[test]
fn a_signed_text_takes_only_the_files_it_records() {
    use sha2::Digest as _;
    let (ca, _, _) = ca_and_leaf("www.example.org", "School SSL Inspection CA");
    let (theirs, _, _) = ca_and_leaf("www.example.org", "Attacker CA");
    let sha: String =
        sha2::Sha256::digest(ca.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let card = Card::new();
    let hashed = format!("ssl_inspection_ca = \"ca.pem\"\nssl_inspection_ca_sha256 = \"{sha}\"\n");
    // (case, the text, the card's file, extra arguments, the refusal)
    type Case<'a> = (&'a str, String, &'a str, &'a [&'a str], Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("unsigned, no hash", "ssl_inspection_ca = \"ca.pem\"\n".into(), &ca, &[], None),
        (
            "signed, no hash",
            "ssl_inspection_ca = \"ca.pem\"\n".into(),
            &ca,
            &["--signed"],
            Some("field `ssl_inspection_ca`: \"ca.pem\" is not covered by the signature"),
        ),
        (
            "signed, swapped",
            hashed.clone(),
            &theirs,
            &["--signed"],
            Some("field `ssl_inspection_ca`: \"ca.pem\" on the boot partition is not the file that was signed"),
        ),
        (
            "unsigned, swapped",
            hashed.clone(),
            &theirs,
            &[],
            Some("is not the file that was signed"),
        ),
        ("signed, the school's", hashed.clone(), &ca, &["--signed"], None),
    ];
    for (name, conf, file, extra, want) in cases {
        let _ = std::fs::remove_dir_all(&card.state);
        card.put("slate-provision.conf", &conf);
        card.put("ca.pem", file);
        let out = card.run_with(&[&["--apply"], extra].concat());
        match want {
            None => {
                assert!(out.status.success(), "{name}: {}", text(&out.stderr));
                let trusted =
                    std::fs::read_to_string(card.state.join("local-ca/slate-ssl-inspection.crt"));
                assert_eq!(trusted.unwrap(), ca, "{name}");
            }
            Some(want) => {
                assert!(!out.status.success(), "{name} was applied");
                assert!(text(&out.stderr).contains(want), "{name}: {}", text(&out.stderr));
                assert!(!card.state.exists() && !card.nm.exists(), "{name}: something was written");
            }
        }
    }
}
