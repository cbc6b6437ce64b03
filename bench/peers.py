"""The Python peers of `make bench` (see bench/run.py): one workload, one run, one line of
JSON on stdout with the seconds it took (imports excluded: timing starts when the input is
opened) and a checksum the harness compares with rasterlab's.

    python bench/peers.py ndi --input scene.tif --chunks 256 --threads 2
    python bench/peers.py product --input a.tif,b.tif,c.tif -o out.tif --chunks 256 --threads 2
    python bench/peers.py align-ndi --input B3.tif,red60.tif --chunks 256 --threads 2
    python bench/peers.py resample --input cube.nc --engine dask|numpy --threads 2
    python bench/peers.py noop --input scene.tif --chunks 20x18 --window 2000x1800 --threads 2
    python bench/peers.py kmeans --input pixels.f32 --engine sklearn|dask-ml --threads 2
    python bench/peers.py spectral --input rain_samples.f32 --engine sklearn|dask-ml --threads 2

Thread counts: dask's threaded scheduler gets `num_workers=threads`; BLAS/OpenMP pools are
limited by the harness through OMP_NUM_THREADS & co. and here through threadpoolctl.
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np


def pair(s):
    if s is None:
        return None
    if "x" in s:
        w, h = s.split("x")
        return int(w), int(h)
    return int(s), int(s)


def finite_checksum(a):
    a = np.asarray(a, dtype=np.float64)
    m = np.isfinite(a)
    return float(a[m].sum()), int(m.sum())


def scheduler(threads):
    import dask

    return dask.config.set(scheduler="threads", num_workers=threads)


def open_bands(inputs, chunks, lock):
    """blue, green, red as float32 DataArrays (y, x), nodata 0 masked, scaled 1e-4."""
    import rioxarray

    cw, ch = chunks
    if len(inputs) == 1:
        da = rioxarray.open_rasterio(inputs[0], chunks={"band": -1, "y": ch, "x": cw}, lock=lock)
        bands = [da.sel(band=b) for b in (1, 2, 3)]
    else:
        bands = [
            rioxarray.open_rasterio(p, chunks={"band": 1, "y": ch, "x": cw}, lock=lock).squeeze("band", drop=True)
            for p in inputs
        ]

    def prep(x):
        x = x.astype("float32")
        return x.where(x != 0) * np.float32(1e-4)

    return [prep(b) for b in bands]


def lock_arg(name):
    # rioxarray's default (None) serializes reads through one cached file handle per
    # file; False opens a handle per read and reads in parallel.
    return {"default": None, "none": False}[name]


def w_ndi(a):
    t0 = time.perf_counter()
    _, g, r = open_bands(a.input, pair(a.chunks), lock_arg(a.lock))
    nd = (g - r) / (g + r)
    with scheduler(a.threads):
        out = nd.compute()
    secs = time.perf_counter() - t0
    s, n = finite_checksum(out.values)
    return {"seconds": secs, "sum": s, "valid": n, "shape": list(out.shape)}


def w_align_ndi(a):
    """(green - red) / (green + red) with red on a 60 m grid: rioxarray's reproject_match
    onto green's 30 m grid (bilinear, nodata 0 carried), then the same computation."""
    import rioxarray
    from rasterio.enums import Resampling

    cw, ch = pair(a.chunks)
    t0 = time.perf_counter()
    green = rioxarray.open_rasterio(a.input[0], chunks={"band": 1, "y": ch, "x": cw}).squeeze("band", drop=True)
    red60 = rioxarray.open_rasterio(a.input[1]).squeeze("band", drop=True).rio.write_nodata(0)
    red = red60.rio.reproject_match(green, resampling=Resampling.bilinear)
    red = red.chunk({"y": ch, "x": cw})

    def prep(x):
        x = x.astype("float32")
        return x.where(x != 0) * np.float32(1e-4)

    g, r = prep(green), prep(red)
    nd = (g - r) / (g + r)
    with scheduler(a.threads):
        out = nd.compute()
    secs = time.perf_counter() - t0
    s, n = finite_checksum(out.values)
    return {"seconds": secs, "sum": s, "valid": n, "shape": list(out.shape)}


def w_product(a):
    import rioxarray  # noqa: F401  (the .rio accessor)

    t0 = time.perf_counter()
    b, g, r = open_bands(a.input, pair(a.chunks), lock_arg(a.lock))
    p = (b * g * r).astype("float32")
    p = p.rio.write_nodata(np.nan, encoded=False)
    with scheduler(a.threads):
        p.rio.to_raster(a.output, tiled=True, compress="lzw", lock=threading.Lock())
    secs = time.perf_counter() - t0
    return {"seconds": secs, "file_bytes": Path(a.output).stat().st_size}


def w_resample(a):
    import xarray as xr

    t0 = time.perf_counter()
    if a.engine == "dask":
        ds = xr.open_dataset(a.input[0], engine="netcdf4", chunks={"time": 1, "y": -1, "x": -1})
    else:
        ds = xr.open_dataset(a.input[0], engine="netcdf4").load()
    r = ds["rain"].resample(time="1W").mean().std("time")
    with scheduler(a.threads):
        out = r.compute()
    secs = time.perf_counter() - t0
    s, n = finite_checksum(out.values)
    return {"seconds": secs, "sum": s, "valid": n, "shape": [1, *out.shape]}


