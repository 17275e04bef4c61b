//! Accounts and bearer tokens. Players register and log in; a JWT names the account and its
//! roles. Identity is not part of the game's event stream: password hashes must never reach
//! Kafka, so accounts live in their own table behind the [`AccountStore`] port.

mod accounts;
mod password;

pub use accounts::{
    AccountStore, AccountStoreError, NewAccount, PgAccountStore, SqliteAccountStore, StoredAccount,
};
pub use password::{hash_password, verify_password};
