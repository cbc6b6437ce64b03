//! Standardized samples: each feature scaled to zero mean and unit variance, with the
//! [`Scaler`] that maps results back to the original units.

use ndarray::Array2;
use rayon::prelude::*;

use super::{Samples, Values};
use crate::cluster::{Data, Real};
use crate::error::Result;
use crate::runtime::Runtime;

/// Per-feature mean and standard deviation used by [`Samples::standardize`].
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaler {
    /// Feature means.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Feature standard deviations (population; 1 for constant features, as
    /// scikit-learn's `StandardScaler`).
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// `(x - mean) / std`, row by row.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j]) / self.std[j];
            }
        }
        out
    }

    /// Back to the original units, e.g. for centroids fitted on standardized samples.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = Samples::from_array(ndarray::array![[1.0, 10.0], [3.0, 30.0]]).standardize()?;
    /// let s = x.scaler().unwrap();
    /// assert_eq!(s.inverse_transform(&x.to_f64()), ndarray::array![[1.0, 10.0], [3.0, 30.0]]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn inverse_transform(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * self.std[j] + self.mean[j];
            }
        }
        out
    }
}
impl Samples {
    /// Each feature scaled to zero mean and unit variance (constant features keep scale
    /// 1), on the machine's runtime ([`Runtime::detect`]); see
    /// [`standardize_in`](Samples::standardize_in).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = Samples::from_array(ndarray::array![[1.0, 5.0], [3.0, 5.0]]).standardize()?;
    /// assert_eq!(x.to_f64(), ndarray::array![[-1.0, 0.0], [1.0, 0.0]]);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn standardize(self) -> Result<Samples> {
        self.standardize_in(&Runtime::detect()?)
    }

    /// [`standardize`](Samples::standardize) with the parallel passes on `rt`'s pool
    /// (never rayon's global pool). The [`Scaler`] is kept
    /// ([`scaler`](Samples::scaler)) to map centroids back.
    pub fn standardize_in(mut self, rt: &Runtime) -> Result<Samples> {
        let (mean, var) = rt.install("standardize: statistics", || match &self.values {
            Values::F32(a) => crate::cluster::stats::column_stats(view_data(a)),
            Values::F64(a) => crate::cluster::stats::column_stats(view_data(a)),
        })?;
        let std: Vec<f64> = var
            .iter()
            .map(|&v| {
                if v > 0.0 && v.is_finite() {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let d = std.len().max(1);
        let (values, mean_ref, std_ref) = (&mut self.values, &mean, &std);
        rt.install("standardize: scaling", || match values {
            Values::F32(a) => {
                if let Some(x) = a.as_slice_mut() {
                    x.par_chunks_mut(d).for_each(|row| {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = ((f64::from(*v) - mean_ref[j]) / std_ref[j]) as f32;
                        }
                    });
                }
            }
            Values::F64(a) => {
                if let Some(x) = a.as_slice_mut() {
                    x.par_chunks_mut(d).for_each(|row| {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = (*v - mean_ref[j]) / std_ref[j];
                        }
                    });
                }
            }
        })?;
        self.scaler = Some(Scaler { mean, std });
        Ok(self)
    }
}

fn view_data<T: Real>(a: &Array2<T>) -> Data<'_, T> {
    let (n, d) = a.dim();
    match a.as_slice() {
        Some(x) => Data { x, n, d },
        // Samples always hold standard-layout arrays
        None => Data { x: &[], n: 0, d },
    }
}
