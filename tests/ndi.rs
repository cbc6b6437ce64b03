//! The foundation's end-to-end slice: normalized difference on the real Landsat scene,
//! checked pixel by pixel against a plain loop over bands read whole with GDAL.

mod common;

use common::*;
use gdal::{Dataset, Metadata};
use rasterlab::prelude::*;

/// (green - red) / (green + red) with nodata 0 and scale 1e-4, computed plainly in f64.
fn reference() -> (usize, usize, Vec<f64>) {
    let (w, h, green) = read_band_u16(SCENE, 2);
    let (_, _, red) = read_band_u16(SCENE, 3);
    let out = green
        .iter()
        .zip(&red)
        .map(|(&g, &r)| {
            if g == 0 || r == 0 {
                return f64::NAN;
            }
            let (g, r) = (g as f64 * 1e-4, r as f64 * 1e-4);
            if g + r == 0.0 {
                f64::NAN
            } else {
                (g - r) / (g + r)
            }
        })
        .collect();
    (w, h, out)
}

fn assert_matches(reference: &[f64], got: &[f32], what: &str) {
    assert_eq!(reference.len(), got.len(), "{what}: size");
    let mut valid = 0;
    for (i, (&r, &g)) in reference.iter().zip(got).enumerate() {
        if r.is_nan() {
            assert!(g.is_nan(), "{what}: pixel {i} should be nodata, got {g}");
        } else {
            valid += 1;
            assert!(
                (r - g as f64).abs() < 1e-6,
                "{what}: pixel {i}: expected {r}, got {g}"
            );
        }
    }
    // The scene's footprint: most pixels are valid, the corners are nodata.
    assert!(
        valid > reference.len() / 2 && valid < reference.len(),
        "{what}: {valid} valid pixels"
    );
}

fn stacked() -> LazyArray {
    Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .and_then(|r| r.norm_diff("green", "red"))
        .expect("stacked scene")
        .nodata(0.0)
        .scale(1e-4)
}

fn separate() -> LazyArray {
    Raster::open_stack([data(B3), data(B4)], Stack::Band)
        .and_then(|r| r.with_band_names(["green", "red"]))
        .and_then(|r| r.norm_diff("green", "red"))
        .expect("separate band files")
        .nodata(0.0)
        .scale(1e-4)
}

#[test]
fn saved_ndi_matches_plain_loop_for_every_chunking_threads_and_source() {
    let (w, h, expected) = reference();
    let dir = tempfile::tempdir().expect("tempdir");
    for (source, array) in [("stack", stacked()), ("files", separate())] {
        for chunks in [64, 100, 256, 333, w.max(h)] {
            for threads in [1, 2] {
                let what = format!("{source}, chunks {chunks}, {threads} thread(s)");
                let path = dir
                    .path()
                    .join(format!("ndi-{source}-{chunks}-{threads}.tif"));
                let report = array
                    .save(&path)
                    .chunks(chunks)
                    .threads(threads)
                    .progress(ProgressMode::Silent)
                    .run()
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(report.threads, threads, "{what}");
                assert_eq!(
                    report.grid.len(),
                    w.div_ceil(chunks.min(w)) * h.div_ceil(chunks.min(h)),
                    "{what}"
                );
                let (ow, oh, got) = read_output(&path);
                assert_eq!((ow, oh), (w, h), "{what}");
                assert_matches(&expected, &got, &what);
            }
        }
    }
    // Only the outputs: no temp files, no sidecars.
    for name in entries(dir.path()) {
        assert!(
            name.starts_with("ndi-") && name.ends_with(".tif"),
            "stray file {name}"
        );
    }
}

#[test]
fn compute_into_memory_matches_plain_loop() {
    let (w, h, expected) = reference();
    for chunks in [100, 333] {
        let got = stacked()
            .chunks(chunks)
            .and_then(|a| a.threads(2).progress(ProgressMode::Silent).compute())
            .expect("compute");
        assert_eq!(got.dim(), (1, h, w));
        assert_matches(
            &expected,
            got.as_slice().expect("contiguous"),
            &format!("compute chunks {chunks}"),
        );
    }
}

