//! Alerts when a report arrives: email over SMTP and a webhook POST, as configured. What an
//! alert says is pure ([`alert_email`], [`webhook_body`]); sending is at the edge. An alert
//! carries the device, the time and a link, never the pupil's name, the URL or the page title:
//! mail and chat systems are not where safeguarding records live.

use crate::config::{Config, EmailConfig, SmtpSecurity};
use chrono::{DateTime, Utc};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// A new report, as alerts describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub incident: i64,
    /// `None`: an incident recorded by hand that names no device.
    pub device: Option<u16>,
    pub pressed_at: DateTime<Utc>,
    /// "Tell my teacher" on a blocked page: low priority, the device was not held.
    pub from_block_page: bool,
    /// The account that recorded the incident by hand; `None` for a device's report.
    pub recorded_by: Option<String>,
    /// The class teachers' addresses, besides the configured ones.
    pub also_to: Vec<String>,
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

/// Subject and body of the alert email.
pub fn alert_email(alert: &Alert, public_url: Option<&str>) -> (String, String) {
    // UK time, zone named, as every time a person reads.
    let when = alert
        .pressed_at
        .with_timezone(&chrono_tz::Europe::London)
        .format("%H:%M:%S %Z on %a %-d %b %Y");
    let link = link(public_url, alert.incident);
    let device = alert.device.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    if let Some(account) = &alert.recorded_by {
        let on_device = alert.device.map(|d| format!(" on device {d}")).unwrap_or_default();
        let subject =
            format!("Slate: incident {} recorded by {account}{on_device}", alert.incident);
        let body = format!(
            "{account} recorded an online safety incident that happened{on_device} at {when}.\n\n\
             Incident {}: {link}\n\n\
             Sign in to read it and to record what was done.\n",
            alert.incident,
        );
        return (subject, body);
    }
    if alert.from_block_page {
        let subject = format!(
            "Slate: device {device} asked for a teacher at a blocked page (incident {}, low priority)",
            alert.incident
        );
        let body = format!(
            "A pupil pressed \"tell my teacher\" on a blocked page on device {device} at {when}.\n\
             Low priority: the device was not held.\n\n\
             Incident {}: {link}\n",
            alert.incident,
        );
        return (subject, body);
    }
    let subject = format!("Slate: device {device} reported (incident {})", alert.incident);
    let body = format!(
        "A pupil pressed the report button on device {device} at {when}.\n\
         The screen went dark and the device is held until a member of staff unlocks it.\n\n\
         Incident {}: {link}\n\n\
         Sign in to see what was on screen and to record what was done.\n\
         Class teachers: {}/reports lists your classes' new reports to acknowledge.\n",
        alert.incident,
        public_url.unwrap_or(""),
    );
    (subject, body)
}

/// The webhook's JSON body.
pub fn webhook_body(alert: &Alert, public_url: Option<&str>) -> serde_json::Value {
    if let Some(account) = &alert.recorded_by {
        return serde_json::json!({
            "kind": "recorded",
            "incident": alert.incident,
            "device": alert.device,
            "happened_at": alert.pressed_at,
            "recorded_by": account,
            "link": link(public_url, alert.incident),
            "text": format!("Incident {} recorded by {account}", alert.incident),
        });
    }
    let device = alert.device.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    serde_json::json!({
        "kind": "report",
        "incident": alert.incident,
        "device": alert.device,
        "pressed_at": alert.pressed_at,
        "link": link(public_url, alert.incident),
        "text": format!("Device {device} reported: incident {}", alert.incident),
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
            incident: 7,
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
    fn the_webhook_body_has_ids_and_a_link() {
        let body = webhook_body(&alert(), None);
        assert_eq!(body["incident"], 7);
        assert_eq!(body["device"], 12);
        assert_eq!(body["link"], "/incidents/7");
        assert_eq!(body["pressed_at"], "2026-11-17T10:14:03Z");
    }
}
