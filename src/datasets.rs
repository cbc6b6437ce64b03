//! Generated data sets for teaching and tests, like scikit-learn's `make_blobs`.
//!
//! [`rainfall_cube`] builds a rainfall-like cube of 303 days x 47 x 131 pixels with 8 known
//! regions (the EarthML seed's shape). Each region has a smooth seasonal regime (mean daily
//! rainfall following a yearly cycle with its own level and phase), modulated smoothly in
//! space; daily values are gamma distributed. Deterministic for a seed (its own splitmix64
//! stream, independent of the generator the clustering uses).
//!
//! ```
//! let cube = rasterlab::datasets::rainfall_cube(7);
//! assert_eq!(cube.samples.dim(), (47 * 131, 303));
//! assert_eq!(cube.truth.len(), 47 * 131);
//! ```

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use ndarray::Array2;

use crate::core::dtype::OutputType;
use crate::core::rng::SplitMix64;
use crate::core::window::Window;
use crate::error::{Error, Result};
use crate::raster::write::{Compression, TiffSpec, TiffWriter};

/// Days in the cube.
pub const DAYS: usize = 303;
/// Rows of the grid.
pub const ROWS: usize = 47;
/// Columns of the grid.
pub const COLS: usize = 131;
/// Known regions.
pub const REGIONS: usize = 8;
/// Shape of the daily gamma noise (coefficient of variation 1 / sqrt(SHAPE)).
pub const SHAPE: f64 = 3.0;

/// The cube as samples x features (pixels in row-major order x days) and the region of
/// every pixel.
pub struct RainfallCube {
    /// Pixels (row-major) x days, mm/day.
    pub samples: Array2<f64>,
    /// The region (0..8) of every pixel.
    pub truth: Vec<i32>,
}

struct Gen(SplitMix64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (boosted for shape < 1).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// Centres of the 8 regions (row, col); pixels belong to the nearest centre in a gently
/// warped coordinate system, so borders are curved.
const CENTRES: [(f64, f64); REGIONS] = [
    (10.0, 14.0),
    (36.0, 22.0),
    (12.0, 48.0),
    (36.0, 58.0),
    (23.0, 80.0),
    (9.0, 104.0),
    (37.0, 100.0),
    (22.0, 124.0),
];

/// The region of pixel `(row, col)`.
pub fn region_of(row: usize, col: usize) -> usize {
    let (r, c) = (row as f64, col as f64);
    let (wr, wc) = (r + 3.0 * (c / 11.0).sin(), c + 4.0 * (r / 7.0).cos());
    let mut best = (f64::INFINITY, 0);
    for (i, &(cr, cc)) in CENTRES.iter().enumerate() {
        let dist = (wr - cr).powi(2) + (wc - cc).powi(2);
        if dist < best.0 {
            best = (dist, i);
        }
    }
    best.1
}

/// Mean rainfall (mm/day) and wet-day probability of region `r` on `day`.
pub fn regime(r: usize, day: usize) -> (f64, f64) {
    let level = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5][r];
    let phase = [0.0, 200.0, 90.0, 290.0, 150.0, 30.0, 250.0, 120.0][r];
    let season = (2.0 * std::f64::consts::PI * (day as f64 - phase) / 365.0).cos();
    let mean = level * (1.0 + 0.6 * season);
    let wet = 0.45 + 0.25 * season;
    (mean, wet)
}

/// The cube for `seed`.
pub fn rainfall_cube(seed: u64) -> RainfallCube {
    let mut g = Gen(SplitMix64(seed));
    let n = ROWS * COLS;
    let mut samples = Array2::zeros((n, DAYS));
    let mut truth = Vec::with_capacity(n);
    for row in 0..ROWS {
        for col in 0..COLS {
            let p = row * COLS + col;
            let r = region_of(row, col);
            truth.push(r as i32);
            // smooth spatial modulation of the intensity, +-10 %
            let m = 1.0 + 0.1 * (col as f64 / 20.0).sin() * (row as f64 / 15.0).cos();
            for day in 0..DAYS {
                let (mean, _) = regime(r, day);
                samples[[p, day]] = g.gamma(SHAPE) * m * mean / SHAPE;
            }
        }
    }
    RainfallCube { samples, truth }
}

/// Where the generated cube lies: a 0.25 degree grid in WGS 84 (like gridded rainfall
/// products), upper-left corner at 57 W, 20 S.
pub const GEO_TRANSFORM: [f64; 6] = [-57.0, 0.25, 0.0, -20.0, 0.0, -0.25];

impl RainfallCube {
    /// Writes one Float32 GeoTIFF per day, `rain_YYYYMMDD.tif` in `dir` from `start`, on
    /// [`GEO_TRANSFORM`] in EPSG:4326, so that the cube opens as a time stack with
    /// `Raster::open_glob`.
    pub fn write_geotiffs(&self, dir: impl AsRef<Path>, start: NaiveDate) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let crs_wkt = gdal::spatial_ref::SpatialRef::from_epsg(4326)
            .and_then(|s| s.to_wkt())
            .map_err(Error::gdal("building the EPSG:4326 CRS"))?;
        let days = self.samples.ncols();
        (0..days)
            .map(|day| {
                let date = start
                    .checked_add_days(Days::new(day as u64))
                    .ok_or_else(|| Error::invalid("start date", format!("{start} + {day} days")))?;
                let path = dir.join(format!("rain_{}.tif", date.format("%Y%m%d")));
                let spec = TiffSpec {
                    size: (COLS, ROWS),
                    bands: 1,
                    dtype: OutputType::Float32,
                    geo_transform: GEO_TRANSFORM,
                    crs_wkt: crs_wkt.clone(),
                    nodata: None,
                    compression: Compression::None,
                    tile: (256, 256),
                    threads: 1,
                    band_names: vec!["rain".into()],
                };
                let mut writer = TiffWriter::create(&path, &spec)?;
                let values: Vec<f32> = self.samples.column(day).iter().map(|&v| v as f32).collect();
                writer.write(1, Window::new(0, 0, COLS, ROWS), values)?;
                writer.finish()
            })
            .collect()
    }
}
