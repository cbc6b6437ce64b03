//! What a chunked run tells whoever watches it: when it starts and ends, and every read,
//! compute and write task. The executor and lazy arrays know only the [`RunObserver`]
//! trait; [`Profiler`](crate::profile::Profiler) (a higher layer) implements it, and
//! `LazyArray::observe` / `Save::observe` attach one.

use std::any::Any;
use std::fmt;
use std::time::Instant;

use crate::core::window::Window;

/// What a recorded task did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskKind {
    /// Reading (decoding) a chunk's input pixels.
    Read,
    /// Evaluating the expression on a chunk.
    Compute,
    /// Handing a chunk's result to the consumer: the file writer or the in-memory array.
    Write,
}

impl TaskKind {
    /// All kinds, in drawing order.
    pub const ALL: [TaskKind; 3] = [TaskKind::Read, TaskKind::Compute, TaskKind::Write];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Read => "read",
            TaskKind::Compute => "compute",
            TaskKind::Write => "write",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Watches chunked runs. Calls come from the pool's worker threads (reads, computes) and
/// from the calling thread (the run's start and end, writes), hence `Send + Sync`.
pub trait RunObserver: fmt::Debug + Send + Sync {
    /// Marks the start of a computation named `label` of `total` chunks on `threads`
    /// workers; the returned guard marks its end when dropped (also on error or panic).
    fn begin_run(&self, threads: usize, label: &str, total: usize) -> RunGuard;

    /// Records one task that ran on the current thread from `start` to `end`.
    ///
    /// A compute task is recorded after the same thread's read of the same chunk, and may
    /// span "read + compute".
    fn task(&self, kind: TaskKind, chunk: usize, start: Instant, end: Instant);

    /// Records what one chunk's read fetched: its window (in the source's pixel grid), the
    /// source's block size, the bands read and the decoded bytes. Ignored by default.
    fn read(
        &self,
        _chunk: usize,
        _window: Window,
        _block: (usize, usize),
        _bands: usize,
        _bytes: u64,
    ) {
    }
}

/// Ends an observed run when dropped: holds whatever value the observer drops to mark the
/// end (see [`RunObserver::begin_run`]).
#[must_use = "the run ends when the guard is dropped"]
pub struct RunGuard(#[allow(dead_code)] Box<dyn Any>);

impl RunGuard {
    /// A guard that keeps `end` until the run ends, then drops it.
    pub fn new(end: impl Any) -> RunGuard {
        RunGuard(Box::new(end))
    }
}

impl fmt::Debug for RunGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunGuard")
    }
}
