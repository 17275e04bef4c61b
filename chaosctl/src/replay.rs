//! A rebuild's replay of the event store: the store feed's work (read the global order, decode,
//! apply, save the position) arranged for throughput. A reader task fetches the next batches
//! while earlier ones are decoded (in parallel chunks) and the current one is written, and a
//! batch is written in parallel lanes: events are routed by the document they change (the first
//! view that reads them decides), so a document, and every stream feeding it, stays in one lane
//! and in feed order. The position is saved after each batch is written in full, so an
//! interruption resumes exactly as the store feed does. Documents fed by several streams that
//! two views would route differently are still correct (every write is a compare-and-set,
//! retried), just slower.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, Position, StoredEvent};
use chaos_projectors::runner::{FeedCheckpoint, Verdict};
use chaos_readmodel::ViewProjection;
use chaos_schemas::PublishedEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct StoreReplay {
    pub log: Arc<dyn EventLog>,
    pub projection: ViewProjection,
    pub checkpoint: Arc<dyn FeedCheckpoint>,
    pub batch: u32,
    pub lanes: usize,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub events: u64,
    pub dead_letters: u64,
}

/// One batch read ahead: its events, where it ends, and how many rows it had.
struct Read {
    events: Vec<PublishedEvent>,
    last: Position,
    rows: u64,
    undecodable: u64,
}

impl StoreReplay {
    /// Where the replay resumes.
    pub async fn position(&self) -> anyhow::Result<Position> {
        self.checkpoint.load().await
    }

    /// Replays from the checkpoint to the store's end (as it grows meanwhile); stops after the
    /// batch in hand once `stop` is cancelled. `progress` gets the events done after each batch.
    pub async fn run(
        &self,
        stop: &CancellationToken,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<Replayed> {
        let from = self.position().await?;
        // The reader fetches the next batches while earlier ones are decoded (on the blocking
        // pool, in parallel chunks) and the current one is written; the handles queue in order.
        let (tx, mut rx) = mpsc::channel::<JoinHandle<anyhow::Result<Read>>>(2);
        let reader = {
            let log = self.log.clone();
            let batch = self.batch;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut at = from;
                while !stop.is_cancelled() {
                    let decoded = match log.read_after(at, batch).await {
                        Ok(stored) if stored.is_empty() => return,
                        Ok(stored) => {
                            at = stored.last().map_or(at, |e| e.position);
                            tokio::spawn(decode(stored))
                        }
                        Err(e) => {
                            let _ = tx.send(tokio::spawn(async move { Err(e.into()) })).await;
                            return;
                        }
                    };
                    if tx.send(decoded).await.is_err() {
                        return;
                    }
                }
            })
        };
        let mut done = Replayed::default();
        while let Some(read) = rx.recv().await {
            let read = read.await??;
            done.dead_letters += read.undecodable + self.apply(read.events).await?;
            self.checkpoint.save(read.last).await?;
            done.events += read.rows;
            progress(done.events);
            if stop.is_cancelled() {
                break;
            }
        }
        drop(rx);
        reader.abort();
        Ok(done)
    }

    /// Writes one batch in lanes; returns its dead letters.
    async fn apply(&self, events: Vec<PublishedEvent>) -> anyhow::Result<u64> {
        let lanes = self.lanes.max(1);
        let mut split: Vec<Vec<PublishedEvent>> = vec![Vec::new(); lanes];
        for e in events {
            split[lane(&self.projection, &e, lanes)].push(e);
        }
        let verdicts = futures::future::try_join_all(
            split
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| self.projection.apply_batch(l)),
        )
        .await?;
        let mut dead = 0;
        for (e, v) in split
            .iter()
            .filter(|l| !l.is_empty())
            .flatten()
            .zip(verdicts.into_iter().flatten())
        {
            if let Verdict::DeadLetter(reason) = v {
                tracing::error!(aggregate_id = %e.envelope.aggregate_id, sequence = e.envelope.sequence, reason, "dead letter");
                dead += 1;
            }
        }
        Ok(dead)
    }
}

/// Rows decoded per blocking task: the chunks of a batch run side by side on the blocking pool.
const DECODE_CHUNK: usize = 8_192;

