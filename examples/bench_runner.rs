//! The rasterlab side of `make bench` (see `bench/run.py`): runs one workload once and
//! prints one line of JSON with the seconds it took (from opening the input to the last
//! value computed or written) and a checksum that the harness compares with the peer's.
//!
//! ```sh
//! cargo run --release --example bench_runner -- ndi --input data/LC08_...TIF --chunks 256 --threads 2
//! cargo run --release --example bench_runner -- align-ndi --input B3.TIF,red60.tif --chunks 256
//! cargo run --release --example bench_runner -- product --input a.tif,b.tif,c.tif -o out.tif --threads 2
//! cargo run --release --example bench_runner -- resample --input 'NETCDF:"cube.nc":rain' --threads 2
//! cargo run --release --example bench_runner -- noop --input scene.tif --chunks 20x18 --window 2000x1800
//! cargo run --release --example bench_runner -- kmeans --input bench/data/pixels.f32 --threads 2
//! cargo run --release --example bench_runner -- spectral --input bench/data/rain_samples.f32 --mode exact
//! cargo run --release --example bench_runner -- gen-rain -o bench/data
//! cargo run --release --example bench_runner -- floor-decode --input bench/data/mosaic.tif --bands 1,2,3
//! cargo run --release --example bench_runner -- floor-encode --input out.tif -o floor.tif --threads 2
//! ```
//!
//! Only the public API is used. `--profile FILE.svg` also records the run with the
//! library's `Profiler`, prints its summary on stderr and saves the timeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use rasterlab::cluster::Algorithm;
use rasterlab::cluster::metrics::adjusted_rand_index;
use rasterlab::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Normalized difference (green, red), nodata 0, scale 1e-4, computed into memory.
    Ndi,
    /// blue * green * red with nodata 0 and scale 1e-4, saved as tiled LZW GeoTIFF.
    Product,
    /// Normalized difference of two single-band files on different grids (green at 30 m,
    /// red at 60 m), the second warped onto the first's grid (bilinear) while computing.
    AlignNdi,
    /// Weekly resample mean, then std over the weeks, of a NetCDF time cube, into memory.
    Resample,
    /// A no-op map_blocks (returns the block id) over many tiny chunks.
    Noop,
    /// k-means (k-means++, 1 init) on samples x 3 float32 (`pixels.f32`).
    Kmeans,
    /// Spectral clustering of samples x 303 float32 (`rain_samples.f32`), `--mode`.
    Spectral,
    /// Writes W5's input from `rasterlab::datasets::rainfall_cube(7)` into the folder `-o`:
    /// `rain_samples.f32` (6157 x 303) and `rain_truth.i32` (the region of each sample).
    GenRain,
    /// The in-process decode floor of an I/O row: a worker per thread, each with its own
    /// GDAL dataset, reads every tile of the bands `--bands` (1-based; default: the bands
    /// `ndi` reads, green and red of a 3-band file, or band 1 of each stacked file) in the
    /// file's native type. No computation, no output: what libtiff's decoder allows.
    FloorDecode,
    /// The in-process encode floor of a write row: the GeoTIFF rasterlab wrote (`--input`,
    /// float32) is read into memory first, tile by tile (not timed), then written again
    /// to `-o` with the creation options rasterlab's save used for it (tiling, block size
    /// and compression and predictor as found in that file; `NUM_THREADS=--threads`,
    /// `BIGTIFF=IF_SAFER`, `INTERLEAVE=BAND`, as `raster::write` sets them), tile by tile
    /// in row-major order, from one thread, as rasterlab's single writer does. Timed: from
    /// creating the file to closing it. No computation, no decode: what GTiff's encoder
    /// allows for this output.
    FloorEncode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Exact,
    Nystrom,
}

