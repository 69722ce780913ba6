//! Filter profiles: which lists block, or allow only, and how strict safe search is.

use super::policy_records::policy_changed;
use super::{Store, StoreError};
use crate::device_policy::ProfileRecord;
use chrono::{DateTime, Utc};

impl Store {
    pub fn save_profile(
        &self,
        profile: &ProfileRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let block = serde_json::to_string(&profile.block_lists)?;
        let allow = profile.allow_only.as_ref().map(serde_json::to_string).transpose()?;
        self.immediate(|tx| {
            tx.execute(
                "INSERT INTO filter_profiles (name, block_lists, allow_only, safe_search)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET block_lists = excluded.block_lists,
                     allow_only = excluded.allow_only, safe_search = excluded.safe_search",
                (&profile.name, &block, &allow, &profile.safe_search),
            )?;
            policy_changed(tx, now)
        })
    }

    pub fn profiles(&self) -> Result<Vec<ProfileRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT name, block_lists, allow_only, safe_search FROM filter_profiles ORDER BY name",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (name, block, allow, safe_search) = row?;
            Ok(ProfileRecord {
                name,
                block_lists: serde_json::from_str(&block)?,
                allow_only: allow.map(|a| serde_json::from_str(&a)).transpose()?,
                safe_search,
            })
        })
        .collect()
    }
}
