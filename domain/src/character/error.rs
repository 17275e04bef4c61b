use chrono::{DateTime, Utc};

use crate::aggregate::{RuleError, RuleKind};

/// A broken rule. `code()` is a stable identifier surfaced to clients as the problem type
/// (`/problems/<code>`): do not change the codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharacterError {
    #[error("the character already exists")]
    AlreadyExists,
    #[error("no such character")]
    NotFound,
    #[error("the character belongs to another account")]
    NotOwner,
    #[error("unknown class {0}")]
    UnknownClass(String),
    #[error("unknown skill {0}")]
    UnknownSkill(String),
    #[error("the character does not know skill {0}")]
    SkillNotKnown(String),
    #[error("not enough mana: {needed} needed, {available} available")]
    InsufficientMana { needed: u32, available: u32 },
    #[error("skill {skill} is on cooldown until {ready_at}")]
    SkillOnCooldown {
        skill: String,
        ready_at: DateTime<Utc>,
    },
    #[error("zone {zone} forbids offensive skills")]
    ZoneForbidsSkill { zone: String },
    #[error("unknown zone {0}")]
    UnknownZone(String),
    #[error("zone {zone} requires level {min_level}")]
    ZoneLevelTooLow { zone: String, min_level: u8 },
    #[error("the character is already in zone {0}")]
    AlreadyInZone(String),
    #[error("experience amount must be between 1 and 1000000")]
    InvalidExperienceAmount,
}

impl RuleError for CharacterError {
    fn kind(&self) -> RuleKind {
        match self {
            Self::NotFound => RuleKind::NotFound,
            Self::NotOwner => RuleKind::Forbidden,
            Self::AlreadyExists => RuleKind::Conflict,
            _ => RuleKind::Unprocessable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "character-already-exists",
            Self::NotFound => "character-not-found",
            Self::NotOwner => "not-character-owner",
            Self::UnknownClass(_) => "unknown-class",
            Self::UnknownSkill(_) => "unknown-skill",
            Self::SkillNotKnown(_) => "skill-not-known",
            Self::InsufficientMana { .. } => "insufficient-mana",
            Self::SkillOnCooldown { .. } => "skill-on-cooldown",
            Self::ZoneForbidsSkill { .. } => "zone-forbids-skill",
            Self::UnknownZone(_) => "unknown-zone",
            Self::ZoneLevelTooLow { .. } => "zone-level-too-low",
            Self::AlreadyInZone(_) => "already-in-zone",
            Self::InvalidExperienceAmount => "invalid-experience-amount",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownClass(_) => Some("class"),
            Self::UnknownSkill(_)
            | Self::SkillNotKnown(_)
            | Self::InsufficientMana { .. }
            | Self::SkillOnCooldown { .. }
            | Self::ZoneForbidsSkill { .. } => Some("skill"),
            Self::UnknownZone(_) | Self::ZoneLevelTooLow { .. } | Self::AlreadyInZone(_) => {
                Some("zone")
            }
            Self::InvalidExperienceAmount => Some("amount"),
            Self::AlreadyExists | Self::NotFound | Self::NotOwner => None,
        }
    }
}
