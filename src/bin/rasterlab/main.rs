//! `rasterlab`: the command-line face of the library.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rasterlab::CancelToken;

mod align;
mod ranks;
mod run_plan;
mod signals;
use rasterlab::prelude::*;
use rasterlab::raster::time::parse_date;
use rasterlab::runtime::resources::parse_bytes;

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
    /// Execute a plan file written by `Save::to_plan_file` (under mpirun/srun: on every rank).
    Run(Box<run_plan::RunArgs>),
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
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
    // The options every writing command shares. The output holds Int16 labels with
    // nodata -1: a pixel that is nodata in any band gets no label.
    #[command(flatten)]
    out: OutArgs,
}

fn cluster(args: ClusterArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    use rasterlab::cluster::{SpectralMode, inertia_in};
    let out = &args.out;
    // Everything that can be refused is refused before the (long) read and fit.
    check_outputs(out)?;
    LabelMap::check_k(args.k)?;
    let compression: Compression = out.compress.parse()?;
    let layout = layout_arg(out, OverviewResampling::LABELS)?;
    let memory = memory_arg(out)?;
    if ranks::shared() && args.method != Method::Kmeans {
        return Err(rasterlab::Error::invalid(
            "--method",
            "under mpirun/srun only k-means is shared among ranks; run mini-batch and spectral clustering in one process",
        ));
    }
    // The one runtime of the command: every read, fit and metric below runs on it.
    let mut runtime = rasterlab::runtime::Runtime::builder();
    if let Some(t) = out.threads {
        runtime = runtime.threads(t);
    }
    if let Some(m) = memory {
        runtime = runtime.memory(m);
    }
    // Under mpirun, each rank reads the samples and computes with its share of the node.
    let shared = ranks::node_share(
        runtime.build()?.plan().clone(),
        out.threads.is_some(),
        memory.is_some(),
    )?;
    let rt = rasterlab::runtime::Runtime::from_plan(shared);
    let start = std::time::Instant::now();
    let mut raster = Raster::open(&args.file)?;
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    if let Some(nd) = out.nodata {
        raster = raster.with_nodata(Some(nd));
    }
    if let Some(s) = out.scale {
        raster = raster.with_scale(s, 0.0);
    }
    if let Some(c) = out.chunks {
        // the height of the strips the samples are read in
        raster = raster.chunks(c)?;
    }
    raster.check()?;
    check_against_inputs(out, &raster)?;
    // The estimators record no per-chunk tasks: the profile is CPU and memory over the run.
    let mut profiler = match &out.profile {
        Some(_) => Some(ResourceProfiler::start()?),
        None => None,
    };
    let bands: Vec<String> = if args.bands.is_empty() {
        raster.band_names().iter().map(|s| s.to_string()).collect()
    } else {
        args.bands.clone()
    };
    let bands: Vec<&str> = bands.iter().map(String::as_str).collect();
    let progress = if out.quiet {
        ProgressMode::Silent
    } else {
        ProgressMode::Auto
    };
    let rt = rt.with_progress(progress);
    let threads = rt.threads();
    let minibatch = || {
        let mb = MiniBatchKMeans::new(args.k)
            .seed(args.seed)
            .n_init(args.n_init)
            .runtime(&rt)
            .progress(progress);
        match args.max_iter {
            Some(m) => mb.max_iter(m),
            None => mb,
        }
    };
    let in_memory = Samples::from_bands_in(&raster, &bands, &rt);
    let mut x = match (in_memory, args.method) {
        (Ok(x), _) => x,
        // Mini-batch k-means does not need the samples in memory: stream the raster.
        (Err(rasterlab::Error::MemoryBudget { .. }), Method::Minibatch) if !args.standardize => {
            let model = minibatch().fit_raster_in(&raster, &bands, &rt)?;
            cancel.check()?;
            let path = model
                .write_labels(&raster, &bands, &out.output)
                .runtime(&rt)
                .compress(compression)
                .layout(layout)
                .progress(progress)
                .cancel_on(cancel)
                .run()?;
            let (w, h) = raster.size();
            let valid: usize = model.counts().iter().sum();
            ClusterReport {
                method: "mini-batch k-means (streamed: the samples exceed the memory budget)",
                k: args.k,
                samples: (valid, bands.len(), w * h - valid),
                inertia: model.inertia(),
                iterations: model.n_iter(),
                threads,
                seconds: start.elapsed().as_secs_f64(),
                path: &path,
                layout,
            }
            .print()?;
            return finish_cluster_profile(profiler.as_mut(), out);
        }
        (Err(e), _) => return Err(e),
    };
    if args.standardize {
        x = x.standardize_in(&rt)?;
    }
    let (labels, inertia_value, iterations, method) = match args.method {
        Method::Kmeans => {
            let mut km = KMeans::new(args.k)
                .seed(args.seed)
                .n_init(args.n_init)
                .runtime(&rt)
                .progress(progress)
                .init(match args.init {
                    InitArg::PlusPlus => Init::KMeansPlusPlus,
                    InitArg::Parallel => Init::KMeansParallel,
                });
            if let Some(m) = args.max_iter {
                km = km.max_iter(m);
            }
            // Under mpirun the iterations are shared among the ranks; rank 0 writes.
            let Some(m) = ranks::fit_kmeans(&km, &x)? else {
                return Ok(());
            };
            (
                m.labels().to_vec(),
                m.inertia(),
                m.n_iter(),
                "k-means".to_string(),
            )
        }
        Method::Minibatch => {
            let m = minibatch().fit(&x)?;
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
            let inertia_value = inertia_in(&xf, &sums, m.labels(), &rt)?;
            (
                m.labels().to_vec(),
                inertia_value,
                m.n_iter(),
                format!("spectral ({}, gamma {:.4e})", m.mode(), m.gamma()),
            )
        }
    };
    cancel.check()?;
    let map = x.unstack(&labels)?;
    let path = map.save_with_layout(&out.output, compression, layout)?;
    ClusterReport {
        method: &method,
        k: args.k,
        samples: (x.n_samples(), x.n_features(), map.nodata_count()),
        inertia: inertia_value,
        iterations,
        threads,
        seconds: start.elapsed().as_secs_f64(),
        path: &path,
        layout,
    }
    .print()?;
    finish_cluster_profile(profiler.as_mut(), out)
}

