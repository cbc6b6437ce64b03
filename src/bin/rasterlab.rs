//! `rasterlab`: the command-line face of the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rasterlab::prelude::*;
use rasterlab::raster::time::parse_date;
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
    /// Per-pixel statistics over time of a stack of files or a NetCDF variable, one
    /// output band per statistic.
    Reduce(Box<ReduceArgs>),
    /// Product of bands (e.g. blue * green * red) of one file or of single-band files.
    Product(Box<ProductArgs>),
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
    /// Output GeoTIFF of labels (Int16, nodata -1).
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

/// Options shared by every command that writes a raster.
#[derive(clap::Args)]
struct OutArgs {
    /// Input nodata value (overrides the files').
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
    /// Also write a profile (task timeline, CPU and memory) as an SVG figure.
    #[arg(long, value_name = "SVG")]
    profile: Option<PathBuf>,
    /// Output GeoTIFF.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct ReduceArgs {
    /// Files (one or more time steps each), or one NetCDF file with a time axis.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How files are combined (only `time` is meaningful here).
    #[arg(long, default_value = "time")]
    stack: String,
    /// Dates of the files, YYYY-MM-DD, in file order (default: parsed from file names).
    #[arg(long, value_delimiter = ',')]
    dates: Vec<String>,
    /// NetCDF variable to read from every file.
    #[arg(long)]
    variable: Option<String>,
    /// Names for the bands of each time step.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// The band to reduce (default: the first).
    #[arg(long)]
    band: Option<String>,
    /// Resample to week or month first.
    #[arg(long)]
    resample: Option<String>,
    /// Statistic of each resampling period.
    #[arg(long, default_value = "mean")]
    resample_stat: String,
    /// Statistics over time, one output band each: count,sum,mean,std,min,max.
    #[arg(long, value_delimiter = ',', default_value = "mean")]
    stat: Vec<String>,
    /// Bounding box in map coordinates: xmin,ymin,xmax,ymax.
    #[arg(long, value_delimiter = ',', num_args = 4, allow_hyphen_values = true)]
    bbox: Vec<f64>,
    /// First date kept (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last date kept (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(clap::Args)]
struct ProductArgs {
    /// One multi-band file, or several single-band files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Names for the bands, in order.
    #[arg(long, value_delimiter = ',')]
    band_names: Vec<String>,
    /// The bands to multiply (default: all).
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    #[command(flatten)]
    out: OutArgs,
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
    #[command(flatten)]
    out: OutArgs,
}

fn ndi(args: NdiArgs) -> rasterlab::Result<()> {
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
    save_with(raster.norm_diff(&a, &b)?, args.out)
}

/// Applies nodata/scale, saves with the shared options and prints the report.
fn save_with(mut array: LazyArray, out: OutArgs) -> rasterlab::Result<()> {
    let compression: Compression = out.compress.parse()?;
    let memory = out.memory.as_deref().map(parse_bytes).transpose()?;
    if let Some(nd) = out.nodata {
        array = array.nodata(nd);
    }
    if let Some(s) = out.scale {
        array = array.scale(s);
    }
    let mut save = array
        .save(&out.output)
        .compress(compression)
        .progress(if out.quiet {
            ProgressMode::Silent
        } else {
            ProgressMode::Auto
        });
    if let Some(c) = out.chunks {
        save = save.chunks(c);
    }
    if let Some(t) = out.threads {
        save = save.threads(t);
    }
    if let Some(m) = memory {
        save = save.memory(m);
    }
    let profiler = out.profile.as_ref().map(|_| Profiler::new());
    if let Some(p) = &profiler {
        save = save.observe(p);
    }
    let report = save.run()?;
    println!("{report}");
    if let (Some(p), Some(path)) = (&profiler, &out.profile) {
        p.save_svg(path)?;
        println!("  profile:  {}", path.display());
    }
    Ok(())
}

fn reduce(args: ReduceArgs) -> rasterlab::Result<()> {
    if args.stack != "time" {
        return Err(rasterlab::Error::invalid(
            "--stack",
            format!("{:?}: reduce stacks along time", args.stack),
        ));
    }
    let files: Vec<PathBuf> = match &args.variable {
        Some(var) => args
            .files
            .iter()
            .map(|f| PathBuf::from(format!("NETCDF:\"{}\":{var}", f.display())))
            .collect(),
        None => args.files.clone(),
    };
    let mut raster = if !args.dates.is_empty() {
        let dates = args
            .dates
            .iter()
            .map(|d| parse_date(d))
            .collect::<rasterlab::Result<Vec<_>>>()?;
        Raster::open_time_stack(&files, &dates)?
    } else if files.len() == 1 {
        Raster::open(&files[0])?
    } else {
        Raster::open_stack(&files, Stack::Time)?
    };
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    if let [xmin, ymin, xmax, ymax] = args.bbox[..] {
        raster = raster.bbox(xmin, ymin, xmax, ymax)?;
    }
    if args.from.is_some() || args.to.is_some() {
        let start = args
            .from
            .as_deref()
            .map(parse_date)
            .transpose()?
            .unwrap_or(chrono::NaiveDate::MIN);
        let end = args
            .to
            .as_deref()
            .map(parse_date)
            .transpose()?
            .unwrap_or(chrono::NaiveDate::MAX);
        raster = raster.dates(start, end)?;
    }
    let band = match &args.band {
        Some(b) => b.clone(),
        None => raster.band_names()[0].to_string(),
    };
    let mut array = raster.band(&band)?;
    if let Some(period) = &args.resample {
        let period: Period = period.parse()?;
        array = array.resample(period).stat(args.resample_stat.parse()?);
    }
    let stats = args
        .stat
        .iter()
        .map(|s| s.parse())
        .collect::<rasterlab::Result<Vec<Stat>>>()?;
    save_with(array.reduce(&stats), args.out)
}

fn product(args: ProductArgs) -> rasterlab::Result<()> {
    let mut raster = if args.files.len() == 1 {
        Raster::open(&args.files[0])?
    } else {
        Raster::open_stack(&args.files, Stack::Band)?
    };
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    let names: Vec<String> = if args.bands.is_empty() {
        raster.band_names().iter().map(|s| s.to_string()).collect()
    } else {
        args.bands.clone()
    };
    let mut product = raster.band(&names[0])?;
    for name in &names[1..] {
        product = product * raster.band(name)?;
    }
    save_with(product, args.out)
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
        Command::Reduce(args) => reduce(*args)?,
        Command::Product(args) => product(*args)?,
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
