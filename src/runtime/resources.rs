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

use std::fmt;
use std::num::NonZeroUsize;

use super::cgroup;
use crate::core::fmt::{html_table, human_bytes};
use crate::error::{Error, Result};

const MIB: u64 = 1 << 20;

/// Environment variable that overrides the number of threads.
const THREADS_VAR: &str = "RASTERLAB_THREADS";
/// Environment variable that overrides the memory budget.
const MEMORY_VAR: &str = "RASTERLAB_MEMORY";

/// Most worker threads per usable core a plan accepts (see [`PoolPlan::with_threads`]).
pub const MAX_THREADS_PER_CORE: usize = 8;

fn check_thread_cap(what: &'static str, n: usize, usable_cores: usize) -> Result<()> {
    let cap = MAX_THREADS_PER_CORE * usable_cores.max(1);
    if n > cap {
        return Err(Error::invalid(
            what,
            format!(
                "{n} threads on {usable_cores} usable core(s): allowed 1 to {cap} \
                 ({MAX_THREADS_PER_CORE} per usable core)"
            ),
        ));
    }
    Ok(())
}

/// What this process may really use.
///
/// Every field is filled by [`Resources::detect`]; fields that cannot be read on this
/// platform (no `/proc`, no cgroup) are `None`.
///
/// ```
/// let res = rasterlab::runtime::resources::Resources::detect();
/// assert!(res.usable_cores >= 1);
/// println!("{res}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// Cores this process can keep busy: the minimum of the affinity set, the cgroup
    /// quota rounded up and `available_parallelism`; at least 1.
    pub usable_cores: usize,
    /// Size of the CPU affinity set (`Cpus_allowed_list` in `/proc/self/status`).
    pub affinity_cores: Option<usize>,
    /// cgroup CPU quota in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`),
    /// the tightest along the path to the root; `None` when unlimited.
    pub cgroup_cpu_quota: Option<f64>,
    /// `std::thread::available_parallelism()`.
    pub available_parallelism: usize,
    /// Logical cores of the host (sysinfo).
    pub logical_cores: usize,
    /// Physical cores of the host (sysinfo), when known.
    pub physical_cores: Option<usize>,
    /// Host RAM in bytes (sysinfo).
    pub total_memory: u64,
    /// Host memory available for reuse in bytes (sysinfo, `MemAvailable`).
    pub available_memory: u64,
    /// cgroup memory limit in bytes (v2 `memory.max`, v1 `memory.limit_in_bytes`), the
    /// tightest along the path to the root; `None` when unlimited.
    pub cgroup_memory_limit: Option<u64>,
    /// Bytes this process can still allocate: `available_memory`, capped by the cgroup
    /// limit minus the cgroup's current working set when a limit is known.
    pub usable_memory: u64,
}

impl Resources {
    /// Reads affinity, cgroup limits and host figures. Never fails: what cannot be read is
    /// `None` (or falls back to `available_parallelism` for core counts).
    ///
    /// ```
    /// let res = rasterlab::runtime::resources::Resources::detect();
    /// assert!(res.usable_cores <= res.available_parallelism);
    /// ```
    pub fn detect() -> Resources {
        let available_parallelism =
            std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let affinity_cores = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| cgroup::parse_status_cpus_allowed(&status));
        let limits = cgroup::detect();
        let host = host_figures();

