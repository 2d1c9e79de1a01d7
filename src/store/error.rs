//! Store failures: what kind of failure, the place it is about (a file, a Key Vault secret, a
//! key, a key set), and the message that names that place and says what to do.

use std::fmt;
use std::path::PathBuf;

use crate::kid::{KeySet, Kid};

/// What a store failure is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A key file, the lock file or the directory of the file store.
    File(PathBuf),
    /// A Key Vault (by its URL), and the secret when the failure is about one.
    Vault { url: String, secret: Option<String> },
    /// One key, where no file or secret is at hand (a kid a run lost, the memory store).
    Key(Kid),
    /// A key set (one that a load left out).
    KeySet(KeySet),
    /// A store as a whole, by its description (the memory store, a test double).
    Store(String),
}

impl Place {
    /// A Key Vault's `secret`.
    pub fn secret(url: &str, secret: &str) -> Place {
        Place::Vault { url: url.to_owned(), secret: Some(secret.to_owned()) }
    }

    /// A Key Vault as a whole.
    pub fn vault(url: &str) -> Place {
        Place::Vault { url: url.to_owned(), secret: None }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File(path) => write!(f, "{}", path.display()),
            Place::Vault { url, secret: Some(secret) } => write!(f, "secret {secret} in Key Vault {url}"),
            Place::Vault { url, secret: None } => write!(f, "Key Vault {url}"),
            Place::Key(kid) => write!(f, "key {kid}"),
            Place::KeySet(set) => write!(f, "key set {set}"),
            Place::Store(store) => f.write_str(store),
        }
    }
}

/// A store failure: its kind is the variant, `place` what it is about, and `message` the whole
/// sentence shown to users, which names the place and ends in what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, read or written at all.
    #[error("{message}")]
    Unavailable { place: Place, message: String },
    /// The store refused this identity (Key Vault 401/403, a file the user may not read).
    #[error("{message}")]
    Denied { place: Place, message: String },
    /// The store asked to slow down and its retries ran out (Key Vault 429).
    #[error("{message}")]
    Throttled { place: Place, message: String },
    /// One stored key is damaged; its key set is left alone until someone fixes it. `field` is
    /// the record's damaged member where one is known (`stage`, `kid`, `private_jwk`, ...).
    #[error("{message}")]
    Corrupt { place: Place, message: String, field: Option<&'static str> },
    /// The kid is already taken (a racing run, or a leftover).
    #[error("{message}")]
    Exists { place: Place, message: String },
    /// No such key, secret or file.
    #[error("{message}")]
    NotFound { place: Place, message: String },
    /// Another run holds the store.
    #[error("{message}")]
    Locked { place: Place, message: String },
    /// Any other failure of one operation.
    #[error("{message}")]
    Failed { place: Place, message: String },
}

impl StoreError {
    /// A damaged stored key, with no particular field to blame.
    pub fn corrupt(place: Place, message: String) -> StoreError {
        StoreError::Corrupt { place, message, field: None }
    }

    /// What the failure is about.
    pub fn place(&self) -> &Place {
        match self {
            StoreError::Unavailable { place, .. }
            | StoreError::Denied { place, .. }
            | StoreError::Throttled { place, .. }
            | StoreError::Corrupt { place, .. }
            | StoreError::Exists { place, .. }
            | StoreError::NotFound { place, .. }
            | StoreError::Locked { place, .. }
            | StoreError::Failed { place, .. } => place,
        }
    }

    /// A stable name for the kind of failure, for JSON output and log pipelines.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable { .. } => "store-unavailable",
            StoreError::Denied { .. } => "store-denied",
            StoreError::Throttled { .. } => "store-throttled",
            StoreError::Corrupt { .. } => "store-corrupt",
            StoreError::Exists { .. } => "store-exists",
            StoreError::NotFound { .. } => "store-not-found",
            StoreError::Locked { .. } => "store-locked",
            StoreError::Failed { .. } => "store-failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_shown_as_it_is_and_the_place_is_kept_apart() {
        let kid: Kid = "a-TEST.2026-11-21".parse().expect("kid");
        let e =
            StoreError::NotFound { place: Place::Key(kid.clone()), message: "no key; run again".to_owned() };
        assert_eq!(e.to_string(), "no key; run again");
        assert_eq!(e.place(), &Place::Key(kid));
        assert_eq!(e.kind(), "store-not-found");
        let places = [
            (Place::File("/srv/keys/a.json".into()), "/srv/keys/a.json"),
            (
                Place::secret("https://v.vault.azure.net/", "jwk-a"),
                "secret jwk-a in Key Vault https://v.vault.azure.net/",
            ),
            (Place::vault("https://v.vault.azure.net/"), "Key Vault https://v.vault.azure.net/"),
            (Place::KeySet("a-TEST".parse().expect("set")), "key set a-TEST"),
        ];
        for (place, shown) in places {
            assert_eq!(place.to_string(), shown);
        }
    }
}
