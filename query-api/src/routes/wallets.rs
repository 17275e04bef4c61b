//! A wallet's balances and its ledger (owner or game master), from the hot store.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chaos_platform::auth::Caller;
use chaos_platform::openapi::{optional_parameter, Bounded, IdPath};
use chaos_readmodel::views::wallet::{self, LedgerEntry, WalletDoc};
use chaos_readmodel::Document;
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::common::etag;
use super::common::{
    allowed, body, forbidden, no_wallet, parse_id, read, tagged, unavailable, unknown_parameter,
    Answer, Params, QuerySpec, ReadHeaders,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{id}", get(wallet))
        .route("/v1/wallets/{id}/ledger", get(ledger))
}

#[derive(Debug, OpenApi)]
#[openapi(paths(wallet, ledger), components(schemas(WalletView, LedgerPage)))]
pub struct Doc;

/// A wallet's balances (owner or game master).
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub owner: String,
    #[schema(format = Uuid)]
    pub character: String,
    /// Currency (`gold`, `gems`) -> balance; a currency never touched reads 0.
    pub balances: BTreeMap<String, u64>,
    /// Entries in the ledger.
    pub ledger_entries: u64,
    /// The wallet's version (the sequence of its last event).
    pub version: u64,
    pub revision: u64,
}

const WALLET_SOURCES: &[&str] = &[chaos_domain::wallet::AGGREGATE_TYPE];

async fn owned_wallet(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Document, WalletDoc), Response> {
    let doc = read(
        state,
        &state.hot,
        headers,
        wallet::NAME,
        WALLET_SOURCES,
        id,
        no_wallet,
    )
    .await?;
    let wallet: WalletDoc = body(&doc, id)?;
    if !allowed(caller, &wallet.owner) {
        return Err(forbidden());
    }
    Ok((doc, wallet))
}

/// A wallet's balances.
#[utoipa::path(get, path = "/v1/wallets/{id}", tag = "wallets",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = WalletView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
        (status = 403, description = "Another player's wallet (`forbidden`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn wallet(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, mut wallet) = owned_wallet(&state, &caller, &headers, &id).await?;
    for currency in chaos_domain::Currency::ALL {
        wallet.balances.entry(currency.to_string()).or_insert(0);
    }
    let view = WalletView {
        version: doc.position(&format!("{}/{id}", chaos_domain::wallet::AGGREGATE_TYPE)),
        id: wallet.id,
        owner: wallet.owner,
        character: wallet.character,
        balances: wallet.balances,
        ledger_entries: wallet.ledger_entries,
        revision: doc.revision,
    };
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}

/// The largest ledger page.
pub const MAX_LEDGER_PAGE: u64 = 500;
/// The ledger page size when `limit` is not given.
pub const DEFAULT_LEDGER_PAGE: u64 = 50;

type After = Bounded<0, { u64::MAX }>;
type Limit = Bounded<1, MAX_LEDGER_PAGE>;

/// `?after=&limit=` of a ledger page: each parameter's check and its documented schema are the
/// same [`Bounded`] type.
#[derive(Debug, Default)]
pub struct PageQuery {
    /// Only entries after this sequence (the previous page's `next_after`); default 0.
    pub after: Option<u64>,
    /// Entries per page; default [`DEFAULT_LEDGER_PAGE`].
    pub limit: Option<u64>,
}

impl IntoParams for PageQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            optional_parameter(
                "after",
                ParameterIn::Query,
                "Only entries after this sequence (the previous page's `next_after`); default 0",
                After::schema(),
            ),
            optional_parameter(
                "limit",
                ParameterIn::Query,
                &format!("Entries per page, 1 to {MAX_LEDGER_PAGE}; default {DEFAULT_LEDGER_PAGE}"),
                Limit::schema(),
            ),
        ]
    }
}

/// A page of a wallet's ledger, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<LedgerEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

impl QuerySpec for PageQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "after" => After::parse(value).map(|v| self.after = Some(v.get())),
            "limit" => Limit::parse(value).map(|v| self.limit = Some(v.get())),
            _ => unknown_parameter(),
        }
    }
}

/// A wallet's ledger: every grant and spend with its reason, reference and the balance after
/// it, a page at a time.
#[utoipa::path(get, path = "/v1/wallets/{id}/ledger", tag = "wallets",
    params(IdPath, PageQuery, ReadHeaders),
    responses((status = 200, body = LedgerPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
        (status = 403, description = "Another player's wallet (`forbidden`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<PageQuery>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, _) = owned_wallet(&state, &caller, &headers, &id).await?;
    // Checked by the extractor; the default is in range.
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_LEDGER_PAGE)).unwrap_or(1);
    let after = query.after.unwrap_or(0);
    let key = state
        .hot
        .keys()
        .await?
        .log(wallet::NAME, wallet::LEDGER, &id);
    let rows = state
        .hot
        .store
        .log_range(&key, after, limit)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let full = rows.len() == limit;
    let entries: Vec<LedgerEntry> = rows
        .into_iter()
        .map(|(_, entry)| serde_json::from_value(entry))
        .collect::<Result<_, _>>()
        .map_err(|e| unavailable(format!("ledger {key} does not read: {e}")))?;
    let next_after = entries.last().filter(|_| full).map(|e| e.sequence);
    let page = LedgerPage {
        entries,
        next_after,
    };
    Ok(tagged(
        &headers,
        format!("\"{id}.{}.{after}.{limit}\"", doc.revision),
        &page,
    ))
}
