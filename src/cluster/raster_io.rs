//! Labels for rasters larger than memory: a fitted model applied chunk by chunk through
//! the executor (memory permits, chunk-named errors, progress), written straight into a
//! GeoTIFF label map that is never held whole.

use std::path::{Path, PathBuf};

use super::kmeans::{KMeansModel, Packed};
use super::samples::{read_valid, strips};
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::raster::write::{Compression, Layout, OverviewResampling, TiffSpec, TiffWriter};
use crate::runtime::cancel::CancelToken;
use crate::runtime::progress::{Progress, ProgressMode};
use crate::runtime::resources::PoolPlan;

/// The largest label an Int16 label map holds (labels are `0..k`, nodata is -1).
pub const MAX_LABEL_MAP_K: usize = i16::MAX as usize + 1;

/// Writing a model's labels for every pixel of a raster; see
/// [`KMeansModel::write_labels`].
#[derive(Debug, Clone)]
#[must_use = "nothing is written until .run()"]
pub struct WriteLabels<'a> {
    model: &'a KMeansModel,
    raster: &'a Raster,
    bands: Vec<String>,
    path: PathBuf,
    plan: Option<PoolPlan>,
    compression: Compression,
    layout: Layout,
    progress: ProgressMode,
    cancel: Option<CancelToken>,
}

impl KMeansModel {
    /// Labels every pixel of `raster` (bands `bands`, in the order the model was fitted
    /// on) with its nearest centroid and writes the label map (Int16, nodata -1 where a
    /// band is nodata) to `path`. The raster is streamed in strips within the memory
    /// budget; neither the samples nor the map are held whole, so this works for
    /// rasters far larger than memory together with
    /// [`MiniBatchKMeans::fit_raster`](super::MiniBatchKMeans::fit_raster).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0));
    /// let km = MiniBatchKMeans::new(4).seed(0).max_iter(1)
    ///     .progress(ProgressMode::Silent).fit_raster(&scene, &["green", "red"])?;
    /// let out = std::env::temp_dir().join("rasterlab-doc-write-labels.tif");
    /// km.write_labels(&scene, &["green", "red"], &out).progress(ProgressMode::Silent).run()?;
    /// # std::fs::remove_file(out).ok();
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn write_labels<'a>(
        &'a self,
        raster: &'a Raster,
        bands: &[&str],
        path: impl AsRef<Path>,
    ) -> WriteLabels<'a> {
        WriteLabels {
            model: self,
            raster,
            bands: bands.iter().map(|s| s.to_string()).collect(),
            path: path.as_ref().to_path_buf(),
            plan: None,
            compression: Compression::default(),
            layout: Layout::Tiled,
            progress: ProgressMode::Auto,
            cancel: None,
        }
    }
}

