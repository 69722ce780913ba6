//! Wire compatibility: a device of the previous release keeps working against this server. The
//! previous release's own `slated` and `slatectl` (built from the commit `tests/previous-release`
//! names, by `scripts/previous-release`; `SLATE_PREVIOUS_BIN` is their directory) run with a
//! `slate.toml` as that release's cards carry it, against this workspace's `slate-server` on
//! loopback over HTTPS, through a school's day: enrollment, the signed kiosk, filter and staff
//! policies with every optional thing a school can put in them, a pupil's session, a report
//! that reaches the DSL's incident page exactly once, the staff unlock with a PIN from the
//! server, a teacher's "eyes on me" and a policy change through the commands poll, heartbeats
//! and an update check on the fleet page, and a report after all that (through a server restart).
//!
//! Each step that fails says which step it was, what the device logged and what the server
//! sends this device, so a change to the wire that breaks old devices names itself.
//! Outside `scripts/test` without `SLATE_PREVIOUS_BIN` the test says why it does not run;
//! under `scripts/test` (which sets both) it always runs.

use slate_e2e::{Device, Server, PATIENCE};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The directory holding the previous release's `slated` and `slatectl` (scripts/test sets it).
const PREVIOUS_BIN_ENV: &str = "SLATE_PREVIOUS_BIN";
/// Set by scripts/test: there the test must run, never skip.
const UNDER_SCRIPTS_TEST_ENV: &str = "SLATE_UNDER_SCRIPTS_TEST";

/// The image version the old device says it runs (as that day's update bundles were named).
const OLD_IMAGE_VERSION: &str = "0.1.0+202612070328.044d42a35e";
/// A DSL's own unlock PIN, set on the server: it reaches the device only in the signed staff
/// document (the device's own `slate.toml` has no PIN).
const DSL_UNLOCK_PIN: &str = "730514";
/// Two pupils who share a first name and initial (so the policy carries sign-in labels) and one
/// who will have a picture PIN.
const ROSTER: &str = "class,first_name,last_name,key_stage\n\
                      Oak,Amira,Khan,ks1\nOak,Amira,Kirby,ks1\nOak,Leo,Grant,ks1\n";
const AGREEMENT: &str = "Our Oak class promise\n- We ask before we tap.\n- We tell a grown-up.\n";

/// The previous release's binaries, or `None` (and why, printed) when the test does not run.
fn previous_binaries() -> Option<PathBuf> {
    match std::env::var_os(PREVIOUS_BIN_ENV) {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os(UNDER_SCRIPTS_TEST_ENV).is_some() => panic!(
            "{PREVIOUS_BIN_ENV} is not set under scripts/test: it must build the previous \
             release (scripts/previous-release) and pass its directory"
        ),
        None => {
            eprintln!(
                "SKIPPED: the previous release's device against this server needs its binaries: \
                 run scripts/test, or `{PREVIOUS_BIN_ENV}=$(scripts/previous-release) cargo test \
                 -p slate-e2e --test previous_release`"
            );
            None
        }
    }
}

/// The `slate.toml` of a card of the previous release: only fields that release knows (the
/// format is the device's, so it is written here, never by this workspace's harness). No staff
/// PIN: unlocking needs the server's signed staff document.
fn old_card_config(dir: &Path, server: &Server, token: &str) -> String {
    let certificate = server.certificate.as_ref().expect("the server serves HTTPS");
    let key = server.policy_key.as_ref().expect("the server prints its policy key");
    format!(
        "device_number = 12\nschool = \"Test Primary\"\nstate_dir = {state:?}\n\
         control_socket = {socket:?}\n\n\
         [server]\nurl = {url:?}\nca_certificate = {certificate:?}\nenrollment_token = {token:?}\n\
         public_key = {key:?}\n\
         # Long: a policy change must reach the device through the commands poll.\n\
         policy_refresh_s = 86400\n\n\
         [upload]\nretry_min_ms = 50\nretry_max_ms = 200\nheartbeat_s = 5\n\n\
         [button]\nsource = \"none\"\n",
        state = dir.join("state"),
        socket = dir.join("control.sock"),
        url = server.url,
    )
}

