//! Notebook representations of rasters, lazy arrays and save reports (xarray-like: a
//! header with the dimensions, a table of attributes, a band table and a chunk diagram),
//! and the `show()` quick-looks of rasters and lazy arrays.

use super::histogram::Histogram;
use super::image::{Colormap, Image, MAX_SIDE, show_array_with, show_rgb};
use super::{escape_html, human_bytes};
use crate::array::{LazyArray, SaveReport};
use crate::error::Result;
use crate::raster::Raster;
use crate::runtime::grid::ChunkGrid;
use crate::runtime::resources::PoolPlan;

const STYLE: &str = "font-family:monospace;font-size:12px;border-collapse:collapse";

/// The frame shared by every repr: a bold type name, the dimensions, attribute rows,
/// optional extra HTML (band table) and an optional diagram on the right.
fn frame(kind: &str, dims: &str, rows: &[(&str, String)], extra: &str, diagram: &str) -> String {
    let mut html = format!(
        "<div class=\"rasterlab-repr\" style=\"display:flex;gap:24px;align-items:flex-start\"><div>\
         <div style=\"font-family:monospace;margin-bottom:4px\"><b>{}</b> {}</div>\
         <table style=\"{STYLE}\">",
        escape_html(kind),
        escape_html(dims)
    );
    for (name, value) in rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:1px 12px 1px 0;vertical-align:top\">{}</th>\
             <td style=\"text-align:left\">{}</td></tr>",
            escape_html(name),
            escape_html(value)
        ));
    }
    html.push_str("</table>");
    html.push_str(extra);
    html.push_str("</div>");
    html.push_str(diagram);
    html.push_str("</div>");
    html
}

/// A dask-like diagram of the chunk grid: the raster's outline with chunk boundaries.
fn chunk_diagram(grid: &ChunkGrid) -> String {
    let (w, h) = grid.raster_size();
    let (cw, ch) = grid.chunk_size();
    let scale = 160.0 / w.max(h) as f64;
    let (sw, sh) = (w as f64 * scale, h as f64 * scale);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\">",
        sw + 2.0,
        sh + 2.0
    );
    svg.push_str(&format!(
        "<rect x=\"1\" y=\"1\" width=\"{sw:.1}\" height=\"{sh:.1}\" fill=\"#ECB172\" fill-opacity=\"0.6\" stroke=\"#333\"/>"
    ));
    let (nx, ny) = grid.shape();
    // Too many lines would be a solid block: draw every k-th boundary.
    let every = |n: usize| n.div_ceil(40).max(1);
    for i in (1..nx).step_by(every(nx)) {
        let x = 1.0 + (i * cw) as f64 * scale;
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"1\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\" stroke-width=\"0.5\"/>",
            sh + 1.0
        ));
    }
    for j in (1..ny).step_by(every(ny)) {
        let y = 1.0 + (j * ch) as f64 * scale;
        svg.push_str(&format!(
            "<line x1=\"1\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#333\" stroke-width=\"0.5\"/>",
            sw + 1.0
        ));
    }
    svg.push_str("</svg>");
    format!(
        "<div style=\"font-family:monospace;font-size:11px;text-align:center\">{svg}<br>{nx} x {ny} chunks</div>"
    )
}

fn bounds_text(r: &Raster) -> String {
    let (xmin, ymin, xmax, ymax) = r.bounds();
    format!("x {xmin} .. {xmax}, y {ymin} .. {ymax}")
}

fn pixel_text(r: &Raster) -> String {
    let gt = r.geo_transform();
    format!("{} x {}", gt[1], gt[5].abs())
}

/// The chunk grid a computation on this machine would use, and how it was chosen.
fn raster_grid(r: &Raster, bytes_per_pixel: usize) -> Option<(ChunkGrid, &'static str)> {
    let how = if r.chunk_size().is_some() {
        "set by .chunks()"
    } else {
        "auto: block-aligned, sized by this machine's PoolPlan"
    };
    let plan = PoolPlan::detect().ok()?;
    r.chunk_grid(&plan, bytes_per_pixel).ok().map(|g| (g, how))
}

fn grid_rows(rows: &mut Vec<(&str, String)>, grid: Option<&(ChunkGrid, &str)>, bpp: usize) {
    match grid {
        Some((g, how)) => {
            let (cw, ch) = g.chunk_size();
            rows.push(("chunks", format!("{g} ({how})")));
            rows.push(("chunk bytes", human_bytes((cw * ch * bpp) as u64)));
        }
        None => rows.push(("chunks", "chosen when computed".into())),
    }
}

