//! Exact k-means: k-means++ (greedy, as scikit-learn) or k-means‖ (as dask-ml)
//! initialisation, then Lloyd iterations over fixed chunks of samples on a rayon pool.
//!
//! ## Numerics
//! * `f32` input stays `f32` in the distance kernel (half the memory traffic and twice
//!   the SIMD lanes); centroids are kept in `f64`, per-cluster sums and the inertia are
//!   accumulated in `f64`, so millions of pixels do not lose precision. `f64` input is
//!   `f64` throughout.
//! * `tol` is relative, as in scikit-learn: iterations stop when the sum over clusters of
//!   the squared centroid shift is at most `tol * mean(var(feature))`, or at once when no
//!   label changed ("strict convergence").
//! * Empty clusters are re-seeded with the points farthest from their centroid, as
//!   scikit-learn does.
//!
//! ## Lloyd or Hamerly
//! Both are implemented ([`Algorithm`]). Measured on the Landsat scene (3,169,229 pixels x
//! 3 bands, k = 8, f32, best of 3, on a shared 2-core machine): a Lloyd iteration takes
//! 42-47 ms on 2 threads (76-87 ms on 1), a Hamerly iteration 37-42 ms (65-75 ms on 1),
//! but Hamerly's first iteration (two nearest distances and the bounds for every
//! sample) costs about 0.15 s more, so on the 16 to 74 iterations this scene needs the
//! two are within 10 % of each other. With 3 features a distance to all 8 centroids is a
//! few vector instructions (centroids stored transposed, 8 per block), about what reading
//! and updating Hamerly's two bounds per sample costs. Bounds pay when distances are
//! expensive: many features (303-day series) or many clusters. [`Algorithm::Auto`] uses
//! Lloyd when `k * features <= 64`, which also reports the inertia of every iteration
//! (Hamerly skips distances and cannot), and Hamerly otherwise.
//!
//! ## Determinism
//! Samples are processed in chunks of a fixed size whose partial results (sums, counts,
//! inertia) are reduced in chunk order, and random draws come from a seeded generator
//! whose stream is part of this crate. The same seed gives the same model on any number
//! of threads.

use std::fmt;
use std::time::Instant;

use ndarray::Array2;
use rayon::prelude::*;

use super::samples::{LabelMap, SourceGrid};
use super::stats::column_stats;
use super::{AsFeatures, CHUNK, Data, FeatureView, Real, Rng, check_finite, check_k, fmt_num};
use crate::core::fmt::{emit, html_table};
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::runtime::progress::{Progress, ProgressMode};

/// How the initial centroids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// Greedy k-means++ as scikit-learn: each new centroid is the best (lowest potential)
    /// of `2 + ln k` candidates drawn with probability proportional to the squared
    /// distance to the nearest centroid so far.
    #[default]
    KMeansPlusPlus,
    /// k-means‖ (Bahmani et al. 2012, as dask-ml): 5 rounds that each draw about `2 k`
    /// candidates at once, weighted by the number of samples nearest to each, reduced to
    /// `k` by weighted k-means++ and Lloyd on the candidates. Fewer passes over the data
    /// than k-means++ when `k` is large.
    KMeansParallel,
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::KMeansPlusPlus => "k-means++",
            Init::KMeansParallel => "k-means||",
        })
    }
}

/// How each iteration assigns samples to centroids. All give the same clustering (up to
/// floating-point ties); they differ in speed only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Lloyd when `k * features <= 64`, Hamerly otherwise (see the module notes).
    #[default]
    Auto,
    /// Every sample is compared with every centroid in every iteration.
    Lloyd,
    /// Hamerly's bounds skip samples whose nearest centroid cannot have changed.
    Hamerly,
}

impl Algorithm {
    fn resolve(self, k: usize, d: usize) -> Algorithm {
        match self {
            Algorithm::Auto if k * d <= 64 => Algorithm::Lloyd,
            Algorithm::Auto => Algorithm::Hamerly,
            other => other,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Auto => "auto",
            Algorithm::Lloyd => "lloyd",
            Algorithm::Hamerly => "hamerly",
        })
    }
}

/// k-means parameters: a builder, validated when [`fit`](KMeans::fit) runs.
///
/// Defaults follow scikit-learn: k-means++, `n_init` 1, `max_iter` 300, `tol` 1e-4,
/// seed 0, all usable cores.
///
/// ```
/// use rasterlab::prelude::*;
/// use ndarray::Array2;
///
/// // three blobs on a line
/// let x = Array2::from_shape_fn((300, 2), |(i, j)| (i / 100) as f64 * 10.0 + (i % 7) as f64 * 0.1 + j as f64);
/// let km = KMeans::new(3).seed(42).n_init(2).max_iter(100).tol(1e-6).fit(&x)?;
/// assert_eq!(km.centroids().dim(), (3, 2));
/// assert_eq!(km.counts(), &[100, 100, 100]);
/// assert!(km.inertia() < 30.0); // 300 points x 2 features x variance about 0.04
/// assert_eq!(km.predict(&x)?, km.labels());
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KMeans {
    k: usize,
    seed: u64,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    init: Init,
    algorithm: Algorithm,
    threads: Option<usize>,
    progress: ProgressMode,
}

impl KMeans {
    /// k-means with `k` clusters.
    pub fn new(k: usize) -> KMeans {
        KMeans {
            k,
            seed: 0,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            init: Init::KMeansPlusPlus,
            algorithm: Algorithm::Auto,
            threads: None,
            progress: ProgressMode::Auto,
        }
    }

    /// Seed of the random initialisation (default 0).
    pub fn seed(mut self, seed: u64) -> KMeans {
        self.seed = seed;
        self
    }

    /// Number of initialisations; the run with the lowest inertia wins (default 1).
    pub fn n_init(mut self, n: usize) -> KMeans {
        self.n_init = n;
        self
    }

    /// Maximum number of Lloyd iterations per run (default 300).
    pub fn max_iter(mut self, n: usize) -> KMeans {
        self.max_iter = n;
        self
    }

    /// Relative tolerance on the centroid shift (default 1e-4; see the module notes).
    pub fn tol(mut self, tol: f64) -> KMeans {
        self.tol = tol;
        self
    }

    /// Initialisation method (default [`Init::KMeansPlusPlus`]).
    pub fn init(mut self, init: Init) -> KMeans {
        self.init = init;
        self
    }

    /// Assignment algorithm (default [`Algorithm::Auto`]).
    pub fn algorithm(mut self, algorithm: Algorithm) -> KMeans {
        self.algorithm = algorithm;
        self
    }

