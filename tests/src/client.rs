//! HTTP clients for the command API and the query API, as a game client would use them.

use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

/// Any answer: status, headers and the body (JSON when it parses, else a JSON string).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(response: reqwest::Response) -> anyhow::Result<Self> {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `type` (`/problems/insufficient-mana`) of a problem+json answer.
    pub fn problem_type(&self) -> Option<&str> {
        self.body.get("type").and_then(Value::as_str)
    }

    /// Asserts a problem+json answer with this status (and problem type, if given).
    pub fn assert_problem(&self, status: u16, problem: Option<&str>) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status} {problem:?}, got {self:?}"
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "a problem answer: {self:?}"
        );
        assert_eq!(
            self.body.get("status").and_then(Value::as_u64),
            Some(u64::from(status)),
            "problem body carries its status: {self:?}"
        );
        if let Some(p) = problem {
            assert_eq!(
                self.problem_type(),
                Some(format!("/problems/{p}").as_str()),
                "{self:?}"
            );
        }
    }

    /// The parsed command answer of a 2xx.
    pub fn answer(&self) -> anyhow::Result<CommandAnswer> {
        anyhow::ensure!(self.status.is_success(), "command failed: {self:?}");
        CommandAnswer::deserialize(&self.body).with_context(|| format!("{self:?}"))
    }
}

/// A command's answer: `{aggregate_id, sequence, events, consistency_token}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandAnswer {
    pub aggregate_id: String,
    pub sequence: u64,
    pub events: Vec<String>,
    pub consistency_token: String,
}

/// A logged-in player.
#[derive(Debug, Clone)]
pub struct Player {
    pub username: String,
    pub account_id: String,
    pub token: String,
}

/// The command API (`/v1/accounts`, `/v1/sessions`, `/v1/characters/...`).
#[derive(Debug, Clone)]
pub struct CommandApi {
    http: reqwest::Client,
    base: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

fn client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(pool)
        .build()
        .expect("an HTTP client")
}

