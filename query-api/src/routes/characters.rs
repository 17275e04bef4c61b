//! A character's hot state, from its sheet (Redis; the embedded store): the public profile, the
//! private sheet with its derived stats and the hit points and mana regenerated to now, and the
//! inventory. Derived stats come from the content the query API runs with, so a content change
//! shows without a rebuild.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use chaos_platform::auth::{Caller, MaybeCaller};
use chaos_platform::openapi::IdPath;
use chaos_readmodel::views::sheet::{self, CharacterSheet, Kills, PublicProfile, SheetDoc};
use chaos_readmodel::Document;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::common::{
    allowed, body, etag, forbidden, no_character, parse_id, read, tagged, unavailable, Answer,
    ReadHeaders,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/characters/{id}", get(character_profile))
        .route("/v1/characters/{id}/sheet", get(character_sheet))
        .route("/v1/characters/{id}/inventory", get(inventory))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(character_profile, character_sheet, inventory),
    components(schemas(
        ProfileView,
        KillCounts,
        SheetView,
        DerivedStats,
        InventoryView,
        ItemLine
    ))
)]
pub struct Doc;

/// The sheet's sources: the character and its wallet (same id).
pub(crate) const SHEET_SOURCES: &[&str] = &[
    chaos_domain::character::AGGREGATE_TYPE,
    chaos_domain::wallet::AGGREGATE_TYPE,
];

/// Character `id`'s sheet document as [`read`] serves it (the Consistency-Token honoured, 404
/// for an unknown id), with its character part and its purse.
pub(crate) async fn read_sheet(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Document, CharacterSheet, BTreeMap<String, u64>), axum::response::Response> {
    let doc = read(
        state,
        &state.hot,
        headers,
        sheet::NAME,
        SHEET_SOURCES,
        id,
        no_character,
    )
    .await?;
    let (sheet, purse) = character(&doc, id)?;
    Ok((doc, sheet, purse))
}

/// The character part of a sheet document: absent (404) until the character's creation is
/// applied, even if its wallet's events came first.
pub(crate) fn character(
    doc: &Document,
    id: &str,
) -> Result<(CharacterSheet, BTreeMap<String, u64>), axum::response::Response> {
    let stored: SheetDoc = body(doc, id)?;
    match stored.character {
        Some(c) => Ok((c, stored.purse)),
        None => Err(no_character()),
    }
}

/// Kills and deaths.
#[derive(Debug, Serialize, ToSchema)]
pub struct KillCounts {
    /// NPCs killed.
    pub npcs: u64,
    /// Other characters killed.
    pub characters: u64,
}

impl From<Kills> for KillCounts {
    fn from(k: Kills) -> Self {
        Self {
            npcs: k.npcs,
            characters: k.characters,
        }
    }
}

/// A character's public profile (anyone may read it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    pub zone: String,
    /// Dead characters are not: they wait to respawn.
    pub alive: bool,
    /// Slot (`main_hand`, `head`, ...) -> the item worn there.
    pub equipment: BTreeMap<String, String>,
    pub kills: KillCounts,
    pub deaths: u64,
    /// The sheet's revision (its ETag).
    pub revision: u64,
}

impl ProfileView {
    fn new(p: PublicProfile, revision: u64) -> Self {
        Self {
            id: p.id,
            name: p.name,
            class: p.class,
            level: p.level,
            zone: p.zone,
            alive: p.alive,
            equipment: p.equipment,
            kills: p.kills.into(),
            deaths: p.deaths,
            revision,
        }
    }
}

/// A character's public profile: name, class, level, zone, whether it is alive, its equipment
/// and its kills. No token needed; a token that does not verify is still refused.
#[utoipa::path(get, path = "/v1/characters/{id}", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = ProfileView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such character (`character-not-found`)")))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn character_profile(
    State(state): State<AppState>,
    _caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, sheet, _) = read_sheet(&state, &headers, &id).await?;
    let view = ProfileView::new(sheet.public(), doc.revision);
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}

/// The stats the rules use, derived from the class, the level and the equipment worn.
#[derive(Debug, Serialize, ToSchema)]
pub struct DerivedStats {
    pub max_hp: u32,
    pub max_mana: u32,
    pub attack: u32,
    pub spell_power: u32,
    pub defense: u32,
    pub hp_regen_per_sec: u32,
    pub mana_regen_per_sec: u32,
}

