//! Where the filter's policy and lists come from on a device: the signed policy bundle slated
//! wrote (`--policy`, `<state_dir>/policy/filter.json`) and the list files beside it (`--lists`,
//! `<state_dir>/policy/lists/<sha256>.txt`, each named by its content as the manifest gives it,
//! `slate_ipc::state_dir::open_list`; format in [`crate::lists`]). slated writes new list files
//! beside the ones in force and removes old ones only after `filter.json` is replaced, so the
//! files a `filter.json` names are there whenever it is.
//!
//! The policy's `lists` manifest says which files to load and what each must be (size and
//! SHA-256); the signature covers the manifest, so a file that does not match was not sent by the
//! school server and is not read at all. Such a list is then "not loaded", and the filter refuses
//! every name in the profiles that need it (fail closed), except that an illegal-content list
//! (`iwf`, `ctiru`) with a last good copy keeps that copy in force: an old IWF list blocks more
//! than none.
//!
//! Pure core: [`verify`] and [`assemble`]. The files are read by [`Files`].

use crate::filter::Filter;
use crate::lists::{Category, DomainList};
use crate::policy::{Policy, PolicyError};
use crate::server::FilterHandle;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use slate_protocol::device::list_digest;
use slate_protocol::device::ListFile;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

/// Why a list file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListRefused {
    #[error("cannot read it: {0}")]
    Unreadable(String),
    #[error("it is {actual} bytes; the signed manifest says {expected}")]
    Size { expected: u64, actual: u64 },
    #[error("its sha256 does not match the signed manifest")]
    Hash,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the policy bundle {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What a reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub issued_at: DateTime<Utc>,
    /// Lists loaded from their files.
    pub loaded: Vec<String>,
    /// Lists whose file was refused, and why; their profiles refuse every name...
    pub refused: Vec<(String, ListRefused)>,
    /// ...except these illegal-content lists among them, kept from the last good copy.
    pub kept: Vec<String>,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy issued at {} in force", self.issued_at.to_rfc3339())?;
        for (name, why) in &self.refused {
            let outcome = if self.kept.contains(name) {
                "its last good copy stays in force"
            } else {
                "its profiles refuse every name"
            };
            write!(f, "; list {name} refused ({why}): {outcome}")?;
        }
        Ok(())
    }
}

/// The list files read for a manifest, by list name: their bytes, or why they could not be read.
pub type ListFiles = BTreeMap<String, Result<Vec<u8>, ListRefused>>;

/// Whether `bytes` are the file the manifest describes.
pub fn verify(file: &ListFile, bytes: &[u8]) -> Result<(), ListRefused> {
    let actual = bytes.len() as u64;
    if actual != file.bytes {
        return Err(ListRefused::Size { expected: file.bytes, actual });
    }
    if list_digest(bytes) != file.sha256 {
        return Err(ListRefused::Hash);
    }
    Ok(())
}

/// The category a list has under `policy`: an allow list if a profile uses it in `allow_only`,
/// else by its name ([`Category::of_list`]).
pub fn category_in(policy: &Policy, name: &str) -> Category {
    let allow = policy.profiles.values().any(|p| p.allow_only.iter().flatten().any(|l| l == name));
    if allow {
        Category::Allowed
    } else {
        Category::of_list(name)
    }
}

/// Builds the lists to install with `policy` from the files read for its manifest: verified
/// files are parsed; a refused illegal-content list falls back to `previous` (the copy in force).
pub fn assemble(
    policy: &Policy,
    files: ListFiles,
    previous: impl Fn(&str) -> Option<DomainList>,
) -> (Vec<DomainList>, Reloaded) {
    let mut lists = Vec::new();
    let mut report = Reloaded {
        issued_at: policy.issued_at,
        loaded: Vec::new(),
        refused: Vec::new(),
        kept: Vec::new(),
    };
    for (name, manifest) in &policy.lists {
        let checked = match files.get(name) {
            Some(Ok(bytes)) => verify(manifest, bytes).map(|()| bytes),
            Some(Err(why)) => Err(why.clone()),
            None => Err(ListRefused::Unreadable("not read".into())),
        };
        let category = category_in(policy, name);
        match checked {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let (list, parsed) = DomainList::parse(name.as_str(), category, &text);
                if parsed.bad_count > 0 {
                    tracing::warn!(list = %name, bad = parsed.bad_count, lines = ?parsed.bad_lines,
                        "skipped malformed lines");
                }
                lists.push(list);
                report.loaded.push(name.clone());
            }
            Err(why) => {
                if category.is_always_enforced() {
                    if let Some(mut last) = previous(name) {
                        last.category = category;
                        lists.push(last);
                        report.kept.push(name.clone());
                    }
                }
                report.refused.push((name.clone(), why));
            }
        }
    }
    (lists, report)
}

/// The policy bundle and list directory on disk, and the key that signs them.
#[derive(Debug, Clone)]
pub struct Files {
    pub policy: PathBuf,
    pub lists: PathBuf,
    pub key: VerifyingKey,
}

impl Files {
    /// Reads and checks everything, then installs it into `filter` in one step. On a policy
    /// error nothing changes (the last good policy, or none, stays in force).
    pub fn load_into(&self, filter: &mut Filter) -> Result<Reloaded, ReloadError> {
        let (policy, files) = self.read()?;
        let (lists, report) = assemble(&policy, files, |n| filter.list(n).cloned());
        filter.install(policy, lists)?;
        Ok(report)
    }

