//! The `rasterlab` binary: summaries on success, one-line errors and no output on failure.

mod common;

use common::cli::*;
use common::*;

#[test]
fn resources_reports_cores_memory_and_plan() {
    let out = rasterlab(&["resources"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in ["usable cores", "memory budget", "threads"] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
}

#[test]
fn info_describes_the_scene() {
    let out = rasterlab(&["info", SCENE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2041 x 1860"), "{stdout}");
    assert!(stdout.contains("EPSG:32621"), "{stdout}");
    assert!(stdout.contains("UInt16"), "{stdout}");
}

#[test]
fn ndi_from_stack_and_from_band_files_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.tif");
    let b = dir.path().join("b.tif");
    let out = rasterlab(&[
        "ndi",
        SCENE,
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
        "300",
        "--threads",
        "2",
        "--memory",
        "512MiB",
        "-o",
        a.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("chunks") && stdout.contains("MB/s"),
        "{stdout}"
    );
    let out = rasterlab(&[
        "ndi",
        "--bands",
        &format!("{B3},{B4}"),
        "--nodata",
        "0",
        "--compress",
        "zstd",
        "-o",
        b.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, _, va) = read_output(&a);
    let (_, _, vb) = read_output(&b);
    assert_eq!(va.len(), vb.len());
    assert!(
        va.iter()
            .zip(&vb)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-6)
    );
}

#[test]
fn bad_input_is_one_line_nonzero_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = dir.path().join("out.tif");
    let o = o.to_str().expect("utf8");
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "ndi",
                "data/missing.tif",
                "--a",
                "band1",
                "--b",
                "band2",
                "-o",
                o,
            ],
            "file not found",
        ),
        (
            &["ndi", SCENE, "--a", "green", "--b", "red", "-o", o],
            "unknown band",
        ),
        (
            &[
                "ndi", SCENE, "--a", "band2", "--b", "band3", "--chunks", "0", "-o", o,
            ],
            "chunk size",
        ),
        (
            &[
                "ndi",
                SCENE,
                "--a",
                "band2",
                "--b",
                "band3",
                "--compress",
                "bogus",
                "-o",
                o,
            ],
            "compression",
        ),
        (
            &["ndi", "--bands", &format!("{B3},{RGBN}"), "-o", o],
            "stack mismatch",
        ),
    ];
    for (args, needle) in cases {
        let out = rasterlab(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = text(&out.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line:\n{stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(
            entries(dir.path()).is_empty(),
            "{args:?} left {:?}",
            entries(dir.path())
        );
    }
}

#[test]
fn reduce_writes_one_band_per_statistic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiffs = common::cube::write_tiffs(dir.path());
    let out = dir.path().join("weekly.tif");
    let mut args: Vec<String> = vec!["reduce".into()];
    args.extend(tiffs.iter().map(|p| p.display().to_string()));
    args.extend(
        [
            "--stack",
            "time",
            "--resample",
            "week",
            "--stat",
            "mean,std",
            "--quiet",
            "-o",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(out.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = rasterlab(&refs);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let ds = gdal::Dataset::open(&out).expect("output");
    assert_eq!(ds.raster_count(), 2);
    let std = ds.rasterband(2).expect("std band");
    let v = std
        .read_as::<f32>((5, 7), (1, 1), (1, 1), None)
        .expect("read")
        .data()[0];
    // Weekly means then their std: the std of the weekly means, not of the raw series.
    let expected = common::cube::weekly_mean_then_std(7, 5, |_| true).expect("valid");
    assert!((v as f64 - expected).abs() < 1e-3, "{v} vs {expected}");

    // Bad statistic, bad date, unknown band: one-line errors, no output.
    let bad = dir.path().join("bad.tif");
    let b = bad.to_str().expect("utf8");
    let t0 = tiffs[0].to_str().expect("utf8");
    let t1 = tiffs[1].to_str().expect("utf8");
    for (args, needle) in [
        (
            vec!["reduce", t0, t1, "--stat", "median", "-o", b],
            "statistic",
        ),
        (
            vec!["reduce", t0, t1, "--dates", "2020-01-01,yesterday", "-o", b],
            "date",
        ),
        (
            vec!["reduce", t0, t1, "--band", "rain", "-o", b],
            "unknown band",
        ),
    ] {
        let run = rasterlab(&args);
        assert!(!run.status.success());
        let stderr = text(&run.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!bad.exists());
    }
}

#[test]
fn product_of_band_files_and_of_the_stack_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.tif"), dir.path().join("b.tif"));
    let run = rasterlab(&[
        "product",
        SCENE,
        "--nodata",
        "0",
        "--scale",
        "0.0001",
        "--quiet",
        "-o",
        a.to_str().expect("utf8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let run = rasterlab(&[
        "product",
        B2,
        B3,
        B4,
        "--nodata",
        "0",
        "--scale",
        "0.0001",
        "--quiet",
        "-o",
        b.to_str().expect("utf8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (_, _, va) = read_output(&a);
    let (_, _, vb) = read_output(&b);
    assert!(
        va.iter()
            .zip(&vb)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
    );
    assert!(va.iter().any(|v| !v.is_nan()));
}
