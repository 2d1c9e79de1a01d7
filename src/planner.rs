//! The planner: a pure function from a key set's records, its policy and `now` to the steps a
//! run takes, each with a reason a person can read.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::kid::{KeySet, Kid};
use crate::policy::{Policy, Promotion};
use crate::record::{KeyRecord, Stage};

/// What the caller asks of this run besides the policy's own schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `rotate --force`: make a new pending key now; one that was waiting is superseded.
    pub force: bool,
    /// `promote`: promote the pending key now, whatever the promotion mode.
    pub promote: bool,
    /// `retire KID`: retire this key now (compromise); `force` allows the only usable key.
    pub retire: Option<(Kid, bool)>,
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

/// A request the planner will not carry out, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

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

/// Plans one run. `records` are all of the key set's keys in the store.
pub fn plan(
    key_set: &KeySet,
    records: &[KeyRecord],
    policy: &Policy,
    now: DateTime<Utc>,
    request: &Request,
) -> Result<Plan, Refusal> {
    let mut p = Planner { set: key_set, policy, now, recs: records.to_vec(), steps: Vec::new() };
    p.recs.sort_by(|a, b| a.kid.cmp(&b.kid));
    if let Some((kid, force)) = &request.retire {
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
        p.promote(first && request.promote)?;
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
pub fn apply(recs: &mut Vec<KeyRecord>, action: &Action, now: DateTime<Utc>, new: Option<KeyRecord>) {
    let find = |recs: &mut Vec<KeyRecord>, kid: &Kid| recs.iter_mut().position(|r| r.kid == *kid);
    match action {
        Action::Generate { .. } => recs.extend(new),
        Action::Purge { kid } => recs.retain(|r| r.kid != *kid),
        Action::Publish { kid }
        | Action::Promote { kid }
        | Action::Demote { kid }
        | Action::Retire { kid } => {
            if let Some(i) = find(recs, kid) {
                transition(&mut recs[i], action, now);
            }
        }
    }
}

/// The record change an action makes.
pub fn transition(r: &mut KeyRecord, action: &Action, now: DateTime<Utc>) {
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
    now: DateTime<Utc>,
    recs: Vec<KeyRecord>,
    steps: Vec<Step>,
}

impl Planner<'_> {
    fn push(&mut self, action: Action, reason: String) {
        let new = match &action {
            Action::Generate { kid, stage } => {
                // The public half is not known until the key is made; the engine fills it in.
                let public = crate::jwk::PublicJwk {
                    kid: kid.clone(),
                    alg: self.policy.algorithm,
                    n: String::new(),
                    e: String::new(),
                };
                Some(KeyRecord::new(public, *stage, self.now))
            }
            _ => None,
        };
        apply(&mut self.recs, &action, self.now, new);
        self.steps.push(Step { action, reason });
    }

    fn with_stage(&self, stage: Stage) -> Vec<KeyRecord> {
        self.recs.iter().filter(|r| r.stage == stage).cloned().collect()
    }

    fn current(&self) -> Option<KeyRecord> {
        self.with_stage(Stage::Current).pop()
    }

    fn pending(&self) -> Option<KeyRecord> {
        self.with_stage(Stage::Pending).pop()
    }

    fn days(&self, since: DateTime<Utc>) -> i64 {
        (self.now - since).num_days()
    }

    fn retire_requested(&mut self, kid: &Kid, force: bool) -> Result<(), Refusal> {
        let Some(rec) = self.recs.iter().find(|r| r.kid == *kid).cloned() else {
            return Err(Refusal(format!(
                "key set {} has no key {kid}; `jwk-rotator status {}` lists its keys",
                self.set, self.set
            )));
        };
        if rec.stage == Stage::Retired {
            return Err(Refusal(format!("{kid} is already retired")));
        }
        if rec.stage == Stage::Current && self.pending().is_none() && !force {
            return Err(Refusal(format!(
                "{kid} is the only key applications of {} can use; retiring it breaks them until a new key is uploaded and they restart. Run `jwk-rotator rotate --force {}` first, or repeat with --force if the key is compromised",
                self.set, self.set
            )));
        }
        self.push(Action::Retire { kid: kid.clone() }, "retired on request".to_owned());
        Ok(())
    }

    /// Repairs what an interrupted run can leave: two current keys, or two pending ones.
    fn converge(&mut self) {
        let mut currents = self.with_stage(Stage::Current);
        currents.sort_by_key(|r| (r.activated.unwrap_or(r.created), r.kid.clone()));
        if let Some(newest) = currents.pop() {
            for old in currents {
                let reason =
                    format!("{} took over; an earlier run stopped before demoting this one", newest.kid);
                self.push(Action::Demote { kid: old.kid }, reason);
            }
        }
        let mut pendings = self.with_stage(Stage::Pending);
        if let Some(newest) = pendings.pop() {
            for old in pendings {
                let reason = format!("superseded by the newer pending key {}", newest.kid);
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
        let (stage, reason) = match (&current, &pending) {
            (None, None) if self.recs.is_empty() => {
                (Stage::Current, "the key set has no key yet; its first key is current at once".to_owned())
            }
            (None, None) => {
                (Stage::Current, "no usable key is left; a new key is current at once".to_owned())
            }
            (Some(_), Some(p)) if force => {
                (Stage::Pending, format!("--force: a new pending key supersedes {}", p.kid))
            }
            (Some(_), None) if force => (Stage::Pending, "--force: a new key was asked for".to_owned()),
            (Some(c), None) if self.now - c.created >= self.policy.rotate_after.delta() => (
                Stage::Pending,
                format!(
                    "current key {} is {} days old; rotate_after is {}",
                    c.kid,
                    self.days(c.created),
                    self.policy.rotate_after
                ),
            ),
            (Some(c), None) if c.expires(self.policy) - self.now <= self.policy.warn_before.delta() => {
                let expires = c.expires(self.policy).date_naive();
                let reason = format!(
                    "current key {} expires on {expires}, within warn_before ({})",
                    c.kid, self.policy.warn_before
                );
                (Stage::Pending, reason)
            }
            _ => return,
        };
        let kid = self.new_kid();
        self.push(Action::Generate { kid, stage }, reason);
        if let (Some(p), true) = (pending, force) {
            let reason = "--force: superseded by a new pending key".to_owned();
            self.push(Action::Retire { kid: p.kid }, reason);
        }
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

    fn promote(&mut self, requested: bool) -> Result<(), Refusal> {
        let Some(pending) = self.pending() else {
            if requested {
                return Err(Refusal(format!(
                    "key set {} has no pending key to promote; `jwk-rotator rotate --force {}` makes one",
                    self.set, self.set
                )));
            }
            return Ok(());
        };
        let current = self.current();
        let waited = pending.published.map(|t| self.now - t);
        let reason = if requested {
            "promoted on request".to_owned()
        } else if current.is_none() {
            "the key set has no current key".to_owned()
        } else if self.policy.promotion == Promotion::AfterDelay
            && waited.is_some_and(|w| w >= self.policy.publish_ahead.delta())
        {
            format!(
                "published {} days ago; publish_ahead is {}",
                waited.unwrap_or_default().num_days(),
                self.policy.publish_ahead
            )
        } else {
            return Ok(());
        };
        self.push(Action::Promote { kid: pending.kid.clone() }, reason);
        if let Some(old) = current {
            let reason =
                format!("replaced by {}; stays published for overlap ({})", pending.kid, self.policy.overlap);
            self.push(Action::Demote { kid: old.kid }, reason);
        }
        Ok(())
    }

    fn retire_scheduled(&mut self) {
        let overlap = self.policy.overlap.delta();
        for r in self.with_stage(Stage::Previous) {
            let since = r.demoted.unwrap_or(r.created);
            if self.now - since >= overlap {
                let reason =
                    format!("previous for {} days; overlap is {}", self.days(since), self.policy.overlap);
                self.push(Action::Retire { kid: r.kid }, reason);
            }
        }
        for r in self.recs.clone() {
            let expires = r.expires(self.policy);
            if matches!(r.stage, Stage::Pending | Stage::Previous) && expires <= self.now {
                let reason = format!(
                    "expired on {} (kid date + max_age {})",
                    expires.date_naive(),
                    self.policy.max_age
                );
                self.push(Action::Retire { kid: r.kid }, reason);
            }
        }
        let mut previous = self.with_stage(Stage::Previous);
        previous.sort_by_key(|r| (r.demoted.unwrap_or(r.created), r.kid.clone()));
        let published = self.recs.iter().filter(|r| r.stage.is_published()).count();
        let excess = published.saturating_sub(self.policy.max_published as usize);
        for r in previous.into_iter().take(excess) {
            let reason = format!(
                "{published} keys would be published; max_published is {}",
                self.policy.max_published
            );
            self.push(Action::Retire { kid: r.kid }, reason);
        }
    }

    fn purge(&mut self) {
        let keep = self.policy.retain_retired.delta();
        for r in self.with_stage(Stage::Retired) {
            let since = r.retired.unwrap_or(r.created);
            if self.now - since >= keep {
                let reason = format!(
                    "retired {} days ago; retain_retired is {}",
                    self.days(since),
                    self.policy.retain_retired
                );
                self.push(Action::Purge { kid: r.kid }, reason);
            }
        }
    }
}
