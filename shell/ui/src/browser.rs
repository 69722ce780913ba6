//! Chromium for web apps: the managed policy that confines it to one app's sites, and the kiosk
//! command line with a fresh profile per session. Pure: builds JSON and argument lists; must not
//! write files or start processes (the caller, with the rights to write
//! [`MANAGED_POLICY_DIR`], does that).
//!
//! Each policy closes a way out or a way in: seed 004 asks for filtering and safe search on the
//! device itself, seed 002 for no USB storage or camera unless permitted, and PRODUCT.md for "no
//! way out" (no other URL, settings, dev tools, downloads, file dialogs, sign-in, extensions).

use serde_json::{json, Value};
use slate_protocol::kiosk::{check_https, App, AppKind};
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

/// Chromium reads at most this many entries of one URL list policy and ignores the rest
/// (`kMaxFiltersPerPolicy` in its URL blocklist code).
pub const MAX_URL_FILTERS: usize = 1000;

/// Characters that may follow a site's path in a URL without starting a new path segment:
/// every printable ASCII character but `/` (the boundary itself), `?` and `#` (they end the
/// path; Chromium's filters match the path only) and `\` (Chromium reads it as `/` in http(s)
/// URLs, so `/app\` would block `/app/`). Bytes outside ASCII reach the path percent-encoded,
/// so `%` covers them.
const PATH_CONTINUATIONS: &str =
    "!\"$%&'()*+,-.0123456789:;<=>@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// The Chromium URL filters that admit exactly one site of an app, for `URLAllowlist` and
/// `URLBlocklist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePatterns {
    pub allow: String,
    pub block: Vec<String>,
}

/// Turns a site such as `https://host/app` into Chromium URL filters that admit exactly it.
/// Chromium's filter format (`[scheme://][.]host[:port][/path]`) is wider than it looks: a host
/// without a leading dot admits every subdomain, a filter without a port admits every port, and
/// a path is a plain string prefix (`/app` admits `/application` and `/app.evil`). So:
/// - a leading dot: this host only (`https://.host`);
/// - the port written out (443 for https, 80 for http when the site names none);
/// - a path boundary: `/app` admits `/app`, `/app?q` and everything under `/app/`, and the
///   block list refuses `/app` followed by anything else. Chromium lets the most specific filter
///   win (same host form, then the longer path), so `/app.` in the block list beats `/app` in the
///   allow list. A site ending in `/` (or with no path) needs no boundary.
///
/// Pure. Refuses a site with a query or fragment (a filter cannot say "exactly this query").
pub fn site_patterns(site: &str) -> Result<SitePatterns, String> {
    let (scheme, rest) = site.split_once("://").ok_or("has no scheme")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return Err("is not an http(s) address".into()),
    };
    if rest.contains(['?', '#']) {
        return Err("has a query or fragment: a site is a host and a path".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| "has a bad port")?),
        None => (authority, default_port),
    };
    if host.is_empty() || host.starts_with('.') || host.contains(['@', '*', '[']) {
        return Err("has no plain host name".into());
    }
    let host = host.to_ascii_lowercase();
    let allow = format!("{scheme}://.{host}:{port}{path}");
    let block = if path.is_empty() || path.ends_with('/') {
        Vec::new()
    } else {
        PATH_CONTINUATIONS.chars().map(|c| format!("{allow}{c}")).collect()
    };
    Ok(SitePatterns { allow, block })
}

/// What Chromium refuses before any site is allowed: everything (`*`), and by name the schemes
/// of its own pages, files and scripts, so that no allow entry can ever reach them.
pub const BLOCK_FIRST: [&str; 9] = [
    "*",
    "chrome://*",
    "chrome-untrusted://*",
    "devtools://*",
    "file://*",
    "view-source:*",
    "javascript:*",
    "data:*",
    "about:*",
];

