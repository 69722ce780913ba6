//! The data partition's LUKS2 passphrase, bound to this SD card in this Raspberry Pi
//! (`slate-data-key`).
//!
//! The data partition (`slate-data`, `/data`) holds the device's server credential, the spool
//! (pupil ids, URLs), the kiosk policy and the Wi-Fi keys. It is to be LUKS2-encrypted with a
//! random 32-byte passphrase that nobody types and nobody stores in the clear: the passphrase is
//! wrapped (AES-256-GCM) under a key-encryption key derived (HKDF-SHA256) from the card's CID
//! (`/sys/block/mmcblk0/device/cid`, 16 bytes) and the Pi's serial number
//! (`/proc/device-tree/serial-number`, 8 bytes) with a random salt. The wrapped passphrase is a
//! LUKS2 token in the partition's own header ([`Token`], `cryptsetup token import`), so it goes
//! with the partition and survives A/B root updates.
//!
//! # What this gives, and what it cannot give (a Pi has no TPM)
//!
//! - The card alone, in a laptop or a card reader, is useless: its header holds only the wrapped
//!   passphrase, and the Pi's serial is not on the card. (A USB card reader does not even show
//!   the card's CID.)
//! - The card moved into another Pi does not open: that Pi's serial derives another key, and the
//!   unwrap fails GCM's authentication ([`UnwrapError`]), never giving a wrong passphrase.
//!   Likewise an image of the partition copied onto another card: another CID.
//! - Someone who holds both the card and the Pi it came from can read the serial (any Linux
//!   booted on that Pi) and the CID (any native SD slot) and open it. Neither value is a secret;
//!   together they are a key only for as long as the two are kept apart. Closing that needs a
//!   secret the board keeps from a booted attacker: the Pi 4/5 OTP private key
//!   (`rpi-otp-private-key`) readable only before a signed boot, with the Pi's secure boot, is
//!   the next step.
//!
//! # The token (LUKS2 token JSON, `"type": "slate-bound"`)
//!
//! ```json
//! {"type":"slate-bound","keyslots":["0"],"v":1,
//!  "salt":"<base64, 32 bytes>","nonce":"<base64, 12 bytes>","wrapped":"<base64, 48 bytes>"}
//! ```
//!
//! `keyslots` is the LUKS keyslot the passphrase opens (LUKS2's own token field); `v` this
//! format's version; `wrapped` the AES-256-GCM ciphertext of the 32-byte passphrase with its
//! 16-byte tag. The key-encryption key is `HKDF-SHA256(salt, CID ‖ serial, "slate-data-key v1
//! kek")`; the associated data, `slate-bound v1 keyslots=<ids>`, so a token edited to name
//! another keyslot or version fails as a damaged one does. The token is read from the card, so
//! it is outside input: parsed strictly ([`Token::parse`]: no unknown fields, every length
//! exact, canonical base64).
//!
//! The passphrase given to cryptsetup is its 64 lowercase hex digits with no newline
//! ([`Passphrase::text`]): text, so it passes through a shell pipe and `--key-file=-` as it is.

use aes_gcm::aead::{self, Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The LUKS2 token type of [`Token`].
pub const TOKEN_TYPE: &str = "slate-bound";
/// The token format's version.
pub const TOKEN_VERSION: u32 = 1;
/// The keyslot `slate-data-key seal` makes a token for (a fresh LUKS2 header's first).
pub const DEFAULT_KEYSLOT: u8 = 0;
/// Bytes of the SD card's CID register (sysfs shows 32 hex digits).
pub const CID_LEN: usize = 16;
/// Bytes of the Pi's serial number (the device tree shows 16 hex digits).
pub const SERIAL_LEN: usize = 8;
/// Bytes of the LUKS passphrase, of the HKDF salt, of the GCM nonce and of GCM's tag.
pub const PASSPHRASE_LEN: usize = 32;
pub const SALT_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// A token is a few hundred bytes; more than this is not one.
pub const TOKEN_MAX_LEN: usize = 4096;
/// LUKS2 has keyslots 0 to 31.
const MAX_KEYSLOT: u8 = 31;
const KEK_INFO: &[u8] = b"slate-data-key v1 kek";

/// Which half of the device binding a [`BindingError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingPart {
    /// The SD card's CID.
    Cid,
    /// The Raspberry Pi's serial number.
    Serial,
}

impl BindingPart {
    fn name(self) -> &'static str {
        match self {
            BindingPart::Cid => "the SD card's CID",
            BindingPart::Serial => "the Pi's serial number",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            BindingPart::Cid => CID_LEN * 2,
            BindingPart::Serial => SERIAL_LEN * 2,
        }
    }
}

