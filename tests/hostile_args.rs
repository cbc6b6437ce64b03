//! Hostile arguments and CLI rough edges: every argument that used to produce garbage is
//! refused with a one-line error naming it and what is allowed, before any work, leaving
//! the output folder exactly as it was; `--bbox` takes both documented forms; a closed
//! stdout ends quietly; `cluster` takes the shared output options; `reduce --series`
//! writes the resampled series. The binary is the real one, run in a temporary folder.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use gdal::{Dataset, Metadata};
use rasterlab::prelude::*;

/// A temporary folder holding a previous output `out.tif` (a real GeoTIFF), which every
/// refused run must leave byte for byte as it was.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(data(RGBN), dir.path().join("out.tif")).expect("previous output");
    dir
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    entries(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
            (name, bytes)
        })
        .collect()
}

/// Runs `args` in `dir` and checks a refusal: a non-zero status that is not a panic's 101,
/// no panic message, an `error:` line holding every needle (the only line, for
/// rasterlab's own errors), nothing on stdout, and the folder exactly as before (no new
/// file, no temporary file, previous files unchanged). Returns the message and the time
/// the run took.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> (String, Duration) {
    let before = snapshot(dir);
    let start = Instant::now();
    let out = run_in(dir, args);
    let took = start.elapsed();
    let stderr = text(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(c) if c != 0 && c != 101),
        "{args:?}: status {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    if code == Some(1) {
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line:\n{stderr}"
        );
    }
    let first = stderr.lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("error: "), "{args:?}: {stderr}");
    for needle in needles {
        assert!(first.contains(needle), "{args:?}: no {needle:?} in {first}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    let after = snapshot(dir);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{args:?}: the folder changed"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{args:?}: {name} was modified");
    }
    (first, took)
}

/// Every band of a written file: (width, height, one Vec per band, band descriptions).
fn read_all(path: &Path) -> (usize, usize, Vec<Vec<f32>>, Vec<String>) {
    let ds = Dataset::open(path).expect("open output");
    let (w, h) = ds.raster_size();
    let mut bands = Vec::new();
    let mut names = Vec::new();
    for b in 1..=ds.raster_count() {
        let rb = ds.rasterband(b).expect("band");
        let buf = rb
            .read_as::<f32>((0, 0), (w, h), (w, h), None)
            .expect("read");
        bands.push(buf.data().to_vec());
        names.push(rb.description().unwrap_or_default());
    }
    (w, h, bands, names)
}

