//! NetCDF time axes in every CF calendar: files written with `ncgen`, opened with
//! `Raster::open`, their dates compared with Python's cftime and xarray.
//!
//! The reference for each axis:
//! * real-world calendars (`standard`, `gregorian`, `proleptic_gregorian`, `julian`): the
//!   day of `cftime.num2date(values, units, calendar)`, written in the proleptic Gregorian
//!   calendar through its Julian day number (`toordinal`);
//! * `noleap`, `all_leap` (and aliases): the date cftime gives, which xarray's
//!   `convert_calendar("proleptic_gregorian")` keeps;
//! * `360_day`: xarray's `convert_calendar("proleptic_gregorian", align_on="year")`.
//!
//! Python comes from `RASTERLAB_VENV`, else `<crate>/.venv` (the rule of
//! tests/notebooks.rs); `make setup` installs cftime and xarray there
//! (scripts/requirements-notebook.txt). Without them the tests fail, they do not skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{Datelike, Days, NaiveDate};
use rasterlab::prelude::*;
use rasterlab::raster::time::{Calendar, parse_date};
use serde_json::{Value, json};

const W: usize = 3;
const H: usize = 2;

/// One time axis: the file's `calendar` attribute (`None`: no attribute), units, values.
struct Axis {
    calendar: Option<&'static str>,
    units: &'static str,
    values: Vec<f64>,
}

impl Axis {
    fn new(calendar: Option<&'static str>, units: &'static str, values: Vec<f64>) -> Axis {
        Axis {
            calendar,
            units,
            values,
        }
    }

    /// `n` steps `step` apart from 0.
    fn regular(calendar: Option<&'static str>, units: &'static str, n: usize, step: f64) -> Axis {
        Axis::new(calendar, units, (0..n).map(|k| k as f64 * step).collect())
    }
}

/// The value of step `t` at row `y`, column `x` (exact in f32).
fn value(t: usize, y: usize, x: usize) -> f64 {
    (t * 10 + y * 3 + x) as f64
}

/// Writes `axis` as `<name>.nc` (variable `tas(time, y, x)`) with `ncgen`, independent of
/// GDAL.
fn write_nc(dir: &Path, name: &str, axis: &Axis) -> PathBuf {
    let calendar = axis
        .calendar
        .map(|c| format!("    time:calendar = \"{c}\" ;\n"))
        .unwrap_or_default();
    let times: Vec<String> = axis.values.iter().map(|v| format!("{v:?}")).collect();
    let data: Vec<String> = (0..axis.values.len())
        .flat_map(|t| (0..H).flat_map(move |y| (0..W).map(move |x| value(t, y, x).to_string())))
        .collect();
    let cdl = format!(
        "netcdf {name} {{\ndimensions:\n  time = {nt} ;\n  y = {H} ;\n  x = {W} ;\nvariables:\n  \
         double time(time) ;\n    time:units = \"{units}\" ;\n{calendar}  \
         double y(y) ;\n    y:units = \"m\" ;\n    y:standard_name = \"projection_y_coordinate\" ;\n  \
         double x(x) ;\n    x:units = \"m\" ;\n    x:standard_name = \"projection_x_coordinate\" ;\n  \
         float tas(time, y, x) ;\ndata:\n  time = {t} ;\n  y = 15, 5 ;\n  x = 5, 15, 25 ;\n  \
         tas = {v} ;\n}}\n",
        nt = axis.values.len(),
        units = axis.units,
        t = times.join(", "),
        v = data.join(", "),
    );
    let cdl_path = dir.join(format!("{name}.cdl"));
    let nc = dir.join(format!("{name}.nc"));
    std::fs::write(&cdl_path, cdl).expect("cdl");
    let status = Command::new("ncgen")
        .arg("-o")
        .arg(&nc)
        .arg(&cdl_path)
        .status()
        .expect("ncgen (Debian package netcdf-bin, installed by scripts/setup.sh)");
    assert!(status.success(), "ncgen failed for {name}");
    nc
}

/// The Python of the project's environment; panics (fails the test) when it is missing.
fn python() -> PathBuf {
    let venv = std::env::var_os("RASTERLAB_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "no Python at {} (RASTERLAB_VENV or <crate>/.venv): run `make setup` (installs \
         scripts/requirements-notebook.txt, with cftime and xarray, into .venv), or set \
         RASTERLAB_VENV to an environment that has them",
        python.display()
    );
    python
}

