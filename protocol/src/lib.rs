//! Wire types shared by the Slate device (`slated`) and the school server (`slate-server`).
//!
//! This crate owns the shape and validation of everything that crosses the network. It does no
//! I/O. Both sides decode with [`Batch::from_json`], [`EnrollRequest::from_json`] and friends,
//! which check size, version and every field, so a malformed message is refused with a
//! [`ProtocolError`] naming what was wrong and never half-accepted.
//!
//! # Version
//!
//! Every request body carries `"v": 1` ([`PROTOCOL_VERSION`]). A server refuses versions it does
//! not speak with `400` and an [`ErrorReply`]; it never guesses.
//!
//! # Conversation (JSON over HTTPS; plain HTTP only on loopback)
//!
//! ```text
//! device                                         server
//!   POST /api/v1/enroll   EnrollRequest   --->
//!                                         <---   200 EnrollReply      (credential, once)
//!                                         <---   401 ErrorReply       (token unknown or used)
//!   POST /api/v1/events   Batch           --->   Authorization: Bearer <credential>
//!                                         <---   200 IngestReply      (stored + duplicates)
//!                                         <---   400 ErrorReply       (malformed: do not retry as is)
//!                                         <---   401 ErrorReply       (credential refused)
//!                                         <---   413                  (over MAX_BATCH_BYTES)
//! ```
//!
//! An [`Event`] is the unit of "nothing lost": its [`EventId`] is a UUIDv7 made on the device
//! when the thing happened, the device keeps it in its spool until the server answers 200, and
//! the server stores each id at most once. At-least-once delivery plus idempotent ingest gives
//! exactly-once records.
//!
//! # Events
//!
//! ```json
//! {"v":1,"events":[
//!   {"id":"0192…","device":12,"at":"2026-11-17T10:14:03.120Z",
//!    "body":{"type":"report_filed","session":"0192…","pupil":"p-7f3a9c","app":"browser",
//!            "url":"https://example.org/x","page_title":"…","blank_latency_us":41250}}]}
//! ```
//!
//! Kinds of body ([`EventBody`]): `hello`, `heartbeat`, `session_started`, `session_ended`,
//! `report_filed` (the button, or "tell my teacher" on a blocked page), `report_resolved` (a
//! member of staff unlocked a held device and chose what happens next; it names the report by
//! id), `aup_accepted`, `app_opened`, `filter_blocked` (DNS or URL layer, with rule and list) and
//! `device_refused` (a USB stick or camera plugged in and left unused) and `button_tested` (a
//! press during the fleet's button test: no report); and, only to a server whose [`IngestReply`]
//! `accepts` names it, `security_breach` (a policy or list the device refused, a staff PIN
//! lockout: [`Breach`]; its newer cases, the filter's own refusals and DNS the firewall refused
//! around the filter, each only to a server whose `accepts` names the case's own word),
//! `filter_checked` (the answer to a termly filter check: what the device's own filter said
//! of each name asked) and a `button_tested` that names the member of staff who started the
//! test on the device with their PIN (`button_tested_by_staff`); [`EventBody::accepts_word`]
//! says which word each needs. A report never carries a picture, page content or keystrokes: there is no
//! field for them (seed 003: "Not view the image").
//!
//! Every event may carry `"clock":{"boot_id":"…","boottime_ms":81234,"synchronised":true}`
//! ([`ClockEvidence`]): the boot it happened in, the monotonic time since that boot, and whether
//! the device's clock was synchronised. Older devices leave it out. The server flags reports
//! whose clock was not synchronised, and ends a session left open when the boot id changes.
//!
//! Pupils appear only as a pseudonymous [`PupilId`]; names stay on the school server.
//!
//! Anything a device must trust (policy, roster, lists) arrives as a [`bundle::SignedBundle`];
//! [`device`] has the policy, list and teacher-command endpoints, [`kiosk`] the kiosk policy
//! (with a school's own acceptable use agreements, [`agreement`]),
//! [`staff`] the staff unlock PINs, [`update`] the image updates, [`class_set`] a device with no
//! number finding it (IT's list of serials, the setup code).

pub mod agreement;
pub mod bundle;
pub mod class_set;
pub mod device;
pub mod kiosk;
pub mod provisioning;
pub mod routes;
pub mod ssh_access;
pub mod staff;
pub mod update;
pub mod url_lists;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest request body either side accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most events in one [`Batch`].
pub const MAX_EVENTS_PER_BATCH: usize = 256;
/// Longest URL a report keeps, in bytes (longer ones are refused, not cut silently).
pub const MAX_URL_BYTES: usize = 4096;
/// Longest page title or other free text, in bytes.
pub const MAX_TEXT_BYTES: usize = 512;

/// Why a message was refused. The message names the offending field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("protocol version {0} is not supported (this side speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u16),
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidField { field: field.into(), reason: reason.into() }
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ProtocolError::TooLarge { size: bytes.len(), limit: MAX_BODY_BYTES });
    }
    serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

fn check_version(v: u16) -> Result<(), ProtocolError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ProtocolError::UnsupportedVersion(v))
    }
}

