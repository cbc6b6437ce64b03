//! Stacks of files on different grids, aligned on open: a reference grid ([`Align`]), a
//! resampling method ([`Resampling`]) and, per worker, GDAL warped VRTs that warp each
//! member onto the reference grid block by block when a chunk is read.
//!
//! Nothing is warped when a stack is opened: the members whose CRS, resolution or extent
//! differ from the reference grid are only recorded ([`Alignment::warped`]). Every worker
//! of a computation opens its own handle of each such member and wraps it in a warped VRT
//! built by GDAL's `gdalwarp` library (`GDALWarp` with `-of VRT`), so a chunk costs the
//! warp of the blocks it covers, never a whole file in memory. The transformation is
//! computed exactly for every pixel (`-et 0`): GDAL's default approximation interpolates
//! along each block's rows, so results would depend on where blocks and chunks are cut.

use std::ffi::{CString, c_char};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use gdal::Dataset;
use gdal::spatial_ref::SpatialRef;
use serde::{Deserialize, Serialize};

use super::{QuietGdal, Raster, Stack, open_dataset, same_crs};
use crate::core::float::{same_f64, same_opt_f64};
use crate::core::window::Window;
use crate::error::{Error, Result};

/// How values are resampled when a member of a stack is warped onto the reference grid
/// (GDAL's `gdalwarp -r`).
///
/// ```
/// use rasterlab::raster::align::Resampling;
/// assert_eq!("Bilinear".parse::<Resampling>()?, Resampling::Bilinear);
/// assert_eq!(Resampling::Mode.to_string(), "mode");
/// let err = "lanczos".parse::<Resampling>().unwrap_err();
/// assert!(err.to_string().contains("nearest, bilinear, cubic, average, mode"), "{err}");
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Resampling {
    /// The nearest source pixel (the default; the only choice for labels and classes).
    #[default]
    Nearest,
    /// Bilinear interpolation of the 2 x 2 nearest source pixels.
    Bilinear,
    /// Cubic convolution over 4 x 4 source pixels.
    Cubic,
    /// The mean of the source pixels a target pixel covers (for coarser targets).
    Average,
    /// The most frequent source value a target pixel covers (labels at coarser targets).
    Mode,
}

impl Resampling {
    /// Every method, in the order the CLI lists them.
    pub const ALL: [Resampling; 5] = [
        Resampling::Nearest,
        Resampling::Bilinear,
        Resampling::Cubic,
        Resampling::Average,
        Resampling::Mode,
    ];

    /// The lower-case name (`--resampling`, `gdalwarp -r`).
    pub fn name(self) -> &'static str {
        match self {
            Resampling::Nearest => "nearest",
            Resampling::Bilinear => "bilinear",
            Resampling::Cubic => "cubic",
            Resampling::Average => "average",
            Resampling::Mode => "mode",
        }
    }
}

impl FromStr for Resampling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Resampling::ALL
            .into_iter()
            .find(|r| r.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Resampling::ALL.iter().map(|r| r.name()).collect();
                Error::invalid(
                    "resampling",
                    format!("{s:?}; choose one of {}", names.join(", ")),
                )
            })
    }
}

impl fmt::Display for Resampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the reference grid of an aligned stack comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Reference {
    /// The grid of the first file given (the default).
    First,
    /// The grid of another raster (`--align-to FILE`), which need not be a member.
    Like(PathBuf),
    /// A grid described by CRS, resolution and bounds; each left out comes from the
    /// first file: its CRS, and GDAL's choice (as `gdalwarp` makes it without
    /// `-tr` / `-te`) of the resolution and extent that cover it in that CRS.
    Grid {
        /// Any CRS GDAL understands: `EPSG:32622`, a PROJ string, WKT.
        crs: Option<String>,
        /// Pixel size `(x, y)` in CRS units, both positive.
        res: Option<(f64, f64)>,
        /// `(xmin, ymin, xmax, ymax)` in the CRS.
        bounds: Option<(f64, f64, f64, f64)>,
    },
}

