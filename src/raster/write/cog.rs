//! Cloud-Optimized GeoTIFF output.
//!
//! GDAL 3.6's COG driver can only copy a finished dataset (`CreateCopy`), so a COG is
//! made in three steps, each checked like every rasterlab write:
//!
//! 1. the tiled GeoTIFF is written, closed and checked as usual (temporary file A);
//! 2. A is reopened and gets internal overviews (`GDALBuildOverviews`, exactly what
//!    `gdaladdo -r METHOD` computes), halving until the smallest level fits in one tile;
//! 3. the COG driver copies A, with those overviews (`OVERVIEWS=FORCE_USE_EXISTING`),
//!    into a second temporary file B next to the output; B is closed, checked (every tile
//!    of every band and overview within the file, GDAL reports `LAYOUT=COG`, the
//!    overviews are all there) and renamed; A is removed.
//!
//! Building the overviews in A rather than letting the COG driver make them keeps GDAL
//! from writing its own side file (`B.ovr.tmp`, which a killed process would leave
//! behind under a name rasterlab does not recognise) and gives the overview sizes
//! `gdaladdo` gives (the COG driver rounds odd sizes down).

use std::ffi::{CString, c_char, c_int, c_void};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use gdal::{Dataset, DatasetOptions, DriverManager, GdalOpenFlags, Metadata};

use super::{Compression, GdalErrors, TiffSpec, failure, validated_options, verify_tiles};
use crate::error::{Error, Result};
use crate::raster::output::PendingFile;

/// How the overviews of a Cloud-Optimized GeoTIFF are computed from the pixels of the
/// level below (GDAL's resampling methods of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverviewResampling {
    /// The pixel nearest the centre: keeps the values exactly (labels, classes).
    Nearest,
    /// Mean of the valid pixels (nodata ignored): the default for continuous data.
    #[default]
    Average,
    /// Bilinear interpolation.
    Bilinear,
    /// Cubic convolution.
    Cubic,
    /// Most frequent valid value: the default for label maps.
    Mode,
}

impl OverviewResampling {
    /// The default for continuous data (reflectances, indices, statistics).
    pub const CONTINUOUS: OverviewResampling = OverviewResampling::Average;
    /// The default for label maps and other classes: every overview pixel is one of
    /// the labels under it.
    pub const LABELS: OverviewResampling = OverviewResampling::Mode;

    /// Every method, in the order error messages list them.
    pub const ALL: [OverviewResampling; 5] = [
        OverviewResampling::Nearest,
        OverviewResampling::Average,
        OverviewResampling::Bilinear,
        OverviewResampling::Cubic,
        OverviewResampling::Mode,
    ];

    /// The name GDAL knows it by (`gdaladdo -r`).
    pub fn gdal_name(self) -> &'static str {
        match self {
            OverviewResampling::Nearest => "NEAREST",
            OverviewResampling::Average => "AVERAGE",
            OverviewResampling::Bilinear => "BILINEAR",
            OverviewResampling::Cubic => "CUBIC",
            OverviewResampling::Mode => "MODE",
        }
    }

    /// The lower-case name the CLI takes (`--overview-resampling`).
    pub fn name(self) -> &'static str {
        match self {
            OverviewResampling::Nearest => "nearest",
            OverviewResampling::Average => "average",
            OverviewResampling::Bilinear => "bilinear",
            OverviewResampling::Cubic => "cubic",
            OverviewResampling::Mode => "mode",
        }
    }
}

impl std::str::FromStr for OverviewResampling {
    type Err = Error;

    /// ```
    /// use rasterlab::prelude::*;
    /// assert_eq!("Mode".parse::<OverviewResampling>()?, OverviewResampling::Mode);
    /// let err = "lanczos".parse::<OverviewResampling>().unwrap_err();
    /// assert!(err.to_string().contains("nearest, average, bilinear, cubic, mode"), "{err}");
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        OverviewResampling::ALL
            .into_iter()
            .find(|r| r.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = OverviewResampling::ALL.iter().map(|r| r.name()).collect();
                Error::invalid(
                    "overview resampling",
                    format!("{s:?}; choose one of {}", names.join(", ")),
                )
            })
    }
}

