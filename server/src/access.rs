//! Who may do what, by need to know: one table ([`TABLE`]) that every staff route and every
//! page's links and buttons ask through [`may`], and the gate each route declares ([`Gate`]),
//! decided by [`verdict`] before its handler runs. Pure: no HTTP, no database. README's role
//! table is rendered from [`TABLE`] and a test keeps the two the same.
//!
//! Need to know (seed 004; issue 14): teachers see and acknowledge new reports from their own
//! classes' pupils (enough to go to the device), never the case file (the DSL's notes, the
//! history, the reported address, blocked addresses on device pages); the DSL and deputy DSL
//! see case files and alone move an incident; IT sees the fleet and setup, never incidents.
//! What a teacher's "own classes" are is the store's (`staff_classes`); this table only says
//! whether a role may ask at all.

use crate::auth::Role;

/// Something a member of staff asks to do. Each staff route names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// The list of new reports: teachers get their own classes' only, without addresses.
    SeeNewReports,
    /// Saying "I have seen it, I am on my way" (teachers: their own classes' reports).
    Acknowledge,
    /// The case file: one incident with its history and notes, the reported address, exports,
    /// the incident log, the reports API, and the blocked addresses and incidents on device pages.
    ReadCaseFile,
    /// Recording an incident by hand (teachers: about their own classes' pupils).
    RecordIncident,
    /// Moving an incident through its workflow (action taken, reopening), notes, the form.
    MoveIncident,
    /// A device's sessions and register, and "who had device N at T".
    LookUpDevice,
    /// Writing the register of numbered iPads.
    RecordRegister,
    /// Devices, versions, last contact, refused hardware: no pupil data.
    ViewFleet,
    /// Revoking a lost or stolen device, having a device replace its credential.
    ManageDeviceCredentials,
    /// The staff accounts page: disable, enable, reset sign-in (whose: `staff_accounts`).
    ManageStaffAccounts,
    /// What devices are told: classes, roster, apps, filter lists and profiles, session rules.
    ManagePolicy,
    /// "Eyes on me", "sign everyone out" (teachers: to devices their classes' pupils are on).
    SendCommands,
    /// Commands to any device, or all of them.
    CommandAnyDevice,
    /// "Test the button": the next press on a device, for five minutes, is a test (no report).
    /// Teachers: devices their classes' pupils are signed in on, as with their other commands.
    TestButton,
    /// The filter bypass page: requests and decisions.
    SeeBypasses,
    /// Asking for a time-bound filter bypass.
    RequestBypass,
    /// Approving or refusing a bypass (a safeguarding decision).
    ApproveBypass,
    /// The audit log.
    ReadAudit,
    /// The termly governors' report (anonymised counts).
    GovernorReport,
    /// Update bundles, IT's update CA and rollouts: what software every device runs.
    ManageUpdates,
    /// The alert rules (monitoring the filter) and when an unacknowledged incident escalates.
    ManageAlertRules,
    /// Sites staff asked to block on unlocking a held device: accept into a school block list,
    /// or decline. Which incident each came from is `ReadCaseFile`'s (IT sees the site only).
    HandleBlockRequests,
    /// The school's own acceptable use agreements: edit, preview, save a version, go back to
    /// the built-in text (a safeguarding document, so the DSL's).
    ManageAgreements,
    /// The termly filter check (DfE filtering standards): record it, and run the built-in check
    /// that asks chosen devices' filters about test names from each category. No pupil data.
    CheckFilter,
    /// The language of the pupils' screens, the school's and each class's: what devices are
    /// told, like the rest of setup, and no pupil data (so IT's as well as the DSL's).
    ManageLanguages,
    /// Timed root ssh on one device (15 minutes to 8 hours, with IT's own keys), and closing
    /// it early: the device's whole system, so IT's alone.
    OpenSsh,
}

use Permission::*;
use Role::{DeputyDsl, Dsl, ItAdmin, Teacher};

