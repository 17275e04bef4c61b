//! `wallet` events <-> the fields of their `chaos.wallet.*` records (see `registry::AvroMapping`).

use apache_avro::types::Value;
use chaos_domain::{AccountId, CharacterId, Currency, WalletEvent};

use crate::error::{Error, Result};
use crate::registry::AvroMapping;
use crate::value::{self, Fields};

/// `chaos.wallet.Currency`: the enum's symbols in schema order. Published: append only.
const CURRENCY_SYMBOLS: [Currency; 2] = [Currency::Gold, Currency::Gems];

fn currency(c: Currency) -> Value {
    let index = CURRENCY_SYMBOLS.iter().position(|s| *s == c).unwrap_or(0);
    Value::Enum(u32::try_from(index).unwrap_or(0), c.as_str().to_owned())
}

fn take_currency(f: &mut Fields) -> Result<Currency> {
    let symbol = f.enum_symbol("currency")?;
    Currency::parse(&symbol)
        .ok_or_else(|| Error::field(f.record(), "currency", format!("unknown currency {symbol}")))
}

impl AvroMapping for WalletEvent {
    fn to_fields(&self) -> Vec<(&'static str, Value)> {
        match self {
            WalletEvent::WalletOpened {
                owner,
                character,
                opened_at,
            } => vec![
                ("owner", value::string(&owner.to_string())),
                ("character", value::string(&character.to_string())),
                ("opened_at", value::timestamp(*opened_at)),
            ],
            WalletEvent::CurrencyGranted {
                currency: c,
                amount,
                balance_after,
                source,
                reference,
                granted_at,
            } => vec![
                ("currency", currency(*c)),
                ("amount", value::long_u64(*amount)),
                ("balance_after", value::long_u64(*balance_after)),
                ("source", value::string(source)),
                ("reference", value::string(reference)),
                ("granted_at", value::timestamp(*granted_at)),
            ],
            WalletEvent::CurrencySpent {
                currency: c,
                amount,
                balance_after,
                sink,
                reference,
                spent_at,
            } => vec![
                ("currency", currency(*c)),
                ("amount", value::long_u64(*amount)),
                ("balance_after", value::long_u64(*balance_after)),
                ("sink", value::string(sink)),
                ("reference", value::string(reference)),
                ("spent_at", value::timestamp(*spent_at)),
            ],
        }
    }

    fn from_fields(event_type: &str, f: &mut Fields) -> Result<Self> {
        Ok(match event_type {
            "WalletOpened" => WalletEvent::WalletOpened {
                owner: {
                    let s = f.string("owner")?;
                    AccountId::parse(&s)
                        .map_err(|e| Error::field(f.record(), "owner", e.to_string()))?
                },
                character: {
                    let s = f.string("character")?;
                    CharacterId::parse(&s)
                        .map_err(|e| Error::field(f.record(), "character", e.to_string()))?
                },
                opened_at: f.timestamp("opened_at")?,
            },
            "CurrencyGranted" => WalletEvent::CurrencyGranted {
                currency: take_currency(f)?,
                amount: f.long_u64("amount")?,
                balance_after: f.long_u64("balance_after")?,
                source: f.string("source")?,
                reference: f.string("reference")?,
                granted_at: f.timestamp("granted_at")?,
            },
            "CurrencySpent" => WalletEvent::CurrencySpent {
                currency: take_currency(f)?,
                amount: f.long_u64("amount")?,
                balance_after: f.long_u64("balance_after")?,
                sink: f.string("sink")?,
                reference: f.string("reference")?,
                spent_at: f.timestamp("spent_at")?,
            },
            other => {
                return Err(Error::UnknownEventType {
                    aggregate_type: chaos_domain::wallet::AGGREGATE_TYPE.to_owned(),
                    event_type: other.to_owned(),
                })
            }
        })
    }
}
