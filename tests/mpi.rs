//! Saves shared among MPI ranks (feature `mpi`): real `mpirun -n 1, 2, 3` jobs of the
//! CLI (oversubscribed on 2 cores) against the single-process run of the same command,
//! pixel for pixel as GDAL reads them back; ranks that fail (injected through
//! `RASTERLAB_TEST_FAULT`) end the job quickly, naming rank and chunk, and leave nothing
//! behind; plan files round-trip and run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cli::{EXE, debris, text};
use common::{RGBN, SCENE, cube, data};
use rasterlab::array::Save;
use rasterlab::prelude::*;

/// Open MPI refuses root without these; oversubscription lets 3 ranks share 2 cores.
const MPI_ENV: [(&str, &str); 3] = [
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
];

/// `mpirun -n N rasterlab ARGS` in `dir`, with `env` added.
fn mpirun(n: usize, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("mpirun");
    cmd.arg("-n").arg(n.to_string()).arg(EXE).args(args);
    cmd.current_dir(dir).env("RUST_BACKTRACE", "0");
    for (k, v) in MPI_ENV.iter().chain(env) {
        cmd.env(k, v);
    }
    cmd.output().expect("run mpirun (Open MPI: openmpi-bin)")
}

/// `rasterlab ARGS` in one process, no launcher.
fn single(dir: &Path, args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rasterlab")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every band of a raster as GDAL reads it (f64), with its size.
fn pixels(path: &Path) -> (usize, usize, Vec<Vec<f64>>) {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let (w, h) = ds.raster_size();
    let bands = (1..=ds.raster_count())
        .map(|b| {
            let rb = ds.rasterband(b).expect("band");
            rb.read_as::<f64>((0, 0), (w, h), (w, h), None)
                .expect("read")
                .data()
                .to_vec()
        })
        .collect();
    (w, h, bands)
}

/// Same size, bands and pixels (bit for bit; NaN equals NaN), and a tiled, compressed
/// GeoTIFF.
fn assert_same_pixels(expected: &Path, got: &Path, what: &str) {
    let (a, b) = (pixels(expected), pixels(got));
    assert_eq!(
        (a.0, a.1, a.2.len()),
        (b.0, b.1, b.2.len()),
        "{what}: shape"
    );
    for (band, (x, y)) in a.2.iter().zip(&b.2).enumerate() {
        let differ = x
            .iter()
            .zip(y)
            .filter(|(p, q)| p.to_bits() != q.to_bits() && !(p.is_nan() && q.is_nan()))
            .count();
        assert_eq!(
            differ,
            0,
            "{what}: band {} differs in {differ} pixels",
            band + 1
        );
    }
    let info = Command::new("gdalinfo")
        .arg(got)
        .output()
        .expect("gdalinfo");
    let info = text(&info.stdout);
    assert!(info.contains("Block="), "{what}: {info}");
    assert!(
        info.contains("COMPRESSION="),
        "{what}: not compressed\n{info}"
    );
}

/// Runs `args` (ending in `-o`) once in one process and under `mpirun -n 1, 2, 3`, and
/// compares every output with the single-process one.
fn same_on_ranks(name: &str, dir: &Path, args: &[&str]) {
    let reference = dir.join(format!("{name}-single.tif"));
    let mut one = args.to_vec();
    let r = reference.to_string_lossy().into_owned();
    one.push(&r);
    ok(&single(dir, &one), &format!("{name} single"));
    for n in 1..=3 {
        let out = dir.join(format!("{name}-ranks{n}.tif"));
        let o = out.to_string_lossy().into_owned();
        let mut many = args.to_vec();
        many.push(&o);
        let stdout = ok(
            &mpirun(n, dir, &many, &[]),
            &format!("{name} mpirun -n {n}"),
        );
        // One report, from rank 0.
        assert_eq!(
            stdout.matches("saved ").count(),
            1,
            "{name} -n {n}: {stdout}"
        );
        if n > 1 {
            assert!(stdout.contains(&format!("ranks:    {n}")), "{stdout}");
        }
        assert_same_pixels(&reference, &out, &format!("{name} mpirun -n {n}"));
    }
    assert!(debris(dir).is_empty(), "{name}: {:?}", debris(dir));
}

fn scene() -> String {
    data(SCENE).to_string_lossy().into_owned()
}

#[test]
fn ndi_on_ranks_equals_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scene();
    same_on_ranks(
        "ndi",
        dir.path(),
        &[
            "ndi",
            &s,
            "--band-names",
            "blue,green,red",
            "--a",
            "green",
            "--b",
            "red",
            "--nodata",
            "0",
            "--scale",
            "0.0001",
            "--chunks",
            "256",
            "--quiet",
            "-o",
        ],
    );
}

