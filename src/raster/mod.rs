//! Rasters opened through GDAL: metadata, band names, stacks of files, windowed reads.
//!
//! A [`Raster`] owns only paths and metadata (it is `'static`, cheap to clone and safe to
//! keep between notebook cells); GDAL handles are opened by each worker thread when a
//! computation runs, because GDAL 3.6 datasets are `Send` but not `Sync`.

pub mod align;
mod gdal_types;
mod netcdf;
pub mod output;
mod plan;
mod remote;
pub mod time;
pub mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, Metadata};
use ndarray::{Array3, Array4};
use serde::{Deserialize, Serialize};

use crate::core::dtype::{DataType, Element};
use crate::core::float::{same_f64, same_opt_f64};
use crate::error::{Error, Result};
use crate::runtime::grid::{ChunkGrid, Window};
use crate::runtime::resources::PoolPlan;

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

/// True for names GDAL resolves itself (`NETCDF:"f.nc":var`, `/vsizip/...`, URLs), which
/// cannot be checked with the filesystem.
fn is_gdal_name(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.starts_with("/vsi")
        || remote::is_remote(path)
        || s.split_once(':')
            .is_some_and(|(d, _)| d.len() > 1 && d.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(crate) fn open_dataset(path: &Path) -> Result<Dataset> {
    // Verbose errors make GDAL say why ("not recognized as a supported file format").
    let options = gdal::DatasetOptions {
        open_flags: gdal::GdalOpenFlags::GDAL_OF_RASTER
            | gdal::GdalOpenFlags::GDAL_OF_READONLY
            | gdal::GdalOpenFlags::GDAL_OF_VERBOSE_ERROR,
        ..Default::default()
    };
    // URLs (as `/vsicurl/URL`) and network file systems: Error::Remote on failure.
    if remote::is_remote(path) {
        return remote::open(path, options);
    }
    if !is_gdal_name(path) && !path.exists() {
        return Err(Error::NotFound(path.to_path_buf()));
    }
    let _quiet = QuietGdal::new();
    Dataset::open_ex(path, options).map_err(|e| Error::NotARaster {
        path: path.to_path_buf(),
        reason: match &e {
            gdal::errors::GdalError::NullPointer { msg, .. } if msg.trim().is_empty() => {
                "GDAL recognizes no raster format in it".to_string()
            }
            _ => crate::error::gdal_message(&e),
        },
    })
}

impl Raster {
    /// Opens any raster GDAL can read (GeoTIFF, VRT, a NetCDF variable as
    /// `NETCDF:"file.nc":var` or a single-variable `.nc` file, ...).
    ///
    /// A NetCDF variable with a `time` dimension opens as a time series: one step per
    /// time value, dated from the file's CF `time#units` in its `time#calendar` (every CF
    /// calendar, see [`time::Calendar`] for how non-Gregorian dates become Gregorian).
    ///
    /// A remote raster opens from an `http://` or `https://` URL (read through GDAL's
    /// `/vsicurl/`) or a name on GDAL's network file systems (`/vsicurl/...`,
    /// `/vsis3/bucket/key.tif`, `/vsigs/...`, `/vsiaz/...`). For a Cloud-Optimized
    /// GeoTIFF only byte ranges are fetched: the header when opening, then the tiles each
    /// chunk needs. The URL stays as given in band paths, reprs and errors. GDAL options
    /// (`AWS_NO_SIGN_REQUEST`, `GDAL_HTTP_MAX_RETRY`, ...) come from the environment or
    /// `gdal::config`; see the README's "Remote rasters".
    ///
    /// ```no_run
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("https://example.com/scenes/LC08_cog.tif")?;
    /// let tile = r.read(Window::new(512, 512, 256, 256), &["band1"])?; // one tile's bytes
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    ///
    /// Errors: [`Error::NotFound`] for a missing file, [`Error::NotARaster`] for a file
    /// GDAL cannot read or one without raster bands, [`Error::Remote`] naming the URL and
    /// the HTTP status (`None` when the server could not be reached) when a remote
    /// raster's server fails, [`Error::Calendar`] for a time axis in an unknown calendar
    /// or with dates its calendar's rule refuses.
    pub fn open(path: impl AsRef<Path>) -> Result<Raster> {
        let path = path.as_ref();
        let ds = open_dataset(path)?;
        let (width, height) = ds.raster_size();
        let count = ds.raster_count();
        if count == 0 || width == 0 || height == 0 {
            let subdatasets = ds
                .metadata_domain("SUBDATASETS")
                .unwrap_or_default()
                .into_iter()
                .filter_map(|kv| kv.split_once("_NAME=").map(|(_, v)| v.to_string()))
                .collect::<Vec<_>>();
            let reason = if subdatasets.is_empty() {
                "it holds no raster band".to_string()
            } else {
                format!(
                    "it holds several variables; open one of: {}",
                    subdatasets.join(", ")
                )
            };
            return Err(Error::NotARaster {
                path: path.to_path_buf(),
                reason,
            });
        }
        let geo_transform = ds.geo_transform().unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let crs_wkt = ds.projection();
        let epsg = epsg_of(&crs_wkt);
        let mut bands = Vec::with_capacity(count);
        let mut time_values = Vec::new();
        for index in 1..=count {
            let band = ds.rasterband(index).map_err(Error::gdal(format!(
                "reading band {index} of {}",
                path.display()
            )))?;
            let name = band
                .metadata_item("NETCDF_VARNAME", "")
                .or_else(|| band.description().ok())
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| format!("band{index}"));
            if let Some(t) = band.metadata_item("NETCDF_DIM_time", "") {
                time_values.push(t.trim().parse::<f64>().map_err(|_| {
                    Error::invalid(
                        "time coordinate",
                        format!("{t:?} in band {index} of {}", path.display()),
                    )
                })?);
            }
            bands.push(BandInfo {
                path: path.to_path_buf(),
                index,
                name,
                dtype: gdal_types::from_gdal(band.band_type()),
                nodata: band.no_data_value(),
                scale: band.scale().unwrap_or(1.0),
                offset: band.offset().unwrap_or(0.0),
                block: band.block_size(),
            });
        }
        let (per_step, times, calendar) = if time_values.len() == count {
            let units = ds.metadata_item("time#units", "").ok_or_else(|| {
                Error::invalid(
                    "time coordinate",
                    format!("{} has time values but no time#units", path.display()),
                )
            })?;
            let calendar = ds.metadata_item("time#calendar", "");
            let (calendar, times) =
                time::decode_time_axis(path, &time_values, &units, calendar.as_deref())?;
            (1, times, calendar)
        } else {
            (count, Vec::new(), time::Calendar::Standard)
        };
        let mut raster = Raster {
            bands,
            per_step,
            selected: (0..count / per_step).collect(),
            times,
            calendar,
            view: Window::new(0, 0, width, height),
            width,
            height,
            geo_transform,
            crs_wkt,
            epsg,
            driver: ds.driver().short_name(),
            chunks: None,
            bad_nodata: None,
            bad_scale: None,
            alignment: None,
        };
        raster.dedup_names();
        Ok(raster)
    }

    /// Opens several files as one raster, on the first file's grid.
    ///
    /// * [`Stack::Band`]: the bands of every file are stacked in order (one file per band,
    ///   as Landsat ships them).
    /// * [`Stack::Time`]: every file adds time steps with the same bands; dates come from
    ///   each file's NetCDF time coordinate or from a date in its name
    ///   ([`time::date_from_name`]); use [`Raster::open_time_stack`] to give them.
    ///
    /// Every file must share the first file's size, geotransform and CRS (and for time,
    /// the band count); a mismatch is [`Error::StackMismatch`] naming file and field.
    /// Files on different grids open with [`Raster::open_stack_aligned`], which warps
    /// them onto one grid ([`align::Align`]).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let dir = "data/LC08_L1TP_224078_20200518_20200518_01_RT";
    /// let r = Raster::open_stack(
    ///     [format!("{dir}_B3.TIF"), format!("{dir}_B4.TIF")],
    ///     Stack::Band,
    /// )?
    /// .with_band_names(["green", "red"])?;
    /// assert_eq!(r.band_count(), 2);
    ///
    /// let series = Raster::open_stack(
    ///     ["data/rgbn_20160401.tif", "data/rgbn_20160101.tif"],
    ///     Stack::Time,
    /// )?;
    /// assert_eq!(series.n_times(), 2);
    /// assert_eq!(series.times()[0].to_string(), "2016-01-01"); // sorted by date
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn open_stack<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        how: Stack,
    ) -> Result<Raster> {
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        Self::stack(&paths, how, None, None)
    }

    /// A time stack with the dates given, one per file (each file one time step).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::raster::time::parse_date;
    /// let r = Raster::open_time_stack(
    ///     ["data/rgbn_20160101.tif", "data/rgbn_20160401.tif"],
    ///     &[parse_date("2019-05-01")?, parse_date("2019-06-01")?],
    /// )?;
    /// assert_eq!(r.times()[1].to_string(), "2019-06-01");
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn open_time_stack<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        dates: &[NaiveDate],
    ) -> Result<Raster> {
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        Self::stack(&paths, Stack::Time, Some(dates), None)
    }

    /// Files matching a glob pattern stacked along time, like xarray's `open_mfdataset`;
    /// `variable` picks a NetCDF variable (`NETCDF:"file":variable`) in every file.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open_glob("data/rgbn_2016*.tif", None)?;
    /// assert_eq!(r.n_times(), 3);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn open_glob(pattern: &str, variable: Option<&str>) -> Result<Raster> {
        Self::stack(&glob_names(pattern, variable)?, Stack::Time, None, None)
    }

    /// Opens the members of a stack; with `align`, a file on another grid is recorded
    /// as warped onto the reference grid instead of refused.
    fn stack(
        paths: &[PathBuf],
        how: Stack,
        dates: Option<&[NaiveDate]>,
        align: Option<&align::Target>,
    ) -> Result<Raster> {
        // One check for every time stack with given dates (plain and aligned).
        if let Some(dates) = dates
            && paths.len() != dates.len()
        {
            return Err(Error::invalid(
                "dates",
                format!("{} dates for {} files", dates.len(), paths.len()),
            ));
        }
        let first = paths
            .first()
            .ok_or_else(|| Error::invalid("stack", "no file given"))?
            .clone();
        let mut warped = Vec::new();
        let mut stack: Option<Raster> = None;
        // (date, bands of one step) for time stacks, sorted at the end.
        let mut steps: Vec<(NaiveDate, Vec<BandInfo>)> = Vec::new();
        for (k, path) in paths.iter().enumerate() {
            let mut part = Raster::open(path)?;
            if let Some(target) = align
                && target.adopt(&mut part)
            {
                warped.push(path.clone());
            }
            if let Some(dates) = dates {
                if part.n_times() > 1 {
                    return Err(Error::invalid(
                        "dates",
                        format!(
                            "{} already has {} time steps; give no dates",
                            path.display(),
                            part.n_times()
                        ),
                    ));
                }
                part.times = vec![dates[k]];
                // Dates given by the user are Gregorian.
                part.calendar = time::Calendar::Standard;
            } else if how == Stack::Time && part.times.is_empty() {
                let date = time::date_from_name(source_file(path)).ok_or_else(|| {
                    Error::invalid(
                        "date",
                        format!(
                            "no date (YYYYMMDD or YYYY-MM-DD) in the name {}; give dates with Raster::open_time_stack",
                            path.display()
                        ),
                    )
                })?;
                part.times = vec![date];
            }
            if let Some(s) = &stack {
                s.check_same_grid(&part, path, &first)?;
                if how == Stack::Time && part.per_step != s.per_step {
                    return Err(Error::StackMismatch {
                        path: path.clone(),
                        first: first.clone(),
                        field: "bands per time step",
                        expected: s.per_step.to_string(),
                        found: part.per_step.to_string(),
                    });
                }
                // Dates made Gregorian by different rules (a 360_day file next to a
                // standard one) would interleave steps that do not belong together.
                if how == Stack::Time && part.calendar != s.calendar {
                    return Err(Error::StackMismatch {
                        path: path.clone(),
                        first: first.clone(),
                        field: "calendar",
                        expected: s.calendar.to_string(),
                        found: part.calendar.to_string(),
                    });
                }
            }
            if how == Stack::Time {
                for (t, date) in part.times.iter().enumerate() {
                    steps.push((
                        *date,
                        part.bands[t * part.per_step..(t + 1) * part.per_step].to_vec(),
                    ));
                }
            }
            match &mut stack {
                None => stack = Some(part),
                Some(s) if how == Stack::Band => {
                    s.bands.extend(part.bands);
                    s.per_step = s.bands.len();
                }
                Some(_) => {}
            }
        }
        let mut stack = stack.ok_or_else(|| Error::invalid("stack", "no file given"))?;
        if how == Stack::Time {
            steps.sort_by_key(|(d, _)| *d);
            // Two steps on one date would be counted twice by every statistic.
            if let Some(pair) = steps.windows(2).find(|p| p[0].0 == p[1].0) {
                let file = |s: &(NaiveDate, Vec<BandInfo>)| {
                    s.1.first()
                        .map(|b| b.path.display().to_string())
                        .unwrap_or_default()
                };
                return Err(Error::invalid(
                    "time stack dates",
                    format!(
                        "{} is the date of both {} and {} (allowed: one time step per date)",
                        pair[0].0,
                        file(&pair[0]),
                        file(&pair[1])
                    ),
                ));
            }
            stack.times = steps.iter().map(|(d, _)| *d).collect();
            stack.bands = steps.into_iter().flat_map(|(_, b)| b).collect();
            // Names come from the first step; later steps repeat them.
            let names: Vec<String> = stack.bands[..stack.per_step]
                .iter()
                .map(|b| b.name.clone())
                .collect();
            for (i, band) in stack.bands.iter_mut().enumerate() {
                band.name = names[i % names.len()].clone();
            }
        }
        stack.selected = (0..stack.bands.len() / stack.per_step).collect();
        stack.alignment = align.map(|t| t.alignment(warped));
        stack.dedup_names();
        Ok(stack)
    }

    fn check_same_grid(&self, other: &Raster, path: &Path, first: &Path) -> Result<()> {
        let mismatch = |field, expected: String, found: String| Error::StackMismatch {
            path: path.to_path_buf(),
            first: first.to_path_buf(),
            field,
            expected,
            found,
        };
        if (other.width, other.height) != (self.width, self.height) {
            return Err(mismatch(
                "size",
                format!("{} x {}", self.width, self.height),
                format!("{} x {}", other.width, other.height),
            ));
        }
        let same_gt = other
            .geo_transform
            .iter()
            .zip(self.geo_transform)
            .all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0));
        if !same_gt {
            return Err(mismatch(
                "geotransform",
                format!("{:?}", self.geo_transform),
                format!("{:?}", other.geo_transform),
            ));
        }
        if !same_crs(&self.crs_wkt, &other.crs_wkt) {
            return Err(mismatch("crs", self.crs_name(), other.crs_name()));
        }
        Ok(())
    }

    /// Band names of one time step made unique (`band1` twice becomes `band1`, `band1_2`).
    fn dedup_names(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let per_step = self.per_step;
        for i in 0..per_step {
            let base = self.bands[i].name.clone();
            let mut name = base.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            for band in self.bands.iter_mut().skip(i).step_by(per_step) {
                band.name = name.clone();
            }
        }
    }

    /// Names the bands of a time step in order. The number of names must equal the band
    /// count and the names must be unique.
    pub fn with_band_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Raster> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.per_step {
            return Err(Error::invalid(
                "band names",
                format!(
                    "{} names given ({}) for {} bands",
                    names.len(),
                    names.join(", "),
                    self.per_step
                ),
            ));
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        if unique.len() != names.len() {
            return Err(Error::invalid(
                "band names",
                format!("names repeat: {}", names.join(", ")),
            ));
        }
        for (i, band) in self.bands.iter_mut().enumerate() {
            band.name = names[i % names.len()].clone();
        }
        Ok(self)
    }

    /// Overrides the nodata value of every band (`None` means every value is valid).
    ///
    /// The value is compared with stored values, so it must be one the bands' type can
    /// hold: a whole number in range for integer types (70000, -1 or 0.5 on UInt16 would
    /// match no pixel), within range for Float32. A value that cannot be stored is
    /// reported by [`Raster::check`], which every read and computation runs first.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?; // UInt16
    /// assert!(r.clone().with_nodata(Some(0.0)).check().is_ok());
    /// let err = r.with_nodata(Some(70000.0)).check().unwrap_err();
    /// assert!(matches!(err, Error::Invalid { what: "nodata", .. }));
    /// assert!(err.to_string().contains("0 to 65535"), "{err}");
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn with_nodata(mut self, nodata: Option<f64>) -> Raster {
        self.bad_nodata = nodata.and_then(|v| {
            self.bands
                .iter()
                .find_map(|b| nodata_misfit(v, b.dtype).map(|why| (b, why)))
                .map(|(b, (problem, allowed))| {
                    format!(
                        "band {} of {} is {}, which {problem} ({allowed})",
                        b.index,
                        b.path.display(),
                        b.dtype
                    )
                })
        });
        for band in &mut self.bands {
            band.nodata = nodata;
        }
        self
    }

    /// Overrides the scale factor of every band: decoded = stored * scale + offset.
    ///
    /// `scale` must be finite and non-zero (zero would make every pixel the offset, NaN
    /// or infinity every pixel nodata) and `offset` finite; [`Raster::check`] reports
    /// anything else before any read.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?;
    /// assert!(r.clone().with_scale(1e-4, 0.0).check().is_ok());
    /// for bad in [0.0, f64::NAN, f64::INFINITY] {
    ///     let err = r.clone().with_scale(bad, 0.0).check().unwrap_err();
    ///     assert!(matches!(err, Error::Invalid { what: "scale", .. }), "{err}");
    /// }
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn with_scale(mut self, scale: f64, offset: f64) -> Raster {
        self.bad_scale = if !(scale.is_finite() && scale != 0.0) {
            Some((
                "scale",
                format!("{scale} (allowed: a finite, non-zero number)"),
            ))
        } else if !offset.is_finite() {
            Some(("offset", format!("{offset} (allowed: a finite number)")))
        } else {
            None
        };
        for band in &mut self.bands {
            band.scale = scale;
            band.offset = offset;
        }
        self
    }

    /// Reports an override that cannot work ([`Raster::with_nodata`],
    /// [`Raster::with_scale`]) as [`Error::Invalid`] naming the argument and the values
    /// allowed. Reads, samples and lazy computations run it before touching any pixel.
    pub fn check(&self) -> Result<()> {
        if let Some(reason) = &self.bad_nodata {
            return Err(Error::invalid("nodata", reason.clone()));
        }
        if let Some((what, reason)) = &self.bad_scale {
            return Err(Error::invalid(what, reason.clone()));
        }
        Ok(())
    }

    /// Square chunks of `size` x `size` pixels for computations on this raster.
    /// Zero is an error. Without it, chunks are aligned to the file's blocks and sized by
    /// the [`PoolPlan`].
    pub fn chunks(self, size: usize) -> Result<Raster> {
        self.chunk_shape(size, size)
    }

    /// Chunks of `width` x `height` pixels; see [`Raster::chunks`].
    pub fn chunk_shape(mut self, width: usize, height: usize) -> Result<Raster> {
        ChunkGrid::new(self.view.width, self.view.height, width, height)?;
        self.chunks = Some((width, height));
        Ok(self)
    }

    /// The chunk grid used for computations: the user's chunk size when set, otherwise
    /// block-aligned chunks of about `plan.chunk_bytes()` for `bytes_per_pixel`.
    pub fn chunk_grid(&self, plan: &PoolPlan, bytes_per_pixel: usize) -> Result<ChunkGrid> {
        let (w, h) = self.size();
        match self.chunks {
            Some((cw, ch)) => ChunkGrid::new(w, h, cw, ch),
            None => {
                // Align to blocks in file coordinates: a subset starting mid-block gets
                // chunks that are still whole blocks wide.
                ChunkGrid::aligned(
                    w,
                    h,
                    align::chunk_block(self),
                    bytes_per_pixel,
                    plan.chunk_bytes(),
                    plan.threads(),
                )
            }
        }
    }

    /// The chunk size set by the user, if any.
    pub fn chunk_size(&self) -> Option<(usize, usize)> {
        self.chunks
    }

    /// Keeps only the pixels inside a bounding box in map coordinates (the pixels that
    /// the box touches, snapped outwards to the grid).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// // 30 m pixels: 300 m x 150 m is 10 x 5 pixels.
    /// let (x0, _, _, y1) = r.bounds();
    /// let sub = r.bbox(x0 + 300.0, y1 - 450.0, x0 + 600.0, y1 - 300.0)?;
    /// assert_eq!(sub.size(), (10, 5));
    /// assert_eq!(sub.geo_transform()[0], x0 + 300.0);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn bbox(self, xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> Result<Raster> {
        let [x0, dx, rx, y0, ry, dy] = self.geo_transform;
        if rx != 0.0 || ry != 0.0 {
            return Err(Error::invalid(
                "bbox",
                "the raster is rotated; use a pixel window",
            ));
        }
        if !(xmin < xmax && ymin < ymax) {
            return Err(Error::invalid(
                "bbox",
                format!("({xmin}, {ymin}, {xmax}, {ymax}) is empty"),
            ));
        }
        let (ca, cb) = ((xmin - x0) / dx, (xmax - x0) / dx);
        let (ra, rb) = ((ymax - y0) / dy, (ymin - y0) / dy);
        let eps = 1e-9;
        let (c0, c1) = (ca.min(cb), ca.max(cb));
        let (r0, r1) = (ra.min(rb), ra.max(rb));
        let c0 = (c0 + eps).floor().max(0.0) as usize;
        let r0 = (r0 + eps).floor().max(0.0) as usize;
        let c1 = ((c1 - eps).ceil().max(0.0) as usize).min(self.width);
        let r1 = ((r1 - eps).ceil().max(0.0) as usize).min(self.height);
        if c0 >= c1 || r0 >= r1 {
            let (bx0, by0, bx1, by1) = self.full_bounds();
            return Err(Error::invalid(
                "bbox",
                format!(
                    "({xmin}, {ymin}, {xmax}, {ymax}) does not overlap the raster ({bx0}, {by0}, {bx1}, {by1})"
                ),
            ));
        }
        self.window(Window::new(c0, r0, c1 - c0, r1 - r0))
    }

    /// Keeps only a pixel window of the source grid.
    pub fn window(mut self, window: Window) -> Result<Raster> {
        if window.is_empty() || !window.fits(self.width, self.height) {
            return Err(Error::invalid(
                "window",
                format!(
                    "{window} is empty or outside the {} x {} raster",
                    self.width, self.height
                ),
            ));
        }
        self.view = window;
        self.chunks = None;
        Ok(self)
    }

    /// Keeps the time steps whose date lies in `start..=end`.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::raster::time::parse_date;
    /// let r = Raster::open_glob("data/rgbn_*.tif", None)?
    ///     .dates(parse_date("2016-02-01")?, parse_date("2016-12-31")?)?;
    /// assert_eq!(r.n_times(), 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn dates(mut self, start: NaiveDate, end: NaiveDate) -> Result<Raster> {
        if self.times.is_empty() {
            return Err(Error::invalid("date range", "the raster has no time axis"));
        }
        let keep: Vec<usize> = self
            .selected
            .iter()
            .copied()
            .filter(|&t| (start..=end).contains(&self.times[t]))
            .collect();
        if keep.is_empty() {
            return Err(Error::invalid(
                "date range",
                format!(
                    "{start}..={end} holds none of the {} dates ({} to {})",
                    self.times.len(),
                    self.times[0],
                    self.times[self.times.len() - 1]
                ),
            ));
        }
        self.selected = keep;
        Ok(self)
    }

    /// `(width, height)` in pixels (of the subset in use).
    pub fn size(&self) -> (usize, usize) {
        (self.view.width, self.view.height)
    }

    /// The pixel window of the source grid in use.
    pub fn view(&self) -> Window {
        self.view
    }

    /// Number of bands in one time step.
    pub fn band_count(&self) -> usize {
        self.per_step
    }

    /// Number of time steps in use (1 for a raster without a time axis).
    pub fn n_times(&self) -> usize {
        self.selected.len()
    }

    /// Dates of the time steps in use; empty for a raster without a time axis.
    pub fn times(&self) -> Vec<NaiveDate> {
        if self.times.is_empty() {
            Vec::new()
        } else {
            self.selected.iter().map(|&t| self.times[t]).collect()
        }
    }

    /// The CF calendar of the NetCDF time axis the dates come from
    /// ([`time::Calendar::Standard`] for other rasters); [`time::Calendar`] says how its
    /// dates became the Gregorian [`Raster::times`].
    pub fn calendar(&self) -> time::Calendar {
        self.calendar
    }

    /// All source bands and how they are decoded (time-major for time stacks).
    pub fn bands(&self) -> &[BandInfo] {
        &self.bands
    }

    /// Band names of a time step, in order.
    pub fn band_names(&self) -> Vec<&str> {
        self.bands[..self.per_step]
            .iter()
            .map(|b| b.name.as_str())
            .collect()
    }

    /// 0-based index of the band called `name` within a time step, or
    /// [`Error::UnknownBand`].
    pub fn band_index(&self, name: &str) -> Result<usize> {
        self.bands[..self.per_step]
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| Error::UnknownBand {
                name: name.to_string(),
                available: self.band_names().iter().map(|s| s.to_string()).collect(),
            })
    }

    /// Index into [`Raster::bands`] of band `band` at the `t`-th time step in use.
    pub(crate) fn source_band(&self, t: usize, band: usize) -> usize {
        self.selected[t] * self.per_step + band
    }

    /// The first band's data type.
    pub fn dtype(&self) -> DataType {
        self.bands[0].dtype
    }

    /// GDAL's affine geotransform `[x0, dx, rx, y0, ry, dy]` of the subset in use.
    pub fn geo_transform(&self) -> [f64; 6] {
        let [x0, dx, rx, y0, ry, dy] = self.geo_transform;
        let (c, r) = (self.view.x as f64, self.view.y as f64);
        [x0 + c * dx + r * rx, dx, rx, y0 + c * ry + r * dy, ry, dy]
    }

    /// The CRS as WKT (empty when the file has none).
    pub fn crs_wkt(&self) -> &str {
        &self.crs_wkt
    }

    /// The CRS's EPSG code when GDAL knows it.
    pub fn epsg(&self) -> Option<u32> {
        self.epsg
    }

    /// The GDAL driver's short name, e.g. `GTiff`.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The first band's nodata value.
    pub fn nodata(&self) -> Option<f64> {
        self.bands[0].nodata
    }

    /// The first band's block size `(width, height)`.
    pub fn block_size(&self) -> (usize, usize) {
        self.bands[0].block
    }

    /// Map-coordinate bounds `(xmin, ymin, xmax, ymax)` of the subset in use
    /// (north-up rasters).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        bounds_of(self.geo_transform(), self.view.width, self.view.height)
    }

    fn full_bounds(&self) -> (f64, f64, f64, f64) {
        bounds_of(self.geo_transform, self.width, self.height)
    }

    /// Size in bytes of the bands and time steps in use, decoded as stored.
    pub fn nbytes(&self) -> u64 {
        let px = self.view.len() as u64;
        (0..self.n_times())
            .flat_map(|t| (0..self.per_step).map(move |b| (t, b)))
            .map(|(t, b)| px * self.bands[self.source_band(t, b)].dtype.bytes() as u64)
            .sum()
    }

    /// A short CRS label: `EPSG:32621` or the WKT's name.
    pub fn crs_name(&self) -> String {
        match self.epsg {
            Some(code) => format!("EPSG:{code}"),
            None if self.crs_wkt.is_empty() => "none".into(),
            None => SpatialRef::from_wkt(&self.crs_wkt)
                .ok()
                .and_then(|s| s.name())
                .unwrap_or_else(|| "custom".into()),
        }
    }

    fn check_window(&self, window: Window) -> Result<()> {
        let (w, h) = self.size();
        if window.is_empty() || !window.fits(w, h) {
            return Err(Error::invalid(
                "window",
                format!("{window} is empty or outside the {w} x {h} raster"),
            ));
        }
        Ok(())
    }

    /// Global source-band indices of `names` at every time step in use, time-major.
    pub(crate) fn source_bands(&self, names: &[&str]) -> Result<Vec<usize>> {
        let idx = names
            .iter()
            .map(|b| self.band_index(b))
            .collect::<Result<Vec<_>>>()?;
        Ok((0..self.n_times())
            .flat_map(|t| idx.iter().map(move |&b| (t, b)))
            .map(|(t, b)| self.source_band(t, b))
            .collect())
    }

    /// Reads the named bands in `window` (relative to the subset in use) as stored values
    /// converted to `T`, shaped `(band, row, column)`. No masking or scaling. For a time
    /// stack the first dimension runs over time, then bands.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// assert_eq!(r.dtype(), DataType::UInt16);
    /// let raw = r.read_raw::<u16>(Window::new(1000, 900, 4, 4), &["band3"])?;
    /// assert_eq!(raw.shape(), &[1, 4, 4]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn read_raw<T: Element>(&self, window: Window, bands: &[&str]) -> Result<Array3<T>> {
        self.check_window(window)?;
        let idx = self.source_bands(bands)?;
        let reader = Reader::open(self)?;
        let mut out = vec![T::default(); idx.len() * window.len()];
        reader.read_into(self.absolute(window), &idx, &mut out)?;
        Array3::from_shape_vec((idx.len(), window.height, window.width), out)
            .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// Reads the named bands in `window` (relative to the subset in use) as `f32` with
    /// the scale factor applied and nodata as NaN, shaped `(band, row, column)`. For a
    /// time stack use [`Raster::read_cube`].
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0))
    ///     .with_scale(1e-4, 0.0);
    /// let a = r.read(Window::new(1000, 900, 4, 4), &["red"])?;
    /// assert_eq!(a.shape(), &[1, 4, 4]);
    /// assert!(a.iter().all(|v| v.is_nan() || (0.0..=6.6).contains(v)));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn read(&self, window: Window, bands: &[&str]) -> Result<Array3<f32>> {
        if self.n_times() > 1 {
            return Err(Error::invalid(
                "read",
                format!(
                    "the raster has {} time steps; use read_cube",
                    self.n_times()
                ),
            ));
        }
        let cube = self.read_cube(window, bands)?;
        let (_, b, h, w) = cube.dim();
        cube.into_shape_with_order((b, h, w))
            .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// Reads the named bands in `window` for every time step in use, decoded like
    /// [`Raster::read`], shaped `(time, band, row, column)`.
    pub fn read_cube(&self, window: Window, bands: &[&str]) -> Result<Array4<f32>> {
        self.check_window(window)?;
        let idx = self.source_bands(bands)?;
        let reader = Reader::open(self)?;
        let mut out = vec![0f32; idx.len() * window.len()];
        reader.read_decoded(self, self.absolute(window), &idx, &mut out)?;
        Array4::from_shape_vec(
            (self.n_times(), bands.len(), window.height, window.width),
            out,
        )
        .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// True when both read the same bands of the same files over the same pixels and
    /// dates (warped the same way when aligned), so their values can be combined
    /// element-wise.
    pub fn same_source(&self, other: &Raster) -> bool {
        self.view == other.view
            && self.alignment == other.alignment
            && self.selected == other.selected
            && self.per_step == other.per_step
            && self.bands.len() == other.bands.len()
            && self
                .bands
                .iter()
                .zip(&other.bands)
                .all(|(a, b)| a.path == b.path && a.index == b.index)
    }

    /// Every file the raster reads: each band's file (the file behind a GDAL name such
    /// as `NETCDF:"f.nc":var`) and what GDAL lists for it (a VRT's sources, side-cars).
    /// Outputs are checked against these before anything is written
    /// ([`output::check_distinct`]).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open_stack(
    ///     ["data/rgbn_20160101.tif", "data/rgbn_20160401.tif"], Stack::Time)?;
    /// let files = r.source_files();
    /// assert!(files.iter().any(|f| f.ends_with("rgbn_20160401.tif")));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn source_files(&self) -> Vec<PathBuf> {
        let mut names: Vec<&Path> = self.bands.iter().map(|b| b.path.as_path()).collect();
        names.dedup();
        let mut files: Vec<PathBuf> = Vec::new();
        let mut push = |p: PathBuf| {
            if !files.contains(&p) {
                files.push(p);
            }
        };
        for name in names {
            push(source_file(name));
            push(name.to_path_buf());
            // Only a VRT reads other files; opening every member of a long time stack
            // again would cost a millisecond or more per file. A VRT that no longer opens
            // fails the run on its own, so only what GDAL lists is added here.
            let is_vrt = name
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("vrt"));
            if is_vrt {
                let _quiet = QuietGdal::new();
                if let Ok(ds) = Dataset::open(name) {
                    for f in gdal_file_list(&ds) {
                        push(f);
                    }
                }
            }
        }
        files
    }

    /// A window relative to the subset in use, in source-grid coordinates.
    pub(crate) fn absolute(&self, w: Window) -> Window {
        Window::new(w.x + self.view.x, w.y + self.view.y, w.width, w.height)
    }

    /// `(columns, rows)` of a whole-raster read whose longer side is at most `max_side`
    /// pixels, keeping the aspect ratio (never larger than the raster).
    pub fn decimated_size(&self, max_side: usize) -> (usize, usize) {
        let (w, h) = self.size();
        let f = (max_side.max(1) as f64 / w.max(h) as f64).min(1.0);
        (
            ((w as f64 * f).round() as usize).max(1),
            ((h as f64 * f).round() as usize).max(1),
        )
    }

    /// Reads the named bands of the whole raster, decoded (scaled, nodata as NaN), into
    /// an array whose longer side is at most `max_side` pixels, shaped `(band, row,
    /// column)`. GDAL samples the nearest pixels (using overviews when the file has
    /// them), so a quick-look of a large raster costs one pass of decoding, not a full
    /// array in memory.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let a = r.read_decimated(&["red", "green"], 500)?;
    /// assert_eq!(a.shape(), &[2, 456, 500]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn read_decimated(&self, bands: &[&str], max_side: usize) -> Result<Array3<f32>> {
        // The first time step in use of a time stack.
        let idx = bands
            .iter()
            .map(|b| Ok(self.source_band(0, self.band_index(b)?)))
            .collect::<Result<Vec<_>>>()?;
        let (w, h) = self.decimated_size(max_side);
        let reader = Reader::open(self)?;
        let mut out = vec![0f32; idx.len() * w * h];
        let all = self.view;
        reader.read_decoded_sized(self, all, (w, h), &idx, &mut out)?;
        Array3::from_shape_vec((idx.len(), h, w), out)
            .map_err(|e| Error::invalid("window", e.to_string()))
    }
}

