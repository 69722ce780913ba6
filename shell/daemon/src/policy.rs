//! The school's signed policy, fetched from the server: verified, never older than the one in
//! force, its list files checked by size and sha256, then written atomically where slate-ui and
//! slate-dns read them (`<state_dir>/policy/{kiosk,filter}.json`, `policy/lists/<sha256>.txt`).
//! List files are named by their content, so a new one is written beside those in force, never
//! over them; `filter.json` is the single commit point; files it no longer names are collected
//! only after it is written ([`lists_to_fetch`], [`slate_protocol::device::unreferenced_list_files`]).
//! A crash between leaves files nobody names, which the next fetch collects.
//! The staff unlock PINs' document is written apart, to `<state_dir>/staff.json` with mode 0600:
//! `policy/` is readable by the kiosk user and so by every app a pupil runs, and a PIN's hash
//! must not be (a 6-digit PIN falls to an offline search).
//! Owns the checks (pure: [`verify_reply`], [`check_list`], [`profile_for`], [`lists_to_fetch`])
//! and the fetch
//! ([`PolicyFetcher::fetch_once`]) through the [`DeviceApi`] trait ([`HttpDeviceApi`] in the
//! daemon, a fake in tests). Must never replace a good policy with one that does not check:
//! any refusal keeps the last good files untouched.

use crate::credential::Credential;
use crate::upload::{HttpAnswer, UploadError};
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use slate_ipc::atomic;
use slate_ipc::state_dir::StateDir;
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::device::{check_list_name, unreferenced_list_files, ListFile, PolicyReply};
use slate_protocol::kiosk::{self, Policy as KioskPolicy};
use slate_protocol::routes;
use slate_protocol::staff::{parse_staff_pins, StaffPins};
use slate_protocol::{Breach, PolicyPart, PolicyRefusal, PupilId};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest policy reply read (a school's roster and apps; lists come separately).
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;
/// The largest list file accepted (a million domains is about 20 MB).
pub const MAX_LIST_BYTES: u64 = 256 * 1024 * 1024;
/// How long one policy or list request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyFetchError {
    #[error("no answer from the server: {0}")]
    Transport(String),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("policy reply refused: {0}")]
    Reply(String),
    #[error("{which} policy refused: {reason}")]
    Bundle { which: &'static str, reason: String },
    #[error("{which} policy issued at {offered:?} is older than the one in force ({current})")]
    Older { which: &'static str, offered: Option<DateTime<Utc>>, current: DateTime<Utc> },
    #[error("list `{name}` refused: {reason}")]
    List { name: String, reason: String },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
}

/// GET requests to the device API.
pub trait DeviceApi: Send + Sync + 'static {
    /// `path` includes any query; at most `max_bytes` of the body are read (more is an error).
    fn get(
        &self,
        credential: &Credential,
        path: &str,
        timeout: Duration,
        max_bytes: u64,
    ) -> impl Future<Output = Result<HttpAnswer, UploadError>> + Send;
}

/// The parts of the filter policy slated needs (slate-dns reads the rest).
#[derive(Debug, Deserialize)]
struct FilterHead {
    issued_at: DateTime<Utc>,
    #[serde(default)]
    lists: BTreeMap<String, ListFile>,
}

/// A policy that checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub kiosk: KioskPolicy,
    /// The bundles exactly as received, to be written as they are.
    pub kiosk_json: Vec<u8>,
    pub filter_json: Vec<u8>,
    pub filter_issued_at: DateTime<Utc>,
    pub lists: BTreeMap<String, ListFile>,
    pub staff: StaffPins,
    pub staff_json: Vec<u8>,
    /// The kiosk policy carries plain picture PINs (a server before hashes).
    pub legacy_form: bool,
}

/// What is in force on the device (from the files written last time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InForce {
    pub kiosk_issued_at: Option<DateTime<Utc>>,
    pub filter_issued_at: Option<DateTime<Utc>>,
    pub staff_issued_at: Option<DateTime<Utc>>,
    /// Some file in force is in a legacy form (a bundle without a kind, or plain picture PINs),
    /// written by the release before: a fetch in the newer form replaces it even when its
    /// `issued_at` is the same.
    pub legacy_form: bool,
}

impl InForce {
    pub fn of(v: &Verified) -> Self {
        Self {
            kiosk_issued_at: v.kiosk.issued_at,
            filter_issued_at: Some(v.filter_issued_at),
            staff_issued_at: Some(v.staff.issued_at),
            legacy_form: v.legacy_form,
        }
    }
}

