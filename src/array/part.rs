//! Running a part of an array's chunk grid: the chunks one process computes when several
//! share a save (MPI ranks, see `crate::distributed`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::LazyArray;
use crate::error::{Error, Result};
use crate::raster::Reader;
use crate::runtime::exec::{Idle, RunStats, Windows, in_chunk, run_chunks_idle};
use crate::runtime::grid::{ChunkGrid, Window};
use crate::runtime::panic::panic_message;
use crate::runtime::progress::Progress;
use crate::runtime::resources::PoolPlan;

/// The chunks `ids` of `grid`, as a list of windows the executor can run.
struct Part<'a> {
    grid: &'a ChunkGrid,
    ids: &'a [usize],
}

impl Windows for Part<'_> {
    fn count(&self) -> usize {
        self.ids.len()
    }
    fn window(&self, index: usize) -> Option<Window> {
        self.grid.window(*self.ids.get(index)?)
    }
}

/// Balanced static split of `grid` among `parts` processes: contiguous runs of chunks
/// (rows of chunks stay together, so each process reads neighbouring blocks) holding
/// about the same number of pixels, hence bytes read, computed and sent. Part `part`'s
/// chunk indices.
pub(crate) fn split(grid: &ChunkGrid, parts: usize, part: usize) -> Vec<usize> {
    split_with_first(grid, parts, part, 1.0 / parts.max(1) as f64)
}

/// [`split`], but part 0 takes only `first` of the pixels (at most an equal share) and
/// the other parts share the rest equally: the writing rank, which also encodes every
/// other rank's chunks, computes less.
pub(crate) fn split_with_first(
    grid: &ChunkGrid,
    parts: usize,
    part: usize,
    first: f64,
) -> Vec<usize> {
    let parts = parts.max(1);
    let first = if parts == 1 {
        1.0
    } else {
        first.clamp(0.0, 1.0 / parts as f64)
    };
    let total: u128 = grid.iter().map(|w| w.len() as u128).sum();
    let mut before = 0u128;
    let mut mine = Vec::new();
    for (i, w) in grid.iter().enumerate() {
        let len = w.len() as u128;
        // A chunk belongs to the part its middle pixel falls in.
        let at = (before + len / 2) as f64 / total.max(1) as f64;
        let owner = if at < first {
            0
        } else {
            let rest = (at - first) / (1.0 - first);
            1 + ((rest * (parts - 1) as f64) as usize).min(parts - 2)
        };
        if owner == part {
            mine.push(i);
        }
        before += len;
    }
    mine
}

impl LazyArray {
    /// Runs the chunks `ids` of `grid` (indices into the whole grid), handing each result
    /// to `sink` on this thread (and calling `idle` there while it waits for one); `post`,
    /// `sink` and errors see grid indices. Same memory
    /// permits as [`LazyArray::run_with`] for the same plan.
    // The executor's own arguments, plus the part: bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_part<T: Send>(
        &self,
        plan: &PoolPlan,
        grid: &ChunkGrid,
        ids: &[usize],
        label: &str,
        post: impl Fn(usize, Window, Vec<f32>) -> Result<T> + Sync,
        mut sink: impl FnMut(usize, Window, T) -> Result<()>,
        idle: Option<Idle<'_>>,
    ) -> Result<RunStats> {
        let permits = self.permits(plan, grid)?;
        let part = Part { grid, ids };
        let global = |i: usize| ids.get(i).copied().unwrap_or(i);
        let mut progress = Progress::new(self.progress, label, "chunks", ids.len() as u64);
        let rt =
            crate::runtime::Runtime::from_plan(plan.clone()).with_observer(self.observer.clone());
        run_chunks_idle(
            &rt,
            &part,
            permits,
            false,
            || Reader::open(&self.raster),
            |reader, i, w| {
                let id = global(i);
                // Caught here rather than by the executor, so the error names the chunk
                // of the grid.
                catch_unwind(AssertUnwindSafe(|| {
                    post(id, w, self.eval_window(reader, id, w)?)
                }))
                .map_err(|payload| Error::Panic {
                    task: format!("chunk {id} ({w})"),
                    message: panic_message(payload.as_ref()),
                })?
                .map_err(|e| in_chunk(id, w, e))
            },
            |i, w, t| {
                let id = global(i);
                sink(id, w, t).map_err(|e| in_chunk(id, w, e))
            },
            idle,
            &mut progress,
        )
    }
}

