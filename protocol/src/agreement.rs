//! A school's own acceptable use agreement, as the kiosk policy carries it (issue 17): a title
//! and a list of short promises for one key stage, with the school's version number and the
//! text's version name. Owns the shape's limits, the canonical text and its version name, so
//! the server that saves a text and the device that shows it agree on both. Pure: no I/O.
//!
//! The built-in agreements (`assets/aup/`) keep the same shape and their own version names
//! (`ks1-` and the start of the file's sha256); a school's text is named the same way from
//! [`canonical_text`], and carries its number besides.

use crate::kiosk::KeyStage;
use serde::{Deserialize, Serialize};

// The limits keep a whole agreement on an 800x480 screen without scrolling, at the size the
// youngest readers need (`shell/ui/tests/screens/agreement_school_longest.png` is the longest
// text a school may save): the built-in KS2 text is 7 promises of up to 71 characters.

/// The longest title, in characters: one line after "Hello Amira K.! ".
pub const MAX_TITLE_CHARS: usize = 32;
/// The most promises.
pub const MAX_PROMISES: usize = 7;
/// The longest promise, in characters: one line each.
pub const MAX_PROMISE_CHARS: usize = 72;

/// One key stage's agreement in the school's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolAgreement {
    pub key_stage: KeyStage,
    /// The school's number for this text: 1 for its first, one more at each save.
    pub version: u32,
    /// [`text_version`] of [`canonical_text`]: the device checks it, and sends it back with the
    /// acceptance, so the server can show the exact text a pupil accepted.
    pub text_version: String,
    pub title: String,
    /// One promise each, in the order shown.
    pub promises: Vec<String>,
}

/// `ks1` or `ks2`.
pub fn stage_name(stage: KeyStage) -> &'static str {
    match stage {
        KeyStage::Ks1 => "ks1",
        KeyStage::Ks2 => "ks2",
    }
}

/// `<key stage>-<first 8 hex digits of the sha256 of the text>`: a changed text gets a new
/// name. The built-in agreements are named from their whole file, a school's from
/// [`canonical_text`].
pub fn text_version(stage: KeyStage, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    format!("{}-{}", stage_name(stage), hex::encode(&digest[..4]))
}

/// The text a school's agreement is named from: the title and each promise, one a line.
pub fn canonical_text(title: &str, promises: &[String]) -> String {
    let mut text = format!("{title}\n");
    for promise in promises {
        text.push_str(promise);
        text.push('\n');
    }
    text
}

/// What is wrong with an agreement's text, said so a member of staff can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("the title is empty")]
    NoTitle,
    #[error("the title is {0} characters; at most {MAX_TITLE_CHARS} fit on the screen")]
    LongTitle(usize),
    #[error("there are no promises: write at least one")]
    NoPromises,
    #[error("there are {0} promises; at most {MAX_PROMISES} fit on the screen")]
    TooManyPromises(usize),
    #[error("promise {0} is empty")]
    EmptyPromise(usize),
    #[error("promise {0} is {1} characters; at most {MAX_PROMISE_CHARS}")]
    LongPromise(usize, usize),
    #[error("{0} has a tab or control character in it")]
    Control(String),
}

/// Checks a title and promises against the shape's limits. Text is trimmed by whoever made it
/// (the server's form, [`parse_text`]); this refuses surrounding spaces as it refuses empties.
pub fn check_text(title: &str, promises: &[String]) -> Result<(), TextProblem> {
    let control = |s: &str| s.chars().any(char::is_control);
    let title_chars = title.chars().count();
    if title.trim().is_empty() {
        return Err(TextProblem::NoTitle);
    }
    if title_chars > MAX_TITLE_CHARS {
        return Err(TextProblem::LongTitle(title_chars));
    }
    if control(title) {
        return Err(TextProblem::Control("the title".into()));
    }
    if promises.is_empty() {
        return Err(TextProblem::NoPromises);
    }
    if promises.len() > MAX_PROMISES {
        return Err(TextProblem::TooManyPromises(promises.len()));
    }
    for (i, promise) in promises.iter().enumerate() {
        let n = i + 1;
        let chars = promise.chars().count();
        if promise.trim().is_empty() {
            return Err(TextProblem::EmptyPromise(n));
        }
        if chars > MAX_PROMISE_CHARS {
            return Err(TextProblem::LongPromise(n, chars));
        }
        if control(promise) {
            return Err(TextProblem::Control(format!("promise {n}")));
        }
    }
    Ok(())
}

