//! The player core in the embedded mode: the same scenario as over the distributed pipeline,
//! against one `chaos` process on a fresh data directory.

use std::process::{Command, Stdio};
use std::time::Duration;

use chaos_tests::client::{CommandApi, QueryApi};
use chaos_tests::process::{binary, free_port};
use chaos_tests::scenario::player_core;
use chaos_tests::wait::wait_until;

struct Chaos(std::process::Child, std::path::PathBuf);

impl Drop for Chaos {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_player_core_plays_the_same_in_the_embedded_mode() {
    let dir = std::env::temp_dir().join(format!("chaos-embedded-{}", uuid::Uuid::new_v4()));
    let (commands, queries) = (free_port(), free_port());
    let secret = format!("embedded-test-{}", uuid::Uuid::new_v4());
    let child = Command::new(binary("chaos").unwrap())
        .arg("--data-dir")
        .arg(&dir)
        .env("CHAOS__COMMAND_API__BIND", format!("127.0.0.1:{commands}"))
        .env("CHAOS__QUERY_API__BIND", format!("127.0.0.1:{queries}"))
        .env("CHAOS__AUTH__JWT_SECRET", &secret)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _chaos = Chaos(child, dir.clone());
    let api = CommandApi::new(&format!("http://127.0.0.1:{commands}"));
    let read = QueryApi::new(&format!("http://127.0.0.1:{queries}"));
    wait_until(
        "the embedded backend ready",
        Duration::from_secs(90),
        Duration::from_millis(20),
        || {
            let read = read.clone();
            async move {
                match read.get("/readyz", &[]).await {
                    Ok(r) if r.status == 200 => Ok(Some(())),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let gm = chaos_tests::stack::sign_token_with_roles(
        &secret,
        &uuid::Uuid::new_v4().to_string(),
        &["player", "game-master"],
        now,
        now + 3600,
    );
    player_core(&api, &read, &gm, "Em").await.unwrap();
}