    /// Worker threads (default: the usable cores, or `RASTERLAB_THREADS`).
    pub fn threads(mut self, n: usize) -> KMeans {
        self.threads = Some(n);
        self
    }

    /// Progress reporting per iteration (default [`ProgressMode::Auto`]).
    pub fn progress(mut self, mode: ProgressMode) -> KMeans {
        self.progress = mode;
        self
    }

    /// The number of clusters.
    pub fn k(&self) -> usize {
        self.k
    }

    fn validate(&self) -> Result<()> {
        if self.n_init == 0 {
            return Err(Error::invalid(
                "n_init",
                "at least one initialisation is needed",
            ));
        }
        if self.max_iter == 0 {
            return Err(Error::invalid(
                "max_iter",
                "at least one iteration is needed",
            ));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::invalid(
                "tol",
                format!("{}: must be a finite number >= 0", self.tol),
            ));
        }
        Ok(())
    }

    /// Fits the centroids to `x` (samples in rows): [`Samples`](super::Samples),
    /// `Array2<f32>` or `Array2<f64>`.
    ///
    /// Errors: [`Error::Invalid`] for `k = 0` or bad parameters,
    /// [`Error::NoValidSamples`] for an empty matrix, [`Error::TooFewSamples`] when
    /// `k` exceeds the number of samples, [`Error::NonFinite`] for NaN or infinite values.
    pub fn fit(&self, x: &(impl AsFeatures + ?Sized)) -> Result<KMeansModel> {
        super::check_label_k(self.k, x)?;
        self.fit_view(x.features(), x.feature_names())
    }

    fn fit_view(&self, x: FeatureView<'_>, names: Option<Vec<String>>) -> Result<KMeansModel> {
        self.validate()?;
        let (n, d) = x.dim();
        check_k(self.k, n, d)?;
        let plan = super::plan(self.threads)?;
        let pool = plan.build_pool()?;
        let start = Instant::now();
        let mut model = match x {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| self.fit_data(data))?
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| self.fit_data(data))?
            }
        };
        model.threads = plan.threads();
        model.seconds = start.elapsed().as_secs_f64();
        model.feature_names = names.unwrap_or_else(|| (0..d).map(|j| format!("f{j}")).collect());
        Ok(model)
    }

    fn fit_data<T: Real>(&self, data: Data<'_, T>) -> Result<KMeansModel> {
        check_finite(data)?;
        let tol = tolerance(data, self.tol);
        let algorithm = self.algorithm.resolve(self.k, data.d);
        let mut rng = Rng::new(self.seed);
        let mut best: Option<RunOutput> = None;
        for run in 0..self.n_init {
            let run_seed = rng.next_u64();
            let mut run_rng = Rng::new(run_seed);
            let init = match self.init {
                Init::KMeansPlusPlus => kmeans_plusplus(data, self.k, None, &mut run_rng),
                Init::KMeansParallel => kmeans_parallel(data, self.k, run_seed),
            };
            let label = if self.n_init > 1 {
                format!("k-means run {}/{}", run + 1, self.n_init)
            } else {
                "k-means".to_string()
            };
            let out = lloyd(
                data,
                init,
                self.max_iter,
                tol,
                algorithm,
                self.progress,
                &label,
            );
            if best.as_ref().is_none_or(|b| out.inertia < b.inertia) {
                best = Some(out);
            }
        }
        let best = best.ok_or_else(|| Error::invalid("n_init", "no run was made"))?;
        Ok(KMeansModel {
            centroids: Array2::from_shape_vec((self.k, data.d), best.centroids)
                .map_err(|e| Error::invalid("centroids", e.to_string()))?,
            labels: best.labels,
            counts: best.counts,
            inertia: best.inertia,
            n_iter: best.n_iter,
            converged: best.converged,
            init: self.init,
            algorithm,
            n_init: self.n_init,
            seed: self.seed,
            threads: 0,
            seconds: 0.0,
            feature_names: Vec::new(),
        })
    }
}

pub(crate) fn data_of<'a, T: Real, S: ndarray::Data<Elem = T>>(
    a: &'a ndarray::ArrayBase<S, ndarray::Ix2>,
) -> Result<Data<'a, T>> {
    let (n, d) = a.dim();
    let x = a
        .as_slice()
        .ok_or_else(|| Error::invalid("features", "matrix is not in standard layout"))?;
    Ok(Data { x, n, d })
}

/// A fitted k-means model.
///
/// Renders as a small table in a notebook (`evcxr_display`) and as text with `{}`.
#[derive(Debug, Clone)]
pub struct KMeansModel {
    centroids: Array2<f64>,
    labels: Vec<i32>,
    counts: Vec<usize>,
    inertia: f64,
    n_iter: usize,
    converged: bool,
    init: Init,
    algorithm: Algorithm,
    n_init: usize,
    seed: u64,
    threads: usize,
    seconds: f64,
    feature_names: Vec<String>,
}

