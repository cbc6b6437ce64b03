//! The fitted model: centroids, labels, prediction (arrays and rasters), its reprs.

use std::fmt;

use ndarray::Array2;

use super::kernel::assign;
use super::*;
use crate::cluster::samples::{LabelMap, SourceGrid};
use crate::cluster::stream::{PixelStream, Pixels};
use crate::cluster::{AsFeatures, FeatureView, check_finite, fmt_num};
use crate::core::fmt::html_table;
use crate::error::{Error, Result};
use crate::raster::Raster;
use crate::runtime::Runtime;

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

    /// The nearest centroid of each row of `x`, on the machine's runtime
    /// ([`Runtime::detect`]); see [`predict_in`](KMeansModel::predict_in).
    ///
    /// Errors: a different number of features, or non-finite values.
    pub fn predict(&self, x: &(impl AsFeatures + ?Sized)) -> Result<Vec<i32>> {
        self.predict_in(x, &Runtime::detect()?)
    }

    /// [`predict`](KMeansModel::predict) on `rt`'s threads.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let x = ndarray::array![[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]];
    /// let km = KMeans::new(2).progress(ProgressMode::Silent).fit(&x)?;
    /// let rt = Runtime::builder().threads(1).build()?;
    /// assert_eq!(km.predict_in(&x, &rt)?, km.labels());
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn predict_in(&self, x: &(impl AsFeatures + ?Sized), rt: &Runtime) -> Result<Vec<i32>> {
        match x.features() {
            FeatureView::F32(a) => self.predict_data(&a.as_standard_layout(), rt),
            FeatureView::F64(a) => self.predict_data(&a.as_standard_layout(), rt),
        }
    }

    fn predict_data<T: Real, S: ndarray::Data<Elem = T>>(
        &self,
        a: &ndarray::ArrayBase<S, ndarray::Ix2>,
        rt: &Runtime,
    ) -> Result<Vec<i32>> {
        let (n, d) = a.dim();
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
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::internal("centroids not contiguous"))?;
        let data = data_of(a)?;
        rt.install("predict", || {
            check_finite(data)?;
            assign(data, &Packed::new(cent, self.k(), d), &mut labels, false);
            Ok::<_, Error>(())
        })??;
        Ok(labels)
    }

    /// Labels every pixel of `raster` (its bands `bands` as features, in the order the
    /// model was fitted) on the machine's runtime; see
    /// [`predict_raster_in`](KMeansModel::predict_raster_in).
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
        self.predict_raster_in(raster, bands, &Runtime::detect()?)
    }

    /// [`predict_raster`](KMeansModel::predict_raster) on `rt`: the raster is streamed
    /// through the executor in full-width strips (per-worker GDAL handles, chunks in
    /// flight within `rt`'s memory budget, a failed read is an [`Error::Chunk`] naming its
    /// strip); pixels that are nodata in any band get -1. The label map itself (4 bytes
    /// per pixel) must fit the budget: [`write_labels`](KMeansModel::write_labels)
    /// streams the labels into a file instead. Use it for models fitted by
    /// [`MiniBatchKMeans::fit_raster`](crate::cluster::MiniBatchKMeans::fit_raster) or on
    /// a sample of the pixels.
    pub fn predict_raster_in(
        &self,
        raster: &Raster,
        bands: &[&str],
        rt: &Runtime,
    ) -> Result<LabelMap> {
        self.check_bands(raster, bands)?;
        let d = self.centroids.ncols();
        let (w, h) = raster.size();
        let needed = (w as u64) * (h as u64) * 4;
        if needed > rt.memory_budget() {
            return Err(Error::MemoryBudget {
                what: format!("the label map of {w} x {h} pixels"),
                needed,
                budget: rt.memory_budget(),
                hint: "KMeansModel::write_labels writes the labels to a file strip by strip \
                       instead"
                    .into(),
            });
        }
        let cent = self.centroids.as_standard_layout();
        let cent = cent
            .as_slice()
            .ok_or_else(|| Error::internal("centroids not contiguous"))?;
        let packed = Packed::<f32>::new(cent, self.k(), d);
        let mut map = vec![-1i32; w * h];
        // In flight per pixel besides the stream's own: a label.
        let stream = PixelStream::strips(rt, raster, bands, 4)?;
        let nearest = |_, px: Pixels| {
            let labels = px
                .values
                .chunks_exact(d)
                .map(|row| packed.nearest(row).0 as i32);
            Ok(px.indices.iter().copied().zip(labels).collect::<Vec<_>>())
        };
        let label = "predict_raster";
        stream.run(
            rt,
            label,
            stream.windows(),
            false,
            nearest,
            |_, _, labelled| {
                for (p, l) in labelled {
                    map[p] = l;
                }
                Ok(())
            },
        )?;
        let labels = Array2::from_shape_vec((h, w), map)
            .map_err(|e| Error::internal(format!("label map: {e}")))?;
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
