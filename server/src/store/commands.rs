//! The command queue each device long-polls: teachers' commands and the server's
//! `refresh_policy`; a NULL device means every device.

use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::device::{CommandAction, DeviceCommand, MAX_COMMANDS_PER_REPLY};
use slate_protocol::DeviceNumber;

/// A command as the teacher's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub id: i64,
    pub device: Option<DeviceNumber>,
    pub action: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub issued_by: String,
}

/// A device's latest button test, as the fleet page shows it: one the fleet page started with
/// `test_button`, or one a member of staff started on the device with their staff PIN (known
/// only from its press; its times are the press's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonTestRecord {
    /// The `test_button` command's id; `None` for a test started with a staff PIN.
    pub command: Option<i64>,
    pub device: DeviceNumber,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Who started it: the username on the fleet page, the PIN's owner on the device.
    pub issued_by: String,
    /// The press that answered it (the device's time), if one has arrived.
    pub pressed_at: Option<DateTime<Utc>>,
}

/// Which of the actions newer than the first four a device's poll said it understands (its
/// `can`): to any other device they are never sent, as it would refuse the whole reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Understands {
    pub test_button: bool,
    pub check_filter: bool,
    pub ssh_access: bool,
}

impl Understands {
    pub const ALL: Self = Self { test_button: true, check_filter: true, ssh_access: true };
}

fn parse_action(text: &str) -> Result<CommandAction, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("command action {text:?}")))
}

impl Store {
    /// Queues a teacher's command for one device or (`None`) all; returns its id.
    pub fn queue_command(
        &self,
        device: Option<DeviceNumber>,
        action: CommandAction,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        by: &str,
    ) -> Result<i64, StoreError> {
        self.lock().query_row(
            "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            (device.map(|d| d.get()), action.as_str(), db_time(issued_at), db_time(expires_at), by),
            |r| r.get(0),
        )
    }

