//! The warehouse's tables. Analysts query these names and the Parquet files named after them:
//! do not rename a table or a column; add new ones instead.
//!
//! Every time is a plain `TIMESTAMP` holding UTC (the DuckDB build used has no ICU extension, so
//! no `TIMESTAMPTZ` arithmetic). Unsigned domain numbers are stored signed (`BIGINT`,
//! `INTEGER`) because Parquet readers handle those everywhere.

/// `events` is the fact table every other table hangs off: one row per event, deduplicated on
/// `event_id` and on `(aggregate_type, aggregate_id, sequence)`. A typed row is written only in
/// the transaction that inserts its `events` row, so typed tables need no keys of their own.
pub(crate) const DDL: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    event_id        UUID PRIMARY KEY,
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
    payload         VARCHAR NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
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
    leveled_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS zone_entries (
    event_id     UUID NOT NULL,
    character_id VARCHAR NOT NULL,
    sequence     BIGINT NOT NULL,
    from_zone    VARCHAR NOT NULL,
    to_zone      VARCHAR NOT NULL,
    entered_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS wallets (
    wallet_id    VARCHAR PRIMARY KEY,
    event_id     UUID NOT NULL,
    owner_id     VARCHAR NOT NULL,
    character_id VARCHAR NOT NULL,
    opened_at    TIMESTAMP NOT NULL
);

-- Every currency movement: a source (a grant) adds, a sink (a spend) takes away.
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

-- Where each feed stands, written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS feed_offsets (
    feed        VARCHAR NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (feed, "partition")
);

-- A batch's candidate `events` rows, appended in bulk and then inserted with ON CONFLICT DO
-- NOTHING (an appender cannot skip duplicates). Per connection, never exported.
CREATE TEMP TABLE IF NOT EXISTS staged_events AS SELECT * FROM events LIMIT 0;
"#;

/// The tables analysts get, in export order.
pub const TABLES: [&str; 9] = [
    EVENTS,
    CHARACTERS,
    SKILL_CASTS,
    EXPERIENCE_GAINS,
    LEVEL_UPS,
    ZONE_ENTRIES,
    WALLETS,
    CURRENCY_FLOWS,
    FEED_OFFSETS,
];

pub const EVENTS: &str = "events";
pub const CHARACTERS: &str = "characters";
pub const SKILL_CASTS: &str = "skill_casts";
pub const EXPERIENCE_GAINS: &str = "experience_gains";
pub const LEVEL_UPS: &str = "level_ups";
pub const ZONE_ENTRIES: &str = "zone_entries";
pub const WALLETS: &str = "wallets";
pub const CURRENCY_FLOWS: &str = "currency_flows";
pub const FEED_OFFSETS: &str = "feed_offsets";
pub(crate) const STAGED_EVENTS: &str = "staged_events";
