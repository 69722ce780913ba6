use super::*;
use crate::bundle::{BundleKind, SignedBundle};
use ed25519_dalek::SigningKey;

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBseSv9dWqz1f0IbmPlxR8Cz0nTutw3XoB7A2cqbbeB7 it@school";
const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOSDZNjMBx0BYSisoqQBHEbSdnOhmBq5wHmSmcQXLd+64Pn7vWOnbSv7VgAc8kPjynLo/+xpjgFSt8ftgAx1eG4= laptop";

/// The device's installed names: two timezones, two layouts.
struct Device;

impl Installed for Device {
    fn has_timezone(&self, name: &str) -> bool {
        ["Europe/London", "Europe/Paris", "UTC"].contains(&name)
    }
    fn has_keyboard(&self, name: &str) -> bool {
        ["gb", "fr"].contains(&name)
    }
}

fn good() -> String {
    format!(
        "# the school's devices\r\n\
         wifi_ssid = \"School-Devices\"\n\
         wifi_psk = \"correct horse battery staple\"\n\
         timezone = \"Europe/Paris\"   # on a trip\n\
         \tkeyboard=\"fr\"\n\
         ssh_authorized_keys = [\"{ED25519}\", \"{ECDSA}\"]\n\
         usb_storage = \"allow\"\n\
         camera = \"block\"\n"
    )
}

#[test]
fn a_good_file_sets_everything() {
    let got = parse(&good(), &Device).unwrap();
    assert_eq!(
        got,
        Provisioning {
            wifi_ssid: Some("School-Devices".into()),
            wifi_psk: Some("correct horse battery staple".into()),
            timezone: Some("Europe/Paris".into()),
            keyboard: Some("fr".into()),
            ssh_authorized_keys: vec![ED25519.into(), ECDSA.into()],
            usb_storage: true,
            camera: false,
            school_network: false,
            card_files: vec![],
            text: good(),
        }
    );
    assert_eq!(
        got.to_lines(),
        format!(
            "wifi_ssid=School-Devices\nwifi_psk=correct horse battery staple\n\
             timezone=Europe/Paris\nkeyboard=fr\nssh_authorized_key={ED25519}\n\
             ssh_authorized_key={ECDSA}\nusb_storage=allow\ncamera=block\n"
        )
    );
    // The school network's settings are slate-network's: taken here, said, and in the text.
    let network = format!("{}wifi_country = \"GB\"\nwifi_eap_identity = \"slate-1\"\n", good());
    let got = parse(&network, &Device).unwrap();
    assert!(got.school_network && got.text == network);
    assert!(got.to_lines().ends_with("camera=block\nschool_network=yes\n"), "{}", got.to_lines());
    let err = parse("proxy = \"a\u{7}b\"\n", &Device).unwrap_err().to_string();
    assert!(err.contains("line 1: field `proxy`"), "{err}");
    // Nothing set: ssh, USB storage and cameras off; the rest left as it was.
    assert_eq!(
        parse("# nothing\n\n", &Device).unwrap().to_lines(),
        "usb_storage=block\ncamera=block\n"
    );
}

