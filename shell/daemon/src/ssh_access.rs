//! Timed root ssh on the device (IT opens it from the server, `ssh_access` command). slated has
//! no right to touch sshd's keys, so it only checks the command again against its own clock
//! (`slate_protocol::ssh_access::decide`) and writes a request, atomically and for root's eyes,
//! to `<state_dir>/ssh-access.request`; `slate-ssh-access.path` sees it and the root helper
//! `/usr/lib/slate/ssh-access` checks it once more and installs the keys (each line with
//! OpenSSH's `expiry-time`), or withdraws them. What slated did goes back as an `ssh_access`
//! event. The outcome of a decision is pure ([`outcome`]).

use crate::policy::write_private;
use chrono::{DateTime, Utc};
use slate_protocol::device::DeviceCommand;
use slate_protocol::ssh_access::{decide, request_file, SshDecision, SshOutcome};
use slate_protocol::EventBody;
use std::path::Path;

/// The request the root helper reads, in slated's state directory.
pub const REQUEST_FILE: &str = "ssh-access.request";

/// What a device reports for a decision. Pure.
pub fn outcome(decision: &SshDecision) -> SshOutcome {
    match decision {
        SshDecision::Open { keys, until } => {
            SshOutcome::Opened { until: *until, keys: keys.len() as u32 }
        }
        SshDecision::Close => SshOutcome::Closed,
        SshDecision::Refuse(reason) => {
            SshOutcome::Refused { reason: reason.chars().take(300).collect() }
        }
    }
}

/// Decides at `now`, writes the request for the root helper and answers with the event body.
/// A request that cannot be written is a refusal that says why.
pub fn carry_out(state_dir: &Path, command: &DeviceCommand, now: DateTime<Utc>) -> EventBody {
    let decision = decide(command.ssh_access.as_ref(), now);
    let outcome = match request_file(&decision) {
        Some(text) => match write_private(&state_dir.join(REQUEST_FILE), text.as_bytes()) {
            Ok(()) => outcome(&decision),
            Err(e) => SshOutcome::Refused { reason: format!("the request was not written: {e}") },
        },
        None => outcome(&decision),
    };
    match &outcome {
        SshOutcome::Refused { reason } => {
            tracing::warn!(command = command.id, %reason, "root ssh refused")
        }
        other => tracing::info!(command = command.id, outcome = ?other, "root ssh request written"),
    }
    EventBody::SshAccess { command: command.id, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::device::CommandAction;
    use slate_protocol::ssh_access::SshAccess;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICpaPoQoQbDCozzRPfpU9Q2TmwmoLJtm5wgTfNiuXw1I";

    fn command(keys: &[&str], until: &str) -> DeviceCommand {
        let mut c = DeviceCommand::new(
            5,
            "2026-12-07T10:30:00Z".parse().unwrap(),
            "2026-12-07T11:30:00Z".parse().unwrap(),
            CommandAction::SshAccess,
        );
        c.ssh_access = Some(SshAccess {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            until: until.parse().unwrap(),
        });
        c
    }

    #[test]
    fn a_request_is_written_only_for_what_the_device_accepts() {
        let now: DateTime<Utc> = "2026-12-07T10:30:00Z".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let request = dir.path().join(REQUEST_FILE);
        let opened = carry_out(dir.path(), &command(&[KEY], "2026-12-07T11:30:00Z"), now);
        assert!(
            matches!(
                opened,
                EventBody::SshAccess { command: 5, outcome: SshOutcome::Opened { keys: 1, .. } }
            ),
            "{opened:?}"
        );
        let text = std::fs::read_to_string(&request).unwrap();
        assert!(
            text.starts_with("until=")
                && text.contains(&format!("expiry-time=\"20261207113000Z\" {KEY}\n")),
            "{text}"
        );
        let refused = carry_out(dir.path(), &command(&[KEY], "2036-12-07T11:30:00Z"), now);
        assert!(matches!(
            refused,
            EventBody::SshAccess { outcome: SshOutcome::Refused { .. }, .. }
        ));
        assert_eq!(
            std::fs::read_to_string(&request).unwrap(),
            text,
            "a refusal leaves the request as it was"
        );
        let closed = carry_out(dir.path(), &command(&[], "2026-12-07T10:30:00Z"), now);
        assert!(matches!(closed, EventBody::SshAccess { outcome: SshOutcome::Closed, .. }));
        assert_eq!(std::fs::read_to_string(&request).unwrap(), "close\n");
    }
}
