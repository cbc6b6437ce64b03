//! The Nystrom spectral embedding (dask-ml's): a sample block, its affinity to the rest
//! computed block by block, approximate degrees, and the extended eigenvectors.

use faer::{Mat, MatRef};
use ndarray::Array2;
use rayon::prelude::*;

use super::affinity::*;
use crate::cluster::Rng;
use crate::error::{Error, Result};
use crate::runtime::progress::Progress;

/// dask-ml's Nystrom embedding, `n x k`, rows normalized to unit length.
#[allow(clippy::too_many_arguments)]
pub(super) fn nystrom_embedding(
    x: &[f64],
    n: usize,
    d: usize,
    gamma: f64,
    k: usize,
    l: usize,
    seed: u64,
    prog: &mut Progress,
) -> Result<(Array2<f64>, Vec<f64>)> {
    let (keep, rest) = split_landmarks(n, l, seed);
    let gather = |idx: &[usize]| -> Vec<f64> {
        idx.iter()
            .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
            .collect()
    };
    let xk = gather(&keep);
    let xr = gather(&rest);
    let sqk = sq_norms(&xk, d);
    let sqr = sq_norms(&xr, d);
    prog.message("landmark affinities");

    // A (l x l), exact
    let mut a = vec![0.0; l * l];
    rbf_block(&xk, &sqk, &xk, &sqk, d, gamma, &mut a);
    for i in 0..l {
        a[i * l + i] = 1.0;
    }
    let lm = Landmarks {
        xk: &xk,
        sqk: &sqk,
        xr: &xr,
        sqr: &sqr,
        d,
        gamma,
    };
    // pass 1 over B = affinity(keep, rest): row sums b1 and column sums b2
    let (b1, b2) = lm.sums();
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
    let rows = lm.extend(&b2, &inner, &w, k, scale);
    place_rows(&mut emb, &rows, &rest, k);
    prog.inc(1);
    Ok((emb, s))
}

/// `l` landmarks drawn at random (seeded) and the other samples, both in index order.
fn split_landmarks(n: usize, l: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut perm);
    let mut keep = perm[..l].to_vec();
    let mut rest = perm[l..].to_vec();
    keep.sort_unstable();
    rest.sort_unstable();
    (keep, rest)
}

/// Puts the rows of the other samples (`rows`, per block of `BLOCK`) in place and
/// normalizes every row of the embedding to unit length.
fn place_rows(emb: &mut Array2<f64>, rows: &[Vec<f64>], rest: &[usize], k: usize) {
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
}

/// The landmarks (`keep`) and the other samples (`rest`) of a Nystrom embedding, with
/// their squared norms: what both passes over `B = affinity(keep, rest)` need. `B` is
/// computed block by block in each pass and never held whole.
struct Landmarks<'a> {
    xk: &'a [f64],
    sqk: &'a [f64],
    xr: &'a [f64],
    sqr: &'a [f64],
    d: usize,
    gamma: f64,
}

impl Landmarks<'_> {
    /// Pass 1: row sums (`b1`, one per landmark) and column sums (`b2`, one per other
    /// sample) of `B`, in block order.
    fn sums(&self) -> (Vec<f64>, Vec<f64>) {
        let (l, nr, d) = (self.sqk.len(), self.sqr.len(), self.d);
        let blocks: Vec<(Vec<f64>, Vec<f64>)> = (0..nr.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let j0 = b * BLOCK;
                let nb = BLOCK.min(nr - j0);
                let mut blk = vec![0.0; l * nb];
                rbf_block(
                    self.xk,
                    self.sqk,
                    &self.xr[j0 * d..(j0 + nb) * d],
                    &self.sqr[j0..j0 + nb],
                    self.d,
                    self.gamma,
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
        (b1, b2)
    }

    /// Pass 2: the embedding rows of the other samples, `d2_j * B[:, j]^T W` scaled, per
    /// block of `BLOCK` samples (`k` values per sample).
    fn extend(&self, b2: &[f64], inner: &[f64], w: &[f64], k: usize, scale: f64) -> Vec<Vec<f64>> {
        let (l, nr, d) = (self.sqk.len(), self.sqr.len(), self.d);
        (0..nr.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let j0 = b * BLOCK;
                let nb = BLOCK.min(nr - j0);
                let mut blk = vec![0.0; l * nb];
                rbf_block(
                    self.xk,
                    self.sqk,
                    &self.xr[j0 * d..(j0 + nb) * d],
                    &self.sqr[j0..j0 + nb],
                    self.d,
                    self.gamma,
                    &mut blk,
                );
                let mut out = vec![0.0; nb * k];
                for (c, col) in blk.chunks_exact(l).enumerate() {
                    let bt_inner: f64 = col.iter().zip(inner).map(|(a, b)| a * b).sum();
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
            .collect()
    }
}
