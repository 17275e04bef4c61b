//! A wallet as its owner reads it: balances, and the ledger of every change (a log, paged by
//! sequence). Private: only the owner (or a game master) reads it.

use std::collections::BTreeMap;

use chaos_domain::WalletEvent;
use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::view::{write, LogEntry, Typed};

/// The stored name of the view: part of its keys. Do not change without a rebuild.
pub const NAME: &str = "wallet";
/// The ledger log's name.
pub const LEDGER: &str = "ledger";

/// A wallet as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletDoc {
    pub id: String,
    pub owner: String,
    pub character: String,
    /// Currency -> balance; a currency never touched is absent (0).
    pub balances: BTreeMap<String, u64>,
    pub ledger_entries: u64,
    pub updated_at: DateTime<Utc>,
}

/// One ledger entry: a currency change with its reason and reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The wallet event's sequence: the ledger's order and paging cursor.
    pub sequence: u64,
    pub currency: String,
    /// Positive for a grant, negative for a spend.
    pub delta: i64,
    pub balance_after: u64,
    /// `grant` or `spend`.
    pub kind: String,
    /// The grant's source or the spend's sink.
    pub reason: String,
    pub reference: String,
    pub at: DateTime<Utc>,
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct WalletView;

impl Typed for WalletView {
    type Doc = WalletDoc;

    fn name(&self) -> &'static str {
        NAME
    }

    fn sources(&self) -> &'static [&'static str] {
        &[chaos_domain::wallet::AGGREGATE_TYPE]
    }

    fn logs(&self) -> &'static [&'static str] {
        &[LEDGER]
    }

    fn doc_id(&self, event: &PublishedEvent) -> Option<String> {
        Some(event.envelope.aggregate_id.clone())
    }

    fn step(
        &self,
        slot: &mut Option<WalletDoc>,
        event: &PublishedEvent,
    ) -> Result<Vec<LogEntry>, String> {
        let AnyEvent::Wallet(e) = &event.event else {
            return Err("not a wallet event".into());
        };
        let sequence = event.envelope.sequence;
        match (slot.is_some(), e) {
            (true, WalletEvent::WalletOpened { .. }) => {
                return Err("WalletOpened for a wallet that is already open".into())
            }
            (false, WalletEvent::CurrencyGranted { .. } | WalletEvent::CurrencySpent { .. }) => {
                return Err("currency event for a wallet that was never opened".into())
            }
            _ => {}
        }
        let doc = slot.take();
        let (doc, entry) = match (doc, e) {
            (
                None,
                WalletEvent::WalletOpened {
                    owner,
                    character,
                    opened_at,
                },
            ) => (
                WalletDoc {
                    id: event.envelope.aggregate_id.clone(),
                    owner: owner.to_string(),
                    character: character.to_string(),
                    balances: BTreeMap::new(),
                    ledger_entries: 0,
                    updated_at: *opened_at,
                },
                None,
            ),
            // Refused above.
            (Some(doc), WalletEvent::WalletOpened { .. }) => (doc, None),
            (None, _) => return Ok(Vec::new()),
            (
                Some(mut doc),
                WalletEvent::CurrencyGranted {
                    currency,
                    amount,
                    balance_after,
                    source,
                    reference,
                    granted_at,
                },
            ) => {
                doc.balances.insert(currency.to_string(), *balance_after);
                doc.ledger_entries += 1;
                doc.updated_at = *granted_at;
                let entry = LedgerEntry {
                    sequence,
                    currency: currency.to_string(),
                    delta: i64::try_from(*amount).unwrap_or(i64::MAX),
                    balance_after: *balance_after,
                    kind: "grant".into(),
                    reason: source.clone(),
                    reference: reference.clone(),
                    at: *granted_at,
                };
                (doc, Some(entry))
            }
            (
                Some(mut doc),
                WalletEvent::CurrencySpent {
                    currency,
                    amount,
                    balance_after,
                    sink,
                    reference,
                    spent_at,
                },
            ) => {
                doc.balances.insert(currency.to_string(), *balance_after);
                doc.ledger_entries += 1;
                doc.updated_at = *spent_at;
                let entry = LedgerEntry {
                    sequence,
                    currency: currency.to_string(),
                    delta: -i64::try_from(*amount).unwrap_or(i64::MAX),
                    balance_after: *balance_after,
                    kind: "spend".into(),
                    reason: sink.clone(),
                    reference: reference.clone(),
                    at: *spent_at,
                };
                (doc, Some(entry))
            }
        };
        *slot = Some(doc);
        let log = match entry {
            Some(entry) => vec![LogEntry {
                log: LEDGER,
                score: sequence,
                entry: write(&entry)?,
            }],
            None => Vec::new(),
        };
        Ok(log)
    }
}
