//! The control socket that `slatectl` (and, for now, stand-ins for the kiosk UI and browser)
//! talk to. Owns the socket, the request format and its validation; must not change device state
//! itself: each valid request is handed to the daemon's core task, which answers it.
//!
//! # Protocol
//!
//! A Unix stream socket (mode 0660, group `control_group` so that the kiosk UI's user can reach
//! it). Each connection's peer is checked ([`Peer::of`]: `SO_PEERCRED` and its cgroup) and may
//! send only what its [`Role`] needs ([`allowed`]); others get `{"ok":false,"error":"refused:
//! …"}`. One JSON request per line, one JSON reply per line, as
//! many as the client likes on one connection. A request that is not valid gets
//! `{"ok":false,"error":"…"}` and the connection stays usable; nothing a client sends can stop
//! the daemon.
//!
//! ```text
//! {"cmd":"press"}                  -> {"ok":true,"report":"<event id>"}       after the report is fsync'd
//!                                  -> {"ok":true,"report":"<id>","already_held":true}   held: nothing new
//! {"cmd":"report"}                 (the same as press)
//! {"cmd":"sign_in","pupil":"p-7f3a9c","pictures":["sun","boat"]} -> {"ok":true,"session":"<id>"}
//!                                  -> {"ok":false,"error":"the device is held until …"}
//!                                  -> {"ok":false,"error":"wrong pictures: try again"}
//!                                     (the pupil must be on the kiosk policy's roster; pictures:
//!                                     their picture PIN, needed from the kiosk UI, not from root)
//! {"cmd":"check_pictures","pupil":"p-7f3a9c","pictures":["sun","boat"]} -> {"ok":true}
//!                                  -> {"ok":false,"error":"wrong pictures: try again"}
//! {"cmd":"sign_out"}               -> {"ok":true} | {"ok":false,"error":"nobody is signed in"}
//! {"cmd":"foreground","app":"browser","url":"https://…","title":"…","pid":4242}
//!                                  -> {"ok":true}     what a report made now would record;
//!                                     url, title, pid optional (pid: an app the sender started,
//!                                     in an app cgroup under its own; that cgroup is frozen)
//! {"cmd":"unlock","pin":"1234","choice":"close_app|false_alarm|block_site","staff":"t-04"}
//!                                  -> {"ok":true} | {"ok":false,"error":"the device is not held"}
//!                                  -> {"ok":false,"error":"wrong staff PIN (4 more before …)"}
//!                                  -> {"ok":false,"error":"too many wrong staff PINs: …",
//!                                      "locked_until":"2026-11-17T10:02:03Z"}
//!                                     (all optional; choice defaults to close_app; pin is
//!                                     required when a PIN hash is configured)
//! {"cmd":"status"}                 -> {"ok":true,"device":12,"state":"idle|in_session|held",
//!                                      "spool_pending":3,"enrolled":true,"screens_locked":false,
//!                                      "pupil":"p-7f3a9c","policy_issued_at":"…"}
//! {"cmd":"app_opened","app":"maths"}                 -> {"ok":true} (error: nobody signed in)
//! {"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0123abcd"} -> {"ok":true}
//! {"cmd":"activity"}               -> {"ok":true}     a touch: the idle timer starts again
//! {"cmd":"reassurance_shown"}      -> {"ok":true}     held, and the UI's reassurance screen is in
//!                                     front of every app: the screen lights for it (error: not held)
//! {"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"exact:x.example","list":"adult"}
//!                                  -> {"ok":true}     spooled with the session and pupil
//! {"cmd":"tell_teacher","url":"https://…","app":"maths"}
//!                                  -> {"ok":true,"report":"<id>"}   no darkness, nothing held
//! {"cmd":"device_refused","kind":"usb_storage","description":"0781:5567 SanDisk"} -> {"ok":true}
//! ```

use crate::apps::AppProcess;
use crate::cgroup;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slate_protocol::{
    DeviceNumber, Event, EventBody, EventId, FilterLayer, PupilId, RefusedDevice, ResolutionChoice,
    SessionId, StaffId,
};
use std::fmt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted, in bytes (a URL of 4 KiB and a title fit easily).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {}: cannot {action}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("control socket {}: another slated is already listening there", path.display())]
    InUse { path: PathBuf },
    #[error("control socket {}: the path exists and is not a socket; not removing it", path.display())]
    NotASocket { path: PathBuf },
}

