use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chaos_domain::{CharacterCommand, CharacterId, CharacterName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::{correlation_id, idempotency_key, traceparent, ApiJson, Caller};
use crate::service::{CommandContext, CommandOutcome};
use crate::state::AppState;

/// Longest free-text identifier accepted (skill, class, zone, target, source).
const MAX_TOKEN: usize = 64;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCharacter {
    /// 3 to 20 characters, starting with a letter.
    pub name: String,
    /// A class id from the content catalogue (`warrior`, `mage`, `ranger`, `cleric`).
    pub class: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CastSkill {
    /// A skill id the character knows (`strike`, `fireball`, ...).
    pub skill: String,
    /// What the skill is aimed at, if anything.
    pub target: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Travel {
    pub zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantExperience {
    pub amount: u64,
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub occurred_at: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only events up to and including this sequence (the state "at version N").
    pub up_to: Option<i64>,
}

fn token(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_TOKEN || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1 to {MAX_TOKEN} characters"),
        ));
    }
    Ok(())
}

fn character_id(raw: &str) -> Result<CharacterId, ApiError> {
    CharacterId::parse(raw).map_err(|_| ApiError::invalid_field("id", "not a character id"))
}

fn context(
    caller: &Caller,
    headers: &HeaderMap,
    body_hash: String,
) -> Result<CommandContext, ApiError> {
    Ok(CommandContext {
        account: Some(caller.0.account()?),
        idempotency_key: idempotency_key(headers)?,
        request_hash: Some(body_hash),
        correlation_id: Some(correlation_id(headers)),
        causation_id: None,
        traceparent: traceparent(headers),
    })
}

fn answer(status: StatusCode, outcome: CommandOutcome, location: Option<String>) -> Response {
    let replayed = outcome.replayed;
    let mut response = (status, Json(outcome)).into_response();
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

/// Create a character owned by the caller.
///
/// Names are unique across the game, ignoring case: a taken name is 409 `name-taken`.
/// With an `Idempotency-Key` the character's id is derived from the account and the key, so a
/// retried request lands on the same character and appends nothing new.
#[utoipa::path(post, path = "/v1/characters", tag = "characters", request_body = CreateCharacter,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 201, body = CommandOutcome, headers(("Location" = String))),
        (status = 400), (status = 401), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<CreateCharacter>,
) -> Result<Response, ApiError> {
    let ctx = context(&caller, &headers, body.body_hash)?;
    let name = CharacterName::parse(&body.value.name)
        .map_err(|e| ApiError::invalid_field("name", e.to_string()))?;
    token("class", &body.value.class)?;
    let owner = caller.0.account()?;
    let id = match &ctx.idempotency_key {
        Some(key) => {
            let digest = Sha256::digest(format!("character:{owner}:{key}"));
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            uuid::Builder::from_custom_bytes(bytes).into_uuid()
        }
        None => uuid::Uuid::now_v7(),
    };
    let id = id.to_string();
    let command = CharacterCommand::Create {
        owner,
        name,
        class: body.value.class,
    };
    let outcome = state.commands.execute(&id, command, &ctx).await?;
    let location = format!("/v1/characters/{}", outcome.aggregate_id);
    Ok(answer(StatusCode::CREATED, outcome, Some(location)))
}

/// Cast a skill: it must be known, affordable, off cooldown and allowed in the zone.
#[utoipa::path(post, path = "/v1/characters/{id}/cast-skill", tag = "characters",
    request_body = CastSkill, params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key")),
    responses((status = 200, body = CommandOutcome), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 422), (status = 429)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn cast_skill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<CastSkill>,
) -> Result<Response, ApiError> {
    let id = character_id(&id)?;
    let ctx = context(&caller, &headers, body.body_hash)?;
    token("skill", &body.value.skill)?;
    if let Some(t) = &body.value.target {
        token("target", t)?;
    }
    let command = CharacterCommand::CastSkill {
        actor: caller.0.account()?,
        skill: body.value.skill,
        target: body.value.target,
    };
    let outcome = state
        .commands
        .execute(&id.to_string(), command, &ctx)
        .await?;
    Ok(answer(StatusCode::OK, outcome, None))
}

/// Travel to another zone (subject to its minimum level).
#[utoipa::path(post, path = "/v1/characters/{id}/travel", tag = "characters",
    request_body = Travel, params(("id" = String, Path)),
    responses((status = 200, body = CommandOutcome), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn travel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Travel>,
) -> Result<Response, ApiError> {
    let id = character_id(&id)?;
    let ctx = context(&caller, &headers, body.body_hash)?;
    token("zone", &body.value.zone)?;
    let command = CharacterCommand::TravelTo {
        actor: caller.0.account()?,
        zone: body.value.zone,
    };
    let outcome = state
        .commands
        .execute(&id.to_string(), command, &ctx)
        .await?;
    Ok(answer(StatusCode::OK, outcome, None))
}

/// Grant experience (quest rewards and the like). Game masters only.
#[utoipa::path(post, path = "/v1/characters/{id}/grant-experience", tag = "characters",
    request_body = GrantExperience, params(("id" = String, Path)),
    responses((status = 200, body = CommandOutcome), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn grant_experience(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<GrantExperience>,
) -> Result<Response, ApiError> {
    if !caller.0.has(Role::GameMaster) {
        return Err(ApiError::Forbidden);
    }
    let id = character_id(&id)?;
    let ctx = context(&caller, &headers, body.body_hash)?;
    token("source", &body.value.source)?;
    let command = CharacterCommand::GrantExperience {
        amount: body.value.amount,
        source: body.value.source,
    };
    let outcome = state
        .commands
        .execute(&id.to_string(), command, &ctx)
        .await?;
    Ok(answer(StatusCode::OK, outcome, None))
}

/// The character's authoritative event history, read from the event store (owner or game
/// master). `up_to` gives the history as of a version.
#[utoipa::path(get, path = "/v1/characters/{id}/events", tag = "characters",
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = [HistoryEntry]), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let id = character_id(&id)?;
    let store = state.commands.store();
    let events = store
        .history(&id.to_string(), query.up_to)
        .await
        .map_err(|e| ApiError::Command(crate::service::CommandError::Store(e)))?;
    let Some(first) = events.first() else {
        return Err(ApiError::NotFound);
    };
    let owner = first
        .payload
        .get("CharacterCreated")
        .and_then(|c| c.get("owner"))
        .and_then(serde_json::Value::as_str);
    let account = caller.0.account()?.to_string();
    if owner != Some(account.as_str()) && !caller.0.has(Role::GameMaster) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(
        events
            .into_iter()
            .map(|e| HistoryEntry {
                occurred_at: e.occurred_at().map(|t| t.to_rfc3339()),
                sequence: e.sequence,
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
            })
            .collect(),
    ))
}
