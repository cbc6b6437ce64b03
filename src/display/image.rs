//! Quick-look images: colour maps, percentile stretches, label maps, PNG encoding.
//!
//! Pixels are coloured here and encoded as PNG with the `png` crate; every text (title,
//! colour bar, legend) is HTML around the image, so nothing needs a font.

use std::fmt;
use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::{base64, emit, escape_html};
use crate::error::{Error, Result};

/// Longest side of a quick-look by default; larger inputs are decimated (nearest).
pub(crate) const MAX_SIDE: usize = 800;

/// Continuous colour maps for single-band quick-looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Colormap {
    /// Perceptually uniform dark blue -> green -> yellow (matplotlib's default).
    #[default]
    Viridis,
    /// Black -> white.
    Gray,
    /// Diverging red -> yellow -> green, for indices such as NDVI.
    RdYlGn,
    /// Black -> purple -> orange -> light yellow.
    Magma,
}

impl Colormap {
    fn stops(self) -> &'static [[u8; 3]] {
        match self {
            Colormap::Viridis => &[
                [68, 1, 84],
                [72, 40, 120],
                [62, 73, 137],
                [49, 104, 142],
                [38, 130, 142],
                [31, 158, 137],
                [53, 183, 121],
                [110, 206, 88],
                [181, 222, 43],
                [253, 231, 37],
            ],
            Colormap::Gray => &[[0, 0, 0], [255, 255, 255]],
            Colormap::RdYlGn => &[
                [165, 0, 38],
                [215, 48, 39],
                [244, 109, 67],
                [253, 174, 97],
                [254, 224, 139],
                [255, 255, 191],
                [217, 239, 139],
                [166, 217, 106],
                [102, 189, 99],
                [26, 152, 80],
                [0, 104, 55],
            ],
            Colormap::Magma => &[
                [0, 0, 4],
                [28, 16, 68],
                [79, 18, 123],
                [129, 37, 129],
                [181, 54, 122],
                [229, 80, 100],
                [251, 135, 97],
                [254, 194, 135],
                [252, 253, 191],
            ],
        }
    }

    /// The colour at `t` in `[0, 1]` (clamped).
    ///
    /// ```
    /// use rasterlab::display::Colormap;
    /// assert_eq!(Colormap::Gray.rgb(0.0), [0, 0, 0]);
    /// assert_eq!(Colormap::Gray.rgb(2.0), [255, 255, 255]);
    /// assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);
    /// ```
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let stops = self.stops();
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let pos = t * (stops.len() - 1) as f32;
        let i = (pos.floor() as usize).min(stops.len() - 2);
        let f = pos - i as f32;
        let (a, b) = (stops[i], stops[i + 1]);
        std::array::from_fn(|k| (a[k] as f32 + (b[k] as f32 - a[k] as f32) * f).round() as u8)
    }

    /// A CSS `linear-gradient` of the map, left to right.
    fn css_gradient(self) -> String {
        let stops = self.stops();
        let parts: Vec<String> = stops
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "rgb({},{},{}) {:.1}%",
                    c[0],
                    c[1],
                    c[2],
                    100.0 * i as f32 / (stops.len() - 1) as f32
                )
            })
            .collect();
        format!("linear-gradient(to right, {})", parts.join(", "))
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Colormap::Viridis => "viridis",
            Colormap::Gray => "gray",
            Colormap::RdYlGn => "RdYlGn",
            Colormap::Magma => "magma",
        })
    }
}

/// Twenty distinct colours for categorical maps (matplotlib's tab20, reordered so that the
/// first ten are the saturated ones).
const CATEGORICAL: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];

#[derive(Debug, Clone)]
enum Legend {
    Colorbar {
        cmap: Colormap,
        min: f32,
        max: f32,
    },
    Rgb {
        bands: [String; 3],
        ranges: [(f32, f32); 3],
    },
    Categories(Vec<(i32, [u8; 3], usize)>),
}

