//! [`Database`] on PostgreSQL: for trusts that run one database for many schools.
//!
//! On this machine (a Unix socket or loopback) the connection may be plain. Anywhere else it
//! must be TLS (`sslmode=require`), checked against the system's certificates and the trust's
//! own CA file if given: pupil data never crosses a network in the clear.
//!
//! The synchronous `postgres` client runs its own small async runtime, which must not be
//! entered from inside the server's. So one thread owns the connection and runs each statement
//! sent to it; callers wait for the answer as they would for SQLite's file.

use super::sql::{Backend, Database, Row, Value};
use super::{schema, StoreError};
use bytes::BytesMut;
use postgres::config::SslMode;
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls};
use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::sync::mpsc;

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

pub struct Postgres {
    jobs: mpsc::Sender<Job>,
}

/// Opens a connection the same way every time (plain or TLS), for the first and for reconnects.
type Connect = Box<dyn Fn(&Config) -> Result<Client, postgres::Error> + Send>;

struct Worker {
    config: Config,
    connect: Connect,
    client: Client,
    /// Prepared statements by their SQL as the store wrote it.
    statements: HashMap<String, postgres::Statement>,
}

/// How a school's server uses a trust's PostgreSQL, besides its address.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresOptions<'a> {
    /// A PEM file of certificates trusted for TLS besides the system's.
    pub ca_file: Option<&'a Path>,
    /// The school's own schema in a database many schools share (created if missing): each
    /// school's device 12 is its own. `None`: the user's default (`public`).
    pub schema: Option<&'a str>,
}

impl Postgres {
    /// Connects to `url` (`postgresql://user@host/db` or `host=... dbname=...`) and brings the
    /// schema up to date.
    pub fn connect(url: &str, options: PostgresOptions<'_>) -> Result<Self, StoreError> {
        let database = Self::open(url, options, "")?;
        database.migrate()?;
        Ok(database)
    }

