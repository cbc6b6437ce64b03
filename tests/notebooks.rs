//! Executes every notebook in `notebooks/` headlessly with the real evcxr kernel, the way a
//! user runs it: top to bottom in one kernel, state kept across cells.
//!
//! Jupyter comes from the Python environment in `RASTERLAB_VENV` (set by `make test`),
//! else `<crate>/.venv`; it must have the `rust` kernel (evcxr_jupyter) registered. When
//! either is missing the test fails and says how to install them: `make setup`.
//!
//! A notebook fails on any cell error, on any output containing `panicked at` (a panic in a
//! cell does not fail `nbconvert --execute`), and when a cell tagged
//! * `expect-html` has no `text/html` output,
//! * `expect-image` has no `image/png` output,
//! * `expect-svg` has no `image/svg+xml` output,
//! * `expect-progress` printed no progress line (`...: n/n chunks (100%), ..., done in`),
//! * `expect-stopped` did not print `cancelled: stopped from the dashboard`,
//! * `expect-ranks` did not print a save report of 2 MPI ranks (`ranks:    2`),
//! * `expect-same-pixels` did not print `pixels that differ from the kernel's: 0`.
//!
//! A notebook that runs `mpirun` (04-scaling-out, section 8) gets this build's `rasterlab`
//! program (`RASTERLAB_BIN`, built with the test's features, `mpi` under `make test`);
//! one that submits a `SlurmJob` gets, when the test runs as root, a real single-node
//! Slurm (`scripts/slurm.sh`, `SLURM_CONF`), and must then print `job state: COMPLETED`.
//!
//! A notebook that starts a `Dashboard` (04-scaling-out) is also watched from outside while
//! it runs: the test gives the kernel a port and a token (`RASTERLAB_DASHBOARD_PORT`,
//! `RASTERLAB_DASHBOARD_TOKEN`), polls `/status.json` over HTTP during the execution, and
//! requires that a computation of a later cell was seen in progress (0 < done < total), and
//! that a request without the token was refused. While a save of `stop-me` runs, the watcher
//! presses the dashboard's Stop (`POST /stop`), as a student would; the notebook must then
//! show the save cancelled, its later cells must still see earlier variables, and no
//! temporary file may be left.
//!
//! Each notebook's kernel keeps its build in `target/evcxr/<notebook>` (`EVCXR_TMPDIR`),
//! so only the first run compiles rasterlab's dependencies inside evcxr.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{http_get, http_request};
use serde_json::Value;

