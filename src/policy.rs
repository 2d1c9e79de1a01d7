//! The rotation policy of one client: key shape, timings and limits, checked once at load.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

mod error;
pub use error::PolicyError;

/// How a pending key becomes current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promotion {
    /// Only `jwk-rotator promote`, after an operator uploaded the new public set.
    Manual,
    /// When the key has been published for at least `publish_ahead`.
    AfterDelay,
    /// When a real Maskinporten token grant signed with the pending key succeeded.
    Verified,
}

impl fmt::Display for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Promotion::Manual => "manual",
            Promotion::AfterDelay => "after-delay",
            Promotion::Verified => "verified",
        })
    }
}

/// RSA modulus size in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum KeySize {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeySize {
    pub fn bits(self) -> u32 {
        match self {
            KeySize::Rsa2048 => 2048,
            KeySize::Rsa3072 => 3072,
            KeySize::Rsa4096 => 4096,
        }
    }
}

impl TryFrom<u32> for KeySize {
    type Error = PolicyError;
    fn try_from(bits: u32) -> Result<Self, PolicyError> {
        match bits {
            2048 => Ok(KeySize::Rsa2048),
            3072 => Ok(KeySize::Rsa3072),
            4096 => Ok(KeySize::Rsa4096),
            _ => Err(PolicyError::KeySize { bits }),
        }
    }
}

impl From<KeySize> for u32 {
    fn from(size: KeySize) -> u32 {
        size.bits()
    }
}

/// The JWS algorithm written into each JWK's `alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
        }
    }
}

impl FromStr for Algorithm {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        match s {
            "RS256" => Ok(Algorithm::RS256),
            "RS384" => Ok(Algorithm::RS384),
            "RS512" => Ok(Algorithm::RS512),
            _ => Err(PolicyError::Algorithm { found: s.to_owned() }),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A length of time written like `90d`, `12h` or `1h 30m` in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(TimeDelta);

impl Span {
    pub(crate) const HOUR: Span = Span(TimeDelta::hours(1));

    pub fn days(days: i64) -> Self {
        Span(TimeDelta::days(days))
    }

    pub fn hours(hours: i64) -> Self {
        Span(TimeDelta::hours(hours))
    }

    pub fn minutes(minutes: i64) -> Self {
        Span(TimeDelta::minutes(minutes))
    }

    pub fn seconds(seconds: i64) -> Self {
        Span(TimeDelta::seconds(seconds))
    }

    pub(crate) fn millis(millis: i64) -> Self {
        Span(TimeDelta::milliseconds(millis))
    }

    pub fn delta(self) -> TimeDelta {
        self.0
    }

    /// The span as a `std::time::Duration`, for sleeps and timeouts; zero for a negative span
    /// (the loader refuses those where they matter).
    pub(crate) fn to_std(self) -> std::time::Duration {
        self.0.to_std().unwrap_or_default()
    }
}

impl FromStr for Span {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let std = humantime::parse_duration(s)
            .map_err(|e| PolicyError::Duration { text: s.to_owned(), reason: e.to_string() })?;
        TimeDelta::from_std(std).map(Span).map_err(|_| PolicyError::TooLong { text: s.to_owned() })
    }
}

impl fmt::Display for Span {
    /// Whole days as `90d`, otherwise the largest unit that divides it exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.num_seconds();
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs != 0 && secs % size == 0 {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::from_str(d)
    }
}

/// A span setting whose error names it (`overlap = "two weeks" is not a duration ...`): in a
/// `[[client]]` or `[store]` table TOML can only point at the table's first line.
pub(crate) fn named_span<'de, D: serde::Deserializer<'de>>(name: &str, d: D) -> Result<Span, D::Error> {
    crate::de::named(name, d)
}

/// `Option<Span>` deserializers for the policy settings, each naming its setting.
macro_rules! named_spans {
    ($($name:ident),* $(,)?) => {
        mod named {
            use super::{Span, named_span};
            $(
                pub(super) fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
                    named_span(stringify!($name), d).map(Some)
                }
            )*
        }
    };
}

named_spans!(
    rotate_after,
    publish_ahead,
    overlap,
    max_age,
    warn_before,
    critical_before,
    retain_retired,
    alert_grace
);

/// A client's rotation policy. Only [`Policy::new`] (from the settings as the config writes
/// them) and [`Policy::default`] make one, so every `Policy`, in tests too, obeys the rules
/// the loader checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    promotion: Promotion,
    key_size: KeySize,
    algorithm: Algorithm,
    rotate_after: Span,
    publish_ahead: Span,
    overlap: Span,
    max_age: Span,
    warn_before: Span,
    critical_before: Span,
    retain_retired: Span,
    max_published: u32,
    alert_grace: Span,
}

