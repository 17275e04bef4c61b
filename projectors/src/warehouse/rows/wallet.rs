//! A wallet event's modelled rows: the `wallets` dimension and every currency movement.

use chaos_domain::{Currency, WalletEvent};
use chrono::{DateTime, Utc};

use super::{bigint, text, timestamp, Cell, Envelope, Row, Tables};
use crate::warehouse::schema;

pub(super) fn rows(at: &Envelope<'_>, event: &WalletEvent, out: &mut Tables) {
    match event {
        WalletEvent::WalletOpened {
            owner,
            character,
            opened_at,
        } => out.push((
            schema::WALLETS,
            vec![
                at.aggregate(),
                at.event_id.clone(),
                text(&owner.to_string()),
                text(&character.to_string()),
                timestamp(*opened_at),
            ],
        )),
        WalletEvent::CurrencyGranted {
            currency,
            amount,
            balance_after,
            source,
            reference,
            granted_at,
        } => out.push(flow(
            at,
            *currency,
            Direction::Source,
            *amount,
            *balance_after,
            source,
            reference,
            *granted_at,
        )),
        WalletEvent::CurrencySpent {
            currency,
            amount,
            balance_after,
            sink,
            reference,
            spent_at,
        } => out.push(flow(
            at,
            *currency,
            Direction::Sink,
            *amount,
            *balance_after,
            sink,
            reference,
            *spent_at,
        )),
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Source,
    Sink,
}

#[allow(clippy::too_many_arguments)]
fn flow<'a>(
    at: &Envelope<'a>,
    currency: Currency,
    direction: Direction,
    amount: u64,
    balance_after: u64,
    reason: &'a str,
    reference: &'a str,
    time: DateTime<Utc>,
) -> (&'static str, Row<'a>) {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    let (direction, delta) = match direction {
        Direction::Source => ("source", amount),
        Direction::Sink => ("sink", -amount),
    };
    (
        schema::CURRENCY_FLOWS,
        vec![
            at.event_id.clone(),
            at.aggregate(),
            at.sequence.clone(),
            text(currency.as_str()),
            text(direction),
            Cell::BigInt(amount),
            Cell::BigInt(delta),
            bigint(balance_after),
            text(reason),
            text(reference),
            timestamp(time),
        ],
    )
}
