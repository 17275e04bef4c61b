//! The query API's HTTP edge, in process (no servers): `chaos_query_api::router` over an
//! in-memory read-model store that the real projection (`ViewProjection` with every view) fills
//! from published events, driven with `tower::ServiceExt::oneshot`. Public profile and private
//! state, consistency tokens, ETags, 404s, ledger paging and a timeline page seen mid-write.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use chaos_domain::AccountId;
use chaos_platform::auth::{JwtKeys, Role};
use chaos_platform::config::load_config_from;
use chaos_query_api::config::{Settings, DEFAULTS};
use chaos_query_api::AppState;
use chaos_readmodel::views::timeline;
use chaos_readmodel::{CasWrite, DocumentStore, Keys, LogAppend, MemoryStore, ViewProjection};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use http_body_util::BodyExt;
use prometheus::Registry;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

const AT: &str = "2026-11-30T12:00:00Z";

struct Api {
    router: Router,
    jwt: JwtKeys,
    projection: ViewProjection,
    position: AtomicI64,
    store: Arc<MemoryStore>,
    keys: Keys,
}

impl Api {
    fn new() -> Self {
        let mut settings: Settings =
            load_config_from(DEFAULTS, None, std::iter::empty()).expect("the defaults load");
        // Short, so the "behind" case answers quickly; long enough for a write to wake a wait.
        settings.consistency.max_wait_ms = 300;
        let store = Arc::new(MemoryStore::default());
        let registry = Registry::new();
        let state = AppState::new(store.clone(), &settings, &registry);
        let jwt = state.jwt.clone();
        let keys = Keys::new(&settings.redis.key_prefix, &settings.redis.model_version);
        let projection = ViewProjection::new(
            store.clone(),
            keys.clone(),
            chaos_readmodel::views::embedded(),
        );
        let router = chaos_query_api::router(state, registry, &settings.http);
        Self {
            router,
            jwt,
            projection,
            position: AtomicI64::new(0),
            store,
            keys,
        }
    }

    fn token(&self, account: AccountId, roles: &[Role]) -> String {
        self.jwt
            .issue(account, roles.to_vec(), chrono_now())
            .unwrap()
    }

    /// Projects one stored event of aggregate `kind`/`id` through every view.
    async fn apply(&self, kind: &str, id: &str, sequence: u64, event: Value) {
        let (event_type, _) = event.as_object().unwrap().iter().next().unwrap();
        let published = PublishedEvent {
            envelope: EventEnvelope {
                event_id: uuid::Uuid::new_v4(),
                event_type: event_type.clone(),
                aggregate_type: kind.to_owned(),
                aggregate_id: id.to_owned(),
                sequence,
                global_position: self.position.fetch_add(1, Ordering::SeqCst) + 1,
                occurred_at: serde_json::from_value(json!(AT)).unwrap(),
                correlation_id: None,
                causation_id: None,
                traceparent: None,
            },
            event: AnyEvent::from_stored(kind, event_type, "1", &event).unwrap(),
        };
        self.projection.apply_batch(&[published]).await.unwrap();
    }

    /// A character of `owner` with its wallet: character events 1..=1, wallet events
    /// 1..=1 + grants.
    async fn character(&self, owner: AccountId, name: &str, grants: u64) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.apply(
            "character",
            &id,
            1,
            json!({"CharacterCreated": {
                "owner": owner, "name": name, "class": "mage", "level": 1, "max_hp": 80,
                "max_mana": 120, "zone": "starter_meadow", "skills": ["strike", "fireball"],
                "created_at": AT,
            }}),
        )
        .await;
        self.apply(
            "wallet",
            &id,
            1,
            json!({"WalletOpened": {"owner": owner, "character": id, "opened_at": AT}}),
        )
        .await;
        for n in 1..=grants {
            self.apply(
                "wallet",
                &id,
                1 + n,
                json!({"CurrencyGranted": {
                    "currency": "gold", "amount": 10, "balance_after": 10 * n,
                    "source": "quest", "reference": format!("grant-{n}"), "granted_at": AT,
                }}),
            )
            .await;
        }
        id
    }

    async fn get(&self, uri: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn account() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::now_v7())
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn problem(&self, status: StatusCode, kind: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{self:?}"
        );
        assert_eq!(self.body["type"], format!("/problems/{kind}"), "{self:?}");
    }

    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        &self.body
    }
}