/// A rendered quick-look: a PNG plus its title, colour bar or legend, and notes.
///
/// In a notebook it renders as one HTML block (the image, then the colour bar or legend)
/// together with an `image/png` twin of the same bundle.
///
/// ```
/// use ndarray::Array2;
/// use rasterlab::display::show_array;
/// let a = Array2::from_shape_fn((50, 80), |(r, c)| (r * c) as f32);
/// let img = show_array(&a).title("ramp");
/// assert_eq!(img.size(), (80, 50));
/// assert!(img.png_bytes().starts_with(b"\x89PNG"));
/// assert!(img.to_html().contains("data:image/png;base64,"));
/// ```
#[derive(Debug, Clone)]
pub struct Image {
    png: Vec<u8>,
    width: usize,
    height: usize,
    title: String,
    legend: Option<Legend>,
    notes: Vec<String>,
}

impl Image {
    /// Encodes `rgba` (`width * height * 4` bytes, row-major).
    fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Image {
        let mut notes = Vec::new();
        let png = encode_png(width, height, rgba).unwrap_or_else(|e| {
            notes.push(format!("PNG encoding failed: {e}"));
            Vec::new()
        });
        Image {
            png,
            width,
            height,
            title: String::new(),
            legend: None,
            notes,
        }
    }

    /// Sets the title shown above the image.
    pub fn title(mut self, title: impl Into<String>) -> Image {
        self.title = title.into();
        self
    }

    /// Adds a note shown under the image.
    pub fn note(mut self, note: impl Into<String>) -> Image {
        self.notes.push(note.into());
        self
    }

    /// `(width, height)` of the PNG in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The encoded PNG.
    pub fn png_bytes(&self) -> &[u8] {
        &self.png
    }

    /// Writes the PNG to `path`, atomically: a temporary file renamed into place once
    /// complete ([`write_atomic`](crate::raster::output::write_atomic)).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::raster::output::write_atomic(path.as_ref(), &self.png)
    }

    /// One HTML block: title, image, colour bar or legend, notes.
    pub fn to_html(&self) -> String {
        let mut html = String::from(
            "<div class=\"rasterlab-image\" style=\"display:inline-block;font-family:sans-serif;font-size:13px\">",
        );
        if !self.title.is_empty() {
            html.push_str(&format!(
                "<div style=\"font-weight:bold;margin-bottom:4px\">{}</div>",
                escape_html(&self.title)
            ));
        }
        // Small images are shown enlarged with crisp pixels; large ones fit the cell.
        let scale = if self.width > 0 && self.width < 400 {
            400usize.div_ceil(self.width)
        } else {
            1
        };
        html.push_str(&format!(
            "<img alt=\"{}\" width=\"{}\" style=\"max-width:100%;image-rendering:pixelated;display:block\" src=\"data:image/png;base64,{}\"/>",
            escape_html(&self.title),
            self.width * scale,
            base64(&self.png)
        ));
        match &self.legend {
            Some(Legend::Colorbar { cmap, min, max }) => {
                html.push_str(&format!(
                    "<div style=\"display:flex;align-items:center;gap:6px;margin-top:4px\">\
                     <span>{}</span><div title=\"{cmap}\" style=\"width:260px;height:12px;border:1px solid #888;background:{}\"></div>\
                     <span>{}</span><span style=\"color:#555\">({cmap})</span></div>",
                    fmt_value(*min),
                    cmap.css_gradient(),
                    fmt_value(*max)
                ));
            }
            Some(Legend::Rgb { bands, ranges }) => {
                let parts: Vec<String> = ["R", "G", "B"]
                    .iter()
                    .zip(bands.iter().zip(ranges))
                    .map(|(c, (name, (lo, hi)))| {
                        format!(
                            "{c} = {} [{} .. {}]",
                            escape_html(name),
                            fmt_value(*lo),
                            fmt_value(*hi)
                        )
                    })
                    .collect();
                html.push_str(&format!(
                    "<div style=\"margin-top:4px\">{}</div>",
                    parts.join("; ")
                ));
            }
            Some(Legend::Categories(items)) => {
                html.push_str("<div style=\"display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px;max-width:600px\">");
                for (label, c, count) in items.iter().take(40) {
                    html.push_str(&format!(
                        "<span><span style=\"display:inline-block;width:12px;height:12px;vertical-align:middle;\
                         border:1px solid #555;background:rgb({},{},{})\"></span> {label} ({count} px)</span>",
                        c[0], c[1], c[2]
                    ));
                }
                if items.len() > 40 {
                    html.push_str(&format!("<span>... {} more</span>", items.len() - 40));
                }
                html.push_str("</div>");
            }
            None => {}
        }
        for note in &self.notes {
            html.push_str(&format!(
                "<div style=\"color:#555;font-size:smaller\">{}</div>",
                escape_html(note)
            ));
        }
        html.push_str("</div>");
        html
    }

    /// Renders inline in a notebook: `text/html` plus an `image/png` twin.
    pub fn evcxr_display(&self) {
        emit("image/png", &base64(&self.png));
        emit("text/html", &self.to_html());
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image {} x {} px", self.width, self.height)?;
        if !self.title.is_empty() {
            write!(f, ": {}", self.title)?;
        }
        Ok(())
    }
}

