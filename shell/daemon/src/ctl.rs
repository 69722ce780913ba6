//! `slatectl`'s sentences: turns slated's reply to a request into a line for a person (the
//! request goes through [`slate_ipc::client`]). Must not interpret device state beyond printing
//! it.

use slate_ipc::control::{Reply, Request};

/// The line printed for a successful reply.
pub fn describe(request: &Request, reply: &Reply) -> String {
    match request {
        Request::Press {} => match (reply.report, reply.already_held) {
            (Some(id), Some(true)) => format!("already held: report {id} was filed earlier"),
            (Some(id), _) => format!("report filed {id}"),
            (None, _) => "report filed".into(),
        },
        Request::SignIn { .. } => match reply.session {
            Some(s) => format!("signed in: session {s}"),
            None => "signed in".into(),
        },
        Request::CheckPictures { .. } => "the pictures are right".into(),
        Request::SignOut {} => "signed out".into(),
        Request::Foreground { .. } => "foreground set".into(),
        Request::Unlock { choice, .. } => {
            match choice.unwrap_or(slate_protocol::ResolutionChoice::CloseApp) {
                slate_protocol::ResolutionChoice::CloseApp => "unlocked: the app was closed".into(),
                slate_protocol::ResolutionChoice::FalseAlarm => {
                    "unlocked: false alarm, the app resumes".into()
                }
                slate_protocol::ResolutionChoice::BlockSite => {
                    "unlocked: the app was closed and the site is asked to be blocked".into()
                }
            }
        }
        Request::StaffButtonTest { start: true, .. } => {
            "button test started: the next press of the button only lights its LED".into()
        }
        Request::StaffButtonTest { start: false, .. } => "the staff PIN is right".into(),
        Request::Status {} => {
            let mut line = format!(
                "device={} state={} spool_pending={} enrolled={}",
                reply.device.map_or("?".into(), |d| d.to_string()),
                reply.state.as_deref().unwrap_or("?"),
                reply.spool_pending.map_or("?".into(), |n| n.to_string()),
                reply.enrolled.map_or("?".into(), |e| e.to_string()),
            );
            if let Some(fault) = reply.button_fault {
                let fault = match fault {
                    slate_protocol::ButtonFault::Missing => "missing",
                    slate_protocol::ButtonFault::Stuck => "stuck",
                };
                line.push_str(&format!(" button={fault}"));
            }
            if let Some(fault) = reply.display_fault {
                let fault = match fault {
                    slate_protocol::DisplayFault::CannotDarken => "cannot_darken",
                    slate_protocol::DisplayFault::LastPressNotDark => "last_press_not_dark",
                };
                line.push_str(&format!(" display={fault}"));
            }
            if let Some(fault) = reply.storage_fault {
                let fault = match fault {
                    slate_protocol::StorageFault::Full => "full",
                    slate_protocol::StorageFault::Unwritable => "unwritable",
                };
                line.push_str(&format!(" storage={fault}"));
            }
            if reply.staff_pin == Some(false) {
                line.push_str(" staff_pin=none");
            }
            if reply.screens_locked == Some(true) {
                line.push_str(" screens_locked=true");
            }
            if reply.button_test == Some(true) {
                line.push_str(" button_test=open");
            }
            if let Some(pupil) = &reply.pupil {
                line.push_str(&format!(" pupil={pupil}"));
            }
            if let Some(at) = reply.policy_issued_at {
                line.push_str(&format!(" policy_issued_at={}", at.to_rfc3339()));
            }
            line
        }
        Request::AppOpened { app } => format!("app opened: {app}"),
        Request::AupAccepted { .. } => "agreement accepted".into(),
        Request::Activity {} => "activity noted".into(),
        Request::ReassuranceShown {} => "screen lit for the reassurance screen".into(),
        Request::FilterBlocked { .. } => "block filed".into(),
        Request::TellTeacher { .. } => match reply.report {
            Some(id) => format!("teacher told: report {id}"),
            None => "teacher told".into(),
        },
        Request::DeviceRefused { .. } => "refused device filed".into(),
        Request::SecurityBreach { .. } => "security breach filed".into(),
        Request::SetupCode { .. } | Request::SetupNumber { .. } | Request::SetupConfirm { .. } => {
            match &reply.setup {
                Some(view) => format!(
                    "setup: {}{}{}",
                    view.step,
                    view.device.map(|d| format!(" device {d}")).unwrap_or_default(),
                    view.notice.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                ),
                None => "setup done".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::{DeviceNumber, EventId};

    #[test]
    fn replies_read_as_sentences() {
        let id: EventId = serde_json::from_str("\"0192f0c1-0000-7000-8000-000000000001\"").unwrap();
        let press = Request::Press {};
        assert_eq!(
            describe(&press, &Reply { report: Some(id), ..Reply::ok() }),
            format!("report filed {id}")
        );
        assert_eq!(
            describe(&press, &Reply { report: Some(id), already_held: Some(true), ..Reply::ok() }),
            format!("already held: report {id} was filed earlier")
        );
        let status = Reply {
            device: Some(DeviceNumber::new(12).unwrap()),
            state: Some("idle".into()),
            spool_pending: Some(3),
            enrolled: Some(true),
            ..Reply::ok()
        };
        assert_eq!(
            describe(&Request::Status {}, &status),
            "device=12 state=idle spool_pending=3 enrolled=true"
        );
        let stuck = Reply { button_fault: Some(slate_protocol::ButtonFault::Stuck), ..status };
        assert_eq!(
            describe(&Request::Status {}, &stuck),
            "device=12 state=idle spool_pending=3 enrolled=true button=stuck"
        );
        let locked = Reply {
            screens_locked: Some(true),
            pupil: Some(slate_protocol::PupilId::new("p-1").unwrap()),
            button_fault: None,
            ..stuck
        };
        assert_eq!(
            describe(&Request::Status {}, &locked),
            "device=12 state=idle spool_pending=3 enrolled=true screens_locked=true pupil=p-1"
        );
        let tell = Request::TellTeacher { url: "https://x.example/".into(), app: None };
        assert_eq!(
            describe(&tell, &Reply { report: Some(id), ..Reply::ok() }),
            format!("teacher told: report {id}")
        );
        let unlock = Request::Unlock {
            pin: None,
            choice: Some(slate_protocol::ResolutionChoice::FalseAlarm),
            staff: None,
        };
        assert_eq!(describe(&unlock, &Reply::ok()), "unlocked: false alarm, the app resumes");
    }
}
