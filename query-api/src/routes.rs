//! The query endpoints. Every one honours a `Consistency-Token` (waiting, bounded, until the
//! read model has applied the command that issued it) and answers with an `ETag`
//! (`If-None-Match` gives 304).
//!
//! The helpers return the finished problem response on their error path (`Result<_, Response>`),
//! which handlers pass straight back; it is the cold path, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chaos_platform::auth::{Caller, MaybeCaller, Role};
use chaos_platform::http::Problem;
use chaos_platform::openapi::{optional_parameter, parse_uuid, query_pairs, Bounded, IdPath};
use chaos_readmodel::views::sheet::{self, CharacterSheet, PublicProfile, SheetDoc};
use chaos_readmodel::views::wallet::{self, LedgerEntry, WalletDoc};
use chaos_readmodel::Document;
use chaos_schemas::ConsistencyToken;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

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

/// The pattern of a `Consistency-Token` header: `v1.<aggregate type>.<aggregate id>.<sequence>`.
/// [`token_shape`] is its check: a token of this shape is never refused as malformed (one naming
/// another document is 422, see [`wanted`]).
pub const CONSISTENCY_TOKEN_PATTERN: &str = r"^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[0-9]{1,19}$";

/// Whether `raw` matches [`CONSISTENCY_TOKEN_PATTERN`] (19 digits at most: every such sequence
/// fits a `u64`).
pub fn token_shape(raw: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = raw.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("v1"), Some(kind), Some(id), Some(seq), None)
            if part(kind) && part(id) && (1..=19).contains(&seq.len())
                && seq.bytes().all(|b| b.is_ascii_digit())
    )
}

/// The read headers every endpoint takes, documented from the constants their checks use.
#[derive(Debug)]
pub struct ReadHeaders;

impl IntoParams for ReadHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            optional_parameter(
                "Consistency-Token",
                ParameterIn::Header,
                "A command's `consistency_token` for this document (its aggregate, or the \
                 character's wallet for a sheet): wait (bounded) until the read model reflects \
                 it. A token for another document is 422 `consistency-token-mismatch`.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(CONSISTENCY_TOKEN_PATTERN))
                    .into(),
            ),
            optional_parameter(
                "If-None-Match",
                ParameterIn::Header,
                "An `ETag` from an earlier answer: 304 if nothing changed",
                String::schema(),
            ),
        ]
    }
}

fn parse_id(raw: &str) -> Result<String, Response> {
    parse_uuid(raw).ok_or_else(|| {
        problem(StatusCode::BAD_REQUEST, "invalid-field", "Bad request")
            .detail("id must be a hyphenated UUID")
            .field("id")
            .into_response()
    })
}

/// The consistency token, if any: 400 if malformed; 422 unless it names one of the view's
/// sources and this document (a well-formed token for something else: the client mixed up its
/// tokens, and waiting on it would promise nothing).
fn wanted(
    headers: &HeaderMap,
    sources: &[&str],
    id: &str,
) -> Result<Option<(String, u64)>, Response> {
    let malformed = || {
        problem(
            StatusCode::BAD_REQUEST,
            "invalid-consistency-token",
            "Bad request",
        )
        .detail("the Consistency-Token is malformed")
        .field("Consistency-Token")
        .into_response()
    };
    let Some(raw) = headers.get("consistency-token") else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| malformed())?;
    if !token_shape(raw) {
        return Err(malformed());
    }
    let token: ConsistencyToken = raw.parse().map_err(|_| malformed())?;
    if !sources.contains(&token.aggregate_type.as_str()) || token.aggregate_id != id {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consistency-token-mismatch",
            "The Consistency-Token is for another document",
        )
        .detail(format!(
            "the token names {}/{}; this document reads {} {id}",
            token.aggregate_type,
            token.aggregate_id,
            sources.join(" or ")
        ))
        .field("Consistency-Token")
        .into_response());
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
                .instrument(tracing::info_span!(
                    "consistency.wait",
                    stream = %source,
                    sequence,
                ))
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
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
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
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
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

/// Query parameters with problem+json rejections: an unknown parameter, one given twice or a
/// value out of its documented range is 400 naming it.
#[derive(Debug)]
pub struct PageParams(pub PageQuery);

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let pairs = query_pairs(&parts.uri).map_err(IntoResponse::into_response)?;
        let mut query = PageQuery::default();
        for (name, value) in pairs {
            let taken = match name.as_str() {
                "after" => After::parse(&value).map(|v| query.after = Some(v.get())),
                "limit" => Limit::parse(&value).map(|v| query.limit = Some(v.get())),
                _ => Err("is not a parameter of this operation".to_owned()),
            };
            if let Err(detail) = taken {
                return Err(
                    problem(StatusCode::BAD_REQUEST, "invalid-field", "Bad request")
                        .detail(format!("{name} {detail}"))
                        .field(name)
                        .into_response(),
                );
            }
        }
        Ok(Self(query))
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
    PageParams(query): PageParams,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, _) = owned_wallet(&state, &caller, &headers, &id).await?;
    // Checked by the extractor; the default is in range.
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_LEDGER_PAGE)).unwrap_or(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_shape_is_its_documented_pattern() {
        // The pattern, spelled out: v1 . part . part . 1-19 digits; part = [A-Za-z0-9_-]+.
        assert_eq!(
            CONSISTENCY_TOKEN_PATTERN,
            r"^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[0-9]{1,19}$"
        );
        for good in [
            "v1.character.0190a3c2-7d1e-7c3a-9f00-000000000001.42",
            "v1.a.b.0",
            "v1.A_-.z9.9999999999999999999",
        ] {
            assert!(token_shape(good), "{good}");
            assert!(good.parse::<ConsistencyToken>().is_ok(), "{good} parses");
        }
        for bad in [
            "",
            "0",
            "v1",
            "v2.a.b.1",
            "v1.a.b",
            "v1..b.1",
            "v1.a.b.",
            "v1.a.b.+1",
            "v1.a.b.-1",
            "v1.a.b.1.2",
            "v1.a b.c.1",
            "v1.a.b.99999999999999999999",
            "v1.ä.b.1",
        ] {
            assert!(!token_shape(bad), "{bad}");
        }
    }
}