#[tokio::test]
async fn the_public_profile_is_anyones_and_the_sheet_its_owners() {
    let api = Api::new();
    let owner = account();
    let id = api.character(owner, "Aria", 1).await;
    let mine = api.token(owner, &[Role::Player]);
    let theirs = api.token(account(), &[Role::Player]);
    let gm = api.token(account(), &[Role::Player, Role::GameMaster]);

    // The profile: no token needed; name, class, level, zone and nothing private.
    let profile = api.get(&format!("/v1/characters/{id}"), None, &[]).await;
    let body = profile.ok();
    assert_eq!(body["name"], "Aria");
    assert_eq!(body["class"], "mage");
    assert_eq!(body["level"], 1);
    assert_eq!(body["zone"], "starter_meadow");
    for private in ["owner", "xp", "mana", "purse", "positions"] {
        assert!(body.get(private).is_none(), "{private} is private: {body}");
    }
    api.get(&format!("/v1/characters/{id}"), Some(&theirs), &[])
        .await
        .ok();
    // A token that is sent must verify, even where none is needed.
    let forged = JwtKeys::new(&SecretString::from("not the secret".to_owned()), 60)
        .issue(owner, vec![Role::Player], chrono_now())
        .unwrap();
    api.get(&format!("/v1/characters/{id}"), Some(&forged), &[])
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthorized");

    // The sheet: 401 without a token, 403 for another player, 200 for the owner and a GM.
    let sheet = format!("/v1/characters/{id}/sheet");
    api.get(&sheet, None, &[])
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthorized");
    api.get(&sheet, Some(&forged), &[])
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthorized");
    api.get(&sheet, Some(&theirs), &[])
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let answer = api.get(&sheet, Some(&mine), &[]).await;
    let body = answer.ok();
    assert_eq!(body["owner"], owner.to_string());
    assert_eq!(body["purse"]["gold"], 10);
    assert_eq!(body["positions"][format!("character/{id}")], 1);
    assert_eq!(body["positions"][format!("wallet/{id}")], 2);
    api.get(&sheet, Some(&gm), &[]).await.ok();

    // The wallet and its ledger follow the same rule.
    for uri in [
        format!("/v1/wallets/{id}"),
        format!("/v1/wallets/{id}/ledger"),
    ] {
        api.get(&uri, None, &[])
            .await
            .problem(StatusCode::UNAUTHORIZED, "unauthorized");
        api.get(&uri, Some(&theirs), &[])
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        api.get(&uri, Some(&mine), &[]).await.ok();
        api.get(&uri, Some(&gm), &[]).await.ok();
    }
    let wallet = api
        .get(&format!("/v1/wallets/{id}"), Some(&mine), &[])
        .await;
    assert_eq!(wallet.ok()["balances"], json!({"gold": 10, "gems": 0}));
    assert_eq!(wallet.body["version"], 2);
}

#[tokio::test]
async fn unknown_documents_and_routes_are_404_and_bad_ids_400() {
    let api = Api::new();
    let owner = account();
    let token = api.token(owner, &[Role::Player]);
    let nobody = uuid::Uuid::now_v7();
    for uri in [
        format!("/v1/characters/{nobody}"),
        format!("/v1/characters/{nobody}/sheet"),
    ] {
        api.get(&uri, Some(&token), &[])
            .await
            .problem(StatusCode::NOT_FOUND, "character-not-found");
    }
    for uri in [
        format!("/v1/wallets/{nobody}"),
        format!("/v1/wallets/{nobody}/ledger"),
    ] {
        api.get(&uri, Some(&token), &[])
            .await
            .problem(StatusCode::NOT_FOUND, "wallet-not-found");
    }
    // A wallet whose character's creation is not applied yet: the sheet exists, the character
    // does not.
    let early = uuid::Uuid::now_v7().to_string();
    api.apply(
        "wallet",
        &early,
        1,
        json!({"WalletOpened": {"owner": owner, "character": early, "opened_at": AT}}),
    )
    .await;
    api.get(&format!("/v1/characters/{early}"), None, &[])
        .await
        .problem(StatusCode::NOT_FOUND, "character-not-found");
    api.get(&format!("/v1/wallets/{early}"), Some(&token), &[])
        .await
        .ok();

    api.get("/v1/nothing-here", None, &[])
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    for bad in ["not-a-uuid", "0190a3c27d1e7c3a9f00000000000001"] {
        let answer = api.get(&format!("/v1/characters/{bad}"), None, &[]).await;
        answer.problem(StatusCode::BAD_REQUEST, "invalid-field");
        assert_eq!(answer.body["field"], "id");
    }
}