/// What `cluster` prints when it is done, in-memory or streamed alike.
struct ClusterReport<'a> {
    method: &'a str,
    k: usize,
    /// Valid pixels, features, nodata pixels.
    samples: (usize, usize, usize),
    inertia: f64,
    iterations: usize,
    threads: usize,
    seconds: f64,
    path: &'a Path,
    layout: Layout,
}

impl ClusterReport<'_> {
    fn print(&self) -> rasterlab::Result<()> {
        let (valid, features, nodata) = self.samples;
        say(format_args!("method:     {}", self.method))?;
        say(format_args!("k:          {}", self.k))?;
        say(format_args!(
            "samples:    {valid} valid pixels x {features} features ({nodata} nodata pixels)"
        ))?;
        say(format_args!("inertia:    {:.6}", self.inertia))?;
        say(format_args!("iterations: {}", self.iterations))?;
        say(format_args!("threads:    {}", self.threads))?;
        say(format_args!("seconds:    {:.3}", self.seconds))?;
        say(format_args!("output:     {}", self.path.display()))?;
        if self.layout.is_cog() {
            say(format_args!("layout:     {}", self.layout))?;
        }
        Ok(())
    }
}

fn finish_cluster_profile(
    profiler: Option<&mut ResourceProfiler>,
    out: &OutArgs,
) -> rasterlab::Result<()> {
    if let (Some(p), Some(svg)) = (profiler, &out.profile) {
        p.stop();
        p.save_svg(svg)?;
        say(format_args!("profile:    {}", svg.display()))?;
    }
    Ok(())
}

/// Refuses an output or profile path that is one of `raster`'s files, and a profile
/// written over the output.
fn check_against_inputs(out: &OutArgs, raster: &Raster) -> rasterlab::Result<()> {
    let outputs: Vec<&Path> = std::iter::once(out.output.as_path())
        .chain(out.profile.as_deref())
        .collect();
    rasterlab::raster::output::check_distinct(&outputs, &raster.source_files())
}

