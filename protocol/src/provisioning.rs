//! The provisioning file IT puts on a card's boot partition (`slate-provision.conf`: Wi-Fi,
//! timezone, keyboard, ssh keys for IT, the USB storage and camera switches) and when a device
//! takes it. Pure: the server checks a file with [`parse`] before signing it (`slate-server
//! provision sign`), the device opens one with [`open`] (`slated --check-provision`), and the
//! image's provisioning script applies what that prints.
//!
//! The card is no key to the device: anyone with the card and a laptop can write the boot
//! partition. So a device takes the file only as a [`SignedBundle`] of kind
//! [`BundleKind::Provisioning`] signed with the school's policy key (the one `slate.toml` trusts
//! for every signed policy), or, before the device has ever enrolled with the server (first
//! boot, IT flashing the card), as plain text too. ssh keys in an accepted file are IT's: the
//! only way to get root on an enrolled device is a file IT signed on the server.
//!
//! The signature covers the text, not the certificate and key files it names on the boot
//! partition ([`CARD_FILES`]): so `slate-server provision sign` records each named file's
//! SHA-256 in the text (`<key>_sha256 = "<hex>"`), a signed file that names a file without its
//! hash is refused here ([`check_signed_files`]), and `slate-network` refuses a file whose bytes
//! do not match. A plain file (before enrollment) needs no hashes: the card is trusted then.
//!
//! The text is a TOML subset: `key = "value"` lines, `ssh_authorized_keys = ["...", "..."]` on
//! one line, comments. One bad line refuses the whole file; the error names the line and field.

use crate::bundle::{BundleKind, SignedBundle};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;

/// The largest file a device reads (a full file is well under 16 KiB).
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// At most this many ssh keys.
pub const MAX_SSH_KEYS: usize = 20;

/// The known settings, in the order refusals list them.
pub const SETTINGS: [&str; 7] = [
    "wifi_ssid",
    "wifi_psk",
    "timezone",
    "keyboard",
    "ssh_authorized_keys",
    "usb_storage",
    "camera",
];

/// The school network's settings: taken here, checked and applied by `slate-network`
/// (`slate_daemon::school_network`), which reads them from the text this checked (the signed
/// payload, [`Provisioning::text`]). `wifi_eap_*` are the Enterprise Wi-Fi fields.
pub const SCHOOL_NETWORK: [&str; 7] = [
    "wifi_country",
    "wifi_eap",
    "proxy",
    "proxy_bypass",
    "proxy_pac",
    "ntp_servers",
    "ssl_inspection_ca",
];

/// The settings that name a file on the boot partition, each with the key that records the
/// file's SHA-256 (64 lowercase hex digits) in a signed text.
pub const CARD_FILES: [(&str, &str); 4] = [
    ("wifi_eap_ca", "wifi_eap_ca_sha256"),
    ("wifi_eap_client_cert", "wifi_eap_client_cert_sha256"),
    ("wifi_eap_client_key", "wifi_eap_client_key_sha256"),
    ("ssl_inspection_ca", "ssl_inspection_ca_sha256"),
];

/// A file the text names on the boot partition, and its SHA-256 if the text records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFile {
    /// The setting naming it (`ssl_inspection_ca`).
    pub key: &'static str,
    /// The setting recording its hash (`ssl_inspection_ca_sha256`).
    pub hash_key: &'static str,
    /// The file name as written (checked by `slate-network`, and by [`is_card_file_name`]
    /// before the server reads it).
    pub name: String,
    /// Lowercase hex.
    pub sha256: Option<String>,
}

/// A file on the boot partition by its plain name: no directories (nothing outside the card),
/// not hidden, at most 64 characters of letters, digits, `.`, `_` and `-`.
pub fn is_card_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A card file's SHA-256 as the signed text records it (lowercase hex): what `slate-server
/// provision sign` writes and what the device compares the card's file with.
pub fn card_file_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Whether `hex` is a SHA-256 as the text records it: 64 lowercase hex digits.
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A signed text must record the SHA-256 of every file it names: the signature reaches the
/// files only through these. The first file without one refuses the whole text.
pub fn check_signed_files(settings: &Provisioning) -> Result<(), ProvisionError> {
    match settings.card_files.iter().find(|f| f.sha256.is_none()) {
        None => Ok(()),
        Some(f) => Err(ProvisionError(format!(
            "field `{}`: names \"{}\" on the boot partition, but carries no `{}`, so that \
             file is not covered by the signature: sign the file again with `slate-server \
             provision sign`, which records the SHA-256 of each file it names",
            f.key, f.name, f.hash_key
        ))),
    }
}

