//! Spectral clustering with an RBF affinity `exp(-gamma |x - y|^2)`.
//!
//! * [`SpectralMode::Exact`] reproduces scikit-learn's `SpectralClustering(affinity='rbf')`:
//!   the full n x n affinity, the normalized Laplacian's `k` smallest eigenvectors (here:
//!   the largest of `I + D^-1/2 A D^-1/2`, diagonal of `A` ignored as scipy's `laplacian`
//!   does) from `faer`'s Krylov-Schur partial eigensolver, divided by `sqrt(degree)`, then
//!   k-means on the rows. Memory: the lower triangle in `f32`, 2 n^2 bytes.
//! * [`SpectralMode::Nystrom`] follows dask-ml's `SpectralClustering`: `n_components`
//!   random samples form the exact block `A`, their affinity `B` to the rest stands in for
//!   the rest of the matrix (`C ~ B^T A^+ B`), approximate degrees normalize both, the SVD
//!   of the small normalized `A` gives the basis, and the rows of the extended,
//!   row-normalized eigenvectors are clustered with k-means. `B` is never held whole: it
//!   is computed block by block, twice, so memory stays O(n k).
//!
//! The default `gamma` is [`Gamma::Scale`], `1 / (n_features * var(x))`, which does not
//! depend on the data's units: a fixed `gamma = 1` on raw mm/day rainfall makes every
//! affinity 0.

mod affinity;
mod exact;
mod model;
mod nystrom;
#[cfg(test)]
mod tests;

use affinity::*;
use exact::*;
pub use model::SpectralModel;
use nystrom::*;

use std::fmt;
use std::time::Instant;

use super::kmeans::KMeans;
use super::{AsFeatures, check_finite, check_k};
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::runtime::progress::{Progress, ProgressMode};

/// The RBF kernel coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Gamma {
    /// `1 / (n_features * var(x))` over all values (scikit-learn's `'scale'` rule; 1 when
    /// the data are constant).
    #[default]
    Scale,
    /// A fixed value (> 0).
    Value(f64),
}

/// Exact affinity matrix or Nystrom approximation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpectralMode {
    /// Full n x n affinity (scikit-learn). Memory about 2 n^2 bytes.
    Exact,
    /// Nystrom approximation with `n_components` landmark samples (dask-ml).
    #[default]
    Nystrom,
}

impl fmt::Display for SpectralMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpectralMode::Exact => "exact",
            SpectralMode::Nystrom => "nystrom",
        })
    }
}

/// Spectral clustering parameters: a builder, validated when [`fit`](SpectralClustering::fit)
/// runs. Defaults: [`Gamma::Scale`], Nystrom with 100 components (dask-ml's default),
/// k-means with 10 initialisations on the embedding, seed 0.
///
/// ```
/// use rasterlab::prelude::*;
/// use ndarray::Array2;
/// // two rings are not linearly separable, but spectral clustering separates them
/// let x = Array2::from_shape_fn((400, 2), |(i, j)| {
///     let r = if i < 200 { 1.0 } else { 4.0 };
///     let t = i as f64 * 0.7;
///     if j == 0 { r * t.cos() } else { r * t.sin() }
/// });
/// let exact = SpectralClustering::new(2).gamma(Gamma::Value(2.0)).exact().fit(&x)?;
/// let l = exact.labels();
/// assert!(l[..200].iter().all(|&v| v == l[0]) && l[200..].iter().all(|&v| v != l[0]));
/// let approx = SpectralClustering::new(2).gamma(Gamma::Value(2.0)).n_components(60).fit(&x)?;
/// assert_eq!(approx.embedding().dim(), (400, 2));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "parameters do nothing until .fit(..)"]
pub struct SpectralClustering {
    k: usize,
    gamma: Gamma,
    n_components: usize,
    mode: SpectralMode,
    seed: u64,
    n_init: usize,
    threads: Option<usize>,
    runtime: Option<Runtime>,
    progress: ProgressMode,
}

impl SpectralClustering {
    /// Spectral clustering into `k` clusters.
    pub fn new(k: usize) -> SpectralClustering {
        SpectralClustering {
            k,
            gamma: Gamma::Scale,
            n_components: 100,
            mode: SpectralMode::Nystrom,
            seed: 0,
            n_init: 10,
            threads: None,
            runtime: None,
            progress: ProgressMode::Auto,
        }
    }

    /// RBF coefficient (default [`Gamma::Scale`]).
    pub fn gamma(mut self, gamma: Gamma) -> Self {
        self.gamma = gamma;
        self
    }

    /// Landmark samples of the Nystrom approximation (default 100; must be below the
    /// number of samples and at least `k`).
    pub fn n_components(mut self, n: usize) -> Self {
        self.n_components = n;
        self
    }

    /// Uses the full affinity matrix (scikit-learn's algorithm).
    pub fn exact(mut self) -> Self {
        self.mode = SpectralMode::Exact;
        self
    }

