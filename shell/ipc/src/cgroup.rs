//! Apps in their own cgroup (v2), a contract between slate-ui and slated: the launcher (slate-ui) makes one for each app it starts,
//! slated freezes and kills it (its `apps` module) and its control socket tells a
//! process the launcher started from one that is not ([`app_cgroup_under`]). Owns the naming,
//! the parsing of `/proc/*/cgroup` and `/proc/self/mountinfo` (pure) and the few file writes.
//!
//! ```text
//!  /sys/fs/cgroup/…/slate-session.service          the launcher's own cgroup (Delegate=yes)
//!  └── slate-app-<launcher pid>-<seq>              one app: made before the spawn, the child
//!      (cgroup.freeze, cgroup.kill: g+w)           joins it before exec, removed when it ends
//! ```
//!
//! A cgroup path here is as the kernel writes it in `/proc/<pid>/cgroup` (`0::<path>`), which is
//! relative to the reader's cgroup namespace root; [`Hierarchy`] maps it to the directory.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Every app cgroup's name starts with this.
pub const APP_PREFIX: &str = "slate-app-";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 hierarchy is mounted (in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("{what}: {detail}")]
    Bad { what: String, detail: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { action, path: path.to_owned(), source }
}

/// The name of the `seq`th app cgroup of the launcher with this pid. Pure.
pub fn app_name(launcher_pid: u32, seq: u64) -> String {
    format!("{APP_PREFIX}{launcher_pid}-{seq}")
}

/// Whether `name` is an app cgroup's name (`slate-app-<digits>-<digits>`). Pure.
pub fn is_app_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(APP_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, seq)| digits(pid) && digits(seq))
}

/// The cgroup v2 path in the text of `/proc/<pid>/cgroup` (its `0::` line). Pure.
pub fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
        .filter(|p| p.starts_with('/'))
}

/// Whether a process in the cgroup at `path` is an app (some component of the path is an app
/// cgroup: an app cannot leave by making a cgroup of its own inside). Pure.
pub fn in_app(path: &str) -> bool {
    path.split('/').any(is_app_name)
}

/// The app cgroup a process in `pid_path` belongs to, if that is an app cgroup made directly
/// under `parent` (the launcher's own cgroup): `<parent>/slate-app-…` (a cgroup the app made
/// inside its own counts as the app's). Anything else is refused, with why. Pure.
pub fn app_cgroup_under(parent: &str, pid_path: &str) -> Result<String, String> {
    let base = parent.trim_end_matches('/');
    let rest = pid_path
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or("the process is not in a cgroup under the requester's own")?;
    let first = rest.split('/').next().unwrap_or_default();
    if !is_app_name(first) {
        return Err("the process is not in an app cgroup the requester made".into());
    }
    Ok(format!("{base}/{first}"))
}

/// Whether freezing or killing `target` would reach `own` (the same cgroup or one above it). Pure.
pub fn contains(target: &str, own: &str) -> bool {
    let target = target.trim_end_matches('/');
    own == target
        || own.strip_prefix(target).is_some_and(|r| r.starts_with('/'))
        || target.is_empty()
}

/// The cgroup2 mount: where it is mounted and which cgroup path is at its top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The cgroup path at the mount point (`/` unless a part of the tree was mounted).
    pub root: String,
    pub mount: PathBuf,
}

impl Hierarchy {
    /// Finds the cgroup2 mount in the text of `/proc/self/mountinfo`. Pure.
    pub fn from_mountinfo(mountinfo: &str) -> Option<Hierarchy> {
        mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split(' ').next()? != "cgroup2" {
                return None;
            }
            let fields: Vec<&str> = left.split(' ').collect();
            Some(Hierarchy {
                root: unescape(fields.get(3)?),
                mount: unescape(fields.get(4)?).into(),
            })
        })
    }

    /// This process's cgroup2 mount.
    pub fn discover() -> Result<Hierarchy, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(io_err("read", path))?;
        Self::from_mountinfo(&text).ok_or(CgroupError::NoHierarchy)
    }

    /// The directory of the cgroup at `path`; `None` when it is outside this mount. Pure.
    pub fn dir(&self, path: &str) -> Option<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let rest = rest.trim_start_matches('/');
        if rest.split('/').any(|c| c == ".." || c == ".") {
            return None;
        }
        Some(if rest.is_empty() { self.mount.clone() } else { self.mount.join(rest) })
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of process `pid` (`self` for this one), as this process sees it.
pub fn cgroup_of(pid: &str) -> Result<String, CgroupError> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = std::fs::read_to_string(&path).map_err(io_err("read", &path))?;
    unified_path(&text).ok_or_else(|| CgroupError::Bad {
        what: path.display().to_string(),
        detail: "no cgroup v2 line (0::/…)".into(),
    })
}

