//! Unit tests of the k-means internals (the public behaviour is tested in tests/cluster.rs).

use ndarray::Array2;

use super::*;
use crate::cluster::Rng;
use crate::error::Error;
use crate::runtime::progress::ProgressMode;

fn blobs(n_per: usize, centers: &[[f64; 2]], seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    let mut x = Array2::zeros((n_per * centers.len(), 2));
    for (c, center) in centers.iter().enumerate() {
        for i in 0..n_per {
            for j in 0..2 {
                x[[c * n_per + i, j]] = center[j] + rng.uniform() - 0.5;
            }
        }
    }
    x
}

const CENTERS: [[f64; 2]; 4] = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];

#[test]
fn finds_well_separated_blobs_with_every_init_and_algorithm() {
    let x = blobs(200, &CENTERS, 3);
    for init in [Init::KMeansPlusPlus, Init::KMeansParallel] {
        for alg in [Algorithm::Lloyd, Algorithm::Hamerly] {
            let m = KMeans::new(4)
                .init(init)
                .algorithm(alg)
                .n_init(3)
                .progress(ProgressMode::Silent)
                .fit(&x)
                .unwrap();
            for c in 0..4 {
                let l = m.labels()[c * 200];
                assert!(m.labels()[c * 200..(c + 1) * 200].iter().all(|&v| v == l));
            }
            assert_eq!(m.counts(), &[200, 200, 200, 200]);
            // uniform noise in [-0.5, 0.5]^2: variance 1/12 per coordinate
            assert!(
                (m.inertia() / 800.0 - 2.0 / 12.0).abs() < 0.02,
                "{}",
                m.inertia()
            );
        }
    }
}

#[test]
fn lloyd_and_hamerly_agree_and_threads_do_not_matter() {
    let x = blobs(
        5000,
        &[[0.0, 0.0], [1.0, 0.2], [0.3, 1.1], [2.0, 2.0], [1.5, 0.5]],
        9,
    );
    let fit = |alg, t| {
        KMeans::new(5)
            .algorithm(alg)
            .threads(t)
            .tol(0.0)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap()
    };
    let a = fit(Algorithm::Lloyd, 1);
    let b = fit(Algorithm::Lloyd, 2);
    let c = fit(Algorithm::Hamerly, 2);
    assert_eq!(a.labels(), b.labels());
    assert_eq!(a.inertia(), b.inertia());
    assert_eq!(a.centroids(), b.centroids());
    assert_eq!(a.labels(), c.labels());
    assert!((a.inertia() - c.inertia()).abs() < 1e-9 * a.inertia());
}

#[test]
fn f32_and_f64_agree() {
    let x = blobs(300, &CENTERS, 5);
    let x32 = x.mapv(|v| v as f32);
    let a = KMeans::new(4)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .unwrap();
    let b = KMeans::new(4)
        .progress(ProgressMode::Silent)
        .fit(&x32)
        .unwrap();
    assert_eq!(a.labels(), b.labels());
    assert!((a.inertia() - b.inertia()).abs() < 1e-4 * a.inertia());
}

#[test]
fn empty_clusters_are_reseeded() {
    // duplicated points: k-means++ draws duplicate centers, leaving clusters empty
    let mut x = Array2::zeros((20, 1));
    for i in 10..20 {
        x[[i, 0]] = 1.0;
    }
    x[[19, 0]] = 5.0;
    let m = KMeans::new(3)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .unwrap();
    let mut counts = m.counts().to_vec();
    counts.sort();
    assert_eq!(counts, vec![1, 9, 10]);
    assert!(m.inertia() < 1e-12);
}

#[test]
fn bad_parameters_are_errors() {
    let x = blobs(10, &CENTERS, 1);
    assert!(matches!(
        KMeans::new(0).fit(&x),
        Err(Error::Invalid { what: "k", .. })
    ));
    assert!(matches!(
        KMeans::new(41).fit(&x),
        Err(Error::TooFewSamples {
            what: "k",
            requested: 41,
            available: 40
        })
    ));
    assert!(matches!(
        KMeans::new(2).n_init(0).fit(&x),
        Err(Error::Invalid { what: "n_init", .. })
    ));
    assert!(matches!(
        KMeans::new(2).tol(f64::NAN).fit(&x),
        Err(Error::Invalid { what: "tol", .. })
    ));
    assert!(matches!(
        KMeans::new(2).threads(0).fit(&x),
        Err(Error::Invalid { .. })
    ));
    let m = KMeans::new(2)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .unwrap();
    assert!(m.predict(&Array2::<f64>::zeros((3, 3))).is_err());
    assert!(m.to_string().contains("inertia"));
}

