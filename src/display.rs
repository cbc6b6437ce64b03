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

pub use histogram::{Histogram, Series};
pub use image::{Colormap, Image, Show, show_array, show_array_with, show_labels, show_rgb};

/// Escapes text for inclusion in HTML.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// An HTML table with a caption and `(name, value)` rows; values are escaped.
///
/// ```
/// let html = rasterlab::display::html_table("Demo", &[("threads", "2".to_string())]);
/// assert!(html.contains("<td>2</td>"));
/// ```
pub fn html_table(caption: &str, rows: &[(&str, String)]) -> String {
    let mut html = format!(
        "<table class=\"rasterlab\" style=\"border-collapse:collapse;font-family:monospace\">\
         <caption style=\"text-align:left;font-weight:bold\">{}</caption>",
        escape_html(caption)
    );
    for (name, value) in rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left;padding-right:1em\">{}</th><td>{}</td></tr>",
            escape_html(name),
            escape_html(value)
        ));
    }
    html.push_str("</table>");
    html
}

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

    /// Renders inline in a notebook (evcxr).
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_html());
    }
}

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

/// Prints one evcxr MIME bundle on stdout.
pub fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Formats a byte count with binary units, e.g. `1.5 GiB`.
///
/// ```
/// assert_eq!(rasterlab::display::human_bytes(1536 * 1024 * 1024), "1.5 GiB");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Standard base64 (RFC 4648, with padding), for `data:` URIs and `image/png` bundles.
///
/// ```
/// assert_eq!(rasterlab::display::base64(b"rasterlab"), "cmFzdGVybGFi");
/// assert_eq!(rasterlab::display::base64(b"ab"), "YWI=");
/// ```
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
