//! The acceptable use agreement a pupil is shown: the school's own text for their key stage when
//! the signed kiosk policy has one (issue 17), else the built-in text (`assets/aup/ks1.txt`,
//! `ks2.txt`, embedded at build time by `slate_protocol::agreement`; in Welsh `assets/aup/cy/`
//! for a class whose language is `cy`) so the kiosk always has one to show. Owns choosing the text and its version; must not decide when it is shown (that
//! is [`crate::screen`]).

use slate_protocol::agreement::{self as aup, SchoolAgreement};
use slate_protocol::kiosk::{KeyStage, Policy};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agreement {
    pub title: String,
    pub promises: Vec<String>,
    /// Which text the pupil saw, for `aup_accepted`: `ks1-` and the start of its sha256
    /// (see [`aup::text_version`]); empty when parsed without a key stage.
    pub version: String,
    /// The school's number for its own text; `None` for the built-in one.
    pub school_version: Option<u32>,
}

/// Longer than this (a promise, in characters; or the title), and a school's agreement is
/// drawn [`Agreement::compact`].
const ROOMY_PROMISE_CHARS: usize = 64;
const ROOMY_TITLE_CHARS: usize = 28;
const ROOMY_PROMISES: usize = 7;

impl Agreement {
    /// Whether to draw it with smaller letters so that all of it fits on the screen: a school's
    /// text near the limits it may use (`slate_protocol::agreement`). The built-in texts are
    /// known to fit (their screenshots) and are never drawn smaller. Pure.
    pub fn compact(&self) -> bool {
        let chars = |s: &String| s.chars().count();
        let long_promises = self.promises.iter().any(|p| chars(p) > ROOMY_PROMISE_CHARS);
        self.school_version.is_some()
            && (self.promises.len() > ROOMY_PROMISES
                || chars(&self.title) > ROOMY_TITLE_CHARS
                || (long_promises && self.promises.len() >= 5))
    }

    /// The words read aloud: the title, then each promise as a sentence. The same words as
    /// on the screen, whichever text that is.
    pub fn spoken(&self) -> String {
        let mut text = format!("{}.", self.title.trim_end_matches('.'));
        for promise in &self.promises {
            text.push(' ');
            text.push_str(promise);
        }
        text
    }
}

/// The built-in agreement for a key stage, in English.
pub fn for_key_stage(stage: KeyStage) -> Agreement {
    builtin_in(stage, slate_protocol::kiosk::DEFAULT_LANGUAGE)
}

/// The built-in agreement for a key stage in a language (English if it has none in it).
pub fn builtin_in(stage: KeyStage, language: &str) -> Agreement {
    let (title, promises, version) = aup::builtin_in(stage, language);
    Agreement { title, promises, version, school_version: None }
}

/// What to show for a key stage: the school's text if it has one for that key stage (the
/// policy checked it, and its version name, when it was read; in whatever language the school
/// wrote it), else the built-in in the class's language. Pure.
pub fn to_show(stage: KeyStage, school: &[SchoolAgreement], language: &str) -> Agreement {
    match school.iter().find(|a| a.key_stage == stage) {
        Some(a) => Agreement {
            title: a.title.clone(),
            promises: a.promises.clone(),
            version: a.text_version.clone(),
            school_version: Some(a.version),
        },
        None => builtin_in(stage, language),
    }
}

