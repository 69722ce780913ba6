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
    /// The connection string for [`Store::connect_postgres`]: the Unix socket.
    pub url: String,
    /// With [`TestPostgres::start_tls`]: TCP on 127.0.0.1 with `sslmode=require`, and the CA
    /// file that signed the server's certificate (for `localhost`).
    pub tls: Option<(String, PathBuf)>,
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
        Self::start_with(false)
    }

    /// Also listening on 127.0.0.1 for TLS only (`hostssl`: a plain TCP connection is refused),
    /// with a certificate from a CA made for the test.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
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
        postgres.args(["-c", "fsync=off"]);
        // The Unix socket's name carries the port too.
        let mut port = 5432;
        let tls = if tls {
            let ca;
            (port, ca) = listen_with_tls(&mut postgres, dir.path(), owner);
            let url = format!(
                "host=localhost hostaddr=127.0.0.1 port={port} user=slate dbname=postgres \
                 sslmode=require"
            );
            Some((url, ca))
        } else {
            postgres.args(["-c", "listen_addresses="]);
            None
        };
        postgres.stdout(Stdio::null()).stderr(Stdio::null());
        let server = as_owner(&mut postgres, owner).spawn().expect("start postgres");
        let url = format!("host={} port={port} user=slate dbname=postgres", dir.path().display());
        let cluster = Self { server, url, tls, _dir: dir };
        cluster.wait_until_ready(&bin, port);
        cluster
    }

    pub fn store(&self) -> Store {
        Store::connect_postgres(&self.url, Default::default())
            .expect("connect to the test's PostgreSQL")
    }

    /// The TLS address and its CA file (after [`TestPostgres::start_tls`]).
    pub fn tls(&self) -> (&str, &Path) {
        let (url, ca) = self.tls.as_ref().expect("started with start_tls");
        (url, ca)
    }

    fn wait_until_ready(&self, bin: &Path, port: u16) {
        let socket_dir = self._dir.path();
        let start = Instant::now();
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(socket_dir)
                .args(["-p", &port.to_string()])
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

/// Makes a CA and a certificate for `localhost` signed by it, and has the server listen on a
/// free 127.0.0.1 port for TLS connections only. Returns the port and the CA's file.
fn listen_with_tls(
    postgres: &mut Command,
    dir: &Path,
    owner: Option<(u32, u32)>,
) -> (u16, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let certificate = server_params.signed_by(&key, &ca).unwrap();

    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        path
    };
    let ca_file = write("ca.pem", &ca.pem(), 0o644);
    let cert_file = write("server.crt", &certificate.pem(), 0o644);
    let key_file = write("server.key", &key.serialize_pem(), 0o600);
    let hba =
        write("pg_hba.conf", "local all all trust\nhostssl all all 127.0.0.1/32 trust\n", 0o644);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    postgres.args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string(), "-c", "ssl=on"]);
    for (setting, path) in
        [("ssl_cert_file", cert_file), ("ssl_key_file", key_file), ("hba_file", hba)]
    {
        postgres.arg("-c").arg(format!("{setting}={}", path.display()));
    }
    (port, ca_file)
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
