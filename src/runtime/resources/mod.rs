//! What this process may really use, and the pool plan derived from it.
//!
//! `sysinfo` and the core count of the host describe the machine, not the notebook kernel:
//! a container, a SLURM allocation or `taskset` fences a process with a CPU affinity set
//! and cgroup quotas. Like dask's advice to use `os.sched_getaffinity` rather than
//! `cpu_count`, [`Resources::detect`] reads those fences and [`PoolPlan`] sizes the rayon
//! pool, the memory budget and the chunk size from what is left.
//!
//! ```
//! use rasterlab::runtime::resources::{PoolPlan, Resources};
//!
//! # fn main() -> rasterlab::Result<()> {
//! let res = Resources::detect();
//! let plan = PoolPlan::from_resources(&res)?.with_threads(2)?;
//! let pool = plan.build_pool()?;
//! assert_eq!(pool.current_num_threads(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! | file | what |
//! |---|---|
//! | `detect` | [`Resources`]: cores and memory this process may use (affinity, cgroup, host) |
//! | `plan` | [`PoolPlan`]: threads, memory budget and chunk size derived from them |
//! | `bytes` | [`parse_bytes`]: byte sizes such as `512MiB` (`RASTERLAB_MEMORY`, `--memory`) |

mod bytes;
mod detect;
mod plan;

pub use bytes::parse_bytes;
pub use detect::Resources;
pub use plan::{MAX_THREADS_PER_CORE, PoolPlan};

use std::fmt;

/// Writes a title and `name  value` lines with the values aligned.
fn write_aligned(f: &mut fmt::Formatter<'_>, title: &str, rows: &[(&str, String)]) -> fmt::Result {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    write!(f, "{title}")?;
    for (name, value) in rows {
        write!(f, "\n  {name:<width$}  {value}")?;
    }
    Ok(())
}
