//! The file store, the embedded default: one `0600` JSON file per key, written atomically, and
//! a lock file so that two runs on one directory never interleave.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KeyStore, Loaded, StoreError, StoreLock};
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
        StoreError::Unavailable(format!(
            "file store: cannot {action} {}: {e}; check that the directory exists and is writable by this user, or set [store] path",
            path.display()
        ))
    }

    fn corrupt(path: &Path, what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!(
            "key file {} {what}; restore it from a backup or move it out of the store directory (its key set is left alone until then)",
            path.display()
        ))
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| self.io_error(&self.dir, "create", &e))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| self.io_error(&self.dir, "set permissions on", &e))
    }

    /// Reads and checks one key file; `kid` comes from its name.
    fn read(&self, kid: &Kid) -> Result<(KeyRecord, PrivateJwk), StoreError> {
        let path = self.path_of(kid);
        let bytes = Zeroizing::new(fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                StoreError::NotFound(format!("file store has no key {kid} ({})", path.display()))
            }
            _ => self.io_error(&path, "read", &e),
        })?);
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| {
            Self::corrupt(
                &path,
                format_args!("is not a valid key file ({})", super::file_errors::key_file_error(&e, &bytes)),
            )
        })?;
        let record = file.record;
        if record.kid != *kid || record.public.kid != *kid {
            return Err(Self::corrupt(
                &path,
                format_args!("holds kid {} but is named for {kid}", record.kid),
            ));
        }
        let key = PrivateJwk::from_base64(&file.private_jwk)
            .map_err(|e| Self::corrupt(&path, format_args!("has a private_jwk that can not be read: {e}")))?;
        if key.public() != &record.public {
            return Err(Self::corrupt(&path, "has a public half that does not match its private key"));
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

    /// Writes `content` to a new `0600` temp file beside `path`, fsynced.
    fn write_temp(&self, path: &Path, content: &[u8]) -> Result<PathBuf, StoreError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io_error(&tmp, "create", &e))?;
        let written = file.write_all(content).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.io_error(&tmp, "write", &e));
        }
        Ok(tmp)
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| self.io_error(&self.dir, "sync", &e))
    }

    fn encode(record: &KeyRecord, key: &PrivateJwk) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let file = KeyFile { record: record.clone(), private_jwk: key.to_base64() };
        serde_json::to_vec_pretty(&file)
            .map(Zeroizing::new)
            .map_err(|e| StoreError::Failed(format!("could not encode key file for {}: {e}", record.kid)))
    }
}

#[async_trait]
impl KeyStore for FileStore {
    fn describe(&self) -> String {
        format!("file store {}", self.dir.display())
    }

    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.io_error(&path, "open the lock file", &e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(file)),
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked(format!(
                        "another jwk-rotator run holds {} (waited {}s); let it finish and run again, or raise [store] lock_timeout",
                        path.display(),
                        timeout.as_secs()
                    )));
                }
                Err(fs::TryLockError::Error(e)) => return Err(self.io_error(&path, "lock", &e)),
            }
        }
    }

    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        let mut loaded: Loaded = sets.iter().map(|s| (s.clone(), Ok(Vec::new()))).collect();
        for kid in self.kids()? {
            let Some(Ok(recs)) = loaded.get_mut(kid.key_set()) else { continue };
            match self.read(&kid) {
                Ok((record, _key)) => recs.push(record),
                Err(StoreError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
                Err(e) => {
                    loaded.insert(kid.key_set().clone(), Err(e));
                }
            }
        }
        Ok(loaded)
    }

    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        let (_, key) = self.read(kid)?;
        // Before a key is handed to applications, aws-lc checks that its members agree.
        key.to_key_pair().map_err(|e| {
            Self::corrupt(&self.path_of(kid), format_args!("has a private key that is not usable: {e}"))
        })?;
        Ok(key)
    }

    async fn create(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let path = self.path_of(&record.kid);
        let tmp = self.write_temp(&path, &Self::encode(record, key)?)?;
        // A hard link never replaces an existing file: a taken kid fails instead of being lost.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StoreError::Exists(format!("{} exists already; it was not overwritten", path.display())))
            }
            Err(e) => Err(self.io_error(&path, "create", &e)),
        }
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

/// Writes `content` to `path` through a temp file and a rename, unless it already holds exactly
/// that. Returns whether it wrote.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    let result = file.write_all(content).and_then(|()| file.sync_all()).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}