    /// The devices a teacher's commands reach: those with a pupil of one of their classes
    /// signed in now.
    pub fn teacher_devices(&self, teacher: &str) -> Result<Vec<DeviceNumber>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT DISTINCT s.device FROM sessions s
             JOIN pupils p ON p.id = s.pupil JOIN classes c ON c.name = p.class_name
             JOIN staff_classes sc ON sc.class_id = c.id JOIN staff st ON st.id = sc.staff_id
             WHERE s.ended_at IS NULL AND st.username = $1 AND st.disabled_at IS NULL
             ORDER BY s.device",
        )?;
        let rows = statement.query_map([teacher], |r| r.get::<_, i64>(0))?;
        rows.map(|n| {
            let n = n?;
            u32::try_from(n)
                .ok()
                .and_then(|n| DeviceNumber::new(n).ok())
                .ok_or_else(|| StoreError::Corrupt(format!("session device {n}")))
        })
        .collect()
    }

    /// The live commands for `device` after cursor `after`, and the cursor to pass next time.
    /// A cursor past the newest command (a server restored from a backup) starts over.
    /// `can`: the newer actions the device said it understands; the others are never sent to
    /// it. A `check_filter` carries its check's names, an `ssh_access` its keys and until.
    pub fn commands_for(
        &self,
        device: DeviceNumber,
        after: u64,
        now: DateTime<Utc>,
        can: Understands,
    ) -> Result<(Vec<DeviceCommand>, u64), StoreError> {
        let connection = self.lock();
        let newest: i64 =
            connection
                .query_row("SELECT coalesce(max(id), 0) FROM device_commands", [], |r| r.get(0))?;
        let newest = newest as u64;
        let after = if after > newest { 0 } else { after };
        let mut statement = connection.prepare(
            "SELECT id, issued_at, expires_at, action FROM device_commands
             WHERE id > $1 AND (device IS NULL OR device = $2) AND expires_at > $3
               AND action <> $5 AND action <> $6 AND action <> $7
             ORDER BY id LIMIT $4",
        )?;
        let unknown = |understood: bool, action: CommandAction| {
            if understood {
                ""
            } else {
                action.as_str()
            }
        };
        let rows = statement.query_map(
            (
                after as i64,
                device.get(),
                db_time(now),
                MAX_COMMANDS_PER_REPLY as i64,
                unknown(can.test_button, CommandAction::TestButton),
                unknown(can.check_filter, CommandAction::CheckFilter),
                unknown(can.ssh_access, CommandAction::SshAccess),
            ),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )?;
        let mut commands = rows
            .map(|row| {
                let (id, issued, expires, action) = row?;
                Ok(DeviceCommand::new(
                    id as u64,
                    parse_db_time(&issued)?,
                    parse_db_time(&expires)?,
                    parse_action(&action)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        drop(statement);
        for command in commands.iter_mut().filter(|c| c.action == CommandAction::CheckFilter) {
            command.check_names =
                super::filter_checks::names_of_command(&**connection, command.id)?;
        }
        for command in commands.iter_mut().filter(|c| c.action == CommandAction::SshAccess) {
            command.ssh_access = super::ssh_access::access_of_command(&**connection, command.id)?;
        }
        // A full page may have more behind it; otherwise everything up to the newest is seen.
        let cursor = if commands.len() == MAX_COMMANDS_PER_REPLY {
            commands.last().map_or(after, |c| c.id)
        } else {
            newest
        };
        Ok((commands, cursor))
    }

    /// Each device's latest button test, with the press that answered it if one did (by
    /// device number): the fleet page's latest `test_button`, unless a member of staff tested
    /// the button with their PIN on the device since.
    pub fn button_tests(&self) -> Result<Vec<ButtonTestRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, device, issued_at, expires_at, issued_by FROM device_commands
             WHERE id IN (SELECT max(id) FROM device_commands
                          WHERE action = $1 AND device IS NOT NULL GROUP BY device)
             ORDER BY device",
        )?;
        let rows = statement.query_map([CommandAction::TestButton.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut tests = rows
            .map(|row| {
                let (id, device, issued, expires, by) = row?;
                Ok(ButtonTestRecord {
                    command: Some(id),
                    device: DeviceNumber::new(device)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    issued_at: parse_db_time(&issued)?,
                    expires_at: parse_db_time(&expires)?,
                    issued_by: by,
                    pressed_at: None,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        drop(statement);
        let mut statement = connection
            .prepare("SELECT device, at, body FROM events WHERE kind = 'button_tested'")?;
        let rows = statement.query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        // Each device's latest test started with a staff PIN: (press, staff id).
        let mut by_staff: Vec<(DeviceNumber, DateTime<Utc>, slate_protocol::StaffId)> = Vec::new();
        for row in rows {
            let (device, at, body) = row?;
            let device =
                DeviceNumber::new(device).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let at = parse_db_time(&at)?;
            match serde_json::from_str(&body) {
                Ok(slate_protocol::EventBody::ButtonTested { command: Some(command), .. }) => {
                    if let Some(t) = tests
                        .iter_mut()
                        .find(|t| t.device == device && t.command == Some(command as i64))
                    {
                        t.pressed_at = Some(t.pressed_at.map_or(at, |p| p.min(at)));
                    }
                }
                Ok(slate_protocol::EventBody::ButtonTested { staff: Some(staff), .. }) => {
                    match by_staff.iter_mut().find(|(d, _, _)| *d == device) {
                        Some(latest) if latest.1 >= at => {}
                        Some(latest) => *latest = (device, at, staff),
                        None => by_staff.push((device, at, staff)),
                    }
                }
                _ => return Err(StoreError::Corrupt(format!("button_tested body {body:?}"))),
            }
        }
        drop(statement);
        for (device, at, staff) in by_staff {
            let record = ButtonTestRecord {
                command: None,
                device,
                issued_at: at,
                expires_at: at,
                issued_by: super::staff::unlock_staff_name(&**connection, staff.as_str())?,
                pressed_at: Some(at),
            };
            match tests.iter_mut().find(|t| t.device == device) {
                // The later of the two is the device's latest test.
                Some(t) if t.issued_at >= at => {}
                Some(t) => *t = record,
                None => tests.push(record),
            }
        }
        tests.sort_by_key(|t| t.device);
        Ok(tests)
    }

    /// Recent commands, newest first, for the teacher's page.
    pub fn recent_commands(&self, limit: u32) -> Result<Vec<CommandRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, device, action, issued_at, expires_at, issued_by FROM device_commands
             WHERE issued_by <> 'server' ORDER BY id DESC LIMIT $1",
        )?;
        let rows = statement.query_map([limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<u32>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (id, device, action, issued, expires, by) = row?;
            Ok(CommandRecord {
                id,
                device: device
                    .map(DeviceNumber::new)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                action,
                issued_at: parse_db_time(&issued)?,
                expires_at: parse_db_time(&expires)?,
                issued_by: by,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use chrono::Duration;

    #[test]
    fn commands_reach_their_device_once_until_they_expire() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T10:00:00Z");
        let later = now + Duration::minutes(30);
        let all = store.queue_command(None, CommandAction::LockScreens, now, later, "t").unwrap();
        let two = store
            .queue_command(Some(device(2)), CommandAction::SignOutAll, now, later, "t")
            .unwrap();
        let (commands, cursor) = store.commands_for(device(1), 0, now, Understands::ALL).unwrap();
        assert_eq!(commands.iter().map(|c| c.id as i64).collect::<Vec<_>>(), [all]);
        assert_eq!(cursor as i64, two, "the cursor passes commands for other devices");
        assert!(store.commands_for(device(1), cursor, now, Understands::ALL).unwrap().0.is_empty());
        let (for_two, _) = store.commands_for(device(2), 0, now, Understands::ALL).unwrap();
        assert_eq!(for_two.len(), 2);
        assert!(
            store.commands_for(device(2), 0, later, Understands::ALL).unwrap().0.is_empty(),
            "expired"
        );
        let (restart, _) = store.commands_for(device(1), 999, now, Understands::ALL).unwrap();
        assert_eq!(restart.len(), 1, "a cursor from the future starts over");
    }
}
