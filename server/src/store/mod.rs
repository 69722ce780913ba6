//! The server's SQLite database: opening it, its schema, and every read and write of it. It
//! must not know about HTTP, HTML or the CLI, and it keeps secrets only as SHA-256 hashes.
//!
//! Times are stored as RFC 3339 text in UTC with microseconds and a `Z`
//! (`2026-11-17T10:14:03.120000Z`): fixed width, so text order is time order and indexes on
//! them work, and readable by IT in the `sqlite3` shell.

mod activity;
mod agreements;
mod alert_outbox;
mod alert_rules;
mod apps;
mod block_requests;
mod bypasses;
mod chronology;
mod classes;
mod commands;
mod devices;
mod filter_checks;
mod filtering_log;
mod incidents;
mod ingest;
mod languages;
mod lists;
mod policy_records;
mod postgres;
mod profiles;
mod queries;
mod register;
mod retention;
mod roster;
mod schema;
mod settings;
pub mod sql;
mod sqlite;
mod ssh_access;
mod staff;
mod updates;
pub use updates::BundleRemoval;

pub use activity::{ActivityRecord, RefusedRecord};
pub use agreements::AgreementVersion;
pub use alert_outbox::OutboxAlert;
pub use alert_rules::{RuleAlertRecord, ALERT_SETTINGS};
pub use block_requests::{BlockAsk, BlockDecision, BlockRequestRecord};
pub use bypasses::{BypassDecision, BypassRecord};
pub use chronology::{
    AcceptedAgreement, BlockedAttempt, IncidentHistoryLine, PupilRecord, PupilSession,
};
pub use classes::ClassInput;
pub use commands::{ButtonTestRecord, CommandRecord, Understands};
pub use devices::{
    AuthenticatedDevice, CredentialState, EnrollOutcome, EnrollRefusal, ListedSerial, SerialLookup,
};
pub use filter_checks::{CheckAnswer, CheckedDevice, FilterCheckRecord, FilterCheckRun};
pub use filtering_log::{BlockFilter, LoggedBlock};
pub use incidents::{IncidentEntry, IncidentFilter, IncidentRecord, StepError};
pub use ingest::{Ingested, NewReport};
pub use lists::ListRecord;
pub use postgres::PostgresOptions;
pub use queries::{DeviceRecord, ReportRecord, SessionRecord, WhoHad, CLOCK_NOT_SYNCHRONISED};
pub use register::{FleetRow, RegisterEntry};
pub use retention::Purged;
pub use roster::{Imported, PupilChange, RosterName, RosterPupil};
pub use settings::{IDLE_TIMEOUT_MIN, LESSON_ENDS, URL_SALT};
pub use ssh_access::SshAccessState;
pub use staff::{AuditEntry, Recovery, StaffAccount, StaffListing, StaffSession, UnlockPinHolder};

use chrono::{DateTime, SecondsFormat, Utc};
use sql::Database;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {}", with_causes(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("the database connection is gone")]
    ConnectionGone,
    #[error("{0}")]
    Config(String),
    #[error("expected a row, found none")]
    NoRows,
    #[error("the database gave a value of the wrong kind: {0}")]
    Value(String),
    #[error("cannot bring the database schema up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("cannot encode an event for storage: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the database holds a value this server cannot read: {0}")]
    Corrupt(String),
    #[error("cannot make {0} private to its owner: {1}")]
    Permissions(std::path::PathBuf, std::io::Error),
    #[error("a database task stopped before finishing: {0}")]
    TaskFailed(String),
    #[error("{0}")]
    Unsupported(String),
    /// A roster import refused as a whole (two rows that would be one pupil, say).
    #[error("{0}")]
    RosterRefused(#[from] crate::roster::ImportError),
}

/// A handle on the database. Cheap to clone; every clone shares its two connections.
///
/// One writing connection behind a mutex keeps every write serialised; long reads go to a
/// second, read-only one ([`Store::read`]), on SQLite and PostgreSQL alike.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Box<dyn Database>>>,
    /// A read-only connection for the long reads (staff pages' searches, exports, the audit
    /// log), so they never wait for, or hold up, device ingest or sign-ins. Always there once
    /// opened (`None` only inside the constructors).
    reader: Option<Arc<Mutex<Box<dyn Database>>>>,
    /// Seals TOTP seeds before they are stored and opens them when read (`None`: tests of other
    /// things, which store them as given).
    totp_seal: Option<Arc<crate::totp_seal::TotpSeal>>,
}

/// Where the next page of a newest-first export starts: the time and id of the last row read
/// (keyset paging: rows stored while the export runs never shift or repeat a page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    at: String,
    id: String,
}

/// Devices, staff accounts and events held: none means a server just installed, which a
/// backup may replace.
const RECORDS_HELD: &str = "SELECT (SELECT COUNT(*) FROM devices) + (SELECT COUNT(*) FROM staff)
                                   + (SELECT COUNT(*) FROM events)";