#[tokio::test]
async fn consistency_tokens_are_checked_and_waited_for() {
    let api = Api::new();
    let owner = account();
    let id = api.character(owner, "Patience", 0).await;
    let token = api.token(owner, &[Role::Player]);
    let sheet = format!("/v1/characters/{id}/sheet");
    // Malformed: 400 naming the header.
    for bad in [
        "garbage",
        "v2.character.x.1",
        "v1.character.x.-1",
        "v1.character.x.99999999999999999999",
    ] {
        let answer = api
            .get(&sheet, Some(&token), &[("consistency-token", bad)])
            .await;
        answer.problem(StatusCode::BAD_REQUEST, "invalid-consistency-token");
        assert_eq!(answer.body["field"], "Consistency-Token");
    }
    // Well-formed but for another document: 422, it promises nothing about this one.
    let other = uuid::Uuid::now_v7();
    for foreign in [
        format!("v1.character.{other}.1"),
        format!("v1.account.{id}.1"),
    ] {
        api.get(&sheet, Some(&token), &[("consistency-token", &foreign)])
            .await
            .problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "consistency-token-mismatch",
            );
    }
    // Reached: answered at once, from either of the sheet's sources.
    for reached in [format!("v1.character.{id}.1"), format!("v1.wallet.{id}.1")] {
        api.get(&sheet, Some(&token), &[("consistency-token", &reached)])
            .await
            .ok();
    }
    // The wallet's own document only follows the wallet.
    api.get(
        &format!("/v1/wallets/{id}"),
        Some(&token),
        &[("consistency-token", &format!("v1.character.{id}.1"))],
    )
    .await
    .problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "consistency-token-mismatch",
    );

    // Behind: after the bounded wait, 503 with Retry-After.
    let started = Instant::now();
    let behind = api
        .get(
            &sheet,
            Some(&token),
            &[("consistency-token", &format!("v1.character.{id}.2"))],
        )
        .await;
    behind.problem(StatusCode::SERVICE_UNAVAILABLE, "read-model-behind");
    assert!(
        behind.headers.contains_key(header::RETRY_AFTER),
        "{behind:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A write that arrives during the wait wakes it: answered with the new state.
    let ahead = format!("v1.character.{id}.2");
    let ahead_headers = [("consistency-token", ahead.as_str())];
    let waiting = api.get(&sheet, Some(&token), &ahead_headers);
    let write = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        api.apply(
            "character",
            &id,
            2,
            json!({"ZoneEntered": {
                "from_zone": "starter_meadow", "to_zone": "whispering_woods", "entered_at": AT,
            }}),
        )
        .await;
    };
    let (answer, ()) = tokio::join!(waiting, write);
    assert_eq!(answer.ok()["zone"], "whispering_woods");
}