impl KMeansModel {
    /// Assembles a model from its parts (used by mini-batch k-means).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        centroids: Array2<f64>,
        labels: Vec<i32>,
        counts: Vec<usize>,
        inertia: f64,
        n_iter: usize,
        converged: bool,
        seed: u64,
        feature_names: Vec<String>,
    ) -> KMeansModel {
        KMeansModel {
            centroids,
            labels,
            counts,
            inertia,
            n_iter,
            converged,
            init: Init::KMeansPlusPlus,
            algorithm: Algorithm::Lloyd,
            n_init: 1,
            seed,
            threads: 0,
            seconds: 0.0,
            feature_names,
        }
    }

    pub(crate) fn with_feature_names(mut self, names: Vec<String>) -> KMeansModel {
        if names.len() == self.centroids.ncols() {
            self.feature_names = names;
        }
        self
    }

    pub(crate) fn set_timing(&mut self, threads: usize, seconds: f64) {
        self.threads = threads;
        self.seconds = seconds;
    }

    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.nrows()
    }

    /// The centroids, `k x features`, in the units of the fitted data.
    pub fn centroids(&self) -> &Array2<f64> {
        &self.centroids
    }

    /// The cluster (0..k) of every fitted sample, in sample order. Empty for models fitted
    /// by streaming a raster ([`MiniBatchKMeans::fit_raster`](super::MiniBatchKMeans::fit_raster)).
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Number of fitted samples in each cluster.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Sum of squared distances of the samples to their centroid (not square-rooted,
    /// as scikit-learn's `inertia_`).
    pub fn inertia(&self) -> f64 {
        self.inertia
    }

    /// Iterations of the best run (for mini-batch: passes over the data, rounded up).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// True when the best run stopped before `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Wall-clock seconds of the fit.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// Names of the features (band names for raster samples, `f0`, `f1` ... otherwise).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The nearest centroid of each row of `x`.
    ///
    /// Errors: a different number of features, or non-finite values.
    pub fn predict(&self, x: &(impl AsFeatures + ?Sized)) -> Result<Vec<i32>> {
        self.predict_view(x.features(), None)
    }

    pub(crate) fn predict_view(
        &self,
        x: FeatureView<'_>,
        threads: Option<usize>,
    ) -> Result<Vec<i32>> {
        let (n, d) = x.dim();
        if d != self.centroids.ncols() {
            return Err(Error::invalid(
                "features",
                format!(
                    "the model was fitted on {} features, got {d}",
                    self.centroids.ncols()
                ),
            ));
        }
        let mut labels = vec![-1i32; n];
        if n == 0 {
            return Ok(labels);
        }
        let pool = super::plan(threads)?.build_pool()?;
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::invalid("centroids", "not contiguous"))?;
        match x {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| {
                    check_finite(data)?;
                    assign(data, &Packed::new(cent, self.k(), d), &mut labels, false);
                    Ok::<_, Error>(())
                })?;
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| {
                    check_finite(data)?;
                    assign(data, &Packed::new(cent, self.k(), d), &mut labels, false);
                    Ok::<_, Error>(())
                })?;
            }
        }
        Ok(labels)
    }

    /// Labels every pixel of `raster` (its bands `bands` as features, in the order the
    /// model was fitted), streaming full-width strips in parallel; pixels that are nodata
    /// in any band get -1. Use it for models fitted by
    /// [`MiniBatchKMeans::fit_raster`](super::MiniBatchKMeans::fit_raster) or on a sample
    /// of the pixels.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0))
    ///     .with_scale(1e-4, 0.0);
    /// let x = Samples::from_window(&scene, &["green", "red"], Window::new(500, 500, 200, 200))?;
    /// let km = KMeans::new(3).fit(&x)?;
    /// let map = km.predict_raster(&scene, &["green", "red"])?;
    /// assert_eq!(map.valid_count(), 3_169_229);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn predict_raster(&self, raster: &Raster, bands: &[&str]) -> Result<LabelMap> {
        self.check_bands(raster, bands)?;
        let d = self.centroids.ncols();
        let plan = super::plan(None)?;
        let (w, h) = raster.size();
        let needed = (w as u64) * (h as u64) * 4;
        if needed > plan.memory_budget() {
            return Err(Error::MemoryBudget {
                what: format!("the label map of {w} x {h} pixels"),
                needed,
                budget: plan.memory_budget(),
                hint: "KMeansModel::write_labels writes the labels to a file strip by strip \
                       instead"
                    .into(),
            });
        }
        crate::raster::limit_gdal_cache();
        let pool = plan.build_pool()?;
        let windows = super::samples::strips(raster, d, plan.chunk_bytes() as usize);
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::invalid("centroids", "not contiguous"))?;
        let packed = Packed::<f32>::new(cent, self.k(), d);
        let mut map = vec![-1i32; w * h];
        pool.install(|| {
            let mut rest: &mut [i32] = &mut map;
            let mut parts = Vec::with_capacity(windows.len());
            for win in &windows {
                let (head, tail) = rest.split_at_mut(win.len());
                parts.push((*win, head));
                rest = tail;
            }
            parts.into_par_iter().try_for_each(|(win, out)| {
                let (vals, idx) = super::samples::read_valid(raster, bands, win)?;
                let offset = win.y * w;
                for (row, p) in vals.chunks_exact(d).zip(idx) {
                    out[p - offset] = packed.nearest(row).0 as i32;
                }
                Ok::<_, Error>(())
            })
        })?;
        let labels = Array2::from_shape_vec((h, w), map)
            .map_err(|e| Error::invalid("label map", e.to_string()))?;
        LabelMap::new(labels, SourceGrid::of(raster))
    }

    /// `bands` name one band of `raster` per feature the model was fitted on.
    pub(crate) fn check_bands(&self, raster: &Raster, bands: &[&str]) -> Result<()> {
        let d = self.centroids.ncols();
        if bands.len() != d {
            return Err(Error::invalid(
                "bands",
                format!(
                    "the model was fitted on {d} features, {} bands given",
                    bands.len()
                ),
            ));
        }
        for b in bands {
            raster.band_index(b)?;
        }
        Ok(())
    }

    fn summary_rows(&self) -> Vec<(&'static str, String)> {
        let n: usize = self.counts.iter().sum();
        vec![
            ("k", self.k().to_string()),
            (
                "samples",
                format!("{n} x {} features", self.centroids.ncols()),
            ),
            ("inertia", fmt_num(self.inertia)),
            (
                "iterations",
                format!(
                    "{}{}",
                    self.n_iter,
                    if self.converged {
                        " (converged)"
                    } else {
                        " (max_iter reached)"
                    }
                ),
            ),
            (
                "init",
                format!("{} x {}, seed {}", self.init, self.n_init, self.seed),
            ),
            ("algorithm", self.algorithm.to_string()),
            (
                "time",
                format!("{:.3} s on {} thread(s)", self.seconds, self.threads),
            ),
        ]
    }

    fn centroid_table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["cluster".to_string(), "count".to_string()];
        header.extend(self.feature_names.iter().cloned());
        let rows = self
            .centroids
            .rows()
            .into_iter()
            .enumerate()
            .map(|(c, row)| {
                let mut r = vec![
                    c.to_string(),
                    self.counts.get(c).copied().unwrap_or(0).to_string(),
                ];
                r.extend(row.iter().map(|v| fmt_num(*v)));
                r
            })
            .collect();
        (header, rows)
    }

    /// The model as one HTML block: a summary table and the centroids.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = ndarray::array![[0.0], [1.0], [10.0], [11.0]];
    /// let html = KMeans::new(2).fit(&x)?.to_html();
    /// assert!(html.contains("inertia") && html.contains("centroids"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        let (header, rows) = self.centroid_table();
        format!(
            "<div>{}{}</div>",
            html_table("KMeansModel", &self.summary_rows()),
            super::html_matrix("centroids", &header, &rows)
        )
    }

    /// Renders the model in an evcxr notebook cell.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_html());
    }
}

impl fmt::Display for KMeansModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "KMeansModel")?;
        for (name, value) in self.summary_rows() {
            writeln!(f, "  {name:<11} {value}")?;
        }
        let (header, rows) = self.centroid_table();
        write_text_matrix(f, &header, &rows)
    }
}

