//! Consistency tokens: what a command's answer hands back so that a later query can ask for
//! "at least what my command produced". Opaque to clients; `v1.<aggregate type>.<id>.<sequence>`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed consistency token")]
pub struct MalformedToken;

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v1.{}.{}.{}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )
    }
}

impl FromStr for ConsistencyToken {
    type Err = MalformedToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(4, '.');
        let (Some("v1"), Some(kind), Some(id), Some(seq)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedToken);
        };
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !ok(kind) || !ok(id) {
            return Err(MalformedToken);
        }
        Ok(Self {
            aggregate_type: kind.to_owned(),
            aggregate_id: id.to_owned(),
            sequence: seq.parse().map_err(|_| MalformedToken)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = ConsistencyToken {
            aggregate_type: "character".into(),
            aggregate_id: "0190a3c2-7d1e-7c3a-9f00-000000000001".into(),
            sequence: 42,
        };
        assert_eq!(t.to_string().parse::<ConsistencyToken>().unwrap(), t);
        for bad in [
            "",
            "v1.character.x",
            "v2.character.x.1",
            "v1.char acter.x.1",
            "v1.c.x.-1",
        ] {
            assert!(bad.parse::<ConsistencyToken>().is_err(), "{bad}");
        }
    }
}
