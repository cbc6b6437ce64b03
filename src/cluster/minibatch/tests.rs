use ndarray::Array2;

use super::MiniBatchKMeans;
use crate::cluster::Rng;
use crate::error::Error;
use crate::runtime::progress::ProgressMode;

fn blobs() -> Array2<f64> {
    let mut rng = Rng::new(4);
    Array2::from_shape_fn((6000, 2), |(i, _)| (i % 3) as f64 * 5.0 + rng.uniform())
}

#[test]
fn minibatch_finds_blobs_and_is_deterministic() {
    let x = blobs();
    let a = MiniBatchKMeans::new(3)
        .batch_size(200)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .unwrap();
    let b = MiniBatchKMeans::new(3)
        .batch_size(200)
        .progress(ProgressMode::Silent)
        .fit(&x)
        .unwrap();
    assert_eq!(a.counts(), &[2000, 2000, 2000]);
    assert_eq!(a.centroids(), b.centroids());
    // each blob is uniform on a unit square: variance 1/12 per coordinate
    assert!(
        (a.inertia() / 6000.0 - 2.0 / 12.0).abs() < 0.01,
        "{}",
        a.inertia()
    );
}

#[test]
fn partial_fit_checks_its_input() {
    let x = blobs();
    let mut mb = MiniBatchKMeans::new(3);
    assert!(mb.to_model().is_none());
    mb.partial_fit(&Array2::<f64>::zeros((0, 2))).unwrap();
    assert!(matches!(
        mb.partial_fit(&x.slice(ndarray::s![..2, ..])),
        Err(Error::TooFewSamples { .. })
    ));
    mb.partial_fit(&x.slice(ndarray::s![..600, ..])).unwrap();
    assert!(mb.partial_fit(&Array2::<f64>::zeros((5, 3))).is_err());
    let mut bad = x.slice(ndarray::s![..10, ..]).to_owned();
    bad[[3, 1]] = f64::NAN;
    assert!(matches!(
        mb.partial_fit(&bad),
        Err(Error::NonFinite {
            sample: 3,
            feature: 1,
            ..
        })
    ));
    assert_eq!(mb.n_steps(), 1);
    let m = mb.to_model().unwrap();
    assert_eq!(m.k(), 3);
    assert!(matches!(
        MiniBatchKMeans::new(0).fit(&x),
        Err(Error::Invalid { what: "k", .. })
    ));
}