/// Writes a right-aligned text table.
pub(crate) fn write_text_matrix(
    f: &mut fmt::Formatter<'_>,
    header: &[String],
    rows: &[Vec<String>],
) -> fmt::Result {
    let widths: Vec<usize> = (0..header.len())
        .map(|j| {
            rows.iter()
                .filter_map(|r| r.get(j).map(String::len))
                .chain([header[j].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(f, "  {}", line(header))?;
    for r in rows {
        writeln!(f, "  {}", line(r))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Kernels

/// Centroids stored for the distance kernel: blocks of 8 centroids, feature-major inside a
/// block (`[block][feature][lane]`), so one sample's distances to 8 centroids are 8-wide
/// vector operations. Lanes past `k` hold +inf and are never nearest.
pub(crate) struct Packed<T> {
    data: Vec<T>,
    rows: Vec<T>,
    k: usize,
    d: usize,
    blocks: usize,
}

#[inline(always)]
fn mn<T: Real>(a: T, b: T) -> T {
    if b < a { b } else { a }
}

/// Minimum of 8 lanes as a tree (vector min instructions, short dependency chain).
#[inline(always)]
fn min8<T: Real>(a: &[T; 8]) -> T {
    let m4 = [
        mn(a[0], a[4]),
        mn(a[1], a[5]),
        mn(a[2], a[6]),
        mn(a[3], a[7]),
    ];
    let m2 = [mn(m4[0], m4[2]), mn(m4[1], m4[3])];
    mn(m2[0], m2[1])
}

/// Lowest-index minimum of 8 lanes as a tree of selects (no data-dependent branch).
#[inline(always)]
fn argmin8<T: Real>(a: &[T; 8]) -> (usize, T) {
    let mut v4 = [T::zero(); 4];
    let mut i4 = [0u32; 4];
    for i in 0..4 {
        let take = a[i + 4] < a[i];
        v4[i] = if take { a[i + 4] } else { a[i] };
        i4[i] = if take { i as u32 + 4 } else { i as u32 };
    }
    let pick = |va: T, ia: u32, vb: T, ib: u32| {
        let take = (vb < va) | ((vb == va) & (ib < ia));
        if take { (vb, ib) } else { (va, ia) }
    };
    let (v0, i0) = pick(v4[0], i4[0], v4[2], i4[2]);
    let (v1, i1) = pick(v4[1], i4[1], v4[3], i4[3]);
    let (v, i) = pick(v0, i0, v1, i1);
    (i as usize, v)
}

/// Index of the first lane equal to `m` (which is one of the lanes), without branches.
#[inline(always)]
fn first_eq<T: Real>(a: &[T; 8], m: T) -> usize {
    let mut mask = 0u32;
    for (l, &v) in a.iter().enumerate() {
        mask |= u32::from(v == m) << l;
    }
    mask.trailing_zeros() as usize
}

impl<T: Real> Packed<T> {
    /// From `k x d` row-major centroids.
    pub fn new(centroids: &[f64], k: usize, d: usize) -> Packed<T> {
        let blocks = k.div_ceil(8);
        let mut data = vec![T::infinity(); blocks * d * 8];
        for c in 0..k {
            let (b, l) = (c / 8, c % 8);
            for j in 0..d {
                data[(b * d + j) * 8 + l] = T::of(centroids[c * d + j]);
            }
        }
        Packed {
            data,
            rows: centroids.iter().map(|&v| T::of(v)).collect(),
            k,
            d,
            blocks,
        }
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.k
    }

    #[inline(always)]
    fn block(&self, x: &[T], b: usize) -> [T; 8] {
        let mut acc = [T::zero(); 8];
        let block = &self.data[b * self.d * 8..(b + 1) * self.d * 8];
        for (c, &xj) in block.chunks_exact(8).zip(x) {
            for l in 0..8 {
                let t = xj - c[l];
                acc[l] = acc[l] + t * t;
            }
        }
        acc
    }

    /// Nearest centroid and its squared distance (first index wins ties). Branch-free
    /// inside a block: a data-dependent `if v < best` per centroid mispredicted so often
    /// that it took a quarter of the iteration time.
    #[inline(always)]
    pub fn nearest(&self, x: &[T]) -> (usize, T) {
        let mut best = T::infinity();
        let mut arg = 0;
        for b in 0..self.blocks {
            let acc = self.block(x, b);
            let m = min8(&acc);
            if m < best {
                best = m;
                arg = b * 8 + first_eq(&acc, m);
            }
        }
        (arg, best)
    }

    /// The centroid blocks as fixed-size arrays, for [`nearest_fixed`].
    fn typed_blocks<const D: usize>(&self) -> Vec<[[T; 8]; D]> {
        (0..self.blocks)
            .map(|b| {
                let mut blk = [[T::infinity(); 8]; D];
                for (j, lanes) in blk.iter_mut().enumerate() {
                    lanes.copy_from_slice(&self.data[(b * D + j) * 8..(b * D + j + 1) * 8]);
                }
                blk
            })
            .collect()
    }

    /// Nearest centroid, its squared distance and the second-smallest squared distance.
    #[inline(always)]
    fn nearest2(&self, x: &[T]) -> (usize, T, T) {
        let mut best = T::infinity();
        let mut second = T::infinity();
        let mut arg = 0;
        for b in 0..self.blocks {
            let mut acc = self.block(x, b);
            let m = min8(&acc);
            let l = first_eq(&acc, m);
            acc[l] = T::infinity();
            let m2 = min8(&acc);
            if m < best {
                second = if best < m2 { best } else { m2 };
                best = m;
                arg = b * 8 + l;
            } else if m < second {
                second = m;
            }
        }
        (arg, best, second)
    }

    /// Squared distance to centroid `c`.
    #[inline(always)]
    fn dist2(&self, x: &[T], c: usize) -> T {
        let row = &self.rows[c * self.d..(c + 1) * self.d];
        let mut acc = T::zero();
        for (&a, &b) in x.iter().zip(row) {
            let t = a - b;
            acc = acc + t * t;
        }
        acc
    }
}

/// Partial result of one chunk of an assignment pass.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<f64>,
    inertia: f64,
    changed: usize,
}

impl Partial {
    fn new(k: usize, d: usize, accumulate: bool) -> Partial {
        Partial {
            sums: if accumulate {
                vec![0.0; k * d]
            } else {
                Vec::new()
            },
            counts: vec![0.0; k],
            inertia: 0.0,
            changed: 0,
        }
    }

    #[inline(always)]
    fn record<T: Real>(&mut self, c: usize, dist: T, row: &[T], label: &mut i32, accumulate: bool) {
        if *label != c as i32 {
            self.changed += 1;
            *label = c as i32;
        }
        self.inertia += dist.as_f64();
        if accumulate {
            self.add(c, row);
        } else {
            self.counts[c] += 1.0;
        }
    }

    #[inline(always)]
    fn add<T: Real>(&mut self, c: usize, row: &[T]) {
        self.counts[c] += 1.0;
        let d = row.len();
        for (s, v) in self.sums[c * d..(c + 1) * d].iter_mut().zip(row) {
            *s += v.as_f64();
        }
    }

    /// Adds chunk partials in chunk order (deterministic).
    fn reduce(parts: Vec<Partial>, k: usize, d: usize, accumulate: bool) -> Partial {
        let mut total = Partial::new(k, d, accumulate);
        for p in parts {
            for (a, b) in total.sums.iter_mut().zip(&p.sums) {
                *a += b;
            }
            for (a, b) in total.counts.iter_mut().zip(&p.counts) {
                *a += b;
            }
            total.inertia += p.inertia;
            total.changed += p.changed;
        }
        total
    }
}

/// Assigns every sample to its nearest centroid; with `accumulate`, also sums the
/// samples per cluster. Returns counts, inertia (with these centroids) and the number of
/// labels that changed.
fn assign<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    labels: &mut [i32],
    accumulate: bool,
) -> Partial {
    let (k, d) = (packed.k, data.d);
    let parts: Vec<Partial> = labels
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(ci, lab)| {
            let start = ci * CHUNK;
            let x = &data.x[start * d..(start + lab.len()) * d];
            let mut p = Partial::new(k, d, accumulate);
            // the distance loop fully unrolled for the usual few bands
            match d {
                1 => assign_fixed::<T, 1>(x, packed, lab, accumulate, &mut p),
                2 => assign_fixed::<T, 2>(x, packed, lab, accumulate, &mut p),
                3 => assign_fixed::<T, 3>(x, packed, lab, accumulate, &mut p),
                4 => assign_fixed::<T, 4>(x, packed, lab, accumulate, &mut p),
                5 => assign_fixed::<T, 5>(x, packed, lab, accumulate, &mut p),
                6 => assign_fixed::<T, 6>(x, packed, lab, accumulate, &mut p),
                7 => assign_fixed::<T, 7>(x, packed, lab, accumulate, &mut p),
                8 => assign_fixed::<T, 8>(x, packed, lab, accumulate, &mut p),
                _ => {
                    for (row, l) in x.chunks_exact(d).zip(lab.iter_mut()) {
                        let (c, dist) = packed.nearest(row);
                        p.record(c, dist, row, l, accumulate);
                    }
                }
            }
            p
        })
        .collect();
    Partial::reduce(parts, k, d, accumulate)
}

/// Nearest of the centroids in `blocks` (see [`Packed::typed_blocks`]): with the number
/// of features known at compile time the blocks stay in vector registers.
#[inline(always)]
fn nearest_fixed<T: Real, const D: usize>(blocks: &[[[T; 8]; D]], x: &[T; D]) -> (usize, T) {
    let mut best = T::infinity();
    let mut arg = 0;
    for (b, blk) in blocks.iter().enumerate() {
        let mut acc = [T::zero(); 8];
        for j in 0..D {
            let xj = x[j];
            for l in 0..8 {
                let t = xj - blk[j][l];
                acc[l] = acc[l] + t * t;
            }
        }
        let (l, m) = argmin8(&acc);
        if m < best {
            best = m;
            arg = b * 8 + l;
        }
    }
    (arg, best)
}

#[inline(always)]
fn assign_fixed<T: Real, const D: usize>(
    x: &[T],
    packed: &Packed<T>,
    lab: &mut [i32],
    accumulate: bool,
    p: &mut Partial,
) {
    // Neighbouring pixels usually fall in the same cluster, so adding each sample into
    // sums[cluster] makes a chain of dependent read-modify-writes. Four interleaved
    // copies of the sums break the chain; they are added up at the end of the chunk.
    let k = packed.k;
    let blocks = packed.typed_blocks::<D>();
    let mut sums = vec![[0.0f64; D]; 4 * k];
    let mut counts = vec![0.0f64; 4 * k];
    let mut inertia = [0.0f64; 4];
    // k <= 8: the one block as a local value, which the stores below cannot alias, so it
    // stays in registers instead of being reloaded for every sample
    let single: Option<[[T; 8]; D]> = (blocks.len() == 1).then(|| blocks[0]);
    for (o, (row, l)) in x.chunks_exact(D).zip(lab.iter_mut()).enumerate() {
        let Ok(row) = <&[T; D]>::try_from(row) else {
            continue;
        };
        let (c, dist) = match &single {
            Some(blk) => nearest_fixed::<T, D>(std::slice::from_ref(blk), row),
            None => nearest_fixed::<T, D>(&blocks, row),
        };
        if *l != c as i32 {
            p.changed += 1;
            *l = c as i32;
        }
        let lane = o & 3;
        inertia[lane] += dist.as_f64();
        counts[lane * k + c] += 1.0;
        if accumulate {
            let s = &mut sums[lane * k + c];
            for j in 0..D {
                s[j] += row[j].as_f64();
            }
        }
    }
    p.inertia += (inertia[0] + inertia[1]) + (inertia[2] + inertia[3]);
    for lane in 0..4 {
        for c in 0..k {
            p.counts[c] += counts[lane * k + c];
            if accumulate {
                for (t, v) in p.sums[c * D..(c + 1) * D]
                    .iter_mut()
                    .zip(&sums[lane * k + c])
                {
                    *t += v;
                }
            }
        }
    }
}

/// Hamerly bounds, per sample: an upper bound on the distance to the assigned centroid
/// and a lower bound on the distance to every other centroid (not squared).
struct Bounds {
    upper: Vec<f64>,
    lower: Vec<f64>,
}

/// One Hamerly iteration: like `assign` with accumulation, but samples whose bounds prove
/// the assignment unchanged skip the distance computations. Inertia is not available
/// (NaN) because skipped samples have no exact distance.
fn assign_hamerly<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    centroids: &[f64],
    labels: &mut [i32],
    bounds: &mut Bounds,
) -> Partial {
    let (k, d) = (packed.k, data.d);
    // half the distance from each centroid to its nearest other centroid
    let mut half = vec![f64::INFINITY; k];
    for a in 0..k {
        for b in 0..k {
            if a != b {
                let dist = (0..d)
                    .map(|j| (centroids[a * d + j] - centroids[b * d + j]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                half[a] = half[a].min(0.5 * dist);
            }
        }
    }
    let parts: Vec<Partial> = labels
        .par_chunks_mut(CHUNK)
        .zip(bounds.upper.par_chunks_mut(CHUNK))
        .zip(bounds.lower.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(ci, ((lab, up), lo))| {
            let start = ci * CHUNK;
            let mut p = Partial::new(k, d, true);
            for o in 0..lab.len() {
                let row = data.row(start + o);
                let a = lab[o];
                let fresh = a < 0;
                if !fresh {
                    let a = a as usize;
                    let m = half[a].max(lo[o]);
                    if up[o] > m {
                        up[o] = packed.dist2(row, a).as_f64().sqrt();
                        if up[o] > m {
                            let (c, d1, d2) = packed.nearest2(row);
                            if c != a {
                                p.changed += 1;
                                lab[o] = c as i32;
                            }
                            up[o] = d1.as_f64().sqrt();
                            lo[o] = d2.as_f64().sqrt();
                        }
                    }
                } else {
                    let (c, d1, d2) = packed.nearest2(row);
                    p.changed += 1;
                    lab[o] = c as i32;
                    up[o] = d1.as_f64().sqrt();
                    lo[o] = d2.as_f64().sqrt();
                }
                p.add(lab[o] as usize, row);
            }
            p.inertia = f64::NAN;
            p
        })
        .collect();
    Partial::reduce(parts, k, d, true)
}

/// Moves Hamerly bounds after the centroids moved by `shift` (not squared).
fn update_bounds(labels: &[i32], bounds: &mut Bounds, shift: &[f64]) {
    let (mut max1, mut max2, mut arg) = (0.0f64, 0.0f64, usize::MAX);
    for (c, &s) in shift.iter().enumerate() {
        if s > max1 {
            max2 = max1;
            max1 = s;
            arg = c;
        } else if s > max2 {
            max2 = s;
        }
    }
    labels
        .par_chunks(CHUNK)
        .zip(bounds.upper.par_chunks_mut(CHUNK))
        .zip(bounds.lower.par_chunks_mut(CHUNK))
        .for_each(|((lab, up), lo)| {
            for o in 0..lab.len() {
                let a = lab[o] as usize;
                up[o] += shift[a];
                lo[o] -= if a == arg { max2 } else { max1 };
            }
        });
}

/// Output of one k-means run.
pub(crate) struct RunOutput {
    pub centroids: Vec<f64>,
    pub labels: Vec<i32>,
    pub counts: Vec<usize>,
    pub inertia: f64,
    pub n_iter: usize,
    pub converged: bool,
}

/// Lloyd iterations from `init` (k x d row-major), as scikit-learn's `_kmeans_single_lloyd`.
pub(crate) fn lloyd<T: Real>(
    data: Data<'_, T>,
    init: Vec<f64>,
    max_iter: usize,
    tol: f64,
    algorithm: Algorithm,
    progress: ProgressMode,
    label: &str,
) -> RunOutput {
    let (n, d) = (data.n, data.d);
    let k = init.len() / d;
    let mut centroids = init;
    let mut labels = vec![-1i32; n];
    let mut bounds = (algorithm == Algorithm::Hamerly).then(|| Bounds {
        upper: vec![0.0; n],
        lower: vec![0.0; n],
    });
    let mut prog = Progress::new(progress, label, "iterations", max_iter as u64);
    let mut strict = false;
    let mut converged = false;
    let mut last = None;
    let mut n_iter = 0;
    for it in 0..max_iter {
        n_iter = it + 1;
        let packed = Packed::new(&centroids, k, d);
        let part = match bounds.as_mut() {
            Some(b) => assign_hamerly(data, &packed, &centroids, &mut labels, b),
            None => assign(data, &packed, &mut labels, true),
        };
        let mut part = part;
        if part.counts.contains(&0.0) {
            relocate_empty(data, &packed, &labels, &mut part);
        }
        let mut new = part.sums.clone();
        for c in 0..k {
            if part.counts[c] > 0.0 {
                for v in &mut new[c * d..(c + 1) * d] {
                    *v /= part.counts[c];
                }
            } else {
                new[c * d..(c + 1) * d].copy_from_slice(&centroids[c * d..(c + 1) * d]);
            }
        }
        let shifts: Vec<f64> = (0..k)
            .map(|c| {
                (0..d)
                    .map(|j| (new[c * d + j] - centroids[c * d + j]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let shift_tot: f64 = shifts.iter().map(|s| s * s).sum();
        centroids = new;
        if let Some(b) = bounds.as_mut() {
            update_bounds(&labels, b, &shifts);
        }
        let msg = if part.inertia.is_nan() {
            format!("changed {}, shift {:.3e}", part.changed, shift_tot)
        } else {
            format!(
                "inertia {}, changed {}, shift {:.3e}",
                fmt_num(part.inertia),
                part.changed,
                shift_tot
            )
        };
        prog.message(&msg);
        prog.inc(1);
        if it > 0 && part.changed == 0 {
            strict = true;
            converged = true;
            last = Some(part);
            break;
        }
        if shift_tot <= tol {
            converged = true;
            break;
        }
    }
    prog.finish();
    // With strict convergence the labels are those of the final centroids (the same sums
    // give the same means); otherwise one more assignment pass, as scikit-learn does.
    let final_part = match last {
        Some(p) if strict && !p.inertia.is_nan() => p,
        _ => assign(data, &Packed::new(&centroids, k, d), &mut labels, false),
    };
    RunOutput {
        counts: final_part.counts.iter().map(|&c| c as usize).collect(),
        inertia: final_part.inertia,
        centroids,
        labels,
        n_iter,
        converged,
    }
}

/// Re-seeds empty clusters with the samples farthest from their centroid (scikit-learn's
/// `_relocate_empty_clusters_dense`): their sums move from the old cluster to the empty one.
fn relocate_empty<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    labels: &[i32],
    part: &mut Partial,
) {
    let d = data.d;
    let empty: Vec<usize> = (0..packed.k).filter(|&c| part.counts[c] == 0.0).collect();
    let m = empty.len();
    // the m farthest samples, largest distance first, lowest index on ties
    let mut far: Vec<(f64, usize)> = labels
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, lab)| {
            let mut top: Vec<(f64, usize)> = Vec::with_capacity(m + 1);
            for (o, &l) in lab.iter().enumerate() {
                let i = ci * CHUNK + o;
                let dist = packed.dist2(data.row(i), l as usize).as_f64();
                top.push((dist, i));
                if top.len() > m {
                    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    top.truncate(m);
                }
            }
            top
        })
        .reduce(Vec::new, |mut a, b| {
            a.extend(b);
            a
        });
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (&new_c, &(_, i)) in empty.iter().zip(&far) {
        let old_c = labels[i] as usize;
        let row = data.row(i);
        if part.counts[old_c] <= 1.0 {
            continue;
        }
        for (j, v) in row.iter().enumerate() {
            part.sums[old_c * d + j] -= v.as_f64();
            part.sums[new_c * d + j] = v.as_f64();
        }
        part.counts[old_c] -= 1.0;
        part.counts[new_c] = 1.0;
    }
}

/// `tol * mean(var(feature))`, scikit-learn's `_tolerance`.
fn tolerance<T: Real>(data: Data<'_, T>, tol: f64) -> f64 {
    if tol == 0.0 {
        return 0.0;
    }
    let (mean, var) = column_stats(data);
    let _ = mean;
    tol * var.iter().sum::<f64>() / var.len() as f64
}

// ---------------------------------------------------------------------------------------
// Initialisation

/// Squared distances (f64) from every sample to `point`.
fn dist_to<T: Real>(data: Data<'_, T>, point: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; data.n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, o)| {
        for (k, v) in o.iter_mut().enumerate() {
            let row = data.row(ci * CHUNK + k);
            *v = row
                .iter()
                .zip(point)
                .map(|(a, b)| (a.as_f64() - b).powi(2))
                .sum();
        }
    });
    out
}

/// Chunk-ordered sum.
fn ordered_sum(v: &[f64]) -> f64 {
    let parts: Vec<f64> = v.par_chunks(CHUNK).map(|c| c.iter().sum::<f64>()).collect();
    parts.iter().sum()
}

fn row_f64<T: Real>(data: Data<'_, T>, i: usize) -> Vec<f64> {
    data.row(i).iter().map(|v| v.as_f64()).collect()
}

/// Greedy k-means++ as scikit-learn's `_kmeans_plusplus`: returns `k x d` row-major
/// centroids. `weights` (one per sample) weight the draws and potentials.
pub(crate) fn kmeans_plusplus<T: Real>(
    data: Data<'_, T>,
    k: usize,
    weights: Option<&[f64]>,
    rng: &mut Rng,
) -> Vec<f64> {
    let n = data.n;
    let trials = 2 + (k as f64).ln() as usize;
    let first = match weights {
        Some(w) => {
            let total: f64 = w.iter().sum();
            let r = rng.uniform() * total;
            let mut acc = 0.0;
            w.iter()
                .position(|&x| {
                    acc += x;
                    acc > r
                })
                .unwrap_or(n - 1)
        }
        None => rng.below(n),
    };
    let mut centers = row_f64(data, first);
    let mut closest = dist_to(data, &centers);
    let weigh = |v: &mut Vec<f64>| {
        if let Some(w) = weights {
            v.iter_mut().zip(w).for_each(|(a, b)| *a *= b);
        }
    };
    let mut weighted = closest.clone();
    weigh(&mut weighted);
    let mut pot = ordered_sum(&weighted);
    let mut cumsum = vec![0.0; n];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, &v) in cumsum.iter_mut().zip(&weighted) {
            acc += v;
            *c = acc;
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let r = rng.uniform() * pot;
                cumsum.partition_point(|&c| c < r).min(n - 1)
            })
            .collect();
        let cand_rows: Vec<Vec<f64>> = candidates.iter().map(|&i| row_f64(data, i)).collect();
        // potential of each candidate: sum of min(closest, d(x, candidate)) (weighted)
        let parts: Vec<Vec<f64>> = closest
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(ci, cl)| {
                let mut pots = vec![0.0; trials];
                for (o, &c0) in cl.iter().enumerate() {
                    let i = ci * CHUNK + o;
                    let row = data.row(i);
                    let w = weights.map_or(1.0, |w| w[i]);
                    for (t, cand) in cand_rows.iter().enumerate() {
                        let dist: f64 = row
                            .iter()
                            .zip(cand)
                            .map(|(a, b)| (a.as_f64() - b).powi(2))
                            .sum();
                        pots[t] += dist.min(c0) * w;
                    }
                }
                pots
            })
            .collect();
        let mut pots = vec![0.0; trials];
        for p in parts {
            pots.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        let mut best = 0;
        for t in 1..trials {
            if pots[t] < pots[best] {
                best = t;
            }
        }
        pot = pots[best];
        let cand = &cand_rows[best];
        closest
            .par_chunks_mut(CHUNK)
            .zip(weighted.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(ci, (cl, wt))| {
                for o in 0..cl.len() {
                    let i = ci * CHUNK + o;
                    let dist: f64 = data
                        .row(i)
                        .iter()
                        .zip(cand)
                        .map(|(a, b)| (a.as_f64() - b).powi(2))
                        .sum();
                    if dist < cl[o] {
                        cl[o] = dist;
                    }
                    wt[o] = cl[o] * weights.map_or(1.0, |w| w[i]);
                }
            });
        centers.extend_from_slice(cand);
    }
    centers
}