fn check_text(field: &str, value: &str, limit: usize) -> Result<(), ProtocolError> {
    if value.len() > limit {
        return Err(invalid(field, format!("{} bytes, over the limit of {limit}", value.len())));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// The number painted on the device's case, 1 to 9999. Staff say "device 12".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct DeviceNumber(u16);

impl DeviceNumber {
    pub const MAX: u16 = 9999;

    pub fn new(n: u32) -> Result<Self, ProtocolError> {
        match u16::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(invalid(
                "device",
                format!("{n} is not a device number from 1 to {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u32> for DeviceNumber {
    type Error = ProtocolError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

impl From<DeviceNumber> for u32 {
    fn from(d: DeviceNumber) -> u32 {
        d.0.into()
    }
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Defines a roster id type: 1 to 64 characters of `[A-Za-z0-9_-]`, checked on construction and
/// on decoding; `$field` names it in errors.
macro_rules! roster_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Result<Self, ProtocolError> {
                let id = id.into();
                let well_formed = (1..=64).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if well_formed {
                    Ok(Self(id))
                } else {
                    Err(invalid($field, "must be 1 to 64 characters of letters, digits, '-' or '_'"))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ProtocolError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

roster_id!(
    /// A pseudonymous pupil id issued by the school server's roster. Never a name (seed 004:
    /// "learners' full names will not be used").
    PupilId,
    "pupil"
);

roster_id!(
    /// A member of staff as the school's roster names them (an id, not a name).
    StaffId,
    "staff"
);

/// The id of one event: a UUIDv7, so ids sort by creation time and never collide across devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Uuid", into = "Uuid")]
pub struct EventId(Uuid);

impl EventId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<Uuid> for EventId {
    type Error = ProtocolError;
    fn try_from(u: Uuid) -> Result<Self, Self::Error> {
        if u.get_version_num() == 7 {
            Ok(Self(u))
        } else {
            Err(invalid("id", "must be a UUIDv7"))
        }
    }
}

impl From<EventId> for Uuid {
    fn from(e: EventId) -> Uuid {
        e.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One pupil's time on one device, from sign-in to sign-out. A UUIDv7 made on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub Uuid);

impl SessionId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Something that happened on a device, at a time, with an id that makes it count once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub device: DeviceNumber,
    /// When it happened, by the device's clock.
    pub at: DateTime<Utc>,
    pub body: EventBody,
    /// What the server needs to judge `at`: which boot, how long after it, and whether the
    /// clock was synchronised. Left out by devices (and spools) older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockEvidence>,
}

/// The device's clock as it was when an event happened. A Raspberry Pi has no real-time clock,
/// so `at` can be wrong (the image's build time, last shutdown's time); with this the server can
/// flag such a time, and place events of one boot against each other whatever the wall clock did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockEvidence {
    /// The kernel's id of this boot (`/proc/sys/kernel/random/boot_id`): a new one means the
    /// device restarted.
    pub boot_id: BootId,
    /// Milliseconds since boot on `CLOCK_BOOTTIME` (counts suspend; never steps).
    pub boottime_ms: u64,
    /// Whether a time server had set the clock (and it was not behind a time the device saw
    /// before): `false` means `at` may be wrong.
    pub synchronised: bool,
}

/// The kernel's boot id: a UUID, new at every boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BootId(Uuid);

impl BootId {
    /// Reads a boot id as the kernel writes it (hyphenated, maybe with a newline).
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let text = text.trim_end_matches('\n');
        // Only the hyphenated form the kernel writes: no braces, no URN, nothing to guess at.
        if text.len() != 36 {
            return Err(invalid("boot_id", "is not a UUID (8-4-4-4-12 hex digits)"));
        }
        Uuid::try_parse(text)
            .map(Self)
            .map_err(|_| invalid("boot_id", "is not a UUID (8-4-4-4-12 hex digits)"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl TryFrom<String> for BootId {
    type Error = ProtocolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<BootId> for String {
    fn from(b: BootId) -> String {
        b.0.hyphenated().to_string()
    }
}

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Event {
    /// A new event with a fresh id (and no clock evidence: the device's shell adds it).
    pub fn new(device: DeviceNumber, at: DateTime<Utc>, body: EventBody) -> Self {
        Self { id: EventId::new(), device, at, body, clock: None }
    }

    /// The same event with the device's clock evidence.
    pub fn with_clock(mut self, clock: ClockEvidence) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether the device said its clock was synchronised: `None` when it did not say.
    pub fn clock_synchronised(&self) -> Option<bool> {
        self.clock.map(|c| c.synchronised)
    }

    /// Checks every field a type cannot check alone (text lengths, URL shape, time order).
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.body.validate()?;
        if let EventBody::SessionEnded { started_at, .. } = &self.body {
            if *started_at > self.at {
                return Err(invalid("started_at", "is after the session's end"));
            }
        }
        Ok(())
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    SignedOut,
    IdleTimeout,
    EndOfLesson,
    SignedOutByStaff,
    /// The device restarted while the session was open: the end time is the last time it was
    /// known to be alive.
    DeviceRestarted,
}

/// What happened. Tagged by `type` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventBody {
    /// The daemon started.
    Hello { software_version: String },
    /// The daemon is alive; `spool_pending` events wait to upload.
    Heartbeat {
        uptime_s: u64,
        spool_pending: u32,
        /// What is wrong with the report button, if anything (left out when it is healthy, so
        /// a healthy device's heartbeat is what it always was).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        button_fault: Option<ButtonFault>,
        /// Whether a press would darken the screen (left out when it would).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_fault: Option<DisplayFault>,
        /// Whether events can be written to the card (left out when they can).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        storage_fault: Option<StorageFault>,
    },
    /// A pupil signed in.
    SessionStarted { session: SessionId, pupil: PupilId },
    /// A pupil's session ended; the event's `at` is the end.
    SessionEnded {
        session: SessionId,
        pupil: PupilId,
        started_at: DateTime<Utc>,
        reason: SessionEndReason,
    },
    /// The report button was pressed. The event's `at` is the moment of the press.
    ReportFiled {
        /// The session open at the press, if any (a press with nobody signed in still counts).
        session: Option<SessionId>,
        pupil: Option<PupilId>,
        /// The foreground app's id, as named in the policy.
        app: Option<String>,
        url: Option<String>,
        page_title: Option<String>,
        /// From the input event to the screen confirmed dark; `None` if darkness could not be
        /// confirmed (the report still goes).
        blank_latency_us: Option<u64>,
        /// The last few domain names the device looked up before the press, newest first (at
        /// most [`MAX_RECENT_NAMES`]). Names only: never page content.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recent_names: Vec<String>,
        /// What filed it: the report button (the default, left out on the wire) or the "tell my
        /// teacher" button on a blocked page (low priority; the device is not held).
        #[serde(default, skip_serializing_if = "ReportOrigin::is_button")]
        origin: ReportOrigin,
    },
    /// A member of staff unlocked the device held for `report` (with the staff PIN) and chose
    /// what happens next. The event's `at` is the moment of the unlock.
    ReportResolved {
        /// The `report_filed` event this resolves.
        report: EventId,
        choice: ResolutionChoice,
        /// Who unlocked: the staff id of the entry whose PIN matched (from the signed staff
        /// document, [`staff::StaffPins`]), or [`staff::IT_STAFF_ID`] for IT's own PIN from the
        /// device's `slate.toml`. `None` only from devices older than per-staff PINs.
        staff: Option<StaffId>,
    },
    /// The pupil accepted the acceptable use agreement for their key stage at sign-in.
    AupAccepted {
        session: SessionId,
        pupil: PupilId,
        /// `ks1` or `ks2`: which agreement was shown.
        key_stage: String,
        /// Which text of it (`ks1-` and the start of its sha256, see
        /// [`agreement::text_version`]), so the school can show what exactly was agreed.
        text_version: String,
        /// The school's number for its own text ([`agreement::SchoolAgreement::version`]), when
        /// the pupil was shown the school's text; absent for the built-in one and from devices
        /// older than schools' own texts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        school_version: Option<u32>,
    },
    /// The pupil opened an approved app from the home screen.
    AppOpened { session: SessionId, pupil: PupilId, app: String },
    /// The device's filter refused a name or a page (the DfE log fields: time, device, pupil,
    /// what, rule and list).
    FilterBlocked {
        session: Option<SessionId>,
        pupil: Option<PupilId>,
        layer: FilterLayer,
        /// The domain name (DNS layer) or URL (URL layer) that was refused.
        target: String,
        /// The rule that matched, e.g. `exact:example.com` or `wildcard:*.example.com`.
        rule: String,
        /// The list (category) the rule came from, e.g. `adult` or `iwf`.
        list: String,
    },
    /// Something was plugged in that the policy does not allow (USB storage, a camera): it was
    /// left unused and this says so for the fleet page.
    DeviceRefused {
        kind: RefusedDevice,
        /// Vendor and product as the kernel names them, e.g. `0781:5567 SanDisk Cruzer`.
        description: String,
    },
    /// The report button was pressed during a button test: it works. No report was filed and
    /// nothing was held. The event's `at` is the press. The test was started either by the
    /// fleet page ([`device::CommandAction::TestButton`]: `command`, the first release's shape)
    /// or on the device by a member of staff with their PIN (`staff`): exactly one of the two.
    /// The second shape goes only to a server whose [`IngestReply::accepts`] names
    /// `button_tested_by_staff` (an older one requires `command`).
    ButtonTested {
        /// The server's id of the `test_button` command that opened the test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<u64>,
        /// Whose staff PIN started the test on the device (the id of the PIN's entry in the
        /// staff document, `it` for IT's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        staff: Option<StaffId>,
    },
    /// A security breach the device saw: a signed policy or list file that did not verify
    /// (tampered with on the way, or an older one offered again), or a lockout after wrong
    /// staff PINs. A newer kind: sent only to a server whose [`IngestReply::accepts`] names it
    /// (an older server refuses a whole batch with a kind it does not know).
    SecurityBreach { breach: Breach },
    /// The answer to a filter check ([`device::CommandAction::CheckFilter`]): what the device's
    /// own filter said of each name. A newer kind: sent only to a server whose
    /// [`IngestReply::accepts`] names it.
    FilterChecked {
        /// The server's id of the `check_filter` command.
        command: u64,
        /// One per name asked, in the order asked; empty when the filter did not answer.
        results: Vec<NameVerdict>,
        /// Why there are no results (slate-dns away or refusing), if so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The answer to timed root ssh ([`device::CommandAction::SshAccess`]): opened until when,
    /// closed, or refused and why. A newer kind: sent only to a server whose
    /// [`IngestReply::accepts`] names it.
    SshAccess {
        /// The server's id of the `ssh_access` command.
        command: u64,
        outcome: ssh_access::SshOutcome,
    },
}

/// What the device's filter said of one name in a filter check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameVerdict {
    pub name: String,
    /// The list (category) that blocked it; `None`: allowed.
    pub blocked_by: Option<String>,
}

/// What a [`EventBody::SecurityBreach`] says happened. Tagged by `what`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case", deny_unknown_fields)]
pub enum Breach {
    /// slated refused a policy from the server, or a list file for it: nothing of it was
    /// installed and the last good policy stays in force.
    PolicyRefused {
        /// Which part was refused.
        part: PolicyPart,
        /// The list's name, for a list file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list: Option<String>,
        reason: PolicyRefusal,
    },
    /// slate-dns refused the signed filter policy or a list file slated had installed on the
    /// device's card (changed there after slated checked it, or an older one put back): the
    /// filter keeps its last good policy, or refuses every name. Newer than the first two
    /// cases: sent only to a server that accepts [`ACCEPTS_FILTER_REFUSED`].
    FilterRefused {
        /// [`PolicyPart::Filter`] or [`PolicyPart::List`].
        part: PolicyPart,
        /// The list's name, for a list file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list: Option<String>,
        reason: PolicyRefusal,
    },
    /// The device's firewall refused DNS, DNS-over-TLS or known DNS-over-HTTPS traffic that
    /// went around the filter (an app or a user trying another resolver). One event per window
    /// at most; sent only to a server that accepts [`ACCEPTS_DNS_DROPPED`].
    DnsDropped {
        /// Packets refused since the last such event (at least 1).
        dropped: u64,
        /// The seconds those packets were counted over.
        over_s: u64,
    },
    /// Wrong staff PINs in a row locked unlocking (the device's own lockout).
    PinLockout {
        /// Wrong PINs in a row that started this lockout.
        wrong_pins: u32,
        /// Lockouts in a row without a right PIN between (each doubles the next).
        lockouts: u32,
        /// How long unlocking is locked, in seconds.
        locked_for_s: u64,
    },
}

/// The part of a signed policy a device refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyPart {
    /// The policy reply itself (its shape).
    Reply,
    Kiosk,
    Filter,
    Staff,
    /// A filter list file the filter policy names.
    List,
}

/// Why a device refused a policy or list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyRefusal {
    /// The signature did not verify, or the signed document was not one a device accepts.
    Signature,
    /// A list file's size or SHA-256 differs from the signed manifest.
    Digest,
    /// Issued before the one in force: an old policy offered again.
    Older,
    /// Not the shape a policy reply has.
    Malformed,
}

impl Breach {
    /// Its `what` tag, for logs and the server's rules.
    pub fn what(&self) -> &'static str {
        match self {
            Breach::PolicyRefused { .. } => "policy_refused",
            Breach::PinLockout { .. } => "pin_lockout",
            Breach::FilterRefused { .. } => "filter_refused",
            Breach::DnsDropped { .. } => "dns_dropped",
        }
    }
}

/// The `accepts` word of a server that reads [`Breach::FilterRefused`]: a server that knows
/// `security_breach` but not this case would refuse the whole batch it came in.
pub const ACCEPTS_FILTER_REFUSED: &str = "security_breach:filter_refused";
/// The `accepts` word of a server that reads [`Breach::DnsDropped`].
pub const ACCEPTS_DNS_DROPPED: &str = "security_breach:dns_dropped";

/// The event kinds newer than the first release's, and the newer cases of one
/// ([`EventBody::accepts_word`]): a device sends one only to a server whose
/// [`IngestReply::accepts`] names it.
pub const NEWER_KINDS: [&str; 6] = [
    "security_breach",
    "filter_checked",
    "ssh_access",
    BUTTON_TESTED_BY_STAFF,
    ACCEPTS_FILTER_REFUSED,
    ACCEPTS_DNS_DROPPED,
];

/// The [`NEWER_KINDS`] word for a `button_tested` that names the member of staff who started the
/// test with their PIN ([`EventBody::accepts_word`]).
pub const BUTTON_TESTED_BY_STAFF: &str = "button_tested_by_staff";

/// Most names a report carries in `recent_names`.
pub const MAX_RECENT_NAMES: usize = 20;
/// Longest domain name, in bytes (RFC 1035).
pub const MAX_NAME_BYTES: usize = 253;

/// Which of the two filtering layers refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterLayer {
    /// The device's DNS resolver refused a name.
    Dns,
    /// The kiosk browser refused a top-level navigation (URL lists such as IWF's).
    Url,
}

impl FilterLayer {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterLayer::Dns => "dns",
            FilterLayer::Url => "url",
        }
    }
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOrigin {
    /// The red report button: the screen went dark and the device is held.
    #[default]
    Button,
    /// "Tell my teacher" on a blocked page: low priority, nothing held.
    BlockPage,
}

impl ReportOrigin {
    pub fn is_button(&self) -> bool {
        *self == ReportOrigin::Button
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportOrigin::Button => "button",
            ReportOrigin::BlockPage => "block_page",
        }
    }
}

/// A kind of hardware the device refused to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedDevice {
    UsbStorage,
    Camera,
    /// Any other USB device class the policy does not allow.
    OtherUsb,
}

impl RefusedDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedDevice::UsbStorage => "usb_storage",
            RefusedDevice::Camera => "camera",
            RefusedDevice::OtherUsb => "other_usb",
        }
    }
}

fn check_url(field: &str, url: &str) -> Result<(), ProtocolError> {
    check_text(field, url, MAX_URL_BYTES)?;
    if url.chars().any(char::is_whitespace) || !url.contains(':') {
        return Err(invalid(field, "is not a URL"));
    }
    Ok(())
}

/// A well-formed domain name (letters, digits, `-`, `.`, `_`; at most [`MAX_NAME_BYTES`]).
pub fn check_domain_name(field: &str, name: &str) -> Result<(), ProtocolError> {
    check_name(field, name)
}

fn check_name(field: &str, name: &str) -> Result<(), ProtocolError> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if well_formed {
        Ok(())
    } else {
        Err(invalid(field, "is not a domain name"))
    }
}

/// What the member of staff chose on unlocking a held device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionChoice {
    /// Close the app; the page is not shown again (the default).
    CloseApp,
    /// Nothing wrong: the app resumes where it was.
    FalseAlarm,
    /// Close the app and ask for the site to be blocked.
    BlockSite,
}

impl ResolutionChoice {
    /// The wire name (`close_app`, `false_alarm`, `block_site`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionChoice::CloseApp => "close_app",
            ResolutionChoice::FalseAlarm => "false_alarm",
            ResolutionChoice::BlockSite => "block_site",
        }
    }
}