/// The device binding cannot be read or is not what a Pi gives: a configuration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("{} is missing: {path} ({reason})", part.name())]
    Missing { part: BindingPart, path: String, reason: String },
    #[error("{} in {path} is malformed: {reason}", part.name())]
    Malformed { part: BindingPart, path: String, reason: String },
}

/// The SD card's CID and the Pi's serial: what the key-encryption key is derived from.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceBinding {
    cid: [u8; CID_LEN],
    serial: [u8; SERIAL_LEN],
}

// Not secret on their own, but half of a key: never printed.
impl std::fmt::Debug for DeviceBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceBinding(..)")
    }
}

impl DeviceBinding {
    /// The binding from the two files' bytes (`None`: the file does not exist), `paths` naming
    /// them in errors. Trailing NULs and newlines are trimmed (the device tree ends its strings
    /// with a NUL, sysfs with a newline); then it must be exactly the right number of hex digits,
    /// not all zero.
    pub fn parse(
        cid: Option<&[u8]>,
        serial: Option<&[u8]>,
        cid_path: &str,
        serial_path: &str,
    ) -> Result<Self, BindingError> {
        let cid = parse_part(BindingPart::Cid, cid, cid_path)?;
        let serial = parse_part(BindingPart::Serial, serial, serial_path)?;
        Ok(Self { cid, serial })
    }

    fn kek(&self, salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; 32]> {
        let mut ikm = Zeroizing::new([0u8; CID_LEN + SERIAL_LEN]);
        ikm[..CID_LEN].copy_from_slice(&self.cid);
        ikm[CID_LEN..].copy_from_slice(&self.serial);
        let mut kek = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(salt), &ikm[..])
            .expand(KEK_INFO, &mut kek[..])
            .expect("32 bytes is a valid HKDF-SHA256 length");
        kek
    }
}

fn parse_part<const N: usize>(
    part: BindingPart,
    bytes: Option<&[u8]>,
    path: &str,
) -> Result<[u8; N], BindingError> {
    let malformed =
        |reason: String| BindingError::Malformed { part, path: path.to_owned(), reason };
    let Some(bytes) = bytes else {
        return Err(BindingError::Missing {
            part,
            path: path.to_owned(),
            reason: "no such file".into(),
        });
    };
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\0' | b'\n') {
        end -= 1;
    }
    let text = &bytes[..end];
    if text.is_empty() {
        return Err(BindingError::Missing {
            part,
            path: path.to_owned(),
            reason: "the file is empty".into(),
        });
    }
    if text.len() != part.hex_len() {
        return Err(malformed(format!(
            "{} characters, expected {} hex digits",
            text.len(),
            part.hex_len()
        )));
    }
    if !text.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed("not hex digits".into()));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).expect("checked: hex digits of the right length");
    if out.iter().all(|b| *b == 0) {
        return Err(malformed("all zeros".into()));
    }
    Ok(out)
}

/// The LUKS passphrase: 32 random bytes, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<[u8; PASSPHRASE_LEN]>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Passphrase {
    pub fn from_bytes(bytes: [u8; PASSPHRASE_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// What cryptsetup is given (`--key-file=-`): 64 lowercase hex digits, no newline.
    pub fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }
}

/// The wrapped passphrase as it lives in the LUKS2 header (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The keyslots the passphrase opens (LUKS2's own field).
    pub keyslots: Vec<u8>,
    pub salt: [u8; SALT_LEN],
    pub nonce: [u8; NONCE_LEN],
    pub wrapped: [u8; PASSPHRASE_LEN + TAG_LEN],
}

/// The token's JSON as written and as read, every field required and no other allowed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenJson {
    #[serde(rename = "type")]
    kind: String,
    keyslots: Vec<String>,
    v: u32,
    salt: String,
    nonce: String,
    wrapped: String,
}

/// The token is not one this program made: a refused unwrap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is {0} bytes, more than a token ({TOKEN_MAX_LEN})")]
    TooLong(usize),
    #[error("the token is not valid JSON of a slate-bound token: {0}")]
    Json(String),
    #[error("the token's type is {0:?}, not \"slate-bound\"")]
    Type(String),
    #[error("the token's version is {0}, this program reads version {TOKEN_VERSION}")]
    Version(u32),
    #[error("the token's keyslots are not one LUKS2 keyslot number (0 to 31)")]
    Keyslots,
    #[error("the token's field `{field}` is not canonical base64 of {len} bytes")]
    Field { field: &'static str, len: usize },
}

