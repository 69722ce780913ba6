//! Chromium for web apps: the managed policy that confines it to one app's sites, and the kiosk
//! command line with a fresh profile per session. Pure: builds JSON and argument lists; must not
//! write files or start processes (the caller, with the rights to write
//! [`MANAGED_POLICY_DIR`], does that).
//!
//! Each policy closes a way out or a way in: seed 004 asks for filtering and safe search on the
//! device itself, seed 002 for no USB storage or camera unless permitted, and PRODUCT.md for "no
//! way out" (no other URL, settings, dev tools, downloads, file dialogs, sign-in, extensions).

use crate::policy::{check_https, App, AppKind};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where Debian's Chromium reads mandatory policies from.
pub const MANAGED_POLICY_DIR: &str = "/etc/chromium/policies/managed";
/// The file name Slate writes there.
pub const MANAGED_POLICY_FILE: &str = "slate.json";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrowserError {
    #[error("app {app:?} is not a web app")]
    NotWeb { app: String },
    #[error("app {app:?}: site {site:?} {problem}")]
    BadSite { app: String, site: String, problem: String },
    #[error("session id {0:?} is not safe in a path")]
    BadSession(String),
}

/// Turns `https://host/path` into Chromium's URL pattern `https://host/path` (host match includes
/// subdomains only when written with a leading dot, which we never do: exactly the sites named).
fn url_pattern(site: &str) -> String {
    site.trim_end_matches('/').to_owned()
}

/// The managed policy for one web app. Pure.
pub fn managed_policy(app: &App) -> Result<Value, BrowserError> {
    let AppKind::Web { start_url, sites, camera } = &app.kind else {
        return Err(BrowserError::NotWeb { app: app.id.clone() });
    };
    for site in sites.iter().chain(std::iter::once(start_url)) {
        check_https(site).map_err(|problem| BrowserError::BadSite {
            app: app.id.clone(),
            site: site.clone(),
            problem,
        })?;
    }
    let allow: Vec<String> = sites.iter().map(|s| url_pattern(s)).collect();
    Ok(json!({
        // Safe search, enforced by the browser as well as by the device's DNS filter.
        "ForceGoogleSafeSearch": true,
        "ForceYouTubeRestrict": 2,
        "SafeSitesFilterBehavior": 1,
        "SafeBrowsingProtectionLevel": 1,
        // Only the app's own sites; everything else, internal pages included, is blocked.
        "URLBlocklist": ["*", "chrome://*", "chrome-untrusted://*", "devtools://*", "file://*", "view-source:*", "javascript:*", "data:*", "about:*"],
        "URLAllowlist": allow,
        "HomepageLocation": start_url,
        "HomepageIsNewTabPage": false,
        "RestoreOnStartup": 4,
        "RestoreOnStartupURLs": [start_url],
        // No private windows, sign-in, sync, extensions or guest profiles. Developer tools stay
        // at Chromium's default (0) because 2 also refuses the launcher's own control channel
        // (CDP attach: "Not allowed"); the pupil cannot open them anyway: `devtools://*` is
        // blocked and the launcher's guard closes any page other than the app's.
        "IncognitoModeAvailability": 1,
        "DeveloperToolsAvailability": 0,
        "BrowserSignin": 0,
        "SyncDisabled": true,
        "BrowserGuestModeEnabled": false,
        "BrowserAddPersonEnabled": false,
        "ExtensionInstallBlocklist": ["*"],
        // DNS goes through the device's own filter, never around it.
        "DnsOverHttpsMode": "off",
        "BuiltInDnsClientEnabled": false,
        // Nothing leaves or enters through files or paper.
        "DownloadRestrictions": 3,
        "AllowFileSelectionDialogs": false,
        "PrintingEnabled": false,
        "PromptForDownloadLocation": false,
        // Nothing remembered for the next pupil (the profile is new anyway).
        "PasswordManagerEnabled": false,
        "AutofillAddressEnabled": false,
        "AutofillCreditCardEnabled": false,
        "SavingBrowserHistoryDisabled": true,
        "SearchSuggestEnabled": false,
        "TranslateEnabled": false,
        "EditBookmarksEnabled": false,
        "BookmarkBarEnabled": false,
        // Cameras and microphones off unless the app needs them; no screen capture ever.
        "VideoCaptureAllowed": camera,
        "AudioCaptureAllowed": camera,
        "ScreenCaptureAllowed": false,
        // No devices, notifications, location or external programs.
        "DefaultWebUsbGuardSetting": 2,
        "DefaultWebBluetoothGuardSetting": 2,
        "DefaultSerialGuardSetting": 2,
        "DefaultWebHidGuardSetting": 2,
        "DefaultFileSystemReadGuardSetting": 2,
        "DefaultFileSystemWriteGuardSetting": 2,
        "DefaultNotificationsSetting": 2,
        "DefaultGeolocationSetting": 2,
        "DefaultPopupsSetting": 2,
        "ExternalProtocolDialogShowAlwaysOpenCheckbox": false,
        "AutoLaunchProtocolsFromOrigins": [],
        "TaskManagerEndProcessEnabled": false,
        "AllowDinosaurEasterEgg": false,
        "BackgroundModeEnabled": false,
        "MetricsReportingEnabled": false,
        "DefaultBrowserSettingEnabled": false,
        "PaymentMethodQueryEnabled": false,
    }))
}

/// The session's browser profile directory: under `runtime_dir` (a tmpfs such as
/// `/run/user/<uid>`), named for the session, so each session starts empty and nothing of it
/// outlives a reboot. The caller deletes it at sign-out.
pub fn profile_dir(runtime_dir: &Path, session: &str) -> Result<PathBuf, BrowserError> {
    let safe = !session.is_empty()
        && session.len() <= 64
        && session.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !safe {
        return Err(BrowserError::BadSession(session.to_owned()));
    }
    Ok(runtime_dir.join("slate-browser").join(session))
}

