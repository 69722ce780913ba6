//! Alerts when a report arrives, when an alert rule fires on a device (`alert_rules`) and when an
//! incident is escalated: email over SMTP and a webhook POST, as configured. What an alert says
//! is pure ([`alert_email`], [`webhook_body`]); sending is at the edge. An alert carries the
//! device, the time, a count and a link, never the pupil's name, the URL, the blocked name or
//! the page title: mail and chat systems are not where safeguarding records live.

use crate::alert_rules::{event_kinds, RuleId};
use crate::config::{Config, EmailConfig, SmtpSecurity};
use chrono::{DateTime, Utc};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// A new report, a rule's alert or an escalation, as alerts describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// What the alert is about.
    pub about: AlertAbout,
    /// The incident; `None` only for a rule's alert.
    pub incident: Option<i64>,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
    pub pressed_at: DateTime<Utc>,
    /// "Tell my teacher" on a blocked page: low priority, the device was not held.
    pub from_block_page: bool,
    /// The account that recorded the incident by hand; `None` for a device's report.
    pub recorded_by: Option<String>,
    /// The class teachers' addresses (an escalation: the deputy DSLs' and those the DSL
    /// gave), besides the configured ones.
    pub also_to: Vec<String>,
}

/// The kinds of alert the outbox sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertAbout {
    /// A device's report, or an incident recorded by hand.
    Report,
    /// An alert rule fired on `device`: `count` events from `first_at` to `pressed_at`.
    Rule { rule: String, count: u32, first_at: DateTime<Utc> },
    /// An incident nobody acknowledged in time.
    Escalation,
    /// Staff asked for a site to be blocked (a new pending request): the site and how many
    /// unlocks asked so far, read when the alert goes. No incident, no device: IT gets it too.
    BlockRequest { site: String, asks: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot read the SMTP password file {0}: {1}")]
    PasswordFile(std::path::PathBuf, std::io::Error),
    #[error("cannot set up SMTP to {0}: {1}")]
    Smtp(String, String),
    #[error("cannot set up the webhook client: {0}")]
    Webhook(String),
}

fn link(public_url: Option<&str>, incident: i64) -> String {
    format!("{}/incidents/{incident}", public_url.unwrap_or(""))
}

/// UK time, zone named, as every time a person reads.
fn uk(at: DateTime<Utc>) -> impl std::fmt::Display {
    at.with_timezone(&chrono_tz::Europe::London).format("%H:%M:%S %Z on %a %-d %b %Y")
}

/// Where a rule's alert is looked into: the filtering log for blocks, else the device's page.
fn rule_link(public_url: Option<&str>, rule: &str, device: Option<u16>) -> String {
    let base = public_url.unwrap_or("");
    let device = device.map(|d| d.to_string()).unwrap_or_default();
    match RuleId::parse(rule) {
        Some(id) if event_kinds(id) == ["filter_blocked"] => {
            format!("{base}/filtering-log?device={device}")
        }
        _ => format!("{base}/devices/{device}"),
    }
}

/// A rule's title, or its stored name from a newer server.
fn rule_title(rule: &str) -> &str {
    RuleId::parse(rule).map_or(rule, |id| id.rule().title)
}

