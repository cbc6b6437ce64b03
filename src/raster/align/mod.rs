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
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Align`] (the options: reference grid and resampling) and [`Reference`] |
//! | `resampling` | [`Resampling`]: the `gdalwarp -r` methods |
//! | `open` | [`Raster::open_stack_aligned`](crate::raster::Raster::open_stack_aligned) and its time-stack and glob variants |
//! | `target` | the reference grid resolved when a stack opens, and the members put on it |
//! | `alignment` | [`Alignment`]: what an aligned raster records (and serializes) |
//! | `warp` | per worker, a warped VRT of a member built by GDAL's `gdalwarp` library |

mod alignment;
mod open;
mod resampling;
mod target;
mod warp;

pub use alignment::Alignment;
pub use resampling::Resampling;
pub(crate) use target::{Target, chunk_block};
pub(crate) use warp::open_member;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::float::same_f64;
use crate::error::{Error, Result};
use warp::crs_wkt;

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
}

/// The parts of a [`Reference::Grid`] being edited.
struct GridParts<'a> {
    crs: &'a mut Option<String>,
    res: &'a mut Option<(f64, f64)>,
    bounds: &'a mut Option<(f64, f64, f64, f64)>,
}
