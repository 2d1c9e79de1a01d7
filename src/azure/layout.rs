//! How keys are laid out in Key Vault: secret names, and a record's members as version tags, so
//! that a list call returns everything but the private key.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};

use super::AzureError;
use crate::jwk::PublicJwk;
use crate::kid::{KeySet, Kid, Suffix, encode_minutes};
use crate::record::{KeyRecord, Stage};

/// Value of the `managed-by` tag on every secret version this tool writes.
pub(crate) const MANAGED_BY: &str = "jwk-rotator";
/// `contentType` of key secrets and consumer secrets.
pub(crate) const CONTENT_TYPE: &str = crate::consumer::ENCODED_JWK_CONTENT_TYPE;
/// Key Vault's limit on secret names.
pub(crate) const MAX_NAME: usize = 127;
/// Key Vault's limit on a tag value; a longer modulus goes on in `n2`.
const MAX_TAG_VALUE: usize = 512;

/// Tag names.
pub mod tag {
    pub(crate) const MANAGED_BY: &str = "managed-by";
    pub const KID: &str = "kid";
    pub(crate) const KEY_SET: &str = "key-set";
    pub const STAGE: &str = "stage";
    pub(crate) const CREATED: &str = "created";
    pub(crate) const PUBLISHED: &str = "published";
    pub(crate) const ACTIVATED: &str = "activated";
    pub(crate) const DEMOTED: &str = "demoted";
    pub(crate) const RETIRED: &str = "retired";
    /// The host's real clock at the record's last write.
    pub(crate) const WRITTEN: &str = "written";
    /// When the client's applications were restarted for this key's promotion.
    pub(crate) const RESTARTED: &str = "restarted";
    pub(crate) const ALG: &str = "alg";
    pub const N: &str = "n";
    pub(crate) const N2: &str = "n2";
    pub(crate) const E: &str = "e";
    /// On a version that lost a race: the version id of the one that won.
    pub(crate) const DUPLICATE_OF: &str = "duplicate-of";
}

pub(crate) type Tags = HashMap<String, String>;

/// The secret name of a kid: `{prefix}{kid}` with `.` turned into `--`. Secret names hold only
/// letters, digits and `-`: an altinn-jwks 2.0 suffix with `_` is written as `x` and the six hex
/// digits of its 3 bytes instead (`a_b-` -> `--x6bf6fe`), which no other suffix form can be.
pub fn secret_name(prefix: &str, kid: &Kid) -> Result<String, AzureError> {
    let suffix = match kid.suffix() {
        Suffix::Minutes { code, minutes } if code.contains('_') => format!("x{minutes:06x}"),
        Suffix::Minutes { code, .. } => code.clone(),
        Suffix::Date { .. } => {
            kid.to_string().rsplit_once('.').map(|(_, s)| s.to_owned()).unwrap_or_default()
        }
    };
    let name = format!("{prefix}{}--{suffix}", kid.key_set());
    if name.len() > MAX_NAME {
        return Err(AzureError::NameTooLong { name, kid: kid.clone() });
    }
    Ok(name)
}

/// The longest secret name a key set can get (a `-99` suffix on its kid), for checks at start.
pub(crate) fn longest_name(prefix: &str, set: &KeySet) -> usize {
    prefix.len() + set.to_string().len() + "--YYYY-MM-DD-99".len()
}

