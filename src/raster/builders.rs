//! The methods that return a changed copy of a [`Raster`]: band names and decoding
//! overrides (checked by [`Raster::check`]), chunk sizes, and subsets of the grid or of
//! the time steps.

use chrono::NaiveDate;

use super::{Raster, align};
use crate::core::dtype::DataType;
use crate::error::{Error, Result};
use crate::runtime::grid::{ChunkGrid, Window};
use crate::runtime::resources::PoolPlan;

impl Raster {
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
