//! What staff forms share: reading a form's body, and the fields several features ask for (a
//! device number, a time in UK time). Each error names its field, for the page to show.

use crate::http::error::PageError;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use slate_protocol::DeviceNumber;

/// A form's fields, or a page saying in plain words why they could not be read (never the
/// library's "Failed to buffer the request body").
pub fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    form.map(|Form(f)| f).map_err(|e| unreadable(e.status()))
}

/// A page's query string, or the "please check" page in plain words.
pub fn page_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    query.map(|Query(q)| q).map_err(|e| unreadable(e.status()))
}

/// What a request the server could not read is told, by the status the library gave it.
fn unreadable(status: StatusCode) -> PageError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::TooLarge
    } else {
        PageError::BadForm(
            "Some of what was sent could not be read, so nothing was saved. Go back, check each field and try again.".into(),
        )
    }
}

/// Starts a message from a rule (lower case) as a sentence on a page.
pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A device number from a form, with a message naming the field.
pub fn parse_device(text: &str) -> Result<DeviceNumber, String> {
    let text = text.trim();
    text.parse::<u32>()
        .ok()
        .and_then(|n| DeviceNumber::new(n).ok())
        .ok_or_else(|| format!("Device: {text:?} is not a device number from 1 to 9999."))
}

/// A time from a form or the API: RFC 3339 (with its offset), or a browser's `datetime-local`
/// value, read as UK time (what staff see on the wall clock).
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    crate::uk_time::parse_uk(field, text)
}

/// A search form's field, trimmed; `None` when left blank.
pub fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// A field's value, or `None` with its problem noted: a form's every problem is shown at once.
pub fn keep<T>(problems: &mut Vec<String>, result: Result<T, String>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

/// A day from a `date` input (`2026-11-17`), with a message naming the field.
pub fn parse_day(field: &str, text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{field}: {text:?} is not a date like 2026-11-17."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_rfc3339_or_form_values_in_uk_time() {
        let expected: DateTime<Utc> = "2026-11-17T10:14:00Z".parse().unwrap();
        for text in [
            "2026-11-17T10:14",
            "2026-11-17 10:14",
            "2026-11-17T10:14:00Z",
            "2026-11-17T11:14:00+01:00",
        ] {
            assert_eq!(parse_time("Time", text), Ok(expected), "{text}");
        }
        let summer: DateTime<Utc> = "2026-06-17T10:14:00Z".parse().unwrap();
        assert_eq!(parse_time("Time", "2026-06-17T11:14"), Ok(summer), "BST is UTC+1");
        assert_eq!(parse_time("Time", "2026-06-17T10:14:00Z"), Ok(summer));
        assert!(parse_time("Time", "Tuesday").unwrap_err().starts_with("Time:"));
    }

    #[test]
    fn device_numbers_from_forms_are_checked() {
        assert_eq!(parse_device(" 12 ").unwrap().get(), 12);
        for bad in ["0", "10000", "twelve", ""] {
            assert!(parse_device(bad).unwrap_err().starts_with("Device:"), "{bad}");
        }
    }
}
