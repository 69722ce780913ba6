//! slated's state directory as the other programs on the device see it: where the signed
//! policy files are that slated writes and slate-ui and slate-dns read. One place for the
//! layout, so a rename cannot leave a reader looking at an old path.
//!
//! ```text
//! <state_dir>/policy/kiosk.json        the signed kiosk policy (slate-ui)
//! <state_dir>/policy/filter.json       the signed filter policy (slate-dns, slate-ui's URL salt)
//! <state_dir>/policy/lists/<name>.txt  the list files filter.json's manifest names
//! <state_dir>/staff.json               the signed staff PINs (slated only; mode 0600)
//! ```

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
    /// The list file named `name` in the filter policy's manifest.
    pub fn list(&self, name: &str) -> PathBuf {
        self.lists_dir().join(format!("{name}.txt"))
    }
    /// The staff document, outside `policy/` so that only slated can read it.
    pub fn staff(&self) -> PathBuf {
        self.root.join("staff.json")
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
        assert_eq!(dir.list("adult"), Path::new("/var/lib/slate/policy/lists/adult.txt"));
        assert_eq!(dir.lists_dir(), Path::new("/var/lib/slate/policy/lists"));
        assert_eq!(dir.staff(), Path::new("/var/lib/slate/staff.json"));
    }
}
