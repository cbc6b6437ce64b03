//! Rasters opened through GDAL: metadata, band names, stacks of files, windowed reads.
//!
//! A [`Raster`] owns only paths and metadata (it is `'static`, cheap to clone and safe to
//! keep between notebook cells); GDAL handles are opened by each worker thread when a
//! computation runs, because GDAL 3.6 datasets are `Send` but not `Sync`.

pub mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use gdal::raster::{GdalDataType, GdalType};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, Metadata};
use ndarray::Array3;

use crate::array::LazyArray;
use crate::error::{Error, Result};
use crate::grid::{ChunkGrid, Window};
use crate::resources::PoolPlan;

/// How [`Raster::open_stack`] combines several files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stack {
    /// Every band of every file becomes one band of the stack, in order.
    Band,
}

/// One band of a [`Raster`]: where it comes from and how its values are decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct BandInfo {
    /// The file (or GDAL dataset name) holding the band.
    pub path: PathBuf,
    /// 1-based band index inside that file.
    pub index: usize,
    /// The band's name: its description in the file, `band{n}`, or set by the user.
    pub name: String,
    /// The stored data type.
    pub dtype: GdalDataType,
    /// Values equal to this are missing.
    pub nodata: Option<f64>,
    /// Decoded value = stored value * scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// The file's block (tile or strip) size, `(width, height)`.
    pub block: (usize, usize),
}

/// A raster on disk: one file or a stack of files on one grid.
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
#[derive(Debug, Clone)]
pub struct Raster {
    bands: Vec<BandInfo>,
    width: usize,
    height: usize,
    geo_transform: [f64; 6],
    crs_wkt: String,
    epsg: Option<u32>,
    driver: String,
    chunks: Option<(usize, usize)>,
}

