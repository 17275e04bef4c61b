use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use crate::store::{BoardOp, CasWrite, Document, DocumentStore, KeyKind, Result, ScanPage, Watch};

#[derive(Debug, Default)]
struct Data {
    docs: HashMap<String, Document>,
    logs: HashMap<String, BTreeMap<u64, Value>>,
    boards: HashMap<String, HashMap<String, f64>>,
    values: HashMap<String, String>,
}

impl Data {
    /// A board's members in [`DocumentStore::board_range`]'s order.
    fn ranked(&self, board: &str, min_score: Option<f64>) -> Vec<(String, f64)> {
        let mut members: Vec<(String, f64)> = self
            .boards
            .get(board)
            .map(|b| {
                b.iter()
                    .filter(|(_, s)| min_score.is_none_or(|m| **s >= m))
                    .map(|(m, s)| (m.clone(), *s))
                    .collect()
            })
            .unwrap_or_default();
        members.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        members
    }
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
                    for op in &w.boards {
                        match op {
                            BoardOp::Set {
                                board,
                                member,
                                score,
                            } => {
                                data.boards
                                    .entry(board.clone())
                                    .or_default()
                                    .insert(member.clone(), *score);
                            }
                            BoardOp::Remove { board, member } => {
                                if let Some(b) = data.boards.get_mut(board) {
                                    b.remove(member);
                                    if b.is_empty() {
                                        data.boards.remove(board);
                                    }
                                }
                            }
                        }
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

    async fn board_range(
        &self,
        board: &str,
        offset: u64,
        limit: usize,
        min_score: Option<f64>,
    ) -> Result<Vec<(String, f64)>> {
        let ranked = self.lock().ranked(board, min_score);
        Ok(ranked
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit)
            .collect())
    }

    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>> {
        let ranked = self.lock().ranked(board, None);
        Ok(ranked
            .iter()
            .position(|(m, _)| m == member)
            .map(|i| (i as u64, ranked[i].1)))
    }

    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64> {
        Ok(self.lock().ranked(board, min_score).len() as u64)
    }

    async fn get_value(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock().values.get(key).cloned())
    }

    async fn set_value(&self, key: &str, value: &str) -> Result<()> {
        self.lock().values.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    /// One page: everything under the prefix (the cursor is never needed).
    async fn scan(&self, prefix: &str, _cursor: Option<String>, _limit: usize) -> Result<ScanPage> {
        let data = self.lock();
        let under = |k: &&String| k.starts_with(prefix);
        let keys = data
            .docs
            .keys()
            .filter(under)
            .map(|k| (k.clone(), KeyKind::Document))
            .chain(
                data.logs
                    .keys()
                    .filter(under)
                    .map(|k| (k.clone(), KeyKind::Log)),
            )
            .chain(
                data.boards
                    .keys()
                    .filter(under)
                    .map(|k| (k.clone(), KeyKind::Board)),
            )
            .chain(
                data.values
                    .keys()
                    .filter(under)
                    .map(|k| (k.clone(), KeyKind::Value)),
            )
            .collect();
        Ok(ScanPage { keys, next: None })
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        let mut data = self.lock();
        for key in keys {
            data.docs.remove(key);
            data.logs.remove(key);
            data.boards.remove(key);
            data.values.remove(key);
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
