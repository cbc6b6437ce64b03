//! The kernel launcher (`scripts/evcxr-kernel.sh`) with the real `evcxr_jupyter`: live
//! kernels never share a build folder, a killed kernel's slot goes to the next kernel, and
//! the overflow folder of a killed kernel (all slots leased) is removed by the next launch
//! while a live kernel's is kept.
//!
//! evcxr_jupyter comes from `make setup` (`~/.cargo/bin`); each kernel is started on a
//! connection file of free local ports, as Jupyter would, and killed with SIGKILL like an
//! out-of-memory kill or a hung kernel that Jupyter gives up on.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/evcxr-kernel.sh")
}

fn evcxr() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let path = home.join("bin/evcxr_jupyter");
    assert!(
        path.exists(),
        "{} is missing: run `make setup` (installs evcxr_jupyter)",
        path.display()
    );
    path
}

/// A Jupyter connection file with five free local ports.
fn connection_file(dir: &Path, name: &str) -> PathBuf {
    // Held until the file is written, so the five ports differ.
    let sockets: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let port = |i: usize| sockets[i].local_addr().expect("local address").port();
    let json = serde_json::json!({
        "shell_port": port(0), "iopub_port": port(1), "stdin_port": port(2),
        "control_port": port(3), "hb_port": port(4), "ip": "127.0.0.1", "key": "launcher-test",
        "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "rust"
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json.to_string()).expect("connection file");
    path
}

/// A kernel started through the launcher in its own process group.
struct Kernel {
    child: Child,
    /// The build folder evcxr was given (`EVCXR_TMPDIR` after the launcher's exec).
    folder: PathBuf,
}

impl Kernel {
    fn start(dir: &Path, pool: &Path, slots: usize, name: &str) -> Kernel {
        let conn = connection_file(dir, name);
        let child = Command::new(launcher())
            .arg("--control_file")
            .arg(&conn)
            .env_remove("EVCXR_TMPDIR")
            .env("RASTERLAB_EVCXR", evcxr())
            .env("RASTERLAB_EVCXR_POOL", pool)
            .env("RASTERLAB_EVCXR_SLOTS", slots.to_string())
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("the launcher starts");
        let folder = wait_for_tmpdir(child.id());
        Kernel { child, folder }
    }
}

/// Killing a kernel: SIGKILL to the whole group (evcxr_jupyter and its evcxr child both
/// hold the folder's lock).
impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// `EVCXR_TMPDIR` of the process once the launcher has exec'd evcxr_jupyter.
fn wait_for_tmpdir(pid: u32) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        // The kernel points `exe` at the new program before it has laid out the new
        // environment: for that moment `environ` reads empty, so an empty read is retried.
        let environ = if exe.file_name().is_some_and(|n| n == "evcxr_jupyter") {
            std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default()
        } else {
            Vec::new()
        };
        if !environ.is_empty() {
            let found = environ
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(b"EVCXR_TMPDIR="))
                .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()));
            return found.expect("the launcher exports EVCXR_TMPDIR");
        }
        assert!(Instant::now() < deadline, "evcxr_jupyter did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets a folder's modification time a few minutes back (the launcher leaves folders
/// younger than a minute alone: another launcher may have just made it).
fn age(path: &Path) {
    let ok = Command::new("touch")
        .args(["-d", "5 minutes ago"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "touch {}", path.display());
}

/// Waits until nothing holds `path`'s lock: SIGKILL reaches the kernel's evcxr child a
/// moment after the kernel itself, and until then the folder is still leased.
fn wait_unlocked(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("flock")
        .args(["-n"])
        .arg(path)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "{} stays locked", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("pool folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn kernels_lease_distinct_folders_and_killed_kernels_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let pool = dir.path().join("pool");
    let slot0 = pool.join("slot-0");

    // One slot: the first kernel gets it, the second builds in an overflow folder.
    let a = Kernel::start(dir.path(), &pool, 1, "a");
    assert_eq!(a.folder, slot0);
    let b = Kernel::start(dir.path(), &pool, 1, "b");
    assert_ne!(b.folder, a.folder, "two live kernels share a build folder");
    assert!(
        b.folder.starts_with(&pool)
            && b.folder
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("overflow-")),
        "{}",
        b.folder.display()
    );
    assert!(b.folder.is_dir());

    // A killed kernel's slot is the next kernel's (warm, not rebuilt elsewhere); a live
    // kernel's overflow folder is kept even when old.
    drop(a);
    wait_unlocked(&pool.join("slot-0.lock"));
    age(&b.folder);
    let c = Kernel::start(dir.path(), &pool, 1, "c");
    assert_eq!(c.folder, slot0, "the killed kernel's slot was not reused");
    assert!(
        b.folder.is_dir(),
        "a live kernel's overflow folder was removed"
    );

    // Killed, its overflow folder is debris: the next launch that overflows removes it.
    let b_folder = b.folder.clone();
    drop(b);
    wait_unlocked(&b_folder);
    age(&b_folder);
    let d = Kernel::start(dir.path(), &pool, 1, "d");
    assert!(
        !b_folder.exists(),
        "a killed kernel's overflow folder was left behind"
    );
    assert!(d.folder.is_dir() && d.folder != b_folder && d.folder != c.folder);
    let left = names(&pool);
    assert_eq!(
        left,
        vec![
            d.folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "slot-0".to_string(),
            "slot-0.lock".to_string()
        ],
        "pool holds more than the live kernels' folders"
    );
    // No build folder went to the temporary folder: evcxr's own fallback (a `.tmpXXXXXX`
    // TempDir) is not used. (evcxr's rust-analyzer keeps a small folder of its own there.)
    let tmp: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "build folders in TMPDIR: {tmp:?}");
    drop(c);
    drop(d);
}

/// A kernel whose pool shares a parent folder with the Rust toolchain (the default pool,
/// `~/.cache/rasterlab/evcxr-pool`, next to rustup's `~/.rustup`) runs a cell. rustc's
/// relative RUNPATH for evcxr's cell libraries is one `..` too deep there, and every
/// kernel died with "dlopen failed" before the launcher put the toolchain's library
/// folder on LD_LIBRARY_PATH. Executed through Jupyter (`nbconvert --execute`) with a
/// kernelspec of this checkout's launcher.
#[test]
fn a_pool_beside_the_toolchain_runs_cells() {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    // A folder two levels above the toolchain (e.g. ~ for ~/.rustup/toolchains/...):
    // the pool and the toolchain then share it.
    let shared = sysroot
        .ancestors()
        .nth(3)
        .expect("the toolchain's folder has parents")
        .to_path_buf();
    let pool = tempfile::Builder::new()
        .prefix(".rasterlab-pool-test-")
        .tempdir_in(&shared)
        .expect("a pool beside the toolchain");
    let venv = std::env::var_os("RASTERLAB_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let jupyter = venv.join("bin/jupyter");
    assert!(
        jupyter.exists(),
        "no Jupyter at {}: run make setup",
        jupyter.display()
    );
    let dir = tempfile::tempdir().expect("temporary folder");
    let spec = dir.path().join("kernels/rust-launcher-test");
    std::fs::create_dir_all(&spec).expect("kernelspec folder");
    let kernel = serde_json::json!({
        "argv": [launcher(), "--control_file", "{connection_file}"],
        "display_name": "Rust (launcher test)", "language": "rust",
        "env": { "RASTERLAB_EVCXR": evcxr() }
    });
    std::fs::write(spec.join("kernel.json"), kernel.to_string()).expect("kernel.json");
    let notebook = serde_json::json!({
        "cells": [{"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {},
                   "outputs": [], "source": ["let answer = 6 * 7;\n", "answer"]}],
        "metadata": {"kernelspec": {"name": "rust-launcher-test", "display_name": "Rust", "language": "rust"}},
        "nbformat": 4, "nbformat_minor": 5
    });
    let nb = dir.path().join("cell.ipynb");
    std::fs::write(&nb, notebook.to_string()).expect("notebook");
    let out = Command::new(&jupyter)
        .args(["nbconvert", "--to", "notebook", "--execute", "--output-dir"])
        .arg(dir.path().join("out"))
        .arg(&nb)
        .env("JUPYTER_PATH", dir.path())
        .env("RASTERLAB_EVCXR_POOL", pool.path())
        .env_remove("EVCXR_TMPDIR")
        .output()
        .expect("jupyter nbconvert");
    let executed = std::fs::read_to_string(dir.path().join("out/cell.ipynb")).unwrap_or_default();
    assert!(
        out.status.success() && executed.contains("\"42\""),
        "the cell did not run in a pool at {}:\n{}",
        pool.path().display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        pool.path().join("slot-0").is_dir(),
        "the kernel did not lease a pool folder"
    );
}
