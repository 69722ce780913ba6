//! Backups of a school server: `slate-server backup` writes one file, encrypted to IT's age key
//! (the server holds only the public half, `age1…`, so a stolen backup folder reads as noise),
//! holding a consistent copy of the SQLite database and everything in the data directory a
//! restored server needs so that every enrolled device goes on working: the policy key devices
//! trust, the TOTP key, the staff key, the TLS certificate and key devices were given, and the
//! filter list files. `slate-server restore` brings it back into an empty data directory on a
//! fresh machine. The file is a zstd-compressed tar inside age's format, so IT can also open it
//! by hand: `age -d -i KEY FILE | tar --zstd -x`. A server on PostgreSQL is backed up the same
//! way, its database dumped by `pg_dump` ([`pg_dump`]).

mod pg_dump;
pub use pg_dump::PgDatabase;

use crate::data_dir::DataDir;
use crate::store::Store;
use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// zstd's level for the tar inside a backup: its default, fast and several times smaller.
const ZSTD_LEVEL: i32 = 3;
/// The first entry of every backup: what wrote it, when.
const MANIFEST: &str = "slate-backup.txt";
/// The database inside the backup: a SQLite file, or PostgreSQL's dump of the database.
const DATABASE: &str = "slate.sqlite";
const PG_DUMP: &str = "slate.pgdump";
/// Files of the data directory a restored server needs (when they exist). Update bundles are
/// not kept (hundreds of megabytes each, and IT has them): after a restore, `update add` of the
/// same file puts it back.
const KEY_FILES: [&str; 4] = ["policy-key", "totp-key", "staff-key", "update-ca.pem"];
/// Folders of the data directory a restored server needs (when they exist).
const FOLDERS: [&str; 2] = ["tls", "lists"];

/// What a backup holds, for the command's one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
}

/// IT's public key, `age1…`.
pub fn parse_recipient(text: &str) -> anyhow::Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|e| {
        anyhow::anyhow!("--recipient {:?} is not an age public key (age1…): {e}", text.trim())
    })
}

