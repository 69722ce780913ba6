//! The durable, append-only event spool (`state_dir/spool/events.log`): what is filed stays filed
//! until the server has it. Owns the record format, crash recovery and the quarantine files; must
//! not talk to the network or decide what to upload when.
//!
//! # Record format
//!
//! One line per event: `<CRC-32 of the JSON, 8 lowercase hex digits> <event JSON>\n`. JSON never
//! holds a raw newline, so after any damage the next line starts a fresh record.
//!
//! # Guarantees
//!
//! - [`Spool::append`] returns only after the record is written and `fdatasync`ed: only then is a
//!   report filed.
//! - [`Spool::open`] never panics on any bytes. A torn last line (no newline, or a bad checksum at
//!   the end: an append that never returned) is cut off, unless it is a whole valid record that
//!   only lacks its newline, which is kept. A damaged line elsewhere is copied to
//!   `spool/corrupt.log` and skipped; every other record is kept.
//! - [`Spool::acknowledge`] and [`Spool::reject`] rewrite the file atomically (temporary file,
//!   fsync, rename, fsync of the directory): after a crash the file is either the old or the new
//!   one. An event uploaded but not yet acknowledged is sent again; the server ingests by id, so
//!   that is harmless.
//! - Nothing leaves without a trace: events the server refuses as malformed go to
//!   `spool/rejected.log`, never nowhere.

use chrono::{DateTime, Utc};
use slate_protocol::{Event, EventId};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const EVENTS_FILE: &str = "events.log";
pub const CORRUPT_FILE: &str = "corrupt.log";
pub const REJECTED_FILE: &str = "rejected.log";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool: cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { action, path: path.to_owned(), source }
}

/// What [`Spool::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records kept.
    pub kept: usize,
    /// Damaged lines copied to `corrupt.log`.
    pub quarantined: usize,
    /// Bytes of a torn last line that were cut off (also copied to `corrupt.log`).
    pub torn_bytes: usize,
    /// A whole last record that only lacked its newline, kept.
    pub repaired_tail: bool,
}

impl Recovery {
    pub fn is_clean(&self) -> bool {
        self.quarantined == 0 && self.torn_bytes == 0 && !self.repaired_tail
    }
}

/// The spool of one device. Not thread-safe by itself: the daemon shares it as [`SharedSpool`].
///
/// The file is opened for each append rather than held open, so that a rewrite can never leave a
/// handle on a replaced file.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Set after a failed append that may have left part of a line behind: the next record
    /// starts with a newline so that the fragment cannot swallow it.
    dirty: bool,
    events: Vec<Event>,
}

/// Encodes one record line.
pub fn encode_record(event: &Event) -> Vec<u8> {
    let json = serde_json::to_vec(event).expect("an event always serialises");
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// Decodes one record line (without its newline). `None` if it is damaged in any way.
pub fn decode_record(line: &[u8]) -> Option<Event> {
    if line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let crc = std::str::from_utf8(&line[..8]).ok().and_then(|h| u32::from_str_radix(h, 16).ok())?;
    if !line[..8].iter().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let json = &line[9..];
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// The result of scanning a spool file's bytes. Pure.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    pub events: Vec<Event>,
    /// Damaged whole lines (without their newline), in file order.
    pub corrupt: Vec<Range<usize>>,
    /// A torn end of the file, to cut off.
    pub torn: Option<Range<usize>>,
    /// The last record was whole and valid but had no newline.
    pub repaired_tail: bool,
}

/// Scans a spool file's bytes. Never panics.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut start = 0;
    // Whole lines first.
    let mut lines: Vec<Range<usize>> = Vec::new();
    while let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        lines.push(start..start + nl);
        start += nl + 1;
    }
    let tail = start..bytes.len();

    if !tail.is_empty() {
        // An append that never returned. Keep it only if it is a whole valid record.
        match decode_record(&bytes[tail.clone()]) {
            Some(event) => {
                for line in &lines {
                    push_line(&mut out, bytes, line.clone());
                }
                out.events.push(event);
                out.repaired_tail = true;
                return out;
            }
            None => out.torn = Some(tail),
        }
    } else if let Some(last) = lines.last().cloned() {
        // A bad checksum on the last line is a torn append too (blocks written out of order).
        if decode_record(&bytes[last.clone()]).is_none() {
            lines.pop();
            out.torn = Some(last.start..bytes.len());
        }
    }
    for line in lines {
        push_line(&mut out, bytes, line);
    }
    out
}

