//! What devices are told, and teacher commands: classes, pupils' tiles, apps, settings, filter
//! lists, profiles and bypasses; the command queue each device long-polls. Every change to what
//! devices are told moves `policy_changed_at` and queues `refresh_policy` for every device, in
//! the same transaction.

use super::sql::{params, OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use crate::device_policy::{
    default_profile_name, pupil_tile, ApprovedBypass, ClassRecord, PolicyPupil, PolicyRecords,
    ProfileRecord,
};
use crate::roster::RosterRow;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use slate_protocol::device::{CommandAction, DeviceCommand, ListFile, MAX_COMMANDS_PER_REPLY};
use slate_protocol::kiosk::{App, AppKind, KeyStage, SessionRules};
use slate_protocol::{DeviceNumber, PupilId};
use std::collections::BTreeMap;

/// How long a `refresh_policy` queued by a change stays worth acting on: a device that was off
/// fetches the policy when it starts anyway.
const REFRESH_VALID: Duration = Duration::hours(1);

/// Class tile pictures given to classes a roster import creates.
const CLASS_SYMBOLS: &[&str] = &["tree", "sun", "boat", "flower", "moon", "star"];

/// Setting keys.
pub const IDLE_TIMEOUT_MIN: &str = "idle_timeout_min";
pub const LESSON_ENDS: &str = "lesson_ends";
pub const URL_SALT: &str = "url_salt";
const POLICY_CHANGED_AT: &str = "policy_changed_at";

/// A class as IT enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInput {
    pub name: String,
    pub key_stage: KeyStage,
    pub symbol: String,
    pub colour: u8,
    pub profile: String,
}

/// What a roster import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub pupils_added: usize,
    pub already_there: usize,
    pub classes_added: usize,
}
/// What became of a decision on a bypass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassDecision {
    Decided,
    /// Decided already, or no such request.
    NotPending,
    /// The decider asked for it: someone else must decide.
    OwnRequest,
}

/// A bypass request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassRecord {
    pub id: i64,
    pub profile: String,
    pub domain: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub status: String,
    pub decided_by: Option<String>,
}

/// An uploaded list, for IT's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    pub name: String,
    pub file: ListFile,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

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

fn key_stage_name(ks: KeyStage) -> &'static str {
    match ks {
        KeyStage::Ks1 => "ks1",
        KeyStage::Ks2 => "ks2",
    }
}

fn parse_key_stage(text: &str) -> Result<KeyStage, StoreError> {
    match text {
        "ks1" => Ok(KeyStage::Ks1),
        "ks2" => Ok(KeyStage::Ks2),
        other => Err(StoreError::Corrupt(format!("key stage {other:?}"))),
    }
}

fn parse_action(text: &str) -> Result<CommandAction, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("command action {text:?}")))
}

/// Marks what devices are told as changed: a new `issued_at` (later than the last, whatever the
/// clock says), and every device told to fetch.
pub(super) fn policy_changed(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    let previous: Option<String> = tx
        .query_row("SELECT value FROM settings WHERE key = $1", [POLICY_CHANGED_AT], |r| r.get(0))
        .optional()?;
    let previous = previous.as_deref().map(parse_db_time).transpose()?;
    let version = crate::device_policy::next_policy_version(previous, now);
    set_setting_in(tx, POLICY_CHANGED_AT, &db_time(version))?;
    tx.execute(
        "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
         VALUES (NULL, 'refresh_policy', $1, $2, 'server')",
        (db_time(now), db_time(now + REFRESH_VALID)),
    )?;
    Ok(())
}

