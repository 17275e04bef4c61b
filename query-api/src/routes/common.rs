//! What every query endpoint shares: problem answers, the `Consistency-Token` (waiting, bounded,
//! until the read model has applied the command that issued it), `ETag`s (`If-None-Match` gives
//! 304), ownership, and query-string parameters checked against their documented schemas.
//!
//! The helpers return the finished problem response on their error path (`Result<_, Response>`),
//! which handlers pass straight back; it is the cold path, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chaos_platform::auth::{Caller, Role};
use chaos_platform::http::Problem;
use chaos_platform::openapi::{optional_parameter, parse_uuid, query_pairs};
use chaos_readmodel::Document;
use chaos_schemas::ConsistencyToken;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, PartialSchema};

use crate::{AppState, Models};

pub type Answer = Result<Response, Response>;

pub(crate) fn problem(status: StatusCode, kind: &str, title: &str) -> Problem {
    Problem::new(status, kind, title)
}

pub(crate) fn unavailable(detail: String) -> Response {
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
/// another document is 422, see `wanted`).
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

pub(crate) fn parse_id(raw: &str) -> Result<String, Response> {
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
pub(crate) fn wanted(
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

/// Reads document `id` of `view` from `models`, honouring the consistency token.
pub(crate) async fn read(
    state: &AppState,
    models: &Models,
    headers: &HeaderMap,
    view: &str,
    sources: &[&str],
    id: &str,
    missing: fn() -> Response,
) -> Result<Document, Response> {
    let key = models.keys().await?.doc(view, id);
    let doc = match wanted(headers, sources, id)? {
        None => models.store.get(&key).await,
        Some((source, sequence)) => {
            let started = Instant::now();
            let doc = models
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

pub(crate) fn etag(id: &str, revision: u64) -> String {
    format!("\"{id}.{revision}\"")
}

/// 304 if the client has this revision; else `body` with the ETag.
pub(crate) fn tagged<T: Serialize>(headers: &HeaderMap, tag: String, body: &T) -> Response {
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

/// A document's stored body as the view's type (`unavailable` if it does not read).
pub(crate) fn body<T: for<'de> Deserialize<'de>>(doc: &Document, key: &str) -> Result<T, Response> {
    doc.body
        .decode()
        .map_err(|e| unavailable(format!("document {key} does not read: {e}")))
}

pub(crate) fn forbidden() -> Response {
    problem(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
        .detail("this is another player's private state")
        .into_response()
}

/// The caller owns `owner`'s data, or is a game master.
pub(crate) fn allowed(caller: &Caller, owner: &str) -> bool {
    caller.account.to_string() == owner || caller.has(Role::GameMaster)
}

pub(crate) fn no_character() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "character-not-found",
        "No such character",
    )
    .into_response()
}

pub(crate) fn no_wallet() -> Response {
    problem(StatusCode::NOT_FOUND, "wallet-not-found", "No such wallet").into_response()
}

/// A query string's parameters, each checked against its documented schema: an unknown
/// parameter, one given twice or a value out of range is 400 naming it.
pub trait QuerySpec: Default + Send {
    /// Takes one parameter; `Err` says why its value is refused.
    fn take(&mut self, name: &str, value: &str) -> Result<(), String>;
}

/// Extracts a [`QuerySpec`] with problem+json rejections.
#[derive(Debug)]
pub struct Params<Q>(pub Q);

impl<S: Send + Sync, Q: QuerySpec> FromRequestParts<S> for Params<Q> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let pairs = query_pairs(&parts.uri).map_err(IntoResponse::into_response)?;
        let mut query = Q::default();
        for (name, value) in pairs {
            if let Err(detail) = query.take(&name, &value) {
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

/// The refusal of a parameter the operation does not take.
pub(crate) fn unknown_parameter() -> Result<(), String> {
    Err("is not a parameter of this operation".to_owned())
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