/// A number on the left of an operator (`1.0 - ndvi`, `2 * ndvi`, `1 / ndvi`) is the left
/// operand, checked against the plain loop's ndvi: subtraction and division do not commute,
/// so an implementation that swapped the operands fails here.
#[test]
fn operators_with_a_number_on_the_left() {
    let (w, h, ndvi) = reference();
    let run = |a: LazyArray| {
        a.chunks(333)
            .and_then(|a| a.threads(2).progress(ProgressMode::Silent).compute())
            .expect("compute")
    };
    type Case = (&'static str, LazyArray, fn(f64) -> f64);
    let cases: [Case; 4] = [
        ("1.0 - ndvi", 1.0 - stacked(), |v| 1.0 - v),
        ("2 * ndvi", 2 * &stacked(), |v| 2.0 * v),
        ("1f32 / ndvi", 1f32 / stacked(), |v| 1.0 / v),
        ("0.5 + ndvi", 0.5f64 + &stacked(), |v| 0.5 + v),
    ];
    for (what, array, f) in cases {
        let got = run(array);
        assert_eq!(got.dim(), (1, h, w), "{what}");
        let expected: Vec<f64> = ndvi
            .iter()
            .map(|&v| if v.is_nan() { v } else { f(v) })
            .collect();
        // 1 / ndvi is large near ndvi = 0: the tolerance is relative there.
        let mut valid = 0;
        for (i, (&e, &g)) in expected.iter().zip(got.iter()).enumerate() {
            if e.is_nan() {
                assert!(g.is_nan(), "{what}: pixel {i} should be nodata, got {g}");
                continue;
            }
            if e.is_infinite() {
                continue;
            }
            valid += 1;
            let tol = 1e-6 * e.abs().max(1.0) * if what.contains('/') { 1e3 } else { 1.0 };
            assert!((e - g as f64).abs() <= tol, "{what}: pixel {i}: {e} vs {g}");
        }
        assert!(valid > expected.len() / 2, "{what}: {valid} valid pixels");
    }
}

#[test]
fn default_chunks_are_block_aligned_and_output_keeps_georeference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ndi.tif");
    let report = stacked()
        .save(&path)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save");
    let (cw, ch) = report.grid.chunk_size();
    assert!(
        cw % 256 == 0 || cw == 2041,
        "chunk width {cw} not aligned to the 256 px blocks"
    );
    assert!(
        ch % 256 == 0 || ch == 1860,
        "chunk height {ch} not aligned to the 256 px blocks"
    );

    let src = Dataset::open(data(SCENE)).expect("source");
    let out = Dataset::open(&path).expect("output");
    assert_eq!(
        out.geo_transform().expect("gt"),
        src.geo_transform().expect("gt")
    );
    assert_eq!(
        out.spatial_ref().expect("srs").auth_code().expect("epsg"),
        32621
    );
    let band = out.rasterband(1).expect("band");
    assert_eq!(band.band_type(), gdal::raster::GdalDataType::Float32);
    assert!(band.no_data_value().expect("nodata").is_nan());
    let (bw, bh) = band.block_size();
    assert!(
        bw < 2041 && bw % 16 == 0 && bh % 16 == 0,
        "output is not tiled: block {bw} x {bh}"
    );
    assert_eq!(
        out.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref(),
        Some("LZW")
    );
}

#[test]
fn compression_options_reach_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (c, name) in [
        (Compression::Deflate, Some("DEFLATE")),
        (Compression::Zstd, Some("ZSTD")),
        (Compression::None, None),
    ] {
        let path = dir.path().join(format!("ndi-{c}.tif"));
        stacked()
            .save(&path)
            .compress(c)
            .chunks(512)
            .progress(ProgressMode::Silent)
            .run()
            .expect("save");
        let out = Dataset::open(&path).expect("output");
        assert_eq!(
            out.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                .as_deref(),
            name,
            "{c}"
        );
    }
}