    /// [`Files::load_into`] for a running server: files are read and parsed without holding the
    /// filter, which is locked only to copy a last good list and to swap in the result.
    pub fn reload(&self, handle: &FilterHandle) -> Result<Reloaded, ReloadError> {
        let (policy, files) = self.read()?;
        let (lists, report) = assemble(&policy, files, |n| handle.read(|f| f.list(n).cloned()));
        handle.update(|f| f.install(policy, lists))?;
        Ok(report)
    }

    fn read(&self) -> Result<(Policy, ListFiles), ReloadError> {
        let bytes = std::fs::read(&self.policy)
            .map_err(|source| ReloadError::Read { path: self.policy.clone(), source })?;
        let policy = Policy::open(&bytes, &self.key)?;
        let files = policy
            .lists
            .iter()
            .map(|(name, manifest)| {
                let file = slate_ipc::state_dir::open_list(&self.lists, name, manifest);
                (name.clone(), read_list(file, manifest.bytes))
            })
            .collect();
        Ok((policy, files))
    }
}

/// Reads a list file, but never more than one byte past its expected size (a file that grew is
/// refused without reading it all).
fn read_list(file: std::io::Result<std::fs::File>, expected: u64) -> Result<Vec<u8>, ListRefused> {
    let file = file.map_err(|e| ListRefused::Unreadable(e.to_string()))?;
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(64 << 20));
    file.take(expected.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ListRefused::Unreadable(e.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"v":1,"issued_at":"2026-11-17T08:00:00Z","default_profile":"ks2",
     "profiles":{"ks1":{"allow_only":["ks1-sites"]},"ks2":{"block_lists":["adult"]}},
     "lists":{"adult":{"sha256":"SHA_ADULT","bytes":LEN_ADULT},
              "iwf":{"sha256":"SHA_IWF","bytes":LEN_IWF},
              "ks1-sites":{"sha256":"SHA_KS1","bytes":LEN_KS1}}}"#;
    const ADULT: &[u8] = b"*.adult.test\n";
    const IWF: &[u8] = b"*.illegal.test\nurl-sha256:00\n";
    const KS1: &[u8] = b"*.bbc.co.uk\n";

    fn policy() -> Policy {
        let mut text = POLICY.to_string();
        for (key, bytes) in [("ADULT", ADULT), ("IWF", IWF), ("KS1", KS1)] {
            text = text.replace(&format!("SHA_{key}"), &list_digest(bytes));
            text = text.replace(&format!("LEN_{key}"), &bytes.len().to_string());
        }
        Policy::from_json(&text).unwrap()
    }

    fn files(entries: &[(&str, Result<&[u8], ListRefused>)]) -> ListFiles {
        entries.iter().map(|(n, r)| (n.to_string(), r.clone().map(<[u8]>::to_vec))).collect()
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            list_digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_file_must_match_size_and_hash() {
        let file = ListFile { sha256: list_digest(ADULT), bytes: ADULT.len() as u64 };
        assert_eq!(verify(&file, ADULT), Ok(()));
        assert_eq!(
            verify(&file, b"*.adult.test\nx\n"),
            Err(ListRefused::Size { expected: 13, actual: 15 })
        );
        assert_eq!(verify(&file, b"*.adult.tesT\n"), Err(ListRefused::Hash));
    }

    #[test]
    fn matching_files_load_with_their_categories() {
        let p = policy();
        let (lists, report) = assemble(
            &p,
            files(&[("adult", Ok(ADULT)), ("iwf", Ok(IWF)), ("ks1-sites", Ok(KS1))]),
            |_| None,
        );
        let got: Vec<_> =
            lists.iter().map(|l| (l.name.as_str(), l.category, l.set.len())).collect();
        assert_eq!(
            got,
            [
                ("adult", Category::Adult, 1),
                ("iwf", Category::ChildAbuse, 1),
                ("ks1-sites", Category::Allowed, 1)
            ]
        );
        assert!(report.refused.is_empty() && report.kept.is_empty());
        assert_eq!(report.loaded, ["adult", "iwf", "ks1-sites"]);
    }

    #[test]
    fn a_refused_list_is_left_out_but_an_illegal_one_keeps_its_last_good_copy() {
        let p = policy();
        let last_iwf = DomainList::parse("iwf", Category::ChildAbuse, "*.old-illegal.test\n").0;
        let last_adult = DomainList::parse("adult", Category::Adult, "*.old-adult.test\n").0;
        let previous = |n: &str| match n {
            "iwf" => Some(last_iwf.clone()),
            "adult" => Some(last_adult.clone()),
            _ => None,
        };
        let (lists, report) = assemble(
            &p,
            files(&[
                ("adult", Ok(b"tampered\n")),
                ("iwf", Err(ListRefused::Unreadable("gone".into()))),
                ("ks1-sites", Ok(KS1)),
            ]),
            previous,
        );
        let names: Vec<_> = lists.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["iwf", "ks1-sites"], "adult is not loaded, so its profiles fail closed");
        assert_eq!(lists[0], last_iwf);
        assert_eq!(report.kept, ["iwf"]);
        let refused: Vec<_> = report.refused.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(refused, ["adult", "iwf"]);
        let text = report.to_string();
        assert!(text.contains("list adult refused"), "{text}");
        assert!(text.contains("list iwf refused (cannot read it: gone): its last good"), "{text}");
    }
}
