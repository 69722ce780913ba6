//! Update bundles' files (issue 16): IT's update CA (`update-ca.pem` in the data directory) and
//! the signed RAUC bundles in `updates/<sha256>.raucb`. An upload is written aside while it is
//! hashed, synced, checked by the real tool (`rauc info --keyring <IT's update CA>`, which
//! verifies the CMS signature and reads the manifest), then renamed to its content's name and
//! recorded (the row is the commit point). A refused file is deleted. Names are never trusted:
//! a file is served only by the SHA-256 the server computed itself.

use crate::data_dir::{create_private_dir, write_private_file, DataDir, DataDirError};
use crate::store::{BundleRemoval, Store, StoreError};
use crate::update_rollout::{self, BundleRecord, NewBundle};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use slate_protocol::update::MAX_BUNDLE_BYTES;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long `rauc info` may take: it reads the signature and manifest, and for a plain bundle
/// hashes the whole file (seconds for the largest).
const RAUC_INFO_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest CA file IT may give (a certificate or a short chain).
const MAX_CA_BYTES: usize = 64 * 1024;

const HOW_TO_SET_CA: &str = "give the server IT's update CA first: `slate-server update ca FILE` \
     (the certificate devices hold as /etc/rauc/keyring.pem), or `update add --ca FILE BUNDLE`";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no update CA at {0}: {HOW_TO_SET_CA}")]
    NoCa(PathBuf),
    #[error("the update CA is not a PEM certificate (-----BEGIN CERTIFICATE-----, {MAX_CA_BYTES} bytes at most)")]
    BadCa,
    #[error("the bundle is over {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    #[error("the bundle is empty")]
    Empty,
    #[error("rauc refused the bundle: {0}")]
    Refused(String),
    #[error("the bundle was not accepted: {0}")]
    NotAccepted(String),
    #[error("rauc is not installed on this server (apt-get install rauc)")]
    RaucMissing,
    #[error("rauc info took over {} s", RAUC_INFO_TIMEOUT.as_secs())]
    Timeout,
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UpdateError {
    /// Whether the bundle (or CA) is what is wrong, so IT is told why; otherwise the server is.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            UpdateError::NoCa(_)
                | UpdateError::BadCa
                | UpdateError::TooLarge
                | UpdateError::Empty
                | UpdateError::Refused(_)
                | UpdateError::NotAccepted(_)
        )
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> UpdateError + 'a {
    move |source| UpdateError::Io { what, path: path.to_owned(), source }
}

/// The data directory's update CA and bundles. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UpdateBundles {
    dir: PathBuf,
    ca: PathBuf,
    /// One upload is checked against the others and stored at a time.
    adding: Arc<tokio::sync::Mutex<()>>,
}

/// What adding a bundle came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    New(BundleRecord),
    /// The same file was uploaded before: nothing changed.
    AlreadyUploaded(BundleRecord),
}

impl UpdateBundles {
    /// `updates/` in the data directory (made 0700 if missing) and `update-ca.pem` beside it.
    pub fn open(data_dir: &DataDir) -> Result<Self, DataDirError> {
        let dir = data_dir.root().join("updates");
        create_private_dir(&dir)?;
        remove_stale_uploads(&dir);
        Ok(Self { dir, ca: data_dir.root().join("update-ca.pem"), adding: Arc::default() })
    }

    /// The file of the bundle with this SHA-256 (64 lowercase hex digits, checked by the caller).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.raucb"))
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    pub fn has_ca(&self) -> bool {
        self.ca.is_file()
    }

    /// Keeps `pem` as IT's update CA (0600, written aside and renamed).
    pub fn set_ca(&self, pem: &[u8]) -> Result<(), UpdateError> {
        let looks_right = pem.len() <= MAX_CA_BYTES
            && std::str::from_utf8(pem).is_ok_and(|t| {
                t.contains("-----BEGIN CERTIFICATE-----") && t.contains("-----END CERTIFICATE-----")
            });
        if !looks_right {
            return Err(UpdateError::BadCa);
        }
        write_private_file(&self.ca, pem)?;
        Ok(())
    }

