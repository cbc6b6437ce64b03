//! Where outputs go, and how they get there without losing anything.
//!
//! Every file rasterlab writes (GeoTIFFs, label maps, SVG profiles, PNG quick-looks) is
//! first written under a temporary name in the target folder and renamed over the final
//! name only once it is complete. This module holds the rules that make that safe:
//!
//! * [`check_output_path`] runs before any work: the folder exists and is writable, the
//!   name is not a folder, and whatever already stands there is a regular file. A
//!   symbolic link, a device, a FIFO or a socket at the output path is refused: renaming
//!   over it would silently replace it.
//! * [`check_distinct`] refuses an output that is one of the inputs (same resolved path,
//!   or the same file through a hard link) or another output of the same run.
//! * [`PendingFile`] creates the temporary file exclusively (never through a planted
//!   symbolic link, via the `tempfile` crate), keeps its name within the file system's
//!   255-byte limit, removes it when dropped, and on [`PendingFile::commit`] flushes it
//!   to disk before the rename.
//! * Temporary names carry the host and the process id, so a later run into the same
//!   folder recognises debris left by a killed process ([`remove_stale`]) and removes it,
//!   without touching files of processes still running (here or, on a shared file
//!   system, on another host).
//! * [`write_atomic`] does all of this for small files written in one go.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest file name (in bytes) most Linux file systems accept.
const NAME_MAX: usize = 255;
/// What GDAL may append to a temporary name for a side-car file.
const SIDECAR: &str = ".aux.xml";
/// Marker in every temporary name rasterlab creates.
const MARK: &str = ".rasterlab-";
/// Random characters in a temporary name.
const RAND_CHARS: usize = 6;

/// Checks that `path` can be created or replaced, before any computation starts.
///
/// Refused, each with an [`Error::Output`] naming the path and the reason:
/// a name that is a folder or ends in `/`; a folder that does not exist, is not a folder
/// or is not writable; an existing entry that is not a regular file (symbolic link,
/// device, FIFO, socket); a name the file system refuses (longer than its limit: the
/// operating system's "File name too long"). An existing regular file is allowed: it is
/// replaced, whole and at once, only when the new file is complete.
///
/// ```
/// use rasterlab::raster::output::check_output_path;
/// let dir = std::env::temp_dir();
/// assert!(check_output_path(&dir.join("ok.tif")).is_ok());
/// assert!(check_output_path(&dir).is_err());                      // a folder
/// assert!(check_output_path(&dir.join("missing/x.tif")).is_err()); // no such folder
/// assert!(check_output_path(&dir.join("a".repeat(256))).is_err());  // name too long
/// ```
pub fn check_output_path(path: &Path) -> Result<()> {
    let fail = |reason: String| Error::Output {
        path: path.to_path_buf(),
        reason,
    };
    let text = path.as_os_str().to_string_lossy();
    if text.is_empty() {
        return Err(fail("the name is empty".into()));
    }
    if text.ends_with('/') || path.file_name().is_none() {
        return Err(fail("it names a folder, not a file".into()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let kind = file_kind(&meta);
            if kind != "regular file" {
                return Err(fail(format!(
                    "it is a {kind}; rasterlab replaces only regular files (remove it or choose another name)"
                )));
            }
        }
        // Nothing there yet, or the folder is missing or not a folder (reported below).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) => {}
        // The name itself is refused ("File name too long"), or the folder cannot be
        // searched: the final rename would fail the same way, after all the work.
        Err(e) => return Err(fail(e.to_string())),
    }
    let dir = parent_dir(path);
    match std::fs::metadata(&dir) {
        Err(_) => return Err(fail(format!("folder {} does not exist", dir.display()))),
        Ok(m) if !m.is_dir() => {
            return Err(fail(format!("{} is not a folder", dir.display())));
        }
        Ok(_) => {}
    }
    // The only reliable test of "writable" is to create something: exclusively, with a
    // random name, removed at once (the tempfile crate does all three).
    create_probe(&dir)
        .map(drop)
        .map_err(|e| fail(format!("folder {} is not writable ({e})", dir.display())))
}

/// A probe file's name follows the temporary files' pattern (`.probe.rasterlab-HOST-PID-
/// XXXXXX.tmp`), so one left by a killed process is removed by [`remove_stale`] too.
fn create_probe(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&temp_prefix("probe", &host_tag(), std::process::id()))
        .suffix(".tmp")
        .rand_bytes(RAND_CHARS)
        .tempfile_in(dir)
}

