//! Runs chunk tasks on a rayon pool built for the call, feeding one consumer (the writer
//! or the collector) on the calling thread.
//!
//! Each worker keeps its own state (GDAL handles: datasets are not `Sync`) and claims
//! chunk indices from an atomic counter. A chunk may start only with a memory permit,
//! and its permit comes back when the consumer has taken its result, so at most
//! `permits` chunks are in flight (read, computed or waiting) at any time. The first
//! error or panic stops the run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::runtime::context::Runtime;
use crate::runtime::grid::Window;
use crate::runtime::observe::{RunObserver, TaskKind};
use crate::runtime::progress::{Progress, ProgressMode};
use crate::runtime::resources::PoolPlan;

/// How a chunked run went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunStats {
    /// Chunks processed.
    pub chunks: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// The windows of a run, by index. A chunk grid computes each on demand, so a grid of
/// millions of tiny chunks costs no memory for the list (at 1-pixel chunks a list of
/// windows was the largest allocation of a run); a slice holds them.
pub(crate) trait Windows: Sync {
    /// How many windows.
    fn count(&self) -> usize;
    /// Window `index`, `None` past the end.
    fn window(&self, index: usize) -> Option<Window>;
}

impl Windows for [Window] {
    fn count(&self) -> usize {
        self.len()
    }
    fn window(&self, index: usize) -> Option<Window> {
        self.get(index).copied()
    }
}

impl Windows for crate::runtime::grid::ChunkGrid {
    fn count(&self) -> usize {
        self.len()
    }
    fn window(&self, index: usize) -> Option<Window> {
        crate::runtime::grid::ChunkGrid::window(self, index)
    }
}

/// Names the chunk in an error unless it already does, or the error is about the whole
/// run (a cancelled run, a failed output write) rather than this chunk.
pub(crate) fn in_chunk(chunk: usize, window: Window, e: Error) -> Error {
    match e {
        Error::Chunk { .. }
        | Error::Panic { .. }
        | Error::Cancelled { .. }
        | Error::Write { .. } => e,
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
/// * `init` builds one worker's state (lazily, once per worker thread, again after a
///   panic);
/// * at most `permits` chunks are in flight; `permits` must be at least 1;
/// * with `in_order`, `sink` sees the chunks in index order (a reorder buffer whose
///   chunks keep their permits, so memory stays bounded; the chunk with the lowest
///   unfinished index always holds one, so the run cannot stall);
/// * the first error or panic stops the workers and is returned, naming the chunk;
/// * the runtime's observer records each `work` call as a compute task and each `sink`
///   call as a write task, and samples resources while the run lasts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_chunks<S, T>(
    rt: &Runtime,
    windows: &(impl Windows + ?Sized),
    permits: usize,
    in_order: bool,
    init: impl Fn() -> Result<S> + Sync,
    work: impl Fn(&mut S, usize, Window) -> Result<T> + Sync,
    sink: impl FnMut(usize, Window, T) -> Result<()>,
    progress: &mut Progress,
) -> Result<RunStats>
where
    T: Send,
{
    run_chunks_idle(
        rt, windows, permits, in_order, init, work, sink, None, progress,
    )
}

/// Work the calling thread does while it waits for chunks: `every` without a finished
/// chunk, `run` is called; an error stops the run like a failed chunk (without naming
/// one). A writing MPI rank receives the other ranks' chunks this way while its own
/// compute, so their synchronous sends do not wait for its next chunk.
pub(crate) struct Idle<'a> {
    /// How long the calling thread waits for a chunk before calling `run`.
    pub every: Duration,
    /// The work.
    pub run: &'a mut dyn FnMut() -> Result<()>,
}

/// [`run_chunks`], with `idle` work on the calling thread between chunks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_chunks_idle<S, T>(
    rt: &Runtime,
    windows: &(impl Windows + ?Sized),
    permits: usize,
    in_order: bool,
    init: impl Fn() -> Result<S> + Sync,
    work: impl Fn(&mut S, usize, Window) -> Result<T> + Sync,
    sink: impl FnMut(usize, Window, T) -> Result<()>,
    mut idle: Option<Idle<'_>>,
    progress: &mut Progress,
) -> Result<RunStats>
where
    T: Send,
{
    let start = Instant::now();
    let observer = rt.observer();
    let pool = rt.pool()?;
    let threads = pool.current_num_threads();
    let _run = observer.map(|p| p.begin_run(threads, progress.label(), windows.count()));
    let permits = permits.clamp(1, windows.count().max(1));
    let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(permits);
    for _ in 0..permits {
        let _ = token_tx.send(());
    }
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Window, Result<T>)>();
    let shared = Shared {
        windows,
        next: AtomicUsize::new(0),
        cancel: AtomicBool::new(false),
        token_rx,
        token_tx,
        observer,
    };
    let mut hand_over = HandOver {
        sink,
        progress,
        shared: &shared,
        in_order,
        early: std::collections::BTreeMap::new(),
        next_out: 0,
        first_error: None,
    };
    std::thread::scope(|scope| {
        let (shared, init, work) = (&shared, &init, &work);
        scope.spawn(move || {
            pool.broadcast(|_| shared.work_loop(&tx, init, work));
            // `tx` drops here, which ends the consumer loop below.
        });
        loop {
            let received = match &mut idle {
                None => rx.recv().ok(),
                Some(idle) => match rx.recv_timeout(idle.every) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Disconnected) => None,
                    Err(RecvTimeoutError::Timeout) => {
                        hand_over.idle(idle);
                        continue;
                    }
                },
            };
            let Some((i, w, result)) = received else {
                break;
            };
            hand_over.receive(i, w, result);
        }
    });
    if let Some(e) = hand_over.first_error {
        return Err(e);
    }
    hand_over.progress.finish();
    Ok(RunStats {
        chunks: windows.count(),
        threads,
        elapsed: start.elapsed(),
    })
}

