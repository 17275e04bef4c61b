//! Least privilege on MongoDB, as deployed: `projector mongo-users` (the deploy's `mongo-users`
//! Job) creates the read models' users with an administrator's URL, `projector mongo` then
//! writes as `chaos_projector` (`readWrite`) and the query API reads as `chaos_reader` (`read`),
//! and a command reaches a timeline through them. The users are checked too: the reader cannot
//! write, neither can write another database, and a second run updates the passwords.
//!
//! It runs its own SecantusDB (the MongoDB-wire test server, `$CHAOS_VENV/bin/secantusd-py`)
//! with `--auth` on a free port: its first user is created without authentication, then it is
//! restarted with it, as its documentation says.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chaos_tests::process::{binary, free_port};
use chaos_tests::{wait_until, Stack, StackOptions};
use mongodb::bson::doc;
use mongodb::Client;
use tokio::process::{Child, Command};

const ADMIN: (&str, &str) = ("admin", "admin-secret");
const DATABASE: &str = "chaos_users";

/// A SecantusDB process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start(storage: &Path, port: u16, auth: bool) -> Self {
        let venv = std::env::var("CHAOS_VENV")
            .expect("CHAOS_VENV is not set: eval \"$(deploy/local/services.sh env)\" exports it");
        let config = storage.with_extension("toml");
        std::fs::write(&config, "# every setting is on the command line\n").unwrap();
        let mut command = Command::new(PathBuf::from(venv).join("bin/secantusd-py"));
        command
            .arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(storage)
            // Durable at each commit: the first user outlives the restart whatever the stop.
            .arg("--sync-on-commit")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if auth {
            command.arg("--auth");
        }
        let server = Self {
            child: command.spawn().expect("secantusd-py starts"),
            port,
        };
        // The administrator exists once auth is on; before, nobody does.
        let url = if auth {
            server.url(ADMIN.0, ADMIN.1)
        } else {
            format!("mongodb://127.0.0.1:{port}/?directConnection=true")
        };
        wait_until(
            "the MongoDB-wire test server answers",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let url = url.clone();
                async move {
                    let client = Client::with_uri_str(&url)
                        .await
                        .map_err(|e| e.to_string())?;
                    client
                        .database("admin")
                        .run_command(doc! { "ping": 1 })
                        .await
                        .map(|_| Some(()))
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await
        .unwrap();
        server
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!(
            "mongodb://{user}:{password}@127.0.0.1:{}/{DATABASE}?directConnection=true&authSource=admin\
             &serverSelectionTimeoutMS=5000",
            self.port
        )
    }

    /// SIGTERM, as a service manager stops it, and waits for the exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the test server stops within 30 s")
            .unwrap();
    }
}

/// `projector mongo-users` against `server` as the administrator; what it logged it did to each
/// user: `(user, role, outcome)`.
async fn provision(
    server: &Server,
    projector: &str,
    reader: &str,
) -> Vec<(String, String, String)> {
    let mut command = Command::new(binary("projector").unwrap());
    // Its settings are these alone, whatever the test's own environment holds.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CHAOS__")) {
        command.env_remove(name);
    }
    let output = command
        .arg("mongo-users")
        .env("CHAOS__MONGO__URL", server.url(ADMIN.0, ADMIN.1))
        // The users' roles are on the database the services use.
        .env("CHAOS__MONGO__DATABASE", DATABASE)
        .env("CHAOS_MONGO_PROJECTOR_PASSWORD", projector)
        .env("CHAOS_MONGO_READER_PASSWORD", reader)
        .env("CHAOS__TELEMETRY__JSON", "true")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "projector mongo-users failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|log| log.get("fields").cloned().unwrap_or(log))
        .filter(|fields| fields["message"] == "MongoDB user")
        .map(|fields| {
            let field = |name: &str| fields[name].as_str().unwrap_or_default().to_owned();
            (field("user"), field("role"), field("outcome"))
        })
        .collect()
}

fn outcomes(of: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    of.iter()
        .map(|(u, r, o)| ((*u).to_owned(), (*r).to_owned(), (*o).to_owned()))
        .collect()
}