/// Decodes a batch read from the store, in order, in chunks on the blocking pool (decoding is CPU
/// work: off the runtime's threads, beside the writes).
async fn decode(stored: Vec<StoredEvent>) -> anyhow::Result<Read> {
    let last = stored.last().map_or(Position::START, |e| e.position);
    let rows = stored.len() as u64;
    let stored = Arc::new(stored);
    let chunks: Vec<_> = (0..stored.len())
        .step_by(DECODE_CHUNK)
        .map(|start| {
            let stored = stored.clone();
            tokio::task::spawn_blocking(move || {
                let end = (start + DECODE_CHUNK).min(stored.len());
                let mut events = Vec::with_capacity(end - start);
                let mut undecodable = 0;
                for s in &stored[start..end] {
                    match to_published(s) {
                        Ok(e) => events.push(e),
                        Err(e) => {
                            tracing::error!(aggregate_id = %s.aggregate_id, sequence = s.sequence, error = %e, "dead letter: the stored event does not decode");
                            undecodable += 1;
                        }
                    }
                }
                (events, undecodable)
            })
        })
        .collect();
    let mut read = Read {
        events: Vec::with_capacity(stored.len()),
        last,
        rows,
        undecodable: 0,
    };
    for chunk in chunks {
        let (events, undecodable) = chunk.await?;
        read.events.extend(events);
        read.undecodable += undecodable;
    }
    Ok(read)
}

/// The lane of an event: by the document the first view reading it changes.
fn lane(projection: &ViewProjection, e: &PublishedEvent, lanes: usize) -> usize {
    if lanes == 1 {
        return 0;
    }
    let aggregate = e.envelope.aggregate_type.as_str();
    let doc = projection
        .views()
        .iter()
        .filter(|v| v.sources().contains(&aggregate))
        .find_map(|v| v.doc_id(e));
    let mut h = DefaultHasher::new();
    match doc {
        Some(id) => id.hash(&mut h),
        None => e.envelope.aggregate_id.hash(&mut h),
    }
    (h.finish() % lanes as u64) as usize
}

#[cfg(test)]
mod tests {
    use chaos_domain::GameEvent;

    use super::*;

    const CREATED: &str = r#"{"CharacterCreated": {"owner": "00000000-0000-0000-0000-000000000001", "name": "Veteran", "class": "warrior", "level": 1, "max_hp": 140, "max_mana": 40, "zone": "whispering_woods", "skills": ["strike"], "created_at": "2026-01-01T00:00:00Z"}}"#;

    fn row(n: usize, payload: &str) -> StoredEvent {
        StoredEvent {
            position: Position {
                tx_id: 1,
                global_position: n as i64 + 1,
            },
            aggregate_type: "character".into(),
            aggregate_id: format!("00000000-0000-4000-8000-{n:012}"),
            sequence: 1,
            event_type: "CharacterCreated".into(),
            event_version: chaos_domain::CharacterEvent::current_version("CharacterCreated")
                .expect("a character event type")
                .to_string(),
            payload: chaos_eventstore::JsonText::stored(payload.to_owned()),
            metadata: chaos_eventstore::JsonText::stored("{}".to_owned()),
        }
    }

    /// A batch bigger than a chunk comes back whole and in order, the rows that do not decode
    /// counted (each chunk's), and its end is its last row's position.
    #[tokio::test]
    async fn a_batch_decoded_in_chunks_keeps_its_order_and_counts_the_undecodable() {
        let rows = 3 * DECODE_CHUNK + 17;
        let broken = [5, DECODE_CHUNK, 2 * DECODE_CHUNK + 1, rows - 1];
        let stored: Vec<StoredEvent> = (0..rows)
            .map(|n| {
                row(
                    n,
                    if broken.contains(&n) {
                        r#"{"CharacterCreated": {"owner": 7}}"#
                    } else {
                        CREATED
                    },
                )
            })
            .collect();
        let expected: Vec<String> = stored
            .iter()
            .enumerate()
            .filter(|(n, _)| !broken.contains(n))
            .map(|(_, s)| s.aggregate_id.clone())
            .collect();
        let last = stored[rows - 1].position;

        let read = decode(stored).await.unwrap();

        let ids: Vec<String> = read
            .events
            .iter()
            .map(|e| e.envelope.aggregate_id.clone())
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(read.undecodable, broken.len() as u64);
        assert_eq!(read.rows, rows as u64);
        assert_eq!(read.last, last);
    }
}
