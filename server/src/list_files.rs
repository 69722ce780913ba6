//! The uploaded filter list files in the data directory's `lists/`, each stored under its
//! content's name (`<sha256>.txt`, `ListFile::file_name`, as devices store them). The database
//! row that names a list's hash (`store::lists`) is the single commit point: an upload writes
//! its file beside the ones in force (never over one), commits the row, and only then removes
//! the files no row names ([`ListFiles::collect`]). A crash between leaves a file nobody names,
//! which the next upload or start collects, never a row naming a file that is not there.
//!
//! Uploads take [`ListFiles::changing`] for the whole write, commit and collection; a device's
//! fetch takes [`ListFiles::reading`] to look its list up and open the file, so a file it was
//! told of is not removed before it is open (an open file stays readable once unlinked).
//!
//! A data directory from before content addressing holds `<name>.txt`: at start each such file
//! that matches its row is moved to its content's name ([`legacy_moves`], pure), the rest
//! collected.

use crate::data_dir::{write_private_file, DataDirError};
use crate::store::{ListRecord, Store, StoreError};
use slate_protocol::device::{legacy_list_file_name, unreferenced_list_files, ListFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum ListFilesError {
    #[error(transparent)]
    Write(#[from] DataDirError),
    #[error("cannot list or remove files in {}: {source}", path.display())]
    Collect { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The list files' directory and the lock that keeps uploads and fetches apart.
#[derive(Debug, Clone)]
pub struct ListFiles {
    dir: PathBuf,
    lock: Arc<RwLock<()>>,
}

impl ListFiles {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, lock: Arc::default() }
    }

    /// Where the file a manifest entry describes is stored.
    pub fn path(&self, file: &ListFile) -> PathBuf {
        self.dir.join(file.file_name())
    }

    /// Held by an upload from writing its file until the old ones are collected.
    pub async fn changing(&self) -> OwnedRwLockWriteGuard<()> {
        self.lock.clone().write_owned().await
    }

    /// Held by a device's fetch while it looks its list up and opens the file.
    pub async fn reading(&self) -> OwnedRwLockReadGuard<()> {
        self.lock.clone().read_owned().await
    }

    /// Writes a new list's bytes under their content's name (0600, atomically). Blocking.
    pub fn write(&self, file: &ListFile, bytes: &[u8]) -> Result<(), ListFilesError> {
        Ok(write_private_file(&self.path(file), bytes)?)
    }

    /// Removes the files no row in `in_force` names (and leftovers of interrupted writes);
    /// returns their names. Blocking; only under [`ListFiles::changing`] or before serving.
    pub fn collect(&self, in_force: &[ListRecord]) -> Result<Vec<String>, ListFilesError> {
        let gone = unreferenced_list_files(in_force.iter().map(|r| &r.file), &self.present()?);
        for name in &gone {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ListFilesError::Collect { path, source })
                }
                _ => {}
            }
        }
        Ok(gone)
    }

    /// At start, before serving: files named by list name moved to their content's name when
    /// they match their row, then everything no row names collected. Blocking.
    pub fn settle(&self, store: &Store) -> Result<(), ListFilesError> {
        let records = store.lists()?;
        for (legacy, file) in legacy_moves(&records, &self.present()?) {
            let from = self.dir.join(&legacy);
            let matches = std::fs::read(&from).is_ok_and(|b| ListFile::of(&b) == file);
            if !matches {
                tracing::warn!(file = %legacy, "an old list file does not match its list; upload it again");
                continue;
            }
            std::fs::rename(&from, self.path(&file))
                .and_then(|()| sync_dir(&self.dir))
                .map_err(|source| ListFilesError::Collect { path: from, source })?;
        }
        let gone = self.collect(&records)?;
        if !gone.is_empty() {
            tracing::info!(files = gone.len(), "list files no list names removed");
        }
        Ok(())
    }

    fn present(&self) -> Result<Vec<String>, ListFilesError> {
        let collect_err = |source| ListFilesError::Collect { path: self.dir.clone(), source };
        std::fs::read_dir(&self.dir)
            .map_err(collect_err)?
            .map(|entry| Ok(entry.map_err(collect_err)?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The files stored under a list's name (`<name>.txt`, before content addressing) to move to
/// their content's name: those of a list whose content-named file is absent. Pure.
pub fn legacy_moves(records: &[ListRecord], present: &[String]) -> Vec<(String, ListFile)> {
    records
        .iter()
        .filter(|r| !present.contains(&r.file.file_name()))
        .map(|r| (legacy_list_file_name(&r.name), r.file.clone()))
        .filter(|(legacy, _)| present.contains(legacy))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, bytes: &[u8]) -> ListRecord {
        ListRecord {
            name: name.into(),
            file: ListFile::of(bytes),
            uploaded_at: "2026-11-17T08:00:00Z".parse().unwrap(),
            uploaded_by: "it".into(),
        }
    }

    #[test]
    fn old_files_named_by_list_move_to_their_content_name_once() {
        let (adult, iwf) = (record("adult", b"a\n"), record("iwf", b"i\n"));
        let named = |r: &ListRecord| r.file.file_name();
        let cases: [(&str, Vec<String>, Vec<&str>); 4] = [
            (
                "an old data directory",
                vec!["adult.txt".into(), "iwf.txt".into()],
                vec!["adult", "iwf"],
            ),
            ("already moved", vec![named(&adult), named(&iwf)], vec![]),
            (
                "one moved, the other not",
                vec![named(&adult), "adult.txt".into(), "iwf.txt".into()],
                vec!["iwf"],
            ),
            ("no file at all", vec![], vec![]),
        ];
        let records = [adult.clone(), iwf.clone()];
        for (case, present, expected) in cases {
            let moves: Vec<String> = legacy_moves(&records, &present)
                .into_iter()
                .map(|(legacy, file)| {
                    let r = records.iter().find(|r| r.file == file).unwrap();
                    assert_eq!(legacy, format!("{}.txt", r.name));
                    r.name.clone()
                })
                .collect();
            assert_eq!(moves, expected, "{case}");
        }
    }

    #[test]
    fn settling_moves_matching_old_files_and_collects_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
        let lists = ListFiles::new(dir.path().join("lists"));
        std::fs::create_dir(dir.path().join("lists")).unwrap();
        let now = "2026-11-17T08:00:00Z".parse().unwrap();
        let (adult, iwf) = (b"adult.example\n".as_slice(), b"iwf.example\n".as_slice());
        store.save_list("adult", &ListFile::of(adult), "it", now).unwrap();
        store.save_list("iwf", &ListFile::of(iwf), "it", now).unwrap();
        let put = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.path().join("lists").join(name), bytes).unwrap()
        };
        put("adult.txt", adult);
        put("iwf.txt", b"not what the row says\n");
        put(
            &ListFile::of(b"an upload that never committed\n").file_name(),
            b"an upload that never committed\n",
        );
        put("x.partial", b"half");
        lists.settle(&store).unwrap();
        let mut left: Vec<String> = lists.present().unwrap();
        left.sort();
        assert_eq!(left, [ListFile::of(adult).file_name()], "iwf.txt did not match: not served");
        assert_eq!(std::fs::read(lists.path(&ListFile::of(adult))).unwrap(), adult);
    }
}
