//! The views, one module each. Registering a view is one line in [`all`].

use std::sync::Arc;

use crate::view::View;

pub mod sheet;
pub mod wallet;

pub use sheet::{CharacterSheet, SheetDoc, SheetView};
pub use wallet::{LedgerEntry, WalletDoc, WalletView};

/// Every document view the Redis projector (and the embedded read side) maintains.
pub fn all() -> Vec<Arc<dyn View>> {
    vec![Arc::new(SheetView), Arc::new(WalletView)]
}
