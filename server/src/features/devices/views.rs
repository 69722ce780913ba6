//! The devices' pages: one device, "who had a device", and the fleet.

use crate::access::Permission;
use crate::http::layout::{
    clock_warning, count, csrf, layout, online, optional, pupil, status, when, Viewer,
};
use crate::session_end::end_label;
use crate::store::{
    ActivityRecord, ButtonTestRecord, CredentialState, DeviceRecord, FleetRow, IncidentRecord,
    RefusedRecord, RegisterEntry, RosterName, SessionRecord, CLOCK_NOT_SYNCHRONISED,
};
use crate::update_rollout::{self, Audience, BundleRecord, DeviceReport, Failure, Rollout};
use crate::who_had::{Answer, Record, Source};
use chrono::{DateTime, Utc};

/// What the fleet page says of a device whose card is full.
pub const STORAGE_FULL: &str = "storage full: reports kept in reserve or memory";
use maud::{html, Markup};
use slate_protocol::PupilId;

/// What the fleet page shows of updates: each device's last report, the bundles (a download's
/// share), the rollout in force and the versions devices failed with.
#[derive(Debug, Clone, Default)]
pub struct FleetUpdates {
    pub reports: Vec<DeviceReport>,
    pub bundles: Vec<BundleRecord>,
    pub rollout: Option<Rollout>,
    pub failures: Vec<Failure>,
}

/// A device's events besides sessions and reports, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeviceActivity {
    pub blocked: Vec<ActivityRecord>,
    pub apps: Vec<ActivityRecord>,
    pub agreements: Vec<ActivityRecord>,
}

fn activity_pupil(a: &ActivityRecord, pupil_id: Option<&PupilId>) -> Markup {
    pupil(pupil_id.map(|p| p.as_str()), a.pupil_name.as_deref())
}

