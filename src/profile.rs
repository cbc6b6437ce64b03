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
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use plotters::prelude::*;

use crate::array::{LazyArray, Save};
use crate::core::fmt::{base64, emit, escape_html, html_table, human_bytes};
use crate::core::window::Window;
use crate::error::{Error, Result};
use crate::runtime::observe::{self, RunObserver};

mod cache;
pub use cache::{CacheProfiler, CacheSummary, ChunkRead};
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

/// Samples CPU % and RSS of this process every `dt` on a background thread it owns.
///
/// Sampling stops on [`ResourceProfiler::stop`] or when the value is dropped. It works
/// around any code, like dask's `with ResourceProfiler() as rprof:`.
///
/// ```
/// use std::time::Duration;
/// use rasterlab::profile::ResourceProfiler;
///
/// let mut rp = ResourceProfiler::with_interval(Duration::from_millis(20))?;
/// let v: Vec<u64> = (0..2_000_000).collect();
/// std::thread::sleep(Duration::from_millis(120));
/// rp.stop();
/// assert!(rp.samples().len() >= 2);
/// assert!(rp.samples().iter().all(|s| s.rss_bytes > 0));
/// assert!(rp.to_svg().contains("RSS"));
/// # drop(v);
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug)]
pub struct ResourceProfiler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop_tx: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl ResourceProfiler {
    /// Starts sampling every 0.25 s.
    pub fn start() -> Result<ResourceProfiler> {
        Self::with_interval(Profiler::DEFAULT_INTERVAL)
    }

    /// Starts sampling every `dt` (above zero).
    pub fn with_interval(dt: Duration) -> Result<ResourceProfiler> {
        Self::start_at(dt, Instant::now())
    }

