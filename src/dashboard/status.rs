//! What the dashboard shows: [`DashboardStatus`], built from the profiler and the resource
//! samples, and its JSON form (`/status.json`) through serde.

use std::time::Duration;

use serde::Serialize;

use super::{STREAM_SPAN, STREAM_TASKS, Shared};
use crate::profile::{RunProgress, Task};

/// One CPU/memory sample of the dashboard's process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    /// Seconds since the dashboard started.
    pub time: f64,
    /// CPU use in percent of one core (200 = two busy cores).
    pub cpu_percent: f32,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// What the dashboard shows, as [`Dashboard::status`](super::Dashboard::status) and `/status.json` return it.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardStatus {
    /// Seconds since the dashboard started.
    pub uptime: Duration,
    /// The latest observed run, `None` before the first.
    pub run: Option<RunProgress>,
    /// Recent tasks (the running job's, at most the last 30 s).
    pub tasks: Vec<Task>,
    /// Where the task stream starts and ends on the profiler's time axis.
    pub span: (Duration, Duration),
    /// CPU and memory samples of the last minute, oldest first.
    pub samples: Vec<ResourceSample>,
    /// Cores this process may use (the CPU scale: 100 % per core).
    pub cores: usize,
    /// Memory this process could use when the dashboard started.
    pub usable_memory: u64,
}

impl DashboardStatus {
    /// The status as a JSON object: `uptime_s`, `run` (`label`, `done`, `total`,
    /// `threads`, `elapsed_s`, `finished`, `rate`, `eta_s`, `runs`; `null` before the first
    /// run), the latest `cpu_percent` and `rss_bytes`, `cores`, `usable_memory`, `samples`
    /// as `[time, cpu_percent, rss_bytes]` triples and `tasks` (`kind`, `chunk`, `thread`,
    /// `start_s`, `end_s`).
    pub fn to_json(&self) -> String {
        // Numbers, strings and options only: serde_json cannot fail on them (a NaN or an
        // infinity becomes `null`).
        serde_json::to_string(self)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
    }
}

/// `/status.json`'s shape: durations in seconds and the figures derived from a run (rate,
/// ETA) that [`DashboardStatus`] computes on demand.
impl Serialize for DashboardStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let last = self.samples.last();
        StatusJson {
            uptime_s: self.uptime.as_secs_f64(),
            run: self.run.as_ref().map(|p| RunJson {
                label: &p.label,
                done: p.done,
                total: p.total,
                threads: p.threads,
                elapsed_s: p.elapsed.as_secs_f64(),
                finished: p.finished,
                rate: p.rate(),
                eta_s: p.eta().map(|d| d.as_secs_f64()),
                runs: p.runs,
            }),
            cpu_percent: last.map(|s| s.cpu_percent),
            rss_bytes: last.map(|s| s.rss_bytes),
            cores: self.cores,
            usable_memory: self.usable_memory,
            samples: self
                .samples
                .iter()
                .map(|s| (s.time, s.cpu_percent, s.rss_bytes))
                .collect(),
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskJson {
                    kind: t.kind.name(),
                    chunk: t.chunk,
                    thread: t.thread,
                    start_s: t.start.as_secs_f64(),
                    end_s: t.end.as_secs_f64(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    uptime_s: f64,
    run: Option<RunJson<'a>>,
    cpu_percent: Option<f32>,
    rss_bytes: Option<u64>,
    cores: usize,
    usable_memory: u64,
    samples: Vec<(f64, f32, u64)>,
    tasks: Vec<TaskJson>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    label: &'a str,
    done: usize,
    total: usize,
    threads: usize,
    elapsed_s: f64,
    finished: bool,
    rate: f64,
    eta_s: Option<f64>,
    runs: usize,
}

#[derive(Serialize)]
struct TaskJson {
    kind: &'static str,
    chunk: usize,
    thread: Option<usize>,
    start_s: f64,
    end_s: f64,
}

impl Shared {
    pub(super) fn status(&self) -> DashboardStatus {
        let run = self.profiler.progress();
        let now = self.profiler.now().unwrap_or_default();
        let (tasks, span) = match &run {
            None => (Vec::new(), (Duration::ZERO, Duration::ZERO)),
            Some(p) => {
                let tasks = self
                    .profiler
                    .recent_tasks(now.saturating_sub(STREAM_SPAN), STREAM_TASKS);
                // A finished run: its own span (ending at its last task); a running one:
                // up to now.
                let end = if p.finished {
                    tasks.iter().map(|t| t.end).max().unwrap_or(now)
                } else {
                    now
                };
                let start = p.start.max(end.saturating_sub(STREAM_SPAN));
                let tasks = tasks.into_iter().filter(|t| t.end >= start).collect();
                (tasks, (start, end))
            }
        };
        DashboardStatus {
            uptime: self.started.elapsed(),
            run,
            tasks,
            span,
            samples: self
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            cores: self.cores,
            usable_memory: self.usable_memory,
        }
    }
}
