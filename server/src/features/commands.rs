//! Teacher commands: "eyes on me" (lock every screen), its end, and "sign everyone out", for
//! all devices or some; and "Test the button" for one device (the fleet self-test: its next
//! press for [`BUTTON_TEST_FOR`] is a test, not a report). Queued with an expiry, audited, and
//! the devices' long polls woken; the device API hands them out.

use crate::access::{Gate, Permission};
use crate::http::error::PageError;
use crate::http::forms::form;
use crate::http::layout::{csrf, layout, online};
use crate::http::routes::Routes;
use crate::http::staff::Staff;
use crate::http::AppState;
use crate::store::CommandRecord;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::Redirect;
use chrono::{Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use slate_protocol::device::CommandAction;
use slate_protocol::DeviceNumber;

/// "Eyes on me" ends by itself after this unless a teacher ends it first.
pub const LOCK_FOR: Duration = Duration::minutes(30);
/// A "sign everyone out" that reaches a device later than this is ignored: it was for that
/// lesson's pupils, not the next.
pub const SIGN_OUT_FOR: Duration = Duration::minutes(10);
const COMMAND_ROWS: u32 = 50;
/// How long a button test waits for its press (the device never waits longer, whatever its
/// clock says).
pub const BUTTON_TEST_FOR: Duration = Duration::minutes(5);

pub fn routes() -> Routes {
    let send = Gate::Needs(Permission::SendCommands);
    Routes::new().get("/commands", send, commands_page).post("/commands", send, send_command).post(
        "/devices/{number}/test-button",
        Gate::Needs(Permission::TestButton),
        test_button,
    )
}

/// Which devices: `all`, or numbers separated by commas or spaces.
pub fn parse_devices(text: &str) -> Result<Option<Vec<DeviceNumber>>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let devices = text
        .split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>()
                .ok()
                .and_then(|n| DeviceNumber::new(n).ok())
                .ok_or_else(|| format!("Devices: {t:?} is not a device number from 1 to 9999."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if devices.is_empty() {
        return Err("Devices: all, or device numbers such as 12, 14.".into());
    }
    Ok(Some(devices))
}

/// Where a command goes: `None` in the list is every device. `reach` is the devices the sender
/// may command (`None`: any). "All" from a teacher is each device they may reach; a device
/// outside their reach is refused by number.
pub fn command_targets(
    asked: Option<Vec<DeviceNumber>>,
    reach: Option<&[DeviceNumber]>,
) -> Result<Vec<Option<DeviceNumber>>, String> {
    match (asked, reach) {
        (None, None) => Ok(vec![None]),
        (Some(list), None) => Ok(list.into_iter().map(Some).collect()),
        (None, Some([])) => {
            Err("None of your classes' pupils is signed in on a device now.".into())
        }
        (None, Some(reach)) => Ok(reach.iter().copied().map(Some).collect()),
        (Some(list), Some(reach)) => match list.iter().find(|d| !reach.contains(d)) {
            Some(d) => Err(format!(
                "Devices: no pupil of your classes is signed in on device {d}; ask a DSL."
            )),
            None => Ok(list.into_iter().map(Some).collect()),
        },
    }
}

/// A teacher's command and how long it stays worth acting on.
pub fn parse_command(text: &str) -> Result<(CommandAction, Duration), String> {
    match text {
        "lock_screens" => Ok((CommandAction::LockScreens, LOCK_FOR)),
        // Reaches a device for as long as the lock it ends could still be in force.
        "unlock_screens" => Ok((CommandAction::UnlockScreens, LOCK_FOR)),
        "sign_out_all" => Ok((CommandAction::SignOutAll, SIGN_OUT_FOR)),
        _ => Err("Command: eyes on me, end eyes on me, or sign everyone out.".into()),
    }
}

/// `GET /commands`.
pub async fn commands_page(
    staff: Staff,
    State(state): State<AppState>,
) -> Result<Markup, PageError> {
    let (recent, fleet) =
        state.store.run(|store| Ok((store.recent_commands(COMMAND_ROWS)?, store.fleet()?))).await?;
    let now = Utc::now();
    let online_now: Vec<String> = fleet
        .iter()
        .filter(|d| online(d.last_seen_at, now))
        .map(|d| d.number.to_string())
        .collect();
    let viewer = staff.viewer();
    Ok(layout(
        Some(&viewer),
        "Eyes on me",
        html! {
            h1 { "Eyes on me" }
            form method="post" action="/commands" {
                (csrf(&viewer))
                label { "Devices " input name="devices" value="all" placeholder="all, or 12, 14"; } " "
                button type="submit" name="command" value="lock_screens" { "Eyes on me" } " "
                button type="submit" name="command" value="unlock_screens" { "End eyes on me" } " "
                button type="submit" name="command" value="sign_out_all" { "Sign everyone out" }
            }
            p.muted {
                @if online_now.is_empty() { "No device is online now." }
                @else { "Online now: " @if online_now.len() == 1 { "device " } @else { "devices " } (online_now.join(", ")) "." }
            }
            p { "Eyes on me ends by itself after " (LOCK_FOR.num_minutes()) " minutes." }
            @if !viewer.may(Permission::CommandAnyDevice) {
                p.muted { "Your commands reach the devices your classes' pupils are signed in on: \"all\" means those." }
            }
            (commands_table(&recent))
        },
    ))
}

/// What a command is called on the page (the wire's names are for devices, not people).
pub fn command_label(action: CommandAction) -> &'static str {
    match action {
        CommandAction::LockScreens => "Eyes on me",
        CommandAction::UnlockScreens => "End eyes on me",
        CommandAction::SignOutAll => "Sign everyone out",
        CommandAction::RefreshPolicy => "Fetch the changed policy",
        CommandAction::TestButton => "Test the button",
        CommandAction::CheckFilter => "Filter check",
        CommandAction::SshAccess => "Root ssh (IT)",
    }
}

/// A stored command's label; one this server does not know stays as stored.
fn stored_command_label(action: &str) -> &str {
    const ALL: [CommandAction; 7] = [
        CommandAction::LockScreens,
        CommandAction::UnlockScreens,
        CommandAction::SignOutAll,
        CommandAction::RefreshPolicy,
        CommandAction::TestButton,
        CommandAction::CheckFilter,
        CommandAction::SshAccess,
    ];
    ALL.into_iter().find(|a| a.as_str() == action).map_or(action, |a| command_label(a))
}

fn commands_table(recent: &[CommandRecord]) -> Markup {
    use crate::uk_time::format_uk;
    html! {
        table {
            tr { th { "Sent" } th { "Devices" } th { "Command" } th { "Until" } th { "By" } }
            @for c in recent {
                tr {
                    td { (format_uk(c.issued_at)) }
                    td { @match c.device { Some(d) => { (d) }, None => { "all" } } }
                    td { (stored_command_label(&c.action)) } td { (format_uk(c.expires_at)) } td { (c.issued_by) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CommandForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    devices: String,
    #[serde(default)]
    command: String,
}

/// `POST /commands`: queued, audited, and the devices' long polls woken.
pub async fn send_command(
    staff: Staff,
    State(state): State<AppState>,
    body: Result<Form<CommandForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let devices = parse_devices(&f.devices).map_err(PageError::BadForm)?;
    let (action, valid_for) = parse_command(&f.command).map_err(PageError::BadForm)?;
    let reach = if staff.may(Permission::CommandAnyDevice) {
        None
    } else {
        let teacher = staff.actor.clone();
        Some(state.store.run(move |store| store.teacher_devices(&teacher)).await?)
    };
    let targets = command_targets(devices, reach.as_deref()).map_err(PageError::BadForm)?;
    let record = match targets.as_slice() {
        [None] => "all devices".to_owned(),
        list => list.iter().flatten().map(|d| format!("device {d}")).collect::<Vec<_>>().join(", "),
    };
    let by = staff.actor.clone();
    state
        .store
        .run(move |store| {
            let now = Utc::now();
            for device in targets {
                store.queue_command(device, action, now, now + valid_for, &by)?;
            }
            Ok(())
        })
        .await?;
    let said = format!("sent {} ({})", command_label(action), action.as_str());
    staff.audit(&state, &said, Some(record)).await?;
    state.commands_changed();
    Ok(Redirect::to("/commands"))
}

#[derive(Deserialize)]
pub struct TestButtonForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /devices/{number}/test-button`: the device's next press, for [`BUTTON_TEST_FOR`], is a
/// test: it lights the LED and says "button works" on the fleet page; no report, no incident.
/// Whoever sees the fleet may test any device; a teacher, the devices their classes' pupils are
/// signed in on. Audited.
pub async fn test_button(
    staff: Staff,
    State(state): State<AppState>,
    Path(number): Path<String>,
    body: Result<Form<TestButtonForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let f = form(body)?;
    staff.check_csrf(&f.csrf)?;
    let device = crate::http::forms::parse_device(&number).map_err(PageError::BadForm)?;
    let any = staff.may(Permission::CommandAnyDevice) || staff.may(Permission::ViewFleet);
    if !any {
        let teacher = staff.actor.clone();
        let reach = state.store.run(move |store| store.teacher_devices(&teacher)).await?;
        command_targets(Some(vec![device]), Some(&reach)).map_err(PageError::BadForm)?;
    }
    let by = staff.actor.clone();
    state
        .store
        .run(move |store| {
            let now = Utc::now();
            store.queue_command(
                Some(device),
                CommandAction::TestButton,
                now,
                now + BUTTON_TEST_FOR,
                &by,
            )
        })
        .await?;
    staff
        .audit(&state, "started a button test (test_button)", Some(format!("device {device}")))
        .await?;
    state.commands_changed();
    Ok(Redirect::to(&if staff.may(Permission::ViewFleet) {
        format!("/fleet#device-{device}")
    } else {
        format!("/devices/{device}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_devices_and_an_action() {
        assert_eq!(parse_devices("All").unwrap(), None);
        assert_eq!(parse_devices("12, 14").unwrap().unwrap().len(), 2);
        assert!(parse_devices("12, 0").unwrap_err().contains("\"0\""));
        assert!(parse_devices("").is_err());
        assert_eq!(parse_command("lock_screens").unwrap(), (CommandAction::LockScreens, LOCK_FOR));
        assert_eq!(parse_command("sign_out_all").unwrap().1, SIGN_OUT_FOR);
        assert!(parse_command("format").is_err());
    }

    #[test]
    fn a_teachers_commands_reach_their_classes_devices_only() {
        let d = |n| DeviceNumber::new(n).unwrap();
        let mine = vec![d(12), d(14)];
        type Case =
            (Option<Vec<DeviceNumber>>, Option<Vec<DeviceNumber>>, Result<usize, &'static str>);
        let cases: [Case; 6] = [
            (None, None, Ok(1)),
            (Some(vec![d(3), d(4)]), None, Ok(2)),
            (None, Some(mine.clone()), Ok(2)),
            (Some(vec![d(14)]), Some(mine.clone()), Ok(1)),
            (Some(vec![d(14), d(15)]), Some(mine.clone()), Err("device 15")),
            (None, Some(vec![]), Err("None of your classes")),
        ];
        for (asked, reach, expected) in cases {
            let got = command_targets(asked.clone(), reach.as_deref());
            match (got, expected) {
                (Ok(targets), Ok(n)) => assert_eq!(targets.len(), n, "{asked:?} {reach:?}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
                (got, _) => panic!("{asked:?} {reach:?}: {got:?}, expected {expected:?}"),
            }
        }
        let all_mine = command_targets(None, Some(&mine)).unwrap();
        assert_eq!(all_mine, [Some(d(12)), Some(d(14))], "'all' from a teacher is each of theirs");
    }

    #[test]
    fn every_command_has_a_label_for_people() {
        let cases = [
            ("lock_screens", "Eyes on me"),
            ("unlock_screens", "End eyes on me"),
            ("sign_out_all", "Sign everyone out"),
            ("refresh_policy", "Fetch the changed policy"),
            ("test_button", "Test the button"),
            ("check_filter", "Filter check"),
            ("from_a_newer_server", "from_a_newer_server"),
        ];
        for (stored, label) in cases {
            assert_eq!(stored_command_label(stored), label);
        }
        let page = commands_table(&[CommandRecord {
            id: 1,
            device: None,
            action: "lock_screens".into(),
            issued_at: "2026-06-23T09:14:00Z".parse().unwrap(),
            expires_at: "2026-06-23T09:24:00Z".parse().unwrap(),
            issued_by: "t.smith".into(),
        }])
        .into_string();
        assert!(page.contains("Eyes on me") && !page.contains("lock_screens"), "{page}");
        assert!(page.contains("2026-06-23 10:14 BST"), "{page}");
    }
}
