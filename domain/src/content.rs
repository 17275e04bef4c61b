//! Game content (classes, skills, zones, progression) is data, loaded and validated at start.
//!
//! The shipped catalogue lives in `domain/content/*.json` and is compiled in; an operator may
//! point a service at other files, which go through the same validation.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content file {file} is not valid: {source}")]
    Parse {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("content is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassDef {
    pub name: String,
    pub base_hp: u32,
    pub hp_per_level: u32,
    pub base_mana: u32,
    pub mana_per_level: u32,
    pub mana_regen_per_sec: u32,
    pub starting_skills: Vec<String>,
}

impl ClassDef {
    pub fn max_hp(&self, level: u8) -> u32 {
        self.base_hp + self.hp_per_level * u32::from(level.saturating_sub(1))
    }

    pub fn max_mana(&self, level: u8) -> u32 {
        self.base_mana + self.mana_per_level * u32::from(level.saturating_sub(1))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillDef {
    pub name: String,
    /// Classes that may learn the skill; empty means every class.
    pub classes: Vec<String>,
    pub required_level: u8,
    pub mana_cost: u32,
    pub cooldown_ms: u32,
    pub offensive: bool,
    pub damage: [u32; 2],
    pub xp_reward: u32,
}

impl SkillDef {
    pub fn open_to(&self, class: &str) -> bool {
        self.classes.is_empty() || self.classes.iter().any(|c| c == class)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDef {
    pub name: String,
    pub min_level: u8,
    pub offensive_skills_allowed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progression {
    pub starting_zone: String,
    pub max_level: u8,
    /// `xp_to_reach_level[n]` is the total experience at which a character reaches level `n`.
    /// Index 0 is unused; index 1 is 0.
    pub xp_to_reach_level: Vec<u64>,
    /// Gold granted on reaching a level, per level reached: level `n` grants `n * gold_per_level`.
    pub gold_per_level: u64,
}

/// The validated catalogue. Lookups by id; ids are the JSON object keys.
#[derive(Debug, Clone)]
pub struct Content {
    pub classes: BTreeMap<String, ClassDef>,
    pub skills: BTreeMap<String, SkillDef>,
    pub zones: BTreeMap<String, ZoneDef>,
    pub progression: Progression,
}

impl Content {
    /// The catalogue shipped with the game.
    pub fn builtin() -> Result<Self, ContentError> {
        Self::from_json(
            include_str!("../content/classes.json"),
            include_str!("../content/skills.json"),
            include_str!("../content/zones.json"),
            include_str!("../content/progression.json"),
        )
    }

    pub fn from_json(
        classes: &str,
        skills: &str,
        zones: &str,
        progression: &str,
    ) -> Result<Self, ContentError> {
        fn parse<T: for<'de> Deserialize<'de>>(
            file: &'static str,
            text: &str,
        ) -> Result<T, ContentError> {
            serde_json::from_str(text).map_err(|source| ContentError::Parse { file, source })
        }
        let content = Self {
            classes: parse("classes.json", classes)?,
            skills: parse("skills.json", skills)?,
            zones: parse("zones.json", zones)?,
            progression: parse("progression.json", progression)?,
        };
        content.validate()?;
        Ok(content)
    }

    fn validate(&self) -> Result<(), ContentError> {
        let bad = |m: String| Err(ContentError::Invalid(m));
        if self.classes.is_empty() || self.skills.is_empty() || self.zones.is_empty() {
            return bad("classes, skills and zones must not be empty".into());
        }
        for (id, class) in &self.classes {
            for skill in &class.starting_skills {
                match self.skills.get(skill) {
                    None => return bad(format!("class {id} starts with unknown skill {skill}")),
                    Some(s) if !s.open_to(id) || s.required_level > 1 => {
                        return bad(format!("class {id} cannot start with skill {skill}"))
                    }
                    Some(_) => {}
                }
            }
        }
        for (id, skill) in &self.skills {
            if skill.damage[0] > skill.damage[1] {
                return bad(format!("skill {id} has a damage range upside down"));
            }
            if let Some(c) = skill
                .classes
                .iter()
                .find(|c| !self.classes.contains_key(*c))
            {
                return bad(format!("skill {id} names unknown class {c}"));
            }
            if skill.required_level == 0 || skill.required_level > self.progression.max_level {
                return bad(format!("skill {id} has an unreachable required level"));
            }
        }
        let p = &self.progression;
        if !self.zones.contains_key(&p.starting_zone) {
            return bad(format!("starting zone {} is unknown", p.starting_zone));
        }
        if self.zones[&p.starting_zone].min_level > 1 {
            return bad("the starting zone must admit level 1".into());
        }
        if p.max_level < 2 || p.xp_to_reach_level.len() != usize::from(p.max_level) + 1 {
            return bad("xp_to_reach_level needs one entry per level up to max_level".into());
        }
        if p.xp_to_reach_level[1] != 0 || p.xp_to_reach_level[1..].windows(2).any(|w| w[0] >= w[1])
        {
            return bad("xp_to_reach_level must start at 0 and strictly increase".into());
        }
        Ok(())
    }

    /// The level a character with `total_xp` experience has reached.
    pub fn level_for_xp(&self, total_xp: u64) -> u8 {
        let table = &self.progression.xp_to_reach_level;
        let reached = table[1..]
            .iter()
            .take_while(|need| **need <= total_xp)
            .count();
        // `reached` >= 1 because table[1] == 0, and <= max_level by construction.
        u8::try_from(reached).unwrap_or(self.progression.max_level)
    }

    /// Gold granted on reaching `level`.
    pub fn gold_reward(&self, level: u8) -> u64 {
        self.progression
            .gold_per_level
            .saturating_mul(u64::from(level))
    }

    /// Skills of `class` that unlock exactly at `level` (not the starting ones).
    pub fn skills_unlocked_at(&self, class: &str, level: u8) -> Vec<String> {
        self.skills
            .iter()
            .filter(|(_, s)| s.open_to(class) && s.required_level == level && level > 1)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_content_is_valid() {
        let c = Content::builtin().expect("builtin content");
        assert_eq!(c.level_for_xp(0), 1);
        assert_eq!(c.level_for_xp(9), 1);
        assert_eq!(c.level_for_xp(10), 2);
        assert_eq!(c.level_for_xp(u64::MAX), c.progression.max_level);
        assert_eq!(
            c.skills_unlocked_at("mage", 3),
            vec!["frost_nova".to_string()]
        );
    }

    #[test]
    fn inconsistent_content_is_rejected() {
        let classes = r#"{"mage":{"name":"Mage","base_hp":1,"hp_per_level":1,"base_mana":1,
            "mana_per_level":1,"mana_regen_per_sec":1,"starting_skills":["nope"]}}"#;
        let err = Content::from_json(
            classes,
            include_str!("../content/skills.json"),
            include_str!("../content/zones.json"),
            include_str!("../content/progression.json"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown skill nope"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let zones = r#"{"z":{"name":"Z","min_level":1,"offensive_skills_allowed":true,"x":1}}"#;
        let err = Content::from_json(
            include_str!("../content/classes.json"),
            include_str!("../content/skills.json"),
            zones,
            include_str!("../content/progression.json"),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ContentError::Parse {
                    file: "zones.json",
                    ..
                }
            ),
            "{err}"
        );
    }
}
