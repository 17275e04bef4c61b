//! A character's documents and history (MongoDB; the embedded store): its career (the profile
//! document: level history, zones visited, totals) and its timeline (every event of the
//! character and its wallet, by time range, paged).
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chaos_platform::auth::{Caller, MaybeCaller};
use chaos_platform::openapi::{optional_parameter, Bounded, IdPath};
use chaos_readmodel::views::profile::{self, ProfileDoc};
use chaos_readmodel::views::timeline::{self, TimelineDoc, TimelineEntry};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::characters::{read_sheet, SHEET_SOURCES};
use super::common::{
    allowed, body, etag, forbidden, no_character, parse_id, read, tagged, unavailable,
    unknown_parameter, Answer, Params, QuerySpec, ReadHeaders,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/characters/{id}/career", get(career))
        .route("/v1/characters/{id}/timeline", get(timeline_page))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(career, timeline_page),
    components(schemas(CareerView, TimelinePage))
)]
pub struct Doc;

/// The owner of character `id`, from its sheet as of the request's `Consistency-Token` (waiting
/// for it like any read): a player who reads a timeline with the token of the command that
/// created the character must not get a 404 because the sheet is not projected yet.
async fn owner_as_of(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Option<String>, Response> {
    match read_sheet(state, headers, id).await {
        Ok((_, character, _)) => Ok(Some(character.owner)),
        Err(answer) if answer.status() == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(answer) => Err(answer),
    }
}

/// A character's career.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareerView {
    /// The profile document: the character (name, class, level, zone, created_at, level
    /// history, zones visited), casts by skill, experience gained, events by type, the last
    /// event's time. `granted` and `spent` (currency totals) only for the owner or a game
    /// master.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    /// The document's revision (its ETag).
    pub revision: u64,
    /// The last applied sequence per source stream.
    pub positions: BTreeMap<String, u64>,
}

/// A character's career: its level history, the zones it visited and its totals. Public; the
/// currency totals only for its owner or a game master.
#[utoipa::path(get, path = "/v1/characters/{id}/career", tag = "characters",
    params(IdPath, ReadHeaders),
    responses((status = 200, body = CareerView, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable")))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn career(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    let doc = read(
        &state,
        &state.documents,
        &headers,
        profile::NAME,
        SHEET_SOURCES,
        &id,
        no_character,
    )
    .await?;
    let stored: ProfileDoc = body(&doc, &id)?;
    if stored.character.is_none() {
        return Err(no_character());
    }
    let mut fields = serde_json::to_value(&stored).map_err(|e| unavailable(e.to_string()))?;
    let private = match caller.0.as_ref() {
        Some(caller) => owner_as_of(&state, &headers, &id)
            .await?
            .is_some_and(|owner| allowed(caller, &owner)),
        None => false,
    };
    if !private {
        if let Some(map) = fields.as_object_mut() {
            map.remove("granted");
            map.remove("spent");
        }
    }
    let view = CareerView {
        profile: fields,
        revision: doc.revision,
        positions: doc.positions.clone(),
    };
    // Owner and stranger see different bodies: the tag says which.
    let tag = etag(&id, doc.revision).replace('"', "");
    Ok(tagged(
        &headers,
        format!("\"{tag}.{}\"", if private { "p" } else { "a" }),
        &view,
    ))
}

/// The largest timeline page.
pub const MAX_TIMELINE_PAGE: u64 = 500;
const DEFAULT_TIMELINE_PAGE: u64 = 50;
type After = Bounded<0, { u64::MAX }>;
type Limit = Bounded<1, MAX_TIMELINE_PAGE>;

/// `?from=&to=&after=&limit=`.
#[derive(Debug, Default)]
pub struct TimelineQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<u64>,
    pub limit: Option<u64>,
}

fn instant(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 date-time (2026-11-30T12:00:00Z)".to_owned())
}

impl QuerySpec for TimelineQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "from" => instant(value).map(|t| self.from = Some(t)),
            "to" => instant(value).map(|t| self.to = Some(t)),
            "after" => After::parse(value).map(|v| self.after = Some(v.get())),
            "limit" => Limit::parse(value).map(|v| self.limit = Some(v.get())),
            _ => unknown_parameter(),
        }
    }
}