impl Token {
    /// Parses a token read from the card (or exported by `cryptsetup token export`), strictly.
    pub fn parse(text: &[u8]) -> Result<Self, TokenError> {
        if text.len() > TOKEN_MAX_LEN {
            return Err(TokenError::TooLong(text.len()));
        }
        let json: TokenJson =
            serde_json::from_slice(text).map_err(|e| TokenError::Json(e.to_string()))?;
        if json.kind != TOKEN_TYPE {
            return Err(TokenError::Type(json.kind));
        }
        if json.v != TOKEN_VERSION {
            return Err(TokenError::Version(json.v));
        }
        let keyslots = match json.keyslots.as_slice() {
            [one] => vec![parse_keyslot(one).ok_or(TokenError::Keyslots)?],
            _ => return Err(TokenError::Keyslots),
        };
        Ok(Self {
            keyslots,
            salt: decode_field("salt", &json.salt)?,
            nonce: decode_field("nonce", &json.nonce)?,
            wrapped: decode_field("wrapped", &json.wrapped)?,
        })
    }

    /// The JSON `cryptsetup token import` takes (one line, no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&TokenJson {
            kind: TOKEN_TYPE.into(),
            keyslots: self.keyslots.iter().map(u8::to_string).collect(),
            v: TOKEN_VERSION,
            salt: STANDARD.encode(self.salt),
            nonce: STANDARD.encode(self.nonce),
            wrapped: STANDARD.encode(self.wrapped),
        })
        .expect("a token serializes")
    }

    fn associated_data(keyslots: &[u8]) -> Vec<u8> {
        let ids: Vec<String> = keyslots.iter().map(u8::to_string).collect();
        format!("{TOKEN_TYPE} v{TOKEN_VERSION} keyslots={}", ids.join(",")).into_bytes()
    }
}

/// A keyslot number as LUKS2 writes it: decimal, no sign, no leading zeros.
fn parse_keyslot(text: &str) -> Option<u8> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 2;
    let slot: u8 = if canonical { text.parse().ok()? } else { return None };
    (slot <= MAX_KEYSLOT).then_some(slot)
}

fn decode_field<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], TokenError> {
    let bytes = STANDARD.decode(text).map_err(|_| TokenError::Field { field, len: N })?;
    bytes.try_into().map_err(|_| TokenError::Field { field, len: N })
}

/// The token does not open with this device's binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    #[error(
        "the token does not open with this card and this Pi (GCM authentication failed): \
         another card's or another Pi's partition, or a damaged token"
    )]
    NotThisDevice,
}