/// Whether a cached bundle (bytes that opened) or kiosk policy is in a legacy form. Pure.
fn legacy_bundle(bytes: &[u8]) -> bool {
    serde_json::from_slice::<SignedBundle>(bytes).map_or(true, |b| b.is_legacy())
}

fn plain_picture_pins(kiosk: &KioskPolicy) -> bool {
    kiosk.classes.iter().flat_map(|c| &c.pupils).any(|p| p.picture_pin.is_some())
}

fn bundle_err(which: &'static str) -> impl Fn(String) -> PolicyFetchError {
    move |reason| PolicyFetchError::Bundle { which, reason }
}

/// Where a bundle comes from: the network must name the kind expected; the device's own cache
/// may be in the legacy form its previous release wrote (see `slate_protocol::bundle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Server,
    Cache,
}

/// Opens a bundle that must be of `kind`. Pure.
fn open_bundle(
    kind: BundleKind,
    source: Source,
    bytes: &[u8],
    key: &VerifyingKey,
) -> Result<String, slate_protocol::ProtocolError> {
    match source {
        Source::Server => SignedBundle::open_as(kind, bytes, key),
        Source::Cache => SignedBundle::open_cached_as(kind, bytes, key),
    }
}

/// Opens one kiosk bundle (bytes of a `SignedBundle`). Pure.
pub fn open_kiosk(
    bytes: &[u8],
    key: &VerifyingKey,
    source: Source,
) -> Result<KioskPolicy, PolicyFetchError> {
    let payload = open_bundle(BundleKind::KioskPolicy, source, bytes, key)
        .map_err(|e| bundle_err("kiosk")(e.to_string()))?;
    kiosk::parse_policy(&payload).map_err(|e| bundle_err("kiosk")(e.to_string()))
}

fn open_filter(
    bytes: &[u8],
    key: &VerifyingKey,
    source: Source,
) -> Result<FilterHead, PolicyFetchError> {
    let payload = open_bundle(BundleKind::FilterPolicy, source, bytes, key)
        .map_err(|e| bundle_err("filter")(e.to_string()))?;
    let head: FilterHead = serde_json::from_str(&payload)
        .map_err(|e| bundle_err("filter")(format!("not a filter policy: {e}")))?;
    for (name, file) in &head.lists {
        file.validate(name).map_err(|e| bundle_err("filter")(e.to_string()))?;
        if file.bytes > MAX_LIST_BYTES {
            return Err(bundle_err("filter")(format!(
                "list `{name}` is over {MAX_LIST_BYTES} bytes"
            )));
        }
    }
    Ok(head)
}

/// Opens one staff bundle: signed by `key`, a valid document whose every hash the device can
/// check. Pure.
pub fn open_staff(
    bytes: &[u8],
    key: &VerifyingKey,
    source: Source,
) -> Result<StaffPins, PolicyFetchError> {
    let err = bundle_err("staff");
    let payload =
        open_bundle(BundleKind::StaffPins, source, bytes, key).map_err(|e| err(e.to_string()))?;
    let staff = parse_staff_pins(&payload).map_err(|e| err(e.to_string()))?;
    crate::staff::UnlockPins::new(Some(&staff), None).map_err(|e| err(e.to_string()))?;
    Ok(staff)
}

/// Checks a policy reply: all three bundles signed by `key`, each of the kind its place says
/// (a kiosk policy served as the filter policy is refused), their payloads valid, none older
/// than what is in force (a kiosk policy without `issued_at` counts as older than one with).
/// Pure.
pub fn verify_reply(
    body: &[u8],
    key: &VerifyingKey,
    in_force: &InForce,
) -> Result<Verified, PolicyFetchError> {
    let reply = PolicyReply::from_json(body).map_err(|e| PolicyFetchError::Reply(e.to_string()))?;
    let kiosk_json = serde_json::to_vec(&reply.kiosk).expect("a bundle serialises");
    let filter_json = serde_json::to_vec(&reply.filter).expect("a bundle serialises");
    let staff_json = serde_json::to_vec(&reply.staff).expect("a bundle serialises");
    let kiosk = open_kiosk(&kiosk_json, key, Source::Server)?;
    let filter = open_filter(&filter_json, key, Source::Server)?;
    let staff = open_staff(&staff_json, key, Source::Server)?;
    let legacy_form = plain_picture_pins(&kiosk);
    if let Some(current) = in_force.kiosk_issued_at {
        if kiosk.issued_at.is_none_or(|offered| offered < current) {
            return Err(PolicyFetchError::Older {
                which: "kiosk",
                offered: kiosk.issued_at,
                current,
            });
        }
    }
    if let Some(current) = in_force.filter_issued_at {
        if filter.issued_at < current {
            return Err(PolicyFetchError::Older {
                which: "filter",
                offered: Some(filter.issued_at),
                current,
            });
        }
    }
    if let Some(current) = in_force.staff_issued_at {
        if staff.issued_at < current {
            return Err(PolicyFetchError::Older {
                which: "staff",
                offered: Some(staff.issued_at),
                current,
            });
        }
    }
    Ok(Verified {
        kiosk,
        kiosk_json,
        filter_json,
        filter_issued_at: filter.issued_at,
        lists: filter.lists,
        staff,
        staff_json,
        legacy_form,
    })
}

