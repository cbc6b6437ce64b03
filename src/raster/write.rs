//! Tiled, compressed GeoTIFF output, written to a temporary file and renamed on success;
//! optionally rewritten as a Cloud-Optimized GeoTIFF with overviews ([`Layout::Cog`]).

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::output::{self, PendingFile};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};

use crate::core::dtype::OutputType;
use crate::error::{Error, Result};
use crate::runtime::grid::Window;

mod cog;
pub use cog::{Layout, OverviewResampling};

/// Compression of a GeoTIFF's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression: fastest to write, largest file.
    None,
    /// LZW, readable by every GeoTIFF reader (the default).
    #[default]
    Lzw,
    /// DEFLATE (zlib).
    Deflate,
    /// ZSTD: needs GDAL built with zstd (Debian's is).
    Zstd,
}

impl Compression {
    /// The GTiff `COMPRESS` value.
    pub fn gdal_name(self) -> &'static str {
        match self {
            Compression::None => "NONE",
            Compression::Lzw => "LZW",
            Compression::Deflate => "DEFLATE",
            Compression::Zstd => "ZSTD",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;

    /// ```
    /// use rasterlab::prelude::*;
    /// assert_eq!("zstd".parse::<Compression>()?, Compression::Zstd);
    /// assert!("bogus".parse::<Compression>().is_err());
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "lzw" => Ok(Compression::Lzw),
            "deflate" | "zlib" => Ok(Compression::Deflate),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(Error::invalid(
                "compression",
                format!("{s:?}; choose one of none, lzw, deflate, zstd"),
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gdal_name())
    }
}

/// What a GeoTIFF output looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct TiffSpec {
    /// Width and height in pixels.
    pub size: (usize, usize),
    /// Number of bands.
    pub bands: usize,
    /// Stored type of every band.
    pub dtype: OutputType,
    /// Georeference carried over from the source.
    pub geo_transform: [f64; 6],
    /// CRS as WKT; empty for none.
    pub crs_wkt: String,
    /// Nodata value recorded in the file.
    pub nodata: Option<f64>,
    /// Tile compression.
    pub compression: Compression,
    /// Tile size (multiples of 16, as the TIFF spec requires).
    pub tile: (usize, usize),
    /// Threads GDAL may use to compress tiles.
    pub threads: usize,
    /// Band descriptions.
    pub band_names: Vec<String>,
}

/// Checks that `path` can be created or replaced; see [`output::check_output_path`].
pub fn check_output_path(path: &Path) -> Result<()> {
    output::check_output_path(path)
}

/// Creation options for a tiled GTiff, validated against the driver (GDAL only warns
/// about bad options and silently writes something else).
///
/// For a COG this file is only the intermediate the COG driver copies (and compresses as
/// asked): it is written with fast ZSTD level 1 and no predictor when GDAL offers ZSTD.
/// Measured on the sample scene's Float32 NDI (write, overviews, copy, best of 5): 0.31 s
/// against 0.86 s with LZW and the predictor, 0.35 s uncompressed (whose intermediate is
/// 22 MB instead of 15; for a label map 11 MB instead of 0.8).
fn creation_options(spec: &TiffSpec, layout: Layout) -> Result<RasterCreationOptions> {
    let _quiet = super::QuietGdal::new();
    let driver = DriverManager::get_driver_by_name("GTiff")
        .map_err(Error::gdal("loading the GTiff driver"))?;
    let (tw, th) = spec.tile;
    if tw == 0 || th == 0 || tw % 16 != 0 || th % 16 != 0 {
        return Err(Error::invalid(
            "tile size",
            format!("{tw} x {th}: tiles must be positive multiples of 16"),
        ));
    }
    let supported = driver
        .metadata_item("DMD_CREATIONOPTIONLIST", "")
        .unwrap_or_default();
    if !supported.contains(spec.compression.gdal_name()) {
        return Err(Error::invalid(
            "compression",
            format!(
                "this GDAL's GTiff driver does not offer {}",
                spec.compression
            ),
        ));
    }
    let compression = if layout.is_cog() && supported.contains(Compression::Zstd.gdal_name()) {
        Compression::Zstd
    } else {
        spec.compression
    };
    let mut opts = vec![
        "TILED=YES".to_string(),
        format!("BLOCKXSIZE={tw}"),
        format!("BLOCKYSIZE={th}"),
        format!("COMPRESS={}", compression.gdal_name()),
        format!("NUM_THREADS={}", spec.threads.max(1)),
        "BIGTIFF=IF_SAFER".to_string(),
        "INTERLEAVE=BAND".to_string(),
    ];
    if compression != Compression::None && !layout.is_cog() {
        // Predictors make smooth data compress better: floating-point or horizontal.
        let float = matches!(spec.dtype, OutputType::Float32 | OutputType::Float64);
        opts.push(if float { "PREDICTOR=3" } else { "PREDICTOR=2" }.into());
    }
    if compression == Compression::Zstd {
        // GDAL's default level 9 is slow; level 1 gave a file 1.4 % larger in half the
        // time on the sample scene's Float32 NDI.
        opts.push("ZSTD_LEVEL=1".into());
    }
    validated_options(&driver, &opts)
}

