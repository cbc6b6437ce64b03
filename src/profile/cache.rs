//! What the reads of observed runs fetched: bytes per chunk and how often each source
//! block was read (dask's `CacheProfiler` counterpart).
//!
//! GDAL 3.6 does not count block-cache hits, so the profile counts what can be known:
//! the blocks (tiles or strips) of the source each chunk's window touched. A block touched
//! by several chunks is decoded again unless GDAL's block cache still holds it; chunks
//! aligned to the blocks touch each block once. GDAL's cache use is sampled at every read.

use std::collections::HashMap;
use std::fmt;

use crate::core::fmt::{html_table, human_bytes};
use crate::runtime::grid::Window;

/// One chunk's read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRead {
    /// Chunk index in the grid.
    pub chunk: usize,
    /// The window read, in the source's pixel grid.
    pub window: Window,
    /// The source's block size `(width, height)`.
    pub block: (usize, usize),
    /// Bands read.
    pub bands: usize,
    /// Stored (raw) bytes of the pixels read.
    pub bytes: u64,
    /// GDAL block cache in use right after the read, in bytes.
    pub cache_used: u64,
}

/// Totals of a [`CacheProfiler`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CacheSummary {
    /// Chunk reads recorded.
    pub reads: usize,
    /// Stored bytes read in all.
    pub bytes_read: u64,
    /// Distinct source blocks touched.
    pub blocks: usize,
    /// Block touches summed over the reads.
    pub block_reads: usize,
    /// Touches beyond the first of each block: decodes GDAL's cache may have saved.
    pub rereads: usize,
    /// Most touches of one block.
    pub max_reads_per_block: usize,
    /// GDAL's block cache size (`GDAL_CACHEMAX`).
    pub cache_max: u64,
    /// Most GDAL cache in use after a read.
    pub peak_cache_used: u64,
}

/// Bytes read per chunk and reads per source block of the runs a
/// [`Profiler`](super::Profiler) observed; from [`Profiler::cache`](super::Profiler::cache).
///
/// ```
/// use rasterlab::prelude::*;
/// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?  // 256 x 256 tiles
///     .with_band_names(["blue", "green", "red"])?;
/// let ndi = r.norm_diff("green", "red")?.progress(ProgressMode::Silent);
/// let (aligned, small) = (Profiler::new(), Profiler::new());
/// ndi.clone().chunks(256)?.observe(&aligned).compute()?;
/// ndi.chunks(64)?.observe(&small).compute()?;
/// let (a, s) = (aligned.cache().summary(), small.cache().summary());
/// assert_eq!((a.reads, a.rereads, a.max_reads_per_block), (64, 0, 1));
/// assert_eq!(s.reads, 960);
/// assert_eq!(s.max_reads_per_block, 16); // each tile is touched by 4 x 4 chunks
/// assert_eq!(a.bytes_read, s.bytes_read);
/// assert!(small.cache().to_svg().contains("<svg"));
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CacheProfiler {
    reads: Vec<ChunkRead>,
    cache_max: u64,
}

impl CacheProfiler {
    pub(crate) fn new(reads: Vec<ChunkRead>, cache_max: u64) -> CacheProfiler {
        CacheProfiler { reads, cache_max }
    }

    /// The recorded reads, in completion order.
    pub fn reads(&self) -> &[ChunkRead] {
        &self.reads
    }

