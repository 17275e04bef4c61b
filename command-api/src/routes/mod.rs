//! The routes, one module per aggregate (plus accounts). Registering an aggregate's HTTP surface
//! is one line in each list below.

use axum::Router;
use utoipa::OpenApi;

use crate::app::AppState;

pub mod accounts;
pub mod characters;
pub mod wallets;

/// Every route of the command API.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(accounts::routes())
        .merge(characters::routes())
        .merge(wallets::routes())
}

/// Every route module's OpenAPI paths and schemas.
pub fn documents() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        accounts::Doc::openapi(),
        characters::Doc::openapi(),
        wallets::Doc::openapi(),
    ]
}
