//! slate-dns's own refusals as security breaches (issue 17, seed 004: "if a security breach
//! occurs, SLT are alerted with immediate effect"). slated checks a policy before it writes it,
//! so when slate-dns refuses the `filter.json` or a list file on the card (a bad signature or
//! digest, the wrong kind of document, an older policy put back, a malformed one), the file was
//! changed after slated wrote it: a `security_breach` event of the case
//! [`Breach::FilterRefused`], sent to slated's control socket ([`crate::notify::send_breaches`]),
//! which spools it like its own.
//!
//! Filed once: a refusal is filed when first seen, not again at each reload (slated asks for one
//! after every fetch, SIGHUP too) until a policy loads with every list good ([`Filed`]). A file
//! that is only missing or unreadable (first boot, before slated fetched a policy) is not a
//! breach. The memory is slate-dns's own: a restart files a refusal still there once more.
//!
//! Pure: [`outcome_of`] and [`Filed`]; [`ReportingFiles`] is the shell around
//! [`Files`](crate::source::Files).

use crate::policy::PolicyError;
use crate::server::FilterHandle;
use crate::socket::Reload;
use crate::source::{Files, ListRefused, ReloadError, Reloaded};
use slate_protocol::{Breach, PolicyPart, PolicyRefusal, ProtocolError};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What one load of the policy and lists says about breaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The policy and every list loaded: refusals are forgotten.
    Good,
    /// These were refused for a reason only tampering explains.
    Refused(Vec<Breach>),
    /// Not loaded, but not a breach (a missing file, a version this build does not read).
    Other,
}

fn refused(part: PolicyPart, list: Option<String>, reason: PolicyRefusal) -> Breach {
    Breach::FilterRefused { part, list, reason }
}

/// The breach a policy error is, if it is one. Pure.
pub fn policy_breach(error: &PolicyError) -> Option<Breach> {
    let reason = match error {
        // A signature that does not verify, or a signed document of another kind.
        PolicyError::Bundle(ProtocolError::InvalidField { .. }) => PolicyRefusal::Signature,
        PolicyError::Bundle(_) | PolicyError::Malformed(_) | PolicyError::Invalid { .. } => {
            PolicyRefusal::Malformed
        }
        PolicyError::Older { .. } => PolicyRefusal::Older,
        // Signed by the school server, only newer than this build: an update, not tampering.
        PolicyError::UnsupportedVersion(_) => return None,
    };
    Some(refused(PolicyPart::Filter, None, reason))
}

/// What a load's result says. Pure.
pub fn outcome_of(result: &Result<Reloaded, ReloadError>) -> Outcome {
    match result {
        Ok(report) if report.refused.is_empty() => Outcome::Good,
        Ok(report) => {
            let breaches: Vec<Breach> = report
                .refused
                .iter()
                .filter(|(_, why)| matches!(why, ListRefused::Size { .. } | ListRefused::Hash))
                .map(|(name, _)| {
                    let name = (name.len() <= 64).then(|| name.clone());
                    refused(PolicyPart::List, name, PolicyRefusal::Digest)
                })
                .collect();
            if breaches.is_empty() {
                Outcome::Other
            } else {
                Outcome::Refused(breaches)
            }
        }
        Err(ReloadError::Policy(error)) => match policy_breach(error) {
            Some(breach) => Outcome::Refused(vec![breach]),
            None => Outcome::Other,
        },
        Err(ReloadError::Read { .. }) => Outcome::Other,
    }
}

/// The refusals filed since the last good load.
#[derive(Debug, Default)]
pub struct Filed {
    filed: Vec<Breach>,
}

impl Filed {
    /// The breaches of `outcome` to file now: those not filed since the last good load. Pure.
    pub fn to_file(&mut self, outcome: Outcome) -> Vec<Breach> {
        match outcome {
            Outcome::Good => {
                self.filed.clear();
                Vec::new()
            }
            Outcome::Other => Vec::new(),
            Outcome::Refused(breaches) => {
                let mut new = Vec::new();
                for breach in breaches {
                    if !self.filed.contains(&breach) {
                        self.filed.push(breach.clone());
                        new.push(breach);
                    }
                }
                new
            }
        }
    }
}

/// [`Files`] that also hands each new refusal to `breaches` (for
/// [`crate::notify::send_breaches`]). A full queue drops the breach and says so: a reload
/// never waits for slated.
pub struct ReportingFiles {
    pub files: Arc<Files>,
    filed: Mutex<Filed>,
    breaches: mpsc::Sender<Breach>,
}

impl ReportingFiles {
    pub fn new(files: Arc<Files>, breaches: mpsc::Sender<Breach>) -> Self {
        Self { files, filed: Mutex::new(Filed::default()), breaches }
    }

