//! The reference grid of an aligned stack, resolved when the stack opens (GDAL decides
//! what is left out), and the members whose grid differs put on it.

use std::path::{Path, PathBuf};

use super::warp::{gdalwarp_vrt, num};
use super::{Align, Alignment, Reference, Resampling, crs_wkt};
use crate::core::window::Window;
use crate::error::{Error, Result};
use crate::raster::{Raster, open_dataset, same_crs};

impl Align {
    /// The grid itself, from the first file (or the raster given).
    pub(super) fn resolve(&self, first: &Path) -> Result<Target> {
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
                    epsg: crate::raster::epsg_of(&crs_wkt),
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

/// A grid: CRS, geotransform and size.
#[derive(Debug, Clone)]
struct GridOf {
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
