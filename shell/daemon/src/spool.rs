//! The durable, append-only event spool (`state_dir/spool/`): what is filed stays filed until
//! the server has it. Owns the record format, crash recovery, the quarantine files, the space
//! held back for reports and what is kept in memory when the card is full; must not talk to the
//! network or decide what to upload when.
//!
//! # Files
//!
//! - `events-<seq>.log`, segments, appended to and never rewritten in normal running. One line
//!   per event: `<CRC-32 of the JSON, 8 lowercase hex digits> <event JSON>\n`. JSON never holds a
//!   raw newline, so after any damage the next line starts a fresh record. A segment is closed
//!   at [`SpoolLimits::segment_bytes`] and a new one started (also at every open).
//! - `events-<seq>.acked`, beside its segment: one line per event the server has (or that was
//!   dropped), `<CRC-32 of the id> <id>\n`. An acknowledgement is one append and one fsync per
//!   segment it touches, whatever the backlog: a week offline costs O(N) writes, not O(N²).
//!   A segment whose events are all acknowledged is deleted with its `.acked` file.
//! - `reserve`: [`SpoolLimits::reserve_bytes`] of zeros, deleted when the card is full so that
//!   reports still have room, made again when there is room.
//! - `corrupt.log` (damaged lines), `rejected.log` (events the server refused as malformed).
//! - `events.log`, the single file of older versions, is taken over as the first segment.
//!
//! # Guarantees
//!
//! - [`Spool::append`] returns `Ok` only after the record is written and `fdatasync`ed: only
//!   then is a report filed. When it cannot be written (a full card, I/O errors, a spool that
//!   could not be opened) the event is kept in memory, uploaded from there, written when the
//!   card takes it again ([`Spool::retry`]), and `append` says so with `Err`.
//! - Memory holds an index of the pending events (about 50 bytes each), never their bodies, and
//!   at most [`SpoolLimits::max_pending`] of them: past that the oldest events that are not
//!   reports are dropped (and counted); reports never are. Events kept in memory for want of
//!   a card are capped the same way at [`SpoolLimits::max_in_memory`].
//! - [`Spool::open`] never panics on any bytes. A torn end of a segment (an append that never
//!   returned: no newline, or a bad checksum on the last line) is cut off with a truncation,
//!   which needs no space, unless it is a whole valid record that only lacks its newline, which
//!   is kept. A damaged line elsewhere is copied to `corrupt.log` and the segment rewritten
//!   without it (atomically); every other record is kept. Copies and rewrites that fail for
//!   want of space are skipped, never fatal.
//! - An event uploaded but not yet acknowledged is sent again; the server ingests by id, so
//!   that is harmless. Nothing leaves without a trace: events the server refuses as malformed
//!   go to `rejected.log`, never nowhere.

use chrono::{DateTime, Utc};
use slate_ipc::atomic::{self, ReplaceError, Step};
pub use slate_protocol::StorageFault;
use slate_protocol::{Event, EventBody, EventId};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The single spool file of older versions, taken over as the first segment.
pub const LEGACY_EVENTS_FILE: &str = "events.log";
pub const CORRUPT_FILE: &str = "corrupt.log";
pub const REJECTED_FILE: &str = "rejected.log";
pub const RESERVE_FILE: &str = "reserve";
/// How often a missing reserve is made again while the card is full (each try writes it).
const RESERVE_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool: cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("spool: not open yet ({0}); events are kept in memory")]
    NotOpen(String),
}

impl SpoolError {
    /// What this failure says of the card.
    pub fn fault(&self) -> StorageFault {
        match self {
            SpoolError::Io { source, .. } if is_full(source) => StorageFault::Full,
            _ => StorageFault::Unwritable,
        }
    }
}

fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(nix::errno::Errno::ENOSPC as i32)
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io { action, path: path.to_owned(), source }
}

/// How big the spool may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Events waiting (on the card and in memory) past which the oldest non-report events are
    /// dropped. 250,000 is weeks offline for a busy device, and about 12 MB of index.
    pub max_pending: usize,
    /// Events kept in memory for want of a card, past which non-report ones are dropped.
    pub max_in_memory: usize,
    /// A segment is closed once it is this big.
    pub segment_bytes: u64,
    /// Space held back for reports on a full card (a report is under 2 KiB).
    pub reserve_bytes: u64,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        Self {
            max_pending: 250_000,
            max_in_memory: 20_000,
            segment_bytes: 1 << 20,
            reserve_bytes: 1 << 20,
        }
    }
}

/// What [`Spool::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records kept (waiting for the server).
    pub kept: usize,
    /// Damaged lines copied to `corrupt.log`.
    pub quarantined: usize,
    /// Bytes of torn segment ends that were cut off (also copied to `corrupt.log`).
    pub torn_bytes: usize,
    /// A whole last record that only lacked its newline, kept.
    pub repaired_tail: bool,
}

impl Recovery {
    pub fn is_clean(&self) -> bool {
        self.quarantined == 0 && self.torn_bytes == 0 && !self.repaired_tail
    }
}

/// Counters for status and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes this spool wrote to the card (records, acknowledgements, repairs, the reserve).
    pub bytes_written: u64,
    /// Non-report events dropped because a cap was reached.
    pub dropped: u64,
}

/// A record read back: its event, or the bytes found (if any could be read) when they do not
/// decode to the event the index expects.
type ReadBack = Result<Event, Option<Vec<u8>>>;

/// One pending event on the card: where its record is. The body stays on the card.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: EventId,
    segment: u64,
    offset: u64,
    len: u32,
    report: bool,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Events in it not yet acknowledged.
    pending: usize,
}

/// The spool of one device. Not thread-safe by itself: the daemon shares it as [`SharedSpool`].
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Pending events on the card, oldest first.
    entries: VecDeque<Entry>,
    /// Segments that still hold pending events (and the one being appended to).
    segments: BTreeMap<u64, Segment>,
    /// The segment being appended to.
    active: Option<u64>,
    next_segment: u64,
    /// Set after a failed append that may have left part of a line behind: the next record
    /// starts with a newline so that the fragment cannot swallow it.
    dirty: bool,
    /// Events that could not be written, after those on the card, oldest first.
    memory: VecDeque<Event>,
    /// `Some` until the directory could be opened: why not.
    unopened: Option<String>,
    fault: Option<StorageFault>,
    /// The reserve is in place.
    reserved: bool,
    reserve_tried: Option<Instant>,
    stats: SpoolStats,
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
    let payload = checked_payload(line)?;
    serde_json::from_slice(payload).ok()
}

