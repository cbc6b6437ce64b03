//! Mini-batch k-means over a raster larger than memory: every pass streams the chunks in
//! a new random order and cuts their valid pixels into mini-batches.

use std::time::Instant;

use ndarray::Array2;

use super::MiniBatchKMeans;
use super::step::{Convergence, MIN_STEPS, State, step};
use crate::cluster::kmeans::{KMeansModel, Packed};
use crate::cluster::stream::{PixelStream, Pixels};
use crate::cluster::{Data, Rng, check_k};
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::runtime::Runtime;
use crate::runtime::grid::Window;
use crate::runtime::resources::PoolPlan;

impl MiniBatchKMeans {
    /// Fits by streaming the named bands of `raster` chunk by chunk: memory holds a few
    /// chunks, never the whole raster.
    ///
    /// The chunks (the raster's chunk grid: full-width strips of whole blocks unless set
    /// with [`Raster::chunks`]) are visited in a seeded random order each pass; the
    /// valid pixels of a chunk are shuffled and cut into mini-batches. The centroids are
    /// initialised by k-means++ on `init_size` pixels drawn from the first chunks of that
    /// order. After early stopping (or `max_iter` passes) a last pass counts the pixels
    /// of each cluster and measures the inertia. The model has no per-pixel labels: map
    /// them with [`KMeansModel::predict_raster`].
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0))
    ///     .with_scale(1e-4, 0.0);
    /// let km = MiniBatchKMeans::new(4).seed(0).max_iter(1).fit_raster(&scene, &["green", "red"])?;
    /// assert_eq!(km.counts().iter().sum::<usize>(), 3_169_229);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn fit_raster(&self, raster: &Raster, bands: &[&str]) -> Result<KMeansModel> {
        self.fit_raster_in(raster, bands, &self.runtime_for_call()?)
    }

    /// [`fit_raster`](MiniBatchKMeans::fit_raster) on a runtime of `plan` (its threads,
    /// and chunks sized from its memory budget).
    pub fn fit_raster_with(
        &self,
        raster: &Raster,
        bands: &[&str],
        plan: &PoolPlan,
    ) -> Result<KMeansModel> {
        self.fit_raster_in(raster, bands, &Runtime::from_plan(plan.clone()))
    }

    /// [`fit_raster`](MiniBatchKMeans::fit_raster) on `rt` (progress as set on the
    /// estimator): every pass streams the raster through the executor, at most as many
    /// chunks in flight as `rt`'s memory budget holds, handed over in the pass's order
    /// (so the model does not depend on the thread count); a failed read is an
    /// [`Error::Chunk`] naming its chunk.
    pub fn fit_raster_in(
        &self,
        raster: &Raster,
        bands: &[&str],
        rt: &Runtime,
    ) -> Result<KMeansModel> {
        self.validate()?;
        // a raster's labels are meant for a label map (predict_raster, write_labels)
        crate::cluster::LabelMap::check_k(self.k)?;
        for b in bands {
            raster.band_index(b)?;
        }
        let start = Instant::now();
        let rt = rt.clone().with_progress(self.progress);
        // Held by the consumer per pixel of a chunk: its shuffled copy and permutation.
        let stream = PixelStream::chunks(&rt, raster, bands, (4 * bands.len() + 8) as u64)?;
        let (w, h) = raster.size();
        let mut state = self.raster_init(&rt, &stream, bands, w * h)?;
        let (epochs, converged) = self.raster_passes(&rt, &stream, &mut state, w * h)?;
        let (counts, inertia) = raster_counts(&rt, &stream, &state.centroids, self.k, state.d)?;
        let mut model = KMeansModel::from_parts(
            Array2::from_shape_vec((self.k, state.d), state.centroids)
                .map_err(|e| Error::internal(format!("centroids: {e}")))?,
            Vec::new(),
            counts,
            inertia,
            epochs,
            converged,
            self.seed,
            bands.iter().map(|s| s.to_string()).collect(),
        );
        model.set_timing(rt.threads(), start.elapsed().as_secs_f64());
        Ok(model)
    }

    /// The initial state of a raster fit: k-means++ (see
    /// [`initialise`](MiniBatchKMeans::initialise)) on up to `init_size` pixels drawn
    /// from the first chunks of a random order.
    fn raster_init(
        &self,
        rt: &Runtime,
        stream: &PixelStream<'_>,
        bands: &[&str],
        pixels: usize,
    ) -> Result<State> {
        let (k, d) = (self.k, bands.len());
        let mut rng = Rng::new(self.seed);
        let order = shuffled(stream.windows(), &mut rng);
        let init_size = self.init_size_for(pixels);
        let per_chunk = init_size.div_ceil(order.len().clamp(1, 8));
        let mut init: Vec<f32> = Vec::with_capacity(init_size * d);
        let sample = |_, px: Pixels| Ok(px.values);
        stream.run_while(rt, "mini-batch init sample", &order, sample, |vals| {
            let nv = vals.len() / d;
            for i in rng.sample_indices(nv, per_chunk.min(nv)) {
                init.extend_from_slice(&vals[i * d..(i + 1) * d]);
            }
            Ok(init.len() < init_size * d)
        })?;
        let m = init.len() / d;
        if m == 0 {
            return Err(Error::NoValidSamples {
                reason: format!(
                    "every pixel is nodata in at least one of the bands {}",
                    bands.join(", ")
                ),
            });
        }
        check_k(k, m, d)?;
        let data = Data {
            x: &init[..],
            n: m,
            d,
        };
        let centroids = rt.install("mini-batch init", || self.initialise(data, &mut rng))?;
        Ok(State {
            centroids,
            weights: vec![0.0; k],
            d,
            rng,
            steps: 0,
            since_reassign: 0,
        })
    }

    /// Passes over the raster in a new random chunk order each, until early stopping or
    /// `max_iter` passes: `(passes, converged)`.
    fn raster_passes(
        &self,
        rt: &Runtime,
        stream: &PixelStream<'_>,
        state: &mut State,
        pixels: usize,
    ) -> Result<(usize, bool)> {
        let mut n_valid_estimate = pixels;
        let mut conv = Convergence::new();
        let (mut step_no, mut converged) = (0, false);
        for pass in 0..self.max_iter {
            let order = shuffled(stream.windows(), &mut state.rng);
            let label = format!("mini-batch k-means pass {}/{}", pass + 1, self.max_iter);
            let mut seen = 0;
            let values = |_, px: Pixels| Ok(px.values);
            stream.run_while(rt, &label, &order, values, |vals| {
                seen += vals.len() / state.d;
                converged =
                    self.chunk_steps(state, &mut conv, &vals, &mut step_no, n_valid_estimate);
                Ok(!converged)
            })?;
            if converged {
                return Ok((pass + 1, true));
            }
            n_valid_estimate = seen.max(1);
        }
        Ok((self.max_iter, false))
    }

    /// The mini-batch steps over one chunk's valid pixels `vals`, shuffled and cut into
    /// batches (a short tail joins the previous batch); true once converged.
    fn chunk_steps(
        &self,
        state: &mut State,
        conv: &mut Convergence,
        vals: &[f32],
        step_no: &mut usize,
        n_valid_estimate: usize,
    ) -> bool {
        let (k, d) = (self.k, state.d);
        let nv = vals.len() / d;
        if nv == 0 {
            return false;
        }
        let mut perm: Vec<usize> = (0..nv).collect();
        state.rng.shuffle(&mut perm);
        let shuffled: Vec<f32> = perm
            .iter()
            .flat_map(|&i| vals[i * d..(i + 1) * d].iter().copied())
            .collect();
        let mut cuts: Vec<usize> = (0..nv).step_by(self.batch_size).collect();
        if cuts.len() > 1 && nv - cuts[cuts.len() - 1] < self.batch_size / 2 {
            cuts.pop();
        }
        for (c, &s) in cuts.iter().enumerate() {
            let e = cuts.get(c + 1).copied().unwrap_or(nv);
            let batch = Data {
                x: &shuffled[s * d..e * d],
                n: e - s,
                d,
            };
            let reassign = state.random_reassign(k, batch.n);
            let (inertia, sq_diff) = step(state, k, batch, self.reassignment_ratio, reassign);
            state.steps += 1;
            let stop = conv.update(
                self,
                *step_no,
                n_valid_estimate,
                batch.n,
                inertia,
                sq_diff,
                0.0,
            );
            if stop && *step_no + 1 >= MIN_STEPS {
                return true;
            }
            *step_no += 1;
        }
        false
    }
}

/// The windows in a random order drawn from `rng`.
fn shuffled(windows: &[Window], rng: &mut Rng) -> Vec<Window> {
    let mut order: Vec<usize> = (0..windows.len()).collect();
    rng.shuffle(&mut order);
    order.into_iter().map(|i| windows[i]).collect()
}

/// Pixels per cluster and the inertia of the raster's valid pixels, summed in chunk order.
fn raster_counts(
    rt: &Runtime,
    stream: &PixelStream<'_>,
    centroids: &[f64],
    k: usize,
    d: usize,
) -> Result<(Vec<usize>, f64)> {
    let packed = Packed::<f32>::new(centroids, k, d);
    let (mut counts, mut inertia) = (vec![0usize; k], 0.0);
    let count = |_, px: Pixels| {
        let (mut c, mut i) = (vec![0usize; k], 0.0);
        for row in px.values.chunks_exact(d) {
            let (label, dist) = packed.nearest(row);
            c[label] += 1;
            i += f64::from(dist);
        }
        Ok((c, i))
    };
    let label = "mini-batch k-means counts";
    stream.run(rt, label, stream.windows(), true, count, |_, _, (c, i)| {
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        inertia += i;
        Ok(())
    })?;
    Ok((counts, inertia))
}
