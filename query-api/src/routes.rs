use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chaos_platform::consistency::ConsistencyToken;
use chaos_platform::http::Problem;
use chaos_projectors::readmodel::Versioned;
use chaos_projectors::sheet::{self, COLLECTION};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// A character sheet with its read-model bookkeeping.
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub sheet: serde_json::Value,
    /// The sequence of the last event applied.
    pub version: u64,
    /// How many events were applied; equals `version` unless something went wrong.
    pub events_applied: u64,
}

fn problem_unavailable(detail: String) -> Response {
    tracing::error!(error = %detail, "read model unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency-unavailable",
        "Service unavailable",
    )
    .detail("the read model is unavailable; retry later")
    .retry_after(1)
    .into_response()
}

pub async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").into_response()
}

/// A character's sheet. With `Consistency-Token` (from a command's answer) the request waits,
/// bounded, until the sheet reflects that command; otherwise 503 with Retry-After.
#[utoipa::path(get, path = "/v1/characters/{id}", tag = "characters",
    params(("id" = String, Path),
        ("Consistency-Token" = Option<String>, Header, description = "From a command's answer"),
        ("If-None-Match" = Option<String>, Header)),
    responses((status = 200, body = SheetView, headers(("ETag" = String))), (status = 304),
        (status = 400), (status = 404), (status = 503)))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn character_sheet(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Problem::new(StatusCode::BAD_REQUEST, "invalid-field", "Bad request")
            .detail("not a character id")
            .field("id")
            .into_response();
    }
    let wanted = match headers.get("consistency-token").map(|v| v.to_str()) {
        None => None,
        Some(Ok(raw)) => match raw.parse::<ConsistencyToken>() {
            Ok(t) if t.aggregate_type == COLLECTION && t.aggregate_id == id => Some(t.sequence),
            _ => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-consistency-token",
                    "Bad request",
                )
                .detail("the Consistency-Token is malformed or names another character")
                .field("Consistency-Token")
                .into_response()
            }
        },
        Some(Err(_)) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-consistency-token",
                "Bad request",
            )
            .field("Consistency-Token")
            .into_response()
        }
    };
    let key = sheet::key(&state.key_prefix, &state.model_version, &id);
    let doc = match wanted {
        None => state.store.get(&key).await,
        Some(wanted) => {
            let started = Instant::now();
            let doc = state.store.get_at_least(&key, wanted, state.max_wait).await;
            if let Ok(doc) = &doc {
                if doc.as_ref().is_none_or(|d| d.version < wanted) {
                    state.metrics.consistency_timeouts.inc();
                    return Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "read-model-behind",
                        "The read model has not caught up with your command yet",
                    )
                    .detail(format!(
                        "waited {} ms for sequence {wanted}",
                        state.max_wait.as_millis()
                    ))
                    .retry_after(1)
                    .into_response();
                }
                state
                    .metrics
                    .consistency_wait
                    .observe(started.elapsed().as_secs_f64());
            }
            doc
        }
    };
    let doc = match doc {
        Ok(doc) => doc,
        Err(e) => return problem_unavailable(e.to_string()),
    };
    let Some(Versioned {
        version,
        applied,
        doc,
    }) = doc
    else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "character-not-found",
            "No such character",
        )
        .into_response();
    };
    let etag = format!("\"{id}.{version}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let view = SheetView {
        sheet: doc,
        version,
        events_applied: applied,
    };
    let mut response = axum::Json(view).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
