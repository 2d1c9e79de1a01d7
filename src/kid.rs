//! Names: clients, environments, key sets (`testklient-TEST`) and kids (`testklient-TEST.2026-11-21-2`).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("client name {0:?} is not valid: use letters, digits and '-' (for example \"testklient\")")]
    Client(String),
    #[error(
        "environment {0:?} is not valid: use upper-case letters and digits (for example \"TEST\" or \"PROD\")"
    )]
    Environment(String),
    #[error("key set {0:?} is not valid: write it as CLIENT-ENV, for example \"testklient-TEST\"")]
    KeySet(String),
    #[error(
        "kid {0:?} is not valid: expected CLIENT-ENV.YYYY-MM-DD with an optional -N for a second key on one day, for example \"testklient-TEST.2026-11-21\""
    )]
    Kid(String),
}

/// A Maskinporten client's name as configured: `[A-Za-z0-9-]+`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientName(String);

impl ClientName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('-')
            && !s.ends_with('-')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok { Ok(Self(s.to_owned())) } else { Err(NameError::Client(s.to_owned())) }
    }
}

/// An environment: `[A-Z0-9]+`, such as `TEST` or `PROD`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Environment(String);

impl Environment {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Environment {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let ok =
            !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok { Ok(Self(s.to_owned())) } else { Err(NameError::Environment(s.to_owned())) }
    }
}

/// One client in one environment, written `testklient-TEST`; each has its own keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeySet {
    client: ClientName,
    env: Environment,
}

impl KeySet {
    pub fn new(client: ClientName, env: Environment) -> Self {
        Self { client, env }
    }

    pub fn client(&self) -> &ClientName {
        &self.client
    }

    pub fn env(&self) -> &Environment {
        &self.env
    }
}

impl fmt::Display for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.client.0, self.env.0)
    }
}

impl FromStr for KeySet {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::KeySet(s.to_owned());
        let (client, env) = s.rsplit_once('-').ok_or_else(bad)?;
        Ok(Self { client: client.parse().map_err(|_| bad())?, env: env.parse().map_err(|_| bad())? })
    }
}

/// A key id: `{client}-{ENV}.{YYYY-MM-DD}`, the UTC creation date, with `-2`, `-3`, ... for
/// further keys made on the same day. This is altinn-jwks 1.x's format, so its kids parse too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kid {
    set: KeySet,
    date: NaiveDate,
    seq: u32,
}

impl Kid {
    /// The first kid of `set` on `date`.
    pub fn new(set: KeySet, date: NaiveDate) -> Self {
        Self { set, date, seq: 1 }
    }

    /// The kid for a new key of `set` on `date` that does not collide with `taken`.
    pub fn next_free<'a>(set: &KeySet, date: NaiveDate, taken: impl IntoIterator<Item = &'a Kid>) -> Kid {
        let highest = taken.into_iter().filter(|k| k.set == *set && k.date == date).map(|k| k.seq).max();
        Kid { set: set.clone(), date, seq: highest.map_or(1, |s| s + 1) }
    }

    pub fn key_set(&self) -> &KeySet {
        &self.set
    }

    /// The date in the kid's suffix: the day the key was made (UTC).
    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// 1 for the day's first key, 2 for `-2`, and so on.
    pub fn seq(&self) -> u32 {
        self.seq
    }
}

impl Ord for Kid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.set, self.date, self.seq).cmp(&(&other.set, other.date, other.seq))
    }
}

impl PartialOrd for Kid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.set, self.date.format("%Y-%m-%d"))?;
        if self.seq > 1 {
            write!(f, "-{}", self.seq)?;
        }
        Ok(())
    }
}

impl FromStr for Kid {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::Kid(s.to_owned());
        let (set, suffix) = s.split_once('.').ok_or_else(bad)?;
        let set: KeySet = set.parse().map_err(|_| bad())?;
        let (date, seq) = match suffix.get(10..) {
            Some("") => (suffix, 1),
            Some(rest) => {
                let digits = rest.strip_prefix('-').ok_or_else(bad)?;
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let seq: u32 = digits.parse().map_err(|_| bad())?;
                if seq < 2 {
                    return Err(bad());
                }
                (&suffix[..10], seq)
            }
            None => return Err(bad()),
        };
        let strict = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
        if !strict {
            return Err(bad());
        }
        Ok(Kid { set, date, seq })
    }
}

