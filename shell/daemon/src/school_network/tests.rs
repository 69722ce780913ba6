use super::*;

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const PEAP: &[(&str, &str)] = &[
    ("wifi_eap", "peap"),
    ("wifi_eap_ssid", "School Staff"),
    ("wifi_eap_identity", "slate-042@school.example"),
    ("wifi_eap_password", "s3cret; with spaces"),
    ("wifi_eap_ca", "radius-ca.pem"),
    ("wifi_eap_domain", "radius.school.example"),
];

fn with(
    base: &[(&'static str, &'static str)],
    changes: &[(&'static str, Option<&'static str>)],
) -> BTreeMap<String, String> {
    let mut s = settings(base);
    for (k, v) in changes {
        match v {
            Some(v) => s.insert(k.to_string(), v.to_string()),
            None => s.remove(*k),
        };
    }
    s
}

#[test]
fn refusals_name_the_key() {
    let none: &[(&str, &str)] = &[];
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, Option<&'a str>)], &'a str, &'a str);
    let cases: &[Case] = &[
        (none, &[("wifi_country", Some("UK"))], "wifi_country", "\"GB\""),
        (none, &[("wifi_country", Some("XX"))], "wifi_country", "two-letter"),
        (none, &[("wifi_country", Some("GBR"))], "wifi_country", "two-letter"),
        (none, &[("wifi_eap_identity", Some("a"))], "wifi_eap_identity", "needs `wifi_eap"),
        (PEAP, &[("wifi_eap", Some("leap"))], "wifi_eap", "\"peap\""),
        (PEAP, &[("wifi_eap_ca", None)], "wifi_eap_ca", "any network with this name"),
        (PEAP, &[("wifi_eap_domain", None)], "wifi_eap_domain", "is required"),
        (PEAP, &[("wifi_eap_domain", Some("radius school"))], "wifi_eap_domain", "host name"),
        (PEAP, &[("wifi_eap_password", None)], "wifi_eap_password", "is required"),
        (PEAP, &[("wifi_eap_password", Some("a\nidentity=x"))], "wifi_eap_password", "control"),
        (PEAP, &[("wifi_eap_identity", Some("a\\b"))], "wifi_eap_identity", "backslash"),
        (PEAP, &[("wifi_eap_ssid", Some(""))], "wifi_eap_ssid", "1 to 32"),
        (
            PEAP,
            &[("wifi_eap_ssid", Some("a-name-much-longer-than-32-bytes-x"))],
            "wifi_eap_ssid",
            "1 to 32",
        ),
        (PEAP, &[("wifi_eap_client_cert", Some("c.pem"))], "wifi_eap_client_cert", "PEAP"),
        (PEAP, &[("wifi_eap_ca", Some("../etc/shadow"))], "wifi_eap_ca", "file name"),
        (PEAP, &[("wifi_eap", Some("tls"))], "wifi_eap_password", "certificate"),
        (
            PEAP,
            &[("wifi_eap", Some("tls")), ("wifi_eap_password", None)],
            "wifi_eap_client_cert",
            "is required",
        ),
        (none, &[("proxy", Some("proxy.school.example:3128"))], "proxy", "not a proxy"),
        (none, &[("proxy", Some("http://proxy.school.example"))], "proxy", "not a proxy"),
        (none, &[("proxy", Some("http://u:p@proxy.school.example:3128"))], "proxy", "password"),
        (none, &[("proxy", Some("http://proxy.school.example:0"))], "proxy", "not a proxy"),
        (none, &[("proxy", Some("socks5://proxy.school.example:1080"))], "proxy", "not a proxy"),
        (none, &[("proxy_bypass", Some("*.school.example"))], "proxy_bypass", "needs `proxy`"),
        (
            none,
            &[("proxy", Some("http://p.example:8080")), ("proxy_bypass", Some("a b;c"))],
            "proxy_bypass",
            "\"b;c\"",
        ),
        (
            none,
            &[("proxy", Some("http://p.example:8080")), ("proxy_bypass", Some("10.0.0.0/33"))],
            "proxy_bypass",
            "10.0.0.0/33",
        ),
        (none, &[("proxy_pac", Some("wpad.school.example/wpad.dat"))], "proxy_pac", "not a URL"),
        (
            none,
            &[("proxy_pac", Some("http://wpad.school.example/wpad dat"))],
            "proxy_pac",
            "not a URL",
        ),
        (none, &[("ntp_servers", Some(""))], "ntp_servers", "1 to 8"),
        (none, &[("ntp_servers", Some("ntp.school.example bad_name"))], "ntp_servers", "bad_name"),
        (none, &[("ssl_inspection_ca", Some("/boot/ca.pem"))], "ssl_inspection_ca", "file name"),
    ];
    for (base, changes, key, needle) in cases {
        let err = parse(&with(base, changes)).expect_err(&format!("{changes:?} must be refused"));
        assert_eq!(err.key, *key, "{changes:?}: {err}");
        assert!(err.to_string().contains(needle), "{changes:?}: {err} lacks {needle:?}");
    }
}

