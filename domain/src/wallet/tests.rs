use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use proptest::prelude::*;

use super::*;
use crate::aggregate::{Ctx, GameAggregate, GameServices};
use crate::content::Content;
use crate::ids::{AccountId, CharacterId};
use crate::ports::{FixedClock, LowestRoll};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

fn owner() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(1))
}

fn character() -> CharacterId {
    CharacterId::from_uuid(uuid::Uuid::from_u128(2))
}

fn services() -> GameServices {
    GameServices {
        content: Arc::new(Content::builtin().unwrap()),
        clock: Arc::new(FixedClock(t0())),
        dice: Arc::new(LowestRoll),
    }
}

fn opened() -> WalletEvent {
    WalletEvent::WalletOpened {
        owner: owner(),
        character: character(),
        opened_at: t0(),
    }
}

fn granted(amount: u64, balance_after: u64, reference: &str) -> WalletEvent {
    WalletEvent::CurrencyGranted {
        currency: Currency::Gold,
        amount,
        balance_after,
        source: "level-up".into(),
        reference: reference.into(),
        granted_at: t0(),
    }
}

fn grant(amount: u64, reference: &str) -> WalletCommand {
    WalletCommand::Grant {
        currency: Currency::Gold,
        amount,
        source: "level-up".into(),
        reference: reference.into(),
    }
}

fn spend(amount: u64, reference: &str) -> WalletCommand {
    WalletCommand::Spend {
        actor: owner(),
        currency: Currency::Gold,
        amount,
        sink: "vendor:potion".into(),
        reference: reference.into(),
    }
}

#[test]
fn a_wallet_opens_once_and_only_an_open_wallet_takes_currency() {
    TestFramework::<Wallet>::with(services())
        .given_no_previous_events()
        .when(WalletCommand::Open {
            owner: owner(),
            character: character(),
        })
        .then_expect_events(vec![opened()]);
    TestFramework::<Wallet>::with(services())
        .given(vec![opened()])
        .when(WalletCommand::Open {
            owner: owner(),
            character: character(),
        })
        .then_expect_error(WalletError::AlreadyOpen);
    TestFramework::<Wallet>::with(services())
        .given_no_previous_events()
        .when(grant(10, "r1"))
        .then_expect_error(WalletError::NotFound);
}

#[test]
fn grants_and_spends_record_the_balance_after_them() {
    TestFramework::<Wallet>::with(services())
        .given(vec![opened()])
        .when(grant(30, "levelup:2"))
        .then_expect_events(vec![granted(30, 30, "levelup:2")]);
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(30, 30, "levelup:2")])
        .when(spend(12, "buy-1"))
        .then_expect_events(vec![WalletEvent::CurrencySpent {
            currency: Currency::Gold,
            amount: 12,
            balance_after: 18,
            sink: "vendor:potion".into(),
            reference: "buy-1".into(),
            spent_at: t0(),
        }]);
}

#[test]
fn spending_more_than_the_balance_is_refused() {
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(30, 30, "levelup:2")])
        .when(spend(31, "buy-1"))
        .then_expect_error(WalletError::InsufficientFunds {
            currency: Currency::Gold,
            needed: 31,
            available: 30,
        });
    TestFramework::<Wallet>::with(services())
        .given(vec![opened()])
        .when(WalletCommand::Spend {
            actor: owner(),
            currency: Currency::Gems,
            amount: 1,
            sink: "shop".into(),
            reference: "gem-1".into(),
        })
        .then_expect_error(WalletError::InsufficientFunds {
            currency: Currency::Gems,
            needed: 1,
            available: 0,
        });
}

#[test]
fn only_the_owner_spends() {
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(30, 30, "levelup:2")])
        .when(WalletCommand::Spend {
            actor: AccountId::from_uuid(uuid::Uuid::from_u128(99)),
            currency: Currency::Gold,
            amount: 1,
            sink: "vendor".into(),
            reference: "x".into(),
        })
        .then_expect_error(WalletError::NotOwner);
}

#[test]
fn a_reference_is_applied_once() {
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(30, 30, "levelup:2")])
        .when(grant(30, "levelup:2"))
        .then_expect_error(WalletError::DuplicateReference("levelup:2".into()));
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(30, 30, "levelup:2")])
        .when(spend(1, "levelup:2"))
        .then_expect_error(WalletError::DuplicateReference("levelup:2".into()));
}

#[test]
fn absurd_amounts_and_labels_are_refused() {
    for (command, error) in [
        (
            grant(0, "r"),
            WalletError::InvalidAmount { max: MAX_AMOUNT },
        ),
        (
            grant(MAX_AMOUNT + 1, "r"),
            WalletError::InvalidAmount { max: MAX_AMOUNT },
        ),
        (
            grant(1, ""),
            WalletError::InvalidLabel {
                field: "reference",
                max: MAX_LABEL,
            },
        ),
        (
            grant(1, &"r".repeat(MAX_LABEL + 1)),
            WalletError::InvalidLabel {
                field: "reference",
                max: MAX_LABEL,
            },
        ),
        (
            spend(1, "a\u{7}b"),
            WalletError::InvalidLabel {
                field: "reference",
                max: MAX_LABEL,
            },
        ),
    ] {
        TestFramework::<Wallet>::with(services())
            .given(vec![opened(), granted(5, 5, "seed")])
            .when(command)
            .then_expect_error(error);
    }
}

