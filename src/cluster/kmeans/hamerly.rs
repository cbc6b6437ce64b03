//! Hamerly's bounds: assignment passes that skip samples whose nearest centroid cannot
//! have changed.

use rayon::prelude::*;

use super::kernel::Partial;
use super::*;
use crate::cluster::{CHUNK, Data, Real};

/// Hamerly bounds, per sample: an upper bound on the distance to the assigned centroid
/// and a lower bound on the distance to every other centroid (not squared).
pub(super) struct Bounds {
    pub(super) upper: Vec<f64>,
    pub(super) lower: Vec<f64>,
}

/// One Hamerly iteration: like `assign` with accumulation, but samples whose bounds prove
/// the assignment unchanged skip the distance computations. Inertia is not available
/// (NaN) because skipped samples have no exact distance.
pub(super) fn assign_hamerly<T: Real>(
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
pub(super) fn update_bounds(labels: &[i32], bounds: &mut Bounds, shift: &[f64]) {
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