/// Serde as strings. A stored name that does not parse is refused without quoting it: what is
/// in a key file's `kid` may be anything, even a private key pasted in the wrong place.
macro_rules! string_serde {
    ($($ty:ty => $expected:literal),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = zeroize::Zeroizing::new(String::deserialize(d)?);
                s.parse().map_err(|_| {
                    let unexpected = serde::de::Unexpected::Other("a string that is not one");
                    serde::de::Error::invalid_value(unexpected, &$expected)
                })
            }
        }
    )*};
}

string_serde!(
    ClientName => "a client name: letters, digits and '-'",
    Environment => "an environment: upper-case letters and digits",
    KeySet => "a key set CLIENT-ENV, such as testklient-TEST",
    Kid => "a kid CLIENT-ENV.YYYY-MM-DD with an optional -N, such as testklient-TEST.2026-11-21"
);

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_round_trip() {
        for s in [
            "testklient-TEST.2024-07-10",
            "testklient-TEST.2026-11-21-2",
            "my-client-PROD.2026-01-31-12",
            "a-B2.2000-02-29",
        ] {
            let kid: Kid = s.parse().unwrap();
            assert_eq!(kid.to_string(), s);
        }
        let kid: Kid = "my-client-PROD.2026-01-31-3".parse().unwrap();
        assert_eq!(kid.key_set().client().as_str(), "my-client");
        assert_eq!(kid.key_set().env().as_str(), "PROD");
        assert_eq!(kid.seq(), 3);
    }

    #[test]
    fn bad_kids_are_refused() {
        for s in [
            "",
            "testklient",
            "testklient-TEST",
            "testklient-test.2024-07-10",
            "testklient-TEST.2024-7-10",
            "testklient-TEST.2024-07-32",
            "testklient-TEST.2024-07-10-1",
            "testklient-TEST.2024-07-10-02",
            "testklient-TEST.2024-07-10-",
            "testklient-TEST.2024-07-10x",
            "testklient-TEST.BKBQ",
            "test.klient-TEST.2024-07-10",
            "-TEST.2024-07-10",
        ] {
            let err = s.parse::<Kid>().unwrap_err();
            assert!(err.to_string().contains("CLIENT-ENV.YYYY-MM-DD"), "{s}: {err}");
        }
    }

    #[test]
    fn next_free_counts_up_within_a_day() {
        let set: KeySet = "testklient-TEST".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let first = Kid::next_free(&set, day, []);
        assert_eq!(first.to_string(), "testklient-TEST.2026-11-21");
        let second = Kid::next_free(&set, day, [&first]);
        assert_eq!(second.to_string(), "testklient-TEST.2026-11-21-2");
        let other_day = Kid::next_free(&set, day.succ_opt().unwrap(), [&first, &second]);
        assert_eq!(other_day.to_string(), "testklient-TEST.2026-11-22");
    }

    #[test]
    fn a_stored_kid_that_does_not_parse_is_not_quoted() {
        let secret = "c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWw";
        let err = serde_json::from_str::<Kid>(&format!("\"{secret}\"")).unwrap_err().to_string();
        assert!(err.contains("expected a kid CLIENT-ENV.YYYY-MM-DD"), "{err}");
        assert!(!err.contains(&secret[..12]), "{err}");
    }

    #[test]
    fn key_sets_and_names() {
        let set: KeySet = "my-client-PROD".parse().unwrap();
        assert_eq!(set.to_string(), "my-client-PROD");
        assert!("testklient".parse::<KeySet>().is_err());
        assert!("testklient-prod".parse::<KeySet>().is_err());
        assert!("bad_name".parse::<ClientName>().is_err());
        assert!("Prod".parse::<Environment>().is_err());
    }
}
