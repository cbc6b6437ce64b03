//! Helpers of the tests that run the `rasterlab` binary in a temporary folder: running it,
//! crops of the scene made by GDAL, rasterlab's temporary files, a 2 MiB tmpfs for the
//! full-disk cases and signals sent to a running save.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{SCENE, data, mosaic};

pub const EXE: &str = env!("CARGO_BIN_EXE_rasterlab");

/// The arguments that make `ndi` of the scene (or of a crop of it) meaningful: green and
/// red of the scene, nodata 0.
pub const NDI: [&str; 8] = [
    "--band-names",
    "blue,green,red",
    "--a",
    "green",
    "--b",
    "red",
    "--nodata",
    "0",
];

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The absolute path of a shipped data file, as an argument.
pub fn abs(path: &str) -> String {
    data(path).to_string_lossy().into_owned()
}

/// Runs rasterlab with `args` in `dir`, with `env` set.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(EXE);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rasterlab")
}

pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_env(dir, args, &[])
}

/// Runs rasterlab with `args` in the crate's folder (where `data/` is).
pub fn rasterlab(args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// Runs `args` in `dir`, checks that it succeeded and returns its stdout.
pub fn succeeded(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `rasterlab ndi INPUT <NDI> <extra> --quiet -o OUTPUT`.
pub fn ndi_args<'a>(input: &'a str, extra: &[&'a str], output: &'a str) -> Vec<&'a str> {
    let mut args = vec!["ndi", input];
    args.extend(NDI);
    args.extend(extra);
    args.extend(["--quiet", "-o", output]);
    args
}

/// `gdal_translate` with `args` from `src` to `dst` (an independent crop or reference).
pub fn gdal_translate(args: &[&str], src: &Path, dst: &Path) {
    let status = Command::new("gdal_translate")
        .arg("-q")
        .args(args)
        .arg(src)
        .arg(dst)
        .status()
        .expect("gdal_translate");
    assert!(status.success(), "gdal_translate {args:?}");
}

/// A `w` x `h` crop of the scene at (`x`, `y`), written by GDAL as `dst`.
pub fn crop(dst: &Path, x: usize, y: usize, w: usize, h: usize) {
    let win = [x, y, w, h].map(|v| v.to_string());
    let mut args = vec!["-srcwin"];
    args.extend(win.iter().map(String::as_str));
    gdal_translate(&args, &data(SCENE), dst);
}

/// Temporary files of rasterlab in `dir`.
pub fn debris(dir: &Path) -> Vec<String> {
    super::entries(dir)
        .into_iter()
        .filter(|n| n.contains(".rasterlab-"))
        .collect()
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A 2 MiB tmpfs mounted on `<tempdir>/full`, unmounted when dropped (also when the
/// test panics).
pub struct Tmpfs {
    pub base: tempfile::TempDir,
    pub mnt: PathBuf,
}

impl Tmpfs {
    /// `None`, after a `SKIPPED` line on stderr, when the mount is not possible here.
    pub fn mount(test: &str) -> Option<Tmpfs> {
        let base = tempfile::tempdir().expect("tempdir");
        let mnt = base.path().join("full");
        std::fs::create_dir(&mnt).expect("mount point");
        if !is_root() {
            eprintln!("SKIPPED (needs root to mount a tmpfs): {test}: not running as root");
            return None;
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mnt)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { base, mnt }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED (needs root to mount a tmpfs): {test}: mount failed: {}",
                    text(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED (needs root to mount a tmpfs): {test}: no mount command: {e}");
                None
            }
        }
    }

    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// Fills the file system with `filler` until it is full; returns the filler's size.
    pub fn fill(&self) -> u64 {
        use std::io::Write;
        let path = self.mnt.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0x5au8; 64 << 10];
        let err = loop {
            if let Err(e) = f.write_all(&block) {
                break e;
            }
        };
        assert_eq!(err.raw_os_error(), Some(28), "not ENOSPC: {err}");
        f.sync_all().ok();
        std::fs::metadata(&path).expect("filler").len()
    }

    /// Fills the file system, then frees `bytes` of it again (0: full).
    pub fn fill_but(&self, bytes: u64) {
        let len = self.fill();
        // (the free space is then exactly `bytes`, unless something else still holds
        // space: a file removed while a process has it open)
        assert!(
            len >= bytes + (64 << 10),
            "only {len} bytes filled, {bytes} to free"
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.mnt.join("filler"))
            .expect("filler");
        f.set_len(len - bytes).expect("shrink filler");
    }

    /// Removes the filler again.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(self.mnt.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // A child process of another test, spawned while this process had a file of the
        // mount open, may hold it for a moment (GDAL does not open files close-on-exec).
        for _ in 0..20 {
            if umount(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // still held: detach it; it goes away with its last user
        umount(true);
    }
}

/// Sends `signal` (a `kill` name: INT, TERM, HUP, KILL) to the running `child` and waits
/// for it (at most 20 s); returns its output and how long it took to stop.
pub fn signal_and_wait(mut child: Child, signal: &str) -> (Output, Duration) {
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the save ended before SIG{signal} was sent: make it longer"
    );
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running 20 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().expect("wait"), start.elapsed())
}

/// A folder with the mosaic, a previous output `p.tif` (a real GeoTIFF) and a quick
/// input `small.tif`.
pub fn signal_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    mosaic(dir.path());
    crop(&dir.path().join("p.tif"), 0, 0, 16, 16);
    crop(&dir.path().join("small.tif"), 900, 800, 64, 64);
    dir
}
