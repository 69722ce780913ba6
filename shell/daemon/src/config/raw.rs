//! `slate.toml` as serde reads it: one struct per table, unknown fields refused, and every field
//! a setting type that checks its own value as it is read. A refusal there comes back from serde
//! with the field's dotted name (`serde_path_to_error`) and its place in the file (toml's span),
//! so no check here has to say where it is. What needs more than one field (a setting required
//! by another, defaults, paths relative to the file) is [`super::validate`]'s.
//!
//! The fields are declared in the order the refusal of an unknown one lists them.

use super::{check_server_url, Backlight, BlankMethod, Secret, KEY_MAX};
use crate::staff::StaffPin;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use slate_protocol::DeviceNumber;
use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use toml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub device_number: Option<DeviceNo>,
    pub school: Option<School>,
    pub state_dir: Option<FilePath>,
    pub control_socket: Option<FilePath>,
    pub server: Option<Section<RawServer>>,
    #[serde(default)]
    pub upload: Section<RawUpload>,
    pub button: Option<Section<RawButton>>,
    #[serde(default)]
    pub staff: Section<RawStaff>,
    #[serde(default)]
    pub display: Section<RawDisplay>,
    #[serde(default)]
    pub audio: Section<RawAudio>,
    #[serde(default)]
    pub led: Section<RawLed>,
    #[serde(default)]
    pub session: Section<RawSession>,
    pub control_group: Option<GroupName>,
    pub dns_socket: Option<FilePath>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub url: Option<ServerUrl>,
    pub ca_certificate: Option<FilePath>,
    pub enrollment_token: Option<Token>,
    pub public_key: Option<PublicKey>,
    pub policy_refresh_s: Option<Secs<10, 86_400>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpload {
    pub retry_min_ms: Option<Millis<10, 3_600_000>>,
    pub retry_max_ms: Option<Millis<10, 3_600_000>>,
    pub heartbeat_s: Option<Secs<5, 86_400>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawButton {
    pub source: Option<Source>,
    pub device: Option<FilePath>,
    pub name: Option<DeviceName>,
    pub vendor: Option<UsbId>,
    pub product: Option<UsbId>,
    pub key: Option<KeyCode>,
    pub gpio_pin: Option<GpioPin>,
    pub active_low: Option<Flag>,
    pub debounce_ms: Option<Millis<0, 5_000>>,
    pub stuck_after_s: Option<Secs<1, 3_600>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaff {
    pub pin_hash: Option<PinHash>,
    pub wrong_pins_before_lockout: Option<WrongPins>,
    pub lockout_s: Option<Secs<1, 86_400>>,
    pub lockout_max_s: Option<Secs<1, 86_400>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDisplay {
    pub backend: Option<Backend>,
    pub backlight: Option<BacklightName>,
    pub method: Option<Method>,
    pub session: Option<SessionId>,
    pub wayland_display: Option<WaylandDisplay>,
    pub runtime_dir: Option<RuntimeDir>,
    pub output_power: Option<Flag>,
    pub backlight_off: Option<Flag>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudio {
    pub mute: Option<Mute>,
    pub amixer_control: Option<MixerControl>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLed {
    pub gpio_pin: Option<GpioPin>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub activity_devices: Option<Activity>,
}

/// The name of a table in messages (`[server]`).
pub(super) trait TableName {
    const NAME: &'static str;
}

macro_rules! table_names {
    ($($raw:ty = $name:literal),* $(,)?) => {$(
        impl TableName for $raw {
            const NAME: &'static str = $name;
        }
    )*};
}

table_names! {
    RawServer = "server", RawUpload = "upload", RawButton = "button", RawStaff = "staff",
    RawDisplay = "display", RawAudio = "audio", RawLed = "led", RawSession = "session",
}

/// A table (`[server]`); any other value is refused as "expected a table `[server]`, found
/// string".
#[derive(Default)]
pub(super) struct Section<T>(pub T);

impl<'de, T: TableName + Deserialize<'de>> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SectionVisitor(PhantomData))
    }
}

struct SectionVisitor<T>(PhantomData<T>);

impl<T: TableName> SectionVisitor<T> {
    fn found<E: de::Error>(&self, kind: &str) -> E {
        E::custom(format!("expected a table `[{}]`, found {kind}", T::NAME))
    }
}

impl<'de, T: TableName + Deserialize<'de>> Visitor<'de> for SectionVisitor<T> {
    type Value = Section<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a table `[{}]`", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Section)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.found("string"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.found("integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.found("integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.found("float"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.found("boolean"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.found("array"))
    }
}

/// Settings made from one TOML value each: `Name(Type): |value| check` (a `Result<Type,
/// String>`, the message without the field's name, which serde adds).
macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident($ty:ty): |$v:ident| $check:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Deserialize)]
        #[serde(try_from = "Value")]
        pub(super) struct $name(pub $ty);

        impl TryFrom<Value> for $name {
            type Error = String;
            fn try_from($v: Value) -> Result<Self, String> {
                $check.map($name)
            }
        }
    )*};
}

