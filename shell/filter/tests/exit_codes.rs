//! slate-dns's exit statuses: 78 (`EX_CONFIG`) for a flag it refuses, which its unit does not
//! restart; 2 for a command line clap cannot parse; `--version` answers.

use std::process::Command;

const SLATE_DNS: &str = env!("CARGO_BIN_EXE_slate-dns");

#[test]
fn a_refused_flag_is_ex_config_and_bad_usage_is_2() {
    let out = Command::new(SLATE_DNS)
        .args(["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--public-key", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--public-key") && !stderr.contains('\u{1b}'), "{stderr}");
    assert!(out.stdout.is_empty(), "logs go to stderr: {out:?}");

    let out = Command::new(SLATE_DNS).args(["--listen", "not an address"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = Command::new(SLATE_DNS).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("slate-dns "), "{out:?}");
}
