//! The incident workflow and the incident form's fields, as pure functions: which step may
//! follow which, and what a valid form looks like (seed 002 appendices I to K: date, time,
//! device, who reported, what was seen, action taken, who it was reported to, outcome). No I/O.

use std::fmt;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The report arrived; nobody has said they have seen it.
    New,
    /// A member of staff has seen it and is dealing with it.
    Acknowledged,
    /// An action was recorded; later actions (escalated, then referred) may follow.
    Actioned(Action),
}

/// What was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AppClosed,
    FalseAlarm,
    SiteBlockRequested,
    Escalated,
    Referred,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::AppClosed,
        Action::FalseAlarm,
        Action::SiteBlockRequested,
        Action::Escalated,
        Action::Referred,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::AppClosed => "app_closed",
            Action::FalseAlarm => "false_alarm",
            Action::SiteBlockRequested => "site_block_requested",
            Action::Escalated => "escalated",
            Action::Referred => "referred",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Action::AppClosed => "App closed",
            Action::FalseAlarm => "False alarm",
            Action::SiteBlockRequested => "Site block requested",
            Action::Escalated => "Escalated",
            Action::Referred => "Referred",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == text)
    }

    /// Whether it closes the incident (no further action until a DSL reopens it, and retention
    /// may later purge it): such a step needs a confirmation and a note.
    pub fn closes(self) -> bool {
        self == Action::FalseAlarm
    }
}

/// The step the action list starts on: the next one along the way a report usually goes
/// (app closed, then escalated, then referred); never one that closes the incident, and
/// `None` when there is no natural next step (the DSL chooses). Pure.
pub fn natural_next(current: Status) -> Option<Action> {
    match current {
        Status::New => None,
        Status::Acknowledged => Some(Action::AppClosed),
        Status::Actioned(Action::AppClosed | Action::SiteBlockRequested) => Some(Action::Escalated),
        Status::Actioned(Action::Escalated) => Some(Action::Referred),
        Status::Actioned(Action::Referred | Action::FalseAlarm) => None,
    }
}

/// The actions the list offers after `current`: every one but the action already recorded.
pub fn offered_actions(current: Status) -> Vec<Action> {
    Action::ALL.into_iter().filter(|a| current != Status::Actioned(*a)).collect()
}

/// Checks a step's form: an action that closes the incident needs the confirmation ticked and a
/// note saying why. Pure; the error is for the person at the form.
pub fn check_step_form(action: Action, confirmed: bool, note: Option<&str>) -> Result<(), String> {
    if !action.closes() {
        return Ok(());
    }
    match (confirmed, note) {
        (true, Some(_)) => Ok(()),
        (false, _) => {
            Err(format!("{} closes the incident: tick \"I am sure\" to confirm.", action.label()))
        }
        (true, None) => Err(format!(
            "{} closes the incident: say why in the note, for the record.",
            action.label()
        )),
    }
}

impl Status {
    /// As stored: `status` and `action` columns.
    pub fn to_columns(self) -> (&'static str, Option<&'static str>) {
        match self {
            Status::New => ("new", None),
            Status::Acknowledged => ("acknowledged", None),
            Status::Actioned(a) => ("actioned", Some(a.name())),
        }
    }

    pub fn from_columns(status: &str, action: Option<&str>) -> Option<Status> {
        match (status, action) {
            ("new", None) => Some(Status::New),
            ("acknowledged", None) => Some(Status::Acknowledged),
            ("actioned", Some(a)) => Action::parse(a).map(Status::Actioned),
            _ => None,
        }
    }