#[test]
fn product_on_ranks_equals_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = data(RGBN).to_string_lossy().into_owned();
    same_on_ranks(
        "product",
        dir.path(),
        &[
            "product",
            &f,
            "--band-names",
            "red,green,blue,nir",
            "--bands",
            "red,green,blue",
            "--chunks",
            "64",
            "--compress",
            "zstd",
            "--quiet",
            "-o",
        ],
    );
}

#[test]
fn weekly_reduction_on_ranks_equals_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<String> = cube::write_tiffs(dir.path())
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args: Vec<&str> = vec!["reduce"];
    args.extend(files.iter().map(String::as_str));
    args.extend([
        "--resample",
        "week",
        "--stat",
        "mean,std,max",
        "--chunks",
        "8",
        "--quiet",
        "-o",
    ]);
    same_on_ranks("weekly", dir.path(), &args);
}

/// A failing rank: non-zero exit within seconds, rank and chunk in the message, no
/// output, no temporary file.
fn fails_cleanly(fault: &str, expect: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scene();
    let start = Instant::now();
    let out = mpirun(
        2,
        dir.path(),
        &[
            "ndi",
            &s,
            "--band-names",
            "blue,green,red",
            "--a",
            "green",
            "--b",
            "red",
            "--chunks",
            "256",
            // Uncompressed, so that the writing rank computes chunks too (see below).
            "--compress",
            "none",
            "--quiet",
            "-o",
            "out.tif",
        ],
        &[("RASTERLAB_TEST_FAULT", fault)],
    );
    let took = start.elapsed();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{fault}: succeeded\n{stderr}");
    assert!(took < Duration::from_secs(15), "{fault}: took {took:?}");
    for e in expect {
        assert!(stderr.contains(e), "{fault}: no {e:?} in\n{stderr}");
    }
    assert!(!dir.path().join("out.tif").exists(), "{fault}: output left");
    assert!(
        debris(dir.path()).is_empty(),
        "{fault}: {:?}",
        debris(dir.path())
    );
}

// The 8 x 8 grid of 256-pixel chunks, saved uncompressed, is split about 30/34 (the
// writing rank computes a little less): chunk 40 is rank 1's, 5 rank 0's.

#[test]
fn a_chunk_that_fails_on_a_rank_ends_the_job() {
    fails_cleanly(
        "1:40:error",
        &["rank 1 failed", "chunk 40 (x 0..256, y 1280..1536)"],
    );
    fails_cleanly("0:5:error", &["rank 0 failed", "chunk 5 "]);
}

#[test]
fn a_panic_on_a_rank_ends_the_job() {
    fails_cleanly("1:40:panic", &["rank 1 failed", "panic in chunk 40"]);
    // on the rank's main thread, as the chunk is sent or written
    fails_cleanly("1:40:panic-main", &["rank 1 failed", "chunk 40"]);
    fails_cleanly("0:5:panic-main", &["rank 0 failed", "chunk 5"]);
}

#[test]
fn a_killed_rank_ends_the_job() {
    // No message of its own (it is gone); mpirun names the process that died.
    fails_cleanly("1:40:exit", &["exited"]);
}

