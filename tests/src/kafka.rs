//! Reading a whole topic back, decoded with the production Avro codec (the registry gives the
//! writer schema by the id in each message).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_schemas::{AvroCodec, PublishedEvent};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// One message: where it was, its key and headers, and the decoded event.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub event: PublishedEvent,
}

impl Record {
    /// `(aggregate id, sequence)` from the decoded envelope.
    pub fn id(&self) -> (String, i64) {
        (
            self.event.envelope.aggregate_id.clone(),
            self.event.envelope.sequence as i64,
        )
    }
}

/// Reads every partition of one topic from the beginning, without joining a consumer group.
pub struct TopicReader {
    consumer: Arc<StreamConsumer>,
    codec: AvroCodec,
    topic: String,
    /// Partition -> the next offset to read.
    next: BTreeMap<i32, i64>,
    pub records: Vec<Record>,
}

impl std::fmt::Debug for TopicReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader")
            .field("topic", &self.topic)
            .field("next", &self.next)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl TopicReader {
    pub async fn new(bootstrap: &str, registry_url: &str, topic: &str) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("test-reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .context("creating the Kafka consumer")?;
        let consumer = Arc::new(consumer);
        let (c, t) = (consumer.clone(), topic.to_owned());
        let partitions = tokio::task::spawn_blocking(move || {
            let md = c.fetch_metadata(Some(&t), Duration::from_secs(10))?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .filter(|m| m.name() == t && m.error().is_none())
                .flat_map(|m| m.partitions().iter().map(|p| p.id()))
                .collect();
            Ok::<_, anyhow::Error>(parts)
        })
        .await??;
        anyhow::ensure!(!partitions.is_empty(), "topic {topic} has no partitions");
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            list.add_partition_offset(topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&list)?;
        Ok(Self {
            consumer,
            codec: AvroCodec::new(registry_url)?,
            topic: topic.to_owned(),
            next: partitions.into_iter().map(|p| (p, 0)).collect(),
            records: Vec::new(),
        })
    }

    async fn high_watermarks(&self) -> anyhow::Result<BTreeMap<i32, i64>> {
        let (c, t) = (self.consumer.clone(), self.topic.clone());
        let parts: Vec<i32> = self.next.keys().copied().collect();
        tokio::task::spawn_blocking(move || {
            parts
                .into_iter()
                .map(|p| {
                    let (_, high) = c.fetch_watermarks(&t, p, Duration::from_secs(10))?;
                    Ok((p, high))
                })
                .collect::<anyhow::Result<BTreeMap<i32, i64>>>()
        })
        .await?
    }

    /// Reads up to each partition's current high watermark; returns how many were read.
    pub async fn read_available(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        let highs = self.high_watermarks().await?;
        let deadline = Instant::now() + timeout;
        let before = self.records.len();
        while highs.iter().any(|(p, high)| self.next[p] < *high) {
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(
                !left.is_zero(),
                "reading {} up to {highs:?} timed out at {:?}",
                self.topic,
                self.next
            );
            let message = match tokio::time::timeout(left, self.consumer.recv()).await {
                Ok(m) => m?,
                Err(_) => continue,
            };
            let partition = message.partition();
            let offset = message.offset();
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            let mut headers = BTreeMap::new();
            if let Some(h) = message.headers() {
                for header in h.iter() {
                    let value = header
                        .value
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    headers.insert(header.key.to_owned(), value);
                }
            }
            let payload = message.payload().unwrap_or_default().to_vec();
            self.next.insert(partition, offset + 1);
            let event = self
                .codec
                .decode(&payload)
                .await
                .with_context(|| format!("decoding {}[{partition}]@{offset}", self.topic))?;
            self.records.push(Record {
                partition,
                offset,
                key,
                headers,
                event,
            });
        }
        Ok(self.records.len() - before)
    }

    /// Keeps reading until every `(aggregate id, sequence)` in `want` has been seen.
    pub async fn read_until_covered(
        &mut self,
        want: &BTreeSet<(String, i64)>,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.read_available(left.max(Duration::from_secs(1)))
                .await?;
            let seen: BTreeSet<(String, i64)> = self.records.iter().map(Record::id).collect();
            let missing: Vec<_> = want.difference(&seen).collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} of {} events never reached {} after {timeout:?}; first missing: {:?}",
                    missing.len(),
                    want.len(),
                    self.topic,
                    &missing[..missing.len().min(10)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Deletes topics (missing ones are fine).
pub async fn delete_topics(bootstrap: &str, topics: &[String]) -> anyhow::Result<()> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    chaos_platform::kafka::delete_topics(&client, topics).await
}
