//! The device's configuration file (`/etc/slate/slate.toml`): its fields, defaults and checks.
//! [`parse_config`] is pure and must not touch the file system; [`read_config`] only reads.
//!
//! Every refusal names the file, the field and where it is, e.g. ``/etc/slate/slate.toml: field
//! `device_number`: 0 is not a device number from 1 to 9999 (line 2, column 17)``, and unknown
//! fields are refused: a typo on an SD card must not pass silently. Relative paths in the
//! file are taken relative to the directory that holds the file, never to the working directory.
//!
//! ```toml
#![doc = include_str!("../slate.example.toml")]
//! ```

mod edit;
mod raw;

pub use edit::{remove_enrollment_token, same_config, value_as_written, without_enrollment_token};

use crate::activity::ActivityDevices;
use crate::apps::MuteBackend;
use crate::button::DeviceMatch;
use crate::core::{Lockout, Rules};
use crate::staff::StaffPin;
use raw::{ActivityList, ButtonSource, DisplayBackend, MuteWith, RawConfig};
use slate_protocol::DeviceNumber;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::DeValue;
use toml::Spanned;

/// A commented example with every field; it must always parse (see the tests).
pub const EXAMPLE: &str = include_str!("../slate.example.toml");

pub const DEFAULT_STATE_DIR: &str = slate_ipc::state_dir::DEFAULT_STATE_DIR;
pub const DEFAULT_CONTROL_SOCKET: &str = slate_ipc::control::DEFAULT_SOCKET;
/// F12 (code 88): what the board's `gpio-key` overlay is set to send (`keycode=88`).
pub const DEFAULT_BUTTON_KEY: u16 = 88;
/// The largest key code the kernel defines (`KEY_MAX`).
const KEY_MAX: u16 = 0x2ff;
/// A configuration file is a few hundred bytes; anything this big is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why the configuration was refused. Each message starts with the file's path; one about a
/// field names it as a dotted key and ends with where it is, e.g. `(line 2, column 17)`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid TOML file: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: field `{field}`: {reason}{}", path.display(), Location::suffix(at))]
    Field { path: PathBuf, field: String, reason: String, at: Option<Location> },
}

impl ConfigError {
    /// The offending field, for errors about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Where the offending field is in the file (or the table it is missing from).
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Field { at, .. } => *at,
            _ => None,
        }
    }
}

/// A place in the file, both counted from 1; the column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The place of byte `offset` in `text`.
    fn of(text: &str, offset: usize) -> Self {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// `" (line 2, column 17)"`, or nothing.
    fn suffix(at: &Option<Location>) -> String {
        at.map(|at| format!(" ({at})")).unwrap_or_default()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A secret from the configuration; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The number painted on the case. Absent on a class set's one card image: the device takes
    /// its number from IT's list of serials or its setup screen, and keeps it in `state_dir`
    /// (`crate::setup`).
    pub device_number: Option<DeviceNumber>,
    /// For people reading the file and the logs; not sent anywhere.
    pub school: Option<String>,
    /// Holds `spool/` and `credential`. Must survive reboots.
    pub state_dir: PathBuf,
    /// The Unix socket `slatectl` talks to.
    pub control_socket: PathBuf,
    pub server: ServerConfig,
    pub upload: UploadConfig,
    pub button: ButtonConfig,
    /// Debounce and the stuck-button time (`[button]`).
    pub button_timing: ButtonTiming,
    pub staff: StaffConfig,
    pub display: DisplayConfig,
    /// How audio is muted on a report (`[audio] mute`).
    pub mute: MuteBackend,
    /// The status LED's GPIO pin (`[led] gpio_pin`), if there is one.
    pub led_pin: Option<u8>,
    /// The group that may use the control socket (the kiosk UI's user is in it); `None`: the
    /// owner's own group.
    pub control_group: Option<String>,
    /// slate-dns's socket (recent names, profile, reload); `None`: slated does not talk to it.
    pub dns_socket: Option<PathBuf>,
    /// Fetching the signed policy from the server.
    pub policy: PolicyConfig,
    /// The input devices whose input resets the idle timer (`[session] activity_devices`).
    pub activity_devices: ActivityDevices,
    /// The file this configuration was read from (enrollment removes its token line).
    pub source: PathBuf,
}

/// Policy from the server (`[server] public_key`, `policy_refresh_s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// The server's Ed25519 key; without it no policy is fetched (slated warns).
    pub public_key: Option<ed25519_dalek::VerifyingKey>,
    /// How often the policy is fetched.
    pub refresh: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { public_key: None, refresh: Duration::from_secs(300) }
    }
}

impl Config {
    /// The core's rules from this configuration.
    pub fn rules(&self) -> Rules {
        Rules {
            debounce: self.button_timing.debounce,
            stuck_after: self.button_timing.stuck_after,
            pin_in_force: self.staff.pin.is_some(),
            lockout: self.staff.lockout,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonTiming {
    pub debounce: Duration,
    pub stuck_after: Duration,
}

impl Default for ButtonTiming {
    fn default() -> Self {
        let rules = Rules::default();
        Self { debounce: rules.debounce, stuck_after: rules.stuck_after }
    }
}

/// The staff unlock (`[staff]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffConfig {
    /// IT's own PIN's argon2id hash (an unlock with it is recorded as staff `it`), beside the
    /// staff PINs from the server. With neither, a held device stays held.
    pub pin: Option<StaffPin>,
    pub lockout: Lockout,
}

/// How the screen is made dark (`[display]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayConfig {
    /// The default: the compositor's overlay when the kiosk session runs (at `socket`) and the
    /// backlight where there is one; either alone darkens the screen, and the heartbeat says when
    /// neither is there.
    Auto { socket: PathBuf, backlight: Backlight, method: BlankMethod },
    /// Nothing is switched off (a development machine); no darkness is ever claimed.
    Logging,
    /// Write the backlight's sysfs files (needs write access to them: root or a udev rule).
    Sysfs { backlight: Backlight, method: BlankMethod },
    /// Ask logind to set the backlight (`SetBrightness`; slated must run in the kiosk's
    /// session); darkness is confirmed from sysfs.
    Logind { backlight: Backlight, session: String },
    /// A black layer-shell overlay above every window through the kiosk compositor's socket,
    /// confirmed when the compositor has drawn it; then, with `output_power`, the outputs
    /// powered off (wlr-output-power-management).
    /// With `backlight`, the backlight is switched off after the overlay is dark (and on again
    /// before it is lifted): `backlight_off = true` in the `[display]` section.
    Wayland { socket: PathBuf, output_power: bool, backlight: Option<(Backlight, BlankMethod)> },
}

/// The kiosk session's runtime directory in the image (`systemd/slate-session.service`).
pub const DEFAULT_WAYLAND_RUNTIME_DIR: &str = "/run/slate-kiosk";
pub const DEFAULT_WAYLAND_DISPLAY: &str = "wayland-0";

/// Which backlight under `/sys/class/backlight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backlight {
    /// The only one there (or the first by name).
    Auto,
    Named(String),
}

