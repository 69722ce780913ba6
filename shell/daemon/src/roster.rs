//! Who may sign in: a pupil on the roster of the kiosk policy in force, with their picture PIN
//! when they have one. Pure (the argon2 check is slow but deterministic); slated asks before the
//! core starts a session, so the kiosk UI (and anything pretending to be it) cannot sign in as
//! another pupil.
//!
//! A picture PIN is known in one of two forms: from a server that sends hashes, the kiosk
//! policy gives its length and the staff document (slated's alone) its salted argon2id hash
//! ([`slate_protocol::staff::PicturePinEntry`]); from a server before hashes, the kiosk policy
//! gives the pictures themselves. Either way the taps are judged by [`picture_pin_matches`].
//! The hash is slow by design (about a quarter of a second on a Pi 4): the daemon runs
//! [`check_sign_in`] and [`check_pictures`] on a blocking thread.

use crate::control::{pictures_match, Role};
use argon2::password_hash::PasswordVerifier;
use argon2::Argon2;
use slate_protocol::kiosk::{picture_pin_secret, Policy, MAX_PICTURE_PIN};
use slate_protocol::staff::StaffPins;
use slate_protocol::PupilId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefused {
    #[error("no kiosk policy is in force: ask your teacher")]
    NoPolicy,
    #[error("this pupil is not on the device's roster: ask your teacher")]
    NotOnRoster,
    #[error("this pupil's picture PIN is needed")]
    PicturesNeeded,
    #[error("wrong pictures: try again")]
    WrongPictures,
}

/// A pupil's picture PIN as this device knows it.
#[derive(Clone, PartialEq, Eq)]
pub enum ExpectedPin {
    /// From a server before hashes: the pictures themselves.
    Plain(Vec<String>),
    /// The length from the kiosk policy and the argon2id PHC string from the staff document.
    Hashed { length: usize, phc: String },
    /// The kiosk policy says the pupil has a PIN but no staff document in force holds its
    /// hash (the two arrive together, so a damaged cache): no taps match, and staff (root)
    /// can still sign the pupil in.
    Unknown,
}

impl std::fmt::Debug for ExpectedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the pictures or the hash in a log.
        f.write_str(match self {
            ExpectedPin::Plain(_) => "ExpectedPin::Plain(<hidden>)",
            ExpectedPin::Hashed { .. } => "ExpectedPin::Hashed(<hidden>)",
            ExpectedPin::Unknown => "ExpectedPin::Unknown",
        })
    }
}

/// Whether `tapped` are the pictures of `expected`: the one place a picture PIN is judged.
/// A hash is checked with its own argon2 parameters (capped when the staff document was
/// parsed) and only for taps of the right length and shape, so a wrong length costs nothing.
pub fn picture_pin_matches(expected: &ExpectedPin, tapped: &[String]) -> bool {
    match expected {
        ExpectedPin::Plain(want) => pictures_match(want, tapped),
        ExpectedPin::Hashed { length, phc } => {
            tapped.len() == *length
                && tapped.len() <= MAX_PICTURE_PIN
                && tapped.iter().all(|p| !p.is_empty() && p.len() <= 16)
                && Argon2::default()
                    .verify_password(&picture_pin_secret(tapped), phc.as_str())
                    .is_ok()
        }
        ExpectedPin::Unknown => false,
    }
}

/// The picture PIN of `pupil` (`Ok(None)`: on the roster, no picture PIN). Quick: no hashing.
pub fn expected_pin(
    policy: Option<&Policy>,
    staff: Option<&StaffPins>,
    pupil: &PupilId,
) -> Result<Option<ExpectedPin>, SignInRefused> {
    let policy = policy.ok_or(SignInRefused::NoPolicy)?;
    let found = policy.classes.iter().flat_map(|c| &c.pupils).find(|p| &p.id == pupil);
    let found = found.ok_or(SignInRefused::NotOnRoster)?;
    if let Some(pictures) = &found.picture_pin {
        return Ok(Some(ExpectedPin::Plain(pictures.clone())));
    }
    let Some(length) = found.picture_pin_length else { return Ok(None) };
    let hash = staff.and_then(|s| s.picture_pins.iter().find(|e| &e.pupil == pupil));
    Ok(Some(match hash {
        Some(entry) => ExpectedPin::Hashed { length: length.into(), phc: entry.phc.clone() },
        None => ExpectedPin::Unknown,
    }))
}

