//! The batched compare-and-set and its entries (see the module documentation of `mongo` for the
//! design and the crash window).

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document as BsonDoc, RawDocumentBuf};

use super::codec::{self, i64_of};
use super::{unavailable, MongoStore, DOCS, LOGS};
use crate::store::{entry_at, BoardOp, CasWrite, LogAppend, Result, StoreError};

/// MongoDB's duplicate-key error: a lost insert, a log entry already written, a board entry
/// already at a newer revision.
pub(super) const DUPLICATE_KEY: i32 = 11000;
/// Most statements in one write command (MongoDB allows 100,000).
const MAX_STATEMENTS: usize = 1000;
/// Most bytes of statements in one write command (a command document may be 16 MiB).
const MAX_BYTES: usize = 8 << 20;
/// How many of a document's last write tokens it keeps (`ws`): a writer that must find out
/// whether its update won looks for its token there, so it answers exactly unless this many
/// other writes hit the document between its update and its look.
const TOKENS_KEPT: i32 = 8;

/// What one write command did.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Documents inserted, or matched by an update's statements (including upserts).
    pub(super) n: i64,
    /// `(statement index, code, message)`.
    pub(super) errors: Vec<(usize, i32, String)>,
}

impl Outcome {
    /// Fails on any write error but a duplicate key; returns the indices that hit one.
    pub(super) fn duplicates(&self, what: &str) -> Result<HashSet<usize>> {
        let mut duplicates = HashSet::new();
        for (index, code, message) in &self.errors {
            if *code != DUPLICATE_KEY {
                return Err(StoreError::message(format!(
                    "{what}: statement {index} failed with code {code}: {message}"
                )));
            }
            duplicates.insert(*index);
        }
        Ok(duplicates)
    }
}

/// The entries of one document write still to be written after it: the document's key (the
/// board entries' owner), its new revision (their guard), and the write's token.
#[derive(Debug)]
pub(super) struct Entries<'a> {
    pub(super) key: &'a str,
    pub(super) revision: i64,
    pub(super) token: ObjectId,
    pub(super) logs: std::borrow::Cow<'a, [LogAppend]>,
    pub(super) boards: std::borrow::Cow<'a, [BoardOp]>,
}

impl MongoStore {
    /// `verb` (`insert`, `update`, `delete`) on `collection` with `items` as its `field`
    /// (`documents`, `updates`, `deletes`), unordered, in as few commands as the size limits
    /// allow. Error indices are `items`' indices.
    pub(super) async fn write_command(
        &self,
        collection: &str,
        verb: &str,
        field: &str,
        items: Vec<BsonDoc>,
    ) -> Result<Outcome> {
        let mut outcome = Outcome::default();
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < items.len() && end - start < MAX_STATEMENTS {
                let size = RawDocumentBuf::from_document(&items[end])
                    .map(|raw| raw.as_bytes().len())
                    .map_err(|e| StoreError::message(format!("encoding a statement: {e}")))?;
                if end > start && bytes + size > MAX_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            let command = doc! {
                verb: collection,
                field: items[start..end].to_vec(),
                "ordered": false,
            };
            let reply = self.db.run_command(command).await.map_err(unavailable)?;
            if let Ok(concern) = reply.get_document("writeConcernError") {
                return Err(StoreError::message(format!(
                    "{verb} {collection}: write concern error {concern}"
                )));
            }
            outcome.n += codec::int(reply.get("n")).unwrap_or(0);
            if let Ok(errors) = reply.get_array("writeErrors") {
                for e in errors.iter().filter_map(Bson::as_document) {
                    let index = codec::int(e.get("index")).unwrap_or(0) as usize;
                    let code = codec::int(e.get("code")).unwrap_or(0) as i32;
                    let message = e.get_str("errmsg").unwrap_or_default().to_owned();
                    outcome.errors.push((start + index, code, message));
                }
            }
            start = end;
        }
        Ok(outcome)
    }

    /// Writes a group of writes with at most one write per key; sets `won` for each.
    pub(super) async fn write_wave(
        &self,
        writes: &[CasWrite],
        wave: &[usize],
        won: &mut [bool],
    ) -> Result<()> {
        let entries = self.write_documents(writes, wave, won).await?;
        self.complete(&entries).await
    }

