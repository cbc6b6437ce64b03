//! `rasterlab cluster`: clusters the valid pixels of a raster (bands as features) with
//! k-means, mini-batch k-means or spectral clustering, writes the label map and prints
//! a report. Under mpirun/srun only k-means runs, its iterations shared among the
//! ranks; the other methods are refused there.

use std::path::{Path, PathBuf};

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

/// Clusters the pixels of FILE and writes the label map.
pub(crate) fn cluster(args: ClusterArgs, cancel: &CancelToken) -> rasterlab::Result<()> {
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
