//! The embedded mode, end to end, through the real `chaos` binary: the README walkthrough runs
//! exactly as written (ports aside), the process is killed and restarted in the middle of play,
//! and nothing acknowledged is lost.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Backend {
    child: Child,
    commands: String,
    queries: String,
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `chaos` on `data_dir` and waits until both APIs answer; returns it and the time from
/// spawn to the first request served.
async fn start(data_dir: &Path, ports: (u16, u16)) -> (Backend, Duration) {
    let spawned = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .arg("--data-dir")
        .arg(data_dir)
        .env("CHAOS__COMMAND_API__BIND", format!("127.0.0.1:{}", ports.0))
        .env("CHAOS__QUERY_API__BIND", format!("127.0.0.1:{}", ports.1))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn chaos");
    let backend = Backend {
        child,
        commands: format!("http://127.0.0.1:{}", ports.0),
        queries: format!("http://127.0.0.1:{}", ports.1),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for url in [
        format!("{}/readyz", backend.commands),
        format!("{}/readyz", backend.queries),
    ] {
        loop {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(Instant::now() < deadline, "{url} never became ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let elapsed = spawned.elapsed();
    (backend, elapsed)
}

fn readme_walkthrough(ports: (u16, u16)) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("walkthrough start marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    let block = &readme[start..end];
    let script = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .map(|(body, _)| body)
        .expect("a sh block between the markers");
    script
        .replace("localhost:8080", &format!("localhost:{}", ports.0))
        .replace("localhost:8082", &format!("localhost:{}", ports.1))
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chaos-embedded-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn readme_walkthrough_survives_a_restart_without_losing_anything() {
    let dir = temp_dir();
    let ports = (free_port(), free_port());
    let (backend, startup) = start(&dir, ports).await;
    println!(
        "startup to first request served (empty data dir): {} ms",
        startup.as_millis()
    );

    // The README, exactly as written, against this backend.
    let script = format!(
        "set -euo pipefail\n{}\nprintf \"\\nCHARACTER=%s\\nTOKEN=%s\\n\" \"$CHARACTER\" \"$TOKEN\"",
        readme_walkthrough(ports)
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let var = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not printed: {stdout}"))
            .to_owned()
    };
    let (character, token) = (var("CHARACTER"), var("TOKEN"));
    assert!(
        stdout.contains("\"xp\":5"),
        "the sheet shows the fireball's experience: {stdout}"
    );
    assert!(
        stdout.contains("\"event_type\":\"SkillCast\""),
        "history lists the cast: {stdout}"
    );

    // Keep playing, then kill -9 in the middle and restart on the same data directory.
    let client = reqwest::Client::new();
    let cast = |base: String| {
        let client = client.clone();
        let (token, character) = (token.clone(), character.clone());
        async move {
            let r = client
                .post(format!("{base}/v1/characters/{character}/cast-skill"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "skill": "strike" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["sequence"]
                .as_u64()
                .unwrap()
        }
    };
    let mut last = 0;
    for _ in 0..20 {
        last = cast(backend.commands.clone()).await;
    }
    drop(backend); // SIGKILL: no graceful shutdown
    let (backend, restart) = start(&dir, ports).await;
    println!(
        "restart with {last} events for the character: {} ms",
        restart.as_millis()
    );

    // The read models resumed from their checkpoint in the data directory: the restart applied
    // at most the events the kill caught between the append and the checkpoint, not the history.
    let metrics = client
        .get(format!("{}/metrics", backend.commands))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let applied_at_start: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("chaos_projector_events_applied_total{projection=\"views\"} "))
        .unwrap_or_else(|| panic!("no views counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(
        applied_at_start < last,
        "{applied_at_start} events applied at restart: the read models were rebuilt, not resumed"
    );

    let sheet: Value = client
        .get(format!(
            "{}/v1/characters/{character}/sheet",
            backend.queries
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sheet["positions"][format!("character/{character}")].as_u64(),
        Some(last),
        "the rebuilt sheet has every acknowledged event: {sheet}"
    );
    let wallet_events = sheet["positions"][format!("wallet/{character}")]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        sheet["events_applied"].as_u64(),
        Some(last + wallet_events),
        "no event applied twice"
    );
    // 1 create + fireball (cast, xp) + 20 strikes (cast, xp each) + level 2 at 10 xp
    // and level 3 at 30 xp: 5 + 20 = 25 xp.
    assert_eq!(sheet["xp"].as_u64(), Some(25));
    assert_eq!(sheet["level"].as_u64(), Some(2));
    let history: Value = client
        .get(format!(
            "{}/v1/characters/{character}/events?limit=1000",
            backend.commands
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["events"].as_array().unwrap().len() as u64, last);
    // Still accepting commands after the restart, continuing the same sequence.
    assert_eq!(cast(backend.commands.clone()).await, last + 2);

    // The level-up's gold reached the wallet exactly once (the embedded process manager resumed
    // from its checkpoint after the kill): level 2 grants 20.
    let wallet = wait_for(
        &client,
        &format!("{}/v1/wallets/{character}", backend.queries),
        &token,
        |w| w["balances"]["gold"].as_u64() == Some(20),
    )
    .await;
    assert_eq!(wallet["ledger_entries"], 1, "{wallet}");
    // Spend with its ledger entry; more than the balance is refused and changes nothing.
    let spend = |amount: u64, reference: &str| {
        client
            .post(format!("{}/v1/wallets/{character}/spend", backend.commands))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "currency": "gold", "amount": amount, "sink": "vendor:potion", "reference": reference
            }))
            .send()
    };
    let spent = spend(15, "potion-1").await.unwrap();
    assert_eq!(spent.status(), 200);
    let too_much = spend(6, "potion-2").await.unwrap();
    assert_eq!(too_much.status(), 422);
    let problem: Value = too_much.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/insufficient-funds");
    let ledger = wait_for(
        &client,
        &format!("{}/v1/wallets/{character}/ledger", backend.queries),
        &token,
        |l| l["entries"].as_array().is_some_and(|e| e.len() == 2),
    )
    .await;
    assert_eq!(ledger["entries"][1]["delta"], -15);
    assert_eq!(ledger["entries"][1]["balance_after"], 5);
    drop(backend);
    let _ = std::fs::remove_dir_all(dir);
}

/// Polls `url` (with `token`) until `done` holds for its JSON body.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(url).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never got there: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