/// The files a glob pattern matches, sorted; with `variable`, as `NETCDF:"file":variable`.
fn glob_names(pattern: &str, variable: Option<&str>) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = glob::glob(pattern)
        .map_err(|e| Error::invalid("glob pattern", format!("{pattern:?}: {e}")))?
        .filter_map(|p| p.ok())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::NotFound(PathBuf::from(pattern)));
    }
    let names: Vec<PathBuf> = match variable {
        Some(var) => paths
            .iter()
            .map(|p| PathBuf::from(format!("NETCDF:\"{}\":{var}", p.display())))
            .collect(),
        None => paths,
    };
    Ok(names)
}

/// Why `value` cannot be a nodata value of a band stored as `dtype` (nodata is compared
/// with stored values, so a value the type cannot hold matches no pixel), if it cannot.
fn nodata_misfit(value: f64, dtype: DataType) -> Option<(String, String)> {
    if dtype.is_integer() {
        let bits = i32::from(dtype.bits());
        let (lo, hi) = if dtype.is_signed() {
            (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1) - 1.0)
        } else {
            (0.0, 2f64.powi(bits) - 1.0)
        };
        let problem = if value.is_nan() || !(lo..=hi).contains(&value) {
            format!("cannot hold {value}")
        } else if value.fract() != 0.0 {
            format!("cannot hold {value}, not a whole number")
        } else {
            return None;
        };
        Some((problem, format!("allowed: whole numbers from {lo} to {hi}")))
    } else if dtype == DataType::Float32 && value.is_finite() && value.abs() > f64::from(f32::MAX) {
        Some((
            format!("cannot hold {value}"),
            format!(
                "allowed: NaN, infinities or numbers from {:e} to {:e}",
                f32::MIN,
                f32::MAX
            ),
        ))
    } else {
        None
    }
}