/// Every way a file is refused, with what the message must say.
#[test]
fn a_bad_file_is_refused_naming_the_line_and_field() {
    let key_for = |k: &str| format!("ssh_authorized_keys = [\"{k}\"]\n");
    let cases: Vec<(String, &str)> = vec![
        ("wifi_psk = \"short\"\n".into(), "line 1: field `wifi_psk`"),
        ("wifi_psk = \"long enough password\"\n".into(), "field `wifi_ssid`: is required"),
        ("wifi_ssid = \"\"\n".into(), "line 1: field `wifi_ssid`"),
        (format!("wifi_ssid = \"{}\"\n", "x".repeat(33)), "line 1: field `wifi_ssid`"),
        ("wifi_ssid = \"a\u{7}b\"\n".into(), "line 1: field `wifi_ssid`"),
        ("wifi_ssid = \"ok\"\nwifi_psk = \"pass\u{e9}word1\"\n".into(), "line 2: field `wifi_psk`"),
        ("timezone = \"Mars/Olympus\"\n".into(), "line 1: field `timezone`"),
        ("timezone = \"../../etc/passwd\"\n".into(), "line 1: field `timezone`"),
        ("timezone = \"Europe//London\"\n".into(), "line 1: field `timezone`"),
        ("keyboard = \"klingon\"\n".into(), "line 1: field `keyboard`"),
        ("keyboard = \"GB\"\n".into(), "line 1: field `keyboard`"),
        ("# ok\n\nusb_storage = \"yes\"\n".into(), "line 3: field `usb_storage`"),
        ("camera = \"on\"\n".into(), "line 1: field `camera`"),
        ("wifi_password = \"x\"\n".into(), "line 1: field `wifi_password`: is not a known setting"),
        ("timezone = Europe/London\n".into(), "line 1: expected key = \"value\""),
        ("timezone = \"Europe/London\" extra\n".into(), "line 1: expected key = \"value\""),
        ("timezone = \"Europe\\London\"\n".into(), "line 1: expected key = \"value\""),
        ("= \"x\"\n".into(), "line 1: expected key = \"value\""),
        ("2fa = \"x\"\n".into(), "line 1: expected key = \"value\""),
        ("camera2 = \"allow\"\n".into(), "line 1: field `camera2`: is not a known setting"),
        ("{\"v\":1}\n".into(), "line 1: expected key = \"value\""),
        ("keyboard = \"gb\"\nkeyboard = \"fr\"\n".into(), "line 2: field `keyboard`: is set twice"),
        ("timezone = [\"Europe/London\"]\n".into(), "line 1: field `timezone`: takes one"),
        ("ssh_authorized_keys = []\n".into(), "line 1: field `ssh_authorized_keys`: give 1 to 20"),
        (
            format!("ssh_authorized_keys = [{}]\n", vec![format!("\"{ED25519}\""); 21].join(",")),
            "give 1 to 20",
        ),
        (key_for("ssh-ed25519"), "key 1 is not an OpenSSH public key"),
        (key_for("ssh-dss AAAAB3NzaC1kc3MAAACBAP"), "key 1 is not an OpenSSH public key"),
        // An ed25519 key's blob labelled as RSA.
        (key_for(&ED25519.replace("ssh-ed25519", "ssh-rsa")), "key 1 is not an OpenSSH public key"),
        (key_for(&ED25519.replace("ZDI1NTE5", "ZDI1NTE4")), "key 1 is not an OpenSSH public key"),
        (key_for(&format!("from=10.0.0.0/8 {ED25519}")), "key 1 is not an OpenSSH public key"),
        (key_for(&format!("{ED25519}\u{1b}[2J")), "key 1 is not an OpenSSH public key"),
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
    for (text, want) in cases {
        let err = parse(&text, &Device).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err:?}, wanted {want:?}");
    }
}

/// One key written alone, a trailing comma, a comment after the list: all as bash took them.
#[test]
fn ssh_keys_are_taken_in_each_spelling() {
    for text in [
        format!("ssh_authorized_keys = \"{ED25519}\"\n"),
        format!("ssh_authorized_keys = [ \"{ED25519}\" , ]  # IT\n"),
        format!("ssh_authorized_keys=[\"{ED25519}\"]"),
    ] {
        assert_eq!(parse(&text, &Device).unwrap().ssh_authorized_keys, vec![ED25519], "{text}");
    }
}

