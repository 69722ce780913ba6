//! The control socket's server side: who is on the other end of each connection
//! ([`Peer::of`]: `SO_PEERCRED` and its cgroup), what each [`Role`] may send ([`allowed`]), and
//! the hand-off of each valid request to the daemon's core task, which answers it. Refused
//! peers get `{"ok":false,"error":"refused: …"}`; nothing a client sends can stop the daemon.
//! The messages, their checks and the socket's framing are the local protocol crate's
//! ([`slate_ipc::control`], [`slate_ipc::listen`]); this module must not change device state
//! itself.

use crate::apps::AppProcess;
use chrono::{DateTime, Utc};
use slate_ipc::cgroup;
use slate_ipc::control::{parse_request, Reply, Request, MAX_REQUEST_BYTES};
use slate_protocol::FilterLayer;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

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
                // The sign-in screen's staff PIN pad; slated checks the PIN.
                | R::StaffButtonTest { .. }
                | R::Status {}
                | R::AppOpened { .. }
                | R::AupAccepted { .. }
                | R::Activity {}
                | R::ReassuranceShown {}
                | R::TellTeacher { .. }
                | R::FilterBlocked { layer: FilterLayer::Url, .. }
                // The setup screen; slated checks IT's code before anything else.
                | R::SetupCode { .. }
                | R::SetupNumber { .. }
                | R::SetupConfirm { .. }
        ),
        // slate-dns: its blocks, and its own refusals and the drop counter's breaches (the
        // request itself admits no other breach).
        Role::Dns => matches!(
            request,
            R::FilterBlocked { layer: FilterLayer::Dns, .. } | R::SecurityBreach { .. }
        ),
        Role::Refused => matches!(request, R::DeviceRefused { .. }),
        Role::App | Role::Other => false,
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

/// Accepts connections until the task is aborted, handing valid requests that the peer may
/// send to `requests`.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<ControlMsg>, users: PeerUsers) {
    slate_ipc::listen::accept_each(listener, "control", |stream| match Peer::of(&stream, &users) {
        Ok(peer) => {
            tokio::spawn(handle(stream, peer, requests.clone()));
        }
        Err(e) => tracing::warn!(error = %e, "control connection dropped: unknown peer"),
    })
    .await;
}

/// Serves one connection: a reply for each request line, in order.
async fn handle(stream: UnixStream, peer: Peer, requests: mpsc::Sender<ControlMsg>) {
    let (read, write) = stream.into_split();
    let too_long = Reply::error(format!("bad request: longer than {MAX_REQUEST_BYTES} bytes"));
    slate_ipc::listen::serve_lines(read, write, MAX_REQUEST_BYTES, too_long.to_line(), |line| {
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
    use slate_ipc::listen::{bind as bind_for, BindError};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener, BindError> {
        bind_for(path, group, "slated")
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
            r#"{"cmd":"staff_button_test","pin":"1234","start":true}"#,
            r#"{"cmd":"status"}"#,
            r#"{"cmd":"app_opened","app":"maths"}"#,
            r#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0a1b2c3d"}"#,
            r#"{"cmd":"activity"}"#,
            r#"{"cmd":"reassurance_shown"}"#,
            r#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"r","list":"adult"}"#,
            r#"{"cmd":"filter_blocked","layer":"url","target":"https://x.example/","rule":"r","list":"iwf"}"#,
            r#"{"cmd":"tell_teacher","url":"https://x.example/"}"#,
            r#"{"cmd":"device_refused","kind":"camera","description":"x"}"#,
            r#"{"cmd":"security_breach","breach":{"what":"dns_dropped","dropped":1,"over_s":60}}"#,
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
            "staff_button_test",
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
            let dns = ["filter_blocked/dns", "security_breach"];
            assert_eq!(allowed(Role::Dns, request), dns.contains(&n.as_str()), "dns: {n}");
            assert_eq!(allowed(Role::Refused, request), n == "device_refused", "refused: {n}");
            assert!(!allowed(Role::App, request), "app: {n}");
            assert!(!allowed(Role::Other, request), "other: {n}");
        }
        assert_eq!(every.len(), 17, "every kind of request is in the table");
    }

    #[test]
    fn a_refusal_names_the_kind_and_uid_only() {
        let peer = Peer { uid: 1001, cgroup: None, role: Role::App };
        let request = parse_request(br#"{"cmd":"sign_in","pupil":"p-7f3a9c"}"#).unwrap();
        let err = admit(&peer, &request).unwrap_err();
        assert_eq!(err, "refused: `sign_in` is not allowed from this process (uid 1001)");
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
        assert!(matches!(bind(&path, None), Err(BindError::InUse { .. })));
        drop(first);
        // The socket file is left behind, as after a crash.
        assert!(path.exists());
        let _second = bind(&path, None).unwrap();

        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"precious").unwrap();
        assert!(matches!(bind(&file, None), Err(BindError::NotASocket { .. })));
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
