//! `/v1/wallets`: a character's purse (its id is the character's). The game opens wallets and
//! grants rewards itself (process managers); players spend; game masters may grant.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chaos_domain::{Currency, Wallet, WalletCommand};
use chaos_platform::auth::{Caller, Role};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;
use crate::http::command::{history as history_page, HistoryPage, HistoryQuery};
use crate::http::extract::ApiQuery;
use crate::http::fields::{parse_uuid, CurrencyAmount, IdPath, IdempotencyHeader, Label};
use crate::http::{run, Answer, ApiError, ApiJson, CommandAnswer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{id}/spend", post(spend))
        .route("/v1/wallets/{id}/grant", post(grant))
        .route("/v1/wallets/{id}/events", get(history))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(spend, grant, history),
    components(schemas(Spend, Grant, CurrencyName, CommandAnswer, HistoryPage))
)]
pub struct Doc;

/// A currency: `gold` (earned in play) or `gems` (bought).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Currency)]
pub enum CurrencyName {
    Gold,
    Gems,
}

impl From<CurrencyName> for Currency {
    fn from(c: CurrencyName) -> Self {
        match c {
            CurrencyName::Gold => Currency::Gold,
            CurrencyName::Gems => Currency::Gems,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "gold", "amount": 10, "sink": "vendor:potion", "reference": "order-1"}))]
pub struct Spend {
    pub currency: CurrencyName,
    pub amount: CurrencyAmount,
    /// What for: `vendor:potion`, `repair`, ...
    pub sink: Label,
    /// The client's reference for this spend; a wallet applies a reference once.
    pub reference: Label,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "gold", "amount": 100, "source": "compensation", "reference": "ticket-42"}))]
pub struct Grant {
    pub currency: CurrencyName,
    pub amount: CurrencyAmount,
    /// Why: `quest:intro`, `compensation`, ...
    pub source: Label,
    /// What the grant settles; a wallet applies a reference once.
    pub reference: Label,
}

fn wallet_id(raw: &str) -> Result<String, ApiError> {
    parse_uuid(raw)
        .map(|id| id.to_string())
        .ok_or_else(|| ApiError::invalid_field("id", "id must be a wallet id (a UUID)"))
}

fn not_found() -> ApiError {
    ApiError::not_found("wallet-not-found", "No such wallet")
}

/// Spend currency from the caller's wallet. Never below zero: spending more than the balance is
/// 422 `insufficient-funds` and changes nothing.
#[utoipa::path(post, path = "/v1/wallets/{id}/spend", tag = "wallets", request_body = Spend,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's wallet (`not-wallet-owner`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)"),
        (status = 409, description = "The reference was already applied (`duplicate-reference`), or a concurrent modification"),
        (status = 422, description = "A rule refused it: `insufficient-funds`, `invalid-amount`, `invalid-label`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn spend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Spend>,
) -> Result<Response, ApiError> {
    let id = wallet_id(&id)?;
    let Spend {
        currency,
        amount,
        sink,
        reference,
    } = body.value;
    let command = WalletCommand::Spend {
        actor: caller.account,
        currency: currency.into(),
        amount: amount.get(),
        sink: sink.into_inner(),
        reference: reference.into_inner(),
    };
    run::<Wallet>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Ok,
    )
    .await
}

/// Grant currency (compensation, event rewards). Game masters only; rewards the game gives by
/// itself (level-ups) arrive through the process managers.
#[utoipa::path(post, path = "/v1/wallets/{id}/grant", tag = "wallets", request_body = Grant,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "The caller is not a game master (`forbidden`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)"),
        (status = 409, description = "The reference was already applied (`duplicate-reference`), or a concurrent modification"),
        (status = 422, description = "A rule refused it: `balance-limit`, `invalid-amount`, `invalid-label`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Grant>,
) -> Result<Response, ApiError> {
    if !caller.has(Role::GameMaster) {
        return Err(ApiError::forbidden("granting currency is for game masters"));
    }
    let id = wallet_id(&id)?;
    let Grant {
        currency,
        amount,
        source,
        reference,
    } = body.value;
    let command = WalletCommand::Grant {
        currency: currency.into(),
        amount: amount.get(),
        source: source.into_inner(),
        reference: reference.into_inner(),
    };
    run::<Wallet>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Ok,
    )
    .await
}

/// The wallet's authoritative event history (its full ledger), one page at a time; owner or game
/// master.
#[utoipa::path(get, path = "/v1/wallets/{id}/events", tag = "wallets",
    params(IdPath, HistoryQuery),
    responses((status = 200, body = HistoryPage),
        (status = 403, description = "Another player's wallet (`forbidden`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let id = wallet_id(&id)?;
    history_page::<Wallet>(&state, &caller, &id, &query, not_found).await
}
