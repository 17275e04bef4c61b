//! Between the port's types (JSON bodies, `u64` revisions and scores) and BSON.

use mongodb::bson::{self, doc, Bson, Document as BsonDoc};
use serde_json::Value;

use crate::store::{BoardOp, Body, Document, LogAppend, StoreError};

/// A JSON value as BSON: objects become embedded documents (queryable in MongoDB), integers
/// `Int64`, other numbers `Double`.
pub(super) fn to_bson(key: &str, value: &Value) -> Result<Bson, StoreError> {
    bson::to_bson(value).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("not storable as BSON: {e}"),
    })
}

/// A body as JSON, to store as BSON (an embedded document, queryable with MongoDB's tools).
fn body_value(key: &str, body: &Body) -> Result<Value, StoreError> {
    body.to_value().map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("the body is not JSON: {e}"),
    })
}

/// BSON written by [`to_bson`] back to the same JSON.
pub(super) fn to_json(value: Bson) -> Value {
    value.into_relaxed_extjson()
}

/// An integer field, whichever integer type the server kept it as.
pub(super) fn int(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

pub(super) fn float(value: Option<&Bson>) -> Option<f64> {
    match value? {
        Bson::Double(v) => Some(*v),
        Bson::Int64(v) => Some(*v as f64),
        Bson::Int32(v) => Some(f64::from(*v)),
        _ => None,
    }
}

/// A `u64` of the port (revision, sequence, score) as BSON's `Int64`.
pub(super) fn i64_of(key: &str, what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("{what} {value} exceeds Int64"),
    })
}

fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The fields a write stores (`$set` by an update, or the inserted document without `_id`).
pub(super) fn doc_fields(key: &str, doc: &Document) -> Result<BsonDoc, StoreError> {
    let mut positions = BsonDoc::new();
    for (source, at) in &doc.positions {
        positions.insert(source.clone(), i64_of(key, "position", *at)?);
    }
    Ok(doc! {
        "rev": i64_of(key, "revision", doc.revision)?,
        "applied": i64_of(key, "applied", doc.applied)?,
        "positions": positions,
        "body": to_bson(key, &body_value(key, &doc.body)?)?,
    })
}

/// A stored document back as the port's.
pub(super) fn doc_from_bson(key: &str, stored: &BsonDoc) -> Result<Document, StoreError> {
    let revision = int(stored.get("rev")).ok_or_else(|| corrupt(key, "no revision"))?;
    let applied = int(stored.get("applied")).ok_or_else(|| corrupt(key, "no applied count"))?;
    let positions = match stored.get("positions") {
        Some(Bson::Document(p)) => p
            .iter()
            .map(|(source, at)| {
                int(Some(at))
                    .and_then(|v| u64::try_from(v).ok())
                    .map(|v| (source.clone(), v))
                    .ok_or_else(|| corrupt(key, format!("position of {source}")))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(corrupt(key, "no positions")),
    };
    Ok(Document {
        revision: u64::try_from(revision).map_err(|_| corrupt(key, "negative revision"))?,
        applied: u64::try_from(applied).map_err(|_| corrupt(key, "negative applied count"))?,
        positions,
        body: Body::from_value(&to_json(stored.get("body").cloned().unwrap_or(Bson::Null))),
    })
}

/// The log entries and board changes of a write, as stored in its document until they are
/// written (see the module documentation of `mongo`): `logs: [{k, s, e}]`, `boards: [{b, m,
/// s}]` with no `s` for a removal.
pub(super) fn entries_to_bson(
    key: &str,
    logs: &[LogAppend],
    boards: &[BoardOp],
) -> Result<(Vec<Bson>, Vec<Bson>), StoreError> {
    let logs = logs
        .iter()
        .map(|l| {
            Ok(Bson::Document(doc! {
                "k": &l.key,
                "s": i64_of(key, "log score", l.score)?,
                "e": to_bson(&l.key, &l.entry)?,
            }))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let boards = boards
        .iter()
        .map(|op| match op {
            BoardOp::Set {
                board,
                member,
                score,
            } => Bson::Document(doc! { "b": board, "m": member, "s": *score }),
            BoardOp::Remove { board, member } => Bson::Document(doc! { "b": board, "m": member }),
        })
        .collect();
    Ok((logs, boards))
}

/// The inverse of [`entries_to_bson`].
pub(super) fn entries_from_bson(
    key: &str,
    pend: &BsonDoc,
) -> Result<(Vec<LogAppend>, Vec<BoardOp>), StoreError> {
    let list = |name: &str| -> Vec<BsonDoc> {
        match pend.get(name) {
            Some(Bson::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_document().cloned())
                .collect(),
            _ => Vec::new(),
        }
    };
    let logs = list("logs")
        .into_iter()
        .map(|l| {
            let log = l
                .get_str("k")
                .map_err(|_| corrupt(key, "pending log key"))?;
            let score = int(l.get("s"))
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| corrupt(key, "pending log score"))?;
            Ok(LogAppend {
                key: log.to_owned(),
                score,
                entry: to_json(l.get("e").cloned().unwrap_or(Bson::Null)),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let boards = list("boards")
        .into_iter()
        .map(|b| {
            let board = b
                .get_str("b")
                .map_err(|_| corrupt(key, "pending board"))?
                .to_owned();
            let member = b
                .get_str("m")
                .map_err(|_| corrupt(key, "pending board member"))?
                .to_owned();
            Ok(match float(b.get("s")) {
                Some(score) => BoardOp::Set {
                    board,
                    member,
                    score,
                },
                None => BoardOp::Remove { board, member },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((logs, boards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_survives_the_trip_through_bson() {
        let body = serde_json::json!({
            "n": 3, "big": 9_007_199_254_740_993_u64, "neg": -4, "f": 2.5, "whole": 2.0,
            "s": "x", "a": [1, "b", null, {"c": true}], "o": {"character/1": 7}, "nothing": null,
        });
        let back = to_json(to_bson("k", &body).unwrap());
        assert_eq!(back, body);
        assert!(to_bson("k", &serde_json::json!(u64::MAX)).is_err());
    }

    #[test]
    fn pending_entries_survive_the_trip_through_bson() {
        let logs = vec![LogAppend {
            key: "l:{1}".into(),
            score: 5,
            entry: serde_json::json!({"at": 1, "x": [1, 2]}),
        }];
        let boards = vec![
            BoardOp::Set {
                board: "b".into(),
                member: "m".into(),
                score: 1.5,
            },
            BoardOp::Remove {
                board: "b".into(),
                member: "n".into(),
            },
        ];
        let (l, b) = entries_to_bson("k", &logs, &boards).unwrap();
        let pend = doc! { "logs": l, "boards": b };
        assert_eq!(entries_from_bson("k", &pend).unwrap(), (logs, boards));
    }
}
