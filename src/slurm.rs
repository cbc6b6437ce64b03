//! SLURM batch jobs from the notebook: one multi-node allocation that runs a plan with
//! `srun`, and survives the notebook closing.
//!
//! Where dask-jobqueue starts one job per worker and keeps a scheduler connected to the
//! notebook, a [`SlurmJob`] is one `sbatch` script: the allocation (nodes, tasks, cores,
//! memory, time), set-up lines (modules, environment) and one `srun` command, typically
//! `srun rasterlab run PLAN -o OUT` for a plan written from a notebook cell. The job then
//! runs on its own; [`SubmittedJob`] asks the scheduler how it is doing.
//!
//! Every value that reaches the shell is single-quoted, so names, paths and environment
//! values holding spaces, quotes, `$(...)`, backticks or newlines are passed through
//! verbatim and can never run as code. Values on `#SBATCH` lines are read by `sbatch`,
//! not by the shell, but a newline there would end the comment and start a command: such
//! values are refused.
//!
//! ```
//! use rasterlab::slurm::SlurmJob;
//! use std::time::Duration;
//!
//! # fn main() -> rasterlab::Result<()> {
//! let job = SlurmJob::new("ndvi-2020")
//!     .nodes(2)
//!     .tasks_per_node(4)
//!     .cpus_per_task(8)
//!     .memory("32G")
//!     .walltime(Duration::from_secs(2 * 3600))
//!     .partition("small")
//!     .account("project_2001234")
//!     .module("gdal/3.6")
//!     .env("GDAL_CACHEMAX", "512")
//!     .output_dir("/scratch/me/jobs")
//!     .run_plan("/scratch/me/ndvi.plan.json", "/scratch/me/ndvi.tif");
//! let script = job.job_script()?;
//! assert!(script.contains("#SBATCH --nodes=2"));
//! assert!(script.contains("srun --mpi='pmix' 'rasterlab' 'run' '/scratch/me/ndvi.plan.json'"));
//! // job.submit()? would hand it to sbatch and return the job id.
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A batch job: the allocation, set-up lines and the command `srun` starts on every task.
///
/// Setters never fail; [`job_script`](Self::job_script) and [`submit`](Self::submit)
/// check everything at once.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a SlurmJob does nothing until .submit()"]
pub struct SlurmJob {
    name: String,
    nodes: u32,
    tasks_per_node: u32,
    cpus_per_task: u32,
    memory: Option<String>,
    walltime: Option<Duration>,
    partition: Option<String>,
    account: Option<String>,
    overcommit: bool,
    modules: Vec<String>,
    env: Vec<(String, String)>,
    setup: Vec<String>,
    output_dir: PathBuf,
    program: String,
    args: Vec<String>,
    mpi: Option<String>,
}

impl SlurmJob {
    /// A job named `name` (letters, digits, `.`, `_`, `-`): one node, one task, one core,
    /// the cluster's default memory and time, output in the current folder, no command
    /// yet (see [`run_plan`](Self::run_plan) and [`command`](Self::command)).
    pub fn new(name: impl Into<String>) -> SlurmJob {
        SlurmJob {
            name: name.into(),
            nodes: 1,
            tasks_per_node: 1,
            cpus_per_task: 1,
            memory: None,
            walltime: None,
            partition: None,
            account: None,
            overcommit: false,
            modules: Vec::new(),
            env: Vec::new(),
            setup: Vec::new(),
            output_dir: PathBuf::from("."),
            program: "rasterlab".into(),
            args: Vec::new(),
            mpi: Some("pmix".into()),
        }
    }

    /// Nodes of the allocation (`--nodes`).
    pub fn nodes(mut self, n: u32) -> SlurmJob {
        self.nodes = n;
        self
    }

    /// Tasks (MPI ranks) per node (`--ntasks-per-node`).
    pub fn tasks_per_node(mut self, n: u32) -> SlurmJob {
        self.tasks_per_node = n;
        self
    }

    /// Cores per task (`--cpus-per-task`): each rank's thread pool.
    pub fn cpus_per_task(mut self, n: u32) -> SlurmJob {
        self.cpus_per_task = n;
        self
    }

