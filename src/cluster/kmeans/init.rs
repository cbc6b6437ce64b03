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

/// Squared distance between a sample and a point, summed in feature order (as
/// [`dist_to`]).
#[inline(always)]
fn sq_dist<T: Real>(row: &[T], point: &[f64]) -> f64 {
    let mut acc = 0.0;
    for (a, b) in row.iter().zip(point) {
        let t = a.as_f64() - b;
        acc += t * t;
    }
    acc
}

/// Candidates whose potentials one pass computes side by side: 4 `f64` lanes of an AVX
/// register. More candidates (k > 20) take several groups.
const TRIALS_GROUP: usize = 4;

/// One pass of greedy k-means++ over a chunk: folds the newest centre `last` into
/// `closest`, then adds up, for each candidate of `cands` (groups of 4, padded), the
/// (weighted) potential `min(closest, d(x, candidate))`. Each candidate's sum runs in
/// sample order, as in scikit-learn's loop, so the vector lanes change no rounding.
#[inline(always)]
fn potentials_chunk<T: Real>(
    data: Data<'_, T>,
    start: usize,
    closest: &mut [f64],
    weights: Option<&[f64]>,
    last: Option<&[f64]>,
    cands: &[[f64; TRIALS_GROUP]],
) -> Vec<[f64; TRIALS_GROUP]> {
    // the usual case (k <= 20: one group of candidates, a few features) with the
    // features known at compile time, so the sums stay in registers
    if cands.len() == data.d {
        let one = match data.d {
            1 => potentials_fixed::<T, 1>(data, start, closest, weights, last, cands),
            2 => potentials_fixed::<T, 2>(data, start, closest, weights, last, cands),
            3 => potentials_fixed::<T, 3>(data, start, closest, weights, last, cands),
            4 => potentials_fixed::<T, 4>(data, start, closest, weights, last, cands),
            5 => potentials_fixed::<T, 5>(data, start, closest, weights, last, cands),
            6 => potentials_fixed::<T, 6>(data, start, closest, weights, last, cands),
            7 => potentials_fixed::<T, 7>(data, start, closest, weights, last, cands),
            8 => potentials_fixed::<T, 8>(data, start, closest, weights, last, cands),
            _ => return potentials_general(data, start, closest, weights, last, cands),
        };
        return vec![one];
    }
    potentials_general(data, start, closest, weights, last, cands)
}

/// [`potentials_chunk`] for `D` features and one group of candidates. The same
/// operations in the same order as [`potentials_general`].
#[inline(always)]
fn potentials_fixed<T: Real, const D: usize>(
    data: Data<'_, T>,
    start: usize,
    closest: &mut [f64],
    weights: Option<&[f64]>,
    last: Option<&[f64]>,
    cands: &[[f64; TRIALS_GROUP]],
) -> [f64; TRIALS_GROUP] {
    let g: [[f64; TRIALS_GROUP]; D] = std::array::from_fn(|j| cands[j]);
    let last: Option<[f64; D]> = last.map(|l| std::array::from_fn(|j| l[j]));
    let x = &data.x[start * D..(start + closest.len()) * D];
    let mut pot = [0.0f64; TRIALS_GROUP];
    for (o, (c0, row)) in closest.iter_mut().zip(x.chunks_exact(D)).enumerate() {
        let row: [f64; D] = std::array::from_fn(|j| row[j].as_f64());
        if let Some(l) = &last {
            let mut dl = 0.0;
            for j in 0..D {
                let t = row[j] - l[j];
                dl += t * t;
            }
            if dl < *c0 {
                *c0 = dl;
            }
        }
        let w = weights.map_or(1.0, |w| w[start + o]);
        let mut acc = [0.0f64; TRIALS_GROUP];
        for j in 0..D {
            for t in 0..TRIALS_GROUP {
                let v = row[j] - g[j][t];
                acc[t] += v * v;
            }
        }
        for t in 0..TRIALS_GROUP {
            // `min` without its NaN rule (the samples are finite): a plain vector min
            pot[t] += if acc[t] < *c0 { acc[t] } else { *c0 } * w;
        }
    }
    pot
}

/// Potentials of a chunk for any number of features and candidates: folds the newest centre `last` into
/// `closest`, then adds up, for each candidate of `cands` (groups of 4, padded), the
/// (weighted) potential `min(closest, d(x, candidate))`. Each candidate's sum runs in
/// sample order, as in scikit-learn's loop, so the vector lanes change no rounding.
#[inline(always)]
fn potentials_general<T: Real>(
    data: Data<'_, T>,
    start: usize,
    closest: &mut [f64],
    weights: Option<&[f64]>,
    last: Option<&[f64]>,
    cands: &[[f64; TRIALS_GROUP]],
) -> Vec<[f64; TRIALS_GROUP]> {
    let d = data.d;
    let mut pots = vec![[0.0f64; TRIALS_GROUP]; cands.len() / d];
    for (o, c0) in closest.iter_mut().enumerate() {
        let i = start + o;
        let row = data.row(i);
        if let Some(l) = last {
            let dl = sq_dist(row, l);
            if dl < *c0 {
                *c0 = dl;
            }
        }
        let w = weights.map_or(1.0, |w| w[i]);
        for (g, pot) in cands.chunks_exact(d).zip(pots.iter_mut()) {
            // `g[j][t]`: feature j of candidate t
            let mut acc = [0.0f64; TRIALS_GROUP];
            for (v, gj) in row.iter().zip(g) {
                let v = v.as_f64();
                for t in 0..TRIALS_GROUP {
                    let x = v - gj[t];
                    acc[t] += x * x;
                }
            }
            for t in 0..TRIALS_GROUP {
                pot[t] += acc[t].min(*c0) * w;
            }
        }
    }
    pots
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn potentials_chunk_avx2<T: Real>(
    data: Data<'_, T>,
    start: usize,
    closest: &mut [f64],
    weights: Option<&[f64]>,
    last: Option<&[f64]>,
    cands: &[[f64; TRIALS_GROUP]],
) -> Vec<[f64; TRIALS_GROUP]> {
    potentials_chunk(data, start, closest, weights, last, cands)
}

/// [`potentials_chunk`] in its AVX2 build when the CPU has it (checked at run time).
fn potentials_dispatch<T: Real>(
    data: Data<'_, T>,
    start: usize,
    closest: &mut [f64],
    weights: Option<&[f64]>,
    last: Option<&[f64]>,
    cands: &[[f64; TRIALS_GROUP]],
) -> Vec<[f64; TRIALS_GROUP]> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the only requirement of a `target_feature` function is that the CPU
        // supports the feature, checked on the line above.
        return unsafe { potentials_chunk_avx2(data, start, closest, weights, last, cands) };
    }
    potentials_chunk(data, start, closest, weights, last, cands)
}