/// What a failed step shows of the server's side.
#[derive(Clone, Copy)]
enum Shows {
    /// `GET /api/v1/device/policy` as this device gets it, each signed payload opened.
    Policy,
    /// `GET /api/v1/device/commands?after=0&wait_s=0` as this device gets it.
    Commands,
    /// The reports the server holds (staff JSON API).
    Reports,
    /// Device 12's row on the fleet page.
    Fleet,
    /// Nothing: the server is down for this step.
    Nothing,
}

/// The old device and the new server, and the steps between them.
struct School {
    server: Server,
    device: Device,
}

impl School {
    /// Runs `check` until it passes (or [`PATIENCE`] is up): a step of the day. On failure the
    /// message names the step, why it failed, what the server sends and the device's log.
    fn step<T>(
        &mut self,
        name: &str,
        shows: Shows,
        mut check: impl FnMut(&School) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if !self.device.is_running() {
                self.fail(name, "the previous release's slated exited", shows);
            }
            match check(self) {
                Ok(value) => return value,
                Err(why) if Instant::now() >= deadline => self.fail(name, &why, shows),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn fail(&self, name: &str, why: &str, shows: Shows) -> ! {
        let log = self.device.log_text();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "previous release's device against this server: step `{name}` failed: {why}\n\
             --- what the server sends this device ---\n{}\n\
             --- the previous release's slated log (last 60 lines) ---\n{}",
            self.server_side(shows),
            tail.join("\n")
        )
    }

    /// The device's credential, as it stored it at enrollment.
    fn credential(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.device.dir.join("state/credential")).ok()?;
        Some(text.trim().to_owned())
    }

    /// A device API request with this device's credential: status and body as text.
    fn device_get(&self, path: &str) -> Result<(u16, String), String> {
        let credential = self.credential().ok_or("the device has no credential (not enrolled)")?;
        let response = self
            .server
            .client()
            .get(format!("{}{path}", self.server.url))
            .bearer_auth(credential)
            .send()
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().map_err(|e| format!("GET {path}: {e}"))?))
    }

    fn server_side(&self, shows: Shows) -> String {
        // The staff pages' helpers panic when the server does not answer: that is said here,
        // and the step's own failure still gets reported.
        let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ask(shows)));
        asked
            .unwrap_or_else(|_| Err("the server did not answer".to_owned()))
            .unwrap_or_else(|e| format!("(could not ask: {e})"))
    }

    fn ask(&self, shows: Shows) -> Result<String, String> {
        match shows {
            Shows::Policy => self
                .device_get("/api/v1/device/policy")
                .map(|(status, body)| format!("HTTP {status}\n{}", open_policy_reply(&body))),
            Shows::Commands => self
                .device_get("/api/v1/device/commands?after=0&wait_s=0")
                .map(|(status, body)| format!("HTTP {status}\n{body}")),
            Shows::Reports => Ok(format!("{:#?}", self.server.reports())),
            Shows::Fleet => Ok(fleet_row(&self.server.staff_page("/fleet"), 12)
                .unwrap_or_else(|| "no row for device 12 on /fleet".to_owned())),
            Shows::Nothing => Ok("(not asked: the server is down in this step)".to_owned()),
        }
    }

    /// `slatectl --json status` of the old device.
    fn status(&self) -> Result<serde_json::Value, String> {
        let out = self.device.try_ctl(&["--json", "status"])?;
        serde_json::from_str(&out).map_err(|e| format!("status is not JSON ({e}): {out}"))
    }

    /// A staff form sent, expecting the redirect that means it was taken.
    fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) {
        let (status, body) = self.server.submit_answer(page, action, fields);
        assert_eq!(
            status, 303,
            "setting up the school: {action} {fields:?} answered {status}:\n{body}"
        );
    }
}

/// A policy reply with each signed payload shown as its text (the payload is what a device
/// parses, field by field).
fn open_policy_reply(body: &str) -> String {
    let Ok(reply) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    let mut shown = String::new();
    for which in ["kiosk", "filter", "staff"] {
        let bundle = &reply[which];
        let payload = bundle["payload"].as_str().unwrap_or("(no payload)");
        let other: Vec<&String> = bundle
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "payload").collect())
            .unwrap_or_default();
        shown += &format!("{which} (bundle fields besides payload: {other:?}):\n{payload}\n");
    }
    let top: Vec<&String> = reply.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    format!("reply fields: {top:?}\n{shown}")
}

