//! Updates (issue 16): the bundles IT uploaded, the rollout in force, and each device's last
//! update report and failed versions. What to offer whom is `update_rollout`'s; the bundle
//! files are `update_bundles`'s. Every change IT makes is audited in its own transaction.

use super::sql::OptionalExtension;
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use crate::update_rollout::{Audience, BundleRecord, DeviceReport, Failure, Rollout};
use chrono::{DateTime, NaiveTime, Utc};
use slate_protocol::update::{UpdateCheck, UpdateState};
use slate_protocol::DeviceNumber;

const BUNDLE_COLUMNS: &str = "sha256, version, compatible, bytes, uploaded_at, uploaded_by";

fn bundle_row(r: &super::sql::Row) -> Result<BundleRecord, StoreError> {
    Ok(BundleRecord {
        sha256: r.get(0)?,
        version: r.get(1)?,
        compatible: r.get(2)?,
        bytes: r.get(3)?,
        uploaded_at: parse_db_time(&r.get::<_, String>(4)?)?,
        uploaded_by: r.get(5)?,
    })
}

fn device_number(n: i64) -> Result<DeviceNumber, StoreError> {
    u32::try_from(n)
        .ok()
        .and_then(|n| DeviceNumber::new(n).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("update device {n}")))
}

/// What `remove_update_bundle` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleRemoval {
    /// Marked removed: the file `<sha256>.raucb` may go.
    Removed {
        sha256: String,
    },
    NoSuchVersion,
    /// The rollout in force offers it: stop that rollout first.
    InForce,
}

/// The SHA-256 of the bundle with `version` that IT has not removed.
fn kept_bundle(
    tx: &super::sql::Transaction<'_>,
    version: &str,
) -> Result<Option<String>, StoreError> {
    tx.query_row(
        "SELECT sha256 FROM update_bundles WHERE version = $1 AND removed_at IS NULL",
        [version],
        |r| r.get(0),
    )
    .optional()
}

impl Store {
    /// Records a bundle whose file is in place and whose signature was checked (or brings back
    /// one IT removed, whose file was uploaded again); returns false when that file was
    /// recorded already.
    pub fn add_update_bundle(&self, bundle: &BundleRecord) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let added = tx.execute(
            &format!(
                "INSERT INTO update_bundles ({BUNDLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sha256) DO UPDATE
                     SET removed_at = NULL, removed_by = NULL,
                         uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by
                     WHERE update_bundles.removed_at IS NOT NULL"
            ),
            (
                &bundle.sha256,
                &bundle.version,
                &bundle.compatible,
                bundle.bytes,
                db_time(bundle.uploaded_at),
                &bundle.uploaded_by,
            ),
        )? == 1;
        if added {
            append_audit(
                &*tx,
                bundle.uploaded_at,
                &bundle.uploaded_by,
                "uploaded update bundle",
                Some(&format!("version {}", bundle.version)),
                Some(&format!("sha256 {}, {} bytes", bundle.sha256, bundle.bytes)),
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Every uploaded bundle IT has not removed, newest first.
    pub fn update_bundles(&self) -> Result<Vec<BundleRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!(
            "SELECT {BUNDLE_COLUMNS} FROM update_bundles WHERE removed_at IS NULL
             ORDER BY uploaded_at DESC, version"
        ))?;
        let rows = statement.query_map([], bundle_row)?;
        rows.collect()
    }

