//! Backups of a server that keeps its records in PostgreSQL: the database (or the school's own
//! schema in a trust's shared database) is dumped with PostgreSQL's own `pg_dump` (its custom
//! format, one consistent snapshot while the server goes on) and brought back with
//! `pg_restore`, both from Debian's `postgresql-client`.
//!
//! The tools get the server's address through libpq's environment, never their command line (it
//! may hold a password, and every user can read a process's arguments): the password goes in a
//! private password file. A TLS address is checked as the server checks it (`verify-full`,
//! against the system's certificates and the trust's CA file).

use anyhow::{bail, Context};
use postgres::config::{Host, SslMode};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system's certificates, which the server trusts for TLS too (Debian's bundle).
const SYSTEM_CERTIFICATES: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The PostgreSQL database a server keeps its records in, as IT gave it to the server.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    /// `postgresql://…` or `host=… dbname=…`.
    pub url: String,
    /// A PEM file of certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The school's own schema in a shared database (`None`: the user's default).
    pub schema: Option<String>,
}

/// How libpq's tools reach the database: environment variables, and the password for a
/// private password file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Libpq {
    pub env: Vec<(&'static str, String)>,
    pub password: Option<String>,
    /// For `--dbname`: libpq's default is the user's name.
    pub dbname: String,
    /// TLS is on: the tools need a file of the certificates they trust (`PGSSLROOTCERT`).
    pub tls: bool,
}

/// libpq's settings for `url` (parsed as the server parses it). Pure: the files are written by
/// [`ToolRun`].
pub fn libpq_settings(url: &str) -> anyhow::Result<Libpq> {
    // The address is not repeated in errors: it may hold a password.
    let config: postgres::Config =
        url.parse().map_err(|e| anyhow::anyhow!("cannot read the PostgreSQL address: {e}"))?;
    let mut env = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.to_string_lossy().into_owned(),
        })
        .collect();
    if hosts.is_empty() {
        bail!("the PostgreSQL address names no host (host=/run/postgresql for the local socket)");
    }
    env.push(("PGHOST", hosts.join(",")));
    let addresses: Vec<String> = config.get_hostaddrs().iter().map(|a| a.to_string()).collect();
    if !addresses.is_empty() {
        env.push(("PGHOSTADDR", addresses.join(",")));
    }
    let ports: Vec<String> = config.get_ports().iter().map(|p| p.to_string()).collect();
    if !ports.is_empty() {
        env.push(("PGPORT", ports.join(",")));
    }
    let user = config.get_user().context("the PostgreSQL address names no user")?.to_owned();
    env.push(("PGUSER", user.clone()));
    let dbname = config.get_dbname().map_or(user, str::to_owned);
    let tls = match config.get_ssl_mode() {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        // The server checks the certificate and the name; so do the tools.
        SslMode::Require => "verify-full",
        _ => bail!("the PostgreSQL address asks for a TLS mode the backup does not know"),
    };
    env.push(("PGSSLMODE", tls.to_owned()));
    let password = match config.get_password() {
        Some(bytes) => Some(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| anyhow::anyhow!("the PostgreSQL password is not UTF-8"))?,
        ),
        None => None,
    };
    Ok(Libpq { env, password, dbname, tls: tls == "verify-full" })
}

/// A line of libpq's password file that matches any host, port, database and user.
pub fn password_file_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:*:{escaped}\n")
}

/// Runs `pg_dump` or `pg_restore` against one database, with the files libpq needs in a
/// private folder.
pub struct ToolRun<'a> {
    database: &'a PgDatabase,
    settings: Libpq,
    scratch: &'a Path,
}

impl<'a> ToolRun<'a> {
    /// `scratch`: a private folder (it gets the password file), removed by the caller.
    pub fn new(database: &'a PgDatabase, scratch: &'a Path) -> anyhow::Result<Self> {
        Ok(Self { database, settings: libpq_settings(&database.url)?, scratch })
    }

