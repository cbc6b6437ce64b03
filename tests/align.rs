//! Stacks on different grids, aligned on open, against `gdalwarp` run on the same inputs
//! onto the same grid with the same resampling: the bundled Landsat bands with a copy of
//! one band at 60 m and one in another UTM zone (both made by `gdalwarp` here), a time
//! stack of differently gridded files reduced weekly, plans through JSON, the CLI flags
//! and the arguments that cannot work.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{EXE, text};
use common::cube;
use common::{B2, B3, B4, data};
use gdal::Dataset;
use rasterlab::prelude::*;
use rasterlab::raster::align::Reference;

/// Runs `gdalwarp -q -overwrite ARGS src dst` (the independent reference).
fn gdalwarp(args: &[&str], src: &Path, dst: &Path) {
    let out = Command::new("gdalwarp")
        .args(["-q", "-overwrite"])
        .args(args)
        .arg(src)
        .arg(dst)
        .output()
        .expect("run gdalwarp");
    assert!(
        out.status.success(),
        "gdalwarp {args:?}: {}",
        text(&out.stderr)
    );
}

/// Band `band` of a file as f64, with its size.
fn read_f64(path: &Path, band: usize) -> (usize, usize, Vec<f64>) {
    let ds = Dataset::open(path).expect("open reference");
    let rb = ds.rasterband(band).expect("band");
    let (w, h) = rb.size();
    let buf = rb
        .read_as::<f64>((0, 0), (w, h), (w, h), None)
        .expect("read");
    (w, h, buf.data().to_vec())
}

fn grid_of(path: &Path) -> ((usize, usize), [f64; 6]) {
    let ds = Dataset::open(path).expect("open");
    (ds.raster_size(), ds.geo_transform().expect("gt"))
}

/// `-te xmin ymin xmax ymax -tr dx dy` of a raster's grid, as gdalwarp takes them.
fn te_tr(r: &Raster) -> Vec<String> {
    let (xmin, ymin, xmax, ymax) = r.bounds();
    let gt = r.geo_transform();
    [xmin, ymin, xmax, ymax, gt[1], gt[5].abs()]
        .iter()
        .map(|v| v.to_string())
        .collect()
}

/// The two copies of the red band on other grids, made by gdalwarp: 60 m (average) and
/// UTM zone 22 (the scene is in zone 21).
fn copies(dir: &Path) -> (PathBuf, PathBuf) {
    let coarse = dir.join("B4_60m.tif");
    let zone22 = dir.join("B4_utm22.tif");
    gdalwarp(&["-tr", "60", "60", "-r", "average"], &data(B4), &coarse);
    gdalwarp(
        &["-t_srs", "EPSG:32622", "-r", "bilinear"],
        &data(B4),
        &zone22,
    );
    (coarse, zone22)
}

/// Asserts that `got` (raster band values) equals `expected` within `tol`, reporting the
/// first difference and how many differ.
fn assert_close(got: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: sizes");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| (got[i] - expected[i]).abs() > tol)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} pixels differ by more than {tol}; first at {}: {} vs gdalwarp {}",
        bad.len(),
        got.len(),
        bad[0],
        got[bad[0]],
        expected[bad[0]]
    );
}

