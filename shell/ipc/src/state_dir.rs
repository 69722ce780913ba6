//! slated's state directory as the other programs on the device see it: where the signed
//! policy files are that slated writes and slate-ui and slate-dns read. One place for the
//! layout, so a rename cannot leave a reader looking at an old path.
//!
//! ```text
//! <state_dir>/policy/kiosk.json        the signed kiosk policy (slate-ui)
//! <state_dir>/policy/filter.json       the signed filter policy (slate-dns, slate-ui's URL salt)
//! <state_dir>/policy/lists/<sha256>.txt  the list files filter.json's manifest names, each
//!                                        under its content's hash (`ListFile::file_name`)
//! <state_dir>/staff.json                 the signed staff PINs (slated only; mode 0600)
//! ```
//!
//! `filter.json` is the lists' single commit point: slated writes a new list beside the files in
//! force (never over one), then `filter.json`, and only then removes what it no longer names. A
//! crash between leaves files nobody names, never a manifest naming a file that is not there.

use slate_protocol::device::{legacy_list_file_name, ListFile};
use std::path::{Path, PathBuf};

/// The state directory unless slated's config (or a program's `--state-dir`) says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/slate";

/// The layout under one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The directory of the policy files (written as a whole, read by others).
    pub fn policy_dir(&self) -> PathBuf {
        self.root.join("policy")
    }
    pub fn kiosk_policy(&self) -> PathBuf {
        self.policy_dir().join("kiosk.json")
    }
    pub fn filter_policy(&self) -> PathBuf {
        self.policy_dir().join("filter.json")
    }
    /// The directory of the list files.
    pub fn lists_dir(&self) -> PathBuf {
        self.policy_dir().join("lists")
    }
    /// Where the list file a manifest entry describes is stored.
    pub fn list_file(&self, file: &ListFile) -> PathBuf {
        self.lists_dir().join(file.file_name())
    }
    /// The staff document, outside `policy/` so that only slated can read it.
    pub fn staff(&self) -> PathBuf {
        self.root.join("staff.json")
    }
}

/// Opens list `name`'s file in `lists_dir` as the manifest entry `file` names it, or, when that
/// is absent, the name software before content addressing gave it (a device upgraded and not
/// yet given a new policy). The caller checks the bytes against `file` either way.
pub fn open_list(lists_dir: &Path, name: &str, file: &ListFile) -> std::io::Result<std::fs::File> {
    match std::fs::File::open(lists_dir.join(file.file_name())) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::File::open(lists_dir.join(legacy_list_file_name(name))).map_err(|_| e)
        }
        opened => opened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_documented_one() {
        let dir = StateDir::new(DEFAULT_STATE_DIR);
        assert_eq!(dir.kiosk_policy(), Path::new("/var/lib/slate/policy/kiosk.json"));
        assert_eq!(dir.filter_policy(), Path::new("/var/lib/slate/policy/filter.json"));
        let file = ListFile::of(b"x\n");
        let listed = format!("/var/lib/slate/policy/lists/{}.txt", file.sha256);
        assert_eq!(dir.list_file(&file), Path::new(&listed));
        assert_eq!(dir.lists_dir(), Path::new("/var/lib/slate/policy/lists"));
        assert_eq!(dir.staff(), Path::new("/var/lib/slate/staff.json"));
    }

    #[test]
    fn a_list_is_read_by_its_content_name_then_by_its_legacy_one() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let file = ListFile::of(b"new\n");
        let read = |name: &str| {
            let mut text = String::new();
            open_list(dir.path(), name, &file)
                .map(|mut f| f.read_to_string(&mut text))
                .map(|_| text)
        };
        let err = read("adult").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("No such file"), "{err}");
        std::fs::write(dir.path().join("adult.txt"), "legacy\n").unwrap();
        assert_eq!(read("adult").unwrap(), "legacy\n");
        std::fs::write(dir.path().join(file.file_name()), "new\n").unwrap();
        assert_eq!(read("adult").unwrap(), "new\n");
    }
}
