//! The termly governors' report (seed 004: "collated and anonymised reports of online safety
//! incidents"): counts by kind of concern, by year group and by week, and bar charts as SVG.
//! Pure: rows in, counts and markup out. No names, device numbers, URLs or titles reach it.
//! Counts by category and by year group are kept apart (no cross-table), so a small class's
//! single incident cannot be read off against its kind, and a count under [`SMALLEST_SHOWN`] in
//! either shows as "fewer than 5", ranked after the counts shown, so an anonymised report cannot
//! point at one child (nor can the bars' length or order give the number away).

use crate::incident::category_label;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use maud::{html, Markup};
use std::collections::BTreeMap;

/// One incident as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFact {
    pub pressed_at: DateTime<Utc>,
    pub category: Option<String>,
    /// The roster's class name (e.g. "Year 2"), if the pupil is on the roster.
    pub year_group: Option<String>,
}

/// The smallest count a category or year group shows as a number.
pub const SMALLEST_SHOWN: usize = 5;

/// A count as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exactly(usize),
    /// 1 to `SMALLEST_SHOWN - 1`: too few to show without pointing at a child.
    FewerThanSmallest,
}

impl Count {
    /// `n` as shown in a category or year group. Pure.
    pub fn of(n: usize) -> Count {
        if n > 0 && n < SMALLEST_SHOWN {
            Count::FewerThanSmallest
        } else {
            Count::Exactly(n)
        }
    }

    /// The length a bar may have: none for a suppressed count.
    fn bar(self) -> usize {
        match self {
            Count::Exactly(n) => n,
            Count::FewerThanSmallest => 0,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exactly(n) => write!(f, "{n}"),
            Count::FewerThanSmallest => write!(f, "fewer than {SMALLEST_SHOWN}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: usize,
    /// (label, count), most first, ties by label; suppressed counts last, by label.
    pub by_category: Vec<(String, Count)>,
    pub by_year_group: Vec<(String, Count)>,
    /// (Monday of the week, count), every week in the period, zero weeks included.
    pub by_week: Vec<(NaiveDate, usize)>,
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(day.weekday().num_days_from_monday().into())
}

/// Counts shown as [`Count`]s, most first, ties by label, suppressed ones last by label (their
/// order must not rank them). Pure.
fn ranked(counts: BTreeMap<String, usize>) -> Vec<(String, Count)> {
    let mut list: Vec<_> = counts.into_iter().map(|(label, n)| (label, Count::of(n))).collect();
    let key = |c: &Count| match c {
        Count::Exactly(n) => *n,
        Count::FewerThanSmallest => 0,
    };
    list.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then_with(|| a.0.cmp(&b.0)));
    list
}

/// Counts the incidents pressed from `from` to `to` inclusive.
pub fn summarise(facts: &[IncidentFact], from: NaiveDate, to: NaiveDate) -> Summary {
    let mut by_category = BTreeMap::new();
    let mut by_year = BTreeMap::new();
    let mut by_week = BTreeMap::new();
    let mut week = monday_of(from);
    while week <= to {
        by_week.insert(week, 0);
        week += Duration::days(7);
    }
    let mut total = 0;
    for fact in facts {
        let day = fact.pressed_at.date_naive();
        if day < from || day > to {
            continue;
        }
        total += 1;
        let category =
            fact.category.as_deref().and_then(category_label).unwrap_or("Not yet recorded");
        *by_category.entry(category.to_owned()).or_default() += 1;
        let year = fact.year_group.clone().unwrap_or_else(|| "Not on the roster".into());
        *by_year.entry(year).or_default() += 1;
        *by_week.entry(monday_of(day)).or_default() += 1;
    }
    Summary {
        from,
        to,
        total,
        by_category: ranked(by_category),
        by_year_group: ranked(by_year),
        by_week: by_week.into_iter().collect(),
    }
}

/// A horizontal bar chart as inline SVG, with a text equivalent for screen readers.
pub fn bar_chart(title: &str, bars: &[(String, Count)]) -> Markup {
    const ROW: usize = 26;
    const LABEL: usize = 230;
    const WIDTH: usize = 640;
    let max = bars.iter().map(|b| b.1.bar()).max().unwrap_or(0).max(1);
    let height = ROW * bars.len().max(1) + 10;
    let scale = |n: usize| (WIDTH - LABEL - 50) * n / max;
    let description: Vec<String> = bars.iter().map(|(l, n)| format!("{l}: {n}")).collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) viewBox={ "0 0 " (WIDTH) " " (height) }
            role="img" aria-label={ (title) ". " (description.join("; ")) } {
            @for (i, (label, n)) in bars.iter().enumerate() {
                @let y = i * ROW + 5;
                text x=(LABEL - 8) y=(y + 16) text-anchor="end" font-size="13" fill="#1f2933" { (label) }
                rect x=(LABEL) y=(y + 3) width=(scale(n.bar())) height=(ROW - 8) fill="#2f5d8a" {}
                text x=(LABEL + scale(n.bar()) + 6) y=(y + 16) font-size="13" fill="#1f2933" { (n) }
            }
        }
    }
}