/// Chromium's arguments (without the program) to show `app` full screen in kiosk mode.
pub fn kiosk_args(app: &App, profile: &Path, wayland: bool) -> Result<Vec<OsString>, BrowserError> {
    let AppKind::Web { start_url, .. } = &app.kind else {
        return Err(BrowserError::NotWeb { app: app.id.clone() });
    };
    check_https(start_url).map_err(|problem| BrowserError::BadSite {
        app: app.id.clone(),
        site: start_url.clone(),
        problem,
    })?;
    let mut dir = OsString::from("--user-data-dir=");
    dir.push(profile);
    let mut args: Vec<OsString> = vec![
        "--kiosk".into(),
        dir,
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--noerrdialogs".into(),
        "--disable-session-crashed-bubble".into(),
        "--disable-features=TranslateUI,InfiniteSessionRestore".into(),
        "--overscroll-history-navigation=0".into(),
        "--disable-pinch".into(),
        "--password-store=basic".into(),
        "--check-for-update-interval=31536000".into(),
    ];
    if wayland {
        args.push("--ozone-platform=wayland".into());
    }
    // Last, after `--`, so that a start URL can never be read as a flag.
    args.push("--".into());
    args.push(start_url.into());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{parse_policy, SAMPLE_POLICY};

    fn web(sites: &[&str], camera: bool) -> App {
        App {
            id: "reading".into(),
            title: "Reading".into(),
            symbol: "book".into(),
            colour: 0,
            kind: AppKind::Web {
                start_url: "https://www.oxfordowl.co.uk/start".into(),
                sites: sites.iter().map(|s| s.to_string()).collect(),
                camera,
            },
        }
    }

    #[test]
    fn the_policy_table() {
        let policy = managed_policy(&web(
            &["https://www.oxfordowl.co.uk/", "https://cdn.oxfordowl.co.uk"],
            false,
        ))
        .unwrap();
        let table: Vec<(&str, Value)> = vec![
            ("ForceGoogleSafeSearch", json!(true)),
            ("ForceYouTubeRestrict", json!(2)),
            ("IncognitoModeAvailability", json!(1)),
            ("DeveloperToolsAvailability", json!(0)),
            ("DownloadRestrictions", json!(3)),
            ("BrowserSignin", json!(0)),
            ("ExtensionInstallBlocklist", json!(["*"])),
            ("DnsOverHttpsMode", json!("off")),
            ("PrintingEnabled", json!(false)),
            ("AllowFileSelectionDialogs", json!(false)),
            ("URLAllowlist", json!(["https://www.oxfordowl.co.uk", "https://cdn.oxfordowl.co.uk"])),
            ("VideoCaptureAllowed", json!(false)),
            ("AudioCaptureAllowed", json!(false)),
            ("ScreenCaptureAllowed", json!(false)),
            ("RestoreOnStartupURLs", json!(["https://www.oxfordowl.co.uk/start"])),
        ];
        for (key, expected) in table {
            assert_eq!(policy[key], expected, "{key}");
        }
        let block = policy["URLBlocklist"].as_array().unwrap();
        for escape in ["*", "chrome://*", "file://*", "view-source:*", "devtools://*"] {
            assert!(block.contains(&json!(escape)), "{escape}");
        }
    }

    #[test]
    fn the_camera_only_when_the_app_needs_it() {
        let policy = managed_policy(&web(&["https://example.org"], true)).unwrap();
        assert_eq!(policy["VideoCaptureAllowed"], json!(true));
        assert_eq!(policy["ScreenCaptureAllowed"], json!(false));
    }

    #[test]
    fn refusals() {
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        let paint = sample.app("paint").unwrap();
        assert_eq!(managed_policy(paint), Err(BrowserError::NotWeb { app: "paint".into() }));
        let err = managed_policy(&web(&["https://*"], false)).unwrap_err();
        assert!(matches!(err, BrowserError::BadSite { .. }), "{err:?}");
        assert!(kiosk_args(paint, Path::new("/run/x"), false).is_err());
        for bad in ["", "../etc", "a/b", "a b"] {
            assert!(profile_dir(Path::new("/run/user/1000"), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_sample_web_app_gets_a_policy() {
        let sample = parse_policy(SAMPLE_POLICY).unwrap();
        for app in sample.apps.iter().filter(|a| a.needs_internet()) {
            managed_policy(app).unwrap();
        }
    }

    #[test]
    fn the_kiosk_command_line() {
        let dir = profile_dir(Path::new("/run/user/1000"), "0192f0c1-0000-7000-8000-000000000001")
            .unwrap();
        assert_eq!(
            dir,
            Path::new("/run/user/1000/slate-browser/0192f0c1-0000-7000-8000-000000000001")
        );
        let args = kiosk_args(&web(&["https://www.oxfordowl.co.uk"], false), &dir, true).unwrap();
        let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(args[0], "--kiosk");
        assert_eq!(args[1], format!("--user-data-dir={}", dir.display()));
        assert!(args.contains(&"--ozone-platform=wayland".to_string()));
        assert!(args.contains(&"--no-first-run".to_string()));
        assert_eq!(&args[args.len() - 2..], ["--", "https://www.oxfordowl.co.uk/start"]);
        let x11 = kiosk_args(&web(&["https://www.oxfordowl.co.uk"], false), &dir, false).unwrap();
        assert!(!x11.iter().any(|a| a == "--ozone-platform=wayland"));
    }
}
