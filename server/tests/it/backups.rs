//! Backups of a server on PostgreSQL, as IT takes them: the real binary's `backup` and `restore`
//! with `SLATE_DATABASE_URL`, Debian's `pg_dump` and `pg_restore`, and two private PostgreSQL
//! servers, the old machine's and the new one's. (A server on SQLite: tests/tests/server_backup.rs,
//! with a real slated.)

use crate::postgres::TestPostgres;
use slate_server::store::PostgresOptions;
use slate_server::Store;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_slate-server");
const OAKFIELD: &str = "oakfield_primary";

/// The binary on `data_dir`, on the cluster at `url` in `schema`.
fn slate(data_dir: &Path, url: Option<&str>, schema: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).arg("--data-dir").arg(data_dir);
    for name in ["SLATE_DATABASE_URL", "SLATE_DATABASE_SCHEMA", "SLATE_DATABASE_CA"] {
        command.env_remove(name);
    }
    if let Some(url) = url {
        command.env("SLATE_DATABASE_URL", url);
    }
    if let Some(schema) = schema {
        command.env("SLATE_DATABASE_SCHEMA", schema);
    }
    command.output().unwrap()
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn refused(output: Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

/// The school's store as its server opens it: TOTP seeds sealed with the data directory's key.
fn school(cluster: &TestPostgres, schema: &str, data_dir: &Path) -> Store {
    let options = PostgresOptions { ca_file: None, schema: Some(schema) };
    let key = slate_server::data_dir::DataDir::open(data_dir).unwrap().totp_key().unwrap();
    Store::connect_postgres(&cluster.url, options)
        .unwrap()
        .with_totp_seal(slate_server::totp_seal::TotpSeal::new(key))
        .unwrap()
}

/// The names inside a backup, and its manifest, opened as IT would with `age -d`.
fn open_backup(identity: &age::x25519::Identity, file: &Path) -> (Vec<String>, String) {
    let sealed = std::fs::File::open(file).unwrap();
    let decryptor = age::Decryptor::new(sealed).unwrap();
    let reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).unwrap();
    let mut archive = tar::Archive::new(zstd::stream::read::Decoder::new(reader).unwrap());
    let mut names = Vec::new();
    let mut manifest = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == "slate-backup.txt" {
            entry.read_to_string(&mut manifest).unwrap();
        }
        names.push(name);
    }
    (names, manifest)
}

#[test]
fn a_schools_postgres_schema_is_backed_up_with_pg_dump_and_restored_on_a_new_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let old = TestPostgres::start();
    let old_dir = tmp.path().join("old");
    // Two schools of a trust share the database; Oakfield's server is backed up.
    let oakfield = (Some(old.url.as_str()), Some(OAKFIELD));
    ok(slate(
        &old_dir,
        oakfield.0,
        oakfield.1,
        &["pupil", "add", "--id", "p-7f3a9c", "--name", "Łucja K.", "--class", "Year 2"],
    ));
    // Set up as IT sets a server up: its CA and certificate, the policy key, the DSL's account.
    ok(slate(
        &old_dir,
        oakfield.0,
        oakfield.1,
        &[
            "init",
            "--school",
            "Oakfield Primary",
            "--host",
            "slate.oakfield.test",
            "--dsl",
            "a.dsl",
        ],
    ));
    let birchwood_dir = tmp.path().join("birchwood");
    ok(slate(
        &birchwood_dir,
        Some(&old.url),
        Some("birchwood"),
        &["pupil", "add", "--id", "p-0000aa", "--name", "Ben T.", "--class", "Year 6"],
    ));

    let identity = age::x25519::Identity::generate();
    let identity_file = tmp.path().join("it.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&identity_file, identity.to_string().expose_secret()).unwrap();
    }
    let recipient = identity.to_public().to_string();
    let backup = tmp.path().join("nightly.age");
    let said = ok(slate(
        &old_dir,
        oakfield.0,
        oakfield.1,
        &["backup", "--recipient", &recipient, "--out", backup.to_str().unwrap()],
    ));
    assert!(said.starts_with("backup written: "), "{said}");
    let (names, manifest) = open_backup(&identity, &backup);
    assert!(names.contains(&"slate.pgdump".to_owned()), "{names:?}");
    assert!(!names.contains(&"slate.sqlite".to_owned()), "{names:?}");
    for key in ["policy-key", "totp-key", "tls/cert.pem"] {
        assert!(names.contains(&key.to_owned()), "{key} in {names:?}");
    }
    assert!(manifest.contains("database postgresql\nschema oakfield_primary\n"), "{manifest}");

    // The new machine: its own cluster, its server just installed (it made tables and keys).
    let new = TestPostgres::start();
    let new_dir = tmp.path().join("new");
    let in_new = (Some(new.url.as_str()), Some(OAKFIELD));
    ok(slate(&new_dir, in_new.0, in_new.1, &["enrollment-token", "--device", "1"]));
    let restore =
        ["restore", "--identity", identity_file.to_str().unwrap(), backup.to_str().unwrap()];

    // Told to restore without PostgreSQL, or into another school's schema: refused, nothing moved.
    let said = refused(slate(&tmp.path().join("elsewhere"), None, None, &restore));
    assert!(said.contains("give --postgres and --postgres-schema"), "{said}");
    let said = refused(slate(&new_dir, in_new.0, Some("birchwood"), &restore));
    assert!(said.contains("of PostgreSQL schema oakfield_primary, not schema birchwood"), "{said}");
    let fresh_totp_key = std::fs::read(new_dir.join("totp-key")).unwrap();

    let said = ok(slate(&new_dir, in_new.0, in_new.1, &restore));
    assert!(said.starts_with("restored into "), "{said}");
    let store = school(&new, OAKFIELD, &new_dir);
    assert!(store.pupil_known(&slate_protocol::PupilId::new("p-7f3a9c").unwrap()).unwrap());
    assert!(store.staff_by_username("a.dsl").unwrap().is_some(), "the DSL's account came back");
    assert!(
        !store.pupil_known(&slate_protocol::PupilId::new("p-0000aa").unwrap()).unwrap(),
        "only Oakfield's records"
    );
    assert_eq!(
        std::fs::read(new_dir.join("policy-key")).unwrap(),
        std::fs::read(old_dir.join("policy-key")).unwrap(),
        "the key every device trusts"
    );
    assert_ne!(std::fs::read(new_dir.join("totp-key")).unwrap(), fresh_totp_key, "set aside");
    assert!(!new_dir.join("slate.pgdump").exists() && !new_dir.join("restore-tools").exists());
    // The restored server opens it as its own: admin commands work on it.
    ok(slate(&new_dir, in_new.0, in_new.1, &["enrollment-token", "--device", "12"]));

    // Restoring again over it is refused: it holds the school's records now.
    let said = refused(slate(&new_dir, in_new.0, in_new.1, &restore));
    assert!(said.contains("holds devices, staff or events"), "{said}");
    assert!(school(&new, OAKFIELD, &new_dir).staff_by_username("a.dsl").unwrap().is_some());
}
