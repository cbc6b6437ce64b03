//! Diagnostics in the spirit of dask's `Profiler` and `ResourceProfiler`: what every worker
//! thread did and when, and how busy the CPU and how large the memory were meanwhile.
//!
//! Both are values the user holds and passes in (evcxr resets every static in each notebook
//! cell, so nothing here is global):
//!
//! * [`Profiler`] is a cheap, cloneable handle. Give it to a computation with
//!   [`Save::observe`](crate::array::Save::observe) or
//!   [`LazyArray::observe`](crate::array::LazyArray::observe): every chunk
//!   then records a *read*, a *compute* and a *write* task (start, end, worker thread,
//!   chunk id), and CPU % and RSS are sampled every [`Profiler::sample_every`] while the
//!   computation runs.
//! * [`ResourceProfiler`] samples CPU % and RSS of this process on a background thread it
//!   owns, from [`ResourceProfiler::start`] until [`ResourceProfiler::stop`] or drop, around
//!   any code.
//!
//! Both render one figure with `plotters` (SVG backend: text is written as SVG `<text>`
//! elements, so no font files, fontconfig or freetype are needed): the task timeline, one
//! row per thread and one colour per kind, above CPU and memory lines on the same time
//! axis. In a notebook the value renders inline; [`Figure::save_svg`] writes a file.
//!
//! ```
//! use rasterlab::prelude::*;
//!
//! let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
//!     .with_band_names(["blue", "green", "red"])?;
//! let prof = Profiler::new();
//! let ndi = scene.norm_diff("green", "red")?.nodata(0.0).chunks(512)?;
//! ndi.threads(2).progress(ProgressMode::Silent).observe(&prof).compute()?;
//! let summary = prof.summary();
//! assert_eq!(summary.chunks, 16);
//! assert_eq!(summary.tasks, 3 * 16); // read, compute, write per chunk
//! assert!(prof.to_svg().contains("<svg"));
//! # Ok::<(), rasterlab::Error>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use plotters::prelude::*;

use crate::array::{LazyArray, Save};
use crate::core::fmt::human_bytes;
use crate::core::window::Window;
use crate::error::{Error, Result};
use crate::runtime::observe::{self, RunObserver};

mod cache;
mod figure;
mod resources;
mod sampler;

pub use cache::{CacheProfiler, CacheSummary, ChunkRead};
pub use figure::Figure;
use figure::render_svg;
pub use resources::ResourceProfiler;
// the dashboard's sampler thread reads the process through it
#[cfg(feature = "dashboard")]
pub(crate) use sampler::ProcessSampler;
// `TaskKind` lives in the runtime layer (`observe`), where the executor records tasks.
pub use crate::runtime::observe::TaskKind;

impl TaskKind {
    fn color(self) -> RGBColor {
        match self {
            TaskKind::Read => RGBColor(31, 119, 180),
            TaskKind::Compute => RGBColor(255, 127, 14),
            TaskKind::Write => RGBColor(44, 160, 44),
        }
    }
}

/// One recorded task; times are relative to the start of the first observed run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Task {
    /// What the task did.
    pub kind: TaskKind,
    /// Chunk index in the grid (row-major).
    pub chunk: usize,
    /// Worker thread index in the pool; `None` for the calling thread (the writer).
    pub thread: Option<usize>,
    /// MPI rank that ran the task: 0 outside a distributed run (feature `mpi`, where rank
    /// 0 gathers every rank's tasks for `--profile`).
    pub rank: usize,
    /// Start time.
    pub start: Duration,
    /// End time.
    pub end: Duration,
}

/// One resource sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Time of the sample (relative to the profiler's origin).
    pub time: Duration,
    /// CPU use of this process in percent of one core (200 = two busy cores).
    pub cpu_percent: f32,
    /// Resident set size of this process in bytes.
    pub rss_bytes: u64,
}

#[derive(Debug)]
struct Run {
    threads: usize,
    start: Duration,
    end: Option<Duration>,
    label: String,
    total: usize,
    done: usize,
}