    /// Starts a rollout of the bundle with `version` (stopping the one in force), to `audience`,
    /// with IT's restart time; false when no bundle has that version.
    pub fn start_rollout(
        &self,
        version: &str,
        audience: &Audience,
        reboot_at: Option<NaiveTime>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let sha256 = kept_bundle(&tx, version)?;
        let Some(sha256) = sha256 else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE update_rollouts SET stopped_at = $1, stopped_by = $2 WHERE stopped_at IS NULL",
            (db_time(now), by),
        )?;
        let reboot_text = reboot_at.map(|t| t.format("%H:%M").to_string());
        let id: i64 = tx.query_row(
            "INSERT INTO update_rollouts (bundle, everyone, reboot_at, started_at, started_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            (&sha256, matches!(audience, Audience::Everyone), &reboot_text, db_time(now), by),
            |r| r.get(0),
        )?;
        let who = match audience {
            Audience::Everyone => "everyone".to_owned(),
            Audience::Devices(devices) => {
                for device in devices {
                    tx.execute(
                        "INSERT INTO update_rollout_devices (rollout, device) VALUES ($1, $2)",
                        (id, device.get()),
                    )?;
                }
                let numbers: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
                format!("devices {}", numbers.join(", "))
            }
        };
        let detail = match &reboot_text {
            Some(time) => format!("{who}; restart from {time} UK time"),
            None => format!("{who}; restart when idle"),
        };
        append_audit(
            &*tx,
            now,
            by,
            "started update rollout",
            Some(&format!("version {version}")),
            Some(&detail),
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Marks the bundle with `version` removed (audited), unless the rollout in force offers
    /// it; the caller then deletes its file. Its row stays for the rollouts that named it.
    pub fn remove_update_bundle(
        &self,
        version: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<BundleRemoval, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let sha256 = kept_bundle(&tx, version)?;
        let Some(sha256) = sha256 else {
            return Ok(BundleRemoval::NoSuchVersion);
        };
        let in_force: Option<i64> = tx
            .query_row(
                "SELECT id FROM update_rollouts WHERE bundle = $1 AND stopped_at IS NULL",
                [&sha256],
                |r| r.get(0),
            )
            .optional()?;
        if in_force.is_some() {
            return Ok(BundleRemoval::InForce);
        }
        tx.execute(
            "UPDATE update_bundles SET removed_at = $1, removed_by = $2 WHERE sha256 = $3",
            (db_time(now), by, &sha256),
        )?;
        append_audit(
            &*tx,
            now,
            by,
            "removed update bundle",
            Some(&format!("version {version}")),
            Some(&format!("sha256 {sha256}")),
        )?;
        tx.commit()?;
        Ok(BundleRemoval::Removed { sha256 })
    }

    /// Stops the rollout in force (devices are offered nothing more); false when none was.
    pub fn stop_rollout(&self, by: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let bundle: Option<String> = tx
            .query_row(
                "UPDATE update_rollouts SET stopped_at = $1, stopped_by = $2
                 WHERE stopped_at IS NULL RETURNING bundle",
                (db_time(now), by),
                |r| r.get(0),
            )
            .optional()?;
        let Some(bundle) = bundle else {
            return Ok(false);
        };
        let version: String =
            tx.query_row("SELECT version FROM update_bundles WHERE sha256 = $1", [bundle], |r| {
                r.get(0)
            })?;
        append_audit(
            &*tx,
            now,
            by,
            "stopped update rollout",
            Some(&format!("version {version}")),
            None,
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The rollout in force, if any.
    pub fn current_rollout(&self) -> Result<Option<Rollout>, StoreError> {
        let connection = self.lock();
        let row = connection
            .query_row(
                &format!(
                    "SELECT r.id, r.everyone, r.reboot_at, r.started_at, r.started_by,
                            {BUNDLE_COLUMNS}
                     FROM update_rollouts r JOIN update_bundles b ON b.sha256 = r.bundle
                     WHERE r.stopped_at IS NULL ORDER BY r.id DESC LIMIT 1"
                ),
                [],
                |r| {
                    let columns: Vec<super::sql::Value> =
                        (5..11).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        bundle_row(&super::sql::Row::new(columns))?,
                    ))
                },
            )
            .optional()?;
        let Some((id, everyone, reboot_at, started_at, started_by, bundle)) = row else {
            return Ok(None);
        };
        let audience = if everyone {
            Audience::Everyone
        } else {
            let mut statement = connection.prepare(
                "SELECT device FROM update_rollout_devices WHERE rollout = $1 ORDER BY device",
            )?;
            let rows = statement.query_map([id], |r| device_number(r.get(0)?))?;
            Audience::Devices(rows.collect::<Result<_, _>>()?)
        };
        let reboot_at = reboot_at
            .map(|t| {
                NaiveTime::parse_from_str(&t, "%H:%M")
                    .map_err(|_| StoreError::Corrupt(format!("rollout restart time {t:?}")))
            })
            .transpose()?;
        Ok(Some(Rollout {
            id,
            bundle,
            audience,
            reboot_at,
            started_at: parse_db_time(&started_at)?,
            started_by,
        }))
    }

    /// Keeps a device's update check as its last report; a failure is also kept by version, so
    /// that version is not offered to it again.
    pub fn record_update_check(
        &self,
        device: DeviceNumber,
        check: &UpdateCheck,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        tx.execute(
            "INSERT INTO device_updates
                 (device, running, state, target, downloaded, error, reported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device) DO UPDATE SET running = $2, state = $3, target = $4,
                 downloaded = $5, error = $6, reported_at = $7",
            (
                device.get(),
                &check.running,
                check.state.as_str(),
                &check.target,
                check.downloaded,
                &check.error,
                db_time(now),
            ),
        )?;
        if let (UpdateState::Failed, Some(target)) = (check.state, &check.target) {
            tx.execute(
                "INSERT INTO device_update_failures (device, version, error, reported_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device, version) DO UPDATE SET error = $3, reported_at = $4",
                (device.get(), target, &check.error, db_time(now)),
            )?;
        }
        tx.commit()
    }

    /// Forgets that devices failed with `version`, so the rollout offers it to them again (IT
    /// fixed what made a download or an install fail); returns how many devices it was.
    pub fn forget_update_failures(
        &self,
        version: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let connection = self.lock();
        let tx = connection.transaction()?;
        let forgotten =
            tx.execute("DELETE FROM device_update_failures WHERE version = $1", [version])?;
        if forgotten > 0 {
            append_audit(
                &*tx,
                now,
                by,
                "offered a failed update again",
                Some(&format!("version {version}")),
                Some(&format!("{forgotten} devices")),
            )?;
        }
        tx.commit()?;
        Ok(forgotten)
    }

    /// The versions `device` reported as failed.
    pub fn failed_versions(&self, device: DeviceNumber) -> Result<Vec<String>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT version FROM device_update_failures WHERE device = $1 ORDER BY version",
        )?;
        let rows = statement.query_map([device.get()], |r| r.get(0))?;
        rows.collect()
    }

    /// The image version `device` last said it runs, if it has said.
    pub fn device_running_version(
        &self,
        device: DeviceNumber,
    ) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row(
                "SELECT running FROM device_updates WHERE device = $1",
                [device.get()],
                |r| r.get(0),
            )
            .optional()
    }

    /// Every device's last update report, by device.
    pub fn device_update_reports(&self) -> Result<Vec<DeviceReport>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT device, running, state, target, downloaded, error, reported_at
             FROM device_updates ORDER BY device",
        )?;
        let rows = statement.query_map([], |r| {
            let state: String = r.get(2)?;
            Ok(DeviceReport {
                device: r.get(0)?,
                running: r.get(1)?,
                state: UpdateState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("update state {state:?}")))?,
                target: r.get(3)?,
                downloaded: r.get(4)?,
                error: r.get(5)?,
                reported_at: parse_db_time(&r.get::<_, String>(6)?)?,
            })
        })?;
        rows.collect()
    }

    /// Every version a device reported as failed, by device.
    pub fn update_failures(&self) -> Result<Vec<Failure>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT device, version, error, reported_at FROM device_update_failures
             ORDER BY device, reported_at",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(Failure {
                device: r.get(0)?,
                version: r.get(1)?,
                error: r.get(2)?,
                reported_at: parse_db_time(&r.get::<_, String>(3)?)?,
            })
        })?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn bundle(sha: char, version: &str) -> BundleRecord {
        BundleRecord {
            sha256: sha.to_string().repeat(64),
            version: version.into(),
            compatible: "slate-test".into(),
            bytes: 17_508,
            uploaded_at: at("2026-12-07T09:00:00Z"),
            uploaded_by: "it".into(),
        }
    }

    #[test]
    fn a_rollout_moves_from_the_pilot_to_everyone_and_stops() {
        let (_dir, store) = store_with_device(12);
        let now = at("2026-12-07T10:00:00Z");
        assert!(store.add_update_bundle(&bundle('a', "0.2.0")).unwrap());
        assert!(!store.add_update_bundle(&bundle('a', "0.2.0")).unwrap(), "the same file again");
        assert!(!store.start_rollout("9.9", &Audience::Everyone, None, "it", now).unwrap());
        assert_eq!(store.current_rollout().unwrap(), None);
        let pilot = Audience::Devices(vec![device(13), device(12)]);
        assert!(store.start_rollout("0.2.0", &pilot, None, "it", now).unwrap());
        let rollout = store.current_rollout().unwrap().unwrap();
        assert_eq!(rollout.audience, Audience::Devices(vec![device(12), device(13)]));
        assert_eq!(rollout.bundle, bundle('a', "0.2.0"));
        let time = NaiveTime::from_hms_opt(16, 30, 0);
        assert!(store.start_rollout("0.2.0", &Audience::Everyone, time, "it", now).unwrap());
        let rollout = store.current_rollout().unwrap().unwrap();
        assert_eq!((rollout.audience, rollout.reboot_at), (Audience::Everyone, time));
        assert_eq!(
            count_rows(&store, "SELECT COUNT(*) FROM update_rollouts WHERE stopped_at IS NULL"),
            1
        );
        assert!(store.stop_rollout("it", now).unwrap());
        assert!(!store.stop_rollout("it", now).unwrap());
        assert_eq!(store.current_rollout().unwrap(), None);
        let actions: Vec<String> =
            store.audit_log(10).unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(
            actions[..4],
            [
                "stopped update rollout",
                "started update rollout",
                "started update rollout",
                "uploaded update bundle"
            ]
        );
    }

    #[test]
    fn a_failure_is_remembered_by_version_after_the_device_is_current_again() {
        let (_dir, store) = store_with_device(12);
        let now = at("2026-12-07T10:00:00Z");
        let failed = UpdateCheck {
            target: Some("0.2.0".into()),
            error: Some("rolled back: not healthy 304s after boot".into()),
            ..UpdateCheck::new("0.1.0".into(), UpdateState::Failed)
        };
        store.record_update_check(device(12), &failed, now).unwrap();
        store
            .record_update_check(
                device(12),
                &UpdateCheck::new("0.1.0".into(), UpdateState::Current),
                now,
            )
            .unwrap();
        assert_eq!(store.failed_versions(device(12)).unwrap(), ["0.2.0"]);
        assert!(store.failed_versions(device(13)).unwrap().is_empty());
        assert_eq!(store.forget_update_failures("0.3.0", "it", now).unwrap(), 0);
        let reports = store.device_update_reports().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!((reports[0].state, reports[0].error.as_deref()), (UpdateState::Current, None));
        let failures = store.update_failures().unwrap();
        assert_eq!(failures[0].error.as_deref(), Some("rolled back: not healthy 304s after boot"));
        assert_eq!(store.forget_update_failures("0.2.0", "it", now).unwrap(), 1);
        assert!(store.failed_versions(device(12)).unwrap().is_empty());
        assert_eq!(store.audit_log(1).unwrap()[0].action, "offered a failed update again");
    }
}
