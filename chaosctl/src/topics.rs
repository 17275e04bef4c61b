//! Reading whole topics without a consumer group: the dead letters (`dead-letters`) and the
//! aggregate topics (`relay audit`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::progress::Progress;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may go without a message before it gives up.
const STALL: Duration = Duration::from_secs(30);

/// Hands `visit` every message of the topics `wanted` picks, from each partition's low
/// watermark to its high watermark as they stand when the read starts; nothing is committed.
/// With `progress`, shows it under that label.
pub fn read_to_end(
    s: &crate::config::Settings,
    client: &str,
    wanted: impl Fn(&str) -> bool,
    progress: Option<&str>,
    mut visit: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = s
        .kafka
        .client_config()
        .set("group.id", client)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(None, KAFKA_TIMEOUT)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    let mut total = 0;
    for t in metadata.topics().iter().filter(|t| wanted(t.name())) {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(t.name(), p.id(), KAFKA_TIMEOUT)?;
            if high > low {
                tpl.add_partition_offset(t.name(), p.id(), Offset::Offset(low))?;
                ends.insert((t.name().to_owned(), p.id()), high);
                total += high - low;
            }
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let mut bar = progress.map(|label| Progress::new(label, u64::try_from(total).unwrap_or(0)));
    let (mut read, mut last) = (0u64, Instant::now());
    while !ends.is_empty() {
        anyhow::ensure!(
            last.elapsed() < STALL,
            "no message for {STALL:?} with {} partitions still to read",
            ends.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m?;
        last = Instant::now();
        read += 1;
        if let Some(bar) = &mut bar {
            bar.update(read);
        }
        let tp = (m.topic().to_owned(), m.partition());
        if ends.get(&tp).is_some_and(|end| m.offset() + 1 >= *end) {
            ends.remove(&tp);
        }
        visit(&m);
    }
    if let Some(bar) = &mut bar {
        bar.finish(read);
    }
    Ok(())
}

/// The value of header `key` of `m`, if it has one.
pub fn header<'m>(m: &'m BorrowedMessage<'_>, key: &str) -> Option<&'m [u8]> {
    m.headers()?.iter().find(|h| h.key == key)?.value
}