/// True for names GDAL resolves itself (`NETCDF:"f.nc":var`, `/vsizip/...`), which
/// cannot be checked with the filesystem.
fn is_gdal_name(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s.starts_with("/vsi")
        || s.split_once(':')
            .is_some_and(|(d, _)| d.len() > 1 && d.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(crate) fn open_dataset(path: &Path) -> Result<Dataset> {
    if !is_gdal_name(path) && !path.exists() {
        return Err(Error::NotFound(path.to_path_buf()));
    }
    Dataset::open(path).map_err(|e| Error::NotARaster {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Raster {
    /// Opens any raster GDAL can read (GeoTIFF, NetCDF subdataset, VRT, ...).
    ///
    /// Errors: [`Error::NotFound`] for a missing file, [`Error::NotARaster`] for a file
    /// GDAL cannot read or one without raster bands.
    pub fn open(path: impl AsRef<Path>) -> Result<Raster> {
        let path = path.as_ref();
        let ds = open_dataset(path)?;
        let (width, height) = ds.raster_size();
        let count = ds.raster_count();
        if count == 0 || width == 0 || height == 0 {
            return Err(Error::NotARaster {
                path: path.to_path_buf(),
                reason: "it holds no raster band".into(),
            });
        }
        let geo_transform = ds.geo_transform().unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let crs_wkt = ds.projection();
        let epsg = epsg_of(&crs_wkt);
        let mut bands = Vec::with_capacity(count);
        for index in 1..=count {
            let band = ds.rasterband(index).map_err(Error::gdal(format!(
                "reading band {index} of {}",
                path.display()
            )))?;
            let name = band
                .description()
                .ok()
                .filter(|d| !d.trim().is_empty())
                .unwrap_or_else(|| format!("band{index}"));
            bands.push(BandInfo {
                path: path.to_path_buf(),
                index,
                name,
                dtype: band.band_type(),
                nodata: band.no_data_value(),
                scale: band.scale().unwrap_or(1.0),
                offset: band.offset().unwrap_or(0.0),
                block: band.block_size(),
            });
        }
        Ok(Raster {
            bands,
            width,
            height,
            geo_transform,
            crs_wkt,
            epsg,
            driver: ds.driver().short_name(),
            chunks: None,
        })
    }

    /// Opens several files as one raster. With [`Stack::Band`] the bands of every file
    /// are stacked in order (the usual case: one file per band, as Landsat ships them).
    ///
    /// Every file must share the first file's size, geotransform and CRS; a mismatch is
    /// [`Error::StackMismatch`] naming the file and the field.
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
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn open_stack<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        how: Stack,
    ) -> Result<Raster> {
        let Stack::Band = how;
        let mut iter = paths.into_iter();
        let first_path = iter
            .next()
            .ok_or_else(|| Error::invalid("stack", "no file given"))?;
        let mut stack = Raster::open(first_path.as_ref())?;
        let first = first_path.as_ref().to_path_buf();
        for path in iter {
            let path = path.as_ref();
            let other = Raster::open(path)?;
            let mismatch = |field, expected: String, found: String| Error::StackMismatch {
                path: path.to_path_buf(),
                first: first.clone(),
                field,
                expected,
                found,
            };
            if other.size() != stack.size() {
                return Err(mismatch(
                    "size",
                    format!("{:?}", stack.size()),
                    format!("{:?}", other.size()),
                ));
            }
            let same_gt = other
                .geo_transform
                .iter()
                .zip(stack.geo_transform)
                .all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0));
            if !same_gt {
                return Err(mismatch(
                    "geotransform",
                    format!("{:?}", stack.geo_transform),
                    format!("{:?}", other.geo_transform),
                ));
            }
            if !same_crs(&stack.crs_wkt, &other.crs_wkt) {
                return Err(mismatch("crs", stack.crs_name(), other.crs_name()));
            }
            stack.bands.extend(other.bands);
        }
        stack.dedup_names();
        Ok(stack)
    }

    /// Band names made unique (`band1` twice becomes `band1`, `band1_2`).
    fn dedup_names(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for i in 0..self.bands.len() {
            let mut name = self.bands[i].name.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{}_{n}", self.bands[i].name);
                n += 1;
            }
            self.bands[i].name = name;
        }
    }

    /// Names the bands in order. The number of names must equal the band count and the
    /// names must be unique.
    pub fn with_band_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Raster> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.bands.len() {
            return Err(Error::invalid(
                "band names",
                format!(
                    "{} names given ({}) for {} bands",
                    names.len(),
                    names.join(", "),
                    self.bands.len()
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
        for (band, name) in self.bands.iter_mut().zip(names) {
            band.name = name;
        }
        Ok(self)
    }

    /// Overrides the nodata value of every band (`None` means every value is valid).
    pub fn with_nodata(mut self, nodata: Option<f64>) -> Raster {
        for band in &mut self.bands {
            band.nodata = nodata;
        }
        self
    }

    /// Overrides the scale factor of every band: decoded = stored * scale + offset.
    pub fn with_scale(mut self, scale: f64, offset: f64) -> Raster {
        for band in &mut self.bands {
            band.scale = scale;
            band.offset = offset;
        }
        self
    }

    /// Square chunks of `size` x `size` pixels for computations on this raster.
    /// Zero is an error. Without it, chunks are aligned to the file's blocks and sized by
    /// the [`PoolPlan`].
    pub fn chunks(self, size: usize) -> Result<Raster> {
        self.chunk_shape(size, size)
    }

    /// Chunks of `width` x `height` pixels; see [`Raster::chunks`].
    pub fn chunk_shape(mut self, width: usize, height: usize) -> Result<Raster> {
        ChunkGrid::new(self.width, self.height, width, height)?;
        self.chunks = Some((width, height));
        Ok(self)
    }

    /// The chunk grid used for computations: the user's chunk size when set, otherwise
    /// block-aligned chunks of about `plan.chunk_bytes()` for `bytes_per_pixel`.
    pub fn chunk_grid(&self, plan: &PoolPlan, bytes_per_pixel: usize) -> Result<ChunkGrid> {
        match self.chunks {
            Some((w, h)) => ChunkGrid::new(self.width, self.height, w, h),
            None => ChunkGrid::aligned(
                self.width,
                self.height,
                self.block_size(),
                bytes_per_pixel,
                plan.chunk_bytes(),
                plan.threads(),
            ),
        }
    }

    /// The chunk size set by the user, if any.
    pub fn chunk_size(&self) -> Option<(usize, usize)> {
        self.chunks
    }

    /// `(width, height)` in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Number of bands.
    pub fn band_count(&self) -> usize {
        self.bands.len()
    }

    /// The bands and how they are decoded.
    pub fn bands(&self) -> &[BandInfo] {
        &self.bands
    }

    /// Band names in order.
    pub fn band_names(&self) -> Vec<&str> {
        self.bands.iter().map(|b| b.name.as_str()).collect()
    }

    /// 0-based index of the band called `name`, or [`Error::UnknownBand`].
    pub fn band_index(&self, name: &str) -> Result<usize> {
        self.bands
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| Error::UnknownBand {
                name: name.to_string(),
                available: self.bands.iter().map(|b| b.name.clone()).collect(),
            })
    }

    /// The first band's data type.
    pub fn dtype(&self) -> GdalDataType {
        self.bands[0].dtype
    }

    /// GDAL's affine geotransform `[x0, dx, rx, y0, ry, dy]`.
    pub fn geo_transform(&self) -> [f64; 6] {
        self.geo_transform
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

    /// Map-coordinate bounds `(xmin, ymin, xmax, ymax)` of a north-up raster.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        let [x0, dx, _, y0, _, dy] = self.geo_transform;
        let (x1, y1) = (x0 + dx * self.width as f64, y0 + dy * self.height as f64);
        (x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1))
    }

    /// Size in bytes of all bands decoded as stored.
    pub fn nbytes(&self) -> u64 {
        let px = (self.width * self.height) as u64;
        self.bands.iter().map(|b| px * b.dtype.bytes() as u64).sum()
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

    /// Reads the named bands in `window` as stored values converted to `T`, shaped
    /// `(band, row, column)`. No masking or scaling.
    pub fn read_raw<T: GdalType + Copy + Default>(
        &self,
        window: Window,
        bands: &[&str],
    ) -> Result<Array3<T>> {
        let idx = bands
            .iter()
            .map(|b| self.band_index(b))
            .collect::<Result<Vec<_>>>()?;
        let reader = Reader::open(self)?;
        let mut out = vec![T::default(); idx.len() * window.len()];
        reader.read_into(window, &idx, &mut out)?;
        Array3::from_shape_vec((idx.len(), window.height, window.width), out)
            .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// Reads the named bands in `window` as `f32` with the scale factor applied and
    /// nodata as NaN, shaped `(band, row, column)`.
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
        let idx = bands
            .iter()
            .map(|b| self.band_index(b))
            .collect::<Result<Vec<_>>>()?;
        let reader = Reader::open(self)?;
        let mut out = vec![0f32; idx.len() * window.len()];
        reader.read_decoded(self, window, &idx, &mut out)?;
        Array3::from_shape_vec((idx.len(), window.height, window.width), out)
            .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// `(columns, rows)` of a whole-raster read whose longer side is at most `max_side`
    /// pixels, keeping the aspect ratio (never larger than the raster).
    pub fn decimated_size(&self, max_side: usize) -> (usize, usize) {
        let (w, h) = (self.width, self.height);
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
        let idx = bands
            .iter()
            .map(|b| self.band_index(b))
            .collect::<Result<Vec<_>>>()?;
        let (w, h) = self.decimated_size(max_side);
        let reader = Reader::open(self)?;
        let mut out = vec![0f32; idx.len() * w * h];
        let all = Window::new(0, 0, self.width, self.height);
        reader.read_decoded_sized(self, all, (w, h), &idx, &mut out)?;
        Array3::from_shape_vec((idx.len(), h, w), out)
            .map_err(|e| Error::invalid("window", e.to_string()))
    }

    /// The normalized difference `(a - b) / (a + b)` of two named bands, as a lazy array.
    ///
    /// A pixel that is nodata in either band, or where `a + b = 0`, is nodata (NaN) in the
    /// result. Note: geowombat's `norm_diff(src, b1, b2)` computes `(b2 - b1) / (b2 + b1)`
    /// and writes 0 for nodata; rasterlab keeps the usual order and real nodata.
    pub fn norm_diff(&self, a: &str, b: &str) -> Result<LazyArray> {
        LazyArray::norm_diff(self.clone(), a, b)
    }
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
        writeln!(
            f,
            "Raster {} x {} px, {} band(s), {} ({})",
            self.width,
            self.height,
            self.bands.len(),
            self.dtype(),
            self.driver
        )?;
        writeln!(f, "  crs:     {}", self.crs_name())?;
        writeln!(f, "  bounds:  ({xmin}, {ymin}) - ({xmax}, {ymax})")?;
        writeln!(
            f,
            "  pixel:   {} x {}",
            self.geo_transform[1],
            self.geo_transform[5].abs()
        )?;
        let (bw, bh) = self.block_size();
        writeln!(f, "  blocks:  {bw} x {bh}")?;
        if let Some((cw, ch)) = self.chunks {
            writeln!(f, "  chunks:  {cw} x {ch}")?;
        }
        writeln!(
            f,
            "  size:    {}",
            crate::display::human_bytes(self.nbytes())
        )?;
        for (i, b) in self.bands.iter().enumerate() {
            write!(f, "  band {}: {:<8} {}", i, b.name, b.dtype)?;
            if let Some(nd) = b.nodata {
                write!(f, " nodata={nd}")?;
            }
            if b.scale != 1.0 || b.offset != 0.0 {
                write!(f, " scale={} offset={}", b.scale, b.offset)?;
            }
            writeln!(f, "  [{}:{}]", b.path.display(), b.index)?;
        }
        Ok(())
    }
}

/// Per-worker GDAL handles for a raster's files; never shared between threads.
pub(crate) struct Reader {
    datasets: Vec<Dataset>,
    /// For each band of the raster: (dataset index, 1-based band in that dataset).
    band_map: Vec<(usize, i32)>,
}

impl Reader {
    pub(crate) fn open(raster: &Raster) -> Result<Reader> {
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
            .map(|p| open_dataset(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Reader { datasets, band_map })
    }

    /// Reads bands `idx` (0-based raster bands) of `window` into `out`, band-sequential.
    /// Consecutive bands of one file are read in a single dataset-level call, so a
    /// pixel-interleaved tile is decoded once for all of them.
    pub(crate) fn read_into<T: GdalType + Copy>(
        &self,
        window: Window,
        idx: &[usize],
        out: &mut [T],
    ) -> Result<()> {
        self.read_into_sized(window, (window.width, window.height), idx, out)
    }

    /// Like `read_into` into a buffer of `size` = `(columns, rows)` per band: GDAL
    /// resamples the window (nearest neighbour, from overviews when the file has them).
    pub(crate) fn read_into_sized<T: GdalType + Copy>(
        &self,
        window: Window,
        size: (usize, usize),
        idx: &[usize],
        out: &mut [T],
    ) -> Result<()> {
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
            let to_int = |v: usize| {
                i32::try_from(v)
                    .map_err(|_| Error::invalid("window", format!("{window} is too large")))
            };
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
                    T::gdal_ordinal(),
                    to_int(bands.len())?,
                    bands.as_mut_ptr(),
                    0,
                    0,
                    0,
                )
            };
            if err != gdal_sys::CPLErr::CE_None {
                return Err(Error::Gdal {
                    context: format!("reading {window}"),
                    source: last_gdal_error("GDALDatasetRasterIO"),
                });
            }
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
fn decode(values: &mut [f32], nodata: Option<f64>, scale: f64, offset: f64) {
    let (s, o) = (scale as f32, offset as f32);
    let identity = s == 1.0 && o == 0.0;
    match nodata {
        Some(nd) if !nd.is_nan() => {
            let nd = nd as f32;
            for v in values.iter_mut() {
                *v = if *v == nd {
                    f32::NAN
                } else if identity {
                    *v
                } else {
                    *v * s + o
                };
            }
        }
        _ if identity => {}
        _ => values.iter_mut().for_each(|v| *v = *v * s + o),
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
