//! The character slice end to end over HTTP, against the real processes and services:
//! command API -> PostgreSQL -> relay -> Kafka -> projector -> Redis -> query API.
//!
//! Needs `deploy/local/services.sh up` and the binaries (`cargo build --workspace --bins`).

use std::collections::BTreeSet;
use std::time::Duration;

use chaos_tests::check::{every_topic_matches_store, sheets_match_store};
use chaos_tests::client::{CommandApi, PASSWORD};
use chaos_tests::services::{repo_root, venv_python};
use chaos_tests::store::{by_aggregate, fold};
use chaos_tests::{Stack, StackOptions};
use serde_json::{json, Value};

const PIPELINE: Duration = Duration::from_secs(90);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sequences(body: &Value) -> Vec<i64> {
    body["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["sequence"].as_i64()).collect())
        .unwrap_or_default()
}

/// Every kind of bad input gets its problem+json status, and none of them appends an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_problems_and_append_nothing() {
    let stack = Stack::start(StackOptions::command_api_only())
        .await
        .unwrap();
    let api = stack.commands();
    let alice = api.player("alice").await.unwrap();
    let bob = api.player("bob").await.unwrap();
    let created = api
        .create_character(&alice.token, "Aria", "warrior", &[])
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{created:?}");
    let aria = created.answer().unwrap();
    assert_eq!(aria.sequence, 1);
    assert_eq!(aria.events, ["CharacterCreated"]);
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/characters/{}", aria.aggregate_id).as_str())
    );
    let cast_path = format!("/v1/characters/{}/cast-skill", aria.aggregate_id);
    let raw = |body: &str| body.as_bytes().to_vec();

    // Accounts.
    api.register("alice", PASSWORD)
        .await
        .unwrap()
        .assert_problem(409, Some("username-taken"));
    api.register("a", PASSWORD)
        .await
        .unwrap()
        .assert_problem(400, Some("invalid-field"));
    api.register("carol", "short")
        .await
        .unwrap()
        .assert_problem(400, Some("invalid-field"));
    api.login("alice", "wrong password!")
        .await
        .unwrap()
        .assert_problem(401, Some("invalid-credentials"));
    api.login("nobody-here", PASSWORD)
        .await
        .unwrap()
        .assert_problem(401, Some("invalid-credentials"));

    // Malformed JSON, unknown fields, wrong types, missing fields: 400, naming the field.
    for (body, problem, field) in [
        (r#"{"skill": "strike""#, "malformed-json", None),
        ("not json at all", "malformed-json", None),
        (r#"{"skill": "strike"} trailing"#, "malformed-json", None),
        (
            r#"{"skill": "strike", "bogus": 1}"#,
            "invalid-field",
            Some("bogus"),
        ),
        (r#"{"skill": 42}"#, "invalid-field", Some("skill")),
        (
            r#"{"skill": "strike", "target": ["a"]}"#,
            "invalid-field",
            Some("target"),
        ),
        (r#"{}"#, "invalid-field", Some("skill")),
        (r#"[]"#, "invalid-body", None),
    ] {
        let r = api
            .post_raw(
                &cast_path,
                Some(&alice.token),
                "application/json",
                raw(body),
                &[],
            )
            .await
            .unwrap();
        r.assert_problem(400, Some(problem));
        assert_eq!(
            r.body.get("field").and_then(Value::as_str),
            field,
            "{body}: {r:?}"
        );
    }
    // Not JSON at all: 415.
    api.post_raw(
        &cast_path,
        Some(&alice.token),
        "text/plain",
        raw(r#"{"skill":"strike"}"#),
        &[],
    )
    .await
    .unwrap()
    .assert_problem(415, Some("unsupported-media-type"));
    // Oversized bodies are refused before parsing (the cap is 16 KiB). The server closes that
    // connection without reading the rest of the body: a client of its own, so no later request
    // rides on the closed connection.
    let huge = json!({"skill": "strike", "target": "x".repeat(64 * 1024)});
    CommandApi::new(api.base())
        .post(&cast_path, Some(&alice.token), &huge, &[])
        .await
        .unwrap()
        .assert_problem(413, Some("body-too-large"));
    // Absurd values: empty or overlong identifiers, bad names.
    for body in [
        json!({"skill": ""}),
        json!({"skill": "s".repeat(65)}),
        json!({"skill": "strike", "target": {"npc": "t".repeat(65)}}),
        json!({"skill": "strike\u{0}"}),
    ] {
        api.post(&cast_path, Some(&alice.token), &body, &[])
            .await
            .unwrap()
            .assert_problem(400, Some("invalid-field"));
    }
    for name in ["", "x", "1abc", "has space", &"n".repeat(21)] {
        api.create_character(&alice.token, name, "mage", &[])
            .await
            .unwrap()
            .assert_problem(400, Some("invalid-field"));
    }
    api.create_character(&alice.token, "Nemo", "bard", &[])
        .await
        .unwrap()
        .assert_problem(422, Some("unknown-class"));
    // Names are unique across players, ignoring case; the refused name stays free for nobody
    // else (Nemo, refused above for its class, can still be created).
    api.create_character(&bob.token, "aRIA", "mage", &[])
        .await
        .unwrap()
        .assert_problem(409, Some("name-taken"));
    let nemo = api
        .create_character(&bob.token, "Nemo", "mage", &[])
        .await
        .unwrap();
    assert_eq!(nemo.status, 201, "{nemo:?}");
    // A malformed character id in the path.
    api.post(
        "/v1/characters/not-a-uuid/cast-skill",
        Some(&alice.token),
        &json!({"skill": "strike"}),
        &[],
    )
    .await
    .unwrap()
    .assert_problem(400, Some("invalid-field"));

    // Authentication: missing, garbage, forged (wrong key), expired (right key) -> 401.
    let strike = json!({"skill": "strike"});
    api.post(&cast_path, None, &strike, &[])
        .await
        .unwrap()
        .assert_problem(401, Some("unauthorized"));
    let forged =
        chaos_tests::stack::sign_token("not-the-secret", &alice.account_id, now(), now() + 600);
    let expired = stack.sign_token(&alice.account_id, now() - 7200, now() - 3600);
    let mut tampered = alice.token.clone();
    tampered.pop();
    tampered.push(if alice.token.ends_with('A') { 'B' } else { 'A' });
    for token in [
        "garbage",
        "a.b.c",
        forged.as_str(),
        expired.as_str(),
        tampered.as_str(),
    ] {
        api.post(&cast_path, Some(token), &strike, &[])
            .await
            .unwrap()
            .assert_problem(401, Some("unauthorized"));
    }
    api.post_raw(
        &cast_path,
        None,
        "application/json",
        raw(r#"{"skill":"strike"}"#),
        &[("authorization", "Basic YWxpY2U6eA==")],
    )
    .await
    .unwrap()
    .assert_problem(401, None);
    // Sanity: a fresh token signed with the stack's own key is accepted (the expired one failed
    // only for its age).
    let fresh = stack.sign_token(&alice.account_id, now(), now() + 600);
    let ok = api
        .post(&cast_path, Some(&fresh), &strike, &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");
    let mut appended = 1 + ok.answer().unwrap().events.len();

    // Another player's character: 403, for commands and for its history.
    api.cast_skill(&bob.token, &aria.aggregate_id, "strike", &[])
        .await
        .unwrap()
        .assert_problem(403, Some("not-character-owner"));
    api.travel(&bob.token, &aria.aggregate_id, "starter_meadow")
        .await
        .unwrap()
        .assert_problem(403, None);
    api.history(&bob.token, &aria.aggregate_id)
        .await
        .unwrap()
        .assert_problem(403, None);
    // Players cannot grant themselves experience.
    api.post(
        &format!("/v1/characters/{}/grant-experience", aria.aggregate_id),
        Some(&alice.token),
        &json!({"amount": 1000, "source": "cheat"}),
        &[],
    )
    .await
    .unwrap()
    .assert_problem(403, None);

    // Unknown character: 404.
    let ghost = uuid::Uuid::new_v4().to_string();
    api.cast_skill(&alice.token, &ghost, "strike", &[])
        .await
        .unwrap()
        .assert_problem(404, Some("character-not-found"));
    api.travel(&alice.token, &ghost, "starter_meadow")
        .await
        .unwrap()
        .assert_problem(404, None);
    api.history(&alice.token, &ghost)
        .await
        .unwrap()
        .assert_problem(404, None);
    api.get("/v1/no-such-route", Some(&alice.token))
        .await
        .unwrap()
        .assert_problem(404, None);

    // Rules broken: 422 with the rule's problem type and the offending field.
    let r = api
        .cast_skill(&alice.token, &aria.aggregate_id, "dance", &[])
        .await
        .unwrap();
    r.assert_problem(422, Some("unknown-skill"));
    assert_eq!(r.body["field"], "skill");
    api.cast_skill(&alice.token, &aria.aggregate_id, "fireball", &[])
        .await
        .unwrap()
        .assert_problem(422, Some("skill-not-known"));
    api.travel(&alice.token, &aria.aggregate_id, "chaos_wastes")
        .await
        .unwrap()
        .assert_problem(422, Some("zone-level-too-low"));
    api.travel(&alice.token, &aria.aggregate_id, "whispering_woods")
        .await
        .unwrap()
        .assert_problem(422, Some("already-in-zone"));
    api.travel(&alice.token, &aria.aggregate_id, "narnia")
        .await
        .unwrap()
        .assert_problem(422, Some("unknown-zone"));
    assert_eq!(
        api.history_len(&alice.token, &aria.aggregate_id)
            .await
            .unwrap(),
        appended,
        "rejected commands appended nothing"
    );

    // Idempotency: a retried command returns the first answer and appends nothing.
    let key = [("idempotency-key", "strike-0001")];
    let first = api
        .cast_skill(&alice.token, &aria.aggregate_id, "strike", &key)
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.header("idempotent-replayed"), None);
    appended += first.answer().unwrap().events.len();
    for _ in 0..2 {
        let again = api
            .cast_skill(&alice.token, &aria.aggregate_id, "strike", &key)
            .await
            .unwrap();
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(
            again.body, first.body,
            "a replay answers exactly as the first time"
        );
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(
        api.history_len(&alice.token, &aria.aggregate_id)
            .await
            .unwrap(),
        appended
    );
    // Same key, another request: 422, nothing appended.
    api.cast_skill(&alice.token, &aria.aggregate_id, "power_strike", &key)
        .await
        .unwrap()
        .assert_problem(422, Some("idempotency-key-reused"));
    api.travel(&alice.token, &aria.aggregate_id, "starter_meadow")
        .await
        .unwrap();
    appended += 1;
    // Keys are per account: bob's identical key is a different request of his own.
    let bobs = api
        .create_character(&bob.token, "Bobo", "cleric", &key)
        .await
        .unwrap();
    assert_eq!(bobs.status, 201, "{bobs:?}");
    // A retried creation lands on the same character and appends nothing.
    let ckey = [("idempotency-key", "create-aria-2")];
    let c1 = api
        .create_character(&alice.token, "Aria2", "mage", &ckey)
        .await
        .unwrap();
    let c2 = api
        .create_character(&alice.token, "Aria2", "mage", &ckey)
        .await
        .unwrap();
    assert_eq!(
        (c1.status.as_u16(), c2.status.as_u16()),
        (201, 201),
        "{c1:?} {c2:?}"
    );
    assert_eq!(c1.body, c2.body);
    assert_eq!(c2.header("idempotent-replayed"), Some("true"));
    assert_eq!(c1.header("location"), c2.header("location"));
    let aria2 = c1.answer().unwrap().aggregate_id;
    assert_eq!(api.history_len(&alice.token, &aria2).await.unwrap(), 1);
    api.create_character(&alice.token, "Aria3", "mage", &ckey)
        .await
        .unwrap()
        .assert_problem(422, Some("idempotency-key-reused"));
    for bad_key in ["", &"k".repeat(256), "spaces are not visible ascii"] {
        api.cast_skill(
            &alice.token,
            &aria.aggregate_id,
            "strike",
            &[("idempotency-key", bad_key)],
        )
        .await
        .unwrap()
        .assert_problem(400, Some("invalid-idempotency-key"));
    }

    // History is paged and authorised before it is read.
    let page = api
        .get(
            &format!("/v1/characters/{}/events?limit=2", aria.aggregate_id),
            Some(&alice.token),
        )
        .await
        .unwrap();
    assert_eq!(sequences(&page.body), vec![1, 2], "{page:?}");
    assert_eq!(page.body["next_after"], 2);
    // Each payload is the stored JSON, passed through as JSON, not as a string of it.
    assert_eq!(
        page.body["events"][0]["payload"]["CharacterCreated"]["name"], "Aria",
        "{page:?}"
    );
    let next = api
        .get(
            &format!(
                "/v1/characters/{}/events?limit=2&after=2",
                aria.aggregate_id
            ),
            Some(&alice.token),
        )
        .await
        .unwrap();
    assert_eq!(sequences(&next.body)[0], 3, "{next:?}");
    for query in ["limit=0", "limit=1001", "after=-1", "limit=abc", "bogus=1"] {
        api.get(
            &format!("/v1/characters/{}/events?{query}", aria.aggregate_id),
            Some(&alice.token),
        )
        .await
        .unwrap()
        .assert_problem(400, None);
    }

    // The store holds exactly what the accepted commands appended.
    let events = stack.store().all_events().await.unwrap();
    let per = by_aggregate(&events, "character");
    assert_eq!(per[&aria.aggregate_id].len(), appended);
    assert_eq!(per.len(), 4, "aria, aria2, bob's character and nemo");
    assert_eq!(stack.store().count().await.unwrap() as usize, events.len());
    let history = api
        .get(
            &format!("/v1/characters/{}/events?limit=1000", aria.aggregate_id),
            Some(&alice.token),
        )
        .await
        .unwrap();
    assert_eq!(
        sequences(&history.body),
        (1..=appended as i64).collect::<Vec<_>>()
    );
}

/// The slice through every process: commands, the private sheet and the public profile in the
/// query API (including the consistency-token path), the wallet the rewards process manager
/// opens and fills on level-up, spends and their ledger, both Kafka topics, and a stock Avro
/// consumer reading them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slice_flows_from_commands_to_kafka_and_the_query_api() {
    // The token path waits up to 5 s (default 2 s): room for a loaded CI machine, since the
    // test insists that the very first read after a command is already current.
    let options =
        StackOptions::default().with_env("query-api", "CHAOS__CONSISTENCY__MAX_WAIT_MS", "5000");
    let mut stack = Stack::start(options).await.unwrap();
    let api = stack.commands();
    let query = stack.queries();
    let alice = api.player("alice").await.unwrap();
    let bob = api.player("bob").await.unwrap();

    let openapi = api.get("/openapi.json", None).await.unwrap();
    assert_eq!(openapi.status, 200);
    assert!(openapi.body["paths"]["/v1/characters/{id}/cast-skill"].is_object());
    assert!(openapi.body["paths"]["/v1/wallets/{id}/spend"].is_object());
    assert_eq!(api.get("/docs/", None).await.unwrap().status, 200);

    let created = api
        .create_character(&alice.token, "Merlin", "mage", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    let id = created.aggregate_id.clone();
    // The first event crosses a cold pipeline (schema registration, group join): poll for it.
    let sheet = query.wait_for_version(&id, 1, PIPELINE).await.unwrap();
    assert_eq!(sheet["name"], "Merlin");
    assert_eq!(sheet["level"], 1);
    assert_eq!(sheet["mana"], 120);
    assert_eq!(sheet["zone"], "whispering_woods");

    // Public and private: anyone reads the profile, only the owner (or a game master) the sheet.
    let anonymous = stack.anonymous_queries();
    let profile = anonymous.profile(&id).await.unwrap();
    assert_eq!(profile.status, 200, "{profile:?}");
    assert_eq!(profile.body["name"], "Merlin");
    assert_eq!(profile.body["class"], "mage");
    for private in ["owner", "mana", "xp", "cooldowns", "purse", "skills"] {
        assert!(
            profile.body.get(private).is_none(),
            "{private} in {profile:?}"
        );
    }
    anonymous
        .sheet(&id, None)
        .await
        .unwrap()
        .assert_problem(401, Some("unauthorized"));
    anonymous
        .with_token(&bob.token)
        .sheet(&id, None)
        .await
        .unwrap()
        .assert_problem(403, Some("forbidden"));
    let own = anonymous
        .with_token(&alice.token)
        .sheet(&id, None)
        .await
        .unwrap();
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(own.body["owner"], alice.account_id.as_str());
    anonymous
        .with_token("garbage")
        .profile(&id)
        .await
        .unwrap()
        .assert_problem(401, None);

    // Fireball: mana paid, cooldown set, experience gained; read back through the token.
    let fireball = api
        .cast_skill(&alice.token, &id, "fireball", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    assert_eq!(fireball.events, ["SkillCast", "ExperienceGained"]);
    assert_eq!(fireball.sequence, 3);
    let r = query
        .sheet(&id, Some(&fireball.consistency_token))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["positions"][format!("character/{id}")], 3);
    assert_eq!(r.body["mana"], 90);
    assert_eq!(r.body["xp"], 5);
    assert!(r.body["cooldowns"]["fireball"].is_string(), "{r:?}");
    api.cast_skill(&alice.token, &id, "fireball", &[])
        .await
        .unwrap()
        .assert_problem(422, Some("skill-on-cooldown"));

    // Strikes up to 10 xp: level 2, refilled and raised maxima, and 20 gold from the rewards.
    let mut last = fireball;
    for _ in 0..5 {
        last = api
            .cast_skill(&alice.token, &id, "strike", &[])
            .await
            .unwrap()
            .answer()
            .unwrap();
    }
    assert_eq!(last.events, ["SkillCast", "ExperienceGained", "LeveledUp"]);
    let r = query
        .sheet(&id, Some(&last.consistency_token))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["level"].as_u64(), r.body["xp"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(
        (r.body["max_mana"].as_u64(), r.body["mana"].as_u64()),
        (Some(132), Some(132))
    );
    assert_eq!(
        (r.body["max_hp"].as_u64(), r.body["hp"].as_u64()),
        (Some(88), Some(88))
    );
    // The wallet: opened on creation, 20 gold for level 2 (the rewards process manager).
    let wallet = query.wait_for_wallet(&id, 2, PIPELINE).await.unwrap();
    assert_eq!(wallet["balances"]["gold"], 20, "{wallet}");
    assert_eq!(wallet["owner"], alice.account_id.as_str());
    // Spend with its ledger entry; more than the balance is 422 and changes nothing.
    let spent = api.spend(&alice.token, &id, 15, "potion-1").await.unwrap();
    assert_eq!(spent.status, 200, "{spent:?}");
    let spent = spent.answer().unwrap();
    assert_eq!(spent.events, ["CurrencySpent"]);
    let r = query
        .wallet(&id, Some(&spent.consistency_token))
        .await
        .unwrap();
    assert_eq!(r.body["balances"]["gold"], 5, "{r:?}");
    api.spend(&alice.token, &id, 6, "potion-2")
        .await
        .unwrap()
        .assert_problem(422, Some("insufficient-funds"));
    api.spend(&alice.token, &id, 1, "potion-1")
        .await
        .unwrap()
        .assert_problem(409, Some("duplicate-reference"));
    api.spend(&bob.token, &id, 1, "theft")
        .await
        .unwrap()
        .assert_problem(403, Some("not-wallet-owner"));
    let ledger = query.ledger_all(&id).await.unwrap();
    let kinds: Vec<(&str, i64, &str)> = ledger
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["delta"].as_i64().unwrap_or(0),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("grant", 20, "level-up"), ("spend", -15, "vendor:potion")]
    );
    anonymous
        .with_token(&bob.token)
        .wallet(&id, None)
        .await
        .unwrap()
        .assert_problem(403, None);
    anonymous
        .with_token(&bob.token)
        .ledger(&id, 0, 10)
        .await
        .unwrap()
        .assert_problem(403, None);

    // Travel into a peaceful zone, where offensive skills are refused, and back.
    let meadow = api
        .travel(&alice.token, &id, "starter_meadow")
        .await
        .unwrap()
        .answer()
        .unwrap();
    assert_eq!(meadow.events, ["ZoneEntered"]);
    api.cast_skill(&alice.token, &id, "strike", &[])
        .await
        .unwrap()
        .assert_problem(422, Some("zone-forbids-skill"));
    let r = query
        .sheet(&id, Some(&meadow.consistency_token))
        .await
        .unwrap();
    assert_eq!(r.body["zone"], "starter_meadow", "{r:?}");
    api.travel(&alice.token, &id, "whispering_woods")
        .await
        .unwrap()
        .answer()
        .unwrap();

    // A traced, correlated command: both reach Kafka's headers.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = api
        .cast_skill(
            &alice.token,
            &id,
            "strike",
            &[
                ("traceparent", traceparent),
                ("x-correlation-id", "corr-e2e-1"),
            ],
        )
        .await
        .unwrap()
        .answer()
        .unwrap();
    // An idempotent retry appends nothing, so the sheet's position does not move.
    let key = [("idempotency-key", "e2e-strike")];
    let keyed = api
        .cast_skill(&alice.token, &id, "strike", &key)
        .await
        .unwrap()
        .answer()
        .unwrap();
    let replay = api
        .cast_skill(&alice.token, &id, "strike", &key)
        .await
        .unwrap();
    assert_eq!(replay.answer().unwrap(), keyed);

    // The token path: immediately up to date.
    let r = query
        .sheet(&id, Some(&keyed.consistency_token))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["positions"][format!("character/{id}")].as_u64(),
        Some(keyed.sequence)
    );
    let etag = r.header("etag").expect("an ETag").to_owned();
    // ... and equal to the store folded.
    let events = stack.store().all_events().await.unwrap();
    let characters = by_aggregate(&events, "character");
    assert_eq!(
        characters[&id].len() as u64,
        keyed.sequence,
        "one character so far"
    );
    let state: chaos_domain::Character = fold(&characters[&id]).unwrap();
    let wallets = by_aggregate(&events, "wallet");
    let wallet: chaos_domain::Wallet = fold(&wallets[&id]).unwrap();
    // The wallet's events reach the sheet from their own topic: wait for them too.
    let sheet = query
        .wait_for_positions(
            &id,
            &[
                ("character", keyed.sequence),
                ("wallet", wallets[&id].len() as u64),
            ],
            PIPELINE,
        )
        .await
        .unwrap();
    let problems = chaos_tests::sheet::mismatches(
        &sheet,
        &id,
        state.state().unwrap(),
        keyed.sequence,
        Some((wallet.state().unwrap(), wallets[&id].len() as u64)),
    );
    assert!(problems.is_empty(), "{problems:#?}");
    // The wallet's events were caused by the character's: causation and correlation carried.
    let granted = wallets[&id]
        .iter()
        .find(|e| e.event_type == "CurrencyGranted")
        .expect("the level-up grant");
    let level_up = characters[&id]
        .iter()
        .find(|e| e.event_type == "LeveledUp")
        .unwrap();
    let cause = chaos_eventstore::publish::event_id("character", &id, level_up.sequence);
    assert_eq!(granted.meta_str("causation_id"), Some(cause.to_string()));
    assert_eq!(
        granted.meta_str("correlation_id"),
        level_up.meta_str("correlation_id")
    );
    // A token far ahead: the bounded wait gives up with 503 and Retry-After.
    let ahead = format!("v1.character.{id}.{}", keyed.sequence + 1000);
    let r = query.sheet(&id, Some(&ahead)).await.unwrap();
    r.assert_problem(503, Some("read-model-behind"));
    assert!(r.header("retry-after").is_some(), "{r:?}");
    // A token naming another character is well-formed but cannot be honoured (422); garbage is
    // malformed (400).
    let other = format!("v1.character.{}.1", uuid::Uuid::new_v4());
    query
        .sheet(&id, Some(&other))
        .await
        .unwrap()
        .assert_problem(422, Some("consistency-token-mismatch"));
    query
        .sheet(&id, Some("garbage"))
        .await
        .unwrap()
        .assert_problem(400, None);
    // Unknown characters: 404 problem.
    query
        .sheet(&uuid::Uuid::new_v4().to_string(), None)
        .await
        .unwrap()
        .assert_problem(404, None);
    // The ETag revalidates.
    let revalidated = query
        .get(
            &format!("/v1/characters/{id}/sheet"),
            &[("if-none-match", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(revalidated.status, 304);

    // A second player with a few characters, so Kafka has several keys.
    for (i, class) in ["warrior", "ranger", "cleric"].iter().enumerate() {
        let c = api
            .create_character(&bob.token, &format!("Bob{i}"), class, &[])
            .await
            .unwrap()
            .answer()
            .unwrap();
        for _ in 0..3 {
            api.cast_skill(&bob.token, &c.aggregate_id, "strike", &[])
                .await
                .unwrap()
                .answer()
                .unwrap();
        }
    }
    // Every character gets its wallet (and every level-up its gold) from the process manager.
    let events = stack.store().all_events_settled(PIPELINE).await.unwrap();
    assert_eq!(by_aggregate(&events, "wallet").len(), 4);

    // Every sheet and wallet equals its folded history; Kafka holds every event with key and
    // headers, on both topics.
    assert_eq!(
        sheets_match_store(&query, &events, PIPELINE).await.unwrap(),
        4
    );
    let reports = every_topic_matches_store(
        &stack.services.kafka_bootstrap,
        &stack.services.schema_registry_url,
        &stack.isolation.topic_prefix,
        &events,
        PIPELINE,
    )
    .await
    .unwrap();
    let traced_record = reports["character"]
        .records
        .iter()
        .find(|r| r.id() == (id.clone(), traced.sequence as i64 - 1))
        .expect("the traced SkillCast on Kafka");
    assert_eq!(traced_record.headers["traceparent"], traceparent);
    assert_eq!(traced_record.headers["correlation_id"], "corr-e2e-1");
    assert_eq!(traced_record.headers["event_type"], "SkillCast");

    for (aggregate, topic) in [
        ("character", stack.events_topic()),
        ("wallet", stack.isolation.wallet_topic()),
    ] {
        let mine: Vec<chaos_eventstore::StoredEvent> = events
            .iter()
            .filter(|e| e.aggregate_type == aggregate)
            .cloned()
            .collect();
        stock_avro_consumer_reads_the_topic(
            &stack,
            &topic,
            &mine,
            reports[aggregate].records.len(),
        );
    }
    every_contract_metric_is_exported(&mut stack).await;
}

/// The alert rules and dashboards are written against `deploy/prometheus/metrics.txt`
/// (`deploy/validate.sh` checks them against it); here the running processes must export every
/// name in it, so a renamed or dropped metric cannot silently blind an alert.
async fn every_contract_metric_is_exported(stack: &mut Stack) {
    let contract = std::fs::read_to_string(repo_root().join("deploy/prometheus/metrics.txt"))
        .expect("the metrics contract");
    let names: Vec<&str> = contract
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let endpoints = [
        stack.command_api.base_url(),
        stack.relay(0).base_url(),
        stack.projector().base_url(),
        stack.process_managers().base_url(),
        stack
            .query_api
            .as_ref()
            .expect("the slice runs the query API")
            .base_url(),
    ];
    let http = reqwest::Client::new();
    // Per-partition lag gauges appear with the projector's first lag refresh: wait for it.
    chaos_tests::wait_until(
        "every metric of the contract exported",
        PIPELINE,
        Duration::from_millis(200),
        || async {
            let mut exported = String::new();
            for base in &endpoints {
                let reply = http.get(format!("{base}/metrics")).send().await;
                let text = match reply {
                    Ok(r) => r.text().await.map_err(|e| e.to_string())?,
                    Err(e) => return Err(format!("{base}/metrics: {e}")),
                };
                exported.push_str(&text);
            }
            let missing: Vec<&&str> = names
                .iter()
                .filter(|n| !exported.contains(&format!("# TYPE {n} ")))
                .collect();
            if missing.is_empty() {
                Ok(Some(()))
            } else {
                Err(format!("not exported: {missing:?}"))
            }
        },
    )
    .await
    .unwrap();
}

/// An analyst's stock consumer (Python confluent-kafka + AvroDeserializer + the registry, no
/// code of ours) reads the topic: `tests/python/analyst_consume.py`.
fn stock_avro_consumer_reads_the_topic(
    stack: &Stack,
    topic: &str,
    events: &[chaos_eventstore::StoredEvent],
    messages: usize,
) {
    let python = venv_python();
    assert!(
        python.is_file(),
        "{} missing: `deploy/local/services.sh up` creates the venv (or set CHAOS_VENV)",
        python.display()
    );
    let out = std::process::Command::new(&python)
        .arg(repo_root().join("tests/python/analyst_consume.py"))
        .args(["--bootstrap", &stack.services.kafka_bootstrap])
        .args(["--registry", &stack.services.schema_registry_url])
        .args(["--topic", topic])
        .arg("--from-beginning")
        .args(["--max-messages", &messages.to_string()])
        .args(["--timeout", "20"])
        .output()
        .expect("running analyst_consume.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "analyst_consume.py failed: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), messages, "stderr: {stderr}");
    let mut seen = BTreeSet::new();
    for line in &lines {
        let value = &line["value"];
        let envelope = &value["envelope"];
        let key = line["key"].as_str().expect("a UTF-8 key");
        let headers = &line["headers"];
        assert_eq!(envelope["aggregate_id"], key, "{line}");
        assert_eq!(envelope["event_type"], headers["event_type"], "{line}");
        assert_eq!(envelope["event_id"], headers["event_id"], "{line}");
        let sequence = envelope["sequence"].as_i64().expect("a long sequence");
        assert_eq!(headers["sequence"], sequence.to_string(), "{line}");
        let stored = events
            .iter()
            .find(|e| e.aggregate_id == key && e.sequence == sequence)
            .unwrap_or_else(|| panic!("{line} is not in the store"));
        assert_eq!(envelope["event_type"], stored.event_type.as_str());
        // The record's own fields are the stored event's facts.
        let payload = stored.payload_value();
        let facts = &payload[&stored.event_type];
        for field in [
            "skill",
            "name",
            "class",
            "total_xp",
            "level",
            "to_zone",
            "mana_after",
            "gold_reward",
            "amount",
            "balance_after",
            "reference",
            "currency",
        ] {
            if let Some(want) = facts.get(field) {
                assert_eq!(&value[field], want, "{field} of {line}");
            }
        }
        seen.insert((key.to_owned(), sequence));
    }
    let want: BTreeSet<(String, i64)> = events
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    assert_eq!(seen, want);
}
