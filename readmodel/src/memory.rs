use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use crate::store::{CasWrite, Document, DocumentStore, Result, Watch};

#[derive(Debug, Default)]
struct Data {
    docs: HashMap<String, Document>,
    logs: HashMap<String, BTreeMap<u64, Value>>,
}

/// An in-process store for the embedded mode and unit tests. Same contract as Redis.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    /// Woken after every write that changed something.
    changed: Arc<Notify>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every document key (for rebuild checksums and tests).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.lock().docs.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>> {
        let data = self.lock();
        Ok(keys.iter().map(|k| data.docs.get(k).cloned()).collect())
    }

    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        let won: Vec<bool> = {
            let mut data = self.lock();
            writes
                .iter()
                .map(|w| {
                    let current = data.docs.get(&w.key).map_or(0, |d| d.revision);
                    if current != w.expected {
                        return false;
                    }
                    data.docs.insert(w.key.clone(), w.doc.clone());
                    for entry in &w.log {
                        data.logs
                            .entry(entry.key.clone())
                            .or_default()
                            .insert(entry.score, entry.entry.clone());
                    }
                    true
                })
                .collect()
        };
        if won.contains(&true) {
            self.changed.notify_waiters();
        }
        Ok(won)
    }

    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        let data = self.lock();
        Ok(data.logs.get(key).map_or_else(Vec::new, |log| {
            log.range(after.saturating_add(1)..)
                .take(limit)
                .map(|(s, e)| (*s, e.clone()))
                .collect()
        }))
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        let mut data = self.lock();
        for key in keys {
            data.docs.remove(key);
            data.logs.remove(key);
        }
        Ok(())
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
        crate::store::contract::run(&super::MemoryStore::default(), "t:").await;
    }
}