/// How sysfs darkens the backlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlankMethod {
    /// `bl_power = 4` (FB_BLANK_POWERDOWN): the panel's light off, brightness kept.
    BlPower,
    /// `brightness = 0`.
    Brightness,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Base URL without a trailing slash, e.g. `https://school.example:8443`; endpoints are
    /// appended (`/api/v1/events`).
    pub url: String,
    /// An extra root certificate (PEM) to trust, for a school server with its own CA.
    pub ca_certificate: Option<PathBuf>,
    /// One-time token exchanged for a credential when none is stored.
    pub enrollment_token: Option<Secret>,
}

impl ServerConfig {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    /// First retry delay after a failure (the backoff's floor).
    pub retry_min: Duration,
    /// Longest delay between retries (the backoff's ceiling).
    pub retry_max: Duration,
    /// How often a heartbeat is sent while the server is reachable.
    pub heartbeat: Duration,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_millis(30_000),
            heartbeat: Duration::from_secs(60),
        }
    }
}

/// Where report-button presses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonConfig {
    /// A kernel input device (the GPIO button via `gpio-keys`, or a USB button), by path, name
    /// or vendor/product.
    Evdev { device: DeviceMatch, key: u16 },
    /// A GPIO pin with the internal pull-up and edge interrupts (no overlay); needs a build
    /// with the `gpio` feature.
    Gpio { pin: u8, active_low: bool },
    /// Every line on standard input is a press (the demo).
    Stdin,
    /// No physical button; presses come only from the control socket.
    None,
}

