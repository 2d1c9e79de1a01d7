//! The findings about what Maskinporten has registered for a key set (through Digdir's API) and
//! about proofs: drift from the store, an `exp` changed by hand, keys not managed here, an API
//! that can not be read, and a failing verification.

use super::{Context, Finding, FindingKind, Severity};
use crate::proof::Attempt;
use crate::publish::{EXPIRY_MARGIN, PublishError, Registered, RegisteredKey, same_exp};
use crate::record::{KeyRecord, Stage};

impl Context<'_> {
    /// The client's registered keys against the store: keys removed or added by hand in
    /// Samarbeidsportalen, an `exp` other than ours, and keys this tool does not manage.
    pub(super) fn drift(&self, registered: &Registered) -> Vec<Finding> {
        let client = registered.client_id.as_str();
        let ours = self.records.iter().filter(|r| r.stage.is_published() && r.published.is_some());
        let mut out: Vec<Finding> = ours
            .filter_map(|r| match registered.get(&r.kid.to_string()) {
                None => self.not_registered(r, client),
                Some(theirs) => self.other_exp(r, theirs, client),
            })
            .collect();
        out.extend(registered.keys.iter().filter_map(|theirs| self.registered_here(theirs, client)));
        out
    }

    /// A key this tool published that the client does not hold.
    fn not_registered(&self, r: &KeyRecord, client: &str) -> Option<Finding> {
        if r.expires(self.policy) <= self.now + EXPIRY_MARGIN {
            return None; // not sent, as Maskinporten refuses it: `expired` reports it
        }
        let (severity, effect) = if r.stage == Stage::Current {
            (Severity::Critical, "token requests signed with it fail until it is registered again")
        } else {
            (Severity::Warning, "it must be registered before it is used")
        };
        let (set, kid) = (self.set, &r.kid);
        let msg = format!(
            "{set}: {} key {kid} is not registered on Maskinporten client {client}: someone removed it in Samarbeidsportalen, or another tool replaced the key set; {effect}. `jwk-rotator rotate {set}` registers it again",
            r.stage
        );
        Some(self.finding(severity, FindingKind::RegistrationDrift, Some(&r.kid), None, msg))
    }

    /// A key the client holds with another `exp` than this tool's.
    fn other_exp(&self, r: &KeyRecord, theirs: &RegisteredKey, client: &str) -> Option<Finding> {
        let ours = r.expires(self.policy);
        let exp = theirs.exp.filter(|e| !same_exp(Some(e.timestamp()), Some(ours.timestamp())))?;
        let effect = if exp < ours {
            "Maskinporten stops accepting it earlier; expiry alerts use Maskinporten's date"
        } else {
            "jwk-rotator retires it on its own date"
        };
        let msg = format!(
            "{}: Maskinporten client {client} has {} registered until {}, jwk-rotator until {} (kid date + max_age {}): it was changed by hand, or Digdir keeps another exp than it is sent; {effect}. An upload sends jwk-rotator's again",
            self.set,
            r.kid,
            exp.to_rfc3339(),
            ours.to_rfc3339(),
            self.policy.max_age()
        );
        Some(self.finding(Severity::Warning, FindingKind::RegisteredExpiry, Some(&r.kid), None, msg))
    }

    /// A key the client holds that this tool does not publish: one it retired or has not
    /// published yet, or one it does not manage.
    fn registered_here(&self, theirs: &RegisteredKey, client: &str) -> Option<Finding> {
        let set = self.set;
        match self.records.iter().find(|r| r.kid.to_string() == theirs.kid) {
            Some(r) if r.stage.is_published() => None,
            Some(r) => {
                let msg = format!(
                    "{set}: {} key {} is registered on Maskinporten client {client} again: someone added it in Samarbeidsportalen. `jwk-rotator rotate {set}` removes it; if it is still in use, find out why before the next run",
                    r.stage, theirs.kid
                );
                Some(self.finding(Severity::Warning, FindingKind::RegistrationDrift, Some(&r.kid), None, msg))
            }
            None => {
                let until =
                    theirs.exp.map_or_else(|| "no exp".to_owned(), |e| format!("until {}", e.date_naive()));
                let msg = format!(
                    "{set}: Maskinporten client {client} has key {:?} ({until}) that jwk-rotator does not manage; it is kept on every upload and counts towards the 5 keys a client may have (prune_unmanaged = true removes it)",
                    theirs.kid
                );
                Some(self.finding(Severity::Ok, FindingKind::UnmanagedKey, None, None, msg))
            }
        }
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{Case, at, only, record, registered};
    use super::*;
    use crate::proof::ProofError;

    /// A current key and a pending one, both published; the kid date + 365 days is their exp.
    fn case() -> Case {
        let records =
            vec![record("2026-01-10", Stage::Current, true), record("2026-04-10", Stage::Pending, true)];
        Case::new(records, "2026-04-12T00:00:00Z")
    }

    fn exp(date: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        Some(at(&format!("{date}T00:00:00Z")))
    }

    #[test]
    fn a_client_that_holds_what_was_published_shows_no_drift() {
        let held =
            registered(&[("a-TEST.2026-01-10", exp("2027-01-10")), ("a-TEST.2026-04-10", exp("2027-04-10"))]);
        assert!(case().ctx().drift(&held).is_empty());
    }

    #[test]
    fn a_published_key_missing_from_the_client_is_drift_critical_for_the_current_key() {
        let c = case();
        let current_only = registered(&[("a-TEST.2026-01-10", exp("2027-01-10"))]);
        let f = only(c.ctx().drift(&current_only), FindingKind::RegistrationDrift, Severity::Warning);
        assert!(
            f.message
                .contains("pending key a-TEST.2026-04-10 is not registered on Maskinporten client client-id")
        );
        let pending_only = registered(&[("a-TEST.2026-04-10", exp("2027-04-10"))]);
        let f = only(c.ctx().drift(&pending_only), FindingKind::RegistrationDrift, Severity::Critical);
        assert!(f.message.contains("token requests signed with it fail"), "{}", f.message);
    }

    #[test]
    fn an_expired_key_missing_from_the_client_is_left_to_the_expired_finding() {
        let c = Case::new(vec![record("2025-01-10", Stage::Current, true)], "2026-01-11T00:00:00Z");
        assert!(c.ctx().drift(&registered(&[])).is_empty());
    }

    #[test]
    fn another_exp_on_the_client_warns_and_says_which_date_counts() {
        let c = case();
        let earlier =
            registered(&[("a-TEST.2026-01-10", exp("2026-12-01")), ("a-TEST.2026-04-10", exp("2027-04-10"))]);
        let f = only(c.ctx().drift(&earlier), FindingKind::RegisteredExpiry, Severity::Warning);
        assert!(
            f.message.contains("registered until 2026-12-01T00:00:00+00:00, jwk-rotator until 2027-01-10")
        );
        assert!(f.message.contains("stops accepting it earlier"), "{}", f.message);
        let later =
            registered(&[("a-TEST.2026-01-10", exp("2027-03-01")), ("a-TEST.2026-04-10", exp("2027-04-10"))]);
        let f = only(c.ctx().drift(&later), FindingKind::RegisteredExpiry, Severity::Warning);
        assert!(f.message.contains("retires it on its own date"), "{}", f.message);
    }

    #[test]
    fn a_retired_key_registered_again_is_drift_and_an_unknown_key_is_unmanaged() {
        let mut c = case();
        c.records.push(record("2025-10-10", Stage::Retired, true));
        let ours = [("a-TEST.2026-01-10", exp("2027-01-10")), ("a-TEST.2026-04-10", exp("2027-04-10"))];
        let again = registered(&[ours[0], ours[1], ("a-TEST.2025-10-10", exp("2026-10-10"))]);
        let f = only(c.ctx().drift(&again), FindingKind::RegistrationDrift, Severity::Warning);
        assert!(
            f.message.contains(
                "retired key a-TEST.2025-10-10 is registered on Maskinporten client client-id again"
            )
        );
        let foreign = registered(&[ours[0], ours[1], ("altinn-key", exp("2026-09-01"))]);
        let f = only(c.ctx().drift(&foreign), FindingKind::UnmanagedKey, Severity::Ok);
        assert!(
            f.message.contains("has key \"altinn-key\" (until 2026-09-01) that jwk-rotator does not manage")
        );
    }

    #[test]
    fn an_api_that_can_not_be_read_warns() {
        let c = case();
        let f =
            c.ctx().unreachable(&PublishError::Api { key_set: c.set.clone(), cause: "HTTP 503".to_owned() });
        assert_eq!((f.kind, f.severity), (FindingKind::MaskinportenUnreachable, Severity::Warning));
        assert!(f.message.contains("could not be read: a-TEST: HTTP 503; until it can"), "{}", f.message);
    }

    #[test]
    fn a_failed_grant_with_the_pending_key_warns_only_for_that_key() {
        let c = case();
        let failed = |kid: &str| Attempt {
            kid: kid.parse().expect("kid"),
            at: at("2026-04-11T00:00:00Z"),
            outcome: Err(ProofError {
                kind: crate::proof::ProofKind::UnknownKid,
                message: "unknown kid".to_owned(),
            }),
        };
        assert!(c.ctx().verification_failing(None).is_none());
        assert!(
            c.ctx().verification_failing(Some(&failed("a-TEST.2026-01-10"))).is_none(),
            "not the pending key"
        );
        let f = c.ctx().verification_failing(Some(&failed("a-TEST.2026-04-10"))).expect("a finding");
        assert_eq!((f.kind, f.severity), (FindingKind::VerificationFailing, Severity::Warning));
        assert!(f.message.contains("failed at 2026-04-11T00:00:00+00:00: unknown kid"), "{}", f.message);
        let proved = Attempt {
            outcome: Ok(crate::proof::Proof { scope: "s".into(), expires_in: 1 }),
            ..failed("a-TEST.2026-04-10")
        };
        assert!(c.ctx().verification_failing(Some(&proved)).is_none());
    }
}
