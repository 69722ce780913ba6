//! The termly filter check (issue 17) on the device: the server's `check_filter` command names
//! test names; each is put to the device's own filter (slate-dns's `check`, the decision a DNS
//! query for it gets under the profile in force) and the answers go back as one
//! `filter_checked` event. Runs beside the daemon's core, never in it: a slow slate-dns must not
//! hold up the report button. Building the event from the answers is pure ([`answer_event`]).

use crate::dns::DnsSocket;
use slate_protocol::device::DeviceCommand;
use slate_protocol::{EventBody, NameVerdict};

/// The event for a check of `command` from slate-dns's answers, one per name asked in order.
/// The first failure stands for all: slate-dns away or refusing answers no name, so the page
/// shows "no answer" rather than a half check. Pure.
pub fn answer_event(
    command: u64,
    answers: Vec<(String, Result<Option<String>, String>)>,
) -> EventBody {
    let mut results = Vec::with_capacity(answers.len());
    for (name, answer) in answers {
        match answer {
            Ok(blocked_by) => results.push(NameVerdict { name, blocked_by }),
            Err(error) => {
                let error: String = error.chars().take(200).collect();
                return EventBody::FilterChecked {
                    command,
                    results: Vec::new(),
                    error: Some(error),
                };
            }
        }
    }
    EventBody::FilterChecked { command, results, error: None }
}

/// Asks slate-dns about each of the command's names, stopping at the first failure.
pub async fn run(dns: &DnsSocket, command: &DeviceCommand) -> EventBody {
    let mut answers = Vec::with_capacity(command.check_names.len());
    for asked in &command.check_names {
        let answer = dns.check(&asked.name).await;
        let failed = answer.is_err();
        answers.push((asked.name.clone(), answer));
        if failed {
            break;
        }
    }
    tracing::info!(command = command.id, names = answers.len(), "filter check answered");
    answer_event(command.id, answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(results: &[(&str, Option<&str>)], error: Option<&str>) -> EventBody {
        EventBody::FilterChecked {
            command: 9,
            results: results
                .iter()
                .map(|(n, b)| NameVerdict { name: n.to_string(), blocked_by: b.map(str::to_owned) })
                .collect(),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn answers_become_one_event() {
        type Answers = Vec<(String, Result<Option<String>, String>)>;
        let ok = |n: &str, b: Option<&str>| (n.to_owned(), Ok(b.map(str::to_owned)));
        let cases: Vec<(&str, Answers, EventBody)> = vec![
            ("nothing asked", vec![], body(&[], None)),
            (
                "blocked and allowed, in order",
                vec![ok("adult.test", Some("adult")), ok("bbc.co.uk", None)],
                body(&[("adult.test", Some("adult")), ("bbc.co.uk", None)], None),
            ),
            (
                "slate-dns away: no half check",
                vec![ok("adult.test", Some("adult")), ("x.test".into(), Err("away".into()))],
                body(&[], Some("away")),
            ),
        ];
        for (what, answers, want) in cases {
            assert_eq!(answer_event(9, answers), want, "{what}");
        }
        let long = answer_event(9, vec![("x.test".into(), Err("e".repeat(500)))]);
        let EventBody::FilterChecked { error: Some(e), .. } = long else { panic!() };
        assert_eq!(e.len(), 200, "an error fits the event's limit");
    }
}
