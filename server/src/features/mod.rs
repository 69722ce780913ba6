//! The server by feature: one module per thing staff or devices do, each with its own
//! `routes()`, its handlers and its pages (a feature with big pages keeps them in `views.rs`).
//! `crate::http::router` merges the routes.
//!
//! Architecture invariant: no feature imports another. A feature uses `crate::http` (state,
//! errors, who is asking, forms, the page frame), `store` and the pure rules (`auth`,
//! `incident`, `device_policy`, ...); what two features need goes into one of those. The test
//! below reads the sources and fails on any import between features.

pub mod agreements;
pub mod alert_settings;
pub mod audit;
pub mod block_requests;
pub mod bypasses;
pub mod commands;
pub mod device_api;
pub mod device_numbers;
pub mod devices;
pub mod filter_checks;
pub mod filtering_log;
pub mod governors;
pub mod incidents;
pub mod languages;
pub mod pupils;
pub mod record_incident;
pub mod recovery;
pub mod setup;
pub mod sign_in;
pub mod ssh_access;
pub mod staff_accounts;
pub mod updates;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, with the feature it belongs to (its file or folder name).
    fn sources(dir: &Path) -> Vec<(String, PathBuf)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                for inner in std::fs::read_dir(&path).unwrap() {
                    let inner = inner.unwrap().path();
                    if inner.extension().is_some_and(|e| e == "rs") {
                        found.push((name.clone(), inner));
                    }
                }
            } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" {
                found.push((name, path));
            }
        }
        found
    }

    /// Why a line of feature `feature`'s file reaches another feature, if it does: it names
    /// `features::` (by `crate::`, or `super::` from a folder), or climbs out of its feature with
    /// `super::` (from a one-file feature anything but its tests' `use super::*;`).
    fn crossing(feature_is_folder: bool, line: &str) -> Option<&'static str> {
        let code = line.split("//").next().unwrap_or("");
        if code.contains("features::") || (code.contains("crate::{") && code.contains("features")) {
            return Some("names crate::features");
        }
        if code.contains("super::super") {
            return Some("climbs out of its feature with super::super");
        }
        if !feature_is_folder && code.contains("super::") && code.trim() != "use super::*;" {
            return Some("reaches features/mod.rs with super::");
        }
        None
    }

    #[test]
    fn no_feature_imports_another() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let features = sources(&root.join("features"));
        assert!(features.len() >= 9, "found {features:?}");
        let mut crossings = Vec::new();
        for (feature, path) in &features {
            let folder = path.parent().unwrap().file_name().unwrap() == feature.as_str();
            let text = std::fs::read_to_string(path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if let Some(why) = crossing(folder, line) {
                    crossings.push(format!("{}:{}: {why}: {line}", path.display(), n + 1));
                }
            }
        }
        // The core serves every feature, so it may not lean on one (only the router, in
        // http/mod.rs, names them).
        for name in ["error", "forms", "layout", "staff"] {
            let path = root.join("http").join(format!("{name}.rs"));
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if crossing(true, line).is_some() {
                    crossings.push(format!(
                        "{}:{}: the core names a feature: {line}",
                        path.display(),
                        n + 1
                    ));
                }
            }
        }
        assert!(crossings.is_empty(), "imports between features:\n{}", crossings.join("\n"));
    }

    #[test]
    fn the_check_sees_each_way_of_crossing() {
        assert!(crossing(false, "use crate::features::devices::parse_device;").is_some());
        assert!(crossing(false, "use crate::{auth, features::devices};").is_some());
        assert!(crossing(false, "    let x = crate::features::setup::MAX_LIST_BYTES;").is_some());
        assert!(crossing(false, "use super::devices;").is_some());
        assert!(crossing(true, "use super::super::devices;").is_some());
        assert!(crossing(true, "use super::views;").is_none(), "a folder's own files");
        assert!(crossing(false, "    use super::*;").is_none(), "a test module's own feature");
        assert!(crossing(false, "use crate::http::forms::parse_time;").is_none());
        assert!(crossing(false, "// see features::devices").is_none(), "comments are not imports");
    }
}