const REFERENCE_PY: &str = r#"
import datetime, json, sys
import cftime, numpy as np, xarray as xr

REAL = {"standard", "gregorian", "proleptic_gregorian", "julian"}
# cftime's real-world calendars share Julian day numbers (toordinal); Python's date
# ordinals are proleptic Gregorian: the offset between the two counts.
OFFSET = (cftime.datetime(2000, 1, 1, calendar="proleptic_gregorian").toordinal()
          - datetime.date(2000, 1, 1).toordinal())

def iso(d):
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"

out = []
for case in json.load(sys.stdin):
    cal = case["calendar"]
    dates = cftime.num2date(np.array(case["values"], dtype="f8"), case["units"],
                            calendar=cal, only_use_cftime_datetimes=True)
    res = {"labels": [iso(d) for d in dates]}
    if cal.lower() in REAL:
        days = [cftime.datetime(d.year, d.month, d.day, calendar=d.calendar) for d in dates]
        res["same_day"] = [datetime.date.fromordinal(d.toordinal() - OFFSET).isoformat()
                           for d in days]
    else:
        da = xr.DataArray(np.arange(len(dates)), dims="time", coords={"time": dates})
        align = "year" if cal.lower() == "360_day" else "date"
        conv = da.convert_calendar("proleptic_gregorian", dim="time", align_on=align,
                                   use_cftime=True)
        res["converted"] = [[int(i), iso(t)] for i, t in zip(conv.values, conv["time"].values)]
    out.append(res)
json.dump(out, sys.stdout)
"#;

/// What cftime and xarray say about one axis.
struct Reference {
    /// The calendar dates as cftime writes them (may not exist in Gregorian).
    labels: Vec<String>,
    /// Real-world calendars: the same days in the proleptic Gregorian calendar.
    same_day: Option<Vec<NaiveDate>>,
    /// Idealised calendars: (step, date) after xarray's conversion to proleptic Gregorian;
    /// steps xarray drops are missing.
    converted: Option<Vec<(usize, NaiveDate)>>,
}

fn date(s: &str) -> NaiveDate {
    parse_date(s).unwrap_or_else(|e| panic!("reference date {s:?}: {e}"))
}

