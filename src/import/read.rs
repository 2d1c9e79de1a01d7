//! Reading what altinn-jwks wrote, in each of its four layouts, into one [`Found`] per key set.
//! Only reads: every file and secret is left exactly as it was.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::ImportError;
use crate::azure::altinn::AltinnVault;
use crate::jwk::{PrivateJwk, SetMember, private_set_from_json};
use crate::kid::KeySet;

/// Which altinn-jwks layout a key set was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{set}.json`, `{set}.pub.json`, `{set}.key.json`.
    V1Directory,
    /// `{set}.jwks.json`.
    V2Directory,
    /// Secrets `{set}--priv`, `{set}--pub`, `{set}--key`.
    V1Vault,
    /// Secret `{set}--jwks`.
    V2Vault,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::V1Directory => "altinn-jwks 1.x directory",
            Layout::V2Directory => "altinn-jwks 2.0 directory",
            Layout::V1Vault => "altinn-jwks 1.x Key Vault",
            Layout::V2Vault => "altinn-jwks 2.0 Key Vault",
        })
    }
}

/// A public key of a 1.x `.pub` set, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublicMember {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
}

/// One altinn-jwks key set as found in a source, parsed but not yet checked.
pub struct Found {
    pub key_set: KeySet,
    pub layout: Layout,
    /// The files or secrets it was read from: what the operator may delete after the import.
    pub sources: Vec<String>,
    /// The private set, in altinn-jwks's order (the current key last).
    pub private: Result<Vec<SetMember>, PartError>,
    /// 1.x: the public set.
    pub public: Option<Result<Vec<PublicMember>, PartError>>,
    /// 1.x: the current key.
    pub current: Option<Result<PrivateJwk, PartError>>,
    /// What was wrong with the layout itself.
    pub problems: Vec<String>,
}

/// A part of an altinn-jwks key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    PrivateSet,
    /// 1.x only.
    PublicSet,
    /// 1.x only.
    CurrentKey,
}

impl Part {
    /// What the part must be, as in "not a private key set".
    fn what(self) -> &'static str {
        match self {
            Part::PrivateSet => "a private key set",
            Part::PublicSet => "a public key set",
            Part::CurrentKey => "a private key",
        }
    }
}

/// Why a part of a key set can not be used: it is missing, or it does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    /// `name` (a file, or `secret NAME`) is there but is not what the part must be; `cause`
    /// never quotes its content.
    #[error("{name}: not {}: {cause}", part.what())]
    Unreadable { part: Part, name: String, cause: String },
    /// The part is not there; `expected` is the file or secret it would be.
    #[error("{}", missing(*part, expected))]
    Missing { part: Part, expected: String },
}

fn missing(part: Part, expected: &str) -> String {
    match part {
        Part::PrivateSet => {
            format!("the private key set {expected} is missing; only the public set or current key was found")
        }
        Part::PublicSet => format!("the public set {expected} is missing"),
        Part::CurrentKey => format!("the current key {expected} is missing"),
    }
}

/// The parts of one key set, by kind, with where each came from.
#[derive(Default)]
struct Parts {
    v1_private: Option<(String, Zeroizing<Vec<u8>>)>,
    v1_public: Option<(String, Zeroizing<Vec<u8>>)>,
    v1_key: Option<(String, Zeroizing<Vec<u8>>)>,
    v2_private: Option<(String, Zeroizing<Vec<u8>>)>,
    failed: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    V1Private,
    V1Public,
    V1Key,
    V2Private,
}

impl Parts {
    fn slot(&mut self, kind: Kind) -> &mut Option<(String, Zeroizing<Vec<u8>>)> {
        match kind {
            Kind::V1Private => &mut self.v1_private,
            Kind::V1Public => &mut self.v1_public,
            Kind::V1Key => &mut self.v1_key,
            Kind::V2Private => &mut self.v2_private,
        }
    }
}

/// The key set and kind of a file name altinn-jwks writes, if it is one.
fn file_kind(name: &str) -> Option<(KeySet, Kind)> {
    let (set, rest) = name.split_once('.')?;
    let kind = match rest {
        "json" => Kind::V1Private,
        "pub.json" => Kind::V1Public,
        "key.json" => Kind::V1Key,
        "jwks.json" => Kind::V2Private,
        _ => return None,
    };
    Some((set.parse().ok()?, kind))
}

