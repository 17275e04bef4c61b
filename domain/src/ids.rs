//! Validated identifiers and names.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a valid id: {0}")]
    InvalidId(String),
    #[error(
        "name must be 3 to 20 characters of letters, digits, '_' or '-', starting with a letter"
    )]
    InvalidName,
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdError::InvalidId(s.chars().take(64).collect()))
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A player's account; owns characters.
    AccountId
);
uuid_id!(
    /// A character (the `character` aggregate's id).
    CharacterId
);

/// A character's display name: 3 to 20 characters, ASCII letters, digits, `_` or `-`,
/// starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CharacterName(String);

impl CharacterName {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok_len = (3..=20).contains(&s.len());
        let ok_start = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok_len && ok_start && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CharacterName {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CharacterName> for String {
    fn from(value: CharacterName) -> Self {
        value.0
    }
}

impl fmt::Display for CharacterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(CharacterName::parse("Aria").is_ok());
        assert!(CharacterName::parse("a-b_c9").is_ok());
        for bad in [
            "",
            "ab",
            "9lives",
            "has space",
            "waytoolongnameforacharacter",
            "ümlaut",
        ] {
            assert_eq!(
                CharacterName::parse(bad),
                Err(IdError::InvalidName),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_parse_only_uuids() {
        assert!(CharacterId::parse("0190a3c2-7d1e-7c3a-9f00-000000000001").is_ok());
        assert!(matches!(
            CharacterId::parse("nope"),
            Err(IdError::InvalidId(_))
        ));
    }
}
