//! The valid pixels of a raster streamed through the executor, for every clustering path
//! that reads a raster (`Samples::from_bands`, `KMeansModel::predict_raster` and
//! `write_labels`, `MiniBatchKMeans::fit_raster`): per-worker GDAL handles, at most as
//! many chunks in flight as the memory budget holds, an error naming its chunk, and the
//! runtime's observer seeing every read, compute and hand-over.

use crate::error::{Error, Result};
use crate::raster::{Raster, Reader};
use crate::runtime::Runtime;
use crate::runtime::exec::{RunStats, run_chunks};
use crate::runtime::grid::Window;
use crate::runtime::observe::TaskKind;
use crate::runtime::progress::Progress;

/// The valid pixels of one chunk (every band finite: not nodata).
pub(crate) struct Pixels {
    /// Features, one row of `bands` values per pixel.
    pub values: Vec<f32>,
    /// Row-major index (`row * width + col`) of each pixel in the whole raster.
    pub indices: Vec<usize>,
}

/// A planned stream over the valid pixels of some bands of a raster.
pub(crate) struct PixelStream<'a> {
    raster: &'a Raster,
    /// Source bands read, in feature order.
    idx: Vec<usize>,
    windows: Vec<Window>,
    permits: usize,
}

impl<'a> PixelStream<'a> {
    /// Full-width strips of whole blocks (see [`strips`]) cut to `rt`'s chunk size, so
    /// the pixels come in row-major order. `extra` is what the caller holds per pixel of a
    /// chunk beyond its decoded bands and its valid pixels (e.g. the chunk's labels).
    pub(crate) fn strips(
        rt: &Runtime,
        raster: &'a Raster,
        bands: &[&str],
        extra: u64,
    ) -> Result<PixelStream<'a>> {
        let per_pixel = per_pixel(bands.len(), extra);
        let windows = strips_within(raster, rt, per_pixel);
        PixelStream::new(rt, raster, bands, per_pixel, windows)
    }

    /// The raster's own chunks when set with [`Raster::chunks`], else as
    /// [`strips`](PixelStream::strips).
    pub(crate) fn chunks(
        rt: &Runtime,
        raster: &'a Raster,
        bands: &[&str],
        extra: u64,
    ) -> Result<PixelStream<'a>> {
        let per_pixel = per_pixel(bands.len(), extra);
        let windows = match raster.chunk_size() {
            Some(_) => raster
                .chunk_grid(rt.plan(), per_pixel as usize)?
                .iter()
                .collect(),
            None => strips_within(raster, rt, per_pixel),
        };
        PixelStream::new(rt, raster, bands, per_pixel, windows)
    }

    fn new(
        rt: &Runtime,
        raster: &'a Raster,
        bands: &[&str],
        per_pixel: u64,
        windows: Vec<Window>,
    ) -> Result<PixelStream<'a>> {
        // The raster's overrides (nodata, scale) are refused up front, not as a chunk's
        // error from a worker's reader.
        raster.check()?;
        if bands.is_empty() {
            return Err(Error::invalid("bands", "no band given"));
        }
        if raster.n_times() > 1 {
            return Err(Error::invalid(
                "raster",
                format!(
                    "it has {} time steps; cluster one date (Raster::dates) or build the samples from a time series",
                    raster.n_times()
                ),
            ));
        }
        let idx = raster.source_bands(bands)?;
        let largest = windows.iter().map(|w| w.len() as u64).max().unwrap_or(0) * per_pixel;
        let permits = rt.memory_budget() / largest.max(1);
        if permits == 0 {
            let (w, _) = raster.size();
            return Err(Error::MemoryBudget {
                what: format!(
                    "one chunk of {} x {} pixels",
                    w.min(largest as usize),
                    largest / per_pixel / w.max(1) as u64
                ),
                needed: largest,
                budget: rt.memory_budget(),
                hint: "raise the memory budget".into(),
            });
        }
        Ok(PixelStream {
            raster,
            idx,
            windows,
            permits: usize::try_from(permits).unwrap_or(usize::MAX),
        })
    }

    /// The chunks, in raster order.
    pub(crate) fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Reads the valid pixels of every window of `windows` (chunk `i` is `windows[i]`),
    /// runs `work` on them on the workers and hands each result to `sink` on this
    /// thread: in `windows` order when `in_order`, else as they complete.
    pub(crate) fn run<T: Send>(
        &self,
        rt: &Runtime,
        label: &str,
        windows: &[Window],
        in_order: bool,
        work: impl Fn(Window, Pixels) -> Result<T> + Sync,
        sink: impl FnMut(usize, Window, T) -> Result<()>,
    ) -> Result<RunStats> {
        crate::raster::limit_gdal_cache();
        let mut progress = Progress::new(rt.progress(), label, "chunks", windows.len() as u64);
        run_chunks(
            rt,
            windows,
            self.permits,
            in_order,
            || Reader::open(self.raster),
            |reader, chunk, window| work(window, self.read(rt, reader, chunk, window)?),
            sink,
            &mut progress,
        )
        .map_err(|e| match e {
            // `windows` may be a shuffled pass: name the chunk by its place in the raster.
            Error::Chunk {
                chunk,
                window,
                source,
            } => Error::Chunk {
                chunk: self
                    .windows
                    .iter()
                    .position(|w| *w == window)
                    .unwrap_or(chunk),
                window,
                source,
            },
            other => other,
        })
    }

    /// Like [`run`](PixelStream::run) in `windows` order, until `sink` returns
    /// `Ok(false)`: no further chunk is read (those already in flight are dropped).
    pub(crate) fn run_while<T: Send>(
        &self,
        rt: &Runtime,
        label: &str,
        windows: &[Window],
        work: impl Fn(Window, Pixels) -> Result<T> + Sync,
        mut sink: impl FnMut(T) -> Result<bool>,
    ) -> Result<()> {
        // The executor stops a run at the first error: a private one says "enough".
        const ENOUGH: &str = "the consumer has what it needs";
        let mut enough = false;
        let run = self.run(rt, label, windows, true, work, |_, _, t| {
            if sink(t)? {
                return Ok(());
            }
            enough = true;
            Err(Error::Cancelled {
                reason: ENOUGH.into(),
            })
        });
        match run {
            Err(Error::Cancelled { reason }) if enough && reason == ENOUGH => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// The valid pixels of `window`, read by a worker's `reader`.
    fn read(&self, rt: &Runtime, reader: &Reader, chunk: usize, window: Window) -> Result<Pixels> {
        let (plane, nb) = (window.len(), self.idx.len());
        let mut buf = reader.buffer(plane * nb);
        let t0 = std::time::Instant::now();
        let at = self.raster.absolute(window);
        reader.read_decoded(self.raster, at, &self.idx, &mut buf)?;
        if let Some(o) = rt.observer() {
            o.task(TaskKind::Read, chunk, t0, std::time::Instant::now());
            let stored = plane * nb * usize::from(self.raster.dtype().bytes());
            o.read(chunk, at, self.raster.block_size(), nb, stored as u64);
        }
        let (width, _) = self.raster.size();
        // The decoded bands are dropped, not kept for the worker's next chunk: the permit
        // that counted them returns with this chunk.
        Ok(valid_pixels(&buf, nb, window, width))
    }
}

/// Bytes in flight per pixel of a chunk: its decoded bands (f32), its valid pixels (f32
/// features and an index) and `extra`.
fn per_pixel(bands: usize, extra: u64) -> u64 {
    (8 * bands + 8) as u64 + extra
}

/// The valid pixels (every band finite: nodata decodes to NaN) of band-sequential
/// `decoded` values of `window` (`bands` planes) in a raster `width` pixels wide.
pub(crate) fn valid_pixels(decoded: &[f32], bands: usize, window: Window, width: usize) -> Pixels {
    let plane = window.len();
    let mut values = Vec::with_capacity(plane * bands);
    let mut indices = Vec::with_capacity(plane);
    for p in 0..plane {
        if (0..bands).all(|b| decoded[b * plane + p].is_finite()) {
            values.extend((0..bands).map(|b| decoded[b * plane + p]));
            let (r, c) = (p / window.width, p % window.width);
            indices.push((window.y + r) * width + window.x + c);
        }
    }
    Pixels { values, indices }
}

/// Full-width strips of whole blocks of about `chunk_bytes` each at `per_pixel` bytes a
/// pixel: reads stay block-aligned and samples come out in row-major order. A chunk size
/// set on the raster ([`Raster::chunks`]) sets the strips' height instead.
fn strips(raster: &Raster, per_pixel: u64, chunk_bytes: u64) -> Vec<Window> {
    let (w, h) = raster.size();
    let rows = match raster.chunk_size() {
        Some((_, ch)) => ch.clamp(1, h.max(1)),
        None => {
            let (_, bh) = raster.block_size();
            let bh = bh.clamp(1, h.max(1));
            let row_bytes = (w as u64 * per_pixel).max(1);
            let rows = ((chunk_bytes / row_bytes) as usize).max(1);
            ((rows / bh).max(1) * bh).min(h.max(1))
        }
    };
    strips_of(w, h, rows)
}

fn strips_of(w: usize, h: usize, rows: usize) -> Vec<Window> {
    (0..h)
        .step_by(rows.max(1))
        .map(|y| Window::new(0, y, w, rows.max(1).min(h - y)))
        .collect()
}

/// [`strips`] of the plan's chunk size, cut shorter when one strip of whole blocks is
/// larger (a 256-row block of a 2041-pixel-wide, 3-band scene holds 16 MiB in flight):
/// as many rows as fit, so that several chunks are in flight within the budget (a tile
/// cut across strips is decoded once, then found in GDAL's block cache).
fn strips_within(raster: &Raster, rt: &Runtime, per_pixel: u64) -> Vec<Window> {
    let chunk_bytes = rt.plan().chunk_bytes();
    let windows = strips(raster, per_pixel, chunk_bytes);
    let (w, h) = raster.size();
    let row_bytes = (w as u64 * per_pixel).max(1);
    let tallest = windows.iter().map(|w| w.height).max().unwrap_or(0) as u64;
    if raster.chunk_size().is_none() && tallest * row_bytes > chunk_bytes {
        let rows = (chunk_bytes / row_bytes) as usize;
        if rows > 0 {
            return strips_of(w, h, rows);
        }
    }
    windows
}
