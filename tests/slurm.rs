//! `SlurmJob` against a real single-node Slurm (Debian's slurmctld, slurmd and munge)
//! started by `scripts/slurm.sh` in a temporary folder: a job that runs rasterlab on the
//! real scene completes and writes what the same command writes without Slurm; a failing
//! job reports FAILED with the exit code the command gives when run directly; values full
//! of quotes, `$(...)`, backticks and newlines reach the job verbatim and never run.
//!
//! One test function: the Slurm tools find the test cluster through `SLURM_CONF`, which
//! is set once, before anything else runs in this binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cli::*;
use common::*;
use rasterlab::slurm::{JobState, SlurmJob};

/// The cluster; stopped (and its folder removed) when dropped, also when a test fails.
struct Slurm {
    dir: tempfile::TempDir,
}

impl Slurm {
    fn start() -> Option<Slurm> {
        if !is_root() {
            eprintln!("SKIPPED (slurmd needs root): slurm: not running as root");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("rasterlab-slurm-")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/slurm.sh");
        assert!(
            out.status.success(),
            "Slurm did not start (scripts/setup.sh installs it):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Some(Slurm { dir })
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn jobs_on_a_real_single_node_slurm() {
    let Some(slurm) = Slurm::start() else { return };
    // SAFETY: this binary holds this one test, and it sets the variable before it starts
    // any thread or child; nothing reads the environment concurrently.
    unsafe { std::env::set_var("SLURM_CONF", slurm.conf()) };
    let work = tempfile::tempdir().expect("tempdir");

    a_job_runs_rasterlab_like_the_command_line(work.path());
    if cfg!(feature = "mpi") {
        a_plan_runs_on_the_ranks_of_a_job(work.path());
    }
    a_failing_job_reports_failed_with_its_exit_code(work.path());
    odd_values_reach_the_job_verbatim_and_never_run(work.path());
}

fn a_job_runs_rasterlab_like_the_command_line(work: &Path) {
    let direct = work.join("direct.tif");
    let mut args: Vec<String> = vec!["ndi".into(), abs(SCENE)];
    args.extend(NDI.map(String::from));
    args.extend(["--quiet".into(), "-o".into()]);
    let mut direct_args = args.clone();
    direct_args.push(direct.display().to_string());
    let refs: Vec<&str> = direct_args.iter().map(String::as_str).collect();
    succeeded(work, &refs);

    let via_slurm = work.join("via slurm.tif");
    args.push(via_slurm.display().to_string());
    let job = SlurmJob::new("ndi")
        .cpus_per_task(2)
        .program(EXE)
        .output_dir(work.join("jobs"))
        .command(args);
    let submitted = job.submit().expect("sbatch");
    let state = submitted.wait(WAIT, true).expect("wait");
    assert_eq!(
        state,
        JobState::Completed,
        "log:\n{}",
        submitted.logs().unwrap_or_default()
    );
    assert_eq!(submitted.status().expect("status"), JobState::Completed);
    let (w, h, a) = read_output(&direct);
    let (w2, h2, b) = read_output(&via_slurm);
    assert_eq!((w, h), (w2, h2));
    let same = a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
    assert!(same, "the job's output differs from the direct run's");
    assert!(submitted.script.is_file());
}

/// A plan written from a `LazyArray`, run by a job of two tasks (`srun --mpi=pmix`): the
/// tasks are MPI ranks sharing the chunks, and the file is the one-process run's.
fn a_plan_runs_on_the_ranks_of_a_job(work: &Path) {
    use rasterlab::prelude::*;
    let plan = work.join("ndi.plan.json");
    Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .and_then(|r| r.with_nodata(Some(0.0)).norm_diff("green", "red"))
        .expect("ndi")
        .save(work.join("planned.tif"))
        .chunks(256)
        .to_plan_file(&plan)
        .expect("plan file");
    let direct = work.join("plan direct.tif");
    let plan_s = plan.display().to_string();
    let direct_s = direct.display().to_string();
    succeeded(work, &["run", &plan_s, "--quiet", "-o", &direct_s]);

    let on_ranks = work.join("plan on ranks.tif");
    let submitted = SlurmJob::new("plan")
        .tasks_per_node(2)
        .program(EXE)
        .env("RASTERLAB_THREADS", "1")
        .output_dir(work.join("jobs"))
        .run_plan(&plan, &on_ranks)
        .submit()
        .expect("sbatch");
    let state = submitted.wait(WAIT, true).expect("wait");
    let log = submitted.logs().unwrap_or_default();
    assert_eq!(state, JobState::Completed, "log:\n{log}");
    assert!(
        log.contains("ranks:    2"),
        "not shared by two ranks:\n{log}"
    );
    let (a, b) = (read_output(&direct), read_output(&on_ranks));
    assert_eq!((a.0, a.1), (b.0, b.1));
    let same =
        a.2.iter()
            .zip(&b.2)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
    assert!(same, "the job's output differs from the direct run's");

    // Without an MPI plugin the two tasks are not ranks: each would write the whole
    // file, so rasterlab refuses, and nothing is written.
    let racing = work.join("plan racing.tif");
    let submitted = SlurmJob::new("noplugin")
        .tasks_per_node(2)
        .mpi_plugin(None)
        .program(EXE)
        .output_dir(work.join("jobs"))
        .run_plan(&plan, &racing)
        .submit()
        .expect("sbatch");
    let state = submitted.wait(WAIT, true).expect("wait");
    let log = submitted.logs().unwrap_or_default();
    assert!(matches!(state, JobState::Failed { .. }), "{state:?}\n{log}");
    assert!(log.contains("started without MPI"), "{log}");
    assert!(!racing.exists());
}

fn a_failing_job_reports_failed_with_its_exit_code(work: &Path) {
    let missing = work.join("no such scene.tif").display().to_string();
    let direct = run_in(work, &["info", &missing]);
    let code = direct.status.code().expect("exit code");
    assert_ne!(code, 0);

    let submitted = SlurmJob::new("broken")
        .program(EXE)
        .output_dir(work.join("jobs"))
        .command(["info", missing.as_str()])
        .submit()
        .expect("sbatch");
    let state = submitted.wait(WAIT, true).expect("wait");
    assert_eq!(
        state,
        JobState::Failed {
            exit_code: code,
            signal: 0
        }
    );
    // The log holds rasterlab's own one-line error, naming the file.
    let log = submitted.logs().expect("log");
    assert!(log.contains("no such scene.tif"), "{log}");
}

fn odd_values_reach_the_job_verbatim_and_never_run(work: &Path) {
    let canary = work.join("PWNED");
    let c = canary.display();
    let value = format!(
        "it's \"quoted\" $(touch {c}) `touch {c}` ; touch {c} \\ $HOME\nsecond line; touch {c}"
    );
    let dir = work.join(format!("jobs it's \"odd\" $(touch {c}) `touch {c}`"));
    let job = SlurmJob::new("odd")
        .output_dir(&dir)
        .env("RASTERLAB_ODD_VALUE", value.clone())
        .program("/usr/bin/printenv")
        .command(["RASTERLAB_ODD_VALUE"]);
    let script = job.job_script().expect("script");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash -n");
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));

    let submitted = job.submit().expect("sbatch");
    let state = submitted.wait(WAIT, true).expect("wait");
    let log = submitted.logs().expect("log");
    assert_eq!(state, JobState::Completed, "{log}");
    assert!(
        submitted.log.starts_with(&dir),
        "{}",
        submitted.log.display()
    );
    assert_eq!(log, format!("{value}\n"));
    assert!(!canary.exists(), "a value ran as shell code");
    assert!(!Path::new("PWNED").exists());
}
