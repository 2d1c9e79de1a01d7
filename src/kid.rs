//! Names: clients, environments, key sets (`testklient-TEST`) and kids, in this tool's date form
//! (`testklient-TEST.2026-11-21-2`) and altinn-jwks 2.0's minute form (`testklient-TEST.BKBQ`).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
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
        "kid {0:?} is not valid: expected CLIENT-ENV.YYYY-MM-DD with an optional -N for a second key on one day, for example \"testklient-TEST.2026-11-21\", or altinn-jwks 2.0's CLIENT-ENV.XXXX with 4 base64url characters, for example \"testklient-TEST.BKBQ\""
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

/// A key id: `{client}-{ENV}.{suffix}`. The suffix is either the date form, `YYYY-MM-DD` with
/// `-2`, `-3`, ... for further keys made on one day (this tool's own, in UTC, and altinn-jwks
/// 1.x's, in the creator's local time), or altinn-jwks 2.0's minute form (see [`Suffix`]). The
/// kid's text is kept exactly: Maskinporten knows the key by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kid {
    set: KeySet,
    suffix: Suffix,
}

/// The two suffix forms a kid can have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// `YYYY-MM-DD`, and `seq` 2, 3, ... for `-2`, `-3`.
    Date { date: NaiveDate, seq: u32 },
    /// altinn-jwks 2.0: 4 base64url characters of the low 3 bytes (big-endian) of the whole
    /// minutes since 2025-01-01 00:00 in the creator's local time; `code` is kept as written.
    Minutes { code: String, minutes: u32 },
}

/// The start of altinn-jwks 2.0's minute count: 2025-01-01 00:00 (the creator's local time).
pub(crate) fn minutes_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

/// The largest minute count a 2.0 suffix can hold (3 bytes).
#[cfg(test)]
const MAX_MINUTES: u32 = 0x00ff_ffff;

/// Decodes a 2.0 suffix (`BKBQ` -> 303,184); `None` if it is not 4 base64url characters.
pub(crate) fn decode_minutes(code: &str) -> Option<u32> {
    let canonical =
        code.len() == 4 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !canonical {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(code).ok()?;
    match bytes[..] {
        [a, b, c] => Some(u32::from_be_bytes([0, a, b, c])),
        _ => None,
    }
}

/// Encodes minutes since 2025-01-01 as altinn-jwks 2.0 does: the low 3 bytes, base64url.
pub fn encode_minutes(minutes: u32) -> String {
    URL_SAFE_NO_PAD.encode(&minutes.to_be_bytes()[1..])
}

/// The local time a 2.0 minute count stands for.
pub fn minutes_time(minutes: u32) -> NaiveDateTime {
    minutes_epoch() + TimeDelta::minutes(i64::from(minutes))
}

impl Kid {
    /// The first kid of `set` on `date`.
    pub fn new(set: KeySet, date: NaiveDate) -> Self {
        Self { set, suffix: Suffix::Date { date, seq: 1 } }
    }

    /// The kid for a new key of `set` on `date` that does not collide with `taken`. New keys
    /// always get the date form; kids of the minute form never collide with it.
    pub(crate) fn next_free<'a>(
        set: &KeySet,
        date: NaiveDate,
        taken: impl IntoIterator<Item = &'a Kid>,
    ) -> Kid {
        let highest = taken
            .into_iter()
            .filter_map(|k| match k.suffix {
                Suffix::Date { date: d, seq } if k.set == *set && d == date => Some(seq),
                _ => None,
            })
            .max();
        Kid { set: set.clone(), suffix: Suffix::Date { date, seq: highest.map_or(1, |s| s + 1) } }
    }

    pub fn key_set(&self) -> &KeySet {
        &self.set
    }

    pub fn suffix(&self) -> &Suffix {
        &self.suffix
    }

    /// The day the key was made: the date in the suffix, or the day of a 2.0 minute count
    /// (in the creator's local time, which can be a day after the UTC date near midnight).
    pub fn date(&self) -> NaiveDate {
        match &self.suffix {
            Suffix::Date { date, .. } => *date,
            Suffix::Minutes { minutes, .. } => minutes_time(*minutes).date(),
        }
    }

    /// 1 for the day's first key, 2 for `-2`, and so on; 1 for the minute form.
    pub fn seq(&self) -> u32 {
        match self.suffix {
            Suffix::Date { seq, .. } => seq,
            Suffix::Minutes { .. } => 1,
        }
    }

    /// What orders kids of one key set: the creation day, then the minute within it (the
    /// date form counts as the day's start), then the day's sequence number.
    fn order_key(&self) -> (&KeySet, NaiveDate, u32, u32) {
        let minute_of_day = match &self.suffix {
            Suffix::Date { .. } => 0,
            Suffix::Minutes { minutes, .. } => minutes % (24 * 60),
        };
        (&self.set, self.date(), minute_of_day, self.seq())
    }
}

impl Ord for Kid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The text breaks the one tie left (a date-form kid and `AAAA`-like codes on the same
        // minute), so that kids compare equal only when they are equal.
        self.order_key().cmp(&other.order_key()).then_with(|| self.to_string().cmp(&other.to_string()))
    }
}

