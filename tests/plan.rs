//! Lazy arrays are plans, plain data: real plans on the bundled data go to JSON and back,
//! compare equal, and save byte-identical GeoTIFFs; bad plans are typed errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use rasterlab::array::PLAN_VERSION;
use rasterlab::prelude::*;
use rasterlab::raster::time::parse_date;

const NAMES: [&str; 4] = ["red", "green", "blue", "nir"];

fn scene_ndi() -> LazyArray {
    Raster::open(data(SCENE))
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .and_then(|r| r.norm_diff("green", "red"))
        .and_then(|a| a.nodata(0.0).scale(1e-4).chunks(512))
        .expect("ndi")
}

fn band_product() -> LazyArray {
    let r = Raster::open_stack([data(B2), data(B3), data(B4)], Stack::Band)
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("band stack");
    let product = r.band("blue").unwrap() * r.band("green").unwrap() * r.band("red").unwrap();
    product.nodata(0.0).scale(1e-4)
}

fn rgbn_files() -> Vec<PathBuf> {
    ["20160517", "20160101", "20170203", "20160401"]
        .iter()
        .map(|d| data(&format!("data/rgbn_{d}.tif")))
        .collect()
}

fn weekly_std() -> LazyArray {
    Raster::open_stack(rgbn_files(), Stack::Time)
        .and_then(|r| r.with_band_names(NAMES))
        .and_then(|r| r.band("nir"))
        .expect("time stack")
        .resample(Period::Week)
        .mean()
        .std()
}

fn subset_stats() -> LazyArray {
    let pattern = format!("{}/data/rgbn_*.tif", env!("CARGO_MANIFEST_DIR"));
    let r = Raster::open_glob(&pattern, None)
        .and_then(|r| r.with_band_names(NAMES))
        .expect("glob");
    let (x0, y0, x1, y1) = r.bounds();
    let (dx, dy) = ((x1 - x0) / 4.0, (y1 - y0) / 3.0);
    let sub = r
        .bbox(x0 + dx, y0 + dy, x1 - dx, y1 - 0.5 * dy)
        .and_then(|r| {
            r.dates(
                parse_date("2016-02-01").unwrap(),
                parse_date("2016-12-31").unwrap(),
            )
        })
        .expect("subset");
    assert_eq!(sub.n_times(), 2);
    LazyArray::ndvi(sub, "nir", "red")
        .expect("ndvi")
        .reduce(&[Stat::Count, Stat::Mean, Stat::Max])
}

fn masked_chain() -> LazyArray {
    let r = Raster::open(data(RGBN))
        .and_then(|r| r.with_band_names(NAMES))
        .expect("rgbn");
    let ndvi = LazyArray::ndvi(r.clone(), "nir", "red").expect("ndvi");
    let water = r.band("blue").unwrap().gt(r.band("nir").unwrap());
    let flipped = -ndvi.clone().abs();
    ndvi.clone()
        .where_(ndvi.gt(0.3), f32::NAN)
        .where_(water.is_nodata().eq_(0.0), flipped)
        .clip(0.0, 1.0)
        * 10000.0
}

fn cast_chain() -> LazyArray {
    masked_chain()
        .round()
        .cast(OutputType::UInt16)
        .fill_nodata(65535.0)
}

/// Every plan of the tests, with a name.
fn plans() -> Vec<(&'static str, LazyArray)> {
    vec![
        ("ndi", scene_ndi()),
        ("band product", band_product()),
        ("weekly std", weekly_std()),
        ("bbox and dates", subset_stats()),
        ("where/clip", masked_chain()),
        ("cast/fill", cast_chain()),
    ]
}

fn round_trip(a: &LazyArray) -> (String, LazyArray) {
    let text = a.to_json().expect("to_json");
    let back = LazyArray::from_json(&text).unwrap_or_else(|e| panic!("from_json: {e}\n{text}"));
    (text, back)
}

/// Saves with fixed options (one thread, so tiles land in the same order every time).
fn save(a: &LazyArray, path: &Path) -> Vec<u8> {
    a.save(path)
        .compress(Compression::Deflate)
        .threads(1)
        .progress(ProgressMode::Silent)
        .run()
        .unwrap_or_else(|e| panic!("save {}: {e}", path.display()));
    std::fs::read(path).expect("read output")
}

