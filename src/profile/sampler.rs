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
    /// [`cpu_percent`]; `previous` is repeated for a window too short) and RSS in bytes.
    /// `None` when the process cannot be read. Short windows are measured together: the
    /// window restarts only once it was long enough.
    pub(crate) fn sample(&mut self, previous: Option<f32>) -> Option<(Instant, f32, u64)> {
        let pids = [self.pid];
        self.sys
            .refresh_processes_specifics(ProcessesToUpdate::Some(&pids), false, self.kind);
        let p = self.sys.process(self.pid)?;
        let now = (Instant::now(), p.accumulated_cpu_time());
        let wall_ms = now.0.duration_since(self.last.0).as_secs_f64() * 1e3;
        let cpu_ms = now.1.saturating_sub(self.last.1) as f64;
        if wall_ms >= MIN_CPU_WINDOW_MS {
            self.last = now;
        }
        Some((now.0, cpu_percent(cpu_ms, wall_ms, previous), p.memory()))
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
