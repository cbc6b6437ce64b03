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

use std::fmt;
use std::time::Instant;

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::matmul::matmul;
use faer::matrix_free::LinOp;
use faer::matrix_free::eigen::{
    PartialEigenParams, partial_self_adjoint_eigen, partial_self_adjoint_eigen_scratch,
};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::Array2;
use rayon::prelude::*;

use super::kmeans::KMeans;
use super::{AsFeatures, Rng, check_finite, check_k, fmt_num};
use crate::core::fmt::html_table;
use crate::error::{Error, Result};
use crate::runtime::progress::{Progress, ProgressMode};

/// The RBF kernel coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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
pub struct SpectralClustering {
    k: usize,
    gamma: Gamma,
    n_components: usize,
    mode: SpectralMode,
    seed: u64,
    n_init: usize,
    threads: Option<usize>,
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

    /// Worker threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
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
        let plan = super::plan(self.threads)?;
        if self.mode == SpectralMode::Exact {
            // the packed f32 lower triangle
            let bytes = (n as u64).saturating_mul(n as u64 + 1).saturating_mul(2);
            if bytes > plan.memory_budget() {
                return Err(Error::invalid(
                    "exact spectral clustering",
                    format!(
                        "{n} samples need a {n} x {n} affinity matrix ({}), more than the memory budget ({}); use .nystrom()",
                        crate::core::fmt::human_bytes(bytes),
                        crate::core::fmt::human_bytes(plan.memory_budget())
                    ),
                ));
            }
        }
        let pool = plan.build_pool()?;
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
            .threads(plan.threads())
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
            threads: plan.threads(),
        })
    }
}

/// `1 / (d * var(all values))`, or 1 for constant data.
fn scale_gamma(x: &[f64], d: usize) -> f64 {
    let n = x.len() as f64;
    let mean = x
        .par_chunks(1 << 16)
        .map(|c| c.iter().sum::<f64>())
        .collect::<Vec<_>>()
        .iter()
        .sum::<f64>()
        / n;
    let var = x
        .par_chunks(1 << 16)
        .map(|c| c.iter().map(|v| (v - mean).powi(2)).sum::<f64>())
        .collect::<Vec<_>>()
        .iter()
        .sum::<f64>()
        / n;
    if var > 0.0 {
        1.0 / (d as f64 * var)
    } else {
        1.0
    }
}

fn sq_norms(x: &[f64], d: usize) -> Vec<f64> {
    x.par_chunks(d.max(1))
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// RBF affinities between the rows of `a` (m x d) and of `b` (nb x d), written
/// column-major into `out` (m x nb): `exp(-gamma * max(0, |a|^2 + |b|^2 - 2 a.b))`.
#[allow(clippy::too_many_arguments)]
fn rbf_block(
    a: &[f64],
    sqa: &[f64],
    b: &[f64],
    sqb: &[f64],
    d: usize,
    gamma: f64,
    out: &mut [f64],
) {
    let (m, nb) = (sqa.len(), sqb.len());
    {
        let lhs = MatRef::from_row_major_slice(a, m, d);
        let rhs = MatRef::from_row_major_slice(b, nb, d).transpose();
        let dst = MatMut::from_column_major_slice_mut(out, m, nb);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
    }
    clear_avx_state();
    for (c, col) in out.chunks_exact_mut(m).enumerate() {
        for (r, v) in col.iter_mut().enumerate() {
            *v = (-gamma * (sqa[r] + sqb[c] - 2.0 * *v).max(0.0)).exp();
        }
    }
}

/// faer's AVX kernels can return with the upper halves of the YMM registers dirty; the
/// SSE code that follows on that thread (our loops, glibc's `exp`) then runs many times
/// slower (measured here: `exp` at 171 ns instead of 9 ns after a faer matmul).
/// `vzeroupper` clears that state; call it after faer work, before our own loops.
#[inline]
fn clear_avx_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX is available (checked above). vzeroupper only zeroes the upper
            // halves of the YMM registers, which code compiled for this crate's target
            // (no AVX) never uses to hold values.
            unsafe { std::arch::x86_64::_mm256_zeroupper() }
        }
    }
}

