use std::collections::{BTreeMap, HashSet, VecDeque};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{
    Currency, WalletCommand, WalletError, WalletEvent, AGGREGATE_TYPE, MAX_AMOUNT, MAX_BALANCE,
    MAX_LABEL,
};
use crate::aggregate::{Ctx, GameAggregate, GameServices};
use crate::ids::{AccountId, CharacterId};

/// How many recent references a wallet remembers to refuse a repeat. Retries of one request are
/// caught for ever by the command layer's idempotency keys; this window catches the same reference
/// sent as a new request, without letting a long-lived wallet's state grow without end.
pub const REFERENCE_WINDOW: usize = 1_000;

/// The wallet aggregate: `None` until opened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet(Option<WalletState>);

/// An open wallet, as folded from its events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalletState {
    pub owner: AccountId,
    pub character: CharacterId,
    /// Absent currencies hold 0.
    pub balances: BTreeMap<Currency, u64>,
    /// The last [`REFERENCE_WINDOW`] references applied, oldest first.
    pub recent_references: VecDeque<String>,
    #[serde(skip)]
    index: Option<HashSet<String>>,
}

/// Equal when the facts are: the lookup index is a cache of `recent_references`.
impl PartialEq for WalletState {
    fn eq(&self, other: &Self) -> bool {
        self.owner == other.owner
            && self.character == other.character
            && self.balances == other.balances
            && self.recent_references == other.recent_references
    }
}

impl WalletState {
    pub fn balance(&self, currency: Currency) -> u64 {
        self.balances.get(&currency).copied().unwrap_or(0)
    }

    fn seen(&self, reference: &str) -> bool {
        match &self.index {
            Some(index) => index.contains(reference),
            None => self.recent_references.iter().any(|r| r == reference),
        }
    }

    fn remember(&mut self, reference: String) {
        let index = self
            .index
            .get_or_insert_with(|| self.recent_references.iter().cloned().collect());
        index.insert(reference.clone());
        self.recent_references.push_back(reference);
        while self.recent_references.len() > REFERENCE_WINDOW {
            if let Some(old) = self.recent_references.pop_front() {
                index.remove(&old);
            }
        }
    }
}

impl Wallet {
    pub fn state(&self) -> Option<&WalletState> {
        self.0.as_ref()
    }
}

fn label(field: &'static str, value: &str) -> Result<(), WalletError> {
    if value.is_empty() || value.chars().count() > MAX_LABEL || value.chars().any(char::is_control)
    {
        return Err(WalletError::InvalidLabel {
            field,
            max: MAX_LABEL,
        });
    }
    Ok(())
}

fn amount(amount: u64) -> Result<(), WalletError> {
    if amount == 0 || amount > MAX_AMOUNT {
        return Err(WalletError::InvalidAmount { max: MAX_AMOUNT });
    }
    Ok(())
}

impl GameAggregate for Wallet {
    /// 1: `Option<WalletState>` (owner, character, balances, recent references), 2026-11.
    const STATE_VERSION: u32 = 1;

    fn decide(
        &self,
        command: WalletCommand,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::Open { owner, character } => {
                if self.0.is_some() {
                    return Err(WalletError::AlreadyOpen);
                }
                Ok(vec![WalletEvent::WalletOpened {
                    owner,
                    character,
                    opened_at: ctx.now,
                }])
            }
            WalletCommand::Grant {
                currency,
                amount: n,
                source,
                reference,
            } => {
                let state = self.0.as_ref().ok_or(WalletError::NotFound)?;
                amount(n)?;
                label("source", &source)?;
                label("reference", &reference)?;
                if state.seen(&reference) {
                    return Err(WalletError::DuplicateReference(reference));
                }
                let balance_after = state
                    .balance(currency)
                    .checked_add(n)
                    .filter(|b| *b <= MAX_BALANCE)
                    .ok_or(WalletError::BalanceLimit {
                        currency,
                        max: MAX_BALANCE,
                    })?;
                Ok(vec![WalletEvent::CurrencyGranted {
                    currency,
                    amount: n,
                    balance_after,
                    source,
                    reference,
                    granted_at: ctx.now,
                }])
            }
            WalletCommand::Spend {
                actor,
                currency,
                amount: n,
                sink,
                reference,
            } => {
                let state = self.0.as_ref().ok_or(WalletError::NotFound)?;
                if state.owner != actor {
                    return Err(WalletError::NotOwner);
                }
                amount(n)?;
                label("sink", &sink)?;
                label("reference", &reference)?;
                if state.seen(&reference) {
                    return Err(WalletError::DuplicateReference(reference));
                }
                let available = state.balance(currency);
                let balance_after =
                    available
                        .checked_sub(n)
                        .ok_or(WalletError::InsufficientFunds {
                            currency,
                            needed: n,
                            available,
                        })?;
                Ok(vec![WalletEvent::CurrencySpent {
                    currency,
                    amount: n,
                    balance_after,
                    sink,
                    reference,
                    spent_at: ctx.now,
                }])
            }
        }
    }

    fn owner(&self) -> Option<AccountId> {
        self.0.as_ref().map(|s| s.owner)
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = GameServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ctx = services.ctx_at(services.clock.now());
        for event in self.decide(command, &ctx)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Balances are set from the event's `balance_after`, not recomputed: a fact, not a rule.
    fn apply(&mut self, event: Self::Event) {
        match (event, &mut self.0) {
            (
                WalletEvent::WalletOpened {
                    owner, character, ..
                },
                None,
            ) => {
                self.0 = Some(WalletState {
                    owner,
                    character,
                    balances: BTreeMap::new(),
                    recent_references: VecDeque::new(),
                    index: None,
                });
            }
            (
                WalletEvent::CurrencyGranted {
                    currency,
                    balance_after,
                    reference,
                    ..
                }
                | WalletEvent::CurrencySpent {
                    currency,
                    balance_after,
                    reference,
                    ..
                },
                Some(state),
            ) => {
                state.balances.insert(currency, balance_after);
                state.remember(reference);
            }
            // Events that cannot follow the state are not produced by `decide`; a stream holding
            // one is corrupt, and folding ignores it rather than inventing a state.
            _ => {}
        }
    }
}
