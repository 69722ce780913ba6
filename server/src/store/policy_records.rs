//! What devices are told, put together: `policy_records` reads every record the kiosk,
//! filter and staff documents are made from (classes, roster, apps, settings, lists,
//! profiles, bypasses, staff unlock PINs: each in its own module). Every change to what devices
//! are told moves `policy_changed_at` and queues `refresh_policy` for every device, in the same
//! transaction (`Store::immediate` with `policy_changed`).

use super::settings::{set_setting_in, IDLE_TIMEOUT_MIN, LESSON_ENDS, POLICY_CHANGED_AT, URL_SALT};
use super::sql::{OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use crate::device_policy::{ApprovedBypass, PolicyRecords};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use slate_protocol::kiosk::SessionRules;
use std::collections::BTreeMap;

/// How long a `refresh_policy` queued by a change stays worth acting on: a device that was off
/// fetches the policy when it starts anyway.
const REFRESH_VALID: Duration = Duration::hours(1);

/// Marks what devices are told as changed: a new `issued_at` (later than the last, whatever the
/// clock says), and every device told to fetch.
pub(super) fn policy_changed(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    let previous: Option<String> = tx
        .query_row("SELECT value FROM settings WHERE key = $1", [POLICY_CHANGED_AT], |r| r.get(0))
        .optional()?;
    let previous = previous.as_deref().map(parse_db_time).transpose()?;
    let version = crate::device_policy::next_policy_version(previous, now);
    set_setting_in(tx, POLICY_CHANGED_AT, &db_time(version))?;
    tx.execute(
        "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
         VALUES (NULL, 'refresh_policy', $1, $2, 'server')",
        (db_time(now), db_time(now + REFRESH_VALID)),
    )?;
    Ok(())
}

impl Store {
    pub(super) fn immediate<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Every record the two device documents are made from.
    pub fn policy_records(&self) -> Result<PolicyRecords, StoreError> {
        let lists = self.lists()?.into_iter().map(|l| (l.name, l.file)).collect::<BTreeMap<_, _>>();
        let bypasses = self
            .bypasses(u32::MAX)?
            .into_iter()
            .filter(|b| b.status == "approved")
            .map(|b| ApprovedBypass {
                profile: b.profile,
                domain: b.domain,
                from: b.from,
                until: b.until,
                reason: b.reason,
                approved_by: b.decided_by.unwrap_or_default(),
            })
            .collect();
        let changed_at = match self.setting(POLICY_CHANGED_AT)? {
            Some(text) => parse_db_time(&text)?,
            None => DateTime::<Utc>::UNIX_EPOCH,
        };
        let sessions = SessionRules {
            idle_timeout_min: match self.setting(IDLE_TIMEOUT_MIN)? {
                Some(text) => text
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("{IDLE_TIMEOUT_MIN} {text:?}")))?,
                None => SessionRules::default().idle_timeout_min,
            },
            lesson_ends: match self.setting(LESSON_ENDS)? {
                Some(text) => serde_json::from_str::<Vec<NaiveTime>>(&text)
                    .map_err(|_| StoreError::Corrupt(format!("{LESSON_ENDS} {text:?}")))?,
                None => Vec::new(),
            },
        };
        Ok(PolicyRecords {
            changed_at,
            classes: self.classes()?,
            pupils: self.policy_pupils()?,
            apps: self.apps()?,
            staff_pins: self.unlock_pins()?,
            sessions,
            lists,
            profiles: self.profiles()?,
            bypasses,
            url_salt: self.setting(URL_SALT)?,
            agreements: self.agreements_in_force()?,
            languages: self.saved_languages()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;

    #[test]
    fn a_clock_stepped_back_still_moves_the_policy_version_forward() {
        let (_dir, store) = store_with_device(1);
        let rows = vec![(id("p-a"), row(2, "Oak", "Amira", "K"))];
        store.import_roster(&rows, at("2026-11-23T08:00:00Z")).unwrap();
        let first = store.policy_records().unwrap().changed_at;
        // The server's clock is stepped back a day, then IT changes a setting.
        store.set_policy_setting(IDLE_TIMEOUT_MIN, "15", at("2026-11-22T08:00:00Z")).unwrap();
        let second = store.policy_records().unwrap().changed_at;
        assert!(second > first, "{second} after {first}");
        assert_eq!(second, at("2026-11-23T08:00:01Z"));
    }
}
