//! slate-dns's socket, for slated: which profile is in force, the names looked up lately (for
//! a report) and "re-read the policy". Typed both ways: slated sends a [`Request`] and reads a
//! [`Reply`]; slate-dns parses with [`parse_request`]. A Unix stream socket (mode 0660, default
//! [`DEFAULT_SOCKET`]), one JSON request per line, one JSON reply per line.
//!
//! ```text
//! {"cmd":"recent"}                   -> {"ok":true,"names":["newest.example", …]}
//!                                       up to 20 distinct names from the last 120 s, newest first
//! {"cmd":"profile","profile":"oak"}  -> {"ok":true}   in force at once; a profile the policy
//! {"cmd":"profile","profile":null}   -> {"ok":true}   lacks (or null) means its default
//! {"cmd":"reload"}                   -> {"ok":true} | {"ok":false,"error":"…"}
//! {"cmd":"check","name":"a.example"} -> {"ok":true,"check":{"blocked_by":"adult"}}
//!                                       | {"ok":true,"check":{"blocked_by":null}}   (allowed)
//! ```
//!
//! `check` is the termly filter check's: the filter's decision for a name under the profile in
//! force, exactly as a DNS query for it would be decided, but not remembered as a lookup (no
//! recent name, no block event: a check is not a pupil's visit).

use serde::{Deserialize, Deserializer, Serialize};

/// Default path of the socket.
pub const DEFAULT_SOCKET: &str = "/run/slate/dns.sock";
/// Longest request line accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// A request, as sent on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Recent {},
    Profile {
        /// Must be present; `null` for the policy's default.
        #[serde(deserialize_with = "present")]
        profile: Option<String>,
    },
    Reload {},
    Check {
        name: String,
    },
}

/// `Option` without serde's "missing means None": a request that forgets the field is refused.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `check`'s answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckAnswer>,
}

/// What the filter decided for a `check`ed name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckAnswer {
    /// The list that blocks it; `None`: allowed (forwarded, or rewritten to a safe host).
    pub blocked_by: Option<String>,
}

impl Reply {
    pub fn ok() -> Self {
        Self { ok: true, names: None, error: None, check: None }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, names: None, error: Some(message.into()), check: None }
    }
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
        line.push(b'\n');
        line
    }
}

/// Parses and validates one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
    // serde would take `["recent"]` for `{"cmd":"recent"}`: only objects are requests.
    if !value.is_object() {
        return Err("bad request: not a JSON object".into());
    }
    let request: Request =
        serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))?;
    if let Request::Profile { profile: Some(name) } = &request {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err("bad request: `profile` is not 1 to 64 of [A-Za-z0-9_-] or null".into());
        }
    }
    if let Request::Check { name } = &request {
        let ok = (1..=253).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok {
            return Err("bad request: `name` is not a domain name".into());
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_junk_is_refused_with_a_reason() {
        let good = [
            (r#"{"cmd":"recent"}"#, Request::Recent {}),
            (r#"{"cmd":"reload"}"#, Request::Reload {}),
            (
                r#"{"cmd":"profile","profile":"oak"}"#,
                Request::Profile { profile: Some("oak".into()) },
            ),
            (r#"{"cmd":"profile","profile":null}"#, Request::Profile { profile: None }),
            (r#"{"cmd":"check","name":"a.example"}"#, Request::Check { name: "a.example".into() }),
        ];
        for (line, expected) in good {
            assert_eq!(parse_request(line.as_bytes()), Ok(expected), "{line}");
        }
        let bad = [
            ("", "bad request"),
            ("not json", "bad request"),
            (r#"{"cmd":"shutdown"}"#, "unknown variant"),
            (r#"{"cmd":"recent","x":1}"#, "unknown field"),
            (r#"{"cmd":"profile"}"#, "missing field `profile`"),
            (r#"{"cmd":"profile","profile":7}"#, "invalid type"),
            (r#"{"cmd":"profile","profile":"a b"}"#, "`profile`"),
            (r#"{"cmd":"profile","profile":""}"#, "`profile`"),
            (r#"{"profile":"oak"}"#, "missing field `cmd`"),
            (r#"["recent"]"#, "bad request"),
            (r#"{"cmd":"check"}"#, "missing field `name`"),
            (r#"{"cmd":"check","name":"a b"}"#, "`name`"),
            (r#"{"cmd":"check","name":""}"#, "`name`"),
        ];
        for (line, expected) in bad {
            let err = parse_request(line.as_bytes()).expect_err(line);
            assert!(err.contains(expected), "{line}: {err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn replies_are_one_json_line() {
        assert_eq!(Reply::ok().to_line(), b"{\"ok\":true}\n");
        let recent = Reply { names: Some(vec!["a.test".into()]), ..Reply::ok() };
        assert_eq!(recent.to_line(), b"{\"ok\":true,\"names\":[\"a.test\"]}\n");
        assert_eq!(Reply::error("no").to_line(), b"{\"ok\":false,\"error\":\"no\"}\n");
        let allowed = Reply { check: Some(CheckAnswer { blocked_by: None }), ..Reply::ok() };
        assert_eq!(allowed.to_line(), b"{\"ok\":true,\"check\":{\"blocked_by\":null}}\n");
    }
}