#[tokio::test]
async fn etags_answer_304_when_nothing_changed() {
    let api = Api::new();
    let owner = account();
    let id = api.character(owner, "Tagged", 1).await;
    let token = api.token(owner, &[Role::Player]);
    for uri in [
        format!("/v1/characters/{id}"),
        format!("/v1/characters/{id}/sheet"),
        format!("/v1/wallets/{id}"),
        format!("/v1/wallets/{id}/ledger"),
    ] {
        let first = api.get(&uri, Some(&token), &[]).await;
        first.ok();
        let tag = first.headers[header::ETAG].to_str().unwrap().to_owned();
        let again = api
            .get(&uri, Some(&token), &[("if-none-match", &tag)])
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}: {again:?}");
        assert_eq!(again.headers[header::ETAG], tag.as_str());
        let stale = api
            .get(&uri, Some(&token), &[("if-none-match", "\"stale\"")])
            .await;
        stale.ok();
    }
    // A change gives a new tag.
    let before = api.get(&format!("/v1/characters/{id}"), None, &[]).await;
    api.apply(
        "character",
        &id,
        2,
        json!({"ZoneEntered": {
            "from_zone": "starter_meadow", "to_zone": "whispering_woods", "entered_at": AT,
        }}),
    )
    .await;
    let after = api.get(&format!("/v1/characters/{id}"), None, &[]).await;
    assert_ne!(before.headers[header::ETAG], after.headers[header::ETAG]);
}

#[tokio::test]
async fn the_ledger_is_paged_within_its_limits() {
    let api = Api::new();
    let owner = account();
    let id = api.character(owner, "Ledger", 5).await;
    let token = api.token(owner, &[Role::Player]);
    let ledger = format!("/v1/wallets/{id}/ledger");

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &format!("{ledger}?limit=2&after={after}"),
                Some(&token),
                &[],
            )
            .await;
        let body = page.ok().clone();
        let entries = body["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["sequence"].as_u64().unwrap()));
        match body["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    // The grants are wallet events 2..=6 (1 opened the wallet).
    assert_eq!(seen, vec![2, 3, 4, 5, 6]);
    let all = api.get(&ledger, Some(&token), &[]).await;
    assert_eq!(all.ok()["entries"].as_array().unwrap().len(), 5);
    assert!(all.body["next_after"].is_null());
    api.get(&format!("{ledger}?limit=500"), Some(&token), &[])
        .await
        .ok();
    api.get(&format!("{ledger}?limit=2.0"), Some(&token), &[])
        .await
        .ok();

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=two", "limit"),
        ("after=-1", "after"),
        ("offset=3", "offset"),
    ] {
        let answer = api
            .get(&format!("{ledger}?{query}"), Some(&token), &[])
            .await;
        answer.problem(StatusCode::BAD_REQUEST, "invalid-field");
        assert_eq!(answer.body["field"], field, "{query}");
    }
    api.get(&format!("{ledger}?limit=1&limit=2"), Some(&token), &[])
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid-query");
}

/// The MongoDB store writes a timeline document before its log entries, so a log read just
/// after the document can find an entry the document does not count yet. The page leaves it
/// out: its entries, its `total` and its ETag describe the same state.
#[tokio::test]
async fn a_timeline_page_shows_only_what_its_document_counts() {
    let api = Api::new();
    let owner = account();
    let id = api.character(owner, "Timeline", 1).await;
    let token = api.token(owner, &[Role::Player]);
    let path = format!("/v1/characters/{id}/timeline");
    let before = api.get(&path, Some(&token), &[]).await.ok().clone();
    // Character 1, wallet 1 and 2.
    assert_eq!(before["total"], 3, "{before}");
    assert_eq!(before["entries"].as_array().unwrap().len(), 3, "{before}");

    // A later write's log entry (character event 2), with its document not yet written.
    let doc_key = api.keys.doc(timeline::NAME, &id);
    let doc = api.store.get(&doc_key).await.unwrap().unwrap();
    let mut unchanged = doc.clone();
    unchanged.revision += 1;
    let won = api
        .store
        .put_many(&[CasWrite {
            key: doc_key,
            expected: doc.revision,
            doc: unchanged,
            log: vec![LogAppend {
                key: api.keys.log(timeline::NAME, timeline::EVENTS, &id),
                score: 1_000,
                entry: json!({
                    "at": 1_764_504_000_000_i64, "aggregate_type": "character", "sequence": 2,
                    "event_type": "ZoneEntered", "event_id": uuid::Uuid::new_v4().to_string(),
                    "summary": {},
                }),
            }],
            boards: Vec::new(),
        }])
        .await
        .unwrap();
    assert_eq!(won, vec![true]);
    assert_eq!(
        api.store
            .log_range(&api.keys.log(timeline::NAME, timeline::EVENTS, &id), 0, 10)
            .await
            .unwrap()
            .len(),
        4,
        "the log holds the uncounted entry"
    );

    let page = api.get(&path, Some(&token), &[]).await.ok().clone();
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["entries"], before["entries"], "{page}");
}

