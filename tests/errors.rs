//! Bad input gets a typed error that says what and where, and nothing is left on disk.

mod common;

use std::path::Path;

use common::*;
use rasterlab::prelude::*;

fn scene() -> Raster {
    Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("scene")
}

fn save_into(dir: &Path, name: &str) -> rasterlab::Result<()> {
    scene()
        .norm_diff("green", "red")?
        .save(dir.join(name))
        .progress(ProgressMode::Silent)
        .run()
        .map(|_| ())
}

#[test]
fn missing_file_is_not_found() {
    let err = Raster::open("data/no-such-scene.tif").unwrap_err();
    assert!(
        matches!(&err, Error::NotFound(p) if p.ends_with("no-such-scene.tif")),
        "{err:?}"
    );
    assert!(err.to_string().contains("no-such-scene.tif"));
}

#[test]
fn non_raster_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.tif");
    std::fs::write(&path, "this is not a GeoTIFF").expect("write");
    let err = Raster::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NotARaster { path: p, .. } if p == &path),
        "{err:?}"
    );
}

#[test]
fn unknown_band_lists_the_available_ones() {
    let err = scene().norm_diff("green", "nir").unwrap_err();
    match &err {
        Error::UnknownBand { name, available } => {
            assert_eq!(name, "nir");
            assert_eq!(available, &["blue", "green", "red"]);
        }
        other => panic!("expected UnknownBand, got {other:?}"),
    }
    assert!(err.to_string().contains("blue, green, red"));
}

