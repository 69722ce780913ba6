//! The shape of a roster entry (pseudonymous id, display name, class) and its validation. Pure:
//! storing entries is `store`'s job.

use slate_protocol::PupilId;

/// Longest display or class name, in characters: room for "Amira K." and "Year 2 Kingfishers",
/// not for a full legal name plus notes.
pub const MAX_NAME_CHARS: usize = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RosterError {
    #[error("invalid pupil id: {0}")]
    Id(#[from] slate_protocol::ProtocolError),
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {chars} characters, over the limit of {MAX_NAME_CHARS}")]
    TooLong { field: &'static str, chars: usize },
    #[error("{field} contains control characters")]
    ControlCharacters { field: &'static str },
}

/// One pupil as the school's IT gives them: the id devices use, and what staff see beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilEntry {
    pub id: PupilId,
    /// What staff see: the school's convention is first name and initial (seed 004).
    pub display_name: String,
    pub class_name: String,
}

impl PupilEntry {
    /// Trims and checks each field. Names are stored as IT gives them: it is their roster.
    pub fn new(id: &str, display_name: &str, class_name: &str) -> Result<Self, RosterError> {
        Ok(Self {
            id: PupilId::new(id)?,
            display_name: checked_name("name", display_name)?,
            class_name: checked_name("class", class_name)?,
        })
    }
}

fn checked_name(field: &'static str, value: &str) -> Result<String, RosterError> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars == 0 {
        return Err(RosterError::Empty { field });
    }
    if chars > MAX_NAME_CHARS {
        return Err(RosterError::TooLong { field, chars });
    }
    if value.chars().any(char::is_control) {
        return Err(RosterError::ControlCharacters { field });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_trimmed_and_checked() {
        let entry = PupilEntry::new("p-7f3a9c", "  Amira K. ", "Year 2").unwrap();
        assert_eq!(entry.display_name, "Amira K.");

        let cases = [
            (("Amira K", "Amira K.", "Year 2"), "pupil id"),
            (("p-1", "   ", "Year 2"), "name is empty"),
            (("p-1", &"x".repeat(41) as &str, "Year 2"), "name is 41 characters"),
            (("p-1", "Amira", "Year\n2"), "class contains control"),
        ];
        for ((id, name, class), expected) in cases {
            let err = PupilEntry::new(id, name, class).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
        assert!(
            PupilEntry::new("p-1", &"é".repeat(40), "Year 2").is_ok(),
            "counts characters, not bytes"
        );
    }
}