impl Raster {
    /// An xarray-like HTML summary: dimensions, data type, chunk grid and chunk bytes,
    /// CRS, bounds, pixel size, nodata, total size, a band table and a chunk diagram.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?.chunks(256)?;
    /// let html = r.to_html();
    /// assert!(html.contains("band: 3, y: 1860, x: 2041"));
    /// assert!(html.contains("EPSG:32621"));
    /// assert!(html.contains("64 chunks (8 x 8) of 256 x 256 px"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        let (w, h) = self.size();
        let nt = self.n_times();
        // The bands of one time step (a time stack repeats them at every date).
        let step = &self.bands()[..self.band_count()];
        let bpp: usize = nt * step.iter().map(|b| b.dtype.bytes() as usize).sum::<usize>();
        let grid = raster_grid(self, bpp);
        let mut rows = vec![
            ("dtype", format!("{} ({})", self.dtype(), self.driver())),
            ("size", human_bytes(self.nbytes())),
        ];
        let times = self.times();
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            let mut time = format!("{nt} step(s), {first} .. {last}");
            if let Some(note) = self.calendar().note() {
                time.push_str(&format!(" ({note})"));
            }
            rows.push(("time", time));
        }
        grid_rows(&mut rows, grid.as_ref(), bpp);
        let (bw, bh) = self.block_size();
        rows.push(("blocks", format!("{bw} x {bh} px")));
        rows.push(("crs", self.crs_name()));
        rows.push(("bounds", bounds_text(self)));
        rows.push(("pixel size", pixel_text(self)));
        rows.push((
            "nodata",
            self.nodata()
                .map_or_else(|| "none".into(), |v| v.to_string()),
        ));
        if let Some(a) = self.alignment() {
            rows.push((
                "aligned",
                format!("onto {} ({})", a.reference(), a.resampling()),
            ));
        }
        let mut bands = format!(
            "<table style=\"{STYLE};margin-top:6px\"><tr><th>#</th><th>name</th><th>dtype</th>\
             <th>nodata</th><th>scale</th><th>offset</th><th style=\"text-align:left\">source</th></tr>"
        );
        // Which files are read through a warp onto the grid (aligned stacks only).
        let warped = |p: &std::path::Path| {
            self.alignment()
                .is_some_and(|a| a.warped().iter().any(|w| w == p))
        };
        for (i, b) in step.iter().enumerate() {
            bands.push_str(&format!(
                "<tr><td>{i}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td style=\"text-align:left\">{}:{}</td></tr>",
                escape_html(&b.name),
                b.dtype,
                b.nodata.map_or_else(|| "-".into(), |v| v.to_string()),
                b.scale,
                b.offset,
                escape_html(&b.path.display().to_string()),
                b.index
            ));
            if warped(&b.path) {
                bands.truncate(bands.len() - "</td></tr>".len());
                bands.push_str(" <i>(warped)</i></td></tr>");
            }
        }
        if let Some(a) = self.alignment()
            && nt > 1
        {
            // A time stack shows the bands of one step: list the warped files of all.
            let files: Vec<String> = a.warped().iter().map(|p| p.display().to_string()).collect();
            bands.push_str(&format!(
                "<tr><td colspan=\"7\" style=\"text-align:left\">warped: {}</td></tr>",
                escape_html(
                    if files.is_empty() {
                        "none".into()
                    } else {
                        files.join(", ")
                    }
                    .as_str()
                )
            ));
        }
        bands.push_str("</table>");
        let dims = if times.is_empty() {
            format!("(band: {}, y: {h}, x: {w})", self.band_count())
        } else {
            format!("(time: {nt}, band: {}, y: {h}, x: {w})", self.band_count())
        };
        let diagram = grid
            .as_ref()
            .map(|(g, _)| chunk_diagram(g))
            .unwrap_or_default();
        frame("rasterlab.Raster", &dims, &rows, &bands, &diagram)
    }

    /// A quick-look: red/green/blue composite when the raster has bands named `red`,
    /// `green` and `blue`, the first three bands as RGB when it has at least three, else
    /// the first band with viridis. Read decimated to at most 800 px per side.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?
    ///     .with_nodata(Some(0.0));
    /// let img = r.show()?;
    /// assert_eq!(img.size(), (800, 729));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn show(&self) -> Result<Image> {
        let names = self.band_names();
        if ["red", "green", "blue"].iter().all(|n| names.contains(n)) {
            self.show_rgb("red", "green", "blue")
        } else if names.len() >= 3 {
            let (r, g, b) = (
                names[0].to_string(),
                names[1].to_string(),
                names[2].to_string(),
            );
            self.show_rgb(&r, &g, &b)
        } else {
            let first = names[0].to_string();
            self.show_band(&first)
        }
    }

    /// One band with viridis, a 2-98 % percentile stretch and a colour bar.
    pub fn show_band(&self, band: &str) -> Result<Image> {
        self.show_band_with(band, Colormap::Viridis, None)
    }

    /// One band with `cmap` over `range` (default: 2-98 % percentiles).
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?;
    /// let img = r.show_band_with("band3", Colormap::Magma, Some((0.0, 20000.0)))?;
    /// assert!(img.to_html().contains("magma"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn show_band_with(
        &self,
        band: &str,
        cmap: Colormap,
        range: Option<(f32, f32)>,
    ) -> Result<Image> {
        let a = self.read_decimated(&[band], MAX_SIDE)?;
        let band2 = a.index_axis_move(ndarray::Axis(0), 0);
        Ok(self.quicklook_notes(show_array_with(&band2, cmap, range).title(band)))
    }

    /// An RGB composite of three named bands, each stretched from its 2nd to 98th
    /// percentile; nodata is transparent.
    pub fn show_rgb(&self, r: &str, g: &str, b: &str) -> Result<Image> {
        let a = self.read_decimated(&[r, g, b], MAX_SIDE)?;
        let bands: Vec<_> = a.outer_iter().map(|v| v.to_owned()).collect();
        let img = show_rgb([&bands[0], &bands[1], &bands[2]], [r, g, b])?;
        Ok(self.quicklook_notes(img.title(format!("{r} / {g} / {b}"))))
    }

    /// Histograms of every band (of the first date of a time stack) in `bins` bins over a
    /// common range, from the raster read decimated like [`Raster::show`] (at most 800 px
    /// per side): a quick look at the value distribution, not an exact count.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/rgbn_20160101.tif")?.with_band_names(["red", "green", "blue", "nir"])?;
    /// let h = r.histogram(64)?;
    /// assert_eq!(h.series().len(), 4);
    /// assert_eq!(h.series()[3].counts.iter().sum::<u64>() + h.series()[3].missing, 515 * 403);
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn histogram(&self, bins: usize) -> Result<Histogram> {
        let names = self.band_names();
        let a = self.read_decimated(&names, MAX_SIDE)?;
        let rows: Vec<Vec<f32>> = a
            .outer_iter()
            .map(|b| b.iter().copied().collect())
            .collect();
        let (w, h) = self.size();
        let (_, ph, pw) = a.dim();
        let mut hist = Histogram::new(
            bins,
            None,
            names.iter().copied().zip(rows.iter().map(|r| r.as_slice())),
        )
        .title(format!("Histogram of {}", names.join(", ")));
        if (pw, ph) != (w, h) {
            hist = hist.note(format!("{w} x {h} px read decimated to {pw} x {ph}: the counts are of those {} pixels, not of every pixel", pw * ph));
        }
        Ok(hist)
    }

    fn quicklook_notes(&self, img: Image) -> Image {
        let (w, h) = self.size();
        let (iw, ih) = img.size();
        let img = if (iw, ih) != (w, h) {
            img.note(format!("{w} x {h} px read decimated to {iw} x {ih}"))
        } else {
            img
        };
        img.note(format!("{} - {}", self.crs_name(), bounds_text(self)))
    }
}