impl PartialEq for Reference {
    fn eq(&self, other: &Reference) -> bool {
        let pair = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
            (Some(a), Some(b)) => same_f64(a.0, b.0) && same_f64(a.1, b.1),
            (a, b) => a.is_none() && b.is_none(),
        };
        match (self, other) {
            (Reference::First, Reference::First) => true,
            (Reference::Like(a), Reference::Like(b)) => a == b,
            (
                Reference::Grid {
                    crs: c1,
                    res: r1,
                    bounds: b1,
                },
                Reference::Grid {
                    crs: c2,
                    res: r2,
                    bounds: b2,
                },
            ) => {
                c1 == c2
                    && pair(*r1, *r2)
                    && pair(b1.map(|b| (b.0, b.1)), b2.map(|b| (b.0, b.1)))
                    && pair(b1.map(|b| (b.2, b.3)), b2.map(|b| (b.2, b.3)))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::First => f.write_str("the first file's grid"),
            Reference::Like(p) => write!(f, "the grid of {}", p.display()),
            Reference::Grid { crs, res, bounds } => {
                let mut parts = Vec::new();
                if let Some(c) = crs {
                    parts.push(format!("crs {c}"));
                }
                if let Some((x, y)) = res {
                    parts.push(format!("res {x} x {y}"));
                }
                if let Some((a, b, c, d)) = bounds {
                    parts.push(format!("bounds ({a}, {b}) - ({c}, {d})"));
                }
                if parts.is_empty() {
                    f.write_str("the first file's grid")
                } else {
                    write!(f, "{} (the rest from the first file)", parts.join(", "))
                }
            }
        }
    }
}

/// How to align a stack whose members sit on different grids: the reference grid and the
/// resampling method. Setters cannot fail; [`Align::check`] (called when a stack opens)
/// reports the first argument that cannot work.
///
/// ```
/// use rasterlab::prelude::*;
/// let dir = "data/LC08_L1TP_224078_20200518_20200518_01_RT";
/// let align = Align::first().resampling(Resampling::Bilinear);
/// let r = Raster::open_stack_aligned(
///     [format!("{dir}_B3.TIF"), format!("{dir}_B4.TIF")],
///     Stack::Band,
///     &align,
/// )?;
/// // Both files share one grid, so nothing is warped.
/// assert!(r.alignment().is_some_and(|a| a.warped().is_empty()));
///
/// // A grid of 60 m pixels in the first file's CRS and extent.
/// let coarse = Align::grid().res(60.0).resampling(Resampling::Average);
/// let r = Raster::open_stack_aligned([format!("{dir}_B4.TIF")], Stack::Band, &coarse)?;
/// assert_eq!(r.size(), (1021, 930));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Align {
    reference: Reference,
    resampling: Resampling,
}

impl Align {
    /// Onto the first file's grid.
    pub fn first() -> Align {
        Align {
            reference: Reference::First,
            resampling: Resampling::default(),
        }
    }

    /// Onto the grid of another raster (CRS, pixel size, extent and size).
    pub fn like(path: impl AsRef<Path>) -> Align {
        Align {
            reference: Reference::Like(path.as_ref().to_path_buf()),
            ..Align::first()
        }
    }

    /// Onto a grid set by [`Align::crs`], [`Align::res`] and [`Align::bounds`]; what is
    /// not set comes from the first file (see [`Reference::Grid`]).
    pub fn grid() -> Align {
        Align {
            reference: Reference::Grid {
                crs: None,
                res: None,
                bounds: None,
            },
            ..Align::first()
        }
    }