/// What to show for a key stage under `policy` (none: the built-in) in `language`.
pub fn for_policy(stage: KeyStage, policy: Option<&Policy>, language: &str) -> Agreement {
    to_show(stage, policy.map_or(&[][..], |p| p.agreements.as_slice()), language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schools_text_is_shown_for_its_key_stage_else_the_built_in() {
        let ours = |stage, version, title: &str| {
            SchoolAgreement::new(stage, version, title.into(), vec!["We ask first.".into()])
        };
        let ks1_v2 = ours(KeyStage::Ks1, 2, "Our KS1 promise");
        let ks2_v5 = ours(KeyStage::Ks2, 5, "Our KS2 promise");
        let builtin = |stage| for_key_stage(stage);
        let school = |a: &SchoolAgreement| Agreement {
            title: a.title.clone(),
            promises: a.promises.clone(),
            version: a.text_version.clone(),
            school_version: Some(a.version),
        };
        let cases = [
            // (the policy's texts, key stage, what is shown)
            (vec![], KeyStage::Ks1, builtin(KeyStage::Ks1)),
            (vec![], KeyStage::Ks2, builtin(KeyStage::Ks2)),
            (vec![ks2_v5.clone()], KeyStage::Ks1, builtin(KeyStage::Ks1)),
            (vec![ks2_v5.clone()], KeyStage::Ks2, school(&ks2_v5)),
            (vec![ks1_v2.clone(), ks2_v5.clone()], KeyStage::Ks1, school(&ks1_v2)),
            (vec![ks2_v5.clone(), ks1_v2.clone()], KeyStage::Ks2, school(&ks2_v5)),
        ];
        for (i, (texts, stage, expected)) in cases.into_iter().enumerate() {
            assert_eq!(to_show(stage, &texts, "en"), expected.clone(), "case {i}");
            // In Welsh: the built-in in Welsh, the school's own text as the school wrote it.
            let welsh = match expected.school_version {
                Some(_) => expected,
                None => builtin_in(stage, "cy"),
            };
            assert_eq!(to_show(stage, &texts, "cy"), welsh, "case {i} in Welsh");
        }
        assert_eq!(for_policy(KeyStage::Ks1, None, "en"), builtin(KeyStage::Ks1));
        let welsh = for_policy(KeyStage::Ks1, None, "cy");
        assert_eq!(welsh.title, "Rwy'n ddiogel ar y cyfrifiadur");
        assert_ne!(welsh.version, builtin(KeyStage::Ks1).version);
    }

    #[test]
    fn the_built_in_versions_are_named_from_the_files() {
        let ks1 = for_key_stage(KeyStage::Ks1);
        let ks2 = for_key_stage(KeyStage::Ks2);
        let file = include_str!("../../../assets/aup/ks1.txt");
        assert_eq!(ks1.version, aup::text_version(KeyStage::Ks1, file));
        assert!(ks2.version.starts_with("ks2-") && ks2.version.len() == 12, "{}", ks2.version);
        assert_eq!((ks1.school_version, ks2.school_version), (None, None));
    }

    #[test]
    fn a_long_text_is_drawn_smaller() {
        let text = |title: &str, promises: usize, chars: usize| Agreement {
            title: title.into(),
            promises: vec!["a".repeat(chars); promises],
            school_version: Some(1),
            ..Agreement::default()
        };
        let cases = [
            (text("I stay safe", 7, 64), false),
            (text("I stay safe", 4, 72), false),
            (text("I stay safe", 5, 65), true),
            (text("I stay safe", 8, 10), true),
            (text(&"t".repeat(29), 1, 10), true),
            (for_key_stage(KeyStage::Ks1), false),
            (for_key_stage(KeyStage::Ks2), false),
            (Agreement { school_version: None, ..text("I stay safe", 8, 70) }, false),
        ];
        for (i, (agreement, compact)) in cases.into_iter().enumerate() {
            assert_eq!(agreement.compact(), compact, "case {i}");
        }
    }

    #[test]
    fn what_is_read_aloud_is_what_is_shown() {
        let a = Agreement {
            title: "We stay safe.".into(),
            promises: vec!["We ask first.".into(), "We tell an adult.".into()],
            ..Agreement::default()
        };
        assert_eq!(a.spoken(), "We stay safe. We ask first. We tell an adult.");
    }

    #[test]
    fn both_agreements_are_short_and_say_the_key_promises() {
        let ks1 = for_key_stage(KeyStage::Ks1);
        let ks2 = for_key_stage(KeyStage::Ks2);
        // Seed 003, the KS1 agreement: "I will only use activities that an adult has told or
        // allowed me to use".
        assert!(ks1.promises.iter().any(|p| p.contains("only use what an adult says")));
        assert!(ks2.promises.iter().any(|p| p.contains("allowed")));
        for a in [&ks1, &ks2] {
            assert!(a.promises.iter().any(|p| p.contains("adult")), "{a:?}");
            assert!((4..=8).contains(&a.promises.len()), "{a:?}");
            assert!(a.title.len() <= 40, "{}", a.title);
        }
        // Short enough for children learning to read, in each language.
        for language in aup::BUILTIN_LANGUAGES {
            let ks1 = builtin_in(KeyStage::Ks1, language);
            let ks2 = builtin_in(KeyStage::Ks2, language);
            assert!(ks1.promises.iter().all(|p| p.split_whitespace().count() <= 12), "{ks1:?}");
            assert!(ks2.promises.iter().all(|p| p.split_whitespace().count() <= 16), "{ks2:?}");
        }
    }
}