    /// Notes a load's result: files what is new.
    pub fn note(&self, result: &Result<Reloaded, ReloadError>) {
        let new = self.filed.lock().unwrap_or_else(|e| e.into_inner()).to_file(outcome_of(result));
        for breach in new {
            tracing::error!(
                what = breach.what(),
                "policy or list on the card refused: a security breach for the server"
            );
            if self.breaches.try_send(breach).is_err() {
                tracing::error!("the security breach queue is full; this refusal is not filed");
            }
        }
    }
}

impl Reload for ReportingFiles {
    fn reload(&self, handle: &FilterHandle) -> Result<(), String> {
        let result = Files::reload(&self.files, handle);
        self.note(&result);
        crate::socket::reload_answer(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn report(refused: Vec<(&str, ListRefused)>) -> Result<Reloaded, ReloadError> {
        Ok(Reloaded {
            issued_at: at(0),
            loaded: vec![],
            refused: refused.into_iter().map(|(n, w)| (n.to_owned(), w)).collect(),
            kept: vec![],
        })
    }

    fn policy(error: PolicyError) -> Result<Reloaded, ReloadError> {
        Err(ReloadError::Policy(error))
    }

    fn filter(reason: PolicyRefusal) -> Breach {
        refused(PolicyPart::Filter, None, reason)
    }

    fn list(name: &str) -> Breach {
        refused(PolicyPart::List, Some(name.into()), PolicyRefusal::Digest)
    }

    #[test]
    fn which_loads_are_breaches() {
        let signature = ProtocolError::InvalidField {
            field: "signature".into(),
            reason: "does not match the school server's key".into(),
        };
        let missing = ReloadError::Read {
            path: "/nowhere".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let cases = [
            ("all good", report(vec![]), Outcome::Good),
            (
                "bad signature",
                policy(PolicyError::Bundle(signature)),
                Outcome::Refused(vec![filter(PolicyRefusal::Signature)]),
            ),
            (
                "bundle not JSON",
                policy(PolicyError::Bundle(ProtocolError::Malformed("x".into()))),
                Outcome::Refused(vec![filter(PolicyRefusal::Malformed)]),
            ),
            (
                "payload not JSON",
                policy(PolicyError::Malformed("x".into())),
                Outcome::Refused(vec![filter(PolicyRefusal::Malformed)]),
            ),
            (
                "an older policy put back",
                policy(PolicyError::Older { offered: at(0), current: at(1) }),
                Outcome::Refused(vec![filter(PolicyRefusal::Older)]),
            ),
            ("a newer version", policy(PolicyError::UnsupportedVersion(9)), Outcome::Other),
            ("no file yet", Err(missing), Outcome::Other),
            (
                "a list changed",
                report(vec![
                    ("adult", ListRefused::Hash),
                    ("iwf", ListRefused::Size { expected: 1, actual: 2 }),
                ]),
                Outcome::Refused(vec![list("adult"), list("iwf")]),
            ),
            (
                "a list missing",
                report(vec![("adult", ListRefused::Unreadable("gone".into()))]),
                Outcome::Other,
            ),
            (
                "one missing, one changed",
                report(vec![
                    ("a", ListRefused::Unreadable("gone".into())),
                    ("b", ListRefused::Hash),
                ]),
                Outcome::Refused(vec![list("b")]),
            ),
            (
                "a long list name is left out",
                report(vec![(&"x".repeat(65), ListRefused::Hash)]),
                Outcome::Refused(vec![refused(PolicyPart::List, None, PolicyRefusal::Digest)]),
            ),
        ];
        for (what, result, expected) in cases {
            assert_eq!(outcome_of(&result), expected, "{what}");
        }
    }

    #[test]
    fn each_refusal_is_filed_once_until_a_good_load() {
        let sig = || filter(PolicyRefusal::Signature);
        let refused = |b: Vec<Breach>| Outcome::Refused(b);
        let mut filed = Filed::default();
        // (outcome, filed now)
        let steps = [
            (refused(vec![sig()]), vec![sig()]),
            (refused(vec![sig()]), vec![]),
            (Outcome::Other, vec![]),
            (refused(vec![sig()]), vec![]),
            (refused(vec![sig(), list("adult")]), vec![list("adult")]),
            (refused(vec![filter(PolicyRefusal::Older)]), vec![filter(PolicyRefusal::Older)]),
            (Outcome::Good, vec![]),
            (refused(vec![sig()]), vec![sig()]),
        ];
        for (i, (outcome, expected)) in steps.into_iter().enumerate() {
            assert_eq!(filed.to_file(outcome), expected, "step {i}");
        }
    }
}
