//! Time stacks and reductions against plain loops over a generated cube whose values
//! depend on the date, read as shuffled GeoTIFFs and as one NetCDF file.

mod common;

use common::cube::{self, H, W};
use rasterlab::prelude::*;
use rasterlab::raster::time::parse_date;

fn close(expected: Option<f64>, got: f32, what: &str) {
    match expected {
        None => assert!(got.is_nan(), "{what}: expected nodata, got {got}"),
        Some(e) => assert!(
            (e - got as f64).abs() <= 1e-4 * e.abs().max(1.0),
            "{what}: expected {e}, got {got}"
        ),
    }
}

fn sources(dir: &std::path::Path) -> Vec<(&'static str, Raster)> {
    let tiffs = cube::write_tiffs(dir);
    let nc = cube::write_netcdf(dir);
    vec![
        (
            "tiff stack",
            Raster::open_stack(&tiffs, Stack::Time).expect("tiff stack"),
        ),
        (
            "netcdf",
            Raster::open(format!("NETCDF:\"{}\":rain", nc.display())).expect("netcdf"),
        ),
    ]
}

#[test]
fn netcdf_rows_stored_south_first_read_north_up() {
    // GDAL's classic driver flips such files; rasterlab's multidimensional fast path must
    // give the same picture, for windows at any offset.
    let dir = tempfile::tempdir().expect("tempdir");
    let north = cube::write_netcdf(dir.path());
    let south = cube::write_netcdf_south_up(dir.path(), "south");
    for (what, nc) in [("north-up", north), ("south-up", south)] {
        let r = Raster::open(format!("NETCDF:\"{}\":rain", nc.display())).expect("open");
        assert_eq!(r.geo_transform(), cube::GT, "{what}");
        for window in [
            Window::new(0, 0, W, H),
            Window::new(3, 5, 9, 11),
            Window::new(16, 22, 1, 1),
        ] {
            let got = r.read_cube(window, &["rain"]).expect("read");
            for t in [0, 7, 39] {
                for y in 0..window.height {
                    for x in 0..window.width {
                        let (gy, gx) = (window.y + y, window.x + x);
                        let expected = cube::value(t, gy, gx).map(|v| v as f32 as f64);
                        close(
                            expected,
                            got[[t, 0, y, x]],
                            &format!("{what} t={t} ({gy},{gx})"),
                        );
                    }
                }
            }
        }
        let std = r
            .band("rain")
            .expect("band")
            .resample(Period::Week)
            .mean()
            .std()
            .chunks(7)
            .expect("chunks")
            .compute_band()
            .expect("compute");
        for (y, x) in [(0, 0), (11, 4), (22, 16)] {
            close(
                cube::weekly_mean_then_std(y, x, |_| true),
                std[[y, x]],
                &format!("{what} std ({y},{x})"),
            );
        }
    }
}

#[test]
fn stacks_are_sorted_by_date_and_netcdf_time_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, r) in sources(dir.path()) {
        assert_eq!(r.times(), cube::dates(), "{what}");
        assert_eq!(r.size(), (W, H), "{what}");
        assert_eq!(r.band_count(), 1, "{what}");
        // Values at each date are that date's values: no ordering mix-up.
        let name = r.band_names()[0].to_string();
        let cube_values = r
            .read_cube(Window::new(0, 0, W, H), &[&name])
            .expect("read");
        for t in [0, 13, 39] {
            for (y, x) in [(0, 1), (5, 7), (22, 16)] {
                let expected = cube::value(t, y, x).map(|v| v as f32 as f64);
                close(
                    expected,
                    cube_values[[t, 0, y, x]],
                    &format!("{what} t={t} ({y},{x})"),
                );
            }
        }
    }
}

#[test]
fn weekly_mean_then_std_matches_plain_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, r) in sources(dir.path()) {
        let name = r.band_names()[0].to_string();
        for chunks in [4, 7, 100] {
            let out = r
                .band(&name)
                .and_then(|a| a.chunks(chunks))
                .expect("band")
                .resample(Period::Week)
                .mean()
                .std()
                .progress(ProgressMode::Silent)
                .compute()
                .expect("compute");
            assert_eq!(out.dim(), (1, H, W));
            for y in 0..H {
                for x in 0..W {
                    close(
                        cube::weekly_mean_then_std(y, x, |_| true),
                        out[[0, y, x]],
                        &format!("{what} chunks {chunks} ({y},{x})"),
                    );
                }
            }
        }
    }
}

#[test]
fn weekly_labels_follow_pandas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, r) = sources(dir.path()).remove(0);
    let weekly = r.band("band1").expect("band").resample(Period::Week).mean();
    let labels = weekly.times();
    let first = cube::week_label(cube::dates()[0]);
    assert_eq!(labels[0], first);
    assert_eq!(labels[0].to_string(), "2020-01-05");
    assert!(labels.windows(2).all(|w| (w[1] - w[0]).num_days() == 7));
    assert_eq!(
        *labels.last().expect("weeks"),
        cube::week_label(*cube::dates().last().expect("dates"))
    );
    assert_eq!(weekly.n_bands().expect("bands"), labels.len());
}