/// Starts GDAL's compression threads (`threads` of them) now, on the calling thread, by
/// compressing a few tiny tiles in memory: GDAL starts them only when a first file
/// compresses a tile, and they inherit the CPU affinity of the thread that does (see
/// `crate::runtime::affinity`). Nothing is reported: if this fails, the first real tile
/// starts them instead.
#[cfg(feature = "mpi")]
pub(crate) fn start_encoder_threads(threads: usize) {
    let _quiet = super::QuietGdal::new();
    let Ok(driver) = DriverManager::get_driver_by_name("GTiff") else {
        return;
    };
    let threads = threads.max(1);
    let opts = [
        "TILED=YES".to_string(),
        "BLOCKXSIZE=16".to_string(),
        "BLOCKYSIZE=16".to_string(),
        "COMPRESS=LZW".to_string(),
        format!("NUM_THREADS={threads}"),
    ];
    let opts = RasterCreationOptions::from_iter(opts.iter().map(String::as_str));
    let path = format!("/vsimem/rasterlab-encoders-{}.tif", std::process::id());
    // One tile per thread, so that every thread gets a job.
    let width = 16 * threads;
    if let Ok(ds) = driver.create_with_band_type_with_options::<u8, _>(&path, width, 16, 1, &opts) {
        if let Ok(mut band) = ds.rasterband(1) {
            let mut buf = Buffer::new((width, 16), vec![0u8; width * 16]);
            let _ = band.write((0, 0), (width, 16), &mut buf);
        }
        let _ = ds.close();
    }
    let _ = DriverManager::get_driver_by_name("GTiff").map(|d| d.delete(&path));
}