/// The one table: each permission and the roles that have it.
pub const TABLE: [(Permission, &[Role]); 26] = [
    (SeeNewReports, &[Dsl, DeputyDsl, Teacher]),
    (Acknowledge, &[Dsl, DeputyDsl, Teacher]),
    (ReadCaseFile, &[Dsl, DeputyDsl]),
    (RecordIncident, &[Dsl, DeputyDsl, Teacher]),
    (MoveIncident, &[Dsl, DeputyDsl]),
    (LookUpDevice, &[Dsl, DeputyDsl, Teacher]),
    (RecordRegister, &[Dsl, DeputyDsl, Teacher]),
    (ViewFleet, &[Dsl, DeputyDsl, ItAdmin]),
    (ManageDeviceCredentials, &[Dsl, DeputyDsl, ItAdmin]),
    (ManageStaffAccounts, &[Dsl, DeputyDsl, ItAdmin]),
    (ManagePolicy, &[Dsl, DeputyDsl, ItAdmin]),
    (SendCommands, &[Dsl, DeputyDsl, Teacher]),
    (CommandAnyDevice, &[Dsl, DeputyDsl]),
    (TestButton, &[Dsl, DeputyDsl, ItAdmin, Teacher]),
    (SeeBypasses, &[Dsl, DeputyDsl, Teacher]),
    (RequestBypass, &[Dsl, DeputyDsl, Teacher]),
    (ApproveBypass, &[Dsl, DeputyDsl]),
    (ReadAudit, &[Dsl, DeputyDsl]),
    (GovernorReport, &[Dsl, DeputyDsl]),
    (ManageUpdates, &[ItAdmin]),
    (ManageAlertRules, &[Dsl, DeputyDsl]),
    (HandleBlockRequests, &[Dsl, DeputyDsl, ItAdmin]),
    (ManageAgreements, &[Dsl, DeputyDsl]),
    (CheckFilter, &[Dsl, DeputyDsl, ItAdmin]),
    (ManageLanguages, &[Dsl, DeputyDsl, ItAdmin]),
    (OpenSsh, &[ItAdmin]),
];

/// May `role` do `permission`?
pub fn may(role: Role, permission: Permission) -> bool {
    TABLE.iter().any(|(p, roles)| *p == permission && roles.contains(&role))
}

impl Permission {
    /// How README names it.
    pub fn describe(self) -> &'static str {
        match self {
            SeeNewReports => "see new reports (teachers: their own classes', no addresses)",
            Acknowledge => "acknowledge a report (teachers: their own classes')",
            ReadCaseFile => "read the case file: incident, history, notes, addresses, exports, blocked addresses, pupils' chronologies, the filtering log",
            RecordIncident => "record an incident by hand (teachers: about their own classes' pupils)",
            MoveIncident => "move an incident (action taken, reopen), notes, the incident form",
            LookUpDevice => "device page (sessions, register), who had device N at T",
            RecordRegister => "write the iPad register",
            ViewFleet => "the fleet (no pupil data)",
            ManageDeviceCredentials => "revoke a lost or stolen device, have a device replace its credential",
            ManageStaffAccounts => "staff accounts: disable, enable, reset sign-in (IT: teachers' and IT's, and resets IT's only)",
            ManagePolicy => "school setup: classes, roster, the Pupils page (change, mark as left), apps, filters, session rules",
            SendCommands => "eyes on me, sign everyone out (teachers: devices their classes' pupils are signed in on)",
            CommandAnyDevice => "commands to any device, or all",
            TestButton => "test a device's report button: its next press is a test, no report (teachers: devices their classes' pupils are signed in on)",
            SeeBypasses => "the filter bypass page",
            RequestBypass => "ask for a filter bypass",
            ApproveBypass => "approve or refuse a bypass",
            ReadAudit => "the audit log",
            GovernorReport => "the governors' report (anonymised counts)",
            ManageUpdates => "device updates: upload bundles, roll them out, stop a rollout",
            ManageAlertRules => "alert rules (illegal content, filter bypass, hardware, faults, silent devices) and escalation",
            HandleBlockRequests => "site block requests from unlocks: accept into a school block list or decline (the incidents each came from: case file only)",
            ManageAgreements => "the school's own acceptable use agreements (KS1, KS2): edit, preview, save a version, back to the built-in text",
            CheckFilter => "the termly filter check: record it, and check chosen devices' filters with test names from each category",
            ManageLanguages => "the language of the pupils' screens: the school's and each class's",
            OpenSsh => "root ssh on one device for a limited time (15 minutes to 8 hours) with IT's own keys, and closing it early",
        }
    }
}

