//! The read-model store port. A document carries the sequence of the last event applied to it
//! (`version`) and how many events were applied (`applied`): a write succeeds only if the stored
//! version is still the one the writer read, so replays and concurrent consumers can never apply
//! an event twice or go backwards.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub applied: u64,
    pub doc: Value,
}

/// Write `new` at `key` if the stored version is `expected` (0 = absent).
#[derive(Debug, Clone, PartialEq)]
pub struct CasWrite {
    pub key: String,
    pub expected: u64,
    pub new: Versioned,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("read-model store unavailable: {0}")]
    Unavailable(String),
    #[error("stored document is corrupt at {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>>;

    /// Applies each write atomically and independently; returns, per write, whether it won.
    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>>;

    async fn ping(&self) -> Result<()>;

    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.get_many(&[key.to_owned()]).await?.pop().flatten())
    }

    /// A signal raised when `key` may have changed, for stores that announce their writes;
    /// `None` (the default): readers poll.
    async fn watch(&self, _key: &str) -> Option<Watch> {
        None
    }

    /// Reads `key`, waiting up to `timeout` for its version to reach `version`; returns the last
    /// read, which is older than `version` only if the time ran out. Woken by [`Self::watch`]'s
    /// signal where there is one, and in any case every `fallback_poll` (or [`POLL_STEP`]).
    async fn get_at_least(
        &self,
        key: &str,
        version: u64,
        timeout: Duration,
    ) -> Result<Option<Versioned>> {
        let doc = self.get(key).await?;
        if reached(&doc, version) || timeout.is_zero() {
            return Ok(doc);
        }
        let deadline = Instant::now() + timeout;
        let watch = self.watch(key).await;
        let step = watch.as_ref().map_or(POLL_STEP, |w| w.fallback_poll);
        loop {
            // Registered before reading, so a write between the read and the wait still wakes it.
            let changed = watch.as_ref().map(|w| w.changed.notified());
            tokio::pin!(changed);
            if let Some(changed) = changed.as_mut().as_pin_mut() {
                changed.enable();
            }
            let doc = self.get(key).await?;
            if reached(&doc, version) || Instant::now() >= deadline {
                return Ok(doc);
            }
            let until = deadline.min(Instant::now() + step);
            match changed.as_pin_mut() {
                Some(changed) => {
                    let _ = tokio::time::timeout_at(until, changed).await;
                }
                None => tokio::time::sleep_until(until).await,
            }
        }
    }
}

/// How often [`DocumentStore::get_at_least`] looks again without a change signal.
pub const POLL_STEP: Duration = Duration::from_millis(5);

/// See [`DocumentStore::watch`]. Dropping it ends the registration.
pub struct Watch {
    /// Notified (`notify_waiters`) after writes that may concern the key.
    pub changed: Arc<Notify>,
    /// Look again at least this often: the signal may be lost (pub/sub is at-most-once).
    pub fallback_poll: Duration,
    /// Held for the store: deregisters the reader when dropped.
    pub registration: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("fallback_poll", &self.fallback_poll)
            .finish_non_exhaustive()
    }
}

fn reached(doc: &Option<Versioned>, version: u64) -> bool {
    doc.as_ref().is_some_and(|d| d.version >= version)
}

/// The contract every [`DocumentStore`] must meet; run against each implementation.
#[doc(hidden)]
pub mod contract {
    use super::*;

    fn doc(version: u64, applied: u64, v: &str) -> Versioned {
        Versioned {
            version,
            applied,
            doc: serde_json::json!({ "v": v }),
        }
    }

    pub async fn run(store: &dyn DocumentStore, prefix: &str) {
        let a = format!("{prefix}a");
        let b = format!("{prefix}b");
        assert_eq!(
            store.get(&a).await.unwrap(),
            None,
            "absent key reads as None"
        );

        let first = CasWrite {
            key: a.clone(),
            expected: 0,
            new: doc(1, 1, "one"),
        };
        assert_eq!(
            store.put_many(std::slice::from_ref(&first)).await.unwrap(),
            vec![true]
        );
        assert_eq!(store.get(&a).await.unwrap(), Some(doc(1, 1, "one")));

        // Replaying the same write loses: the stored version moved on.
        assert_eq!(store.put_many(&[first]).await.unwrap(), vec![false]);

        let writes = [
            CasWrite {
                key: a.clone(),
                expected: 1,
                new: doc(3, 2, "three"),
            },
            CasWrite {
                key: b.clone(),
                expected: 5,
                new: doc(6, 6, "stale"),
            },
            CasWrite {
                key: b.clone(),
                expected: 0,
                new: doc(1, 1, "b1"),
            },
        ];
        assert_eq!(
            store.put_many(&writes).await.unwrap(),
            vec![true, false, true]
        );
        let got = store
            .get_many(&[a.clone(), b.clone(), format!("{prefix}c")])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![Some(doc(3, 2, "three")), Some(doc(1, 1, "b1")), None]
        );
        store.ping().await.unwrap();

        // Waiting for a version: answered at once when it is there, woken by a later write
        // when it is not, and the current document when the time runs out.
        let now = store
            .get_at_least(&a, 3, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(now, Some(doc(3, 2, "three")));
        let waiting = store.get_at_least(&a, 4, Duration::from_secs(30));
        let writing = async {
            tokio::task::yield_now().await;
            let write = CasWrite {
                key: a.clone(),
                expected: 3,
                new: doc(4, 3, "four"),
            };
            assert_eq!(store.put_many(&[write]).await.unwrap(), vec![true]);
        };
        let (woken, ()) = tokio::join!(waiting, writing);
        assert_eq!(woken.unwrap(), Some(doc(4, 3, "four")));
        let late = store
            .get_at_least(&b, 9, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            late,
            Some(doc(1, 1, "b1")),
            "times out with the current document"
        );
        let absent = store
            .get_at_least(&format!("{prefix}c"), 1, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(absent, None);
    }
}