#[derive(Parser, Debug)]
#[command(about = "rasterlab side of make bench: one workload, one run, JSON on stdout")]
struct Args {
    workload: Workload,
    /// Input raster, or comma-separated single-band files stacked as bands.
    #[arg(long, value_delimiter = ',', required = true)]
    input: Vec<String>,
    /// Chunk size: `256` or `WxH` (default: the library's plan).
    #[arg(long)]
    chunks: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Output file (product, floor-encode).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Only the window `WxH` at the top-left corner (noop).
    #[arg(long)]
    window: Option<String>,
    /// Record the run with rasterlab's Profiler: summary on stderr, timeline to this SVG.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Runs in this process: the last is timed, the first reported as `cold_seconds`
    /// (the same protocol as the Python peers, whose first call pays lazy imports).
    #[arg(long, default_value_t = 2)]
    repeat: usize,
    /// Clusters (kmeans, spectral).
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Maximum k-means iterations.
    #[arg(long, default_value_t = 300)]
    max_iter: usize,
    /// k-means tolerance (scikit-learn's definition).
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// k-means: Hamerly's bounds instead of the default (`Algorithm::Auto`: Lloyd for
    /// k x features <= 64), to compare the two on the same data.
    #[arg(long)]
    hamerly: bool,
    /// Features per sample in the `.f32` input (kmeans: 3, spectral: 303).
    #[arg(long)]
    features: Option<usize>,
    /// Spectral clustering: the full affinity (scikit-learn) or Nystrom (dask-ml).
    #[arg(long, value_enum, default_value_t = Mode::Nystrom)]
    mode: Mode,
    /// Nystrom landmark samples.
    #[arg(long, default_value_t = 100)]
    n_components: usize,
    /// Bands to decode (floor-decode), 1-based, comma-separated.
    #[arg(long, value_delimiter = ',')]
    bands: Vec<usize>,
}

/// A little-endian float32 file of `features` columns, as written by bench/gen_data.py.
fn read_f32(path: &str, features: usize) -> rasterlab::Result<Array2<f32>> {
    let values: Vec<f32> = read_words(path)?
        .into_iter()
        .map(f32::from_le_bytes)
        .collect();
    let rows = values.len() / features.max(1);
    Array2::from_shape_vec((rows, features), values)
        .map_err(|e| rasterlab::Error::invalid("input", format!("{path}: {e}")))
}

/// The 4-byte little-endian words of a raw `.f32` / `.i32` file.
fn read_words(path: impl AsRef<std::path::Path>) -> rasterlab::Result<Vec<[u8; 4]>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| rasterlab::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| [b[0], b[1], b[2], b[3]])
        .collect())
}

/// Labels as a `.npy` file (int32), for the harness's ARI between sides.
fn write_npy(path: &std::path::Path, labels: &[i32]) -> rasterlab::Result<()> {
    let mut header = format!(
        "{{'descr': '<i4', 'fortran_order': False, 'shape': ({},), }}",
        labels.len()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    labels
        .iter()
        .for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    std::fs::write(path, out).map_err(|source| rasterlab::Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Within-cluster sum of squares recomputed in f64 from the labels, each cluster around
/// its own mean: the same formula bench/peers.py applies to every side.
fn wcss(x: &Array2<f32>, labels: &[i32], k: usize) -> f64 {
    let d = x.ncols();
    let mut sum = vec![0f64; k * d];
    let mut n = vec![0usize; k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        let l = l as usize;
        n[l] += 1;
        row.iter()
            .enumerate()
            .for_each(|(j, &v)| sum[l * d + j] += f64::from(v));
    }
    x.rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &l)| {
            let l = l as usize;
            row.iter()
                .enumerate()
                .map(|(j, &v)| (f64::from(v) - sum[l * d + j] / n[l] as f64).powi(2))
                .sum::<f64>()
        })
        .sum()
}

fn parse_pair(s: &str) -> rasterlab::Result<(usize, usize)> {
    let bad = || rasterlab::Error::invalid("size", format!("{s:?}: use N or WxH"));
    match s.split_once('x') {
        Some((w, h)) => Ok((
            w.trim().parse().map_err(|_| bad())?,
            h.trim().parse().map_err(|_| bad())?,
        )),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            Ok((n, n))
        }
    }
}