/// Whether `key` is one of the school network's settings ([`SCHOOL_NETWORK`], `wifi_eap_*`).
pub fn is_school_network(key: &str) -> bool {
    SCHOOL_NETWORK.contains(&key) || key.starts_with("wifi_eap_")
}

/// Key types IT's ssh keys may have.
const SSH_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
];

/// What an accepted file sets. A setting that is absent is `None` (Wi-Fi, timezone, keyboard:
/// left as last set) or off (ssh, USB storage, cameras).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioning {
    pub wifi_ssid: Option<String>,
    pub wifi_psk: Option<String>,
    pub timezone: Option<String>,
    pub keyboard: Option<String>,
    /// OpenSSH public key lines for root, keys only. Empty: ssh off.
    pub ssh_authorized_keys: Vec<String>,
    pub usb_storage: bool,
    pub camera: bool,
    /// Some of the school network's settings are set ([`SCHOOL_NETWORK`]).
    pub school_network: bool,
    /// The files on the boot partition the text names ([`CARD_FILES`]), in that order.
    pub card_files: Vec<CardFile>,
    /// The whole text these came from, as checked (a signed file's payload): what
    /// `slate-network` reads, so a signed file's network settings are the signed ones.
    pub text: String,
}

impl Provisioning {
    /// The settings as `name=value` lines, for the provisioning script (no value holds a line
    /// break or control character: [`parse`] refuses them). `usb_storage` and `camera` always
    /// appear (`allow` or `block`), one `ssh_authorized_key=` line per key.
    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, value: &str| {
            out.push_str(name);
            out.push('=');
            out.push_str(value);
            out.push('\n');
        };
        for (name, value) in [
            ("wifi_ssid", &self.wifi_ssid),
            ("wifi_psk", &self.wifi_psk),
            ("timezone", &self.timezone),
            ("keyboard", &self.keyboard),
        ] {
            if let Some(value) = value {
                line(name, value);
            }
        }
        for key in &self.ssh_authorized_keys {
            line("ssh_authorized_key", key);
        }
        let switch = |allowed: bool| if allowed { "allow" } else { "block" };
        line("usb_storage", switch(self.usb_storage));
        line("camera", switch(self.camera));
        if self.school_network {
            line("school_network", "yes");
        }
        out
    }
}

/// What is installed on the device, for the timezone and keyboard names. The server, which
/// checks a file before signing it, has none of them: [`AnyInstalled`].
pub trait Installed {
    fn has_timezone(&self, name: &str) -> bool;
    fn has_keyboard(&self, name: &str) -> bool;
}

/// Takes every well-formed name (the server's check: it cannot know the device's lists).
pub struct AnyInstalled;

impl Installed for AnyInstalled {
    fn has_timezone(&self, _: &str) -> bool {
        true
    }
    fn has_keyboard(&self, _: &str) -> bool {
        true
    }
}

/// Why a file is refused; the message names the line and field (the caller adds the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

/// How the device came to take a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Signed with the school's key.
    Signed,
    /// Plain text, taken because the device has never enrolled.
    BeforeEnrollment,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Signed => "signed",
            Source::BeforeEnrollment => "unsigned-before-enrollment",
        }
    }
}

/// What the device knows when it opens a file: the school's key from its `slate.toml` (if
/// any), and whether it has ever enrolled (its credential is there).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub school_key: Option<&'a VerifyingKey>,
    pub enrolled: bool,
}

