//! Replacing a file so that a reader, a crash or a power cut finds the old file or the new one,
//! never half of either: the new contents go into a temporary file beside it, which is fsynced,
//! renamed over the file, and then the directory is fsynced so the rename itself is on the card.
//! slated writes its state this way (the policy files, the credential, the spool's segments and
//! reserve, the held report, the configuration without its used token).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The step of [`replace`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Making the temporary file (or setting its mode).
    Create,
    /// Writing the new contents into the temporary file.
    Write,
    /// Fsyncing the temporary file.
    Sync,
    /// Renaming the temporary file over the file.
    Rename,
    /// Fsyncing the directory. The file has been replaced; only the rename's durability is in
    /// doubt (a power cut may bring the old file back).
    SyncDir,
}

/// Why [`replace`] failed: the step, what it acted on (the temporary file for `Create`, `Write`
/// and `Sync`, the file for `Rename`, the directory for `SyncDir`) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot {} {}: {source}", step.action(), path.display())]
pub struct ReplaceError {
    pub step: Step,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl Step {
    /// What the step does, for messages: "create", "write", "sync" or "replace".
    pub fn action(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Write => "write",
            Step::Sync | Step::SyncDir => "sync",
            Step::Rename => "replace",
        }
    }
}

/// `.<name>.tmp` beside `path`: the temporary file's name when its owner has no other.
pub fn temporary_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    directory_of(path).join(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` (see [`replace_with`]).
pub fn replace(
    path: &Path,
    temporary: &Path,
    mode: Option<u32>,
    bytes: &[u8],
) -> Result<(), ReplaceError> {
    replace_with(path, temporary, mode, |file| file.write_all(bytes))
}

/// Replaces `path` with what `fill` writes: into `temporary` (beside `path`, in the same
/// directory; a leftover from a crash is removed first), made with `mode` from the start and
/// set to it exactly whatever the umask (`None`: as `File::create` makes files), fsynced,
/// renamed over `path`, and the directory fsynced. On a failure before the rename the temporary
/// file is removed; a failure of the directory's fsync comes after the file was replaced
/// ([`Step::SyncDir`]).
pub fn replace_with(
    path: &Path,
    temporary: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), ReplaceError> {
    let _ = std::fs::remove_file(temporary);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(0o666))
            .open(temporary)
            .map_err(failed(Step::Create, temporary))?;
        if let Some(mode) = mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(failed(Step::Create, temporary))?;
        }
        fill(&mut file).map_err(failed(Step::Write, temporary))?;
        file.sync_all().map_err(failed(Step::Sync, temporary))?;
        drop(file);
        std::fs::rename(temporary, path).map_err(failed(Step::Rename, path))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(temporary);
        return Err(e);
    }
    let dir = directory_of(path);
    File::open(dir).and_then(|d| d.sync_all()).map_err(failed(Step::SyncDir, dir))
}

fn failed(step: Step, path: &Path) -> impl FnOnce(std::io::Error) -> ReplaceError + '_ {
    move |source| ReplaceError { step, path: path.to_owned(), source }
}

/// The directory `path` is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replaces_the_file_with_its_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let tmp = temporary_beside(&path);
        assert_eq!(tmp, dir.path().join(".state.json.tmp"));
        std::fs::write(&tmp, b"a leftover from a crash").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace(&path, &tmp, Some(0o600), b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o600);
        assert!(!tmp.exists());
        replace(&path, &tmp, Some(0o640), b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment.log");
        let tmp = path.with_extension("tmp");
        replace(&path, &tmp, None, b"old").unwrap();
        let err = replace_with(&path, &tmp, None, |file| {
            file.write_all(b"half")?;
            Err(std::io::Error::other("the card is full"))
        })
        .unwrap_err();
        assert_eq!(err.step, Step::Write);
        assert_eq!(err.path, tmp);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_failed_rename_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in-the-way");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        let tmp = dir.path().join("in-the-way.tmp");
        let err = replace(&path, &tmp, None, b"new").unwrap_err();
        assert_eq!(err.step, Step::Rename);
        assert!(err.to_string().starts_with(&format!("cannot replace {}: ", path.display())));
        assert!(!tmp.exists());
    }
}