/// A character's full sheet with its read-model bookkeeping (owner or game master).
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetView {
    /// The sheet as stored: id, owner, name, class, level, xp, hp and max_hp (as of
    /// `hp_as_of`), mana and max_mana (as of `mana_as_of`), zone, skills, cooldowns,
    /// dead_since, bag, equipment, kills, deaths, purse.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub sheet: serde_json::Value,
    /// Hit points now: regenerated since `hp_as_of` (0 while dead).
    pub hp_now: u32,
    /// Mana now: regenerated since `mana_as_of`.
    pub mana_now: u32,
    /// Absent if the content no longer has the character's class.
    pub stats: Option<DerivedStats>,
    /// The sheet's revision (its ETag).
    pub revision: u64,
    /// How many events were applied to it.
    pub events_applied: u64,
    /// The last applied sequence per source stream (`character/<id>`, `wallet/<id>`).
    pub positions: BTreeMap<String, u64>,
}

/// A character's private sheet: everything its owner sees (account, experience, hit points and
/// mana now, derived stats, skills, cooldowns, bag, equipment, purse).
#[utoipa::path(get, path = "/v1/characters/{id}/sheet", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = SheetView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
        (status = 403, description = "Another player's character (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn character_sheet(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, sheet, purse) = read_sheet(&state, &headers, &id).await?;
    if !allowed(&caller, &sheet.owner) {
        return Err(forbidden());
    }
    let stats = state
        .content
        .stats_of(&sheet.class, sheet.level, sheet.equipment.values());
    let now = chrono::Utc::now();
    let (hp_now, mana_now) = match &stats {
        Some(s) => (
            if sheet.dead_since.is_some() {
                0
            } else {
                chaos_domain::stats::regenerated(
                    sheet.hp,
                    sheet.hp_as_of.unwrap_or(sheet.updated_at),
                    s.hp_regen_per_sec,
                    sheet.max_hp,
                    now,
                )
            },
            chaos_domain::stats::regenerated(
                sheet.mana,
                sheet.mana_as_of,
                s.mana_regen_per_sec,
                sheet.max_mana,
                now,
            ),
        ),
        None => (sheet.hp, sheet.mana),
    };
    let mut fields = serde_json::to_value(&sheet).map_err(|e| unavailable(e.to_string()))?;
    if let Some(map) = fields.as_object_mut() {
        map.insert("purse".into(), serde_json::json!(purse));
    }
    let view = SheetView {
        sheet: fields,
        hp_now,
        mana_now,
        stats: stats.map(|s| DerivedStats {
            max_hp: s.max_hp,
            max_mana: s.max_mana,
            attack: s.attack,
            spell_power: s.spell_power,
            defense: s.defense,
            hp_regen_per_sec: s.hp_regen_per_sec,
            mana_regen_per_sec: s.mana_regen_per_sec,
        }),
        revision: doc.revision,
        events_applied: doc.applied,
        positions: doc.positions.clone(),
    };
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}

/// One kind of item held, with what the content says of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemLine {
    pub item: String,
    pub quantity: u32,
    /// The content's name, kind (`weapon`, `consumable`, ...) and rarity; absent if the content
    /// no longer has the item.
    pub name: Option<String>,
    pub kind: Option<String>,
    pub rarity: Option<String>,
}

/// What a character carries and wears.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryView {
    #[schema(format = Uuid)]
    pub id: String,
    /// The bag, by item id.
    pub bag: Vec<ItemLine>,
    /// Stacks in the bag, and how many it holds.
    pub stacks: usize,
    pub capacity: u32,
    /// Slot -> the item worn there.
    pub equipment: BTreeMap<String, ItemLine>,
    /// The sheet's revision (its ETag).
    pub revision: u64,
}

/// A character's inventory: the bag (with each item's name, kind and rarity from the content)
/// and the equipment (owner or game master).
#[utoipa::path(get, path = "/v1/characters/{id}/inventory", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = InventoryView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable"),
        (status = 403, description = "Another player's character (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn inventory(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let (doc, sheet, _) = read_sheet(&state, &headers, &id).await?;
    if !allowed(&caller, &sheet.owner) {
        return Err(forbidden());
    }
    let line = |item: &str, quantity: u32| {
        let def = state.content.items.get(item);
        ItemLine {
            item: item.to_owned(),
            quantity,
            name: def.map(|d| d.name.clone()),
            kind: def.map(|d| format!("{:?}", d.item_type).to_lowercase()),
            rarity: def.map(|d| format!("{:?}", d.rarity).to_lowercase()),
        }
    };
    let view = InventoryView {
        id: id.clone(),
        bag: sheet.bag.iter().map(|(item, q)| line(item, *q)).collect(),
        stacks: sheet.bag.len(),
        capacity: state.content.progression.bag_capacity,
        equipment: sheet
            .equipment
            .iter()
            .map(|(slot, item)| (slot.clone(), line(item, 1)))
            .collect(),
        revision: doc.revision,
    };
    Ok(tagged(&headers, etag(&id, doc.revision), &view))
}
