//! The findings about the consumer secret that applications read: it holds another key than
//! the current one, or a key this key set does not hold.

use super::{Context, Finding, FindingKind, Severity};
use crate::store::Consumer;

impl Context<'_> {
    /// What the consumer secret holds when applications read a key there that this key set
    /// does not hold: another tool's key, or one whose record is gone.
    pub(super) fn consumer_in_use(&self) -> Option<String> {
        match self.consumer? {
            Consumer::Empty => None,
            Consumer::Foreign => Some("a key jwk-rotator did not write".to_owned()),
            Consumer::Kid(kid) if !self.records.iter().any(|r| r.kid == *kid) => {
                Some(format!("key {kid}, which this key set does not hold"))
            }
            Consumer::Kid(_) => None,
        }
    }

    /// The consumer secret holds `holds`, which should be the current key.
    pub(super) fn consumer_not_current(&self, holds: &Consumer) -> Option<Finding> {
        let c = self.current()?;
        if holds.kid() == Some(&c.kid) {
            return None;
        }
        let held = match holds {
            Consumer::Kid(k) => format!("key {k}"),
            Consumer::Foreign => "a key jwk-rotator did not write".to_owned(),
            Consumer::Empty => "no usable key".to_owned(),
        };
        let msg = format!(
            "{}: the consumer secret holds {held}, not the current key {}; applications that restart read the wrong key. Run `jwk-rotator rotate {}` to rewrite it",
            self.set, c.kid, self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::ConsumerNotCurrent, Some(&c.kid), None, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{Case, only, record};
    use super::*;
    use crate::record::Stage;

    #[test]
    fn a_consumer_secret_without_the_current_key_is_critical() {
        let current = record("2026-01-10", Stage::Current, true);
        let case = Case::new(vec![current.clone()], "2026-02-01T00:00:00Z");
        assert!(case.ctx().consumer_not_current(&Consumer::Kid(current.kid.clone())).is_none());
        let old: crate::kid::Kid = "a-TEST.2025-06-01".parse().expect("kid");
        for (holds, says) in [
            (Consumer::Kid(old), "holds key a-TEST.2025-06-01, not the current key a-TEST.2026-01-10"),
            (Consumer::Foreign, "holds a key jwk-rotator did not write"),
            (Consumer::Empty, "holds no usable key"),
        ] {
            let f = only(
                case.ctx().consumer_not_current(&holds),
                FindingKind::ConsumerNotCurrent,
                Severity::Critical,
            );
            assert!(f.message.contains(says), "{}", f.message);
        }
        let none = Case::new(vec![], "2026-02-01T00:00:00Z");
        assert!(
            none.ctx().consumer_not_current(&Consumer::Foreign).is_none(),
            "no current key: its own finding"
        );
    }

    #[test]
    fn a_consumer_secret_is_in_use_when_it_holds_a_key_the_key_set_does_not() {
        let held = record("2026-01-10", Stage::Current, true);
        let mut case = Case::new(vec![held.clone()], "2026-02-01T00:00:00Z");
        assert_eq!(case.ctx().consumer_in_use(), None, "no consumer secret");
        case.consumer = Some(Consumer::Empty);
        assert_eq!(case.ctx().consumer_in_use(), None);
        case.consumer = Some(Consumer::Kid(held.kid.clone()));
        assert_eq!(case.ctx().consumer_in_use(), None, "a key the key set holds");
        case.consumer = Some(Consumer::Kid("a-TEST.2025-06-01".parse().expect("kid")));
        assert_eq!(
            case.ctx().consumer_in_use().as_deref(),
            Some("key a-TEST.2025-06-01, which this key set does not hold")
        );
        case.consumer = Some(Consumer::Foreign);
        assert_eq!(case.ctx().consumer_in_use().as_deref(), Some("a key jwk-rotator did not write"));
    }
}