/// What a route needs before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Anyone: the sign-in form, the recovery link, health, the page script.
    Public,
    /// A device: its handler checks the device's own credential or enrollment token.
    Device,
    /// Any signed-in member of staff: their own account, signing out.
    SignedIn,
    /// A signed-in member of staff whose role has this permission.
    Needs(Permission),
}

/// What the gate says to one asker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// On to the handler (which may narrow further: a teacher's own classes).
    Pass,
    /// Nobody signed in: sign in first.
    SignIn,
    /// Signed in, but the role may not.
    Refuse,
}

/// The gate's decision for someone signed in with `role`, or nobody (`None`).
pub fn verdict(gate: Gate, role: Option<Role>) -> Verdict {
    match (gate, role) {
        (Gate::Public | Gate::Device, _) => Verdict::Pass,
        (_, None) => Verdict::SignIn,
        (Gate::SignedIn, Some(_)) => Verdict::Pass,
        (Gate::Needs(permission), Some(role)) if may(role, permission) => Verdict::Pass,
        (Gate::Needs(_), Some(_)) => Verdict::Refuse,
    }
}

/// Where each role's pages start, in the order tried: the first the role may open is where it
/// lands after signing in (or changing its password, or recovering its account).
const LANDING_PAGES: [(&str, Permission); 3] =
    [("/reports", SeeNewReports), ("/fleet", ViewFleet), ("/setup", ManagePolicy)];

/// The page `role` lands on after signing in: one it can use, never "Not for your role". A role
/// with none of those (none today) lands on its own account page, which every role may open.
pub fn landing_page(role: Role) -> &'static str {
    LANDING_PAGES
        .iter()
        .find(|(_, permission)| may(role, *permission))
        .map_or("/staff/account", |(path, _)| path)
}

/// May `decider` approve or refuse a bypass `requester` asked for? Never their own: a bypass is
/// a safeguarding decision, taken by someone other than whoever wants it (issue 14).
pub fn may_decide_bypass(requester: &str, decider: &str) -> bool {
    requester != decider
}