/// The error code of an insert into `database` as `user`, or `None` if it went in.
async fn insert_refused(url: &str, database: &str) -> Option<i32> {
    let client = Client::with_uri_str(url).await.unwrap();
    match client
        .database(database)
        .collection::<mongodb::bson::Document>("probe")
        .insert_one(doc! { "probe": true })
        .await
    {
        Ok(_) => None,
        Err(e) => match *e.kind {
            mongodb::error::ErrorKind::Command(c) => Some(c.code),
            mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
                Some(w.code)
            }
            other => panic!("not a refusal: {other:?}"),
        },
    }
}

async fn can_read(url: &str) -> bool {
    let Ok(client) = Client::with_uri_str(url).await else {
        return false;
    };
    client
        .database(DATABASE)
        .collection::<mongodb::bson::Document>("docs")
        .find_one(doc! {})
        .await
        .is_ok()
}

/// MongoDB's "Unauthorized".
const UNAUTHORIZED: i32 = 13;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_models_run_with_least_privilege_users() {
    let dir = tempfile_dir();
    let storage = dir.join("data");
    let port = free_port();

    // The first user, made before authentication is on.
    let server = Server::start(&storage, port, false).await;
    Client::with_uri_str(format!("mongodb://127.0.0.1:{port}/?directConnection=true"))
        .await
        .unwrap()
        .database("admin")
        .run_command(doc! {
            "createUser": ADMIN.0, "pwd": ADMIN.1,
            "roles": [{ "role": "root", "db": "admin" }],
        })
        .await
        .unwrap();
    server.stop().await;
    let server = Server::start(&storage, port, true).await;

    let created = provision(&server, "projector-1", "reader-1").await;
    assert_eq!(
        created,
        outcomes(&[
            ("chaos_projector", "readWrite", "created"),
            ("chaos_reader", "read", "created"),
        ])
    );

    // The services as deployed: the projector and the query API each with its own user.
    let stack = Stack::start(
        StackOptions {
            mongo: true,
            ..StackOptions::default()
        }
        .with_env(
            "projector",
            "CHAOS__MONGO__URL",
            &server.url("chaos_projector", "projector-1"),
        )
        .with_env("projector", "CHAOS__MONGO__DATABASE", DATABASE)
        .with_env(
            "query-api",
            "CHAOS__MONGO__URL",
            &server.url("chaos_reader", "reader-1"),
        )
        .with_env("query-api", "CHAOS__MONGO__DATABASE", DATABASE),
    )
    .await
    .unwrap();
    let api = stack.commands();
    let owner = api.player("keeper").await.unwrap();
    let created = api
        .create_character(&owner.token, "Warden", "warrior", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    let queries = stack.anonymous_queries().with_token(&owner.token);
    let path = format!("/v1/characters/{}/timeline", created.aggregate_id);
    let token = [("Consistency-Token", created.consistency_token.as_str())];
    // 503 (read-model-behind) while the projector catches up after its start; then the page.
    let page = wait_until(
        "the timeline, written and read by the least-privilege users",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let page = queries
                .get(&path, &token)
                .await
                .map_err(|e| e.to_string())?;
            if page.status == 200 {
                Ok(Some(page))
            } else {
                Err(format!("{page:?}"))
            }
        },
    )
    .await
    .unwrap();
    assert!(
        page.body["entries"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["event_type"] == "CharacterCreated")),
        "{page:?}"
    );
    drop(stack);

    // What each user may do.
    let reader = server.url("chaos_reader", "reader-1");
    let projector = server.url("chaos_projector", "projector-1");
    assert!(can_read(&reader).await);
    assert_eq!(insert_refused(&reader, DATABASE).await, Some(UNAUTHORIZED));
    assert_eq!(insert_refused(&projector, DATABASE).await, None);
    assert_eq!(
        insert_refused(&projector, "admin").await,
        Some(UNAUTHORIZED)
    );
    assert_eq!(
        insert_refused(&projector, "other").await,
        Some(UNAUTHORIZED)
    );

    // Every deploy runs it again: new passwords replace the old ones.
    let updated = provision(&server, "projector-2", "reader-2").await;
    assert_eq!(
        updated,
        outcomes(&[
            ("chaos_projector", "readWrite", "updated"),
            ("chaos_reader", "read", "updated"),
        ])
    );
    assert!(!can_read(&reader).await, "the old password still works");
    assert!(can_read(&server.url("chaos_reader", "reader-2")).await);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chaos-mongo-users-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
