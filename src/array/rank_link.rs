//! How the processes (ranks) of a shared run talk, and what each takes of its node: the
//! interface `crate::distributed` implements over MPI (feature `mpi`), so that the array
//! layer runs shared saves and maps without knowing MPI.

use crate::error::{Error, Result};
use crate::runtime::grid::ChunkGrid;
use crate::runtime::resources::PoolPlan;

/// A rank's part of its node: `plan`'s threads (or the launcher's `cpus_per_rank`) and
/// memory budget divided among the ranks on the node, each unless the caller `set` it.
pub(crate) fn share_of_node(
    mut plan: PoolPlan,
    link: &dyn RankLink,
    threads_set: bool,
    memory_set: bool,
) -> Result<PoolPlan> {
    let share = link.ranks_on_node().max(1);
    if !threads_set {
        let threads = link
            .cpus_per_rank()
            .unwrap_or_else(|| (plan.threads() / share).max(1));
        plan = plan.with_threads(threads)?;
    }
    if !memory_set {
        let budget = (plan.memory_budget() / share as u64).max(1);
        plan = plan.with_memory_budget(budget)?;
    }
    Ok(plan)
}

/// Fails unless every rank cut `grid` with the same chunk size (the memory budget sets
/// it unless given, and ranks may have different memory). A collective.
pub(crate) fn same_grid(link: &dyn RankLink, grid: &ChunkGrid) -> Result<()> {
    let (cw, ch) = grid.chunk_size();
    let sizes = link.all_gather(((cw as u64) << 32) | ch as u64)?;
    if sizes.iter().any(|&s| s != sizes[0]) {
        return Err(Error::invalid(
            "chunk size",
            format!(
                "the ranks chose different chunk sizes ({} on rank 0, {cw} x {ch} on rank {}) because their memory differs: give one with .chunks(n) / --chunks",
                pair(sizes[0]),
                link.rank()
            ),
        ));
    }
    Ok(())
}

/// What arrived at the writing rank.
pub enum Incoming {
    /// A computed chunk: its index in the grid and its values (bands x pixels).
    Chunk {
        /// Sending rank.
        rank: usize,
        /// Chunk index in the grid.
        chunk: usize,
        /// `bands x window` values, band-major.
        data: Vec<f32>,
    },
    /// A rank failed; the text names the chunk.
    Failed {
        /// The failed rank.
        rank: usize,
        /// Its error, as text.
        message: String,
    },
}

/// How the ranks of a shared save talk: implemented over MPI by `crate::distributed`.
/// Rank 0 writes; every call is made from the thread that runs the save.
pub trait RankLink {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// How many ranks share the save.
    fn ranks(&self) -> usize;
    /// How many ranks share this rank's machine (they split its cores and memory).
    fn ranks_on_node(&self) -> usize;
    /// Cores this rank was given by the launcher, if it says (`SLURM_CPUS_PER_TASK`).
    fn cpus_per_rank(&self) -> Option<usize>;
    /// `value` of every rank, by rank (a collective: every rank calls it).
    fn all_gather(&self, value: u64) -> Result<Vec<u64>>;
    /// Sends a chunk to rank 0; returns once rank 0 has started receiving it.
    fn send_chunk(&self, chunk: usize, data: &[f32]) -> Result<()>;
    /// Tells rank 0 that this rank failed (`message` names the chunk).
    fn send_failure(&self, message: &str) -> Result<()>;
    /// On rank 0: a message that has arrived, if any, without waiting.
    fn poll(&self) -> Result<Option<Incoming>>;
    /// Waits for every rank (a collective).
    fn barrier(&self);
}

fn pair(packed: u64) -> String {
    format!("{} x {}", packed >> 32, packed & 0xffff_ffff)
}