#[test]
fn plain_reductions_bbox_and_date_subset_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (start, end) = (
        parse_date("2020-02-01").expect("date"),
        parse_date("2020-03-15").expect("date"),
    );
    let keep = |t: usize| (start..=end).contains(&cube::dates()[t]);
    for (what, r) in sources(dir.path()) {
        let name = r.band_names()[0].to_string();
        // Pixels x 3..9 and y 5..14: the box touches them and no others.
        let (x0, y0) = (cube::GT[0], cube::GT[3]);
        let sub = r
            .clone()
            .bbox(
                x0 + 30.0 + 1.0,
                y0 - 140.0 + 1.0,
                x0 + 90.0 - 1.0,
                y0 - 50.0 - 1.0,
            )
            .and_then(|s| s.dates(start, end))
            .expect("subset");
        assert_eq!(sub.size(), (6, 9), "{what}");
        assert_eq!(sub.geo_transform()[0], x0 + 30.0);
        assert_eq!(sub.geo_transform()[3], y0 - 50.0);
        let stats = [Stat::Count, Stat::Mean, Stat::Std, Stat::Min, Stat::Max];
        let out = sub
            .band(&name)
            .expect("band")
            .reduce(&stats)
            .progress(ProgressMode::Silent)
            .compute()
            .expect("compute");
        assert_eq!(out.dim(), (5, 9, 6));
        for y in 0..9 {
            for x in 0..6 {
                let (count, mean, std, min, max) = cube::plain_stats(y + 5, x + 3, keep);
                let at = format!("{what} ({y},{x})");
                close(Some(count as f64), out[[0, y, x]], &format!("{at} count"));
                close(mean, out[[1, y, x]], &format!("{at} mean"));
                close(std, out[[2, y, x]], &format!("{at} std"));
                close(min, out[[3, y, x]], &format!("{at} min"));
                close(max, out[[4, y, x]], &format!("{at} max"));
            }
        }
    }
}

#[test]
fn saved_reduction_names_its_bands_and_keeps_georeference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiffs = cube::write_tiffs(dir.path());
    let out = dir.path().join("stats.tif");
    Raster::open_stack(&tiffs, Stack::Time)
        .and_then(|r| r.band("band1"))
        .expect("band")
        .resample(Period::Month)
        .mean()
        .reduce(&[Stat::Mean, Stat::Std])
        .save(&out)
        .progress(ProgressMode::Silent)
        .run()
        .expect("save");
    let ds = gdal::Dataset::open(&out).expect("open");
    assert_eq!(ds.raster_count(), 2);
    assert_eq!(ds.geo_transform().expect("gt"), cube::GT);
    use gdal::Metadata;
    assert_eq!(
        ds.rasterband(1).expect("b1").description().expect("d"),
        "band1_mean"
    );
    assert_eq!(
        ds.rasterband(2).expect("b2").description().expect("d"),
        "band1_std"
    );
}

#[test]
fn time_errors_are_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiffs = cube::write_tiffs(dir.path());
    // A file name without a date.
    let undated = dir.path().join("scene.tif");
    std::fs::copy(&tiffs[0], &undated).expect("copy");
    let err = Raster::open_stack([&tiffs[0], &undated], Stack::Time).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { what: "date", reason } if reason.contains("scene.tif")),
        "{err:?}"
    );
    // Dates that cannot be parsed.
    assert!(matches!(
        parse_date("2020-13-45"),
        Err(Error::Invalid { what: "date", .. })
    ));
    // A grid that differs.
    let other = common::data("data/rgbn_20160101.tif");
    let err = Raster::open_stack([tiffs[0].clone(), other], Stack::Time).unwrap_err();
    assert!(
        matches!(err, Error::StackMismatch { field: "size", .. }),
        "{err:?}"
    );
    // A NetCDF variable that does not exist.
    let nc = cube::write_netcdf(dir.path());
    let err = Raster::open(format!("NETCDF:\"{}\":snow", nc.display())).unwrap_err();
    assert!(matches!(err, Error::NotARaster { .. }), "{err:?}");
    // A date range outside the series.
    let r = Raster::open_stack(&tiffs, Stack::Time).expect("stack");
    let err = r
        .dates(
            parse_date("2021-01-01").expect("d"),
            parse_date("2021-02-01").expect("d"),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "date range",
                ..
            }
        ),
        "{err:?}"
    );
    // Resampling a raster without dates.
    let plain = Raster::open(common::data(common::RGBN)).expect("rgbn");
    let err = plain
        .band("band1")
        .expect("band")
        .resample(Period::Week)
        .mean()
        .compute()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "resample",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_glob_of_netcdf_files_stacks_along_time_like_open_mfdataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Three files with consecutive runs of dates, named so that glob order is not date
    // order for the last two.
    cube::write_netcdf_part(dir.path(), "rain_a", 0..15);
    cube::write_netcdf_part(dir.path(), "rain_c", 15..27);
    cube::write_netcdf_part(dir.path(), "rain_b", 27..40);
    let pattern = format!("{}/rain_*.nc", dir.path().display());
    let r = Raster::open_glob(&pattern, Some("rain")).expect("glob");
    assert_eq!(r.times(), cube::dates());
    let out = r
        .band("rain")
        .expect("band")
        .resample(Period::Week)
        .mean()
        .std()
        .progress(ProgressMode::Silent)
        .compute()
        .expect("compute");
    for (y, x) in [(0, 0), (11, 8), (22, 16)] {
        close(
            cube::weekly_mean_then_std(y, x, |_| true),
            out[[0, y, x]],
            &format!("({y},{x})"),
        );
    }
    let err = Raster::open_glob(&format!("{}/snow_*.nc", dir.path().display()), None).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}