    fn start_at(dt: Duration, origin: Instant) -> Result<ResourceProfiler> {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
        if dt.is_zero() {
            return Err(Error::invalid("sampling interval", "must be above zero"));
        }
        let pid = sysinfo::get_current_pid()
            .map_err(|e| Error::invalid("resource profiler", format!("no process id: {e}")))?;
        let mut sys = System::new()
            .map_err(|e| Error::invalid("resource profiler", format!("sysinfo: {e}")))?;
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        let pids = [pid];
        // The first refresh only primes the CPU counters.
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), false, kind);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&samples);
        // CPU % over each interval from the process's accumulated CPU time (the same
        // figure `top` shows: 200 % = two busy cores).
        let mut last = (
            Instant::now(),
            sys.process(pid).map_or(0, |p| p.accumulated_cpu_time()),
        );
        let handle = std::thread::Builder::new()
            .name("rasterlab-resource-profiler".into())
            .spawn(move || {
                let mut take = |sys: &mut System| {
                    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&pids), false, kind);
                    if let Some(p) = sys.process(pid) {
                        let now = (Instant::now(), p.accumulated_cpu_time());
                        let wall_ms = now.0.duration_since(last.0).as_secs_f64() * 1e3;
                        let cpu_ms = now.1.saturating_sub(last.1) as f64;
                        // Short intervals are measured together, from the last point that
                        // opened a window long enough (see cpu_percent).
                        if wall_ms >= MIN_CPU_WINDOW_MS {
                            last = now;
                        }
                        let mut samples = shared.lock().unwrap_or_else(|e| e.into_inner());
                        let previous = samples.last().map(|s: &Sample| s.cpu_percent);
                        samples.push(Sample {
                            time: now.0.saturating_duration_since(origin),
                            cpu_percent: cpu_percent(cpu_ms, wall_ms, previous),
                            rss_bytes: p.memory(),
                        });
                    }
                };
                loop {
                    match stop_rx.recv_timeout(dt) {
                        Err(RecvTimeoutError::Timeout) => take(&mut sys),
                        // Stopped: one last sample closes the series.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                            take(&mut sys);
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::invalid("resource profiler", format!("no thread: {e}")))?;
        Ok(ResourceProfiler {
            samples,
            stop_tx: Some(stop_tx),
            handle: Some(handle),
        })
    }

    /// Stops sampling (idempotent); the samples stay available.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    /// True while the background thread samples.
    pub fn is_running(&self) -> bool {
        self.handle.is_some()
    }

    /// A copy of the samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The figure: CPU % and RSS over time.
    pub fn visualize(&self) -> Figure {
        let samples = self.samples();
        let summary = summarize(&[], &samples, &[]);
        Figure {
            svg: render_svg(&[], &samples, false),
            title: "Resource profile".into(),
            summary: summary_rows(&summary, false),
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

    /// Renders inline in a notebook (evcxr).
    pub fn evcxr_display(&self) {
        self.visualize().evcxr_display();
    }
}

impl Drop for ResourceProfiler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A rendered profile: an SVG figure and a summary table.
#[derive(Debug, Clone)]
pub struct Figure {
    svg: String,
    title: String,
    summary: Vec<(&'static str, String)>,
}

impl Figure {
    /// The SVG document.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// Writes the SVG document to `path`, atomically: a temporary file renamed into
    /// place once complete ([`write_atomic`](crate::raster::output::write_atomic)).
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::raster::output::write_atomic(path.as_ref(), self.svg.as_bytes())
    }

    /// HTML: the figure (as an `<img>`, which notebooks never sanitize away) and the
    /// summary table beside it.
    pub fn to_html(&self) -> String {
        format!(
            "<div class=\"rasterlab-profile\"><img alt=\"{}\" style=\"max-width:100%\" \
             src=\"data:image/svg+xml;base64,{}\"/>{}</div>",
            escape_html(&self.title),
            base64(self.svg.as_bytes()),
            html_table(&self.title, &self.summary)
        )
    }

    /// Renders inline in a notebook: one bundle holding `image/svg+xml` and `text/html`.
    pub fn evcxr_display(&self) {
        emit("image/svg+xml", &self.svg);
        emit("text/html", &self.to_html());
    }
}

/// Shortest window CPU use is measured over: the kernel counts CPU time in 10 ms ticks.
pub(crate) const MIN_CPU_WINDOW_MS: f64 = 50.0;

/// CPU use in percent (200 % = two busy cores) over a window of `wall_ms`, from the
/// process's CPU time `cpu_ms` in it. CPU time comes in 10 ms ticks, so a short window
/// reads as 0 % or several hundred: a window under [`MIN_CPU_WINDOW_MS`] repeats the
/// `previous` figure (callers keep measuring from the window's start until it is long
/// enough), and no figure exceeds 100 % per core of the machine.
pub(crate) fn cpu_percent(cpu_ms: f64, wall_ms: f64, previous: Option<f32>) -> f32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if wall_ms < MIN_CPU_WINDOW_MS {
        return previous.unwrap_or(0.0);
    }
    (100.0 * cpu_ms / wall_ms).clamp(0.0, 100.0 * cores) as f32
}

const WIDTH: u32 = 900;
const PANEL: u32 = 170;

/// The figure: timeline (when `with_tasks`), CPU %, RSS, on one time axis in seconds.
fn render_svg(tasks: &[Task], samples: &[Sample], with_tasks: bool) -> String {
    let mut rows: Vec<Option<usize>> = tasks.iter().map(|t| t.thread).collect();
    rows.sort_by_key(|t| t.unwrap_or(usize::MAX));
    rows.dedup();
    let timeline_h = if with_tasks {
        (70 + 26 * rows.len() as u32).max(150)
    } else {
        0
    };
    let t_end = tasks
        .iter()
        .map(|t| t.end)
        .chain(samples.iter().map(|s| s.time))
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let t_start = tasks
        .iter()
        .map(|t| t.start)
        .chain(samples.iter().map(|s| s.time))
        .min()
        .unwrap_or_default()
        .as_secs_f64()
        .min(t_end);
    let x_range = t_start..(t_end.max(t_start + 1e-3));
    let mut svg = String::new();
    // Drawing into a String cannot fail for I/O reasons; a plotting error leaves a figure
    // with a message instead of failing the user's cell.
    let failure = draw_figure(&mut svg, tasks, samples, &rows, timeline_h, x_range)
        .err()
        .map(|e| e.to_string());
    if let Some(msg) = failure {
        svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"40\">\
             <text x=\"10\" y=\"25\">profile could not be drawn: {}</text></svg>",
            escape_html(&msg)
        );
    }
    svg
}

