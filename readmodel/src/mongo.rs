//! MongoDB: documents and their histories. Production points at MongoDB (or Amazon DocumentDB,
//! which speaks its protocol); locally and in tests it is SecantusDB, a MongoDB-wire test
//! server. Only what a real MongoDB (4.2 and later, a replica set) does is used: the standard
//! `insert`, `update` and `delete` commands, `find`, `count` and `createIndexes`, and no
//! multi-document transactions.
//!
//! # Layout
//!
//! Four collections in one database (do not rename them without a rebuild):
//! - `docs`: `{_id: key, rev, applied, positions: {<source>: sequence}, body, ws, pend?}`, the
//!   body an embedded document (queryable with any MongoDB tool);
//! - `logs`: `{_id: "<key>#<score>", key, score, entry, at?}`, also unique on `(key, score)`;
//!   `at` (epoch milliseconds, from the entry's `at`) indexed with `(key, at, score)` for time
//!   windows;
//! - `boards`: `{_id: <board, member>, board, member, score?, src, rev}`, also unique on
//!   `(board, member)`, ranked by the
//!   index `(board, score, member)` read backwards: the contract's order, counted natively;
//! - `values`: `{_id: key, v}`.
//!
//! Every uniqueness the design relies on is on `_id`, whose index cannot be missing: a database
//! dropped under a running projector (a lost read model the guardian rebuilds) gets its
//! collections back without the secondary indexes until the next start, slower but correct.
//!
//! # The batched compare-and-set
//!
//! A batch of writes costs a handful of round trips, not one per document:
//! 1. **Documents.** New documents (expected revision 0) go in one unordered `insert`: a
//!    duplicate-key error at statement *i* means write *i* lost. Updates go in one unordered
//!    `update` whose statements match `{_id, rev: expected, pend: absent}`. Every write carries a
//!    fresh token, pushed onto the document's `ws` (its last 8 tokens). If every statement
//!    matched, all won (the common case); otherwise the writer reads `ws` back for those keys:
//!    its write won exactly when its token is there — exact even when two writers raced with
//!    the same expected revision.
//! 2. **Entries.** A write's log entries and board changes are stored *in its document*
//!    (`pend: {w: token, rev, logs, boards}`), atomically with it (one document). Once the
//!    winners are known, their entries are written: log entries in one unordered `insert`
//!    (a duplicate `(key, score)` is one written before), board changes in one unordered
//!    `update` of guarded upserts. Losers' entries are never written.
//! 3. **Completion.** One `update` removes `pend` from the winners' documents, each only if it
//!    still holds that write's token.
//!
//! So every entry is written exactly when its document's write won, and none is lost in a
//! crash: until step 3, the document itself holds them. A crash between steps 1 and 3 (or an
//! error) leaves `pend` in the document; the document then cannot be written again (the update
//! requires `pend` absent), and whoever reads it through [`MongoStore::get_many`] in writer mode
//! completes it first — the projection always reads a document before writing it, and a
//! redelivered batch reads exactly those documents. [`MongoStore::recover`] completes every
//! leftover at start. Completing is idempotent: log entries are insert-if-absent by
//! `(key, score)`, board entries carry the revision of the write that set them, and a change
//! applies only over an older revision of the same document (or another document's entry), so
//! a late writer can never put back an older score; a removal leaves a tombstone (no score)
//! for the same reason. A board entry belongs to the document that set it: deleting that
//! document deletes its board entries, so a document recreated from revision 1 is not refused.
//!
//! Reading (the query API) never writes: a reader ([`MongoStore::open_reader`]) does not
//! complete pending entries. It still sees a document's log entries as soon as the document:
//! a log read takes the entries still pending in documents (first, from a sparse index on
//! them: normally empty) together with the written ones. Board changes have no such merge: a
//! reader may see a board a few milliseconds behind its document (after a crash, until the
//! next writer reads the document or the projector restarts).

