//! Staff accounts, signed-in sessions, each one's own unlock PIN for devices, and the audit log.

use super::sql::OptionalExtension;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::auth::Role;
use crate::device_policy::StaffPinRecord;
use crate::secrets::SecretHash;
use chrono::{DateTime, Utc};
use slate_protocol::StaffId;

/// A staff account as sign-in needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccount {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_phc: String,
    pub must_change_password: bool,
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub disabled: bool,
}

/// A live staff session, found by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    pub staff_id: i64,
    pub username: String,
    pub role: Role,
    pub must_change_password: bool,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What a recovered account gets (see [`Store::recover_account`]).
pub struct Recovery<'a> {
    pub totp_secret: &'a str,
    pub totp_step: i64,
    pub password_phc: &'a str,
    pub session: &'a SecretHash,
    pub csrf_token: &'a str,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub record: Option<String>,
    pub detail: Option<String>,
}

/// Who has an unlock PIN, for IT's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockPinHolder {
    pub username: String,
    pub set_at: DateTime<Utc>,
}

/// One account on the "Staff accounts" page: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffListing {
    pub username: String,
    pub role: Role,
    pub totp: bool,
    pub disabled_at: Option<DateTime<Utc>>,
}

fn role_of(text: String) -> Result<Role, StoreError> {
    Role::parse(&text).map_err(StoreError::Corrupt)
}

