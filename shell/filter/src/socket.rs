//! slate-dns's socket for slated, the server side: answers the requests of
//! [`slate_ipc::dns`] (its doc has the protocol). A Unix stream socket (mode 0660, default
//! `/run/slate/dns.sock`); every request is validated, anything else gets
//! `{"ok":false,"error":"…"}` and the connection stays usable.
//!
//! A profile switch is a session boundary: recent names are forgotten and queued block events
//! dropped (see [`FilterHandle::set_profile`]). `reload` re-reads the policy bundle and list
//! files; a bad bundle changes nothing, a refused list file fails closed (see [`crate::source`]),
//! and both answer with an error saying so.

use crate::server::FilterHandle;
use crate::source::{Files, ReloadError, Reloaded};
use slate_ipc::dns::{parse_request, CheckAnswer, Reply, Request, MAX_REQUEST_BYTES};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};

/// How `reload` re-reads the policy: the files on a device; something else in tests.
pub trait Reload: Send + Sync + 'static {
    /// Re-reads and installs; `Err` says what was refused.
    fn reload(&self, handle: &FilterHandle) -> Result<(), String>;
}

impl Reload for Files {
    fn reload(&self, handle: &FilterHandle) -> Result<(), String> {
        reload_answer(Files::reload(self, handle))
    }
}

/// A reload's answer, logged: `Err` says what was refused.
pub fn reload_answer(result: Result<Reloaded, ReloadError>) -> Result<(), String> {
    match result {
        Ok(report) if report.refused.is_empty() => {
            tracing::info!(lists = report.loaded.len(), "policy and lists reloaded");
            Ok(())
        }
        Ok(report) => {
            tracing::error!(
                refused = report.refused.len(),
                kept = report.kept.len(),
                "list files refused on reload"
            );
            Err(report.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the policy in force stays");
            Err(e.to_string())
        }
    }
}

/// Answers one valid request.
pub async fn answer(request: Request, handle: &FilterHandle, reload: &Arc<dyn Reload>) -> Reply {
    match request {
        Request::Recent {} => {
            let names = handle.recent_names().into_iter().map(|(n, _)| n).collect();
            Reply { names: Some(names), ..Reply::ok() }
        }
        Request::Check { name } => {
            let blocked_by = handle.check(&name);
            Reply { check: Some(CheckAnswer { blocked_by }), ..Reply::ok() }
        }
        Request::Profile { profile } => {
            let known = handle.read(|f| match (f.policy(), &profile) {
                (Some(policy), Some(name)) => policy.profiles.contains_key(name),
                _ => true,
            });
            if !known {
                tracing::warn!("profile not in the policy; its default profile is in force");
            }
            handle.set_profile(profile);
            Reply::ok()
        }
        Request::Reload {} => {
            let (reload, handle) = (reload.clone(), handle.clone());
            // Parsing a million-line list takes a while: off the async threads.
            match tokio::task::spawn_blocking(move || reload.reload(&handle)).await {
                Ok(Ok(())) => Reply::ok(),
                Ok(Err(message)) => Reply::error(message),
                Err(_) => Reply::error("reload failed"),
            }
        }
    }
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: UnixListener, handle: FilterHandle, reload: Arc<dyn Reload>) {
    slate_ipc::listen::accept_each(listener, "dns", |stream| {
        tokio::spawn(connection(stream, handle.clone(), reload.clone()));
    })
    .await;
}

/// Serves one connection: a reply for each request line, in order.
async fn connection(stream: UnixStream, handle: FilterHandle, reload: Arc<dyn Reload>) {
    let (read, write) = stream.into_split();
    let too_long = Reply::error(format!("bad request: longer than {MAX_REQUEST_BYTES} bytes"));
    slate_ipc::listen::serve_lines(read, write, MAX_REQUEST_BYTES, too_long.to_line(), |line| {
        let (handle, reload) = (&handle, &reload);
        async move {
            let reply = match parse_request(&line) {
                Ok(request) => answer(request, handle, reload).await,
                Err(message) => Reply::error(message),
            };
            reply.to_line()
        }
    })
    .await;
}