/// What is wrong with the report button, as a heartbeat says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonFault {
    /// The configured button device is not there (unplugged, or the overlay is missing).
    Missing,
    /// Held down longer than the configured time: stuck, or something resting on it.
    Stuck,
}

/// Why a press would not darken the screen, as a heartbeat says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisplayFault {
    /// Nothing that can darken the screen is there: no compositor overlay connected and no
    /// backlight (or `[display] backend = "none"`).
    CannotDarken,
    /// The last press did not darken the screen (the display failed or did not confirm in time).
    LastPressNotDark,
}

/// Why the device's card cannot take events as it should, as a heartbeat says it. Reports are
/// still kept (in the space held back for them, else in memory) and still uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageFault {
    /// The card is full: the space held back for reports is in use, or gone.
    Full,
    /// The spool cannot be opened or written for another reason (read-only, I/O errors).
    Unwritable,
}

impl EventBody {
    fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            EventBody::Hello { software_version } => {
                check_text("software_version", software_version, 64)
            }
            EventBody::ReportFiled { app, url, page_title, recent_names, .. } => {
                if let Some(app) = app {
                    check_text("app", app, 64)?;
                }
                if let Some(url) = url {
                    check_url("url", url)?;
                }
                if let Some(title) = page_title {
                    check_text("page_title", title, MAX_TEXT_BYTES)?;
                }
                if recent_names.len() > MAX_RECENT_NAMES {
                    return Err(invalid(
                        "recent_names",
                        format!(
                            "{} names, over the limit of {MAX_RECENT_NAMES}",
                            recent_names.len()
                        ),
                    ));
                }
                for (i, name) in recent_names.iter().enumerate() {
                    check_name(&format!("recent_names[{i}]"), name)?;
                }
                Ok(())
            }
            EventBody::AupAccepted { key_stage, text_version, .. } => {
                check_text("key_stage", key_stage, 16)?;
                check_text("text_version", text_version, 64)
            }
            EventBody::AppOpened { app, .. } => check_text("app", app, 64),
            EventBody::FilterBlocked { layer, target, rule, list, .. } => {
                match layer {
                    FilterLayer::Dns => check_name("target", target)?,
                    FilterLayer::Url => check_url("target", target)?,
                }
                check_text("rule", rule, MAX_TEXT_BYTES)?;
                check_text("list", list, 64)
            }
            EventBody::DeviceRefused { description, .. } => {
                check_text("description", description, 128)
            }
            EventBody::Heartbeat { .. }
            | EventBody::SessionStarted { .. }
            | EventBody::SessionEnded { .. }
            | EventBody::ReportResolved { .. } => Ok(()),
            EventBody::ButtonTested { command, staff } => match (command, staff) {
                (Some(_), None) | (None, Some(_)) => Ok(()),
                _ => Err(invalid("body", "a button test names either its command or its staff")),
            },
            EventBody::SecurityBreach { breach: Breach::PolicyRefused { list, .. } } => {
                match list {
                    Some(list) => check_text("list", list, 64),
                    None => Ok(()),
                }
            }
            EventBody::SecurityBreach { breach: Breach::PinLockout { .. } } => Ok(()),
            EventBody::FilterChecked { results, error, .. } => {
                if results.len() > device::MAX_CHECK_NAMES {
                    return Err(invalid("results", "too many"));
                }
                for (i, r) in results.iter().enumerate() {
                    check_name(&format!("results[{i}].name"), &r.name)?;
                    if let Some(list) = &r.blocked_by {
                        check_text(&format!("results[{i}].blocked_by"), list, 64)?;
                    }
                }
                match error {
                    Some(error) => check_text("error", error, MAX_TEXT_BYTES),
                    None => Ok(()),
                }
            }
            EventBody::SecurityBreach { breach: Breach::FilterRefused { part, list, .. } } => {
                if !matches!(part, PolicyPart::Filter | PolicyPart::List) {
                    return Err(invalid("part", "is not filter or list"));
                }
                match list {
                    Some(list) => check_text("list", list, 64),
                    None => Ok(()),
                }
            }
            EventBody::SecurityBreach { breach: Breach::DnsDropped { dropped, .. } } => {
                if *dropped == 0 {
                    return Err(invalid("dropped", "is 0"));
                }
                Ok(())
            }
            EventBody::SshAccess { outcome, .. } => match outcome {
                ssh_access::SshOutcome::Refused { reason } => {
                    check_text("reason", reason, MAX_TEXT_BYTES)
                }
                ssh_access::SshOutcome::Opened { keys, .. }
                    if *keys as usize > ssh_access::MAX_KEYS =>
                {
                    Err(invalid("keys", "too many"))
                }
                _ => Ok(()),
            },
        }
    }

    /// The word a server's [`IngestReply::accepts`] must name for this event to go to it: its
    /// [`kind`](Self::kind), or for a newer case of a newer kind that case's own word (a server
    /// that reads the kind refuses a case it does not know).
    pub fn accepts_word(&self) -> &'static str {
        match self {
            EventBody::SecurityBreach { breach: Breach::FilterRefused { .. } } => {
                ACCEPTS_FILTER_REFUSED
            }
            EventBody::SecurityBreach { breach: Breach::DnsDropped { .. } } => ACCEPTS_DNS_DROPPED,
            // Its shape (`staff`, no `command`) the first release's server refuses.
            EventBody::ButtonTested { staff: Some(_), .. } => BUTTON_TESTED_BY_STAFF,
            body => body.kind(),
        }
    }

    /// The `type` tag, for logs and storage.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Hello { .. } => "hello",
            EventBody::Heartbeat { .. } => "heartbeat",
            EventBody::SessionStarted { .. } => "session_started",
            EventBody::SessionEnded { .. } => "session_ended",
            EventBody::ReportFiled { .. } => "report_filed",
            EventBody::ReportResolved { .. } => "report_resolved",
            EventBody::AupAccepted { .. } => "aup_accepted",
            EventBody::AppOpened { .. } => "app_opened",
            EventBody::FilterBlocked { .. } => "filter_blocked",
            EventBody::DeviceRefused { .. } => "device_refused",
            EventBody::ButtonTested { .. } => "button_tested",
            EventBody::SecurityBreach { .. } => "security_breach",
            EventBody::FilterChecked { .. } => "filter_checked",
            EventBody::SshAccess { .. } => "ssh_access",
        }
    }
}