/// The week bars' labels: "w/c 7 Sep". Weeks show their number: a week names no kind or class.
pub fn week_bars(summary: &Summary) -> Vec<(String, Count)> {
    summary
        .by_week
        .iter()
        .map(|(d, n)| (format!("w/c {}", d.format("%-d %b")), Count::Exactly(*n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(t: &str, category: Option<&str>, year: Option<&str>) -> IncidentFact {
        IncidentFact {
            pressed_at: t.parse().unwrap(),
            category: category.map(Into::into),
            year_group: year.map(Into::into),
        }
    }

    #[test]
    fn counts_by_category_year_and_week_within_the_term() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut facts = vec![
            fact("2026-09-21T10:00:00Z", None, Some("Year 2")),
            fact("2026-09-22T10:00:00Z", Some("accidental"), None),
            fact("2026-12-25T10:00:00Z", Some("bullying"), Some("Year 2")), // after the term
        ];
        for day in ["07", "08", "09", "10", "11", "14"] {
            facts.push(fact(&format!("2026-09-{day}T10:00:00Z"), Some("bullying"), Some("Year 2")));
        }
        for day in ["08", "09", "10", "11", "15"] {
            facts.push(fact(&format!("2026-09-{day}T11:00:00Z"), Some("bullying"), Some("Year 4")));
        }
        let s = summarise(&facts, d("2026-09-03"), d("2026-09-30"));
        assert_eq!(s.total, 13);
        let few = Count::FewerThanSmallest;
        assert_eq!(
            s.by_category,
            [
                ("Bullying".into(), Count::Exactly(11)),
                ("Accidental / nothing harmful".into(), few),
                ("Not yet recorded".into(), few)
            ]
        );
        assert_eq!(
            s.by_year_group,
            [
                ("Year 2".into(), Count::Exactly(7)),
                ("Year 4".into(), Count::Exactly(5)),
                ("Not on the roster".into(), few)
            ]
        );
        let weeks: Vec<_> = s.by_week.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        assert_eq!(
            weeks,
            [
                ("2026-08-31".into(), 0),
                ("2026-09-07".into(), 9),
                ("2026-09-14".into(), 2),
                ("2026-09-21".into(), 2),
                ("2026-09-28".into(), 0)
            ]
        );
    }

    #[test]
    fn counts_under_five_show_as_fewer_than_five_and_rank_last_by_label() {
        let cases = [(0, "0"), (1, "fewer than 5"), (4, "fewer than 5"), (5, "5"), (31, "31")];
        for (n, shown) in cases {
            assert_eq!(Count::of(n).to_string(), shown, "{n}");
        }
        // A 4 and a 1 must not be told apart by their order: both rank after 5, by label.
        let counts = BTreeMap::from([("b".to_string(), 4), ("a".to_string(), 1), ("c".into(), 5)]);
        let few = Count::FewerThanSmallest;
        assert_eq!(
            ranked(counts),
            [("c".to_string(), Count::Exactly(5)), ("a".into(), few), ("b".into(), few)]
        );
        // Nor by a bar's length: a suppressed count draws none.
        let svg = bar_chart("By kind", &[("Bullying".into(), few)]).into_string();
        assert!(svg.contains(r#"width="0""#) && svg.contains("fewer than 5"), "{svg}");
    }

    #[test]
    fn charts_are_escaped_svg_with_a_text_equivalent() {
        let bars = [("<b>".into(), Count::Exactly(6)), ("Other".into(), Count::FewerThanSmallest)];
        let svg = bar_chart("By kind", &bars).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains(r#"aria-label="By kind. &lt;b&gt;: 6; Other: fewer than 5""#),
            "{svg}"
        );
        assert!(bar_chart("Empty", &[]).into_string().contains("<svg"));
    }
}