/// Whether `pupil` may sign in, asked by a peer in `role` with these pictures. Root (IT's
/// `slatectl`) needs the pupil on the roster but not their pictures. Slow when the PIN is
/// hashed: off the async threads.
pub fn check_sign_in(
    expected: Result<Option<ExpectedPin>, SignInRefused>,
    role: Role,
    pictures: Option<&[String]>,
) -> Result<(), SignInRefused> {
    match (role, expected?, pictures) {
        (Role::Root, _, _) | (_, None, _) => Ok(()),
        (_, Some(_), None) => Err(SignInRefused::PicturesNeeded),
        (_, Some(want), Some(got)) if picture_pin_matches(&want, got) => Ok(()),
        (_, Some(_), Some(_)) => Err(SignInRefused::WrongPictures),
    }
}

/// Whether `pictures` are the pupil's picture PIN (the UI asks as the last one is tapped).
/// Slow when the PIN is hashed: off the async threads.
pub fn check_pictures(
    expected: Result<Option<ExpectedPin>, SignInRefused>,
    pictures: &[String],
) -> Result<(), SignInRefused> {
    match expected? {
        Some(want) if picture_pin_matches(&want, pictures) => Ok(()),
        _ => Err(SignInRefused::WrongPictures),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};
    use slate_protocol::staff::PicturePinEntry;

    fn v(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    /// A hash as the server makes it (`auth::hash_picture_pin`), at a cheap cost for a debug
    /// build: the check reads the cost from the hash, so it is the same code path.
    fn hash(pictures: &[&str]) -> String {
        let params = argon2::Params::new(256, 1, 1, None).unwrap();
        let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = [7u8; 16];
        hasher
            .hash_password_with_salt(&picture_pin_secret(&v(pictures)), &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn picture_pins_are_judged_in_either_form() {
        let plain = ExpectedPin::Plain(v(&["sun", "boat"]));
        let hashed = ExpectedPin::Hashed { length: 2, phc: hash(&["sun", "boat"]) };
        // A hash that does not say its length truthfully still only matches its own pictures.
        let liar = ExpectedPin::Hashed { length: 3, phc: hash(&["sun", "boat"]) };
        let cases: [(&ExpectedPin, Vec<String>, bool); 14] = [
            (&plain, v(&["sun", "boat"]), true),
            (&plain, v(&["boat", "sun"]), false),
            (&plain, v(&["sun"]), false),
            (&plain, v(&[]), false),
            (&hashed, v(&["sun", "boat"]), true),
            (&hashed, v(&["boat", "sun"]), false),
            (&hashed, v(&["sun", "sun"]), false),
            (&hashed, v(&["sun"]), false),
            (&hashed, v(&["sun", "boat", "sun"]), false),
            (&hashed, v(&[]), false),
            (&hashed, v(&["sunboat", ""]), false),
            (&liar, v(&["sun", "boat"]), false),
            (&ExpectedPin::Unknown, v(&["sun", "boat"]), false),
            (
                &ExpectedPin::Hashed { length: 2, phc: "not a hash".into() },
                v(&["sun", "boat"]),
                false,
            ),
        ];
        for (expected, tapped, matches) in cases {
            assert_eq!(picture_pin_matches(expected, &tapped), matches, "{expected:?} {tapped:?}");
        }
        assert!(!format!("{plain:?}{hashed:?}").contains("sun"), "no PIN in a log");
    }

    type Case<'a> = (
        Option<&'a Policy>,
        Option<&'a StaffPins>,
        Role,
        &'a PupilId,
        Option<&'a [String]>,
        Result<(), SignInRefused>,
    );

    #[test]
    fn who_may_sign_in() {
        let mut old = parse_policy(SAMPLE_POLICY).unwrap();
        let plain = old.classes[0].pupils[0].id.clone();
        let pinned = old.classes[1].pupils[0].id.clone();
        old.classes[0].pupils[0].picture_pin = None;
        old.classes[1].pupils[0].picture_pin = Some(v(&["sun", "boat"]));
        // The same PIN from a server that sends hashes.
        let mut new = old.clone();
        new.classes[1].pupils[0].picture_pin = None;
        new.classes[1].pupils[0].picture_pin_length = Some(2);
        let staff = StaffPins {
            v: 1,
            issued_at: "2026-11-23T08:00:00Z".parse().unwrap(),
            staff: Vec::new(),
            picture_pins: vec![PicturePinEntry {
                pupil: pinned.clone(),
                phc: hash(&["sun", "boat"]),
            }],
        };
        let no_hashes = StaffPins { picture_pins: Vec::new(), ..staff.clone() };
        let stranger = PupilId::new("p-999999").unwrap();
        let (right, wrong, short) = (v(&["sun", "boat"]), v(&["boat", "sun"]), v(&["sun"]));
        let long = v(&["sun", "boat", "sun"]);
        use SignInRefused::*;
        let (k, r) = (Role::Kiosk, Role::Root);
        let mut cases: Vec<Case> = vec![
            (None, None, k, &plain, None, Err(NoPolicy)),
            (None, None, r, &plain, None, Err(NoPolicy)),
        ];
        for (policy, staff) in [(&old, None), (&new, Some(&staff))] {
            let p = Some(policy);
            cases.extend::<Vec<Case>>(vec![
                (p, staff, k, &stranger, None, Err(NotOnRoster)),
                (p, staff, r, &stranger, None, Err(NotOnRoster)),
                (p, staff, k, &plain, None, Ok(())),
                (p, staff, k, &plain, Some(&right), Ok(())),
                (p, staff, k, &pinned, None, Err(PicturesNeeded)),
                (p, staff, k, &pinned, Some(&right), Ok(())),
                (p, staff, k, &pinned, Some(&wrong), Err(WrongPictures)),
                (p, staff, k, &pinned, Some(&short), Err(WrongPictures)),
                (p, staff, k, &pinned, Some(&long), Err(WrongPictures)),
                (p, staff, k, &pinned, Some(&[]), Err(WrongPictures)),
                (p, staff, r, &pinned, None, Ok(())),
            ]);
        }
        // A length without its hash: nobody's taps match; staff can still sign the pupil in.
        cases.extend::<Vec<Case>>(vec![
            (Some(&new), None, k, &pinned, Some(&right), Err(WrongPictures)),
            (Some(&new), Some(&no_hashes), k, &pinned, Some(&right), Err(WrongPictures)),
            (Some(&new), Some(&no_hashes), r, &pinned, None, Ok(())),
        ]);
        for (policy, staff, role, pupil, pictures, expected) in cases {
            let pin = expected_pin(policy, staff, pupil);
            assert_eq!(
                check_sign_in(pin, role, pictures),
                expected,
                "{role:?} {pupil:?} {pictures:?} staff document: {}",
                staff.is_some()
            );
        }
        for (policy, staff) in [(&old, None), (&new, Some(&staff))] {
            let pin = |pupil: &PupilId| expected_pin(Some(policy), staff, pupil);
            assert_eq!(check_pictures(pin(&pinned), &right), Ok(()));
            assert_eq!(check_pictures(pin(&pinned), &wrong), Err(WrongPictures));
            assert_eq!(check_pictures(pin(&plain), &right), Err(WrongPictures));
            assert_eq!(check_pictures(pin(&stranger), &right), Err(NotOnRoster));
        }
        assert_eq!(check_pictures(expected_pin(None, None, &pinned), &right), Err(NoPolicy));
    }
}