#[test]
fn accepted_settings_are_normalised() {
    let r = parse(&settings(&[
        ("wifi_country", "gb"),
        ("proxy", "http://Proxy.School.Example:3128/"),
        ("proxy_bypass", "*.school.example, 10.0.0.0/8 intranet  ::1"),
        ("proxy_pac", "https://wpad.school.example:8443/wpad.dat"),
        ("ntp_servers", "ntp1.school.example, 10.1.2.3"),
        ("ssl_inspection_ca", "inspection-ca.pem"),
    ]))
    .unwrap();
    assert_eq!(r.country.as_deref(), Some("GB"));
    assert_eq!(r.proxy.as_ref().unwrap().to_string(), "http://proxy.school.example:3128");
    assert_eq!(r.proxy_bypass, ["*.school.example", "10.0.0.0/8", "intranet", "::1"]);
    assert_eq!(r.ntp_servers, ["ntp1.school.example", "10.1.2.3"]);
    assert_eq!(r.proxy.as_ref().unwrap().port, 3128);
    let v6 = parse(&settings(&[("proxy", "http://[2001:db8::1]:8080")])).unwrap();
    assert_eq!(v6.proxy.unwrap().to_string(), "http://[2001:db8::1]:8080");
    assert_eq!(parse(&settings(&[])).unwrap(), Request::default());
}

/// A CA, a certificate it signed for `name`, and the leaf's key (PEM).
pub(crate) fn ca_and_leaf(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "School Inspection CA");
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

