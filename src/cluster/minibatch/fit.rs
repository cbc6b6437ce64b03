//! Mini-batch k-means on samples in memory: `partial_fit` (one step per call) and `fit`
//! (random batches until early stopping, then one pass for the labels).

use std::time::Instant;

use ndarray::Array2;
use rayon::prelude::*;

use super::MiniBatchKMeans;
use super::step::{Convergence, MIN_STEPS, State, step};
use crate::cluster::kmeans::{KMeansModel, Packed, data_of};
use crate::cluster::{
    AsFeatures, CHUNK, Data, FeatureView, Real, Rng, check_finite, check_k, fmt_num,
};
use crate::error::{Error, Result};
use crate::runtime::progress::Progress;

impl MiniBatchKMeans {
    /// One mini-batch step on `batch` (samples in rows). The first call initialises the
    /// centroids with k-means++ on (a random `init_size` subset of) that batch, so it
    /// must hold at least `k` samples; later calls may hold any number, and an empty
    /// batch (e.g. an all-nodata raster chunk) is skipped.
    ///
    /// Errors: as [`KMeans::fit`](crate::cluster::KMeans::fit) for the first batch; a batch with a
    /// different number of features; non-finite values.
    pub fn partial_fit(&mut self, batch: &(impl AsFeatures + ?Sized)) -> Result<()> {
        self.validate()?;
        crate::cluster::check_label_k(self.k, batch)?;
        // the initialisation runs parallel passes: on a pool of this call, never rayon's
        // global one (statics are reset in every notebook cell)
        let rt = self.runtime_for_call()?;
        match batch.features() {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("partial_fit", || self.partial_fit_data(data))?
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("partial_fit", || self.partial_fit_data(data))?
            }
        }
    }

    fn partial_fit_data<T: Real>(&mut self, data: Data<'_, T>) -> Result<()> {
        if let Some(s) = &self.state {
            if data.d != s.d {
                return Err(Error::invalid(
                    "features",
                    format!("the model has {} features, the batch {}", s.d, data.d),
                ));
            }
            if data.n == 0 {
                return Ok(());
            }
        } else {
            if data.n == 0 && data.d > 0 {
                return Ok(());
            }
            check_k(self.k, data.n, data.d)?;
        }
        check_finite(data)?;
        if self.state.is_none() {
            let mut rng = Rng::new(self.seed);
            let init = self.initialise(data, &mut rng);
            self.state = Some(State {
                centroids: init,
                weights: vec![0.0; self.k],
                d: data.d,
                rng,
                steps: 0,
                since_reassign: 0,
            });
        }
        let (k, batch_size, ratio) = (self.k, self.batch_size, self.reassignment_ratio);
        if let Some(state) = self.state.as_mut() {
            let reassign = state.random_reassign(k, batch_size);
            step(state, k, data, ratio, reassign);
            state.steps += 1;
        }
        Ok(())
    }
    /// Fits on `x` in memory (the state of `partial_fit` is neither used nor changed):
    /// random batches drawn with replacement, early stopping as scikit-learn, then one
    /// parallel pass for the labels and inertia of all samples.
    pub fn fit(&self, x: &(impl AsFeatures + ?Sized)) -> Result<KMeansModel> {
        self.validate()?;
        crate::cluster::check_label_k(self.k, x)?;
        let (n, d) = x.features().dim();
        check_k(self.k, n, d)?;
        let rt = self.runtime_for_call()?;
        let start = Instant::now();
        let mut model = match x.features() {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("mini-batch k-means", || self.fit_data(data))??
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                rt.install("mini-batch k-means", || self.fit_data(data))??
            }
        };
        if let Some(names) = x.feature_names() {
            model = model.with_feature_names(names);
        }
        model.set_timing(rt.threads(), start.elapsed().as_secs_f64());
        Ok(model)
    }

    fn fit_data<T: Real>(&self, data: Data<'_, T>) -> Result<KMeansModel> {
        check_finite(data)?;
        let (n, d, k) = (data.n, data.d, self.k);
        let mut rng = Rng::new(self.seed);
        let tol = self.scaled_tol(data);
        let init = self.initialise(data, &mut rng);
        let mut state = State {
            centroids: init,
            weights: vec![0.0; k],
            d,
            rng,
            steps: 0,
            since_reassign: 0,
        };
        let bs = self.batch_size.min(n);
        let n_steps = (self.max_iter * n / bs).max(1);
        let mut conv = Convergence::new();
        let mut prog = Progress::new(self.progress, "mini-batch k-means", "steps", n_steps as u64);
        let mut buf: Vec<T> = Vec::with_capacity(bs * d);
        let mut converged = false;
        for i in 0..n_steps {
            buf.clear();
            for _ in 0..bs {
                let r = state.rng.below(n);
                buf.extend_from_slice(data.row(r));
            }
            let batch = Data {
                x: &buf[..],
                n: bs,
                d,
            };
            let reassign = state.random_reassign(k, bs);
            let (inertia, sq_diff) = step(&mut state, k, batch, self.reassignment_ratio, reassign);
            state.steps += 1;
            prog.inc(1);
            if conv.update(self, i, n, bs, inertia, sq_diff, tol) && i + 1 >= MIN_STEPS {
                converged = true;
                break;
            }
            if let Some(e) = conv.ewa {
                prog.message(&format!("ewa inertia per sample {}", fmt_num(e)));
            }
        }
        prog.finish();
        let mut labels = vec![-1i32; n];
        let packed = Packed::<T>::new(&state.centroids, k, d);
        let (counts, inertia) = label_pass(data, &packed, &mut labels);
        Ok(KMeansModel::from_parts(
            Array2::from_shape_vec((k, d), state.centroids)
                .map_err(|e| Error::invalid("centroids", e.to_string()))?,
            labels,
            counts,
            inertia,
            (state.steps * bs).div_ceil(n),
            converged,
            self.seed,
            (0..d).map(|j| format!("f{j}")).collect(),
        ))
    }

    fn scaled_tol<T: Real>(&self, data: Data<'_, T>) -> f64 {
        if self.tol == 0.0 {
            return 0.0;
        }
        let (_, var) = crate::cluster::stats::column_stats(data);
        self.tol * var.iter().sum::<f64>() / var.len().max(1) as f64
    }
}

/// Labels, counts and inertia of all samples (parallel, chunk-ordered).
fn label_pass<T: Real>(
    data: Data<'_, T>,
    packed: &Packed<T>,
    labels: &mut [i32],
) -> (Vec<usize>, f64) {
    let k = packed.k();
    let parts: Vec<(Vec<usize>, f64)> = labels
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(ci, lab)| {
            let mut counts = vec![0usize; k];
            let mut inertia = 0.0;
            for (o, l) in lab.iter_mut().enumerate() {
                let (c, dist) = packed.nearest(data.row(ci * CHUNK + o));
                *l = c as i32;
                counts[c] += 1;
                inertia += dist.as_f64();
            }
            (counts, inertia)
        })
        .collect();
    let mut counts = vec![0usize; k];
    let mut inertia = 0.0;
    for (c, i) in parts {
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        inertia += i;
    }
    (counts, inertia)
}
