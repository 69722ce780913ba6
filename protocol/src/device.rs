//! What a device fetches from the school server, besides posting events: its signed policies,
//! the filter list files they name, and teacher commands.
//!
//! ```text
//! device                                              server (Authorization: Bearer <credential>)
//!   GET /api/v1/device/policy?can=bundle_kind,picture_pin_hash -->
//!                                             <---   200 PolicyReply {kiosk, filter, staff}:
//!                                                    three SignedBundles, each naming its kind
//!   GET /api/v1/device/lists/{name}           --->
//!                                             <---   200 the list file (one name a line); its
//!                                                    sha256 and size are in the signed filter policy
//!   GET /api/v1/device/commands?after=N&wait_s=25&can=test_button -->
//!                                             <---   200 CommandsReply, as soon as there is a
//!                                                    command after cursor N, or empty after wait_s
//! ```
//!
//! The kiosk bundle's payload is a [`crate::kiosk::Policy`]; the filter bundle's payload is the
//! filter policy `slate-filter` reads (profiles, lists, bypasses; see its `policy` module), whose
//! `lists` manifest is a map of [`ListFile`]s; the staff bundle's payload is a
//! [`crate::staff::StaffPins`] (unlock PIN hashes by pseudonymous staff id), which only `slated`
//! reads and keeps where the kiosk user cannot. A device refuses any bundle that does not verify,
//! that is not of the kind its place in the reply says, or that is older than the one it has,
//! and keeps its last good one (or fails closed). The policy fetch's `can` (optional) says what
//! the device understands: `bundle_kind` (bundles naming their kind, signed over it; without
//! it, the legacy form) and `picture_pin_hash` (picture PINs as hashes; without it, the plain
//! pictures). A server sends the newer form to no device that did not say so, since an older
//! device refuses fields it does not know.
//!
//! Commands are teacher actions that must reach a device within seconds: the device long-polls.
//! The cursor is the server's; a device passes back the last one it was given, so a command is
//! delivered once per device even across reconnects, and a device that was off for the day is
//! not locked by yesterday's "eyes on me" (each command has an `expires_at`). `can` (optional)
//! names actions newer than the first four that the device understands (`test_button`,
//! `check_filter`, `ssh_access`): a server sends those to no device that did not say so, since an older device
//! refuses a reply with an action it does not know.

use crate::bundle::SignedBundle;
use crate::{check_version, decode, invalid, ProtocolError, PROTOCOL_VERSION};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest a device asks the server to hold a commands request open.
pub const MAX_COMMAND_WAIT_S: u32 = 55;
/// Most commands in one reply.
pub const MAX_COMMANDS_PER_REPLY: usize = 64;

/// What a device says it understands on the policy fetch
/// (`?can=bundle_kind,picture_pin_hash,languages,school_agreements`): bundles that name their kind ([`crate::bundle::BundleKind`]), signed over it.
pub const CAN_BUNDLE_KIND: &str = "bundle_kind";
/// Picture PINs as [`crate::kiosk::PicturePinHash`] instead of the plain pictures.
pub const CAN_PICTURE_PIN_HASH: &str = "picture_pin_hash";

/// The policy fetch's path for a device that understands kinds, hashed picture PINs,
/// languages and the school's own agreements: the one way a device asks. A server before them
/// ignores the query and sends the legacy forms (and no languages; a server before
/// [`CAN_SCHOOL_AGREEMENTS`] sends a school's own agreement to every device, which this one
/// reads).
pub fn policy_path() -> String {
    format!(
        "{}?can={CAN_BUNDLE_KIND},{CAN_PICTURE_PIN_HASH},{CAN_LANGUAGES},{CAN_SCHOOL_AGREEMENTS}",
        crate::routes::DEVICE_POLICY
    )
}

/// `GET /api/v1/device/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyReply {
    pub v: u16,
    /// Payload: a [`crate::kiosk::Policy`] (roster, apps, session rules).
    pub kiosk: SignedBundle,
    /// Payload: the filter policy (profiles, list manifest, bypasses).
    pub filter: SignedBundle,
    /// Payload: a [`crate::staff::StaffPins`] (who may unlock, by PIN hash).
    pub staff: SignedBundle,
}

impl PolicyReply {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let reply: PolicyReply = decode(bytes)?;
        check_version(reply.v)?;
        Ok(reply)
    }
}

/// One list file as the signed filter policy names it: the device fetches
/// `GET /api/v1/device/lists/{name}` and refuses the bytes unless size and hash match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFile {
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub bytes: u64,
}