/// The valid pixels of the bundled Landsat scene (3,169,229 x 3, f32 reflectance).
fn landsat_pixels() -> Array2<f32> {
    let scene = crate::raster::Raster::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
    ))
    .map(|r| r.with_nodata(Some(0.0)).with_scale(1e-4, 0.0))
    .and_then(|r| r.to_samples())
    .unwrap();
    scene.as_f32().unwrap().clone()
}

/// The assignment a plain loop makes: squared distances in `T`, summed in feature order,
/// the first nearest centroid on ties; sums, counts and inertia in f64 in sample order.
fn plain_assign<T: crate::cluster::Real>(
    x: &[T],
    d: usize,
    centroids: &[f64],
) -> (Vec<i32>, Vec<f64>, Vec<f64>, f64) {
    let k = centroids.len() / d;
    let cen: Vec<T> = centroids.iter().map(|&v| T::of(v)).collect();
    let (mut labels, mut sums, mut counts, mut inertia) =
        (Vec::new(), vec![0.0; k * d], vec![0.0; k], 0.0);
    for row in x.chunks_exact(d) {
        let mut best = (0, T::infinity());
        for c in 0..k {
            let mut acc = T::zero();
            for j in 0..d {
                let t = row[j] - cen[c * d + j];
                acc = acc + t * t;
            }
            if acc < best.1 {
                best = (c, acc);
            }
        }
        labels.push(best.0 as i32);
        counts[best.0] += 1.0;
        inertia += best.1.as_f64();
        for j in 0..d {
            sums[best.0 * d + j] += row[j].as_f64();
        }
    }
    (labels, sums, counts, inertia)
}

/// Equal up to the order of the f64 additions: sums over ~450,000 positive terms, whose
/// rounding error is bounded by n x 1.1e-16 = 5e-11 relative.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * a.abs().max(b.abs()).max(1e-300)
}

/// The assignment kernel (samples across SIMD lanes, AVX2 when the CPU has it) against
/// the plain loop on real data: identical labels and counts, sums and inertia equal up to
/// the order of the f64 additions (the kernel adds in four interleaved partial sums). For 1 to 3 features, k below, at and above one vector
/// of centroids, f32 and f64.
#[test]
fn assign_kernel_matches_a_plain_loop_on_landsat() {
    use super::kernel::assign;
    use crate::cluster::Data;
    let px = landsat_pixels();
    // every 7th pixel keeps the test quick and the chunk tails ragged
    let sub: Vec<usize> = (0..px.nrows()).step_by(7).collect();
    for d in 1..=3 {
        let x32: Vec<f32> = sub
            .iter()
            .flat_map(|&i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| px[[i, j]])
            .collect();
        let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        let n = sub.len();
        for k in [3, 8, 13] {
            let data = Data { x: &x32[..], n, d };
            let cent = kmeans_plusplus(data, k, None, &mut Rng::new(k as u64));
            let (pl, ps, pc, pi) = plain_assign(&x32, d, &cent);
            let mut labels = vec![-1i32; n];
            let part = assign(data, &Packed::new(&cent, k, d), &mut labels, true);
            assert_eq!(labels, pl, "f32 labels, d {d}, k {k}");
            assert_eq!(part.counts, pc, "f32 counts, d {d}, k {k}");
            assert_eq!(part.changed, n);
            assert!(close(part.inertia, pi), "{} vs {pi}", part.inertia);
            for (a, b) in part.sums.iter().zip(&ps) {
                assert!(close(*a, *b), "sum {a} vs {b}");
            }
            // a second pass with the same centroids changes nothing
            let again = assign(data, &Packed::new(&cent, k, d), &mut labels, false);
            assert_eq!(again.changed, 0);
            assert_eq!(again.counts, pc);

            let data = Data { x: &x64[..], n, d };
            let (pl, _, pc, pi) = plain_assign(&x64, d, &cent);
            let mut labels = vec![-1i32; n];
            let part = assign(data, &Packed::new(&cent, k, d), &mut labels, true);
            assert_eq!(labels, pl, "f64 labels, d {d}, k {k}");
            assert_eq!(part.counts, pc);
            assert!(close(part.inertia, pi), "{} vs {pi}", part.inertia);
        }
    }
}

