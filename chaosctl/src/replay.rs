//! A rebuild's replay of the event store: the store feed's work (read the global order, decode,
//! apply, save the position) arranged for throughput. A reader task reads and decodes the next
//! batches while the current one is written, and a batch is written in parallel lanes: events
//! are routed by the document they change (the first view that reads them decides), so a
//! document, and every stream feeding it, stays in one lane and in feed order. The position is
//! saved after each batch is written in full, so an interruption resumes exactly as the store feed
//! does. Documents fed by several streams that two views would route differently are still
//! correct (every write is a compare-and-set, retried), just slower.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, Position};
use chaos_projectors::runner::{FeedCheckpoint, Verdict};
use chaos_readmodel::ViewProjection;
use chaos_schemas::PublishedEvent;
use tokio::sync::mpsc;
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
        let (tx, mut rx) = mpsc::channel::<anyhow::Result<Read>>(3);
        let reader = {
            let log = self.log.clone();
            let batch = self.batch;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut at = from;
                while !stop.is_cancelled() {
                    let read = read(log.as_ref(), at, batch).await;
                    let end = match &read {
                        Ok(r) if r.rows == 0 => return,
                        Ok(r) => r.last,
                        Err(_) => Position::START,
                    };
                    let failed = read.is_err();
                    if tx.send(read).await.is_err() || failed {
                        return;
                    }
                    at = end;
                }
            })
        };
        let mut done = Replayed::default();
        while let Some(read) = rx.recv().await {
            let read = read?;
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

async fn read(log: &dyn EventLog, after: Position, batch: u32) -> anyhow::Result<Read> {
    let stored = log.read_after(after, batch).await?;
    let last = stored.last().map_or(after, |e| e.position);
    let rows = stored.len() as u64;
    // Decoding is CPU work: off the runtime's threads, beside the writes.
    tokio::task::spawn_blocking(move || {
        let mut events = Vec::with_capacity(stored.len());
        let mut undecodable = 0;
        for s in &stored {
            match to_published(s) {
                Ok(e) => events.push(e),
                Err(e) => {
                    tracing::error!(aggregate_id = %s.aggregate_id, sequence = s.sequence, error = %e, "dead letter: the stored event does not decode");
                    undecodable += 1;
                }
            }
        }
        Ok(Read {
            events,
            last,
            rows,
            undecodable,
        })
    })
    .await?
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
