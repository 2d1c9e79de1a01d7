//! The file store, the embedded default: one `0600` JSON file per key, written atomically, and
//! a lock file so that two runs on one directory never interleave.
//!
//! What it refuses and repairs, before any key is read:
//! - a store directory writable by group or others: refused for the whole store, with the
//!   `chmod` to run (another user could plant or swap a key there);
//! - a key file readable or writable by group or others: set to `0600` and logged as a warning
//!   naming the file, because its key may have been seen (`plan` and `status` do this too: it
//!   is the one change a read-only command makes);
//! - an entry named like a key file that is a symbolic link (never followed), a directory, a
//!   FIFO or anything else but a regular file, and a key file this user can not read: refused
//!   for its own key set only, with advice for that case; the other key sets run.
//!
//! Directories it creates (the store and its missing parents) are `0700`, key files and the
//! lock `0600`, whatever the umask. Under the lock, each run first removes the temp files
//! (`.{kid}.json.{pid}.tmp`) that a killed run left; they hold a whole private key.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KeyStore, Loaded, Place, StoreError, StoreLock};
use crate::disk;
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

const LOCK_FILE: &str = ".lock";

/// A directory of key files named `{kid}.json`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// The file's content: the record's members and the private JWK as `EncodedJwk` base64.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    #[serde(flatten)]
    record: KeyRecord,
    private_jwk: Zeroizing<String>,
}

