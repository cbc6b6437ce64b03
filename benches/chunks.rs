//! Hot paths of chunked processing: chunk reads, the fused expression, the writer, the
//! per-chunk scheduling overhead and time reductions. `cargo bench --bench chunks`.
//!
//! Speed goals live here and in `make bench` (side by side with the Python peers), never
//! in tests.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rasterlab::prelude::*;

#[path = "../tests/common/cube.rs"]
#[allow(dead_code)]
mod cube;

const SCENE: &str = "data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF";

fn scene() -> Raster {
    Raster::open(SCENE)
        .and_then(|r| r.with_band_names(["blue", "green", "red"]))
        .expect("scene")
}

fn ndi(chunks: usize, threads: usize) -> LazyArray {
    scene()
        .norm_diff("green", "red")
        .and_then(|a| a.chunks(chunks))
        .expect("ndi")
        .nodata(0.0)
        .scale(1e-4)
        .threads(threads)
        .progress(ProgressMode::Silent)
}

/// Stored bytes of the two input bands: the throughput unit of the fused expression.
const NDI_BYTES: u64 = 2041 * 1860 * 2 * 2;

fn read(c: &mut Criterion) {
    let r = scene();
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(256 * 256 * 3 * 2));
    g.bench_function("window 256x256 x 3 bands", |b| {
        b.iter(|| black_box(r.read(Window::new(512, 512, 256, 256), &["blue", "green", "red"])))
    });
    g.finish();
}

fn fused(c: &mut Criterion) {
    let mut g = c.benchmark_group("fused ndi into memory");
    g.throughput(Throughput::Bytes(NDI_BYTES)).sample_size(10);
    for (chunks, threads) in [(256, 1), (256, 2), (64, 2)] {
        let a = ndi(chunks, threads);
        g.bench_function(format!("chunks {chunks}, {threads} thread(s)"), |b| {
            b.iter(|| black_box(a.compute().expect("compute")))
        });
    }
    g.finish();
}

fn writer(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("save ndi");
    g.throughput(Throughput::Bytes(NDI_BYTES)).sample_size(10);
    for compression in [Compression::None, Compression::Lzw, Compression::Zstd] {
        let a = ndi(256, 2);
        let path = dir.path().join(format!("ndi-{compression}.tif"));
        g.bench_function(format!("{compression}, 2 threads"), |b| {
            b.iter(|| black_box(a.save(&path).compress(compression).run().expect("save")))
        });
    }
    g.finish();
}

fn overhead(c: &mut Criterion) {
    // 515 x 403 in 5 x 5 chunks: 103 x 81 = 8,343 chunks of a few pixels each.
    let r = Raster::open("data/rgbn_20160101.tif").expect("rgbn");
    let a = r
        .band("band1")
        .and_then(|a| a.chunks(5))
        .expect("band")
        .threads(2)
        .progress(ProgressMode::Silent);
    let n = a
        .chunk_grid(&PoolPlan::detect().expect("plan"))
        .expect("grid")
        .len();
    let mut g = c.benchmark_group("per-chunk overhead");
    g.throughput(Throughput::Elements(n as u64)).sample_size(10);
    g.bench_function(format!("no-op over {n} chunks"), |b| {
        b.iter(|| black_box(a.map_blocks(|b| b.id).expect("map")))
    });
    g.finish();
}

fn reduction(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let nc = cube::write_netcdf(dir.path());
    let r = Raster::open(format!("NETCDF:\"{}\":rain", nc.display())).expect("cube");
    let a = r
        .band("rain")
        .expect("band")
        .resample(Period::Week)
        .mean()
        .std()
        .progress(ProgressMode::Silent);
    let mut g = c.benchmark_group("time reduction");
    g.bench_function("weekly mean then std (40 dates, 23 x 17)", |b| {
        b.iter(|| black_box(a.compute().expect("compute")))
    });
    // W6's cube, when `make bench` has generated it: the NetCDF slab read and the whole
    // reduction at full size.
    if let Ok(big) = Raster::open(format!("NETCDF:\"{BENCH_CUBE}\":rain")) {
        let (w, h) = big.size();
        let bytes = (w * h * big.n_times() * 4) as u64;
        g.throughput(Throughput::Bytes(bytes)).sample_size(10);
        let a = big
            .band("rain")
            .expect("band")
            .resample(Period::Week)
            .mean()
            .std()
            .threads(2)
            .progress(ProgressMode::Silent);
        g.bench_function(
            format!(
                "weekly mean then std ({} x {h} x {w} NetCDF, 2 threads)",
                big.n_times()
            ),
            |b| b.iter(|| black_box(a.compute().expect("compute"))),
        );
        g.throughput(Throughput::Bytes(bytes / h as u64 * 36));
        g.bench_function(format!("read one [{}, 36, {w}] slab", big.n_times()), |b| {
            b.iter(|| {
                black_box(
                    big.read_cube(Window::new(0, 100, w, 36), &["rain"])
                        .expect("read"),
                )
            })
        });
    } else {
        eprintln!(
            "time reduction: {BENCH_CUBE} is missing (make bench generates it); full-size cases skipped"
        );
    }
    g.finish();
}

/// W6's input, written by `bench/gen_data.py`.
const BENCH_CUBE: &str = "bench/data/cube.nc";

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    targets = read, fused, writer, overhead, reduction
}
criterion_main!(benches);
