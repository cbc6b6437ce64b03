//! Exact k-means: k-means++ (greedy, as scikit-learn) or k-means‖ (as dask-ml)
//! initialisation, then Lloyd iterations over fixed chunks of samples on a rayon pool.
//!
//! ## Numerics
//! * `f32` input stays `f32` in the distance kernel (half the memory traffic and twice
//!   the SIMD lanes); centroids are kept in `f64`, per-cluster sums and the inertia are
//!   accumulated in `f64`, so millions of pixels do not lose precision. `f64` input is
//!   `f64` throughout. The vector kernel computes the same distances, in the same order,
//!   as a plain loop over samples and centroids (no fused multiply-add), so labels do not
//!   depend on the CPU's vector width.
//! * `tol` is relative, as in scikit-learn: iterations stop when the sum over clusters of
//!   the squared centroid shift is at most `tol * mean(var(feature))`, or at once when no
//!   label changed ("strict convergence").
//! * Empty clusters are re-seeded with the points farthest from their centroid, as
//!   scikit-learn does.
//!
//! ## Lloyd or Hamerly
//! Both are implemented ([`Algorithm`]). Lloyd's assignment pass puts 8 samples in the
//! lanes of a vector and loops over the centroids (subtract, multiply, add per feature,
//! then a compare and two selects: no horizontal minimum, no branch), built for AVX2 and
//! chosen at run time when the CPU has it. On the Landsat scene (3,169,229 pixels x 3
//! bands, k = 8, f32, 2 threads) a Lloyd iteration costs about 7 ms of CPU per thread
//! (14 ms summed over both threads, measured as the difference between 31 and 1
//! iterations on a loaded machine), and the whole fit, 16 iterations, 0.15 s on a quiet
//! moment of the shared 2-core machine. Hamerly's bounds (two `f64` per sample, read and
//! written every iteration, and a per-sample branch) cost more than that: the same fit
//! with [`Algorithm::Hamerly`] took 1.5 to 2.7 times as long, with the same labels.
//! Bounds pay when distances are expensive: many features (303-day series) or many
//! clusters. [`Algorithm::Auto`] uses Lloyd when `k * features <= 64`, which also reports
//! the inertia of every iteration (Hamerly skips distances and cannot), and Hamerly
//! otherwise.
//!
//! ## Determinism
//! Samples are processed in chunks of a fixed size whose partial results (sums, counts,
//! inertia) are reduced in chunk order, and random draws come from a seeded generator
//! whose stream is part of this crate. The same seed gives the same model on any number
//! of threads.

mod hamerly;
mod init;
mod kernel;
mod lloyd;
mod model;
mod shared;
#[cfg(test)]
mod tests;

use init::kmeans_parallel;
pub(crate) use init::kmeans_plusplus;
pub(crate) use kernel::Packed;
pub(crate) use lloyd::lloyd;
use lloyd::lloyd_shared;
use lloyd::{RunOutput, tolerance};
pub use model::KMeansModel;
pub(crate) use shared::FitRanks;

use std::fmt;
use std::time::Instant;

use ndarray::Array2;

use super::{AsFeatures, Data, FeatureView, Real, Rng, check_finite, check_k};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::runtime::progress::ProgressMode;

/// How the initial centroids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[must_use = "parameters do nothing until .fit(..)"]
pub struct KMeans {
    k: usize,
    seed: u64,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    init: Init,
    algorithm: Algorithm,
    threads: Option<usize>,
    runtime: Option<Runtime>,
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
            runtime: None,
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

    /// Worker threads (default: the runtime's, else the usable cores or
    /// `RASTERLAB_THREADS`); applied on top of [`runtime`](KMeans::runtime).
    pub fn threads(mut self, n: usize) -> KMeans {
        self.threads = Some(n);
        self
    }

    /// Fits on `rt` (its threads and observer; default [`Runtime::detect`]).
    pub fn runtime(mut self, rt: &Runtime) -> KMeans {
        self.runtime = Some(rt.clone());
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

    /// Fits the centroids to `x` (samples in rows): [`Samples`](crate::cluster::Samples),
    /// `Array2<f32>` or `Array2<f64>`.
    ///
    /// Errors: [`Error::Invalid`] for `k = 0` or bad parameters,
    /// [`Error::NoValidSamples`] for an empty matrix, [`Error::TooFewSamples`] when
    /// `k` exceeds the number of samples, [`Error::NonFinite`] for NaN or infinite values.
    pub fn fit(&self, x: &(impl AsFeatures + ?Sized)) -> Result<KMeansModel> {
        crate::cluster::check_label_k(self.k, x)?;
        self.fit_view(x.features(), x.feature_names())
    }

    /// [`KMeans::fit`] shared among processes that each hold the same `x` (MPI ranks:
    /// `crate::distributed::Mpi::fit_kmeans`): the same model on every rank, bit for bit
    /// the single-process one.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn fit_shared(
        &self,
        x: &(impl AsFeatures + ?Sized),
        ranks: &dyn FitRanks,
    ) -> Result<KMeansModel> {
        crate::cluster::check_label_k(self.k, x)?;
        self.fit_view_on(x.features(), x.feature_names(), Some(ranks))
    }

    fn fit_view(&self, x: FeatureView<'_>, names: Option<Vec<String>>) -> Result<KMeansModel> {
        self.fit_view_on(x, names, None)
    }

    fn fit_view_on(
        &self,
        x: FeatureView<'_>,
        names: Option<Vec<String>>,
        ranks: Option<&dyn FitRanks>,
    ) -> Result<KMeansModel> {
        self.validate()?;
        let (n, d) = x.dim();
        check_k(self.k, n, d)?;
        let rt = crate::cluster::runtime(self.runtime.as_ref(), self.threads)?;
        let start = Instant::now();
        let mut model = match x {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("k-means", || self.fit_data(data, ranks))??
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("k-means", || self.fit_data(data, ranks))??
            }
        };
        model.threads = rt.threads();
        model.seconds = start.elapsed().as_secs_f64();
        model.feature_names = names.unwrap_or_else(|| (0..d).map(|j| format!("f{j}")).collect());
        Ok(model)
    }

    fn fit_data<T: Real>(
        &self,
        data: Data<'_, T>,
        ranks: Option<&dyn FitRanks>,
    ) -> Result<KMeansModel> {
        check_finite(data)?;
        let tol = tolerance(data, self.tol);
        let algorithm = match ranks {
            // A shared pass is Lloyd's (the same clustering; see `Algorithm`).
            Some(_) => Algorithm::Lloyd,
            None => self.algorithm.resolve(self.k, data.d),
        };
        // One progress line for the job: rank 0's.
        let progress = match ranks {
            Some(r) if r.rank() != 0 => ProgressMode::Silent,
            _ => self.progress,
        };
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
            let out = lloyd_shared(
                data,
                init,
                self.max_iter,
                tol,
                algorithm,
                progress,
                &label,
                ranks,
            );
            if best.as_ref().is_none_or(|b| out.inertia < b.inertia) {
                best = Some(out);
            }
        }
        let best = best.ok_or_else(|| Error::invalid("n_init", "no run was made"))?;
        Ok(KMeansModel {
            centroids: Array2::from_shape_vec((self.k, data.d), best.centroids)
                .map_err(|e| Error::internal(format!("centroid shape: {e}")))?,
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
