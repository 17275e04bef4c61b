//! Ports through which the outside world reaches the rules: time and dice.

use chrono::{DateTime, Utc};

/// The source of "now" for rules that depend on time (cooldowns, regeneration).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The source of randomness for rules that roll (damage). `roll(lo, hi)` is inclusive.
pub trait Dice: Send + Sync + std::fmt::Debug {
    fn roll(&self, lo: u32, hi: u32) -> u32;
}

/// A clock that always answers the same instant; for tests and replays.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Dice that always land on the lowest face; for deterministic tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct LowestRoll;

impl Dice for LowestRoll {
    fn roll(&self, lo: u32, _hi: u32) -> u32 {
        lo
    }
}
