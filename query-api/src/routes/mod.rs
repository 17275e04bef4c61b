//! The query endpoints, one module per read model (plus what they share). Registering a read
//! model's HTTP surface is one line in each list below.

use axum::Router;
use utoipa::OpenApi;

use crate::AppState;

pub mod boards;
pub mod characters;
mod common;
pub mod history;
pub mod wallets;

pub use common::{
    not_found, token_shape, Answer, Params, QuerySpec, ReadHeaders, CONSISTENCY_TOKEN_PATTERN,
};

/// Every route of the query API.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(characters::routes())
        .merge(history::routes())
        .merge(wallets::routes())
        .merge(boards::routes())
}

/// Every route module's OpenAPI paths and schemas.
pub fn documents() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        characters::Doc::openapi(),
        history::Doc::openapi(),
        wallets::Doc::openapi(),
        boards::Doc::openapi(),
    ]
}
