//! Clustering of raster pixels: samples <-> maps, k-means, mini-batch k-means, spectral
//! clustering and the metrics to judge them.
//!
//! One file per concept:
//!
//! | file | what |
//! |---|---|
//! | [`samples`] | [`Samples`] (valid pixels as a samples x features matrix, remembering where each came from) and [`LabelMap`] (labels back on the raster grid, saved as GeoTIFF) |
//! | [`kmeans`] | [`KMeans`]: k-means++ / k-means‖ initialisation, exact Lloyd iterations on a rayon pool |
//! | [`minibatch`] | [`MiniBatchKMeans`]: `partial_fit`, in-memory `fit`, and `fit_raster` streaming a raster chunk by chunk |
//! | [`spectral`] | [`SpectralClustering`]: RBF affinity, exact (scikit-learn's spectral embedding) or Nystrom (dask-ml), eigenvectors with `faer` |
//! | [`metrics`] | inertia, adjusted Rand index, sampled silhouette score |
//! | `raster_io` | [`KMeansModel::write_labels`]: labels of a raster larger than memory, streamed into a GeoTIFF |
//! | `stats` | per-feature mean and variance (standardizing, k-means tolerance) |
//! | `stream` | the valid pixels of a raster streamed through the executor (samples, predictions, mini-batches) |
//!
//! Every estimator is a builder validated when it is used (`KMeans::new(8).seed(0)` then
//! `.fit(&x)?`), runs on a [`Runtime`] (its own `.runtime(&rt)`, else the machine's,
//! with `.threads(n)` on top) whose pool lives for the call only (evcxr resets statics
//! in every notebook cell); predictions, samples and metrics take a runtime through
//! their `_in` variants (`predict_in`, `Samples::from_bands_in`, `inertia_in`, ...).
//! Rasters are streamed through the executor (memory permits, chunk-named errors, the
//! runtime's observer, per-worker GDAL handles). Every estimator is deterministic for a
//! given seed: work is split into fixed chunks
//! of samples whose partial results are reduced in order, so the result does not even
//! depend on the number of threads.
//!
//! ```
//! use rasterlab::prelude::*;
//! use ndarray::array;
//!
//! let x = Samples::from_array(array![[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]]);
//! let km = KMeans::new(2).seed(0).fit(&x)?;
//! assert_eq!(km.labels()[0], km.labels()[1]);
//! assert_ne!(km.labels()[0], km.labels()[2]);
//! # Ok::<(), rasterlab::Error>(())
//! ```

pub mod kmeans;
pub mod metrics;
pub mod minibatch;
mod raster_io;
pub mod samples;
#[cfg(feature = "spectral")]
pub mod spectral;
mod stats;
mod stream;

use ndarray::{Array2, ArrayView2};

pub(crate) use crate::core::rng::Rng;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

pub use kmeans::{Algorithm, Init, KMeans, KMeansModel};
pub use metrics::{
    adjusted_rand_index, inertia, inertia_in, silhouette_score, silhouette_score_in,
};
pub use minibatch::MiniBatchKMeans;
pub use raster_io::{MAX_LABEL_MAP_K, WriteLabels};
pub use samples::{LabelMap, Samples, Scaler, SourceGrid};
#[cfg(feature = "spectral")]
pub use spectral::{Gamma, SpectralClustering, SpectralMode, SpectralModel};

/// A borrowed samples x features matrix in `f32` or `f64`: what the estimators take.
///
/// You rarely name it: every `fit` accepts anything that implements [`AsFeatures`]
/// ([`Samples`], `Array2<f32>`, `Array2<f64>` and their views).
#[derive(Debug, Clone, Copy)]
pub enum FeatureView<'a> {
    /// Single precision (pixels read from rasters).
    F32(ArrayView2<'a, f32>),
    /// Double precision.
    F64(ArrayView2<'a, f64>),
}

impl FeatureView<'_> {
    /// `(samples, features)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            FeatureView::F32(a) => a.dim(),
            FeatureView::F64(a) => a.dim(),
        }
    }

    /// The matrix converted to a standard-layout `f64` array (a copy).
    pub fn to_f64(&self) -> Array2<f64> {
        match self {
            FeatureView::F32(a) => a.mapv(f64::from),
            FeatureView::F64(a) => a.as_standard_layout().into_owned(),
        }
    }
}

/// Anything the estimators can fit: [`Samples`], `Array2<f32>`, `Array2<f64>` and views.
///
/// ```
/// use rasterlab::cluster::AsFeatures;
/// let x = ndarray::Array2::<f32>::zeros((4, 2));
/// assert_eq!(x.features().dim(), (4, 2));
/// ```
pub trait AsFeatures {
    /// The matrix, samples in rows.
    fn features(&self) -> FeatureView<'_>;

    /// Names of the features, when known (band names for [`Samples`] from a raster).
    fn feature_names(&self) -> Option<Vec<String>> {
        None
    }

    /// True when the rows are pixels of a raster grid ([`Samples`] from a raster), so the
    /// labels are meant to go back onto a [`LabelMap`], whose Int16 type bounds `k`
    /// (see [`LabelMap::check_k`]): the estimators refuse a larger `k` before fitting.
    fn has_grid(&self) -> bool {
        false
    }
}

