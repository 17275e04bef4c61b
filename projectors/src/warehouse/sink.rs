//! The async handle: a dedicated thread owns the DuckDB connection (DuckDB calls block, and a
//! connection must not be shared between threads at once); callers send it jobs over a channel.
//! Between jobs, and every [`switch::POLL`] when idle, the thread carries out a pending switch
//! request (see [`super::switch`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use chaos_domain::Content;
use chaos_eventstore::Position;
use chaos_schemas::PublishedEvent;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::checksum::{self, Checksum};
use super::export::{self, ExportedTable};
use super::rows;
use super::switch::{self, SwitchAck};
use super::writer::{TableCount, Writer};
use super::{Error, Result, STORE_FEED};
use crate::runner::{FeedOffset, ProjectionSink, Verdict};
use chaos_readmodel::StoreError;

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

/// The files a warehouse of this process holds. DuckDB's file lock is a POSIX lock, which is
/// per process: a second open of the same file in the same process is not refused, and two
/// writers would corrupt it. So this process refuses it itself, and a switch asks the holder.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Whether a warehouse of this process holds the file at `path`.
pub(crate) fn held_here(path: &Path) -> bool {
    let Some(path) = held_key(path) else {
        return false;
    };
    HELD.lock().is_ok_and(|held| held.contains(&path))
}

/// The file's absolute path through its resolved directory (the file itself may not exist yet).
fn held_key(path: &Path) -> Option<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

/// Registers a file as held until dropped.
struct Hold(Option<PathBuf>);

impl Hold {
    fn take(path: &Path) -> Result<Self> {
        if path.as_os_str() == ":memory:" {
            return Ok(Self(None));
        }
        let canonical = held_key(path).ok_or_else(|| Error::Path(path.to_path_buf()))?;
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.insert(canonical.clone()) {
            return Err(Error::Corrupt(format!(
                "{} is already open in this process",
                path.display()
            )));
        }
        Ok(Self(Some(canonical)))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            HELD.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&path);
        }
    }
}

enum Message {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// What the last applied batch left behind, for lag measurement without a round trip to the
/// writer thread.
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress {
    /// The newest event time applied so far.
    pub(crate) newest_event: Option<DateTime<Utc>>,
    /// The store feed's position (saved by its checkpoint), else the one its offset implies.
    pub(crate) store_position: Option<Position>,
}

/// The analytics warehouse: modelled facts and dimensions in a DuckDB file, fed by any feed.
///
/// Cheap to clone; every clone talks to the same writer thread. Work is done in the order it is
/// submitted. The writer stops when [`Warehouse::close`] is called or every clone is dropped.
#[derive(Clone)]
pub struct Warehouse {
    jobs: mpsc::Sender<Message>,
    path: Arc<PathBuf>,
    closing: Arc<AtomicBool>,
    pub(crate) progress: Arc<Mutex<Progress>>,
    /// The rows of the batch a feed said comes next ([`ProjectionSink::prepare`]).
    prepared: Arc<Mutex<Option<Prepared>>>,
}

/// A batch mapped ahead of its write: its event ids, in order, and its rows.
struct Prepared {
    ids: Vec<uuid::Uuid>,
    rows: rows::MappedBatch,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("path", &self.path)
            .finish()
    }
}