/// A request, as sent on the socket. (Variants without fields are written `{}` so that unknown
/// fields are refused on them too.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// A report-button press, now.
    #[serde(alias = "report")]
    Press {},
    SignIn {
        pupil: PupilId,
        /// The pupil's picture PIN as tapped (picture names in order), when they have one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pictures: Option<Pictures>,
    },
    /// Whether these pictures are the pupil's picture PIN (the kiosk UI asks when the last
    /// picture is tapped; nothing changes).
    CheckPictures {
        pupil: PupilId,
        pictures: Pictures,
    },
    SignOut {},
    /// What is on screen (stands in for the kiosk browser's channel until it exists).
    Foreground {
        app: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// The app's process, in an app cgroup the sender made: that cgroup is frozen on a report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A member of staff unlocks a held device.
    Unlock {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<Pin>,
        /// What happens next; `close_app` when not given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        choice: Option<ResolutionChoice>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        staff: Option<StaffId>,
    },
    Status {},
    /// The pupil opened an approved app (the kiosk UI).
    AppOpened {
        app: String,
    },
    /// The pupil accepted the acceptable use agreement (the kiosk UI).
    AupAccepted {
        key_stage: String,
        text_version: String,
    },
    /// The pupil touched the screen (the kiosk UI, at most every 30 s).
    Activity {},
    /// The kiosk UI's reassurance screen is mapped in front of every app while the device is
    /// held: slated lights the screen for it.
    ReassuranceShown {},
    /// The filter refused a name (slate-dns) or a page (the browser).
    FilterBlocked {
        layer: FilterLayer,
        target: String,
        rule: String,
        list: String,
    },
    /// "Tell my teacher" on a blocked page.
    TellTeacher {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<String>,
    },
    /// Hardware the policy does not allow was plugged in (udev).
    DeviceRefused {
        kind: RefusedDevice,
        description: String,
    },
}

/// A staff PIN as typed; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pin(pub String);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<hidden>)")
    }
}

/// A picture PIN as tapped; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pictures(pub Vec<String>);

impl fmt::Debug for Pictures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pictures(<{} hidden>)", self.0.len())
    }
}

/// Whether `tapped` is `expected` (a picture PIN), comparing every picture whatever the first
/// difference. Pure.
pub fn pictures_match(expected: &[String], tapped: &[String]) -> bool {
    let mut differ = expected.len() != tapped.len();
    for (i, want) in expected.iter().enumerate() {
        let got = tapped.get(i).map_or(&[][..], |t| t.as_bytes());
        let want = want.as_bytes();
        let mut d = u8::from(got.len() != want.len());
        for (j, w) in want.iter().enumerate() {
            d |= w ^ got.get(j).copied().unwrap_or(0);
        }
        differ |= d != 0;
    }
    !differ
}

/// A reply, as sent on the socket. Fields that do not apply are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_held: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_pending: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled: Option<bool>,
    /// Unlocking is refused until then (too many wrong PINs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    /// What is wrong with the report button (`missing`, `stuck`), in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_fault: Option<slate_protocol::ButtonFault>,
    /// Why a press would not darken the screen (`cannot_darken`, `last_press_not_dark`), in
    /// `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_fault: Option<slate_protocol::DisplayFault>,
    /// What is wrong with the card (full: the reserve for reports in use or gone), in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_fault: Option<slate_protocol::StorageFault>,
    /// Whether a staff PIN has reached the device (without one a held device stays held), in
    /// `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_pin: Option<bool>,
    /// The teacher's "eyes on me" is in force, in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screens_locked: Option<bool>,
    /// The signed-in pupil, in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pupil: Option<PupilId>,
    /// When the kiosk policy in force was issued, in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_issued_at: Option<DateTime<Utc>>,
}

impl Reply {
    pub fn ok() -> Self {
        Self { ok: true, ..Self::default() }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, error: Some(message.into()), ..Self::default() }
    }

    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a reply always serialises");
        line.push(b'\n');
        line
    }
}

/// A valid request on its way to the daemon's core task, with where to send the answer.
#[derive(Debug)]
pub struct ControlMsg {
    pub request: Request,
    /// Who sent it (already allowed to send it).
    pub from: Role,
    /// For `foreground` with a `pid`: that process's app cgroup, checked.
    pub app: Option<AppProcess>,
    /// When the request arrived: the time of a `press`.
    pub received_at: DateTime<Utc>,
    pub reply: oneshot::Sender<Reply>,
}

