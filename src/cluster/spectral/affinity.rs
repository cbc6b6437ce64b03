//! The RBF affinity: the default gamma, blocks of `exp(-gamma |x - y|^2)`, the packed
//! symmetric matrix the eigensolver multiplies by, and its normalization by degree.

use faer::dyn_stack::{MemStack, StackReq};
use faer::linalg::matmul::matmul;
use faer::matrix_free::LinOp;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// `1 / (d * var(all values))`, or 1 for constant data.
pub(super) fn scale_gamma(x: &[f64], d: usize) -> f64 {
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

pub(super) fn sq_norms(x: &[f64], d: usize) -> Vec<f64> {
    x.par_chunks(d.max(1))
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// RBF affinities between the rows of `a` (m x d) and of `b` (nb x d), written
/// column-major into `out` (m x nb): `exp(-gamma * max(0, |a|^2 + |b|^2 - 2 a.b))`.
#[allow(clippy::too_many_arguments)]
pub(super) fn rbf_block(
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
pub(super) fn clear_avx_state() {
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
pub(super) const BLOCK: usize = 256;

/// Offset of column `j` in the packed lower triangle of an `n x n` matrix.
pub(super) fn packed_offset(n: usize, j: usize) -> usize {
    j * n - j * j.saturating_sub(1) / 2
}

/// The lower triangle (diagonal included) of a symmetric matrix, packed column by column,
/// in `f32`: a quarter of the memory traffic of the full `f64` matrix, which is what a
/// matrix-vector product costs. Applied in parallel over fixed column ranges of equal
/// work whose partial results are added in order (deterministic).
#[derive(Debug)]
pub(super) struct PackedSym {
    pub(super) l: Vec<f32>,
    pub(super) n: usize,
    pub(super) work: Vec<(usize, usize)>,
}

impl PackedSym {
    pub(super) fn new(l: Vec<f32>, n: usize) -> PackedSym {
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
    pub(super) fn apply_vec(&self, v: &[f64]) -> Vec<f64> {
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
pub(super) fn normalized_affinity(
    x: &[f64],
    n: usize,
    d: usize,
    gamma: f64,
) -> (PackedSym, Vec<f64>) {
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
pub(super) fn column_of(n: usize, p: usize) -> usize {
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
