//! The "this device is not set up right" message (issue 7): when slated's config is refused at
//! first boot, the provisioning unit writes one message naming the file and the field to a file
//! (`/run/slate/config-error`), and slate-ui shows it full screen for IT. Owns reading and tidying
//! that message; must not decide when it is shown (that is [`crate::screen`]).
//!
//! Format: UTF-8 text, e.g. ``/boot/firmware/slate.toml: field `server.url` is not an https://
//! address``. An empty or missing file means nothing is wrong.

use std::path::Path;

/// The most of the message shown, so that it fits the 800x480 screen. It is one sentence; a
/// longer one is cut, never refused, because IT still needs to see that something is wrong.
pub const MAX_CHARS: usize = 240;

/// The message to show, or `None` when the file says nothing. Pure: invalid UTF-8 is replaced,
/// control characters (a terminal escape, a NUL) become spaces, runs of blank space are folded
/// and an over-long message is cut with "…".
pub fn message(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let folded = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        return None;
    }
    if folded.chars().count() > MAX_CHARS {
        let cut: String = folded.chars().take(MAX_CHARS).collect();
        return Some(format!("{cut}…"));
    }
    Some(folded)
}

/// Reads the file; missing or unreadable means nothing to show (the UI then goes on to whatever
/// slated says, and fails closed there if slated is not running).
pub fn read(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(4 * MAX_CHARS as u64 + 16).read_to_end(&mut bytes).ok()?;
    message(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_tidied_for_the_screen() {
        let field = "/boot/firmware/slate.toml: field `server.url` is not an https:// address";
        #[rustfmt::skip]
        let table: Vec<(Vec<u8>, Option<String>)> = vec![
            (format!("{field}\n").into_bytes(), Some(field.into())),
            (b"".to_vec(), None),
            (b" \n\t \n".to_vec(), None),
            (b"a\x1b[31mb\x00c\n\nd".to_vec(), Some("a [31mb c d".into())),
            (b"bad \xff byte".to_vec(), Some("bad \u{fffd} byte".into())),
        ];
        for (bytes, expected) in table {
            assert_eq!(message(&bytes), expected, "{bytes:?}");
        }
        let long = "x".repeat(MAX_CHARS + 50);
        let shown = message(long.as_bytes()).unwrap();
        assert_eq!(shown.chars().count(), MAX_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_missing_file_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config-error");
        assert_eq!(read(&path), None);
        std::fs::write(&path, "slate.toml: field `device.number` must be 1 to 9999\n").unwrap();
        assert_eq!(
            read(&path).as_deref(),
            Some("slate.toml: field `device.number` must be 1 to 9999")
        );
    }
}