fn set_setting_in(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

impl Store {
    fn immediate<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM settings WHERE key = $1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a setting devices are told about (session rules).
    pub fn set_policy_setting(
        &self,
        key: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.immediate(|tx| {
            set_setting_in(tx, key, value)?;
            policy_changed(tx, now)
        })
    }

    /// The salt for URL-list hashes: made once (by the caller's `fresh`), the same after.
    pub fn url_salt(&self, fresh: impl FnOnce() -> String) -> Result<String, StoreError> {
        self.immediate(|tx| {
            let existing: Option<String> = tx
                .query_row("SELECT value FROM settings WHERE key = $1", [URL_SALT], |r| r.get(0))
                .optional()?;
            match existing {
                Some(salt) => Ok(salt),
                None => {
                    let salt = fresh();
                    set_setting_in(tx, URL_SALT, &salt)?;
                    Ok(salt)
                }
            }
        })
    }

    /// Adds a class, or changes the one with this name; returns its id.
    pub fn save_class(&self, class: &ClassInput, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.immediate(|tx| {
            let id = tx.query_row(
                "INSERT INTO classes (name, key_stage, symbol, colour, profile)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET key_stage = excluded.key_stage,
                     symbol = excluded.symbol, colour = excluded.colour, profile = excluded.profile
                 RETURNING id",
                (
                    &class.name,
                    key_stage_name(class.key_stage),
                    &class.symbol,
                    class.colour,
                    &class.profile,
                ),
                |r| r.get(0),
            )?;
            policy_changed(tx, now)?;
            Ok(id)
        })
    }

    /// Sets a class's approved apps, in tile order. `Ok(false)` when the class is unknown.
    pub fn set_class_apps(
        &self,
        class: &str,
        apps: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx| {
            let id: Option<i64> = tx
                .query_row("SELECT id FROM classes WHERE name = $1", [class], |r| r.get(0))
                .optional()?;
            let Some(id) = id else { return Ok(false) };
            tx.execute("DELETE FROM class_apps WHERE class_id = $1", [id])?;
            for (position, app) in apps.iter().enumerate() {
                tx.execute(
                    "INSERT INTO class_apps (class_id, app_id, position) VALUES ($1, $2, $3)",
                    (id, app, position as i64),
                )?;
            }
            policy_changed(tx, now)?;
            Ok(true)
        })
    }

    /// Adds an app to the catalogue, or changes the one with this id.
    pub fn save_app(&self, app: &App, now: DateTime<Utc>) -> Result<(), StoreError> {
        let kind = serde_json::to_string(&app.kind)?;
        self.immediate(|tx| {
            tx.execute(
                "INSERT INTO apps (id, title, symbol, colour, kind) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, symbol = excluded.symbol,
                     colour = excluded.colour, kind = excluded.kind",
                (&app.id, &app.title, &app.symbol, app.colour, &kind),
            )?;
            policy_changed(tx, now)
        })
    }

    /// Imports checked roster rows with the ids given, all or nothing. A row naming a pupil
    /// already in that class (same first name and initial) adds nothing; a class not yet known
    /// is made with the row's key stage.
    pub fn import_roster(
        &self,
        rows: &[(PupilId, RosterRow)],
        now: DateTime<Utc>,
    ) -> Result<Imported, StoreError> {
        self.immediate(|tx| {
            let mut done = Imported { pupils_added: 0, already_there: 0, classes_added: 0 };
            for (id, row) in rows {
                let known: Option<i64> = tx
                    .query_row("SELECT id FROM classes WHERE name = $1", [&row.class], |r| r.get(0))
                    .optional()?;
                if known.is_none() {
                    let count: i64 =
                        tx.query_row("SELECT count(*) FROM classes", [], |r| r.get(0))?;
                    let symbol = CLASS_SYMBOLS[count as usize % CLASS_SYMBOLS.len()];
                    tx.execute(
                        "INSERT INTO classes (name, key_stage, symbol, colour, profile)
                         VALUES ($1, $2, $3, $4, $5)",
                        (
                            &row.class,
                            key_stage_name(row.key_stage),
                            symbol,
                            count % 8,
                            default_profile_name(&row.class),
                        ),
                    )?;
                    done.classes_added += 1;
                }
                let same: i64 = tx.query_row(
                    "SELECT count(*) FROM pupils
                     WHERE class_name = $1 AND first_name = $2 AND initial = $3",
                    (&row.class, &row.first_name, &row.initial),
                    |r| r.get(0),
                )?;
                if same > 0 {
                    done.already_there += 1;
                    continue;
                }
                let in_class: i64 = tx.query_row(
                    "SELECT count(*) FROM pupils WHERE class_name = $1",
                    [&row.class],
                    |r| r.get(0),
                )?;
                let (symbol, colour) = pupil_tile(in_class as usize);
                tx.execute(
                    "INSERT INTO pupils (id, display_name, class_name, first_name, initial,
                                         symbol, colour)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![
                        id.as_str(),
                        format!("{} {}.", row.first_name, row.initial),
                        &row.class,
                        &row.first_name,
                        &row.initial,
                        symbol,
                        colour,
                    ],
                )?;
                done.pupils_added += 1;
            }
            policy_changed(tx, now)?;
            Ok(done)
        })
    }

    /// Records an uploaded list file (its bytes are already in the data directory).
    pub fn save_list(
        &self,
        name: &str,
        file: &ListFile,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.immediate(|tx| {
            tx.execute(
                "INSERT INTO filter_lists (name, sha256, bytes, uploaded_at, uploaded_by)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes,
                     uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by",
                (name, &file.sha256, file.bytes as i64, db_time(now), by),
            )?;
            policy_changed(tx, now)
        })
    }

    pub fn lists(&self) -> Result<Vec<ListRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT name, sha256, bytes, uploaded_at, uploaded_by FROM filter_lists ORDER BY name",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (name, sha256, bytes, at, by) = row?;
            Ok(ListRecord {
                name,
                file: ListFile { sha256, bytes: bytes as u64 },
                uploaded_at: parse_db_time(&at)?,
                uploaded_by: by,
            })
        })
        .collect()
    }

    /// Whether a list of this name was uploaded (so its file may be served).
    pub fn list_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT 1 FROM filter_lists WHERE name = $1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn save_profile(
        &self,
        profile: &ProfileRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let block = serde_json::to_string(&profile.block_lists)?;
        let allow = profile.allow_only.as_ref().map(serde_json::to_string).transpose()?;
        self.immediate(|tx| {
            tx.execute(
                "INSERT INTO filter_profiles (name, block_lists, allow_only, safe_search)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET block_lists = excluded.block_lists,
                     allow_only = excluded.allow_only, safe_search = excluded.safe_search",
                (&profile.name, &block, &allow, &profile.safe_search),
            )?;
            policy_changed(tx, now)
        })
    }

    /// A teacher's bypass request, pending until a DSL decides; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn request_bypass(
        &self,
        profile: &str,
        domain: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(self.lock().query_row(
            "INSERT INTO bypasses (profile, domain, from_at, until_at, reason, requested_by,
                                   requested_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            params![profile, domain, db_time(from), db_time(until), reason, by, db_time(now)],
            |r| r.get(0),
        )?)
    }

    /// Approves or refuses a pending request. `Ok(false)` when there is no pending request with
    /// this id (unknown, or decided already).
    pub fn decide_bypass(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<BypassDecision, StoreError> {
        self.immediate(|tx| {
            let requester: Option<String> = tx
                .query_row(
                    "SELECT requested_by FROM bypasses WHERE id = $1 AND status = 'pending'",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(requester) = requester else { return Ok(BypassDecision::NotPending) };
            if !crate::access::may_decide_bypass(&requester, by) {
                return Ok(BypassDecision::OwnRequest);
            }
            let status = if approve { "approved" } else { "refused" };
            tx.execute(
                "UPDATE bypasses SET status = $2, decided_by = $3, decided_at = $4
                 WHERE id = $1 AND status = 'pending'",
                (id, status, by, db_time(now)),
            )?;
            if approve {
                policy_changed(tx, now)?;
            }
            Ok(BypassDecision::Decided)
        })
    }

    /// Requests, newest first.
    pub fn bypasses(&self, limit: u32) -> Result<Vec<BypassRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, profile, domain, from_at, until_at, reason, requested_by, requested_at,
                    status, decided_by
             FROM bypasses ORDER BY id DESC LIMIT $1",
        )?;
        let rows = statement.query_map([limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        rows.map(|row| {
            let (id, profile, domain, from, until, reason, by, at, status, decided_by) = row?;
            Ok(BypassRecord {
                id,
                profile,
                domain,
                from: parse_db_time(&from)?,
                until: parse_db_time(&until)?,
                reason,
                requested_by: by,
                requested_at: parse_db_time(&at)?,
                status,
                decided_by,
            })
        })
        .collect()
    }

    /// Every record the two device documents are made from.
    pub fn policy_records(&self) -> Result<PolicyRecords, StoreError> {
        let lists = self.lists()?.into_iter().map(|l| (l.name, l.file)).collect::<BTreeMap<_, _>>();
        let bypasses = self
            .bypasses(u32::MAX)?
            .into_iter()
            .filter(|b| b.status == "approved")
            .map(|b| ApprovedBypass {
                profile: b.profile,
                domain: b.domain,
                from: b.from,
                until: b.until,
                reason: b.reason,
                approved_by: b.decided_by.unwrap_or_default(),
            })
            .collect();
        let changed_at = match self.setting(POLICY_CHANGED_AT)? {
            Some(text) => parse_db_time(&text)?,
            None => DateTime::<Utc>::UNIX_EPOCH,
        };
        let sessions = SessionRules {
            idle_timeout_min: match self.setting(IDLE_TIMEOUT_MIN)? {
                Some(text) => text
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("{IDLE_TIMEOUT_MIN} {text:?}")))?,
                None => SessionRules::default().idle_timeout_min,
            },
            lesson_ends: match self.setting(LESSON_ENDS)? {
                Some(text) => serde_json::from_str::<Vec<NaiveTime>>(&text)
                    .map_err(|_| StoreError::Corrupt(format!("{LESSON_ENDS} {text:?}")))?,
                None => Vec::new(),
            },
        };
        Ok(PolicyRecords {
            changed_at,
            classes: self.classes()?,
            pupils: self.policy_pupils()?,
            apps: self.apps()?,
            staff_pins: self.unlock_pins()?,
            sessions,
            lists,
            profiles: self.profiles()?,
            bypasses,
            url_salt: self.setting(URL_SALT)?,
        })
    }

    pub fn classes(&self) -> Result<Vec<ClassRecord>, StoreError> {
        let connection = self.lock();
        let apps = connection.backend().json_array_agg(
            "app_id",
            "class_apps WHERE class_id = c.id",
            "position",
        );
        let mut statement = connection.prepare(&format!(
            "SELECT c.id, c.name, c.key_stage, c.symbol, c.colour, c.profile, {apps}
             FROM classes c ORDER BY c.name"
        ))?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, name, key_stage, symbol, colour, profile, apps) = row?;
            Ok(ClassRecord {
                id,
                name,
                key_stage: parse_key_stage(&key_stage)?,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                profile,
                apps: serde_json::from_str(&apps)?,
            })
        })
        .collect()
    }

    fn policy_pupils(&self) -> Result<Vec<PolicyPupil>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, class_name, first_name, initial, symbol, colour, picture_pin FROM pupils
             WHERE first_name IS NOT NULL AND initial IS NOT NULL AND symbol IS NOT NULL
                   AND colour IS NOT NULL
             ORDER BY class_name, first_name, initial",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, class_name, first_name, initial, symbol, colour, picture_pin) = row?;
            Ok(PolicyPupil {
                id: PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                class_name,
                first_name,
                initial,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                picture_pin: picture_pin.map(|text| serde_json::from_str(&text)).transpose()?,
            })
        })
        .collect()
    }

    /// Sets (or with `None` clears) a pupil's picture PIN. `Ok(false)` when no pupil devices
    /// know has this id.
    pub fn set_picture_pin(
        &self,
        pupil: &PupilId,
        pictures: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = pictures.map(serde_json::to_string).transpose()?;
        self.immediate(|tx| {
            let changed = tx.execute(
                "UPDATE pupils SET picture_pin = $2 WHERE id = $1 AND first_name IS NOT NULL",
                (pupil.as_str(), json),
            )?;
            if changed == 0 {
                return Ok(false);
            }
            policy_changed(tx, now)?;
            Ok(true)
        })
    }

    pub fn apps(&self) -> Result<Vec<App>, StoreError> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id, title, symbol, colour, kind FROM apps ORDER BY id")?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, title, symbol, colour, kind) = row?;
            Ok(App {
                id,
                title,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                kind: serde_json::from_str::<AppKind>(&kind)?,
            })
        })
        .collect()
    }

    pub fn profiles(&self) -> Result<Vec<ProfileRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT name, block_lists, allow_only, safe_search FROM filter_profiles ORDER BY name",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (name, block, allow, safe_search) = row?;
            Ok(ProfileRecord {
                name,
                block_lists: serde_json::from_str(&block)?,
                allow_only: allow.map(|a| serde_json::from_str(&a)).transpose()?,
                safe_search,
            })
        })
        .collect()
    }

    /// Queues a teacher's command for one device or (`None`) all; returns its id.
    pub fn queue_command(
        &self,
        device: Option<DeviceNumber>,
        action: CommandAction,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        by: &str,
    ) -> Result<i64, StoreError> {
        Ok(self.lock().query_row(
            "INSERT INTO device_commands (device, action, issued_at, expires_at, issued_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            (device.map(|d| d.get()), action.as_str(), db_time(issued_at), db_time(expires_at), by),
            |r| r.get(0),
        )?)
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
    pub fn commands_for(
        &self,
        device: DeviceNumber,
        after: u64,
        now: DateTime<Utc>,
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
             ORDER BY id LIMIT $4",
        )?;
        let rows = statement.query_map(
            (after as i64, device.get(), db_time(now), MAX_COMMANDS_PER_REPLY as i64),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )?;
        let commands = rows
            .map(|row| {
                let (id, issued, expires, action) = row?;
                Ok(DeviceCommand {
                    id: id as u64,
                    issued_at: parse_db_time(&issued)?,
                    expires_at: parse_db_time(&expires)?,
                    action: parse_action(&action)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // A full page may have more behind it; otherwise everything up to the newest is seen.
        let cursor = if commands.len() == MAX_COMMANDS_PER_REPLY {
            commands.last().map_or(after, |c| c.id)
        } else {
            newest
        };
        Ok((commands, cursor))
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

    /// Links a teacher's account to a class (they get its pupils' alerts, at `email` when
    /// given). `Ok(false)` when the account or class is unknown.
    pub fn link_teacher(
        &self,
        username: &str,
        class: &str,
        email: Option<&str>,
    ) -> Result<bool, StoreError> {
        if let Some(email) = email {
            self.lock()
                .execute("UPDATE staff SET email = $2 WHERE username = $1", (username, email))?;
        }
        let changed = self.lock().execute(
            "INSERT INTO staff_classes (staff_id, class_id)
             SELECT s.id, c.id FROM staff s, classes c WHERE s.username = $1 AND c.name = $2
             ON CONFLICT DO NOTHING",
            (username, class),
        )?;
        let linked: bool = self.lock().query_row(
            "SELECT EXISTS (SELECT 1 FROM staff_classes sc JOIN staff s ON s.id = sc.staff_id
                            JOIN classes c ON c.id = sc.class_id
                            WHERE s.username = $1 AND c.name = $2)",
            (username, class),
            |r| r.get(0),
        )?;
        Ok(changed == 1 || linked)
    }

    /// Where the alerts for a pupil's report also go: the email addresses of the enabled
    /// teacher accounts linked to the pupil's class.
    pub fn class_teacher_emails(&self, pupil: &PupilId) -> Result<Vec<String>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT DISTINCT s.email FROM pupils p
             JOIN classes c ON c.name = p.class_name
             JOIN staff_classes sc ON sc.class_id = c.id
             JOIN staff s ON s.id = sc.staff_id
             WHERE p.id = $1 AND s.email IS NOT NULL AND s.disabled_at IS NULL
             ORDER BY s.email",
        )?;
        let rows = statement.query_map([pupil.as_str()], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;

    fn row(line: usize, class: &str, first: &str, initial: &str) -> RosterRow {
        RosterRow {
            line,
            class: class.into(),
            first_name: first.into(),
            initial: initial.into(),
            key_stage: KeyStage::Ks1,
        }
    }

    fn id(s: &str) -> PupilId {
        PupilId::new(s).unwrap()
    }

    #[test]
    fn a_clock_stepped_back_still_moves_the_policy_version_forward() {
        let (_dir, store) = store_with_device(1);
        let rows = vec![(id("p-a"), row(2, "Oak", "Amira", "K"))];
        store.import_roster(&rows, at("2026-11-23T08:00:00Z")).unwrap();
        let first = store.policy_records().unwrap().changed_at;
        // The server's clock is stepped back a day, then IT changes a setting.
        store.set_policy_setting(IDLE_TIMEOUT_MIN, "15", at("2026-11-22T08:00:00Z")).unwrap();
        let second = store.policy_records().unwrap().changed_at;
        assert!(second > first, "{second} after {first}");
        assert_eq!(second, at("2026-11-23T08:00:01Z"));
    }

    #[test]
    fn a_roster_import_makes_classes_and_pupils_once() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T08:00:00Z");
        let rows = vec![
            (id("p-a"), row(2, "Oak", "Amira", "K")),
            (id("p-b"), row(3, "Oak", "Ben", "T")),
            (id("p-c"), row(4, "Ash", "Chloe", "W")),
        ];
        let done = store.import_roster(&rows, now).unwrap();
        assert_eq!(done, Imported { pupils_added: 3, already_there: 0, classes_added: 2 });
        let again = vec![(id("p-z"), row(2, "Oak", "Amira", "K"))];
        let done = store.import_roster(&again, now).unwrap();
        assert_eq!(done, Imported { pupils_added: 0, already_there: 1, classes_added: 0 });

        let records = store.policy_records().unwrap();
        assert_eq!(records.classes.len(), 2);
        assert_eq!(records.classes[1].profile, "oak");
        assert_eq!(records.pupils.len(), 3);
        // Two changes at the same instant: the second still moves the version on.
        assert_eq!(records.changed_at, now + Duration::seconds(1));
        let tiles: Vec<_> = records.pupils.iter().map(|p| (p.symbol.as_str(), p.colour)).collect();
        assert!(tiles.contains(&("fish", 1)), "second pupil in Oak: {tiles:?}");
    }

    #[test]
    fn commands_reach_their_device_once_until_they_expire() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T10:00:00Z");
        let later = now + Duration::minutes(30);
        let all = store.queue_command(None, CommandAction::LockScreens, now, later, "t").unwrap();
        let two = store
            .queue_command(Some(device(2)), CommandAction::SignOutAll, now, later, "t")
            .unwrap();
        let (commands, cursor) = store.commands_for(device(1), 0, now).unwrap();
        assert_eq!(commands.iter().map(|c| c.id as i64).collect::<Vec<_>>(), [all]);
        assert_eq!(cursor as i64, two, "the cursor passes commands for other devices");
        assert!(store.commands_for(device(1), cursor, now).unwrap().0.is_empty());
        let (for_two, _) = store.commands_for(device(2), 0, now).unwrap();
        assert_eq!(for_two.len(), 2);
        assert!(store.commands_for(device(2), 0, later).unwrap().0.is_empty(), "expired");
        let (restart, _) = store.commands_for(device(1), 999, now).unwrap();
        assert_eq!(restart.len(), 1, "a cursor from the future starts over");
    }

    #[test]
    fn policy_changes_queue_a_refresh_and_bypasses_need_a_decision() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T10:00:00Z");
        let id = store
            .request_bypass("oak", "example.org", now, now + Duration::hours(1), "why", "t", now)
            .unwrap();
        assert!(store.policy_records().unwrap().bypasses.is_empty(), "pending is not in force");
        assert!(store.commands_for(device(1), 0, now).unwrap().0.is_empty());
        assert_eq!(store.decide_bypass(id, true, "t", now).unwrap(), BypassDecision::OwnRequest);
        assert!(store.policy_records().unwrap().bypasses.is_empty(), "not by its requester");
        assert_eq!(store.decide_bypass(id, true, "dsl", now).unwrap(), BypassDecision::Decided);
        let again = store.decide_bypass(id, false, "dsl", now).unwrap();
        assert_eq!(again, BypassDecision::NotPending, "decided once");
        let records = store.policy_records().unwrap();
        assert_eq!(records.bypasses[0].approved_by, "dsl");
        let (commands, _) = store.commands_for(device(1), 0, now).unwrap();
        assert_eq!(commands[0].action, CommandAction::RefreshPolicy);
    }
}