/// Checks a list file's bytes against the manifest. Pure.
pub fn check_list(name: &str, file: &ListFile, bytes: &[u8]) -> Result<(), PolicyFetchError> {
    let err = |reason: String| PolicyFetchError::List { name: name.to_owned(), reason };
    if bytes.len() as u64 != file.bytes {
        return Err(err(format!("{} bytes, the policy says {}", bytes.len(), file.bytes)));
    }
    let hash = slate_protocol::device::list_digest(bytes);
    if hash != file.sha256 {
        return Err(err(format!("sha256 {hash}, the policy says {}", file.sha256)));
    }
    Ok(())
}

/// The manifest's lists to fetch: those whose file (by content) is not in `stored`, one per
/// content (two lists with the same bytes share a file), in name order. Pure.
pub fn lists_to_fetch(
    manifest: &BTreeMap<String, ListFile>,
    stored: &BTreeSet<String>,
) -> Vec<(String, ListFile)> {
    let mut wanted = BTreeSet::new();
    manifest
        .iter()
        .filter(|(_, file)| !stored.contains(&file.file_name()))
        .filter(|(_, file)| wanted.insert(file.file_name()))
        .map(|(name, file)| (name.clone(), file.clone()))
        .collect()
}

/// The filter profile of a signed-in pupil: their class's (see `Class::filter_profile`).
/// `None`: not on the roster (the policy's default applies). Pure.
pub fn profile_for(policy: &KioskPolicy, pupil: &PupilId) -> Option<String> {
    let class = policy.classes.iter().find(|c| c.pupils.iter().any(|p| &p.id == pupil))?;
    Some(class.filter_profile())
}

/// Where the files go: [`StateDir`]'s layout, which slate-ui and slate-dns read too.
#[derive(Debug, Clone)]
pub struct PolicyFiles {
    /// The directory written as a whole (`policy/`).
    pub dir: PathBuf,
    layout: StateDir,
}

/// The policy in force, from the files.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub in_force: InForce,
    pub kiosk: Option<KioskPolicy>,
    pub staff: Option<StaffPins>,
}

impl PolicyFiles {
    pub fn new(state_dir: &Path) -> Self {
        let layout = StateDir::new(state_dir);
        Self { dir: layout.policy_dir(), layout }
    }
    /// The staff document (mode 0600, outside `policy/`: slated's alone).
    pub fn staff(&self) -> PathBuf {
        self.layout.staff()
    }
    pub fn kiosk(&self) -> PathBuf {
        self.layout.kiosk_policy()
    }
    pub fn filter(&self) -> PathBuf {
        self.layout.filter_policy()
    }
    /// Where the list file a manifest entry describes is stored (named by its content).
    pub fn list_file(&self, file: &ListFile) -> PathBuf {
        self.layout.list_file(file)
    }
    pub fn lists_dir(&self) -> PathBuf {
        self.layout.lists_dir()
    }