/// The payload of `<crc> <payload>` if the checksum matches.
fn checked_payload(line: &[u8]) -> Option<&[u8]> {
    if line.len() < 10 || line[8] != b' ' || !line[..8].iter().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let crc = std::str::from_utf8(&line[..8]).ok().and_then(|h| u32::from_str_radix(h, 16).ok())?;
    let payload = &line[9..];
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Encodes one acknowledgement line.
pub fn encode_ack(id: &EventId) -> Vec<u8> {
    let text = id.to_string();
    format!("{:08x} {text}\n", crc32fast::hash(text.as_bytes())).into_bytes()
}

/// The ids in an `.acked` file's bytes; damaged lines (a torn append) are skipped: the events
/// they named are sent again, which the server ignores. Pure.
pub fn scan_acks(bytes: &[u8]) -> HashSet<EventId> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(checked_payload)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter_map(|t| serde_json::from_value(serde_json::Value::String(t.to_owned())).ok())
        .collect()
}

/// One valid record found by [`scan`]: where its line is (without the newline), and the event.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub at: Range<usize>,
    pub event: Event,
}

/// The result of scanning a segment's bytes. Pure.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    pub events: Vec<Record>,
    /// Damaged whole lines (without their newline), in file order.
    pub corrupt: Vec<Range<usize>>,
    /// A torn end of the file, to cut off.
    pub torn: Option<Range<usize>>,
    /// The last record was whole and valid but had no newline.
    pub repaired_tail: bool,
}

/// Scans a segment's bytes. Never panics.
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
                out.events.push(Record { at: tail, event });
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
        Some(event) => out.events.push(Record { at: line, event }),
        None => out.corrupt.push(line),
    }
}

/// Which events to drop to make room for `needed` more: the oldest that are not reports, at
/// most `needed` of them, as positions in `is_report` (oldest first). Reports are never chosen,
/// so fewer may come back. Pure.
pub fn choose_drops(is_report: impl IntoIterator<Item = bool>, needed: usize) -> Vec<usize> {
    is_report
        .into_iter()
        .enumerate()
        .filter(|(_, report)| !report)
        .map(|(i, _)| i)
        .take(needed)
        .collect()
}

fn is_report(event: &Event) -> bool {
    matches!(event.body, EventBody::ReportFiled { .. })
}

/// `events-<seq>.log` and `events-<seq>.acked`.
fn segment_name(seq: u64, ext: &str) -> String {
    format!("events-{seq:020}.{ext}")
}

