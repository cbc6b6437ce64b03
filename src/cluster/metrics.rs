//! Clustering metrics: inertia, adjusted Rand index, sampled silhouette score.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{AsFeatures, Rng};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// Sum of squared distances of each sample to the centroid of its label (computed in
/// `f64`), i.e. scikit-learn's `inertia_`.
///
/// ```
/// use rasterlab::cluster::inertia;
/// let x = ndarray::array![[0.0, 0.0], [2.0, 0.0], [10.0, 0.0]];
/// let c = ndarray::array![[1.0, 0.0], [10.0, 0.0]];
/// assert_eq!(inertia(&x, &c, &[0, 0, 1])?, 2.0);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn inertia(
    x: &(impl AsFeatures + ?Sized),
    centroids: &ndarray::Array2<f64>,
    labels: &[i32],
) -> Result<f64> {
    inertia_in(x, centroids, labels, &Runtime::detect()?)
}

/// [`inertia`] on `rt`'s threads.
pub fn inertia_in(
    x: &(impl AsFeatures + ?Sized),
    centroids: &ndarray::Array2<f64>,
    labels: &[i32],
    rt: &Runtime,
) -> Result<f64> {
    let x = x.features().to_f64();
    let (n, d) = x.dim();
    if labels.len() != n {
        return Err(Error::invalid(
            "labels",
            format!("{} labels for {n} samples", labels.len()),
        ));
    }
    if centroids.ncols() != d {
        return Err(Error::invalid(
            "centroids",
            format!("{} features, the samples have {d}", centroids.ncols()),
        ));
    }
    let k = centroids.nrows();
    if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= k) {
        return Err(Error::invalid(
            "labels",
            format!("label {bad} has no centroid (k = {k})"),
        ));
    }
    let parts: Vec<f64> = rt.install("inertia", || {
        (0..n)
            .into_par_iter()
            .fold_chunks(
                super::CHUNK,
                || 0.0,
                |acc, i| {
                    let c = centroids.row(labels[i] as usize);
                    acc + x
                        .row(i)
                        .iter()
                        .zip(c.iter())
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                },
            )
            .collect()
    })?;
    Ok(parts.iter().sum())
}

/// The adjusted Rand index of two labelings of the same samples: 1 for identical
/// partitions (whatever the label numbers), about 0 for random ones. Same definition as
/// scikit-learn's `adjusted_rand_score` (pair-counting form), exact in 128-bit integers.
///
/// ```
/// use rasterlab::cluster::adjusted_rand_index;
/// assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 2, 2])?, 1.0);
/// let ari = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1])?;
/// assert!((ari - 0.5714285714285715).abs() < 1e-12);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn adjusted_rand_index(a: &[i32], b: &[i32]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::invalid(
            "labels",
            format!("labelings of {} and {} samples", a.len(), b.len()),
        ));
    }
    let n = a.len() as i128;
    let relabel = |v: &[i32]| -> (Vec<usize>, usize) {
        let mut map = HashMap::new();
        let ids = v
            .iter()
            .map(|l| {
                let next = map.len();
                *map.entry(*l).or_insert(next)
            })
            .collect();
        (ids, map.len())
    };
    let (ia, ka) = relabel(a);
    let (ib, kb) = relabel(b);
    let mut table = vec![0i128; ka * kb];
    for (x, y) in ia.iter().zip(&ib) {
        table[x * kb + y] += 1;
    }
    let sum_sq: i128 = table.iter().map(|c| c * c).sum();
    let rows: Vec<i128> = (0..ka)
        .map(|i| table[i * kb..(i + 1) * kb].iter().sum())
        .collect();
    let cols: Vec<i128> = (0..kb)
        .map(|j| (0..ka).map(|i| table[i * kb + j]).sum())
        .collect();
    let sum_rows: i128 = rows.iter().map(|c| c * c).sum();
    let sum_cols: i128 = cols.iter().map(|c| c * c).sum();
    // scikit-learn's pair_confusion_matrix
    let tp = sum_sq - n;
    let fp = sum_cols - sum_sq;
    let fneg = sum_rows - sum_sq;
    let tn = n * n - fp - fneg - sum_sq;
    if fneg == 0 && fp == 0 {
        return Ok(1.0);
    }
    // n^4 fits in i128 for any n below 10^9
    let num = 2 * (tp * tn - fneg * fp);
    let den = (tp + fneg) * (fneg + tn) + (tp + fp) * (fp + tn);
    Ok(num as f64 / den as f64)
}

