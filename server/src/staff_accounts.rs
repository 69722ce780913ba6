//! Who may change whose staff account on the "Staff accounts" page: disable a leaver, enable an
//! account again, or reset its sign-in (a one-time link that sets up TOTP and a new password).
//! Pure; the page (`features::staff_accounts`) and the store carry it out.
//!
//! A reset hands the link to whoever asked for it, so it must never lift anyone above their own
//! role: IT resets only IT accounts (a teacher's account would show IT its class's reports),
//! DSLs and deputies reset anyone's. Disabling and enabling give no credential: IT does it for
//! teachers and IT, the DSL and deputies for anyone. Nobody changes their own account here
//! (disabling oneself locks the school out; one's own password is on "My account").

use crate::auth::Role;

/// What can be done to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Disable,
    Enable,
    ResetSignIn,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Disable => "disable",
            Change::Enable => "enable",
            Change::ResetSignIn => "reset the sign-in of",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Change::Disable => "Disable",
            Change::Enable => "Enable",
            Change::ResetSignIn => "Reset sign-in",
        }
    }
}

/// Why a change is refused, in words for the page.
pub fn refusal(actor: Role, acting_on_self: bool, target: Role, change: Change) -> Option<String> {
    if acting_on_self {
        return Some(match change {
            Change::Disable | Change::Enable => {
                "You cannot disable or enable your own account: ask another DSL or IT.".into()
            }
            Change::ResetSignIn => {
                "Change your own password on My account; for a lost phone, ask IT for a recovery link made on the server's console.".into()
            }
        });
    }
    let allowed = match (actor, change) {
        (Role::Dsl | Role::DeputyDsl, _) => true,
        (Role::ItAdmin, Change::Disable | Change::Enable) => {
            matches!(target, Role::Teacher | Role::ItAdmin)
        }
        (Role::ItAdmin, Change::ResetSignIn) => target == Role::ItAdmin,
        (Role::Teacher, _) => false,
    };
    (!allowed).then(|| {
        format!(
            "Your role cannot {} a {} account: ask the DSL.",
            change.verb(),
            target_name(target)
        )
    })
}

fn target_name(role: Role) -> &'static str {
    match role {
        Role::Dsl => "DSL's",
        Role::DeputyDsl => "deputy DSL's",
        Role::Teacher => "teacher's",
        Role::ItAdmin => "IT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Change::*;
    use Role::*;

    #[test]
    fn nobody_is_lifted_above_their_role() {
        // (actor, target, change, allowed)
        let cases = [
            (Dsl, Teacher, ResetSignIn, true),
            (Dsl, DeputyDsl, Disable, true),
            (DeputyDsl, Dsl, ResetSignIn, true),
            (DeputyDsl, ItAdmin, Enable, true),
            (ItAdmin, Teacher, Disable, true),
            (ItAdmin, Teacher, Enable, true),
            (ItAdmin, Teacher, ResetSignIn, false),
            (ItAdmin, ItAdmin, ResetSignIn, true),
            (ItAdmin, Dsl, Disable, false),
            (ItAdmin, DeputyDsl, ResetSignIn, false),
            (Teacher, Teacher, Disable, false),
            (Teacher, Teacher, ResetSignIn, false),
        ];
        for (actor, target, change, allowed) in cases {
            let said = refusal(actor, false, target, change);
            assert_eq!(said.is_none(), allowed, "{actor:?} {change:?} {target:?}: {said:?}");
        }
        assert_eq!(
            refusal(ItAdmin, false, Teacher, ResetSignIn).unwrap(),
            "Your role cannot reset the sign-in of a teacher's account: ask the DSL."
        );
    }

    #[test]
    fn nobody_changes_their_own_account_here() {
        for change in [Disable, Enable, ResetSignIn] {
            for role in Role::ALL {
                assert!(refusal(role, true, role, change).is_some(), "{role:?} {change:?}");
            }
        }
    }
}
