//! Samples <-> maps: the valid pixels of a raster as a samples x features matrix that
//! remembers where each sample came from, and labels put back on the raster grid.

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use rayon::prelude::*;

use super::stream::{PixelStream, Pixels, valid_pixels};
use super::{AsFeatures, FeatureView, fmt_num};
use crate::core::fmt::html_table;
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::raster::write::{Compression, Layout, TiffSpec, TiffWriter};
use crate::runtime::Runtime;
use crate::runtime::grid::Window;
use crate::runtime::resources::PoolPlan;

/// The raster grid samples were taken from: size and georeference.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceGrid {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// GDAL geotransform `[x0, dx, rx, y0, ry, dy]`.
    pub geo_transform: [f64; 6],
    /// CRS as WKT (empty for none).
    pub crs_wkt: String,
    /// The files the samples were read from: a label map is never written over them.
    pub sources: Vec<PathBuf>,
}

impl SourceGrid {
    /// The grid of `raster`.
    pub fn of(raster: &Raster) -> SourceGrid {
        let (width, height) = raster.size();
        SourceGrid {
            width,
            height,
            geo_transform: raster.geo_transform(),
            crs_wkt: raster.crs_wkt().to_string(),
            sources: raster.source_files(),
        }
    }
}

/// Per-feature mean and standard deviation used by [`Samples::standardize`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaler {
    /// Feature means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Feature standard deviations (population; 1 for constant features, as
    /// scikit-learn's `StandardScaler`).
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// `(x - mean) / std`, row by row.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j]) / self.std[j];
            }
        }
        out
    }

    /// Back to the original units, e.g. for centroids fitted on standardized samples.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = Samples::from_array(ndarray::array![[1.0, 10.0], [3.0, 30.0]]).standardize()?;
    /// let s = x.scaler().unwrap();
    /// assert_eq!(s.inverse_transform(&x.to_f64()), ndarray::array![[1.0, 10.0], [3.0, 30.0]]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn inverse_transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * self.std[j] + self.mean[j];
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Values {
    F32(Array2<f32>),
    F64(Array2<f64>),
}

/// A samples x features matrix, with (when it came from a raster) the pixel each sample
/// came from, so that labels can be put back on the map.
///
/// From a raster, every band is a feature and a pixel is a sample when no band is nodata
/// (NaN after the raster's nodata masking and scaling). Rasters are streamed through the
/// executor in full-width strips of whole blocks, in parallel, and handed over in order,
/// so samples come in row-major pixel order whatever the chunk size, and only valid
/// pixels are kept in memory.
///
/// ```
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_band_names(["blue", "green", "red"])?
///     .with_nodata(Some(0.0))
///     .with_scale(1e-4, 0.0);
/// let x = scene.to_samples()?;
/// assert_eq!(x.n_features(), 3);
/// assert_eq!(x.feature_names(), ["blue", "green", "red"]);
/// let (col, row) = x.pixel(0).unwrap();
/// assert!(col < 2041 && row < 1860);
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Samples {
    values: Values,
    indices: Option<Vec<usize>>,
    grid: Option<SourceGrid>,
    names: Vec<String>,
    scaler: Option<Scaler>,
}

impl AsFeatures for Samples {
    fn features(&self) -> FeatureView<'_> {
        match &self.values {
            Values::F32(a) => FeatureView::F32(a.view()),
            Values::F64(a) => FeatureView::F64(a.view()),
        }
    }

    fn feature_names(&self) -> Option<Vec<String>> {
        Some(self.names.clone())
    }

    fn has_grid(&self) -> bool {
        self.grid.is_some()
    }
}

impl Raster {
    /// All bands of the raster as features of its valid pixels; see [`Samples`].
    pub fn to_samples(&self) -> Result<Samples> {
        Samples::from_raster(self)
    }
}

