//! Staff PINs: argon2id hashes (PHC strings, `$argon2id$v=19$…`) checked on the device so that
//! unlocking works offline. Each member of staff's own, from the signed staff document
//! ([`slate_protocol::staff::StaffPins`]), plus IT's own from `slate.toml` (`[staff] pin_hash`),
//! which records the unlock as staff [`IT_STAFF_ID`]. [`UnlockPins::check`] says whose PIN was
//! typed. Owns hashing and checking; must not keep, log or return a PIN, and does not
//! rate-limit (the core does: see [`crate::core::Lockout`]).
//!
//! Checking is deliberately slow (argon2's memory-hard cost, with each hash's own parameters),
//! so the daemon runs it on a blocking thread and only when the core is not locked out. With
//! the server's default cost (m=19 MiB, t=2, p=1) one check takes about 50 to 100 ms on a
//! Raspberry Pi 4, so a typed PIN is checked against up to 4 hashes at a time (one per core)
//! and the check stops at the first match: a right PIN costs at most its position / 4 checks,
//! a wrong one every entry / 4 (about 2 s for 100 staff). The staff document holds at most
//! [`MAX_STAFF_ENTRIES`] entries.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2};
use slate_protocol::staff::{
    StaffPins, IT_STAFF_ID, MAX_STAFF_ENTRIES, MAX_STAFF_PIN_DIGITS, MIN_STAFF_PIN_DIGITS,
};
use slate_protocol::StaffId;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// Hashes with a deliberately low cost (m=256 KiB, t=1): for tests and benchmarks only,
    /// where a debug build would take seconds per default-cost check. Never for a real PIN.
    #[doc(hidden)]
    pub fn hash_cheap(pin: &str) -> Self {
        let params = argon2::Params::new(256, 1, 1, None).expect("valid argon2 params");
        let hasher = Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params);
        let hash = hasher.hash_password(pin.as_bytes()).expect("argon2 hashes a PIN");
        Self { phc: hash.to_string() }
    }

    /// The PHC string, for the configuration file.
    pub fn phc(&self) -> &str {
        &self.phc
    }

    /// Whether `pin` is the staff PIN. Slow by design: call it off the async threads.
    pub fn verify(&self, pin: &str) -> bool {
        check_pin_shape(pin).is_ok() && self.verify_digits(pin)
    }

    /// The argon2 check alone, with the hash's own parameters (m, t, p come from the PHC
    /// string; `Argon2::default()` only supplies the algorithm's code).
    fn verify_digits(&self, pin: &str) -> bool {
        Argon2::default().verify_password(pin.as_bytes(), self.phc.as_str()).is_ok()
    }
}

/// One PIN that may unlock, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    staff: StaffId,
    pin: StaffPin,
    /// Fewest digits this entry accepts: 6 for the server's staff, 4 for IT's own PIN.
    min_digits: usize,
}

/// Every PIN that may unlock this device now: the staff document's entries in its order, then
/// IT's own from `slate.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockPins {
    entries: Vec<Entry>,
}

/// Most hashes checked at once (a Pi 4 and 5 have four cores; each check takes m KiB).
const CHECK_THREADS: usize = 4;

impl UnlockPins {
    /// The staff document's PINs (none when `staff` is `None`) and IT's. An entry whose hash
    /// does not parse refuses the whole document (it was checked when it arrived, so this is a
    /// bug or a damaged cache) rather than leaving someone out silently.
    pub fn new(staff: Option<&StaffPins>, it: Option<&StaffPin>) -> Result<Self, StaffPinError> {
        let mut entries = Vec::new();
        for entry in staff.map(|s| s.staff.as_slice()).unwrap_or_default() {
            entries.push(Entry {
                staff: entry.id.clone(),
                pin: StaffPin::from_phc(&entry.pin_hash)?,
                min_digits: MIN_STAFF_PIN_DIGITS,
            });
        }
        entries.truncate(MAX_STAFF_ENTRIES);
        if let Some(pin) = it {
            entries.push(Entry {
                staff: StaffId::new(IT_STAFF_ID).expect("a well-formed id"),
                pin: pin.clone(),
                min_digits: 4,
            });
        }
        Ok(Self { entries })
    }

