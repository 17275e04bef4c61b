//! The warehouse's tables. Analysts query these names and the Parquet files named after them:
//! do not rename a table or a column; add new ones instead (a new column goes at the end of its
//! table, in `MIGRATIONS` too, so files made by an older version gain it).
//!
//! Every time is a plain `TIMESTAMP` holding UTC (the DuckDB build used has no ICU extension, so
//! no `TIMESTAMPTZ` arithmetic). Unsigned domain numbers are stored signed (`BIGINT`,
//! `INTEGER`) because Parquet readers handle those everywhere.
//!
//! Idempotence: `events` is the gate. Its natural key, `event_id` (`EVENTS_KEYS`; the id is
//! derived from the stream position, and an event whose id is not its position's is refused
//! before it reaches a table), refuses a redelivered event (`ON CONFLICT DO NOTHING`), and an
//! event's modelled rows are appended only in the transaction that inserted its `events` row.
//! So every fact table is keyed by its event (`event_id`, plus `line` where one event makes
//! several rows) without paying for a second index per table: a redelivery inserts no `events`
//! row, hence no fact row. The content dimensions are keyed by id and upserted.

/// How a table is exported and checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One row per event (or per line of an event); exported by day of `time`.
    Fact { time: &'static str },
    /// Things facts refer to, made from events (characters, wallets); exported whole.
    Dimension,
    /// The content catalogue the writing process runs with (classes, zones, ...); exported
    /// whole, rewritten at every open rather than made from events.
    Content,
    /// Where feeds stand; exported whole, left out of checksums (two warehouses holding the same
    /// events may have been fed differently).
    Operational,
}

/// A table or view analysts get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub kind: Kind,
    /// Rows in a stable order for exports (Parquet's row-group statistics then let readers skip
    /// most of a file when filtering on it).
    pub order_by: &'static str,
    /// A view, derived at query time from the tables (never stored, never checksummed).
    pub view: bool,
}

const fn fact(name: &'static str, time: &'static str, order_by: &'static str) -> Table {
    Table {
        name,
        kind: Kind::Fact { time },
        order_by,
        view: false,
    }
}

const fn dimension(name: &'static str, order_by: &'static str) -> Table {
    Table {
        name,
        kind: Kind::Dimension,
        order_by,
        view: false,
    }
}

const fn content(name: &'static str, order_by: &'static str) -> Table {
    Table {
        name,
        kind: Kind::Content,
        order_by,
        view: false,
    }
}

pub const EVENTS: &str = "events";
pub const CHARACTERS: &str = "characters";
pub const SKILL_CASTS: &str = "skill_casts";
pub const CAST_HITS: &str = "cast_hits";
pub const EXPERIENCE_GAINS: &str = "experience_gains";
pub const LEVEL_UPS: &str = "level_ups";
pub const ZONE_ENTRIES: &str = "zone_entries";
pub const NPC_KILLS: &str = "npc_kills";
pub const LOOT_LEFT: &str = "loot_left";
pub const PVP_DAMAGE: &str = "pvp_damage";
pub const ATTACK_MISSES: &str = "attack_misses";
pub const DEATHS: &str = "deaths";
pub const RESPAWNS: &str = "respawns";
pub const ITEM_FLOWS: &str = "item_flows";
pub const ITEM_USES: &str = "item_uses";
pub const CRAFTS: &str = "crafts";
pub const CRAFT_INGREDIENTS: &str = "craft_ingredients";
pub const EQUIPMENT_CHANGES: &str = "equipment_changes";
pub const WALLETS: &str = "wallets";
pub const CURRENCY_FLOWS: &str = "currency_flows";
pub const CLASSES: &str = "classes";
pub const SKILLS: &str = "skills";
pub const ZONES: &str = "zones";
pub const ITEMS: &str = "items";
pub const NPCS: &str = "npcs";
pub const RECIPES: &str = "recipes";
pub const RECIPE_INGREDIENTS: &str = "recipe_ingredients";
pub const SESSIONS: &str = "sessions";
pub const DATES: &str = "dates";
pub const FEED_OFFSETS: &str = "feed_offsets";
/// The event store feed's full position (`tx_id` too), where a store-fed rebuild resumes.
pub const STORE_POSITIONS: &str = "store_positions";
/// Key/value facts about the file itself (model version, a switch's request id).
pub const META: &str = "warehouse_meta";
pub(crate) const STAGED_EVENTS: &str = "staged_events";

