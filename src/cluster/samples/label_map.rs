//! Labels on a raster grid: [`LabelMap`], built from one label per sample
//! ([`Samples::unstack`]) and saved as an Int16 GeoTIFF.

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{Samples, SourceGrid};
use crate::cluster::fmt_num;
use crate::core::fmt::html_table;
use crate::error::{Error, Result};
use crate::raster::write::{Compression, Layout, TiffSpec, TiffWriter};
use crate::runtime::grid::Window;

impl Samples {
    /// Puts one label per sample back on the source grid; pixels without a sample
    /// (nodata) get -1.
    ///
    /// Errors: no source grid (a plain matrix), or a label count that differs from the
    /// sample count.
    pub fn unstack(&self, labels: &[i32]) -> Result<LabelMap> {
        let (grid, indices) = match (&self.grid, &self.indices) {
            (Some(g), Some(i)) => (g, i),
            _ => {
                return Err(Error::invalid(
                    "unstack",
                    "these samples have no source grid (use Samples::with_grid)",
                ));
            }
        };
        if labels.len() != indices.len() {
            return Err(Error::invalid(
                "labels",
                format!("{} labels for {} samples", labels.len(), indices.len()),
            ));
        }
        let mut map = vec![-1i32; grid.width * grid.height];
        for (&p, &l) in indices.iter().zip(labels) {
            map[p] = l;
        }
        LabelMap::new(
            Array2::from_shape_vec((grid.height, grid.width), map)
                .map_err(|e| Error::invalid("label map", e.to_string()))?,
            grid.clone(),
        )
    }
}

/// Cluster labels on a raster grid: `-1` where the pixel had no sample (nodata).
///
/// ```
/// use rasterlab::prelude::*;
/// let scene = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
///     .with_nodata(Some(0.0));
/// let x = scene.to_samples()?;
/// let km = KMeans::new(2).max_iter(5).progress(ProgressMode::Silent).fit(&x)?;
/// let map = x.unstack(km.labels())?;
/// assert_eq!(map.size(), (2041, 1860));
/// assert_eq!(map.valid_count(), x.n_samples());
/// let out = std::env::temp_dir().join("rasterlab-doc-labels.tif");
/// map.save(&out)?;
/// # std::fs::remove_file(out).ok();
/// # Ok::<(), rasterlab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LabelMap {
    labels: Array2<i32>,
    grid: SourceGrid,
    counts: Vec<usize>,
    nodata: usize,
}

impl LabelMap {
    /// The most clusters a saved label map can tell apart: labels `0..MAX_LABELS` fit its
    /// Int16 type (-1 is nodata).
    pub const MAX_LABELS: usize = i16::MAX as usize + 1;

    /// Refuses a number of clusters `k` whose labels cannot all be stored in a saved map
    /// ([`Error::Invalid`] naming `k` and the range allowed). The estimators run it
    /// before fitting samples that carry a grid; a caller can run it even earlier,
    /// before reading any pixel.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// assert!(LabelMap::check_k(8).is_ok());
    /// let err = LabelMap::check_k(40_000).unwrap_err();
    /// assert!(err.to_string().contains("1 to 32768"), "{err}");
    /// ```
    pub fn check_k(k: usize) -> Result<()> {
        if (1..=Self::MAX_LABELS).contains(&k) {
            return Ok(());
        }
        let why = if k == 0 {
            "at least one cluster is needed".to_string()
        } else {
            format!("{k} clusters cannot all be labelled in an Int16 label map")
        };
        Err(Error::invalid(
            "k",
            format!("{why} (allowed: 1 to {})", Self::MAX_LABELS),
        ))
    }

    /// A label map from `(rows, cols)` labels (-1 for nodata) on `grid`.
    pub fn new(labels: Array2<i32>, grid: SourceGrid) -> Result<LabelMap> {
        if labels.dim() != (grid.height, grid.width) {
            return Err(Error::invalid(
                "label map",
                format!(
                    "{:?} labels for a {} x {} grid",
                    labels.dim(),
                    grid.width,
                    grid.height
                ),
            ));
        }
        let mut counts = Vec::new();
        let mut nodata = 0;
        for &l in &labels {
            if l < 0 {
                nodata += 1;
            } else {
                let l = l as usize;
                if l >= counts.len() {
                    counts.resize(l + 1, 0);
                }
                counts[l] += 1;
            }
        }
        Ok(LabelMap {
            labels,
            grid,
            counts,
            nodata,
        })
    }

    /// The labels, `(rows, cols)`; -1 is nodata.
    pub fn labels(&self) -> &Array2<i32> {
        &self.labels
    }