#[test]
fn landsat_bands_with_60m_and_other_zone_copies_equal_gdalwarp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, zone22) = copies(dir.path());
    let files = [data(B2), data(B3), coarse.clone(), zone22.clone()];
    // Both round to UInt16; bilinear and cubic may differ by that rounding's last unit
    // (with GDAL 3.6 they are equal, pixel for pixel, as nearest is).
    for (method, tol) in [
        (Resampling::Nearest, 0.0),
        (Resampling::Bilinear, 1.0),
        (Resampling::Cubic, 1.0),
    ] {
        let r = Raster::open_stack_aligned(&files, Stack::Band, &Align::first().resampling(method))
            .expect("aligned stack")
            .with_band_names(["blue", "green", "red60", "red22"])
            .expect("names");
        assert_eq!(r.size(), (2041, 1860), "{method}: the first file's grid");
        assert_eq!(r.epsg(), Some(32621));
        let a = r.alignment().expect("alignment");
        assert_eq!(a.warped(), &[coarse.clone(), zone22.clone()], "{method}");
        assert_eq!(a.resampling(), method);
        // Chunked reads (several workers, chunks not aligned to GDAL's warp blocks).
        let got = r
            .band("red60")
            .unwrap()
            .chunks(300)
            .unwrap()
            .compute()
            .expect("compute");
        let got22 = r
            .band("red22")
            .unwrap()
            .chunks(300)
            .unwrap()
            .compute()
            .unwrap();
        let green = r.band("green").unwrap().compute().unwrap();
        let mut tr = vec!["-t_srs".to_string(), "EPSG:32621".into(), "-te".into()];
        let g = te_tr(&r);
        tr.extend(g[..4].iter().cloned());
        tr.push("-tr".into());
        tr.extend(g[4..].iter().cloned());
        tr.extend(["-r".into(), method.name().into(), "-et".into(), "0".into()]);
        for (src, values, name) in [(&coarse, &got, "60 m"), (&zone22, &got22, "zone 22")] {
            // The kernel's scale fixed to the ratio of pixel sizes, as rasterlab fixes it
            // (GDAL would derive it from each processing window; see the README).
            let (_, gt) = grid_of(src);
            let mut args: Vec<String> = tr.clone();
            args.extend([
                "-wo".into(),
                format!("XSCALE={}", gt[1] / 30.0),
                "-wo".into(),
                format!("YSCALE={}", gt[5].abs() / 30.0),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let reference = dir.path().join(format!("ref_{method}_{}.tif", name.len()));
            gdalwarp(&args, src, &reference);
            let (w, h, expected) = read_f64(&reference, 1);
            assert_eq!((w, h), (2041, 1860));
            let got: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            assert_close(&got, &expected, tol, &format!("{method}, {name}"));
        }
        // Members on the grid are read as they are.
        let (_, _, b3) = read_f64(&data(B3), 1);
        let green: Vec<f64> = green.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(green, b3, "{method}: the unwarped member");
    }
}

/// `-wo XSCALE=.. -wo YSCALE=..` for a source onto a grid of `res` units, from the
/// source's pixel size (see the README: rasterlab fixes the kernel's scale so).
fn scale_args(src: &Path, res: f64) -> Vec<String> {
    let (_, gt) = grid_of(src);
    vec![
        "-wo".into(),
        format!("XSCALE={}", gt[1] / res),
        "-wo".into(),
        format!("YSCALE={}", gt[5].abs() / res),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The generated time cube (40 dates, 10 m, EPSG:32633, nodata -9999) with a third of
/// its files at 5 m and a third in UTM zone 34 (made by gdalwarp), and the same files
/// pre-warped by gdalwarp onto the cube's grid with bilinear resampling. Returns
/// (mixed files, pre-warped files, a file on the cube's grid).
fn mixed_cube(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>, PathBuf) {
    let original = dir.join("original");
    let mixed = dir.join("mixed");
    let warped = dir.join("prewarped");
    for d in [&original, &mixed, &warped] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let files = cube::write_tiffs(&original);
    let (xmin, ymax) = (cube::GT[0], cube::GT[3]);
    let (xmax, ymin) = (xmin + 10.0 * cube::W as f64, ymax - 10.0 * cube::H as f64);
    let onto: Vec<String> = [
        "-t_srs",
        "EPSG:32633",
        "-te",
        &xmin.to_string(),
        &ymin.to_string(),
        &xmax.to_string(),
        &ymax.to_string(),
        "-tr",
        "10",
        "10",
        "-r",
        "bilinear",
        "-et",
        "0",
    ]
    .map(String::from)
    .to_vec();
    let mut mixed_files = Vec::new();
    let mut prewarped = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let name = f.file_name().expect("name");
        let (m, w) = (mixed.join(name), warped.join(name));
        match k % 3 {
            0 => {
                std::fs::copy(f, &m).expect("copy");
                std::fs::copy(f, &w).expect("copy");
            }
            other => {
                let how: &[&str] = if other == 1 {
                    &["-tr", "5", "5"]
                } else {
                    &["-t_srs", "EPSG:32634"]
                };
                gdalwarp(how, f, &m);
                let mut args = onto.clone();
                args.extend(scale_args(&m, 10.0));
                gdalwarp(&strs(&args), &m, &w);
            }
        }
        mixed_files.push(m);
        prewarped.push(w);
    }
    (mixed_files, prewarped, files[0].clone())
}

fn weekly_std(r: &Raster) -> Vec<f32> {
    let name = r.band_names()[0].to_string();
    r.band(&name)
        .unwrap()
        .resample(Period::Week)
        .mean()
        .std()
        .progress(ProgressMode::Silent)
        .compute()
        .expect("weekly std")
        .iter()
        .copied()
        .collect()
}

fn assert_same_f32(got: &[f32], expected: &[f32], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(g.is_nan(), "{what}: pixel {i}: {g}, expected nodata");
        } else {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{what}: pixel {i}: {g}, expected {e}"
            );
        }
    }
}

