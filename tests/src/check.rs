//! The end-to-end assertions shared by the tests: Kafka holds the event store, the read model
//! equals the event store folded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use chaos_eventstore::publish::to_published;
use chaos_eventstore::StoredEvent;
use chaos_schemas::headers;

use chaos_domain::{Character, Wallet};

use crate::kafka::{Record, TopicReader};
use crate::store::{assert_contiguous, by_aggregate, fold};
use crate::QueryApi;

/// What Kafka held.
#[derive(Debug)]
pub struct KafkaReport {
    pub records: Vec<Record>,
    /// Messages carrying an `(aggregate, sequence)` seen before (re-sends after a crash).
    pub duplicates: usize,
}

/// Checks every registered aggregate's topic (`<prefix>chaos.<aggregate>.events`) against the
/// store with [`kafka_matches_store`]; returns the reports by aggregate type.
pub async fn every_topic_matches_store(
    bootstrap: &str,
    registry_url: &str,
    topic_prefix: &str,
    events: &[StoredEvent],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<&'static str, KafkaReport>> {
    let mut reports = BTreeMap::new();
    for aggregate in chaos_schemas::AGGREGATES {
        let mine: Vec<StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == aggregate.name)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let topic = format!("{topic_prefix}{}", aggregate.topic());
        let report = kafka_matches_store(bootstrap, registry_url, &topic, &mine, timeout).await?;
        reports.insert(aggregate.name, report);
    }
    Ok(reports)
}

/// Reads `topic` until every stored event of its aggregate type is there, then checks each
/// message against the row it came from: key = aggregate id, the headers, and the decoded event
/// equal to the relay's mapping of the stored row. Duplicates are allowed; gaps, strangers and
/// out-of-order first deliveries (a sequence first seen before its predecessor) are not.
/// `events` may hold other aggregates' events: only those of `topic`'s aggregate type count.
pub async fn kafka_matches_store(
    bootstrap: &str,
    registry_url: &str,
    topic: &str,
    events: &[StoredEvent],
    timeout: Duration,
) -> anyhow::Result<KafkaReport> {
    let aggregate_type = chaos_schemas::AGGREGATES
        .iter()
        .find(|a| topic.ends_with(&a.topic()))
        .map(|a| a.name)
        .with_context(|| format!("{topic} is no aggregate's topic"))?;
    let events: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| e.aggregate_type == aggregate_type)
        .collect();
    let want: BTreeSet<(String, i64)> = events
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    let stored: BTreeMap<(String, i64), &StoredEvent> = events
        .iter()
        .map(|e| ((e.aggregate_id.clone(), e.sequence), *e))
        .collect();
    let mut reader = TopicReader::new(bootstrap, registry_url, topic).await?;
    reader.read_until_covered(&want, timeout).await?;

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    // Highest sequence delivered so far, per aggregate, and the partition it lives on.
    let mut high: BTreeMap<String, (i64, i32)> = BTreeMap::new();
    let mut records = reader.records.clone();
    records.sort_by_key(|r| (r.partition, r.offset));
    for r in &records {
        let id = r.id();
        let Some(row) = stored.get(&id) else {
            problems.push(format!("{id:?} is on Kafka but not in the event store"));
            continue;
        };
        let expected = to_published(row).context("mapping a stored row")?;
        if r.event != expected {
            problems.push(format!(
                "{id:?}: decoded {:?} but the store maps to {expected:?}",
                r.event
            ));
        }
        if r.key.as_deref() != Some(id.0.as_str()) {
            problems.push(format!("{id:?}: key {:?}", r.key));
        }
        let mut want_headers: BTreeMap<String, String> = expected
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        // The schema version is the producer's choice among the catalogue's versions.
        want_headers.remove(headers::SCHEMA_VERSION);
        let mut got_headers = r.headers.clone();
        if got_headers
            .remove(headers::SCHEMA_VERSION)
            .and_then(|v| v.parse::<u32>().ok())
            .is_none()
        {
            problems.push(format!(
                "{id:?}: schema_version header missing or not a number"
            ));
        }
        if got_headers != want_headers {
            problems.push(format!(
                "{id:?}: headers {got_headers:?}, expected {want_headers:?}"
            ));
        }
        let (last, partition) = high.get(&id.0).copied().unwrap_or((0, r.partition));
        if partition != r.partition {
            problems.push(format!(
                "{id:?} on partition {} but earlier events on {partition}",
                r.partition
            ));
        }
        if !seen.insert(id.clone()) {
            duplicates += 1;
        } else if id.1 != last + 1 {
            problems.push(format!(
                "{id:?} first delivered after sequence {last}: a consumer would skip a gap"
            ));
        }
        high.insert(id.0.clone(), (last.max(id.1), r.partition));
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{} problems with {topic}, e.g.:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
    Ok(KafkaReport {
        records,
        duplicates,
    })
}

