//! Windowed reads for every GDAL data type, with nodata and scale, against known values.

mod common;

use gdal::DriverManager;
use gdal::raster::{Buffer, GdalType};
use rasterlab::prelude::*;

const W: usize = 37;
const H: usize = 29;

/// A small GeoTIFF of type `T` holding `value(x, y)`, nodata 7, scale 0.5, offset 1.
fn write<T: GdalType + Copy>(
    dir: &std::path::Path,
    name: &str,
    value: impl Fn(usize, usize) -> T,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.tif"));
    let driver = DriverManager::get_driver_by_name("GTiff").expect("GTiff");
    let mut ds = driver
        .create_with_band_type::<T, _>(&path, W, H, 1)
        .expect("create");
    ds.set_geo_transform(&[0.0, 1.0, 0.0, 0.0, 0.0, -1.0])
        .expect("gt");
    let mut band = ds.rasterband(1).expect("band");
    band.set_no_data_value(Some(7.0)).expect("nodata");
    band.set_scale(0.5).expect("scale");
    band.set_offset(1.0).expect("offset");
    let data: Vec<T> = (0..H)
        .flat_map(|y| (0..W).map(move |x| (x, y)))
        .map(|(x, y)| value(x, y))
        .collect();
    band.write((0, 0), (W, H), &mut Buffer::new((W, H), data))
        .expect("write");
    path
}

fn stored(x: usize, y: usize) -> f64 {
    ((x * 3 + y * 5) % 100) as f64
}

fn check(path: &std::path::Path, what: &str) {
    let r = Raster::open(path).expect("open");
    let window = Window::new(3, 4, 20, 11);
    // Raw values as f64 and i32.
    let raw = r.read_raw::<f64>(window, &["band1"]).expect("raw f64");
    let raw_i = r.read_raw::<i32>(window, &["band1"]).expect("raw i32");
    // Decoded: file scale and offset applied, nodata (stored 7) as NaN.
    let decoded = r.read(window, &["band1"]).expect("decoded");
    for y in 0..window.height {
        for x in 0..window.width {
            let s = stored(x + window.x, y + window.y);
            assert_eq!(raw[[0, y, x]], s, "{what} raw ({x},{y})");
            assert_eq!(raw_i[[0, y, x]] as f64, s, "{what} raw i32 ({x},{y})");
            let d = decoded[[0, y, x]];
            if s == 7.0 {
                assert!(d.is_nan(), "{what}: nodata at ({x},{y}) read as {d}");
            } else {
                assert_eq!(d as f64, s * 0.5 + 1.0, "{what} decoded ({x},{y})");
            }
        }
    }
}

#[test]
fn every_gdal_data_type_reads_with_nodata_and_scale() {
    let dir = tempfile::tempdir().expect("tempdir");
    check(
        &write::<u8>(dir.path(), "byte", |x, y| stored(x, y) as u8),
        "Byte",
    );
    check(
        &write::<u16>(dir.path(), "uint16", |x, y| stored(x, y) as u16),
        "UInt16",
    );
    check(
        &write::<i16>(dir.path(), "int16", |x, y| stored(x, y) as i16),
        "Int16",
    );
    check(
        &write::<u32>(dir.path(), "uint32", |x, y| stored(x, y) as u32),
        "UInt32",
    );
    check(
        &write::<i32>(dir.path(), "int32", |x, y| stored(x, y) as i32),
        "Int32",
    );
    check(
        &write::<u64>(dir.path(), "uint64", |x, y| stored(x, y) as u64),
        "UInt64",
    );
    check(
        &write::<i64>(dir.path(), "int64", |x, y| stored(x, y) as i64),
        "Int64",
    );
    check(
        &write::<f32>(dir.path(), "float32", |x, y| stored(x, y) as f32),
        "Float32",
    );
    check(&write::<f64>(dir.path(), "float64", stored), "Float64");
}

#[test]
fn windows_outside_the_raster_are_refused() {
    let r = Raster::open(common::data(common::RGBN)).expect("rgbn");
    for w in [
        Window::new(500, 0, 16, 16),
        Window::new(0, 0, 0, 5),
        Window::new(0, 400, 1, 4),
    ] {
        let err = r.read(w, &["band1"]).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { what: "window", .. }),
            "{w}: {err:?}"
        );
    }
}

#[test]
fn metadata_of_the_real_scene() {
    let r = Raster::open(common::data(common::SCENE)).expect("scene");
    assert_eq!(r.size(), (2041, 1860));
    assert_eq!(r.band_count(), 3);
    assert_eq!(r.dtype(), DataType::UInt16);
    assert_eq!(
        r.geo_transform(),
        [717345.0, 30.0, 0.0, -2776995.0, 0.0, -30.0]
    );
    assert_eq!(r.epsg(), Some(32621));
    assert_eq!(r.block_size(), (256, 256));
    assert_eq!(r.driver(), "GTiff");
    assert_eq!(r.bounds(), (717345.0, -2832795.0, 778575.0, -2776995.0));
    let b = Raster::open(common::data(common::B3)).expect("band file");
    assert_eq!(b.band_count(), 1);
}
