//! The database schema as an ordered list of migrations, one file per engine each:
//! `server/migrations/sqlite/NNNN_name.sql` and `server/migrations/postgres/NNNN_name.sql`,
//! the same change in each dialect. Append new migrations; never edit one that has shipped,
//! since databases in schools already ran it.
//!
//! A database records how many it has had: SQLite in `PRAGMA user_version` (through
//! `rusqlite_migration`), PostgreSQL as rows of `schema_migrations` (see `postgres.rs`).
//! `tests/it/store_story.rs` checks that the two engines' schemas come out equal.

use rusqlite_migration::{Migrations, M};

/// One migration in both dialects. PostgreSQL's differs from SQLite's only in types: 64-bit
/// integers (`BIGINT`: SQLite's INTEGER is 64-bit), `BYTEA` for BLOB, identity columns for the
/// `id INTEGER PRIMARY KEY` row ids (a sequence never reuses a value, like AUTOINCREMENT), and
/// no STRICT (PostgreSQL's columns always are).
struct Migration {
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// `migration!("0001_x")`: both engines' files of that name, or a build error if either is
/// missing.
macro_rules! migration {
    ($name:literal) => {
        Migration {
            name: $name,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in order: a database at version N has had the first N.
const MIGRATIONS: &[Migration] = &[
    // Devices, their enrollment tokens, the roster, and what devices send.
    migration!("0001_devices_roster_events"),
    // Staff accounts, sessions, the audit log, incidents and the manual device register.
    migration!("0002_staff_incidents_register"),
    // What devices are told: classes, tile details of pupils, apps, settings, filter lists and
    // profiles, bypasses; teacher commands; which teachers have which classes.
    migration!("0003_device_policy"),
    // Picture PINs for older pupils: the pictures (symbol names) to tap in order, as a JSON
    // array; NULL when the pupil has none. Not a secret from staff (it keeps classmates apart).
    migration!("0004_picture_pins"),
    // The domain names a device looked up just before a press (a JSON array, newest first):
    // what the pupil's browser reached, without any page content.
    migration!("0005_recent_names"),
    // Each member of staff's own unlock PIN (argon2id; devices get it with `unlock_id`, a
    // random pseudonymous id made when the first PIN is set and kept after, never the name).
    // The one school-wide staff PIN goes: an unlock with it could not say who it was.
    migration!("0006_staff_unlock_pins"),
    // What each event said of the device's clock (NULL: the device did not say; older
    // software), and sessions the server ended itself (issues 12 and 13).
    migration!("0007_clock_evidence"),
    // One-time links that recover a staff account, made by `slate-server staff recover` on the
    // server's own console (issue 14: no back door). Only the link's hash is kept.
    migration!("0008_recovery_links"),
    // The alerts outbox.
    migration!("0009_alert_outbox"),
    // Indexes for the DSL's pupil chronology and filtering log (issue 17).
    migration!("0010_search_indexes"),
    // A device credential's lifecycle: replaced without losing a reply, and revoked (issue 14).
    migration!("0011_device_credentials"),
    // One enrollment token for a class set of devices, each use one new device (issue 15).
    migration!("0012_class_set_tokens"),
    // Updates: bundles IT uploaded, rollouts, each device's last report and failed versions
    // (issue 16).
    migration!("0013_updates"),
    // Incidents a teacher or the DSL records by hand: a `reports` row of origin 'recorded'
    // with the account, its device optional (issue 17).
    migration!("0014_recorded_incidents"),
    // Pupils with the same first name and initial kept apart: the family name's first
    // letters and the MIS id a re-import recognises them by (issue 17).
    migration!("0015_pupil_identity"),
    // A pupil marked as left rather than deleted: their records stay for the DSL (issue 17).
    migration!("0016_pupils_left"),
    // The alerts outbox also carries alert rules' alerts and escalations (issue 17).
    migration!("0017_alert_rules"),
    // Whether the retention schedule's purge of a leaver's records has finished for their
    // leaving, so the daily job does not scan the raw events for them again (issue 17).
    migration!("0018_leavers_purged"),
    // Sites staff asked to block on unlocking a held device, one pending entry per site, and
    // each unlock that asked, for the DSL or IT to accept into a school list (issue 17).
    migration!("0019_block_requests"),
    // A school's own acceptable use agreements, every saved version kept (issue 17).
    migration!("0020_school_agreements"),
    // An update bundle IT removed: its file deleted, its row kept for its rollouts (issue 16).
    migration!("0021_update_bundles_removed"),
    // A new site block request alerts the DSL and IT: a fourth kind of alert (issue 17).
    migration!("0022_block_request_alerts"),
    // IT's list of which device number each Raspberry Pi serial or MAC address gets, for a
    // class set from one card image (issue 15).
    migration!("0023_device_serials"),
    // The DSL's termly filter check and the built-in check's runs (issue 17).
    migration!("0024_filter_checks"),
    // The languages page: each class whose screens' language differs from the school's
    // (issue 17); the school's own is a setting.
    migration!("0025_class_languages"),
    // A built-in filter check's answers kept with the check, not only as device events that
    // the retention schedule purges long before the check (issue 17).
    migration!("0026_filter_check_answers"),
    // The outbox's rows of one incident by index: the escalation check no longer scans the
    // outbox once per open incident (issue 17).
    migration!("0027_alert_outbox_by_incident"),
    // Timed root ssh on one device, opened by IT from the server: each command's keys and
    // until when.
    migration!("0028_ssh_access"),
];

pub fn migrations() -> Migrations<'static> {
    Migrations::new(
        MIGRATIONS.iter().map(|m| M::up(m.sqlite).comment(m.name).foreign_key_check()).collect(),
    )
}

/// The migrations in PostgreSQL's dialect, in order.
pub fn postgres_migrations() -> Vec<&'static str> {
    MIGRATIONS.iter().map(|m| m.postgres).collect()
}

pub fn migrations_count() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_gets_bigints_bytea_identities_and_no_strict() {
        for m in MIGRATIONS {
            let statements: String =
                m.postgres.lines().filter(|line| !line.trim_start().starts_with("--")).collect();
            for sqlite_only in ["INTEGER", "BLOB", "STRICT", "AUTOINCREMENT"] {
                assert!(!statements.contains(sqlite_only), "{}: {sqlite_only}", m.name);
            }
            // A table SQLite rebuilds (`new_x`, renamed to `x`) PostgreSQL alters in place.
            let new_tables: Vec<&str> = m
                .sqlite
                .split("CREATE TABLE ")
                .skip(1)
                .filter(|table| !table.starts_with("new_"))
                .collect();
            let tables = new_tables.len();
            assert_eq!(m.postgres.matches("CREATE TABLE").count(), tables, "{}", m.name);
            let all_tables = m.sqlite.matches("CREATE TABLE").count();
            assert_eq!(m.sqlite.matches(") STRICT;").count(), all_tables, "{}: STRICT", m.name);
            let row_ids: usize = new_tables
                .iter()
                .map(|table| {
                    table.matches("INTEGER PRIMARY KEY,").count()
                        + table.matches("INTEGER PRIMARY KEY AUTOINCREMENT,").count()
                })
                .sum();
            let identities = m.postgres.matches("BIGINT GENERATED BY DEFAULT AS IDENTITY").count();
            assert_eq!(identities, row_ids, "{}: identities", m.name);
        }
    }

    #[test]
    fn both_dialects_have_every_migration() {
        assert_eq!(postgres_migrations().len(), MIGRATIONS.len());
        // Numbered from 1 with no gap, and no file in either directory left out of the list.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.name)).collect();
        for (n, name) in (1..).zip(&listed) {
            assert!(name.starts_with(&format!("{n:04}_")), "{name} is not number {n}");
        }
        for engine in ["sqlite", "postgres"] {
            let mut files: Vec<String> = std::fs::read_dir(root.join(engine))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            assert_eq!(files, listed, "{engine}");
        }
    }
}