/// One Python run for all axes (importing xarray takes a while).
fn references(axes: &[&Axis]) -> Vec<Reference> {
    let cases: Vec<Value> = axes
        .iter()
        .map(|a| {
            json!({
                "calendar": a.calendar.unwrap_or("standard"),
                "units": a.units,
                "values": a.values,
            })
        })
        .collect();
    let mut child = Command::new(python())
        .args(["-c", REFERENCE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Array(cases).to_string().as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the cftime/xarray reference failed (are cftime and xarray installed? `make setup`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).expect("python output");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    };
    out.as_array()
        .expect("array")
        .iter()
        .map(|r| Reference {
            labels: strings(&r["labels"]),
            same_day: r
                .get("same_day")
                .map(|v| strings(v).iter().map(|s| date(s)).collect()),
            converted: r.get("converted").map(|v| {
                v.as_array()
                    .expect("array")
                    .iter()
                    .map(|p| {
                        let step = p[0].as_u64().expect("step") as usize;
                        (step, date(p[1].as_str().expect("date")))
                    })
                    .collect()
            }),
        })
        .collect()
}

fn open(dir: &Path, name: &str, axis: &Axis) -> Raster {
    let nc = write_nc(dir, name, axis);
    Raster::open(&nc).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `got == expected`, reporting the first step that differs (the lists are long).
fn assert_dates(name: &str, got: &[NaiveDate], expected: &[NaiveDate]) {
    assert_eq!(got.len(), expected.len(), "{name}: number of steps");
    if let Some(k) = (0..got.len()).find(|&k| got[k] != expected[k]) {
        let wrong = (0..got.len()).filter(|&k| got[k] != expected[k]).count();
        panic!(
            "{name}: step {k} is {}, the reference says {} ({wrong} of {} steps differ)",
            got[k],
            expected[k],
            got.len()
        );
    }
}

/// Every step has a different date exactly when its calendar date differs from the
/// previous step's, and dates never go back.
fn assert_order_kept(name: &str, dates: &[NaiveDate], labels: &[String]) {
    for k in 1..dates.len() {
        assert!(dates[k - 1] <= dates[k], "{name}: step {k} goes back");
        assert_eq!(
            dates[k - 1] == dates[k],
            labels[k - 1] == labels[k],
            "{name}: steps {} ({}) and {k} ({}) give {} and {}",
            k - 1,
            labels[k - 1],
            labels[k],
            dates[k - 1],
            dates[k]
        );
    }
}

#[test]
fn real_world_calendars_give_the_same_days_as_cftime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let axes = [
        // No attribute: standard, the CF default.
        (
            "missing",
            Axis::regular(None, "days since 1999-12-01", 800, 1.0),
            Calendar::Standard,
        ),
        (
            "standard",
            Axis::regular(
                Some("standard"),
                "hours since 2000-02-27 00:00:00",
                600,
                6.0,
            ),
            Calendar::Standard,
        ),
        // Across the 1582 reform: Julian days first, then Gregorian ones.
        (
            "gregorian",
            Axis::regular(Some("Gregorian"), "days since 1582-09-01", 400, 1.0),
            Calendar::Standard,
        ),
        (
            "reform_6h",
            Axis::regular(Some("standard"), "hours since 1582-10-04 12:00", 40, 6.0),
            Calendar::Standard,
        ),
        (
            "proleptic",
            Axis::regular(
                Some("proleptic_gregorian"),
                "days since 1582-09-01",
                400,
                1.0,
            ),
            Calendar::ProlepticGregorian,
        ),
        // 1900-02-29 exists in the Julian calendar.
        (
            "julian",
            Axis::regular(Some("julian"), "days since 1899-12-01 00:00:00", 500, 1.0),
            Calendar::Julian,
        ),
        (
            "julian_6h",
            Axis::regular(Some("julian"), "hours since 2000-02-28T18:00:00Z", 500, 6.0),
            Calendar::Julian,
        ),
    ];
    let refs = references(&axes.iter().map(|(_, a, _)| a).collect::<Vec<_>>());
    for ((name, axis, calendar), reference) in axes.iter().zip(refs) {
        let r = open(dir.path(), name, axis);
        let expected = reference.same_day.expect("same_day");
        assert_eq!(r.calendar(), *calendar, "{name}");
        assert_eq!(r.n_times(), axis.values.len(), "{name}");
        assert_dates(name, &r.times(), &expected);
        assert_order_kept(name, &r.times(), &reference.labels);
    }
    // A second check of the reference itself: Julian 1900-02-29 is Gregorian 1900-03-13.
    let r = open(
        dir.path(),
        "julian_leap",
        &Axis::new(Some("julian"), "days since 1900-02-28", vec![1.0]),
    );
    assert_eq!(r.times(), [date("1900-03-13")]);
}

#[test]
fn noleap_and_all_leap_give_their_calendar_dates() {
    let dir = tempfile::tempdir().expect("tempdir");
    // all_leap over 2000 and 2004 (Gregorian leap years, where every date exists).
    let leap_years: Vec<f64> = (0..366).chain(4 * 366..5 * 366).map(f64::from).collect();
    let axes = [
        (
            "noleap",
            Axis::regular(Some("noleap"), "days since 1999-12-01", 800, 1.0),
            Calendar::NoLeap,
        ),
        (
            "365_day",
            Axis::regular(Some("365_day"), "hours since 2000-02-26 00:00:00", 400, 6.0),
            Calendar::NoLeap,
        ),
        (
            "all_leap",
            Axis::new(Some("all_leap"), "days since 2000-01-01", leap_years),
            Calendar::AllLeap,
        ),
        (
            "366_day",
            Axis::regular(
                Some("366_day"),
                "minutes since 2004-02-27 00:00",
                480,
                360.0,
            ),
            Calendar::AllLeap,
        ),
    ];
    let refs = references(&axes.iter().map(|(_, a, _)| a).collect::<Vec<_>>());
    for ((name, axis, calendar), reference) in axes.iter().zip(refs) {
        let r = open(dir.path(), name, axis);
        let labels: Vec<NaiveDate> = reference.labels.iter().map(|s| date(s)).collect();
        // xarray keeps every step, on the same date.
        let converted = reference.converted.expect("converted");
        assert_eq!(
            converted,
            labels.iter().copied().enumerate().collect::<Vec<_>>(),
            "{name}: xarray"
        );
        assert_eq!(r.calendar(), *calendar, "{name}");
        assert_dates(name, &r.times(), &labels);
        assert_order_kept(name, &r.times(), &reference.labels);
    }
}

#[test]
fn day_360_follows_xarray_align_on_year() {
    let dir = tempfile::tempdir().expect("tempdir");
    let axes = [
        // 29 and 30 February of 2000 (Gregorian leap year) and of 2001.
        (
            "daily",
            Axis::regular(Some("360_day"), "days since 1999-11-01", 800, 1.0),
        ),
        // The origin itself does not exist in the Gregorian calendar.
        (
            "six_hourly",
            Axis::regular(Some("360_day"), "hours since 2000-02-30 12:00:00", 600, 6.0),
        ),
        // Before 1582: the target is the proleptic Gregorian calendar.
        (
            "year_1000",
            Axis::regular(Some("360_day"), "days since 1000-01-01", 400, 1.0),
        ),
    ];
    let refs = references(&axes.iter().map(|(_, a)| a).collect::<Vec<_>>());
    for ((name, axis), reference) in axes.iter().zip(refs) {
        let r = open(dir.path(), name, axis);
        let converted = reference.converted.expect("converted");
        // xarray drops no step here either: it maps them all, in order.
        assert_eq!(
            converted.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            (0..axis.values.len()).collect::<Vec<_>>(),
            "{name}: xarray"
        );
        let expected: Vec<NaiveDate> = converted.iter().map(|(_, d)| *d).collect();
        assert_eq!(r.calendar(), Calendar::Day360, "{name}");
        assert_dates(name, &r.times(), &expected);
        assert_order_kept(name, &r.times(), &reference.labels);
        assert!(r.to_string().contains("360_day calendar"), "{name}: {r}");
    }
    // A second check: 30 February is 1 March in 2000 and 2 March in 2001.
    let r = open(
        dir.path(),
        "feb30",
        &Axis::new(Some("360_day"), "days since 2000-02-30", vec![0.0, 360.0]),
    );
    assert_eq!(r.times(), [date("2000-03-01"), date("2001-03-02")]);
}

/// The `Error::Calendar` of opening a file with `axis`, checked to name file and calendar.
fn calendar_error(dir: &Path, name: &str, axis: &Axis, calendar: &str) -> String {
    let nc = write_nc(dir, name, axis);
    match Raster::open(&nc) {
        Err(Error::Calendar {
            path,
            calendar: named,
            reason,
        }) => {
            assert_eq!(path, nc, "{name}");
            assert_eq!(named, calendar, "{name}");
            let msg = Raster::open(&nc).expect_err("again").to_string();
            assert!(
                msg.contains(&nc.display().to_string()) && msg.contains(calendar),
                "{name}: {msg}"
            );
            reason
        }
        other => panic!("{name}: expected Error::Calendar, got {other:?}"),
    }
}

#[test]
fn refusals_are_typed_errors_naming_file_and_calendar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let daily = |calendar| Axis::regular(Some(calendar), "days since 2000-01-01", 5, 1.0);
    for calendar in ["none", "noleep", "utc", ""] {
        let name = format!("unknown_{}", calendar.len());
        let reason = calendar_error(d, &name, &daily(calendar), calendar);
        assert!(reason.contains("360_day"), "{calendar}: {reason}");
    }

    // all_leap 2001-02-29 has no Gregorian date: refused, where xarray drops the step.
    let axis = Axis::regular(Some("all_leap"), "days since 2001-02-27", 5, 1.0);
    let reference = references(&[&axis]).remove(0);
    assert_eq!(reference.labels[2], "2001-02-29");
    let kept: Vec<usize> = reference
        .converted
        .expect("converted")
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(kept, [0, 1, 3, 4], "xarray drops 29 February");
    let reason = calendar_error(d, "all_leap_2001", &axis, "all_leap");
    assert!(reason.contains("2001-02-29"), "{reason}");

    // Origins that are not dates of their calendar.
    let gap = Axis::regular(Some("standard"), "days since 1582-10-10", 3, 1.0);
    let reason = calendar_error(d, "reform_gap", &gap, "standard");
    assert!(reason.contains("1582-10-10"), "{reason}");
    let feb30 = Axis::regular(None, "days since 2000-02-30", 3, 1.0);
    calendar_error(d, "feb30_standard", &feb30, "standard");
    // Named as the file spells it.
    let feb29 = Axis::regular(Some("365_day"), "days since 2000-02-29", 3, 1.0);
    calendar_error(d, "feb29_noleap", &feb29, "365_day");

    // Months have no fixed length: refused as units, in any calendar.
    let months = Axis::regular(Some("360_day"), "months since 2000-01-01", 3, 1.0);
    let nc = write_nc(d, "months", &months);
    match Raster::open(&nc) {
        Err(Error::Invalid { what, reason }) => {
            assert_eq!(what, "time units");
            assert!(reason.contains("months"), "{reason}");
        }
        other => panic!("months: expected Error::Invalid, got {other:?}"),
    }
}