/// Whether the device takes `bytes` (a provisioning file from the boot partition), and what it
/// sets. A file that starts with `{` is a signed bundle and must verify as a
/// [`BundleKind::Provisioning`] with the school's key; anything else is plain text, taken only
/// before enrollment. Every refusal says why; nothing is partly taken.
pub fn open(
    bytes: &[u8],
    trust: Trust<'_>,
    installed: &dyn Installed,
) -> Result<(Source, Provisioning), ProvisionError> {
    let refuse = |why: String| Err(ProvisionError(why));
    if bytes.len() > MAX_FILE_BYTES {
        return refuse(format!("is over {} KiB", MAX_FILE_BYTES / 1024));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let Some(key) = trust.school_key else {
            return refuse(
                "is signed, but this device has no school key to check it with \
                 (`[server] public_key` in slate.toml)"
                    .into(),
            );
        };
        let payload = match SignedBundle::open_as(BundleKind::Provisioning, bytes, key) {
            Ok(payload) => payload,
            Err(e) => {
                return refuse(format!(
                    "is not signed with this school's key ({e}); sign it with \
                     `slate-server provision sign` on this school's server"
                ))
            }
        };
        let settings = parse(&payload, installed)
            .and_then(|settings| check_signed_files(&settings).map(|()| settings))
            .map_err(|e| ProvisionError(format!("(signed) {e}")))?;
        return Ok((Source::Signed, settings));
    }
    if trust.enrolled {
        return refuse(
            "is not signed, and this device has enrolled with the school server: it now takes \
             only a file signed with the school's key (`slate-server provision sign`)"
                .into(),
        );
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return refuse("is not text (UTF-8)".into());
    };
    Ok((Source::BeforeEnrollment, parse(text, installed)?))
}