/// The file behind a GDAL name: `NETCDF:"f.nc":var` -> `f.nc`.
fn source_file(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    match (s.find('"'), s.rfind('"')) {
        (Some(a), Some(b)) if b > a => PathBuf::from(&s[a + 1..b]),
        _ => path.to_path_buf(),
    }
}

/// GDAL's block cache defaults to 5 % of RAM; chunks are read whole, so a small cache
/// costs no speed and keeps peak memory low (measured: 332 -> 148 MB). A user's
/// `GDAL_CACHEMAX` wins.
pub(crate) fn limit_gdal_cache() {
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        // SAFETY: sets a process-wide integer in GDAL.
        unsafe { gdal_sys::GDALSetCacheMax64(64 << 20) };
    }
}

/// `GDALGetFileList`: the files a dataset is made of.
fn gdal_file_list(ds: &Dataset) -> Vec<PathBuf> {
    // SAFETY: a valid dataset handle; the list is a NULL-terminated array of C strings
    // owned by the caller and freed with CSLDestroy below.
    unsafe {
        let list = gdal_sys::GDALGetFileList(ds.c_dataset());
        if list.is_null() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let item = *list.add(i);
            if item.is_null() {
                break;
            }
            out.push(PathBuf::from(
                std::ffi::CStr::from_ptr(item)
                    .to_string_lossy()
                    .into_owned(),
            ));
            i += 1;
        }
        gdal_sys::CSLDestroy(list);
        out
    }
}

