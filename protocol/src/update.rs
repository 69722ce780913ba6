//! Updates (issue 16): a device tells the server which image version it runs and how an update
//! is going; the server answers with the signed RAUC bundle the device should run, if any.
//!
//! ```text
//! device                                         server
//!   POST /api/v1/device/update  UpdateCheck  --->   Authorization: Bearer <credential>
//!                                            <---   200 UpdateReply   (offer, or none)
//!                                            <---   404               (a server without updates)
//!   GET /api/v1/device/update/bundles/<sha256>  --->   Range: bytes=<from>-   (resuming)
//!                                            <---   206 / 200         the bundle's bytes
//! ```
//!
//! The device checks the bundle's SHA-256 after download, and RAUC checks its signature (IT's
//! update CA, separate from the policy key) before writing anything. It installs only with no
//! pupil signed in and reboots into the new slot only when idle, never before `reboot_after`.

use crate::{check_text, check_version, decode, invalid, ProtocolError, PROTOCOL_VERSION};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest bundle a server offers or a device downloads, in bytes (a slot is 1.5 GiB).
pub const MAX_BUNDLE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Longest version string (`images/build --version`: letters, digits and `. + ~ _ -`).
pub const MAX_VERSION_BYTES: usize = 64;

/// `POST /api/v1/device/update`: what the device runs, and how its update is going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCheck {
    pub v: u16,
    /// The image version it runs (`SLATE_VERSION` in `/etc/slate-release`).
    pub running: String,
    pub state: UpdateState,
    /// The version `state` is about (being downloaded, installed, or the one that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Bytes of `target` downloaded so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloaded: Option<u64>,
    /// The last thing that went wrong, in words safe to show IT (a download, RAUC's refusal, or
    /// why the new slot was rolled back). No personal data: the device never puts any here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a device is with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// Runs what it was offered, or was offered nothing.
    Current,
    /// Fetching `target` in the background (resumable).
    Downloading,
    /// `target` is downloaded and checked; it installs when no pupil is signed in.
    Downloaded,
    /// RAUC is writing `target` into the other slot.
    Installing,
    /// `target` is in the other slot; the device reboots into it when idle.
    WaitingToReboot,
    /// The last attempt at `target` failed: `error` says where and why. A version whose new
    /// slot rolled back is not tried again; a new bundle is.
    Failed,
}

impl UpdateState {
    /// The word the fleet page and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Current => "current",
            UpdateState::Downloading => "downloading",
            UpdateState::Downloaded => "downloaded",
            UpdateState::Installing => "installing",
            UpdateState::WaitingToReboot => "waiting_to_reboot",
            UpdateState::Failed => "failed",
        }
    }

    /// The inverse of [`UpdateState::as_str`] (for storage).
    pub fn parse(word: &str) -> Option<Self> {
        [
            UpdateState::Current,
            UpdateState::Downloading,
            UpdateState::Downloaded,
            UpdateState::Installing,
            UpdateState::WaitingToReboot,
            UpdateState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
    }
}

impl UpdateCheck {
    pub fn new(running: String, state: UpdateState) -> Self {
        Self { v: PROTOCOL_VERSION, running, state, target: None, downloaded: None, error: None }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let check: UpdateCheck = decode(bytes)?;
        check_version(check.v)?;
        check_image_version("running", &check.running)?;
        if let Some(target) = &check.target {
            check_image_version("target", target)?;
        }
        if let Some(error) = &check.error {
            check_text("error", error, crate::MAX_TEXT_BYTES)?;
        }
        if check.downloaded.is_some_and(|d| d > MAX_BUNDLE_BYTES) {
            return Err(invalid("downloaded", "is larger than any bundle"));
        }
        Ok(check)
    }
}

/// The answer to an [`UpdateCheck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateReply {
    pub v: u16,
    /// The bundle this device should run, when it runs something else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<UpdateOffer>,
}

impl UpdateReply {
    pub fn new(offer: Option<UpdateOffer>) -> Self {
        Self { v: PROTOCOL_VERSION, offer }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let reply: UpdateReply = decode(bytes)?;
        check_version(reply.v)?;
        if let Some(offer) = &reply.offer {
            offer.check()?;
        }
        Ok(reply)
    }
}