impl Warehouse {
    /// Opens the database file (`:memory:` for a throwaway one), creating it and any missing
    /// table, writes the built-in content into the content dimensions, and starts the writer
    /// thread. DuckDB locks the file: one process at a time.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let content = Content::builtin()?;
        Self::open_with_content(path, Arc::new(content)).await
    }

    /// [`Self::open`] with the content catalogue the process runs with.
    pub async fn open_with_content(
        path: impl Into<PathBuf>,
        content: Arc<Content>,
    ) -> Result<Self> {
        let path = path.into();
        let (jobs, inbox) = mpsc::channel::<Message>();
        let (opened, ready) = oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("warehouse-duckdb".into())
            .spawn(move || {
                let memory = thread_path.as_os_str() == ":memory:";
                if let Some(parent) = thread_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let _ = std::fs::create_dir_all(parent);
                }
                let opened_writer = Hold::take(&thread_path)
                    .and_then(|hold| Ok((hold, Writer::open(&thread_path, content)?)));
                let (hold, writer) = match opened_writer {
                    Ok(both) => {
                        let _ = opened.send(Ok(()));
                        both
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                serve(writer, hold, &inbox, !memory);
            })
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        ready.await.map_err(|_| Error::Closed)??;
        tracing::info!(path = %path.display(), "warehouse opened");
        let warehouse = Self {
            jobs,
            path: Arc::new(path),
            closing: Arc::default(),
            progress: Arc::default(),
            prepared: Arc::default(),
        };
        let position = warehouse.store_position(STORE_FEED).await?;
        if let Ok(mut p) = warehouse.progress.lock() {
            p.store_position = Some(position);
        }
        Ok(warehouse)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `events` (in feed order) and records `checkpoint` in the same transaction, so
    /// after a crash either both are stored or neither is. Returns one verdict per event:
    /// `Applied`; `Duplicate` if the event id is already stored (a replay); `DeadLetter` if the
    /// event cannot be stored or another event already holds its (aggregate, sequence).
    ///
    /// Idempotent: applying a batch again changes no row and leaves each feed offset at the
    /// highest one recorded.
    pub async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>> {
        let batch = self
            .take_prepared(events)
            .unwrap_or_else(|| rows::batch_rows(events));
        let newest = events.iter().map(|e| e.envelope.occurred_at).max();
        let checkpoint = checkpoint.to_vec();
        let now = Utc::now();
        let store = checkpoint
            .iter()
            .find(|o| o.feed == STORE_FEED)
            .map(|o| o.next_offset - 1);
        let verdicts = self.call(move |w| w.apply(batch, &checkpoint, now)).await?;
        if let Ok(mut p) = self.progress.lock() {
            p.newest_event = p.newest_event.max(newest);
            // Embedded positions have tx_id 0; a PostgreSQL feed's full position comes from its
            // checkpoint ([`Self::store_checkpoint`]), saved right after.
            if let Some(global_position) =
                store.filter(|_| p.store_position.is_none_or(|s| s.tx_id == 0))
            {
                p.store_position = Some(Position {
                    tx_id: 0,
                    global_position,
                });
            }
        }
        Ok(verdicts)
    }

    /// Maps `events` to rows now, for the [`Self::apply_batch`] that comes with the very same
    /// events (see [`ProjectionSink::prepare`]).
    pub fn prepare_batch(&self, events: &[PublishedEvent]) {
        let prepared = Prepared {
            ids: events.iter().map(|e| e.envelope.event_id).collect(),
            rows: rows::batch_rows(events),
        };
        if let Ok(mut slot) = self.prepared.lock() {
            *slot = Some(prepared);
        }
    }

    /// The rows prepared for exactly these events (same ids in the same order), if any; the
    /// slot is emptied either way. The ids name the batch: a feed prepares the very batch it
    /// applies next, and any other caller's batch with other ids is mapped as it comes.
    fn take_prepared(&self, events: &[PublishedEvent]) -> Option<rows::MappedBatch> {
        let prepared = self.prepared.lock().ok()?.take()?;
        (prepared.ids.len() == events.len()
            && prepared
                .ids
                .iter()
                .zip(events)
                .all(|(id, e)| *id == e.envelope.event_id))
        .then_some(prepared.rows)
    }

    /// Where `feed` stands, per partition, as of the last committed batch.
    pub async fn offsets(&self, feed: &str) -> Result<Vec<FeedOffset>> {
        let feed = feed.to_owned();
        self.call(move |w| w.offsets(&feed)).await
    }

    /// Where a store feed named `feed` (usually [`STORE_FEED`]) resumes: its saved position,
    /// `tx_id` included, else the one its offset implies, else the start.
    pub async fn store_position(&self, feed: &str) -> Result<Position> {
        let feed = feed.to_owned();
        self.call(move |w| w.store_position(&feed)).await
    }

    /// Saves a store feed's full position (see [`Self::store_checkpoint`]).
    pub async fn save_store_position(&self, feed: &str, position: Position) -> Result<()> {
        let feed = feed.to_owned();
        let now = Utc::now();
        self.call(move |w| w.save_store_position(&feed, position, now))
            .await?;
        if let Ok(mut p) = self.progress.lock() {
            p.store_position = Some(p.store_position.map_or(position, |s| s.max(position)));
        }
        Ok(())
    }

    /// Row counts of every analyst table and view.
    pub async fn counts(&self) -> Result<Vec<TableCount>> {
        self.call(|w| w.counts()).await
    }

    /// The order-independent digest of every table's content (see [`Checksum`]).
    pub async fn checksum(&self) -> Result<Checksum> {
        let conn = self.connect().await?;
        tokio::task::spawn_blocking(move || checksum::compute(&conn))
            .await
            .map_err(|_| Error::Closed)?
    }

    /// Writes every analyst table to `dir` as Parquet, hive-partitioned by day (see
    /// [`super::export`]), all from one snapshot. Runs on a connection of its own: batches go
    /// on meanwhile.
    pub async fn export_parquet(&self, dir: impl Into<PathBuf>) -> Result<Vec<ExportedTable>> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let dir = dir.into();
        let conn = self.connect().await?;
        tokio::task::spawn_blocking(move || export::write(&conn, &dir))
            .await
            .map_err(|_| Error::Closed)?
    }

    /// A new connection to the same database, for reads on the caller's own (blocking) thread:
    /// analysts' queries in the embedded mode, tests. Do not write through it. A connection
    /// taken before a switch keeps reading the replaced file: take a new one after.
    /// A store rebuild's open transaction is committed first, so the connection sees every
    /// batch applied so far.
    pub async fn connect(&self) -> Result<duckdb::Connection> {
        self.call(|w| {
            w.commit_pending()?;
            Ok(w.connection().try_clone()?)
        })
        .await
    }

    pub async fn ping(&self) -> Result<()> {
        self.call(|w| w.ping()).await
    }

    /// The model version the file's rows were made by (see [`super::schema::MODEL_VERSION`]).
    pub async fn model_version(&self) -> Result<i64> {
        self.call(|w| w.model_version()).await
    }

    /// Carries out a pending switch request now instead of at the next batch or poll (tests).
    pub async fn serve_switch_request(&self) -> Result<()> {
        self.call(|w| {
            switch::serve_request(w);
            Ok(())
        })
        .await
    }

    /// Closes this warehouse (a rebuild target) and switches the live warehouse at `live` to
    /// its file: see [`switch::switch`].
    /// A store rebuild's target gets its keys first ([`Self::finish_rebuild`]).
    pub async fn switch_into(self, live: &Path, timeout: std::time::Duration) -> Result<SwitchAck> {
        let rebuilt = self.path().to_path_buf();
        self.finish_rebuild().await?;
        self.close().await?;
        switch::switch(live, &rebuilt, timeout).await
    }

    /// Finishes the work already submitted (the batch in hand), then closes the database
    /// (checkpointing its WAL). Exports not yet started are refused. Other clones fail with
    /// [`Error::Closed`] afterwards.
    pub async fn close(self) -> Result<()> {
        self.closing.store(true, Ordering::Relaxed);
        let (done, closed) = oneshot::channel();
        self.jobs
            .send(Message::Close(done))
            .map_err(|_| Error::Closed)?;
        closed.await.map_err(|_| Error::Closed)
    }

    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |writer| {
            let _ = reply.send(f(writer));
        });
        self.jobs
            .send(Message::Run(job))
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

/// The writer thread's loop. `switchable`: a file (not `:memory:`) that a switch request may
/// replace.
fn serve(mut writer: Writer, hold: Hold, inbox: &mpsc::Receiver<Message>, switchable: bool) {
    loop {
        if switchable {
            switch::serve_request(&mut writer);
        }
        match inbox.recv_timeout(switch::POLL) {
            Ok(Message::Run(job)) => job(&mut writer),
            Ok(Message::Close(done)) => {
                drop(writer);
                // Released before the closer hears back: it may open the file again at once.
                drop(hold);
                let _ = done.send(());
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[async_trait]
impl ProjectionSink for Warehouse {
    fn name(&self) -> &str {
        "warehouse"
    }

    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        Warehouse::apply_batch(self, events, checkpoint)
            .await
            .map_err(StoreError::unavailable)
    }

    fn prepare(&self, events: &[PublishedEvent]) {
        self.prepare_batch(events);
    }
}
