//! Layer 2, the runtime: how chunks are planned and run, on which machine resources.
//!
//! - [`grid`]: chunk grids over a raster (`ChunkGrid`, `iter_chunks`).
//! - [`resources`]: what this process may use (cores, memory, cgroup limits) and the
//!   [`PoolPlan`](resources::PoolPlan) derived from it.
//! - [`context`]: the one [`Runtime`] value (pool plan, progress, observer) built in one
//!   place and passed down; it starts every pool.
//! - `affinity` (crate-private, feature `mpi`): widening a thread's CPU affinity for the
//!   threads it starts (the writing rank's encoder).
//! - [`cancel`]: [`CancelToken`](cancel::CancelToken), a cooperative stop.
//! - [`progress`]: progress bars and lines.
//! - [`observe`]: the [`RunObserver`](observe::RunObserver) trait that profilers and the
//!   dashboard implement.
//! - [`exec`]: the executor (`batched_map`, `batched_for_each`, and the chunked runs of
//!   lazy arrays); user panics are caught quietly by the crate-private `panic` module.
//!
//! The runtime imports only `core` and `error`; its submodules depend one way (`exec` on
//! the others, `context` on `resources`, `progress` and `observe`, `resources` on the
//! crate-private cgroup parsers).

#[cfg(feature = "mpi")]
pub(crate) mod affinity;
pub mod cancel;
mod cgroup;
pub mod context;
pub mod exec;
pub mod grid;
pub mod observe;
pub(crate) mod panic;
pub mod progress;
pub mod resources;

pub use context::{Runtime, RuntimeBuilder};
