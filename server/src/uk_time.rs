//! UK local time (Europe/London) for what staff read and type: the database and the wire stay in
//! UTC. Pure.
//!
//! A form's local time in the hour the clocks go back happens twice: the earlier is taken. One
//! in the hour the clocks go forward never happens: it is refused, naming the field.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::London;

/// `2026-11-23 10:14 GMT` or `2026-06-23 11:14 BST`: UK time with its zone always named, so a
/// reader is never unsure (forms' tables: bypasses, commands, PINs, uploads).
pub fn format_uk(t: DateTime<Utc>) -> String {
    t.with_timezone(&London).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// `10:14 GMT`: a time later today, when the day goes without saying (a sign-in held back).
pub fn format_uk_clock(t: DateTime<Utc>) -> String {
    t.with_timezone(&London).format("%H:%M %Z").to_string()
}

/// `Tue 17 Nov 2026, 10:14:03 GMT`: a moment on a page or in a document (reports, the audit
/// log, the incident record's PDF, alerts).
pub fn format_uk_long(t: DateTime<Utc>) -> String {
    t.with_timezone(&London).format("%a %-d %b %Y, %H:%M:%S %Z").to_string()
}

/// `2026-11-17 10:14:03 GMT`: a moment in a CSV export, sortable as text within one zone.
pub fn format_uk_sortable(t: DateTime<Utc>) -> String {
    t.with_timezone(&London).format("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// A `datetime-local` form value (`2026-11-23T10:14`, seconds optional) read as UK time.
pub fn parse_uk(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!("{field}: {text:?} is not a date and time like 2026-11-17T10:14 (UK time).")
        })?;
    match London.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            Err(format!("{field}: {text} does not exist in UK time (the clocks went forward)."))
        }
    }
}

/// The start of a UK day as an instant: a search "from" a day starts at its midnight, one "to"
/// a day ends at the next midnight (midnight always exists in Europe/London).
pub fn day_start(day: chrono::NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight is a time");
    London
        .from_local_datetime(&midnight)
        .earliest()
        .expect("the UK clocks never change at midnight")
        .with_timezone(&Utc)
}

/// The instant a UK day's clock shows `minute` minutes after midnight (1440: the next
/// midnight). A time the clocks skipped (01:00 to 02:00 on the spring change) is read as the
/// moment after the change; a time shown twice (autumn) as its first showing.
pub fn at_uk_minute(day: chrono::NaiveDate, minute: u16) -> DateTime<Utc> {
    let start = day_start(day);
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight is a time")
        + chrono::Duration::minutes(i64::from(minute));
    match London.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            (start + chrono::Duration::minutes(i64::from(minute))).max(start).with_timezone(&Utc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_format_names_the_zone_across_both_clock_changes() {
        // 2026: forward at 01:00 UTC on 29 March (01:00 GMT becomes 02:00 BST), back at
        // 01:00 UTC on 25 October (02:00 BST becomes 01:00 GMT).
        let cases = [
            (
                "2026-03-29T00:59:59Z",
                "2026-03-29 00:59 GMT",
                "Sun 29 Mar 2026, 00:59:59 GMT",
                "2026-03-29 00:59:59 GMT",
            ),
            (
                "2026-03-29T01:00:00Z",
                "2026-03-29 02:00 BST",
                "Sun 29 Mar 2026, 02:00:00 BST",
                "2026-03-29 02:00:00 BST",
            ),
            (
                "2026-06-23T09:14:03Z",
                "2026-06-23 10:14 BST",
                "Tue 23 Jun 2026, 10:14:03 BST",
                "2026-06-23 10:14:03 BST",
            ),
            (
                "2026-10-25T00:59:59Z",
                "2026-10-25 01:59 BST",
                "Sun 25 Oct 2026, 01:59:59 BST",
                "2026-10-25 01:59:59 BST",
            ),
            (
                "2026-10-25T01:00:00Z",
                "2026-10-25 01:00 GMT",
                "Sun 25 Oct 2026, 01:00:00 GMT",
                "2026-10-25 01:00:00 GMT",
            ),
            (
                "2026-11-17T10:14:03Z",
                "2026-11-17 10:14 GMT",
                "Tue 17 Nov 2026, 10:14:03 GMT",
                "2026-11-17 10:14:03 GMT",
            ),
            (
                "2026-12-31T23:59:59Z",
                "2026-12-31 23:59 GMT",
                "Thu 31 Dec 2026, 23:59:59 GMT",
                "2026-12-31 23:59:59 GMT",
            ),
        ];
        for (at, short, long, sortable) in cases {
            assert_eq!(format_uk(utc(at)), short, "{at}");
            assert_eq!(format_uk_long(utc(at)), long, "{at}");
            assert_eq!(format_uk_sortable(utc(at)), sortable, "{at}");
        }
    }

    #[test]
    fn uk_time_in_winter_and_summer() {
        assert_eq!(format_uk(utc("2026-11-23T10:14:00Z")), "2026-11-23 10:14 GMT");
        assert_eq!(format_uk(utc("2026-06-23T10:14:00Z")), "2026-06-23 11:14 BST");
        assert_eq!(parse_uk("At", "2026-11-23T10:14").unwrap(), utc("2026-11-23T10:14:00Z"));
        assert_eq!(parse_uk("At", "2026-06-23T11:14").unwrap(), utc("2026-06-23T10:14:00Z"));
    }

    #[test]
    fn the_hours_the_clocks_change() {
        // 2026: forward on 29 March at 01:00 UTC, back on 25 October at 01:00 UTC.
        let err = parse_uk("From", "2026-03-29T01:30").unwrap_err();
        assert!(err.starts_with("From:") && err.contains("does not exist"), "{err}");
        assert_eq!(parse_uk("From", "2026-10-25T01:30").unwrap(), utc("2026-10-25T00:30:00Z"));
        assert!(parse_uk("Until", "tomorrow").unwrap_err().starts_with("Until:"));
    }
}
