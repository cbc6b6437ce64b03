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

/// Round tick values within `lo..=hi` (steps of 1, 2 or 5 times a power of ten, 3 to 8
/// ticks), each labelled to the step's precision: `0.05`, not `0.0213`.
pub(crate) fn nice_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![(lo, fmt_tick(lo))];
    }
    // The largest round step that fits three times in the range: 3 to 8 ticks.
    let most = (hi - lo) / 3.0;
    let power = 10f64.powf(most.log10().floor());
    let step = [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s <= most)
        .unwrap_or(power);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            // -0.00 reads oddly
            let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
            (v, format!("{v:.decimals$}"))
        })
        .collect()
}

/// A number for an axis or a summary: 3 decimals, none from 100, exponent outside 1e-3..1e5.
pub(crate) fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if v.is_nan() {
        "NaN".into()
    } else if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(super::base64(b"rasterlab"), "cmFzdGVybGFi");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        let labels = |lo, hi| -> Vec<String> {
            super::nice_ticks(lo, hi).into_iter().map(|t| t.1).collect()
        };
        assert_eq!(labels(-0.0537, 0.1021), ["-0.05", "0.00", "0.05", "0.10"]);
        assert_eq!(labels(0.0, 65535.0), ["0", "20000", "40000", "60000"]);
        assert_eq!(labels(3.0, 3.0), ["3.000"]);
        for (lo, hi) in [(-0.31, 0.29), (7.5, 1234.0), (1e-6, 3e-6)] {
            for (v, _) in super::nice_ticks(lo, hi) {
                assert!((lo..=hi).contains(&v), "{v} outside {lo}..{hi}");
            }
            assert!(super::nice_ticks(lo, hi).len() >= 3);
        }
    }
}