/// Progress of the latest observed run, as a dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// What runs, e.g. `save out.tif` or `compute`.
    pub label: String,
    /// Chunks handed to the consumer so far.
    pub done: usize,
    /// Chunks in the run.
    pub total: usize,
    /// Worker threads.
    pub threads: usize,
    /// When the run started, on the profiler's time axis (see [`Task`]).
    pub start: Duration,
    /// Time since the run started (until its end once finished).
    pub elapsed: Duration,
    /// False while the run is going on.
    pub finished: bool,
    /// Runs this profiler has seen, this one included.
    pub runs: usize,
}

impl RunProgress {
    /// Chunks per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    /// Estimated time left at the current rate; `None` before the first chunk or after
    /// the end.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (!self.finished && self.done > 0 && rate > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / rate))
    }
}

#[derive(Debug)]
struct State {
    origin: Option<Instant>,
    tasks: Vec<Task>,
    reads: Vec<ChunkRead>,
    samples: Vec<Sample>,
    runs: Vec<Run>,
    sample_every: Option<Duration>,
}

/// Records the tasks of every computation it is passed to; see the [module docs](self).
///
/// Cloning is cheap and clones share one record, so a clone kept by a
/// [`Save`] writes into the user's profiler. The handle is `'static`
/// and safe to keep between notebook cells.
#[derive(Debug, Clone)]
pub struct Profiler {
    state: Arc<Mutex<State>>,
}

impl Default for Profiler {
    fn default() -> Self {
        Profiler::new()
    }
}

/// Totals over a profile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProfileSummary {
    /// Observed runs (saves, computes).
    pub runs: usize,
    /// Distinct chunks seen.
    pub chunks: usize,
    /// Recorded tasks.
    pub tasks: usize,
    /// Most worker threads of any run.
    pub threads: usize,
    /// From the first task start to the last task end.
    pub wall: Duration,
    /// Summed duration of read tasks.
    pub read: Duration,
    /// Summed duration of compute tasks.
    pub compute: Duration,
    /// Summed duration of write tasks.
    pub write: Duration,
    /// Resource samples taken.
    pub samples: usize,
    /// Mean CPU % over the samples.
    pub mean_cpu_percent: f32,
    /// Highest RSS sampled, in bytes.
    pub peak_rss_bytes: u64,
}

impl Profiler {
    /// Default interval between CPU/memory samples.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);

    /// An empty profiler that also samples CPU and memory every 0.25 s while an observed
    /// computation runs.
    pub fn new() -> Profiler {
        Profiler {
            state: Arc::new(Mutex::new(State {
                origin: None,
                tasks: Vec::new(),
                reads: Vec::new(),
                samples: Vec::new(),
                runs: Vec::new(),
                sample_every: Some(Self::DEFAULT_INTERVAL),
            })),
        }
    }

