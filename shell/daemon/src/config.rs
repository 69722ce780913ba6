//! The device's configuration file (`/etc/slate/slate.toml`): its fields, defaults and checks.
//! [`parse_config`] is pure and must not touch the file system; [`read_config`] only reads.
//!
//! Every refusal names the file and the field, e.g.
//! ``/etc/slate/slate.toml: field `device_number`: 0 is not a device number from 1 to 9999``, and
//! unknown fields are refused: a typo on an SD card must not pass silently. Relative paths in the
//! file are taken relative to the directory that holds the file, never to the working directory.
//!
//! ```toml
#![doc = include_str!("../slate.example.toml")]
//! ```

use crate::activity::ActivityDevices;
use crate::apps::MuteBackend;
use crate::button::DeviceMatch;
use crate::core::{Lockout, Rules};
use crate::staff::StaffPin;
use slate_protocol::DeviceNumber;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

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

/// Why the configuration was refused. Each message starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a valid TOML file: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field { path: PathBuf, field: String, reason: String },
}

impl ConfigError {
    /// The offending field, for errors about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            _ => None,
        }
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
    /// The number painted on the case.
    pub device_number: DeviceNumber,
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

/// Reads and parses the file at `path`.
pub fn read_config(path: &Path) -> Result<Config, ConfigError> {
    let read_err = |source| ConfigError::Read { path: path.to_owned(), source };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::Syntax {
            path: path.to_owned(),
            message: format!("{} bytes is too large for a configuration file", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: format!("not UTF-8 text (bad byte at offset {})", e.utf8_error().valid_up_to()),
    })?;
    parse_config(&text, path)
}

