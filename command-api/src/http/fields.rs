//! Request fields: one type per kind of input, whose validation and OpenAPI schema come from the
//! same constants. A body field of one of these types is checked while the body is parsed (a
//! violation is 400 `invalid-field` naming the field), and the published schema states exactly
//! that rule (`minLength`, `maxLength`, `pattern`, `minimum`, `maximum`), so a client generated
//! from `/openapi.json` sends nothing the server refuses for its shape. A test proves every
//! pattern and its check agree.

use std::borrow::Cow;

use chaos_platform::openapi::Bounded;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $description:literal, min: $min:expr, max: $max:expr,
     pattern: $pattern:expr, check: $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MIN_LENGTH: usize = $min;
            pub const MAX_LENGTH: usize = $max;
            /// The JSON Schema (ECMA 262) pattern the value matches; `None`: any characters.
            pub const PATTERN: Option<&'static str> = $pattern;
            pub const DESCRIPTION: &'static str = $description;

            pub fn parse(value: &str) -> Result<Self, String> {
                let chars = value.chars().count();
                let check: fn(&str) -> bool = $check;
                if !(Self::MIN_LENGTH..=Self::MAX_LENGTH).contains(&chars) || !check(value) {
                    return Err(format!("must be {}", Self::DESCRIPTION));
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(Self::MIN_LENGTH))
                    .max_length(Some(Self::MAX_LENGTH))
                    .pattern(Self::PATTERN)
                    .description(Some(Self::DESCRIPTION))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

fn username_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn name_chars(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn content_id_chars(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

text_field!(
    /// A login name.
    Username,
    "3 to 32 characters: ASCII letters, digits, '_', '-' or '.'",
    min: 3, max: 32, pattern: Some("^[A-Za-z0-9_.-]+$"), check: username_chars
);

text_field!(
    /// A password (any characters).
    Password,
    "8 to 128 characters",
    min: 8, max: 128, pattern: None, check: |_| true
);

text_field!(
    /// A character's display name; unique game-wide, ignoring case.
    NameField,
    "3 to 20 characters: ASCII letters, digits, '_' or '-', starting with a letter",
    min: 3, max: 20, pattern: Some("^[A-Za-z][A-Za-z0-9_-]*$"), check: name_chars
);

text_field!(
    /// An id from the game content (a class, skill or zone).
    ContentId,
    "a content id: 1 to 64 characters, lower-case ASCII letters, digits or '_', starting with a letter",
    min: 1, max: 64, pattern: Some("^[a-z][a-z0-9_]*$"), check: content_id_chars
);

text_field!(
    /// A free reference or reason (a target, a source, a sink, a reference).
    Label,
    "1 to 64 visible ASCII characters (no spaces)",
    min: 1, max: 64, pattern: Some("^[!-~]+$"), check: visible_ascii
);

macro_rules! count_field {
    ($(#[$doc:meta])* $name:ident, $what:literal, min: $min:expr, max: $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(u64);

        impl $name {
            pub const MINIMUM: u64 = $min;
            pub const MAXIMUM: u64 = $max;

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// JSON Schema's integers: `5` and `5.0` alike (see [`Bounded`]).
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Bounded::<{ $min }, { $max }>::deserialize(d).map(|n| Self(n.get()))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Bounded::<{ $min }, { $max }>::schema_with(&format!(
                    "{}, from {} to {}",
                    $what,
                    Self::MINIMUM,
                    Self::MAXIMUM
                ))
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

count_field!(
    /// An amount of currency in one grant or spend.
    CurrencyAmount,
    "an amount of currency",
    min: 1, max: chaos_domain::wallet::MAX_AMOUNT
);

count_field!(
    /// A quantity of one item: from 1 to the bag's stack limit.
    ItemQuantity,
    "a quantity of items",
    min: 1, max: chaos_domain::character::MAX_ITEM_QUANTITY as u64
);

count_field!(
    /// Experience granted at once.
    ExperienceAmount,
    "experience",
    min: 1, max: 1_000_000
);

/// Path ids are the platform's: a hyphenated UUID, checked and documented from one pattern.
pub use chaos_platform::openapi::{parse_uuid, IdPath, UUID_PATTERN};

text_field!(
    /// The `Idempotency-Key` request header.
    IdempotencyKey,
    "1 to 255 visible ASCII characters",
    min: 1, max: 255, pattern: Some("^[!-~]+$"), check: visible_ascii
);

/// The `Idempotency-Key` request header, as operations document it.
#[derive(Debug)]
pub struct IdempotencyHeader;

impl utoipa::IntoParams for IdempotencyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![chaos_platform::openapi::optional_parameter(
            "Idempotency-Key",
            ParameterIn::Header,
            &format!(
                "Retry-safe key ({}): a retried request with the same key and body returns the \
                 first answer and appends nothing; the same key with another body is 422 \
                 `idempotency-key-reused`.",
                IdempotencyKey::DESCRIPTION
            ),
            <IdempotencyKey as utoipa::PartialSchema>::schema(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn agrees<T: std::fmt::Debug>(
        pattern: Option<&str>,
        min: usize,
        max: usize,
        parse: fn(&str) -> Result<T, String>,
        value: &str,
    ) -> Result<(), TestCaseError> {
        let n = value.chars().count();
        let by_schema = n >= min
            && n <= max
            && pattern.is_none_or(|p| regex::Regex::new(p).unwrap().is_match(value));
        prop_assert_eq!(parse(value).is_ok(), by_schema, "{:?}", value);
        Ok(())
    }

    macro_rules! schema_agrees_with_check {
        ($test:ident, $t:ty) => {
            proptest! {
                #[test]
                fn $test(value in prop_oneof![
                    "\\PC{0,70}",
                    "[ -~]{0,70}",
                    "[a-z][a-z0-9_]{0,66}",
                    "[A-Za-z][A-Za-z0-9_.-]{0,40}",
                ]) {
                    agrees(<$t>::PATTERN, <$t>::MIN_LENGTH, <$t>::MAX_LENGTH, <$t>::parse, &value)?;
                }
            }
        };
    }

    schema_agrees_with_check!(username_schema_agrees_with_its_check, Username);
    schema_agrees_with_check!(password_schema_agrees_with_its_check, Password);
    schema_agrees_with_check!(name_schema_agrees_with_its_check, NameField);
    schema_agrees_with_check!(content_id_schema_agrees_with_its_check, ContentId);
    schema_agrees_with_check!(label_schema_agrees_with_its_check, Label);
    schema_agrees_with_check!(idempotency_key_schema_agrees_with_its_check, IdempotencyKey);

    #[test]
    fn the_name_field_is_the_domain_rule() {
        for name in [
            "Aria",
            "a-b_c9",
            "ab",
            "9lives",
            "waytoolongnameforacharacter",
            "ümlaut",
        ] {
            assert_eq!(
                NameField::parse(name).is_ok(),
                chaos_domain::CharacterName::parse(name).is_ok(),
                "{name}"
            );
        }
    }

    proptest! {
        #[test]
        fn path_ids_are_exactly_the_documented_uuids(raw in prop_oneof![
            "[0-9a-fA-F-]{30,40}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "\\PC{0,40}",
        ]) {
            let by_schema = regex::Regex::new(UUID_PATTERN).unwrap().is_match(&raw);
            prop_assert_eq!(parse_uuid(&raw).is_some(), by_schema, "{:?}", raw);
        }
    }
}
