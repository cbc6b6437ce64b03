//! A generated time cube with known, date-dependent values and nodata, written as a stack
//! of dated GeoTIFFs (in shuffled order) and as one NetCDF file (through `ncgen`).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Datelike, Days, NaiveDate};
use gdal::DriverManager;
use gdal::raster::Buffer;
use gdal::spatial_ref::SpatialRef;

pub const W: usize = 17;
pub const H: usize = 23;
pub const NODATA: f64 = -9999.0;
pub const GT: [f64; 6] = [500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0];

/// 40 irregular dates from 2020-01-01 (a Wednesday) over about four months.
pub fn dates() -> Vec<NaiveDate> {
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let mut day = 0u64;
    (0..40)
        .map(|k| {
            let d = start + Days::new(day);
            day += 1 + (k * 7 % 5);
            d
        })
        .collect()
}

/// The value at date index `t`, row `y`, column `x`, or `None` for nodata.
pub fn value(t: usize, y: usize, x: usize) -> Option<f64> {
    if (t * 7 + y * 3 + x) % 11 == 0 {
        return None;
    }
    let doy = dates()[t].ordinal() as f64;
    Some(10.0 + doy / 10.0 + (doy * 0.3).sin() * y as f64 * 0.5 + x as f64 * 0.25)
}

fn f32_value(t: usize, y: usize, x: usize) -> f32 {
    value(t, y, x).map_or(NODATA as f32, |v| v as f32)
}

/// Writes one GeoTIFF per date (`cube_YYYYMMDD.tif`) and returns the paths in a shuffled
/// order, so that a stack must sort by date to be right.
pub fn write_tiffs(dir: &Path) -> Vec<PathBuf> {
    let driver = DriverManager::get_driver_by_name("GTiff").expect("GTiff");
    let wkt = SpatialRef::from_epsg(32633)
        .expect("epsg")
        .to_wkt()
        .expect("wkt");
    let mut paths: Vec<PathBuf> = dates()
        .iter()
        .enumerate()
        .map(|(t, d)| {
            let path = dir.join(format!("cube_{}.tif", d.format("%Y%m%d")));
            let mut ds = driver
                .create_with_band_type::<f32, _>(&path, W, H, 1)
                .expect("create");
            ds.set_geo_transform(&GT).expect("gt");
            ds.set_projection(&wkt).expect("crs");
            let mut band = ds.rasterband(1).expect("band");
            band.set_no_data_value(Some(NODATA)).expect("nodata");
            let data: Vec<f32> = (0..H)
                .flat_map(|y| (0..W).map(move |x| f32_value(t, y, x)))
                .collect();
            band.write((0, 0), (W, H), &mut Buffer::new((W, H), data))
                .expect("write");
            path
        })
        .collect();
    // A fixed shuffle: every 7th path first, and so on.
    paths.sort_by_key(|p| {
        let s = p.to_string_lossy().into_owned();
        let n: u64 = s.bytes().map(u64::from).sum();
        (n * 7919) % 101
    });
    paths
}

/// Writes the cube as `cube.nc` (variable `rain`, CF time in days since 2020-01-01)
/// with `ncgen`, independent of GDAL.
pub fn write_netcdf(dir: &Path) -> PathBuf {
    write_netcdf_part(dir, "cube", 0..dates().len())
}

/// Writes the time steps `steps` of the cube as `<name>.nc`.
pub fn write_netcdf_part(dir: &Path, name: &str, steps: std::ops::Range<usize>) -> PathBuf {
    write_netcdf_rows(dir, name, steps, false)
}

/// The whole cube as `<name>.nc` with rows stored south first (y increasing), as many
/// climate files are; GDAL presents them north-up.
pub fn write_netcdf_south_up(dir: &Path, name: &str) -> PathBuf {
    write_netcdf_rows(dir, name, 0..dates().len(), true)
}

fn write_netcdf_rows(
    dir: &Path,
    name: &str,
    steps: std::ops::Range<usize>,
    south_up: bool,
) -> PathBuf {
    let row = move |i: usize| if south_up { H - 1 - i } else { i };
    let origin = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let times: Vec<String> = dates()[steps.clone()]
        .iter()
        .map(|d| (*d - origin).num_days().to_string())
        .collect();
    let ys: Vec<String> = (0..H)
        .map(|i| (GT[3] + GT[5] * (row(i) as f64 + 0.5)).to_string())
        .collect();
    let xs: Vec<String> = (0..W)
        .map(|i| (GT[0] + GT[1] * (i as f64 + 0.5)).to_string())
        .collect();
    let values: Vec<String> = steps
        .clone()
        .flat_map(|t| {
            (0..H).flat_map(move |i| (0..W).map(move |x| f32_value(t, row(i), x).to_string()))
        })
        .collect();
    let cdl = format!(
        "netcdf cube {{\ndimensions:\n  time = {nt} ;\n  y = {H} ;\n  x = {W} ;\nvariables:\n  \
         double time(time) ;\n    time:units = \"days since 2020-01-01\" ;\n    time:calendar = \"standard\" ;\n  \
         double y(y) ;\n    y:units = \"m\" ;\n    y:standard_name = \"projection_y_coordinate\" ;\n  \
         double x(x) ;\n    x:units = \"m\" ;\n    x:standard_name = \"projection_x_coordinate\" ;\n  \
         float rain(time, y, x) ;\n    rain:_FillValue = -9999.f ;\ndata:\n  time = {t} ;\n  y = {y} ;\n  x = {x} ;\n  rain = {v} ;\n}}\n",
        nt = steps.len(),
        t = times.join(", "),
        y = ys.join(", "),
        x = xs.join(", "),
        v = values.join(", "),
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
    assert!(status.success(), "ncgen failed");
    nc
}

/// pandas' W-SUN label: the Sunday ending the week of `d`.
pub fn week_label(d: NaiveDate) -> NaiveDate {
    d + Days::new(u64::from(6 - d.weekday().num_days_from_monday()))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn std(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    Some((v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
}

/// Weekly mean (every week from the first to the last, empty weeks missing) then std over
/// the weeks, for pixel `(y, x)`, over the dates with index in `keep`.
pub fn weekly_mean_then_std(y: usize, x: usize, keep: impl Fn(usize) -> bool) -> Option<f64> {
    let dates = dates();
    let ts: Vec<usize> = (0..dates.len()).filter(|&t| keep(t)).collect();
    let first = week_label(dates[*ts.first()?]);
    let last = week_label(dates[*ts.last()?]);
    let mut weekly = Vec::new();
    let mut week = first;
    while week <= last {
        let vals: Vec<f64> = ts
            .iter()
            .filter(|&&t| week_label(dates[t]) == week)
            .filter_map(|&t| value(t, y, x).map(|v| v as f32 as f64))
            .collect();
        if let Some(m) = mean(&vals) {
            weekly.push(m);
        }
        week = week + Days::new(7);
    }
    std(&weekly)
}

/// Plain statistics of the valid values at `(y, x)` over dates in `keep`:
/// (count, mean, std, min, max).
pub fn plain_stats(
    y: usize,
    x: usize,
    keep: impl Fn(usize) -> bool,
) -> (usize, Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
    let vals: Vec<f64> = (0..dates().len())
        .filter(|&t| keep(t))
        .filter_map(|t| value(t, y, x).map(|v| v as f32 as f64))
        .collect();
    let min = vals.iter().copied().reduce(f64::min);
    let max = vals.iter().copied().reduce(f64::max);
    (vals.len(), mean(&vals), std(&vals), min, max)
}
