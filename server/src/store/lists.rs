//! Filter list files IT uploaded (their bytes live in the data directory's `lists/`, under
//! their content's name: `crate::list_files`). A row is what puts a list's bytes in force.

use super::policy_records::policy_changed;
use super::sql::{OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::device::ListFile;

/// An uploaded list, for IT's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    pub name: String,
    pub file: ListFile,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

impl Store {
    /// Records an uploaded list file (its bytes are already in the data directory): the commit
    /// point that puts them in force.
    pub fn save_list(
        &self,
        name: &str,
        file: &ListFile,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.immediate(|tx| put_list(tx, name, file, by, now))
    }

    pub fn lists(&self) -> Result<Vec<ListRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT name, sha256, bytes, uploaded_at, uploaded_by FROM filter_lists ORDER BY name",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (name, sha256, bytes, at, by) = row?;
            Ok(ListRecord {
                name,
                file: ListFile { sha256, bytes: bytes as u64 },
                uploaded_at: parse_db_time(&at)?,
                uploaded_by: by,
            })
        })
        .collect()
    }

    /// The manifest entry of the list of this name, if one was uploaded (its file is served).
    pub fn list_file(&self, name: &str) -> Result<Option<ListFile>, StoreError> {
        self.lock()
            .query_row("SELECT sha256, bytes FROM filter_lists WHERE name = $1", [name], |r| {
                Ok(ListFile { sha256: r.get::<_, String>(0)?, bytes: r.get::<_, i64>(1)? as u64 })
            })
            .optional()
    }
}

/// Puts a list's new file in force in `tx` (an upload, or a site block request accepted into
/// it) and moves the policy on.
pub(super) fn put_list(
    tx: &Transaction<'_>,
    name: &str,
    file: &ListFile,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO filter_lists (name, sha256, bytes, uploaded_at, uploaded_by)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,
             uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by",
        (name, &file.sha256, file.bytes as i64, db_time(now), by),
    )?;
    policy_changed(tx, now)
}
