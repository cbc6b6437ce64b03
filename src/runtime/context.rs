//! The one runtime value: the pool plan (threads, memory budget), how progress is shown
//! and who observes the runs. Built in one place ([`RuntimeBuilder::build`], which is
//! the only place that detects the machine's resources for a run) and passed down to
//! whatever runs in parallel; [`Runtime::pool`] is the only place that starts a pool.
//!
//! A `Runtime` holds no threads: a pool is started for each call that uses it and
//! dropped at its end, because evcxr gives every notebook cell fresh statics and a pool
//! kept from an earlier cell panics when used. Nothing runs on rayon's global pool.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::runtime::observe::{RunObserver, TaskKind};
use crate::runtime::progress::ProgressMode;
use crate::runtime::resources::PoolPlan;

/// Threads, memory budget, progress and observers of a computation, decided once.
///
/// ```
/// use rasterlab::prelude::*;
/// let rt = Runtime::builder().threads(2).memory(256 << 20).progress(ProgressMode::Silent).build()?;
/// assert_eq!((rt.threads(), rt.memory_budget()), (2, 256 << 20));
/// let pool = rt.pool()?;
/// assert_eq!(pool.install(rayon::current_num_threads), 2);
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a runtime does nothing until passed to a computation"]
pub struct Runtime {
    plan: PoolPlan,
    progress: ProgressMode,
    observer: Option<Arc<dyn RunObserver>>,
}

/// Builds a [`Runtime`]: setters that cannot fail, checked together by
/// [`build`](RuntimeBuilder::build).
#[derive(Clone, Default)]
#[must_use = "a builder does nothing until .build()"]
pub struct RuntimeBuilder {
    plan: Option<PoolPlan>,
    threads: Option<usize>,
    memory: Option<u64>,
    progress: Option<ProgressMode>,
    observer: Option<Arc<dyn RunObserver>>,
}

impl RuntimeBuilder {
    /// Starts from `plan` instead of detecting the machine ([`PoolPlan::detect`]).
    pub fn plan(mut self, plan: &PoolPlan) -> Self {
        self.plan = Some(plan.clone());
        self
    }

    /// Uses `n` worker threads (checked by [`build`](RuntimeBuilder::build) as
    /// [`PoolPlan::with_threads`] does).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// `threads` when given, else leaves the thread count as it is.
    pub(crate) fn threads_opt(mut self, n: Option<usize>) -> Self {
        if n.is_some() {
            self.threads = n;
        }
        self
    }

    /// Uses a memory budget of `bytes` (checked by [`build`](RuntimeBuilder::build) as
    /// [`PoolPlan::with_memory_budget`] does).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// `bytes` when given, else leaves the budget as it is.
    pub(crate) fn memory_opt(mut self, bytes: Option<u64>) -> Self {
        if bytes.is_some() {
            self.memory = bytes;
        }
        self
    }

    /// How runs show their progress (default [`ProgressMode::Auto`]).
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = Some(mode);
        self
    }

    /// Reports every run and task to `observer` (a profiler, the dashboard, a test).
    pub fn observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The terminal check: detects the machine unless a plan was given, then applies the
    /// thread count and memory budget. Errors: [`Error::Invalid`](crate::Error::Invalid)
    /// for 0 threads, too many threads or a zero budget, and what
    /// [`PoolPlan::detect`] refuses (a malformed `RASTERLAB_THREADS`/`RASTERLAB_MEMORY`).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// assert!(Runtime::builder().threads(0).build().is_err());
    /// assert!(Runtime::builder().memory(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<Runtime> {
        let mut plan = match self.plan {
            Some(plan) => plan,
            None => PoolPlan::detect()?,
        };
        if let Some(n) = self.threads {
            plan = plan.with_threads(n)?;
        }
        if let Some(bytes) = self.memory {
            plan = plan.with_memory_budget(bytes)?;
        }
        Ok(Runtime {
            plan,
            progress: self.progress.unwrap_or(ProgressMode::Auto),
            observer: self.observer,
        })
    }
}

impl Runtime {
    /// A builder starting from the machine's resources.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// What this process may use: [`PoolPlan::detect`] (honouring `RASTERLAB_THREADS` and
    /// `RASTERLAB_MEMORY`), progress [`ProgressMode::Auto`], no observer.
    ///
    /// ```
    /// let rt = rasterlab::runtime::Runtime::detect()?;
    /// assert!(rt.threads() >= 1 && rt.memory_budget() > 0);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn detect() -> Result<Runtime> {
        Runtime::builder().build()
    }

    /// A runtime running on `plan` as it is, progress [`ProgressMode::Auto`], no observer.
    pub fn from_plan(plan: PoolPlan) -> Runtime {
        Runtime {
            plan,
            progress: ProgressMode::Auto,
            observer: None,
        }
    }

    /// A builder holding this runtime's settings, to change some of them.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let rt = Runtime::builder().threads(2).build()?;
    /// assert_eq!(rt.to_builder().threads(1).build()?.threads(), 1);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_builder(&self) -> RuntimeBuilder {
        RuntimeBuilder {
            plan: Some(self.plan.clone()),
            threads: None,
            memory: None,
            progress: Some(self.progress),
            observer: self.observer.clone(),
        }
    }

    /// The same runtime showing progress as `mode`.
    pub fn with_progress(mut self, mode: ProgressMode) -> Runtime {
        self.progress = mode;
        self
    }

    /// The same runtime reporting to `observer` when one is given.
    pub(crate) fn with_observer(mut self, observer: Option<Arc<dyn RunObserver>>) -> Runtime {
        if observer.is_some() {
            self.observer = observer;
        }
        self
    }

    /// The pool plan: threads, memory budget, chunk bytes and why.
    pub fn plan(&self) -> &PoolPlan {
        &self.plan
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.plan.threads()
    }

    /// Bytes the chunks in flight may use together.
    pub fn memory_budget(&self) -> u64 {
        self.plan.memory_budget()
    }

    /// How runs show their progress.
    pub fn progress(&self) -> ProgressMode {
        self.progress
    }

    /// Who observes the runs, if anyone.
    pub fn observer(&self) -> Option<&dyn RunObserver> {
        self.observer.as_deref()
    }

    /// Starts a pool of [`threads`](Runtime::threads) workers named `rasterlab-{i}`, for
    /// one call: drop it at the call's end (see the module notes).
    pub fn pool(&self) -> Result<rayon::ThreadPool> {
        self.plan.build_pool()
    }

    /// Runs `f` on a pool of this runtime, for the parallel passes over data in memory
    /// (prediction, metrics, standardizing): its rayon iterators use that pool. An
    /// observer sees one run named `label` of one compute task, reported from a worker.
    pub(crate) fn install<R: Send>(&self, label: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
        let pool = self.pool()?;
        let threads = pool.current_num_threads();
        Ok(pool.install(|| {
            let _run = self.observer().map(|o| o.begin_run(threads, label, 1));
            let start = Instant::now();
            let out = f();
            if let Some(o) = self.observer() {
                o.task(TaskKind::Compute, 0, start, Instant::now());
            }
            out
        }))
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("threads", &self.plan.threads())
            .field("memory_budget", &self.plan.memory_budget())
            .field("progress", &self.progress)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("plan", &self.plan.is_some())
            .field("threads", &self.threads)
            .field("memory", &self.memory)
            .field("progress", &self.progress)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}