const CELL_TIMEOUT: Duration = Duration::from_secs(1800);

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python environment with Jupyter and the `rust` kernel, or a message saying what
/// is missing and how to get it.
fn jupyter() -> Result<PathBuf, String> {
    let venv = std::env::var_os("RASTERLAB_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join(".venv"));
    let jupyter = venv.join("bin").join("jupyter");
    if !jupyter.exists() {
        return Err(format!(
            "no Jupyter at {} (RASTERLAB_VENV or <crate>/.venv): run `make setup` \
             (creates .venv with jupyterlab, nbclient and nbconvert and registers the evcxr \
             kernel), or set RASTERLAB_VENV to an environment that has them",
            jupyter.display()
        ));
    }
    let out = Command::new(&jupyter)
        .args(["kernelspec", "list", "--json"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", jupyter.display()))?;
    let specs: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "`jupyter kernelspec list --json` gave no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if specs["kernelspecs"]["rust"].is_null() {
        return Err(format!(
            "the evcxr kernel `rust` is not registered in {}: run `make setup`, or \
             `cargo install --locked evcxr_jupyter` then \
             `JUPYTER_PATH={}/share/jupyter evcxr_jupyter --install`",
            venv.display(),
            venv.display()
        ));
    }
    Ok(jupyter)
}

/// Concatenated text of one output: stream text, error traceback, or every MIME entry.
fn output_text(output: &Value) -> String {
    let join = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    };
    let mut text = join(&output["text"]);
    text.push_str(&join(&output["traceback"]));
    text.push_str(&join(&output["evalue"]));
    if let Some(data) = output["data"].as_object() {
        for v in data.values() {
            text.push_str(&join(v));
        }
    }
    text
}

fn has_mime(outputs: &[Value], mime: &str) -> bool {
    outputs.iter().any(|o| !o["data"][mime].is_null())
}

/// Every problem found in an executed notebook.
fn check_notebook(nb: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let cells = nb["cells"].as_array().cloned().unwrap_or_default();
    let mut code_index = 0;
    for cell in cells.iter().filter(|c| c["cell_type"] == "code") {
        code_index += 1;
        let source = output_text(&serde_json::json!({ "text": cell["source"] }));
        let first_line = source.lines().next().unwrap_or("").to_string();
        let at = format!("code cell {code_index} ({first_line:?})");
        let outputs = cell["outputs"].as_array().cloned().unwrap_or_default();
        for o in &outputs {
            let text = output_text(o);
            if o["output_type"] == "error" {
                problems.push(format!("{at}: error: {}", text.trim()));
            }
            if text.contains("panicked at") {
                problems.push(format!("{at}: panic: {}", text.trim()));
            }
            // A cell ending in a statement-like expression (`match`, `if`) shows evcxr's
            // `()` as its result: noise for a student. End it with `;`.
            let plain = output_text(&serde_json::json!({ "text": o["data"]["text/plain"] }));
            if o["output_type"] == "execute_result" && plain.trim() == "()" {
                problems.push(format!("{at}: shows a stray `()`: end the cell with `;`"));
            }
        }
        let tags: Vec<&str> = cell["metadata"]["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (tag, mime) in [
            ("expect-html", "text/html"),
            ("expect-image", "image/png"),
            ("expect-svg", "image/svg+xml"),
        ] {
            if tags.contains(&tag) && !has_mime(&outputs, mime) {
                problems.push(format!("{at}: tagged {tag} but has no {mime} output"));
            }
        }
        let stdout_of = |outputs: &[Value]| -> String {
            outputs
                .iter()
                .filter(|o| o["output_type"] == "stream" && o["name"] == "stdout")
                .map(output_text)
                .collect()
        };
        if tags.contains(&"expect-stopped") {
            let stdout = stdout_of(&outputs);
            if !stdout.contains("cancelled: stopped from the dashboard") {
                problems.push(format!(
                    "{at}: tagged expect-stopped but the save was not cancelled from the dashboard:\n{stdout}"
                ));
            }
        }
        if source.contains("temporary files left") {
            let stdout = stdout_of(&outputs);
            if !stdout.contains("temporary files left in ../out: []") {
                problems.push(format!("{at}: temporary files were left:\n{stdout}"));
            }
        }
        for (tag, wanted) in [
            ("expect-ranks", "ranks:    2"),
            (
                "expect-same-pixels",
                "pixels that differ from the kernel's: 0",
            ),
        ] {
            let stdout = stdout_of(&outputs);
            if tags.contains(&tag) && !stdout.contains(wanted) {
                problems.push(format!(
                    "{at}: tagged {tag} but did not print {wanted:?}:\n{stdout}"
                ));
            }
        }
        if tags.contains(&"expect-progress") {
            let stdout: String = outputs
                .iter()
                .filter(|o| o["output_type"] == "stream" && o["name"] == "stdout")
                .map(output_text)
                .collect();
            let done = stdout
                .lines()
                .any(|l| l.contains(" chunks (100%)") && l.contains("done in"));
            let started = stdout.lines().any(|l| l.contains(" chunks (0%)"));
            if !(done && started) {
                problems.push(format!(
                    "{at}: tagged expect-progress but printed no first and last progress line:\n{stdout}"
                ));
            }
        }
    }
    if code_index == 0 {
        problems.push("no code cell".into());
    }
    problems
}

/// A real single-node Slurm for a notebook that submits jobs, stopped when dropped.
struct Slurm {
    dir: tempfile::TempDir,
}

impl Slurm {
    fn start() -> Slurm {
        let dir = tempfile::Builder::new()
            .prefix("rasterlab-nb-slurm-")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("bash")
            .arg(crate_dir().join("scripts/slurm.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/slurm.sh");
        assert!(
            out.status.success(),
            "Slurm did not start (make setup installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Slurm { dir }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(crate_dir().join("scripts/slurm.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// What the outside watcher saw of a notebook's dashboard.
#[derive(Debug, Default)]
struct Watched {
    /// `/status.json` answers taken while a run was in progress (0 < done < total).
    in_progress: Vec<Value>,
    /// Status codes of requests without the token.
    without_token: Vec<u16>,
    /// Answers with the token.
    answers: usize,
    /// Status of the `POST /stop` sent while a save of `stop-me` ran (the notebook's
    /// "press Stop" moment), if one was sent.
    stop_sent: Option<u16>,
}

/// Polls a dashboard at `addr` every 50 ms until `stop`.
fn watch_dashboard(addr: SocketAddr, token: String, stop: Arc<AtomicBool>) -> Watched {
    let mut w = Watched::default();
    while !stop.load(Ordering::Relaxed) {
        if let Ok((200, body)) = http_get(addr, &format!("/status.json?token={token}"), "") {
            w.answers += 1;
            if w.without_token.is_empty()
                && let Ok((code, _)) = http_get(addr, "/status.json", "")
            {
                w.without_token.push(code);
            }
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                let run = &v["run"];
                let done = run["done"].as_u64().unwrap_or(0);
                let total = run["total"].as_u64().unwrap_or(0);
                if run["finished"] == false && done > 0 && done < total {
                    // The notebook's deliberately slow save: press Stop, as a student would.
                    if w.stop_sent.is_none()
                        && run["label"].as_str().is_some_and(|l| l.contains("stop-me"))
                    {
                        let header = format!("Authorization: token {token}\r\n");
                        w.stop_sent = http_request(addr, "POST", "/stop", &header)
                            .map(|(code, _)| code)
                            .ok();
                    }
                    w.in_progress.push(v);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    w
}

/// Problems with what was watched: no run seen in progress, or no refusal without token;
/// for a notebook with a `stop-me` save, no Stop pressed while it ran.
fn check_watched(w: &Watched, expects_stop: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if expects_stop && w.stop_sent != Some(200) {
        problems.push(format!(
            "the stop-me save was not stopped over HTTP while it ran (POST /stop: {:?})",
            w.stop_sent
        ));
    }
    if w.answers == 0 {
        problems.push("the dashboard never answered over HTTP".to_string());
    }
    if w.without_token.iter().any(|&c| c != 403) || (w.answers > 0 && w.without_token.is_empty()) {
        problems.push(format!(
            "requests without the token got {:?}, not 403",
            w.without_token
        ));
    }
    let labels: Vec<&str> = w
        .in_progress
        .iter()
        .filter_map(|v| v["run"]["label"].as_str())
        .collect();
    if !labels.iter().any(|l| l.starts_with("save ")) {
        problems.push(format!(
            "no save was seen in progress over HTTP (runs seen in progress: {labels:?})"
        ));
    }
    problems
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs one notebook with nbconvert; returns the executed notebook. `env` is added to the
/// kernel's environment.
fn execute(
    jupyter: &Path,
    notebook: &Path,
    out_dir: &Path,
    env: &[(&str, String)],
) -> Result<Value, String> {
    let stem = notebook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let evcxr_dir = crate_dir().join("target").join("evcxr").join(&stem);
    std::fs::create_dir_all(&evcxr_dir).map_err(|e| format!("{}: {e}", evcxr_dir.display()))?;
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|p| p.join("bin"))
        .unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(cargo_bin).chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths),
        ),
    )
    .map_err(|e| e.to_string())?;
    let output = Command::new(jupyter)
        .args(["nbconvert", "--to", "notebook", "--execute"])
        .arg(format!(
            "--ExecutePreprocessor.timeout={}",
            CELL_TIMEOUT.as_secs()
        ))
        // Errors are collected from the executed notebook, with the cell that failed.
        .arg("--ExecutePreprocessor.allow_errors=True")
        .arg("--output-dir")
        .arg(out_dir)
        .arg(notebook)
        .current_dir(notebook.parent().unwrap_or(Path::new(".")))
        .env("PATH", path)
        .env("EVCXR_TMPDIR", &evcxr_dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", jupyter.display()))?;
    let executed = out_dir.join(notebook.file_name().unwrap_or_default());
    if !output.status.success() || !executed.exists() {
        return Err(format!(
            "nbconvert failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text =
        std::fs::read_to_string(&executed).map_err(|e| format!("{}: {e}", executed.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", executed.display()))
}

#[test]
fn every_notebook_runs_in_the_evcxr_kernel() {
    let jupyter = match jupyter() {
        Ok(j) => j,
        Err(msg) => panic!("{msg}"),
    };
    let dir = crate_dir().join("notebooks");
    let mut notebooks: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    notebooks.sort();
    assert!(!notebooks.is_empty(), "no notebook in {}", dir.display());
    // Executed copies are kept for a look: target/notebooks/<name>.ipynb.
    let out_dir = crate_dir().join("target").join("notebooks");
    std::fs::create_dir_all(&out_dir).expect("target/notebooks");
    let mut failures = Vec::new();
    for nb in &notebooks {
        let name = nb.file_name().unwrap_or_default().to_string_lossy();
        let t = Instant::now();
        let source = std::fs::read_to_string(nb).unwrap_or_default();
        let mut env = Vec::new();
        let mut watcher = None;
        if source.contains("Dashboard::start") {
            let port = match free_port() {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            let token = format!("nbtest{port}x{}", std::process::id());
            env.push(("RASTERLAB_DASHBOARD_PORT", port.to_string()));
            env.push(("RASTERLAB_DASHBOARD_TOKEN", token.clone()));
            let stop = Arc::new(AtomicBool::new(false));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let flag = Arc::clone(&stop);
            watcher = Some((
                stop,
                std::thread::spawn(move || watch_dashboard(addr, token, flag)),
            ));
        }
        let mut slurm = None;
        if source.contains("mpirun") {
            match option_env!("CARGO_BIN_EXE_rasterlab") {
                Some(exe) => env.push(("RASTERLAB_BIN", exe.to_string())),
                None => failures.push(format!(
                    "{name}: runs mpirun but the rasterlab program was not built (feature cli)"
                )),
            }
            for (k, v) in [
                ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
                ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
                ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
            ] {
                env.push((k, v.to_string()));
            }
        }
        if source.contains("SlurmJob") && common::cli::is_root() {
            let s = Slurm::start();
            env.push((
                "SLURM_CONF",
                s.dir.path().join("slurm.conf").display().to_string(),
            ));
            slurm = Some(s);
        }
        let result = execute(&jupyter, nb, &out_dir, &env);
        if let (Some(_), Ok(executed)) = (&slurm, &result)
            && !serde_json::to_string(executed)
                .unwrap_or_default()
                .contains("job state: COMPLETED")
        {
            failures.push(format!(
                "{name}: the SLURM job did not print `job state: COMPLETED`"
            ));
        }
        drop(slurm);
        eprintln!("{name}: executed in {:.1} s", t.elapsed().as_secs_f64());
        let watched = watcher.map(|(stop, handle)| {
            stop.store(true, Ordering::Relaxed);
            handle.join().unwrap_or_default()
        });
        match result {
            Ok(executed) => {
                for p in check_notebook(&executed) {
                    failures.push(format!("{name}: {p}"));
                }
                if let Some(w) = &watched {
                    eprintln!(
                        "{name}: dashboard answered {} times over HTTP, {} in progress",
                        w.answers,
                        w.in_progress.len()
                    );
                    let expects_stop = source.contains("stop-me");
                    for p in check_watched(w, expects_stop) {
                        failures.push(format!("{name}: dashboard: {p}"));
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_checker_catches_panics_errors_and_missing_outputs() {
    let nb = serde_json::json!({ "cells": [
        { "cell_type": "code", "source": ["let x = 1;"], "metadata": { "tags": ["expect-html", "expect-progress"] },
          "outputs": [ { "output_type": "stream", "name": "stderr",
                         "text": "thread '<unnamed>' panicked at src/lib.rs:1:1:\nboom\n" } ] },
        { "cell_type": "code", "source": "bad", "metadata": {},
          "outputs": [ { "output_type": "error", "ename": "Error", "evalue": "cannot find value", "traceback": [] } ] },
        { "cell_type": "code", "source": "ok", "metadata": { "tags": ["expect-svg", "expect-progress"] },
          "outputs": [
            { "output_type": "stream", "name": "stdout",
              "text": "save a.tif: 0/4 chunks (0%), 0.0 chunks/s, starting\nsave a.tif: 4/4 chunks (100%), 9.1 chunks/s, done in 0.44 s\n" },
            { "output_type": "display_data", "data": { "image/svg+xml": "<svg/>" }, "metadata": {} } ] },
        { "cell_type": "code", "source": "match x { _ => println!(\"hi\") }", "metadata": {},
          "outputs": [ { "output_type": "execute_result", "data": { "text/plain": ["()"] }, "metadata": {} } ] }
    ]});
    let problems = check_notebook(&nb);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].contains("panic"));
    assert!(problems[1].contains("no text/html"));
    assert!(problems[2].contains("expect-progress"));
    assert!(problems[3].contains("error: cannot find value"));
    assert!(problems[4].contains("stray `()`"));
}

#[test]
fn the_dashboard_watch_requires_a_save_in_progress_and_refusals() {
    let mut w = Watched::default();
    let problems = check_watched(&w, false);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    w.answers = 3;
    w.without_token.push(200);
    w.in_progress
        .push(serde_json::json!({ "run": { "label": "map_blocks", "done": 1, "total": 4 } }));
    assert_eq!(check_watched(&w, false).len(), 2);
    w.without_token[0] = 403;
    w.in_progress.push(
        serde_json::json!({ "run": { "label": "save ../out/a.tif", "done": 2, "total": 4 } }),
    );
    assert!(check_watched(&w, false).is_empty());
    // A notebook with a stop-me save also needs Stop pressed (and answered 200).
    assert_eq!(check_watched(&w, true).len(), 1);
    w.stop_sent = Some(403);
    assert_eq!(check_watched(&w, true).len(), 1);
    w.stop_sent = Some(200);
    assert!(check_watched(&w, true).is_empty());
}