    /// Memory per node with its unit, as SLURM writes it: `"32G"`, `"4000M"` (`--mem`).
    pub fn memory(mut self, mem: impl Into<String>) -> SlurmJob {
        self.memory = Some(mem.into());
        self
    }

    /// Time limit (`--time`), rounded up to whole seconds.
    pub fn walltime(mut self, limit: Duration) -> SlurmJob {
        self.walltime = Some(limit);
        self
    }

    /// Partition (`--partition`).
    pub fn partition(mut self, name: impl Into<String>) -> SlurmJob {
        self.partition = Some(name.into());
        self
    }

    /// Account billed (`--account`).
    pub fn account(mut self, name: impl Into<String>) -> SlurmJob {
        self.account = Some(name.into());
        self
    }

    /// Lets tasks share cores (`--overcommit`): more ranks than cores, as on a laptop
    /// or a 2-core test node.
    pub fn overcommit(mut self, yes: bool) -> SlurmJob {
        self.overcommit = yes;
        self
    }

    /// A `module load NAME` line before the command.
    pub fn module(mut self, name: impl Into<String>) -> SlurmJob {
        self.modules.push(name.into());
        self
    }

    /// An `export NAME='value'` line before the command; the value is passed verbatim.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> SlurmJob {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A set-up line written as given (e.g. `source /appl/profile/env.sh`). It is shell
    /// code on purpose, so it is the one place where nothing is quoted: never build it
    /// from untrusted text.
    pub fn setup_line(mut self, line: impl Into<String>) -> SlurmJob {
        self.setup.push(line.into());
        self
    }

    /// Folder of the job script and its log (`NAME-JOBID.out`, standard output and
    /// error together); created at submit.
    pub fn output_dir(mut self, dir: impl AsRef<Path>) -> SlurmJob {
        self.output_dir = dir.as_ref().to_path_buf();
        self
    }

    /// The MPI plugin `srun` starts the tasks with (`srun --mpi=PLUGIN`; default `pmix`,
    /// what Open MPI 4 and later use; `srun --mpi=list` shows a cluster's). Without one
    /// (`None`), several tasks would not be MPI ranks, and `rasterlab` refuses to run as
    /// one of them (each would write the whole output).
    pub fn mpi_plugin(mut self, plugin: Option<&str>) -> SlurmJob {
        self.mpi = plugin.map(str::to_string);
        self
    }

    /// The rasterlab binary the job starts (default: `rasterlab` on the nodes' `PATH`).
    pub fn program(mut self, path: impl Into<String>) -> SlurmJob {
        self.program = path.into();
        self
    }

    /// The command: `srun PROGRAM run PLAN -o OUTPUT` (a plan written with
    /// `Save::to_plan_file`).
    pub fn run_plan(mut self, plan: impl AsRef<Path>, output: impl AsRef<Path>) -> SlurmJob {
        self.args = vec![
            "run".into(),
            path_text(plan.as_ref()),
            "-o".into(),
            path_text(output.as_ref()),
        ];
        self
    }