/// How many migrations this build's schema has had: a database file another build made is the
/// same schema only if this number is the same (slate-bench keys the files it keeps by it).
pub fn schema_version() -> i64 {
    schema::migrations_count()
}

impl Store {
    /// Opens (creating if missing) the SQLite file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self::on(sqlite::Sqlite::open(path)?);
        let reader: Box<dyn Database> = Box::new(sqlite::Sqlite::open_reader(path)?);
        store.reader = Some(Arc::new(Mutex::new(reader)));
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgresql://user@host/db`, or `host=/run/postgresql dbname=x`)
    /// and brings its schema up to date. Off this machine the address must say
    /// `sslmode=require`.
    pub fn connect_postgres(url: &str, options: PostgresOptions<'_>) -> Result<Self, StoreError> {
        let mut store = Self::on(postgres::Postgres::connect(url, options)?);
        let reader: Box<dyn Database> = Box::new(postgres::Postgres::connect_reader(url, options)?);
        store.reader = Some(Arc::new(Mutex::new(reader)));
        Ok(store)
    }

    fn on(database: impl Database + 'static) -> Self {
        Self { connection: Arc::new(Mutex::new(Box::new(database))), reader: None, totp_seal: None }
    }

    /// From now on TOTP seeds are sealed with `seal` in the database; seeds stored before
    /// sealing are sealed now, in one transaction. Every server and admin command opens the
    /// store this way, with the data directory's key.
    pub fn with_totp_seal(mut self, seal: crate::totp_seal::TotpSeal) -> Result<Self, StoreError> {
        self.totp_seal = Some(Arc::new(seal));
        let sealed = self.seal_stored_totp_secrets()?;
        if sealed > 0 {
            tracing::info!(accounts = sealed, "sealed TOTP secrets stored before sealing");
        }
        Ok(self)
    }

    pub fn backend(&self) -> sql::Backend {
        self.lock().backend()
    }

    /// Whether nothing has happened here yet: no device, no staff account, no event (a server
    /// just installed, which a backup may replace).
    pub fn is_pristine(&self) -> Result<bool, StoreError> {
        let connection = self.lock();
        let used: i64 = connection.query_row(RECORDS_HELD, [], |r| r.get(0))?;
        Ok(used == 0)
    }

    /// Empties a PostgreSQL database (or the school's schema, which goes too) that holds no
    /// device, staff account or event, for `pg_restore` to fill from a backup: the tables a
    /// fresh server made may be a newer release's than the backup's. Refused otherwise, in the
    /// same transaction as the check.
    pub fn clear_pristine_postgres(&self, schema: Option<&str>) -> Result<(), StoreError> {
        let connection = self.lock();
        if connection.backend() != sql::Backend::Postgres {
            return Err(StoreError::Unsupported("the database is not PostgreSQL".into()));
        }
        let tx = connection.transaction()?;
        let used: i64 = tx.query_row(RECORDS_HELD, [], |r| r.get(0))?;
        if used != 0 {
            return Err(StoreError::Unsupported(
                "the PostgreSQL database holds devices, staff or events".into(),
            ));
        }
        let tables = tx
            .prepare("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if !tables.is_empty() {
            let names: Vec<String> =
                tables.iter().map(|t| format!("\"{}\"", t.replace('"', "\"\""))).collect();
            tx.execute_batch(&format!("DROP TABLE {} CASCADE", names.join(", ")))?;
        }
        if let Some(schema) = schema {
            // Checked by `connect_postgres`: letters, digits and _ only.
            tx.execute_batch(&format!("DROP SCHEMA {schema}"))?;
        }
        tx.commit()
    }