/// The kid a secret name stands for, if it is one of ours: the prefix (any case) stripped and
/// the suffix read back as [`secret_name`] wrote it.
pub(crate) fn kid_of_name(prefix: &str, name: &str) -> Option<Kid> {
    let head = name.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &name[prefix.len()..];
    let kid = |set: &str, suffix: &str| format!("{set}.{suffix}").parse::<Kid>().ok();
    let tail = |n: usize| {
        let cut = rest.len().checked_sub(n)?;
        let set = rest.get(..cut)?.strip_suffix("--")?;
        Some((set, rest.get(cut..)?))
    };
    // The date form: after the last `--`.
    let dated = rest.rfind("--").and_then(|cut| kid(&rest[..cut], &rest[cut + 2..]));
    if let Some(k) = dated.filter(|k| matches!(k.suffix(), Suffix::Date { .. })) {
        return Some(k);
    }
    // The 2.0 form: the last 4 characters (which may hold `-` themselves).
    if let Some((set, code)) = tail(4).filter(|(_, code)| !code.contains('_')) {
        return kid(set, code).filter(|k| matches!(k.suffix(), Suffix::Minutes { .. }));
    }
    // A 2.0 suffix with `_`, written as `x` and six hex digits.
    let (set, hex) = tail(7)?;
    let digits = hex.strip_prefix(['x', 'X'])?;
    let minutes =
        u32::from_str_radix(digits, 16).ok().filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let code = encode_minutes(minutes);
    if !code.contains('_') {
        return None;
    }
    kid(set, &code)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The tags of a key's secret version: everything in the record, the modulus split if long.
pub fn tags_of(record: &KeyRecord) -> Tags {
    let mut tags = Tags::new();
    let mut put = |k: &str, v: String| {
        tags.insert(k.to_owned(), v);
    };
    put(tag::MANAGED_BY, MANAGED_BY.to_owned());
    put(tag::KID, record.kid.to_string());
    put(tag::KEY_SET, record.kid.key_set().to_string());
    put(tag::STAGE, record.stage.to_string());
    put(tag::CREATED, time(record.created));
    let optional = [
        (tag::PUBLISHED, record.published),
        (tag::ACTIVATED, record.activated),
        (tag::DEMOTED, record.demoted),
        (tag::RETIRED, record.retired),
        (tag::WRITTEN, record.written),
        (tag::RESTARTED, record.restarted),
    ];
    for (name, value) in optional {
        if let Some(t) = value {
            put(name, time(t));
        }
    }
    put(tag::ALG, record.public.alg.to_string());
    let n = &record.public.n;
    let cut = n.len().min(MAX_TAG_VALUE);
    put(tag::N, n[..cut].to_owned());
    if n.len() > cut {
        put(tag::N2, n[cut..].to_owned());
    }
    put(tag::E, record.public.e.clone());
    tags
}

/// The tags that mark a version as the loser of a race for `kid`.
pub(crate) fn duplicate_tags(kid: &Kid, winner: &str) -> Tags {
    [
        (tag::MANAGED_BY, MANAGED_BY.to_owned()),
        (tag::KID, kid.to_string()),
        (tag::KEY_SET, kid.key_set().to_string()),
        (tag::DUPLICATE_OF, winner.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Why the tags of a secret version do not make a record: which tag, and what is wrong with it.
/// No message quotes a tag's value: a tag may hold anything, even a private value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TagError {
    #[error("has no tag {}={MANAGED_BY}", tag::MANAGED_BY)]
    NotManaged,
    #[error("has no `{0}` tag")]
    Missing(&'static str),
    #[error("is named for kid {kid} but its `kid` tag says {tagged}")]
    OtherKid { kid: Box<Kid>, tagged: Box<Kid> },
    /// The tag is there, but its value is not what it must be (`problem` says what).
    #[error("has {} `{tag}` tag that {problem}", if tag.starts_with('a') { "an" } else { "a" })]
    Invalid { tag: &'static str, problem: &'static str },
    #[error("has a `{tag}` tag that is not an RFC 3339 time ({cause})")]
    NotATime { tag: &'static str, cause: String },
    #[error("has a `key-set` tag that does not match kid {kid}")]
    OtherKeySet { kid: Kid },
}

/// Reads a record back from the tags of the secret `name`, which stands for `kid`. The error
/// says which tag is wrong.
pub(crate) fn record_of(kid: &Kid, tags: &Tags) -> Result<KeyRecord, TagError> {
    let get = |k: &str| tags.get(k).map(String::as_str);
    let need = |k: &'static str| get(k).ok_or(TagError::Missing(k));
    let invalid = |tag: &'static str, problem: &'static str| TagError::Invalid { tag, problem };
    if get(tag::MANAGED_BY) != Some(MANAGED_BY) {
        return Err(TagError::NotManaged);
    }
    let tagged: Kid = need(tag::KID)?.parse().map_err(|_| {
        invalid(tag::KID, "is not a kid (CLIENT-ENV.YYYY-MM-DD with an optional -N, or CLIENT-ENV.XXXX)")
    })?;
    if tagged != *kid {
        return Err(TagError::OtherKid { kid: Box::new(kid.clone()), tagged: Box::new(tagged) });
    }
    if need(tag::KEY_SET)? != kid.key_set().to_string() {
        return Err(TagError::OtherKeySet { kid: kid.clone() });
    }
    let stage: Stage = need(tag::STAGE)?
        .parse()
        .map_err(|_| invalid(tag::STAGE, "is not one of pending, current, previous, retired"))?;
    let when = |k: &'static str| -> Result<Option<DateTime<Utc>>, TagError> {
        get(k)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| TagError::NotATime { tag: k, cause: e.to_string() })
            })
            .transpose()
    };
    let alg = need(tag::ALG)?.parse().map_err(|_| invalid(tag::ALG, "is not RS256, RS384 or RS512"))?;
    let n = format!("{}{}", need(tag::N)?, get(tag::N2).unwrap_or_default());
    let e = need(tag::E)?.to_owned();
    for (name, value) in [(tag::N, &n), (tag::E, &e)] {
        if URL_SAFE_NO_PAD.decode(value).map_or(true, |b| b.is_empty()) {
            return Err(invalid(name, "is not base64url"));
        }
    }
    Ok(KeyRecord {
        kid: kid.clone(),
        stage,
        created: when(tag::CREATED)?.ok_or(TagError::Missing(tag::CREATED))?,
        published: when(tag::PUBLISHED)?,
        activated: when(tag::ACTIVATED)?,
        demoted: when(tag::DEMOTED)?,
        retired: when(tag::RETIRED)?,
        written: when(tag::WRITTEN)?,
        restarted: when(tag::RESTARTED)?,
        public: PublicJwk { kid: kid.clone(), alg, n, e },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Algorithm;

    fn kid(s: &str) -> Kid {
        s.parse().expect("kid")
    }

    fn record(n_len: usize) -> KeyRecord {
        let public = PublicJwk {
            kid: kid("testklient-TEST.2026-11-21-2"),
            alg: Algorithm::RS256,
            n: "A".repeat(n_len),
            e: "AQAB".to_owned(),
        };
        let mut r = KeyRecord::new(
            public,
            Stage::Pending,
            "2026-11-21T10:11:12.5Z".parse::<DateTime<Utc>>().expect("time"),
        );
        r.published = Some("2026-11-21T10:11:13Z".parse().expect("time"));
        r
    }

    #[test]
    fn names_turn_dots_into_double_dashes_and_back() {
        let k = kid("a--b-TEST.2026-11-21-2");
        let name = secret_name("jwk-", &k).expect("name");
        assert_eq!(name, "jwk-a--b-TEST--2026-11-21-2");
        assert_eq!(kid_of_name("JWK-", &name), Some(k));
        assert_eq!(kid_of_name("jwk-", "other-TEST--2026-11-21"), None);
        assert_eq!(kid_of_name("jwk-", "jwk-consumer"), None);
    }

    #[test]
    fn altinn_2_kids_get_names_that_are_unique_and_read_back() {
        for (k, expected) in [
            ("a-TEST.BKBQ", "jwk-a-TEST--BKBQ"),
            ("a-TEST.-AB-", "jwk-a-TEST---AB-"),
            ("a-TEST.AB--", "jwk-a-TEST--AB--"),
            ("a--b-TEST.A--B", "jwk-a--b-TEST--A--B"),
            ("a-TEST.a_b-", "jwk-a-TEST--x6bf6fe"),
            ("a-TEST.____", "jwk-a-TEST--xffffff"),
        ] {
            let k = kid(k);
            let name = secret_name("jwk-", &k).expect("name");
            assert_eq!(name, expected);
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{name}");
            assert_eq!(kid_of_name("jwk-", &name), Some(k.clone()), "{name}");
        }
        // A hex name for a code without `_` is not a name this tool writes.
        assert_eq!(kid_of_name("jwk-", "jwk-a-TEST--x04a050"), None);
        assert_eq!(kid_of_name("jwk-", "jwk-a-TEST--xq4a050"), None);
        assert_eq!(kid_of_name("jwk-", "jwk-a-TEST--2026-11-21"), Some(kid("a-TEST.2026-11-21")));
    }

    #[test]
    fn names_longer_than_127_are_refused() {
        let k = kid(&format!("{}-{}.2026-11-21", "c".repeat(64), "E".repeat(16)));
        let e = secret_name(&"p".repeat(40), &k).expect_err("too long");
        assert!(
            matches!(&e, AzureError::NameTooLong { name, kid } if name.len() > 127 && *kid == k),
            "{e:?}"
        );
        assert!(e.to_string().contains("127"), "{e}");
    }

    #[test]
    fn records_round_trip_through_tags_even_with_a_4096_bit_modulus() {
        for len in [342, 683] {
            let r = record(len);
            let tags = tags_of(&r);
            assert!(tags.len() <= 15 && tags.values().all(|v| v.len() <= 512));
            assert_eq!(record_of(&r.kid, &tags).expect("record"), r);
        }
    }

    #[test]
    fn tags_that_disagree_with_the_name_are_refused() {
        let r = record(342);
        let tags = tags_of(&r);
        let e = record_of(&kid("testklient-TEST.2026-11-22"), &tags).expect_err("other kid");
        assert_eq!(
            e,
            TagError::OtherKid {
                kid: Box::new(kid("testklient-TEST.2026-11-22")),
                tagged: Box::new(r.kid.clone())
            }
        );
        assert!(e.to_string().contains("its `kid` tag says testklient-TEST.2026-11-21-2"), "{e}");
        let mut bad = tags.clone();
        bad.insert("stage".into(), "live".into());
        assert!(matches!(record_of(&r.kid, &bad), Err(TagError::Invalid { tag: "stage", .. })));
        let secret = "c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWw";
        for name in ["stage", "kid", "alg", "created", "n", "e"] {
            let mut bad = tags_of(&r);
            bad.insert(name.into(), if name.len() == 1 { "!".into() } else { secret.into() });
            let e = record_of(&r.kid, &bad).expect_err("bad tag");
            let tag = match &e {
                TagError::Invalid { tag, .. } | TagError::NotATime { tag, .. } => *tag,
                other => panic!("{other:?}"),
            };
            assert_eq!(tag, name);
            let shown = e.to_string();
            assert!(shown.contains(&format!("`{name}` tag")) && !shown.contains(&secret[..12]), "{e}");
        }
        let mut bad = tags.clone();
        bad.insert("n".into(), "!".into());
        assert_eq!(
            record_of(&r.kid, &bad).expect_err("n").to_string(),
            "has a `n` tag that is not base64url"
        );
        bad.insert("n".into(), r.public.n.clone());
        bad.insert("alg".into(), "HS256".into());
        assert_eq!(
            record_of(&r.kid, &bad).expect_err("alg").to_string(),
            "has an `alg` tag that is not RS256, RS384 or RS512"
        );
        bad = tags;
        bad.remove("managed-by");
        let e = record_of(&r.kid, &bad).expect_err("owner");
        assert_eq!(e, TagError::NotManaged);
        assert_eq!(e.to_string(), "has no tag managed-by=jwk-rotator");
        bad = tags_of(&r);
        bad.remove("created");
        assert_eq!(record_of(&r.kid, &bad), Err(TagError::Missing("created")));
    }
}