/// The notebook's save as a plan file, run by `rasterlab run` in one process and on
/// ranks.
#[test]
fn a_plan_file_runs_to_the_same_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = cube::write_tiffs(dir.path());
    let series = Raster::open_stack(&files, Stack::Time).expect("stack");
    let weekly = series
        .band("band1")
        .expect("band")
        .resample(Period::Week)
        .mean()
        .std();
    let in_process = dir.path().join("in-process.tif");
    let save = weekly
        .save(&in_process)
        .chunks(8)
        .compress(Compression::Deflate);
    let plan = dir.path().join("weekly.plan.json");
    save.to_plan_file(&plan).expect("write plan");
    let back = Save::from_plan_file(&plan).expect("read plan");
    assert!(back == save, "plan read back differs");
    save.clone()
        .threads(1)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save in process");

    // One process, one thread: tiles land in the same order, so the bytes are equal.
    let p = plan.to_string_lossy().into_owned();
    ok(
        &single(
            dir.path(),
            &["run", &p, "-o", "cli.tif", "--threads", "1", "--quiet"],
        ),
        "run",
    );
    let (a, b) = (
        std::fs::read(&in_process).expect("read"),
        std::fs::read(dir.path().join("cli.tif")).expect("read"),
    );
    assert!(a == b, "rasterlab run wrote other bytes than Save::run");

    // On ranks.
    let out = ok(
        &mpirun(
            2,
            dir.path(),
            &["run", &p, "-o", "ranks.tif", "--quiet"],
            &[],
        ),
        "mpirun run",
    );
    assert!(out.contains("ranks:    2"), "{out}");
    assert_same_pixels(
        &in_process,
        &dir.path().join("ranks.tif"),
        "plan on 2 ranks",
    );
}

#[test]
fn a_newer_plan_is_refused_by_rasterlab_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scene = Raster::open(data(SCENE)).expect("open");
    let plan = dir.path().join("p.json");
    scene
        .band("band1")
        .expect("band")
        .save("x.tif")
        .to_plan_file(&plan)
        .expect("plan");
    let text_ = std::fs::read_to_string(&plan).expect("read");
    std::fs::write(&plan, text_.replacen("\"version\": 1", "\"version\": 9", 1)).expect("write");
    assert!(matches!(
        Save::from_plan_file(&plan),
        Err(Error::PlanVersion {
            found: 9,
            supported: 1
        })
    ));
    let p = plan.to_string_lossy().into_owned();
    let out = single(dir.path(), &["run", &p]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("format version 9"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("x.tif").exists());
}

/// `map_blocks` is a closure: a plan that asks for it is refused with a typed error
/// pointing to the compiled-binary route.
#[test]
fn a_plan_cannot_carry_map_blocks() {
    let scene = Raster::open(data(SCENE)).expect("open");
    let text_ = scene
        .band("band1")
        .expect("band")
        .save("x.tif")
        .to_plan()
        .expect("plan");
    let asked = text_.replacen("\"task\": \"save\"", "\"task\": \"map_blocks\"", 1);
    let err = Save::from_plan(&asked).expect_err("refused");
    assert!(
        matches!(&err, Error::ClosureInPlan { task } if task == "map_blocks"),
        "{err}"
    );
    assert!(err.to_string().contains("compiled code"), "{err}");
    assert!(err.to_string().contains("mpirun"), "{err}");
}

