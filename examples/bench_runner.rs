//! The rasterlab side of `make bench` (see `bench/run.py`): runs one workload once and
//! prints one line of JSON with the seconds it took (from opening the input to the last
//! value computed or written) and a checksum that the harness compares with the peer's.
//!
//! ```sh
//! cargo run --release --example bench_runner -- ndi --input data/LC08_...TIF --chunks 256 --threads 2
//! cargo run --release --example bench_runner -- product --input a.tif,b.tif,c.tif -o out.tif --threads 2
//! cargo run --release --example bench_runner -- resample --input 'NETCDF:"cube.nc":rain' --threads 2
//! cargo run --release --example bench_runner -- noop --input scene.tif --chunks 20x18 --window 2000x1800
//! ```
//!
//! Only the public API is used. `--profile FILE.svg` also records the run with the
//! library's `Profiler`, prints its summary on stderr and saves the timeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use rasterlab::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Normalized difference (green, red), nodata 0, scale 1e-4, computed into memory.
    Ndi,
    /// blue * green * red with nodata 0 and scale 1e-4, saved as tiled LZW GeoTIFF.
    Product,
    /// Weekly resample mean, then std over the weeks, of a NetCDF time cube, into memory.
    Resample,
    /// A no-op map_blocks (returns the block id) over many tiny chunks.
    Noop,
    /// k-means on the valid pixels (needs the `cluster` module).
    Kmeans,
    /// Spectral clustering (needs the `cluster` module).
    Spectral,
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
    /// Output file (product).
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
        Workload::Kmeans | Workload::Spectral => {
            return Err(rasterlab::Error::invalid(
                "workload",
                "unsupported: this tree has no rasterlab::cluster module yet",
            ));
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