/// Parses the text of a configuration file; `path` is for messages and for resolving relative
/// paths. Pure.
pub fn parse_config(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut top = Fields::new(path, "", table);

    let device_number = {
        let n = top.required_integer("device_number")?;
        u32::try_from(n).ok().and_then(|n| DeviceNumber::new(n).ok()).ok_or_else(|| {
            top.error(
                "device_number",
                format!("{n} is not a device number from 1 to {}", DeviceNumber::MAX),
            )
        })?
    };
    let school = match top.string("school")? {
        Some(s) if s.len() > 128 || s.chars().any(char::is_control) => {
            return Err(top.error("school", "must be at most 128 characters on one line"));
        }
        other => other,
    };
    let state_dir = top.path("state_dir", base)?.unwrap_or_else(|| DEFAULT_STATE_DIR.into());
    let control_socket =
        top.path("control_socket", base)?.unwrap_or_else(|| DEFAULT_CONTROL_SOCKET.into());

    let control_group = match top.string("control_group")? {
        Some(g)
            if g.is_empty()
                || g.len() > 32
                || !g.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                || g.starts_with('-') =>
        {
            return Err(top.error("control_group", format!("{g:?} is not a group name")));
        }
        g => g,
    };
    let dns_socket = top.path("dns_socket", base)?;

    let mut server = top.required_table("server")?;
    let url = server.required_string("url")?;
    let url = check_server_url(&url).map_err(|reason| server.error("url", reason))?;
    let ca_certificate = server.path("ca_certificate", base)?;
    let enrollment_token = match server.string("enrollment_token")? {
        Some(t) if t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_graphic()) => {
            return Err(server.error(
                "enrollment_token",
                "must be 1 to 128 printable characters without spaces",
            ));
        }
        t => t.map(Secret),
    };
    let public_key = match server.string("public_key")? {
        None => None,
        Some(text) => {
            Some(slate_protocol::bundle::verifying_key_from_base64(&text).map_err(|_| {
                server.error("public_key", "is not a base64 Ed25519 public key (32 bytes)")
            })?)
        }
    };
    let refresh = match server.integer("policy_refresh_s")? {
        None => PolicyConfig::default().refresh,
        Some(s) if (10..=86_400).contains(&s) => Duration::from_secs(s as u64),
        Some(s) => {
            return Err(
                server.error("policy_refresh_s", format!("{s} is not from 10 to 86400 seconds"))
            )
        }
    };
    let policy = PolicyConfig { public_key, refresh };
    server.finish(&[
        "url",
        "ca_certificate",
        "enrollment_token",
        "public_key",
        "policy_refresh_s",
    ])?;
    let server = ServerConfig { url, ca_certificate, enrollment_token };

    let defaults = UploadConfig::default();
    let upload = match top.table("upload")? {
        None => defaults,
        Some(mut t) => {
            let ms = |t: &Fields, key: &str, v: Option<i64>, default: Duration| match v {
                None => Ok(default),
                Some(v) if (10..=3_600_000).contains(&v) => Ok(Duration::from_millis(v as u64)),
                Some(v) => Err(t.error(key, format!("{v} is not from 10 to 3600000 milliseconds"))),
            };
            let min_raw = t.integer("retry_min_ms")?;
            let retry_min = ms(&t, "retry_min_ms", min_raw, defaults.retry_min)?;
            let max_raw = t.integer("retry_max_ms")?;
            let retry_max = ms(&t, "retry_max_ms", max_raw, defaults.retry_max)?;
            if retry_max < retry_min {
                return Err(t.error(
                    "retry_max_ms",
                    format!(
                        "{} is below `upload.retry_min_ms` ({})",
                        retry_max.as_millis(),
                        retry_min.as_millis()
                    ),
                ));
            }
            let heartbeat = match t.integer("heartbeat_s")? {
                None => defaults.heartbeat,
                Some(s) if (5..=86_400).contains(&s) => Duration::from_secs(s as u64),
                Some(s) => {
                    return Err(
                        t.error("heartbeat_s", format!("{s} is not from 5 to 86400 seconds"))
                    )
                }
            };
            t.finish(&["retry_min_ms", "retry_max_ms", "heartbeat_s"])?;
            UploadConfig { retry_min, retry_max, heartbeat }
        }
    };

    let mut button_timing = ButtonTiming::default();
    let button = match top.table("button")? {
        // The report button is the point of the device: it is never off by default.
        None => {
            return Err(top.error("button", "is required (a `source` and, for evdev, a `device`)"))
        }
        Some(mut t) => {
            let source = t.string("source")?.unwrap_or_else(|| "evdev".into());
            let path = t.path("device", base)?;
            let name = match t.string("name")? {
                Some(n) if n.is_empty() || n.len() > 128 || n.chars().any(char::is_control) => {
                    return Err(t.error("name", "must be 1 to 128 characters on one line"))
                }
                n => n,
            };
            let id = |t: &mut Fields, key: &str| match t.integer(key)? {
                None => Ok(None),
                Some(n) => u16::try_from(n)
                    .map(Some)
                    .map_err(|_| t.error(key, format!("{n} is not a USB id from 0 to 0xffff"))),
            };
            let vendor = id(&mut t, "vendor")?;
            let product = id(&mut t, "product")?;
            let key = match t.take("key") {
                None => DEFAULT_BUTTON_KEY,
                Some(toml::Value::Integer(n)) => match u16::try_from(n) {
                    Ok(n) if (1..=KEY_MAX).contains(&n) => n,
                    _ => {
                        return Err(
                            t.error("key", format!("{n} is not a key code from 1 to {KEY_MAX}"))
                        )
                    }
                },
                Some(toml::Value::String(name)) => match evdev::KeyCode::from_str(&name) {
                    Ok(code) => code.code(),
                    Err(_) => {
                        return Err(t.error(
                            "key",
                            format!("{name:?} is not a key name like \"KEY_F12\" or \"BTN_0\""),
                        ))
                    }
                },
                Some(other) => {
                    return Err(t.error(
                        "key",
                        format!("expected a key name or number, found {}", other.type_str()),
                    ))
                }
            };
            let gpio_pin = match t.integer("gpio_pin")? {
                None => None,
                Some(n) if (0..=53).contains(&n) => Some(n as u8),
                Some(n) => {
                    return Err(
                        t.error("gpio_pin", format!("{n} is not a GPIO number from 0 to 53"))
                    )
                }
            };
            let active_low = match t.take("active_low") {
                None => true,
                Some(toml::Value::Boolean(b)) => b,
                Some(other) => return Err(t.wrong_type("active_low", "true or false", &other)),
            };
            if let Some(ms) = t.integer("debounce_ms")? {
                if !(0..=5_000).contains(&ms) {
                    return Err(t.error("debounce_ms", format!("{ms} is not from 0 to 5000")));
                }
                button_timing.debounce = Duration::from_millis(ms as u64);
            }
            if let Some(s) = t.integer("stuck_after_s")? {
                if !(1..=3_600).contains(&s) {
                    return Err(t.error("stuck_after_s", format!("{s} is not from 1 to 3600")));
                }
                button_timing.stuck_after = Duration::from_secs(s as u64);
            }
            t.finish(&[
                "source",
                "device",
                "name",
                "vendor",
                "product",
                "key",
                "gpio_pin",
                "active_low",
                "debounce_ms",
                "stuck_after_s",
            ])?;
            match source.as_str() {
                "evdev" => {
                    if path.is_none() && name.is_none() && vendor.is_none() && product.is_none() {
                        return Err(t.error(
                            "device",
                            "is required when `button.source` is \"evdev\" (or give `name`, `vendor`/`product`)",
                        ));
                    }
                    ButtonConfig::Evdev { device: DeviceMatch { path, name, vendor, product }, key }
                }
                "gpio" => ButtonConfig::Gpio {
                    pin: gpio_pin.ok_or_else(|| {
                        t.error("gpio_pin", "is required when `button.source` is \"gpio\"")
                    })?,
                    active_low,
                },
                "stdin" => ButtonConfig::Stdin,
                "none" => ButtonConfig::None,
                other => {
                    return Err(t.error(
                        "source",
                        format!("{other:?} is not one of \"evdev\", \"gpio\", \"stdin\", \"none\""),
                    ))
                }
            }
        }
    };

    let staff = match top.table("staff")? {
        None => StaffConfig::default(),
        Some(mut t) => {
            let pin = match t.string("pin_hash")? {
                None => None,
                Some(phc) => Some(StaffPin::from_phc(&phc).map_err(|e| {
                    t.error("pin_hash", format!("{e}; make one with `slatectl hash-pin`"))
                })?),
            };
            let mut lockout = Lockout::default();
            if let Some(n) = t.integer("wrong_pins_before_lockout")? {
                if !(1..=20).contains(&n) {
                    return Err(
                        t.error("wrong_pins_before_lockout", format!("{n} is not from 1 to 20"))
                    );
                }
                lockout.wrong_before_lockout = n as u32;
            }
            if let Some(s) = t.integer("lockout_s")? {
                if !(1..=86_400).contains(&s) {
                    return Err(t.error("lockout_s", format!("{s} is not from 1 to 86400 seconds")));
                }
                lockout.first = Duration::from_secs(s as u64);
            }
            if let Some(s) = t.integer("lockout_max_s")? {
                if !(1..=86_400).contains(&s) {
                    return Err(
                        t.error("lockout_max_s", format!("{s} is not from 1 to 86400 seconds"))
                    );
                }
                lockout.max = Duration::from_secs(s as u64);
            }
            if lockout.max < lockout.first {
                return Err(t.error("lockout_max_s", "is below `staff.lockout_s`"));
            }
            t.finish(&["pin_hash", "wrong_pins_before_lockout", "lockout_s", "lockout_max_s"])?;
            StaffConfig { pin, lockout }
        }
    };

    let display = match top.table("display")? {
        None => DisplayConfig::Auto {
            socket: slate_wayland::Settings::socket_path(
                Path::new(DEFAULT_WAYLAND_RUNTIME_DIR),
                DEFAULT_WAYLAND_DISPLAY,
            ),
            backlight: Backlight::Auto,
            method: BlankMethod::BlPower,
        },
        Some(mut t) => {
            let backend = t.string("backend")?.unwrap_or_else(|| "auto".into());
            let backlight = match t.string("backlight")? {
                None => Backlight::Auto,
                Some(b) if b == "auto" => Backlight::Auto,
                Some(b) if !b.is_empty() && !b.contains(['/', '\0']) && b != "." && b != ".." => {
                    Backlight::Named(b)
                }
                Some(b) => {
                    return Err(t.error(
                        "backlight",
                        format!("{b:?} is not \"auto\" or a name under /sys/class/backlight"),
                    ))
                }
            };
            let method = match t.string("method")?.as_deref() {
                None | Some("bl_power") => BlankMethod::BlPower,
                Some("brightness") => BlankMethod::Brightness,
                Some(other) => {
                    return Err(t.error(
                        "method",
                        format!("{other:?} is not one of \"bl_power\", \"brightness\""),
                    ))
                }
            };
            let session = t.string("session")?.unwrap_or_else(|| "auto".into());
            if session.is_empty()
                || !session.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(t.error("session", "must be \"auto\" or a logind session id"));
            }
            let runtime_dir = match t.string("runtime_dir")? {
                None => PathBuf::from(DEFAULT_WAYLAND_RUNTIME_DIR),
                Some(d) if d.starts_with('/') && !d.contains('\0') => PathBuf::from(d),
                Some(d) => {
                    return Err(t.error("runtime_dir", format!("{d:?} is not an absolute path")))
                }
            };
            let wayland_display =
                t.string("wayland_display")?.unwrap_or_else(|| DEFAULT_WAYLAND_DISPLAY.into());
            let plain_name = !wayland_display.is_empty()
                && wayland_display.len() <= 64
                && !wayland_display.contains(['/', '\0'])
                && wayland_display != "."
                && wayland_display != "..";
            let absolute = wayland_display.starts_with('/') && !wayland_display.contains('\0');
            if !plain_name && !absolute {
                return Err(t.error(
                    "wayland_display",
                    format!(
                        "{wayland_display:?} is not a socket name (\"wayland-0\") or an absolute path"
                    ),
                ));
            }
            let output_power = match t.take("output_power") {
                None => false,
                Some(toml::Value::Boolean(b)) => b,
                Some(other) => return Err(t.wrong_type("output_power", "true or false", &other)),
            };
            let backlight_off = match t.take("backlight_off") {
                None => false,
                Some(toml::Value::Boolean(b)) => b,
                Some(other) => return Err(t.wrong_type("backlight_off", "true or false", &other)),
            };
            t.finish(&[
                "backend",
                "backlight",
                "method",
                "session",
                "wayland_display",
                "runtime_dir",
                "output_power",
                "backlight_off",
            ])?;
            match backend.as_str() {
                "auto" => DisplayConfig::Auto {
                    socket: slate_wayland::Settings::socket_path(&runtime_dir, &wayland_display),
                    backlight,
                    method,
                },
                "none" => DisplayConfig::Logging,
                "sysfs" => DisplayConfig::Sysfs { backlight, method },
                "logind" => DisplayConfig::Logind { backlight, session },
                "wayland" => DisplayConfig::Wayland {
                    socket: slate_wayland::Settings::socket_path(&runtime_dir, &wayland_display),
                    output_power,
                    backlight: backlight_off.then_some((backlight, method)),
                },
                other => {
                    return Err(t.error(
                        "backend",
                        format!(
                            "{other:?} is not one of \"auto\", \"none\", \"sysfs\", \"logind\", \"wayland\""
                        ),
                    ))
                }
            }
        }
    };

    let mute = match top.table("audio")? {
        None => MuteBackend::None,
        Some(mut t) => {
            let mute = t.string("mute")?.unwrap_or_else(|| "none".into());
            let control = t.string("amixer_control")?.unwrap_or_else(|| "Master".into());
            if control.is_empty() || control.len() > 64 || control.chars().any(char::is_control) {
                return Err(t.error("amixer_control", "must be 1 to 64 characters on one line"));
            }
            t.finish(&["mute", "amixer_control"])?;
            match mute.as_str() {
                "wpctl" => MuteBackend::Wpctl,
                "amixer" => MuteBackend::Amixer { control },
                "none" => MuteBackend::None,
                other => {
                    return Err(t.error(
                        "mute",
                        format!("{other:?} is not one of \"wpctl\", \"amixer\", \"none\""),
                    ))
                }
            }
        }
    };

    let led_pin = match top.table("led")? {
        None => None,
        Some(mut t) => {
            let pin = match t.integer("gpio_pin")? {
                None => None,
                Some(n) if (0..=53).contains(&n) => Some(n as u8),
                Some(n) => {
                    return Err(
                        t.error("gpio_pin", format!("{n} is not a GPIO number from 0 to 53"))
                    )
                }
            };
            t.finish(&["gpio_pin"])?;
            pin
        }
    };
    if let (ButtonConfig::Gpio { pin, .. }, Some(led)) = (&button, led_pin) {
        if *pin == led {
            return Err(top.error("led", format!("`gpio_pin` {led} is the button's pin")));
        }
    }

    let activity_devices = match top.table("session")? {
        None => ActivityDevices::Auto,
        Some(mut t) => {
            let key = "activity_devices";
            let devices = match t.take(key) {
                None => ActivityDevices::Auto,
                Some(toml::Value::String(s)) if s == "auto" => ActivityDevices::Auto,
                Some(toml::Value::String(s)) if s == "none" => ActivityDevices::None,
                Some(toml::Value::Array(items)) if (1..=32).contains(&items.len()) => {
                    let mut paths = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(p) if !p.is_empty() && !p.contains('\0') => {
                                paths.push(base.join(p))
                            }
                            other => {
                                return Err(t.error(
                                    key,
                                    format!(
                                        "{other} is not a device path like \"/dev/input/event1\""
                                    ),
                                ))
                            }
                        }
                    }
                    if let ButtonConfig::Evdev {
                        device: DeviceMatch { path: Some(b), .. }, ..
                    } = &button
                    {
                        if paths.contains(b) {
                            return Err(t.error(
                                key,
                                format!("{} is the report button's device", b.display()),
                            ));
                        }
                    }
                    ActivityDevices::Paths(paths)
                }
                Some(toml::Value::Array(items)) => {
                    return Err(t.error(key, format!("{} paths; give 1 to 32", items.len())))
                }
                Some(toml::Value::String(s)) => {
                    return Err(t.error(
                        key,
                        format!("{s:?} is not \"auto\", \"none\" or a list of device paths"),
                    ))
                }
                Some(other) => {
                    return Err(t.wrong_type(key, "\"auto\", \"none\" or a list of paths", &other))
                }
            };
            t.finish(&[key])?;
            devices
        }
    };

    top.finish(&[
        "device_number",
        "school",
        "state_dir",
        "control_socket",
        "server",
        "upload",
        "button",
        "staff",
        "display",
        "audio",
        "led",
        "session",
        "control_group",
        "dns_socket",
    ])?;
    Ok(Config {
        device_number,
        school,
        state_dir,
        control_socket,
        server,
        upload,
        button,
        button_timing,
        staff,
        display,
        mute,
        led_pin,
        control_group,
        dns_socket,
        policy,
        activity_devices,
        source: path.to_owned(),
    })
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

