//! Lloyd iterations (with Hamerly passes when chosen), empty-cluster relocation, the
//! tolerance.

use rayon::prelude::*;

use super::hamerly::{Bounds, assign_hamerly, update_bounds};
use super::kernel::{Partial, assign};
use super::shared::{FitRanks, assign_shared, share_labels};
use super::*;
use crate::cluster::stats::column_stats;
use crate::cluster::{CHUNK, Data, Real, fmt_num};
use crate::runtime::progress::{Progress, ProgressMode};

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
    lloyd_shared(data, init, max_iter, tol, algorithm, progress, label, None)
}

/// [`lloyd`], with each assignment pass shared among `ranks` when given (see
/// [`super::shared`]; shared passes are Lloyd's: Hamerly's bounds are per sample).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lloyd_shared<T: Real>(
    data: Data<'_, T>,
    init: Vec<f64>,
    max_iter: usize,
    tol: f64,
    algorithm: Algorithm,
    progress: ProgressMode,
    label: &str,
    ranks: Option<&dyn FitRanks>,
) -> RunOutput {
    let (n, d) = (data.n, data.d);
    let k = init.len() / d;
    let mut centroids = init;
    let mut labels = vec![-1i32; n];
    let hamerly = algorithm == Algorithm::Hamerly && ranks.is_none();
    let mut bounds = hamerly.then(|| Bounds {
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
        let part = match (bounds.as_mut(), ranks) {
            (Some(b), _) => assign_hamerly(data, &packed, &centroids, &mut labels, b),
            (None, Some(r)) => assign_shared(data, &packed, &mut labels, true, r),
            (None, None) => assign(data, &packed, &mut labels, true),
        };
        let mut part = part;
        if part.counts.contains(&0.0) {
            // The farthest samples are chosen among all labels, as in one process.
            if let Some(r) = ranks {
                share_labels(&mut labels, r);
            }
            relocate_empty(data, &packed, &labels, &mut part);
        }
        let (new, shifts) = means(&part, &centroids, d);
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
    let final_part = match (last, ranks) {
        (Some(p), _) if strict && !p.inertia.is_nan() => p,
        (_, Some(r)) => assign_shared(data, &Packed::new(&centroids, k, d), &mut labels, false, r),
        (_, None) => assign(data, &Packed::new(&centroids, k, d), &mut labels, false),
    };
    if let Some(r) = ranks {
        share_labels(&mut labels, r);
    }
    RunOutput {
        counts: final_part.counts.iter().map(|&c| c as usize).collect(),
        inertia: final_part.inertia,
        centroids,
        labels,
        n_iter,
        converged,
    }
}

/// The new centroids (cluster means from `part`'s sums and counts; an empty cluster keeps
/// its centroid) and how far each moved.
fn means(part: &Partial, centroids: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let k = centroids.len() / d;
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
    let shifts = (0..k)
        .map(|c| {
            (0..d)
                .map(|j| (new[c * d + j] - centroids[c * d + j]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    (new, shifts)
}

/// Re-seeds empty clusters with the samples farthest from their centroid (scikit-learn's
/// `_relocate_empty_clusters_dense`): their sums move from the old cluster to the empty one.
pub(super) fn relocate_empty<T: Real>(
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
pub(super) fn tolerance<T: Real>(data: Data<'_, T>, tol: f64) -> f64 {
    if tol == 0.0 {
        return 0.0;
    }
    let (mean, var) = column_stats(data);
    let _ = mean;
    tol * var.iter().sum::<f64>() / var.len() as f64
}