    /// The policy in force from the files, checked again (a file that does not verify is as
    /// good as none), with the kiosk policy and the staff document.
    pub fn load(&self, key: &VerifyingKey) -> Loaded {
        let mut legacy_form = false;
        let mut read = |path: PathBuf| {
            let bytes = std::fs::read(path).ok()?;
            legacy_form |= legacy_bundle(&bytes);
            Some(bytes)
        };
        let (kiosk_bytes, filter_bytes, staff_bytes) =
            (read(self.kiosk()), read(self.filter()), read(self.staff()));
        let kiosk = kiosk_bytes.and_then(|b| match open_kiosk(&b, key, Source::Cache) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "ignoring the cached kiosk policy");
                None
            }
        });
        let filter = filter_bytes.and_then(|b| open_filter(&b, key, Source::Cache).ok());
        let staff = staff_bytes.and_then(|b| match open_staff(&b, key, Source::Cache) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "ignoring the cached staff PINs");
                None
            }
        });
        legacy_form |= kiosk.as_ref().is_some_and(plain_picture_pins);
        let in_force = InForce {
            kiosk_issued_at: kiosk.as_ref().and_then(|k| k.issued_at),
            filter_issued_at: filter.map(|f| f.issued_at),
            staff_issued_at: staff.as_ref().map(|s| s.issued_at),
            legacy_form,
        };
        Loaded { in_force, kiosk, staff }
    }

    /// The manifest's list files already stored and matching it, by file name.
    fn stored_lists(&self, manifest: &BTreeMap<String, ListFile>) -> BTreeSet<String> {
        manifest
            .iter()
            .filter(|(name, file)| {
                let path = self.list_file(file);
                std::fs::metadata(&path).is_ok_and(|meta| meta.len() == file.bytes)
                    && std::fs::read(&path)
                        .is_ok_and(|bytes| check_list(name, file, &bytes).is_ok())
            })
            .map(|(_, file)| file.file_name())
            .collect()
    }

    /// The bytes of list `name` as stored before content addressing (`<name>.txt`), if they are
    /// the file `file` describes: an upgraded device need not fetch a list it has.
    fn legacy_list(&self, name: &str, file: &ListFile) -> Option<Vec<u8>> {
        let path = self.lists_dir().join(slate_protocol::device::legacy_list_file_name(name));
        let bytes = std::fs::read(path).ok()?;
        check_list(name, file, &bytes).is_ok().then_some(bytes)
    }

    /// Removes the list files `filter.json` (the manifest in force, read back and verified) does
    /// not name, and leftovers of interrupted writes. Nothing is removed when `filter.json`
    /// cannot be read or does not verify: then nobody knows which files are in force.
    pub fn collect_lists(&self, key: &VerifyingKey) -> Result<Vec<String>, PolicyFetchError> {
        let read_error = |path: PathBuf| {
            move |e: std::io::Error| PolicyFetchError::Read { path, reason: e.to_string() }
        };
        let bytes = std::fs::read(self.filter()).map_err(read_error(self.filter()))?;
        let in_force = open_filter(&bytes, key, Source::Cache)?;
        let dir = self.lists_dir();
        let present: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(read_error(dir)(e)),
        };
        let gone = unreferenced_list_files(in_force.lists.values(), &present);
        for name in &gone {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(write_error(&path)(e))
                }
                _ => {}
            }
        }
        Ok(gone)
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never half:
/// a temporary file beside it, fsync'd, renamed over, and the directory fsync'd.
///
/// The policy is readable by slated's group (0640, directories 0750) whatever the umask: the
/// kiosk UI and slate-dns run as that group and verify it themselves, while the rest of the state
/// directory (spool, credential) stays slated's alone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PolicyFetchError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error(path))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
        .map_err(write_error(path))?;
    replace_file(path, bytes, 0o640)
}

/// As [`write_atomic`], but for slated's eyes only: the file is 0600 from the moment it is
/// created (whatever the umask), and the directory's mode is left as it is.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PolicyFetchError> {
    replace_file(path, bytes, 0o600)
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> PolicyFetchError + '_ {
    move |e| PolicyFetchError::Write { path: path.to_owned(), reason: e.to_string() }
}

/// Replaces `path` with `bytes` through `.<name>.tmp` beside it, made with `mode` from the
/// start (whatever the umask), fsynced, renamed over, and the directory fsynced.
fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PolicyFetchError> {
    let tmp = atomic::temporary_beside(path);
    atomic::replace(path, &tmp, Some(mode), bytes).map_err(|e| write_error(path)(e.source))
}

/// What slated itself takes from a policy just installed.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub kiosk: KioskPolicy,
    pub staff: StaffPins,
}

/// What one fetch did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// A newer policy was written (its kiosk and staff parts, for slated itself).
    Updated(Box<Installed>),
    /// The server's policy is the one in force.
    Unchanged,
}

/// Fetches and installs the policy.
pub struct PolicyFetcher<A: DeviceApi> {
    api: A,
    key: VerifyingKey,
    files: PolicyFiles,
    in_force: InForce,
}

impl<A: DeviceApi> PolicyFetcher<A> {
    pub fn new(api: A, key: VerifyingKey, files: PolicyFiles, in_force: InForce) -> Self {
        Self { api, key, files, in_force }
    }

