//! The fake's registry: clients with every version of their key set, issued access tokens,
//! used `jti`s, the request and grant logs, and the faults tests have asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use super::clock::Clock;

/// How long an access token from the fake lives (`maskinporten_protocol_token`: `expires_in`).
pub const TOKEN_LIFETIME: i64 = 120;

/// The end of a key's life when it is registered at `at` without `exp`: one year on
/// (`maskinporten_feilsoking`, MP-121: "Nøkler har 1 års levetid fra det tidspunktet de blir
/// postet på klienten"; `oidc_func_clientreg`: "Maks tillatt levetid er satt til 1 år").
pub fn one_year_after(at: DateTime<Utc>) -> DateTime<Utc> {
    at.checked_add_months(Months::new(12)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A registered public key, as the self-service API stores and returns it
/// (`oidc_api_admin`, "Bruk av asymmetrisk nøkkel": `kty, alg, use, e, n` and `kid`; `exp`
/// is the end of the key's one-year life, in epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    pub kid: String,
    pub alg: String,
    /// `None` for a key registered before Digdir required `use` (2025-05-22): GET returns it
    /// without the member, and a POST of it as returned is refused (okdata-maskinporten-api,
    /// commit e12da91: "Existing keys don't have this field, so it has to be patched in").
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    pub kty: String,
    pub e: String,
    pub n: String,
    pub exp: i64,
}

impl Key {
    /// A key from a JWK that someone registered outside the API (the portal, another tool):
    /// its members as given, `exp` one year from `now` when it has none.
    pub fn from_jwk(jwk: &Value, now: DateTime<Utc>) -> Key {
        let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
        let exp = jwk["exp"].as_i64().unwrap_or_else(|| one_year_after(now).timestamp());
        Key {
            kid: member("kid"),
            alg: member("alg"),
            use_: jwk["use"].as_str().map(str::to_owned),
            kty: member("kty"),
            e: member("e"),
            n: member("n"),
            exp,
        }
    }
}

/// The organisation number every client of the fake belongs to unless a test says otherwise.
pub const ORG: &str = "910000001";

/// One Maskinporten client (an "integrasjon"), an ordinary one or an organisation's
/// self-service (admin) client.
pub struct Client {
    pub id: String,
    /// The organisation number the client is bound to. An admin client's token reaches only
    /// the clients of its own organisation (`oidc_api_admin`, "Bruk av Oauth2": the `dcr`
    /// scopes give access to "klienter bundet mot samme org.nr. som gitt i access_token").
    pub org: String,
    /// Scopes the client may ask for (`maskinporten_protocol_jwtgrant`: "the client must have
    /// pre-registered with rights to all the scopes").
    pub scopes: BTreeSet<String>,
    /// For a client that authenticates with a business certificate (`x5c` grants, as the
    /// self-service client must, `oidc_api_admin`): the subject CN it is bound to.
    pub certificate_subject: Option<String>,
    pub created: DateTime<Utc>,
    /// Every version of the registered key set with the time it was set, oldest first.
    history: Vec<(DateTime<Utc>, Vec<Key>)>,
}

impl Client {
    pub fn new(id: &str, scopes: &[&str], certificate_subject: Option<&str>, now: DateTime<Utc>) -> Client {
        Client {
            id: id.to_owned(),
            org: ORG.to_owned(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            certificate_subject: certificate_subject.map(str::to_owned),
            created: now,
            history: Vec::new(),
        }
    }

    /// The key set as registered now: what the API stores and returns.
    pub fn keys(&self) -> &[Key] {
        self.history.last().map(|(_, keys)| keys.as_slice()).unwrap_or_default()
    }

    /// The key set as it was at `at`: what the token endpoint knows when changes take
    /// `propagation` to reach it.
    pub fn keys_as_of(&self, at: DateTime<Utc>) -> &[Key] {
        let known = self.history.iter().rev().find(|(set_at, _)| *set_at <= at);
        known.map(|(_, keys)| keys.as_slice()).unwrap_or_default()
    }

    pub fn set_keys(&mut self, at: DateTime<Utc>, keys: Vec<Key>) {
        self.history.push((at, keys));
    }

    pub fn last_updated(&self) -> DateTime<Utc> {
        self.history.last().map_or(self.created, |(at, _)| *at)
    }
}

/// An access token the fake issued, for the API's bearer check.
#[derive(Debug, Clone)]
pub struct Token {
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub expires: DateTime<Utc>,
}

/// How GET answers for a client without keys; Digdir has been seen doing both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmptyJwks {
    /// 404, as for an unknown client.
    #[default]
    NotFound,
    /// 200 with `created` and `last_updated` but no `keys` member.
    OmitKeys,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The client in the API path, or the `iss` of a token request's assertion.
    pub client_id: Option<String>,
    pub status: u16,
}

/// One grant the token endpoint (or `grant_in_process`) judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The assertion's `iss`, when it had one.
    pub client_id: Option<String>,
    /// The header's `kid`, when it had one.
    pub kid: Option<String>,
    /// The subject CN of the `x5c` leaf, when the grant carried a certificate that parsed.
    pub certificate: Option<String>,
    pub outcome: GrantOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    Granted {
        scope: String,
    },
    /// `error` is the OAuth2 code, `code` the MP code when Digdir documents one, `reason`
    /// what the fake found wrong (tests assert on it; Digdir's answer does not carry it).
    Refused {
        error: String,
        code: Option<String>,
        reason: String,
    },
}