impl PartialOrd for Kid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.suffix {
            Suffix::Date { date, seq } => {
                write!(f, "{}.{}", self.set, date.format("%Y-%m-%d"))?;
                if *seq > 1 {
                    write!(f, "-{seq}")?;
                }
                Ok(())
            }
            Suffix::Minutes { code, .. } => write!(f, "{}.{code}", self.set),
        }
    }
}

impl FromStr for Kid {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::Kid(s.to_owned());
        let (set, suffix) = s.split_once('.').ok_or_else(bad)?;
        let set: KeySet = set.parse().map_err(|_| bad())?;
        if let Some(minutes) = decode_minutes(suffix) {
            return Ok(Kid { set, suffix: Suffix::Minutes { code: suffix.to_owned(), minutes } });
        }
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
        Ok(Kid { set, suffix: Suffix::Date { date, seq } })
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
    Kid => "a kid CLIENT-ENV.YYYY-MM-DD with an optional -N, such as testklient-TEST.2026-11-21, or CLIENT-ENV.XXXX (altinn-jwks 2.0)"
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
            "testklient-TEST.BKB",
            "testklient-TEST.BKBQQ",
            "testklient-TEST.BK+Q",
            "testklient-TEST.BK=Q",
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

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn altinn_2_suffixes_decode_to_their_creation_day() {
        assert_eq!(decode_minutes("BKBQ"), Some(303_184));
        assert_eq!(minutes_time(303_184).to_string(), "2025-07-30 13:04:00");
        assert_eq!(decode_minutes("AAAA"), Some(0));
        let kid: Kid = "testklient-TEST.BKBQ".parse().unwrap();
        assert_eq!(kid.date(), day(2025, 7, 30));
        assert_eq!(kid.to_string(), "testklient-TEST.BKBQ");
        assert!(matches!(kid.suffix(), Suffix::Minutes { minutes: 303_184, .. }));
        let kid: Kid = "testklient-TEST.AAAA".parse().unwrap();
        assert_eq!(kid.date(), day(2025, 1, 1));
        for code in ["a-_9", "____", "----"] {
            let kid: Kid = format!("x-PROD.{code}").parse().unwrap();
            assert_eq!(kid.to_string(), format!("x-PROD.{code}"), "kept exactly");
        }
    }

    #[test]
    fn altinn_2_suffixes_on_the_day_boundaries() {
        let date =
            |minutes: u32| Kid::from_str(&format!("a-TEST.{}", encode_minutes(minutes))).unwrap().date();
        assert_eq!(date(24 * 60 - 1), day(2025, 1, 1), "23:59");
        assert_eq!(date(24 * 60), day(2025, 1, 2), "00:00 the next day");
        // 2028-02-29 is day 1154 after 2025-01-01.
        let leap = 1154 * 24 * 60;
        assert_eq!(date(leap - 1), day(2028, 2, 28));
        assert_eq!(date(leap), day(2028, 2, 29));
        assert_eq!(date(leap + 24 * 60), day(2028, 3, 1));
        assert_eq!(encode_minutes(MAX_MINUTES), "____");
        assert_eq!(date(MAX_MINUTES), minutes_time(MAX_MINUTES).date());
    }

    #[test]
    fn kids_of_both_forms_sort_by_creation_time_not_text() {
        let kids: Vec<Kid> =
            ["a-TEST.BKBQ", "a-TEST.2025-07-30-2", "a-TEST.AAAA", "a-TEST.2025-07-31", "a-TEST.2024-07-10"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        let mut sorted = kids.clone();
        sorted.sort();
        let shown: Vec<String> = sorted.iter().map(Kid::to_string).collect();
        assert_eq!(
            shown,
            ["a-TEST.2024-07-10", "a-TEST.AAAA", "a-TEST.2025-07-30-2", "a-TEST.BKBQ", "a-TEST.2025-07-31"]
        );
        // As text `-` sorts before `B`; decoded, `-AAA` (16,252,928 minutes: 2055) comes after.
        let early: Kid = "a-TEST.BAAA".parse().unwrap();
        let late: Kid = "a-TEST.-AAA".parse().unwrap();
        assert!(early < late && early.date() < late.date());
    }

    #[test]
    fn new_kids_keep_the_date_form_next_to_altinn_2_kids() {
        let set: KeySet = "a-TEST".parse().unwrap();
        let imported: Kid = format!("a-TEST.{}", encode_minutes(303_184)).parse().unwrap();
        let kid = Kid::next_free(&set, day(2025, 7, 30), [&imported]);
        assert_eq!(kid.to_string(), "a-TEST.2025-07-30");
    }

    proptest::proptest! {
        #[test]
        fn minutes_round_trip_over_the_whole_counter(minutes in 0..=MAX_MINUTES) {
            let code = encode_minutes(minutes);
            proptest::prop_assert_eq!(code.len(), 4);
            proptest::prop_assert_eq!(decode_minutes(&code), Some(minutes));
            let kid: Kid = format!("testklient-TEST.{code}").parse().unwrap();
            proptest::prop_assert_eq!(kid.to_string(), format!("testklient-TEST.{code}"));
            proptest::prop_assert_eq!(kid.date(), (minutes_epoch() + TimeDelta::minutes(minutes.into())).date());
        }
    }
}
