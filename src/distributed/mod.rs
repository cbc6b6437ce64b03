//! Pipelines on MPI ranks (feature `mpi`): the same program started N times by `mpirun`
//! or SLURM's `srun`, each process (rank) computing its share of the chunks on its own
//! pool and rank 0 writing the one output file.
//!
//! MPI is the transport every cluster already has (rsmpi over the system's Open MPI);
//! there is no scheduler to keep connected. Only the thread that created [`Mpi`] talks
//! to MPI (`MPI_THREAD_FUNNELED`); worker threads never do.
//!
//! ```no_run
//! use rasterlab::prelude::*;
//! use rasterlab::distributed::Mpi;
//! # fn main() -> rasterlab::Result<()> {
//! let mpi = Mpi::init()?; // once per process, on the main thread
//! let save = rasterlab::array::Save::from_plan_file("ndi.plan.json")?;
//! match mpi.save(save) {
//!     Ok(Some(report)) => println!("{report}"), // rank 0
//!     Ok(None) => {}                            // other ranks
//!     Err(e) => mpi.fail(&e),                   // prints, ends every rank
//! }
//! # Ok(())
//! # }
//! ```

use std::thread::ThreadId;

use mpi::Threading;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::array::{Incoming, RankLink, Save, SaveReport, panic_is_caught, share_of_node};
use crate::cluster::kmeans::FitRanks;
use crate::error::{Error, Result};
use crate::runtime::resources::PoolPlan;

pub use crate::array::FAULT_VAR;

/// Tag of a chunk's header (its index), followed by its data.
const TAG_HEAD: i32 = 11;
/// Tag of a chunk's values.
const TAG_DATA: i32 = 12;
/// Tag of a failure message (UTF-8 text).
const TAG_FAIL: i32 = 13;
/// Tag of a rank's profile record (`Profiler::rank_record`).
#[cfg(feature = "profile")]
const TAG_PROFILE: i32 = 14;

/// Exit code of a job ended because a rank failed.
pub const EXIT_RANK_FAILED: i32 = 3;

/// This process's place in an MPI job. Dropping it finalizes MPI.
pub struct Mpi {
    world: SimpleCommunicator,
    // Finalizes MPI when dropped: after `world`, declared first.
    _universe: Universe,
}

/// True when this process was started by an MPI launcher (`mpirun`/`mpiexec` of Open
/// MPI or MPICH, or `srun` with PMI/PMIx), so [`Mpi::init`] joins a job of several
/// ranks.
pub fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// The first number of an environment variable (`SLURM_NTASKS_PER_NODE=2(x3)` is 2).
fn env_count(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n > 0)
}

