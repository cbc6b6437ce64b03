//! Histogram quick-looks: counts of values in equal bins, one series per band, drawn as
//! one SVG figure.

use std::fmt;

use ndarray::Array2;

use super::{emit, escape_html, html_table};
use crate::core::fmt::{fmt_tick, nice_ticks};

/// Colours of the series, in order (matplotlib's tab10).
const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// Counts of finite values in `bins` equal bins over a common range, one series per band;
/// NaN (nodata) and infinite values are counted apart.
///
/// ```
/// use rasterlab::display::Histogram;
/// let h = Histogram::new(16, None, [("ramp", &[0.0, 1.0, 1.0, 2.0, f32::NAN][..])]);
/// assert_eq!(h.range(), (0.0, 2.0));
/// assert_eq!(h.series()[0].counts.iter().sum::<u64>(), 4);
/// assert_eq!(h.series()[0].missing, 1);
/// assert!(h.to_svg().contains("<svg"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    title: String,
    range: (f32, f32),
    bins: usize,
    series: Vec<Series>,
    notes: Vec<String>,
}

/// One band's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Band name.
    pub name: String,
    /// Count per bin, `bins` of them.
    pub counts: Vec<u64>,
    /// Values that are NaN or infinite.
    pub missing: u64,
    /// Mean of the finite values (NaN if none).
    pub mean: f64,
}

