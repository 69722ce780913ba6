//! The DSL's alert rules page (issue 17, monitoring the filter): each rule of
//! `alert_rules::RULES` on or off with its threshold and window, when an incident nobody
//! acknowledged is escalated and to whom besides the deputy DSLs, and the rules' recent alerts.
//! A change is written with its audit entry (what changed, before and after) in one transaction.
//! DSL and deputy DSL only (`ManageAlertRules`). No pupil data here: alerts name devices.

use crate::access::{Gate, Permission};
use crate::alert_rules::{
    check_form, clock, limits, AlertSettings, Concern, Measure, DAY_NAMES, RULES,
};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, Viewer};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::RuleAlertRecord;
use crate::uk_time::format_uk;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::Redirect;
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use std::collections::BTreeMap;

/// Recent rule alerts the page lists.
const RECENT_ALERTS: u32 = 20;

pub fn routes() -> Routes {
    let manage = Gate::Needs(Permission::ManageAlertRules);
    Routes::new().get("/alert-rules", manage, rules_page).post("/alert-rules", manage, save_rules)
}

/// `GET /alert-rules`.
pub async fn rules_page(staff: Staff, State(state): State<AppState>) -> Result<Markup, PageError> {
    let (settings, recent) = state
        .store
        .run(|store| Ok((store.alert_settings()?, store.rule_alerts(RECENT_ALERTS)?)))
        .await?;
    let email = state.config.email.is_some() || state.config.webhook.is_some();
    Ok(page(&staff.viewer(), &settings, &recent, email))
}

/// `POST /alert-rules`: every rule's fields, `escalate_after`, `escalate_to`, `csrf`.
pub async fn save_rules(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Result<Redirect, PageError> {
    let fields = form(body)?;
    staff.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))?;
    let settings =
        check_form(&fields).map_err(|problems| PageError::BadForm(problems.join(" ")))?;
    let actor = staff.actor.clone();
    state.store.run(move |store| store.set_alert_settings(&settings, &actor, Utc::now())).await?;
    Ok(Redirect::to("/alert-rules"))
}

fn concern(concern: Concern) -> &'static str {
    match concern {
        Concern::Illegal => "illegal content",
        Concern::Security => "security",
        Concern::Harmful => "harmful content",
    }
}

fn page(
    viewer: &Viewer,
    settings: &AlertSettings,
    recent: &[RuleAlertRecord],
    channels: bool,
) -> Markup {
    let content = html! {
        h1 { "Alert rules" }
        p { "Each rule watches what the devices send and alerts the DSL the same way a report does (the addresses and webhook in the server's configuration, retried until they take it). A burst raises one alert per device per window, however many events it has. Alerts name the device, the times and a count: never a pupil, a site or a page." }
        @if !channels {
            p.banner { "No email or webhook is configured on this server: alerts are queued but go nowhere. IT sets them in slate-server.toml." }
        }
        form.stack method="post" action="/alert-rules" style="max-width: none" {
            (csrf(viewer))
            table {
                thead { tr { th { "Rule" } th { "What triggers it" } th { "On" } th { "How many" } th { "Within (minutes)" } } }
                tbody {
                    @for rule in &RULES {
                        @let setting = settings.rule(rule.id);
                        @let (thresholds, windows) = limits(rule.measure);
                        tr {
                            td {
                                strong { (rule.title) } br;
                                span.muted { (concern(rule.concern)) @if rule.breach { ", a breach: also to senior leaders" } }
                            }
                            td { (rule.triggers) }
                            td {
                                label.check {
                                    input type="checkbox" name=(format!("{}_on", rule.name)) value="on" checked[setting.on];
                                    "on"
                                }
                            }
                            td {
                                input type="number" name=(format!("{}_threshold", rule.name)) value=(setting.threshold)
                                    min=(thresholds.start()) max=(thresholds.end()) required
                                    aria-label=(format!("{}: how many", rule.title));
                                @if rule.measure == Measure::DaysSilent { " days without contact" } @else { " events" }
                            }
                            td {
                                @if rule.measure == Measure::EventsInWindow {
                                    input type="number" name=(format!("{}_window", rule.name)) value=(setting.window_minutes)
                                        min=(windows.start()) max=(windows.end()) required
                                        aria-label=(format!("{}: within minutes", rule.title));
                                } @else { span.muted { "checked every minute" } }
                            }
                        }
                    }
                }
            }
            h2 { "Escalation" }
            p { "A report from a device's button that nobody has acknowledged is sent on, once, to the deputy DSL accounts that have an email address and to the addresses below (the head, say), as well as the DSL's. Alerts of the rules marked as a breach (illegal content, going around the filter, refused hardware, a refused or tampered policy, staff PIN lockouts) go to them at once too: seed 004 asks that senior leaders hear of a security breach with immediate effect." }
            label for="escalate_after" { "Escalate after (minutes)" }
            input #escalate_after type="number" name="escalate_after" value=(settings.escalate_after_minutes) min="5" max="1440" required;
            label for="escalate_to" { "Also escalate to (email addresses, separated by commas)" }
            input #escalate_to type="text" name="escalate_to" value=(settings.escalate_to.join(", "));
            h3 { "The school day" }
            p { "Escalation counts only minutes within the school day, UK time: a report at 16:25 on a Friday with 15 minutes is escalated at 08:10 on Monday, when a deputy can go to the classroom, not at 16:40 on Friday. The report's own alert and breach alerts go at once, whatever the hour. Untick to count every hour of every day." }
            label.check {
                input type="checkbox" name="escalate_in_school_hours" value="on" checked[settings.escalate_in_school_hours];
                "Count only the school day"
            }
            fieldset {
                legend { "Days" }
                @for (i, day) in DAY_NAMES.iter().enumerate() {
                    label.check {
                        input type="checkbox" name=(format!("school_{day}")) value="on" checked[settings.school_hours.days[i]];
                        (day)
                    }
                }
            }
            label for="school_start" { "School day starts (HH:MM)" }
            input #school_start type="text" name="school_start" value=(clock(settings.school_hours.start_minute)) required;
            label for="school_end" { "School day ends (HH:MM)" }
            input #school_end type="text" name="school_end" value=(clock(settings.school_hours.end_minute)) required;
            button type="submit" { "Save the alert rules" }
        }
        h2 { "Not watched yet" }
        p.muted { "Devices do not report this yet, so no rule can alert on it: DNS that the device's firewall drops on its way around the filter (dropped without counting). Attempts to use DNS-over-HTTPS are watched: they are blocks in the dns-bypass list. A refused or tampered policy and staff PIN lockouts are watched by their rules above, from devices of this release on." }
        h2 { "Recent alerts from these rules" }
        @if recent.is_empty() {
            p.empty { "None yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Rule" } th { "Device" } th { "Count" } th { "Sent" } } }
                tbody {
                    @for alert in recent {
                        tr {
                            td { (format_uk(alert.at)) }
                            td { (crate::alert_rules::RuleId::parse(&alert.rule).map_or(alert.rule.as_str(), |id| id.rule().title)) }
                            td { @if let Some(d) = alert.device { a href=(format!("/devices/{d}")) { (d) } } }
                            td { (alert.count) }
                            td { @if alert.sent { "yes" } @else { "not yet" } }
                        }
                    }
                }
            }
        }
    };
    layout(Some(viewer), "Alert rules", content)
}