/// Columns per parallel block of affinity computations.
const BLOCK: usize = 256;

/// Offset of column `j` in the packed lower triangle of an `n x n` matrix.
fn packed_offset(n: usize, j: usize) -> usize {
    j * n - j * j.saturating_sub(1) / 2
}

/// The lower triangle (diagonal included) of a symmetric matrix, packed column by column,
/// in `f32`: a quarter of the memory traffic of the full `f64` matrix, which is what a
/// matrix-vector product costs. Applied in parallel over fixed column ranges of equal
/// work whose partial results are added in order (deterministic).
#[derive(Debug)]
struct PackedSym {
    l: Vec<f32>,
    n: usize,
    work: Vec<(usize, usize)>,
}

impl PackedSym {
    fn new(l: Vec<f32>, n: usize) -> PackedSym {
        let parts = 64.min(n.max(1));
        let total = n * (n + 1) / 2;
        let mut work = Vec::with_capacity(parts);
        let (mut start, mut acc) = (0, 0);
        for j in 0..n {
            acc += n - j;
            if acc * parts >= (work.len() + 1) * total || j + 1 == n {
                work.push((start, j + 1));
                start = j + 1;
            }
        }
        PackedSym { l, n, work }
    }

    /// `y = M v`.
    fn apply_vec(&self, v: &[f64]) -> Vec<f64> {
        let n = self.n;
        let parts: Vec<Vec<f64>> = self
            .work
            .par_iter()
            .map(|&(j0, j1)| {
                let mut y = vec![0.0; n];
                for j in j0..j1 {
                    let col = &self.l[packed_offset(n, j)..packed_offset(n, j + 1)];
                    let vj = v[j];
                    let below = &col[1..];
                    let vs = &v[j + 1..];
                    let ys = &mut y[j + 1..];
                    // four accumulators so that the dot product vectorizes
                    let mut acc = [0.0f64; 4];
                    let mut cols = below.chunks_exact(4);
                    let mut vsc = vs.chunks_exact(4);
                    let mut ysc = ys.chunks_exact_mut(4);
                    for ((a, b), yy) in (&mut cols).zip(&mut vsc).zip(&mut ysc) {
                        for t in 0..4 {
                            let m = f64::from(a[t]);
                            acc[t] += m * b[t];
                            yy[t] += m * vj;
                        }
                    }
                    let mut dot = acc[0] + acc[1] + acc[2] + acc[3];
                    for ((a, b), yy) in cols
                        .remainder()
                        .iter()
                        .zip(vsc.remainder())
                        .zip(ysc.into_remainder())
                    {
                        let m = f64::from(*a);
                        dot += m * b;
                        *yy += m * vj;
                    }
                    y[j] += dot + f64::from(col[0]) * vj;
                }
                y
            })
            .collect();
        let mut y = vec![0.0; n];
        for p in parts {
            y.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        y
    }
}

impl LinOp<f64> for PackedSym {
    fn apply_scratch(&self, _rhs_ncols: usize, _par: Par) -> StackReq {
        StackReq::EMPTY
    }

    fn nrows(&self) -> usize {
        self.n
    }

    fn ncols(&self) -> usize {
        self.n
    }

    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, _par: Par, _stack: &mut MemStack) {
        clear_avx_state();
        let mut out = out;
        for c in 0..rhs.ncols() {
            let v: Vec<f64> = (0..self.n).map(|i| rhs[(i, c)]).collect();
            for (j, val) in self.apply_vec(&v).into_iter().enumerate() {
                out[(j, c)] = val;
            }
        }
    }

    fn conj_apply(
        &self,
        out: MatMut<'_, f64>,
        rhs: MatRef<'_, f64>,
        par: Par,
        stack: &mut MemStack,
    ) {
        self.apply(out, rhs, par, stack)
    }
}

