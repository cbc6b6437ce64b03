//! A k-means fit shared among processes (MPI ranks, feature `mpi`, driven by
//! `crate::distributed`): every rank holds the samples and computes the same
//! initialisation from the same seed; each iteration's assignment pass is split among the
//! ranks by whole chunks of samples, and the per-chunk partial results (sums, counts,
//! inertia, changed labels) are gathered and reduced in chunk order on every rank. As a
//! single process reduces the same per-chunk partials in the same order, the centroids,
//! labels, inertia and iteration count are bit for bit those of a single-process fit.

use rayon::prelude::*;

use super::Packed;
use super::kernel::{Partial, assign};
use crate::cluster::{CHUNK, Data, Real};

/// How the processes of a shared fit talk: implemented over MPI by
/// `crate::distributed`. Every method is a collective: each rank calls it in turn. The
/// fit calls it from its pool's threads (one call at a time), hence `Sync`.
pub(crate) trait FitRanks: Sync {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// Ranks sharing the fit.
    fn ranks(&self) -> usize;
    /// Every rank's values, concatenated in rank order.
    fn all_gather_f64(&self, mine: &[f64]) -> Vec<f64>;
    /// Every rank's values, concatenated in rank order.
    fn all_gather_i32(&self, mine: &[i32]) -> Vec<i32>;
}

/// This rank's chunks of `n` samples: a contiguous run, whole chunks only, so that its
/// per-chunk partials are the single-process ones.
fn my_chunks(n: usize, ranks: &dyn FitRanks) -> std::ops::Range<usize> {
    let chunks = n.div_ceil(CHUNK);
    let (r, p) = (ranks.rank(), ranks.ranks().max(1));
    chunks * r / p..chunks * (r + 1) / p
}

/// [`assign`] over this rank's chunks, each on its own, then every rank's per-chunk
/// partials gathered and reduced in chunk order. Labels outside this rank's chunks are
/// left as they were: [`share_labels`] brings them up to date.
pub(super) fn assign_shared<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    labels: &mut [i32],
    accumulate: bool,
    ranks: &dyn FitRanks,
) -> Partial {
    let (k, d) = (packed.k, data.d);
    let mine = my_chunks(data.n, ranks);
    let parts: Vec<Partial> = labels
        .par_chunks_mut(CHUNK)
        .enumerate()
        .filter(|(c, _)| mine.contains(c))
        .map(|(c, lab)| {
            let start = c * CHUNK;
            let rows = Data {
                x: &data.x[start * d..(start + lab.len()) * d],
                n: lab.len(),
                d,
            };
            // One chunk: the pass's single partial is this chunk's, exactly.
            assign(rows, packed, lab, accumulate)
        })
        .collect();
    let width = if accumulate { k * d } else { 0 } + k + 2;
    let mut flat = Vec::with_capacity(parts.len() * width);
    for p in &parts {
        flat.extend_from_slice(&p.sums);
        flat.extend_from_slice(&p.counts);
        flat.push(p.inertia);
        flat.push(p.changed as f64);
    }
    let all = ranks.all_gather_f64(&flat);
    let parts = all
        .chunks_exact(width)
        .map(|v| {
            let s = if accumulate { k * d } else { 0 };
            Partial {
                sums: v[..s].to_vec(),
                counts: v[s..s + k].to_vec(),
                inertia: v[s + k],
                changed: v[s + k + 1] as usize,
            }
        })
        .collect();
    Partial::reduce(parts, k, d, accumulate)
}

/// Every rank's labels of its own chunks, so each holds all of them.
pub(super) fn share_labels(labels: &mut [i32], ranks: &dyn FitRanks) {
    let mine = my_chunks(labels.len(), ranks);
    let lo = (mine.start * CHUNK).min(labels.len());
    let hi = (mine.end * CHUNK).min(labels.len());
    let all = ranks.all_gather_i32(&labels[lo..hi]);
    labels.copy_from_slice(&all);
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};

    use super::FitRanks;
    use crate::cluster::KMeans;
    use crate::runtime::progress::ProgressMode;

    /// Ranks as threads of this process: an all-gather is a slot per rank and a barrier.
    struct ThreadRanks<'a> {
        rank: usize,
        ranks: usize,
        slots: &'a Mutex<Vec<Vec<f64>>>,
        barrier: &'a Barrier,
    }

    impl FitRanks for ThreadRanks<'_> {
        fn rank(&self) -> usize {
            self.rank
        }
        fn ranks(&self) -> usize {
            self.ranks
        }
        fn all_gather_f64(&self, mine: &[f64]) -> Vec<f64> {
            self.slots.lock().unwrap()[self.rank] = mine.to_vec();
            self.barrier.wait();
            let all = self.slots.lock().unwrap().concat();
            // Nobody writes the next gather before everyone has read this one.
            self.barrier.wait();
            all
        }
        fn all_gather_i32(&self, mine: &[i32]) -> Vec<i32> {
            let wide: Vec<f64> = mine.iter().map(|&v| v as f64).collect();
            self.all_gather_f64(&wide)
                .into_iter()
                .map(|v| v as i32)
                .collect()
        }
    }

    /// The valid pixels (blue, green, red as stored) of the top quarter of the Landsat
    /// scene: enough samples for several chunks per rank, few enough for a debug build.
    fn scene_samples() -> ndarray::Array2<f32> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF");
        let ds = gdal::Dataset::open(path).expect("open the scene");
        let (w, h) = ds.raster_size();
        let h = h / 4;
        let bands: Vec<Vec<f32>> = (1..=3)
            .map(|b| {
                let band = ds.rasterband(b).expect("band");
                band.read_as::<f32>((0, 0), (w, h), (w, h), None)
                    .expect("read")
                    .into_shape_and_vec()
                    .1
            })
            .collect();
        let valid: Vec<usize> = (0..w * h).filter(|&i| bands[0][i] != 0.0).collect();
        ndarray::Array2::from_shape_fn((valid.len(), 3), |(i, j)| bands[j][valid[i]])
    }

    /// 1, 2 and 3 ranks give the single-process model bit for bit: labels, centroids,
    /// counts, inertia and iterations (the reference is the plain `fit`).
    #[test]
    fn a_fit_shared_among_ranks_is_the_single_process_fit() {
        let x = scene_samples();
        let km = KMeans::new(8)
            .seed(3)
            .threads(1)
            .progress(ProgressMode::Silent);
        let single = km.fit(&x).expect("single fit");
        assert!(
            single.n_iter() > 2,
            "a fit of a few iterations proves little"
        );
        for ranks in 1..=3 {
            let slots = Mutex::new(vec![Vec::new(); ranks]);
            let barrier = Barrier::new(ranks);
            let models: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..ranks)
                    .map(|rank| {
                        let (km, x, slots, barrier) = (&km, &x, &slots, &barrier);
                        s.spawn(move || {
                            let link = ThreadRanks {
                                rank,
                                ranks,
                                slots,
                                barrier,
                            };
                            km.fit_shared(x, &link).expect("shared fit")
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, m) in models.iter().enumerate() {
                let at = format!("{ranks} ranks, rank {rank}");
                assert_eq!(m.labels(), single.labels(), "labels, {at}");
                assert_eq!(m.centroids(), single.centroids(), "centroids, {at}");
                assert_eq!(m.counts(), single.counts(), "counts, {at}");
                assert_eq!(
                    m.inertia().to_bits(),
                    single.inertia().to_bits(),
                    "inertia, {at}"
                );
                assert_eq!(m.n_iter(), single.n_iter(), "iterations, {at}");
            }
        }
    }
}
