//! Where views live in a store. Every key of one document shares the hash tag `{<doc id>}`, so a
//! document and its logs are written atomically even on Redis Cluster.
//!
//! `<prefix><model version>:<view>:{<doc id>}` for documents and
//! `<prefix><model version>:<view>:<log>:{<doc id>}` for logs, e.g. `chaos:v1:sheet:{…}` and
//! `chaos:v1:wallet:ledger:{…}`; boards (leaderboards, presence) are
//! `<prefix><model version>:<view>:board:<board>`, shared by all documents of the view. The model version lets a rebuild write a new version beside the
//! one being served, then switch readers over. Do not change the layout without a rebuild.

/// The key layout of one deployment (prefix) and read-model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub prefix: String,
    pub model_version: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>, model_version: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            model_version: model_version.into(),
        }
    }

    pub fn doc(&self, view: &str, id: &str) -> String {
        format!("{}{}:{view}:{{{id}}}", self.prefix, self.model_version)
    }

    pub fn log(&self, view: &str, log: &str, id: &str) -> String {
        format!(
            "{}{}:{view}:{log}:{{{id}}}",
            self.prefix, self.model_version
        )
    }

    /// A board (leaderboard, presence list) of a view: global, no hash tag, never ending in `}`.
    pub fn board(&self, view: &str, board: &str) -> String {
        format!("{}{}:{view}:board:{board}", self.prefix, self.model_version)
    }

    /// What every key of this layout starts with.
    pub fn root(&self) -> String {
        format!("{}{}:", self.prefix, self.model_version)
    }

    /// A glob matching every key of this layout (for rebuild clean-up).
    pub fn pattern(&self) -> String {
        format!("{}{}:*", self.prefix, self.model_version)
    }
}