impl Samples {
    /// A plain matrix (samples in rows), without a source grid.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = Samples::from_array(ndarray::Array2::zeros((10, 3)));
    /// assert_eq!((x.n_samples(), x.n_features()), (10, 3));
    /// ```
    pub fn from_array(values: Array2<f64>) -> Samples {
        let values = standard(values);
        let d = values.ncols();
        Samples {
            values: Values::F64(values),
            indices: None,
            grid: None,
            names: (0..d).map(|j| format!("f{j}")).collect(),
            scaler: None,
        }
    }

    /// Like [`from_array`](Samples::from_array) for single precision.
    pub fn from_array_f32(values: Array2<f32>) -> Samples {
        let values = standard(values);
        let d = values.ncols();
        Samples {
            values: Values::F32(values),
            indices: None,
            grid: None,
            names: (0..d).map(|j| format!("f{j}")).collect(),
            scaler: None,
        }
    }

    /// Attaches the grid the rows came from: `indices[i]` is the row-major pixel index
    /// (`row * width + col`) of sample `i`. Needed by [`unstack`](Samples::unstack) for
    /// matrices built by hand (e.g. a time cube stacked into samples x dates).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::cluster::SourceGrid;
    /// let grid = SourceGrid { width: 2, height: 2, geo_transform: [0.0, 1.0, 0.0, 2.0, 0.0, -1.0], crs_wkt: String::new(), sources: vec![] };
    /// let x = Samples::from_array(ndarray::array![[0.0], [1.0]]).with_grid(grid, vec![0, 3])?;
    /// let map = x.unstack(&[5, 7])?;
    /// assert_eq!(map.labels(), ndarray::array![[5, -1], [-1, 7]]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn with_grid(mut self, grid: SourceGrid, indices: Vec<usize>) -> Result<Samples> {
        if indices.len() != self.n_samples() {
            return Err(Error::invalid(
                "indices",
                format!("{} indices for {} samples", indices.len(), self.n_samples()),
            ));
        }
        let npx = grid.width * grid.height;
        if let Some(bad) = indices.iter().find(|&&i| i >= npx) {
            return Err(Error::invalid(
                "indices",
                format!(
                    "pixel {bad} is outside a {} x {} grid",
                    grid.width, grid.height
                ),
            ));
        }
        self.indices = Some(indices);
        self.grid = Some(grid);
        Ok(self)
    }

    /// Names the features (as many names as features).
    pub fn with_feature_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Samples> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.n_features() {
            return Err(Error::invalid(
                "feature names",
                format!("{} names for {} features", names.len(), self.n_features()),
            ));
        }
        self.names = names;
        Ok(self)
    }

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
    /// the pixel's index); [`MiniBatchKMeans::fit_raster`](super::MiniBatchKMeans::fit_raster)
    /// and [`KMeansModel::write_labels`](super::KMeansModel::write_labels) stream the
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
        let values = Array2::from_shape_vec((n, bands.len()), values)
            .map_err(|e| Error::invalid("samples", e.to_string()))?;
        Ok(Samples {
            values: Values::F32(values),
            indices: Some(indices),
            grid: Some(SourceGrid::of(raster)),
            names: bands.iter().map(|s| s.to_string()).collect(),
            scaler: None,
        })
    }

    /// The valid pixels of one window of `raster` (pixel indices refer to the whole
    /// raster). May hold no sample. Used to stream a raster chunk by chunk, e.g. into
    /// [`MiniBatchKMeans::partial_fit`](super::MiniBatchKMeans::partial_fit).
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
        let Pixels { values, indices } = valid_pixels(decoded, bands.len(), window, w);
        let n = indices.len();
        let values = Array2::from_shape_vec((n, bands.len()), values)
            .map_err(|e| Error::invalid("samples", e.to_string()))?;
        Ok(Samples {
            values: Values::F32(values),
            indices: Some(indices),
            grid: Some(SourceGrid::of(raster)),
            names: bands.iter().map(|s| s.to_string()).collect(),
            scaler: None,
        })
    }

    /// Each feature scaled to zero mean and unit variance (constant features keep scale
    /// 1), on the machine's runtime ([`Runtime::detect`]); see
    /// [`standardize_in`](Samples::standardize_in).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = Samples::from_array(ndarray::array![[1.0, 5.0], [3.0, 5.0]]).standardize()?;
    /// assert_eq!(x.to_f64(), ndarray::array![[-1.0, 0.0], [1.0, 0.0]]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn standardize(self) -> Result<Samples> {
        self.standardize_in(&Runtime::detect()?)
    }

    /// [`standardize`](Samples::standardize) with the parallel passes on `rt`'s pool
    /// (never rayon's global pool). The [`Scaler`] is kept
    /// ([`scaler`](Samples::scaler)) to map centroids back.
    pub fn standardize_in(mut self, rt: &Runtime) -> Result<Samples> {
        let (mean, var) = rt.install("standardize: statistics", || match &self.values {
            Values::F32(a) => super::stats::column_stats(view_data(a)),
            Values::F64(a) => super::stats::column_stats(view_data(a)),
        })?;
        let std: Vec<f64> = var
            .iter()
            .map(|&v| {
                if v > 0.0 && v.is_finite() {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let d = std.len().max(1);
        let (values, mean_ref, std_ref) = (&mut self.values, &mean, &std);
        rt.install("standardize: scaling", || match values {
            Values::F32(a) => {
                if let Some(x) = a.as_slice_mut() {
                    x.par_chunks_mut(d).for_each(|row| {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = ((f64::from(*v) - mean_ref[j]) / std_ref[j]) as f32;
                        }
                    });
                }
            }
            Values::F64(a) => {
                if let Some(x) = a.as_slice_mut() {
                    x.par_chunks_mut(d).for_each(|row| {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = (*v - mean_ref[j]) / std_ref[j];
                        }
                    });
                }
            }
        })?;
        self.scaler = Some(Scaler { mean, std });
        Ok(self)
    }

    /// Number of samples (valid pixels).
    pub fn n_samples(&self) -> usize {
        match &self.values {
            Values::F32(a) => a.nrows(),
            Values::F64(a) => a.nrows(),
        }
    }

    /// Number of features (bands).
    pub fn n_features(&self) -> usize {
        match &self.values {
            Values::F32(a) => a.ncols(),
            Values::F64(a) => a.ncols(),
        }
    }

    /// Feature names (band names for raster samples, `f0`, `f1` ... otherwise).
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// The values as `f64` (a copy).
    pub fn to_f64(&self) -> Array2<f64> {
        match &self.values {
            Values::F32(a) => a.mapv(f64::from),
            Values::F64(a) => a.clone(),
        }
    }

    /// The values when stored in single precision (samples read from rasters).
    pub fn as_f32(&self) -> Option<&Array2<f32>> {
        match &self.values {
            Values::F32(a) => Some(a),
            Values::F64(_) => None,
        }
    }

    /// The values when stored in double precision.
    pub fn as_f64(&self) -> Option<&Array2<f64>> {
        match &self.values {
            Values::F64(a) => Some(a),
            Values::F32(_) => None,
        }
    }

    /// Row-major pixel index (`row * width + col`) of each sample, when known.
    pub fn indices(&self) -> Option<&[usize]> {
        self.indices.as_deref()
    }

    /// `(col, row)` of sample `i`, when the source grid is known.
    pub fn pixel(&self, i: usize) -> Option<(usize, usize)> {
        let w = self.grid.as_ref()?.width;
        let p = *self.indices.as_ref()?.get(i)?;
        Some((p % w, p / w))
    }

    /// The source grid, when known.
    pub fn grid(&self) -> Option<&SourceGrid> {
        self.grid.as_ref()
    }

    /// The scaler of [`standardize`](Samples::standardize), if applied.
    pub fn scaler(&self) -> Option<&Scaler> {
        self.scaler.as_ref()
    }

    /// Puts one label per sample back on the source grid; pixels without a sample
    /// (nodata) get -1.
    ///
    /// Errors: no source grid (a plain matrix), or a label count that differs from the
    /// sample count.
    pub fn unstack(&self, labels: &[i32]) -> Result<LabelMap> {
        let (grid, indices) = match (&self.grid, &self.indices) {
            (Some(g), Some(i)) => (g, i),
            _ => {
                return Err(Error::invalid(
                    "unstack",
                    "these samples have no source grid (use Samples::with_grid)",
                ));
            }
        };
        if labels.len() != indices.len() {
            return Err(Error::invalid(
                "labels",
                format!("{} labels for {} samples", labels.len(), indices.len()),
            ));
        }
        let mut map = vec![-1i32; grid.width * grid.height];
        for (&p, &l) in indices.iter().zip(labels) {
            map[p] = l;
        }
        LabelMap::new(
            Array2::from_shape_vec((grid.height, grid.width), map)
                .map_err(|e| Error::invalid("label map", e.to_string()))?,
            grid.clone(),
        )
    }
}

