//! The dashboard's page: a static HTML shell (`page.html`, with its style and script) and
//! the panel it re-fetches, drawn as HTML and SVG from a [`DashboardStatus`].

use std::time::Duration;

use super::status::DashboardStatus;
use crate::core::fmt::{escape_html, human_bytes, nice_ticks};
use crate::profile::{Task, TaskKind};

/// The page around the panel; `<!--panel-->` is replaced by the first panel so that the
/// page shows figures before its script runs.
const PAGE: &str = include_str!("page.html");

/// The whole page.
pub(super) fn page(status: &DashboardStatus) -> String {
    PAGE.replace("<!--panel-->", &panel(status))
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}:{:02} min", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// The page's body: progress, task stream, CPU and memory.
pub(super) fn panel(status: &DashboardStatus) -> String {
    let mut html = format!(
        "<h1>rasterlab dashboard</h1><div class=\"sub\">up {} &middot; {} cores &middot; {} usable \
         memory &middot; refreshes twice a second</div>",
        secs(status.uptime),
        status.cores,
        human_bytes(status.usable_memory)
    );
    // Progress.
    html.push_str("<div class=\"card\"><h2>Progress</h2>");
    match &status.run {
        None => html.push_str(
            "<div class=\"figs\">idle: no computation observed yet (pass <code>dash.profiler()</code> \
             to <code>.observe(..)</code>)</div>",
        ),
        Some(p) => {
            let pct = if p.total == 0 {
                100.0
            } else {
                100.0 * p.done as f64 / p.total as f64
            };
            let tail = if p.finished {
                format!("finished in {}", secs(p.elapsed))
            } else {
                match p.eta() {
                    Some(eta) => format!("running for {}, ETA {}", secs(p.elapsed), secs(eta)),
                    None => format!("running for {}", secs(p.elapsed)),
                }
            };
            html.push_str(&format!(
                "<div class=\"figs\"><b>{}</b> &middot; run {} &middot; {} thread(s)</div>\
                 <div class=\"bar\"><div class=\"fill{}\" style=\"width:{pct:.1}%\"></div></div>\
                 <div class=\"figs\">{} / {} chunks ({pct:.0}%) &middot; {:.1} chunks/s &middot; {tail}</div>",
                escape_html(&p.label),
                p.runs,
                p.threads,
                if p.finished { " done" } else { "" },
                p.done,
                p.total,
                p.rate()
            ));
        }
    }
    html.push_str("</div>");
    // Task stream.
    html.push_str("<div class=\"card\"><h2>Task stream</h2>");
    html.push_str(&task_stream_svg(&status.tasks, status.span));
    html.push_str("</div>");
    // CPU and memory.
    let cpu_max = 100.0 * status.cores.max(1) as f64;
    let cpu: Vec<(f64, f64)> = status
        .samples
        .iter()
        .map(|s| (s.time, f64::from(s.cpu_percent)))
        .collect();
    let rss: Vec<(f64, f64)> = status
        .samples
        .iter()
        .map(|s| (s.time, s.rss_bytes as f64))
        .collect();
    // Scaled to the peak of the last minute (at least 64 MiB), so that changes show.
    let rss_max = status
        .samples
        .iter()
        .map(|s| s.rss_bytes)
        .max()
        .unwrap_or(0)
        .max(64 << 20) as f64
        * 1.25;
    let last = status.samples.last();
    html.push_str(&format!(
        "<div class=\"row\"><div class=\"card\"><h2>CPU: {}</h2>{}</div>\
         <div class=\"card\"><h2>Memory (RSS): {} of {} usable</h2>{}</div></div>",
        last.map_or("-".to_string(), |s| format!(
            "{:.0} % of {:.0} %",
            s.cpu_percent, cpu_max
        )),
        sparkline(
            &cpu,
            cpu_max.max(cpu.iter().map(|p| p.1).fold(0.0, f64::max)),
            "#ff7f0e",
            |v| format!("{v:.0} %")
        ),
        last.map_or("-".to_string(), |s| human_bytes(s.rss_bytes)),
        human_bytes(status.usable_memory),
        sparkline(&rss, rss_max, "#9467bd", |v| human_bytes(v as u64)),
    ));
    html
}

fn kind_color(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Read => "#1f77b4",
        TaskKind::Compute => "#ff7f0e",
        TaskKind::Write => "#2ca02c",
    }
}

