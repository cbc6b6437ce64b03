//! Runs chunk tasks on a rayon pool built for the call, feeding one consumer (the writer
//! or the collector) on the calling thread through a bounded channel.
//!
//! Each worker keeps its own state (GDAL handles: datasets are not `Sync`), claims chunk
//! indices from an atomic counter, and stops early once any chunk fails. The channel's
//! bound caps how many finished chunks wait in memory for the consumer.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::grid::Window;
use crate::profile::{Profiler, TaskKind};
use crate::progress::Progress;
use crate::resources::PoolPlan;

/// How a chunked run went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunStats {
    /// Chunks processed.
    pub chunks: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// Text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

/// Names the chunk in an error unless it already does.
fn in_chunk(chunk: usize, window: Window, e: Error) -> Error {
    match e {
        Error::Chunk { .. } | Error::Panic { .. } => e,
        other => Error::Chunk {
            chunk,
            window,
            source: Box::new(other),
        },
    }
}

/// Runs `work` on every window in parallel and hands each result to `sink` on the calling
/// thread, in completion order.
///
/// * `init` builds one worker's state (called lazily, once per worker thread);
/// * at most `max_queued` results wait for `sink` at any time, so memory in flight is
///   bounded by `(threads + max_queued + 1)` chunk results;
/// * the first error or panic stops the workers and is returned, naming the chunk;
/// * an `observer` records each `work` call as a compute task and each `sink` call as a
///   write task, and samples resources while the run lasts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_chunks<S, T>(
    plan: &PoolPlan,
    windows: &[Window],
    max_queued: usize,
    init: impl Fn() -> Result<S> + Sync,
    work: impl Fn(&mut S, usize, Window) -> Result<T> + Sync,
    mut sink: impl FnMut(usize, Window, T) -> Result<()>,
    progress: &mut Progress,
    observer: Option<&Profiler>,
) -> Result<RunStats>
where
    T: Send,
{
    let start = Instant::now();
    let pool = plan.build_pool()?;
    let threads = pool.current_num_threads();
    let _run = observer.map(|p| p.begin_run(threads));
    let (tx, rx) = crossbeam_channel::bounded::<(usize, Window, Result<T>)>(max_queued.max(1));
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let mut first_error: Option<Error> = None;

    std::thread::scope(|scope| {
        let (next, cancel, init, work) = (&next, &cancel, &init, &work);
        scope.spawn(move || {
            let tx = &tx;
            pool.broadcast(|_| {
                let mut state: Option<S> = None;
                while !cancel.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&w) = windows.get(i) else { break };
                    let t0 = Instant::now();
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        let s = match &mut state {
                            Some(s) => s,
                            None => state.insert(init()?),
                        };
                        work(s, i, w)
                    }));
                    if let Some(p) = observer {
                        p.task(TaskKind::Compute, i, t0, Instant::now());
                    }
                    let result = match result {
                        Ok(r) => r.map_err(|e| in_chunk(i, w, e)),
                        Err(payload) => {
                            // The state may be half-updated by the panic: rebuild it.
                            state = None;
                            Err(Error::Panic {
                                chunk: i,
                                window: w,
                                message: panic_message(payload.as_ref()),
                            })
                        }
                    };
                    let failed = result.is_err();
                    if tx.send((i, w, result)).is_err() || failed {
                        cancel.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            });
            // `tx` drops here, which ends the consumer loop below.
        });

        for (i, w, result) in rx.iter() {
            if first_error.is_some() {
                continue; // drain so that no worker blocks on a full channel
            }
            let t0 = Instant::now();
            let result = result.and_then(|t| sink(i, w, t).map_err(|e| in_chunk(i, w, e)));
            if let Some(p) = observer {
                p.task(TaskKind::Write, i, t0, Instant::now());
            }
            match result {
                Ok(()) => progress.inc(1),
                Err(e) => {
                    cancel.store(true, Ordering::Relaxed);
                    first_error = Some(e);
                }
            }
        }
    });

    if let Some(e) = first_error {
        return Err(e);
    }
    progress.finish();
    Ok(RunStats {
        chunks: windows.len(),
        threads,
        elapsed: start.elapsed(),
    })
}
