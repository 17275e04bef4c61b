use super::Currency;
use crate::aggregate::{RuleError, RuleKind};

/// A broken wallet rule; `code()` is the published problem type: do not change the codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("no such wallet")]
    NotFound,
    #[error("the wallet belongs to another account")]
    NotOwner,
    #[error("the wallet is already open")]
    AlreadyOpen,
    #[error("amount must be between 1 and {max}")]
    InvalidAmount { max: u64 },
    #[error("{field} must be 1 to {max} characters without control characters")]
    InvalidLabel { field: &'static str, max: usize },
    #[error("not enough {currency}: {needed} needed, {available} available")]
    InsufficientFunds {
        currency: Currency,
        needed: u64,
        available: u64,
    },
    #[error("the {currency} balance would exceed {max}")]
    BalanceLimit { currency: Currency, max: u64 },
    #[error("reference {0} was already applied")]
    DuplicateReference(String),
}

impl RuleError for WalletError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "wallet-not-found",
            Self::NotOwner => "not-wallet-owner",
            Self::AlreadyOpen => "wallet-already-open",
            Self::InvalidAmount { .. } => "invalid-amount",
            Self::InvalidLabel { .. } => "invalid-label",
            Self::InsufficientFunds { .. } => "insufficient-funds",
            Self::BalanceLimit { .. } => "balance-limit",
            Self::DuplicateReference(_) => "duplicate-reference",
        }
    }

    fn kind(&self) -> RuleKind {
        match self {
            Self::NotFound => RuleKind::NotFound,
            Self::NotOwner => RuleKind::Forbidden,
            Self::AlreadyOpen | Self::DuplicateReference(_) => RuleKind::Conflict,
            _ => RuleKind::Unprocessable,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidAmount { .. } | Self::InsufficientFunds { .. } => Some("amount"),
            Self::BalanceLimit { .. } => Some("amount"),
            Self::InvalidLabel { field, .. } => Some(field),
            Self::DuplicateReference(_) => Some("reference"),
            Self::NotFound | Self::NotOwner | Self::AlreadyOpen => None,
        }
    }
}