/// Checks a whole provisioning text; the first bad line refuses it all.
pub fn parse(text: &str, installed: &dyn Installed) -> Result<Provisioning, ProvisionError> {
    let mut out = Provisioning { text: text.to_owned(), ..Provisioning::default() };
    let mut seen: Vec<&str> = Vec::new();
    // The values of CARD_FILES' keys (names and hashes), paired up after the last line.
    let mut file_values: Vec<(&str, &str)> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let refuse = |why: String| Err(ProvisionError(format!("line {n}: {why}")));
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((key, value)) = split_line(line) else {
            return refuse(
                "expected key = \"value\" (no quotes or backslashes inside the value)".into(),
            );
        };
        let Some(key) = key else { continue };
        let field = |why: &str| Err(ProvisionError(format!("line {n}: field `{key}`: {why}")));
        let (one, list) = match value {
            Value::One(v) if key == "ssh_authorized_keys" => (v, format!("\"{v}\"")),
            Value::One(v) => (v, String::new()),
            Value::List(l) if key == "ssh_authorized_keys" => ("", l.to_string()),
            Value::List(_) => return field("takes one \"value\", not a list"),
        };
        if seen.contains(&key) {
            return field("is set twice");
        }
        seen.push(key);
        let printable = |v: &str| v.chars().all(|c| !c.is_control());
        match key {
            "wifi_ssid" => {
                if one.is_empty() || one.len() > 32 || !printable(one) {
                    return field("must be 1 to 32 printable characters");
                }
                out.wifi_ssid = Some(one.into());
            }
            "wifi_psk" => {
                let passphrase = (8..=63).contains(&one.len())
                    && one.bytes().all(|b| (b' '..=b'~').contains(&b));
                let hex = one.len() == 64 && one.bytes().all(|b| b.is_ascii_hexdigit());
                if !passphrase && !hex {
                    return field("must be 8 to 63 printable characters (or 64 hex digits)");
                }
                out.wifi_psk = Some(one.into());
            }
            "timezone" => {
                let named = one.split('/').all(|part| {
                    !part.is_empty()
                        && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
                });
                if !named || !installed.has_timezone(one) {
                    return field(&format!("\"{one}\" is not a timezone like \"Europe/London\""));
                }
                out.timezone = Some(one.into());
            }
            "keyboard" => {
                let named =
                    (2..=8).contains(&one.len()) && one.bytes().all(|b| b.is_ascii_lowercase());
                if !named || !installed.has_keyboard(one) {
                    return field(&format!("\"{one}\" is not a keyboard layout like \"gb\""));
                }
                out.keyboard = Some(one.into());
            }
            "usb_storage" | "camera" => {
                let allowed = match one {
                    "allow" => true,
                    "block" => false,
                    _ => return field(&format!("must be \"allow\" or \"block\", not \"{one}\"")),
                };
                if key == "camera" {
                    out.camera = allowed;
                } else {
                    out.usb_storage = allowed;
                }
            }
            "ssh_authorized_keys" => {
                let Some(keys) = split_list(&list) else {
                    return field("expected [\"key\", \"key\"], one line, no quotes inside a key");
                };
                for (k, one) in keys.iter().enumerate() {
                    if !ssh_key_ok(one) {
                        return field(&format!(
                            "key {} is not an OpenSSH public key line (\"ssh-ed25519 AAAA... \
                             name\", no options)",
                            k + 1
                        ));
                    }
                }
                if keys.is_empty() || keys.len() > MAX_SSH_KEYS {
                    return field(&format!(
                        "give 1 to {MAX_SSH_KEYS} keys (remove the line to turn ssh off)"
                    ));
                }
                out.ssh_authorized_keys = keys.into_iter().map(String::from).collect();
            }
            hash if CARD_FILES.iter().any(|(_, h)| *h == hash) => {
                if !is_sha256_hex(one) {
                    return field("must be the file's SHA-256, 64 lowercase hex digits");
                }
                file_values.push((hash, one));
                out.school_network = true;
            }
            // Checked whole by slate-network, before anything is applied.
            network if is_school_network(network) => {
                if !printable(one) {
                    return field("must be printable characters");
                }
                if CARD_FILES.iter().any(|(k, _)| *k == network) {
                    file_values.push((network, one));
                }
                out.school_network = true;
            }
            _ => {
                return field(&format!(
                    "is not a known setting here; the known ones are: {}, {} (and wifi_eap_*, \
                     and <key>_sha256 for a file named)",
                    SETTINGS.join(", "),
                    SCHOOL_NETWORK.join(", ")
                ))
            }
        }
    }
    if out.wifi_psk.is_some() && out.wifi_ssid.is_none() {
        return Err(ProvisionError("field `wifi_ssid`: is required when `wifi_psk` is set".into()));
    }
    let value = |key: &str| file_values.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    for (key, hash_key) in CARD_FILES {
        match (value(key), value(hash_key)) {
            (Some(name), sha256) => out.card_files.push(CardFile {
                key,
                hash_key,
                name: name.to_owned(),
                sha256: sha256.map(str::to_owned),
            }),
            (None, Some(_)) => {
                return Err(ProvisionError(format!(
                    "field `{hash_key}`: records a file's SHA-256, but `{key}` names no file"
                )))
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

enum Value<'a> {
    One(&'a str),
    /// What is between the brackets, as written.
    List(&'a str),
}

/// One line: `None` when it is not `key = "value"` or `key = [...]`; `Some((None, _))` for a
/// blank or comment line.
fn split_line(line: &str) -> Option<(Option<&str>, Value<'_>)> {
    let rest = line.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return Some((None, Value::One("")));
    }
    // Letters, `_` and digits (`<key>_sha256`), not starting with a digit.
    let key_end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
        .unwrap_or(rest.len());
    let (key, rest) = rest.split_at(key_end);
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Some(inner) = rest.strip_prefix('[') {
        // The last `]` followed only by spaces and a comment (as a greedy match would take).
        let close =
            inner.rmatch_indices(']').map(|(i, _)| i).find(|&i| ends_line(&inner[i + 1..]))?;
        return Some((Some(key), Value::List(&inner[..close])));
    }
    let inner = rest.strip_prefix('"')?;
    let close = inner.find('"')?;
    let value = &inner[..close];
    if value.contains('\\') || !ends_line(&inner[close + 1..]) {
        return None;
    }
    Some((Some(key), Value::One(value)))
}

/// Spaces, then nothing or a comment.
fn ends_line(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

/// `"a", "b"` (spaces allowed around each): the strings, or `None` when it is not that shape
/// or a string holds a backslash.
fn split_list(list: &str) -> Option<Vec<&str>> {
    let mut keys = Vec::new();
    let mut rest = list.trim_start();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"')?;
        let close = inner.find('"')?;
        let one = &inner[..close];
        if one.contains('\\') {
            return None;
        }
        keys.push(one);
        let after = inner[close + 1..].trim_start();
        match after.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None if after.is_empty() => break,
            None => return None,
        }
    }
    Some(keys)
}

/// An OpenSSH public key line: type, base64 blob whose own header names the same type, an
/// optional comment. No options (`command=`, `from=`...): IT's keys log in as root, keys only.
pub fn ssh_key_ok(line: &str) -> bool {
    let mut parts = line.splitn(3, ' ');
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !SSH_KEY_TYPES.contains(&kind) {
        return false;
    }
    if parts.next().is_some_and(|comment| comment.chars().any(char::is_control)) {
        return false;
    }
    let Ok(raw) = BASE64.decode(blob) else {
        return false;
    };
    let mut header = (kind.len() as u32).to_be_bytes().to_vec();
    header.extend_from_slice(kind.as_bytes());
    raw.starts_with(&header)
}

#[cfg(test)]
mod tests;
