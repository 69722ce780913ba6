//! The server's Debian package as IT installs it: built by `scripts/package-server` (from the
//! dev build `scripts/test` has just made), installed with dpkg into a fresh Debian bookworm root
//! (mmdebstrap, `--variant=apt` with systemd, made once and kept as a tarball in
//! `~/.cache/slate-package-test/`), its files checked where they should be, its unit checked by
//! `systemd-analyze verify --root`, IT's admin commands run in that root as root (they act as the
//! service user) and as another user (refused), and the installed binary started in that root,
//! as the unit starts it but on a free loopback port, answering over HTTPS.
//!
//! Needs root (chroot, dpkg into the root) and, the first time only, the Debian mirror: without
//! either it says why and skips. Prints the package's size and IT's commands from a fresh Debian
//! to a running server, for the figures.

use slate_e2e::{
    age_key_pair, backup_listing, binary, run_ok, spawn_with_lines, wait_for_line, PATIENCE,
};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIRROR: &str = "http://deb.debian.org/debian";
/// What the root has besides `--variant=apt`: the package depends on systemd and rauc (which
/// checks update bundles).
const INCLUDE: &str = "systemd,rauc";
const UNIT: &str = "usr/lib/systemd/system/slate-server.service";
const BACKUP_UNIT: &str = "usr/lib/systemd/system/slate-server-backup.service";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

fn skip(why: &str) {
    eprintln!("SKIPPED server_package: {why}");
}

/// The bookworm root as a tarball, made once; `Err` when the mirror cannot be reached.
fn base_tarball() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
    let cache = home.join(".cache/slate-package-test");
    let tarball = cache.join(format!("bookworm-apt-{INCLUDE}.tar"));
    if tarball.exists() {
        return Ok(tarball);
    }
    std::fs::create_dir_all(&cache).unwrap();
    assert!(
        Command::new("mmdebstrap").arg("--version").output().is_ok(),
        "mmdebstrap is missing: run scripts/setup"
    );
    let partial = cache.join(format!("bookworm-apt-{INCLUDE}.tar.partial"));
    let out = Command::new("mmdebstrap")
        .args(["--quiet", "--variant=apt", "--format=tar"])
        .arg(format!("--include={INCLUDE}"))
        .arg("bookworm")
        .arg(&partial)
        .arg(MIRROR)
        .output()
        .expect("run mmdebstrap");
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        let reachable = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "30"])
            .arg(format!("{MIRROR}/dists/bookworm/Release"))
            .status()
            .is_ok_and(|s| s.success());
        if !reachable {
            return Err(format!("the Debian mirror {MIRROR} cannot be reached to make the root"));
        }
        panic!(
            "mmdebstrap failed with the mirror reachable:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&partial, &tarball).unwrap();
    Ok(tarball)
}

/// `scripts/package-server` on the dev build the tests run against; returns the .deb.
fn build_package(out: &Path) -> PathBuf {
    let server = binary("slate-server");
    // target/debug/slate-server -> target
    let target = server.parent().and_then(Path::parent).expect("target dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/package-server");
    let mut command = Command::new(script);
    command
        .args(["--profile", "dev", "--no-build", "--output"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target);
    let output = run_ok(command);
    let deb = String::from_utf8(output.stdout).unwrap();
    PathBuf::from(deb.lines().last().expect("the package's path").trim())
}

/// Runs `args` inside `root` as root (in a mount namespace of its own, with /proc).
fn in_root(root: &Path, script: &str) -> std::process::Output {
    let mut command = Command::new("unshare");
    command.args(["--mount", "--fork", "chroot"]).arg(root).args([
        "sh",
        "-c",
        &format!("mount -t proc proc /proc && {script}"),
    ]);
    run_ok(command)
}

/// `(uid, gid)` of a user in the root's own /etc/passwd.
fn user_in(root: &Path, name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields[0] == name).then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
    })
}

fn unit_setting<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit:\n{unit}"))
}

