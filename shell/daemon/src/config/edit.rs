//! `slate.toml` as text, where the rest of the file must stay as IT wrote it: the used
//! enrollment token taken out (toml_edit finds it, whatever way the file spells it), one value
//! read for the provisioning script, and whether the installed file is the card's but for the
//! token. slated is the only program that reads the file's TOML.

use super::ConfigError;
use slate_ipc::atomic;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The configuration text without its `[server] enrollment_token` (a used token must not stay
/// on the SD card): the line(s) of that entry go, every other line and comment is kept as it
/// was. `None` when there is no such entry (or the text is not TOML). Pure.
pub fn without_enrollment_token(text: &str) -> Option<String> {
    const KEY: &str = "enrollment_token";
    let doc = toml_edit::Document::parse(text).ok()?;
    match doc.get("server")? {
        // `[server]` or dotted keys (`server.enrollment_token = …`): an entry has its line(s)
        // to itself, so those lines go whole.
        toml_edit::Item::Table(server) => {
            let (key, value) = server.get_key_value(KEY)?;
            let (start, end) = (key.span()?.start, value.span()?.end);
            let start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
            Some(format!("{}{}", &text[..start], &text[end..]))
        }
        // `server = { …, enrollment_token = … }`: that one line is written again without it.
        toml_edit::Item::Value(toml_edit::Value::InlineTable(_)) => {
            let mut doc: toml_edit::DocumentMut = text.parse().ok()?;
            let server = doc.get_mut("server")?.as_inline_table_mut()?;
            server.remove(KEY)?;
            server.fmt();
            Some(doc.to_string())
        }
        _ => None,
    }
}

/// Removes the used enrollment token from the configuration file at `path`, atomically (a
/// temporary file beside it, fsync'd, renamed over, the directory fsync'd; its permissions kept).
pub fn remove_enrollment_token(path: &Path) -> std::io::Result<bool> {
    let text = std::fs::read_to_string(path)?;
    let Some(new) = without_enrollment_token(&text) else { return Ok(false) };
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let tmp = atomic::temporary_beside(path);
    atomic::replace(path, &tmp, Some(mode), new.as_bytes()).map_err(|e| e.source)?;
    Ok(true)
}

/// Whether `installed` is `card`, or `card` with its used token taken out as slated does after
/// enrolling (`slated --same-config`): the card's copy, token and all, is then no new file.
/// Pure.
pub fn same_config(card: &str, installed: &str) -> bool {
    card == installed || without_enrollment_token(card).as_deref() == Some(installed)
}

/// The value at `key` (dotted, `server.public_key`) as written in the file, whether or not the
/// rest of it is a configuration slated accepts: a string as it is, anything else in TOML's
/// form. `None` when it is not there. `path` is for messages (`slated --config-value`). Pure.
pub fn value_as_written(text: &str, path: &Path, key: &str) -> Result<Option<String>, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e| super::syntax(path, &e))?;
    let mut keys = key.split('.');
    let first = keys.next().and_then(|k| table.get(k));
    let value = keys.fold(first, |value, k| value.and_then(|v| v.get(k)));
    Ok(value.map(|value| match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }))
}
