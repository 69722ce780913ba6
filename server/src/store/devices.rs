//! Enrollment tokens, device enrollment and device credentials.

use super::sql::OptionalExtension;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::secrets::{Secret, SecretHash};
use chrono::{DateTime, Utc};
use slate_protocol::DeviceNumber;

/// Whether a device's enrollment was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollOutcome {
    Enrolled,
    Refused(EnrollRefusal),
}

/// Why an enrollment token was refused: for the log only. The device is told just "refused", so
/// a guesser learns nothing about which tokens exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    UnknownToken,
    Expired,
    AlreadyUsed,
    ForAnotherDevice,
}

/// What is known of a token at an enrollment.
#[derive(Debug, Clone, Copy)]
struct TokenUse {
    for_this_device: bool,
    expired: bool,
    used: bool,
    /// The token's use enrolled this device, and no event has come from it since.
    unheard_since_use: bool,
}

/// Why a token may not enroll, or `None` when it may. A used token enrolls again only the
/// device it enrolled, before its expiry, while nothing has been heard from that device: the
/// device never stored its credential (a power cut or a lost reply between the server's commit
/// and the device's write, found by images/powercut --enroll-cut), and would otherwise wait for
/// a new token from IT with every report held in its spool. The new credential replaces the
/// one the device never kept.
fn enrollment_refusal(token: TokenUse) -> Option<EnrollRefusal> {
    if !token.for_this_device {
        Some(EnrollRefusal::ForAnotherDevice)
    } else if token.expired {
        Some(EnrollRefusal::Expired)
    } else if token.used && !token.unheard_since_use {
        Some(EnrollRefusal::AlreadyUsed)
    } else {
        None
    }
}

