//! What staff forms share: reading a form's body, and the fields several features ask for (a
//! device number, a time in UK time). Each error names its field, for the page to show.

use crate::http::error::PageError;
use axum::extract::multipart::{Field, Multipart, MultipartError};
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

/// A multipart stream that failed: over the size limit, or not a form at all.
pub fn unreadable_upload(error: MultipartError) -> PageError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::TooLarge
    } else {
        PageError::BadForm("The upload did not arrive whole; try again.".into())
    }
}

/// The file in field `name` of a page's upload form (multipart: the page's CSRF token first, so
/// nothing of a forged form is read, then the file); `missing` is what the page says when the
/// file is not there.
pub async fn upload_field<'m>(
    staff: &crate::http::staff::Staff,
    multipart: &'m mut Multipart,
    name: &str,
    missing: &str,
) -> Result<Field<'m>, PageError> {
    let token = match multipart.next_field().await.map_err(unreadable_upload)? {
        Some(field) if field.name() == Some("csrf") => {
            field.text().await.map_err(unreadable_upload)?
        }
        _ => return Err(PageError::Csrf),
    };
    staff.check_csrf(&token)?;
    match multipart.next_field().await.map_err(unreadable_upload)? {
        Some(field) if field.name() == Some(name) => Ok(field),
        _ => Err(PageError::BadForm(missing.into())),
    }
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

/// The last page a staff search may ask for (100,000 rows at 50 a page); older rows are in the
/// exports.
pub const LAST_SEARCH_PAGE: u32 = 2_000;

/// A search's page number: from 1 when left blank.
pub fn parse_page(text: &str) -> Result<u32, String> {
    match given(text) {
        None => Ok(1),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=LAST_SEARCH_PAGE).contains(p))
            .ok_or_else(|| format!("Page: {t:?} is not a page from 1 to {LAST_SEARCH_PAGE}.")),
    }
}

/// A pupil id from the roster, as typed into a search.
pub fn parse_pupil_id(text: &str) -> Result<String, String> {
    slate_protocol::PupilId::new(text)
        .map(|p| p.as_str().to_owned())
        .map_err(|_| format!("Pupil: {text:?} is not a pupil id from the roster, like p-7f3a9c."))
}

/// A class name, as chosen in a search.
pub fn parse_class_name(text: &str) -> Result<String, String> {
    if text.chars().count() <= 100 {
        Ok(text.to_owned())
    } else {
        Err("Class: a class name is at most 100 letters.".to_owned())
    }
}

/// A search's From and To, as UK days.
#[derive(Debug, Clone, Copy)]
pub struct DayRange {
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
}

impl DayRange {
    /// Reads both fields, noting a problem for each that is not a day.
    pub fn read(problems: &mut Vec<String>, from: &str, to: &str) -> DayRange {
        DayRange {
            from: given(from).and_then(|t| keep(problems, parse_day("From", t))),
            to: given(to).and_then(|t| keep(problems, parse_day("To", t))),
        }
    }

    /// The range as instants, from the first day's midnight to the midnight after the last
    /// (To is searched whole), noting a problem when From is after To.
    pub fn instants(
        self,
        problems: &mut Vec<String>,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                problems.push(format!("From: {from} is after To, {to}."));
            }
        }
        let before = self.to.and_then(|d| d.checked_add_days(chrono::Days::new(1)));
        (self.from.map(crate::uk_time::day_start), before.map(crate::uk_time::day_start))
    }
}

/// A search's query string: the fields given, in the order given, encoded.
pub fn search_query(fields: &[(&str, &str)]) -> String {
    let given: Vec<(&str, &str)> =
        fields.iter().filter_map(|(k, v)| given(v).map(|v| (*k, v))).collect();
    serde_urlencoded::to_string(given).expect("text pairs encode")
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
