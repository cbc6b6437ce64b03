//! The lazy arrays a [`Raster`] builds: `raster.band(..)`, `raster.norm_diff(..)`.
//!
//! These are inherent methods of `Raster`, defined here because `raster` sits below `array`
//! and must not import it.

use super::LazyArray;
use crate::error::Result;
use crate::raster::Raster;

impl Raster {
    /// The decoded band `name` as a lazy array (a time series for a time stack).
    pub fn band(&self, name: &str) -> Result<LazyArray> {
        LazyArray::band(self.clone(), name)
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