        let usable_cores = usable_cores(affinity_cores, limits.cpu_quota, available_parallelism);
        let logical_cores = if host.logical_cores == 0 {
            available_parallelism
        } else {
            host.logical_cores
        };
        // An unreadable MemAvailable (0) must not hide a known cgroup headroom.
        let usable_memory = match (host.available_memory, limits.memory_headroom) {
            (0, Some(headroom)) => headroom,
            (available, Some(headroom)) => available.min(headroom),
            (available, None) => available,
        };
        Resources {
            usable_cores,
            affinity_cores,
            cgroup_cpu_quota: limits.cpu_quota,
            available_parallelism,
            logical_cores,
            physical_cores: host.physical_cores,
            total_memory: host.total_memory,
            available_memory: host.available_memory,
            cgroup_memory_limit: limits.memory_limit,
            usable_memory,
        }
    }

    /// The suggested pool for these resources; same as [`PoolPlan::from_resources`].
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::Resources::detect().plan()?;
    /// assert!(plan.threads() >= 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn plan(&self) -> Result<PoolPlan> {
        PoolPlan::from_resources(self)
    }

    /// An HTML table of the figures, the reasoning behind the usable ones and the
    /// suggested pool.
    ///
    /// ```
    /// let html = rasterlab::runtime::resources::Resources::detect().to_html();
    /// assert!(html.contains("usable cores"));
    /// ```
    pub fn to_html(&self) -> String {
        html_table("Resources", &self.rows())
    }

    /// `(name, value)` rows shared by the HTML and terminal renderings.
    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            (
                "usable cores",
                format!("{} ({})", self.usable_cores, self.core_reason()),
            ),
            (
                "affinity cores",
                self.affinity_cores.map_or_else(
                    || "unknown".to_string(),
                    |n| format!("{n} (Cpus_allowed_list)"),
                ),
            ),
            (
                "cgroup cpu quota",
                self.cgroup_cpu_quota
                    .map_or_else(|| "none".to_string(), |q| format!("{q} cores")),
            ),
            (
                "available parallelism",
                self.available_parallelism.to_string(),
            ),
            ("logical cores", format!("{} (host)", self.logical_cores)),
            (
                "physical cores",
                self.physical_cores
                    .map_or_else(|| "unknown".to_string(), |n| format!("{n} (host)")),
            ),
            (
                "total memory",
                format!("{} (host)", human_bytes(self.total_memory)),
            ),
            ("available memory", human_bytes(self.available_memory)),
            (
                "cgroup memory limit",
                self.cgroup_memory_limit
                    .map_or_else(|| "none".to_string(), human_bytes),
            ),
            (
                "usable memory",
                format!(
                    "{} ({})",
                    human_bytes(self.usable_memory),
                    self.memory_reason()
                ),
            ),
        ];
        match self.plan() {
            Ok(plan) => {
                rows.push(("suggested threads", plan.threads().to_string()));
                rows.push(("suggested memory budget", human_bytes(plan.memory_budget())));
                rows.push(("suggested chunk bytes", human_bytes(plan.chunk_bytes())));
            }
            Err(err) => rows.push(("suggested plan", err.to_string())),
        }
        rows
    }

    /// Why `usable_cores` has its value, e.g. `min of affinity 2, quota 1.5 -> 2, available_parallelism 2`.
    fn core_reason(&self) -> String {
        let affinity = self
            .affinity_cores
            .map_or_else(|| "unknown".to_string(), |n| n.to_string());
        let quota = self.cgroup_cpu_quota.map_or_else(
            || "none".to_string(),
            |q| format!("{q} -> {}", cgroup::cores_for_quota(q)),
        );
        format!(
            "min of affinity {affinity}, cgroup quota {quota}, available_parallelism {}",
            self.available_parallelism
        )
    }

    /// Why `usable_memory` has its value.
    fn memory_reason(&self) -> String {
        match self.cgroup_memory_limit {
            Some(limit) => format!(
                "available memory capped by cgroup limit {} minus its usage",
                human_bytes(limit)
            ),
            None => "available memory, no cgroup limit".to_string(),
        }
    }
}

crate::core::fmt::html_repr!(Resources);

impl fmt::Display for Resources {
    /// A multi-line, aligned report for the terminal.
    ///
    /// ```
    /// let text = rasterlab::runtime::resources::Resources::detect().to_string();
    /// assert!(text.starts_with("Resources"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_aligned(f, "Resources", &self.rows())
    }
}

/// Writes a title and `name  value` lines with the values aligned.
fn write_aligned(f: &mut fmt::Formatter<'_>, title: &str, rows: &[(&str, String)]) -> fmt::Result {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    write!(f, "{title}")?;
    for (name, value) in rows {
        write!(f, "\n  {name:<width$}  {value}")?;
    }
    Ok(())
}

/// Host figures from sysinfo; zeros when sysinfo cannot read them.
struct HostFigures {
    logical_cores: usize,
    physical_cores: Option<usize>,
    total_memory: u64,
    available_memory: u64,
}

