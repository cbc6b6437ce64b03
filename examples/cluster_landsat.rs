//! k-means (k = 8) on the valid pixels of the sample Landsat scene, timed, with the label
//! map written next to the scene's name in the temp folder.
//!
//! `cargo run --release --example cluster_landsat -- [threads] [lloyd|hamerly|auto] [kmeans++|kmeans||]`

use std::time::Instant;

use rasterlab::cluster::Algorithm;
use rasterlab::prelude::*;

fn main() -> rasterlab::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let algorithm = match args.get(2).map(String::as_str) {
        Some("lloyd") => Algorithm::Lloyd,
        Some("hamerly") => Algorithm::Hamerly,
        _ => Algorithm::Auto,
    };
    let init = match args.get(3).map(String::as_str) {
        Some("kmeans||") => Init::KMeansParallel,
        _ => Init::KMeansPlusPlus,
    };
    let t = Instant::now();
    let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
        .with_band_names(["blue", "green", "red"])?
        .with_nodata(Some(0.0))
        .with_scale(1e-4, 0.0);
    let x = scene.to_samples()?;
    println!(
        "{} samples read in {:.3} s",
        x.n_samples(),
        t.elapsed().as_secs_f64()
    );
    for seed in 0..3 {
        let cpu0 = cpu_seconds();
        let km = KMeans::new(8)
            .seed(seed)
            .threads(threads)
            .algorithm(algorithm)
            .init(init)
            .progress(ProgressMode::Silent)
            .fit(&x)?;
        println!(
            "seed {seed}: inertia {:.4} iterations {} in {:.3} s wall, {:.2} s cpu",
            km.inertia(),
            km.n_iter(),
            km.seconds(),
            cpu_seconds() - cpu0,
        );
        if seed == 0 {
            println!("{km}");
        }
    }
    Ok(())
}

/// User + system CPU seconds of this process (Linux), to compare runs on a busy machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // fields after the command name start at field 3 (state); utime is 14, stime 15
    (ticks(11) + ticks(12)) / 100.0
}
