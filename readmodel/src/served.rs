//! Which read-model version is served. A rebuild writes a new version beside the one being
//! served, then switches readers and writers over by setting one value in the store,
//! `<prefix>served`; everyone who follows it (the projections, the query API) picks the new
//! version up within its refresh interval. Absent, the configured version is served.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::keys::Keys;
use crate::store::{DocumentStore, Result};

/// See the module documentation. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct Served {
    store: Arc<dyn DocumentStore>,
    configured: Keys,
    refresh: Duration,
    cache: Arc<Mutex<Option<(Keys, Instant)>>>,
}

impl Served {
    /// Follows the pointer of `configured`'s prefix, reading it at most every `refresh` (zero:
    /// at every call).
    pub fn new(store: Arc<dyn DocumentStore>, configured: Keys, refresh: Duration) -> Self {
        Self {
            store,
            configured,
            refresh,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The key holding the served version for `prefix`.
    pub fn pointer(prefix: &str) -> String {
        format!("{prefix}served")
    }

    /// The served version as stored (`None`: never switched; the configured one is served).
    pub async fn stored(store: &dyn DocumentStore, prefix: &str) -> Result<Option<String>> {
        store.get_value(&Self::pointer(prefix)).await
    }

    /// Switches readers and writers of `prefix` to `version`.
    pub async fn switch(store: &dyn DocumentStore, prefix: &str, version: &str) -> Result<()> {
        store.set_value(&Self::pointer(prefix), version).await
    }

    /// The configured layout (the version served when the pointer was never set).
    pub fn configured(&self) -> &Keys {
        &self.configured
    }

    /// The layout to read and write now.
    pub async fn keys(&self) -> Result<Keys> {
        if let Some((keys, at)) = self.lock().as_ref() {
            if at.elapsed() < self.refresh {
                return Ok(keys.clone());
            }
        }
        let version = Self::stored(self.store.as_ref(), &self.configured.prefix).await?;
        let keys = Keys::new(
            self.configured.prefix.clone(),
            version.unwrap_or_else(|| self.configured.model_version.clone()),
        );
        let changed = self
            .lock()
            .replace((keys.clone(), Instant::now()))
            .is_some_and(|(before, _)| before != keys);
        if changed {
            tracing::info!(model_version = %keys.model_version, "now serving another read-model version");
        }
        Ok(keys)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Keys, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn follows_the_pointer_within_its_refresh() {
        let store: Arc<dyn DocumentStore> = Arc::new(MemoryStore::default());
        let now = Served::new(store.clone(), Keys::new("p:", "v1"), Duration::ZERO);
        let cached = Served::new(
            store.clone(),
            Keys::new("p:", "v1"),
            Duration::from_secs(3600),
        );
        assert_eq!(now.keys().await.unwrap().model_version, "v1");
        assert_eq!(cached.keys().await.unwrap().model_version, "v1");
        Served::switch(store.as_ref(), "p:", "v2").await.unwrap();
        assert_eq!(now.keys().await.unwrap(), Keys::new("p:", "v2"));
        assert_eq!(
            cached.keys().await.unwrap().model_version,
            "v1",
            "read again only after its refresh"
        );
        assert_eq!(
            Served::stored(store.as_ref(), "p:")
                .await
                .unwrap()
                .as_deref(),
            Some("v2")
        );
        assert_eq!(Served::stored(store.as_ref(), "q:").await.unwrap(), None);
    }
}
