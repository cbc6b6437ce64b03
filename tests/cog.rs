//! Cloud-Optimized GeoTIFF output, checked with GDAL's own tools rather than rasterlab's:
//! `gdalinfo` (`LAYOUT=COG`, the overviews), GDAL's Python COG validator when it is
//! installed, the TIFF tile offsets (overviews before full resolution, tiles in order),
//! the pixels against the plain output and the overviews against `gdaladdo`.
//!
//! Label maps: every overview pixel must be one of the labels under it. Failures: a full
//! disk at each step of a COG write (2 MiB tmpfs, needs root: otherwise `SKIPPED` on
//! stderr), SIGINT in the chunk phase and in the COG rewrite, SIGKILL in the rewrite.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::*;
use common::*;
use gdal::{Dataset, Metadata};
use rasterlab::prelude::*;

// ---------------------------------------------------------------------------------------
// Helpers

fn scene() -> String {
    data(SCENE).to_string_lossy().into_owned()
}

fn gdalinfo(path: &Path) -> String {
    let out = Command::new("gdalinfo")
        .arg(path)
        .output()
        .expect("gdalinfo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The `Image Structure Metadata:` items gdalinfo lists, and the `Overviews:` line of
/// every band.
fn gdalinfo_cog_facts(path: &Path) -> (Vec<String>, Vec<String>) {
    let info = gdalinfo(path);
    let structure: Vec<String> = info
        .lines()
        .skip_while(|l| !l.starts_with("Image Structure Metadata:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect();
    let overviews = info
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Overviews: "))
        .map(str::to_string)
        .collect();
    (structure, overviews)
}

/// GDAL's `validate_cloud_optimized_geotiff.py` on `path` with the full check (tile
/// leaders and trailers): `None` when no Python with GDAL's utilities is installed.
fn python_validator(path: &Path) -> Option<Output> {
    for python in ["python3", "/usr/bin/python3"] {
        let probe = Command::new(python)
            .args([
                "-c",
                "import osgeo_utils.samples.validate_cloud_optimized_geotiff",
            ])
            .stderr(Stdio::null())
            .status();
        if !probe.is_ok_and(|s| s.success()) {
            continue;
        }
        let out = Command::new(python)
            .args([
                "-m",
                "osgeo_utils.samples.validate_cloud_optimized_geotiff",
                "--full-check=yes",
            ])
            .arg(path)
            .output()
            .expect("run the validator");
        return Some(out);
    }
    None
}

/// Asserts that `path` is a valid COG for GDAL: gdalinfo's `LAYOUT=COG`, `levels`
/// overview sizes on every band, the Python validator's verdict (when installed), and
/// the tiles' order read independently from their offsets.
fn assert_valid_cog(path: &Path, levels: usize) {
    let (structure, overviews) = gdalinfo_cog_facts(path);
    assert!(
        structure.iter().any(|l| l == "LAYOUT=COG"),
        "{}: no LAYOUT=COG in {structure:?}",
        path.display()
    );
    assert!(!overviews.is_empty(), "{}: no overviews", path.display());
    for line in &overviews {
        assert_eq!(
            line.split(", ").count(),
            levels,
            "{}: {line}",
            path.display()
        );
    }
    match python_validator(path) {
        Some(out) => {
            let stdout = text(&out.stdout);
            let stderr = text(&out.stderr);
            assert!(
                out.status.success(),
                "validator: {:?}\n{stdout}\n{stderr}",
                out.status
            );
            assert!(
                stdout.contains("is a valid cloud optimized GeoTIFF"),
                "{stdout}\n{stderr}"
            );
            assert!(
                !stdout.to_lowercase().contains("error") && !stderr.contains("rror"),
                "{stdout}\n{stderr}"
            );
        }
        None => eprintln!(
            "SKIPPED (no Python with osgeo_utils): the COG validator on {}",
            path.display()
        ),
    }
    assert_tiles_ordered(path);
}

/// (offset, size) of every tile of `band`, row by row.
fn tile_offsets(band: &gdal::raster::RasterBand) -> Vec<(u64, u64)> {
    let (w, h) = band.size();
    let (bw, bh) = band.block_size();
    let mut out = Vec::new();
    for by in 0..h.div_ceil(bh) {
        for bx in 0..w.div_ceil(bw) {
            let item = |key: &str| {
                band.metadata_item(&format!("{key}_{bx}_{by}"), "TIFF")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no {key}_{bx}_{by}"))
            };
            out.push((item("BLOCK_OFFSET"), item("BLOCK_SIZE")));
        }
    }
    out
}

/// The COG layout, checked on the tile offsets alone: every tile within the file, the
/// smallest overview first and full resolution last, and within each level and band the
/// tiles in row order.
fn assert_tiles_ordered(path: &Path) {
    let len = std::fs::metadata(path).expect("size").len();
    let ds = Dataset::open(path).expect("open");
    for b in 1..=ds.raster_count() {
        let band = ds.rasterband(b).expect("band");
        let n = band.overview_count().expect("count") as usize;
        // levels from the smallest overview to full resolution
        let mut levels: Vec<Vec<(u64, u64)>> = (0..n)
            .rev()
            .map(|o| tile_offsets(&band.overview(o).expect("overview")))
            .collect();
        levels.push(tile_offsets(&band));
        let mut previous_end = 0;
        for (i, tiles) in levels.iter().enumerate() {
            let first = tiles.iter().map(|t| t.0).min().expect("tiles");
            assert!(
                first >= previous_end,
                "{} band {b}: level {i} (smallest first) starts before the one before ends",
                path.display()
            );
            for pair in tiles.windows(2) {
                assert!(
                    pair[0].0 < pair[1].0,
                    "{}: tiles out of order",
                    path.display()
                );
            }
            for &(offset, size) in tiles {
                assert!(offset > 0 && size > 0 && offset + size <= len);
            }
            previous_end = tiles.iter().map(|t| t.0 + t.1).max().expect("tiles");
        }
    }
}

/// Band `b` of `path` (or of its overview `level`, 1-based; 0 is full resolution) as f32.
fn read_level(path: &Path, b: usize, level: usize) -> (usize, usize, Vec<f32>) {
    let ds = Dataset::open(path).expect("open");
    let band = ds.rasterband(b).expect("band");
    let band = if level == 0 {
        band
    } else {
        band.overview(level - 1).expect("overview")
    };
    let (w, h) = band.size();
    let buf = band
        .read_as::<f32>((0, 0), (w, h), (w, h), None)
        .expect("read");
    (w, h, buf.data().to_vec())
}

/// Pixels equal bit for bit (so NaN equals NaN); returns how many are valid.
fn assert_same_pixels(a: &(usize, usize, Vec<f32>), b: &(usize, usize, Vec<f32>), what: &str) {
    assert_eq!((a.0, a.1), (b.0, b.1), "{what}: size");
    let differ =
        a.2.iter()
            .zip(&b.2)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
    assert_eq!(differ, 0, "{what}: {differ} pixels differ");
}

fn overview_count(path: &Path) -> usize {
    let ds = Dataset::open(path).expect("open");
    ds.rasterband(1)
        .expect("band")
        .overview_count()
        .expect("count") as usize
}

/// Temporary files of rasterlab (and anything GDAL might leave: `.ovr.tmp`) in `dir`: more
/// than `common::cli::debris`, which it shadows here.
fn debris(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.contains(".rasterlab-") || n.ends_with(".tmp") || n.contains(".ovr"))
        .collect()
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    entries(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).expect("read");
            (n, bytes)
        })
        .collect()
}

fn assert_same(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{what}: the folder changed"
    );
    for (name, bytes) in before {
        assert!(after[name] == *bytes, "{what}: {name} was modified");
    }
}

