use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventType, GameEvent};
use crate::ids::{AccountId, CharacterId};

/// A currency. Persisted and published as its lower-case name: do not rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Currency {
    /// Earned in play.
    Gold,
    /// Bought with real money.
    Gems,
}

impl Currency {
    pub const ALL: [Currency; 2] = [Currency::Gold, Currency::Gems];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gold => "gold",
            Self::Gems => "gems",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about a wallet. Every balance change is one of the two currency events, carrying the
/// balance after it: the ledger is the list of those events.
///
/// The variant names are persisted and published: never rename one; add a new one instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    WalletOpened {
        owner: AccountId,
        character: CharacterId,
        opened_at: DateTime<Utc>,
    },
    CurrencyGranted {
        currency: Currency,
        amount: u64,
        balance_after: u64,
        source: String,
        reference: String,
        granted_at: DateTime<Utc>,
    },
    CurrencySpent {
        currency: Currency,
        amount: u64,
        balance_after: u64,
        sink: String,
        reference: String,
        spent_at: DateTime<Utc>,
    },
}

impl GameEvent for WalletEvent {
    const TYPES: &'static [EventType] = &[
        EventType {
            name: "WalletOpened",
            version: 1,
        },
        EventType {
            name: "CurrencyGranted",
            version: 1,
        },
        EventType {
            name: "CurrencySpent",
            version: 1,
        },
    ];

    fn type_name(&self) -> &'static str {
        match self {
            Self::WalletOpened { .. } => "WalletOpened",
            Self::CurrencyGranted { .. } => "CurrencyGranted",
            Self::CurrencySpent { .. } => "CurrencySpent",
        }
    }

    fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::WalletOpened { opened_at: t, .. }
            | Self::CurrencyGranted { granted_at: t, .. }
            | Self::CurrencySpent { spent_at: t, .. } => *t,
        }
    }
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(self.type_name())
            .unwrap_or(1)
            .to_string()
    }
}
