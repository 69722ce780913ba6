//! Who may sign in: a pupil on the roster of the kiosk policy in force, with their picture PIN
//! when they have one. Pure; slated asks before the core starts a session, so the kiosk UI (and
//! anything pretending to be it) cannot sign in as another pupil.

use crate::control::{pictures_match, Role};
use slate_protocol::kiosk::Policy;
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

/// The picture PIN of `pupil` in `policy` (`Some(None)`: on the roster, no picture PIN).
fn pin_of<'a>(
    policy: Option<&'a Policy>,
    pupil: &PupilId,
) -> Result<Option<&'a [String]>, SignInRefused> {
    let policy = policy.ok_or(SignInRefused::NoPolicy)?;
    let found = policy.classes.iter().flat_map(|c| &c.pupils).find(|p| &p.id == pupil);
    Ok(found.ok_or(SignInRefused::NotOnRoster)?.picture_pin.as_deref())
}

/// Whether `pupil` may sign in, asked by a peer in `role` with these pictures. Root (IT's
/// `slatectl`) needs the pupil on the roster but not their pictures. Pure.
pub fn check_sign_in(
    policy: Option<&Policy>,
    role: Role,
    pupil: &PupilId,
    pictures: Option<&[String]>,
) -> Result<(), SignInRefused> {
    let expected = pin_of(policy, pupil)?;
    match (role, expected, pictures) {
        (Role::Root, _, _) | (_, None, _) => Ok(()),
        (_, Some(_), None) => Err(SignInRefused::PicturesNeeded),
        (_, Some(want), Some(got)) if pictures_match(want, got) => Ok(()),
        (_, Some(_), Some(_)) => Err(SignInRefused::WrongPictures),
    }
}

/// Whether `pictures` are `pupil`'s picture PIN (the UI asks as the last one is tapped). Pure.
pub fn check_pictures(
    policy: Option<&Policy>,
    pupil: &PupilId,
    pictures: &[String],
) -> Result<(), SignInRefused> {
    match pin_of(policy, pupil)? {
        Some(want) if pictures_match(want, pictures) => Ok(()),
        _ => Err(SignInRefused::WrongPictures),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};

    type Case<'a> =
        (Option<&'a Policy>, Role, &'a PupilId, Option<&'a [String]>, Result<(), SignInRefused>);

    #[test]
    fn who_may_sign_in() {
        let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
        let plain = policy.classes[0].pupils[0].id.clone();
        let pinned = policy.classes[1].pupils[0].id.clone();
        policy.classes[0].pupils[0].picture_pin = None;
        policy.classes[1].pupils[0].picture_pin = Some(vec!["sun".into(), "boat".into()]);
        let stranger = PupilId::new("p-999999").unwrap();
        let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (right, wrong, short) = (v(&["sun", "boat"]), v(&["boat", "sun"]), v(&["sun"]));
        let long = v(&["sun", "boat", "sun"]);
        use SignInRefused::*;
        let p = Some(&policy);
        let cases: Vec<Case> = vec![
            (None, Role::Kiosk, &plain, None, Err(NoPolicy)),
            (None, Role::Root, &plain, None, Err(NoPolicy)),
            (p, Role::Kiosk, &stranger, None, Err(NotOnRoster)),
            (p, Role::Root, &stranger, None, Err(NotOnRoster)),
            (p, Role::Kiosk, &plain, None, Ok(())),
            (p, Role::Kiosk, &plain, Some(&right), Ok(())),
            (p, Role::Kiosk, &pinned, None, Err(PicturesNeeded)),
            (p, Role::Kiosk, &pinned, Some(&right), Ok(())),
            (p, Role::Kiosk, &pinned, Some(&wrong), Err(WrongPictures)),
            (p, Role::Kiosk, &pinned, Some(&short), Err(WrongPictures)),
            (p, Role::Kiosk, &pinned, Some(&long), Err(WrongPictures)),
            (p, Role::Kiosk, &pinned, Some(&[]), Err(WrongPictures)),
            (p, Role::Root, &pinned, None, Ok(())),
        ];
        for (policy, role, pupil, pictures, expected) in cases {
            assert_eq!(
                check_sign_in(policy, role, pupil, pictures),
                expected,
                "{role:?} {pupil:?} {pictures:?}"
            );
        }
        assert_eq!(check_pictures(p, &pinned, &right), Ok(()));
        assert_eq!(check_pictures(p, &pinned, &wrong), Err(WrongPictures));
        assert_eq!(check_pictures(p, &plain, &right), Err(WrongPictures));
        assert_eq!(check_pictures(p, &stranger, &right), Err(NotOnRoster));
        assert_eq!(check_pictures(None, &pinned, &right), Err(NoPolicy));
    }
}