impl WriteLabels<'_> {
    /// Threads and memory budget (default: [`PoolPlan::detect`]).
    pub fn plan(mut self, plan: &PoolPlan) -> Self {
        self.plan = Some(plan.clone());
        self
    }

    /// Tile compression (LZW by default).
    pub fn compress(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Writes a Cloud-Optimized GeoTIFF whose overviews are computed by `resampling`:
    /// [`OverviewResampling::LABELS`] (mode) or nearest keep every overview pixel one of
    /// the labels under it. See [`Layout::Cog`].
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use gdal::Metadata;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0));
    /// let km = MiniBatchKMeans::new(3).seed(0).max_iter(1)
    ///     .progress(ProgressMode::Silent).fit_raster(&scene, &["green", "red"])?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let out = dir.path().join("labels.tif");
    /// km.write_labels(&scene, &["green", "red"], &out)
    ///     .cog(OverviewResampling::LABELS)
    ///     .progress(ProgressMode::Silent)
    ///     .run()?;
    /// let ds = gdal::Dataset::open(&out).expect("written");
    /// assert_eq!(ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(), Some("COG"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn cog(mut self, resampling: OverviewResampling) -> Self {
        self.layout = Layout::Cog { resampling };
        self
    }

    /// The output's layout (default [`Layout::Tiled`]; see [`WriteLabels::cog`]).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// How progress is shown.
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Stops at the next strip when `token` is cancelled ([`Error::Cancelled`]); nothing
    /// is left under the output name.
    pub fn cancel_on(mut self, token: &CancelToken) -> Self {
        self.cancel = Some(token.clone());
        self
    }

    /// Checks everything, then streams the raster and writes the map.
    pub fn run(self) -> Result<PathBuf> {
        let model = self.model;
        let d = model.centroids().ncols();
        let k = model.k();
        let bands: Vec<&str> = self.bands.iter().map(String::as_str).collect();
        model.check_bands(self.raster, &bands)?;
        if k > MAX_LABEL_MAP_K {
            return Err(Error::invalid(
                "k",
                format!("{k} labels do not fit an Int16 label map: allowed 1 to {MAX_LABEL_MAP_K}"),
            ));
        }
        crate::raster::output::check_output_path(&self.path)?;
        crate::raster::output::check_distinct(&[self.path.as_path()], &self.raster.source_files())?;
        let plan = match self.plan {
            Some(p) => p,
            None => PoolPlan::detect()?,
        };
        let cancel = self.cancel.unwrap_or_default();
        let mut windows = strips(self.raster, d, plan.chunk_bytes() as usize);
        let (w, h) = self.raster.size();
        // In flight per strip: the decoded bands, the valid samples with their pixel
        // indices, and the strip's labels.
        let per_pixel = (4 * d + 4 * d + 8 + 4) as u64;
        let row_bytes = (w as u64 * per_pixel).max(1);
        let tallest = windows.iter().map(|w| w.height).max().unwrap_or(0) as u64;
        if self.raster.chunk_size().is_none() && tallest * row_bytes > plan.memory_budget() {
            // Strips of whole blocks do not fit a small budget (a 256-row block of a
            // 2041-pixel-wide, 3-band scene needs 18 MiB here): cut them shorter, as many
            // rows as fit, rather than refuse a run whose fit has already streamed.
            let rows = (plan.memory_budget() / row_bytes) as usize;
            if rows > 0 {
                windows = (0..h)
                    .step_by(rows)
                    .map(|y| crate::runtime::grid::Window::new(0, y, w, rows.min(h - y)))
                    .collect();
            }
        }
        let largest = windows.iter().map(|w| w.len() as u64).max().unwrap_or(0) * per_pixel;
        let permits = plan.memory_budget() / largest.max(1);
        if permits == 0 {
            return Err(Error::MemoryBudget {
                what: format!(
                    "one strip of {} x {} pixels",
                    w,
                    largest / per_pixel / w.max(1) as u64
                ),
                needed: largest,
                budget: plan.memory_budget(),
                hint: "raise the memory budget".into(),
            });
        }
        let cent = model.centroids().as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::internal("centroids not contiguous"))?;
        let packed = Packed::<f32>::new(cent, k, d);
        let spec = TiffSpec {
            size: (w, h),
            bands: 1,
            dtype: crate::core::dtype::OutputType::Int16,
            geo_transform: self.raster.geo_transform(),
            crs_wkt: self.raster.crs_wkt().to_string(),
            nodata: Some(-1.0),
            compression: self.compression,
            tile: (256, 256),
            threads: plan.threads(),
            band_names: vec!["label".into()],
        };
        crate::raster::limit_gdal_cache();
        let mut writer = TiffWriter::create_with_layout(&self.path, &spec, self.layout)?;
        let label = format!("labels {}", self.path.display());
        let mut progress = Progress::new(self.progress, &label, "strips", windows.len() as u64);
        crate::runtime::exec::run_chunks(
            &plan,
            windows.as_slice(),
            usize::try_from(permits).unwrap_or(usize::MAX),
            || Ok(()),
            |_, _, win| {
                let (vals, idx) = read_valid(self.raster, &bands, win)?;
                let mut out = vec![-1.0f32; win.len()];
                let origin = win.y * w + win.x;
                for (row, p) in vals.chunks_exact(d).zip(idx) {
                    let p = p - origin;
                    // strips are full-width, so the pixel index maps straight into it
                    if let Some(slot) = out.get_mut(p) {
                        *slot = packed.nearest(row).0 as f32;
                    }
                }
                Ok(out)
            },
            |_, win, data| {
                cancel.check()?;
                writer.write(1, win, data)
            },
            &mut progress,
            None,
        )?;
        writer.finish_unless(|| cancel.reason())
    }
}
