//! Labels for rasters larger than memory: a fitted model applied chunk by chunk through
//! the executor (memory permits, chunk-named errors, progress, the runtime's observer,
//! per-worker GDAL handles), written straight into a
//! GeoTIFF label map that is never held whole.

use std::path::{Path, PathBuf};

use super::kmeans::{KMeansModel, Packed};
use super::stream::{PixelStream, Pixels};
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::raster::write::{Compression, Layout, OverviewResampling, TiffSpec, TiffWriter};
use crate::runtime::Runtime;
use crate::runtime::cancel::CancelToken;
use crate::runtime::grid::Window;
use crate::runtime::progress::ProgressMode;
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
    runtime: Option<Runtime>,
    compression: Compression,
    layout: Layout,
    progress: Option<ProgressMode>,
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
            runtime: None,
            compression: Compression::default(),
            layout: Layout::Tiled,
            progress: None,
            cancel: None,
        }
    }
}

impl WriteLabels<'_> {
    /// Runs on `rt`: its threads, memory budget, progress and observer (default
    /// [`Runtime::detect`]).
    pub fn runtime(mut self, rt: &Runtime) -> Self {
        self.runtime = Some(rt.clone());
        self
    }

    /// Threads and memory budget of `plan`: a [`runtime`](WriteLabels::runtime) of it.
    pub fn plan(self, plan: &PoolPlan) -> Self {
        self.runtime(&Runtime::from_plan(plan.clone()))
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

    /// How progress is shown (default: the runtime's).
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = Some(mode);
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
        let mut rt = match self.runtime {
            Some(rt) => rt,
            None => Runtime::detect()?,
        };
        if let Some(mode) = self.progress {
            rt = rt.with_progress(mode);
        }
        let cancel = self.cancel.unwrap_or_default();
        let (w, h) = self.raster.size();
        // In flight per strip besides the stream's own: the strip's labels.
        let stream = PixelStream::strips(&rt, self.raster, &bands, 4)?;
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
            threads: rt.threads(),
            band_names: vec!["label".into()],
        };
        let mut writer = TiffWriter::create_with_layout(&self.path, &spec, self.layout)?;
        let label = format!("labels {}", self.path.display());
        let labels = |win: Window, px: Pixels| {
            let mut out = vec![-1.0f32; win.len()];
            for (row, p) in px.values.chunks_exact(d).zip(px.indices) {
                // strips are full-width, so the pixel index maps straight into it
                if let Some(slot) = out.get_mut(p - (win.y * w + win.x)) {
                    *slot = packed.nearest(row).0 as f32;
                }
            }
            Ok(out)
        };
        stream.run(
            &rt,
            &label,
            stream.windows(),
            false,
            labels,
            |_, win, data| {
                cancel.check()?;
                writer.write(1, win, data)
            },
        )?;
        writer.finish_unless(|| cancel.reason())
    }
}