#[cfg(feature = "mpi")]
impl LazyArray {
    /// [`LazyArray::map_blocks`] over this rank's part of the grid (the same split as a
    /// shared save): `(block id, value)` in block order. Threads and memory are the
    /// rank's share of its node unless set; progress is shown by rank 0 only.
    pub(crate) fn map_blocks_on_rank<T: Send>(
        &self,
        link: &dyn super::RankLink,
        f: impl Fn(&super::Block) -> T + Sync,
    ) -> Result<Vec<(usize, T)>> {
        let plan = super::share_of_node(
            self.plan()?,
            link,
            self.threads.is_some(),
            self.memory.is_some(),
        )?;
        let grid = self.chunk_grid(&plan)?;
        super::rank_link::same_grid(link, &grid)?;
        let mine = split(&grid, link.ranks(), link.rank());
        let nb = self.n_bands()?;
        let mut own = self.clone();
        if link.rank() != 0 {
            own.progress = crate::runtime::progress::ProgressMode::Silent;
        }
        let mut out = Vec::with_capacity(mine.len());
        own.run_part(
            &plan,
            &grid,
            &mine,
            "map_blocks",
            |id, window, data| {
                let data = ndarray::Array3::from_shape_vec((nb, window.height, window.width), data)
                    .map_err(|e| Error::internal(format!("block {id}: {e}")))?;
                Ok(f(&super::Block { id, window, data }))
            },
            |id, _, value| {
                out.push((id, value));
                Ok(())
            },
            None,
        )?;
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk has exactly one owner, each part's chunks are one contiguous run, and
    /// the parts' pixel counts are within one chunk of their targets.
    fn check(grid: &ChunkGrid, parts: usize, first: f64) -> Vec<Vec<usize>> {
        let all: Vec<Vec<usize>> = (0..parts)
            .map(|p| split_with_first(grid, parts, p, first))
            .collect();
        let mut seen: Vec<usize> = all.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..grid.len()).collect::<Vec<_>>());
        for ids in &all {
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        }
        let px = |ids: &[usize]| -> f64 {
            ids.iter()
                .filter_map(|&i| grid.window(i))
                .map(|w| w.len() as f64)
                .sum()
        };
        let total = px(&(0..grid.len()).collect::<Vec<_>>());
        let biggest = grid.iter().map(|w| w.len()).max().unwrap_or(0) as f64;
        let first = first.clamp(0.0, 1.0 / parts as f64);
        for (p, ids) in all.iter().enumerate() {
            let target = if p == 0 {
                first
            } else {
                (1.0 - first) / (parts - 1) as f64
            } * total;
            assert!(
                (px(ids) - target).abs() <= biggest,
                "part {p}: {} px, target {target}",
                px(ids)
            );
        }
        all
    }

    #[test]
    fn equal_split_is_the_first_share_of_one_over_parts() -> Result<()> {
        let grid = ChunkGrid::new(2041, 1860, 256, 256)?;
        for parts in 1..6 {
            let all = check(&grid, parts, 1.0 / parts as f64);
            for (p, ids) in all.iter().enumerate() {
                assert_eq!(ids, &split(&grid, parts, p));
            }
        }
        Ok(())
    }

    #[test]
    fn a_writer_share_shrinks_part_zero_only() -> Result<()> {
        let grid = ChunkGrid::new(8164, 7440, 1024, 1024)?;
        assert!(check(&grid, 2, 0.0)[0].is_empty());
        assert!(check(&grid, 3, 0.0)[0].is_empty());
        let some = check(&grid, 2, 0.15);
        assert!(!some[0].is_empty() && some[0].len() < some[1].len() / 3);
        // More than an equal share is capped at it.
        assert_eq!(check(&grid, 4, 0.9), check(&grid, 4, 0.25));
        Ok(())
    }
}