#[test]
fn wrong_number_of_band_names_is_invalid() {
    let err = Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["green", "red"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "band names",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn stack_with_mismatched_size_names_file_and_field() {
    let err = Raster::open_stack([data(B3), data(RGBN)], Stack::Band).unwrap_err();
    match &err {
        Error::StackMismatch { path, field, .. } => {
            assert!(path.ends_with("rgbn_20160101.tif"));
            assert_eq!(*field, "size");
        }
        other => panic!("expected StackMismatch, got {other:?}"),
    }
}

#[test]
fn stack_with_other_geotransform_is_refused() {
    // Same size and CRS, but the grid is shifted by one pixel.
    let dir = tempfile::tempdir().expect("tempdir");
    let shifted = dir.path().join("shifted.tif");
    let src = gdal::Dataset::open(data(B4)).expect("open");
    let mut copy = src
        .create_copy(
            &gdal::DriverManager::get_driver_by_name("GTiff").expect("driver"),
            &shifted,
            &Default::default(),
        )
        .expect("copy");
    let mut gt = copy.geo_transform().expect("gt");
    gt[0] += 30.0;
    copy.set_geo_transform(&gt).expect("set gt");
    copy.flush_cache().expect("flush");
    drop(copy);
    let err = Raster::open_stack([data(B3), shifted], Stack::Band).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StackMismatch {
                field: "geotransform",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn zero_chunks_are_invalid_everywhere() {
    assert!(matches!(
        scene().chunks(0),
        Err(Error::Invalid {
            what: "chunk size",
            ..
        })
    ));
    assert!(matches!(
        ChunkGrid::new(10, 10, 0, 5),
        Err(Error::Invalid { .. })
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.tif");
    let err = scene()
        .norm_diff("green", "red")
        .expect("expr")
        .save(&path)
        .chunks(0)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "chunk size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn chunk_larger_than_memory_budget_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = scene()
        .norm_diff("green", "red")
        .expect("expr")
        .save(dir.path().join("out.tif"))
        .chunks(2048)
        .memory(1 << 20)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("memory budget"), "{err}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn output_folder_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = save_into(&dir.path().join("missing"), "out.tif").unwrap_err();
    match &err {
        Error::Output { reason, .. } => assert!(reason.contains("does not exist"), "{reason}"),
        other => panic!("expected Output, got {other:?}"),
    }
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn output_folder_that_is_not_writable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // root ignores permission bits: then use a folder no one may create files in.
    let target = if std::fs::File::create(locked.join("probe")).is_ok() {
        let _ = std::fs::remove_file(locked.join("probe"));
        Path::new("/proc").to_path_buf()
    } else {
        locked.clone()
    };
    let err = save_into(&target, "rasterlab-out.tif").unwrap_err();
    match &err {
        Error::Output { reason, .. } => assert!(reason.contains("not writable"), "{reason}"),
        other => panic!("expected Output, got {other:?}"),
    }
    assert!(!target.join("rasterlab-out.tif").exists());
    assert!(entries(&locked).is_empty());
}

#[test]
fn output_path_that_is_a_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("out.tif")).expect("mkdir");
    let err = save_into(dir.path(), "out.tif").unwrap_err();
    assert!(matches!(err, Error::Output { .. }), "{err:?}");
}

#[test]
fn corrupt_input_fails_in_a_named_chunk_and_leaves_nothing() {
    // A real scene cut in half: the header and the first tiles read, later tiles do not.
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = dir.path().join("cut.tif");
    let bytes = std::fs::read(data(SCENE)).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let raster = Raster::open(&cut).expect("header still opens");
    let err = raster
        .norm_diff("band2", "band3")
        .expect("expr")
        .save(out_dir.join("ndi.tif"))
        .chunks(256)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_err();
    match &err {
        Error::Chunk {
            chunk,
            window,
            source,
        } => {
            assert!(window.fits(2041, 1860));
            assert!(matches!(**source, Error::Gdal { .. }), "{source:?}");
            assert!(err.to_string().contains(&format!("chunk {chunk}")));
        }
        other => panic!("expected Chunk, got {other:?}"),
    }
    assert!(
        entries(&out_dir).is_empty(),
        "left behind: {:?}",
        entries(&out_dir)
    );
}

/// The Landsat scene cut in half in `dir`: the header and the first tiles read, later
/// tiles do not.
fn cut_scene(dir: &Path) -> std::path::PathBuf {
    let cut = dir.join("cut.tif");
    let bytes = std::fs::read(data(SCENE)).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    cut
}

#[test]
fn corrupt_input_fails_clustering_in_a_named_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 256-row strips (256 x 256 tiles for fit_raster): the top ones read, later ones fail
    let raster = Raster::open(cut_scene(dir.path()))
        .and_then(|r| r.chunks(256))
        .expect("header still opens")
        .with_nodata(Some(0.0));
    let bands = ["band1", "band2", "band3"];
    let rt = Runtime::builder()
        .threads(2)
        .progress(ProgressMode::Silent)
        .build()
        .expect("runtime");
    // a model from the readable top of the scene
    let top = Samples::from_window(&raster, &bands, Window::new(0, 0, 2041, 64)).expect("top");
    let model = KMeans::new(3)
        .progress(ProgressMode::Silent)
        .fit(&top)
        .expect("fit");
    let labels = dir.path().join("labels.tif");
    let failures = [
        (
            "samples",
            Samples::from_bands_in(&raster, &bands, &rt).map(|_| ()),
        ),
        (
            "predict_raster",
            model.predict_raster_in(&raster, &bands, &rt).map(|_| ()),
        ),
        (
            "write_labels",
            model
                .write_labels(&raster, &bands, &labels)
                .runtime(&rt)
                .run()
                .map(|_| ()),
        ),
        (
            "fit_raster",
            MiniBatchKMeans::new(3)
                .max_iter(1)
                .runtime(&rt)
                .progress(ProgressMode::Silent)
                .fit_raster(&raster, &bands)
                .map(|_| ()),
        ),
    ];
    for (what, result) in failures {
        let err = result.expect_err(what);
        match &err {
            Error::Chunk {
                chunk,
                window,
                source,
            } => {
                assert!(window.fits(2041, 1860), "{what}: {window}");
                // the failing chunk lies below the readable top, and is not the whole scene
                assert!(window.y >= 256 && window.height <= 256, "{what}: {window}");
                assert!(matches!(**source, Error::Gdal { .. }), "{what}: {source:?}");
                let text = err.to_string();
                assert!(
                    text.contains(&format!("chunk {chunk} ({window})")),
                    "{what}: {text}"
                );
                println!("{what}: {text}");
            }
            other => panic!("{what}: expected Chunk, got {other:?}"),
        }
    }
    assert!(!labels.exists(), "a failed write_labels left its output");
}

#[test]
fn an_existing_output_survives_a_failed_save() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ndi.tif");
    std::fs::write(&path, b"previous result").expect("write");
    let err = scene()
        .norm_diff("green", "red")
        .expect("expr")
        .save(&path)
        .chunks(2048)
        .memory(1 << 20)
        .progress(ProgressMode::Silent)
        .run();
    assert!(err.is_err());
    assert_eq!(std::fs::read(&path).expect("read"), b"previous result");
    assert_eq!(entries(dir.path()), ["ndi.tif"]);
}

/// Bad inputs whose GDAL messages must reach the user only inside rasterlab's errors. Runs
/// in a child process of `gdal_prints_nothing_on_stderr`, which reads its stderr.
#[test]
#[ignore = "run by gdal_prints_nothing_on_stderr"]
fn quiet_child() {
    let Some(dir) = std::env::var_os("RASTERLAB_QUIET_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let notes = dir.join("notes.tif");
    std::fs::write(&notes, "this is not a GeoTIFF").expect("write");
    let err = Raster::open(&notes).unwrap_err();
    println!("OPEN={err}");
    let cut = dir.join("cut.tif");
    let bytes = std::fs::read(data(SCENE)).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let err = Raster::open(&cut)
        .expect("header still opens")
        .norm_diff("band2", "band3")
        .expect("expr")
        .save(dir.join("ndi.tif"))
        .chunks(256)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_err();
    println!("SAVE={err}");
}

#[test]
fn gdal_prints_nothing_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_child_test(
        "quiet_child",
        &[("RASTERLAB_QUIET_DIR", dir.path().as_os_str())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    // Both failures happened, and GDAL's own words are in the typed errors...
    assert!(
        stdout.contains("OPEN=") && stdout.contains("not recognized"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SAVE=") && stdout.contains("chunk"),
        "{stdout}"
    );
    // ...not printed again by GDAL ("ERROR 4: ...", "ERROR 1: ...").
    let printed: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR")).collect();
    assert!(printed.is_empty(), "GDAL printed on stderr: {printed:?}");
}