impl Store {
    /// Adds a staff account, or replaces the password, role and TOTP secret of an existing one
    /// (IT resetting an account), signing out its sessions and removing its unlock PIN from
    /// devices (whoever gets the account back sets a new one). Returns the account id.
    pub fn save_staff(
        &self,
        username: &str,
        role: Role,
        password_phc: &str,
        totp_secret: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let totp_secret = totp_secret.map(|secret| self.seal_totp(username, secret));
        let connection = self.lock();
        let tx = connection.transaction()?;
        let had_pin: bool = tx
            .query_row(
                "SELECT unlock_pin_phc IS NOT NULL FROM staff WHERE username = $1",
                [username],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        let id: i64 = tx.query_row(
            "INSERT INTO staff (username, role, password_phc, must_change_password, totp_secret, created_at)
             VALUES ($1, $2, $3, 1, $4, $5)
             ON CONFLICT (username) DO UPDATE SET role = excluded.role,
                 password_phc = excluded.password_phc, must_change_password = 1,
                 totp_secret = excluded.totp_secret, totp_last_step = NULL, disabled_at = NULL,
                 unlock_pin_phc = NULL, unlock_pin_set_at = NULL
             RETURNING id",
            (username, role.name(), password_phc, totp_secret, db_time(now)),
            |r| r.get(0),
        )?;
        tx.execute("DELETE FROM staff_sessions WHERE staff_id = $1", [id])?;
        if had_pin {
            super::policy_records::policy_changed(&tx, now)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Whether any account can sign in: a server with none says so on its sign-in page.
    pub fn has_staff_accounts(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .lock()
            .query_row("SELECT 1 FROM staff WHERE disabled_at IS NULL LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// Disables an account: it cannot sign in, its sessions end and its unlock PIN leaves every
    /// device with the next policy. `Ok(false)` when there is no such enabled account.
    pub fn disable_staff(&self, username: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let row: Option<(i64, bool)> = tx
            .query_row(
                "UPDATE staff SET disabled_at = $2 WHERE username = $1 AND disabled_at IS NULL
                 RETURNING id, unlock_pin_phc IS NOT NULL",
                (username, db_time(now)),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, had_pin)) = row else { return Ok(false) };
        tx.execute("DELETE FROM staff_sessions WHERE staff_id = $1", [id])?;
        if had_pin {
            super::policy_records::policy_changed(&tx, now)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Enables a disabled account again. It signs in with its old password and TOTP, so an
    /// account disabled because they may be known needs its sign-in reset as well.
    /// `Ok(false)` when there is no such disabled account.
    pub fn enable_staff(&self, username: &str) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE staff SET disabled_at = NULL WHERE username = $1 AND disabled_at IS NOT NULL",
            [username],
        )?;
        Ok(changed == 1)
    }

    /// Ends every session of an account (its sign-in is being reset). Returns how many.
    pub fn end_staff_sessions(&self, username: &str) -> Result<usize, StoreError> {
        self.lock().execute(
            "DELETE FROM staff_sessions WHERE staff_id IN (SELECT id FROM staff WHERE username = $1)",
            [username],
        )
    }

    /// A TOTP seed as the database keeps it: sealed when the store has the key.
    fn seal_totp(&self, username: &str, secret: &str) -> String {
        match &self.totp_seal {
            Some(seal) => seal.seal(username, secret),
            None => secret.to_owned(),
        }
    }

    /// A TOTP seed as the database keeps it, opened.
    fn open_totp(&self, username: &str, stored: &str) -> Result<String, StoreError> {
        match &self.totp_seal {
            Some(seal) => seal
                .open(username, stored)
                .map_err(|e| StoreError::Corrupt(format!("account {username}: {e}"))),
            None if crate::totp_seal::TotpSeal::is_sealed(stored) => Err(StoreError::Corrupt(
                format!("account {username}: its TOTP secret is sealed and this store has no key"),
            )),
            None => Ok(stored.to_owned()),
        }
    }

    /// Seals every TOTP seed stored before sealing. Returns how many.
    pub(super) fn seal_stored_totp_secrets(&self) -> Result<usize, StoreError> {
        let Some(seal) = &self.totp_seal else { return Ok(0) };
        let connection = self.lock();
        let tx = connection.transaction()?;
        let plain: Vec<(i64, String, String)> = {
            let mut statement = tx.prepare_cached(
                "SELECT id, username, totp_secret FROM staff WHERE totp_secret IS NOT NULL",
            )?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let mut sealed = 0;
        for (id, username, secret) in plain {
            if crate::totp_seal::TotpSeal::is_sealed(&secret) {
                continue;
            }
            let stored = seal.seal(&username, &secret);
            sealed +=
                tx.execute("UPDATE staff SET totp_secret = $2 WHERE id = $1", (id, &stored))?;
        }
        tx.commit()?;
        Ok(sealed)
    }

    /// Every account, enabled ones first, by username.
    pub fn staff_listing(&self) -> Result<Vec<StaffListing>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT username, role, totp_secret IS NOT NULL, disabled_at FROM staff
             ORDER BY disabled_at IS NOT NULL, username",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<String>>(3)?))
        })?;
        rows.map(|row| {
            let (username, role, totp, disabled_at) = row?;
            Ok(StaffListing {
                username,
                role: role_of(role)?,
                totp,
                disabled_at: disabled_at.as_deref().map(parse_db_time).transpose()?,
            })
        })
        .collect()
    }

    /// Sets an enabled account's own unlock PIN (its argon2id hash), giving it the pseudonymous
    /// id `fresh_id` if it has none yet (an account keeps its id, so its past unlocks stay its
    /// own). Devices are told. Returns the id devices know it by; `None`: no such enabled account.
    pub fn set_unlock_pin(
        &self,
        staff_id: i64,
        pin_phc: &str,
        fresh_id: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffId>, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let id: Option<String> = tx
            .query_row(
                "UPDATE staff SET unlock_pin_phc = $2, unlock_id = COALESCE(unlock_id, $3),
                     unlock_pin_set_at = $4
                 WHERE id = $1 AND disabled_at IS NULL RETURNING unlock_id",
                (staff_id, pin_phc, fresh_id.as_str(), db_time(now)),
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        super::policy_records::policy_changed(&tx, now)?;
        tx.commit()?;
        Ok(Some(StaffId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?))
    }

    /// When this account last set its unlock PIN, if it has one.
    pub fn unlock_pin_set_at(&self, staff_id: i64) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<Option<String>> = self
            .lock()
            .query_row(
                "SELECT unlock_pin_set_at FROM staff WHERE id = $1 AND unlock_pin_phc IS NOT NULL",
                [staff_id],
                |r| r.get(0),
            )
            .optional()?;
        at.flatten().map(|t| parse_db_time(&t)).transpose()
    }

    /// The unlock PINs devices get: enabled accounts only, by id.
    pub fn unlock_pins(&self) -> Result<Vec<StaffPinRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT unlock_id, unlock_pin_phc FROM staff
             WHERE unlock_pin_phc IS NOT NULL AND unlock_id IS NOT NULL AND disabled_at IS NULL
             ORDER BY unlock_id",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        rows.map(|row| {
            let (id, pin_phc) = row?;
            let id = StaffId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(StaffPinRecord { id, pin_phc })
        })
        .collect()
    }

    /// Who has an unlock PIN in force (enabled accounts), by username.
    pub fn unlock_pin_holders(&self) -> Result<Vec<UnlockPinHolder>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT username, unlock_pin_set_at FROM staff
             WHERE unlock_pin_phc IS NOT NULL AND disabled_at IS NULL ORDER BY username",
        )?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (username, at) = row?;
            Ok(UnlockPinHolder { username, set_at: parse_db_time(&at)? })
        })
        .collect()
    }

    pub fn staff_by_username(&self, username: &str) -> Result<Option<StaffAccount>, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT id, username, role, password_phc, must_change_password, totp_secret,
                        totp_last_step, disabled_at IS NOT NULL
                 FROM staff WHERE username = $1",
                [username],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(
                id,
                username,
                role,
                password_phc,
                must_change_password,
                totp_secret,
                totp_last_step,
                disabled,
            )| {
                let username: String = username;
                let totp_secret = totp_secret
                    .map(|stored: String| self.open_totp(&username, &stored))
                    .transpose()?;
                Ok(StaffAccount {
                    id,
                    username,
                    role: role_of(role)?,
                    password_phc,
                    must_change_password,
                    totp_secret,
                    totp_last_step,
                    disabled,
                })
            },
        )
        .transpose()
    }

    /// Records the TOTP step just used, unless a newer one was stored meanwhile. Returns false
    /// if the step was already used (two sign-ins racing with one code).
    pub fn use_totp_step(&self, staff_id: i64, step: i64) -> Result<bool, StoreError> {
        let changed = self.lock().execute(
            "UPDATE staff SET totp_last_step = $2
             WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
            (staff_id, step),
        )?;
        Ok(changed == 1)
    }

    pub fn set_password(&self, staff_id: i64, password_phc: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE staff SET password_phc = $2, must_change_password = 0 WHERE id = $1",
            (staff_id, password_phc),
        )?;
        Ok(())
    }

    /// A member of staff changed their own password: the new hash, and every other session of
    /// theirs ends (a browser left signed in elsewhere, or one someone else opened with the old
    /// password); `keep` is the session they changed it in.
    pub fn change_password(
        &self,
        staff_id: i64,
        password_phc: &str,
        keep: &SecretHash,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        tx.execute(
            "UPDATE staff SET password_phc = $2, must_change_password = 0 WHERE id = $1",
            (staff_id, password_phc),
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE staff_id = $1 AND id_sha256 <> $2",
            (staff_id, keep.as_bytes()),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps a recovery link (its hash) for an enabled account until `expires_at`. `Ok(false)`:
    /// no enabled account has that name.
    pub fn save_recovery_link(
        &self,
        username: &str,
        token: &SecretHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let saved = self.lock().execute(
            "INSERT INTO recovery_links (token_sha256, staff_id, created_at, expires_at)
             SELECT $1, id, $3, $4 FROM staff WHERE username = $2 AND disabled_at IS NULL",
            (token.as_bytes(), username, db_time(now), db_time(expires_at)),
        )?;
        Ok(saved == 1)
    }

    /// The enabled account a live (unused, unexpired) recovery link is for.
    pub fn recovery_link_account(
        &self,
        token: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffAccount>, StoreError> {
        let username: Option<String> = self
            .lock()
            .query_row(
                "SELECT s.username FROM recovery_links l JOIN staff s ON s.id = l.staff_id
                 WHERE l.token_sha256 = $1 AND l.used_at IS NULL AND l.expires_at > $2
                   AND s.disabled_at IS NULL",
                (token.as_bytes(), db_time(now)),
                |r| r.get(0),
            )
            .optional()?;
        match username {
            Some(username) => self.staff_by_username(&username),
            None => Ok(None),
        }
    }

    /// Spends a live recovery link, in one transaction: the account gets the new TOTP secret
    /// (`totp_step` used), the new password, and one new session; its other sessions end.
    /// `None` when the link is not live (used, expired, unknown, or its account disabled).
    pub fn recover_account(
        &self,
        token: &SecretHash,
        recovery: &Recovery<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffAccount>, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let staff_id: Option<i64> = tx
            .query_row(
                "UPDATE recovery_links SET used_at = $2
                 WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2
                   AND staff_id IN (SELECT id FROM staff WHERE disabled_at IS NULL)
                 RETURNING staff_id",
                (token.as_bytes(), db_time(now)),
                |r| r.get(0),
            )
            .optional()?;
        let Some(staff_id) = staff_id else { return Ok(None) };
        let username: String =
            tx.query_row("SELECT username FROM staff WHERE id = $1", [staff_id], |r| r.get(0))?;
        let totp_secret = self.seal_totp(&username, recovery.totp_secret);
        tx.execute(
            "UPDATE staff SET totp_secret = $2, totp_last_step = $3, password_phc = $4,
                              must_change_password = 0
             WHERE id = $1",
            (staff_id, &totp_secret, recovery.totp_step, recovery.password_phc),
        )?;
        tx.execute("DELETE FROM staff_sessions WHERE staff_id = $1", [staff_id])?;
        tx.execute(
            "INSERT INTO staff_sessions (id_sha256, staff_id, csrf_token, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
            (recovery.session.as_bytes(), staff_id, recovery.csrf_token, db_time(now)),
        )?;
        tx.commit()?;
        drop(connection);
        self.staff_by_username(&username)
    }

    pub fn create_session(
        &self,
        id: &SecretHash,
        staff_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_time(now);
        self.lock().execute(
            "INSERT INTO staff_sessions (id_sha256, staff_id, csrf_token, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
            (id.as_bytes(), staff_id, csrf_token, &now),
        )?;
        Ok(())
    }

    /// The session with this id, if any (live or not: the caller decides), with its account.
    pub fn session(&self, id: &SecretHash) -> Result<Option<StaffSession>, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT s.staff_id, a.username, a.role, a.must_change_password, s.csrf_token,
                        s.created_at, s.last_seen_at
                 FROM staff_sessions s JOIN staff a ON a.id = s.staff_id
                 WHERE s.id_sha256 = $1 AND a.disabled_at IS NULL",
                [id.as_bytes()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, String>(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(staff_id, username, role, must_change_password, csrf_token, created, seen)| {
            Ok(StaffSession {
                staff_id,
                username,
                role: role_of(role)?,
                must_change_password,
                csrf_token,
                created_at: parse_db_time(&created)?,
                last_seen_at: parse_db_time(&seen)?,
            })
        })
        .transpose()
    }

    pub fn touch_session(&self, id: &SecretHash, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE staff_sessions SET last_seen_at = $2 WHERE id_sha256 = $1",
            (id.as_bytes(), db_time(now)),
        )?;
        Ok(())
    }

    pub fn delete_session(&self, id: &SecretHash) -> Result<(), StoreError> {
        self.lock().execute("DELETE FROM staff_sessions WHERE id_sha256 = $1", [id.as_bytes()])?;
        Ok(())
    }

    /// Appends to the audit log.
    pub fn audit(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        record: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        append_audit(&**self.lock(), at, actor, action, record, detail)
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.audit_page(None, limit)?.into_iter().map(|(_, entry)| entry).collect())
    }

    /// Up to `limit` audit entries older than entry `before` (the newest when `None`), newest
    /// first, each with its id: a page of the export, which asks for the next with the last id.
    pub fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT id, at, actor, action, record, detail FROM audit_log
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )?;
        let rows = statement.query_map((before.unwrap_or(i64::MAX), limit), |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        rows.map(|row| {
            let (id, at, actor, action, record, detail) = row?;
            Ok((id, AuditEntry { at: parse_db_time(&at)?, actor, action, record, detail }))
        })
        .collect()
    }
}

