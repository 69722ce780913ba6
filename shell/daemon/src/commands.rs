//! Teacher commands ("eyes on me", sign everyone out, refresh the policy), long-polled from
//! `GET /api/v1/device/commands`. Owns the poll loop and its cursor (persisted in
//! `<state_dir>/commands.cursor` so a command is acted on once across restarts); the decision of
//! which commands still count is pure ([`live_actions`]). Must not change device state itself:
//! actions go to the daemon's core task.

use crate::credential;
use crate::policy::{write_atomic, DeviceApi};
use chrono::{DateTime, Utc};
use slate_protocol::device::{
    CommandAction, CommandsReply, DeviceCommand, CAN_CHECK_FILTER, CAN_SSH_ACCESS, CAN_TEST_BUTTON,
};
use slate_protocol::routes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How long the server is asked to hold a poll open.
pub const WAIT_S: u32 = 25;
pub const CURSOR_FILE: &str = "commands.cursor";
const MAX_REPLY_BYTES: u64 = 256 * 1024;

/// The commands to carry out from a reply at `now`, in order: expired ones are dropped (a device
/// that was off for the day is not locked by yesterday's "eyes on me"). Pure.
pub fn live_commands(reply: &CommandsReply, now: DateTime<Utc>) -> Vec<DeviceCommand> {
    reply.commands.iter().filter(|c| c.is_live(now)).cloned().collect()
}

/// The poll's path and query for `cursor`; `can_test` says this device understands the newer
/// actions, the button test, the filter check and timed root ssh (left out for a server older than the button
/// test, which refuses a query it does not know; a server that knows only the button test
/// ignores the name it does not know).
pub fn poll_path(cursor: u64, can_test: bool) -> String {
    let can = if can_test {
        format!("&can={CAN_TEST_BUTTON},{CAN_CHECK_FILTER},{CAN_SSH_ACCESS}")
    } else {
        String::new()
    };
    format!("{}?after={cursor}&wait_s={WAIT_S}{can}", routes::DEVICE_COMMANDS)
}