/// The array in row-major standard layout (copied only when it is not).
fn standard<T: Clone>(a: Array2<T>) -> Array2<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

fn view_data<T: super::Real>(a: &Array2<T>) -> super::Data<'_, T> {
    let (n, d) = a.dim();
    match a.as_slice() {
        Some(x) => super::Data { x, n, d },
        // Samples always hold standard-layout arrays
        None => super::Data { x: &[], n: 0, d },
    }
}

/// Cluster labels on a raster grid: `-1` where the pixel had no sample (nodata).
///
/// ```
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_nodata(Some(0.0));
/// let x = scene.to_samples()?;
/// let km = KMeans::new(2).max_iter(5).progress(ProgressMode::Silent).fit(&x)?;
/// let map = x.unstack(km.labels())?;
/// assert_eq!(map.size(), (2041, 1860));
/// assert_eq!(map.valid_count(), x.n_samples());
/// let out = std::env::temp_dir().join("rasterlab-doc-labels.tif");
/// map.save(&out)?;
/// # std::fs::remove_file(out).ok();
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LabelMap {
    labels: Array2<i32>,
    grid: SourceGrid,
    counts: Vec<usize>,
    nodata: usize,
}

impl LabelMap {
    /// The most clusters a saved label map can tell apart: labels `0..MAX_LABELS` fit its
    /// Int16 type (-1 is nodata).
    pub const MAX_LABELS: usize = i16::MAX as usize + 1;

