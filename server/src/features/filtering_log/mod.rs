//! The school-wide filtering log for the DSL (DfE filtering and monitoring standards: filtering
//! logs regularly reviewed): every attempt a device's filter refused, 50 a page, searchable by UK
//! day range, class, device, list and pupil, and exportable as CSV. Case-file reading (blocked
//! addresses include illegal-content ones): DSL and deputy only, audited.

mod views;

use crate::access::{Gate, Permission};
use crate::export;
use crate::http::error::PageError;
use crate::http::forms::{
    given, keep, parse_class_name, parse_device, parse_page, parse_pupil_id, search_query, DayRange,
};
use crate::http::paged_export::{csv_pages, page_of, EXPORT_PAGE_ROWS};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::BlockFilter;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use maud::Markup;
use serde::{Deserialize, Serialize};

/// Attempts on one page.
pub const PAGE_SIZE: u32 = 50;

pub fn routes() -> Routes {
    let case_file = Gate::Needs(Permission::ReadCaseFile);
    Routes::new().get("/filtering-log", case_file, log_page).get(
        "/filtering-log.csv",
        case_file,
        log_csv,
    )
}

/// The search form as the browser sends it: every field text, empty when left blank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LogForm {
    pub from: String,
    pub to: String,
    pub class: String,
    pub device: String,
    pub list: String,
    pub pupil: String,
    pub page: String,
}

impl LogForm {
    /// The store's filter and the page, or every problem, each naming its field.
    pub fn check(&self) -> Result<(BlockFilter, u32), Vec<String>> {
        let mut problems = Vec::new();
        let days = DayRange::read(&mut problems, &self.from, &self.to);
        let device =
            given(&self.device).and_then(|t| keep(&mut problems, parse_device(t).map(|d| d.get())));
        let list = given(&self.list).and_then(|t| {
            let ok = t.len() <= 64
                && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            keep(
                &mut problems,
                if ok { Ok(t.to_owned()) } else { Err(format!("List: {t:?} is not a list name.")) },
            )
        });
        let pupil = given(&self.pupil).and_then(|t| keep(&mut problems, parse_pupil_id(t)));
        let class = given(&self.class).and_then(|t| keep(&mut problems, parse_class_name(t)));
        let page = keep(&mut problems, parse_page(&self.page));
        let (from, before) = days.instants(&mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok((BlockFilter { from, before, device, class, list, pupil }, page.unwrap_or(1)))
    }

    /// The query string of this search at `page`, for page links and the export.
    pub fn at_page(&self, page: Option<u32>) -> String {
        let page = page.map(|p| p.to_string()).unwrap_or_default();
        search_query(&[
            ("from", &self.from),
            ("to", &self.to),
            ("class", &self.class),
            ("device", &self.device),
            ("list", &self.list),
            ("pupil", &self.pupil),
            ("page", &page),
        ])
    }
}

fn read(
    query: Result<Query<LogForm>, QueryRejection>,
) -> (LogForm, Result<(BlockFilter, u32), Vec<String>>) {
    match query {
        Ok(Query(form)) => {
            let checked = form.check();
            (form, checked)
        }
        Err(_) => (
            LogForm::default(),
            Err(vec!["The search in the address could not be read: search again below.".into()]),
        ),
    }
}

/// `GET /filtering-log`.
pub async fn log_page(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<LogForm>, QueryRejection>,
) -> Result<Markup, PageError> {
    let (form, checked) = read(query);
    let classes = state.store.run(|store| store.classes()).await?;
    let classes: Vec<String> = classes.into_iter().map(|c| c.name).collect();
    let (page, blocks) = match &checked {
        Ok((filter, page)) => {
            let (filter, offset) = (filter.clone(), (page - 1) * PAGE_SIZE);
            // One more than a page, to know whether a next page exists without counting.
            let found = state
                .store
                .run(move |store| store.filtering_log(&filter, PAGE_SIZE + 1, offset))
                .await?;
            (*page, found)
        }
        Err(_) => (1, Vec::new()),
    };
    staff.audit(&state, "viewed filtering log", None).await?;
    let shown = &blocks[..blocks.len().min(PAGE_SIZE as usize)];
    let view = views::LogView {
        form: &form,
        problems: checked.as_ref().err().map(Vec::as_slice).unwrap_or_default(),
        classes: &classes,
        page,
        has_next: blocks.len() > PAGE_SIZE as usize,
        blocks: shown,
    };
    Ok(views::log_page(&staff.viewer(), &view, Utc::now()))
}

/// `GET /filtering-log.csv`: the same search, every attempt, streamed page by page from the
/// store's read-only connection.
pub async fn log_csv(
    staff: Staff,
    State(state): State<AppState>,
    query: Result<Query<LogForm>, QueryRejection>,
) -> Result<Response, PageError> {
    let (filter, _) = read(query).1.map_err(|problems| PageError::BadForm(problems.join(" ")))?;
    staff.audit(&state, "exported filtering log (CSV)", None).await?;
    let head = export::filtering_log_csv_head();
    let store = state.store.clone();
    Ok(csv_pages(store, "filtering-log.csv", "filtering log", head, move |store, after| {
        let blocks = store.filtering_log_after(&filter, after, EXPORT_PAGE_ROWS)?;
        Ok(page_of(blocks, export::filtering_log_csv_rows))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(query: &str) -> LogForm {
        serde_urlencoded::from_str(query).unwrap()
    }

    #[test]
    fn each_field_is_read_and_each_problem_named() {
        let (filter, page) =
            form("from=2026-06-23&to=2026-06-23&class=Oak&device=12&list=adult&pupil=p-1&page=2")
                .check()
                .unwrap();
        assert_eq!(page, 2);
        assert_eq!(
            filter,
            BlockFilter {
                from: Some("2026-06-22T23:00:00Z".parse().unwrap()),
                before: Some("2026-06-23T23:00:00Z".parse().unwrap()),
                device: Some(12),
                class: Some("Oak".into()),
                list: Some("adult".into()),
                pupil: Some("p-1".into()),
            }
        );
        assert_eq!(form("").check().unwrap(), (BlockFilter::default(), 1));
        let cases = [
            ("list=Adult%20sites", "List: \"Adult sites\" is not a list name."),
            ("device=0", "Device: \"0\" is not a device number from 1 to 9999."),
            ("from=2026-06-24&to=2026-06-23", "From: 2026-06-24 is after To, 2026-06-23."),
            ("page=0", "Page: \"0\" is not a page from 1 to 2000."),
            (
                "pupil=Amira+K.",
                "Pupil: \"Amira K.\" is not a pupil id from the roster, like p-7f3a9c.",
            ),
        ];
        for (query, problem) in cases {
            assert_eq!(form(query).check().unwrap_err(), [problem], "{query}");
        }
    }

    #[test]
    fn page_links_keep_the_search() {
        let search = form("list=adult&class=Year+5%2C+Kingfishers&page=4");
        assert_eq!(search.at_page(Some(5)), "class=Year+5%2C+Kingfishers&list=adult&page=5");
        assert_eq!(search.at_page(None), "class=Year+5%2C+Kingfishers&list=adult");
    }
}
