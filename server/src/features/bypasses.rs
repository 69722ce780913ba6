//! Filter bypasses (seeds 003, 004: time-bound, auditable, with reasons): a teacher asks for a
//! class to reach one site for a set time, a DSL approves or refuses, and an approved bypass goes
//! into the filter document devices get until it ends. It never lifts illegal-content lists or
//! safe search (the device's filter sees to that).

use crate::access::{self, Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::{form, parse_time};
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::{BypassDecision, BypassRecord};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::Redirect;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;

const BYPASS_ROWS: u32 = 200;

pub fn routes() -> Routes {
    Routes::new()
        .get("/bypasses", Gate::Needs(Permission::SeeBypasses), bypasses_page)
        .post("/bypasses", Gate::Needs(Permission::RequestBypass), request_bypass)
        .post("/bypasses/{id}/decide", Gate::Needs(Permission::ApproveBypass), decide_bypass)
}

/// A domain a bypass may name: lowercased, no trailing dot, labels of a-z, 0-9 and -.
pub fn normalise_domain(text: &str) -> Result<String, String> {
    let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(domain)
    } else {
        Err(format!("Domain: {:?} is not a domain name like example.org.", text.trim()))
    }
}

/// A bypass request's times and reason, asked for at `now`: one that would already be over is
/// refused, since it could only put a false record in the audit log.
pub fn check_bypass(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    if until <= from {
        return Err("Until: must be after From.".into());
    }
    if until <= now {
        return Err(format!(
            "Until: {} has already passed. A bypass is for now or later.",
            crate::uk_time::format_uk(until)
        ));
    }
    if until - from > Duration::days(366) {
        return Err("Until: a bypass lasts at most a year.".into());
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 512 || reason.chars().any(char::is_control) {
        return Err("Reason: 1 to 512 characters, on one line.".into());
    }
    Ok(reason.to_owned())
}

/// `GET /bypasses`.
pub async fn bypasses_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let (requests, classes) =
        state.store.run(|store| Ok((store.bypasses(BYPASS_ROWS)?, store.classes()?))).await?;
    staff.audit(&state, "viewed filter bypasses", None).await?;
    let viewer = staff.viewer();
    let now = Utc::now();
    Ok(layout(
        Some(&viewer),
        "Filter bypasses",
        html! {
            h1 { "Filter bypasses" }
            p { "A bypass lets a class reach one site for a set time. It never lifts illegal-content lists or safe search. A DSL approves or refuses each request." }
            @if viewer.may(Permission::RequestBypass) {
                form method="post" action="/bypasses" {
                    (csrf(&viewer))
                    label { "Class " select name="class" { @for c in &classes { option value=(c.name) { (c.name) } } } } " "
                    label { "Site " input name="domain" placeholder="example.org" required; } " "
                    label { "From (UK time) " input type="datetime-local" name="from" required; } " "
                    label { "Until (UK time) " input type="datetime-local" name="until" required; } br;
                    label { "Reason " input name="reason" size="60" required; } " "
                    button type="submit" { "Ask for a bypass" }
                }
            }
            (bypass_table(&viewer, &requests, now))
        },
    ))
}