#[test]
fn the_server_package_installs_into_a_fresh_debian_and_serves() {
    if !is_root() {
        return skip("needs root (chroot and dpkg into a Debian root); CI runs as root");
    }
    let tarball = match base_tarball() {
        Ok(tarball) => tarball,
        Err(why) => return skip(&why),
    };
    let work = tempfile::tempdir().unwrap();
    let deb = build_package(&work.path().join("deb"));
    let size = std::fs::metadata(&deb).unwrap().len();

    // A fresh Debian root from the cached tarball (owners by number, as mmdebstrap wrote them).
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut untar = Command::new("tar");
    untar.arg("--numeric-owner").arg("-C").arg(&root).arg("-xf").arg(&tarball);
    run_ok(untar);

    // IT's first command: install the package (`apt install ./slate-server_….deb` on a real
    // machine, which also fetches systemd and rauc if missing; here dpkg, the root has them).
    let name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&deb, root.join("tmp").join(&name)).unwrap();
    in_root(&root, &format!("dpkg -i /tmp/{name}"));

    // Its files where they should be.
    for (path, mode) in [
        ("usr/bin/slate-server", 0o755),
        (UNIT, 0o644),
        ("usr/lib/sysusers.d/slate-server.conf", 0o644),
        ("usr/lib/tmpfiles.d/slate-server.conf", 0o644),
        ("usr/share/man/man1/slate-server.1.gz", 0o644),
        ("usr/share/man/man1/slate-server-staff-add.1.gz", 0o644),
        ("usr/share/bash-completion/completions/slate-server", 0o644),
        ("usr/share/zsh/vendor-completions/_slate-server", 0o644),
        ("usr/share/fish/vendor_completions.d/slate-server.fish", 0o644),
        ("usr/share/doc/slate-server/copyright", 0o644),
        ("usr/share/doc/slate-server/Andika-OFL.txt", 0o644),
        (BACKUP_UNIT, 0o644),
        ("usr/lib/systemd/system/slate-server-backup.timer", 0o644),
    ] {
        let meta = std::fs::metadata(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{path}");
        assert_eq!(meta.uid(), 0, "{path} belongs to root");
    }
    let conffiles = std::fs::read_to_string(root.join("var/lib/dpkg/info/slate-server.conffiles"));
    assert_eq!(conffiles.unwrap().trim(), "/etc/slate-server/slate-server.toml");
    let example = std::fs::read_to_string(root.join("etc/slate-server/slate-server.toml")).unwrap();
    assert!(example.contains("#[email]"), "{example}");
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/slate-server"));
    assert!(bash.unwrap().contains("enrollment-token"));

    // The user from sysusers.d, the directories from tmpfiles.d.
    let (uid, gid) = user_in(&root, "slate-server").expect("the system user slate-server");
    assert!(uid > 0 && uid < 1000, "a system user: {uid}");
    let data = std::fs::metadata(root.join("var/lib/slate-server")).unwrap();
    assert_eq!((data.uid(), data.gid(), data.mode() & 0o7777), (uid, gid, 0o700));
    let etc = std::fs::metadata(root.join("etc/slate-server")).unwrap();
    assert_eq!((etc.uid(), etc.gid(), etc.mode() & 0o7777), (0, gid, 0o750));
    let config = std::fs::metadata(root.join("etc/slate-server/slate-server.toml")).unwrap();
    assert_eq!((config.uid(), config.gid(), config.mode() & 0o7777), (0, gid, 0o640));
    // Enabled (deb-systemd-helper); started by the same step where systemd runs.
    let wants = root.join("etc/systemd/system/multi-user.target.wants/slate-server.service");
    let link = std::fs::read_link(&wants).expect("enabled in multi-user.target");
    assert!(link.ends_with("systemd/system/slate-server.service"), "{}", link.display());

    // The nightly backup's timer, enabled; its directory the service's alone.
    let timer = root.join("etc/systemd/system/timers.target.wants/slate-server-backup.timer");
    assert!(std::fs::read_link(&timer).is_ok(), "the backup timer is enabled");
    let backups = std::fs::metadata(root.join("var/backups/slate-server")).unwrap();
    assert_eq!((backups.uid(), backups.gid(), backups.mode() & 0o7777), (uid, gid, 0o700));

    // The units as installed, checked by systemd against the root's files.
    for unit in ["slate-server.service", "slate-server-backup.service", "slate-server-backup.timer"]
    {
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg(unit)
            .output()
            .expect("systemd-analyze (the host's systemd) runs");
        let said = String::from_utf8_lossy(&verify.stderr).into_owned();
        assert!(verify.status.success(), "systemd-analyze verify {unit}:\n{said}");
        assert!(!said.contains("slate-server"), "warnings about {unit}:\n{said}");
    }
    let unit = std::fs::read_to_string(root.join(UNIT)).unwrap();
    assert_eq!(unit_setting(&unit, "User"), "slate-server");
    assert_eq!(unit_setting(&unit, "RestartPreventExitStatus"), "78");
    let exec: Vec<&str> = unit_setting(&unit, "ExecStart").split_whitespace().collect();
    assert_eq!(exec[..2], ["/usr/bin/slate-server", "serve"]);
    let config_at = exec.iter().position(|a| *a == "--config").expect("the unit passes --config");
    assert_eq!(exec[config_at + 1], "/etc/slate-server/slate-server.toml");

    // IT's next commands, as root (sudo): they act as slate-server, whose files they leave.
    let out = in_root(&root, "slate-server staff add --username head --role dsl");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("one-time password: ") && text.contains("totp uri: "), "{text}");
    let out = in_root(&root, "slate-server enrollment-token --device 12");
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.trim().len(), 43, "{token:?}");
    // Anyone else is refused, saying whom to run it as.
    let refused = Command::new("chroot")
        .arg("--userspec=nobody:nogroup")
        .arg(&root)
        .args(["slate-server", "enrollment-token", "--device", "13"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        said.contains("/var/lib/slate-server belongs to the user slate-server")
            && said.contains("not as nobody"),
        "{said}"
    );

    // The installed binary as the unit starts it (its user, its ExecStart), on a free loopback
    // port instead of 0.0.0.0:8443.
    let mut argv: Vec<String> = exec.iter().map(|a| a.to_string()).collect();
    let listen_at = argv.iter().position(|a| a == "--listen").expect("the unit's --listen");
    argv[listen_at + 1] = "127.0.0.1:0".into();
    let group = unit_setting(&unit, "Group");
    let mut serve = Command::new("chroot");
    serve.arg(format!("--userspec=slate-server:{group}")).arg(&root).args(&argv);
    let log = work.path().join("serve.stderr.log");
    let (mut child, lines) = spawn_with_lines(serve, &log);
    let url = wait_for_line(&lines, "slate-server listening on ", &log);
    let certificate = wait_for_line(&lines, "certificate: ", &log);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = std::fs::read(root.join(certificate.trim_start_matches('/'))).unwrap();
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let health = client.get(format!("{url}/healthz")).send().expect("an HTTPS answer");
    assert_eq!(health.status(), 200);
    let login = client.get(format!("{url}/staff/login")).send().expect("the sign-in page");
    assert_eq!(login.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains('\u{1b}'), "plain lines, no colour codes:\n{stderr}");

    // The nightly backup as its unit runs it (its user, its ExecStart), once IT has given the
    // public key: one encrypted file in /var/backups/slate-server.
    let backup_unit = std::fs::read_to_string(root.join(BACKUP_UNIT)).unwrap();
    let condition = unit_setting(&backup_unit, "ConditionPathExists");
    let (key, public) = age_key_pair(work.path(), "it.key");
    std::fs::write(root.join(condition.trim_start_matches('/')), public).unwrap();
    let argv: Vec<&str> = unit_setting(&backup_unit, "ExecStart").split_whitespace().collect();
    let mut backup = Command::new("chroot");
    backup
        .arg(format!("--userspec=slate-server:{}", unit_setting(&backup_unit, "Group")))
        .arg(&root)
        .args(&argv);
    let said = String::from_utf8(run_ok(backup).stdout).unwrap();
    assert!(said.starts_with("backup written: /var/backups/slate-server/slate-server-"), "{said}");
    let written: Vec<_> = std::fs::read_dir(root.join("var/backups/slate-server"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(backup_listing(&key, &written[0]).contains("policy-key"));

    // Everything in the data directory is the service's.
    let mut pending = vec![root.join("var/lib/slate-server")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", entry.path().display());
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }

    println!("server package: {name} {size} bytes (dev build; scripts/package-server for release)");
    println!(
        "IT from a fresh Debian to a running server, 3 commands: apt install ./{name} (the unit \
         starts); slate-server staff add --username head --role dsl; slate-server \
         enrollment-token --device 12"
    );
}
