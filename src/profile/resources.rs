//! [`ResourceProfiler`]: CPU % and RSS of this process, sampled on a background thread.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::figure::{Figure, render_svg};
use super::sampler::ProcessSampler;
use super::{Profiler, Sample, summarize, summary_rows};
use crate::error::{Error, Result};

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

    pub(super) fn start_at(dt: Duration, origin: Instant) -> Result<ResourceProfiler> {
        if dt.is_zero() {
            return Err(Error::invalid("sampling interval", "must be above zero"));
        }
        let mut sampler = ProcessSampler::new()
            .map_err(|e| Error::system("resource profiler: reading this process")(e.into()))?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&samples);
        let handle = std::thread::Builder::new()
            .name("rasterlab-resource-profiler".into())
            .spawn(move || {
                // Samples taken while the CPU window was too short repeat the previous
                // figure; once the window is measured, its figure replaces theirs (they
                // belong to that window). `pending` counts them.
                let mut pending = 0usize;
                let mut take = |closing: bool| {
                    let Some((at, cpu, rss_bytes)) = sampler.sample_window(closing) else {
                        return;
                    };
                    let mut samples = shared.lock().unwrap_or_else(|e| e.into_inner());
                    let previous = samples.last().map(|s: &Sample| s.cpu_percent);
                    if let Some(measured) = cpu {
                        let n = samples.len();
                        for s in &mut samples[n - pending..] {
                            s.cpu_percent = measured;
                        }
                        pending = 0;
                    } else {
                        pending += 1;
                    }
                    samples.push(Sample {
                        time: at.saturating_duration_since(origin),
                        cpu_percent: cpu.unwrap_or(previous.unwrap_or(0.0)),
                        rss_bytes,
                    });
                };
                loop {
                    match stop_rx.recv_timeout(dt) {
                        Err(RecvTimeoutError::Timeout) => take(false),
                        // Stopped: one last sample closes the series.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                            take(true);
                            break;
                        }
                    }
                }
            })
            .map_err(|e| Error::system("resource profiler: starting its thread")(e.into()))?;
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

#[cfg(test)]
mod tests {
    use super::ResourceProfiler;
    use std::time::{Duration, Instant};

    /// CPU seconds of this process so far (utime + stime from /proc).
    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = (11..13)
            .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        ticks as f64 / 100.0
    }

    #[test]
    fn a_run_shorter_than_the_cpu_window_still_shows_its_cpu() {
        // Sampled every 10 ms: windows under 50 ms repeat the previous figure, so a busy
        // run this short used to read 0 % throughout. The closing sample measures it.
        let mut prof = ResourceProfiler::with_interval(Duration::from_millis(10)).unwrap();
        let (t0, c0) = (Instant::now(), cpu_seconds());
        while t0.elapsed() < Duration::from_millis(35) {
            std::hint::black_box((0..1000u64).sum::<u64>());
        }
        let used = cpu_seconds() - c0;
        prof.stop();
        let samples = prof.samples();
        assert!(!samples.is_empty());
        let mean = samples.iter().map(|s| s.cpu_percent).sum::<f32>() / samples.len() as f32;
        // On a loaded machine the spin may get less than one 10 ms tick: nothing to see.
        if used >= 0.01 {
            assert!(mean > 0.0, "a busy run reads {mean} % CPU: {samples:?}");
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        assert!(samples.iter().all(|s| s.cpu_percent <= 100.0 * cores));
    }
}
