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
    /// Cluster the valid pixels of a raster (bands as features) and write the label map.
    Cluster(Box<ClusterArgs>),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    /// Exact k-means (Lloyd iterations).
    Kmeans,
    /// Mini-batch k-means.
    Minibatch,
    /// Spectral clustering (Nystrom unless --exact).
    Spectral,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InitArg {
    /// Greedy k-means++ (scikit-learn).
    #[value(name = "kmeans++")]
    PlusPlus,
    /// k-means|| (dask-ml).
    #[value(name = "kmeans||")]
    Parallel,
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// A multi-band raster; every band (or those of --bands) is a feature.
    file: PathBuf,
    /// Bands to use as features, by name (after --band-names) or band1, band2 ...
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    /// Names for the bands of FILE, in order: `--band-names blue,green,red`.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// Input nodata value (overrides the file's); a pixel that is nodata in any band is
    /// left out and gets label -1.
    #[arg(long)]
    nodata: Option<f64>,
    /// Input scale factor: physical = stored * scale.
    #[arg(long)]
    scale: Option<f64>,
    /// Number of clusters.
    #[arg(long)]
    k: usize,
    /// Clustering method.
    #[arg(long, value_enum, default_value = "kmeans")]
    method: Method,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale every feature to zero mean and unit variance first.
    #[arg(long)]
    standardize: bool,
    /// k-means initialisations (the best is kept).
    #[arg(long, default_value_t = 1)]
    n_init: usize,
    /// Maximum k-means iterations (mini-batch: passes over the data).
    #[arg(long)]
    max_iter: Option<usize>,
    /// k-means initialisation.
    #[arg(long, value_enum, default_value = "kmeans++")]
    init: InitArg,
    /// Spectral: Nystrom landmark samples.
    #[arg(long, default_value_t = 100)]
    n_components: usize,
    /// Spectral: full affinity matrix instead of Nystrom (n^2 memory).
    #[arg(long)]
    exact: bool,
    /// Worker threads (default: usable cores; env RASTERLAB_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// Hide progress.
    #[arg(long)]
    quiet: bool,
    /// Output GeoTIFF of labels (Float32, nodata -1).
    #[arg(short, long)]
    output: PathBuf,
}

fn cluster(args: ClusterArgs) -> rasterlab::Result<()> {
    use rasterlab::cluster::{SpectralMode, inertia};
    rasterlab::raster::write::check_output_path(&args.output)?;
    let start = std::time::Instant::now();
    let mut raster = Raster::open(&args.file)?;
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    if let Some(nd) = args.nodata {
        raster = raster.with_nodata(Some(nd));
    }
    if let Some(s) = args.scale {
        raster = raster.with_scale(s, 0.0);
    }
    let bands: Vec<String> = if args.bands.is_empty() {
        raster.band_names().iter().map(|s| s.to_string()).collect()
    } else {
        args.bands.clone()
    };
    let bands: Vec<&str> = bands.iter().map(String::as_str).collect();
    let mut x = Samples::from_bands(&raster, &bands)?;
    if args.standardize {
        x = x.standardize();
    }
    let progress = if args.quiet {
        ProgressMode::Silent
    } else {
        ProgressMode::Auto
    };
    let threads = match args.threads {
        Some(t) => t,
        None => rasterlab::resources::PoolPlan::detect()?.threads(),
    };
    let (labels, inertia_value, iterations, method) = match args.method {
        Method::Kmeans => {
            let mut km = KMeans::new(args.k)
                .seed(args.seed)
                .n_init(args.n_init)
                .threads(threads)
                .progress(progress)
                .init(match args.init {
                    InitArg::PlusPlus => Init::KMeansPlusPlus,
                    InitArg::Parallel => Init::KMeansParallel,
                });
            if let Some(m) = args.max_iter {
                km = km.max_iter(m);
            }
            let m = km.fit(&x)?;
            (
                m.labels().to_vec(),
                m.inertia(),
                m.n_iter(),
                "k-means".to_string(),
            )
        }
        Method::Minibatch => {
            let mut mb = MiniBatchKMeans::new(args.k)
                .seed(args.seed)
                .n_init(args.n_init)
                .threads(threads)
                .progress(progress);
            if let Some(m) = args.max_iter {
                mb = mb.max_iter(m);
            }
            let m = mb.fit(&x)?;
            (
                m.labels().to_vec(),
                m.inertia(),
                m.n_iter(),
                "mini-batch k-means".to_string(),
            )
        }
        Method::Spectral => {
            let sc = SpectralClustering::new(args.k)
                .seed(args.seed)
                .n_components(args.n_components)
                .mode(if args.exact {
                    SpectralMode::Exact
                } else {
                    SpectralMode::Nystrom
                })
                .threads(threads)
                .progress(progress);
            let m = sc.fit(&x)?;
            // inertia in feature space, comparable with k-means: distances to cluster means
            let d = x.n_features();
            let mut sums = ndarray::Array2::<f64>::zeros((args.k, d));
            let mut counts = vec![0usize; args.k];
            let xf = x.to_f64();
            for (row, &l) in xf.rows().into_iter().zip(m.labels()) {
                let l = l as usize;
                counts[l] += 1;
                sums.row_mut(l).zip_mut_with(&row, |s, v| *s += v);
            }
            for (mut r, &c) in sums.rows_mut().into_iter().zip(&counts) {
                r.mapv_inplace(|v| v / c.max(1) as f64);
            }
            let inertia_value = inertia(&xf, &sums, m.labels())?;
            (
                m.labels().to_vec(),
                inertia_value,
                m.n_iter(),
                format!("spectral ({}, gamma {:.4e})", m.mode(), m.gamma()),
            )
        }
    };
    let map = x.unstack(&labels)?;
    let path = map.save(&args.output)?;
    println!("method:     {method}");
    println!("k:          {}", args.k);
    println!(
        "samples:    {} valid pixels x {} features ({} nodata pixels)",
        x.n_samples(),
        x.n_features(),
        map.nodata_count()
    );
    println!("inertia:    {inertia_value:.6}");
    println!("iterations: {iterations}");
    println!("threads:    {threads}");
    println!("seconds:    {:.3}", start.elapsed().as_secs_f64());
    println!("output:     {}", path.display());
    Ok(())
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
    let report = save.run()?;
    println!("{report}");
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
        Command::Cluster(args) => cluster(*args)?,
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