/// The key set and kind of a secret name altinn-jwks writes, if it is one.
fn secret_kind(name: &str) -> Option<(KeySet, Kind)> {
    let (set, rest) = name.rsplit_once("--")?;
    let kind = match rest.to_ascii_lowercase().as_str() {
        "priv" => Kind::V1Private,
        "pub" => Kind::V1Public,
        "key" => Kind::V1Key,
        "jwks" => Kind::V2Private,
        _ => return None,
    };
    Some((set.parse().ok()?, kind))
}

/// Every altinn-jwks key set in a directory (files `{set}.json`, `.pub.json`, `.key.json`,
/// `.jwks.json`); other files are not looked at.
pub(crate) fn read_directory(dir: &Path) -> Result<Vec<Found>, ImportError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ImportError::Unlisted { from: dir.to_path_buf(), cause: e.to_string() })?;
    let mut sets: BTreeMap<KeySet, Parts> = BTreeMap::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| ImportError::ListingFailed { from: dir.to_path_buf(), cause: e.to_string() })?;
        let Some((set, kind)) = entry.file_name().to_str().and_then(file_kind) else { continue };
        let path = entry.path();
        let shown = path.display().to_string();
        let parts = sets.entry(set).or_default();
        match crate::disk::read_regular(&path) {
            Ok(bytes) => *parts.slot(kind) = Some((shown, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => parts.failed.push(format!(
                "cannot read {shown}: {e}; altinn-jwks writes regular files: move it away, or replace it with the file it stands for"
            )),
            Err(e) => {
                parts.failed.push(format!("cannot read {shown}: {e}; check that this user may read it"))
            }
        }
    }
    Ok(sets.into_iter().map(|(set, parts)| assemble(set, parts, false)).collect())
}

/// Every altinn-jwks key set in a vault (secrets `{set}--priv`, `--pub`, `--key`, `--jwks`);
/// the values are standard base64 of the JSON. Other secrets are not read.
pub(crate) async fn read_vault(vault: &AltinnVault) -> Result<Vec<Found>, ImportError> {
    let names = vault
        .names()
        .await
        .map_err(|cause| ImportError::Vault { url: vault.url().to_owned(), cause: Box::new(cause) })?;
    let mut sets: BTreeMap<KeySet, Parts> = BTreeMap::new();
    for name in names {
        let Some((set, kind)) = secret_kind(&name) else { continue };
        let parts = sets.entry(set).or_default();
        match vault.value(&name).await {
            Ok(value) => match STANDARD.decode(value.trim()) {
                Ok(bytes) => *parts.slot(kind) = Some((format!("secret {name}"), Zeroizing::new(bytes))),
                Err(_) => parts.failed.push(format!(
                    "secret {name} in Key Vault {} is not standard base64, which altinn-jwks writes",
                    vault.url()
                )),
            },
            Err(e) => parts.failed.push(e.to_string()),
        }
    }
    Ok(sets.into_iter().map(|(set, parts)| assemble(set, parts, true)).collect())
}

/// Parses the parts of one key set into a [`Found`], with a problem for a missing or
/// unreadable part, or for a key set in both layouts.
fn assemble(key_set: KeySet, parts: Parts, vault: bool) -> Found {
    let v1 = parts.v1_private.is_some() || parts.v1_public.is_some() || parts.v1_key.is_some();
    let layout = match (v1, vault) {
        (true, false) => Layout::V1Directory,
        (false, false) => Layout::V2Directory,
        (true, true) => Layout::V1Vault,
        (false, true) => Layout::V2Vault,
    };
    let mut problems = parts.failed;
    let mut sources = Vec::new();
    let mut note = |part: &Option<(String, Zeroizing<Vec<u8>>)>| {
        if let Some((name, _)) = part {
            sources.push(name.clone());
        }
    };
    for part in [&parts.v1_private, &parts.v1_public, &parts.v1_key, &parts.v2_private] {
        note(part);
    }
    if v1 && parts.v2_private.is_some() {
        problems.push(format!(
            "{key_set} is there in both the 1.x and the 2.0 layout ({}); move the one that is not in use elsewhere and import again",
            sources.join(", ")
        ));
    }
    let name = |part: &str, file: &str| {
        if vault { format!("secret {key_set}--{part}") } else { format!("{key_set}.{file}") }
    };
    let private_part = if v1 { &parts.v1_private } else { &parts.v2_private };
    let private = match private_part {
        Some((name, bytes)) => {
            private_set_from_json(bytes).map_err(|e| unreadable(Part::PrivateSet, name, e))
        }
        None => Err(PartError::Missing {
            part: Part::PrivateSet,
            expected: if v1 { name("priv", "json") } else { String::new() },
        }),
    };
    let public = v1.then(|| match &parts.v1_public {
        Some((name, bytes)) => {
            public_set(bytes).map_err(|e| unreadable(Part::PublicSet, name, crate::redact::json_error(&e)))
        }
        None => Err(PartError::Missing { part: Part::PublicSet, expected: name("pub", "pub.json") }),
    });
    let current = v1.then(|| match &parts.v1_key {
        Some((name, bytes)) => {
            PrivateJwk::from_json(bytes).map_err(|e| unreadable(Part::CurrentKey, name, e))
        }
        None => Err(PartError::Missing { part: Part::CurrentKey, expected: name("key", "key.json") }),
    });
    Found { key_set, layout, sources, private, public, current, problems }
}

