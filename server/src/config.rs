//! The server's config file (TOML): alerts by email and webhook, the retention schedule, the
//! staff key.
//! [`parse_config`] is pure and checks every field, naming each bad one; [`load`] reads the file
//! and puts its path in front of every message. An absent `--config` means the defaults.
//!
//! ```toml
//! public_url = "https://slate.school.example:8443"  # for links in alerts
//! retention_days = 1095    # the old single period (see `retention`), still read
//! staff_key_login = false   # the data directory's staff-key file as a login link: off unless
//!                           # turned on (`slate-server staff recover` is the way back in)
//!
//! [email]
//! smtp_host = "smtp.school.example"
//! smtp_port = 587
//! security = "starttls"          # "starttls", "tls", or "none" (loopback hosts only)
//! username = "slate"             # optional
//! password_file = "/etc/slate-server/smtp-password"  # optional, read at start
//! from = "Slate <slate@school.example>"
//! to = ["dsl@school.example"]
//!
//! [webhook]
//! url = "https://chat.school.example/hooks/abc"
//!
//! [retention]               # days per record type (`retention::RecordType::key`)
//! sessions = 365
//! filtering_log = 365
//!
//! [languages]               # the pupils' screens (`slate_protocol::kiosk::LANGUAGES`): the
//!                           # defaults until staff first save the languages page, which wins
//! school = "cy"             # the whole school; absent is English
//! classes = { Oak = "en" }  # classes that differ, by class name
//! ```

pub use crate::device_policy::Languages;
use crate::retention::{RecordType, Schedule};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub public_url: Option<String>,
    /// How long each record type is kept: the defaults, the old `retention_days` mapped onto
    /// the types it covered, then each period the `[retention]` table sets.
    pub retention: Schedule,
    pub staff_key_login: bool,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
    /// The language of the pupils' screens, for the kiosk policy.
    pub languages: Languages,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    /// Plain SMTP: only to a relay on this machine.
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("security", &self.security)
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
}

