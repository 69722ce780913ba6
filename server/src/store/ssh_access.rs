//! Timed root ssh's records: each `ssh_access` command's keys and until when (beside the
//! command, going with it), and the device's answers (`ssh_access` events), read back as the
//! device page's "ssh open until 11:30 (by it.admin)".

use super::sql::{Database, OptionalExtension};
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use slate_protocol::device::CommandAction;
use slate_protocol::ssh_access::{SshAccess, SshOutcome, MAX_OPEN};
use slate_protocol::{DeviceNumber, EventBody};

/// A device's latest timed-ssh command and what the device said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAccessState {
    pub command: i64,
    /// The IT account that sent it.
    pub by: String,
    pub issued_at: DateTime<Utc>,
    /// How many keys it opened with (0: it closed).
    pub keys: usize,
    pub until: DateTime<Utc>,
    /// The device's answer, once it came.
    pub answer: Option<SshOutcome>,
}

/// The keys and until of an `ssh_access` command, for the device that polls it.
pub(super) fn access_of_command(
    database: &(dyn Database + '_),
    command: u64,
) -> Result<Option<SshAccess>, StoreError> {
    let row: Option<(String, String)> = database
        .query_row(
            "SELECT keys, until FROM ssh_access_commands WHERE command = $1",
            [command as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((keys, until)) = row else {
        return Err(StoreError::Corrupt(format!("ssh_access command {command} has no keys row")));
    };
    let keys: Vec<String> = serde_json::from_str(&keys)
        .map_err(|e| StoreError::Corrupt(format!("ssh_access keys: {e}")))?;
    Ok(Some(SshAccess { keys, until: parse_db_time(&until)? }))
}

impl Store {
    /// Queues an `ssh_access` command for one enrolled device and audits it, in one
    /// transaction; returns the command's id, or None when the device is not enrolled. With keys
    /// it opens until `now + open_for` and is deliverable until then; with none it closes, and is
    /// deliverable for as long as any opening could still be in force ([`MAX_OPEN`]; `open_for`
    /// is not used then).
    pub fn queue_ssh_access(
        &self,
        device: DeviceNumber,
        keys: &[String],
        open_for: Duration,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<Option<i64>, StoreError> {
        let (until, expires_at) =
            if keys.is_empty() { (now, now + MAX_OPEN) } else { (now + open_for, now + open_for) };
        let connection = self.lock();
        let tx = connection.transaction()?;
        let enrolled: Option<i64> = tx
            .query_row("SELECT 1 FROM devices WHERE number = $1", [device.get()], |r| r.get(0))
            .optional()?;
        if enrolled.is_none() {
            return Ok(None);
        }
        let command: i64 = tx.query_row(
            "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            (
                device.get(),
                CommandAction::SshAccess.as_str(),
                db_time(now),
                db_time(expires_at),
                by,
            ),
            |r| r.get(0),
        )?;
        let keys_json = serde_json::to_string(keys).expect("keys always serialise");
        tx.execute(
            "INSERT INTO ssh_access_commands (command, device, keys, until) VALUES ($1, $2, $3, $4)",
            (command, device.get(), keys_json, db_time(until)),
        )?;
        let (action, detail) = if keys.is_empty() {
            ("closed root ssh (ssh_access)", format!("device {device}"))
        } else {
            (
                "opened root ssh (ssh_access)",
                format!(
                    "device {device}, until {}, {} key(s)",
                    crate::uk_time::format_uk(until),
                    keys.len()
                ),
            )
        };
        append_audit(&*tx, now, by, action, Some(&detail), None)?;
        tx.commit()?;
        Ok(Some(command))
    }

    /// The device's latest `ssh_access` command and its answer, if any was sent.
    pub fn ssh_access_state(
        &self,
        device: DeviceNumber,
    ) -> Result<Option<SshAccessState>, StoreError> {
        let connection = self.lock();
        let row: Option<(i64, String, String, String, String)> = connection
            .query_row(
                "SELECT c.id, c.issued_by, c.issued_at, s.keys, s.until
                 FROM ssh_access_commands s JOIN device_commands c ON c.id = s.command
                 WHERE s.device = $1 ORDER BY s.command DESC LIMIT 1",
                [device.get()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((command, by, issued, keys, until)) = row else { return Ok(None) };
        let keys: Vec<String> = serde_json::from_str(&keys)
            .map_err(|e| StoreError::Corrupt(format!("ssh_access keys: {e}")))?;
        let mut statement = connection.prepare(
            "SELECT body FROM events WHERE kind = 'ssh_access' AND device = $1 ORDER BY id",
        )?;
        let bodies = statement.query_map([device.get()], |r| r.get::<_, String>(0))?;
        let mut answer = None;
        for body in bodies {
            let body = body?;
            match serde_json::from_str(&body) {
                Ok(EventBody::SshAccess { command: c, outcome }) if c as i64 == command => {
                    answer = Some(outcome)
                }
                Ok(EventBody::SshAccess { .. }) => {}
                _ => return Err(StoreError::Corrupt(format!("ssh_access body {body:?}"))),
            }
        }
        Ok(Some(SshAccessState {
            command,
            by,
            issued_at: parse_db_time(&issued)?,
            keys: keys.len(),
            until: parse_db_time(&until)?,
            answer,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use crate::store::Understands;
    use chrono::Duration;

    #[test]
    fn an_opening_reaches_its_device_with_its_keys_and_only_if_it_understands() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-12-07T10:30:00Z");
        let until = now + Duration::hours(1);
        let keys = vec!["ssh-ed25519 AAAA".to_owned()];
        let id = store
            .queue_ssh_access(device(1), &keys, Duration::hours(1), now, "it.admin")
            .unwrap()
            .expect("device 1 is enrolled");
        let (commands, _) = store.commands_for(device(1), 0, now, Understands::ALL).unwrap();
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].id as i64, id);
        assert_eq!(commands[0].ssh_access, Some(SshAccess { keys: keys.clone(), until }));
        let older = Understands { test_button: true, check_filter: true, ssh_access: false };
        assert!(store.commands_for(device(1), 0, now, older).unwrap().0.is_empty());
        let state = store.ssh_access_state(device(1)).unwrap().unwrap();
        assert_eq!(
            (state.by.as_str(), state.keys, state.until, state.answer),
            ("it.admin", 1, until, None)
        );
        assert!(store.ssh_access_state(device(2)).unwrap().is_none());
        // A device that never enrolled gets nothing queued.
        assert_eq!(
            store.queue_ssh_access(device(2), &keys, Duration::hours(1), now, "it.admin").unwrap(),
            None
        );
    }
}