    /// Refuses a number of clusters `k` whose labels cannot all be stored in a saved map
    /// ([`Error::Invalid`] naming `k` and the range allowed). The estimators run it
    /// before fitting samples that carry a grid; a caller can run it even earlier,
    /// before reading any pixel.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// assert!(LabelMap::check_k(8).is_ok());
    /// let err = LabelMap::check_k(40_000).unwrap_err();
    /// assert!(err.to_string().contains("1 to 32768"), "{err}");
    /// ```
    pub fn check_k(k: usize) -> Result<()> {
        if (1..=Self::MAX_LABELS).contains(&k) {
            return Ok(());
        }
        let why = if k == 0 {
            "at least one cluster is needed".to_string()
        } else {
            format!("{k} clusters cannot all be labelled in an Int16 label map")
        };
        Err(Error::invalid(
            "k",
            format!("{why} (allowed: 1 to {})", Self::MAX_LABELS),
        ))
    }

    /// A label map from `(rows, cols)` labels (-1 for nodata) on `grid`.
    pub fn new(labels: Array2<i32>, grid: SourceGrid) -> Result<LabelMap> {
        if labels.dim() != (grid.height, grid.width) {
            return Err(Error::invalid(
                "label map",
                format!(
                    "{:?} labels for a {} x {} grid",
                    labels.dim(),
                    grid.width,
                    grid.height
                ),
            ));
        }
        let mut counts = Vec::new();
        let mut nodata = 0;
        for &l in &labels {
            if l < 0 {
                nodata += 1;
            } else {
                let l = l as usize;
                if l >= counts.len() {
                    counts.resize(l + 1, 0);
                }
                counts[l] += 1;
            }
        }
        Ok(LabelMap {
            labels,
            grid,
            counts,
            nodata,
        })
    }