/// What `cgroup.events` says. Pure.
pub fn events_say(events: &str, key: &str) -> Option<bool> {
    events.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim() == "1")
    })
}

/// Waits, bounded, until `cgroup.events` in `dir` says `key` is `wanted` (short polling: the
/// file changes in a few milliseconds).
pub fn wait_for_event(
    dir: &Path,
    key: &str,
    wanted: bool,
    limit: Duration,
) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.events");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&path).map_err(io_err("read", &path))?;
        if events_say(&text, key) == Some(wanted) {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(CgroupError::Bad {
                what: path.display().to_string(),
                detail: format!("{key} was not {} within {limit:?}", u8::from(wanted)),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `value` to the cgroup file `dir/name`.
pub fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    std::fs::write(&path, value).map_err(io_err("write", &path))
}

/// Apps started so far by this process (the `<seq>` in their cgroup's name).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// How long an ended app's cgroup may take to empty after `cgroup.kill`.
pub const EMPTY_WITHIN: Duration = Duration::from_secs(5);

/// An app's cgroup, made by the launcher before the app starts: `slate-app-<pid>-<seq>` directly
/// under the launcher's own cgroup, with `cgroup.freeze` and `cgroup.kill` writable by the
/// launcher's group (slated is in it).
#[derive(Debug)]
pub struct AppCgroup {
    /// The cgroup path (as in `/proc/<pid>/cgroup`).
    pub path: String,
    pub dir: PathBuf,
    /// `cgroup.procs`, open for the child to join before exec.
    procs: OwnedFd,
}

impl AppCgroup {
    /// Makes a fresh app cgroup under this process's own. Fails, saying why, when there is no
    /// writable cgroup2 hierarchy (then the app must not start).
    pub fn create() -> Result<AppCgroup, CgroupError> {
        let hierarchy = Hierarchy::discover()?;
        let own = cgroup_of("self")?;
        let name = app_name(std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let path = format!("{}/{name}", own.trim_end_matches('/'));
        let dir = hierarchy.dir(&path).ok_or_else(|| CgroupError::Bad {
            what: path.clone(),
            detail: format!("not under the cgroup2 mount {}", hierarchy.mount.display()),
        })?;
        std::fs::create_dir(&dir).map_err(io_err("make the app cgroup", &dir))?;
        let made = (|| {
            for file in ["cgroup.freeze", "cgroup.kill"] {
                let f = dir.join(file);
                let mode =
                    std::fs::metadata(&f).map_err(io_err("inspect", &f))?.permissions().mode();
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode | 0o020))
                    .map_err(io_err("make group-writable", &f))?;
            }
            let procs_path = dir.join("cgroup.procs");
            let procs = std::fs::OpenOptions::new()
                .write(true)
                .open(&procs_path)
                .map_err(io_err("open", &procs_path))?;
            Ok(OwnedFd::from(procs))
        })();
        match made {
            Ok(procs) => Ok(AppCgroup { path, dir, procs }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Makes the child of `cmd` join this cgroup between fork and exec (before anything else
    /// the command's own `pre_exec` does, so add this first): one `write` of "0" to the
    /// `cgroup.procs` opened here, async-signal-safe. A failed join stops the spawn.
    pub fn join_before_exec(&self, cmd: &mut std::process::Command) {
        let fd = self.procs.as_raw_fd();
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::write(BorrowedFd::borrow_raw(fd), b"0")?;
                Ok(())
            });
        }
    }

    /// Ends every process in it (`cgroup.kill`, then unfreezes so nothing stays stuck), waits,
    /// bounded, until it is empty, and removes it.
    pub fn kill_and_remove(&self) -> Result<(), CgroupError> {
        let _ = write_file(&self.dir, "cgroup.kill", "1");
        let _ = write_file(&self.dir, "cgroup.freeze", "0");
        wait_for_event(&self.dir, "populated", false, EMPTY_WITHIN)?;
        remove_tree(&self.dir)
    }
}

/// Removes a cgroup directory and any (empty) cgroups the app made inside it, deepest first.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// A path as a C string for use after fork (no NUL in paths from the kernel).
pub fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_cgroup_names() {
        assert_eq!(app_name(4242, 7), "slate-app-4242-7");
        for (name, is) in [
            ("slate-app-4242-7", true),
            ("slate-app-1-0", true),
            ("slate-app-4242", false),
            ("slate-app--7", false),
            ("slate-app-42-x", false),
            ("slate-app-42-7-1", false),
            ("slate-ui", false),
            ("", false),
        ] {
            assert_eq!(is_app_name(name), is, "{name}");
        }
    }

    #[test]
    fn the_unified_path_of_a_process() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n0::/system.slice/slate-session.service\n";
        assert_eq!(unified_path(hybrid).as_deref(), Some("/system.slice/slate-session.service"));
        assert_eq!(unified_path("0::/\n").as_deref(), Some("/"));
        assert_eq!(unified_path("1:cpu:/\n"), None);
        assert_eq!(unified_path(""), None);
    }

    #[test]
    fn which_processes_are_apps_the_requester_started() {
        let s = "/system.slice/slate-session.service";
        let cases: Vec<(&str, &str, Result<&str, &str>)> = vec![
            (
                s,
                "/system.slice/slate-session.service/slate-app-12-0",
                Ok("/system.slice/slate-session.service/slate-app-12-0"),
            ),
            // A cgroup the app made inside its own is still the app's.
            (
                s,
                "/system.slice/slate-session.service/slate-app-12-0/inner",
                Ok("/system.slice/slate-session.service/slate-app-12-0"),
            ),
            (s, s, Err("not in a cgroup under")),
            (s, "/system.slice/slate-session.service/other", Err("not in an app cgroup")),
            (s, "/system.slice/slated.service", Err("not in a cgroup under")),
            (s, "/system.slice/slate-session.serviceX/slate-app-1-1", Err("not in a cgroup under")),
            (s, "/system.slice/slate-app-1-1", Err("not in a cgroup under")),
            ("/", "/slate-app-5-1", Ok("/slate-app-5-1")),
            ("/", "/", Err("not in an app cgroup")),
        ];
        for (parent, pid, expected) in cases {
            match (app_cgroup_under(parent, pid), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{parent} {pid}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{parent} {pid}: {got}"),
                (got, want) => panic!("{parent} {pid}: {got:?}, wanted {want:?}"),
            }
        }
        assert!(in_app("/system.slice/slate-session.service/slate-app-1-2"));
        assert!(in_app("/system.slice/slate-session.service/slate-app-1-2/x"));
        assert!(!in_app("/system.slice/slate-session.service"));
        assert!(!in_app("/"));
    }

    #[test]
    fn a_cgroup_contains_itself_and_below() {
        assert!(contains("/a/b", "/a/b"));
        assert!(contains("/a", "/a/b"));
        assert!(contains("/", "/a/b"));
        assert!(!contains("/a/b", "/a"));
        assert!(!contains("/a/b", "/a/bc"));
        assert!(!contains("/a/slate-app-1-1", "/a"));
    }

    #[test]
    fn the_cgroup2_mount_is_found_in_mountinfo() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let h = Hierarchy::from_mountinfo(hybrid).unwrap();
        assert_eq!(h, Hierarchy { root: "/".into(), mount: "/sys/fs/cgroup/unified".into() });
        assert_eq!(h.dir("/"), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            h.dir("/a/slate-app-1-2"),
            Some("/sys/fs/cgroup/unified/a/slate-app-1-2".into())
        );
        assert_eq!(h.dir("/a/../b"), None);

        let image = "25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchy::from_mountinfo(image).unwrap();
        assert_eq!(h.mount, Path::new("/sys/fs/cgroup"));
        // A part of the tree mounted (a container): paths are taken relative to it.
        let part = "25 21 0:23 /system.slice/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchy::from_mountinfo(part).unwrap();
        assert_eq!(
            h.dir("/system.slice/x/slate-app-1-1"),
            Some("/sys/fs/cgroup/slate-app-1-1".into())
        );
        assert_eq!(h.dir("/system.slice/xy"), None);
        assert_eq!(h.dir("/other"), None);
        assert_eq!(
            Hierarchy::from_mountinfo("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
        let spaced = "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Hierarchy::from_mountinfo(spaced).unwrap().mount, Path::new("/mnt/cg two"));
    }

    #[test]
    fn cgroup_events_are_read() {
        let events = "populated 1\nfrozen 0\n";
        assert_eq!(events_say(events, "populated"), Some(true));
        assert_eq!(events_say(events, "frozen"), Some(false));
        assert_eq!(events_say(events, "other"), None);
    }
}