/// A list file's digest as manifests carry it: the lowercase hex SHA-256 of its bytes.
pub fn list_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl ListFile {
    /// The manifest entry for these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self { sha256: list_digest(bytes), bytes: bytes.len() as u64 }
    }

    /// The file this list is stored under, on the server and on the device: `<sha256>.txt`,
    /// named by its content, so writing a new list never overwrites a file that the manifest in
    /// force names. Only for an entry that passed [`ListFile::validate`] (64 hex digits: the
    /// name cannot leave its directory).
    pub fn file_name(&self) -> String {
        format!("{}{LIST_FILE_SUFFIX}", self.sha256)
    }

    pub fn validate(&self, name: &str) -> Result<(), ProtocolError> {
        check_list_name(name)?;
        let hex = self.sha256.len() == 64
            && self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(invalid(format!("lists.{name}.sha256"), "is not 64 lowercase hex digits"));
        }
        Ok(())
    }
}

/// How every list file's name ends, content-addressed ([`ListFile::file_name`]) or not.
pub const LIST_FILE_SUFFIX: &str = ".txt";

/// How the temporary files that list writers leave after a crash end: `.partial` (the server's
/// private files) and `.tmp` (the device's atomic writes).
const LEFTOVER_SUFFIXES: [&str; 2] = [".partial", ".tmp"];

/// The name software before content addressing stored list `name` under (`<name>.txt`). A device
/// upgraded from it still has such files until its next install collects them; readers fall
/// back to it when the content-addressed file is absent (the bytes are checked all the same).
pub fn legacy_list_file_name(name: &str) -> String {
    format!("{name}{LIST_FILE_SUFFIX}")
}

/// The files in a list directory to remove once `in_force` is the manifest in force (committed:
/// the server's database row, the device's `filter.json`): every list file it does not name and
/// every leftover temporary file. Anything else in `present` is not a list writer's and is left.
/// Pure.
pub fn unreferenced_list_files<'a>(
    in_force: impl IntoIterator<Item = &'a ListFile>,
    present: &[String],
) -> Vec<String> {
    let named: std::collections::BTreeSet<String> =
        in_force.into_iter().map(ListFile::file_name).collect();
    let ours = |file: &str| {
        file.ends_with(LIST_FILE_SUFFIX) || LEFTOVER_SUFFIXES.iter().any(|s| file.ends_with(s))
    };
    let mut gone: Vec<String> =
        present.iter().filter(|f| ours(f) && !named.contains(*f)).cloned().collect();
    gone.sort();
    gone.dedup();
    gone
}

/// A list's name, as used in URLs and file names: 1 to 64 of `[a-z0-9-]`.
pub fn check_list_name(name: &str) -> Result<(), ProtocolError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid("list", format!("{name:?} is not 1 to 64 of a-z, 0-9 and '-'")))
    }
}

/// `GET /api/v1/device/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsReply {
    pub v: u16,
    pub commands: Vec<DeviceCommand>,
    /// Pass this back as `after` next time.
    pub cursor: u64,
}

impl CommandsReply {
    pub fn new(commands: Vec<DeviceCommand>, cursor: u64) -> Self {
        Self { v: PROTOCOL_VERSION, commands, cursor }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let reply: CommandsReply = decode(bytes)?;
        check_version(reply.v)?;
        if reply.commands.len() > MAX_COMMANDS_PER_REPLY {
            return Err(invalid("commands", "too many"));
        }
        for command in &reply.commands {
            command.validate()?;
        }
        Ok(reply)
    }
}

/// A teacher's command to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCommand {
    /// The server's id for it (its cursor position).
    pub id: u64,
    pub issued_at: DateTime<Utc>,
    /// A device that receives it later ignores it.
    pub expires_at: DateTime<Utc>,
    pub action: CommandAction,
    /// `check_filter` only: the names to resolve through the device's filter (at most
    /// [`MAX_CHECK_NAMES`]); left out for every other action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_names: Vec<CheckName>,
    /// `ssh_access` only: the keys and until when ([`crate::ssh_access`]); left out for every
    /// other action, so no older device ever sees the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_access: Option<crate::ssh_access::SshAccess>,
}

/// One name a filter check resolves, with the category (list) the server took it from: the
/// category is the school's expectation (blocked by that list), `None` for a name of the DSL's
/// own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckName {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// Most names one filter check carries.
pub const MAX_CHECK_NAMES: usize = 64;

impl DeviceCommand {
    /// A command with no check names (every action but `check_filter`).
    pub fn new(
        id: u64,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        action: CommandAction,
    ) -> Self {
        Self { id, issued_at, expires_at, action, check_names: Vec::new(), ssh_access: None }
    }

