//! A generated rainfall-like cube for clustering tests and benches: 303 days x 47 x 131
//! pixels with 8 known regions. Each region has a smooth seasonal regime (mean daily
//! rainfall and wet-day probability following a yearly cycle with its own level and
//! phase), modulated smoothly in space; daily values are zero on dry days and gamma
//! distributed on wet days (shape 0.8), the usual model of daily rainfall. Deterministic
//! for a seed (its own small generator, independent of rasterlab's).

#![allow(dead_code)]

use ndarray::Array2;

pub const DAYS: usize = 303;
pub const ROWS: usize = 47;
pub const COLS: usize = 131;
pub const REGIONS: usize = 8;
/// Shape of the daily gamma noise (coefficient of variation 1 / sqrt(SHAPE)).
pub const SHAPE: f64 = 3.0;

/// The cube as samples x features (pixels in row-major order x days) and the region of
/// every pixel.
pub struct RainfallCube {
    pub samples: Array2<f64>,
    pub truth: Vec<i32>,
}

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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

pub fn rainfall_cube(seed: u64) -> RainfallCube {
    let mut g = Gen(seed);
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
