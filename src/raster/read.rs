//! Reading pixels: the windowed reads of a [`Raster`] and the per-worker [`Reader`]
//! that holds a thread's GDAL handles and decodes values (scale, offset, nodata as NaN).

use std::path::{Path, PathBuf};

use gdal::Dataset;
use ndarray::{Array3, Array4};

use super::{QuietGdal, Raster, align, gdal_types, last_gdal_error, netcdf, remote};
use crate::core::dtype::Element;
use crate::error::{Error, Result};
use crate::runtime::grid::Window;

impl Raster {
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
            .map_err(|e| Error::internal(format!("window shape: {e}")))
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
            .map_err(|e| Error::internal(format!("window shape: {e}")))
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
        .map_err(|e| Error::internal(format!("window shape: {e}")))
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
            .map_err(|e| Error::internal(format!("window shape: {e}")))
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
