//! The planner: a pure function from a key set's records, its policy and `now` to the steps a
//! run takes, each with a reason a person can read.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::moment::Moment;
use crate::policy::{Policy, Promotion};
use crate::record::{KeyRecord, Stage};

mod refusal;
pub use refusal::{Refusal, RefusedBecause};

/// What the caller asks of this run besides the policy's own schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `rotate --force`: make a new pending key now; one that was waiting is superseded.
    pub force: bool,
    /// `promote`: promote the pending key now, whatever the promotion mode. Only a key that an
    /// earlier run published can be promoted; without one the plan is refused.
    pub promote: bool,
    /// `retire KID`: retire this key now (compromise); `force` allows the only usable key.
    /// Retiring the current key hands over to the pending key if an earlier run published it.
    pub retire: Option<Retire>,
    /// The pending key that a token grant signed with it proved in this run. The engine sets
    /// it; with `promotion = "verified"` no other key is promoted, on request or on schedule.
    pub proven: Option<Kid>,
    /// The engine sets it: the key set's consumer secret holds a key already (altinn-jwks's, or
    /// one whose record is gone), which applications read. A key set without keys then gets a
    /// pending first key, not a current one that would take that key's place.
    pub consumer_in_use: bool,
}

/// `retire KID [--force]`: the key to retire now, and whether the only key applications can
/// use may go too (a compromised key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retire {
    pub kid: Kid,
    pub force: bool,
}

/// One thing a run does to a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Make and store a new key in `stage` (pending, or current for a key set without one).
    Generate { kid: Kid, stage: Stage },
    /// Write the public set with this key in it and record when.
    Publish { kid: Kid },
    /// Make this pending key the one applications use.
    Promote { kid: Kid },
    /// Move a current key to previous: still published, no longer used.
    Demote { kid: Kid },
    /// Take a key out of the published set and disable it.
    Retire { kid: Kid },
    /// Delete a retired key for good.
    Purge { kid: Kid },
}

impl Action {
    pub fn kid(&self) -> &Kid {
        match self {
            Action::Generate { kid, .. }
            | Action::Publish { kid }
            | Action::Promote { kid }
            | Action::Demote { kid }
            | Action::Retire { kid }
            | Action::Purge { kid } => kid,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Generate { kid, stage } => write!(f, "generate {kid} as {stage}"),
            Action::Publish { kid } => write!(f, "publish {kid}"),
            Action::Promote { kid } => write!(f, "promote {kid} to current"),
            Action::Demote { kid } => write!(f, "demote {kid} to previous"),
            Action::Retire { kid } => write!(f, "retire {kid}"),
            Action::Purge { kid } => write!(f, "purge {kid}"),
        }
    }
}

/// An action and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
}

