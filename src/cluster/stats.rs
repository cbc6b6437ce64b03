//! Per-feature statistics shared by the estimators and [`Samples`](super::Samples).

use rayon::prelude::*;

use super::{CHUNK, Data, Real};

/// Per-feature mean and (population) variance, two passes, chunk-ordered sums.
pub(crate) fn column_stats<T: Real>(data: Data<'_, T>) -> (Vec<f64>, Vec<f64>) {
    let d = data.d;
    let sum = |f: &(dyn Fn(usize, &[T]) -> f64 + Sync)| -> Vec<f64> {
        let parts: Vec<Vec<f64>> = data
            .x
            .par_chunks(CHUNK * d)
            .map(|chunk| {
                let mut s = vec![0.0; d];
                for row in chunk.chunks_exact(d) {
                    for (j, acc) in s.iter_mut().enumerate() {
                        *acc += f(j, row);
                    }
                }
                s
            })
            .collect();
        parts.into_iter().fold(vec![0.0; d], |mut a, b| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            a
        })
    };
    let n = data.n.max(1) as f64;
    let mean: Vec<f64> = sum(&|j, row| row[j].as_f64())
        .into_iter()
        .map(|s| s / n)
        .collect();
    let var: Vec<f64> = sum(&|j, row| (row[j].as_f64() - mean[j]).powi(2))
        .into_iter()
        .map(|s| s / n)
        .collect();
    (mean, var)
}