    /// The command as arguments of the program (`["ndi", "scene.tif", ...]`); each is
    /// quoted on its own.
    pub fn command<I, S>(mut self, args: I) -> SlurmJob
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks every setting: counts at least 1, a plain job name, memory as a number
    /// with an optional K/M/G/T unit, environment names that are shell identifiers, no
    /// newline in what `sbatch` reads, a command.
    pub fn check(&self) -> Result<()> {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.name.is_empty() || !self.name.chars().all(plain) {
            return Err(Error::invalid(
                "job name",
                format!(
                    "{:?}: use letters, digits, '.', '_' and '-' (it names the log file)",
                    self.name
                ),
            ));
        }
        for (what, n) in [
            ("nodes", self.nodes),
            ("tasks per node", self.tasks_per_node),
            ("cpus per task", self.cpus_per_task),
        ] {
            if n == 0 {
                return Err(Error::invalid(what, "must be at least 1"));
            }
        }
        if let Some(mem) = &self.memory {
            let digits = mem.trim_end_matches(['K', 'M', 'G', 'T']);
            let unit_ok = mem.len() - digits.len() <= 1;
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !unit_ok {
                return Err(Error::invalid(
                    "memory",
                    format!("{mem:?}: write a number with an optional unit K, M, G or T (\"32G\")"),
                ));
            }
        }
        if self.walltime.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid("walltime", "must be longer than zero"));
        }
        for (what, value) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = value {
                if v.is_empty() || v.contains(['\n', '\r']) || v.contains(char::is_whitespace) {
                    return Err(Error::invalid(
                        what,
                        format!("{v:?}: a SLURM name has no spaces or newlines"),
                    ));
                }
            }
        }
        let dir = path_text(&self.output_dir);
        if dir.contains(['\n', '\r']) {
            return Err(Error::invalid(
                "output folder",
                format!("{dir:?}: sbatch cannot take a newline in the log path"),
            ));
        }
        for (name, _) in &self.env {
            let ident = name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !ident {
                return Err(Error::invalid(
                    "environment variable",
                    format!("{name:?} is not a variable name (letters, digits, '_')"),
                ));
            }
        }
        for line in self.modules.iter().chain(&self.setup) {
            if line.contains(['\n', '\r']) {
                return Err(Error::invalid(
                    "set-up line",
                    format!("{line:?}: one line each, without newlines"),
                ));
            }
        }
        if self.args.is_empty() {
            return Err(Error::invalid(
                "command",
                "nothing to run: give .run_plan(plan, output) or .command([...])",
            ));
        }
        Ok(())
    }

    /// The `sbatch` script, after [`check`](Self::check).
    pub fn job_script(&self) -> Result<String> {
        self.check()?;
        let mut s = String::from("#!/bin/bash\n");
        let mut directive = |opt: String| {
            s.push_str("#SBATCH ");
            s.push_str(&opt);
            s.push('\n');
        };
        directive(format!("--job-name={}", self.name));
        directive(format!("--nodes={}", self.nodes));
        directive(format!("--ntasks-per-node={}", self.tasks_per_node));
        directive(format!("--cpus-per-task={}", self.cpus_per_task));
        if let Some(mem) = &self.memory {
            directive(format!("--mem={mem}"));
        }
        if let Some(t) = self.walltime {
            directive(format!("--time={}", slurm_time(t)));
        }
        if let Some(p) = &self.partition {
            directive(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            directive(format!("--account={a}"));
        }
        if self.overcommit {
            directive("--overcommit".into());
        }
        // sbatch reads these lines itself: a double-quoted value keeps spaces; `%j` is
        // the job id, the one placeholder used.
        directive(format!(
            "--output=\"{}\"",
            sbatch_quote(&self.log_pattern().display().to_string())
        ));
        s.push_str("\nset -euo pipefail\n");
        for m in &self.modules {
            s.push_str(&format!("module load {}\n", shell_quote(m)));
        }
        for (name, value) in &self.env {
            s.push_str(&format!("export {name}={}\n", shell_quote(value)));
        }
        for line in &self.setup {
            s.push_str(line);
            s.push('\n');
        }
        // Each rank sizes its pool from SLURM_CPUS_PER_TASK; srun starts every task.
        s.push_str("srun ");
        if let Some(plugin) = &self.mpi {
            s.push_str(&format!("--mpi={} ", shell_quote(plugin)));
        }
        s.push_str(&shell_quote(&self.program));
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(a));
        }
        s.push('\n');
        Ok(s)
    }

    fn log_pattern(&self) -> PathBuf {
        self.output_dir.join(format!("{}-%j.out", self.name))
    }

    /// Writes the script into the output folder and hands it to `sbatch`; returns the
    /// job, already queued. `sbatch` runs with the output folder as the working folder
    /// of the job unless the script changes it.
    pub fn submit(&self) -> Result<SubmittedJob> {
        let script = self.job_script()?;
        std::fs::create_dir_all(&self.output_dir).map_err(|source| Error::Io {
            path: self.output_dir.clone(),
            source,
        })?;
        let file = self.output_dir.join(format!("{}.sbatch", self.name));
        crate::raster::output::write_atomic(&file, script.as_bytes())?;
        let out = run_tool(Command::new("sbatch").arg("--parsable").arg(&file))?;
        // --parsable prints `ID` or `ID;cluster`
        let text = out.trim();
        let id = text
            .split(';')
            .next()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .ok_or_else(|| Error::Scheduler {
                command: "sbatch".into(),
                reason: format!("no job id in its answer {text:?}"),
            })?;
        let log = PathBuf::from(
            self.log_pattern()
                .display()
                .to_string()
                .replace("%j", &id.to_string()),
        );
        Ok(SubmittedJob {
            id,
            name: self.name.clone(),
            script: file,
            log,
        })
    }
}

