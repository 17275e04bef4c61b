//! The async handle: a dedicated thread owns the DuckDB connection (DuckDB calls block, and a
//! connection must not be shared between threads at once); callers send it jobs over a channel.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use async_trait::async_trait;
use chaos_schemas::PublishedEvent;
use tokio::sync::oneshot;

use super::rows;
use super::writer::{ExportedTable, TableCount, Writer};
use super::{Error, Result};
use crate::runner::{FeedOffset, ProjectionSink, Verdict};
use chaos_readmodel::StoreError;

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

enum Message {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// The analytics warehouse: typed fact tables in a DuckDB file, fed by any feed.
///
/// Cheap to clone; every clone talks to the same writer thread. Work is done in the order it is
/// submitted. The writer stops when [`Warehouse::close`] is called or every clone is dropped.
#[derive(Clone)]
pub struct Warehouse {
    jobs: mpsc::Sender<Message>,
    path: Arc<PathBuf>,
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
    /// table, and starts the writer thread. DuckDB locks the file: one process at a time.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let (jobs, inbox) = mpsc::channel::<Message>();
        let (opened, ready) = oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("warehouse-duckdb".into())
            .spawn(move || {
                let mut writer = match Writer::open(&thread_path) {
                    Ok(writer) => {
                        let _ = opened.send(Ok(()));
                        writer
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                while let Ok(message) = inbox.recv() {
                    match message {
                        Message::Run(job) => job(&mut writer),
                        Message::Close(done) => {
                            drop(writer);
                            let _ = done.send(());
                            return;
                        }
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        ready.await.map_err(|_| Error::Closed)??;
        tracing::info!(path = %path.display(), "warehouse opened");
        Ok(Self {
            jobs,
            path: Arc::new(path),
        })
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
        let batch: Vec<_> = events.iter().map(rows::event_rows).collect();
        let checkpoint = checkpoint.to_vec();
        let now = chrono::Utc::now();
        self.call(move |w| w.apply(batch, &checkpoint, now)).await
    }

    /// Where `feed` stands, per partition, as of the last committed batch.
    pub async fn offsets(&self, feed: &str) -> Result<Vec<FeedOffset>> {
        let feed = feed.to_owned();
        self.call(move |w| w.offsets(&feed)).await
    }

    /// Row counts of every analyst table.
    pub async fn counts(&self) -> Result<Vec<TableCount>> {
        self.call(|w| w.counts()).await
    }

    /// Writes `<dir>/<table>.parquet` for every analyst table, from one consistent snapshot.
    pub async fn export_parquet(&self, dir: impl Into<PathBuf>) -> Result<Vec<ExportedTable>> {
        let dir = dir.into();
        self.call(move |w| w.export_parquet(&dir)).await
    }

    /// A new connection to the same database, for reads on the caller's own (blocking) thread:
    /// analysts' queries in the embedded mode, tests. Do not write through it.
    pub async fn connect(&self) -> Result<duckdb::Connection> {
        self.call(|w| Ok(w.connection().try_clone()?)).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.call(|w| w.ping()).await
    }

    /// Finishes the work already submitted, then closes the database (checkpointing its WAL).
    /// Other clones fail with [`Error::Closed`] afterwards.
    pub async fn close(self) -> Result<()> {
        let (done, closed) = oneshot::channel();
        self.jobs
            .send(Message::Close(done))
            .map_err(|_| Error::Closed)?;
        closed.await.map_err(|_| Error::Closed)
    }

    async fn call<R: Send + 'static>(
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
}
