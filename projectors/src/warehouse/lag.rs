//! How far behind the warehouse is, in both modes, and a warning in the log when that is more
//! than a threshold (once per [`WARN_EVERY`] while it lasts, and a line when it has caught up).
//!
//! - Store-fed (embedded, rebuilds): the store feed sets its lag only when it has nothing left
//!   to read, so while it is busy catching up its gauges would say nothing. [`StoreLag`] measures
//!   from the event log instead: events after the warehouse's position, and the age of the
//!   oldest of them (how long ago it happened: what an analyst misses), every `every`.
//! - Kafka: the runner keeps `chaos_projector_lag_events` / `_seconds` per partition;
//!   [`watch_metrics`] reads them and warns.

use std::sync::Arc;
use std::time::Duration;

use chaos_eventstore::{EventLog, Position};
use prometheus::core::Collector;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::sink::Warehouse;
use crate::runner::ProjectorMetrics;

/// While behind, the warning is repeated this often.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// The lag measured at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Events the feed has and the warehouse does not yet.
    pub events: u64,
    /// Age of the oldest of them; 0 when caught up.
    pub seconds: u64,
}

/// The store-fed warehouse's lag, measured from the event log (see the module documentation).
#[derive(Debug, Clone)]
pub struct StoreLag {
    warehouse: Warehouse,
    log: Arc<dyn EventLog>,
    metrics: ProjectorMetrics,
    projection: String,
    threshold: Duration,
}

impl StoreLag {
    /// `projection` labels the metrics (the store feed's name, `warehouse`); a lag in seconds
    /// above `threshold` is logged as a warning.
    pub fn new(
        warehouse: Warehouse,
        log: Arc<dyn EventLog>,
        metrics: ProjectorMetrics,
        projection: &str,
        threshold: Duration,
    ) -> Self {
        Self {
            warehouse,
            log,
            metrics,
            projection: projection.to_owned(),
            threshold,
        }
    }

    /// Measures now and sets `chaos_projector_lag_events` / `_seconds` (topic `store`,
    /// partition 0).
    pub async fn measure(&self) -> anyhow::Result<Lag> {
        let position = self
            .warehouse
            .progress
            .lock()
            .ok()
            .and_then(|p| p.store_position)
            .unwrap_or(Position::START);
        let events = self.log.count_after(position).await?;
        let seconds = if events == 0 {
            0
        } else {
            let oldest = self.log.read_after(position, 1).await?;
            oldest
                .first()
                .and_then(|e| e.occurred_at())
                .map_or(0, |at| {
                    u64::try_from((chrono::Utc::now() - at).num_seconds()).unwrap_or(0)
                })
        };
        let labels = [self.projection.as_str(), "store", "0"];
        self.metrics
            .lag_events
            .with_label_values(&labels)
            .set(i64::try_from(events).unwrap_or(i64::MAX));
        self.metrics
            .lag_seconds
            .with_label_values(&labels)
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        Ok(Lag { events, seconds })
    }

    /// Measures every `every` until `shutdown`, warning while behind by more than the threshold.
    pub fn spawn(self, every: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut warning = Warning::new(&self.projection, self.threshold);
            loop {
                match self.measure().await {
                    Ok(lag) => {
                        warning.observe(lag);
                    }
                    Err(e) => {
                        tracing::debug!(error = %format!("{e:#}"), "warehouse lag not measured");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        })
    }
}

/// Kafka mode: reads the runner's lag gauges of `projection` every `every` and warns while the
/// largest lag in seconds of any partition is above `threshold`.
pub fn watch_metrics(
    metrics: ProjectorMetrics,
    projection: &str,
    threshold: Duration,
    every: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let projection = projection.to_owned();
    tokio::spawn(async move {
        let mut warning = Warning::new(&projection, threshold);
        loop {
            warning.observe(Lag {
                events: largest(&metrics.lag_events, &projection),
                seconds: largest(&metrics.lag_seconds, &projection),
            });
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    })
}

/// The largest value of a lag gauge over the partitions of `projection`.
fn largest(gauge: &prometheus::IntGaugeVec, projection: &str) -> u64 {
    gauge
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "projection" && l.value() == projection)
        })
        .map(|m| m.get_gauge().get_value().max(0.0) as u64)
        .max()
        .unwrap_or(0)
}

/// Turns lag measurements into log lines: a warning when the lag passes the threshold, again
/// every [`WARN_EVERY`] while it lasts, and one line when it is back under.
#[derive(Debug)]
pub struct Warning {
    projection: String,
    threshold: Duration,
    since: Option<std::time::Instant>,
    last_warned: Option<std::time::Instant>,
}

impl Warning {
    pub fn new(projection: &str, threshold: Duration) -> Self {
        Self {
            projection: projection.to_owned(),
            threshold,
            since: None,
            last_warned: None,
        }
    }

    /// Returns whether it logged a warning.
    pub fn observe(&mut self, lag: Lag) -> bool {
        let behind = Duration::from_secs(lag.seconds) > self.threshold;
        if !behind {
            if let Some(since) = self.since.take() {
                tracing::info!(
                    projection = %self.projection,
                    events = lag.events,
                    behind_for_secs = since.elapsed().as_secs(),
                    "warehouse caught up"
                );
            }
            self.last_warned = None;
            return false;
        }
        let now = std::time::Instant::now();
        self.since.get_or_insert(now);
        if self.last_warned.is_some_and(|t| now - t < WARN_EVERY) {
            return false;
        }
        self.last_warned = Some(now);
        tracing::warn!(
            projection = %self.projection,
            lag_events = lag.events,
            lag_seconds = lag.seconds,
            threshold_secs = self.threshold.as_secs(),
            "warehouse is falling behind"
        );
        true
    }
}
