//! Updates (issue 16), the decisions: which bundle a device is offered, when it may restart
//! into it, what the fleet page says of its update, and the checks on what IT types. Pure: no
//! I/O, no clock (`now` is passed in). The bundles' files are `update_bundles`'s; the records
//! are `store`'s.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use slate_protocol::update::{check_image_version, UpdateOffer, UpdateState};
use slate_protocol::DeviceNumber;

/// An uploaded bundle whose signature `rauc info` checked against IT's update CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRecord {
    /// SHA-256 of the file, 64 lowercase hex digits: its name in the data directory.
    pub sha256: String,
    /// The manifest's `version` (the image version a device reports once it runs it).
    pub version: String,
    /// The manifest's `compatible`: the devices' RAUC refuses a bundle for other hardware.
    pub compatible: String,
    pub bytes: u64,
    pub uploaded_at: DateTime<Utc>,
    pub uploaded_by: String,
}

/// Who a rollout is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The pilot: these devices only.
    Devices(Vec<DeviceNumber>),
    Everyone,
}

/// The rollout in force: one bundle, to whom, and when devices may restart into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub id: i64,
    pub bundle: BundleRecord,
    pub audience: Audience,
    /// IT's time of day (UK) before which devices stay on their old slot; `None`: when idle.
    pub reboot_at: Option<NaiveTime>,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
}

impl Rollout {
    pub fn includes(&self, device: DeviceNumber) -> bool {
        match &self.audience {
            Audience::Everyone => true,
            Audience::Devices(devices) => devices.contains(&device),
        }
    }
}

/// What a device last said of its update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    pub device: u16,
    pub running: String,
    pub state: UpdateState,
    pub target: Option<String>,
    pub downloaded: Option<u64>,
    pub error: Option<String>,
    pub reported_at: DateTime<Utc>,
}

/// A version a device reported as failed: not offered to it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub device: u16,
    pub version: String,
    pub error: Option<String>,
    pub reported_at: DateTime<Utc>,
}

/// The offer for `device`, running `running`, with `failed` the versions it reported as failed:
/// the rollout's bundle when the device is in its audience, runs another version, and has not
/// failed with this one (a rolled-back version is not offered again; a new bundle is).
pub fn offer(
    rollout: Option<&Rollout>,
    device: DeviceNumber,
    running: &str,
    failed: &[String],
    now: DateTime<Utc>,
) -> Option<UpdateOffer> {
    let rollout = rollout?;
    let bundle = &rollout.bundle;
    if !rollout.includes(device) || running == bundle.version || failed.contains(&bundle.version) {
        return None;
    }
    Some(UpdateOffer {
        version: bundle.version.clone(),
        sha256: bundle.sha256.clone(),
        bytes: bundle.bytes,
        reboot_after: rollout.reboot_at.map(|time| reboot_after(time, now)),
        // Rollout ids start at 1 and only grow (the store's sequence).
        rollout: u64::try_from(rollout.id).unwrap_or(0),
    })
}

/// IT's reboot time on today's date in the UK. Before it a device waits until then; after it
/// (the evening) the time has passed and an idle device restarts at once. Never the next day's:
/// a device checks again every few minutes, and a time that moved on at each check after
/// 16:30 would keep it from ever restarting. A time the clocks skip (01:30 on the last Sunday of
/// March) is taken as the hour after.
pub fn reboot_after(time: NaiveTime, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&London).date_naive();
    let local = today.and_time(time);
    London
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| London.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .map(|t| t.with_timezone(&Utc))
        // Europe/London never skips two hours: unreachable, but never a panic.
        .unwrap_or(now)
}

/// IT's reboot time as typed: `16:30` (24-hour, UK time).
pub fn parse_reboot_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        format!(
            "Restart time: {:?} is not a time of day like 16:30 (24-hour, UK time).",
            text.trim()
        )
    })
}