fn push_line(out: &mut Scan, bytes: &[u8], line: Range<usize>) {
    if line.is_empty() {
        // A stray newline holds nothing to lose.
        return;
    }
    match decode_record(&bytes[line.clone()]) {
        Some(event) => out.events.push(event),
        None => out.corrupt.push(line),
    }
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, recovering from any damage.
    pub fn open(dir: &Path) -> Result<(Spool, Recovery), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let path = dir.join(EVENTS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let scan = scan(&bytes);
        let recovery = Recovery {
            kept: scan.events.len(),
            quarantined: scan.corrupt.len(),
            torn_bytes: scan.torn.as_ref().map_or(0, |r| r.len()),
            repaired_tail: scan.repaired_tail,
        };

        if !scan.corrupt.is_empty() || scan.torn.is_some() {
            // Keep the damaged bytes before rewriting the file without them.
            let quarantine = dir.join(CORRUPT_FILE);
            let mut f = append_file(&quarantine)?;
            for range in scan.corrupt.iter().chain(scan.torn.iter()) {
                if bytes[range.clone()].iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let mut line = bytes[range.clone()].to_vec();
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                f.write_all(&line).map_err(io_err("write", &quarantine))?;
            }
            f.sync_data().map_err(io_err("sync", &quarantine))?;
            sync_dir(dir)?;
        }

        if recovery.is_clean() {
            append_file(&path)?;
            sync_dir(dir)?;
        } else {
            rewrite(dir, &scan.events)?;
        }
        let mut events = scan.events;
        events.shrink_to_fit();
        Ok((Spool { dir: dir.to_owned(), dirty: false, events }, recovery))
    }

    /// Appends an event and waits until it is on disk.
    pub fn append(&mut self, event: &Event) -> Result<(), SpoolError> {
        let path = self.dir.join(EVENTS_FILE);
        let mut line = Vec::new();
        if self.dirty {
            line.push(b'\n');
        }
        line.extend_from_slice(&encode_record(event));
        self.dirty = true;
        let mut file = append_file(&path)?;
        file.write_all(&line).map_err(io_err("write", &path))?;
        file.sync_data().map_err(io_err("sync", &path))?;
        self.dirty = false;
        self.events.push(event.clone());
        Ok(())
    }

    /// The events waiting for the server, oldest first.
    pub fn pending(&self) -> &[Event] {
        &self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes events the server has stored. Returns how many were removed.
    pub fn acknowledge(&mut self, ids: &[EventId]) -> Result<usize, SpoolError> {
        let ids: HashSet<EventId> = ids.iter().copied().collect();
        let before = self.events.len();
        let remaining: Vec<Event> =
            self.events.iter().filter(|e| !ids.contains(&e.id)).cloned().collect();
        let removed = before - remaining.len();
        if removed == 0 {
            return Ok(0);
        }
        rewrite(&self.dir, &remaining)?;
        self.dirty = false;
        self.events = remaining;
        Ok(removed)
    }

    /// Moves events the server refused as malformed to `rejected.log` (with the reason), then
    /// removes them from the spool.
    pub fn reject(
        &mut self,
        ids: &[EventId],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, SpoolError> {
        let ids_set: HashSet<EventId> = ids.iter().copied().collect();
        let path = self.dir.join(REJECTED_FILE);
        let mut f = append_file(&path)?;
        for event in self.events.iter().filter(|e| ids_set.contains(&e.id)) {
            let line = serde_json::json!({"rejected_at": at, "reason": reason, "event": event});
            let mut bytes = serde_json::to_vec(&line).expect("JSON values serialise");
            bytes.push(b'\n');
            f.write_all(&bytes).map_err(io_err("write", &path))?;
        }
        f.sync_data().map_err(io_err("sync", &path))?;
        sync_dir(&self.dir)?;
        self.acknowledge(ids)
    }
}

/// The spool shared between the task that files events and the uploader. Every call that
/// touches the disk runs on the blocking pool, so fsync never stalls the async tasks.
#[derive(Debug, Clone)]
pub struct SharedSpool(Arc<Mutex<Spool>>);

impl SharedSpool {
    pub fn new(spool: Spool) -> Self {
        Self(Arc::new(Mutex::new(spool)))
    }

    /// Runs `f` on the spool on the blocking pool.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> R + Send + 'static,
    ) -> R {
        let inner = self.0.clone();
        let task = tokio::task::spawn_blocking(move || f(&mut lock(&inner)));
        match task.await {
            Ok(r) => r,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("spool task did not finish: {e}"),
            },
        }
    }

    /// The number of events waiting (no disk access).
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of up to `n` of the oldest events waiting (no disk access).
    pub fn oldest(&self, n: usize) -> Vec<Event> {
        let spool = lock(&self.0);
        spool.pending()[..n.min(spool.len())].to_vec()
    }
}