/// Subject and body of the alert email.
pub fn alert_email(alert: &Alert, public_url: Option<&str>) -> (String, String) {
    let when = uk(alert.pressed_at);
    let device = alert.device.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    let incident = alert.incident.unwrap_or_default();
    match &alert.about {
        AlertAbout::Report => {}
        AlertAbout::Rule { rule, count, first_at } => {
            let title = rule_title(rule);
            let link = rule_link(public_url, rule, alert.device);
            let subject = format!("Slate: {title} on device {device}");
            let events = if *count == 1 { "1 event".to_owned() } else { format!("{count} events") };
            let what = if RuleId::parse(rule) == Some(RuleId::DeviceSilent) {
                format!("not in touch since {when} ({count} days)")
            } else {
                format!("{events} from {} to {when}", uk(*first_at))
            };
            let body = format!(
                "Alert rule \"{title}\" on device {device}: {what}.\n\n\
                 Look into it: {link}\n\n\
                 Further events on this device within the rule's window raise no more alerts.\n\
                 The DSL sets the alert rules at {}/alert-rules.\n",
                public_url.unwrap_or(""),
            );
            return (subject, body);
        }
        AlertAbout::Escalation => {
            let link = link(public_url, incident);
            let subject = format!(
                "Slate: incident {incident} on device {device} not acknowledged (escalated)"
            );
            let body = format!(
                "The report from device {device} at {when} has not been acknowledged by anyone.\n\
                 It is escalated to you as the deputy DSL or senior leader.\n\n\
                 Incident {incident}: {link}\n\n\
                 Sign in to acknowledge it, or make sure someone is on their way to the device.\n"
            );
            return (subject, body);
        }
        AlertAbout::BlockRequest { site, asks } => {
            let base = public_url.unwrap_or("");
            let times = if *asks == 1 { "once".to_owned() } else { format!("{asks} times") };
            let subject = format!("Slate: site block requested: {site}");
            let body = format!(
                "Staff asked for {site} to be blocked ({times} so far), on unlocking a device.\n\n\
                 Accept it into a school block list or decline it: {base}/block-requests\n"
            );
            return (subject, body);
        }
    }
    let link = link(public_url, incident);
    if let Some(account) = &alert.recorded_by {
        let on_device = alert.device.map(|d| format!(" on device {d}")).unwrap_or_default();
        let subject = format!("Slate: incident {incident} recorded by {account}{on_device}");
        let body = format!(
            "{account} recorded an online safety incident that happened{on_device} at {when}.\n\n\
             Incident {incident}: {link}\n\n\
             Sign in to read it and to record what was done.\n",
        );
        return (subject, body);
    }
    if alert.from_block_page {
        let subject = format!(
            "Slate: device {device} asked for a teacher at a blocked page (incident {incident}, low priority)",
        );
        let body = format!(
            "A pupil pressed \"tell my teacher\" on a blocked page on device {device} at {when}.\n\
             Low priority: the device was not held.\n\n\
             Incident {incident}: {link}\n",
        );
        return (subject, body);
    }
    let subject = format!("Slate: device {device} reported (incident {incident})");
    let body = format!(
        "A pupil pressed the report button on device {device} at {when}.\n\
         The screen went dark and the device is held until a member of staff unlocks it.\n\n\
         Incident {incident}: {link}\n\n\
         Sign in to see what was on screen and to record what was done.\n\
         Class teachers: {}/reports lists your classes' new reports to acknowledge.\n",
        public_url.unwrap_or(""),
    );
    (subject, body)
}

/// The webhook's JSON body.
pub fn webhook_body(alert: &Alert, public_url: Option<&str>) -> serde_json::Value {
    let device = alert.device.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    let incident = alert.incident.unwrap_or_default();
    match &alert.about {
        AlertAbout::Report => {}
        AlertAbout::Rule { rule, count, first_at } => {
            return serde_json::json!({
                "kind": "rule",
                "rule": rule,
                "device": alert.device,
                "count": count,
                "first_at": first_at,
                "at": alert.pressed_at,
                "link": rule_link(public_url, rule, alert.device),
                "text": format!("{} on device {device}: {count} in the rule's window", rule_title(rule)),
            });
        }
        AlertAbout::Escalation => {
            return serde_json::json!({
                "kind": "escalation",
                "incident": incident,
                "device": alert.device,
                "pressed_at": alert.pressed_at,
                "link": link(public_url, incident),
                "text": format!("Incident {incident} on device {device} not acknowledged: escalated"),
            });
        }
        AlertAbout::BlockRequest { site, asks } => {
            return serde_json::json!({
                "kind": "block_request",
                "site": site,
                "asks": asks,
                "link": format!("{}/block-requests", public_url.unwrap_or("")),
                "text": format!("Site block requested: {site}"),
            });
        }
    }
    if let Some(account) = &alert.recorded_by {
        return serde_json::json!({
            "kind": "recorded",
            "incident": incident,
            "device": alert.device,
            "happened_at": alert.pressed_at,
            "recorded_by": account,
            "link": link(public_url, incident),
            "text": format!("Incident {incident} recorded by {account}"),
        });
    }
    serde_json::json!({
        "kind": "report",
        "incident": incident,
        "device": alert.device,
        "pressed_at": alert.pressed_at,
        "link": link(public_url, incident),
        "text": format!("Device {device} reported: incident {incident}"),
    })
}

struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
}

/// Sends alerts as configured; with nothing configured it does nothing.
#[derive(Default)]
pub struct Notifier {
    public_url: Option<String>,
    email: Option<Email>,
    webhook: Option<(reqwest::Client, String)>,
}