/// The pilot's devices as typed: `12, 13 14` (commas or spaces), each 1 to 9999, at most 200.
pub fn parse_devices(text: &str) -> Result<Vec<DeviceNumber>, String> {
    let mut devices = Vec::new();
    for word in text.split([',', ' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()) {
        let device = word
            .parse::<u32>()
            .ok()
            .and_then(|n| DeviceNumber::new(n).ok())
            .ok_or_else(|| format!("Devices: {word:?} is not a device number (1 to 9999)."))?;
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    if devices.is_empty() {
        return Err("Devices: name at least one device for the pilot, like 12, 13.".into());
    }
    if devices.len() > 200 {
        return Err(
            "Devices: a pilot is a few devices (200 at most); choose everyone instead.".into()
        );
    }
    Ok(devices)
}

/// What `rauc info --output-format=json` says of a bundle (the fields the server uses).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RaucInfo {
    pub compatible: String,
    pub version: String,
}

/// `rauc info`'s JSON, with both fields checked: the version as devices report it, the
/// compatible string printable and short.
pub fn parse_rauc_info(json: &[u8]) -> Result<RaucInfo, String> {
    let info: RaucInfo =
        serde_json::from_slice(json).map_err(|e| format!("rauc info printed no manifest: {e}"))?;
    check_image_version("version", &info.version)
        .map_err(|_| format!("the bundle's version {:?} is not an image version (letters, digits and . + ~ _ -, 64 at most)", info.version))?;
    let compatible_ok = !info.compatible.is_empty()
        && info.compatible.len() <= 128
        && info.compatible.bytes().all(|b| b.is_ascii_graphic());
    if !compatible_ok {
        return Err(format!(
            "the bundle's compatible {:?} is empty or not plain text",
            info.compatible
        ));
    }
    Ok(info)
}

/// What a new bundle is beside those uploaded before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewBundle {
    /// Not seen before: store it.
    New,
    /// The same file again: nothing to do.
    AlreadyUploaded,
}

/// Whether a checked bundle may join `existing`: one file per version, and every bundle for the
/// same hardware (`compatible`) as the first.
pub fn check_new_bundle(
    existing: &[BundleRecord],
    sha256: &str,
    info: &RaucInfo,
) -> Result<NewBundle, String> {
    if existing.iter().any(|b| b.sha256 == sha256) {
        return Ok(NewBundle::AlreadyUploaded);
    }
    if let Some(same) = existing.iter().find(|b| b.version == info.version) {
        return Err(format!(
            "version {} is already uploaded as another file ({}…); give a new build a new version",
            info.version,
            &same.sha256[..12]
        ));
    }
    if let Some(other) = existing.iter().find(|b| b.compatible != info.compatible) {
        return Err(format!(
            "the bundle is for {:?}, but version {} is for {:?}: devices would refuse it",
            info.compatible, other.version, other.compatible
        ));
    }
    Ok(NewBundle::New)
}

/// The fleet page's words for a device's update, and whether IT should look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWords {
    pub words: String,
    pub problem: bool,
}

/// What the fleet page says of one device's update: its last report, the bundles' sizes (for a
/// download's share), the rollout in force and the versions it failed with.
pub fn describe(
    report: Option<&DeviceReport>,
    bundles: &[BundleRecord],
    rollout: Option<&Rollout>,
    failures: &[Failure],
) -> StateWords {
    let plain = |words: &str| StateWords { words: words.to_owned(), problem: false };
    let Some(report) = report else {
        return plain("not reported yet");
    };
    let rolled_back = |error: Option<&str>| error.is_some_and(|e| e.contains("rolled back"));
    let failed_words = |version: Option<&str>, error: Option<&str>| {
        let what = if rolled_back(error) { "rolled back" } else { "failed" };
        StateWords {
            words: match version {
                Some(v) => format!("{what} ({v})"),
                None => what.to_owned(),
            },
            problem: true,
        }
    };
    match report.state {
        UpdateState::Failed => failed_words(report.target.as_deref(), report.error.as_deref()),
        UpdateState::Downloading => {
            let size = report
                .target
                .as_deref()
                .and_then(|t| bundles.iter().find(|b| b.version == t))
                .map(|b| b.bytes);
            match (report.downloaded, size) {
                (Some(done), Some(size)) if size > 0 => {
                    plain(&format!("downloading {}%", done.min(size) * 100 / size))
                }
                _ => plain("downloading"),
            }
        }
        UpdateState::Downloaded => plain("downloaded, waiting for no pupil"),
        UpdateState::Installing => plain("installing"),
        UpdateState::WaitingToReboot => plain("waiting to restart"),
        UpdateState::Current => {
            // Back on its old version after the rollout's one failed: say so, not "up to date".
            let rollout_failure = rollout.and_then(|r| {
                failures.iter().find(|f| f.device == report.device && f.version == r.bundle.version)
            });
            match rollout_failure {
                Some(f) => failed_words(Some(&f.version), f.error.as_deref()),
                None => plain("up to date"),
            }
        }
    }
}

