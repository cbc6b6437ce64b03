//! Mapping user functions over the blocks of a lazy array (geowombat's `ParallelTask`,
//! stems' `map_collect_1d`).

use std::fmt::Display;

use ndarray::Array3;

use super::LazyArray;
use crate::error::{Error, Result};
use crate::runtime::grid::Window;

/// One computed block handed to a user function.
#[derive(Debug, Clone)]
pub struct Block {
    /// Index of the block in the chunk grid (row-major).
    pub id: usize,
    /// Where the block lies, relative to the array's raster (or its subset).
    pub window: Window,
    /// The block's values, `(bands, rows, columns)`; nodata is NaN.
    pub data: Array3<f32>,
}

impl LazyArray {
    /// Calls `f` on every block in parallel and returns the results in block order.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let sums = r.band("nir")?.chunks(100)?.progress(ProgressMode::Silent)
    ///     .map_blocks(|b| b.data.iter().map(|&v| v as f64).sum::<f64>())?;
    /// assert_eq!(sums.len(), 6 * 5);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn map_blocks<T: Send>(&self, f: impl Fn(&Block) -> T + Sync) -> Result<Vec<T>> {
        self.try_map_blocks(|b| Ok::<T, std::convert::Infallible>(f(b)))
    }

    /// Like [`LazyArray::map_blocks`] for a function that can fail: the first error (or
    /// panic) stops the run and comes back as [`Error::Chunk`] (or [`Error::Panic`])
    /// naming the block.
    pub fn try_map_blocks<T: Send, E: Display>(
        &self,
        f: impl Fn(&Block) -> std::result::Result<T, E> + Sync,
    ) -> Result<Vec<T>> {
        let plan = self.plan()?;
        let grid = self.chunk_grid(&plan)?;
        let nb = self.n_bands()?;
        // Results land in their slot as blocks finish; order is restored by index.
        let mut slots: Vec<Option<T>> = (0..grid.len()).map(|_| None).collect();
        self.run_with(
            &plan,
            &grid,
            "map_blocks",
            |id, window, data| {
                let data = Array3::from_shape_vec((nb, window.height, window.width), data)
                    .map_err(|e| Error::internal(format!("block shape: {e}")))?;
                let block = Block { id, window, data };
                f(&block).map_err(|e| Error::User {
                    message: e.to_string(),
                })
            },
            |id, _, value| {
                slots[id] = Some(value);
                Ok(())
            },
        )?;
        slots
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| {
                    Error::invalid("map_blocks", format!("block {i} produced no result"))
                })
            })
            .collect()
    }

    /// Calls `f` on every block in parallel and concatenates the records each returns,
    /// in block order (stems' `map_collect_1d`).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// // Every pixel brighter than 200 in nir, as (column, row).
    /// let bright = r.band("nir")?.chunks(128)?.progress(ProgressMode::Silent).map_collect(|b| {
    ///     let mut found = Vec::new();
    ///     for ((_, y, x), &v) in b.data.indexed_iter() {
    ///         if v > 200.0 { found.push((b.window.x + x, b.window.y + y)); }
    ///     }
    ///     found
    /// })?;
    /// assert!(bright.iter().all(|&(x, y)| x < 515 && y < 403));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn map_collect<R: Send>(&self, f: impl Fn(&Block) -> Vec<R> + Sync) -> Result<Vec<R>> {
        Ok(self.map_blocks(f)?.into_iter().flatten().collect())
    }

    /// Like [`LazyArray::map_collect`] for a function that can fail.
    pub fn try_map_collect<R: Send, E: Display>(
        &self,
        f: impl Fn(&Block) -> std::result::Result<Vec<R>, E> + Sync,
    ) -> Result<Vec<R>> {
        Ok(self.try_map_blocks(f)?.into_iter().flatten().collect())
    }
}