impl fmt::Display for OverviewResampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The layout of a GeoTIFF output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layout {
    /// A tiled GeoTIFF without overviews (the default): written once, fastest.
    #[default]
    Tiled,
    /// A Cloud-Optimized GeoTIFF: tiled, with overviews computed by `resampling`, laid
    /// out so that a reader over HTTP fetches the header and any tile of any level with
    /// one range request each. Costs one more pass over the file (see the README).
    Cog {
        /// How the overviews are computed.
        resampling: OverviewResampling,
    },
}

impl Layout {
    /// A COG with overviews computed by `resampling`.
    pub fn cog(resampling: OverviewResampling) -> Layout {
        Layout::Cog { resampling }
    }

    /// True for [`Layout::Cog`].
    pub fn is_cog(self) -> bool {
        matches!(self, Layout::Cog { .. })
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::Tiled => f.write_str("tiled"),
            Layout::Cog { resampling } => {
                write!(f, "cloud-optimized, {resampling} overviews")
            }
        }
    }
}

/// The COG rewrite of one output, its options checked when the writer is created.
#[derive(Debug)]
pub(super) struct CogPlan {
    resampling: OverviewResampling,
    /// COG driver creation options (validated).
    options: Vec<String>,
    /// Overview factors: 2, 4, ... until the smallest level fits in one tile.
    factors: Vec<c_int>,
}

impl CogPlan {
    /// Checks that this GDAL has the COG driver and that it accepts the options `spec`
    /// asks for.
    pub(super) fn new(spec: &TiffSpec, resampling: OverviewResampling) -> Result<CogPlan> {
        let driver = {
            let _quiet = crate::raster::QuietGdal::new();
            DriverManager::get_driver_by_name("COG").map_err(|_| {
                Error::invalid(
                    "layout",
                    "this GDAL has no COG driver (it needs GDAL 3.1 or later)",
                )
            })?
        };
        // Square tiles of at least 128 pixels (the driver's minimum); the tiled file's
        // tile size when it is square and large enough.
        let block = spec.tile.0.max(spec.tile.1).max(128);
        let mut options = vec![
            format!("COMPRESS={}", spec.compression.gdal_name()),
            format!("BLOCKSIZE={block}"),
            format!("NUM_THREADS={}", spec.threads.max(1)),
            "BIGTIFF=IF_SAFER".to_string(),
            // The overviews are built in the tiled file, never by the COG driver.
            "OVERVIEWS=FORCE_USE_EXISTING".to_string(),
        ];
        if spec.compression != Compression::None {
            // As for the tiled file: floating-point predictor for floats, horizontal
            // differencing for integers (the driver's YES picks by type).
            options.push("PREDICTOR=YES".into());
        }
        if spec.compression == Compression::Zstd {
            // The level the tiled file uses (see `creation_options`).
            options.push("LEVEL=1".into());
        }
        validated_options(&driver, &options)?;
        Ok(CogPlan {
            resampling,
            options,
            factors: overview_factors(spec.size, block),
        })
    }

    /// Builds the overviews in the closed, checked tiled file `tiled`, writes its COG copy
    /// into a new temporary file for the same output, checks that copy and returns it,
    /// ready to be committed. `shape` is the output's size and band count.
    pub(super) fn convert(
        &self,
        tiled: &PendingFile,
        shape: ((usize, usize), usize),
        cancelled: &dyn Fn() -> Option<String>,
    ) -> Result<PendingFile> {
        let watch = Watch::new(cancelled);
        watch.check()?;
        self.build_overviews(tiled, shape, &watch)?;
        let cog = PendingFile::create(tiled.final_path())?;
        self.copy(tiled, &cog, &watch)?;
        let (size, bands) = shape;
        let checked = verify_tiles(cog.path(), size, bands).and_then(|overviews| {
            if overviews != self.factors.len() {
                return Err(format!(
                    "it has {overviews} overview levels, {} were built",
                    self.factors.len()
                ));
            }
            let ds = Dataset::open(cog.path()).map_err(|e| crate::error::gdal_message(&e))?;
            match ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref() {
                Some("COG") => Ok(()),
                other => Err(format!("GDAL reports layout {other:?}, not COG")),
            }
        });
        if let Err(reason) = checked {
            let step = format!("checking the cloud-optimized file ({reason})");
            return Err(failure(&cog, &step, None, vec![]));
        }
        Ok(cog)
    }