    pub fn label(self) -> String {
        match self {
            Status::New => "New".into(),
            Status::Acknowledged => "Acknowledged".into(),
            Status::Actioned(a) => a.label().into(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A step someone asks for. Only staff move an incident: what a device says (an unlock and its
/// choice) is a note on it, never a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    Act(Action),
    /// Back to acknowledged from any action, a false alarm included: the DSL looks again.
    Reopen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("this incident has already been acknowledged")]
    AlreadyAcknowledged,
    #[error("acknowledge the incident before recording an action")]
    NotAcknowledged,
    #[error("it was recorded as a false alarm; reopen it to record another action")]
    ClosedAsFalseAlarm,
    #[error("only an incident with an action recorded can be reopened")]
    NotClosed,
    #[error("that action is already recorded")]
    SameAction,
}

/// The status after `step`, or why it cannot be taken.
pub fn next_status(current: Status, step: Step) -> Result<Status, WorkflowError> {
    match (current, step) {
        (Status::New, Step::Acknowledge) => Ok(Status::Acknowledged),
        (_, Step::Acknowledge) => Err(WorkflowError::AlreadyAcknowledged),
        (Status::New, Step::Act(_)) => Err(WorkflowError::NotAcknowledged),
        (Status::Acknowledged, Step::Act(a)) => Ok(Status::Actioned(a)),
        (Status::Actioned(Action::FalseAlarm), Step::Act(_)) => {
            Err(WorkflowError::ClosedAsFalseAlarm)
        }
        (Status::Actioned(done), Step::Act(a)) if done == a => Err(WorkflowError::SameAction),
        (Status::Actioned(_), Step::Act(a)) => Ok(Status::Actioned(a)),
        (Status::Actioned(_), Step::Reopen) => Ok(Status::Acknowledged),
        (Status::New | Status::Acknowledged, Step::Reopen) => Err(WorkflowError::NotClosed),
    }
}

/// Kinds of concern, for the record and the governors' counts (seed 004's list, shortened to
/// what a primary pupil's report button can meet).
pub const CATEGORIES: [(&str, &str); 8] = [
    ("upsetting_content", "Upsetting or frightening content"),
    ("sexual_content", "Sexual content"),
    ("violent_content", "Violent content"),
    ("hate_or_extremism", "Hate or extremism"),
    ("contact", "Contact from someone unknown"),
    ("bullying", "Bullying"),
    ("accidental", "Accidental / nothing harmful"),
    ("other", "Other"),
];

pub fn category_label(name: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// Longest free-text field on the form, in characters.
pub const MAX_FIELD_CHARS: usize = 2000;

/// The staff-completed part of the incident form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub category: Option<String>,
    /// Where it happened: room, lesson.
    pub location: Option<String>,
    /// What was seen, in words (never a picture).
    pub description: Option<String>,
    /// Who was involved, as the school records it (first name and initial).
    pub involved: Option<String>,
    /// Who it was reported to: headteacher, parents, police, CEOP, local authority.
    pub reported_to: Option<String>,
    pub outcome: Option<String>,
}

/// Checks the form's fields, naming the first bad one. Empty fields become `None`.
pub fn check_details(
    category: &str,
    location: &str,
    description: &str,
    involved: &str,
    reported_to: &str,
    outcome: &str,
) -> Result<Details, String> {
    let category = category.trim();
    let category = if category.is_empty() {
        None
    } else if category_label(category).is_some() {
        Some(category.to_owned())
    } else {
        return Err(format!("category {category:?} is not one of the listed kinds"));
    };
    Ok(Details {
        category,
        location: check_text("Where", location, 200)?,
        description: check_text("What was seen", description, MAX_FIELD_CHARS)?,
        involved: check_text("Who was involved", involved, 500)?,
        reported_to: check_text("Reported to", reported_to, 500)?,
        outcome: check_text("Outcome", outcome, MAX_FIELD_CHARS)?,
    })
}

/// Trims a free-text field: `None` when empty; refused when over `limit` characters or holding
/// control characters other than line breaks and tabs.
pub fn check_text(field: &str, value: &str, limit: usize) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let chars = value.chars().count();
    if chars > limit {
        return Err(format!("{field} is {chars} characters, over the limit of {limit}"));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_starts_on_the_next_natural_step_and_never_on_a_closing_one() {
        let cases = [
            (Status::New, None),
            (Status::Acknowledged, Some(Action::AppClosed)),
            (Status::Actioned(Action::AppClosed), Some(Action::Escalated)),
            (Status::Actioned(Action::SiteBlockRequested), Some(Action::Escalated)),
            (Status::Actioned(Action::Escalated), Some(Action::Referred)),
            (Status::Actioned(Action::Referred), None),
            (Status::Actioned(Action::FalseAlarm), None),
        ];
        for (status, next) in cases {
            assert_eq!(natural_next(status), next, "{status}");
            if let Some(next) = next {
                assert!(!next.closes() && offered_actions(status).contains(&next), "{status}");
                assert_eq!(next_status(status, Step::Act(next)), Ok(Status::Actioned(next)));
            }
        }
        let after_referred = offered_actions(Status::Actioned(Action::Referred));
        assert!(!after_referred.contains(&Action::Referred) && after_referred.len() == 4);
    }

    #[test]
    fn a_closing_step_needs_the_confirmation_and_a_note() {
        let note = Some("the pupil meant another page");
        assert_eq!(check_step_form(Action::FalseAlarm, true, note), Ok(()));
        let unconfirmed = check_step_form(Action::FalseAlarm, false, note).unwrap_err();
        assert!(unconfirmed.contains("I am sure"), "{unconfirmed}");
        let silent = check_step_form(Action::FalseAlarm, true, None).unwrap_err();
        assert!(silent.contains("say why"), "{silent}");
        for action in Action::ALL.into_iter().filter(|a| !a.closes()) {
            assert_eq!(check_step_form(action, false, None), Ok(()), "{}", action.name());
        }
    }
    use Action::*;

    #[test]
    fn the_workflow_goes_new_acknowledged_actioned() {
        let cases = [
            (Status::New, Step::Acknowledge, Ok(Status::Acknowledged)),
            (Status::New, Step::Act(AppClosed), Err(WorkflowError::NotAcknowledged)),
            (Status::Acknowledged, Step::Acknowledge, Err(WorkflowError::AlreadyAcknowledged)),
            (Status::Acknowledged, Step::Act(AppClosed), Ok(Status::Actioned(AppClosed))),
            (Status::Acknowledged, Step::Act(FalseAlarm), Ok(Status::Actioned(FalseAlarm))),
            (Status::Actioned(Escalated), Step::Act(Referred), Ok(Status::Actioned(Referred))),
            (
                Status::Actioned(AppClosed),
                Step::Act(SiteBlockRequested),
                Ok(Status::Actioned(SiteBlockRequested)),
            ),
            (Status::Actioned(Escalated), Step::Act(Escalated), Err(WorkflowError::SameAction)),
            (
                Status::Actioned(FalseAlarm),
                Step::Act(Escalated),
                Err(WorkflowError::ClosedAsFalseAlarm),
            ),
            (
                Status::Actioned(Referred),
                Step::Acknowledge,
                Err(WorkflowError::AlreadyAcknowledged),
            ),
            (Status::Actioned(FalseAlarm), Step::Reopen, Ok(Status::Acknowledged)),
            (Status::Actioned(Referred), Step::Reopen, Ok(Status::Acknowledged)),
            (Status::Acknowledged, Step::Reopen, Err(WorkflowError::NotClosed)),
            (Status::New, Step::Reopen, Err(WorkflowError::NotClosed)),
        ];
        for (current, step, expected) in cases {
            assert_eq!(next_status(current, step), expected, "{current:?} {step:?}");
        }
    }

    #[test]
    fn statuses_round_trip_through_columns() {
        let mut all = vec![Status::New, Status::Acknowledged];
        all.extend(Action::ALL.map(Status::Actioned));
        for status in all {
            let (s, a) = status.to_columns();
            assert_eq!(Status::from_columns(s, a), Some(status));
        }
        assert_eq!(Status::from_columns("actioned", None), None);
        assert_eq!(Status::from_columns("new", Some("referred")), None);
    }

    #[test]
    fn form_fields_are_checked_by_name() {
        let ok = check_details("bullying", " Room 4 ", "", "Amira K.", "Head", "").unwrap();
        assert_eq!(ok.category.as_deref(), Some("bullying"));
        assert_eq!(ok.location.as_deref(), Some("Room 4"));
        assert_eq!(ok.description, None);
        let cases = [
            (("nonsense", "", "", "", ""), "category"),
            (("", &"x".repeat(201) as &str, "", "", ""), "Where is 201 characters"),
            (("", "", "a\u{7}b", "", ""), "What was seen contains control"),
        ];
        for ((category, location, description, involved, outcome), expected) in cases {
            let err =
                check_details(category, location, description, involved, "", outcome).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(check_text("Notes", "line one\nline two", 100).unwrap().is_some());
    }
}