    /// Samples CPU and memory every `dt` during observed runs; `None` turns sampling off.
    /// A zero interval is an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let prof = rasterlab::profile::Profiler::new().sample_every(Some(Duration::from_millis(100)))?;
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn sample_every(self, dt: Option<Duration>) -> Result<Profiler> {
        if dt.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid("sampling interval", "must be above zero"));
        }
        self.lock().sample_every = dt;
        Ok(self)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the record inconsistent (pushes
        // only), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every task and sample (the next run starts a new time axis).
    pub fn reset(&self) {
        let mut st = self.lock();
        st.origin = None;
        st.tasks.clear();
        st.reads.clear();
        st.samples.clear();
        st.runs.clear();
    }

    /// What the observed runs read, chunk by chunk, and how often each source block was
    /// read (see [`CacheProfiler`]).
    pub fn cache(&self) -> CacheProfiler {
        // SAFETY: reads a process-wide integer of GDAL's block cache.
        let cache_max = unsafe { gdal_sys::GDALGetCacheMax64() }.max(0) as u64;
        CacheProfiler::new(self.lock().reads.clone(), cache_max)
    }

    /// Progress of the latest run (the one going on, if any): label, chunks done of
    /// total, elapsed time. `None` before the first observed run.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let prof = Profiler::new();
    /// assert!(prof.progress().is_none());
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// r.band("nir")?.chunks(128)?.progress(ProgressMode::Silent).observe(&prof).compute()?;
    /// let p = prof.progress().expect("one run");
    /// assert_eq!((p.label.as_str(), p.done, p.total, p.finished), ("compute", 20, 20, true));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn progress(&self) -> Option<RunProgress> {
        let st = self.lock();
        let now = st.origin.map(|o| o.elapsed()).unwrap_or_default();
        let run = st
            .runs
            .iter()
            .rev()
            .find(|r| r.end.is_none())
            .or(st.runs.last())?;
        Some(RunProgress {
            label: run.label.clone(),
            done: run.done,
            total: run.total,
            threads: run.threads,
            start: run.start,
            elapsed: run.end.unwrap_or(now).saturating_sub(run.start),
            finished: run.end.is_some(),
            runs: st.runs.len(),
        })
    }

    /// Time since the profiler's origin (the start of its first run), if it has one.
    pub fn now(&self) -> Option<Duration> {
        self.lock().origin.map(|o| o.elapsed())
    }

    /// The last tasks (at most `limit`) that ended at or after `since`, oldest first.
    /// Cheap on a long record: the scan stops at the first older task from the end.
    pub fn recent_tasks(&self, since: Duration, limit: usize) -> Vec<Task> {
        let st = self.lock();
        let mut out: Vec<Task> = st
            .tasks
            .iter()
            .rev()
            .take_while(|t| t.end >= since)
            .take(limit)
            .copied()
            .collect();
        out.reverse();
        out
    }

    /// A copy of the recorded tasks.
    pub fn tasks(&self) -> Vec<Task> {
        self.lock().tasks.clone()
    }

    /// A copy of the resource samples.
    pub fn samples(&self) -> Vec<Sample> {
        self.lock().samples.clone()
    }

    /// Totals: tasks, chunks, wall time, time per kind, CPU and peak memory.
    pub fn summary(&self) -> ProfileSummary {
        let st = self.lock();
        summarize(&st.tasks, &st.samples, &st.runs)
    }

    /// The figure: task timeline above CPU % and RSS on one time axis.
    pub fn visualize(&self) -> Figure {
        let st = self.lock();
        let summary = summarize(&st.tasks, &st.samples, &st.runs);
        let svg = render_svg(&st.tasks, &st.samples, true);
        Figure {
            svg,
            title: "Profile".into(),
            summary: summary_rows(&summary, true),
        }
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        self.visualize().svg
    }

    /// Writes the figure as an SVG file.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        self.visualize().save_svg(path)
    }

    /// HTML: the figure and a summary table.
    pub fn to_html(&self) -> String {
        self.visualize().to_html()
    }

    /// Renders inline in a notebook (evcxr).
    pub fn evcxr_display(&self) {
        self.visualize().evcxr_display();
    }
}

impl fmt::Display for Profiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())
    }
}

impl fmt::Display for ProfileSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Profile")?;
        for (name, value) in summary_rows(self, true) {
            writeln!(f, "  {name:<14} {value}")?;
        }
        Ok(())
    }
}

/// Values per task in a [`Profiler::rank_record`].
const RECORD_FIELDS: usize = 5;

impl Profiler {
    /// This profiler's tasks as plain numbers, for another process to merge with
    /// [`Profiler::add_rank_record`]: the wall-clock time of the origin (seconds since
    /// the Unix epoch), then per task its kind, chunk, thread (-1: the writer), start and
    /// end in seconds. Resource samples stay with their process.
    // Only the MPI gather calls these (feature `mpi`); tested in tests/mpi.rs.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn rank_record(&self) -> Vec<f64> {
        let st = self.lock();
        let origin = st.origin.map_or(0.0, unix_seconds_at);
        let mut out = Vec::with_capacity(1 + RECORD_FIELDS * st.tasks.len());
        out.push(origin);
        for t in &st.tasks {
            let kind = TaskKind::ALL.iter().position(|&k| k == t.kind).unwrap_or(0);
            out.extend([
                kind as f64,
                t.chunk as f64,
                t.thread.map_or(-1.0, |i| i as f64),
                t.start.as_secs_f64(),
                t.end.as_secs_f64(),
            ]);
        }
        out
    }

    /// Adds the tasks of `rank` recorded by another process's [`Profiler::rank_record`],
    /// moved onto this profiler's time axis by the difference of the two origins' wall
    /// clocks (one node's clock, or NTP-close clocks between nodes).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn add_rank_record(&self, rank: usize, record: &[f64]) {
        let Some((&their_origin, tasks)) = record.split_first() else {
            return;
        };
        let mut st = self.lock();
        let Some(origin) = st.origin else { return };
        let shift = their_origin - unix_seconds_at(origin);
        let at = |s: f64| Duration::from_secs_f64((s + shift).max(0.0));
        for t in tasks.chunks_exact(RECORD_FIELDS) {
            st.tasks.push(Task {
                kind: TaskKind::ALL
                    .get(t[0] as usize)
                    .copied()
                    .unwrap_or(TaskKind::Compute),
                chunk: t[1] as usize,
                thread: (t[2] >= 0.0).then_some(t[2] as usize),
                rank,
                start: at(t[3]),
                end: at(t[4]),
            });
        }
    }
}