/// What a device uploads: up to [`MAX_EVENTS_PER_BATCH`] events, all its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub v: u16,
    pub events: Vec<Event>,
}

impl Batch {
    pub fn new(events: Vec<Event>) -> Self {
        Self { v: PROTOCOL_VERSION, events }
    }

    /// Decodes and validates a batch. Refuses the whole batch if any event is bad, naming it.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let batch: Batch = decode(bytes)?;
        check_version(batch.v)?;
        if batch.events.is_empty() {
            return Err(invalid("events", "is empty"));
        }
        if batch.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(invalid(
                "events",
                format!("{} events, over the limit of {MAX_EVENTS_PER_BATCH}", batch.events.len()),
            ));
        }
        for (i, event) in batch.events.iter().enumerate() {
            event.validate().map_err(|e| match e {
                ProtocolError::InvalidField { field, reason } => {
                    invalid(format!("events[{i}].{field}"), reason)
                }
                other => other,
            })?;
        }
        Ok(batch)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a batch always serialises")
    }
}

/// The server's answer to a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    /// Events stored for the first time.
    pub stored: u32,
    /// Events whose id was already stored (a retry); not stored again.
    pub duplicates: u32,
    /// IT asked this device to replace its credential: it should ask for a new one at
    /// [`routes::DEVICE_CREDENTIAL`]. Left out when false, so older devices and servers read
    /// the answer as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotate_credential: bool,
    /// The event kinds of [`NEWER_KINDS`] this server takes. Left out by servers older than
    /// them: a device then sends none of those kinds there (such a server would refuse the
    /// whole batch for one event it cannot read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepts: Vec<String>,
}

