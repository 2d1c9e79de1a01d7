//! Why the planner (or the engine's check before a promotion) will not carry out a request.

use crate::kid::Kid;

/// A request the planner (or the engine's check before a promotion) will not carry out: why,
/// about which key (if one), and the message that names the key set and says what to do
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kid: Option<Kid>,
    pub because: RefusedBecause,
    pub message: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBecause {
    /// `promote` of a key set without a pending key.
    NoPendingKey,
    /// The pending key was never published.
    NotPublished,
    /// The pending key was published in this run, or after its time.
    NotPublishedBefore,
    /// This host's real clock reads earlier than the pending key's write (or the store does
    /// not say when that was).
    ClockWentBack,
    /// `promotion = "verified"`, and no token grant signed with the key succeeded in this run.
    NotProven,
    /// `retire` of a kid the key set does not hold.
    NoSuchKey,
    /// `retire` of a key that is retired already.
    AlreadyRetired,
    /// `retire` of the only key applications can use, without `--force`.
    OnlyUsableKey,
    /// The key was registered through Digdir's API moments ago, and no grant proved it.
    NotPropagated,
}

impl Refusal {
    pub fn new(kid: Option<&Kid>, because: RefusedBecause, message: String) -> Self {
        Refusal { kid: kid.cloned(), because, message }
    }
}