/// Reads the form's plain text: the first non-blank line is the title, each further non-blank
/// line one promise (a leading `-`, `*` or `•` and spaces are dropped, as people paste lists),
/// then checks it. Pure.
pub fn parse_text(text: &str) -> Result<(String, Vec<String>), TextProblem> {
    let mut lines = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_start_matches(['-', '*', '•']).trim().to_owned());
    let title = lines.next().unwrap_or_default();
    let promises: Vec<String> = lines.collect();
    check_text(&title, &promises)?;
    Ok((title, promises))
}

impl SchoolAgreement {
    /// A school's text, named: `version` is the school's number for it.
    pub fn new(key_stage: KeyStage, version: u32, title: String, promises: Vec<String>) -> Self {
        let text_version = text_version(key_stage, &canonical_text(&title, &promises));
        Self { key_stage, version, text_version, title, promises }
    }

    /// Checks the text and that its name is the text's own, naming the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        check_text(&self.title, &self.promises).map_err(|p| {
            let field = match p {
                TextProblem::NoTitle | TextProblem::LongTitle(_) => "title",
                TextProblem::Control(ref what) if what == "the title" => "title",
                _ => "promises",
            };
            (field, p.to_string())
        })?;
        if self.version == 0 {
            return Err(("version", "must be 1 or more".into()));
        }
        let expected = text_version(self.key_stage, &canonical_text(&self.title, &self.promises));
        if self.text_version != expected {
            return Err((
                "text_version",
                format!("is {:?}, but the text's own is {expected:?}", self.text_version),
            ));
        }
        Ok(())
    }
}

/// The built-in agreements, `assets/aup/` (see its README for the format).
const BUILTIN_KS1: &str = include_str!("../../assets/aup/ks1.txt");
const BUILTIN_KS2: &str = include_str!("../../assets/aup/ks2.txt");
/// The same in Welsh (Cymraeg), for a class whose language is `cy`.
const BUILTIN_KS1_CY: &str = include_str!("../../assets/aup/cy/ks1.txt");
const BUILTIN_KS2_CY: &str = include_str!("../../assets/aup/cy/ks2.txt");

/// The languages the built-in agreements are in: English (`assets/aup/`) and each of
/// `assets/aup/<language>/`.
pub const BUILTIN_LANGUAGES: &[&str] = &["en", "cy"];

/// The built-in agreement file's `#` lines and blank lines skipped: the first other line is the
/// title, each further line one promise. Pure.
pub fn parse_builtin_file(text: &str) -> (String, Vec<String>) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let title = lines.next().unwrap_or_default().to_owned();
    (title, lines.map(str::to_owned).collect())
}

/// A key stage's built-in agreement as this software has it: title, promises and version name
/// (named from the whole file, comments and all, as devices always have).
pub fn builtin(stage: KeyStage) -> (String, Vec<String>, String) {
    builtin_in(stage, "en")
}

/// A key stage's built-in agreement in a language (of [`BUILTIN_LANGUAGES`]; English for any
/// other). Each language's text has its own version name, so an acceptance says which words.
pub fn builtin_in(stage: KeyStage, language: &str) -> (String, Vec<String>, String) {
    let file = match (stage, language) {
        (KeyStage::Ks1, "cy") => BUILTIN_KS1_CY,
        (KeyStage::Ks2, "cy") => BUILTIN_KS2_CY,
        (KeyStage::Ks1, _) => BUILTIN_KS1,
        (KeyStage::Ks2, _) => BUILTIN_KS2,
    };
    let (title, promises) = parse_builtin_file(file);
    (title, promises, text_version(stage, file))
}