#[test]
fn weekly_reduction_of_a_differently_gridded_time_stack_equals_prewarped_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mixed, prewarped, on_grid) = mixed_cube(dir.path());
    // Without alignment the stack is refused, and the error says how to align it.
    let err = Raster::open_stack(&mixed, Stack::Time).unwrap_err();
    assert!(
        matches!(err, Error::StackMismatch { .. }) && err.to_string().contains("--align-to"),
        "{err}"
    );
    let aligned = Raster::open_stack_aligned(
        &mixed,
        Stack::Time,
        &Align::like(&on_grid).resampling(Resampling::Bilinear),
    )
    .expect("aligned time stack");
    assert_eq!(aligned.n_times(), 40);
    assert_eq!(aligned.geo_transform(), cube::GT);
    let warped = aligned.alignment().expect("alignment").warped().len();
    assert_eq!(warped, 26, "two files in three are on other grids");
    let reference = Raster::open_stack(&prewarped, Stack::Time).expect("prewarped stack");
    assert_same_f32(
        &weekly_std(&aligned),
        &weekly_std(&reference),
        "weekly mean then std",
    );
    // The glob form gives the same stack.
    let pattern = format!("{}/cube_*.tif", dir.path().join("mixed").display());
    let globbed = Raster::open_glob_aligned(
        &pattern,
        None,
        &Align::like(&on_grid).resampling(Resampling::Bilinear),
    )
    .expect("glob");
    assert_eq!(globbed.times(), aligned.times());
    assert_eq!(globbed.bands().len(), aligned.bands().len());
}

#[test]
fn a_grid_given_by_res_crs_and_bounds_is_gdalwarps_grid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, zone22) = copies(dir.path());
    // 60 m in the first file's CRS and extent, averaged: gdalwarp -tr 60 60.
    let r = Raster::open_stack_aligned(
        [data(B2), data(B4)],
        Stack::Band,
        &Align::grid().res(60.0).resampling(Resampling::Average),
    )
    .expect("60 m");
    let reference = dir.path().join("ref60.tif");
    let mut args: Vec<String> = ["-tr", "60", "60", "-r", "average", "-et", "0"]
        .map(String::from)
        .to_vec();
    args.extend(scale_args(&data(B4), 60.0));
    gdalwarp(&strs(&args), &data(B4), &reference);
    let (size, gt) = grid_of(&reference);
    assert_eq!(r.size(), size);
    assert_eq!(r.geo_transform(), gt);
    let (_, _, expected) = read_f64(&reference, 1);
    let got = r.read_raw::<u16>(Window::new(0, 0, size.0, size.1), &["band1_2"]);
    let got: Vec<f64> = got.expect("read").iter().map(|&v| f64::from(v)).collect();
    assert_close(&got, &expected, 0.0, "average onto 60 m");
    // A CRS, resolution and bounds of zone 22: the scene's band onto the copy's zone.
    let bounds = (112_200.0, -2_833_000.0, 150_000.0, -2_800_000.0);
    let r = Raster::open_stack_aligned(
        [data(B3), zone22.clone()],
        Stack::Band,
        &Align::grid()
            .crs("EPSG:32622")
            .res(30.0)
            .bounds(bounds.0, bounds.1, bounds.2, bounds.3),
    )
    .expect("zone 22 grid");
    assert_eq!(r.epsg(), Some(32622));
    let reference = dir.path().join("ref22.tif");
    let te = [bounds.0, bounds.1, bounds.2, bounds.3].map(|v| v.to_string());
    let mut args: Vec<String> = vec!["-t_srs".into(), "EPSG:32622".into(), "-te".into()];
    args.extend(te);
    args.extend(["-tr", "30", "30", "-et", "0"].map(String::from));
    args.extend(scale_args(&data(B3), 30.0));
    gdalwarp(&strs(&args), &data(B3), &reference);
    let (size, gt) = grid_of(&reference);
    assert_eq!((r.size(), r.geo_transform()), (size, gt));
    let (_, _, expected) = read_f64(&reference, 1);
    let got = r.read_raw::<u16>(Window::new(0, 0, size.0, size.1), &["band1"]);
    let got: Vec<f64> = got.expect("read").iter().map(|&v| f64::from(v)).collect();
    assert_close(&got, &expected, 0.0, "B3 onto zone 22, nearest");
    assert_eq!(r.alignment().unwrap().warped().len(), 2);
}