/// Refuses an output that is one of `inputs` or another of `outputs`.
///
/// Paths are compared resolved (symbolic links and `..` followed, relative paths against
/// the working directory) and, for files that exist, by device and inode, so `s.tif`,
/// `./s.tif`, an absolute spelling and a hard link are all recognised. Inputs that are
/// not plain files (`/vsicurl/...`) are compared by name only.
///
/// ```
/// use rasterlab::raster::output::check_distinct;
/// use std::path::{Path, PathBuf};
/// let scene = PathBuf::from("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF");
/// assert!(check_distinct(&[Path::new("./data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")], &[scene.clone()]).is_err());
/// assert!(check_distinct(&[Path::new("out.tif")], &[scene]).is_ok());
/// assert!(check_distinct(&[Path::new("a.tif"), Path::new("./a.tif")], &[]).is_err());
/// ```
pub fn check_distinct(outputs: &[&Path], inputs: &[PathBuf]) -> Result<()> {
    let inputs: Vec<(PathBuf, Option<FileId>)> =
        inputs.iter().map(|p| (resolve(p), file_id(p))).collect();
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for &out in outputs {
        let resolved = resolve(out);
        let id = file_id(out);
        for (input, input_id) in &inputs {
            let same_file = matches!((id, input_id), (Some(a), Some(b)) if a == *b);
            if same_file || resolved == *input {
                return Err(Error::OutputIsInput {
                    output: out.to_path_buf(),
                    input: input.clone(),
                });
            }
        }
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == resolved) {
            return Err(Error::Output {
                path: out.to_path_buf(),
                reason: format!("it is also the run's output {}", first.display()),
            });
        }
        seen.push((resolved, out));
    }
    Ok(())
}

/// Device and inode of an existing file.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// `path` made absolute with its folder resolved (the file itself need not exist).
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = parent_dir(path);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "folder"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// The folder of `path` (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// This host's name as it goes into temporary names: at most 32 safe characters.
fn host_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let tag: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect();
    if tag.is_empty() { "host".into() } else { tag }
}

/// `.NAME.rasterlab-HOST-PID-`: the part of a temporary name before the random
/// characters, with NAME cut (at a character boundary) so that the whole name, a
/// side-car suffix included, stays within [`NAME_MAX`] bytes.
fn temp_prefix(final_name: &str, host: &str, pid: u32) -> String {
    let tail = format!("{MARK}{host}-{pid}-");
    let fixed = 1 + tail.len() + RAND_CHARS + ".tmp".len() + SIDECAR.len();
    let room = NAME_MAX.saturating_sub(fixed);
    let mut cut = final_name.len().min(room);
    while !final_name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{tail}", &final_name[..cut])
}

/// What a temporary name says about its creator: `(host, pid)`. Names of earlier
/// versions (`.NAME.rasterlab-PID-NANOS.tmp`) have no host.
fn temp_owner(name: &str) -> Option<(Option<&str>, u32)> {
    let core = name
        .strip_suffix(SIDECAR)
        .unwrap_or(name)
        .strip_suffix(".tmp")?;
    if !name.starts_with('.') {
        return None;
    }
    let at = core.rfind(MARK)?;
    let parts: Vec<&str> = core[at + MARK.len()..].split('-').collect();
    match parts.as_slice() {
        [host, pid, rand] if rand.len() == RAND_CHARS => Some((Some(*host), pid.parse().ok()?)),
        [pid, nanos] if nanos.chars().all(|c| c.is_ascii_digit()) => {
            Some((None, pid.parse().ok()?))
        }
        _ => None,
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        // Without /proc we cannot tell: keep the file.
        true
    }
}

/// Removes temporary files in `dir` left by rasterlab processes of this host that are
/// no longer running (killed with SIGKILL, out of memory, power loss). Files of running
/// processes and of other hosts are kept. Returns the names removed.
///
/// Called by every write before it creates its own temporary file.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// // A process id that cannot be running: above Linux's pid_max.
/// let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
/// let host: String = host.trim().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(32).collect();
/// let stale = dir.path().join(format!(".x.tif.rasterlab-{host}-99999999-abcdef.tmp"));
/// std::fs::write(&stale, b"half a tiff")?;
/// let removed = rasterlab::raster::output::remove_stale(dir.path());
/// assert_eq!(removed.len(), 1);
/// assert!(!stale.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_stale(dir: &Path) -> Vec<String> {
    let host = host_tag();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((owner_host, pid)) = temp_owner(&name) else {
            continue;
        };
        let ours = owner_host.is_none_or(|h| h == host);
        // Only regular files: never follow or remove anything else under such a name.
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if ours
            && regular
            && pid != me
            && !process_alive(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(name);
        }
    }
    removed
}

/// Removes the temporary files this process is writing for `final_path` (and their
/// side-cars): for a process that is being ended (an MPI rank told to stop by its
/// launcher while it waits in MPI) and has no time to unwind. Returns the names removed.
pub fn remove_own(final_path: &Path) -> Vec<String> {
    let Some(name) = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let prefix = temp_prefix(&name, &host_tag(), std::process::id());
    let Ok(entries) = std::fs::read_dir(parent_dir(final_path)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if file.starts_with(&prefix)
            && temp_owner(&file).is_some()
            && regular
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(file);
        }
    }
    removed
}