impl Histogram {
    /// Bins the values of each `(name, values)` series; the range is `range` or the
    /// smallest and largest finite value over all series. `bins` is at least 1.
    pub fn new<'a>(
        bins: usize,
        range: Option<(f32, f32)>,
        series: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    ) -> Histogram {
        let bins = bins.max(1);
        let series: Vec<(&str, &[f32])> = series.into_iter().collect();
        let range = range.unwrap_or_else(|| {
            let (lo, hi) = series
                .iter()
                .flat_map(|(_, v)| v.iter().copied().filter(|x| x.is_finite()))
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(x), hi.max(x))
                });
            if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
        });
        let width = f64::from(range.1 - range.0);
        let series = series
            .into_iter()
            .map(|(name, values)| {
                let mut counts = vec![0u64; bins];
                let (mut missing, mut sum, mut n) = (0u64, 0f64, 0u64);
                for &v in values {
                    if !v.is_finite() {
                        missing += 1;
                        continue;
                    }
                    sum += f64::from(v);
                    n += 1;
                    if v < range.0 || v > range.1 {
                        continue;
                    }
                    let k = if width > 0.0 {
                        ((f64::from(v - range.0) / width) * bins as f64) as usize
                    } else {
                        0
                    };
                    counts[k.min(bins - 1)] += 1;
                }
                Series {
                    name: name.to_string(),
                    counts,
                    missing,
                    mean: if n > 0 { sum / n as f64 } else { f64::NAN },
                }
            })
            .collect();
        Histogram {
            title: "Histogram".into(),
            range,
            bins,
            series,
            notes: Vec::new(),
        }
    }

    /// The histogram of an in-memory band.
    ///
    /// ```
    /// let a = ndarray::Array2::from_shape_fn((10, 10), |(r, _)| r as f32);
    /// let h = rasterlab::display::Histogram::of(&a, 10);
    /// assert!(h.series()[0].counts.iter().all(|&c| c == 10));
    /// ```
    pub fn of(a: &Array2<f32>, bins: usize) -> Histogram {
        let values: Vec<f32> = a.iter().copied().collect();
        Histogram::new(bins, None, [("values", values.as_slice())])
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Histogram {
        self.title = title.into();
        self
    }

    /// Adds a note shown under the figure.
    pub fn note(mut self, note: impl Into<String>) -> Histogram {
        self.notes.push(note.into());
        self
    }

    /// The binned range.
    pub fn range(&self) -> (f32, f32) {
        self.range
    }

    /// The series, one per band.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Lower edge of every bin, and the upper edge of the last: `bins + 1` values.
    pub fn edges(&self) -> Vec<f32> {
        let (lo, hi) = self.range;
        (0..=self.bins)
            .map(|k| lo + (hi - lo) * k as f32 / self.bins as f32)
            .collect()
    }

    /// The figure: one step outline per series (filled when there is one series).
    pub fn to_svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (640.0, 300.0, 64.0, 16.0, 16.0, 44.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let max = self
            .series
            .iter()
            .flat_map(|s| s.counts.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\
             <rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fafafa\" stroke=\"#ccc\"/>"
        );
        let bin_w = pw / self.bins as f64;
        let fill = self.series.len() == 1;
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut path = format!("M{left:.1},{:.1}", top + ph);
            for (k, &c) in s.counts.iter().enumerate() {
                let y = top + ph * (1.0 - c as f64 / max);
                let x0 = left + bin_w * k as f64;
                path.push_str(&format!(" L{x0:.1},{y:.1} L{:.1},{y:.1}", x0 + bin_w));
            }
            path.push_str(&format!(" L{:.1},{:.1}", left + pw, top + ph));
            let fill_attr = if fill {
                format!("fill=\"{color}\" fill-opacity=\"0.6\"")
            } else {
                "fill=\"none\"".to_string()
            };
            svg.push_str(&format!(
                "<path d=\"{path}\" {fill_attr} stroke=\"{color}\" stroke-width=\"1.5\"/>"
            ));
            // Legend, top right.
            let ly = top + 14.0 + 16.0 * i as f64;
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
                left + pw - 150.0,
                ly - 9.0,
                left + pw - 135.0,
                escape_html(&s.name)
            ));
        }
        // Axes: round ticks on x (1, 2 or 5 times a power of ten), the top count on y.
        let (lo, hi) = (f64::from(self.range.0), f64::from(self.range.1));
        for (v, text) in nice_ticks(lo, hi) {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
                left + pw * t,
                top + ph + 16.0,
                text
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">0</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">value ({} bins)</text>",
            left - 6.0,
            top + 10.0,
            max as u64,
            left - 6.0,
            top + ph,
            left + pw / 2.0,
            h - 6.0,
            self.bins
        ));
        svg.push_str("</svg>");
        svg
    }

    /// HTML: title, figure, a table of counts per series, notes.
    pub fn to_html(&self) -> String {
        let rows: Vec<(&str, String)> = self
            .series
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    format!(
                        "{} values, mean {}, {} missing",
                        s.counts.iter().sum::<u64>(),
                        fmt_tick(s.mean),
                        s.missing
                    ),
                )
            })
            .collect();
        let mut html = format!(
            "<div class=\"rasterlab-histogram\" style=\"font-family:sans-serif;font-size:13px\">\
             <div style=\"font-weight:bold;margin-bottom:4px\">{}</div>{}{}",
            escape_html(&self.title),
            self.to_svg(),
            html_table("", &rows)
        );
        for note in &self.notes {
            html.push_str(&format!(
                "<div style=\"color:#555;font-size:smaller\">{}</div>",
                escape_html(note)
            ));
        }
        html.push_str("</div>");
        html
    }

    /// Renders inline in a notebook (evcxr): `image/svg+xml` and `text/html`.
    pub fn evcxr_display(&self) {
        emit("image/svg+xml", &self.to_svg());
        emit("text/html", &self.to_html());
    }
}

impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} over [{}, {}] in {} bins",
            self.title,
            fmt_tick(f64::from(self.range.0)),
            fmt_tick(f64::from(self.range.1)),
            self.bins
        )?;
        for s in &self.series {
            writeln!(
                f,
                "  {}: {} values, mean {}, {} missing",
                s.name,
                s.counts.iter().sum::<u64>(),
                fmt_tick(s.mean),
                s.missing
            )?;
        }
        Ok(())
    }
}