fn files(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, Vec<u8>> {
    pairs.iter().map(|(k, v)| (*k, v.as_bytes().to_vec())).collect()
}

#[test]
fn certificate_files_are_checked() {
    let (ca, leaf, key) = ca_and_leaf("radius.school.example");
    let peap = parse(&settings(PEAP)).unwrap();
    let ok = check(peap.clone(), &files(&[("wifi_eap_ca", &ca)])).unwrap();
    let checked = &ok.enterprise.as_ref().unwrap().ca;
    assert_eq!(checked.subject, "CN=School Inspection CA");
    assert_eq!(checked.fingerprint.len(), 32 * 3 - 1);

    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let tls = |password: Option<&'static str>| {
        let mut s = with(PEAP, &[("wifi_eap", Some("tls")), ("wifi_eap_password", None)]);
        s.insert("wifi_eap_client_cert".into(), "client.pem".into());
        s.insert("wifi_eap_client_key".into(), "client.key".into());
        if let Some(p) = password {
            s.insert("wifi_eap_client_key_password".into(), p.into());
        }
        parse(&s).unwrap()
    };
    type Case<'a> = (Request, BTreeMap<&'static str, Vec<u8>>, Option<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            peap.clone(),
            files(&[("wifi_eap_ca", &leaf)]),
            Some(("wifi_eap_ca", "not a CA certificate")),
        ),
        (
            peap.clone(),
            files(&[("wifi_eap_ca", "hello")]),
            Some(("wifi_eap_ca", "no PEM certificate")),
        ),
        (
            peap.clone(),
            files(&[("wifi_eap_ca", &format!("{ca}{key}"))]),
            Some(("wifi_eap_ca", "PRIVATE KEY")),
        ),
        (
            peap.clone(),
            files(&[("wifi_eap_ca", &ca.replace("-----END CERTIFICATE-----", ""))]),
            Some(("wifi_eap_ca", "no END")),
        ),
        (
            peap,
            files(&[(
                "wifi_eap_ca",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            )]),
            Some(("wifi_eap_ca", "does not parse")),
        ),
        (
            tls(None),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &leaf),
                ("wifi_eap_client_key", &key),
            ]),
            None,
        ),
        (
            tls(None),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &ca),
                ("wifi_eap_client_key", &key),
            ]),
            Some(("wifi_eap_client_cert", "is a CA")),
        ),
        (
            tls(None),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &leaf),
                ("wifi_eap_client_key", &leaf),
            ]),
            Some(("wifi_eap_client_key", "private key")),
        ),
        (
            tls(Some("pw")),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &leaf),
                ("wifi_eap_client_key", &key),
            ]),
            Some(("wifi_eap_client_key_password", "not encrypted")),
        ),
        (
            tls(None),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &leaf),
                ("wifi_eap_client_key", encrypted),
            ]),
            Some(("wifi_eap_client_key_password", "is required")),
        ),
        (
            tls(Some("pw")),
            files(&[
                ("wifi_eap_ca", &ca),
                ("wifi_eap_client_cert", &leaf),
                ("wifi_eap_client_key", encrypted),
            ]),
            None,
        ),
    ];
    for (i, (request, files, want)) in cases.into_iter().enumerate() {
        match (check(request, &files), want) {
            (Ok(_), None) => {}
            (Err(e), Some((key, needle))) => {
                assert_eq!(e.key, key, "case {i}: {e}");
                assert!(e.to_string().contains(needle), "case {i}: {e} lacks {needle:?}");
            }
            (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
        }
    }
    // The inspection CA: exactly one CA certificate.
    let r = parse(&settings(&[("ssl_inspection_ca", "i.pem")])).unwrap();
    let two = format!("{ca}{ca}");
    let e = check(r.clone(), &files(&[("ssl_inspection_ca", &two)])).unwrap_err();
    assert!(e.to_string().contains("exactly one"), "{e}");
    let e = check(r.clone(), &files(&[("ssl_inspection_ca", &leaf)])).unwrap_err();
    assert_eq!(e.key, "ssl_inspection_ca");
    assert!(check(r, &files(&[("ssl_inspection_ca", &ca)])).unwrap().inspection_ca.is_some());
}

fn layout() -> Layout {
    Layout { nm_dir: "/nm".into(), state_dir: "/state".into() }
}

#[test]
fn nothing_set_renders_direct_connections_and_no_extra_trust() {
    let plan = render(&Settings::default(), &layout(), "u");
    let paths: Vec<_> = plan.write.iter().map(|o| o.path.to_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/state/timesyncd.conf", "/state/chromium-policy.json", "/state/network.env"]
    );
    assert_eq!(plan.write[1].contents, b"{}\n");
    assert!(!String::from_utf8_lossy(&plan.write[2].contents).contains("PROXY"));
    assert!(!String::from_utf8_lossy(&plan.write[0].contents).contains("NTP="));
    assert_eq!(plan.remove, [PathBuf::from("/state/local-ca/slate-ssl-inspection.crt")]);
    assert!(!plan.rebuild_trust);
}

