//! The fake vault's data: secrets with versions, soft-deleted secrets, throttling and the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// How long one second of the fake vault's clock lasts.
pub const SECOND: Duration = Duration::from_millis(20);
static START: LazyLock<Instant> = LazyLock::new(Instant::now);
/// 2026-11-21T00:00:00Z: the fake clock's start.
const EPOCH_AT_START: i64 = 1_795_219_200;

use serde_json::{Map, Value, json};

/// Which requests get 429 `Throttled`.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    /// Every n-th matching request is throttled; 0 never, 1 always.
    pub every: u32,
    /// Only requests whose path and query contain this.
    pub only: Option<String>,
    /// `Retry-After` seconds, sent on every other throttled answer (the others have none).
    pub retry_after: Option<u32>,
}

/// A per-vault request budget, as Key Vault enforces it: at most `limit` requests in each
/// window; beyond that 429 `Throttled` with `Retry-After` (the seconds left in the window).
/// Throttled requests do not count, as Microsoft documents for Key Vault.
#[derive(Debug, Clone)]
pub struct Budget {
    pub limit: u32,
    pub window: Duration,
    started: Instant,
    used: u32,
}

impl Budget {
    pub fn new(limit: u32, window: Duration) -> Budget {
        Budget { limit, window, started: Instant::now(), used: 0 }
    }

    /// Counts a request; `Some(seconds)` to wait when it is over the budget.
    fn admit(&mut self, now: Instant) -> Option<u32> {
        if now.duration_since(self.started) >= self.window {
            self.started = now;
            self.used = 0;
        }
        if self.used < self.limit {
            self.used += 1;
            return None;
        }
        let left = self.window.saturating_sub(now.duration_since(self.started));
        Some(u32::try_from(left.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).max(1))
    }
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct Ver {
    pub id: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: Option<Map<String, Value>>,
    pub enabled: bool,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

impl Ver {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.as_ref()?.get(name)?.as_str()
    }
}

/// A secret name with its versions, oldest first.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub versions: Vec<Ver>,
    pub deleted_at: Option<i64>,
}

/// The whole vault. Names are case-insensitive: maps are keyed by the lower-case name.
#[derive(Debug, Default)]
pub struct Vault {
    pub live: BTreeMap<String, Entry>,
    pub deleted: BTreeMap<String, Entry>,
    pub log: Vec<String>,
    pub throttle: Throttle,
    /// Key Vault's per-vault limit, if any.
    pub budget: Option<Budget>,
    /// How long every answer takes (a network round trip), outside the vault's lock.
    pub latency: Duration,
    /// Answers 429 because the budget was spent.
    pub over_budget: u64,
    matching: u64,
    throttled: u64,
    /// How many times purge and recover answer 409 right after a delete.
    pub conflicts_after_delete: u32,
    conflicts: HashMap<String, u32>,
    /// Added to the clock, to make versions look older or younger.
    pub clock_offset: i64,
    /// Requests whose path contains the text get this error instead.
    pub fail: Option<Failure>,
}

/// An error the fake answers to some requests, such as a missing role.
#[derive(Debug, Clone)]
pub struct Failure {
    pub path_contains: String,
    pub status: u16,
    pub code: String,
    pub inner: Option<String>,
}

pub enum Throttled {
    No,
    Yes { retry_after: Option<u32> },
}

impl Vault {
    /// The vault's clock in whole seconds, as Key Vault stamps versions. Its seconds last
    /// [`SECOND`]: as coarse as the real vault's, but quick, so that ties happen and tests
    /// that wait for a second to pass stay fast.
    pub fn now(&self) -> i64 {
        let elapsed = START.elapsed().as_millis() / SECOND.as_millis();
        EPOCH_AT_START + i64::try_from(elapsed).unwrap_or_default() + self.clock_offset
    }

    /// Whether this request is to be throttled: over the budget, or picked by `throttle`.
    pub fn throttle(&mut self, target: &str) -> Throttled {
        if let Some(wait) = self.budget.as_mut().and_then(|b| b.admit(Instant::now())) {
            self.over_budget += 1;
            return Throttled::Yes { retry_after: Some(wait) };
        }
        let t = &self.throttle;
        if t.every == 0 || t.only.as_deref().is_some_and(|o| !target.contains(o)) {
            return Throttled::No;
        }
        self.matching += 1;
        if !self.matching.is_multiple_of(u64::from(t.every)) {
            return Throttled::No;
        }
        self.throttled += 1;
        let retry_after = t.retry_after.filter(|_| self.throttled % 2 == 1);
        Throttled::Yes { retry_after }
    }

    /// Adds a version; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        name: &str,
        value: String,
        content_type: Option<String>,
        tags: Option<Map<String, Value>>,
        enabled: bool,
        exp: Option<i64>,
        nbf: Option<i64>,
    ) -> String {
        let now = self.now();
        let id = format!("{:032x}", rand::random::<u128>());
        let entry = self.live.entry(name.to_ascii_lowercase()).or_insert_with(|| Entry {
            name: name.to_owned(),
            versions: Vec::new(),
            deleted_at: None,
        });
        entry.versions.push(Ver {
            id: id.clone(),
            value,
            content_type,
            tags,
            enabled,
            exp,
            nbf,
            created: now,
            updated: now,
        });
        id
    }

    /// Soft-deletes a secret with all its versions.
    pub fn delete(&mut self, name: &str) -> Option<&Entry> {
        let key = name.to_ascii_lowercase();
        let mut entry = self.live.remove(&key)?;
        entry.deleted_at = Some(self.now());
        self.conflicts.insert(key.clone(), self.conflicts_after_delete);
        self.deleted.insert(key.clone(), entry);
        self.deleted.get(&key)
    }

    /// Whether purge or recover must still answer 409 for this freshly deleted name.
    pub fn conflict_pending(&mut self, name: &str) -> bool {
        match self.conflicts.get_mut(&name.to_ascii_lowercase()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A version as JSON. `with_value` for a GET of one version, `versioned_id` for everything but
/// the list of secrets (whose ids name no version).
pub fn bundle(base: &str, entry: &Entry, v: &Ver, with_value: bool, versioned_id: bool) -> Value {
    let id = if versioned_id {
        format!("{base}/secrets/{}/{}", entry.name, v.id)
    } else {
        format!("{base}/secrets/{}", entry.name)
    };
    let mut attributes = json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(exp) = v.exp {
        attributes["exp"] = exp.into();
    }
    if let Some(nbf) = v.nbf {
        attributes["nbf"] = nbf.into();
    }
    let mut out = json!({ "id": id, "attributes": attributes });
    if let Some(ct) = &v.content_type {
        out["contentType"] = ct.clone().into();
    }
    if let Some(tags) = &v.tags {
        out["tags"] = Value::Object(tags.clone());
    }
    if with_value {
        out["value"] = v.value.clone().into();
    }
    out
}

/// Key Vault's error body.
pub fn error_body(code: &str, message: &str, inner: Option<&str>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        error["innererror"] = json!({ "code": inner });
    }
    json!({ "error": error })
}