/// The language of the built-in text with this version name, if it is one of this software's.
pub fn builtin_language(stage: KeyStage, text_version: &str) -> Option<&'static str> {
    BUILTIN_LANGUAGES.iter().copied().find(|l| builtin_in(stage, l).2 == text_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_texts_fit_the_shape_a_school_may_use() {
        assert_eq!(
            parse_builtin_file("# comment\n\nTitle\n  One.  \n# not shown\nTwo.\n"),
            ("Title".to_owned(), vec!["One.".to_owned(), "Two.".to_owned()])
        );
        assert_eq!(parse_builtin_file(""), (String::new(), vec![]));
        for stage in [KeyStage::Ks1, KeyStage::Ks2] {
            for language in BUILTIN_LANGUAGES {
                let (title, promises, version) = builtin_in(stage, language);
                assert_eq!(check_text(&title, &promises), Ok(()), "{stage:?} {language}");
                assert!(version.starts_with(stage_name(stage)) && version.len() == 12, "{version}");
                assert_eq!(builtin_language(stage, &version), Some(*language));
            }
            let (english, welsh) = (builtin(stage), builtin_in(stage, "cy"));
            assert_eq!(builtin_in(stage, "en"), english);
            assert_eq!(builtin_in(stage, "fr"), english, "English for a language it lacks");
            assert_ne!(english.2, welsh.2, "each language's text has its own version");
            assert_eq!(english.1.len(), welsh.1.len(), "the same promises, translated");
        }
        assert_eq!(builtin_language(KeyStage::Ks1, "ks1-00000000"), None);
    }

    fn lines(n: usize, chars: usize) -> Vec<String> {
        vec!["a".repeat(chars); n]
    }

    #[test]
    fn the_text_version_is_the_start_of_the_texts_sha256() {
        // sha256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2's example).
        assert_eq!(text_version(KeyStage::Ks1, "abc"), "ks1-ba7816bf");
        assert_eq!(text_version(KeyStage::Ks2, ""), "ks2-e3b0c442");
        assert_eq!(canonical_text("T", &["One.".into(), "Two.".into()]), "T\nOne.\nTwo.\n");
        let a = SchoolAgreement::new(KeyStage::Ks1, 1, "T".into(), vec!["One.".into()]);
        assert_eq!(a.text_version, text_version(KeyStage::Ks1, "T\nOne.\n"));
        // A changed promise, or the same words for the other key stage, is another name.
        let b = SchoolAgreement::new(KeyStage::Ks1, 2, "T".into(), vec!["One!".into()]);
        let c = SchoolAgreement::new(KeyStage::Ks2, 1, "T".into(), vec!["One.".into()]);
        assert_ne!(a.text_version, b.text_version);
        assert_ne!(a.text_version[4..], b.text_version[4..]);
        assert_eq!(a.text_version[4..], c.text_version[4..]);
        assert!(c.text_version.starts_with("ks2-"));
    }

    #[test]
    fn the_texts_limits() {
        let title = "I stay safe online".to_string();
        let cases: Vec<(String, Vec<String>, Result<(), TextProblem>)> = vec![
            (title.clone(), lines(1, 10), Ok(())),
            (title.clone(), lines(MAX_PROMISES, MAX_PROMISE_CHARS), Ok(())),
            ("t".repeat(MAX_TITLE_CHARS), lines(1, 1), Ok(())),
            ("  ".into(), lines(1, 10), Err(TextProblem::NoTitle)),
            ("t".repeat(MAX_TITLE_CHARS + 1), lines(1, 1), Err(TextProblem::LongTitle(33))),
            ("a\u{7}".into(), lines(1, 1), Err(TextProblem::Control("the title".into()))),
            (title.clone(), vec![], Err(TextProblem::NoPromises)),
            (title.clone(), lines(MAX_PROMISES + 1, 5), Err(TextProblem::TooManyPromises(8))),
            (title.clone(), vec!["ok".into(), " ".into()], Err(TextProblem::EmptyPromise(2))),
            (title.clone(), lines(1, 73), Err(TextProblem::LongPromise(1, 73))),
            (title.clone(), vec!["a\tb".into()], Err(TextProblem::Control("promise 1".into()))),
            // Characters, not bytes: a school may write in any language.
            (title.clone(), vec!["é".repeat(MAX_PROMISE_CHARS)], Ok(())),
        ];
        for (title, promises, expected) in cases {
            assert_eq!(check_text(&title, &promises), expected, "{title:?} {promises:?}");
        }
    }

    #[test]
    fn the_forms_plain_text() {
        let ok = |title: &str, promises: &[&str]| {
            Ok((title.to_string(), promises.iter().map(|p| p.to_string()).collect::<Vec<_>>()))
        };
        let cases = [
            ("Title\nOne.\nTwo.", ok("Title", &["One.", "Two."])),
            (
                "\n  Title  \r\n\n - One.\n* Two.\n• Three.\n\n",
                ok("Title", &["One.", "Two.", "Three."]),
            ),
            ("", Err(TextProblem::NoTitle)),
            ("Only a title", Err(TextProblem::NoPromises)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_text(text), expected, "{text:?}");
        }
    }

    #[test]
    fn a_school_agreement_checks_its_name() {
        let good = SchoolAgreement::new(KeyStage::Ks2, 3, "T".into(), vec!["One.".into()]);
        assert_eq!(good.check(), Ok(()));
        let edited = SchoolAgreement { promises: vec!["Two.".into()], ..good.clone() };
        assert_eq!(edited.check().unwrap_err().0, "text_version");
        assert_eq!(
            SchoolAgreement { version: 0, ..good.clone() }.check().unwrap_err().0,
            "version"
        );
        let empty = SchoolAgreement { promises: vec![], ..good };
        assert_eq!(empty.check().unwrap_err().0, "promises");
        assert_eq!(
            SchoolAgreement { title: String::new(), ..empty }.check().unwrap_err().0,
            "title"
        );
    }
}