/// Reads the file at `path` as text, refusing one too large or not UTF-8.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let read_err = |source| ConfigError::Read { path: path.to_owned(), source };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::Syntax {
            path: path.to_owned(),
            message: format!("{} bytes is too large for a configuration file", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: format!("not UTF-8 text (bad byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

/// Reads and parses the file at `path`.
pub fn read_config(path: &Path) -> Result<Config, ConfigError> {
    parse_config(&read_text(path)?, path)
}

/// Parses the text of a configuration file; `path` is for messages and for resolving relative
/// paths. Pure.
///
/// Serde reads the file into `raw`'s tables, where each field checks its own value; then
/// `validate` checks what spans fields and fills in the defaults.
pub fn parse_config(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let doc = toml::de::DeTable::parse(text).map_err(|e| syntax(path, &e))?;
    let file = File { path, text, doc: &doc };
    let raw = serde_path_to_error::deserialize(toml::de::Deserializer::from(doc.clone()))
        .map_err(|e| file.refused(e))?;
    validate(raw, &file)
}

fn syntax(path: &Path, e: &toml::de::Error) -> ConfigError {
    ConfigError::Syntax { path: path.to_owned(), message: e.to_string().trim_end().to_owned() }
}

const REQUIRED: &str = "is required";
const SERVER_REQUIRED: &str = "is required (a `[server]` table)";
// The report button is the point of the device: it is never off by default.
const BUTTON_REQUIRED: &str = "is required (a `source` and, for evdev, a `device`)";

/// The settings that need more than their own value: required ones, defaults, paths relative to
/// the file, and fields checked against each other.
fn validate(raw: RawConfig, file: &File) -> Result<Config, ConfigError> {
    let base = file.path.parent().unwrap_or(Path::new(""));
    let device_number = raw.device_number.map(|n| n.0);
    let server = raw.server.ok_or_else(|| file.error("server", SERVER_REQUIRED))?.0;
    let url = server.url.ok_or_else(|| file.error("server.url", REQUIRED))?.0;
    let policy = PolicyConfig {
        public_key: server.public_key.map(|key| key.0),
        refresh: server.policy_refresh_s.map_or(PolicyConfig::default().refresh, |s| s.0),
    };
    let server = ServerConfig {
        url,
        ca_certificate: server.ca_certificate.map(|p| base.join(p.0)),
        enrollment_token: server.enrollment_token.map(|t| t.0),
    };
    let upload = upload(raw.upload.0, file)?;
    let (button, button_timing) =
        button(raw.button.ok_or_else(|| file.error("button", BUTTON_REQUIRED))?.0, base, file)?;
    let staff = staff(raw.staff.0, file)?;
    let led_pin = raw.led.0.gpio_pin.map(|pin| pin.0);
    if let (ButtonConfig::Gpio { pin, .. }, Some(led)) = (&button, led_pin) {
        if *pin == led {
            return Err(file.error("led", format!("`gpio_pin` {led} is the button's pin")));
        }
    }
    let activity_devices = activity_devices(raw.session.0, base, &button, file)?;
    Ok(Config {
        device_number,
        school: raw.school.map(|s| s.0),
        state_dir: raw.state_dir.map_or_else(|| DEFAULT_STATE_DIR.into(), |p| base.join(p.0)),
        control_socket: raw
            .control_socket
            .map_or_else(|| DEFAULT_CONTROL_SOCKET.into(), |p| base.join(p.0)),
        server,
        upload,
        button,
        button_timing,
        staff,
        display: display(raw.display.0),
        mute: mute(raw.audio.0),
        led_pin,
        control_group: raw.control_group.map(|g| g.0),
        dns_socket: raw.dns_socket.map(|p| base.join(p.0)),
        policy,
        activity_devices,
        source: file.path.to_owned(),
    })
}

fn upload(raw: raw::RawUpload, file: &File) -> Result<UploadConfig, ConfigError> {
    let defaults = UploadConfig::default();
    let retry_min = raw.retry_min_ms.map_or(defaults.retry_min, |ms| ms.0);
    let retry_max = raw.retry_max_ms.map_or(defaults.retry_max, |ms| ms.0);
    if retry_max < retry_min {
        return Err(file.error(
            "upload.retry_max_ms",
            format!(
                "{} is below `upload.retry_min_ms` ({})",
                retry_max.as_millis(),
                retry_min.as_millis()
            ),
        ));
    }
    let heartbeat = raw.heartbeat_s.map_or(defaults.heartbeat, |s| s.0);
    Ok(UploadConfig { retry_min, retry_max, heartbeat })
}

fn button(
    raw: raw::RawButton,
    base: &Path,
    file: &File,
) -> Result<(ButtonConfig, ButtonTiming), ConfigError> {
    let defaults = ButtonTiming::default();
    let timing = ButtonTiming {
        debounce: raw.debounce_ms.map_or(defaults.debounce, |ms| ms.0),
        stuck_after: raw.stuck_after_s.map_or(defaults.stuck_after, |s| s.0),
    };
    let button = match raw.source.map_or(ButtonSource::Evdev, |s| s.0) {
        ButtonSource::Evdev => {
            let device = DeviceMatch {
                path: raw.device.map(|p| base.join(p.0)),
                name: raw.name.map(|n| n.0),
                vendor: raw.vendor.map(|id| id.0),
                product: raw.product.map(|id| id.0),
            };
            if device == DeviceMatch::default() {
                return Err(file.error(
                    "button.device",
                    "is required when `button.source` is \"evdev\" (or give `name`, `vendor`/`product`)",
                ));
            }
            ButtonConfig::Evdev { device, key: raw.key.map_or(DEFAULT_BUTTON_KEY, |k| k.0) }
        }
        ButtonSource::Gpio => ButtonConfig::Gpio {
            pin: raw
                .gpio_pin
                .ok_or_else(|| {
                    file.error("button.gpio_pin", "is required when `button.source` is \"gpio\"")
                })?
                .0,
            active_low: raw.active_low.is_none_or(|b| b.0),
        },
        ButtonSource::Stdin => ButtonConfig::Stdin,
        ButtonSource::None => ButtonConfig::None,
    };
    Ok((button, timing))
}

fn staff(raw: raw::RawStaff, file: &File) -> Result<StaffConfig, ConfigError> {
    let defaults = Lockout::default();
    let lockout = Lockout {
        wrong_before_lockout: raw
            .wrong_pins_before_lockout
            .map_or(defaults.wrong_before_lockout, |n| n.0),
        first: raw.lockout_s.map_or(defaults.first, |s| s.0),
        max: raw.lockout_max_s.map_or(defaults.max, |s| s.0),
    };
    if lockout.max < lockout.first {
        return Err(file.error("staff.lockout_max_s", "is below `staff.lockout_s`"));
    }
    Ok(StaffConfig { pin: raw.pin_hash.map(|p| p.0), lockout })
}

fn display(raw: raw::RawDisplay) -> DisplayConfig {
    let runtime_dir = raw.runtime_dir.map_or_else(|| DEFAULT_WAYLAND_RUNTIME_DIR.into(), |d| d.0);
    let wayland_display =
        raw.wayland_display.map_or_else(|| DEFAULT_WAYLAND_DISPLAY.into(), |d| d.0);
    let socket = || slate_wayland::Settings::socket_path(&runtime_dir, &wayland_display);
    let backlight = raw.backlight.map_or(Backlight::Auto, |b| b.0);
    let method = raw.method.map_or(BlankMethod::BlPower, |m| m.0);
    match raw.backend.map_or(DisplayBackend::Auto, |b| b.0) {
        DisplayBackend::Auto => DisplayConfig::Auto { socket: socket(), backlight, method },
        DisplayBackend::None => DisplayConfig::Logging,
        DisplayBackend::Sysfs => DisplayConfig::Sysfs { backlight, method },
        DisplayBackend::Logind => DisplayConfig::Logind {
            backlight,
            session: raw.session.map_or_else(|| "auto".into(), |s| s.0),
        },
        DisplayBackend::Wayland => DisplayConfig::Wayland {
            socket: socket(),
            output_power: raw.output_power.is_some_and(|b| b.0),
            backlight: raw.backlight_off.is_some_and(|b| b.0).then_some((backlight, method)),
        },
    }
}

fn mute(raw: raw::RawAudio) -> MuteBackend {
    match raw.mute.map_or(MuteWith::None, |m| m.0) {
        MuteWith::Wpctl => MuteBackend::Wpctl,
        MuteWith::Amixer => MuteBackend::Amixer {
            control: raw.amixer_control.map_or_else(|| "Master".into(), |c| c.0),
        },
        MuteWith::None => MuteBackend::None,
    }
}

fn activity_devices(
    raw: raw::RawSession,
    base: &Path,
    button: &ButtonConfig,
    file: &File,
) -> Result<ActivityDevices, ConfigError> {
    Ok(match raw.activity_devices.map_or(ActivityList::Auto, |a| a.0) {
        ActivityList::Auto => ActivityDevices::Auto,
        ActivityList::None => ActivityDevices::None,
        ActivityList::Paths(paths) => {
            let paths: Vec<PathBuf> = paths.iter().map(|p| base.join(p)).collect();
            if let ButtonConfig::Evdev { device: DeviceMatch { path: Some(b), .. }, .. } = button {
                if paths.contains(b) {
                    return Err(file.error(
                        "session.activity_devices",
                        format!("{} is the report button's device", b.display()),
                    ));
                }
            }
            ActivityDevices::Paths(paths)
        }
    })
}

/// The file being parsed, for refusals: its path, and where each field is in its text.
struct File<'a> {
    path: &'a Path,
    text: &'a str,
    doc: &'a Spanned<toml::de::DeTable<'a>>,
}

impl File<'_> {
    /// A refusal of `field` (a dotted key), placed at its value, or at the nearest table that
    /// holds it when it is missing.
    fn error(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        let mut table = self.doc.get_ref();
        let mut span = None;
        for key in field.split('.') {
            let Some(value) = table.get(key) else { break };
            span = Some(value.span());
            let DeValue::Table(inner) = value.get_ref() else { break };
            table = inner;
        }
        self.placed(field.to_owned(), reason.into(), span)
    }

    fn placed(&self, field: String, reason: String, span: Option<Range<usize>>) -> ConfigError {
        let at = span.map(|span| Location::of(self.text, span.start));
        let path = self.path.to_owned();
        if field.is_empty() {
            let message = format!("{reason}{}", Location::suffix(&at));
            return ConfigError::Syntax { path, message };
        }
        ConfigError::Field { path, field, reason, at }
    }

    /// Serde's refusal (a setting's own check, a wrong type, an unknown field), with the field
    /// it names and the place toml gives.
    fn refused(&self, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
        let mut keys: Vec<String> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let e = e.into_inner();
        let reason = match known_fields(e.message()) {
            // A datetime where a table belongs reaches the table as toml's private field.
            Some(_) if keys.last().is_some_and(|k| k.starts_with("$__toml_private")) => {
                keys.pop();
                format!("expected a table `[{}]`, found datetime", keys.join("."))
            }
            Some(known) => {
                // A required setting mistyped is named as missing, not as the unknown one.
                if let Some(missing) = self.missing_required() {
                    return missing;
                }
                format!("is not a known setting here; the known ones are: {known}")
            }
            None => e.message().to_owned(),
        };
        self.placed(keys.join("."), reason, e.span())
    }

    /// The first required setting the file lacks, as [`validate`] would name it.
    fn missing_required(&self) -> Option<ConfigError> {
        let top = self.doc.get_ref();
        match top.get("server").map(Spanned::get_ref) {
            None => return Some(self.error("server", SERVER_REQUIRED)),
            Some(DeValue::Table(server)) if server.get("url").is_none() => {
                return Some(self.error("server.url", REQUIRED))
            }
            _ => {}
        }
        top.get("button").is_none().then(|| self.error("button", BUTTON_REQUIRED))
    }
}

/// From serde's "unknown field `x`, expected one of `a`, `b`": "a, b".
fn known_fields(message: &str) -> Option<String> {
    let (_, expected) = message.strip_prefix("unknown field `")?.split_once("`, expected ")?;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    Some(names.join(", "))
}