    /// The labels, `(rows, cols)`; -1 is nodata.
    pub fn labels(&self) -> &Array2<i32> {
        &self.labels
    }

    /// `(width, height)` in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.grid.width, self.grid.height)
    }

    /// The grid and georeference.
    pub fn grid(&self) -> &SourceGrid {
        &self.grid
    }

    /// Label of pixel `(col, row)` (-1 for nodata), or `None` outside the grid.
    pub fn get(&self, col: usize, row: usize) -> Option<i32> {
        self.labels.get((row, col)).copied()
    }

    /// Number of labels (largest label + 1).
    pub fn n_labels(&self) -> usize {
        self.counts.len()
    }

    /// Pixels per label.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Pixels with a label.
    pub fn valid_count(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Pixels without a label (-1).
    pub fn nodata_count(&self) -> usize {
        self.nodata
    }

    /// Writes the map as a tiled, LZW-compressed GeoTIFF with the source's geotransform
    /// and CRS. Labels are stored as Int16 with nodata -1, through the same
    /// temp-file-and-rename writer as every rasterlab output.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        self.save_with(path, Compression::Lzw)
    }

    /// Like [`save`](LabelMap::save) with the tiles compressed by `compression`.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::cluster::SourceGrid;
    /// let grid = SourceGrid { width: 2, height: 1, geo_transform: [0.0, 1.0, 0.0, 1.0, 0.0, -1.0], crs_wkt: String::new(), sources: vec![] };
    /// let map = LabelMap::new(ndarray::array![[0, 1]], grid)?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let path = map.save_with(dir.path().join("labels.tif"), Compression::Deflate)?;
    /// let ds = gdal::Dataset::open(&path).expect("written");
    /// assert_eq!(ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE").as_deref(), Some("DEFLATE"));
    /// # use gdal::Metadata;
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn save_with(&self, path: impl AsRef<Path>, compression: Compression) -> Result<PathBuf> {
        self.save_with_layout(path, compression, Layout::Tiled)
    }

    /// Like [`save_with`](LabelMap::save_with), in `layout`: a Cloud-Optimized GeoTIFF
    /// with [`Layout::Cog`], whose overviews should keep labels whole:
    /// [`OverviewResampling::LABELS`] (mode) or nearest (average would blend labels into
    /// other, meaningless ones).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::cluster::SourceGrid;
    /// use gdal::Metadata;
    /// let grid = SourceGrid { width: 600, height: 300, geo_transform: [0.0, 1.0, 0.0, 300.0, 0.0, -1.0], crs_wkt: String::new(), sources: vec![] };
    /// let labels = ndarray::Array2::from_shape_fn((300, 600), |(r, c)| ((r / 7 + c / 5) % 3) as i32);
    /// let map = LabelMap::new(labels, grid)?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let layout = Layout::cog(OverviewResampling::LABELS);
    /// let path = map.save_with_layout(dir.path().join("labels.tif"), Compression::Lzw, layout)?;
    /// let ds = gdal::Dataset::open(&path).expect("written");
    /// assert_eq!(ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(), Some("COG"));
    /// // 600 x 300 in 256-pixel tiles: 300 x 150 and 150 x 75
    /// assert_eq!(ds.rasterband(1).expect("band").overview_count().expect("count"), 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    ///
    /// [`OverviewResampling::LABELS`]: crate::raster::write::OverviewResampling::LABELS
    pub fn save_with_layout(
        &self,
        path: impl AsRef<Path>,
        compression: Compression,
        layout: Layout,
    ) -> Result<PathBuf> {
        let (w, h) = self.size();
        if let Some(&max) = self.labels.iter().max()
            && max > i32::from(i16::MAX)
        {
            return Err(Error::invalid(
                "labels",
                format!("label {max} does not fit the Int16 label map"),
            ));
        }
        let spec = TiffSpec {
            size: (w, h),
            bands: 1,
            dtype: crate::core::dtype::OutputType::Int16,
            geo_transform: self.grid.geo_transform,
            crs_wkt: self.grid.crs_wkt.clone(),
            nodata: Some(-1.0),
            compression,
            tile: (256, 256),
            threads: 2,
            band_names: vec!["label".into()],
        };
        crate::raster::output::check_distinct(&[path.as_ref()], &self.grid.sources)?;
        let mut writer = TiffWriter::create_with_layout(path.as_ref(), &spec, layout)?;
        for y in (0..h).step_by(256) {
            let win = Window::new(0, y, w, 256.min(h - y));
            let data: Vec<f32> = self
                .labels
                .slice(ndarray::s![y..y + win.height, ..])
                .iter()
                .map(|&l| l as f32)
                .collect();
            writer.write(1, win, data)?;
        }
        writer.finish()
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let (w, h) = self.size();
        let mut rows = vec![
            ("size", format!("{w} x {h} pixels")),
            ("labels", self.n_labels().to_string()),
            ("valid pixels", self.valid_count().to_string()),
            ("nodata pixels", format!("{} (label -1)", self.nodata)),
        ];
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(l, c)| format!("{l}: {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(("pixels per label", counts));
        let [x0, dx, _, y0, _, dy] = self.grid.geo_transform;
        rows.push((
            "origin / pixel",
            format!("({}, {}) / {} x {}", fmt_num(x0), fmt_num(y0), dx, dy.abs()),
        ));
        rows
    }

    /// The map's summary as an HTML table.
    pub fn to_html(&self) -> String {
        html_table("LabelMap", &self.rows())
    }
}