    /// Edits the grid description, making the reference a [`Reference::Grid`] first.
    fn with_grid(mut self, edit: impl FnOnce(&mut GridParts<'_>)) -> Align {
        if !matches!(self.reference, Reference::Grid { .. }) {
            self.reference = Reference::Grid {
                crs: None,
                res: None,
                bounds: None,
            };
        }
        if let Reference::Grid { crs, res, bounds } = &mut self.reference {
            edit(&mut GridParts { crs, res, bounds });
        }
        self
    }

    /// The CRS of the grid (`EPSG:32622`, a PROJ string, WKT). Makes the reference a
    /// [`Reference::Grid`].
    pub fn crs(self, crs: impl Into<String>) -> Align {
        let crs = crs.into();
        self.with_grid(|g| *g.crs = Some(crs))
    }

    /// Square pixels of `res` CRS units. Makes the reference a [`Reference::Grid`].
    pub fn res(self, res: f64) -> Align {
        self.res_xy(res, res)
    }

    /// Pixels of `x` by `y` CRS units (both positive).
    pub fn res_xy(self, x: f64, y: f64) -> Align {
        self.with_grid(|g| *g.res = Some((x, y)))
    }

    /// The grid's extent `(xmin, ymin, xmax, ymax)` in its CRS.
    pub fn bounds(self, xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> Align {
        self.with_grid(|g| *g.bounds = Some((xmin, ymin, xmax, ymax)))
    }

    /// The resampling method (default [`Resampling::Nearest`]).
    pub fn resampling(mut self, resampling: Resampling) -> Align {
        self.resampling = resampling;
        self
    }

    /// The reference grid's description.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The first argument that cannot work, as [`Error::Invalid`] naming it: an unknown
    /// CRS, a resolution that is not a positive finite number, empty or non-finite
    /// bounds.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// assert!(Align::grid().crs("EPSG:32622").res(60.0).check().is_ok());
    /// let e = Align::grid().res(0.0).check().unwrap_err();
    /// assert!(e.to_string().contains("resolution"), "{e}");
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn check(&self) -> Result<()> {
        let Reference::Grid { crs, res, bounds } = &self.reference else {
            return Ok(());
        };
        if let Some(c) = crs {
            crs_wkt(c)?;
        }
        if let Some((x, y)) = *res
            && !(x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0)
        {
            return Err(Error::invalid(
                "resolution",
                format!("{x} x {y} (allowed: positive finite numbers)"),
            ));
        }
        if let Some((xmin, ymin, xmax, ymax)) = *bounds {
            let finite = [xmin, ymin, xmax, ymax].iter().all(|v| v.is_finite());
            if !(finite && xmin < xmax && ymin < ymax) {
                return Err(Error::invalid(
                    "bounds",
                    format!(
                        "({xmin}, {ymin}, {xmax}, {ymax}) is empty or not finite (allowed: xmin < xmax, ymin < ymax)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The grid itself, from the first file (or the raster given).
    pub(crate) fn resolve(&self, first: &Path) -> Result<Target> {
        self.check()?;
        let grid = match &self.reference {
            Reference::First => GridOf::raster(&Raster::open(first)?),
            Reference::Like(path) => GridOf::raster(&Raster::open(path)?),
            Reference::Grid {
                crs: None,
                res: None,
                bounds: None,
            } => GridOf::raster(&Raster::open(first)?),
            Reference::Grid { crs, res, bounds } => {
                // GDAL decides what gdalwarp would for the parts left out: warp the first
                // file into a VRT with only the options given and read back its grid.
                let mut args: Vec<String> = vec!["-of".into(), "VRT".into()];
                if let Some(c) = crs {
                    args.extend(["-t_srs".into(), crs_wkt(c)?]);
                }
                if let Some((x, y)) = res {
                    args.extend(["-tr".into(), num(*x), num(*y)]);
                }
                if let Some((a, b, c, d)) = bounds {
                    args.extend([num(*a), num(*b), num(*c), num(*d)]);
                    let at = args.len() - 4;
                    args.insert(at, "-te".into());
                }
                let source = open_dataset(first)?;
                let vrt = gdalwarp_vrt(source, first, &args)?;
                let (width, height) = vrt.raster_size();
                let geo_transform = vrt.geo_transform().map_err(Error::gdal(format!(
                    "reading the grid of {} warped",
                    first.display()
                )))?;
                let crs_wkt = vrt.projection();
                GridOf {
                    epsg: super::epsg_of(&crs_wkt),
                    crs_wkt,
                    geo_transform,
                    width,
                    height,
                }
            }
        };
        Ok(Target {
            grid,
            reference: self.reference.clone(),
            resampling: self.resampling,
        })
    }
}

/// The parts of a [`Reference::Grid`] being edited.
struct GridParts<'a> {
    crs: &'a mut Option<String>,
    res: &'a mut Option<(f64, f64)>,
    bounds: &'a mut Option<(f64, f64, f64, f64)>,
}

/// A grid: CRS, geotransform and size.
#[derive(Debug, Clone)]
pub(crate) struct GridOf {
    crs_wkt: String,
    epsg: Option<u32>,
    geo_transform: [f64; 6],
    width: usize,
    height: usize,
}

impl GridOf {
    fn raster(r: &Raster) -> GridOf {
        GridOf {
            crs_wkt: r.crs_wkt.clone(),
            epsg: r.epsg,
            geo_transform: r.geo_transform,
            width: r.width,
            height: r.height,
        }
    }

    fn matches(&self, r: &Raster) -> bool {
        (r.width, r.height) == (self.width, self.height)
            && r.geo_transform
                .iter()
                .zip(self.geo_transform)
                .all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0))
            && same_crs(&r.crs_wkt, &self.crs_wkt)
    }
}

/// A resolved reference grid, used while a stack is opened.
pub(crate) struct Target {
    grid: GridOf,
    reference: Reference,
    resampling: Resampling,
}

impl Target {
    /// Puts `part` (a freshly opened file) on the reference grid; true when it must be
    /// warped (its grid differs).
    pub(crate) fn adopt(&self, part: &mut Raster) -> bool {
        if self.grid.matches(part) {
            return false;
        }
        let g = &self.grid;
        part.crs_wkt = g.crs_wkt.clone();
        part.epsg = g.epsg;
        part.geo_transform = g.geo_transform;
        part.width = g.width;
        part.height = g.height;
        part.view = Window::new(0, 0, g.width, g.height);
        let block = warp_block(g.width, g.height);
        for band in &mut part.bands {
            band.block = block;
        }
        true
    }

    /// What the stack records: the reference, the method and the warped files.
    pub(crate) fn alignment(&self, warped: Vec<PathBuf>) -> Alignment {
        Alignment {
            reference: self.reference.clone(),
            resampling: self.resampling,
            warped,
        }
    }
}

/// The blocks a warped VRT computes at a time: GDAL 3.6's fixed 512 x 128 (a creation
/// option cannot change them).
fn warp_block(width: usize, height: usize) -> (usize, usize) {
    (width.min(512), height.min(128))
}

/// The block automatic chunks align to: the first band's, and for a raster with warped
/// files also whole warp blocks (each worker warps the blocks of its chunks on its own
/// handle, so a block shared by two chunks may be warped twice: W8 of `make bench` took
/// 0.13 s with 256 x 256 chunks and 0.08 s with 512 x 256).
pub(crate) fn chunk_block(r: &Raster) -> (usize, usize) {
    let own = r.block_size();
    if r.alignment.as_ref().is_none_or(|a| a.warped.is_empty()) {
        return own;
    }
    let warp = warp_block(r.width, r.height);
    let lcm = |a: usize, b: usize| {
        let (mut x, mut y) = (a.max(1), b.max(1));
        while y != 0 {
            (x, y) = (y, x % y);
        }
        a.max(1) / x * b.max(1)
    };
    let both = (lcm(own.0, warp.0), lcm(own.1, warp.1));
    // Blocks that do not nest (strips of an odd width) would give huge chunks.
    if both.0 <= 2048 && both.1 <= 2048 {
        both
    } else {
        warp
    }
}

/// How an aligned stack was aligned: part of the raster's plan (it serializes with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alignment {
    reference: Reference,
    resampling: Resampling,
    /// The files read through a warp (those whose grid differs from the reference).
    warped: Vec<PathBuf>,
}

impl Alignment {
    /// Where the reference grid came from.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The resampling method of the warps.
    pub fn resampling(&self) -> Resampling {
        self.resampling
    }

    /// The files warped onto the reference grid, in stack order.
    pub fn warped(&self) -> &[PathBuf] {
        &self.warped
    }

    pub(crate) fn is_warped(&self, path: &Path) -> bool {
        self.warped.iter().any(|p| p == path)
    }
}

impl Raster {
    /// Like [`Raster::open_stack`], but files on other grids (CRS, resolution, extent)
    /// are warped onto the reference grid of `align`, lazily, chunk by chunk, when the
    /// raster is read. Nodata is carried through the warp: source pixels equal to a
    /// band's nodata value (the file's, or [`Raster::with_nodata`]'s when set before
    /// reading) are left out of the resampling, and target pixels with no valid source
    /// pixel (also those outside the file) get that nodata value. A band without nodata
    /// gets 0 there, as `gdalwarp` gives.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let dir = "data/LC08_L1TP_224078_20200518_20200518_01_RT";
    /// // The blue band onto a 60 m grid: the other members sit on the 30 m grid.
    /// let r = Raster::open_stack_aligned(
    ///     [format!("{dir}_B2.TIF"), format!("{dir}_B4.TIF")],
    ///     Stack::Band,
    ///     &Align::grid().res(60.0).resampling(Resampling::Average),
    /// )?;
    /// assert_eq!(r.alignment().map(|a| a.warped().len()), Some(2));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    ///
    /// Errors: those of [`Raster::open_stack`] (except grid mismatches) and
    /// [`Align::check`]'s.
    pub fn open_stack_aligned<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        how: Stack,
        align: &Align,
    ) -> Result<Raster> {
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        let target = resolve_for(&paths, align)?;
        Raster::stack(&paths, how, None, Some(&target))
    }

    /// [`Raster::open_time_stack`] (dates given, one per file) with alignment.
    pub fn open_time_stack_aligned<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        dates: &[NaiveDate],
        align: &Align,
    ) -> Result<Raster> {
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        let target = resolve_for(&paths, align)?;
        Raster::stack(&paths, Stack::Time, Some(dates), Some(&target))
    }

    /// [`Raster::open_glob`] with alignment.
    pub fn open_glob_aligned(
        pattern: &str,
        variable: Option<&str>,
        align: &Align,
    ) -> Result<Raster> {
        let names = super::glob_names(pattern, variable)?;
        let target = resolve_for(&names, align)?;
        Raster::stack(&names, Stack::Time, None, Some(&target))
    }

    /// How the raster's files were aligned, when it was opened with alignment.
    pub fn alignment(&self) -> Option<&Alignment> {
        self.alignment.as_ref()
    }
}

fn resolve_for(paths: &[PathBuf], align: &Align) -> Result<Target> {
    let first = paths
        .first()
        .ok_or_else(|| Error::invalid("stack", "no file given"))?;
    align.resolve(first)
}

/// The WKT of a CRS given as GDAL accepts it (`EPSG:32622`, PROJ, WKT).
fn crs_wkt(crs: &str) -> Result<String> {
    let _quiet = QuietGdal::new();
    SpatialRef::from_definition(crs)
        .and_then(|s| s.to_wkt())
        .map_err(|_| {
            Error::invalid(
                "crs",
                format!("{crs:?} is not a CRS GDAL knows (e.g. EPSG:32622, a PROJ string, WKT)"),
            )
        })
}

/// A number as gdalwarp reads it back exactly (Rust prints the shortest round-trip form).
fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        v.to_string()
    }
}