/// The cursor saved last time; 0 when none (or unreadable: the server then sends what is
/// pending, and expired commands are ignored anyway).
pub fn load_cursor(state_dir: &Path) -> u64 {
    std::fs::read_to_string(state_dir.join(CURSOR_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls until the task is aborted. Live commands go to `actions`; `refresh_policy` wakes the
/// policy fetcher through `refresh` instead.
pub async fn run<A: DeviceApi>(
    api: A,
    state_dir: PathBuf,
    actions: mpsc::Sender<DeviceCommand>,
    refresh: Arc<Notify>,
) {
    let mut cursor = load_cursor(&state_dir);
    let mut failures: u32 = 0;
    // Until a server refuses the query as it is (400: older than the button test).
    let mut can_test = true;
    loop {
        let dir = state_dir.clone();
        let credential = match tokio::task::spawn_blocking(move || credential::load(&dir)).await {
            Ok(Ok(Some(c))) => c,
            _ => {
                // Not enrolled yet: the uploader is on it.
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let timeout = Duration::from_secs(u64::from(WAIT_S) + 15);
        let answer =
            api.get(&credential, &poll_path(cursor, can_test), timeout, MAX_REPLY_BYTES).await;
        if can_test && matches!(&answer, Ok(a) if a.status == 400) {
            tracing::info!("the server predates the button test: polling without it");
            can_test = false;
            continue;
        }
        let reply = match answer {
            Ok(a) if a.status == 200 => {
                CommandsReply::from_json(&a.body).map_err(|e| e.to_string())
            }
            Ok(a) => Err(format!("HTTP {}", a.status)),
            Err(e) => Err(e.to_string()),
        };
        match reply {
            Ok(reply) => {
                failures = 0;
                let live = live_commands(&reply, Utc::now());
                let expired = reply.commands.len() - live.len();
                for command in live {
                    tracing::info!(action = command.action.as_str(), "teacher command");
                    if command.action == CommandAction::RefreshPolicy {
                        refresh.notify_one();
                    } else if actions.send(command).await.is_err() {
                        return;
                    }
                }
                if expired > 0 {
                    tracing::info!(expired, "expired teacher commands ignored");
                }
                if reply.cursor != cursor {
                    cursor = reply.cursor;
                    let path = state_dir.join(CURSOR_FILE);
                    let text = format!("{cursor}\n");
                    match tokio::task::spawn_blocking(move || write_atomic(&path, text.as_bytes()))
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "commands cursor not saved"),
                        Err(e) => tracing::error!(error = %e, "commands cursor not saved"),
                    }
                }
            }
            Err(reason) => {
                let wait = crate::upload::backoff(
                    failures,
                    Duration::from_secs(1),
                    Duration::from_secs(30),
                    0.5,
                );
                failures = failures.saturating_add(1);
                tracing::debug!(%reason, retry_in_ms = wait.as_millis() as u64, "commands poll failed");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slate_protocol::device::DeviceCommand;

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-11-23T{s}Z").parse().unwrap()
    }

    fn cmd(id: u64, expires: &str, action: CommandAction) -> DeviceCommand {
        DeviceCommand::new(id, t("10:00:00"), t(expires), action)
    }

    #[test]
    fn expired_commands_are_ignored_and_order_is_kept() {
        use CommandAction::*;
        let reply = CommandsReply::new(
            vec![
                cmd(1, "10:10:00", LockScreens),
                cmd(2, "10:05:00", SignOutAll),
                cmd(3, "10:20:00", UnlockScreens),
                cmd(4, "10:06:00", RefreshPolicy),
            ],
            4,
        );
        let cases = [
            ("10:04:59", vec![LockScreens, SignOutAll, UnlockScreens, RefreshPolicy]),
            ("10:05:00", vec![LockScreens, UnlockScreens, RefreshPolicy]),
            ("10:10:00", vec![UnlockScreens]),
            ("10:20:00", vec![]),
        ];
        for (now, want) in cases {
            let got: Vec<_> = live_commands(&reply, t(now)).iter().map(|c| c.action).collect();
            assert_eq!(got, want, "at {now}");
        }
    }

    /// A server older than the button test: 400 to a poll that says `can`, else one command.
    #[derive(Clone, Default)]
    struct OldServer {
        asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl DeviceApi for OldServer {
        async fn get(
            &self,
            _credential: &crate::credential::Credential,
            path: &str,
            _timeout: Duration,
            _max_bytes: u64,
        ) -> Result<crate::upload::HttpAnswer, crate::upload::UploadError> {
            self.asked.lock().unwrap().push(path.to_owned());
            if path.contains("can=") {
                return Ok(crate::upload::HttpAnswer { status: 400, body: b"{}".to_vec() });
            }
            let command = DeviceCommand {
                id: 1,
                issued_at: Utc::now(),
                expires_at: Utc::now() + chrono::Duration::minutes(10),
                action: CommandAction::LockScreens,
                check_names: Vec::new(),
                ssh_access: None,
            };
            let body = serde_json::to_vec(&CommandsReply::new(vec![command], 1)).unwrap();
            Ok(crate::upload::HttpAnswer { status: 200, body })
        }
    }

    #[tokio::test]
    async fn a_server_older_than_the_button_test_is_polled_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let credential = crate::credential::Credential::new("c-test").unwrap();
        crate::credential::store(dir.path(), &credential).unwrap();
        let api = OldServer::default();
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(run(api.clone(), dir.path().to_owned(), tx, Arc::default()));
        let command = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap();
        task.abort();
        assert_eq!(command.unwrap().action, CommandAction::LockScreens);
        let asked = api.asked.lock().unwrap().clone();
        assert_eq!(asked[..2], [poll_path(0, true), poll_path(0, false)]);
    }

    #[test]
    fn the_cursor_survives_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_cursor(dir.path()), 0);
        write_atomic(&dir.path().join(CURSOR_FILE), b"42\n").unwrap();
        assert_eq!(load_cursor(dir.path()), 42);
        std::fs::write(dir.path().join(CURSOR_FILE), b"garbage").unwrap();
        assert_eq!(load_cursor(dir.path()), 0);
        assert_eq!(poll_path(42, false), "/api/v1/device/commands?after=42&wait_s=25");
        assert_eq!(
            poll_path(7, true),
            "/api/v1/device/commands?after=7&wait_s=25&can=test_button,check_filter,ssh_access"
        );
    }
}
