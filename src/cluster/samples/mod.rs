//! Samples <-> maps: the valid pixels of a raster as a samples x features matrix that
//! remembers where each sample came from, and labels put back on the raster grid.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Samples`] (the matrix, its feature names and the pixel of each sample) and [`SourceGrid`] |
//! | `from_raster` | samples read from a raster: all bands, named bands, one window |
//! | `standardize` | [`Samples::standardize`] and its [`Scaler`] |
//! | `label_map` | [`LabelMap`]: labels back on the grid ([`Samples::unstack`]), saved as GeoTIFF |

mod from_raster;
mod label_map;
mod standardize;
#[cfg(test)]
mod tests;

pub use label_map::LabelMap;
pub use standardize::Scaler;

use std::path::PathBuf;

use ndarray::Array2;

use super::{AsFeatures, FeatureView};
use crate::error::{Error, Result};
use crate::raster::Raster;

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
}

/// The array in row-major standard layout (copied only when it is not).
fn standard<T: Clone>(a: Array2<T>) -> Array2<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}
