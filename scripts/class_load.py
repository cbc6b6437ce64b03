#!/usr/bin/env python3
"""A class on one server: N students start their kernels at the same moment and each runs
a notebook top to bottom. Measures what a teacher must plan for.

    .venv/bin/python scripts/class_load.py                    # 10 kernels, notebook 01, pool pre-warmed
    .venv/bin/python scripts/class_load.py --kernels 4 --cold # an empty pool: every kernel builds
    make class-load KERNELS=10                                # the same as the first line

Heavy: it loads every core for minutes and needs ~1 GB of RAM per kernel. Not part of
`make test`; run it once on a machine nobody else is using and keep the numbers
(notebooks/README.md, "For teachers").

Every kernel is started as a student's would be: `jupyter nbconvert --execute` with the
`rust` kernel started through scripts/evcxr-kernel.sh, which leases it a build folder from
the pool (RASTERLAB_EVCXR_POOL, here target/class-load/pool unless --pool). Before the
start the pool is filled by scripts/prewarm_pool.py (--cold: emptied instead). Each kernel
has its own copy of the notebook (set-up cell pointing at this repository, as a class
would share one installed rasterlab), its own `out/` and its own TMPDIR, so the students
never write the same files.

Measured per kernel: wall time of the whole notebook, the first cell (set-up) and the other
cells, from the timestamps nbclient stores in the executed notebook; peak RSS of the
kernel's process tree (evcxr_jupyter, its evcxr child that runs the code, cargo and rustc;
sampled every second; RSS sums count shared libraries once per process, so the machine's
own figure, the drop of MemAvailable, is given too); the build folder it leased; its TMPDIR
at the end; errors and panics. For the machine: 1-minute load average, busy CPU, the pool's
disk use before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
sys.dont_write_bytecode = True  # no __pycache__ in scripts/
import prewarm_pool  # noqa: E402  (the pool's kernel spec and helpers)


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def du(path: Path) -> int:
    return prewarm_pool.du(path) if path.exists() else 0


def parse_ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Student:
    def __init__(self, i: int, scratch: Path, notebook: str):
        self.i = i
        self.home = scratch / f"k{i:02d}"
        nbdir = self.home / "notebooks"
        nbdir.mkdir(parents=True)
        (self.home / "out").mkdir()
        (self.home / "tmp").mkdir()
        (self.home / "data").symlink_to(ROOT / "data")
        nb = json.loads((NOTEBOOKS / notebook).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                # One installed rasterlab for the whole class: the same crate path in every `:dep`.
                cell["source"] = src.replace('path = ".."', f'path = "{ROOT}"')
                break
        self.notebook = nbdir / notebook
        self.notebook.write_text(json.dumps(nb))
        self.proc: subprocess.Popen | None = None
        self.t0 = self.t1 = 0.0
        self.peak_rss = 0
        self.slot = ""
        self.log = self.home / "nbconvert.log"

    def start(self, jupyter: Path, env: dict[str, str]) -> None:
        env = dict(env, TMPDIR=str(self.home / "tmp"))
        self.t0 = time.time()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(jupyter), "nbconvert", "--to", "notebook", "--execute",
                 "--ExecutePreprocessor.kernel_name=rasterlab-pool",
                 "--ExecutePreprocessor.timeout=3600", "--ExecutePreprocessor.allow_errors=True",
                 "--output-dir", str(self.home / "executed"), str(self.notebook)],
                cwd=self.notebook.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def kernel_tree(self) -> list[psutil.Process]:
        """The kernel and everything under it (not nbconvert's own Python)."""
        if self.proc is None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def sample(self) -> None:
        rss = 0
        for p in self.kernel_tree():
            try:
                rss += p.memory_info().rss
                if not self.slot and p.name().startswith("evcxr_jupyter"):
                    self.slot = p.environ().get("EVCXR_TMPDIR", "(evcxr's own temporary folder)")
            except psutil.Error:
                pass
        self.peak_rss = max(self.peak_rss, rss)

    def result(self) -> dict:
        executed = self.home / "executed" / self.notebook.name
        r = {"kernel": self.i, "wall": self.t1 - self.t0, "exit": self.proc.returncode if self.proc else None,
             "peak_rss": self.peak_rss, "slot": self.slot, "tmp": du(self.home / "tmp"),
             "out": du(self.home / "out"), "errors": [], "cells": []}
        if not executed.exists():
            r["errors"].append("no executed notebook: " + self.log.read_text(errors="replace")[-400:])
            return r
        nb = json.loads(executed.read_text())
        for n, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            ex = cell.get("metadata", {}).get("execution", {})
            if "iopub.status.busy" in ex and "shell.execute_reply" in ex:
                r["cells"].append(parse_ts(ex["shell.execute_reply"]) - parse_ts(ex["iopub.status.busy"]))
            for o in cell.get("outputs", []):
                if o["output_type"] == "error":
                    r["errors"].append(f"cell {n}: {o.get('ename')}: {o.get('evalue', '')[:200]}")
                text = "".join(o.get("text", "")) if o["output_type"] == "stream" else ""
                if "panicked at" in text:
                    r["errors"].append(f"cell {n}: panic: {text[:200]}")
        first = nb["cells"][[c["cell_type"] for c in nb["cells"]].index("code")]
        ex = first.get("metadata", {}).get("execution", {})
        if "iopub.status.busy" in ex:
            r["kernel_start"] = parse_ts(ex["iopub.status.busy"]) - self.t0
        return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", type=int, default=10)
    ap.add_argument("--notebook", default="01-quickstart.ipynb")
    ap.add_argument("--pool", type=Path, default=ROOT / "target" / "class-load" / "pool")
    ap.add_argument("--slots", type=int, help="pool size (default: --kernels)")
    ap.add_argument("--cold", action="store_true", help="empty the pool first: every kernel builds")
    ap.add_argument("--no-prewarm", action="store_true", help="use the pool as it is")
    ap.add_argument("--keep", action="store_true", help="keep the students' folders (executed notebooks)")
    args = ap.parse_args()
    slots = args.slots or args.kernels
    pool = args.pool.resolve()
    venv = Path(os.environ.get("RASTERLAB_VENV", ROOT / ".venv"))
    jupyter = venv / "bin" / "jupyter"
    python = venv / "bin" / "python"
    if args.cold:
        shutil.rmtree(pool, ignore_errors=True)
    elif not args.no_prewarm:
        # --force: every slot a copy of the fresh build, whatever an earlier run left there.
        subprocess.run([str(python), str(SCRIPTS / "prewarm_pool.py"), "--slots", str(slots),
                        "--pool", str(pool), "--notebook", args.notebook, "--force"], check=True)
    pool.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    scratch = ROOT / "target" / "class-load" / f"run-{stamp}"
    scratch.mkdir(parents=True)
    evcxr = prewarm_pool.find_evcxr()
    env = dict(os.environ, RASTERLAB_EVCXR_POOL=str(pool), RASTERLAB_EVCXR_SLOTS=str(slots),
               JUPYTER_PATH=str(prewarm_pool.kernel_spec_dir(scratch, evcxr)))
    env.pop("EVCXR_TMPDIR", None)
    students = [Student(i, scratch, args.notebook) for i in range(args.kernels)]
    pool_before = du(pool)
    mem0 = mem_available()
    busy0 = cpu_busy()
    loads: list[float] = []
    mem_min = mem0
    print(f"class_load: {args.kernels} kernels on {args.notebook}, pool {pool} "
          f"({pool_before / 2**30:.2f} GiB, {slots} slots), {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, MemAvailable {mem0 / 2**30:.1f} GiB", flush=True)

    def stop_all(*_):
        for s in students:
            if s.proc and s.proc.poll() is None:
                for p in s.kernel_tree():
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                try:
                    os.killpg(s.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        sys.exit(130)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for s in students:
        s.start(jupyter, env)
    t_start = time.time()
    while any(s.proc and s.proc.poll() is None for s in students):
        for s in students:
            if s.proc and s.proc.poll() is None:
                s.sample()
            elif s.proc and not s.t1:
                s.t1 = time.time()
                print(f"  kernel {s.i:2d} finished after {s.t1 - s.t0:6.1f} s (exit {s.proc.returncode})",
                      flush=True)
        loads.append(os.getloadavg()[0])
        mem_min = min(mem_min, mem_available())
        time.sleep(1.0)
    for s in students:
        if not s.t1:
            s.t1 = time.time()
    busy1 = cpu_busy()
    wall = time.time() - t_start
    results = [s.result() for s in students]
    pool_after = du(pool)

    def fmt(v: list[float], unit: str = " s", digits: int = 1) -> str:
        if not v:
            return "-"
        return (f"median {statistics.median(v):.{digits}f}{unit} "
                f"(min {min(v):.{digits}f}, max {max(v):.{digits}f})")

    lines = [
        f"# class_load {stamp}: {args.kernels} kernels at once, notebooks/{args.notebook}",
        "",
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"pool {'cold (emptied)' if args.cold else 'pre-warmed' if not args.no_prewarm else 'as found'}, "
        f"{slots} slots",
        "",
        "| kernel | build folder | kernel start s | first cell s | other cells s | notebook wall s "
        "| peak RSS of tree MiB | TMPDIR MiB | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = r["cells"]
        lines.append(
            f"| {r['kernel']} | {Path(r['slot']).name if r['slot'].startswith('/') else r['slot']} "
            f"| {r.get('kernel_start', float('nan')):.1f} | {cells[0] if cells else float('nan'):.1f} "
            f"| {sum(cells[1:]):.1f} | {r['wall']:.1f} | {r['peak_rss'] / 2**20:.0f} "
            f"| {r['tmp'] / 2**20:.1f} | {'; '.join(r['errors'])[:200] or 'none'} |")
    firsts = [r["cells"][0] for r in results if r["cells"]]
    lines += [
        "",
        f"- notebook wall time per kernel: {fmt([r['wall'] for r in results])}; all {args.kernels} done after {wall:.0f} s",
        f"- first cell (set-up): {fmt(firsts)}",
        f"- other cells together: {fmt([sum(r['cells'][1:]) for r in results if r['cells']])}",
        f"- peak RSS of one kernel's process tree: {fmt([r['peak_rss'] / 2**20 for r in results], ' MiB', 0)}",
        f"- machine memory in use by the class at the peak (drop of MemAvailable): "
        f"{(mem0 - mem_min) / 2**30:.1f} GiB ({(mem0 - mem_min) / 2**20 / args.kernels:.0f} MiB per kernel)",
        f"- CPU: {100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]):.0f} % of all cores busy over the run; "
        f"1-min load average max {max(loads, default=0):.1f}",
        f"- disk: pool {pool_before / 2**20:.0f} MiB before, {pool_after / 2**20:.0f} MiB after "
        f"({pool_after / 2**20 / max(1, len(list(pool.glob('slot-*/')))):.0f} MiB per slot folder); TMPDIR per kernel at the end "
        f"{fmt([r['tmp'] / 2**20 for r in results], ' MiB')}; out/ per kernel {fmt([r['out'] / 2**20 for r in results], ' MiB', 0)}",
        f"- failures: {sum(1 for r in results if r['errors'] or r['exit'])} of {args.kernels}",
    ]
    report = "\n".join(lines)
    print()
    print(report)
    out = ROOT / "target" / "class-load" / f"results-{stamp}"
    out.with_suffix(".md").write_text(report + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"\nclass_load: wrote {out}.md and .json", flush=True)
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(not r["errors"] and r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
