//! Where the kiosk policy comes from: slated's cache `<state_dir>/policy/kiosk.json`, a
//! [`SignedBundle`] that slate-ui checks again itself with the school server's public key (the
//! UI trusts no file just because slated wrote it), or, for the demo and tests only, a plain JSON
//! file (`--policy-unsigned`). Owns reading that file when it changes and deciding which policy
//! is in force; must not decide screens (a refused policy is simply an `Err`, and the screen
//! machine fails closed on it).

use ed25519_dalek::VerifyingKey;
use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
use slate_protocol::kiosk::{parse_policy, Policy};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The policy, or why there is none, in words for the adult reading "Ask your teacher".
pub type Loaded = Result<Policy, String>;

/// slated's cached kiosk bundle under its state directory ([`slate_ipc::state_dir`]).
pub fn kiosk_bundle_path(state_dir: &Path) -> PathBuf {
    slate_ipc::state_dir::StateDir::new(state_dir).kiosk_policy()
}

/// Where to read the policy from.
#[derive(Debug, Clone)]
pub enum Source {
    /// slated's cached bundle, checked with the server's key (or why there is no usable key:
    /// then every read fails closed).
    Signed { path: PathBuf, key: Result<VerifyingKey, String> },
    /// A plain JSON policy: the demo and tests only.
    Unsigned { path: PathBuf },
}

impl Source {
    /// The signed source, with the key as written in `slate.toml` (base64); `None` means no key
    /// was given.
    pub fn signed(path: PathBuf, public_key: Option<&str>) -> Self {
        let key = match public_key {
            None => {
                Err("no public key was given (--public-key), so no policy can be trusted".into())
            }
            Some(text) => verifying_key_from_base64(text).map_err(|e| format!("--public-key: {e}")),
        };
        Self::Signed { path, key }
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Signed { path, .. } | Self::Unsigned { path } => path,
        }
    }

    /// Turns the file's bytes into a policy. Pure.
    pub fn open(&self, bytes: &[u8]) -> Loaded {
        let at = self.path().display();
        match self {
            Self::Signed { key, .. } => {
                let key = key.as_ref().map_err(Clone::clone)?;
                // slated's cache: a kiosk policy by its kind (or in the legacy form the
                // release before wrote), never another kind of bundle.
                let payload = SignedBundle::open_cached_as(BundleKind::KioskPolicy, bytes, key)
                    .map_err(|e| format!("{at}: {e}"))?;
                parse_policy(&payload).map_err(|e| format!("{at}: {e}"))
            }
            Self::Unsigned { .. } => {
                let text = std::str::from_utf8(bytes).map_err(|_| format!("{at}: is not UTF-8"))?;
                parse_policy(text).map_err(|e| format!("{at}: {e}"))
            }
        }
    }
}

/// Which policy is in force after reading `new`. Pure. A file that does not check fails closed;
/// one issued before the policy in force is a replay and is not taken (the device never goes
/// back to an older policy, as slated does).
pub fn choose(current: &Loaded, new: Loaded) -> Loaded {
    match (current, new) {
        (_, Err(why)) => Err(why),
        (Ok(cur), Ok(new)) => match (cur.issued_at, new.issued_at) {
            (Some(was), Some(now)) if now < was => {
                tracing::warn!(%was, %now, "kiosk policy older than the one in force: kept the newer");
                Ok(cur.clone())
            }
            _ => Ok(new),
        },
        (Err(_), Ok(new)) => Ok(new),
    }
}

/// Where the chosen class and pupil are in a new policy, found by the class's name and the
/// pupil's id (the indexes the screens keep point into the old one). Pure.
pub fn remap(
    old: &Policy,
    new: &Policy,
    class: Option<usize>,
    pupil: Option<usize>,
) -> (Option<usize>, Option<usize>) {
    let Some(old_class) = class.and_then(|c| old.classes.get(c)) else { return (None, None) };
    let Some(new_class) = new.classes.iter().position(|c| c.name == old_class.name) else {
        return (None, None);
    };
    let pupil = pupil
        .and_then(|p| old_class.pupils.get(p))
        .and_then(|p| new.classes[new_class].pupils.iter().position(|q| q.id == p.id));
    (Some(new_class), pupil)
}