/// `I + D^-1/2 A D^-1/2` for the RBF affinity `A` with a zero diagonal (scipy's
/// `laplacian` ignores self-loops), packed, and `sqrt(degree)` (1 for isolated samples,
/// as scipy). Only the lower triangle is computed: half the matrix products and `exp`s.
fn normalized_affinity(x: &[f64], n: usize, d: usize, gamma: f64) -> (PackedSym, Vec<f64>) {
    let sq = sq_norms(x, d);
    let blocks: Vec<(usize, usize)> = (0..n)
        .step_by(BLOCK)
        .map(|j0| (j0, (j0 + BLOCK).min(n)))
        .collect();
    let mut l = vec![0f32; packed_offset(n, n)];
    let mut slices: Vec<&mut [f32]> = Vec::with_capacity(blocks.len());
    let mut rest: &mut [f32] = &mut l;
    for &(j0, j1) in &blocks {
        let (head, tail) = rest.split_at_mut(packed_offset(n, j1) - packed_offset(n, j0));
        slices.push(head);
        rest = tail;
    }
    // affinities of the lower triangle and partial degrees, block by block
    let partial: Vec<Vec<f64>> = blocks
        .par_iter()
        .zip(slices.into_par_iter())
        .map(|(&(j0, j1), dst)| {
            let (m, b) = (n - j0, j1 - j0);
            let mut blk = vec![0.0; m * b];
            rbf_block(
                &x[j0 * d..],
                &sq[j0..],
                &x[j0 * d..j1 * d],
                &sq[j0..j1],
                d,
                gamma,
                &mut blk,
            );
            let mut deg = vec![0.0; n];
            let mut pos = 0;
            for c in 0..b {
                let col = &blk[c * m..(c + 1) * m];
                let mut colsum = 0.0;
                dst[pos] = 0.0;
                for r in c + 1..m {
                    let v = col[r];
                    colsum += v;
                    deg[j0 + r] += v;
                    dst[pos + r - c] = v as f32;
                }
                deg[j0 + c] += colsum;
                pos += m - c;
            }
            deg
        })
        .collect();
    let mut deg = vec![0.0; n];
    for p in partial {
        deg.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    let dd: Vec<f64> = deg
        .iter()
        .map(|&s| if s > 0.0 { s.sqrt() } else { 1.0 })
        .collect();
    // normalize; the diagonal becomes 1 (shift by I: the spectrum moves to [0, 2] and the
    // wanted eigenvalues become the largest, which is what the solver finds)
    l.par_chunks_mut(1 << 16)
        .enumerate()
        .for_each(|(ci, chunk)| {
            let start = ci << 16;
            // the column holding flat index `start`
            let mut j = column_of(n, start);
            let mut next = packed_offset(n, j + 1);
            for (o, v) in chunk.iter_mut().enumerate() {
                let p = start + o;
                while p >= next {
                    j += 1;
                    next = packed_offset(n, j + 1);
                }
                let i = j + (p - packed_offset(n, j));
                *v = if i == j {
                    1.0
                } else {
                    (f64::from(*v) / (dd[i] * dd[j])) as f32
                };
            }
        });
    (PackedSym::new(l, n), dd)
}

/// The column of flat index `p` of a packed lower triangle.
fn column_of(n: usize, p: usize) -> usize {
    let (mut lo, mut hi) = (0, n);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if packed_offset(n, mid) <= p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// scikit-learn's spectral embedding of the full RBF affinity, `n x k`.
fn exact_embedding(
    x: &[f64],
    n: usize,
    d: usize,
    gamma: f64,
    k: usize,
    seed: u64,
    prog: &mut Progress,
) -> Result<(Array2<f64>, Vec<f64>)> {
    prog.message("affinity matrix");
    let (op, dd) = normalized_affinity(x, n, d, gamma);
    prog.inc(1);
    prog.message("eigenvectors");
    let mut rng = Rng::new(seed ^ 0x5eed_e16e);
    let v0: Vec<f64> = (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let v0 = faer::ColRef::from_slice(&v0);
    let mut vecs = Mat::<f64>::zeros(n, k);
    let mut vals = vec![0.0f64; k];
    let params = PartialEigenParams {
        max_restarts: 1000,
        ..Default::default()
    };
    let req = partial_self_adjoint_eigen_scratch(&op, k, Par::Seq, params);
    let mut buf = MemBuffer::new(req);
    let info = partial_self_adjoint_eigen(
        vecs.as_mut(),
        &mut vals,
        &op,
        v0,
        1e-10,
        Par::Seq,
        MemStack::new(&mut buf),
        params,
    );
    clear_avx_state();
    if info.n_converged_eigen < k {
        return Err(Error::invalid(
            "eigensolver",
            format!(
                "only {} of {k} eigenvectors converged; try Gamma::Scale or a larger gamma",
                info.n_converged_eigen
            ),
        ));
    }
    prog.inc(1);
    let mut emb = Array2::zeros((n, k));
    for c in 0..k {
        for i in 0..n {
            emb[[i, c]] = vecs[(i, c)] / dd[i];
        }
    }
    sign_flip(&mut emb);
    // eigenvalues of the normalized Laplacian: 1 - (lambda - 1)
    let eig = vals.iter().map(|v| 2.0 - v).collect();
    Ok((emb, eig))
}

/// scikit-learn's `_deterministic_vector_sign_flip`: the largest-magnitude entry of each
/// eigenvector is made positive.
fn sign_flip(emb: &mut Array2<f64>) {
    for mut col in emb.columns_mut() {
        let mut arg = 0;
        for (i, v) in col.iter().enumerate() {
            if v.abs() > col[arg].abs() {
                arg = i;
            }
        }
        if col[arg] < 0.0 {
            col.mapv_inplace(|v| -v);
        }
    }
}

/// dask-ml's Nystrom embedding, `n x k`, rows normalized to unit length.
#[allow(clippy::too_many_arguments)]
fn nystrom_embedding(
    x: &[f64],
    n: usize,
    d: usize,
    gamma: f64,
    k: usize,
    l: usize,
    seed: u64,
    prog: &mut Progress,
) -> Result<(Array2<f64>, Vec<f64>)> {
    let mut rng = Rng::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut perm);
    let mut keep = perm[..l].to_vec();
    let mut rest = perm[l..].to_vec();
    keep.sort_unstable();
    rest.sort_unstable();
    let gather = |idx: &[usize]| -> Vec<f64> {
        idx.iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
            .collect()
    };
    let xk = gather(&keep);
    let xr = gather(&rest);
    let sqk = sq_norms(&xk, d);
    let sqr = sq_norms(&xr, d);
    let nr = rest.len();
    prog.message("landmark affinities");

    // A (l x l), exact
    let mut a = vec![0.0; l * l];
    rbf_block(&xk, &sqk, &xk, &sqk, d, gamma, &mut a);
    for i in 0..l {
        a[i * l + i] = 1.0;
    }
    // pass 1 over B = affinity(keep, rest): row sums b1 and column sums b2
    let blocks: Vec<(Vec<f64>, Vec<f64>)> = (0..nr.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let j0 = b * BLOCK;
            let nb = BLOCK.min(nr - j0);
            let mut blk = vec![0.0; l * nb];
            rbf_block(
                &xk,
                &sqk,
                &xr[j0 * d..(j0 + nb) * d],
                &sqr[j0..j0 + nb],
                d,
                gamma,
                &mut blk,
            );
            let mut rows = vec![0.0; l];
            let cols: Vec<f64> = blk
                .chunks_exact(l)
                .map(|col| {
                    rows.iter_mut().zip(col).for_each(|(r, v)| *r += v);
                    col.iter().sum()
                })
                .collect();
            (rows, cols)
        })
        .collect();
    let mut b1 = vec![0.0; l];
    let mut b2 = Vec::with_capacity(nr);
    for (rows, cols) in blocks {
        b1.iter_mut().zip(rows).for_each(|(s, v)| *s += v);
        b2.extend(cols);
    }
    // a = A.sum(0); d1_si = 1 / sqrt(a + b1)
    let a_col: Vec<f64> = a.chunks_exact(l).map(|col| col.iter().sum()).collect();
    let d1: Vec<f64> = a_col
        .iter()
        .zip(&b1)
        .map(|(s, t)| 1.0 / (s + t).sqrt())
        .collect();
    let a_mat = MatRef::from_column_major_slice(&a, l, l);
    let svd_a = a_mat.svd().map_err(|e| {
        Error::invalid(
            "nystrom",
            format!("SVD of the landmark affinity failed: {e:?}"),
        )
    })?;
    let a_inv = svd_a.pseudoinverse();
    // inner = pinv(A) b1
    let inner: Vec<f64> = (0..l)
        .map(|i| (0..l).map(|j| a_inv[(i, j)] * b1[j]).sum())
        .collect();
    // A2 = diag(d1) A diag(d1) and its SVD
    let a2 = Mat::<f64>::from_fn(l, l, |i, j| d1[i] * a[j * l + i] * d1[j]);
    let svd = a2.svd().map_err(|e| {
        Error::invalid(
            "nystrom",
            format!("SVD of the normalized landmark affinity failed: {e:?}"),
        )
    })?;
    clear_avx_state();
    let s: Vec<f64> = (0..k).map(|c| svd.S()[c]).collect();
    let s_floor = s[0].abs() * 1e-12 + f64::MIN_POSITIVE;
    let scale = (l as f64 / n as f64).sqrt();
    // W = diag(d1) U_A[:, :k] diag(1/sqrt(S)): V2 rows of the rest are d2_j * B[:, j]^T W
    let w: Vec<f64> = (0..l)
        .flat_map(|i| {
            let s = &s;
            let u = svd.U();
            let d1i = d1[i];
            (0..k).map(move |c| d1i * u[(i, c)] / s[c].max(s_floor).sqrt())
        })
        .collect();
    prog.inc(1);
    prog.message("extending the eigenvectors");
    let mut emb = Array2::<f64>::zeros((n, k));
    // rows of the landmarks: scale * A2 U_A[:, :k] diag(1/sqrt(S))
    for i in 0..l {
        for c in 0..k {
            let mut v = 0.0;
            for j in 0..l {
                v += a2[(i, j)] * svd.U()[(j, c)];
            }
            emb[[keep[i], c]] = scale * v / s[c].max(s_floor).sqrt();
        }
    }
    // pass 2: rows of the rest
    let rows: Vec<Vec<f64>> = (0..nr.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let j0 = b * BLOCK;
            let nb = BLOCK.min(nr - j0);
            let mut blk = vec![0.0; l * nb];
            rbf_block(
                &xk,
                &sqk,
                &xr[j0 * d..(j0 + nb) * d],
                &sqr[j0..j0 + nb],
                d,
                gamma,
                &mut blk,
            );
            let mut out = vec![0.0; nb * k];
            for (c, col) in blk.chunks_exact(l).enumerate() {
                let bt_inner: f64 = col.iter().zip(&inner).map(|(a, b)| a * b).sum();
                let deg = b2[j0 + c] + bt_inner;
                // the row is normalized below, so only the sign of d2 matters; an
                // approximate degree <= 0 (possible with the pseudo-inverse) counts as 1
                let d2 = if deg > 0.0 && deg.is_finite() {
                    1.0 / deg.sqrt()
                } else {
                    1.0
                };
                for (i, &bij) in col.iter().enumerate() {
                    let wi = &w[i * k..(i + 1) * k];
                    for (o, wv) in out[c * k..(c + 1) * k].iter_mut().zip(wi) {
                        *o += bij * wv;
                    }
                }
                out[c * k..(c + 1) * k]
                    .iter_mut()
                    .for_each(|o| *o *= scale * d2);
            }
            out
        })
        .collect();
    for (b, block) in rows.iter().enumerate() {
        for (c, row) in block.chunks_exact(k).enumerate() {
            let j = rest[b * BLOCK + c];
            for (o, v) in emb.row_mut(j).iter_mut().zip(row) {
                *o = *v;
            }
        }
    }
    // normalize rows (Eq. 4)
    emb.rows_mut().into_iter().for_each(|mut r| {
        let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            r.mapv_inplace(|v| v / norm);
        }
    });
    prog.inc(1);
    Ok((emb, s))
}