/// The error to show beside a device's update: its report's, or, once it is back on its old
/// version, why the rollout's version failed there.
pub fn shown_error<'a>(
    report: &'a DeviceReport,
    rollout: Option<&Rollout>,
    failures: &'a [Failure],
) -> Option<&'a str> {
    report.error.as_deref().or_else(|| {
        let version = &rollout?.bundle.version;
        failures
            .iter()
            .find(|f| f.device == report.device && &f.version == version)
            .and_then(|f| f.error.as_deref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "e03a505dfd7171d6580c13b14bac63e789dee283984be36654d9e0a4dd88d724";

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn d(n: u32) -> DeviceNumber {
        DeviceNumber::new(n).unwrap()
    }

    fn bundle(version: &str) -> BundleRecord {
        BundleRecord {
            sha256: SHA.into(),
            version: version.into(),
            compatible: "slate-rpi-arm64-kiosk".into(),
            bytes: 1000,
            uploaded_at: at("2026-12-07T09:00:00Z"),
            uploaded_by: "it".into(),
        }
    }

    fn rollout(audience: Audience, reboot_at: Option<&str>) -> Rollout {
        Rollout {
            id: 1,
            bundle: bundle("0.2.0"),
            audience,
            reboot_at: reboot_at.map(|t| parse_reboot_time(t).unwrap()),
            started_at: at("2026-12-07T09:00:00Z"),
            started_by: "it".into(),
        }
    }

    #[test]
    fn who_is_offered_what() {
        let pilot = rollout(Audience::Devices(vec![d(12), d(13)]), None);
        let everyone = rollout(Audience::Everyone, None);
        let now = at("2026-12-07T10:00:00Z");
        let none: &[String] = &[];
        let failed_020 = ["0.2.0".to_owned()];
        let failed_010 = ["0.1.5".to_owned()];
        type Case<'a> = (&'a str, Option<&'a Rollout>, u32, &'a str, &'a [String], bool);
        let cases: [Case; 9] = [
            ("no rollout", None, 12, "0.1.0", none, false),
            ("in the pilot", Some(&pilot), 12, "0.1.0", none, true),
            ("not in the pilot", Some(&pilot), 14, "0.1.0", none, false),
            ("everyone", Some(&everyone), 14, "0.1.0", none, true),
            ("runs it already", Some(&everyone), 12, "0.2.0", none, false),
            ("rolled back from it", Some(&pilot), 12, "0.1.0", &failed_020, false),
            ("failed with an older one", Some(&pilot), 12, "0.1.0", &failed_010, true),
            ("runs a newer one: offered, IT chose it", Some(&everyone), 12, "0.3.0", none, true),
            ("rolled back, everyone", Some(&everyone), 13, "0.1.0", &failed_020, false),
        ];
        for (name, rollout, device, running, failed, offered) in cases {
            let got = offer(rollout, d(device), running, failed, now);
            assert_eq!(got.is_some(), offered, "{name}");
            if let Some(got) = got {
                assert_eq!(
                    got,
                    UpdateOffer {
                        version: "0.2.0".into(),
                        sha256: SHA.into(),
                        bytes: 1000,
                        reboot_after: None,
                        rollout: 1,
                    },
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn the_restart_time_is_todays_in_uk_time() {
        let cases = [
            // Winter: GMT.
            ("16:30", "2026-12-07T10:00:00Z", "2026-12-07T16:30:00Z"),
            // After it, the same day's: passed, so restart when idle (never pushed to tomorrow).
            ("16:30", "2026-12-07T18:00:00Z", "2026-12-07T16:30:00Z"),
            // Summer: BST, an hour ahead of UTC.
            ("16:30", "2026-06-23T08:00:00Z", "2026-06-23T15:30:00Z"),
            // 23:30 UTC on 22 June is already 23 June in the UK.
            ("07:00", "2026-06-22T23:30:00Z", "2026-06-23T06:00:00Z"),
            // 01:30 on 29 March 2026 never happens in the UK: the hour after.
            ("01:30", "2026-03-29T00:10:00Z", "2026-03-29T01:30:00Z"),
            // 01:30 on 25 October 2026 happens twice: the first.
            ("01:30", "2026-10-25T00:10:00Z", "2026-10-25T00:30:00Z"),
        ];
        for (time, now, expected) in cases {
            let got = reboot_after(parse_reboot_time(time).unwrap(), at(now));
            assert_eq!(got, at(expected), "{time} at {now}");
        }
        let with_time = rollout(Audience::Everyone, Some("16:30"));
        let got = offer(Some(&with_time), d(1), "0.1.0", &[], at("2026-12-07T10:00:00Z"));
        assert_eq!(got.unwrap().reboot_after, Some(at("2026-12-07T16:30:00Z")));
    }

    #[test]
    fn what_it_types_is_checked() {
        assert!(parse_reboot_time(" 07:05 ").is_ok());
        for bad in ["", "4.30pm", "24:00", "16:30:00", "noon"] {
            let err = parse_reboot_time(bad).unwrap_err();
            assert!(err.starts_with("Restart time:"), "{bad}: {err}");
        }
        assert_eq!(parse_devices("12, 13 12\n14").unwrap(), vec![d(12), d(13), d(14)]);
        for (bad, says) in [
            ("", "at least one"),
            (" , ", "at least one"),
            ("12, x", "\"x\""),
            ("0", "\"0\""),
            ("10000", "\"10000\""),
            ("-3", "\"-3\""),
        ] {
            let err = parse_devices(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        let many: Vec<String> = (1..=201).map(|n| n.to_string()).collect();
        assert!(parse_devices(&many.join(",")).unwrap_err().contains("everyone"));
    }

    #[test]
    fn rauc_info_is_read_and_checked() {
        let real = br#"{"compatible":"slate-test","version":"0.2.0","description":"test","build":null,"hooks":[],"images":[{"rootfs":{"variant":null,"filename":"rootfs.ext4","checksum":"79","size":8192,"hooks":[],"adaptive":[]}}]}"#;
        assert_eq!(
            parse_rauc_info(real).unwrap(),
            RaucInfo { compatible: "slate-test".into(), version: "0.2.0".into() }
        );
        let cases: [(&[u8], &str); 5] = [
            (b"", "no manifest"),
            (b"{\"version\":\"1\"}", "no manifest"),
            (br#"{"compatible":"x","version":"1.0 beta"}"#, "not an image version"),
            (br#"{"compatible":"","version":"1.0"}"#, "compatible"),
            (br#"{"compatible":"a b","version":"1.0"}"#, "compatible"),
        ];
        for (json, says) in cases {
            let err = parse_rauc_info(json).unwrap_err();
            assert!(err.contains(says), "{}: {err}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn a_new_bundle_is_one_file_per_version_for_the_same_hardware() {
        let info = |version: &str, compatible: &str| RaucInfo {
            version: version.into(),
            compatible: compatible.into(),
        };
        let existing = [bundle("0.2.0")];
        let other_sha = "1".repeat(64);
        let kiosk = "slate-rpi-arm64-kiosk";
        assert_eq!(check_new_bundle(&[], &other_sha, &info("0.2.0", "x")), Ok(NewBundle::New));
        assert_eq!(
            check_new_bundle(&existing, SHA, &info("0.2.0", kiosk)),
            Ok(NewBundle::AlreadyUploaded)
        );
        assert_eq!(
            check_new_bundle(&existing, &other_sha, &info("0.3.0", kiosk)),
            Ok(NewBundle::New)
        );
        let err = check_new_bundle(&existing, &other_sha, &info("0.2.0", kiosk)).unwrap_err();
        assert!(err.contains("version 0.2.0 is already uploaded"), "{err}");
        let err =
            check_new_bundle(&existing, &other_sha, &info("0.3.0", "slate-rpi-arm64-minimal"))
                .unwrap_err();
        assert!(err.contains("\"slate-rpi-arm64-minimal\"") && err.contains(kiosk), "{err}");
    }

    #[test]
    fn the_fleet_page_says_where_each_device_is() {
        let everyone = rollout(Audience::Everyone, None);
        let report = |state, target: Option<&str>, downloaded, error: Option<&str>| DeviceReport {
            device: 12,
            running: "0.1.0".into(),
            state,
            target: target.map(Into::into),
            downloaded,
            error: error.map(Into::into),
            reported_at: at("2026-12-07T10:00:00Z"),
        };
        let rolled_back = Failure {
            device: 12,
            version: "0.2.0".into(),
            error: Some("rolled back: not healthy 304s after boot".into()),
            reported_at: at("2026-12-07T10:00:00Z"),
        };
        use UpdateState::*;
        let cases = [
            (None, vec![], "not reported yet", false),
            (Some(report(Current, None, None, None)), vec![], "up to date", false),
            (
                Some(report(Downloading, Some("0.2.0"), Some(400), None)),
                vec![],
                "downloading 40%",
                false,
            ),
            (Some(report(Downloading, Some("9.9"), Some(400), None)), vec![], "downloading", false),
            (
                Some(report(Downloaded, Some("0.2.0"), None, None)),
                vec![],
                "downloaded, waiting for no pupil",
                false,
            ),
            (Some(report(Installing, Some("0.2.0"), None, None)), vec![], "installing", false),
            (
                Some(report(WaitingToReboot, Some("0.2.0"), None, None)),
                vec![],
                "waiting to restart",
                false,
            ),
            (
                Some(report(Failed, Some("0.2.0"), None, Some("download: connection reset"))),
                vec![],
                "failed (0.2.0)",
                true,
            ),
            (
                Some(report(
                    Failed,
                    Some("0.2.0"),
                    None,
                    Some("rolled back: not healthy 304s after boot"),
                )),
                vec![rolled_back.clone()],
                "rolled back (0.2.0)",
                true,
            ),
            // Back on 0.1.0 and current: the rollout's version still shows as rolled back.
            (
                Some(report(Current, None, None, None)),
                vec![rolled_back.clone()],
                "rolled back (0.2.0)",
                true,
            ),
        ];
        for (report, failures, words, problem) in cases {
            let got = describe(report.as_ref(), &[bundle("0.2.0")], Some(&everyone), &failures);
            assert_eq!(got, StateWords { words: words.into(), problem }, "{report:?}");
        }
        let current = report(Current, None, None, None);
        let failures = [rolled_back];
        assert_eq!(
            shown_error(&current, Some(&everyone), &failures),
            Some("rolled back: not healthy 304s after boot")
        );
        assert_eq!(shown_error(&current, None, &failures), None, "no rollout: nothing to explain");
        let failing = report(Failed, Some("0.2.0"), None, Some("download: reset"));
        assert_eq!(shown_error(&failing, Some(&everyone), &failures), Some("download: reset"));
    }
}
