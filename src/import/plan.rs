//! The import plan of one key set: every check the issue asks for, and which key becomes which
//! stage. Pure: it takes what was found, the policy, what the store holds and `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::read::{Found, Layout, PublicMember};
use crate::jwk::{JwkError, PrivateJwk, SetMember};
use crate::kid::{KeySet, Kid};
use crate::lifecycle::CLOCK_SKEW;
use crate::moment::Moment;
use crate::policy::Policy;
use crate::record::KeyRecord;
use crate::store::StoreError;

/// One key the import brings in.
#[derive(Debug)]
pub struct PlannedKey {
    pub record: KeyRecord,
    /// The kid date plus `max_age`.
    pub expires: DateTime<Utc>,
    pub key: PrivateJwk,
    /// Already in the store (same kid, same modulus): nothing to write.
    pub stored: bool,
}

/// The plan for one key set. It is written only when `problems` is empty.
#[derive(Debug)]
pub struct SetPlan {
    pub key_set: KeySet,
    pub layout: Layout,
    pub sources: Vec<String>,
    /// Current first, then the others newest first.
    pub keys: Vec<PlannedKey>,
    /// Keys left out because the set holds more than `max_published`, with why.
    pub left_out: Vec<(Kid, String)>,
    /// Worth knowing, but no reason to refuse.
    pub notes: Vec<String>,
    pub problems: Vec<String>,
    /// The consumer secret is altinn-jwks's own and holds the current key: leave it alone.
    pub leave_consumer: bool,
    /// Keys that `rotate` made in the key set before the import and that nobody promoted, as
    /// they are written before the imported keys: the current one demoted, the others retired.
    pub superseded: Vec<KeyRecord>,
}

impl SetPlan {
    pub(crate) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Keys this import would write.
    pub(crate) fn to_write(&self) -> impl Iterator<Item = &PlannedKey> {
        self.keys.iter().filter(|k| !k.stored)
    }
}

/// The Key Vault secret name of a kid, or why it can not have one.
pub(crate) type SecretName<'a> = dyn Fn(&Kid) -> Result<String, crate::azure::AzureError> + 'a;

/// What the plan needs besides the found set.
pub struct Context<'a> {
    pub policy: &'a Policy,
    /// Where the policy comes from, for messages: `[[client]] testklient`.
    pub client: String,
    /// The store's records of this key set.
    pub existing: Result<&'a [KeyRecord], StoreError>,
    /// The Key Vault secret name of a kid, for a vault store; `None` for the file store.
    pub secret_name: Option<&'a SecretName<'a>>,
    /// When the import runs: its time dates the transitions, its real clock the writes.
    pub at: Moment,
}

/// A kid text from a source, quoted only when it looks like a kid of `set`: a `kid` member may
/// hold anything, even a private value pasted into the wrong place.
fn shown_kid(text: Option<&str>, set: &KeySet) -> String {
    let prefix = format!("{set}.");
    match text {
        Some(t)
            if t.starts_with(&prefix)
                && t.len() <= prefix.len() + 40
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            format!("kid {t}")
        }
        Some(_) => format!("a key whose kid is not {set}.SUFFIX (not shown)"),
        None => "a key without a kid".to_owned(),
    }
}

/// Why one member of the private set can not be imported.
fn member_problem(member: &SetMember, set: &KeySet, e: &JwkError) -> String {
    let who = shown_kid(member.kid.as_deref(), set);
    let custom =
        member.kid.as_deref().is_some_and(|t| t.starts_with(&format!("{set}.")) && t.parse::<Kid>().is_err());
    if custom && who.starts_with("kid ") {
        return format!(
            "{who} has a suffix that is neither a date (YYYY-MM-DD) nor altinn-jwks 2.0's 4 characters (an altinn-jwks --suffix value), so its age is unknown and it can not be rotated by date: leave this key set with altinn-jwks, or let `jwk-rotator rotate` make a new key for it instead of importing"
        );
    }
    format!("{who}: {e}")
}

/// The keys of the private set that could be read, and a problem for each that could not.
fn parse_keys(found: &Found, problems: &mut Vec<String>) -> Vec<PrivateJwk> {
    let set = &found.key_set;
    let members = match &found.private {
        Ok(members) => members,
        Err(e) => {
            problems.push(e.to_string());
            return Vec::new();
        }
    };
    let mut keys = Vec::new();
    for member in members {
        match &member.key {
            Ok(key) if key.kid().key_set() != set => problems.push(format!(
                "kid {} is not of key set {set}; altinn-jwks never writes that: check the file or secret",
                key.kid()
            )),
            Ok(key) => keys.push(key.clone()),
            Err(e) => problems.push(member_problem(member, set, e)),
        }
    }
    if members.is_empty() {
        problems.push(format!("the private set of {set} holds no keys"));
    }
    keys
}