/// Where a signed-in pupil is in the policy: (class, pupil) indexes. Pure.
pub fn locate(policy: &Policy, pupil: &slate_protocol::PupilId) -> Option<(usize, usize)> {
    policy
        .classes
        .iter()
        .enumerate()
        .find_map(|(c, class)| class.pupils.iter().position(|p| &p.id == pupil).map(|p| (c, p)))
}

/// What a file looked like: slated renames a new file into place, so the inode changes; a file
/// rewritten in place changes its time or length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub modified: Option<SystemTime>,
    pub len: u64,
    pub inode: u64,
}

impl Stamp {
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
    }
}

/// Largest kiosk policy file read (a school's whole roster is far smaller).
pub const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

/// The policy file, read again whenever it changes.
#[derive(Debug)]
pub struct PolicyFile {
    source: Source,
    /// What the file looked like at the last read (`Some(None)`: it was missing).
    last: Option<Option<Stamp>>,
}

impl PolicyFile {
    pub fn new(source: Source) -> Self {
        Self { source, last: None }
    }

    /// Reads the file if it changed since the last call (the first call always reads);
    /// `None` when nothing changed.
    pub fn poll(&mut self) -> Option<Loaded> {
        let stamp = Stamp::of(self.source.path());
        if self.last == Some(stamp) {
            return None;
        }
        self.last = Some(stamp);
        Some(self.read())
    }