    pub fn in_force(&self) -> &InForce {
        &self.in_force
    }

    async fn get(
        &self,
        credential: &Credential,
        path: &str,
        max: u64,
    ) -> Result<Vec<u8>, PolicyFetchError> {
        let answer = self
            .api
            .get(credential, path, FETCH_TIMEOUT, max)
            .await
            .map_err(|e| PolicyFetchError::Transport(e.to_string()))?;
        if answer.status != 200 {
            return Err(PolicyFetchError::Status(answer.status));
        }
        Ok(answer.body)
    }

    /// One fetch: verify, fetch the lists not stored yet, then [`install_steps`] (new list files
    /// beside those in force, `filter.json`, staff, kiosk), then collect the list files
    /// `filter.json` no longer names.
    /// On any error nothing in force is changed: list files are written only once every list
    /// has checked, each under its own content's name, so never over a file in force.
    pub async fn fetch_once(
        &mut self,
        credential: &Credential,
    ) -> Result<Fetched, PolicyFetchError> {
        let path = slate_protocol::device::policy_path();
        let body = self.get(credential, &path, MAX_POLICY_BYTES as u64).await?;
        let verified = verify_reply(&body, &self.key, &self.in_force)?;
        let unchanged = InForce::of(&verified) == self.in_force;
        for name in verified.lists.keys() {
            check_list_name(name).map_err(|e| PolicyFetchError::List {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        }
        let mut fresh = Vec::new();
        for (name, file) in
            lists_to_fetch(&verified.lists, &self.files.stored_lists(&verified.lists))
        {
            let bytes = match self.files.legacy_list(&name, &file) {
                Some(bytes) => bytes,
                None => self.get(credential, &routes::device_list(&name), file.bytes).await?,
            };
            check_list(&name, &file, &bytes)?;
            fresh.push((file, bytes));
        }
        let outcome = if unchanged && fresh.is_empty() {
            Fetched::Unchanged
        } else {
            let steps = install_steps(&self.files, &verified, fresh);
            self.blocking(move || steps.iter().try_for_each(InstallStep::apply)).await?;
            self.in_force = InForce::of(&verified);
            Fetched::Updated(Box::new(Installed { kiosk: verified.kiosk, staff: verified.staff }))
        };
        // After the switch (or on a fetch that found nothing new, after a crash that came
        // before the collection): files `filter.json` does not name are garbage.
        let (files, key) = (self.files.clone(), self.key);
        match self.blocking(move || files.collect_lists(&key)).await {
            Ok(gone) if !gone.is_empty() => {
                tracing::info!(files = gone.len(), "old list files removed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "old list files not removed; next time"),
        }
        Ok(outcome)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PolicyFetchError> + Send + 'static,
    ) -> Result<T, PolicyFetchError> {
        tokio::task::spawn_blocking(work).await.map_err(|e| PolicyFetchError::Write {
            path: self.files.dir.clone(),
            reason: e.to_string(),
        })?
    }
}

/// One file written by an install.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallStep {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// The staff document is slated's alone; the rest is read by slate-ui and slate-dns.
    pub private: bool,
}

impl InstallStep {
    pub fn apply(&self) -> Result<(), PolicyFetchError> {
        match self.private {
            true => write_private(&self.path, &self.bytes),
            false => write_atomic(&self.path, &self.bytes),
        }
    }
}

/// The files an install writes, in order: the new list files (each under its content's name,
/// beside the files in force), then `filter.json`, the lists' commit point, then the staff and
/// kiosk documents. A crash after any prefix leaves the policy in force whole. Pure.
pub fn install_steps(
    files: &PolicyFiles,
    verified: &Verified,
    fresh: Vec<(ListFile, Vec<u8>)>,
) -> Vec<InstallStep> {
    let public =
        |path: PathBuf, bytes: &[u8]| InstallStep { path, bytes: bytes.to_vec(), private: false };
    let mut steps: Vec<InstallStep> = fresh
        .into_iter()
        .map(|(file, bytes)| InstallStep { path: files.list_file(&file), bytes, private: false })
        .collect();
    steps.push(public(files.filter(), &verified.filter_json));
    steps.push(InstallStep {
        path: files.staff(),
        bytes: verified.staff_json.clone(),
        private: true,
    });
    steps.push(public(files.kiosk(), &verified.kiosk_json));
    steps
}

/// The real device API: reqwest over rustls with the uploader's TLS settings.
#[derive(Debug, Clone)]
pub struct HttpDeviceApi {
    client: reqwest::Client,
    base: String,
}

impl HttpDeviceApi {
    pub fn new(
        server: &crate::config::ServerConfig,
        clock_known: crate::server_tls::ClockKnown,
    ) -> Result<Self, UploadError> {
        let client = crate::upload::http_client(server, clock_known)?;
        Ok(Self { client, base: server.url.clone() })
    }
}

impl DeviceApi for HttpDeviceApi {
    async fn get(
        &self,
        credential: &Credential,
        path: &str,
        timeout: Duration,
        max_bytes: u64,
    ) -> Result<HttpAnswer, UploadError> {
        let transport = |e: reqwest::Error| UploadError::Transport(crate::upload::error_chain(&e));
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(credential.expose())
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(UploadError::Transport(format!("answer over {max_bytes} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer { status, body })
    }
}

#[cfg(test)]
mod tests;

/// The security breach a fetch's error is, if it is one: a policy or list that did not verify
/// or was older than the one in force. Not reaching the server, a status or the card is not.
/// Pure.
pub fn breach_of(error: &PolicyFetchError) -> Option<Breach> {
    let part = |which: &str| match which {
        "kiosk" => PolicyPart::Kiosk,
        "filter" => PolicyPart::Filter,
        _ => PolicyPart::Staff,
    };
    let refused = |part, list, reason| Some(Breach::PolicyRefused { part, list, reason });
    match error {
        PolicyFetchError::Reply(_) => refused(PolicyPart::Reply, None, PolicyRefusal::Malformed),
        PolicyFetchError::Bundle { which, .. } => {
            refused(part(which), None, PolicyRefusal::Signature)
        }
        PolicyFetchError::Older { which, .. } => refused(part(which), None, PolicyRefusal::Older),
        PolicyFetchError::List { name, .. } => {
            let name = (name.len() <= 64).then(|| name.clone());
            refused(PolicyPart::List, name, PolicyRefusal::Digest)
        }
        PolicyFetchError::Transport(_)
        | PolicyFetchError::Status(_)
        | PolicyFetchError::Write { .. }
        | PolicyFetchError::Read { .. } => None,
    }
}

/// Whether to send `breach` having sent `last` since the last good fetch: once per breach, so
/// a server offering the same bad list at every refresh is one event, not one every minute.
/// Pure.
pub fn breach_is_new(last: Option<&Breach>, breach: &Breach) -> bool {
    last != Some(breach)
}

/// Fetches at start, every `refresh` and whenever `wake` is notified, until the task is aborted.
/// Each newer policy goes to `updates` after slate-dns was told to reload; each new refusal
/// that is a security breach ([`breach_of`], [`breach_is_new`]) to `breaches`.
pub async fn run<A: DeviceApi>(
    mut fetcher: PolicyFetcher<A>,
    state_dir: PathBuf,
    refresh: Duration,
    wake: std::sync::Arc<tokio::sync::Notify>,
    updates: tokio::sync::mpsc::Sender<Box<Installed>>,
    breaches: tokio::sync::mpsc::Sender<Breach>,
    dns: crate::dns::DnsSocket,
) {
    let mut last_breach: Option<Breach> = None;
    loop {
        let dir = state_dir.clone();
        let credential =
            match tokio::task::spawn_blocking(move || crate::credential::load(&dir)).await {
                Ok(Ok(Some(c))) => Some(c),
                _ => None,
            };
        let wait = match credential {
            // Not enrolled yet: the uploader is on it; look again soon.
            None => refresh.min(Duration::from_secs(2)),
            Some(credential) => {
                match fetcher.fetch_once(&credential).await {
                    Ok(Fetched::Updated(installed)) => {
                        last_breach = None;
                        let (issued_at, staff) =
                            (installed.kiosk.issued_at, installed.staff.staff.len());
                        tracing::info!(?issued_at, staff, "new policy installed");
                        if let Err(e) = dns.reload().await {
                            tracing::error!(error = %e, "slate-dns did not reload the policy");
                        }
                        if updates.send(installed).await.is_err() {
                            return;
                        }
                    }
                    Ok(Fetched::Unchanged) => {
                        last_breach = None;
                        tracing::debug!("policy unchanged")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "policy not updated; the last good one stays");
                        if let Some(breach) = breach_of(&e) {
                            if breach_is_new(last_breach.as_ref(), &breach) {
                                if breaches.send(breach.clone()).await.is_err() {
                                    return;
                                }
                                last_breach = Some(breach);
                            }
                        }
                    }
                }
                refresh
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}