/// A fitted spectral clustering.
#[derive(Debug, Clone)]
pub struct SpectralModel {
    labels: Vec<i32>,
    counts: Vec<usize>,
    embedding: Array2<f64>,
    eigenvalues: Vec<f64>,
    gamma: f64,
    mode: SpectralMode,
    n_components: usize,
    kmeans_inertia: f64,
    kmeans_iter: usize,
    seconds: f64,
    threads: usize,
}

impl SpectralModel {
    /// The cluster of every sample.
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Samples per cluster.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// The spectral embedding that k-means clustered, `n x k`.
    pub fn embedding(&self) -> &Array2<f64> {
        &self.embedding
    }

    /// Exact: the `k` smallest eigenvalues of the normalized Laplacian. Nystrom: the `k`
    /// largest singular values of the normalized landmark affinity.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// The RBF coefficient used.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Exact or Nystrom.
    pub fn mode(&self) -> SpectralMode {
        self.mode
    }

    /// Inertia of the k-means fit in the embedding.
    pub fn inertia(&self) -> f64 {
        self.kmeans_inertia
    }

    /// Iterations of the k-means fit in the embedding.
    pub fn n_iter(&self) -> usize {
        self.kmeans_iter
    }

    /// Wall-clock seconds of the fit.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let mode = match self.mode {
            SpectralMode::Exact => "exact (full affinity)".to_string(),
            SpectralMode::Nystrom => format!("nystrom, {} components", self.n_components),
        };
        vec![
            ("k", self.counts.len().to_string()),
            ("samples", self.labels.len().to_string()),
            ("mode", mode),
            ("gamma", fmt_num(self.gamma)),
            (
                "eigenvalues",
                self.eigenvalues
                    .iter()
                    .map(|v| fmt_num(*v))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "counts",
                self.counts
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "k-means",
                format!(
                    "inertia {} in the embedding, {} iterations",
                    fmt_num(self.kmeans_inertia),
                    self.kmeans_iter
                ),
            ),
            (
                "time",
                format!("{:.3} s on {} thread(s)", self.seconds, self.threads),
            ),
        ]
    }

    /// The model as an HTML table.
    pub fn to_html(&self) -> String {
        html_table("SpectralModel", &self.rows())
    }
}