/// `opts` as a creation option list, refused unless `driver` accepts every one of them
/// (GDAL only warns about bad options and silently writes something else).
fn validated_options(driver: &gdal::Driver, opts: &[String]) -> Result<RasterCreationOptions> {
    let _quiet = super::QuietGdal::new();
    let c_opts: Vec<CString> = opts
        .iter()
        .map(|o| CString::new(o.as_str()).map_err(|_| Error::invalid("creation option", o.clone())))
        .collect::<Result<_>>()?;
    let mut ptrs: Vec<*mut std::ffi::c_char> =
        c_opts.iter().map(|c| c.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    // SAFETY: a NULL-terminated list of valid C strings that outlive the call.
    let ok = unsafe { gdal_sys::GDALValidateCreationOptions(driver.c_driver(), ptrs.as_mut_ptr()) };
    if ok == 0 {
        return Err(Error::invalid(
            "creation options",
            format!(
                "{} (for GDAL's {} driver)",
                opts.join(" "),
                driver.short_name()
            ),
        ));
    }
    let mut list = RasterCreationOptions::new();
    for o in opts {
        list.add_string(o)
            .map_err(Error::gdal("building creation options"))?;
    }
    Ok(list)
}

/// The failures GDAL reports on this thread while the guard lives, kept off stderr.
///
/// GDAL 3.6 reports errors of flushing and closing a dataset only through its error
/// handler (`GDALClose` returns nothing), so the writer listens for them here.
pub(crate) struct GdalErrors {
    log: Box<std::cell::RefCell<Vec<String>>>,
    // The handler stack is per thread: the guard must be dropped where it was made.
    _thread_bound: std::marker::PhantomData<*const ()>,
}

/// Messages kept at most (a failing write can report one error per tile).
const MAX_LOGGED: usize = 8;

unsafe extern "C" fn record_gdal_error(
    class: gdal_sys::CPLErr::Type,
    _number: gdal_sys::CPLErrorNum,
    message: *const std::ffi::c_char,
) {
    if class != gdal_sys::CPLErr::CE_Failure && class != gdal_sys::CPLErr::CE_Fatal {
        return;
    }
    // SAFETY: GDAL calls the handler on the thread that pushed it, with the user data
    // given to CPLPushErrorHandlerEx: the boxed log of a live `GdalErrors` guard.
    let log =
        unsafe { gdal_sys::CPLGetErrorHandlerUserData() } as *const std::cell::RefCell<Vec<String>>;
    if log.is_null() || message.is_null() {
        return;
    }
    // SAFETY: `message` is a NUL-terminated string valid for this call; `log` points to
    // the guard's box, alive until the guard pops this handler. No panic can unwind out
    // of here: try_borrow_mut and to_string_lossy do not panic.
    unsafe {
        let text = std::ffi::CStr::from_ptr(message).to_string_lossy();
        if let Ok(mut log) = (*log).try_borrow_mut()
            && log.len() < MAX_LOGGED
        {
            log.push(text.trim().to_string());
        }
    }
}

impl GdalErrors {
    pub(crate) fn capture() -> GdalErrors {
        let log = Box::new(std::cell::RefCell::new(Vec::new()));
        let data = std::ptr::from_ref(&*log)
            .cast_mut()
            .cast::<std::ffi::c_void>();
        // SAFETY: the handler reads `data` only while pushed; `Drop` pops it on this
        // thread before the box is freed.
        unsafe { gdal_sys::CPLPushErrorHandlerEx(Some(record_gdal_error), data) };
        GdalErrors {
            log,
            _thread_bound: std::marker::PhantomData,
        }
    }

    /// The failures reported so far (and forgets them).
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.borrow_mut())
    }
}

impl Drop for GdalErrors {
    fn drop(&mut self) {
        // SAFETY: pops the handler pushed by `capture` on this same thread.
        unsafe { gdal_sys::CPLPopErrorHandler() };
    }
}

/// A GeoTIFF being written: the file lives under a temporary name in the target folder
/// (see [`output::PendingFile`]) until [`TiffWriter::finish`] has closed it, checked
/// that every tile is on disk, and renamed it; dropping an unfinished writer deletes it.
///
/// Every GDAL write, the flush and the close are checked; a failure is an
/// [`Error::Write`] naming the output and the cause as the operating system words it
/// ("No space left on device", "Disk quota exceeded").
///
/// With [`Layout::Cog`] ([`TiffWriter::create_with_layout`]) the finished tiled file gets
/// overviews and is rewritten once by GDAL's COG driver into a second temporary file,
/// checked the same way (every tile of every band and overview on disk, GDAL's
/// `LAYOUT=COG`) before it is renamed; the first one is removed.
pub struct TiffWriter {
    dataset: Option<Dataset>,
    /// `None` only once committed.
    file: Option<PendingFile>,
    size: (usize, usize),
    bands: usize,
    /// The file's tile size.
    tile: (usize, usize),
    /// True while every window written so far covered whole tiles: each write then
    /// hands its tiles to GDAL's compression at once (see [`TiffWriter::write`]).
    whole_tiles: bool,
    /// The cloud-optimized rewrite to run on finishing, for [`Layout::Cog`].
    cog: Option<cog::CogPlan>,
}

impl TiffWriter {
    /// Creates the temporary file for `path` (checked with [`check_output_path`]).
    pub fn create(path: impl AsRef<Path>, spec: &TiffSpec) -> Result<TiffWriter> {
        TiffWriter::create_with_layout(path, spec, Layout::Tiled)
    }