#[test]
fn everything_set_renders_each_file() {
    let (ca, leaf, key) = ca_and_leaf("radius.school.example");
    let mut s = with(PEAP, &[("wifi_eap", Some("tls")), ("wifi_eap_password", None)]);
    for (k, v) in [
        ("wifi_eap_client_cert", "client.pem"),
        ("wifi_eap_client_key", "client.key"),
        ("wifi_eap_anonymous_identity", "anonymous@school.example"),
        ("wifi_country", "FR"),
        ("proxy", "http://proxy.school.example:3128"),
        ("proxy_bypass", "*.school.example,10.0.0.0/8"),
        ("ntp_servers", "ntp1.school.example ntp2.school.example"),
        ("ssl_inspection_ca", "inspection.pem"),
    ] {
        s.insert(k.into(), v.into());
    }
    let request = parse(&s).unwrap();
    let f = files(&[
        ("wifi_eap_ca", &ca),
        ("wifi_eap_client_cert", &leaf),
        ("wifi_eap_client_key", &key),
        ("ssl_inspection_ca", &ca),
    ]);
    let settings = check(request, &f).unwrap();
    let plan = render(&settings, &layout(), "0190c9d4-0000-7000-8000-000000000001");
    let get = |p: &str| {
        let o = plan.write.iter().find(|o| o.path == Path::new(p)).unwrap_or_else(|| panic!("{p}"));
        (String::from_utf8(o.contents.clone()).unwrap(), o.mode)
    };
    assert_eq!(get("/state/wifi-country"), ("FR\n".into(), 0o644));
    for secret in [
        "/state/certs/eap-ca.pem",
        "/state/certs/eap-client.pem",
        "/state/certs/eap-client-key.pem",
        "/nm/slate-wifi-eap.nmconnection",
    ] {
        assert_eq!(get(secret).1, 0o600, "{secret}");
    }
    // The certificates are written before the keyfile that names them.
    let order: Vec<_> = plan.write.iter().map(|o| o.path.clone()).collect();
    assert!(
        order.iter().position(|p| p.ends_with("eap-ca.pem"))
            < order.iter().position(|p| p.ends_with(KEYFILE))
    );
    let (keyfile, _) = get("/nm/slate-wifi-eap.nmconnection");
    for line in [
        "uuid=0190c9d4-0000-7000-8000-000000000001",
        "ssid=School Staff",
        "key-mgmt=wpa-eap",
        "eap=tls;",
        "identity=slate-042@school.example",
        "anonymous-identity=anonymous@school.example",
        "client-cert=/state/certs/eap-client.pem",
        "private-key=/state/certs/eap-client-key.pem",
        "private-key-password-flags=4",
        "ca-cert=/state/certs/eap-ca.pem",
        "domain-suffix-match=radius.school.example",
    ] {
        assert!(keyfile.lines().any(|l| l == line), "keyfile lacks {line:?}:\n{keyfile}");
    }
    assert!(!keyfile.contains("password="), "{keyfile}");
    assert_eq!(
        get("/state/timesyncd.conf").0.lines().last(),
        Some("NTP=ntp1.school.example ntp2.school.example")
    );
    let policy: serde_json::Value =
        serde_json::from_str(&get("/state/chromium-policy.json").0).unwrap();
    assert_eq!(
        policy["ProxySettings"],
        serde_json::json!({
            "ProxyMode": "fixed_servers",
            "ProxyServer": "http://proxy.school.example:3128",
            "ProxyBypassList": "*.school.example,10.0.0.0/8,<local>",
        })
    );
    assert_eq!(policy["CACertificates"].as_array().unwrap().len(), 1);
    let (env, _) = get("/state/network.env");
    assert_eq!(
        env.lines().skip(1).collect::<Vec<_>>(),
        [
            "HTTPS_PROXY=http://proxy.school.example:3128",
            "HTTP_PROXY=http://proxy.school.example:3128",
            "NO_PROXY=localhost,127.0.0.1,::1,.school.example,10.0.0.0/8",
            "SSL_CERT_FILE=/state/ssl-certs/ca-certificates.crt",
        ]
    );
    assert_eq!(get("/state/local-ca/slate-ssl-inspection.crt"), (ca.clone(), 0o644));
    assert!(plan.rebuild_trust && plan.remove.is_empty());
}

