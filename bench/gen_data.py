"""Deterministic inputs for `make bench`, written into bench/data/ when missing.

    mosaic.tif        4 x 4 mosaic of the Landsat scene (8164 x 7440 x 3 UInt16), tiled
                      256 x 256, LZW, pixel-interleaved (built with gdal_translate from a VRT)
    cube.nc           303 days x 550 x 501 float32 rainfall-like cube, variable `rain`,
                      CF time "days since 2020-01-01", north-up x/y coordinates (netCDF3
                      64-bit offset: contiguous, read by GDAL and xarray alike)
    pixels.f32        the scene's valid pixels (no band equal to 0) x 3 bands, reflectance
                      (stored * 1e-4), float32 little-endian, row-major (W4)
    rain_samples.f32  6157 x 303 float32 samples x days of the 47 x 131 rainfall-like cube
                      with 8 known regions (W5), from rasterlab::datasets::rainfall_cube(7)
                      (run through target/release/examples/bench_runner gen-rain);
                      rain_truth.i32 the region of each sample
    red60.tif         the scene's red band (B4) at 60 m (gdalwarp -tr 60 60 -r average): W8
                      aligns it back onto the 30 m grid
    manifest.json     shapes and how each file was made

Run with the bench venv's python: `.venv-bench/bin/python bench/gen_data.py`.
Every generator uses a fixed seed, so the files are the same on every machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
OUT = ROOT / "bench" / "data"
SCENE = DATA / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"

CUBE_SHAPE = (303, 550, 501)  # time, y, x
RAIN_SHAPE = (303, 47, 131)  # time, y, x -> 6157 samples x 303 features (rasterlab's generator)
N_REGIONS = 8


def log(msg):
    print(f"bench-data: {msg}", file=sys.stderr, flush=True)


def build_mosaic(path: Path):
    """A VRT placing 4 x 4 copies of the scene side by side, then translated to a tiled
    LZW GeoTIFF (gdalbuildvrt would stack copies of one footprint on top of each other)."""
    w, h, nb = 2041, 1860, 3
    info = subprocess.run(
        ["gdalinfo", "-json", str(SCENE)], check=True, capture_output=True, text=True
    )
    meta = json.loads(info.stdout)
    gt = meta["geoTransform"]
    wkt = meta["coordinateSystem"]["wkt"]
    bands = []
    for b in range(1, nb + 1):
        sources = []
        for i in range(4):
            for j in range(4):
                sources.append(
                    f"""    <SimpleSource>
      <SourceFilename relativeToVRT="0">{SCENE}</SourceFilename>
      <SourceBand>{b}</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>
      <DstRect xOff="{j * w}" yOff="{i * h}" xSize="{w}" ySize="{h}"/>
    </SimpleSource>"""
                )
        bands.append(
            f'  <VRTRasterBand dataType="UInt16" band="{b}">\n'
            + "\n".join(sources)
            + "\n  </VRTRasterBand>"
        )
    vrt = (
        f'<VRTDataset rasterXSize="{4 * w}" rasterYSize="{4 * h}">\n'
        f"  <SRS>{wkt.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace(chr(34), '&quot;')}</SRS>\n"
        f"  <GeoTransform>{', '.join(repr(v) for v in gt)}</GeoTransform>\n"
        + "\n".join(bands)
        + "\n</VRTDataset>\n"
    )
    vrt_path = path.with_suffix(".vrt")
    vrt_path.write_text(vrt)
    tmp = path.with_suffix(".tmp.tif")
    subprocess.run(
        [
            "gdal_translate", "-q", "-of", "GTiff",
            "-co", "TILED=YES", "-co", "BLOCKXSIZE=256", "-co", "BLOCKYSIZE=256",
            "-co", "COMPRESS=LZW", "-co", "INTERLEAVE=PIXEL", "-co", "NUM_THREADS=ALL_CPUS",
            str(vrt_path), str(tmp),
        ],
        check=True,
    )
    tmp.rename(path)
    vrt_path.unlink()


def build_cube(path: Path):
    """Rain-like values: a seasonal cycle that drifts across the grid, wet/dry days, and
    gamma-distributed amounts. float32, no missing values."""
    import netCDF4

    nt, ny, nx = CUBE_SHAPE
    rng = np.random.default_rng(20200101)
    t = np.arange(nt, dtype=np.float64)
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    phase = (0.3 * xx + 0.2 * yy).astype(np.float32)  # fraction of a year
    base = (2.0 + 4.0 * yy).astype(np.float32)  # mm/day, wetter to the south
    tmp = path.with_suffix(".tmp.nc")
    ds = netCDF4.Dataset(tmp, "w", format="NETCDF3_64BIT_OFFSET")
    ds.createDimension("time", nt)
    ds.createDimension("y", ny)
    ds.createDimension("x", nx)
    tv = ds.createVariable("time", "f8", ("time",))
    tv.units = "days since 2020-01-01"
    tv.calendar = "standard"
    tv[:] = t
    yv = ds.createVariable("y", "f8", ("y",))
    yv.units = "m"
    yv.standard_name = "projection_y_coordinate"
    yv[:] = 7_000_000.0 - 1000.0 * (np.arange(ny) + 0.5)  # north-up: y decreasing
    xv = ds.createVariable("x", "f8", ("x",))
    xv.units = "m"
    xv.standard_name = "projection_x_coordinate"
    xv[:] = 500_000.0 + 1000.0 * (np.arange(nx) + 0.5)
    rain = ds.createVariable("rain", "f4", ("time", "y", "x"))
    rain.units = "mm/day"
    for k in range(nt):
        season = 1.0 + 0.8 * np.sin(2 * np.pi * (k / 365.0 - phase))
        mean = base * season.astype(np.float32)
        wet = rng.random((ny, nx)) < 0.45
        amount = rng.gamma(0.8, 1.0, (ny, nx)).astype(np.float32) * mean / 0.8 / 0.45
        rain[k, :, :] = np.where(wet, amount, 0.0).astype(np.float32)
    ds.close()
    tmp.rename(path)


def build_pixels(path: Path):
    import rasterio

    with rasterio.open(SCENE) as src:
        a = src.read()  # (3, h, w) uint16
    valid = np.all(a != 0, axis=0)
    x = (a[:, valid].T.astype(np.float32) * np.float32(1e-4)).astype("<f4")
    x.tofile(path)
    return x.shape


def build_rain(out_dir: Path):
    """W5's input comes from rasterlab's own generator (`datasets::rainfall_cube(7)`, the
    cube the clustering tests and notebook 03 use), through the bench runner."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    runner = (target if target.is_absolute() else ROOT / target) / "release" / "examples" / "bench_runner"
    subprocess.run([str(runner), "gen-rain", "--input", "-", "-o", str(out_dir)], check=True, stdout=subprocess.DEVNULL)
    n = (out_dir / "rain_samples.f32").stat().st_size // (4 * RAIN_SHAPE[0])
    return (n, RAIN_SHAPE[0])


