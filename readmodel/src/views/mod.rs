//! The views, one module each. Registering a view is one line in [`all`] (Redis, the embedded
//! read side) or [`documents`] (MongoDB).

use std::sync::Arc;

use crate::view::View;

pub mod profile;
pub mod sheet;
pub mod timeline;
pub mod wallet;

pub use profile::{ProfileDoc, ProfileView};
pub use sheet::{CharacterSheet, SheetDoc, SheetView};
pub use timeline::{TimelineDoc, TimelineEntry, TimelineView};
pub use wallet::{LedgerEntry, WalletDoc, WalletView};

/// Every document view the Redis projector (and the embedded read side) maintains.
pub fn all() -> Vec<Arc<dyn View>> {
    vec![Arc::new(SheetView), Arc::new(WalletView)]
}

/// Every view of the embedded read side: both sets in one store.
pub fn embedded() -> Vec<Arc<dyn View>> {
    let mut views = all();
    views.extend(documents());
    views
}

/// Every view the MongoDB projector maintains: documents and their histories.
pub fn documents() -> Vec<Arc<dyn View>> {
    vec![Arc::new(ProfileView), Arc::new(TimelineView)]
}

#[cfg(test)]
mod tests;
