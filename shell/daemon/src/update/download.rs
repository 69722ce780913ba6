//! Fetching a bundle: into `<sha256>.part`, resumed from its length with `Range` (a server
//! that answers 200 instead of 206 sends it whole: the part starts again), never past the
//! offered size, then its SHA-256 checked over the whole file, fsynced, and renamed to
//! `<sha256>.raucb` (the directory fsynced too). A wrong digest removes the part.

use super::decide::OfferedBundle;
use super::UpdateServer;
use crate::credential::Credential;
use sha2::{Digest, Sha256};
use slate_protocol::update::UpdateOffer;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DownloadError {
    #[error("no answer from the server: {0}")]
    Transport(String),
    #[error("the server answered HTTP {0} for the bundle")]
    Status(u16),
    #[error("the connection was cut after {got} of {bytes} bytes")]
    Cut { got: u64, bytes: u64 },
    #[error("the server sent more than the {0} bytes offered")]
    TooLarge(u64),
    #[error("the bundle's SHA-256 is {got}, the offer said {want}")]
    WrongDigest { got: String, want: String },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

impl DownloadError {
    /// The bundle itself is wrong (not the network or the card): fetching it again cannot help.
    pub fn bundle_is_bad(&self) -> bool {
        matches!(self, DownloadError::TooLarge(_) | DownloadError::WrongDigest { .. })
    }
}

/// Where a `Content-Range: bytes <start>-<end>/<size>` starts. Pure.
pub fn content_range_start(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

/// Downloads `target` into `dir` (created if missing), resuming a `.part` there. Returns the
/// checked bundle's path.
pub async fn fetch<S: UpdateServer>(
    server: &S,
    credential: &Credential,
    target: &UpdateOffer,
    dir: &Path,
) -> Result<PathBuf, DownloadError> {
    let part = dir.join(target.part_file());
    let write = |reason: std::io::Error| DownloadError::Write {
        path: part.clone(),
        reason: reason.to_string(),
    };
    tokio::fs::create_dir_all(dir).await.map_err(write)?;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&part)
        .await
        .map_err(write)?;
    let mut have = file.metadata().await.map_err(write)?.len();
    if have > target.bytes {
        have = 0;
    }
    if have < target.bytes {
        let mut answer = server
            .fetch_bundle(credential, &target.sha256, have)
            .await
            .map_err(|e| DownloadError::Transport(e.to_string()))?;
        match answer.status {
            206 if have > 0 && answer.range_start == Some(have) => {}
            // The whole bundle (a server or proxy without ranges, or a fresh start).
            200 => have = 0,
            // Our part is not a prefix the server can continue: start again next time.
            416 => {
                file.set_len(0).await.map_err(write)?;
                return Err(DownloadError::Status(416));
            }
            206 => {
                return Err(DownloadError::Transport(format!(
                    "asked from byte {have}, the server sent from {:?}",
                    answer.range_start
                )))
            }
            other => return Err(DownloadError::Status(other)),
        }
        file.set_len(have).await.map_err(write)?;
        file.seek(std::io::SeekFrom::Start(have)).await.map_err(write)?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut cut = None;
        while let Some(chunk) = answer.chunks.recv().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    cut = Some(e);
                    break;
                }
            };
            if have + chunk.len() as u64 > target.bytes {
                drop(out);
                remove(&part).await;
                return Err(DownloadError::TooLarge(target.bytes));
            }
            out.write_all(&chunk).await.map_err(write)?;
            have += chunk.len() as u64;
        }
        // What arrived is kept (and fsynced) for the next try, even when cut.
        out.flush().await.map_err(write)?;
        out.get_ref().sync_all().await.map_err(write)?;
        if have < target.bytes {
            tracing::debug!(reason = ?cut, have, "update: bundle body ended early");
            return Err(DownloadError::Cut { got: have, bytes: target.bytes });
        }
    } else {
        file.sync_all().await.map_err(write)?;
    }
    let hashed = part.clone();
    let got = tokio::task::spawn_blocking(move || sha256_of(&hashed))
        .await
        .map_err(|e| write(std::io::Error::other(e.to_string())))?
        .map_err(write)?;
    if got != target.sha256 {
        remove(&part).await;
        return Err(DownloadError::WrongDigest { got, want: target.sha256.clone() });
    }
    let bundle = dir.join(target.bundle_file());
    let (from, to, parent) = (part.clone(), bundle.clone(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        std::fs::rename(&from, &to)?;
        std::fs::File::open(&parent)?.sync_all()
    })
    .await
    .map_err(|e| write(std::io::Error::other(e.to_string())))?
    .map_err(write)?;
    Ok(bundle)
}

/// The SHA-256 of a file, as 64 lowercase hex digits, read in 1 MiB pieces.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "update: file not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts() {
        assert_eq!(content_range_start("bytes 100-999/1000"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("bytes */1000"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
