//! A private PostgreSQL server for one test, from Debian's `postgresql` package: a fresh
//! cluster in a temporary directory, listening on a Unix socket in it and on no TCP port at
//! all, stopped when dropped.
//!
//! `SLATE_TEST_DATABASE=postgres` runs every test that uses [`crate::common::TestServer`] on
//! one of these instead of a SQLite file (scripts/test does, for the whole suite).

use slate_server::Store;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A guard against hangs, never a speed target.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestPostgres {
    server: Child,
    /// The connection string for [`Store::connect_postgres`].
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Whether the tests were asked to run the server on PostgreSQL.
pub fn requested() -> bool {
    match std::env::var("SLATE_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("SLATE_TEST_DATABASE={other:?}: expected postgres or sqlite"),
    }
}

impl TestPostgres {
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        // PostgreSQL refuses to run as root; as root (CI), it runs as the package's user.
        let owner = running_as_root().then(postgres_user);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "slate", "-E", "UTF8"]);
        // --no-locale: text sorts by bytes, as SQLite's does. -N: no fsync, a test's data
        // does not need to survive a power cut.
        initdb.args(["--no-locale", "-N"]);
        let output = as_owner(&mut initdb, owner).output().expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let mut postgres = Command::new(bin.join("postgres"));
        postgres.arg("-D").arg(&data).arg("-k").arg(dir.path());
        postgres.args(["-c", "listen_addresses=", "-c", "fsync=off"]);
        postgres.stdout(Stdio::null()).stderr(Stdio::null());
        let server = as_owner(&mut postgres, owner).spawn().expect("start postgres");
        let url = format!("host={} user=slate dbname=postgres", dir.path().display());
        let cluster = Self { server, url, _dir: dir };
        cluster.wait_until_ready(&bin);
        cluster
    }

    pub fn store(&self) -> Store {
        Store::connect_postgres(&self.url).expect("connect to the test's PostgreSQL")
    }

    fn wait_until_ready(&self, bin: &Path) {
        let socket_dir = self._dir.path();
        let start = Instant::now();
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(socket_dir)
                .status()
                .expect("run pg_isready");
            if ready.success() {
                return;
            }
            assert!(start.elapsed() < PATIENCE, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // SIGINT: "fast" shutdown, which also stops the server's own children.
        let _ = Command::new("kill").args(["-INT", &self.server.id().to_string()]).status();
        let _ = self.server.wait();
    }
}

/// Debian's newest installed PostgreSQL: /usr/lib/postgresql/<major>/bin.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .unwrap_or_else(|| {
            panic!(
                "no PostgreSQL under {}: install Debian's postgresql (scripts/setup)",
                root.display()
            )
        });
    root.join(newest.to_string()).join("bin")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The uid and gid of the `postgres` user the Debian package creates.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
        })
        .expect("the postgres user (from Debian's postgresql package)")
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}