    /// Whether any PIN may unlock (without one a held device stays held).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whose PIN `pin` is: the first entry (in document order, IT's last) that it matches, or
    /// `None`. A PIN shorter than an entry allows is never checked against it. Slow by design
    /// (see the module's note on cost): call it off the async threads.
    pub fn check(&self, pin: &str) -> Option<StaffId> {
        if !pin.bytes().all(|b| b.is_ascii_digit()) || pin.len() > MAX_STAFF_PIN_DIGITS {
            return None;
        }
        let fits = |e: &Entry| pin.len() >= e.min_digits;
        let n = self.entries.len();
        // The lowest matching index found so far; every lower index is checked by the time all
        // workers end, so the answer does not depend on which thread was quicker.
        let found = AtomicUsize::new(usize::MAX);
        let threads = n
            .min(CHECK_THREADS)
            .min(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
        let work = |first: usize| {
            for i in (first..n).step_by(threads.max(1)) {
                if i > found.load(Ordering::Acquire) {
                    return;
                }
                let entry = &self.entries[i];
                if fits(entry) && entry.pin.verify_digits(pin) {
                    found.fetch_min(i, Ordering::AcqRel);
                    return;
                }
            }
        };
        if threads <= 1 {
            work(0);
        } else {
            std::thread::scope(|scope| {
                for first in 1..threads {
                    scope.spawn(move || work(first));
                }
                work(0);
            });
        }
        let i = found.into_inner();
        self.entries.get(i).map(|e| e.staff.clone())
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

    fn document(entries: &[(&str, &StaffPin)]) -> StaffPins {
        StaffPins {
            v: 1,
            issued_at: "2026-11-23T08:00:00Z".parse().unwrap(),
            staff: entries
                .iter()
                .map(|(id, pin)| slate_protocol::staff::StaffPinEntry {
                    id: StaffId::new(*id).unwrap(),
                    pin_hash: pin.phc().to_owned(),
                })
                .collect(),
            picture_pins: Vec::new(),
        }
    }

    #[test]
    fn an_unlock_pin_says_whose_it_is() {
        let jones = StaffPin::hash_cheap("482916");
        let patel = StaffPin::hash_cheap("730418");
        let twin = StaffPin::hash_cheap("730418");
        let it = StaffPin::hash_cheap("9051");
        let short = StaffPin::hash_cheap("5555");
        // Many entries, so that the check really runs on several threads.
        let others: Vec<StaffPin> =
            (0..9).map(|i| StaffPin::hash_cheap(&format!("10000{i}"))).collect();
        let mut entries: Vec<(String, &StaffPin)> =
            others.iter().enumerate().map(|(i, p)| (format!("s-other{i}"), p)).collect();
        entries.extend([
            ("s-jones".to_owned(), &jones),
            ("s-patel".to_owned(), &patel),
            ("s-twin".to_owned(), &twin),
            ("s-short".to_owned(), &short),
        ]);
        let entries: Vec<(&str, &StaffPin)> =
            entries.iter().map(|(i, p)| (i.as_str(), *p)).collect();
        let doc = document(&entries);
        let pins = UnlockPins::new(Some(&doc), Some(&it)).unwrap();
        assert_eq!(pins.len(), 14);
        let cases = [
            ("482916", Some("s-jones")),
            // Two entries with the same PIN: always the first in the document.
            ("730418", Some("s-patel")),
            ("100003", Some("s-other3")),
            ("9051", Some("it")),
            // The server never accepts a staff PIN under 6 digits; nor does the device.
            ("5555", None),
            ("482917", None),
            ("48291", None),
            ("", None),
            ("48291a", None),
            ("4829160000000", None),
        ];
        for (typed, whose) in cases {
            for _ in 0..3 {
                assert_eq!(pins.check(typed).as_ref().map(StaffId::as_str), whose, "{typed:?}");
            }
        }
    }

    #[test]
    fn no_document_leaves_it_alone_and_nothing_leaves_nobody() {
        let it = StaffPin::hash_cheap("9051");
        let pins = UnlockPins::new(None, Some(&it)).unwrap();
        assert_eq!(pins.check("9051").as_ref().map(StaffId::as_str), Some(IT_STAFF_ID));
        let none = UnlockPins::new(None, None).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.check("9051"), None);
        let mut bad = document(&[("s-1", &it)]);
        bad.staff[0].pin_hash =
            "$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into();
        assert!(UnlockPins::new(Some(&bad), Some(&it)).is_err());
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