    /// [`create`](TiffWriter::create), for a file of `layout`. The creation options of
    /// both the tiled file and, for [`Layout::Cog`], the COG driver are checked here,
    /// before anything is written.
    pub fn create_with_layout(
        path: impl AsRef<Path>,
        spec: &TiffSpec,
        layout: Layout,
    ) -> Result<TiffWriter> {
        if spec.bands == 0 {
            return Err(Error::invalid("output", "zero bands"));
        }
        let options = creation_options(spec, layout)?;
        let cog = match layout {
            Layout::Tiled => None,
            Layout::Cog { resampling } => Some(cog::CogPlan::new(spec, resampling)?),
        };
        let file = PendingFile::create(path.as_ref())?;
        let errors = GdalErrors::capture();
        let driver = DriverManager::get_driver_by_name("GTiff")
            .map_err(Error::gdal("loading the GTiff driver"))?;
        let (w, h, n) = (spec.size.0, spec.size.1, spec.bands);
        let tmp = file.path().to_path_buf();
        use OutputType as T;
        let created = match spec.dtype {
            T::Byte => driver.create_with_band_type_with_options::<u8, _>(&tmp, w, h, n, &options),
            T::UInt16 => {
                driver.create_with_band_type_with_options::<u16, _>(&tmp, w, h, n, &options)
            }
            T::Int16 => {
                driver.create_with_band_type_with_options::<i16, _>(&tmp, w, h, n, &options)
            }
            T::Int32 => {
                driver.create_with_band_type_with_options::<i32, _>(&tmp, w, h, n, &options)
            }
            T::Float32 => {
                driver.create_with_band_type_with_options::<f32, _>(&tmp, w, h, n, &options)
            }
            T::Float64 => {
                driver.create_with_band_type_with_options::<f64, _>(&tmp, w, h, n, &options)
            }
        };
        let mut writer = TiffWriter {
            dataset: None,
            file: Some(file),
            size: spec.size,
            bands: spec.bands,
            tile: spec.tile,
            whole_tiles: true,
            cog,
        };
        let mut ds = match created {
            Ok(ds) => ds,
            Err(e) => return Err(writer.failure("creating the file", Some(e), errors.take())),
        };
        let mut setup = || -> std::result::Result<(), gdal::errors::GdalError> {
            ds.set_geo_transform(&spec.geo_transform)?;
            if !spec.crs_wkt.is_empty() {
                ds.set_projection(&spec.crs_wkt)?;
            }
            for b in 1..=spec.bands {
                let mut band = ds.rasterband(b)?;
                band.set_no_data_value(spec.nodata)?;
                if let Some(name) = spec.band_names.get(b - 1) {
                    band.set_description(name)?;
                }
            }
            Ok(())
        };
        let set = setup();
        // From here on the dataset is closed by the writer, whatever happens.
        writer.dataset = Some(ds);
        if let Err(e) = set {
            return Err(writer.failure("writing the header", Some(e), errors.take()));
        }
        Ok(writer)
    }

    /// The error for a failed step; see [`failure`].
    fn failure(
        &self,
        step: &str,
        error: Option<gdal::errors::GdalError>,
        logged: Vec<String>,
    ) -> Error {
        match &self.file {
            Some(file) => failure(file, step, error, logged),
            None => Error::internal(format!("{step} after the output was committed")),
        }
    }