/// Wall-clock seconds since the Unix epoch at `instant` (in the past).
fn unix_seconds_at(instant: Instant) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs_f64() - instant.elapsed().as_secs_f64()
}

impl RunObserver for Profiler {
    /// Marks the start of a computation named `label` of `total` chunks on `threads`
    /// workers; the returned guard marks its end (also on error) and stops resource
    /// sampling.
    fn begin_run(&self, threads: usize, label: &str, total: usize) -> observe::RunGuard {
        let (start, sampler) = {
            let mut st = self.lock();
            let now = Instant::now();
            let origin = *st.origin.get_or_insert(now);
            let start = now - origin;
            st.runs.push(Run {
                threads,
                start,
                end: None,
                label: label.to_string(),
                total,
                done: 0,
            });
            let sampler = st
                .sample_every
                .and_then(|dt| ResourceProfiler::start_at(dt, origin).ok());
            (start, sampler)
        };
        observe::RunGuard::new(ProfiledRun {
            profiler: self.clone(),
            sampler,
            start,
        })
    }

    /// Records one task that ran on the current thread from `start` to `end`.
    ///
    /// A compute task starts where the same thread's read of the same chunk ended, so a
    /// caller may time "read + compute" as one span after recording the read.
    fn task(&self, kind: TaskKind, chunk: usize, start: Instant, end: Instant) {
        let thread = rayon::current_thread_index();
        let mut st = self.lock();
        let origin = *st.origin.get_or_insert(start);
        let mut start = start.saturating_duration_since(origin);
        let end = end.saturating_duration_since(origin);
        if kind == TaskKind::Compute {
            let read = st
                .tasks
                .iter()
                .rev()
                .take(256)
                .find(|t| t.kind == TaskKind::Read && t.thread == thread && t.chunk == chunk);
            if let Some(read) = read {
                start = start.max(read.end).min(end);
            }
        }
        if kind == TaskKind::Write
            && let Some(run) = st.runs.iter_mut().rev().find(|r| r.end.is_none())
        {
            run.done += 1;
        }
        st.tasks.push(Task {
            kind,
            chunk,
            thread,
            rank: 0,
            start,
            end,
        });
    }

    /// Records what one chunk's read fetched: its window (in the source's pixel grid), the
    /// source's block size, the bands read and the decoded bytes; samples GDAL's block
    /// cache use.
    fn read(&self, chunk: usize, window: Window, block: (usize, usize), bands: usize, bytes: u64) {
        // SAFETY: reads a process-wide integer of GDAL's block cache.
        let cache_used = unsafe { gdal_sys::GDALGetCacheUsed64() }.max(0) as u64;
        self.lock().reads.push(ChunkRead {
            chunk,
            window,
            block,
            bands,
            bytes,
            cache_used,
        });
    }
}

// Attaching a profiler to a computation. These are inherent methods of the array types,
// defined here because `array` sits below `profile` and knows only `dyn RunObserver`.

impl LazyArray {
    /// Records every task of later runs (read, compute, write per chunk, with CPU and
    /// memory samples) into `profiler`, a shared handle the caller keeps and renders.
    pub fn observe(self, profiler: &Profiler) -> LazyArray {
        self.with_observer(Arc::new(profiler.clone()))
    }
}