    /// A second connection to a database [`Postgres::connect`] has brought up to date, for the
    /// long reads: every transaction on it is read-only (PostgreSQL refuses a write), and it has
    /// its own thread, so a long page or export never holds up a device's batch on the other.
    pub fn connect_reader(url: &str, options: PostgresOptions<'_>) -> Result<Self, StoreError> {
        Self::open(url, options, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    }

    /// Opens a connection on its own thread; `session` runs first on it and on every reconnect.
    fn open(url: &str, options: PostgresOptions<'_>, session: &str) -> Result<Self, StoreError> {
        // The address is not repeated in errors: it may hold a password.
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("cannot read the PostgreSQL address: {e}")))?;
        if config.get_hosts().is_empty() {
            return Err(StoreError::Config(
                "the PostgreSQL address names no host (host=/run/postgresql for the local socket)"
                    .into(),
            ));
        }
        let setup = match options.schema {
            Some(schema) => {
                check_schema_name(schema)?;
                format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}")
            }
            None => String::new(),
        };
        let setup = [setup.as_str(), session]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        let open: Connect = if config.get_ssl_mode() == SslMode::Require {
            let tls = tls_connector(options.ca_file)?;
            Box::new(move |config| config.connect(tls.clone()))
        } else {
            check_local(&config)?;
            Box::new(|config| config.connect(NoTls))
        };
        // Every connection, reconnections too, works in the school's schema.
        let connect: Connect = Box::new(move |config| {
            let mut client = open(config)?;
            if !setup.is_empty() {
                client.batch_execute(&setup)?;
            }
            Ok(client)
        });
        let (ready, connected) = mpsc::channel();
        let (jobs, incoming) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                let client = match connect(&config) {
                    Ok(client) => client,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let mut worker = Worker { config, connect, client, statements: HashMap::new() };
                // Ends when the store (the last sender) is dropped.
                for job in incoming {
                    job(&mut worker);
                }
            })
            .map_err(|e| {
                StoreError::TaskFailed(format!("cannot start the PostgreSQL thread: {e}"))
            })?;
        connected.recv().map_err(|_| StoreError::ConnectionGone)??;
        Ok(Self { jobs })
    }

    /// Runs `work` on the connection's thread and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Worker) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |worker| {
                let _ = answer.send(worker.reconnect_if_closed().and_then(|()| work(worker)));
            }))
            .map_err(|_| StoreError::ConnectionGone)?;
        answered.recv().map_err(|_| StoreError::ConnectionGone)?
    }

    /// Applies the migrations this database has not had yet, one transaction for all, under a
    /// lock so that two servers starting together do not both apply them.
    fn migrate(&self) -> Result<(), StoreError> {
        self.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TEXT   NOT NULL DEFAULT (now()::text)
             )",
        )?;
        let migrations = schema::postgres_migrations();
        self.call(move |worker| {
            let mut tx = worker.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(7291105)", &[])?;
            let applied: i64 = tx
                .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?
                .get(0);
            let known = migrations.len() as i64;
            if applied > known {
                return Err(StoreError::Config(format!(
                    "the database has schema version {applied}, newer than this server's \
                     {known}: run a newer slate-server"
                )));
            }
            for (version, sql) in (1_i64..).zip(migrations).skip(applied as usize) {
                tx.batch_execute(sql)?;
                tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version])?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

impl Worker {
    /// A server restart or a network cut closes the connection; the next statement opens a
    /// new one rather than failing for ever.
    fn reconnect_if_closed(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            self.client = (self.connect)(&self.config)?;
            self.statements.clear();
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Database for Postgres {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute_values(&self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.call(move |worker| {
            let statement = worker.statement(&sql)?;
            let changed = worker.client.execute(&statement, &parameters(&params))?;
            Ok(changed as usize)
        })
    }

    fn query_values(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.call(move |worker| {
            let statement = worker.statement(&sql)?;
            let rows = worker.client.query(&statement, &parameters(&params))?;
            rows.iter()
                .map(|row| {
                    (0..row.len()).map(|i| row.try_get::<_, Value>(i)).collect::<Result<_, _>>()
                })
                .map(|values| values.map(Row::new).map_err(StoreError::from))
                .collect()
        })
    }

    fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_owned();
        self.call(move |worker| Ok(worker.client.batch_execute(&sql)?))
    }

    fn begin(&self) -> Result<(), StoreError> {
        // Writes to one row wait for each other at READ COMMITTED; the store's transactions
        // read only what they then write under the same unique keys.
        self.execute_batch("BEGIN")
    }
}

fn parameters(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// A schema name that needs no quoting and cannot be one of PostgreSQL's own.
fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
        && name != "information_schema";
    if valid {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "the PostgreSQL schema {name:?} is not usable: use 1 to 63 lower-case letters, digits \
             and _, starting with a letter (not pg_), e.g. oakfield_primary"
        )))
    }
}

/// A plain connection must stay on this machine: a Unix socket or loopback.
fn check_local(config: &Config) -> Result<(), StoreError> {
    use postgres::config::Host;
    for host in config.get_hosts() {
        let local = match host {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        };
        if !local {
            let shown = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            return Err(StoreError::Config(format!(
                "PostgreSQL at {shown} is not on this machine: add sslmode=require to the address \
                 so that pupil data crosses the network encrypted (and --postgres-ca for the \
                 trust's own certificate authority)"
            )));
        }
    }
    Ok(())
}

/// TLS that checks the server's certificate and name against the system's certificates and
/// `ca_file`.
fn tls_connector(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    // A system store that cannot be read entirely still gives what it could.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let unusable =
            |reason: String| StoreError::Config(format!("the PostgreSQL CA file: {reason}"));
        for certificate in
            crate::tls::read_certificates(path).map_err(|e| unusable(e.to_string()))?
        {
            roots.add(certificate).map_err(|e| unusable(format!("{}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Config(
            "no certificate to check PostgreSQL's against: give --postgres-ca".into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Integer(i), t) if is_text(t) => i.to_string().to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(s), t) if is_text(t) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (value, ty) => Err(format!("cannot pass {value:?} as a {ty} parameter").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            ref t if is_text(t) => Value::Text(String::from_sql(ty, raw)?),
            ref t => return Err(format!("cannot read a {t} column (cast it in the query)").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["oakfield", "oakfield_primary", "_x", "school12"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(64);
        for bad in ["", "Oakfield", "12school", "oak-field", "oak;drop", "pg_catalog", &too_long] {
            let error = check_schema_name(bad).unwrap_err().to_string();
            assert!(error.contains("is not usable"), "{bad}: {error}");
        }
    }
}
