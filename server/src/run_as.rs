//! Every command that touches the data directory runs as the directory's owner, the service
//! user (`slate-server` in the Debian package), whoever calls it: root becomes that user
//! (supplementary groups, group, then user) before the directory is touched, so `sudo
//! slate-server staff add …` never leaves a file the service cannot read; anyone else who is not
//! the owner is refused with a message saying who to run it as. A directory that does not
//! exist yet is made by the caller, as before (a developer's or the demo's).
//!
//! [`decide`] is pure; [`run_as_owner`] looks at the directory and carries the decision out.
//! Inputs named on the command line (a roster CSV, the config file) are read before, as the
//! caller.

use nix::unistd::{Gid, Uid, User};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a command does about who it runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The caller owns the directory, or it does not exist yet.
    AsCaller,
    /// Root, for a directory another user owns: become that user first.
    Become { uid: u32, gid: u32 },
    /// Neither root nor the owner.
    Refuse { owner: u32 },
}

/// `owner` is the directory's (uid, gid), `None` when it does not exist.
pub fn decide(caller: u32, owner: Option<(u32, u32)>) -> Decision {
    match owner {
        None => Decision::AsCaller,
        Some((uid, _)) if uid == caller => Decision::AsCaller,
        Some((uid, gid)) if caller == 0 => Decision::Become { uid, gid },
        Some((uid, _)) => Decision::Refuse { owner: uid },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunAsError {
    #[error(
        "{dir} belongs to the user {owner}, the server's: run this as {owner} or as root \
         (`sudo slate-server …` acts as {owner}), not as {caller}"
    )]
    NotOwner { dir: PathBuf, owner: String, caller: String },
    #[error("cannot look at {dir}: {source}")]
    Stat { dir: PathBuf, source: io::Error },
    #[error("cannot become the user {owner}, who owns {dir}: {source}")]
    Switch { dir: PathBuf, owner: String, source: nix::Error },
}

/// Looks at `dir` and acts on [`decide`]: returns once this process runs as the directory's
/// owner (or the directory does not exist yet), or refuses.
pub fn run_as_owner(dir: &Path) -> Result<Decision, RunAsError> {
    let owner = match std::fs::metadata(dir) {
        Ok(meta) => Some((meta.uid(), meta.gid())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            // Not allowed to look (a private parent): say whom to ask rather than "denied".
            return Err(RunAsError::Stat { dir: dir.to_owned(), source });
        }
    };
    let caller = Uid::current().as_raw();
    let decision = decide(caller, owner);
    match decision {
        Decision::AsCaller => {}
        Decision::Become { uid, gid } => {
            // setgroups, setgid and setuid in glibc apply to every thread of the process.
            let switch = || -> nix::Result<()> {
                nix::unistd::setgroups(&[Gid::from_raw(gid)])?;
                nix::unistd::setgid(Gid::from_raw(gid))?;
                nix::unistd::setuid(Uid::from_raw(uid))
            };
            switch().map_err(|source| RunAsError::Switch {
                dir: dir.to_owned(),
                owner: user_name(uid),
                source,
            })?;
            tracing::debug!(uid, gid, "running as the data directory's owner");
        }
        Decision::Refuse { owner } => {
            return Err(RunAsError::NotOwner {
                dir: dir.to_owned(),
                owner: user_name(owner),
                caller: user_name(caller),
            });
        }
    }
    Ok(decision)
}

fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_becomes_the_owner_the_owner_stays_anyone_else_is_refused() {
        let cases = [
            (0, None, Decision::AsCaller),
            (1000, None, Decision::AsCaller),
            (0, Some((0, 0)), Decision::AsCaller),
            (0, Some((998, 997)), Decision::Become { uid: 998, gid: 997 }),
            (998, Some((998, 997)), Decision::AsCaller),
            (1000, Some((998, 997)), Decision::Refuse { owner: 998 }),
            (1000, Some((0, 0)), Decision::Refuse { owner: 0 }),
        ];
        for (caller, owner, expected) in cases {
            assert_eq!(decide(caller, owner), expected, "{caller} {owner:?}");
        }
    }
}
