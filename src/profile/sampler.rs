//! The one CPU/RSS sampler of this process, shared by [`ResourceProfiler`](super::ResourceProfiler)
//! (and so [`Profiler`](super::Profiler)) and the dashboard.

use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Samples this process's CPU use and resident memory with `sysinfo`.
///
/// CPU % over each window comes from the process's accumulated CPU time (the figure `top`
/// shows: 200 % = two busy cores).
pub(crate) struct ProcessSampler {
    sys: System,
    pid: Pid,
    kind: ProcessRefreshKind,
    /// Start of the current CPU window: time and accumulated CPU milliseconds.
    last: (Instant, u64),
}

impl ProcessSampler {
    /// A sampler whose first CPU window starts now (the first refresh only primes the
    /// counters). `Err` with a reason when the process or the system cannot be read.
    pub(crate) fn new() -> Result<ProcessSampler, String> {
        let pid = sysinfo::get_current_pid().map_err(|e| format!("no process id: {e}"))?;
        let mut sys = System::new().map_err(|e| format!("sysinfo: {e}"))?;
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), false, kind);
        let cpu = sys.process(pid).map_or(0, |p| p.accumulated_cpu_time());
        Ok(ProcessSampler {
            sys,
            pid,
            kind,
            last: (Instant::now(), cpu),
        })
    }

    /// One sample: when it was taken, CPU % since the window's start (see
    /// [`measured_percent`]; `previous` is repeated for a window too short) and RSS in bytes.
    /// `None` when the process cannot be read. Short windows are measured together: the
    /// window restarts only once it was long enough.
    // the resource profiler reads through `sample_window`; the dashboard through this
    #[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
    pub(crate) fn sample(&mut self, previous: Option<f32>) -> Option<(Instant, f32, u64)> {
        self.sample_window(false)
            .map(|(at, cpu, rss)| (at, cpu.unwrap_or(previous.unwrap_or(0.0)), rss))
    }

    /// One sample with the CPU % of the window only when it was measured: `None` while
    /// the window is shorter than [`MIN_CPU_WINDOW_MS`] (it goes on), or, for the
    /// `closing` sample of a series, shorter than one 10 ms tick. A run shorter than the
    /// window (a 40 ms save) still gets its mean CPU from the closing sample.
    pub(crate) fn sample_window(&mut self, closing: bool) -> Option<(Instant, Option<f32>, u64)> {
        let pids = [self.pid];
        self.sys
            .refresh_processes_specifics(ProcessesToUpdate::Some(&pids), false, self.kind);
        let p = self.sys.process(self.pid)?;
        let now = (Instant::now(), p.accumulated_cpu_time());
        let wall_ms = now.0.duration_since(self.last.0).as_secs_f64() * 1e3;
        let cpu_ms = now.1.saturating_sub(self.last.1) as f64;
        let min_window = if closing { TICK_MS } else { MIN_CPU_WINDOW_MS };
        let cpu = measured_percent(cpu_ms, wall_ms, min_window);
        if cpu.is_some() {
            self.last = now;
        }
        Some((now.0, cpu, p.memory()))
    }
}

/// The kernel's CPU-time tick.
const TICK_MS: f64 = 10.0;

/// Shortest window CPU use is measured over: the kernel counts CPU time in 10 ms ticks.
pub(crate) const MIN_CPU_WINDOW_MS: f64 = 50.0;

/// CPU use in percent (200 % = two busy cores) over a window of `wall_ms`, from the
/// process's CPU time `cpu_ms` in it, or `None` for a window under `min_window_ms`. CPU
/// time comes in 10 ms ticks, so a short window reads as 0 % or several hundred (callers
/// keep measuring from the window's start until it is long enough), and no figure
/// exceeds 100 % per core of the machine.
fn measured_percent(cpu_ms: f64, wall_ms: f64, min_window_ms: f64) -> Option<f32> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (wall_ms >= min_window_ms && wall_ms > 0.0)
        .then(|| (100.0 * cpu_ms / wall_ms).clamp(0.0, 100.0 * cores) as f32)
}

#[cfg(test)]
mod tests {
    use super::{MIN_CPU_WINDOW_MS, TICK_MS, measured_percent};

    #[test]
    fn cpu_percent_is_bounded_and_ignores_intervals_shorter_than_a_few_ticks() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        assert_eq!(
            measured_percent(500.0, 1000.0, MIN_CPU_WINDOW_MS),
            Some(50.0)
        );
        // 2 ms of wall time in which the 10 ms tick of CPU time fell: not 500 %
        assert_eq!(measured_percent(10.0, 2.0, MIN_CPU_WINDOW_MS), None);
        // never above every core busy
        assert_eq!(
            measured_percent(30_000.0, 1000.0, MIN_CPU_WINDOW_MS),
            Some(100.0 * cores)
        );
        // the closing sample of a short run: measured over its whole window
        assert_eq!(measured_percent(20.0, 40.0, TICK_MS), Some(50.0));
        assert_eq!(measured_percent(10.0, 5.0, TICK_MS), None);
    }
}
