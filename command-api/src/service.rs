//! Command handling: idempotency, load, decide, append, retry on conflict.

use std::collections::HashMap;
use std::sync::Arc;

use chaos_domain::character::AGGREGATE_TYPE;
use chaos_domain::{AccountId, CharacterCommand, CharacterError, CharacterServices};
use chaos_eventstore::pg::{
    META_ACCOUNT_ID, META_CAUSATION_ID, META_CORRELATION_ID, META_IDEMPOTENCY_KEY,
    META_OCCURRED_AT, META_REQUEST_HASH, META_TRACEPARENT,
};
use chaos_eventstore::StoredEvent;
use chaos_platform::consistency::ConsistencyToken;
use chrono::SecondsFormat;
use prometheus::IntCounterVec;

use crate::names::{NameError, NameRegistry};
use crate::store::{CharacterStore, StoreError};

/// How often a command is re-decided after losing an optimistic-concurrency race.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rule(#[from] CharacterError),
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the aggregate kept changing under the command")]
    Conflict,
    #[error("the name {0} is taken")]
    NameTaken(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Who is asking, and the request's tracing context, recorded as event metadata.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    pub account: Option<AccountId>,
    /// The client's `Idempotency-Key`, unscoped.
    pub idempotency_key: Option<String>,
    /// Hash of the request (route + body): a replayed key with another request is refused.
    pub request_hash: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub traceparent: Option<String>,
}

impl CommandContext {
    fn scoped_key(&self) -> Option<String> {
        let account = self.account.map(|a| a.to_string()).unwrap_or_default();
        self.idempotency_key
            .as_ref()
            .map(|k| format!("{account}:{k}"))
    }
}

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CommandOutcome {
    pub aggregate_id: String,
    /// The sequence of the last event the command appended.
    pub sequence: u64,
    /// The types of the events appended, in order.
    pub events: Vec<String>,
    /// Send back as `Consistency-Token` on a query to read at least this state.
    pub consistency_token: String,
    /// True when this answer is the replay of an earlier identical request.
    #[serde(skip)]
    pub replayed: bool,
}

impl CommandOutcome {
    fn new(aggregate_id: &str, sequence: u64, events: Vec<String>, replayed: bool) -> Self {
        let token = ConsistencyToken {
            aggregate_type: AGGREGATE_TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            sequence,
        };
        Self {
            aggregate_id: aggregate_id.to_owned(),
            sequence,
            events,
            consistency_token: token.to_string(),
            replayed,
        }
    }

    fn from_stored(events: &[StoredEvent]) -> Option<Self> {
        let last = events.last()?;
        let types = events.iter().map(|e| e.event_type.clone()).collect();
        let sequence = u64::try_from(last.sequence).ok()?;
        Some(Self::new(&last.aggregate_id, sequence, types, true))
    }
}

#[derive(Debug, Clone)]
pub struct CommandService {
    store: Arc<dyn CharacterStore>,
    names: Arc<dyn NameRegistry>,
    services: CharacterServices,
    appended: IntCounterVec,
}

impl CommandService {
    pub fn new(
        store: Arc<dyn CharacterStore>,
        names: Arc<dyn NameRegistry>,
        services: CharacterServices,
        appended: IntCounterVec,
    ) -> Self {
        Self {
            store,
            names,
            services,
            appended,
        }
    }

    pub fn store(&self) -> &Arc<dyn CharacterStore> {
        &self.store
    }

    /// Executes `command` against character `id`, exactly once per idempotency key.
    #[tracing::instrument(skip_all, fields(aggregate_id = %id))]
    pub async fn execute(
        &self,
        id: &str,
        command: CharacterCommand,
        context: &CommandContext,
    ) -> Result<CommandOutcome, CommandError> {
        if let Some(prior) = self.prior_answer(context).await? {
            return Ok(prior);
        }
        let metadata = self.metadata(context);
        for _ in 0..CONFLICT_RETRIES {
            let (state, version) = self.store.load(id).await.map_err(CommandError::Store)?;
            let now = self.services.clock.now();
            let events = state.decide(
                command.clone(),
                &self.services.content,
                now,
                self.services.dice.as_ref(),
            )?;
            if let CharacterCommand::Create { name, .. } = &command {
                // Names are unique game-wide: reserved once the rules have accepted the
                // creation, before it is appended.
                self.names.reserve(name, id).await.map_err(|e| match e {
                    NameError::Taken(name) => CommandError::NameTaken(name),
                    NameError::Unavailable(d) => CommandError::Store(StoreError::Unavailable(d)),
                })?;
            }
            let types: Vec<String> = events.iter().map(|e| e.type_name().to_owned()).collect();
            let mut metadata = metadata.clone();
            metadata.insert(
                META_OCCURRED_AT.into(),
                now.to_rfc3339_opts(SecondsFormat::Millis, true),
            );
            match self
                .store
                .append(id, version, &state, events, metadata)
                .await
            {
                Ok(sequences) => {
                    self.appended
                        .with_label_values(&[AGGREGATE_TYPE])
                        .inc_by(sequences.len() as u64);
                    let last = sequences.last().copied().unwrap_or(version) as u64;
                    return Ok(CommandOutcome::new(id, last, types, false));
                }
                Err(StoreError::Conflict) => {
                    // A concurrent retry of this very request may have won the race.
                    if let Some(prior) = self.prior_answer(context).await? {
                        return Ok(prior);
                    }
                    tracing::debug!("optimistic concurrency conflict, deciding again");
                }
                Err(e) => return Err(CommandError::Store(e)),
            }
        }
        Err(CommandError::Conflict)
    }

    async fn prior_answer(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError> {
        let Some(key) = context.scoped_key() else {
            return Ok(None);
        };
        let prior = self
            .store
            .by_idempotency_key(&key)
            .await
            .map_err(CommandError::Store)?;
        let Some(first) = prior.first() else {
            return Ok(None);
        };
        if first.meta_str(META_REQUEST_HASH) != context.request_hash.as_deref() {
            return Err(CommandError::IdempotencyKeyReused);
        }
        // Only the events of the first aggregate the key touched form the answer.
        let same: Vec<StoredEvent> = prior
            .iter()
            .filter(|e| e.aggregate_id == first.aggregate_id)
            .cloned()
            .collect();
        Ok(CommandOutcome::from_stored(&same))
    }

    fn metadata(&self, context: &CommandContext) -> HashMap<String, String> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put(META_ACCOUNT_ID, context.account.map(|a| a.to_string()));
        put(META_IDEMPOTENCY_KEY, context.scoped_key());
        put(META_REQUEST_HASH, context.request_hash.clone());
        put(META_CORRELATION_ID, context.correlation_id.clone());
        put(META_CAUSATION_ID, context.causation_id.clone());
        put(META_TRACEPARENT, context.traceparent.clone());
        m
    }
}
