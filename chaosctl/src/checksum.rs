//! The checksum of one read-model version: what a rebuild prints and what tests compare with the
//! live version at the same position.
//!
//! Over every key under `<prefix><version>:` but the projection's marker (`_meta`, which records
//! when and how a model was built) and plain values: each document's events applied, positions and
//! body; each log entry (score and entry); each board member's score. Not the documents'
//! `revision`, which counts writes and so depends on how events were batched. Keys are taken
//! relative to the version's root, JSON objects with sorted keys, and every item hashed on its
//! own (SHA-256) and the hashes added up (256-bit, wrapping): the result does not depend on the
//! order a store lists its keys in, and two versions built from the same events agree.

use std::collections::BTreeMap;
use std::collections::HashSet;

use anyhow::Context as _;
use chaos_readmodel::{DocumentStore, KeyKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cli::Model;
use crate::deploy::ReadModels;
use crate::{exit, Ctx};

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checksum {
    pub digest: String,
    pub documents: u64,
    pub log_entries: u64,
    pub board_entries: u64,
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} documents, {} log entries, {} board entries)",
            self.digest, self.documents, self.log_entries, self.board_entries
        )
    }
}

/// Adds item hashes as 256-bit numbers: order-independent, and unlike XOR a repeated item counts.
#[derive(Debug, Default)]
struct Sum([u64; 4]);

impl Sum {
    fn add(&mut self, parts: &[&[u8]]) {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let d = h.finalize();
        let mut carry = 0u128;
        for (i, lane) in self.0.iter_mut().enumerate() {
            let word = u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            let s = u128::from(*lane) + u128::from(word) + carry;
            *lane = s as u64;
            carry = s >> 64;
        }
    }
}