/// Wraps `passphrase` for `keyslot` under the key `binding` and `salt` derive. Pure: the random
/// passphrase, salt and nonce are the caller's (fresh from the kernel in `slate-data-key seal`).
pub fn seal(
    binding: &DeviceBinding,
    passphrase: &Passphrase,
    keyslot: u8,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> Token {
    assert!(keyslot <= MAX_KEYSLOT, "LUKS2 keyslots are 0 to 31");
    let keyslots = vec![keyslot];
    let kek = binding.kek(&salt);
    let cipher = Aes256Gcm::new_from_slice(&kek[..]).expect("a 32-byte key");
    let aad = Token::associated_data(&keyslots);
    let ciphertext = cipher
        .encrypt(
            &aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload { msg: &passphrase.0[..], aad: &aad },
        )
        .expect("AES-GCM encrypts 32 bytes");
    let wrapped = ciphertext.try_into().expect("32 bytes and a 16-byte tag");
    Token { keyslots, salt, nonce, wrapped }
}

/// The passphrase `token` wraps, if `binding` is the device it was sealed on.
pub fn unseal(binding: &DeviceBinding, token: &Token) -> Result<Passphrase, UnwrapError> {
    let kek = binding.kek(&token.salt);
    let cipher = Aes256Gcm::new_from_slice(&kek[..]).expect("a 32-byte key");
    let aad = Token::associated_data(&token.keyslots);
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &aead::Nonce::<Aes256Gcm>::from(token.nonce),
                Payload { msg: &token.wrapped, aad: &aad },
            )
            .map_err(|_| UnwrapError::NotThisDevice)?,
    );
    let bytes: [u8; PASSPHRASE_LEN] =
        plain.as_slice().try_into().map_err(|_| UnwrapError::NotThisDevice)?;
    Ok(Passphrase::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &[u8] = b"1b534d454230305110a1b2c3d4013b01\n";
    const SERIAL: &[u8] = b"10000000abcdef01\0";

    fn binding(cid: &[u8], serial: &[u8]) -> DeviceBinding {
        DeviceBinding::parse(Some(cid), Some(serial), "cid", "serial").unwrap()
    }

    fn sealed() -> (Passphrase, Token) {
        let pass = Passphrase::from_bytes([7; 32]);
        let token = seal(&binding(CID, SERIAL), &pass, 0, [1; 32], [2; 12]);
        (pass, token)
    }

    #[test]
    fn binding_inputs() {
        use BindingPart::*;
        let missing = |part| Some((part, "missing"));
        let malformed = |part| Some((part, "malformed"));
        // The CID file, the serial file, and the error: which part, missing or malformed.
        type Case =
            (Option<&'static [u8]>, Option<&'static [u8]>, Option<(BindingPart, &'static str)>);
        let cases: &[Case] = &[
            (Some(CID), Some(SERIAL), None),
            (Some(b"1B534D454230305110A1B2C3D4013B01"), Some(b"10000000ABCDEF01"), None),
            (Some(b"1b534d454230305110a1b2c3d4013b01\n\n"), Some(b"10000000abcdef01\n\0"), None),
            (None, Some(SERIAL), missing(Cid)),
            (Some(CID), None, missing(Serial)),
            (None, None, missing(Cid)),
            (Some(b"\n"), Some(SERIAL), missing(Cid)),
            (Some(CID), Some(b"\0"), missing(Serial)),
            (Some(b"1b534d454230305110a1b2c3d4013b"), Some(SERIAL), malformed(Cid)),
            (Some(b"1b534d454230305110a1b2c3d4013b0100"), Some(SERIAL), malformed(Cid)),
            (Some(b"1b534d454230305110a1b2c3d4013bzz"), Some(SERIAL), malformed(Cid)),
            (Some(b" 1b534d454230305110a1b2c3d4013b0"), Some(SERIAL), malformed(Cid)),
            (Some(b"00000000000000000000000000000000"), Some(SERIAL), malformed(Cid)),
            (Some(CID), Some(b"abcdef01"), malformed(Serial)),
            (Some(CID), Some(b"10000000abcdef01 "), malformed(Serial)),
            (Some(CID), Some(b"10000000abcdef\xff\xfe"), malformed(Serial)),
            (Some(CID), Some(b"0000000000000000\0"), malformed(Serial)),
        ];
        for (cid, serial, want) in cases {
            let got = DeviceBinding::parse(*cid, *serial, "/c", "/s");
            match (got, want) {
                (Ok(_), None) => {}
                (Err(e), Some((part, kind))) => {
                    let (got_part, got_kind) = match &e {
                        BindingError::Missing { part, .. } => (*part, "missing"),
                        BindingError::Malformed { part, .. } => (*part, "malformed"),
                    };
                    assert_eq!((got_part, got_kind), (*part, *kind), "{cid:?} {serial:?}: {e}");
                    let message = e.to_string();
                    assert!(message.contains(part.name()) && message.contains(kind), "{message}");
                    let path = if *part == Cid { "/c" } else { "/s" };
                    assert!(message.contains(path), "{message}");
                }
                (got, want) => panic!("{cid:?} {serial:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn case_and_trailing_bytes_do_not_change_the_binding() {
        assert_eq!(
            binding(CID, SERIAL),
            binding(b"1B534D454230305110A1B2C3D4013B01", b"10000000ABCDEF01")
        );
    }

    #[test]
    fn the_same_device_unwraps_the_passphrase() {
        let (pass, token) = sealed();
        assert_eq!(unseal(&binding(CID, SERIAL), &token).unwrap(), pass);
        let back = Token::parse(token.to_json().as_bytes()).unwrap();
        assert_eq!(back, token);
        assert_eq!(unseal(&binding(CID, SERIAL), &back).unwrap(), pass);
    }

    /// The format pinned: a card sealed by this version must open with every later one. The
    /// `wrapped` value was computed independently (Python's `cryptography`: HKDF-SHA256 with
    /// this salt, CID ‖ serial and the info, then AESGCM with this nonce and associated data).
    #[test]
    fn known_answer() {
        assert_eq!(
            sealed().1.to_json(),
            r#"{"type":"slate-bound","keyslots":["0"],"v":1,"#.to_owned()
                + r#""salt":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","nonce":"AgICAgICAgICAgIC","#
                + r#""wrapped":"bBZu9cZEVOPGHvP89SDNnc4VcOhvSre+Q2lfNXvBLkMAHGiXbpS92VwMmNCTRvHi"}"#
        );
    }

    #[test]
    fn sealing_is_deterministic_in_its_inputs_and_the_salt_matters() {
        let pass = Passphrase::from_bytes([7; 32]);
        let b = binding(CID, SERIAL);
        assert_eq!(seal(&b, &pass, 0, [1; 32], [2; 12]), seal(&b, &pass, 0, [1; 32], [2; 12]));
        let other_salt = seal(&b, &pass, 0, [3; 32], [2; 12]);
        assert_ne!(other_salt.wrapped, sealed().1.wrapped);
        assert_eq!(unseal(&b, &other_salt).unwrap(), pass);
        // The ciphertext is not the passphrase.
        assert_ne!(&sealed().1.wrapped[..32], &[7; 32]);
    }

    #[test]
    fn another_card_another_pi_or_a_changed_token_is_refused() {
        let (_, token) = sealed();
        let refused = |b: &DeviceBinding, t: &Token| unseal(b, t).unwrap_err();
        // One bit of the CID (the card's serial field), of the Pi's serial.
        assert_eq!(
            refused(&binding(b"1b534d454230305110a1b2c3d5013b01", SERIAL), &token),
            UnwrapError::NotThisDevice
        );
        assert_eq!(refused(&binding(CID, b"10000000abcdef00"), &token), UnwrapError::NotThisDevice);
        let device = binding(CID, SERIAL);
        let changes: [fn(&mut Token); 5] = [
            |t| t.wrapped[0] ^= 1,
            |t| t.wrapped[47] ^= 0x80,
            |t| t.salt[31] ^= 1,
            |t| t.nonce[0] ^= 1,
            |t| t.keyslots = vec![1],
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut t = token.clone();
            change(&mut t);
            assert_eq!(refused(&device, &t), UnwrapError::NotThisDevice, "change {i}");
        }
    }

    #[test]
    fn token_json_is_read_strictly() {
        let good = sealed().1.to_json();
        let value: serde_json::Value = serde_json::from_str(&good).unwrap();
        let with = |key: &str, v: serde_json::Value| {
            let mut value = value.clone();
            value[key] = v;
            value.to_string()
        };
        let without = |key: &str| {
            let mut value = value.clone();
            value.as_object_mut().unwrap().remove(key);
            value.to_string()
        };
        let salt = value["salt"].as_str().unwrap().to_owned();
        use serde_json::json;
        let cases: Vec<(String, &str)> = vec![
            (good.clone(), ""),
            (format!(" {good}\n"), ""),
            (String::new(), "valid JSON"),
            ("[]".into(), "valid JSON"),
            (good[..good.len() - 1].to_owned(), "valid JSON"),
            (with("extra", json!(1)), "valid JSON"),
            (without("nonce"), "valid JSON"),
            (with("type", json!("luks2-keyring")), "type"),
            (with("v", json!(2)), "version"),
            (with("v", json!("1")), "valid JSON"),
            (with("keyslots", json!([])), "keyslots"),
            (with("keyslots", json!(["0", "1"])), "keyslots"),
            (with("keyslots", json!(["32"])), "keyslots"),
            (with("keyslots", json!(["00"])), "keyslots"),
            (with("keyslots", json!(["-1"])), "keyslots"),
            (with("keyslots", json!([0])), "valid JSON"),
            (with("salt", json!(salt[..salt.len() - 4])), "`salt`"),
            (with("salt", json!(format!("{salt}AAAA"))), "`salt`"),
            (with("salt", json!(salt.replace('=', ""))), "`salt`"),
            (with("nonce", json!("!!!!!!!!!!!!!!!!")), "`nonce`"),
            (with("wrapped", json!("")), "`wrapped`"),
            (format!("{}{}", " ".repeat(TOKEN_MAX_LEN), good), "more than a token"),
        ];
        for (text, want) in cases {
            match Token::parse(text.as_bytes()) {
                Ok(_) => assert_eq!(want, "", "{text} parsed"),
                Err(e) => {
                    assert!(!want.is_empty() && e.to_string().contains(want), "{text}: {e}")
                }
            }
        }
        // The keyslot "31" is the last there is.
        assert_eq!(
            Token::parse(with("keyslots", json!(["31"])).as_bytes()).unwrap().keyslots,
            [31]
        );
    }

    #[test]
    fn the_passphrase_text_is_64_hex_digits_and_nothing_secret_is_debug_printed() {
        let pass = Passphrase::from_bytes([0xab; 32]);
        assert_eq!(pass.text().as_str(), "ab".repeat(32));
        assert_eq!(format!("{pass:?}"), "Passphrase(..)");
        assert_eq!(format!("{:?}", binding(CID, SERIAL)), "DeviceBinding(..)");
    }
}