/// `URLAllowlist` and `URLBlocklist` for an app's sites. Pure.
pub fn url_lists(sites: &[String]) -> Result<(Vec<String>, Vec<String>), (String, String)> {
    let mut allow = Vec::new();
    let mut block: Vec<String> = BLOCK_FIRST.iter().map(|s| s.to_string()).collect();
    for site in sites {
        let patterns = site_patterns(site).map_err(|problem| (site.clone(), problem))?;
        allow.push(patterns.allow);
        block.extend(patterns.block);
    }
    if block.len() > MAX_URL_FILTERS {
        // Chromium would silently drop the rest, and with it some path boundaries.
        return Err((
            sites.join(" "),
            format!("need {} block entries, more than Chromium reads", block.len()),
        ));
    }
    Ok((allow, block))
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
    let (allow, block) = url_lists(sites).map_err(|(site, problem)| BrowserError::BadSite {
        app: app.id.clone(),
        site,
        problem,
    })?;
    Ok(json!({
        // Safe search, enforced by the browser as well as by the device's DNS filter.
        "ForceGoogleSafeSearch": true,
        "ForceYouTubeRestrict": 2,
        "SafeSitesFilterBehavior": 1,
        "SafeBrowsingProtectionLevel": 1,
        // Only the app's own sites (exactly: see `site_patterns`); everything else, internal
        // pages included, is blocked.
        "URLBlocklist": block,
        "URLAllowlist": allow,
        "HomepageLocation": start_url,
        "HomepageIsNewTabPage": false,
        "RestoreOnStartup": 4,
        "RestoreOnStartupURLs": [start_url],
        // Ways out of the kiosk window into another window with Chromium's own menus (issue 20;
        // Chromium 156's policy list, gone through for this): installing the page as an app
        // (its app window has a menu with "Open in Chromium"), private windows, guest and new
        // profiles and the profile picker, sign-in, sync, extensions, another browser.
        "WebAppInstallByUserEnabled": false,
        "IncognitoModeAvailability": 1,
        "BrowserGuestModeEnabled": false,
        "BrowserAddPersonEnabled": false,
        "ProfilePickerOnStartupAvailability": 1,
        "BrowserSignin": 0,
        "SyncDisabled": true,
        "ExtensionInstallBlocklist": ["*"],
        "NativeMessagingBlocklist": ["*"],
        "BrowserSwitcherEnabled": false,
        "BrowserLabsEnabled": false,
        // Developer tools stay at Chromium's default (0) because 2 also refuses the launcher's
        // own control channel (CDP attach: "Not allowed"); the pupil cannot open them anyway:
        // `devtools://*` is blocked and the launcher's guard closes any page other than the
        // app's. For the same reason `RemoteDebuggingAllowed` is left alone.
        "DeveloperToolsAvailability": 0,
        "TaskManagerEndProcessEnabled": false,
        // Side panels, dialogs and context-menu entries that open Google's pages or other
        // windows: search, Lens, casting, sharing, QR codes, feedback, AI helpers.
        "DefaultSearchProviderEnabled": false,
        "DefaultSearchProviderContextMenuAccessAllowed": false,
        "LensOverlaySettings": 1,
        "LensRegionSearchEnabled": false,
        "GoogleSearchSidePanelEnabled": false,
        "SideSearchEnabled": false,
        "EnableMediaRouter": false,
        "ShowCastIconInToolbar": false,
        "DesktopSharingHubEnabled": false,
        "QRCodeGeneratorEnabled": false,
        "UserFeedbackAllowed": false,
        "FeedbackSurveysEnabled": false,
        "PromotionalTabsEnabled": false,
        "GenAiDefaultSettings": 2,
        "GeminiSettings": 1,
        "AIModeSettings": 1,
        "HelpMeWriteSettings": 2,
        "TabCompareSettings": 2,
        "HistorySearchSettings": 2,
        "CreateThemesSettings": 2,
        "DevToolsGenAiSettings": 2,
        // A security interstitial's "proceed anyway" is a way past the school's filter.
        "SSLErrorOverrideAllowed": false,
        "DisableSafeBrowsingProceedAnyway": true,
        // DNS goes through the device's own filter, never around it.
        "DnsOverHttpsMode": "off",
        "BuiltInDnsClientEnabled": false,
        // Nothing leaves or enters through files or paper: no downloads, no file dialogs (a file
        // input is also refused by the guard before Chromium shows its "disabled by your
        // administrator" infobar), no printing and no print preview (without
        // `DisablePrintPreview` the PDF viewer's print button opens a preview even with printing
        // off, which cannot be closed: the guard ends the browser if one ever appears).
        "DownloadRestrictions": 3,
        "PromptForDownloadLocation": false,
        "AllowFileSelectionDialogs": false,
        "DefaultFileSystemReadGuardSetting": 2,
        "DefaultFileSystemWriteGuardSetting": 2,
        "PrintingEnabled": false,
        "DisablePrintPreview": true,
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
        // No devices, notifications, location, pop-ups, windows placed on other screens or
        // external programs.
        "DefaultWebUsbGuardSetting": 2,
        "DefaultWebBluetoothGuardSetting": 2,
        "DefaultSerialGuardSetting": 2,
        "DefaultWebHidGuardSetting": 2,
        "DefaultNotificationsSetting": 2,
        "DefaultGeolocationSetting": 2,
        "DefaultPopupsSetting": 2,
        "DefaultWindowManagementSetting": 2,
        "ExternalProtocolDialogShowAlwaysOpenCheckbox": false,
        "AutoLaunchProtocolsFromOrigins": [],
        "AllowDinosaurEasterEgg": false,
        "BackgroundModeEnabled": false,
        "MetricsReportingEnabled": false,
        "DefaultBrowserSettingEnabled": false,
        "PaymentMethodQueryEnabled": false,
        // Nothing of Chromium's own on the network (with --disable-background-networking): no
        // component or extension updates (the image updates Chromium as a whole), no DNS
        // prefetch or preconnect. A report's "names looked up just before" are the pupil's.
        "ComponentUpdatesEnabled": false,
        "NetworkPredictionOptions": 2,
        // Deliberately not set:
        // - WebAppInstallForceList, IsolatedWebAppInstallForceList, WebAppSettings: they install
        //   or configure apps; Slate wants none (unset means none).
        // - FullscreenAllowed: the kiosk window is full screen already; a page's own full screen
        //   (a video) stays inside it.
        // - AlwaysOpenPdfExternally: would turn every PDF into a (refused) download; apps show
        //   worksheets as PDFs.
        // - ForceEphemeralProfiles: each session's profile is new and removed at its end.
        // - KioskModeEnabled, PrintPreviewDisabled, WebAppInstallationEnabled: not policies in
        //   this Chromium (`DisablePrintPreview` is the one it reads).
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

/// The certificates of a PEM file (the school's own certificate authority, `[server]
/// ca_certificate`), base64 DER, as Chromium's `CACertificates` policy takes them: schools run
/// apps and HTTPS-inspecting filters on certificates their own authority signed. Only
/// `CERTIFICATE` blocks are taken; anything else in the file (a key by mistake) is refused.
pub fn trusted_certificates(pem: &[u8]) -> Result<Vec<String>, String> {
    use base64::Engine as _;
    use rustls_pki_types::pem::{PemObject, SectionKind};
    let mut certificates = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section.map_err(|e| format!("not a PEM file: {e}"))? {
            (SectionKind::Certificate, der) => {
                certificates.push(base64::engine::general_purpose::STANDARD.encode(der))
            }
            (kind, _) => return Err(format!("holds a {kind:?}, not only certificates")),
        }
    }
    if certificates.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(certificates)
}

/// The school network's part of the browser policy (slate-network's `chromium-policy.json`):
/// `ProxySettings` and `CACertificates` (base64 DER), each optional; anything else is refused
/// (this file must not be a way to change other policies).
pub fn network_policy(json: &[u8]) -> Result<(Option<Value>, Vec<String>), String> {
    use base64::Engine as _;
    let value: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = value else { return Err("not a JSON object".into()) };
    let mut proxy = None;
    let mut certificates = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "ProxySettings" => {
                let mode = value["ProxyMode"].as_str().unwrap_or_default();
                let fields: &[&str] = match mode {
                    "fixed_servers" => &["ProxyMode", "ProxyServer", "ProxyBypassList"],
                    "pac_script" => &["ProxyMode", "ProxyPacUrl"],
                    _ => return Err(format!("ProxySettings: ProxyMode {mode:?} is not used here")),
                };
                let Value::Object(settings) = &value else { unreachable!("has ProxyMode") };
                for (field, v) in settings {
                    if !fields.contains(&field.as_str()) || !v.is_string() {
                        return Err(format!("ProxySettings: field {field:?} is not expected"));
                    }
                }
                proxy = Some(value);
            }
            "CACertificates" => {
                for c in value.as_array().ok_or("CACertificates: not a list")? {
                    let c = c.as_str().ok_or("CACertificates: not a string")?;
                    base64::engine::general_purpose::STANDARD
                        .decode(c)
                        .map_err(|_| "CACertificates: not base64")?;
                    certificates.push(c.to_owned());
                }
            }
            other => return Err(format!("policy {other:?} is not the school network's")),
        }
    }
    Ok((proxy, certificates))
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
        // Nothing of its own to Google: the image brings Chromium and its components up to date
        // as a whole, and these look-ups (update.googleapis.com, clients2.google.com, ...) would
        // crowd out the pupil's own in a report's "names looked up just before".
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
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

    #[test]
    fn the_network_policy_takes_only_a_proxy_and_certificates() {
        let fixed = br#"{"ProxySettings": {"ProxyMode": "fixed_servers", "ProxyServer": "http://p.example:3128", "ProxyBypassList": "*.school.example,<local>"}, "CACertificates": ["AQID"]}"#;
        let (proxy, certs) = network_policy(fixed).unwrap();
        assert_eq!(proxy.unwrap()["ProxyServer"], "http://p.example:3128");
        assert_eq!(certs, ["AQID"]);
        let pac = br#"{"ProxySettings": {"ProxyMode": "pac_script", "ProxyPacUrl": "http://wpad.example/wpad.dat"}}"#;
        assert!(network_policy(pac).unwrap().0.is_some());
        assert_eq!(network_policy(b"{}").unwrap(), (None, vec![]));
        for bad in [
            &br#"{"URLAllowlist": ["*"]}"#[..],
            br#"{"ProxySettings": {"ProxyMode": "direct"}}"#,
            br#"{"ProxySettings": {"ProxyMode": "pac_script", "ProxyServer": "x"}}"#,
            br#"{"CACertificates": ["not base64!"]}"#,
            b"[]",
            b"{",
        ] {
            assert!(network_policy(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
    use slate_protocol::kiosk::{parse_policy, SAMPLE_POLICY};

    #[test]
    fn the_school_authority_file() {
        let cert = |body: &str| {
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
        };
        let key = "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n";
        let cases: &[(String, Result<Vec<&str>, &str>)] = &[
            (cert("AQID"), Ok(vec!["AQID"])),
            (
                format!("# the school CA\n{}{}", cert("AQID"), cert("BAUG")),
                Ok(vec!["AQID", "BAUG"]),
            ),
            (format!("{}{key}", cert("AQID")), Err("holds a PrivateKey")),
            (String::new(), Err("holds no certificate")),
            ("not a certificate at all\n".into(), Err("holds no certificate")),
            (cert("!!!"), Err("not a PEM file")),
        ];
        for (pem, expected) in cases {
            let got = trusted_certificates(pem.as_bytes());
            match expected {
                Ok(want) => assert_eq!(
                    got.as_deref(),
                    Ok(&want.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]),
                    "{pem}"
                ),
                Err(says) => {
                    assert!(got.as_ref().is_err_and(|e| e.contains(says)), "{pem}: {got:?}")
                }
            }
        }
    }

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
            (
                "URLAllowlist",
                json!(["https://.www.oxfordowl.co.uk:443/", "https://.cdn.oxfordowl.co.uk:443"]),
            ),
            ("WebAppInstallByUserEnabled", json!(false)),
            ("BrowserAddPersonEnabled", json!(false)),
            ("BrowserGuestModeEnabled", json!(false)),
            ("TaskManagerEndProcessEnabled", json!(false)),
            ("DisablePrintPreview", json!(true)),
            ("PromptForDownloadLocation", json!(false)),
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

    /// Chromium's URL filter matching as its policy documentation describes it, to check the
    /// generated lists (kiosk_escapes checks the same cases in the real browser): a filter is
    /// `*` or `scheme://[.]host[:port][/path]`; the most specific matching filter wins (exact
    /// host over subdomains, then the longer host, then the longer path, then allow over block).
    fn chromium_admits(allow: &[String], block: &[String], url: &str) -> bool {
        struct Filter {
            exact_host: bool,
            host: String,
            path: String,
            allow: bool,
        }
        let split = |u: &str| -> (String, String, u16, String) {
            let (scheme, rest) = u.split_once("://").unwrap();
            let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
            let path = path.split(['?', '#']).next().unwrap();
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().unwrap()),
                None => (authority, if scheme == "https" { 443 } else { 80 }),
            };
            (scheme.into(), host.into(), port, path.into())
        };
        let (scheme, host, port, path) = split(url);
        let mut best: Option<Filter> = None;
        for (filter, allowing) in
            allow.iter().map(|f| (f, true)).chain(block.iter().map(|f| (f, false)))
        {
            let candidate = if filter == "*" {
                Filter {
                    exact_host: false,
                    host: String::new(),
                    path: String::new(),
                    allow: allowing,
                }
            } else if let Some((f_scheme, f_rest)) = filter.split_once("://") {
                if f_scheme != scheme {
                    continue;
                }
                let exact_host = f_rest.starts_with('.');
                let f_rest = f_rest.trim_start_matches('.');
                let (authority, f_path) =
                    f_rest.find('/').map_or((f_rest, ""), |i| f_rest.split_at(i));
                let (f_host, f_port) = match authority.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p.parse::<u16>().unwrap())),
                    None => (authority, None),
                };
                let host_ok = f_host == "*"
                    || host == f_host
                    || (!exact_host && host.ends_with(&format!(".{f_host}")));
                if !host_ok || f_port.is_some_and(|p| p != port) || !path.starts_with(f_path) {
                    continue;
                }
                Filter { exact_host, host: f_host.into(), path: f_path.into(), allow: allowing }
            } else {
                continue;
            };
            let wins = match &best {
                None => true,
                Some(b) => {
                    (
                        candidate.exact_host,
                        candidate.host.len(),
                        candidate.path.len(),
                        candidate.allow,
                    ) > (b.exact_host, b.host.len(), b.path.len(), b.allow)
                }
            };
            if wins {
                best = Some(candidate);
            }
        }
        best.is_some_and(|b| b.allow)
    }

    #[test]
    fn sites_mean_exactly_the_sites_named() {
        // (sites, URL, admitted)
        let table: &[(&[&str], &str, bool)] = &[
            (&["https://localhost/app"], "https://localhost/app", true),
            (&["https://localhost/app"], "https://localhost/app?q=1", true),
            (&["https://localhost/app"], "https://localhost/app/", true),
            (&["https://localhost/app"], "https://localhost/app/x/y", true),
            (&["https://localhost/app"], "https://localhost:443/app/x", true),
            (&["https://localhost/app"], "https://evil.localhost/app/x", false),
            (&["https://localhost/app"], "https://localhost/application-x", false),
            (&["https://localhost/app"], "https://localhost/app.evil/x", false),
            (&["https://localhost/app"], "https://localhost/app%2Fx", false),
            (&["https://localhost/app"], "https://localhost:18443/app/", false),
            (&["https://localhost/app"], "http://localhost/app/", false),
            (&["https://localhost/app"], "https://localhost/", false),
            (&["https://example.org"], "https://example.org/", true),
            (&["https://example.org"], "https://example.org/any/path", true),
            (&["https://example.org"], "https://www.example.org/", false),
            (&["https://example.org"], "https://a.b.example.org/x", false),
            (&["https://example.org"], "https://example.org:8443/", false),
            (&["https://example.org"], "https://example.org.evil.net/", false),
            (&["https://Example.org/"], "https://example.org/x", true),
            (&["https://example.org/a/"], "https://example.org/a/b", true),
            (&["https://example.org/a/"], "https://example.org/ab", false),
            (
                &["https://example.org/app", "https://cdn.example.org"],
                "https://cdn.example.org/app.js",
                true,
            ),
            (
                &["https://example.org/app", "https://cdn.example.org"],
                "https://example.org/",
                false,
            ),
            (&["http://localhost:8080/app"], "http://localhost:8080/app/x", true),
            (&["http://localhost:8080/app"], "http://localhost:8081/app/x", false),
        ];
        for (sites, url, admitted) in table {
            let sites: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
            let (allow, block) = url_lists(&sites).unwrap();
            assert_eq!(chromium_admits(&allow, &block, url), *admitted, "{sites:?} {url}");
        }
    }

    #[test]
    fn site_patterns_and_refusals() {
        let app = site_patterns("https://localhost/app").unwrap();
        assert_eq!(app.allow, "https://.localhost:443/app");
        assert!(app.block.contains(&"https://.localhost:443/app.".to_string()));
        assert!(app.block.contains(&"https://.localhost:443/app%".to_string()));
        assert!(!app.block.iter().any(|b| b.ends_with("/app/") || b.ends_with("/app\\")));
        let root = site_patterns("https://example.org").unwrap();
        assert_eq!(root, SitePatterns { allow: "https://.example.org:443".into(), block: vec![] });
        for bad in ["example.org", "ftp://x/", "https://x/a?b", "https://x/#a", "https://:1/"] {
            assert!(site_patterns(bad).is_err(), "{bad}");
        }
        // Chromium would ignore block entries past its limit, losing path boundaries.
        let many: Vec<String> = (0..20).map(|i| format!("https://s{i}.example/p")).collect();
        assert!(url_lists(&many).is_err());
        assert!(matches!(
            managed_policy(&web(&["https://x.example/a?b"], false)),
            Err(BrowserError::BadSite { .. })
        ));
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
        assert!(args.contains(&"--disable-background-networking".to_string()));
        assert_eq!(&args[args.len() - 2..], ["--", "https://www.oxfordowl.co.uk/start"]);
        let x11 = kiosk_args(&web(&["https://www.oxfordowl.co.uk"], false), &dir, false).unwrap();
        assert!(!x11.iter().any(|a| a == "--ozone-platform=wayland"));
    }
}
