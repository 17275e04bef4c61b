//! Leaderboards (level, wealth, PvP kills) and who is in a zone, from the sheets' boards (sorted
//! sets written with each sheet, `readmodel::views::sheet::boards`). Public.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chaos_platform::auth::MaybeCaller;
use chaos_platform::openapi::{optional_parameter, Bounded, IdPath};
use chaos_readmodel::views::sheet::{self, boards, SheetDoc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::characters::SHEET_SOURCES;
use super::common::{
    body, no_character, parse_id, problem, read, tagged, unavailable, unknown_parameter, Answer,
    Params, QuerySpec, ReadHeaders,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/leaderboards/{board}", get(top))
        .route("/v1/leaderboards/{board}/around/{id}", get(around))
        .route("/v1/zones/{zone}/presence", get(presence))
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(top, around, presence),
    components(schemas(BoardName, BoardPage, BoardEntry, PresencePage, PresenceEntry))
)]
pub struct Doc;

/// A leaderboard.
#[derive(Debug, Clone, Copy, serde::Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardName {
    /// By total experience (the level follows from it).
    Level,
    /// By gold held.
    Wealth,
    /// By other characters killed.
    Pvp,
}

impl BoardName {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "level" => Some(Self::Level),
            "wealth" => Some(Self::Wealth),
            "pvp" => Some(Self::Pvp),
            _ => None,
        }
    }

    fn stored(self) -> &'static str {
        match self {
            Self::Level => boards::LEVEL,
            Self::Wealth => boards::WEALTH,
            Self::Pvp => boards::PVP,
        }
    }
}

/// The board in the path, documented as the enum it is.
#[derive(Debug)]
pub struct BoardPath;

impl IntoParams for BoardPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut p = optional_parameter(
            "board",
            ParameterIn::Path,
            "`level` (total experience), `wealth` (gold) or `pvp` (characters killed)",
            BoardName::schema(),
        );
        p.required = utoipa::openapi::Required::True;
        vec![p]
    }
}

fn board(raw: &str) -> Result<BoardName, Response> {
    BoardName::parse(raw).ok_or_else(|| {
        problem(
            StatusCode::NOT_FOUND,
            "leaderboard-not-found",
            "No such leaderboard",
        )
        .detail("leaderboards: level, wealth, pvp")
        .into_response()
    })
}

/// One character on a board.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardEntry {
    /// 1 is first.
    pub rank: u64,
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    /// Experience, gold or kills.
    pub score: u64,
}

/// A page of a leaderboard, best first (ties: the greater id first).
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardPage {
    pub board: BoardName,
    /// Characters on the board.
    pub total: u64,
    pub entries: Vec<BoardEntry>,
}

/// The largest page of a board.
pub const MAX_BOARD_PAGE: u64 = 100;
const DEFAULT_BOARD_PAGE: u64 = 10;
type Offset = Bounded<0, 1_000_000>;
type Limit = Bounded<1, MAX_BOARD_PAGE>;
type Radius = Bounded<0, 50>;

/// `?offset=&limit=`.
#[derive(Debug, Default)]
pub struct TopQuery {
    pub offset: Option<u64>,
    pub limit: Option<u64>,
}

impl QuerySpec for TopQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "offset" => Offset::parse(value).map(|v| self.offset = Some(v.get())),
            "limit" => Limit::parse(value).map(|v| self.limit = Some(v.get())),
            _ => unknown_parameter(),
        }
    }
}

impl IntoParams for TopQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            optional_parameter(
                "offset",
                ParameterIn::Query,
                "Entries to skip (0 to 1000000); default 0",
                Offset::schema(),
            ),
            optional_parameter(
                "limit",
                ParameterIn::Query,
                &format!("Entries, 1 to {MAX_BOARD_PAGE}; default {DEFAULT_BOARD_PAGE}"),
                Limit::schema(),
            ),
        ]
    }
}

/// `?radius=`.
#[derive(Debug, Default)]
pub struct AroundQuery {
    pub radius: Option<u64>,
}

impl QuerySpec for AroundQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "radius" => Radius::parse(value).map(|v| self.radius = Some(v.get())),
            _ => unknown_parameter(),
        }
    }
}

impl IntoParams for AroundQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![optional_parameter(
            "radius",
            ParameterIn::Query,
            "Characters shown above and below (0 to 50); default 5",
            Radius::schema(),
        )]
    }
}

