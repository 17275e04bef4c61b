use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink};
use redis::Script;
use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::store::{
    BoardOp, Body, CasWrite, Document, DocumentStore, KeyKind, Result, ScanPage, StoreError, Watch,
};

/// Compare-and-set of one document, its log entries and its board changes, atomically in Redis.
/// A document is a hash: `v` revision, `n` events applied, `p` positions (JSON), `d` the JSON
/// document. `KEYS[1]` is the document; then `ARGV[6]` log keys, whose entries go to sorted sets
/// scored by sequence; then board keys, each with an operation (`s` set a member's score, `r`
/// remove it). Nothing is written unless the document's write wins. A document and its logs share
/// a hash tag (`{id}`); boards are global keys, so the script needs a single-shard Redis (the
/// deployed ElastiCache replication group is). A successful write announces the new revision on
/// the pub/sub channel named after the key (free when nobody listens), which wakes readers
/// waiting for it.
const CAS: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', ARGV[3], 'p', ARGV[4], 'd', ARGV[5])
local logs = tonumber(ARGV[6])
local a = 7
for i = 2, 1 + logs do
  redis.call('ZADD', KEYS[i], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for i = 2 + logs, #KEYS do
  if ARGV[a] == 's' then
    redis.call('ZADD', KEYS[i], ARGV[a + 2], ARGV[a + 1])
  else
    redis.call('ZREM', KEYS[i], ARGV[a + 1])
  end
  a = a + 3
end
redis.call('PUBLISH', KEYS[1], ARGV[2])
return 1
";

/// A waiting reader looks again at least this often, announcement or not (pub/sub is
/// at-most-once: a reconnect can lose one).
const FALLBACK_POLL: Duration = Duration::from_millis(50);
/// How often channels nobody waits on any more are unsubscribed.
const SWEEP: Duration = Duration::from_secs(5);

/// Redis: hot state, one hash per document, updates through one Lua script each, pipelined.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    cas: Script,
    changes: Arc<Changes>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::unavailable(e)
}

/// How to reach Redis: the same settings for the projector and the query API, which must agree on
/// the key layout.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port` or, for TLS (ElastiCache in transit encryption), `rediss://host:port`.
    pub url: String,
    /// Prepended to every key (isolates tests and environments sharing a server).
    pub key_prefix: String,
    /// The read-model version served and written (`v1`); a rebuild writes the next one.
    pub model_version: String,
    /// AUTH password; empty: none (or the one in the URL).
    #[serde(default)]
    pub password: secrecy::SecretString,
    /// PEM file of the CA that signed the server's certificate (TLS); empty: the system roots.
    #[serde(default)]
    pub ca_file: String,
}

impl RedisStore {
    /// Connects as `config` says: TLS for `rediss://` URLs (with `ca_file`'s CA, else the system
    /// roots), AUTH with `password` when one is set.
    pub async fn open(config: &RedisConfig) -> Result<Self> {
        use redis::IntoConnectionInfo;
        use secrecy::ExposeSecret;
        // Two rustls crypto providers are linked (ring, aws-lc-rs, through other crates): name
        // one for the process, or rustls refuses to build a TLS client. Already set is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(unavailable)?;
        let password = config.password.expose_secret();
        if !password.is_empty() {
            info.redis.password = Some(password.to_owned());
        }
        let client = if config.ca_file.is_empty() {
            redis::Client::open(info).map_err(unavailable)?
        } else {
            let root_cert = std::fs::read(&config.ca_file).map_err(|e| {
                StoreError::message(format!("reading redis.ca_file {}: {e}", config.ca_file))
            })?;
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
            .map_err(unavailable)?
        };
        Self::with_client(client).await
    }

    /// Connects to a plain URL (tests, tools).
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Self::with_client(client).await
    }

    async fn with_client(client: redis::Client) -> Result<Self> {
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            cas: Script::new(CAS),
            changes: Arc::new(Changes {
                client,
                subscriptions: Mutex::new(None),
                waiters: StdMutex::new(HashMap::new()),
            }),
        })
    }
}

/// The keys readers are waiting on, and the pub/sub connection that hears their announcements.
/// Connected on first use (a projector never waits, so never subscribes).
struct Changes {
    client: redis::Client,
    subscriptions: Mutex<Option<Subscriptions>>,
    /// Per key: how many readers wait, and how to wake them.
    waiters: StdMutex<HashMap<String, (usize, Arc<Notify>)>>,
}

struct Subscriptions {
    sink: PubSubSink,
    channels: HashSet<String>,
    swept: Instant,
}