type DrawResult<'a> = std::result::Result<(), Box<dyn std::error::Error + 'a>>;

fn draw_figure<'a>(
    svg: &'a mut String,
    tasks: &[Task],
    samples: &[Sample],
    rows: &[Option<usize>],
    timeline_h: u32,
    x_range: std::ops::Range<f64>,
) -> DrawResult<'a> {
    let height = timeline_h + 2 * PANEL;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(timeline_h);
    let (cpu_area, mem_area) = rest.split_vertically(PANEL);
    if timeline_h > 0 {
        draw_timeline(&top, tasks, rows, x_range.clone())?;
    }
    let cpu: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.time.as_secs_f64(), s.cpu_percent as f64))
        .collect();
    let cpu_max = cpu.iter().map(|p| p.1).fold(100.0, f64::max) * 1.1;
    draw_line(
        &cpu_area,
        "CPU (% of one core)",
        &cpu,
        x_range.clone(),
        cpu_max,
        RGBColor(214, 39, 40),
    )?;
    let mem: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.time.as_secs_f64(), s.rss_bytes as f64 / (1 << 20) as f64))
        .collect();
    let mem_max = mem.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    draw_line(
        &mem_area,
        "RSS (MiB)",
        &mem,
        x_range,
        mem_max,
        RGBColor(148, 103, 189),
    )?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_timeline<'a>(
    area: &Area<'a>,
    tasks: &[Task],
    rows: &[Option<usize>],
    x_range: std::ops::Range<f64>,
) -> DrawResult<'a> {
    let n = rows.len().max(1);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| match r {
            Some(i) => format!("worker {i}"),
            None => "writer".into(),
        })
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption("Tasks per thread", ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, -0.5..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("seconds")
        .draw()?;
    for kind in TaskKind::ALL {
        let color = kind.color();
        chart.draw_series(tasks.iter().filter(|t| t.kind == kind).map(|t| {
            let row = rows.iter().position(|r| *r == t.thread).unwrap_or(0) as f64;
            Rectangle::new(
                [
                    (t.start.as_secs_f64(), row - 0.38),
                    (t.end.as_secs_f64(), row + 0.38),
                ],
                color.filled(),
            )
        }))?;
    }
    // The legend sits in the top margin, right of the caption, never over the tasks.
    let (w, _) = area.dim_in_pixel();
    let mut x = w as i32 - 250;
    for kind in TaskKind::ALL {
        area.draw(&Rectangle::new(
            [(x, 8), (x + 12, 18)],
            kind.color().filled(),
        ))?;
        area.draw(&Text::new(kind.name(), (x + 16, 7), ("sans-serif", 13)))?;
        x += 80;
    }
    Ok(())
}

fn draw_line<'a>(
    area: &Area<'a>,
    title: &str,
    points: &[(f64, f64)],
    x_range: std::ops::Range<f64>,
    y_max: f64,
    color: RGBColor,
) -> DrawResult<'a> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("seconds")
        .draw()?;
    if points.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no samples",
            (chart.x_range().start, y_max / 2.0),
            ("sans-serif", 14),
        )))?;
    } else {
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
        // Points too, so that a run shorter than the interval still shows its sample.
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cpu_percent;

    #[test]
    fn cpu_percent_is_bounded_and_ignores_intervals_shorter_than_a_few_ticks() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        assert_eq!(cpu_percent(500.0, 1000.0, None), 50.0);
        // 2 ms of wall time in which the 10 ms tick of CPU time fell: not 500 %
        assert_eq!(cpu_percent(10.0, 2.0, Some(180.0)), 180.0);
        assert_eq!(cpu_percent(10.0, 2.0, None), 0.0);
        // never above every core busy
        assert_eq!(cpu_percent(30_000.0, 1000.0, None), 100.0 * cores);
    }
}