    /// Uses the Nystrom approximation (dask-ml's algorithm; the default).
    pub fn nystrom(mut self) -> Self {
        self.mode = SpectralMode::Nystrom;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: SpectralMode) -> Self {
        self.mode = mode;
        self
    }

    /// Seed for the landmark sample, the eigensolver's start vector and k-means.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// k-means initialisations on the embedding (default 10, as scikit-learn).
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }

    /// Worker threads, on top of [`runtime`](SpectralClustering::runtime).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Fits on `rt`: its threads and memory budget (default [`Runtime::detect`]).
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.runtime = Some(rt.clone());
        self
    }

    /// Progress reporting of the stages (default [`ProgressMode::Auto`]).
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Clusters the rows of `x`.
    ///
    /// Errors: [`Error::Invalid`] for `k = 0`, a bad gamma, `n_components` 0 or below
    /// `k`, or an exact affinity larger than the memory budget; [`Error::NoValidSamples`]
    /// for an empty matrix; [`Error::TooFewSamples`] when `k` exceeds the samples or (Nystrom)
    /// `n_components` is not below them; [`Error::NonFinite`] for NaN or infinite values.
    pub fn fit(&self, x: &(impl AsFeatures + ?Sized)) -> Result<SpectralModel> {
        let start = Instant::now();
        let view = x.features();
        let (n, d) = view.dim();
        check_k(self.k, n, d)?;
        super::check_label_k(self.k, x)?;
        self.validate(n)?;
        let rt = super::runtime(self.runtime.as_ref(), self.threads)?;
        if self.mode == SpectralMode::Exact {
            // the packed f32 lower triangle
            let bytes = (n as u64).saturating_mul(n as u64 + 1).saturating_mul(2);
            if bytes > rt.memory_budget() {
                return Err(Error::invalid(
                    "exact spectral clustering",
                    format!(
                        "{n} samples need a {n} x {n} affinity matrix ({}), more than the memory budget ({}); use .nystrom()",
                        crate::core::fmt::human_bytes(bytes),
                        crate::core::fmt::human_bytes(rt.memory_budget())
                    ),
                ));
            }
        }
        let pool = rt.pool()?;
        let xs = view.to_f64();
        let xs = xs
            .as_slice()
            .ok_or_else(|| Error::invalid("features", "matrix is not contiguous"))?;
        let mut prog = Progress::new(self.progress, "spectral clustering", "stages", 3);
        let (embedding, eigenvalues, gamma) = pool.install(|| {
            check_finite(super::Data { x: xs, n, d })?;
            let gamma = match self.gamma {
                Gamma::Value(g) => g,
                Gamma::Scale => scale_gamma(xs, d),
            };
            let (emb, ev) = match self.mode {
                SpectralMode::Exact => {
                    exact_embedding(xs, n, d, gamma, self.k, self.seed, &mut prog)?
                }
                SpectralMode::Nystrom => nystrom_embedding(
                    xs,
                    n,
                    d,
                    gamma,
                    self.k,
                    self.n_components,
                    self.seed,
                    &mut prog,
                )?,
            };
            Ok::<_, Error>((emb, ev, gamma))
        })?;
        prog.message("k-means on the embedding");
        let km = KMeans::new(self.k)
            .seed(self.seed)
            .n_init(self.n_init)
            .runtime(&rt)
            .progress(ProgressMode::Silent)
            .fit(&embedding)?;
        prog.inc(1);
        prog.finish();
        Ok(SpectralModel {
            labels: km.labels().to_vec(),
            counts: km.counts().to_vec(),
            embedding,
            eigenvalues,
            gamma,
            mode: self.mode,
            n_components: self.n_components,
            kmeans_inertia: km.inertia(),
            kmeans_iter: km.n_iter(),
            seconds: start.elapsed().as_secs_f64(),
            threads: rt.threads(),
        })
    }

    /// The checks of the parameters against `n` samples that need no memory budget.
    fn validate(&self, n: usize) -> Result<()> {
        if self.n_init == 0 {
            return Err(Error::invalid(
                "n_init",
                "at least one initialisation is needed",
            ));
        }
        if let Gamma::Value(g) = self.gamma
            && !(g > 0.0 && g.is_finite())
        {
            return Err(Error::invalid(
                "gamma",
                format!("{g}: must be a finite number > 0"),
            ));
        }
        if self.mode == SpectralMode::Nystrom {
            if self.n_components == 0 || self.n_components < self.k {
                return Err(Error::invalid(
                    "n_components",
                    format!(
                        "{} landmarks cannot give {} eigenvectors: use at least k",
                        self.n_components, self.k
                    ),
                ));
            }
            if self.n_components >= n {
                return Err(Error::TooFewSamples {
                    what: "n_components",
                    requested: self.n_components,
                    available: n,
                });
            }
        }
        Ok(())
    }
}