    fn read(&self) -> Loaded {
        let path = self.source.path();
        let at = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read {at}: {e}"))?;
        let mut bytes = Vec::new();
        use std::io::Read;
        file.take(MAX_POLICY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {at}: {e}"))?;
        if bytes.len() as u64 > MAX_POLICY_BYTES {
            return Err(format!("{at}: larger than {MAX_POLICY_BYTES} bytes"));
        }
        self.source.open(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use slate_protocol::kiosk::SAMPLE_POLICY;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn b64(seed: u8) -> String {
        slate_protocol::bundle::verifying_key_to_base64(&key(seed).verifying_key())
    }

    fn bundle(payload: &str, seed: u8) -> Vec<u8> {
        let bundle =
            SignedBundle::sign_as(BundleKind::KioskPolicy, payload.into(), "k1", &key(seed));
        serde_json::to_vec(&bundle).unwrap()
    }

    fn with_issued(at: &str) -> Policy {
        let mut p = parse_policy(SAMPLE_POLICY).unwrap();
        p.issued_at = Some(at.parse().unwrap());
        p
    }

    #[test]
    fn a_signed_bundle_opens_only_with_the_schools_key() {
        let path = PathBuf::from("/var/lib/slate/policy/kiosk.json");
        let good = Source::signed(path.clone(), Some(&b64(1)));
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        assert_eq!(good.open(&bundle(SAMPLE_POLICY, 1)), Ok(sample));

        #[rustfmt::skip]
        let refused: Vec<(Source, Vec<u8>, &str)> = vec![
            // Signed by someone else.
            (good.clone(), bundle(SAMPLE_POLICY, 2), "`signature`"),
            // The plain policy where a bundle belongs.
            (good.clone(), SAMPLE_POLICY.as_bytes().to_vec(), "malformed"),
            // Signed, but not a policy that checks.
            (good.clone(), bundle(r#"{"v":1,"classes":[],"apps":[]}"#, 1), "`classes` is empty"),
            (good.clone(), b"".to_vec(), "malformed"),
            // No key, or a bad one: nothing can be trusted.
            (Source::signed(path.clone(), None), bundle(SAMPLE_POLICY, 1), "no public key"),
            (Source::signed(path.clone(), Some("bm90IGEga2V5")), bundle(SAMPLE_POLICY, 1), "--public-key: invalid field `public_key`"),
        ];
        for (source, bytes, expected) in refused {
            let err = source.open(&bytes).unwrap_err();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
        let err = good.open(&bundle(SAMPLE_POLICY, 2)).unwrap_err();
        assert!(err.starts_with("/var/lib/slate/policy/kiosk.json: "), "{err}");
    }

    #[test]
    fn the_unsigned_file_is_plain_json() {
        let source = Source::Unsigned { path: "demo.json".into() };
        assert!(source.open(SAMPLE_POLICY.as_bytes()).is_ok());
        assert!(source.open(&bundle(SAMPLE_POLICY, 1)).unwrap_err().starts_with("demo.json: "));
        assert!(source.open(&[0xff, 0xfe]).unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn which_policy_is_in_force() {
        let old = with_issued("2026-11-20T08:00:00Z");
        let new = with_issued("2026-11-23T08:00:00Z");
        let unstamped = parse_policy(SAMPLE_POLICY).unwrap();
        let none: Loaded = Err("missing".into());
        #[rustfmt::skip]
        let table: Vec<(Loaded, Loaded, Loaded)> = vec![
            (none.clone(), Ok(old.clone()), Ok(old.clone())),
            (Ok(old.clone()), Ok(new.clone()), Ok(new.clone())),
            // A replayed older bundle does not replace the newer one.
            (Ok(new.clone()), Ok(old.clone()), Ok(new.clone())),
            (Ok(new.clone()), Ok(new.clone()), Ok(new.clone())),
            (Ok(new.clone()), Ok(unstamped.clone()), Ok(unstamped.clone())),
            (Ok(unstamped.clone()), Ok(old.clone()), Ok(old.clone())),
            // A file that does not check fails closed, whatever was in force.
            (Ok(new.clone()), Err("bad signature".into()), Err("bad signature".into())),
            (none, Err("still missing".into()), Err("still missing".into())),
        ];
        for (current, read, expected) in table {
            assert_eq!(choose(&current, read.clone()), expected, "{current:?} then {read:?}");
        }
    }

    #[test]
    fn choices_follow_the_class_and_pupil_into_a_new_policy() {
        let old = parse_policy(SAMPLE_POLICY).unwrap();
        let mut new = old.clone();
        new.classes.swap(0, 1); // Rowan first, Oak second
        new.classes[1].pupils.remove(0); // Amira left Oak
        #[rustfmt::skip]
        let table = [
            ((None, None), (None, None)),
            ((Some(0), None), (Some(1), None)),
            ((Some(0), Some(1)), (Some(1), Some(0))), // Ben
            ((Some(0), Some(0)), (Some(1), None)),    // Amira is gone
            ((Some(1), Some(2)), (Some(0), Some(2))), // Kiran
            ((Some(9), Some(0)), (None, None)),
        ];
        for ((c, p), expected) in table {
            assert_eq!(remap(&old, &new, c, p), expected, "{c:?} {p:?}");
        }
        new.classes.retain(|c| c.name != "Oak");
        assert_eq!(remap(&old, &new, Some(0), Some(1)), (None, None));

        let id = |s: &str| slate_protocol::PupilId::new(s).unwrap();
        assert_eq!(locate(&old, &id("p-19b2e0")), Some((0, 1)));
        assert_eq!(locate(&old, &id("p-e0e0e3")), Some((1, 2)));
        assert_eq!(locate(&old, &id("p-nobody")), None);
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = kiosk_bundle_path(dir.path());
        assert!(path.ends_with("policy/kiosk.json"));
        let mut file = PolicyFile::new(Source::signed(path.clone(), Some(&b64(1))));
        let first = file.poll().expect("the first poll reads");
        assert!(first.unwrap_err().contains("cannot read"));
        assert_eq!(file.poll(), None, "still missing: nothing new");

        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // As slated writes it: a temporary file renamed into place.
        let put = |bytes: &[u8]| {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        put(&bundle(SAMPLE_POLICY, 1));
        assert!(file.poll().expect("changed").is_ok());
        assert_eq!(file.poll(), None);
        put(&bundle(SAMPLE_POLICY, 2));
        assert!(file.poll().expect("changed").unwrap_err().contains("signature"));
        std::fs::remove_file(&path).unwrap();
        assert!(file.poll().expect("removed").is_err());
    }
}
