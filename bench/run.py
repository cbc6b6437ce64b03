"""`make bench`: rasterlab side by side with its Python peers, on the same inputs, the same
machine and the same number of threads, in one run.

Every measured run is a fresh child process (rasterlab: examples/bench_runner.rs; peers:
bench/peers.py). Inside the child the workload runs twice: the first call is the warm-up
(it pays lazy imports, GDAL driver set-up, the page cache; reported as `cold_seconds` in
the JSON) and the second is timed, from opening the input to the last value computed or
written. Peak RSS is the child's own `ru_maxrss` from `os.wait4`, so it is per run and
includes the interpreter and its imports. Sides are interleaved run by run so that a
change of machine load hits both. The table shows medians; `bench/results.json` holds
every raw number. Ratios never fail the run: benchmarks report, tests assert.

Environment:
    BENCH_RUNS=3        measured runs per side and row
    BENCH_QUICK=1       1 run, a few rows (to test the harness)
    BENCH_THREADS=N     threads for both sides (default: usable cores, at most 2)
    BENCH_ONLY=W1,W6    only rows whose id starts with one of these (bench/results.json: these
                        rows are replaced, the others kept and marked with their run)
    BENCH_PROFILE=1     also record each rasterlab row once with rasterlab's Profiler
                        (bench/data/profile-<row>.svg, summary in results.json)

Floors, measured interleaved with the sides (same runs, medians): every row that reads a
raster through bench_runner (ndi, product) gets the in-process decode floor (floor-decode); every row whose
rasterlab side writes a GeoTIFF also gets the encode floor (bench_runner floor-encode: the
file rasterlab just wrote, re-encoded from memory with the same options and threads).
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
BDATA = ROOT / "bench" / "data"
OUTDIR = BDATA / "out"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BIN = (ROOT / TARGET if not TARGET.is_absolute() else TARGET) / "release" / "examples" / "bench_runner"
# The command-line program (built with feature `mpi` by `make bench`): the MPI row runs it.
RLBIN = BIN.parent.parent / "rasterlab"
PY = sys.executable
PEERS = str(ROOT / "bench" / "peers.py")
SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())

SCENE = str(DATA / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF")
BAND_FILES = ",".join(str(DATA / f"LC08_L1TP_224078_20200518_20200518_01_RT_B{b}.TIF") for b in (2, 3, 4))
MOSAIC = str(BDATA / "mosaic.tif")
GREEN = str(DATA / "LC08_L1TP_224078_20200518_20200518_01_RT_B3.TIF")
RED60 = str(BDATA / "red60.tif")
CUBE = str(BDATA / "cube.nc")
PIXELS = str(BDATA / "pixels.f32")
RAIN = str(BDATA / "rain_samples.f32")

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
if QUICK:
    RUNS = 1
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
PROFILE = os.environ.get("BENCH_PROFILE", "0") not in ("", "0")


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


THREADS = int(os.environ.get("BENCH_THREADS", str(min(2, usable_cores()))))


@dataclass
class Side:
    name: str
    cmd: list
    results: list = field(default_factory=list)
    unsupported: str = ""
    # True for a command that prints no JSON (the `rasterlab` program, under mpirun or not):
    # its time is the whole process's wall time, start-up included.
    whole: bool = False

    def ok(self):
        return [r for r in self.results if "seconds" in r]

    def median(self, key="seconds"):
        v = [r[key] for r in self.ok() if key in r]
        return statistics.median(v) if v else None


@dataclass
class Row:
    id: str
    label: str
    rasterlab: Side
    peers: list
    goal: float = None  # peer / rasterlab ratio wanted against the best peer
    floor: str = None  # key into FLOORS
    check: str = None  # sum | file | wcss | ari
    quick: bool = False
    notes: str = ""
    max_ratio: float = None  # peer / rasterlab wanted at most this (the MPI row: ranks vs threads)
    # Measured interleaved with the sides but not compared as peers: (name, Side) pairs
    # (the MPI row: the launcher's and MPI's fixed start-up and finalize cost).
    extras: list = field(default_factory=list)


def rl(*args):
    return [str(BIN), *map(str, args)]


def peer(*args):
    return [PY, PEERS, *map(str, args)]


def rows(t):
    T = str(t)
    out = OUTDIR
    r = []
    for c, goal in ((256, 4.0), (64, 15.0)):
        for th in sorted({1, t}, reverse=True):
            r.append(Row(
                f"W1-c{c}-t{th}", f"W1 ndi scene, chunks {c}, {th} thr",
                Side("rasterlab", rl("ndi", "--input", SCENE, "--chunks", c, "--threads", th)),
                [Side("rioxarray+dask", peer("ndi", "--input", SCENE, "--chunks", c, "--threads", th)),
                 Side("rioxarray+dask lock=False", peer("ndi", "--input", SCENE, "--chunks", c, "--threads", th, "--lock", "none"))],
                goal=goal, floor="scene", check="sum", quick=(c == 256 and th == t)))
    for src, inp in (("files", BAND_FILES), ("stack", SCENE)):
        r.append(Row(
            f"W2-{src}", f"W2 b*g*r from {src} -> LZW, chunks 256",
            Side("rasterlab", rl("product", "--input", inp, "--chunks", 256, "--threads", T, "-o", out / f"w2-{src}-rl.tif")),
            [Side("rioxarray+dask", peer("product", "--input", inp, "--chunks", 256, "--threads", T, "-o", out / f"w2-{src}-peer.tif"))],
            goal=3.0, floor="scene", check="file", quick=(src == "stack")))
    r.append(Row(
        "W3-ndi", "W3 ndi mosaic, chunks 1024",
        Side("rasterlab", rl("ndi", "--input", MOSAIC, "--chunks", 1024, "--threads", T)),
        [Side("rioxarray+dask", peer("ndi", "--input", MOSAIC, "--chunks", 1024, "--threads", T)),
         Side("rioxarray+dask lock=False", peer("ndi", "--input", MOSAIC, "--chunks", 1024, "--threads", T, "--lock", "none"))],
        goal=2.0, floor="mosaic", check="sum"))
    r.append(Row(
        "W3-product", "W3 b*g*r mosaic -> LZW, chunks 1024",
        Side("rasterlab", rl("product", "--input", MOSAIC, "--chunks", 1024, "--threads", T, "-o", out / "w3-rl.tif")),
        [Side("rioxarray+dask", peer("product", "--input", MOSAIC, "--chunks", 1024, "--threads", T, "-o", out / "w3-peer.tif"))],
        goal=2.0, floor="mosaic", check="file"))
    if shutil.which("mpirun") and RLBIN.exists():
        # Issue 12: the same save as 1 process x T threads and as T MPI ranks x 1 thread
        # (rank 0 writes; the others send it their chunks). Both are whole `rasterlab ndi`
        # processes; RSS of the MPI side is the largest rank's (wait4 of mpirun).
        ndi = ["ndi", MOSAIC, "--band-names", "b,g,r", "--a", "g", "--b", "r", "--chunks", 1024, "--quiet"]
        r.append(Row(
            "W3-mpi", f"W3 ndi mosaic -> LZW, 1 process x {T} thr vs mpirun -n {T} x 1 thr",
            Side("rasterlab 1 process", [str(RLBIN), *map(str, ndi), "--threads", T, "-o", out / "w3-mpi-1.tif"], whole=True),
            [Side(f"mpirun -n {T} x 1 thread", ["mpirun", "-n", T, str(RLBIN), *map(str, ndi), "--threads", "1", "-o", out / "w3-mpi-n.tif"], whole=True)],
            max_ratio=1.15, check="file",
            # Open MPI's fixed cost, the same in every MPI run whatever its size: mpirun
            # starting the ranks, MPI_Init (here ~0.23 s, mostly UCX probing for network
            # hardware) and MPI_Finalize, as the wall time of `rasterlab info` under
            # mpirun minus the same command in one process.
            extras=[("mpi", Side(f"mpirun -n {T} rasterlab info", ["mpirun", "-n", T, str(RLBIN), "info", MOSAIC], whole=True)),
                    ("one", Side("rasterlab info", [str(RLBIN), "info", MOSAIC], whole=True))]))
    r.append(Row(
        "W4-kmeans", "W4 k-means k=8, 3,169,229 x 3",
        Side("rasterlab", rl("kmeans", "--input", PIXELS, "--threads", T, "-o", out / "w4-rl.npy")),
        [Side("scikit-learn", peer("kmeans", "--input", PIXELS, "--engine", "sklearn", "--threads", T, "-o", out / "w4-sklearn.npy")),
         Side("dask-ml", peer("kmeans", "--input", PIXELS, "--engine", "dask-ml", "--threads", T, "-o", out / "w4-daskml.npy"))],
        goal=2.0, check="wcss"))
    r.append(Row(
        "W5-exact", "W5 spectral exact k=8, 6157 x 303",
        Side("rasterlab", rl("spectral", "--input", RAIN, "--mode", "exact", "--threads", T, "-o", out / "w5-rl-exact.npy")),
        [Side("scikit-learn (exact)", peer("spectral", "--input", RAIN, "--engine", "sklearn", "--threads", T, "-o", out / "w5-sklearn.npy"))],
        goal=2.0, check="ari"))
    r.append(Row(
        "W5-nystrom", "W5 spectral Nystrom 100, k=8, 6157 x 303",
        Side("rasterlab", rl("spectral", "--input", RAIN, "--mode", "nystrom", "--threads", T, "-o", out / "w5-rl-nystrom.npy")),
        [Side("dask-ml (Nystrom 100)", peer("spectral", "--input", RAIN, "--engine", "dask-ml", "--threads", T, "-o", out / "w5-daskml.npy"))],
        goal=10.0, check="ari"))
    r.append(Row(
        "W6-resample", "W6 weekly mean -> std, 303 x 550 x 501 NetCDF",
        Side("rasterlab", rl("resample", "--input", f'NETCDF:"{CUBE}":rain', "--threads", T)),
        [Side("xarray (numpy)", peer("resample", "--input", CUBE, "--engine", "numpy", "--threads", T)),
         Side("xarray+dask (1,550,501)", peer("resample", "--input", CUBE, "--engine", "dask", "--threads", T))],
        goal=3.0, check="sum", quick=True))
    r.append(Row(
        "W8-align", "W8 ndi, red at 60 m aligned to 30 m (bilinear), chunks 512",
        Side("rasterlab", rl("align-ndi", "--input", f"{GREEN},{RED60}", "--chunks", 512, "--threads", T)),
        [Side("rioxarray reproject_match+dask", peer("align-ndi", "--input", f"{GREEN},{RED60}", "--chunks", 512, "--threads", T))],
        goal=2.0, check="sum", quick=True))
    r.append(Row(
        "W7-noop", "W7 no-op over 10,000 chunks (20x18)",
        Side("rasterlab", rl("noop", "--input", SCENE, "--chunks", "20x18", "--window", "2000x1800", "--threads", T)),
        [Side("dask in-memory", peer("noop", "--input", SCENE, "--chunks", "20x18", "--window", "2000x1800", "--threads", T, "--engine", "dask-mem")),
         Side("rioxarray+dask", peer("noop", "--input", SCENE, "--chunks", "20x18", "--window", "2000x1800", "--threads", T))],
        goal=20.0, quick=True))
    return r


# ------------------------------------------------------------------------------ running

def child_env(threads):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "RASTERLAB_THREADS"):
        env[k] = str(threads)
    env.setdefault("PYTHONWARNINGS", "ignore")
    # Open MPI refuses root without these, and 2 ranks x 1 thread may exceed the slots.
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    env["RUST_BACKTRACE"] = "0"
    return env


def threads_of(cmd):
    return int(cmd[cmd.index("--threads") + 1]) if "--threads" in cmd else THREADS


def run_child(cmd, env=None, parse=True):
    """Runs `cmd` once; returns its JSON result plus wall time and peak RSS (MB)."""
    env = env or child_env(threads_of(cmd))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    res = {}
    if parse:
        lines = [l for l in text.splitlines() if l.startswith("{")]
        try:
            res = json.loads(lines[-1]) if lines else {"error": f"no JSON output (exit {p.returncode}): {etext.strip()[-400:]}"}
        except json.JSONDecodeError as e:
            res = {"error": f"bad JSON ({e}): {lines[-1][:200]}"}
    elif p.returncode != 0:
        res = {"error": f"exit {p.returncode}: {etext.strip()[-400:]}"}
    res.update(wall=wall, maxrss_mb=ru.ru_maxrss / 1024.0, rc=p.returncode)
    if "error" in res and p.returncode != 3:
        log(f"  ! {' '.join(map(str, cmd))[:160]}\n    {res['error'][:300]}")
    return res, etext


def log(msg):
    print(msg, file=sys.stderr, flush=True)


FLOORS = {}


def floor(key):
    """GDAL decode-only time of a file (gdal_translate to ENVI on /dev/shm, 1 thread as
    the issue defines it, and with GDAL_NUM_THREADS=THREADS), and page-cache read time."""
    if key in FLOORS:
        return FLOORS[key]
    path = {"scene": SCENE, "mosaic": MOSAIC}[key]
    dst = SHM / f"rasterlab-bench-floor-{os.getpid()}.envi"
    res = {"file": path, "gdal_translate": [], "gdal_translate_mt": [], "cat": []}
    cmd = ["gdal_translate", "-q", "-of", "ENVI", path, str(dst)]
    env1 = child_env(1)
    env1.pop("GDAL_NUM_THREADS", None)
    envt = child_env(THREADS)
    envt["GDAL_NUM_THREADS"] = str(THREADS)
    run_child(cmd, env1, parse=False)  # warm-up (page cache)
    for _ in range(RUNS):
        res["gdal_translate"].append(run_child(cmd, env1, parse=False)[0]["wall"])
        res["gdal_translate_mt"].append(run_child(cmd, envt, parse=False)[0]["wall"])
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as f:
            while f.read(16 << 20):
                pass
        res["cat"].append(time.perf_counter() - t0)
    for p in SHM.glob(dst.name.split(".")[0] + "*"):
        p.unlink()
    size = os.path.getsize(path)
    res["median"] = statistics.median(res["gdal_translate"])
    res["median_mt"] = statistics.median(res["gdal_translate_mt"])
    res["cat_median"] = statistics.median(res["cat"])
    res["cat_mb_per_s"] = size / 1e6 / res["cat_median"]
    FLOORS[key] = res
    log(f"  floor {key}: gdal_translate {res['median']:.3f} s (GDAL_NUM_THREADS={THREADS}: {res['median_mt']:.3f} s), page-cache read {res['cat_mb_per_s']:.0f} MB/s")
    return res


DECODE = {}  # row id -> Side of the in-process decode floor (bench_runner floor-decode)


def decode_floor_side(row):
    """The in-process decode floor of an I/O row (issue 13): the same input, bands and
    threads as the rasterlab side, every tile decoded by a worker per thread with its own
    GDAL dataset, no computation, no output. None for rows that read no raster."""
    cmd = row.rasterlab.cmd
    if row.rasterlab.whole or len(cmd) < 2 or cmd[1] not in ("ndi", "product"):
        return None
    inp = cmd[cmd.index("--input") + 1]
    args = ["floor-decode", "--input", inp, "--threads", cmd[cmd.index("--threads") + 1]]
    if cmd[1] == "product" and "," not in inp:
        args += ["--bands", "1,2,3"]  # product reads blue, green, red of one file
    return Side("decode floor", rl(*args))


ENCODE = {}  # row id -> Side of the in-process encode floor (bench_runner floor-encode)


def encode_floor_side(row):
    """The in-process encode floor of a write row (issue 13): the GeoTIFF the rasterlab
    side wrote in this run, read into memory (not timed) and written again from memory
    with the creation options rasterlab used for it and the same threads, no compute.
    None for rows whose rasterlab side writes no GeoTIFF."""
    cmd = row.rasterlab.cmd
    if "-o" not in cmd or not str(cmd[cmd.index("-o") + 1]).endswith(".tif"):
        return None
    out = Path(cmd[cmd.index("-o") + 1])
    return Side("encode floor", rl("floor-encode", "--input", out, "--threads", threads_of(cmd),
                                   "-o", out.with_name(out.stem + "-encode-floor.tif")))


def run_row(row):
    log(f"{row.id}: {row.label}  (load {os.getloadavg()[0]:.2f})")
    sides = [row.rasterlab, *row.peers, *(side for _, side in row.extras)]
    fl = decode_floor_side(row)
    if fl is not None:
        DECODE[row.id] = fl
        sides.append(fl)  # measured in the same run, interleaved with the sides
    enc = encode_floor_side(row)
    if enc is not None:
        # after the rasterlab side in every round: it encodes the file that side just wrote
        ENCODE[row.id] = enc
        sides.append(enc)
    # probe rasterlab once: an unsupported workload is skipped, not retried
    for _ in range(RUNS):
        for s in sides:
            if s.unsupported:
                continue
            res, _ = run_child(s.cmd, parse=not s.whole)
            if s.whole and res.get("rc") == 0:
                res["seconds"] = res["wall"]
            if res.get("unsupported") or res.get("rc") == 3:
                s.unsupported = res.get("error", "unsupported")
                log(f"  {s.name}: {s.unsupported}")
                continue
            if "seconds" in res and res.get("iterations", 0) > 0:
                # iterative rows (W4): total fit time / iterations, initialisation included
                res["ms_per_iter"] = 1000 * res["seconds"] / res["iterations"]
            s.results.append(res)
            if "seconds" in res:
                log(f"  {s.name:<28} {res['seconds']:8.3f} s  (cold {res.get('cold_seconds', float('nan')):.3f} s, RSS {res['maxrss_mb']:.0f} MB)")
    if row.floor:
        floor(row.floor)
    if PROFILE and not row.rasterlab.unsupported:
        svg = BDATA / f"profile-{row.id}.svg"
        _, etext = run_child(row.rasterlab.cmd + ["--profile", str(svg), "--repeat", "1"])
        row.notes = etext.strip()


# ------------------------------------------------------------------------------ checks

def check(row):
    rl_ok = row.rasterlab.ok()
    peers = [p for p in row.peers if p.ok()]
    if row.check == "sum":
        ref = (rl_ok or [None])[-1] or (peers[0].ok()[-1] if peers else None)
        if not ref:
            return "-"
        bad = []
        for s in [row.rasterlab, *row.peers]:
            for r in s.ok():
                if r.get("valid") != ref.get("valid") or abs(r["sum"] - ref["sum"]) > 1e-5 * max(1.0, abs(ref["sum"])):
                    bad.append(s.name)
                    break
        return "same sum/count" if not bad else "DIFFERS: " + ", ".join(bad)
    if row.check == "file":
        try:
            import numpy as np
            import rasterio
        except ImportError:
            return "-"
        paths = [Path(s.cmd[s.cmd.index("-o") + 1]) for s in [row.rasterlab, *row.peers] if s.ok()]
        if len(paths) < 2:
            return "-"
        arrays = []
        for p in paths:
            with rasterio.open(p) as f:
                arrays.append((f.read(1), f.profile))
        a, pa = arrays[0]
        worst = 0.0
        for b, pb in arrays[1:]:
            if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
                return "DIFFERS (shape or nodata)"
            m = ~np.isnan(a)
            worst = max(worst, float(np.max(np.abs(a[m] - b[m]) / np.maximum(np.abs(a[m]), 1e-30))))
        tiled = all(p.get("tiled") for _, p in arrays)
        comp = {str(p.get("compress")).lower() for _, p in arrays}
        return f"max rel diff {worst:.1e}, tiled {'yes' if tiled else 'NO'}, {'/'.join(sorted(comp))}"
    if row.check == "wcss":
        vals = {s.name: s.median("wcss") for s in [row.rasterlab, *row.peers] if s.ok()}
        ref = vals.get("scikit-learn")
        if not ref:
            return "-"
        out = []
        for s in [row.rasterlab, *row.peers]:
            if s.name not in vals:
                continue
            v, it, ms = vals[s.name], s.median("iterations"), s.median("ms_per_iter")
            per_it = f", {it:.0f} it, {ms:.1f} ms/it" if it and ms else ""
            out.append(f"{s.name} WCSS {v:.2f} ({100 * (v - ref) / ref:+.3f}% vs sklearn{per_it})")
        return "; ".join(out)
    if row.check == "ari":
        out = []
        try:
            import numpy as np
            from sklearn.metrics import adjusted_rand_score
            labels = {}
            for s in [row.rasterlab, *row.peers]:
                if s.ok() and "-o" in s.cmd:
                    p = Path(s.cmd[s.cmd.index("-o") + 1])
                    if p.exists():
                        labels[s.name] = np.load(p)
            names = list(labels)
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    out.append(f"ARI {names[i].split()[0]}~{names[j].split()[0]} {adjusted_rand_score(labels[names[i]], labels[names[j]]):.3f}")
        except ImportError:
            pass
        for s in [row.rasterlab, *row.peers]:
            v = s.median("ari_truth")
            if v is not None:
                out.append(f"{s.name.split()[0]} vs truth {v:.3f}")
        return "; ".join(out) or "-"
    return "-"


# ------------------------------------------------------------------------------ report

def fmt(v, spec=".3f", none="n/a"):
    return none if v is None else format(v, spec)


def mpi_fixed(row):
    """(fixed seconds, ratio net of them) of a row with MPI start-up extras, else None."""
    ex = dict(row.extras)
    if "mpi" not in ex or "one" not in ex:
        return None
    m, o = ex["mpi"].median(), ex["one"].median()
    t, p = row.rasterlab.median(), (row.peers[0].median() if row.peers else None)
    if None in (m, o, t, p) or not t:
        return None
    fixed = max(m - o, 0.0)
    return fixed, (p - fixed) / t


def mpi_fixed_json(row):
    ex = dict(row.extras)
    if not ex:
        return {}
    fixed = mpi_fixed(row)
    return {
        "extras": [{"name": s.name, "cmd": [str(c) for c in s.cmd], "median_seconds": s.median(),
                    "runs": s.results} for s in ex.values()],
        "mpi_fixed_seconds": fixed[0] if fixed else None,
        "ratio_net_of_mpi_fixed": fixed[1] if fixed else None,
    }


def table(rows_done):
    head = ["workload", "thr", "rasterlab s", "peer", "peer s", "ratio", "goal", "RSS rl MB", "RSS peer MB", "gdal_translate s (1t/2t)", "rl/translate", "decode floor s", "rl/decode floor", "peer/decode floor",
            "encode floor s", "rl/encode floor", "rl/(decode+encode floor)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows_done:
        t = row.rasterlab.median()
        best = min((p.median() for p in row.peers if p.median() is not None), default=None)
        fl = FLOORS.get(row.floor) if row.floor else None
        for k, p in enumerate(row.peers):
            pm = p.median()
            ratio = (pm / t) if (pm is not None and t) else None
            is_best = pm is not None and pm == best and len(row.peers) > 1
            goal = ""
            if row.goal and k == 0:
                goal = f">= {row.goal:g}x best"
            if row.max_ratio and k == 0:
                goal = f"<= {row.max_ratio:g}x"
            floor_s = f"{fl['median']:.2f}/{fl['median_mt']:.2f}" if (fl and k == 0) else ""
            rl_floor = f"{t / min(fl['median'], fl['median_mt']):.2f}x" if (fl and k == 0 and t) else ""
            dec = DECODE.get(row.id)
            dm = dec.median() if dec else None
            dec_s = fmt(dm) if (dm and k == 0) else ""
            rl_dec = f"{t / dm:.2f}x" if (dm and k == 0 and t) else ""
            peer_dec = f"{pm / dm:.2f}x" if (dm and pm) else ""
            enc = ENCODE.get(row.id)
            em = enc.median() if enc else None
            enc_s = fmt(em) if (em and k == 0) else ""
            rl_enc = f"{t / em:.2f}x" if (em and k == 0 and t) else ""
            rl_sum = f"{t / (dm + em):.2f}x" if (em and dm and k == 0 and t) else ""
            rl_cell = fmt(t) if k == 0 else '"'
            if k == 0 and row.rasterlab.unsupported:
                rl_cell = "n/a"
            lines.append("| " + " | ".join([
                row.label if k == 0 else "",
                str(threads_of(row.rasterlab.cmd)) if k == 0 else "",
                rl_cell,
                p.name + (" *" if is_best else ""),
                fmt(pm) if pm is not None else ("error" if p.results else "n/a"),
                fmt(ratio, ".2f", "-") + ("x" if ratio else ""),
                goal,
                fmt(row.rasterlab.median("maxrss_mb"), ".0f", "-") if k == 0 else "",
                fmt(p.median("maxrss_mb"), ".0f", "-"),
                floor_s,
                rl_floor,
                dec_s,
                rl_dec,
                peer_dec,
                enc_s,
                rl_enc,
                rl_sum,
            ]) + " |")
    return "\n".join(lines)


def encode_floor_json(row):
    enc = ENCODE.get(row.id)
    if enc is None:
        return None
    em, t = enc.median(), row.rasterlab.median()
    dm = DECODE[row.id].median() if row.id in DECODE else None
    return {
        "cmd": [str(c) for c in enc.cmd],
        "median_seconds": em,
        "median_sync_seconds": enc.median("sync_seconds"),
        # the same size as rasterlab's file: the same pixels and options
        "file_bytes": enc.median("file_bytes"),
        "rasterlab_file_bytes": row.rasterlab.median("file_bytes"),
        "runs": enc.results,
        "rasterlab_over_floor": (t / em) if (t and em) else None,
        # decode + encode floors added: not a strict floor, rasterlab overlaps the two
        "decode_plus_encode_seconds": (dm + em) if (dm and em) else None,
        "rasterlab_over_decode_plus_encode": (t / (dm + em)) if (t and dm and em) else None,
    }


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def cmd_out(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return ""

    versions = {}
    try:
        from importlib.metadata import version
        for pkg in ("numpy", "rasterio", "rioxarray", "xarray", "dask", "distributed", "scikit-learn", "dask-ml", "netCDF4", "pandas"):
            try:
                versions[pkg] = version(pkg)
            except Exception:
                versions[pkg] = None
    except ImportError:
        pass
    return {
        "cpu_model": model,
        "usable_cores": usable_cores(),
        "os_cpu_count": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gdal": cmd_out("gdal-config", "--version"),
        "rustc": cmd_out("rustc", "-V"),
        "git_commit": cmd_out("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(cmd_out("git", "status", "--porcelain", "--untracked-files=no")),
        "peers": versions,
    }


def main():
    if not BIN.exists():
        sys.exit(f"bench: {BIN} is missing: run `cargo build --release --features cli,profile,spectral --example bench_runner` (make bench does)")
    OUTDIR.mkdir(parents=True, exist_ok=True)
    all_rows = rows(THREADS)
    sel = [r for r in all_rows if (not QUICK or r.quick) and (not ONLY or any(r.id.startswith(o) for o in ONLY))]
    started = datetime.now(timezone.utc)
    load0 = os.getloadavg()
    mach = machine()
    log(f"bench: {len(sel)} rows, {RUNS} run(s) per side after an in-process warm-up, {THREADS} threads; "
        f"{mach['cpu_model']}, {mach['usable_cores']} usable cores; load {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    loads = {}
    for row in sel:
        loads[row.id] = os.getloadavg()[0]
        run_row(row)
    load1 = os.getloadavg()
    checks = {row.id: check(row) for row in sel}
    text = table(sel)
    cmd = "make bench" + (" (BENCH_QUICK=1)" if QUICK else "")
    footer = (
        f"\n{mach['cpu_model']}, {mach['usable_cores']} usable cores, {mach['memory']}; GDAL {mach['gdal']}; "
        f"{started:%Y-%m-%d %H:%M} UTC; load (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end; "
        f"median of {RUNS} run(s), each a fresh process timed after an in-process warm-up; ratio = peer s / rasterlab s "
        f"(* = best peer); RSS = peak of the whole process; gdal_translate = gdal_translate -of ENVI to {SHM} "
        f"(1 thread / GDAL_NUM_THREADS={THREADS}): process start + decode + file write, the cost of a whole-file GDAL "
        f"conversion, too weak to steer by (rl/translate against the faster); decode floor = in-process decode of the "
        f"row's tiles and bands with the same threads (bench_runner floor-decode), measured interleaved with the sides: "
        f"rl/decode floor is the distance from what libtiff's decoder allows; encode floor (write rows) = the "
        f"GeoTIFF rasterlab wrote in this run, read into memory untimed, written again from memory with the same "
        f"creation options and threads and closed (bench_runner floor-encode), interleaved likewise: rl/encode floor "
        f"is the distance from what GTiff's encoder allows; rl/(decode+encode floor) against the sum, which is not a "
        f"strict floor (rasterlab overlaps decoding and encoding on its threads).\n"
    )
    print()
    print(text)
    print(footer)
    for row in sel:
        print(f"  {row.id}: {checks[row.id]}")
        fixed = mpi_fixed(row)
        if fixed:
            print(f"  {row.id}: Open MPI's fixed start-up + finalize {fixed[0]:.3f} s (mpirun rasterlab info - "
                  f"rasterlab info); ratio without it {fixed[1]:.2f}x")
    results = {
        "command": cmd,
        "started": started.isoformat(),
        "threads": THREADS,
        "runs": RUNS,
        "quick": QUICK,
        "load_start": load0,
        "load_end": load1,
        "machine": mach,
        "floors": FLOORS,
        "rows": [
            {
                "id": row.id,
                "label": row.label,
                "goal": row.goal,
                "max_ratio": row.max_ratio,
                # peer / rasterlab for the first peer (the MPI row: ranks' time / one process's)
                "ratio": (row.peers[0].median() / row.rasterlab.median())
                if (row.peers and row.peers[0].median() and row.rasterlab.median()) else None,
                "load_before": loads[row.id],
                "check": checks[row.id],
                "profile": row.notes or None,
                "decode_floor": (
                    {"cmd": [str(c) for c in DECODE[row.id].cmd], "median_seconds": DECODE[row.id].median(),
                     "runs": DECODE[row.id].results,
                     "rasterlab_over_floor": (row.rasterlab.median() / DECODE[row.id].median())
                     if (row.rasterlab.median() and DECODE[row.id].median()) else None,
                     "peers_over_floor": {p.name: p.median() / DECODE[row.id].median() for p in row.peers
                                          if p.median() and DECODE[row.id].median()}}
                    if row.id in DECODE else None),
                "encode_floor": encode_floor_json(row),
                **mpi_fixed_json(row),
                "sides": [
                    {"name": s.name, "cmd": [str(c) for c in s.cmd], "unsupported": s.unsupported or None,
                     "median_seconds": s.median(), "median_maxrss_mb": s.median("maxrss_mb"),
                     **({"median_iterations": s.median("iterations"), "median_ms_per_iter": s.median("ms_per_iter")}
                        if s.median("ms_per_iter") is not None else {}),
                     "runs": s.results}
                    for s in [row.rasterlab, *row.peers]
                ],
            }
            for row in sel
        ],
        "table": text,
    }
    dst = ROOT / "bench" / "results.json"
    if ONLY and dst.exists():
        # a partial run (BENCH_ONLY) replaces its own rows and keeps the others, each
        # marked with the run it comes from
        try:
            old = json.loads(dst.read_text())
        except ValueError:
            old = {}
        done = {row.id for row in sel}
        kept = [dict(r, from_run=r.get("from_run") or {k: old.get(k) for k in ("command", "started", "load_start", "load_end")})
                for r in old.get("rows", []) if r.get("id") not in done]
        for r in results["rows"]:
            r["from_run"] = {k: results[k] for k in ("command", "started", "load_start", "load_end")}
        results["command"] = f"{cmd} (BENCH_ONLY={','.join(ONLY)}, merged into the earlier results)"
        results["rows"] = kept + results["rows"]
        order = [r.id for r in all_rows]
        results["rows"].sort(key=lambda r: order.index(r["id"]) if r["id"] in order else len(order))
    tmp = dst.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(dst)
    log(f"bench: raw numbers in {dst.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
