//! Saves on MPI ranks when the CLI was started by `mpirun` / `srun` (feature `mpi`):
//! every writing command (`ndi`, `product`, `reduce`, `run`) hands its save to [`save`],
//! which shares the chunks among the ranks; rank 0 writes the file and prints the
//! report. Without the feature, or without a launcher, a save runs in this process.

use rasterlab::Result;
use rasterlab::array::{Save, SaveReport};
use rasterlab::cluster::{KMeans, KMeansModel, Samples};
use rasterlab::profile::Profiler;

#[cfg(feature = "mpi")]
thread_local! {
    /// The MPI job of this process, when started by a launcher. The CLI's main thread
    /// is the one that talks to MPI; [`finish`] finalizes it before `main` returns.
    static MPI: std::cell::RefCell<Option<rasterlab::distributed::Mpi>> =
        const { std::cell::RefCell::new(None) };
}

/// Joins the MPI job if this process was started by an MPI launcher.
///
/// Refuses to run as one of several tasks that `srun` started without MPI (no PMI):
/// each would compute and write the whole output, racing the others for its name.
pub fn init() -> Result<()> {
    #[cfg(feature = "mpi")]
    if rasterlab::distributed::launched() {
        let mpi = rasterlab::distributed::Mpi::init()?;
        MPI.with(|m| *m.borrow_mut() = Some(mpi));
        return Ok(());
    }
    let tasks = ["SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(1);
    if tasks > 1 {
        let how = if cfg!(feature = "mpi") {
            "start it with `srun --mpi=pmix` (or your site's MPI plugin, `srun --mpi=list`) so the tasks share the work, or with one task"
        } else {
            "this rasterlab was built without feature `mpi`: build it with `--features cli,mpi`, or start one task"
        };
        return Err(rasterlab::Error::invalid(
            "srun",
            format!(
                "{tasks} tasks were started without MPI, and each would write the whole output: {how}"
            ),
        ));
    }
    Ok(())
}

/// Runs `save`, on every rank of the job when there is one. `None` on ranks other
/// than 0, which print nothing. A failed rank ends the whole job (`MPI_Abort`) after
/// rank 0 has removed its temporary file; the message names the rank and the chunk.
///
/// With a `profiler` (observing `save`), rank 0's ends up with every rank's tasks.
pub fn save(save: Save, profiler: Option<&Profiler>) -> Result<Option<SaveReport>> {
    #[cfg(feature = "mpi")]
    if let Some(mpi) = MPI.with(|m| m.borrow_mut().take()) {
        let cleaner = TempCleaner::start(save.path());
        let result = cleaner.and_then(|_cleaner| mpi.save(save));
        let report = match result {
            Ok(report) => report,
            Err(e) => mpi.fail(&e),
        };
        if let Some(p) = profiler {
            mpi.gather_profile(p);
        }
        MPI.with(|m| *m.borrow_mut() = Some(mpi));
        return Ok(report);
    }
    let _ = profiler; // it observes the save already
    save.run().map(Some)
}

/// True when this process is one of several MPI ranks.
pub fn shared() -> bool {
    #[cfg(feature = "mpi")]
    if let Some(n) = MPI.with(|m| m.borrow().as_ref().map(|mpi| mpi.size())) {
        return n > 1;
    }
    false
}

/// This process's share of the node for a fit: `plan` unchanged outside a job.
pub fn node_share(
    plan: rasterlab::runtime::resources::PoolPlan,
    threads_set: bool,
    memory_set: bool,
) -> Result<rasterlab::runtime::resources::PoolPlan> {
    #[cfg(feature = "mpi")]
    if let Some(shared) = MPI.with(|m| {
        m.borrow()
            .as_ref()
            .map(|mpi| mpi.node_share(plan.clone(), threads_set, memory_set))
    }) {
        return shared;
    }
    let _ = (threads_set, memory_set);
    Ok(plan)
}

/// Fits `km` to `x`, with every rank of the job when there is one (the same model on
/// each, bit for bit the single-process one). `None` on ranks other than 0, which print
/// and write nothing; a failure on any rank ends the job naming the rank.
pub fn fit_kmeans(km: &KMeans, x: &Samples) -> Result<Option<KMeansModel>> {
    #[cfg(feature = "mpi")]
    if let Some((rank, fit)) = MPI.with(|m| {
        m.borrow().as_ref().map(|mpi| {
            (
                mpi.rank(),
                mpi.fit_kmeans(km, x).map_err(|e| (e, mpi.rank())),
            )
        })
    }) {
        return match fit {
            Ok(model) => Ok((rank == 0).then_some(model)),
            Err((e, rank)) => MPI.with(|m| match m.borrow().as_ref() {
                Some(mpi) => mpi.fail(&rasterlab::Error::Rank {
                    rank,
                    message: e.to_string(),
                }),
                None => Err(e),
            }),
        };
    }
    km.fit(x).map(Some)
}

/// Ends the MPI job of this process (`MPI_Finalize`), if any.
pub fn finish() {
    #[cfg(feature = "mpi")]
    MPI.with(|m| drop(m.borrow_mut().take()));
}

/// While a save runs on ranks: when the launcher ends this process (SIGTERM after another
/// rank died), the main thread may be waiting inside MPI and never unwind, and the
/// launcher's SIGKILL follows within a second; this thread removes the temporary file
/// at once. (signals.rs still cancels the run, for when the main thread is free.)
#[cfg(feature = "mpi")]
struct TempCleaner {
    handle: signal_hook::iterator::Handle,
}

#[cfg(feature = "mpi")]
impl TempCleaner {
    fn start(output: &std::path::Path) -> Result<TempCleaner> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| rasterlab::Error::invalid("signals", e.to_string()))?;
        let handle = signals.handle();
        let output = output.to_path_buf();
        std::thread::Builder::new()
            .name("rasterlab-rank-cleaner".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    rasterlab::raster::output::remove_own(&output);
                }
            })
            .map_err(|e| rasterlab::Error::invalid("signals", e.to_string()))?;
        Ok(TempCleaner { handle })
    }
}

#[cfg(feature = "mpi")]
impl Drop for TempCleaner {
    fn drop(&mut self) {
        self.handle.close();
    }
}