crate::core::fmt::html_repr!(LabelMap);

impl fmt::Display for LabelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "LabelMap")?;
        for (name, value) in self.rows() {
            writeln!(f, "  {name:<16} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstack_needs_a_grid_and_matching_labels() {
        let x = Samples::from_array(ndarray::array![[0.0], [1.0]]);
        assert!(x.unstack(&[0, 1]).is_err());
        let grid = SourceGrid {
            width: 3,
            height: 1,
            geo_transform: [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
            crs_wkt: String::new(),
            sources: Vec::new(),
        };
        assert!(x.clone().with_grid(grid.clone(), vec![0, 3]).is_err());
        let x = x.with_grid(grid, vec![2, 0]).unwrap();
        assert!(x.unstack(&[1]).is_err());
        let m = x.unstack(&[1, 0]).unwrap();
        assert_eq!(m.labels(), ndarray::array![[0, -1, 1]]);
        assert_eq!((m.counts(), m.nodata_count()), (&[1usize, 1][..], 1));
        assert_eq!(x.pixel(0), Some((2, 0)));
        assert!(m.to_string().contains("nodata pixels"));
    }

    #[test]
    fn standardize_keeps_a_scaler() {
        let x = Samples::from_array_f32(ndarray::array![[1.0f32, 2.0], [3.0, 2.0]])
            .standardize()
            .unwrap();
        let s = x.scaler().unwrap();
        assert_eq!(s.mean(), &[2.0, 2.0]);
        assert_eq!(s.std(), &[1.0, 1.0]);
        assert_eq!(
            x.as_f32().unwrap(),
            ndarray::array![[-1.0f32, 0.0], [1.0, 0.0]]
        );
    }
}
