//! The read-model store port. A document carries the sequence of the last event applied to it
//! (`version`) and how many events were applied (`applied`): a write succeeds only if the stored
//! version is still the one the writer read, so replays and concurrent consumers can never apply
//! an event twice or go backwards.

mod memory;
mod redis;

use async_trait::async_trait;
use serde_json::Value;

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
    }
}