#[test]
fn real_plans_round_trip_to_equal_plans_and_identical_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, plan) in plans() {
        let (text, back) = round_trip(&plan);
        assert_eq!(back, plan, "{name}: the plan read back differs\n{text}");
        assert_eq!(back.describe(), plan.describe(), "{name}");
        assert_eq!(back.band_names().unwrap(), plan.band_names().unwrap());
        // Writing the plan read back gives the same text.
        assert_eq!(back.to_json().unwrap(), text, "{name}");
        let slug = name.replace(['/', ' '], "_");
        let original = save(&plan, &dir.path().join(format!("{slug}-original.tif")));
        let again = save(&back, &dir.path().join(format!("{slug}-again.tif")));
        assert!(original.len() > 1000, "{name}: {} bytes", original.len());
        assert!(original == again, "{name}: the files differ");
    }
}

#[test]
fn json_is_self_contained_and_human_readable() {
    let text = scene_ndi().to_json().unwrap();
    for needle in [
        format!("\"version\": {PLAN_VERSION}"),
        "\"green\"".into(),
        "\"red\"".into(),
        "\"norm_diff\"".into(),
        "\"UInt16\"".into(),
        "\"nodata\": 0.0".into(),
        "\"scale\": 0.0001".into(),
        data(SCENE).display().to_string(),
    ] {
        assert!(text.contains(&needle), "{needle} missing from\n{text}");
    }
    let text = weekly_std().to_json().unwrap();
    for needle in [
        "\"nir\"",
        "\"resample\"",
        "\"week\"",
        "\"mean\"",
        "\"std\"",
        "\"2016-01-01\"",
        "\"standard\"",
        "rgbn_20170203.tif",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    // NaN is not JSON: a NaN constant is the string "NaN".
    let text = masked_chain().to_json().unwrap();
    assert!(text.contains("\"const\": \"NaN\""), "{text}");
}

#[test]
fn run_settings_are_not_part_of_the_plan() {
    let plan = scene_ndi();
    let tuned = plan
        .clone()
        .threads(3)
        .memory(1 << 30)
        .progress(ProgressMode::Bar);
    assert_eq!(tuned, plan);
    assert_eq!(tuned.to_json().unwrap(), plan.to_json().unwrap());
    // What a computation does is.
    assert_ne!(plan.clone().scale(1e-3), plan);
    assert_ne!(plan.clone().cast(OutputType::Float64), plan);
    assert_ne!(plan.clone().chunks(256).unwrap(), plan);
    assert_ne!(plan.clone().named("ndi"), plan);
    assert_ne!(plan.clone() + 1.0, plan);
}

#[test]
fn a_newer_format_version_is_refused_with_a_typed_error() {
    let text = scene_ndi().to_json().unwrap();
    let newer = text.replacen(
        &format!("\"version\": {PLAN_VERSION}"),
        "\"version\": 999",
        1,
    );
    assert_ne!(newer, text);
    let err = LazyArray::from_json(&newer).unwrap_err();
    assert!(
        matches!(err, Error::PlanVersion { found: 999, supported } if supported == PLAN_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer rasterlab"), "{err}");
    // Even when the rest is something this version cannot read.
    let err = LazyArray::from_json(r#"{"version": 2, "graph": {"nodes": []}}"#).unwrap_err();
    assert!(
        matches!(err, Error::PlanVersion { found: 2, .. }),
        "{err:?}"
    );
    // Through serde directly, the version is checked too.
    assert!(serde_json::from_str::<LazyArray>(&newer).is_err());
}

#[test]
fn malformed_plans_are_typed_errors_with_the_line() {
    let text = scene_ndi().to_json().unwrap();
    let cases: Vec<(String, &str, usize)> = vec![
        ("this is not JSON".into(), "expected", 1),
        (text[..text.len() / 2].into(), "EOF", 0),
        ("[1, 2, 3]".into(), "", 1),
        (
            text.replacen("\"time_ops\"", "\"time_operations\"", 1),
            "time_operations",
            0,
        ),
        (
            text.replacen("\"band\": 2", "\"band\": 7", 1),
            "reads band 7",
            0,
        ),
        (
            text.replacen("\"out_type\": \"Float32\"", "\"out_type\": \"Float16\"", 1),
            "Float16",
            0,
        ),
        (
            text.replacen("\"bands_per_step\": 3", "\"bands_per_step\": 2", 1),
            "bands",
            0,
        ),
    ];
    for (bad, says, line) in cases {
        assert_ne!(bad, text);
        match LazyArray::from_json(&bad) {
            Err(Error::InvalidPlan {
                line: l,
                column,
                reason,
            }) => {
                assert!(reason.contains(says), "{says:?} not in {reason:?}");
                // serde_json's column is 0 right after a line break (at the end here).
                assert!(l >= 1, "line {l}, column {column}");
                if line > 0 {
                    assert_eq!(l, line, "{reason}");
                }
            }
            other => panic!("{says}: expected InvalidPlan, got {other:?}"),
        }
    }
    let err = LazyArray::from_json("{\n  \"version\": 1,\n  \"raster\": 3\n}").unwrap_err();
    assert!(matches!(err, Error::InvalidPlan { line: 3, .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("invalid plan at line 3"),
        "{err}"
    );
}

#[test]
fn deferred_errors_and_bad_overrides_travel_with_the_plan() {
    let other = Raster::open(data(SCENE))
        .and_then(|r| r.band("band1"))
        .expect("scene");
    let r = Raster::open(data(RGBN))
        .and_then(|r| r.with_band_names(NAMES))
        .expect("rgbn");
    let mixed = r.band("red").unwrap() + other;
    let bad_nodata = r.band("red").unwrap().nodata(70000.0);
    for plan in [mixed, bad_nodata] {
        let (_, back) = round_trip(&plan);
        assert_eq!(back, plan);
        let want = plan.compute().unwrap_err().to_string();
        let got = back.compute().unwrap_err().to_string();
        assert_eq!(got, want);
    }
}

#[test]
fn a_plan_over_a_saved_output_with_nan_nodata_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("ndvi.tif");
    save(&masked_chain(), &first);
    let r = Raster::open(&first).expect("output");
    assert!(r.nodata().is_some_and(f64::is_nan), "{:?}", r.nodata());
    let plan = r.band("ndvi").expect("band").sqrt();
    let (text, back) = round_trip(&plan);
    assert!(text.contains("\"nodata\": \"NaN\""), "{text}");
    assert_eq!(back, plan);
    let a = save(&plan, &dir.path().join("a.tif"));
    let b = save(&back, &dir.path().join("b.tif"));
    assert!(a == b);
}

#[test]
fn a_netcdf_plan_keeps_its_calendar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cdl = dir.path().join("tas.cdl");
    let nc = dir.path().join("tas.nc");
    let values: Vec<String> = (0..6 * 3 * 4).map(|i| format!("{}", i % 17)).collect();
    std::fs::write(
        &cdl,
        format!(
            "netcdf tas {{\ndimensions:\n  time = 6 ;\n  y = 3 ;\n  x = 4 ;\nvariables:\n  \
             double time(time) ;\n    time:units = \"days since 2000-01-01\" ;\n    \
             time:calendar = \"360_day\" ;\n  double y(y) ;\n  double x(x) ;\n  \
             float tas(time, y, x) ;\n    tas:_FillValue = -1.f ;\ndata:\n  \
             time = 0, 15, 29, 45, 59, 89 ;\n  y = 2.5, 1.5, 0.5 ;\n  x = 0.5, 1.5, 2.5, 3.5 ;\n  \
             tas = {} ;\n}}\n",
            values.join(", ")
        ),
    )
    .expect("cdl");
    let status = Command::new("ncgen")
        .arg("-o")
        .arg(&nc)
        .arg(&cdl)
        .status()
        .expect("ncgen (Debian package netcdf-bin, installed by scripts/setup.sh)");
    assert!(status.success());
    let name = format!("NETCDF:\"{}\":tas", nc.display());
    let r = Raster::open(&name).expect("netcdf");
    assert_eq!(r.n_times(), 6);
    let plan = r.band("tas").unwrap().resample(Period::Month).max();
    let (text, back) = round_trip(&plan);
    assert!(text.contains("\"360_day\""), "{text}");
    assert!(text.contains("NETCDF:"), "{text}");
    assert_eq!(back, plan);
    assert_eq!(back.raster().calendar(), plan.raster().calendar());
    assert_eq!(back.times(), plan.times());
    let a = save(&plan, &dir.path().join("a.tif"));
    let b = save(&back, &dir.path().join("b.tif"));
    assert!(a == b);
}

#[test]
fn expressions_deeper_than_a_plan_holds_are_refused_when_written() {
    let r = Raster::open(data(RGBN)).expect("rgbn");
    let mut a = r.band("band1").unwrap();
    // band1 + 1 + 1 ...: one level per addition.
    for _ in 0..47 {
        a = a + 1.0;
    }
    let (_, back) = round_trip(&a);
    assert_eq!(back, a);
    let err = (a + 1.0).to_json().unwrap_err();
    assert!(
        matches!(err, Error::Invalid { what: "plan", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("at most 48"), "{err}");
}