// ---------------------------------------------------------------------------------------
// 1. The CLI's COG against GDAL's checks, the plain output and gdaladdo

#[test]
fn cli_cog_passes_gdal_checks_and_matches_plain_output_and_gdaladdo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scene = scene();
    succeeded(d, &ndi_args(&scene, &[], "plain.tif"));
    let report = succeeded(d, &ndi_args(&scene, &["--cog"], "x.tif"));
    assert!(
        report.contains("layout:   cloud-optimized, average overviews"),
        "{report}"
    );
    assert_eq!(debris(d), Vec::<String>::new());
    // 2041 x 1860 in 512-pixel tiles: 1021 x 930 and 511 x 465
    let (structure, overviews) = gdalinfo_cog_facts(&d.join("x.tif"));
    assert_eq!(overviews, ["1021x930, 511x465"], "{structure:?}");
    assert_valid_cog(&d.join("x.tif"), 2);
    // the plain output is not a COG and has no overviews
    let (plain_structure, plain_overviews) = gdalinfo_cog_facts(&d.join("plain.tif"));
    assert!(!plain_structure.iter().any(|l| l.starts_with("LAYOUT")));
    assert!(plain_overviews.is_empty());

    // full resolution: exactly the plain output's pixels
    let full = read_level(&d.join("x.tif"), 1, 0);
    assert_same_pixels(
        &full,
        &read_level(&d.join("plain.tif"), 1, 0),
        "full resolution",
    );
    assert!(full.2.iter().any(|v| v.is_nan()) && full.2.iter().any(|v| !v.is_nan()));

    // overviews: exactly what gdaladdo -r average computes on a copy of the plain output
    std::fs::copy(d.join("plain.tif"), d.join("ref.tif")).expect("copy");
    let status = Command::new("gdaladdo")
        .args(["-q", "-r", "average"])
        .arg(d.join("ref.tif"))
        .args(["2", "4"])
        .status()
        .expect("gdaladdo");
    assert!(status.success());
    for level in [1, 2] {
        let cog = read_level(&d.join("x.tif"), 1, level);
        assert_same_pixels(
            &cog,
            &read_level(&d.join("ref.tif"), 1, level),
            &format!("overview {level}"),
        );
        assert!(
            cog.2.iter().any(|v| !v.is_nan()),
            "overview {level} all nodata"
        );
    }
    // georeference, nodata, band description and compression carried over
    let ds = Dataset::open(d.join("x.tif")).expect("open");
    let plain = Dataset::open(d.join("plain.tif")).expect("open");
    assert_eq!(ds.geo_transform().unwrap(), plain.geo_transform().unwrap());
    assert_eq!(ds.projection(), plain.projection());
    let (b, p) = (ds.rasterband(1).unwrap(), plain.rasterband(1).unwrap());
    assert!(b.no_data_value().is_some_and(f64::is_nan));
    assert_eq!(b.description().unwrap(), p.description().unwrap());
    assert_eq!(
        ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref(),
        Some("LZW")
    );
}

