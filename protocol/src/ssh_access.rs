//! Timed root ssh on one device, opened by IT from the school server: the rules both sides
//! share. The server's `ssh_access` command ([`crate::device::CommandAction::SshAccess`]) carries
//! [`SshAccess`]: OpenSSH public keys and the time they stop working. The device checks them
//! again against its own clock ([`decide`]) and hands the root helper a request whose
//! authorized-keys lines carry OpenSSH's own `expiry-time` option ([`authorized_keys_lines`]),
//! so sshd itself refuses the key after the time even if nothing on the device runs then.
//! Closing early is the same command with no keys. Everything here is pure.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Shortest window IT may open.
pub const MIN_OPEN: Duration = Duration::minutes(15);
/// Longest window IT may open.
pub const MAX_OPEN: Duration = Duration::hours(8);
/// The window the page offers first.
pub const DEFAULT_OPEN: Duration = Duration::hours(1);
/// How far ahead of the device's clock the server's may be: a device accepts an `until` at most
/// [`MAX_OPEN`] plus this from its own now.
pub const CLOCK_SLACK: Duration = Duration::minutes(5);
/// Most keys one opening carries.
pub const MAX_KEYS: usize = 8;
/// Longest key line (`type base64`), in bytes: an 8192-bit RSA key is about 1,400.
pub const MAX_KEY_BYTES: usize = 2048;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 3072;

/// What an `ssh_access` command carries. No keys: close now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshAccess {
    /// OpenSSH public keys, each `type base64` (no options, no comment).
    #[serde(default)]
    pub keys: Vec<String>,
    /// When the keys stop working.
    pub until: DateTime<Utc>,
}

/// What a device did with an `ssh_access` command, as it reports it (`ssh_access` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum SshOutcome {
    /// The keys were handed to the root helper, working until `until`.
    Opened { until: DateTime<Utc>, keys: u32 },
    /// The timed keys were withdrawn (the card's provisioned keys, if any, stay).
    Closed,
    /// Nothing changed, and why.
    Refused { reason: String },
}

/// What the device does with an `ssh_access` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshDecision {
    /// Write these keys, working until `until`.
    Open { keys: Vec<String>, until: DateTime<Utc> },
    /// Withdraw the timed keys now.
    Close,
    /// Refuse, and why.
    Refuse(String),
}

const KEY_TYPES: [&str; 5] =
    ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"];

/// One OpenSSH public key as IT pasted it (`type base64 [comment]`), checked and returned as
/// `type base64`: the comment is dropped (it often names a person, and nothing else reads it).
/// Refuses options before the type (`command="…"`, `from=…`: the device writes its own),
/// newlines and control characters, unknown types, base64 that does not decode to a key of the
/// type it says, and RSA under [`MIN_RSA_BITS`].
pub fn check_public_key(text: &str) -> Result<String, String> {
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    if text.is_empty() {
        return Err("an empty key".into());
    }
    if text.chars().any(char::is_control) {
        if text.contains(['\n', '\r']) {
            return Err("a key is one line: it has a line break".into());
        }
        if !text.chars().all(|c| c == '\t' || !c.is_control()) {
            return Err("a key has a control character".into());
        }
    }
    let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or_default();
    if !KEY_TYPES.contains(&kind) {
        return Err(if KEY_TYPES.iter().any(|t| text.contains(t)) {
            "options before the key type are not allowed (Slate sets its own)".into()
        } else {
            format!(
                "{:?} is not a key type Slate takes (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)",
                kind.chars().take(40).collect::<String>()
            )
        });
    }
    let encoded = words.next().ok_or_else(|| format!("{kind} without the key itself"))?;
    if kind.len() + 1 + encoded.len() > MAX_KEY_BYTES {
        return Err("a key longer than any Slate takes".into());
    }
    let blob = BASE64.decode(encoded).map_err(|_| format!("{kind}: the key is not base64"))?;
    check_blob(kind, &blob)?;
    Ok(format!("{kind} {encoded}"))
}

/// Reads one SSH wire `string` (u32 length, then the bytes).
fn take<'a>(blob: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let rest = blob.get(4..)?;
    let (field, tail) = (rest.get(..len)?, rest.get(len..)?);
    *blob = tail;
    Some(field)
}

