//! The command line: global flags, subcommands, their help texts.

use std::path::PathBuf;
use std::time::Duration;

use crate::Usage;

pub const HELP: &str = "\
chaosctl: the Chaos World operators' tool

usage: chaosctl [--embedded DATA_DIR] [--config FILE] [--json] <command> ...

commands:
  history <aggregate> <id> [--at N]   an aggregate's events and its state at version N
  lag                                 every projection's position and lag, per partition
  dead-letters list|show|redrive      inspect dead-lettered events, send them back once fixed
  relay stopped                       streams the relay stopped (one bad event each)
  relay resume <aggregate> <id>       ask the relay to republish a stopped stream
  relay audit [--since POSITION]      events the relay passed that are on no topic
  verify <read model> [--sample N | --all]
                                      recompute documents from the event store, report differences
  rebuild <read model> --from kafka|store [--resume | --restart] [--grace SECS]
                                      build the next model version beside the served one, switch
  checksum <read model> [--version V] the checksum rebuild prints, of any model version
                                      (warehouse: the live file, while no process holds it)

read models: redis (sheets, wallets), mongo (profiles, timelines), embedded (the SQLite read
models of --embedded), warehouse (the DuckDB warehouse; rebuild and checksum)

global flags:
  --embedded DATA_DIR  the embedded deployment in DATA_DIR (events.db, readmodels.db,
                       warehouse.duckdb); without it, the distributed one
  --config FILE        settings (TOML) over the defaults; then CHAOS__SECTION__KEY variables
                       (CHAOS__DATABASE__URL, CHAOS__KAFKA__BOOTSTRAP_SERVERS, CHAOS__REDIS__URL,
                       CHAOS__MONGO__URL, ...)
  --json               machine-readable output on stdout

exit codes: 0 ok; 1 differences or failure found (or the operation failed); 2 usage;
3 a dependency (PostgreSQL, Kafka, Redis, MongoDB, the data directory) cannot be reached.

`chaosctl <command> --help` says more; docs/operations.md is the operator's guide.
";

const HISTORY: &str = "\
usage: chaosctl history <aggregate> <id> [--at N] [--json]

Reads the aggregate's events from the event store (sequence, type, time, payload) and folds them
into its state as the command side sees it, at version N (default: the latest). Aggregates:
character, wallet. Exit 1 if the aggregate has no events.
";

const LAG: &str = "\
usage: chaosctl lag [--json]

Every projection's position and lag, per partition, in events and seconds:
- distributed: the consumer groups of the projectors and process managers (groups whose names
  start with lag.group_prefixes, default `chaos-`, plus lag.groups): committed offset against the
  high watermark; seconds = age of the next unconsumed message. The relay: the event store's head
  against the relay's checkpoint, and its stopped streams.
- embedded: each store-fed feed's checkpoint (read models, warehouse, process managers) against
  the event store's head; seconds = age of the next event not yet applied.
";

const DEAD_LETTERS: &str = "\
usage: chaosctl dead-letters list [--projection P]
       chaosctl dead-letters show <id>
       chaosctl dead-letters redrive (<id>... | --projection P | --all)

list     every dead letter (distributed: the chaos.deadletter.<projection> topics; embedded: the
         dead-letter record in events.db), with its id, source coordinates, key, reason, the event
         decoded where possible, and whether it was redriven.
show     one dead letter in full.
redrive  sends dead letters back, each once (redriven ones are recorded and skipped):
         - distributed: the original key and payload are produced again to the source topic and
           partition, with a `chaos_redriven_from` header. Every consumer group of that topic reads
           the event once more; every sink is idempotent (read models apply a stream's next
           sequence only, the warehouse keys rows by event id, process managers' commands carry
           idempotency keys derived from the event id), so consumers that had the event skip it
           and only the one that dead-lettered it applies it. Analysts deduplicate by event_id.
           Redrive once the cause is fixed (a deploy that can decode or apply it): an event that
           fails again is dead-lettered again, with a new id.
         - embedded: the dead letter is marked for redrive; the running backend (or its next
           start) re-reads the event from the event store and applies it to that feed's sink only,
           recording the outcome. `list` shows it.
         Redrive is recorded in the event store database (table chaosctl_redrives / the embedded
         dead-letter record) before `redrive` returns.
";

const RELAY: &str = "\
usage: chaosctl relay stopped [--json]
       chaosctl relay resume <aggregate> <id>
       chaosctl relay audit [--since POSITION] [--json]

