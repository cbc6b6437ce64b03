//! Parallel helpers and band math, checked against plain loops.

mod common;

use common::*;
use rasterlab::prelude::*;
use rasterlab::runtime::exec::{batched_for_each, batched_map};
use rasterlab::runtime::grid::{iter_chunks, iter_noncore_chunks};

fn rgbn() -> Raster {
    Raster::open(data(RGBN))
        .and_then(|r| r.with_band_names(["red", "green", "blue", "nir"]))
        .expect("rgbn")
}

/// nir as f64, read whole through the gdal crate (independent of rasterlab).
fn nir_plain() -> (usize, usize, Vec<f64>) {
    let (w, h, v) = read_band_u16(RGBN, 4);
    (w, h, v.into_iter().map(f64::from).collect())
}

#[test]
fn map_blocks_returns_one_result_per_block_in_order() {
    let (w, h, nir) = nir_plain();
    for chunks in [64, 100, 403, 1000] {
        for threads in [1, 2] {
            let array = rgbn()
                .band("nir")
                .and_then(|a| a.chunks(chunks))
                .expect("band");
            let sums = array
                .threads(threads)
                .progress(ProgressMode::Silent)
                .map_blocks(|b| {
                    (
                        b.id,
                        b.window,
                        b.data.iter().map(|&v| v as f64).sum::<f64>(),
                    )
                })
                .expect("map_blocks");
            let grid = ChunkGrid::new(w, h, chunks, chunks).expect("grid");
            assert_eq!(sums.len(), grid.len());
            for (k, ((id, window, sum), expected_window)) in
                sums.iter().zip(grid.iter()).enumerate()
            {
                assert_eq!((*id, *window), (k, expected_window), "chunks {chunks}");
                let plain: f64 = (window.y..window.y + window.height)
                    .flat_map(|y| (window.x..window.x + window.width).map(move |x| (y, x)))
                    .map(|(y, x)| nir[y * w + x])
                    .sum();
                assert_eq!(*sum, plain, "block {k} with chunks {chunks}");
            }
        }
    }
}

#[test]
fn map_collect_flattens_records_in_block_order() {
    let (w, h, nir) = nir_plain();
    let plain: Vec<(usize, usize)> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| nir[y * w + x] > 200.0)
        .collect();
    assert!(!plain.is_empty());
    for chunks in [50, 128, 515] {
        let mut found = rgbn()
            .band("nir")
            .and_then(|a| a.chunks(chunks))
            .expect("band")
            .progress(ProgressMode::Silent)
            .map_collect(|b| {
                b.data
                    .indexed_iter()
                    .filter(|(_, v)| **v > 200.0)
                    .map(|((_, y, x), _)| (b.window.x + x, b.window.y + y))
                    .collect::<Vec<_>>()
            })
            .expect("map_collect");
        found.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(found, plain, "chunks {chunks}");
    }
}

#[test]
fn a_panicking_block_is_a_typed_error_and_the_next_run_works() {
    let array = rgbn()
        .band("nir")
        .and_then(|a| a.chunks(100))
        .expect("band")
        .progress(ProgressMode::Silent);
    let err = array
        .map_blocks(|b| {
            if b.id == 7 {
                panic!("bad block on purpose");
            }
            b.id
        })
        .unwrap_err();
    match &err {
        Error::Panic { task, message } => {
            assert!(task.starts_with("chunk 7 "), "{task}");
            assert!(message.contains("on purpose"));
        }
        other => panic!("expected Panic, got {other:?}"),
    }
    let err = array
        .try_map_blocks(|b| if b.id == 3 { Err("no good") } else { Ok(b.id) })
        .unwrap_err();
    match &err {
        Error::Chunk {
            chunk: 3, source, ..
        } => assert!(matches!(**source, Error::User { .. })),
        other => panic!("expected Chunk 3, got {other:?}"),
    }
    // A new run after the failures works (pools are per call).
    let ids = array.map_blocks(|b| b.id).expect("works again");
    assert_eq!(ids, (0..30).collect::<Vec<_>>());
}