impl Notifier {
    pub fn from_config(config: &Config) -> Result<Self, NotifyError> {
        let email = config.email.as_ref().map(email_sender).transpose()?;
        let webhook = config
            .webhook
            .as_ref()
            .map(|w| {
                let client = reqwest::Client::builder()
                    .timeout(SEND_TIMEOUT)
                    .no_proxy()
                    .build()
                    .map_err(|e| NotifyError::Webhook(e.to_string()))?;
                Ok::<_, NotifyError>((client, w.url.clone()))
            })
            .transpose()?;
        Ok(Self { public_url: config.public_url.clone(), email, webhook })
    }

    /// Emails the alert; `None` when email is not configured. The error says what failed,
    /// never the message.
    pub async fn send_email(&self, alert: &Alert) -> Option<Result<(), String>> {
        let email = self.email.as_ref()?;
        let (subject, body) = alert_email(alert, self.public_url.as_deref());
        let mut builder = Message::builder().from(email.from.clone()).subject(subject);
        for to in &email.to {
            builder = builder.to(to.clone());
        }
        // Addresses were checked when IT linked the teacher; a bad one is skipped, not fatal.
        for to in alert.also_to.iter().filter_map(|a| a.parse::<lettre::Address>().ok()) {
            builder = builder.to(lettre::message::Mailbox::new(None, to));
        }
        Some(match builder.body(body) {
            Ok(message) => {
                email.transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        })
    }

    /// Posts the alert to the webhook; `None` when no webhook is configured.
    pub async fn send_webhook(&self, alert: &Alert) -> Option<Result<(), String>> {
        let (client, url) = self.webhook.as_ref()?;
        let result =
            client.post(url).json(&webhook_body(alert, self.public_url.as_deref())).send().await;
        Some(match result.map(|r| r.status()) {
            Ok(status) if status.is_success() => Ok(()),
            Ok(status) => Err(format!("refused with HTTP {}", status.as_u16())),
            // reqwest's error can include the URL, which may hold a token: say only the kind.
            Err(error) => Err(format!(
                "failed (timeout: {}, connect: {})",
                error.is_timeout(),
                error.is_connect()
            )),
        })
    }
}

impl crate::alert_outbox::AlertChannels for Notifier {
    async fn email(&self, alert: &Alert) -> Option<Result<(), String>> {
        self.send_email(alert).await
    }

