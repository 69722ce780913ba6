//! [`Database`] on a SQLite file: the default, for one school's server.

use super::sql::{Backend, Database, Row, Value};
use super::{schema, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// How long a writer waits for another (an `enrollment-token` command while the server runs).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Sqlite {
    connection: Connection,
}

impl Sqlite {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        // Pupil data: owner-only, like the directory. SQLite gives the -wal and -shm files the
        // main file's mode, so this runs before WAL mode creates them.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StoreError::Permissions(path.to_owned(), e))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // FULL, not NORMAL: a 200 to a device lets it forget the events, so a committed batch
        // must survive a power cut (PRODUCT.md: "nothing is lost").
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Off while migrations run, as SQLite's way to rebuild a table needs (0014 rebuilds
        // `reports`); each migration checks every foreign key before it commits.
        connection.pragma_update(None, "foreign_keys", false)?;
        schema::migrations().to_latest(&mut connection)?;
        connection.pragma_update(None, "foreign_keys", true)?;
        Ok(Self { connection })
    }
}

impl Sqlite {
    /// A second, read-only connection to a database `open` has brought up to date: WAL lets it
    /// read while the other writes, so a long page or export never holds up a device's batch.
    pub fn open_reader(path: &Path) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(Self { connection })
    }
}

impl Database for Sqlite {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute_values(&self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, params)?;
        Ok(statement.raw_execute()?)
    }

    fn query_values(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.connection.prepare_cached(sql)?;
        let columns = statement.column_count();
        bind(&mut statement, params)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|i| row.get_ref(i).map(value_from_ref))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(Row::new(values));
        }
        Ok(out)
    }

    fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.connection.execute_batch(sql)?)
    }

    fn begin(&self) -> Result<(), StoreError> {
        self.execute_batch("BEGIN IMMEDIATE")
    }
}

/// Binds `params[n - 1]` to `$n`. SQLite takes `$1` as a parameter named "$1" and numbers named
/// parameters in the order they first appear, so the store's SQL (`$2 ... $1`, or `$2` twice)
/// is bound by name: the number in the name is the parameter's, as PostgreSQL reads it.
fn bind(statement: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<(), StoreError> {
    let expected = statement.parameter_count();
    if params.len() != expected {
        return Err(rusqlite::Error::InvalidParameterCount(params.len(), expected).into());
    }
    for (n, value) in (1..).zip(params) {
        let name = format!("${n}");
        let index =
            statement.parameter_index(&name)?.ok_or(rusqlite::Error::InvalidParameterName(name))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn value_from_ref(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        // STRICT tables hold only valid UTF-8 in TEXT columns.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let database = Sqlite::open(&dir.path().join("slate.sqlite")).unwrap();
        (dir, database)
    }

    #[test]
    fn placeholders_bind_by_their_number_in_any_order_and_again() {
        let (_dir, database) = database();
        let text = |s: &str| Value::Text(s.into());
        let rows = database
            .query_values("SELECT $2 || $1 || $2 || '$1' -- $3\n", &[text("a"), text("b")])
            .unwrap();
        assert_eq!(rows, vec![Row::new(vec![text("bab$1")])]);
        let changed = database
            .execute_values(
                "INSERT INTO settings (key, value) VALUES ($2, $1)",
                &[text("v"), text("k")],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let rows = database.query_values("SELECT value FROM settings WHERE key = $1", &[text("k")]);
        assert_eq!(rows.unwrap(), vec![Row::new(vec![text("v")])]);
    }

    #[test]
    fn a_parameter_too_many_or_too_few_is_an_error() {
        let (_dir, database) = database();
        let one = [Value::Integer(1)];
        assert!(database.query_values("SELECT $1, $2", &one).is_err());
        assert!(database.query_values("SELECT 1", &one).is_err());
        assert!(database.query_values("SELECT $2", &one).is_err(), "no $1");
    }
}
