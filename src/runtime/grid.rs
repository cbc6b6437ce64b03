//! Windows and chunk grids over a raster's pixel space.

use std::fmt;

pub use crate::core::window::Window;
use crate::error::{Error, Result};

/// A regular grid of chunks over a `width` x `height` raster; edge chunks are smaller.
///
/// Chunks are numbered row-major, left to right then top to bottom.
///
/// ```
/// use rasterlab::runtime::grid::{ChunkGrid, Window};
/// let grid = ChunkGrid::new(250, 100, 100, 100)?;
/// assert_eq!(grid.len(), 3);
/// assert_eq!(grid.window(2), Some(Window::new(200, 0, 50, 100)));
/// let total: usize = grid.iter().map(|w| w.len()).sum();
/// assert_eq!(total, 250 * 100);
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkGrid {
    width: usize,
    height: usize,
    chunk_width: usize,
    chunk_height: usize,
}

impl ChunkGrid {
    /// A grid of `chunk_width` x `chunk_height` chunks; chunks larger than the raster are
    /// clamped to it. Zero sizes are an error.
    pub fn new(
        width: usize,
        height: usize,
        chunk_width: usize,
        chunk_height: usize,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(
                "raster size",
                format!("{width} x {height} pixels holds no data"),
            ));
        }
        if chunk_width == 0 || chunk_height == 0 {
            return Err(Error::invalid(
                "chunk size",
                format!("{chunk_width} x {chunk_height}: chunks need at least 1 x 1 pixels"),
            ));
        }
        Ok(ChunkGrid {
            width,
            height,
            chunk_width: chunk_width.min(width),
            chunk_height: chunk_height.min(height),
        })
    }

    /// A grid whose chunks are whole multiples of the file's `block` (so that every block
    /// is decoded once), grown until a chunk holds about `target_bytes` but kept small
    /// enough that every one of `threads` workers gets at least eight chunks.
    ///
    /// ```
    /// use rasterlab::runtime::grid::ChunkGrid;
    /// let grid = ChunkGrid::aligned(2041, 1860, (256, 256), 4, 8 << 20, 2)?;
    /// assert_eq!(grid.chunk_size().0 % 256, 0);
    /// assert!(grid.len() >= 8);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn aligned(
        width: usize,
        height: usize,
        block: (usize, usize),
        bytes_per_pixel: usize,
        target_bytes: u64,
        threads: usize,
    ) -> Result<Self> {
        let (bw, bh) = (
            block.0.clamp(1, width.max(1)),
            block.1.clamp(1, height.max(1)),
        );
        let (mut cw, mut ch) = (bw, bh);
        // Eight chunks per worker keep both cores busy to the end (load balance), at no
        // measurable per-chunk cost (a few microseconds each).
        let min_chunks = 8 * threads.max(1);
        let count = |cw: usize, ch: usize| width.div_ceil(cw) * height.div_ceil(ch);
        let bytes = |cw: usize, ch: usize| (cw * ch * bytes_per_pixel.max(1)) as u64;
        loop {
            // Grow the shorter side first so that chunks stay roughly square.
            let (nw, nh) = if cw < width && (cw * bh <= ch * bw || ch >= height) {
                ((cw + bw).min(width), ch)
            } else {
                (cw, (ch + bh).min(height))
            };
            if (nw, nh) == (cw, ch) || bytes(nw, nh) > target_bytes || count(nw, nh) < min_chunks {
                break;
            }
            (cw, ch) = (nw, nh);
        }
        ChunkGrid::new(width, height, cw, ch)
    }

    /// Raster size as `(width, height)`.
    pub const fn raster_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Nominal chunk size as `(width, height)`; edge chunks may be smaller.
    pub const fn chunk_size(&self) -> (usize, usize) {
        (self.chunk_width, self.chunk_height)
    }

    /// Number of chunks along x and y.
    pub const fn shape(&self) -> (usize, usize) {
        (
            self.width.div_ceil(self.chunk_width),
            self.height.div_ceil(self.chunk_height),
        )
    }

    /// Number of chunks.
    pub const fn len(&self) -> usize {
        let (nx, ny) = self.shape();
        nx * ny
    }

    /// Always false: a grid holds at least one chunk.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The window of chunk `index`, or `None` past the end.
    pub fn window(&self, index: usize) -> Option<Window> {
        (index < self.len()).then(|| self.window_at(index))
    }

    fn window_at(&self, index: usize) -> Window {
        let (nx, _) = self.shape();
        let (cx, cy) = (index % nx, index / nx);
        let (x, y) = (cx * self.chunk_width, cy * self.chunk_height);
        Window::new(
            x,
            y,
            self.chunk_width.min(self.width - x),
            self.chunk_height.min(self.height - y),
        )
    }

    /// Iterates over the chunk windows in row-major order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Window> + '_ {
        (0..self.len()).map(move |i| self.window_at(i))
    }
}