/// Parses and validates one request line. Pure. The error is safe to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let request: Request = serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
    // The same checks the server makes, so that nothing spooled is what it would refuse.
    let probe = |body: EventBody, rename: &[(&str, &str)]| {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Event::new(DeviceNumber::new(1).expect("1 is a device number"), at, body)
            .validate()
            .map_err(|e| {
                let mut message = e.to_string();
                for (from, to) in rename {
                    message = message.replace(from, to);
                }
                format!("bad request: {message}")
            })
    };
    let nonempty = |field: &str, value: &str| {
        if value.is_empty() {
            Err(format!("bad request: `{field}` is empty"))
        } else {
            Ok(())
        }
    };
    let report =
        |app: Option<String>, url: Option<String>, title: Option<String>| EventBody::ReportFiled {
            session: None,
            pupil: None,
            app,
            url,
            page_title: title,
            blank_latency_us: None,
            recent_names: vec![],
            origin: slate_protocol::ReportOrigin::Button,
        };
    let nobody = || (SessionId(uuid::Uuid::nil()), PupilId::new("p-0").expect("a pupil id"));
    match &request {
        Request::SignIn { pictures: Some(pictures), .. }
        | Request::CheckPictures { pictures, .. } => check_pictures(pictures)?,
        Request::Foreground { app, url, title, .. } => {
            nonempty("app", app)?;
            probe(
                report(Some(app.clone()), url.clone(), title.clone()),
                &[("`page_title`", "`title`")],
            )?;
        }
        Request::AppOpened { app } => {
            nonempty("app", app)?;
            let (session, pupil) = nobody();
            probe(EventBody::AppOpened { session, pupil, app: app.clone() }, &[])?;
        }
        Request::AupAccepted { key_stage, text_version } => {
            check_aup(key_stage, text_version)?;
        }
        Request::FilterBlocked { layer, target, rule, list } => {
            nonempty("rule", rule)?;
            nonempty("list", list)?;
            let body = EventBody::FilterBlocked {
                session: None,
                pupil: None,
                layer: *layer,
                target: target.clone(),
                rule: rule.clone(),
                list: list.clone(),
            };
            probe(body, &[])?;
        }
        Request::TellTeacher { url, app } => {
            if let Some(app) = app {
                nonempty("app", app)?;
            }
            probe(report(app.clone(), Some(url.clone()), None), &[])?;
        }
        Request::DeviceRefused { kind, description } => {
            nonempty("description", description)?;
            probe(EventBody::DeviceRefused { kind: *kind, description: description.clone() }, &[])?;
        }
        _ => {}
    }
    Ok(request)
}

/// 1 to 8 picture names of at most 16 lowercase letters.
fn check_pictures(pictures: &Pictures) -> Result<(), String> {
    let ok =
        |p: &String| !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_lowercase());
    if pictures.0.is_empty() || pictures.0.len() > 8 || !pictures.0.iter().all(ok) {
        return Err("bad request: `pictures` must be 1 to 8 picture names".into());
    }
    Ok(())
}

/// `key_stage` is `ks1` or `ks2`; `text_version` is `<key_stage>-<8 lowercase hex digits>` (the
/// start of the agreement text's sha256).
fn check_aup(key_stage: &str, text_version: &str) -> Result<(), String> {
    if !matches!(key_stage, "ks1" | "ks2") {
        return Err(format!("bad request: `key_stage` {key_stage:?} is not \"ks1\" or \"ks2\""));
    }
    let hex =
        text_version.strip_prefix(key_stage).and_then(|rest| rest.strip_prefix('-')).filter(|h| {
            h.len() == 8 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if hex.is_none() {
        return Err(format!(
            "bad request: `text_version` is not \"{key_stage}-\" and 8 lowercase hex digits"
        ));
    }
    Ok(())
}

/// Who is on the other end of a connection, from `SO_PEERCRED` and the peer's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// uid 0: IT's `slatectl` over ssh.
    Root,
    /// The kiosk UI (`slate-ui`, user `slate-kiosk`), not inside an app cgroup.
    Kiosk,
    /// The DNS filter (`slate-dns`): only `filter_blocked` at the DNS layer.
    Dns,
    /// The udev-started `slate-device-refused@` unit (user `slate-refused`): only
    /// `device_refused`.
    Refused,
    /// A process inside an app cgroup, whatever its uid: nothing at all.
    App,
    /// Anyone else (or a peer whose cgroup could not be read): nothing at all.
    Other,
}

/// The users the control socket knows by uid (looked up by name at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerUsers {
    pub root: u32,
    pub kiosk: Option<u32>,
    pub dns: Option<u32>,
    pub refused: Option<u32>,
}

/// The kiosk UI's user unless slated's config names another.
pub const DEFAULT_KIOSK_USER: &str = "slate-kiosk";
/// slate-dns's user unless slated's config names another.
pub const DEFAULT_DNS_USER: &str = "slate-dns";
/// The user `slate-device-refused@` runs as (it tells slated about refused USB devices).
pub const DEFAULT_REFUSED_USER: &str = "slate-refused";

impl PeerUsers {
    /// Looks the users up by name; one that does not exist is logged and never matches.
    pub fn lookup(kiosk: &str, dns: &str, refused: &str) -> PeerUsers {
        let uid = |name: &str| match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Some(user.uid.as_raw()),
            Ok(None) => {
                tracing::warn!(user = %name, "no such user: the control socket grants it nothing");
                None
            }
            Err(e) => {
                tracing::error!(user = %name, error = %e, "user lookup failed: the control socket grants it nothing");
                None
            }
        };
        PeerUsers { root: 0, kiosk: uid(kiosk), dns: uid(dns), refused: uid(refused) }
    }
}