/// Rounds of k-means‖ sampling.
const PARALLEL_ROUNDS: usize = 5;

/// k-means‖: `PARALLEL_ROUNDS` rounds each drawing about `2k` samples with probability
/// proportional to their squared distance, then weighted k-means++ and Lloyd on the
/// candidates (weights: how many samples each candidate is nearest to).
pub(crate) fn kmeans_parallel<T: Real>(data: Data<'_, T>, k: usize, seed: u64) -> Vec<f64> {
    let (n, d) = (data.n, data.d);
    let mut rng = Rng::new(seed);
    let first = rng.below(n);
    let mut chosen = vec![first];
    let mut closest = dist_to(data, &row_f64(data, first));
    let l = 2.0 * k as f64;
    for round in 0..PARALLEL_ROUNDS {
        let cost = ordered_sum(&closest);
        if cost <= 0.0 {
            break;
        }
        let picked: Vec<usize> = closest
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(ci, cl)| {
                let mut r = Rng::derive(seed, round as u64 + 1, ci as u64);
                cl.iter()
                    .enumerate()
                    .filter(|&(_, &c)| r.uniform() < l * c / cost)
                    .map(|(o, _)| ci * CHUNK + o)
                    .collect::<Vec<_>>()
            })
            .flatten()
            .collect();
        if picked.is_empty() {
            continue;
        }
        let rows: Vec<f64> = picked.iter().flat_map(|&i| row_f64(data, i)).collect();
        let packed = Packed::<T>::new(&rows, picked.len(), d);
        closest
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(ci, cl)| {
                for (o, c) in cl.iter_mut().enumerate() {
                    let (_, dist) = packed.nearest(data.row(ci * CHUNK + o));
                    *c = c.min(dist.as_f64());
                }
            });
        chosen.extend(picked);
    }
    // too few distinct candidates (tiny or degenerate data): pad with random samples
    let mut seen: std::collections::HashSet<usize> = chosen.iter().copied().collect();
    while chosen.len() < k {
        let i = rng.below(n);
        if seen.insert(i) || seen.len() >= n {
            chosen.push(i);
        }
    }
    let m = chosen.len();
    let cand: Vec<f64> = chosen.iter().flat_map(|&i| row_f64(data, i)).collect();
    // weights: samples nearest to each candidate
    let packed = Packed::<T>::new(&cand, m, d);
    let mut labels = vec![-1i32; n];
    let part = assign(data, &packed, &mut labels, false);
    let weights = part.counts;
    let small = Data {
        x: &cand[..],
        n: m,
        d,
    };
    let init = kmeans_plusplus(small, k, Some(&weights), &mut rng);
    weighted_lloyd(small, &weights, init, 100)
}

