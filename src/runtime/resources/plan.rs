//! The pool plan: threads, memory budget and chunk size for one piece of work, derived
//! from [`Resources`] and `RASTERLAB_THREADS` / `RASTERLAB_MEMORY`, with the reasons.

use std::fmt;

use super::{Resources, parse_bytes, write_aligned};
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