/// The role of a peer with this uid in this cgroup (`None`: it could not be read). A process in
/// an app cgroup is an app whatever its uid; an unreadable cgroup gives a non-root peer nothing
/// (fail closed). Pure.
pub fn role(uid: u32, cgroup: Option<&str>, users: &PeerUsers) -> Role {
    match cgroup {
        Some(path) if cgroup::in_app(path) => Role::App,
        _ if uid == users.root => Role::Root,
        None => Role::Other,
        Some(_) if Some(uid) == users.kiosk => Role::Kiosk,
        Some(_) if Some(uid) == users.dns => Role::Dns,
        Some(_) if Some(uid) == users.refused => Role::Refused,
        Some(_) => Role::Other,
    }
}

/// Whether a peer in `role` may send `request`: each only what it needs. Pure.
pub fn allowed(role: Role, request: &Request) -> bool {
    use Request as R;
    match role {
        Role::Root => true,
        // What slate-ui sends (link.rs and the launcher); never a press, which is the button's.
        Role::Kiosk => matches!(
            request,
            R::SignIn { .. }
                | R::CheckPictures { .. }
                | R::SignOut {}
                | R::Foreground { .. }
                | R::Unlock { .. }
                | R::Status {}
                | R::AppOpened { .. }
                | R::AupAccepted { .. }
                | R::Activity {}
                | R::ReassuranceShown {}
                | R::TellTeacher { .. }
                | R::FilterBlocked { layer: FilterLayer::Url, .. }
        ),
        Role::Dns => matches!(request, R::FilterBlocked { layer: FilterLayer::Dns, .. }),
        Role::Refused => matches!(request, R::DeviceRefused { .. }),
        Role::App | Role::Other => false,
    }
}

impl Request {
    /// The request's `cmd`, for logs (never its fields).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Press {} => "press",
            Request::SignIn { .. } => "sign_in",
            Request::CheckPictures { .. } => "check_pictures",
            Request::SignOut {} => "sign_out",
            Request::Foreground { .. } => "foreground",
            Request::Unlock { .. } => "unlock",
            Request::Status {} => "status",
            Request::AppOpened { .. } => "app_opened",
            Request::AupAccepted { .. } => "aup_accepted",
            Request::Activity {} => "activity",
            Request::ReassuranceShown {} => "reassurance_shown",
            Request::FilterBlocked { .. } => "filter_blocked",
            Request::TellTeacher { .. } => "tell_teacher",
            Request::DeviceRefused { .. } => "device_refused",
        }
    }
}

/// A connection's peer: its uid and, when it could be read, its cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub cgroup: Option<String>,
    pub role: Role,
}

impl Peer {
    /// From the connection's `SO_PEERCRED` and `/proc/<pid>/cgroup`.
    pub fn of(stream: &UnixStream, users: &PeerUsers) -> Result<Peer, String> {
        let cred = stream.peer_cred().map_err(|e| format!("SO_PEERCRED: {e}"))?;
        let cgroup = cred.pid().and_then(|pid| cgroup::cgroup_of(&pid.to_string()).ok());
        let role = role(cred.uid(), cgroup.as_deref(), users);
        Ok(Peer { uid: cred.uid(), cgroup, role })
    }
}

/// The app cgroup of process `pid` if the launcher that sends `foreground` started it: an app
/// cgroup directly under the peer's own. Reads `/proc/<pid>/cgroup`.
pub fn app_process(peer: &Peer, pid: u32) -> Result<AppProcess, String> {
    let own = peer.cgroup.as_deref().ok_or("the requester's cgroup is unknown")?;
    let path = cgroup::cgroup_of(&pid.to_string()).map_err(|_| format!("no process {pid}"))?;
    let cgroup = cgroup::app_cgroup_under(own, &path)?;
    Ok(AppProcess { pid, cgroup })
}

/// Checks a request against its peer: allowed, and a `foreground` `pid` in an app cgroup the
/// peer made. Refusals are logged with the uid and the request's kind only.
pub fn admit(peer: &Peer, request: &Request) -> Result<Option<AppProcess>, String> {
    if !allowed(peer.role, request) {
        tracing::warn!(
            uid = peer.uid,
            cmd = request.kind(),
            "control request refused for this peer"
        );
        return Err(format!(
            "refused: `{}` is not allowed from this process (uid {})",
            request.kind(),
            peer.uid
        ));
    }
    match request {
        Request::Foreground { pid: Some(pid), .. } => match app_process(peer, *pid) {
            Ok(app) => Ok(Some(app)),
            Err(why) => {
                tracing::warn!(uid = peer.uid, cmd = "foreground", "foreground pid refused");
                Err(format!("refused: `pid` {pid}: {why}"))
            }
        },
        _ => Ok(None),
    }
}

