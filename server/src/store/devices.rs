//! Enrollment tokens, device enrollment and device credentials.

use super::sql::OptionalExtension;
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::secrets::{Secret, SecretHash};
use crate::session_end;
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
    /// A class-set token, for a number already enrolled: it never replaces a credential.
    DeviceEnrolled,
    /// A class-set token that has enrolled as many devices as it was made for.
    UsedUp,
}

/// A row of IT's list of serials, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSerial {
    pub serial: String,
    pub device: DeviceNumber,
    /// A device with this number is enrolled now (its credential not revoked).
    pub enrolled: bool,
}

/// What IT's list of serials says for a device that asks for its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialLookup {
    Listed(DeviceNumber),
    NotListed,
    /// Not a class-set token, or one that expired.
    TokenRefused,
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

/// What is known of a class-set token at an enrollment.
#[derive(Debug, Clone, Copy)]
struct ClassSetUse {
    expired: bool,
    /// This device number enrolled with this token before.
    used_by_this_device: bool,
    /// That use, and nothing has been heard from the device since.
    unheard_since_use: bool,
    /// The number is enrolled (by any token).
    device_enrolled: bool,
    uses: u32,
    devices_max: u32,
}

/// Why a class-set token may not enroll this device, or `None` when it may. It never replaces
/// an enrolled device's credential (whoever holds a class set's card could otherwise take over
/// any device number), except the one it enrolled itself that was never heard from (its reply
/// lost, as with a single token). A number this token enrolled and that has been heard from
/// since is refused as enrolled, like any other: another card of the set chose it too.
fn class_set_refusal(token: ClassSetUse) -> Option<EnrollRefusal> {
    if token.expired {
        Some(EnrollRefusal::Expired)
    } else if token.used_by_this_device && token.unheard_since_use {
        None
    } else if token.used_by_this_device && !token.device_enrolled {
        Some(EnrollRefusal::AlreadyUsed)
    } else if token.device_enrolled {
        Some(EnrollRefusal::DeviceEnrolled)
    } else if token.uses >= token.devices_max {
        Some(EnrollRefusal::UsedUp)
    } else {
        None
    }
}

/// Whether the enrollment at `used_at` is the device's last and nothing has been heard from it
/// since (an earlier enrollment's events, before a revocation say, do not count).
fn unheard_since(
    tx: &super::sql::Transaction<'_>,
    device: DeviceNumber,
    used_at: &str,
) -> Result<bool, StoreError> {
    let enrolled: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT enrolled_at, last_seen_at FROM devices WHERE number = $1",
            [device.get()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match enrolled {
        Some((at, last_seen)) if at == used_at => match last_seen {
            None => true,
            Some(seen) => parse_db_time(&seen)? < parse_db_time(&at)?,
        },
        _ => false,
    })
}