#[test]
fn nodata_is_carried_through_the_warp() {
    // The cube's files have nodata -9999; a 5 m copy warped back must keep every
    // nodata pixel of the source as nodata (nearest), and the pixels outside the copy's
    // extent are nodata too.
    let dir = tempfile::tempdir().expect("tempdir");
    let files = cube::write_tiffs(dir.path());
    let fine = dir.path().join("fine_20200101.tif");
    // A copy of the first date cut to the western half, at 5 m.
    let half_x = cube::GT[0] + 80.0;
    let te = [cube::GT[0], cube::GT[3] - 230.0, half_x, cube::GT[3]].map(|v| v.to_string());
    let mut args = vec!["-tr", "5", "5", "-te"];
    args.extend(te.iter().map(String::as_str));
    let first = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with("cube_20200101.tif"))
        .expect("first date");
    gdalwarp(&args, first, &fine);
    let r = Raster::open_stack_aligned([first.clone(), fine], Stack::Band, &Align::like(first))
        .expect("aligned");
    let a = r
        .read(Window::new(0, 0, cube::W, cube::H), &["band1"])
        .unwrap();
    let b = r
        .read(Window::new(0, 0, cube::W, cube::H), &["band1_2"])
        .unwrap();
    for y in 0..cube::H {
        for x in 0..cube::W {
            let (va, vb) = (a[[0, y, x]], b[[0, y, x]]);
            if x < 8 {
                assert!(
                    va == vb || (va.is_nan() && vb.is_nan()),
                    "({y},{x}): {va} vs {vb}"
                );
            } else {
                assert!(vb.is_nan(), "({y},{x}) outside the copy: {vb}");
            }
        }
    }
    assert_eq!(r.bands()[1].nodata, Some(cube::NODATA));
}

#[test]
fn an_aligned_plan_round_trips_through_json_to_a_byte_identical_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, zone22) = copies(dir.path());
    let r = Raster::open_stack_aligned(
        [data(B3), coarse, zone22],
        Stack::Band,
        &Align::first().resampling(Resampling::Cubic),
    )
    .unwrap()
    .with_band_names(["green", "red60", "red22"])
    .unwrap()
    .with_nodata(Some(0.0));
    let ndi = r.norm_diff("green", "red60").unwrap() + r.band("red22").unwrap();
    let text = ndi.to_json().expect("to_json");
    assert!(
        text.contains("\"alignment\"") && text.contains("\"cubic\""),
        "{text}"
    );
    let back = LazyArray::from_json(&text).expect("from_json");
    assert!(back == ndi, "the plan read back equals the plan");
    assert_eq!(back.to_json().unwrap(), text);
    // One thread: the tiles are written in one order, so the files can be compared
    // byte for byte (as tests/plan.rs does).
    let (a, b) = (dir.path().join("a.tif"), dir.path().join("b.tif"));
    for (plan, out) in [(&ndi, &a), (&back, &b)] {
        plan.save(out)
            .chunks(256)
            .threads(1)
            .progress(ProgressMode::Silent)
            .run()
            .expect("save");
    }
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "byte-identical outputs"
    );
    // Two threads and other chunks (not aligned to GDAL's 512 x 128 warp blocks): the
    // same pixels, bit for bit; the warp does not depend on how the grid is cut.
    let c = dir.path().join("c.tif");
    back.save(&c)
        .chunks(300)
        .threads(2)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save");
    let (_, _, va) = read_f64(&a, 1);
    let (_, _, vc) = read_f64(&c, 1);
    let differ = (0..va.len())
        .filter(|&i| va[i].to_bits() != vc[i].to_bits())
        .count();
    assert_eq!(
        differ, 0,
        "pixels that differ with other chunks and threads"
    );
    // A plan without alignment has no such field: plans of before read as they did.
    let plain = Raster::open(data(B3)).unwrap().band("band1").unwrap();
    assert!(!plain.to_json().unwrap().contains("alignment"));
}

