//! The staff PIN: an argon2id hash (a PHC string, `$argon2id$v=19$…`) from the configuration,
//! checked on the device so that unlocking works offline. Owns hashing and checking; must not
//! keep, log or return a PIN, and does not rate-limit (the core does: see
//! [`crate::core::Lockout`]).
//!
//! Checking is deliberately slow (argon2's memory-hard cost), so the daemon runs it on a
//! blocking thread and only when the core is not locked out.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffPinError {
    #[error("not an argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): {0}")]
    NotPhc(String),
    #[error("the hash uses {0}, not argon2id")]
    NotArgon2id(String),
    #[error("a staff PIN must be 4 to 12 digits")]
    BadPin,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// The staff PIN's hash, checked when it is read. `Debug` hides it (a hash of a 4-digit PIN
/// is quick to brute-force offline, so it is kept out of logs too).
#[derive(Clone, PartialEq, Eq)]
pub struct StaffPin {
    phc: String,
}

impl fmt::Debug for StaffPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaffPin(<hidden>)")
    }
}

impl StaffPin {
    /// Parses a PHC string; only argon2id is accepted.
    pub fn from_phc(phc: &str) -> Result<Self, StaffPinError> {
        let parsed = PasswordHash::new(phc).map_err(|e| StaffPinError::NotPhc(e.to_string()))?;
        let algorithm = parsed.algorithm.as_str();
        if Algorithm::new(algorithm) != Ok(Algorithm::Argon2id) {
            return Err(StaffPinError::NotArgon2id(algorithm.to_owned()));
        }
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(StaffPinError::NotPhc("no salt or no hash".into()));
        }
        Ok(Self { phc: phc.to_owned() })
    }

    /// Hashes a new PIN with a random salt and argon2id's default cost.
    pub fn hash(pin: &str) -> Result<Self, StaffPinError> {
        check_pin_shape(pin)?;
        let hash = Argon2::default()
            .hash_password(pin.as_bytes())
            .map_err(|e| StaffPinError::Hash(e.to_string()))?;
        Ok(Self { phc: hash.to_string() })
    }

    /// The PHC string, for the configuration file.
    pub fn phc(&self) -> &str {
        &self.phc
    }

    /// Whether `pin` is the staff PIN. Slow by design: call it off the async threads.
    pub fn verify(&self, pin: &str) -> bool {
        check_pin_shape(pin).is_ok()
            && Argon2::default().verify_password(pin.as_bytes(), self.phc.as_str()).is_ok()
    }
}

/// A PIN is 4 to 12 ASCII digits (what a touchscreen keypad can type).
pub fn check_pin_shape(pin: &str) -> Result<(), StaffPinError> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StaffPinError::BadPin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_pin_verifies_and_others_do_not() {
        let pin = StaffPin::hash("1234").unwrap();
        assert!(pin.phc().starts_with("$argon2id$v=19$"), "{}", pin.phc());
        let again = StaffPin::from_phc(pin.phc()).unwrap();
        assert!(again.verify("1234"));
        for wrong in ["1235", "12345", "", "abcd", "1234 ", "０１２３"] {
            assert!(!again.verify(wrong), "{wrong:?}");
        }
        assert_ne!(StaffPin::hash("1234").unwrap().phc(), pin.phc(), "salted");
    }

    #[test]
    fn only_argon2id_phc_strings_are_accepted() {
        let cases = [
            ("1234", "not an argon2 PHC string"),
            ("", "not an argon2 PHC string"),
            ("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$3Xkkkt3fPBEKxsZ6jVN4Bw", "not argon2id"),
            ("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$3Xkkkt3fPBEKxsZ6jVN4Bw", "not argon2id"),
            ("$argon2id$v=19$m=16,t=2,p=1", "no salt or no hash"),
        ];
        for (phc, expected) in cases {
            let err = StaffPin::from_phc(phc).expect_err(phc).to_string();
            assert!(err.contains(expected), "{phc:?}: {err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn pins_are_four_to_twelve_digits_and_never_shown() {
        assert!(StaffPin::hash("123").is_err());
        assert!(StaffPin::hash("1234567890123").is_err());
        assert!(StaffPin::hash("12a4").is_err());
        let pin = StaffPin::hash("482916").unwrap();
        assert_eq!(format!("{pin:?}"), "StaffPin(<hidden>)");
    }
}