    /// Writes `data` (row-major, `window.len()` values) into 1-based `band`; GDAL
    /// converts to the band's type (rounding and saturating for integers).
    pub fn write(&mut self, band: usize, window: Window, data: Vec<f32>) -> Result<()> {
        if !window.fits(self.size.0, self.size.1) || data.len() != window.len() {
            return Err(Error::invalid(
                "output window",
                format!("{window} with {} values", data.len()),
            ));
        }
        let errors = GdalErrors::capture();
        let ds = self
            .dataset
            .as_ref()
            .ok_or_else(|| Error::internal("write after the output was closed"))?;
        // GDAL compresses a tile only when it leaves the block cache (64 MiB): left there,
        // the last cache-full of tiles was compressed after the last chunk, with nothing
        // else to overlap (0.8-1.3 s of a 3 s save of the 4x4 mosaic). Flushed as written,
        // they go to GDAL's compression threads while the next chunks compute. Only while
        // every window covered whole tiles: a partly written tile flushed now would be
        // decoded and written again by the next window that touches it.
        self.whole_tiles &= self.covers_whole_tiles(window);
        let flush = self.whole_tiles;
        let mut buf = Buffer::new((window.width, window.height), data);
        let written = ds.rasterband(band).and_then(|mut rb| {
            rb.write(
                (window.x as isize, window.y as isize),
                (window.width, window.height),
                &mut buf,
            )?;
            if !flush {
                return Ok(());
            }
            // SAFETY: a valid band handle of the open dataset `ds`.
            let flushed = unsafe { gdal_sys::GDALFlushRasterCache(rb.c_rasterband()) };
            if flushed != gdal_sys::CPLErr::CE_None {
                return Err(super::ffi::last_gdal_error("GDALFlushRasterCache"));
            }
            Ok(())
        });
        let logged = errors.take();
        match written {
            Ok(()) if logged.is_empty() => Ok(()),
            Ok(()) => Err(self.failure(&format!("writing {window}"), None, logged)),
            Err(e) => Err(self.failure(&format!("writing {window}"), Some(e), logged)),
        }
    }

    /// True if `window` starts on a tile corner and ends on one or on the raster's edge.
    fn covers_whole_tiles(&self, window: Window) -> bool {
        let (tw, th) = self.tile;
        let ends = |start: usize, len: usize, tile: usize, size: usize| {
            start % tile == 0 && ((start + len) % tile == 0 || start + len == size)
        };
        tw > 0
            && th > 0
            && ends(window.x, window.width, tw, self.size.0)
            && ends(window.y, window.height, th, self.size.1)
    }

    /// Flushes and closes the file (checking every error GDAL reports), checks on its
    /// own that every tile of every band lies within the file on disk, and renames it
    /// to its final name. For [`Layout::Cog`] the overviews are built and the
    /// cloud-optimized copy written and checked in between.
    pub fn finish(self) -> Result<PathBuf> {
        self.finish_unless(|| None)
    }

    /// [`finish`](TiffWriter::finish), but gives up with [`Error::Cancelled`] (removing
    /// the file) when `cancelled` says so after the file is closed and checked, the last
    /// moment before the rename. A [`Layout::Cog`] rewrite also asks `cancelled` while it
    /// runs (on this thread, through GDAL's progress callback) and stops early.
    pub fn finish_unless(mut self, cancelled: impl Fn() -> Option<String>) -> Result<PathBuf> {
        let errors = GdalErrors::capture();
        if let Some(ds) = self.dataset.take() {
            // SAFETY: a valid dataset handle, owned by `ds` until the close below.
            unsafe { gdal_sys::GDALFlushCache(ds.c_dataset()) };
            let closed = ds.close();
            let logged = errors.take();
            match closed {
                Ok(()) if logged.is_empty() => {}
                Ok(()) => return Err(self.failure("closing the file", None, logged)),
                Err(e) => return Err(self.failure("closing the file", Some(e), logged)),
            }
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::internal("output committed twice"))?;
        if let Err(reason) = verify_tiles(file.path(), self.size, self.bands) {
            let step = format!("checking the written file ({reason})");
            return Err(failure(&file, &step, None, vec![]));
        }
        let file = match self.cog.take() {
            // The tiled file is removed when `file` is dropped here.
            Some(plan) => plan.convert(&file, (self.size, self.bands), &cancelled)?,
            None => file,
        };
        drop(errors);
        if let Some(reason) = cancelled() {
            return Err(Error::Cancelled { reason });
        }
        file.commit()
    }
}

/// Operating system errors that GDAL's messages may quote (`_tiffWriteProc:No space left
/// on device`).
const OS_CAUSES: [&str; 5] = [
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Read-only file system",
    "Input/output error",
];