crate::core::fmt::html_repr!(SpectralModel);

impl fmt::Display for SpectralModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SpectralModel")?;
        for (name, value) in self.rows() {
            writeln!(f, "  {name:<12} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_blobs() -> Array2<f64> {
        let mut rng = Rng::new(2);
        Array2::from_shape_fn((300, 3), |(i, _)| (i / 100) as f64 * 3.0 + rng.uniform())
    }

    #[test]
    fn exact_and_nystrom_separate_blobs() {
        let x = three_blobs();
        for model in [
            SpectralClustering::new(3)
                .exact()
                .progress(ProgressMode::Silent)
                .fit(&x)
                .unwrap(),
            SpectralClustering::new(3)
                .n_components(50)
                .progress(ProgressMode::Silent)
                .fit(&x)
                .unwrap(),
        ] {
            let l = model.labels();
            for b in 0..3 {
                assert!(
                    l[b * 100..(b + 1) * 100].iter().all(|&v| v == l[b * 100]),
                    "{model}"
                );
            }
            assert_eq!(model.counts(), &[100, 100, 100]);
        }
    }

    #[test]
    fn bad_input_is_typed() {
        let x = three_blobs();
        assert!(matches!(
            SpectralClustering::new(3).n_components(300).fit(&x),
            Err(Error::TooFewSamples {
                what: "n_components",
                ..
            })
        ));
        assert!(matches!(
            SpectralClustering::new(3).n_components(2).fit(&x),
            Err(Error::Invalid {
                what: "n_components",
                ..
            })
        ));
        assert!(matches!(
            SpectralClustering::new(3).gamma(Gamma::Value(-1.0)).fit(&x),
            Err(Error::Invalid { what: "gamma", .. })
        ));
        assert!(matches!(
            SpectralClustering::new(0).fit(&x),
            Err(Error::Invalid { what: "k", .. })
        ));
    }

    #[test]
    fn scale_gamma_is_sklearn_rule() {
        // values 0, 2: var 1, d = 1
        assert_eq!(scale_gamma(&[0.0, 2.0], 1), 1.0);
        assert_eq!(scale_gamma(&[0.0, 2.0, 0.0, 2.0], 2), 0.5);
        assert_eq!(scale_gamma(&[3.0, 3.0], 1), 1.0);
    }
}