impl IntoParams for TimelineQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let time = || {
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::DateTime,
                )))
                .into()
        };
        vec![
            optional_parameter(
                "from",
                ParameterIn::Query,
                "Events at or after this time (RFC 3339); default: the first",
                time(),
            ),
            optional_parameter(
                "to",
                ParameterIn::Query,
                "Events before this time (RFC 3339); default: no end",
                time(),
            ),
            optional_parameter(
                "after",
                ParameterIn::Query,
                "The previous page's `next_after`; default 0",
                After::schema(),
            ),
            optional_parameter(
                "limit",
                ParameterIn::Query,
                &format!(
                    "Entries per page, 1 to {MAX_TIMELINE_PAGE}; default {DEFAULT_TIMELINE_PAGE}"
                ),
                Limit::schema(),
            ),
        ]
    }
}

/// Whether the timeline document as read counts `entry`. The MongoDB store writes a document
/// before its log entries, so a log read after the document can find entries of a later
/// write; those are left for the next read, so that a page's entries, its `total` and its ETag
/// (the document's revision) describe one state. Within a stream events apply in order, so an
/// entry is counted exactly when its sequence is at most the document's for its stream.
fn counted(doc: &chaos_readmodel::Document, id: &str, entry: &TimelineEntry) -> bool {
    entry.sequence <= doc.position(&format!("{}/{id}", entry.aggregate_type))
}

/// A page of a timeline, in the order the events were written.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    /// Events on the timeline in all, and its first and last times (epoch milliseconds), as of
    /// the state the page shows (its ETag): entries written after it are on the next read.
    pub total: u64,
    pub first_at: i64,
    pub last_at: i64,
    /// Each: `at` (epoch milliseconds), `aggregate_type`, `sequence`, `event_type`,
    /// `event_id` and a `summary` of the payload.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<TimelineEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

/// A character's timeline: every event of the character and its wallet, optionally within a
/// time range, a page at a time (owner or game master).
#[utoipa::path(get, path = "/v1/characters/{id}/timeline", tag = "characters",
    params(IdPath, TimelineQuery, ReadHeaders),
    responses((status = 200, body = TimelinePage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 403, description = "Another player's character (`forbidden`)"),
        (status = 404, description = "No such character (`character-not-found`)"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(character = %id))]
pub async fn timeline_page(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<TimelineQuery>,
    headers: HeaderMap,
) -> Answer {
    let id = parse_id(&id)?;
    // Authorised before the timeline is read.
    match owner_as_of(&state, &headers, &id).await? {
        Some(owner) if allowed(&caller, &owner) => {}
        Some(_) => return Err(forbidden()),
        None => return Err(no_character()),
    }
    let doc = read(
        &state,
        &state.documents,
        &headers,
        timeline::NAME,
        SHEET_SOURCES,
        &id,
        no_character,
    )
    .await?;
    let stored: TimelineDoc = body(&doc, &id)?;
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_TIMELINE_PAGE)).unwrap_or(1);
    let after = query.after.unwrap_or(0);
    let from = query.from.map_or(i64::MIN, |t| t.timestamp_millis());
    let to = query.to.map_or(i64::MAX, |t| t.timestamp_millis());
    let key = state
        .documents
        .keys()
        .await?
        .log(timeline::NAME, timeline::EVENTS, &id);
    let rows = state
        .documents
        .store
        .log_window(&key, from, to, after, limit)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let full = rows.len() == limit;
    let next_after = rows.last().filter(|_| full).map(|(score, _)| *score);
    let mut entries: Vec<TimelineEntry> = rows
        .into_iter()
        .map(|(_, entry)| serde_json::from_value(entry))
        .collect::<Result<_, _>>()
        .map_err(|e| unavailable(format!("timeline {key} does not read: {e}")))?;
    entries.retain(|entry| counted(&doc, &id, entry));
    let page = TimelinePage {
        total: stored.entries,
        first_at: stored.first_at,
        last_at: stored.last_at,
        entries,
        next_after,
    };
    Ok(tagged(
        &headers,
        format!("\"{id}.{}.{from}.{to}.{after}.{limit}\"", doc.revision),
        &page,
    ))
}
