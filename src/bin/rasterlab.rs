//! `rasterlab`: the command-line face of the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rasterlab::prelude::*;
use rasterlab::resources::parse_bytes;

#[derive(Parser)]
#[command(
    name = "rasterlab",
    version,
    about = "Chunked raster processing over GDAL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cores and memory this process may use, and the pool plan built from them.
    Resources,
    /// Describe a raster: size, bands, data type, CRS, bounds, blocks, nodata.
    Info {
        /// Any raster GDAL can read.
        file: PathBuf,
    },
    /// Normalized difference (a - b) / (a + b) of two bands, written as a tiled GeoTIFF.
    Ndi(Box<NdiArgs>),
}

#[derive(clap::Args)]
struct NdiArgs {
    /// A multi-band raster (omit when --bands is given).
    file: Option<PathBuf>,
    /// Two single-band files, a then b: `--bands B3.tif,B4.tif`.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    bands: Vec<PathBuf>,
    /// Names for the bands of FILE, in order: `--band-names blue,green,red`.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// Band a (name or band1, band2 ...). Defaults to the first of --bands.
    #[arg(long)]
    a: Option<String>,
    /// Band b. Defaults to the second of --bands.
    #[arg(long)]
    b: Option<String>,
    /// Input nodata value (overrides the file's).
    #[arg(long)]
    nodata: Option<f64>,
    /// Input scale factor: physical = stored * scale.
    #[arg(long)]
    scale: Option<f64>,
    /// Square chunk size in pixels (default: block-aligned, sized from the memory budget).
    #[arg(long)]
    chunks: Option<usize>,
    /// Worker threads (default: usable cores; env RASTERLAB_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory budget, e.g. 1GiB (default: half the usable memory; env RASTERLAB_MEMORY).
    #[arg(long)]
    memory: Option<String>,
    /// Compression: none, lzw, deflate, zstd.
    #[arg(long, default_value = "lzw")]
    compress: String,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output GeoTIFF.
    #[arg(short, long)]
    output: PathBuf,
    /// Also write a profile (task timeline, CPU and memory) as an SVG figure.
    #[arg(long, value_name = "SVG")]
    profile: Option<PathBuf>,
}

fn ndi(args: NdiArgs) -> rasterlab::Result<()> {
    let compression: Compression = args.compress.parse()?;
    let memory = args.memory.as_deref().map(parse_bytes).transpose()?;
    let (raster, default_a, default_b) = match (&args.file, args.bands.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(rasterlab::Error::invalid(
                "arguments",
                "give either FILE or --bands, not both",
            ));
        }
        (None, [a, b]) => {
            let names = ["a", "b"].map(String::from);
            let names = if args.band_names.is_empty() {
                names.to_vec()
            } else {
                args.band_names.clone()
            };
            let r = Raster::open_stack([a, b], Stack::Band)?.with_band_names(names)?;
            let (na, nb) = (r.band_names()[0].to_string(), r.band_names()[1].to_string());
            (r, Some(na), Some(nb))
        }
        (None, other) => {
            return Err(rasterlab::Error::invalid(
                "arguments",
                format!(
                    "--bands needs exactly two files (a,b), got {}; or give one FILE",
                    other.len()
                ),
            ));
        }
        (Some(file), []) => {
            let mut r = Raster::open(file)?;
            if !args.band_names.is_empty() {
                r = r.with_band_names(args.band_names.clone())?;
            }
            (r, None, None)
        }
    };
    let need = |v: Option<String>, d: Option<String>, which| {
        v.or(d).ok_or_else(|| {
            rasterlab::Error::invalid("arguments", format!("--{which} is required with FILE"))
        })
    };
    let a = need(args.a, default_a, "a")?;
    let b = need(args.b, default_b, "b")?;
    let mut expr = raster.norm_diff(&a, &b)?;
    if let Some(nd) = args.nodata {
        expr = expr.nodata(nd);
    }
    if let Some(s) = args.scale {
        expr = expr.scale(s);
    }
    let mut save = expr
        .save(&args.output)
        .compress(compression)
        .progress(if args.quiet {
            ProgressMode::Silent
        } else {
            ProgressMode::Auto
        });
    if let Some(c) = args.chunks {
        save = save.chunks(c);
    }
    if let Some(t) = args.threads {
        save = save.threads(t);
    }
    if let Some(m) = memory {
        save = save.memory(m);
    }
    let profiler = args.profile.as_ref().map(|_| Profiler::new());
    if let Some(p) = &profiler {
        save = save.observe(p);
    }
    let report = save.run()?;
    println!("{report}");
    if let (Some(p), Some(path)) = (&profiler, &args.profile) {
        p.save_svg(path)?;
        println!("  profile:  {}", path.display());
    }
    Ok(())
}

fn run(cli: Cli) -> rasterlab::Result<()> {
    match cli.command {
        Command::Resources => {
            let res = Resources::detect();
            println!("{res}");
            println!("{}", res.plan()?);
        }
        Command::Info { file } => println!("{}", Raster::open(file)?),
        Command::Ndi(args) => ndi(*args)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    // GDAL prints its own errors on stderr; ours carry the same message with context.
    gdal::config::set_error_handler(|_, _, _| {});
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