impl Mpi {
    /// Initializes MPI (once per process, on the thread that will run saves) and installs
    /// a panic hook: a panic on this thread that nothing catches ends the whole job with
    /// `MPI_Abort` instead of leaving the other ranks waiting in `MPI_Finalize` forever.
    /// Started without a launcher, this process is a job of one rank.
    pub fn init() -> Result<Mpi> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::invalid("MPI", "already initialized in this process"))?;
        if threading < Threading::Funneled {
            return Err(Error::invalid(
                "MPI",
                format!("the MPI library offers {threading:?} threading; rasterlab needs Funneled"),
            ));
        }
        let world = universe.world();
        install_panic_hook(std::thread::current().id(), world.rank());
        Ok(Mpi {
            world,
            _universe: universe,
        })
    }

    /// This process's rank, 0-based.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    /// Ranks in the job.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// Runs `save` with every rank of the job (each rank calls this with the same save):
    /// see [`Save`]'s distributed run. Rank 0 returns the report; others `None`. An
    /// error is [`Error::Rank`], naming the rank (and the chunk, when a chunk failed);
    /// rank 0's temporary file is already removed when it returns.
    pub fn save(&self, save: Save) -> Result<Option<SaveReport>> {
        let rank = self.rank();
        save.run_ranks(self).map_err(|e| match e {
            Error::Rank { .. } => e,
            other => Error::Rank {
                rank,
                message: other.to_string(),
            },
        })
    }

    /// Reports `error` on stderr and ends every rank of the job (`MPI_Abort`, exit code
    /// [`EXIT_RANK_FAILED`]).
    pub fn fail(&self, error: &Error) -> ! {
        eprintln!("error: {error}");
        self.world.abort(EXIT_RANK_FAILED)
    }

    /// This rank's share of its node: `plan`'s threads (or `SLURM_CPUS_PER_TASK`) and
    /// memory budget divided among the ranks on the node, each unless the caller set it
    /// (`threads_set`, `memory_set`). Saves do this themselves; a fit is given its
    /// threads ([`Mpi::fit_kmeans`]).
    pub fn node_share(
        &self,
        plan: PoolPlan,
        threads_set: bool,
        memory_set: bool,
    ) -> Result<PoolPlan> {
        share_of_node(plan, self, threads_set, memory_set)
    }

    /// Gathers every rank's tasks into rank 0's `profiler` (a collective: every rank
    /// calls it after the same save), so its figure shows one row per rank and thread
    /// (`r1 worker 0`, ...). Resource samples (CPU, memory) stay rank 0's.
    #[cfg(feature = "profile")]
    pub fn gather_profile(&self, profiler: &crate::profile::Profiler) {
        if self.rank() == 0 {
            for rank in 1..self.size() {
                let (record, _) = self
                    .world
                    .process_at_rank(rank as i32)
                    .receive_vec_with_tag::<f64>(TAG_PROFILE);
                profiler.add_rank_record(rank, &record);
            }
        } else {
            let record = profiler.rank_record();
            let to = self.world.process_at_rank(0);
            mpi::request::scope(|scope| {
                wait_gently(to.immediate_synchronous_send_with_tag(
                    scope,
                    &record[..],
                    TAG_PROFILE,
                ));
            });
        }
    }

    /// Waits for every rank (without spinning on the core while it waits).
    pub fn barrier(&self) {
        wait_gently(self.world.immediate_barrier());
    }
}

impl RankLink for Mpi {
    fn rank(&self) -> usize {
        Mpi::rank(self)
    }

    fn ranks(&self) -> usize {
        self.size()
    }

    fn ranks_on_node(&self) -> usize {
        env_count("OMPI_COMM_WORLD_LOCAL_SIZE")
            .or_else(|| env_count("MPI_LOCALNRANKS"))
            .or_else(|| env_count("SLURM_NTASKS_PER_NODE"))
            .unwrap_or_else(|| self.world.split_shared(0).size().max(1) as usize)
    }

    fn cpus_per_rank(&self) -> Option<usize> {
        env_count("SLURM_CPUS_PER_TASK")
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>> {
        let mut all = vec![0u64; self.size()];
        self.world.all_gather_into(&value, &mut all[..]);
        Ok(all)
    }

    fn send_chunk(&self, chunk: usize, data: &[f32]) -> Result<()> {
        let to = self.world.process_at_rank(0);
        // Synchronous: returns once rank 0 is receiving, so a chunk's memory permit is
        // held until the writer has it and no rank floods the writer's buffers.
        let head = chunk as u64;
        mpi::request::scope(|scope| {
            wait_gently(to.immediate_synchronous_send_with_tag(scope, &head, TAG_HEAD));
            wait_gently(to.immediate_synchronous_send_with_tag(scope, data, TAG_DATA));
        });
        Ok(())
    }

    fn send_failure(&self, message: &str) -> Result<()> {
        self.world
            .process_at_rank(0)
            .synchronous_send_with_tag(message.as_bytes(), TAG_FAIL);
        Ok(())
    }

    fn poll(&self) -> Result<Option<Incoming>> {
        let any = self.world.any_process();
        if let Some((msg, status)) = any.immediate_matched_probe_with_tag(TAG_FAIL) {
            let (text, _) = (msg, status).matched_receive_vec::<u8>();
            return Ok(Some(Incoming::Failed {
                rank: status.source_rank() as usize,
                message: String::from_utf8_lossy(&text).into_owned(),
            }));
        }
        let Some((msg, status)) = any.immediate_matched_probe_with_tag(TAG_HEAD) else {
            return Ok(None);
        };
        let (chunk, _) = msg.matched_receive::<u64>();
        let from = status.source_rank();
        let (data, _) = self
            .world
            .process_at_rank(from)
            .receive_vec_with_tag::<f32>(TAG_DATA);
        Ok(Some(Incoming::Chunk {
            rank: from as usize,
            chunk: chunk as usize,
            data,
        }))
    }

    fn barrier(&self) {
        wait_gently(self.world.immediate_barrier());
    }
}

/// Waits for `request` by testing it with short sleeps between tests. MPI's own blocking
/// calls spin on the core while they wait: a rank waiting for the writer (or at the
/// final barrier) then takes CPU from the pools computing chunks on the same node, which
/// measured as ~70 % more CPU time for `mpirun -n 2` on 2 cores (README, Beyond one
/// machine). The sleep grows from 20 us to 1 ms, so a quick answer is still seen quickly.
fn wait_gently<'a, D: ?Sized, S: mpi::request::Scope<'a>>(
    mut request: mpi::request::Request<'a, D, S>,
) {
    let mut pause = std::time::Duration::from_micros(20);
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => request = pending,
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(1));
    }
}