impl fmt::Display for ChunkGrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (nx, ny) = self.shape();
        write!(
            f,
            "{} chunks ({nx} x {ny}) of {} x {} px",
            self.len(),
            self.chunk_width,
            self.chunk_height
        )
    }
}

/// Chunks of an n-dimensional array of `shape`, `chunks[d]` long along dimension `d`
/// (edge chunks are shorter), as one range per dimension, last dimension fastest
/// (stems' `iter_chunks`).
///
/// ```
/// use rasterlab::runtime::grid::iter_chunks;
/// let chunks: Vec<_> = iter_chunks(&[3, 5], &[2, 2])?.collect();
/// assert_eq!(chunks.len(), 2 * 3);
/// assert_eq!(chunks[0], vec![0..2, 0..2]);
/// assert_eq!(chunks[5], vec![2..3, 4..5]);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn iter_chunks(shape: &[usize], chunks: &[usize]) -> Result<NdChunks> {
    if shape.len() != chunks.len() {
        return Err(Error::invalid(
            "chunks",
            format!(
                "{} chunk sizes for {} dimensions",
                chunks.len(),
                shape.len()
            ),
        ));
    }
    if let Some(d) = chunks.iter().position(|&c| c == 0) {
        return Err(Error::invalid(
            "chunks",
            format!("dimension {d} has chunk size 0"),
        ));
    }
    let counts: Vec<usize> = shape
        .iter()
        .zip(chunks)
        .map(|(&s, &c)| s.div_ceil(c))
        .collect();
    let total = counts.iter().product();
    Ok(NdChunks {
        shape: shape.to_vec(),
        chunks: chunks.to_vec(),
        counts,
        next: 0,
        total,
    })
}

/// Every index combination of the dimensions not in `core`, with the `core` dimensions
/// whole (stems' `iter_noncore_chunks`): e.g. each pixel's full time series of a
/// `(time, y, x)` cube with `core = [0]`.
///
/// ```
/// use rasterlab::runtime::grid::iter_noncore_chunks;
/// let series: Vec<_> = iter_noncore_chunks(&[10, 2, 3], &[0])?.collect();
/// assert_eq!(series.len(), 6);
/// assert_eq!(series[4], vec![0..10, 1..2, 1..2]);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn iter_noncore_chunks(shape: &[usize], core: &[usize]) -> Result<NdChunks> {
    if let Some(&d) = core.iter().find(|&&d| d >= shape.len()) {
        return Err(Error::invalid(
            "core dimensions",
            format!("dimension {d} does not exist in a {}-d array", shape.len()),
        ));
    }
    let chunks: Vec<usize> = (0..shape.len())
        .map(|d| {
            if core.contains(&d) {
                shape[d].max(1)
            } else {
                1
            }
        })
        .collect();
    iter_chunks(shape, &chunks)
}

/// Iterator of n-dimensional chunks; see [`iter_chunks`].
#[derive(Debug, Clone)]
pub struct NdChunks {
    shape: Vec<usize>,
    chunks: Vec<usize>,
    counts: Vec<usize>,
    next: usize,
    total: usize,
}

impl Iterator for NdChunks {
    type Item = Vec<std::ops::Range<usize>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let mut rest = self.next;
        self.next += 1;
        let mut ranges = vec![0..0; self.shape.len()];
        for d in (0..self.shape.len()).rev() {
            let k = rest % self.counts[d];
            rest /= self.counts[d];
            let start = k * self.chunks[d];
            ranges[d] = start..(start + self.chunks[d]).min(self.shape[d]);
        }
        Some(ranges)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for NdChunks {}
