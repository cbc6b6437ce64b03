//! `rasterlab cluster`: clusters the valid pixels of a raster (bands as features) with
//! k-means, mini-batch k-means or spectral clustering, writes the label map and prints
//! a report. Under mpirun/srun only k-means runs, its iterations shared among the
//! ranks; the other methods are refused there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rasterlab::CancelToken;
use rasterlab::prelude::*;

use crate::output::{OutArgs, check_against_inputs, check_outputs, layout_arg, memory_arg};
use crate::{ranks, say};

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
/// The clustering methods of `--method`.
enum Method {
    /// Exact k-means (Lloyd iterations).
    Kmeans,
    /// Mini-batch k-means.
    Minibatch,
    /// Spectral clustering (Nystrom unless --exact).
    Spectral,
}

#[derive(Clone, Copy, clap::ValueEnum)]
/// The k-means initialisations of `--init`.
enum InitArg {
    /// Greedy k-means++ (scikit-learn).
    #[value(name = "kmeans++")]
    PlusPlus,
    /// k-means|| (dask-ml).
    #[value(name = "kmeans||")]
    Parallel,
}

/// Arguments of `rasterlab cluster`.
#[derive(clap::Args)]
pub(crate) struct ClusterArgs {
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

/// Clusters the pixels of FILE and writes the label map: the arguments are checked,
/// the samples read (or, when mini-batch k-means finds them over the memory budget,
/// streamed), the model fitted, the labels written and the report printed.
pub(crate) fn cluster(args: ClusterArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
    let out = &args.out;
    // Everything that can be refused is refused before the (long) read and fit.
    let (compression, layout, memory) = check_args(&args)?;
    let rt = node_runtime(out, memory)?;
    let start = Instant::now();
    let raster = open_raster(&args)?;
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
    let job = Job {
        args: &args,
        rt: rt.with_progress(progress),
        progress,
        compression,
        layout,
        start,
    };
    let in_memory = Samples::from_bands_in(&raster, &bands, &job.rt);
    let mut x = match (in_memory, args.method) {
        (Ok(x), _) => x,
        // Mini-batch k-means does not need the samples in memory: stream the raster.
        (Err(rasterlab::Error::MemoryBudget { .. }), Method::Minibatch) if !args.standardize => {
            stream_minibatch(&job, &raster, &bands, cancel)?;
            return finish_cluster_profile(profiler.as_mut(), out);
        }
        (Err(e), _) => return Err(e),
    };
    if args.standardize {
        x = x.standardize_in(&job.rt)?;
    }
    // `None` on the ranks other than 0 under mpirun: rank 0 writes and reports.
    let Some(fit) = fit(&job, &x)? else {
        return Ok(());
    };
    cancel.check()?;
    write_label_map(&job, &x, fit)?;
    finish_cluster_profile(profiler.as_mut(), out)
}

/// Refuses what can be refused before anything is read: unwritable outputs, `--k`,
/// `--compress`, `--cog` options, `--memory`, and a method other than k-means under
/// mpirun/srun. Returns the compression, layout and memory budget they give.
fn check_args(args: &ClusterArgs) -> rasterlab::Result<(Compression, Layout, Option<u64>)> {
    let out = &args.out;
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
    Ok((compression, layout, memory))
}

/// The one runtime of the command, from `--threads` and `--memory`: every read, fit and
/// metric runs on it. Under mpirun, each rank reads the samples and computes with its
/// share of the node.
fn node_runtime(out: &OutArgs, memory: Option<u64>) -> rasterlab::Result<Runtime> {
    let mut runtime = Runtime::builder();
    if let Some(t) = out.threads {
        runtime = runtime.threads(t);
    }
    if let Some(m) = memory {
        runtime = runtime.memory(m);
    }
    let shared = ranks::node_share(
        runtime.build()?.plan().clone(),
        out.threads.is_some(),
        memory.is_some(),
    )?;
    Ok(Runtime::from_plan(shared))
}

/// Opens FILE with `--band-names`, `--nodata`, `--scale` and `--chunks` applied, and
/// refuses an output or profile that is one of its files.
fn open_raster(args: &ClusterArgs) -> rasterlab::Result<Raster> {
    let out = &args.out;
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
    Ok(raster)
}

/// What the steps after opening share: the arguments, the runtime (with its progress
/// mode) every read, fit and metric runs on, and the form of the output.
struct Job<'a> {
    args: &'a ClusterArgs,
    rt: Runtime,
    progress: ProgressMode,
    compression: Compression,
    layout: Layout,
    /// When the command started (before opening FILE): the report's seconds count from it.
    start: Instant,
}

/// A fitted model, as the label map and the report need it.
struct Fit {
    labels: Vec<i32>,
    inertia: f64,
    iterations: usize,
    /// The method as the report names it.
    method: String,
}

/// Fits `--method` to the samples. `None` on MPI ranks other than 0, which print and
/// write nothing.
fn fit(job: &Job, x: &Samples) -> rasterlab::Result<Option<Fit>> {
    Ok(Some(match job.args.method {
        Method::Kmeans => return fit_kmeans(job, x),
        Method::Minibatch => {
            let m = minibatch(job).fit(x)?;
            Fit {
                labels: m.labels().to_vec(),
                inertia: m.inertia(),
                iterations: m.n_iter(),
                method: "mini-batch k-means".to_string(),
            }
        }
        Method::Spectral => fit_spectral(job, x)?,
    }))
}

