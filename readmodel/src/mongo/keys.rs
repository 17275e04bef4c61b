//! Listing and deleting keys: scans by kind in key order, deletes by key and by prefix.

use mongodb::bson::{doc, Document as BsonDoc};
use mongodb::Collection;

use super::{unavailable, MongoStore, BOARDS, DOCS, LOGS, VALUES};
use crate::store::{KeyKind, Result, ScanPage};

impl MongoStore {
    /// Keys of `collection`'s `field` starting with `prefix`, after `after`, distinct, in
    /// order: the next one each time from the index (a skip scan: one round trip per key, no
    /// scan of a big log's entries).
    pub(super) async fn distinct_after(
        &self,
        collection: &Collection<BsonDoc>,
        field: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        while out.len() < limit {
            let lower = match out.last().map(String::as_str).or(after) {
                Some(last) => doc! { "$gt": last, "$lt": prefix_end(prefix) },
                None => doc! { "$gte": prefix, "$lt": prefix_end(prefix) },
            };
            let next = collection
                .find_one(doc! { field: lower })
                .sort(doc! { field: 1 })
                .projection(doc! { field: 1 })
                .await
                .map_err(unavailable)?;
            match next.as_ref().and_then(|d| d.get_str(field).ok()) {
                Some(key) if key.starts_with(prefix) => out.push(key.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Documents, then logs, then boards, then values, each in key order; a page holds keys of
    /// one kind (it may be empty while the scan goes on). The cursor is `<kind>:<last key>`. A
    /// board is listed while it has entries, tombstones included (so a prefix delete finds it).
    pub(super) async fn scan_keys(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<ScanPage> {
        const KINDS: [KeyKind; 4] = [
            KeyKind::Document,
            KeyKind::Log,
            KeyKind::Board,
            KeyKind::Value,
        ];
        let limit = limit.max(1);
        let (kind, after) = match cursor.as_deref().and_then(|c| c.split_once(':')) {
            Some((k, last)) => (
                k.parse::<usize>().unwrap_or(KINDS.len()),
                (!last.is_empty()).then(|| last.to_owned()),
            ),
            None => (0, None),
        };
        let Some(&what) = KINDS.get(kind) else {
            return Ok(ScanPage::default());
        };
        let keys = match what {
            KeyKind::Document => {
                self.distinct_after(&self.docs, "_id", prefix, after.as_deref(), limit)
                    .await?
            }
            KeyKind::Log => {
                self.distinct_after(&self.logs, "key", prefix, after.as_deref(), limit)
                    .await?
            }
            KeyKind::Board => {
                self.distinct_after(&self.boards, "board", prefix, after.as_deref(), limit)
                    .await?
            }
            KeyKind::Value => {
                self.distinct_after(&self.values, "_id", prefix, after.as_deref(), limit)
                    .await?
            }
        };
        let next = match keys.last() {
            Some(last) if keys.len() == limit => Some(format!("{kind}:{last}")),
            _ => (kind + 1 < KINDS.len()).then(|| format!("{}:", kind + 1)),
        };
        Ok(ScanPage {
            keys: keys.into_iter().map(|k| (k, what)).collect(),
            next,
        })
    }

    /// A document's own board entries go with it (see the module documentation).
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(1000) {
            let statements = |field: &str| -> Vec<BsonDoc> {
                vec![doc! { "q": { field: { "$in": chunk } }, "limit": 0 }]
            };
            for (collection, field) in [
                (DOCS, "_id"),
                (LOGS, "key"),
                (BOARDS, "board"),
                (BOARDS, "src"),
                (VALUES, "_id"),
            ] {
                self.write_command(collection, "delete", "deletes", statements(field))
                    .await?
                    .duplicates("deleting")?;
            }
        }
        Ok(())
    }

    /// Counts what [`Self::scan_keys`] lists, then deletes by key range in every collection.
    pub(super) async fn delete_under(&self, prefix: &str) -> Result<u64> {
        let mut count = 0;
        let mut cursor = None;
        loop {
            let page = self.scan_keys(prefix, cursor, 1000).await?;
            count += page.keys.len() as u64;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let range = doc! { "$gte": prefix, "$lt": prefix_end(prefix) };
        for (collection, field) in [
            (&self.docs, "_id"),
            (&self.logs, "key"),
            (&self.boards, "board"),
            (&self.values, "_id"),
        ] {
            collection
                .delete_many(doc! { field: range.clone() })
                .await
                .map_err(unavailable)?;
        }
        Ok(count)
    }
}

/// An upper bound of every string starting with `prefix` (keys are compared as UTF-8 bytes).
pub(super) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
