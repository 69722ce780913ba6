//! The staff unlock PINs: who may unlock a held device, as a signed document of its own (the
//! policy reply's `staff` bundle). Each member of staff sets their own PIN on the school server;
//! the device learns only a pseudonymous [`StaffId`] and the PIN's argon2id hash, so an unlock
//! records who it was and no name ever reaches a device.
//!
//! ```json
//! {"v":1,"issued_at":"2026-11-23T08:00:00Z",
//!  "staff":[{"id":"s-4f2a9c1e7b30","pin_hash":"$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"}]}
//! ```
//!
//! Pupils' picture PINs travel here too, as salted argon2id hashes under the pupil's
//! pseudonymous id (`picture_pins`, [`PicturePinEntry`]), to devices that say they understand
//! them (`can=picture_pin_hash`); the kiosk document then carries only each PIN's length.
//!
//! It is kept apart from the kiosk document on purpose: `kiosk.json` is readable by the kiosk
//! UI's user and so by every app a pupil runs, and a 6-digit PIN falls to an offline search of
//! its hash. `slated` alone reads this one and caches it where only it can read it.
//!
//! Pure: parsing and checking only. Every refusal names the field.

use crate::kiosk::PolicyError;
use crate::{PupilId, StaffId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Fewest digits of a member of staff's unlock PIN (the server refuses shorter, and so does the
/// device for any PIN checked against this document).
pub const MIN_STAFF_PIN_DIGITS: usize = 6;
/// Most digits of any unlock PIN (what the PIN pad takes).
pub const MAX_STAFF_PIN_DIGITS: usize = 12;
/// Most entries in one document: a device checks a typed PIN against each hash in turn, so the
/// count bounds how long a wrong PIN takes to refuse.
pub const MAX_STAFF_ENTRIES: usize = 500;
/// Most pupils' picture PINs in one document (a device checks one per sign-in, so this only
/// bounds the document's size).
pub const MAX_PICTURE_PIN_ENTRIES: usize = 5000;
/// The staff id a device records for an unlock with IT's own PIN from its `slate.toml`
/// (`[staff] pin_hash`). Reserved: the school server never issues it.
pub const IT_STAFF_ID: &str = "it";
/// Argon2 cost limits a device accepts in a hash (memory in KiB, passes, lanes): enough for
/// argon2's defaults (19 MiB, 2, 1) with room, but never a hash that would take a Pi's memory
/// or minutes to check.
pub const MAX_ARGON2_M_KIB: u32 = 65_536;
pub const MAX_ARGON2_T: u32 = 10;
pub const MAX_ARGON2_P: u32 = 4;

/// The signed staff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffPins {
    pub v: u32,
    /// When the server's records last changed; a device never goes back to an older one.
    pub issued_at: DateTime<Utc>,
    pub staff: Vec<StaffPinEntry>,
    /// Pupils' picture PINs as hashes. Absent when empty, so a server sends devices before
    /// hashed picture PINs what they understand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picture_pins: Vec<PicturePinEntry>,
}

/// One pupil's picture PIN: the argon2id PHC string of
/// [`crate::kiosk::picture_pin_secret`] with a per-pupil random salt. The server hashes it once,
/// when the PIN is set, so the document's bytes do not change between fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PicturePinEntry {
    pub pupil: PupilId,
    pub phc: String,
}

/// One member of staff who may unlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffPinEntry {
    /// Pseudonymous: the server maps it back to the account.
    pub id: StaffId,
    /// The PIN's argon2id PHC string.
    pub pin_hash: String,
}