    /// A new file to write an upload into, beside the bundles (so the rename is atomic).
    pub async fn incoming(&self) -> Result<IncomingBundle, UpdateError> {
        if !self.has_ca() {
            return Err(UpdateError::NoCa(self.ca.clone()));
        }
        let path = self.dir.join(format!(".upload-{}.partial", crate::secrets::random_hex_16()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("cannot create", &path))?;
        Ok(IncomingBundle {
            file: Some(tokio::fs::File::from_std(file)),
            path,
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Checks a received file with `rauc info` against IT's update CA and, if it passes and fits
    /// with the bundles already here, stores it under its content's name and records it.
    pub async fn add(
        &self,
        store: &Store,
        received: Received,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Added, UpdateError> {
        if !self.has_ca() {
            return Err(UpdateError::NoCa(self.ca.clone()));
        }
        let info = rauc_info(&self.ca, &received.path).await?;
        let info = update_rollout::parse_rauc_info(&info).map_err(UpdateError::NotAccepted)?;
        let _adding = self.adding.lock().await;
        let existing = store.run(|store| store.update_bundles()).await?;
        let record = BundleRecord {
            sha256: received.sha256.clone(),
            version: info.version.clone(),
            compatible: info.compatible.clone(),
            bytes: received.bytes,
            uploaded_at: now,
            uploaded_by: by.to_owned(),
        };
        match update_rollout::check_new_bundle(&existing, &received.sha256, &info) {
            Err(why) => Err(UpdateError::NotAccepted(why)),
            Ok(NewBundle::AlreadyUploaded) => {
                let same = existing.into_iter().find(|b| b.sha256 == received.sha256);
                // The row names the file: make sure the file is there too.
                if !self.path(&received.sha256).is_file() {
                    self.put_in_place(received)?;
                }
                Ok(Added::AlreadyUploaded(same.unwrap_or(record)))
            }
            Ok(NewBundle::New) => {
                let path = self.put_in_place(received)?;
                let row = record.clone();
                match store.run(move |store| store.add_update_bundle(&row)).await {
                    Ok(_) => Ok(Added::New(record)),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Removes the bundle with `version` (not one the rollout in force offers): marked removed
    /// and audited first, then its file deleted. Returns its SHA-256.
    pub async fn remove(
        &self,
        store: &Store,
        version: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<String, UpdateError> {
        let _adding = self.adding.lock().await;
        let (wanted, by) = (version.to_owned(), by.to_owned());
        match store.run(move |store| store.remove_update_bundle(&wanted, &by, now)).await? {
            BundleRemoval::NoSuchVersion => {
                Err(UpdateError::NotAccepted(format!("no bundle has the version {version:?}")))
            }
            BundleRemoval::InForce => Err(UpdateError::NotAccepted(format!(
                "the rollout in force offers {version}: stop it first (slate-server update stop)"
            ))),
            BundleRemoval::Removed { sha256 } => {
                let path = self.path(&sha256);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(UpdateError::Io { what: "cannot delete", path, source })
                    }
                }
                Ok(sha256)
            }
        }
    }

    /// Renames a checked file to `<sha256>.raucb` and syncs the directory.
    fn put_in_place(&self, mut received: Received) -> Result<PathBuf, UpdateError> {
        let target = self.path(&received.sha256);
        std::fs::rename(&received.path, &target).map_err(io("cannot rename to", &target))?;
        received.kept = true;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io("cannot sync", &self.dir))?;
        Ok(target)
    }
}

/// An upload a crash or power cut left behind (one in progress now is younger than a day).
const STALE_UPLOAD: Duration = Duration::from_secs(24 * 60 * 60);

/// Removes uploads a crash left half-written; what cannot be read or removed is left for later.
fn remove_stale_uploads(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_UPLOAD);
        if name.starts_with(".upload-") && name.ends_with(".partial") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// An upload being written: hashed as it comes; removed if dropped before [`finish`].
///
/// [`finish`]: IncomingBundle::finish
pub struct IncomingBundle {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    hasher: Sha256,
    bytes: u64,
}

impl IncomingBundle {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UpdateError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > MAX_BUNDLE_BYTES {
            return Err(UpdateError::TooLarge);
        }
        self.hasher.update(chunk);
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(chunk).await.map_err(io("cannot write", &self.path))
    }

    /// The whole file, synced to disk.
    pub async fn finish(mut self) -> Result<Received, UpdateError> {
        if self.bytes == 0 {
            return Err(UpdateError::Empty);
        }
        let mut file = self.file.take().expect("open until finished");
        file.flush().await.map_err(io("cannot write", &self.path))?;
        file.sync_all().await.map_err(io("cannot sync", &self.path))?;
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        Ok(Received {
            path: std::mem::take(&mut self.path),
            sha256: hex::encode(hasher.finalize()),
            bytes: self.bytes,
            kept: false,
        })
    }
}

impl Drop for IncomingBundle {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A whole upload on disk, not yet checked: removed if dropped before it is put in place.
#[derive(Debug)]
pub struct Received {
    path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    kept: bool,
}

impl Drop for Received {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `rauc info --keyring CA --output-format=json FILE`'s output, or why rauc refused the file (its
/// last line on stderr: "signature verification failed: …").
async fn rauc_info(ca: &Path, bundle: &Path) -> Result<Vec<u8>, UpdateError> {
    let mut command = tokio::process::Command::new("rauc");
    command
        .arg("info")
        .arg("--keyring")
        .arg(ca)
        .arg("--output-format=json")
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(RAUC_INFO_TIMEOUT, command.output()).await {
        Err(_) => return Err(UpdateError::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UpdateError::RaucMissing)
        }
        Ok(Err(e)) => {
            return Err(UpdateError::Io {
                what: "cannot run rauc on",
                path: bundle.into(),
                source: e,
            })
        }
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let why = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("rauc-Message"))
        .unwrap_or("no reason given")
        .chars()
        .take(300)
        .collect::<String>();
    Err(UpdateError::Refused(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn only_a_pem_certificate_is_kept_as_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let updates = UpdateBundles::open(&DataDir::open(tmp.path()).unwrap()).unwrap();
        for bad in [&b""[..], b"not a certificate", b"-----BEGIN PRIVATE KEY-----\n"] {
            assert!(matches!(updates.set_ca(bad), Err(UpdateError::BadCa)));
        }
        assert!(!updates.has_ca());
        updates.set_ca(PEM).unwrap();
        assert!(updates.has_ca());
        assert_eq!(std::fs::read(updates.ca_path()).unwrap(), PEM);
    }

    #[tokio::test]
    async fn an_upload_is_hashed_as_it_comes_and_nothing_is_left_of_one_not_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let updates = UpdateBundles::open(&DataDir::open(tmp.path()).unwrap()).unwrap();
        let dir = tmp.path().join("updates");
        assert!(matches!(updates.incoming().await, Err(UpdateError::NoCa(_))));
        updates.set_ca(PEM).unwrap();
        let mut incoming = updates.incoming().await.unwrap();
        incoming.write(b"abc").await.unwrap();
        assert_eq!(files(&dir).len(), 1, "written aside");
        drop(incoming);
        assert!(files(&dir).is_empty(), "an upload cut short leaves nothing");

        let mut incoming = updates.incoming().await.unwrap();
        incoming.write(b"ab").await.unwrap();
        incoming.write(b"c").await.unwrap();
        let received = incoming.finish().await.unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!((received.sha256.as_str(), received.bytes), (abc, 3));
        drop(received);
        assert!(files(&dir).is_empty(), "a file not kept is removed");

        let empty = updates.incoming().await.unwrap();
        assert!(matches!(empty.finish().await, Err(UpdateError::Empty)));
        assert!(files(&dir).is_empty());
    }
}
