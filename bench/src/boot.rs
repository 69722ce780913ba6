//! `boot`: how long the SD-card image takes to be ready to report, against plain Debian.
//!
//! Runs `images/test` (QEMU `-M virt`, TCG): it boots the Slate image until slated prints
//! `slated ready`, presses the button through QMP and sees the report reach a real server, then
//! boots the plain Debian image built the same way (same packages, no Slate) to its `login:`
//! prompt. Its last line is `image_boot_to_ready_s=<a> baseline_login_s=<b>`; this bench turns
//! `--runs` of them into `boot_to_ready_s slate=<a> plain=<b> ratio=<a/b>` (medians). Software
//! emulation on a shared machine varies run to run, so the ratio is the figure to compare.
//!
//! It does not build images (that takes 20 minutes or more as root): when one is missing it says
//! how to build it and fails.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One `images/test` run's figures, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootFigures {
    pub slate_s: f64,
    pub plain_s: f64,
}

/// Reads `image_boot_to_ready_s=<a> baseline_login_s=<b>` (images/test's last line). Pure.
pub fn parse_test_line(line: &str) -> anyhow::Result<BootFigures> {
    let mut slate = None;
    let mut plain = None;
    for field in line.split_whitespace() {
        let (key, value) =
            field.split_once('=').with_context(|| format!("`{field}` is not key=value"))?;
        let seconds = || -> anyhow::Result<f64> {
            let v: f64 =
                value.parse().with_context(|| format!("{key}: `{value}` is not a number"))?;
            if !(v.is_finite() && v > 0.0) {
                bail!("{key}: `{value}` is not a positive number of seconds");
            }
            Ok(v)
        };
        match key {
            "image_boot_to_ready_s" => slate = Some(seconds()?),
            "baseline_login_s" => plain = Some(seconds()?),
            other => bail!("unknown field `{other}`"),
        }
    }
    Ok(BootFigures {
        slate_s: slate.context("no image_boot_to_ready_s")?,
        plain_s: plain.context("no baseline_login_s (was the baseline skipped?)")?,
    })
}

/// The bench's last line from the runs' figures: medians of each, and their ratio. Pure.
pub fn summary_line(runs: &[BootFigures]) -> anyhow::Result<String> {
    if runs.is_empty() {
        bail!("no runs");
    }
    let slate: Vec<f64> = runs.iter().map(|r| r.slate_s).collect();
    let plain: Vec<f64> = runs.iter().map(|r| r.plain_s).collect();
    let (a, b) = (crate::quantile(&slate, 0.5), crate::quantile(&plain, 0.5));
    Ok(format!("boot_to_ready_s slate={a:.1} plain={b:.1} ratio={:.2}", a / b))
}

/// What must exist before `images/test` can run without building: the images it boots.
/// Returns the missing ones with the command that builds each. Pure over `exists`.
pub fn missing_images(
    image_root: &Path,
    profile: &str,
    exists: impl Fn(&Path) -> bool,
) -> Vec<(PathBuf, String)> {
    [profile, "plain"]
        .iter()
        .flat_map(|p| {
            let image = image_root.join("work").join(format!("slate-{p}-arm64.img"));
            let layout = image_root.join(format!("slate-{p}-arm64")).join("layout");
            let build = format!("sudo images/build --profile {p} --compress zstd");
            [image, layout].into_iter().filter(|f| !exists(f)).map(move |f| (f, build.clone()))
        })
        .collect()
}

fn image_root() -> PathBuf {
    match std::env::var_os("SLATE_IMAGE_OUT") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/slate-images"),
    }
}

