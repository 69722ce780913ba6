//! The device's credential for the school server, kept in `state_dir/credential` (mode 0600).
//! Owns that file; must not log or print the secret, nor talk to the server (enrollment is in
//! [`crate::upload`]).

use slate_ipc::atomic;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CREDENTIAL_FILE: &str = "credential";
const MAX_LEN: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("credential file {}: cannot {action}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("credential file {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("the server sent an unusable credential: {0}")]
    Unusable(String),
}

/// The secret the device presents as `Authorization: Bearer …`. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// Checks that the text can travel in an HTTP header: 1 to 512 visible ASCII characters.
    pub fn new(secret: impl Into<String>) -> Result<Self, String> {
        let secret = secret.into();
        if secret.is_empty() || secret.len() > MAX_LEN {
            return Err(format!("must be 1 to {MAX_LEN} characters"));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters only".into());
        }
        Ok(Self(secret))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<hidden>)")
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> CredentialError + 'a {
    move |source| CredentialError::Io { action, path: path.to_owned(), source }
}

/// Reads the stored credential, if there is one.
pub fn load(state_dir: &Path) -> Result<Option<Credential>, CredentialError> {
    let path = state_dir.join(CREDENTIAL_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let text = String::from_utf8(text).map_err(|_| CredentialError::Invalid {
        path: path.clone(),
        reason: "is not text".into(),
    })?;
    Credential::new(text.trim_end_matches(['\n', '\r']))
        .map(Some)
        .map_err(|reason| CredentialError::Invalid { path, reason })
}

/// Stores the credential atomically (temporary file with mode 0600, fsync, rename, fsync dir).
pub fn store(state_dir: &Path, credential: &Credential) -> Result<(), CredentialError> {
    std::fs::create_dir_all(state_dir).map_err(io_err("create", state_dir))?;
    let path = state_dir.join(CREDENTIAL_FILE);
    let tmp = state_dir.join(format!("{CREDENTIAL_FILE}.tmp"));
    atomic::replace_with(&path, &tmp, Some(0o600), |f| {
        f.write_all(credential.expose().as_bytes())?;
        f.write_all(b"\n")
    })
    .map_err(|e| CredentialError::Io {
        action: e.step.action(),
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stored_credentials_load_back_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let c = Credential::new("c-0123456789abcdef").unwrap();
        store(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(c.clone()));
        let mode =
            std::fs::metadata(dir.path().join(CREDENTIAL_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{c:?}").contains("0123456789"));
        // Replacing keeps the mode and the new value.
        let d = Credential::new("c-2").unwrap();
        store(dir.path(), &d).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(d));
    }

    #[test]
    fn unusable_credentials_are_refused() {
        for bad in ["", "has space", "line\nbreak", &"x".repeat(MAX_LEN + 1), "é"] {
            assert!(Credential::new(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_FILE), b"\xff\xfe").unwrap();
        assert!(matches!(load(dir.path()), Err(CredentialError::Invalid { .. })));
        std::fs::write(dir.path().join(CREDENTIAL_FILE), b"two words\n").unwrap();
        assert!(matches!(load(dir.path()), Err(CredentialError::Invalid { .. })));
    }
}