/// Every table and view analysts get, in export order.
pub const CATALOGUE: &[Table] = &[
    fact(EVENTS, "occurred_at", "global_position"),
    dimension(CHARACTERS, "created_at, character_id"),
    fact(SKILL_CASTS, "cast_at", "cast_at, event_id"),
    fact(CAST_HITS, "cast_at", "cast_at, event_id"),
    fact(EXPERIENCE_GAINS, "gained_at", "gained_at, event_id"),
    fact(LEVEL_UPS, "leveled_at", "leveled_at, event_id"),
    fact(ZONE_ENTRIES, "entered_at", "entered_at, event_id"),
    fact(NPC_KILLS, "killed_at", "killed_at, event_id"),
    fact(LOOT_LEFT, "killed_at", "killed_at, event_id, line"),
    fact(PVP_DAMAGE, "taken_at", "taken_at, event_id"),
    fact(ATTACK_MISSES, "missed_at", "missed_at, event_id"),
    fact(DEATHS, "died_at", "died_at, event_id"),
    fact(RESPAWNS, "respawned_at", "respawned_at, event_id"),
    fact(ITEM_FLOWS, "occurred_at", "occurred_at, event_id, line"),
    fact(ITEM_USES, "used_at", "used_at, event_id"),
    fact(CRAFTS, "crafted_at", "crafted_at, event_id"),
    fact(
        CRAFT_INGREDIENTS,
        "crafted_at",
        "crafted_at, event_id, line",
    ),
    fact(EQUIPMENT_CHANGES, "occurred_at", "occurred_at, event_id"),
    dimension(WALLETS, "opened_at, wallet_id"),
    fact(CURRENCY_FLOWS, "occurred_at", "occurred_at, event_id"),
    content(CLASSES, "class"),
    content(SKILLS, "skill"),
    content(ZONES, "zone"),
    content(ITEMS, "item"),
    content(NPCS, "npc"),
    content(RECIPES, "recipe"),
    content(RECIPE_INGREDIENTS, "recipe, item"),
    Table {
        name: SESSIONS,
        kind: Kind::Fact { time: "started_at" },
        order_by: "started_at, character_id",
        view: true,
    },
    Table {
        name: DATES,
        kind: Kind::Dimension,
        order_by: "day",
        view: true,
    },
    Table {
        name: FEED_OFFSETS,
        kind: Kind::Operational,
        order_by: "feed, \"partition\"",
        view: false,
    },
];

/// The names of [`CATALOGUE`], in the same order.
pub fn tables() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|t| t.name)
}

/// The stored tables whose rows are made from events (each row names its `event_id`).
pub(crate) fn event_tables() -> impl Iterator<Item = &'static Table> {
    CATALOGUE
        .iter()
        .filter(|t| !t.view && matches!(t.kind, Kind::Fact { .. } | Kind::Dimension))
}

/// The version of the model (this file's tables and how events map to them). A file built by an
/// older model lacks the newer tables' rows for its older events: rebuild it
/// ([`super::Warehouse::open_rebuild`]) and switch. Raise it with every change of the mapping.
pub const MODEL_VERSION: i64 = 2;

