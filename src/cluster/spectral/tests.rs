//! Unit tests of spectral clustering.

use ndarray::Array2;

use super::affinity::*;
use super::*;
use crate::cluster::Rng;
use crate::error::Error;
use crate::runtime::progress::ProgressMode;

fn three_blobs() -> Array2<f64> {
    let mut rng = Rng::new(2);
    Array2::from_shape_fn((300, 3), |(i, _)| (i / 100) as f64 * 3.0 + rng.uniform())
}

#[test]
fn exact_and_nystrom_separate_blobs() {
    let x = three_blobs();
    for model in [
        SpectralClustering::new(3)
            .exact()
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap(),
        SpectralClustering::new(3)
            .n_components(50)
            .progress(ProgressMode::Silent)
            .fit(&x)
            .unwrap(),
    ] {
        let l = model.labels();
        for b in 0..3 {
            assert!(
                l[b * 100..(b + 1) * 100].iter().all(|&v| v == l[b * 100]),
                "{model}"
            );
        }
        assert_eq!(model.counts(), &[100, 100, 100]);
    }
}

#[test]
fn bad_input_is_typed() {
    let x = three_blobs();
    assert!(matches!(
        SpectralClustering::new(3).n_components(300).fit(&x),
        Err(Error::TooFewSamples {
            what: "n_components",
            ..
        })
    ));
    assert!(matches!(
        SpectralClustering::new(3).n_components(2).fit(&x),
        Err(Error::Invalid {
            what: "n_components",
            ..
        })
    ));
    assert!(matches!(
        SpectralClustering::new(3).gamma(Gamma::Value(-1.0)).fit(&x),
        Err(Error::Invalid { what: "gamma", .. })
    ));
    assert!(matches!(
        SpectralClustering::new(0).fit(&x),
        Err(Error::Invalid { what: "k", .. })
    ));
}

#[test]
fn scale_gamma_is_sklearn_rule() {
    // values 0, 2: var 1, d = 1
    assert_eq!(scale_gamma(&[0.0, 2.0], 1), 1.0);
    assert_eq!(scale_gamma(&[0.0, 2.0, 0.0, 2.0], 2), 0.5);
    assert_eq!(scale_gamma(&[3.0, 3.0], 1), 1.0);
}