/// Greedy k-means++ as scikit-learn's `_kmeans_plusplus`: returns `k x d` row-major
/// centroids. `weights` (one per sample) weight the draws and potentials.
///
/// Each round is one pass over the samples: the centre chosen last is folded into the
/// distances to the nearest centre in the same pass that computes the candidates'
/// potentials, and the draws search per-chunk sums (kept from that pass) instead of a
/// cumulative sum over all samples: the cumulative sum at sample `i` is the sum of the
/// chunks before it plus the running sum inside its chunk. That differs from one running
/// sum over all samples only in rounding (a draw lands on another sample only if it
/// falls within ~1e-16 of a boundary), and it removes a serial pass and two
/// sample-sized arrays per round.
pub(crate) fn kmeans_plusplus<T: Real>(
    data: Data<'_, T>,
    k: usize,
    weights: Option<&[f64]>,
    rng: &mut Rng,
) -> Vec<f64> {
    let (n, d) = (data.n, data.d);
    let trials = 2 + (k as f64).ln() as usize;
    let first = first_center(n, weights, rng);
    let mut centers = row_f64(data, first);
    let mut closest = dist_to(data, &centers);
    let w_at = |i: usize| weights.map_or(1.0, |w| w[i]);
    // (weighted) potential of each chunk, summed in sample order
    let mut chunk_pot: Vec<f64> = closest
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, cl)| {
            let mut s = 0.0;
            for (o, &v) in cl.iter().enumerate() {
                s += v * w_at(ci * CHUNK + o);
            }
            s
        })
        .collect();
    let mut pot: f64 = chunk_pot.iter().sum();
    // the newest centre, not yet folded into `closest`
    let mut last: Option<Vec<f64>> = None;
    for _ in 1..k {
        // potential of sample i: min(closest, d(x, last)) * w
        let value = |i: usize| {
            let c = closest[i];
            let c = match &last {
                Some(l) => {
                    let dl = sq_dist(data.row(i), l);
                    if dl < c { dl } else { c }
                }
                None => c,
            };
            c * w_at(i)
        };
        let candidates: Vec<usize> = (0..trials)
            .map(|_| draw(rng.uniform() * pot, &chunk_pot, n, &value))
            .collect();
        let cand_rows: Vec<Vec<f64>> = candidates.iter().map(|&i| row_f64(data, i)).collect();
        // groups of 4 candidates, feature-major (`[group * d + feature][lane]`); a short
        // last group repeats its first candidate in the unused lanes
        let groups: Vec<[f64; TRIALS_GROUP]> = cand_rows
            .chunks(TRIALS_GROUP)
            .flat_map(|grp| {
                (0..d).map(move |j| std::array::from_fn(|t| grp.get(t).unwrap_or(&grp[0])[j]))
            })
            .collect();
        let parts: Vec<Vec<[f64; TRIALS_GROUP]>> = closest
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(ci, cl)| {
                potentials_dispatch(data, ci * CHUNK, cl, weights, last.as_deref(), &groups)
            })
            .collect();
        let pot_of =
            |part: &[[f64; TRIALS_GROUP]], t: usize| part[t / TRIALS_GROUP][t % TRIALS_GROUP];
        let pots: Vec<f64> = (0..trials)
            .map(|t| parts.iter().fold(0.0, |a, p| a + pot_of(p, t)))
            .collect();
        let mut best = 0;
        for t in 1..trials {
            if pots[t] < pots[best] {
                best = t;
            }
        }
        pot = pots[best];
        chunk_pot = parts.iter().map(|p| pot_of(p, best)).collect();
        centers.extend_from_slice(&cand_rows[best]);
        last = Some(cand_rows[best].clone());
    }
    centers
}

/// The first centre: uniform, or drawn with probability proportional to the weights.
fn first_center(n: usize, weights: Option<&[f64]>, rng: &mut Rng) -> usize {
    match weights {
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
    }
}

/// The first sample whose cumulative potential reaches `r` (the last sample if none):
/// whole chunks are skipped by their sums, the chunk holding `r` is walked.
fn draw(r: f64, chunk_pot: &[f64], n: usize, value: &impl Fn(usize) -> f64) -> usize {
    let mut before = 0.0;
    for (ci, &p) in chunk_pot.iter().enumerate() {
        let after = before + p;
        if after >= r {
            let mut s = 0.0;
            for i in ci * CHUNK..((ci + 1) * CHUNK).min(n) {
                s += value(i);
                if before + s >= r {
                    return i;
                }
            }
        }
        before = after;
    }
    n - 1
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