/// The policy settings as written in config: every one optional, so that `[defaults]` and each
/// client can name only what they change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverrides {
    pub promotion: Option<Promotion>,
    pub key_size: Option<KeySize>,
    #[serde(default, deserialize_with = "crate::de::some_from_str")]
    pub algorithm: Option<Algorithm>,
    #[serde(default, deserialize_with = "named::rotate_after")]
    pub rotate_after: Option<Span>,
    #[serde(default, deserialize_with = "named::publish_ahead")]
    pub publish_ahead: Option<Span>,
    #[serde(default, deserialize_with = "named::overlap")]
    pub overlap: Option<Span>,
    #[serde(default, deserialize_with = "named::max_age")]
    pub max_age: Option<Span>,
    #[serde(default, deserialize_with = "named::warn_before")]
    pub warn_before: Option<Span>,
    #[serde(default, deserialize_with = "named::critical_before")]
    pub critical_before: Option<Span>,
    #[serde(default, deserialize_with = "named::retain_retired")]
    pub retain_retired: Option<Span>,
    pub max_published: Option<u32>,
    #[serde(default, deserialize_with = "named::alert_grace")]
    pub alert_grace: Option<Span>,
}

impl PolicyOverrides {
    /// `self` where set, else `base`.
    pub fn over(&self, base: &PolicyOverrides) -> PolicyOverrides {
        macro_rules! pick {
            ($($f:ident),*) => { PolicyOverrides { $($f: self.$f.or(base.$f)),* } };
        }
        pick!(
            promotion,
            key_size,
            algorithm,
            rotate_after,
            publish_ahead,
            overlap,
            max_age,
            warn_before,
            critical_before,
            retain_retired,
            max_published,
            alert_grace
        )
    }

    /// The policy with built-in defaults for whatever is not set, checked.
    pub(crate) fn resolve(&self) -> Result<Policy, PolicyError> {
        Policy::new(self)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            promotion: Promotion::Manual,
            key_size: KeySize::Rsa2048,
            algorithm: Algorithm::RS256,
            rotate_after: Span::days(90),
            publish_ahead: Span::days(7),
            overlap: Span::days(14),
            max_age: Span::days(365),
            warn_before: Span::days(30),
            critical_before: Span::days(7),
            retain_retired: Span::days(30),
            max_published: 5,
            alert_grace: Span::days(2),
        }
    }
}

impl Policy {
    /// The policy from settings as the config writes them (built-in defaults for what is not
    /// set), checked: settings that can not work together are refused, naming them.
    pub fn new(settings: &PolicyOverrides) -> Result<Policy, PolicyError> {
        let d = Policy::default();
        let p = Policy {
            promotion: settings.promotion.unwrap_or(d.promotion),
            key_size: settings.key_size.unwrap_or(d.key_size),
            algorithm: settings.algorithm.unwrap_or(d.algorithm),
            rotate_after: settings.rotate_after.unwrap_or(d.rotate_after),
            publish_ahead: settings.publish_ahead.unwrap_or(d.publish_ahead),
            overlap: settings.overlap.unwrap_or(d.overlap),
            max_age: settings.max_age.unwrap_or(d.max_age),
            warn_before: settings.warn_before.unwrap_or(d.warn_before),
            critical_before: settings.critical_before.unwrap_or(d.critical_before),
            retain_retired: settings.retain_retired.unwrap_or(d.retain_retired),
            max_published: settings.max_published.unwrap_or(d.max_published),
            alert_grace: settings.alert_grace.unwrap_or(d.alert_grace),
        };
        p.check_spans()?;
        p.check_lengths()?;
        p.check_settings()?;
        Ok(p)
    }

    /// Every span that must be positive is.
    fn check_spans(&self) -> Result<(), PolicyError> {
        let p = self;
        for (name, span) in [
            ("rotate_after", p.rotate_after),
            ("max_age", p.max_age),
            ("overlap", p.overlap),
            ("warn_before", p.warn_before),
            ("critical_before", p.critical_before),
        ] {
            if span <= Span(TimeDelta::zero()) {
                return Err(PolicyError::settings(
                    &[name],
                    format!("{name} = \"{span}\" must be longer than zero"),
                ));
            }
        }
        Ok(())
    }