fn open(args: &Args) -> rasterlab::Result<Raster> {
    let raster = if args.input.len() == 1 {
        Raster::open(&args.input[0])?
    } else {
        Raster::open_stack(&args.input, Stack::Band)?
    };
    let raster = match &args.window {
        Some(w) => {
            let (w, h) = parse_pair(w)?;
            raster.window(Window::new(0, 0, w, h))?
        }
        None => raster,
    };
    match &args.chunks {
        Some(c) => {
            let (w, h) = parse_pair(c)?;
            raster.chunk_shape(w, h)
        }
        None => Ok(raster),
    }
}

fn rgb(raster: Raster) -> rasterlab::Result<Raster> {
    raster.with_band_names(["blue", "green", "red"])
}

/// Sum and count of the finite values: the harness compares them with the peer's.
fn checksum(values: impl Iterator<Item = f32>) -> (f64, u64) {
    values
        .filter(|v| v.is_finite())
        .fold((0.0, 0), |(s, n), v| (s + f64::from(v), n + 1))
}

/// Decodes every block of `bands` (1-based) of each file in `inputs` with `threads`
/// workers, each opening its own datasets; worker `i` takes block rows `i, i + threads, ...`.
/// Blocks are read with `GDALReadBlock` into a buffer of the native type, so each tile is
/// decoded once per band read (GDAL's block cache serves the other bands of a
/// pixel-interleaved tile). Returns the number of blocks read.
fn floor_decode(inputs: &[String], bands: &[usize], threads: usize) -> rasterlab::Result<u64> {
    let threads = threads.max(1);
    let decode = |worker: usize| -> Result<u64, gdal::errors::GdalError> {
        let mut blocks = 0u64;
        for path in inputs {
            let ds = gdal::Dataset::open(path)?;
            let (w, h) = ds.raster_size();
            let mut handles = Vec::with_capacity(bands.len());
            for &b in bands {
                handles.push(ds.rasterband(b)?);
            }
            let Some(first) = handles.first() else {
                continue;
            };
            let (bw, bh) = first.block_size();
            // SAFETY: a pure lookup of the byte size of a GDAL data type code; it reads no
            // memory of ours and accepts any value (unknown codes give 0).
            let size = usize::try_from(unsafe {
                gdal_sys::GDALGetDataTypeSizeBytes(first.band_type() as _)
            })
            .unwrap_or(8);
            let mut buf = vec![0u8; bw * bh * size.max(8)];
            let (nx, ny) = (w.div_ceil(bw), h.div_ceil(bh));
            // Tile by tile, every band of it: a pixel-interleaved tile is decoded once and
            // its other bands come from the block cache while still hot.
            for by in (worker..ny).step_by(threads) {
                for bx in 0..nx {
                    for (band, &b) in handles.iter().zip(bands) {
                        // SAFETY: `buf` holds one whole block of 8-byte values at least,
                        // more than the band's native type needs; GDALReadBlock writes one block.
                        let rc = unsafe {
                            gdal_sys::GDALReadBlock(
                                band.c_rasterband(),
                                bx as i32,
                                by as i32,
                                buf.as_mut_ptr().cast(),
                            )
                        };
                        if rc != gdal_sys::CPLErr::CE_None {
                            return Err(gdal::errors::GdalError::CplError {
                                class: rc,
                                number: 0,
                                msg: format!("{path}: band {b}, block ({bx}, {by})"),
                            });
                        }
                        blocks += 1;
                    }
                }
            }
        }
        Ok(blocks)
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|i| s.spawn(move || decode(i))).collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut total = 0;
    for r in results {
        match r {
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) => return Err(rasterlab::Error::invalid("floor-decode", e.to_string())),
            Err(_) => {
                return Err(rasterlab::Error::invalid(
                    "floor-decode",
                    "a worker panicked",
                ));
            }
        }
    }
    Ok(total)
}