#[test]
fn peap_keyfile_and_pac_policy() {
    let (ca, _, _) = ca_and_leaf("radius.school.example");
    let mut s = settings(PEAP);
    s.insert("proxy_pac".into(), "http://wpad.school.example/wpad.dat".into());
    let settings = check(parse(&s).unwrap(), &files(&[("wifi_eap_ca", &ca)])).unwrap();
    let e = settings.enterprise.as_ref().unwrap();
    let keyfile = enterprise_keyfile(e, Path::new("/c"), "u");
    for line in ["eap=peap;", "phase2-auth=mschapv2", "password=s3cret; with spaces"] {
        assert!(keyfile.lines().any(|l| l == line), "{line:?}:\n{keyfile}");
    }
    assert!(!keyfile.contains("private-key"));
    assert_eq!(
        chromium_policy(&settings)["ProxySettings"],
        serde_json::json!({ "ProxyMode": "pac_script", "ProxyPacUrl": "http://wpad.school.example/wpad.dat" })
    );
    // slated cannot read a PAC file: it goes direct, and the summary says so.
    assert!(!environment(&settings, None).contains("PROXY"));
    let summary = summary(&settings).join("\n");
    assert!(summary.contains("slated connects directly"), "{summary}");
    assert!(!summary.contains("s3cret") && !summary.contains("slate-042"), "no secrets: {summary}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The card's files against the hashes a (signed) text records: the school's bytes pass, a
/// swapped file never does, and a signed text must record a hash for every file it names.
#[test]
fn card_files_must_be_the_ones_the_signed_text_records() {
    let school = "the school's inspection CA";
    let swapped = "someone else's CA";
    let ok = sha256_hex(school.as_bytes());
    let radius_ok = sha256_hex(b"radius ca");
    let ca = |hash: Option<&str>| {
        let mut s = vec![("ssl_inspection_ca".to_owned(), "inspection-ca.pem".to_owned())];
        if let Some(h) = hash {
            s.push(("ssl_inspection_ca_sha256".to_owned(), h.to_owned()));
        }
        s
    };
    let mut peap: Vec<(String, String)> =
        PEAP.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    peap.push(("wifi_eap_ca_sha256".into(), radius_ok.clone()));
    peap.extend(ca(Some(&ok)));
    // (settings, the card's inspection CA, signed, the refusal)
    type Case = (Vec<(String, String)>, &'static str, bool, Option<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (ca(Some(&ok)), school, true, None),
        (ca(Some(&ok)), school, false, None),
        (ca(None), school, false, None),
        (vec![], school, true, None),
        (peap.clone(), school, true, None),
        (
            ca(Some(&ok)),
            swapped,
            true,
            Some((
                "ssl_inspection_ca",
                "\"inspection-ca.pem\" on the boot partition is not the file that was signed",
            )),
        ),
        (
            ca(Some(&ok)),
            swapped,
            false,
            Some(("ssl_inspection_ca", "`ssl_inspection_ca_sha256` records")),
        ),
        (
            ca(None),
            school,
            true,
            Some(("ssl_inspection_ca", "\"inspection-ca.pem\" is not covered by the signature")),
        ),
        (
            peap.iter().filter(|(k, _)| k != "wifi_eap_ca_sha256").cloned().collect(),
            school,
            true,
            Some(("wifi_eap_ca", "records no `wifi_eap_ca_sha256`")),
        ),
        (
            peap.clone(),
            swapped,
            true,
            Some(("ssl_inspection_ca", "is not the file that was signed")),
        ),
    ];
    for (pairs, card_ca, signed, want) in cases {
        let request = parse(&pairs.iter().cloned().collect()).unwrap();
        let files = files(&[("ssl_inspection_ca", card_ca), ("wifi_eap_ca", "radius ca")]);
        match (verify_files(&request, &files, signed), want) {
            (Ok(()), None) => {}
            (Err(e), Some((key, message))) => {
                assert_eq!(e.key, key, "{pairs:?}");
                assert!(e.message.contains(message), "{pairs:?}: {e}");
            }
            (got, want) => panic!("{pairs:?} signed={signed}: got {got:?}, wanted {want:?}"),
        }
    }
}

/// A recorded hash is checked as written, and only beside the file it is for.
#[test]
fn recorded_hashes_are_well_formed_and_belong_to_a_named_file() {
    let hash = sha256_hex(b"x");
    // (settings, the key refused, the message)
    type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("ssl_inspection_ca_sha256", hash.clone())],
            "ssl_inspection_ca_sha256",
            "but `ssl_inspection_ca` names no file",
        ),
        (
            vec![
                ("ssl_inspection_ca", "ca.pem".into()),
                ("ssl_inspection_ca_sha256", hash.to_uppercase()),
            ],
            "ssl_inspection_ca_sha256",
            "64 lowercase hex digits",
        ),
        (
            PEAP.iter()
                .map(|(k, v)| (*k, v.to_string()))
                .chain([("wifi_eap_client_cert_sha256", hash.clone())])
                .collect(),
            "wifi_eap_client_cert_sha256",
            "but `wifi_eap_client_cert` names no file",
        ),
    ];
    for (pairs, key, message) in cases {
        let s = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let e = parse(&s).unwrap_err();
        assert_eq!(e.key, key, "{pairs:?}");
        assert!(e.message.contains(message), "{pairs:?}: {e}");
    }
}