impl fmt::Display for SlurmJob {
    /// The job script, or why there is none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.job_script() {
            Ok(s) => f.write_str(&s),
            Err(e) => write!(f, "# not a valid job: {e}"),
        }
    }
}

impl SlurmJob {
    /// The job script in a `<pre>` block, for the notebook.
    pub fn to_html(&self) -> String {
        format!(
            "<pre class=\"rasterlab-slurm\">{}</pre>",
            crate::core::fmt::escape_html(&self.to_string())
        )
    }

    /// Renders in an evcxr notebook cell.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

/// A job handed to SLURM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    /// The job id `sbatch` gave.
    pub id: u64,
    /// The job's name.
    pub name: String,
    /// The submitted script.
    pub script: PathBuf,
    /// The job's log (standard output and error).
    pub log: PathBuf,
}

/// Where a job is, in SLURM's words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for its allocation.
    Pending,
    /// Running (or completing).
    Running,
    /// Ended with exit code 0.
    Completed,
    /// Ended with a non-zero exit code (or a signal).
    Failed {
        /// The exit code of the batch script (`ExitCode=3:0` gives 3).
        exit_code: i32,
        /// The signal that ended it, if any.
        signal: i32,
    },
    /// Cancelled (`scancel`).
    Cancelled,
    /// Ran out of its time limit.
    Timeout,
    /// Killed for using more memory than asked.
    OutOfMemory,
    /// Any other state SLURM reports (`NODE_FAIL`, `PREEMPTED`, ...).
    Other(String),
}

impl JobState {
    /// True once the job will not change any more.
    pub fn is_finished(&self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }

    fn parse(state: &str, exit: Option<&str>) -> JobState {
        let (code, signal) = exit
            .and_then(|e| e.split_once(':'))
            .map(|(c, s)| (c.parse().unwrap_or(0), s.parse().unwrap_or(0)))
            .unwrap_or((0, 0));
        // sacct and scontrol add reasons after a space ("CANCELLED by 0")
        match state.split_whitespace().next().unwrap_or("") {
            "PENDING" | "CONFIGURING" | "REQUEUED" | "RESV_DEL_HOLD" | "SUSPENDED" => {
                JobState::Pending
            }
            "RUNNING" | "COMPLETING" | "STAGE_OUT" => JobState::Running,
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed {
                exit_code: code,
                signal,
            },
            "CANCELLED" => JobState::Cancelled,
            "TIMEOUT" => JobState::Timeout,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            other => JobState::Other(other.to_string()),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Pending => f.write_str("PENDING"),
            JobState::Running => f.write_str("RUNNING"),
            JobState::Completed => f.write_str("COMPLETED"),
            JobState::Failed { exit_code, signal } if *signal != 0 => {
                write!(f, "FAILED (exit code {exit_code}, signal {signal})")
            }
            JobState::Failed { exit_code, .. } => write!(f, "FAILED (exit code {exit_code})"),
            JobState::Cancelled => f.write_str("CANCELLED"),
            JobState::Timeout => f.write_str("TIMEOUT"),
            JobState::OutOfMemory => f.write_str("OUT_OF_MEMORY"),
            JobState::Other(s) => f.write_str(s),
        }
    }
}

