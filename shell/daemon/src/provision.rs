//! `slated --check-provision FILE`: whether this device takes a provisioning file from its boot
//! partition, and what it sets (the rules and the format: [`slate_protocol::provisioning`]).
//! The I/O edge only: what the device knows (the school's key and its state directory from the
//! installed `slate.toml`, whether its credential is there) and the installed timezone and
//! keyboard names. The image's provisioning script applies what this prints.

use ed25519_dalek::VerifyingKey;
use slate_protocol::bundle::{verifying_key_from_base64, verifying_key_to_base64};
use slate_protocol::provisioning::{self, Installed, Provisioning, Source, Trust};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The school's key pinned on the data partition (in slated's state directory) once enrolled.
pub const PINNED_KEY_FILE: &str = "school-key";

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
    let enrolled = enrolled(&state_dir);
    // Once enrolled, the key is the one pinned then, not whatever slate.toml the card now has:
    // a card edited on a laptop with its own key could otherwise sign its own file.
    let key = if enrolled { pinned_key(&state_dir, key)? } else { key };
    let trust = Trust { school_key: key.as_ref(), enrolled };
    let bytes = read_limited(file)?;
    provisioning::open(&bytes, trust, names).map_err(|e| e.to_string())
}

/// The school's key as this device first checked a file after enrolling, kept on the data
/// partition ([`PINNED_KEY_FILE`]): pinned from `configured` (the installed slate.toml's) the
/// first time, read back ever after. A pin that cannot be read refuses (fail closed).
pub fn pinned_key(
    state_dir: &Path,
    configured: Option<VerifyingKey>,
) -> Result<Option<VerifyingKey>, String> {
    let path = state_dir.join(PINNED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => verifying_key_from_base64(text.trim())
            .map(Some)
            .map_err(|e| format!("the school's key kept in {} is damaged ({e})", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let Some(key) = configured else { return Ok(None) };
            let tmp = state_dir.join(format!("{PINNED_KEY_FILE}.tmp"));
            slate_ipc::atomic::replace_with(&path, &tmp, Some(0o644), |f| {
                writeln!(f, "{}", verifying_key_to_base64(&key))
            })
            .map_err(|e| {
                format!("cannot keep the school's key: {}: {}", e.path.display(), e.source)
            })?;
            Ok(Some(key))
        }
        Err(e) => Err(format!("cannot read the school's key kept in {}: {e}", path.display())),
    }
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
    fn the_key_is_pinned_at_the_first_check_after_enrolling_and_kept() {
        use ed25519_dalek::SigningKey;
        let dir = tempfile::tempdir().unwrap();
        let school = SigningKey::from_bytes(&[1; 32]).verifying_key();
        let stranger = SigningKey::from_bytes(&[2; 32]).verifying_key();
        assert_eq!(pinned_key(dir.path(), None).unwrap(), None, "nothing to pin");
        assert!(!dir.path().join(PINNED_KEY_FILE).exists());
        assert_eq!(pinned_key(dir.path(), Some(school)).unwrap(), Some(school), "pinned");
        // A card given another key later: the pinned one stays.
        assert_eq!(pinned_key(dir.path(), Some(stranger)).unwrap(), Some(school));
        assert_eq!(pinned_key(dir.path(), None).unwrap(), Some(school));
        std::fs::write(dir.path().join(PINNED_KEY_FILE), "not a key\n").unwrap();
        assert!(pinned_key(dir.path(), Some(school)).unwrap_err().contains("damaged"));
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