fn host_figures() -> HostFigures {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

    let kind = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    match System::new_with_specifics(kind) {
        Ok(sys) => HostFigures {
            logical_cores: sys.cpus().len(),
            physical_cores: System::physical_core_count().ok().filter(|&n| n > 0),
            total_memory: sys.total_memory(),
            available_memory: sys.available_memory(),
        },
        Err(_) => HostFigures {
            logical_cores: 0,
            physical_cores: None,
            total_memory: 0,
            available_memory: 0,
        },
    }
}

/// `min(affinity, ceil(quota), available_parallelism)`, at least 1.
fn usable_cores(
    affinity: Option<usize>,
    quota: Option<f64>,
    available_parallelism: usize,
) -> usize {
    let mut cores = available_parallelism;
    if let Some(n) = affinity {
        cores = cores.min(n);
    }
    if let Some(q) = quota {
        cores = cores.min(cgroup::cores_for_quota(q));
    }
    cores.max(1)
}

/// Threads, memory budget and chunk size for one piece of work, with the reasons for each.
///
/// Build it with [`PoolPlan::detect`] or [`PoolPlan::from_resources`], adjust it with
/// [`with_threads`](PoolPlan::with_threads) and
/// [`with_memory_budget`](PoolPlan::with_memory_budget), then call
/// [`build_pool`](PoolPlan::build_pool) inside the call that does the work.
///
/// ```
/// use rasterlab::runtime::resources::PoolPlan;
///
/// # fn main() -> rasterlab::Result<()> {
/// let plan = PoolPlan::detect()?.with_threads(2)?.with_memory_budget(64 << 20)?;
/// assert_eq!(plan.chunk_bytes(), 16 << 20); // 64 MiB / (2 x 2 threads)
/// println!("{plan}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPlan {
    threads: usize,
    memory_budget: u64,
    chunk_bytes: u64,
    usable_cores: usize,
    usable_memory: u64,
    thread_notes: Vec<String>,
    memory_notes: Vec<String>,
    reasons: Vec<String>,
}

impl PoolPlan {
    /// Share of usable memory given to the chunks by default.
    ///
    /// Half, not dask's 75-95 %: GDAL's block cache (5 % of RAM by default), the output
    /// writer's queue, the kernel's page cache and the other cells of the notebook all
    /// live in the same process or machine.
    ///
    /// ```
    /// assert_eq!(rasterlab::runtime::resources::PoolPlan::DEFAULT_MEMORY_FRACTION, 0.5);
    /// ```
    pub const DEFAULT_MEMORY_FRACTION: f64 = 0.5;

    /// Smallest chunk size: below about 1 MiB per-task overhead dominates (64-pixel chunks
    /// ran 8x slower than 256-pixel ones here).
    ///
    /// ```
    /// assert_eq!(rasterlab::runtime::resources::PoolPlan::MIN_CHUNK_BYTES, 1 << 20);
    /// ```
    pub const MIN_CHUNK_BYTES: u64 = MIB;

    /// Largest chunk size: bigger chunks add latency and memory spikes, not throughput.
    ///
    /// ```
    /// assert_eq!(rasterlab::runtime::resources::PoolPlan::MAX_CHUNK_BYTES, 256 << 20);
    /// ```
    pub const MAX_CHUNK_BYTES: u64 = 256 * MIB;

    /// Budget used when the usable memory is unknown (reported as 0).
    const FALLBACK_BUDGET: u64 = 256 * MIB;