/// Run in a child process (this test binary again), so its stderr can be read: a panic
/// the executor catches prints nothing (no "panicked at", no backtrace into a notebook)
/// and the error says where it happened; a panic elsewhere still reaches the default hook.
#[test]
fn a_caught_panic_is_quiet_and_names_where_it_happened() {
    const CHILD: &str = "RASTERLAB_TEST_QUIET_PANIC_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let array = rgbn()
            .band("nir")
            .and_then(|a| a.chunks(100))
            .expect("band")
            .progress(ProgressMode::Silent);
        let err = array
            .map_blocks(|b| {
                if b.id == 2 {
                    panic!("quiet block on purpose");
                }
                b.id
            })
            .unwrap_err();
        println!("ERROR: {err}");
        // Control: an uncaught panic on another thread goes to the default hook.
        let _ = std::thread::spawn(|| panic!("loud thread on purpose")).join();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("test exe"))
        .args([
            "--exact",
            "a_caught_panic_is_quiet_and_names_where_it_happened",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.find("ERROR: ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no error line in:\n{stdout}"));
    assert!(line.contains("panic in chunk 2 "), "{line}");
    assert!(
        line.contains("quiet block on purpose (at tests/helpers.rs:"),
        "{line}"
    );
    assert!(
        !stderr.contains("quiet block on purpose"),
        "caught panic printed:\n{stderr}"
    );
    assert!(!stdout.contains("panicked at 'quiet") && !stdout.contains("stack backtrace"));
    assert!(
        stderr.contains("loud thread on purpose"),
        "an uncaught panic must still be printed:\n{stderr}"
    );
}

#[test]
fn a_panic_during_save_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A user function cannot run inside a save, but a failing read can: a band file
    // cut short fails in some chunk; nothing may remain.
    let cut = dir.path().join("cut_B4.TIF");
    let bytes = std::fs::read(data(B4)).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).expect("write");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let r = Raster::open_stack([data(B3), cut], Stack::Band).expect("stack");
    let err = (r.band("band1").expect("b") * r.band("band1_2").expect("b"))
        .save(out.join("p.tif"))
        .chunks(256)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::Chunk { .. }), "{err:?}");
    assert!(entries(&out).is_empty());
}

#[test]
fn batched_map_keeps_order_and_bounds_batches() {
    let plan = PoolPlan::detect()
        .and_then(|p| p.with_threads(2))
        .expect("plan");
    for (n, batch) in [
        (0usize, 3usize),
        (10, 3),
        (1000, 64),
        (1000, 1000),
        (7, 100),
    ] {
        let out =
            batched_map(0..n, batch, &plan, ProgressMode::Silent, |i| i * 3 + 1).expect("map");
        assert_eq!(out, (0..n).map(|i| i * 3 + 1).collect::<Vec<_>>());
        let mut sizes = Vec::new();
        let done = batched_for_each(
            0..n,
            batch,
            &plan,
            ProgressMode::Silent,
            |i| i,
            |b| {
                sizes.push(b.len());
                Ok(())
            },
        )
        .expect("for_each");
        assert_eq!(done, n);
        assert!(sizes.iter().all(|&s| s <= batch && s > 0));
    }
    let err = batched_map(0..100, 8, &plan, ProgressMode::Silent, |i| {
        if i == 42 { panic!("item") } else { i }
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::Panic { task, .. } if task == "item 42"),
        "{err:?}"
    );
    assert!(batched_map(0..1, 0, &plan, ProgressMode::Silent, |i| i).is_err());
}

#[test]
fn nd_chunk_iterators_cover_everything_once() {
    for (shape, chunks) in [
        (vec![7usize, 5, 3], vec![2usize, 5, 2]),
        (vec![10, 10], vec![3, 4]),
        (vec![4], vec![10]),
    ] {
        let mut hits = vec![0u8; shape.iter().product()];
        for ranges in iter_chunks(&shape, &chunks).expect("chunks") {
            // Visit every index in the chunk.
            let mut idx: Vec<usize> = ranges.iter().map(|r| r.start).collect();
            loop {
                let flat = idx.iter().zip(&shape).fold(0, |acc, (&i, &s)| acc * s + i);
                hits[flat] += 1;
                let mut d = shape.len();
                loop {
                    if d == 0 {
                        break;
                    }
                    d -= 1;
                    idx[d] += 1;
                    if idx[d] < ranges[d].end {
                        break;
                    }
                    idx[d] = ranges[d].start;
                    if d == 0 {
                        d = usize::MAX;
                        break;
                    }
                }
                if d == usize::MAX {
                    break;
                }
            }
        }
        assert!(hits.iter().all(|&h| h == 1), "{shape:?} by {chunks:?}");
    }
    let series: Vec<_> = iter_noncore_chunks(&[12, 3, 4], &[0])
        .expect("noncore")
        .collect();
    assert_eq!(series.len(), 12);
    assert!(
        series
            .iter()
            .all(|r| r[0] == (0..12) && r[1].len() == 1 && r[2].len() == 1)
    );
    assert!(iter_chunks(&[3, 3], &[0, 1]).is_err());
    assert!(iter_noncore_chunks(&[3, 3], &[2]).is_err());
}

