//! The exact spectral embedding (scikit-learn's): the normalized affinity's top
//! eigenvectors from faer's partial eigensolver.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::matrix_free::eigen::{
    PartialEigenParams, partial_self_adjoint_eigen, partial_self_adjoint_eigen_scratch,
};
use faer::{Mat, Par};
use ndarray::Array2;

use super::affinity::*;
use crate::cluster::Rng;
use crate::error::{Error, Result};
use crate::runtime::progress::Progress;

/// scikit-learn's spectral embedding of the full RBF affinity, `n x k`.
pub(super) fn exact_embedding(
    x: &[f64],
    n: usize,
    d: usize,
    gamma: f64,
    k: usize,
    seed: u64,
    prog: &mut Progress,
) -> Result<(Array2<f64>, Vec<f64>)> {
    prog.message("affinity matrix");
    let (op, dd) = normalized_affinity(x, n, d, gamma);
    prog.inc(1);
    prog.message("eigenvectors");
    let mut rng = Rng::new(seed ^ 0x5eed_e16e);
    let v0: Vec<f64> = (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let v0 = faer::ColRef::from_slice(&v0);
    let mut vecs = Mat::<f64>::zeros(n, k);
    let mut vals = vec![0.0f64; k];
    let params = PartialEigenParams {
        max_restarts: 1000,
        ..Default::default()
    };
    let req = partial_self_adjoint_eigen_scratch(&op, k, Par::Seq, params);
    let mut buf = MemBuffer::new(req);
    let info = partial_self_adjoint_eigen(
        vecs.as_mut(),
        &mut vals,
        &op,
        v0,
        1e-10,
        Par::Seq,
        MemStack::new(&mut buf),
        params,
    );
    clear_avx_state();
    if info.n_converged_eigen < k {
        return Err(Error::invalid(
            "eigensolver",
            format!(
                "only {} of {k} eigenvectors converged; try Gamma::Scale or a larger gamma",
                info.n_converged_eigen
            ),
        ));
    }
    prog.inc(1);
    let mut emb = Array2::zeros((n, k));
    for c in 0..k {
        for i in 0..n {
            emb[[i, c]] = vecs[(i, c)] / dd[i];
        }
    }
    sign_flip(&mut emb);
    // eigenvalues of the normalized Laplacian: 1 - (lambda - 1)
    let eig = vals.iter().map(|v| 2.0 - v).collect();
    Ok((emb, eig))
}

/// scikit-learn's `_deterministic_vector_sign_flip`: the largest-magnitude entry of each
/// eigenvector is made positive.
pub(super) fn sign_flip(emb: &mut Array2<f64>) {
    for mut col in emb.columns_mut() {
        let mut arg = 0;
        for (i, v) in col.iter().enumerate() {
            if v.abs() > col[arg].abs() {
                arg = i;
            }
        }
        if col[arg] < 0.0 {
            col.mapv_inplace(|v| -v);
        }
    }
}