/// The same shape, with ids as plain strings so that a bad one is refused by its index.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPins {
    v: u32,
    issued_at: DateTime<Utc>,
    staff: Vec<RawEntry>,
    #[serde(default)]
    picture_pins: Vec<RawPicturePin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPicturePin {
    pupil: String,
    phc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    pin_hash: String,
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> PolicyError {
    PolicyError::Field { field: field.into(), problem: problem.into() }
}

/// Parses and checks a staff document. Pure. Each error names the field it refuses.
pub fn parse_staff_pins(text: &str) -> Result<StaffPins, PolicyError> {
    let raw: RawPins = serde_json::from_str(text).map_err(|e| PolicyError::Shape(e.to_string()))?;
    if raw.v != 1 {
        return Err(PolicyError::Version(raw.v));
    }
    if raw.staff.len() > MAX_STAFF_ENTRIES {
        return Err(field(
            "staff",
            format!("has {} entries, over {MAX_STAFF_ENTRIES}", raw.staff.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut staff = Vec::with_capacity(raw.staff.len());
    for (i, entry) in raw.staff.into_iter().enumerate() {
        let id = StaffId::new(entry.id).map_err(|_| {
            field(format!("staff[{i}].id"), "must be 1 to 64 of letters, digits, '-' or '_'")
        })?;
        if id.as_str() == IT_STAFF_ID {
            return Err(field(
                format!("staff[{i}].id"),
                format!("{IT_STAFF_ID:?} is reserved for IT's own PIN on the device"),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(field(format!("staff[{i}].id"), "repeats another entry's id"));
        }
        check_argon2id_phc(&entry.pin_hash)
            .map_err(|problem| field(format!("staff[{i}].pin_hash"), problem))?;
        staff.push(StaffPinEntry { id, pin_hash: entry.pin_hash });
    }
    if raw.picture_pins.len() > MAX_PICTURE_PIN_ENTRIES {
        return Err(field(
            "picture_pins",
            format!("has {} entries, over {MAX_PICTURE_PIN_ENTRIES}", raw.picture_pins.len()),
        ));
    }
    let mut pupils = std::collections::HashSet::new();
    let mut picture_pins = Vec::with_capacity(raw.picture_pins.len());
    for (i, entry) in raw.picture_pins.into_iter().enumerate() {
        let at = |f: &str| format!("picture_pins[{i}].{f}");
        let pupil = PupilId::new(entry.pupil).map_err(|e| field(at("pupil"), e.to_string()))?;
        if !pupils.insert(pupil.clone()) {
            return Err(field(at("pupil"), "repeats another entry's pupil"));
        }
        check_argon2id_phc(&entry.phc).map_err(|problem| field(at("phc"), problem))?;
        picture_pins.push(PicturePinEntry { pupil, phc: entry.phc });
    }
    Ok(StaffPins { v: raw.v, issued_at: raw.issued_at, staff, picture_pins })
}

/// Checks the shape of an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, salt
/// and hash in unpadded base64) and that its cost is within the device's limits. Pure; says
/// what is wrong.
pub fn check_argon2id_phc(phc: &str) -> Result<(), String> {
    const SHAPE: &str = "must be an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)";
    if phc.len() > 256 {
        return Err("is over 256 characters".into());
    }
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, hash] = parts[..] else {
        return Err(SHAPE.into());
    };
    let mut values = [None; 3];
    for (i, pair) in params.split(',').enumerate() {
        let (name, value) = pair.split_once('=').ok_or(SHAPE)?;
        let slot =
            ["m", "t", "p"].iter().position(|n| *n == name).filter(|p| *p == i).ok_or(SHAPE)?;
        let value: u32 = value.parse().map_err(|_| SHAPE)?;
        values[slot] = Some(value);
    }
    let [Some(m), Some(t), Some(p)] = values else { return Err(SHAPE.into()) };
    if !(1..=MAX_ARGON2_P).contains(&p) || !(1..=MAX_ARGON2_T).contains(&t) {
        return Err(format!("asks for t={t}, p={p}: at most t={MAX_ARGON2_T}, p={MAX_ARGON2_P}"));
    }
    if m < 8 * p || m > MAX_ARGON2_M_KIB {
        return Err(format!("asks for m={m} KiB: 8×p to {MAX_ARGON2_M_KIB}"));
    }
    let b64 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !(11..=64).contains(&salt.len()) || !b64(salt) {
        return Err("has no valid salt (11 to 64 characters of base64)".into());
    }
    if !(16..=128).contains(&hash.len()) || !b64(hash) {
        return Err("has no valid hash (16 to 128 characters of base64)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0mBJ1ltyC3vBj3kP0Zlh3Cz0gCMdWbKTIbwBCaMNEus";

    fn document() -> serde_json::Value {
        json!({"v": 1, "issued_at": "2026-11-23T08:00:00Z", "staff": [
            {"id": "s-4f2a9c1e7b30", "pin_hash": HASH},
            {"id": "s-0b1c2d3e4f50", "pin_hash": HASH},
        ]})
    }

    #[test]
    fn a_good_document_parses_and_round_trips() {
        let pins = parse_staff_pins(&document().to_string()).unwrap();
        assert_eq!(pins.staff.len(), 2);
        assert_eq!(pins.staff[0].id.as_str(), "s-4f2a9c1e7b30");
        assert_eq!(parse_staff_pins(&serde_json::to_string(&pins).unwrap()).unwrap(), pins);
        let empty = json!({"v": 1, "issued_at": "2026-11-23T08:00:00Z", "staff": []});
        assert!(parse_staff_pins(&empty.to_string()).unwrap().staff.is_empty());
        // Without picture PINs the field is left out: what a device before them reads.
        assert!(!serde_json::to_string(&pins).unwrap().contains("picture_pins"));
        let mut with_pins = document();
        with_pins["picture_pins"] = json!([{"pupil": "p-7f3a9c", "phc": HASH}]);
        let pins = parse_staff_pins(&with_pins.to_string()).unwrap();
        assert_eq!(pins.picture_pins[0].pupil.as_str(), "p-7f3a9c");
        assert_eq!(parse_staff_pins(&serde_json::to_string(&pins).unwrap()).unwrap(), pins);
    }

    #[test]
    fn bad_documents_name_the_field() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let many: Vec<_> = (0..=MAX_STAFF_ENTRIES)
            .map(|i| json!({"id": format!("s-{i}"), "pin_hash": HASH}))
            .collect();
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|v| v["v"] = json!(2)), "version 2"),
            (Box::new(|v| v["staff"][0]["name"] = json!("Mrs Jones")), "unknown field `name`"),
            (Box::new(|v| v["issued_at"] = json!("yesterday")), "shape"),
            (Box::new(|v| v["staff"][1]["id"] = json!("s 1")), "staff[1].id"),
            (Box::new(|v| v["staff"][1]["id"] = json!("")), "staff[1].id"),
            (Box::new(|v| v["staff"][1]["id"] = json!("it")), "reserved"),
            (Box::new(|v| v["staff"][1]["id"] = v["staff"][0]["id"].clone()), "repeats"),
            (Box::new(|v| v["staff"][0]["pin_hash"] = json!("123456")), "staff[0].pin_hash"),
            (Box::new(move |v| v["staff"] = json!(many)), "over 500"),
            (
                Box::new(|v| v["picture_pins"] = json!([{"pupil": "Amira K", "phc": HASH}])),
                "picture_pins[0].pupil",
            ),
            (
                Box::new(|v| {
                    v["picture_pins"] =
                        json!([{"pupil": "p-1", "phc": HASH}, {"pupil": "p-1", "phc": HASH}])
                }),
                "picture_pins[1].pupil` repeats",
            ),
            (
                Box::new(|v| {
                    v["picture_pins"] = json!([{"pupil": "p-1", "phc": "[\"sun\",\"boat\"]"}])
                }),
                "picture_pins[0].phc",
            ),
            (
                Box::new(|v| {
                    v["picture_pins"] = json!([{"pupil": "p-1", "phc": HASH, "pictures": ["sun"]}])
                }),
                "unknown field `pictures`",
            ),
        ];
        for (edit, expected) in cases {
            let mut value = document();
            edit(&mut value);
            let err = parse_staff_pins(&value.to_string()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn argon2id_phc_strings_are_checked_with_their_cost() {
        assert_eq!(check_argon2id_phc(HASH), Ok(()));
        assert_eq!(
            check_argon2id_phc("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            Ok(())
        );
        let cases = [
            ("", "argon2id PHC"),
            ("1234", "argon2id PHC"),
            ("$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "argon2id PHC"),
            ("$argon2id$v=16$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "argon2id PHC"),
            ("$argon2id$v=19$t=1,m=256,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "argon2id PHC"),
            ("$argon2id$v=19$m=256,t=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "argon2id PHC"),
            ("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ", "argon2id PHC"),
            ("$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "m=1048576"),
            ("$argon2id$v=19$m=256,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "t=99"),
            ("$argon2id$v=19$m=256,t=1,p=1$c2Fs$aGFzaGhhc2hoYXNoaGFzaA", "salt"),
            ("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFz", "hash"),
            ("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNh!HQ$aGFzaGhhc2hoYXNoaGFzaA", "salt"),
        ];
        for (phc, expected) in cases {
            let err = check_argon2id_phc(phc).expect_err(phc);
            assert!(err.contains(expected), "{phc:?}: {err:?} should contain {expected:?}");
        }
    }
}
