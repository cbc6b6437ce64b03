//! The initial centroids of a mini-batch fit: k-means++ on a random init sample, refined
//! by Lloyd iterations on that sample.

use super::MiniBatchKMeans;
use crate::cluster::kmeans::{Algorithm, Packed, kmeans_plusplus, lloyd};
use crate::cluster::{Data, Real, Rng};
use crate::runtime::progress::ProgressMode;

impl MiniBatchKMeans {
    pub(super) fn init_size_for(&self, n: usize) -> usize {
        let mut s = self.init_size.unwrap_or(3 * self.batch_size);
        if s < self.k {
            s = 3 * self.k;
        }
        s.min(n)
    }
    /// k-means++ on a random init sample, best of `n_init` by inertia on that sample.
    pub(super) fn initialise<T: Real>(&self, data: Data<'_, T>, rng: &mut Rng) -> Vec<f64> {
        let m = self.init_size_for(data.n);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for _ in 0..self.n_init {
            let idx = rng.sample_indices(data.n, m);
            let sub: Vec<T> = idx.iter().flat_map(|&i| data.row(i).to_vec()).collect();
            let sub = Data {
                x: &sub[..],
                n: m,
                d: data.d,
            };
            let c = kmeans_plusplus(sub, self.k, None, rng);
            let (c, inertia) = if self.refine_init {
                let out = lloyd(sub, c, 100, 0.0, Algorithm::Lloyd, ProgressMode::Silent, "");
                (out.centroids, out.inertia)
            } else {
                let packed = Packed::<T>::new(&c, self.k, data.d);
                let inertia = (0..m).map(|i| packed.nearest(sub.row(i)).1.as_f64()).sum();
                (c, inertia)
            };
            if best.as_ref().is_none_or(|b| inertia < b.0) {
                best = Some((inertia, c));
            }
        }
        best.map(|b| b.1).unwrap_or_default()
    }
}