#[test]
fn time_stacks_keep_one_calendar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let a = write_nc(
        d,
        "a",
        &Axis::regular(Some("noleap"), "days since 2001-01-01", 30, 1.0),
    );
    let b = write_nc(
        d,
        "b",
        &Axis::regular(Some("365_day"), "days since 2000-12-01", 31, 1.0),
    );
    let c = write_nc(
        d,
        "c",
        &Axis::regular(Some("360_day"), "days since 2001-03-01", 30, 1.0),
    );
    let r = Raster::open_stack([&a, &b], Stack::Time).expect("noleap stack");
    assert_eq!(r.calendar(), Calendar::NoLeap);
    assert_eq!(r.n_times(), 61);
    assert_eq!(r.times()[0], date("2000-12-01"));
    match Raster::open_stack([&a, &c], Stack::Time) {
        Err(Error::StackMismatch {
            field,
            expected,
            found,
            ..
        }) => assert_eq!(
            (field, &*expected, &*found),
            ("calendar", "noleap", "360_day")
        ),
        other => panic!("expected a calendar mismatch, got {other:?}"),
    }
}

/// pandas' W-SUN label: the Sunday ending the week of `d`.
fn week_label(d: NaiveDate) -> NaiveDate {
    d + Days::new(u64::from(6 - d.weekday().num_days_from_monday()))
}