fn unreadable(part: Part, name: &str, cause: impl fmt::Display) -> PartError {
    PartError::Unreadable { part, name: name.to_owned(), cause: cause.to_string() }
}

/// A public set: `{"keys":[...]}`, or the bare array that `export maskinporten` prints.
fn public_set(bytes: &[u8]) -> Result<Vec<PublicMember>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Set {
        Keys { keys: Vec<PublicMember> },
        Bare(Vec<PublicMember>),
    }
    serde_json::from_slice::<Set>(bytes).map(|(Set::Keys { keys } | Set::Bare(keys))| keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn altinn_names_are_recognised_and_others_left_alone() {
        let kind = |n: &str| file_kind(n).map(|(s, _)| s.to_string());
        assert_eq!(kind("testklient-TEST.json").as_deref(), Some("testklient-TEST"));
        assert_eq!(kind("testklient-TEST.pub.json").as_deref(), Some("testklient-TEST"));
        assert_eq!(kind("testklient-TEST.jwks.json").as_deref(), Some("testklient-TEST"));
        assert_eq!(kind("testklient-TEST.maskinporten.json"), None);
        assert_eq!(kind("notes.txt"), None);
        let secret = |n: &str| secret_kind(n).map(|(s, _)| s.to_string());
        assert_eq!(secret("my-app-PROD--priv").as_deref(), Some("my-app-PROD"));
        assert_eq!(secret("my-app-PROD--JWKS").as_deref(), Some("my-app-PROD"));
        assert_eq!(secret("MaskinportenSettings--EncodedJwk"), None);
        assert_eq!(secret("jwk-my-app-PROD--2026-11-21"), None);
    }

    #[test]
    fn a_missing_or_unreadable_part_is_named_with_its_file_or_secret() {
        let set: KeySet = "a-TEST".parse().expect("set");
        let bytes = |text: &str| Zeroizing::new(text.as_bytes().to_vec());
        let parts = Parts {
            v1_public: Some(("a-TEST.pub.json".to_owned(), bytes("{\"keys\": 7}"))),
            ..Parts::default()
        };
        let found = assemble(set.clone(), parts, false);
        assert_eq!(found.layout, Layout::V1Directory);
        let Err(private) = found.private else { panic!("a private set") };
        assert_eq!(
            private,
            PartError::Missing { part: Part::PrivateSet, expected: "a-TEST.json".to_owned() }
        );
        assert_eq!(
            private.to_string(),
            "the private key set a-TEST.json is missing; only the public set or current key was found"
        );
        let public = found.public.expect("1.x").expect_err("not a set");
        assert!(
            matches!(&public, PartError::Unreadable { part: Part::PublicSet, name, .. } if name == "a-TEST.pub.json"),
            "{public:?}"
        );
        assert!(public.to_string().starts_with("a-TEST.pub.json: not a public key set: "), "{public}");
        let current = found.current.expect("1.x").expect_err("missing");
        assert_eq!(current.to_string(), "the current key a-TEST.key.json is missing");

        let secret = "c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWw";
        let parts =
            Parts { v1_key: Some(("secret a-TEST--key".to_owned(), bytes(secret))), ..Parts::default() };
        let found = assemble(set, parts, true);
        let current = found.current.expect("1.x").expect_err("not a key");
        assert!(matches!(&current, PartError::Unreadable { part: Part::CurrentKey, .. }), "{current:?}");
        assert!(!current.to_string().contains(&secret[..12]), "{current}");
        assert_eq!(
            found.public.expect("1.x").expect_err("missing").to_string(),
            "the public set secret a-TEST--pub is missing"
        );
    }
}