/// Where the server keeps its records, for the copy in a backup.
#[derive(Clone, Copy)]
pub enum DatabaseSource<'a> {
    /// The data directory's SQLite file, copied through the open store.
    Sqlite(&'a Store),
    /// PostgreSQL (the school's schema if it has one), dumped by `pg_dump`.
    Postgres(&'a PgDatabase),
}

/// Writes the backup of `data_dir` and its database to `out`, encrypted to `recipient`.
pub fn write(
    data_dir: &DataDir,
    database: DatabaseSource<'_>,
    recipient: &age::x25519::Recipient,
    out: impl Write,
) -> anyhow::Result<Summary> {
    // The database copy goes through a private folder of the data directory: it holds pupil data.
    let scratch = data_dir.root().join("backup-scratch");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("cannot clear {}", scratch.display()))?;
    }
    crate::data_dir::create_private_dir(&scratch)?;
    let (copy_name, engine) = match database {
        DatabaseSource::Sqlite(_) => (DATABASE, "database sqlite\n".to_owned()),
        DatabaseSource::Postgres(pg) => (
            PG_DUMP,
            format!(
                "database postgresql\n{}",
                pg.schema.as_ref().map(|s| format!("schema {s}\n")).unwrap_or_default()
            ),
        ),
    };
    let copy = scratch.join(copy_name);
    let result = (|| {
        match database {
            DatabaseSource::Sqlite(store) => {
                store.copy_sqlite_to(&copy).context("cannot copy the database")?
            }
            DatabaseSource::Postgres(pg) => pg_dump::ToolRun::new(pg, &scratch)?
                .dump(&copy)
                .context("cannot dump the PostgreSQL database")?,
        }
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .context("cannot set up the encryption")?;
        let sealed = encryptor.wrap_output(out).context("cannot start the backup file")?;
        // Compressed before it is encrypted (encrypted bytes do not compress): a database
        // shrinks several times, which matters with 14 nightly copies kept.
        let mut packed = zstd::stream::write::Encoder::new(sealed, ZSTD_LEVEL)?;
        let summary = write_tar(data_dir.root(), (copy_name, &copy), &engine, &mut packed)?;
        let sealed = packed.finish().context("cannot finish the backup file")?;
        sealed.finish().context("cannot finish the backup file")?.flush()?;
        Ok(summary)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn write_tar(
    root: &Path,
    (database_name, database): (&str, &Path),
    engine: &str,
    out: impl Write,
) -> anyhow::Result<Summary> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut summary = Summary { files: 0, bytes: 0 };
    let manifest = format!(
        "slate-server {} backup\ncreated {}\n{engine}",
        env!("CARGO_PKG_VERSION"),
        chrono::Utc::now().to_rfc3339()
    );
    let mut add = |name: &str, path: Option<&Path>, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o600);
        match path {
            Some(path) => {
                let mut file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let len = file.metadata()?.len();
                header.set_size(len);
                tar.append_data(&mut header, name, &mut file)?;
                summary.bytes += len;
            }
            None => {
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, name, bytes)?;
                summary.bytes += bytes.len() as u64;
            }
        }
        summary.files += 1;
        Ok(())
    };
    add(MANIFEST, None, manifest.as_bytes())?;
    add(database_name, Some(database), &[])?;
    for name in KEY_FILES {
        let path = root.join(name);
        if path.exists() {
            add(name, Some(&path), &[])?;
        }
    }
    for folder in FOLDERS {
        let dir = root.join(folder);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for path in names.into_iter().filter(|p| p.is_file()) {
            let file_name = path.file_name().and_then(|n| n.to_str()).context("a file name")?;
            add(&format!("{folder}/{file_name}"), Some(&path), &[])?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(summary)
}

/// Where an entry of a backup may go in the data directory, or why it may not.
pub fn entry_target(name: &str) -> Result<PathBuf, String> {
    let path = Path::new(name);
    let plain = path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    let allowed = match path.components().count() {
        1 => [MANIFEST, DATABASE, PG_DUMP].contains(&name) || KEY_FILES.contains(&name),
        2 => FOLDERS.iter().any(|folder| path.starts_with(folder)),
        _ => false,
    };
    if plain && allowed {
        Ok(path.to_owned())
    } else {
        Err(format!("the backup holds {name:?}, which is not part of a Slate data directory"))
    }
}

/// Restores a backup into `root`: an empty data directory, or a just-installed server's (whose
/// database holds no devices, staff or events; what it made is set aside in
/// `before-restore-<time>/`). With `postgres`, the backup's dump goes into that database (or
/// the school's schema), which must hold no devices, staff or events yet. Nothing with data in
/// it is overwritten. Returns what was restored.
pub fn restore(
    root: &Path,
    identity: &age::x25519::Identity,
    input: impl Read,
    postgres: Option<&PgDatabase>,
) -> anyhow::Result<Summary> {
    // Refused before anything is read or moved.
    match postgres {
        None => {
            let existing = root.join(DATABASE);
            if existing.exists() {
                let store = Store::open(&existing)
                    .context("the data directory's database cannot be opened")?;
                if !store.is_pristine()? {
                    bail!(
                        "{} holds a database with devices, staff or events: restore into an empty data directory (nothing is overwritten)",
                        root.display()
                    );
                }
            }
        }
        Some(pg) => {
            if !connect(pg)?.is_pristine()? {
                bail!(
                    "the PostgreSQL database{} holds devices, staff or events: restore into an empty one (nothing is overwritten)",
                    pg.schema.as_ref().map(|s| format!(" (schema {s})")).unwrap_or_default()
                );
            }
        }
    }
    let decryptor =
        age::Decryptor::new(input).context("this is not a Slate backup (not an age file)")?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .context("the backup does not open with this key")?;
    // Unpacked aside and checked first, then moved in: a damaged backup changes nothing.
    crate::data_dir::create_private_dir(root)?;
    let staging = root.join("restore-staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    crate::data_dir::create_private_dir(&staging)?;
    let result = unpack(reader, &staging).and_then(|(summary, held)| {
        match (&held, postgres) {
            (Held::Sqlite, Some(_)) => {
                bail!("this backup is of a server on SQLite: restore it without --postgres")
            }
            (Held::Sqlite, None) => {}
            (Held::Postgres { schema }, pg) => {
                restore_postgres(root, &staging, schema.as_deref(), pg)?
            }
        }
        set_aside_fresh_server(root)?;
        for name in std::fs::read_dir(&staging)?.flatten().map(|e| e.file_name()) {
            if name != MANIFEST && name != PG_DUMP {
                std::fs::rename(staging.join(&name), root.join(&name))?;
            }
        }
        Ok(summary)
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// The database a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Sqlite,
    /// A dump, of the school's schema when the manifest names one.
    Postgres {
        schema: Option<String>,
    },
}

/// The schema a PostgreSQL backup's manifest names (`schema NAME`).
fn manifest_schema(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| line.strip_prefix("schema ")).map(|s| s.trim().to_owned())
}

fn connect(pg: &PgDatabase) -> anyhow::Result<Store> {
    let options = crate::store::PostgresOptions {
        ca_file: pg.ca_file.as_deref(),
        schema: pg.schema.as_deref(),
    };
    Store::connect_postgres(&pg.url, options).context("cannot open the PostgreSQL database")
}

/// `pg_restore` of the backup's dump into the database IT named, then the schema brought up to
/// date (a backup from an older release).
fn restore_postgres(
    root: &Path,
    staging: &Path,
    schema: Option<&str>,
    postgres: Option<&PgDatabase>,
) -> anyhow::Result<()> {
    let named = schema.map(|s| format!(" (schema {s})")).unwrap_or_default();
    let Some(pg) = postgres else {
        bail!(
            "this backup is of a server on PostgreSQL{named}: give --postgres{} to restore it",
            if schema.is_some() { " and --postgres-schema" } else { "" }
        );
    };
    if pg.schema.as_deref() != schema {
        let describe =
            |s: Option<&str>| s.map_or("no schema".to_owned(), |s| format!("schema {s}"));
        bail!(
            "this backup is of PostgreSQL {}, not {}: give --postgres-schema as the backed-up server had it",
            describe(schema),
            describe(pg.schema.as_deref())
        );
    }
    // The password file goes in a folder of its own, never into the data directory's files.
    let tools = root.join("restore-tools");
    crate::data_dir::create_private_dir(&tools)?;
    // What a fresh server made goes (it held nothing: checked again in the same transaction);
    // if pg_restore then fails, the next start of the server makes it again.
    connect(pg)?
        .clear_pristine_postgres(schema)
        .context("the PostgreSQL database cannot be emptied for the backup")?;
    let restored = pg_dump::ToolRun::new(pg, &tools)
        .and_then(|run| run.restore(&staging.join(PG_DUMP)))
        .context("the PostgreSQL database was not restored (pg_restore's transaction changed nothing: the database is left empty)");
    let _ = std::fs::remove_dir_all(&tools);
    restored?;
    connect(pg).context("the restored PostgreSQL database cannot be opened")?;
    Ok(())
}

/// Unpacks a decrypted backup into `staging`, checking every entry and the database.
fn unpack(reader: impl Read, staging: &Path) -> anyhow::Result<(Summary, Held)> {
    let mut summary = Summary { files: 0, bytes: 0 };
    let mut manifest = None;
    let reader = zstd::stream::read::Decoder::new(reader).context("the backup is damaged")?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("the backup is damaged")? {
        let mut entry = entry.context("the backup is damaged")?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("the backup holds something that is not a file");
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let target = staging.join(entry_target(&name).map_err(anyhow::Error::msg)?);

        if let Some(parent) = target.parent() {
            crate::data_dir::create_private_dir(parent)?;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).context("the backup is damaged")?;
        crate::data_dir::write_private_file(&target, &bytes)?;
        if name == MANIFEST {
            manifest = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        summary.files += 1;
        summary.bytes += bytes.len() as u64;
    }
    let Some(manifest) = manifest else {
        bail!("this is not a Slate backup: it has no {MANIFEST}");
    };
    let held = match (staging.join(DATABASE).exists(), staging.join(PG_DUMP).exists()) {
        (true, false) => Held::Sqlite,
        (false, true) => Held::Postgres { schema: manifest_schema(&manifest) },
        _ => bail!("this is not a Slate backup: it holds no database, or two"),
    };
    if held == Held::Sqlite {
        // Opening it checks it and brings an older backup's schema up to date.
        Store::open(&staging.join(DATABASE)).context("the backup's database cannot be opened")?;
    }
    Ok((summary, held))
}

/// A server just installed (its service started once) made a database and keys of its own with
/// nothing in them (checked before): they go to `before-restore-<time>/`, never deleted.
fn set_aside_fresh_server(root: &Path) -> anyhow::Result<()> {
    let mut aside = None;
    for name in std::iter::once(DATABASE).chain(KEY_FILES).chain(FOLDERS) {
        for file in [name.to_owned(), format!("{name}-wal"), format!("{name}-shm")] {
            let path = root.join(&file);
            if path.exists() {
                let aside = aside.get_or_insert_with(|| {
                    root.join(format!(
                        "before-restore-{}",
                        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                    ))
                });
                crate::data_dir::create_private_dir(aside)?;
                std::fs::rename(&path, aside.join(&file))?;
            }
        }
    }
    if let Some(aside) = aside {
        tracing::info!(folder = %aside.display(), "the fresh server's own database and keys were set aside");
    }
    Ok(())
}

/// The backups in `dir` this command wrote (`slate-server-<time>.age`), oldest first.
fn backups_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("slate-server-") && n.ends_with(".age"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Which of `backups` (oldest first) to delete to keep the newest `keep`.
pub fn to_prune(backups: &[PathBuf], keep: usize) -> &[PathBuf] {
    &backups[..backups.len().saturating_sub(keep)]
}

/// Writes a new backup into `dir` as `slate-server-<UTC time>.age` (written aside, then renamed,
/// so a cut leaves no half file under that name) and deletes the oldest beyond `keep`.
pub fn write_into(
    data_dir: &DataDir,
    database: DatabaseSource<'_>,
    recipient: &age::x25519::Recipient,
    dir: &Path,
    keep: usize,
) -> anyhow::Result<(PathBuf, Summary)> {
    crate::data_dir::create_private_dir(dir)?;
    let name = format!("slate-server-{}.age", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut file = std::io::BufWriter::new(file);
    let summary = write(data_dir, database, recipient, &mut file)?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    let all = backups_in(dir)?;
    for old in to_prune(&all, keep) {
        std::fs::remove_file(old).with_context(|| format!("cannot delete {}", old.display()))?;
    }
    Ok((path, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_directorys_own_files_are_restored() {
        let cases = [
            ("slate.sqlite", true),
            ("slate.pgdump", true),
            ("policy-key", true),
            ("totp-key", true),
            ("update-ca.pem", true),
            ("updates/3f2a.raucb", false),
            ("lists/3f2a.txt", true),
            ("tls/cert.pem", true),
            ("slate-backup.txt", true),
            ("../etc/passwd", false),
            ("/etc/passwd", false),
            ("lists/../../x", false),
            ("tls/a/b", false),
            ("authorized_keys", false),
            ("lists", false),
        ];
        for (name, allowed) in cases {
            assert_eq!(entry_target(name).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn the_newest_are_kept() {
        let backups: Vec<PathBuf> = (1..=5).map(|n| PathBuf::from(format!("b{n}"))).collect();
        assert_eq!(to_prune(&backups, 3), &backups[..2]);
        assert!(to_prune(&backups, 5).is_empty());
        assert!(to_prune(&backups, 9).is_empty());
        assert_eq!(to_prune(&backups, 0), &backups[..]);
    }
}