pub fn run(runs: usize, kiosk: bool) -> anyhow::Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize().unwrap_or(repo);
    let script = repo.join("images/test");
    let profile = if kiosk { "kiosk" } else { "minimal" };
    let missing = missing_images(&image_root(), profile, Path::exists);
    if !missing.is_empty() {
        for (file, build) in &missing {
            eprintln!("boot: missing {} (build it with: {build})", file.display());
        }
        bail!(
            "no image to boot: build the {profile} and plain images first, as root, from {} \
             (see images/README.md; 20 minutes or more the first time)",
            repo.display()
        );
    }
    let mut figures = Vec::with_capacity(runs);
    for n in 1..=runs {
        println!("boot: run {n}/{runs}: {} (QEMU, TCG: minutes)", script.display());
        let mut cmd = Command::new(&script);
        cmd.arg("--no-bad-config");
        if kiosk {
            cmd.arg("--kiosk");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let mut last = String::new();
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let line = line?;
            println!("  {line}");
            if !line.trim().is_empty() {
                last = line;
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("images/test failed ({status}); its output is above");
        }
        let run =
            parse_test_line(&last).with_context(|| format!("images/test's last line `{last}`"))?;
        println!("boot: run {n}: slate {:.1} s, plain {:.1} s", run.slate_s, run.plain_s);
        figures.push(run);
    }
    println!("{}", summary_line(&figures)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn parses_the_test_scripts_last_line() {
        // A line, and the (boot, baseline) seconds read from it or a part of the error.
        type Case<'a> = (&'a str, Result<(f64, f64), &'a str>);
        let cases: &[Case] = &[
            ("image_boot_to_ready_s=54.1 baseline_login_s=55.1", Ok((54.1, 55.1))),
            ("baseline_login_s=60 image_boot_to_ready_s=72.7", Ok((72.7, 60.0))),
            ("image_boot_to_ready_s=54.1 baseline_login_s=skipped", Err("not a number")),
            ("image_boot_to_ready_s=54.1", Err("baseline skipped")),
            ("baseline_login_s=3", Err("no image_boot_to_ready_s")),
            ("image_boot_to_ready_s=0 baseline_login_s=3", Err("positive")),
            ("image_boot_to_ready_s=1 baseline_login_s=3 x=1", Err("unknown field `x`")),
            ("test: PASS", Err("not key=value")),
        ];
        for (line, want) in cases {
            let got = parse_test_line(line);
            match (want, got) {
                (Ok((a, b)), Ok(f)) => assert_eq!((f.slate_s, f.plain_s), (*a, *b), "{line}"),
                (Err(part), Err(e)) => {
                    let msg = format!("{e:#}");
                    assert!(msg.contains(part), "{line}: `{msg}` lacks `{part}`");
                }
                (want, got) => panic!("{line}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn summary_is_medians_and_their_ratio() {
        let f = |slate_s, plain_s| BootFigures { slate_s, plain_s };
        assert_eq!(
            summary_line(&[f(54.1, 55.1)]).unwrap(),
            "boot_to_ready_s slate=54.1 plain=55.1 ratio=0.98"
        );
        assert_eq!(
            summary_line(&[f(80.0, 40.0), f(60.0, 50.0), f(70.0, 70.0)]).unwrap(),
            "boot_to_ready_s slate=70.0 plain=50.0 ratio=1.40"
        );
        assert!(summary_line(&[]).is_err());
    }

    #[test]
    fn names_each_missing_image_with_its_build_command() {
        let root = Path::new("/cache");
        let all: HashSet<PathBuf> = [
            "/cache/work/slate-minimal-arm64.img",
            "/cache/slate-minimal-arm64/layout",
            "/cache/work/slate-plain-arm64.img",
            "/cache/slate-plain-arm64/layout",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert!(missing_images(root, "minimal", |p| all.contains(p)).is_empty());

        let no_plain: HashSet<PathBuf> =
            all.iter().filter(|p| !p.to_string_lossy().contains("plain")).cloned().collect();
        let missing = missing_images(root, "minimal", |p| no_plain.contains(p));
        assert_eq!(missing.len(), 2);
        assert!(missing.iter().all(|(_, cmd)| cmd.contains("--profile plain")));

        let missing = missing_images(root, "kiosk", |p| all.contains(p));
        assert_eq!(missing[0].0, PathBuf::from("/cache/work/slate-kiosk-arm64.img"));
        assert!(missing[0].1.contains("--profile kiosk"));
    }
}
