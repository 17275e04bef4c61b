//! The query endpoints. Every one honours a `Consistency-Token` (waiting, bounded, until the
//! read model has applied the command that issued it) and answers with an `ETag`
//! (`If-None-Match` gives 304).
//!
//! The helpers return the finished problem response on their error path (`Result<_, Response>`),
//! which handlers pass straight back; it is the cold path, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chaos_platform::auth::{Caller, MaybeCaller, Role};
use chaos_platform::http::Problem;
use chaos_readmodel::views::sheet::{self, CharacterSheet, PublicProfile, SheetDoc};
use chaos_readmodel::views::wallet::{self, LedgerEntry, WalletDoc};
use chaos_readmodel::Document;
use chaos_schemas::ConsistencyToken;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;

type Answer = Result<Response, Response>;

fn problem(status: StatusCode, kind: &str, title: &str) -> Problem {
    Problem::new(status, kind, title)
}

fn unavailable(detail: String) -> Response {
    tracing::error!(error = %detail, "read model unavailable");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency-unavailable",
        "Service unavailable",
    )
    .detail("the read model is unavailable; retry later")
    .retry_after(1)
    .into_response()
}

pub async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not-found", "Not found").into_response()
}

/// `{id}`: a hyphenated UUID.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The character's or wallet's id: a hyphenated UUID.
    #[param(format = Uuid, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub id: String,
}

/// The read headers every endpoint takes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ReadHeaders {
    /// A command's `consistency_token`: wait (bounded) until the read model reflects it.
    #[param(
        rename = "Consistency-Token",
        pattern = r"^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[0-9]+$"
    )]
    pub consistency_token: Option<String>,
    /// An `ETag` from an earlier answer: 304 if nothing changed.
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

fn parse_id(raw: &str) -> Result<String, Response> {
    let hyphenated = raw.len() == 36
        && raw.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    hyphenated
        .then(|| uuid::Uuid::parse_str(raw).ok())
        .flatten()
        .map(|u| u.to_string())
        .ok_or_else(|| {
            problem(StatusCode::BAD_REQUEST, "invalid-field", "Bad request")
                .detail("id must be a UUID")
                .field("id")
                .into_response()
        })
}

/// The consistency token, if any: it must name one of the view's sources and this document.
fn wanted(
    headers: &HeaderMap,
    sources: &[&str],
    id: &str,
) -> Result<Option<(String, u64)>, Response> {
    let bad = || {
        problem(
            StatusCode::BAD_REQUEST,
            "invalid-consistency-token",
            "Bad request",
        )
        .detail("the Consistency-Token is malformed or names another aggregate")
        .field("Consistency-Token")
        .into_response()
    };
    let Some(raw) = headers.get("consistency-token") else {
        return Ok(None);
    };
    let token: ConsistencyToken = raw
        .to_str()
        .map_err(|_| bad())?
        .parse()
        .map_err(|_| bad())?;
    if !sources.contains(&token.aggregate_type.as_str()) || token.aggregate_id != id {
        return Err(bad());
    }
    Ok(Some((
        format!("{}/{}", token.aggregate_type, token.aggregate_id),
        token.sequence,
    )))
}

/// Reads document `id` of `view`, honouring the consistency token.
async fn read(
    state: &AppState,
    headers: &HeaderMap,
    view: &str,
    sources: &[&str],
    id: &str,
    missing: fn() -> Response,
) -> Result<Document, Response> {
    let key = state.keys.doc(view, id);
    let doc = match wanted(headers, sources, id)? {
        None => state.store.get(&key).await,
        Some((source, sequence)) => {
            let started = Instant::now();
            let doc = state
                .store
                .get_at_least(&key, &source, sequence, state.max_wait)
                .await;
            if let Ok(doc) = &doc {
                if doc.as_ref().is_none_or(|d| d.position(&source) < sequence) {
                    state.metrics.consistency_timeouts.inc();
                    return Err(problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "read-model-behind",
                        "The read model has not caught up with your command yet",
                    )
                    .detail(format!(
                        "waited {} ms for {source} to reach {sequence}",
                        state.max_wait.as_millis()
                    ))
                    .retry_after(1)
                    .into_response());
                }
                state
                    .metrics
                    .consistency_wait
                    .observe(started.elapsed().as_secs_f64());
            }
            doc
        }
    };
    doc.map_err(|e| unavailable(e.to_string()))?
        .ok_or_else(missing)
}

fn etag(id: &str, revision: u64) -> String {
    format!("\"{id}.{revision}\"")
}

/// 304 if the client has this revision; else `body` with the ETag.
fn tagged<T: Serialize>(headers: &HeaderMap, tag: String, body: &T) -> Response {
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(tag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    let mut response = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn body<T: for<'de> Deserialize<'de>>(doc: &Document, key: &str) -> Result<T, Response> {
    serde_json::from_value(doc.body.clone())
        .map_err(|e| unavailable(format!("document {key} does not read: {e}")))
}

fn forbidden() -> Response {
    problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
        .detail("this is another player's private state")
        .into_response()
}

/// The caller owns `owner`'s data, or is a game master.
fn allowed(caller: &Caller, owner: &str) -> bool {
    caller.account.to_string() == owner || caller.has(Role::GameMaster)
}

fn no_character() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "character-not-found",
        "No such character",
    )
    .into_response()
}