/// The key blob (RFC 4253 §6.6, RFC 5656, RFC 8709) is of the type its line says.
fn check_blob(kind: &str, blob: &[u8]) -> Result<(), String> {
    let bad = || format!("{kind}: the key's data is not an {kind} key");
    let mut rest = blob;
    if take(&mut rest) != Some(kind.as_bytes()) {
        return Err(bad());
    }
    match kind {
        "ssh-ed25519" => {
            if take(&mut rest).map(<[u8]>::len) != Some(32) {
                return Err(bad());
            }
        }
        "ssh-rsa" => {
            let _exponent = take(&mut rest).ok_or_else(bad)?;
            let modulus = take(&mut rest).ok_or_else(bad)?;
            let first = modulus.iter().position(|b| *b != 0).ok_or_else(bad)?;
            let bits = (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize;
            if bits < MIN_RSA_BITS {
                return Err(format!("ssh-rsa: {bits}-bit keys are too weak ({MIN_RSA_BITS} at least; ed25519 is better)"));
            }
        }
        _ => {
            let curve = kind.trim_start_matches("ecdsa-sha2-");
            if take(&mut rest) != Some(curve.as_bytes()) || take(&mut rest).is_none() {
                return Err(bad());
            }
        }
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// The keys IT pasted, one a line (blank lines skipped), each checked: 1 to [`MAX_KEYS`],
/// no repeats. The error names the line.
pub fn parse_keys(text: &str) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let key = check_public_key(line).map_err(|e| format!("Key on line {}: {e}.", i + 1))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    check_keys(&keys)?;
    Ok(keys)
}

/// A command's keys: 1 to [`MAX_KEYS`], each as [`check_public_key`] returns it.
pub fn check_keys(keys: &[String]) -> Result<(), String> {
    if keys.is_empty() {
        return Err("Keys: one or more OpenSSH public keys, one a line.".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("Keys: at most {MAX_KEYS}."));
    }
    for key in keys {
        if check_public_key(key).as_deref() != Ok(key.as_str()) {
            return Err("Keys: each is `type base64`, no options, no comment.".into());
        }
    }
    Ok(())
}

/// The window IT asked for, in minutes: [`MIN_OPEN`] to [`MAX_OPEN`]; the server's rule.
pub fn check_minutes(minutes: i64) -> Result<Duration, String> {
    // Compared as minutes first: `Duration::minutes` panics on a number this large.
    if !(MIN_OPEN.num_minutes()..=MAX_OPEN.num_minutes()).contains(&minutes) {
        return Err(format!(
            "Open for: {} minutes to {} hours.",
            MIN_OPEN.num_minutes(),
            MAX_OPEN.num_hours()
        ));
    }
    Ok(Duration::minutes(minutes))
}

/// What the device does with a command's [`SshAccess`] at its own `now`: no keys, or an `until`
/// already past, closes; keys are checked again; an `until` further ahead than [`MAX_OPEN`]
/// (plus [`CLOCK_SLACK`]) is refused whatever the server said.
pub fn decide(access: Option<&SshAccess>, now: DateTime<Utc>) -> SshDecision {
    let Some(access) = access else {
        return SshDecision::Refuse("the command carries no ssh_access".into());
    };
    if access.keys.is_empty() || access.until <= now {
        return SshDecision::Close;
    }
    if access.until > now + MAX_OPEN + CLOCK_SLACK {
        return SshDecision::Refuse(format!(
            "until {} is more than {} hours from the device's clock",
            access.until.format("%Y-%m-%d %H:%M UTC"),
            MAX_OPEN.num_hours()
        ));
    }
    if let Err(e) = check_keys(&access.keys) {
        return SshDecision::Refuse(e);
    }
    SshDecision::Open { keys: access.keys.clone(), until: access.until }
}

/// OpenSSH's `expiry-time` value for `until`, in UTC (the `Z`), to the second.
pub fn expiry_time(until: DateTime<Utc>) -> String {
    until.format("%Y%m%d%H%M%SZ").to_string()
}

/// The authorized-keys lines for checked keys: each with `expiry-time`, so sshd refuses it
/// after `until` by itself, and `restrict` is not set (IT's shell needs a pty and forwarding
/// off is sshd_config's). One line a key, newline-terminated.
pub fn authorized_keys_lines(keys: &[String], until: DateTime<Utc>) -> String {
    let expiry = expiry_time(until);
    keys.iter().map(|key| format!("expiry-time=\"{expiry}\" {key}\n")).collect()
}

/// The request file slated hands the root helper (`/usr/lib/slate/ssh-access`): `close`, or
/// `until=<unix seconds>` then the authorized-keys lines. The helper checks every line again.
pub fn request_file(decision: &SshDecision) -> Option<String> {
    match decision {
        SshDecision::Open { keys, until } => {
            Some(format!("until={}\n{}", until.timestamp(), authorized_keys_lines(keys, *until)))
        }
        SshDecision::Close => Some("close\n".into()),
        SshDecision::Refuse(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real keys from `ssh-keygen` (throwaway, made for these tests).
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICpaPoQoQbDCozzRPfpU9Q2TmwmoLJtm5wgTfNiuXw1I";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJY1s1ytWnRnPLBJPX0HHSm9Poya5T3YnkSIxIP3G+RVWS2AGjlIrTdlKimZMIyk/RiK2TC7+jbS2w/9FT3WSQQ=";

    /// An RSA key blob with a modulus of `bits` bits (its value does not matter to the check).
    fn rsa(bits: usize) -> String {
        let mut blob = Vec::new();
        let mut put = |field: &[u8]| {
            blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
            blob.extend_from_slice(field);
        };
        put(b"ssh-rsa");
        put(&[1, 0, 1]);
        let mut modulus = vec![0u8; bits / 8 + 1];
        modulus[1] = 0x80;
        put(&modulus);
        format!("ssh-rsa {}", BASE64.encode(blob))
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_checked_and_their_comments_dropped() {
        let rsa_3072 = rsa(3072);
        let with_comment = format!("{ED25519} it.admin@school-laptop");
        let ok: [(&str, &str); 4] =
            [(ED25519, ED25519), (&with_comment, ED25519), (ECDSA, ECDSA), (&rsa_3072, &rsa_3072)];
        for (pasted, want) in ok {
            assert_eq!(check_public_key(pasted).as_deref(), Ok(want), "{pasted}");
        }
        let truncated = &ED25519[..ED25519.len() - 8];
        let wrong_type = format!("ssh-rsa {}", ED25519.split(' ').nth(1).unwrap());
        let rsa_2048 = rsa(2048);
        let newline = format!("{ED25519}\n{ECDSA}");
        let options = format!("command=\"/bin/sh\" {ED25519}");
        let from = format!("from=\"*\",expiry-time=\"29991231\" {ED25519}");
        let trailing = format!("{ED25519}AAAA");
        let nul = format!("{ED25519}\0");
        let bad: [(&str, &str); 11] = [
            ("", "empty"),
            (&options, "options"),
            (&from, "options"),
            (&newline, "line break"),
            ("ssh-dss AAAAB3NzaC1kc3M=", "not a key type"),
            ("ssh-ed25519", "without the key"),
            ("ssh-ed25519 !!notbase64", "not base64"),
            (truncated, "ed25519"),
            (&wrong_type, "not an ssh-rsa key"),
            (&rsa_2048, "2048-bit"),
            (&nul, "control character"),
        ];
        for (pasted, part) in bad {
            let err = check_public_key(pasted).unwrap_err();
            assert!(err.contains(part), "{pasted:?}: {err}");
        }
        assert!(check_public_key(&trailing).is_err(), "bytes after the key");
    }

    #[test]
    fn pasted_keys_name_the_bad_line() {
        assert_eq!(
            parse_keys(&format!("\n{ED25519} a\n\n{ED25519} b\n{ECDSA}\n")).unwrap(),
            [ED25519, ECDSA]
        );
        let err = parse_keys(&format!("{ED25519}\ncommand=\"x\" {ECDSA}")).unwrap_err();
        assert!(err.contains("line 2") && err.contains("options"), "{err}");
        assert!(parse_keys("  \n").unwrap_err().contains("one or more"));
        let many: String = (0..9).map(|i| format!("{}\n", rsa(3072 + 8 * i))).collect();
        assert!(parse_keys(&many).unwrap_err().contains("at most 8"));
    }

    #[test]
    fn the_window_is_fifteen_minutes_to_eight_hours() {
        assert_eq!(check_minutes(60), Ok(Duration::hours(1)));
        assert_eq!(check_minutes(15), Ok(MIN_OPEN));
        assert_eq!(check_minutes(480), Ok(MAX_OPEN));
        for minutes in [0, 14, 481, -60, 10 * 365 * 24 * 60, i64::MAX, i64::MIN] {
            assert!(check_minutes(minutes).is_err(), "{minutes}");
        }
    }

    #[test]
    fn the_device_decides_against_its_own_clock() {
        let now = t("2026-12-07T10:30:00Z");
        let access = |keys: &[&str], until: &str| SshAccess {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            until: t(until),
        };
        let open = |until: &str| SshDecision::Open { keys: vec![ED25519.into()], until: t(until) };
        let options = format!("command=\"/bin/sh\" {ED25519}");
        let cases: Vec<(&str, SshAccess, Result<SshDecision, &str>)> = vec![
            (
                "an hour",
                access(&[ED25519], "2026-12-07T11:30:00Z"),
                Ok(open("2026-12-07T11:30:00Z")),
            ),
            (
                "eight hours and the slack",
                access(&[ED25519], "2026-12-07T18:35:00Z"),
                Ok(open("2026-12-07T18:35:00Z")),
            ),
            ("no keys closes", access(&[], "2026-12-07T11:30:00Z"), Ok(SshDecision::Close)),
            (
                "a past until closes",
                access(&[ED25519], "2026-12-07T10:29:59Z"),
                Ok(SshDecision::Close),
            ),
            ("ten years", access(&[ED25519], "2036-12-07T10:30:00Z"), Err("more than 8 hours")),
            (
                "just past eight hours",
                access(&[ED25519], "2026-12-07T18:35:01Z"),
                Err("more than 8 hours"),
            ),
            (
                "options smuggled in",
                access(&[options.as_str()], "2026-12-07T11:30:00Z"),
                Err("no options"),
            ),
            (
                "a comment left on",
                access(&[format!("{ED25519} x").as_str()], "2026-12-07T11:30:00Z"),
                Err("no options"),
            ),
            (
                "a newline in a key",
                access(&[format!("{ED25519}\nssh-ed25519 AAAA").as_str()], "2026-12-07T11:30:00Z"),
                Err("no options"),
            ),
        ];
        for (name, access, want) in cases {
            let got = decide(Some(&access), now);
            match (got, want) {
                (got, Ok(want)) => assert_eq!(got, want, "{name}"),
                (SshDecision::Refuse(why), Err(part)) => {
                    assert!(why.contains(part), "{name}: {why}")
                }
                (got, Err(_)) => panic!("{name}: {got:?}"),
            }
        }
        assert!(matches!(decide(None, now), SshDecision::Refuse(_)));
    }

    #[test]
    fn lines_carry_opensshs_expiry_time() {
        let until = t("2026-12-07T11:30:05Z");
        let keys = vec![ED25519.to_owned(), ECDSA.to_owned()];
        assert_eq!(
            authorized_keys_lines(&keys, until),
            format!("expiry-time=\"20261207113005Z\" {ED25519}\nexpiry-time=\"20261207113005Z\" {ECDSA}\n")
        );
        let open = SshDecision::Open { keys: vec![ED25519.into()], until };
        assert_eq!(
            request_file(&open).unwrap(),
            format!("until={}\nexpiry-time=\"20261207113005Z\" {ED25519}\n", until.timestamp())
        );
        assert_eq!(request_file(&SshDecision::Close).as_deref(), Some("close\n"));
        assert_eq!(request_file(&SshDecision::Refuse("no".into())), None);
    }

    #[test]
    fn outcomes_on_the_wire() {
        let opened = SshOutcome::Opened { until: t("2026-12-07T11:30:00Z"), keys: 1 };
        let wire = serde_json::to_string(&opened).unwrap();
        assert_eq!(wire, r#"{"state":"opened","until":"2026-12-07T11:30:00Z","keys":1}"#);
        assert_eq!(serde_json::from_str::<SshOutcome>(&wire).unwrap(), opened);
        assert_eq!(serde_json::to_string(&SshOutcome::Closed).unwrap(), r#"{"state":"closed"}"#);
    }
}
