//! Searching the DSL's incident list: the filter form's fields (UK days, class, device, state,
//! kind of concern, pupil) and the page number, read from the query string and checked, each
//! problem named by its field. Pure: text in, a store filter out.

use crate::http::forms::{
    given, keep, parse_class_name, parse_device, parse_page, parse_pupil_id, search_query, DayRange,
};
use crate::incident::{category_label, Action, Status};
use crate::store::IncidentFilter;
use serde::{Deserialize, Serialize};

/// Incidents on one page of the list.
pub const PAGE_SIZE: u32 = 50;

/// The form as the browser sends it: every field text, empty when left blank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SearchForm {
    pub from: String,
    pub to: String,
    pub class: String,
    pub device: String,
    pub state: String,
    pub category: String,
    pub pupil: String,
    pub page: String,
}

/// A checked search: the store's filter and the page, from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub filter: IncidentFilter,
    pub page: u32,
}

/// The states the list can be narrowed to, as (form value, label).
pub fn states() -> Vec<(&'static str, String)> {
    let mut states =
        vec![("new", Status::New.label()), ("acknowledged", Status::Acknowledged.label())];
    states.extend(Action::ALL.iter().map(|a| (a.name(), a.label().to_owned())));
    states
}

fn parse_state(text: &str) -> Option<Status> {
    match text {
        "new" => Some(Status::New),
        "acknowledged" => Some(Status::Acknowledged),
        other => Action::parse(other).map(Status::Actioned),
    }
}

impl SearchForm {
    /// Checks every field; on failure, every problem, each naming its field.
    pub fn check(&self) -> Result<Search, Vec<String>> {
        let mut problems = Vec::new();
        let days = DayRange::read(&mut problems, &self.from, &self.to);
        let device =
            given(&self.device).and_then(|t| keep(&mut problems, parse_device(t).map(|d| d.get())));
        let status = given(&self.state).and_then(|t| {
            keep(
                &mut problems,
                parse_state(t).ok_or_else(|| format!("State: {t:?} is not a state on the list.")),
            )
        });
        let category = given(&self.category).and_then(|t| {
            keep(
                &mut problems,
                match category_label(t) {
                    Some(_) => Ok(t.to_owned()),
                    None => Err(format!("Kind of concern: {t:?} is not one on the list.")),
                },
            )
        });
        let pupil = given(&self.pupil).and_then(|t| keep(&mut problems, parse_pupil_id(t)));
        let class = given(&self.class).and_then(|t| keep(&mut problems, parse_class_name(t)));
        let page = keep(&mut problems, parse_page(&self.page));
        let (pressed_from, pressed_before) = days.instants(&mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Search {
            filter: IncidentFilter {
                pressed_from,
                pressed_before,
                device,
                class,
                status,
                category,
                pupil,
            },
            page: page.unwrap_or(1),
        })
    }

    /// Whether any filter is set (the page number aside): a search, not the live list.
    pub fn narrows(&self) -> bool {
        let SearchForm { from, to, class, device, state, category, pupil, page: _ } = self;
        [from, to, class, device, state, category, pupil].iter().any(|f| given(f).is_some())
    }

    /// The query string of this search at `page`, for the list's page links.
    pub fn at_page(&self, page: u32) -> String {
        search_query(&[
            ("from", &self.from),
            ("to", &self.to),
            ("class", &self.class),
            ("device", &self.device),
            ("state", &self.state),
            ("category", &self.category),
            ("pupil", &self.pupil),
            ("page", &page.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn form(pairs: &[(&str, &str)]) -> SearchForm {
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_empty_form_is_the_whole_list_at_page_one() {
        let search = form(&[]).check().unwrap();
        assert_eq!(search, Search { filter: IncidentFilter::default(), page: 1 });
        assert!(!form(&[("page", "3")]).narrows());
        assert!(!form(&[("class", " ")]).narrows());
        assert!(form(&[("device", "12")]).narrows());
    }

    #[test]
    fn uk_days_become_instants_across_both_clock_changes() {
        let cases = [
            // (from, to, pressed_from, pressed_before)
            ("2026-11-17", "2026-11-17", "2026-11-17T00:00:00Z", "2026-11-18T00:00:00Z"),
            ("2026-06-23", "2026-06-23", "2026-06-22T23:00:00Z", "2026-06-23T23:00:00Z"),
            // The day the clocks go forward is 23 hours long, the day they go back 25.
            ("2026-03-29", "2026-03-29", "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z"),
            ("2026-10-25", "2026-10-25", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z"),
        ];
        for (from, to, start, end) in cases {
            let search = form(&[("from", from), ("to", to)]).check().unwrap();
            assert_eq!(search.filter.pressed_from, Some(utc(start)), "{from}");
            assert_eq!(search.filter.pressed_before, Some(utc(end)), "{to}");
        }
    }

    #[test]
    fn every_field_is_read_and_every_problem_named() {
        let search = form(&[
            ("class", "Year 5, Kingfishers"),
            ("device", "12"),
            ("state", "escalated"),
            ("category", "bullying"),
            ("pupil", "p-7f3a9c"),
            ("page", "2"),
        ])
        .check()
        .unwrap();
        assert_eq!(
            search,
            Search {
                filter: IncidentFilter {
                    class: Some("Year 5, Kingfishers".into()),
                    device: Some(12),
                    status: Some(Status::Actioned(Action::Escalated)),
                    category: Some("bullying".into()),
                    pupil: Some("p-7f3a9c".into()),
                    ..IncidentFilter::default()
                },
                page: 2,
            }
        );
        let cases: [(&[(&str, &str)], &str); 9] = [
            (&[("from", "17/11/2026")], "From: \"17/11/2026\" is not a date like 2026-11-17."),
            (&[("to", "tomorrow")], "To: \"tomorrow\" is not a date like 2026-11-17."),
            (
                &[("from", "2026-11-18"), ("to", "2026-11-17")],
                "From: 2026-11-18 is after To, 2026-11-17.",
            ),
            (&[("device", "0")], "Device: \"0\" is not a device number from 1 to 9999."),
            (&[("state", "closed")], "State: \"closed\" is not a state on the list."),
            (&[("category", "spam")], "Kind of concern: \"spam\" is not one on the list."),
            (
                &[("pupil", "Amira K.")],
                "Pupil: \"Amira K.\" is not a pupil id from the roster, like p-7f3a9c.",
            ),
            (&[("page", "0")], "Page: \"0\" is not a page from 1 to 2000."),
            (&[("page", "2001")], "Page: \"2001\" is not a page from 1 to 2000."),
        ];
        for (pairs, problem) in cases {
            assert_eq!(form(pairs).check().unwrap_err(), [problem], "{pairs:?}");
        }
        let two = form(&[("device", "x"), ("state", "y")]).check().unwrap_err();
        assert_eq!(two.len(), 2, "every problem at once: {two:?}");
    }

    #[test]
    fn page_links_keep_the_search_and_encode_it() {
        let search = form(&[("class", "Year 5, Kingfishers"), ("state", ""), ("page", "1")]);
        assert_eq!(search.at_page(2), "class=Year+5%2C+Kingfishers&page=2");
        assert_eq!(form(&[]).at_page(3), "page=3");
    }

    #[test]
    fn every_state_on_the_list_reads_back() {
        for (value, label) in states() {
            let status = parse_state(value).unwrap();
            assert_eq!(status.label(), label);
        }
    }
}