/// Duplicated kids, and one key under two kids.
fn check_duplicates(keys: &[PrivateJwk], problems: &mut Vec<String>) {
    let mut kids: BTreeMap<&Kid, usize> = BTreeMap::new();
    let mut moduli: BTreeMap<&str, &Kid> = BTreeMap::new();
    for key in keys {
        *kids.entry(key.kid()).or_default() += 1;
        if let Some(other) = moduli.insert(&key.public().n, key.kid())
            && other != key.kid()
        {
            problems.push(format!(
                "kids {other} and {} hold the same key; remove one of them from the set",
                key.kid()
            ));
        }
    }
    for (kid, count) in kids.into_iter().filter(|(_, n)| *n > 1) {
        problems.push(format!("kid {kid} is in the set {count} times; keep one of them and import again"));
    }
}

/// Keys that are not valid RSA keys, or that the policy does not allow.
fn check_keys(keys: &[PrivateJwk], ctx: &Context<'_>, problems: &mut Vec<String>) {
    let policy = ctx.policy;
    for key in keys {
        let kid = key.kid();
        if let Err(e) = key.to_key_pair() {
            problems.push(format!("kid {kid}: {e}"));
        }
        let bits = key.public().bits();
        if !matches!(bits, 2048 | 3072 | 4096) {
            problems.push(format!(
                "kid {kid} is an RSA-{bits} key, a size no key_size allows (2048, 3072 or 4096): leave it out, and let `jwk-rotator rotate` make a new key"
            ));
        } else if bits != policy.key_size().bits() as usize {
            problems.push(format!(
                "kid {kid} is an RSA-{bits} key, but key_size of {} is {}; set key_size = {bits} there (or in [defaults]) to import it",
                ctx.client,
                policy.key_size().bits()
            ));
        }
        if key.public().alg != policy.algorithm() {
            problems.push(format!(
                "kid {kid} has alg {}, but algorithm of {} is {}; set algorithm = \"{}\" there (or in [defaults]) to import it",
                key.public().alg,
                ctx.client,
                policy.algorithm(),
                key.public().alg
            ));
        }
        if day_start(kid.date()) > ctx.at.now + CLOCK_SKEW {
            problems.push(format!(
                "kid {kid} is dated {}, after now; check the clock (JWK_ROTATOR_NOW) or the kid",
                kid.date()
            ));
        }
    }
}

/// 1.x: the public set must hold exactly the private keys' public halves.
fn check_public(found: &Found, keys: &[PrivateJwk], problems: &mut Vec<String>) {
    let Some(public) = &found.public else { return };
    let public: &[PublicMember] = match public {
        Ok(p) => p,
        Err(e) => return problems.push(e.to_string()),
    };
    let set = &found.key_set;
    for key in keys {
        let p = key.public();
        let kid = p.kid.to_string();
        let matching = public.iter().filter(|m| m.kid.as_deref() == Some(kid.as_str())).collect::<Vec<_>>();
        let same =
            |m: &&PublicMember| m.n.as_deref() == Some(p.n.as_str()) && m.e.as_deref() == Some(p.e.as_str());
        match matching.as_slice() {
            [] => problems.push(format!("kid {kid} is in the private set of {set} but not in its public set")),
            [m] if same(m) => {}
            _ => problems.push(format!(
                "the public set of {set} has another public key for kid {kid} than its private set; find out which is registered in Maskinporten before importing"
            )),
        }
    }
    for m in public {
        if !keys.iter().any(|k| m.kid.as_deref() == Some(k.kid().to_string().as_str())) {
            let who = shown_kid(m.kid.as_deref(), set);
            problems.push(format!("{who} is in the public set of {set} but not in its private set"));
        }
    }
}

/// 1.x: the current key must be the private set's last key.
fn check_current(found: &Found, keys: &[PrivateJwk], problems: &mut Vec<String>) {
    let Some(current) = &found.current else { return };
    let current = match current {
        Ok(c) => c,
        Err(e) => return problems.push(e.to_string()),
    };
    match keys.last() {
        Some(last) if last.public() == current.public() => {}
        Some(last) => problems.push(format!(
            "the current key of {} ({}) is not the last key of its private set ({}); find out which key applications use before importing",
            found.key_set,
            current.kid(),
            last.kid()
        )),
        None => {}
    }
}

pub(super) fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Plans the import of one key set.
pub fn plan(found: &Found, ctx: &Context<'_>) -> SetPlan {
    let mut problems = found.problems.clone();
    let keys = parse_keys(found, &mut problems);
    check_duplicates(&keys, &mut problems);
    check_keys(&keys, ctx, &mut problems);
    check_public(found, &keys, &mut problems);
    check_current(found, &keys, &mut problems);
    let mut plan = SetPlan {
        key_set: found.key_set.clone(),
        layout: found.layout,
        sources: found.sources.clone(),
        keys: Vec::new(),
        left_out: Vec::new(),
        notes: Vec::new(),
        problems,
        leave_consumer: false,
        superseded: Vec::new(),
    };
    super::stages::assign(&mut plan, keys, ctx);
    super::stages::compare_with_store(&mut plan, ctx);
    super::stages::check_names(&mut plan, ctx);
    plan
}
