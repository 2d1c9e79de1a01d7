//! Which stage each imported key gets, and the checks against the store it goes into.
//!
//! altinn-jwks's current key (the last of its set) becomes `current`; the others `previous`
//! while their kid date plus `max_age` lies ahead, else `retired`. Nothing else is promoted.

use std::collections::BTreeMap;

use super::plan::{Context, PlannedKey, SetPlan, day_start};
use crate::jwk::PrivateJwk;
use crate::kid::Kid;
use crate::record::{KeyRecord, Stage};

/// A record for an imported key: created at its kid's day (00:00 UTC), so that rotation and
/// expiry run from the kid's date as if this tool had made the key.
fn record(key: &PrivateJwk, stage: Stage, ctx: &Context<'_>) -> KeyRecord {
    let created = day_start(key.kid().date());
    let mut r = KeyRecord::new(key.public().clone(), stage, created);
    match stage {
        Stage::Current | Stage::Previous => r.published = Some(ctx.now.max(created)),
        Stage::Pending | Stage::Retired => {}
    }
    match stage {
        Stage::Previous => r.demoted = Some(ctx.now.max(created)),
        Stage::Retired => r.retired = Some(ctx.now.max(created)),
        Stage::Pending | Stage::Current => {}
    }
    r
}

/// Gives every key its stage, and leaves out the oldest published ones beyond `max_published`.
pub(super) fn assign(plan: &mut SetPlan, keys: Vec<PrivateJwk>, ctx: &Context<'_>) {
    let Some((current, older)) = keys.split_last() else { return };
    let policy = ctx.policy;
    let current_record = record(current, Stage::Current, ctx);
    let expires = current_record.expires(policy);
    if expires <= ctx.now {
        plan.notes.push(format!(
            "current key {} expired on {} (kid date + max_age {}): `status` will report CRITICAL; run `jwk-rotator rotate --force {}` and register the new key at once",
            current.kid(),
            expires.date_naive(),
            policy.max_age,
            plan.key_set
        ));
    }
    plan.keys.push(PlannedKey { record: current_record, expires, key: current.clone(), stored: false });
    let mut published = 1;
    for key in older.iter().rev() {
        let live = day_start(key.kid().date()) + policy.max_age.delta() > ctx.now;
        if live && published >= policy.max_published {
            plan.left_out.push((
                key.kid().clone(),
                format!(
                    "not imported: {} keys of {} would be published and max_published is {}; remove it from the client in Samarbeidsportalen",
                    older.len() + 1,
                    plan.key_set,
                    policy.max_published
                ),
            ));
            continue;
        }
        let stage = if live { Stage::Previous } else { Stage::Retired };
        published += u32::from(live);
        let record = record(key, stage, ctx);
        let expires = record.expires(policy);
        plan.keys.push(PlannedKey { record, expires, key: key.clone(), stored: false });
    }
}

/// An import goes only into an empty key set, or into one that holds the same keys already (a
/// second import, or the rest of an interrupted one): never over other keys.
pub(super) fn compare_with_store(plan: &mut SetPlan, ctx: &Context<'_>) {
    let set = plan.key_set.clone();
    let existing = match &ctx.existing {
        Ok(records) => *records,
        Err(e) => return plan.problems.push(format!("the store could not read key set {set}: {e}")),
    };
    for planned in &mut plan.keys {
        let kid = &planned.record.kid;
        match existing.iter().find(|r| r.kid == *kid) {
            Some(r) if r.public.n == planned.record.public.n => planned.stored = true,
            Some(_) => plan.problems.push(format!(
                "the store holds {kid} already, with another key: nothing of {set} is imported; find out which key Maskinporten knows"
            )),
            None => {}
        }
    }
    for r in existing.iter().filter(|r| !plan.keys.iter().any(|k| k.record.kid == r.kid)) {
        plan.problems.push(format!(
            "the store holds {} already, which this import does not have: {set} has keys of its own, and an import goes only into an empty key set",
            r.kid
        ));
    }
    if !existing.is_empty() && plan.is_clean() && plan.to_write().next().is_none() {
        plan.notes.push(format!("{set} was imported already; nothing to write"));
    }
}

/// For a Key Vault store: every kid needs a secret name, and no two may share one (secret
/// names ignore case, kids do not).
pub(super) fn check_names(plan: &mut SetPlan, ctx: &Context<'_>) {
    let Some(name_of) = ctx.secret_name else { return };
    let existing = ctx.existing.as_ref().map(|r| *r).unwrap_or_default();
    let kids: Vec<&Kid> =
        plan.keys.iter().map(|k| &k.record.kid).chain(existing.iter().map(|r| &r.kid)).collect();
    let mut names: BTreeMap<String, &Kid> = BTreeMap::new();
    let mut problems = Vec::new();
    for kid in kids {
        match name_of(kid) {
            Ok(name) => match names.insert(name.to_ascii_lowercase(), kid) {
                Some(other) if other != kid => problems.push(format!(
                    "kids {other} and {kid} would both be Key Vault secret {name}, as secret names ignore case: import one of them only by hand, or use the file store"
                )),
                _ => {}
            },
            Err(e) => problems.push(format!("kid {kid} can not be a Key Vault secret name: {e}")),
        }
    }
    plan.problems.extend(problems);
}