impl FileStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, kid: &Kid) -> PathBuf {
        self.dir.join(format!("{kid}.json"))
    }

    fn io_error(&self, path: &Path, action: &str, e: &io::Error) -> StoreError {
        let message = format!(
            "file store: cannot {action} {}: {e}; check that the directory exists and is writable by this user, or set [store] path",
            path.display()
        );
        StoreError::Unavailable { place: Place::File(path.to_owned()), message }
    }

    fn corrupt(path: &Path, what: impl std::fmt::Display) -> StoreError {
        Self::corrupt_field(path, what, None)
    }

    fn corrupt_field(path: &Path, what: impl std::fmt::Display, field: Option<&'static str>) -> StoreError {
        let message = format!(
            "key file {} {what}; restore it from a backup or move it out of the store directory (its key set is left alone until then)",
            path.display()
        );
        StoreError::Corrupt { place: Place::File(path.to_owned()), message, field }
    }

    /// Creates the store directory and its missing parents `0700`, whatever the umask.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let created =
            disk::create_dirs(&self.dir, 0o700).map_err(|e| self.io_error(&self.dir, "create", &e))?;
        for dir in created {
            tracing::info!(dir = %dir.display(), "created the store directory (0700)");
        }
        Ok(())
    }

    /// Refuses a store directory that group or others may write: they could plant or swap keys.
    fn check_dir(&self) -> Result<(), StoreError> {
        let mode = match fs::metadata(&self.dir) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_error(&self.dir, "inspect", &e)),
        };
        if mode & 0o022 == 0 {
            return Ok(());
        }
        let message = format!(
            "file store directory {} is writable by group or others (mode {:04o}), so another user could plant or swap a key; no key was read. Run `chmod go-w {}` (or `chmod 700`) and run again",
            self.dir.display(),
            mode & 0o7777,
            self.dir.display()
        );
        Err(StoreError::Unavailable { place: Place::File(self.dir.clone()), message })
    }

    /// Why a key file could not be opened, with advice for that case.
    fn open_error(&self, kid: &Kid, path: &Path, e: &io::Error) -> StoreError {
        if disk::is_link_error(e) {
            return Self::corrupt(
                path,
                "is a symbolic link, which is never followed: key files must be regular files in the store directory; replace the link with the file itself if you trust it",
            );
        }
        let place = Place::File(path.to_owned());
        match e.kind() {
            io::ErrorKind::NotFound => {
                let message = format!("file store has no key {kid} ({})", path.display());
                StoreError::NotFound { place, message }
            }
            io::ErrorKind::PermissionDenied => StoreError::Unavailable {
                place,
                message: format!(
                    "cannot read key file {}: permission denied; run jwk-rotator as the user that owns the store, or give that user the file (`chown USER {}`, mode 0600); its key set is left alone until then",
                    path.display(),
                    path.display()
                ),
            },
            _ => StoreError::Unavailable {
                place,
                message: format!(
                    "cannot read key file {}: {e}; check the file and the disk, or restore it from a backup (its key set is left alone until then)",
                    path.display()
                ),
            },
        }
    }

    /// Sets a key file that group or others may read or write to `0600`, with a warning.
    fn tighten(file: &File, path: &Path, mode: u32) -> Result<(), StoreError> {
        if mode & 0o077 == 0 {
            return Ok(());
        }
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| StoreError::Unavailable {
            place: Place::File(path.to_owned()),
            message: format!(
                "key file {} has mode {:04o} (open to group or others) and could not be set to 0600: {e}; run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
        })?;
        tracing::warn!(
            file = %path.display(),
            mode = %format!("{:04o}", mode & 0o7777),
            "key file was open to group or others; set to 0600. Its private key may have been read: if others could reach this file, rotate (`rotate --force`), promote, and retire this key"
        );
        Ok(())
    }

    /// The bytes of one key file (a regular file, never through a link, made `0600` first) and
    /// when it was last written.
    fn read_bytes(&self, kid: &Kid, path: &Path) -> Result<(Zeroizing<Vec<u8>>, SystemTime), StoreError> {
        let mut file = disk::open_no_follow(path).map_err(|e| self.open_error(kid, path, &e))?;
        let meta = file.metadata().map_err(|e| self.open_error(kid, path, &e))?;
        if !meta.is_file() {
            let kind = disk::kind_name(meta.file_type());
            return Err(Self::corrupt(path, format_args!("is {kind}, not a key file")));
        }
        Self::tighten(&file, path, meta.permissions().mode())?;
        let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        file.read_to_end(&mut bytes).map_err(|e| self.open_error(kid, path, &e))?;
        let modified = meta.modified().map_err(|e| self.open_error(kid, path, &e))?;
        Ok((bytes, modified))
    }

    /// Reads and checks one key file; `kid` comes from its name.
    fn read(&self, kid: &Kid) -> Result<(KeyRecord, PrivateJwk), StoreError> {
        let path = self.path_of(kid);
        let (bytes, modified) = self.read_bytes(kid, &path)?;
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| {
            let field = super::file_errors::damaged_field(&e, &bytes);
            let why = super::file_errors::key_file_error(&e, &bytes);
            Self::corrupt_field(&path, format_args!("is not a valid key file ({why})"), field)
        })?;
        let mut record = file.record;
        // A file an older version wrote has no `written`: its modification time is when it was
        // last written (every write replaces the whole file).
        record.written = record.written.or_else(|| Some(DateTime::<Utc>::from(modified)));
        if record.kid != *kid || record.public.kid != *kid {
            let why = format_args!("holds kid {} but is named for {kid}", record.kid);
            return Err(Self::corrupt_field(&path, why, Some("kid")));
        }
        let key = PrivateJwk::from_base64(&file.private_jwk).map_err(|e| {
            let why = format_args!("has a private_jwk that can not be read: {e}");
            Self::corrupt_field(&path, why, Some("private_jwk"))
        })?;
        if key.public() != &record.public {
            let why = "has a public half that does not match its private key";
            return Err(Self::corrupt_field(&path, why, Some("public")));
        }
        Ok((record, key))
    }

    /// Kids of the key files in the directory; names that are not kids are skipped with a warning.
    fn kids(&self) -> Result<Vec<Kid>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error(&self.dir, "list", &e)),
        };
        let mut kids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error(&self.dir, "list", &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            match name.strip_suffix(".json").map(str::parse::<Kid>) {
                Some(Ok(kid)) => kids.push(kid),
                _ => {
                    tracing::warn!(file = %entry.path().display(), "not a key file name ({{kid}}.json); ignored")
                }
            }
        }
        kids.sort();
        Ok(kids)
    }

    /// Removes the temp files of key files that a killed run left (under the lock only).
    fn remove_stale_temps(&self) -> Result<(), StoreError> {
        let is_key_file = |name: &str| name.strip_suffix(".json").is_some_and(|k| k.parse::<Kid>().is_ok());
        let removed = disk::remove_stale_temps(&self.dir, is_key_file, false).map_err(|e| {
            StoreError::Unavailable {
                place: Place::File(self.dir.clone()),
                message: format!(
                    "file store: cannot remove a temp file that an interrupted run left (it holds a private key): {e}; remove it by hand"
                ),
            }
        })?;
        for name in removed {
            tracing::warn!(file = %name, dir = %self.dir.display(), "removed a temp file that an interrupted run left");
        }
        Ok(())
    }

    /// Writes `content` to a new `0600` temp file beside `path`, fsynced.
    fn write_temp(&self, path: &Path, content: &[u8]) -> Result<PathBuf, StoreError> {
        disk::write_temp(&self.dir, path, content, 0o600)
            .map_err(|e| self.io_error(path, "write a temp file for", &e))
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| self.io_error(&self.dir, "sync", &e))
    }

    fn encode(record: &KeyRecord, key: &PrivateJwk) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let file = KeyFile { record: record.clone(), private_jwk: key.to_base64() };
        serde_json::to_vec_pretty(&file).map(Zeroizing::new).map_err(|e| StoreError::Failed {
            place: Place::Key(record.kid.clone()),
            message: format!("could not encode key file for {}: {e}", record.kid),
        })
    }

    /// Opens (or creates, `0600`) the lock file, never through a link.
    fn open_lock_file(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| self.io_error(&path, "open the lock file", &e))?;
        let mode = file.metadata().map_err(|e| self.io_error(&path, "inspect", &e))?.permissions().mode();
        if mode & 0o7777 != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| self.io_error(&path, "set permissions on", &e))?;
        }
        Ok(file)
    }
}

