//! Which data directories the `slate-server serve` processes on this machine use, so that an
//! admin command run against another one says so (issue 19: README's `staff add` wrote to
//! `/var/lib/slate-server` while the demo's server read `demo-data/server`, and signing in then
//! failed with no clue why).
//!
//! The running processes are the truth: each one's command line and working directory are read
//! from `/proc`, so a server that crashed or was killed leaves nothing behind that could claim it
//! still runs. Reading them is [`running_servers`]; what a process's arguments say
//! ([`serve_data_dir`]) and what to tell IT ([`notice`]) are pure.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The data directory when `--data-dir` is not given (the package's unit gives the same).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/slate-server";

/// The global flags that take a value, as `--flag VALUE` or `--flag=VALUE`.
const VALUE_FLAGS: [&str; 4] = ["--data-dir", "--postgres", "--postgres-ca", "--postgres-schema"];

/// A `slate-server serve` process running on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    pub pid: u32,
    /// Its data directory, made absolute; `None` when it is relative and its working directory
    /// cannot be read (another user's process).
    pub data_dir: Option<PathBuf>,
}

/// The data directory `argv` (a process's whole command line) serves from, as written, when it
/// is `slate-server serve`; `None` for any other process or command.
pub fn serve_data_dir(argv: &[&OsStr]) -> Option<PathBuf> {
    let (program, args) = argv.split_first()?;
    if Path::new(program).file_name() != Some(OsStr::new("slate-server")) {
        return None;
    }
    let mut data_dir = None;
    let mut subcommand = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if let Some((flag, value)) = text.split_once('=') {
            if flag == "--data-dir" {
                data_dir = Some(PathBuf::from(value));
            }
        } else if VALUE_FLAGS.contains(&text.as_ref()) {
            let value = args.next()?;
            if text == "--data-dir" {
                data_dir = Some(PathBuf::from(value));
            }
        } else if subcommand.is_none() && !text.starts_with('-') {
            subcommand = Some(text.into_owned());
        }
    }
    (subcommand.as_deref() == Some("serve"))
        .then(|| data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)))
}

/// What an admin command working on `ours` (absolute) tells IT, given the servers running:
/// nothing when one of them uses it, or when none runs (setting up before the first start);
/// otherwise that the running servers read other directories, and how to reach theirs.
pub fn notice(ours: &Path, running: &[RunningServer]) -> Option<String> {
    if running.is_empty() || running.iter().any(|s| s.data_dir.as_deref() == Some(ours)) {
        return None;
    }
    let mut text = format!(
        "warning: no running slate-server uses the data directory {}: this command changes \
         that one, which ",
        ours.display()
    );
    text += if running.len() == 1 { "the running server does" } else { "the running servers do" };
    text += " not read.";
    for server in running {
        match &server.data_dir {
            Some(dir) => {
                text += &format!(
                    "\n  slate-server (pid {}) uses {}: to change what it serves, run this \
                     command again with --data-dir {}",
                    server.pid,
                    dir.display(),
                    dir.display()
                );
            }
            None => {
                text += &format!(
                    "\n  slate-server (pid {}) uses a data directory this user cannot see",
                    server.pid
                );
            }
        }
    }
    Some(text)
}

/// Every `slate-server serve` on this machine (in this PID namespace) but this process, from
/// `/proc`. Processes that end while being read, or whose command line cannot be read, are
/// left out.
pub fn running_servers() -> Vec<RunningServer> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let argv: Vec<&OsStr> =
            cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(OsStr::from_bytes).collect();
        let Some(dir) = serve_data_dir(&argv) else { continue };
        let data_dir = if dir.is_absolute() {
            Some(dir)
        } else {
            std::fs::read_link(entry.path().join("cwd")).ok().map(|cwd| cwd.join(dir))
        };
        // The same directory named two ways (a symlink, `..`) is one directory.
        let data_dir = data_dir.map(|d| std::fs::canonicalize(&d).unwrap_or(d));
        found.push(RunningServer { pid, data_dir });
    }
    found.sort_by_key(|s| s.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Option<PathBuf> {
        let words: Vec<&str> = line.split(' ').collect();
        let argv: Vec<&OsStr> = words.iter().map(OsStr::new).collect();
        serve_data_dir(&argv)
    }

    #[test]
    fn a_serve_command_line_names_its_data_directory() {
        let cases = [
            ("/usr/bin/slate-server serve --data-dir /var/lib/slate-server --listen 0.0.0.0:8443", Some("/var/lib/slate-server")),
            ("target/debug/slate-server serve --data-dir /home/it/demo-data/server", Some("/home/it/demo-data/server")),
            ("slate-server --data-dir=/srv/slate serve", Some("/srv/slate")),
            ("slate-server --data-dir demo serve", Some("demo")),
            ("slate-server serve", Some(DEFAULT_DATA_DIR)),
            ("slate-server --postgres host=/run/postgresql serve", Some(DEFAULT_DATA_DIR)),
            ("slate-server staff add --username serve --role dsl", None),
            ("slate-server --data-dir /d staff add --username head --role dsl", None),
            ("slate-server --postgres serve", None),
            ("/usr/bin/python3 slate-server serve", None),
            ("slate-server-old serve", None),
        ];
        for (line, expected) in cases {
            assert_eq!(args(line), expected.map(PathBuf::from), "{line}");
        }
    }

    #[test]
    fn a_command_on_a_directory_no_running_server_uses_says_so() {
        let demo = RunningServer { pid: 41, data_dir: Some("/home/it/demo-data/server".into()) };
        let unseen = RunningServer { pid: 42, data_dir: None };
        let ours = Path::new("/var/lib/slate-server");
        assert_eq!(notice(ours, &[]), None, "nothing running: setting up before the first start");
        let same = RunningServer { pid: 7, data_dir: Some(ours.into()) };
        assert_eq!(notice(ours, &[demo.clone(), same]), None, "a server uses this one");

        let told = notice(ours, std::slice::from_ref(&demo)).unwrap();
        assert!(
            told.starts_with(
                "warning: no running slate-server uses the data directory /var/lib/slate-server"
            ),
            "{told}"
        );
        assert!(told.contains("which the running server does not read"), "{told}");
        assert!(told.contains("(pid 41) uses /home/it/demo-data/server"), "{told}");
        assert!(told.contains("--data-dir /home/it/demo-data/server"), "{told}");

        let told = notice(ours, &[demo, unseen]).unwrap();
        assert!(told.contains("the running servers do not read"), "{told}");
        assert!(told.contains("(pid 42) uses a data directory this user cannot see"), "{told}");
    }
}