stopped  the streams the relay stopped because one of their events cannot be published (the
         event, the reason, since when, whether a resume was requested).
resume   asks the relay to republish the stream from the stopped event, in order, once the cause
         is fixed (sets resume_requested; the active relay picks it up within a second and forgets
         the stop once republished). Exit 1 if the stream is not stopped.
audit    reads every aggregate topic to its end and the event store up to the relay's
         checkpoint (events above global position POSITION only, with --since), and lists the
         events the checkpoint has passed that no topic holds, except those of stopped streams.
         Exit 1 if any is missing, with the checkpoint to rewind the relay to (stop it first).
Distributed deployment only (the embedded mode has no relay).
";

const VERIFY: &str = "\
usage: chaosctl verify <redis|mongo|embedded> [--sample N | --all] [--json]

Recomputes documents of the served model version from the event store: for each document, its
source streams are read up to the positions it records and applied through the same views to an
empty in-memory store; the recomputed document (events applied, positions, body), its log entries
and its board scores are compared with the stored ones. Reports every difference; exit 1 if any.
Default: a random sample of 100 documents.
";

const REBUILD: &str = "\
usage: chaosctl rebuild <redis|mongo|embedded|warehouse> --from kafka|store
                        [--resume | --restart] [--grace SECS]

Builds the next model version (v1 -> v2) beside the served one, which keeps serving:
 1. replays the source into the new version: --from store reads the event store's global order
    (PostgreSQL, or events.db with --embedded); --from kafka reads the topics from the beginning
    in a consumer group of its own, up to the high watermarks sampled at the start. Progress
    (events, rate, ETA) on stderr: a bar on a terminal, a line every few seconds otherwise.
    Its checkpoint is saved after every batch: Ctrl-C stops after the batch in hand, and
    `--resume` goes on from there (`--restart` drops the partial version and starts over).
 2. prints the checksum of the new version (documents' events applied, positions and bodies, log
    entries, board scores; order-independent);
 3. switches readers and writers atomically (the store's `<prefix>served` value);
 4. waits the grace period (rebuild.grace_ms, default 3 s) so the live projections notice, then
    catches up once more (events the live projection wrote to the old version before it noticed;
    gap repair from the event store covers the rest);
 5. drops the old version and prints the figures (events, seconds, events/s).
Exit 1 if interrupted (resume it) or if it fails.

warehouse: built in <stem>.rebuild.duckdb beside the live DuckDB file (its position kept in that
file); when caught up its checksum is printed and the live warehouse switched to it: the process
holding the live file (projector warehouse, the embedded backend) merges in what only the live
file has, renames the new file over it and goes on; with no process holding it, chaosctl does it.
";

const CHECKSUM: &str = "\
usage: chaosctl checksum <redis|mongo|embedded> [--version V] [--json]

The checksum `rebuild` prints, of the served model version (or V): equal checksums mean equal
documents (events applied, positions, bodies), log entries and board scores.
";

/// The read models chaosctl knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Redis,
    Mongo,
    Embedded,
    Warehouse,
}