/// `mpirun -n 2 rasterlab ndi` of the scene in chunks of 512 on 1 thread per rank with
/// `--compress COMPRESS`, writing `NAME.tif` and the profile `NAME.svg` into `dir`; the
/// profile's text.
fn profiled_ndi_on_ranks(dir: &Path, compress: &str, name: &str) -> String {
    let s = scene();
    let (tif, svg) = (format!("{name}.tif"), format!("{name}.svg"));
    let out = mpirun(
        2,
        dir,
        &[
            "ndi",
            &s,
            "--band-names",
            "blue,green,red",
            "--a",
            "green",
            "--b",
            "red",
            "--chunks",
            "512",
            "--threads",
            "1",
            "--compress",
            compress,
            "--quiet",
            "--profile",
            &svg,
            "-o",
            &tif,
        ],
        &[],
    );
    ok(
        &out,
        &format!("mpirun -n 2 ndi --profile --compress {compress}"),
    );
    std::fs::read_to_string(dir.join(&svg)).expect("the profile was written")
}

/// `--profile` under mpirun: rank 0's figure has a timeline row per rank and thread, and
/// one compute rectangle per chunk of the grid, whichever rank computed it.
#[test]
fn the_profile_of_a_run_on_ranks_shows_every_rank() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Uncompressed, so that the writing rank computes chunks too.
    let svg = profiled_ndi_on_ranks(dir.path(), "none", "o");
    for row in ["r0 worker 0", "r0 writer", "r1 worker 0"] {
        assert!(svg.contains(row), "no timeline row {row:?} in the profile");
    }
    // LZW (the default): encoding every rank's tiles is a full share of the work for
    // the writing rank, so it computes none of the chunks (array/save/ranks.rs).
    let lzw_svg = profiled_ndi_on_ranks(dir.path(), "lzw", "lzw");
    assert!(lzw_svg.contains("r1 worker 0") && lzw_svg.contains("r0 writer"));
    assert!(
        !lzw_svg.contains("r0 worker"),
        "the writing rank computed chunks of an LZW save"
    );
    assert_same_pixels(
        &dir.path().join("o.tif"),
        &dir.path().join("lzw.tif"),
        "LZW",
    );
    // The grid, as GDAL gives the scene's size: chunks of 512 x 512.
    let ds = gdal::Dataset::open(data(SCENE)).expect("open the scene");
    let (w, h) = ds.raster_size();
    let chunks = w.div_ceil(512) * h.div_ceil(512);
    // Compute tasks are orange (#FF7F0E); the legend has one more swatch.
    let orange = svg.matches("fill=\"#FF7F0E\"").count();
    assert_eq!(
        orange,
        chunks + 1,
        "compute rectangles vs chunks of the grid"
    );
}

/// The line of `rasterlab cluster`'s report that starts with `key`.
fn report_line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key:?} in {stdout}"))
}