/// Device `number`'s row on the fleet page, as HTML.
fn fleet_row(page: &str, number: u16) -> Option<String> {
    let start = page.find(&format!(r#"<tr id="device-{number}">"#))?;
    let end = page[start..].find("</tr>").map_or(page.len(), |e| start + e);
    Some(page[start..end].to_owned())
}

/// The payload of the signed bundle `which` in a policy reply, as the server sends it now.
fn served_payload(body: &str, which: &str) -> Result<serde_json::Value, String> {
    let reply: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("the policy reply is not JSON: {e}"))?;
    let payload = reply[which]["payload"].as_str().ok_or(format!("no {which} payload"))?;
    serde_json::from_str(payload).map_err(|e| format!("the {which} payload is not JSON: {e}"))
}

/// The payload of the signed bundle `which` the old device installed.
fn installed_payload(device: &Device, which: &str) -> Result<serde_json::Value, String> {
    let path = device.dir.join("state/policy").join(format!("{which}.json"));
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{} not installed: {e}", path.display()))?;
    let bundle: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{which}.json: {e}"))?;
    let payload = bundle["payload"].as_str().ok_or(format!("{which}.json has no payload"))?;
    serde_json::from_str(payload).map_err(|e| format!("{which}.json's payload: {e}"))
}

/// Whether the device has installed exactly the kiosk and filter policies the server sends it
/// now (and the staff document, which only slated reads), every list file the filter names.
fn policy_in_force(school: &School) -> Result<(), String> {
    let (status, body) = school.device_get("/api/v1/device/policy")?;
    if status != 200 {
        return Err(format!("the server answered the policy request with HTTP {status}"));
    }
    for which in ["kiosk", "filter"] {
        let (served, installed) =
            (served_payload(&body, which)?, installed_payload(&school.device, which)?);
        if served != installed {
            return Err(format!(
                "the device's {which} policy is not the one the server sends (refused?); \
                 installed: {installed}"
            ));
        }
    }
    let staff = school.device.dir.join("state/staff.json");
    if !staff.exists() {
        return Err("the signed staff document (unlock PINs) is not installed".to_owned());
    }
    let filter = served_payload(&body, "filter")?;
    let lists = filter["lists"].as_object().ok_or("the filter policy names no lists")?;
    for (name, file) in lists {
        let sha = file["sha256"].as_str().ok_or(format!("list {name} has no sha256"))?;
        let path = school.device.dir.join(format!("state/policy/lists/{sha}.txt"));
        if !path.exists() {
            return Err(format!("list {name} ({sha}) not fetched and installed"));
        }
    }
    Ok(())
}

#[test]
fn a_device_of_the_previous_release_goes_through_a_school_day_with_this_server() {
    let Some(binaries) = previous_binaries() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("server"), true);

    // A school using everything a policy can carry today: its classes and pupils (two who need
    // sign-in labels), a picture PIN, an app for the class, session rules, a block list and
    // the class's filter profile, its own acceptable use agreement (left out for this device,
    // which does not ask for it), a DSL's unlock PIN.
    let dir = tmp.path().join("device");
    std::fs::create_dir_all(&dir).unwrap();
    let device = Device::of_release(&dir, &binaries);
    let mut school = School { server, device };
    let roster = tmp.path().join("roster.csv");
    std::fs::write(&roster, ROSTER).unwrap();
    school.server.cli(&["roster", "import", roster.to_str().unwrap()]);
    let app = [
        ("id", "maths"),
        ("title", "Maths"),
        ("symbol", "star"),
        ("colour", "2"),
        ("kind", "web"),
        ("start_url", "https://maths.example/start"),
        ("sites", "https://maths.example/"),
        ("command", ""),
    ];
    school.submit("/setup", "/setup/app", &app);
    school.submit("/setup", "/setup/class-apps", &[("class", "Oak"), ("apps", "maths")]);
    school.submit(
        "/setup",
        "/setup/sessions",
        &[("idle_minutes", "20"), ("lesson_ends", "10:30, 12:00")],
    );
    let list = [("name", "adult"), ("contents", "blocked.example\r\n*.worse.example")];
    school.submit("/setup", "/setup/list", &list);
    let profile =
        [("name", "oak"), ("block_lists", "adult"), ("allow_only", ""), ("safe_search", "strict")];
    school.submit("/setup", "/setup/profile", &profile);
    school.submit("/agreements", "/agreements/ks1", &[("text", AGREEMENT), ("action", "save")]);
    let pin = [("pin", DSL_UNLOCK_PIN), ("confirm", DSL_UNLOCK_PIN)];
    school.submit("/staff/account", "/staff/account/pin", &pin);

    // The card as the previous release's IT wrote it, and the image version it runs.
    let token = school.server.enrollment_token(12);
    std::fs::write(&school.device.config, old_card_config(&dir, &school.server, &token)).unwrap();
    let release = dir.join("slate-release");
    std::fs::write(&release, format!("SLATE_VERSION={OLD_IMAGE_VERSION}\n")).unwrap();
    // slate_daemon::update's test hooks: the release file, and the first update check after
    // a second instead of minutes.
    school.device.set_env("SLATE_RELEASE_FILE", release.to_str().unwrap());
    school.device.set_env("SLATE_UPDATE_FIRST_CHECK_S", "1");
    school.device.start();

    school.step("enroll with the one-time token", Shows::Policy, |s| {
        let status = s.status()?;
        (status["enrolled"] == true).then_some(()).ok_or(format!("not enrolled: {status}"))
    });
    school.step(
        "fetch and install the signed kiosk, filter and staff policies",
        Shows::Policy,
        policy_in_force,
    );
    let kiosk = installed_payload(&school.device, "kiosk").unwrap();
    let pupils = &kiosk["classes"][0]["pupils"];
    let amira =
        pupils.as_array().into_iter().flatten().find(|p| p["label"] == "Amira Kh.").unwrap_or_else(
            || panic!("Amira Khan with her sign-in label in the kiosk policy: {kiosk}"),
        );
    let amira = amira["id"].as_str().unwrap().to_owned();
    let leo = pupils
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["first_name"] == "Leo")
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("Leo in the kiosk policy: {kiosk}"))
        .to_owned();
    // The school's own agreement goes only to a device that asks with `can=school_agreements`:
    // this one asks with none, so it gets the policy without it and shows its built-in text.
    assert!(kiosk.get("agreements").is_none(), "{kiosk}");

    // A policy change while the device runs: a picture PIN for Leo. Its policy refresh is a
    // day away, so only the server's refresh_policy command on the poll can bring it.
    let before = school.status().unwrap()["policy_issued_at"].clone();
    school.submit(
        "/setup",
        "/setup/picture-pin",
        &[("pupil", &leo), ("pictures", "moon star fish")],
    );
    school.step(
        "take a changed policy (a picture PIN) that the commands poll asks for",
        Shows::Commands,
        |s| {
            let status = s.status()?;
            if status["policy_issued_at"] == before {
                return Err(format!("the policy in force is still the one issued at {before}"));
            }
            policy_in_force(s)
        },
    );
    let kiosk = installed_payload(&school.device, "kiosk").unwrap();
    assert!(kiosk.to_string().contains("picture_pin"), "Leo's picture PIN on the device: {kiosk}");

    // A pupil's session, seen by the server.
    school.step("sign a pupil in", Shows::Policy, |s| {
        s.device.try_ctl(&["sign-in", &amira])?;
        let status = s.status()?;
        (status["pupil"] == amira.as_str()).then_some(()).ok_or(format!("not signed in: {status}"))
    });
    school.step("the session on the DSL's device page", Shows::Reports, |s| {
        let page = s.server.staff_page("/devices/12");
        page.contains("still signed in")
            .then_some(())
            .ok_or("no open session on /devices/12".to_owned())
    });

    // A report: held for staff, on the DSL's incident page, exactly once.
    let url = "https://maths.example/upsetting";
    school
        .device
        .try_ctl(&["foreground", "--app", "maths", "--url", url, "--title", "A page"])
        .unwrap_or_else(|e| school.fail("tell slated the app in front", &e, Shows::Policy));
    let report = school.step("press the report button", Shows::Reports, |s| {
        let out = s.device.try_ctl(&["press"])?;
        out.split_whitespace().last().map(str::to_owned).ok_or(format!("no report id: {out}"))
    });
    school.step("the device held for staff", Shows::Reports, |s| {
        let status = s.status()?;
        (status["state"] == "held").then_some(()).ok_or(format!("not held: {status}"))
    });
    school.step("the report delivered (the spool drained)", Shows::Reports, |s| {
        let status = s.status()?;
        (status["spool_pending"] == 0).then_some(()).ok_or(format!("still spooled: {status}"))
    });
    school.step("the report on the server exactly once", Shows::Reports, |s| {
        let count = s.server.report_count(&report);
        (count == 1).then_some(()).ok_or(format!("report {report} held {count} times"))
    });
    let incident = school.step("the report on the DSL's list", Shows::Reports, |s| {
        let page = s.server.staff_page("/reports");
        let row = page.split("<tr ").find(|row| row.contains(url));
        let row = row.ok_or(format!("no row with {url} on /reports"))?;
        let link = row.split(r#"href="/incidents/"#).nth(1).ok_or("no incident link")?;
        Ok(link.split('"').next().unwrap_or_default().to_owned())
    });
    school.step("the DSL's incident page", Shows::Reports, |s| {
        let page = s.server.staff_page(&format!("/incidents/{incident}"));
        let wanted = ["/devices/12", "Amira Kh.", url, &amira];
        match wanted.iter().find(|w| !page.contains(**w)) {
            None => Ok(()),
            Some(missing) => Err(format!("/incidents/{incident} does not show {missing}:\n{page}")),
        }
    });

    // A member of staff unlocks it with their own PIN, which only the server's staff
    // document carries.
    school.step("unlock with the DSL's PIN from the signed staff document", Shows::Policy, |s| {
        let status = s.status()?;
        if status["staff_pin"] != true {
            return Err(format!("no staff PIN has reached the device: {status}"));
        }
        s.device.try_unlock(DSL_UNLOCK_PIN)?;
        let status = s.status()?;
        (status["state"] != "held").then_some(()).ok_or(format!("still held: {status}"))
    });

    // A teacher's "eyes on me" and its end, through the commands poll.
    let send = |s: &School, command: &str| {
        s.submit("/commands", "/commands", &[("devices", "12"), ("command", command)]);
    };
    send(&school, "lock_screens");
    school.step("a teacher's lock (eyes on me) reaches the device", Shows::Commands, |s| {
        let status = s.status()?;
        (status["screens_locked"] == true).then_some(()).ok_or(format!("not locked: {status}"))
    });
    send(&school, "unlock_screens");
    school.step("a teacher's unlock reaches the device", Shows::Commands, |s| {
        let status = s.status()?;
        (status["screens_locked"] == false).then_some(()).ok_or(format!("still locked: {status}"))
    });

    // Heartbeats and the update check, on the fleet page.
    school.step("heartbeats and the update check on the fleet page", Shows::Fleet, |s| {
        let row = fleet_row(&s.server.staff_page("/fleet"), 12).ok_or("no row for device 12")?;
        // The cells: device, state, last heard from, last heartbeat, ...
        let heartbeat = row.split("<td").nth(4).unwrap_or_default();
        if heartbeat.contains("none yet") {
            return Err("no heartbeat yet".to_owned());
        }
        if !row.contains(OLD_IMAGE_VERSION) {
            return Err(format!("the image version {OLD_IMAGE_VERSION} not reported"));
        }
        Ok(())
    });

    // After all that, the device still files reports: one made while the server is down
    // arrives exactly once when it is back.
    school.server.stop();
    let second = school.step("press again with the server down", Shows::Nothing, |s| {
        let out = s.device.try_ctl(&["press"])?;
        out.split_whitespace().last().map(str::to_owned).ok_or(format!("no report id: {out}"))
    });
    school.server.restart();
    school.step("the second report on the server exactly once", Shows::Reports, |s| {
        let status = s.status()?;
        let count = s.server.report_count(&second);
        (status["spool_pending"] == 0 && count == 1)
            .then_some(())
            .ok_or(format!("report {second} held {count} times; device: {status}"))
    });
    assert_eq!(school.server.report_count(&report), 1, "the first report still once");
    assert!(school.device.is_running(), "the previous release's slated still runs");
}