    /// The plan for `res`, honouring `RASTERLAB_THREADS` and `RASTERLAB_MEMORY`.
    ///
    /// `RASTERLAB_MEMORY` takes anything [`parse_bytes`] accepts; an empty variable counts
    /// as unset. A value that does not parse is an [`Error::Invalid`] naming the variable.
    ///
    /// ```
    /// use rasterlab::runtime::resources::{PoolPlan, Resources};
    ///
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = PoolPlan::from_resources(&Resources::detect())?;
    /// assert!(!plan.reasons().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_resources(res: &Resources) -> Result<PoolPlan> {
        let threads = std::env::var(THREADS_VAR).ok();
        let memory = std::env::var(MEMORY_VAR).ok();
        PoolPlan::from_resources_with_env(res, threads.as_deref(), memory.as_deref())
    }

    /// [`from_resources`](PoolPlan::from_resources) with the values of
    /// `RASTERLAB_THREADS` and `RASTERLAB_MEMORY` passed in rather than read from the
    /// process environment (which is global and racy in tests).
    ///
    /// ```
    /// use rasterlab::runtime::resources::{PoolPlan, Resources};
    ///
    /// # fn main() -> rasterlab::Result<()> {
    /// let res = Resources::detect();
    /// let plan = PoolPlan::from_resources_with_env(&res, Some("3"), Some("512MiB"))?;
    /// assert_eq!((plan.threads(), plan.memory_budget()), (3, 512 << 20));
    /// assert!(PoolPlan::from_resources_with_env(&res, Some("many"), None).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_resources_with_env(
        res: &Resources,
        threads: Option<&str>,
        memory: Option<&str>,
    ) -> Result<PoolPlan> {
        let usable_cores = res.usable_cores.max(1);
        let mut plan = PoolPlan {
            threads: usable_cores,
            memory_budget: 0,
            chunk_bytes: 0,
            usable_cores,
            usable_memory: res.usable_memory,
            thread_notes: Vec::new(),
            memory_notes: Vec::new(),
            reasons: Vec::new(),
        };

        match threads.map(str::trim).filter(|v| !v.is_empty()) {
            Some(value) => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        Error::invalid(
                            THREADS_VAR,
                            format!("{value:?} is not a positive whole number"),
                        )
                    })?;
                check_thread_cap(THREADS_VAR, n, usable_cores)?;
                plan.threads = n;
                plan.thread_notes = vec![format!(
                    "threads = {n} ({THREADS_VAR}={value} overrides {usable_cores} usable cores)"
                )];
                plan.note_oversubscription();
            }
            None => {
                plan.thread_notes = vec![format!(
                    "threads = {usable_cores} (usable cores: {})",
                    res.core_reason()
                )];
            }
        }

        match memory.map(str::trim).filter(|v| !v.is_empty()) {
            Some(value) => {
                let bytes = parse_bytes(value).map_err(|err| {
                    let why = match err {
                        Error::Invalid { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    Error::invalid(
                        MEMORY_VAR,
                        format!("{why}; use e.g. 512MiB, 2GB or 1073741824"),
                    )
                })?;
                if bytes == 0 {
                    return Err(Error::invalid(
                        MEMORY_VAR,
                        format!("{value:?} is zero bytes"),
                    ));
                }
                plan.memory_budget = bytes;
                plan.memory_notes = vec![format!(
                    "{MEMORY_VAR}={value} overrides the default budget ({:.0}% of usable {})",
                    Self::DEFAULT_MEMORY_FRACTION * 100.0,
                    human_bytes(res.usable_memory)
                )];
                plan.note_overcommit();
            }
            None if res.usable_memory > 0 => {
                plan.memory_budget =
                    ((res.usable_memory as f64 * Self::DEFAULT_MEMORY_FRACTION) as u64).max(1);
                plan.memory_notes = vec![format!(
                    "memory budget = {:.0}% of usable {} ({})",
                    Self::DEFAULT_MEMORY_FRACTION * 100.0,
                    human_bytes(res.usable_memory),
                    res.memory_reason()
                )];
            }
            None => {
                plan.memory_budget = Self::FALLBACK_BUDGET;
                plan.memory_notes = vec![format!(
                    "memory budget = {} (usable memory unknown; set {MEMORY_VAR})",
                    human_bytes(Self::FALLBACK_BUDGET)
                )];
            }
        }

        plan.refresh();
        Ok(plan)
    }

    /// [`Resources::detect`] then [`from_resources`](PoolPlan::from_resources).
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?;
    /// assert!(plan.memory_budget() > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn detect() -> Result<PoolPlan> {
        PoolPlan::from_resources(&Resources::detect())
    }

    /// Uses `n` threads; 0 is an [`Error::Invalid`]. More threads than usable cores is
    /// allowed (I/O-bound work may gain) and noted in [`reasons`](PoolPlan::reasons),
    /// up to [`MAX_THREADS_PER_CORE`] per usable core; more is an [`Error::Invalid`]
    /// (thousands of threads only add memory and switching, and can stall the machine).
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?;
    /// assert_eq!(plan.clone().with_threads(3)?.threads(), 3);
    /// assert!(plan.clone().with_threads(0).is_err());
    /// assert!(plan.with_threads(40_000).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_threads(mut self, n: usize) -> Result<PoolPlan> {
        if n == 0 {
            return Err(Error::invalid(
                "thread count",
                "0 threads cannot run anything; use 1 or more",
            ));
        }
        check_thread_cap("thread count", n, self.usable_cores)?;
        self.threads = n;
        self.thread_notes = vec![format!(
            "threads = {n} (set with with_threads; {} usable cores)",
            self.usable_cores
        )];
        self.note_oversubscription();
        self.refresh();
        Ok(self)
    }

    /// Uses a memory budget of `bytes` and recomputes the chunk size; 0 is an
    /// [`Error::Invalid`].
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?.with_memory_budget(1 << 30)?;
    /// assert_eq!(plan.memory_budget(), 1 << 30);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_memory_budget(mut self, bytes: u64) -> Result<PoolPlan> {
        if bytes == 0 {
            return Err(Error::invalid(
                "memory budget",
                "0 bytes cannot hold a chunk",
            ));
        }
        self.memory_budget = bytes;
        self.memory_notes = vec![format!(
            "memory budget = {} (set with with_memory_budget; usable {})",
            human_bytes(bytes),
            human_bytes(self.usable_memory)
        )];
        self.note_overcommit();
        self.refresh();
        Ok(self)
    }

    /// Number of worker threads.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// assert!(rasterlab::runtime::resources::PoolPlan::detect()?.threads() >= 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Bytes the chunks in flight may use together.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// assert!(rasterlab::runtime::resources::PoolPlan::detect()?.memory_budget() > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget
    }

    /// Target bytes per chunk: `memory_budget / (2 * threads)` (dask's "about two chunks
    /// in memory per active thread"), clamped to
    /// [`MIN_CHUNK_BYTES`](PoolPlan::MIN_CHUNK_BYTES)..=[`MAX_CHUNK_BYTES`](PoolPlan::MAX_CHUNK_BYTES).
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?.with_threads(4)?;
    /// assert_eq!(plan.clone().with_memory_budget(80 << 20)?.chunk_bytes(), 10 << 20);
    /// assert_eq!(plan.with_memory_budget(1024)?.chunk_bytes(), 1 << 20);
    /// # Ok(())
    /// # }
    /// ```
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// One line per decision, e.g. `threads = 2 (usable cores: ...)`.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?;
    /// assert!(plan.reasons()[0].starts_with("threads = "));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// Builds a new rayon pool with [`threads`](PoolPlan::threads) workers named
    /// `rasterlab-{i}`.
    ///
    /// Build it inside the call that uses it and let it drop: evcxr gives every notebook
    /// cell fresh statics, and a pool kept from an earlier cell panics when used.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let plan = rasterlab::runtime::resources::PoolPlan::detect()?.with_threads(2)?;
    /// let pool = plan.build_pool()?;
    /// let name = pool.install(|| std::thread::current().name().map(str::to_owned));
    /// assert!(name.is_some_and(|n| n.starts_with("rasterlab-")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn build_pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("rasterlab-{i}"))
            .build()
            .map_err(|err| {
                Error::invalid(
                    "thread pool",
                    format!("cannot start {} threads: {err}", self.threads),
                )
            })
    }

    /// An HTML table of threads, budget, chunk size and the reasons.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let html = rasterlab::runtime::resources::PoolPlan::detect()?.to_html();
    /// assert!(html.contains("chunk bytes"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_html(&self) -> String {
        html_table("Pool plan", &self.rows())
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("threads", self.threads.to_string()),
            ("memory budget", human_bytes(self.memory_budget)),
            ("chunk bytes", human_bytes(self.chunk_bytes)),
        ];
        rows.extend(self.reasons.iter().map(|r| ("why", r.clone())));
        rows
    }

    fn note_oversubscription(&mut self) {
        if self.threads > self.usable_cores {
            self.thread_notes.push(format!(
                "note: {} threads on {} usable cores oversubscribe the CPU",
                self.threads, self.usable_cores
            ));
        }
    }

    fn note_overcommit(&mut self) {
        if self.usable_memory > 0 && self.memory_budget > self.usable_memory {
            self.memory_notes.push(format!(
                "note: budget {} exceeds usable memory {}; expect swapping or the OOM killer",
                human_bytes(self.memory_budget),
                human_bytes(self.usable_memory)
            ));
        }
    }

    /// Recomputes the chunk size and the reason lines after a change.
    fn refresh(&mut self) {
        let per_chunk = self.memory_budget / (self.threads as u64).saturating_mul(2).max(1);
        self.chunk_bytes = per_chunk.clamp(Self::MIN_CHUNK_BYTES, Self::MAX_CHUNK_BYTES);
        let clamp_note = if per_chunk < Self::MIN_CHUNK_BYTES {
            ", raised to the 1 MiB floor"
        } else if per_chunk > Self::MAX_CHUNK_BYTES {
            ", capped at 256 MiB"
        } else {
            ""
        };
        self.reasons = self
            .thread_notes
            .iter()
            .chain(&self.memory_notes)
            .cloned()
            .chain(std::iter::once(format!(
                "chunk bytes = {} (budget / (2 x {} threads): two chunks in memory per active thread{clamp_note})",
                human_bytes(self.chunk_bytes),
                self.threads
            )))
            .collect();
    }
}