/// Saves an enrollment's device row and its audit entry (`how` after "enrolled").
fn save_enrollment(
    tx: &super::sql::Transaction<'_>,
    device: DeviceNumber,
    credential: &SecretHash,
    software_version: &str,
    now: DateTime<Utc>,
    how: &str,
) -> Result<(), StoreError> {
    let enrolled_before = tx
        .query_row("SELECT 1 FROM devices WHERE number = $1", [device.get()], |_| Ok(()))
        .optional()?
        .is_some();
    tx.execute(
        "INSERT INTO devices (number, credential_sha256, enrolled_at, software_version)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (number) DO UPDATE SET credential_sha256 = excluded.credential_sha256,
                                            enrolled_at = excluded.enrolled_at,
                                            software_version = excluded.software_version,
                                            pending_credential_sha256 = NULL,
                                            rotation_requested_at = NULL,
                                            revoked_at = NULL, revoked_by = NULL",
        (device.get(), credential.as_bytes(), db_time(now), software_version),
    )?;
    let actor = format!("device {device}");
    let action = if enrolled_before {
        format!("enrolled again, replacing its credential{how}")
    } else {
        format!("enrolled{how}")
    };
    append_audit(&**tx, now, &actor, &action, Some(&actor), None)
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
    /// the device's credential (a new one replaces any old one) saved together, or neither. A
    /// class-set token (`issue_class_set_token`) is used up one device at a time.
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
            return self.enroll_from_class_set(
                tx,
                token,
                device,
                credential,
                software_version,
                now,
            );
        };
        let unheard_since_use = match &used_at {
            None => false,
            Some(used_at) => unheard_since(&tx, device, used_at)?,
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
        tx.execute(
            "UPDATE enrollment_tokens SET used_at = $2 WHERE token_sha256 = $1",
            (token.as_bytes(), db_time(now)),
        )?;
        save_enrollment(&tx, device, credential, software_version, now, "")?;
        tx.commit()?;
        Ok(EnrollOutcome::Enrolled)
    }

    /// `enroll` with a class-set token (or none known: `UnknownToken`).
    fn enroll_from_class_set(
        &self,
        tx: super::sql::Transaction<'_>,
        token: &SecretHash,
        device: DeviceNumber,
        credential: &SecretHash,
        software_version: &str,
        now: DateTime<Utc>,
    ) -> Result<EnrollOutcome, StoreError> {
        let row: Option<(String, u32)> = tx
            .query_row(
                "SELECT expires_at, devices_max FROM class_set_tokens WHERE token_sha256 = $1",
                [token.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((expires_at, devices_max)) = row else {
            return Ok(EnrollOutcome::Refused(EnrollRefusal::UnknownToken));
        };
        let used_at: Option<String> = tx
            .query_row(
                "SELECT used_at FROM class_set_token_uses WHERE token_sha256 = $1 AND device = $2",
                (token.as_bytes(), device.get()),
                |r| r.get(0),
            )
            .optional()?;
        let uses: i64 = tx.query_row(
            "SELECT COUNT(*) FROM class_set_token_uses WHERE token_sha256 = $1",
            [token.as_bytes()],
            |r| r.get(0),
        )?;
        let device_enrolled = tx
            .query_row("SELECT 1 FROM devices WHERE number = $1", [device.get()], |_| Ok(()))
            .optional()?
            .is_some();
        let unheard_since_use = match &used_at {
            None => false,
            Some(used_at) => unheard_since(&tx, device, used_at)?,
        };
        let refusal = class_set_refusal(ClassSetUse {
            expired: parse_db_time(&expires_at)? <= now,
            used_by_this_device: used_at.is_some(),
            unheard_since_use,
            device_enrolled,
            uses: u32::try_from(uses).unwrap_or(u32::MAX),
            devices_max,
        });
        if let Some(refusal) = refusal {
            return Ok(EnrollOutcome::Refused(refusal));
        }
        tx.execute(
            "INSERT INTO class_set_token_uses (token_sha256, device, used_at) VALUES ($1, $2, $3)
             ON CONFLICT (token_sha256, device) DO UPDATE SET used_at = excluded.used_at",
            (token.as_bytes(), device.get(), db_time(now)),
        )?;
        save_enrollment(&tx, device, credential, software_version, now, " (class-set token)")?;
        tx.commit()?;
        Ok(EnrollOutcome::Enrolled)
    }

    /// Makes one token that enrolls up to `devices_max` devices, each a number not enrolled yet,
    /// until `now + valid_for`: the same `slate.toml` for a whole class set, only the number
    /// changed. Audited; only its hash is kept.
    pub fn issue_class_set_token(
        &self,
        devices_max: u16,
        valid_for: chrono::Duration,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Secret, StoreError> {
        let token = Secret::generate();
        let connection = self.lock();
        let tx = connection.transaction()?;
        tx.execute(
            "INSERT INTO class_set_tokens (token_sha256, created_at, expires_at, devices_max)
             VALUES ($1, $2, $3, $4)",
            (
                token.hash().as_bytes(),
                db_time(now),
                db_time(now + valid_for),
                u32::from(devices_max),
            ),
        )?;
        let detail = format!("up to {devices_max} devices until {}", db_time(now + valid_for));
        append_audit(&*tx, now, by, "made a class-set enrollment token", None, Some(&detail))?;
        tx.commit()?;
        Ok(token)
    }

    /// Replaces IT's list of which number each device serial gets (`device_serials`), in one
    /// transaction; audited with the count, never the serials.
    pub fn replace_device_serials(
        &self,
        rows: &[crate::device_serials::SerialNumber],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        tx.execute("DELETE FROM device_serials", [])?;
        for row in rows {
            tx.execute(
                "INSERT INTO device_serials (serial, device, added_at) VALUES ($1, $2, $3)",
                (row.serial.as_str(), row.device.get(), db_time(now)),
            )?;
        }
        let detail = format!("{} devices", rows.len());
        append_audit(
            &*tx,
            now,
            by,
            "uploaded the list of device serial numbers",
            None,
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// IT's list as it stands, by device number, with whether each number is enrolled now.
    pub fn device_serials(&self) -> Result<Vec<ListedSerial>, StoreError> {
        let connection = self.lock();
        let mut query = connection.prepare(
            "SELECT s.serial, s.device, d.number IS NOT NULL FROM device_serials s \
             LEFT JOIN devices d ON d.number = s.device AND d.revoked_at IS NULL \
             ORDER BY s.device",
        )?;
        let rows = query.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, bool>(2)?))
        })?;
        let mut listed = Vec::new();
        for row in rows {
            let (serial, device, enrolled) = row?;
            let device = DeviceNumber::new(device)
                .map_err(|_| StoreError::Corrupt(format!("device_serials: device {device}")))?;
            listed.push(ListedSerial { serial, device, enrolled });
        }
        Ok(listed)
    }

    /// The number IT listed for `serial`, asked with a class-set token that has not expired
    /// (a single device's token names its device already).
    pub fn device_for_serial(
        &self,
        token: &SecretHash,
        serial: &str,
        now: DateTime<Utc>,
    ) -> Result<SerialLookup, StoreError> {
        let connection = self.lock();
        let expires_at: Option<String> = connection
            .query_row(
                "SELECT expires_at FROM class_set_tokens WHERE token_sha256 = $1",
                [token.as_bytes()],
                |r| r.get(0),
            )
            .optional()?;
        match expires_at {
            Some(at) if parse_db_time(&at)? > now => {}
            _ => return Ok(SerialLookup::TokenRefused),
        }
        let device: Option<u32> = connection
            .query_row("SELECT device FROM device_serials WHERE serial = $1", [serial], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match device.map(DeviceNumber::new) {
            Some(Ok(device)) => SerialLookup::Listed(device),
            Some(Err(_)) | None => SerialLookup::NotListed,
        })
    }

    /// The device a credential belongs to, if any, and whether IT asked it to replace the
    /// credential. A revoked device's credentials are refused. The first use of a replacement
    /// (`replace_credential`) makes it the device's only credential: from then on the old one is
    /// refused, and the audit log says the credential was replaced.
    ///
    /// Looking up by hash is safe against timing attacks: a guesser controls the credential, not
    /// its hash, so how long the lookup takes says nothing about stored values.
    pub fn authenticate(
        &self,
        credential: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Option<AuthenticatedDevice>, StoreError> {
        let connection = self.lock();
        let row: Option<(u32, bool, bool)> = connection
            .query_row(
                "SELECT number, credential_sha256 = $1, rotation_requested_at IS NOT NULL
                 FROM devices
                 WHERE (credential_sha256 = $1 OR pending_credential_sha256 = $1)
                   AND revoked_at IS NULL",
                [credential.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((number, current, rotation_requested)) = row else {
            return Ok(None);
        };
        let device = DeviceNumber::new(number).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if current {
            return Ok(Some(AuthenticatedDevice { device, rotation_requested }));
        }
        // The device used its replacement: it has it safely, so the old one goes.
        let tx = connection.transaction()?;
        let promoted = tx.execute(
            "UPDATE devices SET credential_sha256 = pending_credential_sha256,
                                pending_credential_sha256 = NULL, rotation_requested_at = NULL
             WHERE number = $1 AND pending_credential_sha256 = $2 AND revoked_at IS NULL",
            (device.get(), credential.as_bytes()),
        )?;
        if promoted == 0 {
            // Revoked or replaced again between the two statements.
            return Ok(None);
        }
        let actor = format!("device {device}");
        append_audit(&*tx, now, &actor, "replaced its credential", Some(&actor), None)?;
        tx.commit()?;
        Ok(Some(AuthenticatedDevice { device, rotation_requested: false }))
    }

    /// Gives an authenticated device a replacement credential. Its current one keeps working
    /// until the device first uses the replacement, so a reply lost on the way changes nothing:
    /// the device asks again and this replacement is replaced in turn.
    pub fn replace_credential(
        &self,
        device: DeviceNumber,
        replacement: &SecretHash,
    ) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE devices SET pending_credential_sha256 = $2
             WHERE number = $1 AND revoked_at IS NULL",
            (device.get(), replacement.as_bytes()),
        )?;
        Ok(changed == 1)
    }

    /// Asks the device to replace its credential the next time it uploads (IT's "replace
    /// credential", e.g. after a card was out of sight). Audited. False when there is no such
    /// enrolled, unrevoked device.
    pub fn request_credential_rotation(
        &self,
        device: DeviceNumber,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let changed = tx.execute(
            "UPDATE devices SET rotation_requested_at = $2 WHERE number = $1 AND revoked_at IS NULL",
            (device.get(), db_time(now)),
        )?;
        if changed == 0 {
            return Ok(false);
        }
        let record = format!("device {device}");
        append_audit(&*tx, now, by, "asked device to replace its credential", Some(&record), None)?;
        tx.commit()?;
        Ok(true)
    }

    /// Revokes a lost or stolen device in one step: every credential it holds is refused, its
    /// enrollment tokens are void, and its open session ends at the last thing heard (marked as
    /// ended by the server, `device_revoked`). Only a new token from IT enrolls it again. Audited. False when the device was
    /// not enrolled or is already revoked.
    pub fn revoke_device(
        &self,
        device: DeviceNumber,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let at = db_time(now);
        let changed = tx.execute(
            "UPDATE devices SET revoked_at = $2, revoked_by = $3,
                                pending_credential_sha256 = NULL, rotation_requested_at = NULL
             WHERE number = $1 AND revoked_at IS NULL",
            (device.get(), &at, by),
        )?;
        if changed == 0 {
            return Ok(false);
        }
        // Its open session ends at the last thing heard: nothing it says is taken from now on.
        let open: Vec<(String, String, Option<String>)> = {
            let mut statement = tx.prepare_cached(
                "SELECT s.session_id, s.started_at, d.last_event_at
                 FROM sessions s JOIN devices d ON d.number = s.device
                 WHERE s.device = $1 AND s.ended_at IS NULL",
            )?;
            let rows =
                statement.query_map([device.get()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (session, started_at, last_event_at) in open {
            let last_heard = last_event_at.as_deref().map(parse_db_time).transpose()?;
            let reason = session_end::DEVICE_REVOKED;
            super::ingest::end_inferred(&tx, &session, &started_at, last_heard, reason)?;
        }
        // Every token for it goes: an unused one, and the used one that could enroll the
        // device again while it had not been heard from.
        tx.execute("DELETE FROM enrollment_tokens WHERE device = $1", [device.get()])?;
        // And a class-set token's use for it: with that gone, the class set's card (whoever
        // holds it) meets "already enrolled".
        tx.execute("DELETE FROM class_set_token_uses WHERE device = $1", [device.get()])?;
        let record = format!("device {device}");
        append_audit(&*tx, now, by, "revoked device", Some(&record), None)?;
        tx.commit()?;
        Ok(true)
    }

    /// Where a device's credential stands, for its page: `None` when it never enrolled.
    pub fn credential_state(
        &self,
        device: DeviceNumber,
    ) -> Result<Option<CredentialState>, StoreError> {
        let row: Option<(Option<String>, Option<String>, Option<String>)> = self
            .lock()
            .query_row(
                "SELECT revoked_at, revoked_by, rotation_requested_at FROM devices WHERE number = $1",
                [device.get()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(revoked_at, revoked_by, rotation_requested_at)| {
            CredentialState::from_columns(revoked_at, revoked_by, rotation_requested_at)
        })
        .transpose()
    }
}

/// A device whose credential was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedDevice {
    pub device: DeviceNumber,
    /// IT asked this device to replace its credential: its next upload's answer says so.
    pub rotation_requested: bool,
}

/// Where a device's credential stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialState {
    InUse,
    /// IT asked for a replacement, which the device has not used yet.
    ReplacementAsked {
        at: DateTime<Utc>,
    },
    /// Lost or stolen: nothing it holds is accepted until it enrolls with a new token.
    Revoked {
        at: DateTime<Utc>,
        by: String,
    },
}

impl CredentialState {
    /// From the `devices` columns `revoked_at`, `revoked_by` and `rotation_requested_at`.
    pub(super) fn from_columns(
        revoked_at: Option<String>,
        revoked_by: Option<String>,
        rotation_requested_at: Option<String>,
    ) -> Result<Self, StoreError> {
        Ok(match (revoked_at, rotation_requested_at) {
            (Some(at), _) => CredentialState::Revoked {
                at: parse_db_time(&at)?,
                by: revoked_by.unwrap_or_default(),
            },
            (None, Some(at)) => CredentialState::ReplacementAsked { at: parse_db_time(&at)? },
            (None, None) => CredentialState::InUse,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use chrono::Duration;

    /// The device `secret` authenticates as, now.
    fn who(store: &Store, secret: &Secret) -> Option<DeviceNumber> {
        let now = at("2026-11-17T09:00:00Z");
        store.authenticate(&secret.hash(), now).unwrap().map(|a| a.device)
    }

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
        assert_eq!(who(&store, &lost), Some(device(12)));

        // The answer never reached the card: the device asks again with a new credential.
        let kept = Secret::generate();
        let later = now + Duration::minutes(3);
        let again = store.enroll(&token.hash(), device(12), &kept.hash(), "0.1.0", later).unwrap();
        assert_eq!(again, EnrollOutcome::Enrolled);
        assert_eq!(who(&store, &lost), None, "the lost one is gone");
        assert_eq!(who(&store, &kept), Some(device(12)));

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
        assert_eq!(who(&store, &other), None);
        assert_eq!(who(&store, &kept), Some(device(12)));
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
        assert_eq!(who(&store, &credential), None);
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
        assert_eq!(who(&store, &old), None);
        assert_eq!(who(&store, &new), Some(device(5)));
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::super::test_support::*;
    use super::*;

    fn who(store: &Store, secret: &Secret, now: DateTime<Utc>) -> Option<AuthenticatedDevice> {
        store.authenticate(&secret.hash(), now).unwrap()
    }

    fn audit_actions(store: &Store) -> Vec<(String, String)> {
        store.audit_log(100).unwrap().into_iter().rev().map(|e| (e.actor, e.action)).collect()
    }

    #[test]
    fn a_replacement_takes_over_at_its_first_use_and_a_lost_one_changes_nothing() {
        let (_dir, store, old) = store_with_device_credential(12);
        let now = at("2026-11-18T08:00:00Z");
        assert_eq!(
            who(&store, &old, now),
            Some(AuthenticatedDevice { device: device(12), rotation_requested: false })
        );
        assert!(store.request_credential_rotation(device(12), "it.jones", now).unwrap());
        assert!(who(&store, &old, now).unwrap().rotation_requested);
        assert_eq!(
            store.credential_state(device(12)).unwrap(),
            Some(CredentialState::ReplacementAsked { at: now })
        );

        // The first replacement's reply is lost: the old credential still works, still asked.
        let lost = Secret::generate();
        assert!(store.replace_credential(device(12), &lost.hash()).unwrap());
        assert!(who(&store, &old, now).unwrap().rotation_requested);
        let kept = Secret::generate();
        assert!(store.replace_credential(device(12), &kept.hash()).unwrap());
        assert_eq!(who(&store, &lost, now), None, "a replacement replaced in turn is void");

        // The device uses the one it kept: it becomes the only one.
        let later = now + chrono::Duration::minutes(1);
        assert_eq!(
            who(&store, &kept, later),
            Some(AuthenticatedDevice { device: device(12), rotation_requested: false })
        );
        assert_eq!(who(&store, &old, later), None);
        assert_eq!(store.credential_state(device(12)).unwrap(), Some(CredentialState::InUse));
        assert_eq!(
            audit_actions(&store)[1..],
            [
                ("it.jones".to_owned(), "asked device to replace its credential".to_owned()),
                ("device 12".to_owned(), "replaced its credential".to_owned()),
            ]
        );
    }

    #[test]
    fn a_revoked_device_is_refused_until_a_new_token_enrolls_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
        let now = at("2026-11-18T08:00:00Z");
        let days = chrono::Duration::days(7);
        let used = store.issue_enrollment_token(device(12), days, now).unwrap();
        let credential = Secret::generate();
        let enroll = |token: &Secret, credential: &Secret, at_time| {
            store.enroll(&token.hash(), device(12), &credential.hash(), "0.1.0", at_time).unwrap()
        };
        assert_eq!(enroll(&used, &credential, now), EnrollOutcome::Enrolled);
        let spare = store.issue_enrollment_token(device(12), days, now).unwrap();
        let pending = Secret::generate();
        assert!(store.replace_credential(device(12), &pending.hash()).unwrap());

        let session = slate_protocol::SessionId::new();
        let signed_in = slate_protocol::Event::new(
            device(12),
            now - chrono::Duration::minutes(5),
            slate_protocol::EventBody::SessionStarted { session, pupil: id("p-7f3a9c") },
        );
        store.ingest(device(12), &[signed_in], now).unwrap();

        assert!(store.revoke_device(device(12), "h.patel", now).unwrap());
        assert!(!store.revoke_device(device(12), "h.patel", now).unwrap(), "once only");
        let sessions = store.device_sessions(device(12), 10).unwrap();
        assert_eq!(sessions[0].end_reason.as_deref(), Some(session_end::DEVICE_REVOKED));
        assert!(sessions[0].end_inferred);
        assert_eq!(sessions[0].ended_at, Some(now - chrono::Duration::minutes(5)), "last heard");
        assert_eq!(who(&store, &credential, now), None);
        assert_eq!(who(&store, &pending, now), None, "nor the replacement it was given");
        assert!(!store.replace_credential(device(12), &pending.hash()).unwrap());
        assert!(!store.request_credential_rotation(device(12), "h.patel", now).unwrap());
        assert_eq!(
            store.credential_state(device(12)).unwrap(),
            Some(CredentialState::Revoked { at: now, by: "h.patel".into() })
        );
        // Neither the spare token nor the used one (which could enroll the unheard device
        // again) works for whoever has the card.
        let thief = Secret::generate();
        for token in [&spare, &used] {
            assert_eq!(
                enroll(token, &thief, now),
                EnrollOutcome::Refused(EnrollRefusal::UnknownToken)
            );
        }
        // IT's new token does.
        let later = now + chrono::Duration::hours(1);
        let token = store.issue_enrollment_token(device(12), days, later).unwrap();
        let fresh = Secret::generate();
        assert_eq!(enroll(&token, &fresh, later), EnrollOutcome::Enrolled);
        assert_eq!(who(&store, &fresh, later).map(|a| a.device), Some(device(12)));
        assert_eq!(who(&store, &credential, later), None);
        assert_eq!(store.credential_state(device(12)).unwrap(), Some(CredentialState::InUse));
        let device_12 = || "device 12".to_owned();
        assert_eq!(
            audit_actions(&store),
            [
                (device_12(), "enrolled".to_owned()),
                ("h.patel".to_owned(), "revoked device".to_owned()),
                (device_12(), "enrolled again, replacing its credential".to_owned()),
            ]
        );
    }

    #[test]
    fn nothing_is_done_to_a_device_that_never_enrolled() {
        let (_dir, store, _) = store_with_device_credential(12);
        let now = at("2026-11-18T08:00:00Z");
        assert!(!store.revoke_device(device(13), "h.patel", now).unwrap());
        assert!(!store.request_credential_rotation(device(13), "h.patel", now).unwrap());
        assert_eq!(store.credential_state(device(13)).unwrap(), None);
        assert_eq!(audit_actions(&store), [("device 12".to_owned(), "enrolled".to_owned())]);
    }
}

#[cfg(test)]
mod class_set_tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn which_class_set_uses_are_refused() {
        let token =
            |expired, used_by_this_device, unheard_since_use, device_enrolled, uses| ClassSetUse {
                expired,
                used_by_this_device,
                unheard_since_use,
                device_enrolled,
                uses,
                devices_max: 3,
            };
        let cases = [
            (token(false, false, false, false, 0), None),
            (token(false, false, false, false, 2), None),
            (token(false, false, false, false, 3), Some(EnrollRefusal::UsedUp)),
            (token(false, false, false, true, 0), Some(EnrollRefusal::DeviceEnrolled)),
            (token(false, true, true, true, 3), None),
            (token(false, true, false, true, 1), Some(EnrollRefusal::DeviceEnrolled)),
            (token(false, true, false, false, 1), Some(EnrollRefusal::AlreadyUsed)),
            (token(true, false, false, false, 0), Some(EnrollRefusal::Expired)),
            (token(true, true, true, true, 1), Some(EnrollRefusal::Expired)),
        ];
        for (use_, refusal) in cases {
            assert_eq!(class_set_refusal(use_), refusal, "{use_:?}");
        }
    }

    #[test]
    fn a_class_set_token_enrolls_new_numbers_up_to_its_count_and_never_takes_one_over() {
        let (_dir, store) = store_with_device(7);
        let now = at("2026-11-18T08:00:00Z");
        let token =
            store.issue_class_set_token(2, chrono::Duration::days(4), "it.jones", now).unwrap();
        let enroll = |n: u32, credential: &Secret| {
            store.enroll(&token.hash(), device(n), &credential.hash(), "0.1.0", now).unwrap()
        };
        let (a, b, c) = (Secret::generate(), Secret::generate(), Secret::generate());
        assert_eq!(enroll(7, &a), EnrollOutcome::Refused(EnrollRefusal::DeviceEnrolled));
        assert_eq!(enroll(11, &a), EnrollOutcome::Enrolled);
        assert_eq!(enroll(12, &b), EnrollOutcome::Enrolled);
        assert_eq!(enroll(13, &c), EnrollOutcome::Refused(EnrollRefusal::UsedUp));
        // Device 12's reply was lost: it asks again, unheard, and gets a new credential.
        let again = Secret::generate();
        assert_eq!(enroll(12, &again), EnrollOutcome::Enrolled);
        let who = |s: &Secret| store.authenticate(&s.hash(), now).unwrap().map(|a| a.device);
        assert_eq!((who(&a), who(&b), who(&again)), (Some(device(11)), None, Some(device(12))));
        // Revoked before it was ever heard from: the class set's card cannot bring it back.
        assert!(store.revoke_device(device(11), "it.jones", now).unwrap());
        let thief = Secret::generate();
        assert_eq!(enroll(11, &thief), EnrollOutcome::Refused(EnrollRefusal::DeviceEnrolled));
        // Once heard from, it is spent for that number too.
        let hello = slate_protocol::Event::new(
            device(12),
            now,
            slate_protocol::EventBody::Hello { software_version: "0.1.0".into() },
        );
        store.ingest(device(12), &[hello], now + chrono::Duration::seconds(1)).unwrap();
        let late = Secret::generate();
        assert_eq!(enroll(12, &late), EnrollOutcome::Refused(EnrollRefusal::DeviceEnrolled));
        let expired = now + chrono::Duration::days(4);
        assert_eq!(
            store.enroll(&token.hash(), device(14), &late.hash(), "0.1.0", expired).unwrap(),
            EnrollOutcome::Refused(EnrollRefusal::Expired)
        );
        let log: Vec<String> = store
            .audit_log(10)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.actor, e.action))
            .collect();
        assert!(log.contains(&"it.jones made a class-set enrollment token".to_owned()), "{log:?}");
        assert!(log.contains(&"device 11 enrolled (class-set token)".to_owned()), "{log:?}");
    }
}
