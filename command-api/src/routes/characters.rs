//! `/v1/characters`: create, cast skills, travel, experience grants, history.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chaos_domain::{Character, CharacterCommand, CharacterName, TargetRef};
use chaos_platform::auth::{Caller, Role};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;
use crate::http::command::{history as history_page, new_aggregate_id, HistoryPage, HistoryQuery};
use crate::http::extract::ApiQuery;
use crate::http::fields::{
    parse_uuid, ContentId, ExperienceAmount, IdPath, IdempotencyHeader, Label, NameField,
};
use crate::http::{run, Answer, ApiError, ApiJson, CommandAnswer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/characters", post(create))
        .route("/v1/characters/{id}/cast-skill", post(cast_skill))
        .route("/v1/characters/{id}/travel", post(travel))
        .route(
            "/v1/characters/{id}/grant-experience",
            post(grant_experience),
        )
        .route("/v1/characters/{id}/events", get(history))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(create, cast_skill, travel, grant_experience, history),
    components(schemas(
        CreateCharacter,
        CastSkill,
        Travel,
        GrantExperience,
        CommandAnswer,
        HistoryPage
    ))
)]
pub struct Doc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Aria", "class": "mage"}))]
pub struct CreateCharacter {
    pub name: NameField,
    /// A class from the content catalogue (`warrior`, `mage`, `ranger`, `cleric`).
    pub class: ContentId,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"skill": "fireball", "target": "wolf-17"}))]
pub struct CastSkill {
    /// A skill the character knows (`strike`, `fireball`, ...).
    pub skill: ContentId,
    /// What the skill is aimed at, if anything.
    pub target: Option<Label>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"zone": "starter_meadow"}))]
pub struct Travel {
    /// A zone from the content catalogue.
    pub zone: ContentId,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 50, "source": "quest:intro"}))]
pub struct GrantExperience {
    pub amount: ExperienceAmount,
    /// Why: a quest id, an event, an operator's reason.
    pub source: Label,
}

/// TRANSITIONAL (player core, 2026-12), until this route takes a typed target: the body's
/// free-text `target` is read as an NPC id from the catalogue, with an instance suffix
/// (`wolf-17`, as the README writes it) ignored. Character targets are not reachable from here
/// yet: they need the target's zone and life read from its profile (`TargetRef::Character`).
fn transitional_npc_target(target: Label) -> TargetRef {
    let text = target.into_inner();
    let npc = match text.rsplit_once('-') {
        Some((kind, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => kind,
        _ => text.as_str(),
    };
    TargetRef::Npc {
        npc: npc.to_owned(),
    }
}

fn character_id(raw: &str) -> Result<String, ApiError> {
    parse_uuid(raw)
        .map(|id| id.to_string())
        .ok_or_else(|| ApiError::invalid_field("id", "id must be a character id (a UUID)"))
}

fn not_found() -> ApiError {
    ApiError::not_found("character-not-found", "No such character")
}

/// Create a character owned by the caller.
///
/// Names are unique across the game, ignoring case: a taken name is 409 `name-taken`.
/// With an `Idempotency-Key` the character's id is derived from the account and the key, so a
/// retried request lands on the same character and appends nothing new.
#[utoipa::path(post, path = "/v1/characters", tag = "characters", request_body = CreateCharacter,
    params(IdempotencyHeader),
    responses((status = 201, body = CommandAnswer, headers(("Location" = String))),
        (status = 409, description = "The name is taken (`name-taken`) or the character exists"),
        (status = 422, description = "A rule refused it: `unknown-class`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: ApiJson<CreateCharacter>,
) -> Result<Response, ApiError> {
    let id = new_aggregate_id("character", caller.account, &headers)?;
    let name = CharacterName::parse(body.value.name.as_str())
        .map_err(|e| ApiError::invalid_field("name", e.to_string()))?;
    let command = CharacterCommand::Create {
        owner: caller.account,
        name,
        class: body.value.class.into_inner(),
    };
    let collection = "characters";
    run::<Character>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Created { collection },
    )
    .await
}

/// Cast a skill: it must be known, affordable, off cooldown and allowed in the zone.
#[utoipa::path(post, path = "/v1/characters/{id}/cast-skill", tag = "characters",
    request_body = CastSkill,
    params(IdPath,
        IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `unknown-skill`, `skill-not-known`, `insufficient-mana`, `skill-on-cooldown`, `zone-forbids-skill`, `idempotency-key-reused`")),
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
    let command = CharacterCommand::CastSkill {
        actor: caller.account,
        skill: body.value.skill.into_inner(),
        target: body.value.target.map(transitional_npc_target),
    };
    run::<Character>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Ok,
    )
    .await
}

/// Travel to another zone (subject to its minimum level).
#[utoipa::path(post, path = "/v1/characters/{id}/travel", tag = "characters",
    request_body = Travel,
    params(IdPath,
        IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `unknown-zone`, `zone-level-too-low`, `already-in-zone`, `idempotency-key-reused`")),
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
    let command = CharacterCommand::TravelTo {
        actor: caller.account,
        zone: body.value.zone.into_inner(),
    };
    run::<Character>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Ok,
    )
    .await
}

/// Grant experience (quest rewards and the like). Game masters only.
#[utoipa::path(post, path = "/v1/characters/{id}/grant-experience", tag = "characters",
    request_body = GrantExperience,
    params(IdPath,
        IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "The caller is not a game master (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `invalid-experience-amount`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn grant_experience(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<GrantExperience>,
) -> Result<Response, ApiError> {
    if !caller.has(Role::GameMaster) {
        return Err(ApiError::forbidden(
            "granting experience is for game masters",
        ));
    }
    let id = character_id(&id)?;
    let command = CharacterCommand::GrantExperience {
        amount: body.value.amount.get(),
        source: body.value.source.into_inner(),
    };
    run::<Character>(
        &state,
        &caller,
        &headers,
        body.body_hash,
        &id,
        command,
        Answer::Ok,
    )
    .await
}

/// The character's authoritative event history, from the event store, one page at a time
/// (owner or game master). `up_to` gives the history as of a version.
#[utoipa::path(get, path = "/v1/characters/{id}/events", tag = "characters",
    params(IdPath,
        HistoryQuery),
    responses((status = 200, body = HistoryPage),
        (status = 403, description = "Another player's character (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let id = character_id(&id)?;
    history_page::<Character>(&state, &caller, &id, &query, not_found).await
}