    async fn webhook(&self, alert: &Alert) -> Option<Result<(), String>> {
        self.send_webhook(alert).await
    }
}

fn email_sender(config: &EmailConfig) -> Result<Email, NotifyError> {
    let smtp_err = |e: lettre::transport::smtp::Error| {
        NotifyError::Smtp(config.smtp_host.clone(), e.to_string())
    };
    let builder = match config.security {
        SmtpSecurity::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.smtp_host)
        }
        SmtpSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.smtp_host)
                .map_err(smtp_err)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&config.smtp_host).map_err(smtp_err)?
        }
    };
    let mut builder = builder.port(config.smtp_port).timeout(Some(SEND_TIMEOUT));
    if let (Some(username), Some(path)) = (&config.username, &config.password_file) {
        let password = std::fs::read_to_string(path)
            .map_err(|e| NotifyError::PasswordFile(path.clone(), e))?;
        builder =
            builder.credentials(Credentials::new(username.clone(), password.trim().to_owned()));
    }
    // The addresses were checked when the config was parsed.
    let mailbox = |a: &str| {
        a.parse()
            .map_err(|e: lettre::address::AddressError| NotifyError::Smtp(a.into(), e.to_string()))
    };
    Ok(Email {
        transport: builder.build(),
        from: mailbox(&config.from)?,
        to: config.to.iter().map(|a| mailbox(a)).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            about: AlertAbout::Report,
            incident: Some(7),
            device: Some(12),
            pressed_at: "2026-11-17T10:14:03Z".parse().unwrap(),
            from_block_page: false,
            recorded_by: None,
            also_to: vec![],
        }
    }

    #[test]
    fn a_block_page_report_is_low_priority_and_says_so() {
        let alert = Alert { from_block_page: true, ..alert() };
        let (subject, body) = alert_email(&alert, None);
        assert!(subject.contains("low priority"), "{subject}");
        assert!(body.contains("not held") && body.contains("/incidents/7"), "{body}");
    }

    #[test]
    fn the_email_names_device_time_and_link_only() {
        let (subject, body) = alert_email(&alert(), Some("https://slate.example"));
        assert_eq!(subject, "Slate: device 12 reported (incident 7)");
        assert!(body.contains("device 12 at 10:14:03 GMT on Tue 17 Nov 2026"), "{body}");
        assert!(body.contains("https://slate.example/incidents/7"), "{body}");
        assert!(body.contains("https://slate.example/reports lists your classes'"), "{body}");
        let summer = Alert { pressed_at: "2026-06-23T09:14:03Z".parse().unwrap(), ..alert() };
        let (_, body) = alert_email(&summer, None);
        assert!(body.contains("device 12 at 10:14:03 BST on Tue 23 Jun 2026"), "{body}");
    }

    #[test]
    fn a_recorded_incident_says_who_recorded_it_and_its_device_if_any() {
        let recorded = Alert { recorded_by: Some("j.smith".into()), device: None, ..alert() };
        let (subject, body) = alert_email(&recorded, None);
        assert_eq!(subject, "Slate: incident 7 recorded by j.smith");
        assert!(body.contains("j.smith recorded an online safety incident that happened at 10:14:03 GMT on Tue 17 Nov 2026"), "{body}");
        let on_device = Alert { device: Some(12), ..recorded.clone() };
        assert_eq!(
            alert_email(&on_device, None).0,
            "Slate: incident 7 recorded by j.smith on device 12"
        );
        let hook = webhook_body(&recorded, None);
        assert_eq!(
            (hook["kind"].as_str(), hook["recorded_by"].as_str()),
            (Some("recorded"), Some("j.smith"))
        );
        assert!(hook["device"].is_null());
    }

    #[test]
    fn a_rules_alert_names_the_rule_device_count_and_times_only() {
        let rule = Alert {
            about: AlertAbout::Rule {
                rule: "filter_bypass".into(),
                count: 3,
                first_at: "2026-11-17T10:10:00Z".parse().unwrap(),
            },
            incident: None,
            ..alert()
        };
        let (subject, body) = alert_email(&rule, Some("https://slate.example"));
        assert_eq!(subject, "Slate: Attempts to go around the filter on device 12");
        assert!(
            body.contains("3 events from 10:10:00 GMT on Tue 17 Nov 2026 to 10:14:03 GMT"),
            "{body}"
        );
        assert!(body.contains("https://slate.example/filtering-log?device=12"), "{body}");
        let hook = webhook_body(&rule, None);
        assert_eq!((hook["kind"].as_str(), hook["count"].as_u64()), (Some("rule"), Some(3)));
        assert_eq!(hook["link"], "/filtering-log?device=12");
        let silent = Alert {
            about: AlertAbout::Rule {
                rule: "device_silent".into(),
                count: 1,
                first_at: rule.pressed_at,
            },
            ..rule.clone()
        };
        let (_, body) = alert_email(&silent, None);
        assert!(
            body.contains("not in touch since 10:14:03 GMT on Tue 17 Nov 2026 (1 days)"),
            "{body}"
        );
        assert!(body.contains("Look into it: /devices/12"), "{body}");
    }

    #[test]
    fn an_escalation_says_nobody_acknowledged_it() {
        let escalation = Alert { about: AlertAbout::Escalation, ..alert() };
        let (subject, body) = alert_email(&escalation, None);
        assert_eq!(subject, "Slate: incident 7 on device 12 not acknowledged (escalated)");
        assert!(body.contains("has not been acknowledged") && body.contains("/incidents/7"));
        assert_eq!(webhook_body(&escalation, None)["kind"], "escalation");
    }

    #[test]
    fn the_webhook_body_has_ids_and_a_link() {
        let body = webhook_body(&alert(), None);
        assert_eq!(body["incident"], 7);
        assert_eq!(body["device"], 12);
        assert_eq!(body["link"], "/incidents/7");
        assert_eq!(body["pressed_at"], "2026-11-17T10:14:03Z");
    }

    /// IT gets it too: the site, how many asked and the page, never the incident or device.
    #[test]
    fn a_block_requests_alert_names_the_site_and_count_only() {
        let asked = Alert {
            about: AlertAbout::BlockRequest { site: "example.org".into(), asks: 2 },
            incident: None,
            device: None,
            ..alert()
        };
        let (subject, body) = alert_email(&asked, Some("https://slate.example"));
        assert_eq!(subject, "Slate: site block requested: example.org");
        assert!(body.contains("(2 times so far)"), "{body}");
        assert!(body.contains("https://slate.example/block-requests"), "{body}");
        assert!(!body.contains("incident") && !body.contains("device 12"), "{body}");
        let hook = webhook_body(&asked, None);
        assert_eq!(
            (hook["kind"].as_str(), hook["asks"].as_u64()),
            (Some("block_request"), Some(2))
        );
        assert!(hook.get("incident").is_none() && hook.get("device").is_none());
    }
}
