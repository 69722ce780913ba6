//! `slate-server provision sign`: a card's provisioning file (`slate-provision.conf`), checked
//! line by line as a device would check it (`slate_protocol::provisioning::parse`, without the
//! device's lists of timezones and layouts), then signed with the policy key as a
//! [`BundleKind::Provisioning`] bundle. An enrolled device takes no other provisioning file, so
//! this is how IT turns on ssh for its keys (seed: the card is no key to the device). Pure; the
//! command in `main.rs` reads and writes the files, as the caller and the data directory's owner.
//!
//! The certificate and key files the text names (`ssl_inspection_ca`, `wifi_eap_ca`, ...) sit
//! beside it on the card, outside the signature: their SHA-256 goes into the signed text, one
//! `<key>_sha256 = "<hex>"` line each (`slate_protocol::provisioning::CARD_FILES`), so a
//! device refuses a swapped file.

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::provisioning::{
    card_file_sha256, check_signed_files, is_card_file_name, parse, AnyInstalled, ProvisionError,
};

/// The signed file for the card, and what the audit log says about it (nothing secret: not
/// the Wi-Fi password).
#[derive(Debug)]
pub struct SignedFile {
    /// The bundle as JSON, with a final newline.
    pub json: String,
    /// "sha256 <hex of the text>, <n> ssh key(s)", then "; <file> sha256 <hex>" for each file
    /// the text names.
    pub summary: String,
}

/// The comment above the hash lines [`sign`] adds.
pub const HASHES_COMMENT: &str =
    "# Recorded by slate-server provision sign: the SHA-256 of each file named above.";

/// Checks `text` and signs it, with the SHA-256 of every file it names on the boot partition
/// (`read_file`: a file name, checked as a plain name, to its bytes or why not). A hash the text
/// already records must match the file; a missing one is added at the end. A bad line or an
/// unreadable file signs nothing.
pub fn sign(
    text: String,
    key: &SigningKey,
    read_file: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<SignedFile, ProvisionError> {
    let settings = parse(&text, &AnyInstalled)?;
    let mut text = text;
    let mut added = String::new();
    let mut files = String::new();
    for file in &settings.card_files {
        let refuse = |why: String| ProvisionError(format!("field `{}`: {why}", file.key));
        if !is_card_file_name(&file.name) {
            return Err(refuse(format!(
                "\"{}\" must be a file name on the boot partition like \"school-ca.pem\"",
                file.name
            )));
        }
        let bytes = read_file(&file.name).map_err(&refuse)?;
        let digest = card_file_sha256(&bytes);
        match &file.sha256 {
            Some(recorded) if *recorded != digest => {
                return Err(refuse(format!(
                    "\"{}\" has SHA-256 {digest}, but the text records {recorded} in `{}`: \
                     remove that line to record this file, or put back the file it was \
                     recorded from",
                    file.name, file.hash_key
                )))
            }
            Some(_) => {}
            None => added.push_str(&format!("{} = \"{digest}\"\n", file.hash_key)),
        }
        files.push_str(&format!("; {} sha256 {digest}", file.name));
    }
    if !added.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{HASHES_COMMENT}\n{added}"));
    }
    // What the device will check: every file named has its hash.
    let settings = parse(&text, &AnyInstalled)?;
    check_signed_files(&settings)?;
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let summary =
        format!("sha256 {digest}, {} ssh key(s){files}", settings.ssh_authorized_keys.len());
    let bundle = SignedBundle::sign_as(BundleKind::Provisioning, text, &policy_key_id(key), key);
    let mut json = serde_json::to_string(&bundle).expect("a bundle is always JSON");
    json.push('\n');
    Ok(SignedFile { json, summary })
}

