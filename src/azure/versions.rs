//! Converging without a lock: which version of a key's secret counts when racing runs wrote
//! more than one (the oldest, by `created` then version id), and which others to disable.

use azure_security_keyvault_secrets::ResourceExt;
use azure_security_keyvault_secrets::models::SecretProperties;

use super::layout::{Tags, tag};
use crate::record::Stage;

/// One version of a secret, as a list call shows it (no value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub name: String,
    pub id: String,
    /// `attributes.created`, epoch seconds.
    pub created: i64,
    /// `attributes.updated`, epoch seconds (Key Vault's clock): when its tags last changed.
    pub updated: i64,
    pub enabled: bool,
    pub tags: Tags,
}

impl Version {
    /// Reads a listed item; `None` when it has no usable id.
    pub(crate) fn from_properties(p: SecretProperties) -> Option<Version> {
        let id = p.resource_id().ok()?;
        let attributes = p.attributes.unwrap_or_default();
        Some(Version {
            name: id.name,
            id: id.version.unwrap_or_default(),
            created: attributes.created.map_or(0, |t| t.unix_timestamp()),
            updated: attributes.updated.map_or(0, |t| t.unix_timestamp()),
            enabled: attributes.enabled.unwrap_or(true),
            tags: p.tags.unwrap_or_default(),
        })
    }

    fn order(&self) -> (i64, &str) {
        (self.created, &self.id)
    }

    /// Whether this version was already marked as the loser against `winner`.
    fn marked_for(&self, winner: &str) -> bool {
        !self.enabled && self.tags.get(tag::DUPLICATE_OF).map(String::as_str) == Some(winner)
    }
}

/// The outcome of looking at every version of one key's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The oldest version: the key's record and value.
    pub winner: Version,
    /// Younger versions not yet disabled and marked `duplicate-of` the winner.
    pub to_disable: Vec<Version>,
}

/// Picks the winner among a secret's versions; `None` when it has none.
pub(crate) fn resolve(versions: Vec<Version>) -> Option<Resolved> {
    let winner = versions.iter().min_by(|a, b| a.order().cmp(&b.order()))?.clone();
    let to_disable =
        versions.into_iter().filter(|v| v.id != winner.id && !v.marked_for(&winner.id)).collect();
    Some(Resolved { winner, to_disable })
}

/// Whether the latest version that a secret listing shows may not be the key's winner, so that
/// its versions must be listed: a marked loser, a disabled version of a key that is not
/// retired, or a live version never updated since it was written (no `published` tag: a
/// fresh write, or a racing run's version that was not yet marked).
pub(crate) fn latest_is_doubtful(enabled: bool, tags: &Tags) -> bool {
    let stage = tags.get(tag::STAGE).and_then(|s| s.parse::<Stage>().ok());
    tags.contains_key(tag::DUPLICATE_OF)
        || (!enabled && stage != Some(Stage::Retired))
        || (stage.is_some_and(|s| s != Stage::Retired) && !tags.contains_key(tag::PUBLISHED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, created: i64, enabled: bool, dup: Option<&str>) -> Version {
        let mut tags = Tags::new();
        if let Some(w) = dup {
            tags.insert(tag::DUPLICATE_OF.into(), w.into());
        }
        Version { name: "n".into(), id: id.into(), created, updated: created, enabled, tags }
    }

    #[test]
    fn the_oldest_version_wins_and_ties_go_to_the_smaller_id() {
        let r = resolve(vec![v("b", 10, true, None), v("c", 9, true, None), v("a", 10, true, None)])
            .expect("versions");
        assert_eq!(r.winner.id, "c");
        assert_eq!(r.to_disable.len(), 2);
        let r = resolve(vec![v("b", 10, true, None), v("a", 10, true, None)]).expect("versions");
        assert_eq!(r.winner.id, "a");
        assert!(resolve(Vec::new()).is_none());
    }

    #[test]
    fn losers_already_marked_are_left_alone() {
        let r = resolve(vec![v("a", 1, true, None), v("b", 2, false, Some("a")), v("c", 3, false, None)])
            .expect("versions");
        assert_eq!(r.to_disable.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn doubtful_listings_are_recognised() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(!latest_is_doubtful(true, &tags(&[("stage", "current"), ("published", "x")])));
        assert!(!latest_is_doubtful(false, &tags(&[("stage", "retired"), ("published", "x")])));
        assert!(latest_is_doubtful(false, &tags(&[("stage", "current"), ("published", "x")])));
        assert!(latest_is_doubtful(true, &tags(&[("stage", "pending")])));
        assert!(latest_is_doubtful(false, &tags(&[("duplicate-of", "a")])));
    }
}
