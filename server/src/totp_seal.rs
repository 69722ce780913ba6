//! TOTP seeds sealed at rest. A trust's shared PostgreSQL is readable by its administrators, and
//! a database backup travels; a TOTP seed in either would let its reader make the second factor
//! of every DSL. So the database keeps each seed sealed with XChaCha20-Poly1305 under a key that
//! lives in the data directory (`totp.key`, mode 0600), never in the database; the account's
//! username is bound in as associated data, so a sealed seed copied onto another account does not
//! open. Pure: no I/O, the nonce is passed in (random in production).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Marks a sealed seed in the `totp_secret` column; a value without it is a seed stored before
/// sealing (the server seals those at its next start).
pub const SEALED_PREFIX: &str = "sealed1:";
const NONCE_BYTES: usize = 24;

/// The data directory's TOTP key.
#[derive(Clone)]
pub struct TotpSeal {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for TotpSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSeal(<key hidden>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the sealed TOTP secret is damaged")]
    Damaged,
    #[error("the sealed TOTP secret does not open with this data directory's key (another server's database, or its totp.key was replaced)")]
    WrongKey,
}

impl TotpSeal {
    pub fn new(key: [u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    /// Seals `secret` for `username` with a fresh random nonce.
    pub fn seal(&self, username: &str, secret: &str) -> String {
        self.seal_with_nonce(username, secret, rand::random())
    }

    fn seal_with_nonce(&self, username: &str, secret: &str, nonce: [u8; NONCE_BYTES]) -> String {
        let payload = Payload { msg: secret.as_bytes(), aad: username.as_bytes() };
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 seals any length a TOTP seed has");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The seed `stored` holds for `username`: opened if sealed, as it is if it was stored before
    /// sealing.
    pub fn open(&self, username: &str, stored: &str) -> Result<String, SealError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SealError::Damaged)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let payload = Payload { msg: sealed, aad: username.as_bytes() };
        let opened = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(opened).map_err(|_| SealError::Damaged)
    }

    /// Whether a stored value is sealed already.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    #[test]
    fn a_sealed_seed_opens_only_with_its_key_and_its_account() {
        let seal = TotpSeal::new([7; 32]);
        let stored = seal.seal("h.patel", SEED);
        assert!(TotpSeal::is_sealed(&stored) && !stored.contains(SEED), "{stored}");
        assert_eq!(seal.open("h.patel", &stored).unwrap(), SEED);
        assert_eq!(seal.open("t.owen", &stored), Err(SealError::WrongKey), "bound to the account");
        assert_eq!(TotpSeal::new([8; 32]).open("h.patel", &stored), Err(SealError::WrongKey));
        assert_ne!(seal.seal("h.patel", SEED), stored, "a fresh nonce each time");
    }

    #[test]
    fn damaged_and_legacy_values() {
        let seal = TotpSeal::new([7; 32]);
        let good = seal.seal_with_nonce("a", SEED, [1; NONCE_BYTES]);
        // One character of the sealed seed changed: decodes, but fails its check.
        let mut tampered = good.clone().into_bytes();
        let at = tampered.len() - 10;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let cases = [
            ("sealed1:", Err(SealError::Damaged)),
            ("sealed1:!!", Err(SealError::Damaged)),
            ("sealed1:AAAA", Err(SealError::Damaged)),
            (&tampered, Err(SealError::WrongKey)),
            (SEED, Ok(SEED.to_owned())),
        ];
        for (stored, expected) in cases {
            assert_eq!(seal.open("a", stored), expected, "{stored}");
        }
    }
}