mod codec;
mod keys;
mod write;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document as BsonDoc};
use mongodb::options::{ClientOptions, IndexOptions, Tls, TlsOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::store::{
    entry_at, CasWrite, Document, DocumentStore, Result, ScanPage, StoreError, Watch,
};
use write::Entries;

/// How often a reader waiting for a position (the consistency token) looks again.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Collection names: persisted, do not change without a rebuild.
const DOCS: &str = "docs";
const LOGS: &str = "logs";
const BOARDS: &str = "boards";
const VALUES: &str = "values";

/// How to reach MongoDB: the same settings for the projector and the query API, which must
/// agree on the database and the key layout.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// `mongodb://[user:password@]host:port/[db]?options` (DocumentDB: `tls=true&replicaSet=rs0&
    /// retryWrites=false`). A secret: it may hold the password.
    pub url: secrecy::SecretString,
    /// The database; empty: the URL's, else `chaos`.
    #[serde(default)]
    pub database: String,
    /// Prepended to every key (isolates environments sharing a database).
    pub key_prefix: String,
    /// The read-model version served and written (`v1`); a rebuild writes the next one.
    pub model_version: String,
    /// PEM file of the CA that signed the server's certificate (DocumentDB's bundle); empty:
    /// the URL's `tlsCAFile`, else the system roots.
    #[serde(default)]
    pub ca_file: String,
}

/// A user of the read models ([`MongoStore::provision_users`]).
#[derive(Debug, Clone)]
pub struct MongoUser {
    pub name: String,
    pub password: secrecy::SecretString,
    pub role: MongoRole,
}

/// What a [`MongoUser`] may do on the read models' database: MongoDB's built-in roles, which
/// DocumentDB has too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MongoRole {
    /// `read`: the query API ([`MongoStore::open_reader`] never writes).
    Read,
    /// `readWrite`: the projector (documents, entries, its indexes).
    ReadWrite,
}

impl MongoRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "readWrite",
        }
    }
}

/// The projector's user ([`MongoRole::ReadWrite`]); the deploy's URLs name it.
pub const PROJECTOR_USER: &str = "chaos_projector";
/// The query API's user ([`MongoRole::Read`]).
pub const READER_USER: &str = "chaos_reader";

/// `createUser` of a name taken.
const USER_EXISTS: i32 = 51003;

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MongoStore {
    db: Database,
    docs: Collection<BsonDoc>,
    logs: Collection<BsonDoc>,
    boards: Collection<BsonDoc>,
    values: Collection<BsonDoc>,
    /// Completes the pending entries of documents it reads (the projector); a reader does not.
    writer: bool,
}

fn unavailable(e: mongodb::error::Error) -> StoreError {
    StoreError::unavailable(e)
}

impl MongoStore {
    /// Connects as the projector: creates the indexes, completes writes a crash left pending,
    /// and completes pending writes it reads.
    pub async fn open(config: &MongoConfig) -> Result<Self> {
        let mut store = Self::connect_with(config).await?;
        store.writer = true;
        store.create_indexes().await?;
        let recovered = store.recover().await?;
        if recovered > 0 {
            tracing::info!(
                documents = recovered,
                "completed the entries of writes interrupted before"
            );
        }
        Ok(store)
    }

    /// Connects as a reader (the query API): no index creation, no writes on reads.
    pub async fn open_reader(config: &MongoConfig) -> Result<Self> {
        Self::connect_with(config).await
    }

    /// A writer on a plain URL and database (tests, tools).
    pub async fn connect(url: &str, database: &str) -> Result<Self> {
        Self::open(&MongoConfig {
            url: url.to_owned().into(),
            database: database.to_owned(),
            key_prefix: String::new(),
            model_version: String::new(),
            ca_file: String::new(),
        })
        .await
    }