crate::core::fmt::html_repr!(Raster);

impl LazyArray {
    /// An xarray-like HTML summary: the expression, dimensions, chunk grid and chunk
    /// bytes, source, CRS, bounds and total size. Nothing is computed.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let html = r.norm_diff("green", "red")?.chunks(512)?.to_html();
    /// assert!(html.contains("norm_diff(green, red)"));
    /// assert!(html.contains("16 chunks"));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn to_html(&self) -> String {
        let (w, h) = self.size();
        let r = self.raster();
        let grid = raster_grid(r, 4);
        let nb = self.n_bands().unwrap_or(1);
        let mut rows = vec![
            ("expression", self.describe()),
            ("dtype", "float32 (nodata NaN)".to_string()),
            ("size", human_bytes((nb * w * h * 4) as u64)),
        ];
        if let Ok(names) = self.band_names()
            && names.len() > 1
        {
            let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
            let more = if names.len() > 6 {
                format!(", ... ({} in all)", names.len())
            } else {
                String::new()
            };
            rows.push(("bands", format!("{}{more}", shown.join(", "))));
        }
        grid_rows(&mut rows, grid.as_ref(), 4);
        let mut sources: Vec<String> = r
            .bands()
            .iter()
            .map(|b| b.path.display().to_string())
            .collect();
        sources.dedup();
        rows.push(("source", sources.join(", ")));
        rows.push(("crs", r.crs_name()));
        rows.push(("bounds", bounds_text(r)));
        rows.push(("pixel size", pixel_text(r)));
        rows.push((
            "state",
            "lazy: nothing read yet (.compute(), .save(path).run(), .show())".into(),
        ));
        let diagram = grid
            .as_ref()
            .map(|(g, _)| chunk_diagram(g))
            .unwrap_or_default();
        frame(
            "rasterlab.LazyArray",
            &if nb > 1 {
                format!("(band: {nb}, y: {h}, x: {w})")
            } else {
                format!("(y: {h}, x: {w})")
            },
            &rows,
            "",
            &diagram,
        )
    }

    /// A quick-look of the result with viridis and a colour bar, computed from decimated
    /// inputs (at most 800 px per side), so it is fast even for large rasters.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let img = r.norm_diff("green", "red")?.nodata(0.0).show()?;
    /// assert_eq!(img.size(), (800, 729));
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn show(&self) -> Result<Image> {
        self.show_with(Colormap::Viridis, None)
    }

    /// Histograms of every band of the result in `bins` bins, computed from decimated
    /// inputs like [`LazyArray::show`]: a quick look at the distribution.
    ///
    /// ```
    /// use rasterlab::prelude::*;
    /// let r = Raster::open("data/LC08_L1TP_224078_20200518_20200518_01_RT.TIF")?
    ///     .with_band_names(["blue", "green", "red"])?;
    /// let h = r.norm_diff("green", "red")?.nodata(0.0).histogram(50)?;
    /// let (lo, hi) = h.range();
    /// assert!(-1.0 <= lo && hi <= 1.0);
    /// assert!(h.series()[0].missing > 0); // the nodata corners
    /// # Ok::<(), rasterlab::Error>(())
    /// ```
    pub fn histogram(&self, bins: usize) -> Result<Histogram> {
        let a = self.preview(MAX_SIDE)?;
        let names = self.band_names()?;
        let rows: Vec<Vec<f32>> = a
            .outer_iter()
            .map(|b| b.iter().copied().collect())
            .collect();
        let (w, h) = self.size();
        let (_, ph, pw) = a.dim();
        let mut hist = Histogram::new(
            bins,
            None,
            names
                .iter()
                .map(String::as_str)
                .zip(rows.iter().map(|r| r.as_slice())),
        )
        .title(format!("Histogram of {}", self.describe()));
        if (pw, ph) != (w, h) {
            hist = hist.note(format!(
                "{w} x {h} px computed from inputs read decimated to {pw} x {ph}: the counts are of those {} pixels, not of every pixel", pw * ph
            ));
        }
        Ok(hist)
    }

    /// A quick-look with `cmap` over `range` (default: 2-98 % percentiles).
    pub fn show_with(&self, cmap: Colormap, range: Option<(f32, f32)>) -> Result<Image> {
        // The first band of the result (one variable at one date or statistic).
        let a = self.preview(MAX_SIDE)?.index_axis_move(ndarray::Axis(0), 0);
        let (w, h) = self.size();
        let (pw, ph) = (a.dim().1, a.dim().0);
        let title = self
            .band_names()
            .ok()
            .and_then(|n| n.into_iter().next())
            .unwrap_or_else(|| self.describe());
        let mut img = show_array_with(&a, cmap, range).title(title);
        if (pw, ph) != (w, h) {
            img = img.note(format!(
                "{w} x {h} px computed from inputs read decimated to {pw} x {ph}: the counts are of those {} pixels, not of every pixel", pw * ph
            ));
        }
        Ok(img)
    }
}

