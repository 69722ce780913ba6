//! Random secrets (enrollment tokens, device credentials, the staff key), their SHA-256 hashes
//! and constant-time comparison. It owns no storage and must never log or display a secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Bytes of randomness in every secret this server makes.
const SECRET_BYTES: usize = 32;

/// A freshly made secret: 32 random bytes as URL-safe base64 without padding (43 characters),
/// so it fits in a URL, a cookie and an `Authorization` header without escaping.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a secret read back from a file or a request.
    pub fn from_string(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }

    /// Compares in constant time, so a guesser learns nothing from how long a refusal takes.
    /// Hashing first makes both sides the same length.
    pub fn matches(&self, candidate: &str) -> bool {
        self.hash().0.ct_eq(&SecretHash::of(candidate).0).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// 16 random bytes as lowercase hex: the URL-list salt.
pub fn random_hex_16() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The SHA-256 of a secret: what the database keeps instead of the secret, so a copy of the
/// database does not let anyone act as a device.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_url_safe_unique_and_hidden() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn matching_is_exact() {
        let key = Secret::from_string("abc".into());
        assert!(key.matches("abc"));
        assert!(!key.matches("abd"));
        assert!(!key.matches("ab"));
        assert!(!key.matches(""));
    }

    #[test]
    fn hash_is_sha256() {
        assert_eq!(
            SecretHash::of("abc").as_bytes()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
    }
}