/// The creation options rasterlab's save uses (`raster::write::creation_options`) for
/// the GeoTIFF `reference`, read back from it: its block size, compression and predictor;
/// `NUM_THREADS` is the run's threads (not recorded in a file).
fn encode_options(reference: &gdal::Dataset, threads: usize) -> rasterlab::Result<Vec<String>> {
    use gdal::Metadata;
    let band = reference
        .rasterband(1)
        .map_err(|e| rasterlab::Error::invalid("floor-encode", e.to_string()))?;
    let (bw, bh) = band.block_size();
    let structure = |key: &str| reference.metadata_item(key, "IMAGE_STRUCTURE");
    // rasterlab always writes tiles, multiples of 16 as the TIFF spec requires; anything
    // else (a striped file's blocks of whole rows) is not one of its outputs.
    if bw % 16 != 0 || bh % 16 != 0 {
        return Err(rasterlab::Error::invalid(
            "floor-encode",
            format!("the reference is not tiled (blocks {bw} x {bh})"),
        ));
    }
    let mut opts = vec![
        "TILED=YES".to_string(),
        format!("BLOCKXSIZE={bw}"),
        format!("BLOCKYSIZE={bh}"),
        format!(
            "COMPRESS={}",
            structure("COMPRESSION").unwrap_or_else(|| "NONE".into())
        ),
        format!("NUM_THREADS={}", threads.max(1)),
        "BIGTIFF=IF_SAFER".to_string(),
        "INTERLEAVE=BAND".to_string(),
    ];
    if let Some(p) = structure("PREDICTOR").filter(|p| p != "1") {
        opts.push(format!("PREDICTOR={p}"));
    }
    Ok(opts)
}

/// What [`floor_encode`] measured.
struct EncodeFloor {
    /// Creating the file, writing every tile and closing it.
    seconds: f64,
    /// `fsync` of the closed file (rasterlab's save does it before its rename): not in
    /// `seconds`, reported apart.
    sync_seconds: f64,
    file_bytes: u64,
    tiles: usize,
    options: Vec<String>,
}