    /// The spans fit together: keys neither pile up nor expire in use.
    fn check_lengths(&self) -> Result<(), PolicyError> {
        let p = self;
        if p.max_age > Span::days(365) {
            return Err(PolicyError::settings(
                &["max_age"],
                format!(
                    "max_age = \"{}\" is longer than 365d; Maskinporten keeps a key at most one year",
                    p.max_age
                ),
            ));
        }
        if p.publish_ahead.0 + p.overlap.0 >= p.rotate_after.0 {
            return Err(PolicyError::settings(
                &["publish_ahead", "overlap", "rotate_after"],
                format!(
                    "publish_ahead + overlap ({} + {}) must be shorter than rotate_after ({}), or keys pile up: shorten publish_ahead or overlap, or raise rotate_after",
                    p.publish_ahead, p.overlap, p.rotate_after
                ),
            ));
        }
        if p.rotate_after.0 + p.publish_ahead.0 + p.overlap.0 >= p.max_age.0 {
            return Err(PolicyError::settings(
                &["rotate_after", "publish_ahead", "overlap", "max_age"],
                format!(
                    "rotate_after + publish_ahead + overlap ({} + {} + {}) must be shorter than max_age ({}), or keys expire while still in use",
                    p.rotate_after, p.publish_ahead, p.overlap, p.max_age
                ),
            ));
        }
        if p.rotate_after.0 + p.publish_ahead.0 + p.warn_before.0 >= p.max_age.0 {
            return Err(PolicyError::settings(
                &["warn_before", "rotate_after", "publish_ahead", "max_age"],
                format!(
                    "rotate_after + publish_ahead + warn_before ({} + {} + {}) must be shorter than max_age ({}): otherwise every current key on schedule is within warn_before of its expiry before it is replaced, so each run makes a new key and WARNING never clears; shorten warn_before or rotate_after",
                    p.rotate_after, p.publish_ahead, p.warn_before, p.max_age
                ),
            ));
        }
        Ok(())
    }

    /// The other settings: promotion, the alert tiers, `max_published`.
    fn check_settings(&self) -> Result<(), PolicyError> {
        let p = self;
        if p.promotion == Promotion::AfterDelay && p.publish_ahead < Span::hours(1) {
            return Err(PolicyError::settings(
                &["publish_ahead", "promotion"],
                format!(
                    "publish_ahead = \"{}\" is too short for promotion = \"after-delay\": a key would be promoted in the run that made it, before anyone uploaded it to Maskinporten; set publish_ahead to at least 1h (the default is 7d)",
                    p.publish_ahead
                ),
            ));
        }
        if p.critical_before > p.warn_before {
            return Err(PolicyError::settings(
                &["critical_before", "warn_before"],
                format!(
                    "critical_before (\"{}\") must not be longer than warn_before (\"{}\")",
                    p.critical_before, p.warn_before
                ),
            ));
        }
        if !(2..=5).contains(&p.max_published) {
            return Err(PolicyError::settings(
                &["max_published"],
                format!(
                    "max_published = {} must be between 2 and 5: Maskinporten accepts at most 5 keys, and rotation needs room for two",
                    p.max_published
                ),
            ));
        }
        Ok(())
    }

    pub fn promotion(&self) -> Promotion {
        self.promotion
    }