impl GrantRecord {
    pub fn granted(&self) -> bool {
        matches!(self.outcome, GrantOutcome::Granted { .. })
    }

    /// The MP code of a refusal (`MP-121`), if it has one.
    pub fn code(&self) -> Option<&str> {
        match &self.outcome {
            GrantOutcome::Refused { code, .. } => code.as_deref(),
            GrantOutcome::Granted { .. } => None,
        }
    }

    /// What the fake found wrong, empty for a granted request.
    pub fn reason(&self) -> &str {
        match &self.outcome {
            GrantOutcome::Refused { reason, .. } => reason,
            GrantOutcome::Granted { .. } => "",
        }
    }
}

/// A change to a client's registered keys, made as a person in the portal would.
pub type Edit = Box<dyn FnOnce(&mut Vec<Key>) + Send>;

/// An answer injected for the next matching requests, before they reach the service.
#[derive(Debug, Clone)]
pub struct Injected {
    pub remaining: u32,
    pub status: u16,
    /// `Retry-After` seconds, for 429.
    pub retry_after: Option<u64>,
    /// Only requests whose path contains this; all when `None`.
    pub path_contains: Option<String>,
}

/// Faults that tests switch on.
#[derive(Default)]
pub struct Faults {
    /// Every request answers 503.
    pub down: bool,
    pub injected: Vec<Injected>,
    /// Kids that GET leaves out although they are registered.
    pub dropped_from_readback: HashSet<String>,
    /// Edits applied right after the next GET of a client's keys has been answered.
    pub after_next_get: HashMap<String, Vec<Edit>>,
}

impl Faults {
    /// The injected answer for a request to `path`, counting it down.
    pub fn take_injected(&mut self, path: &str) -> Option<Injected> {
        let hit = self
            .injected
            .iter_mut()
            .find(|i| i.remaining > 0 && i.path_contains.as_deref().is_none_or(|part| path.contains(part)))?;
        hit.remaining -= 1;
        let answer = hit.clone();
        self.injected.retain(|i| i.remaining > 0);
        Some(answer)
    }
}

/// How the API may store a key differently from how it was sent, as a real service may
/// (issue 19: compare by value, not by JSON text). Both are off by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Storage {
    /// `exp` is stored as at most this far ahead of the fake's clock: a service that clamps
    /// the lifetime it was sent ("Maks tillatt levetid er satt til 1 år", `oidc_func_clientreg`,
    /// counted its own way).
    pub exp_clamp: Option<TimeDelta>,
    /// `n` is stored with a leading zero byte when its first bit is set, as a two's-complement
    /// big integer (Java's `BigInteger.toByteArray`) writes it.
    pub n_sign_byte: bool,
}

/// Everything the fake knows; one lock guards it.
#[derive(Default)]
pub struct Registry {
    pub clock: Clock,
    pub storage: Storage,
    /// How long a change to a key set takes to reach the token endpoint.
    pub propagation: TimeDelta,
    pub empty_jwks: EmptyJwks,
    pub clients: BTreeMap<String, Client>,
    pub tokens: HashMap<String, Token>,
    pub used_jtis: HashSet<String>,
    pub requests: Vec<RequestRecord>,
    /// The `keys` of every POST or PUT on a key set, as sent, with the fake's time.
    pub posted: Vec<(DateTime<Utc>, Vec<Value>)>,
    pub grants: Vec<GrantRecord>,
    pub faults: Faults,
}

impl Registry {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The keys of `client_id` that the token endpoint knows now.
    pub fn propagated_keys(&self, client_id: &str) -> &[Key] {
        let as_of = self.now() - self.propagation;
        self.clients.get(client_id).map(|c| c.keys_as_of(as_of)).unwrap_or_default()
    }

    /// The client (other than `except`) that has `kid` registered, if any.
    pub fn kid_owner(&self, kid: &str, except: &str) -> Option<&str> {
        let mut others = self.clients.values().filter(|c| c.id != except);
        others.find(|c| c.keys().iter().any(|k| k.kid == kid)).map(|c| c.id.as_str())
    }

    /// A new random access token for `client_id` with `scopes`, valid for [`TOKEN_LIFETIME`].
    pub fn issue_token(&mut self, client_id: &str, scopes: BTreeSet<String>) -> String {
        let value = super::random_id(32);
        let expires = self.now() + TimeDelta::seconds(TOKEN_LIFETIME);
        self.tokens.insert(value.clone(), Token { client_id: client_id.to_owned(), scopes, expires });
        value
    }

    /// The token behind a bearer value, if it is one the fake issued and it has not expired.
    pub fn valid_token(&self, bearer: &str) -> Option<&Token> {
        self.tokens.get(bearer).filter(|t| t.expires > self.now())
    }
}