/// The run-time dispatch (AVX2 where the CPU has it) gives bit for bit what the portable
/// build of the same kernel gives, chunk by chunk.
#[test]
fn simd_dispatch_matches_the_portable_build() {
    use super::kernel::{Partial, assign_chunk, assign_fixed};
    let px = landsat_pixels();
    let x = px.as_slice().unwrap();
    let data = crate::cluster::Data {
        x,
        n: px.nrows(),
        d: 3,
    };
    let cent = kmeans_plusplus(data, 8, None, &mut Rng::new(1));
    let packed = Packed::<f32>::new(&cent, 8, 3);
    // a whole chunk and a ragged one
    for (start, len) in [(0, crate::cluster::CHUNK), (123_457, 4_099)] {
        let rows = &x[start * 3..(start + len) * 3];
        let (mut la, mut lb) = (vec![-1i32; len], vec![-1i32; len]);
        let (mut a, mut b) = (Partial::new(8, 3, true), Partial::new(8, 3, true));
        assign_chunk::<f32, 3, 4>(rows, &packed, &mut la, &mut a);
        assign_fixed::<f32, 3, 4>(rows, &packed, &mut lb, &mut b);
        assert_eq!(la, lb);
        assert_eq!(a.sums, b.sums);
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.inertia.to_bits(), b.inertia.to_bits());
    }
}

/// Greedy k-means++ as a plain loop (scikit-learn's `_kmeans_plusplus`): one cumulative
/// sum over all samples per round, every candidate's potential in sample order.
fn plain_kmeans_plusplus(x: &[f32], d: usize, k: usize, rng: &mut Rng) -> Vec<f64> {
    let n = x.len() / d;
    let dist = |i: usize, p: &[f64]| -> f64 {
        (0..d)
            .map(|j| (f64::from(x[i * d + j]) - p[j]).powi(2))
            .sum()
    };
    let row = |i: usize| -> Vec<f64> { (0..d).map(|j| f64::from(x[i * d + j])).collect() };
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = row(rng.below(n));
    let mut closest: Vec<f64> = (0..n).map(|i| dist(i, &centers)).collect();
    let mut pot: f64 = closest.iter().sum();
    for _ in 1..k {
        let mut cumsum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for &v in &closest {
            acc += v;
            cumsum.push(acc);
        }
        let cands: Vec<Vec<f64>> = (0..trials)
            .map(|_| {
                let r = rng.uniform() * pot;
                row(cumsum.partition_point(|&c| c < r).min(n - 1))
            })
            .collect();
        let pots: Vec<f64> = cands
            .iter()
            .map(|c| (0..n).map(|i| dist(i, c).min(closest[i])).sum())
            .collect();
        let best = (1..trials).fold(0, |b, t| if pots[t] < pots[b] { t } else { b });
        pot = pots[best];
        for (i, cl) in closest.iter_mut().enumerate() {
            *cl = cl.min(dist(i, &cands[best]));
        }
        centers.extend_from_slice(&cands[best]);
    }
    centers
}

/// The one-pass k-means++ (per-chunk sums for the draws, candidates in vector lanes)
/// picks the same centres as the plain loop: its cumulative sums differ only in rounding,
/// its potentials not at all.
#[test]
fn kmeans_plusplus_matches_the_plain_loop_on_landsat() {
    let px = landsat_pixels();
    let x = px.as_slice().unwrap();
    let data = crate::cluster::Data {
        x,
        n: px.nrows(),
        d: 3,
    };
    for (seed, k) in [(0, 8), (1, 8), (2, 5), (3, 30)] {
        let ours = kmeans_plusplus(data, k, None, &mut Rng::new(seed));
        let plain = plain_kmeans_plusplus(x, 3, k, &mut Rng::new(seed));
        assert_eq!(ours, plain, "seed {seed}, k {k}");
    }
}