    pub fn key_size(&self) -> KeySize {
        self.key_size
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn rotate_after(&self) -> Span {
        self.rotate_after
    }

    pub fn publish_ahead(&self) -> Span {
        self.publish_ahead
    }

    pub fn overlap(&self) -> Span {
        self.overlap
    }

    pub fn max_age(&self) -> Span {
        self.max_age
    }

    pub fn warn_before(&self) -> Span {
        self.warn_before
    }

    pub fn critical_before(&self) -> Span {
        self.critical_before
    }

    pub fn retain_retired(&self) -> Span {
        self.retain_retired
    }

    pub fn max_published(&self) -> u32 {
        self.max_published
    }

    pub fn alert_grace(&self) -> Span {
        self.alert_grace
    }
}

/// What a run works on: a key set and its client's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key_set: crate::kid::KeySet,
    pub policy: Policy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!("90d".parse::<Span>().unwrap(), Span::days(90));
        assert_eq!("12h".parse::<Span>().unwrap().to_string(), "12h");
        assert_eq!("36h".parse::<Span>().unwrap().to_string(), "36h");
        assert_eq!("48h".parse::<Span>().unwrap().to_string(), "2d");
        assert!("ninety days".parse::<Span>().unwrap_err().to_string().contains("\"90d\""));
    }

    #[test]
    fn defaults_are_consistent() {
        assert_eq!(Policy::new(&PolicyOverrides::default()).unwrap(), Policy::default());
    }

    #[test]
    fn inconsistent_policies_name_the_settings() {
        let cases: [(PolicyOverrides, &str, &str); 5] = [
            (
                PolicyOverrides { rotate_after: Some(Span::days(20)), ..Default::default() },
                "publish_ahead",
                "publish_ahead + overlap",
            ),
            (
                PolicyOverrides { rotate_after: Some(Span::days(350)), ..Default::default() },
                "rotate_after",
                "rotate_after + publish_ahead + overlap",
            ),
            (PolicyOverrides { max_age: Some(Span::days(400)), ..Default::default() }, "max_age", "max_age"),
            (
                PolicyOverrides { critical_before: Some(Span::days(40)), ..Default::default() },
                "critical_before",
                "critical_before",
            ),
            (
                PolicyOverrides { max_published: Some(6), ..Default::default() },
                "max_published",
                "max_published",
            ),
        ];
        for (overrides, setting, expected) in cases {
            let err = overrides.resolve().unwrap_err();
            assert_eq!(err.setting(), Some(setting), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert_eq!(KeySize::try_from(1024), Err(PolicyError::KeySize { bits: 1024 }));
        assert_eq!("HS256".parse::<Algorithm>().unwrap_err().setting(), Some("algorithm"));
    }

    #[test]
    fn an_expiry_warning_that_fires_on_schedule_is_refused() {
        let warn = |days| PolicyOverrides { warn_before: Some(Span::days(days)), ..Default::default() };
        let err = warn(268).resolve().unwrap_err();
        assert_eq!(err.setting(), Some("warn_before"));
        let err = err.to_string();
        assert!(err.contains("rotate_after + publish_ahead + warn_before (90d + 7d + 268d)"), "{err}");
        assert!(err.contains("shorten warn_before"), "{err}");
        // Longer than rotate_after is harmless: the key is replaced long before it warns.
        assert_eq!(warn(100).resolve().unwrap().warn_before, Span::days(100));
        assert!(warn(267).resolve().is_ok());
    }

    #[test]
    fn after_delay_needs_a_publish_ahead_of_an_hour() {
        let p = |ahead: Span, promotion| PolicyOverrides {
            publish_ahead: Some(ahead),
            promotion: Some(promotion),
            ..Default::default()
        };
        let err = p(Span::days(0), Promotion::AfterDelay).resolve().unwrap_err().to_string();
        assert!(err.contains("publish_ahead = \"0s\" is too short for promotion = \"after-delay\""), "{err}");
        assert!(p(Span::minutes(59), Promotion::AfterDelay).resolve().is_err());
        assert!(p(Span::hours(1), Promotion::AfterDelay).resolve().is_ok());
        assert!(p(Span::days(0), Promotion::Manual).resolve().is_ok(), "manual promotion waits for a person");
    }

    #[test]
    fn client_overrides_win_over_defaults() {
        let defaults = PolicyOverrides { rotate_after: Some(Span::days(60)), ..Default::default() };
        let client = PolicyOverrides { key_size: Some(KeySize::Rsa4096), ..Default::default() };
        let p = client.over(&defaults).resolve().unwrap();
        assert_eq!(p.rotate_after, Span::days(60));
        assert_eq!(p.key_size, KeySize::Rsa4096);
        assert_eq!(p.overlap, Span::days(14));
    }

    #[test]
    fn policy_errors_name_their_settings_and_values() {
        let too_many = PolicyOverrides { max_published: Some(9), ..Default::default() };
        let e = too_many.resolve().unwrap_err();
        assert!(
            matches!(&e, PolicyError::Settings { settings, .. } if settings == &["max_published"]),
            "{e:?}"
        );
        let tiers = PolicyOverrides { critical_before: Some(Span::days(40)), ..Default::default() };
        let e = tiers.resolve().unwrap_err();
        let PolicyError::Settings { settings, .. } = &e else { panic!("{e:?}") };
        assert_eq!(settings, &["critical_before", "warn_before"]);
        assert_eq!(KeySize::try_from(1024), Err(PolicyError::KeySize { bits: 1024 }));
        assert_eq!("ES256".parse::<Algorithm>(), Err(PolicyError::Algorithm { found: "ES256".to_owned() }));
        let e = "soon".parse::<Span>().unwrap_err();
        assert!(matches!(&e, PolicyError::Duration { text, .. } if text == "soon"), "{e:?}");
        assert!(e.to_string().starts_with("\"soon\" is not a duration ("), "{e}");
    }
}
