//! Rasters opened through GDAL: metadata, band names, stacks of files, windowed reads.
//!
//! A [`Raster`] owns only paths and metadata (it is `'static`, cheap to clone and safe to
//! keep between notebook cells); GDAL handles are opened by each worker thread when a
//! computation runs, because GDAL 3.6 datasets are `Send` but not `Sync`.

pub mod align;
mod builders;
mod ffi;
mod gdal_types;
mod info;
mod netcdf;
mod open;
pub mod output;
mod plan;
mod read;
mod remote;
pub mod time;
pub mod write;

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::core::dtype::DataType;
use crate::core::float::{same_f64, same_opt_f64};
use crate::runtime::grid::Window;

// The parent is the one path to these for the crate and for sibling modules (align,
// netcdf, write), so no two submodules of `raster` import each other (tests/layers.rs).
pub(crate) use ffi::{QuietGdal, last_gdal_error, limit_gdal_cache};
pub(crate) use open::open_dataset;
use open::{epsg_of, glob_names, same_crs, source_file};
pub(crate) use read::Reader;

/// How [`Raster::open_stack`] combines several files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stack {
    /// Every band of every file becomes one band of the stack, in order.
    Band,
    /// Every file is one or more time steps with the same bands; dates come from the
    /// files' names (`rgbn_20160101.tif`) or their NetCDF time coordinate. Steps are
    /// sorted by date.
    Time,
}

/// One band of a [`Raster`]: where it comes from and how its values are decoded.
///
/// Two bands are equal when they read the same band of the same file with the same
/// decoding; floats are compared bit for bit, except that NaN equals NaN (a NaN nodata
/// value is a value like any other).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandInfo {
    /// The file (or GDAL dataset name) holding the band.
    pub path: PathBuf,
    /// 1-based band index inside that file.
    pub index: usize,
    /// The band's name: its description in the file, `band{n}`, or set by the user.
    pub name: String,
    /// The stored data type.
    pub dtype: DataType,
    /// Values equal to this are missing.
    #[serde(with = "crate::core::float::with_opt_f64")]
    pub nodata: Option<f64>,
    /// Decoded value = stored value * scale + offset.
    #[serde(with = "crate::core::float::with_f64")]
    pub scale: f64,
    /// See `scale`.
    #[serde(with = "crate::core::float::with_f64")]
    pub offset: f64,
    /// The file's block (tile or strip) size, `(width, height)`.
    pub block: (usize, usize),
}

impl PartialEq for BandInfo {
    fn eq(&self, other: &BandInfo) -> bool {
        self.path == other.path
            && self.index == other.index
            && self.name == other.name
            && self.dtype == other.dtype
            && same_opt_f64(self.nodata, other.nodata)
            && same_f64(self.scale, other.scale)
            && same_f64(self.offset, other.offset)
            && self.block == other.block
    }
}

/// A raster on disk: one file or a stack of files on one grid.
///
/// A `Raster` is plain data (paths, band metadata, dates, the subset in use, overrides):
/// it serializes with serde, and two rasters are equal when they describe the same
/// reads (see [`BandInfo`] for how floats compare).
///
/// ```
/// use rasterlab::prelude::*;
/// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_band_names(["blue", "green", "red"])?;
/// assert_eq!(r.size(), (2041, 1860));
/// assert_eq!(r.band_index("red")?, 2);
/// assert_eq!(r.epsg(), Some(32621));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "plan::RasterPlan", try_from = "plan::RasterPlan")]
#[must_use = "the with_* and subset methods return a new Raster; the receiver is unchanged"]
pub struct Raster {
    /// Every source band, time-major: step `t`, band `b` is `bands[t * per_step + b]`.
    bands: Vec<BandInfo>,
    /// Bands per time step (all bands when the raster has no time axis).
    per_step: usize,
    /// One date per time step; empty when the raster has no time axis.
    times: Vec<NaiveDate>,
    /// The calendar the dates were decoded from (`Standard` without a NetCDF time axis).
    calendar: time::Calendar,
    /// The time steps in use (indices into the steps), after date subsetting.
    selected: Vec<usize>,
    /// The part of the grid in use, after bbox subsetting.
    view: Window,
    width: usize,
    height: usize,
    geo_transform: [f64; 6],
    crs_wkt: String,
    epsg: Option<u32>,
    driver: String,
    chunks: Option<(usize, usize)>,
    /// Why the nodata override of [`Raster::with_nodata`] cannot work, if it cannot: the
    /// setter cannot fail, [`Raster::check`] reports it before anything is read.
    bad_nodata: Option<String>,
    /// Likewise for [`Raster::with_scale`]: the argument (`scale` or `offset`) and why.
    bad_scale: Option<(&'static str, String)>,
    /// Set when opened with alignment: the reference grid (this raster's grid) and the
    /// files read through a warp onto it.
    alignment: Option<align::Alignment>,
}
