//! `--align-to FILE`, `--crs`, `--res`, `--bounds`, `--resampling`: the options of every
//! command that reads stacks, turned into the library's [`Align`].

use std::path::PathBuf;

use chrono::NaiveDate;
use rasterlab::prelude::*;

/// Options that warp inputs on different grids onto one grid when they are opened.
#[derive(clap::Args, Default)]
pub(crate) struct AlignArgs {
    /// Warp every input onto the grid (CRS, pixel size, extent) of FILE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["crs", "res", "bounds"])]
    align_to: Option<PathBuf>,
    /// Warp inputs onto a grid in this CRS (EPSG:32622, a PROJ string or WKT); what
    /// --res and --bounds leave out comes from the first input.
    #[arg(long)]
    crs: Option<String>,
    /// Pixel size of the grid in CRS units: `30` or `30,30` (x,y).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        allow_negative_numbers = true,
        value_name = "RES"
    )]
    res: Vec<f64>,
    /// Extent of the grid: `xmin,ymin,xmax,ymax` in its CRS.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "XMIN,YMIN,XMAX,YMAX"
    )]
    bounds: Vec<f64>,
    /// Resampling of warped inputs: nearest, bilinear, cubic, average, mode [default:
    /// nearest]. Alone, it aligns inputs onto the first input's grid.
    #[arg(long, value_name = "METHOD")]
    resampling: Option<String>,
}

impl AlignArgs {
    /// The alignment asked for, if any; arguments that cannot work are refused here,
    /// before anything is read.
    pub(crate) fn align(&self) -> rasterlab::Result<Option<Align>> {
        let resampling = self
            .resampling
            .as_deref()
            .map(str::parse::<Resampling>)
            .transpose()?;
        let mut align = match &self.align_to {
            Some(file) => Align::like(file),
            None if self.crs.is_none() && self.res.is_empty() && self.bounds.is_empty() => {
                if resampling.is_none() {
                    return Ok(None);
                }
                Align::first()
            }
            None => Align::grid(),
        };
        if let Some(crs) = &self.crs {
            align = align.crs(crs.clone());
        }
        match self.res.as_slice() {
            [] => {}
            [r] => align = align.res(*r),
            [x, y] => align = align.res_xy(*x, *y),
            other => {
                return Err(rasterlab::Error::invalid(
                    "resolution",
                    format!("{} numbers given (allowed: RES or X,Y)", other.len()),
                ));
            }
        }
        match self.bounds.as_slice() {
            [] => {}
            [a, b, c, d] => align = align.bounds(*a, *b, *c, *d),
            other => {
                return Err(rasterlab::Error::invalid(
                    "bounds",
                    format!(
                        "{} numbers given (allowed: four, xmin,ymin,xmax,ymax)",
                        other.len()
                    ),
                ));
            }
        }
        if let Some(r) = resampling {
            align = align.resampling(r);
        }
        align.check()?;
        Ok(Some(align))
    }
}

/// Opens `files` as a stack, aligned when `align` is given (one file too: it is then
/// warped onto the grid asked for).
pub(crate) fn open(
    files: &[PathBuf],
    how: Stack,
    dates: Option<&[NaiveDate]>,
    align: Option<&Align>,
) -> rasterlab::Result<Raster> {
    match (align, dates) {
        (Some(a), Some(d)) => Raster::open_time_stack_aligned(files, d, a),
        (Some(a), None) => Raster::open_stack_aligned(files, how, a),
        (None, Some(d)) => Raster::open_time_stack(files, d),
        (None, None) if files.len() == 1 => Raster::open(&files[0]),
        (None, None) => Raster::open_stack(files, how),
    }
}
