//! The acceptable use agreements (`assets/aup/ks1.txt`, `ks2.txt`), embedded at build time so the
//! kiosk always has one to show. Owns their format; must not decide when they are shown (that
//! is [`crate::screen`]).

use slate_protocol::kiosk::KeyStage;

const KS1: &str = include_str!("../../../assets/aup/ks1.txt");
const KS2: &str = include_str!("../../../assets/aup/ks2.txt");

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agreement {
    pub title: String,
    pub promises: Vec<String>,
    /// Which text the pupil saw, for `aup_accepted` (see [`text_version`]); empty when parsed
    /// without a key stage.
    pub version: String,
}

impl Agreement {
    /// The words read aloud: the title, then each promise as a sentence.
    pub fn spoken(&self) -> String {
        let mut text = format!("{}.", self.title.trim_end_matches('.'));
        for promise in &self.promises {
            text.push(' ');
            text.push_str(promise);
        }
        text
    }
}

/// `<key stage>-<first 8 hex digits of the sha256 of the whole file>`: a changed agreement gets a
/// new version, so the school can tell who accepted which text. Pure.
pub fn text_version(stage: KeyStage, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let hex = hex::encode(&digest[..4]);
    let stage = match stage {
        KeyStage::Ks1 => "ks1",
        KeyStage::Ks2 => "ks2",
    };
    format!("{stage}-{hex}")
}

/// Parses the format: `#` lines and blank lines are skipped; the first other line is the title,
/// each further line one promise. Pure.
pub fn parse_agreement(text: &str) -> Agreement {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let title = lines.next().unwrap_or_default().to_owned();
    Agreement { title, promises: lines.map(str::to_owned).collect(), version: String::new() }
}

/// The agreement for a key stage.
pub fn for_key_stage(stage: KeyStage) -> Agreement {
    let text = match stage {
        KeyStage::Ks1 => KS1,
        KeyStage::Ks2 => KS2,
    };
    Agreement { version: text_version(stage, text), ..parse_agreement(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format() {
        let a = parse_agreement("# comment\n\nTitle\n  One.  \n# not shown\nTwo.\n");
        let expected = Agreement {
            title: "Title".into(),
            promises: vec!["One.".into(), "Two.".into()],
            version: String::new(),
        };
        assert_eq!(a, expected);
        assert_eq!(parse_agreement(""), Agreement::default());
    }

    #[test]
    fn the_text_version_is_the_start_of_the_texts_sha256() {
        // sha256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2's example).
        assert_eq!(text_version(KeyStage::Ks1, "abc"), "ks1-ba7816bf");
        assert_eq!(text_version(KeyStage::Ks2, ""), "ks2-e3b0c442");
        let ks1 = for_key_stage(KeyStage::Ks1);
        let ks2 = for_key_stage(KeyStage::Ks2);
        assert_eq!(ks1.version, text_version(KeyStage::Ks1, KS1));
        assert!(ks2.version.starts_with("ks2-") && ks2.version.len() == 12, "{}", ks2.version);
        // A changed text is a new version.
        assert_ne!(text_version(KeyStage::Ks1, &format!("{KS1}\nOne more.")), ks1.version);
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
        // Short enough for children learning to read.
        assert!(ks1.promises.iter().all(|p| p.split_whitespace().count() <= 12), "{ks1:?}");
        assert!(ks2.promises.iter().all(|p| p.split_whitespace().count() <= 16), "{ks2:?}");
    }
}