/// Waits until the query API has every character's and wallet's last stored sequence, then
/// compares each private sheet with the state folded from the store, and each wallet (balances,
/// ledger) with the wallet folded from the store. `queries` must carry a game master's token.
/// Returns the number of sheets checked.
pub async fn sheets_match_store(
    queries: &QueryApi,
    events: &[StoredEvent],
    timeout: Duration,
) -> anyhow::Result<usize> {
    let characters = by_aggregate(events, chaos_domain::character::AGGREGATE_TYPE);
    let wallets = by_aggregate(events, chaos_domain::wallet::AGGREGATE_TYPE);
    let deadline = std::time::Instant::now() + timeout;
    let mut problems = Vec::new();
    for (id, list) in &characters {
        assert_contiguous(list)?;
        let version = list.len() as u64;
        let wallet_events = wallets.get(id);
        let wallet_version = wallet_events.map_or(0, |w| w.len() as u64);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let sheet = queries
            .wait_for_positions(
                id,
                &[("character", version), ("wallet", wallet_version)],
                left.max(Duration::from_secs(1)),
            )
            .await?;
        let character: Character = fold(list)?;
        let state = character
            .state()
            .with_context(|| format!("{id} folds to no character"))?;
        let wallet: Option<Wallet> = wallet_events
            .map(|w| {
                assert_contiguous(w)?;
                fold::<Wallet>(w)
            })
            .transpose()?;
        let wallet_state = match &wallet {
            Some(w) => Some((
                w.state()
                    .with_context(|| format!("wallet {id} folds to no wallet"))?,
                wallet_version,
            )),
            None => None,
        };
        problems.extend(crate::sheet::mismatches(
            &sheet,
            id,
            state,
            version,
            wallet_state,
        ));
    }
    for (id, list) in &wallets {
        let wallet: Wallet = fold(list)?;
        let state = wallet
            .state()
            .with_context(|| format!("wallet {id} folds to no wallet"))?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let view = queries
            .wait_for_wallet(id, list.len() as u64, left.max(Duration::from_secs(1)))
            .await?;
        for currency in chaos_domain::Currency::ALL {
            let got = view
                .pointer(&format!("/balances/{currency}"))
                .and_then(serde_json::Value::as_u64);
            if got != Some(state.balance(currency)) {
                problems.push(format!(
                    "wallet {id}: {currency} balance {got:?}, store says {}",
                    state.balance(currency)
                ));
            }
        }
        let ledger = queries.ledger_all(id).await?;
        let changes: Vec<i64> = list
            .iter()
            .filter(|e| e.event_type != "WalletOpened")
            .map(|e| e.sequence)
            .collect();
        let listed: Vec<i64> = ledger
            .iter()
            .filter_map(|e| e.get("sequence").and_then(serde_json::Value::as_i64))
            .collect();
        if listed != changes {
            problems.push(format!(
                "wallet {id}: ledger lists sequences {listed:?}, store has {changes:?}"
            ));
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{} read-model fields differ from the event store:\n{}",
        problems.len(),
        problems[..problems.len().min(30)].join("\n")
    );
    Ok(characters.len())
}
