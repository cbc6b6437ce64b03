//! A save shared among processes (ranks): every rank computes its part of the chunk grid
//! on its own pool, and rank 0 also writes, receiving the others' chunks. The transport
//! (MPI, in `crate::distributed`) is behind [`RankLink`], so this file knows nothing of it.
//!
//! Split: static and byte-balanced ([`crate::array::part::split_with_first`]): contiguous
//! runs of chunks with the same number of pixels. It needs no messages to hand work out,
//! and a chunk's cost is its bytes (every chunk reads, computes and sends the same bytes
//! per pixel), so equal pixels are equal work. Rank 0 also encodes every chunk of the
//! file, so it computes only what that leaves it time for ([`writer_share`]); README
//! "Beyond one machine" has the measured finish times.
//!
//! Memory: a rank computes within its pool plan's permits, and a chunk's permit comes
//! back only once the writer has received it (the send returns when it is matched), so
//! chunks in flight towards the writer are bounded by the same permits; the writer takes
//! one message at a time.

use std::time::{Duration, Instant};

use super::{Job, Save, SaveReport};
use crate::array::part::split_with_first;
use crate::array::rank_link::{Incoming, RankLink, same_grid, share_of_node};
use crate::error::{Error, Result};
use crate::raster::write::{Compression, TiffWriter};
use crate::runtime::grid::Window;
use crate::runtime::observe::TaskKind;
use crate::runtime::progress::{Progress, ProgressMode};
use crate::runtime::resources::PoolPlan;

/// A fault injected for the tests of failing ranks: `RASTERLAB_TEST_FAULT=RANK:CHUNK:KIND`,
/// `KIND` one of `error` (the chunk fails), `panic` (its computation panics), `exit`
/// (the process ends without a word, as if killed) and `panic-main` (the rank's
/// main thread panics). Read only by shared saves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FaultKind {
    Error,
    Panic,
    Exit,
    PanicMain,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    rank: usize,
    chunk: usize,
    kind: FaultKind,
}

/// The environment variable of [`Fault`].
pub const FAULT_VAR: &str = "RASTERLAB_TEST_FAULT";

impl Fault {
    fn from_env(rank: usize) -> Option<Fault> {
        let text = std::env::var(FAULT_VAR).ok()?;
        let mut it = text.split(':');
        let (r, c, k) = (it.next()?, it.next()?, it.next()?);
        let kind = match k {
            "error" => FaultKind::Error,
            "panic" => FaultKind::Panic,
            "exit" => FaultKind::Exit,
            "panic-main" => FaultKind::PanicMain,
            _ => return None,
        };
        let fault = Fault {
            rank: r.parse().ok()?,
            chunk: c.parse().ok()?,
            kind,
        };
        (fault.rank == rank).then_some(fault)
    }

