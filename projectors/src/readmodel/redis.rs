use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;

use super::{CasWrite, DocumentStore, Result, StoreError, Versioned};

/// Compare-and-set of one document, atomically in Redis. A document is a hash:
/// `v` version (last applied sequence), `n` events applied, `d` the JSON document.
const CAS: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', ARGV[3], 'd', ARGV[4])
return 1
";

/// Redis: hot state, one hash per document, updates through one Lua script each, pipelined.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    cas: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            cas: Script::new(CAS),
        })
    }
}

#[async_trait]
impl DocumentStore for RedisStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Versioned>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(key).arg("v").arg("n").arg("d");
        }
        let mut conn = self.conn.clone();
        let rows: Vec<(Option<u64>, Option<u64>, Option<String>)> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| match row {
                (Some(version), Some(applied), Some(text)) => {
                    let doc = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                    Ok(Some(Versioned {
                        version,
                        applied,
                        doc,
                    }))
                }
                (None, None, None) => Ok(None),
                _ => Err(StoreError::Corrupt {
                    key: key.clone(),
                    reason: "partial document".into(),
                }),
            })
            .collect()
    }

    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for w in writes {
            let mut invocation = self.cas.prepare_invoke();
            invocation
                .key(&w.key)
                .arg(w.expected)
                .arg(w.new.version)
                .arg(w.new.applied)
                .arg(w.new.doc.to_string());
            pipe.invoke_script(&invocation);
        }
        let result: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut conn).await;
        let won = match result {
            Ok(won) => won,
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                // First use on this server (or after a restart / SCRIPT FLUSH): load, retry once.
                self.cas
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                pipe.query_async(&mut conn).await.map_err(unavailable)?
            }
            Err(e) => return Err(unavailable(e)),
        };
        Ok(won.into_iter().map(|n| n == 1).collect())
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    /// Runs against the real Redis started by `deploy/local/services.sh` (REDIS_URL).
    #[tokio::test]
    async fn redis_store_meets_the_contract() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let store = super::RedisStore::connect(&url)
            .await
            .expect("Redis must be running for this test");
        let prefix = format!("test:{}:", uuid::Uuid::new_v4());
        super::super::contract::run(&store, &prefix).await;
    }
}
