//! Single values: the session rules devices are told, the URL-list salt, when what devices are
//! told last changed.

use super::policy_records::policy_changed;
use super::sql::{OptionalExtension, Transaction};
use super::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Setting keys.
pub const IDLE_TIMEOUT_MIN: &str = "idle_timeout_min";
pub const LESSON_ENDS: &str = "lesson_ends";
pub const URL_SALT: &str = "url_salt";
pub(super) const POLICY_CHANGED_AT: &str = "policy_changed_at";

pub(super) fn set_setting_in(
    tx: &Transaction<'_>,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

impl Store {
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT value FROM settings WHERE key = $1", [key], |r| r.get(0))
            .optional()
    }

    /// Sets a setting devices are told about (session rules).
    pub fn set_policy_setting(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.immediate(|tx| {
            set_setting_in(tx, key, value)?;
            policy_changed(tx, now)
        })
    }

    /// The salt for URL-list hashes: made once (by the caller's `fresh`), the same after.
    pub fn url_salt(&self, fresh: impl FnOnce() -> String) -> Result<String, StoreError> {
        self.immediate(|tx| {
            let existing: Option<String> = tx
                .query_row("SELECT value FROM settings WHERE key = $1", [URL_SALT], |r| r.get(0))
                .optional()?;
            match existing {
                Some(salt) => Ok(salt),
                None => {
                    let salt = fresh();
                    set_setting_in(tx, URL_SALT, &salt)?;
                    Ok(salt)
                }
            }
        })
    }
}
