//! Request extractors that turn every malformed input into a problem+json answer.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chaos_platform::http::Problem;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::fields::IdempotencyKey;

/// A JSON body parsed into `T`, with a hash of the route and raw body for idempotency checks.
///
/// Rejections are problem+json: 415 without `Content-Type: application/json`, 413 over the body
/// limit, 400 `malformed-json` for broken JSON, and 400 `invalid-field` naming the field for a
/// missing, unknown, mistyped or invalid one (the field types check their own rules: see
/// [`super::fields`]).
#[derive(Debug)]
pub struct ApiJson<T> {
    pub value: T,
    pub body_hash: String,
}

fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected Content-Type: application/json",
            )
            .into_response());
        }
        let path = req.uri().path().to_owned();
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) => {
                let status = rejection.status();
                let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "body-too-large"
                } else {
                    "unreadable-body"
                };
                return Err(
                    Problem::new(status, kind, "The request body could not be read")
                        .detail(rejection.body_text())
                        .into_response(),
                );
            }
        };
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = match serde_path_to_error::deserialize(&mut de) {
            Ok(v) => v,
            Err(e) => return Err(body_problem(&e).into_response()),
        };
        if let Err(e) = de.end() {
            return Err(ApiError::bad_request(
                "malformed-json",
                format!(
                    "the request body is not valid JSON: {}",
                    strip_position(&e.to_string())
                ),
                None,
            )
            .into_response());
        }
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

fn body_problem(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let inner = e.inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed-json",
            format!("the request body is not valid JSON: {inner}"),
            None,
        ),
        Category::Data => {
            let path = e.path().to_string();
            // serde names unknown and missing fields in its message, not in the path.
            let message = inner.to_string();
            let field = if path == "." {
                quoted_field(&message)
            } else {
                Some(path)
            };
            let detail = strip_position(&message);
            match field {
                Some(field) => ApiError::invalid_field(&field, format!("{field}: {detail}")),
                None => ApiError::bad_request("invalid-body", detail, None),
            }
        }
    }
}

/// "unknown field `x`, expected ..." / "missing field `y`" -> the field.
fn quoted_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// serde_json appends " at line 1 column 23": useless to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A query string's parameters, each named once, for a [`QueryParams`] type: an unknown one,
/// one given twice, or a value its type refuses is 400 `invalid-field` naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

/// Parameters read from a query string one by one (each type checks its own rule; see
/// [`chaos_platform::openapi::Bounded`]).
pub trait QueryParams: Default {
    /// Takes parameter `name`; `Err` says why its value is refused. `Ok(false)`: not a parameter
    /// of this query.
    fn take(&mut self, name: &str, value: &str) -> Result<bool, String>;
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: QueryParams,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = chaos_platform::openapi::query_pairs(&parts.uri).map_err(ApiError)?;
        let mut params = T::default();
        for (name, value) in pairs {
            match params.take(&name, &value) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ApiError::invalid_field(
                        &name,
                        format!("{name} is not a parameter of this operation"),
                    ))
                }
                Err(detail) => {
                    return Err(ApiError::invalid_field(&name, format!("{name} {detail}")))
                }
            }
        }
        Ok(Self(params))
    }
}

/// `Idempotency-Key`: see [`IdempotencyKey`] (its check and its documented schema).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| IdempotencyKey::DESCRIPTION.to_owned())
        .and_then(IdempotencyKey::parse)
        .map_err(|detail| {
            ApiError::bad_request(
                "invalid-idempotency-key",
                format!("Idempotency-Key {detail}"),
                Some("Idempotency-Key"),
            )
        })?;
    Ok(Some(key.into_inner()))
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

/// The client's address, for throttling: the first `X-Forwarded-For` entry when the service is
/// configured to trust its proxy (behind the ingress), else the TCP peer.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// Set by the router: whether `X-Forwarded-For` comes from a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct TrustForwardedFor(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let trust = parts
            .extensions
            .get::<TrustForwardedFor>()
            .is_some_and(|t| t.0);
        if trust {
            if let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            {
                return Ok(Self(ip.to_owned()));
            }
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(peer))
    }
}
