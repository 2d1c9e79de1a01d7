//! Which stage each imported key gets, and the checks against the store it goes into.
//!
//! altinn-jwks's current key (the last of its set) becomes `current`; the others `previous`
//! while their kid date plus `max_age` lies ahead, else `retired`. Nothing else is promoted.

use std::collections::BTreeMap;

use super::plan::{Context, PlannedKey, SetPlan, day_start};
use crate::jwk::PrivateJwk;
use crate::kid::Kid;
use crate::planner::Action;
use crate::record::{KeyRecord, Stage};

/// A record for an imported key: created at its kid's day (00:00 UTC), so that rotation and
/// expiry run from the kid's date as if this tool had made the key.
fn record(key: &PrivateJwk, stage: Stage, ctx: &Context<'_>) -> KeyRecord {
    let created = day_start(key.kid().date());
    let mut r = KeyRecord::new(key.public().clone(), stage, created);
    r.written = Some(ctx.at.wall);
    match stage {
        Stage::Current | Stage::Previous => r.published = Some(ctx.at.now.max(created)),
        Stage::Pending | Stage::Retired => {}
    }
    match stage {
        Stage::Previous => r.demoted = Some(ctx.at.now.max(created)),
        Stage::Retired => r.retired = Some(ctx.at.now.max(created)),
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
    if expires <= ctx.at.now {
        plan.notes.push(format!(
            "current key {} expired on {} (kid date + max_age {}): `status` will report CRITICAL; run `jwk-rotator rotate --force {}` and register the new key at once",
            current.kid(),
            expires.date_naive(),
            policy.max_age(),
            plan.key_set
        ));
    }
    plan.keys.push(PlannedKey { record: current_record, expires, key: current.clone(), stored: false });
    let mut published = 1;
    for key in older.iter().rev() {
        let live = day_start(key.kid().date()) + policy.max_age().delta() > ctx.at.now;
        if live && published >= policy.max_published() {
            plan.left_out.push((
                key.kid().clone(),
                format!(
                    "not imported: {} keys of {} would be published and max_published is {}; remove it from the client in Samarbeidsportalen",
                    older.len() + 1,
                    plan.key_set,
                    policy.max_published()
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

/// An import goes only into an empty key set, into one that holds the same keys already (a
/// second import, or the rest of an interrupted one), or into one that holds only keys that
/// `rotate` made before the import and nobody promoted (see [`made_before_the_import`]): never
/// over keys that someone may be using.
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
    let others: Vec<&KeyRecord> =
        existing.iter().filter(|r| !plan.keys.iter().any(|k| k.record.kid == r.kid)).collect();
    if others.iter().all(|r| made_before_the_import(r)) {
        supersede(plan, &others, ctx);
    } else {
        for r in others {
            plan.problems.push(format!(
                "the store holds {} already, which this import does not have: {set} has keys of its own that were promoted or imported, and an import goes only into a key set whose keys nobody can be using",
                r.kid
            ));
        }
    }
    if !existing.is_empty()
        && plan.is_clean()
        && plan.to_write().next().is_none()
        && plan.superseded.is_empty()
    {
        plan.notes.push(format!("{set} was imported already; nothing to write"));
    }
}

/// Whether `r` is a key that `rotate` made, and that nobody can be using: made and published in
/// one run (an import records its keys as published later than they were made), and never
/// promoted: current only as an empty key set's first key (at the moment it was made), or never
/// current at all. A schedule that ran before the import makes such keys.
fn made_before_the_import(r: &KeyRecord) -> bool {
    r.published == Some(r.created) && r.activated.is_none_or(|a| a == r.created)
}

/// Plans the keys `rotate` made before the import out of the way: the current one becomes
/// previous (still published for `overlap`, in case someone added it in Samarbeidsportalen) or,
/// without room under `max_published`, retired; a pending one is retired (nobody signs with it).
fn supersede(plan: &mut SetPlan, keys: &[&KeyRecord], ctx: &Context<'_>) {
    let published = plan.keys.iter().filter(|k| k.record.stage.is_published()).count()
        + keys.iter().filter(|r| r.stage == Stage::Previous).count();
    let room = published < ctx.policy.max_published() as usize;
    for r in keys.iter().filter(|r| matches!(r.stage, Stage::Current | Stage::Pending)) {
        let (action, stage) = match r.stage {
            Stage::Current if room => (Action::Demote { kid: r.kid.clone() }, Stage::Previous),
            _ => (Action::Retire { kid: r.kid.clone() }, Stage::Retired),
        };
        let mut record = (*r).clone();
        crate::planner::transition(&mut record, &action, ctx.at);
        plan.notes.push(format!(
            "{} was made by `rotate` before the import and never promoted: it becomes {stage}; if you added it in Samarbeidsportalen, remove it there once no application uses it",
            r.kid
        ));
        plan.superseded.push(record);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::read::{Found, Layout, Part, PartError};
    use crate::jwk::private_set_from_json;
    use crate::policy::Policy;

    const VECTOR: &str = include_str!("../../tests/data/testklient-TEST.2024-07-10.key.b64");

    /// A private set read from the JSON `json` of a file `a-TEST.jwks.json`.
    fn private(json: &str) -> Result<Vec<crate::jwk::SetMember>, PartError> {
        private_set_from_json(json.as_bytes()).map_err(|e| PartError::Unreadable {
            part: Part::PrivateSet,
            name: "a-TEST.jwks.json".to_owned(),
            cause: e.to_string(),
        })
    }

    fn found(kids: &[&str]) -> Found {
        let key = PrivateJwk::from_base64(VECTOR).expect("vector");
        let members: Vec<String> = kids
            .iter()
            .map(|k| key.relabel(k.parse().expect("kid"), key.public().alg).to_json().as_str().to_owned())
            .collect();
        let json = format!("{{\"keys\":[{}]}}", members.join(","));
        Found {
            key_set: "a-TEST".parse().expect("set"),
            layout: Layout::V2Directory,
            sources: vec!["a-TEST.jwks.json".to_owned()],
            private: private(&json),
            public: None,
            current: None,
            problems: Vec::new(),
        }
    }

    fn plan_of(found: &Found, existing: &[KeyRecord], vault: bool) -> SetPlan {
        let policy = Policy::default();
        let name = |kid: &Kid| crate::azure::layout::secret_name("jwk-", kid);
        let ctx = Context {
            policy: &policy,
            client: "[[client]] a".to_owned(),
            existing: Ok(existing),
            secret_name: vault.then_some(&name as &crate::import::plan::SecretName<'_>),
            at: "2025-08-10T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("now").into(),
        };
        crate::import::plan::plan(found, &ctx)
    }

    #[test]
    fn kids_that_differ_only_in_case_are_refused_for_key_vault_only() {
        // The same key under two kids is refused anyway; here only the names matter.
        let f = found(&["a-TEST.abcd", "a-TEST.ABCD"]);
        let plan = plan_of(&f, &[], true);
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("would both be Key Vault secret jwk-a-TEST--")
                    && p.contains("ignore case")),
            "{:?}",
            plan.problems
        );
        let plan = plan_of(&f, &[], false);
        assert!(!plan.problems.iter().any(|p| p.contains("ignore case")), "{:?}", plan.problems);
    }

    #[test]
    fn the_last_key_is_current_and_only_current_keys_come_from_current() {
        let f = found(&["a-TEST.2025-06-01", "a-TEST.2025-07-01"]);
        let plan = plan_of(&f, &[], false);
        let stages: Vec<(String, Stage)> =
            plan.keys.iter().map(|k| (k.record.kid.to_string(), k.record.stage)).collect();
        assert_eq!(
            stages,
            [
                ("a-TEST.2025-07-01".to_owned(), Stage::Current),
                ("a-TEST.2025-06-01".to_owned(), Stage::Previous)
            ]
        );
        let current = &plan.keys[0].record;
        assert_eq!(
            current.created,
            "2025-07-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("t")
        );
        assert!(
            plan.problems.iter().any(|p| p.contains("hold the same key")),
            "same key twice: {:?}",
            plan.problems
        );
    }

    #[test]
    fn a_kid_that_may_hold_anything_is_not_quoted() {
        let key = PrivateJwk::from_base64(VECTOR).expect("vector");
        let d = serde_json::from_str::<serde_json::Value>(&key.to_json()).expect("json")["d"]
            .as_str()
            .expect("d")
            .to_owned();
        let json =
            key.to_json().replace("\"kid\":\"testklient-TEST.2024-07-10\"", &format!("\"kid\":\"{d}\""));
        let mut f = found(&["a-TEST.2025-07-01"]);
        f.private = private(&format!("{{\"keys\":[{json}]}}"));
        let plan = plan_of(&f, &[], false);
        let text = plan.problems.join("\n");
        assert!(text.contains("a key whose kid is not a-TEST.SUFFIX (not shown)"), "{text}");
        assert!(!text.contains(&d[..16]), "{text}");
        assert!(!format!("{plan:?}").contains(&d[..16]), "Debug shows no private member");
    }

    #[test]
    fn a_key_size_no_policy_allows_is_refused() {
        let key = PrivateJwk::from_base64(VECTOR).expect("vector");
        let n = key.public().n.clone();
        let short = &n[..171]; // 1024 bits' worth of base64url (128 bytes)
        let json = key.to_json().replace(&n, short);
        let mut f = found(&["a-TEST.2025-07-01"]);
        let json = json.replace("testklient-TEST.2024-07-10", "a-TEST.2025-07-01");
        f.private = private(&format!("{{\"keys\":[{json}]}}"));
        let plan = plan_of(&f, &[], false);
        let text = plan.problems.join("\n");
        assert!(
            text.contains("kid a-TEST.2025-07-01 is an RSA-1024 key, a size no key_size allows"),
            "{text}"
        );
    }
}