/// The segment number and extension of a spool file's name, if it is one.
fn parse_segment_name(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix("events-")?;
    let (seq, ext) = rest.split_once('.')?;
    if seq.len() != 20 || !matches!(ext, "log" | "acked") {
        return None;
    }
    Some((seq.parse().ok()?, ext))
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` with the default limits, recovering from
    /// any damage.
    pub fn open(dir: &Path) -> Result<(Spool, Recovery), SpoolError> {
        Self::open_with(dir, SpoolLimits::default())
    }

    /// A spool whose directory could not be opened (`why`): events are kept in memory (and
    /// uploaded from there) and [`Spool::retry`] tries to open it again.
    pub fn unopened(dir: &Path, limits: SpoolLimits, why: &SpoolError) -> Spool {
        let mut spool = Spool::empty(dir, limits);
        spool.unopened = Some(why.to_string());
        spool.fault = Some(why.fault());
        spool
    }

    fn empty(dir: &Path, limits: SpoolLimits) -> Spool {
        Spool {
            dir: dir.to_owned(),
            limits,
            entries: VecDeque::new(),
            segments: BTreeMap::new(),
            active: None,
            next_segment: 0,
            dirty: false,
            memory: VecDeque::new(),
            unopened: None,
            fault: None,
            reserved: false,
            reserve_tried: None,
            stats: SpoolStats::default(),
        }
    }

    /// Opens (creating if needed) the spool in `dir`, recovering from any damage. Fails only
    /// when the directory cannot be made or read; damage that needs space to repair is left.
    pub fn open_with(dir: &Path, limits: SpoolLimits) -> Result<(Spool, Recovery), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut spool = Spool::empty(dir, limits);
        spool.take_over_legacy()?;
        let mut logs = Vec::new();
        let mut acks = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
            let entry = entry.map_err(io_err("list", dir))?;
            let name = entry.file_name();
            match parse_segment_name(&name.to_string_lossy()) {
                Some((seq, "log")) => logs.push(seq),
                Some((seq, _)) => acks.push(seq),
                None => {}
            }
        }
        logs.sort_unstable();
        // An `.acked` file whose segment is gone is left from a deletion cut short.
        for seq in acks.iter().filter(|s| logs.binary_search(s).is_err()) {
            let _ = std::fs::remove_file(dir.join(segment_name(*seq, "acked")));
        }
        let mut recovery = Recovery::default();
        for &seq in &logs {
            spool.recover_segment(seq, &mut recovery)?;
        }
        spool.next_segment = logs.last().map_or(0, |s| s + 1);
        recovery.kept = spool.entries.len();
        spool.entries.shrink_to_fit();
        if let Err(e) = spool.make_reserve() {
            tracing::error!(error = %e, "no space held back for reports");
            spool.fault = Some(e.fault());
        }
        Ok((spool, recovery))
    }

    /// Renames an older version's `events.log` to the first segment.
    fn take_over_legacy(&mut self) -> Result<(), SpoolError> {
        let legacy = self.dir.join(LEGACY_EVENTS_FILE);
        if !legacy.exists() {
            return Ok(());
        }
        let mut seq = 0;
        while self.dir.join(segment_name(seq, "log")).exists() {
            seq += 1;
        }
        let target = self.dir.join(segment_name(seq, "log"));
        std::fs::rename(&legacy, &target).map_err(io_err("rename", &legacy))?;
        sync_dir(&self.dir)
    }

    /// Reads one segment and its acknowledgements, repairs what it can, and indexes its
    /// pending events. A segment with none left is deleted.
    fn recover_segment(&mut self, seq: u64, recovery: &mut Recovery) -> Result<(), SpoolError> {
        let path = self.dir.join(segment_name(seq, "log"));
        let mut bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        let mut found = scan(&bytes);
        recovery.quarantined += found.corrupt.len();
        recovery.torn_bytes += found.torn.as_ref().map_or(0, |r| r.len());
        recovery.repaired_tail |= found.repaired_tail;
        if !found.corrupt.is_empty() || found.torn.is_some() {
            let damaged: Vec<&[u8]> =
                found.corrupt.iter().chain(found.torn.iter()).map(|r| &bytes[r.clone()]).collect();
            if let Err(e) = self.quarantine(&damaged) {
                tracing::error!(error = %e, "damaged spool lines not copied to corrupt.log");
            }
        }
        if !found.corrupt.is_empty() {
            let events: Vec<&Event> = found.events.iter().map(|r| &r.event).collect();
            match self.rewrite_segment(&path, &events) {
                Ok(()) => {
                    bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
                    found = scan(&bytes);
                }
                // The damaged lines stay in the file and are skipped again on the next open.
                Err(e) => tracing::error!(error = %e, "spool segment not rewritten"),
            }
        } else if let Some(torn) = &found.torn {
            // Cutting needs no space, so a full card does not stop it.
            let cut = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(torn.start as u64).and_then(|()| f.sync_all()));
            if let Err(e) = cut {
                tracing::error!(error = %e, path = %path.display(), "torn spool end not cut off");
            }
        } else if found.repaired_tail {
            let newline = append_file(&path).and_then(|mut f| {
                f.write_all(b"\n").map_err(io_err("write", &path))?;
                f.sync_data().map_err(io_err("sync", &path))
            });
            match newline {
                Ok(()) => self.stats.bytes_written += 1,
                Err(e) => tracing::warn!(error = %e, "spool segment's last newline not added"),
            }
        }
        let acked_path = self.dir.join(segment_name(seq, "acked"));
        let acked = match std::fs::read(&acked_path) {
            Ok(b) => scan_acks(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(io_err("read", &acked_path)(e)),
        };
        let mut pending = 0;
        for record in found.events {
            if acked.contains(&record.event.id) {
                continue;
            }
            pending += 1;
            self.entries.push_back(Entry {
                id: record.event.id,
                segment: seq,
                offset: record.at.start as u64,
                len: record.at.len() as u32,
                report: is_report(&record.event),
            });
        }
        if pending == 0 {
            self.remove_segment(seq);
        } else {
            self.segments.insert(seq, Segment { pending });
        }
        Ok(())
    }

    /// Tries again what failed: opening the directory, writing the events kept in memory, and
    /// (at most every 30 s) making the reserve again. Cheap when there is nothing to do.
    pub fn retry(&mut self) {
        if let Some(why) = self.unopened.clone() {
            match Spool::open_with(&self.dir, self.limits) {
                Ok((opened, recovery)) => {
                    tracing::info!(kept = recovery.kept, was = %why, "spool opened after all");
                    let memory = std::mem::take(&mut self.memory);
                    let stats = self.stats;
                    *self = opened;
                    self.memory = memory;
                    self.stats.bytes_written += stats.bytes_written;
                    self.stats.dropped += stats.dropped;
                }
                Err(e) => {
                    self.fault = Some(e.fault());
                    return;
                }
            }
        }
        if let Err(e) = self.flush_memory() {
            self.fault = Some(e.fault());
            return;
        }
        if !self.reserved && self.reserve_tried.is_none_or(|at| at.elapsed() >= RESERVE_RETRY) {
            self.reserve_tried = Some(Instant::now());
            if let Err(e) = self.make_reserve() {
                tracing::debug!(error = %e, "the reserve is still not back");
                self.fault = Some(e.fault());
                return;
            }
        }
        if self.reserved && self.fault.take().is_some() {
            tracing::info!("the spool is writable again, with its reserve");
        }
    }

    /// Whether [`Spool::retry`] has anything to do.
    pub fn needs_retry(&self) -> bool {
        self.unopened.is_some() || !self.memory.is_empty() || self.fault.is_some()
    }

    /// What is wrong with the card, if anything.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        self.fault
    }

    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    /// Events kept in memory because they could not be written.
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Appends an event and waits until it is on the card. On `Err` the event is kept in
    /// memory (uploaded from there, written by [`Spool::retry`]): it is not lost while slated
    /// runs, but it is not filed.
    pub fn append(&mut self, event: &Event) -> Result<(), SpoolError> {
        if let Some(why) = &self.unopened {
            let error = SpoolError::NotOpen(why.clone());
            self.keep_in_memory(event.clone());
            return Err(error);
        }
        // Keep the order: whatever waits in memory goes first.
        if let Err(e) = self.flush_memory() {
            self.keep_in_memory(event.clone());
            self.fault = Some(e.fault());
            return Err(e);
        }
        self.make_room(1);
        match self.store(event) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.fault = Some(e.fault());
                self.keep_in_memory(event.clone());
                Err(e)
            }
        }
    }

    /// Writes the events kept in memory, oldest first, until one fails.
    fn flush_memory(&mut self) -> Result<(), SpoolError> {
        if self.unopened.is_some() {
            return Ok(());
        }
        while let Some(event) = self.memory.front() {
            let event = event.clone();
            self.store(&event)?;
            self.memory.pop_front();
            tracing::info!(event = %event.id, "event written to the spool after a retry");
        }
        Ok(())
    }

    /// Writes one record; on a full card frees the reserve and tries once more.
    fn store(&mut self, event: &Event) -> Result<(), SpoolError> {
        match self.write_record(event) {
            Err(e) if e.fault() == StorageFault::Full && self.reserved => {
                self.free_reserve();
                self.fault = Some(StorageFault::Full);
                tracing::warn!("the card is full: the space held back for reports is in use");
                self.write_record(event)
            }
            other => other,
        }
    }

    fn write_record(&mut self, event: &Event) -> Result<(), SpoolError> {
        // Opened for each append rather than held open: a card remounted or a directory made
        // again must not swallow records into a file nobody can see any more.
        let open_active = match self.active {
            Some(seq) => match OpenOptions::new()
                .append(true)
                .open(self.dir.join(segment_name(seq, "log")))
            {
                Ok(file) => Some((seq, file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("open", &self.dir.join(segment_name(seq, "log")))(e)),
            },
            None => None,
        };
        let (seq, mut file) = match open_active {
            Some(open) => open,
            None => self.start_segment()?,
        };
        let path = self.dir.join(segment_name(seq, "log"));
        // Where this record starts is where the file ends now, whatever an earlier failed
        // append left.
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        let mut line = Vec::new();
        if self.dirty {
            line.push(b'\n');
        }
        let offset = len + line.len() as u64;
        let record = encode_record(event);
        let record_len = (record.len() - 1) as u32;
        line.extend_from_slice(&record);
        self.dirty = true;
        file.write_all(&line).map_err(io_err("write", &path))?;
        file.sync_data().map_err(io_err("sync", &path))?;
        self.dirty = false;
        self.stats.bytes_written += line.len() as u64;
        self.entries.push_back(Entry {
            id: event.id,
            segment: seq,
            offset,
            len: record_len,
            report: is_report(event),
        });
        self.segments.entry(seq).or_insert(Segment { pending: 0 }).pending += 1;
        // Full: the next append starts the next segment.
        if len + line.len() as u64 >= self.limits.segment_bytes {
            self.active = None;
        }
        Ok(())
    }

    /// Makes the next segment, its name durable, and appends to it from now on.
    fn start_segment(&mut self) -> Result<(u64, File), SpoolError> {
        if let Some(seq) = self.active.take() {
            if self.segments.get(&seq).is_some_and(|s| s.pending == 0) {
                self.remove_segment(seq);
            }
        }
        let seq = self.next_segment;
        let path = self.dir.join(segment_name(seq, "log"));
        let file = append_file(&path)?;
        sync_dir(&self.dir)?;
        self.next_segment += 1;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        self.dirty = len > 0;
        self.segments.entry(seq).or_insert(Segment { pending: 0 });
        self.active = Some(seq);
        Ok((seq, file))
    }

    /// Keeps an event that could not be written, dropping the oldest non-report ones kept if
    /// memory is over its cap.
    fn keep_in_memory(&mut self, event: Event) {
        tracing::error!(event = %event.id, waiting = self.memory.len() + 1, "event kept in memory: the spool is not writable");
        self.memory.push_back(event);
        let over = self.memory.len().saturating_sub(self.limits.max_in_memory);
        if over > 0 {
            let drops = choose_drops(self.memory.iter().map(is_report), over);
            self.drop_from_memory(&drops);
        }
    }

    fn drop_from_memory(&mut self, positions: &[usize]) {
        if positions.is_empty() {
            return;
        }
        let drop: HashSet<usize> = positions.iter().copied().collect();
        let mut i = 0;
        self.memory.retain(|_| {
            let keep = !drop.contains(&i);
            i += 1;
            keep
        });
        self.stats.dropped += positions.len() as u64;
        tracing::warn!(
            dropped = positions.len(),
            total_dropped = self.stats.dropped,
            "spool full: oldest events that are not reports dropped"
        );
    }

    /// Before adding `incoming` events: if that would pass the cap, drops the oldest
    /// non-report events (a hundredth of the cap at once, so that a full spool pays for one
    /// acknowledgement write per hundredth, not one per event).
    fn make_room(&mut self, incoming: usize) {
        let total = self.entries.len() + self.memory.len() + incoming;
        if total <= self.limits.max_pending {
            return;
        }
        let needed = (total - self.limits.max_pending).max(self.limits.max_pending / 100).max(1);
        let on_card = choose_drops(self.entries.iter().map(|e| e.report), needed);
        let ids: Vec<EventId> = on_card.iter().map(|&i| self.entries[i].id).collect();
        self.forget(&ids);
        self.stats.dropped += ids.len() as u64;
        if !ids.is_empty() {
            tracing::warn!(
                dropped = ids.len(),
                total_dropped = self.stats.dropped,
                "spool full: oldest events that are not reports dropped"
            );
        }
        if ids.len() < needed {
            let rest = needed - ids.len();
            let drops = choose_drops(self.memory.iter().map(is_report), rest);
            self.drop_from_memory(&drops);
        }
    }

    /// The events waiting for the server, oldest first (reads the card). For tests and tools;
    /// the uploader takes [`Spool::oldest`].
    pub fn pending(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .read_entries(self.entries.iter().copied())
            .into_iter()
            .filter_map(|(_, e)| e.ok())
            .collect();
        out.extend(self.memory.iter().cloned());
        out
    }

    /// Up to `n` of the oldest events waiting, read from the card (then from memory). A record
    /// that no longer reads back is copied to `corrupt.log` and forgotten.
    pub fn oldest(&mut self, n: usize) -> Vec<Event> {
        loop {
            let wanted: Vec<Entry> = self.entries.iter().take(n).copied().collect();
            let read = self.read_entries(wanted.into_iter());
            let bad: Vec<EventId> =
                read.iter().filter(|(_, r)| r.is_err()).map(|(entry, _)| entry.id).collect();
            if bad.is_empty() {
                let mut out: Vec<Event> = read.into_iter().filter_map(|(_, e)| e.ok()).collect();
                let room = n.saturating_sub(out.len());
                out.extend(self.memory.iter().take(room).cloned());
                return out;
            }
            let damaged: Vec<Vec<u8>> =
                read.into_iter().filter_map(|(_, r)| r.err()).flatten().collect();
            let damaged: Vec<&[u8]> = damaged.iter().map(Vec::as_slice).collect();
            tracing::error!(
                records = bad.len(),
                "spool records no longer read back; set aside in corrupt.log"
            );
            if let Err(e) = self.quarantine(&damaged) {
                tracing::error!(error = %e, "unreadable spool records not copied to corrupt.log");
            }
            self.forget(&bad);
        }
    }

    /// Reads the records of `entries`: each one's event, or the bytes found (if any) when
    /// they do not decode.
    fn read_entries(&self, entries: impl Iterator<Item = Entry>) -> Vec<(Entry, ReadBack)> {
        let mut out = Vec::new();
        let mut open: Option<(u64, File)> = None;
        for entry in entries {
            if open.as_ref().is_none_or(|(seq, _)| *seq != entry.segment) {
                let path = self.dir.join(segment_name(entry.segment, "log"));
                open = File::open(&path).ok().map(|f| (entry.segment, f));
            }
            let mut buf = vec![0; entry.len as usize];
            let read = match &open {
                Some((_, f)) => f.read_exact_at(&mut buf, entry.offset).is_ok(),
                None => false,
            };
            let result = match read.then(|| decode_record(&buf)).flatten() {
                Some(event) if event.id == entry.id => Ok(event),
                _ => Err(read.then_some(buf)),
            };
            out.push((entry, result));
        }
        out
    }

    /// Whether event `id` is waiting (on the card or in memory).
    pub fn contains(&self, id: EventId) -> bool {
        self.entries.iter().any(|e| e.id == id) || self.memory.iter().any(|e| e.id == id)
    }

    /// Events waiting, on the card and in memory.
    pub fn len(&self) -> usize {
        self.entries.len() + self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes events the server has stored. Returns how many were removed.
    pub fn acknowledge(&mut self, ids: &[EventId]) -> Result<usize, SpoolError> {
        let before = self.len();
        let set: HashSet<EventId> = ids.iter().copied().collect();
        self.memory.retain(|e| !set.contains(&e.id));
        self.forget(ids);
        Ok(before - self.len())
    }

    /// Records `ids` as gone in their segments' `.acked` files (one append and one fsync per
    /// segment), then forgets them and deletes segments left with nothing pending. A record
    /// that cannot be written (a full card) does not stop the forgetting: the server has the
    /// events, so after a restart they are only sent again and ignored; and a drained segment
    /// is deleted all the same, which gives a full card room back.
    fn forget(&mut self, ids: &[EventId]) {
        let set: HashSet<EventId> = ids.iter().copied().collect();
        if set.is_empty() {
            return;
        }
        // Acknowledged events are nearly always the oldest: stop as soon as all are found.
        let mut positions = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if positions.len() == set.len() {
                break;
            }
            if set.contains(&entry.id) {
                positions.push(i);
            }
        }
        let mut by_segment: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for &i in &positions {
            let entry = &self.entries[i];
            by_segment.entry(entry.segment).or_default().extend_from_slice(&encode_ack(&entry.id));
        }
        for (seq, lines) in &by_segment {
            let path = self.dir.join(segment_name(*seq, "acked"));
            let written = append_file(&path).and_then(|mut file| {
                file.write_all(lines).map_err(io_err("write", &path))?;
                file.sync_data().map_err(io_err("sync", &path))
            });
            match written {
                Ok(()) => self.stats.bytes_written += lines.len() as u64,
                Err(e) => {
                    tracing::warn!(error = %e, "acknowledgement not recorded; those events may be sent again after a restart")
                }
            }
        }
        let prefix = positions.iter().enumerate().all(|(n, &i)| n == i);
        let removed: Vec<Entry> = if prefix {
            self.entries.drain(..positions.len()).collect()
        } else {
            let drop: HashSet<usize> = positions.into_iter().collect();
            let mut kept = VecDeque::with_capacity(self.entries.len());
            let mut removed = Vec::new();
            for (i, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
                if drop.contains(&i) {
                    removed.push(entry);
                } else {
                    kept.push_back(entry);
                }
            }
            self.entries = kept;
            removed
        };
        for entry in removed {
            if let Some(segment) = self.segments.get_mut(&entry.segment) {
                segment.pending = segment.pending.saturating_sub(1);
            }
        }
        let drained: Vec<u64> =
            self.segments.iter().filter(|(_, s)| s.pending == 0).map(|(&seq, _)| seq).collect();
        for seq in drained {
            if self.active == Some(seq) {
                self.active = None;
            }
            self.remove_segment(seq);
        }
    }

    /// Deletes a segment with nothing pending: the log first, so that an `.acked` file left
    /// alone is known to be spare.
    fn remove_segment(&mut self, seq: u64) {
        self.segments.remove(&seq);
        for ext in ["log", "acked"] {
            let path = self.dir.join(segment_name(seq, ext));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(error = %e, path = %path.display(), "drained spool segment not deleted");
                }
                _ => {}
            }
        }
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
        let on_card = self.entries.iter().filter(|e| ids_set.contains(&e.id)).copied();
        let mut events: Vec<Event> =
            self.read_entries(on_card).into_iter().filter_map(|(_, r)| r.ok()).collect();
        events.extend(self.memory.iter().filter(|e| ids_set.contains(&e.id)).cloned());
        let path = self.dir.join(REJECTED_FILE);
        let mut bytes = Vec::new();
        for event in &events {
            let line = serde_json::json!({"rejected_at": at, "reason": reason, "event": event});
            bytes.extend_from_slice(&serde_json::to_vec(&line).expect("JSON values serialise"));
            bytes.push(b'\n');
        }
        let mut f = append_file(&path)?;
        f.write_all(&bytes).map_err(io_err("write", &path))?;
        f.sync_data().map_err(io_err("sync", &path))?;
        sync_dir(&self.dir)?;
        self.stats.bytes_written += bytes.len() as u64;
        self.acknowledge(ids)
    }

    /// Appends damaged bytes to `corrupt.log`, one line each.
    fn quarantine(&mut self, damaged: &[&[u8]]) -> Result<(), SpoolError> {
        let mut bytes = Vec::new();
        for line in damaged.iter().filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            bytes.extend_from_slice(line);
            if line.last() != Some(&b'\n') {
                bytes.push(b'\n');
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(CORRUPT_FILE);
        let mut f = append_file(&path)?;
        f.write_all(&bytes).map_err(io_err("write", &path))?;
        f.sync_data().map_err(io_err("sync", &path))?;
        sync_dir(&self.dir)?;
        self.stats.bytes_written += bytes.len() as u64;
        Ok(())
    }

    /// Atomically replaces a segment with `events`.
    fn rewrite_segment(&mut self, path: &Path, events: &[&Event]) -> Result<(), SpoolError> {
        let tmp = path.with_extension("tmp");
        let mut buf = Vec::new();
        for event in events {
            buf.extend_from_slice(&encode_record(event));
        }
        match atomic::replace(path, &tmp, None, &buf) {
            Ok(()) => {}
            // Past the rename the new file is in place; if the rename is lost in a power cut the
            // old file comes back, damaged lines and all, and is repaired again.
            Err(e) if e.step == Step::SyncDir => {
                let e = replace_err(e);
                tracing::warn!(error = %e, "spool directory sync failed after a rewrite");
            }
            Err(e) => return Err(replace_err(e)),
        }
        self.stats.bytes_written += buf.len() as u64;
        Ok(())
    }

    /// Makes the reserve if it is not there (zeros written, so the space is really taken).
    fn make_reserve(&mut self) -> Result<(), SpoolError> {
        let path = self.dir.join(RESERVE_FILE);
        let size = self.limits.reserve_bytes;
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            self.reserved = true;
            return Ok(());
        }
        let tmp = self.dir.join(format!("{RESERVE_FILE}.tmp"));
        let chunk = vec![0u8; 64 * 1024];
        let made = atomic::replace_with(&path, &tmp, None, |f| {
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            Ok(())
        })
        .map_err(|e| match e.step {
            Step::Rename => {
                SpoolError::Io { action: "rename", path: tmp.clone(), source: e.source }
            }
            _ => replace_err(e),
        });
        match made {
            Ok(()) => {
                self.stats.bytes_written += size;
                self.reserved = true;
                Ok(())
            }
            // A half-made reserve would only take the space reports need: `replace_with` has
            // removed it.
            Err(e) => {
                self.reserved = false;
                Err(e)
            }
        }
    }

    fn free_reserve(&mut self) {
        let path = self.dir.join(RESERVE_FILE);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::error!(error = %e, "the reserve could not be freed");
        }
        self.reserved = false;
        self.reserve_tried = Some(Instant::now());
    }
}

/// The events waiting in the spool in `dir`, oldest first, read without changing anything
/// (damaged lines skipped): for tests and tools while slated runs. Events slated keeps in
/// memory are not on the card, so not here.
pub fn peek(dir: &Path) -> Result<Vec<Event>, SpoolError> {
    let mut logs: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let path = entry.map_err(io_err("list", dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match parse_segment_name(&name) {
            Some((seq, "log")) => logs.push((seq, path)),
            _ if name == LEGACY_EVENTS_FILE => logs.push((0, path)),
            _ => {}
        }
    }
    logs.sort();
    let mut out = Vec::new();
    for (seq, path) in logs {
        let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        let acked = std::fs::read(dir.join(segment_name(seq, "acked")))
            .map(|b| scan_acks(&b))
            .unwrap_or_default();
        out.extend(
            scan(&bytes).events.into_iter().map(|r| r.event).filter(|e| !acked.contains(&e.id)),
        );
    }
    Ok(out)
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

    /// What is wrong with the card, if anything (no disk access).
    pub fn storage_fault(&self) -> Option<StorageFault> {
        lock(&self.0).storage_fault()
    }

    /// Whether [`Spool::retry`] has anything to do (no disk access). Never waits: a spool in
    /// use now is asked again next time.
    pub fn needs_retry(&self) -> bool {
        self.0.try_lock().is_ok_and(|s| s.needs_retry())
    }

    /// Holds the spool still, for tests that must see what happens before a spool write.
    #[cfg(test)]
    pub(crate) fn hold_still(&self) -> std::sync::MutexGuard<'_, Spool> {
        lock(&self.0)
    }

    pub fn stats(&self) -> SpoolStats {
        lock(&self.0).stats()
    }

    /// A copy of up to `n` of the oldest events waiting (reads the card, on this thread: for
    /// tests and tools).
    pub fn oldest(&self, n: usize) -> Vec<Event> {
        lock(&self.0).oldest(n)
    }
}

/// A panic while holding the lock cannot leave the spool half-changed on disk (every change is
/// an append or atomic), so a poisoned lock is still usable.
fn lock(m: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn append_file(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new().create(true).append(true).open(path).map_err(io_err("open", path))
}

/// A failed [`atomic::replace`] as the spool says it: the step's action and what it acted on.
fn replace_err(e: ReplaceError) -> SpoolError {
    SpoolError::Io { action: e.step.action(), path: e.path, source: e.source }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync", dir))
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
                storage_fault: None,
            },
        )
    }

    fn report(n: u64) -> Event {
        Event::new(
            DeviceNumber::new(12).unwrap(),
            "2026-11-17T10:14:03Z".parse().unwrap(),
            EventBody::ReportFiled {
                session: None,
                pupil: None,
                app: None,
                url: None,
                page_title: Some(format!("page {n}")),
                blank_latency_us: Some(n),
                recent_names: Vec::new(),
                origin: slate_protocol::ReportOrigin::default(),
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

    fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| parse_segment_name(&n).is_some_and(|(_, e)| e == ext))
            })
            .collect();
        out.sort();
        out
    }

    /// The one segment a test's spool has.
    fn log(dir: &Path) -> PathBuf {
        let logs = files(dir, "log");
        assert_eq!(logs.len(), 1, "{logs:?}");
        logs[0].clone()
    }

    fn ids(events: &[Event]) -> Vec<EventId> {
        events.iter().map(|e| e.id).collect()
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
        assert_eq!(spool.oldest(2), &evs[..2]);
        let text = std::fs::read_to_string(log(dir.path())).unwrap();
        assert_eq!(text.lines().count(), 3);
        let first = text.lines().next().unwrap();
        assert_eq!(first.as_bytes()[8], b' ');
        assert_eq!(decode_record(first.as_bytes()).as_ref(), Some(&evs[0]));
        assert_eq!(spool.storage_fault(), None);
        assert!(dir.path().join(RESERVE_FILE).exists());
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
    fn an_older_versions_events_log_is_taken_over_as_the_first_segment() {
        let dir = tempfile::tempdir().unwrap();
        let evs = events(3);
        let bytes: Vec<u8> = evs.iter().flat_map(encode_record).collect();
        std::fs::write(dir.path().join(LEGACY_EVENTS_FILE), bytes).unwrap();
        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(recovery, Recovery { kept: 3, ..Recovery::default() });
        assert!(!dir.path().join(LEGACY_EVENTS_FILE).exists());
        assert_eq!(spool.pending(), &evs[..]);
        spool.acknowledge(&ids(&evs)).unwrap();
        assert!(files(dir.path(), "log").is_empty(), "drained: deleted");
    }

    #[test]
    fn a_torn_last_record_is_cut_and_earlier_ones_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 3);
        let half = encode_record(&event(99));
        let segment = log(dir.path());
        let whole_len = std::fs::metadata(&segment).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);

        let (mut spool, recovery) = Spool::open(dir.path()).unwrap();
        assert_eq!(recovery.kept, 3);
        assert_eq!(recovery.torn_bytes, half.len() / 2);
        assert_eq!(recovery.quarantined, 0);
        assert_eq!(spool.pending(), &evs[..]);
        // Cut off in place (no rewrite, no space needed).
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), whole_len);
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
        assert!(recovery.is_clean(), "{recovery:?}");
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
                std::fs::write(dir.path().join(segment_name(0, "log")), &bytes).unwrap();
                // Garbage in the acknowledgements too.
                std::fs::write(dir.path().join(segment_name(0, "acked")), &bytes).unwrap();
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
    fn acknowledging_appends_to_the_acked_file_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 6);
        let segment_before = std::fs::read(log(dir.path())).unwrap();
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let acked = ids(&evs[..4]);
        assert_eq!(spool.acknowledge(&acked).unwrap(), 4);
        assert_eq!(spool.acknowledge(&acked).unwrap(), 0);
        assert_eq!(spool.pending(), &evs[4..]);
        // The segment itself is never rewritten; the acknowledgement is four short lines.
        assert_eq!(std::fs::read(log(dir.path())).unwrap(), segment_before);
        let acks = std::fs::read(&files(dir.path(), "acked")[0]).unwrap();
        assert_eq!(scan_acks(&acks), acked.iter().copied().collect());
        assert_eq!(acks.len(), 4 * encode_ack(&acked[0]).len());
        let e = event(50);
        spool.append(&e).unwrap();
        drop(spool);
        let (spool, recovery) = Spool::open(dir.path()).unwrap();
        assert!(recovery.is_clean());
        assert_eq!(spool.pending(), &[evs[4].clone(), evs[5].clone(), e][..]);
    }

    #[test]
    fn acknowledgement_costs_the_same_whatever_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits { segment_bytes: 4096, ..SpoolLimits::default() };
        let (mut spool, _) = Spool::open_with(dir.path(), limits).unwrap();
        let mut cost = Vec::new();
        for backlog in [20, 2000] {
            let evs = events(backlog);
            for e in &evs {
                spool.append(e).unwrap();
            }
            let before = spool.stats().bytes_written;
            spool.acknowledge(&ids(&evs[..10])).unwrap();
            cost.push(spool.stats().bytes_written - before);
            spool.acknowledge(&ids(&evs[10..])).unwrap();
            assert!(spool.is_empty());
        }
        assert_eq!(cost[0], cost[1], "ten acknowledgements cost {cost:?} bytes");
        assert_eq!(cost[0], 10 * encode_ack(&events(1)[0].id).len() as u64);
        // Every drained segment is gone.
        assert!(files(dir.path(), "log").is_empty());
        assert!(files(dir.path(), "acked").is_empty());
    }

    #[test]
    fn segments_roll_over_and_drained_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits { segment_bytes: 1000, ..SpoolLimits::default() };
        let (mut spool, _) = Spool::open_with(dir.path(), limits).unwrap();
        let evs = events(40);
        for e in &evs {
            spool.append(e).unwrap();
        }
        let segments = files(dir.path(), "log").len();
        assert!(segments > 5, "{segments} segments");
        spool.acknowledge(&ids(&evs[..20])).unwrap();
        let left = files(dir.path(), "log").len();
        assert!(left < segments && left > 1, "{left} of {segments}");
        drop(spool);
        let (spool, _) = Spool::open_with(dir.path(), limits).unwrap();
        assert_eq!(spool.pending(), &evs[20..]);
    }

    #[test]
    fn a_torn_acknowledgement_only_sends_the_event_again() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 3);
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        spool.acknowledge(&ids(&evs[..2])).unwrap();
        drop(spool);
        let acked = files(dir.path(), "acked")[0].clone();
        let mut bytes = std::fs::read(&acked).unwrap();
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&acked, bytes).unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.pending(), &evs[1..]);
    }

    #[test]
    fn choose_drops_takes_the_oldest_non_reports_and_never_a_report() {
        let cases: &[(&[bool], usize, &[usize])] = &[
            (&[], 1, &[]),
            (&[false, false, false], 2, &[0, 1]),
            (&[true, false, true, false], 2, &[1, 3]),
            (&[true, false, true, false], 5, &[1, 3]),
            (&[true, true], 1, &[]),
            (&[false, true], 0, &[]),
        ];
        for (reports, needed, expected) in cases {
            assert_eq!(
                choose_drops(reports.iter().copied(), *needed),
                *expected,
                "{reports:?} {needed}"
            );
        }
    }

    #[test]
    fn the_cap_drops_the_oldest_events_that_are_not_reports_and_never_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits { max_pending: 10, ..SpoolLimits::default() };
        let (mut spool, _) = Spool::open_with(dir.path(), limits).unwrap();
        let first_report = report(1);
        spool.append(&first_report).unwrap();
        let others = events(9);
        for e in &others {
            spool.append(e).unwrap();
        }
        assert_eq!(spool.stats().dropped, 0);
        let second_report = report(2);
        spool.append(&second_report).unwrap();
        assert_eq!(spool.len(), 10);
        assert_eq!(spool.stats().dropped, 1);
        let mut expected = vec![first_report.clone()];
        expected.extend_from_slice(&others[1..]);
        expected.push(second_report.clone());
        assert_eq!(spool.pending(), expected);
        // Only reports left: they are all kept, past the cap.
        let ordinary = ids(&others[1..]);
        spool.acknowledge(&ordinary).unwrap();
        let reports: Vec<Event> = (10..30).map(report).collect();
        for r in &reports {
            spool.append(r).unwrap();
        }
        assert_eq!(spool.len(), 22);
        assert_eq!(spool.stats().dropped, 1);
        drop(spool);
        // The drop was recorded: it stays dropped after a restart.
        let (spool, _) = Spool::open_with(dir.path(), limits).unwrap();
        assert_eq!(spool.len(), 22);
        assert!(!spool.pending().contains(&others[0]));
    }

    #[test]
    fn a_leftover_temporary_file_from_a_crash_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let evs = filled(dir.path(), 2);
        std::fs::write(log(dir.path()).with_extension("tmp"), b"half a rewr").unwrap();
        std::fs::write(dir.path().join(format!("{RESERVE_FILE}.tmp")), b"half").unwrap();
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

    #[test]
    fn a_spool_that_cannot_be_opened_keeps_events_in_memory_until_it_can() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: nothing can be made there.
        let spool_dir = dir.path().join("spool");
        std::fs::write(&spool_dir, b"in the way").unwrap();
        let error = Spool::open(&spool_dir).unwrap_err();
        let mut spool = Spool::unopened(&spool_dir, SpoolLimits::default(), &error);
        assert_eq!(spool.storage_fault(), Some(StorageFault::Unwritable));
        let r = report(1);
        assert!(spool.append(&r).is_err());
        assert_eq!(spool.oldest(10), vec![r.clone()], "uploaded straight from memory");
        spool.retry();
        assert!(spool.needs_retry());
        std::fs::remove_file(&spool_dir).unwrap();
        spool.retry();
        assert_eq!(spool.storage_fault(), None);
        assert!(!spool.needs_retry());
        assert_eq!(spool.in_memory(), 0);
        drop(spool);
        let (spool, _) = Spool::open(&spool_dir).unwrap();
        assert_eq!(spool.pending(), vec![r]);
    }

    #[test]
    fn events_kept_in_memory_are_acknowledged_from_there() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        std::fs::write(&spool_dir, b"in the way").unwrap();
        let error = Spool::open(&spool_dir).unwrap_err();
        let limits = SpoolLimits { max_in_memory: 3, ..SpoolLimits::default() };
        let mut spool = Spool::unopened(&spool_dir, limits, &error);
        let kept = [report(1), event(1), report(2), event(2)];
        for e in &kept {
            assert!(spool.append(e).is_err());
        }
        // Over the memory cap: the oldest non-report goes, never a report.
        assert_eq!(spool.pending(), vec![kept[0].clone(), kept[2].clone(), kept[3].clone()]);
        assert_eq!(spool.stats().dropped, 1);
        assert_eq!(spool.acknowledge(&[kept[0].id, kept[2].id]).unwrap(), 2);
        assert_eq!(spool.pending(), vec![kept[3].clone()]);
    }

    /// A small tmpfs of its own, unmounted when dropped (the test runs as root, as CI does).
    struct SmallCard {
        dir: tempfile::TempDir,
    }

    impl SmallCard {
        fn mount(size: &str) -> SmallCard {
            let dir = tempfile::tempdir().unwrap();
            let options = format!("size={size}");
            let mounted = nix::mount::mount(
                Some("tmpfs"),
                dir.path(),
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(options.as_str()),
            );
            assert_eq!(mounted, Ok(()), "mounting a small tmpfs (needs root)");
            SmallCard { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Fills the card with `filler` until it is full.
        fn fill(&self) {
            let mut f = File::create(self.path().join("filler")).unwrap();
            let chunk = vec![1u8; 4096];
            loop {
                match f.write_all(&chunk) {
                    Ok(()) => {}
                    Err(e) if is_full(&e) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            // Whatever is left below a page.
            while f.write_all(&[1]).is_ok() {}
        }

        fn make_room(&self) {
            std::fs::remove_file(self.path().join("filler")).unwrap();
        }
    }

    impl Drop for SmallCard {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn on_a_full_card_reports_go_into_the_reserve_then_memory_and_nothing_is_lost() {
        let card = SmallCard::mount("2m");
        let dir = card.path().join("spool");
        let limits = SpoolLimits { reserve_bytes: 64 * 1024, ..SpoolLimits::default() };
        let (mut spool, _) = Spool::open_with(&dir, limits).unwrap();
        let before = report(0);
        spool.append(&before).unwrap();
        card.fill();

        // Reports fill what is left of the segment's last page; the first that finds the
        // card full frees the reserve and is filed in its space.
        let mut filed = vec![before];
        let mut n = 1;
        while spool.storage_fault().is_none() {
            let r = report(n);
            spool.append(&r).expect("filed, in the reserve's space if need be");
            filed.push(r);
            n += 1;
            assert!(n < 100, "the card never filled");
        }
        assert_eq!(spool.storage_fault(), Some(StorageFault::Full));
        assert!(!dir.join(RESERVE_FILE).exists());
        // Until the reserve's space is used up; then in memory, and uploadable from there.
        let mut in_memory = Vec::new();
        for n in n..2000 {
            let r = report(n);
            match spool.append(&r) {
                Ok(()) => filed.push(r),
                Err(e) => {
                    assert_eq!(e.fault(), StorageFault::Full, "{e}");
                    in_memory.push(r);
                }
            }
            if in_memory.len() == 3 {
                break;
            }
        }
        assert_eq!(in_memory.len(), 3, "the card filled up again");
        assert_eq!(spool.in_memory(), 3);
        let all: Vec<Event> = filed.iter().chain(&in_memory).cloned().collect();
        assert_eq!(spool.oldest(usize::MAX), all);
        // Retrying on a card still full changes nothing and loses nothing.
        spool.retry();
        assert_eq!(spool.storage_fault(), Some(StorageFault::Full));
        assert_eq!(spool.len(), all.len());

        // Room again: the events in memory are written, in order, and the reserve comes back.
        card.make_room();
        spool.reserve_tried = None;
        spool.retry();
        assert_eq!(spool.in_memory(), 0);
        assert_eq!(spool.storage_fault(), None);
        assert!(dir.join(RESERVE_FILE).exists());
        drop(spool);
        let (spool, recovery) = Spool::open_with(&dir, limits).unwrap();
        assert_eq!(recovery.kept, all.len());
        assert_eq!(spool.pending(), all);
    }

    #[test]
    fn on_a_full_card_acknowledging_still_forgets_and_gives_room_back() {
        let card = SmallCard::mount("2m");
        let dir = card.path().join("spool");
        let limits = SpoolLimits { reserve_bytes: 64 * 1024, ..SpoolLimits::default() };
        let (mut spool, _) = Spool::open_with(&dir, limits).unwrap();
        let evs = events(5);
        for e in &evs {
            spool.append(e).unwrap();
        }
        std::fs::remove_file(dir.join(RESERVE_FILE)).unwrap();
        card.fill();
        // No room for the acknowledgement's record: the events are forgotten all the same
        // (the server has them), and the drained segment is deleted.
        assert_eq!(spool.acknowledge(&ids(&evs)).unwrap(), 5);
        assert!(spool.is_empty());
        assert!(files(&dir, "log").is_empty(), "the drained segment gave its room back");
        let later = report(1);
        spool.append(&later).expect("room again where the segment was");
        drop(spool);
        let (spool, _) = Spool::open_with(&dir, limits).unwrap();
        assert_eq!(spool.pending(), vec![later]);
    }

    #[test]
    fn a_torn_end_on_a_full_card_is_cut_off_and_the_spool_opens() {
        let card = SmallCard::mount("2m");
        let dir = card.path().join("spool");
        let limits = SpoolLimits { reserve_bytes: 64 * 1024, ..SpoolLimits::default() };
        let evs = {
            let (mut spool, _) = Spool::open_with(&dir, limits).unwrap();
            let evs = events(3);
            for e in &evs {
                spool.append(e).unwrap();
            }
            evs
        };
        let half = encode_record(&event(99));
        let mut f = OpenOptions::new().append(true).open(log(&dir)).unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        std::fs::remove_file(dir.join(RESERVE_FILE)).unwrap();
        card.fill();
        let (mut spool, recovery) = Spool::open_with(&dir, limits).expect("opens on a full card");
        assert_eq!(recovery.torn_bytes, half.len() / 2);
        assert_eq!(spool.pending(), evs);
        assert_eq!(spool.storage_fault(), Some(StorageFault::Full));
        let r = report(1);
        assert!(spool.append(&r).is_err());
        assert_eq!(spool.len(), 4, "kept in memory");
    }
}
