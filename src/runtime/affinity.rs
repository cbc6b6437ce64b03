//! Widening the calling thread's CPU affinity for a moment, so that the threads it starts
//! meanwhile may run on every core this process's cgroup allows.
//!
//! Why: `mpirun` (and `srun --cpu-bind`) bind each rank to its own cores. The writing rank
//! of a shared save encodes every rank's tiles on GDAL's compression threads, which
//! inherit the binding of the thread that starts them: on one core, the encoder is the
//! slowest part of the whole run (measured on the 4x4 mosaic's NDI, `mpirun -n 2` on 2
//! cores: 3.9-4.1 s bound against 3.2-3.4 s with the encoder free to use both cores,
//! one process 2.9-3.4 s). The kernel intersects the wider set with the cgroup's cpuset,
//! so a SLURM job's limits still hold.

/// The calling thread's previous affinity, put back when dropped.
pub(crate) struct Widened {
    saved: libc::cpu_set_t,
    /// Not `Send`: it must be dropped on the thread whose affinity it saved.
    _here: std::marker::PhantomData<*const ()>,
}

/// Lets the calling thread, and every thread it starts until the returned guard is
/// dropped, run on any core the cgroup allows. `None` (and nothing changed) if the
/// affinity cannot be read or set.
pub(crate) fn widen_this_thread() -> Option<Widened> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is a plain bit array; all-zero is a valid (empty) set.
    let mut saved: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `saved` is a writable set of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut saved) } != 0 {
        return None;
    }
    // SAFETY: as above; CPU_SET only sets bits below CPU_SETSIZE.
    let mut all: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut all) };
    }
    // SAFETY: pid 0 is the calling thread; `all` is a valid set of `size` bytes.
    if unsafe { libc::sched_setaffinity(0, size, &all) } != 0 {
        return None;
    }
    Some(Widened {
        saved,
        _here: std::marker::PhantomData,
    })
}

impl Drop for Widened {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is the calling thread, the one that made the guard (it is not
        // Send); `saved` is the set read from the kernel before.
        unsafe { libc::sched_setaffinity(0, size, &self.saved) };
    }
}