impl IngestReply {
    pub fn new(stored: u32, duplicates: u32) -> Self {
        Self { stored, duplicates, rotate_credential: false, accepts: Vec::new() }
    }

    /// The same answer from a server that takes every kind of [`NEWER_KINDS`], as this
    /// release's does.
    pub fn taking_newer_kinds(self) -> Self {
        Self { accepts: NEWER_KINDS.iter().map(|k| (*k).to_owned()).collect(), ..self }
    }

    /// Whether the server said it takes events whose [`EventBody::accepts_word`] is `word`
    /// (always, for the first release's kinds).
    pub fn takes(accepts: Option<&[String]>, word: &str) -> Option<bool> {
        if !NEWER_KINDS.contains(&word) {
            return Some(true);
        }
        accepts.map(|a| a.iter().any(|k| k == word))
    }
}

/// A device exchanging its one-time enrollment token for a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub v: u16,
    pub device: DeviceNumber,
    pub token: String,
    pub software_version: String,
}

impl EnrollRequest {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let req: EnrollRequest = decode(bytes)?;
        check_version(req.v)?;
        check_text("token", &req.token, 128)?;
        if req.token.is_empty() {
            return Err(invalid("token", "is empty"));
        }
        check_text("software_version", &req.software_version, 64)?;
        Ok(req)
    }
}

/// The credential a device presents as `Authorization: Bearer …` from then on. Shown once.
/// Also the answer to [`routes::DEVICE_CREDENTIAL`]: the replacement, which the server accepts
/// beside the old one until the device first uses it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollReply {
    pub device: DeviceNumber,
    pub credential: String,
}

impl fmt::Debug for EnrollReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollReply")
            .field("device", &self.device)
            .field("credential", &"<hidden>")
            .finish()
    }
}