/// A panic while holding the lock cannot leave the spool half-changed on disk (every change is
/// atomic there), so a poisoned lock is still usable.
fn lock(m: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn append_file(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new().create(true).append(true).open(path).map_err(io_err("open", path))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync", dir))
}

/// Atomically replaces `events.log` with `events`.
fn rewrite(dir: &Path, events: &[Event]) -> Result<(), SpoolError> {
    let path = dir.join(EVENTS_FILE);
    let tmp = dir.join(format!("{EVENTS_FILE}.tmp"));
    {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let mut buf = Vec::new();
        for event in events {
            buf.extend_from_slice(&encode_record(event));
        }
        f.write_all(&buf).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err("replace", &path))?;
    // Past the rename the new file is in place; a failed directory sync only means it might not
    // survive a power cut, and then the old file (a superset) comes back: duplicates, no loss.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(error = %e, "spool directory sync failed after a rewrite");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::{DeviceNumber, EventBody};

    fn event(n: u64) -> Event {
        Event::new(
            DeviceNumber::new(12).unwrap(),
            "2026-11-17T10:14:03Z".parse().unwrap(),
            EventBody::Heartbeat {
                uptime_s: n,
                spool_pending: 0,
                button_fault: None,
                display_fault: None,
            },
        )
    }

    fn events(n: u64) -> Vec<Event> {
        (0..n).map(event).collect()
    }

    fn filled(dir: &Path, n: u64) -> Vec<Event> {
        let (mut spool, _) = Spool::open(dir).unwrap();
        let evs = events(n);
        for e in &evs {
            spool.append(e).unwrap();
        }
        evs
    }

    fn log(dir: &Path) -> PathBuf {
        dir.join(EVENTS_FILE)
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean());
        assert!(spool.is_empty());
        let evs = events(3);
        for e in &evs {
            spool.append(e).unwrap();
        }
        assert_eq!(spool.pending(), &evs[..]);
        let text = std::fs::read_to_string(log(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 3);
        let first = text.lines().next().unwrap();
        assert_eq!(first.as_bytes()[8], b' ');
        assert_eq!(decode_record(first.as_bytes()).as_ref(), Some(&evs[0]));
    }

    #[test]
    fn reopening_after_drop_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 5);
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(recovery, Recovery { kept: 5, ..Recovery::default() });
        assert_eq!(spool.pending(), &evs[..]);
    }

    #[test]
    fn a_torn_last_record_is_cut_and_earlier_ones_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 3);
        let half = encode_record(&event(99));
        let mut f = OpenOptions::new().append(true).open(log(dir.path())).unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);

        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(recovery.kept, 3);
        assert_eq!(recovery.torn_bytes, half.len() / 2);
        assert_eq!(recovery.quarantined, 0);
        assert_eq!(spool.pending(), &evs[..]);
        // The file is clean again and appends line up.
        let e = event(100);
        spool.append(&e).unwrap();
        drop(spool);
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean(), "{recovery:?}");
        assert_eq!(spool.len(), 4);
        assert_eq!(spool.pending()[3], e);
        // The torn bytes were kept for inspection.
        let corrupt = std::fs::read(dir.path().join(CORRUPT_FILE)).unwrap();
        assert_eq!(&corrupt[..half.len() / 2], &half[..half.len() / 2]);
    }

    #[test]
    fn a_bad_checksum_on_the_last_line_is_a_torn_append() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 3);
        let mut bytes = std::fs::read(log(dir.path())).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x01;
        std::fs::write(log(dir.path()), &bytes).unwrap();
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending(), &evs[..2]);
        assert!(recovery.torn_bytes > 0);
    }

    #[test]
    fn a_whole_last_record_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 2);
        let mut bytes = std::fs::read(log(dir.path())).unwrap();
        bytes.pop();
        std::fs::write(log(dir.path()), &bytes).unwrap();
        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.repaired_tail);
        assert_eq!(spool.pending(), &evs[..]);
        spool.append(&event(7)).unwrap();
        drop(spool);
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean());
        assert_eq!(spool.len(), 3);
    }

    #[test]
    fn a_flipped_byte_in_the_middle_quarantines_only_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 5);
        let mut bytes = std::fs::read(log(dir.path())).unwrap();
        let line_len = encode_record(&evs[0]).len();
        // The events all have the same length; damage the middle of the third line.
        let target = 2 * line_len + line_len / 2;
        let original_line = bytes[2 * line_len..3 * line_len - 1].to_vec();
        bytes[target] ^= 0x20;
        std::fs::write(log(dir.path()), &bytes).unwrap();

        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(recovery.quarantined, 1);
        assert_eq!(recovery.kept, 4);
        let expected: Vec<Event> =
            evs.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, e)| e.clone()).collect();
        assert_eq!(spool.pending(), &expected[..]);
        let corrupt = std::fs::read(dir.path().join(CORRUPT_FILE)).unwrap();
        assert_eq!(corrupt.len(), original_line.len() + 1);
        assert_ne!(corrupt[..original_line.len()], original_line[..]);
        drop(spool);
        // Repaired once: a second open finds nothing wrong and quarantines nothing again.
        let (_, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean(), "{recovery:?}");
        assert_eq!(std::fs::read(dir.path().join(CORRUPT_FILE)).unwrap(), corrupt);
    }

    #[test]
    fn garbage_never_panics() {
        // A small xorshift makes arbitrary bytes without a dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let good = encode_record(&event(1));
        for round in 0..300 {
            let len = (next() % 600) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 8 {
                    0 => b'\n',
                    1 => b' ',
                    2 => b'0',
                    _ => next() as u8,
                })
                .collect();
            if round % 3 == 0 {
                // Real records among the garbage must survive it.
                bytes.push(b'\n');
                bytes.extend_from_slice(&good);
                bytes.extend_from_slice(b"\n\xff garbage\n");
                bytes.extend_from_slice(&good);
            }
            let s = scan(&bytes);
            if round % 3 == 0 {
                assert!(s.events.len() >= 2, "round {round}");
            }
            if round % 10 == 0 {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(log(dir.path()), &bytes).unwrap();
                let (spool, _) = Spool::open(dir.path()).unwrap();
                assert_eq!(spool.len(), s.events.len());
            }
        }
        assert_eq!(scan(b""), Scan::default());
        assert_eq!(scan(b"\n\n\n").events.len(), 0);
        assert!(decode_record(b"zzzzzzzz {}").is_none());
        assert!(decode_record(b"+0000000 {}").is_none());
        assert!(decode_record("ééééé {}".as_bytes()).is_none());
    }

    #[test]
    fn acknowledge_is_atomic_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 6);
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let acked: Vec<EventId> = evs[..4].iter().map(|e| e.id).collect();
        assert_eq!(spool.acknowledge(&acked).unwrap(), 4);
        assert_eq!(spool.acknowledge(&acked).unwrap(), 0);
        assert_eq!(spool.pending(), &evs[4..]);
        assert!(!dir.path().join(format!("{EVENTS_FILE}.tmp")).exists());
        // Appends after a rewrite go to the new file.
        let e = event(50);
        spool.append(&e).unwrap();
        drop(spool);
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean());
        assert_eq!(spool.pending(), &[evs[4].clone(), evs[5].clone(), e][..]);
    }

    #[test]
    fn a_leftover_temporary_file_from_a_crash_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 2);
        std::fs::write(dir.path().join(format!("{EVENTS_FILE}.tmp")), b"half a rewr").unwrap();
        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean());
        assert_eq!(spool.pending(), &evs[..]);
        spool.acknowledge(&[evs[0].id]).unwrap();
        assert_eq!(spool.pending(), &evs[1..]);
    }

    #[test]
    fn rejected_events_are_kept_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 3);
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let at = "2026-11-17T11:00:00Z".parse().unwrap();
        assert_eq!(spool.reject(&[evs[1].id], "invalid field `url`", at).unwrap(), 1);
        assert_eq!(spool.pending(), &[evs[0].clone(), evs[2].clone()][..]);
        let text = std::fs::read_to_string(dir.path().join(REJECTED_FILE)).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["reason"], "invalid field `url`");
        let kept: Event = serde_json::from_value(line["event"].clone()).unwrap();
        assert_eq!(kept, evs[1]);
    }
}
