//! The imperative shell of [`super`]: reading `slate-provision.conf` and the card's files,
//! writing the rendered files atomically, rebuilding the trust store.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{
    check, files_named, parse, render, verify_files, FieldError, Layout, Plan, Settings, KEYFILE,
    KEYS,
};

/// Why nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Conf(String),
    #[error("rebuilding the trust store: {0}")]
    Trust(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// A certificate or key on the card is small; a bigger file is a mistake.
const MAX_CARD_FILE: u64 = 64 * 1024;

/// This module's keys from the provisioning file (a TOML subset): only string values; other
/// keys are the provisioning script's and not looked at here.
pub fn read_settings(text: &str) -> Result<BTreeMap<String, String>, Error> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| Error::Conf(format!("not readable: {}", e.message())))?;
    let mut settings = BTreeMap::new();
    for &key in KEYS {
        match table.get(key) {
            None => {}
            Some(toml::Value::String(s)) => {
                settings.insert(key.to_owned(), s.clone());
            }
            Some(_) => {
                return Err(FieldError { key, message: "takes one \"value\"".into() }.into());
            }
        }
    }
    Ok(settings)
}

/// Reads and checks everything: the file and every certificate it names (in `files_dir`, the
/// boot partition; `None`: beside the file), which must be the files the text records the
/// SHA-256 of (every one of them when `signed`: [`verify_files`]). Nothing is written.
pub fn load(conf: &Path, files_dir: Option<&Path>, signed: bool) -> Result<Settings, Error> {
    let text = std::fs::read_to_string(conf).map_err(io(conf))?;
    let request = parse(&read_settings(&text)?)?;
    let dir = files_dir.unwrap_or_else(|| conf.parent().unwrap_or(Path::new(".")));
    let mut files = BTreeMap::new();
    for (key, name) in files_named(&request) {
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(|e| FieldError {
            key,
            message: format!("\"{name}\" cannot be read from the boot partition: {e}"),
        })?;
        if !meta.is_file() || meta.len() > MAX_CARD_FILE {
            return Err(FieldError {
                key,
                message: format!("\"{name}\" is not a file of at most 64 KiB"),
            }
            .into());
        }
        files.insert(key, std::fs::read(&path).map_err(io(&path))?);
    }
    verify_files(&request, &files, signed)?;
    Ok(check(request, &files)?)
}

/// Rebuilds the trust bundle from the system's authorities plus the local CA directory.
pub trait TrustStore {
    fn rebuild(&self, layout: &Layout) -> Result<(), Error>;
}

/// Debian's `update-ca-certificates`, its directories moved to the data partition (the root
/// file system is read-only): the system's authorities (`/etc/ca-certificates.conf`) plus
/// `local-ca/`, into `ssl-certs/ca-certificates.crt`. Its hooks (Java's store, ...) do not run.
pub struct UpdateCaCertificates {
    pub program: PathBuf,
}

impl TrustStore for UpdateCaCertificates {
    fn rebuild(&self, layout: &Layout) -> Result<(), Error> {
        let hooks = layout.state_dir.join("no-hooks");
        for dir in [layout.trust_dir(), hooks.clone()] {
            mkdir(&dir, 0o755)?;
        }
        let output = std::process::Command::new(&self.program)
            .arg("--fresh")
            .arg("--localcertsdir")
            .arg(layout.local_ca_dir())
            .arg("--etccertsdir")
            .arg(layout.trust_dir())
            .arg("--hooksdir")
            .arg(&hooks)
            .output()
            .map_err(|e| Error::Trust(format!("{}: {e}", self.program.display())))?;
        if !output.status.success() {
            return Err(Error::Trust(format!(
                "{} failed: {}",
                self.program.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// The Enterprise connection's UUID from the keyfile already there, so NetworkManager sees
/// the same connection updated; a new one otherwise.
pub fn connection_uuid(nm_dir: &Path) -> String {
    let old = std::fs::read_to_string(nm_dir.join(KEYFILE)).unwrap_or_default();
    old.lines()
        .find_map(|l| l.strip_prefix("uuid="))
        .and_then(|u| uuid::Uuid::parse_str(u.trim()).ok())
        .unwrap_or_else(uuid::Uuid::now_v7)
        .to_string()
}

/// Writes what [`render`] plans for `settings`, each file atomically; then the trust store.
pub fn apply(settings: &Settings, layout: &Layout, trust: &dyn TrustStore) -> Result<(), Error> {
    let plan = render(settings, layout, &connection_uuid(&layout.nm_dir));
    mkdir(&layout.state_dir, 0o755)?;
    mkdir(&layout.certs_dir(), 0o700)?;
    mkdir(&layout.local_ca_dir(), 0o755)?;
    write_plan(&plan)?;
    if plan.rebuild_trust {
        trust.rebuild(layout)?;
    } else {
        match std::fs::remove_dir_all(layout.trust_dir()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&layout.trust_dir())(e)),
        }
    }
    Ok(())
}

fn write_plan(plan: &Plan) -> Result<(), Error> {
    for out in &plan.write {
        let dir = out.path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_atomic(&out.path, &out.contents, out.mode)?;
    }
    for path in &plan.remove {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    Ok(())
}

/// A directory with exactly `mode` (made if missing).
fn mkdir(dir: &Path, mode: u32) -> Result<(), Error> {
    match std::fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(io(dir)(e)),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io(dir))
}

/// A temporary file beside `path` with `mode` from the start, synced, renamed over it, the
/// directory synced: a power cut leaves the old file or the new, never half of one.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let dir = path.parent().expect("a file in a directory");
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    // The umask may have narrowed the mode; public files must stay readable.
    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io(&tmp))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