#[test]
fn the_repr_shows_the_reference_grid_and_the_warped_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, _) = copies(dir.path());
    let r = Raster::open_stack_aligned(
        [data(B3), coarse.clone()],
        Stack::Band,
        &Align::like(data(B4)).resampling(Resampling::Bilinear),
    )
    .unwrap();
    let text = r.to_string();
    assert!(text.contains("aligned: onto the grid of"), "{text}");
    assert!(text.contains("(bilinear)"), "{text}");
    assert!(
        text.contains(&format!("warped:  {}", coarse.display())),
        "{text}"
    );
    let html = r.to_html();
    assert!(
        html.contains("aligned") && html.contains("(warped)"),
        "{html}"
    );
    assert_eq!(html.matches("(warped)").count(), 1, "only the 60 m copy");
    // Automatic chunks are whole warp blocks (GDAL's 512 x 128) as well as whole blocks
    // of the files read as they are (256 x 256), so no block is warped twice.
    let plan = PoolPlan::detect().unwrap();
    let (cw, ch) = r.chunk_grid(&plan, 4).unwrap().chunk_size();
    assert!(cw % 512 == 0 || cw == 2041, "{cw} x {ch}");
    assert!(ch % 256 == 0 || ch == 1860, "{cw} x {ch}");
}

#[test]
fn alignment_arguments_that_cannot_work_are_typed_errors() {
    let files = [data(B3), data(B4)];
    let cases: [(Align, &str); 6] = [
        (Align::grid().crs("EPSG:999999"), "crs"),
        (Align::grid().crs("not a crs"), "crs"),
        (Align::grid().res(0.0), "resolution"),
        (Align::grid().res_xy(30.0, -30.0), "resolution"),
        (Align::grid().bounds(10.0, 0.0, 10.0, 5.0), "bounds"),
        (Align::grid().bounds(0.0, 0.0, f64::NAN, 5.0), "bounds"),
    ];
    for (align, what) in cases {
        match Raster::open_stack_aligned(&files, Stack::Band, &align) {
            Err(Error::Invalid { what: w, reason }) => assert_eq!(w, what, "{reason}"),
            other => panic!("{align:?}: expected an invalid {what}, got {other:?}"),
        }
    }
    assert!(matches!(
        "lanczos".parse::<Resampling>(),
        Err(Error::Invalid {
            what: "resampling",
            ..
        })
    ));
    // A reference raster that does not exist is the usual error.
    let err = Raster::open_stack_aligned(&files, Stack::Band, &Align::like("nope.tif"));
    assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
    let _ = Reference::First;
}

/// Runs the CLI in `dir`; returns (success, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(EXE)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rasterlab");
    (out.status.success(), text(&out.stderr))
}

