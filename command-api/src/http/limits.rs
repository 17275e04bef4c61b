//! Throttles: commands per account, and logins and registrations per client address and per
//! username (credential stuffing and Argon2 exhaustion). Keyed GCRA limiters (`governor`) on a
//! sharded concurrent map: checking a key touches only its shard, so the cost per request stays
//! flat with a million active accounts. Idle keys are dropped by a background sweep (one shard at
//! a time), never on the request path.
//!
//! In-process: with N instances behind a balancer a key gets up to N times the rate, which is
//! acceptable for abuse protection (the gateway enforces global quotas).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// One keyed limiter.
#[derive(Clone)]
pub struct KeyedLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for KeyedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimit")
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl KeyedLimit {
    /// `per_period` requests per `period` on average, up to `burst` at once.
    pub fn new(per_period: u32, period: Duration, burst: u32) -> Self {
        let per_period = NonZeroU32::new(per_period.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period / per_period.get())
            .unwrap_or_else(|| Quota::per_second(per_period))
            .allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says when to retry (at least 1).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// Every throttle of the command API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Commands per account.
    pub commands: KeyedLimit,
    /// Login and registration attempts per client address.
    pub auth_per_ip: KeyedLimit,
    /// Login attempts per username (whatever the address).
    pub auth_per_username: KeyedLimit,
}

impl Limits {
    /// Starts the background sweep of idle keys (inside a Tokio runtime); it ends when every
    /// clone of these limits is dropped.
    pub fn spawn_sweeper(&self, every: Duration) {
        let limiters: Vec<std::sync::Weak<DefaultKeyedRateLimiter<String>>> =
            [&self.commands, &self.auth_per_ip, &self.auth_per_username]
                .iter()
                .map(|l| Arc::downgrade(&l.limiter))
                .collect();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let mut alive = false;
                for limiter in limiters.iter().filter_map(std::sync::Weak::upgrade) {
                    alive = true;
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
                if !alive {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_key() {
        let limit = KeyedLimit::new(10, Duration::from_secs(1), 3);
        for _ in 0..3 {
            assert!(limit.check("a").is_ok());
        }
        assert_eq!(limit.check("a"), Err(1));
        assert!(limit.check("b").is_ok(), "buckets are per key");
        assert_eq!(limit.len(), 2);
    }

    #[test]
    fn slow_periods_say_how_long_to_wait() {
        let limit = KeyedLimit::new(5, Duration::from_secs(60), 5);
        for _ in 0..5 {
            assert!(limit.check("u").is_ok());
        }
        let wait = limit.check("u").unwrap_err();
        assert!((1..=12).contains(&wait), "{wait}");
    }
}
