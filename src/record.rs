//! What a store holds about each key: its kid, stage, timestamps and public half.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::jwk::PublicJwk;
use crate::kid::Kid;
use crate::moment::Moment;
use crate::policy::Policy;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Published, not yet used: waits until Maskinporten knows it.
    Pending,
    /// The key applications sign with.
    Current,
    /// Demoted, still published while applications restart.
    Previous,
    /// Not published; kept (disabled) until `retain_retired` has passed.
    Retired,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Current => "current",
            Stage::Previous => "previous",
            Stage::Retired => "retired",
        }
    }

    /// Whether keys of this stage are in the public JWK set.
    pub fn is_published(self) -> bool {
        !matches!(self, Stage::Retired)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = StageError;
    fn from_str(s: &str) -> Result<Self, StageError> {
        match s {
            "pending" => Ok(Stage::Pending),
            "current" => Ok(Stage::Current),
            "previous" => Ok(Stage::Previous),
            "retired" => Ok(Stage::Retired),
            _ => Err(StageError { given: s.to_owned() }),
        }
    }
}

/// A stage name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage {given:?} is not one of pending, current, previous, retired")]
pub struct StageError {
    /// The name as given.
    pub given: String,
}

/// One key as a store keeps it, without the private members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: Kid,
    pub stage: Stage,
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demoted: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<DateTime<Utc>>,
    /// The host's real clock at the record's last write (see [`crate::moment`]). A record that
    /// an older version wrote has none in it; the stores then give the time of the write as
    /// they know it (a key file's modification time, a Key Vault version's `updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<DateTime<Utc>>,
    /// When the applications named by the client's `[[client.restart]]` were restarted for
    /// this key's promotion (all of them, with the consumer secret holding it): a restart is
    /// made once per promotion, and a later run finishes one that a crash or failure cut off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted: Option<DateTime<Utc>>,
    pub public: PublicJwk,
}

impl KeyRecord {
    /// A key just made at `at`: created at its time, written at its real clock.
    pub fn new(public: PublicJwk, stage: Stage, at: impl Into<Moment>) -> Self {
        let Moment { now, wall } = at.into();
        KeyRecord {
            kid: public.kid.clone(),
            stage,
            created: now,
            published: None,
            activated: (stage == Stage::Current).then_some(now),
            demoted: None,
            retired: None,
            written: Some(wall),
            restarted: None,
            public,
        }
    }

    /// The key's hard end of life: its kid date (00:00 UTC) plus `max_age`.
    pub fn expires(&self, policy: &Policy) -> DateTime<Utc> {
        expiry(&self.kid, policy)
    }
}

/// A kid's hard end of life under `policy`: the date in its suffix plus `max_age`.
pub fn expiry(kid: &Kid, policy: &Policy) -> DateTime<Utc> {
    kid.date().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + policy.max_age().delta()
}
