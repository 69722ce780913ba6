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

/// The "Record an incident" form as typed (seed 002 appendices I and J), for an incident a
/// member of staff saw or was told of: no report button was pressed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct RecordFields {
    /// When it happened: a `datetime-local` value, UK time.
    #[serde(default)]
    pub happened_at: String,
    /// The device's number, if it happened on a numbered device.
    #[serde(default)]
    pub device: String,
    /// Where, in words: "iPad in Year 5", "home".
    #[serde(default)]
    pub place: String,
    /// The pupil's pseudonymous id, chosen from the roster.
    #[serde(default)]
    pub pupil: String,
    /// Anyone else involved, as the school records them.
    #[serde(default)]
    pub others: String,
    /// What was seen or happened.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    /// What has been done so far.
    #[serde(default)]
    pub action_taken: String,
}

/// A recorded incident's fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedIncident {
    pub happened_at: chrono::DateTime<chrono::Utc>,
    pub device: Option<u16>,
    pub place: Option<String>,
    pub pupil: slate_protocol::PupilId,
    pub others: Option<String>,
    pub description: String,
    pub category: String,
    pub action_taken: Option<String>,
}

/// One field's problem, shown beside it: `field` is the form field's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

/// Checks the whole "Record an incident" form at once, so every problem is shown together,
/// each beside its field. `now` bounds the time: an incident cannot have happened later. Pure;
/// whether this member of staff may record for this pupil is the caller's (their classes).
pub fn check_recorded(
    fields: &RecordFields,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RecordedIncident, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let p = &mut problems;
    let happened_at = keep(p, "happened_at", check_happened_at(&fields.happened_at, now));
    let device = keep(p, "device", check_optional_device(&fields.device));
    let place = keep(p, "place", check_text("Where", &fields.place, 200));
    let pupil = keep(
        p,
        "pupil",
        slate_protocol::PupilId::new(fields.pupil.trim())
            .map_err(|_| "Pupil: choose the pupil from the list.".to_owned()),
    );
    let others = keep(p, "others", check_text("Others involved", &fields.others, 500));
    let description = keep(
        p,
        "description",
        check_text("What was seen or happened", &fields.description, MAX_FIELD_CHARS).and_then(
            |text| text.ok_or_else(|| "What was seen or happened: say what, in words.".to_owned()),
        ),
    );
    let category = keep(p, "category", check_category(&fields.category));
    let action_taken =
        keep(p, "action_taken", check_text("Action taken", &fields.action_taken, MAX_FIELD_CHARS));
    // Somewhere to go back to: a device, or a place in words.
    if let (Some(None), Some(None)) = (&device, &place) {
        keep::<()>(
            p,
            "place",
            Err("Where: give the device number or say where (\"iPad in Year 5\", \"home\").".into()),
        );
    }
    match (happened_at, device, place, pupil, others, description, category, action_taken) {
        (
            Some(happened_at),
            Some(device),
            Some(place),
            Some(pupil),
            Some(others),
            Some(description),
            Some(category),
            Some(action_taken),
        ) if problems.is_empty() => Ok(RecordedIncident {
            happened_at,
            device,
            place,
            pupil,
            others,
            description,
            category,
            action_taken,
        }),
        _ => Err(problems),
    }
}

/// A field's value, or `None` with its problem noted beside it.
fn keep<T>(
    problems: &mut Vec<FieldProblem>,
    field: &'static str,
    result: Result<T, String>,
) -> Option<T> {
    result.map_err(|message| problems.push(FieldProblem { field, message })).ok()
}

/// When it happened: UK time, not in the future.
fn check_happened_at(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if text.trim().is_empty() {
        return Err("When: give the date and time it happened (UK time).".into());
    }
    let at = crate::uk_time::parse_uk("When", text)?;
    if at > now {
        return Err(format!(
            "When: {} is in the future; give when it happened.",
            crate::uk_time::format_uk(at)
        ));
    }
    Ok(at)
}

/// A device number from 1 to 9999, or none when left empty.
fn check_optional_device(text: &str) -> Result<Option<u16>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u16>()
        .ok()
        .filter(|n| (1..=9999).contains(n))
        .map(Some)
        .ok_or_else(|| format!("Device: {text:?} is not a device number from 1 to 9999."))
}

fn check_category(text: &str) -> Result<String, String> {
    let text = text.trim();
    match category_label(text) {
        Some(_) => Ok(text.to_owned()),
        None if text.is_empty() => Err("Kind of concern: choose one from the list.".into()),
        None => Err(format!("Kind of concern: {text:?} is not one of the listed kinds.")),
    }
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

    fn filled() -> RecordFields {
        RecordFields {
            happened_at: "2026-11-17T10:14".into(),
            device: "".into(),
            place: " iPad in Year 5 ".into(),
            pupil: "p-7f3a9c".into(),
            others: "".into(),
            description: "A pop-up with a frightening picture".into(),
            category: "upsetting_content".into(),
            action_taken: "Closed the app; told the pupil they did the right thing".into(),
        }
    }

    #[test]
    fn a_recorded_incident_is_checked_field_by_field() {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-17T12:00:00Z".parse().unwrap();
        let ok = check_recorded(&filled(), now).unwrap();
        assert_eq!(ok.happened_at.to_rfc3339(), "2026-11-17T10:14:00+00:00");
        assert_eq!((ok.device, ok.place.as_deref()), (None, Some("iPad in Year 5")));
        assert_eq!((ok.others, ok.category.as_str()), (None, "upsetting_content"));
        // A device alone says where; BST is read as UK time.
        let summer = RecordFields {
            happened_at: "2026-06-17T10:14".into(),
            device: "12".into(),
            place: "".into(),
            ..filled()
        };
        let summer = check_recorded(&summer, now).unwrap();
        assert_eq!(summer.device, Some(12));
        assert_eq!(summer.happened_at.to_rfc3339(), "2026-06-17T09:14:00+00:00");

        type Change = fn(&mut RecordFields);
        let cases: [(Change, &str, &str); 12] = [
            (|f| f.happened_at = "".into(), "happened_at", "give the date and time"),
            (|f| f.happened_at = "yesterday".into(), "happened_at", "not a date and time"),
            (|f| f.happened_at = "2026-11-17T12:01".into(), "happened_at", "in the future"),
            (|f| f.happened_at = "2026-03-29T01:30".into(), "happened_at", "clocks went forward"),
            (|f| f.device = "0".into(), "device", "from 1 to 9999"),
            (|f| f.device = "12a".into(), "device", "not a device number"),
            (|f| f.place = "".into(), "place", "give the device number or say where"),
            (|f| f.pupil = " ".into(), "pupil", "choose the pupil"),
            (|f| f.description = "  ".into(), "description", "say what"),
            (|f| f.description = "a\u{7}".into(), "description", "control characters"),
            (|f| f.category = "".into(), "category", "choose one"),
            (|f| f.action_taken = "x".repeat(2001), "action_taken", "over the limit"),
        ];
        for (change, field, words) in cases {
            let mut fields = filled();
            change(&mut fields);
            let problems = check_recorded(&fields, now).unwrap_err();
            assert_eq!(problems.len(), 1, "{field}: {problems:?}");
            assert_eq!(problems[0].field, field);
            assert!(problems[0].message.contains(words), "{field}: {}", problems[0].message);
        }
        // Every problem at once, each beside its field.
        let empty = check_recorded(&RecordFields::default(), now).unwrap_err();
        let fields: Vec<_> = empty.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["happened_at", "pupil", "description", "category", "place"]);
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
