//! Text and HTML formatting shared by every layer: byte counts, HTML escaping and tables,
//! and (crate-private) base64 and the evcxr MIME bundle that renders a value in a notebook.

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
/// let html = rasterlab::core::fmt::html_table("Demo", &[("threads", "2".to_string())]);
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
pub(crate) fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Gives each type (which has `to_html(&self) -> String`) the inherent
/// `evcxr_display(&self)` that renders it in a notebook cell as HTML.
///
/// evcxr renders a cell's value by calling a method of that name, so it must be inherent: a
/// trait method would need the trait in scope in every notebook. One macro keeps the many
/// identical bodies in one place.
macro_rules! html_repr {
    ($($t:ty),+ $(,)?) => {$(
        impl $t {
            /// Renders inline in a notebook cell as HTML (evcxr).
            pub fn evcxr_display(&self) {
                $crate::core::fmt::emit("text/html", &self.to_html());
            }
        }
    )+};
}
pub(crate) use html_repr;

/// Formats a byte count with binary units, e.g. `1.5 GiB`.
///
/// ```
/// assert_eq!(rasterlab::core::fmt::human_bytes(1536 * 1024 * 1024), "1.5 GiB");
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
pub(crate) fn base64(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(super::base64(b"rasterlab"), "cmFzdGVybGFi");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