settings! {
    DeviceNo(DeviceNumber): |v| {
        in_range(int(v)?, 1..=DeviceNumber::MAX.into(), "a device number", "")
            .and_then(|n| DeviceNumber::new(n).map_err(|e| e.to_string()))
    };
    /// For people reading the file and the logs.
    School(String): |v| one_line(text(v)?, 0..=128, "must be at most 128 characters on one line");
    /// A path, relative to the file's directory until `validate` joins it.
    FilePath(String): |v| {
        let path = text(v)?;
        let refusal = if path.is_empty() { "is empty" } else { "contains a NUL byte" };
        ensure(!path.is_empty() && !path.contains('\0'), refusal, path)
    };
    GroupName(String): |v| {
        let g = text(v)?;
        let name = !g.is_empty()
            && g.len() <= 32
            && g.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            && !g.starts_with('-');
        ensure(name, format!("{g:?} is not a group name"), g)
    };
    ServerUrl(String): |v| check_server_url(&text(v)?);
    Token(Secret): |v| {
        let t = text(v)?;
        let printable = !t.is_empty() && t.len() <= 128 && t.chars().all(|c| c.is_ascii_graphic());
        ensure(printable, "must be 1 to 128 printable characters without spaces", Secret(t))
    };
    PublicKey(ed25519_dalek::VerifyingKey): |v| {
        slate_protocol::bundle::verifying_key_from_base64(&text(v)?)
            .map_err(|_| "is not a base64 Ed25519 public key (32 bytes)".into())
    };
    Source(ButtonSource): |v| {
        one_of(v, &[
            ("evdev", ButtonSource::Evdev),
            ("gpio", ButtonSource::Gpio),
            ("stdin", ButtonSource::Stdin),
            ("none", ButtonSource::None),
        ])
    };
    /// The kernel's name for an input device.
    DeviceName(String): |v| one_line(text(v)?, 1..=128, "must be 1 to 128 characters on one line");
    UsbId(u16): |v| {
        let n = int(v)?;
        u16::try_from(n).map_err(|_| format!("{n} is not a USB id from 0 to 0xffff"))
    };
    /// A key by number (`88`) or name (`"KEY_F12"`).
    KeyCode(u16): |v| match v {
        Value::Integer(n) => in_range(n, 1..=KEY_MAX.into(), "a key code", ""),
        Value::String(name) => evdev::KeyCode::from_str(&name)
            .map(|code| code.code())
            .map_err(|_| format!("{name:?} is not a key name like \"KEY_F12\" or \"BTN_0\"")),
        other => Err(expected("a key name or number", &other)),
    };
    /// A BCM GPIO number.
    GpioPin(u8): |v| in_range(int(v)?, 0..=53, "a GPIO number", "");
    Flag(bool): |v| match v {
        Value::Boolean(b) => Ok(b),
        other => Err(expected("true or false", &other)),
    };
    PinHash(StaffPin): |v| {
        StaffPin::from_phc(&text(v)?).map_err(|e| format!("{e}; make one with `slatectl hash-pin`"))
    };
    WrongPins(u32): |v| in_range(int(v)?, 1..=20, "", "");
    Backend(DisplayBackend): |v| {
        one_of(v, &[
            ("auto", DisplayBackend::Auto),
            ("none", DisplayBackend::None),
            ("sysfs", DisplayBackend::Sysfs),
            ("logind", DisplayBackend::Logind),
            ("wayland", DisplayBackend::Wayland),
        ])
    };
    BacklightName(Backlight): |v| {
        let b = text(v)?;
        let named = !b.is_empty() && !b.contains(['/', '\0']) && b != "." && b != "..";
        match b.as_str() {
            "auto" => Ok(Backlight::Auto),
            _ if named => Ok(Backlight::Named(b)),
            _ => Err(format!("{b:?} is not \"auto\" or a name under /sys/class/backlight")),
        }
    };
    Method(BlankMethod): |v| {
        one_of(v, &[("bl_power", BlankMethod::BlPower), ("brightness", BlankMethod::Brightness)])
    };
    /// "auto" or a logind session id.
    SessionId(String): |v| {
        let s = text(v)?;
        let id = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ensure(id, "must be \"auto\" or a logind session id", s)
    };
    RuntimeDir(PathBuf): |v| {
        let d = text(v)?;
        ensure(d.starts_with('/') && !d.contains('\0'), format!("{d:?} is not an absolute path"), d)
            .map(PathBuf::from)
    };
    /// A socket name under the runtime directory (`"wayland-0"`) or an absolute path.
    WaylandDisplay(String): |v| {
        let d = text(v)?;
        let name =
            !d.is_empty() && d.len() <= 64 && !d.contains(['/', '\0']) && d != "." && d != "..";
        let absolute = d.starts_with('/') && !d.contains('\0');
        let refusal = format!("{d:?} is not a socket name (\"wayland-0\") or an absolute path");
        ensure(name || absolute, refusal, d)
    };
    Mute(MuteWith): |v| {
        one_of(v, &[
            ("wpctl", MuteWith::Wpctl),
            ("amixer", MuteWith::Amixer),
            ("none", MuteWith::None),
        ])
    };
    MixerControl(String): |v| one_line(text(v)?, 1..=64, "must be 1 to 64 characters on one line");
    /// `"auto"`, `"none"` or 1 to 32 device paths (still relative to the file's directory).
    Activity(ActivityList): |v| match v {
        Value::String(s) if s == "auto" => Ok(ActivityList::Auto),
        Value::String(s) if s == "none" => Ok(ActivityList::None),
        Value::String(s) => {
            Err(format!("{s:?} is not \"auto\", \"none\" or a list of device paths"))
        }
        Value::Array(items) if (1..=32).contains(&items.len()) => items
            .into_iter()
            .map(|item| match item {
                Value::String(p) if !p.is_empty() && !p.contains('\0') => Ok(p),
                other => Err(format!("{other} is not a device path like \"/dev/input/event1\"")),
            })
            .collect::<Result<_, _>>()
            .map(ActivityList::Paths),
        Value::Array(items) => Err(format!("{} paths; give 1 to 32", items.len())),
        other => Err(expected("\"auto\", \"none\" or a list of paths", &other)),
    };
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ButtonSource {
    Evdev,
    Gpio,
    Stdin,
    None,
}

#[derive(Clone, Copy)]
pub(super) enum DisplayBackend {
    Auto,
    None,
    Sysfs,
    Logind,
    Wayland,
}

#[derive(Clone, Copy)]
pub(super) enum MuteWith {
    Wpctl,
    Amixer,
    None,
}

pub(super) enum ActivityList {
    Auto,
    None,
    Paths(Vec<String>),
}

/// Seconds from `LO` to `HI`.
#[derive(Deserialize)]
#[serde(try_from = "Value")]
pub(super) struct Secs<const LO: i64, const HI: i64>(pub Duration);

impl<const LO: i64, const HI: i64> TryFrom<Value> for Secs<LO, HI> {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        in_range(int(v)?, LO..=HI, "", " seconds").map(|s| Self(Duration::from_secs(s)))
    }
}

