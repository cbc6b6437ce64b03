//! Notebook and terminal rendering helpers.
//!
//! evcxr renders a cell's value by calling an inherent `evcxr_display(&self)` method that
//! prints a MIME bundle between `EVCXR_BEGIN_CONTENT` and `EVCXR_END_CONTENT` on stdout.
//! Only one bundle per cell survives (one entry per MIME type), so each type renders
//! exactly one HTML block, sometimes with an `image/png` or `image/svg+xml` twin.
//!
//! Quick-looks ([`Image`]) turn rasters, lazy arrays, `Array2<f32>` and label maps
//! (`Array2<i32>`) into PNG images with their legend or colour bar in HTML; see
//! [`show_array`], [`show_labels`] and `Raster::show`.

mod histogram;
mod image;
mod repr;

// The formatting helpers live in `core::fmt` (every layer uses them); their old paths:
pub use crate::core::fmt::{escape_html, html_table, human_bytes};
// The MIME bundle and base64 are internals of the notebook reprs.
pub(crate) use crate::core::fmt::{base64, emit};
pub use histogram::{Histogram, Series};
pub use image::{Colormap, Image, Show, show_array, show_array_with, show_labels, show_rgb};

/// A small table of results for notebooks and terminals, e.g. timings of several runs.
///
/// ```
/// use rasterlab::display::Table;
/// let mut t = Table::new("Timings", ["chunks", "seconds"]);
/// t.row(["256", "0.41"]);
/// assert!(t.to_html().contains(">0.41</td>"));
/// assert!(t.to_string().contains("256"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Table {
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with a caption and column names.
    pub fn new<S: ToString>(caption: &str, header: impl IntoIterator<Item = S>) -> Table {
        Table {
            caption: caption.to_string(),
            header: header.into_iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        self.rows
            .push(cells.into_iter().map(|c| c.to_string()).collect());
        self
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// An HTML table.
    pub fn to_html(&self) -> String {
        let cell = "style=\"padding:1px 10px;text-align:right\"";
        let mut html = format!(
            "<table class=\"rasterlab\" style=\"border-collapse:collapse;font-family:monospace\">\
             <caption style=\"text-align:left;font-weight:bold\">{}</caption><tr>",
            escape_html(&self.caption)
        );
        for h in &self.header {
            html.push_str(&format!("<th {cell}>{}</th>", escape_html(h)));
        }
        html.push_str("</tr>");
        for row in &self.rows {
            html.push_str("<tr>");
            for c in row {
                html.push_str(&format!("<td {cell}>{}</td>", escape_html(c)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        html
    }
}

crate::core::fmt::html_repr!(Table);

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = self
            .header
            .len()
            .max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        writeln!(f, "{}", self.caption)?;
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:>w$}"))
                .collect();
            writeln!(f, "  {}", cells.join("  "))?;
        }
        Ok(())
    }
}
