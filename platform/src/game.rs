//! The real-world adapters of the domain's ports: the system clock and OS-seeded dice. The only
//! places a service reads time or chance for the rules.

use std::sync::Arc;

use chaos_domain::{Clock, Content, Dice, GameServices};

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// Thread-local OS-seeded dice.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadDice;

impl Dice for ThreadDice {
    fn roll(&self, lo: u32, hi: u32) -> u32 {
        use rand::Rng;
        rand::rng().random_range(lo..=hi.max(lo))
    }
}

/// What the game's rules run with in production: the catalogue, the system clock, real dice.
pub fn game_services(content: Content) -> GameServices {
    GameServices {
        content: Arc::new(content),
        clock: Arc::new(SystemClock),
        dice: Arc::new(ThreadDice),
    }
}