    /// How many reads touched each source block `(column, row)` of the block grid.
    pub fn block_reads(&self) -> HashMap<(usize, usize), usize> {
        let mut counts = HashMap::new();
        for r in &self.reads {
            let (bw, bh) = (r.block.0.max(1), r.block.1.max(1));
            let w = r.window;
            if w.width == 0 || w.height == 0 {
                continue;
            }
            for by in w.y / bh..=(w.y + w.height - 1) / bh {
                for bx in w.x / bw..=(w.x + w.width - 1) / bw {
                    *counts.entry((bx, by)).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// Totals: bytes read, distinct blocks, re-reads, GDAL cache use.
    pub fn summary(&self) -> CacheSummary {
        let counts = self.block_reads();
        let block_reads: usize = counts.values().sum();
        CacheSummary {
            reads: self.reads.len(),
            bytes_read: self.reads.iter().map(|r| r.bytes).sum(),
            blocks: counts.len(),
            block_reads,
            rereads: block_reads - counts.len(),
            max_reads_per_block: counts.values().copied().max().unwrap_or(0),
            cache_max: self.cache_max,
            peak_cache_used: self.reads.iter().map(|r| r.cache_used).max().unwrap_or(0),
        }
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let s = self.summary();
        let per_chunk = s.bytes_read / s.reads.max(1) as u64;
        vec![
            ("chunk reads", s.reads.to_string()),
            ("bytes read", human_bytes(s.bytes_read)),
            ("per chunk", human_bytes(per_chunk)),
            ("source blocks", s.blocks.to_string()),
            ("block reads", s.block_reads.to_string()),
            (
                "re-reads",
                format!(
                    "{} (up to {} reads of one block)",
                    s.rereads, s.max_reads_per_block
                ),
            ),
            (
                "GDAL cache",
                format!(
                    "peak {} of {}",
                    human_bytes(s.peak_cache_used),
                    human_bytes(s.cache_max)
                ),
            ),
        ]
    }

    /// The block grid as a heat map (reads per block) with the chunk windows outlined.
    pub fn to_svg(&self) -> String {
        let counts = self.block_reads();
        let block = self.reads.first().map_or((1, 1), |r| r.block);
        // The extent read (the raster's, when the whole raster was read).
        let (w_px, h_px) = self.reads.iter().fold((1usize, 1usize), |(x, y), r| {
            (
                x.max(r.window.x + r.window.width),
                y.max(r.window.y + r.window.height),
            )
        });
        let (nx, ny) = (w_px.div_ceil(block.0.max(1)), h_px.div_ceil(block.1.max(1)));
        let side = 560.0;
        let scale = side / w_px.max(h_px) as f64;
        let (left, top) = (10.0, 30.0);
        let (pw, ph) = (w_px as f64 * scale, h_px as f64 * scale);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" \
             font-family=\"sans-serif\" font-size=\"12\">\
             <text x=\"{left}\" y=\"18\">reads per source block ({} x {} px); chunks outlined</text>",
            left + pw + 150.0,
            top + ph + 20.0,
            block.0,
            block.1
        );
        let color = |n: usize| match n {
            0 => "#f4f4f4",
            1 => "#c6dbef",
            2 => "#6baed6",
            3..=4 => "#2171b5",
            _ => "#08306b",
        };
        for by in 0..ny {
            for bx in 0..nx {
                let n = counts.get(&(bx, by)).copied().unwrap_or(0);
                let (x0, y0) = (bx * block.0, by * block.1);
                let (bw, bh) = ((x0 + block.0).min(w_px) - x0, (y0 + block.1).min(h_px) - y0);
                let (cx, cy, cw, ch) = (
                    left + x0 as f64 * scale,
                    top + y0 as f64 * scale,
                    bw as f64 * scale,
                    bh as f64 * scale,
                );
                svg.push_str(&format!(
                    "<rect x=\"{cx:.1}\" y=\"{cy:.1}\" width=\"{cw:.1}\" height=\"{ch:.1}\" \
                     fill=\"{}\" stroke=\"#fff\"><title>block ({bx}, {by}): {n} read(s)</title></rect>",
                    color(n)
                ));
                if cw >= 20.0 && ch >= 16.0 {
                    svg.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{}\">{n}</text>",
                        cx + cw / 2.0,
                        cy + ch / 2.0 + 4.0,
                        if n >= 3 { "#fff" } else { "#222" }
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.reads {
            if seen.insert((r.window.x, r.window.y, r.window.width, r.window.height)) {
                svg.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" \
                     stroke=\"#ff7f0e\" stroke-width=\"0.8\"/>",
                    left + r.window.x as f64 * scale,
                    top + r.window.y as f64 * scale,
                    r.window.width as f64 * scale,
                    r.window.height as f64 * scale
                ));
            }
        }
        for (k, (label, n)) in [("1", 1), ("2", 2), ("3-4", 3), ("5+", 5)]
            .iter()
            .enumerate()
        {
            let y = top + 20.0 * k as f64;
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{y}\" width=\"14\" height=\"14\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{label} read(s)</text>",
                left + pw + 16.0,
                color(*n),
                left + pw + 36.0,
                y + 11.0
            ));
        }
        svg.push_str("</svg>");
        svg
    }

    /// HTML: the heat map and the summary table.
    pub fn to_html(&self) -> String {
        format!(
            "<div class=\"rasterlab-cache\" style=\"display:flex;gap:24px;align-items:flex-start\">\
             <div>{}</div>{}</div>",
            self.to_svg(),
            html_table("Cache profile", &self.rows())
        )
    }
}

crate::core::fmt::html_repr!(CacheProfiler);

impl fmt::Display for CacheProfiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Cache profile")?;
        for (name, value) in self.rows() {
            writeln!(f, "  {name:<14} {value}")?;
        }
        Ok(())
    }
}