crate::core::fmt::html_repr!(PoolPlan);

impl fmt::Display for PoolPlan {
    /// A multi-line, aligned report for the terminal.
    ///
    /// ```
    /// # fn main() -> rasterlab::Result<()> {
    /// let text = rasterlab::runtime::resources::PoolPlan::detect()?.to_string();
    /// assert!(text.starts_with("Pool plan"));
    /// # Ok(())
    /// # }
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_aligned(f, "Pool plan", &self.rows())
    }
}

/// Parses a byte size: a number (fractions allowed) and an optional, case-insensitive unit.
///
/// Units with an `i` are binary (`KiB`, `MiB`, `GiB`, `TiB`), all others decimal
/// (`K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB`), as in dask's `parse_bytes`; so `64k` is
/// 64 000 bytes. `B` or no unit means bytes. Spaces between number and unit are allowed;
/// fractional results are rounded to the nearest byte.
///
/// ```
/// use rasterlab::runtime::resources::parse_bytes;
///
/// # fn main() -> rasterlab::Result<()> {
/// assert_eq!(parse_bytes("512MiB")?, 512 << 20);
/// assert_eq!(parse_bytes("2GB")?, 2_000_000_000);
/// assert_eq!(parse_bytes("1.5 gib")?, 3 << 29);
/// assert_eq!(parse_bytes("64k")?, 64_000);
/// assert_eq!(parse_bytes("1073741824")?, 1 << 30);
/// assert!(parse_bytes("12 parsecs").is_err());
/// # Ok(())
/// # }
/// ```
pub fn parse_bytes(s: &str) -> Result<u64> {
    let bad = |why: &str| Error::invalid("byte size", format!("{s:?} {why}"));
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(bad("does not start with a number"));
    }
    let multiplier = byte_unit(unit.trim())
        .ok_or_else(|| bad("has an unknown unit (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)"))?;
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| bad("is too large"));
    }
    let value: f64 = number.parse().map_err(|_| bad("is not a number"))?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad("is too large"));
    }
    Ok(bytes as u64)
}

/// Bytes per unit, or `None` for an unknown unit.
fn byte_unit(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_cores_takes_the_tightest_fence() {
        assert_eq!(usable_cores(Some(7), Some(1.5), 16), 2);
        assert_eq!(usable_cores(Some(1), None, 16), 1);
        assert_eq!(usable_cores(None, None, 4), 4);
        assert_eq!(usable_cores(None, Some(0.5), 4), 1);
        assert_eq!(usable_cores(Some(0), None, 0), 1);
    }
}