    /// `(width, height)` in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.grid.width, self.grid.height)
    }

    /// The grid and georeference.
    pub fn grid(&self) -> &SourceGrid {
        &self.grid
    }

    /// Label of pixel `(col, row)` (-1 for nodata), or `None` outside the grid.
    pub fn get(&self, col: usize, row: usize) -> Option<i32> {
        self.labels.get((row, col)).copied()
    }

    /// Number of labels (largest label + 1).
    pub fn n_labels(&self) -> usize {
        self.counts.len()
    }

    /// Pixels per label.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Pixels with a label.
    pub fn valid_count(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Pixels without a label (-1).
    pub fn nodata_count(&self) -> usize {
        self.nodata
    }

    /// Writes the map as a tiled, LZW-compressed GeoTIFF with the source's geotransform
    /// and CRS. Labels are stored as Int16 with nodata -1, through the same
    /// temp-file-and-rename writer as every rasterlab output.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        self.save_with(path, Compression::Lzw)
    }

    /// Like [`save`](LabelMap::save) with the tiles compressed by `compression`.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::cluster::SourceGrid;
    /// let grid = SourceGrid { width: 2, height: 1, geo_transform: [0.0, 1.0, 0.0, 1.0, 0.0, -1.0], crs_wkt: String::new(), sources: vec![] };
    /// let map = LabelMap::new(ndarray::array![[0, 1]], grid)?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let path = map.save_with(dir.path().join("labels.tif"), Compression::Deflate)?;
    /// let ds = gdal::Dataset::open(&path).expect("written");
    /// assert_eq!(ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE").as_deref(), Some("DEFLATE"));
    /// # use gdal::Metadata;
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn save_with(&self, path: impl AsRef<Path>, compression: Compression) -> Result<PathBuf> {
        self.save_with_layout(path, compression, Layout::Tiled)
    }

    /// Like [`save_with`](LabelMap::save_with), in `layout`: a Cloud-Optimized GeoTIFF
    /// with [`Layout::Cog`], whose overviews should keep labels whole:
    /// [`OverviewResampling::LABELS`] (mode) or nearest (average would blend labels into
    /// other, meaningless ones).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// use rasterlab::cluster::SourceGrid;
    /// use gdal::Metadata;
    /// let grid = SourceGrid { width: 600, height: 300, geo_transform: [0.0, 1.0, 0.0, 300.0, 0.0, -1.0], crs_wkt: String::new(), sources: vec![] };
    /// let labels = ndarray::Array2::from_shape_fn((300, 600), |(r, c)| ((r / 7 + c / 5) % 3) as i32);
    /// let map = LabelMap::new(labels, grid)?;
    /// let dir = tempfile::tempdir().expect("temp dir");
    /// let layout = Layout::cog(OverviewResampling::LABELS);
    /// let path = map.save_with_layout(dir.path().join("labels.tif"), Compression::Lzw, layout)?;
    /// let ds = gdal::Dataset::open(&path).expect("written");
    /// assert_eq!(ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(), Some("COG"));
    /// // 600 x 300 in 256-pixel tiles: 300 x 150 and 150 x 75
    /// assert_eq!(ds.rasterband(1).expect("band").overview_count().expect("count"), 2);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    ///
    /// [`OverviewResampling::LABELS`]: crate::raster::write::OverviewResampling::LABELS
    pub fn save_with_layout(
        &self,
        path: impl AsRef<Path>,
        compression: Compression,
        layout: Layout,
    ) -> Result<PathBuf> {
        let (w, h) = self.size();
        if let Some(&max) = self.labels.iter().max()
            && max > i32::from(i16::MAX)
        {
            return Err(Error::invalid(
                "labels",
                format!("label {max} does not fit the Int16 label map"),
            ));
        }
        let spec = TiffSpec {
            size: (w, h),
            bands: 1,
            dtype: crate::core::dtype::OutputType::Int16,
            geo_transform: self.grid.geo_transform,
            crs_wkt: self.grid.crs_wkt.clone(),
            nodata: Some(-1.0),
            compression,
            tile: (256, 256),
            threads: 2,
            band_names: vec!["label".into()],
        };
        crate::raster::output::check_distinct(&[path.as_ref()], &self.grid.sources)?;
        let mut writer = TiffWriter::create_with_layout(path.as_ref(), &spec, layout)?;
        for y in (0..h).step_by(256) {
            let win = Window::new(0, y, w, 256.min(h - y));
            let data: Vec<f32> = self
                .labels
                .slice(ndarray::s![y..y + win.height, ..])
                .iter()
                .map(|&l| l as f32)
                .collect();
            writer.write(1, win, data)?;
        }
        writer.finish()
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let (w, h) = self.size();
        let mut rows = vec![
            ("size", format!("{w} x {h} pixels")),
            ("labels", self.n_labels().to_string()),
            ("valid pixels", self.valid_count().to_string()),
            ("nodata pixels", format!("{} (label -1)", self.nodata)),
        ];
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(l, c)| format!("{l}: {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(("pixels per label", counts));
        let [x0, dx, _, y0, _, dy] = self.grid.geo_transform;
        rows.push((
            "origin / pixel",
            format!("({}, {}) / {} x {}", fmt_num(x0), fmt_num(y0), dx, dy.abs()),
        ));
        rows
    }

    /// The map's summary as an HTML table.
    pub fn to_html(&self) -> String {
        html_table("LabelMap", &self.rows())
    }
}

crate::core::fmt::html_repr!(LabelMap);

impl fmt::Display for LabelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "LabelMap")?;
        for (name, value) in self.rows() {
            writeln!(f, "  {name:<16} {value}")?;
        }
        Ok(())
    }
}