impl SubmittedJob {
    /// Asks the scheduler: `scontrol show job` while SLURM remembers the job (running
    /// jobs and, for `MinJobAge`, finished ones), then `sacct` where accounting runs.
    pub fn status(&self) -> Result<JobState> {
        let id = self.id.to_string();
        if let Ok(text) = run_tool(Command::new("scontrol").args(["show", "job", &id, "-o"])) {
            let field = |key: &str| {
                text.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key))
                    .map(str::to_string)
            };
            if let Some(state) = field("JobState=") {
                return Ok(JobState::parse(&state, field("ExitCode=").as_deref()));
            }
        }
        let text = run_tool(Command::new("sacct").args([
            "-n",
            "-P",
            "-X",
            "-j",
            &id,
            "-o",
            "State,ExitCode",
        ]))?;
        let line = text.lines().next().unwrap_or("").trim();
        let (state, exit) = line.split_once('|').ok_or_else(|| Error::Scheduler {
            command: "sacct".into(),
            reason: format!("job {id} is unknown to scontrol and sacct"),
        })?;
        Ok(JobState::parse(state, Some(exit)))
    }

    /// Polls [`status`](Self::status) until the job has finished or `timeout` passed;
    /// prints a line when the state changes unless `quiet`.
    pub fn wait(&self, timeout: Duration, quiet: bool) -> Result<JobState> {
        let start = Instant::now();
        let mut last: Option<JobState> = None;
        let mut pause = Duration::from_millis(200);
        loop {
            let state = self.status()?;
            if !quiet && last.as_ref() != Some(&state) {
                println!(
                    "job {} ({}): {state} after {:.1} s",
                    self.id,
                    self.name,
                    start.elapsed().as_secs_f64()
                );
            }
            if state.is_finished() {
                return Ok(state);
            }
            if start.elapsed() >= timeout {
                return Err(Error::Scheduler {
                    command: "wait".into(),
                    reason: format!(
                        "job {} still {state} after {:.0} s",
                        self.id,
                        timeout.as_secs_f64()
                    ),
                });
            }
            last = Some(state);
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// The job's log so far (empty before it starts).
    pub fn logs(&self) -> Result<String> {
        match std::fs::read(&self.log) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(Error::Io {
                path: self.log.clone(),
                source,
            }),
        }
    }

    /// Cancels the job (`scancel`).
    pub fn cancel(&self) -> Result<()> {
        run_tool(Command::new("scancel").arg(self.id.to_string())).map(|_| ())
    }
}

/// Runs a SLURM tool; its standard output, or a typed error with its message.
fn run_tool(cmd: &mut Command) -> Result<String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| Error::Scheduler {
        command: name.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            format!("{name} not found: is this a SLURM login node (or is SLURM on PATH)?")
        } else {
            e.to_string()
        },
    })?;
    if !out.status.success() {
        return Err(Error::Scheduler {
            command: name,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `'text'` for bash: single quotes keep everything literal, including newlines; a
/// single quote itself is closed, escaped and reopened.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Inside the double quotes of an `#SBATCH` value: backslash and double quote escaped.
fn sbatch_quote(text: &str) -> String {
    text.replace('\\', r"\\").replace('"', "\\\"")
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// `D-HH:MM:SS`, rounded up to the second.
fn slurm_time(t: Duration) -> String {
    let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
    let (d, rest) = (secs / 86_400, secs % 86_400);
    format!(
        "{d}-{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_states_read_like_slurm() {
        assert_eq!(slurm_time(Duration::from_secs(90)), "0-00:01:30");
        assert_eq!(slurm_time(Duration::from_millis(86_400_001)), "1-00:00:01");
        assert_eq!(
            JobState::parse("FAILED", Some("3:0")),
            JobState::Failed {
                exit_code: 3,
                signal: 0
            }
        );
        assert_eq!(JobState::parse("CANCELLED by 0", None), JobState::Cancelled);
        assert!(!JobState::parse("PENDING", None).is_finished());
    }

    #[test]
    fn settings_are_checked_once_at_the_end() {
        let ok = SlurmJob::new("a").command(["info", "x.tif"]);
        assert!(ok.check().is_ok());
        for bad in [
            SlurmJob::new("a b").command(["x"]),
            ok.clone().nodes(0),
            ok.clone().memory("lots"),
            ok.clone().memory("4GG"),
            ok.clone().env("1X", "v"),
            ok.clone().partition("p\nrm -rf ~"),
            ok.clone().output_dir("/tmp/a\nb"),
            ok.clone().module("gdal\nrm -rf ~"),
            SlurmJob::new("a"),
        ] {
            assert!(matches!(bad.check(), Err(Error::Invalid { .. })), "{bad:?}");
        }
    }
}
