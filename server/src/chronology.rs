//! A pupil's chronology for the DSL ("has this child reported before?"): their reports (the
//! button and "tell my teacher"), their blocked attempts in harmful categories, their sessions,
//! the agreements they accepted (which text, which version) and the history of their incidents, merged into one list, newest first. Pure: records in, lines
//! out; the page and the CSV are drawn from the same lines.

use crate::session_end::end_label;
use crate::store::{
    AcceptedAgreement, BlockedAttempt, IncidentHistoryLine, IncidentRecord, PupilSession,
};
use crate::uk_time::format_uk_long;
use chrono::{DateTime, Utc};

/// The lists whose blocks go in a pupil's chronology: illegal content, by its publishers' names
/// (IWF, CTIRU) and by category, and the harmful categories seed 004 asks DSLs to watch. Social
/// media, games, malware and DNS-bypass blocks say little about a child's safety, and are on the
/// device's page.
pub const HARMFUL_LISTS: [&str; 8] =
    ["iwf", "ctiru", "child-abuse", "terrorism", "adult", "violence", "drugs", "gambling"];

/// Rows of each kind read for one page (the newest); older ones are in the exports of each kind.
pub const ROWS_PER_KIND: u32 = 500;

/// What happened, in the words a DSL reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Report,
    TellMyTeacher,
    /// An incident a member of staff recorded by hand.
    Recorded,
    Blocked,
    Session,
    History,
    /// An acceptable use agreement accepted at sign-in.
    Agreement,
}

impl Kind {
    pub fn label(&self) -> &'static str {
        match self {
            Kind::Report => "Report button",
            Kind::TellMyTeacher => "Tell my teacher",
            Kind::Recorded => "Recorded by staff",
            Kind::Blocked => "Blocked",
            Kind::Session => "Signed in",
            Kind::History => "Incident record",
            Kind::Agreement => "Agreement accepted",
        }
    }
}

/// One line of the chronology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: DateTime<Utc>,
    pub kind: Kind,
    pub device: Option<u16>,
    /// The incident the line belongs to, for a link.
    pub incident: Option<i64>,
    pub what: String,
}

/// Merges the pupil's records into one list, newest first; at the same moment, an incident's
/// report comes before what was written about it.
pub fn lines(
    incidents: &[IncidentRecord],
    blocked: &[BlockedAttempt],
    sessions: &[PupilSession],
    history: &[IncidentHistoryLine],
    agreements: &[AcceptedAgreement],
) -> Vec<Line> {
    let mut lines = Vec::new();
    for a in agreements {
        let (label, _) = accepted_text(&a.key_stage, &a.text_version, a.school_version);
        lines.push(Line {
            at: a.at,
            kind: Kind::Agreement,
            device: Some(a.device),
            incident: None,
            what: format!("{}: {label} ({})", a.key_stage.to_uppercase(), a.text_version),
        });
    }
    for i in incidents {
        let r = &i.report;
        let kind = match (&r.recorded_by, r.from_block_page) {
            (Some(_), _) => Kind::Recorded,
            (None, true) => Kind::TellMyTeacher,
            (None, false) => Kind::Report,
        };
        let place = match (r.app.as_deref(), r.url.as_deref()) {
            _ if r.recorded_by.is_some() => match &i.details.location {
                Some(place) => format!(" ({place})"),
                None => String::new(),
            },
            (Some(app), Some(url)) => format!(" in {app} at {url}"),
            (Some(app), None) => format!(" in {app}"),
            (None, Some(url)) => format!(" at {url}"),
            (None, None) => String::new(),
        };
        lines.push(Line {
            at: r.pressed_at,
            kind,
            device: r.device,
            incident: Some(i.id),
            what: match &r.recorded_by {
                Some(by) => {
                    format!("Incident {} recorded by {by}{place}: {}", i.id, i.status.label())
                }
                None => format!("Incident {}{place}: {}", i.id, i.status.label()),
            },
        });
    }
    for b in blocked {
        lines.push(Line {
            at: b.at,
            kind: Kind::Blocked,
            device: Some(b.device),
            incident: None,
            what: format!("{} (list {})", b.target, b.list),
        });
    }
    for s in sessions {
        let what = match s.ended_at {
            // An inferred end reads "until at least 10:41, then ..." already.
            Some(end) if s.end_inferred => {
                let label = end_label(&format_uk_long(end), s.end_reason.as_deref(), true);
                format!("U{}", label.strip_prefix('u').unwrap_or(&label))
            }
            Some(end) => format!("Until {}", format_uk_long(end)),
            None => "Still signed in, or the device has not said otherwise".to_owned(),
        };
        lines.push(Line {
            at: s.started_at,
            kind: Kind::Session,
            device: Some(s.device),
            incident: None,
            what,
        });
    }
    for h in history {
        let e = &h.entry;
        let what = match (e.kind.as_str(), e.action.as_deref()) {
            ("action", Some(action)) => format!("action: {}", action.replace('_', " ")),
            ("recorded", _) => "recorded, action taken so far".to_owned(),
            (kind, _) => kind.to_owned(),
        };
        let note = e.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        lines.push(Line {
            at: e.at,
            kind: Kind::History,
            device: None,
            incident: Some(h.incident),
            what: format!("Incident {}, {} by {}{note}", h.incident, what, e.staff),
        });
    }
    // Stable: equal times keep the order above (the report first).
    lines.sort_by_key(|line| std::cmp::Reverse(line.at));
    lines
}