#[async_trait]
impl KeyStore for FileStore {
    fn describe(&self) -> String {
        format!("file store {}", self.dir.display())
    }

    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.ensure_dir()?;
        self.check_dir()?;
        let file = self.open_lock_file()?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let lock = self.dir.join(LOCK_FILE);
                    let message = format!(
                        "another jwk-rotator run holds {} (waited {}); let it finish and run again, or raise [store] lock_timeout",
                        lock.display(),
                        humantime::format_duration(timeout)
                    );
                    return Err(StoreError::Locked { place: Place::File(lock), message });
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(self.io_error(&self.dir.join(LOCK_FILE), "lock", &e));
                }
            }
        }
        self.remove_stale_temps()?;
        Ok(Box::new(file))
    }

    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.check_dir()?;
        let mut loaded: Loaded = sets.iter().map(|s| (s.clone(), Ok(Vec::new()))).collect();
        for kid in self.kids()? {
            let Some(Ok(recs)) = loaded.get_mut(kid.key_set()) else { continue };
            // A bad entry stops its own key set only; the others are loaded.
            match self.read(&kid) {
                Ok((record, _key)) => recs.push(record),
                Err(e) => {
                    loaded.insert(kid.key_set().clone(), Err(e));
                }
            }
        }
        Ok(loaded)
    }

    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.check_dir()?;
        let (_, key) = self.read(kid)?;
        // Before a key is handed to applications, aws-lc checks that its members agree.
        key.to_key_pair().map_err(|e| {
            Self::corrupt(&self.path_of(kid), format_args!("has a private key that is not usable: {e}"))
        })?;
        Ok(key)
    }

    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let path = self.path_of(&record.kid);
        let tmp = self.write_temp(&path, &Self::encode(record, key)?)?;
        // A hard link never replaces an existing file: a taken kid fails instead of being lost.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let message = format!("{} exists already; it was not overwritten", path.display());
                Err(StoreError::Exists { place: Place::File(path), message })
            }
            Err(e) => Err(self.io_error(&path, "create", &e)),
        }
    }

    /// The lock keeps other runs out, and `write_new` never replaces a file: a written key is
    /// confirmed already.
    async fn confirm_new(&self, _record: &KeyRecord) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let (_, key) = self.read(&record.kid)?;
        let path = self.path_of(&record.kid);
        let tmp = self.write_temp(&path, &Self::encode(record, &key)?)?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io_error(&path, "replace", &e)
        })?;
        self.sync_dir()
    }

    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        let path = self.path_of(kid);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error(&path, "delete", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::keygen::{FixtureGenerator, KeyGenerator};
    use crate::policy::Policy;
    use crate::record::Stage;

    /// A store in a fresh `0700` directory holding one current key of each of `sets`.
    async fn store_with(sets: &[&str]) -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileStore::new(dir.path().join("keys"));
        let keys =
            FixtureGenerator::from_lines(include_str!("../../tests/data/fixture-keys.b64")).expect("keys");
        let (policy, now) = (
            Policy::default(),
            "2026-11-21T06:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("now"),
        );
        for set in sets {
            let kid: Kid = format!("{set}.2026-11-21").parse().expect("kid");
            let key = keys.generate(kid, policy.key_size(), policy.algorithm()).expect("key");
            let record = KeyRecord::new(key.public().clone(), Stage::Current, now);
            crate::store::create(&store, &record, &key).await.expect("create");
        }
        (dir, store)
    }

    fn sets(names: &[&str]) -> Vec<KeySet> {
        names.iter().map(|n| n.parse().expect("set")).collect()
    }

    fn error_of(loaded: &Loaded, set: &str) -> String {
        match &loaded[&set.parse::<KeySet>().expect("set")] {
            Ok(records) => panic!("{set} loaded {} records", records.len()),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn a_directory_named_like_a_key_file_fails_only_its_key_set() {
        let (_dir, store) = store_with(&["a-PROD"]).await;
        fs::create_dir(store.dir().join("a-TEST.2026-01-01.json")).expect("dir");
        let loaded = store.load(&sets(&["a-TEST", "a-PROD"])).await.expect("load");
        let e = error_of(&loaded, "a-TEST");
        assert!(e.contains("a-TEST.2026-01-01.json is a directory, not a key file"), "{e}");
        assert!(!e.contains("writable"), "{e}");
        assert_eq!(loaded[&"a-PROD".parse::<KeySet>().expect("set")].as_ref().map(Vec::len), Ok(1));
    }

    #[tokio::test]
    async fn a_key_file_that_is_a_link_is_refused_and_not_followed() {
        let (dir, store) = store_with(&["a-TEST"]).await;
        let path = store.dir().join("a-TEST.2026-11-21.json");
        let outside = dir.path().join("outside.json");
        fs::rename(&path, &outside).expect("move");
        symlink(&outside, &path).expect("link");
        let loaded = store.load(&sets(&["a-TEST"])).await.expect("load");
        assert!(error_of(&loaded, "a-TEST").contains("is a symbolic link, which is never followed"));
        let kid: Kid = "a-TEST.2026-11-21".parse().expect("kid");
        let e = store.private_key(&kid).await.expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[tokio::test]
    async fn a_loose_key_file_is_tightened_and_a_loose_directory_refused() {
        let (_dir, store) = store_with(&["a-TEST"]).await;
        let path = store.dir().join("a-TEST.2026-11-21.json");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let loaded = store.load(&sets(&["a-TEST"])).await.expect("load");
        assert!(loaded.values().all(Result::is_ok));
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        fs::set_permissions(store.dir(), fs::Permissions::from_mode(0o770)).expect("chmod");
        let e = store.load(&sets(&["a-TEST"])).await.expect_err("refused");
        assert!(e.to_string().contains("writable by group or others (mode 0770)"), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert!(store.lock(Duration::ZERO).await.is_err(), "a run locked a loose store");
    }

    #[tokio::test]
    async fn taking_the_lock_removes_key_temps_and_nothing_else() {
        let (_dir, store) = store_with(&["a-TEST"]).await;
        let stale = store.dir().join(".a-TEST.2026-11-22.json.1.tmp");
        let foreign = store.dir().join(".notes.1.tmp");
        fs::write(&stale, "a private key").expect("write");
        fs::write(&foreign, "mine").expect("write");
        let lock = store.lock(Duration::ZERO).await.expect("lock");
        assert!(!stale.exists() && foreign.exists());
        drop(lock);
    }

    #[tokio::test]
    async fn a_short_lock_timeout_is_reported_in_human_units() {
        let (_dir, store) = store_with(&[]).await;
        let _held = store.lock(Duration::ZERO).await.expect("lock");
        let e = store.lock(Duration::from_millis(120)).await.expect_err("locked");
        assert!(e.to_string().contains("(waited 120ms)"), "{e}");
    }
}