/// The signing key's id in bundles: its public half's first bytes, so a rotated key shows.
pub fn policy_key_id(key: &SigningKey) -> String {
    let public = key.verifying_key().to_bytes();
    format!("school-{}", hex::encode(&public[..4]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::provisioning::{open, Source, Trust};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBseSv9dWqz1f0IbmPlxR8Cz0nTutw3XoB7A2cqbbeB7 it@school";

    fn no_files(name: &str) -> Result<Vec<u8>, String> {
        Err(format!("{name}: no such file"))
    }

    /// The card's files as the signer reads them.
    fn card(name: &str) -> Result<Vec<u8>, String> {
        match name {
            "ca.pem" => Ok(b"the school's CA".to_vec()),
            "radius.pem" => Ok(b"the RADIUS CA".to_vec()),
            _ => Err(format!("{name} cannot be read: no such file")),
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn each_named_file_has_its_hash_signed_with_the_text() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let ours = key.verifying_key();
        let ca = sha(b"the school's CA");
        let radius = sha(b"the RADIUS CA");
        // (text, the hash lines the signed text ends with, or the refusal)
        let cases: Vec<(String, Result<String, &str>)> = vec![
            ("camera = \"block\"\n".into(), Ok(String::new())),
            (
                "ssl_inspection_ca = \"ca.pem\"".into(),
                Ok(format!("\n{HASHES_COMMENT}\nssl_inspection_ca_sha256 = \"{ca}\"\n")),
            ),
            (
                "wifi_eap_ca = \"radius.pem\"\nssl_inspection_ca = \"ca.pem\"\n".into(),
                Ok(format!(
                    "{HASHES_COMMENT}\nwifi_eap_ca_sha256 = \"{radius}\"\n\
                     ssl_inspection_ca_sha256 = \"{ca}\"\n"
                )),
            ),
            // Already recorded and right: kept, nothing added.
            (
                format!("ssl_inspection_ca = \"ca.pem\"\nssl_inspection_ca_sha256 = \"{ca}\"\n"),
                Ok(String::new()),
            ),
            (
                format!(
                    "ssl_inspection_ca = \"ca.pem\"\nssl_inspection_ca_sha256 = \"{radius}\"\n"
                ),
                Err("field `ssl_inspection_ca`: \"ca.pem\" has SHA-256"),
            ),
            (
                "ssl_inspection_ca = \"missing.pem\"\n".into(),
                Err("field `ssl_inspection_ca`: missing.pem cannot be read"),
            ),
            (
                "ssl_inspection_ca = \"../../etc/shadow\"\n".into(),
                Err("field `ssl_inspection_ca`: \"../../etc/shadow\" must be a file name"),
            ),
            (
                format!("ssl_inspection_ca_sha256 = \"{ca}\"\n"),
                Err("`ssl_inspection_ca` names no file"),
            ),
        ];
        for (text, want) in cases {
            match (sign(text.clone(), &key, &card), want) {
                (Ok(signed), Ok(tail)) => {
                    let trust = Trust { school_key: Some(&ours), enrolled: true };
                    let (_, settings) = open(signed.json.as_bytes(), trust, &AnyInstalled)
                        .unwrap_or_else(|e| panic!("{text}: {e}"));
                    assert_eq!(settings.text, format!("{text}{tail}"));
                    assert!(settings.card_files.iter().all(|f| f.sha256.is_some()), "{text}");
                    for f in &settings.card_files {
                        let digest = f.sha256.as_deref().unwrap();
                        let said = format!("; {} sha256 {digest}", f.name);
                        assert!(signed.summary.contains(&said), "{}", signed.summary);
                    }
                }
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_signed_file_opens_on_an_enrolled_device_of_this_school_only() {
        let school = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let text = format!(
            "wifi_ssid = \"S\"\nwifi_psk = \"a secret pass\"\nssh_authorized_keys = [\"{KEY}\"]\n"
        );
        let signed = sign(text.clone(), &school, &no_files).unwrap();
        assert!(signed.json.ends_with("}\n") && signed.json.contains("\"kind\":\"provisioning\""));
        assert!(signed.summary.ends_with(", 1 ssh key(s)") && !signed.summary.contains("secret"));
        let ours = school.verifying_key();
        let trust = Trust { school_key: Some(&ours), enrolled: true };
        let (source, settings) = open(signed.json.as_bytes(), trust, &AnyInstalled).unwrap();
        assert_eq!(source, Source::Signed);
        assert_eq!(settings.ssh_authorized_keys, vec![KEY]);
        let theirs = other.verifying_key();
        let trust = Trust { school_key: Some(&theirs), enrolled: true };
        assert!(open(signed.json.as_bytes(), trust, &AnyInstalled).is_err());
    }

    #[test]
    fn a_bad_file_is_not_signed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        for (text, want) in [
            ("camera = \"on\"\n", "line 1: field `camera`"),
            ("ssh_authorized_keys = [\"ssh-ed25519 AAAA\"]\n", "key 1 is not an OpenSSH"),
            ("wifi_psk = \"a secret pass\"\n", "field `wifi_ssid`: is required"),
        ] {
            let err = sign(text.into(), &key, &no_files).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
