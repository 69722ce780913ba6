//! Reading aloud, for a pupil who cannot read yet: the acceptable use agreement, the class and
//! pupil names on the sign-in screens, the reassurance after a report. A small trait with
//! Debian's `espeak-ng` as the real voice (offline, no network, nothing recorded), speaking the
//! screens' language (Welsh with its `cy` voice), and a recording fake. A new request stops the
//! one still speaking, so taps never pile up voices.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub trait Speaker {
    /// Says `text`, which is in `language` (the screens' language, `"en"`, `"cy"`).
    fn say(&mut self, text: &str, language: &str) -> Result<(), String>;
}

/// espeak-ng's voice for a language of the screens: Welsh's own, else British English. Pure.
pub fn voice(language: &str) -> &'static str {
    match language {
        "cy" => "cy",
        _ => "en-gb",
    }
}

/// Says nothing (no voice installed, or read-aloud turned off).
#[derive(Debug, Default)]
pub struct Silent;

impl Speaker for Silent {
    fn say(&mut self, _text: &str, _language: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Remembers what it was asked to say, for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingSpeaker {
    pub said: Arc<Mutex<Vec<String>>>,
    /// The language of each of `said`.
    pub languages: Arc<Mutex<Vec<String>>>,
}

impl Speaker for RecordingSpeaker {
    fn say(&mut self, text: &str, language: &str) -> Result<(), String> {
        self.said.lock().unwrap_or_else(|e| e.into_inner()).push(text.to_owned());
        self.languages.lock().unwrap_or_else(|e| e.into_inner()).push(language.to_owned());
        Ok(())
    }
}

/// `espeak-ng` with the language's [`voice`], slowly enough for a five-year-old. The text goes in on
/// standard input, so nothing in it can be read as an option.
#[derive(Debug)]
pub struct EspeakNg {
    pub program: PathBuf,
    /// Extra arguments (tests write the sound to a file with `-w`).
    pub extra_args: Vec<String>,
    speaking: Option<Child>,
}

impl EspeakNg {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), extra_args: Vec::new(), speaking: None }
    }

    /// Waits for the current speech to finish (tests).
    pub fn wait(&mut self) -> Result<(), String> {
        match self.speaking.take() {
            Some(mut child) => match child.wait() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!("espeak-ng ended with {status}")),
                Err(e) => Err(format!("espeak-ng: {e}")),
            },
            None => Ok(()),
        }
    }
}

impl Default for EspeakNg {
    fn default() -> Self {
        Self::new("/usr/bin/espeak-ng")
    }
}

impl Speaker for EspeakNg {
    fn say(&mut self, text: &str, language: &str) -> Result<(), String> {
        if let Some(mut old) = self.speaking.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let mut child = Command::new(&self.program)
            .args(["-v", voice(language), "-s", "130"])
            .args(&self.extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).map_err(|e| format!("espeak-ng: {e}"))?;
        }
        self.speaking = Some(child);
        Ok(())
    }
}

impl Drop for EspeakNg {
    fn drop(&mut self) {
        if let Some(mut child) = self.speaking.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn espeak_ng_speaks_the_text_it_is_given() {
        let program = PathBuf::from("/usr/bin/espeak-ng");
        if !program.exists() {
            eprintln!("skipped: espeak-ng is not installed (apt-get install espeak-ng)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("said.wav");
        let mut speaker = EspeakNg::new(&program);
        speaker.extra_args = vec!["-w".into(), wav.display().to_string()];
        speaker.say("I tell an adult if I see something I do not like.", "en").unwrap();
        speaker.wait().unwrap();
        let bytes = std::fs::read(&wav).unwrap();
        assert_eq!(&bytes[..4], b"RIFF", "a WAV file");
        assert!(bytes.len() > 10_000, "about two seconds of speech, not silence: {}", bytes.len());
    }

    /// Welsh is read with espeak-ng's Welsh voice, which says Welsh letters as Welsh ("ll",
    /// "dd", "w" as a vowel), so the same words sound different from the English voice's.
    #[test]
    fn welsh_is_read_with_the_welsh_voice() {
        assert_eq!((voice("cy"), voice("en"), voice("fr")), ("cy", "en-gb", "en-gb"));
        let program = PathBuf::from("/usr/bin/espeak-ng");
        if !program.exists() {
            eprintln!("skipped: espeak-ng is not installed (apt-get install espeak-ng)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let said = |language: &str| {
            let wav = dir.path().join(format!("{language}.wav"));
            let mut speaker = EspeakNg::new(&program);
            speaker.extra_args = vec!["-w".into(), wav.display().to_string()];
            speaker
                .say("Rwyt ti wedi gwneud y peth iawn. Mae dy athro ar y ffordd.", language)
                .unwrap();
            speaker.wait().unwrap();
            std::fs::read(&wav).unwrap()
        };
        let (welsh, english) = (said("cy"), said("en"));
        assert_eq!(&welsh[..4], b"RIFF", "a WAV file");
        assert!(welsh.len() > 10_000, "speech, not silence: {}", welsh.len());
        assert_ne!(welsh, english, "the Welsh voice, not the English one");
    }

    #[test]
    fn a_missing_voice_is_an_error_not_a_crash() {
        let mut speaker = EspeakNg::new("/nonexistent/espeak-ng");
        assert!(speaker.say("hello", "en").unwrap_err().contains("cannot start"));
    }
}