/// An ETag from the answer's content (boards have no revision of their own).
fn content_tag<T: Serialize>(body: &T) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// The entries of `members` (in board order from `first_rank`), named from their sheets.
async fn entries(
    state: &AppState,
    members: Vec<(String, f64)>,
    first_rank: u64,
) -> Result<Vec<BoardEntry>, Response> {
    let keys = state.hot.keys().await?;
    let doc_keys: Vec<String> = members
        .iter()
        .map(|(id, _)| keys.doc(sheet::NAME, id))
        .collect();
    let docs = state
        .hot
        .store
        .get_many(&doc_keys)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut out = Vec::with_capacity(members.len());
    for (i, ((id, score), doc)) in members.into_iter().zip(docs).enumerate() {
        // A member is on a board only with its sheet; one read mid-rebuild is skipped.
        let Some(doc) = doc else { continue };
        let stored: SheetDoc = body(&doc, &id)?;
        let Some(c) = stored.character else { continue };
        out.push(BoardEntry {
            rank: first_rank + i as u64,
            id,
            name: c.name,
            class: c.class,
            level: c.level,
            score: score.max(0.0) as u64,
        });
    }
    Ok(out)
}

/// The top of a leaderboard, a page at a time.
#[utoipa::path(get, path = "/v1/leaderboards/{board}", tag = "leaderboards",
    params(BoardPath, TopQuery),
    responses((status = 200, body = BoardPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such leaderboard (`leaderboard-not-found`)"),
        (status = 503, description = "The read model is unavailable")))]
#[tracing::instrument(skip_all, fields(board = %name))]
pub async fn top(
    State(state): State<AppState>,
    _caller: MaybeCaller,
    Path(name): Path<String>,
    Params(query): Params<TopQuery>,
    headers: HeaderMap,
) -> Answer {
    let board = board(&name)?;
    let key = state.hot.keys().await?.board(sheet::NAME, board.stored());
    let offset = query.offset.unwrap_or(0);
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_BOARD_PAGE)).unwrap_or(1);
    let store = &state.hot.store;
    let (members, total) = tokio::try_join!(
        store.board_range(&key, offset, limit, None),
        store.board_len(&key, None)
    )
    .map_err(|e| unavailable(e.to_string()))?;
    let page = BoardPage {
        board,
        total,
        entries: entries(&state, members, offset + 1).await?,
    };
    Ok(tagged(&headers, content_tag(&page), &page))
}

/// A character's place on a leaderboard with its neighbours. A `Consistency-Token` for the
/// character waits until the board reflects that command.
#[utoipa::path(get, path = "/v1/leaderboards/{board}/around/{id}", tag = "leaderboards",
    params(BoardPath, IdPath, AroundQuery, ReadHeaders),
    responses((status = 200, body = BoardPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such leaderboard (`leaderboard-not-found`) or character (`character-not-found`)"),
        (status = 422, description = "The Consistency-Token is for another document (`consistency-token-mismatch`)"),
        (status = 503, description = "The read model did not reach the Consistency-Token in time (`read-model-behind`), or it is unavailable")))]
#[tracing::instrument(skip_all, fields(board = %name, character = %id))]
pub async fn around(
    State(state): State<AppState>,
    _caller: MaybeCaller,
    Path((name, id)): Path<(String, String)>,
    Params(query): Params<AroundQuery>,
    headers: HeaderMap,
) -> Answer {
    let board = board(&name)?;
    let id = parse_id(&id)?;
    // With a token: the sheet (and, with it, its boards) at least as of it. Without one the
    // sheet is not read: a character off the board is a 404 either way.
    if headers.contains_key("consistency-token") {
        read(
            &state,
            &state.hot,
            &headers,
            sheet::NAME,
            SHEET_SOURCES,
            &id,
            no_character,
        )
        .await?;
    }
    let key = state.hot.keys().await?.board(sheet::NAME, board.stored());
    let store = &state.hot.store;
    let Some((rank, _)) = store
        .board_rank(&key, &id)
        .await
        .map_err(|e| unavailable(e.to_string()))?
    else {
        return Err(no_character());
    };
    let radius = query.radius.unwrap_or(5);
    let first = rank.saturating_sub(radius);
    let limit = usize::try_from(rank - first + radius + 1).unwrap_or(1);
    let (members, total) = tokio::try_join!(
        store.board_range(&key, first, limit, None),
        store.board_len(&key, None)
    )
    .map_err(|e| unavailable(e.to_string()))?;
    let page = BoardPage {
        board,
        total,
        entries: entries(&state, members, first + 1).await?,
    };
    Ok(tagged(&headers, content_tag(&page), &page))
}