/// Checks the server's base URL: https, or http only to a loopback host (nothing else may see
/// plain-text reports). Returns it without a trailing slash.
fn check_server_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "plain http is only allowed to a loopback host (127.0.0.1, ::1, localhost), not {host:?}; use https"
            ))
        }
        other => return Err(format!("scheme {other:?} is not https")),
    }
    if host.is_empty() {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password (use `enrollment_token`)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
device_number = 12
school = "Hillside Primary"
state_dir = "/var/lib/slate"
control_socket = "/run/slate/control.sock"

[server]
url = "https://school.example:8443/"
ca_certificate = "server-ca.pem"
enrollment_token = "tok-123"

[upload]
retry_min_ms = 250
retry_max_ms = 10000
heartbeat_s = 30

[button]
source = "evdev"
device = "/dev/input/by-path/platform-gpio-keys-event"
key = "KEY_F12"
"#;

    fn path() -> &'static Path {
        Path::new("/etc/slate/slate.toml")
    }

    #[test]
    fn activity_devices_are_auto_none_or_paths_from_the_files_directory() {
        let base =
            "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n";
        let cases = [
            ("", ActivityDevices::Auto),
            ("[session]\n", ActivityDevices::Auto),
            ("[session]\nactivity_devices = \"auto\"\n", ActivityDevices::Auto),
            ("[session]\nactivity_devices = \"none\"\n", ActivityDevices::None),
            (
                "[session]\nactivity_devices = [\"/dev/input/event1\", \"links/touch\"]\n",
                ActivityDevices::Paths(vec![
                    "/dev/input/event1".into(),
                    "/etc/slate/links/touch".into(),
                ]),
            ),
        ];
        for (extra, want) in cases {
            let config = parse_config(&format!("{base}{extra}"), path()).unwrap();
            assert_eq!(config.activity_devices, want, "{extra:?}");
        }
    }

    #[test]
    fn a_good_file_parses_to_the_whole_struct() {
        let config = parse_config(GOOD, path()).unwrap();
        assert_eq!(
            config,
            Config {
                device_number: Some(DeviceNumber::new(12).unwrap()),
                school: Some("Hillside Primary".into()),
                state_dir: "/var/lib/slate".into(),
                control_socket: "/run/slate/control.sock".into(),
                server: ServerConfig {
                    url: "https://school.example:8443".into(),
                    ca_certificate: Some("/etc/slate/server-ca.pem".into()),
                    enrollment_token: Some(Secret("tok-123".into())),
                },
                upload: UploadConfig {
                    retry_min: Duration::from_millis(250),
                    retry_max: Duration::from_secs(10),
                    heartbeat: Duration::from_secs(30),
                },
                button: ButtonConfig::Evdev {
                    device: DeviceMatch::path("/dev/input/by-path/platform-gpio-keys-event"),
                    key: 88,
                },
                button_timing: ButtonTiming::default(),
                staff: StaffConfig::default(),
                // No `[display]`: the device chooses (the kiosk compositor, the backlight).
                display: DisplayConfig::Auto {
                    socket: "/run/slate-kiosk/wayland-0".into(),
                    backlight: Backlight::Auto,
                    method: BlankMethod::BlPower,
                },
                mute: MuteBackend::None,
                led_pin: None,
                control_group: None,
                dns_socket: None,
                policy: PolicyConfig::default(),
                activity_devices: ActivityDevices::Auto,
                source: path().to_owned(),
            }
        );
        assert_eq!(
            config.server.endpoint(slate_protocol::routes::EVENTS),
            "https://school.example:8443/api/v1/events"
        );
    }

    #[test]
    fn the_used_enrollment_token_line_goes_and_nothing_else() {
        let text = "# Slate\ndevice_number = 3\n[server]\nurl = \"https://s\"  # the school\n# the token:\nenrollment_token = \"tok-1\"\npublic_key = \"x\"\n[button]\nsource = \"none\"\n";
        let want = "# Slate\ndevice_number = 3\n[server]\nurl = \"https://s\"  # the school\n# the token:\npublic_key = \"x\"\n[button]\nsource = \"none\"\n";
        assert_eq!(without_enrollment_token(text).as_deref(), Some(want));
        assert_eq!(without_enrollment_token(want), None);
        // Only the [server] one; a commented-out line stays.
        let other = "[server]\n# enrollment_token = \"old\"\n[notes]\nenrollment_token = \"x\"\n";
        assert_eq!(without_enrollment_token(other), None);
        let indented = "[ server ]\n  enrollment_token=\"t\"\nurl = \"https://s\"";
        assert_eq!(
            without_enrollment_token(indented).as_deref(),
            Some("[ server ]\nurl = \"https://s\"")
        );
        // What is left still parses.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slate.toml");
        let full = text.to_string();
        std::fs::write(&path, &full).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        assert!(remove_enrollment_token(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
        assert!(!remove_enrollment_token(&path).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn policy_fields_parse() {
        let key = slate_protocol::bundle::verifying_key_to_base64(
            &ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key(),
        );
        let text = format!(
            "device_number = 3\ncontrol_group = \"slate-kiosk\"\ndns_socket = \"run/dns.sock\"\n[server]\nurl = \"https://s\"\npublic_key = \"{key}\"\npolicy_refresh_s = 60\n[button]\nsource = \"none\"\n"
        );
        let config = parse_config(&text, Path::new("/srv/x/slate.toml")).unwrap();
        assert_eq!(config.control_group.as_deref(), Some("slate-kiosk"));
        assert_eq!(config.dns_socket, Some(PathBuf::from("/srv/x/run/dns.sock")));
        assert_eq!(
            config.policy.public_key.map(|k| slate_protocol::bundle::verifying_key_to_base64(&k)),
            Some(key)
        );
        assert_eq!(config.policy.refresh, Duration::from_secs(60));
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let text = "device_number = 3\n[server]\nurl = \"http://127.0.0.1:8080\"\n[button]\nsource = \"none\"\n";
        let config = parse_config(text, Path::new("/tmp/x/slate.toml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(config.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
        assert_eq!(config.upload, UploadConfig::default());
        assert_eq!(config.button, ButtonConfig::None);
        assert_eq!(config.server.url, "http://127.0.0.1:8080");
        assert_eq!(config.server.enrollment_token, None);
        assert_eq!(config.policy, PolicyConfig::default());
        assert_eq!((config.control_group, config.dns_socket), (None, None));
    }

    #[test]
    fn the_example_file_parses() {
        let config = parse_config(EXAMPLE, path()).unwrap();
        assert_eq!(config.device_number.map(DeviceNumber::get), Some(12));
        assert_eq!(config.button_timing, ButtonTiming::default());
        assert_eq!(config.staff, StaffConfig::default());
        assert_eq!(
            config.display,
            DisplayConfig::Auto {
                socket: "/run/slate-kiosk/wayland-0".into(),
                backlight: Backlight::Auto,
                method: BlankMethod::BlPower
            }
        );
        assert_eq!(config.mute, MuteBackend::Wpctl);
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let text = "device_number = 3\nstate_dir = \"data\"\ncontrol_socket = \"run/c.sock\"\n[server]\nurl = \"https://s\"\n[button]\nsource = \"stdin\"\n";
        let config = parse_config(text, Path::new("/srv/demo/slate.toml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/srv/demo/data"));
        assert_eq!(config.control_socket, PathBuf::from("/srv/demo/run/c.sock"));
    }

    #[test]
    fn keys_by_name_or_number() {
        for (key, code) in
            [("\"KEY_F12\"", 88), ("\"BTN_0\"", 0x100), ("28", 28), ("\"KEY_HELP\"", 138)]
        {
            let text = format!("device_number = 1\n[server]\nurl = \"https://s\"\n[button]\ndevice = \"/dev/input/event0\"\nkey = {key}\n");
            let config = parse_config(&text, path()).unwrap();
            assert_eq!(
                config.button,
                ButtonConfig::Evdev { device: DeviceMatch::path("/dev/input/event0"), key: code },
                "{key}"
            );
        }
    }

    #[test]
    fn bad_fields_are_named_with_the_file() {
        // Each case replaces one line of GOOD (or appends one).
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "device_number = 12",
                "device_number = 0",
                "device_number",
                "0 is not a device number from 1 to 9999",
            ),
            ("device_number = 12", "device_number = 10000", "device_number", "not a device number"),
            (
                "device_number = 12",
                "device_number = \"twelve\"",
                "device_number",
                "expected a whole number, found string",
            ),
            ("device_number = 12", "device_numbr = 12", "device_numbr", "is not a known setting"),
            (
                "school = \"Hillside Primary\"",
                "school = \"Hillside Primary\"\nschol = \"x\"",
                "schol",
                "not a known setting",
            ),
            ("state_dir = \"/var/lib/slate\"", "state_dir = \"\"", "state_dir", "is empty"),
            ("state_dir = \"/var/lib/slate\"", "state_dir = 5", "state_dir", "expected a string"),
            ("url = \"https://school.example:8443/\"", "", "server.url", "is required"),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"school.example\"",
                "server.url",
                "is not a URL",
            ),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"http://school.example\"",
                "server.url",
                "only allowed to a loopback host",
            ),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"http://192.168.1.5:8080\"",
                "server.url",
                "use https",
            ),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"ftp://school.example\"",
                "server.url",
                "is not https",
            ),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"https://u:p@school.example\"",
                "server.url",
                "password",
            ),
            (
                "url = \"https://school.example:8443/\"",
                "url = \"https://school.example/?a=1\"",
                "server.url",
                "query",
            ),
            (
                "enrollment_token = \"tok-123\"",
                "enrollment_token = \"has space\"",
                "server.enrollment_token",
                "printable",
            ),
            (
                "enrollment_token = \"tok-123\"",
                "enrolment_token = \"tok-123\"",
                "server.enrolment_token",
                "not a known setting",
            ),
            ("[server]", "[servr]", "server", "is required"),
            ("retry_min_ms = 250", "retry_min_ms = 0", "upload.retry_min_ms", "0 is not from 10"),
            (
                "retry_max_ms = 10000",
                "retry_max_ms = 100",
                "upload.retry_max_ms",
                "below `upload.retry_min_ms`",
            ),
            (
                "retry_max_ms = 10000",
                "retry_max_ms = 1.5",
                "upload.retry_max_ms",
                "expected a whole number, found float",
            ),
            ("heartbeat_s = 30", "heartbeat_s = 1", "upload.heartbeat_s", "not from 5 to 86400"),
            ("heartbeat_s = 30", "heartbeat = 30", "upload.heartbeat", "not a known setting"),
            ("source = \"evdev\"", "source = \"gpi0\"", "button.source", "\"gpi0\" is not one of"),
            (
                "source = \"evdev\"",
                "source = \"gpio\"",
                "button.gpio_pin",
                "required when `button.source` is \"gpio\"",
            ),
            ("key = \"KEY_F12\"", "gpio_pin = 99", "button.gpio_pin", "not a GPIO number"),
            ("key = \"KEY_F12\"", "active_low = 1", "button.active_low", "expected true or false"),
            ("key = \"KEY_F12\"", "[led]\ngpio_pin = -1", "led.gpio_pin", "not a GPIO number"),
            (
                "device = \"/dev/input/by-path/platform-gpio-keys-event\"",
                "",
                "button.device",
                "required when `button.source` is \"evdev\"",
            ),
            ("key = \"KEY_F12\"", "key = \"F12\"", "button.key", "not a key name"),
            (
                "enrollment_token = \"tok-123\"",
                "public_key = \"bm90IGEga2V5\"",
                "server.public_key",
                "not a base64 Ed25519 public key",
            ),
            (
                "enrollment_token = \"tok-123\"",
                "policy_refresh_s = 5",
                "server.policy_refresh_s",
                "5 is not from 10 to 86400",
            ),
            (
                "school = \"Hillside Primary\"",
                "control_group = \"kiosk users\"",
                "control_group",
                "is not a group name",
            ),
            ("school = \"Hillside Primary\"", "dns_socket = \"\"", "dns_socket", "is empty"),
            ("key = \"KEY_F12\"", "key = 0", "button.key", "not a key code"),
            ("key = \"KEY_F12\"", "key = 70000", "button.key", "not a key code"),
            (
                "key = \"KEY_F12\"",
                "key = true",
                "button.key",
                "expected a key name or number, found boolean",
            ),
            ("[button]", "[buton]", "button", "is required"),
            ("key = \"KEY_F12\"", "debounce_ms = 9000", "button.debounce_ms", "not from 0 to 5000"),
            (
                "key = \"KEY_F12\"",
                "stuck_after_s = 0",
                "button.stuck_after_s",
                "not from 1 to 3600",
            ),
            ("key = \"KEY_F12\"", "vendor = 70000", "button.vendor", "not a USB id"),
            ("key = \"KEY_F12\"", "name = \"\"", "button.name", "1 to 128 characters"),
            (
                "key = \"KEY_F12\"",
                "[staff]\npin_hash = \"1234\"",
                "staff.pin_hash",
                "slatectl hash-pin",
            ),
            (
                "key = \"KEY_F12\"",
                "[staff]\nlockout_s = 600\nlockout_max_s = 60",
                "staff.lockout_max_s",
                "below",
            ),
            (
                "key = \"KEY_F12\"",
                "[staff]\nwrong_pins_before_lockout = 0",
                "staff.wrong_pins_before_lockout",
                "not from 1 to 20",
            ),
            ("key = \"KEY_F12\"", "[staff]\npin = \"1234\"", "staff.pin", "not a known setting"),
            (
                "key = \"KEY_F12\"",
                "[display]\nbackend = \"drm\"",
                "display.backend",
                "\"drm\" is not one of",
            ),
            (
                "key = \"KEY_F12\"",
                "[display]\nbacklight = \"../../etc\"",
                "display.backlight",
                "not \"auto\"",
            ),
            ("key = \"KEY_F12\"", "[display]\nmethod = \"dpms\"", "display.method", "not one of"),
            ("key = \"KEY_F12\"", "[display]\nsession = \"a/b\"", "display.session", "session id"),
            ("key = \"KEY_F12\"", "[audio]\nmute = \"pulse\"", "audio.mute", "not one of"),
            (
                "key = \"KEY_F12\"",
                "[session]\nactivity_devices = \"all\"",
                "session.activity_devices",
                "not \"auto\", \"none\" or a list",
            ),
            (
                "key = \"KEY_F12\"",
                "[session]\nactivity_devices = []",
                "session.activity_devices",
                "0 paths; give 1 to 32",
            ),
            (
                "key = \"KEY_F12\"",
                "[session]\nactivity_devices = [\"\"]",
                "session.activity_devices",
                "not a device path",
            ),
            (
                "key = \"KEY_F12\"",
                "[session]\nactivity_devices = 1",
                "session.activity_devices",
                "expected \"auto\", \"none\" or a list of paths, found integer",
            ),
            (
                "key = \"KEY_F12\"",
                "[session]\nactivity_devices = [\"/dev/input/by-path/platform-gpio-keys-event\"]",
                "session.activity_devices",
                "is the report button's device",
            ),
            ("key = \"KEY_F12\"", "[session]\nidle = 1", "session.idle", "not a known setting"),
            (
                "school = \"Hillside Primary\"",
                "school = [\"a\"]",
                "school",
                "expected a string, found array",
            ),
        ];
        for (from, to, field, reason) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let err = parse_config(&text, path()).expect_err(to);
            let message = err.to_string();
            assert_eq!(err.field(), Some(*field), "{to:?}: {message}");
            assert!(
                message.starts_with(&format!("/etc/slate/slate.toml: field `{field}`: ")),
                "{to:?}: {message}"
            );
            assert!(message.contains(reason), "{to:?}: {message:?} should contain {reason:?}");
        }
    }

    #[test]
    fn the_button_is_found_by_name_or_ids_with_its_timing() {
        let text = "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nname = \"Big Red Button\"\nvendor = 0x1d34\nproduct = 0x000d\ndebounce_ms = 80\nstuck_after_s = 30\n";
        let config = parse_config(text, path()).unwrap();
        assert_eq!(
            config.button,
            ButtonConfig::Evdev {
                device: DeviceMatch {
                    path: None,
                    name: Some("Big Red Button".into()),
                    vendor: Some(0x1d34),
                    product: Some(0x000d),
                },
                key: 88,
            }
        );
        assert_eq!(
            config.button_timing,
            ButtonTiming {
                debounce: Duration::from_millis(80),
                stuck_after: Duration::from_secs(30)
            }
        );
        let rules = config.rules();
        assert_eq!(rules.debounce, Duration::from_millis(80));
        assert!(!rules.pin_in_force);
    }

    #[test]
    fn a_gpio_button_and_led_parse() {
        let text = "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"gpio\"\ngpio_pin = 17\n[led]\ngpio_pin = 27\n";
        let config = parse_config(text, path()).unwrap();
        assert_eq!(config.button, ButtonConfig::Gpio { pin: 17, active_low: true });
        assert_eq!(config.led_pin, Some(27));
        let same = text.replace("gpio_pin = 27", "gpio_pin = 17");
        let err = parse_config(&same, path()).unwrap_err();
        assert_eq!(err.field(), Some("led"));
    }

    #[test]
    fn staff_display_and_audio_sections_parse() {
        let pin = StaffPin::hash("2468").unwrap();
        let text = format!(
            "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n\
             [staff]\npin_hash = \"{}\"\nwrong_pins_before_lockout = 3\nlockout_s = 120\nlockout_max_s = 1800\n\
             [display]\nbackend = \"logind\"\nbacklight = \"10-0045\"\n\
             [audio]\nmute = \"amixer\"\namixer_control = \"PCM\"\n",
            pin.phc()
        );
        let config = parse_config(&text, path()).unwrap();
        assert_eq!(
            config.staff,
            StaffConfig {
                pin: Some(pin),
                lockout: Lockout {
                    wrong_before_lockout: 3,
                    first: Duration::from_secs(120),
                    max: Duration::from_secs(1800),
                },
            }
        );
        assert!(config.rules().pin_in_force);
        assert_eq!(
            config.display,
            DisplayConfig::Logind {
                backlight: Backlight::Named("10-0045".into()),
                session: "auto".into()
            }
        );
        assert_eq!(config.mute, MuteBackend::Amixer { control: "PCM".into() });
        let sysfs = "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n[display]\nbackend = \"sysfs\"\nmethod = \"brightness\"\n[audio]\nmute = \"wpctl\"\n";
        let config = parse_config(sysfs, path()).unwrap();
        assert_eq!(
            config.display,
            DisplayConfig::Sysfs { backlight: Backlight::Auto, method: BlankMethod::Brightness }
        );
        assert_eq!(config.mute, MuteBackend::Wpctl);
    }

    #[test]
    fn the_wayland_display_section_parses_and_is_checked() {
        let base = "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n[display]\nbackend = \"wayland\"\n";
        let good = [
            ("", "/run/slate-kiosk/wayland-0", false),
            ("output_power = true\n", "/run/slate-kiosk/wayland-0", true),
            (
                "runtime_dir = \"/run/user/1000\"\nwayland_display = \"wayland-1\"\n",
                "/run/user/1000/wayland-1",
                false,
            ),
            (
                "wayland_display = \"/tmp/w/wayland-5\"\noutput_power = false\n",
                "/tmp/w/wayland-5",
                false,
            ),
        ];
        for (extra, socket, output_power) in good {
            let config = parse_config(&format!("{base}{extra}"), path()).expect(extra);
            assert_eq!(
                config.display,
                DisplayConfig::Wayland { socket: socket.into(), output_power, backlight: None },
                "{extra}"
            );
        }
        let bad = [
            ("runtime_dir = \"run/user/1000\"\n", "display.runtime_dir", "not an absolute path"),
            ("wayland_display = \"a/b\"\n", "display.wayland_display", "not a socket name"),
            ("wayland_display = \"\"\n", "display.wayland_display", "not a socket name"),
            ("wayland_display = \"..\"\n", "display.wayland_display", "not a socket name"),
            ("output_power = \"yes\"\n", "display.output_power", "expected true or false"),
            ("output_powr = true\n", "display.output_powr", "not a known setting"),
            ("backlight_off = 1\n", "display.backlight_off", "expected true or false"),
        ];
        for (extra, field, reason) in bad {
            let err = parse_config(&format!("{base}{extra}"), path()).expect_err(extra);
            let message = err.to_string();
            assert_eq!(err.field(), Some(field), "{extra:?}: {message}");
            assert!(message.contains(reason), "{extra:?}: {message:?} should contain {reason:?}");
        }
    }

    #[test]
    fn the_overlay_can_be_followed_by_the_backlight() {
        let text = "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n[display]\nbackend = \"wayland\"\nbacklight_off = true\nbacklight = \"10-0045\"\nmethod = \"brightness\"\n";
        let config = parse_config(text, path()).unwrap();
        assert_eq!(
            config.display,
            DisplayConfig::Wayland {
                socket: "/run/slate-kiosk/wayland-0".into(),
                output_power: false,
                backlight: Some((Backlight::Named("10-0045".into()), BlankMethod::Brightness)),
            }
        );
    }

    #[test]
    fn a_section_that_is_not_a_table_is_refused() {
        let text = "device_number = 1\nserver = \"https://s\"\n[button]\nsource = \"none\"\n";
        let message = parse_config(text, path()).unwrap_err().to_string();
        assert_eq!(
            message,
            // The place was added with serde (strictly more precise than before).
            "/etc/slate/slate.toml: field `server`: expected a table `[server]`, found string (line 2, column 10)"
        );
    }

    #[test]
    fn the_message_from_the_brief() {
        let err = parse_config(&GOOD.replace("device_number = 12", "device_number = 0"), path())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            // The place was added with serde (strictly more precise than before).
            "/etc/slate/slate.toml: field `device_number`: 0 is not a device number from 1 to 9999 (line 2, column 17)"
        );
    }

    #[test]
    fn http_is_allowed_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080",
            "http://127.8.9.10",
            "https://10.0.0.2",
        ] {
            assert!(check_server_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.2",
            "http://school.example",
            "http://localhost.evil.example",
            "http://[::2]",
        ] {
            assert!(check_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_that_is_not_toml_gets_line_information() {
        let err = parse_config("device_number = 12\nthis is not toml\n", path()).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("/etc/slate/slate.toml: not a valid TOML file: "), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn read_config_names_the_file_when_it_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let message = read_config(&missing).unwrap_err().to_string();
        assert!(message.starts_with(&format!("{}: cannot read", missing.display())), "{message}");

        let binary = dir.path().join("binary.toml");
        std::fs::write(&binary, b"device_number = 1\n\xff\xfe").unwrap();
        let message = read_config(&binary).unwrap_err().to_string();
        assert!(message.contains("not UTF-8"), "{message}");
    }

    #[test]
    fn secrets_are_hidden_from_debug_output() {
        let config = parse_config(GOOD, path()).unwrap();
        assert!(!format!("{config:?}").contains("tok-123"));
    }

    /// What a refusal says after the path, and where: (field, reason part, line, column).
    fn refusal(text: &str) -> (String, String, Option<(usize, usize)>) {
        let err = parse_config(text, path()).expect_err(text);
        let at = err.location().map(|at| (at.line, at.column));
        (err.field().unwrap_or("").to_owned(), err.to_string(), at)
    }

    #[test]
    fn dotted_keys_quotes_and_inline_tables_read_as_the_plain_form() {
        let plain = parse_config(GOOD, path()).unwrap();
        let dotted = "device_number = 12\nschool = \"Hillside Primary\"\n\
            state_dir = \"/var/lib/slate\"\ncontrol_socket = \"/run/slate/control.sock\"\n\
            server.url = \"https://school.example:8443/\"\nserver.ca_certificate = \"server-ca.pem\"\n\
            server . enrollment_token = \"tok-123\"\n\
            upload.retry_min_ms = 250\nupload.retry_max_ms = 10000\nupload.heartbeat_s = 30\n\
            button.source = \"evdev\"\nbutton.device = \"/dev/input/by-path/platform-gpio-keys-event\"\n\
            button.key = \"KEY_F12\"\n";
        let inline = "device_number = 12\nschool = 'Hillside Primary'\nstate_dir = '/var/lib/slate'\n\
            control_socket = '/run/slate/control.sock'\n\
            server = { url = 'https://school.example:8443/', ca_certificate = 'server-ca.pem', enrollment_token = 'tok-123' }\n\
            upload = { retry_min_ms = 2_50, retry_max_ms = 1_0000, heartbeat_s = 0x1e }\n\
            button = { source = 'evdev', device = '/dev/input/by-path/platform-gpio-keys-event', key = 'KEY_F12' }\n";
        let spellings = [
            ("single quotes", GOOD.replace('"', "'")),
            (
                "quoted keys",
                GOOD.replace("device_number", "\"device_number\"")
                    .replace("[server]", "[ 'server' ]")
                    .replace("url =", "\"url\" ="),
            ),
            ("dotted keys", dotted.to_string()),
            ("inline tables", inline.to_string()),
            (
                "comments and blank lines",
                GOOD.replace('\n', "  # note\n\n").replacen("  # note\n", "\n", 1),
            ),
        ];
        for (what, text) in spellings {
            assert_eq!(parse_config(&text, path()).expect(what), plain, "{what}: {text}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_at_its_line_and_column() {
        let cases = [
            (GOOD.replace("heartbeat_s = 30", "heartbeat = 30"), "upload.heartbeat", (15, 1)),
            (GOOD.replace("school =", "  schol ="), "schol", (3, 3)),
            (GOOD.replace("[button]", "[button]\n'KEY' = 88"), "button.KEY", (18, 1)),
            (
                GOOD.replace("[upload]", "[upload.retry]\nmin = 1\n[upload]"),
                "upload.retry",
                (12, 9),
            ),
            (
                format!("{GOOD}[display]\nbackend = 'auto'\noutput_powr = true\n"),
                "display.output_powr",
                (23, 1),
            ),
            (
                GOOD.replacen("\n[server]", "\naudio = { mute = 'none', volume = 3 }\n[server]", 1),
                "audio.volume",
                (7, 26),
            ),
        ];
        for (text, field, at) in cases {
            let (got, message, got_at) = refusal(&text);
            assert_eq!((got.as_str(), got_at), (field, Some(at)), "{message}");
            assert!(
                message.contains("is not a known setting here; the known ones are: "),
                "{message}"
            );
        }
        let (_, message, _) = refusal(&GOOD.replace("heartbeat_s = 30", "heartbeat = 30"));
        assert_eq!(
            message,
            "/etc/slate/slate.toml: field `upload.heartbeat`: is not a known setting here; \
             the known ones are: retry_min_ms, retry_max_ms, heartbeat_s (line 15, column 1)"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_at_its_line_and_column() {
        let cases = [
            (
                "device_number = 12",
                "device_number = \"12\"",
                "device_number",
                "expected a whole number, found string",
                (2, 17),
            ),
            (
                "state_dir = \"/var/lib/slate\"",
                "state_dir = 5",
                "state_dir",
                "expected a string, found integer",
                (4, 13),
            ),
            (
                "retry_max_ms = 10000",
                "retry_max_ms = 1e4",
                "upload.retry_max_ms",
                "expected a whole number, found float",
                (14, 16),
            ),
            (
                "key = \"KEY_F12\"",
                "active_low = 'yes'",
                "button.active_low",
                "expected true or false, found string",
                (20, 14),
            ),
            (
                "key = \"KEY_F12\"",
                "key = 1979-05-27",
                "button.key",
                "expected a key name or number, found datetime",
                (20, 7),
            ),
            (
                "key = \"KEY_F12\"",
                "key = [88]",
                "button.key",
                "expected a key name or number, found array",
                (20, 7),
            ),
            (
                "state_dir = \"/var/lib/slate\"",
                "staff = 'none'",
                "staff",
                "expected a table `[staff]`, found string",
                (4, 9),
            ),
            (
                "state_dir = \"/var/lib/slate\"",
                "led = 1979-05-27",
                "led",
                "expected a table `[led]`, found datetime",
                (4, 7),
            ),
            (
                "state_dir = \"/var/lib/slate\"",
                "session.activity_devices = true",
                "session.activity_devices",
                "found boolean",
                (4, 28),
            ),
        ];
        for (from, to, field, reason, at) in cases {
            assert!(GOOD.contains(from), "{from}");
            let (got, message, got_at) = refusal(&GOOD.replacen(from, to, 1));
            assert_eq!((got.as_str(), got_at), (field, Some(at)), "{to}: {message}");
            assert!(message.contains(reason), "{to}: {message}");
        }
    }

    #[test]
    fn a_number_out_of_its_range_is_refused_at_its_line_and_column() {
        let base =
            "device_number = 1\n[server]\nurl = \"https://s\"\n[button]\nsource = \"none\"\n";
        // (table, key, lowest, highest, what the refusal says)
        let ranges: &[(&str, &str, i64, i64, &str)] = &[
            ("", "device_number", 1, 9999, "is not a device number from 1 to 9999"),
            ("server", "policy_refresh_s", 10, 86_400, "is not from 10 to 86400 seconds"),
            ("upload", "retry_min_ms", 10, 3_600_000, "is not from 10 to 3600000 milliseconds"),
            ("upload", "retry_max_ms", 10, 3_600_000, "is not from 10 to 3600000 milliseconds"),
            ("upload", "heartbeat_s", 5, 86_400, "is not from 5 to 86400 seconds"),
            ("button", "vendor", 0, 0xffff, "is not a USB id from 0 to 0xffff"),
            ("button", "product", 0, 0xffff, "is not a USB id from 0 to 0xffff"),
            ("button", "key", 1, 767, "is not a key code from 1 to 767"),
            ("button", "gpio_pin", 0, 53, "is not a GPIO number from 0 to 53"),
            ("button", "debounce_ms", 0, 5_000, "is not from 0 to 5000 milliseconds"),
            ("button", "stuck_after_s", 1, 3_600, "is not from 1 to 3600 seconds"),
            ("staff", "wrong_pins_before_lockout", 1, 20, "is not from 1 to 20"),
            ("staff", "lockout_s", 1, 86_400, "is not from 1 to 86400 seconds"),
            ("staff", "lockout_max_s", 1, 86_400, "is not from 1 to 86400 seconds"),
            ("led", "gpio_pin", 0, 53, "is not a GPIO number from 0 to 53"),
        ];
        for &(table, key, lo, hi, says) in ranges {
            let text = |n: i64| {
                let line = format!("{key} = {n}");
                match table {
                    "" => base.replacen("device_number = 1", &line, 1),
                    _ if base.contains(&format!("[{table}]\n")) => {
                        base.replacen(&format!("[{table}]\n"), &format!("[{table}]\n{line}\n"), 1)
                    }
                    _ => format!("{base}[{table}]\n{line}\n"),
                }
            };
            let field = if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") };
            for n in [lo - 1, hi + 1, i64::MIN, i64::MAX] {
                let text = text(n);
                let line = text.lines().position(|l| l.starts_with(&format!("{key} = "))).unwrap();
                let (got, message, at) = refusal(&text);
                assert_eq!(got, field, "{n}: {message}");
                assert!(
                    message.contains(&format!("`: {n} {says} (line {}", line + 1)),
                    "{message}"
                );
                assert_eq!(at, Some((line + 1, key.len() + 4)), "{message}");
            }
            for n in [lo, hi] {
                // An edge may still clash with another setting's default, never with its range.
                if let Err(e) = parse_config(&text(n), path()) {
                    assert!(!e.to_string().contains(" is not "), "{field} = {n}: {e}");
                }
            }
        }
    }

    #[test]
    fn a_missing_setting_is_placed_at_its_table() {
        let text =
            "device_number = 1\n\n[server]\nca_certificate = 'ca.pem'\n[button]\nsource = 'none'\n";
        assert_eq!(refusal(text).2, Some((3, 1)), "server.url: at `[server]`");
        let text = "device_number = 1\nserver.url = 'https://s'\n[button]\nsource = 'gpio'\n";
        let (field, message, at) = refusal(text);
        assert_eq!((field.as_str(), at), ("button.gpio_pin", Some((3, 1))), "{message}");
        // Nothing to point at: the file has no such table.
        let (field, _, at) = refusal("device_number = 1\nserver.url = 'https://s'\n");
        assert_eq!((field.as_str(), at), ("button", None));
    }

    #[test]
    fn the_used_token_goes_however_it_is_spelled_and_nothing_else() {
        let cases = [
            (
                "device_number = 1\n# IT's token:\nserver.enrollment_token = 'tok-1'  # once\nserver.url = 'https://s'\n",
                "device_number = 1\n# IT's token:\nserver.url = 'https://s'\n",
            ),
            ("[server]\nurl = 'https://s'\n'enrollment_token' = 'tok-1'", "[server]\nurl = 'https://s'\n"),
            ("[server]\n\"enrollment_token\" = \"tok-1\"\nurl = 'https://s'\n", "[server]\nurl = 'https://s'\n"),
            ("[server]\r\nenrollment_token = 'tok-1'\r\nurl = 'https://s'\r\n", "[server]\r\nurl = 'https://s'\r\n"),
            (
                "[server]\nenrollment_token = \"\"\"\ntok-1\"\"\"\nurl = 'https://s'\n",
                "[server]\nurl = 'https://s'\n",
            ),
            (
                "# the server\nserver = { url = 'https://s', enrollment_token = 'tok-1' } # here\n[button]\n",
                "# the server\nserver = { url = 'https://s' } # here\n[button]\n",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(without_enrollment_token(text).as_deref(), Some(want), "{text:?}");
            assert!(same_config(text, want) && same_config(text, text), "{text:?}");
            assert!(!same_config(want, text), "a token the card lacks is no copy of it");
        }
        for none in
            ["[server]\nurl = 'https://s'\n", "[button]\nenrollment_token = 'x'\n", "not toml ["]
        {
            assert_eq!(without_enrollment_token(none), None, "{none}");
        }
        let card = "device_number = 1\n[server]\nenrollment_token = 'tok-1'\n";
        assert!(same_config(card, "device_number = 1\n[server]\n"));
        assert!(!same_config(card, "device_number = 2\n[server]\n"));
        assert!(!same_config(card, "device_number = 1\n[server]\nenrollment_token = 'tok-2'\n"));
    }

    #[test]
    fn a_value_is_read_as_written_for_the_provisioning_script() {
        let text = "server.url = 'https://s/'\n[button]\nsource = \"none\"\nkey = 0x58\n";
        let value = |key| value_as_written(text, path(), key).unwrap();
        assert_eq!(value("server.url").as_deref(), Some("https://s/"));
        assert_eq!(value("button.source").as_deref(), Some("none"));
        assert_eq!(value("button.key").as_deref(), Some("88"));
        assert_eq!(value("server.public_key"), None);
        assert_eq!(value("button.source.x"), None);
        assert_eq!(value("device_number"), None);
        let err = value_as_written("[server\n", path(), "server.url").unwrap_err();
        assert!(
            err.to_string().starts_with("/etc/slate/slate.toml: not a valid TOML file"),
            "{err}"
        );
    }
}
