use serde::{Deserialize, Serialize};

use super::Currency;
use crate::ids::{AccountId, CharacterId};

/// What may be asked of a wallet. `Open` and `Grant` come from the game itself (process managers,
/// game masters); `Spend` from the owning player.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletCommand {
    Open {
        owner: AccountId,
        character: CharacterId,
    },
    Grant {
        currency: Currency,
        amount: u64,
        /// Why: `level-up`, `quest:intro`, `purchase`, ...
        source: String,
        /// What it settles; a reference is applied once.
        reference: String,
    },
    Spend {
        actor: AccountId,
        currency: Currency,
        amount: u64,
        /// What for: `vendor:potion`, `repair`, ...
        sink: String,
        reference: String,
    },
}
