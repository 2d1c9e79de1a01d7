//! Filesystem helpers shared by the file store, the publish directory and the import reader: directories and files made
//! with exactly the intended modes whatever the umask, atomic replacement, files opened without
//! following links, and the removal of temp files that a killed run left behind.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Creates `path` and each missing parent with exactly `mode` (the umask does not apply), and
/// returns the directories it created, outermost first. Existing directories are left as they are.
pub(crate) fn create_dirs(path: &Path, mode: u32) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    for dir in path.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(dir),
            Err(e) => return Err(e),
        }
    }
    let mut created = Vec::new();
    for dir in missing.into_iter().rev() {
        match DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            // Made by someone else in the meantime: theirs, so its mode is left alone.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => continue,
            Err(e) => return Err(e),
        }
        fs::set_permissions(dir, Permissions::from_mode(mode))?;
        created.push(dir.to_owned());
    }
    Ok(created)
}

/// Opens `path` for reading without following a symbolic link (that fails with `ELOOP`) and
/// without blocking on a FIFO; the caller checks with `metadata()` what it opened.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
}

/// Reads a regular file, following a symbolic link (a Kubernetes secret volume is made of
/// them) but never blocking on a FIFO: anything but a regular file is refused, naming what it is.
pub(crate) fn read_regular(path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let kind = kind_name(meta.file_type());
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is {kind}, not a regular file")));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether an open error means that the path is a symbolic link.
pub(crate) fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// What a file type is called in messages.
pub(crate) fn kind_name(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The name of the temp file that stands in for `name` while this process writes it:
/// `.{name}.{pid}.tmp`.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.{}.tmp", std::process::id())
}

/// The file name and writer's process id of a temp file name made by [`temp_name`].
pub(crate) fn parse_temp_name(file_name: &str) -> Option<(&str, u32)> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, pid) = inner.rsplit_once('.')?;
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    Some((name, pid.parse().ok().filter(|_| pid_ok)?))
}

/// Creates a new temp file for `path` in `dir` with exactly `mode`, writes and fsyncs `content`.
pub(crate) fn write_temp(dir: &Path, path: &Path, content: &[u8], mode: u32) -> io::Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(temp_name(name));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(content))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Writes `content` to `path` with exactly `mode` through a temp file and a rename, unless it
/// already holds exactly that with that mode. Returns whether it wrote.
pub(crate) fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<bool> {
    let same_mode = fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && fs::read(path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = write_temp(dir, path, content, mode)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(true)
}

/// Whether a temp file's writer may still be writing it: another process with that id runs.
/// Where `/proc` is missing every other writer counts as gone.
fn writer_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the temp files in `dir` named by [`temp_name`] for a name that `ours` accepts, and
/// returns their names. Nothing else is touched: not other names, not directories, and, when
/// `skip_live` is set, not the files of a writer that still runs. A missing `dir` has none.
pub(crate) fn remove_stale_temps(
    dir: &Path,
    ours: impl Fn(&str) -> bool,
    skip_live: bool,
) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        let Some((name, pid)) = parse_temp_name(file_name) else { continue };
        if !ours(name) || entry.file_type()?.is_dir() || (skip_live && writer_alive(pid)) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed.push(file_name.to_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", entry.path().display()))),
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip_and_nothing_else_parses() {
        let name = temp_name("a-TEST.2026-01-01.json");
        assert_eq!(parse_temp_name(&name), Some(("a-TEST.2026-01-01.json", std::process::id())));
        assert_eq!(parse_temp_name(".a-TEST.jwks.json.42.tmp"), Some(("a-TEST.jwks.json", 42)));
        for other in
            [".lock", "a.json.42.tmp", ".a.json.tmp", ".a.json.4x2.tmp", ".a.json.+42.tmp", ".42.tmp"]
        {
            assert_eq!(parse_temp_name(other), None, "{other}");
        }
    }

    #[test]
    fn stale_temps_of_our_names_only_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let ours = ".a-TEST.2026-01-01.json.999999999.tmp";
        for name in [ours, ".other.json.999999999.tmp", "a-TEST.2026-01-01.json", ".lock", "notes.tmp"] {
            fs::write(dir.path().join(name), "x").expect("write");
        }
        fs::create_dir(dir.path().join(".b-TEST.2026-01-01.json.7.tmp")).expect("dir");
        let removed = remove_stale_temps(dir.path(), |n| n.starts_with("a-TEST"), false).expect("tidy");
        assert_eq!(removed, vec![ours.to_owned()]);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("e").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".b-TEST.2026-01-01.json.7.tmp",
                ".lock",
                ".other.json.999999999.tmp",
                "a-TEST.2026-01-01.json",
                "notes.tmp"
            ]
        );
    }

    #[test]
    fn a_running_writers_temp_is_left_when_asked() {
        let dir = tempfile::tempdir().expect("dir");
        // Process 1 (init) always runs; this process's own files are stale when tidying starts.
        let init = dir.path().join(".s-TEST.jwks.json.1.tmp");
        let own = dir.path().join(temp_name("s-TEST.jwks.json"));
        fs::write(&init, "x").expect("write");
        fs::write(&own, "x").expect("write");
        let init_seen = Path::new("/proc/1").exists();
        let removed = remove_stale_temps(dir.path(), |_| true, true).expect("tidy");
        assert_eq!(removed.len(), if init_seen { 1 } else { 2 }, "{removed:?}");
        assert_eq!(init.exists(), init_seen);
        assert!(!own.exists());
    }

    #[test]
    fn directories_and_files_get_exact_modes() {
        let dir = tempfile::tempdir().expect("dir");
        let deep = dir.path().join("a/b/c");
        let created = create_dirs(&deep, 0o700).expect("create");
        assert_eq!(created, vec![dir.path().join("a"), dir.path().join("a/b"), deep.clone()]);
        for d in &created {
            assert_eq!(fs::metadata(d).expect("meta").permissions().mode() & 0o7777, 0o700);
        }
        assert_eq!(create_dirs(&deep, 0o755).expect("again"), Vec::<PathBuf>::new());
        let file = deep.join("f");
        assert!(write_atomic(&file, b"x", 0o644).expect("write"));
        assert!(!write_atomic(&file, b"x", 0o644).expect("same"), "unchanged content is not rewritten");
        fs::set_permissions(&file, Permissions::from_mode(0o666)).expect("chmod");
        assert!(write_atomic(&file, b"x", 0o644).expect("mode"), "a wrong mode is rewritten");
        assert_eq!(fs::metadata(&file).expect("meta").permissions().mode() & 0o7777, 0o644);
    }
}
