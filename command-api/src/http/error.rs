//! The one place where every failure becomes an HTTP status and a problem+json body (RFC 9457).
//! Rule errors of every aggregate map through [`RuleError`]; internal detail is logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chaos_domain::{RuleError, RuleKind};
use chaos_eventstore::{CommandError, StoreError};
use chaos_platform::auth::AuthError;
use chaos_platform::http::Problem;

use crate::auth::AccountStoreError;

/// A request's failure, as the client sees it.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl ApiError {
    /// 400: the request's shape is wrong (`kind` is the problem type).
    pub fn bad_request(kind: &str, detail: impl Into<String>, field: Option<&str>) -> Self {
        let mut p = Problem::new(StatusCode::BAD_REQUEST, kind, "Bad request").detail(detail);
        if let Some(f) = field {
            p = p.field(f);
        }
        Self(p)
    }

    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-field", detail, Some(field))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self(Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(detail))
    }

    pub fn not_found(kind: &str, title: &str) -> Self {
        Self(Problem::new(StatusCode::NOT_FOUND, kind, title))
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self(
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            )
            .retry_after(retry_after),
        )
    }

    pub fn invalid_credentials() -> Self {
        Self(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid-credentials",
            "Unknown username or wrong password",
        ))
    }

    /// 503 with Retry-After: a dependency is down; the cause is logged here.
    pub fn unavailable(what: &str, error: &dyn std::error::Error) -> Self {
        tracing::error!(dependency = what, error = %error, "dependency unavailable");
        Self(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency-unavailable",
                "Service unavailable",
            )
            .detail(format!("{what} is unavailable; retry later"))
            .retry_after(1),
        )
    }

    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        ))
    }
}

/// A broken rule: the status from its kind, the type from its code, the title fixed per type and
/// the occurrence's specifics in `detail`.
pub fn rule_problem(e: &dyn RuleError) -> Problem {
    let status = match e.kind() {
        RuleKind::NotFound => StatusCode::NOT_FOUND,
        RuleKind::Forbidden => StatusCode::FORBIDDEN,
        RuleKind::Conflict => StatusCode::CONFLICT,
        RuleKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let code = e.code();
    let title = code.replace('-', " ");
    let title = title[..1].to_uppercase() + &title[1..];
    let mut p = Problem::new(status, code, title).detail(e.to_string());
    if let Some(field) = e.field() {
        p = p.field(field);
    }
    p
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self(Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "The aggregate changed while the command ran; retry",
            )),
            StoreError::Corrupt(_) => Self::internal(&e),
            StoreError::Unavailable(_) | StoreError::Timeout(_) => {
                Self::unavailable("event store", &e)
            }
        }
    }
}

impl<E: RuleError> From<CommandError<E>> for ApiError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rule(rule) => Self(rule_problem(&rule)),
            CommandError::IdempotencyKeyReused => Self(
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "The Idempotency-Key was already used with a different request",
                )
                .field("Idempotency-Key"),
            ),
            CommandError::Conflict => Self(Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "The aggregate changed while the command ran; retry",
            )),
            CommandError::Taken { scope, value } => Self(
                Problem::new(
                    StatusCode::CONFLICT,
                    "name-taken",
                    "Another owner already has this name",
                )
                .detail(format!("the {scope} {value} is taken (names ignore case)"))
                .field("name"),
            ),
            CommandError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self(
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                .detail(e.to_string()),
        )
    }
}

impl From<AccountStoreError> for ApiError {
    fn from(e: AccountStoreError) -> Self {
        match e {
            AccountStoreError::UsernameTaken => Self(
                Problem::new(
                    StatusCode::CONFLICT,
                    "username-taken",
                    "That username is taken",
                )
                .field("username"),
            ),
            AccountStoreError::Unavailable(_) => Self::unavailable("account store", &e),
            AccountStoreError::Corrupt(_) => Self::internal(&e),
        }
    }
}