/// The level board (experience) a page at a time and around a character: ranks, neighbours
/// on both sides, the edges of the board, a token waited for, and a character off it.
#[tokio::test]
async fn leaderboards_page_the_top_and_show_a_character_among_its_neighbours() {
    let api = Api::new();
    // Seven characters; the i-th has gained 100 * i experience (the 0th none).
    let mut ids = Vec::new();
    for i in 0..7_u64 {
        let id = api.character(account(), &format!("Climber{i}"), 0).await;
        if i > 0 {
            api.apply(
                "character",
                &id,
                2,
                json!({"ExperienceGained": {
                    "amount": 100 * i, "total_xp": 100 * i, "source": "quest", "gained_at": AT,
                }}),
            )
            .await;
        }
        ids.push(id);
    }
    let by_rank: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    let page_ids = |body: &Value| -> Vec<String> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let top = api.get("/v1/leaderboards/level?limit=3", None, &[]).await;
    let top = top.ok();
    assert_eq!(top["total"], 7, "{top}");
    assert_eq!(page_ids(top), by_rank[..3].to_vec());
    assert_eq!(top["entries"][0]["rank"], 1);
    assert_eq!(top["entries"][0]["score"], 600);
    assert_eq!(top["entries"][0]["name"], "Climber6");
    let next = api
        .get("/v1/leaderboards/level?limit=3&offset=3", None, &[])
        .await;
    assert_eq!(page_ids(next.ok()), by_rank[3..6].to_vec());
    assert_eq!(next.body["entries"][0]["rank"], 4);

    // Rank 4 of 7 with two on each side; the first and the last with only one side.
    let middle = api
        .get(
            &format!("/v1/leaderboards/level/around/{}?radius=2", ids[3]),
            None,
            &[],
        )
        .await;
    assert_eq!(page_ids(middle.ok()), by_rank[1..6].to_vec());
    assert_eq!(middle.body["entries"][2]["rank"], 4);
    assert_eq!(middle.body["entries"][2]["score"], 300);
    let first = api
        .get(
            &format!("/v1/leaderboards/level/around/{}?radius=2", ids[6]),
            None,
            &[],
        )
        .await;
    assert_eq!(page_ids(first.ok()), by_rank[..3].to_vec());
    let last = api
        .get(
            &format!("/v1/leaderboards/level/around/{}?radius=2", ids[0]),
            None,
            &[],
        )
        .await;
    assert_eq!(page_ids(last.ok()), by_rank[4..].to_vec());
    assert_eq!(last.body["entries"][2]["rank"], 7);

    // A token for the character's last event is waited for; one for a later event is not
    // reached in time.
    let reached = format!("v1.character.{}.2", ids[3]);
    api.get(
        &format!("/v1/leaderboards/level/around/{}?radius=0", ids[3]),
        None,
        &[("Consistency-Token", &reached)],
    )
    .await
    .ok();
    let ahead = format!("v1.character.{}.3", ids[3]);
    api.get(
        &format!("/v1/leaderboards/level/around/{}?radius=0", ids[3]),
        None,
        &[("Consistency-Token", &ahead)],
    )
    .await
    .problem(StatusCode::SERVICE_UNAVAILABLE, "read-model-behind");

    let unknown = uuid::Uuid::now_v7();
    api.get(
        &format!("/v1/leaderboards/level/around/{unknown}"),
        None,
        &[],
    )
    .await
    .problem(StatusCode::NOT_FOUND, "character-not-found");
    api.get(
        &format!("/v1/leaderboards/gold/around/{}", ids[3]),
        None,
        &[],
    )
    .await
    .problem(StatusCode::NOT_FOUND, "leaderboard-not-found");
}