/// One character seen in a zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceEntry {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    /// When it last acted (RFC 3339).
    pub last_active: chrono::DateTime<chrono::Utc>,
}

/// Who acted in a zone within the window, most recent first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresencePage {
    pub zone: String,
    pub within_secs: u64,
    /// Characters in the zone active within the window.
    pub online: u64,
    pub entries: Vec<PresenceEntry>,
}

type Within = Bounded<1, 86_400>;

/// `?within_secs=&limit=`.
#[derive(Debug, Default)]
pub struct PresenceQuery {
    pub within_secs: Option<u64>,
    pub limit: Option<u64>,
}

impl QuerySpec for PresenceQuery {
    fn take(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "within_secs" => Within::parse(value).map(|v| self.within_secs = Some(v.get())),
            "limit" => Limit::parse(value).map(|v| self.limit = Some(v.get())),
            _ => unknown_parameter(),
        }
    }
}

impl IntoParams for PresenceQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            optional_parameter(
                "within_secs",
                ParameterIn::Query,
                "The presence window in seconds (1 to 86400); default the service's (300)",
                Within::schema(),
            ),
            optional_parameter(
                "limit",
                ParameterIn::Query,
                &format!("Entries, 1 to {MAX_BOARD_PAGE}; default {DEFAULT_BOARD_PAGE}"),
                Limit::schema(),
            ),
        ]
    }
}

/// The zone in the path.
#[derive(Debug)]
pub struct ZonePath;

impl IntoParams for ZonePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut p = optional_parameter(
            "zone",
            ParameterIn::Path,
            "A zone id from the content (`whispering_woods`)",
            String::schema(),
        );
        p.required = utoipa::openapi::Required::True;
        vec![p]
    }
}

/// Who is in a zone: the characters that acted there within the window, most recent first.
#[utoipa::path(get, path = "/v1/zones/{zone}/presence", tag = "zones",
    params(ZonePath, PresenceQuery),
    responses((status = 200, body = PresencePage, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent"),
        (status = 401, description = "A bearer token was sent and does not verify"),
        (status = 404, description = "No such zone (`zone-not-found`)"),
        (status = 503, description = "The read model is unavailable")))]
#[tracing::instrument(skip_all, fields(zone = %zone))]
pub async fn presence(
    State(state): State<AppState>,
    _caller: MaybeCaller,
    Path(zone): Path<String>,
    Params(query): Params<PresenceQuery>,
    headers: HeaderMap,
) -> Answer {
    if !state.content.zones.contains_key(&zone) {
        return Err(
            problem(StatusCode::NOT_FOUND, "zone-not-found", "No such zone").into_response(),
        );
    }
    let within = query.within_secs.unwrap_or(state.presence_window.as_secs());
    let since = chrono::Utc::now() - chrono::Duration::seconds(within as i64);
    let min = Some(since.timestamp_millis() as f64);
    let key = state
        .hot
        .keys()
        .await?
        .board(sheet::NAME, &boards::presence(&zone));
    let limit = usize::try_from(query.limit.unwrap_or(DEFAULT_BOARD_PAGE)).unwrap_or(1);
    let store = &state.hot.store;
    let (members, online) = tokio::try_join!(
        store.board_range(&key, 0, limit, min),
        store.board_len(&key, min)
    )
    .map_err(|e| unavailable(e.to_string()))?;
    let seen: Vec<(String, f64)> = members.clone();
    let named = entries(&state, members, 1).await?;
    let page = PresencePage {
        zone,
        within_secs: within,
        online,
        entries: named
            .into_iter()
            .filter_map(|e| {
                let at = seen.iter().find(|(id, _)| *id == e.id)?.1 as i64;
                Some(PresenceEntry {
                    last_active: chrono::DateTime::from_timestamp_millis(at)?,
                    id: e.id,
                    name: e.name,
                    class: e.class,
                    level: e.level,
                })
            })
            .collect(),
    };
    Ok(tagged(&headers, content_tag(&page), &page))
}