crate::core::fmt::html_repr!(LazyArray);

impl SaveReport {
    /// An HTML table: output, expression, chunks, threads, time, throughput, file size.
    pub fn to_html(&self) -> String {
        let (w, h) = self.grid.raster_size();
        let rows = vec![
            ("output", self.path.display().to_string()),
            ("expression", self.expression.clone()),
            ("chunks", self.grid.to_string()),
            ("threads", self.threads.to_string()),
            (
                "time",
                format!(
                    "{:.3} s (chunks {:.3} s, finishing the file {:.3} s)",
                    self.elapsed.as_secs_f64(),
                    self.chunks_elapsed.as_secs_f64(),
                    self.elapsed
                        .saturating_sub(self.chunks_elapsed)
                        .as_secs_f64()
                ),
            ),
            (
                "speed",
                format!("{:.1} MB/s of input pixels", self.mb_per_s()),
            ),
            (
                "file",
                format!(
                    "{} band(s), {} ({} compressed, {})",
                    self.bands,
                    human_bytes(self.file_bytes),
                    self.compression,
                    self.dtype
                ),
            ),
        ];
        frame(
            "rasterlab.SaveReport",
            &format!("(band: {}, y: {h}, x: {w})", self.bands),
            &rows,
            "",
            "",
        )
    }
}

crate::core::fmt::html_repr!(SaveReport);
