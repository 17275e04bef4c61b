use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chaos_domain::AccountId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{hash_password, verify_password, NewAccount, Role};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3 to 32 characters: letters, digits, `_`, `-`, `.`.
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    pub account_id: String,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub account_id: String,
}

fn validate(c: &Credentials) -> Result<(), ApiError> {
    let name_ok = (3..=32).contains(&c.username.len())
        && c.username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !name_ok {
        return Err(ApiError::invalid_field(
            "username",
            "username must be 3 to 32 characters of letters, digits, '_', '-' or '.'",
        ));
    }
    if !(8..=128).contains(&c.password.chars().count()) {
        return Err(ApiError::invalid_field(
            "password",
            "password must be 8 to 128 characters",
        ));
    }
    Ok(())
}

/// Register a player account.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = Credentials,
    responses((status = 201, body = AccountCreated), (status = 400), (status = 409)))]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    body: ApiJson<Credentials>,
) -> Result<(StatusCode, Json<AccountCreated>), ApiError> {
    let creds = body.value;
    validate(&creds)?;
    let account_id = AccountId::from_uuid(uuid::Uuid::now_v7());
    let password_hash = hash_password(creds.password)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .accounts
        .create(NewAccount {
            account_id,
            username: creds.username.clone(),
            password_hash,
        })
        .await?;
    tracing::info!(%account_id, "account registered");
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id: account_id.to_string(),
            username: creds.username,
        }),
    ))
}

/// Log in: exchange credentials for a bearer token.
#[utoipa::path(post, path = "/v1/sessions", tag = "accounts", request_body = Credentials,
    responses((status = 200, body = Session), (status = 400), (status = 401)))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    body: ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    let creds = body.value;
    let Some(account) = state.accounts.find(&creds.username).await? else {
        // Same work and answer as a wrong password, so usernames cannot be probed by timing.
        let _ = verify_password(creds.password, DUMMY_HASH.to_owned()).await;
        return Err(ApiError::InvalidCredentials);
    };
    if !verify_password(creds.password, account.password_hash).await {
        return Err(ApiError::InvalidCredentials);
    }
    let mut roles = vec![Role::Player];
    if account.game_master {
        roles.push(Role::GameMaster);
    }
    let now = chrono::Utc::now().timestamp();
    let token = state
        .jwt
        .issue(account.account_id, roles, now)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