/// Which text an acceptance was of, and where its words are: the school's numbered version, this
/// server's built-in text (the same version name), or a built-in text of other device software
/// (older or newer: its words are in that software, not here). Pure.
pub fn accepted_text(
    key_stage: &str,
    text_version: &str,
    school_version: Option<u32>,
) -> (String, Option<String>) {
    use slate_protocol::kiosk::KeyStage;
    let stage = match key_stage {
        "ks1" => KeyStage::Ks1,
        "ks2" => KeyStage::Ks2,
        _ => return ("an agreement this server does not know".into(), None),
    };
    match school_version {
        Some(n) => (
            format!("the school's text, version {n}"),
            Some(format!("/agreements/{key_stage}/{n}")),
        ),
        None => match slate_protocol::agreement::builtin_language(stage, text_version) {
            Some("en") => ("the built-in text".into(), Some(format!("/agreements/{key_stage}/0"))),
            Some(language) => (format!("the built-in text in {}", language_name(language)), None),
            None => ("a built-in text of other device software".into(), None),
        },
    }
}

/// "Cymraeg" for `cy`: a language's own name.
fn language_name(code: &str) -> &str {
    slate_protocol::kiosk::LANGUAGES.iter().find(|(c, _)| *c == code).map_or(code, |(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{Details, Status};
    use crate::store::{IncidentEntry, ReportRecord};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn incident(id: i64, pressed: &str, from_block_page: bool) -> IncidentRecord {
        IncidentRecord {
            id,
            status: Status::New,
            details: Details::default(),
            created_at: at(pressed),
            updated_at: at(pressed),
            report: ReportRecord {
                id: format!("e-{id}"),
                device: Some(12),
                pressed_at: at(pressed),
                received_at: at(pressed),
                session: None,
                pupil: Some("p-1".into()),
                pupil_name: Some("Amira K.".into()),
                app: Some("browser".into()),
                url: Some("https://example.org/x".into()),
                page_title: None,
                blank_latency_us: None,
                from_block_page,
                recent_names: vec![],
                clock_synchronised: Some(true),
                recorded_by: None,
            },
        }
    }

    #[test]
    fn every_kind_is_merged_newest_first_with_the_report_before_its_record() {
        let incidents =
            [incident(1, "2026-11-17T10:14:00Z", false), incident(2, "2026-11-18T09:00:00Z", true)];
        let blocked = [BlockedAttempt {
            at: at("2026-11-17T10:13:00Z"),
            device: 12,
            target: "bad.example".into(),
            list: "adult".into(),
        }];
        let sessions = [PupilSession {
            device: 12,
            started_at: at("2026-11-17T10:00:00Z"),
            ended_at: Some(at("2026-11-17T10:41:00Z")),
            end_reason: Some("device_restarted".into()),
            end_inferred: true,
        }];
        let history = [IncidentHistoryLine {
            incident: 1,
            entry: IncidentEntry {
                at: at("2026-11-17T10:14:00Z"),
                staff: "a.dsl".into(),
                kind: "action".into(),
                action: Some("app_closed".into()),
                note: Some("closed it".into()),
            },
        }];
        let agreements = [AcceptedAgreement {
            at: at("2026-11-17T10:00:05Z"),
            device: 12,
            key_stage: "ks1".into(),
            text_version: "ks1-0a1b2c3d".into(),
            school_version: Some(2),
        }];
        let lines = lines(&incidents, &blocked, &sessions, &history, &agreements);
        let seen: Vec<(&str, &str)> =
            lines.iter().map(|l| (l.kind.label(), l.what.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("Tell my teacher", "Incident 2 in browser at https://example.org/x: New"),
                ("Report button", "Incident 1 in browser at https://example.org/x: New"),
                ("Incident record", "Incident 1, action: app closed by a.dsl: closed it"),
                ("Blocked", "bad.example (list adult)"),
                ("Agreement accepted", "KS1: the school's text, version 2 (ks1-0a1b2c3d)"),
                (
                    "Signed in",
                    "Until at least Tue 17 Nov 2026, 10:41:00 GMT, then the device restarted (power cut or crash)"
                ),
            ]
        );
        assert_eq!(lines[1].incident, Some(1));
        assert_eq!(lines[3].device, Some(12));
    }

    #[test]
    fn nothing_recorded_is_an_empty_chronology() {
        assert!(lines(&[], &[], &[], &[], &[]).is_empty());
    }

    /// The harmful lists are the device filter's own names for those categories.
    #[test]
    fn harmful_lists_are_the_filters_illegal_and_harmful_categories() {
        use slate_filter::lists::Category;
        let harmful = [
            Category::ChildAbuse,
            Category::Terrorism,
            Category::Adult,
            Category::Violence,
            Category::Drugs,
            Category::Gambling,
        ];
        for name in HARMFUL_LISTS {
            assert!(harmful.contains(&Category::of_list(name)), "{name}");
        }
        for category in harmful {
            assert!(HARMFUL_LISTS.contains(&category.to_string().as_str()), "{category}");
        }
        for other in ["social-media", "games", "malware", "dns-bypass", "school-extra"] {
            assert!(
                !HARMFUL_LISTS.contains(&other) && !harmful.contains(&Category::of_list(other))
            );
        }
    }

    #[test]
    fn an_acceptance_names_the_text_accepted() {
        use slate_protocol::agreement::builtin;
        use slate_protocol::kiosk::KeyStage;
        let ks2 = builtin(KeyStage::Ks2).2;
        let ks2_cy = slate_protocol::agreement::builtin_in(KeyStage::Ks2, "cy").2;
        // (key stage, version name, school's number, label, link)
        type Case<'a> = (&'a str, &'a str, Option<u32>, &'a str, Option<&'a str>);
        let cases: [Case; 6] = [
            (
                "ks1",
                "ks1-0a1b2c3d",
                Some(3),
                "the school's text, version 3",
                Some("/agreements/ks1/3"),
            ),
            ("ks2", &ks2, None, "the built-in text", Some("/agreements/ks2/0")),
            ("ks2", &ks2_cy, None, "the built-in text in Cymraeg", None),
            ("ks1", &ks2, None, "a built-in text of other device software", None),
            ("ks1", "ks1-00000000", None, "a built-in text of other device software", None),
            ("ks3", "ks3-00000000", None, "an agreement this server does not know", None),
        ];
        for (stage, version, number, label, link) in cases {
            let got = accepted_text(stage, version, number);
            assert_eq!((got.0.as_str(), got.1.as_deref()), (label, link), "{stage} {version}");
        }
    }
}