    /// On a worker thread, before chunk `chunk` is handed on.
    fn on_compute(fault: Option<Fault>, chunk: usize) -> Result<()> {
        match fault {
            Some(f) if f.chunk == chunk => match f.kind {
                FaultKind::Error => Err(Error::invalid(
                    "injected fault",
                    format!("{FAULT_VAR} failed chunk {chunk}"),
                )),
                FaultKind::Panic => panic!("{FAULT_VAR}: chunk {chunk} panics"),
                FaultKind::Exit => {
                    // Like a kill: no message, no clean-up, no MPI_Finalize.
                    std::process::exit(137)
                }
                FaultKind::PanicMain => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// On the rank's main thread, as chunk `chunk` is written or sent.
    fn on_main(fault: Option<Fault>, chunk: usize) {
        if let Some(f) = fault
            && f.chunk == chunk
            && f.kind == FaultKind::PanicMain
        {
            panic!("{FAULT_VAR}: main thread panics at chunk {chunk}");
        }
    }
}

/// How long a failed worker waits for rank 0 to end the job before ending it itself.
const FAILED_WAIT: Duration = Duration::from_secs(20);

/// How long the writer sleeps when nothing has arrived (its own chunks done).
const IDLE: Duration = Duration::from_micros(200);

impl Save {
    /// Runs this save as one of `link.ranks()` processes that each run the same program
    /// (SPMD): each computes its part of the chunks, rank 0 writes the file. Rank 0
    /// returns the report, other ranks `None`.
    ///
    /// Threads and memory: unless set on the save, each rank takes its share of the
    /// machine: the detected cores and memory budget divided by the ranks on the node
    /// (or `SLURM_CPUS_PER_TASK` cores).
    ///
    /// Failure: an error on a rank other than 0 is sent to rank 0, which fails with
    /// [`Error::Rank`] naming the rank and the chunk, after removing its temporary file;
    /// the caller then ends the job (`MPI_Abort`). A rank that waited
    /// [`FAILED_WAIT`] for that returns its own error.
    pub(crate) fn run_ranks(&self, link: &dyn RankLink) -> Result<Option<SaveReport>> {
        let start = Instant::now();
        let rank = link.rank();
        let plan = self.rank_plan(link)?;
        let job = self.prepare(Some(plan))?;
        same_grid(link, &job.grid)?;
        let threads: Vec<usize> = link
            .all_gather(job.plan.threads() as u64)?
            .into_iter()
            .map(|t| t as usize)
            .collect();
        // A COG's tiled file is written with ZSTD (see `raster::write`).
        let codec = if self.layout.is_cog() {
            Compression::Zstd
        } else {
            self.compression
        };
        let first = writer_share(&job, codec, link.ranks());
        let mine = split_with_first(&job.grid, link.ranks(), rank, first);
        let fault = Fault::from_env(rank);
        if rank == 0 {
            self.write_ranks(link, &job, &mine, fault, threads, start)
                .map(Some)
        } else {
            self.compute_rank(link, &job, &mine, fault)?;
            Ok(None)
        }
    }

    /// This rank's pool plan: the save's threads and memory if set, else its share.
    fn rank_plan(&self, link: &dyn RankLink) -> Result<PoolPlan> {
        share_of_node(
            self.array.plan()?,
            link,
            self.array.threads.is_some(),
            self.array.memory.is_some(),
        )
    }

    /// Rank 0: computes its part, writes it and every chunk the others send.
    fn write_ranks(
        &self,
        link: &dyn RankLink,
        job: &Job,
        mine: &[usize],
        fault: Option<Fault>,
        rank_threads: Vec<usize>,
        start: Instant,
    ) -> Result<SaveReport> {
        // The writer compresses every rank's tiles: GDAL's compression threads (started
        // as the file is created) may use every core the process's cgroup allows, not
        // only the one mpirun bound this rank to, and as many threads as that gives.
        let writer = {
            let _wide = crate::runtime::affinity::widen_this_thread();
            let mut spec = job.spec.clone();
            spec.threads = PoolPlan::detect()?.threads().max(spec.threads);
            // GDAL starts its compression threads at the first tile it compresses, from
            // the thread that hands it over: start them here, while widened.
            crate::raster::write::start_encoder_threads(spec.threads);
            TiffWriter::create_with_layout(&self.path, &spec, self.layout)?
        };
        let label = format!("save {}", self.path.display());
        // One progress line for the whole grid, on rank 0 only.
        let progress = Progress::new(job.array.progress, &label, "chunks", job.grid.len() as u64);
        let mut own = job.array.clone();
        own.progress = ProgressMode::Silent;
        let state = std::cell::RefCell::new(Writing {
            writer,
            progress,
            written: 0,
            received: 0,
            record: false,
        });
        // Another rank's failure stops this run as a cancellation (which the executor
        // does not attribute to one of this rank's chunks) and is returned below.
        let remote = std::cell::RefCell::new(None::<Error>);
        let take_remote = |e: Error| match e {
            Error::Rank { .. } => {
                let reason = e.to_string();
                *remote.borrow_mut() = Some(e);
                Error::Cancelled { reason }
            }
            other => other,
        };
        // Writes every chunk the other ranks have sent so far, so they do not wait.
        let drain_all = || -> Result<()> {
            let mut st = state.borrow_mut();
            while st.drain(link, job)? {}
            Ok(())
        };
        let mut idle = || drain_all().map_err(take_remote);
        let stats = own.run_part(
            &job.plan,
            &job.grid,
            mine,
            &label,
            |id, _, data| Fault::on_compute(fault, id).map(|()| data),
            |id, w, data| {
                caught(id, || Fault::on_main(fault, id))?;
                job.cancel.check()?;
                state.borrow_mut().write(job, w, data)?;
                drain_all().map_err(take_remote)
            },
            // While this rank's own chunks compute, its main thread takes the others'.
            Some(crate::runtime::exec::Idle {
                every: IDLE,
                run: &mut idle,
            }),
        );
        let stats = match (stats, remote.into_inner()) {
            (_, Some(e)) => return Err(e),
            (r, None) => r?,
        };
        let mut st = state.into_inner();
        // Recorded from here on only: while this rank's own run is on, its writer row
        // already spans these writes (they happen within its own chunks' writes).
        st.record = true;
        while st.written < job.grid.len() {
            if !st.drain(link, job)? {
                job.cancel.check()?;
                std::thread::sleep(IDLE);
            }
        }
        let Writing {
            writer,
            mut progress,
            received,
            ..
        } = st;
        progress.finish();
        let chunks_elapsed = start.elapsed();
        let path = writer.finish_unless(|| job.cancel.reason())?;
        link.barrier();
        let mut report = self.report(job, path, stats.threads, start, chunks_elapsed);
        report.ranks = link.ranks();
        report.rank_threads = rank_threads;
        report.bytes_between_ranks = received;
        Ok(report)
    }

    /// Ranks other than 0: computes its part and sends each chunk to rank 0.
    fn compute_rank(
        &self,
        link: &dyn RankLink,
        job: &Job,
        mine: &[usize],
        fault: Option<Fault>,
    ) -> Result<()> {
        let mut own = job.array.clone();
        own.progress = ProgressMode::Silent;
        let run = own.run_part(
            &job.plan,
            &job.grid,
            mine,
            "rank",
            |id, _, data| Fault::on_compute(fault, id).map(|()| data),
            |id, _, mut data| {
                caught(id, || Fault::on_main(fault, id))?;
                job.cancel.check()?;
                if let Some(v) = job.fill {
                    // The writer fills too; doing it here costs nothing and keeps the
                    // bytes sent what the file holds.
                    let v = v as f32;
                    data.iter_mut().filter(|x| x.is_nan()).for_each(|x| *x = v);
                }
                link.send_chunk(id, &data)
            },
            None,
        );
        match run {
            Ok(_) => {
                link.barrier();
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                link.send_failure(&message)?;
                // Rank 0 removes its temporary file and ends the job; if it does not
                // (it is gone), end this rank with its own error.
                std::thread::sleep(FAILED_WAIT);
                Err(Error::Rank {
                    rank: link.rank(),
                    message,
                })
            }
        }
    }
}

/// Encoding one output byte with `compression` (and GDAL's predictor), in units of
/// reading, decoding and computing one input byte. Measured on one core with the 4x4
/// mosaic's NDI (two UInt16 bands in, one Float32 band out: as many bytes out as in):
/// 1.6 s user time to read and compute, plus 1.1 s to encode with ZSTD, 2.9 s with LZW,
/// 5.4 s with DEFLATE and ~0.1 s to write it uncompressed.
fn encode_weight(compression: Compression) -> f64 {
    match compression {
        Compression::None => 0.05,
        Compression::Zstd => 0.7,
        Compression::Lzw => 1.8,
        Compression::Deflate => 3.4,
    }
}

/// The part of the grid's pixels the writing rank computes among `ranks`: an equal share
/// less the time it spends encoding everybody's chunks, so that it finishes with the
/// others. With `E` the encoding cost relative to computing, rank 0 takes
/// `(1 - E (ranks - 1)) / ranks`, and nothing once encoding alone is a full share (an
/// LZW save of band math on two ranks: E = 1.8). Measured on the mosaic's NDI with
/// `mpirun -n 2` on 2 cores: an equal split kept rank 1 idle half the run.
fn writer_share(job: &Job, compression: Compression, ranks: usize) -> f64 {
    let r = ranks.max(1) as f64;
    let (w, h) = job.spec.size;
    let input = job.array.input_bytes() as f64;
    let output = (w * h) as f64 * job.spec.bands as f64 * f64::from(job.spec.dtype.bytes());
    let encode = encode_weight(compression) * output / input.max(1.0);
    ((1.0 - encode * (r - 1.0)) / r).clamp(0.0, 1.0 / r)
}

/// The writing rank's side of a shared save: its file, progress line and counts.
struct Writing {
    writer: TiffWriter,
    progress: Progress,
    /// Chunks written, from any rank.
    written: usize,
    /// Bytes received from the other ranks.
    received: u64,
    /// Whether writes of received chunks are reported to the array's observer (a
    /// profile's writer row), as the executor reports those of this rank's own chunks.
    record: bool,
}

impl Writing {
    /// Writes a chunk computed here.
    fn write(&mut self, job: &Job, w: Window, data: Vec<f32>) -> Result<()> {
        job.write(&mut self.writer, w, data)?;
        self.written += 1;
        self.progress.inc(1);
        Ok(())
    }

    /// Writes one chunk another rank sent, if one has arrived (`false` if none had).
    fn drain(&mut self, link: &dyn RankLink, job: &Job) -> Result<bool> {
        let (rank, chunk, data) = match link.poll()? {
            None => return Ok(false),
            Some(Incoming::Failed { rank, message }) => return Err(Error::Rank { rank, message }),
            Some(Incoming::Chunk { rank, chunk, data }) => (rank, chunk, data),
        };
        let w = job.grid.window(chunk).ok_or_else(|| Error::Rank {
            rank,
            message: format!("sent chunk {chunk}, which the grid does not have"),
        })?;
        if data.len() != w.len() * job.spec.bands {
            return Err(Error::Rank {
                rank,
                message: format!(
                    "sent {} values for chunk {chunk} ({w}), expected {}",
                    data.len(),
                    w.len() * job.spec.bands
                ),
            });
        }
        self.received += std::mem::size_of_val(data.as_slice()) as u64;
        job.cancel.check()?;
        let start = Instant::now();
        self.write(job, w, data)?;
        if self.record
            && let Some(observer) = job.array.observer.as_deref()
        {
            observer.task(TaskKind::Write, chunk, start, Instant::now());
        }
        Ok(true)
    }
}

thread_local! {
    /// Set while [`caught`] runs `f`: a panic then is an error of the run, not a reason
    /// to end the process (see [`panic_is_caught`]).
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on the rank's main thread, turning a panic into [`Error::Panic`] naming
/// chunk `chunk`: a panic that unwound out of the executor's consumer would leave its
/// workers waiting for memory permits that never come back.
fn caught<T>(chunk: usize, f: impl FnOnce() -> T) -> Result<T> {
    CATCHING.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    r.map_err(|payload| Error::Panic {
        task: format!("chunk {chunk} (writing)"),
        message: crate::runtime::panic::panic_message(payload.as_ref()),
    })
}

/// True while this thread runs code whose panics the shared save catches; a panic hook
/// ends the job (`MPI_Abort`) only for panics that nothing catches.
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get())
}