fn bypass_table(viewer: &Viewer, requests: &[BypassRecord], now: DateTime<Utc>) -> Markup {
    use crate::uk_time::format_uk;
    html! {
        table {
            tr { th { "Site" } th { "Profile" } th { "From" } th { "Until" } th { "Reason" } th { "Asked by" } th { "Status" } }
            @for b in requests {
                tr {
                    td { (b.domain) } td { (b.profile) } td { (format_uk(b.from)) } td { (format_uk(b.until)) }
                    td { (b.reason) } td { (b.requested_by) }
                    td {
                        @if b.status == "pending" && viewer.may(Permission::ApproveBypass)
                            && access::may_decide_bypass(&b.requested_by, &viewer.name) {
                            form.inline method="post" action=(format!("/bypasses/{}/decide", b.id)) {
                                (csrf(viewer))
                                button.approve type="submit" name="decision" value="approve" { "Approve" } " "
                                button.refuse type="submit" name="decision" value="refuse" { "Refuse" }
                            }
                        } @else if b.status == "approved" && b.until <= now {
                            "ended"
                        } @else {
                            (b.status) @if let Some(by) = &b.decided_by { " by " (by) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct BypassForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
}

/// `POST /bypasses`: a teacher's request, pending until a DSL decides.
pub async fn request_bypass(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<BypassForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let domain = normalise_domain(&f.domain).map_err(PageError::BadForm)?;
    let from = parse_time("From", &f.from);
    let until = parse_time("Until", &f.until);
    let (from, until) = (from.map_err(PageError::BadForm)?, until.map_err(PageError::BadForm)?);
    let reason = check_bypass(from, until, &f.reason, Utc::now()).map_err(PageError::BadForm)?;
    let classes = state.store.run(|store| store.classes()).await?;
    let class = classes
        .iter()
        .find(|c| c.name == f.class.trim())
        .ok_or_else(|| PageError::BadForm("Class: no class has that name.".into()))?;
    let (profile, by) = (class.profile.clone(), staff.actor.clone());
    let record = Some(format!("{domain} for {profile}"));
    let id = state
        .store
        .run(move |store| {
            store.request_bypass(&profile, &domain, from, until, &reason, &by, Utc::now())
        })
        .await?;
    staff
        .audit(&state, "asked for filter bypass", record.map(|r| format!("bypass {id}: {r}")))
        .await?;
    Ok(Redirect::to("/bypasses"))
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// `POST /bypasses/{id}/decide`: a DSL approves (it goes into the filter policy) or refuses.
pub async fn decide_bypass(
    staff: Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Form<DecideForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    let id: i64 = id.parse().map_err(|_| PageError::NotFound(format!("No bypass {id}.")))?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => return Err(PageError::BadForm("Decision: approve or refuse.".into())),
    };
    staff.check_csrf(&f.csrf)?;
    let by = staff.actor.clone();
    let decided =
        state.store.run(move |store| store.decide_bypass(id, approve, &by, Utc::now())).await?;
    if decided == BypassDecision::Decided {
        let action = if approve { "approved filter bypass" } else { "refused filter bypass" };
        staff.audit(&state, action, Some(format!("bypass {id}"))).await?;
        state.commands_changed();
    }
    match decided {
        BypassDecision::Decided => Ok(Redirect::to("/bypasses")),
        BypassDecision::NotPending => {
            Err(PageError::Conflict("That request was decided already, or does not exist.".into()))
        }
        BypassDecision::OwnRequest => Err(PageError::Conflict(
            "You asked for this bypass: another DSL or deputy decides it.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypasses_name_a_domain_a_time_and_a_reason() {
        assert_eq!(normalise_domain(" Example.ORG. ").unwrap(), "example.org");
        for bad in ["example", "ex ample.org", "*.example.org", "https://example.org"] {
            assert!(normalise_domain(bad).is_err(), "{bad}");
        }
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = t("2026-11-23T09:00:00Z");
        assert!(check_bypass(t("2026-11-23T10:00:00Z"), t("2026-11-23T11:00:00Z"), "History", now)
            .is_ok());
        assert!(check_bypass(t("2026-11-23T10:00:00Z"), t("2026-11-23T10:00:00Z"), "x", now)
            .unwrap_err()
            .starts_with("Until"));
        assert!(check_bypass(t("2026-11-23T10:00:00Z"), t("2028-11-23T10:00:00Z"), "x", now)
            .unwrap_err()
            .starts_with("Until"));
        assert!(check_bypass(t("2026-11-23T10:00:00Z"), t("2026-11-23T11:00:00Z"), " ", now)
            .unwrap_err()
            .starts_with("Reason"));
    }

    #[test]
    fn a_bypass_that_would_already_be_over_is_refused() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = t("2026-06-23T09:30:00Z");
        let cases = [
            // (from, until, refused)
            ("2026-06-22T09:00:00Z", "2026-06-22T10:00:00Z", true),
            ("2026-06-23T08:00:00Z", "2026-06-23T09:30:00Z", true),
            ("2026-06-23T08:00:00Z", "2026-06-23T09:31:00Z", false),
            ("2026-06-23T09:30:00Z", "2026-06-23T10:30:00Z", false),
            ("2026-06-24T09:00:00Z", "2026-06-24T10:00:00Z", false),
        ];
        for (from, until, refused) in cases {
            let answer = check_bypass(t(from), t(until), "History", now);
            assert_eq!(answer.is_err(), refused, "{from} to {until}: {answer:?}");
        }
        let refused = check_bypass(t(cases[0].0), t(cases[0].1), "History", now).unwrap_err();
        assert_eq!(
            refused,
            "Until: 2026-06-22 11:00 BST has already passed. A bypass is for now or later."
        );
    }
}
