//! Every string a pupil sees goes through `@tr` and is translated: the catalogues in
//! `lang/<language>/LC_MESSAGES/slate-ui.po` hold a translation of every `@tr("...")` in `ui/`,
//! nothing stale, and no page sets a visible text or accessible label from a bare English
//! literal. Fails when a string is added to a screen without its Welsh.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn slint_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            slint_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "slint") {
            out.push(path);
        }
    }
}

/// The string literal starting just after an opening quote, unescaped, and the rest.
fn literal(text: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &text[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    out.push(match escaped {
                        'n' => '\n',
                        other => other,
                    });
                }
            }
            c => out.push(c),
        }
    }
    panic!("an unterminated string literal: {text:?}");
}

/// Every `@tr("...")` msgid in the Slint sources (comments skipped).
fn msgids() -> BTreeSet<String> {
    let mut files = Vec::new();
    slint_files(&root().join("ui"), &mut files);
    let mut ids = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for line in source.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut rest = line;
            while let Some(at) = rest.find("@tr(\"") {
                let (id, after) = literal(&rest[at + 5..]);
                assert!(!after.trim_start().starts_with("=>"), "no context in {}", file.display());
                ids.insert(id);
                rest = after;
            }
        }
    }
    ids
}

fn catalogues() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("lang")).unwrap() {
        let dir = entry.unwrap().path();
        let po = dir.join("LC_MESSAGES/slate-ui.po");
        if po.exists() {
            found.push((dir.file_name().unwrap().to_string_lossy().into_owned(), po));
        }
    }
    found
}

#[test]
fn every_tr_string_is_translated_in_every_catalogue_and_none_is_stale() {
    let ids = msgids();
    assert!(ids.len() > 40, "the scan found the screens' strings: {ids:?}");
    assert!(ids.contains("You did the right thing.") && ids.contains("{} class"), "{ids:?}");
    let catalogues = catalogues();
    assert!(catalogues.iter().any(|(language, _)| language == "cy"), "Welsh is there");
    for (language, path) in catalogues {
        assert!(
            slate_protocol::kiosk::LANGUAGES.iter().any(|(code, _)| *code == language),
            "{language} is in slate_protocol::kiosk::LANGUAGES, so the server offers it"
        );
        let po = rspolib::pofile(path.as_path()).unwrap();
        let mut translated = BTreeSet::new();
        for entry in &po.entries {
            let text = entry.msgstr.as_deref().unwrap_or("");
            assert!(entry.msgctxt.is_none(), "{language}: no context ({})", entry.msgid);
            assert!(!text.trim().is_empty(), "{language}: {:?} has no translation", entry.msgid);
            assert!(
                !entry.flags.iter().any(|f| f == "fuzzy"),
                "{language}: {} is fuzzy",
                entry.msgid
            );
            assert_eq!(
                text.matches("{}").count(),
                entry.msgid.matches("{}").count(),
                "{language}: {:?} keeps each {{}} of the English",
                entry.msgid
            );
            translated.insert(entry.msgid.clone());
        }
        let missing: Vec<_> = ids.difference(&translated).collect();
        assert!(missing.is_empty(), "{language}: not translated: {missing:?}");
        let stale: Vec<_> = translated.difference(&ids).collect();
        assert!(stale.is_empty(), "{language}: no longer on any screen: {stale:?}");
    }
}

/// The line with each `@tr("...")`'s literal taken out (they are translated).
fn without_tr_literals(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("@tr(\"") {
        out.push_str(&rest[..at + 4]);
        rest = literal(&rest[at + 5..]).1;
    }
    out.push_str(rest);
    out
}

/// A visible text or accessible label set from an English literal would never be translated.
/// Preview defaults (`in property ... : "..."`, the adapters' sample tiles) are not shown on a
/// device: Rust sets those properties.
#[test]
fn no_screen_shows_an_untranslated_literal() {
    let mut files = Vec::new();
    slint_files(&root().join("ui"), &mut files);
    let mut bare = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for (n, line) in source.lines().enumerate() {
            let code = without_tr_literals(line.trim_start());
            let code = code.as_str();
            if code.starts_with("//")
                || code.starts_with("in property")
                || code.contains("caption:")
            {
                continue;
            }
            let shown = ["text:", "label:", "accessible-label:"].iter().any(|p| {
                code.find(p).is_some_and(|at| code[at + p.len()..].trim_start().starts_with('"'))
            });
            let joined = code.contains("\" +") || code.contains("+ \"");
            let has_words = |s: &str| {
                s.split('"').skip(1).step_by(2).any(|l| l.chars().any(char::is_alphabetic))
            };
            if (shown || joined) && has_words(code) {
                bare.push(format!("{}:{}: {code}", file.display(), n + 1));
            }
        }
    }
    assert!(bare.is_empty(), "put these in @tr(...) and translate them:\n{}", bare.join("\n"));
}
