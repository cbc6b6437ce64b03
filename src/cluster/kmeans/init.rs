//! Initialisation: k-means++ (greedy, as scikit-learn) and k-means|| (as dask-ml).

use rayon::prelude::*;

use super::kernel::assign;
use super::*;
use crate::cluster::{CHUNK, Data, Real, Rng};

/// Squared distances (f64) from every sample to `point`.
pub(super) fn dist_to<T: Real>(data: Data<'_, T>, point: &[f64]) -> Vec<f64> {
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
pub(super) fn ordered_sum(v: &[f64]) -> f64 {
    let parts: Vec<f64> = v.par_chunks(CHUNK).map(|c| c.iter().sum::<f64>()).collect();
    parts.iter().sum()
}

pub(super) fn row_f64<T: Real>(data: Data<'_, T>, i: usize) -> Vec<f64> {
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
pub(super) fn weighted_lloyd(
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