    /// Phase 1: the documents, each with its entries pending inside it; sets `won` for each and
    /// returns the winners' entries.
    pub(super) async fn write_documents<'a>(
        &self,
        writes: &'a [CasWrite],
        wave: &[usize],
        won: &mut [bool],
    ) -> Result<Vec<Entries<'a>>> {
        let tokens: HashMap<usize, ObjectId> = wave.iter().map(|i| (*i, ObjectId::new())).collect();
        let (inserts, updates): (Vec<usize>, Vec<usize>) =
            wave.iter().partition(|i| writes[**i].expected == 0);

        if !inserts.is_empty() {
            let documents = inserts
                .iter()
                .map(|i| {
                    let w = &writes[*i];
                    let mut d = doc! { "_id": &w.key };
                    d.extend(codec::doc_fields(&w.key, &w.doc)?);
                    d.insert("ws", vec![Bson::ObjectId(tokens[i])]);
                    if let Some(pend) = pending(w, tokens[i])? {
                        d.insert("pend", pend);
                    }
                    Ok(d)
                })
                .collect::<Result<Vec<_>>>()?;
            let outcome = self
                .write_command(DOCS, "insert", "documents", documents)
                .await?;
            let lost = outcome.duplicates("inserting documents")?;
            for (j, i) in inserts.iter().enumerate() {
                won[*i] = !lost.contains(&j);
            }
        }
        if !updates.is_empty() {
            let statements = updates
                .iter()
                .map(|i| {
                    let w = &writes[*i];
                    let mut set = codec::doc_fields(&w.key, &w.doc)?;
                    let mut update = doc! {
                        "$push": { "ws": { "$each": [tokens[i]], "$slice": -TOKENS_KEPT } },
                    };
                    if let Some(pend) = pending(w, tokens[i])? {
                        set.insert("pend", pend);
                    }
                    update.insert("$set", set);
                    Ok(doc! {
                        // A document whose last write's entries are not all written yet cannot
                        // be written: its reader completes them first (`get_many`).
                        "q": {
                            "_id": &w.key,
                            "rev": i64_of(&w.key, "revision", w.expected)?,
                            "pend": { "$exists": false },
                        },
                        "u": update,
                        "upsert": false,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let outcome = self
                .write_command(DOCS, "update", "updates", statements)
                .await?;
            outcome.duplicates("updating documents")?;
            if outcome.n == updates.len() as i64 {
                for i in &updates {
                    won[*i] = true;
                }
            } else {
                // Some lost: which ones, from the tokens the documents kept.
                let keys: Vec<&str> = updates.iter().map(|i| writes[*i].key.as_str()).collect();
                let mut kept: HashMap<String, Vec<ObjectId>> = HashMap::new();
                let mut found = self
                    .docs
                    .find(doc! { "_id": { "$in": keys } })
                    .projection(doc! { "ws": 1 })
                    .await
                    .map_err(unavailable)?;
                while let Some(d) = found.try_next().await.map_err(unavailable)? {
                    let tokens = d
                        .get_array("ws")
                        .map(|ws| ws.iter().filter_map(Bson::as_object_id).collect())
                        .unwrap_or_default();
                    kept.insert(d.get_str("_id").unwrap_or_default().to_owned(), tokens);
                }
                for i in &updates {
                    won[*i] = kept
                        .get(&writes[*i].key)
                        .is_some_and(|t| t.contains(&tokens[i]));
                }
            }
        }

        wave.iter()
            .filter(|i| won[**i])
            .map(|i| {
                let w = &writes[*i];
                Ok(Entries {
                    key: &w.key,
                    revision: i64_of(&w.key, "revision", w.doc.revision)?,
                    token: tokens[i],
                    logs: std::borrow::Cow::Borrowed(&w.log),
                    boards: std::borrow::Cow::Borrowed(&w.boards),
                })
            })
            .collect()
    }

    /// Phases 2 and 3: writes the entries of document writes that won, then removes them from their documents
    /// (only from the write that stored them: a later write's are left alone). Idempotent: run
    /// by the writer, and again by any reader that finds them still pending.
    pub(super) async fn complete(&self, entries: &[Entries<'_>]) -> Result<()> {
        let entries: Vec<&Entries<'_>> = entries
            .iter()
            .filter(|e| !e.logs.is_empty() || !e.boards.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let logs = entries
            .iter()
            .flat_map(|e| e.logs.iter())
            .map(|l| {
                let mut d = doc! {
                    "_id": log_id(&l.key, l.score),
                    "key": &l.key,
                    "score": i64_of(&l.key, "log score", l.score)?,
                    "entry": codec::to_bson(&l.key, &l.entry)?,
                };
                if let Some(at) = entry_at(&l.entry) {
                    d.insert("at", at);
                }
                Ok(d)
            })
            .collect::<Result<Vec<_>>>()?;
        if !logs.is_empty() {
            // A duplicate is an entry written before (by this write's first try, or the
            // writer while a reader completed it).
            self.write_command(LOGS, "insert", "documents", logs)
                .await?
                .duplicates("appending log entries")?;
        }
        let boards: Vec<BsonDoc> = entries
            .iter()
            .flat_map(|e| {
                e.boards
                    .iter()
                    .map(|op| board_statement(e.key, e.revision, op))
            })
            .collect();
        if !boards.is_empty() {
            // A duplicate is a member already set by a newer revision of the same document.
            self.write_command(super::BOARDS, "update", "updates", boards)
                .await?
                .duplicates("changing boards")?;
        }
        let done = entries
            .iter()
            .map(|e| {
                doc! {
                    "q": { "_id": e.key, "pend.w": e.token },
                    "u": { "$unset": { "pend": "" } },
                }
            })
            .collect();
        self.write_command(DOCS, "update", "updates", done)
            .await?
            .duplicates("completing documents")?;
        Ok(())
    }
}

/// The `pend` field of a write with entries: `{w: token, rev, logs, boards}`.
fn pending(w: &CasWrite, token: ObjectId) -> Result<Option<BsonDoc>> {
    if w.log.is_empty() && w.boards.is_empty() {
        return Ok(None);
    }
    let (logs, boards) = codec::entries_to_bson(&w.key, &w.log, &w.boards)?;
    Ok(Some(doc! {
        "w": token,
        "rev": i64_of(&w.key, "revision", w.doc.revision)?,
        "logs": logs,
        "boards": boards,
    }))
}

/// One board change as a guarded upsert. A board entry remembers the document whose write set
/// it (`src`) and that write's revision (`rev`); the change applies unless the entry was set by
/// the same document at the same or a newer revision. When it does not apply, the upsert tries
/// to insert a second entry with the same `_id` and fails with a duplicate key: ignored. A removal
/// leaves a tombstone (no `score`) so that an older change arriving late cannot bring the
/// member back; every read skips tombstones (they have no score).
fn board_statement(src: &str, revision: i64, op: &BoardOp) -> BsonDoc {
    let (board, member, update) = match op {
        BoardOp::Set {
            board,
            member,
            score,
        } => (
            board,
            member,
            doc! { "$set": {
                "board": board, "member": member, "score": *score, "src": src, "rev": revision,
            } },
        ),
        BoardOp::Remove { board, member } => (
            board,
            member,
            doc! {
                "$set": { "board": board, "member": member, "src": src, "rev": revision },
                "$unset": { "score": "" },
            },
        ),
    };
    doc! {
        "q": {
            "_id": board_id(board, member),
            "$or": [ { "src": { "$ne": src } }, { "rev": { "$lt": revision } } ],
        },
        "u": update,
        "upsert": true,
    }
}

/// A log entry's `_id`: unique per `(key, score)` (the score is what follows the last `#`), so
/// appending twice is refused by the `_id` index itself, which no one can drop.
pub(super) fn log_id(key: &str, score: u64) -> String {
    format!("{key}#{score}")
}

/// A board entry's `_id`: unique per `(board, member)` (the length says where the board ends).
pub(super) fn board_id(board: &str, member: &str) -> String {
    format!("{}:{board}{member}", board.len())
}

/// Splits writes into waves with at most one write per key each, in order: the k-th write to a
/// key goes in wave k, so writes to one key apply in the order given (the projection never
/// writes a key twice in one call: one wave).
pub(super) fn waves(writes: &[CasWrite]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        let k = seen.entry(w.key.as_str()).or_insert(0);
        if waves.len() <= *k {
            waves.push(Vec::new());
        }
        waves[*k].push(i);
        *k += 1;
    }
    waves
}
