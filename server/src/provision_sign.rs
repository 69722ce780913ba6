//! `slate-server provision sign`: a card's provisioning file (`slate-provision.conf`), checked
//! line by line as a device would check it (`slate_protocol::provisioning::parse`, without the
//! device's lists of timezones and layouts), then signed with the policy key as a
//! [`BundleKind::Provisioning`] bundle. An enrolled device takes no other provisioning file, so
//! this is how IT turns on ssh for its keys (seed: the card is no key to the device). Pure; the
//! command in `main.rs` reads and writes the files, as the caller and the data directory's owner.

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::provisioning::{parse, AnyInstalled, ProvisionError};

/// The signed file for the card, and what the audit log says about it (nothing secret: not
/// the Wi-Fi password).
#[derive(Debug)]
pub struct SignedFile {
    /// The bundle as JSON, with a final newline.
    pub json: String,
    /// "sha256 <hex of the text>, <n> ssh key(s)".
    pub summary: String,
}

/// Checks `text` and signs it; a bad line signs nothing.
pub fn sign(text: String, key: &SigningKey) -> Result<SignedFile, ProvisionError> {
    let settings = parse(&text, &AnyInstalled)?;
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let summary = format!("sha256 {digest}, {} ssh key(s)", settings.ssh_authorized_keys.len());
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

    #[test]
    fn a_signed_file_opens_on_an_enrolled_device_of_this_school_only() {
        let school = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let text = format!(
            "wifi_ssid = \"S\"\nwifi_psk = \"a secret pass\"\nssh_authorized_keys = [\"{KEY}\"]\n"
        );
        let signed = sign(text.clone(), &school).unwrap();
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
            let err = sign(text.into(), &key).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