/// JSON with object keys sorted at every level (stores may keep another order).
pub fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let ordered: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in ordered {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// Every key under `root`, by kind, without duplicates (a Redis scan may repeat keys).
pub async fn keys_under(
    store: &dyn DocumentStore,
    root: &str,
) -> anyhow::Result<Vec<(String, KeyKind)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.scan(root, cursor, 1000).await?;
        for (key, kind) in page.keys {
            if seen.insert(key.clone()) {
                out.push((key, kind));
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a key belongs to the projection's bookkeeping rather than a view (see the module
/// documentation).
fn is_bookkeeping(relative: &str) -> bool {
    relative.starts_with("_meta:")
}

/// The checksum of the version whose keys start with `root`.
pub async fn compute(store: &dyn DocumentStore, root: &str) -> anyhow::Result<Checksum> {
    let keys = keys_under(store, root).await?;
    let mut sum = Sum::default();
    let (mut documents, mut log_entries, mut board_entries) = (0u64, 0u64, 0u64);
    let docs: Vec<&String> = keys
        .iter()
        .filter(|(k, kind)| *kind == KeyKind::Document && !is_bookkeeping(&k[root.len()..]))
        .map(|(k, _)| k)
        .collect();
    for chunk in docs.chunks(500) {
        let owned: Vec<String> = chunk.iter().map(|k| (*k).clone()).collect();
        for (key, doc) in owned.iter().zip(store.get_many(&owned).await?) {
            let Some(doc) = doc else { continue }; // deleted since the scan
            let positions = serde_json::to_string(&doc.positions)?;
            let body = doc
                .body
                .to_value()
                .with_context(|| format!("the body of {key} is not JSON"))?;
            sum.add(&[
                b"doc",
                &key.as_bytes()[root.len()..],
                &doc.applied.to_le_bytes(),
                positions.as_bytes(),
                canonical(&body).as_bytes(),
            ]);
            documents += 1;
        }
    }
    for (key, kind) in &keys {
        let relative = &key[root.len()..];
        if is_bookkeeping(relative) {
            continue;
        }
        match kind {
            KeyKind::Log => {
                let mut after = 0;
                loop {
                    let page = store.log_range(key, after, 1000).await?;
                    for (score, entry) in &page {
                        sum.add(&[
                            b"log",
                            relative.as_bytes(),
                            &score.to_le_bytes(),
                            canonical(entry).as_bytes(),
                        ]);
                        log_entries += 1;
                    }
                    match page.last() {
                        Some((last, _)) if page.len() == 1000 => after = *last,
                        _ => break,
                    }
                }
            }
            KeyKind::Board => {
                let mut offset = 0u64;
                loop {
                    let page = store.board_range(key, offset, 1000, None).await?;
                    for (member, score) in &page {
                        sum.add(&[
                            b"board",
                            relative.as_bytes(),
                            member.as_bytes(),
                            &score.to_bits().to_le_bytes(),
                        ]);
                        board_entries += 1;
                    }
                    if page.len() < 1000 {
                        break;
                    }
                    offset += page.len() as u64;
                }
            }
            KeyKind::Document | KeyKind::Value => {}
        }
    }
    let mut total = Sha256::new();
    for lane in sum.0 {
        total.update(lane.to_le_bytes());
    }
    total.update(documents.to_le_bytes());
    total.update(log_entries.to_le_bytes());
    total.update(board_entries.to_le_bytes());
    Ok(Checksum {
        digest: hex::encode(total.finalize()),
        documents,
        log_entries,
        board_entries,
    })
}

/// `chaosctl checksum <read model> [--version V]`.
pub async fn run(ctx: &Ctx, model: Model, version: Option<String>) -> anyhow::Result<u8> {
    if model == Model::Warehouse {
        return crate::warehouse::checksum(ctx).await;
    }
    let rm = ReadModels::open(ctx, model).await?;
    let mut keys = rm.served().await?;
    if let Some(v) = version {
        keys.model_version = v;
    }
    let sum = compute(rm.store.as_ref(), &keys.root()).await?;
    ctx.print(
        &json!({ "read_model": model.name(), "model_version": keys.model_version, "checksum": sum }),
        &format!("{} {}: {sum}\n", model.name(), keys.model_version),
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_does_not_depend_on_order_and_counts_repeats() {
        let (mut a, mut b, mut c) = (Sum::default(), Sum::default(), Sum::default());
        a.add(&[b"x"]);
        a.add(&[b"y"]);
        b.add(&[b"y"]);
        b.add(&[b"x"]);
        assert_eq!(a.0, b.0);
        c.add(&[b"x"]);
        c.add(&[b"x"]);
        c.add(&[b"y"]);
        assert_ne!(a.0, c.0);
        // Parts are length-prefixed: ("ab", "c") is not ("a", "bc").
        let (mut d, mut e) = (Sum::default(), Sum::default());
        d.add(&[b"ab", b"c"]);
        e.add(&[b"a", b"bc"]);
        assert_ne!(d.0, e.0);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"z":1,"y":2}],"c":2}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[tokio::test]
    async fn equal_models_built_in_other_batches_have_equal_checksums() {
        use chaos_readmodel::{CasWrite, Document, LogAppend, MemoryStore};
        let store = MemoryStore::default();
        let write = |root: &str, revision: u64, body: Value| CasWrite {
            key: format!("{root}sheet:{{c1}}"),
            expected: 0,
            doc: Document {
                revision,
                applied: 3,
                positions: [("character/c1".to_owned(), 3)].into(),
                body: body.into(),
            },
            log: vec![LogAppend {
                key: format!("{root}sheet:log:{{c1}}"),
                score: 3,
                entry: json!({"n": 3}),
            }],
            boards: vec![],
        };
        store
            .put_many(&[
                write("p:v1:", 3, json!({"a": 1, "b": 2})),
                write("p:v2:", 1, json!({"b": 2, "a": 1})),
                write("p:v3:", 1, json!({"a": 1, "b": 3})),
            ])
            .await
            .unwrap();
        let v1 = compute(&store, "p:v1:").await.unwrap();
        assert_eq!(v1.documents, 1);
        assert_eq!(v1.log_entries, 1);
        assert_eq!(
            v1,
            compute(&store, "p:v2:").await.unwrap(),
            "revision is left out"
        );
        assert_ne!(v1, compute(&store, "p:v3:").await.unwrap(), "bodies differ");
    }
}