/// The steps of one run for one key set, in the safe order, and the records they lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub key_set: KeySet,
    pub steps: Vec<Step>,
    /// The records after every step, as the planner expects the store to hold them.
    pub outcome: Vec<KeyRecord>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Plans one run at `at` (its time, and the host's real clock; a bare time for both). `records`
/// are all of the key set's keys in the store.
pub fn plan(
    key_set: &KeySet,
    records: &[KeyRecord],
    policy: &Policy,
    at: impl Into<Moment>,
    request: &Request,
) -> Result<Plan, Refusal> {
    let first_key = records.is_empty();
    let at = at.into();
    let mut p = Planner {
        set: key_set,
        policy,
        now: at.now,
        at,
        recs: records.to_vec(),
        first_key,
        proven: request.proven.clone(),
        consumer_in_use: request.consumer_in_use,
        steps: Vec::new(),
    };
    p.recs.sort_by(|a, b| a.kid.cmp(&b.kid));
    if request.promote {
        p.check_promotable()?;
    }
    if let Some(Retire { kid, force }) = &request.retire {
        p.retire_requested(kid, *force)?;
    }
    // A pass can change what the next one sees (a promoted key may already be due for
    // rotation), so passes repeat until one adds nothing: a second run then plans nothing.
    let mut first = true;
    for _ in 0..4 {
        let before = p.steps.len();
        p.converge();
        p.generate(first && request.force);
        p.publish();
        p.promote(first && request.promote);
        p.retire_scheduled();
        p.purge();
        first = false;
        if p.steps.len() == before {
            break;
        }
    }
    Ok(Plan { key_set: key_set.clone(), steps: p.steps, outcome: p.recs })
}

/// Applies one action to records as a store would; the planner's model of a store.
pub(crate) fn apply(recs: &mut Vec<KeyRecord>, action: &Action, at: Moment, new: Option<KeyRecord>) {
    let find = |recs: &mut Vec<KeyRecord>, kid: &Kid| recs.iter_mut().position(|r| r.kid == *kid);
    match action {
        Action::Generate { .. } => recs.extend(new),
        Action::Purge { kid } => recs.retain(|r| r.kid != *kid),
        Action::Publish { kid }
        | Action::Promote { kid }
        | Action::Demote { kid }
        | Action::Retire { kid } => {
            if let Some(i) = find(recs, kid) {
                transition(&mut recs[i], action, at);
            }
        }
    }
}

/// The record change an action makes at `at`; every change records the real clock.
pub fn transition(r: &mut KeyRecord, action: &Action, at: Moment) {
    let now = at.now;
    r.written = Some(at.wall);
    match action {
        Action::Publish { .. } => r.published = r.published.or(Some(now)),
        Action::Promote { .. } => {
            r.stage = Stage::Current;
            r.activated = Some(now);
        }
        Action::Demote { .. } => {
            r.stage = Stage::Previous;
            r.demoted = Some(now);
        }
        Action::Retire { .. } => {
            r.stage = Stage::Retired;
            r.retired = Some(now);
        }
        Action::Generate { .. } | Action::Purge { .. } => {}
    }
}

struct Planner<'a> {
    set: &'a KeySet,
    policy: &'a Policy,
    /// `at.now`, which most rules use.
    now: DateTime<Utc>,
    at: Moment,
    recs: Vec<KeyRecord>,
    /// Whether the key set held no key when the run began: only its first key may be current
    /// at once (a key set purged empty within the run is not a new key set).
    first_key: bool,
    /// The pending key a token grant proved in this run (`Request::proven`).
    proven: Option<Kid>,
    /// `Request::consumer_in_use`.
    consumer_in_use: bool,
    steps: Vec<Step>,
}