    /// Checks what a type cannot: a check's names are well-formed domain names, within limits;
    /// `ssh_access` comes with its action only. Its keys and `until` are the device's to judge
    /// ([`crate::ssh_access::decide`]): a bad one is refused and said so, not the whole reply.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match (&self.ssh_access, self.action) {
            (Some(_), CommandAction::SshAccess) | (None, _) => {}
            (Some(_), _) => return Err(invalid("ssh_access", "on another action")),
        }
        if self.check_names.len() > MAX_CHECK_NAMES {
            return Err(invalid("check_names", "too many"));
        }
        for (i, n) in self.check_names.iter().enumerate() {
            crate::check_domain_name(&format!("check_names[{i}].name"), &n.name)?;
            if let Some(category) = &n.category {
                check_list_name(category).map_err(|_| {
                    invalid(format!("check_names[{i}].category"), "is not a list name")
                })?;
            }
        }
        Ok(())
    }

    /// Whether the device should still act on it at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// What a teacher asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// "Eyes on me": every screen shows a calm "look at your teacher" page; apps pause.
    LockScreens,
    /// End "eyes on me".
    UnlockScreens,
    /// End every pupil's session (reason `signed_out_by_staff`).
    SignOutAll,
    /// The policy changed: fetch it now rather than at the next periodic check.
    RefreshPolicy,
    /// The fleet self-test: the next press of the report button before the command's
    /// `expires_at` (and within [`MAX_BUTTON_TEST`] of its arrival, whatever the device's clock
    /// says) is a test: no report, no hold, a `button_tested` event instead. Sent only to a
    /// device whose poll says it understands it ([`CAN_TEST_BUTTON`]): an older device would
    /// refuse the whole reply.
    TestButton,
    /// The termly filter check: resolve each of the command's `check_names` through the
    /// device's own filter (slate-dns) and answer with a `filter_checked` event. Sent only to a
    /// device whose poll says it understands it ([`CAN_CHECK_FILTER`]).
    CheckFilter,
    /// Timed root ssh, opened by IT from the server: the command's `ssh_access` says with which
    /// keys and until when, or (no keys) closes it early. Sent only to a device whose poll says
    /// it understands it ([`CAN_SSH_ACCESS`]); answered with an `ssh_access` event.
    SshAccess,
}

/// The commands poll's `can` value of a device that understands [`CommandAction::SshAccess`].
pub const CAN_SSH_ACCESS: &str = "ssh_access";

/// The commands poll's `can` value of a device that understands [`CommandAction::CheckFilter`].
pub const CAN_CHECK_FILTER: &str = "check_filter";

/// Longest a button test window stays open on a device, however late the command expires.
pub const MAX_BUTTON_TEST: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// The commands poll's `can` value of a device that understands [`CommandAction::TestButton`]
/// (`?after=N&wait_s=S&can=test_button`). A server hands that action to no other device.
pub const CAN_TEST_BUTTON: &str = "test_button";
/// The policy request's `can` value of a device that understands the kiosk policy's languages
/// (`Policy::language`, `Class::language`): `GET /api/v1/device/policy?can=languages`. A server
/// sends those fields to no other device, as one before them refuses the whole policy.
pub const CAN_LANGUAGES: &str = "languages";
/// The policy request's `can` value of a device that understands a school's own acceptable use
/// agreements in the kiosk policy (`Policy::agreements`). A server sends them to no other
/// device: one before them refuses the whole policy for the unknown field and shows "ask your
/// teacher"; without them it shows its built-in text.
pub const CAN_SCHOOL_AGREEMENTS: &str = "school_agreements";