impl std::fmt::Debug for WebhookConfig {
    // A webhook URL is often its own secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookConfig(<url hidden>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}: {1}")]
    Syntax(PathBuf, String),
    #[error("{}: {}", .0.display(), .1.join("; "))]
    Invalid(PathBuf, Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    public_url: Option<String>,
    retention_days: Option<i64>,
    staff_key_login: Option<bool>,
    email: Option<RawEmail>,
    webhook: Option<RawWebhook>,
    /// Days per record type, by key; unknown keys are refused by name in `parse_config`.
    retention: Option<BTreeMap<String, toml::Value>>,
    languages: Option<RawLanguages>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanguages {
    school: Option<String>,
    #[serde(default)]
    classes: BTreeMap<String, String>,
}

/// A language of the pupils' screens: one this release has screens in.
fn check_language(field: &str, code: &str, errors: &mut Vec<String>) {
    use slate_protocol::kiosk::LANGUAGES;
    if !LANGUAGES.iter().any(|(known, _)| *known == code) {
        let known: Vec<String> =
            LANGUAGES.iter().map(|(code, name)| format!("\"{code}\" ({name})")).collect();
        errors.push(format!("`{field}`: {code:?} is not one of {}", known.join(", ")));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp_host: String,
    smtp_port: Option<i64>,
    security: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    from: String,
    to: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a URL is http(s) with a host; plain http only to loopback.
fn check_url(field: &str, url: &str, errors: &mut Vec<String>) {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        Some((rest, true))
    } else {
        url.strip_prefix("http://").map(|rest| (rest, false))
    };
    let Some((rest, tls)) = rest else {
        errors.push(format!("`{field}`: must start with https:// (or http:// to this machine)"));
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => ("", None),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        errors.push(format!("`{field}`: the port is not a number"));
    }
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        errors.push(format!("`{field}`: {url:?} is not a URL"));
    } else if !tls && !is_loopback_host(host) {
        errors.push(format!(
            "`{field}`: plain http:// is only allowed to this machine; use https://"
        ));
    }
}

fn check_mailbox(field: &str, address: &str, errors: &mut Vec<String>) {
    if address.parse::<lettre::message::Mailbox>().is_err() {
        errors.push(format!("`{field}`: {address:?} is not an email address"));
    }
}

/// Parses and checks a config file's text. Every bad field is named; none is guessed.
pub fn parse_config(text: &str) -> Result<Config, Vec<String>> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| vec![e.to_string().trim().replace('\n', " ")])?;
    let mut errors = Vec::new();
    let mut config = Config::default();
    if let Some(url) = raw.public_url {
        check_url("public_url", &url, &mut errors);
        config.public_url = Some(url.trim_end_matches('/').to_owned());
    }
    if let Some(days) = raw.retention_days {
        match u32::try_from(days) {
            Ok(days) if (30..=3650).contains(&days) => {
                config.retention = Schedule::from_single_period(days)
            }
            _ => errors.push(format!("`retention_days`: {days} is not from 30 to 3650")),
        }
    }
    for (key, value) in raw.retention.unwrap_or_default() {
        let field = format!("retention.{key}");
        let Some(record) = RecordType::ALL.into_iter().find(|t| t.key() == key) else {
            let keys: Vec<&str> = RecordType::ALL.iter().map(|t| t.key()).collect();
            errors.push(format!("`{field}`: not a record type; they are {}", keys.join(", ")));
            continue;
        };
        match value.as_integer() {
            Some(days) => {
                if let Err(problem) = config.retention.set(record, days) {
                    errors.push(format!("`{field}`: {problem}"));
                }
            }
            None => errors.push(format!("`{field}`: {value} is not a whole number of days")),
        }
    }
    if let Some(login) = raw.staff_key_login {
        config.staff_key_login = login;
    }
    if let Some(email) = raw.email {
        let security = match email.security.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            "none" => SmtpSecurity::None,
            other => {
                errors.push(format!(
                    "`email.security`: {other:?} is not \"starttls\", \"tls\" or \"none\""
                ));
                SmtpSecurity::StartTls
            }
        };
        if email.smtp_host.trim().is_empty() || email.smtp_host.contains(char::is_whitespace) {
            errors.push(format!("`email.smtp_host`: {:?} is not a host name", email.smtp_host));
        } else if security == SmtpSecurity::None && !is_loopback_host(&email.smtp_host) {
            errors.push("`email.security`: \"none\" (unencrypted) is only allowed to a relay on this machine".into());
        }
        let default_port = if security == SmtpSecurity::Tls { 465 } else { 587 };
        let smtp_port = match email.smtp_port.map(u16::try_from) {
            None => default_port,
            Some(Ok(port)) if port > 0 => port,
            Some(_) => {
                errors.push(format!(
                    "`email.smtp_port`: {} is not a port",
                    email.smtp_port.unwrap_or(0)
                ));
                default_port
            }
        };
        check_mailbox("email.from", &email.from, &mut errors);
        if email.to.is_empty() {
            errors.push("`email.to`: give at least one address".into());
        }
        for (i, to) in email.to.iter().enumerate() {
            check_mailbox(&format!("email.to[{i}]"), to, &mut errors);
        }
        if email.password_file.is_some() != email.username.is_some() {
            errors.push("`email.username` and `email.password_file` go together".into());
        }
        config.email = Some(EmailConfig {
            smtp_host: email.smtp_host,
            smtp_port,
            security,
            username: email.username,
            password_file: email.password_file,
            from: email.from,
            to: email.to,
        });
    }
    if let Some(webhook) = raw.webhook {
        check_url("webhook.url", &webhook.url, &mut errors);
        config.webhook = Some(WebhookConfig { url: webhook.url });
    }
    if let Some(languages) = raw.languages {
        if let Some(school) = &languages.school {
            check_language("languages.school", school, &mut errors);
        }
        for (class, code) in &languages.classes {
            check_language(&format!("languages.classes.{class}"), code, &mut errors);
        }
        config.languages = Languages::normalised(languages.school, languages.classes);
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// Reads and checks the config file at `path`, naming the file in every error.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read(path.to_owned(), e.to_string()))?;
    parse_config(&text).map_err(|errors| {
        if errors.len() == 1 && !errors[0].starts_with('`') {
            ConfigError::Syntax(path.to_owned(), errors[0].clone())
        } else {
            ConfigError::Invalid(path.to_owned(), errors)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_the_ones_the_screens_have_and_a_class_only_where_it_differs() {
        let config = parse_config(
            "[languages]\nschool = \"cy\"\nclasses = { Oak = \"en\", Rowan = \"cy\" }\n",
        )
        .unwrap();
        let want = Languages {
            school: Some("cy".into()),
            classes: [("Oak".to_owned(), "en".to_owned())].into(),
        };
        assert_eq!(config.languages, want);
        let english = parse_config("[languages]\nschool = \"en\"\nclasses = { Oak = \"cy\" }\n");
        let want =
            Languages { school: None, classes: [("Oak".to_owned(), "cy".to_owned())].into() };
        assert_eq!(english.unwrap().languages, want);
        let errors = parse_config("[languages]\nschool = \"Welsh\"\nclasses = { Oak = \"fr\" }\n")
            .unwrap_err();
        assert!(errors[0].starts_with("`languages.school`: \"Welsh\" is not one of"), "{errors:?}");
        assert!(errors[1].starts_with("`languages.classes.Oak`: \"fr\""), "{errors:?}");
        assert!(parse_config("[languages]\ndefault = \"cy\"\n").is_err(), "unknown field");
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(parse_config(""), Ok(Config::default()));
    }

    #[test]
    fn a_full_file_parses_to_the_whole_struct() {
        let text = r#"
            public_url = "https://slate.school.example:8443/"
            retention_days = 400
            staff_key_login = true
            [email]
            smtp_host = "127.0.0.1"
            smtp_port = 2525
            security = "none"
            from = "Slate <slate@school.example>"
            to = ["dsl@school.example", "deputy@school.example"]
            [webhook]
            url = "http://127.0.0.1:9000/hook"
            [retention]
            sessions = 200
            incidents = 10000
        "#;
        let mut retention = Schedule::from_single_period(400);
        retention.set(RecordType::Sessions, 200).unwrap();
        retention.set(RecordType::Incidents, 10_000).unwrap();
        let expected = Config {
            public_url: Some("https://slate.school.example:8443".into()),
            retention,
            staff_key_login: true,
            email: Some(EmailConfig {
                smtp_host: "127.0.0.1".into(),
                smtp_port: 2525,
                security: SmtpSecurity::None,
                username: None,
                password_file: None,
                from: "Slate <slate@school.example>".into(),
                to: vec!["dsl@school.example".into(), "deputy@school.example".into()],
            }),
            webhook: Some(WebhookConfig { url: "http://127.0.0.1:9000/hook".into() }),
            languages: Languages::default(),
        };
        assert_eq!(parse_config(text), Ok(expected));
    }

    #[test]
    fn each_bad_field_is_named() {
        let text = r#"
            public_url = "ftp://x"
            retention_days = 5
            [email]
            smtp_host = "smtp.example.org"
            security = "none"
            from = "not an address"
            to = ["ok@example.org", "bad"]
            username = "u"
            [webhook]
            url = "http://example.org/hook"
            [retention]
            sessions = 0
            incidents = 365
            filtering_log = "a year"
            everything = 30
        "#;
        let errors = parse_config(text).unwrap_err();
        for field in [
            "public_url",
            "retention_days",
            "email.security",
            "email.from",
            "email.to[1]",
            "email.username",
            "webhook.url",
            "retention.sessions",
            "retention.incidents",
            "retention.filtering_log",
            "retention.everything",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(&format!("`{field}`"))),
                "{field}: {errors:?}"
            );
        }
        assert_eq!(errors.len(), 11, "{errors:?}");
        let sessions = errors.iter().find(|e| e.starts_with("`retention.sessions`")).unwrap();
        assert!(sessions.contains("0 days is shorter than the minimum, 30 days"), "{sessions}");
        let unknown = parse_config("retention = 5").unwrap_err();
        assert!(unknown[0].contains("retention"), "{unknown:?}");
    }

    /// The Debian package's conffile: the defaults as shipped, and every setting in it valid when
    /// its `#` is taken off (setting lines are `#key`, explanations `# text`).
    #[test]
    fn the_packaged_example_gives_the_defaults_and_each_setting_parses() {
        let shipped = include_str!("../debian/slate-server.toml");
        assert_eq!(parse_config(shipped), Ok(Config::default()));
        let uncommented: String = shipped
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(setting) if !setting.starts_with(' ') && !setting.is_empty() => setting,
                _ => line,
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let config = parse_config(&uncommented).expect("every setting in the example is valid");
        assert!(config.email.is_some() && config.webhook.is_some(), "{config:?}");
        assert_eq!(config.retention, Schedule::default(), "the example's periods are the defaults");
        assert_eq!(config.languages.school.as_deref(), Some("cy"), "{config:?}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slate-server.toml");
        std::fs::write(&path, "retention_days = 1").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("slate-server.toml") && err.contains("`retention_days`"), "{err}");
        std::fs::write(&path, "retention_days = [").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("slate-server.toml"));
        assert!(load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string()
            .contains("missing.toml"));
    }
}