/// Options shared by every command that writes a raster.
#[derive(clap::Args)]
struct OutArgs {
    /// Input nodata value (overrides the files'); it must fit the input's type.
    #[arg(long, allow_negative_numbers = true)]
    nodata: Option<f64>,
    /// Input scale factor: physical = stored * scale (finite, non-zero).
    #[arg(long, allow_negative_numbers = true)]
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
    /// Write a Cloud-Optimized GeoTIFF with overviews (the file is rewritten once more).
    #[arg(long)]
    cog: bool,
    /// How the --cog overviews are computed: nearest, average, bilinear, cubic, mode
    /// [default: average; cluster: mode].
    #[arg(long, value_name = "METHOD", requires = "cog")]
    overview_resampling: Option<String>,
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
    /// Write the series itself (resampled with --resample), one band per time step or
    /// period named band@date, instead of statistics over time.
    #[arg(long, conflicts_with = "stat")]
    series: bool,
    /// Bounding box in map coordinates: `xmin,ymin,xmax,ymax` or `xmin ymin xmax ymax`.
    #[arg(long, value_parser = parse_bbox, allow_hyphen_values = true, value_name = "XMIN,YMIN,XMAX,YMAX")]
    bbox: Option<[f64; 4]>,
    /// First date kept (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last date kept (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    align: align::AlignArgs,
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
    align: align::AlignArgs,
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
    align: align::AlignArgs,
    #[command(flatten)]
    out: OutArgs,
}

fn ndi(args: NdiArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
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
            let files = [a.clone(), b.clone()];
            let r = align::open(&files, Stack::Band, None, args.align.align()?.as_ref())?
                .with_band_names(names)?;
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
            let files = [file.clone()];
            let mut r = align::open(&files, Stack::Band, None, args.align.align()?.as_ref())?;
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
    save_with(raster.norm_diff(&a, &b)?, args.out, cancel)
}

/// Refuses, before any input is read, an output (`-o`, `--profile`) that cannot be
/// written: a missing or read-only folder, a folder given as the file (including any
/// name ending in `/`, which names a folder whether it exists or not).
fn check_outputs(out: &OutArgs) -> rasterlab::Result<()> {
    for path in std::iter::once(&out.output).chain(&out.profile) {
        if path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::is_separator)
        {
            return Err(rasterlab::Error::Output {
                path: path.clone(),
                reason: "the name ends in a slash, so it names a folder; give a file name \
                         (allowed: a file in an existing, writable folder)"
                    .into(),
            });
        }
        check_output_path(path)?;
    }
    Ok(())
}

/// Refuses an output path that cannot be written (see [`check_outputs`]).
fn check_output_path(path: &Path) -> rasterlab::Result<()> {
    rasterlab::raster::write::check_output_path(path)
}

/// `--cog` and `--overview-resampling` (`default` when not given), parsed.
fn layout_arg(out: &OutArgs, default: OverviewResampling) -> rasterlab::Result<Layout> {
    if !out.cog {
        return Ok(Layout::Tiled);
    }
    let resampling = match &out.overview_resampling {
        Some(name) => name.parse()?,
        None => default,
    };
    Ok(Layout::Cog { resampling })
}

/// `--memory`, parsed; an error names the option and the form allowed.
fn memory_arg(out: &OutArgs) -> rasterlab::Result<Option<u64>> {
    out.memory.as_deref().map(parse_memory).transpose()
}

/// A `--memory` value; an error names the option and the form allowed.
fn parse_memory(m: &str) -> rasterlab::Result<u64> {
    parse_bytes(m).map_err(|e| {
        let why = match e {
            rasterlab::Error::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        rasterlab::Error::invalid(
            "--memory",
            format!("{why} (allowed: a size such as 512MiB or 2GiB)"),
        )
    })
}

/// `--bbox` as one token `xmin,ymin,xmax,ymax` (the four-token form is joined into it by
/// [`join_bbox`] before clap sees the arguments).
fn parse_bbox(s: &str) -> Result<[f64; 4], String> {
    let bad =
        || format!("{s:?}: allowed: four numbers xmin,ymin,xmax,ymax (or xmin ymin xmax ymax)");
    let v = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(bad)?;
    <[f64; 4]>::try_from(v).map_err(|_| bad())
}

/// Rewrites `--bbox XMIN YMIN XMAX YMAX` as `--bbox XMIN,YMIN,XMAX,YMAX`, so that both
/// documented forms parse and a comma form followed by positional files does not take
/// the files as coordinates (clap counts values per token, not per comma).
fn join_bbox(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        out.push(args[i].clone());
        let numbers = args.get(i + 1..i + 5).and_then(|next| {
            next.iter()
                .map(|a| a.to_str().and_then(|t| t.parse::<f64>().ok()).map(|_| a))
                .collect::<Option<Vec<_>>>()
        });
        if args[i] == "--bbox"
            && let Some(numbers) = numbers
        {
            let joined: Vec<&str> = numbers.iter().filter_map(|a| a.to_str()).collect();
            out.push(joined.join(",").into());
            i += 5;
        } else {
            i += 1;
        }
    }
    out
}