    async fn connect_with(config: &MongoConfig) -> Result<Self> {
        // As for Redis: two rustls crypto providers are linked; name one for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut options = ClientOptions::parse(config.url.expose_secret())
            .await
            .map_err(unavailable)?;
        if !config.ca_file.is_empty() {
            let ca = PathBuf::from(&config.ca_file);
            match &mut options.tls {
                Some(Tls::Enabled(tls)) => tls.ca_file_path = Some(ca),
                _ => {
                    options.tls = Some(Tls::Enabled(TlsOptions::builder().ca_file_path(ca).build()))
                }
            }
        }
        // Fail a call within seconds while the server is away (the driver's default is 30 s):
        // the feed retries, readiness reports it.
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(5));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(5));
        options.app_name.get_or_insert_with(|| "chaos-world".into());
        let database = match (&config.database, &options.default_database) {
            (name, _) if !name.is_empty() => name.clone(),
            (_, Some(name)) => name.clone(),
            _ => "chaos".to_owned(),
        };
        let client = Client::with_options(options).map_err(unavailable)?;
        let db = client.database(&database);
        Ok(Self {
            docs: db.collection(DOCS),
            logs: db.collection(LOGS),
            boards: db.collection(BOARDS),
            values: db.collection(VALUES),
            db,
            writer: false,
        })
    }

    /// Creates the read models' users in `admin`, or sets their password and role if they
    /// exist (idempotent: every deploy runs it), on this store's database. `config.url` names an
    /// administrator (DocumentDB's master user). Returns what it did to each: `created` or
    /// `updated`. Clients of the users name `authSource=admin` in their URL.
    pub async fn provision_users(
        config: &MongoConfig,
        users: &[MongoUser],
    ) -> Result<Vec<(String, &'static str)>> {
        let store = Self::connect_with(config).await?;
        let database = store.db.name().to_owned();
        let admin = store.db.client().database("admin");
        let mut done = Vec::with_capacity(users.len());
        for user in users {
            let roles = vec![doc! { "role": user.role.name(), "db": &database }];
            let created = admin
                .run_command(doc! {
                    "createUser": &user.name,
                    "pwd": user.password.expose_secret(),
                    "roles": roles.clone(),
                })
                .await;
            let what = match created {
                Ok(_) => "created",
                Err(e) if command_code(&e) == Some(USER_EXISTS) => {
                    admin
                        .run_command(doc! {
                            "updateUser": &user.name,
                            "pwd": user.password.expose_secret(),
                            "roles": roles,
                        })
                        .await
                        .map_err(unavailable)?;
                    "updated"
                }
                Err(e) => return Err(unavailable(e)),
            };
            done.push((user.name.clone(), what));
        }
        Ok(done)
    }

    /// The database name (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn create_indexes(&self) -> Result<()> {
        let index = |keys: BsonDoc, name: &str, unique: bool, sparse: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique.then_some(true))
                        .sparse(sparse.then_some(true))
                        .build(),
                )
                .build()
        };
        self.logs
            .create_indexes([
                index(doc! { "key": 1, "score": 1 }, "key_score", true, false),
                index(
                    doc! { "key": 1, "at": 1, "score": 1 },
                    "key_at_score",
                    false,
                    false,
                ),
            ])
            .await
            .map_err(unavailable)?;
        self.boards
            .create_indexes([
                index(
                    doc! { "board": 1, "member": 1 },
                    "board_member",
                    true,
                    false,
                ),
                // Read backwards for the board's order (score desc, member desc): the same to
                // MongoDB as a descending index, and SecantusDB mis-bounds ranges on a
                // descending key (`score >= x` found only the highest member).
                index(
                    doc! { "board": 1, "score": 1, "member": 1 },
                    "board_rank",
                    false,
                    false,
                ),
                index(doc! { "src": 1 }, "src", false, false),
            ])
            .await
            .map_err(unavailable)?;
        // Documents with entries still pending (normally none): found at start by `recover`,
        // and by readers of their logs.
        self.docs
            .create_indexes([
                index(doc! { "pend.w": 1 }, "pending", false, true),
                index(doc! { "pend.logs.k": 1 }, "pending_logs", false, true),
            ])
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Completes the entries of every write left pending (a crash between a document's write
    /// and its entries'); returns how many documents had some.
    pub async fn recover(&self) -> Result<u64> {
        let mut found = self
            .docs
            .find(doc! { "pend.w": { "$exists": true } })
            .await
            .map_err(unavailable)?;
        let mut pending = Vec::new();
        while let Some(d) = found.try_next().await.map_err(unavailable)? {
            pending.push(d);
        }
        for chunk in pending.chunks(500) {
            self.complete_stored(chunk).await?;
        }
        Ok(pending.len() as u64)
    }

    /// Completes the pending entries of stored documents.
    async fn complete_stored(&self, stored: &[BsonDoc]) -> Result<()> {
        let mut entries = Vec::new();
        for d in stored {
            let Ok(pend) = d.get_document("pend") else {
                continue;
            };
            let key = d.get_str("_id").unwrap_or_default();
            let (logs, boards) = codec::entries_from_bson(key, pend)?;
            entries.push(Entries {
                key,
                revision: codec::int(pend.get("rev")).unwrap_or(0),
                token: pend.get_object_id("w").map_err(|_| StoreError::Corrupt {
                    key: key.to_owned(),
                    reason: "pending entries without their token".into(),
                })?,
                logs: logs.into(),
                boards: boards.into(),
            });
        }
        tracing::debug!(documents = entries.len(), "completing pending entries");
        self.complete(&entries).await
    }

    async fn find_all(
        &self,
        collection: &Collection<BsonDoc>,
        filter: BsonDoc,
        sort: BsonDoc,
        skip: u64,
        limit: usize,
    ) -> Result<Vec<BsonDoc>> {
        let mut cursor = collection
            .find(filter)
            .sort(sort)
            .skip(skip)
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(unavailable)? {
            out.push(d);
        }
        Ok(out)
    }

    /// A log's entries above `after` (within `window` if given), in score order, up to
    /// `limit`: those written, and those still pending in their document (read first: an entry
    /// whose document was written before this call is in one or the other, so a reader that
    /// saw a document sees its entries, as it would in Redis).
    async fn log_read(
        &self,
        key: &str,
        window: Option<(i64, i64)>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Value)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let in_window = |at: Option<i64>| {
            window.is_none_or(|(from, to)| at.is_some_and(|at| from <= at && at < to))
        };
        let mut entries: std::collections::BTreeMap<u64, Value> = self
            .pending_entries(key)
            .await?
            .into_iter()
            .filter(|(score, entry)| *score > after && in_window(entry_at(entry)))
            .collect();
        let mut filter =
            doc! { "key": key, "score": { "$gt": codec::i64_of(key, "score", after)? } };
        if let Some((from, to)) = window {
            filter.insert("at", doc! { "$gte": from, "$lt": to });
        }
        let found = self
            .find_all(&self.logs, filter, doc! { "score": 1 }, 0, limit)
            .await?;
        entries.extend(Self::log_entries(key, found)?);
        Ok(entries.into_iter().take(limit).collect())
    }

    /// The entries of log `key` still pending in their documents (normally none: only between
    /// a write's document and its entries, or after a crash there).
    async fn pending_entries(&self, key: &str) -> Result<Vec<(u64, Value)>> {
        let mut cursor = self
            .docs
            .find(doc! { "pend.logs.k": key })
            .projection(doc! { "pend.logs": 1 })
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(unavailable)? {
            let id = d.get_str("_id").unwrap_or_default();
            if let Ok(pend) = d.get_document("pend") {
                let (logs, _) = codec::entries_from_bson(id, pend)?;
                out.extend(
                    logs.into_iter()
                        .filter(|l| l.key == key)
                        .map(|l| (l.score, l.entry)),
                );
            }
        }
        Ok(out)
    }

    fn log_entries(key: &str, found: Vec<BsonDoc>) -> Result<Vec<(u64, Value)>> {
        found
            .into_iter()
            .map(|mut d| {
                let score = codec::int(d.get("score"))
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: key.to_owned(),
                        reason: "log entry without a score".into(),
                    })?;
                Ok((
                    score,
                    codec::to_json(d.remove("entry").unwrap_or(Bson::Null)),
                ))
            })
            .collect()
    }
}