/// The configuration text without its `[server] enrollment_token = …` line (a used token must
/// not stay on the SD card); every other line and comment is kept as it was. `None` when there
/// is no such line. Pure.
pub fn without_enrollment_token(text: &str) -> Option<String> {
    let mut table = String::new();
    let mut removed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            table = trimmed
                .trim_start_matches('[')
                .split([']', '#'])
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
        }
        let key = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
        if table == "server" && trimmed.contains('=') && key == "enrollment_token" {
            removed = true;
            continue;
        }
        out.push_str(line);
    }
    removed.then_some(out)
}

/// Removes the used enrollment token from the configuration file at `path`, atomically (a
/// temporary file beside it, fsync'd, renamed over; its permissions kept).
pub fn remove_enrollment_token(path: &Path) -> std::io::Result<bool> {
    let text = std::fs::read_to_string(path)?;
    let Some(new) = without_enrollment_token(&text) else { return Ok(false) };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let perms = std::fs::metadata(path)?.permissions();
    let result = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(new.as_bytes())?;
        file.set_permissions(perms)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| true)
}

/// One TOML table being taken apart field by field; what is left at the end is unknown.
struct Fields<'a> {
    file: &'a Path,
    prefix: String,
    items: toml::Table,
}

impl<'a> Fields<'a> {
    fn new(file: &'a Path, prefix: &str, items: toml::Table) -> Self {
        Self { file, prefix: prefix.to_owned(), items }
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            path: self.file.to_owned(),
            field: self.name(key),
            reason: reason.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.items.remove(key)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &toml::Value) -> ConfigError {
        self.error(key, format!("expected {expected}, found {}", found.type_str()))
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", &other)),
        }
    }

    fn required_string(&mut self, key: &str) -> Result<String, ConfigError> {
        self.string(key)?.ok_or_else(|| self.error(key, "is required"))
    }

    fn integer(&mut self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(n)),
            Some(other) => Err(self.wrong_type(key, "a whole number", &other)),
        }
    }

    fn required_integer(&mut self, key: &str) -> Result<i64, ConfigError> {
        self.integer(key)?.ok_or_else(|| self.error(key, "is required"))
    }

    fn path(&mut self, key: &str, base: &Path) -> Result<Option<PathBuf>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Err(self.error(key, "is empty")),
            Some(s) if s.contains('\0') => Err(self.error(key, "contains a NUL byte")),
            Some(s) => Ok(Some(base.join(s))),
        }
    }

    fn table(&mut self, key: &str) -> Result<Option<Fields<'a>>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(Fields::new(self.file, &self.name(key), t))),
            Some(other) => {
                Err(self.wrong_type(key, &format!("a table `[{}]`", self.name(key)), &other))
            }
        }
    }

    fn required_table(&mut self, key: &str) -> Result<Fields<'a>, ConfigError> {
        self.table(key)?.ok_or_else(|| self.error(key, format!("is required (a `[{key}]` table)")))
    }

    /// Refuses any field not taken.
    fn finish(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.items.keys().next() {
            None => Ok(()),
            Some(key) => Err(self.error(
                key,
                format!("is not a known setting here; the known ones are: {}", known.join(", ")),
            )),
        }
    }
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
                device_number: DeviceNumber::new(12).unwrap(),
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
            config.server.endpoint("/api/v1/events"),
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
        assert_eq!(config.device_number.get(), 12);
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
            ("device_number = 12", "", "device_number", "is required"),
            ("device_number = 12", "device_numbr = 12", "device_number", "is required"),
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
            "/etc/slate/slate.toml: field `server`: expected a table `[server]`, found string"
        );
    }

    #[test]
    fn the_message_from_the_brief() {
        let err = parse_config(&GOOD.replace("device_number = 12", "device_number = 0"), path())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/slate/slate.toml: field `device_number`: 0 is not a device number from 1 to 9999"
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
}