/// Writes one line of the report on stdout. A reader that went away (`| head -1`) comes
/// back as an I/O error on `<stdout>`, which `main` turns into a quiet exit with status
/// 141, what a shell reports for a tool killed by SIGPIPE.
fn say(line: impl Display) -> rasterlab::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| rasterlab::Error::Io {
            path: PathBuf::from("<stdout>"),
            source,
        })
}

/// Exit status of a run that stopped because stdout was closed: 128 + SIGPIPE (13).
const EXIT_CLOSED_STDOUT: u8 = 141;

/// Applies nodata/scale, saves with the shared options and prints the report.
fn save_with(mut array: LazyArray, out: OutArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_against_inputs(&out, array.raster())?;
    let compression: Compression = out.compress.parse()?;
    let layout = layout_arg(&out, OverviewResampling::CONTINUOUS)?;
    let memory = memory_arg(&out)?;
    if let Some(nd) = out.nodata {
        array = array.nodata(nd);
    }
    if let Some(s) = out.scale {
        array = array.scale(s);
    }
    let mut save = array
        .save(&out.output)
        .cancel_on(cancel)
        .compress(compression)
        .layout(layout)
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
    // Under mpirun, every rank runs this; only rank 0 has a report to print.
    let Some(report) = ranks::save(save, profiler.as_ref())? else {
        return Ok(());
    };
    say(&report)?;
    if let (Some(p), Some(path)) = (&profiler, &out.profile) {
        p.save_svg(path)?;
        say(format_args!("  profile:  {}", path.display()))?;
    }
    Ok(())
}

fn reduce(args: ReduceArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
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
    let dates = args
        .dates
        .iter()
        .map(|d| parse_date(d))
        .collect::<rasterlab::Result<Vec<_>>>()?;
    let dates = (!dates.is_empty()).then_some(dates.as_slice());
    let mut raster = align::open(&files, Stack::Time, dates, args.align.align()?.as_ref())?;
    if !args.band_names.is_empty() {
        raster = raster.with_band_names(args.band_names.clone())?;
    }
    if let Some([xmin, ymin, xmax, ymax]) = args.bbox {
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
    if args.series {
        return save_with(array, args.out, cancel);
    }
    let stats = args
        .stat
        .iter()
        .map(|s| s.parse())
        .collect::<rasterlab::Result<Vec<Stat>>>()?;
    save_with(array.reduce(&stats), args.out, cancel)
}

fn product(args: ProductArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    check_outputs(&args.out)?;
    let mut raster = align::open(&args.files, Stack::Band, None, args.align.align()?.as_ref())?;
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
    save_with(product, args.out, cancel)
}

fn run(cli: Cli, cancel: &CancelToken) -> rasterlab::Result<()> {
    match cli.command {
        Command::Resources => {
            let res = Resources::detect();
            say(&res)?;
            say(res.plan()?)?;
        }
        Command::Info { file } => say(Raster::open(file)?)?,
        Command::Ndi(args) => ndi(*args, cancel)?,
        Command::Reduce(args) => reduce(*args, cancel)?,
        Command::Product(args) => product(*args, cancel)?,
        Command::Cluster(args) => cluster(*args, cancel)?,
        Command::Run(args) => {
            if let Some(report) = run_plan::run(*args, cancel)? {
                say(&report)?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // GDAL prints its own errors on stderr; ours carry the same message with context.
    gdal::config::set_error_handler(|_, _, _| {});
    let cli = Cli::parse_from(join_bbox(std::env::args_os().collect()));
    let interrupts = match signals::Interrupts::install() {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = ranks::init().and_then(|()| run(cli, interrupts.token()));
    ranks::finish();
    if let Some(code) = interrupts.exit_code() {
        // Interrupted: the run has stopped and removed its temporary file.
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            match &result {
                Err(e) => format!("error: {e}"),
                Ok(()) => "interrupted".to_string(),
            }
        );
        return ExitCode::from(code);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(rasterlab::Error::Io { path, source })
            if path == Path::new("<stdout>") && source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::from(EXIT_CLOSED_STDOUT)
        }
        Err(e) => {
            // stderr may be closed too: nothing more to do about it than exit non-zero
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}