/// Plain weighted Lloyd for small problems (the k-means‖ candidates).
fn weighted_lloyd(
    data: Data<'_, f64>,
    w: &[f64],
    mut centroids: Vec<f64>,
    max_iter: usize,
) -> Vec<f64> {
    let d = data.d;
    let k = centroids.len() / d;
    let mut labels = vec![usize::MAX; data.n];
    for _ in 0..max_iter {
        let packed = Packed::<f64>::new(&centroids, k, d);
        let mut changed = false;
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0.0; k];
        for i in 0..data.n {
            let (c, _) = packed.nearest(data.row(i));
            changed |= labels[i] != c;
            labels[i] = c;
            counts[c] += w[i];
            for j in 0..d {
                sums[c * d + j] += w[i] * data.row(i)[j];
            }
        }
        for c in 0..k {
            if counts[c] > 0.0 {
                for j in 0..d {
                    centroids[c * d + j] = sums[c * d + j] / counts[c];
                }
            }
        }
        if !changed {
            break;
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn blobs(n_per: usize, centers: &[[f64; 2]], seed: u64) -> Array2<f64> {
        let mut rng = Rng::new(seed);
        let mut x = Array2::zeros((n_per * centers.len(), 2));
        for (c, center) in centers.iter().enumerate() {
            for i in 0..n_per {
                for j in 0..2 {
                    x[[c * n_per + i, j]] = center[j] + rng.uniform() - 0.5;
                }
            }
        }
        x
    }

    const CENTERS: [[f64; 2]; 4] = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];

    #[test]
    fn finds_well_separated_blobs_with_every_init_and_algorithm() {
        let x = blobs(200, &CENTERS, 3);
        for init in [Init::KMeansPlusPlus, Init::KMeansParallel] {
            for alg in [Algorithm::Lloyd, Algorithm::Hamerly] {
                let m = KMeans::new(4)
                    .init(init)
                    .algorithm(alg)
                    .n_init(3)
                    .progress(ProgressMode::Silent)
                    .fit(&x)
                    .unwrap();
                for c in 0..4 {
                    let l = m.labels()[c * 200];
                    assert!(m.labels()[c * 200..(c + 1) * 200].iter().all(|&v| v == l));
                }
                assert_eq!(m.counts(), &[200, 200, 200, 200]);
                // uniform noise in [-0.5, 0.5]^2: variance 1/12 per coordinate
                assert!(
                    (m.inertia() / 800.0 - 2.0 / 12.0).abs() < 0.02,
                    "{}",
                    m.inertia()
                );
            }
        }
    }

    #[test]
    fn lloyd_and_hamerly_agree_and_threads_do_not_matter() {
        let x = blobs(
            5000,
            &[[0.0, 0.0], [1.0, 0.2], [0.3, 1.1], [2.0, 2.0], [1.5, 0.5]],
            9,
        );
        let fit = |alg, t| {
            KMeans::new(5)
                .algorithm(alg)
                .threads(t)
                .tol(0.0)
                .progress(ProgressMode::Silent)
                .fit(&x)
                .unwrap()
        };
        let a = fit(Algorithm::Lloyd, 1);
        let b = fit(Algorithm::Lloyd, 2);
        let c = fit(Algorithm::Hamerly, 2);
        assert_eq!(a.labels(), b.labels());
        assert_eq!(a.inertia(), b.inertia());
        assert_eq!(a.centroids(), b.centroids());
        assert_eq!(a.labels(), c.labels());
        assert!((a.inertia() - c.inertia()).abs() < 1e-9 * a.inertia());
    }

    #[test]
    fn f32_and_f64_agree() {
        let x = blobs(300, &CENTERS, 5);
        let x32 = x.mapv(|v| v as f32);
        let a = KMeans::new(4)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap();
        let b = KMeans::new(4)
            .progress(ProgressMode::Silent)
            .fit(&x32)
            .unwrap();
        assert_eq!(a.labels(), b.labels());
        assert!((a.inertia() - b.inertia()).abs() < 1e-4 * a.inertia());
    }

    #[test]
    fn empty_clusters_are_reseeded() {
        // duplicated points: k-means++ draws duplicate centers, leaving clusters empty
        let mut x = Array2::zeros((20, 1));
        for i in 10..20 {
            x[[i, 0]] = 1.0;
        }
        x[[19, 0]] = 5.0;
        let m = KMeans::new(3)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap();
        let mut counts = m.counts().to_vec();
        counts.sort();
        assert_eq!(counts, vec![1, 9, 10]);
        assert!(m.inertia() < 1e-12);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let x = blobs(10, &CENTERS, 1);
        assert!(matches!(
            KMeans::new(0).fit(&x),
            Err(Error::Invalid { what: "k", .. })
        ));
        assert!(matches!(
            KMeans::new(41).fit(&x),
            Err(Error::TooFewSamples {
                what: "k",
                requested: 41,
                available: 40
            })
        ));
        assert!(matches!(
            KMeans::new(2).n_init(0).fit(&x),
            Err(Error::Invalid { what: "n_init", .. })
        ));
        assert!(matches!(
            KMeans::new(2).tol(f64::NAN).fit(&x),
            Err(Error::Invalid { what: "tol", .. })
        ));
        assert!(matches!(
            KMeans::new(2).threads(0).fit(&x),
            Err(Error::Invalid { .. })
        ));
        let m = KMeans::new(2)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap();
        assert!(m.predict(&Array2::<f64>::zeros((3, 3))).is_err());
        assert!(m.to_string().contains("inertia"));
    }
}
