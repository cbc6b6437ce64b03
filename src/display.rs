//! Notebook and terminal rendering helpers.
//!
//! evcxr renders a cell's value by calling an inherent `evcxr_display(&self)` method that
//! prints a MIME bundle between `EVCXR_BEGIN_CONTENT` and `EVCXR_END_CONTENT` on stdout.
//! Only one bundle per cell survives, so each type renders exactly one HTML block.

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