/// The [`Error::Write`] for a failed step of writing `file`: the cause as the operating
/// system reports it when it can be found (disk full, quota), else GDAL's messages.
fn failure(
    file: &PendingFile,
    step: &str,
    error: Option<gdal::errors::GdalError>,
    logged: Vec<String>,
) -> Error {
    let mut gdal: Vec<String> = Vec::new();
    let error = error.map(|e| crate::error::gdal_message(&e));
    // A failing flush repeats the same messages for every tile: keep the first two
    // distinct ones.
    for msg in logged.into_iter().chain(error) {
        if gdal.len() < 2 && !gdal.contains(&msg) {
            gdal.push(msg);
        }
    }
    // The folder may have room again by now (GDAL removes a copy it could not finish):
    // then the cause as GDAL heard it from the operating system, if it says.
    let os = file.diagnose().or_else(|| {
        OS_CAUSES
            .iter()
            .find(|cause| gdal.iter().any(|m| m.contains(*cause)))
            .map(|cause| cause.to_string())
    });
    let cause = match (os, gdal.is_empty()) {
        (Some(os), true) => format!("{step} failed: {os}"),
        (Some(os), false) => format!("{step} failed: {os} (GDAL: {})", gdal.join("; ")),
        (None, false) => format!("{step} failed: {}", gdal.join("; ")),
        (None, true) => format!("{step} failed"),
    };
    Error::Write {
        path: file.final_path().to_path_buf(),
        cause,
    }
}

/// Checks, independently of what GDAL reported while writing, that the closed TIFF at
/// `path` opens with the expected shape and that every tile of every band, and of every
/// overview of every band, has a place in the file that lies within its size on disk. A
/// write that failed part-way (a full disk, a quota) leaves tiles without an offset or
/// pointing past the end. Returns the number of overviews of the first band.
fn verify_tiles(
    path: &Path,
    size: (usize, usize),
    bands: usize,
) -> std::result::Result<usize, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read its size: {e}"))?
        .len();
    let ds = Dataset::open(path).map_err(|e| crate::error::gdal_message(&e))?;
    if ds.raster_size() != size || ds.raster_count() != bands {
        return Err(format!(
            "it has {} x {} pixels and {} bands",
            ds.raster_size().0,
            ds.raster_size().1,
            ds.raster_count()
        ));
    }
    let mut overviews = 0;
    for b in 1..=bands {
        let band = ds
            .rasterband(b)
            .map_err(|e| crate::error::gdal_message(&e))?;
        verify_band_tiles(&band, len, &format!("band {b}"))?;
        let count = band.overview_count().unwrap_or(0).max(0) as usize;
        if b == 1 {
            overviews = count;
        } else if count != overviews {
            return Err(format!(
                "band {b} has {count} overviews, band 1 has {overviews}"
            ));
        }
        for o in 0..count {
            let ov = band
                .overview(o)
                .map_err(|e| crate::error::gdal_message(&e))?;
            verify_band_tiles(&ov, len, &format!("overview {} of band {b}", o + 1))?;
        }
    }
    Ok(overviews)
}

/// Every tile of `band` has an offset and a size within the `len`-byte file.
fn verify_band_tiles(
    band: &gdal::raster::RasterBand,
    len: u64,
    what: &str,
) -> std::result::Result<(), String> {
    let (w, h) = band.size();
    let (bw, bh) = band.block_size();
    let (nx, ny) = (w.div_ceil(bw.max(1)), h.div_ceil(bh.max(1)));
    for by in 0..ny {
        for bx in 0..nx {
            let item = |key: &str| {
                band.metadata_item(&format!("{key}_{bx}_{by}"), "TIFF")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            match (item("BLOCK_OFFSET"), item("BLOCK_SIZE")) {
                (Some(offset), Some(bytes))
                    if offset > 0 && bytes > 0 && offset.saturating_add(bytes) <= len => {}
                _ => {
                    return Err(format!(
                        "tile ({bx}, {by}) of {what} is missing or cut off in the {len}-byte file"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Drop for TiffWriter {
    fn drop(&mut self) {
        if let Some(ds) = self.dataset.take() {
            // Closing flushes whatever is left: errors are moot now, keep them quiet.
            let _quiet = super::QuietGdal::new();
            let _ = ds.close();
        }
        // `self.file` removes the temporary file and any side-car when dropped.
    }
}