/// [`TABLE`] as the Markdown table in README.
pub fn markdown_table() -> String {
    let mut out = String::from("| permission | ");
    out += &Role::ALL.map(|r| r.name()).join(" | ");
    out += " |\n|---|";
    out += &"---|".repeat(Role::ALL.len());
    out += "\n";
    for (permission, _) in TABLE {
        out += &format!("| {} |", permission.describe());
        for role in Role::ALL {
            out += if may(role, permission) { " yes |" } else { " |" };
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_lands_on_a_page_it_may_open() {
        let cases = [
            (Dsl, "/reports"),
            (DeputyDsl, "/reports"),
            (Teacher, "/reports"),
            (ItAdmin, "/fleet"),
        ];
        for (role, page) in cases {
            assert_eq!(landing_page(role), page, "{role}");
        }
        for role in Role::ALL {
            let (_, needs) = LANDING_PAGES.iter().find(|(p, _)| *p == landing_page(role)).unwrap();
            assert!(may(role, *needs), "{role} may open where it lands");
        }
    }

    #[test]
    fn every_permission_has_exactly_one_row() {
        for (i, (permission, _)) in TABLE.iter().enumerate() {
            let rows = TABLE.iter().filter(|(p, _)| p == permission).count();
            assert_eq!(rows, 1, "row {i}: {permission:?}");
        }
    }

    /// The need-to-know promises, each stated as who has a permission.
    #[test]
    fn need_to_know() {
        let cases: [(Permission, &[Role]); 19] = [
            (ManageUpdates, &[ItAdmin]),
            // Root on a device: IT's alone, not even the DSL's.
            (OpenSsh, &[ItAdmin]),
            // The filter check shows test names and devices, never a pupil: IT runs it too.
            (CheckFilter, &[Dsl, DeputyDsl, ItAdmin]),
            (ManageLanguages, &[Dsl, DeputyDsl, ItAdmin]),
            // Testing a button files nothing and shows no pupil: IT tests devices too.
            (TestButton, &[Dsl, DeputyDsl, Teacher, ItAdmin]),
            (HandleBlockRequests, &[Dsl, DeputyDsl, ItAdmin]),
            (ManageAgreements, &[Dsl, DeputyDsl]),
            (ManageAlertRules, &[Dsl, DeputyDsl]),
            (ReadCaseFile, &[Dsl, DeputyDsl]),
            (MoveIncident, &[Dsl, DeputyDsl]),
            (RecordIncident, &[Dsl, DeputyDsl, Teacher]),
            (ApproveBypass, &[Dsl, DeputyDsl]),
            (SeeNewReports, &[Dsl, DeputyDsl, Teacher]),
            (Acknowledge, &[Dsl, DeputyDsl, Teacher]),
            (ViewFleet, &[Dsl, DeputyDsl, ItAdmin]),
            (ManageDeviceCredentials, &[Dsl, DeputyDsl, ItAdmin]),
            (ManagePolicy, &[Dsl, DeputyDsl, ItAdmin]),
            (GovernorReport, &[Dsl, DeputyDsl]),
            (ReadAudit, &[Dsl, DeputyDsl]),
        ];
        for (permission, holders) in cases {
            for role in Role::ALL {
                assert_eq!(may(role, permission), holders.contains(&role), "{role} {permission:?}");
            }
        }
        let incident_work =
            [SeeNewReports, Acknowledge, ReadCaseFile, RecordIncident, MoveIncident, LookUpDevice];
        assert!(incident_work.iter().all(|p| !may(ItAdmin, *p)), "IT sees no incidents or pupils");
    }

    #[test]
    fn the_gate_lets_through_only_whom_the_table_names() {
        let cases = [
            (Gate::Public, None, Verdict::Pass),
            (Gate::Device, None, Verdict::Pass),
            (Gate::SignedIn, None, Verdict::SignIn),
            (Gate::SignedIn, Some(ItAdmin), Verdict::Pass),
            (Gate::Needs(ReadCaseFile), None, Verdict::SignIn),
            (Gate::Needs(ReadCaseFile), Some(Teacher), Verdict::Refuse),
            (Gate::Needs(ReadCaseFile), Some(DeputyDsl), Verdict::Pass),
            (Gate::Needs(ViewFleet), Some(ItAdmin), Verdict::Pass),
            (Gate::Needs(SeeNewReports), Some(ItAdmin), Verdict::Refuse),
        ];
        for (gate, role, expected) in cases {
            assert_eq!(verdict(gate, role), expected, "{gate:?} {role:?}");
        }
    }

    #[test]
    fn nobody_decides_their_own_bypass() {
        assert!(may_decide_bypass("t.jones", "a.dsl"));
        assert!(!may_decide_bypass("a.dsl", "a.dsl"));
    }

    #[test]
    fn readme_shows_the_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let table = markdown_table();
        assert!(readme.contains(&table), "README.md should hold this table:\n{table}");
    }
}