/// After the default message, ends the job when the MPI thread panics outside code that
/// catches the panic (a chunk's, or the writer's); other threads' panics are the pool
/// workers', which the executor catches.
fn install_panic_hook(main: ThreadId, rank: i32) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if std::thread::current().id() == main && !panic_is_caught() {
            eprintln!("error: rank {rank} panicked; ending the job");
            // SAFETY-free: MPI_Abort on the thread that initialized MPI.
            SimpleCommunicator::world().abort(EXIT_RANK_FAILED);
        }
    }));
}

/// A request of a shared k-means fit to the MPI thread: values to all-gather, and where
/// to send the result.
enum Gather {
    F64(Vec<f64>, crossbeam_channel::Sender<Vec<f64>>),
    I32(Vec<i32>, crossbeam_channel::Sender<Vec<i32>>),
}

/// The fit's side of [`Mpi::fit_kmeans`]: it runs on the pool's threads, which may not
/// call MPI (`MPI_THREAD_FUNNELED`), so each collective goes to the MPI thread.
struct FitLink {
    rank: usize,
    ranks: usize,
    to_mpi: crossbeam_channel::Sender<Gather>,
}

impl FitRanks for FitLink {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn all_gather_f64(&self, mine: &[f64]) -> Vec<f64> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        // The MPI thread serves until this link is dropped, so it is there to answer.
        let _ = self.to_mpi.send(Gather::F64(mine.to_vec(), tx));
        rx.recv().unwrap_or_default()
    }

    fn all_gather_i32(&self, mine: &[i32]) -> Vec<i32> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self.to_mpi.send(Gather::I32(mine.to_vec(), tx));
        rx.recv().unwrap_or_default()
    }
}

impl Mpi {
    /// Fits `km` to `x` with every rank of the job, each holding the same samples (each
    /// rank reads them: samples are small next to the rasters they come from): the
    /// initialisation is computed by every rank from the same seed, and each iteration's
    /// assignment pass is split among the ranks by whole chunks of samples, whose
    /// partial sums are gathered and reduced in chunk order. Every rank returns the
    /// model a single process fits, bit for bit (labels, centroids, inertia, iterations).
    /// Each rank computes with `km`'s threads (give each rank its share of the node).
    pub fn fit_kmeans(
        &self,
        km: &crate::cluster::KMeans,
        x: &(impl crate::cluster::AsFeatures + Sync + ?Sized),
    ) -> Result<crate::cluster::KMeansModel> {
        let (to_mpi, requests) = crossbeam_channel::unbounded::<Gather>();
        let link = FitLink {
            rank: self.rank(),
            ranks: self.size(),
            to_mpi,
        };
        std::thread::scope(|scope| {
            let fit = scope.spawn(move || {
                let link = link; // dropped when the fit ends, which ends the loop below
                km.fit_shared(x, &link)
            });
            for request in requests.iter() {
                match request {
                    Gather::F64(mine, reply) => {
                        let _ = reply.send(self.all_gather_varcount(&mine));
                    }
                    Gather::I32(mine, reply) => {
                        let _ = reply.send(self.all_gather_varcount(&mine));
                    }
                }
            }
            fit.join().map_err(|payload| Error::Panic {
                task: "k-means fit".into(),
                message: crate::runtime::panic::panic_message(payload.as_ref()),
            })?
        })
    }