/// A file being written under a temporary name next to its final name.
///
/// Created exclusively (`O_CREAT | O_EXCL`: never through a planted symbolic link),
/// removed with any side-car when dropped, renamed over the final name by
/// [`commit`](PendingFile::commit).
#[derive(Debug)]
pub struct PendingFile {
    tmp: Option<tempfile::TempPath>,
    final_path: PathBuf,
}

impl PendingFile {
    /// Checks `final_path` ([`check_output_path`]), removes stale debris of dead
    /// processes from its folder ([`remove_stale`]) and creates the temporary file.
    pub fn create(final_path: &Path) -> Result<PendingFile> {
        check_output_path(final_path)?;
        let dir = parent_dir(final_path);
        remove_stale(&dir);
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let prefix = temp_prefix(&name, &host_tag(), std::process::id());
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(RAND_CHARS);
        // The file becomes the output: created with the mode any new file gets (0666
        // less the umask, as GDAL and `cp` create them), not tempfile's private 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder.tempfile_in(&dir).map_err(|e| Error::Write {
            path: final_path.to_path_buf(),
            cause: format!("cannot create a temporary file in {}: {e}", dir.display()),
        })?;
        Ok(PendingFile {
            tmp: Some(file.into_temp_path()),
            final_path: final_path.to_path_buf(),
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.final_path)
    }

    /// The name the file gets on commit.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Why writing into the temporary file failed, as the operating system says it:
    /// tries to write a little more into the folder (before the failed file is removed,
    /// so a full disk is still full) and reports that error, e.g. "No space left on
    /// device" or "Disk quota exceeded"; `None` when that write succeeds.
    pub fn diagnose(&self) -> Option<String> {
        let dir = parent_dir(&self.final_path);
        let probe = create_probe(&dir);
        let mut probe = match probe {
            Ok(p) => p,
            Err(e) => return Some(e.to_string()),
        };
        let block = vec![0u8; 256 << 10];
        let written = probe
            .as_file_mut()
            .write_all(&block)
            .and_then(|()| probe.as_file().sync_all());
        written.err().map(|e| e.to_string())
    }

    /// Flushes the file to disk and renames it over the final name (replacing an
    /// existing regular file at once). On error the temporary file is removed.
    pub fn commit(mut self) -> Result<PathBuf> {
        let write_error = |cause: String| Error::Write {
            path: self.final_path.clone(),
            cause,
        };
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| Error::internal("output committed twice"))?;
        // Delayed allocation: some file systems report a full disk only here.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| write_error(format!("flushing to disk failed: {e}")))?;
        // Checked again: a special file may have appeared while the run went on.
        check_output_path(&self.final_path)?;
        // A replaced file keeps its permissions (as when a tool rewrites a file in place).
        if let Ok(old) = std::fs::metadata(&self.final_path) {
            let _ = std::fs::set_permissions(&tmp, old.permissions());
        }
        tmp.persist(&self.final_path)
            .map_err(|e| write_error(format!("renaming the finished file failed: {}", e.error)))?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(parent_dir(&self.final_path)) {
            let _ = dir.sync_all();
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let mut sidecar = OsString::from(tmp.as_os_str());
            sidecar.push(SIDECAR);
            let _ = std::fs::remove_file(PathBuf::from(sidecar));
            // TempPath removes the file itself when dropped.
            drop(tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically: checked first ([`check_output_path`]), written
/// to a temporary file, flushed to disk and renamed. On any error nothing changes under
/// `path` and no temporary file is left.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("note.svg");
/// rasterlab::raster::output::write_atomic(&path, b"<svg/>")?;
/// assert_eq!(std::fs::read(&path)?, b"<svg/>");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let pending = PendingFile::create(path)?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(pending.path())
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()));
    if let Err(e) = written {
        return Err(Error::Write {
            path: path.to_path_buf(),
            cause: e.to_string(),
        });
    }
    pending.commit().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_fit_and_parse() {
        let long = "é".repeat(127) + "x"; // 255 bytes, a char boundary at every even byte
        let prefix = temp_prefix(&long, "node_1", 4242);
        let full = format!("{prefix}abcdef.tmp{SIDECAR}");
        assert!(full.len() <= NAME_MAX, "{} bytes", full.len());
        assert_eq!(
            temp_owner(&format!("{prefix}abcdef.tmp")),
            Some((Some("node_1"), 4242))
        );
        assert_eq!(temp_owner(&full), Some((Some("node_1"), 4242)));
        let short = temp_prefix("ndi.tif", "h", 7);
        assert_eq!(short, ".ndi.tif.rasterlab-h-7-");
        // the naming of earlier versions
        assert_eq!(
            temp_owner(".k.tif.rasterlab-123-987654321.tmp"),
            Some((None, 123))
        );
        assert_eq!(temp_owner("k.tif"), None);
        assert_eq!(temp_owner(".k.tif.rasterlab-h-12-abc.tmp"), None);
    }
}
