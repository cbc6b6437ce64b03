#!/usr/bin/env python3
"""Fills the kernel launcher's pool of build folders before a class, so that every
student's first cell is warm (seconds) instead of cold (a minute or more of rustc each,
all at once on the same cores).

    .venv/bin/python scripts/prewarm_pool.py --slots 30      # or: make prewarm SLOTS=30
    .venv/bin/python scripts/prewarm_pool.py --slots 10 --pool DIR --notebook 01-quickstart.ipynb
    .venv/bin/python scripts/prewarm_pool.py --slots 2 --pool ~student/.cache/rasterlab/evcxr-pool \
        --from ~teacher/.cache/rasterlab/evcxr-pool/slot-0      # copy a warm folder, build nothing

How: one kernel is started through scripts/evcxr-kernel.sh (so it leases a folder of the
pool as a student's kernel would) and runs the set-up cell of every notebook (each distinct
set-up cell in a fresh kernel: 03's `spectral` feature builds faer besides the default
build, and both stay in the folder). That folder is then copied into every free slot up to
`--slots`, each copy under the slot's own lock, so no kernel can lease a half-copied folder.
Copies of a warm folder are warm: cargo's fingerprints hold no path of the build folder.

The pool is the launcher's: RASTERLAB_EVCXR_POOL, else ~/.cache/rasterlab/evcxr-pool (one
per user: behind JupyterHub run this as each student, or give every student the same
RASTERLAB_EVCXR_POOL owned by them; see notebooks/README.md, "For teachers"). Slots a live
kernel holds are left alone; warm slots are copied over only with --force.
The crate path in the notebooks' `:dep` line must be the same for all students (a copy of
the repository elsewhere is another package to cargo, and builds cold).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LAUNCHER = ROOT / "scripts" / "evcxr-kernel.sh"
CELL_TIMEOUT = 3600.0


def default_pool() -> Path:
    if os.environ.get("RASTERLAB_EVCXR_POOL"):
        return Path(os.environ["RASTERLAB_EVCXR_POOL"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rasterlab" / "evcxr-pool"


def find_evcxr() -> str:
    found = shutil.which("evcxr_jupyter")
    if found:
        return found
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "evcxr_jupyter"
    if cargo_bin.exists():
        return str(cargo_bin)
    sys.exit("prewarm: evcxr_jupyter not found: run `make setup`")


def setup_cells(names: list[str]) -> list[str]:
    """The first code cell of each notebook, without duplicates, in order."""
    cells: list[str] = []
    for name in names:
        nb = json.loads((NOTEBOOKS / name).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                src = cell["source"]
                src = src if isinstance(src, str) else "".join(src)
                if src not in cells:
                    cells.append(src)
                break
    return cells


def kernel_spec_dir(scratch: Path, evcxr: str) -> Path:
    """A `rasterlab-pool` kernel spec that starts the launcher (whatever `rust` is registered as)."""
    spec = scratch / "jupyter" / "kernels" / "rasterlab-pool"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(LAUNCHER), "--control_file", "{connection_file}"],
        "display_name": "rasterlab pool", "language": "rust", "interrupt_mode": "message",
        "env": {"RASTERLAB_EVCXR": evcxr},
    }))
    return scratch / "jupyter"


def run_cell(kc, code: str) -> str:
    """Executes `code`; returns the error text or ""."""
    msg_id = kc.execute(code)
    error = ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=CELL_TIMEOUT)
        except queue.Empty:
            return "timeout"
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "error":
            error = (msg["content"].get("ename", "") + ": " + msg["content"].get("evalue", "")).strip()
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return error


def kernel_tmpdir(pid: int) -> str:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for kv in env:
        if kv.startswith(b"EVCXR_TMPDIR="):
            return kv.split(b"=", 1)[1].decode()
    return ""


def build_one(pool: Path, slots: int, cells: list[str], evcxr: str) -> Path:
    """Builds every set-up cell in a slot leased by the launcher; returns that slot."""
    from jupyter_client import KernelManager

    scratch = Path(tempfile.mkdtemp(prefix="prewarm-"))
    env = dict(os.environ, RASTERLAB_EVCXR_POOL=str(pool), RASTERLAB_EVCXR_SLOTS=str(slots),
               JUPYTER_PATH=str(kernel_spec_dir(scratch, evcxr)))
    env.pop("EVCXR_TMPDIR", None)
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    slot = ""
    try:
        for cell in cells:
            km = KernelManager(kernel_name="rasterlab-pool")
            km.start_kernel(cwd=str(NOTEBOOKS), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pid = km.provisioner.process.pid
            try:
                kc = km.client()
                kc.start_channels()
                kc.wait_for_ready(timeout=120)
                got = kernel_tmpdir(pid)
                if not got.startswith(str(pool)):
                    sys.exit(f"prewarm: the kernel got no slot of {pool} (all {slots} leased?): {got!r}")
                if slot and got != slot:
                    sys.exit(f"prewarm: the second kernel leased {got}, not {slot} (a student's kernel took it?)")
                slot = got
                t0 = time.monotonic()
                print(f"prewarm: building in {slot}: {cell.splitlines()[-1]}", flush=True)
                error = run_cell(kc, cell)
                if error:
                    sys.exit(f"prewarm: the set-up cell failed: {error}")
                print(f"prewarm:   built in {time.monotonic() - t0:.0f} s", flush=True)
                kc.stop_channels()
                km.shutdown_kernel(now=False)
            finally:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Path(slot)


def lock_free(lock_path: Path):
    """The slot's lock file, locked, or None when a live kernel holds it."""
    f = lock_path.open("a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=False).stdout
    return int(out.split()[0]) if out else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", type=int, default=int(os.environ.get("RASTERLAB_EVCXR_SLOTS", "8")),
                    help="slots to fill: one per student kernel open at once (default RASTERLAB_EVCXR_SLOTS or 8)")
    ap.add_argument("--pool", type=Path, default=default_pool(), help="the pool (default: the launcher's)")
    ap.add_argument("--notebook", action="append",
                    help="whose set-up cell to build (repeatable; default every notebook)")
    ap.add_argument("--force", action="store_true", help="also replace slots that are already built")
    ap.add_argument("--from", dest="source", type=Path,
                    help="copy this warm build folder (another pool's slot) instead of building one")
    args = ap.parse_args()
    names = args.notebook or sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    pool = args.pool.resolve()
    pool.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if args.source:
        source = args.source.resolve()
        if not (source / "target").is_dir():
            sys.exit(f"prewarm: {source} is no evcxr build folder (no target/)")
    else:
        source = build_one(pool, args.slots, setup_cells(names), find_evcxr())
    size = du(source)
    print(f"prewarm: {source} is warm ({size / 2**20:.0f} MiB)", flush=True)
    filled = kept = busy = 0
    for i in range(args.slots):
        slot = pool / f"slot-{i}"
        if slot == source:
            continue
        lock = lock_free(pool / f"slot-{i}.lock")
        if lock is None:
            busy += 1
            continue
        try:
            if (slot / "target").is_dir() and not args.force:
                kept += 1
                continue
            partial = pool / f".slot-{i}.copying"
            shutil.rmtree(partial, ignore_errors=True)
            # cp keeps modification times (cargo's fingerprints compare them) and is faster
            # than Python's copytree on ~10,000 files.
            subprocess.run(["cp", "-a", str(source), str(partial)], check=True)
            shutil.rmtree(slot, ignore_errors=True)
            partial.rename(slot)
            filled += 1
        finally:
            lock.close()
    print(f"prewarm: {filled} slot(s) copied, {kept} already built (--force replaces them), "
          f"{busy} held by live kernels; pool {pool}: {du(pool) / 2**30:.1f} GiB, "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