    /// Step 2: internal overviews in the tiled file.
    fn build_overviews(
        &self,
        tiled: &PendingFile,
        shape: ((usize, usize), usize),
        watch: &Watch<'_>,
    ) -> Result<()> {
        if self.factors.is_empty() {
            return Ok(());
        }
        let step = format!("building {} overviews", self.resampling);
        let errors = GdalErrors::capture();
        let opened = Dataset::open_ex(
            tiled.path(),
            DatasetOptions {
                open_flags: GdalOpenFlags::GDAL_OF_UPDATE | GdalOpenFlags::GDAL_OF_RASTER,
                allowed_drivers: Some(&["GTiff"]),
                ..DatasetOptions::default()
            },
        );
        let ds = match opened {
            Ok(ds) => ds,
            Err(e) => return Err(failure(tiled, &step, Some(e), errors.take())),
        };
        let method = CString::new(self.resampling.gdal_name())
            .map_err(|_| Error::internal("resampling name with a NUL"))?;
        // Computed on this thread (GDAL_NUM_THREADS is left unset), so that every error
        // reaches this thread's handler; measured on the sample scene, two threads
        // gained nothing.
        // SAFETY: a valid dataset open for update; `factors` holds `len` ints; no band
        // list (all bands); the progress callback gets a pointer to `watch`, which
        // outlives the call.
        let built = unsafe {
            gdal_sys::GDALBuildOverviews(
                ds.c_dataset(),
                method.as_ptr(),
                self.factors.len() as c_int,
                self.factors.as_ptr(),
                0,
                std::ptr::null(),
                Some(keep_going),
                watch.as_arg(),
            )
        };
        let mut logged = errors.take();
        // SAFETY: a valid dataset handle, owned by `ds` until the close below.
        unsafe { gdal_sys::GDALFlushCache(ds.c_dataset()) };
        let closed = ds.close();
        logged.extend(errors.take());
        watch.check()?;
        match (built, closed) {
            (gdal_sys::CPLErr::CE_None, Ok(())) if logged.is_empty() => {}
            (_, Err(e)) => return Err(failure(tiled, &step, Some(e), logged)),
            _ => return Err(failure(tiled, &step, None, logged)),
        }
        // Checked on their own too: the COG driver would read a missing overview tile
        // as an empty (nodata) one, without a word.
        let checked = verify_tiles(tiled.path(), shape.0, shape.1).and_then(|n| {
            if n == self.factors.len() {
                Ok(())
            } else {
                Err(format!(
                    "it has {n} overview levels, {} were asked for",
                    self.factors.len()
                ))
            }
        });
        checked.map_err(|reason| failure(tiled, &format!("{step} ({reason})"), None, vec![]))
    }

    /// Step 3: the COG driver copies the tiled file into `cog`.
    fn copy(&self, tiled: &PendingFile, cog: &PendingFile, watch: &Watch<'_>) -> Result<()> {
        let step = "writing the cloud-optimized file";
        let errors = GdalErrors::capture();
        let src = match Dataset::open(tiled.path()) {
            Ok(ds) => ds,
            Err(e) => return Err(failure(tiled, step, Some(e), errors.take())),
        };
        let driver = DriverManager::get_driver_by_name("COG")
            .map_err(Error::gdal("loading the COG driver"))?;
        let options = validated_options(&driver, &self.options)?;
        let target = CString::new(cog.path().as_os_str().as_encoded_bytes())
            .map_err(|_| Error::invalid("output path", cog.path().display().to_string()))?;
        // SAFETY: valid driver and source handles, a NUL-terminated path and option list
        // that outlive the call; the progress callback gets a pointer to `watch`, which
        // outlives the call. A non-null result is a dataset we own.
        let copied = unsafe {
            gdal_sys::GDALCreateCopy(
                driver.c_driver(),
                target.as_ptr(),
                src.c_dataset(),
                0,
                options.as_ptr(),
                Some(keep_going),
                watch.as_arg(),
            )
        };
        let mut logged = errors.take();
        drop(src);
        if copied.is_null() {
            watch.check()?;
            return Err(failure(cog, step, None, logged));
        }
        // SAFETY: a valid dataset handle returned by GDALCreateCopy, owned from here on.
        let ds = unsafe { Dataset::from_c_dataset(copied) };
        // SAFETY: a valid dataset handle, owned by `ds` until the close below.
        unsafe { gdal_sys::GDALFlushCache(ds.c_dataset()) };
        let closed = ds.close();
        logged.extend(errors.take());
        watch.check()?;
        match closed {
            Ok(()) if logged.is_empty() => Ok(()),
            Ok(()) => Err(failure(cog, step, None, logged)),
            Err(e) => Err(failure(cog, step, Some(e), logged)),
        }
    }
}