/// Binds the socket at `path`: creates the directory, removes a stale socket left by a crash
/// (but never a live one, nor anything that is not a socket), and restricts it to the owner and
/// `group` (mode 0660; `None`: the owner's own group).
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener, ControlError> {
    let err = |action, source| ControlError::Io { action, path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err("create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse { path: path.to_owned() });
            }
            std::fs::remove_file(path).map_err(|e| err("remove the stale socket", e))?;
            tracing::info!(socket = %path.display(), "removed a stale control socket");
        }
        Ok(_) => return Err(ControlError::NotASocket { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err("inspect", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| err("bind", e))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| err("give to its group", e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| err("restrict", e))?;
    Ok(listener)
}

/// Accepts connections until the task is aborted, handing valid requests that the peer may
/// send to `requests`.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<ControlMsg>, users: PeerUsers) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match Peer::of(&stream, &users) {
                Ok(peer) => {
                    tokio::spawn(handle(stream, peer, requests.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "control connection dropped: unknown peer"),
            },
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: a reply for each request line, in order.
async fn handle(stream: UnixStream, peer: Peer, requests: mpsc::Sender<ControlMsg>) {
    let (read, write) = stream.into_split();
    let too_long = Reply::error(format!("bad request: longer than {MAX_REQUEST_BYTES} bytes"));
    slate_protocol::lines::serve(read, write, MAX_REQUEST_BYTES, too_long.to_line(), |line| {
        let (requests, peer) = (&requests, &peer);
        async move {
            let received_at = Utc::now();
            let admitted = parse_request(&line).and_then(|r| admit(peer, &r).map(|app| (r, app)));
            let reply = match admitted {
                Err(message) => Reply::error(message),
                Ok((request, app)) => {
                    let (tx, rx) = oneshot::channel();
                    let msg = ControlMsg { request, from: peer.role, app, received_at, reply: tx };
                    match requests.send(msg).await {
                        Err(_) => Reply::error("slated is shutting down"),
                        Ok(()) => {
                            rx.await.unwrap_or_else(|_| Reply::error("slated is shutting down"))
                        }
                    }
                }
            };
            reply.to_line()
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn every_request_parses() {
        let cases: Vec<(&str, Request)> = vec![
            (r#"{"cmd":"press"}"#, Request::Press {}),
            (r#"{"cmd":"report"}"#, Request::Press {}),
            (
                r#"{"cmd":"sign_in","pupil":"p-7f3a9c"}"#,
                Request::SignIn { pupil: PupilId::new("p-7f3a9c").unwrap(), pictures: None },
            ),
            (
                r#"{"cmd":"sign_in","pupil":"p-7f3a9c","pictures":["sun","boat"]}"#,
                Request::SignIn {
                    pupil: PupilId::new("p-7f3a9c").unwrap(),
                    pictures: Some(Pictures(vec!["sun".into(), "boat".into()])),
                },
            ),
            (
                r#"{"cmd":"check_pictures","pupil":"p-7f3a9c","pictures":["sun"]}"#,
                Request::CheckPictures {
                    pupil: PupilId::new("p-7f3a9c").unwrap(),
                    pictures: Pictures(vec!["sun".into()]),
                },
            ),
            (r#"{"cmd":"sign_out"}"#, Request::SignOut {}),
            (
                r#"{"cmd":"foreground","app":"browser","url":"https://example.org/x","title":"A page"}"#,
                Request::Foreground {
                    app: "browser".into(),
                    url: Some("https://example.org/x".into()),
                    title: Some("A page".into()),
                    pid: None,
                },
            ),
            (
                r#"{"cmd":"foreground","app":"paint","pid":4242}"#,
                Request::Foreground {
                    app: "paint".into(),
                    url: None,
                    title: None,
                    pid: Some(4242),
                },
            ),
            (r#"{"cmd":"unlock"}"#, Request::Unlock { pin: None, choice: None, staff: None }),
            (
                r#"{"cmd":"unlock","pin":"1234","choice":"false_alarm","staff":"t-04"}"#,
                Request::Unlock {
                    pin: Some(Pin("1234".into())),
                    choice: Some(ResolutionChoice::FalseAlarm),
                    staff: Some(StaffId::new("t-04").unwrap()),
                },
            ),
            (r#"  {"cmd":"status"}  "#, Request::Status {}),
            (r#"{"cmd":"app_opened","app":"maths"}"#, Request::AppOpened { app: "maths".into() }),
            (
                r#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0a1b2c3d"}"#,
                Request::AupAccepted {
                    key_stage: "ks1".into(),
                    text_version: "ks1-0a1b2c3d".into(),
                },
            ),
            (r#"{"cmd":"activity"}"#, Request::Activity {}),
            (r#"{"cmd":"reassurance_shown"}"#, Request::ReassuranceShown {}),
            (
                r#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"exact:x.example","list":"adult"}"#,
                Request::FilterBlocked {
                    layer: FilterLayer::Dns,
                    target: "x.example".into(),
                    rule: "exact:x.example".into(),
                    list: "adult".into(),
                },
            ),
            (
                r#"{"cmd":"filter_blocked","layer":"url","target":"https://x.example/a","rule":"url-sha256","list":"iwf"}"#,
                Request::FilterBlocked {
                    layer: FilterLayer::Url,
                    target: "https://x.example/a".into(),
                    rule: "url-sha256".into(),
                    list: "iwf".into(),
                },
            ),
            (
                r#"{"cmd":"tell_teacher","url":"https://x.example/a","app":"maths"}"#,
                Request::TellTeacher {
                    url: "https://x.example/a".into(),
                    app: Some("maths".into()),
                },
            ),
            (
                r#"{"cmd":"device_refused","kind":"usb_storage","description":"0781:5567 SanDisk"}"#,
                Request::DeviceRefused {
                    kind: RefusedDevice::UsbStorage,
                    description: "0781:5567 SanDisk".into(),
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_request(line.as_bytes()), Ok(expected.clone()), "{line}");
            // What slatectl sends parses back to the same request.
            let sent = serde_json::to_vec(&expected).unwrap();
            assert_eq!(parse_request(&sent), Ok(expected), "{line}");
        }
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let long_url = format!(
            r#"{{"cmd":"foreground","app":"browser","url":"https://x/{}"}}"#,
            "a".repeat(5000)
        );
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "bad request"),
            (b"not json", "bad request"),
            (b"[]", "bad request"),
            (br#"{"pupil":"p-1"}"#, "missing field `cmd`"),
            (br#"{"cmd":"reboot"}"#, "unknown variant `reboot`"),
            (br#"{"cmd":"sign_in"}"#, "missing field `pupil`"),
            (br#"{"cmd":"sign_in","pupil":"Amira Khan"}"#, "pupil"),
            (br#"{"cmd":"sign_in","pupil":"p-1","name":"Amira"}"#, "unknown field `name`"),
            (br#"{"cmd":"sign_in","pupil":"p-1","pictures":[]}"#, "`pictures`"),
            (br#"{"cmd":"sign_in","pupil":"p-1","pictures":["Sun"]}"#, "`pictures`"),
            (br#"{"cmd":"sign_in","pupil":"p-1","pictures":["a","a","a","a","a","a","a","a","a"]}"#, "`pictures`"),
            (br#"{"cmd":"check_pictures","pupil":"p-1"}"#, "missing field `pictures`"),
            (br#"{"cmd":"check_pictures","pupil":"p-1","pictures":[""]}"#, "`pictures`"),
            (br#"{"cmd":"press","extra":1}"#, "unknown field `extra`"),
            (br#"{"cmd":"foreground"}"#, "missing field `app`"),
            (br#"{"cmd":"foreground","app":""}"#, "`app` is empty"),
            (br#"{"cmd":"foreground","app":"browser","url":"hello world"}"#, "`url`"),
            (long_url.as_bytes(), "`url`"),
            (br#"{"cmd":"foreground","app":"browser","title":"a\u0007b"}"#, "`title`"),
            (
                br#"{"cmd":"foreground","app":"browser","screenshot":"iVBOR"}"#,
                "unknown field `screenshot`",
            ),
            (b"\xff\xfe{}", "bad request"),
            (br#"{"cmd":"unlock","choice":"reboot"}"#, "unknown variant `reboot`"),
            (br#"{"cmd":"unlock","staff":"Mrs Smith"}"#, "staff"),
            (br#"{"cmd":"unlock","pin":1234}"#, "bad request"),
            (br#"{"cmd":"app_opened"}"#, "missing field `app`"),
            (br#"{"cmd":"app_opened","app":""}"#, "`app` is empty"),
            (br#"{"cmd":"app_opened","app":"maths","pupil":"p-1"}"#, "unknown field `pupil`"),
            (br#"{"cmd":"activity","at":1}"#, "unknown field `at`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks3","text_version":"ks3-0a1b2c3d"}"#, "`key_stage`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks2-0a1b2c3d"}"#, "`text_version`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0A1B2C3D"}"#, "`text_version`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1"}"#, "missing field `text_version`"),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"not a name","rule":"r","list":"adult"}"#, "`target`"),
            (br#"{"cmd":"filter_blocked","layer":"url","target":"nope","rule":"r","list":"adult"}"#, "`target`"),
            (br#"{"cmd":"filter_blocked","layer":"http","target":"x.example","rule":"r","list":"adult"}"#, "unknown variant `http`"),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"r","list":""}"#, "`list` is empty"),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","list":"adult"}"#, "missing field `rule`"),
            (br#"{"cmd":"tell_teacher"}"#, "missing field `url`"),
            (br#"{"cmd":"tell_teacher","url":"hello world"}"#, "`url`"),
            (br#"{"cmd":"tell_teacher","url":"https://x/","title":"t"}"#, "unknown field `title`"),
            (br#"{"cmd":"device_refused","kind":"floppy","description":"x"}"#, "unknown variant `floppy`"),
            (br#"{"cmd":"device_refused","kind":"camera","description":""}"#, "`description` is empty"),
            (br#"{"cmd":"device_refused","kind":"camera","description":"a\u0007b"}"#, "`description`"),
        ];
        for (line, expected) in cases {
            let err = parse_request(line).expect_err(&String::from_utf8_lossy(line));
            assert!(
                err.contains(expected),
                "{:?}: {err:?} should contain {expected:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_pin_is_never_in_debug_output() {
        let request = parse_request(br#"{"cmd":"unlock","pin":"918273"}"#).unwrap();
        assert!(!format!("{request:?}").contains("918273"));
        let request =
            parse_request(br#"{"cmd":"sign_in","pupil":"p-1","pictures":["flower"]}"#).unwrap();
        assert!(!format!("{request:?}").contains("flower"));
    }

    #[test]
    fn pictures_match_only_the_same_sequence() {
        let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let want = v(&["sun", "boat"]);
        assert!(pictures_match(&want, &v(&["sun", "boat"])));
        for wrong in [
            v(&["boat", "sun"]),
            v(&["sun"]),
            v(&["sun", "boat", "sun"]),
            v(&[]),
            v(&["sun", "boa"]),
            v(&["sun", "boatx"]),
        ] {
            assert!(!pictures_match(&want, &wrong), "{wrong:?}");
        }
    }

    const USERS: PeerUsers =
        PeerUsers { root: 0, kiosk: Some(1001), dns: Some(1002), refused: Some(1004) };

    #[test]
    fn each_peer_has_a_role() {
        let session = Some("/system.slice/slate-session.service");
        let app = Some("/system.slice/slate-session.service/slate-app-77-1");
        let nested = Some("/system.slice/slate-session.service/slate-app-77-1/own");
        let cases = [
            (0, Some("/user.slice/session-3.scope"), Role::Root),
            (0, None, Role::Root),
            (1001, session, Role::Kiosk),
            (1001, app, Role::App),
            (1001, nested, Role::App),
            (1001, None, Role::Other),
            (1002, Some("/system.slice/slate-dns.service"), Role::Dns),
            (1002, None, Role::Other),
            (
                1004,
                Some("/system.slice/system-slate\\x2ddevice\\x2drefused.slice/x.service"),
                Role::Refused,
            ),
            (1004, None, Role::Other),
            (0, app, Role::App),
            (1003, session, Role::Other),
            (65534, Some("/"), Role::Other),
        ];
        for (uid, cgroup, expected) in cases {
            assert_eq!(role(uid, cgroup, &USERS), expected, "{uid} {cgroup:?}");
        }
        // A user that does not exist matches nobody.
        let none = PeerUsers { root: 0, kiosk: None, dns: None, refused: None };
        assert_eq!(role(1001, session, &none), Role::Other);
    }

    #[test]
    fn each_peer_may_send_only_what_it_needs() {
        let every: Vec<Request> = [
            r#"{"cmd":"press"}"#,
            r#"{"cmd":"sign_in","pupil":"p-1"}"#,
            r#"{"cmd":"check_pictures","pupil":"p-1","pictures":["sun"]}"#,
            r#"{"cmd":"sign_out"}"#,
            r#"{"cmd":"foreground","app":"maths"}"#,
            r#"{"cmd":"unlock"}"#,
            r#"{"cmd":"status"}"#,
            r#"{"cmd":"app_opened","app":"maths"}"#,
            r#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0a1b2c3d"}"#,
            r#"{"cmd":"activity"}"#,
            r#"{"cmd":"reassurance_shown"}"#,
            r#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"r","list":"adult"}"#,
            r#"{"cmd":"filter_blocked","layer":"url","target":"https://x.example/","rule":"r","list":"iwf"}"#,
            r#"{"cmd":"tell_teacher","url":"https://x.example/"}"#,
            r#"{"cmd":"device_refused","kind":"camera","description":"x"}"#,
        ]
        .iter()
        .map(|l| parse_request(l.as_bytes()).unwrap())
        .collect();
        let name = |r: &Request| match r {
            Request::FilterBlocked { layer, .. } => format!("filter_blocked/{}", layer.as_str()),
            r => r.kind().to_owned(),
        };
        let kiosk = [
            "sign_in",
            "check_pictures",
            "sign_out",
            "foreground",
            "unlock",
            "status",
            "app_opened",
            "aup_accepted",
            "activity",
            "reassurance_shown",
            "filter_blocked/url",
            "tell_teacher",
        ];
        for request in &every {
            let n = name(request);
            assert!(allowed(Role::Root, request), "root: {n}");
            assert_eq!(allowed(Role::Kiosk, request), kiosk.contains(&n.as_str()), "kiosk: {n}");
            assert_eq!(allowed(Role::Dns, request), n == "filter_blocked/dns", "dns: {n}");
            assert_eq!(allowed(Role::Refused, request), n == "device_refused", "refused: {n}");
            assert!(!allowed(Role::App, request), "app: {n}");
            assert!(!allowed(Role::Other, request), "other: {n}");
        }
        assert_eq!(every.len(), 15, "every kind of request is in the table");
    }

    #[test]
    fn a_refusal_names_the_kind_and_uid_only() {
        let peer = Peer { uid: 1001, cgroup: None, role: Role::App };
        let request = parse_request(br#"{"cmd":"sign_in","pupil":"p-7f3a9c"}"#).unwrap();
        let err = admit(&peer, &request).unwrap_err();
        assert_eq!(err, "refused: `sign_in` is not allowed from this process (uid 1001)");
    }

    #[test]
    fn replies_leave_out_what_does_not_apply() {
        assert_eq!(Reply::ok().to_line(), b"{\"ok\":true}\n");
        assert_eq!(
            Reply::error("nobody is signed in").to_line(),
            b"{\"ok\":false,\"error\":\"nobody is signed in\"}\n"
        );
        let status = Reply {
            ok: true,
            device: Some(DeviceNumber::new(12).unwrap()),
            state: Some("idle".into()),
            spool_pending: Some(0),
            enrolled: Some(false),
            ..Reply::default()
        };
        let line = String::from_utf8(status.to_line()).unwrap();
        assert_eq!(line, "{\"ok\":true,\"device\":12,\"state\":\"idle\",\"spool_pending\":0,\"enrolled\":false}\n");
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), status);
    }

    /// The test runs as root: it is trusted with everything.
    const ROOT_ONLY: PeerUsers = PeerUsers { root: 0, kiosk: None, dns: None, refused: None };

    /// Answers every request with `ok` and the request's debug text, like a tiny daemon.
    fn echo_daemon() -> mpsc::Sender<ControlMsg> {
        let (tx, mut rx) = mpsc::channel::<ControlMsg>(4);
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let mut reply = Reply::ok();
                reply.state = Some(format!("{:?}", msg.request));
                let _ = msg.reply.send(reply);
            }
        });
        tx
    }

    async fn converse(path: &Path, input: &[u8]) -> Vec<Reply> {
        let mut stream = UnixStream::connect(path).await.unwrap();
        stream.write_all(input).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[tokio::test]
    async fn the_socket_answers_each_line_and_survives_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("control.sock");
        let listener = bind(&path, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let server = tokio::spawn(serve(listener, echo_daemon(), ROOT_ONLY));

        let replies =
            converse(&path, b"{\"cmd\":\"status\"}\nnonsense\n\n{\"cmd\":\"press\"}").await;
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0].state.as_deref(), Some("Status"));
        assert!(!replies[1].ok && replies[1].error.as_deref().unwrap().starts_with("bad request"));
        assert_eq!(
            replies[2].state.as_deref(),
            Some("Press"),
            "a last line without newline counts"
        );

        let mut huge = vec![b'x'; MAX_REQUEST_BYTES + 10];
        huge.push(b'\n');
        let replies = converse(&path, &huge).await;
        assert_eq!(replies.len(), 1);
        assert!(replies[0].error.as_deref().unwrap().contains("longer than"));

        // Still serving.
        let replies = converse(&path, b"{\"cmd\":\"unlock\"}\n").await;
        assert_eq!(
            replies[0].state.as_deref(),
            Some("Unlock { pin: None, choice: None, staff: None }")
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_but_a_live_one_or_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let first = bind(&path, None).unwrap();
        assert!(matches!(bind(&path, None), Err(ControlError::InUse { .. })));
        drop(first);
        // The socket file is left behind, as after a crash.
        assert!(path.exists());
        let _second = bind(&path, None).unwrap();

        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"precious").unwrap();
        assert!(matches!(bind(&file, None), Err(ControlError::NotASocket { .. })));
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn a_daemon_that_has_gone_gets_a_clear_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = bind(&path, None).unwrap();
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let server = tokio::spawn(serve(listener, tx, ROOT_ONLY));
        let replies = converse(&path, b"{\"cmd\":\"status\"}\n").await;
        assert_eq!(replies[0], Reply::error("slated is shutting down"));
        server.abort();
    }
}