/// The server checks a file before signing it without the device's lists of names.
#[test]
fn the_servers_check_takes_any_well_formed_name() {
    let text = "timezone = \"Mars/Olympus\"\nkeyboard = \"tlh\"\n";
    assert!(parse(text, &Device).is_err());
    assert!(parse(text, &AnyInstalled).is_ok());
    assert!(parse("timezone = \"../x\"\n", &AnyInstalled).is_err());
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn signed(kind: BundleKind, text: &str, signer: &SigningKey) -> Vec<u8> {
    serde_json::to_vec(&SignedBundle::sign_as(kind, text.into(), "school-1", signer)).unwrap()
}

/// When a device takes a file: signed with its school's key always; plain text only before it
/// has enrolled; nothing else.
#[test]
fn a_device_takes_a_signed_file_or_a_plain_one_before_enrollment() {
    let school = key(1).verifying_key();
    let text = good();
    let good_signed = signed(BundleKind::Provisioning, &text, &key(1));
    let mut tampered: SignedBundle = serde_json::from_slice(&good_signed).unwrap();
    tampered.payload = tampered.payload.replace("camera = \"block\"", "camera = \"allow\"");
    let tampered = serde_json::to_vec(&tampered).unwrap();
    let bad_inside = signed(BundleKind::Provisioning, "camera = \"on\"\n", &key(1));
    let before = Trust { school_key: Some(&school), enrolled: false };
    let after = Trust { school_key: Some(&school), enrolled: true };
    let keyless = Trust { school_key: None, enrolled: false };
    let theirs = signed(BundleKind::Provisioning, &text, &key(2));
    let kiosk = signed(BundleKind::KioskPolicy, &text, &key(1));
    let legacy =
        serde_json::to_vec(&SignedBundle::sign_legacy(text.clone(), "k", &key(1))).unwrap();
    let too_big = vec![b'#'; MAX_FILE_BYTES + 1];
    type Case<'a> = (&'a str, &'a [u8], Trust<'a>, Result<Source, &'a str>);
    let cases: Vec<Case> = vec![
        ("signed, enrolled", &good_signed[..], after, Ok(Source::Signed)),
        ("signed, first boot", &good_signed[..], before, Ok(Source::Signed)),
        ("plain, first boot", text.as_bytes(), before, Ok(Source::BeforeEnrollment)),
        ("plain, first boot, no key", text.as_bytes(), keyless, Ok(Source::BeforeEnrollment)),
        (
            "plain, enrolled",
            text.as_bytes(),
            after,
            Err("is not signed, and this device has enrolled"),
        ),
        (
            "tampered",
            &tampered[..],
            after,
            Err("is not signed with this school's key (invalid field `signature`"),
        ),
        (
            "tampered, first boot",
            &tampered[..],
            before,
            Err("is not signed with this school's key"),
        ),
        ("another school's key", &theirs[..], after, Err("does not match the school server's key")),
        (
            "a kiosk policy's signature",
            &kiosk[..],
            after,
            Err("the bundle is a kiosk-policy, where a provisioning was expected"),
        ),
        ("legacy form", &legacy[..], after, Err("names no kind")),
        ("signed, no key", &good_signed[..], keyless, Err("no school key to check it with")),
        (
            "signed, a bad line inside",
            &bad_inside[..],
            after,
            Err("(signed) line 1: field `camera`"),
        ),
        (
            "not JSON",
            &b"{ camera = \"allow\" }"[..],
            after,
            Err("is not signed with this school's key"),
        ),
        ("not text", &b"camera = \"allow\xff\"\n"[..], before, Err("is not text")),
        ("too big", &too_big[..], before, Err("is over 64 KiB")),
    ];
    for (name, bytes, trust, want) in cases {
        let got = open(bytes, trust, &Device);
        match (got, want) {
            (Ok((source, settings)), Ok(want)) => {
                assert_eq!(source, want, "{name}");
                assert_eq!(settings, parse(&text, &Device).unwrap(), "{name}");
            }
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }
}

const SHA_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The files a text names, paired with the hashes it records, whatever the order of lines.
#[test]
fn named_files_are_paired_with_their_recorded_hashes() {
    let file = |key, hash_key, name: &str, sha256: Option<&str>| CardFile {
        key,
        hash_key,
        name: name.into(),
        sha256: sha256.map(String::from),
    };
    let cases: Vec<(String, Result<Vec<CardFile>, &str>)> = vec![
        ("camera = \"block\"\n".into(), Ok(vec![])),
        (
            "ssl_inspection_ca = \"ca.pem\"\n".into(),
            Ok(vec![file("ssl_inspection_ca", "ssl_inspection_ca_sha256", "ca.pem", None)]),
        ),
        (
            format!(
                "ssl_inspection_ca_sha256 = \"{SHA_A}\"\nwifi_eap_client_key = \"k.pem\"\n\
                 ssl_inspection_ca = \"ca.pem\"\nwifi_eap_ca = \"r.pem\"\n\
                 wifi_eap_ca_sha256 = \"{SHA_A}\"\n"
            ),
            Ok(vec![
                file("wifi_eap_ca", "wifi_eap_ca_sha256", "r.pem", Some(SHA_A)),
                file("wifi_eap_client_key", "wifi_eap_client_key_sha256", "k.pem", None),
                file("ssl_inspection_ca", "ssl_inspection_ca_sha256", "ca.pem", Some(SHA_A)),
            ]),
        ),
        (
            format!("ssl_inspection_ca_sha256 = \"{SHA_A}\"\n"),
            Err("field `ssl_inspection_ca_sha256`: records a file's SHA-256, but `ssl_inspection_ca` names no file"),
        ),
        (
            format!("ssl_inspection_ca = \"ca.pem\"\nssl_inspection_ca_sha256 = \"{}\"\n", SHA_A.to_uppercase()),
            Err("line 2: field `ssl_inspection_ca_sha256`: must be the file's SHA-256"),
        ),
        (
            "wifi_eap_ca = \"r.pem\"\nwifi_eap_ca_sha256 = \"abc\"\n".into(),
            Err("line 2: field `wifi_eap_ca_sha256`: must be the file's SHA-256"),
        ),
        (
            format!("wifi_eap_ca_sha256 = \"{SHA_A}\"\nwifi_eap_ca_sha256 = \"{SHA_A}\"\n"),
            Err("line 2: field `wifi_eap_ca_sha256`: is set twice"),
        ),
        ("proxy_sha256 = \"x\"\n".into(), Err("line 1: field `proxy_sha256`: is not a known")),
    ];
    for (text, want) in cases {
        match (parse(&text, &Device), want) {
            (Ok(got), Ok(want)) => {
                assert_eq!(got.card_files, want, "{text}");
                assert_eq!(got.school_network, !want.is_empty(), "{text}");
            }
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, wanted {want:?}"),
        }
    }
}

/// A signed text must record the hash of every file it names; a plain one (before enrollment)
/// need not.
#[test]
fn a_signed_file_naming_a_file_without_its_hash_is_refused() {
    let school = key(1).verifying_key();
    let hashed = format!(
        "wifi_eap_ca = \"r.pem\"\nwifi_eap_ca_sha256 = \"{SHA_A}\"\n\
         ssl_inspection_ca = \"ca.pem\"\nssl_inspection_ca_sha256 = \"{SHA_A}\"\n"
    );
    let one_missing = format!(
        "wifi_eap_ca = \"r.pem\"\nwifi_eap_ca_sha256 = \"{SHA_A}\"\n\
                               ssl_inspection_ca = \"ca.pem\"\n"
    );
    let before = Trust { school_key: Some(&school), enrolled: false };
    let after = Trust { school_key: Some(&school), enrolled: true };
    let sign = |text: &str| signed(BundleKind::Provisioning, text, &key(1));
    type Case<'a> = (&'a str, Vec<u8>, Trust<'a>, Result<Source, &'a str>);
    let cases: Vec<Case> = vec![
        ("signed, every hash", sign(&hashed), after, Ok(Source::Signed)),
        (
            "signed, one hash missing",
            sign(&one_missing),
            after,
            Err("(signed) field `ssl_inspection_ca`: names \"ca.pem\" on the boot partition, \
                 but carries no `ssl_inspection_ca_sha256`"),
        ),
        (
            "signed, first boot, one hash missing",
            sign(&one_missing),
            before,
            Err("carries no `ssl_inspection_ca_sha256`"),
        ),
        (
            "plain, first boot, no hash",
            one_missing.clone().into_bytes(),
            before,
            Ok(Source::BeforeEnrollment),
        ),
    ];
    for (name, bytes, trust, want) in cases {
        match (open(&bytes, trust, &Device), want) {
            (Ok((source, _)), Ok(want)) => assert_eq!(source, want, "{name}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }
    assert!(is_card_file_name("school-ca.pem"));
    for bad in ["", ".hidden", "../ca.pem", "a/b.pem", "ca pem"] {
        assert!(!is_card_file_name(bad), "{bad}");
    }
}