impl Save {
    /// Records every task of the save into `profiler` (a shared handle: the caller's
    /// profiler sees the tasks).
    pub fn observe(self, profiler: &Profiler) -> Save {
        self.with_observer(Arc::new(profiler.clone()))
    }
}

impl crate::runtime::RuntimeBuilder {
    /// Records every run on the runtime (clustering reads and passes, predictions,
    /// metrics) into `profiler`, a shared handle the caller keeps and renders.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let prof = Profiler::new();
    /// let rt = Runtime::builder().threads(2).observe(&prof).build()?;
    /// let x = ndarray::array![[0.0], [0.1], [5.0], [5.1]];
    /// KMeans::new(2).runtime(&rt).progress(ProgressMode::Silent).fit(&x)?;
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn observe(self, profiler: &Profiler) -> crate::runtime::RuntimeBuilder {
        self.observer(Arc::new(profiler.clone()))
    }
}

/// Ends a run when dropped: stops sampling and stores the samples.
struct ProfiledRun {
    profiler: Profiler,
    sampler: Option<ResourceProfiler>,
    start: Duration,
}

impl Drop for ProfiledRun {
    fn drop(&mut self) {
        let samples = match self.sampler.as_mut() {
            Some(s) => {
                s.stop();
                s.samples()
            }
            None => Vec::new(),
        };
        let mut st = self.profiler.lock();
        let end = st.origin.map(|o| o.elapsed()).unwrap_or_default();
        if let Some(run) = st
            .runs
            .iter_mut()
            .rev()
            .find(|r| r.start == self.start && r.end.is_none())
        {
            run.end = Some(end);
        }
        st.samples.extend(samples);
    }
}

fn summarize(tasks: &[Task], samples: &[Sample], runs: &[Run]) -> ProfileSummary {
    let mut s = ProfileSummary {
        runs: runs.len(),
        tasks: tasks.len(),
        threads: runs.iter().map(|r| r.threads).max().unwrap_or(0),
        samples: samples.len(),
        ..ProfileSummary::default()
    };
    let mut chunks = std::collections::HashSet::new();
    let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
    for t in tasks {
        chunks.insert(t.chunk);
        first = first.min(t.start);
        last = last.max(t.end);
        let d = t.end.saturating_sub(t.start);
        match t.kind {
            TaskKind::Read => s.read += d,
            TaskKind::Compute => s.compute += d,
            TaskKind::Write => s.write += d,
        }
    }
    s.chunks = chunks.len();
    s.wall = last.saturating_sub(if tasks.is_empty() { last } else { first });
    if !samples.is_empty() {
        s.mean_cpu_percent =
            samples.iter().map(|x| x.cpu_percent).sum::<f32>() / samples.len() as f32;
        s.peak_rss_bytes = samples.iter().map(|x| x.rss_bytes).max().unwrap_or(0);
    }
    s
}

fn summary_rows(s: &ProfileSummary, with_tasks: bool) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if with_tasks {
        let busy = |d: Duration| {
            let pct = 100.0 * d.as_secs_f64()
                / (s.wall.as_secs_f64() * s.threads.max(1) as f64).max(1e-9);
            format!("{:.3} s ({pct:.0}% of worker time)", d.as_secs_f64())
        };
        rows.push(("runs", s.runs.to_string()));
        rows.push(("chunks", s.chunks.to_string()));
        rows.push(("tasks", s.tasks.to_string()));
        rows.push(("threads", s.threads.to_string()));
        rows.push(("wall time", format!("{:.3} s", s.wall.as_secs_f64())));
        rows.push(("read", busy(s.read)));
        rows.push(("compute", busy(s.compute)));
        rows.push((
            "write",
            format!("{:.3} s (on the writer thread)", s.write.as_secs_f64()),
        ));
    }
    rows.push(("samples", s.samples.to_string()));
    if s.samples > 0 {
        rows.push(("mean CPU", format!("{:.0} %", s.mean_cpu_percent)));
        rows.push(("peak RSS", human_bytes(s.peak_rss_bytes)));
    }
    rows
}
