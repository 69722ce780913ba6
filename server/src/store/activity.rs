//! What devices said besides sessions and reports: blocked attempts, apps opened, agreements
//! accepted (a device's page), and hardware refused (the fleet page). Read from the events table,
//! where every event is kept as it arrived.

use super::{parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::{DeviceNumber, EventBody};

/// One event for a device's page, with the roster's name for its pupil when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub at: DateTime<Utc>,
    pub pupil_name: Option<String>,
    pub body: EventBody,
}

/// One refused piece of hardware, for the fleet page (no pupil data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    pub device: u16,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub description: String,
}

impl Store {
    /// The newest `limit` events of `kind` from `device`, newest first.
    pub fn device_activity(
        &self,
        device: DeviceNumber,
        kind: &str,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let connection = self.read();
        let pupil = connection.backend().json_text("e.body", "pupil");
        let mut statement = connection.prepare_cached(&format!(
            "SELECT e.at, p.display_name, e.body FROM events e
             LEFT JOIN pupils p ON p.id = {pupil}
             WHERE e.device = $1 AND e.kind = $2
             ORDER BY e.at DESC, e.id DESC LIMIT $3"
        ))?;
        let rows = statement.query_map((device.get(), kind, limit), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (at, pupil_name, body) = row?;
            Ok(ActivityRecord {
                at: parse_db_time(&at)?,
                pupil_name,
                body: serde_json::from_str(&body)?,
            })
        })
        .collect()
    }

    /// The newest `limit` refused devices across the fleet, newest first.
    pub fn refused_devices(&self, limit: u32) -> Result<Vec<RefusedRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT device, at, body FROM events WHERE kind = 'device_refused'
             ORDER BY at DESC, id DESC LIMIT $1",
        )?;
        let rows = statement.query_map([limit], |r| {
            Ok((r.get::<_, u16>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (device, at, body) = row?;
            let EventBody::DeviceRefused { kind, description } = serde_json::from_str(&body)?
            else {
                return Err(StoreError::Corrupt(format!(
                    "device_refused event body on device {device}"
                )));
            };
            Ok(RefusedRecord {
                device,
                at: parse_db_time(&at)?,
                kind: kind.as_str().to_owned(),
                description,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::roster::PupilEntry;
    use slate_protocol::{Event, EventBody, FilterLayer, PupilId, RefusedDevice, SessionId};

    #[test]
    fn blocked_attempts_and_refused_hardware_are_read_back() {
        let (_dir, store) = store_with_device(12);
        store.save_pupil(&PupilEntry::new("p-1", "Amira K.", "Oak").unwrap()).unwrap();
        let blocked = |at: &str, target: &str| {
            Event::new(
                device(12),
                super::super::test_support::at(at),
                EventBody::FilterBlocked {
                    session: Some(SessionId::new()),
                    pupil: Some(PupilId::new("p-1").unwrap()),
                    layer: FilterLayer::Dns,
                    target: target.into(),
                    rule: format!("exact:{target}"),
                    list: "adult".into(),
                },
            )
        };
        let refused = Event::new(
            device(12),
            at("2026-11-23T10:05:00Z"),
            EventBody::DeviceRefused {
                kind: RefusedDevice::UsbStorage,
                description: "0781:5567 SanDisk".into(),
            },
        );
        let events = [
            blocked("2026-11-23T10:00:00Z", "a.example"),
            blocked("2026-11-23T10:01:00Z", "b.example"),
            refused,
        ];
        store.ingest(device(12), &events, at("2026-11-23T10:06:00Z")).unwrap();

        let activity = store.device_activity(device(12), "filter_blocked", 10).unwrap();
        assert_eq!(activity.len(), 2);
        assert_eq!(activity[0].pupil_name.as_deref(), Some("Amira K."));
        assert!(
            matches!(&activity[0].body, EventBody::FilterBlocked { target, .. } if target == "b.example"),
            "newest first"
        );
        assert!(store.device_activity(device(13), "filter_blocked", 10).unwrap().is_empty());
        let fleet = store.refused_devices(10).unwrap();
        assert_eq!(
            (fleet[0].device, fleet[0].kind.as_str(), fleet[0].description.as_str()),
            (12, "usb_storage", "0781:5567 SanDisk")
        );
    }
}
