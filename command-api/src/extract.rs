//! Request extractors that turn every malformed input into a problem+json answer.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::auth::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// JSON body with problem+json rejections (400 malformed / wrong type / unknown field,
/// 413 too large, 415 wrong content type) and a hash of the raw body for idempotency checks.
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    pub body_hash: String,
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let path = req.uri().path().to_owned();
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) => {
                let status = rejection.status();
                let problem = chaos_platform::http::Problem::new(
                    status,
                    if status.as_u16() == 413 {
                        "body-too-large"
                    } else {
                        "unreadable-body"
                    },
                    "The request body could not be read",
                )
                .detail(rejection.body_text());
                return Err(problem.into_response());
            }
        };
        let value = axum::Json::<T>::from_bytes(&bytes)
            .map_err(|r| json_problem(&r))?
            .0;
        let mut hasher = Sha256::new();
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(&bytes);
        Ok(Self {
            value,
            body_hash: hex::encode(hasher.finalize()),
        })
    }
}

fn json_problem(rejection: &JsonRejection) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (kind, title) = match rejection {
        JsonRejection::JsonDataError(_) => {
            ("invalid-body", "The request body does not match the schema")
        }
        JsonRejection::JsonSyntaxError(_) => {
            ("malformed-json", "The request body is not valid JSON")
        }
        JsonRejection::MissingJsonContentType(_) => (
            "unsupported-media-type",
            "Expected Content-Type: application/json",
        ),
        _ => ("unreadable-body", "The request body could not be read"),
    };
    // serde's message names the offending field ("unknown field `x`", "missing field `y`").
    // Wrong types and unknown fields are malformed requests (400), like broken JSON.
    let status = match rejection {
        JsonRejection::JsonDataError(_) => axum::http::StatusCode::BAD_REQUEST,
        other => other.status(),
    };
    chaos_platform::http::Problem::new(status, kind, title)
        .detail(rejection.body_text())
        .into_response()
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(crate::auth::AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(crate::auth::AuthError::Invalid)?;
        let claims = state.jwt.verify(token.trim())?;
        let account = claims.account()?;
        if let Err(retry_after) = state
            .limiter
            .check(&account.to_string(), std::time::Instant::now())
        {
            return Err(ApiError::RateLimited { retry_after });
        }
        Ok(Self(claims))
    }
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| bad_key())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_key());
    }
    Ok(Some(s.to_owned()))
}

fn bad_key() -> ApiError {
    ApiError::BadRequest {
        kind: "invalid-idempotency-key",
        detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        field: Some("Idempotency-Key".into()),
    }
}

/// A W3C `traceparent` if well-formed (`00-<32 hex>-<16 hex>-<2 hex>`); otherwise ignored.
pub fn traceparent(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2))
    .then(|| v.to_owned())
}

/// `X-Correlation-Id` if sane, else a fresh one.
pub fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}
