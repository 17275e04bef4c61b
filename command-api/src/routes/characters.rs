//! `/v1/characters`: create, cast skills (at NPCs or other characters), travel, respawn, items
//! (use, equip, unequip, destroy, craft), game-master grants, history.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chaos_domain::{Character, CharacterCommand, CharacterId, CharacterName, Slot, TargetRef};
use chaos_platform::auth::{Caller, Role};
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;
use crate::http::command::{history as history_page, new_aggregate_id, HistoryPage, HistoryQuery};
use crate::http::extract::ApiQuery;
use crate::http::fields::{
    parse_uuid, ContentId, ExperienceAmount, IdPath, IdempotencyHeader, ItemQuantity, Label,
    NameField,
};
use crate::http::{run, Answer, ApiError, ApiJson, CommandAnswer};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/characters", post(create))
        .route("/v1/characters/{id}/cast-skill", post(cast_skill))
        .route("/v1/characters/{id}/travel", post(travel))
        .route("/v1/characters/{id}/respawn", post(respawn))
        .route("/v1/characters/{id}/use-item", post(use_item))
        .route("/v1/characters/{id}/equip", post(equip))
        .route("/v1/characters/{id}/unequip", post(unequip))
        .route("/v1/characters/{id}/destroy-item", post(destroy_item))
        .route("/v1/characters/{id}/craft", post(craft))
        .route(
            "/v1/characters/{id}/grant-experience",
            post(grant_experience),
        )
        .route("/v1/characters/{id}/grant-item", post(grant_item))
        .route("/v1/characters/{id}/events", get(history))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        create,
        cast_skill,
        travel,
        respawn,
        use_item,
        equip,
        unequip,
        destroy_item,
        craft,
        grant_experience,
        grant_item,
        history
    ),
    components(schemas(
        CreateCharacter,
        CastSkill,
        TargetSchema,
        NpcTarget,
        CharacterTarget,
        Travel,
        Respawn,
        UseItem,
        Equip,
        SlotName,
        Unequip,
        DestroyItem,
        Craft,
        GrantExperience,
        GrantItem,
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
#[schema(example = json!({"skill": "fireball", "target": {"npc": "wolf"}}))]
pub struct CastSkill {
    /// A skill the character knows (`strike`, `fireball`, ...).
    pub skill: ContentId,
    /// What the skill is aimed at, if anything.
    #[schema(value_type = Option<TargetSchema>)]
    pub target: Option<Target>,
}

/// A cast's target: exactly one of `npc` or `character`.
#[derive(Debug)]
pub enum Target {
    Npc(ContentId),
    Character(uuid::Uuid),
}

/// The document's shape of [`Target`] (its `Deserialize` below): utoipa does not close an
/// externally tagged enum's variants, so the two closed objects are spelled out.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(as = Target)]
#[allow(dead_code)]
enum TargetSchema {
    Npc(NpcTarget),
    Character(CharacterTarget),
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NpcTarget {
    /// An NPC of the caster's zone, by its content id (`wolf`): fought by this character alone.
    npc: ContentId,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CharacterTarget {
    /// Another character, by id: alive, in the caster's zone, and the zone allows PvP.
    character: uuid::Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct Respawn {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item": "health_potion"}))]
pub struct UseItem {
    /// A consumable in the bag (an item id from the content).
    pub item: ContentId,
}

impl<'de> Deserialize<'de> for Target {
    /// An object with exactly one of the two fields (anything else, an array included, is a
    /// field error, not malformed JSON).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            npc: Option<ContentId>,
            character: Option<uuid::Uuid>,
        }
        match Fields::deserialize(d)? {
            Fields {
                npc: Some(npc),
                character: None,
            } => Ok(Self::Npc(npc)),
            Fields {
                npc: None,
                character: Some(id),
            } => Ok(Self::Character(id)),
            _ => Err(serde::de::Error::custom(
                "a target is exactly one of `npc` or `character`",
            )),
        }
    }
}

/// An equipment slot.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotName {
    Head,
    Chest,
    Legs,
    Feet,
    Hands,
    MainHand,
    OffHand,
    Neck,
    Ring,
}

impl SlotName {
    fn slot(self) -> Slot {
        match self {
            Self::Head => Slot::Head,
            Self::Chest => Slot::Chest,
            Self::Legs => Slot::Legs,
            Self::Feet => Slot::Feet,
            Self::Hands => Slot::Hands,
            Self::MainHand => Slot::MainHand,
            Self::OffHand => Slot::OffHand,
            Self::Neck => Slot::Neck,
            Self::Ring => Slot::Ring,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item": "wooden_sword", "slot": "main_hand"}))]
pub struct Equip {
    /// An item in the bag that can be worn in `slot`.
    pub item: ContentId,
    pub slot: SlotName,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slot": "main_hand"}))]
pub struct Unequip {
    pub slot: SlotName,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item": "wolf_pelt", "quantity": 2}))]
pub struct DestroyItem {
    pub item: ContentId,
    pub quantity: ItemQuantity,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipe": "leather_cap"}))]
pub struct Craft {
    /// A recipe from the content: its ingredients must be in the bag.
    pub recipe: ContentId,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item": "health_potion", "quantity": 3, "source": "event:winterfest"}))]
pub struct GrantItem {
    pub item: ContentId,
    pub quantity: ItemQuantity,
    /// Why: a quest id, an event, an operator's reason.
    pub source: Label,
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

fn character_id(raw: &str) -> Result<String, ApiError> {
    parse_uuid(raw)
        .map(|id| id.to_string())
        .ok_or_else(|| ApiError::invalid_field("id", "id must be a character id (a UUID)"))
}

/// A character target as the store has it now: where it is and whether it lives. The caster's
/// rules check the zone and life against this snapshot; the victim's own decision on the damage
/// (through the combat process manager) is the authoritative one.
async fn character_target(
    state: &AppState,
    caster: &str,
    target: uuid::Uuid,
) -> Result<TargetRef, ApiError> {
    let id = target.to_string();
    if id == caster {
        return Err(ApiError(
            chaos_platform::http::Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-target",
                "Invalid target",
            )
            .detail("a character cannot target itself")
            .field("target"),
        ));
    }
    // Fresh from the store: the target's death is written by the combat process manager,
    // possibly in another process than this one.
    let (aggregate, _) = state.commands.load_current::<Character>(&id).await?;
    let Some(found) = aggregate.state() else {
        return Err(ApiError::not_found(
            "target-not-found",
            "No such target character",
        ));
    };
    Ok(TargetRef::Character {
        id: CharacterId::from_uuid(target),
        zone: found.zone.clone(),
        alive: found.alive(),
    })
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
        (status = 404, description = "No such character (`character-not-found`), or no such target character (`target-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `unknown-skill`, `skill-not-known`, `insufficient-mana`, `skill-on-cooldown`, `zone-forbids-skill`, `character-dead`, `unknown-npc`, `target-not-in-zone`, `target-dead`, `zone-forbids-pvp`, `invalid-target`, `bag-full`, `content-unavailable`, `idempotency-key-reused`")),
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
    let target = match body.value.target {
        None => None,
        Some(Target::Npc(npc)) => Some(TargetRef::Npc {
            npc: npc.into_inner(),
        }),
        Some(Target::Character(target)) => Some(character_target(&state, &id, target).await?),
    };
    let command = CharacterCommand::CastSkill {
        actor: caller.account,
        skill: body.value.skill.into_inner(),
        target,
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
        (status = 422, description = "A rule refused it: `unknown-zone`, `zone-level-too-low`, `zone-level-too-high`, `already-in-zone`, `character-dead`, `content-unavailable`, `idempotency-key-reused`")),
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

/// Runs a player command on the caller's character `id` (the common shape of the item and life
/// routes below).
async fn player_command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body_hash: String,
    command: CharacterCommand,
) -> Result<Response, ApiError> {
    let id = character_id(id)?;
    run::<Character>(state, caller, headers, body_hash, &id, command, Answer::Ok).await
}

/// Bring a dead character back at its zone's respawn point, with full hit points and mana.
#[utoipa::path(post, path = "/v1/characters/{id}/respawn", tag = "characters",
    request_body = Respawn,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-alive`, `content-unavailable`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn respawn(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Respawn>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::Respawn {
        actor: caller.account,
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Use one consumable from the bag (a potion restores hit points or mana).
#[utoipa::path(post, path = "/v1/characters/{id}/use-item", tag = "characters",
    request_body = UseItem,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-dead`, `unknown-item`, `insufficient-items`, `item-not-usable`, `content-unavailable`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn use_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<UseItem>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::UseItem {
        actor: caller.account,
        item: body.value.item.into_inner(),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Wear an item from the bag in a slot; whatever was there goes back to the bag. The maxima of
/// hit points and mana follow the new equipment.
#[utoipa::path(post, path = "/v1/characters/{id}/equip", tag = "characters",
    request_body = Equip,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-dead`, `unknown-item`, `insufficient-items`, `item-not-equippable`, `wrong-slot`, `item-level-too-high`, `item-class-restricted`, `bag-full`, `content-unavailable`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn equip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Equip>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::EquipItem {
        actor: caller.account,
        item: body.value.item.into_inner(),
        slot: body.value.slot.slot(),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Take off what a slot holds, back into the bag.
#[utoipa::path(post, path = "/v1/characters/{id}/unequip", tag = "characters",
    request_body = Unequip,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-dead`, `slot-empty`, `bag-full`, `content-unavailable`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn unequip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Unequip>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::UnequipItem {
        actor: caller.account,
        slot: body.value.slot.slot(),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Throw away a quantity of an item from the bag.
#[utoipa::path(post, path = "/v1/characters/{id}/destroy-item", tag = "characters",
    request_body = DestroyItem,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-dead`, `insufficient-items`, `invalid-quantity`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn destroy_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<DestroyItem>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::DestroyItem {
        actor: caller.account,
        item: body.value.item.into_inner(),
        quantity: u32::try_from(body.value.quantity.get()).unwrap_or(u32::MAX),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Craft a recipe: its ingredients leave the bag and its product enters it, all or nothing.
#[utoipa::path(post, path = "/v1/characters/{id}/craft", tag = "characters",
    request_body = Craft,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "Another player's character (`not-character-owner`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `character-dead`, `unknown-recipe`, `recipe-level-too-high`, `insufficient-items`, `bag-full`, `content-unavailable`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn craft(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Craft>,
) -> Result<Response, ApiError> {
    let command = CharacterCommand::Craft {
        actor: caller.account,
        recipe: body.value.recipe.into_inner(),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
}

/// Grant items (event rewards, support). Game masters only.
#[utoipa::path(post, path = "/v1/characters/{id}/grant-item", tag = "characters",
    request_body = GrantItem,
    params(IdPath, IdempotencyHeader),
    responses((status = 200, body = CommandAnswer),
        (status = 403, description = "The caller is not a game master (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 409, description = "Concurrent modification; retry"),
        (status = 422, description = "A rule refused it: `unknown-item`, `invalid-quantity`, `bag-full`, `invalid-label`, `idempotency-key-reused`")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn grant_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<GrantItem>,
) -> Result<Response, ApiError> {
    if !caller.has(Role::GameMaster) {
        return Err(ApiError::forbidden("granting items is for game masters"));
    }
    let command = CharacterCommand::GrantItem {
        item: body.value.item.into_inner(),
        quantity: u32::try_from(body.value.quantity.get()).unwrap_or(u32::MAX),
        source: body.value.source.into_inner(),
    };
    player_command(&state, &caller, &id, &headers, body.body_hash, command).await
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
