//! Clustering benchmarks: k-means (k = 8) on the valid pixels of the Landsat scene, and
//! spectral clustering (Nystrom with 100 components, and exact) on the generated
//! 6157 x 303 rainfall cube. Short measurement times: each fit takes about a second.
//!
//! `cargo bench --bench cluster -- kmeans` runs the k-means group only; scikit-learn's numbers for the same work are in the
//! tests' output (`cargo test --test cluster -- --nocapture`).

#[path = "../tests/support/rainfall.rs"]
mod rainfall;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rasterlab::cluster::Algorithm;
use rasterlab::prelude::*;

fn landsat_samples() -> Samples {
    Raster::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
    ))
    .and_then(|r| r.with_band_names(["blue", "green", "red"]))
    .map(|r| r.with_nodata(Some(0.0)).with_scale(1e-4, 0.0))
    .and_then(|r| r.to_samples())
    .expect("Landsat samples")
}

fn kmeans(c: &mut Criterion) {
    let x = landsat_samples();
    let mut group = c.benchmark_group("kmeans_landsat");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("k8_kmeans++_2threads", |b| {
        b.iter(|| {
            KMeans::new(8)
                .seed(0)
                .threads(2)
                .progress(ProgressMode::Silent)
                .fit(&x)
                .expect("fit")
        })
    });
    // The hot loop: one Lloyd iteration (the assign kernel over all pixels, the sums per
    // cluster) is the difference of these two divided by 10; the first is mostly the
    // k-means++ initialisation (8 passes over the pixels). tol 0: no early stop.
    for iters in [1, 11] {
        group.bench_function(
            format!("k8_init_and_{iters}_lloyd_iterations_2threads"),
            |b| {
                b.iter(|| {
                    KMeans::new(8)
                        .seed(0)
                        .threads(2)
                        .max_iter(iters)
                        .tol(0.0)
                        .algorithm(Algorithm::Lloyd)
                        .progress(ProgressMode::Silent)
                        .fit(&x)
                        .expect("fit")
                })
            },
        );
    }
    group.bench_function("k8_minibatch_2threads", |b| {
        b.iter(|| {
            MiniBatchKMeans::new(8)
                .seed(0)
                .threads(2)
                .progress(ProgressMode::Silent)
                .fit(&x)
                .expect("fit")
        })
    });
    group.finish();
}

fn spectral(c: &mut Criterion) {
    let cube = rainfall::rainfall_cube(7);
    let mut group = c.benchmark_group("spectral_rainfall_6157x303");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("nystrom_100_2threads", |b| {
        b.iter(|| {
            SpectralClustering::new(8)
                .n_components(100)
                .seed(0)
                .threads(2)
                .progress(ProgressMode::Silent)
                .fit(&cube.samples)
                .expect("fit")
        })
    });
    group.bench_function("exact_2threads", |b| {
        b.iter(|| {
            SpectralClustering::new(8)
                .exact()
                .seed(0)
                .threads(2)
                .progress(ProgressMode::Silent)
                .fit(&cube.samples)
                .expect("fit")
        })
    });
    group.finish();
}

criterion_group!(benches, kmeans, spectral);
criterion_main!(benches);