#[test]
fn cli_cog_options_compression_resampling_and_replacing_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scene = scene();
    std::fs::write(d.join("x.tif"), b"an older file").expect("write");
    let args = ndi_args(
        &scene,
        &[
            "--cog",
            "--overview-resampling",
            "Nearest",
            "--compress",
            "zstd",
            "--chunks",
            "256",
        ],
        "x.tif",
    );
    let report = succeeded(d, &args);
    assert!(report.contains("nearest overviews"), "{report}");
    assert_valid_cog(&d.join("x.tif"), 3);
    let ds = Dataset::open(d.join("x.tif")).expect("open");
    assert_eq!(
        ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref(),
        Some("ZSTD")
    );
    assert_eq!(ds.rasterband(1).unwrap().block_size(), (256, 256));
    // nearest keeps values: every level-1 pixel is one of the four under it
    let full = read_level(&d.join("x.tif"), 1, 0);
    let ov = read_level(&d.join("x.tif"), 1, 1);
    assert_each_from_footprint(&full, &ov, false, "nearest ndi");
    assert_eq!(debris(d), Vec::<String>::new());
}

#[test]
fn a_bad_overview_resampling_is_a_typed_error_naming_the_allowed_values() {
    let err = "lanczos".parse::<OverviewResampling>().unwrap_err();
    match &err {
        Error::Invalid { what, reason } => {
            assert_eq!(*what, "overview resampling");
            assert!(
                reason.contains("\"lanczos\"")
                    && reason.contains("nearest, average, bilinear, cubic, mode"),
                "{reason}"
            );
        }
        other => panic!("not Error::Invalid: {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scene = scene();
    for cmd in ["ndi", "cluster"] {
        let args: Vec<&str> = if cmd == "ndi" {
            ndi_args(
                &scene,
                &["--cog", "--overview-resampling", "lanczos"],
                "x.tif",
            )
        } else {
            vec![
                "cluster",
                &scene,
                "--k",
                "3",
                "--cog",
                "--overview-resampling",
                "lanczos",
                "-o",
                "x.tif",
            ]
        };
        let start = Instant::now();
        let out = run_in(d, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            "error: invalid overview resampling: \"lanczos\"; choose one of nearest, average, \
             bilinear, cubic, mode",
            "{cmd}"
        );
        // refused before any work
        assert!(start.elapsed() < Duration::from_secs(2), "{cmd}");
        assert!(entries(d).is_empty(), "{cmd}: {:?}", entries(d));
    }
    // a resampling without --cog is a usage error (clap's status 2)
    let out = run_in(
        d,
        &ndi_args(&scene, &["--overview-resampling", "mode"], "x.tif"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--cog"), "{}", text(&out.stderr));
    assert!(entries(d).is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. The library: Save, LabelMap, write_labels

#[test]
fn save_cog_on_a_lazy_array_single_and_multi_band() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scene = Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("scene");
    let out = d.join("ndi.tif");
    let report = scene
        .norm_diff("green", "red")
        .expect("ndi")
        .nodata(0.0)
        .save(&out)
        .cog(OverviewResampling::Bilinear)
        .chunks(256)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save");
    assert_eq!(
        report.layout,
        Layout::Cog {
            resampling: OverviewResampling::Bilinear
        }
    );
    assert!(
        report.to_string().contains("bilinear overviews"),
        "{report}"
    );
    assert_eq!(report.file_bytes, std::fs::metadata(&out).unwrap().len());
    assert_valid_cog(&out, 3);

    // two bands (mean and max over a time stack), UInt16 with a nodata value
    let tiffs: Vec<PathBuf> = [
        "data/rgbn_20160101.tif",
        "data/rgbn_20160401.tif",
        "data/rgbn_20160517.tif",
    ]
    .iter()
    .map(|p| data(p))
    .collect();
    let stack = Raster::open_stack(&tiffs, Stack::Time).expect("stack");
    let out2 = d.join("stats.tif");
    let plain = d.join("stats-plain.tif");
    let stats = stack
        .band("band1")
        .expect("band")
        .reduce(&[Stat::Mean, Stat::Max]);
    let save = |path: &Path, layout: Layout| {
        stats
            .clone()
            .cast(OutputType::UInt16)
            .fill_nodata(65535.0)
            .save(path)
            .layout(layout)
            .chunks(128)
            .progress(ProgressMode::Silent)
            .run()
            .expect("save stats")
    };
    save(&out2, Layout::cog(OverviewResampling::Average));
    save(&plain, Layout::Tiled);
    // 515 x 403 in 128-pixel tiles: 258 x 202, 129 x 101, 65 x 51
    assert_valid_cog(&out2, 3);
    for b in [1, 2] {
        assert_same_pixels(&read_level(&out2, b, 0), &read_level(&plain, b, 0), "stats");
    }
    let ds = Dataset::open(&out2).expect("open");
    assert_eq!(ds.raster_count(), 2);
    assert_eq!(ds.rasterband(2).unwrap().no_data_value(), Some(65535.0));
    assert_eq!(debris(d), Vec::<String>::new());
}

/// Every pixel of `ov` (a half-size overview of `full`) is one of the values of its
/// footprint, the pixels of `full` it covers (`full` size / `ov` size of them across: a
/// bit less than 2 on odd sizes, so three pixels wide at places); with `mode`, nodata
/// (-1 or NaN) only where the whole footprint is nodata.
fn assert_each_from_footprint(
    full: &(usize, usize, Vec<f32>),
    ov: &(usize, usize, Vec<f32>),
    mode: bool,
    what: &str,
) {
    let bad = off_footprint(full, ov, mode);
    assert!(
        bad.is_empty(),
        "{what}: {} pixels, e.g. {}",
        bad.len(),
        bad[0]
    );
}

/// The pixels of `ov` that break [`assert_each_from_footprint`]'s rule, described.
fn off_footprint(
    full: &(usize, usize, Vec<f32>),
    ov: &(usize, usize, Vec<f32>),
    mode: bool,
) -> Vec<String> {
    let (w, h, px) = full;
    let (ow, oh, opx) = ov;
    assert_eq!((*ow, *oh), (w.div_ceil(2), h.div_ceil(2)), "overview size");
    let nodata = |v: f32| v.is_nan() || v == -1.0;
    let mut bad = Vec::new();
    for oy in 0..*oh {
        for ox in 0..*ow {
            let v = opx[oy * ow + ox];
            let mut footprint = Vec::new();
            for y in oy * h / oh..((oy + 1) * h).div_ceil(*oh) {
                for x in ox * w / ow..((ox + 1) * w).div_ceil(*ow) {
                    footprint.push(px[y * w + x]);
                }
            }
            if !footprint.iter().any(|u| u.to_bits() == v.to_bits()) {
                bad.push(format!("({ox}, {oy}) = {v}, not in {footprint:?}"));
            } else if mode && nodata(v) && !footprint.iter().all(|&u| nodata(u)) {
                bad.push(format!("({ox}, {oy}) is nodata over {footprint:?}"));
            }
        }
    }
    bad
}

/// Checks the label-map COG at `path`: valid, labels `0..k` or -1 at every level, each
/// overview pixel one of the labels under it (level 1 against full resolution, each
/// further level against the one before).
fn assert_label_cog(path: &Path, k: usize, mode: bool) {
    let levels = overview_count(path);
    assert!(levels >= 1, "{}: no overviews", path.display());
    assert_valid_cog(path, levels);
    let mut below = read_level(path, 1, 0);
    for level in 1..=levels {
        let ov = read_level(path, 1, level);
        for &v in &ov.2 {
            assert!(
                v == -1.0 || (v >= 0.0 && v < k as f32 && v.fract() == 0.0),
                "{}: level {level} holds {v}",
                path.display()
            );
        }
        assert_each_from_footprint(&below, &ov, mode, &format!("level {level}"));
        below = ov;
    }
}

fn small_scene(dir: &Path) -> Raster {
    let path = dir.join("crop.tif");
    // the north-west corner: a quarter of it is outside the scene (nodata)
    crop(&path, 0, 0, 700, 600);
    Raster::open(&path).expect("crop").with_nodata(Some(0.0))
}

#[test]
fn label_maps_are_written_as_cogs_with_label_preserving_overviews() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let raster = small_scene(d);
    let x = raster.to_samples().expect("samples");
    let k = 5;
    let km = KMeans::new(k)
        .seed(1)
        .max_iter(10)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .expect("fit");
    let map = x.unstack(km.labels()).expect("map");
    assert!(map.nodata_count() > 0, "the crop should hold nodata");
    for (name, r, mode) in [
        ("mode.tif", OverviewResampling::LABELS, true),
        ("nearest.tif", OverviewResampling::Nearest, false),
    ] {
        let path = map
            .save_with_layout(d.join(name), Compression::Deflate, Layout::cog(r))
            .expect("save");
        assert_label_cog(&path, k, mode);
        let full = read_level(&path, 1, 0);
        let labels: Vec<f32> = map.labels().iter().map(|&l| l as f32).collect();
        assert!(
            full.2 == labels,
            "{name}: full resolution differs from the map"
        );
    }
    // the check above has teeth: averaged labels fail it
    let avg = map
        .save_with_layout(
            d.join("avg.tif"),
            Compression::Lzw,
            Layout::cog(OverviewResampling::Average),
        )
        .expect("save");
    let full = read_level(&avg, 1, 0);
    let ov = read_level(&avg, 1, 1);
    assert!(
        off_footprint(&full, &ov, false).len() > 1000,
        "average overviews kept the labels"
    );

    // write_labels streams the same labels into a COG
    for (name, r, mode) in [
        ("wl-mode.tif", OverviewResampling::LABELS, true),
        ("wl-nearest.tif", OverviewResampling::Nearest, false),
    ] {
        let path = km
            .write_labels(&raster, &["band1", "band2", "band3"], d.join(name))
            .cog(r)
            .progress(ProgressMode::Silent)
            .run()
            .expect("write_labels");
        assert_label_cog(&path, k, mode);
        // nodata exactly where the in-memory map has none
        let full = read_level(&path, 1, 0);
        let nodata: Vec<bool> = full.2.iter().map(|&v| v == -1.0).collect();
        let expected: Vec<bool> = map.labels().iter().map(|&l| l < 0).collect();
        assert!(
            nodata == expected,
            "{name}: nodata differs from the in-memory map"
        );
    }
    assert_eq!(debris(d), Vec::<String>::new());
}

#[test]
fn cli_cluster_cog_defaults_to_label_preserving_overviews() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    crop(&d.join("crop.tif"), 0, 0, 700, 600);
    for (extra, mode) in [(None, true), (Some("nearest"), false)] {
        let mut args = vec![
            "cluster",
            "crop.tif",
            "--nodata",
            "0",
            "--k",
            "4",
            "--max-iter",
            "5",
            "--quiet",
            "--cog",
            "-o",
            "labels.tif",
        ];
        if let Some(r) = extra {
            args.extend(["--overview-resampling", r]);
        }
        let report = succeeded(d, &args);
        let expect = if mode { "mode" } else { "nearest" };
        assert!(
            report.contains(&format!("layout:     cloud-optimized, {expect} overviews")),
            "{report}"
        );
        assert_label_cog(&d.join("labels.tif"), 4, mode);
    }
    assert_eq!(debris(d), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// 3. A full disk at every step of a COG write

/// Runs `args` in `base`. On failure, checks the refusal (status 1, one line naming the
/// output and "No space left on device", no debris, every file of `mnt` as it was) and
/// returns the step that failed ("building average overviews"); `None` on success.
fn run_full(base: &Path, mnt: &Path, args: &[&str]) -> Option<String> {
    let before = snapshot(mnt);
    let out = run_in(base, args);
    if out.status.success() {
        return None;
    }
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    for needle in [
        "error: could not write full/k.tif: ",
        "No space left on device",
        "nothing was written under that name",
    ] {
        assert!(line.contains(needle), "no {needle:?} in {line}");
    }
    assert!(out.stdout.is_empty());
    assert_eq!(debris(mnt), Vec::<String>::new(), "{line}");
    assert_same(&before, &snapshot(mnt), line);
    let step = line
        .split_once("full/k.tif: ")
        .and_then(|(_, rest)| rest.split_once(" failed"))
        .map(|(step, _)| step.to_string())
        .unwrap_or_else(|| panic!("no failed step in {line}"));
    Some(step)
}

#[test]
fn a_full_disk_at_any_point_of_a_cog_write_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("a_full_disk_at_any_point_of_a_cog_write_fails_cleanly") else {
        return;
    };
    let (base, mnt) = (fs.base.path(), fs.mnt.as_path());
    // a previous output and a 300 x 300 crop; its ndi in 128-pixel tiles has two
    // overview levels (150 and 75 pixels)
    crop(&mnt.join("k.tif"), 900, 800, 16, 16);
    crop(&base.join("crop.tif"), 800, 700, 300, 300);
    let args = ndi_args("crop.tif", &["--cog", "--chunks", "128"], "full/k.tif");
    // From a full disk up, 24 KiB more free space each run, until the write succeeds:
    // every failure is clean, and the disk fills up in each step of the COG write.
    let mut steps: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut free = 0u64;
    let succeeded_with = loop {
        assert!(free < 2 << 20, "never succeeded; failed in {steps:?}");
        fs.unfill();
        fs.fill_but(free);
        match run_full(base, mnt, &args) {
            Some(step) => {
                if !steps.contains(&step) {
                    eprintln!("{free} bytes free: {step} failed");
                    seen.push(format!("{free}: {step}"));
                    steps.push(step);
                }
            }
            None => break free,
        }
        free += 24 << 10;
    };
    eprintln!("{succeeded_with} bytes free: written");
    seen.push(format!("{succeeded_with}: written"));
    assert_eq!(
        steps.last().map(String::as_str),
        Some("writing the cloud-optimized file"),
        "{seen:?}"
    );
    assert!(
        steps.iter().any(|s| s == "building average overviews"),
        "{steps:?}"
    );
    // and before those, writing the tiled file itself (its tiles or its close)
    assert!(
        steps[0].starts_with("writing") || steps[0].starts_with("closing"),
        "{steps:?}"
    );
    fs.unfill();
    assert_valid_cog(&mnt.join("k.tif"), 2);
    assert_eq!(debris(mnt), Vec::<String>::new());
}

#[test]
fn the_library_returns_a_write_error_when_the_cog_copy_does_not_fit() {
    let Some(fs) = Tmpfs::mount("the_library_returns_a_write_error_when_the_cog_copy_does_not_fit")
    else {
        return;
    };
    let (base, mnt) = (fs.base.path(), fs.mnt.as_path());
    crop(&base.join("crop.tif"), 800, 700, 300, 300);
    let r = Raster::open(base.join("crop.tif"))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("crop");
    let out = mnt.join("ndi.tif");
    std::fs::write(&out, b"previous").expect("previous");
    let save = || {
        r.norm_diff("green", "red")
            .expect("ndi")
            .nodata(0.0)
            .save(&out)
            .cog(OverviewResampling::Average)
            .chunks(128)
            .progress(ProgressMode::Silent)
            .run()
    };
    // measure, then leave room for the tiled file with its overviews (about as large as
    // the COG) and half the COG copy
    let cog = save().expect("first save fits").file_bytes;
    std::fs::write(&out, b"previous").expect("previous");
    fs.fill_but(cog * 3 / 2);
    let before = snapshot(mnt);
    match save().unwrap_err() {
        Error::Write { path, cause } => {
            assert_eq!(path, out);
            assert!(cause.contains("No space left on device"), "{cause}");
            assert!(
                cause.starts_with("writing the cloud-optimized file failed"),
                "{cause}"
            );
        }
        other => panic!("not a write error: {other}"),
    }
    assert_same(&before, &snapshot(mnt), "Save::run");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

// ---------------------------------------------------------------------------------------
// 4. Signals during a COG save

/// Starts `product mosaic.vrt --cog` into `p.tif` and waits until `ready` says so of the
/// names of its temporary files (at most 60 s).
fn start_cog_save(dir: &Path, ready: impl Fn(&[String]) -> bool) -> Child {
    let mut child = Command::new(EXE)
        .args([
            "product",
            "mosaic.vrt",
            "--threads",
            "1",
            "--chunks",
            "256",
            "--cog",
            "--quiet",
            "-o",
            "p.tif",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        let temps: Vec<String> = debris(dir)
            .into_iter()
            .filter(|n| n.starts_with(".p.tif.rasterlab-") && n.ends_with(".tmp"))
            .collect();
        if ready(&temps) {
            return child;
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "the COG save did not reach the awaited step: {:?} {:?}\n{}",
                entries(dir),
                out.status,
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a save must have reached, judged by the names of its temporary files.
type Ready = fn(&[String]) -> bool;

/// The COG rewrite is under way: the tiled file and the COG copy both exist.
fn in_cog_copy(temps: &[String]) -> bool {
    temps.len() == 2
}

#[test]
fn sigint_stops_a_cog_save_in_every_phase_and_leaves_nothing() {
    let dir = signal_folder();
    let d = dir.path();
    // while the chunks are written, then while the COG copy is written
    let phases: [(&str, Ready); 2] = [
        ("chunks", |t: &[String]| t.len() == 1),
        ("cog copy", in_cog_copy),
    ];
    for (phase, ready) in phases {
        let before = snapshot(d);
        let child = start_cog_save(d, ready);
        let (out, took) = signal_and_wait(child, "INT");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{phase}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            "error: cancelled: interrupted by SIGINT",
            "{phase}"
        );
        // stopped by the cancel token, well within the CLI's 3 s grace period
        assert!(took < Duration::from_secs(2), "{phase}: took {took:?}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert_eq!(debris(d), Vec::<String>::new(), "{phase}");
        assert_same(&before, &snapshot(d), phase);
    }
}

#[test]
fn sigkill_in_the_cog_copy_leaves_only_debris_the_next_run_removes() {
    use std::os::unix::process::ExitStatusExt;
    let dir = signal_folder();
    let d = dir.path();
    let p_before = std::fs::read(d.join("p.tif")).expect("p.tif");
    let child = start_cog_save(d, in_cog_copy);
    let (out, _) = signal_and_wait(child, "KILL");
    assert_eq!(out.status.signal(), Some(9));
    // the tiled file and the COG copy, both under rasterlab's temporary names: nothing
    // of GDAL's own (no .ovr.tmp)
    let left = debris(d);
    assert_eq!(left.len(), 2, "{:?}", entries(d));
    assert!(
        left.iter()
            .all(|n| n.starts_with(".p.tif.rasterlab-") && n.ends_with(".tmp")),
        "{left:?}"
    );
    assert_eq!(std::fs::read(d.join("p.tif")).unwrap(), p_before);
    // the next run into the folder removes them
    succeeded(d, &ndi_args("small.tif", &["--cog"], "q.tif"));
    assert_eq!(debris(d), Vec::<String>::new(), "{:?}", entries(d));
}
