//! What a [`Raster`] describes: size, bands, dates, grid, CRS, and its printed summary.

use std::fmt;

use chrono::NaiveDate;
use gdal::spatial_ref::SpatialRef;

use super::{BandInfo, Raster, time};
use crate::core::dtype::DataType;
use crate::error::{Error, Result};
use crate::runtime::grid::Window;

impl Raster {
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

    pub(super) fn full_bounds(&self) -> (f64, f64, f64, f64) {
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
}

fn bounds_of(gt: [f64; 6], width: usize, height: usize) -> (f64, f64, f64, f64) {
    let [x0, dx, _, y0, _, dy] = gt;
    let (x1, y1) = (x0 + dx * width as f64, y0 + dy * height as f64);
    (x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1))
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
