use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{CasWrite, DocumentStore, Result, Versioned, Watch};

/// An in-process store for the embedded mode and unit tests. Same contract as Redis.
#[derive(Debug, Default)]
pub struct MemoryStore {
    docs: Mutex<HashMap<String, Versioned>>,
    /// Woken after every write that changed something.
    changed: Arc<Notify>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Versioned>> {
        self.docs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>> {
        let docs = self.lock();
        Ok(keys.iter().map(|k| docs.get(k).cloned()).collect())
    }

    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        let won: Vec<bool> = {
            let mut docs = self.lock();
            writes
                .iter()
                .map(|w| {
                    let current = docs.get(&w.key).map_or(0, |d| d.version);
                    if current != w.expected {
                        return false;
                    }
                    docs.insert(w.key.clone(), w.new.clone());
                    true
                })
                .collect()
        };
        if won.contains(&true) {
            self.changed.notify_waiters();
        }
        Ok(won)
    }

    async fn watch(&self, _key: &str) -> Option<Watch> {
        Some(Watch {
            changed: self.changed.clone(),
            // Every write signals: the fallback only bounds a wait, it never finds anything new.
            fallback_poll: Duration::from_secs(1),
            registration: None,
        })
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_meets_the_contract() {
        super::super::contract::run(&super::MemoryStore::default(), "t:").await;
    }
}
