//! The finding about the admin client's business certificate: it expires soon, or has expired.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Finding, FindingKind, Severity};
use crate::policy::Target;
use crate::publish::CertificateExpiry;

/// A business certificate that expires within the first of its key sets' `warn_before`.
pub(super) fn finding(cert: &CertificateExpiry, targets: &[Target], now: DateTime<Utc>) -> Option<Finding> {
    let target = targets.iter().find(|t| cert.key_sets.contains(&t.key_set))?;
    let left = cert.not_after - now;
    let policy = &target.policy;
    let severity = if left <= policy.critical_before().delta() {
        Severity::Critical
    } else if left <= policy.warn_before().delta() {
        Severity::Warning
    } else {
        return None;
    };
    let when = if left <= TimeDelta::zero() {
        format!(
            "expired on {}: the tool can not read or register keys through Digdir's API",
            cert.not_after.date_naive()
        )
    } else {
        format!("expires on {}, in {} days", cert.not_after.date_naive(), left.num_days())
    };
    let msg = format!(
        "the admin client's business certificate {} ({}) {when}; order a new one from the certificate issuer, register it with Digdir for the admin client, and replace {}",
        cert.subject, cert.setting, cert.setting
    );
    Some(Finding::new(
        &target.key_set,
        severity,
        FindingKind::AdminCertificate,
        None,
        Some(left.num_days()),
        msg,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::fixtures::{SET, at};
    use crate::policy::Policy;

    fn cert(not_after: &str, sets: &[&str]) -> CertificateExpiry {
        CertificateExpiry {
            environment: "TEST".parse().expect("env"),
            setting: "[maskinporten.TEST] admin_certificate".to_owned(),
            subject: "CN=admin".to_owned(),
            not_after: at(not_after),
            key_sets: sets.iter().map(|s| s.parse().expect("set")).collect(),
        }
    }

    #[test]
    fn the_admin_certificate_warns_then_is_critical_then_expired() {
        let targets = crate::testing::targets(&[SET], &Policy::default());
        let now = at("2026-02-01T00:00:00Z");
        assert!(finding(&cert("2026-04-01T00:00:00Z", &[SET]), &targets, now).is_none());
        let cases = [
            ("2026-02-21T00:00:00Z", Severity::Warning, "expires on 2026-02-21, in 20 days"),
            ("2026-02-05T00:00:00Z", Severity::Critical, "expires on 2026-02-05, in 4 days"),
            ("2026-01-31T00:00:00Z", Severity::Critical, "expired on 2026-01-31"),
        ];
        for (not_after, severity, says) in cases {
            let f = finding(&cert(not_after, &[SET]), &targets, now).expect("a finding");
            assert_eq!((f.kind, f.severity), (FindingKind::AdminCertificate, severity));
            assert!(f.message.contains(says) && f.message.contains("CN=admin"), "{}", f.message);
        }
    }

    #[test]
    fn a_certificate_of_no_target_is_not_reported() {
        let targets = crate::testing::targets(&[SET], &Policy::default());
        let now = at("2026-02-01T00:00:00Z");
        assert!(finding(&cert("2026-01-31T00:00:00Z", &["b-TEST"]), &targets, now).is_none());
    }
}