fn same_pixels(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

// ---------------------------------------------------------------------------------------
// Item 7: arguments that silently produced garbage

#[test]
fn a_zero_nan_or_infinite_scale_is_refused() {
    let dir = folder();
    let d = dir.path();
    let scene = abs(SCENE);
    for (arg, shown) in [
        ("--scale=0", "0"),
        ("--scale=NaN", "NaN"),
        ("--scale=inf", "inf"),
        ("--scale=-inf", "-inf"),
    ] {
        refused(
            d,
            &[
                "ndi", &scene, "--a", "band1", "--b", "band2", arg, "-o", "out.tif",
            ],
            &[
                "invalid scale",
                &format!("scale: {shown} "),
                "finite, non-zero",
            ],
        );
    }
    // every writing command, through the same library check
    let (b3, b4, rgbn) = (abs(B3), abs(B4), abs(RGBN));
    for args in [
        vec!["product", &b3, &b4, "--scale", "0", "-o", "out.tif"],
        vec!["reduce", &rgbn, "--scale", "0", "-o", "out.tif"],
        vec![
            "cluster", &rgbn, "--k", "2", "--scale", "0", "-o", "out.tif",
        ],
    ] {
        refused(d, &args, &["invalid scale", "finite, non-zero"]);
    }
}

#[test]
fn the_same_band_as_a_and_b_is_refused() {
    let dir = folder();
    let d = dir.path();
    let scene = abs(SCENE);
    refused(
        d,
        &[
            "ndi",
            &scene,
            "--band-names",
            "blue,green,red",
            "--a",
            "red",
            "--b",
            "red",
            "-o",
            "out.tif",
        ],
        &["bands a and b", "\"red\"", "allowed: two different bands"],
    );
    // two names for one band of one file are the same band
    let b3 = abs(B3);
    refused(
        d,
        &["ndi", "--bands", &format!("{b3},{b3}"), "-o", "out.tif"],
        &["bands a and b", "band 1 of", "allowed: two different bands"],
    );
}

#[test]
fn a_nodata_the_input_type_cannot_hold_is_refused() {
    let dir = folder();
    let d = dir.path();
    let scene = abs(SCENE);
    for nd in ["70000", "-1", "0.5"] {
        refused(
            d,
            &[
                "ndi", &scene, "--a", "band1", "--b", "band2", "--nodata", nd, "-o", "out.tif",
            ],
            &[
                "invalid nodata",
                "UInt16",
                &format!("cannot hold {nd}"),
                "allowed: whole numbers from 0 to 65535",
            ],
        );
    }
    // Byte input, through the other writing commands
    let rgbn = abs(RGBN);
    for args in [
        vec!["product", &rgbn, "--nodata", "256", "-o", "out.tif"],
        vec!["reduce", &rgbn, "--nodata", "-1", "-o", "out.tif"],
        vec![
            "cluster", &rgbn, "--k", "2", "--nodata", "0.5", "-o", "out.tif",
        ],
    ] {
        refused(
            d,
            &args,
            &[
                "invalid nodata",
                "Byte",
                "allowed: whole numbers from 0 to 255",
            ],
        );
    }
}

#[test]
fn two_files_on_one_date_are_refused() {
    let dir = folder();
    let d = dir.path();
    for name in ["a_20160101.tif", "b_20160101.tif"] {
        std::fs::copy(data(RGBN), d.join(name)).expect("copy");
    }
    refused(
        d,
        &[
            "reduce",
            "a_20160101.tif",
            "b_20160101.tif",
            "-o",
            "out.tif",
        ],
        &[
            "time stack dates",
            "2016-01-01 is the date of both",
            "a_20160101.tif",
            "b_20160101.tif",
            "allowed: one time step per date",
        ],
    );
    // the same file twice is two steps on one date as well
    let rgbn = abs(RGBN);
    refused(
        d,
        &["reduce", &rgbn, &rgbn, "--stat", "count", "-o", "out.tif"],
        &["time stack dates", "2016-01-01"],
    );
    // dates given by hand
    let other = abs("data/rgbn_20160401.tif");
    refused(
        d,
        &[
            "reduce",
            &rgbn,
            &other,
            "--dates",
            "2019-05-01,2019-05-01",
            "-o",
            "out.tif",
        ],
        &[
            "2019-05-01 is the date of both",
            "rgbn_20160101.tif",
            "rgbn_20160401.tif",
        ],
    );
}

#[test]
fn a_k_the_label_map_cannot_hold_is_refused_before_the_fit() {
    let dir = folder();
    let d = dir.path();
    let scene = abs(SCENE);
    for method in ["kmeans", "minibatch", "spectral"] {
        let (_, took) = refused(
            d,
            &[
                "cluster", &scene, "--nodata", "0", "--k", "40000", "--method", method, "-o",
                "out.tif",
            ],
            &["invalid k", "40000", "allowed: 1 to 32768"],
        );
        // reading the 3.2 million valid pixels alone takes longer than this
        assert!(took < Duration::from_secs(2), "{method}: {took:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The same checks from the library, for notebooks

#[test]
fn the_library_refuses_the_same_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scene = Raster::open(data(SCENE)).expect("scene");
    let window = Window::new(1000, 900, 8, 8);

    // scale: setters cannot fail; the terminal check reports it, before any file exists
    for bad in [0.0, f64::NAN, f64::INFINITY] {
        let ndi = scene
            .norm_diff("band1", "band2")
            .expect("ndi")
            .scale(bad)
            .progress(ProgressMode::Silent);
        let err = ndi.compute().unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "scale", .. }), "{err}");
        let err = ndi.save(dir.path().join("ndi.tif")).run().unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "scale", .. }), "{err}");
        let err = scene
            .clone()
            .with_scale(bad, 0.0)
            .read(window, &["band1"])
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "scale", .. }), "{err}");
    }
    let err = scene
        .clone()
        .with_scale(1e-4, f64::NAN)
        .check()
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid { what: "offset", .. }),
        "{err}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // nodata against the stored type: reads, samples and lazy arrays
    for bad in [70000.0, -1.0, 0.5, f64::NAN] {
        let r = scene.clone().with_nodata(Some(bad));
        let err = r.read(window, &["band1"]).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { what: "nodata", .. }),
            "{bad}: {err}"
        );
        let err = Samples::from_raster(&r).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { what: "nodata", .. }),
            "{bad}: {err}"
        );
        let err = r.band("band1").expect("band").compute().unwrap_err();
        assert!(
            matches!(err, Error::Invalid { what: "nodata", .. }),
            "{bad}: {err}"
        );
    }
    // a later, valid override replaces a bad one; 65535 and 0 fit UInt16
    for ok in [0.0, 65535.0] {
        let r = scene
            .clone()
            .with_nodata(Some(70000.0))
            .with_nodata(Some(ok));
        r.read(window, &["band1"]).expect("valid nodata reads");
    }
    scene.clone().with_nodata(None).check().expect("no nodata");

    // Float32 input: NaN and infinities fit, a finite value beyond f32 does not
    let f32_file = dir.path().join("f32.tif");
    gdal_translate(
        &["-ot", "Float32", "-srcwin", "1000", "900", "8", "8"],
        &data(SCENE),
        &f32_file,
    );
    let f = Raster::open(&f32_file).expect("float32");
    for ok in [f64::NAN, f64::NEG_INFINITY, -9999.0, 3.0e38] {
        f.clone()
            .with_nodata(Some(ok))
            .check()
            .expect("fits Float32");
    }
    let err = f.clone().with_nodata(Some(1e39)).check().unwrap_err();
    assert!(err.to_string().contains("Float32"), "{err}");

    // norm_diff of a band with itself
    let named = scene
        .clone()
        .with_band_names(["blue", "green", "red"])
        .expect("names");
    for (a, b) in [("red", "red"), ("green", "green")] {
        let err = named.norm_diff(a, b).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    what: "bands a and b",
                    ..
                }
            ),
            "{err}"
        );
        assert!(LazyArray::ndvi(named.clone(), a, b).is_err());
    }
    let twice = Raster::open_stack([data(B3), data(B3)], Stack::Band).expect("stack");
    assert!(twice.norm_diff("band1", "band1_2").is_err());
    let _ = named.norm_diff("green", "red").expect("different bands");

    // two time steps on one date, from names, from given dates, from a glob
    let err = Raster::open_stack([data(RGBN), data(RGBN)], Stack::Time).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "time stack dates",
                ..
            }
        ),
        "{err}"
    );
    let d = rasterlab::raster::time::parse_date("2020-01-01").expect("date");
    let err =
        Raster::open_time_stack([data(RGBN), data("data/rgbn_20160401.tif")], &[d, d]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("rgbn_20160101.tif") && msg.contains("rgbn_20160401.tif"),
        "{msg}"
    );
    for name in ["x_2016-03-01.tif", "x_20160301.tif"] {
        std::fs::copy(data(RGBN), dir.path().join(name)).expect("copy");
    }
    let pattern = format!("{}/x_*.tif", dir.path().display());
    let err = Raster::open_glob(&pattern, None).unwrap_err();
    assert!(err.to_string().contains("2016-03-01"), "{err}");
}