/// Overview factors 2, 4, 8 ... until the smallest level of a `size` raster fits in one
/// `block` x `block` tile (as the COG driver decides when it builds them itself).
fn overview_factors(size: (usize, usize), block: usize) -> Vec<c_int> {
    let mut factors = Vec::new();
    let mut f: usize = 1;
    while (size.0.div_ceil(f) > block || size.1.div_ceil(f) > block) && f < (1 << 30) {
        f *= 2;
        factors.push(f as c_int);
    }
    factors
}

/// What GDAL's progress callback consults: the caller's `cancelled`, asked only on the
/// thread that started the step (the closure need not be `Sync`).
struct Watch<'a> {
    cancelled: &'a dyn Fn() -> Option<String>,
    thread: ThreadId,
    reason: std::sync::Mutex<Option<String>>,
    stopped: AtomicBool,
}

impl<'a> Watch<'a> {
    fn new(cancelled: &'a dyn Fn() -> Option<String>) -> Watch<'a> {
        Watch {
            cancelled,
            thread: std::thread::current().id(),
            reason: std::sync::Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    fn as_arg(&self) -> *mut c_void {
        std::ptr::from_ref(self).cast_mut().cast()
    }

    /// `Err(Cancelled)` once `cancelled` has said so (now or during a GDAL step).
    fn check(&self) -> Result<()> {
        let earlier = self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match earlier.or_else(|| (self.cancelled)()) {
            Some(reason) => Err(Error::Cancelled { reason }),
            None => Ok(()),
        }
    }
}

/// GDAL's progress callback: 0 (stop) once the watched run is cancelled.
unsafe extern "C" fn keep_going(_done: f64, _message: *const c_char, arg: *mut c_void) -> c_int {
    if arg.is_null() {
        return 1;
    }
    // SAFETY: `arg` is the `Watch` given with this callback, alive for the whole GDAL
    // call that invokes it.
    let watch = unsafe { &*arg.cast::<Watch<'_>>() };
    if std::thread::current().id() != watch.thread {
        // Only the starting thread may call the closure; another thread just goes on
        // (the next call on the starting thread stops the step).
        return c_int::from(!watch.stopped.load(Ordering::Relaxed));
    }
    let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (watch.cancelled)()));
    match asked {
        Ok(None) => 1,
        Ok(Some(reason)) => {
            *watch
                .reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason);
            watch.stopped.store(true, Ordering::Relaxed);
            0
        }
        // A panicking closure: stop; the step fails with GDAL's "User terminated".
        Err(_) => {
            watch.stopped.store(true, Ordering::Relaxed);
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_halve_until_one_tile() {
        assert_eq!(overview_factors((2041, 1860), 512), vec![2, 4]);
        assert_eq!(overview_factors((512, 512), 512), Vec::<c_int>::new());
        assert_eq!(overview_factors((513, 10), 512), vec![2]);
        assert_eq!(overview_factors((8164, 7440), 256), vec![2, 4, 8, 16, 32]);
    }

    #[test]
    fn names_round_trip() {
        for r in OverviewResampling::ALL {
            assert_eq!(r.name().parse::<OverviewResampling>().unwrap(), r);
            assert_eq!(r.gdal_name().parse::<OverviewResampling>().unwrap(), r);
        }
        assert_eq!(
            OverviewResampling::default(),
            OverviewResampling::CONTINUOUS
        );
    }
}