/// Live board members with at least `min_score` (tombstones have no score).
fn live(board: &str, min_score: Option<f64>) -> BsonDoc {
    doc! { "board": board, "score": { "$gte": min_score.unwrap_or(f64::NEG_INFINITY) } }
}

#[async_trait]
impl DocumentStore for MongoStore {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Document>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cursor = self
            .docs
            .find(doc! { "_id": { "$in": keys } })
            .projection(doc! { "ws": 0 })
            .await
            .map_err(unavailable)?;
        let mut found = std::collections::HashMap::new();
        let mut pending = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(unavailable)? {
            let key = d.get_str("_id").unwrap_or_default().to_owned();
            if d.contains_key("pend") {
                pending.push(d.clone());
            }
            found.insert(key, d);
        }
        if self.writer && !pending.is_empty() {
            self.complete_stored(&pending).await?;
        }
        keys.iter()
            .map(|k| found.get(k).map(|d| codec::doc_from_bson(k, d)).transpose())
            .collect()
    }

    async fn put_many(&self, writes: &[CasWrite]) -> Result<Vec<bool>> {
        let mut won = vec![false; writes.len()];
        for wave in write::waves(writes) {
            self.write_wave(writes, &wave, &mut won).await?;
        }
        Ok(won)
    }

    async fn log_range(&self, key: &str, after: u64, limit: usize) -> Result<Vec<(u64, Value)>> {
        self.log_read(key, None, after, limit).await
    }

    /// From the `(key, at, score)` index.
    async fn log_window(
        &self,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Value)>> {
        if from_ms >= to_ms {
            return Ok(Vec::new());
        }
        self.log_read(key, Some((from_ms, to_ms)), after, limit)
            .await
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
        let found = self
            .find_all(
                &self.boards,
                live(board, min_score),
                doc! { "score": -1, "member": -1 },
                offset,
                limit,
            )
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|d| {
                let score = codec::float(d.get("score"))?;
                Some((d.get_str("member").ok()?.to_owned(), score))
            })
            .collect())
    }

    /// The members ahead in the board's order (a higher score, or the same and a greater
    /// member), counted from the rank index.
    async fn board_rank(&self, board: &str, member: &str) -> Result<Option<(u64, f64)>> {
        let Some(score) = self
            .boards
            .find_one(doc! { "board": board, "member": member })
            .await
            .map_err(unavailable)?
            .and_then(|d| codec::float(d.get("score")))
        else {
            return Ok(None);
        };
        let ahead = self
            .boards
            .count_documents(doc! {
                "board": board,
                "$or": [
                    { "score": { "$gt": score } },
                    { "score": score, "member": { "$gt": member } },
                ],
            })
            .await
            .map_err(unavailable)?;
        Ok(Some((ahead, score)))
    }

    async fn board_len(&self, board: &str, min_score: Option<f64>) -> Result<u64> {
        self.boards
            .count_documents(live(board, min_score))
            .await
            .map_err(unavailable)
    }

    async fn get_value(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .values
            .find_one(doc! { "_id": key })
            .await
            .map_err(unavailable)?
            .and_then(|d| d.get_str("v").ok().map(str::to_owned)))
    }

    async fn set_value(&self, key: &str, value: &str) -> Result<()> {
        self.values
            .update_one(doc! { "_id": key }, doc! { "$set": { "v": value } })
            .upsert(true)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn scan(&self, prefix: &str, cursor: Option<String>, limit: usize) -> Result<ScanPage> {
        self.scan_keys(prefix, cursor, limit).await
    }

    /// A document's own board entries go with it (see the module documentation).
    async fn delete(&self, keys: &[String]) -> Result<()> {
        self.delete_keys(keys).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.delete_under(prefix).await
    }

    /// No announcements (change streams would need a replica set's oplog): a reader waiting
    /// for a position looks again every `WAIT_POLL` rather than the port's default 5 ms, one
    /// query per waiting request.
    async fn watch(&self, _key: &str) -> Option<Watch> {
        Some(Watch {
            changed: std::sync::Arc::new(tokio::sync::Notify::new()),
            fallback_poll: WAIT_POLL,
            registration: None,
        })
    }

    async fn ping(&self) -> Result<()> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests;