/// `k` against the label map when `x` will be unstacked to one: refused before fitting,
/// not after a long fit when the map is saved.
pub(crate) fn check_label_k(k: usize, x: &(impl AsFeatures + ?Sized)) -> Result<()> {
    if x.has_grid() {
        LabelMap::check_k(k)?;
    }
    Ok(())
}

impl AsFeatures for FeatureView<'_> {
    fn features(&self) -> FeatureView<'_> {
        match self {
            FeatureView::F32(a) => FeatureView::F32(a.view()),
            FeatureView::F64(a) => FeatureView::F64(a.view()),
        }
    }
}

impl AsFeatures for Array2<f64> {
    fn features(&self) -> FeatureView<'_> {
        FeatureView::F64(self.view())
    }
}

impl AsFeatures for Array2<f32> {
    fn features(&self) -> FeatureView<'_> {
        FeatureView::F32(self.view())
    }
}

impl AsFeatures for ArrayView2<'_, f64> {
    fn features(&self) -> FeatureView<'_> {
        FeatureView::F64(self.view())
    }
}

impl AsFeatures for ArrayView2<'_, f32> {
    fn features(&self) -> FeatureView<'_> {
        FeatureView::F32(self.view())
    }
}

/// A floating-point element the inner loops run on (`f32` or `f64`).
pub(crate) trait Real:
    num_traits::Float + Send + Sync + Copy + Default + std::fmt::Debug + 'static
{
    fn as_f64(self) -> f64;
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
}

/// A contiguous row-major samples x features matrix.
#[derive(Clone, Copy)]
pub(crate) struct Data<'a, T> {
    pub x: &'a [T],
    pub n: usize,
    pub d: usize,
}

impl<'a, T: Real> Data<'a, T> {
    #[inline(always)]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// Number of samples per work item in parallel passes. Fixed (not derived from the
/// thread count) so that partial sums, and hence results, are the same on any pool.
pub(crate) const CHUNK: usize = 8192;

/// Checks that every value is finite; the first offending one is the error.
pub(crate) fn check_finite<T: Real>(data: Data<'_, T>) -> Result<()> {
    use rayon::prelude::*;
    let first = data
        .x
        .par_chunks(CHUNK * data.d.max(1))
        .enumerate()
        .filter_map(|(c, chunk)| {
            chunk
                .iter()
                .position(|v| !v.is_finite())
                .map(|p| c * CHUNK * data.d + p)
        })
        .min();
    match first {
        Some(pos) => Err(Error::NonFinite {
            sample: pos / data.d,
            feature: pos % data.d,
            value: data.x[pos].as_f64(),
        }),
        None => Ok(()),
    }
}

/// Validates `k` against `n` samples: 0 is invalid, more than `n` is too few samples.
pub(crate) fn check_k(k: usize, n: usize, d: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid(
            "k",
            "the number of clusters must be at least 1",
        ));
    }
    if n == 0 {
        return Err(Error::NoValidSamples {
            reason: "the matrix has no row".into(),
        });
    }
    if d == 0 {
        return Err(Error::invalid("features", "the matrix has no column"));
    }
    if k > n {
        return Err(Error::TooFewSamples {
            what: "k",
            requested: k,
            available: n,
        });
    }
    Ok(())
}

/// The runtime of an estimator's call: the one it was given (or the machine's, detected
/// by [`Runtime::detect`]) with its own thread setting on top.
pub(crate) fn runtime(given: Option<&Runtime>, threads: Option<usize>) -> Result<Runtime> {
    given
        .map_or_else(Runtime::builder, Runtime::to_builder)
        .threads_opt(threads)
        .build()
}

/// Formats a float for tables: 6 significant digits, scientific when far from 1.
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.4e}")
    } else {
        let digits = 5 - a.log10().floor() as i32;
        format!("{v:.*}", digits.clamp(0, 8) as usize)
    }
}

/// An HTML table with a header row and numeric cells, for centroids and counts.
pub(crate) fn html_matrix(caption: &str, header: &[String], rows: &[Vec<String>]) -> String {
    use crate::core::fmt::escape_html;
    let mut html = format!(
        "<table class=\"rasterlab\" style=\"border-collapse:collapse;font-family:monospace\">\
         <caption style=\"text-align:left;font-weight:bold\">{}</caption><tr>",
        escape_html(caption)
    );
    for h in header {
        html.push_str(&format!(
            "<th style=\"text-align:right;padding:0 0.6em\">{}</th>",
            escape_html(h)
        ));
    }
    html.push_str("</tr>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!(
                "<td style=\"text-align:right;padding:0 0.6em\">{}</td>",
                escape_html(cell)
            ));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_check_names_the_value() {
        let x = [1.0f32, 2.0, 3.0, f32::NAN];
        let e = check_finite(Data { x: &x, n: 2, d: 2 }).unwrap_err();
        assert!(matches!(
            e,
            Error::NonFinite {
                sample: 1,
                feature: 1,
                ..
            }
        ));
    }

    #[test]
    fn numbers_format_compactly() {
        assert_eq!(fmt_num(2213.0352), "2213.04");
        assert_eq!(fmt_num(0.77110034), "0.771100");
        assert_eq!(fmt_num(1.5e-7), "1.5000e-7");
    }
}
