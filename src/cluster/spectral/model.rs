//! The fitted spectral clustering: labels, counts, timings and its reprs.

use std::fmt;

use ndarray::Array2;

use super::*;
use crate::cluster::fmt_num;
use crate::core::fmt::html_table;

/// A fitted spectral clustering.
#[derive(Debug, Clone)]
pub struct SpectralModel {
    pub(super) labels: Vec<i32>,
    pub(super) counts: Vec<usize>,
    pub(super) embedding: Array2<f64>,
    pub(super) eigenvalues: Vec<f64>,
    pub(super) gamma: f64,
    pub(super) mode: SpectralMode,
    pub(super) n_components: usize,
    pub(super) kmeans_inertia: f64,
    pub(super) kmeans_iter: usize,
    pub(super) seconds: f64,
    pub(super) threads: usize,
}

impl SpectralModel {
    /// The cluster of every sample.
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Samples per cluster.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// The spectral embedding that k-means clustered, `n x k`.
    pub fn embedding(&self) -> &Array2<f64> {
        &self.embedding
    }

    /// Exact: the `k` smallest eigenvalues of the normalized Laplacian. Nystrom: the `k`
    /// largest singular values of the normalized landmark affinity.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// The RBF coefficient used.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Exact or Nystrom.
    pub fn mode(&self) -> SpectralMode {
        self.mode
    }

    /// Inertia of the k-means fit in the embedding.
    pub fn inertia(&self) -> f64 {
        self.kmeans_inertia
    }

    /// Iterations of the k-means fit in the embedding.
    pub fn n_iter(&self) -> usize {
        self.kmeans_iter
    }

    /// Wall-clock seconds of the fit.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let mode = match self.mode {
            SpectralMode::Exact => "exact (full affinity)".to_string(),
            SpectralMode::Nystrom => format!("nystrom, {} components", self.n_components),
        };
        vec![
            ("k", self.counts.len().to_string()),
            ("samples", self.labels.len().to_string()),
            ("mode", mode),
            ("gamma", fmt_num(self.gamma)),
            (
                "eigenvalues",
                self.eigenvalues
                    .iter()
                    .map(|v| fmt_num(*v))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "counts",
                self.counts
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "k-means",
                format!(
                    "inertia {} in the embedding, {} iterations",
                    fmt_num(self.kmeans_inertia),
                    self.kmeans_iter
                ),
            ),
            (
                "time",
                format!("{:.3} s on {} thread(s)", self.seconds, self.threads),
            ),
        ]
    }

    /// The model as an HTML table.
    pub fn to_html(&self) -> String {
        html_table("SpectralModel", &self.rows())
    }
}

crate::core::fmt::html_repr!(SpectralModel);

impl fmt::Display for SpectralModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "SpectralModel")?;
        for (name, value) in self.rows() {
            writeln!(f, "  {name:<12} {value}")?;
        }
        Ok(())
    }
}