/// The tables; idempotent (every start runs it).
pub(crate) const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    event_id        UUID NOT NULL,
    event_type      VARCHAR NOT NULL,
    aggregate_type  VARCHAR NOT NULL,
    aggregate_id    VARCHAR NOT NULL,
    sequence        BIGINT NOT NULL,
    global_position BIGINT NOT NULL,
    occurred_at     TIMESTAMP NOT NULL,
    correlation_id  VARCHAR,
    causation_id    VARCHAR,
    schema_version  INTEGER NOT NULL,
    -- The event's own fields as JSON text, named as in its Avro schema; times in epoch millis.
    payload         VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS characters (
    character_id VARCHAR PRIMARY KEY,
    event_id     UUID NOT NULL,
    owner_id     VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    class        VARCHAR NOT NULL,
    level        SMALLINT NOT NULL,
    max_hp       INTEGER NOT NULL,
    max_mana     INTEGER NOT NULL,
    zone         VARCHAR NOT NULL,
    skills       VARCHAR[] NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS skill_casts (
    event_id       UUID NOT NULL,
    character_id   VARCHAR NOT NULL,
    sequence       BIGINT NOT NULL,
    skill          VARCHAR NOT NULL,
    target         VARCHAR,
    zone           VARCHAR NOT NULL,
    mana_before    INTEGER NOT NULL,
    mana_cost      INTEGER NOT NULL,
    mana_after     INTEGER NOT NULL,
    damage         INTEGER NOT NULL,
    cooldown_until TIMESTAMP NOT NULL,
    cast_at        TIMESTAMP NOT NULL
);

-- What a cast hit (SkillCast v2): an NPC (its hit points before and after the damage dealt, 0
-- after is a kill) or a character (the damage is applied on the victim: see pvp_damage).
CREATE TABLE IF NOT EXISTS cast_hits (
    event_id      UUID NOT NULL,
    character_id  VARCHAR NOT NULL,
    sequence      BIGINT NOT NULL,
    skill         VARCHAR NOT NULL,
    zone          VARCHAR NOT NULL,
    target_kind   VARCHAR NOT NULL, -- 'npc' or 'character'
    target_id     VARCHAR NOT NULL, -- the NPC's content id or the character's id
    rolled_damage INTEGER NOT NULL,
    npc_damage    INTEGER,          -- after the NPC's defense; NULL for characters
    npc_hp_before INTEGER,
    npc_hp_after  INTEGER,
    cast_at       TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS experience_gains (
    event_id     UUID NOT NULL,
    character_id VARCHAR NOT NULL,
    sequence     BIGINT NOT NULL,
    amount       BIGINT NOT NULL,
    total_xp     BIGINT NOT NULL,
    source       VARCHAR NOT NULL,
    gained_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS level_ups (
    event_id        UUID NOT NULL,
    character_id    VARCHAR NOT NULL,
    sequence        BIGINT NOT NULL,
    level           SMALLINT NOT NULL,
    max_hp          INTEGER NOT NULL,
    max_mana        INTEGER NOT NULL,
    skills_unlocked VARCHAR[] NOT NULL,
    leveled_at      TIMESTAMP NOT NULL,
    gold_reward     BIGINT
);

CREATE TABLE IF NOT EXISTS zone_entries (
    event_id     UUID NOT NULL,
    character_id VARCHAR NOT NULL,
    sequence     BIGINT NOT NULL,
    from_zone    VARCHAR NOT NULL,
    to_zone      VARCHAR NOT NULL,
    entered_at   TIMESTAMP NOT NULL
);

-- The experience follows as experience_gains (source kill:<npc>), the loot that fit in the bag
-- as item_flows (source loot:<npc>), what did not fit as loot_left.
CREATE TABLE IF NOT EXISTS npc_kills (
    event_id           UUID NOT NULL,
    character_id       VARCHAR NOT NULL,
    sequence           BIGINT NOT NULL,
    npc                VARCHAR NOT NULL,
    zone               VARCHAR NOT NULL,
    xp_reward          INTEGER NOT NULL,
    loot_left_quantity INTEGER NOT NULL,
    killed_at          TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS loot_left (
    event_id     UUID NOT NULL,
    line         INTEGER NOT NULL,
    character_id VARCHAR NOT NULL,
    npc          VARCHAR NOT NULL,
    zone         VARCHAR NOT NULL,
    item         VARCHAR NOT NULL,
    quantity     INTEGER NOT NULL,
    killed_at    TIMESTAMP NOT NULL
);

-- A PvP hit as the victim took it (the attacker dealt it): rolled damage, damage after the
-- victim's defense, hit points before and after. The cause is the attacker's SkillCast.
CREATE TABLE IF NOT EXISTS pvp_damage (
    event_id       UUID NOT NULL,
    victim_id      VARCHAR NOT NULL,
    sequence       BIGINT NOT NULL,
    attacker_id    VARCHAR NOT NULL,
    cause_event_id VARCHAR NOT NULL,
    skill          VARCHAR NOT NULL,
    rolled_damage  INTEGER NOT NULL,
    damage         INTEGER NOT NULL,
    hp_before      INTEGER NOT NULL,
    hp_after       INTEGER NOT NULL,
    zone           VARCHAR NOT NULL,
    taken_at       TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS attack_misses (
    event_id       UUID NOT NULL,
    victim_id      VARCHAR NOT NULL,
    sequence       BIGINT NOT NULL,
    attacker_id    VARCHAR NOT NULL,
    cause_event_id VARCHAR NOT NULL,
    skill          VARCHAR NOT NULL,
    reason         VARCHAR NOT NULL, -- target-dead, target-left-zone, zone-forbids-pvp
    zone           VARCHAR NOT NULL,
    missed_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS deaths (
    event_id     UUID NOT NULL,
    character_id VARCHAR NOT NULL,
    sequence     BIGINT NOT NULL,
    killer_id    VARCHAR, -- NULL when no character dealt the blow
    cause        VARCHAR NOT NULL,
    zone         VARCHAR NOT NULL,
    bounty_xp    BIGINT NOT NULL,
    died_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS respawns (
    event_id     UUID NOT NULL,
    character_id VARCHAR NOT NULL,
    sequence     BIGINT NOT NULL,
    from_zone    VARCHAR NOT NULL,
    zone         VARCHAR NOT NULL,
    hp           INTEGER NOT NULL,
    mana         INTEGER NOT NULL,
    respawned_at TIMESTAMP NOT NULL
);

-- Every move of items into or out of a character's bag, one row per item and event:
--   acquired  (+, source loot:<npc>, grant:<reason>, ...)   used (-1)   destroyed (-)
--   consumed  (-, source craft:<recipe>)   crafted (+, source craft:<recipe>)
--   equipped  (-1, to a slot)   replaced (+1, the slot's previous item back)   unequipped (+1)
-- bag_delta is the signed change of the bag's quantity; quantity_after what the bag holds after.
CREATE TABLE IF NOT EXISTS item_flows (
    event_id       UUID NOT NULL,
    line           INTEGER NOT NULL,
    character_id   VARCHAR NOT NULL,
    sequence       BIGINT NOT NULL,
    item           VARCHAR NOT NULL,
    flow           VARCHAR NOT NULL,
    source         VARCHAR,
    source_kind    VARCHAR, -- the source up to its first ':' (loot, grant, craft, ...)
    quantity       INTEGER NOT NULL,
    bag_delta      INTEGER NOT NULL,
    quantity_after INTEGER NOT NULL,
    occurred_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS item_uses (
    event_id       UUID NOT NULL,
    character_id   VARCHAR NOT NULL,
    sequence       BIGINT NOT NULL,
    item           VARCHAR NOT NULL,
    quantity_after INTEGER NOT NULL,
    hp_before      INTEGER NOT NULL,
    hp_after       INTEGER NOT NULL,
    mana_before    INTEGER NOT NULL,
    mana_after     INTEGER NOT NULL,
    used_at        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS crafts (
    event_id            UUID NOT NULL,
    character_id        VARCHAR NOT NULL,
    sequence            BIGINT NOT NULL,
    recipe              VARCHAR NOT NULL,
    produced_item       VARCHAR NOT NULL,
    produced_quantity   INTEGER NOT NULL,
    ingredient_quantity INTEGER NOT NULL,
    crafted_at          TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS craft_ingredients (
    event_id     UUID NOT NULL,
    line         INTEGER NOT NULL,
    character_id VARCHAR NOT NULL,
    recipe       VARCHAR NOT NULL,
    item         VARCHAR NOT NULL,
    quantity     INTEGER NOT NULL,
    crafted_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS equipment_changes (
    event_id      UUID NOT NULL,
    character_id  VARCHAR NOT NULL,
    sequence      BIGINT NOT NULL,
    action        VARCHAR NOT NULL, -- 'equipped' or 'unequipped'
    item          VARCHAR NOT NULL,
    slot          VARCHAR NOT NULL,
    replaced_item VARCHAR,
    max_hp        INTEGER NOT NULL,
    max_mana      INTEGER NOT NULL,
    hp            INTEGER NOT NULL,
    mana          INTEGER NOT NULL,
    occurred_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS wallets (
    wallet_id    VARCHAR PRIMARY KEY,
    event_id     UUID NOT NULL,
    owner_id     VARCHAR NOT NULL,
    character_id VARCHAR NOT NULL,
    opened_at    TIMESTAMP NOT NULL
);

-- Every currency movement: a source (a grant) adds, a sink (a spend) takes away. reason is the
-- source or the sink (level-up, quest:<id>, vendor:<item>, ...), reference what it was for.
CREATE TABLE IF NOT EXISTS currency_flows (
    event_id      UUID NOT NULL,
    wallet_id     VARCHAR NOT NULL,
    sequence      BIGINT NOT NULL,
    currency      VARCHAR NOT NULL,
    direction     VARCHAR NOT NULL,
    amount        BIGINT NOT NULL,
    delta         BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    reason        VARCHAR NOT NULL,
    reference     VARCHAR NOT NULL,
    occurred_at   TIMESTAMP NOT NULL
);

-- The content dimensions: the catalogue the writing process runs with, by content id, with the
-- version of the content set each row comes from. An id a newer content no longer has keeps its
-- last row (old events still name it).
CREATE TABLE IF NOT EXISTS classes (
    class           VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    base_max_hp     INTEGER NOT NULL,
    base_max_mana   INTEGER NOT NULL,
    starting_skills VARCHAR[] NOT NULL,
    content_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS skills (
    skill           VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    classes         VARCHAR[] NOT NULL, -- empty: every class
    required_level  SMALLINT NOT NULL,
    mana_cost       INTEGER NOT NULL,
    cooldown_ms     INTEGER NOT NULL,
    offensive       BOOLEAN NOT NULL,
    xp_reward       INTEGER NOT NULL,
    content_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS zones (
    zone            VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL, -- safe, pvp, dungeon
    min_level       SMALLINT NOT NULL,
    max_level       SMALLINT NOT NULL,
    pvp             BOOLEAN NOT NULL,
    respawn_zone    VARCHAR NOT NULL,
    npcs            VARCHAR[] NOT NULL,
    content_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS items (
    item            VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    item_type       VARCHAR NOT NULL,
    rarity          VARCHAR NOT NULL,
    stack_size      INTEGER NOT NULL,
    slot            VARCHAR, -- NULL: not wearable
    content_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS npcs (
    npc             VARCHAR PRIMARY KEY,
    name            VARCHAR NOT NULL,
    level           SMALLINT NOT NULL,
    max_hp          INTEGER NOT NULL,
    defense         INTEGER NOT NULL,
    xp_reward       INTEGER NOT NULL,
    content_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS recipes (
    recipe            VARCHAR PRIMARY KEY,
    name              VARCHAR NOT NULL,
    required_level    SMALLINT NOT NULL,
    produced_item     VARCHAR NOT NULL,
    produced_quantity INTEGER NOT NULL,
    content_version   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS recipe_ingredients (
    recipe          VARCHAR NOT NULL,
    item            VARCHAR NOT NULL,
    quantity        INTEGER NOT NULL,
    content_version VARCHAR NOT NULL,
    PRIMARY KEY (recipe, item)
);

-- Where each feed stands, written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS feed_offsets (
    feed        VARCHAR NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (feed, "partition")
);

CREATE TABLE IF NOT EXISTS store_positions (
    feed            VARCHAR PRIMARY KEY,
    tx_id           UBIGINT NOT NULL,
    global_position BIGINT NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS warehouse_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"#;

/// The natural key of `events`, the event id, as a unique index rather than a constraint in
/// the table's definition: a store rebuild writes its target without it and builds it once at
/// the end (one sorted pass over the column, instead of an insert into the index per row), and
/// DuckDB cannot add a constraint to an existing table. `ON CONFLICT (event_id)` names it.
///
/// The id is derived from the stream position (`chaos_eventstore::publish::event_id`) and the
/// mapping refuses an event whose id is not its position's, so this one key also keeps two rows
/// off one position (decision 48). Older files carry the keys as constraints in the definition
/// (`PRIMARY KEY (event_id)`, `UNIQUE (aggregate_type, aggregate_id, sequence)`), which behave
/// the same: [`super::writer::Writer`] adds nothing to those.
pub(crate) const EVENTS_KEYS: &str = r#"
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id);
"#;

/// The stream position's own unique index, which files made before decision 48 have beside
/// [`EVENTS_KEYS`]: dropped when such a file is opened (the id stands for the position).
pub(crate) const RETIRED_KEYS: &str = r#"
DROP INDEX IF EXISTS events_stream;
"#;

/// Drops [`EVENTS_KEYS`] (a store rebuild's target, while it is written).
pub(crate) const DROP_EVENTS_KEYS: &str = r#"
DROP INDEX IF EXISTS events_event_id;
"#;

/// Columns added to tables after their first release, for files made before (DuckDB has
/// `ADD COLUMN IF NOT EXISTS`). The same columns are at the end of the tables in [`DDL`].
pub(crate) const MIGRATIONS: &str = r#"
ALTER TABLE level_ups ADD COLUMN IF NOT EXISTS gold_reward BIGINT;
"#;

/// A batch's candidate `events` rows, appended in bulk and then inserted with ON CONFLICT DO
/// NOTHING (an appender cannot skip duplicates). Per connection, never exported.
pub(crate) const STAGING: &str =
    "CREATE TEMP TABLE IF NOT EXISTS staged_events AS SELECT * FROM events LIMIT 0;";