/// Opens `path` for one worker: the file itself, or when the raster warps it, a warped
/// VRT onto the raster's grid over the worker's own handle of the file.
pub(crate) fn open_member(raster: &Raster, path: &Path) -> Result<Dataset> {
    let source = open_dataset(path)?;
    let Some(alignment) = raster.alignment.as_ref().filter(|a| a.is_warped(path)) else {
        return Ok(source);
    };
    let [x0, dx, _, y0, _, dy] = raster.geo_transform;
    let (x1, y1) = (
        x0 + dx * raster.width as f64,
        y0 + dy * raster.height as f64,
    );
    let mut args: Vec<String> = [
        "-of",
        "VRT",
        "-r",
        alignment.resampling.name(),
        // Exact per-pixel transformation (see the module's docs).
        "-et",
        "0",
    ]
    .map(String::from)
    .to_vec();
    if !raster.crs_wkt.is_empty() {
        args.extend(["-t_srs".into(), raster.crs_wkt.clone()]);
    }
    args.extend([
        "-te".into(),
        num(x0.min(x1)),
        num(y0.min(y1)),
        num(x0.max(x1)),
        num(y0.max(y1)),
        "-ts".into(),
        raster.width.to_string(),
        raster.height.to_string(),
    ]);
    // Nodata in use for this file's bands, in band order (overrides included).
    let mut nodata: Vec<(usize, Option<f64>)> = raster
        .bands
        .iter()
        .filter(|b| b.path == path)
        .map(|b| (b.index, b.nodata))
        .collect();
    nodata.sort_by_key(|(i, _)| *i);
    nodata.dedup_by(|a, b| a.0 == b.0 && same_opt_f64(a.1, b.1));
    if nodata.iter().all(|(_, v)| v.is_none()) {
        args.extend(["-srcnodata".into(), "None".into()]);
    } else {
        // A band without nodata among bands with one: NaN matches no stored value.
        let list = nodata
            .iter()
            .map(|(_, v)| num(v.unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(" ");
        args.extend(["-srcnodata".into(), list.clone(), "-dstnodata".into(), list]);
    }
    // The resampling kernel's scale, fixed for the whole file (see `kernel_scale`).
    if let Some((sx, sy)) = kernel_scale(&source, &raster.crs_wkt, dx.abs(), dy.abs()) {
        args.extend([
            "-wo".into(),
            format!("XSCALE={}", num(sx)),
            "-wo".into(),
            format!("YSCALE={}", num(sy)),
        ]);
    }
    gdalwarp_vrt(source, path, &args)
}

/// Target pixels per source pixel along x and y, from the source's pixel at its centre
/// carried into the target CRS (`(2.0, 2.0)` for 60 m onto 30 m).
///
/// GDAL's warper otherwise derives this scale from each block's source window: a block of
/// a rotated source (another UTM zone) covers a taller window than the block, so bilinear
/// and cubic kernels were widened block by block (43 % of the pixels of the zone-22 test
/// differed from a whole-image `gdalwarp`, by 12 on average). GDAL's `XSCALE`/`YSCALE`
/// warp options fix it, and `gdalwarp -wo XSCALE=.. -wo YSCALE=..` gives the same values.
fn kernel_scale(source: &Dataset, dst_wkt: &str, dx: f64, dy: f64) -> Option<(f64, f64)> {
    let gt = source.geo_transform().ok()?;
    let (w, h) = source.raster_size();
    let src_wkt = CString::new(source.projection()).ok()?;
    let dst_wkt = CString::new(dst_wkt).ok()?;
    let (cx, cy) = ((w / 2) as f64, (h / 2) as f64);
    let mut x = [cx, cx + 1.0, cx];
    let mut y = [cy, cy, cy + 1.0];
    let mut z = [0.0; 3];
    let mut ok = [0; 3];
    // SAFETY: valid NUL-terminated strings and geotransform; a NULL destination
    // geotransform makes the transformer return target CRS coordinates. The transformer
    // is destroyed on every path below.
    unsafe {
        let t = gdal_sys::GDALCreateGenImgProjTransformer3(
            src_wkt.as_ptr(),
            gt.as_ptr(),
            dst_wkt.as_ptr(),
            std::ptr::null(),
        );
        if t.is_null() {
            return None;
        }
        gdal_sys::GDALGenImgProjTransform(
            t,
            0,
            3,
            x.as_mut_ptr(),
            y.as_mut_ptr(),
            z.as_mut_ptr(),
            ok.as_mut_ptr(),
        );
        gdal_sys::GDALDestroyGenImgProjTransformer(t);
    }
    if ok.contains(&0) {
        return None;
    }
    let along_x = (x[1] - x[0]).hypot(y[1] - y[0]);
    let along_y = (x[2] - x[0]).hypot(y[2] - y[0]);
    let (sx, sy) = (along_x / dx, along_y / dy);
    (sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0).then_some((sx, sy))
}

/// `gdalwarp ARGS source` into a VRT in memory, which takes over the source handle.
fn gdalwarp_vrt(source: Dataset, path: &Path, args: &[String]) -> Result<Dataset> {
    let _quiet = QuietGdal::new();
    let fail = |what: &str| Error::Gdal {
        context: format!("warping {} ({what})", path.display()),
        source: super::last_gdal_error("GDALWarp"),
    };
    let c_args = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid("warp options", "a NUL byte in an option"))?;
    let mut argv: Vec<*mut c_char> = c_args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    argv.push(std::ptr::null_mut());
    // SAFETY: argv is a NULL-terminated array of NUL-terminated strings that outlive the
    // call; GDAL copies what it keeps. The options are freed below on every path.
    let options =
        unsafe { gdal_sys::GDALWarpAppOptionsNew(argv.as_mut_ptr(), std::ptr::null_mut()) };
    if options.is_null() {
        return Err(fail("options"));
    }
    let empty = CString::default();
    let mut src = source.c_dataset();
    let mut usage = 0;
    // SAFETY: one valid source handle, valid options; an empty destination name with the
    // VRT format gives an in-memory warped VRT.
    let vrt = unsafe {
        gdal_sys::GDALWarp(
            empty.as_ptr(),
            std::ptr::null_mut(),
            1,
            &mut src,
            options,
            &mut usage,
        )
    };
    // SAFETY: created above, not used after this.
    unsafe { gdal_sys::GDALWarpAppOptionsFree(options) };
    if vrt.is_null() {
        return Err(fail(if usage != 0 { "usage" } else { "gdalwarp" }));
    }
    // SAFETY: a new dataset handle owned by nobody else; closed when the Dataset drops.
    let vrt = unsafe { Dataset::from_c_dataset(vrt) };
    // The warped VRT took a reference on the source (GDAL documents it), and closes the
    // source when its own count drops to zero: hand ours over rather than close it.
    let src_handle = source.c_dataset();
    std::mem::forget(source);
    // SAFETY: drops this function's reference on a valid handle; the VRT holds another.
    let left = unsafe { gdal_sys::GDALDereferenceDataset(src_handle) };
    if left < 1 {
        // No reference held by the VRT (not expected): keep ours by closing the VRT first
        // and reporting, rather than leave the VRT pointing at a closed dataset.
        drop(vrt);
        // SAFETY: restore and then close our own handle.
        unsafe {
            gdal_sys::GDALReferenceDataset(src_handle);
            gdal_sys::GDALClose(src_handle);
        }
        return Err(Error::Internal(format!(
            "GDAL's warped VRT of {} holds no reference on its source",
            path.display()
        )));
    }
    Ok(vrt)
}

impl Alignment {
    /// The text repr's rows (`Raster`'s `Display`).
    pub(crate) fn fmt_rows(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  aligned: onto {} ({})",
            self.reference, self.resampling
        )?;
        if self.warped.is_empty() {
            writeln!(f, "  warped:  none (every file is on the grid)")
        } else {
            for p in &self.warped {
                writeln!(f, "  warped:  {}", p.display())?;
            }
            Ok(())
        }
    }
}