fn no_wallet() -> Response {
    problem(StatusCode::NOT_FOUND, "wallet-not-found", "No such wallet").into_response()
}

/// A character's public profile (anyone may read it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    #[serde(flatten)]
    #[schema(inline)]
    pub profile: ProfileDoc,
    /// The sheet's revision (its ETag).
    pub revision: u64,
}

/// What a public profile shows: name, class, level, zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileDoc {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    pub zone: String,
}

impl From<PublicProfile> for ProfileDoc {
    fn from(p: PublicProfile) -> Self {
        Self {
            id: p.id,
            name: p.name,
            class: p.class,
            level: p.level,
            zone: p.zone,
        }
    }
}

/// A character's public profile: name, class, level and zone. No token needed; a token that
/// does not verify is still refused.
#[utoipa::path(get, path = "/v1/characters/{id}", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = ProfileView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such character (`character-not-found`)")))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn character_profile(
    State(state): State<AppState>,
    _caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let doc = read(
        &state,
        &headers,
        sheet::NAME,
        SHEET_SOURCES,
        &id,
        no_character,
    )
    .await?;
    let sheet = character(&doc, &id)?.0;
    let view = ProfileView {
        profile: sheet.public().into(),
        revision: doc.revision,
    };
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}

/// The character part of a sheet document: absent (404) until the character's creation is
/// applied, even if its wallet's events came first.
fn character(
    doc: &Document,
    id: &str,
) -> Result<(CharacterSheet, std::collections::BTreeMap<String, u64>), Response> {
    let stored: SheetDoc = body(doc, id)?;
    match stored.character {
        Some(c) => Ok((c, stored.purse)),
        None => Err(no_character()),
    }
}

const SHEET_SOURCES: &[&str] = &[
    chaos_domain::character::AGGREGATE_TYPE,
    chaos_domain::wallet::AGGREGATE_TYPE,
];

/// A character's full sheet with its read-model bookkeeping (owner or game master).
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetView {
    /// The sheet: id, owner, name, class, level, xp, hp, mana, skills, cooldowns, purse.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub sheet: serde_json::Value,
    /// The sheet's revision (its ETag).
    pub revision: u64,
    /// How many events were applied to it.
    pub events_applied: u64,
    /// The last applied sequence per source stream (`character/<id>`, `wallet/<id>`).
    pub positions: std::collections::BTreeMap<String, u64>,
}

/// A character's private sheet: everything its owner sees (account, experience, hit points,
/// mana, skills, cooldowns, purse).
#[utoipa::path(get, path = "/v1/characters/{id}/sheet", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = SheetView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 403, description = "Another player's character (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn character_sheet(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let doc = read(
        &state,
        &headers,
        sheet::NAME,
        SHEET_SOURCES,
        &id,
        no_character,
    )
    .await?;
    let (sheet, purse) = character(&doc, &id)?;
    if !allowed(&caller, &sheet.owner) {
        return Err(forbidden());
    }
    let mut fields = serde_json::to_value(&sheet).map_err(|e| unavailable(e.to_string()))?;
    if let Some(map) = fields.as_object_mut() {
        map.insert("purse".into(), serde_json::json!(purse));
    }
    let view = SheetView {
        sheet: fields,
        revision: doc.revision,
        events_applied: doc.applied,
        positions: doc.positions.clone(),
    };
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}

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
    pub balances: std::collections::BTreeMap<String, u64>,
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
    let doc = read(state, headers, wallet::NAME, WALLET_SOURCES, id, no_wallet).await?;
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

/// `?after=&limit=` of a ledger page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only entries after this sequence (the previous page's `next_after`); default 0.
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// Entries per page, 1 to 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// A page of a wallet's ledger, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<LedgerEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// Query parameters with problem+json rejections.
#[derive(Debug)]
pub struct PageParams(pub PageQuery);

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state)
            .await
            .map_err(|r| {
                problem(StatusCode::BAD_REQUEST, "invalid-query", "Bad request")
                    .detail(r.body_text())
                    .into_response()
            })?;
        if q.limit.is_some_and(|l| !(1..=500).contains(&l)) {
            return Err(
                problem(StatusCode::BAD_REQUEST, "invalid-field", "Bad request")
                    .detail("limit must be from 1 to 500")
                    .field("limit")
                    .into_response(),
            );
        }
        Ok(Self(q))
    }
}

/// A wallet's ledger: every grant and spend with its reason, reference and the balance after
/// it, a page at a time.
#[utoipa::path(get, path = "/v1/wallets/{id}/ledger", tag = "wallets",
    params(IdPath, PageQuery, ReadHeaders),
    responses((status = 200, body = LedgerPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 403, description = "Another player's wallet (`forbidden`)"),
        (status = 404, description = "No such wallet (`wallet-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(wallet = %id))]
pub async fn ledger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    PageParams(query): PageParams,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, _) = owned_wallet(&state, &caller, &headers, &id).await?;
    let limit = query.limit.unwrap_or(50);
    let after = query.after.unwrap_or(0);
    let key = state.keys.log(wallet::NAME, wallet::LEDGER, &id);
    let rows = state
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