impl CommandApi {
    pub fn new(base: &str) -> Self {
        Self {
            http: client(64),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs raw bytes with the given content type, bearer token and extra headers.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Reply::from(request.send().await?).await
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.post_raw(
            path,
            token,
            "application/json",
            serde_json::to_vec(body)?,
            headers,
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Reply> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        Reply::from(request.send().await?).await
    }

    pub async fn register(&self, username: &str, password: &str) -> anyhow::Result<Reply> {
        self.post(
            "/v1/accounts",
            None,
            &json!({"username": username, "password": password}),
            &[],
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<Reply> {
        self.post(
            "/v1/sessions",
            None,
            &json!({"username": username, "password": password}),
            &[],
        )
        .await
    }

    /// Registers `username` (with [`PASSWORD`]) and logs in.
    pub async fn player(&self, username: &str) -> anyhow::Result<Player> {
        let r = self.register(username, PASSWORD).await?;
        anyhow::ensure!(r.status == StatusCode::CREATED, "register: {r:?}");
        let r = self.login(username, PASSWORD).await?;
        anyhow::ensure!(r.status == StatusCode::OK, "login: {r:?}");
        let field = |name: &str| {
            r.body
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("login answer without {name}: {r:?}"))
        };
        Ok(Player {
            username: username.to_owned(),
            account_id: field("account_id")?,
            token: field("access_token")?,
        })
    }

    pub async fn create_character(
        &self,
        token: &str,
        name: &str,
        class: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.post(
            "/v1/characters",
            Some(token),
            &json!({"name": name, "class": class}),
            headers,
        )
        .await
    }

    pub async fn cast_skill(
        &self,
        token: &str,
        id: &str,
        skill: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.post(
            &format!("/v1/characters/{id}/cast-skill"),
            Some(token),
            &json!({"skill": skill}),
            headers,
        )
        .await
    }

    pub async fn travel(&self, token: &str, id: &str, zone: &str) -> anyhow::Result<Reply> {
        self.post(
            &format!("/v1/characters/{id}/travel"),
            Some(token),
            &json!({"zone": zone}),
            &[],
        )
        .await
    }

    /// The character's history from the event store (`GET /v1/characters/{id}/events`).
    pub async fn history(&self, token: &str, id: &str) -> anyhow::Result<Reply> {
        self.get(&format!("/v1/characters/{id}/events"), Some(token))
            .await
    }

    /// The number of events in the character's history (asserting the read succeeds; one
    /// page of up to 1000).
    pub async fn history_len(&self, token: &str, id: &str) -> anyhow::Result<usize> {
        let r = self
            .get(
                &format!("/v1/characters/{id}/events?limit=1000"),
                Some(token),
            )
            .await?;
        anyhow::ensure!(r.status == StatusCode::OK, "history: {r:?}");
        r.body
            .get("events")
            .and_then(Value::as_array)
            .map(Vec::len)
            .with_context(|| format!("history is not a page: {r:?}"))
    }

    /// Spends from a wallet.
    pub async fn spend(
        &self,
        token: &str,
        wallet: &str,
        amount: u64,
        reference: &str,
    ) -> anyhow::Result<Reply> {
        self.post(
            &format!("/v1/wallets/{wallet}/spend"),
            Some(token),
            &json!({"currency": "gold", "amount": amount, "sink": "vendor:potion", "reference": reference}),
            &[],
        )
        .await
    }
}

/// The query API. Private reads (sheets, wallets, ledgers) carry `token` (a player's, or a
/// game master's to read anyone's).
#[derive(Debug, Clone)]
pub struct QueryApi {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl QueryApi {
    pub fn new(base: &str) -> Self {
        Self {
            http: client(64),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// The same API, reading as the bearer of `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` with the bearer token (if any) and optional headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Reply::from(request.send().await?).await
    }

    /// The public profile.
    pub async fn profile(&self, id: &str) -> anyhow::Result<Reply> {
        self.get(&format!("/v1/characters/{id}"), &[]).await
    }

    /// The private sheet, optionally waiting on a consistency token.
    pub async fn sheet(&self, id: &str, consistency_token: Option<&str>) -> anyhow::Result<Reply> {
        let headers: Vec<(&str, &str)> = consistency_token
            .map(|t| ("Consistency-Token", t))
            .into_iter()
            .collect();
        self.get(&format!("/v1/characters/{id}/sheet"), &headers)
            .await
    }

    /// The wallet, optionally waiting on a consistency token.
    pub async fn wallet(&self, id: &str, consistency_token: Option<&str>) -> anyhow::Result<Reply> {
        let headers: Vec<(&str, &str)> = consistency_token
            .map(|t| ("Consistency-Token", t))
            .into_iter()
            .collect();
        self.get(&format!("/v1/wallets/{id}"), &headers).await
    }

    /// One ledger page.
    pub async fn ledger(&self, id: &str, after: u64, limit: usize) -> anyhow::Result<Reply> {
        self.get(
            &format!("/v1/wallets/{id}/ledger?after={after}&limit={limit}"),
            &[],
        )
        .await
    }

    /// Every ledger entry, page by page.
    pub async fn ledger_all(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let r = self.ledger(id, after, 100).await?;
            anyhow::ensure!(r.status == StatusCode::OK, "ledger {id}: {r:?}");
            if let Some(page) = r.body.get("entries").and_then(Value::as_array) {
                entries.extend(page.iter().cloned());
            }
            match r.body.get("next_after").and_then(Value::as_u64) {
                Some(next) => after = next,
                None => return Ok(entries),
            }
        }
    }

    /// Polls (without a consistency token) until the sheet has applied at least `sequence`
    /// of each named source stream (`("character", n)`, `("wallet", m)`).
    pub async fn wait_for_positions(
        &self,
        id: &str,
        wanted: &[(&str, u64)],
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        crate::wait_until(
            &format!("sheet {id} at {wanted:?}"),
            timeout,
            Duration::from_millis(50),
            || async {
                let r = self.sheet(id, None).await.map_err(|e| e.to_string())?;
                if r.status != StatusCode::OK {
                    return Err(format!("{} {}", r.status, r.body));
                }
                let behind: Vec<String> = wanted
                    .iter()
                    .filter_map(|(source, sequence)| {
                        let at = r
                            .body
                            .get("positions")
                            .and_then(|p| p.get(format!("{source}/{id}")))
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        (at < *sequence).then(|| format!("{source} at {at}"))
                    })
                    .collect();
                if behind.is_empty() {
                    Ok(Some(r.body))
                } else {
                    Err(behind.join(", "))
                }
            },
        )
        .await
    }

    /// Polls until the character's sheet has applied its event `sequence`.
    pub async fn wait_for_version(
        &self,
        id: &str,
        sequence: u64,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.wait_for_positions(id, &[("character", sequence)], timeout)
            .await
    }

    /// Polls until the wallet read model has applied its event `sequence`.
    pub async fn wait_for_wallet(
        &self,
        id: &str,
        sequence: u64,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        crate::wait_until(
            &format!("wallet {id} at version >= {sequence}"),
            timeout,
            Duration::from_millis(50),
            || async {
                let r = self.wallet(id, None).await.map_err(|e| e.to_string())?;
                if r.status != StatusCode::OK {
                    return Err(format!("{} {}", r.status, r.body));
                }
                let version = r.body.get("version").and_then(Value::as_u64).unwrap_or(0);
                if version >= sequence {
                    Ok(Some(r.body))
                } else {
                    Err(format!("version {version}"))
                }
            },
        )
        .await
    }
}