#[test]
fn the_balance_cannot_pass_its_limit() {
    TestFramework::<Wallet>::with(services())
        .given(vec![opened(), granted(MAX_AMOUNT, MAX_BALANCE, "whale")])
        .when(grant(1, "one-more"))
        .then_expect_error(WalletError::BalanceLimit {
            currency: Currency::Gold,
            max: MAX_BALANCE,
        });
}

#[test]
fn the_reference_window_forgets_the_oldest_reference() {
    let mut wallet = Wallet::fold([opened()]);
    let content = Content::builtin().unwrap();
    let ctx = Ctx {
        content: &content,
        now: t0(),
        dice: &LowestRoll,
    };
    for i in 0..=REFERENCE_WINDOW {
        for e in wallet.decide(grant(1, &format!("r{i}")), &ctx).unwrap() {
            wallet.apply(e);
        }
    }
    let state = wallet.state().unwrap();
    assert_eq!(state.recent_references.len(), REFERENCE_WINDOW);
    assert_eq!(state.balance(Currency::Gold), REFERENCE_WINDOW as u64 + 1);
    assert!(
        wallet.decide(grant(1, "r0"), &ctx).is_ok(),
        "r0 left the window"
    );
    assert_eq!(
        wallet.decide(grant(1, "r1"), &ctx),
        Err(WalletError::DuplicateReference("r1".into()))
    );
}

#[derive(Debug, Clone)]
enum Step {
    Grant(Currency, u64, u8),
    Spend(Currency, u64, u8),
}

fn step() -> impl Strategy<Value = Step> {
    let currency = prop::sample::select(Currency::ALL.to_vec());
    prop_oneof![
        (currency.clone(), 0u64..200, 0u8..40).prop_map(|(c, a, r)| Step::Grant(c, a, r)),
        (currency, 0u64..300, 0u8..40).prop_map(|(c, a, r)| Step::Spend(c, a, r)),
    ]
}

proptest! {
    /// Whatever is asked, in any order: balances change only through the two named currency
    /// events, by exactly their amount; a balance never goes below zero (a spend beyond it is
    /// refused and changes nothing); a reference is applied at most once; and a state restored
    /// from a snapshot (its serde form) then fed the rest of the events equals the plain fold.
    #[test]
    fn currency_invariants_hold(steps in prop::collection::vec(step(), 1..80), cut in 0usize..80) {
        let content = Content::builtin().unwrap();
        let ctx = Ctx { content: &content, now: t0(), dice: &LowestRoll };
        let mut wallet = Wallet::fold([opened()]);
        let mut history = vec![opened()];
        let mut applied_references = std::collections::HashSet::new();
        for step in steps {
            let before = wallet.clone();
            let command = match &step {
                Step::Grant(c, a, r) => WalletCommand::Grant { currency: *c, amount: *a,
                    source: "prop".into(), reference: format!("ref-{r}") },
                Step::Spend(c, a, r) => WalletCommand::Spend { actor: owner(), currency: *c,
                    amount: *a, sink: "prop".into(), reference: format!("ref-{r}") },
            };
            match wallet.decide(command, &ctx) {
                Ok(events) => {
                    for event in events {
                        let state = wallet.state().unwrap();
                        match &event {
                            WalletEvent::CurrencyGranted { currency, amount, balance_after, reference, .. } => {
                                prop_assert_eq!(*balance_after, state.balance(*currency) + amount);
                                prop_assert!(applied_references.insert(reference.clone()));
                            }
                            WalletEvent::CurrencySpent { currency, amount, balance_after, reference, .. } => {
                                prop_assert!(*amount <= state.balance(*currency));
                                prop_assert_eq!(*balance_after, state.balance(*currency) - amount);
                                prop_assert!(applied_references.insert(reference.clone()));
                            }
                            WalletEvent::WalletOpened { .. } => prop_assert!(false, "opened twice"),
                        }
                        history.push(event.clone());
                        wallet.apply(event);
                    }
                }
                Err(_) => prop_assert_eq!(&wallet, &before),
            }
        }
        // Snapshot at `cut`, then the tail: the same state as folding everything.
        let cut = cut.min(history.len());
        let snapshot = serde_json::to_value(Wallet::fold(history[..cut].iter().cloned())).unwrap();
        let mut restored: Wallet = serde_json::from_value(snapshot).unwrap();
        for event in history[cut..].iter().cloned() {
            restored.apply(event);
        }
        prop_assert_eq!(&restored, &wallet);
        prop_assert_eq!(&Wallet::fold(history), &wallet);
    }
}

/// The stored payloads' documented shape (docs/event-store.md): a failing comparison means the
/// shape changed — add a version and an upcaster instead.
#[test]
fn stored_payloads_keep_their_documented_shape() {
    use crate::aggregate::{decode_stored, encode_stored, GameEvent};
    let golden = serde_json::json!({
        "WalletOpened": {"WalletOpened": {"owner": owner().to_string(),
            "character": character().to_string(), "opened_at": "2026-11-30T09:00:00Z"}},
        "CurrencyGranted": {"CurrencyGranted": {"currency": "gold", "amount": 30,
            "balance_after": 30, "source": "level-up", "reference": "levelup:2",
            "granted_at": "2026-11-30T09:00:00Z"}},
    });
    for event in [opened(), granted(30, 30, "levelup:2")] {
        let name = event.type_name();
        assert_eq!(encode_stored(&event), golden[name], "{name}");
        let back = decode_stored::<Wallet>(name, "1", golden[name].clone()).unwrap();
        assert_eq!(back, event);
    }
}