/// What the workers and the consumer of a run share.
struct Shared<'a, W: ?Sized> {
    windows: &'a W,
    /// The next chunk index to claim.
    next: AtomicUsize,
    /// Set by the first error: workers stop claiming chunks.
    cancel: AtomicBool,
    /// Memory permits: one is taken to start a chunk, and given back once it is consumed.
    token_rx: crossbeam_channel::Receiver<()>,
    token_tx: crossbeam_channel::Sender<()>,
    observer: Option<&'a dyn RunObserver>,
}

impl<W: Windows + ?Sized> Shared<'_, W> {
    /// One worker: claims chunks (each with a permit) until none is left or the run
    /// fails, sending each result to the consumer.
    fn work_loop<S, T>(
        &self,
        tx: &crossbeam_channel::Sender<(usize, Window, Result<T>)>,
        init: &(impl Fn() -> Result<S> + Sync),
        work: &(impl Fn(&mut S, usize, Window) -> Result<T> + Sync),
    ) {
        let mut state: Option<S> = None;
        loop {
            // Wait for memory before claiming a chunk, so claimed chunks run at once.
            if self.token_rx.recv().is_err() {
                break;
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let w = match self.windows.window(i) {
                Some(w) if !self.cancel.load(Ordering::Relaxed) => w,
                _ => {
                    // Nothing left to do: pass the permit on to a waiting worker.
                    let _ = self.token_tx.send(());
                    break;
                }
            };
            let t0 = Instant::now();
            let result = super::panic::catch(|| {
                let s = match &mut state {
                    Some(s) => s,
                    None => state.insert(init()?),
                };
                work(s, i, w)
            });
            if let Some(p) = self.observer {
                p.task(TaskKind::Compute, i, t0, Instant::now());
            }
            let result = match result {
                Ok(r) => r.map_err(|e| in_chunk(i, w, e)),
                Err(caught) => {
                    // The state may be half-updated by the panic: rebuild it.
                    state = None;
                    Err(Error::Panic {
                        task: format!("chunk {i} ({w})"),
                        message: caught.describe(),
                    })
                }
            };
            let failed = result.is_err();
            if tx.send((i, w, result)).is_err() || failed {
                self.cancel.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
}

/// The calling thread's side of a run: hands each result to the sink (in index order
/// when asked) and gives the chunk's permit back once it is consumed.
struct HandOver<'a, 's, W: ?Sized, T, F> {
    sink: F,
    progress: &'a mut Progress,
    shared: &'s Shared<'s, W>,
    in_order: bool,
    /// Chunks that came early in an ordered run, each still holding its permit.
    early: std::collections::BTreeMap<usize, (Window, Result<T>)>,
    next_out: usize,
    first_error: Option<Error>,
}

impl<W, T, F> HandOver<'_, '_, W, T, F>
where
    W: Windows + ?Sized,
    F: FnMut(usize, Window, T) -> Result<()>,
{
    fn receive(&mut self, i: usize, w: Window, result: Result<T>) {
        // An error is handled at once, in order or not; after one, order is moot.
        if !self.in_order || self.first_error.is_some() || result.is_err() {
            self.consume(i, w, result);
        } else {
            self.early.insert(i, (w, result));
            while let Some((w, r)) = self.early.remove(&self.next_out) {
                self.consume(self.next_out, w, r);
                self.next_out += 1;
            }
        }
        if self.first_error.is_some() {
            // Give the early chunks' permits back too, or workers would wait for them.
            for (j, (w, r)) in std::mem::take(&mut self.early) {
                self.consume(j, w, r);
            }
        }
    }

    /// Runs the idle work; its error stops the run (workers see the flag when they next
    /// take a permit; each chunk in flight still gives its permit back when it arrives).
    fn idle(&mut self, idle: &mut Idle<'_>) {
        if self.first_error.is_none()
            && let Err(e) = (idle.run)()
        {
            self.shared.cancel.store(true, Ordering::Relaxed);
            self.first_error = Some(e);
        }
    }

    fn consume(&mut self, i: usize, w: Window, result: Result<T>) {
        if self.first_error.is_none() {
            let t0 = Instant::now();
            let sink = &mut self.sink;
            let result = result.and_then(|t| sink(i, w, t).map_err(|e| in_chunk(i, w, e)));
            if let Some(p) = self.shared.observer {
                p.task(TaskKind::Write, i, t0, Instant::now());
            }
            match result {
                Ok(()) => self.progress.inc(1),
                Err(e) => {
                    self.shared.cancel.store(true, Ordering::Relaxed);
                    self.first_error = Some(e);
                }
            }
        }
        // The chunk's memory is free again (also after an error, so that waiting
        // workers wake up, see the cancel flag and stop).
        let _ = self.shared.token_tx.send(());
    }
}

/// Maps `f` over an iterator of any length on the pool, holding at most `batch` items
/// (and their results' batch) in memory at a time, and returns the results in input
/// order (aics' `batched_map`). A panic in `f` is [`Error::Panic`] naming the item.
///
/// ```
/// use rasterlab::prelude::*;
/// let plan = PoolPlan::detect()?.with_threads(2)?;
/// let squares = rasterlab::runtime::exec::batched_map(0..10_000u64, 256, &plan, ProgressMode::Silent, |i| i * i)?;
/// assert_eq!(squares[9_999], 9_999 * 9_999);
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn batched_map<I, R>(
    items: impl IntoIterator<Item = I>,
    batch: usize,
    plan: &PoolPlan,
    mode: ProgressMode,
    f: impl Fn(I) -> R + Sync + Send,
) -> Result<Vec<R>>
where
    I: Send,
    R: Send,
{
    let mut out = Vec::new();
    batched_for_each(items, batch, plan, mode, f, |results| {
        out.extend(results);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`batched_map`], but hands each batch of results to `consume` (in order) instead
/// of collecting them, so memory stays bounded for billions of items.
pub fn batched_for_each<I, R>(
    items: impl IntoIterator<Item = I>,
    batch: usize,
    plan: &PoolPlan,
    mode: ProgressMode,
    f: impl Fn(I) -> R + Sync + Send,
    mut consume: impl FnMut(Vec<R>) -> Result<()>,
) -> Result<usize>
where
    I: Send,
    R: Send,
{
    if batch == 0 {
        return Err(Error::invalid("batch size", "must be at least 1"));
    }
    let pool = Runtime::from_plan(plan.clone()).pool()?;
    let mut iter = items.into_iter();
    let (lower, upper) = iter.size_hint();
    let mut progress = Progress::new(mode, "batched_map", "items", upper.unwrap_or(lower) as u64);
    let mut done = 0usize;
    loop {
        let chunk: Vec<I> = iter.by_ref().take(batch).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        let results: Vec<Result<R>> = pool.install(|| {
            chunk
                .into_par_iter()
                .enumerate()
                .map(|(k, item)| {
                    super::panic::catch(|| f(item)).map_err(|caught| Error::Panic {
                        task: format!("item {}", done + k),
                        message: caught.describe(),
                    })
                })
                .collect()
        });
        consume(results.into_iter().collect::<Result<Vec<R>>>()?)?;
        done += n;
        progress.inc(n as u64);
    }
    progress.finish();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(n: usize) -> Vec<Window> {
        (0..n).map(|i| Window::new(i, 0, 1, 1)).collect()
    }

    fn two_threads() -> Runtime {
        crate::runtime::Runtime::builder()
            .threads(2)
            .progress(ProgressMode::Silent)
            .build()
            .unwrap()
    }

    #[test]
    fn an_ordered_run_hands_chunks_over_in_order_within_its_permits() {
        let rt = two_threads();
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let mut progress = Progress::new(ProgressMode::Silent, "test", "chunks", 20);
        run_chunks(
            &rt,
            windows(20).as_slice(),
            3,
            true,
            || Ok(()),
            |_, i, _| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // even chunks are slow, so odd ones finish first
                let ms = if i % 2 == 0 { 20 } else { 1 };
                std::thread::sleep(Duration::from_millis(ms));
                Ok(i)
            },
            |i, _, v| {
                assert_eq!(i, v);
                seen.push(v);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
            &mut progress,
        )
        .unwrap();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "{most:?} chunks in flight"
        );
    }

    #[test]
    fn an_ordered_run_stops_at_an_error_without_waiting() {
        let rt = two_threads();
        let mut progress = Progress::new(ProgressMode::Silent, "test", "chunks", 50);
        let err = run_chunks(
            &rt,
            windows(50).as_slice(),
            2,
            true,
            || Ok(()),
            |_, i, _| {
                if i == 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
                if i == 7 {
                    return Err(Error::invalid("value", "bad"));
                }
                Ok(i)
            },
            |_, _, _| Ok(()),
            &mut progress,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Chunk { chunk: 7, .. }), "{err:?}");
    }
}
