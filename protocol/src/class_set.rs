//! A class set from one card image (issue 15): what a device with no number in its `slate.toml`
//! says to the server, and the two things both halves must compute alike: a device's serial
//! number as IT's list has it ([`normalise_serial`]) and the class-set token's setup code
//! ([`setup_code`]), which IT types on the device's setup screen.
//!
//! ```text
//! device                                          server
//!   POST /api/v1/enroll/number  NumberRequest --->
//!                                             <---  200 NumberReply   (the number IT listed)
//!                                             <---  404 ErrorReply    (serial not on IT's list)
//!                                             <---  401 ErrorReply    (token refused)
//! ```
//!
//! A server older than this route answers 404 without an `ErrorReply` saying "not on the list":
//! the device then asks IT on its setup screen, as for a serial that is not listed.
//!
//! No I/O.

use crate::{check_text, check_version, decode, invalid, DeviceNumber, ProtocolError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many digits a setup code has: 10^8 codes, with wrong tries throttled on the device, is
/// beyond a child's guessing.
pub const SETUP_CODE_DIGITS: usize = 8;

/// The setup code of a class-set token: the first [`SETUP_CODE_DIGITS`] decimal digits of a
/// SHA-256 of the token. `slate-server enrollment-token --class-set` prints it beside the token;
/// the device, which has the token in its `slate.toml`, checks what IT types against it. It is
/// no secret from whoever has the card (the token is stronger); it keeps a pupil at the
/// touchscreen from choosing the device's number.
pub fn setup_code(token: &str) -> String {
    let digest = Sha256::new().chain_update(b"slate setup code\0").chain_update(token).finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    format!("{:0width$}", n % 10u64.pow(SETUP_CODE_DIGITS as u32), width = SETUP_CODE_DIGITS)
}

/// A device's serial number as IT's list and the device both write it: a Raspberry Pi's serial
/// (`/proc/cpuinfo`, `/sys/firmware/devicetree/base/serial-number`: hex, with or without its
/// leading zeros) or a MAC address (`dc:a6:32:01:02:03`, `DC-A6-32-01-02-03`): lower-case hex
/// without separators or leading zeros. Refused: anything else, empty, over 32 hex digits.
pub fn normalise_serial(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('\0');
    if text.is_empty() {
        return Err("is empty".into());
    }
    let mut hex = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ':' | '-' => {}
            c if c.is_ascii_hexdigit() => hex.push(c.to_ascii_lowercase()),
            _ => {
                return Err(format!(
                    "`{}` is not a serial number or MAC address (hex digits, `:` or `-`)",
                    text.chars().filter(|c| !c.is_control()).take(40).collect::<String>()
                ))
            }
        }
    }
    if hex.len() > 32 {
        return Err(format!("{} hex digits, over the limit of 32", hex.len()));
    }
    let trimmed = hex.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() })
}

/// A device with no number asking which number IT listed for its serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRequest {
    pub v: u16,
    /// The class-set token from the device's `slate.toml`.
    pub token: String,
    /// As [`normalise_serial`] writes it.
    pub serial: String,
}

impl NumberRequest {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let req: NumberRequest = decode(bytes)?;
        check_version(req.v)?;
        check_text("token", &req.token, 128)?;
        if req.token.is_empty() {
            return Err(invalid("token", "is empty"));
        }
        match normalise_serial(&req.serial) {
            Ok(serial) if serial == req.serial => Ok(req),
            Ok(_) => Err(invalid("serial", "is not written as normalise_serial writes it")),
            Err(reason) => Err(invalid("serial", reason)),
        }
    }
}

/// The number IT listed for the serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberReply {
    pub device: DeviceNumber,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_macs_are_written_one_way() {
        for (given, want) in [
            ("10000000abcdef01", Ok("10000000abcdef01")),
            ("00000000ABCDEF01\0", Ok("abcdef01")),
            ("abcdef01\n", Ok("abcdef01")),
            ("dc:a6:32:01:02:03", Ok("dca632010203")),
            ("DC-A6-32-01-02-03", Ok("dca632010203")),
            ("0000", Ok("0")),
            ("", Err("is empty")),
            ("dc a6", Err("is not a serial")),
            ("serial; DROP", Err("is not a serial")),
            (&"f".repeat(33), Err("over the limit")),
        ] {
            match (normalise_serial(given), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{given:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{given:?}: {got}"),
                (got, want) => panic!("{given:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_setup_code_is_eight_digits_of_its_token_alone() {
        let a = setup_code("tok-a");
        assert_eq!(a.len(), SETUP_CODE_DIGITS);
        assert!(a.bytes().all(|b| b.is_ascii_digit()), "{a}");
        assert_eq!(a, setup_code("tok-a"));
        assert_ne!(a, setup_code("tok-b"));
    }

    #[test]
    fn number_requests_are_checked() {
        let ok = br#"{"v":1,"token":"t","serial":"abcdef01"}"#;
        assert_eq!(NumberRequest::from_json(ok).unwrap().serial, "abcdef01");
        for (bad, field) in [
            (&br#"{"v":1,"token":"","serial":"abcdef01"}"#[..], "token"),
            (br#"{"v":1,"token":"t","serial":"ABCDEF01"}"#, "serial"),
            (br#"{"v":1,"token":"t","serial":"x"}"#, "serial"),
            (br#"{"v":1,"token":"t","serial":"a","more":1}"#, "more"),
        ] {
            let e = NumberRequest::from_json(bad).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        assert_eq!(
            NumberRequest::from_json(br#"{"v":2,"token":"t","serial":"a"}"#),
            Err(ProtocolError::UnsupportedVersion(2))
        );
    }
}
