//! The one way a route runs a command: throttle the caller, build the command context (account,
//! idempotency key, request hash, correlation id, trace context), execute, answer. And the one
//! way a route serves an aggregate's history: authorise against the aggregate's owner first, then
//! read one page. A route is then a few lines: parse the body, build the domain command, call
//! [`run`].

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chaos_domain::{AccountId, GameAggregate};
use chaos_eventstore::{CommandContext, CommandOutcome};
use chaos_platform::auth::{Caller, Role};
use chaos_platform::openapi::{optional_parameter, Bounded};
use chaos_platform::telemetry;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::error::ApiError;
use super::extract::{correlation_id, idempotency_key, traceparent, QueryParams};
use crate::app::AppState;

/// A command's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAnswer {
    /// The aggregate the command ran on.
    #[schema(format = Uuid)]
    pub aggregate_id: String,
    /// The aggregate's version after the command: the sequence of the last event it appended.
    #[schema(minimum = 0)]
    pub sequence: u64,
    /// The types of the events appended, in order (empty when nothing changed).
    pub events: Vec<String>,
    /// Send back as the `Consistency-Token` header of a query to read at least this state.
    pub consistency_token: String,
}

/// How a command is answered: 200, or 201 with `Location` for a creation.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'a> {
    Ok,
    Created { collection: &'a str },
}

/// Runs `command` on aggregate `id` for `caller` (see the module documentation).
pub async fn run<A>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body_hash: String,
    id: &str,
    command: A::Command,
    answer: Answer<'_>,
) -> Result<Response, ApiError>
where
    A: GameAggregate + Send + Sync,
    A::Command: Clone,
{
    if let Err(retry_after) = state.limits.commands.check(&caller.account.to_string()) {
        return Err(ApiError::rate_limited(retry_after));
    }
    let context = CommandContext {
        account: Some(caller.account),
        idempotency_key: idempotency_key(headers)?,
        request_hash: Some(body_hash),
        correlation_id: Some(correlation_id(headers)),
        causation_id: None,
        // This request's span when traces are exported (its parent is the caller's
        // `traceparent`), else the caller's `traceparent` as sent: what the events carry on.
        traceparent: telemetry::traceparent(&tracing::Span::current())
            .or_else(|| traceparent(headers)),
    };
    let outcome = state.commands.execute::<A>(id, command, &context).await?;
    Ok(respond(outcome, answer))
}

fn respond(outcome: CommandOutcome, answer: Answer<'_>) -> Response {
    let replayed = outcome.replayed;
    let body = CommandAnswer {
        aggregate_id: outcome.aggregate_id,
        sequence: outcome.sequence,
        events: outcome.events,
        consistency_token: outcome.consistency_token,
    };
    let (status, location) = match answer {
        Answer::Ok => (StatusCode::OK, None),
        Answer::Created { collection } => (
            StatusCode::CREATED,
            Some(format!("/v1/{collection}/{}", body.aggregate_id)),
        ),
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The id of an aggregate a command creates: derived from the account and the Idempotency-Key
/// when there is one (so a retried creation lands on the same aggregate), else a fresh UUIDv7.
pub fn new_aggregate_id(
    kind: &str,
    account: AccountId,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    Ok(match idempotency_key(headers)? {
        Some(key) => {
            let digest = Sha256::digest(format!("{kind}:{account}:{key}"));
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }
        None => uuid::Uuid::now_v7(),
    }
    .to_string())
}

/// The largest history page.
pub const MAX_PAGE: u64 = 1000;
/// The page size when `limit` is not given.
pub const DEFAULT_PAGE: u64 = 100;

type After = Bounded<0, { u64::MAX }>;
type Limit = Bounded<1, MAX_PAGE>;
type UpTo = Bounded<1, { u64::MAX }>;

/// `?after=&limit=&up_to=` of a history request: each parameter's check and its documented
/// schema are the same [`Bounded`] type.
#[derive(Debug, Default)]
pub struct HistoryQuery {
    /// Only events after this sequence (the previous page's `next_after`); default 0.
    pub after: Option<u64>,
    /// Events per page; default [`DEFAULT_PAGE`].
    pub limit: Option<u64>,
    /// Only events up to and including this sequence: the history "as of version N".
    pub up_to: Option<u64>,
}

impl QueryParams for HistoryQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<bool, String> {
        match name {
            "after" => self.after = Some(After::parse(value)?.get()),
            "limit" => self.limit = Some(Limit::parse(value)?.get()),
            "up_to" => self.up_to = Some(UpTo::parse(value)?.get()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl IntoParams for HistoryQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            optional_parameter(
                "after",
                ParameterIn::Query,
                "Only events after this sequence (the previous page's `next_after`); default 0",
                After::schema(),
            ),
            optional_parameter(
                "limit",
                ParameterIn::Query,
                &format!("Events per page, 1 to {MAX_PAGE}; default {DEFAULT_PAGE}"),
                Limit::schema(),
            ),
            optional_parameter(
                "up_to",
                ParameterIn::Query,
                "Only events up to and including this sequence: the history as of version N",
                UpTo::schema(),
            ),
        ]
    }
}

/// One stored event, as the history shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    #[schema(minimum = 1)]
    pub sequence: i64,
    pub event_type: String,
    /// The stored payload's version (see docs/event-store.md).
    pub event_version: String,
    /// When the command that produced it was accepted (RFC 3339).
    pub occurred_at: Option<String>,
    /// The stored payload: `{"<EventType>": {fields}}` (its stored text, passed through).
    #[schema(value_type = Object)]
    pub payload: chaos_eventstore::JsonText,
}

/// A page of an aggregate's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub events: Vec<HistoryEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// One page of aggregate `id`'s history, for its owner or a game master. The owner is checked
/// on the aggregate's state (cache or snapshot: bounded time) before any history is read.
pub async fn history<A>(
    state: &AppState,
    caller: &Caller,
    id: &str,
    query: &HistoryQuery,
    not_found: fn() -> ApiError,
) -> Result<Json<HistoryPage>, ApiError>
where
    A: GameAggregate + Send + Sync,
{
    // The extractor has checked the range; the default is in range.
    let limit = u32::try_from(query.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE)).unwrap_or(1);
    let (aggregate, _) = state.commands.load::<A>(id).await?;
    let Some(owner) = aggregate.owner() else {
        return Err(not_found());
    };
    if owner != caller.account && !caller.has(Role::GameMaster) {
        return Err(ApiError::forbidden("only the owner may read this history"));
    }
    let after = query.after.unwrap_or(0);
    let events = state
        .commands
        .history(A::TYPE, id, after, limit, query.up_to)
        .await?;
    let full = events.len() == limit as usize;
    let next_after = events
        .last()
        .filter(|_| full)
        .and_then(|e| u64::try_from(e.sequence).ok());
    Ok(Json(HistoryPage {
        events: events
            .into_iter()
            .map(|e| HistoryEntry {
                occurred_at: e.occurred_at().map(|t| t.to_rfc3339()),
                sequence: e.sequence,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
            })
            .collect(),
        next_after,
    }))
}
