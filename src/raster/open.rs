//! Opening rasters: one file, stacks of files on one grid (by band or by time), glob
//! patterns; and the GDAL names behind them (`NETCDF:"f.nc":var`, `/vsi...`, URLs).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, Metadata};

use super::ffi::gdal_file_list;
use super::{BandInfo, QuietGdal, Raster, Stack, align, gdal_types, remote, time};
use crate::error::{Error, Result};
use crate::runtime::grid::Window;

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
    pub(super) fn stack(
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
            // The dates were counted against the files above.
            part.date_member(path, how, dates.map(|d| d[k]))?;
            if let Some(s) = &stack {
                s.check_member(&part, how, path, &first)?;
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
            stack.set_time_steps(steps)?;
        }
        stack.selected = (0..stack.bands.len() / stack.per_step).collect();
        stack.alignment = align.map(|t| t.alignment(warped));
        stack.dedup_names();
        Ok(stack)
    }

    /// Dates one member of a stack (a raster just opened from `path`): with `date` (the
    /// user's date for this file), that one Gregorian date; in a time stack, a file
    /// without a time axis gets the date in its name; otherwise its own dates stay.
    fn date_member(&mut self, path: &Path, how: Stack, date: Option<NaiveDate>) -> Result<()> {
        if let Some(date) = date {
            if self.n_times() > 1 {
                return Err(Error::invalid(
                    "dates",
                    format!(
                        "{} already has {} time steps; give no dates",
                        path.display(),
                        self.n_times()
                    ),
                ));
            }
            self.times = vec![date];
            // Dates given by the user are Gregorian.
            self.calendar = time::Calendar::Standard;
        } else if how == Stack::Time && self.times.is_empty() {
            let date = time::date_from_name(source_file(path)).ok_or_else(|| {
                Error::invalid(
                    "date",
                    format!(
                        "no date (YYYYMMDD or YYYY-MM-DD) in the name {}; give dates with Raster::open_time_stack",
                        path.display()
                    ),
                )
            })?;
            self.times = vec![date];
        }
        Ok(())
    }

    /// Checks that `part` (opened from `path`) fits the stack begun with `first`: the same
    /// grid, and for a time stack the same bands per step and the same calendar.
    fn check_member(&self, part: &Raster, how: Stack, path: &Path, first: &Path) -> Result<()> {
        self.check_same_grid(part, path, first)?;
        if how == Stack::Time && part.per_step != self.per_step {
            return Err(Error::StackMismatch {
                path: path.to_path_buf(),
                first: first.to_path_buf(),
                field: "bands per time step",
                expected: self.per_step.to_string(),
                found: part.per_step.to_string(),
            });
        }
        // Dates made Gregorian by different rules (a 360_day file next to a standard one)
        // would interleave steps that do not belong together.
        if how == Stack::Time && part.calendar != self.calendar {
            return Err(Error::StackMismatch {
                path: path.to_path_buf(),
                first: first.to_path_buf(),
                field: "calendar",
                expected: self.calendar.to_string(),
                found: part.calendar.to_string(),
            });
        }
        Ok(())
    }

    /// Makes a time stack's bands the `(date, bands of one step)` of its members, sorted
    /// by date (one step per date), every step's bands named as the first step's.
    fn set_time_steps(&mut self, mut steps: Vec<(NaiveDate, Vec<BandInfo>)>) -> Result<()> {
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
        self.times = steps.iter().map(|(d, _)| *d).collect();
        self.bands = steps.into_iter().flat_map(|(_, b)| b).collect();
        // Names come from the first step; later steps repeat them.
        let names: Vec<String> = self.bands[..self.per_step]
            .iter()
            .map(|b| b.name.clone())
            .collect();
        for (i, band) in self.bands.iter_mut().enumerate() {
            band.name = names[i % names.len()].clone();
        }
        Ok(())
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

    /// Every file the raster reads: each band's file (the file behind a GDAL name such
    /// as `NETCDF:"f.nc":var`) and what GDAL lists for it (a VRT's sources, side-cars).
    /// Outputs are checked against these before anything is written
    /// ([`output::check_distinct`](super::output::check_distinct)).
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
}

/// The files a glob pattern matches, sorted; with `variable`, as `NETCDF:"file":variable`.
pub(super) fn glob_names(pattern: &str, variable: Option<&str>) -> Result<Vec<PathBuf>> {
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

/// The file behind a GDAL name: `NETCDF:"f.nc":var` -> `f.nc`.
pub(super) fn source_file(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    match (s.find('"'), s.rfind('"')) {
        (Some(a), Some(b)) if b > a => PathBuf::from(&s[a + 1..b]),
        _ => path.to_path_buf(),
    }
}

pub(super) fn epsg_of(wkt: &str) -> Option<u32> {
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

pub(super) fn same_crs(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (SpatialRef::from_wkt(a), SpatialRef::from_wkt(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