#[test]
fn cli_flags_align_stacks_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, _) = copies(dir.path());
    let (b3, coarse_s) = (
        data(B3).to_string_lossy().into_owned(),
        coarse.to_string_lossy().into_owned(),
    );
    let bands = format!("{b3},{coarse_s}");
    // Without alignment: refused, naming the option.
    let (ok, err) = cli(dir.path(), &["ndi", "--bands", &bands, "-o", "x.tif"]);
    assert!(!ok && err.contains("--align-to"), "{err}");
    // ndi with --align-to and bilinear against ndi of a copy pre-warped by gdalwarp.
    let (ok, err) = cli(
        dir.path(),
        &[
            "ndi",
            "--bands",
            &bands,
            "--align-to",
            &b3,
            "--resampling",
            "bilinear",
            "--nodata",
            "0",
            "--quiet",
            "-o",
            "aligned.tif",
        ],
    );
    assert!(ok, "{err}");
    let prewarped = dir.path().join("prewarped.tif");
    let mut args: Vec<String> = [
        "-te",
        "717345",
        "-2832795",
        "778575",
        "-2776995",
        "-tr",
        "30",
        "30",
        "-r",
        "bilinear",
        "-et",
        "0",
        "-srcnodata",
        "0",
        "-dstnodata",
        "0",
    ]
    .map(String::from)
    .to_vec();
    args.extend(scale_args(&coarse, 30.0));
    gdalwarp(&strs(&args), &coarse, &prewarped);
    let bands_ref = format!("{b3},{}", prewarped.display());
    let (ok, err) = cli(
        dir.path(),
        &[
            "ndi",
            "--bands",
            &bands_ref,
            "--nodata",
            "0",
            "--quiet",
            "-o",
            "reference.tif",
        ],
    );
    assert!(ok, "{err}");
    let (_, _, got) = read_f64(&dir.path().join("aligned.tif"), 1);
    let (_, _, expected) = read_f64(&dir.path().join("reference.tif"), 1);
    let nan_same = got
        .iter()
        .zip(&expected)
        .all(|(g, e)| g.is_nan() == e.is_nan());
    assert!(nan_same, "nodata in the same pixels");
    let g: Vec<f64> = got
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    let e: Vec<f64> = expected
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    assert_close(&g, &e, 1e-6, "ndi, CLI aligned vs pre-warped");
    // reduce with --crs/--res/--bounds on the mixed time stack equals the library's
    // reduction of the pre-warped files.
    let (mixed, prewarped, _) = mixed_cube(dir.path());
    let (xmin, ymax) = (cube::GT[0], cube::GT[3]);
    let bounds = format!(
        "{xmin},{},{},{ymax}",
        ymax - 10.0 * cube::H as f64,
        xmin + 10.0 * cube::W as f64
    );
    let mut args = vec!["reduce".to_string()];
    args.extend(mixed.iter().map(|p| p.to_string_lossy().into_owned()));
    args.extend(
        [
            "--crs",
            "EPSG:32633",
            "--res",
            "10",
            "--bounds",
            &bounds,
            "--resampling",
            "bilinear",
            "--resample",
            "week",
            "--stat",
            "std",
            "--quiet",
            "-o",
            "weekly.tif",
        ]
        .map(String::from),
    );
    let (ok, err) = cli(dir.path(), &strs(&args));
    assert!(ok, "{err}");
    let (_, _, got) = read_f64(&dir.path().join("weekly.tif"), 1);
    let got: Vec<f32> = got.iter().map(|&v| v as f32).collect();
    let reference = Raster::open_stack(&prewarped, Stack::Time).unwrap();
    assert_same_f32(&got, &weekly_std(&reference), "reduce --crs --res --bounds");
    // Arguments that cannot work: exit status 1, naming the argument; no output.
    for (bad, what) in [
        (vec!["--crs", "EPSG:999999"], "invalid crs"),
        (vec!["--res", "0"], "invalid resolution"),
        (vec!["--res", "-30"], "invalid resolution"),
        (vec!["--bounds", "5,5,5,6"], "invalid bounds"),
        (vec!["--bounds", "1,2,3"], "invalid bounds"),
        (vec!["--resampling", "lanczos"], "invalid resampling"),
    ] {
        let mut args = vec!["ndi", "--bands", &bands, "--quiet", "-o", "bad.tif"];
        args.extend(bad.iter().copied());
        let out = Command::new(EXE)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(what),
            "{bad:?}: {}",
            text(&out.stderr)
        );
        assert!(!dir.path().join("bad.tif").exists());
    }
}

#[test]
fn arrays_warped_differently_are_not_combined_as_if_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, _) = copies(dir.path());
    let files = [data(B3), coarse];
    let open = |m| Raster::open_stack_aligned(&files, Stack::Band, &Align::first().resampling(m));
    let (bilinear, nearest) = (
        open(Resampling::Bilinear).unwrap(),
        open(Resampling::Nearest).unwrap(),
    );
    let sum = bilinear.band("band1_2").unwrap() + nearest.band("band1_2").unwrap();
    let err = sum.progress(ProgressMode::Silent).compute().unwrap_err();
    assert!(err.to_string().contains("cannot be combined"), "{err}");
    // The same alignment combines.
    let again = open(Resampling::Bilinear).unwrap();
    let sum = bilinear.band("band1").unwrap() + again.band("band1_2").unwrap();
    assert!(sum.progress(ProgressMode::Silent).compute().is_ok());
}

#[test]
fn a_warped_file_gone_before_the_run_is_a_typed_error_naming_it() {
    // The plan holds paths, not handles: each worker opens (and warps) its own handle
    // when the run starts, so a file removed in between fails the run by its name.
    let dir = tempfile::tempdir().expect("tempdir");
    let (coarse, _) = copies(dir.path());
    let r = Raster::open_stack_aligned([data(B3), coarse.clone()], Stack::Band, &Align::first())
        .expect("aligned");
    let ndi = r.norm_diff("band1", "band1_2").unwrap();
    std::fs::remove_file(&coarse).unwrap();
    // The worker's open fails, reported as the chunk it was opening for.
    match ndi.progress(ProgressMode::Silent).compute() {
        Err(Error::Chunk { source, .. }) => match *source {
            Error::NotFound(p) => assert_eq!(p, coarse),
            other => panic!("expected NotFound({}), got {other:?}", coarse.display()),
        },
        other => panic!("expected a chunk error, got {other:?}"),
    }
}