impl Planner<'_> {
    fn push(&mut self, action: Action, reason: String) {
        let new = match &action {
            Action::Generate { kid, stage } => {
                // The public half is not known until the key is made; the engine fills it in.
                let public = crate::jwk::PublicJwk {
                    kid: kid.clone(),
                    alg: self.policy.algorithm(),
                    n: String::new(),
                    e: String::new(),
                };
                Some(KeyRecord::new(public, *stage, self.at))
            }
            _ => None,
        };
        apply(&mut self.recs, &action, self.at, new);
        self.steps.push(Step { action, reason });
    }

    fn with_stage(&self, stage: Stage) -> Vec<KeyRecord> {
        self.recs.iter().filter(|r| r.stage == stage).cloned().collect()
    }

    fn current(&self) -> Option<KeyRecord> {
        lifecycle::current(&self.recs, self.now).cloned()
    }

    fn pending(&self) -> Option<KeyRecord> {
        lifecycle::pending(&self.recs, self.now).cloned()
    }

    /// The pending key that a `promote` request would promote: one an earlier run published.
    fn check_promotable(&self) -> Result<KeyRecord, Refusal> {
        let set = self.set;
        let Some(pending) = self.pending() else {
            return Err(Refusal::new(
                None,
                RefusedBecause::NoPendingKey,
                format!(
                    "key set {set} has no pending key to promote; `jwk-rotator rotate --force {set}` makes one: upload it to Maskinporten, then promote in a later run"
                ),
            ));
        };
        let Some(t) = pending.published else {
            return Err(Refusal::new(
                Some(&pending.kid),
                RefusedBecause::NotPublished,
                format!(
                    "pending key {} of {set} has not been published yet: run `jwk-rotator rotate {set}` to publish it, add that one key in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {} --format maskinporten` prints it), then promote",
                    pending.kid, pending.kid
                ),
            ));
        };
        if t >= self.now {
            return Err(Refusal::new(
                Some(&pending.kid),
                RefusedBecause::NotPublishedBefore,
                format!(
                    "pending key {} of {set} was published at {} ({}), not before this run; add that one key in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {} --format maskinporten` prints it), then promote in a later run",
                    pending.kid,
                    t.to_rfc3339(),
                    if t == self.now { "in this run" } else { "after this run's time: check the clock" },
                    pending.kid
                ),
            ));
        }
        if !lifecycle::published_before(&pending, self.at) {
            return Err(Refusal::new(
                Some(&pending.kid),
                RefusedBecause::ClockWentBack,
                format!(
                    "pending key {} of {set} was written at {} by this host's real clock, which now reads {}: not before this run. This host's clock went back, or the store does not say when that was; check the clock (NTP) and promote in a later run",
                    pending.kid,
                    pending.written.map_or_else(|| "an unknown time".to_owned(), |w| w.to_rfc3339()),
                    self.at.wall.to_rfc3339()
                ),
            ));
        }
        if self.proof_missing(&pending) {
            return Err(Refusal::new(
                Some(&pending.kid),
                RefusedBecause::NotProven,
                format!(
                    "pending key {} of {set} has not been proved: with promotion = \"verified\" a key is promoted only in a run where a token grant signed with it succeeds; `jwk-rotator verify {set}` shows why it fails",
                    pending.kid
                ),
            ));
        }
        Ok(pending)
    }

    /// Whether `promotion = "verified"` holds `p` back: no grant with it succeeded in this run.
    fn proof_missing(&self, p: &KeyRecord) -> bool {
        self.policy.promotion() == Promotion::Verified && self.proven.as_ref() != Some(&p.kid)
    }

    /// Whether `p` may become current now: an earlier run published it, and a verified
    /// promotion's proof is in.
    fn may_promote(&self, p: &KeyRecord) -> bool {
        lifecycle::published_before(p, self.at) && !self.proof_missing(p)
    }

    fn days(&self, since: DateTime<Utc>) -> i64 {
        (self.now - since).num_days()
    }

    fn retire_requested(&mut self, kid: &Kid, force: bool) -> Result<(), Refusal> {
        let Some(rec) = self.recs.iter().find(|r| r.kid == *kid).cloned() else {
            return Err(Refusal::new(
                Some(kid),
                RefusedBecause::NoSuchKey,
                format!(
                    "key set {} has no key {kid}; `jwk-rotator status {}` lists its keys",
                    self.set, self.set
                ),
            ));
        };
        if rec.stage == Stage::Retired {
            let message = format!("{kid} is already retired");
            return Err(Refusal::new(Some(kid), RefusedBecause::AlreadyRetired, message));
        }
        let is_current = self.current().is_some_and(|c| c.kid == *kid);
        let successor = self.pending().filter(|p| is_current && self.may_promote(p));
        if is_current && successor.is_none() && !force {
            return Err(Refusal::new(
                Some(kid),
                RefusedBecause::OnlyUsableKey,
                format!(
                    "{kid} is the only key applications of {} can use; retiring it breaks them until a new key is uploaded and they restart. Run `jwk-rotator rotate --force {}`, upload the new key and retire {kid} in a later run, or repeat with --force if the key is compromised",
                    self.set, self.set
                ),
            ));
        }
        if let Some(next) = successor {
            let reason = format!("{kid} is retired on request; {} was published in an earlier run", next.kid);
            self.push(Action::Promote { kid: next.kid }, reason);
        }
        self.push(Action::Retire { kid: kid.clone() }, "retired on request".to_owned());
        Ok(())
    }

    /// Repairs what an interrupted run or a wrong clock can leave: two current keys, two
    /// pending ones, or a pending key dated in the future, which would block rotation until
    /// its date.
    fn converge(&mut self) {
        for r in self.with_stage(Stage::Pending) {
            if lifecycle::is_future_dated(&r, self.now) {
                let reason = format!(
                    "dated {} (created {}), after this run's time: a run whose clock was ahead made it; superseded",
                    r.kid.date(),
                    r.created.to_rfc3339()
                );
                self.push(Action::Retire { kid: r.kid }, reason);
            }
        }
        if let Some(winner) = self.current() {
            for old in self.with_stage(Stage::Current).into_iter().filter(|r| r.kid != winner.kid) {
                let reason =
                    format!("{} took over; an earlier run stopped before demoting this one", winner.kid);
                self.push(Action::Demote { kid: old.kid }, reason);
            }
        }
        if let Some(winner) = self.pending() {
            for old in self.with_stage(Stage::Pending).into_iter().filter(|r| r.kid != winner.kid) {
                let reason = format!("superseded by the newer pending key {}", winner.kid);
                self.push(Action::Retire { kid: old.kid }, reason);
            }
        }
    }

    fn new_kid(&self) -> Kid {
        Kid::next_free(self.set, self.now.date_naive(), self.recs.iter().map(|r| &r.kid))
    }

    fn generate(&mut self, force: bool) {
        let current = self.current();
        let pending = self.pending();
        let reason = match (&current, &pending) {
            // The only key that is current in the run that made it: nothing can sign before it.
            (None, None) if self.first_key && self.recs.is_empty() && !self.consumer_in_use => {
                self.push_new(
                    Stage::Current,
                    "the key set has no key yet; its first key is current at once".to_owned(),
                );
                return;
            }
            (None, None) if self.first_key && self.recs.is_empty() => {
                let set = self.set;
                format!(
                    "the key set has no key yet, but its consumer secret holds a key that applications read: the first key waits as pending. `jwk-rotator import altinn-jwks --from DIR|VAULT_URL {set}` adopts the key they read; or add this one in Samarbeidsportalen and promote it"
                )
            }
            (_, Some(p)) if force => format!("--force: a new pending key supersedes {}", p.kid),
            (_, None) if force => "--force: a new key was asked for".to_owned(),
            (None, None) => {
                "no usable key is left; a new pending key is made: upload it to Maskinporten, then promote it"
                    .to_owned()
            }
            (Some(c), None) if self.now >= lifecycle::next_rotation(c, self.policy, self.now) => {
                self.rotation_reason(c)
            }
            _ => return,
        };
        self.push_new(Stage::Pending, reason);
        if let (Some(p), true) = (pending, force) {
            let reason = "--force: superseded by a new pending key".to_owned();
            self.push(Action::Retire { kid: p.kid }, reason);
        }
    }

    fn push_new(&mut self, stage: Stage, reason: String) {
        let kid = self.new_kid();
        self.push(Action::Generate { kid, stage }, reason);
    }

    /// Why the current key `c` is due for rotation.
    fn rotation_reason(&self, c: &KeyRecord) -> String {
        if lifecycle::is_future_dated(c, self.now) {
            return format!(
                "current key {} is dated {}, after this run's time: a run whose clock was ahead made it",
                c.kid,
                c.kid.date()
            );
        }
        if self.now - c.created >= self.policy.rotate_after().delta() {
            return format!(
                "current key {} is {} days old; rotate_after is {}",
                c.kid,
                self.days(c.created),
                self.policy.rotate_after()
            );
        }
        format!(
            "current key {} expires on {}, within warn_before ({})",
            c.kid,
            c.expires(self.policy).date_naive(),
            self.policy.warn_before()
        )
    }

    fn publish(&mut self) {
        let unpublished: Vec<Kid> = self
            .recs
            .iter()
            .filter(|r| r.stage.is_published() && r.published.is_none())
            .map(|r| r.kid.clone())
            .collect();
        for kid in unpublished {
            self.push(Action::Publish { kid }, "not yet in the published key set".to_owned());
        }
    }

    /// Promotes the pending key when asked to or when the policy says so; only ever a key that
    /// an earlier run published, so that no key is current in the run that made it.
    fn promote(&mut self, requested: bool) {
        let Some(pending) = self.pending() else { return };
        let Some(published) = pending.published.filter(|_| self.may_promote(&pending)) else {
            return;
        };
        let proved = "; a token grant signed with it succeeded in this run";
        let verified = self.policy.promotion() == Promotion::Verified;
        let ahead = self.policy.publish_ahead().delta();
        let reason = if requested {
            let proof = if verified { proved } else { "" };
            format!("promoted on request; published {}{proof}", published.to_rfc3339())
        } else if self.policy.promotion() != Promotion::Manual
            && lifecycle::published_at_least(&pending, self.at, ahead)
        {
            let proof = if verified { proved } else { "" };
            format!(
                "published {} days ago; publish_ahead is {}{proof}",
                (self.now - published).num_days(),
                self.policy.publish_ahead()
            )
        } else if let Some(why) = self.rescue(&pending) {
            why
        } else {
            return;
        };
        let current = self.current();
        self.push(Action::Promote { kid: pending.kid.clone() }, reason);
        if let Some(old) = current {
            let reason = format!(
                "replaced by {}; stays published for overlap ({})",
                pending.kid,
                self.policy.overlap()
            );
            self.push(Action::Demote { kid: old.kid }, reason);
        }
    }

    /// Why `p` is promoted at once: no current key works any more and a token grant signed with
    /// `p` succeeded in this run ([`lifecycle::needs_rescue`]). Not in `manual` mode, where only
    /// `promote` promotes.
    fn rescue(&self, p: &KeyRecord) -> Option<String> {
        let proved = self.proven.as_ref() == Some(&p.kid);
        if !proved
            || self.policy.promotion() == Promotion::Manual
            || !lifecycle::needs_rescue(&self.recs, self.policy, self.now)
        {
            return None;
        }
        let broken = match self.current() {
            Some(c) => format!("current key {} expired on {}", c.kid, c.expires(self.policy).date_naive()),
            None => "there is no current key".to_owned(),
        };
        Some(format!(
            "{broken}; a token grant signed with {} succeeded in this run, so it is promoted without waiting for publish_ahead",
            p.kid
        ))
    }

    fn retire_scheduled(&mut self) {
        let overlap = self.policy.overlap().delta();
        for r in self.with_stage(Stage::Previous) {
            let since = r.demoted.unwrap_or(r.created);
            if self.now - since >= overlap {
                let reason =
                    format!("previous for {} days; overlap is {}", self.days(since), self.policy.overlap());
                self.push(Action::Retire { kid: r.kid }, reason);
            }
        }
        for r in self.recs.clone() {
            let expires = r.expires(self.policy);
            if matches!(r.stage, Stage::Pending | Stage::Previous) && expires <= self.now {
                let reason = format!(
                    "expired on {} (kid date + max_age {})",
                    expires.date_naive(),
                    self.policy.max_age()
                );
                self.push(Action::Retire { kid: r.kid }, reason);
            }
        }
        let mut previous = self.with_stage(Stage::Previous);
        previous.sort_by_key(|r| (r.demoted.unwrap_or(r.created), r.kid.clone()));
        let published = self.recs.iter().filter(|r| r.stage.is_published()).count();
        let excess = published.saturating_sub(self.policy.max_published() as usize);
        for r in previous.into_iter().take(excess) {
            let reason = format!(
                "{published} keys would be published; max_published is {}",
                self.policy.max_published()
            );
            self.push(Action::Retire { kid: r.kid }, reason);
        }
    }

    /// Deletes keys retired for `retain_retired`, but only while a current key remains: a key
    /// set purged empty would look new, and a new key set's first key is current at once.
    fn purge(&mut self) {
        if self.current().is_none() {
            return;
        }
        let keep = self.policy.retain_retired().delta();
        for r in self.with_stage(Stage::Retired) {
            let since = r.retired.unwrap_or(r.created);
            if self.now - since >= keep {
                let reason = format!(
                    "retired {} days ago; retain_retired is {}",
                    self.days(since),
                    self.policy.retain_retired()
                );
                self.push(Action::Purge { kid: r.kid }, reason);
            }
        }
    }
}