#[test]
fn weekly_mean_over_noleap_groups_by_calendar_dates() {
    // Daily noleap steps over two Februaries: a Gregorian decoding would shift every step
    // after 28 February by a day and regroup the weeks.
    let dir = tempfile::tempdir().expect("tempdir");
    let axis = Axis::regular(Some("noleap"), "days since 2000-01-01", 450, 1.0);
    let dates: Vec<NaiveDate> = references(&[&axis])
        .remove(0)
        .labels
        .iter()
        .map(|s| date(s))
        .collect();
    let r = open(dir.path(), "weekly", &axis);
    let weekly = r
        .band("tas")
        .and_then(|a| a.chunks(2))
        .expect("band")
        .resample(Period::Week)
        .mean();
    let got = weekly
        .clone()
        .progress(ProgressMode::Silent)
        .compute()
        .expect("compute");

    // The plain loop: every week from the first to the last, the mean of its steps.
    let mut week = week_label(dates[0]);
    let last = week_label(*dates.last().expect("dates"));
    let mut labels = Vec::new();
    let mut means = Vec::new();
    while week <= last {
        let steps: Vec<usize> = (0..dates.len())
            .filter(|&t| week_label(dates[t]) == week)
            .collect();
        if !steps.is_empty() {
            labels.push(week);
            means.push(
                (0..H)
                    .flat_map(|y| (0..W).map(move |x| (y, x)))
                    .map(|(y, x)| {
                        steps.iter().map(|&t| value(t, y, x)).sum::<f64>() / steps.len() as f64
                    })
                    .collect::<Vec<f64>>(),
            );
        }
        week = week + Days::new(7);
    }
    assert_eq!(weekly.times(), labels);
    assert_eq!(got.dim(), (labels.len(), H, W));
    for (k, mean) in means.iter().enumerate() {
        for y in 0..H {
            for x in 0..W {
                let (e, g) = (mean[y * W + x], f64::from(got[[k, y, x]]));
                assert!(
                    (e - g).abs() <= 1e-5 * e.abs().max(1.0),
                    "week {} ({y},{x}): expected {e}, got {g}",
                    labels[k]
                );
            }
        }
    }
    // The week of 2000-02-28 (Mon) .. 03-05 (Sun) has six noleap days.
    let k = labels
        .iter()
        .position(|w| *w == date("2000-03-05"))
        .expect("week");
    assert_eq!(
        dates
            .iter()
            .filter(|d| week_label(**d) == labels[k])
            .count(),
        6
    );
}