/// A bundle to fetch from [`crate::routes::device_update_bundle`] and install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOffer {
    /// The image version inside (RAUC's manifest `version`).
    pub version: String,
    /// SHA-256 of the bundle file, 64 lowercase hex digits: its name on the server, and checked
    /// by the device after download.
    pub sha256: String,
    /// The bundle's size in bytes.
    pub bytes: u64,
    /// Reboot into it no earlier than this (a time IT set); without it, as soon as the device is
    /// idle after installing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_after: Option<DateTime<Utc>>,
    /// The server's number for the rollout this offer is part of (each `update rollout` IT
    /// starts has a higher one; 0, left out: not said). A device that gave up on this version in
    /// an earlier rollout tries it once more: a server offers a version that failed on a device
    /// again only when IT asked it to (`update rollout --retry-failed`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rollout: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UpdateOffer {
    fn check(&self) -> Result<(), ProtocolError> {
        check_image_version("version", &self.version)?;
        check_sha256("sha256", &self.sha256)?;
        if self.bytes == 0 || self.bytes > MAX_BUNDLE_BYTES {
            return Err(invalid("bytes", format!("must be 1 to {MAX_BUNDLE_BYTES}")));
        }
        Ok(())
    }
}

/// An image version as `images/build` writes it: 1 to 64 of letters, digits and `. + ~ _ -`.
pub fn check_image_version(field: &str, version: &str) -> Result<(), ProtocolError> {
    let ok = !version.is_empty()
        && version.len() <= MAX_VERSION_BYTES
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "must be 1 to 64 of letters, digits and . + ~ _ -"))
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
pub fn check_sha256(field: &str, digest: &str) -> Result<(), ProtocolError> {
    if digest.len() == 64
        && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(invalid(field, "must be 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "e03a505dfd7171d6580c13b14bac63e789dee283984be36654d9e0a4dd88d724";

    #[test]
    fn a_check_round_trips_and_leaves_out_what_it_does_not_have() {
        let check = UpdateCheck::new("0.1.0+202612070005.bc7c1e2e72".into(), UpdateState::Current);
        let json = serde_json::to_string(&check).unwrap();
        assert_eq!(json, r#"{"v":1,"running":"0.1.0+202612070005.bc7c1e2e72","state":"current"}"#);
        assert_eq!(UpdateCheck::from_json(json.as_bytes()).unwrap(), check);
        let failed = UpdateCheck {
            state: UpdateState::Failed,
            target: Some("0.2.0".into()),
            error: Some("rolled back: not healthy 304s after boot".into()),
            ..check
        };
        let json = serde_json::to_vec(&failed).unwrap();
        assert_eq!(UpdateCheck::from_json(&json).unwrap(), failed);
    }

    #[test]
    fn bad_checks_are_refused_naming_the_field() {
        let cases = [
            (r#"{"v":1,"running":"","state":"current"}"#, "running"),
            (r#"{"v":1,"running":"1.0 beta","state":"current"}"#, "running"),
            (r#"{"v":1,"running":"1.0","state":"current","target":"x/../y"}"#, "target"),
            (
                r#"{"v":1,"running":"1.0","state":"current","downloaded":9999999999999}"#,
                "downloaded",
            ),
            (r#"{"v":1,"running":"1.0","state":"exploded"}"#, "unknown variant"),
            (r#"{"v":1,"running":"1.0","state":"current","extra":1}"#, "unknown field"),
            (r#"{"v":2,"running":"1.0","state":"current"}"#, "version"),
        ];
        for (json, named) in cases {
            let err = UpdateCheck::from_json(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(named), "{json}: {err}");
        }
    }

    #[test]
    fn an_offer_is_checked_before_a_device_fetches_anything() {
        let offer = |version: &str, sha: &str, bytes: u64| {
            serde_json::to_vec(&UpdateReply::new(Some(UpdateOffer {
                version: version.into(),
                sha256: sha.into(),
                bytes,
                reboot_after: None,
                rollout: 3,
            })))
            .unwrap()
        };
        assert!(UpdateReply::from_json(&offer("0.2.0", SHA, 272_200_000)).is_ok());
        assert!(UpdateReply::from_json(&offer("0.2.0", &SHA.to_uppercase(), 1)).is_err());
        assert!(UpdateReply::from_json(&offer("0.2.0", "../../etc/passwd", 1)).is_err());
        assert!(UpdateReply::from_json(&offer("0.2.0", SHA, 0)).is_err());
        assert!(UpdateReply::from_json(&offer("0.2.0", SHA, MAX_BUNDLE_BYTES + 1)).is_err());
        assert!(UpdateReply::from_json(&offer("", SHA, 1)).is_err());
        assert_eq!(UpdateReply::from_json(br#"{"v":1}"#).unwrap(), UpdateReply::new(None));
    }

    #[test]
    fn every_state_has_one_word() {
        for word in
            ["current", "downloading", "downloaded", "installing", "waiting_to_reboot", "failed"]
        {
            let state = UpdateState::parse(word).unwrap();
            assert_eq!(state.as_str(), word);
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{word}\""));
        }
        assert_eq!(UpdateState::parse("Current"), None);
    }
}