fn bounds_of(gt: [f64; 6], width: usize, height: usize) -> (f64, f64, f64, f64) {
    let [x0, dx, _, y0, _, dy] = gt;
    let (x1, y1) = (x0 + dx * width as f64, y0 + dy * height as f64);
    (x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1))
}

fn epsg_of(wkt: &str) -> Option<u32> {
    if wkt.is_empty() {
        return None;
    }
    let mut srs = SpatialRef::from_wkt(wkt).ok()?;
    if srs.auth_name().as_deref() != Some("EPSG") {
        srs.auto_identify_epsg().ok()?;
    }
    (srs.auth_name().as_deref() == Some("EPSG"))
        .then(|| srs.auth_code().ok())
        .flatten()
        .and_then(|c| u32::try_from(c).ok())
}

fn same_crs(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (SpatialRef::from_wkt(a), SpatialRef::from_wkt(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl fmt::Display for Raster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (xmin, ymin, xmax, ymax) = self.bounds();
        let (w, h) = self.size();
        write!(f, "Raster {w} x {h} px, {} band(s)", self.per_step)?;
        if !self.times.is_empty() {
            write!(f, " x {} time step(s)", self.n_times())?;
        }
        writeln!(f, ", {} ({})", self.dtype(), self.driver)?;
        if !self.times.is_empty() {
            let times = self.times();
            write!(f, "  time:    {} .. {}", times[0], times[times.len() - 1])?;
            match self.calendar.note() {
                Some(note) => writeln!(f, " ({note})")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "  crs:     {}", self.crs_name())?;
        writeln!(f, "  bounds:  ({xmin}, {ymin}) - ({xmax}, {ymax})")?;
        writeln!(
            f,
            "  pixel:   {} x {}",
            self.geo_transform[1],
            self.geo_transform[5].abs()
        )?;
        if self.view != Window::new(0, 0, self.width, self.height) {
            writeln!(
                f,
                "  subset:  {} of {} x {}",
                self.view, self.width, self.height
            )?;
        }
        if let Some(a) = &self.alignment {
            a.fmt_rows(f)?;
        }
        let (bw, bh) = self.block_size();
        writeln!(f, "  blocks:  {bw} x {bh}")?;
        if let Some((cw, ch)) = self.chunks {
            writeln!(f, "  chunks:  {cw} x {ch}")?;
        }
        writeln!(
            f,
            "  size:    {}",
            crate::core::fmt::human_bytes(self.nbytes())
        )?;
        for (i, b) in self.bands[..self.per_step].iter().enumerate() {
            write!(f, "  band {}: {:<8} {}", i, b.name, b.dtype)?;
            if let Some(nd) = b.nodata {
                write!(f, " nodata={nd}")?;
            }
            if b.scale != 1.0 || b.offset != 0.0 {
                write!(f, " scale={} offset={}", b.scale, b.offset)?;
            }
            if self.times.is_empty() {
                write!(f, "  [{}:{}]", b.path.display(), b.index)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Per-worker GDAL handles for a raster's files; never shared between threads.
pub(crate) struct Reader {
    datasets: Vec<Dataset>,
    /// The multidimensional fast path of each dataset that is a NetCDF (time, y, x) cube.
    cubes: Vec<Option<netcdf::Cube>>,
    /// For each band of the raster: (dataset index, 1-based band in that dataset).
    band_map: Vec<(usize, i32)>,
    /// The name of each dataset that is remote (a URL, `/vsis3/...`), for its errors.
    remote: Vec<Option<PathBuf>>,
    /// A read buffer kept between chunks, so each chunk does not fault in fresh pages.
    spare: std::cell::RefCell<Vec<f32>>,
}

impl Reader {
    pub(crate) fn open(raster: &Raster) -> Result<Reader> {
        // Every read goes through here: one place for the overrides' terminal check.
        raster.check()?;
        let mut paths: Vec<&Path> = Vec::new();
        let mut band_map = Vec::with_capacity(raster.bands.len());
        for band in &raster.bands {
            let ds = match paths.iter().position(|p| *p == band.path.as_path()) {
                Some(i) => i,
                None => {
                    paths.push(&band.path);
                    paths.len() - 1
                }
            };
            band_map.push((ds, band.index as i32));
        }
        let datasets = paths
            .iter()
            .map(|p| align::open_member(raster, p))
            .collect::<Result<Vec<_>>>()?;
        let cubes = paths
            .iter()
            .zip(&datasets)
            .map(|(p, ds)| netcdf::Cube::open(p, ds))
            .collect();
        let remote = paths
            .iter()
            .map(|p| remote::is_remote(p).then(|| p.to_path_buf()))
            .collect();
        Ok(Reader {
            datasets,
            cubes,
            band_map,
            remote,
            spare: Default::default(),
        })
    }

    /// A buffer of `len` values (contents unspecified), reusing the one given back last.
    pub(crate) fn buffer(&self, len: usize) -> Vec<f32> {
        let mut buf = self.spare.take();
        buf.resize(len, 0.0);
        buf
    }

    /// Keeps `buf` for the next [`buffer`](Reader::buffer) call.
    pub(crate) fn give_back(&self, buf: Vec<f32>) {
        self.spare.replace(buf);
    }

    /// Reads bands `idx` (0-based raster bands) of `window` into `out`, band-sequential.
    /// Consecutive bands of one file are read in a single dataset-level call, so a
    /// pixel-interleaved tile is decoded once for all of them.
    pub(crate) fn read_into<T: Element>(
        &self,
        window: Window,
        idx: &[usize],
        out: &mut [T],
    ) -> Result<()> {
        self.read_into_sized(window, (window.width, window.height), idx, out)
    }

    /// Like `read_into` into a buffer of `size` = `(columns, rows)` per band: GDAL
    /// resamples the window (nearest neighbour, from overviews when the file has them).
    pub(crate) fn read_into_sized<T: Element>(
        &self,
        window: Window,
        size: (usize, usize),
        idx: &[usize],
        out: &mut [T],
    ) -> Result<()> {
        let _quiet = QuietGdal::new();
        let n = size.0 * size.1;
        if out.len() != n * idx.len() {
            return Err(Error::invalid(
                "buffer",
                format!("{} values for {} bands of {window}", out.len(), idx.len()),
            ));
        }
        let mut start = 0;
        while start < idx.len() {
            let ds = self.band_map[idx[start]].0;
            let mut end = start + 1;
            while end < idx.len() && self.band_map[idx[end]].0 == ds {
                end += 1;
            }
            let mut bands: Vec<i32> = idx[start..end]
                .iter()
                .map(|&i| self.band_map[i].1)
                .collect();
            let buf = &mut out[start * n..end * n];
            // A run of consecutive time steps of a NetCDF cube: one multidimensional read.
            if let Some(cube) = &self.cubes[ds]
                && size == (window.width, window.height)
                && bands.windows(2).all(|b| b[1] == b[0] + 1)
                && cube.read(window, bands[0] as usize - 1, bands.len(), buf)
            {
                start = end;
                continue;
            }
            let to_int = |v: usize| {
                i32::try_from(v)
                    .map_err(|_| Error::invalid("window", format!("{window} is too large")))
            };
            // A remote dataset's HTTP status comes from what GDAL reports during the read.
            let capture = self.remote[ds].as_ref().map(|_| remote::Capture::new());
            // SAFETY: `buf` holds exactly bands.len() * window.len() values of T, the band
            // list outlives the call, and the dataset is owned by this thread.
            let err = unsafe {
                gdal_sys::GDALDatasetRasterIO(
                    self.datasets[ds].c_dataset(),
                    gdal_sys::GDALRWFlag::GF_Read,
                    to_int(window.x)?,
                    to_int(window.y)?,
                    to_int(window.width)?,
                    to_int(window.height)?,
                    buf.as_mut_ptr().cast(),
                    to_int(size.0)?,
                    to_int(size.1)?,
                    gdal_types::ordinal::<T>(),
                    to_int(bands.len())?,
                    bands.as_mut_ptr(),
                    0,
                    0,
                    0,
                )
            };
            if err != gdal_sys::CPLErr::CE_None {
                let source = last_gdal_error("GDALDatasetRasterIO");
                let context = format!("reading {window}");
                if let (Some(capture), Some(path)) = (&capture, &self.remote[ds])
                    && let Some(e) = remote::read_failure(
                        capture,
                        path,
                        &context,
                        &crate::error::gdal_message(&source),
                    )
                {
                    return Err(e);
                }
                return Err(Error::Gdal { context, source });
            }
            drop(capture);
            start = end;
        }
        Ok(())
    }

    /// Like `read_into` for `f32`, then applies scale/offset and turns nodata into NaN.
    pub(crate) fn read_decoded(
        &self,
        raster: &Raster,
        window: Window,
        idx: &[usize],
        out: &mut [f32],
    ) -> Result<()> {
        self.read_decoded_sized(raster, window, (window.width, window.height), idx, out)
    }

    /// `read_decoded` into a buffer of `size` per band; see `read_into_sized`.
    pub(crate) fn read_decoded_sized(
        &self,
        raster: &Raster,
        window: Window,
        size: (usize, usize),
        idx: &[usize],
        out: &mut [f32],
    ) -> Result<()> {
        self.read_into_sized(window, size, idx, out)?;
        let n = size.0 * size.1;
        for (k, &i) in idx.iter().enumerate() {
            let band = &raster.bands[i];
            decode(
                &mut out[k * n..(k + 1) * n],
                band.nodata,
                band.scale,
                band.offset,
            );
        }
        Ok(())
    }
}

/// Stored values -> physical values; nodata (compared in the stored domain) -> NaN.
/// One branch-free loop per case, so each vectorizes.
fn decode(values: &mut [f32], nodata: Option<f64>, scale: f64, offset: f64) {
    let (s, o) = (scale as f32, offset as f32);
    let identity = s == 1.0 && o == 0.0;
    match nodata.filter(|nd| !nd.is_nan()) {
        Some(nd) if identity => {
            let nd = nd as f32;
            values
                .iter_mut()
                .for_each(|v| *v = if *v == nd { f32::NAN } else { *v });
        }
        Some(nd) => {
            let nd = nd as f32;
            values
                .iter_mut()
                .for_each(|v| *v = if *v == nd { f32::NAN } else { *v * s + o });
        }
        None if identity => {}
        None => values.iter_mut().for_each(|v| *v = *v * s + o),
    }
}

/// Keeps GDAL from printing its own `ERROR n: ...` lines on stderr while alive, on this
/// thread (GDAL's handler stack is per thread): rasterlab turns failures into typed errors
/// that carry GDAL's message (`CPLGetLastErrorMsg` still records it), and in a notebook
/// the extra red lines only repeat them.
pub(crate) struct QuietGdal(std::marker::PhantomData<*const ()>);

impl QuietGdal {
    pub(crate) fn new() -> QuietGdal {
        // SAFETY: pushes a handler that GDAL provides; popped on this thread by `Drop`
        // (the marker keeps the guard on the thread that created it).
        unsafe { gdal_sys::CPLPushErrorHandler(Some(gdal_sys::CPLQuietErrorHandler)) };
        QuietGdal(std::marker::PhantomData)
    }
}

impl Drop for QuietGdal {
    fn drop(&mut self) {
        // SAFETY: pops the handler pushed by `new` on this same thread.
        unsafe { gdal_sys::CPLPopErrorHandler() };
    }
}

pub(crate) fn last_gdal_error(method: &'static str) -> gdal::errors::GdalError {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: plain accessors of thread-local error state.
    let (class, number) = unsafe {
        (
            gdal_sys::CPLGetLastErrorType(),
            gdal_sys::CPLGetLastErrorNo(),
        )
    };
    gdal::errors::GdalError::CplError {
        class,
        number,
        msg: if msg.is_empty() {
            format!("{method} failed")
        } else {
            msg
        },
    }
}