    fn command(&self, program: &str) -> anyhow::Result<Command> {
        let mut command = Command::new(program);
        // Only what the server was told: none of the caller's own PG* settings.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("PG")) {
                command.env_remove(name);
            }
        }
        command.envs(self.settings.env.iter().map(|(k, v)| (*k, v)));
        let passfile = self.scratch.join("pgpass");
        let line = self.settings.password.as_deref().map(password_file_line).unwrap_or_default();
        crate::data_dir::write_private_file(&passfile, line.as_bytes())?;
        command.env("PGPASSFILE", &passfile);
        if self.settings.tls {
            let roots = self.scratch.join("trusted-certificates.pem");
            let mut pem = std::fs::read(SYSTEM_CERTIFICATES).unwrap_or_default();
            if let Some(ca) = &self.database.ca_file {
                pem.push(b'\n');
                pem.extend(
                    std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?,
                );
            }
            crate::data_dir::write_private_file(&roots, &pem)?;
            command.env("PGSSLROOTCERT", roots);
        }
        Ok(command)
    }

    /// `pg_dump` of the database (or the school's schema) into `out`, custom format.
    pub fn dump(&self, out: &Path) -> anyhow::Result<()> {
        let mut command = self.command("pg_dump")?;
        command.args(["--format=custom", "--no-owner", "--no-privileges"]);
        if let Some(schema) = &self.database.schema {
            command.arg(format!("--schema={schema}"));
        }
        command.arg("--file").arg(out).arg("--dbname").arg(&self.settings.dbname);
        run(command, "pg_dump")
    }

    /// `pg_restore` of `dump` into the database (emptied by the caller), in one transaction.
    pub fn restore(&self, dump: &Path) -> anyhow::Result<()> {
        let mut command = self.command("pg_restore")?;
        command.args(["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]);
        command.arg("--dbname").arg(&self.settings.dbname).arg(dump);
        run(command, "pg_restore")
    }
}

fn run(mut command: Command, program: &str) -> anyhow::Result<()> {
    let output = match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{program} is not installed: install Debian's postgresql-client (apt install postgresql-client)")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot run {program}")),
    };
    if !output.status.success() {
        // PostgreSQL's own words (they name tables and hosts, never the password or any row).
        let said = String::from_utf8_lossy(&output.stderr);
        bail!("{program} failed ({}): {}", output.status, said.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(settings: &Libpq) -> Vec<String> {
        settings.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn the_address_becomes_libpqs_environment_and_the_password_stays_out_of_it() {
        let local = libpq_settings("host=/run/postgresql dbname=slate user=slate").unwrap();
        assert_eq!(env(&local), ["PGHOST=/run/postgresql", "PGUSER=slate", "PGSSLMODE=prefer"]);
        assert_eq!((local.dbname.as_str(), local.password, local.tls), ("slate", None, false));

        let remote = libpq_settings(
            "postgresql://school12:s3cr%3At@db.trust.example:6432/slate?sslmode=require",
        )
        .unwrap();
        assert_eq!(
            env(&remote),
            ["PGHOST=db.trust.example", "PGPORT=6432", "PGUSER=school12", "PGSSLMODE=verify-full"]
        );
        assert_eq!(remote.password.as_deref(), Some("s3cr:t"));
        assert!(remote.tls, "checked as the server checks it");
        assert!(!env(&remote).iter().any(|v| v.contains("s3cr")));

        let addressed =
            libpq_settings("host=localhost hostaddr=127.0.0.1 port=5433 user=slate").unwrap();
        assert_eq!(
            env(&addressed),
            [
                "PGHOST=localhost",
                "PGHOSTADDR=127.0.0.1",
                "PGPORT=5433",
                "PGUSER=slate",
                "PGSSLMODE=prefer"
            ]
        );
        assert_eq!(addressed.dbname, "slate", "libpq's default: the user's name");

        for refused in ["dbname=slate user=slate", "host=/run/postgresql dbname=slate", "%%%"] {
            let error = libpq_settings(refused).unwrap_err().to_string();
            assert!(error.contains("PostgreSQL address"), "{refused}: {error}");
        }
    }

    #[test]
    fn the_password_file_escapes_what_libpq_reads_as_separators() {
        assert_eq!(password_file_line("plain"), "*:*:*:*:plain\n");
        assert_eq!(password_file_line(r"a:b\c"), r"*:*:*:*:a\:b\\c".to_owned() + "\n");
    }
}