def build_red60(path: Path):
    """The red band at 60 m, made by GDAL's own gdalwarp (W8 warps it back to 30 m)."""
    b4 = DATA / "LC08_L1TP_224078_20200518_20200518_01_RT_B4.TIF"
    tmp = path.with_suffix(".tmp.tif")
    subprocess.run(
        ["gdalwarp", "-q", "-overwrite", "-tr", "60", "60", "-r", "average",
         "-co", "TILED=YES", "-co", "COMPRESS=LZW", str(b4), str(tmp)],
        check=True,
    )
    tmp.rename(path)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    only = set(sys.argv[1:])

    def want(name):
        return not only or name in only

    if want("mosaic") and not (OUT / "mosaic.tif").exists():
        log("building mosaic.tif (4 x 4 scene, tiled LZW; ~20 s)")
        build_mosaic(OUT / "mosaic.tif")
        manifest["mosaic.tif"] = {"shape": [3, 7440, 8164], "how": "VRT of 4x4 scenes -> gdal_translate TILED LZW 256"}
    if want("cube") and not (OUT / "cube.nc").exists():
        log("building cube.nc (303 x 550 x 501 float32; ~30 s)")
        build_cube(OUT / "cube.nc")
        manifest["cube.nc"] = {"shape": list(CUBE_SHAPE), "variable": "rain", "how": "seeded gamma rainfall, netCDF3 64-bit offset"}
    if want("pixels") and not (OUT / "pixels.f32").exists():
        log("building pixels.f32 (valid pixels of the scene)")
        shape = build_pixels(OUT / "pixels.f32")
        manifest["pixels.f32"] = {"shape": list(shape), "dtype": "<f4"}
    if want("red60") and not (OUT / "red60.tif").exists():
        log("building red60.tif (the red band at 60 m)")
        build_red60(OUT / "red60.tif")
        manifest["red60.tif"] = {"shape": [1, 930, 1021], "how": "gdalwarp -tr 60 60 -r average of B4, tiled LZW"}
    rain_how = "rasterlab::datasets::rainfall_cube(7) via bench_runner gen-rain"
    stale = manifest.get("rain_samples.f32", {}).get("how") != rain_how
    if want("rain") and (stale or not (OUT / "rain_samples.f32").exists()):
        log("building rain_samples.f32 (6157 x 303, 8 regions, rasterlab's generator)")
        shape = build_rain(OUT)
        manifest["rain_samples.f32"] = {"shape": list(shape), "dtype": "<f4", "truth": "rain_truth.i32", "regions": N_REGIONS, "how": rain_how}
    manifest_path.write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