/// One row per worker thread (and the writer), one rectangle per task.
fn task_stream_svg(tasks: &[Task], span: (Duration, Duration)) -> String {
    let mut rows: Vec<Option<usize>> = tasks.iter().map(|t| t.thread).collect();
    rows.sort_by_key(|t| t.unwrap_or(usize::MAX));
    rows.dedup();
    let (w, left, right, row_h) = (1180.0, 90.0, 40.0, 22.0);
    let plot_w = w - left - right;
    let h = 40.0 + row_h * rows.len().max(1) as f64 + 24.0;
    let t0 = span.0.as_secs_f64();
    let len = (span.1.as_secs_f64() - t0).max(1e-3);
    let x = |t: f64| left + plot_w * ((t - t0) / len).clamp(0.0, 1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         style=\"max-width:{w}px\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    // Legend.
    let mut lx = left;
    for kind in TaskKind::ALL {
        svg.push_str(&format!(
            "<rect x=\"{lx}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"14\">{}</text>",
            kind_color(kind),
            lx + 16.0,
            kind.name()
        ));
        lx += 90.0;
    }
    if tasks.is_empty() {
        svg.push_str(&format!(
            "<text x=\"{left}\" y=\"48\" fill=\"#888\">no tasks yet</text></svg>"
        ));
        return svg;
    }
    for (r, thread) in rows.iter().enumerate() {
        let y = 28.0 + row_h * r as f64;
        let name = thread.map_or("writer".to_string(), |i| format!("worker {i}"));
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{name}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{plot_w}\" height=\"{}\" fill=\"#f6f6f6\"/>",
            left - 8.0,
            y + row_h * 0.65,
            row_h - 4.0
        ));
    }
    for t in tasks {
        let Some(r) = rows.iter().position(|&x| x == t.thread) else {
            continue;
        };
        let y = 28.0 + row_h * r as f64;
        let (x0, x1) = (x(t.start.as_secs_f64()), x(t.end.as_secs_f64()));
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\">\
             <title>{} chunk {} ({:.1} ms)</title></rect>",
            (x1 - x0).max(0.8),
            row_h - 4.0,
            kind_color(t.kind),
            t.kind.name(),
            t.chunk,
            (t.end.saturating_sub(t.start)).as_secs_f64() * 1e3
        ));
    }
    // Time axis: seconds since the profiler's first run.
    let axis_y = 28.0 + row_h * rows.len() as f64 + 4.0;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#999\"/>",
        left + plot_w
    ));
    // Round ticks (12.0, 12.5, 13.0 s), not the range cut in fifths (11.43, 11.79 s).
    for (t, label) in nice_ticks(t0, t0 + len) {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{label} s</text>",
            x(t),
            axis_y + 16.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A small line chart of `(time, value)` points over the last minute, scaled to `max`.
fn sparkline(points: &[(f64, f64)], max: f64, color: &str, fmt: impl Fn(f64) -> String) -> String {
    let (w, h, left) = (560.0, 120.0, 70.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         style=\"max-width:{w}px\" font-family=\"sans-serif\" font-size=\"11\">\
         <rect x=\"{left}\" y=\"6\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#f6f6f6\"/>\
         <text x=\"{}\" y=\"16\" text-anchor=\"end\" fill=\"#555\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">0</text>\
         <text x=\"{left}\" y=\"{}\" fill=\"#555\">-60 s</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">now</text>",
        left - 6.0,
        fmt(max),
        left - 6.0,
        6.0 + plot_h,
        h - 2.0,
        left + plot_w,
        h - 2.0
    );
    if let Some(&(t_end, _)) = points.last() {
        let t_start = t_end - 60.0;
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.0 >= t_start)
            .map(|&(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + plot_w * (t - t_start) / 60.0,
                    6.0 + plot_h * (1.0 - (v / max.max(1e-9)).clamp(0.0, 1.0))
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::task_stream_svg;
    use crate::profile::{Task, TaskKind};
    use std::time::Duration;

    #[test]
    fn the_task_stream_axis_has_round_ticks() {
        let (from, to) = (Duration::from_millis(11_430), Duration::from_millis(13_200));
        let task = Task {
            kind: TaskKind::Read,
            chunk: 0,
            thread: Some(0),
            rank: 0,
            start: from,
            end: to,
        };
        let svg = task_stream_svg(&[task], (from, to));
        let labels: Vec<&str> = svg
            .split("fill=\"#555\">")
            .skip(1)
            .filter_map(|s| s.split(" s</text>").next())
            .collect();
        // 11.43 .. 13.20 s: steps of 0.5 s, not the range cut in fifths (11.43, 11.79, ...)
        assert_eq!(labels, ["11.5", "12.0", "12.5", "13.0"], "{svg}");
    }
}