/// blue * green * red with nodata 0 and scale 1e-4, plainly.
fn product_reference() -> Vec<f64> {
    let (_, _, b) = read_band_u16(SCENE, 1);
    let (_, _, g) = read_band_u16(SCENE, 2);
    let (_, _, r) = read_band_u16(SCENE, 3);
    b.iter()
        .zip(&g)
        .zip(&r)
        .map(|((&b, &g), &r)| {
            if b == 0 || g == 0 || r == 0 {
                f64::NAN
            } else {
                (b as f64 * 1e-4) * (g as f64 * 1e-4) * (r as f64 * 1e-4)
            }
        })
        .collect()
}

#[test]
fn band_product_from_files_and_from_stack_saved_as_lzw() {
    let expected = product_reference();
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("scene");
    let files = Raster::open_stack([data(B2), data(B3), data(B4)], Stack::Band)
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("files");
    for (what, r) in [("stack", stack), ("files", files)] {
        let product =
            (r.band("blue").expect("b") * r.band("green").expect("g") * r.band("red").expect("r"))
                .nodata(0.0)
                .scale(1e-4);
        let path = dir.path().join(format!("{what}.tif"));
        product
            .save(&path)
            .chunks(333)
            .progress(ProgressMode::Silent)
            .run()
            .expect("save");
        let (_, _, got) = read_output(&path);
        for (i, (&e, &g)) in expected.iter().zip(&got).enumerate() {
            if e.is_nan() {
                assert!(g.is_nan(), "{what} pixel {i}");
            } else {
                assert!(
                    (e - g as f64).abs() <= 1e-5 * e.abs(),
                    "{what} pixel {i}: {e} vs {g}"
                );
            }
        }
        use gdal::Metadata;
        let ds = gdal::Dataset::open(&path).expect("open");
        assert_eq!(
            ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                .as_deref(),
            Some("LZW")
        );
    }
}

#[test]
fn masks_comparisons_and_integer_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = rgbn();
    let ndvi = LazyArray::ndvi(r.clone(), "nir", "red").expect("ndvi");
    // Keep vegetation, 0 elsewhere; scaled to 0..10000 as UInt16 with nodata 65535.
    let veg = ndvi.clone().where_(ndvi.clone().gt(0.2), 0.0) * 10000.0;
    let path = dir.path().join("veg.tif");
    veg.clip(0.0, 10000.0)
        .cast(OutputType::UInt16)
        .fill_nodata(65535.0)
        .save(&path)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save");
    let (_, _, red) = read_band_u16(RGBN, 1);
    let (_, _, nir) = read_band_u16(RGBN, 4);
    let ds = gdal::Dataset::open(&path).expect("open");
    let band = ds.rasterband(1).expect("band");
    assert_eq!(band.band_type(), gdal::raster::GdalDataType::UInt16);
    assert_eq!(band.no_data_value(), Some(65535.0));
    let got = band
        .read_as::<u16>((0, 0), (515, 403), (515, 403), None)
        .expect("read");
    for (i, &g) in got.data().iter().enumerate() {
        let (n, rd) = (nir[i] as f64, red[i] as f64);
        let expected = if n + rd == 0.0 {
            65535.0
        } else {
            let v = (n - rd) / (n + rd);
            if v > 0.2 {
                (v * 10000.0).clamp(0.0, 10000.0).round()
            } else {
                0.0
            }
        };
        assert!(
            (g as f64 - expected).abs() <= 1.0,
            "pixel {i}: {g} vs {expected}"
        );
    }
    // Integer output without a nodata value is refused before anything is written.
    let err = ndvi
        .cast(OutputType::Byte)
        .save(dir.path().join("b.tif"))
        .run()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "output type",
                ..
            }
        ),
        "{err:?}"
    );
    // Arrays from different rasters cannot be combined.
    let other = Raster::open(data(SCENE)).expect("scene");
    let mixed = r.band("red").expect("r") + other.band("band1").expect("b");
    assert!(mixed.compute().is_err());
}