/// Appends to the audit log on `database`, which may be inside a transaction, so that an
/// action and its audit entry are stored together or not at all.
pub(super) fn append_audit(
    database: &(dyn super::sql::Database + '_),
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    record: Option<&str>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    database.execute(
        "INSERT INTO audit_log (at, actor, action, record, detail) VALUES ($1, $2, $3, $4, $5)",
        (db_time(at), actor, action, record, detail),
    )?;
    Ok(())
}

/// The name a device's staff id (the `unlock_id` its staff PIN document carries) stands for, as
/// staff pages show who unlocked a device or tested its button: the username, "IT's own device
/// PIN" for slate.toml's own PIN, or the unknown id as it came.
pub(super) fn unlock_staff_name(
    db: &dyn super::sql::Database,
    id: &str,
) -> Result<String, StoreError> {
    if id == slate_protocol::staff::IT_STAFF_ID {
        return Ok("IT's own device PIN".to_owned());
    }
    Ok(db
        .query_row("SELECT username FROM staff WHERE unlock_id = $1", [id], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| format!("unknown staff id {id}")))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::auth::{hash_password, HashCost};

    #[test]
    fn accounts_sessions_and_totp_steps() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-17T08:00:00Z");
        let phc = hash_password("first password", HashCost::Cheap);
        let id = store.save_staff("j.smith", Role::Dsl, &phc, Some("SECRET"), now).unwrap();
        let account = store.staff_by_username("j.smith").unwrap().unwrap();
        assert_eq!((account.id, account.role, account.must_change_password), (id, Role::Dsl, true));
        assert_eq!(store.staff_by_username("nobody").unwrap(), None);

        assert!(store.use_totp_step(id, 100).unwrap());
        assert!(!store.use_totp_step(id, 100).unwrap(), "a step is used once");
        assert!(!store.use_totp_step(id, 99).unwrap(), "and never an older one");

        let sid = SecretHash::of("session");
        store.create_session(&sid, id, "csrf", now).unwrap();
        let session = store.session(&sid).unwrap().unwrap();
        assert_eq!((session.username.as_str(), session.csrf_token.as_str()), ("j.smith", "csrf"));
        store.set_password(id, &phc).unwrap();
        assert!(!store.session(&sid).unwrap().unwrap().must_change_password);

        // Saving the account again (an IT reset) signs it out everywhere.
        store.save_staff("j.smith", Role::Teacher, &phc, None, now).unwrap();
        assert_eq!(store.session(&sid).unwrap(), None);
        assert_eq!(store.staff_by_username("j.smith").unwrap().unwrap().totp_last_step, None);
    }

    #[test]
    fn the_audit_log_is_newest_first() {
        let (_dir, store) = store_with_device(1);
        store.audit(at("2026-11-17T08:00:00Z"), "a", "viewed", Some("incident 1"), None).unwrap();
        store.audit(at("2026-11-17T08:00:00Z"), "b", "acted", None, Some("x")).unwrap();
        let log = store.audit_log(10).unwrap();
        let actors: Vec<&str> = log.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, ["b", "a", "device 1"], "the device's enrollment came first");
        assert_eq!(log[1].record.as_deref(), Some("incident 1"));
    }

    #[test]
    fn unlock_pins_reach_devices_only_for_enabled_accounts() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-17T08:00:00Z");
        let later = at("2026-11-17T09:00:00Z");
        let changed = |store: &Store| store.policy_records().unwrap().changed_at;
        let phc = hash_password("first password", HashCost::Cheap);
        let jones = store.save_staff("j.jones", Role::Teacher, &phc, None, now).unwrap();
        let patel = store.save_staff("r.patel", Role::Dsl, &phc, None, now).unwrap();
        assert!(store.unlock_pins().unwrap().is_empty());
        assert_eq!(store.unlock_pin_set_at(jones).unwrap(), None);

        let fresh = |s: &str| StaffId::new(s).unwrap();
        let pin = hash_password("482916", HashCost::Cheap);
        let id = store.set_unlock_pin(jones, &pin, &fresh("s-aaa"), now).unwrap().unwrap();
        assert_eq!(id.as_str(), "s-aaa");
        assert_eq!(changed(&store), now, "devices are told");
        // A new PIN keeps the id devices know the account by.
        let id = store.set_unlock_pin(jones, &pin, &fresh("s-bbb"), later).unwrap().unwrap();
        assert_eq!(id.as_str(), "s-aaa");
        assert_eq!(store.unlock_pin_set_at(jones).unwrap(), Some(later));
        store.set_unlock_pin(patel, &pin, &fresh("s-ccc"), later).unwrap().unwrap();
        let ids: Vec<_> =
            store.unlock_pins().unwrap().into_iter().map(|r| r.id.as_str().to_owned()).collect();
        assert_eq!(ids, ["s-aaa", "s-ccc"]);
        let holders: Vec<_> =
            store.unlock_pin_holders().unwrap().into_iter().map(|h| h.username).collect();
        assert_eq!(holders, ["j.jones", "r.patel"]);

        // Disabled: gone from devices, cannot set one again, and devices are told.
        let disabled_at = at("2026-11-17T10:00:00Z");
        assert!(store.disable_staff("r.patel", disabled_at).unwrap());
        assert!(!store.disable_staff("r.patel", disabled_at).unwrap(), "once");
        assert_eq!(changed(&store), disabled_at);
        assert_eq!(store.unlock_pins().unwrap().len(), 1);
        assert_eq!(store.set_unlock_pin(patel, &pin, &fresh("s-ddd"), disabled_at).unwrap(), None);
        assert!(store.staff_by_username("r.patel").unwrap().unwrap().disabled);

        // IT resets Mrs Jones's account: her PIN goes too, until she sets a new one.
        let reset_at = at("2026-11-17T11:00:00Z");
        store.save_staff("j.jones", Role::Teacher, &phc, None, reset_at).unwrap();
        assert!(store.unlock_pins().unwrap().is_empty());
        assert_eq!(changed(&store), reset_at);
        assert!(store.unlock_pin_holders().unwrap().is_empty());
    }

    #[test]
    fn totp_seeds_are_sealed_at_rest_and_old_ones_are_sealed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slate.sqlite");
        let now = at("2026-11-17T08:00:00Z");
        let seed = crate::auth::new_totp_secret();
        let stored = |store: &Store| -> String {
            store
                .lock()
                .query_row("SELECT totp_secret FROM staff WHERE username = 'old.dsl'", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        // Stored by a server from before sealing.
        let unsealed = Store::open(&path).unwrap();
        unsealed.save_staff("old.dsl", Role::Dsl, "phc", Some(&seed), now).unwrap();
        assert_eq!(stored(&unsealed), seed);
        drop(unsealed);

        let seal = crate::totp_seal::TotpSeal::new([3; 32]);
        let store = Store::open(&path).unwrap().with_totp_seal(seal.clone()).unwrap();
        assert!(stored(&store).starts_with("sealed1:"), "sealed at start");
        let account = store.staff_by_username("old.dsl").unwrap().unwrap();
        assert_eq!(account.totp_secret.as_deref(), Some(seed.as_str()), "opened when read");
        let new_seed = crate::auth::new_totp_secret();
        store.save_staff("new.dsl", Role::Dsl, "phc", Some(&new_seed), now).unwrap();
        let account = store.staff_by_username("new.dsl").unwrap().unwrap();
        assert_eq!(account.totp_secret, Some(new_seed));
        assert_eq!(store.seal_stored_totp_secrets().unwrap(), 0, "nothing left to seal");

        // Another key (another server's data directory) cannot read them, and says so.
        let other = Store::open(&path)
            .unwrap()
            .with_totp_seal(crate::totp_seal::TotpSeal::new([4; 32]))
            .unwrap();
        let refused = other.staff_by_username("old.dsl").unwrap_err().to_string();
        assert!(refused.contains("old.dsl") && refused.contains("key"), "{refused}");
    }
}
