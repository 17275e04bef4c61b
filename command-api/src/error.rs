//! The one place where every failure becomes an HTTP status and a problem+json body.
//! Internal detail is logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chaos_domain::CharacterError;
use chaos_platform::http::Problem;

use crate::auth::{AccountStoreError, AuthError};
use crate::service::CommandError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest {
        kind: &'static str,
        detail: String,
        field: Option<String>,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Accounts(#[from] AccountStoreError),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            kind,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            kind: "invalid-field",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }
}

fn rule(e: &CharacterError) -> Problem {
    let status = match e {
        CharacterError::NotFound => StatusCode::NOT_FOUND,
        CharacterError::NotOwner => StatusCode::FORBIDDEN,
        CharacterError::AlreadyExists => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    // The title is fixed per problem type; the occurrence's specifics go in `detail`.
    let code = e.code();
    let title = code.replace('-', " ");
    let title = title[..1].to_uppercase() + &title[1..];
    let mut p = Problem::new(status, code, title).detail(e.to_string());
    if let Some(field) = e.field() {
        p = p.field(field);
    }
    p
}

fn unavailable(what: &str, detail: &str) -> Problem {
    tracing::error!(dependency = what, error = detail, "dependency unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency-unavailable",
        "Service unavailable",
    )
    .detail(format!("{what} is unavailable; retry later"))
    .retry_after(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match &self {
            Self::BadRequest {
                kind,
                detail,
                field,
            } => {
                let mut p =
                    Problem::new(StatusCode::BAD_REQUEST, kind, "Bad request").detail(detail);
                if let Some(f) = field {
                    p = p.field(f.clone());
                }
                p
            }
            Self::Auth(e) => Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                .detail(e.to_string()),
            Self::InvalidCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Unknown username or wrong password",
            ),
            Self::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::RateLimited { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            )
            .retry_after(*retry_after),
            Self::Command(CommandError::Rule(e)) => rule(e),
            Self::Command(CommandError::IdempotencyKeyReused) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The Idempotency-Key was already used with a different request",
            )
            .field("Idempotency-Key"),
            Self::Command(CommandError::NameTaken(name)) => Problem::new(
                StatusCode::CONFLICT,
                "name-taken",
                "Another character already has this name",
            )
            .detail(format!("the name {name} is taken (names ignore case)"))
            .field("name"),
            Self::Command(CommandError::Conflict) => Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "The character changed while the command ran; retry",
            ),
            Self::Command(CommandError::Store(StoreError::Conflict)) => Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "Conflict; retry",
            ),
            Self::Command(CommandError::Store(StoreError::Unavailable(d))) => {
                unavailable("event store", d)
            }
            Self::Command(CommandError::Store(StoreError::Corrupt(d))) => {
                tracing::error!(error = %d, "stored events cannot be read");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                )
            }
            Self::Accounts(AccountStoreError::UsernameTaken) => Problem::new(
                StatusCode::CONFLICT,
                "username-taken",
                "That username is taken",
            )
            .field("username"),
            Self::Accounts(AccountStoreError::Unavailable(d)) => unavailable("account store", d),
            Self::Internal(d) => {
                tracing::error!(error = %d, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                )
            }
        };
        problem.into_response()
    }
}