/// Exact k-means with `--init`, `--n-init` and `--max-iter`. Under mpirun the iterations
/// are shared among the ranks; `None` on the ranks other than 0 (rank 0 writes).
fn fit_kmeans(job: &Job, x: &Samples) -> rasterlab::Result<Option<Fit>> {
    let args = job.args;
    let mut km = KMeans::new(args.k)
        .seed(args.seed)
        .n_init(args.n_init)
        .runtime(&job.rt)
        .progress(job.progress)
        .init(match args.init {
            InitArg::PlusPlus => Init::KMeansPlusPlus,
            InitArg::Parallel => Init::KMeansParallel,
        });
    if let Some(m) = args.max_iter {
        km = km.max_iter(m);
    }
    let Some(m) = ranks::fit_kmeans(&km, x)? else {
        return Ok(None);
    };
    Ok(Some(Fit {
        labels: m.labels().to_vec(),
        inertia: m.inertia(),
        iterations: m.n_iter(),
        method: "k-means".to_string(),
    }))
}

/// The mini-batch k-means estimator of the arguments, for in-memory samples and the
/// streamed raster alike.
fn minibatch(job: &Job) -> MiniBatchKMeans {
    let args = job.args;
    let mb = MiniBatchKMeans::new(args.k)
        .seed(args.seed)
        .n_init(args.n_init)
        .runtime(&job.rt)
        .progress(job.progress);
    match args.max_iter {
        Some(m) => mb.max_iter(m),
        None => mb,
    }
}

/// Spectral clustering (Nystrom unless `--exact`), with its inertia measured in feature
/// space so that the report compares with k-means.
fn fit_spectral(job: &Job, x: &Samples) -> rasterlab::Result<Fit> {
    use rasterlab::cluster::SpectralMode;
    let args = job.args;
    let sc = SpectralClustering::new(args.k)
        .seed(args.seed)
        .n_components(args.n_components)
        .mode(if args.exact {
            SpectralMode::Exact
        } else {
            SpectralMode::Nystrom
        })
        .threads(job.rt.threads())
        .progress(job.progress);
    let m = sc.fit(x)?;
    Ok(Fit {
        labels: m.labels().to_vec(),
        inertia: feature_inertia(x, m.labels(), args.k, &job.rt)?,
        iterations: m.n_iter(),
        method: format!("spectral ({}, gamma {:.4e})", m.mode(), m.gamma()),
    })
}

/// Inertia of `labels` in feature space: the squared distances of the samples to the
/// means of their clusters (spectral clustering has no centroids of its own).
fn feature_inertia(x: &Samples, labels: &[i32], k: usize, rt: &Runtime) -> rasterlab::Result<f64> {
    let d = x.n_features();
    let mut sums = ndarray::Array2::<f64>::zeros((k, d));
    let mut counts = vec![0usize; k];
    let xf = x.to_f64();
    for (row, &l) in xf.rows().into_iter().zip(labels) {
        let l = l as usize;
        counts[l] += 1;
        sums.row_mut(l).zip_mut_with(&row, |s, v| *s += v);
    }
    for (mut r, &c) in sums.rows_mut().into_iter().zip(&counts) {
        r.mapv_inplace(|v| v / c.max(1) as f64);
    }
    rasterlab::cluster::inertia_in(&xf, &sums, labels, rt)
}

/// Fits mini-batch k-means streaming the raster (its samples exceed the memory budget),
/// writes the labels chunk by chunk and prints the report.
fn stream_minibatch(
    job: &Job,
    raster: &Raster,
    bands: &[&str],
    cancel: &CancelToken,
) -> rasterlab::Result<()> {
    let model = minibatch(job).fit_raster_in(raster, bands, &job.rt)?;
    cancel.check()?;
    let path = model
        .write_labels(raster, bands, &job.args.out.output)
        .runtime(&job.rt)
        .compress(job.compression)
        .layout(job.layout)
        .progress(job.progress)
        .cancel_on(cancel)
        .run()?;
    let (w, h) = raster.size();
    let valid: usize = model.counts().iter().sum();
    ClusterReport {
        method: "mini-batch k-means (streamed: the samples exceed the memory budget)",
        k: job.args.k,
        samples: (valid, bands.len(), w * h - valid),
        inertia: model.inertia(),
        iterations: model.n_iter(),
        threads: job.rt.threads(),
        seconds: job.start.elapsed().as_secs_f64(),
        path: &path,
        layout: job.layout,
    }
    .print()
}

/// Writes the label map of the fitted samples (nodata where a pixel had none) and prints
/// the report.
fn write_label_map(job: &Job, x: &Samples, fit: Fit) -> rasterlab::Result<()> {
    let map = x.unstack(&fit.labels)?;
    let path = map.save_with_layout(&job.args.out.output, job.compression, job.layout)?;
    ClusterReport {
        method: &fit.method,
        k: job.args.k,
        samples: (x.n_samples(), x.n_features(), map.nodata_count()),
        inertia: fit.inertia,
        iterations: fit.iterations,
        threads: job.rt.threads(),
        seconds: job.start.elapsed().as_secs_f64(),
        path: &path,
        layout: job.layout,
    }
    .print()
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

/// Stops the profiler of `--profile`, if any, and writes its figure.
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
