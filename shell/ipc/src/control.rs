//! slated's control socket: what slatectl, slate-ui, slate-dns and the refused-device unit send
//! slated, and what it answers. Typed both ways: senders build a [`Request`] and read a
//! [`Reply`]; slated parses with [`parse_request`], which checks each field as the school server
//! would, so nothing spooled is what the server would refuse. Who may send what is slated's
//! decision (its `control` module), not this crate's.
//!
//! # Protocol
//!
//! A Unix stream socket (mode 0660, group `control_group` so that the kiosk UI's user can reach
//! it). slated checks each connection's peer (`SO_PEERCRED` and its cgroup), which may send
//! only what its role needs; others get `{"ok":false,"error":"refused: …"}`. One JSON request
//! per line, one JSON reply per line, as many as the client likes on one connection. A request that is not valid gets
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
//! {"cmd":"staff_button_test","pin":"1234","start":true}
//!                                  -> {"ok":true}     idle only: the staff PIN pad of the sign-in
//!                                     screen; start false only checks the PIN (the pad then offers
//!                                     the test), true opens the button test in that staff
//!                                     member's name. Wrong PINs count towards the unlock's lockout
//!                                  -> {"ok":false,"error":"wrong staff PIN (…)"} | "locked_until"
//! {"cmd":"status"}                 -> {"ok":true,"device":12,"state":"idle|in_session|held",
//!                                      "spool_pending":3,"enrolled":true,"screens_locked":false,
//!                                      "pupil":"p-7f3a9c","policy_issued_at":"…",
//!                                      "button_test":true}  (a test window is open)
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
//! {"cmd":"security_breach","breach":{"what":"filter_refused","part":"filter","reason":"signature"}}
//! {"cmd":"security_breach","breach":{"what":"dns_dropped","dropped":4,"over_s":60}}
//!                                  -> {"ok":true}     spooled as a `security_breach` event
//!                                     (slate-dns and its drop counter; only these two cases:
//!                                     slated files the others itself)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slate_protocol::{
    Breach, DeviceNumber, Event, EventBody, EventId, FilterLayer, PupilId, RefusedDevice,
    ResolutionChoice, SessionId, StaffId,
};
use std::fmt;

/// Where slated listens unless its config says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/slate/control.sock";
/// The environment variable that names the socket for clients (`slatectl`, `slate-ui`) when no
/// `--socket` is given.
pub const SOCKET_ENV: &str = "SLATE_CONTROL_SOCKET";
/// Longest request line accepted, in bytes (a URL of 4 KiB and a title fit easily).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

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
    /// A member of staff at the staff PIN pad of an idle device: `start` opens the button test
    /// in their name (the next press only lights the LED); without it the PIN is only checked.
    StaffButtonTest {
        pin: Pin,
        #[serde(default)]
        start: bool,
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
        /// The school's number for its own text, when the policy's text was shown (absent for
        /// the built-in one, and from a kiosk UI older than schools' own texts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        school_version: Option<u32>,
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
    /// A security breach seen outside slated: slate-dns refused the filter policy or a list on
    /// the card, or the firewall refused DNS around the filter
    /// ([`Breach::FilterRefused`], [`Breach::DnsDropped`]).
    SecurityBreach {
        breach: Breach,
    },
    /// IT's setup code, typed on the setup screen of a device with no number (a class set's
    /// one card image). Only while slated is in setup (`Reply::setup`).
    SetupCode {
        code: Pin,
    },
    /// The device number IT typed on the setup screen, after the code.
    SetupNumber {
        number: u32,
    },
    /// "This is device N": yes enrolls with it, no asks for the number again.
    SetupConfirm {
        yes: bool,
    },
}