/// Writes the pixels of the float32 GeoTIFF `reference` to `output` with the options of
/// [`encode_options`]; only the write is timed (see `Workload::FloorEncode`).
fn floor_encode(
    reference: &str,
    output: &std::path::Path,
    threads: usize,
) -> rasterlab::Result<EncodeFloor> {
    use gdal::Metadata;
    let gdal_err =
        |e: gdal::errors::GdalError| rasterlab::Error::invalid("floor-encode", e.to_string());
    // The block cache rasterlab's runs get (`raster::limit_gdal_cache`), unless the user
    // sets one.
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        // SAFETY: sets a process-wide integer in GDAL.
        unsafe { gdal_sys::GDALSetCacheMax64(64 << 20) };
    }
    // Not timed: the pixels, tile by tile, and the header of the reference.
    let src = gdal::Dataset::open(reference).map_err(gdal_err)?;
    let options = encode_options(&src, threads)?;
    let (w, h) = src.raster_size();
    let nb = src.raster_count();
    let first = src.rasterband(1).map_err(gdal_err)?;
    if first.band_type() != gdal::raster::GdalDataType::Float32 {
        return Err(rasterlab::Error::invalid(
            "floor-encode",
            format!("{reference}: {}, not float32", first.band_type()),
        ));
    }
    let (bw, bh) = first.block_size();
    let nodata = first.no_data_value();
    let names: Vec<String> = (1..=nb)
        .map(|b| {
            src.rasterband(b)
                .map(|band| band.description().unwrap_or_default())
        })
        .collect::<Result<_, _>>()
        .map_err(gdal_err)?;
    let geo = src.geo_transform().ok();
    let wkt = src.projection();
    let mut tiles = Vec::new();
    for ty in 0..h.div_ceil(bh) {
        for tx in 0..w.div_ceil(bw) {
            let (x, y) = (tx * bw, ty * bh);
            let size = (bw.min(w - x), bh.min(h - y));
            let mut bands = Vec::with_capacity(nb);
            for b in 1..=nb {
                let band = src.rasterband(b).map_err(gdal_err)?;
                bands.push(
                    band.read_as::<f32>((x as isize, y as isize), size, size, None)
                        .map_err(gdal_err)?,
                );
            }
            tiles.push(((x, y), size, bands));
        }
    }
    drop(src);
    if output.exists() {
        std::fs::remove_file(output).map_err(|source| rasterlab::Error::Io {
            path: output.to_path_buf(),
            source,
        })?;
    }
    let mut list = gdal::raster::RasterCreationOptions::new();
    for o in &options {
        list.add_string(o).map_err(gdal_err)?;
    }
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").map_err(gdal_err)?;
    // Timed: what rasterlab's writer does with the pixels once computed.
    let t0 = Instant::now();
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(output, w, h, nb, &list)
        .map_err(gdal_err)?;
    if let Some(g) = geo {
        ds.set_geo_transform(&g).map_err(gdal_err)?;
    }
    if !wkt.is_empty() {
        ds.set_projection(&wkt).map_err(gdal_err)?;
    }
    for (b, name) in (1..=nb).zip(&names) {
        ds.rasterband(b)
            .and_then(|mut band| {
                band.set_no_data_value(nodata)?;
                if !name.is_empty() {
                    band.set_description(name)?;
                }
                Ok(())
            })
            .map_err(gdal_err)?;
    }
    let n_tiles = tiles.len();
    for ((x, y), size, bands) in tiles.iter_mut() {
        for (b, buf) in bands.iter_mut().enumerate() {
            ds.rasterband(b + 1)
                .and_then(|mut band| band.write((*x as isize, *y as isize), *size, buf))
                .map_err(gdal_err)?;
        }
    }
    // SAFETY: a valid dataset handle, owned by `ds` until the close below.
    unsafe { gdal_sys::GDALFlushCache(ds.c_dataset()) };
    ds.close().map_err(gdal_err)?;
    let seconds = t0.elapsed().as_secs_f64();
    let io = |source| rasterlab::Error::Io {
        path: output.to_path_buf(),
        source,
    };
    let t1 = Instant::now();
    std::fs::File::open(output)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    let sync_seconds = t1.elapsed().as_secs_f64();
    Ok(EncodeFloor {
        seconds,
        sync_seconds,
        file_bytes: std::fs::metadata(output).map_err(io)?.len(),
        tiles: n_tiles,
        options,
    })
}