/// Blocked attempts, apps opened (with their session) and agreements accepted.
fn device_activity(activity: &DeviceActivity) -> Markup {
    use slate_protocol::EventBody;
    html! {
        h2 { "Blocked by the filter" }
        @if activity.blocked.is_empty() {
            p.empty { "Nothing blocked on this device." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "What" } th { "Rule" } th { "List" } th { "Layer" } } }
                tbody {
                    @for a in &activity.blocked {
                        @if let EventBody::FilterBlocked { pupil: p, layer, target, rule, list, .. } = &a.body {
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, p.as_ref())) }
                                td.url { (target) } td { (rule) } td { (list) } td { (layer.as_str()) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Apps opened" }
        @if activity.apps.is_empty() {
            p.empty { "No apps opened yet." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "App" } th { "Session" } } }
                tbody {
                    @for a in &activity.apps {
                        @if let EventBody::AppOpened { session, pupil: p, app } = &a.body {
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, Some(p))) } td { (app) }
                                td.muted { (session.to_string().get(..8).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Acceptable use agreements" }
        @if activity.agreements.is_empty() {
            p.empty { "No agreement accepted on this device yet." }
        } @else {
            table {
                thead { tr { th { "Time" } th { "Pupil" } th { "Agreement" } th { "Text accepted" } th { "Text version" } } }
                tbody {
                    @for a in &activity.agreements {
                        @if let EventBody::AupAccepted { pupil: p, key_stage, text_version, school_version, .. } = &a.body {
                            @let (label, link) = crate::chronology::accepted_text(key_stage, text_version, *school_version);
                            tr {
                                td { (when(a.at)) } td { (activity_pupil(a, Some(p))) }
                                td { (key_stage.to_uppercase()) }
                                td { @if let Some(href) = link { a href=(href) { (label) } } @else { (label) } }
                                td { code { (text_version) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a device page shows only to readers of case files: its incidents and its activity
/// (blocked addresses among them).
pub struct DeviceCaseFile<'a> {
    pub incidents: &'a [IncidentRecord],
    pub activity: &'a DeviceActivity,
}

/// What a device page says of the device's report button test and its root ssh, when shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceWords<'a> {
    pub button_test: Option<&'a str>,
    pub ssh: Option<&'a str>,
}

/// One device: who used it, the iPad register, and for readers of case files its incidents and
/// what it blocked.
pub fn device_page(
    viewer: &Viewer,
    number: u16,
    device: Option<&DeviceRecord>,
    sessions: &[SessionRecord],
    register: &[RegisterEntry],
    case_file: Option<DeviceCaseFile<'_>>,
    words: DeviceWords<'_>,
) -> Markup {
    let DeviceWords { button_test, ssh } = words;
    let title = format!("Device {number}");
    layout(
        Some(viewer),
        &title,
        html! {
            h1 { (title) }
            @if let Some(device) = device {
                dl {
                    dt { "Enrolled" } dd { (when(device.enrolled_at)) }
                    dt { "Software" } dd { (device.software_version) }
                    dt { "Last heard from" }
                    dd { @match device.last_seen_at { Some(t) => (when(t)), None => span.muted { "not yet" } } }
                    dt { "Report button" }
                    dd.report-button {
                        @if let Some(words) = button_test { span.button-test { (words) } " " }
                        @if viewer.may(Permission::TestButton) { (test_button_form(viewer, number)) }
                    }
                    @if let Some(words) = ssh {
                        dt { "Root ssh" }
                        dd #ssh-state { (words) }
                    }
                }
            } @else {
                p.muted { "Not a Slate device: the register below is what teachers recorded." }
            }
            h2 { "Sessions" }
            @if sessions.is_empty() {
                p.empty { "Nobody has signed in on this device yet." }
            } @else {
                table {
                    thead { tr { th { "Pupil" } th { "From" } th { "To" } th { "How it ended" } } }
                    tbody {
                        @for s in sessions {
                            tr {
                                td { (pupil(Some(&s.pupil), s.pupil_name.as_deref())) }
                                td { (when(s.started_at)) }
                                td {
                                    @match s.ended_at {
                                        Some(t) => (end_label(&when(t), s.end_reason.as_deref(), s.end_inferred)),
                                        None => strong { "still signed in" },
                                    }
                                }
                                td { @match &s.end_reason { Some(r) => (r.replace('_', " ")), None => "" } }
                            }
                        }
                    }
                }
            }
            @if !register.is_empty() {
                h2 { "Register" }
                table {
                    thead { tr { th { "Pupil" } th { "From" } th { "To" } th { "Recorded by" } } }
                    tbody {
                        @for g in register {
                            tr {
                                td { (pupil(Some(&g.pupil), g.pupil_name.as_deref())) }
                                td { (when(g.from)) } td { (when(g.to)) } td { (g.recorded_by) }
                            }
                        }
                    }
                }
            }
            @if let Some(DeviceCaseFile { incidents, activity }) = case_file {
            h2 { "Reports" }
            @if incidents.is_empty() {
                p.empty { "No reports from this device." }
            } @else {
                table {
                    thead { tr { th { "Incident" } th { "Pressed" } th { "Status" } th { "Pupil" } th { "App" } th { "Address" } th { "Page title" } } }
                    tbody {
                        @for i in incidents {
                            @let r = &i.report;
                            tr {
                                td { a href={ "/incidents/" (i.id) } { "Incident " (i.id) } }
                                td { (when(r.pressed_at)) (clock_warning(r.clock_warning())) }
                                td { (status(i.status)) }
                                td { (pupil(r.pupil.as_deref(), r.pupil_name.as_deref())) }
                                td { (optional(r.app.as_deref())) }
                                td.url { (optional(r.url.as_deref())) }
                                td { (optional(r.page_title.as_deref())) }
                            }
                        }
                    }
                }
            }
            (device_activity(activity))
            }
        },
    )
}

/// The answer shown under the who-had form: the device, the time asked, and the answer.
pub type WhoHadShown = Result<(u16, DateTime<Utc>, Answer), String>;

/// What was typed in the who-had form, shown again.
#[derive(Debug, Clone, Copy)]
pub struct WhoHadQuestion<'a> {
    pub device: &'a str,
    pub at: &'a str,
}

/// The register form: the pupils to pick from, and after a refused line what was typed and why.
pub struct RegisterForm<'a> {
    pub pupils: Vec<RosterName>,
    pub values: Option<&'a super::RegisterForm>,
    pub error: Option<String>,
}

impl RegisterForm<'_> {
    pub fn blank(pupils: Vec<RosterName>) -> RegisterForm<'static> {
        RegisterForm { pupils, values: None, error: None }
    }
}

/// Where one record says the pupil had the device: the session's span, or the register line.
fn record_span(record: &Record) -> Markup {
    html! {
        @match record.source {
            Source::Session => {
                "Signed in on the device from " (when(record.from))
                @match record.to {
                    Some(to) if record.end_inferred => { ", " (end_label(&when(to), record.end_reason.as_deref(), true)) }
                    Some(to) => { " to " (when(to)) },
                    None => " (still signed in)",
                }
                "."
            }
            Source::Register => {
                "From the register: " (when(record.from)) " to "
                @if let Some(to) = record.to { (when(to)) }
                ", recorded by " (record.recorded_by.as_deref().unwrap_or("?")) "."
            }
        }
    }
}

/// The register form's pupil list: one group per class, each pupil by name.
fn pupil_choice(pupils: &[RosterName], chosen: &str) -> Markup {
    let mut classes: Vec<(&str, Vec<&RosterName>)> = Vec::new();
    for p in pupils {
        match classes.last_mut() {
            Some((class, members)) if *class == p.class_name => members.push(p),
            _ => classes.push((&p.class_name, vec![p])),
        }
    }
    html! {
        select #reg-pupil name="pupil" required {
            option value="" { "Choose a pupil" }
            @for (class, members) in &classes {
                optgroup label=(class) {
                    @for p in members {
                        option value=(p.id.as_str()) selected[p.id.as_str() == chosen] { (p.name) }
                    }
                }
            }
        }
    }
}

/// "Who had device N at time T", and the iPad register form.
pub fn who_had_page(
    viewer: &Viewer,
    question: WhoHadQuestion,
    answer: Option<WhoHadShown>,
    register: &RegisterForm,
) -> Markup {
    let typed = |field: fn(&super::RegisterForm) -> &str| register.values.map_or("", field);
    layout(
        Some(viewer),
        "Who had a device",
        html! {
            h1 { "Who had a device?" }
            form.stack method="get" action="/who-had" {
                label for="device" { "Device number" }
                input #device name="device" value=(question.device) inputmode="numeric" required;
                label for="at" { "Date and time (UK time)" }
                input #at name="at" type="datetime-local" value=(question.at) required;
                button type="submit" { "Look up" }
            }
            @match answer {
                None => {}
                Some(Err(message)) => { p.error role="alert" { (message) } }
                Some(Ok((n, t, Answer::Nobody))) => {
                    p.empty { "Nobody is recorded as having device " (n) " at " (when(t)) "." }
                }
                Some(Ok((n, t, Answer::One(a)))) => {
                    p.banner {
                        "Device " (n) " at " (when(t)) ": " (pupil(Some(&a.pupil), a.pupil_name.as_deref()))
                    }
                    p { (record_span(&a)) " " a href={ "/devices/" (n) } { "Device " (n) "'s page" } }
                }
                Some(Ok((n, t, Answer::Conflict(records)))) => {
                    div.error.conflict role="alert" {
                        strong { "The records disagree: " (count(records.len(), "record", "records"))
                            " name different pupils for device " (n) " at " (when(t)) "." }
                        " Check with whoever recorded them before relying on either."
                        ul {
                            @for r in &records {
                                li { (pupil(Some(&r.pupil), r.pupil_name.as_deref())) ": " (record_span(r)) }
                            }
                        }
                    }
                    p { a href={ "/devices/" (n) } { "Device " (n) "'s page" } }
                }
            }
            @if viewer.may(Permission::RecordRegister) {
                h2 #register { "Record a numbered iPad for a lesson" }
                p.muted { "For devices that cannot run Slate. Times in UK time." }
                @if let Some(message) = &register.error { p.error role="alert" { (message) } }
                @if register.pupils.is_empty() {
                    p.empty { "There are no pupils on the roster yet: IT imports it on School setup." }
                } @else {
                    form.stack method="post" action="/register#register" {
                        (csrf(viewer))
                        label for="reg-device" { "Device number" }
                        input #reg-device name="device" inputmode="numeric" value=(typed(|f| &f.device)) required;
                        label for="reg-pupil" { "Pupil (by class)" }
                        (pupil_choice(&register.pupils, typed(|f| f.pupil.trim())))
                        label for="reg-from" { "From" }
                        input #reg-from name="from" type="datetime-local" value=(typed(|f| &f.from)) required;
                        label for="reg-to" { "To" }
                        input #reg-to name="to" type="datetime-local" value=(typed(|f| &f.to)) required;
                        button type="submit" { "Record" }
                    }
                }
            }
        },
    )
}

/// Every device: online or not, software, last contact.
/// What the fleet page says of a device's latest button test at `now`.
pub fn button_test_words(test: &ButtonTestRecord, now: DateTime<Utc>) -> String {
    match test.pressed_at {
        Some(_) => format!(
            "button works (tested {} by {})",
            crate::uk_time::format_uk_clock(test.issued_at),
            test.issued_by
        ),
        None if now < test.expires_at => "test waiting: press the button".to_owned(),
        None => "no press in the test window".to_owned(),
    }
}

/// The "Test the button" form for one device.
pub fn test_button_form(viewer: &Viewer, device: u16) -> Markup {
    html! {
        form.inline method="post" action={ "/devices/" (device) "/test-button" } {
            (csrf(viewer))
            button type="submit" title="The next press in 5 minutes only lights the LED: no report" { "Test the button" }
        }
    }
}

pub fn fleet_page(
    viewer: &Viewer,
    fleet: &[FleetRow],
    refused: &[RefusedRecord],
    updates: &FleetUpdates,
    tests: &[ButtonTestRecord],
    now: DateTime<Utc>,
) -> Markup {
    let up = fleet.iter().filter(|d| online(d.last_seen_at, now)).count();
    layout(
        Some(viewer),
        "Fleet",
        html! {
            h1 { "Fleet" }
            p { (count(fleet.len(), "device", "devices")) ", " (up) " online." }
            @if viewer.may(Permission::ManageDeviceCredentials) {
                p { a href="/fleet/device-numbers" { "Device numbers for a class set" } " (IT's list of serial numbers)" }
            }
            @if let Some(r) = &updates.rollout {
                p #rollout {
                    "Update in progress: version " strong { (r.bundle.version) } " to "
                    @match &r.audience {
                        Audience::Everyone => "every device",
                        Audience::Devices(devices) => {
                            "devices " (devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
                        }
                    }
                    @if viewer.may(Permission::ManageUpdates) { " (" a href="/updates" { "Updates" } ")" }
                    "."
                }
            }
            @if fleet.is_empty() {
                p.empty { "No device has enrolled yet. Make a token with slate-server enrollment-token --device N." }
            } @else {
                table {
                    thead { tr { th { "Device" } th { "State" } th { "Last heard from" } th { "Last heartbeat" } th { "Report button" } th { "Screen darkens" } th { "Storage" } th { "Clock" } th { "Software" } th { "Image version" } th { "Update" } th { "Update error" } th { "Update reported" } th { "Enrolled" } th { "Credential" } } }
                    tbody {
                        @for d in fleet {
                            tr id={ "device-" (d.number) } {
                                td {
                                    @if viewer.may(Permission::LookUpDevice) {
                                        a href={ "/devices/" (d.number) } { "Device " (d.number) }
                                    } @else { "Device " (d.number) }
                                }
                                td { @if online(d.last_seen_at, now) { span.online { "online" } } @else { span.muted { "offline" } } }
                                td { @match d.last_seen_at { Some(t) => (when(t)), None => span.muted { "never" } } }
                                td { @match d.last_heartbeat_at { Some(t) => (when(t)), None => span.muted { "none yet" } } }
                                td.report-button {
                                    @match (d.last_heartbeat_at, d.button_fault.as_deref()) {
                                        (None, _) => span.muted { "not known" },
                                        (Some(_), None) => "working",
                                        (Some(_), Some(fault)) => strong.status-new { "fault: " (fault) },
                                    }
                                    @if let Some(test) = tests.iter().find(|t| t.device.get() == d.number) {
                                        br; span.button-test { (button_test_words(test, now)) }
                                    }
                                    @if viewer.may(Permission::TestButton) { (test_button_form(viewer, d.number)) }
                                    @if viewer.may(Permission::OpenSsh) { br; a href={ "/fleet/devices/" (d.number) "/ssh" } { "Root ssh" } }
                                }
                                td {
                                    @match (d.last_heartbeat_at, d.display_fault.as_deref()) {
                                        (None, _) => span.muted { "not known" },
                                        (Some(_), None) => "yes",
                                        (Some(_), Some("last_press_not_dark")) => strong.status-new { "no: the last press left the screen lit" },
                                        (Some(_), Some(_)) => strong.status-new { "no: nothing on the device can darken the screen" },
                                    }
                                }
                                td {
                                    @match (d.last_heartbeat_at, d.storage_fault.as_deref()) {
                                        (None, _) => span.muted { "not known" },
                                        (Some(_), None) => "ok",
                                        (Some(_), Some("full")) => strong.status-new { (STORAGE_FULL) },
                                        (Some(_), Some(_)) => strong.status-new { "cannot write: reports kept in memory" },
                                    }
                                }
                                td {
                                    @match d.clock_synchronised {
                                        None => span.muted { "not known" },
                                        Some(true) => "synchronised",
                                        Some(false) => strong.status-new.clock-unsynced { (CLOCK_NOT_SYNCHRONISED) },
                                    }
                                }
                                td { (d.software_version) }
                                @let report = updates.reports.iter().find(|r| r.device == d.number);
                                @let words = update_rollout::describe(report, &updates.bundles, updates.rollout.as_ref(), &updates.failures);
                                td { @match report { Some(r) => (r.running), None => span.muted { "not known" } } }
                                td.update-state {
                                    @if words.problem { strong.status-new { (words.words) } }
                                    @else if report.is_none() { span.muted { (words.words) } }
                                    @else { (words.words) }
                                }
                                td.update-error { @if let Some(r) = report { (update_rollout::shown_error(r, updates.rollout.as_ref(), &updates.failures).unwrap_or("")) } }
                                td { @if let Some(r) = report { (when(r.reported_at)) } }
                                td { (when(d.enrolled_at)) }
                                td {
                                    @match &d.credential {
                                        CredentialState::InUse => "in use",
                                        CredentialState::ReplacementAsked { at } => span.muted { "replacement asked " (when(*at)) ", not used yet" },
                                        CredentialState::Revoked { at, by } => strong.status-new { "revoked " (when(*at)) " by " (by) },
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if viewer.may(Permission::ManageDeviceCredentials) && !fleet.is_empty() {
                h2 #credentials { "Lost, stolen or out of sight" }
                div.forms {
                    form.stack method="post" action="/fleet/revoke" {
                        (csrf(viewer))
                        p { "Revoke a lost or stolen device: nothing it holds works any more, its enrollment tokens are void and its pupil's session ends. It needs a new enrollment token to work again." }
                        label for="revoke-device" { "Device number" }
                        input #revoke-device name="device" inputmode="numeric" required;
                        label.check for="revoke-confirm" {
                            input #revoke-confirm type="checkbox" name="confirm" value="yes";
                            " I am sure"
                        }
                        button.refuse type="submit" { "Revoke device" }
                    }
                    form.stack method="post" action="/fleet/replace-credential" {
                        (csrf(viewer))
                        p { "Replace a device's credential (say its card was out of sight): the device fetches a new one at its next upload, and the old one stops working once the new one is used." }
                        label for="replace-device" { "Device number" }
                        input #replace-device name="device" inputmode="numeric" required;
                        button type="submit" { "Replace credential" }
                    }
                }
            }
            h2 { "Hardware refused" }
            @if refused.is_empty() {
                p.empty { "No device has refused anything plugged into it." }
            } @else {
                table {
                    thead { tr { th { "Device" } th { "Time" } th { "Kind" } th { "What" } } }
                    tbody {
                        @for r in refused {
                            tr {
                                td { "Device " (r.device) } td { (when(r.at)) }
                                td { (r.kind.replace('_', " ")) } td { (r.description) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::incident::Status;
    use crate::store::ReportRecord;

    fn viewer() -> Viewer {
        Viewer {
            name: "j.smith".into(),
            role: Role::Dsl,
            csrf: "tok".into(),
            pending_block_requests: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn session(reason: &str, inferred: bool) -> SessionRecord {
        SessionRecord {
            session_id: "s-1".into(),
            pupil: "p-1".into(),
            pupil_name: Some("Amira K.".into()),
            started_at: at("2026-11-17T10:00:00Z"),
            ended_at: Some(at("2026-11-17T10:41:00Z")),
            end_reason: Some(reason.into()),
            end_inferred: inferred,
        }
    }

    fn incident(synchronised: Option<bool>) -> IncidentRecord {
        IncidentRecord {
            id: 7,
            status: Status::New,
            details: Default::default(),
            created_at: at("2026-11-17T10:14:04Z"),
            updated_at: at("2026-11-17T10:14:04Z"),
            report: ReportRecord {
                id: "0192-a".into(),
                device: Some(12),
                pupil: None,
                pupil_name: None,
                session: None,
                pressed_at: at("2026-11-17T10:14:03Z"),
                received_at: at("2026-11-17T10:14:04Z"),
                app: None,
                url: None,
                page_title: None,
                blank_latency_us: None,
                from_block_page: false,
                recent_names: vec![],
                clock_synchronised: synchronised,
                recorded_by: None,
            },
        }
    }

    fn device_page_with(sessions: &[SessionRecord], incidents: &[IncidentRecord]) -> String {
        let activity = DeviceActivity::default();
        let case_file = DeviceCaseFile { incidents, activity: &activity };
        device_page(&viewer(), 12, None, sessions, &[], Some(case_file), DeviceWords::default())
            .into_string()
    }

    #[test]
    fn a_button_test_reads_as_waiting_working_or_unanswered() {
        let test = |pressed: Option<&str>| ButtonTestRecord {
            command: Some(3),
            device: slate_protocol::DeviceNumber::new(12).unwrap(),
            issued_at: at("2026-11-17T10:14:00Z"),
            expires_at: at("2026-11-17T10:19:00Z"),
            issued_by: "it.anna".into(),
            pressed_at: pressed.map(at),
        };
        let cases = [
            (None, "2026-11-17T10:18:59Z", "test waiting: press the button"),
            (None, "2026-11-17T10:19:00Z", "no press in the test window"),
            (
                Some("2026-11-17T10:15:00Z"),
                "2026-11-17T10:16:00Z",
                "button works (tested 10:14 GMT by it.anna)",
            ),
            // The device's clock may be off: a press that came is a press, whatever its time.
            (
                Some("2026-11-17T11:15:00Z"),
                "2026-11-17T12:00:00Z",
                "button works (tested 10:14 GMT by it.anna)",
            ),
        ];
        for (pressed, now, words) in cases {
            assert_eq!(button_test_words(&test(pressed), at(now)), words, "{pressed:?} at {now}");
        }
    }

    #[test]
    fn an_inferred_end_reads_as_until_at_least() {
        let inferred = device_page_with(&[session("device_restarted", true)], &[]);
        assert!(
            inferred.contains(
                "until at least Tue 17 Nov 2026, 10:41:00 GMT, then the device restarted"
            ),
            "{inferred}"
        );
        let recorded = device_page_with(&[session("signed_out", false)], &[]);
        assert!(!recorded.contains("until at least"), "{recorded}");
        assert!(recorded.contains("Tue 17 Nov 2026, 10:41:00 GMT"), "{recorded}");
    }

    #[test]
    fn reports_and_devices_with_an_unsynchronised_clock_are_flagged() {
        for (synchronised, flagged) in [(Some(false), true), (Some(true), false), (None, false)] {
            let page = device_page_with(&[], &[incident(synchronised)]);
            assert_eq!(page.contains(CLOCK_NOT_SYNCHRONISED), flagged, "{synchronised:?}: {page}");
            let row = FleetRow {
                number: 12,
                software_version: "0.1.0".into(),
                enrolled_at: at("2026-11-17T08:00:00Z"),
                last_seen_at: Some(at("2026-11-17T10:00:00Z")),
                last_heartbeat_at: None,
                button_fault: None,
                display_fault: None,
                storage_fault: None,
                clock_synchronised: synchronised,
                credential: CredentialState::InUse,
            };
            let fleet = fleet_page(
                &viewer(),
                &[row],
                &[],
                &FleetUpdates::default(),
                &[],
                at("2026-11-17T10:00:30Z"),
            )
            .into_string();
            assert_eq!(
                fleet.contains(CLOCK_NOT_SYNCHRONISED),
                flagged,
                "{synchronised:?}: {fleet}"
            );
        }
    }

    #[test]
    fn a_device_with_a_full_card_says_storage_full() {
        let row = |heartbeat: Option<&str>, fault: Option<&str>| FleetRow {
            number: 12,
            software_version: "0.1.0".into(),
            enrolled_at: at("2026-11-17T08:00:00Z"),
            last_seen_at: Some(at("2026-11-17T10:00:00Z")),
            last_heartbeat_at: heartbeat.map(at),
            button_fault: None,
            display_fault: None,
            storage_fault: fault.map(str::to_owned),
            clock_synchronised: None,
            credential: CredentialState::InUse,
        };
        let page = |r: FleetRow| {
            fleet_page(
                &viewer(),
                &[r],
                &[],
                &FleetUpdates::default(),
                &[],
                at("2026-11-17T10:00:30Z"),
            )
            .into_string()
        };
        let cases = [
            (Some("2026-11-17T10:00:00Z"), Some("full"), true),
            (Some("2026-11-17T10:00:00Z"), None, false),
            (None, None, false),
        ];
        for (heartbeat, fault, full) in cases {
            let shown = page(row(heartbeat, fault));
            assert_eq!(shown.contains(STORAGE_FULL), full, "{fault:?}: {shown}");
        }
        let unwritable = page(row(Some("2026-11-17T10:00:00Z"), Some("unwritable")));
        assert!(unwritable.contains("cannot write"), "{unwritable}");
    }

    #[test]
    fn each_devices_credential_shows_and_only_those_who_may_get_the_forms() {
        let row = |number, credential| FleetRow {
            number,
            software_version: "0.1.0".into(),
            enrolled_at: at("2026-11-17T08:00:00Z"),
            last_seen_at: None,
            last_heartbeat_at: None,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
            clock_synchronised: None,
            credential,
        };
        let fleet = [
            row(11, CredentialState::InUse),
            row(12, CredentialState::ReplacementAsked { at: at("2026-11-17T09:00:00Z") }),
            row(
                13,
                CredentialState::Revoked { at: at("2026-11-17T09:30:00Z"), by: "it.jones".into() },
            ),
        ];
        let now = at("2026-11-17T10:00:30Z");
        let page =
            fleet_page(&viewer(), &fleet, &[], &FleetUpdates::default(), &[], now).into_string();
        assert!(page.contains("in use"), "{page}");
        assert!(
            page.contains("replacement asked Tue 17 Nov 2026, 09:00:00 GMT, not used yet"),
            "{page}"
        );
        assert!(page.contains("revoked Tue 17 Nov 2026, 09:30:00 GMT by it.jones"), "{page}");
        assert!(
            page.contains(r#"action="/fleet/revoke""#)
                && page.contains(r#"action="/fleet/replace-credential""#)
        );

        let it = Viewer {
            name: "it.jones".into(),
            role: Role::ItAdmin,
            csrf: "tok".into(),
            pending_block_requests: None,
        };
        assert!(fleet_page(&it, &fleet, &[], &FleetUpdates::default(), &[], now)
            .into_string()
            .contains(r#"action="/fleet/revoke""#));
        // A teacher never reaches the fleet (its gate), but the view would not offer it either.
        let teacher = Viewer {
            name: "t.owen".into(),
            role: Role::Teacher,
            csrf: "tok".into(),
            pending_block_requests: None,
        };
        assert!(!fleet_page(&teacher, &fleet, &[], &FleetUpdates::default(), &[], now)
            .into_string()
            .contains("/fleet/revoke"));
    }
}
