//! Views: models derived at query time from the stored facts, so they are right whatever order
//! the events arrived in (Kafka's partitions interleave streams freely) and however often they
//! were redelivered (`events` holds each once). Replaced at every open, so their definition is
//! always this code's.

/// A character's play session ends after this many minutes without an action of its own.
///
/// Why 30: characters have no log-in or log-out event, so a session is inferred from the
/// player's own commands (casts, travel, items, crafting). In play those come seconds apart
/// (cooldowns are 0 to 15 s); but reading quest text, trading or chatting in town makes no event
/// for minutes, and a short gap would cut one sitting into many. Thirty minutes is also the
/// inactivity timeout web and game analytics use by default, so figures compare with other
/// tools'. An analyst who wants another gap runs the view's query with their own interval
/// (docs/analytics.md).
pub const SESSION_GAP_MINUTES: u32 = 30;

/// `sessions`: one row per play session of a character, from the events it caused itself
/// (`causation_id IS NULL`: a process manager's events, such as damage taken from another
/// player's cast or a level-up's gold, are not the player acting). `session_number` counts a
/// character's sessions from 1 in time order; `duration_seconds` is from its first to its last
/// action (0 for a session of one action).
///
/// `dates`: the date dimension, one row per day from the first event's day to the last's (days
/// without events included, so daily series have no holes).
pub(crate) fn ddl() -> String {
    format!(
        r#"
CREATE OR REPLACE VIEW sessions AS
WITH actions AS (
    SELECT aggregate_id AS character_id, sequence, occurred_at,
           coalesce(occurred_at - lag(occurred_at) OVER own > INTERVAL {gap} MINUTE, true)
               AS starts_session
    FROM events
    WHERE aggregate_type = 'character' AND causation_id IS NULL
    WINDOW own AS (PARTITION BY aggregate_id ORDER BY occurred_at, sequence)
), numbered AS (
    SELECT character_id, occurred_at,
           sum(starts_session::INTEGER) OVER (
               PARTITION BY character_id ORDER BY occurred_at, sequence
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_number
    FROM actions
)
SELECT character_id,
       session_number::BIGINT AS session_number,
       min(occurred_at) AS started_at,
       max(occurred_at) AS ended_at,
       (epoch_ms(max(occurred_at)) - epoch_ms(min(occurred_at))) / 1000.0 AS duration_seconds,
       count(*) AS actions
FROM numbered
GROUP BY character_id, session_number;

CREATE OR REPLACE VIEW dates AS
SELECT d::DATE AS day,
       year(d) AS year,
       quarter(d) AS quarter,
       month(d) AS month,
       monthname(d) AS month_name,
       dayofmonth(d) AS day_of_month,
       isodow(d) AS iso_day_of_week,
       dayname(d) AS day_name,
       isoyear(d) AS iso_year,
       week(d) AS iso_week,
       isodow(d) >= 6 AS weekend
FROM range(
    (SELECT min(occurred_at)::DATE::TIMESTAMP FROM events),
    (SELECT max(occurred_at)::DATE::TIMESTAMP + INTERVAL 1 DAY FROM events),
    INTERVAL 1 DAY) AS days(d);
"#,
        gap = SESSION_GAP_MINUTES
    )
}
