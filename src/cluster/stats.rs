//! Per-feature statistics shared by the estimators and [`Samples`](super::Samples).

use rayon::prelude::*;

use super::{CHUNK, Data, Real};

/// Per-feature mean and (population) variance, two passes, chunk-ordered sums.
pub(crate) fn column_stats<T: Real>(data: Data<'_, T>) -> (Vec<f64>, Vec<f64>) {
    let n = data.n.max(1) as f64;
    let mean: Vec<f64> = column_sums(data, |_, v| v)
        .into_iter()
        .map(|s| s / n)
        .collect();
    let var: Vec<f64> = column_sums(data, |j, v| (v - mean[j]).powi(2))
        .into_iter()
        .map(|s| s / n)
        .collect();
    (mean, var)
}

/// Per-column sums of `f(column, value)`, chunk by chunk in sample order, the chunks
/// added in order (the same result on any number of threads). Generic rather than a
/// `dyn Fn`: an indirect call per value made the two passes of [`column_stats`] cost more
/// than a k-means iteration.
fn column_sums<T: Real>(data: Data<'_, T>, f: impl Fn(usize, f64) -> f64 + Sync) -> Vec<f64> {
    let d = data.d;
    let parts: Vec<Vec<f64>> = data
        .x
        .par_chunks(CHUNK * d)
        .map(|chunk| match d {
            1 => chunk_sums::<T, 1>(chunk, &f).to_vec(),
            2 => chunk_sums::<T, 2>(chunk, &f).to_vec(),
            3 => chunk_sums::<T, 3>(chunk, &f).to_vec(),
            4 => chunk_sums::<T, 4>(chunk, &f).to_vec(),
            _ => {
                let mut s = vec![0.0; d];
                for row in chunk.chunks_exact(d) {
                    for (j, acc) in s.iter_mut().enumerate() {
                        *acc += f(j, row[j].as_f64());
                    }
                }
                s
            }
        })
        .collect();
    parts.into_iter().fold(vec![0.0; d], |mut a, b| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    })
}

/// The column sums of one chunk with `D` columns known at compile time: the sums stay in
/// registers (through memory, each add waits for the previous store).
#[inline(always)]
fn chunk_sums<T: Real, const D: usize>(chunk: &[T], f: &impl Fn(usize, f64) -> f64) -> [f64; D] {
    let mut s = [0.0; D];
    for row in chunk.chunks_exact(D) {
        for j in 0..D {
            s[j] += f(j, row[j].as_f64());
        }
    }
    s
}