fn run(args: &Args, prof: Option<&Profiler>) -> rasterlab::Result<String> {
    let observe = |a: LazyArray| match prof {
        Some(p) => a.observe(p),
        None => a,
    };
    let t0 = Instant::now();
    let json = match args.workload {
        Workload::Ndi => {
            let r = rgb(open(args)?)?;
            let ndi = r
                .norm_diff("green", "red")?
                .nodata(0.0)
                .scale(1e-4)
                .threads(args.threads)
                .progress(ProgressMode::Silent);
            let out = observe(ndi).compute()?;
            let secs = t0.elapsed().as_secs_f64();
            let (sum, n) = checksum(out.iter().copied());
            format!(
                r#"{{"seconds": {secs:.6}, "sum": {sum:.6}, "valid": {n}, "shape": {:?}}}"#,
                out.shape()
            )
        }
        Workload::AlignNdi => {
            let align = Align::first().resampling(Resampling::Bilinear);
            let r = Raster::open_stack_aligned(&args.input, Stack::Band, &align)?
                .with_band_names(["green", "red"])?;
            let r = match &args.chunks {
                Some(c) => {
                    let (w, h) = parse_pair(c)?;
                    r.chunk_shape(w, h)?
                }
                None => r,
            };
            let ndi = r
                .norm_diff("green", "red")?
                .nodata(0.0)
                .scale(1e-4)
                .threads(args.threads)
                .progress(ProgressMode::Silent);
            let out = observe(ndi).compute()?;
            let secs = t0.elapsed().as_secs_f64();
            let (sum, n) = checksum(out.iter().copied());
            format!(
                r#"{{"seconds": {secs:.6}, "sum": {sum:.6}, "valid": {n}, "shape": {:?}}}"#,
                out.shape()
            )
        }
        Workload::Product => {
            let r = rgb(open(args)?)?;
            let out = args
                .output
                .clone()
                .ok_or_else(|| rasterlab::Error::invalid("output", "give -o FILE"))?;
            let p = (r.band("blue")? * r.band("green")? * r.band("red")?)
                .nodata(0.0)
                .scale(1e-4)
                .threads(args.threads)
                .progress(ProgressMode::Silent);
            let report = observe(p).save(&out).compress(Compression::Lzw).run()?;
            let secs = t0.elapsed().as_secs_f64();
            format!(
                r#"{{"seconds": {secs:.6}, "file_bytes": {}, "chunks": {}}}"#,
                report.file_bytes,
                report.grid.len()
            )
        }
        Workload::Resample => {
            let r = open(args)?;
            let name = r.band_names()[0].to_string();
            let a = r
                .band(&name)?
                .resample(Period::Week)
                .mean()
                .std()
                .threads(args.threads)
                .progress(ProgressMode::Silent);
            let a = observe(a);
            let out = a.compute()?;
            let secs = t0.elapsed().as_secs_f64();
            let (sum, n) = checksum(out.iter().copied());
            let plan = PoolPlan::detect()?.with_threads(args.threads)?;
            let grid = a.chunk_grid(&plan)?;
            format!(
                r#"{{"seconds": {secs:.6}, "sum": {sum:.6}, "valid": {n}, "shape": {:?}, "chunks": {}, "chunk_size": [{}, {}]}}"#,
                out.shape(),
                grid.len(),
                grid.chunk_size().0,
                grid.chunk_size().1
            )
        }
        Workload::Noop => {
            let r = open(args)?;
            let name = r.band_names()[0].to_string();
            let a = r
                .band(&name)?
                .threads(args.threads)
                .progress(ProgressMode::Silent);
            let ids = observe(a).map_blocks(|b| b.id)?;
            let secs = t0.elapsed().as_secs_f64();
            format!(
                r#"{{"seconds": {secs:.6}, "chunks": {}, "us_per_chunk": {:.3}}}"#,
                ids.len(),
                secs * 1e6 / ids.len().max(1) as f64
            )
        }
        Workload::Kmeans => {
            // Loading the file is outside the timing, as on the Python side.
            let x = read_f32(&args.input[0], args.features.unwrap_or(3))?;
            let t0 = Instant::now();
            let model = KMeans::new(args.k)
                .n_init(1)
                .max_iter(args.max_iter)
                .tol(args.tol)
                .algorithm(if args.hamerly {
                    Algorithm::Hamerly
                } else {
                    Algorithm::Auto
                })
                .seed(0)
                .threads(args.threads)
                .progress(ProgressMode::Silent)
                .fit(&x)?;
            let secs = t0.elapsed().as_secs_f64();
            if let Some(out) = &args.output {
                write_npy(out, model.labels())?;
            }
            format!(
                r#"{{"seconds": {secs:.6}, "wcss": {:.6}, "iterations": {}, "n": {}}}"#,
                wcss(&x, model.labels(), args.k),
                model.n_iter(),
                x.nrows()
            )
        }
        Workload::Spectral => {
            let x = read_f32(&args.input[0], args.features.unwrap_or(303))?;
            let t0 = Instant::now();
            let sc = SpectralClustering::new(args.k)
                .seed(0)
                .threads(args.threads)
                .progress(ProgressMode::Silent)
                .n_components(args.n_components);
            let sc = match args.mode {
                Mode::Exact => sc.exact(),
                Mode::Nystrom => sc.nystrom(),
            };
            let model = sc.fit(&x)?;
            let secs = t0.elapsed().as_secs_f64();
            if let Some(out) = &args.output {
                write_npy(out, model.labels())?;
            }
            let truth = std::path::Path::new(&args.input[0]).with_file_name("rain_truth.i32");
            let ari = match read_words(&truth) {
                Ok(words) => {
                    let t: Vec<i32> = words.into_iter().map(i32::from_le_bytes).collect();
                    adjusted_rand_index(&t, model.labels())?
                }
                Err(_) => f64::NAN,
            };
            format!(
                r#"{{"seconds": {secs:.6}, "gamma": {:.6e}, "ari_truth": {ari:.6}}}"#,
                model.gamma()
            )
        }
        Workload::FloorDecode => {
            let bands = if !args.bands.is_empty() {
                args.bands.clone()
            } else if args.input.len() == 1 {
                vec![2, 3]
            } else {
                vec![1]
            };
            let blocks = floor_decode(&args.input, &bands, args.threads)?;
            let secs = t0.elapsed().as_secs_f64();
            format!(r#"{{"seconds": {secs:.6}, "blocks": {blocks}}}"#)
        }
        Workload::FloorEncode => {
            let out = args
                .output
                .clone()
                .ok_or_else(|| rasterlab::Error::invalid("output", "give -o FILE"))?;
            let f = floor_encode(&args.input[0], &out, args.threads)?;
            format!(
                r#"{{"seconds": {:.6}, "sync_seconds": {:.6}, "file_bytes": {}, "tiles": {}, "options": {:?}}}"#,
                f.seconds,
                f.sync_seconds,
                f.file_bytes,
                f.tiles,
                f.options.join(" ")
            )
        }
        Workload::GenRain => {
            let dir = args
                .output
                .clone()
                .ok_or_else(|| rasterlab::Error::invalid("output", "give -o FOLDER"))?;
            let cube = rasterlab::datasets::rainfall_cube(7);
            let samples: Vec<u8> = cube
                .samples
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            let truth: Vec<u8> = cube.truth.iter().flat_map(|l| l.to_le_bytes()).collect();
            for (name, bytes) in [("rain_samples.f32", samples), ("rain_truth.i32", truth)] {
                let path = dir.join(name);
                std::fs::write(&path, bytes)
                    .map_err(|source| rasterlab::Error::Io { path, source })?;
            }
            let (n, d) = cube.samples.dim();
            format!(r#"{{"seconds": 0, "n": {n}, "features": {d}}}"#)
        }
    };
    Ok(json)
}

/// The `seconds` field of a result line.
fn seconds_of(json: &str) -> f64 {
    json.split("\"seconds\": ")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() -> ExitCode {
    gdal::config::set_error_handler(|_, _, _| {});
    let args = Args::parse();
    let prof = args.profile.as_ref().map(|_| Profiler::new());
    let mut result = Err(rasterlab::Error::invalid("repeat", "must be at least 1"));
    let mut cold = None;
    for _ in 0..args.repeat.max(1) {
        if let Some(p) = &prof {
            p.reset(); // profile the last (timed) run only
        }
        result = run(&args, prof.as_ref());
        match &result {
            Ok(json) => {
                cold.get_or_insert_with(|| seconds_of(json));
            }
            Err(_) => break,
        }
    }
    match result {
        Ok(json) => {
            let cold = cold.unwrap_or(f64::NAN);
            let json = format!(
                "{}, \"cold_seconds\": {cold:.6}}}",
                json.trim_end().trim_end_matches('}')
            );
            println!("{json}");
            if let (Some(p), Some(svg)) = (&prof, &args.profile) {
                eprintln!("{}", p.summary());
                if let Err(e) = p.save_svg(svg) {
                    eprintln!("profile: {e}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let unsupported = e.to_string().contains("unsupported");
            println!(
                r#"{{"error": {:?}, "unsupported": {unsupported}}}"#,
                e.to_string()
            );
            if unsupported {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
