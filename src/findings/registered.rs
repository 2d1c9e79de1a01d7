//! The findings about what Maskinporten has registered for a key set (through Digdir's API) and
//! about proofs: drift from the store, an `exp` changed by hand, keys not managed here, an API
//! that can not be read, and a failing verification.

use super::{Context, Finding, FindingKind, Severity};
use crate::proof::Attempt;
use crate::publish::{EXPIRY_MARGIN, PublishError, Registered, same_exp};
use crate::record::Stage;

impl Context<'_> {
    /// The client's registered keys against the store: keys removed or added by hand in
    /// Samarbeidsportalen, an `exp` other than ours, and keys this tool does not manage.
    pub(super) fn drift(&self, registered: &Registered) -> Vec<Finding> {
        let (set, client) = (self.set, &registered.client_id);
        let mut out = Vec::new();
        for r in self.records.iter().filter(|r| r.stage.is_published() && r.published.is_some()) {
            let kid = r.kid.to_string();
            let Some(theirs) = registered.get(&kid) else {
                if r.expires(self.policy) <= self.now + EXPIRY_MARGIN {
                    continue; // not sent, as Maskinporten refuses it: `expired` reports it
                }
                let (severity, effect) = if r.stage == Stage::Current {
                    (Severity::Critical, "token requests signed with it fail until it is registered again")
                } else {
                    (Severity::Warning, "it must be registered before it is used")
                };
                let msg = format!(
                    "{set}: {} key {kid} is not registered on Maskinporten client {client}: someone removed it in Samarbeidsportalen, or another tool replaced the key set; {effect}. `jwk-rotator rotate {set}` registers it again",
                    r.stage
                );
                out.push(self.finding(severity, FindingKind::RegistrationDrift, Some(&r.kid), None, msg));
                continue;
            };
            let ours = r.expires(self.policy);
            if let Some(exp) = theirs.exp.filter(|e| !same_exp(Some(e.timestamp()), Some(ours.timestamp()))) {
                let effect = if exp < ours {
                    "Maskinporten stops accepting it earlier; expiry alerts use Maskinporten's date"
                } else {
                    "jwk-rotator retires it on its own date"
                };
                let msg = format!(
                    "{set}: Maskinporten client {client} has {kid} registered until {}, jwk-rotator until {} (kid date + max_age {}): it was changed by hand, or Digdir keeps another exp than it is sent; {effect}. An upload sends jwk-rotator's again",
                    exp.to_rfc3339(),
                    ours.to_rfc3339(),
                    self.policy.max_age()
                );
                out.push(self.finding(
                    Severity::Warning,
                    FindingKind::RegisteredExpiry,
                    Some(&r.kid),
                    None,
                    msg,
                ));
            }
        }
        for theirs in &registered.keys {
            let ours = self.records.iter().find(|r| r.kid.to_string() == theirs.kid);
            match ours {
                Some(r) if r.stage.is_published() => {}
                Some(r) => {
                    let msg = format!(
                        "{set}: {} key {} is registered on Maskinporten client {client} again: someone added it in Samarbeidsportalen. `jwk-rotator rotate {set}` removes it; if it is still in use, find out why before the next run",
                        r.stage, theirs.kid
                    );
                    out.push(self.finding(
                        Severity::Warning,
                        FindingKind::RegistrationDrift,
                        Some(&r.kid),
                        None,
                        msg,
                    ));
                }
                None => {
                    let until = theirs
                        .exp
                        .map_or_else(|| "no exp".to_owned(), |e| format!("until {}", e.date_naive()));
                    let msg = format!(
                        "{set}: Maskinporten client {client} has key {:?} ({until}) that jwk-rotator does not manage; it is kept on every upload and counts towards the 5 keys a client may have (prune_unmanaged = true removes it)",
                        theirs.kid
                    );
                    out.push(self.finding(Severity::Ok, FindingKind::UnmanagedKey, None, None, msg));
                }
            }
        }
        out
    }

    pub(super) fn unreachable(&self, e: &PublishError) -> Finding {
        let msg = format!(
            "{}: what Maskinporten has registered could not be read: {e}; until it can, new keys are not registered and not promoted",
            self.set
        );
        self.finding(Severity::Warning, FindingKind::MaskinportenUnreachable, None, None, msg)
    }

    /// The pending key is due for a verified promotion and the last grant with it failed.
    pub(super) fn verification_failing(&self, attempt: Option<&Attempt>) -> Option<Finding> {
        let attempt = attempt?;
        let error = attempt.outcome.as_ref().err()?;
        let p = self.pending().filter(|p| p.kid == attempt.kid)?;
        let set = self.set;
        let msg = format!(
            "{set}: pending key {} is due for promotion, but a token grant signed with it failed at {}: {error}. It stays pending; `jwk-rotator verify {set}` tries again",
            p.kid,
            attempt.at.to_rfc3339()
        );
        let days = (self.expires(p) - self.now).num_days();
        Some(self.finding(Severity::Warning, FindingKind::VerificationFailing, Some(&p.kid), Some(days), msg))
    }
}