/// Mean silhouette coefficient of a random subset of `sample_size` samples (all when
/// `sample_size >= n`), like scikit-learn's `silhouette_score(x, labels,
/// sample_size=..., random_state=...)`: distances are Euclidean and computed within the
/// subset only. Samples alone in their cluster (within the subset) score 0.
///
/// Errors: label count mismatch, fewer than 2 or more than `subset - 1` distinct labels
/// in the subset, `sample_size` 0, non-finite values.
///
/// ```
/// use rasterlab::cluster::silhouette_score;
/// let x = ndarray::array![[0.0], [0.1], [10.0], [10.1]];
/// let s = silhouette_score(&x, &[0, 0, 1, 1], 4, 0)?;
/// assert!(s > 0.98);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn silhouette_score(
    x: &(impl AsFeatures + ?Sized),
    labels: &[i32],
    sample_size: usize,
    seed: u64,
) -> Result<f64> {
    silhouette_score_in(x, labels, sample_size, seed, &Runtime::detect()?)
}

/// [`silhouette_score`] on `rt`'s threads.
///
/// ```
/// use rasterlab::prelude::*;
/// use rasterlab::cluster::silhouette_score_in;
/// let x = ndarray::array![[0.0], [0.1], [10.0], [10.1]];
/// let rt = Runtime::builder().threads(1).build()?;
/// assert!(silhouette_score_in(&x, &[0, 0, 1, 1], 4, 0, &rt)? > 0.98);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn silhouette_score_in(
    x: &(impl AsFeatures + ?Sized),
    labels: &[i32],
    sample_size: usize,
    seed: u64,
    rt: &Runtime,
) -> Result<f64> {
    let x = x.features().to_f64();
    let (n, d) = x.dim();
    if labels.len() != n {
        return Err(Error::invalid(
            "labels",
            format!("{} labels for {n} samples", labels.len()),
        ));
    }
    if sample_size == 0 {
        return Err(Error::invalid("sample_size", "must be at least 1"));
    }
    let idx: Vec<usize> = if sample_size >= n {
        (0..n).collect()
    } else {
        Rng::new(seed).sample_indices(n, sample_size)
    };
    let m = idx.len();
    let flat: Vec<f64> = idx.iter().flat_map(|&i| x.row(i).to_vec()).collect();
    let data = super::Data { x: &flat, n: m, d };
    rt.install("silhouette: finite check", || super::check_finite(data))??;
    let mut ids: HashMap<i32, usize> = HashMap::new();
    let lab: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let next = ids.len();
            *ids.entry(labels[i]).or_insert(next)
        })
        .collect();
    let k = ids.len();
    if k < 2 || k > m - 1 {
        return Err(Error::invalid(
            "labels",
            format!(
                "silhouette needs 2 to {} distinct labels in the sample, got {k}",
                m.max(2) - 1
            ),
        ));
    }
    let mut sizes = vec![0usize; k];
    for &l in &lab {
        sizes[l] += 1;
    }
    let scores: Vec<f64> = rt.install("silhouette", || {
        (0..m)
            .into_par_iter()
            .map(|i| {
                let xi = &flat[i * d..(i + 1) * d];
                let mut sums = vec![0.0; k];
                for j in 0..m {
                    let xj = &flat[j * d..(j + 1) * d];
                    let dist = xi
                        .iter()
                        .zip(xj)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    sums[lab[j]] += dist;
                }
                let own = lab[i];
                if sizes[own] <= 1 {
                    return 0.0;
                }
                let a = sums[own] / (sizes[own] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != own)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let den = a.max(b);
                if den > 0.0 { (b - a) / den } else { 0.0 }
            })
            .collect()
    })?;
    Ok(scores.iter().sum::<f64>() / m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_matches_scikit_learn_values() {
        // sklearn.metrics.adjusted_rand_score([0,0,1,1,2,2],[0,0,1,2,2,2]) = 0.4444444444444444
        let v = adjusted_rand_index(&[0, 0, 1, 1, 2, 2], &[0, 0, 1, 2, 2, 2]).unwrap();
        assert!((v - 0.4444444444444444).abs() < 1e-12, "{v}");
        // ([0,0,0,0],[0,1,2,3]) = 0.0 ; identical single cluster = 1.0
        assert_eq!(
            adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(),
            0.0
        );
        assert_eq!(adjusted_rand_index(&[1, 1, 1], &[2, 2, 2]).unwrap(), 1.0);
        assert!(adjusted_rand_index(&[0], &[0, 1]).is_err());
    }

    #[test]
    fn silhouette_matches_a_hand_computation() {
        // points 0, 1 in cluster 0 and 4 in cluster 1:
        // s(0) = (4 - 1) / 4, s(1) = (3 - 1) / 3, s(4) = 0 (singleton)
        let x = ndarray::array![[0.0], [1.0], [4.0]];
        let s = silhouette_score(&x, &[0, 0, 1], 10, 0).unwrap();
        assert!((s - (0.75 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!(silhouette_score(&x, &[0, 0, 0], 10, 0).is_err());
    }

    #[test]
    fn inertia_checks_shapes() {
        let x = ndarray::array![[0.0], [1.0]];
        let c = ndarray::array![[0.5]];
        assert_eq!(inertia(&x, &c, &[0, 0]).unwrap(), 0.5);
        assert!(inertia(&x, &c, &[0, 1]).is_err());
        assert!(inertia(&x, &c, &[0]).is_err());
    }
}