/// The body of every error answer: a short reason safe to show, never an internal cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn report() -> Event {
        Event::new(
            DeviceNumber::new(12).unwrap(),
            at("2026-11-17T10:14:03.120Z"),
            EventBody::ReportFiled {
                session: Some(SessionId::new()),
                pupil: Some(PupilId::new("p-7f3a9c").unwrap()),
                app: Some("browser".into()),
                url: Some("https://example.org/page?q=1".into()),
                page_title: Some("A page".into()),
                blank_latency_us: Some(41_250),
                recent_names: vec!["example.org".into(), "cdn.example.net".into()],
                origin: ReportOrigin::Button,
            },
        )
    }

    fn batch_json(event: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"v": 1, "events": [event]})).unwrap()
    }

    fn good_event_json() -> serde_json::Value {
        serde_json::to_value(report()).unwrap()
    }

    #[test]
    fn every_event_kind_round_trips() {
        let d = DeviceNumber::new(12).unwrap();
        let now = at("2026-11-17T10:14:03Z");
        let session = SessionId::new();
        let pupil = PupilId::new("p-1").unwrap();
        let bodies = vec![
            EventBody::Hello { software_version: "0.1.0".into() },
            EventBody::Heartbeat {
                uptime_s: 60,
                spool_pending: 2,
                button_fault: None,
                display_fault: None,
                storage_fault: None,
            },
            EventBody::Heartbeat {
                uptime_s: 61,
                spool_pending: 0,
                button_fault: Some(ButtonFault::Stuck),
                display_fault: Some(DisplayFault::CannotDarken),
                storage_fault: Some(StorageFault::Full),
            },
            EventBody::SessionStarted { session, pupil: pupil.clone() },
            EventBody::SessionEnded {
                session,
                pupil,
                started_at: at("2026-11-17T09:00:00Z"),
                reason: SessionEndReason::IdleTimeout,
            },
            report().body,
            EventBody::ReportResolved {
                report: EventId::new(),
                choice: ResolutionChoice::FalseAlarm,
                staff: Some(StaffId::new("t-04").unwrap()),
            },
            EventBody::ReportResolved {
                report: EventId::new(),
                choice: ResolutionChoice::BlockSite,
                staff: None,
            },
            EventBody::ReportFiled {
                session: None,
                pupil: None,
                app: Some("browser".into()),
                url: Some("https://blocked.example/".into()),
                page_title: None,
                blank_latency_us: None,
                recent_names: vec![],
                origin: ReportOrigin::BlockPage,
            },
            EventBody::AupAccepted {
                session,
                pupil: PupilId::new("p-1").unwrap(),
                key_stage: "ks1".into(),
                text_version: "ks1-2026".into(),
                school_version: None,
            },
            EventBody::AppOpened {
                session,
                pupil: PupilId::new("p-1").unwrap(),
                app: "maths".into(),
            },
            EventBody::FilterBlocked {
                session: Some(session),
                pupil: Some(PupilId::new("p-1").unwrap()),
                layer: FilterLayer::Dns,
                target: "casino.example".into(),
                rule: "wildcard:*.casino.example".into(),
                list: "gambling".into(),
            },
            EventBody::FilterBlocked {
                session: None,
                pupil: None,
                layer: FilterLayer::Url,
                target: "https://example.org/bad".into(),
                rule: "url-hash".into(),
                list: "iwf".into(),
            },
            EventBody::DeviceRefused {
                kind: RefusedDevice::UsbStorage,
                description: "0781:5567 SanDisk Cruzer".into(),
            },
        ];
        let batch = Batch::new(bodies.into_iter().map(|b| Event::new(d, now, b)).collect());
        let decoded = Batch::from_json(&batch.to_json()).unwrap();
        assert_eq!(decoded, batch);
    }

    #[test]
    fn the_new_wire_shapes_are_as_documented() {
        let report = EventId::try_from(
            uuid::Uuid::parse_str("01929b2f-6c1e-7f1a-8c53-9d558e2f3b0f").unwrap(),
        )
        .unwrap();
        let body = EventBody::ReportResolved {
            report,
            choice: ResolutionChoice::CloseApp,
            staff: Some(StaffId::new("t-04").unwrap()),
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"type":"report_resolved","report":"01929b2f-6c1e-7f1a-8c53-9d558e2f3b0f",
                               "choice":"close_app","staff":"t-04"})
        );
        assert_eq!(body.kind(), "report_resolved");
        // A healthy heartbeat is byte for byte what it was before `button_fault` existed.
        let healthy = EventBody::Heartbeat {
            uptime_s: 5,
            spool_pending: 1,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        };
        assert_eq!(
            serde_json::to_string(&healthy).unwrap(),
            r#"{"type":"heartbeat","uptime_s":5,"spool_pending":1}"#
        );
        let old: EventBody =
            serde_json::from_str(r#"{"type":"heartbeat","uptime_s":5,"spool_pending":1}"#).unwrap();
        assert_eq!(old, healthy);
        let faulty = EventBody::Heartbeat {
            uptime_s: 5,
            spool_pending: 1,
            button_fault: Some(ButtonFault::Missing),
            display_fault: None,
            storage_fault: None,
        };
        assert_eq!(
            serde_json::to_string(&faulty).unwrap(),
            r#"{"type":"heartbeat","uptime_s":5,"spool_pending":1,"button_fault":"missing"}"#
        );
    }

    #[test]
    fn a_bad_resolution_names_its_field() {
        let good = || {
            serde_json::to_value(Event::new(
                DeviceNumber::new(12).unwrap(),
                at("2026-11-17T10:20:00Z"),
                EventBody::ReportResolved {
                    report: EventId::new(),
                    choice: ResolutionChoice::CloseApp,
                    staff: Some(StaffId::new("t-04").unwrap()),
                },
            ))
            .unwrap()
        };
        assert!(Batch::from_json(&batch_json(good())).is_ok());
        let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
            ("unknown choice", "choice", "delete_device".into(), "unknown variant `delete_device`"),
            ("staff name with a space", "staff", "Mrs Smith".into(), "staff"),
            ("empty staff", "staff", "".into(), "staff"),
            (
                "report not a v7 id",
                "report",
                "9b2f6c1e-3f1a-4c53-9d55-8e2f3b0f1a2b".into(),
                "UUIDv7",
            ),
            ("report null", "report", serde_json::Value::Null, "expected a formatted UUID"),
            ("a picture", "image", "iVBORw0KGgo=".into(), "unknown field `image`"),
        ];
        for (name, field, value, expected) in cases {
            let mut e = good();
            e["body"][field] = value;
            let err = Batch::from_json(&batch_json(e)).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} should mention {expected:?}");
        }
        let mut e = good();
        e["body"].as_object_mut().unwrap().remove("report");
        let err = Batch::from_json(&batch_json(e)).unwrap_err().to_string();
        assert!(err.contains("missing field `report`"), "{err}");
        let mut e = good();
        e["body"]["button_fault"] = "stuck".into();
        assert!(Batch::from_json(&batch_json(e)).is_err(), "fields of one kind do not fit another");
    }

    #[test]
    fn new_event_fields_are_checked() {
        let d = DeviceNumber::new(12).unwrap();
        let now = at("2026-11-17T10:14:03Z");
        let blocked = |layer, target: &str| {
            Event::new(
                d,
                now,
                EventBody::FilterBlocked {
                    session: None,
                    pupil: None,
                    layer,
                    target: target.into(),
                    rule: "exact".into(),
                    list: "adult".into(),
                },
            )
        };
        assert!(blocked(FilterLayer::Dns, "bad.example").validate().is_ok());
        assert!(blocked(FilterLayer::Dns, "https://bad.example/").validate().is_err());
        assert!(blocked(FilterLayer::Url, "https://bad.example/x").validate().is_ok());
        assert!(blocked(FilterLayer::Url, "not a url").validate().is_err());
        let mut e = report();
        if let EventBody::ReportFiled { recent_names, .. } = &mut e.body {
            *recent_names = vec!["ok.example".into(); MAX_RECENT_NAMES + 1];
        }
        assert!(e.validate().unwrap_err().to_string().contains("recent_names"));
        if let EventBody::ReportFiled { recent_names, .. } = &mut e.body {
            *recent_names = vec!["bad name".into()];
        }
        assert!(e.validate().unwrap_err().to_string().contains("recent_names[0]"));
        // A button report is byte for byte what it was before `origin` existed.
        let mut plain = report();
        if let EventBody::ReportFiled { recent_names, .. } = &mut plain.body {
            recent_names.clear();
        }
        let text = serde_json::to_string(&plain.body).unwrap();
        assert!(!text.contains("origin") && !text.contains("recent_names"), "{text}");
    }

    #[test]
    fn the_school_version_of_an_acceptance_is_optional() {
        let session = SessionId::new();
        // What a device older than schools' own texts sends, byte for byte: it still parses.
        let older = serde_json::json!({
            "type": "aup_accepted", "session": session, "pupil": "p-1",
            "key_stage": "ks1", "text_version": "ks1-0a1b2c3d"
        });
        let body: EventBody = serde_json::from_value(older.clone()).unwrap();
        let EventBody::AupAccepted { school_version, .. } = &body else { panic!("{body:?}") };
        assert_eq!(*school_version, None);
        // And the built-in text's acceptance is written the same way as before.
        assert_eq!(serde_json::to_value(&body).unwrap(), older);
        // The school's text: its number goes with the version name, and comes back.
        let mut newer = older;
        newer["school_version"] = serde_json::json!(4);
        let body: EventBody = serde_json::from_value(newer.clone()).unwrap();
        let EventBody::AupAccepted { school_version, .. } = &body else { panic!("{body:?}") };
        assert_eq!(*school_version, Some(4));
        assert_eq!(serde_json::to_value(&body).unwrap(), newer);
        newer["school_version"] = serde_json::json!("four");
        assert!(serde_json::from_value::<EventBody>(newer).is_err());
    }

    fn clock() -> ClockEvidence {
        ClockEvidence {
            boot_id: BootId::parse("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f\n").unwrap(),
            boottime_ms: 81_234,
            synchronised: false,
        }
    }

    #[test]
    fn clock_evidence_round_trips_and_is_optional() {
        let with = report().with_clock(clock());
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(
            json["clock"],
            serde_json::json!({"boot_id":"4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f",
                               "boottime_ms":81234,"synchronised":false})
        );
        let decoded = Batch::from_json(&batch_json(json)).unwrap();
        assert_eq!(decoded.events[0], with);
        assert_eq!(decoded.events[0].clock_synchronised(), Some(false));
        // An event from an older device or spool has no clock, and still parses.
        let old = good_event_json();
        assert!(old.get("clock").is_none(), "no clock is left out on the wire: {old}");
        let decoded = Batch::from_json(&batch_json(old)).unwrap();
        assert_eq!(decoded.events[0].clock, None);
        assert_eq!(decoded.events[0].clock_synchronised(), None);
    }

    #[test]
    fn a_bad_clock_names_its_field() {
        let good = || serde_json::to_value(report().with_clock(clock())).unwrap();
        let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
            ("boot id not a uuid", "boot_id", "yesterday".into(), "boot_id"),
            (
                "boot id in braces",
                "boot_id",
                "{4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f}".into(),
                "boot_id",
            ),
            (
                "boot id simple form",
                "boot_id",
                "4b1c2a9e6c1e4f1a8c539d558e2f3b0f".into(),
                "boot_id",
            ),
            ("boot id a number", "boot_id", 7.into(), "invalid type"),
            ("negative boottime", "boottime_ms", (-1).into(), "invalid value"),
            ("synchronised a string", "synchronised", "yes".into(), "invalid type"),
            ("an extra field", "timezone", "UTC".into(), "unknown field `timezone`"),
        ];
        for (name, field, value, expected) in cases {
            let mut e = good();
            e["clock"][field] = value;
            let err = Batch::from_json(&batch_json(e)).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} should mention {expected:?}");
        }
        for field in ["boot_id", "boottime_ms", "synchronised"] {
            let mut e = good();
            e["clock"].as_object_mut().unwrap().remove(field);
            let err = Batch::from_json(&batch_json(e)).expect_err(field).to_string();
            assert!(err.contains(&format!("missing field `{field}`")), "{field}: {err}");
        }
        assert_eq!(
            BootId::parse("4B1C2A9E-6C1E-4F1A-8C53-9D558E2F3B0F").unwrap().to_string(),
            "4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f",
            "written in the kernel's own lower case"
        );
    }

    #[test]
    fn event_ids_are_v7_and_unique() {
        let a = EventId::new();
        let b = EventId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn oversized_body_is_refused_before_parsing() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            Batch::from_json(&big),
            Err(ProtocolError::TooLarge { size: MAX_BODY_BYTES + 1, limit: MAX_BODY_BYTES })
        );
    }

    #[test]
    fn too_many_events_are_refused() {
        let events: Vec<_> = (0..=MAX_EVENTS_PER_BATCH).map(|_| report()).collect();
        let json = serde_json::to_vec(&Batch::new(events)).unwrap();
        let err = Batch::from_json(&json).unwrap_err();
        assert!(
            matches!(err, ProtocolError::InvalidField { ref field, .. } if field == "events"),
            "{err}"
        );
    }

    #[test]
    fn malformed_input_names_what_is_wrong() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("not json", b"{not json".to_vec(), "malformed JSON"),
            ("empty", b"".to_vec(), "malformed JSON"),
            ("wrong version", br#"{"v":2,"events":[]}"#.to_vec(), "version 2"),
            ("no events", br#"{"v":1,"events":[]}"#.to_vec(), "`events`: is empty"),
            ("unknown top field", br#"{"v":1,"events":[],"x":1}"#.to_vec(), "unknown field"),
            (
                "device zero",
                batch_json({
                    let mut e = good_event_json();
                    e["device"] = 0.into();
                    e
                }),
                "device number",
            ),
            (
                "device too big",
                batch_json({
                    let mut e = good_event_json();
                    e["device"] = 70000.into();
                    e
                }),
                "device number",
            ),
            (
                "uuid v4 id",
                batch_json({
                    let mut e = good_event_json();
                    e["id"] = "9b2f6c1e-3f1a-4c53-9d55-8e2f3b0f1a2b".into();
                    e
                }),
                "UUIDv7",
            ),
            (
                "pupil with a space",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["pupil"] = "Amira Khan".into();
                    e
                }),
                "pupil",
            ),
            (
                "unknown body type",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["type"] = "screenshot".into();
                    e
                }),
                "unknown variant",
            ),
            (
                "an image field",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["image"] = "iVBORw0KGgo=".into();
                    e
                }),
                "unknown field `image`",
            ),
            (
                "url too long",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["url"] = format!("https://x/{}", "a".repeat(MAX_URL_BYTES)).into();
                    e
                }),
                "events[0].url",
            ),
            (
                "url not a url",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["url"] = "hello world".into();
                    e
                }),
                "events[0].url",
            ),
            (
                "title with control characters",
                batch_json({
                    let mut e = good_event_json();
                    e["body"]["page_title"] = "a\u{7}b".into();
                    e
                }),
                "events[0].page_title",
            ),
            (
                "bad time",
                batch_json({
                    let mut e = good_event_json();
                    e["at"] = "yesterday".into();
                    e
                }),
                "malformed JSON",
            ),
        ];
        for (name, input, expected) in cases {
            let err = Batch::from_json(&input).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn session_that_ends_before_it_starts_is_refused() {
        let e = Event::new(
            DeviceNumber::new(3).unwrap(),
            at("2026-11-17T09:00:00Z"),
            EventBody::SessionEnded {
                session: SessionId::new(),
                pupil: PupilId::new("p-1").unwrap(),
                started_at: at("2026-11-17T10:00:00Z"),
                reason: SessionEndReason::SignedOut,
            },
        );
        let err = Batch::from_json(&Batch::new(vec![e]).to_json()).unwrap_err();
        assert!(err.to_string().contains("started_at"), "{err}");
    }

    #[test]
    fn enroll_request_is_validated() {
        let ok = br#"{"v":1,"device":12,"token":"abc","software_version":"0.1.0"}"#;
        assert_eq!(EnrollRequest::from_json(ok).unwrap().device.get(), 12);
        let empty = br#"{"v":1,"device":12,"token":"","software_version":"0.1.0"}"#;
        assert!(EnrollRequest::from_json(empty).unwrap_err().to_string().contains("token"));
        let old = br#"{"v":0,"device":12,"token":"a","software_version":"0.1.0"}"#;
        assert_eq!(EnrollRequest::from_json(old), Err(ProtocolError::UnsupportedVersion(0)));
    }

    #[test]
    fn credentials_are_hidden_from_debug_output() {
        let reply =
            EnrollReply { device: DeviceNumber::new(1).unwrap(), credential: "s3cret".into() };
        assert!(!format!("{reply:?}").contains("s3cret"));
    }

    #[test]
    fn a_security_breach_round_trips_and_is_checked() {
        let refused = EventBody::SecurityBreach {
            breach: Breach::PolicyRefused {
                part: PolicyPart::List,
                list: Some("iwf".into()),
                reason: PolicyRefusal::Digest,
            },
        };
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"security_breach",
                "breach":{"what":"policy_refused","part":"list","list":"iwf","reason":"digest"}})
        );
        assert_eq!(serde_json::from_value::<EventBody>(json).unwrap(), refused);
        assert_eq!(refused.kind(), "security_breach");
        let lockout = EventBody::SecurityBreach {
            breach: Breach::PinLockout { wrong_pins: 5, lockouts: 2, locked_for_s: 120 },
        };
        let batch =
            Batch::new(vec![Event::new(DeviceNumber::new(12).unwrap(), Utc::now(), lockout)]);
        assert!(Batch::from_json(&batch.to_json()).is_ok());
        let long = EventBody::SecurityBreach {
            breach: Breach::PolicyRefused {
                part: PolicyPart::List,
                list: Some("x".repeat(65)),
                reason: PolicyRefusal::Digest,
            },
        };
        assert!(long.validate().is_err());
        let extra = serde_json::json!({"type":"security_breach",
            "breach":{"what":"pin_lockout","wrong_pins":5,"lockouts":1,"locked_for_s":60,"pin":"1234"}});
        assert!(serde_json::from_value::<EventBody>(extra).is_err(), "no field for a PIN");
    }

    /// The newer cases of a security breach: each its own `accepts` word, checked like the rest.
    #[test]
    fn the_filters_refusals_and_dropped_dns_are_breaches_with_their_own_word() {
        let breach = |breach| EventBody::SecurityBreach { breach };
        let refused = |part, list: Option<&str>, reason| {
            breach(Breach::FilterRefused { part, list: list.map(Into::into), reason })
        };
        let dropped = |dropped| breach(Breach::DnsDropped { dropped, over_s: 60 });
        let cases = [
            (
                refused(PolicyPart::Filter, None, PolicyRefusal::Signature),
                Ok(
                    r#"{"type":"security_breach","breach":{"what":"filter_refused","part":"filter","reason":"signature"}}"#,
                ),
                ACCEPTS_FILTER_REFUSED,
            ),
            (
                refused(PolicyPart::List, Some("adult"), PolicyRefusal::Digest),
                Ok(
                    r#"{"type":"security_breach","breach":{"what":"filter_refused","part":"list","list":"adult","reason":"digest"}}"#,
                ),
                ACCEPTS_FILTER_REFUSED,
            ),
            (
                refused(PolicyPart::Kiosk, None, PolicyRefusal::Older),
                Err("part"),
                ACCEPTS_FILTER_REFUSED,
            ),
            (
                refused(PolicyPart::List, Some(&"x".repeat(65)), PolicyRefusal::Digest),
                Err("list"),
                ACCEPTS_FILTER_REFUSED,
            ),
            (
                dropped(7),
                Ok(
                    r#"{"type":"security_breach","breach":{"what":"dns_dropped","dropped":7,"over_s":60}}"#,
                ),
                ACCEPTS_DNS_DROPPED,
            ),
            (dropped(0), Err("dropped"), ACCEPTS_DNS_DROPPED),
            (
                breach(Breach::PinLockout { wrong_pins: 5, lockouts: 1, locked_for_s: 60 }),
                Ok(
                    r#"{"type":"security_breach","breach":{"what":"pin_lockout","wrong_pins":5,"lockouts":1,"locked_for_s":60}}"#,
                ),
                "security_breach",
            ),
        ];
        for (body, expected, word) in cases {
            assert_eq!(body.kind(), "security_breach");
            assert_eq!(body.accepts_word(), word, "{body:?}");
            assert!(NEWER_KINDS.contains(&word));
            match expected {
                Ok(json) => {
                    assert_eq!(body.validate(), Ok(()), "{body:?}");
                    assert_eq!(serde_json::to_string(&body).unwrap(), json);
                    assert_eq!(serde_json::from_str::<EventBody>(json).unwrap(), body);
                }
                Err(field) => {
                    let err = body.validate().unwrap_err();
                    assert!(err.to_string().contains(field), "{body:?}: {err}");
                }
            }
        }
        let extra = r#"{"type":"security_breach","breach":{"what":"dns_dropped","dropped":1,"over_s":1,"app":"x"}}"#;
        assert!(serde_json::from_str::<EventBody>(extra).is_err());
    }

    /// An older server's answer has no `accepts`: a device reads it as "takes none of the newer
    /// kinds"; the first release's kinds always go.
    #[test]
    fn which_kinds_a_server_takes() {
        let old: IngestReply = serde_json::from_str(r#"{"stored":1,"duplicates":0}"#).unwrap();
        assert!(old.accepts.is_empty());
        let new: IngestReply =
            serde_json::from_str(r#"{"stored":1,"duplicates":0,"accepts":["security_breach"]}"#)
                .unwrap();
        let newest = IngestReply::new(1, 0).taking_newer_kinds();
        type Accepts<'a> = Option<&'a [String]>;
        let cases: [(Accepts, &str, Option<bool>); 9] = [
            (None, "report_filed", Some(true)),
            (None, "security_breach", None),
            (Some(&old.accepts), "security_breach", Some(false)),
            (Some(&new.accepts), "security_breach", Some(true)),
            (Some(&old.accepts), "filter_blocked", Some(true)),
            // A server that reads security_breach but not its newer cases.
            (Some(&new.accepts), ACCEPTS_FILTER_REFUSED, Some(false)),
            (Some(&new.accepts), ACCEPTS_DNS_DROPPED, Some(false)),
            (Some(&newest.accepts), ACCEPTS_DNS_DROPPED, Some(true)),
            (None, ACCEPTS_FILTER_REFUSED, None),
        ];
        for (accepts, kind, takes) in cases {
            assert_eq!(IngestReply::takes(accepts, kind), takes, "{accepts:?} {kind}");
        }
    }
}
