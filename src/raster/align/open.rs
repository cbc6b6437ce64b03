//! Opening stacks of files on different grids: [`Raster::open_stack_aligned`] and its
//! time-stack and glob variants.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::target::Target;
use super::{Align, Alignment};
use crate::error::{Error, Result};
use crate::raster::{Raster, Stack};

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
        let names = crate::raster::glob_names(pattern, variable)?;
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
