//! Reading content files: from the copies compiled into the binary, or from a directory. Every
//! error names the file, and where it can the entry and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The content files, in the order they are read. A directory given to
/// [`super::Content::from_dir`] must hold all of them.
pub const FILES: [&str; 8] = [
    "manifest.json",
    "classes.json",
    "skills.json",
    "zones.json",
    "items.json",
    "recipes.json",
    "npcs.json",
    "progression.json",
];

/// The shipped copy of a content file (`domain/content/<file>`), compiled in.
pub fn builtin_file(file: &str) -> Option<&'static str> {
    Some(match file {
        "manifest.json" => include_str!("../../content/manifest.json"),
        "classes.json" => include_str!("../../content/classes.json"),
        "skills.json" => include_str!("../../content/skills.json"),
        "zones.json" => include_str!("../../content/zones.json"),
        "items.json" => include_str!("../../content/items.json"),
        "recipes.json" => include_str!("../../content/recipes.json"),
        "npcs.json" => include_str!("../../content/npcs.json"),
        "progression.json" => include_str!("../../content/progression.json"),
        _ => return None,
    })
}

/// What is wrong with the content, and where: `items.json: item "health_potion": field
/// "stack_size": must be at least 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: &'static str,
    /// The entry's kind (`item`, `zone`, ...) and id, for files that are maps of entries.
    pub entry: Option<(&'static str, String)>,
    /// The field at fault, dotted for nested fields (`equip.required_level`).
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some((kind, id)) = &self.entry {
            write!(f, "{kind} \"{id}\": ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field \"{field}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Content that cannot be loaded. Start-up stops on it.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{file}: cannot read {}: {source}", path.display())]
    Io {
        file: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Syntax {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(Problem),
}

impl ContentError {
    /// The problem, for an `Invalid` error.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid(p) => Some(p),
            _ => None,
        }
    }
}

/// Reads `dir/<file>` for every file of [`FILES`].
pub(super) fn read_dir_file(dir: &Path, file: &'static str) -> Result<String, ContentError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| ContentError::Io { file, path, source })
}

pub(super) fn builtin_text(file: &'static str) -> Result<String, ContentError> {
    builtin_file(file)
        .map(str::to_owned)
        .ok_or_else(|| ContentError::Io {
            file,
            path: PathBuf::from(file),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such builtin file"),
        })
}

fn syntax(file: &'static str, text: &str) -> Result<Value, ContentError> {
    serde_json::from_str(text).map_err(|source| ContentError::Syntax { file, source })
}

/// Turns a serde error at `path` into a problem naming the field. serde reports a missing or
/// unknown field at its parent's path with the name in backquotes; the name is lifted out.
fn field_problem(
    file: &'static str,
    entry: Option<(&'static str, String)>,
    err: serde_path_to_error::Error<serde_json::Error>,
) -> ContentError {
    let mut path: Vec<String> = err.path().iter().map(|s| s.to_string()).collect();
    let message = err.inner().to_string();
    // serde_json appends " at line L column C"; positions of a re-read value mean nothing.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let message = match named {
        Some(name) => {
            let what = if message.starts_with("missing") {
                "is missing".to_owned()
            } else {
                format!(
                    "is not a known field ({})",
                    message.trim_start_matches("unknown field ")
                )
            };
            if path.last() != Some(&name) {
                path.push(name);
            }
            what
        }
        None => message,
    };
    ContentError::Invalid(Problem {
        file,
        entry,
        field: (!path.is_empty()).then(|| path.join(".")),
        message,
    })
}

/// A file holding one record (the manifest, progression).
pub(super) fn parse_record<T: DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<T, ContentError> {
    let value = syntax(file, text)?;
    serde_path_to_error::deserialize(value).map_err(|e| field_problem(file, None, e))
}

/// A file holding a map of entries by id (`{"wolf": {...}, ...}`), each parsed on its own so
/// an error names its entry.
pub(super) fn parse_entries<T: DeserializeOwned>(
    file: &'static str,
    kind: &'static str,
    text: &str,
) -> Result<BTreeMap<String, T>, ContentError> {
    let Value::Object(entries) = syntax(file, text)? else {
        return Err(ContentError::Invalid(Problem {
            file,
            entry: None,
            field: None,
            message: format!("must be an object of {kind} entries by id"),
        }));
    };
    let mut out = BTreeMap::new();
    for (id, value) in entries {
        let entry = Some((kind, id.clone()));
        if !valid_id(&id) {
            return Err(ContentError::Invalid(Problem {
                file,
                entry,
                field: None,
                message:
                    "ids are 1 to 64 lower-case ASCII letters, digits or '_', starting with a \
                          letter"
                        .into(),
            }));
        }
        let def =
            serde_path_to_error::deserialize(value).map_err(|e| field_problem(file, entry, e))?;
        out.insert(id, def);
    }
    Ok(out)
}

/// Content ids: what a client may send (the HTTP edge's `ContentId` rule) and events store.
pub(super) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.as_bytes()[0].is_ascii_lowercase()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