impl Store {
    /// Makes a one-time token that lets device `device` enroll until `now + valid_for`, keeping
    /// only its hash. The token itself is returned once, to be given to the device.
    pub fn issue_enrollment_token(
        &self,
        device: DeviceNumber,
        valid_for: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Secret, StoreError> {
        let token = Secret::generate();
        self.lock().execute(
            "INSERT INTO enrollment_tokens (token_sha256, device, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            (token.hash().as_bytes(), device.get(), db_time(now), db_time(now + valid_for)),
        )?;
        Ok(token)
    }

    /// Exchanges a token for a device credential in one transaction: the token is used up and
    /// the device's credential (a new one replaces any old one) saved together, or neither.
    pub fn enroll(
        &self,
        token: &SecretHash,
        device: DeviceNumber,
        credential: &SecretHash,
        software_version: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollOutcome, StoreError> {
        let connection = self.lock();
        // IMMEDIATE takes the write lock up front, so two uses of one token cannot both pass.
        let tx = connection.transaction()?;
        let row: Option<(u32, String, Option<String>)> = tx
            .query_row(
                "SELECT device, expires_at, used_at FROM enrollment_tokens WHERE token_sha256 = $1",
                [token.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((token_device, expires_at, used_at)) = row else {
            return Ok(EnrollOutcome::Refused(EnrollRefusal::UnknownToken));
        };
        // Whether this token's use enrolled the device and nothing has been heard from it since.
        let unheard_since_use = match &used_at {
            None => false,
            Some(used_at) => {
                let enrolled: Option<(String, Option<String>)> = tx
                    .query_row(
                        "SELECT enrolled_at, last_seen_at FROM devices WHERE number = $1",
                        [device.get()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                matches!(enrolled, Some((at, None)) if at == *used_at)
            }
        };
        let refusal = enrollment_refusal(TokenUse {
            for_this_device: token_device == u32::from(device),
            expired: parse_db_time(&expires_at)? <= now,
            used: used_at.is_some(),
            unheard_since_use,
        });
        if let Some(refusal) = refusal {
            return Ok(EnrollOutcome::Refused(refusal));
        }
        let now = db_time(now);
        tx.execute(
            "UPDATE enrollment_tokens SET used_at = $2 WHERE token_sha256 = $1",
            (token.as_bytes(), &now),
        )?;
        tx.execute(
            "INSERT INTO devices (number, credential_sha256, enrolled_at, software_version)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (number) DO UPDATE SET credential_sha256 = excluded.credential_sha256,
                                                enrolled_at = excluded.enrolled_at,
                                                software_version = excluded.software_version",
            (device.get(), credential.as_bytes(), &now, software_version),
        )?;
        tx.commit()?;
        Ok(EnrollOutcome::Enrolled)
    }

    /// The device a credential belongs to, if any.
    ///
    /// Looking up by hash is safe against timing attacks: a guesser controls the credential, not
    /// its hash, so how long the lookup takes says nothing about stored values.
    pub fn authenticate(
        &self,
        credential: &SecretHash,
    ) -> Result<Option<DeviceNumber>, StoreError> {
        let number: Option<u32> = self
            .lock()
            .query_row(
                "SELECT number FROM devices WHERE credential_sha256 = $1",
                [credential.as_bytes()],
                |r| r.get(0),
            )
            .optional()?;
        number
            .map(|n| DeviceNumber::new(n).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use chrono::Duration;

    fn fresh() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_used_token_enrolls_again_only_until_its_device_is_heard_from() {
        let (_dir, store) = fresh();
        let now = at("2026-11-17T08:00:00Z");
        let token = store.issue_enrollment_token(device(12), Duration::days(7), now).unwrap();
        let lost = Secret::generate();
        let first = store.enroll(&token.hash(), device(12), &lost.hash(), "0.1.0", now).unwrap();
        assert_eq!(first, EnrollOutcome::Enrolled);
        assert_eq!(store.authenticate(&lost.hash()).unwrap(), Some(device(12)));

        // The answer never reached the card: the device asks again with a new credential.
        let kept = Secret::generate();
        let later = now + Duration::minutes(3);
        let again = store.enroll(&token.hash(), device(12), &kept.hash(), "0.1.0", later).unwrap();
        assert_eq!(again, EnrollOutcome::Enrolled);
        assert_eq!(store.authenticate(&lost.hash()).unwrap(), None, "the lost one is gone");
        assert_eq!(store.authenticate(&kept.hash()).unwrap(), Some(device(12)));

        // Once the device has spoken with its credential, the token is spent for good.
        let hello = slate_protocol::Event::new(
            device(12),
            later,
            slate_protocol::EventBody::Hello { software_version: "0.1.0".into() },
        );
        store.ingest(device(12), &[hello], later).unwrap();
        let other = Secret::generate();
        let third = store.enroll(&token.hash(), device(12), &other.hash(), "0.1.0", later).unwrap();
        assert_eq!(third, EnrollOutcome::Refused(EnrollRefusal::AlreadyUsed));
        assert_eq!(store.authenticate(&other.hash()).unwrap(), None);
        assert_eq!(store.authenticate(&kept.hash()).unwrap(), Some(device(12)));
    }

    #[test]
    fn which_token_uses_are_refused() {
        let use_ = |for_this_device, expired, used, unheard_since_use| TokenUse {
            for_this_device,
            expired,
            used,
            unheard_since_use,
        };
        let cases = [
            (use_(true, false, false, false), None),
            (use_(true, false, true, true), None),
            (use_(true, false, true, false), Some(EnrollRefusal::AlreadyUsed)),
            (use_(true, true, true, true), Some(EnrollRefusal::Expired)),
            (use_(true, true, false, false), Some(EnrollRefusal::Expired)),
            (use_(false, false, false, false), Some(EnrollRefusal::ForAnotherDevice)),
            (use_(false, false, true, true), Some(EnrollRefusal::ForAnotherDevice)),
        ];
        for (token, refusal) in cases {
            assert_eq!(enrollment_refusal(token), refusal, "{token:?}");
        }
    }

    #[test]
    fn refusals_say_why_and_change_nothing() {
        let (_dir, store) = fresh();
        let now = at("2026-11-17T08:00:00Z");
        let token = store.issue_enrollment_token(device(12), Duration::hours(1), now).unwrap();
        let credential = Secret::generate();
        let enroll = |token: &Secret, n: u32, at_time| {
            store.enroll(&token.hash(), device(n), &credential.hash(), "0.1.0", at_time).unwrap()
        };

        assert_eq!(
            enroll(&Secret::generate(), 12, now),
            EnrollOutcome::Refused(EnrollRefusal::UnknownToken)
        );
        assert_eq!(
            enroll(&token, 13, now),
            EnrollOutcome::Refused(EnrollRefusal::ForAnotherDevice)
        );
        let expiry = now + Duration::hours(1);
        assert_eq!(enroll(&token, 12, expiry), EnrollOutcome::Refused(EnrollRefusal::Expired));
        assert_eq!(store.authenticate(&credential.hash()).unwrap(), None);
        // The refusals did not use the token up.
        assert_eq!(enroll(&token, 12, expiry - Duration::seconds(1)), EnrollOutcome::Enrolled);
    }

    #[test]
    fn re_enrolling_replaces_the_credential() {
        let (_dir, store) = fresh();
        let now = at("2026-11-17T08:00:00Z");
        let old = Secret::generate();
        let new = Secret::generate();
        for credential in [&old, &new] {
            let token = store.issue_enrollment_token(device(5), Duration::hours(1), now).unwrap();
            let outcome =
                store.enroll(&token.hash(), device(5), &credential.hash(), "0.1.0", now).unwrap();
            assert_eq!(outcome, EnrollOutcome::Enrolled);
        }
        assert_eq!(store.authenticate(&old.hash()).unwrap(), None);
        assert_eq!(store.authenticate(&new.hash()).unwrap(), Some(device(5)));
    }
}