def w_noop(a):
    import rioxarray

    cw, ch = pair(a.chunks)
    ww, wh = pair(a.window)
    t0 = time.perf_counter()
    if a.engine == "dask-mem":
        # dask's own per-task cost: the window read whole with rasterio, then chunked
        import dask.array as dsa
        import rasterio
        from rasterio.windows import Window

        with rasterio.open(a.input[0]) as src:
            band = src.read(1, window=Window(0, 0, ww, wh))
        arr = dsa.from_array(band, chunks=(ch, cw))
    else:
        da = rioxarray.open_rasterio(a.input[0], chunks={"band": 1, "y": ch, "x": cw}, lock=lock_arg(a.lock))
        arr = da.isel(band=0, y=slice(0, wh), x=slice(0, ww)).data
    ident = arr.map_blocks(lambda b: b, dtype=arr.dtype)
    nchunks = ident.npartitions
    with scheduler(a.threads):
        ident.compute()
    secs = time.perf_counter() - t0
    return {"seconds": secs, "chunks": nchunks, "us_per_chunk": secs * 1e6 / nchunks}


def wcss(x, labels, k):
    """Within-cluster sum of squares, recomputed in float64 from the labels (the same
    formula for every side: each cluster's own mean as its centre)."""
    x = np.asarray(x, dtype=np.float64)
    total = 0.0
    for c in range(k):
        m = labels == c
        if m.any():
            xc = x[m]
            total += float(((xc - xc.mean(axis=0)) ** 2).sum())
    return total


def w_kmeans(a):
    from threadpoolctl import threadpool_limits

    x = np.fromfile(a.input[0], dtype="<f4").reshape(-1, 3)
    t0 = time.perf_counter()
    with threadpool_limits(a.threads):
        if a.engine == "sklearn":
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=a.k, n_init=1, max_iter=a.max_iter, tol=a.tol, random_state=0).fit(x)
            labels = km.labels_
            iters = int(km.n_iter_)
        else:
            import dask.array as da
            from dask_ml.cluster import KMeans

            xd = da.from_array(x, chunks=(max(1, x.shape[0] // (4 * a.threads)), 3))
            with scheduler(a.threads):
                km = KMeans(n_clusters=a.k, max_iter=a.max_iter, tol=a.tol, random_state=0).fit(xd)
                labels = np.asarray(km.labels_.compute() if hasattr(km.labels_, "compute") else km.labels_)
            iters = int(getattr(km, "n_iter_", -1))
    secs = time.perf_counter() - t0
    np.save(a.output, labels.astype(np.int32)) if a.output else None
    return {"seconds": secs, "wcss": wcss(x, labels, a.k), "iterations": iters, "n": int(x.shape[0])}


def w_spectral(a):
    from threadpoolctl import threadpool_limits

    shape = (6157, 303)
    x = np.fromfile(a.input[0], dtype="<f4").reshape(shape)
    gamma = 1.0 / (x.shape[1] * float(x.var()))  # scikit-learn's 'scale' rule
    t0 = time.perf_counter()
    with threadpool_limits(a.threads):
        if a.engine == "sklearn":
            from sklearn.cluster import SpectralClustering

            sc = SpectralClustering(n_clusters=a.k, affinity="rbf", gamma=gamma, random_state=0).fit(x)
            labels = np.asarray(sc.labels_)
        else:
            import dask.array as da
            from dask_ml.cluster import SpectralClustering

            xd = da.from_array(x, chunks=(1000, shape[1]))
            with scheduler(a.threads):
                sc = SpectralClustering(
                    n_clusters=a.k, n_components=100, affinity="rbf", gamma=gamma, random_state=0
                ).fit(xd)
                labels = sc.labels_
                labels = np.asarray(labels.compute() if hasattr(labels, "compute") else labels)
    secs = time.perf_counter() - t0
    out = {"seconds": secs, "gamma": gamma}
    truth = Path(a.input[0]).with_name("rain_truth.i32")
    if truth.exists():
        from sklearn.metrics import adjusted_rand_score

        out["ari_truth"] = float(adjusted_rand_score(np.fromfile(truth, dtype="<i4"), labels))
    if a.output:
        np.save(a.output, labels.astype(np.int32))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["ndi", "align-ndi", "product", "resample", "noop", "kmeans", "spectral"])
    p.add_argument("--input", required=True, type=lambda s: s.split(","))
    p.add_argument("--chunks", default="256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output")
    p.add_argument("--window")
    p.add_argument("--engine", default="dask")
    p.add_argument("--lock", choices=["default", "none"], default="default")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--repeat", type=int, default=2, help="runs in this process; the last is timed, the first reported as cold_seconds")
    a = p.parse_args()
    fn = globals()["w_" + a.workload.replace("-", "_")]
    try:
        cold = None
        for _ in range(max(1, a.repeat)):
            out = fn(a)
            cold = out["seconds"] if cold is None else cold
        out["cold_seconds"] = cold
    except Exception as e:  # reported in the table, never a crash of the harness
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