#[test]
fn estimators_refuse_a_k_beyond_the_label_map_before_fitting() {
    let scene = Raster::open(data(SCENE))
        .expect("scene")
        .with_nodata(Some(0.0));
    // 90,000 samples with a grid: k = 40,000 passes the sample count, not the label map
    let x = Samples::from_window(&scene, &["band1", "band2"], Window::new(900, 800, 300, 300))
        .expect("samples");
    assert!(x.n_samples() > 40_000);
    let k = 40_000;
    let start = Instant::now();
    let errors = [
        KMeans::new(k)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .map(|_| ()),
        MiniBatchKMeans::new(k)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .map(|_| ()),
        MiniBatchKMeans::new(k)
            .progress(ProgressMode::Silent)
            .partial_fit(&x),
        MiniBatchKMeans::new(k)
            .progress(ProgressMode::Silent)
            .fit_raster(&scene, &["band1"])
            .map(|_| ()),
        SpectralClustering::new(k)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .map(|_| ()),
    ];
    for err in errors {
        let err = err.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "k", .. }), "{err}");
        assert!(err.to_string().contains("1 to 32768"), "{err}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // the largest k that fits is not refused by this check
    assert!(LabelMap::check_k(LabelMap::MAX_LABELS).is_ok());
    assert_eq!(LabelMap::MAX_LABELS, i16::MAX as usize + 1);
    // a plain matrix has no label map: only the sample count limits k
    let plain = ndarray::Array2::<f64>::zeros((10, 2));
    assert!(matches!(
        KMeans::new(k).fit(&plain),
        Err(Error::TooFewSamples { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Item 8: CLI rough edges

#[test]
fn missing_output_folders_are_refused_before_the_run() {
    let dir = folder();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).expect("sub folder");
    let (scene, rgbn, b3, b4) = (abs(SCENE), abs(RGBN), abs(B3), abs(B4));
    let commands: Vec<Vec<&str>> = vec![
        vec!["ndi", &scene, "--a", "band1", "--b", "band2"],
        vec!["product", &b3, &b4],
        vec!["reduce", &rgbn],
        vec!["cluster", &scene, "--nodata", "0", "--k", "3"],
    ];
    for command in &commands {
        for (output, why) in [
            ("missing_dir/", "ends in a slash"),
            ("missing_dir/x.tif", "folder missing_dir does not exist"),
            ("sub/", "ends in a slash"),
        ] {
            let mut args = command.clone();
            args.extend(["-o", output]);
            refused(d, &args, &["cannot write", output, why]);
        }
        // the profile is an output as well
        let mut args = command.clone();
        args.extend(["--profile", "missing_dir/p.svg", "-o", "new.tif"]);
        refused(d, &args, &["missing_dir/p.svg", "does not exist"]);
    }
}

#[test]
fn bbox_accepts_both_documented_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // two dated copies of one file: the mean over time is band 1 itself
    let (f1, f2) = (abs(RGBN), abs("data/rgbn_20160401.tif"));
    // 5 m pixels from (792988, 2050382): 100 x 50 pixels, 10 in and 50 down
    let comma = "793038,2049882,793538,2050132";
    let spaced = ["793038", "2049882", "793538", "2050132"];
    let mut runs: Vec<(String, Vec<&str>)> = vec![
        ("comma.tif".into(), vec![&f1, &f2, "--bbox", comma]),
        ("equals.tif".into(), vec![&f1, &f2]),
        ("before_files.tif".into(), vec!["--bbox", comma, &f1, &f2]),
    ];
    let equals = format!("--bbox={comma}");
    runs[1].1.push(&equals);
    let mut spaced_args = vec![&f1 as &str, &f2, "--bbox"];
    spaced_args.extend(spaced);
    runs.push(("spaced.tif".into(), spaced_args));
    let mut before = vec!["--bbox"];
    before.extend(spaced);
    before.extend([&f1 as &str, &f2]);
    runs.push(("spaced_before_files.tif".into(), before));
    let reference = d.join("reference.tif");
    gdal_translate(
        &[
            "-b", "1", "-projwin", "793038", "2050132", "793538", "2049882",
        ],
        &data(RGBN),
        &reference,
    );
    let (rw, rh, rbands, _) = read_all(&reference);
    assert_eq!((rw, rh), (100, 50));
    for (name, mut args) in runs {
        args.insert(0, "reduce");
        args.extend(["--quiet", "-o", &name]);
        succeeded(d, &args);
        let (w, h, bands, _) = read_all(&d.join(&name));
        assert_eq!((w, h), (rw, rh), "{name}");
        assert!(same_pixels(&bands[0], &rbands[0]), "{name} differs");
    }
    // negative coordinates (the scene lies south of the equator), both forms
    let scene = abs(SCENE);
    for (name, bbox) in [
        ("neg_comma.tif", vec!["747345,-2804295,747945,-2803995"]),
        (
            "neg_spaced.tif",
            vec!["747345", "-2804295", "747945", "-2803995"],
        ),
    ] {
        let mut args = vec!["reduce", &scene, "--band", "band2", "--bbox"];
        args.extend(bbox);
        args.extend(["--quiet", "-o", name]);
        succeeded(d, &args);
    }
    let neg_ref = d.join("neg_reference.tif");
    gdal_translate(
        &[
            "-b", "2", "-projwin", "747345", "-2803995", "747945", "-2804295",
        ],
        &data(SCENE),
        &neg_ref,
    );
    let (_, _, want, _) = read_all(&neg_ref);
    for name in ["neg_comma.tif", "neg_spaced.tif"] {
        let (w, h, got, _) = read_all(&d.join(name));
        assert_eq!((w, h), (20, 10), "{name}");
        assert!(same_pixels(&got[0], &want[0]), "{name} differs");
    }
    // three numbers are refused by the parser, naming the form allowed
    let prior = folder();
    refused(
        prior.path(),
        &["reduce", &f1, &f2, "--bbox", "1,2,3", "-o", "out.tif"],
        &["--bbox", "allowed: four numbers xmin,ymin,xmax,ymax"],
    );
}

#[test]
fn reduce_writes_the_resampled_series_one_band_per_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // three dated crops of real bands with nodata (0) in the scene's corner: two in
    // January, none in February, one in March
    let inputs = [
        (B2, "s_20160104.tif"),
        (B3, "s_20160120.tif"),
        (B4, "s_20160310.tif"),
    ];
    for (src, name) in inputs {
        gdal_translate(
            &["-srcwin", "0", "40", "64", "64"],
            &data(src),
            &d.join(name),
        );
    }
    let stdout = succeeded(
        d,
        &[
            "reduce",
            "s_20160104.tif",
            "s_20160120.tif",
            "s_20160310.tif",
            "--nodata",
            "0",
            "--resample",
            "month",
            "--resample-stat",
            "mean",
            "--series",
            "--quiet",
            "-o",
            "series.tif",
        ],
    );
    assert!(stdout.contains("3 band(s)"), "{stdout}");
    let (w, h, bands, names) = read_all(&d.join("series.tif"));
    assert_eq!((w, h), (64, 64));
    assert_eq!(
        names,
        ["band1@2016-01-31", "band1@2016-02-29", "band1@2016-03-31"]
    );
    // the plain loop, over the inputs read with the gdal crate
    let read = |name: &str| -> Vec<u16> {
        let ds = Dataset::open(d.join(name)).expect("input");
        let rb = ds.rasterband(1).expect("band");
        rb.read_as::<u16>((0, 0), (64, 64), (64, 64), None)
            .expect("read")
            .data()
            .to_vec()
    };
    let steps: Vec<Vec<u16>> = inputs.iter().map(|(_, n)| read(n)).collect();
    let mean = |values: &[u16]| -> f32 {
        let valid: Vec<f64> = values
            .iter()
            .filter(|&&v| v != 0)
            .map(|&v| f64::from(v))
            .collect();
        if valid.is_empty() {
            f32::NAN
        } else {
            (valid.iter().sum::<f64>() / valid.len() as f64) as f32
        }
    };
    let (mut nodata, mut valid) = (0, 0);
    for p in 0..w * h {
        let january = mean(&[steps[0][p], steps[1][p]]);
        let march = mean(&[steps[2][p]]);
        for (band, want) in [(0, january), (1, f32::NAN), (2, march)] {
            let got = bands[band][p];
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "band {band}, pixel {p}: {got} != {want}"
            );
        }
        if january.is_nan() {
            nodata += 1;
        } else {
            valid += 1;
        }
    }
    // the crop holds both cases, so the comparison covers both
    assert!(nodata > 0 && valid > 0, "{nodata} nodata, {valid} valid");

    // without --resample: the series as it is, one band per date
    succeeded(
        d,
        &[
            "reduce",
            "s_20160104.tif",
            "s_20160310.tif",
            "--series",
            "--quiet",
            "-o",
            "raw.tif",
        ],
    );
    let (_, _, raw, raw_names) = read_all(&d.join("raw.tif"));
    assert_eq!(raw_names, ["band1@2016-01-04", "band1@2016-03-10"]);
    for (band, step) in [(0, &steps[0]), (1, &steps[2])] {
        assert!(
            raw[band]
                .iter()
                .zip(step.iter())
                .all(|(&a, &b)| a == f32::from(b))
        );
    }

    // --series and --stat contradict each other
    let prior = folder();
    refused(
        prior.path(),
        &[
            "reduce",
            &abs(RGBN),
            "--series",
            "--stat",
            "std",
            "-o",
            "out.tif",
        ],
        &["--series", "cannot be used with"],
    );
}

#[test]
fn a_closed_stdout_ends_quietly_with_status_141() {
    for args in [vec!["info", SCENE], vec!["resources"]] {
        let mut child = Command::new(EXE)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // the reader goes away before rasterlab writes (opening the input takes longer)
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn cluster_takes_the_shared_output_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let small = d.join("small.tif");
    gdal_translate(
        &["-srcwin", "900", "800", "200", "150"],
        &data(SCENE),
        &small,
    );
    let common_args = [
        "cluster",
        "small.tif",
        "--nodata",
        "0",
        "--scale",
        "0.0001",
        "--k",
        "4",
        "--seed",
        "3",
        "--quiet",
    ];
    let mut args = common_args.to_vec();
    args.extend([
        "--compress",
        "deflate",
        "--profile",
        "p.svg",
        "--memory",
        "1GiB",
        "--chunks",
        "64",
        "--threads",
        "1",
        "-o",
        "labels.tif",
    ]);
    let stdout = succeeded(d, &args);
    assert!(stdout.contains("profile:    p.svg"), "{stdout}");
    let mut plain = common_args.to_vec();
    plain.extend(["--threads", "1", "-o", "plain.tif"]);
    succeeded(d, &plain);

    let gdalinfo = |name: &str| {
        let out = Command::new("gdalinfo")
            .arg(d.join(name))
            .output()
            .expect("gdalinfo");
        text(&out.stdout)
    };
    assert!(gdalinfo("labels.tif").contains("COMPRESSION=DEFLATE"));
    assert!(gdalinfo("plain.tif").contains("COMPRESSION=LZW"));
    let svg = std::fs::read_to_string(d.join("p.svg")).expect("profile written");
    let head = svg.trim_start();
    assert!(
        head.starts_with("<svg") || head.starts_with("<?xml"),
        "{head:.80}"
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    // the options change how it is written, not the labels
    let (_, _, a, _) = read_all(&d.join("labels.tif"));
    let (_, _, b, _) = read_all(&d.join("plain.tif"));
    assert!(same_pixels(&a[0], &b[0]));
    assert!(a[0].iter().all(|&l| (0.0..4.0).contains(&l)));

    // the shared options are checked like everywhere else
    let prior = folder();
    let p = prior.path();
    let small = small.to_string_lossy().into_owned();
    for (extra, needles) in [
        (["--memory", "lots"], ["--memory", "\"lots\""]),
        (
            ["--compress", "bogus"],
            ["compression", "none, lzw, deflate, zstd"],
        ),
        (["--chunks", "0"], ["chunk", "0"]),
    ] {
        let mut args = vec!["cluster", &small, "--k", "2"];
        args.extend(extra);
        args.extend(["-o", "out.tif"]);
        refused(p, &args, &needles);
    }
}