impl CommandAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandAction::LockScreens => "lock_screens",
            CommandAction::UnlockScreens => "unlock_screens",
            CommandAction::SignOutAll => "sign_out_all",
            CommandAction::RefreshPolicy => "refresh_policy",
            CommandAction::TestButton => "test_button",
            CommandAction::CheckFilter => "check_filter",
            CommandAction::SshAccess => "ssh_access",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_expire() {
        let command = DeviceCommand {
            id: 7,
            issued_at: "2026-11-23T10:14:00Z".parse().unwrap(),
            expires_at: "2026-11-23T10:24:00Z".parse().unwrap(),
            action: CommandAction::LockScreens,
            check_names: Vec::new(),
            ssh_access: None,
        };
        let reply = CommandsReply::new(vec![command.clone()], 7);
        let wire = serde_json::to_vec(&reply).unwrap();
        assert!(String::from_utf8_lossy(&wire).contains(r#""action":"lock_screens""#));
        assert_eq!(CommandsReply::from_json(&wire).unwrap(), reply);
        assert!(command.is_live("2026-11-23T10:23:59Z".parse().unwrap()));
        assert!(!command.is_live("2026-11-23T10:24:00Z".parse().unwrap()));
        let err = CommandsReply::from_json(br#"{"v":1,"commands":[{"id":1,"issued_at":"2026-11-23T10:14:00Z","expires_at":"2026-11-23T10:24:00Z","action":"format_disk"}],"cursor":1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn a_button_test_is_a_command_and_its_press_an_event() {
        let wire = br#"{"v":1,"commands":[{"id":3,"issued_at":"2026-11-23T10:14:00Z","expires_at":"2026-11-23T10:19:00Z","action":"test_button"}],"cursor":3}"#;
        let reply = CommandsReply::from_json(wire).unwrap();
        assert_eq!(reply.commands[0].action, CommandAction::TestButton);
        assert_eq!(CommandAction::TestButton.as_str(), CAN_TEST_BUTTON);
        let event = br#"{"v":1,"events":[{"id":"01936b2e-0000-7000-8000-000000000001","device":12,"at":"2026-11-23T10:15:00Z","body":{"type":"button_tested","command":3}}]}"#;
        let batch = crate::Batch::from_json(event).unwrap();
        let body = &batch.events[0].body;
        assert_eq!(*body, crate::EventBody::ButtonTested { command: Some(3), staff: None });
        assert_eq!(body.kind(), "button_tested");
        // The first release's shape: it goes to every server.
        assert_eq!(body.accepts_word(), "button_tested");
        assert_eq!(serde_json::to_string(body).unwrap(), r#"{"type":"button_tested","command":3}"#);
    }

    /// A test a member of staff started on the device with their PIN names them, not a command:
    /// a newer shape, gated like a newer kind; exactly one of the two is named.
    #[test]
    fn a_pin_started_button_test_names_the_staff_member_and_is_gated() {
        let event = |body: &str| {
            format!(
                r#"{{"v":1,"events":[{{"id":"01936b2e-0000-7000-8000-000000000001","device":12,"at":"2026-11-23T10:15:00Z","body":{body}}}]}}"#
            )
        };
        let by_staff = crate::Batch::from_json(
            event(r#"{"type":"button_tested","staff":"s-4f2a9c1e7b30"}"#).as_bytes(),
        )
        .unwrap();
        let body = &by_staff.events[0].body;
        let staff = crate::StaffId::new("s-4f2a9c1e7b30").unwrap();
        assert_eq!(*body, crate::EventBody::ButtonTested { command: None, staff: Some(staff) });
        assert_eq!(body.kind(), "button_tested");
        assert_eq!(body.accepts_word(), crate::BUTTON_TESTED_BY_STAFF);
        assert!(crate::NEWER_KINDS.contains(&body.accepts_word()));
        for bad in [
            r#"{"type":"button_tested"}"#,
            r#"{"type":"button_tested","command":3,"staff":"s-4f2a9c1e7b30"}"#,
        ] {
            let err = crate::Batch::from_json(event(bad).as_bytes()).unwrap_err();
            assert!(err.to_string().contains("either its command or its staff"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_filter_check_carries_its_names_and_its_answer_is_a_newer_event() {
        let wire = br#"{"v":1,"commands":[{"id":4,"issued_at":"2026-11-23T10:14:00Z","expires_at":"2026-11-23T10:24:00Z","action":"check_filter","check_names":[{"name":"adult.example","category":"adult"},{"name":"test.provider.example"}]}],"cursor":4}"#;
        let reply = CommandsReply::from_json(wire).unwrap();
        let command = &reply.commands[0];
        assert_eq!(command.action, CommandAction::CheckFilter);
        assert_eq!(command.action.as_str(), CAN_CHECK_FILTER);
        assert_eq!(
            command.check_names[1],
            CheckName { name: "test.provider.example".into(), category: None }
        );
        let again = serde_json::to_vec(&reply).unwrap();
        assert_eq!(CommandsReply::from_json(&again).unwrap(), reply);
        // Any other command is what it always was on the wire: no `check_names`.
        let plain = DeviceCommand::new(
            1,
            command.issued_at,
            command.expires_at,
            CommandAction::LockScreens,
        );
        assert!(!String::from_utf8(serde_json::to_vec(&plain).unwrap())
            .unwrap()
            .contains("check_names"));
        let bad = [
            (r#"[{"name":"not a name"}]"#, "check_names[0].name"),
            (r#"[{"name":"a.example","category":"../x"}]"#, "check_names[0].category"),
        ];
        for (names, field) in bad {
            let wire = format!(
                r#"{{"v":1,"commands":[{{"id":4,"issued_at":"2026-11-23T10:14:00Z","expires_at":"2026-11-23T10:24:00Z","action":"check_filter","check_names":{names}}}],"cursor":4}}"#
            );
            let err = CommandsReply::from_json(wire.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(field), "{names}: {err}");
        }
        let event = br#"{"v":1,"events":[{"id":"01936b2e-0000-7000-8000-000000000001","device":12,"at":"2026-11-23T10:15:00Z","body":{"type":"filter_checked","command":4,"results":[{"name":"adult.example","blocked_by":"adult"},{"name":"test.provider.example","blocked_by":null}]}}]}"#;
        let batch = crate::Batch::from_json(event).unwrap();
        assert_eq!(batch.events[0].body.kind(), "filter_checked");
        assert!(crate::NEWER_KINDS.contains(&"filter_checked"));
        let bad_event = br#"{"v":1,"events":[{"id":"01936b2e-0000-7000-8000-000000000001","device":12,"at":"2026-11-23T10:15:00Z","body":{"type":"filter_checked","command":4,"results":[{"name":"a b","blocked_by":null}]}}]}"#;
        assert!(crate::Batch::from_json(bad_event)
            .unwrap_err()
            .to_string()
            .contains("results[0].name"));
    }

    #[test]
    fn a_list_file_is_named_by_its_content() {
        let file = ListFile::of(b"*.adult.test\n");
        assert_eq!(file.file_name(), format!("{}.txt", list_digest(b"*.adult.test\n")));
        assert_eq!(ListFile::of(b"x\n").file_name(), ListFile::of(b"x\n").file_name());
        assert_ne!(ListFile::of(b"x\n").file_name(), ListFile::of(b"y\n").file_name());
        assert_eq!(legacy_list_file_name("adult"), "adult.txt");
    }

    #[test]
    fn only_files_the_manifest_in_force_does_not_name_are_collected() {
        let (old, new, kept) =
            (ListFile::of(b"old\n"), ListFile::of(b"new\n"), ListFile::of(b"k\n"));
        let names = |files: &[&ListFile]| files.iter().map(|f| f.file_name()).collect::<Vec<_>>();
        let present = |extra: &[&str], files: &[&ListFile]| {
            let mut all = names(files);
            all.extend(extra.iter().map(|s| s.to_string()));
            all
        };
        // (what, the manifest's files, the files present, the files to remove)
        type Case<'a> = (&'a str, Vec<&'a ListFile>, Vec<String>, Vec<String>);
        let cases: Vec<Case> = vec![
            ("nothing there", vec![&new], vec![], vec![]),
            (
                "the new manifest's files stay",
                vec![&new, &kept],
                present(&[], &[&new, &kept]),
                vec![],
            ),
            (
                "the old list goes once the new manifest is in force",
                vec![&new, &kept],
                present(&[], &[&old, &new, &kept]),
                names(&[&old]),
            ),
            (
                "a crash before the switch: the new file is garbage for the old manifest",
                vec![&old],
                present(&[], &[&old, &new]),
                names(&[&new]),
            ),
            (
                "a list dropped from the manifest goes",
                vec![],
                present(&[], &[&old]),
                names(&[&old]),
            ),
            (
                "legacy and leftover files go",
                vec![&new],
                present(&["adult.txt", ".x.txt.tmp", "abc.partial"], &[&new]),
                vec![".x.txt.tmp".into(), "abc.partial".into(), "adult.txt".into()],
            ),
            (
                "other files are not a list writer's",
                vec![&new],
                present(&["README", "lost+found"], &[&new]),
                vec![],
            ),
            (
                "two names for one content keep one file",
                vec![&new, &new],
                present(&[], &[&new]),
                vec![],
            ),
        ];
        for (case, in_force, present, expected) in cases {
            assert_eq!(unreferenced_list_files(in_force, &present), expected, "{case}");
        }
    }

    #[test]
    fn list_files_are_checked() {
        let good = ListFile { sha256: "a".repeat(64), bytes: 10 };
        assert!(good.validate("adult").is_ok());
        assert!(good.validate("Adult").is_err());
        assert!(good.validate("../x").is_err());
        let bad = ListFile { sha256: "A".repeat(64), bytes: 10 };
        assert!(bad.validate("adult").unwrap_err().to_string().contains("lists.adult.sha256"));
    }
}