/// Milliseconds from `LO` to `HI`.
#[derive(Deserialize)]
#[serde(try_from = "Value")]
pub(super) struct Millis<const LO: i64, const HI: i64>(pub Duration);

impl<const LO: i64, const HI: i64> TryFrom<Value> for Millis<LO, HI> {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        in_range(int(v)?, LO..=HI, "", " milliseconds").map(|ms| Self(Duration::from_millis(ms)))
    }
}

/// `n` as a `T` when it is within `range`; else "70000 is not a key code from 1 to 767", from
/// what the number is (`noun`, may be empty) and its unit (`" seconds"`, may be empty).
fn in_range<T: TryFrom<i64>>(
    n: i64,
    range: RangeInclusive<i64>,
    noun: &str,
    unit: &str,
) -> Result<T, String> {
    let (lo, hi) = (range.start(), range.end());
    let noun = if noun.is_empty() { String::new() } else { format!("{noun} ") };
    let refused = || format!("{n} is not {noun}from {lo} to {hi}{unit}");
    if !range.contains(&n) {
        return Err(refused());
    }
    T::try_from(n).map_err(|_| refused())
}

/// The choice named by the string `v`: "\"gpi0\" is not one of \"evdev\", \"gpio\", …" if none.
fn one_of<T: Copy>(v: Value, choices: &[(&str, T)]) -> Result<T, String> {
    let s = text(v)?;
    match choices.iter().find(|(name, _)| *name == s) {
        Some(&(_, choice)) => Ok(choice),
        None => {
            let names: Vec<String> = choices.iter().map(|(name, _)| format!("{name:?}")).collect();
            Err(format!("{s:?} is not one of {}", names.join(", ")))
        }
    }
}

/// `value` when `ok`, else the refusal.
fn ensure<T>(ok: bool, refusal: impl Into<String>, value: T) -> Result<T, String> {
    if ok {
        Ok(value)
    } else {
        Err(refusal.into())
    }
}

/// `s` when it is one line of a length (in bytes) within `len`.
fn one_line(s: String, len: RangeInclusive<usize>, refusal: &str) -> Result<String, String> {
    ensure(len.contains(&s.len()) && !s.chars().any(char::is_control), refusal, s)
}

fn int(v: Value) -> Result<i64, String> {
    match v {
        Value::Integer(n) => Ok(n),
        other => Err(expected("a whole number", &other)),
    }
}

fn text(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(expected("a string", &other)),
    }
}

fn expected(what: &str, found: &Value) -> String {
    format!("expected {what}, found {}", found.type_str())
}
