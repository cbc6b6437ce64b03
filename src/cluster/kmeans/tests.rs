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