/// `rasterlab cluster` (k-means) under `mpirun -n 1, 2, 3`: the iterations are shared
/// among the ranks, and the label map, inertia and iteration count are the single
/// process's; other methods are refused under mpirun.
#[test]
fn kmeans_on_ranks_equals_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scene();
    let args = |out: &str| -> Vec<String> {
        [
            "cluster",
            &s,
            "--k",
            "6",
            "--seed",
            "7",
            "--threads",
            "1",
            "--quiet",
            "-o",
            out,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let reference = dir.path().join("single.tif");
    let one = args(&reference.to_string_lossy());
    let one: Vec<&str> = one.iter().map(String::as_str).collect();
    let single_out = ok(&single(dir.path(), &one), "cluster single");
    for n in 1..=3 {
        let out = dir.path().join(format!("ranks{n}.tif"));
        let many = args(&out.to_string_lossy());
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let stdout = ok(
            &mpirun(n, dir.path(), &many, &[]),
            &format!("cluster mpirun -n {n}"),
        );
        assert_eq!(stdout.matches("method:").count(), 1, "one report: {stdout}");
        for key in ["inertia:", "iterations:", "samples:"] {
            assert_eq!(
                report_line(&stdout, key),
                report_line(&single_out, key),
                "-n {n}"
            );
        }
        assert_same_pixels(&reference, &out, &format!("cluster mpirun -n {n}"));
    }
    let refused = mpirun(
        2,
        dir.path(),
        &[
            "cluster",
            &s,
            "--k",
            "4",
            "--method",
            "minibatch",
            "--quiet",
            "-o",
            "m.tif",
        ],
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("only k-means is shared"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!dir.path().join("m.tif").exists());
    assert!(debris(dir.path()).is_empty(), "{:?}", debris(dir.path()));
}

/// What the block function of the `map_blocks` tests returns for a block: its id, how
/// many pixels are nodata (NaN), the sum of the others and its first value (NaN
/// included, which must survive the trip between ranks).
fn block_summary(b: &rasterlab::array::Block) -> (usize, usize, f64, f32) {
    let nan = b.data.iter().filter(|v| v.is_nan()).count();
    let sum = b
        .data
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| v as f64)
        .sum();
    (b.id, nan, sum, b.data[[0, 0, 0]])
}

/// The red band of the scene, 0 as nodata, in chunks of 256: 64 blocks, some all NaN.
fn red() -> LazyArray {
    Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .and_then(|r| r.with_nodata(Some(0.0)).band("red"))
        .and_then(|a| a.chunks(256))
        .expect("the scene's red band")
        .progress(ProgressMode::Silent)
}

/// The MPI program of `map_blocks_on_ranks_equals_one_process`: this test binary, started
/// by `mpirun` with `RASTERLAB_MPI_CHILD` set, runs only this function. Rank 0 prints the
/// results (Rust's `{:?}`, exact for floats) or the error.
#[test]
fn map_blocks_rank_program() {
    let Some(mode) = std::env::var_os("RASTERLAB_MPI_CHILD") else {
        return; // an ordinary test run: nothing to do
    };
    let mpi = rasterlab::distributed::Mpi::init().expect("MPI");
    let last = mpi.size(); // a block the last rank computes when failing (see below)
    let fail = mode == "fail";
    let result = mpi.map_blocks(&red(), |b| {
        let s = block_summary(b);
        if fail && b.id == 64 - last {
            panic!("bad block");
        }
        s
    });
    match result {
        Ok(Some(v)) => println!("RESULT {v:?}"),
        Ok(None) => {}
        Err(e) => {
            println!("ERROR {e}");
            mpi.fail(&e)
        }
    }
}

/// `Mpi::map_blocks` under `mpirun -n 2, 3`: rank 0 gets every block's result in block
/// order, the same as `map_blocks` in one process (NaN kept); a block function that
/// panics on the last rank ends the job with that rank and block named.
#[test]
fn map_blocks_on_ranks_equals_one_process() {
    let expected = format!(
        "RESULT {:?}",
        red().map_blocks(block_summary).expect("map_blocks")
    );
    assert!(expected.contains("NaN"), "the test needs NaN values");
    let exe = std::env::current_exe().expect("this test binary");
    let run = |n: usize, mode: &str| {
        let mut cmd = Command::new("mpirun");
        cmd.arg("-n").arg(n.to_string()).arg(&exe);
        cmd.args([
            "map_blocks_rank_program",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]);
        cmd.env("RASTERLAB_MPI_CHILD", mode)
            .env("RUST_BACKTRACE", "0");
        for (k, v) in MPI_ENV {
            cmd.env(k, v);
        }
        cmd.output().expect("mpirun")
    };
    for n in [2, 3] {
        let out = ok(&run(n, "ok"), &format!("map_blocks -n {n}"));
        // The harness prints "test ... " on the same line before the program's output.
        let got: Vec<&str> = out
            .lines()
            .filter_map(|l| l.find("RESULT ").map(|i| &l[i..]))
            .collect();
        assert_eq!(got, [expected.as_str()], "-n {n}");
    }
    let t = Instant::now();
    let failed = run(2, "fail");
    assert!(!failed.status.success());
    let stdout = text(&failed.stdout);
    assert!(
        stdout.contains("ERROR rank 1 failed") && stdout.contains("chunk 62"),
        "{stdout}\n{}",
        text(&failed.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
}
