//! The `rasterlab` binary: summaries on success, one-line errors and no output on failure.

mod common;

use std::process::{Command, Output};

use common::*;

fn rasterlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rasterlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run rasterlab")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

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
