//! The server's data directory: its layout, its permissions, and the private files in it (the
//! staff key). It must not open the database (that is `store`) or parse certificates (`tls`).

use crate::secrets::Secret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is empty or damaged; delete it and start the server again to make a new one")]
    Damaged { path: PathBuf },
}

/// A data directory that exists and is private to the server's user (mode 0700 when created).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens the directory, creating it (and its parents) with mode 0700 if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, DataDirError> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database_path(&self) -> PathBuf {
        self.root.join("slate.sqlite")
    }

    pub fn staff_key_path(&self) -> PathBuf {
        self.root.join("staff-key")
    }

    /// The Ed25519 key that signs device policies (base64 of the 32-byte seed).
    pub fn policy_key_path(&self) -> PathBuf {
        self.root.join("policy-key")
    }

    /// Uploaded filter list files, `<name>.txt`, created on demand.
    pub fn lists_dir(&self) -> Result<PathBuf, DataDirError> {
        let dir = self.root.join("lists");
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The policy signing key: made on first run, the same on every run after. Devices hold its
    /// public half in `slate.toml`, so losing it means reconfiguring every device.
    pub fn policy_key(&self) -> Result<SigningKey, DataDirError> {
        let path = self.policy_key_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let seed: [u8; 32] = BASE64
                    .decode(text.trim())
                    .ok()
                    .and_then(|raw| raw.try_into().ok())
                    .ok_or_else(|| DataDirError::Damaged { path: path.clone() })?;
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let seed: [u8; 32] = rand::random();
                write_private_file(&path, format!("{}\n", BASE64.encode(seed)).as_bytes())?;
                tracing::info!(path = %path.display(), "created a new policy signing key");
                Ok(SigningKey::from_bytes(&seed))
            }
            Err(source) => Err(DataDirError::Read { path, source }),
        }
    }

    /// The key TOTP seeds are sealed with in the database (`totp_seal`): made on first run,
    /// the same on every run after; kept here, never in the database. Losing it means every
    /// account with TOTP needs a recovery link.
    pub fn totp_key(&self) -> Result<[u8; 32], DataDirError> {
        let path = self.root.join("totp-key");
        match fs::read_to_string(&path) {
            Ok(text) => BASE64
                .decode(text.trim())
                .ok()
                .and_then(|raw| raw.try_into().ok())
                .ok_or(DataDirError::Damaged { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_private_file(&path, format!("{}\n", BASE64.encode(key)).as_bytes())?;
                tracing::info!(path = %path.display(), "created the key TOTP seeds are sealed with");
                Ok(key)
            }
            Err(source) => Err(DataDirError::Read { path, source }),
        }
    }

    /// The directory for the generated certificate, created on demand.
    pub fn tls_dir(&self) -> Result<PathBuf, DataDirError> {
        let dir = self.root.join("tls");
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The staff key: made on first run, the same on every run after.
    pub fn staff_key(&self) -> Result<Secret, DataDirError> {
        let path = self.staff_key_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let key = text.trim();
                // A key shorter than a generated one was cut short or typed by hand: refuse it
                // rather than guard staff pages with something guessable.
                if key.len() < 32 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(DataDirError::Damaged { path });
                }
                Ok(Secret::from_string(key.to_owned()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = Secret::generate();
                write_private_file(&path, format!("{}\n", key.expose()).as_bytes())?;
                tracing::info!(path = %path.display(), "created a new staff key");
                Ok(key)
            }
            Err(source) => Err(DataDirError::Read { path, source }),
        }
    }
}

pub fn create_private_dir(path: &Path) -> Result<(), DataDirError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DataDirError::CreateDir { path: path.to_owned(), source })
}

/// Writes a file readable only by its owner (0600), atomically: a crash leaves either the old
/// file or the new one, never half of a key.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), DataDirError> {
    let write_err = |source| DataDirError::Write { path: path.to_owned(), source };
    let temporary = path.with_extension("partial");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(write_err)?;
    // `mode` applies only when the file is new; a leftover from a crash keeps its old mode.
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(write_err)?;
    file.write_all(contents).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    fs::rename(&temporary, path).map_err(write_err)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(write_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_private_directory_and_a_stable_staff_key() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("nested/data");
        let dir = DataDir::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);

        let first = dir.staff_key().unwrap();
        assert_eq!(mode(&dir.staff_key_path()), 0o600);
        let again = DataDir::open(&root).unwrap().staff_key().unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn the_policy_key_is_private_stable_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let first = dir.policy_key().unwrap();
        assert_eq!(mode(&dir.policy_key_path()), 0o600);
        assert_eq!(dir.policy_key().unwrap().to_bytes(), first.to_bytes());
        fs::write(dir.policy_key_path(), "bm90IDMyIGJ5dGVz\n").unwrap();
        let err = dir.policy_key().unwrap_err().to_string();
        assert!(err.contains("policy-key"), "{err}");
    }

    #[test]
    fn a_damaged_staff_key_is_refused_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        fs::write(dir.staff_key_path(), "short\n").unwrap();
        let err = dir.staff_key().unwrap_err().to_string();
        assert!(err.contains("staff-key"), "{err}");
    }
}
