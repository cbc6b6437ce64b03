//! Samples read from a raster: every band or the named bands of its valid pixels
//! (streamed through the executor), or the valid pixels of one window.

use ndarray::Array2;

use super::{Samples, SourceGrid, Values};
use crate::cluster::stream::{PixelStream, Pixels, valid_pixels};
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::runtime::Runtime;
use crate::runtime::grid::Window;
use crate::runtime::resources::PoolPlan;

impl Raster {
    /// All bands of the raster as features of its valid pixels; see [`Samples`].
    pub fn to_samples(&self) -> Result<Samples> {
        Samples::from_raster(self)
    }
}
impl Samples {
    /// Every band of `raster` as a feature; see [`from_bands`](Samples::from_bands).
    pub fn from_raster(raster: &Raster) -> Result<Samples> {
        let names: Vec<String> = raster.band_names().iter().map(|s| s.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Samples::from_bands(raster, &names)
    }

    /// The named bands of `raster` as features of its valid pixels, on the machine's
    /// runtime ([`Runtime::detect`], which honours `RASTERLAB_THREADS` and
    /// `RASTERLAB_MEMORY`); see [`from_bands_in`](Samples::from_bands_in).
    ///
    /// Errors: [`Error::UnknownBand`], [`Error::NoValidSamples`] when every pixel is
    /// nodata in some band, [`Error::MemoryBudget`], GDAL read errors naming the chunk.
    pub fn from_bands(raster: &Raster, bands: &[&str]) -> Result<Samples> {
        Samples::from_bands_in(raster, bands, &Runtime::detect()?)
    }

    /// [`from_bands_in`](Samples::from_bands_in) on a runtime of `plan`.
    pub fn from_bands_within(raster: &Raster, bands: &[&str], plan: &PoolPlan) -> Result<Samples> {
        Samples::from_bands_in(raster, bands, &Runtime::from_plan(plan.clone()))
    }

    /// [`from_bands`](Samples::from_bands) on `rt`: the raster is streamed through the
    /// executor in full-width strips on `rt`'s threads (each worker with its own GDAL
    /// handles, a failed read is an [`Error::Chunk`] naming its strip, `rt`'s observer
    /// sees every read). Refused up front with [`Error::MemoryBudget`] when the samples
    /// could exceed `rt`'s memory budget (every pixel valid: 4 bytes per band and 8 for
    /// the pixel's index); [`MiniBatchKMeans::fit_raster`](crate::cluster::MiniBatchKMeans::fit_raster)
    /// and [`KMeansModel::write_labels`](crate::cluster::KMeansModel::write_labels) stream the
    /// raster instead.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// let small = Runtime::builder().memory(16 << 20).build()?;
    /// let refused = Samples::from_bands_in(&scene, &["band1", "band2"], &small);
    /// assert!(matches!(refused, Err(Error::MemoryBudget { .. })));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn from_bands_in(raster: &Raster, bands: &[&str], rt: &Runtime) -> Result<Samples> {
        for b in bands {
            raster.band_index(b)?;
        }
        let (w, h) = raster.size();
        let needed = (w as u64) * (h as u64) * (4 * bands.len() as u64 + 8);
        if needed > rt.memory_budget() {
            return Err(Error::MemoryBudget {
                what: format!(
                    "the samples of {w} x {h} pixels x {} bands (if every pixel is valid)",
                    bands.len()
                ),
                needed,
                budget: rt.memory_budget(),
                hint: "MiniBatchKMeans::fit_raster with KMeansModel::write_labels streams the \
                       raster instead (CLI: --method minibatch); or raise the budget \
                       (RASTERLAB_MEMORY, --memory) or cut the raster (bbox)"
                    .into(),
            });
        }
        // The samples are the result: counted above, not against the chunks in flight.
        let stream = PixelStream::strips(rt, raster, bands, 0)?;
        let (mut values, mut indices) = (Vec::new(), Vec::new());
        let label = "samples";
        stream.run(
            rt,
            label,
            stream.windows(),
            true,
            |_, px| Ok(px),
            |_, _, px| {
                values.extend_from_slice(&px.values);
                indices.extend_from_slice(&px.indices);
                Ok(())
            },
        )?;
        let n = indices.len();
        if n == 0 {
            return Err(Error::NoValidSamples {
                reason: format!(
                    "every pixel of {} is nodata in at least one of the bands {}",
                    raster
                        .bands()
                        .first()
                        .map(|b| b.path.display().to_string())
                        .unwrap_or_default(),
                    bands.join(", ")
                ),
            });
        }
        Samples::of_pixels(raster, bands, Pixels { values, indices })
    }

    /// The valid pixels of one window of `raster` (pixel indices refer to the whole
    /// raster). May hold no sample. Used to stream a raster chunk by chunk, e.g. into
    /// [`MiniBatchKMeans::partial_fit`](crate::cluster::MiniBatchKMeans::partial_fit).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_nodata(Some(0.0));
    /// let x = Samples::from_window(&scene, &["band1", "band2"], Window::new(1000, 1000, 16, 16))?;
    /// assert!(x.n_samples() <= 256);
    /// assert_eq!(x.n_features(), 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn from_window(raster: &Raster, bands: &[&str], window: Window) -> Result<Samples> {
        let (w, h) = raster.size();
        if !window.fits(w, h) {
            return Err(Error::invalid(
                "window",
                format!("{window} is outside the {w} x {h} raster"),
            ));
        }
        let a = raster.read(window, bands)?;
        let decoded = a
            .as_slice()
            .ok_or_else(|| Error::internal("read: non-contiguous band array"))?;
        Samples::of_pixels(raster, bands, valid_pixels(decoded, bands.len(), window, w))
    }

    /// Samples of `pixels` (row-major, `bands.len()` values per pixel) of `raster`.
    fn of_pixels(raster: &Raster, bands: &[&str], pixels: Pixels) -> Result<Samples> {
        let Pixels { values, indices } = pixels;
        let values = Array2::from_shape_vec((indices.len(), bands.len()), values)
            .map_err(|e| Error::invalid("samples", e.to_string()))?;
        Ok(Samples {
            values: Values::F32(values),
            indices: Some(indices),
            grid: Some(SourceGrid::of(raster)),
            names: bands.iter().map(|s| s.to_string()).collect(),
            scaler: None,
        })
    }
}