    /// Writes a consistent copy of a SQLite database to `path` (a new file), as of one moment,
    /// while the server goes on (`VACUUM INTO`: one read transaction; the copy is compacted).
    /// PostgreSQL is backed up with its own tool, `pg_dump`.
    pub fn copy_sqlite_to(&self, path: &Path) -> Result<(), StoreError> {
        let connection = self.lock();
        if connection.backend() != sql::Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "the database is PostgreSQL: back it up with pg_dump".into(),
            ));
        }
        let path = path.to_str().ok_or_else(|| {
            StoreError::Unsupported(format!("{} is not a UTF-8 path", path.display()))
        })?;
        connection.execute("VACUUM INTO $1", [path])?;
        Ok(())
    }

    /// Runs blocking database work off the async runtime's threads.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))?
    }

    /// The connection for long reads: the read-only one where there is one. Never for a read
    /// that must see a write of the same request before it commits (there are none: each
    /// method commits its own writes).
    fn read(&self) -> MutexGuard<'_, Box<dyn Database>> {
        match &self.reader {
            Some(reader) => reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            None => self.lock(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn Database>> {
        // A panic while holding the lock cannot leave a half-written transaction behind (an
        // unfinished transaction rolls back when dropped), so the connection is safe to keep
        // using.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An error and its causes on one line: the PostgreSQL client keeps the reason a connection
/// failed (a refused certificate, say) in its source.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

pub(crate) fn db_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_db_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {text:?}: {e}")))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::roster::RosterRow;
    use slate_protocol::kiosk::KeyStage;
    use slate_protocol::{DeviceNumber, PupilId};

    pub fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    pub fn device(n: u32) -> DeviceNumber {
        DeviceNumber::new(n).unwrap()
    }

    pub fn row(line: usize, class: &str, first: &str, initial: &str) -> RosterRow {
        RosterRow {
            line,
            class: class.into(),
            first_name: first.into(),
            initial: initial.into(),
            family_start: initial.into(),
            key_stage: KeyStage::Ks1,
            mis_id: None,
        }
    }

    pub fn id(s: &str) -> PupilId {
        PupilId::new(s).unwrap()
    }

    /// The one integer `sql` counts.
    pub fn count_rows(store: &Store, sql: &str) -> i64 {
        store.lock().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A store in a fresh file with device `n` enrolled.
    pub fn store_with_device(n: u32) -> (tempfile::TempDir, Store) {
        let (dir, store, _) = store_with_device_credential(n);
        (dir, store)
    }

    /// A store in a fresh file with device `n` enrolled (at 08:00 on 17 November 2026, with a
    /// token valid for an hour), and the device's credential.
    pub fn store_with_device_credential(
        n: u32,
    ) -> (tempfile::TempDir, Store, crate::secrets::Secret) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
        let now = at("2026-11-17T08:00:00Z");
        let token =
            store.issue_enrollment_token(device(n), chrono::Duration::hours(1), now).unwrap();
        let credential = crate::secrets::Secret::generate();
        let outcome =
            store.enroll(&token.hash(), device(n), &credential.hash(), "0.1.0", now).unwrap();
        assert_eq!(outcome, EnrollOutcome::Enrolled);
        (dir, store, credential)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::roster::PupilEntry;

    /// A long read (a page, an export) on the reader does not hold up a device's batch on the
    /// writer: SQLite's WAL gives the reader its snapshot while the writer commits. And the
    /// reader cannot write.
    #[test]
    fn a_long_read_does_not_hold_up_ingest() {
        let (_dir, store) = store_with_device(12);
        let reader = store.read();
        reader.execute_batch("BEGIN").unwrap();
        let count = |db: &dyn Database| -> i64 {
            db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(count(&**reader), 0);
        let event = slate_protocol::Event::new(
            device(12),
            at("2026-11-17T09:00:00Z"),
            slate_protocol::EventBody::Hello { software_version: "0.1.0".into() },
        );
        // On this thread, while the read is open: it would wait for ever if they shared a lock.
        store.ingest(device(12), &[event], at("2026-11-17T09:00:01Z")).unwrap();
        assert_eq!(count(&**reader), 0, "the read keeps its snapshot");
        reader.execute_batch("COMMIT").unwrap();
        assert_eq!(count(&**reader), 1, "and sees the batch after");
        let refused = reader.execute("DELETE FROM events", []).unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
    }

    #[test]
    fn migrations_apply_to_a_fresh_file_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slate.sqlite");
        let store = Store::open(&path).unwrap();
        store.save_pupil(&PupilEntry::new("p-1", "Amira K.", "Year 2").unwrap()).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let connection = store.lock();
        let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, schema::migrations_count());
        let journal: String =
            connection.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
        let pupils: i64 =
            connection.query_row("SELECT count(*) FROM pupils", [], |r| r.get(0)).unwrap();
        assert_eq!(pupils, 1, "data survives a reopen");
    }

    #[test]
    fn schema_migrations_are_valid() {
        schema::migrations().validate().unwrap();
    }

    #[test]
    fn saving_a_pupil_again_updates_the_names() {
        let (_dir, store) = store_with_device(1);
        store.save_pupil(&PupilEntry::new("p-1", "Amira K.", "Year 2").unwrap()).unwrap();
        store.save_pupil(&PupilEntry::new("p-1", "Amira Kh.", "Year 3").unwrap()).unwrap();
        let name: String = store
            .lock()
            .query_row(
                "SELECT display_name || '/' || class_name FROM pupils WHERE id = 'p-1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(name, "Amira Kh./Year 3");
    }

    #[test]
    fn times_are_fixed_width_and_round_trip() {
        let t = at("2026-11-17T10:14:03.12Z");
        assert_eq!(db_time(t), "2026-11-17T10:14:03.120000Z");
        assert_eq!(parse_db_time(&db_time(t)).unwrap(), t);
        assert!(parse_db_time("yesterday").is_err());
    }
}