/// One reader's registration; dropping it deregisters.
struct Waiting {
    changes: Arc<Changes>,
    key: String,
    notify: Arc<Notify>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiters = self.changes.lock_waiters();
        if let Some(entry) = waiters.get_mut(&self.key) {
            entry.0 -= 1;
            if entry.0 == 0 {
                waiters.remove(&self.key);
            }
        }
    }
}

impl Changes {
    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, (usize, Arc<Notify>)>> {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a reader of `key` and makes sure its channel is subscribed. Without a pub/sub
    /// connection the reader is still registered and simply relies on the fallback poll.
    async fn wait_on(self: &Arc<Self>, key: &str) -> Waiting {
        let notify = {
            let mut waiters = self.lock_waiters();
            let entry = waiters
                .entry(key.to_owned())
                .or_insert_with(|| (0, Arc::new(Notify::new())));
            entry.0 += 1;
            entry.1.clone()
        };
        let waiting = Waiting {
            changes: self.clone(),
            key: key.to_owned(),
            notify,
        };
        if let Err(e) = self.subscribe(key).await {
            tracing::debug!(error = %e, "change announcements unavailable; polling");
        }
        waiting
    }

    async fn subscribe(self: &Arc<Self>, key: &str) -> redis::RedisResult<()> {
        let mut guard = self.subscriptions.lock().await;
        if guard.is_none() {
            let (sink, mut stream) = self.client.get_async_pubsub().await?.split();
            let changes = Arc::downgrade(self);
            tokio::spawn(async move {
                while let Some(message) = stream.next().await {
                    let Some(changes) = changes.upgrade() else {
                        return;
                    };
                    let channel = message.get_channel_name();
                    let notify = changes.lock_waiters().get(channel).map(|(_, n)| n.clone());
                    if let Some(notify) = notify {
                        notify.notify_waiters();
                    }
                }
                // Connection lost: the next reader reconnects; readers meanwhile poll.
                if let Some(changes) = changes.upgrade() {
                    *changes.subscriptions.lock().await = None;
                }
            });
            *guard = Some(Subscriptions {
                sink,
                channels: HashSet::new(),
                swept: Instant::now(),
            });
        }
        let Some(subs) = guard.as_mut() else {
            return Ok(());
        };
        if subs.swept.elapsed() >= SWEEP {
            // Subscriptions and unsubscriptions are serialised by this lock, so a channel that a
            // new reader needs cannot be dropped behind its back.
            let idle: Vec<String> = {
                let waiters = self.lock_waiters();
                subs.channels
                    .iter()
                    .filter(|c| !waiters.contains_key(*c))
                    .cloned()
                    .collect()
            };
            for channel in idle {
                subs.sink.unsubscribe(&channel).await?;
                subs.channels.remove(&channel);
            }
            subs.swept = Instant::now();
        }
        if !subs.channels.contains(key) {
            subs.sink.subscribe(key).await?;
            subs.channels.insert(key.to_owned());
        }
        Ok(())
    }
}

#[async_trait]
impl DocumentStore for RedisStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(key)
                .arg("v")
                .arg("n")
                .arg("p")
                .arg("d");
        }
        let mut conn = self.conn.clone();
        type Row = (Option<u64>, Option<u64>, Option<String>, Option<String>);
        let rows: Vec<Row> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        keys.iter()
            .zip(rows)
            .map(|(key, row)| match row {
                (Some(revision), Some(applied), Some(positions), Some(body)) => {
                    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    };
                    Ok(Some(Document {
                        revision,
                        applied,
                        positions: serde_json::from_str(&positions).map_err(corrupt)?,
                        body: Body::from_text(body),
                    }))
                }
                (None, None, None, None) => Ok(None),
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
            let positions = serde_json::to_string(&w.doc.positions).unwrap_or_default();
            let mut invocation = self.cas.prepare_invoke();
            invocation
                .key(&w.key)
                .arg(w.expected)
                .arg(w.doc.revision)
                .arg(w.doc.applied)
                .arg(positions)
                .arg(w.doc.body.as_str())
                .arg(w.log.len());
            for entry in &w.log {
                invocation
                    .key(&entry.key)
                    .arg(entry.score)
                    .arg(entry.entry.to_string());
            }
            for op in &w.boards {
                match op {
                    BoardOp::Set {
                        board,
                        member,
                        score,
                    } => invocation.key(board).arg("s").arg(member).arg(*score),
                    BoardOp::Remove { board, member } => {
                        invocation.key(board).arg("r").arg(member).arg(0)
                    }
                };
            }
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

    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        let mut conn = self.conn.clone();
        let rows: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(entry, score)| {
                let value = serde_json::from_str(&entry).map_err(|e| StoreError::Corrupt {
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?;
                Ok((score as u64, value))
            })
            .collect()
    }

    async fn board_range(
        &self,
        board: &str,
        offset: u64,
        limit: usize,
        min_score: Option<f64>,
    ) -> Result<Vec<(String, f64)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // By rank, O(log n + limit). `BYSCORE … LIMIT offset` walked the `offset` members before
        // the page: 104 ms of Redis's one thread for "around me" at rank 500,000 of 1,000,000
        // (0.07 ms by rank). Members scoring at least `min_score` are a prefix of this order,
        // so the page is cut where the scores fall below it.
        let mut conn = self.conn.clone();
        let last = offset.saturating_add(limit as u64 - 1);
        let page: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(board)
            .arg(offset)
            .arg(last)
            .arg("REV")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match min_score {
            Some(min) => page.into_iter().take_while(|(_, s)| *s >= min).collect(),
            None => page,
        })
    }

    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>> {
        let mut conn = self.conn.clone();
        let (rank, score): (Option<u64>, Option<f64>) = redis::pipe()
            .cmd("ZREVRANK")
            .arg(board)
            .arg(member)
            .cmd("ZSCORE")
            .arg(board)
            .arg(member)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(rank.zip(score))
    }

    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64> {
        let mut conn = self.conn.clone();
        redis::cmd("ZCOUNT")
            .arg(board)
            .arg(min_score.map_or_else(|| "-inf".to_owned(), |m| m.to_string()))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn get_value(&self, key: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn set_value(&self, key: &str, value: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// `SCAN` with a pattern: a page may be empty while the scan goes on, and keys come in no
    /// particular order. A key's kind is its Redis type.
    async fn scan(&self, prefix: &str, cursor: Option<String>, limit: usize) -> Result<ScanPage> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", glob_escape(prefix));
        let (next, found): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor.as_deref().unwrap_or("0"))
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut types = redis::pipe();
        for key in &found {
            types.cmd("TYPE").arg(key);
        }
        let types: Vec<String> = if found.is_empty() {
            Vec::new()
        } else {
            types.query_async(&mut conn).await.map_err(unavailable)?
        };
        let keys = found
            .into_iter()
            .zip(types)
            .filter_map(|(key, t)| {
                let kind = match t.as_str() {
                    "hash" => KeyKind::Document,
                    "string" => KeyKind::Value,
                    // A log and a board are both sorted sets: logs have the log's name before
                    // the document's hash tag, boards have none.
                    "zset" if key.ends_with('}') => KeyKind::Log,
                    "zset" => KeyKind::Board,
                    _ => return None, // deleted since (`none`), or not ours
                };
                Some((key, kind))
            })
            .collect();
        Ok(ScanPage {
            keys,
            next: (next != "0").then_some(next),
        })
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(500) {
            redis::cmd("DEL")
                .arg(chunk)
                .query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn watch(&self, key: &str) -> Option<Watch> {
        let waiting = self.changes.wait_on(key).await;
        Some(Watch {
            changed: waiting.notify.clone(),
            fallback_poll: FALLBACK_POLL,
            registration: Some(Box::new(waiting)),
        })
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

/// `prefix` with Redis glob's special characters escaped.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
        crate::store::contract::run(&store, &prefix).await;
    }

    /// What wakes waiting readers: a successful write announces the new revision on the key's
    /// channel; a lost compare-and-set announces nothing.
    #[tokio::test]
    async fn a_successful_write_announces_its_revision_on_the_keys_channel() {
        use crate::store::{CasWrite, Document, DocumentStore};
        use futures::StreamExt;
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let store = super::RedisStore::connect(&url).await.expect("Redis");
        let key = format!("test:{}:announce", uuid::Uuid::new_v4());
        let mut listener = redis::Client::open(url.as_str())
            .unwrap()
            .get_async_pubsub()
            .await
            .unwrap();
        listener.subscribe(&key).await.unwrap();
        let write = |expected, revision| CasWrite {
            key: key.clone(),
            expected,
            doc: Document {
                revision,
                applied: revision,
                positions: Default::default(),
                body: serde_json::json!({}).into(),
            },
            log: vec![],
            boards: vec![],
        };
        assert_eq!(store.put_many(&[write(0, 1)]).await.unwrap(), vec![true]);
        assert_eq!(store.put_many(&[write(0, 7)]).await.unwrap(), vec![false]);
        assert_eq!(store.put_many(&[write(1, 2)]).await.unwrap(), vec![true]);
        let mut messages = listener.on_message();
        let mut heard = Vec::new();
        for _ in 0..2 {
            let message = messages.next().await.expect("an announcement");
            assert_eq!(message.get_channel_name(), key);
            heard.push(message.get_payload::<u64>().unwrap());
        }
        assert_eq!(heard, vec![1, 2], "the lost write (7) is not announced");
        store.delete(&[key]).await.unwrap();
    }
}
