//! `/v1/accounts` and `/v1/sessions`: registration and login, throttled per client address and
//! per username.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chaos_domain::AccountId;
use chaos_eventstore::reservations::{ReservationRequest, ABANDONED_AFTER};
use chaos_platform::auth::Role;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;
use crate::auth::{hash_password, verify_password, NewAccount};
use crate::http::extract::ClientIp;
use crate::http::fields::{Password, Username};
use crate::http::{ApiError, ApiJson};

/// The reservation scope of usernames: persisted, do not change.
pub const USERNAME_SCOPE: &str = "username";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", post(register))
        .route("/v1/sessions", post(login))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(register, login),
    components(schemas(Credentials, AccountCreated, Session))
)]
pub struct Doc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "aria", "password": "correct horse battery"}))]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    #[schema(format = Uuid)]
    pub account_id: String,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
    #[schema(format = Uuid)]
    pub account_id: String,
}

fn throttle(state: &AppState, ip: &ClientIp, username: Option<&str>) -> Result<(), ApiError> {
    state
        .limits
        .auth_per_ip
        .check(&ip.0)
        .map_err(ApiError::rate_limited)?;
    if let Some(username) = username {
        state
            .limits
            .auth_per_username
            .check(&username.to_ascii_lowercase())
            .map_err(ApiError::rate_limited)?;
    }
    Ok(())
}

/// Register a player account. Usernames are unique, ignoring case.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = Credentials,
    responses((status = 201, body = AccountCreated),
        (status = 409, description = "The username is taken (`username-taken`)"),
        (status = 429, description = "Too many attempts from this address (`rate-limited`), with Retry-After")))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    body: ApiJson<Credentials>,
) -> Result<(StatusCode, Json<AccountCreated>), ApiError> {
    throttle(&state, &ip, None)?;
    let Credentials { username, password } = body.value;
    let account_id = AccountId::from_uuid(uuid::Uuid::now_v7());
    let id = account_id.to_string();
    // Usernames go through the same reservation as every other name; the accounts table's
    // unique index stays as the last line of defence.
    let reservation = ReservationRequest {
        scope: USERNAME_SCOPE,
        value: username.as_str(),
        aggregate_type: "account",
        aggregate_id: &id,
        abandoned_after: ABANDONED_AFTER,
    };
    let reserved = state
        .commands
        .repository()
        .reserve(&reservation)
        .await
        .map_err(|e| ApiError::unavailable("account store", &e))?;
    if !reserved {
        return Err(crate::auth::AccountStoreError::UsernameTaken.into());
    }
    let password_hash = hash_password(password.into_inner())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    state
        .accounts
        .create(NewAccount {
            account_id,
            username: username.as_str().to_owned(),
            password_hash,
        })
        .await?;
    if let Err(e) = state
        .commands
        .repository()
        .confirm_reservation(&reservation)
        .await
    {
        tracing::warn!(error = %e, "username reservation not confirmed");
    }
    tracing::info!(%account_id, "account registered");
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id: id,
            username: username.into_inner(),
        }),
    ))
}

/// Log in: exchange credentials for a bearer token.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts", request_body = Credentials,
    responses((status = 200, body = Session),
        (status = 401, description = "Unknown username or wrong password (`invalid-credentials`)"),
        (status = 429, description = "Too many attempts from this address or for this username (`rate-limited`), with Retry-After")))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    body: ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    let Credentials { username, password } = body.value;
    throttle(&state, &ip, Some(username.as_str()))?;
    let Some(account) = state.accounts.find(username.as_str()).await? else {
        // Same work and answer as a wrong password, so usernames cannot be probed by timing.
        let _ = verify_password(password.into_inner(), DUMMY_HASH.to_owned()).await;
        return Err(ApiError::invalid_credentials());
    };
    if !verify_password(password.into_inner(), account.password_hash).await {
        return Err(ApiError::invalid_credentials());
    }
    let mut roles = vec![Role::Player];
    if account.game_master {
        roles.push(Role::GameMaster);
    }
    let now = chrono::Utc::now().timestamp();
    let token = state
        .jwt
        .issue(account.account_id, roles, now)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Session {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_secs(),
        account_id: account.account_id.to_string(),
    }))
}

/// An Argon2id hash of a random password, verified against when the username is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4h9s3uJ6WqkH1nUqKx0y6b1pXl8v1s2l3Zb3o0vJk9M";
