//! What the DNS layer hands the daemon: block events (the DfE log fields it knows: time, name,
//! rule, list) and the last few names looked up (for the report button). Pure data structures;
//! the server fills them, the daemon drains them. Neither is ever written to the log.

use crate::filter::Block;
use crate::lists::Category;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// One blocked attempt. [`crate::notify`] sends it to slated as `filter_blocked`; slated adds
/// session and pupil and files the protocol's `EventBody::FilterBlocked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    pub at: DateTime<Utc>,
    /// The normalised name asked for.
    pub name: String,
    /// The DNS query type asked for (1 A, 28 AAAA, 65 HTTPS, ...).
    pub qtype: u16,
    pub rule: String,
    pub list: String,
    pub category: Option<Category>,
}

impl BlockEvent {
    pub fn new(at: DateTime<Utc>, name: &str, qtype: u16, block: &Block) -> Self {
        Self {
            at,
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            qtype,
            rule: block.rule.clone(),
            list: block.list.clone(),
            category: block.category,
        }
    }
}

/// Drops repeats: one page load asks for A, AAAA and HTTPS, and a browser retries, so the same
/// name blocked again within `window` is one attempt, not five.
///
/// Names whose window has passed are forgotten in batches: a sweep runs when the map has grown
/// to twice what the last sweep left (at least [`Coalescer::MIN_SWEEP`]), so each admit costs
/// amortised O(1) however many distinct names are blocked within one window. An expired entry
/// still in the map never changes an answer (it admits, as an absent one would).
#[derive(Debug)]
pub struct Coalescer {
    window: chrono::Duration,
    seen: HashMap<String, DateTime<Utc>>,
    /// Sweep expired names once the map holds this many.
    sweep_at: usize,
}

impl Coalescer {
    /// The smallest map that is ever swept.
    pub const MIN_SWEEP: usize = 1024;

    pub fn new(window: chrono::Duration) -> Self {
        Self { window, seen: HashMap::new(), sweep_at: Self::MIN_SWEEP }
    }

    /// True when an event for `name` at `now` should be recorded.
    pub fn admit(&mut self, name: &str, now: DateTime<Utc>) -> bool {
        if let Some(last) = self.seen.get_mut(name) {
            if now - *last < self.window && now >= *last {
                return false;
            }
            *last = now;
            return true;
        }
        if self.seen.len() >= self.sweep_at {
            let window = self.window;
            self.seen.retain(|_, last| now - *last < window);
            self.sweep_at = (self.seen.len() * 2).max(Self::MIN_SWEEP);
        }
        self.seen.insert(name.to_string(), now);
        true
    }

    /// Forgets every name (a new session: its first attempt at a name is an event).
    pub fn clear(&mut self) {
        self.seen.clear();
        self.sweep_at = Self::MIN_SWEEP;
    }

    /// Names remembered, expired or not (for tests and memory figures).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The last `capacity` distinct names looked up within `window`, newest first: what a report
/// carries as `recent_names`. Memory only; names older than the window are dropped as soon as
/// anything touches the buffer.
#[derive(Debug, Clone)]
pub struct RecentNames {
    capacity: usize,
    window: chrono::Duration,
    names: VecDeque<(String, DateTime<Utc>)>,
}

impl RecentNames {
    pub fn new(capacity: usize, window: chrono::Duration) -> Self {
        Self { capacity, window, names: VecDeque::with_capacity(capacity) }
    }

    /// Records a look-up of `name` at `at`. `name` should be normalised; a trailing dot and
    /// upper case are tolerated.
    pub fn push(&mut self, name: &str, at: DateTime<Utc>) {
        self.expire(at);
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(i) = self.names.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            // Seen again: move it to the front, reusing its string.
            if let Some((n, _)) = self.names.remove(i) {
                self.names.push_front((n, at));
            }
            return;
        }
        if self.capacity == 0 {
            return;
        }
        if self.names.len() == self.capacity {
            self.names.pop_back();
        }
        self.names.push_front((name.to_ascii_lowercase(), at));
    }

    /// Names looked up in the window before `now`, newest first.
    pub fn snapshot(&mut self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        self.expire(now);
        self.names.iter().cloned().collect()
    }

    /// Drops names older than the window (the oldest are at the back). A clock that stepped
    /// back leaves entries "from the future", which count as recent.
    fn expire(&mut self, now: DateTime<Utc>) {
        while self.names.back().is_some_and(|(_, at)| now - *at > self.window) {
            self.names.pop_back();
        }
    }

    /// Forgets everything (a new pupil's session must not see the last one's names).
    pub fn clear(&mut self) {
        self.names.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(s), 0).unwrap()
    }

    fn names(r: &mut RecentNames, now: u32) -> Vec<String> {
        r.snapshot(at(now)).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn recent_names_keep_the_newest_distinct_names() {
        let mut r = RecentNames::new(3, chrono::Duration::seconds(120));
        for (i, n) in ["a.test", "b.test", "A.test.", "c.test", "d.test"].iter().enumerate() {
            r.push(n, at(i as u32));
        }
        assert_eq!(names(&mut r, 5), ["d.test", "c.test", "a.test"]);
        r.clear();
        assert!(names(&mut r, 5).is_empty());
    }

    #[test]
    fn recent_names_are_forgotten_after_the_window() {
        let mut r = RecentNames::new(20, chrono::Duration::seconds(120));
        r.push("old.test", at(0));
        r.push("mid.test", at(60));
        r.push("new.test", at(100));
        assert_eq!(names(&mut r, 120), ["new.test", "mid.test", "old.test"]);
        assert_eq!(names(&mut r, 121), ["new.test", "mid.test"], "120 s is the window");
        // Looked up again: fresh, and first.
        r.push("mid.test", at(200));
        assert_eq!(names(&mut r, 200), ["mid.test", "new.test"]);
        assert_eq!(names(&mut r, 221), ["mid.test"]);
        assert!(names(&mut r, 400).is_empty());
    }

    #[test]
    fn repeats_within_the_window_are_one_event() {
        let mut c = Coalescer::new(chrono::Duration::seconds(10));
        assert!(c.admit("x.test", at(0)));
        assert!(!c.admit("x.test", at(9)));
        assert!(c.admit("y.test", at(9)));
        assert!(c.admit("x.test", at(10)));
        // A clock that jumped back never hides an event.
        assert!(c.admit("x.test", at(1)));
    }

    #[test]
    fn many_distinct_names_are_each_one_event_and_expired_ones_are_swept() {
        let mut c = Coalescer::new(chrono::Duration::seconds(10));
        let n = 5 * Coalescer::MIN_SWEEP;
        let name = |i: usize| format!("n{i}.test");
        for i in 0..n {
            assert!(c.admit(&name(i), at(0)), "first sight of {i}");
        }
        // All still inside the window: none forgotten, every repeat coalesced.
        assert_eq!(c.len(), n);
        for i in (0..n).step_by(7) {
            assert!(!c.admit(&name(i), at(5)), "repeat of {i}");
        }
        // After the window, new names sweep the old ones away; the map stays bounded.
        for i in n..3 * n {
            assert!(c.admit(&name(i), at(20)));
        }
        assert!(c.len() <= 2 * (2 * n).max(Coalescer::MIN_SWEEP), "{}", c.len());
        assert!(c.len() < 3 * n, "expired names were swept: {}", c.len());
        // The old names, seen again later, are new events; the recent ones are still coalesced.
        assert!(c.admit(&name(0), at(21)));
        assert!(!c.admit(&name(3 * n - 1), at(21)));
    }
}