/// Where the setup of a device with no number is, in `status` while slated is in setup: what
/// the setup screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupView {
    /// `code`, `number`, `confirm` or `enrolling`.
    pub step: String,
    /// The number to confirm or being enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceNumber>,
    /// What went wrong last, as the screen says it ("That code is not right", "Device 12 is
    /// already enrolled: choose another number").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Codes are refused for this many more seconds (too many wrong ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_for_s: Option<u64>,
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
    /// The device has no number yet and waits for IT (`state` is `setup`), in `status` and the
    /// answers to the setup requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupView>,
    /// A button test window is open: the next press of the button is a test, in `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_test: Option<bool>,
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
        Request::AupAccepted { key_stage, text_version, school_version } => {
            check_aup(key_stage, text_version)?;
            if *school_version == Some(0) {
                return Err("bad request: `school_version` starts at 1".into());
            }
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
        Request::SecurityBreach { breach } => {
            if !matches!(breach, Breach::FilterRefused { .. } | Breach::DnsDropped { .. }) {
                return Err(format!(
                    "bad request: slated files a `{}` breach itself",
                    breach.what()
                ));
            }
            probe(EventBody::SecurityBreach { breach: breach.clone() }, &[])?;
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
            Request::StaffButtonTest { .. } => "staff_button_test",
            Request::Status {} => "status",
            Request::AppOpened { .. } => "app_opened",
            Request::AupAccepted { .. } => "aup_accepted",
            Request::Activity {} => "activity",
            Request::ReassuranceShown {} => "reassurance_shown",
            Request::FilterBlocked { .. } => "filter_blocked",
            Request::TellTeacher { .. } => "tell_teacher",
            Request::DeviceRefused { .. } => "device_refused",
            Request::SecurityBreach { .. } => "security_breach",
            Request::SetupCode { .. } => "setup_code",
            Request::SetupNumber { .. } => "setup_number",
            Request::SetupConfirm { .. } => "setup_confirm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (
                r#"{"cmd":"staff_button_test","pin":"1234","start":true}"#,
                Request::StaffButtonTest { pin: Pin("1234".into()), start: true },
            ),
            (
                r#"{"cmd":"staff_button_test","pin":"1234"}"#,
                Request::StaffButtonTest { pin: Pin("1234".into()), start: false },
            ),
            (r#"  {"cmd":"status"}  "#, Request::Status {}),
            (r#"{"cmd":"app_opened","app":"maths"}"#, Request::AppOpened { app: "maths".into() }),
            (
                r#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0a1b2c3d"}"#,
                Request::AupAccepted {
                    key_stage: "ks1".into(),
                    text_version: "ks1-0a1b2c3d".into(),
                    school_version: None,
                },
            ),
            (
                r#"{"cmd":"aup_accepted","key_stage":"ks2","text_version":"ks2-0a1b2c3d","school_version":3}"#,
                Request::AupAccepted {
                    key_stage: "ks2".into(),
                    text_version: "ks2-0a1b2c3d".into(),
                    school_version: Some(3),
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
            (
                r#"{"cmd":"security_breach","breach":{"what":"filter_refused","part":"list","list":"adult","reason":"digest"}}"#,
                Request::SecurityBreach {
                    breach: Breach::FilterRefused {
                        part: slate_protocol::PolicyPart::List,
                        list: Some("adult".into()),
                        reason: slate_protocol::PolicyRefusal::Digest,
                    },
                },
            ),
            (
                r#"{"cmd":"security_breach","breach":{"what":"dns_dropped","dropped":4,"over_s":60}}"#,
                Request::SecurityBreach { breach: Breach::DnsDropped { dropped: 4, over_s: 60 } },
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
            (br#"{"cmd":"staff_button_test","start":true}"#, "missing field `pin`"),
            (br#"{"cmd":"staff_button_test","pin":"1234","staff":"s-1"}"#, "unknown field `staff`"),
            (br#"{"cmd":"app_opened"}"#, "missing field `app`"),
            (br#"{"cmd":"app_opened","app":""}"#, "`app` is empty"),
            (br#"{"cmd":"app_opened","app":"maths","pupil":"p-1"}"#, "unknown field `pupil`"),
            (br#"{"cmd":"activity","at":1}"#, "unknown field `at`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks3","text_version":"ks3-0a1b2c3d"}"#, "`key_stage`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks2-0a1b2c3d"}"#, "`text_version`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0A1B2C3D"}"#, "`text_version`"),
            (br#"{"cmd":"aup_accepted","key_stage":"ks1"}"#, "missing field `text_version`"),
            (
                br#"{"cmd":"aup_accepted","key_stage":"ks1","text_version":"ks1-0a1b2c3d","school_version":0}"#,
                "`school_version`",
            ),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"not a name","rule":"r","list":"adult"}"#, "`target`"),
            (br#"{"cmd":"filter_blocked","layer":"url","target":"nope","rule":"r","list":"adult"}"#, "`target`"),
            (br#"{"cmd":"filter_blocked","layer":"http","target":"x.example","rule":"r","list":"adult"}"#, "unknown variant `http`"),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","rule":"r","list":""}"#, "`list` is empty"),
            (br#"{"cmd":"filter_blocked","layer":"dns","target":"x.example","list":"adult"}"#, "missing field `rule`"),
            (br#"{"cmd":"tell_teacher"}"#, "missing field `url`"),
            (br#"{"cmd":"tell_teacher","url":"hello world"}"#, "`url`"),
            (br#"{"cmd":"tell_teacher","url":"https://x/","title":"t"}"#, "unknown field `title`"),
            (br#"{"cmd":"device_refused","kind":"floppy","description":"x"}"#, "unknown variant `floppy`"),
            (br#"{"cmd":"security_breach","breach":{"what":"pin_lockout","wrong_pins":5,"lockouts":1,"locked_for_s":60}}"#, "slated files a `pin_lockout` breach itself"),
            (br#"{"cmd":"security_breach","breach":{"what":"dns_dropped","dropped":0,"over_s":60}}"#, "`dropped`"),
            (br#"{"cmd":"security_breach","breach":{"what":"filter_refused","part":"kiosk","reason":"older"}}"#, "`part`"),
            (br#"{"cmd":"security_breach","breach":{"what":"dns_dropped","dropped":1,"over_s":1,"app":"x"}}"#, "unknown field `app`"),
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
        let request = parse_request(br#"{"cmd":"staff_button_test","pin":"918273"}"#).unwrap();
        assert!(!format!("{request:?}").contains("918273"));
        let request =
            parse_request(br#"{"cmd":"sign_in","pupil":"p-1","pictures":["flower"]}"#).unwrap();
        assert!(!format!("{request:?}").contains("flower"));
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
}