impl Model {
    fn parse(s: &str) -> Result<Self, Usage> {
        Ok(match s {
            "redis" => Self::Redis,
            "mongo" | "mongodb" => Self::Mongo,
            "embedded" | "sqlite" => Self::Embedded,
            "warehouse" => Self::Warehouse,
            other => {
                return Err(Usage(format!(
                    "unknown read model {other:?} (redis, mongo, embedded, warehouse)"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Mongo => "mongo",
            Self::Embedded => "embedded",
            Self::Warehouse => "warehouse",
        }
    }
}

/// Where a rebuild reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Kafka,
    Store,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kafka => "kafka",
            Self::Store => "store",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RebuildArgs {
    pub model: Model,
    pub from: Source,
    pub resume: bool,
    pub restart: bool,
    pub grace: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum DeadLetterCommand {
    List {
        projection: Option<String>,
    },
    Show {
        id: String,
    },
    Redrive {
        ids: Vec<String>,
        projection: Option<String>,
        all: bool,
    },
}

#[derive(Debug, Clone)]
pub enum Command {
    History {
        aggregate: String,
        id: String,
        at: Option<u64>,
    },
    Lag,
    DeadLetters(DeadLetterCommand),
    RelayStopped,
    RelayAudit {
        since: i64,
    },
    RelayResume {
        aggregate: String,
        id: String,
    },
    Verify {
        model: Model,
        /// `None`: every document.
        sample: Option<usize>,
    },
    Rebuild(RebuildArgs),
    Checksum {
        model: Model,
        version: Option<String>,
    },
}

#[derive(Debug)]
pub struct Invocation {
    pub command: Command,
    pub json: bool,
    pub embedded: Option<PathBuf>,
    pub config: Option<String>,
}

#[derive(Debug)]
pub enum Parsed {
    Help(&'static str),
    Run(Invocation),
}

/// Parses the command line (without the program name).
pub fn parse(args: &[String]) -> Result<Parsed, Usage> {
    let mut json = false;
    let mut embedded = None;
    let mut config = None;
    let mut help = false;
    let mut words: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "-h" | "--help" | "help" => help = true,
            "--embedded" => {
                embedded =
                    Some(PathBuf::from(it.next().ok_or_else(|| {
                        Usage("--embedded needs a data directory".into())
                    })?))
            }
            "--config" => {
                config = Some(
                    it.next()
                        .ok_or_else(|| Usage("--config needs a file".into()))?
                        .clone(),
                )
            }
            other => {
                if let Some(dir) = other.strip_prefix("--embedded=") {
                    embedded = Some(PathBuf::from(dir));
                } else if let Some(file) = other.strip_prefix("--config=") {
                    config = Some(file.to_owned());
                } else {
                    words.push(other.to_owned());
                }
            }
        }
    }
    let topic_help = |cmd: Option<&str>| match cmd {
        Some("history") => HISTORY,
        Some("lag") => LAG,
        Some("dead-letters") => DEAD_LETTERS,
        Some("relay") => RELAY,
        Some("verify") => VERIFY,
        Some("rebuild") => REBUILD,
        Some("checksum") => CHECKSUM,
        _ => HELP,
    };
    if help {
        return Ok(Parsed::Help(topic_help(words.first().map(String::as_str))));
    }
    let Some((cmd, rest)) = words.split_first() else {
        return Err(Usage("no command given".into()));
    };
    let mut opts = Options::new(rest);
    let command = match cmd.as_str() {
        "history" => {
            let at = opts
                .value("--at")?
                .map(|v| number(&v, "--at"))
                .transpose()?;
            let [aggregate, id] = opts.positional::<2>("history <aggregate> <id>")?;
            Command::History { aggregate, id, at }
        }
        "lag" => {
            opts.positional::<0>("lag")?;
            Command::Lag
        }
        "dead-letters" => {
            let projection = opts.value("--projection")?;
            let all = opts.flag("--all");
            let words = opts.rest()?;
            match words.split_first() {
                Some((sub, ids)) if sub == "list" && ids.is_empty() => {
                    Command::DeadLetters(DeadLetterCommand::List { projection })
                }
                Some((sub, [id])) if sub == "show" => {
                    Command::DeadLetters(DeadLetterCommand::Show { id: id.clone() })
                }
                Some((sub, ids)) if sub == "redrive" => {
                    if ids.is_empty() && projection.is_none() && !all {
                        return Err(Usage(
                            "redrive what? give dead-letter ids, --projection P or --all".into(),
                        ));
                    }
                    Command::DeadLetters(DeadLetterCommand::Redrive {
                        ids: ids.to_vec(),
                        projection,
                        all,
                    })
                }
                _ => return Err(Usage("dead-letters list | show <id> | redrive ...".into())),
            }
        }
        "relay" => {
            let since = opts
                .value("--since")?
                .map(|v| number(&v, "--since"))
                .transpose()?;
            let words = opts.rest()?;
            match words.as_slice() {
                [s] if s == "stopped" && since.is_none() => Command::RelayStopped,
                [s] if s == "audit" => Command::RelayAudit {
                    since: i64::try_from(since.unwrap_or(0))
                        .map_err(|_| Usage("--since is too large".into()))?,
                },
                [s, aggregate, id] if s == "resume" && since.is_none() => Command::RelayResume {
                    aggregate: aggregate.clone(),
                    id: id.clone(),
                },
                _ => {
                    return Err(Usage(
                        "relay stopped | relay resume <aggregate> <id> | relay audit [--since N]"
                            .into(),
                    ))
                }
            }
        }
        "verify" => {
            let sample = opts
                .value("--sample")?
                .map(|v| number(&v, "--sample"))
                .transpose()?;
            let all = opts.flag("--all");
            if all && sample.is_some() {
                return Err(Usage("--sample and --all exclude each other".into()));
            }
            let [model] = opts.positional::<1>("verify <read model>")?;
            let model = Model::parse(&model)?;
            if model == Model::Warehouse {
                return Err(Usage(
                    "verify: the warehouse has no documents to verify".into(),
                ));
            }
            Command::Verify {
                model,
                sample: if all {
                    None
                } else {
                    Some(sample.unwrap_or(100) as usize)
                },
            }
        }
        "rebuild" => {
            let from = match opts.value("--from")?.as_deref() {
                Some("kafka") => Source::Kafka,
                Some("store") => Source::Store,
                Some(other) => return Err(Usage(format!("--from {other}: kafka or store"))),
                None => return Err(Usage("rebuild needs --from kafka|store".into())),
            };
            let resume = opts.flag("--resume");
            let restart = opts.flag("--restart");
            if resume && restart {
                return Err(Usage("--resume and --restart exclude each other".into()));
            }
            let grace = opts
                .value("--grace")?
                .map(|v| number(&v, "--grace").map(Duration::from_secs))
                .transpose()?;
            let [model] = opts.positional::<1>("rebuild <read model>")?;
            Command::Rebuild(RebuildArgs {
                model: Model::parse(&model)?,
                from,
                resume,
                restart,
                grace,
            })
        }
        "checksum" => {
            let version = opts.value("--version")?;
            let [model] = opts.positional::<1>("checksum <read model>")?;
            Command::Checksum {
                model: Model::parse(&model)?,
                version,
            }
        }
        other => return Err(Usage(format!("unknown command {other:?}"))),
    };
    Ok(Parsed::Run(Invocation {
        command,
        json,
        embedded,
        config,
    }))
}

fn number(v: &str, name: &str) -> Result<u64, Usage> {
    v.parse()
        .map_err(|_| Usage(format!("{name} needs a whole number, not {v:?}")))
}

/// A subcommand's words: options are taken out by name, what is left is positional.
struct Options {
    words: Vec<String>,
}

impl Options {
    fn new(words: &[String]) -> Self {
        Self {
            words: words.to_vec(),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| w != name);
        self.words.len() != before
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, Usage> {
        if let Some(i) = self.words.iter().position(|w| w == name) {
            if i + 1 >= self.words.len() {
                return Err(Usage(format!("{name} needs a value")));
            }
            let v = self.words.remove(i + 1);
            self.words.remove(i);
            return Ok(Some(v));
        }
        let prefix = format!("{name}=");
        if let Some(i) = self.words.iter().position(|w| w.starts_with(&prefix)) {
            let w = self.words.remove(i);
            return Ok(Some(w[prefix.len()..].to_owned()));
        }
        Ok(None)
    }

    fn rest(self) -> Result<Vec<String>, Usage> {
        if let Some(unknown) = self.words.iter().find(|w| w.starts_with("--")) {
            return Err(Usage(format!("unknown option {unknown}")));
        }
        Ok(self.words)
    }

    fn positional<const N: usize>(self, usage: &str) -> Result<[String; N], Usage> {
        let words = self.rest()?;
        words
            .try_into()
            .map_err(|_| Usage(format!("usage: chaosctl {usage}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_global_flags_anywhere_and_rejects_bad_usage() {
        let Ok(Parsed::Run(i)) = parse(&args("rebuild redis --json --from kafka --embedded /d"))
        else {
            panic!("parsed")
        };
        assert!(i.json);
        assert_eq!(i.embedded, Some(PathBuf::from("/d")));
        assert!(matches!(
            i.command,
            Command::Rebuild(RebuildArgs {
                model: Model::Redis,
                from: Source::Kafka,
                resume: false,
                ..
            })
        ));
        for bad in [
            "",
            "rebuild redis",
            "rebuild redis --from tape",
            "rebuild nothing --from store",
            "history character",
            "history character x --at minus",
            "verify redis --all --sample 3",
            "dead-letters redrive",
            "lag extra",
            "lag --bogus",
            "relay audit --since -1",
            "relay stopped --since 5",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?} must be refused");
        }
        assert!(matches!(
            parse(&args("rebuild --help")),
            Ok(Parsed::Help(REBUILD))
        ));
        let Ok(Parsed::Run(i)) = parse(&args("verify mongo --all")) else {
            panic!()
        };
        assert!(matches!(
            i.command,
            Command::Verify {
                model: Model::Mongo,
                sample: None
            }
        ));
        let Ok(Parsed::Run(i)) = parse(&args("relay audit --since 181 --json")) else {
            panic!()
        };
        assert!(matches!(i.command, Command::RelayAudit { since: 181 }));
    }
}
