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
    let parts = parts.max(1) as u128;
    let total: u128 = grid.iter().map(|w| w.len() as u128).sum();
    let mut before = 0u128;
    let mut mine = Vec::new();
    for (i, w) in grid.iter().enumerate() {
        let len = w.len() as u128;
        // A chunk belongs to the part its middle pixel falls in.
        let owner = ((before + len / 2) * parts / total.max(1)).min(parts - 1);
        if owner == part as u128 {
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
