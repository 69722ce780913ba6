//! `slated --check-provision FILE`: whether this device takes a provisioning file from its boot
//! partition, and what it sets (the rules and the format: [`slate_protocol::provisioning`]).
//! The I/O edge only: what the device knows (the school's key and its state directory from the
//! installed `slate.toml`, whether its credential is there) and the installed timezone and
//! keyboard names. The image's provisioning script applies what this prints.

use slate_protocol::provisioning::{self, Installed, Provisioning, Source, Trust};
use std::path::{Path, PathBuf};

/// The installed timezones and keyboard layouts, as files in their directories.
pub struct InstalledNames {
    pub zoneinfo: PathBuf,
    pub xkb_symbols: PathBuf,
}

impl Installed for InstalledNames {
    fn has_timezone(&self, name: &str) -> bool {
        self.zoneinfo.join(name).is_file()
    }
    /// A system without XKB's symbols (no kiosk screen) takes any well-formed name.
    fn has_keyboard(&self, name: &str) -> bool {
        !self.xkb_symbols.is_dir() || self.xkb_symbols.join(name).is_file()
    }
}

/// Opens `file` as this device: the key and state directory from the installed configuration
/// `config` (none installed: no key, the default state directory). `Err` is the reason, for the
/// console and the config-error screen.
pub fn check(
    file: &Path,
    config: &Path,
    names: &InstalledNames,
) -> Result<(Source, Provisioning), String> {
    let (key, state_dir) = match crate::config::read_config(config) {
        Ok(config) => (config.policy.public_key, config.state_dir),
        Err(_) if !config.exists() => (None, PathBuf::from(crate::config::DEFAULT_STATE_DIR)),
        Err(e) => return Err(format!("cannot tell whether this device has enrolled: {e}")),
    };
    let trust = Trust { school_key: key.as_ref(), enrolled: enrolled(&state_dir) };
    let bytes = read_limited(file)?;
    provisioning::open(&bytes, trust, names).map_err(|e| e.to_string())
}

/// Whether slated has a credential: it has enrolled. Anything but a clear "not there" counts as
/// enrolled, so a file that cannot be checked is never taken unsigned.
pub fn enrolled(state_dir: &Path) -> bool {
    match std::fs::symlink_metadata(state_dir.join(crate::credential::CREDENTIAL_FILE)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// The file, refused past the largest a provisioning file may be.
fn read_limited(file: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let limit = provisioning::MAX_FILE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(limit).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_means_enrolled_and_an_unreadable_state_dir_too() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!enrolled(dir.path()));
        assert!(!enrolled(&dir.path().join("missing")));
        std::fs::write(dir.path().join(crate::credential::CREDENTIAL_FILE), "c-1\n").unwrap();
        assert!(enrolled(dir.path()));
        // A state "directory" that is a file: not a clear "not there".
        let file = dir.path().join(crate::credential::CREDENTIAL_FILE);
        assert!(enrolled(&file));
    }

    #[test]
    fn installed_names_are_files_in_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("zoneinfo/Europe")).unwrap();
        std::fs::write(dir.path().join("zoneinfo/Europe/London"), "TZif").unwrap();
        let names = InstalledNames {
            zoneinfo: dir.path().join("zoneinfo"),
            xkb_symbols: dir.path().join("xkb"),
        };
        assert!(names.has_timezone("Europe/London"));
        assert!(!names.has_timezone("Europe"), "a directory is no timezone");
        assert!(names.has_keyboard("gb"), "no XKB symbols: any layout");
        std::fs::create_dir_all(dir.path().join("xkb")).unwrap();
        std::fs::write(dir.path().join("xkb/gb"), "").unwrap();
        assert!(names.has_keyboard("gb") && !names.has_keyboard("fr"));
    }
}