fn fmt_value(v: f32) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        format!("{}", (v * 1e4).round() / 1e4)
    } else {
        format!("{v:.3e}")
    }
}

fn encode_png(width: usize, height: usize, rgba: &[u8]) -> Result<Vec<u8>> {
    let err = |e: png::EncodingError| Error::internal(format!("PNG encoding in memory: {e}"));
    let dim = |v: usize| u32::try_from(v).map_err(|_| Error::invalid("image", "too large"));
    // Opaque images drop the alpha channel: a quarter fewer bytes before compression.
    let opaque = rgba.chunks_exact(4).all(|p| p[3] == 255);
    let rgb: Vec<u8>;
    let (data, color) = if opaque {
        rgb = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        (rgb.as_slice(), png::ColorType::Rgb)
    } else {
        (rgba, png::ColorType::Rgba)
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, dim(width)?, dim(height)?);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(data).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// Every `step`-th row and column so that the longer side is at most `max_side`.
pub(crate) fn decimate<T: Copy>(a: ArrayView2<'_, T>, max_side: usize) -> (Array2<T>, usize) {
    let (h, w) = a.dim();
    let step = h.max(w).div_ceil(max_side.max(1)).max(1);
    if step == 1 {
        return (a.to_owned(), 1);
    }
    (a.slice(ndarray::s![..;step, ..;step]).to_owned(), step)
}

/// The `lo` and `hi` percentiles (0-100) of the finite values; `None` when there is none.
pub(crate) fn percentiles(values: &[f32], lo: f32, hi: f32) -> Option<(f32, f32)> {
    let step = (values.len() / 250_000).max(1);
    let mut v: Vec<f32> = values
        .iter()
        .step_by(step)
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() - 1;
    let at = |p: f32| ((p / 100.0).clamp(0.0, 1.0) * n as f32).round() as usize;
    let (_, &mut a, _) = v.select_nth_unstable_by(at(lo), f32::total_cmp);
    let (_, &mut b, _) = v.select_nth_unstable_by(at(hi), f32::total_cmp);
    Some((a, b))
}

fn note_decimated(step: usize, dim: (usize, usize)) -> Option<String> {
    (step > 1).then(|| format!("{} x {} px shown at 1:{step} (nearest)", dim.1, dim.0))
}

/// A single band with `cmap`, stretched over `range` (default: 2nd to 98th percentile of
/// the finite values); NaN is transparent. Decimated to at most 800 px per side.
///
/// ```
/// use ndarray::Array2;
/// use rasterlab::display::{show_array_with, Colormap};
/// let a = Array2::from_shape_fn((3000, 10), |(r, _)| r as f32);
/// let img = show_array_with(&a, Colormap::Gray, Some((0.0, 3000.0)));
/// assert_eq!(img.size(), (3, 750));
/// ```
pub fn show_array_with(a: &Array2<f32>, cmap: Colormap, range: Option<(f32, f32)>) -> Image {
    let (small, step) = decimate(a.view(), MAX_SIDE);
    let (h, w) = small.dim();
    let values: Vec<f32> = small.iter().copied().collect();
    let (robust, (min, max)) = match range {
        Some(r) => (false, r),
        None => (true, percentiles(&values, 2.0, 98.0).unwrap_or((0.0, 1.0))),
    };
    let span = if max > min { max - min } else { 1.0 };
    let mut rgba = Vec::with_capacity(w * h * 4);
    let mut nan = 0usize;
    for &v in &values {
        if v.is_finite() {
            let c = cmap.rgb((v - min) / span);
            rgba.extend_from_slice(&[c[0], c[1], c[2], 255]);
        } else {
            nan += 1;
            rgba.extend_from_slice(&[0, 0, 0, 0]);
        }
    }
    let mut img = Image::from_rgba(w, h, &rgba);
    img.legend = Some(Legend::Colorbar { cmap, min, max });
    img.notes.extend(note_decimated(step, a.dim()));
    if robust {
        img.notes
            .push("colour range: 2nd to 98th percentile of valid pixels".into());
    }
    if nan > 0 {
        img.notes.push(format!(
            "{:.1}% nodata (transparent)",
            100.0 * nan as f64 / values.len().max(1) as f64
        ));
    }
    img
}

/// A single band with viridis and a 2-98 % percentile stretch; see [`show_array_with`].
///
/// ```
/// let a = ndarray::Array2::<f32>::from_elem((20, 30), f32::NAN);
/// let img = rasterlab::display::show_array(&a); // all nodata: transparent, no error
/// assert_eq!(img.size(), (30, 20));
/// ```
pub fn show_array(a: &Array2<f32>) -> Image {
    show_array_with(a, Colormap::Viridis, None)
}

/// An RGB composite of three equally shaped bands, each stretched from its 2nd to 98th
/// percentile; a pixel with any NaN is transparent. `names` label the legend.
///
/// ```
/// use ndarray::Array2;
/// let r = Array2::from_shape_fn((10, 10), |(y, _)| y as f32);
/// let g = Array2::from_shape_fn((10, 10), |(_, x)| x as f32);
/// let b = Array2::<f32>::zeros((10, 10));
/// let img = rasterlab::display::show_rgb([&r, &g, &b], ["r", "g", "b"])?;
/// assert_eq!(img.size(), (10, 10));
/// # Ok::<(), rasterlab::Error>(())
/// ```
pub fn show_rgb(bands: [&Array2<f32>; 3], names: [&str; 3]) -> Result<Image> {
    let dim = bands[0].dim();
    if bands.iter().any(|b| b.dim() != dim) {
        return Err(Error::invalid(
            "rgb bands",
            format!(
                "shapes differ: {:?}, {:?}, {:?}",
                bands[0].dim(),
                bands[1].dim(),
                bands[2].dim()
            ),
        ));
    }
    let mut step = 1;
    let small: Vec<Array2<f32>> = bands
        .iter()
        .map(|b| {
            let (s, k) = decimate(b.view(), MAX_SIDE);
            step = k;
            s
        })
        .collect();
    let (h, w) = small[0].dim();
    let ranges: Vec<(f32, f32)> = small
        .iter()
        .map(|b| {
            let v: Vec<f32> = b.iter().copied().collect();
            percentiles(&v, 2.0, 98.0).unwrap_or((0.0, 1.0))
        })
        .collect();
    let mut rgba = Vec::with_capacity(w * h * 4);
    for ((&r, &g), &b) in small[0].iter().zip(small[1].iter()).zip(small[2].iter()) {
        if r.is_finite() && g.is_finite() && b.is_finite() {
            for (v, (lo, hi)) in [r, g, b].into_iter().zip(&ranges) {
                let span = if hi > lo { hi - lo } else { 1.0 };
                rgba.push((((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8);
            }
            rgba.push(255);
        } else {
            rgba.extend_from_slice(&[0, 0, 0, 0]);
        }
    }
    let mut img = Image::from_rgba(w, h, &rgba);
    img.legend = Some(Legend::Rgb {
        bands: names.map(str::to_string),
        ranges: [ranges[0], ranges[1], ranges[2]],
    });
    img.notes.extend(note_decimated(step, dim));
    img.notes
        .push("each band stretched from its 2nd to 98th percentile".into());
    Ok(img)
}

/// A categorical label map (for clustering results): one colour per label from a
/// 20-colour palette, negative labels (nodata, e.g. `-1`) transparent, and a legend with
/// the pixel count of each label. Decimated to at most 800 px per side.
///
/// ```
/// use ndarray::Array2;
/// let labels = Array2::from_shape_fn((40, 60), |(r, c)| if r < 5 { -1 } else { ((r / 10 + c / 20) % 4) as i32 });
/// let img = rasterlab::display::show_labels(&labels);
/// assert_eq!(img.size(), (60, 40));
/// assert!(img.to_html().contains("300 nodata px"));
/// ```
pub fn show_labels(labels: &Array2<i32>) -> Image {
    let (small, step) = decimate(labels.view(), MAX_SIDE);
    let (h, w) = small.dim();
    let mut counts = std::collections::BTreeMap::<i32, usize>::new();
    for &l in labels.iter() {
        *counts.entry(l).or_default() += 1;
    }
    let color = |l: i32| CATEGORICAL[l.rem_euclid(CATEGORICAL.len() as i32) as usize];
    let mut rgba = Vec::with_capacity(w * h * 4);
    for &l in small.iter() {
        if l < 0 {
            rgba.extend_from_slice(&[0, 0, 0, 0]);
        } else {
            let c = color(l);
            rgba.extend_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    let nodata: usize = counts.range(..0).map(|(_, c)| c).sum();
    let items: Vec<(i32, [u8; 3], usize)> =
        counts.range(0..).map(|(&l, &c)| (l, color(l), c)).collect();
    let n_labels = items.len();
    let mut img = Image::from_rgba(w, h, &rgba);
    img.legend = Some(Legend::Categories(items));
    img.notes.extend(note_decimated(step, labels.dim()));
    img.notes.push(format!(
        "{n_labels} label(s); {nodata} nodata px (negative labels, transparent)"
    ));
    img
}

/// `.show()` for in-memory results: `Array2<f32>` renders with [`show_array`],
/// `Array2<i32>` as a label map with [`show_labels`]. In the prelude.
///
/// ```
/// use rasterlab::prelude::*;
/// let a = ndarray::Array2::<f32>::zeros((8, 8));
/// let img = a.show();
/// assert_eq!(img.size(), (8, 8));
/// ```
pub trait Show {
    /// A quick-look image of the value.
    fn show(&self) -> Image;
}

impl Show for Array2<f32> {
    fn show(&self) -> Image {
        show_array(self)
    }
}

impl Show for Array2<i32> {
    fn show(&self) -> Image {
        show_labels(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_ignore_nan() {
        let v: Vec<f32> = (0..=100).map(|i| i as f32).chain([f32::NAN; 50]).collect();
        assert_eq!(percentiles(&v, 2.0, 98.0), Some((2.0, 98.0)));
        assert_eq!(percentiles(&[f32::NAN], 2.0, 98.0), None);
    }

    #[test]
    fn decimate_keeps_the_longer_side_under_the_limit() {
        let a = Array2::<u8>::zeros((2500, 1000));
        let (s, step) = decimate(a.view(), 1024);
        assert_eq!(step, 3);
        assert_eq!(s.dim(), (834, 334));
    }

    #[test]
    fn png_round_trips_through_the_decoder() {
        let a = Array2::from_shape_fn((7, 5), |(r, c)| (r + c) as f32);
        let img = show_array(&a);
        let decoder = png::Decoder::new(std::io::Cursor::new(img.png_bytes().to_vec()));
        let reader = decoder.read_info().expect("valid png");
        assert_eq!((reader.info().width, reader.info().height), (5, 7));
    }
}
