//! The fitted model: centroids, labels, prediction (arrays and rasters), its reprs.

use std::fmt;

use ndarray::Array2;
use rayon::prelude::*;

use super::kernel::assign;
use super::*;
use crate::cluster::samples::{LabelMap, SourceGrid};
use crate::cluster::{AsFeatures, FeatureView, check_finite, fmt_num};
use crate::core::fmt::html_table;
use crate::error::{Error, Result};
use crate::raster::Raster;

/// A fitted k-means model.
///
/// Renders as a small table in a notebook (`evcxr_display`) and as text with `{}`.
#[derive(Debug, Clone)]
pub struct KMeansModel {
    pub(super) centroids: Array2<f64>,
    pub(super) labels: Vec<i32>,
    pub(super) counts: Vec<usize>,
    pub(super) inertia: f64,
    pub(super) n_iter: usize,
    pub(super) converged: bool,
    pub(super) init: Init,
    pub(super) algorithm: Algorithm,
    pub(super) n_init: usize,
    pub(super) seed: u64,
    pub(super) threads: usize,
    pub(super) seconds: f64,
    pub(super) feature_names: Vec<String>,
}

impl KMeansModel {
    /// Assembles a model from its parts (used by mini-batch k-means).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        centroids: Array2<f64>,
        labels: Vec<i32>,
        counts: Vec<usize>,
        inertia: f64,
        n_iter: usize,
        converged: bool,
        seed: u64,
        feature_names: Vec<String>,
    ) -> KMeansModel {
        KMeansModel {
            centroids,
            labels,
            counts,
            inertia,
            n_iter,
            converged,
            init: Init::KMeansPlusPlus,
            algorithm: Algorithm::Lloyd,
            n_init: 1,
            seed,
            threads: 0,
            seconds: 0.0,
            feature_names,
        }
    }

    pub(crate) fn with_feature_names(mut self, names: Vec<String>) -> KMeansModel {
        if names.len() == self.centroids.ncols() {
            self.feature_names = names;
        }
        self
    }

    pub(crate) fn set_timing(&mut self, threads: usize, seconds: f64) {
        self.threads = threads;
        self.seconds = seconds;
    }

    /// Number of clusters.
    pub fn k(&self) -> usize {
        self.centroids.nrows()
    }

    /// The centroids, `k x features`, in the units of the fitted data.
    pub fn centroids(&self) -> &Array2<f64> {
        &self.centroids
    }

    /// The cluster (0..k) of every fitted sample, in sample order. Empty for models fitted
    /// by streaming a raster ([`MiniBatchKMeans::fit_raster`](crate::cluster::MiniBatchKMeans::fit_raster)).
    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Number of fitted samples in each cluster.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Sum of squared distances of the samples to their centroid (not square-rooted,
    /// as scikit-learn's `inertia_`).
    pub fn inertia(&self) -> f64 {
        self.inertia
    }

    /// Iterations of the best run (for mini-batch: passes over the data, rounded up).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// True when the best run stopped before `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Wall-clock seconds of the fit.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// Names of the features (band names for raster samples, `f0`, `f1` ... otherwise).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The nearest centroid of each row of `x`.
    ///
    /// Errors: a different number of features, or non-finite values.
    pub fn predict(&self, x: &(impl AsFeatures + ?Sized)) -> Result<Vec<i32>> {
        self.predict_view(x.features(), None)
    }

    pub(crate) fn predict_view(
        &self,
        x: FeatureView<'_>,
        threads: Option<usize>,
    ) -> Result<Vec<i32>> {
        let (n, d) = x.dim();
        if d != self.centroids.ncols() {
            return Err(Error::invalid(
                "features",
                format!(
                    "the model was fitted on {} features, got {d}",
                    self.centroids.ncols()
                ),
            ));
        }
        let mut labels = vec![-1i32; n];
        if n == 0 {
            return Ok(labels);
        }
        let pool = crate::cluster::plan(threads)?.build_pool()?;
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::invalid("centroids", "not contiguous"))?;
        match x {
            FeatureView::F32(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| {
                    check_finite(data)?;
                    assign(data, &Packed::new(cent, self.k(), d), &mut labels, false);
                    Ok::<_, Error>(())
                })?;
            }
            FeatureView::F64(a) => {
                let a = a.as_standard_layout();
                let data = data_of(&a)?;
                pool.install(|| {
                    check_finite(data)?;
                    assign(data, &Packed::new(cent, self.k(), d), &mut labels, false);
                    Ok::<_, Error>(())
                })?;
            }
        }
        Ok(labels)
    }

    /// Labels every pixel of `raster` (its bands `bands` as features, in the order the
    /// model was fitted), streaming full-width strips in parallel; pixels that are nodata
    /// in any band get -1. Use it for models fitted by
    /// [`MiniBatchKMeans::fit_raster`](crate::cluster::MiniBatchKMeans::fit_raster) or on a sample
    /// of the pixels.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0))
    ///     .with_scale(1e-4, 0.0);
    /// let x = Samples::from_window(&scene, &["green", "red"], Window::new(500, 500, 200, 200))?;
    /// let km = KMeans::new(3).fit(&x)?;
    /// let map = km.predict_raster(&scene, &["green", "red"])?;
    /// assert_eq!(map.valid_count(), 3_169_229);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn predict_raster(&self, raster: &Raster, bands: &[&str]) -> Result<LabelMap> {
        self.check_bands(raster, bands)?;
        let d = self.centroids.ncols();
        let plan = crate::cluster::plan(None)?;
        let (w, h) = raster.size();
        let needed = (w as u64) * (h as u64) * 4;
        if needed > plan.memory_budget() {
            return Err(Error::MemoryBudget {
                what: format!("the label map of {w} x {h} pixels"),
                needed,
                budget: plan.memory_budget(),
                hint: "KMeansModel::write_labels writes the labels to a file strip by strip \
                       instead"
                    .into(),
            });
        }
        crate::raster::limit_gdal_cache();
        let pool = plan.build_pool()?;
        let windows = crate::cluster::samples::strips(raster, d, plan.chunk_bytes() as usize);
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::invalid("centroids", "not contiguous"))?;
        let packed = Packed::<f32>::new(cent, self.k(), d);
        let mut map = vec![-1i32; w * h];
        pool.install(|| {
            let mut rest: &mut [i32] = &mut map;
            let mut parts = Vec::with_capacity(windows.len());
            for win in &windows {
                let (head, tail) = rest.split_at_mut(win.len());
                parts.push((*win, head));
                rest = tail;
            }
            parts.into_par_iter().try_for_each(|(win, out)| {
                let (vals, idx) = crate::cluster::samples::read_valid(raster, bands, win)?;
                let offset = win.y * w;
                for (row, p) in vals.chunks_exact(d).zip(idx) {
                    out[p - offset] = packed.nearest(row).0 as i32;
                }
                Ok::<_, Error>(())
            })
        })?;
        let labels = Array2::from_shape_vec((h, w), map)
            .map_err(|e| Error::invalid("label map", e.to_string()))?;
        LabelMap::new(labels, SourceGrid::of(raster))
    }

    /// `bands` name one band of `raster` per feature the model was fitted on.
    pub(crate) fn check_bands(&self, raster: &Raster, bands: &[&str]) -> Result<()> {
        let d = self.centroids.ncols();
        if bands.len() != d {
            return Err(Error::invalid(
                "bands",
                format!(
                    "the model was fitted on {d} features, {} bands given",
                    bands.len()
                ),
            ));
        }
        for b in bands {
            raster.band_index(b)?;
        }
        Ok(())
    }

    fn summary_rows(&self) -> Vec<(&'static str, String)> {
        let n: usize = self.counts.iter().sum();
        vec![
            ("k", self.k().to_string()),
            (
                "samples",
                format!("{n} x {} features", self.centroids.ncols()),
            ),
            ("inertia", fmt_num(self.inertia)),
            (
                "iterations",
                format!(
                    "{}{}",
                    self.n_iter,
                    if self.converged {
                        " (converged)"
                    } else {
                        " (max_iter reached)"
                    }
                ),
            ),
            (
                "init",
                format!("{} x {}, seed {}", self.init, self.n_init, self.seed),
            ),
            ("algorithm", self.algorithm.to_string()),
            (
                "time",
                format!("{:.3} s on {} thread(s)", self.seconds, self.threads),
            ),
        ]
    }

    fn centroid_table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["cluster".to_string(), "count".to_string()];
        header.extend(self.feature_names.iter().cloned());
        let rows = self
            .centroids
            .rows()
            .into_iter()
            .enumerate()
            .map(|(c, row)| {
                let mut r = vec![
                    c.to_string(),
                    self.counts.get(c).copied().unwrap_or(0).to_string(),
                ];
                r.extend(row.iter().map(|v| fmt_num(*v)));
                r
            })
            .collect();
        (header, rows)
    }

    /// The model as one HTML block: a summary table and the centroids.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = ndarray::array![[0.0], [1.0], [10.0], [11.0]];
    /// let html = KMeans::new(2).fit(&x)?.to_html();
    /// assert!(html.contains("inertia") && html.contains("centroids"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        let (header, rows) = self.centroid_table();
        format!(
            "<div>{}{}</div>",
            html_table("KMeansModel", &self.summary_rows()),
            crate::cluster::html_matrix("centroids", &header, &rows)
        )
    }
}

crate::core::fmt::html_repr!(KMeansModel);

impl fmt::Display for KMeansModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "KMeansModel")?;
        for (name, value) in self.summary_rows() {
            writeln!(f, "  {name:<11} {value}")?;
        }
        let (header, rows) = self.centroid_table();
        write_text_matrix(f, &header, &rows)
    }
}

/// Writes a right-aligned text table.
pub(crate) fn write_text_matrix(
    f: &mut fmt::Formatter<'_>,
    header: &[String],
    rows: &[Vec<String>],
) -> fmt::Result {
    let widths: Vec<usize> = (0..header.len())
        .map(|j| {
            rows.iter()
                .filter_map(|r| r.get(j).map(String::len))
                .chain([header[j].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(f, "  {}", line(header))?;
    for r in rows {
        writeln!(f, "  {}", line(r))?;
    }
    Ok(())
}