    /// Every rank's `mine`, concatenated in rank order (lengths may differ).
    fn all_gather_varcount<T: Equivalence + Default + Clone>(&self, mine: &[T]) -> Vec<T> {
        let counts: Vec<i32> = {
            let mut all = vec![0i32; self.size()];
            self.world
                .all_gather_into(&(mine.len() as i32), &mut all[..]);
            all
        };
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total: i32 = counts.iter().sum();
        let mut all = vec![T::default(); total.max(0) as usize];
        {
            let mut partition = mpi::datatype::PartitionMut::new(&mut all[..], counts, displs);
            self.world.all_gather_varcount_into(mine, &mut partition);
        }
        all
    }
}

/// Tag of a rank's `map_blocks` results (CBOR).
const TAG_BLOCKS: i32 = 15;

impl Mpi {
    /// [`LazyArray::map_blocks`](crate::array::LazyArray::map_blocks) with every rank
    /// of the job (each calls it with the same array and function): each rank maps its
    /// part of the chunk grid (the split of a shared save) on its share of the node, and
    /// rank 0 receives every result and returns them all **in block order**, as one
    /// process would; other ranks return `None`. Results travel as CBOR (NaN included),
    /// hence `Serialize + DeserializeOwned`.
    ///
    /// A rank whose part fails sends its error to rank 0, which returns
    /// [`Error::Rank`] naming the rank (and the block); end the job with [`Mpi::fail`].
    ///
    /// ```no_run
    /// use rasterlab::prelude::*;
    /// # fn main() -> rasterlab::Result<()> {
    /// let mpi = rasterlab::distributed::Mpi::init()?;
    /// let nir = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["r", "g", "b", "nir"])?.band("nir")?;
    /// let sums = mpi.map_blocks(&nir.chunks(100)?, |b| b.data.iter().map(|&v| v as f64).sum::<f64>());
    /// match sums {
    ///     Ok(Some(sums)) => println!("{} blocks", sums.len()), // rank 0, in block order
    ///     Ok(None) => {}                                     // other ranks
    ///     Err(e) => mpi.fail(&e),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_blocks<T>(
        &self,
        array: &crate::array::LazyArray,
        f: impl Fn(&crate::array::Block) -> T + Sync,
    ) -> Result<Option<Vec<T>>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send,
    {
        let mine = array.map_blocks_on_rank(self, f);
        if self.rank() != 0 {
            // Errors travel as their text (which names the block).
            let sent: std::result::Result<Vec<(usize, T)>, String> =
                mine.map_err(|e| e.to_string());
            let mut bytes = Vec::new();
            ciborium::into_writer(&sent, &mut bytes)
                .map_err(|e| Error::internal(format!("map_blocks results as CBOR: {e}")))?;
            let to = self.world.process_at_rank(0);
            mpi::request::scope(|scope| {
                wait_gently(to.immediate_synchronous_send_with_tag(scope, &bytes[..], TAG_BLOCKS));
            });
            return Ok(None);
        }
        let mut all = mine?;
        for rank in 1..self.size() {
            let (bytes, _) = self
                .world
                .process_at_rank(rank as i32)
                .receive_vec_with_tag::<u8>(TAG_BLOCKS);
            let got: std::result::Result<Vec<(usize, T)>, String> =
                ciborium::from_reader(&bytes[..]).map_err(|e| Error::Rank {
                    rank,
                    message: format!("sent map_blocks results that do not parse: {e}"),
                })?;
            all.extend(got.map_err(|message| Error::Rank { rank, message })?);
        }
        all.sort_by_key(|(id, _)| *id);
        Ok(Some(all.into_iter().map(|(_, v)| v).collect()))
    }
}
